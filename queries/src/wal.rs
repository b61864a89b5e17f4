//! The write-ahead log: append-only segment files (`<data>/wal/<seq>.wal`) of checksummed
//! frames. A frame holds either one Arrow record batch of one table (as an Arrow IPC stream) or
//! a source mark (how far into a source the batches before it reach).
//!
//! Frame layout (little endian): `b"TWAL"`, kind `u8` (1 batch, 2 mark, 3 commit, 4 segment
//! header), table `u8`, payload length `u32`, CRC-32 of the payload `u32`, payload. Batch
//! payloads are Arrow IPC streams with LZ4-compressed buffers. A segment opens with a header
//! frame, and every append ends with a commit frame: the batches and marks of one append are
//! replayed together or not at all. (A process killed inside its `write` leaves a short write:
//! without commits, a whole batch frame followed by a torn mark came back as rows whose source
//! mark was lost, and the source sent them again. Segments without a header, from before
//! commits, are replayed frame by frame.)
//!
//! Invariants:
//! - `append` returns only after the frames are written and, with `Sync::Always`, fsynced: what
//!   it acknowledged survives a crash.
//! - Replay reads frames in order. Bytes that are not a valid frame (short header, short
//!   payload, bad magic, bad checksum, an undecodable payload) are skipped up to the next valid
//!   frame and reported as damage; with no valid frame after them they are a torn last write,
//!   and a writer reopening the file truncates there so later appends follow valid frames.
//! - A failed append (disk full, a failed fsync) leaves the segment as it was before it: the
//!   writer cuts the file back to its last acknowledged byte, so nothing unacknowledged is
//!   replayed and later appends never follow a partial frame. If even that cut fails, the
//!   writer is sealed: it refuses further appends, and the store rolls to a new segment.
//! - A segment is deleted only by the store, after its rows are durable in Parquet.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::ipc::CompressionType;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::schema::TableName;

const MAGIC: &[u8; 4] = b"TWAL";
const HEADER: usize = 4 + 1 + 1 + 4 + 4;
const KIND_BATCH: u8 = 1;
const KIND_MARK: u8 = 2;
/// Ends an append: the frames since the previous commit are one all-or-nothing group.
const KIND_COMMIT: u8 = 3;
/// The first frame of a segment whose appends end in commits (payload: the format version).
const KIND_SEGMENT: u8 = 4;
const SEGMENT_VERSION: &[u8] = b"2";

/// When appended frames reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sync {
    /// fsync after every append (the default: acknowledged means durable).
    #[default]
    Always,
    /// Leave it to the OS (faster; a power loss may lose the last seconds).
    Never,
}

/// How far the rows of a source are durable: every record before `offset` (in the decoded
/// input) is stored.
///
/// Two kinds: a plain mark (no `state`; one-shot ingest) only ever raises the offset of its key;
/// a checkpoint (with `state`; streaming sources) replaces what was stored under its key, so a
/// tailed file that was truncated can move back to 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMark {
    pub source_key: String,
    pub offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<serde_json::Value>,
}

/// One recovered frame.
#[derive(Debug)]
pub enum Frame {
    Batch(TableName, RecordBatch),
    Mark(SourceMark),
}

/// What replaying a segment found.
#[derive(Debug, Default)]
pub struct Replay {
    pub frames: Vec<Frame>,
    /// Bytes of valid frames.
    pub valid_len: u64,
    /// The reason replay stopped early, if it did (a torn last write: nothing valid follows).
    pub torn: Option<String>,
    /// Damaged stretches with valid frames after them, skipped (their rows are lost).
    pub damaged: Vec<Damage>,
    /// How many of `frames` precede the first damage (`None`: no damage).
    pub first_damage_frame: Option<usize>,
}

impl Replay {
    /// Records that bytes `start..end` are skipped as damage; `uncommitted` frames of the
    /// current append precede them (they still count toward where the damage falls).
    fn damage(&mut self, uncommitted: usize, start: usize, end: usize, reason: &str) {
        self.first_damage_frame
            .get_or_insert(self.frames.len() + uncommitted);
        self.damaged.push(Damage {
            offset: start as u64,
            len: (end - start) as u64,
            reason: format!("{reason} at byte {start}"),
        });
    }
}

/// Bytes of a segment that replay skipped because they are not valid frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub len: u64,
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes skipped: {}", self.len, self.reason)
    }
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// The sequence numbers of the segments in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// An open segment, appended to.
pub struct WalWriter {
    file: File,
    path: PathBuf,
    len: u64,
    sync: Sync,
    scratch: Vec<u8>,
    ipc_options: IpcWriteOptions,
    /// Takes no more appends: see [`WalWriter::is_sealed`].
    sealed: bool,
    /// The length with no append in it (the segment header).
    base_len: u64,
}

impl WalWriter {
    /// Opens (or creates) a segment for appending after its last valid frame.
    pub fn open(path: PathBuf, valid_len: u64, sync: Sync) -> Result<WalWriter, StoreError> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        file.set_len(valid_len)
            .map_err(|e| StoreError::io(&path, e))?;
        file.seek(SeekFrom::Start(valid_len))
            .map_err(|e| StoreError::io(&path, e))?;
        let mut len = valid_len;
        if valid_len == 0 {
            let mut header = Vec::new();
            frame(&mut header, KIND_SEGMENT, 0, SEGMENT_VERSION);
            file.write_all(&header)
                .and_then(|()| file.sync_data())
                .map_err(|e| StoreError::io(&path, e))?;
            len = header.len() as u64;
            // A new file must survive a crash too: sync its directory entry.
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(WalWriter {
            file,
            path,
            len,
            base_len: len,
            sync,
            scratch: Vec::new(),
            sealed: false,
            // LZ4: the log rows are repetitive text; compressing costs less than writing them.
            ipc_options: IpcWriteOptions::default()
                .try_with_compression(Some(CompressionType::LZ4_FRAME))?,
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no append has been written (the segment holds at most its header).
    pub fn is_empty(&self) -> bool {
        self.len <= self.base_len
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends batches and their marks as one write, then syncs per the policy.
    pub fn append(
        &mut self,
        batches: &[(TableName, RecordBatch)],
        marks: &[SourceMark],
    ) -> Result<(), StoreError> {
        self.scratch.clear();
        for (table, batch) in batches {
            let mut payload = Vec::with_capacity(batch.get_array_memory_size() / 8 + 1024);
            {
                let mut w = StreamWriter::try_new_with_options(
                    &mut payload,
                    &batch.schema(),
                    self.ipc_options.clone(),
                )?;
                w.write(batch)?;
                w.finish()?;
            }
            frame(&mut self.scratch, KIND_BATCH, *table as u8, &payload);
        }
        for m in marks {
            let payload = serde_json::to_vec(m).expect("mark serialises");
            frame(&mut self.scratch, KIND_MARK, 0, &payload);
        }
        frame(&mut self.scratch, KIND_COMMIT, 0, &[]);
        if self.sealed {
            return Err(StoreError::io(
                &self.path,
                io::Error::other("the segment is sealed (a failed append or flush); flush first"),
            ));
        }
        let written = self.file.write_all(&self.scratch).and_then(|()| {
            if self.sync == Sync::Always {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Not acknowledged, so not kept: cut back to the last acknowledged frame. After a
            // failed fsync the kernel may have dropped the dirty pages, so the bytes are not
            // trusted either way; what was acknowledged before was synced then.
            let undone = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.seek(SeekFrom::Start(self.len)).map(drop));
            if undone.is_err() {
                self.sealed = true;
            }
            return Err(StoreError::io(&self.path, e));
        }
        self.len += self.scratch.len() as u64;
        Ok(())
    }

    /// Whether the segment takes no more appends: a failed append could not be undone, or the
    /// store sealed it ([`WalWriter::seal`]).
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Takes no more appends (the store's flush of this segment has begun to be recorded).
    pub fn seal(&mut self) {
        self.sealed = true;
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, table: u8, payload: &[u8]) {
    out.extend_from_slice(MAGIC);
    out.push(kind);
    out.push(table);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn table_from_u8(v: u8) -> Option<TableName> {
    TableName::ALL.into_iter().find(|t| *t as u8 == v)
}

/// Reads every valid frame of a segment.
///
/// A segment is read whole into memory (at most `wal_segment_bytes`, and recovery holds its
/// decoded rows anyway). Frames are returned in appends: those after the last commit are an
/// append cut short, never acknowledged, and left out ([`Replay::torn`] says so). Damage is told
/// apart from a torn tail by what follows it: if a valid frame (magic, plausible length,
/// matching checksum) comes later, the bytes in between are reported in [`Replay::damaged`] and
/// replay goes on after them (a damaged commit joins its append to the next); if none does,
/// the rest is a torn last write. A frame whose checksum matches but whose payload does not
/// decode (an unknown table or kind, a bad batch or mark) is damage too, skipped whole. A
/// length field is never trusted beyond the bytes the file has, so a corrupt header cannot make
/// replay allocate more than the file's size.
pub fn replay(path: &Path) -> Result<Replay, StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let mut out = Replay::default();
    // Segments written with commits say so in their first frame; older ones apply each frame.
    let grouped = frame_at(&bytes, 0).is_ok_and(|(kind, _, _)| kind == KIND_SEGMENT);
    let mut uncommitted: Vec<Frame> = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let (kind, table, payload) = match frame_at(&bytes, pos) {
            Ok(f) => f,
            Err(reason) => match next_frame(&bytes, pos + 1) {
                Some(next) => {
                    out.damage(uncommitted.len(), pos, next, &reason);
                    pos = next;
                    continue;
                }
                None => {
                    out.torn = Some(format!("{reason} at byte {pos}"));
                    break;
                }
            },
        };
        let end = pos + HEADER + payload.len();
        match kind {
            KIND_SEGMENT => {}
            KIND_COMMIT if payload.is_empty() => out.frames.append(&mut uncommitted),
            _ => match decode(kind, table, payload) {
                Ok(frames) if grouped => uncommitted.extend(frames),
                Ok(frames) => out.frames.extend(frames),
                Err(reason) => out.damage(uncommitted.len(), pos, end, &reason),
            },
        }
        pos = end;
        if uncommitted.is_empty() {
            out.valid_len = pos as u64;
        }
    }
    if !uncommitted.is_empty() {
        let cut = format!(
            "an append cut short ({} frames without their commit) at byte {}",
            uncommitted.len(),
            out.valid_len
        );
        out.torn = Some(match out.torn.take() {
            Some(t) => format!("{cut}, ending in {t}"),
            None => cut,
        });
    }
    Ok(out)
}

/// The frame that starts at `pos`: its kind, table and payload, or why there is none.
fn frame_at(bytes: &[u8], pos: usize) -> Result<(u8, u8, &[u8]), String> {
    let rest = &bytes[pos..];
    if rest.len() < HEADER {
        return Err(format!("short frame header ({} bytes)", rest.len()));
    }
    if &rest[..4] != MAGIC {
        return Err("bad frame magic".into());
    }
    let len = u32::from_le_bytes(rest[6..10].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[10..14].try_into().expect("4 bytes"));
    let Some(payload) = rest.get(HEADER..HEADER + len) else {
        return Err(format!(
            "short frame payload ({} of {len} bytes)",
            rest.len() - HEADER
        ));
    };
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok((rest[4], rest[5], payload))
}

/// The start of the next valid frame at or after `from`.
fn next_frame(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < bytes.len() {
        let found = memchr::memmem::find(&bytes[at..], MAGIC)?;
        at += found;
        if frame_at(bytes, at).is_ok() {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// A checksummed payload as frames, or why it is not one.
fn decode(kind: u8, table: u8, payload: &[u8]) -> Result<Vec<Frame>, String> {
    match kind {
        KIND_BATCH => {
            let table = table_from_u8(table).ok_or_else(|| format!("unknown table id {table}"))?;
            let reader =
                StreamReader::try_new(payload, None).map_err(|e| format!("bad batch: {e}"))?;
            // The header's table id is outside the checksum: a batch must also have its table's
            // columns, or a flipped id would file rows under another table.
            let expected = table.schema();
            let names = |s: &arrow::datatypes::Schema| {
                s.fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect::<Vec<_>>()
            };
            if names(&reader.schema()) != names(&expected) {
                return Err(format!(
                    "a batch whose columns are not those of table {}",
                    table.as_str()
                ));
            }
            reader
                .map(|b| b.map(|b| Frame::Batch(table, b)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("bad batch: {e}"))
        }
        KIND_MARK => serde_json::from_slice::<SourceMark>(payload)
            .map(|m| vec![Frame::Mark(m)])
            .map_err(|e| format!("bad source mark: {e}")),
        KIND_COMMIT => Err("a commit with a payload".into()),
        other => Err(format!("unknown frame kind {other}")),
    }
}

/// fsyncs a directory so that renames and new files in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::DataType;

    use super::*;

    /// Three rows of the metrics table, their numbers from `n`.
    fn batch(n: i64) -> RecordBatch {
        let schema = TableName::Metrics.schema();
        let columns: Vec<arrow::array::ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> arrow::array::ArrayRef {
                match f.data_type() {
                    DataType::Timestamp(..) => {
                        Arc::new(TimestampMillisecondArray::from(vec![n; 3]).with_timezone("UTC"))
                    }
                    DataType::Int64 => Arc::new(Int64Array::from(vec![n, n + 1, n + 2])),
                    DataType::Float64 => Arc::new(Float64Array::from(vec![n as f64; 3])),
                    _ => Arc::new(StringArray::from(vec!["a", "b", "c"])),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    /// Appends `n` batches, each with its mark; returns the segment length.
    fn write_marked(path: &Path, n: u64) -> u64 {
        let mut w = WalWriter::open(path.to_owned(), 0, Sync::Always).unwrap();
        for i in 0..n {
            let mark = SourceMark {
                source_key: "k".into(),
                offset: (i + 1) * 100,
                state: None,
            };
            w.append(
                &[(TableName::Metrics, batch(i as i64))],
                std::slice::from_ref(&mark),
            )
            .unwrap();
        }
        w.len()
    }

    fn write_three(path: &Path) -> u64 {
        write_marked(path, 3)
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let len = write_three(&path);
        let r = replay(&path).unwrap();
        assert_eq!(r.valid_len, len);
        assert!(r.torn.is_none());
        assert_eq!(r.frames.len(), 6);
        match &r.frames[4] {
            Frame::Batch(t, b) => {
                assert_eq!(*t, TableName::Metrics);
                assert_eq!(b, &batch(2));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(list_segments(dir.path()).unwrap(), vec![1]);
    }

    /// A crash in the middle of the last append leaves a torn frame: everything before it
    /// comes back, and appending afterwards continues from the valid prefix.
    #[test]
    fn torn_last_write_recovers_everything_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 7);
        let full = write_three(&path);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, full);
        // Cut the file at every byte: replay always yields a prefix of whole frames.
        let mut seen_partial = 0;
        for cut in 1..bytes.len() {
            fs::write(&path, &bytes[..cut]).unwrap();
            let r = replay(&path).unwrap();
            // Never a frame that was not completely written; always a prefix of the frames.
            assert!(r.valid_len <= cut as u64);
            assert!(r.torn.is_some() || r.valid_len == cut as u64);
            if r.frames.len() == 4 {
                seen_partial += 1;
            }
        }
        assert!(seen_partial > 0);
        // Cut inside the third append: two batches and two marks survive.
        let third_start = write_marked(&segment_path(dir.path(), 8), 2);
        fs::write(&path, &bytes[..third_start as usize + 20]).unwrap();
        let r = replay(&path).unwrap();
        assert_eq!(r.frames.len(), 4);
        assert_eq!(r.valid_len, third_start);
        assert!(r.torn.unwrap().contains("short frame"));
        // Reopen for append: the torn tail is cut off and new frames follow valid ones.
        let mut w = WalWriter::open(path.clone(), r.valid_len, Sync::Always).unwrap();
        w.append(&[(TableName::Metrics, batch(9))], &[]).unwrap();
        let r = replay(&path).unwrap();
        assert!(r.torn.is_none());
        assert_eq!(r.frames.len(), 5);
    }

    #[test]
    fn flipped_bit_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        write_three(&path);
        let good = fs::read(&path).unwrap();
        // In the third append's mark (just before its 14-byte commit): that frame is damage,
        // the commit after it still closes the append, so the five other frames survive.
        let mut bytes = good.clone();
        bytes[good.len() - HEADER - 5] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let r = replay(&path).unwrap();
        assert_eq!(r.frames.len(), 5);
        assert!(r.damaged[0].reason.contains("checksum"), "{:?}", r.damaged);
        assert!(r.torn.is_none());
        // In the last commit: the third append is cut short, as if the write had been torn.
        let mut bytes = good.clone();
        bytes[good.len() - 5] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let r = replay(&path).unwrap();
        assert_eq!(r.frames.len(), 4);
        assert!(r.torn.unwrap().contains("without their commit"));
    }

    /// A process killed inside its `write` leaves a short write: whole frames of the append
    /// are there, its commit is not. None of the append is replayed (its rows would come back
    /// without their source mark, and the source would send them again).
    #[test]
    fn an_append_without_its_commit_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let two = write_marked(&path, 2) as usize;
        let three = write_three(&segment_path(dir.path(), 2)) as usize;
        let bytes = fs::read(segment_path(dir.path(), 2)).unwrap();
        // The third append's batch frame is whole, its mark and commit are not.
        let batch_len =
            HEADER + u32::from_le_bytes(bytes[two + 6..two + 10].try_into().unwrap()) as usize;
        for cut in [two + batch_len, two + batch_len + 3, three - 1] {
            fs::write(&path, &bytes[..cut]).unwrap();
            let r = replay(&path).unwrap();
            assert_eq!(r.frames.len(), 4, "cut at {cut}");
            assert_eq!(r.valid_len, two as u64);
            assert!(r.torn.unwrap().contains("cut short"));
        }
    }
}

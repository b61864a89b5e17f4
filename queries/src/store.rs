//! The write path: [`Store`] takes batches of rows, makes them durable in the WAL, keeps them in
//! memory, and flushes them to Parquet segments; a per-source ledger remembers how far each
//! input is stored so that re-ingesting it adds nothing twice.
//!
//! Invariants:
//! - `append` returns after the WAL holds the rows (fsynced by default): acknowledged rows
//!   survive a crash.
//! - A WAL segment is deleted only after its rows are durable in Parquet and the ledger that
//!   covers them is durable; so at any crash point every acknowledged row is in exactly one of
//!   {WAL, Parquet} — or in both only for the segment being flushed, whose partial Parquet
//!   output (`w<seq>-*`) recovery deletes before flushing the segment again.
//! - One process owns a data directory at a time (an exclusive lock on `<data>/.lock`).
//! - Opening never fails on damage it can work around, and never deletes what it cannot use:
//!   WAL frames around damaged bytes are recovered (the segment copied to `quarantine/`), a
//!   ledger that does not parse is replaced by its backup, a Parquet segment whose footer does
//!   not read is moved to `quarantine/`; [`Recovery`] lists each case.
//!
//! Ledger semantics: a source key (path + content fingerprint, chosen by the caller) maps to the
//! byte offset in that source below which every record is stored. Marks travel in the WAL with
//! the rows they cover, so the ledger is rebuilt exactly on recovery.
//!
//! Re-readable sources ([`Store::append_replayable`], a file given to `ingest`) skip the WAL:
//! their rows wait in memory and their marks in `pending`, and both become durable together at
//! the next flush (Parquet first, then the ledger that moves the marks). A crash before that
//! loses rows whose marks never moved, so reading the source again from its ledger offset stores
//! them exactly once. For this the ledger records the last flushed WAL sequence
//! (`flushed_through`): recovery deletes Parquet output of any later sequence (an unfinished
//! flush) and never touches output at or below it, which may hold rows the WAL never had.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::quarantine::{self, Quarantined};
use crate::schema::TableName;
use crate::segments::{SegmentFile, Segments};
use crate::wal::{self, Frame, SourceMark, Sync, WalWriter};

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub sync: Sync,
    /// Flush memory to Parquet once this many rows are held.
    pub flush_rows: usize,
    /// ... or once the WAL segment reaches this size.
    pub wal_segment_bytes: u64,
    /// ... or once the rows held in memory take this many bytes (Arrow buffers).
    pub flush_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync: Sync::Always,
            flush_rows: 1 << 19,
            wal_segment_bytes: 512 << 20,
            flush_bytes: usize::MAX,
        }
    }
}

/// What opening the store found and repaired.
#[derive(Debug, Default, Clone)]
pub struct Recovery {
    pub wal_segments: usize,
    pub rows: usize,
    /// Torn tails found (a crash in the middle of a write), with where.
    pub torn: Vec<String>,
    /// Damage found and worked around, each with where and what it cost (WAL bytes skipped, a
    /// ledger read from its backup, source marks not applied): for the operator to read.
    pub damage: Vec<String>,
    /// Files moved or copied into `<data>/quarantine/` by this open.
    pub quarantined: Vec<Quarantined>,
}

impl Recovery {
    /// What the operator should read, a line each: rows recovered, torn tails, damage worked
    /// around and files quarantined. Empty after a clean shutdown.
    pub fn report(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.wal_segments > 0 {
            lines.push(format!(
                "recovered {} rows from {} write-ahead log segment(s) of an interrupted run",
                self.rows, self.wal_segments
            ));
        }
        lines.extend(
            self.torn
                .iter()
                .map(|t| format!("recovered up to a torn write: {t}")),
        );
        lines.extend(self.damage.iter().map(|d| format!("damage: {d}")));
        lines.extend(self.quarantined.iter().map(|q| format!("quarantined: {q}")));
        lines
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    version: u32,
    /// Counts saves; of the ledger and its backup the higher generation is the newer.
    #[serde(default)]
    generation: u64,
    sources: BTreeMap<String, u64>,
    /// Streaming sources' checkpoints: key → offset and source-defined state (last write wins).
    #[serde(default)]
    checkpoints: BTreeMap<String, StoredCheckpoint>,
    /// The WAL sequence whose flush this ledger completes: Parquet output named for it or an
    /// earlier sequence is whole and covered by these marks. `None` in ledgers written before
    /// re-readable sources skipped the WAL (every such flush had its rows in the WAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flushed_through: Option<u64>,
}

/// A streaming source's checkpoint as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    pub offset: u64,
    pub state: serde_json::Value,
}

impl Ledger {
    fn path(root: &Path) -> PathBuf {
        root.join("sources.json")
    }

    fn backup_path(root: &Path) -> PathBuf {
        root.join("sources.backup.json")
    }

    /// The ledger, from `sources.json` or, where that is missing or damaged, from its backup
    /// (written after it by every save, so the two differ only while a save is under way). A
    /// damaged copy is quarantined. With neither readable the store still opens: with an empty
    /// ledger whose `flushed_through` covers every segment on disk (so no stored row is
    /// removed), and `recovery.damage` says that re-read file sources may be stored twice.
    fn load(
        root: &Path,
        segments: &Segments,
        recovery: &mut Recovery,
    ) -> Result<Ledger, StoreError> {
        let primary = Ledger::read(&Ledger::path(root))?;
        let backup = Ledger::read(&Ledger::backup_path(root))?;
        let mut quarantine = |path: PathBuf, reason: &str| -> Result<(), StoreError> {
            let q = quarantine::move_in(root, &path, &format!("unreadable ledger: {reason}"))?;
            recovery.quarantined.push(q);
            Ok(())
        };
        let chosen = match (primary, backup) {
            (Ok(Some(a)), Ok(Some(b))) => Some(if b.generation > a.generation { b } else { a }),
            (Ok(a), Ok(b)) => a.or(b),
            (Ok(a), Err(reason)) => {
                quarantine(Ledger::backup_path(root), &reason)?;
                a
            }
            (Err(reason), Ok(b)) => {
                quarantine(Ledger::path(root), &reason)?;
                if b.is_some() {
                    recovery.damage.push(format!(
                        "{}: {reason}; read its backup {} instead",
                        Ledger::path(root).display(),
                        Ledger::backup_path(root).display()
                    ));
                }
                b
            }
            (Err(a), Err(b)) => {
                quarantine(Ledger::path(root), &a)?;
                quarantine(Ledger::backup_path(root), &b)?;
                None
            }
        };
        if let Some(ledger) = chosen {
            return Ok(ledger);
        }
        let newest = TableName::ALL
            .into_iter()
            .map(|t| segments.list(t))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .filter_map(|f| f.wal_seqs().map(|(_, last)| last))
            .max();
        if !recovery.quarantined.is_empty() {
            recovery.damage.push(format!(
                "{}: the source ledger and its backup are unreadable; started with an empty \
                 ledger that keeps every stored segment: files ingested again are read from \
                 their start, so their rows may be stored twice",
                Ledger::path(root).display()
            ));
        }
        Ok(Ledger {
            version: 1,
            flushed_through: newest,
            ..Default::default()
        })
    }

    /// One copy of the ledger: `Ok(None)` if absent, `Err(reason)` if it does not parse.
    fn read(path: &Path) -> Result<Result<Option<Ledger>, String>, StoreError> {
        match fs::read(path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(None)),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    fn apply(&mut self, mark: &SourceMark) {
        match &mark.state {
            Some(state) => {
                self.checkpoints.insert(
                    mark.source_key.clone(),
                    StoredCheckpoint {
                        offset: mark.offset,
                        state: state.clone(),
                    },
                );
            }
            None => {
                let e = self.sources.entry(mark.source_key.clone()).or_default();
                *e = (*e).max(mark.offset);
            }
        }
    }

    /// Saves the ledger and then its backup, each written whole and renamed into place.
    fn save(&mut self, root: &Path) -> Result<(), StoreError> {
        self.generation += 1;
        let bytes = serde_json::to_vec_pretty(self).expect("ledger serialises");
        for path in [Ledger::path(root), Ledger::backup_path(root)] {
            let tmp = path.with_extension("json.tmp");
            let mut f = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
            f.write_all(&bytes).map_err(|e| StoreError::io(&tmp, e))?;
            f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
            fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))?;
        }
        wal::sync_dir(root)
    }
}

/// The writable store of one data directory.
pub struct Store {
    root: PathBuf,
    wal_dir: PathBuf,
    opts: StoreOptions,
    segments: Segments,
    ledger: Ledger,
    /// Marks not yet in the saved ledger (their rows are in the WAL only).
    pending: HashMap<String, u64>,
    pending_checkpoints: BTreeMap<String, StoredCheckpoint>,
    wal: WalWriter,
    seq: u64,
    mem: BTreeMap<TableName, Vec<RecordBatch>>,
    mem_rows: usize,
    /// Arrow memory of `mem`.
    mem_bytes: usize,
    flushes: u64,
    /// The last flush's error, until a flush succeeds.
    flush_failure: Option<String>,
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) a data directory, recovering what a previous run left in the
    /// WAL into Parquet.
    pub fn open(root: &Path, opts: StoreOptions) -> Result<(Store, Recovery), StoreError> {
        fs::create_dir_all(root).map_err(|e| StoreError::io(root, e))?;
        let lock_path = root.join(".lock");
        let lock = File::create(&lock_path).map_err(|e| StoreError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(root.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(&lock_path, e)),
        }
        let wal_dir = root.join("wal");
        fs::create_dir_all(&wal_dir).map_err(|e| StoreError::io(&wal_dir, e))?;
        let segments = Segments::open(root)?;
        segments.finish_interrupted_compactions()?;
        let mut recovery = Recovery::default();
        let mut ledger = Ledger::load(root, &segments, &mut recovery)?;
        let seqs = wal::list_segments(&wal_dir)?;
        // Once WAL damage has cost rows, later source marks are not applied: a source that can
        // be read again then re-reads from before the damage (rows may be stored twice, but
        // none that it can still supply is lost).
        let mut marks_held_back = 0usize;
        let mut damaged = false;
        // Output of a flush the ledger does not cover: its marks never moved, so what it holds
        // is either in the WAL (rewritten below) or re-read from its source. A ledger from before
        // `flushed_through` covers every flush older than the oldest WAL segment (a segment is
        // removed only after its flush).
        if let Some(done) = ledger
            .flushed_through
            .or_else(|| seqs.first().map(|s| s - 1))
        {
            segments.delete_flushed_after(done)?;
        }
        for &seq in &seqs {
            let path = wal::segment_path(&wal_dir, seq);
            if ledger.flushed_through.is_some_and(|done| seq <= done) {
                // Flushed and covered by the ledger; the crash came before its removal.
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                continue;
            }
            let replay = wal::replay(&path)?;
            if let Some(t) = &replay.torn {
                recovery.torn.push(format!("{}: {t}", path.display()));
            }
            if !replay.damaged.is_empty() {
                let what: Vec<String> = replay.damaged.iter().map(|d| d.to_string()).collect();
                let q = quarantine::copy_in(
                    root,
                    &path,
                    &format!("damaged WAL segment: {}", what.join("; ")),
                )?;
                recovery.damage.push(format!(
                    "{}: {}; the frames around it were recovered and a copy is in {}",
                    path.display(),
                    what.join("; "),
                    q.kept_as
                ));
                recovery.quarantined.push(q);
            }
            let mut by_table: BTreeMap<TableName, Vec<RecordBatch>> = BTreeMap::new();
            let held_anything = !replay.frames.is_empty();
            for (i, frame) in replay.frames.into_iter().enumerate() {
                damaged |= replay.first_damage_frame.is_some_and(|d| i >= d);
                match frame {
                    Frame::Batch(t, b) => {
                        recovery.rows += b.num_rows();
                        by_table.entry(t).or_default().push(b);
                    }
                    Frame::Mark(_) if damaged => marks_held_back += 1,
                    Frame::Mark(m) => ledger.apply(&m),
                }
            }
            for (t, batches) in &by_table {
                segments.write(*t, batches, &format!("w{seq:020}"))?;
            }
            ledger.flushed_through = Some(seq);
            ledger.save(root)?;
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            // The empty segment a clean run leaves behind is not a recovery.
            if held_anything {
                recovery.wal_segments += 1;
            }
        }
        if !seqs.is_empty() {
            wal::sync_dir(&wal_dir)?;
        }
        if marks_held_back > 0 {
            recovery.damage.push(format!(
                "{marks_held_back} source marks after the damage were not applied: those sources \
                 are read again from before it"
            ));
        }
        // What a query would fail on: segments whose footer does not read.
        recovery
            .quarantined
            .extend(segments.quarantine_unreadable()?);
        // Past every WAL segment and every flushed one, so no flush reuses a file name.
        let seq = seqs
            .last()
            .copied()
            .max(ledger.flushed_through)
            .map_or(1, |s| s + 1);
        let wal = WalWriter::open(wal::segment_path(&wal_dir, seq), 0, opts.sync)?;
        Ok((
            Store {
                root: root.to_owned(),
                wal_dir,
                opts,
                segments,
                ledger,
                pending: HashMap::new(),
                pending_checkpoints: BTreeMap::new(),
                wal,
                seq,
                mem: BTreeMap::new(),
                mem_rows: 0,
                mem_bytes: 0,
                flushes: 0,
                flush_failure: None,
                _lock: lock,
            },
            recovery,
        ))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn segments(&self) -> &Segments {
        &self.segments
    }

    /// The offset below which every record of `source_key` is stored (0 if never seen).
    pub fn committed(&self, source_key: &str) -> u64 {
        let saved = self.ledger.sources.get(source_key).copied().unwrap_or(0);
        let pending = self.pending.get(source_key).copied().unwrap_or(0);
        saved.max(pending)
    }

    /// Streaming sources' checkpoints, as of the last append (durable in the WAL or ledger).
    pub fn checkpoints(&self) -> BTreeMap<String, StoredCheckpoint> {
        let mut all = self.ledger.checkpoints.clone();
        all.extend(
            self.pending_checkpoints
                .iter()
                .map(|(k, c)| (k.clone(), c.clone())),
        );
        all
    }

    /// Makes `batches` durable (with the source marks that cover them: `None`, `Some(mark)` or
    /// a list), then holds them in memory until the next flush.
    pub fn append(
        &mut self,
        batches: Vec<(TableName, RecordBatch)>,
        marks: impl IntoIterator<Item = SourceMark>,
    ) -> Result<(), StoreError> {
        let (batches, marks) = nonempty(batches, marks);
        if batches.is_empty() && marks.is_empty() {
            return Ok(());
        }
        if self.wal.is_sealed()
            || self.mem_rows >= self.opts.flush_rows.saturating_mul(2)
            || self.mem_bytes >= self.opts.flush_bytes.saturating_mul(2)
        {
            // The segment takes no more appends (a failed append could not be cut off it, or a
            // flush stopped after its ledger), or flushes have been failing
            // long enough that memory holds twice a flush: flush first, and refuse the append
            // (nothing of it written) while that fails.
            self.flush()?;
        }
        self.wal.append(&batches, &marks)?;
        // Durable from here on: a flush that fails now is not this append's failure (its rows
        // stay in the WAL and in memory; the next flush retries), so it is kept for the caller
        // to see in `flush_failure` rather than returned.
        if self.hold(batches, marks) {
            let _ = self.flush();
        }
        Ok(())
    }

    /// Why the last flush failed, if it did and none has succeeded since.
    pub fn flush_failure(&self) -> Option<&str> {
        self.flush_failure.as_deref()
    }

    /// Holds `batches` of a source that can be read again (a file) in memory until the next
    /// flush, without writing them to the WAL; `marks` say how far the source is read and move
    /// in the ledger only once the flush has made the rows durable. After a crash the rows are
    /// gone and [`Store::committed`] still says where they began, so the caller reads them
    /// again. Nothing is acknowledged before [`Store::flush`] returns.
    pub fn append_replayable(
        &mut self,
        batches: Vec<(TableName, RecordBatch)>,
        marks: impl IntoIterator<Item = SourceMark>,
    ) -> Result<(), StoreError> {
        let (batches, marks) = nonempty(batches, marks);
        if self.hold(batches, marks) {
            self.flush()?;
        }
        Ok(())
    }

    /// Keeps rows in memory and marks in `pending` until the next flush; says whether that is
    /// due (memory or the WAL segment is full).
    fn hold(&mut self, batches: Vec<(TableName, RecordBatch)>, marks: Vec<SourceMark>) -> bool {
        for m in marks {
            match m.state {
                Some(state) => {
                    self.pending_checkpoints.insert(
                        m.source_key,
                        StoredCheckpoint {
                            offset: m.offset,
                            state,
                        },
                    );
                }
                None => {
                    let e = self.pending.entry(m.source_key).or_default();
                    *e = (*e).max(m.offset);
                }
            }
        }
        for (t, b) in batches {
            self.mem_rows += b.num_rows();
            self.mem_bytes += b.get_array_memory_size();
            self.mem.entry(t).or_default().push(b);
        }
        self.mem_rows >= self.opts.flush_rows
            || self.mem_bytes >= self.opts.flush_bytes
            || self.wal.len() >= self.opts.wal_segment_bytes
    }

    /// How many flushes this store has done (the Parquet file list changes only then, and with
    /// compaction or retention).
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// Rows held in memory (in the WAL or re-readable from their source, not yet in Parquet),
    /// per table.
    pub fn unflushed(&self) -> &BTreeMap<TableName, Vec<RecordBatch>> {
        &self.mem
    }

    /// Writes what memory holds to Parquet, saves the ledger, and retires the WAL segment.
    pub fn flush(&mut self) -> Result<Vec<SegmentFile>, StoreError> {
        let result = self.flush_now();
        if let Err(e) = &result {
            self.flush_failure = Some(e.to_string());
        }
        result
    }

    fn flush_now(&mut self) -> Result<Vec<SegmentFile>, StoreError> {
        if self.wal.is_empty()
            && !self.wal.is_sealed()
            && self.mem.is_empty()
            && self.pending.is_empty()
            && self.pending_checkpoints.is_empty()
        {
            return Ok(Vec::new());
        }
        let stem = format!("w{:020}", self.seq);
        let written = self.write_tables(&stem)?;
        for (key, offset) in self.pending.drain() {
            self.ledger.apply(&SourceMark {
                source_key: key,
                offset,
                state: None,
            });
        }
        let checkpoints = std::mem::take(&mut self.pending_checkpoints);
        self.ledger.checkpoints.extend(checkpoints);
        self.ledger.flushed_through = Some(self.seq);
        // From here the ledger on disk may say this WAL segment is flushed, and recovery would
        // remove it unread: it takes no more appends. A failure below leaves it sealed, and
        // the next flush (which `append` starts first) redoes this one under the same names.
        let next = self.ledger.save(&self.root).and_then(|()| {
            WalWriter::open(
                wal::segment_path(&self.wal_dir, self.seq + 1),
                0,
                self.opts.sync,
            )
        });
        let next = match next {
            Ok(w) => w,
            Err(e) => {
                self.wal.seal();
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut self.wal, next);
        self.seq += 1;
        self.mem.clear();
        self.mem_rows = 0;
        self.mem_bytes = 0;
        self.flushes += 1;
        self.flush_failure = None;
        // Covered by the saved ledger: if this removal fails, the next open removes it.
        if fs::remove_file(old.path()).is_ok() {
            let _ = wal::sync_dir(&self.wal_dir);
        }
        Ok(written)
    }

    /// Writes each table memory holds as Parquet, the tables side by side (Parquet encoding is
    /// most of a flush's cost, and the last flush of a load has the machine to itself).
    fn write_tables(&self, stem: &str) -> Result<Vec<SegmentFile>, StoreError> {
        let segments = &self.segments;
        let results: Vec<Result<Vec<SegmentFile>, StoreError>> = std::thread::scope(|scope| {
            let writers: Vec<_> = self
                .mem
                .iter()
                .map(|(t, batches)| scope.spawn(move || segments.write(*t, batches, stem)))
                .collect();
            writers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut written = Vec::new();
        for r in results {
            written.extend(r?);
        }
        Ok(written)
    }

    /// Merges small files (a partition with at least `min_files`), after a flush.
    pub fn compact(&mut self, min_files: usize) -> Result<usize, StoreError> {
        self.flush()?;
        let mut n = 0;
        for t in TableName::ALL {
            n += self.segments.compact(t, min_files)?;
        }
        Ok(n)
    }

    /// Drops day partitions that end more than `days` days before `now_ms`.
    pub fn apply_retention(&mut self, now_ms: i64, days: u32) -> Result<usize, StoreError> {
        let today = now_ms.div_euclid(86_400_000);
        self.segments.drop_days_before(today - i64::from(days) + 1)
    }
}

/// An append's batches without the empty ones, and its marks as a list.
fn nonempty(
    batches: Vec<(TableName, RecordBatch)>,
    marks: impl IntoIterator<Item = SourceMark>,
) -> (Vec<(TableName, RecordBatch)>, Vec<SourceMark>) {
    let batches = batches
        .into_iter()
        .filter(|(_, b)| b.num_rows() > 0)
        .collect();
    (batches, marks.into_iter().collect())
}

/// Reads what the WAL of a data directory holds without taking the lock or changing anything
/// (for a query while another process writes). Stops at a torn tail.
pub fn read_unflushed(root: &Path) -> Result<BTreeMap<TableName, Vec<RecordBatch>>, StoreError> {
    let wal_dir = root.join("wal");
    let mut out: BTreeMap<TableName, Vec<RecordBatch>> = BTreeMap::new();
    if !wal_dir.exists() {
        return Ok(out);
    }
    for seq in wal::list_segments(&wal_dir)? {
        let path = wal::segment_path(&wal_dir, seq);
        let replay = match wal::replay(&path) {
            Ok(r) => r,
            // Retired between the listing and the read: its rows are in Parquet now.
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(e) => return Err(e),
        };
        for frame in replay.frames {
            if let Frame::Batch(t, b) = frame {
                out.entry(t).or_default().push(b);
            }
        }
    }
    Ok(out)
}

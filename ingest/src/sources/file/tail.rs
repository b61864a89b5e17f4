//! The tailer: what is known about every followed file, and the loop that finds files (glob
//! scan) and reads what they grew by (poll). Runs on its own thread; file I/O blocks.

use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use tunnelwatch_parsers::DecoderOptions;

use super::{FINGERPRINT_BYTES, ReadFrom};
use crate::pipeline::{Checkpoint, Delivery, Output, Shutdown, SourceContext, SourceStats, Stream};
use crate::sources::SourceError;

/// Bytes read per `read` call (and at most per delivery, plus a held partial line).
const CHUNK: usize = 256 << 10;
/// Reads per file per poll round, so one busy file does not starve the others.
const CHUNKS_PER_ROUND: usize = 16;
/// How far back from the end `read_from = "end"` looks for the last newline.
const END_SEARCH_BYTES: u64 = 64 << 10;
/// Numbers the streams of every file source in the process, so a stream id is never reused
/// (not even by a source restarted in the same process).
static STREAMS_OPENED: AtomicU64 = AtomicU64::new(0);

/// The validated configuration.
pub(super) struct Settings {
    pub include: Vec<String>,
    pub exclude: Vec<glob::Pattern>,
    pub read_from: ReadFrom,
    pub glob_interval: Duration,
    pub poll_interval: Duration,
    pub rotate_wait: Duration,
    pub max_record_bytes: usize,
    pub options: DecoderOptions,
}

/// Which file, independent of its name (device and inode on Unix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileId {
    dev: u64,
    ino: u64,
}

#[cfg(unix)]
fn file_id(meta: &Metadata, _path: &Path) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

/// Without inodes, a file is known by the path it was found at.
#[cfg(not(unix))]
fn file_id(_meta: &Metadata, path: &Path) -> FileId {
    FileId {
        dev: 0,
        ino: u64::from(crc32fast::hash(path.to_string_lossy().as_bytes())),
    }
}

/// Which content: CRC32 and length of the first line (with its newline), or of the first
/// [`FINGERPRINT_BYTES`] when the first line is longer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Fingerprint {
    crc: u32,
    len: u32,
}

impl Fingerprint {
    /// The fingerprint of a file at `path` starting with `head` (its first `FINGERPRINT_BYTES`
    /// or fewer), or `None` while the first line is incomplete and shorter than that.
    ///
    /// A file named after its tunnel (`vpn-…-203.0.113.10.log`, also once rotated to `….log.1`)
    /// mixes the tunnel into the fingerprint: tunnel activity lines name no tunnel, so the two
    /// tunnels of a connection may well start their files with the same line.
    fn of(head: &[u8], path: &Path) -> Option<Fingerprint> {
        let len = match head.iter().position(|&b| b == b'\n') {
            Some(nl) => nl + 1,
            None if head.len() >= FINGERPRINT_BYTES => FINGERPRINT_BYTES,
            None => return None,
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head[..len]);
        if let Some((vpn, ip)) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(tunnelwatch_parsers::identity::parse_tunnel_name)
        {
            crc.update(&[0]);
            crc.update(vpn.as_bytes());
            crc.update(b"_");
            crc.update(ip.as_bytes());
        }
        Some(Fingerprint {
            crc: crc.finalize(),
            len: len as u32,
        })
    }

    fn text(self) -> String {
        format!("{:08x}-{}", self.crc, self.len)
    }
}

/// One followed file.
struct Tailed {
    /// Where it was found; when this path names another file (or none), it was rotated away.
    path: PathBuf,
    id: FileId,
    file: File,
    /// `None` after a truncation until the new first line is complete.
    fingerprint: Option<Fingerprint>,
    /// Offset of the next byte to read.
    read: u64,
    /// Bytes read after the last newline: they end at `read`.
    pending: Vec<u8>,
    stream: Arc<Stream>,
    /// When the path was seen to name another file, or none.
    rotated_at: Option<Instant>,
    last_growth: Instant,
}

/// Why the loop stops early.
enum Halt {
    Shutdown,
    Failed(SourceError),
}

impl From<SourceError> for Halt {
    fn from(e: SourceError) -> Halt {
        Halt::Failed(e)
    }
}

enum Polled {
    /// Read to the end of what is there.
    Idle,
    /// Stopped reading after `CHUNKS_PER_ROUND`: more is waiting.
    More,
    /// Rotated away and read to its end: its stream ended, close it.
    Finished,
}

pub(super) struct Tailer {
    name: String,
    settings: Arc<Settings>,
    out: Output,
    stats: Arc<SourceStats>,
    /// Offset delivered per checkpoint key (content): from the stored checkpoints, then as read.
    known: HashMap<String, u64>,
    files: Vec<Tailed>,
    /// Files closed after being rotated away, with the size and modification time they had:
    /// not opened again while both stay the same.
    finished: HashMap<FileId, (u64, Option<SystemTime>)>,
    first_scan: bool,
}

impl Tailer {
    pub(super) fn new(cx: &SourceContext, settings: Arc<Settings>) -> Tailer {
        let prefix = key_prefix(&cx.name);
        let known = cx
            .checkpoints
            .with_prefix(&prefix)
            .map(|c| (c.key.clone(), c.offset))
            .collect();
        Tailer {
            name: cx.name.clone(),
            settings,
            out: cx.out.clone(),
            stats: cx.stats.clone(),
            known,
            files: Vec::new(),
            finished: HashMap::new(),
            first_scan: true,
        }
    }

    /// Scans and polls until `stop` fires (or its sender is dropped) or `shutdown` is set.
    pub(super) fn run(
        mut self,
        stop: &Receiver<()>,
        shutdown: &Shutdown,
    ) -> Result<(), SourceError> {
        let result = self.follow(stop, shutdown);
        self.stats
            .open
            .fetch_sub(self.files.len() as u64, Ordering::Relaxed);
        match result {
            Ok(()) | Err(Halt::Shutdown) => Ok(()),
            Err(Halt::Failed(e)) => Err(e),
        }
    }

    fn follow(&mut self, stop: &Receiver<()>, shutdown: &Shutdown) -> Result<(), Halt> {
        let mut next_scan = Instant::now();
        loop {
            if shutdown.is_set() {
                return Ok(());
            }
            if Instant::now() >= next_scan {
                self.scan(shutdown)?;
                next_scan = Instant::now() + self.settings.glob_interval;
            }
            let busy = self.poll_all(shutdown)?;
            let wait = if busy {
                Duration::ZERO
            } else {
                self.settings
                    .poll_interval
                    .min(next_scan.saturating_duration_since(Instant::now()))
            };
            match stop.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Expands the patterns and opens the files not followed yet.
    fn scan(&mut self, shutdown: &Shutdown) -> Result<(), Halt> {
        let settings = self.settings.clone();
        let mut seen = HashSet::new();
        let followed: HashSet<FileId> = self.files.iter().map(|f| f.id).collect();
        for pattern in &settings.include {
            // Patterns were validated when the source was built.
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for entry in paths {
                let path = match entry {
                    Ok(p) => p,
                    Err(_) => {
                        // A directory on the way could not be read.
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                if is_gzip_name(&path) || settings.exclude.iter().any(|p| p.matches_path(&path)) {
                    continue;
                }
                // Vanished since the listing, or a dangling symlink.
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let id = file_id(&meta, &path);
                if !seen.insert(id) || followed.contains(&id) || !self.is_new(id, &meta) {
                    continue;
                }
                self.open(path, shutdown)?;
            }
        }
        self.finished.retain(|id, _| seen.contains(id));
        self.first_scan = false;
        Ok(())
    }

    fn is_new(&self, id: FileId, meta: &Metadata) -> bool {
        !self.files.iter().any(|f| f.id == id)
            && self.finished.get(&id) != Some(&(meta.len(), meta.modified().ok()))
    }

    /// Opens a file found by the scan and decides where to start in it.
    fn open(&mut self, path: PathBuf, shutdown: &Shutdown) -> Result<(), Halt> {
        let opened = File::open(&path).and_then(|mut file| {
            let meta = file.metadata()?;
            let head = read_head(&mut file)?;
            Ok((file, meta, head))
        });
        let (mut file, meta, head) = match opened {
            Ok(o) => o,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
        };
        // The path may have been replaced between the scan's stat and the open.
        let id = file_id(&meta, &path);
        if !self.is_new(id, &meta) {
            return Ok(());
        }
        if head.starts_with(&[0x1f, 0x8b]) {
            self.finished.insert(id, (meta.len(), meta.modified().ok()));
            return Ok(());
        }
        let Some(fingerprint) = Fingerprint::of(&head, &path) else {
            // The first line is not complete yet: try again at the next scan.
            return Ok(());
        };
        if self
            .files
            .iter()
            .any(|f| f.fingerprint == Some(fingerprint))
        {
            // A copy of a file being followed (copytruncate before the truncation was seen):
            // taken up, from where the original was left, once the original no longer holds
            // this content.
            return Ok(());
        }
        let key = self.key(fingerprint);
        let size = meta.len();
        let (start, announce) = match self.known.get(&key) {
            Some(&offset) if offset <= size => (offset, false),
            // Same first line but shorter than what was read: rewritten.
            Some(_) => (0, false),
            None if self.first_scan && self.settings.read_from == ReadFrom::End => {
                match end_start(&mut file, size) {
                    Ok(start) => (start, true),
                    Err(_) => {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                }
            }
            None => (0, false),
        };
        let stream = self.new_stream(&path);
        let tailed = Tailed {
            path,
            id,
            file,
            fingerprint: Some(fingerprint),
            read: start,
            pending: Vec::new(),
            stream,
            rotated_at: None,
            last_growth: Instant::now(),
        };
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        let announce = announce.then(|| {
            Delivery::new(tailed.stream.clone(), Vec::new()).with_checkpoint(self.checkpoint(
                &tailed,
                fingerprint,
                start,
            ))
        });
        self.files.push(tailed);
        if let Some(d) = announce {
            // Skipping the old lines is remembered, so a restart does not read them either.
            self.send(shutdown, d)?;
            self.known.insert(key, start);
        }
        Ok(())
    }

    /// Polls every followed file once; returns whether one has more to read right away.
    fn poll_all(&mut self, shutdown: &Shutdown) -> Result<bool, Halt> {
        let mut busy = false;
        let mut files = std::mem::take(&mut self.files).into_iter();
        let mut kept = Vec::with_capacity(files.len());
        while let Some(mut f) = files.next() {
            let polled = if shutdown.is_set() {
                Err(Halt::Shutdown)
            } else {
                self.poll(&mut f, shutdown)
            };
            match polled {
                Ok(Polled::Idle) => kept.push(f),
                Ok(Polled::More) => {
                    busy = true;
                    kept.push(f);
                }
                Ok(Polled::Finished) => {
                    self.stats.open.fetch_sub(1, Ordering::Relaxed);
                }
                Err(halt) => {
                    kept.push(f);
                    kept.extend(files);
                    self.files = kept;
                    return Err(halt);
                }
            }
        }
        self.files = kept;
        Ok(busy)
    }

    /// Checks one file for truncation and rotation, and hands on what it grew by.
    fn poll(&mut self, f: &mut Tailed, shutdown: &Shutdown) -> Result<Polled, Halt> {
        let size = match f.file.metadata() {
            Ok(m) => m.len(),
            Err(_) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                return Ok(Polled::Idle);
            }
        };
        if f.rotated_at.is_none() && !path_names(&f.path, f.id) {
            f.rotated_at = Some(Instant::now());
        }
        let rewritten = size > f.read
            && f.fingerprint.is_some()
            && read_head(&mut f.file)
                .map(|head| Fingerprint::of(&head, &f.path) != f.fingerprint)
                .unwrap_or(false);
        if size < f.read || rewritten {
            // Truncated (copytruncate, `> file`) or rewritten: the old content's stream ends
            // (without its partial last line, which a copy holds whole); the new content is
            // read from 0.
            self.send(shutdown, Delivery::new(f.stream.clone(), Vec::new()).end())?;
            f.stream = self.new_stream(&f.path);
            f.fingerprint = None;
            f.read = 0;
            f.pending.clear();
        }
        let fingerprint = match f.fingerprint {
            Some(fp) => fp,
            None => match read_head(&mut f.file).map(|head| Fingerprint::of(&head, &f.path)) {
                Ok(Some(fp)) => {
                    f.fingerprint = Some(fp);
                    fp
                }
                Ok(None) => {
                    // Nothing delivered on this stream yet: a file that is gone can be dropped.
                    return Ok(if self.rotate_wait_over(f) {
                        Polled::Finished
                    } else {
                        Polled::Idle
                    });
                }
                Err(_) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    return Ok(Polled::Idle);
                }
            },
        };

        let mut eof = false;
        if size > f.read {
            if f.file.seek(SeekFrom::Start(f.read)).is_err() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                return Ok(Polled::Idle);
            }
            let mut buf = vec![0; CHUNK];
            for _ in 0..CHUNKS_PER_ROUND {
                let n = match read_some(&mut f.file, &mut buf) {
                    Ok(n) => n,
                    Err(_) => {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        return Ok(Polled::Idle);
                    }
                };
                if n == 0 {
                    eof = true;
                    break;
                }
                f.read += n as u64;
                f.last_growth = Instant::now();
                f.pending.extend_from_slice(&buf[..n]);
                self.deliver_lines(f, fingerprint, shutdown)?;
                if shutdown.is_set() {
                    return Err(Halt::Shutdown);
                }
            }
        } else {
            eof = true;
        }
        if !eof {
            return Ok(Polled::More);
        }
        if !self.rotate_wait_over(f) {
            return Ok(Polled::Idle);
        }
        // Rotated away and read to its end: the partial last line goes too, and the stream ends.
        let bytes = std::mem::take(&mut f.pending);
        let d = Delivery::new(f.stream.clone(), bytes)
            .end()
            .with_checkpoint(self.checkpoint(f, fingerprint, f.read));
        self.send(shutdown, d)?;
        self.known.insert(self.key(fingerprint), f.read);
        if let Ok(meta) = f.file.metadata() {
            self.finished
                .insert(f.id, (meta.len(), meta.modified().ok()));
        }
        Ok(Polled::Finished)
    }

    fn rotate_wait_over(&self, f: &Tailed) -> bool {
        f.rotated_at
            .is_some_and(|at| at.max(f.last_growth).elapsed() >= self.settings.rotate_wait)
    }

    /// Hands on `f.pending` up to its last newline (all of it when a line outgrows
    /// `max_record_bytes`: the decoder turns it into a reject).
    fn deliver_lines(
        &mut self,
        f: &mut Tailed,
        fingerprint: Fingerprint,
        shutdown: &Shutdown,
    ) -> Result<(), Halt> {
        let cut = match f.pending.iter().rposition(|&b| b == b'\n') {
            Some(nl) => nl + 1,
            None if f.pending.len() > self.settings.max_record_bytes => f.pending.len(),
            None => return Ok(()),
        };
        let rest = f.pending.split_off(cut);
        let bytes = std::mem::replace(&mut f.pending, rest);
        let offset = f.read - f.pending.len() as u64;
        let d = Delivery::new(f.stream.clone(), bytes).with_checkpoint(self.checkpoint(
            f,
            fingerprint,
            offset,
        ));
        self.send(shutdown, d)?;
        self.known.insert(self.key(fingerprint), offset);
        Ok(())
    }

    /// Sends, waiting for budget; gives up when shutdown comes first (the bytes are read again
    /// after the restart, since their checkpoint was not stored).
    fn send(&self, shutdown: &Shutdown, d: Delivery) -> Result<(), Halt> {
        futures::executor::block_on(async {
            tokio::select! {
                biased;
                sent = self.out.send(d) => sent.map_err(|e| Halt::Failed(e.into())),
                _ = shutdown.wait() => Err(Halt::Shutdown),
            }
        })
    }

    fn key(&self, fingerprint: Fingerprint) -> String {
        format!("{}{}", key_prefix(&self.name), fingerprint.text())
    }

    fn checkpoint(&self, f: &Tailed, fingerprint: Fingerprint, offset: u64) -> Checkpoint {
        Checkpoint {
            key: self.key(fingerprint),
            offset,
            state: serde_json::json!({
                "path": f.path.display().to_string(),
                "device": f.id.dev,
                "inode": f.id.ino,
                "fingerprint": fingerprint.text(),
            }),
        }
    }

    fn new_stream(&self, path: &Path) -> Arc<Stream> {
        let n = STREAMS_OPENED.fetch_add(1, Ordering::Relaxed);
        Arc::new(Stream {
            id: format!("{}:{}#{n}", self.name, path.display()),
            source: path.display().to_string(),
            options: self.settings.options.clone(),
        })
    }
}

fn key_prefix(source_name: &str) -> String {
    format!("file:{source_name}:")
}

/// Whether `path` still names the file `id`.
fn path_names(path: &Path, id: FileId) -> bool {
    std::fs::metadata(path).is_ok_and(|m| file_id(&m, path) == id)
}

fn is_gzip_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// The first `FINGERPRINT_BYTES` of a file (fewer if it is shorter).
fn read_head(file: &mut File) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
    (&mut *file)
        .take(FINGERPRINT_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The offset after the last complete line of a file of `size` bytes (`size` if none is found
/// in its last `END_SEARCH_BYTES`).
fn end_start(file: &mut File, size: u64) -> io::Result<u64> {
    let from = size.saturating_sub(END_SEARCH_BYTES);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    (&mut *file).take(size - from).read_to_end(&mut tail)?;
    Ok(match tail.iter().rposition(|&b| b == b'\n') {
        Some(nl) => from + nl as u64 + 1,
        None => size,
    })
}

fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_waits_for_the_first_line() {
        assert_eq!(Fingerprint::of(b"", Path::new("x.log")), None);
        assert_eq!(
            Fingerprint::of(b"{\"event_timestamp\":1", Path::new("x.log")),
            None
        );
        let a = Fingerprint::of(b"line one\nline two", Path::new("x.log")).unwrap();
        assert_eq!(a.len, 9);
        assert_eq!(
            a,
            Fingerprint::of(b"line one\nsomething else\n", Path::new("x.log")).unwrap()
        );
        assert_ne!(
            a,
            Fingerprint::of(b"line two\n", Path::new("x.log")).unwrap()
        );
        let long = vec![b'x'; FINGERPRINT_BYTES + 10];
        assert_eq!(
            Fingerprint::of(&long[..FINGERPRINT_BYTES], Path::new("x.log"))
                .unwrap()
                .len as usize,
            FINGERPRINT_BYTES
        );
        // The two tunnels of a connection, starting with the same line, are different files;
        // a rotated file keeps its tunnel.
        let line = b"{\"event_timestamp\":1,\"details\":\"AWS tunnel is sending DPD\"}\n";
        let t1 = Path::new("/l/vpn-0123abcd-192.0.2.1.log");
        let t2 = Path::new("/l/vpn-0123abcd-192.0.2.2.log");
        assert_ne!(Fingerprint::of(line, t1), Fingerprint::of(line, t2));
        assert_eq!(
            Fingerprint::of(line, t1),
            Fingerprint::of(line, Path::new("/l/vpn-0123abcd-192.0.2.1.log.1"))
        );
    }
}

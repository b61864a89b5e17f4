//! The metrics checkpoint, `DATA/metrics-state/checkpoint.cbor.zst`: every connection's
//! monitor as the last metrics computation left it at its watermark, so that the next one can
//! go on from there with only the records stored since (see [`crate::metrics::update`]).
//!
//! Format: a zstd stream of CBOR items — one [`Header`], then one `(vpn_id, Monitor)` per
//! connection in `vpn_id` byte order (the order the rebuild reads the events in), then an `End`
//! with their count. A file without its `End`, or with a count that does not match, is treated
//! as missing: the caller recomputes everything.
//!
//! Invariants: written to a temporary file, fsynced and renamed over the old one, so a reader
//! sees the old checkpoint or the new one, never half of one. It is only ever a shortcut: when
//! it is missing, unreadable, of another version or does not match the store, the metrics are
//! recomputed from all stored events, which is always correct.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tunnelwatch_monitor::Monitor;

use crate::error::PipelineError;

/// Bumped whenever the monitor's saved state or this format changes meaning.
pub const VERSION: u32 = 1;

/// What the checkpoint covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    /// The watermark every monitor was advanced to (the newest event time then stored).
    pub watermark_ms: i64,
    /// The `metrics` generation (`m<gen>-…` files) that computation wrote.
    pub generation: u64,
    /// Event rows of WAL segments up to this one were read; later ones were not.
    pub covered_seq: u64,
}

#[derive(Serialize, Deserialize)]
enum Item {
    Header(Header),
    Connection(Arc<str>, Box<Monitor>),
    End { connections: u64 },
}

pub fn path(data: &Path) -> PathBuf {
    data.join("metrics-state").join("checkpoint.cbor.zst")
}

fn bad(path: &Path, reason: impl std::fmt::Display) -> PipelineError {
    PipelineError::StateFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads a checkpoint: its header, then its connections in order.
pub struct Reader {
    path: PathBuf,
    input: zstd::stream::read::Decoder<'static, BufReader<File>>,
    pub header: Header,
    read: u64,
    done: bool,
}

impl Reader {
    /// `None` when there is no checkpoint or it is of another version.
    pub fn open(data: &Path) -> Result<Option<Reader>, PipelineError> {
        let path = path(data);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PipelineError::io(path.display().to_string(), e)),
        };
        let mut input = zstd::stream::read::Decoder::new(file)
            .map_err(|e| PipelineError::io(path.display().to_string(), e))?;
        let header = match ciborium::from_reader::<Item, _>(&mut input) {
            Ok(Item::Header(h)) if h.version == VERSION => h,
            Ok(Item::Header(_)) => return Ok(None),
            Ok(_) => return Err(bad(&path, "does not start with a header")),
            Err(e) => return Err(bad(&path, e)),
        };
        Ok(Some(Reader {
            path,
            input,
            header,
            read: 0,
            done: false,
        }))
    }

    /// The next connection, `None` after the last; an error if the file ends without its
    /// `End` or holds another count of connections.
    pub fn next_connection(&mut self) -> Result<Option<(Arc<str>, Monitor)>, PipelineError> {
        if self.done {
            return Ok(None);
        }
        match ciborium::from_reader::<Item, _>(&mut self.input) {
            Ok(Item::Connection(vpn, m)) => {
                self.read += 1;
                Ok(Some((vpn, *m)))
            }
            Ok(Item::End { connections }) if connections == self.read => {
                self.done = true;
                Ok(None)
            }
            Ok(Item::End { connections }) => Err(bad(
                &self.path,
                format!("ends after {} of {connections} connections", self.read),
            )),
            Ok(Item::Header(_)) => Err(bad(&self.path, "a second header")),
            Err(e) => Err(bad(
                &self.path,
                format!("cut short after {} connections: {e}", self.read),
            )),
        }
    }
}

/// Writes a new checkpoint beside the current one; [`Writer::commit`] puts it in place.
pub struct Writer {
    tmp: PathBuf,
    dest: PathBuf,
    out: zstd::stream::write::Encoder<'static, BufWriter<File>>,
    connections: u64,
}

impl Writer {
    pub fn create(data: &Path, header: Header) -> Result<Writer, PipelineError> {
        let dest = path(data);
        let dir = dest.parent().expect("the checkpoint has a directory");
        let io = |e| PipelineError::io(dest.display().to_string(), e);
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dest.with_extension("zst.tmp");
        let file = File::create(&tmp).map_err(io)?;
        // Level 1: the state is small next to the datapoints, and written on every ingest.
        let out = zstd::stream::write::Encoder::new(BufWriter::new(file), 1).map_err(io)?;
        let mut w = Writer {
            tmp,
            dest,
            out,
            connections: 0,
        };
        w.item(&Item::Header(header))?;
        Ok(w)
    }

    fn item(&mut self, item: &Item) -> Result<(), PipelineError> {
        ciborium::into_writer(item, &mut self.out).map_err(|e| bad(&self.tmp, e))
    }

    /// Adds one connection (in `vpn_id` order; the monitor drained).
    pub fn connection(&mut self, vpn_id: Arc<str>, m: Monitor) -> Result<(), PipelineError> {
        self.connections += 1;
        self.item(&Item::Connection(vpn_id, Box::new(m)))
    }

    /// Finishes the file, makes it durable and puts it in place of the old checkpoint.
    pub fn commit(mut self) -> Result<(), PipelineError> {
        self.item(&Item::End {
            connections: self.connections,
        })?;
        let io = |e| PipelineError::io(self.dest.display().to_string(), e);
        let mut buffered = self.out.finish().map_err(io)?;
        buffered.flush().map_err(io)?;
        let file = buffered.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, &self.dest).map_err(io)?;
        tunnelwatch_queries::wal::sync_dir(self.dest.parent().expect("has a directory"))?;
        Ok(())
    }
}

/// Removes the checkpoint (the next computation reads everything).
pub fn remove(data: &Path) -> Result<(), PipelineError> {
    match std::fs::remove_file(path(data)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PipelineError::io(path(data).display().to_string(), e)),
    }
}

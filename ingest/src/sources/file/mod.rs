//! `type = "file"`: follows log files, like Vector's `file` source or Fluent Bit's `tail`.
//!
//! Owns: finding files (glob patterns rescanned every `glob_interval`, minus `exclude`),
//! reading what they grow by (polled every `poll_interval`; no inotify, so it works the same on
//! every filesystem, network mounts included), one [`crate::pipeline::Stream`] per file, and
//! checkpoints that let a restarted source resume exactly after what was stored.
//!
//! Invariants:
//! - A file is known by its content, not its name: its fingerprint is the CRC32 and length of
//!   its first line (at most [`FINGERPRINT_BYTES`]). A file is not read before its first line is
//!   complete (or is `FINGERPRINT_BYTES` long): until then it cannot be recognised later.
//! - Checkpoints are keyed `file:<source name>:<fingerprint>`; their `offset` is the end of the
//!   delivered bytes, and `state` records `path`, `device`, `inode` and `fingerprint` for people
//!   reading the store. They travel only with deliveries (the pipeline lowers `offset` by bytes
//!   its decoder still holds), so after a restart nothing stored is read twice and nothing
//!   unstored is skipped.
//! - Only complete lines are handed on: the bytes after the last newline wait for the next read,
//!   except when a file is finished (rotated away or deleted), when they go with the stream's
//!   `end`.
//! - Rename + create (logrotate's default): the renamed file is read to its end through the open
//!   file (waiting `rotate_wait` for a writer that still holds it), then its stream ends and the
//!   file is closed; the new file at the path is read from its start.
//! - copytruncate and `> file`: a file that shrinks below what was read, or whose first line
//!   changed, starts again from 0 as new content (its old stream ends). A copy the glob matches
//!   has the fingerprint of what was read and is resumed where the reading stopped; while the
//!   original still carries that fingerprint, the copy waits (a file identical to one being
//!   followed is the same content, read once).
//! - Deleted files are read to their end through the open file (also waiting `rotate_wait`),
//!   then their stream ends and they are closed.
//! - A renamed file that a pattern still matches (`app.log*`) is not opened again after it was
//!   finished, unless it changes.
//!
//! Limits:
//! - Gzip files (`.gz` names or gzip content) are skipped: their content was read before it
//!   was compressed, when the plain file was followed. Read old archives with `tunnelwatch
//!   ingest`.
//! - Two files whose first lines are identical are taken for the same content: the second is
//!   not read (or only from the first one's offset). Tunnel activity records carry no tunnel id,
//!   so two tunnels' files could in principle start with the same line; files from the
//!   simulator and AWS carry distinct timestamps or details in practice.
//! - A file renamed or deleted before its first line is complete is never read.
//! - Lines written to a file after it was rotated away and while the source was stopped are
//!   read after the restart only if a pattern matches the rotated name (e.g. `app.log*`).
//! - On shutdown, streams are not ended: an incomplete last line stays unread (the checkpoint
//!   stops before it) and is read after the restart.
//! - Rename detection uses device and inode numbers (Unix); elsewhere rotation is recognised by
//!   content only.

mod tail;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tunnelwatch_parsers::{DEFAULT_MAX_RECORD_BYTES, DecoderOptions};

use crate::pipeline::SourceContext;
use crate::sources::parse_format;
use crate::sources::{BuildError, BuildSource, Run, Source, SourceError, duration_str};

/// The most bytes of a file's first line that make up its fingerprint.
pub const FINGERPRINT_BYTES: usize = 4096;

/// Where to start reading a file that has no checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// From its first byte.
    #[default]
    Beginning,
    /// After its last complete line (only files present when the source starts; files that
    /// appear later are always read from their beginning).
    End,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Files to follow: paths or glob patterns (`*`, `?`, `[…]`, `**`), e.g.
    /// `["/var/log/vpn/*.log"]`. Required. Directories are not descended into; name the files.
    /// Let a pattern match the rotated names too (`*.log*`) when lines written just before a
    /// rotation must not be lost while tunnelwatch is stopped; `.gz` files are always skipped.
    pub include: Vec<String>,
    /// Glob patterns of paths to leave out, matched against the whole path (`*` also matches
    /// `/`), e.g. `["*.1", "/var/log/vpn/old/*"]`. Default: none.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in a file that has no checkpoint: `"beginning"` (default) or `"end"`.
    /// `"end"` applies only to files present when the source starts.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// How often the patterns are expanded again to find new files (default `"1s"`).
    #[serde(
        default = "default_glob_interval",
        deserialize_with = "duration_str::deserialize"
    )]
    pub glob_interval: Duration,
    /// How often open files are checked for new data, truncation and rotation (default
    /// `"250ms"`). Files are polled, not watched with inotify.
    #[serde(
        default = "default_poll_interval",
        deserialize_with = "duration_str::deserialize"
    )]
    pub poll_interval: Duration,
    /// How long a file that was renamed or deleted is still read after it last grew, for a
    /// writer that keeps writing to it until it reopens its log (default `"5s"`). Then its
    /// stream ends and the file is closed.
    #[serde(
        default = "default_rotate_wait",
        deserialize_with = "duration_str::deserialize"
    )]
    pub rotate_wait: Duration,
    /// Input format (`auto` by default); see `tunnelwatch parse --help`.
    #[serde(default)]
    pub format: Option<String>,
    /// Log stream name (`<vpn-id>-<outside-ip>`) for records that do not name their tunnel.
    /// Default: taken from each file's name, as `tunnelwatch parse` does
    /// (`vpn-0abc1234-203.0.113.10.log`).
    #[serde(default)]
    pub stream_name: Option<String>,
    /// The longest record (a line, or a pretty-printed JSON document) accepted, in bytes
    /// (default 64 MiB); a longer one becomes a reject.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
}

fn default_glob_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_poll_interval() -> Duration {
    Duration::from_millis(250)
}

fn default_rotate_wait() -> Duration {
    Duration::from_secs(5)
}

fn default_max_record_bytes() -> usize {
    DEFAULT_MAX_RECORD_BYTES
}

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        if self.include.is_empty() {
            return Err(BuildError::new(
                name,
                "include: name at least one file or glob pattern",
            ));
        }
        for p in &self.include {
            glob::Pattern::new(p)
                .map_err(|e| BuildError::new(name, format!("include: `{p}`: {e}")))?;
        }
        let exclude = self
            .exclude
            .iter()
            .map(|p| {
                glob::Pattern::new(p)
                    .map_err(|e| BuildError::new(name, format!("exclude: `{p}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.poll_interval < Duration::from_millis(1) {
            return Err(BuildError::new(name, "poll_interval: must be at least 1ms"));
        }
        if self.glob_interval < Duration::from_millis(1) {
            return Err(BuildError::new(name, "glob_interval: must be at least 1ms"));
        }
        if self.max_record_bytes == 0 {
            return Err(BuildError::new(name, "max_record_bytes: must be positive"));
        }
        let format = parse_format(name, self.format.as_deref())?;
        Ok(Box::new(FileSource {
            settings: Arc::new(tail::Settings {
                include: self.include.clone(),
                exclude,
                read_from: self.read_from,
                glob_interval: self.glob_interval,
                poll_interval: self.poll_interval,
                rotate_wait: self.rotate_wait,
                max_record_bytes: self.max_record_bytes,
                options: DecoderOptions {
                    format,
                    stream_name: self.stream_name.clone(),
                    max_record_bytes: self.max_record_bytes,
                    ..Default::default()
                },
            }),
        }))
    }
}

struct FileSource {
    settings: Arc<tail::Settings>,
}

impl Source for FileSource {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move {
            // File I/O blocks: the tailer runs on its own thread and sends with `blocking_send`
            // semantics; this task only relays the shutdown signal and waits for it.
            let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
            let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
            let tailer = tail::Tailer::new(&cx, self.settings);
            let shutdown = cx.shutdown.clone();
            std::thread::Builder::new()
                .name(format!("file:{}", cx.name))
                .spawn(move || {
                    let _ = done_tx.send(tailer.run(&stop_rx, &shutdown));
                })
                .map_err(|e| SourceError::Io {
                    what: format!("file source `{}`: cannot start its thread", cx.name),
                    source: e,
                })?;
            tokio::select! {
                result = &mut done_rx => return thread_result(result),
                _ = cx.shutdown.wait() => {}
            }
            let _ = stop_tx.send(());
            thread_result(done_rx.await)
        })
    }
}

fn thread_result(
    r: Result<Result<(), SourceError>, tokio::sync::oneshot::error::RecvError>,
) -> Result<(), SourceError> {
    r.unwrap_or_else(|_| {
        Err(SourceError::Other(
            "the file tail thread stopped unexpectedly".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceConfig;

    fn parse(toml_like: serde_json::Value) -> Result<SourceConfig, serde_json::Error> {
        serde_json::from_value(toml_like)
    }

    #[test]
    fn config_defaults_and_validation() {
        let SourceConfig::File(c) =
            parse(serde_json::json!({"type": "file", "include": ["/var/log/vpn/*.log"]})).unwrap()
        else {
            panic!("not a file config");
        };
        assert_eq!(c.read_from, ReadFrom::Beginning);
        assert_eq!(c.glob_interval, Duration::from_secs(1));
        assert_eq!(c.poll_interval, Duration::from_millis(250));
        assert_eq!(c.rotate_wait, Duration::from_secs(5));
        assert_eq!(c.max_record_bytes, DEFAULT_MAX_RECORD_BYTES);
        assert!(c.build("f").is_ok());

        let c = parse(serde_json::json!({
            "type": "file", "include": ["a.log"], "read_from": "end", "poll_interval": "10ms",
            "exclude": ["*.1"], "stream_name": "vpn-0abc1234-1.2.3.4", "format": "ndjson"
        }))
        .unwrap();
        assert!(c.build("f").is_ok());

        for bad in [
            serde_json::json!({"type": "file", "include": []}),
            serde_json::json!({"type": "file", "include": ["[a"]}),
            serde_json::json!({"type": "file", "include": ["a"], "exclude": ["[a"]}),
            serde_json::json!({"type": "file", "include": ["a"], "poll_interval": "0s"}),
            serde_json::json!({"type": "file", "include": ["a"], "format": "nope"}),
        ] {
            let c = parse(bad.clone()).unwrap();
            assert!(c.build("f").is_err(), "{bad}");
        }
        for bad in [
            serde_json::json!({"type": "file"}),
            serde_json::json!({"type": "file", "include": ["a"], "read_from": "middle"}),
            serde_json::json!({"type": "file", "include": ["a"], "glob_interval": "soon"}),
            serde_json::json!({"type": "file", "include": ["a"], "path": "a"}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}

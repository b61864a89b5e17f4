//! `type = "file"`: appends each notification as one line of NDJSON to `path` (created with
//! its directory), flushed to disk before the delivery counts as done.
//!
//! Idempotent per key: before appending, the last 1 MiB of the file is searched for the
//! message's idempotency key, so a delivery repeated after a crash between the append and the
//! outbox's record of it is not written twice (as long as fewer than 1 MiB of later lines came
//! in between).

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Deserialize;

use super::{BuildError, Notifier, NotifyError};

const TAIL_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The NDJSON file to append to.
    pub path: PathBuf,
}

impl Config {
    pub fn build(&self, name: &str) -> Result<Box<dyn Notifier>, BuildError> {
        if self.path.as_os_str().is_empty() {
            return Err(BuildError {
                name: name.to_owned(),
                message: "path is empty".into(),
            });
        }
        Ok(Box::new(FileNotifier {
            path: self.path.clone(),
            lock: Mutex::new(()),
        }))
    }
}

struct FileNotifier {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileNotifier {
    fn append(&self, body: &[u8], key: &str) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        let len = f.metadata()?.len();
        let from = len.saturating_sub(TAIL_BYTES);
        f.seek(SeekFrom::Start(from))?;
        let mut tail = Vec::with_capacity((len - from) as usize);
        f.read_to_end(&mut tail)?;
        let needle = format!("\"IdempotencyKey\":{}", serde_json::Value::from(key));
        if memchr::memmem::find(&tail, needle.as_bytes()).is_some() {
            return Ok(());
        }
        let mut line = body.to_vec();
        line.retain(|b| *b != b'\n');
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_data()
    }
}

impl Notifier for FileNotifier {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn deliver(&self, body: &[u8], key: &str) -> Result<(), NotifyError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.append(body, key)
            .map_err(|e| NotifyError::Transient(format!("{}: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines_once_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/notifications.ndjson");
        let n = Config { path: path.clone() }.build("f").unwrap();
        let msg = |k: &str| format!("{{\"A\":1,\"Tunnelwatch\":{{\"IdempotencyKey\":\"{k}\"}}}}");
        n.deliver(msg("a@1:ALARM").as_bytes(), "a@1:ALARM").unwrap();
        n.deliver(msg("a@1:ALARM").as_bytes(), "a@1:ALARM").unwrap();
        n.deliver(msg("a@2:OK").as_bytes(), "a@2:OK").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.ends_with('\n'));
    }
}

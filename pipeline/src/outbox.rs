//! The durable outbox of notifications: a notification is written to disk before it is sent and
//! stays there until its notifier acknowledges it, retried with exponential backoff and jitter
//! until it expires, then kept as failed.
//!
//! Layout: `DATA/outbox/pending/<notifier>-<key hash>.json` (one file per notification and
//! notifier, written to a temporary name, fsynced, renamed), `DATA/outbox/failed/` for the
//! expired ones. A restart (or SIGKILL) loses nothing: what is pending is sent by the next run.
//! Enqueueing the same notification (notifier and idempotency key) twice while it is pending
//! keeps one file. A crash after the notifier acknowledged but before the file was removed
//! sends it again, with the same idempotency key, which receivers use to drop the repeat (the
//! `file` notifier does).
//!
//! Backoff: attempt n waits `min(1 s · 2ⁿ, 5 min)`, between half and all of it (jitter from a
//! hash of the key and n); a notification older than `expiry` is moved to `failed/`.
//! Sync/async: plain blocking code; the runner calls [`Outbox::deliver_due`] from its own thread.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tunnelwatch_exporters::notify::{Notifier, NotifyError};

use crate::error::PipelineError;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct OutboxStats {
    pub sent: AtomicU64,
    pub retries: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    notifier: String,
    key: String,
    created_ms: i64,
    attempts: u32,
    next_ms: i64,
    #[serde(default)]
    last_error: Option<String>,
    body: serde_json::Value,
}

pub struct Outbox {
    pending: PathBuf,
    failed: PathBuf,
    expiry_ms: i64,
    pub stats: OutboxStats,
}

fn io(context: &Path, e: std::io::Error) -> PipelineError {
    PipelineError::io(context.display().to_string(), e)
}

fn key_hash(key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// The wait before retry `attempt` (1 = the first retry), with jitter.
pub fn backoff_ms(key: &str, attempt: u32) -> i64 {
    let ceiling = (1_000i64 << attempt.min(20)).min(300_000);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (key, attempt).hash(&mut h);
    let fraction = (h.finish() % 1_000) as i64;
    ceiling / 2 + ceiling / 2 * fraction / 1_000
}

impl Outbox {
    /// Opens (creating) `DATA/outbox`.
    pub fn open(data: &Path, expiry_ms: i64) -> Result<Outbox, PipelineError> {
        let root = data.join("outbox");
        let (pending, failed) = (root.join("pending"), root.join("failed"));
        for d in [&pending, &failed] {
            std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        Ok(Outbox {
            pending,
            failed,
            expiry_ms,
            stats: OutboxStats::default(),
        })
    }

    fn path_of(&self, notifier: &str, key: &str) -> PathBuf {
        self.pending
            .join(format!("{notifier}-{:016x}.json", key_hash(key)))
    }

    /// Writes one notification for `notifier`, durably, before anything is sent.
    pub fn enqueue(
        &self,
        notifier: &str,
        key: &str,
        body: serde_json::Value,
        now_ms: i64,
    ) -> Result<(), PipelineError> {
        let path = self.path_of(notifier, key);
        if path.exists() {
            return Ok(());
        }
        let entry = Entry {
            notifier: notifier.to_owned(),
            key: key.to_owned(),
            created_ms: now_ms,
            attempts: 0,
            next_ms: now_ms,
            last_error: None,
            body,
        };
        self.write(&path, &entry)
    }

    fn write(&self, path: &Path, entry: &Entry) -> Result<(), PipelineError> {
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(entry).expect("an entry serialises");
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
        if let Ok(d) = std::fs::File::open(&self.pending) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Notifications waiting to be sent.
    pub fn pending(&self) -> usize {
        std::fs::read_dir(&self.pending)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Sends every notification that is due; returns how many were sent.
    pub fn deliver_due(
        &self,
        now_ms: i64,
        notifiers: &BTreeMap<String, Box<dyn Notifier>>,
    ) -> Result<usize, PipelineError> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.pending)
            .map_err(|e| io(&self.pending, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut sent = 0;
        for path in paths {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(mut entry) = serde_json::from_slice::<Entry>(&bytes) else {
                // Unreadable: keep it aside rather than retry it forever.
                let _ = std::fs::rename(&path, self.failed.join(path.file_name().unwrap()));
                continue;
            };
            if entry.next_ms > now_ms {
                continue;
            }
            let result = match notifiers.get(&entry.notifier) {
                Some(n) => {
                    let body = serde_json::to_vec(&entry.body).expect("JSON serialises");
                    n.deliver(&body, &entry.key)
                }
                None => Err(NotifyError::Permanent(format!(
                    "no notifier `{}` is configured",
                    entry.notifier
                ))),
            };
            match result {
                Ok(()) => {
                    std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    sent += 1;
                }
                Err(e) => {
                    entry.attempts += 1;
                    entry.last_error = Some(e.to_string());
                    let expired = now_ms - entry.created_ms >= self.expiry_ms;
                    if expired || matches!(e, NotifyError::Permanent(_)) {
                        self.write(&path, &entry)?;
                        let to = self.failed.join(path.file_name().unwrap());
                        std::fs::rename(&path, &to).map_err(|e| io(&to, e))?;
                        self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        entry.next_ms = now_ms + backoff_ms(&entry.key, entry.attempts);
                        self.write(&path, &entry)?;
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(sent)
    }
}

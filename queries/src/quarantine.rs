//! `<data>/quarantine/`: where the store puts what it found damaged and could not use, so
//! that nothing is ever deleted silently and the store still opens.
//!
//! Each item is the damaged file itself (moved, when the store stops using it: a Parquet
//! segment with a bad footer, an unreadable ledger or state file) or a copy (a WAL segment
//! whose intact frames were recovered before the store retired it), named
//! `<unix-ms>-<path under the data directory, '/' as '__'>`, plus one JSON line in
//! `quarantine/index.ndjson` saying what it was, where it came from and why.
//!
//! Invariants: the quarantine lies outside every table's directory, so no listing or query
//! (ours, DuckDB's, Spark's) reads it; items are only ever added — removing them is the
//! operator's call, after reading the index.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::wal::sync_dir;

/// One quarantined file, as the index records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// Where it was, relative to the data directory.
    pub original: String,
    /// Where it is now, relative to the data directory.
    pub kept_as: String,
    /// `moved` (the store no longer uses the original) or `copied` (a copy of a file the
    /// store went on to recover from).
    pub action: String,
    pub reason: String,
    pub at_ms: i64,
}

impl std::fmt::Display for Quarantined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} to {}: {}",
            self.original, self.action, self.kept_as, self.reason
        )
    }
}

pub fn dir(root: &Path) -> PathBuf {
    root.join("quarantine")
}

/// Moves `path` (inside `root`) into the quarantine.
pub fn move_in(root: &Path, path: &Path, reason: &str) -> Result<Quarantined, StoreError> {
    let (item, dest) = prepare(root, path, "moved", reason)?;
    fs::rename(path, &dest).map_err(|e| StoreError::io(path, e))?;
    record(root, item)
}

/// Copies `path` (inside `root`) into the quarantine; the original is left to the caller.
pub fn copy_in(root: &Path, path: &Path, reason: &str) -> Result<Quarantined, StoreError> {
    let (item, dest) = prepare(root, path, "copied", reason)?;
    fs::copy(path, &dest).map_err(|e| StoreError::io(path, e))?;
    fs::File::open(&dest)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(&dest, e))?;
    record(root, item)
}

/// What the index says was quarantined, oldest first (empty if nothing ever was).
pub fn list(root: &Path) -> Result<Vec<Quarantined>, StoreError> {
    let index = dir(root).join("index.ndjson");
    let text = match fs::read_to_string(&index) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(&index, e)),
    };
    // A line cut by a crash while it was appended is skipped, not an error.
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn prepare(
    root: &Path,
    path: &Path,
    action: &str,
    reason: &str,
) -> Result<(Quarantined, PathBuf), StoreError> {
    let q = dir(root);
    fs::create_dir_all(&q).map_err(|e| StoreError::io(&q, e))?;
    let original = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    let at_ms = chrono::Utc::now().timestamp_millis();
    let mut name = format!("{at_ms}-{}", original.replace(['/', '\\'], "__"));
    // Two items of one name in one millisecond: number the later ones.
    let mut n = 1;
    while q.join(&name).exists() {
        name = format!("{at_ms}.{n}-{}", original.replace(['/', '\\'], "__"));
        n += 1;
    }
    let dest = q.join(&name);
    let item = Quarantined {
        original,
        kept_as: format!("quarantine/{name}"),
        action: action.to_owned(),
        reason: reason.to_owned(),
        at_ms,
    };
    Ok((item, dest))
}

fn record(root: &Path, item: Quarantined) -> Result<Quarantined, StoreError> {
    let q = dir(root);
    let index = q.join("index.ndjson");
    let mut line = serde_json::to_vec(&item).expect("an index line serialises");
    line.push(b'\n');
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&index)
        .map_err(|e| StoreError::io(&index, e))?;
    f.write_all(&line)
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::io(&index, e))?;
    sync_dir(&q)?;
    if let Some(parent) = root.join(&item.original).parent() {
        let _ = sync_dir(parent);
    }
    Ok(item)
}

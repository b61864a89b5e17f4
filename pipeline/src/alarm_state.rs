//! The alarm state file, `DATA/alarms/state.json`: each alarm instance's state (what
//! [`AlarmEvaluator::save`](tunnelwatch_monitor::alarm::AlarmEvaluator::save) gives), how far
//! evaluation has gone, and which Health event versions were already stored — what lets a
//! restarted `serve` or the next `ingest --config` go on without recording or notifying a
//! transition twice, and what `alarms list` shows.
//!
//! Invariants: written to a temporary name, fsynced and renamed (a crash leaves the old or the
//! new file, never half of one). `serve` writes it after the store made the transitions'
//! `alarm_history` rows durable, and at the end of the run; `ingest --config` after its rows.
//! Limits: a crash between those two writes can repeat the transitions of that one batch after
//! the restart (with new times, so new idempotency keys).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tunnelwatch_monitor::alarm::SavedAlarms;

use crate::error::PipelineError;

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmStateFile {
    /// When it was written (epoch ms, wall clock).
    #[serde(default)]
    pub saved_ms: i64,
    /// The time alarms were evaluated up to (epoch ms): transitions at or before it are
    /// recorded already.
    #[serde(default)]
    pub evaluated_until: Option<i64>,
    #[serde(default)]
    pub alarms: SavedAlarms,
    /// `health_events` row versions already stored: "event_arn vpn_id tunnel_ip status".
    #[serde(default)]
    pub health_rows: BTreeSet<String>,
    /// Health notifications already queued (their idempotency keys).
    #[serde(default)]
    pub health_notified: BTreeSet<String>,
}

pub fn path(data: &Path) -> PathBuf {
    data.join("alarms").join("state.json")
}

/// The saved state, if a run saved one.
pub fn load(data: &Path) -> Result<Option<AlarmStateFile>, PipelineError> {
    let path = path(data);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| PipelineError::StateFile {
                    path,
                    reason: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PipelineError::io(path.display().to_string(), e)),
    }
}

/// Replaces the saved state, durably.
pub fn save(data: &Path, state: &AlarmStateFile) -> Result<(), PipelineError> {
    let path = path(data);
    let dir = path.parent().expect("the state file has a directory");
    let io = |p: &Path, e| PipelineError::io(p.display().to_string(), e);
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(state).expect("the state serialises");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(&bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let mut state = AlarmStateFile {
            saved_ms: 5,
            evaluated_until: Some(60_000),
            ..Default::default()
        };
        state.health_rows.insert("arn vpn - open".into());
        save(dir.path(), &state).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(state));
        std::fs::write(path(dir.path()), b"{\"saved_ms\": oops").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("alarms/state.json") && e.contains("line 1"),
            "{e}"
        );
    }
}

//! Where a `cloudwatch_logs` source stands in its log group, and which events it has already
//! handed on: pure bookkeeping, no I/O.
//!
//! CloudWatch Logs has no per-group sequence number, events can arrive late (their timestamp is
//! older than events already ingested), and `FilterLogEvents` returns streams interleaved in no
//! particular order. So every poll re-reads from `newest − lookback` and drops the events it has
//! already seen by `eventId`. The cursor remembers the newest event time handed on and the ids of
//! the events whose timestamp lies inside the lookback window below it; it travels in the
//! checkpoint's `state` as `{"newest_ms": …, "seen": {"<eventId>": <timestamp ms>, …}}`.
//!
//! Invariants: every id in `seen` has a timestamp ≥ `newest_ms − lookback`; an event older than
//! that bound is never admitted (it lies below what the poll asked for).
//! Limit: an event arriving more than `lookback` behind the newest event already handed on is
//! missed.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::pipeline::Checkpoint;

/// One event as `FilterLogEvents` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// The log stream's name.
    pub stream: String,
    /// Event time, epoch ms.
    pub ts: i64,
    /// When CloudWatch received it (`ingestionTime`), epoch ms.
    pub ingestion: i64,
    /// CloudWatch's `eventId` (unique within the log group).
    pub id: String,
    pub message: String,
}

/// The checkpoint state could not be read back.
#[derive(Debug, Error)]
#[error("checkpoint `{key}` has an unreadable state: {reason}")]
pub struct CursorStateError {
    pub key: String,
    pub reason: String,
}

/// The newest event time handed on and the ids seen inside the lookback window below it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    newest_ms: Option<i64>,
    seen: HashMap<String, i64>,
}

#[derive(Serialize, Deserialize)]
struct CursorState {
    newest_ms: i64,
    #[serde(default)]
    seen: BTreeMap<String, i64>,
}

impl Cursor {
    /// Restores the cursor stored in a checkpoint's state.
    pub fn from_checkpoint(c: &Checkpoint) -> Result<Cursor, CursorStateError> {
        let state: CursorState =
            serde_json::from_value(c.state.clone()).map_err(|e| CursorStateError {
                key: c.key.clone(),
                reason: e.to_string(),
            })?;
        Ok(Cursor {
            newest_ms: Some(state.newest_ms),
            seen: state.seen.into_iter().collect(),
        })
    }

    /// A cursor that knows only the newest time (a checkpoint whose state was lost): events at
    /// exactly the lookback window may repeat, none are skipped.
    pub fn from_newest(newest_ms: i64) -> Cursor {
        Cursor {
            newest_ms: Some(newest_ms),
            seen: HashMap::new(),
        }
    }

    /// The checkpoint to store once everything recorded so far is durable (`None` before the
    /// first event). `offset` is the newest event time in ms.
    pub fn to_checkpoint(&self, key: &str) -> Option<Checkpoint> {
        let newest_ms = self.newest_ms?;
        let state = CursorState {
            newest_ms,
            seen: self.seen.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        Some(Checkpoint {
            key: key.to_owned(),
            offset: newest_ms.max(0) as u64,
            state: serde_json::to_value(state).unwrap_or(serde_json::Value::Null),
        })
    }

    pub fn newest_ms(&self) -> Option<i64> {
        self.newest_ms
    }

    /// Number of event ids remembered.
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// The `startTime` of the next poll: `newest − lookback`, or `initial_start_ms` before the
    /// first event; never below `floor` (an explicit `start`: the lookback must not reach
    /// before it).
    pub fn query_start(&self, lookback_ms: i64, initial_start_ms: i64, floor: Option<i64>) -> i64 {
        let start = match self.newest_ms {
            Some(n) => n.saturating_sub(lookback_ms),
            None => initial_start_ms,
        };
        floor.map_or(start, |f| start.max(f))
    }

    /// The events of one poll that were not handed on yet, sorted by (timestamp, stream, id).
    /// Drops ids already seen, repeats inside the batch, and events below the lookback window.
    pub fn admit(&self, mut events: Vec<LogEvent>, lookback_ms: i64) -> Vec<LogEvent> {
        let floor = self.newest_ms.map(|n| n.saturating_sub(lookback_ms));
        let mut batch = HashSet::new();
        events.retain(|e| {
            floor.is_none_or(|f| e.ts >= f)
                && !self.seen.contains_key(&e.id)
                && batch.insert(e.id.clone())
        });
        events.sort_by(|a, b| (a.ts, &a.stream, &a.id).cmp(&(b.ts, &b.stream, &b.id)));
        events
    }

    /// Records `events` as handed on: the newest time advances and ids that fell out of the
    /// lookback window are forgotten.
    pub fn record(&mut self, events: &[LogEvent], lookback_ms: i64) {
        for e in events {
            self.newest_ms = Some(self.newest_ms.map_or(e.ts, |n| n.max(e.ts)));
            self.seen.insert(e.id.clone(), e.ts);
        }
        if let Some(n) = self.newest_ms {
            let floor = n.saturating_sub(lookback_ms);
            self.seen.retain(|_, ts| *ts >= floor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(stream: &str, ts: i64, id: &str) -> LogEvent {
        LogEvent {
            stream: stream.into(),
            ts,
            ingestion: ts,
            id: id.into(),
            message: format!("{stream} {ts}"),
        }
    }

    const LOOKBACK: i64 = 300_000;

    #[test]
    fn admit_sorts_by_time_stream_and_id_and_drops_repeats() {
        let c = Cursor::default();
        let got = c.admit(
            vec![
                ev("b", 2000, "3"),
                ev("a", 2000, "4"),
                ev("a", 1000, "1"),
                ev("b", 2000, "2"),
                ev("a", 1000, "1"),
            ],
            LOOKBACK,
        );
        let ids: Vec<_> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1", "4", "2", "3"]);
    }

    #[test]
    fn seen_ids_are_dropped_and_late_events_inside_the_window_admitted() {
        let mut c = Cursor::default();
        let first = c.admit(
            vec![ev("a", 1_000_000, "1"), ev("b", 1_010_000, "2")],
            LOOKBACK,
        );
        c.record(&first, LOOKBACK);
        assert_eq!(c.newest_ms(), Some(1_010_000));
        assert_eq!(c.query_start(LOOKBACK, 0, None), 710_000);
        assert_eq!(c.query_start(LOOKBACK, 0, Some(800_000)), 800_000);
        assert_eq!(c.query_start(LOOKBACK, 0, Some(600_000)), 710_000);
        // The re-read returns the old events again, plus a late one (older than the newest) and
        // a new one; one event lies below the window (the server ignored startTime).
        let again = c.admit(
            vec![
                ev("a", 1_000_000, "1"),
                ev("b", 1_010_000, "2"),
                ev("a", 1_005_000, "3"),
                ev("b", 1_020_000, "4"),
                ev("a", 700_000, "0"),
            ],
            LOOKBACK,
        );
        let ids: Vec<_> = again.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["3", "4"]);
        c.record(&again, LOOKBACK);
        assert_eq!(c.newest_ms(), Some(1_020_000));
        assert_eq!(c.seen_len(), 4);
    }

    #[test]
    fn ids_outside_the_window_are_forgotten() {
        let mut c = Cursor::default();
        c.record(&[ev("a", 1_000, "old"), ev("a", 400_000, "mid")], LOOKBACK);
        // newest 400_000: floor 100_000, so "old" goes.
        assert_eq!(c.seen_len(), 1);
        c.record(&[ev("a", 1_000_000, "new")], LOOKBACK);
        assert_eq!(c.seen_len(), 1);
        // A late event never moves the newest time back.
        c.record(&[ev("a", 900_000, "late")], LOOKBACK);
        assert_eq!(c.newest_ms(), Some(1_000_000));
        assert_eq!(c.seen_len(), 2);
    }

    #[test]
    fn checkpoint_round_trip() {
        let mut c = Cursor::default();
        assert!(c.to_checkpoint("k").is_none());
        assert_eq!(c.query_start(LOOKBACK, 42, None), 42);
        c.record(&[ev("a", 1_000_000, "1"), ev("b", 999_000, "2")], LOOKBACK);
        let cp = c.to_checkpoint("k").unwrap();
        assert_eq!(cp.key, "k");
        assert_eq!(cp.offset, 1_000_000);
        assert_eq!(cp.state["newest_ms"], 1_000_000);
        assert_eq!(cp.state["seen"]["2"], 999_000);
        let back = Cursor::from_checkpoint(&cp).unwrap();
        assert_eq!(back, c);
        // Restored, it drops what it had seen.
        assert!(back.admit(vec![ev("b", 999_000, "2")], LOOKBACK).is_empty());
    }

    #[test]
    fn unreadable_state_is_an_error_naming_the_key() {
        let cp = Checkpoint {
            key: "cloudwatch:aws:eu-west-1:/vpn".into(),
            offset: 5,
            state: serde_json::json!({"seen": 3}),
        };
        let e = Cursor::from_checkpoint(&cp).unwrap_err();
        assert!(
            e.to_string().contains("cloudwatch:aws:eu-west-1:/vpn"),
            "{e}"
        );
        let fallback = Cursor::from_newest(cp.offset as i64);
        assert_eq!(fallback.query_start(2, 0, None), 3);
    }
}

//! Which events of a CloudWatch Logs log group are already stored, whichever pull stored them:
//! one-shot `ingest cloudwatch://` ranges, the long-running `cloudwatch_logs` source of `serve`,
//! before or after a crash. Pure bookkeeping, no I/O; it travels as one checkpoint per log group
//! (key [`coverage_key`]) in the same WAL appends as the rows it describes.
//!
//! The coverage is a set of *claims* plus a set of event ids:
//! - a claim says "every event of streams starting with `prefix`, with a timestamp in
//!   `start..=end`, that reached CloudWatch (`ingestionTime`) before a horizon is stored"; the
//!   horizon is a fixed time ([`Horizon::IngestedBefore`], what one read at a known time saw) or
//!   a delay after the event's own timestamp ([`Horizon::IngestedWithin`], what a source that kept
//!   re-reading the last `lookback` saw). A claim in progress (a poll half handed on when the
//!   process stopped) covers only events up to a key in hand-on order, (stream, timestamp, id).
//! - `ids` are stored events no claim implies: those that reached CloudWatch within the
//!   visibility margin before the read (they might not have been visible to it, so the read
//!   claims nothing about their peers) and very late ones (more than `lookback − margin` after
//!   their timestamp, beyond what a re-reading source's claim says).
//!
//! An event is stored iff a claim implies it or its id is listed. Before handing events on, a pull
//! drops those; after, it records its own claim. Each pull's claim starts as *owned* (it can
//! still shrink: the long-running source re-reads only the last `lookback`, so each poll gives up
//! the older part of its previous claim, which becomes a permanent claim of its own); a finished
//! one-shot pull's claim is permanent at once.
//!
//! Invariants: every claim is true (it never implies an event that was not stored), so nothing
//! is skipped that was not stored; every stored event is implied by a claim or listed in `ids`,
//! so nothing is stored twice. `ids` are pruned only against permanent claims (an owned claim may
//! shrink below them later).
//!
//! Assumption and limit: an event that reached CloudWatch more than the visibility margin (the
//! source's `visibility_margin`, 1 minute by default, which also absorbs clock skew) before a
//! read started is visible to that read. A crash in the middle of one poll's deliveries may repeat that poll's events of
//! the visibility margin (the claim in progress says nothing about them). Claims are few (one
//! per one-shot pull; a steady long-running source keeps one permanent claim and one owned);
//! `ids` hold about a minute of events per pull plus the very late ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cursor::{CursorStateError, LogEvent};
use crate::pipeline::Checkpoint;

/// The checkpoint key of a log group's coverage:
/// `cloudwatch-coverage:<endpoint_url|aws>:<region>:<group>`.
pub fn coverage_key(endpoint: Option<&str>, region: &str, group: &str) -> String {
    format!(
        "cloudwatch-coverage:{}:{region}:{group}",
        endpoint.unwrap_or("aws")
    )
}

/// Until when a claim's events reached CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Horizon {
    /// `ingestionTime` before this epoch ms.
    IngestedBefore(i64),
    /// `ingestionTime` less than this many ms after the event's timestamp.
    IngestedWithin(i64),
}

/// A position in hand-on order: (log stream, timestamp, event id).
pub type EventKey = (String, i64, String);

/// "Every matching event is stored."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Only streams whose name starts with this; all streams when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Event timestamps, epoch ms, inclusive.
    pub start: i64,
    pub end: i64,
    pub horizon: Horizon,
    /// The pull that may still shrink this claim (its cursor's checkpoint key); permanent when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A claim in progress: only events up to this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<EventKey>,
}

impl Claim {
    pub fn implies(&self, e: &LogEvent) -> bool {
        self.prefix
            .as_deref()
            .is_none_or(|p| e.stream.starts_with(p))
            && (self.start..=self.end).contains(&e.ts)
            && match self.horizon {
                Horizon::IngestedBefore(t) => e.ingestion < t,
                Horizon::IngestedWithin(d) => e.ingestion < e.ts.saturating_add(d),
            }
            && self.upto.as_ref().is_none_or(|(stream, ts, id)| {
                (e.stream.as_str(), e.ts, e.id.as_str()) <= (stream.as_str(), *ts, id.as_str())
            })
    }

    /// Does this (permanent) claim imply everything `other` does?
    fn dominates(&self, other: &Claim) -> bool {
        let prefix = match (&self.prefix, &other.prefix) {
            (None, _) => true,
            (Some(a), Some(b)) => b.starts_with(a.as_str()),
            (Some(_), None) => false,
        };
        let horizon = match (self.horizon, other.horizon) {
            (Horizon::IngestedBefore(a), Horizon::IngestedBefore(b)) => a >= b,
            (Horizon::IngestedWithin(a), Horizon::IngestedWithin(b)) => a >= b,
            _ => false,
        };
        let upto = match (&self.upto, &other.upto) {
            (None, _) => true,
            (Some(a), Some(b)) => a >= b,
            (Some(_), None) => false,
        };
        self.owner.is_none()
            && prefix
            && horizon
            && upto
            && self.start <= other.start
            && self.end >= other.end
    }
}

/// One stored event no claim implies: enough to tell when a claim comes to imply it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Listed(i64, i64, String);

impl Listed {
    fn event(&self, id: &str) -> LogEvent {
        LogEvent {
            stream: self.2.clone(),
            ts: self.0,
            ingestion: self.1,
            id: id.to_owned(),
            message: String::new(),
        }
    }
}

/// One poll of a pull: what it asked `FilterLogEvents` for and when.
#[derive(Debug, Clone)]
pub struct Poll<'a> {
    /// The pull's cursor key: the owner of its claim.
    pub owner: &'a str,
    pub prefix: Option<&'a str>,
    /// `startTime` and `endTime` (`i64::MAX` when open).
    pub start: i64,
    pub end: i64,
    /// Wall-clock epoch ms at which the poll's first page was requested.
    pub read_at: i64,
    /// The source's `lookback`, ms.
    pub lookback: i64,
    /// How long after reaching CloudWatch an event may stay invisible to `FilterLogEvents` (and
    /// how far this host's clock may be off CloudWatch's), ms.
    pub margin: i64,
}

impl Poll<'_> {
    /// What the read saw in full: everything that reached CloudWatch a visibility margin before
    /// it started.
    fn horizon(&self) -> i64 {
        self.read_at.saturating_sub(self.margin)
    }

    /// What a re-reading source can claim about the part of the range it gave up.
    fn lag_floor(&self) -> i64 {
        self.lookback - self.margin
    }

    fn claim(&self, owner: Option<String>, upto: Option<EventKey>) -> Claim {
        Claim {
            prefix: self.prefix.map(str::to_owned),
            start: self.start,
            end: self.end,
            horizon: Horizon::IngestedBefore(self.horizon()),
            owner,
            upto,
        }
    }
}

/// The stored events of one log group, as claims and ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    #[serde(default)]
    claims: Vec<Claim>,
    #[serde(default)]
    ids: BTreeMap<String, Listed>,
}

impl Coverage {
    pub fn from_checkpoint(c: &Checkpoint) -> Result<Coverage, CursorStateError> {
        serde_json::from_value(c.state.clone()).map_err(|e| CursorStateError {
            key: c.key.clone(),
            reason: e.to_string(),
        })
    }

    pub fn to_checkpoint(&self, key: &str) -> Checkpoint {
        Checkpoint {
            key: key.to_owned(),
            offset: self.claims.len() as u64,
            state: serde_json::to_value(self).unwrap_or(serde_json::Value::Null),
        }
    }

    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    /// Does `owner` hold a claim it may still shrink (a pull that has not finished)?
    pub fn owns(&self, owner: &str) -> bool {
        self.claims
            .iter()
            .any(|c| c.owner.as_deref() == Some(owner))
    }

    /// Number of listed ids.
    pub fn ids_len(&self) -> usize {
        self.ids.len()
    }

    /// Is this event stored already?
    pub fn covers(&self, e: &LogEvent) -> bool {
        self.ids.contains_key(&e.id) || self.claims.iter().any(|c| c.implies(e))
    }

    /// The coverage once the events of `poll` up to `upto` (in hand-on order) are stored, the
    /// rest of the poll not yet.
    pub fn in_progress(&self, poll: &Poll, upto: EventKey) -> Coverage {
        let mut next = self.clone();
        next.claims.push(poll.claim(None, Some(upto)));
        next
    }

    /// The coverage once `poll` is handed on in full: `handed` are the events it handed on (the
    /// others it read were covered already). The owner's previous claim gives up what this poll
    /// no longer reads.
    pub fn record(&mut self, poll: &Poll, handed: &[LogEvent]) {
        if let Some(i) = self
            .claims
            .iter()
            .position(|c| c.owner.as_deref() == Some(poll.owner))
        {
            let old = self.claims.swap_remove(i);
            self.release(old, poll);
        }
        self.claims
            .push(poll.claim(Some(poll.owner.to_owned()), None));
        let (horizon, lag_floor) = (poll.horizon(), poll.lag_floor());
        for e in handed {
            let late = lag_floor > 0 && e.ingestion.saturating_sub(e.ts) >= lag_floor;
            if e.ingestion >= horizon || late {
                self.ids
                    .insert(e.id.clone(), Listed(e.ts, e.ingestion, e.stream.clone()));
            }
        }
        self.compact();
    }

    /// The pull of `owner` is over: its claim can no longer shrink.
    pub fn finish(&mut self, owner: &str) {
        for c in &mut self.claims {
            if c.owner.as_deref() == Some(owner) {
                c.owner = None;
            }
        }
        self.compact();
    }

    /// Turns the parts of `old` (an owned claim) outside `poll`'s range into permanent claims.
    fn release(&mut self, old: Claim, poll: &Poll) {
        let Horizon::IngestedBefore(old_horizon) = old.horizon else {
            // Owned claims are always fixed-horizon; anything else is kept as it is.
            self.claims.push(Claim { owner: None, ..old });
            return;
        };
        if old.prefix.as_deref() != poll.prefix {
            // Not the same streams (an owner's prefix never changes; kept whole to be safe).
            self.claims.push(Claim { owner: None, ..old });
            return;
        }
        let permanent = |start: i64, end: i64, horizon: Horizon| Claim {
            prefix: old.prefix.clone(),
            start,
            end,
            horizon,
            owner: None,
            upto: None,
        };
        if poll.start > old.start {
            let end = old.end.min(poll.start - 1);
            // Every timestamp t here is below poll.start, so t + lag_floor < old_horizon when
            // poll.start <= old_horizon - lag_floor: the delay form claims no more than `old`.
            let lag_floor = poll.lag_floor();
            let horizon = if lag_floor > 0 && poll.start <= old_horizon.saturating_sub(lag_floor) {
                Horizon::IngestedWithin(lag_floor)
            } else {
                Horizon::IngestedBefore(old_horizon)
            };
            self.claims.push(permanent(old.start, end, horizon));
        }
        if poll.end < old.end {
            let start = old.start.max(poll.end.saturating_add(1));
            self.claims.push(permanent(
                start,
                old.end,
                Horizon::IngestedBefore(old_horizon),
            ));
        }
    }

    /// Drops dominated claims, merges adjacent permanent ones with the same prefix and horizon,
    /// and unlists ids a permanent claim implies.
    fn compact(&mut self) {
        let mut claims = std::mem::take(&mut self.claims);
        claims.sort_by(|a, b| {
            (&a.prefix, a.start, std::cmp::Reverse(a.end)).cmp(&(
                &b.prefix,
                b.start,
                std::cmp::Reverse(b.end),
            ))
        });
        let mut kept: Vec<Claim> = Vec::with_capacity(claims.len());
        for c in claims {
            if kept.iter().any(|k| k.dominates(&c)) {
                continue;
            }
            if let Some(last) = kept.last_mut()
                && last.owner.is_none()
                && c.owner.is_none()
                && last.upto.is_none()
                && c.upto.is_none()
                && last.prefix == c.prefix
                && last.horizon == c.horizon
                && c.start <= last.end.saturating_add(1)
            {
                last.end = last.end.max(c.end);
                continue;
            }
            kept.retain(|k| !c.dominates(k));
            kept.push(c);
        }
        self.claims = kept;
        let permanent: Vec<&Claim> = self.claims.iter().filter(|c| c.owner.is_none()).collect();
        self.ids
            .retain(|id, l| !permanent.iter().any(|c| c.implies(&l.event(id))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn ev(stream: &str, ts: i64, ingestion: i64, id: &str) -> LogEvent {
        LogEvent {
            stream: stream.into(),
            ts,
            ingestion,
            id: id.into(),
            message: String::new(),
        }
    }

    fn poll(owner: &str, start: i64, end: i64, read_at: i64) -> Poll<'_> {
        Poll {
            owner,
            prefix: None,
            start,
            end,
            read_at,
            lookback: 5 * MIN,
            margin: MIN,
        }
    }

    /// What each claim implies, as a table: (claim, event, implied).
    #[test]
    fn claims_imply_by_prefix_range_horizon_and_progress() {
        let fixed = Claim {
            prefix: Some("vpn-1".into()),
            start: 100,
            end: 200,
            horizon: Horizon::IngestedBefore(1_000),
            owner: None,
            upto: None,
        };
        let within = Claim {
            horizon: Horizon::IngestedWithin(50),
            ..fixed.clone()
        };
        let upto = Claim {
            upto: Some(("vpn-1a".into(), 150, "5".into())),
            ..fixed.clone()
        };
        let table = [
            (&fixed, ev("vpn-1a", 100, 999, "1"), true),
            (&fixed, ev("vpn-1a", 200, 0, "1"), true),
            (&fixed, ev("vpn-2a", 150, 0, "1"), false),
            (&fixed, ev("vpn-1a", 99, 0, "1"), false),
            (&fixed, ev("vpn-1a", 201, 0, "1"), false),
            (&fixed, ev("vpn-1a", 150, 1_000, "1"), false),
            (&within, ev("vpn-1a", 150, 199, "1"), true),
            (&within, ev("vpn-1a", 150, 200, "1"), false),
            (&upto, ev("vpn-1a", 150, 0, "5"), true),
            (&upto, ev("vpn-1a", 150, 0, "6"), false),
            (&upto, ev("vpn-1a", 149, 0, "9"), true),
            (&upto, ev("vpn-1b", 100, 0, "1"), false),
        ];
        for (i, (claim, e, want)) in table.iter().enumerate() {
            assert_eq!(claim.implies(e), *want, "row {i}: {e:?}");
        }
    }

    /// The case: a backfill, then the same backfill with a later end.
    #[test]
    fn a_later_pull_over_an_overlapping_range_skips_what_the_first_stored() {
        let now = 100 * MIN;
        let mut cov = Coverage::default();
        let first: Vec<LogEvent> = (0..10)
            .map(|i| ev("s", i * MIN, i * MIN + 1_000, &i.to_string()))
            .collect();
        // The first pull reads 0..=50 min at `now`: everything it saw ingested long before.
        let p = poll("a@0..50", 0, 50 * MIN, now);
        assert!(first.iter().all(|e| !cov.covers(e)));
        cov.record(&p, &first);
        cov.finish("a@0..50");
        assert_eq!(cov.ids_len(), 0, "{cov:?}");
        assert_eq!(cov.claims().len(), 1);
        // The second reads 0..=99 min later: old events are covered, new ones are not.
        for e in &first {
            assert!(cov.covers(e));
        }
        let new = ev("s", 60 * MIN, 60 * MIN + 500, "new");
        assert!(!cov.covers(&new));
        // An event that reached CloudWatch after the first read, inside its range (late).
        let late = ev("s", 20 * MIN, now + 1, "late");
        assert!(!cov.covers(&late));
        // And one that reached it just before the read, inside the visibility margin: the
        // first read may not have seen it, so it is not implied...
        let recent = ev("s", 45 * MIN, now - 1_000, "recent");
        assert!(!cov.covers(&recent));
        // ...unless the first pull handed it on, when it is listed.
        let mut cov2 = Coverage::default();
        cov2.record(&p, std::slice::from_ref(&recent));
        cov2.finish("a@0..50");
        assert!(cov2.covers(&recent));
        assert_eq!(cov2.ids_len(), 1);
    }

    /// A long-running source: each poll re-reads the last lookback; the part it gives up becomes
    /// one permanent delay claim, and a later one-shot pull over the whole range skips all of
    /// it, late events included.
    #[test]
    fn a_re_reading_source_leaves_one_permanent_claim_and_lists_late_events() {
        let mut cov = Coverage::default();
        let owner = "cw";
        let lookback = 5 * MIN;
        let mut all = Vec::new();
        // Polls every 10 s for an hour; one event per poll, ingested 2 s after its timestamp,
        // and every 60th poll a late event (ingested 4.5 min after its timestamp).
        let mut newest: Option<i64> = None;
        for k in 0..360i64 {
            let read_at = 10 * MIN + k * 10_000;
            let start = newest.map_or(0, |n| n - lookback).max(0);
            let mut handed = vec![ev("s", read_at - 5_000, read_at - 3_000, &format!("e{k}"))];
            if k % 60 == 59 {
                handed.push(ev(
                    "s",
                    read_at - 280_000,
                    read_at - 10_000,
                    &format!("late{k}"),
                ));
            }
            for e in &handed {
                assert!(!cov.covers(e), "{e:?} is new");
            }
            let p = Poll {
                owner,
                prefix: None,
                start,
                end: i64::MAX,
                read_at,
                lookback,
                margin: MIN,
            };
            cov.record(&p, &handed);
            newest = Some(newest.map_or(read_at - 5_000, |n| n.max(read_at - 5_000)));
            all.extend(handed);
        }
        // One permanent delay claim and the live one.
        assert_eq!(cov.claims().len(), 2, "{:#?}", cov.claims());
        assert!(
            cov.claims()
                .iter()
                .any(|c| c.owner.is_none() && c.horizon == Horizon::IngestedWithin(4 * MIN))
        );
        // Listed: the late events and the last poll's recent band, not the steady flow.
        // (the steady flow is listed only until its part of the range turns permanent: ~30 polls).
        assert!(cov.ids_len() <= 6 + 32, "{}", cov.ids_len());
        for e in &all {
            assert!(cov.covers(e), "{e:?} was stored");
        }
        // An event that was never read: ingested long after its timestamp, after the reads.
        assert!(!cov.covers(&ev("s", 20 * MIN, 80 * MIN, "missed")));
    }

    #[test]
    fn nested_and_prefixed_pulls() {
        let now = 100 * MIN;
        let mut cov = Coverage::default();
        let p = Poll {
            prefix: Some("vpn-1"),
            ..poll("a", 10 * MIN, 20 * MIN, now)
        };
        cov.record(&p, &[]);
        cov.finish("a");
        // A nested pull over all streams: its claim does not dominate (other streams).
        let q = poll("b", 0, 30 * MIN, now + MIN);
        cov.record(&q, &[]);
        cov.finish("b");
        // b dominates a (all streams, wider, later horizon).
        assert_eq!(cov.claims().len(), 1, "{:#?}", cov.claims());
        // A nested pull inside b adds nothing.
        let r = poll("c", 5 * MIN, 6 * MIN, now - 10 * MIN);
        cov.record(&r, &[]);
        cov.finish("c");
        assert_eq!(cov.claims().len(), 1, "{:#?}", cov.claims());
        assert!(cov.covers(&ev("vpn-2", 25 * MIN, 1, "x")));
    }

    #[test]
    fn progress_claims_cover_up_to_their_key_and_the_checkpoint_round_trips() {
        let cov = Coverage::default();
        let p = poll("a", 0, 10 * MIN, 100 * MIN);
        let mid = cov.in_progress(&p, ("b".into(), 5 * MIN, "7".into()));
        assert!(mid.covers(&ev("a", 9 * MIN, 1, "1")));
        assert!(mid.covers(&ev("b", 5 * MIN, 1, "7")));
        assert!(!mid.covers(&ev("b", 5 * MIN, 1, "8")));
        assert!(!mid.covers(&ev("c", 1, 1, "1")));
        let cp = mid.to_checkpoint("cloudwatch-coverage:aws:eu-west-1:/g");
        assert_eq!(Coverage::from_checkpoint(&cp).unwrap(), mid);
        let bad = Checkpoint {
            state: serde_json::json!({"claims": 3}),
            ..cp
        };
        assert!(
            Coverage::from_checkpoint(&bad)
                .unwrap_err()
                .to_string()
                .contains("cloudwatch-coverage:aws:eu-west-1:/g")
        );
    }
}

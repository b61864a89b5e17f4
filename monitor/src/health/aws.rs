//! AWS Health events as input: which of tunnelwatch's inferred endpoint replacements
//! (`AWS_VPN_REDUNDANCY_LOSS`) an AWS event confirms, and how the two become one event.
//!
//! Rule: an AWS event confirms an inference when it is an `AWS_VPN_REDUNDANCY_LOSS` event, names
//! the inference's connection among its affected entities, and its time span (`startTime` to
//! `endTime`, else `lastUpdatedTime`, else `startTime`) comes within [`CONFIRM_MARGIN_MS`] of the
//! tunnel's down episode. Pairs are one to one: each AWS event takes the unpaired inference of
//! its connection nearest in start time (AWS replaces one tunnel at a time and sends one event
//! per replacement).
//!
//! One event, not two: a confirmed pair is listed as the AWS event (its ARN, its description),
//! with the tunnel the logs showed and `confirmed`; the inference is not listed on its own. If
//! the inference was stored before AWS's event arrived, it gets a `confirmed` version pointing at
//! the AWS event, and listings skip confirmed inferences (`docs/tables.md`).
//!
//! Limits: AWS names the connection, not the tunnel; two replacements of one connection within
//! the margin pair by start time, which may swap their tunnels.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::redundancy::{REDUNDANCY_LOSS, RedundancyLoss};

/// How far apart an AWS event and a down episode may be and still be the same replacement.
pub const CONFIRM_MARGIN_MS: i64 = 3_600_000;

/// An AWS Health event as stored (its rows joined by ARN).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsEvent {
    pub event_arn: String,
    pub event_type_code: Option<String>,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub last_updated_time: Option<i64>,
    pub status_code: Option<String>,
    pub description: Option<String>,
    pub event_type_category: Option<String>,
    pub region: Option<String>,
    /// The connections it names.
    pub vpn_ids: BTreeSet<Arc<str>>,
}

impl AwsEvent {
    fn span(&self) -> (i64, i64) {
        let end = self
            .end_time
            .or(self.last_updated_time)
            .unwrap_or(self.start_time);
        (self.start_time, end.max(self.start_time))
    }

    /// Whether this event confirms `r` (the rule above, without the pairing).
    pub fn confirms(&self, r: &RedundancyLoss) -> bool {
        let (start, end) = self.span();
        self.event_type_code.as_deref() == Some(REDUNDANCY_LOSS)
            && self.vpn_ids.contains(&r.vpn_id)
            && start <= r.end_time + CONFIRM_MARGIN_MS
            && end >= r.start_time - CONFIRM_MARGIN_MS
    }
}

/// The confirmed pairs (AWS event index, inference index) of `aws` and `inferred`, one to one.
pub fn pair(aws: &[AwsEvent], inferred: &[RedundancyLoss]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..aws.len()).collect();
    order.sort_by_key(|&i| (aws[i].start_time, i));
    let mut taken = vec![false; inferred.len()];
    let mut pairs = Vec::new();
    for a in order {
        let best = inferred
            .iter()
            .enumerate()
            .filter(|(j, r)| !taken[*j] && aws[a].confirms(r))
            .min_by_key(|(j, r)| ((r.start_time - aws[a].start_time).abs(), *j))
            .map(|(j, _)| j);
        if let Some(j) = best {
            taken[j] = true;
            pairs.push((a, j));
        }
    }
    pairs.sort_unstable();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_547_200_000; // 2025-12-01T00:00:00Z
    const MIN: i64 = 60_000;

    fn inferred(vpn: &str, ip: &str, start_min: i64, end_min: i64) -> RedundancyLoss {
        RedundancyLoss {
            event_arn: format!("tw-{vpn}-{ip}-{start_min}"),
            vpn_id: vpn.into(),
            tunnel_ip: ip.into(),
            start_time: T0 + start_min * MIN,
            end_time: T0 + end_min * MIN,
            description: String::new(),
            confirmed_by: None,
        }
    }

    fn aws(code: &str, vpns: &[&str], start_min: i64, end_min: Option<i64>) -> AwsEvent {
        AwsEvent {
            event_arn: format!("aws-{start_min}"),
            event_type_code: Some(code.into()),
            start_time: T0 + start_min * MIN,
            end_time: end_min.map(|m| T0 + m * MIN),
            vpn_ids: vpns.iter().map(|v| Arc::from(*v)).collect(),
            ..Default::default()
        }
    }

    /// Table: (case, AWS event, whether it confirms vpn-1's 10..15 episode).
    #[test]
    fn what_confirms_an_inference() {
        let r = inferred("vpn-1", "1.1.1.1", 10, 15);
        let cases = [
            (
                "same span",
                aws(REDUNDANCY_LOSS, &["vpn-1"], 10, Some(15)),
                true,
            ),
            (
                "AWS start only, inside",
                aws(REDUNDANCY_LOSS, &["vpn-1"], 12, None),
                true,
            ),
            (
                "an hour after the end",
                aws(REDUNDANCY_LOSS, &["vpn-1"], 75, None),
                true,
            ),
            (
                "past the margin",
                aws(REDUNDANCY_LOSS, &["vpn-1"], 76, None),
                false,
            ),
            (
                "ends an hour before",
                aws(REDUNDANCY_LOSS, &["vpn-1"], -60, Some(-50)),
                true,
            ),
            (
                "ends too early",
                aws(REDUNDANCY_LOSS, &["vpn-1"], -60, Some(-51)),
                false,
            ),
            (
                "other connection",
                aws(REDUNDANCY_LOSS, &["vpn-2"], 10, Some(15)),
                false,
            ),
            (
                "one of several",
                aws(REDUNDANCY_LOSS, &["vpn-2", "vpn-1"], 10, None),
                true,
            ),
            (
                "other event type",
                aws("AWS_VPN_SINGLE_TUNNEL_NOTIFICATION", &["vpn-1"], 10, None),
                false,
            ),
        ];
        for (name, a, want) in cases {
            assert_eq!(a.confirms(&r), want, "{name}");
        }
    }

    #[test]
    fn pairs_are_one_to_one_and_nearest_first() {
        let inferred = vec![
            inferred("vpn-1", "1.1.1.1", 10, 15),
            inferred("vpn-1", "2.2.2.2", 40, 45),
            inferred("vpn-2", "3.3.3.3", 40, 45),
        ];
        // Two AWS events for vpn-1 (one per tunnel replaced), one for a connection with no
        // inference.
        let events = vec![
            aws(REDUNDANCY_LOSS, &["vpn-1"], 41, None),
            aws(REDUNDANCY_LOSS, &["vpn-1"], 11, None),
            aws(REDUNDANCY_LOSS, &["vpn-9"], 11, None),
        ];
        assert_eq!(pair(&events, &inferred), vec![(0, 1), (1, 0)]);
        // One AWS event, two candidate episodes: only the nearest pairs.
        assert_eq!(pair(&events[1..2], &inferred), vec![(0, 0)]);
    }
}

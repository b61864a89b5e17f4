//! `AWS_VPN_REDUNDANCY_LOSS`, inferred from the per-tunnel TunnelState minutes. AWS sends it
//! when one of a connection's two tunnel endpoints is replaced: that tunnel goes down and comes
//! back up (same outside IP) while the other tunnel stays up. Only AWS knows an endpoint was
//! replaced, so tunnelwatch's event is an inference; [`super::aws`] pairs it with the AWS Health
//! event that confirms it, when one arrives.
//!
//! Rule, per connection with exactly two tunnels in the data: a *down episode* of tunnel T is a
//! maximal run of consecutive minutes with T's up fraction (sum / sample_count) below 1,
//! preceded by a minute with T fully up and followed by one with T fully up again. It becomes an
//! event when the up-again minute starts before `now_ms` (complete episodes only), it lasts at
//! most [`MAX_DOWN_MS`] (first down minute to the up-again minute), the other tunnel was fully
//! up in every minute from the one before the episode to the up-again minute (a missing minute
//! breaks it), and the caller's configuration errors name no T error within
//! [`CONFIG_ERROR_MARGIN_MS`] of the episode (a misconfiguration, not a replacement).
//!
//! Limits: a gap in T's own minutes ends a run without an up-again minute, so it does not count;
//! only tunnel-level TunnelState points are read (others are ignored).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::Datapoint;
use crate::alarm::iso_time;

pub const REDUNDANCY_LOSS: &str = "AWS_VPN_REDUNDANCY_LOSS";

const MINUTE: i64 = crate::PERIOD_MS;
/// The longest down episode still read as an endpoint replacement.
pub const MAX_DOWN_MS: i64 = 3_600_000;
/// A configuration error this close to an episode (either side) explains it.
pub const CONFIG_ERROR_MARGIN_MS: i64 = 10 * MINUTE;

/// One inferred redundancy-loss event: one tunnel's down episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedundancyLoss {
    pub event_arn: String,
    pub vpn_id: Arc<str>,
    pub tunnel_ip: Arc<str>,
    /// The first down minute (start, epoch ms).
    pub start_time: i64,
    /// The start of the minute the tunnel was fully up again.
    pub end_time: i64,
    pub description: String,
    /// The ARN of the AWS Health event that confirms it ([`super::aws::pair`]), if one does.
    pub confirmed_by: Option<String>,
}

/// vpn → tunnel → minute → up fraction.
type Minutes = BTreeMap<Arc<str>, BTreeMap<Arc<str>, BTreeMap<i64, f64>>>;

/// The inferred redundancy-loss events of the TunnelState datapoints in `points`, as of
/// `now_ms`. `config_errors` holds (vpn, tunnel ip, ts ms) of configuration-error messages
/// (psk_invalid, no_proposal_match, auth_failed, ts_unacceptable …).
pub fn redundancy_loss_events<'a>(
    points: impl IntoIterator<Item = &'a Datapoint>,
    config_errors: &[(Arc<str>, Arc<str>, i64)],
    now_ms: i64,
) -> Vec<RedundancyLoss> {
    let mut minutes: Minutes = BTreeMap::new();
    for (vpn, ip, minute, up) in super::tunnel_up_minutes(points) {
        minutes
            .entry(vpn.clone())
            .or_default()
            .entry(ip.clone())
            .or_default()
            .insert(minute, up);
    }
    let mut events = Vec::new();
    for (vpn, tunnels) in &minutes {
        if tunnels.len() != 2 {
            continue;
        }
        let ips: Vec<&Arc<str>> = tunnels.keys().collect();
        for (i, ip) in ips.iter().enumerate() {
            let own = &tunnels[*ip];
            let other = &tunnels[ips[1 - i]];
            for (start, up_again) in episodes(own) {
                if up_again >= now_ms || up_again - start > MAX_DOWN_MS {
                    continue;
                }
                let other_up = (start / MINUTE - 1..=up_again / MINUTE)
                    .all(|m| other.get(&(m * MINUTE)) == Some(&1.0));
                let explained = config_errors.iter().any(|(v, t, ts)| {
                    v == vpn
                        && t == *ip
                        && *ts >= start - CONFIG_ERROR_MARGIN_MS
                        && *ts <= up_again + CONFIG_ERROR_MARGIN_MS
                });
                if other_up && !explained {
                    events.push(event(vpn, ip, start, up_again));
                }
            }
        }
    }
    events.sort_by(|a, b| (a.start_time, &a.vpn_id).cmp(&(b.start_time, &b.vpn_id)));
    events
}

/// (first down minute, up-again minute) of each complete down episode of one tunnel.
fn episodes(own: &BTreeMap<i64, f64>) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut run: Option<i64> = None; // start of the current run, when preceded by a full minute
    let mut prev: Option<(i64, f64)> = None;
    let mut seen = BTreeSet::new();
    for (&m, &up) in own {
        let contiguous = prev.is_some_and(|(pm, _)| pm + MINUTE == m);
        if !contiguous {
            run = None;
        }
        if up < 1.0 {
            if run.is_none() && contiguous && prev.is_some_and(|(_, pu)| pu == 1.0) {
                run = Some(m);
            }
        } else if let Some(start) = run.take()
            && up == 1.0
            && seen.insert(start)
        {
            out.push((start, m));
        }
        prev = Some((m, up));
    }
    out
}

fn event(vpn: &Arc<str>, ip: &Arc<str>, start: i64, end: i64) -> RedundancyLoss {
    RedundancyLoss {
        event_arn: format!(
            "arn:aws:health:global::event/VPN/{REDUNDANCY_LOSS}/tunnelwatch-{vpn}-{ip}-{start}"
        ),
        vpn_id: vpn.clone(),
        tunnel_ip: ip.clone(),
        start_time: start,
        end_time: end,
        description: format!(
            "Your VPN Connection {vpn} appears to have had a momentary lapse of redundancy, as \
             if one of its two tunnel endpoints was replaced: tunnel {ip} was down from {} to \
             {} while the other tunnel stayed up, so connectivity on the second tunnel was not \
             affected during this time. Both tunnels are now operating normally. Inferred by \
             tunnelwatch from the logs; only AWS can confirm an endpoint replacement.",
            iso_time(start),
            iso_time(end)
        ),
        confirmed_by: None,
    }
}

impl RedundancyLoss {
    /// As a [`HealthEvent`](super::HealthEvent): one connection, `closed` (it is emitted after
    /// completion), notified once at its end.
    pub fn to_event(&self) -> super::HealthEvent {
        super::HealthEvent {
            event_arn: self.event_arn.clone(),
            event_type_code: REDUNDANCY_LOSS,
            start_time: self.start_time,
            end_time: Some(self.end_time),
            last_updated_time: self.end_time,
            status_code: "closed",
            connections: [(self.vpn_id.clone(), self.start_time)]
                .into_iter()
                .collect(),
            tunnel_ip: Some(self.tunnel_ip.clone()),
            notified: vec![self.end_time],
            description: self.description.clone(),
            confirmed_by: self.confirmed_by.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_547_200_000; // 2025-12-01T00:00:00Z
    const A: &str = "1.1.1.1";
    const B: &str = "2.2.2.2";

    use crate::health::tunnel_minute as minute;

    /// `total` minutes from T0; tunnel a down in `a_down` minute ranges, b in `b_down`.
    fn series(total: i64, a_down: &[(i64, i64)], b_down: &[(i64, i64)]) -> Vec<Datapoint> {
        let down = |r: &[(i64, i64)], m: i64| r.iter().any(|&(s, e)| m >= s && m < e);
        (0..total)
            .flat_map(|m| {
                let ts = T0 + m * MINUTE;
                [
                    minute("vpn-1", A, ts, if down(a_down, m) { 0.0 } else { 1.0 }),
                    minute("vpn-1", B, ts, if down(b_down, m) { 0.5 } else { 1.0 }),
                ]
            })
            .collect()
    }

    fn err(ts: i64) -> (Arc<str>, Arc<str>, i64) {
        (Arc::from("vpn-1"), Arc::from(A), ts)
    }

    type Ranges = Vec<(i64, i64)>;
    /// (name, tunnel a down ranges, b down ranges, config error minutes, expected episodes).
    type Case = (&'static str, Ranges, Ranges, Vec<i64>, Ranges);

    /// Table: (case, tunnel a down ranges, b down ranges, config errors, expected (start, end)
    /// minute offsets).
    #[test]
    fn down_episodes_with_the_other_tunnel_up() {
        let dip = [(10, 15)];
        let cases: Vec<Case> = vec![
            ("5-minute dip", dip.to_vec(), vec![], vec![], vec![(10, 15)]),
            (
                "other also dips",
                dip.to_vec(),
                vec![(14, 16)],
                vec![],
                vec![],
            ),
            (
                "other dips just before",
                dip.to_vec(),
                vec![(9, 10)],
                vec![],
                vec![],
            ),
            (
                "config error inside margin",
                dip.to_vec(),
                vec![],
                vec![25],
                vec![],
            ),
            (
                "config error before, inside",
                dip.to_vec(),
                vec![],
                vec![0],
                vec![],
            ),
            (
                "config error just outside",
                dip.to_vec(),
                vec![],
                vec![26],
                vec![(10, 15)],
            ),
            ("longer than 1 h", vec![(10, 71)], vec![], vec![], vec![]),
            (
                "exactly 1 h",
                vec![(10, 70)],
                vec![],
                vec![],
                vec![(10, 70)],
            ),
            (
                "still down at the end",
                vec![(110, 120)],
                vec![],
                vec![],
                vec![],
            ),
            ("down from the start", vec![(0, 5)], vec![], vec![], vec![]),
            (
                "two dips",
                vec![(10, 15), (40, 42)],
                vec![],
                vec![],
                vec![(10, 15), (40, 42)],
            ),
        ];
        for (name, a, b, errors, want) in cases {
            let points = series(120, &a, &b);
            let errors: Vec<_> = errors.into_iter().map(|m| err(T0 + m * MINUTE)).collect();
            let got: Vec<(i64, i64)> = redundancy_loss_events(&points, &errors, T0 + DAY_MS)
                .iter()
                .map(|e| ((e.start_time - T0) / MINUTE, (e.end_time - T0) / MINUTE))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn an_error_from_the_other_tunnel_does_not_explain_it() {
        let points = series(60, &[(10, 15)], &[]);
        let errors = [(Arc::from("vpn-1"), Arc::from(B), T0 + 12 * MINUTE)];
        assert_eq!(
            redundancy_loss_events(&points, &errors, T0 + DAY_MS).len(),
            1
        );
    }

    #[test]
    fn the_up_again_minute_must_have_started() {
        let points = series(60, &[(10, 15)], &[]);
        assert!(redundancy_loss_events(&points, &[], T0 + 15 * MINUTE).is_empty());
        assert_eq!(
            redundancy_loss_events(&points, &[], T0 + 15 * MINUTE + 1).len(),
            1
        );
    }

    #[test]
    fn a_missing_minute_of_the_other_tunnel_breaks_it() {
        let mut points = series(60, &[(10, 15)], &[]);
        points.retain(|p| !(p.ts == T0 + 12 * MINUTE && p.tunnel_ip.as_deref() == Some(B)));
        assert!(redundancy_loss_events(&points, &[], T0 + DAY_MS).is_empty());
    }

    #[test]
    fn one_tunnel_connection_has_none() {
        let mut points = series(60, &[(10, 15)], &[]);
        points.retain(|p| p.tunnel_ip.as_deref() == Some(A));
        assert!(redundancy_loss_events(&points, &[], T0 + DAY_MS).is_empty());
    }

    #[test]
    fn event_fields() {
        let points = series(60, &[(10, 15)], &[]);
        let e = &redundancy_loss_events(&points, &[], T0 + DAY_MS)[0];
        assert_eq!(&*e.vpn_id, "vpn-1");
        assert_eq!(&*e.tunnel_ip, A);
        assert_eq!(
            e.event_arn,
            format!(
                "arn:aws:health:global::event/VPN/AWS_VPN_REDUNDANCY_LOSS/tunnelwatch-vpn-1-{A}-{}",
                T0 + 10 * MINUTE
            )
        );
        assert!(e.description.contains("2025-12-01T00:10:00.000+0000"));
        assert!(e.description.contains("2025-12-01T00:15:00.000+0000"));
        assert!(e.description.contains("Inferred by tunnelwatch"));
        assert_eq!(e.confirmed_by, None);
    }
}

//! Health-style notifications derived from the metrics: `AWS_VPN_SINGLE_TUNNEL_NOTIFICATION`,
//! as AWS describes it ("If your VPN connection has one tunnel up but the other is down for
//! more than one hour in a day, you receive a monthly VPN single tunnel notification … updated
//! daily with any new VPN connections detected as single tunnel, with notifications sent
//! weekly. A new event will be created each month").
//!
//! Rule: per connection and UTC day, the time with exactly one tunnel up is summed from the
//! per-tunnel TunnelState minutes; above one hour the connection is flagged for that day. One
//! event per calendar month lists the connections flagged in it (added on the day they are
//! first flagged); it is notified weekly — at the first flag, then every 7 days in which new
//! connections were added; a month that is over is `closed`, the current one `open`.
//!
//! Limits: a minute's single-tunnel time is estimated from the two tunnels' up fractions as
//! `|a − b| · 60 s` (exact when each tunnel's state holds the whole minute, a lower bound
//! otherwise). Only connections with exactly two tunnels in the data count: a tunnel that never
//! logged has no TunnelState (the inventory would know it; not used here).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::Datapoint;

pub const SINGLE_TUNNEL: &str = "AWS_VPN_SINGLE_TUNNEL_NOTIFICATION";

const MINUTE: i64 = crate::PERIOD_MS;
const DAY: i64 = 86_400_000;
const WEEK: i64 = 7 * DAY;
/// More than this much single-tunnel time in a UTC day flags the connection.
const THRESHOLD_MS: i64 = 3_600_000;

/// vpn → minute → tunnel → up fraction.
type UpByMinute = BTreeMap<Arc<str>, BTreeMap<i64, BTreeMap<Arc<str>, f64>>>;

/// One monthly single-tunnel event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub event_arn: String,
    pub event_type_code: &'static str,
    /// The start of the first flagged day, epoch ms.
    pub start_time: i64,
    /// The end of the month, once it is over.
    pub end_time: Option<i64>,
    /// The end of the last day that added a connection.
    pub last_updated_time: i64,
    /// `open` or `closed`.
    pub status_code: &'static str,
    /// Connection → the day it was first flagged (start, epoch ms).
    pub connections: BTreeMap<Arc<str>, i64>,
    /// The tunnel, for an event about one tunnel (endpoint replacement); `None` here.
    pub tunnel_ip: Option<Arc<str>>,
    /// When notifications went out (weekly, while connections were added).
    pub notified: Vec<i64>,
    pub description: String,
    /// For an inferred event: the AWS Health event that confirms it.
    pub confirmed_by: Option<String>,
}

/// (year, month) of a UTC instant, and the month's bounds (epoch ms).
fn month_of(ms: i64) -> (i64, u32, i64, i64) {
    let (y, m, d, ..) = crate::alarm::reason::civil(ms);
    let start = (ms.div_euclid(DAY) - (i64::from(d) - 1)) * DAY;
    let days_in = match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    };
    (y, m, start, start + days_in * DAY)
}

/// The single-tunnel events of the TunnelState datapoints in `points` (per-tunnel ones; the
/// rest are ignored), as of `now_ms`.
pub fn single_tunnel_events<'a>(
    points: impl IntoIterator<Item = &'a Datapoint>,
    now_ms: i64,
) -> Vec<HealthEvent> {
    let mut minutes: UpByMinute = BTreeMap::new();
    let mut tunnels: BTreeMap<Arc<str>, BTreeSet<Arc<str>>> = BTreeMap::new();
    for (vpn, ip, minute, up) in super::tunnel_up_minutes(points) {
        minutes
            .entry(vpn.clone())
            .or_default()
            .entry(minute)
            .or_default()
            .insert(ip.clone(), up);
        tunnels.entry(vpn.clone()).or_default().insert(ip.clone());
    }
    // vpn → day → single-tunnel ms.
    let mut flagged: BTreeMap<i64, BTreeMap<Arc<str>, ()>> = BTreeMap::new();
    for (vpn, by_minute) in &minutes {
        if tunnels[vpn].len() != 2 {
            continue;
        }
        let mut per_day: BTreeMap<i64, f64> = BTreeMap::new();
        for (minute, ups) in by_minute {
            if ups.len() != 2 {
                continue;
            }
            let v: Vec<f64> = ups.values().copied().collect();
            *per_day.entry(minute - minute.rem_euclid(DAY)).or_default() +=
                (v[0] - v[1]).abs() * MINUTE as f64;
        }
        for (day, ms) in per_day {
            if ms > THRESHOLD_MS as f64 {
                flagged.entry(day).or_default().insert(vpn.clone(), ());
            }
        }
    }
    // Month → event.
    let mut events: BTreeMap<(i64, u32), HealthEvent> = BTreeMap::new();
    for (day, vpns) in flagged {
        let (y, m, _, end) = month_of(day);
        let e = events.entry((y, m)).or_insert_with(|| HealthEvent {
            event_arn: format!(
                "arn:aws:health:global::event/VPN/{SINGLE_TUNNEL}/tunnelwatch-{y:04}-{m:02}"
            ),
            event_type_code: SINGLE_TUNNEL,
            start_time: day,
            end_time: (now_ms >= end).then_some(end),
            last_updated_time: day + DAY,
            status_code: if now_ms >= end { "closed" } else { "open" },
            connections: BTreeMap::new(),
            notified: Vec::new(),
            tunnel_ip: None,
            description: String::new(),
            confirmed_by: None,
        });
        let mut added = false;
        for (vpn, ()) in vpns {
            if let std::collections::btree_map::Entry::Vacant(v) = e.connections.entry(vpn) {
                v.insert(day);
                added = true;
            }
        }
        if added {
            e.last_updated_time = day + DAY;
            // Weekly: the first flag notifies; later additions wait for the next week's turn.
            let due = e
                .notified
                .last()
                .map_or(day + DAY, |n| (n + WEEK).max(day + DAY));
            if e.notified.last() != Some(&due) {
                e.notified.push(due);
            }
        }
    }
    events
        .into_values()
        .map(|mut e| {
            let list: Vec<&str> = e.connections.keys().map(|v| &**v).collect();
            e.description = format!(
                "Your VPN connection(s) {} had one tunnel up while the other was down for more \
                 than one hour in a day (detected from the logs by tunnelwatch). Configure both \
                 tunnels for high availability.",
                list.join(", ")
            );
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_547_200_000; // 2025-12-01T00:00:00Z

    use crate::health::tunnel_minute as minute;

    /// `down` minutes of tunnel b down, starting at `from` (ms), both tunnels otherwise up.
    fn day(vpn: &str, day_start: i64, from: i64, down: i64) -> Vec<Datapoint> {
        (0..1440)
            .flat_map(|m| {
                let ts = day_start + m * MINUTE;
                let b_down = ts >= from && ts < from + down * MINUTE;
                [
                    minute(vpn, "1.1.1.1", ts, 1.0),
                    minute(vpn, "2.2.2.2", ts, if b_down { 0.0 } else { 1.0 }),
                ]
            })
            .collect()
    }

    #[test]
    fn month_bounds() {
        let (y, m, start, end) = month_of(T0 + 5 * DAY);
        assert_eq!((y, m, start, end), (2025, 12, T0, T0 + 31 * DAY));
        let (_, m, _, end) = month_of(1_709_164_800_000); // 2024-02-29
        assert_eq!((m, (end - 1_706_745_600_000) / DAY), (2, 29));
    }

    /// Table: single-tunnel minutes in a day → flagged or not.
    #[test]
    fn more_than_an_hour_in_a_day_flags_the_connection() {
        for (down, flagged) in [
            (0, false),
            (59, false),
            (60, false),
            (61, true),
            (300, true),
        ] {
            let points = day("vpn-1", T0, T0 + 3_600_000, down);
            let events = single_tunnel_events(&points, T0 + 2 * DAY);
            assert_eq!(!events.is_empty(), flagged, "{down} min");
        }
        // 40 minutes on each side of midnight: two days of 40 minutes, never more than an hour.
        let mut points = day("vpn-1", T0, T0 + DAY - 40 * MINUTE, 40);
        points.extend(day("vpn-1", T0 + DAY, T0 + DAY, 40));
        assert!(single_tunnel_events(&points, T0 + 3 * DAY).is_empty());
    }

    #[test]
    fn one_event_per_month_updated_daily_notified_weekly() {
        let mut points = Vec::new();
        // vpn-1 flagged on Dec 2, vpn-2 on Dec 3 and Dec 12, vpn-3 on Jan 5.
        points.extend(day("vpn-1", T0 + DAY, T0 + DAY, 90));
        points.extend(day("vpn-2", T0 + 2 * DAY, T0 + 2 * DAY, 90));
        points.extend(day("vpn-2", T0 + 11 * DAY, T0 + 11 * DAY, 90));
        points.extend(day("vpn-3", T0 + 35 * DAY, T0 + 35 * DAY, 90));
        let events = single_tunnel_events(&points, T0 + 40 * DAY);
        assert_eq!(events.len(), 2);
        let dec = &events[0];
        assert!(dec.event_arn.ends_with("tunnelwatch-2025-12"));
        assert_eq!(dec.status_code, "closed");
        assert_eq!(dec.end_time, Some(T0 + 31 * DAY));
        assert_eq!(dec.start_time, T0 + DAY);
        let listed: Vec<&str> = dec.connections.keys().map(|v| &**v).collect();
        assert_eq!(listed, ["vpn-1", "vpn-2"]);
        // Updated the day vpn-2 was added. Notified after the first flagged day, then weekly:
        // vpn-2, added the next day, goes out with the notification a week after the first.
        assert_eq!(dec.last_updated_time, T0 + 3 * DAY);
        assert_eq!(dec.notified, [T0 + 2 * DAY, T0 + 9 * DAY]);
        let jan = &events[1];
        assert_eq!(jan.status_code, "open");
        assert_eq!(jan.connections.len(), 1);
        assert!(jan.description.contains("vpn-3"));
    }
}

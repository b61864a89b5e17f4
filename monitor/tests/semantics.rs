//! The monitor's contract: TunnelState semantics (static vs BGP, held state, missing before the
//! first record), a scripted incident asserted minute by minute at its boundaries, counter
//! resets, the lateness window, the derived counts, and the live view.

use std::collections::HashMap;
use std::sync::Arc;

use tunnelwatch_monitor::{
    Datapoint, MetricName, Monitor, MonitorConfig, Observation, ObservationBody, Pushed, Routing,
};
use tunnelwatch_parsers::{DecoderOptions, MessageKind, Parsed, PhaseState};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const VPN: &str = "vpn-0123456789abcdef0";
const A: &str = "203.0.113.10";
const B: &str = "203.0.113.11";

use PhaseState::{Down, Established, Negotiating, Rekeying};

fn obs(ts: i64, ip: &str, body: ObservationBody) -> Observation {
    Observation {
        ts,
        vpn_id: Arc::from(VPN),
        tunnel_ip: Arc::from(ip),
        body,
    }
}

fn ike(ts: i64, ip: &str, p1: PhaseState, p2: PhaseState) -> Observation {
    ike_kind(ts, ip, p1, p2, MessageKind::Unknown)
}

fn ike_kind(ts: i64, ip: &str, p1: PhaseState, p2: PhaseState, kind: MessageKind) -> Observation {
    obs(
        ts,
        ip,
        ObservationBody::Activity {
            phase1: Some(p1),
            phase2: Some(p2),
            kind,
        },
    )
}

/// A BGP state change to `to` (status derived as the reference says).
fn bgp_to(ts: i64, ip: &str, to: &str) -> Observation {
    obs(
        ts,
        ip,
        ObservationBody::Bgp {
            session: tunnelwatch_monitor::bgp_session(
                MessageKind::BgpStateChange,
                "BGPStatus",
                Some(if to == "Established" { "UP" } else { "DOWN" }),
                Some(to),
            ),
            kind: MessageKind::BgpStateChange,
        },
    )
}

fn bgp_status(ts: i64, ip: &str, kind: MessageKind, status: &str) -> Observation {
    obs(
        ts,
        ip,
        ObservationBody::Bgp {
            session: tunnelwatch_monitor::bgp_session(kind, "BGPStatus", Some(status), None),
            kind,
        },
    )
}

fn traffic(ts: i64, ip: &str, bytes_in: u64, bytes_out: u64, conc: Option<&str>) -> Observation {
    obs(
        ts,
        ip,
        ObservationBody::Traffic {
            bytes_in: Some(bytes_in),
            bytes_out: Some(bytes_out),
            concentrator_id: conc.map(Arc::from),
        },
    )
}

fn run(inventory: &[(&str, Routing)], records: Vec<Observation>, watermark: i64) -> Vec<Datapoint> {
    let mut m = Monitor::new(MonitorConfig {
        inventory: inventory
            .iter()
            .map(|(v, r)| (v.to_string(), *r))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    })
    .unwrap();
    for r in records {
        assert_eq!(m.push(r), Pushed::Accepted);
    }
    m.advance(watermark + 5 * MIN);
    m.drain()
}

fn find<'a>(
    points: &'a [Datapoint],
    metric: MetricName,
    ip: Option<&str>,
    ts: i64,
) -> Option<&'a Datapoint> {
    points
        .iter()
        .find(|p| p.metric == metric && p.tunnel_ip.as_deref() == ip && p.ts == ts)
}

/// (sample_count, sum, minimum, maximum) of a datapoint.
fn stats(p: Option<&Datapoint>) -> Option<(f64, f64, f64, f64)> {
    p.map(|p| (p.sample_count, p.sum, p.minimum, p.maximum))
}

fn state_at(points: &[Datapoint], ip: Option<&str>, ts: i64) -> Option<f64> {
    find(points, MetricName::TunnelState, ip, ts).map(Datapoint::average)
}

#[test]
fn tunnel_state_semantics_table() {
    let t0 = 9 * HOUR;
    let bgp = [(VPN, Routing::Bgp)];
    let stat = [(VPN, Routing::Static)];
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, &[(&str, Routing)], Vec<Observation>, i64, Option<f64>)> = vec![
        (
            "static, both phases established",
            &stat,
            vec![ike(t0, A, Established, Established)],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "static, phase 2 rekeying counts as up",
            &stat,
            vec![ike(t0, A, Established, Rekeying)],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "static, phase 1 rekeying counts as up",
            &stat,
            vec![ike(t0, A, Rekeying, Established)],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "static, phase 2 down",
            &stat,
            vec![ike(t0, A, Established, Down)],
            t0 + MIN,
            Some(0.0),
        ),
        (
            "static, negotiating",
            &stat,
            vec![ike(t0, A, Negotiating, Down)],
            t0 + MIN,
            Some(0.0),
        ),
        (
            "inferred static: no BGP record",
            &[],
            vec![ike(t0, A, Established, Established)],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "BGP: IPsec up, session Idle => 0",
            &bgp,
            vec![ike(t0, A, Established, Established), bgp_to(t0, A, "Idle")],
            t0 + MIN,
            Some(0.0),
        ),
        (
            "inferred BGP: IPsec up, session Active => 0",
            &[],
            vec![
                ike(t0, A, Established, Established),
                bgp_to(t0, A, "Active"),
            ],
            t0 + MIN,
            Some(0.0),
        ),
        (
            "BGP: session Established => 1",
            &bgp,
            vec![
                ike(t0, A, Established, Established),
                bgp_to(t0, A, "Established"),
            ],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "BGP: status DOWN fallback (hold timer) => 0",
            &[],
            vec![
                ike(t0, A, Established, Established),
                bgp_status(t0, A, MessageKind::HoldTimerExpired, "DOWN"),
            ],
            t0 + MIN,
            Some(0.0),
        ),
        (
            "BGP: status UP fallback => 1",
            &[],
            vec![bgp_status(t0, A, MessageKind::EndOfRibSent, "UP")],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "BGP: session established but IPsec down still reads the session",
            &bgp,
            vec![bgp_to(t0, A, "Established"), ike(t0 + 1, A, Down, Down)],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "BGP from inventory, no BGP record yet: IPsec stands in",
            &bgp,
            vec![ike(t0, A, Established, Established)],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "static inventory ignores BGP records",
            &stat,
            vec![ike(t0, A, Established, Established), bgp_to(t0, A, "Idle")],
            t0 + MIN,
            Some(1.0),
        ),
        (
            "quiet for eight hours stays up",
            &stat,
            vec![ike(t0, A, Established, Established)],
            t0 + 8 * HOUR,
            Some(1.0),
        ),
        (
            "quiet for eight hours stays down",
            &stat,
            vec![ike(t0, A, Down, Down)],
            t0 + 8 * HOUR,
            Some(0.0),
        ),
        (
            "missing before the first record",
            &stat,
            vec![ike(t0, A, Established, Established)],
            t0 - MIN,
            None,
        ),
        (
            "a record without phase states leaves the state unknown",
            &stat,
            vec![obs(
                t0,
                A,
                ObservationBody::Activity {
                    phase1: None,
                    phase2: None,
                    kind: MessageKind::Unknown,
                },
            )],
            t0 + MIN,
            None,
        ),
        (
            "a traffic sample alone is no state",
            &stat,
            vec![traffic(t0, A, 1, 1, None)],
            t0 + MIN,
            None,
        ),
    ];
    for (name, inventory, records, at, want) in cases {
        let watermark = at.max(t0) + MIN;
        let points = run(inventory, records, watermark);
        assert_eq!(state_at(&points, Some(A), at), want, "{name}");
        // The connection's mean with one known tunnel is that tunnel's state.
        assert_eq!(state_at(&points, None, at), want, "{name} (connection)");
    }
}

/// One tunnel of a static connection is down from 01:00 to 03:30; the other stays up.
#[test]
fn scripted_incident_minute_by_minute() {
    let records = vec![
        ike(0, A, Established, Established),
        ike(0, B, Established, Established),
        ike_kind(HOUR, A, Down, Down, MessageKind::IkeSaDeleted),
        ike_kind(
            HOUR + 40 * MIN,
            A,
            Negotiating,
            Down,
            MessageKind::PskMismatch,
        ),
        ike_kind(
            3 * HOUR + 30 * MIN,
            A,
            Established,
            Established,
            MessageKind::CreateChildSaRequestReceived,
        ),
    ];
    let points = run(&[], records, 4 * HOUR);
    let up = Some((60.0, 60.0, 1.0, 1.0));
    let down = Some((60.0, 0.0, 0.0, 0.0));
    let half = Some((60.0, 30.0, 0.5, 0.5));
    let ts = |p: Option<&Datapoint>| stats(p);
    let a = |t| ts(find(&points, MetricName::TunnelState, Some(A), t));
    let b = |t| ts(find(&points, MetricName::TunnelState, Some(B), t));
    let c = |t| ts(find(&points, MetricName::TunnelState, None, t));
    assert_eq!(a(0), up);
    assert_eq!(a(59 * MIN), up, "00:59");
    assert_eq!(a(HOUR), down, "01:00");
    assert_eq!(a(HOUR + 40 * MIN), down, "01:40 (a record in the outage)");
    assert_eq!(a(3 * HOUR + 29 * MIN), down, "03:29");
    assert_eq!(a(3 * HOUR + 30 * MIN), up, "03:30");
    assert_eq!(a(3 * HOUR + 59 * MIN), up, "03:59");
    assert_eq!(a(4 * HOUR), None, "04:00 is not complete at the watermark");
    for t in [0, HOUR, 2 * HOUR, 3 * HOUR + 30 * MIN] {
        assert_eq!(b(t), up);
    }
    assert_eq!(c(59 * MIN), up);
    assert_eq!(c(HOUR), half);
    assert_eq!(c(3 * HOUR + 29 * MIN), half);
    assert_eq!(c(3 * HOUR + 30 * MIN), up);
    // Exactly one datapoint per tunnel per minute, for the whole 4 hours.
    for ip in [Some(A), Some(B), None] {
        let n = points
            .iter()
            .filter(|p| p.metric == MetricName::TunnelState && p.tunnel_ip.as_deref() == ip)
            .count();
        assert_eq!(n, 240, "{ip:?}");
    }
    // The outage in minutes, from the datapoints: 150.
    let down_minutes: f64 = points
        .iter()
        .filter(|p| p.metric == MetricName::TunnelState && p.tunnel_ip.as_deref() == Some(A))
        .map(|p| p.sample_count - p.sum)
        .sum::<f64>()
        / 60.0;
    assert_eq!(down_minutes, 150.0);
    // IKE phases follow the records; no BGP datapoints on a static connection without BGP logs.
    let p1 = |t| find(&points, MetricName::IkePhase1Up, Some(A), t).map(Datapoint::average);
    assert_eq!(p1(HOUR - MIN), Some(1.0));
    assert_eq!(p1(HOUR), Some(0.0));
    assert_eq!(p1(3 * HOUR + 30 * MIN), Some(1.0));
    assert!(
        !points
            .iter()
            .any(|p| p.metric == MetricName::BgpSessionEstablished)
    );
    // The recovery exchange counts as a rekey.
    let rekeys = find(&points, MetricName::Rekeys, Some(A), 3 * HOUR + 30 * MIN);
    assert_eq!(rekeys.map(|p| p.sum), Some(1.0));
}

/// The same outage starting and ending mid-minute: the boundary minutes are fractional.
#[test]
fn incident_boundaries_inside_a_minute() {
    let records = vec![
        ike(0, A, Established, Established),
        ike(0, B, Established, Established),
        ike(HOUR + 30_000, A, Down, Down),
        ike(3 * HOUR + 30 * MIN + 15_000, A, Established, Established),
    ];
    let points = run(&[], records, 4 * HOUR);
    let get = |ip, t| stats(find(&points, MetricName::TunnelState, ip, t));
    assert_eq!(get(Some(A), HOUR), Some((60.0, 30.0, 0.0, 1.0)));
    assert_eq!(get(None, HOUR), Some((60.0, 45.0, 0.5, 1.0)));
    assert_eq!(get(Some(A), HOUR + MIN), Some((60.0, 0.0, 0.0, 0.0)));
    assert_eq!(
        get(Some(A), 3 * HOUR + 30 * MIN),
        Some((60.0, 45.0, 0.0, 1.0))
    );
    assert_eq!(get(None, 3 * HOUR + 30 * MIN), Some((60.0, 52.5, 0.5, 1.0)));
}

#[test]
fn first_minute_is_partial_and_nothing_comes_before() {
    let points = run(
        &[],
        vec![ike(10 * HOUR + 45_000, A, Established, Established)],
        10 * HOUR + 3 * MIN,
    );
    assert_eq!(
        stats(find(&points, MetricName::TunnelState, Some(A), 10 * HOUR)),
        Some((15.0, 15.0, 1.0, 1.0))
    );
    assert!(points.iter().all(|p| p.ts >= 10 * HOUR));
}

#[test]
fn bgp_incident_ipsec_up_session_down() {
    // BGP connection: IPsec stays up all along; the session drops 01:00–01:10 (hold timer).
    let records = vec![
        ike(0, A, Established, Established),
        bgp_to(0, A, "Established"),
        bgp_status(HOUR, A, MessageKind::HoldTimerExpired, "DOWN"),
        bgp_to(HOUR, A, "Idle"),
        bgp_to(HOUR + 5 * MIN, A, "Connect"),
        bgp_to(HOUR + 10 * MIN, A, "Established"),
    ];
    let points = run(&[], records, 2 * HOUR);
    assert_eq!(state_at(&points, Some(A), HOUR - MIN), Some(1.0));
    assert_eq!(state_at(&points, Some(A), HOUR), Some(0.0));
    assert_eq!(state_at(&points, Some(A), HOUR + 9 * MIN), Some(0.0));
    assert_eq!(state_at(&points, Some(A), HOUR + 10 * MIN), Some(1.0));
    let ipsec = find(&points, MetricName::IkePhase2Up, Some(A), HOUR + 5 * MIN);
    assert_eq!(ipsec.map(Datapoint::average), Some(1.0));
    let bgp = find(
        &points,
        MetricName::BgpSessionEstablished,
        Some(A),
        HOUR + 5 * MIN,
    );
    assert_eq!(bgp.map(Datapoint::average), Some(0.0));
    // One flap (the session left Established once), in the minute it happened.
    let flaps: Vec<_> = points
        .iter()
        .filter(|p| p.metric == MetricName::BgpFlaps)
        .map(|p| (p.ts, p.sum))
        .collect();
    assert_eq!(flaps, [(HOUR, 1.0)]);
}

#[test]
fn counter_deltas_resets_and_bandwidth() {
    let conc = Some("vcn-0123456789abcdef0");
    let records = vec![
        ike(0, A, Established, Established),
        traffic(MIN, A, 1_000, 100, conc),            // baseline
        traffic(2 * MIN, A, 1_600, 400, conc),        // +600 / +300, minute 00:01
        traffic(3 * MIN, A, 200, 50, conc),           // reset: +200 / +50, minute 00:02
        traffic(4 * MIN, A, 500, 50, conc),           // +300 / +0, minute 00:03
        traffic(4 * MIN + 30_000, A, 800, 150, conc), // +300 / +100, minute 00:04
    ];
    let points = run(&[], records, 6 * MIN);
    let data = |metric, ip: Option<&str>| -> Vec<(i64, f64, f64, f64, f64)> {
        points
            .iter()
            .filter(|p| p.metric == metric && p.tunnel_ip.as_deref() == ip)
            .map(|p| (p.ts / MIN, p.sample_count, p.sum, p.minimum, p.maximum))
            .collect()
    };
    assert_eq!(
        data(MetricName::TunnelDataIn, Some(A)),
        [
            (1, 1.0, 600.0, 600.0, 600.0),
            (2, 1.0, 200.0, 200.0, 200.0),
            (3, 1.0, 300.0, 300.0, 300.0),
            (4, 1.0, 300.0, 300.0, 300.0),
        ]
    );
    assert_eq!(
        data(MetricName::TunnelDataOut, Some(A)),
        [
            (1, 1.0, 300.0, 300.0, 300.0),
            (2, 1.0, 50.0, 50.0, 50.0),
            (3, 1.0, 0.0, 0.0, 0.0),
            (4, 1.0, 100.0, 100.0, 100.0),
        ]
    );
    // Connection level = the sum over its tunnels (one tunnel here).
    assert_eq!(data(MetricName::TunnelDataIn, None).len(), 4);
    // Bits per second over each sample's interval.
    let bw: Vec<(i64, f64)> = points
        .iter()
        .filter(|p| p.metric == MetricName::ConcentratorBandwidthUsage)
        .map(|p| (p.ts / MIN, p.average()))
        .collect();
    assert_eq!(
        bw,
        [
            (1, 900.0 * 8.0 / 60.0),
            (2, 250.0 * 8.0 / 60.0),
            (3, 300.0 * 8.0 / 60.0),
            (4, 400.0 * 8.0 / 30.0),
        ]
    );
    assert!(
        points
            .iter()
            .filter(|p| p.metric == MetricName::ConcentratorBandwidthUsage)
            .all(|p| p.concentrator_id.as_deref() == conc && p.tunnel_ip.is_none())
    );
}

#[test]
fn two_tunnels_sum_at_connection_level() {
    let records = vec![
        traffic(MIN, A, 0, 0, None),
        traffic(MIN, B, 0, 0, None),
        traffic(2 * MIN, A, 100, 10, None),
        traffic(2 * MIN, B, 50, 5, None),
    ];
    let points = run(&[], records, 3 * MIN);
    let conn = find(&points, MetricName::TunnelDataIn, None, MIN);
    assert_eq!(stats(conn), Some((2.0, 150.0, 50.0, 100.0)));
    assert!(
        !points
            .iter()
            .any(|p| p.metric == MetricName::ConcentratorBandwidthUsage)
    );
}

#[test]
fn lateness_window_orders_records_and_counts_late_ones() {
    let ordered = vec![
        ike(0, A, Established, Established),
        ike(10 * MIN, A, Down, Down),
        ike(12 * MIN, A, Established, Established),
    ];
    let mut shuffled = ordered.clone();
    shuffled.reverse();
    let mut m = Monitor::new(MonitorConfig::default()).unwrap();
    for r in shuffled {
        assert_eq!(m.push(r), Pushed::Accepted);
    }
    m.advance(20 * MIN);
    let out_of_order = m.drain();
    assert_eq!(out_of_order, run(&[], ordered, 15 * MIN));
    // Cut is now 15:00: a record from 14:00 is late, one from 16:00 is not.
    assert_eq!(m.push(ike(14 * MIN, A, Down, Down)), Pushed::Late);
    assert_eq!(m.push(ike(16 * MIN, A, Down, Down)), Pushed::Accepted);
    assert_eq!(m.late_records(), 1);
    m.advance(23 * MIN);
    let points = m.drain();
    assert_eq!(
        state_at(&points, Some(A), 14 * MIN),
        None,
        "already out before"
    );
    assert_eq!(
        state_at(&points, Some(A), 15 * MIN),
        Some(1.0),
        "the late record was not applied"
    );
    assert_eq!(state_at(&points, Some(A), 16 * MIN), Some(0.0));
    // The live view sees buffered records at once.
    assert_eq!(
        m.push(ike(23 * MIN, A, Established, Established)),
        Pushed::Accepted
    );
    let status = m.status();
    assert_eq!(status.tunnels[0].state, Some(true));
    assert_eq!(status.late_records, 1);
}

#[test]
fn derived_counts_per_minute() {
    let records = vec![
        ike(0, A, Established, Established),
        ike_kind(
            30_000,
            A,
            Established,
            Rekeying,
            MessageKind::CreateChildSaRequestSent,
        ),
        ike_kind(
            31_000,
            A,
            Established,
            Established,
            MessageKind::CreateChildSaResponseReceived,
        ),
        ike_kind(MIN + 1, A, Down, Down, MessageKind::DpdTimeout),
        ike_kind(MIN + 2, A, Down, Down, MessageKind::DpdPeerDead),
        obs(
            2 * MIN,
            A,
            ObservationBody::Bgp {
                session: None,
                kind: MessageKind::RouteDenied,
            },
        ),
        obs(
            2 * MIN + 1,
            A,
            ObservationBody::Bgp {
                session: None,
                kind: MessageKind::RouteDenied,
            },
        ),
    ];
    let points = run(&[], records, 3 * MIN);
    let count = |metric, t| find(&points, metric, Some(A), t).map(|p| p.sum);
    assert_eq!(count(MetricName::Rekeys, 0), Some(1.0));
    assert_eq!(count(MetricName::DpdTimeouts, MIN), Some(2.0));
    assert_eq!(count(MetricName::RouteDenials, 2 * MIN), Some(2.0));
    assert_eq!(
        count(MetricName::Rekeys, MIN),
        None,
        "zero counts are not emitted"
    );
    // RouteStatus records do not change the session: no BGP state, static TunnelState remains.
    assert_eq!(state_at(&points, Some(A), 2 * MIN), Some(0.0));
    assert!(
        !points
            .iter()
            .any(|p| p.metric == MetricName::BgpSessionEstablished)
    );
}

#[test]
fn status_view_and_parsed_events() {
    let input = concat!(
        r#"{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580429641,"type":"BGPStatus","status":"UP","message":{"details":"AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85"}}"#,
        "\n",
        r#"{"type":"TunnelTraffic","resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580430000,"bytes_in":10,"bytes_out":20,"packets_in":1,"packets_out":1,"concentrator_id":"vcn-1"}"#,
        "\n",
        r#"{"type":"TunnelTraffic","resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580490000,"bytes_in":110,"bytes_out":220,"packets_in":2,"packets_out":2,"concentrator_id":"vcn-1"}"#,
        "\n",
    );
    let mut m = Monitor::new(MonitorConfig::default()).unwrap();
    for p in tunnelwatch_parsers::parse_all("test", input.as_bytes(), DecoderOptions::default()) {
        let Parsed::Event(e) = p else { panic!("{p:?}") };
        m.push(Observation::from_event(&e).unwrap());
    }
    let s = m.status();
    assert_eq!(s.tunnels.len(), 1);
    let t = &s.tunnels[0];
    assert_eq!((&*t.vpn_id, &*t.tunnel_ip), ("vpn-1234abcd", "1.2.3.4"));
    assert_eq!(t.routing, Routing::Bgp);
    assert_eq!(t.state, Some(true));
    assert_eq!(t.bgp_established, Some(true));
    assert_eq!((t.bytes_in_total, t.bytes_out_total), (100, 200));
    assert_eq!(t.events, [(MessageKind::BgpStateChange, 1)]);
    assert_eq!(s.connections[0].concentrator_id.as_deref(), Some("vcn-1"));
    assert_eq!(s.connections[0].state, Some(1.0));
    assert!(
        Monitor::new(MonitorConfig {
            lateness_ms: -1,
            ..Default::default()
        })
        .is_err()
    );
}

/// Time in state in the live view: the event time of the first record that put the tunnel in
/// its current state, the same whether that record is applied or still in the lateness window;
/// records that keep the state do not move it.
#[test]
fn state_since_is_the_first_record_of_the_current_state() {
    let mut m = Monitor::new(MonitorConfig {
        inventory: [(VPN.to_owned(), Routing::Static)].into_iter().collect(),
        ..Default::default()
    })
    .unwrap();
    let since = |m: &Monitor| m.status().tunnels[0].state_since_ms;
    m.push(ike(10 * MIN, A, Established, Established));
    m.push(ike(11 * MIN, A, Established, Rekeying));
    assert_eq!(since(&m), Some(10 * MIN), "pending");
    m.advance(HOUR);
    assert_eq!(since(&m), Some(10 * MIN), "applied");
    m.push(ike(70 * MIN, A, Down, Down));
    m.push(ike(71 * MIN, A, Down, Down));
    assert_eq!(since(&m), Some(70 * MIN), "down, pending");
    m.advance(2 * HOUR);
    assert_eq!(since(&m), Some(70 * MIN), "down, applied");
    m.push(ike(130 * MIN, A, Established, Negotiating));
    m.push(ike(131 * MIN, A, Established, Established));
    m.advance(3 * HOUR);
    assert_eq!(m.status().tunnels[0].state, Some(true));
    assert_eq!(
        since(&m),
        Some(131 * MIN),
        "up again at the record that completed phase 2"
    );
}

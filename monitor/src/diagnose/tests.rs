//! Table tests of the episode cutting and the rule choice on hand-made record sequences.

use super::*;
use MessageKind::*;
use PhaseState::{Down, Established};

const M: i64 = 60_000;
const A: &str = "1.1.1.1";
const B: &str = "2.2.2.2";

fn act(min: i64, ip: &str, kind: MessageKind, sev: Severity, p: PhaseState) -> Record {
    Record {
        ts: min * M,
        tunnel_ip: Arc::from(ip),
        kind,
        severity: sev,
        phase1: Some(p),
        phase2: Some(p),
        bgp_transition: None,
        prefix: None,
    }
}

fn ok(min: i64, ip: &str) -> Record {
    act(
        min,
        ip,
        CreateChildSaResponseReceived,
        Severity::Info,
        Established,
    )
}

fn bgp(min: i64, ip: &str, kind: MessageKind, sev: Severity, t: Option<(&str, &str)>) -> Record {
    Record {
        ts: min * M,
        tunnel_ip: Arc::from(ip),
        kind,
        severity: sev,
        phase1: None,
        phase2: None,
        bgp_transition: t.map(|(a, b)| (Arc::from(a), Arc::from(b))),
        prefix: None,
    }
}

/// The other tunnel, healthy all along.
fn healthy(ip: &str, until: i64) -> Vec<Record> {
    (0..=until).step_by(10).map(|m| ok(m, ip)).collect()
}

/// Tunnel A drops (phase 2 deleted, down for 2 minutes) first at minute 20, then again after
/// each of `uptimes` minutes up.
fn periodic_drops(uptimes: &[i64]) -> Vec<Record> {
    let mut records = vec![ok(0, A)];
    let mut at = 20;
    for up in std::iter::once(&0).chain(uptimes) {
        at += up;
        records.push(act(at, A, Phase2SaDeleted, Severity::Warning, Down));
        at += 2;
        records.push(ok(at, A));
    }
    records
}

fn causes(records: Vec<Record>) -> Vec<(&'static str, i64, Option<i64>, usize)> {
    diagnose_connection("vpn-1", &records, 300 * M)
        .diagnoses
        .iter()
        .map(|d| {
            (
                d.cause,
                d.from_ms / M,
                d.until_ms.map(|u| u / M),
                d.episodes,
            )
        })
        .collect()
}

#[test]
fn root_causes_of_hand_made_incidents() {
    type Case = (
        &'static str,
        Vec<Record>,
        Vec<(&'static str, i64, Option<i64>, usize)>,
    );
    let e = Severity::Error;
    let cases: Vec<Case> = vec![
        (
            "PSK mismatch, recovered",
            vec![
                ok(0, A),
                act(10, A, IkeSaDeleted, e, Down),
                act(11, A, PskMismatch, e, Down),
                act(12, A, AuthFailed, e, Down),
                act(13, A, PskMismatch, e, Down),
                ok(40, A),
            ],
            vec![("psk-mismatch", 10, Some(40), 1)],
        ),
        (
            "three DPD flaps in an hour: one flapping diagnosis",
            vec![
                ok(0, A),
                act(10, A, DpdTimeout, e, Down),
                ok(12, A),
                act(30, A, DpdTimeout, e, Down),
                ok(33, A),
                act(50, A, DpdTimeout, e, Down),
                ok(51, A),
            ],
            vec![("dpd-flapping", 10, Some(51), 3)],
        ),
        (
            "endpoint replacement: short, same tunnel back, other up",
            vec![ok(0, A), act(20, A, IkeSaDeleted, e, Down), ok(25, A)],
            vec![("endpoint-replacement", 20, Some(25), 1)],
        ),
        (
            "down for hours while the other tunnel is up",
            vec![
                ok(0, A),
                act(20, A, IkeSaDeleted, e, Down),
                act(25, A, Phase1Timeout, e, Down),
                act(200, A, Phase1Timeout, e, Down),
                ok(210, A),
            ],
            vec![("single-tunnel", 20, Some(210), 1)],
        ),
        (
            "hold timer with IPsec up",
            vec![
                ok(0, A),
                bgp(
                    0,
                    A,
                    BgpStateChange,
                    Severity::Info,
                    Some(("OpenConfirm", "Established")),
                ),
                bgp(30, A, HoldTimerExpired, e, None),
                bgp(30, A, BgpStateChange, e, Some(("Established", "Idle"))),
                ok(35, A),
                bgp(
                    40,
                    A,
                    BgpStateChange,
                    Severity::Info,
                    Some(("OpenConfirm", "Established")),
                ),
            ],
            vec![("bgp-hold-timer", 30, Some(40), 1)],
        ),
        (
            "BGP never comes up while IPsec is up",
            vec![
                ok(0, A),
                bgp(
                    1,
                    A,
                    BgpStateChange,
                    Severity::Info,
                    Some(("Idle", "Connect")),
                ),
                bgp(
                    2,
                    A,
                    BgpStateChange,
                    Severity::Warning,
                    Some(("Connect", "Active")),
                ),
                bgp(
                    4,
                    A,
                    BgpStateChange,
                    Severity::Info,
                    Some(("Active", "Connect")),
                ),
                bgp(
                    5,
                    A,
                    BgpStateChange,
                    Severity::Warning,
                    Some(("Connect", "Active")),
                ),
                ok(10, A),
                bgp(
                    12,
                    A,
                    BgpStateChange,
                    Severity::Info,
                    Some(("OpenConfirm", "Established")),
                ),
            ],
            vec![("bgp-not-establishing", 2, Some(12), 1)],
        ),
        (
            "benign noise: routine deletes and collisions with the phases up",
            vec![
                ok(0, A),
                act(10, A, Phase2SaDeleted, Severity::Info, Established),
                act(20, A, RedundantSaDeleted, Severity::Info, Established),
                act(30, A, ChildRekeyCollision, Severity::Warning, Established),
                ok(31, A),
            ],
            vec![],
        ),
        (
            "four drops after the same 25 minutes up: lifetime mismatch",
            periodic_drops(&[25, 25, 25]),
            vec![("lifetime-mismatch", 20, Some(103), 4)],
        ),
        (
            "three drops after the same up-time are not yet a period",
            periodic_drops(&[25, 25]),
            vec![("unexplained", 20, Some(76), 3)],
        ),
        (
            "four drops after irregular up-times",
            periodic_drops(&[25, 31, 19]),
            vec![("unexplained", 20, Some(103), 4)],
        ),
        (
            "an outage nothing explains",
            vec![
                ok(0, A),
                act(10, A, Unknown, Severity::Warning, Down),
                ok(20, A),
            ],
            vec![("unexplained", 10, Some(20), 1)],
        ),
    ];
    for (name, mut records, want) in cases {
        records.extend(healthy(B, 300));
        assert_eq!(causes(records), want, "{name}");
    }
}

#[test]
fn downs_right_after_rekeys_are_counted() {
    let e = Severity::Error;
    let mut records = vec![ok(0, A)];
    for start in [60, 120, 180] {
        records.push(ok(start, A)); // the rekey exchange
        records.push(act(start + 1, A, Unknown, e, Down));
        records.push(ok(start + 5, A));
    }
    records.extend(healthy(B, 300));
    let r = diagnose_connection("vpn-1", &records, 300 * M);
    assert_eq!(r.tunnels[0].downs_near_rekey, 3);
    // (The exchange each recovery logs, 4 minutes after the down, is not counted as a rekey.)
}

#[test]
fn flap_figures_and_the_other_tunnel() {
    let e = Severity::Error;
    let mut records = vec![
        ok(0, A),
        act(10, A, IkeSaDeleted, e, Down),
        ok(15, A),
        act(100, A, IkeSaDeleted, e, Down),
        ok(104, A),
    ];
    // B down at the same time as A's second outage: that one is no endpoint replacement.
    records.extend([ok(0, B), act(99, B, DpdTimeout, e, Down), ok(120, B)]);
    let r = diagnose_connection("vpn-1", &records, 300 * M);
    let a = &r.tunnels[0];
    assert_eq!(a.down, [(10 * M, Some(15 * M)), (100 * M, Some(104 * M))]);
    assert_eq!(
        (a.down_ms, a.mtbf_ms, a.mttr_ms),
        (9 * M, Some(90 * M), Some(270_000))
    );
    let got: Vec<(&str, &str)> = r
        .diagnoses
        .iter()
        .map(|d| (d.cause, &*d.tunnel_ip))
        .collect();
    assert_eq!(
        got,
        [
            ("endpoint-replacement", A),
            ("dpd-flapping", B),
            ("unexplained", A)
        ]
    );
}

/// In a large fleet a few outages share two minutes by chance: only a share of the fleet that
/// large makes a fleet event.
#[test]
fn fleet_events_scale_with_the_fleet() {
    let report = |i: usize, down_at: Option<i64>| ConnectionReport {
        vpn_id: Arc::from(format!("vpn-{i:05}")),
        tunnels: Vec::new(),
        diagnoses: down_at
            .map(|at| Diagnosis {
                cause: "dpd-flapping",
                title: "t",
                tunnel_ip: Arc::from(A),
                from_ms: at,
                until_ms: Some(at + 3 * M),
                tunnel_down: true,
                confidence: 0.8,
                episodes: 1,
                recurs_after_ms: None,
                evidence: Vec::new(),
                remedy: "r",
                gateway: None,
            })
            .into_iter()
            .collect(),
        trouble_score: 0.0,
    };
    // (fleet size, connections down in the same minute, fleet events)
    for (size, together, want) in [
        (6, 3, 1),
        (6, 2, 0),
        (1000, 3, 0),
        (1000, 19, 0),
        (1000, 20, 1),
    ] {
        let reports: Vec<ConnectionReport> = (0..size)
            .map(|i| report(i, (i < together).then_some(60 * M + i as i64 * 1000)))
            .collect();
        assert_eq!(
            fleet_events(&reports).len(),
            want,
            "{size} connections, {together} together"
        );
    }
}

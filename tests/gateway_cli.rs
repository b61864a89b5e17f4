//! Both ends of a tunnel, end to end through the binary: a real gateway's log (strongSwan
//! 5.9.8 and FRR 8.4.4, captured by `tests/data/gateway/capture.sh`) ingested beside AWS's
//! records of the same failure, then `tunnelwatch diagnose` must name AWS's cause and the side
//! to fix from the gateway's own lines.
//!
//! AWS's side cannot be captured here: it is written in AWS's documented wording (the
//! catalogue's messages), at the time the gateway logged the failure, for tunnel 192.0.2.10
//! (the outside address the captured gateway peers with) and, for BGP, neighbour 169.254.10.2
//! (the gateway's inside address in the captures' /30).

mod common;

use std::path::{Path, PathBuf};

use common::tunnelwatch_ok;
use serde_json::{Value, json};

const VPN: &str = "vpn-0123456789abcdef0";

fn capture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gateway")
        .join(rel)
}

/// The time (epoch seconds) of the first line of `rel` that contains `text`.
fn time_of(rel: &str, text: &str) -> i64 {
    let body = std::fs::read_to_string(capture(rel)).unwrap();
    let line = body
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("{rel}: no line with {text:?}"));
    let parsed = tunnelwatch_parsers::parse_all(
        rel,
        line.as_bytes(),
        tunnelwatch_parsers::DecoderOptions {
            syslog_year: Some(2026),
            ..Default::default()
        },
    );
    let [tunnelwatch_parsers::Parsed::Event(e)] = parsed.as_slice() else {
        panic!("{rel}: {line}: {parsed:?}")
    };
    e.ts / 1000
}

fn activity(t: i64, up: bool, details: &str) -> Value {
    let state = if up { "established" } else { "down" };
    json!({"event_timestamp": t, "dpd_enabled": true, "nat_t_detected": false,
           "ike_phase1_state": state, "ike_phase2_state": state, "details": details})
}

fn bgp(t: i64, status: &str, details: &str) -> Value {
    json!({"resource_id": format!("{VPN}_192.0.2.10"), "event_timestamp": t, "type": "BGPStatus",
           "status": status, "message": {"details": details}})
}

/// `tunnelwatch ingest --syslog-year 2026` of `inputs` into `data` (charon writes no year; the
/// captures are from 2026).
fn ingest(data: &Path, inputs: &[PathBuf]) {
    let mut args = vec![
        "ingest".to_owned(),
        "--data".into(),
        data.display().to_string(),
        "--syslog-year".into(),
        "2026".into(),
    ];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    tunnelwatch_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// `tunnelwatch diagnose --data DATA --output json` with `args`, parsed.
fn diagnose_json(data: &Path, args: &[&str]) -> Value {
    let data = data.display().to_string();
    let mut all = vec!["diagnose", "--data", &data, "--output", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&tunnelwatch_ok(&all)).unwrap()
}

fn write_lines(path: &Path, values: &[Value]) {
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(path, text).unwrap();
}

struct Scenario {
    name: &'static str,
    /// The gateway's capture.
    gateway: &'static str,
    /// A piece of the capture's line at which AWS logs its side.
    at: &'static str,
    /// AWS's tunnel activity and BGP records, given that time.
    aws: fn(i64) -> (Vec<Value>, Vec<Value>),
    cause: &'static str,
    side: &'static str,
    /// A gateway kind the verdict's evidence must show.
    gateway_kind: &'static str,
}

const ESTABLISHED: &str = "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.10.2";

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "IKEv2 pre-shared key mismatch",
        gateway: "strongswan/ikev2-psk-mismatch.cgw.log",
        at: "received AUTHENTICATION_FAILED notify error",
        aws: |t| {
            (
                vec![
                    activity(
                        t - 600,
                        true,
                        "AWS tunnel processed request (id=1) for CREATE_CHILD_SA",
                    ),
                    activity(
                        t,
                        false,
                        "AWS tunnel detected a pre-shared key mismatch with cgw: 198.51.100.20",
                    ),
                ],
                vec![],
            )
        },
        cause: "psk-mismatch",
        side: "customer_gateway",
        gateway_kind: "auth_failed",
    },
    Scenario {
        name: "IKE proposal mismatch",
        gateway: "strongswan/ikev2-ike-proposal-mismatch.cgw.log",
        at: "received NO_PROPOSAL_CHOSEN notify error",
        aws: |t| {
            (
                vec![
                    activity(
                        t - 600,
                        true,
                        "AWS tunnel processed request (id=1) for CREATE_CHILD_SA",
                    ),
                    activity(t, false, "No Proposal Match Found by AWS"),
                ],
                vec![],
            )
        },
        cause: "phase1-proposal-mismatch",
        side: "customer_gateway",
        gateway_kind: "no_proposal_chosen",
    },
    Scenario {
        name: "traffic selectors unacceptable",
        gateway: "strongswan/ikev2-ts-unacceptable.cgw.log",
        at: "received TS_UNACCEPTABLE notify",
        aws: |t| {
            (
                vec![
                    activity(
                        t - 600,
                        true,
                        "AWS tunnel processed request (id=1) for CREATE_CHILD_SA",
                    ),
                    json!({"event_timestamp": t, "dpd_enabled": true, "nat_t_detected": false,
                           "ike_phase1_state": "established", "ike_phase2_state": "down",
                           "details": "AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder"}),
                ],
                vec![],
            )
        },
        cause: "traffic-selector-mismatch",
        side: "customer_gateway",
        gateway_kind: "ts_unacceptable",
    },
    Scenario {
        name: "DPD timeout with the path black-holed",
        gateway: "strongswan/ikev2-dpd-timeout.cgw.log",
        at: "giving up after",
        aws: |t| {
            (
                vec![
                    activity(
                        t - 600,
                        true,
                        "AWS tunnel processed request (id=1) for CREATE_CHILD_SA",
                    ),
                    activity(t, false, "AWS tunnel DPD timed out after 3 retransmits"),
                ],
                vec![],
            )
        },
        cause: "dpd-flapping",
        side: "network",
        gateway_kind: "peer_not_responding",
    },
    Scenario {
        name: "BGP hold timer expired with IPsec up",
        gateway: "frr-bird/bgp-hold-timer-expired.frr.log",
        at: "(Hold Timer Expired)",
        aws: |t| {
            (
                vec![
                    activity(
                        t - 120,
                        true,
                        "AWS tunnel processed request (id=1) for CREATE_CHILD_SA",
                    ),
                    activity(
                        t + 60,
                        true,
                        "AWS tunnel processed request (id=2) for CREATE_CHILD_SA",
                    ),
                ],
                vec![
                    bgp(t - 60, "UP", ESTABLISHED),
                    bgp(
                        t,
                        "DOWN",
                        "AWS-side peer sent a Hold Timer Expired notification to neighbor 169.254.10.2",
                    ),
                ],
            )
        },
        cause: "bgp-hold-timer",
        side: "network",
        gateway_kind: "hold_timer_expired",
    },
    Scenario {
        name: "BGP bad peer AS",
        gateway: "frr-bird/bgp-bad-peer-as-bird-misconfigured.frr.log",
        at: "%NOTIFICATION: received from neighbor",
        aws: |t| {
            (
                vec![activity(
                    t - 120,
                    true,
                    "AWS tunnel processed request (id=1) for CREATE_CHILD_SA",
                )],
                vec![bgp(
                    t,
                    "DOWN",
                    "AWS-side peer detected a bad OPEN message from neighbor 169.254.10.2 - remote AS is 65000, expected 65001",
                )],
            )
        },
        cause: "bgp-misconfiguration",
        side: "customer_gateway",
        gateway_kind: "bad_peer_as",
    },
];

#[test]
fn each_scenario_is_diagnosed_to_the_same_cause_and_side_from_both_ends() {
    for s in SCENARIOS {
        let dir = tempfile::tempdir().unwrap();
        let t = time_of(s.gateway, s.at);
        let (activity, bgp) = (s.aws)(t);
        let mut inputs = vec![capture(s.gateway)];
        if !activity.is_empty() {
            let p = dir.path().join(format!("{VPN}-192.0.2.10.ndjson"));
            write_lines(&p, &activity);
            inputs.push(p);
        }
        if !bgp.is_empty() {
            let p = dir.path().join("bgp.ndjson");
            write_lines(&p, &bgp);
            inputs.push(p);
        }
        let data = dir.path().join("data");
        ingest(&data, &inputs);
        let v = diagnose_json(&data, &[VPN, "--timeline"]);
        let diagnoses = v["connections"][0]["diagnoses"].as_array().unwrap();
        let d = diagnoses
            .iter()
            .find(|d| d["cause"] == s.cause)
            .unwrap_or_else(|| panic!("{}: no {} in {diagnoses:#?}", s.name, s.cause));
        assert_eq!(d["gateway"]["side"], s.side, "{}: {d:#}", s.name);
        let kinds: Vec<&str> = d["gateway"]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["gateway_kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&s.gateway_kind), "{}: {kinds:?}", s.name);
        // The timeline holds both sides of the tunnel, in time order.
        let entries = v["timeline"][0]["entries"].as_array().unwrap();
        assert_eq!(v["timeline"][0]["tunnel_ip"], "192.0.2.10", "{}", s.name);
        let sides: Vec<&str> = entries
            .iter()
            .map(|e| e["side"].as_str().unwrap())
            .collect();
        assert!(
            sides.contains(&"aws") && sides.iter().any(|s| *s != "aws"),
            "{}: {sides:?}",
            s.name
        );
        let times: Vec<i64> = entries.iter().map(|e| e["ts"].as_i64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{}", s.name);
    }
}

#[test]
fn gateway_lines_are_stored_with_their_columns_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = capture("strongswan/ikev2-psk-mismatch.cgw.syslog");
    ingest(&data, std::slice::from_ref(&log));
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    let csv = common::query_csv(
        &data,
        "SELECT count(*) AS n, count(DISTINCT source_line) AS l, \
         sum(CASE WHEN gateway_kind = 'auth_failed' THEN 1 ELSE 0 END) AS auth, \
         max(CASE WHEN gateway_kind = 'auth_failed' THEN notify END) AS notify, \
         min(daemon) AS daemon, max(envelope) AS envelope FROM gateway_events",
    );
    assert_eq!(
        csv.lines().nth(1).unwrap(),
        format!("{lines},{lines},1,AUTHENTICATION_FAILED,strongswan,syslog")
    );
    // Nothing of it reached the AWS tables or the rejects.
    let csv = common::query_csv(
        &data,
        "SELECT (SELECT count(*) FROM tunnel_activity) + (SELECT count(*) FROM bgp_events) \
         + (SELECT count(*) FROM rejects) AS n",
    );
    assert_eq!(csv.lines().nth(1).unwrap(), "0");
}

/// The README's example (`docs/examples/both-ends/`): one tunnel fails twice, a PSK mismatch
/// that strongSwan logged and, once that is fixed, a BGP hold-timer expiry that FRR logged,
/// 100 s apart (inside each other's margins). Each diagnosis hears its own protocol's daemon
/// only, and names its own side.
#[test]
fn one_tunnel_two_failures_each_heard_from_its_own_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/both-ends");
    let mut inputs = vec![
        capture("strongswan/ikev2-psk-mismatch.cgw.log"),
        capture("frr-bird/bgp-hold-timer-expired.frr.log"),
    ];
    for f in std::fs::read_dir(&example).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ndjson") {
            inputs.push(p);
        }
    }
    ingest(&data, &inputs);
    let v = diagnose_json(&data, &[VPN]);
    let diagnoses = v["connections"][0]["diagnoses"].as_array().unwrap();
    let heard = |cause: &str| {
        let d = diagnoses
            .iter()
            .find(|d| d["cause"] == cause)
            .unwrap_or_else(|| panic!("no {cause} in {diagnoses:#?}"));
        let mut daemons: Vec<&str> = d["gateway"]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["daemon"].as_str().unwrap())
            .collect();
        daemons.dedup();
        (d["gateway"]["side"].as_str().unwrap(), daemons)
    };
    assert_eq!(
        heard("psk-mismatch"),
        ("customer_gateway", vec!["strongswan"])
    );
    assert_eq!(heard("bgp-hold-timer"), ("network", vec!["frr"]));
}

/// `simulate --gateway` end to end: a fleet with every scenario, its gateways' logs beside
/// AWS's, ingested and diagnosed: each incident's diagnosis names the side the scenario
/// faults, from the gateway's own lines, for both daemon pairs.
#[test]
fn simulated_gateways_give_each_incident_its_side() {
    let expected: &[(&str, &[&str], &str)] = &[
        ("psk-mismatch", &["psk-mismatch"], "customer_gateway"),
        (
            "proposal-mismatch",
            &["phase1-proposal-mismatch", "phase2-proposal-mismatch"],
            "customer_gateway",
        ),
        (
            "ts-unacceptable",
            &["traffic-selector-mismatch"],
            "customer_gateway",
        ),
        ("dpd-flap", &["dpd-flapping"], "network"),
        ("bgp-hold-timer", &["bgp-hold-timer"], "network"),
        ("prefix-limit", &["prefix-limit"], "customer_gateway"),
        ("endpoint-replacement", &["endpoint-replacement"], "aws"),
        (
            "lifetime-mismatch",
            &["lifetime-mismatch"],
            "customer_gateway",
        ),
    ];
    for pair in ["strongswan,frr", "libreswan,bird"] {
        let dir = tempfile::tempdir().unwrap();
        let (logs, data) = (dir.path().join("logs"), dir.path().join("data"));
        let mut args: Vec<String> = [
            "simulate",
            "--connections",
            "12",
            "--duration",
            "8h",
            "--seed",
            "3",
            "--no-random-faults",
            "--gateway",
            pair,
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(logs.display().to_string());
        for (s, _, _) in expected {
            args.extend(["--scenario".to_string(), s.to_string()]);
        }
        tunnelwatch_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        ingest(&data, std::slice::from_ref(&logs));
        let v = diagnose_json(&data, &[]);
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(logs.join("truth.json")).unwrap())
                .unwrap();
        for inc in truth["incidents"].as_array().unwrap() {
            let scenario = inc["scenario"].as_str().unwrap();
            let (_, causes, side) = expected.iter().find(|(s, _, _)| *s == scenario).unwrap();
            let ips: Vec<&str> = inc["tunnel_ips"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap())
                .collect();
            let connection = v["connections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["vpn_id"] == inc["vpn_id"])
                .unwrap_or_else(|| panic!("{pair}: {scenario}: {} not diagnosed", inc["vpn_id"]));
            let found: Vec<(String, String)> = connection["diagnoses"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| ips.contains(&d["tunnel_ip"].as_str().unwrap()))
                .map(|d| {
                    (
                        d["cause"].as_str().unwrap().to_owned(),
                        d["gateway"]["side"].as_str().unwrap_or("none").to_owned(),
                    )
                })
                .collect();
            assert!(
                found
                    .iter()
                    .any(|(c, s)| causes.contains(&c.as_str()) && s == side),
                "{pair}: {scenario}: want {causes:?} on the {side} side, got {found:?}"
            );
        }
    }
}

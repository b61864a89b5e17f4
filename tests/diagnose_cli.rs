//! End to end: `tunnelwatch simulate` writes a fleet with every fault scenario on its own
//! connection (the rest healthy, with the routine noise of rekeys, collisions, phase 2 deletes
//! and route updates), `ingest` stores it, and `tunnelwatch diagnose` names each scenario's root
//! cause on the right tunnels with its time span within one minute of `truth.json`, finds
//! nothing on the healthy connections, gives the same diagnoses for the text rendering of the
//! same logs, and prints stable JSON (golden file).

mod common;

use std::path::Path;

use common::tunnelwatch_ok as tunnelwatch;

use serde_json::Value;

const SCENARIOS: [&str; 10] = [
    "psk-mismatch",
    "proposal-mismatch",
    "dpd-flap",
    "ts-unacceptable",
    "bgp-hold-timer",
    "prefix-limit",
    "as-path-loop",
    "endpoint-replacement",
    "single-tunnel",
    "lifetime-mismatch",
];

/// The causes a scenario may be diagnosed as.
fn causes_of(scenario: &str) -> &'static [&'static str] {
    match scenario {
        "psk-mismatch" => &["psk-mismatch"],
        "proposal-mismatch" => &["phase1-proposal-mismatch", "phase2-proposal-mismatch"],
        "dpd-flap" => &["dpd-flapping"],
        "ts-unacceptable" => &["traffic-selector-mismatch"],
        "bgp-hold-timer" => &["bgp-hold-timer"],
        "prefix-limit" => &["prefix-limit"],
        "as-path-loop" => &["as-path-loop"],
        "endpoint-replacement" => &["endpoint-replacement"],
        "single-tunnel" => &["single-tunnel"],
        "lifetime-mismatch" => &["lifetime-mismatch"],
        other => panic!("unknown scenario {other}"),
    }
}

/// Simulates (seed 7, 14 connections, 6 h, every scenario) in `format`, ingests, and returns
/// (truth, diagnose --output json).
fn run(dir: &Path, format: &str) -> (Value, Value) {
    let logs = dir.join(format!("logs-{format}"));
    let data = dir.join(format!("data-{format}"));
    let mut args = vec![
        "simulate",
        "--out",
        logs.to_str().unwrap(),
        "--connections",
        "14",
        "--duration",
        "6h",
        "--seed",
        "7",
        "--format",
        format,
    ];
    for s in SCENARIOS {
        args.extend(["--scenario", s]);
    }
    tunnelwatch(&args);
    tunnelwatch(&[
        "ingest",
        "--data",
        data.to_str().unwrap(),
        logs.to_str().unwrap(),
    ]);
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(logs.join("truth.json")).unwrap()).unwrap();
    let diagnosis: Value = serde_json::from_str(&tunnelwatch(&[
        "diagnose",
        "--data",
        data.to_str().unwrap(),
        "--output",
        "json",
    ]))
    .unwrap();
    (truth, diagnosis)
}

/// (vpn, cause, tunnel, from s, until s) of every diagnosis, sorted.
fn summary(d: &Value) -> Vec<(String, String, String, i64, Option<i64>)> {
    let mut out: Vec<_> = d["connections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["diagnoses"].as_array().unwrap().iter().map(move |x| {
                (
                    c["vpn_id"].as_str().unwrap().to_owned(),
                    x["cause"].as_str().unwrap().to_owned(),
                    x["tunnel_ip"].as_str().unwrap().to_owned(),
                    x["from_ms"].as_i64().unwrap() / 1000,
                    x["until_ms"].as_i64().map(|u| u / 1000),
                )
            })
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_scenario_is_diagnosed_as_its_own_root_cause() {
    let dir = tempfile::tempdir().unwrap();
    let (truth, json) = run(dir.path(), "json");
    let incidents = truth["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), SCENARIOS.len(), "{truth}");
    let connections = json["connections"].as_array().unwrap();
    let by_vpn = |vpn: &str| connections.iter().find(|c| c["vpn_id"] == vpn);
    let mut troubled = Vec::new();
    for inc in incidents {
        let scenario = inc["scenario"].as_str().unwrap();
        let vpn = inc["vpn_id"].as_str().unwrap();
        troubled.push(vpn.to_owned());
        let c = by_vpn(vpn).unwrap_or_else(|| panic!("{scenario}: {vpn} not diagnosed"));
        let diagnoses = c["diagnoses"].as_array().unwrap();
        // Its own cause, on each tunnel the incident hit, and nothing else.
        let tunnels: Vec<&str> = inc["tunnel_ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(diagnoses.len(), tunnels.len(), "{scenario}: {c:#}");
        for d in diagnoses {
            let cause = d["cause"].as_str().unwrap();
            assert!(
                causes_of(scenario).contains(&cause),
                "{scenario} diagnosed as {cause}"
            );
            assert!(
                tunnels.contains(&d["tunnel_ip"].as_str().unwrap()),
                "{scenario}: {d}"
            );
            let from = d["from_ms"].as_i64().unwrap();
            let until = d["until_ms"]
                .as_i64()
                .expect("every incident ends in the logs");
            let (start, end) = (
                inc["start_ms"].as_i64().unwrap(),
                inc["end_ms"].as_i64().unwrap(),
            );
            assert!(
                (from - start).abs() <= 60_000,
                "{scenario}: from {from}, truth {start}"
            );
            assert!(
                (until - end).abs() <= 60_000,
                "{scenario}: until {until}, truth {end}"
            );
            assert!(!d["evidence"].as_array().unwrap().is_empty() && d["remedy"].is_string());
        }
        if scenario == "dpd-flap" {
            assert!(diagnoses[0]["episodes"].as_u64().unwrap() >= 2, "{c:#}");
        }
        if scenario == "lifetime-mismatch" {
            // Four drops, each after the same 20–30 minutes up.
            assert_eq!(diagnoses[0]["episodes"], 4, "{c:#}");
            let period = diagnoses[0]["recurs_after_ms"].as_i64().unwrap();
            assert!((19 * 60_000..=31 * 60_000).contains(&period), "{c:#}");
        }
    }
    // The healthy connections (routine noise only): nothing.
    let healthy: Vec<&Value> = connections
        .iter()
        .filter(|c| !troubled.iter().any(|t| c["vpn_id"] == t.as_str()))
        .collect();
    assert_eq!(healthy.len(), 14 - SCENARIOS.len());
    for c in healthy {
        assert!(c["diagnoses"].as_array().unwrap().is_empty(), "{c:#}");
        assert!(
            c["tunnels"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["down_ms"] == 0),
            "{c:#}"
        );
    }
    // Separate incidents at separate times: no fleet-wide event.
    assert_eq!(json["fleet_events"], serde_json::json!([]), "{json:#}");
    // Ranked by trouble: the longest outage (single tunnel, hours) first.
    let first = &connections[0]["diagnoses"][0]["cause"];
    assert_eq!(first, "single-tunnel", "{json:#}");

    // The same logs rendered as text: the same diagnoses.
    let (_, text) = run(dir.path(), "text");
    assert_eq!(summary(&text), summary(&json));

    // Stable JSON for one connection (golden file).
    let psk = incidents
        .iter()
        .find(|i| i["scenario"] == "psk-mismatch")
        .unwrap()["vpn_id"]
        .as_str()
        .unwrap();
    let data = dir.path().join("data-json");
    let one = tunnelwatch(&[
        "diagnose",
        "--data",
        data.to_str().unwrap(),
        psk,
        "--output",
        "json",
    ]);
    let one = one.replace(data.to_str().unwrap(), "DATA");
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/diagnose/psk-mismatch.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &one).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        one,
        want,
        "differs from {} (UPDATE_GOLDEN=1 rewrites it)",
        golden.display()
    );
    // And the text view of it names the cause, the remedy and the SQL.
    let text_view = tunnelwatch(&["diagnose", "--data", data.to_str().unwrap(), psk]);
    for needle in [
        "Pre-shared key mismatch [psk-mismatch]",
        "remedy:",
        "SELECT vpn_id, tunnel_ip",
    ] {
        assert!(text_view.contains(needle), "{needle}: {text_view}");
    }
}

/// Five connections lose a tunnel in the same minute (a shared upstream fault), a sixth has its
/// own incident later: the five are one fleet-wide event, the sixth is not part of it.
#[test]
fn an_outage_on_many_connections_at_once_is_one_fleet_event() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let base = 1_796_000_000i64; // epoch seconds
    let line = |ts: i64, state: &str, details: &str| {
        format!(
            "{{\"event_timestamp\": {ts}, \"dpd_enabled\": true, \"ike_phase1_state\": \"{state}\", \
             \"ike_phase2_state\": \"{state}\", \"details\": \"{details}\"}}\n"
        )
    };
    let routine = "AWS tunnel processed request (id=7) for CREATE_CHILD_SA";
    for c in 0..6i64 {
        let vpn = format!("vpn-{:017x}", 0xa000 + c);
        for (t, ip) in [(0, format!("10.0.{c}.1")), (1, format!("10.0.{c}.2"))] {
            let mut text = String::new();
            for m in (0..240).step_by(10) {
                text.push_str(&line(base + m * 60, "established", routine));
            }
            if t == 0 {
                // The five: down at minute 60 (seconds apart), back at 63. The sixth: at 180.
                let at = if c < 5 {
                    base + 3600 + c * 7
                } else {
                    base + 3 * 3600
                };
                text.push_str(&line(
                    at,
                    "down",
                    "AWS tunnel DPD timed out after 3 retransmits",
                ));
                text.push_str(&line(at + 180, "established", routine));
            }
            std::fs::write(logs.join(format!("{vpn}-{ip}.log")), text).unwrap();
        }
    }
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    tunnelwatch(&["ingest", "--data", d, logs.to_str().unwrap()]);
    let json: Value =
        serde_json::from_str(&tunnelwatch(&["diagnose", "--data", d, "--output", "json"])).unwrap();
    let events = json["fleet_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{json:#}");
    let e = &events[0];
    let connections: Vec<&str> = e["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(connections.len(), 5, "{e}");
    assert!(!connections.contains(&format!("vpn-{:017x}", 0xa005).as_str()));
    assert_eq!(e["from_ms"].as_i64(), Some((base + 3600) * 1000));
    let text = tunnelwatch(&["diagnose", "--data", d]);
    assert!(
        text.contains("Fleet-wide: 5 connections went down"),
        "{text}"
    );
}

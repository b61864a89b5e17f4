//! End-to-end tests of the metrics engine through the binary: `ingest` computes the `metrics`
//! table, `metrics rebuild` replaces it without duplicates and agrees with the simulator's
//! ground truth, `export openmetrics` is accepted by `promtool tsdb create-blocks-from
//! openmetrics`, and `/metrics` — of a running `demo`, and of `serve` with every family on it —
//! passes `promtool check metrics` with no finding but its known OpenMetrics false positive.
//!
//! promtool (Debian package `prometheus`): when it is missing the promtool tests print a notice
//! and pass, unless `CI=true`, where they fail.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    http, promtool_available, start_demo, start_serve, terminate, tunnelwatch_ok as tunnelwatch,
};

fn query(data: &Path, sql: &str) -> Vec<String> {
    let out = tunnelwatch(&[
        "query",
        "--data",
        data.to_str().unwrap(),
        "--output",
        "csv",
        sql,
    ]);
    out.lines().skip(1).map(str::to_owned).collect()
}

fn simulate(out: &Path) {
    tunnelwatch(&[
        "simulate",
        "--out",
        out.to_str().unwrap(),
        "--connections",
        "3",
        "--duration",
        "4h",
        "--scenario",
        "single-tunnel",
        "--no-random-faults",
    ]);
}

fn log_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// Ingests all log files of a simulated fleet into `data`.
fn ingest_fleet(fleet: &Path, data: &Path) -> String {
    let mut args = vec!["ingest", "--data", data.to_str().unwrap()];
    let files = log_files(fleet);
    args.extend(files.iter().map(String::as_str));
    tunnelwatch(&args)
}

/// Simulates the test fleet into `fleet` and ingests it into `data`.
fn simulate_and_ingest(fleet: &Path, data: &Path) -> String {
    simulate(fleet);
    ingest_fleet(fleet, data)
}

#[test]
fn ingest_computes_metrics_rebuild_replaces_them_and_they_match_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, data) = (dir.path().join("fleet"), dir.path().join("data"));
    let out = simulate_and_ingest(&fleet, &data);
    assert!(out.contains("metrics: "));

    let count = "SELECT count(*) FROM metrics";
    let first = query(&data, count);
    let n: u64 = first[0].parse().unwrap();
    // 6 tunnels + 3 connections, ~240 minutes, several metrics each.
    assert!(n > 9 * 200 * 2, "{n} datapoints");
    // One TunnelState datapoint per tunnel and connection per minute, never two.
    let dup = query(
        &data,
        "SELECT count(*) FROM (SELECT ts, vpn_id, tunnel_ip, count(*) AS c FROM metrics
         WHERE metric_name = 'TunnelState' GROUP BY 1, 2, 3 HAVING count(*) > 1)",
    );
    assert_eq!(dup, ["0"]);

    // Rebuilding (and ingesting the same files again) replaces, never adds.
    tunnelwatch(&["metrics", "rebuild", "--data", data.to_str().unwrap()]);
    assert_eq!(query(&data, count), first);
    ingest_fleet(&fleet, &data);
    assert_eq!(query(&data, count), first);
    tunnelwatch(&[
        "metrics",
        "rebuild",
        "--data",
        data.to_str().unwrap(),
        "--since",
        "2026-11-02",
    ]);
    assert_eq!(query(&data, count), first);

    // The single-tunnel incident: TunnelState down time matches the truth to the second.
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fleet.join("truth.json")).unwrap()).unwrap();
    let inc = &truth["incidents"][0];
    let tunnel = &inc["tunnels"][0];
    let ip = tunnel["tunnel_ip"].as_str().unwrap();
    let down_ms: i64 = tunnel["tunnel_state_down"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["until_ms"].as_i64().unwrap() - d["from_ms"].as_i64().unwrap())
        .sum();
    let from = tunnel["tunnel_state_down"][0]["from_ms"].as_i64().unwrap();
    let until = tunnel["tunnel_state_down"][0]["until_ms"].as_i64().unwrap();
    let got = query(
        &data,
        &format!(
            "SELECT sum(sample_count - sum) FROM metrics WHERE metric_name = 'TunnelState'
             AND tunnel_ip = '{ip}' AND ts >= to_timestamp_millis({}) AND ts < to_timestamp_millis({})",
            from - from.rem_euclid(60_000),
            until + 60_000
        ),
    );
    let down_s: f64 = got[0].parse().unwrap();
    assert!(
        (down_s - down_ms as f64 / 1000.0).abs() < 1.0,
        "metrics say {down_s} s down, truth {} s",
        down_ms as f64 / 1000.0
    );
    // The connection was at 0.5 (one of two tunnels up) during the incident.
    let vpn = inc["vpn_id"].as_str().unwrap();
    let mid = (from + until) / 2;
    let conn = query(
        &data,
        &format!(
            "SELECT minimum, maximum FROM metrics WHERE metric_name = 'TunnelState'
             AND vpn_id = '{vpn}' AND tunnel_ip IS NULL AND ts = to_timestamp_millis({})",
            mid - mid.rem_euclid(60_000)
        ),
    );
    assert_eq!(conn, ["0.5,0.5"]);
}

#[test]
fn export_openmetrics_is_accepted_by_promtool_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, data) = (dir.path().join("fleet"), dir.path().join("data"));
    simulate_and_ingest(&fleet, &data);
    let export = dir.path().join("export.om");
    tunnelwatch(&[
        "export",
        "openmetrics",
        "--data",
        data.to_str().unwrap(),
        "--since",
        "2026-11-02T01:00:00Z",
        "--until",
        "2026-11-02T03:00:00Z",
        "--out",
        export.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(text.ends_with("# EOF\n"));
    for family in [
        "# TYPE tunnelwatch_tunnel_state gauge",
        "# TYPE tunnelwatch_connection_tunnel_state gauge",
        "# TYPE tunnelwatch_tunnel_data_in_bytes counter",
        "# TYPE tunnelwatch_ike_phase_state gauge",
    ] {
        assert!(text.contains(family), "{family} missing");
    }
    // Every sample is inside the window: 01:00 ≤ t < 03:00 (seconds).
    let (lo, hi) = (1_793_581_200_i64, 1_793_588_400_i64);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let t: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((lo..hi).contains(&t), "{line}");
    }
    if promtool_available().is_none() {
        return;
    }
    let tsdb = dir.path().join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&export)
        .arg(&tsdb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool refused the export: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let blocks = std::fs::read_dir(&tsdb).unwrap().count();
    assert!(blocks > 0, "no blocks written");
}

/// Every family `/metrics` can show, as its `# TYPE` line names it, with its type.
const FAMILIES: [(&str, &str); 26] = [
    ("tunnelwatch_source_dropped", "counter"),
    ("tunnelwatch_source_duplicates", "counter"),
    ("tunnelwatch_source_replaying", "gauge"),
    ("tunnelwatch_source_refused", "counter"),
    ("tunnelwatch_source_errors", "counter"),
    ("tunnelwatch_source_open", "gauge"),
    (
        "tunnelwatch_source_last_checkpoint_timestamp_seconds",
        "gauge",
    ),
    (
        "tunnelwatch_source_last_received_timestamp_seconds",
        "gauge",
    ),
    ("tunnelwatch_pipeline_budget_bytes", "gauge"),
    ("tunnelwatch_pipeline_in_flight_bytes", "gauge"),
    ("tunnelwatch_source_records", "counter"),
    ("tunnelwatch_source_bytes", "counter"),
    ("tunnelwatch_rejects", "counter"),
    ("tunnelwatch_ingest_lag_seconds", "gauge"),
    ("tunnelwatch_store_rows", "counter"),
    ("tunnelwatch_store_write_errors", "counter"),
    ("tunnelwatch_store_writable", "gauge"),
    ("tunnelwatch_tunnel_state", "gauge"),
    ("tunnelwatch_connection_tunnel_state", "gauge"),
    ("tunnelwatch_tunnel_data_in_bytes", "counter"),
    ("tunnelwatch_tunnel_data_out_bytes", "counter"),
    (
        "tunnelwatch_concentrator_bandwidth_bytes_per_second",
        "gauge",
    ),
    ("tunnelwatch_ike_phase_state", "gauge"),
    ("tunnelwatch_bgp_session_established", "gauge"),
    ("tunnelwatch_events", "counter"),
    ("tunnelwatch_monitor_late_records", "counter"),
];

/// The families of an exposition and their types, from its `# TYPE` lines, sorted.
fn families(body: &str) -> Vec<(&str, &str)> {
    let mut v: Vec<(&str, &str)> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' '))
        .collect();
    v.sort_unstable();
    v
}

/// Polls `GET /metrics` of `addr` until every metric named in `want` has a sample line.
fn metrics_with(addr: &str, want: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = http(addr, "GET", "/metrics", "");
        assert_eq!(status, 200);
        let missing: Vec<&&str> = want
            .iter()
            .filter(|name| {
                !body.lines().any(|l| {
                    l.strip_prefix(**name)
                        .is_some_and(|rest| rest.starts_with(['{', ' ']))
                })
            })
            .collect();
        if missing.is_empty() {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no samples of {missing:?} on /metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `promtool check metrics` on `body` reports nothing but the one known false positive:
/// promtool reads the classic text format, so on an OpenMetrics counter family `NAME` (HELP
/// line `# HELP NAME …`, samples `NAME_total`) it says `NAME_total no help text`. Any other line
/// — a naming or unit problem, a parse error, a missing HELP — fails the test.
fn assert_promtool_clean(body: &str) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let known_false_positive = |line: &str| {
        line.strip_suffix("_total no help text")
            .is_some_and(|name| {
                let (help, kind) = (format!("# HELP {name} "), format!("# TYPE {name} counter"));
                body.lines().any(|l| l.starts_with(&help)) && body.lines().any(|l| l == kind)
            })
    };
    let findings: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !known_false_positive(l))
        .collect();
    assert!(
        findings.is_empty(),
        "promtool check metrics found:\n{}\n--- full report:\n{report}\n--- input:\n{body}",
        findings.join("\n")
    );
    // With nothing but the false positives promtool exits 3 (lint problems); 0 without them.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool exited {:?}:\n{report}",
        out.status
    );
}

/// The demo's `/metrics` with every fleet family — seed 5 puts one of the 4 connections on a
/// VPN Concentrator, so the bandwidth family has a sample — passes `promtool check metrics`.
#[test]
fn demo_exposes_tunnel_state_that_promtool_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_demo(
        &dir.path().join("data"),
        &["--connections", "4", "--seed", "5", "--history", "1h"],
    );
    let body = metrics_with(
        &addr,
        &[
            "tunnelwatch_tunnel_state",
            "tunnelwatch_connection_tunnel_state",
            "tunnelwatch_concentrator_bandwidth_bytes_per_second",
            "tunnelwatch_bgp_session_established",
        ],
    );
    let _ = child.kill();
    let _ = child.wait();
    for family in [
        "# HELP tunnelwatch_tunnel_state ",
        "tunnelwatch_tunnel_data_in_bytes_total{",
        "tunnelwatch_ike_phase_state{",
        "phase=\"1\"",
        "tunnelwatch_events_total{",
        "message_kind=\"",
        "# UNIT tunnelwatch_tunnel_data_out_bytes bytes",
        "# UNIT tunnelwatch_concentrator_bandwidth_bytes_per_second bytes_per_second",
        "tunnelwatch_source_records_total{source=\"simulator\",kind=\"simulator\"}",
        "# EOF",
    ] {
        assert!(
            body.contains(family),
            "{family} missing from /metrics:\n{body}"
        );
    }
    // Each tunnel state is 0 or 1.
    for line in body
        .lines()
        .filter(|l| l.starts_with("tunnelwatch_tunnel_state{"))
    {
        let v = line.rsplit(' ').next().unwrap();
        assert!(v == "0.0" || v == "1.0" || v == "0" || v == "1", "{line}");
    }
    if promtool_available().is_none() {
        return;
    }
    assert_promtool_clean(&body);
}

/// `serve` with a simulated fleet (a concentrator-attached connection among them) and a file
/// source (checkpoints) shows every family on `/metrics` — exactly the families of
/// [`FAMILIES`] — and promtool finds nothing wrong with any of them.
#[test]
fn every_metrics_family_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vpn-1234abcd-1.2.3.4.ndjson"),
        logs.join("vpn-1234abcd-1.2.3.4.log"),
    )
    .unwrap();
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[sources.fleet]
type = "simulator"
connections = 4
seed = 5
history = "1h"

[sources.files]
type = "file"
include = ["{}/*.log"]
glob_interval = "100ms"
poll_interval = "50ms"
"#,
            dir.path().join("data").display(),
            logs.display()
        ),
    )
    .unwrap();
    let mut served = start_serve(&config);
    // A sample of each (counters show as NAME_total).
    let samples: Vec<String> = FAMILIES
        .iter()
        .map(|(name, kind)| match *kind {
            "counter" => format!("{name}_total"),
            _ => (*name).to_owned(),
        })
        .collect();
    let samples: Vec<&str> = samples.iter().map(String::as_str).collect();
    let body = metrics_with(&served.http, &samples);
    assert!(terminate(&mut served.child).success());
    let mut want = FAMILIES.to_vec();
    want.sort_unstable();
    assert_eq!(
        families(&body),
        want,
        "the families on /metrics are FAMILIES"
    );
    assert!(
        body.contains("tunnelwatch_source_last_checkpoint_timestamp_seconds{source=\"files\""),
        "{body}"
    );
    if promtool_available().is_none() {
        return;
    }
    assert_promtool_clean(&body);
}

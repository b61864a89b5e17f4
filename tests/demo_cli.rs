//! End-to-end test of `tunnelwatch demo`: it starts on a loopback port, streams a simulated
//! fleet into its store, answers on every endpoint, and stops cleanly on SIGINT and SIGTERM.

mod common;

use std::io::Read;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{http, start_demo};

fn start(data: &std::path::Path) -> (Child, String) {
    start_demo(data, &["--connections", "3", "--history", "2h"])
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

fn wait_exit(mut child: Child) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("demo did not stop within 60 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn demo_serves_and_stops_on_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, addr) = start(&data);

    assert_eq!(http(&addr, "GET", "/healthz", ""), (200, "ok\n".to_owned()));

    // The history arrives at once: wait until the store shows it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = loop {
        let (status, body) = http(
            &addr,
            "POST",
            "/api/query",
            "SELECT count(*) AS n FROM tunnel_activity",
        );
        assert_eq!(status, 200, "{body}");
        let rows: serde_json::Value = serde_json::from_str(&body).unwrap();
        let n = rows[0]["n"].as_i64().unwrap();
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "no rows reached the store");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(count > 0);

    // Queries see every table; the guard applies over HTTP too.
    let (status, body) = http(
        &addr,
        "GET",
        "/api/query?format=csv&sql=SELECT%20count(*)%20AS%20n%20FROM%20traffic",
        "",
    );
    assert_eq!(status, 200);
    assert!(body.starts_with("n\n"), "{body}");
    let (status, body) = http(&addr, "POST", "/api/query", "DROP TABLE traffic");
    assert_eq!(status, 400);
    assert!(body.contains("read-only"), "{body}");

    let (status, body) = http(&addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    for family in [
        "tunnelwatch_source_records_total{source=\"simulator\",kind=\"simulator\"}",
        "tunnelwatch_pipeline_in_flight_bytes",
        "tunnelwatch_store_rows_total{table=\"tunnel_activity\"}",
        "tunnelwatch_ingest_lag_seconds",
        "# EOF",
    ] {
        assert!(
            body.contains(family),
            "{family} missing from /metrics:\n{body}"
        );
    }

    let (status, page) = http(&addr, "GET", "/", "");
    assert_eq!(status, 200);
    assert!(page.contains("<h1>tunnelwatch</h1>"));
    assert!(
        page.contains("<table id=\"fleet\">"),
        "no fleet table: {page}"
    );
    assert!(page.contains("vpn-"), "no tunnel listed on the status page");

    signal(&child, "-INT");
    let (code, err) = wait_exit(child);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped after"), "{err}");

    // Everything it acknowledged is in Parquet now, readable by a new process.
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args([
            "query",
            "--data",
            data.to_str().unwrap(),
            "--output",
            "csv",
            "SELECT count(*) AS n FROM tunnel_activity",
        ])
        .output()
        .unwrap();
    let n: i64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= count, "{n} < {count}");
    assert!(
        std::fs::read_dir(data.join("wal"))
            .unwrap()
            .flatten()
            .all(|e| tunnelwatch_queries::wal::replay(&e.path())
                .unwrap()
                .frames
                .is_empty()),
        "the WAL was not flushed on shutdown"
    );

    // SIGTERM stops it too.
    let (child, addr) = start(&dir.path().join("data2"));
    assert_eq!(http(&addr, "GET", "/healthz", "").0, 200);
    signal(&child, "-TERM");
    let (code, err) = wait_exit(child);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn busy_port_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args([
            "demo",
            "--listen",
            &addr,
            "--data",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cannot listen on {addr}")));
}

/// The value of an unlabelled (or the first matching) sample of `/metrics`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A history big enough that the simulator needs many deliveries (and more than one decoder
/// tick) to hand it over still feeds every minute of it to the monitor: the event-time
/// watermark follows the replayed records, not the wall clock, until the source has caught
/// up. (It once jumped to now at the first tick, so nearly all of a 200-connection history
/// arrived "late": no datapoints, no alarms.)
#[test]
fn a_long_history_reaches_the_monitor_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let connections = 150;
    let (mut child, addr) = start_demo(
        &data,
        &["--connections", &connections.to_string(), "--history", "6h"],
    );
    // Wait until the source says it has caught up with its history.
    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        let (status, metrics) = http(&addr, "GET", "/metrics", "");
        assert_eq!(status, 200);
        let replaying = sample(
            &metrics,
            "tunnelwatch_source_replaying{source=\"simulator\"",
        );
        if replaying == Some(0.0) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "the simulator never caught up: {replaying:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let late = sample(&metrics, "tunnelwatch_monitor_late_records_total");
    assert_eq!(late, Some(0.0), "records of the history counted late");
    // One traffic sample a minute per tunnel: every history minute has its TunnelDataIn.
    let sql = "SELECT count(*) AS n FROM metrics WHERE metric_name = 'TunnelDataIn'";
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = (connections * 2 * (6 * 60 - 10)) as i64;
    loop {
        let (status, body) = http(&addr, "POST", "/api/query", sql);
        assert_eq!(status, 200, "{body}");
        let rows: serde_json::Value = serde_json::from_str(&body).unwrap();
        let n = rows[0]["n"].as_i64().unwrap();
        if n >= want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} TunnelDataIn datapoints, want at least {want}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    child.kill().unwrap();
    let _ = child.wait();
}

/// The demo's gateways (strongSwan and FRR by default) log their side: once the history is
/// stored, a diagnosis carries the side to fix from the gateway's lines, and its connection
/// page shows it.
#[test]
fn the_demo_shows_the_gateway_side_of_a_diagnosis() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, addr) = start_demo(
        &data,
        &[
            "--connections",
            "4",
            "--history",
            "3h",
            "--faults-per-day",
            "48",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let vpn = loop {
        let (status, body) = http(&addr, "GET", "/api/v1/diagnose", "");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let with_side = v["connections"].as_array().unwrap().iter().find(|c| {
            c["diagnoses"].as_array().unwrap().iter().any(|d| {
                d["gateway"]["side"]
                    .as_str()
                    .is_some_and(|s| s != "unknown")
                    && !d["gateway"]["evidence"].as_array().unwrap().is_empty()
            })
        });
        if let Some(c) = with_side {
            break c["vpn_id"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no diagnosis with a gateway side: {v}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let (status, page) = http(&addr, "GET", &format!("/connections/{vpn}"), "");
    assert_eq!(status, 200);
    assert!(page.contains("Fix on: <strong>"), "{page}");
    assert!(
        page.contains("strongswan <code>") || page.contains("frr <code>"),
        "no gateway line on the page: {page}"
    );
    signal(&child, "-TERM");
    let (code, err) = wait_exit(child);
    assert_eq!(code, 0, "{err}");
}

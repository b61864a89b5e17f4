//! End to end against a real CloudWatch Logs API (`moto_server` on 127.0.0.1, started here):
//! `tunnelwatch ingest cloudwatch://GROUP` loads a range once (a second run adds nothing), later,
//! nested and prefixed ranges store only what is not stored yet, a run without `--start` says
//! which window it read and how to widen it, and `tunnelwatch serve` with a `cloudwatch_logs`
//! source follows the group across a restart, after which a one-shot pull over the same range
//! adds nothing — every event exactly once. Without moto_server the tests print why and pass, unless
//! `CI=true`, where they fail.
//!
//! The test talks to moto with the plain JSON protocol (`X-Amz-Target: Logs_20140328.*`), so
//! it needs no SDK; tunnelwatch uses aws-sdk-cloudwatchlogs with dummy credentials from the
//! environment.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http, http_request, missing, start_serve, terminate, wait_rows};

const GROUP: &str = "/aws/vpn/site-to-site";
const STREAMS: [&str; 2] = ["vpn-0a1b2c3d-3.3.3.3", "vpn-0a1b2c3d-4.4.4.4"];

struct Moto {
    child: Child,
    addr: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("moto_server").is_file()))
        .unwrap_or(false);
    if !found {
        missing("moto_server is not installed (pip install 'moto[server]')");
        return None;
    }
    // A free port can be handed to a parallel test too (both bind port 0 and let go): if our
    // moto_server lost the race and exited, try another port.
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut m = Moto {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&m.addr).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Whoever answers must be ours: give a losing moto_server time to exit.
        std::thread::sleep(Duration::from_millis(300));
        if m.child.try_wait().unwrap().is_none() {
            return Some(m);
        }
    }
    panic!("moto_server could not get a port after 5 tries");
}

/// One CloudWatch Logs API call in the JSON protocol.
fn logs(m: &Moto, action: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, _, text) = http_request(
        &m.addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", &format!("Logs_20140328.{action}")),
            ("Content-Type", "application/x-amz-json-1.1"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0",
            ),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{action}: {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Puts events `ids` (one per id, alternating streams) with recent timestamps.
fn put(m: &Moto, ids: std::ops::Range<u32>, base_ms: i64) {
    for (s, stream) in STREAMS.iter().enumerate() {
        let events: Vec<_> = ids
            .clone()
            .filter(|i| *i as usize % 2 == s)
            .map(|i| {
                let ts = base_ms + i as i64 * 1000;
                let msg = serde_json::json!({
                    "event_timestamp": ts / 1000,
                    "details": format!("AWS tunnel processed request (id={i}) for CREATE_CHILD_SA"),
                    "ike_phase1_state": "established",
                    "ike_phase2_state": "established",
                });
                serde_json::json!({ "timestamp": ts, "message": msg.to_string() })
            })
            .collect();
        if events.is_empty() {
            continue;
        }
        let r = logs(
            m,
            "PutLogEvents",
            serde_json::json!({ "logGroupName": GROUP, "logStreamName": stream, "logEvents": events }),
        );
        assert!(r.get("rejectedLogEventsInfo").is_none(), "{r}");
    }
}

fn setup(m: &Moto) {
    logs(
        m,
        "CreateLogGroup",
        serde_json::json!({ "logGroupName": GROUP }),
    );
    for s in STREAMS {
        logs(
            m,
            "CreateLogStream",
            serde_json::json!({ "logGroupName": GROUP, "logStreamName": s }),
        );
    }
}

fn tunnelwatch(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"));
    c.args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        );
    c
}

/// (rows, distinct details) in tunnel_activity, through `tunnelwatch query`.
fn census(data: &Path) -> (u64, u64) {
    let out = tunnelwatch(&[
        "query",
        "--output",
        "csv",
        "--data",
        data.to_str().unwrap(),
        "SELECT count(*) AS n, count(DISTINCT details) AS d, count(DISTINCT tunnel_ip) AS t FROM tunnel_activity",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let row: Vec<u64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    if row[0] > 0 {
        assert_eq!(row[2], 2, "identity comes from the log stream names");
    }
    (row[0], row[1])
}

#[test]
fn one_shot_ingest_reads_a_range_once() {
    let Some(m) = moto() else { return };
    setup(&m);
    let base = now_ms() - 600_000;
    put(&m, 0..30, base);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let endpoint = format!("http://{}", m.addr);
    let start = (base - 1000).to_string();
    let end = (base + 60_000).to_string();
    let group = format!("cloudwatch://{GROUP}");
    let args = [
        "ingest",
        "--data",
        data.to_str().unwrap(),
        &group,
        "--endpoint-url",
        &endpoint,
        "--region",
        "us-east-1",
        "--start",
        &start,
        "--end",
        &end,
    ];
    for run in 0..2 {
        let out = tunnelwatch(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "run {run}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(census(&data), (30, 30), "run {run}: {stdout}");
    }
    // A missing group is a clear error naming it.
    let missing = "cloudwatch:///aws/vpn/nope";
    let out = tunnelwatch(&[
        "ingest",
        "--data",
        data.to_str().unwrap(),
        missing,
        "--endpoint-url",
        &endpoint,
        "--region",
        "us-east-1",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/aws/vpn/nope"), "{stderr}");
}

/// Runs `tunnelwatch ingest --data DATA cloudwatch://GROUP` against moto with `extra` flags;
/// returns its stdout.
fn pull(m: &Moto, data: &Path, extra: &[&str]) -> String {
    let endpoint = format!("http://{}", m.addr);
    let group = format!("cloudwatch://{GROUP}");
    let mut args = vec![
        "ingest",
        "--data",
        data.to_str().unwrap(),
        &group,
        "--endpoint-url",
        &endpoint,
        "--region",
        "us-east-1",
    ];
    args.extend_from_slice(extra);
    let out = tunnelwatch(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The issue's case and its relatives: a backfill of 2,400 events, then the same command after
/// 600 more arrived (a cron job with a later end), an event arriving late inside the range
/// already read, a nested range and a prefixed one: every event is stored exactly once. Before
/// the log group's coverage existed the second pull stored 5,400 rows.
#[test]
fn pulls_over_overlapping_and_nested_ranges_store_each_event_once() {
    let Some(m) = moto() else { return };
    setup(&m);
    let base = now_ms() - 3 * 3_600_000;
    put(&m, 0..2400, base);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Without --start: the last hour, which holds nothing; the summary says so and how to widen.
    let out = pull(&m, &data, &[]);
    assert_eq!(census(&data), (0, 0), "{out}");
    assert!(
        out.contains("the hour before --end") && out.contains("no new events between"),
        "{out}"
    );
    assert!(out.contains("--start"), "{out}");

    let start = (base - 1000).to_string();
    let out = pull(&m, &data, &["--start", &start]);
    assert_eq!(census(&data), (2400, 2400), "{out}");
    assert!(!out.contains("no new events"), "{out}");

    // 600 more, and the same command again (its end is now later).
    put(&m, 2400..3000, base);
    let out = pull(&m, &data, &["--start", &start]);
    assert_eq!(census(&data), (3000, 3000), "second pull: {out}");

    // A late event: its timestamp lies inside the range read, it reached CloudWatch after.
    let late_ts = base + 1_500_500;
    put(&m, 5000..5001, late_ts - 5_000_000);
    // A nested range picks it up, and only it.
    let (from, to) = ((base + 600_000).to_string(), (base + 1_800_000).to_string());
    let out = pull(&m, &data, &["--start", &from, "--end", &to]);
    assert_eq!(census(&data), (3001, 3001), "nested pull: {out}");
    // A prefixed pull over everything, and the full range once more: nothing new.
    let out = pull(
        &m,
        &data,
        &["--start", &start, "--stream-prefix", STREAMS[1]],
    );
    assert_eq!(census(&data), (3001, 3001), "prefixed pull: {out}");
    let out = pull(&m, &data, &["--start", &start]);
    assert_eq!(census(&data), (3001, 3001), "last pull: {out}");
    assert!(out.contains("no new events"), "{out}");
}

#[test]
fn serve_follows_a_log_group_across_a_restart() {
    let Some(m) = moto() else { return };
    setup(&m);
    let base = now_ms() - 900_000;
    put(&m, 0..20, base);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[sources.aws_vpn_logs]
type = "cloudwatch_logs"
log_group = "{GROUP}"
endpoint_url = "http://{}"
region = "us-east-1"
initial_lookback = "1h"
poll_interval = "300ms"
"#,
            data.display(),
            m.addr
        ),
    )
    .unwrap();
    let spawn = || {
        // start_serve runs the binary directly: give it the dummy credentials through the env.
        // SAFETY: tests in this file set the same values; no thread reads them concurrently in
        // a way that matters (the child inherits them).
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws-config");
            std::env::set_var(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            );
        }
        start_serve(&config)
    };
    let mut served = spawn();
    wait_rows(&served.http, 20);
    put(&m, 20..25, base);
    wait_rows(&served.http, 25);
    let (_, metrics) = http(&served.http, "GET", "/metrics", "");
    assert!(
        metrics.contains("tunnelwatch_source_last_checkpoint_timestamp_seconds{source=\"aws_vpn_logs\",kind=\"cloudwatch_logs\"}"),
        "{metrics}"
    );
    assert!(terminate(&mut served.child).success());

    // While stopped: more events, one of them late (older than the newest stored).
    put(&m, 25..30, base);
    put(&m, 100..101, base - 120_000 - 100_000);
    let mut served = spawn();
    wait_rows(&served.http, 31);
    // A few more polls: nothing comes twice.
    std::thread::sleep(Duration::from_millis(1500));
    wait_rows(&served.http, 31);
    assert!(terminate(&mut served.child).success());
    assert_eq!(census(&data), (31, 31));

    // A one-shot pull over the range serve read (and beyond) stores nothing again; one new event
    // is stored.
    put(&m, 200..201, base);
    let start = (base - 3_600_000).to_string();
    let out = pull(&m, &data, &["--start", &start]);
    assert_eq!(census(&data), (32, 32), "{out}");
}

//! End to end: `tunnelwatch serve --config` with real loopback sockets — the http and firehose
//! sources answer 200 only for records that are then in the store (visible at once over HTTP,
//! and to `tunnelwatch query` after SIGTERM), refuse bad credentials, oversized and malformed
//! bodies with clear answers and count them on /metrics; the stdin source ends the run when its
//! input ends; `--check-config` reports errors with line numbers.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{
    activity, append, http, http_request, query_csv, rows, start_serve, terminate, wait_rows,
};

const TOKEN: &str = "s3cret-token-for-tests";
const KEY: &str = "firehose-access-key-1";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A simulated hour of two connections' tunnel activity, as NDJSON, and its line count.
fn simulated_activity(dir: &Path) -> (Vec<u8>, usize) {
    let out = dir.join("sim");
    let st = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        // Recent records: the live monitor then fills minutes only up to now.
        .args([
            "simulate",
            "--connections",
            "2",
            "--duration",
            "1h",
            "--seed",
            "5",
            "--start",
            "now",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut all = Vec::new();
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        // Activity streams are named <vpn>-<ip>.log and carry no identity inside.
        if name.ends_with(".log") && !name.contains('_') {
            all.push((
                name.trim_end_matches(".log").to_owned(),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    all.sort();
    let (stream, bytes) = all.into_iter().next().unwrap();
    let n = bytes.iter().filter(|b| **b == b'\n').count();
    let mut tagged = format!("{stream}\n").into_bytes();
    tagged.extend(bytes);
    (tagged, n)
}

fn count(addr: &str, sql: &str) -> u64 {
    let (status, body) = http(addr, "POST", "/api/query?format=csv", sql);
    assert_eq!(status, 200, "{body}");
    body.lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn http_and_firehose_sources_store_what_they_acknowledge() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[pipeline]
in_flight_budget = "8MiB"

[sources.push]
type = "http"
address = "127.0.0.1:0"
token = "{TOKEN}"
max_body_bytes = 262144

[sources.aws]
type = "firehose"
address = "127.0.0.1:0"
access_key = "{KEY}"

[[connections]]
vpn_id = "vpn-1234abcd"
routing = "bgp"
"#,
            data.display()
        ),
    )
    .unwrap();
    let (sim, n) = simulated_activity(dir.path());
    let (stream, body) = {
        let text = String::from_utf8(sim).unwrap();
        let (s, b) = text.split_once('\n').unwrap();
        (s.to_owned(), b.as_bytes().to_vec())
    };
    assert!(body.len() < 262144, "test input must fit the body limit");

    let mut served = start_serve(&config);
    let push = served.sources["push"].clone();
    let aws = served.sources["aws"].clone();
    let auth = format!("Bearer {TOKEN}");

    // 200 only once durable: the rows are visible right after the answer.
    let path = format!("/ingest?stream={stream}");
    let (status, _, text) = http_request(&push, "POST", &path, &[("Authorization", &auth)], &body);
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        count(&served.http, "SELECT count(*) FROM tunnel_activity"),
        n as u64
    );

    // The same records gzip'd: at-least-once, so they are stored again.
    let (status, _, text) = http_request(
        &push,
        "POST",
        &path,
        &[("Authorization", &auth), ("Content-Encoding", "gzip")],
        &gzip(&body),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        count(&served.http, "SELECT count(*) FROM tunnel_activity"),
        2 * n as u64
    );

    // Refusals, each with a clear answer.
    let (status, head, text) = http_request(&push, "POST", "/ingest", &[], &body);
    assert_eq!(status, 401, "{text}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    let (status, _, _) = http_request(
        &push,
        "POST",
        "/ingest",
        &[("Authorization", "Bearer s3cret-token-for-testX")],
        &body,
    );
    assert_eq!(status, 401);
    let big = vec![b'x'; 300_000];
    let (status, _, text) =
        http_request(&push, "POST", "/ingest", &[("Authorization", &auth)], &big);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("262144"), "{text}");
    // A gzip bomb is measured after inflation.
    let bomb = gzip(&vec![b'\n'; 1 << 20]);
    let (status, _, _) = http_request(
        &push,
        "POST",
        "/ingest",
        &[("Authorization", &auth), ("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(status, 413);
    let (status, _, text) = http_request(
        &push,
        "POST",
        "/ingest",
        &[("Authorization", &auth), ("Content-Encoding", "gzip")],
        b"not gzip",
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("gzip"), "{text}");

    // Firehose: the documented request shape, echoed requestId.
    let request = std::fs::read("tests/data/firehose-request.json").unwrap();
    let request_id = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f";
    let (status, _, text) = http_request(
        &aws,
        "POST",
        "/",
        &[
            ("X-Amz-Firehose-Request-Id", request_id),
            ("X-Amz-Firehose-Access-Key", KEY),
            ("Content-Type", "application/json"),
        ],
        &request,
    );
    assert_eq!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["requestId"], request_id);
    assert!(answer["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    let firehose_sql = "SELECT count(*) FROM (SELECT source FROM tunnel_activity UNION ALL SELECT source FROM bgp_events) WHERE source = 'firehose:aws'";
    let firehose_rows = count(&served.http, firehose_sql);
    assert_eq!(firehose_rows, 3);
    // Firehose retries a request whose 200 it did not get: answered 200, not stored again.
    let firehose = |aws: &str| {
        http_request(
            aws,
            "POST",
            "/",
            &[
                ("X-Amz-Firehose-Request-Id", request_id),
                ("X-Amz-Firehose-Access-Key", KEY),
                ("Content-Type", "application/json"),
            ],
            &request,
        )
    };
    let (status, _, text) = firehose(&aws);
    assert_eq!(status, 200, "{text}");
    assert_eq!(count(&served.http, firehose_sql), 3);
    let (status, _, text) = http_request(
        &aws,
        "POST",
        "/",
        &[
            ("X-Amz-Firehose-Request-Id", request_id),
            ("X-Amz-Firehose-Access-Key", "wrong"),
        ],
        &request,
    );
    assert_eq!(status, 401);
    assert!(
        text.contains("errorMessage") && text.contains(request_id),
        "{text}"
    );
    let (status, _, text) = http_request(
        &aws,
        "POST",
        "/",
        &[
            ("X-Amz-Firehose-Request-Id", "other-id"),
            ("X-Amz-Firehose-Access-Key", KEY),
        ],
        &request,
    );
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = http_request(
        &aws,
        "POST",
        "/",
        &[("X-Amz-Firehose-Access-Key", KEY)],
        b"{\"records\": 1}",
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not a Firehose request"), "{text}");

    // Self-metrics count what was refused and what arrived.
    let (status, metrics) = http(&served.http, "GET", "/metrics", "");
    assert_eq!(status, 200);
    for want in [
        "tunnelwatch_source_refused_total{source=\"push\",kind=\"http\"} 5".to_string(),
        "tunnelwatch_source_refused_total{source=\"aws\",kind=\"firehose\"} 3".to_string(),
        format!(
            "tunnelwatch_source_records_total{{source=\"push\",kind=\"http\"}} {}",
            2 * n
        ),
        "tunnelwatch_source_records_total{source=\"aws\",kind=\"firehose\"} 3".to_string(),
        "tunnelwatch_source_duplicates_total{source=\"aws\",kind=\"firehose\"} 1".to_string(),
        "tunnelwatch_pipeline_in_flight_bytes 0".to_string(),
    ] {
        assert!(metrics.contains(&want), "missing {want} in\n{metrics}");
    }

    let status = terminate(&mut served.child);
    assert!(status.success(), "{status:?}");
    let csv = query_csv(&data, "SELECT count(*) AS n FROM tunnel_activity");
    assert_eq!(csv.trim(), format!("n\n{}", 2 * n + 3).trim());
    // The write-ahead log was flushed to Parquet on the way out: what is left holds no append.
    for segment in std::fs::read_dir(data.join("wal")).unwrap() {
        let replay = tunnelwatch_queries::wal::replay(&segment.unwrap().path()).unwrap();
        assert!(replay.frames.is_empty() && replay.torn.is_none());
    }
    // After a restart the stored requestId is still known (it is in the ledger).
    let mut served = start_serve(&config);
    let (status, _, text) = firehose(&served.sources["aws"]);
    assert_eq!(status, 200, "{text}");
    assert_eq!(count(&served.http, firehose_sql), 3);
    assert!(terminate(&mut served.child).success());
}

#[test]
fn stdin_source_ends_the_run_when_its_input_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("t.toml");
    std::fs::write(
        &config,
        format!(
            "data = \"{}\"\n[sources.in]\ntype = \"stdin\"\n",
            data.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read("tests/data/vpn-1234abcd-1.2.3.4.ndjson").unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&input).unwrap();
    // A last record without its newline still counts.
    stdin.write_all(b"not a record").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("every source has ended"), "{stderr}");
    assert_eq!(
        query_csv(&data, "SELECT count(*) AS n FROM tunnel_activity").trim(),
        "n\n3"
    );
    assert_eq!(
        query_csv(&data, "SELECT CAST(raw AS VARCHAR) AS raw FROM rejects").trim(),
        "raw\nnot a record"
    );
}

#[test]
fn check_config_reports_errors_with_line_numbers() {
    let ok = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args([
            "serve",
            "--check-config",
            "--config",
            "tunnelwatch.example.toml",
        ])
        .env("TUNNELWATCH_HTTP_TOKEN", "example-token-123")
        .env("TUNNELWATCH_FIREHOSE_KEY", "example-key-123")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(": ok"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let check = |text: &str| {
        std::fs::write(&bad, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
            .args(["serve", "--check-config", "--config"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // Unknown fields stop parsing at their table; the message names file, line and field.
    let stderr = check(
        "listen = \"127.0.0.1:9977\"\n\n[sources.push]\ntype = \"http\"\naddress = \"localhost\"\ntoken = \"0123456789\"\n\n[sources.old]\ntype = \"stdin\"\nfromat = \"json\"\n",
    );
    assert!(
        stderr.contains(&format!("{}:8:", bad.display())),
        "{stderr}"
    );
    assert!(stderr.contains("fromat"), "{stderr}");
    // A value a source cannot use: the line of its table.
    let stderr =
        check("[sources.push]\ntype = \"http\"\naddress = \"localhost\"\ntoken = \"0123456789\"\n");
    assert!(
        stderr.contains(&format!("{}:1:", bad.display()))
            && stderr.contains("address: `localhost`"),
        "{stderr}"
    );
}

/// The file source follows a file across a serve restart and a rotation done while stopped;
/// syslog over TCP and UDP arrives through the same pipeline; nothing is stored twice.
#[test]
fn file_and_syslog_sources_across_a_restart_and_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("vpn-0a1b2c3d-3.3.3.3.log");
    append(&log, 0..50);
    let data = dir.path().join("data");
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[sources.files]
type = "file"
include = ["{}/*.log*"]
glob_interval = "100ms"
poll_interval = "50ms"
rotate_wait = "200ms"

[sources.gw_tcp]
type = "syslog"
address = "127.0.0.1:0"

[sources.gw_udp]
type = "syslog"
mode = "udp"
address = "127.0.0.1:0"
"#,
            data.display(),
            logs.display()
        ),
    )
    .unwrap();
    let mut served = start_serve(&config);
    wait_rows(&served.http, 50);

    // Syslog: RFC 5424 over TCP (newline framing) and UDP, the tunnel named by APP-NAME.
    let syslog = |i: u32| {
        format!(
            "<134>1 2026-11-27T10:00:00Z gw01 vpn-0a1b2c3d-4.4.4.4 - - - {}",
            activity(i)
        )
    };
    let mut tcp = std::net::TcpStream::connect(&served.sources["gw_tcp"]).unwrap();
    for i in 1000..1020 {
        writeln!(tcp, "{}", syslog(i)).unwrap();
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 2000..2010 {
        udp.send_to(syslog(i).as_bytes(), &served.sources["gw_udp"])
            .unwrap();
    }
    wait_rows(&served.http, 80);
    let (_, metrics) = http(&served.http, "GET", "/metrics", "");
    assert!(
        metrics.contains("tunnelwatch_source_open{source=\"gw_tcp\",kind=\"syslog\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tunnelwatch_source_records_total{source=\"files\",kind=\"file\"} 50"),
        "{metrics}"
    );
    drop(tcp);
    assert!(terminate(&mut served.child).success());

    // While stopped: the file grows, then is rotated (rename + create).
    append(&log, 50..80);
    std::fs::rename(&log, logs.join("vpn-0a1b2c3d-3.3.3.3.log.1")).unwrap();
    append(&log, 80..100);
    let mut served = start_serve(&config);
    wait_rows(&served.http, 130);
    // Growth after the restart arrives too.
    append(&log, 100..110);
    wait_rows(&served.http, 140);
    std::thread::sleep(std::time::Duration::from_millis(500));
    wait_rows(&served.http, 140);
    let (n, _) = rows(&served.http);
    assert!(terminate(&mut served.child).success());
    let csv = query_csv(
        &data,
        "SELECT tunnel_ip, count(*) AS n FROM tunnel_activity GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(csv, "tunnel_ip,n\n3.3.3.3,110\n4.4.4.4,30\n");
    assert_eq!(n, 140);
}

/// A source that cannot start (its port is taken) stops `serve` with exit 1 and says which
/// source and address; nothing is left half-running.
#[test]
fn a_source_that_cannot_listen_stops_serve_with_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    std::fs::write(
        &config,
        format!(
            "data = \"{}\"\n[sources.gw]\ntype = \"syslog\"\naddress = \"{addr}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("source `gw` failed") && stderr.contains(&addr.to_string()),
        "{stderr}"
    );
}

/// Connections that send nothing, or half a request, are closed once idle past their limit
/// (twice the request or ack timeout, and 5 s), while a real client is served meanwhile.
#[test]
fn idle_and_half_sent_connections_are_closed() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[http]
request_timeout = "1s"

[sources.push]
type = "http"
address = "127.0.0.1:0"
token = "{TOKEN}"
ack_timeout = "1s"
"#,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut served = start_serve(&config);
    let open = |addr: &str, half: bool| {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        if half {
            c.write_all(b"POST /ingest HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
        }
        c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        c
    };
    let push = served.sources["push"].clone();
    let mut idle = vec![
        open(&served.http, false),
        open(&served.http, true),
        open(&push, false),
        open(&push, true),
    ];
    assert_eq!(http(&served.http, "GET", "/healthz", "").0, 200);
    for c in &mut idle {
        // The server closes it (EOF, perhaps after a 408 answer); still open, the read would
        // fail when its 30 s read timeout ran out.
        let mut rest = Vec::new();
        let r = c.read_to_end(&mut rest);
        assert!(r.is_ok(), "an idle connection was not closed: {r:?}");
    }
    assert!(terminate(&mut served.child).success());
}

//! End to end: the HTTP API of `demo` and `serve` (docs/openapi.yaml) — every `/api/v1` route,
//! each answer form of `POST /api/v1/query` (the Arrow IPC stream read back by the arrow
//! crate), the read-only guard over HTTP, bearer-token auth (401 without it; `/healthz` and,
//! unless `protect_metrics`, `/metrics` open) and the request size limit.

mod common;

use std::time::{Duration, Instant};

use common::{http, http_request, start_demo, start_serve, terminate};
use serde_json::Value;

fn json(addr: &str, path: &str) -> Value {
    let (status, _, body) = http_request(addr, "GET", path, &[], b"");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn query(addr: &str, accept: &str, sql: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    // The Arrow answer is binary: read it raw.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /api/v1/query HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: {accept}\r\nContent-Length: {}\r\n\r\n{sql}",
        sql.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[line_end + 2..line_end + 2 + size]);
        b = &b[line_end + 4 + size..];
    }
}

#[test]
fn every_api_route_on_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, addr) = start_demo(&data, &["--connections", "4", "--history", "2h"]);
    // Wait for the history and the live view (every connection known to the monitor).
    let deadline = Instant::now() + Duration::from_secs(90);
    let fleet = loop {
        let v = json(&addr, "/api/v1/connections");
        let known = v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["state"] != "unknown")
            .count();
        if known == 4 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the live view never had 4 connections: {v}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };

    // The fleet: four connections, two tunnels each, trouble first.
    let conns = fleet["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 4, "{fleet}");
    let rank = |s: &str| {
        ["down", "degraded", "unknown", "up"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    let ranks: Vec<usize> = conns
        .iter()
        .map(|c| rank(c["state"].as_str().unwrap()))
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "not trouble first: {fleet}"
    );
    for c in conns {
        let tunnels = c["tunnels"].as_array().unwrap();
        assert_eq!(tunnels.len(), 2, "{c}");
        for t in tunnels {
            assert!(t["up"].is_boolean() && t["since_ms"].is_i64(), "{t}");
        }
        assert!(
            ["static", "bgp"].contains(&c["routing"].as_str().unwrap()),
            "{c}"
        );
    }
    let counts: u64 = fleet["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counts, 4);

    // One connection: timeline of both tunnels, events, the SQL behind them.
    let vpn = conns[0]["vpn_id"].as_str().unwrap();
    let one = json(&addr, &format!("/api/v1/connections/{vpn}"));
    assert_eq!(one["connection"]["vpn_id"], vpn);
    let series = one["timeline"]["tunnels"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{one}");
    assert!(
        series
            .iter()
            .all(|s| !s["points"].as_array().unwrap().is_empty()),
        "{one}"
    );
    assert!(!one["events"].as_array().unwrap().is_empty(), "{one}");
    for part in ["timeline", "events", "alarm_history"] {
        assert!(one["sql"][part].as_str().unwrap().contains(vpn), "{part}");
    }
    let (status, _, _) = http_request(
        &addr,
        "GET",
        "/api/v1/connections/vpn-00000000000000000",
        &[],
        b"",
    );
    assert_eq!(status, 404);
    let (status, _, _) = http_request(&addr, "GET", "/api/v1/connections/x'%20OR%201=1", &[], b"");
    assert_eq!(status, 400);

    // Alarms (the demo runs the preset) and Health.
    let alarms = json(&addr, "/api/v1/alarms");
    let list = alarms["alarms"].as_array().unwrap();
    assert!(list.len() >= 8, "{alarms}");
    assert!(
        list.iter()
            .all(|a| a["state"].is_string() && a["alarm_instance"].is_string())
    );
    let firing = json(&addr, "/api/v1/alarms?state=ALARM");
    assert!(
        firing["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["state"] == "ALARM")
    );
    let (status, _, _) = http_request(&addr, "GET", "/api/v1/alarms?state=RED", &[], b"");
    assert_eq!(status, 400);
    // Diagnosis of the stored records: the fleet and one connection.
    let diag = json(&addr, "/api/v1/diagnose");
    assert!(
        diag["connections"].is_array() && diag["connections_read"].as_u64() >= Some(4),
        "{diag}"
    );
    let one_diag = json(&addr, &format!("/api/v1/diagnose/{vpn}"));
    assert_eq!(one_diag["connection"]["vpn_id"], vpn, "{one_diag}");
    assert_eq!(
        one_diag["connection"]["tunnels"].as_array().unwrap().len(),
        2
    );
    let (status, _, _) = http_request(&addr, "GET", "/api/v1/diagnose/nope", &[], b"");
    assert_eq!(status, 400);
    let health = json(&addr, "/api/v1/health");
    assert!(
        health["events"].is_array() && health["sql"].is_string(),
        "{health}"
    );

    // Query: each answer form.
    // The demo goes on live: count only the records before the test started, once their count
    // holds still (the history is stored at once, but not in no time).
    let before = chrono::Utc::now().timestamp_millis() - 60_000;
    let sql = format!(
        "SELECT vpn_id, count(*) AS n FROM tunnel_activity WHERE ts < to_timestamp_millis({before}) \
         GROUP BY vpn_id ORDER BY vpn_id"
    );
    let sql = sql.as_str();
    let json_total = || {
        let (status, head, body) = query(&addr, "application/json", sql);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(head.contains("application/json"));
        let rows: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(rows.len(), 4);
        rows.iter().map(|r| r["n"].as_i64().unwrap()).sum::<i64>()
    };
    let mut total = json_total();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let again = json_total();
        if again == total {
            break;
        }
        total = again;
    }
    let (_, _, nd) = query(&addr, "application/x-ndjson", sql);
    assert_eq!(String::from_utf8(nd).unwrap().lines().count(), 4);
    let (_, _, csv) = query(&addr, "text/csv", sql);
    assert!(String::from_utf8(csv).unwrap().starts_with("vpn_id,n\n"));
    let (status, head, arrow_bytes) = query(&addr, "application/vnd.apache.arrow.stream", sql);
    assert_eq!(status, 200);
    assert!(
        head.contains("application/vnd.apache.arrow.stream"),
        "{head}"
    );
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow_bytes), None).unwrap();
    assert_eq!(reader.schema().field(0).name(), "vpn_id");
    let mut arrow_total = 0i64;
    for b in reader {
        let b = b.unwrap();
        let n = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Int64).unwrap();
        let n = n
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        arrow_total += n.iter().flatten().sum::<i64>();
    }
    assert_eq!(arrow_total, total);
    let (status, _, _) = query(&addr, "image/png", sql);
    assert_eq!(status, 406);
    // A JSON body.
    let (status, _, body) = http_request(
        &addr,
        "POST",
        "/api/v1/query?format=csv",
        &[("Content-Type", "application/json")],
        br#"{"sql": "SELECT 1 AS one"}"#,
    );
    assert_eq!((status, body.as_str()), (200, "one\n1\n"));
    // The read-only guard over HTTP.
    for bad in [
        "DROP TABLE tunnel_activity",
        "CREATE TABLE x AS SELECT 1",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
    ] {
        let (status, _, body) = query(&addr, "application/json", bad);
        assert_eq!(status, 400, "{bad}: {}", String::from_utf8_lossy(&body));
        let e: Value = serde_json::from_slice(&body).unwrap();
        assert!(e["error"].is_string(), "{bad}");
    }
    // The old route still answers.
    let (status, body) = http(&addr, "POST", "/api/query?format=csv", "SELECT 2 AS two");
    assert_eq!((status, body.as_str()), (200, "two\n2\n"));
    assert!(terminate(&mut child).success());
}

#[test]
fn the_api_token_and_request_limits() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("vpn-1234abcd-1.2.3.4.log"),
        "{\"event_timestamp\": 1796003880, \"ike_phase1_state\": \"established\", \"ike_phase2_state\": \"established\", \"details\": \"AWS tunnel processed request (id=7) for CREATE_CHILD_SA\"}\n",
    )
    .unwrap();
    const TOKEN: &str = "s3cret-token-0123456789";
    let config = dir.path().join("tunnelwatch.toml");
    let write = |protect_metrics: bool| {
        std::fs::write(
            &config,
            format!(
                r#"data = "{}"

[http]
token_env = "TW_TEST_API_TOKEN"
protect_metrics = {protect_metrics}
max_body = "64KiB"

[sources.logs]
type = "file"
include = ["{}/*.log"]
"#,
                dir.path().join("data").display(),
                logs.display()
            ),
        )
        .unwrap()
    };
    write(false);
    // SAFETY: set before any thread of this test process reads the environment; the child reads it.
    unsafe { std::env::set_var("TW_TEST_API_TOKEN", TOKEN) };
    let mut served =
        common::start_serve_with(&config, &["--log-format", "json", "--log-level", "debug"]);
    let addr = served.http.clone();
    let bearer = format!("Bearer {TOKEN}");
    for path in [
        "/api/v1/connections",
        "/api/v1/alarms",
        "/api/v1/health",
        "/api/v1/connections/vpn-1234abcd",
    ] {
        let (status, head, body) = http_request(&addr, "GET", path, &[], b"");
        assert_eq!(status, 401, "{path}: {body}");
        assert!(head.contains("www-authenticate: Bearer"), "{head}");
        assert!(!body.contains(TOKEN));
        let (status, _, _) = http_request(
            &addr,
            "GET",
            path,
            &[("Authorization", "Bearer wrong-token-0000000000")],
            b"",
        );
        assert_eq!(status, 401, "{path}");
    }
    let (status, _, _) = http_request(&addr, "POST", "/api/v1/query", &[], b"SELECT 1");
    assert_eq!(status, 401);
    let (status, _, _) = http_request(&addr, "POST", "/api/query", &[], b"SELECT 1");
    assert_eq!(status, 401, "the old route is protected too");
    let (status, _, body) = http_request(
        &addr,
        "POST",
        "/api/v1/query?format=csv",
        &[("Authorization", &bearer)],
        b"SELECT 1 AS one",
    );
    assert_eq!((status, body.as_str()), (200, "one\n1\n"));
    let (status, _, _) = http_request(
        &addr,
        "GET",
        "/api/v1/connections",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200);
    // Open routes.
    assert_eq!(http(&addr, "GET", "/healthz", "").0, 200);
    assert_eq!(http(&addr, "GET", "/metrics", "").0, 200);
    // The status page does not run SQL without the token.
    let (status, page) = http(&addr, "GET", "/?sql=SELECT%20%27leak%27%20AS%20x", "");
    assert_eq!(status, 200);
    assert!(
        !page.contains("<td>leak</td>"),
        "the status page ran SQL without the token"
    );
    // Bodies over max_body: 413.
    let big = vec![b' '; 100 << 10];
    let (status, _, _) = http_request(
        &addr,
        "POST",
        "/api/v1/query",
        &[("Authorization", &bearer)],
        &big,
    );
    assert_eq!(status, 413);
    assert!(terminate(&mut served.child).success());

    // protect_metrics: /metrics needs the token too.
    write(true);
    let mut served = start_serve(&config);
    let addr = served.http.clone();
    assert_eq!(http(&addr, "GET", "/metrics", "").0, 401);
    let (status, _, _) = http_request(&addr, "GET", "/metrics", &[("Authorization", &bearer)], b"");
    assert_eq!(status, 200);
    assert_eq!(http(&addr, "GET", "/healthz", "").0, 200);
    assert!(terminate(&mut served.child).success());
}

/// docs/openapi.yaml documents every route the server registers (read from the router's
/// source, so a new route without documentation fails here).
#[test]
fn openapi_documents_every_route() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = std::fs::read_to_string(root.join("docs/openapi.yaml")).unwrap();
    let mut routes = Vec::new();
    for file in ["src/http/mod.rs", "src/http/api.rs"] {
        let code = std::fs::read_to_string(root.join(file)).unwrap();
        for part in code.split(".route(\"").skip(1) {
            routes.push(part.split('"').next().unwrap().to_owned());
        }
    }
    assert!(routes.len() >= 8, "{routes:?}");
    for r in routes.iter().filter(|r| *r != "/") {
        assert!(
            spec.contains(&format!("\n  {r}:\n")),
            "{r} is served but not in docs/openapi.yaml"
        );
    }
}

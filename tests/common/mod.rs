//! Helpers shared by the end-to-end tests: a minimal HTTP/1.1 client on loopback and starting
//! `tunnelwatch demo` on a free port.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether this run is CI's (`CI=true`), where a missing component fails the test.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// A component a test needs is missing: a notice outside CI (the caller returns), a failure
/// under `CI=true`.
pub fn missing(what: &str) {
    assert!(!ci(), "{what} and CI=true");
    eprintln!("NOTICE: {what}; skipping (CI=true makes this fail)");
}

/// `Some(())` when promtool runs; `None` after the notice when it is missing outside CI.
pub fn promtool_available() -> Option<()> {
    match Command::new("promtool").arg("--version").output() {
        Ok(o) if o.status.success() => Some(()),
        _ => {
            missing("promtool is not installed (Debian package `prometheus`)");
            None
        }
    }
}

/// One request on a new connection: returns (status, body).
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Starts `tunnelwatch demo --listen 127.0.0.1:0 --data DATA ARGS…` and returns it with the
/// address its guide names. Its stdout is drained in the background; stderr stays piped.
pub fn start_demo(data: &Path, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("demo exited before printing its guide")
            .unwrap();
        if let Some(rest) = line.trim().strip_prefix("Status page") {
            break rest
                .trim()
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// One request with extra headers and a binary body: returns (status, headers, body).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413, 401) before reading the whole body and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// A running `tunnelwatch serve`: the HTTP address and each network source's bound address.
pub struct Served {
    pub child: Child,
    pub http: String,
    pub sources: std::collections::HashMap<String, String>,
}

/// Starts `tunnelwatch serve --config CONFIG --listen 127.0.0.1:0` and reads its guide.
pub fn start_serve(config: &Path) -> Served {
    start_serve_with(config, &[])
}

/// [`start_serve`] with more arguments (`--log-format json` …).
pub fn start_serve_with(config: &Path, args: &[&str]) -> Served {
    start_serve_in(config, args, &[])
}

/// [`start_serve`] with environment variables for the child (`LD_PRELOAD` …).
pub fn start_serve_env(config: &Path, env: &[(&str, &str)]) -> Served {
    start_serve_in(config, &[], env)
}

fn start_serve_in(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut http = None;
    let mut sources = std::collections::HashMap::new();
    let mut in_sources = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Status page") {
            http = Some(
                rest.trim()
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned(),
            );
        } else if t == "Sources" {
            in_sources = true;
        } else if in_sources && t.is_empty() {
            break;
        } else if in_sources {
            let parts: Vec<&str> = t.split_whitespace().collect();
            if parts.len() >= 3 {
                let addr = parts[2];
                let addr = addr.split("://").last().unwrap().trim_end_matches('/');
                sources.insert(parts[0].to_owned(), addr.to_owned());
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        http: http.expect("serve exited before printing its guide"),
        sources,
    }
}

/// Sends SIGTERM and waits (bounded) for the exit status.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not stop within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `tunnelwatch ARGS…`, which must succeed, and returns its stdout.
pub fn tunnelwatch_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(args)
        .output()
        .expect("run tunnelwatch");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs SQL through `tunnelwatch query --output csv` and returns stdout.
pub fn query_csv(data: &Path, sql: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["query", "--output", "csv", "--data"])
        .arg(data)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (rows, distinct details) of tunnel_activity, over the HTTP SQL endpoint of `addr`.
pub fn rows(addr: &str) -> (u64, u64) {
    rows_where(addr, "true")
}

/// [`rows`] of the rows `filter` (an SQL condition) keeps.
pub fn rows_where(addr: &str, filter: &str) -> (u64, u64) {
    let (status, body) = http(
        addr,
        "POST",
        "/api/query?format=csv",
        &format!("SELECT count(*), count(DISTINCT details) FROM tunnel_activity WHERE {filter}"),
    );
    assert_eq!(status, 200, "{body}");
    let v: Vec<u64> = body
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1])
}

/// Waits (at most 60 s) until tunnel_activity holds `want` rows, failing at once if a record
/// was stored twice or more rows than expected arrived.
pub fn wait_rows(addr: &str, want: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (n, distinct) = rows(addr);
        assert_eq!(n, distinct, "a record was stored twice");
        if n == want {
            return;
        }
        assert!(n < want, "{n} rows, expected {want}");
        assert!(
            std::time::Instant::now() < deadline,
            "{n} of {want} rows after 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
pub mod small_disk;

/// A tunnel activity record (JSON) whose `details` carry `id=i`, so every one is distinct.
pub fn activity(i: u32) -> String {
    format!(
        r#"{{"event_timestamp": {}, "ike_phase1_state": "established", "ike_phase2_state": "established", "details": "AWS tunnel processed request (id={i}) for CREATE_CHILD_SA"}}"#,
        1_764_000_000 + i
    )
}

/// Appends the records `ids` to a log file, a line each.
pub fn append(path: &Path, ids: std::ops::Range<u32>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in ids {
        writeln!(f, "{}", activity(i)).unwrap();
    }
}

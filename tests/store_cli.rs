//! End-to-end tests of `tunnelwatch ingest` and `tunnelwatch query`: the round trip through a
//! new process, idempotent re-ingestion, a SIGKILL in the middle of a large ingest, the
//! read-only guard, and golden outputs of the saved queries (`tests/golden/saved/`).
//!
//! Regenerate the saved-query golden files with
//! `UPDATE_GOLDEN=1 cargo test --test store_cli saved` and review the diff.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run tunnelwatch")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "tunnelwatch {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Ingests the AWS-side fixtures into `data`: the files of `tests/data` and its `incident/`
/// (the customer-gateway captures under `tests/data/gateway/` have tests of their own).
fn ingest_fixtures(data: &str) -> String {
    ok(&[
        "ingest",
        "--data",
        data,
        "--syslog-year",
        "2025",
        "tests/data/*.*",
        "tests/data/incident",
    ])
}

fn query(data: &Path, sql: &str) -> String {
    ok(&[
        "query",
        "--data",
        data.to_str().unwrap(),
        "--output",
        "csv",
        sql,
    ])
}

#[test]
fn ingest_then_query_in_a_new_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let summary = ingest_fixtures(d);
    assert!(summary.contains("tunnel_activity"), "{summary}");
    let counts = query(
        &data,
        "SELECT (SELECT count(*) FROM tunnel_activity) AS a, (SELECT count(*) FROM bgp_events) AS b, \
         (SELECT count(*) FROM traffic) AS t, (SELECT count(*) FROM rejects) AS r",
    );
    assert_eq!(counts, "a,b,t,r\n38,24,1,1\n");
    // The AWS documentation example, exactly.
    let row = query(
        &data,
        "SELECT ts, vpn_id, tunnel_ip, type, status, message_kind, severity, prefix, as_path, local_pref, med, \
         next_hop_ip, weight, denied_reason FROM bgp_events \
         WHERE source LIKE '%aws-doc-bgp-example.json' AND type = 'RouteStatus'",
    );
    assert_eq!(
        row,
        "ts,vpn_id,tunnel_ip,type,status,message_kind,severity,prefix,as_path,local_pref,med,next_hop_ip,weight,denied_reason\n\
         2025-11-08T05:26:13.243Z,vpn-1234abcd,1.2.3.4,RouteStatus,UPDATED,route_denied,warning,172.31.0.0/16,64512,100,100,169.254.50.85,32768,as-path contains our own AS\n"
    );
    // The reject keeps its raw bytes and position.
    let rej = query(
        &data,
        "SELECT source, source_line, CAST(raw AS VARCHAR) AS raw FROM rejects",
    );
    assert_eq!(
        rej,
        "source,source_line,raw\ntests/data/text-layouts.log,5,this line means nothing at all\n"
    );

    // Ingesting the same inputs again adds nothing.
    let again = ingest_fixtures(d);
    assert!(again.contains("already stored"), "{again}");
    assert_eq!(
        query(&data, "SELECT count(*) AS n FROM tunnel_activity"),
        "n\n38\n"
    );

    // Output formats.
    let json = ok(&[
        "query",
        "--data",
        d,
        "--output",
        "json",
        "SELECT vpn_id, count(*) AS n FROM traffic GROUP BY vpn_id",
    ]);
    assert_eq!(json.trim(), r#"[{"vpn_id":"vpn-1234abcd","n":1}]"#);
    let ndjson = ok(&[
        "query",
        "--data",
        d,
        "--output",
        "ndjson",
        "SELECT 1 AS x UNION ALL SELECT 2 ORDER BY x",
    ]);
    assert_eq!(ndjson, "{\"x\":1}\n{\"x\":2}\n");
    let table = ok(&[
        "query",
        "--data",
        d,
        "--output",
        "table",
        "SELECT count(*) AS n FROM traffic",
    ]);
    assert!(
        table.contains("| n |") && table.contains("1 row"),
        "{table}"
    );
}

#[test]
fn writes_are_refused_and_have_no_effect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    ok(&["ingest", "--data", d, "tests/data/bgp-and-traffic.ndjson"]);
    let target = dir.path().join("x.csv");
    for sql in [
        format!("COPY (SELECT 1) TO '{}'", target.display()),
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'".to_owned(),
        "DROP TABLE bgp_events".to_owned(),
        "INSERT INTO traffic SELECT * FROM traffic".to_owned(),
    ] {
        let out = run(&["query", "--data", d, &sql]);
        assert_eq!(out.status.code(), Some(2), "{sql}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not allowed: queries are read-only"),
            "{sql}: {err}"
        );
    }
    assert!(!target.exists());
    assert_eq!(
        query(&data, "SELECT count(*) AS n FROM bgp_events"),
        "n\n2\n"
    );
    assert_eq!(
        query(
            &data,
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 't'"
        ),
        "n\n0\n"
    );
    // A bad query is a usage error with DataFusion's message.
    let out = run(&["query", "--data", d, "SELECT nope FROM traffic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

/// Writes `n` NDJSON activity records with distinct timestamps (one stream) and returns the path.
fn big_input(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("vpn-0123456789abcdef0-203.0.113.12.ndjson");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        writeln!(
            f,
            r#"{{"event_timestamp":{},"dpd_enabled":true,"nat_t_detected":false,"ike_phase1_state":"established","ike_phase2_state":"established","details":"AWS tunnel processed request (id={}) for CREATE_CHILD_SA"}}"#,
            1_762_580_429_000u64 + i as u64,
            i
        )
        .unwrap();
    }
    f.flush().unwrap();
    path
}

fn has_file(dir: &Path, ext: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            if p.is_dir() {
                has_file(&p, ext)
            } else {
                p.extension().is_some_and(|x| x == ext) && e.metadata().is_ok_and(|m| m.len() > 0)
            }
        })
}

/// SIGKILL in the middle of a large ingest, then the same ingest again: every record is there
/// exactly once.
#[test]
fn killed_ingest_then_rerun_stores_every_record_exactly_once() {
    const N: usize = 300_000;
    let dir = tempfile::tempdir().unwrap();
    let input = big_input(dir.path(), N);
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let args = [
        "ingest",
        "--data",
        d,
        "--flush-rows",
        "40000",
        input.to_str().unwrap(),
    ];
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a flush has put some rows in Parquet and the ledger covers them (a file's rows
    // skip the WAL: the rest are in memory only, and the ledger says where they begin), then
    // kill. (Parquet alone is not enough: a kill between the Parquet and the ledger leaves an
    // unfinished flush, which recovery deletes, and the rerun then skips nothing.)
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if has_file(&data.join("tunnel_activity"), "parquet") && data.join("sources.json").exists()
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ingest finished ({status}) before it could be killed; make the input larger");
        }
        assert!(Instant::now() < deadline, "ingest made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = query(&data, "SELECT count(*) AS n FROM tunnel_activity");
    let partial: usize = partial.lines().nth(1).unwrap().parse().unwrap();
    assert!(
        partial > 0 && partial < N,
        "killed too late or too early: {partial}"
    );

    let out = ok(&args);
    assert!(out.contains("already stored by an earlier run"), "{out}");
    assert_eq!(
        query(
            &data,
            "SELECT count(*) AS n, count(DISTINCT ts) AS d, min(request_id) AS lo, max(request_id) AS hi FROM tunnel_activity"
        ),
        format!("n,d,lo,hi\n{N},{N},0,{}\n", N - 1)
    );
}

const SAVED: [&str; 7] = [
    "errors-by-kind",
    "phase1-down",
    "bgp-flaps",
    "route-denials",
    "noisy-connections",
    "latest-tunnel-state",
    "rejects-by-error",
];

#[test]
fn saved_queries_match_their_golden_output() {
    let listed = ok(&["query", "--list-saved"]);
    for name in SAVED {
        assert!(listed.contains(name), "{name} not listed:\n{listed}");
    }
    assert_eq!(listed.lines().count(), SAVED.len());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    ingest_fixtures(d);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/saved");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for name in SAVED {
        let got = ok(&["query", "--data", d, "--output", "csv", "--saved", name]);
        let path = golden.join(format!("{name}.csv"));
        if update {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        if want != got {
            failures.push(format!(
                "{name}: differs from {}\n--- got ---\n{got}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let out = run(&["query", "--data", d, "--saved", "no-such-query"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unusable_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let d = d.to_str().unwrap();
    let out = run(&["ingest", "--data", d, "tests/data/nope.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tests/data/nope.log: no such file"));
    let out = run(&["ingest", "--data", d, "tests/data/*.nothing"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["query", "--data", "/nonexistent/tw", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such data directory"));
}

#[test]
fn stdin_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = bin()
        .args([
            "ingest",
            "--data",
            data.to_str().unwrap(),
            "--stream-name",
            "vpn-0123456789abcdef0-203.0.113.12",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"event_timestamp\":1762580429,\"ike_phase1_state\":\"down\",\"ike_phase2_state\":\"down\",\"details\":\"AWS tunnel DPD timed out after 3 retransmits\"}\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(
        query(
            &data,
            "SELECT vpn_id, tunnel_ip, message_kind, retry_count, source FROM tunnel_activity"
        ),
        "vpn_id,tunnel_ip,message_kind,retry_count,source\nvpn-0123456789abcdef0,203.0.113.12,dpd_timeout,3,stdin\n"
    );
}

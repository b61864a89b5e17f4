//! End-to-end tests of `tunnelwatch parse`: the binary on every sample input under
//! `tests/data/`, compared with golden NDJSON files (`tests/golden/parse/`), plus exit codes and
//! error messages.
//!
//! Regenerate the golden files after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --test parse_cli` and review the diff.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run tunnelwatch")
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tunnelwatch");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

const SAMPLES: [&str; 11] = [
    "aws-doc-bgp-example.json",
    "bgp-and-traffic.ndjson",
    "filter-log-events.json",
    "filter-log-events.txt",
    "firehose-request.json",
    "s3-export.txt",
    "subscription.json.gz",
    "syslog-newline.log",
    "syslog-octet.log",
    "text-layouts.log",
    "vpn-1234abcd-1.2.3.4.ndjson",
];

#[test]
fn every_sample_matches_its_golden_output() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/parse");
    let mut failures = Vec::new();
    for name in SAMPLES {
        let path = format!("tests/data/{name}");
        let out = run(&["parse", "--syslog-year", "2025", &path]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let golden = golden_dir.join(format!("{name}.ndjson"));
        if update {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&golden, &out.stdout).unwrap();
            continue;
        }
        let want = std::fs::read(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
        if want != out.stdout {
            failures.push(format!(
                "{name}: output differs from {}\n--- got ---\n{}",
                golden.display(),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn output_lines_are_json_objects_with_the_table_columns() {
    let out = run(&["parse", "tests/data/bgp-and-traffic.ndjson"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    for col in [
        "ts",
        "ingest_ts",
        "vpn_id",
        "tunnel_ip",
        "type",
        "status",
        "details",
        "message_kind",
        "severity",
        "prefix",
        "as_path",
        "local_pref",
        "med",
        "next_hop_ip",
        "weight",
        "denied_reason",
        "source",
        "format",
        "parse_quality",
    ] {
        assert!(
            rows[1].get(col).is_some(),
            "bgp_events row lacks {col}: {}",
            rows[1]
        );
    }
    assert_eq!(rows[1]["table"], "bgp_events");
    assert_eq!(rows[1]["message_kind"], "route_denied");
    assert_eq!(rows[2]["table"], "traffic");
    assert_eq!(rows[2]["bytes_in"], 123456);
}

/// What people paste from `aws logs filter-log-events --output text`: every event parsed from
/// its message (JSON exactly), the stream name as identity, the trailer lines no rejects.
#[test]
fn aws_logs_text_output_parses_without_rejects() {
    for format in ["auto", "cli-text"] {
        let out = run(&[
            "parse",
            "--format",
            format,
            "tests/data/filter-log-events.txt",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("6 events, 0 rejected"), "{format}: {err}");
        let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let quality: Vec<&str> = rows
            .iter()
            .map(|r| r["parse_quality"].as_str().unwrap())
            .collect();
        assert_eq!(
            quality,
            [
                "exact",
                "exact",
                "exact",
                "exact",
                "structured",
                "structured"
            ]
        );
        for r in &rows {
            assert_eq!(r["envelope"], "cli_text", "{r}");
            assert_ne!(r["message_kind"], "unknown", "{r}");
            assert_eq!(r["vpn_id"], "vpn-1234abcd", "{r}");
        }
        assert_eq!(rows[4]["tunnel_ip"], "5.6.7.8");
        assert_eq!(rows[4]["log_stream"], "vpn-1234abcd-5.6.7.8");
    }
}

#[test]
fn rejects_go_to_stderr_with_their_position_and_exit_is_zero() {
    let out = run(&["parse", "tests/data/text-layouts.log"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "tests/data/text-layouts.log: line 5 (byte 620): text record: nothing recognisable"
        ),
        "{err}"
    );
    assert!(err.contains("4 events, 1 rejected"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
}

#[test]
fn rejects_as_json_keep_the_raw_bytes() {
    let out = run_stdin(
        &["parse", "--rejects-json", "-"],
        b"garbage here\n{\"details\":\"x\",\"event_timestamp\":1762580429}\n",
    );
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let first: serde_json::Value = serde_json::from_str(err.lines().next().unwrap()).unwrap();
    assert_eq!(first["raw"], "garbage here");
    assert_eq!(first["source"], "stdin");
    assert_eq!(first["position"]["line"], 1);
}

#[test]
fn stdin_with_stream_name() {
    let input = b"{\"event_timestamp\":1762580429,\"ike_phase1_state\":\"down\",\"ike_phase2_state\":\"down\",\"details\":\"AWS tunnel is sending AUTHENTICATION_FAILED as the response\"}\n";
    let out = run_stdin(
        &[
            "parse",
            "--stream-name",
            "vpn-0123456789abcdef0-203.0.113.12",
            "-",
        ],
        input,
    );
    assert_eq!(out.status.code(), Some(0));
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row["vpn_id"], "vpn-0123456789abcdef0");
    assert_eq!(row["tunnel_ip"], "203.0.113.12");
    assert_eq!(row["message_kind"], "auth_failed");
    assert_eq!(row["severity"], "error");
    assert_eq!(row["source"], "stdin");
}

#[test]
fn unusable_input_exits_2() {
    // An empty file.
    let dir = std::env::temp_dir().join(format!("tw-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let out = run(&["parse", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no records could be parsed"));

    // A missing file, named in the error.
    let out = run(&["parse", "tests/data/does-not-exist.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tests/data/does-not-exist.log: cannot open")
    );

    // A readable file next to a missing one: the good one is printed, the exit says 2.
    let out = run(&[
        "parse",
        "tests/data/bgp-and-traffic.ndjson",
        "tests/data/does-not-exist.log",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    // Only garbage.
    let out = run_stdin(&["parse", "-"], b"\x00\x01\x02\xff\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin: line 1 (byte 0): invalid UTF-8"));

    // A bad flag value is a usage error.
    let out = run(&["parse", "--format", "yaml", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format \"yaml\""));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn forced_format() {
    let out = run(&[
        "parse",
        "--format",
        "syslog",
        "tests/data/bgp-and-traffic.ndjson",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expected a syslog line (forced by --format), found JSON"),
        "{err}"
    );
}

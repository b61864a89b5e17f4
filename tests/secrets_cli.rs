//! No secret leaks: the API token, the push source's token and the Firehose access key, with
//! the most verbose log level on, right and wrong credentials sent, and a config error about a token, never
//! appear in the operational log, in `/metrics`, in any answer or in the stored tables.

mod common;

use std::io::Read;
use std::process::Command;

use common::{http_request, start_serve_with, terminate};

const API_TOKEN: &str = "api-secret-7f3a9c1e5b2d4a6f";
const PUSH_TOKEN: &str = "push-secret-1b2c3d4e5f6a7b8c";
const FIREHOSE_KEY: &str = "firehose-secret-9e8d7c6b5a49";
const SECRETS: [&str; 3] = [API_TOKEN, PUSH_TOKEN, FIREHOSE_KEY];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} contains the secret {s}:\n{text}");
    }
}

#[test]
fn secrets_stay_out_of_logs_metrics_answers_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[http]
token = "{API_TOKEN}"

[sources.push]
type = "http"
address = "127.0.0.1:0"
token = "{PUSH_TOKEN}"

[sources.aws]
type = "firehose"
address = "127.0.0.1:0"
access_key = "{FIREHOSE_KEY}"
"#,
            data.display()
        ),
    )
    .unwrap();
    let mut served = start_serve_with(&config, &["--log-level", "trace"]);
    let mut stderr = served.child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let api = served.http.clone();
    let push = served.sources["push"].clone();
    let aws = served.sources["aws"].clone();
    let mut answers = String::new();
    let mut ask = |addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| {
        let (status, head, text) = http_request(addr, method, path, headers, body);
        answers.push_str(&format!("{status}\n{head}\n{text}\n"));
        status
    };
    let api_auth = format!("Bearer {API_TOKEN}");
    let push_auth = format!("Bearer {PUSH_TOKEN}");
    let record = br#"{"event_timestamp": 1764000000, "ike_phase1_state": "established", "ike_phase2_state": "established", "details": "AWS tunnel processed request (id=1) for CREATE_CHILD_SA"}"#;
    // Right and wrong credentials on every surface.
    assert_eq!(ask(&api, "GET", "/api/v1/connections", &[], b""), 401);
    let wrong_api = format!("Bearer {API_TOKEN}x");
    assert_eq!(
        ask(
            &api,
            "GET",
            "/api/v1/connections",
            &[("Authorization", &wrong_api)],
            b""
        ),
        401
    );
    assert_eq!(
        ask(
            &api,
            "GET",
            "/api/v1/connections",
            &[("Authorization", &api_auth)],
            b""
        ),
        200
    );
    // A push with the API token, one with a token one character short, then the right one.
    let short = format!("Bearer {}", &PUSH_TOKEN[..PUSH_TOKEN.len() - 1]);
    for auth in [api_auth.as_str(), short.as_str()] {
        let status = ask(
            &push,
            "POST",
            "/ingest?stream=vpn-0a1b2c3d-1.1.1.1",
            &[("Authorization", auth)],
            record,
        );
        assert_eq!(status, 401);
    }
    let status = ask(
        &push,
        "POST",
        "/ingest?stream=vpn-0a1b2c3d-1.1.1.1",
        &[("Authorization", &push_auth)],
        record,
    );
    assert_eq!(status, 200);
    let request = std::fs::read("tests/data/firehose-request.json").unwrap();
    let wrong_key = format!("{FIREHOSE_KEY}0");
    for key in [wrong_key.as_str(), PUSH_TOKEN, FIREHOSE_KEY] {
        ask(
            &aws,
            "POST",
            "/",
            &[
                (
                    "X-Amz-Firehose-Request-Id",
                    "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
                ),
                ("X-Amz-Firehose-Access-Key", key),
            ],
            &request,
        );
    }
    // A query that fails, with a secret in its text (errors echo the SQL, not credentials).
    let status = ask(
        &api,
        "POST",
        "/api/v1/query",
        &[("Authorization", &api_auth)],
        b"SELECT nope FROM tunnel_activity",
    );
    assert_eq!(status, 400);
    let status = ask(&api, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let status = ask(
        &api,
        "POST",
        "/api/v1/query",
        &[("Authorization", &api_auth)],
        b"SELECT * FROM (SELECT * FROM tunnel_activity UNION ALL SELECT * FROM tunnel_activity) LIMIT 100",
    );
    assert_eq!(status, 200);
    assert!(terminate(&mut served.child).success());
    let log = log.join().unwrap();
    // Everything the log has at its most verbose level.
    assert!(log.contains("stopped after"), "no log captured:\n{log}");
    assert_clean("the trace-level log", &log);
    assert_clean("the answers (bodies, headers, /metrics)", &answers);
    // What is stored: every table, every column, as text.
    for table in [
        "tunnel_activity",
        "bgp_events",
        "rejects",
        "gateway_events",
        "traffic",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
            .args(["query", "--output", "csv", "--data"])
            .arg(&data)
            .arg(format!("SELECT * FROM {table}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(table, &String::from_utf8_lossy(&out.stdout));
    }
    // The files of the data directory (ledger, WAL, Parquet, state) hold none either.
    for entry in walk(&data) {
        let bytes = std::fs::read(&entry).unwrap();
        for s in SECRETS {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{} contains the secret {s}",
                entry.display()
            );
        }
    }

    // A config error about a token names the setting, not the value.
    std::fs::write(
        &config,
        format!(
            "data = \"{}\"\n\n[http]\ntoken = \"short-secret9\"\n",
            data.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("token"), "{text}");
    assert!(
        !text.contains("short-secret9"),
        "the config error echoes the token:\n{text}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

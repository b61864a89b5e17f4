//! End to end: `tunnelwatch ingest` of a scripted incident (tunnel 1.2.3.4 of vpn-1234abcd down
//! 01:00–03:30, tunnel 5.6.7.8 up all along), then `tunnelwatch alarms test` with the `aws-vpn`
//! preset prints exactly the transitions CloudWatch's rules give, at the right minutes; bad
//! alarm definitions are refused with FILE:LINE:COL; the demo (preset on) fires and resolves a
//! tunnel-down alarm into `alarm_history` within its first minutes.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const DAY: &str = "2026-11-30";

fn tunnelwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(args)
        .output()
        .expect("run tunnelwatch")
}

use common::tunnelwatch_ok as ok;

/// Epoch seconds of `DAY` at `h:m`.
fn at(h: i64, m: i64) -> i64 {
    let midnight = chrono::NaiveDate::parse_from_str(DAY, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    midnight + h * 3600 + m * 60
}

/// One tunnel activity record per minute from 00:00 to 05:00, down inside `down`.
fn tunnel_log(path: &Path, down: Option<(i64, i64)>) {
    let mut text = String::new();
    for minute in 0..=300 {
        let ts = at(0, minute);
        let is_down = down.is_some_and(|(a, b)| ts >= a && ts < b);
        let (state, details) = if is_down {
            ("down", "AWS tunnel DPD timed out after 3 retransmits")
        } else {
            (
                "established",
                "AWS tunnel processed request (id=7) for CREATE_CHILD_SA",
            )
        };
        text.push_str(&format!(
            "{{\"event_timestamp\": {ts}, \"dpd_enabled\": true, \"nat_t_detected\": false, \
             \"ike_phase1_state\": \"{state}\", \"ike_phase2_state\": \"{state}\", \
             \"details\": \"{details}\"}}\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn utc(h: i64, m: i64) -> String {
    chrono::DateTime::from_timestamp(at(h, m), 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn preset_alarms_over_a_scripted_incident() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    tunnel_log(
        &logs.join("vpn-1234abcd-1.2.3.4.log"),
        Some((at(1, 0), at(3, 30))),
    );
    tunnel_log(&logs.join("vpn-1234abcd-5.6.7.8.log"), None);
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    ok(&["ingest", "--data", d, logs.to_str().unwrap()]);

    let out = tunnelwatch(&[
        "alarms", "test", "--data", d, "--preset", "aws-vpn", "--output", "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["ts"].as_str().unwrap().to_owned(),
                r["alarm_instance"].as_str().unwrap().to_owned(),
                r["old_state"].as_str().unwrap().to_owned(),
                r["new_state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |t: String, i: &str, a: &str, b: &str| (t, i.to_owned(), a.to_owned(), b.to_owned());
    let (down, up) = (
        "vpn-tunnel-down/vpn-1234abcd/1.2.3.4",
        "vpn-tunnel-down/vpn-1234abcd/5.6.7.8",
    );
    let (degraded, conn_down) = (
        "vpn-connection-degraded/vpn-1234abcd",
        "vpn-connection-down/vpn-1234abcd",
    );
    // The first evaluation, at the end of the first 5-minute period, leaves INSUFFICIENT_DATA.
    // The down tunnel: periods 01:00, 01:05 and 01:10 are all down, so the 3-of-3 alarm fires
    // at 01:15; the first up period is 03:30-03:35, so it is OK again at 03:35. Its connection
    // is degraded (Minimum 0.5) from the first down period (ALARM at 01:05) to 03:35, and never
    // fully down (the other tunnel is up: Maximum 1).
    let want = vec![
        row(utc(0, 5), degraded, "INSUFFICIENT_DATA", "OK"),
        row(utc(0, 5), conn_down, "INSUFFICIENT_DATA", "OK"),
        row(utc(0, 5), down, "INSUFFICIENT_DATA", "OK"),
        row(utc(0, 5), up, "INSUFFICIENT_DATA", "OK"),
        row(utc(1, 5), degraded, "OK", "ALARM"),
        row(utc(1, 15), down, "OK", "ALARM"),
        row(utc(3, 35), degraded, "ALARM", "OK"),
        row(utc(3, 35), down, "ALARM", "OK"),
    ];
    assert_eq!(got, want, "{stderr}");
    let alarm = rows
        .iter()
        .find(|r| r["alarm_instance"] == down && r["new_state"] == "ALARM")
        .unwrap();
    assert!(
        alarm["reason"]
            .as_str()
            .unwrap()
            .starts_with("Threshold Crossed: 3 out of the last 3 datapoints"),
        "{alarm}"
    );
    assert_eq!(alarm["vpn_id"], "vpn-1234abcd");
    assert_eq!(alarm["tunnel_ip"], "1.2.3.4");
    assert_eq!(alarm["reason_data"]["threshold"], 1.0);
    // What the logs said before it: the DPD timeouts.
    assert_eq!(
        alarm["probable_cause"],
        serde_json::json!(["dpd_timeout"]),
        "{alarm}"
    );

    // The notifications, as CloudWatch publishes them to SNS (golden file).
    let sns = ok(&[
        "alarms", "test", "--data", d, "--preset", "aws-vpn", "--output", "sns",
    ]);
    let messages: Vec<serde_json::Value> = sns
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(messages.len(), want.len());
    let message = messages
        .iter()
        .find(|m| m["Tunnelwatch"]["AlarmInstance"] == down && m["NewStateValue"] == "ALARM")
        .unwrap();
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/alarms/tunnel-down-alarm.json");
    let text = serde_json::to_string_pretty(message).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &text).unwrap();
    }
    assert_eq!(
        text,
        std::fs::read_to_string(&golden).unwrap_or_default(),
        "differs from {} (UPDATE_GOLDEN=1 rewrites it)",
        golden.display()
    );

    // The table output says the same in lines.
    let table = ok(&["alarms", "test", "--data", d, "--preset", "aws-vpn"]);
    let (health, transitions): (Vec<&str>, Vec<&str>) =
        table.lines().partition(|l| l.contains("  HEALTH "));
    assert_eq!(transitions.len(), want.len(), "{table}");
    // One tunnel down 2.5 h while the other was up: the day flags the connection, and the
    // month's single-tunnel Health event lists it.
    assert_eq!(health.len(), 1, "{table}");
    assert!(
        health[0].contains("AWS_VPN_SINGLE_TUNNEL_NOTIFICATION")
            && health[0].ends_with("vpn-1234abcd"),
        "{table}"
    );

    // A window: only the recovery.
    let since = utc(3, 0);
    let out = ok(&[
        "alarms", "test", "--data", d, "--preset", "aws-vpn", "--since", &since, "--output", "json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(
        rows.iter()
            .all(|r| r["ts"].as_str().unwrap() >= since.as_str())
    );
}

#[test]
fn bad_alarm_definitions_are_refused_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tunnelwatch.toml");
    let test_config = || {
        tunnelwatch(&[
            "alarms",
            "test",
            "--data",
            dir.path().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
    };
    let cases = [
        ("period = 90", "multiple of 60"),
        ("metric = \"TunnelSpeed\"", "TunnelSpeed"),
        ("datapoints_to_alarm = 5", "datapoints_to_alarm"),
        ("actions = { alarm = [\"pager\"] }", "notifier `pager`"),
    ];
    for (line, want) in cases {
        let base = "name = \"x\"\nmetric = \"TunnelState\"\ndimensions = { VpnId = \"*\" }\n\
                    statistic = \"Average\"\nperiod = 300\nevaluation_periods = 3\n\
                    comparison = \"LessThanThreshold\"\nthreshold = 1.0\n";
        let key = line.split(' ').next().unwrap();
        let body: String = base
            .lines()
            .filter(|l| !l.starts_with(key))
            .chain(std::iter::once(line))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(
            &config,
            format!("preset = \"aws-vpn\"\n\n[[alarms]]\n{body}"),
        )
        .unwrap();
        let out = test_config();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{line}: {stderr}");
        let prefix = format!("{}:3:", config.display());
        assert!(stderr.starts_with(&prefix), "{line}: {stderr}");
        assert!(stderr.contains(want), "{line}: {stderr}");
    }
    // A preset that does not exist.
    std::fs::write(&config, "preset = \"nope\"\n").unwrap();
    let out = test_config();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("1:") && stderr.contains("aws-vpn"),
        "{stderr}"
    );
}

/// The demo evaluates the aws-vpn preset as minutes complete: its 6 hours of simulated history
/// (seed 1, incidents included) put a tunnel-down ALARM and its return to OK into
/// `alarm_history`, with the tunnel named, and `alarms test` on its data agrees.
#[test]
fn demo_fires_and_resolves_a_tunnel_down_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, addr) = common::start_demo(&data, &["--connections", "20", "--history", "6h"]);
    let sql = "SELECT alarm_instance, vpn_id, tunnel_ip, old_state, new_state, reason \
               FROM alarm_history WHERE alarm_name = 'vpn-tunnel-down' AND \
               (new_state = 'ALARM' OR old_state = 'ALARM') ORDER BY ts";
    let deadline = Instant::now() + Duration::from_secs(120);
    let rows = loop {
        let (status, body) = common::http(&addr, "POST", "/api/query", sql);
        assert_eq!(status, 200, "{body}");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        let fired: Vec<&serde_json::Value> =
            rows.iter().filter(|r| r["new_state"] == "ALARM").collect();
        let resolved = fired.iter().any(|f| {
            rows.iter().any(|r| {
                r["alarm_instance"] == f["alarm_instance"]
                    && r["old_state"] == "ALARM"
                    && r["new_state"] == "OK"
            })
        });
        if resolved {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "no tunnel-down alarm fired and resolved: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // /metrics shows every instance's state.
    let (status, metrics) = common::http(&addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE tunnelwatch_alarm_state gauge"),
        "{metrics}"
    );
    for family in [
        "# TYPE tunnelwatch_notifications_pending gauge",
        "# TYPE tunnelwatch_notifications_sent counter",
        "# TYPE tunnelwatch_notifications_failed counter",
    ] {
        assert!(metrics.contains(family), "{family} in {metrics}");
    }
    assert!(
        metrics.lines().any(
            |l| l.starts_with("tunnelwatch_alarm_state{alarm=\"vpn-tunnel-down\"")
                && l.contains("state=\"ALARM\"")
        ),
        "{metrics}"
    );
    let fired = rows.iter().find(|r| r["new_state"] == "ALARM").unwrap();
    assert!(fired["tunnel_ip"].is_string(), "{fired}");
    // Each transition into ALARM or back to OK was notified through the outbox to the demo's
    // file notifier, once, in CloudWatch's SNS shape (the outbox sends within a second).
    let path = data.join("notifications.ndjson");
    let deadline = Instant::now() + Duration::from_secs(30);
    let messages: Vec<serde_json::Value> = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let messages: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if messages.iter().any(|m| {
            m["Tunnelwatch"]["AlarmInstance"] == fired["alarm_instance"]
                && m["NewStateValue"] == "ALARM"
        }) || Instant::now() > deadline
        {
            break messages;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = child.kill();
    let _ = child.wait();
    let alarm = messages
        .iter()
        .find(|m| {
            m["Tunnelwatch"]["AlarmInstance"] == fired["alarm_instance"]
                && m["NewStateValue"] == "ALARM"
        })
        .unwrap_or_else(|| panic!("no notification of {fired} in {messages:?}"));
    assert_eq!(alarm["AlarmName"], "vpn-tunnel-down");
    // Where the logs said why, the message says it too.
    assert!(
        messages.iter().any(|m| m["NewStateValue"] == "ALARM"
            && m["Tunnelwatch"]["ProbableCause"]
                .as_array()
                .is_some_and(|c| !c.is_empty())),
        "no ALARM notification names a probable cause: {messages:?}"
    );
    assert_eq!(alarm["Trigger"]["MetricName"], "TunnelState");
    let mut keys: Vec<&str> = messages
        .iter()
        .map(|m| m["Tunnelwatch"]["IdempotencyKey"].as_str().unwrap())
        .collect();
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n, "a notification was written twice");
    assert!(
        messages
            .iter()
            .all(|m| m["NewStateValue"] == "ALARM" || m["NewStateValue"] == "OK"),
        "only ALARM and OK have actions in the demo"
    );
    assert!(
        fired["alarm_instance"]
            .as_str()
            .unwrap()
            .ends_with(fired["tunnel_ip"].as_str().unwrap()),
        "{fired}"
    );
    assert!(
        fired["reason"]
            .as_str()
            .unwrap()
            .starts_with("Threshold Crossed"),
        "{fired}"
    );
}

/// A loopback webhook receiver that answers 503 to the first `fail` requests, then 200,
/// recording the idempotency key of each accepted request.
struct Receiver {
    url: String,
    state: std::sync::Arc<std::sync::Mutex<(u32, u32, Vec<String>)>>,
}

fn receiver(fail: u32) -> Receiver {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alarms", listener.local_addr().unwrap());
    let state = std::sync::Arc::new(std::sync::Mutex::new((fail, 0u32, Vec::new())));
    let s = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut key) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if let Some(v) = lower.strip_prefix("x-tunnelwatch-idempotency-key:") {
                    key = line[line.len() - v.len()..].trim().to_owned();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let status = {
                let mut st = s.lock().unwrap();
                st.1 += 1;
                if st.0 > 0 {
                    st.0 -= 1;
                    503
                } else {
                    st.2.push(key);
                    200
                }
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    Receiver { url, state }
}

/// Alarm notifications to a webhook that is down, with `serve` SIGKILLed after the first
/// failed attempt and started again while the receiver comes back (failing once more): every
/// notification arrives, exactly once.
#[test]
fn webhook_notifications_survive_a_sigkill_and_arrive_once() {
    // Down until after the kill.
    let hook = receiver(u32::MAX);
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Recent times (serve applies the last 24 h to the live state): 2 h of minute records, the
    // first tunnel down from minute 30 to 75.
    let base = (chrono::Utc::now().timestamp() / 3600 - 5) * 3600;
    append_minutes(&logs, base, 0, 120, 30..75);
    let data = dir.path().join("data");
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[sources.logs]
type = "file"
include = ["{}/*.log"]
glob_interval = "100ms"
poll_interval = "50ms"

[notifiers.hook]
type = "webhook"
url = "{}"
hmac_secret = "s3cret"

{down}
"#,
            data.display(),
            logs.display(),
            hook.url,
            down = down_alarm("hook")
        ),
    )
    .unwrap();
    let mut served = common::start_serve(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while hook.state.lock().unwrap().1 == 0 {
        assert!(Instant::now() < deadline, "no delivery attempt");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL after the first failed attempt: the notifications wait in the outbox.
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    let pending = std::fs::read_dir(data.join("outbox/pending"))
        .unwrap()
        .count();
    assert!(pending >= 1, "nothing pending in the outbox");
    assert!(hook.state.lock().unwrap().2.is_empty());
    // The receiver comes back, failing once more first.
    hook.state.lock().unwrap().0 = 1;

    let mut served = common::start_serve(&config);
    // Down tunnel: INSUFFICIENT_DATA -> OK, OK -> ALARM, ALARM -> OK; the other: -> OK.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let accepted = hook.state.lock().unwrap().2.len();
        if accepted >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "delivered {accepted} of 4: {:?}",
            hook.state.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A few more outbox rounds: nothing comes twice.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(common::terminate(&mut served.child).success());
    let mut keys = hook.state.lock().unwrap().2.clone();
    assert_eq!(keys.len(), 4, "{keys:?}");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "a notification arrived twice");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("down/vpn-1234abcd/1.2.3.4@") && k.ends_with(":ALARM"))
    );
    assert_eq!(
        std::fs::read_dir(data.join("outbox/pending"))
            .unwrap()
            .count(),
        0
    );
}

/// The per-tunnel "tunnel down" alarm the serve and ingest tests configure (A1 of the reference,
/// missing data breaching), its ALARM and OK actions naming `notifier`.
fn down_alarm(notifier: &str) -> String {
    format!(
        r#"[[alarms]]
name = "down"
metric = "TunnelState"
dimensions = {{ VpnId = "*", TunnelIpAddress = "*" }}
statistic = "Average"
period = 300
evaluation_periods = 3
comparison = "LessThanThreshold"
threshold = 1.0
treat_missing_data = "breaching"
actions = {{ alarm = ["{notifier}"], ok = ["{notifier}"] }}"#
    )
}

/// A `serve` config: `data`, a fast-polling file source over `logs/*.log`, a file notifier
/// `sent` writing to `sent`, then `extra` (alarms, more sources, `[health]`).
fn serve_config(data: &Path, logs: &Path, sent: &Path, extra: &str) -> String {
    format!(
        r#"data = "{}"

[sources.logs]
type = "file"
include = ["{}/*.log"]
glob_interval = "100ms"
poll_interval = "50ms"

[notifiers.sent]
type = "file"
path = "{}"

{extra}
"#,
        data.display(),
        logs.display(),
        sent.display(),
    )
}

/// `logs/` under `dir` with the endpoint-replacement day: tunnel 1.2.3.4 of vpn-1234abcd down
/// 02:00–02:05, tunnel 5.6.7.8 up all along.
fn replacement_logs(dir: &Path) -> std::path::PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    tunnel_log(
        &logs.join("vpn-1234abcd-1.2.3.4.log"),
        Some((at(2, 0), at(2, 5))),
    );
    tunnel_log(&logs.join("vpn-1234abcd-5.6.7.8.log"), None);
    logs
}

/// The AWS Health event (EventBridge shape) of the endpoint replacement at 01:58–02:10.
fn aws_health_event() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-health-redundancy-loss.json"),
    )
    .unwrap()
}

/// Minute records `from..=to` of tunnels 1.2.3.4 (down in `down`) and 5.6.7.8 (up), appended to
/// one log file per tunnel in `logs`; `base` is the epoch second of minute 0.
fn append_minutes(logs: &Path, base: i64, from: i64, to: i64, down: std::ops::Range<i64>) {
    use std::io::Write;
    for (ip, can_go_down) in [("1.2.3.4", true), ("5.6.7.8", false)] {
        let mut text = String::new();
        for minute in from..=to {
            let is_down = can_go_down && down.contains(&minute);
            let state = if is_down { "down" } else { "established" };
            let details = if is_down {
                "AWS tunnel DPD timed out after 3 retransmits"
            } else {
                "AWS tunnel processed request (id=7) for CREATE_CHILD_SA"
            };
            text.push_str(&format!(
                "{{\"event_timestamp\": {}, \"ike_phase1_state\": \"{state}\", \
                 \"ike_phase2_state\": \"{state}\", \"details\": \"{details}\"}}\n",
                base + minute * 60
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("vpn-1234abcd-{ip}.log")))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
}

/// Waits (at most 60 s) until `SQL` (one number) answers `want` on the serve at `addr`.
fn wait_count(addr: &str, sql: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = common::http(addr, "POST", "/api/query?format=csv", sql);
        if body.lines().nth(1) == Some(want.to_string().as_str()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: not {want} in 60 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `alarm_history` as "instance old->new" lines, in time order.
fn history(data: &Path) -> Vec<String> {
    common::query_csv(
        data,
        "SELECT alarm_instance, old_state, new_state FROM alarm_history ORDER BY ts, alarm_instance",
    )
    .lines()
    .skip(1)
    .map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        format!("{} {}->{}", f[0], f[1], f[2])
    })
    .collect()
}

/// A restarted `serve` goes on from the saved alarm state: no second INSUFFICIENT_DATA -> OK,
/// nothing recorded or notified twice, and `alarms list` shows the states.
#[test]
fn serve_restart_keeps_alarm_state() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let base = (chrono::Utc::now().timestamp() / 3600 - 5) * 3600;
    append_minutes(&logs, base, 0, 120, 30..75);
    let data = dir.path().join("data");
    let sent = dir.path().join("sent.ndjson");
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        serve_config(&data, &logs, &sent, &down_alarm("sent")),
    )
    .unwrap();
    let first = [
        "down/vpn-1234abcd/1.2.3.4 INSUFFICIENT_DATA->OK",
        "down/vpn-1234abcd/5.6.7.8 INSUFFICIENT_DATA->OK",
        "down/vpn-1234abcd/1.2.3.4 OK->ALARM",
        "down/vpn-1234abcd/1.2.3.4 ALARM->OK",
    ];
    let mut served = common::start_serve(&config);
    wait_count(
        &served.http,
        "SELECT count(*) FROM tunnel_activity",
        2 * 121,
    );
    wait_count(&served.http, "SELECT count(*) FROM alarm_history", 4);
    assert!(common::terminate(&mut served.child).success());
    assert_eq!(history(&data), first);
    let listed = ok(&["alarms", "list", "--data", data.to_str().unwrap()]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(
        lines[1].starts_with("down") && lines[1].contains(" OK "),
        "{listed}"
    );
    assert!(lines[1].contains("Threshold Crossed"), "{listed}");

    // Two more hours of logs, both tunnels up; then a second run.
    append_minutes(&logs, base, 121, 240, 0..0);
    let mut served = common::start_serve(&config);
    wait_count(
        &served.http,
        "SELECT count(*) FROM tunnel_activity",
        2 * 241,
    );
    // Time for the new minutes to complete and be evaluated (several 5-minute periods).
    std::thread::sleep(Duration::from_secs(3));
    assert!(common::terminate(&mut served.child).success());
    assert_eq!(
        history(&data),
        first,
        "the restart recorded transitions again"
    );
    let notified = std::fs::read_to_string(&sent).unwrap();
    assert_eq!(notified.lines().count(), 4, "{notified}");
    // The ALARM names the tunnel's diagnosis from the live records (DPD timeouts while down).
    let alarm: serde_json::Value = notified
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|m| m["message"]["NewStateValue"] == "ALARM" || m["NewStateValue"] == "ALARM")
        .unwrap();
    let m = if alarm["message"].is_object() {
        &alarm["message"]
    } else {
        &alarm
    };
    assert_eq!(
        m["Tunnelwatch"]["Diagnosis"]["Cause"], "dpd-flapping",
        "{m:#}"
    );
}

/// `ingest --config` brings alarms and Health up to the last stored minute and goes on from
/// there the next time: the scripted incident ingested in two halves records exactly the
/// transitions `alarms test` gives for the whole, notifies each once, and a repeated ingest
/// adds nothing; the single-tunnel day is one `health_events` row.
#[test]
fn ingest_with_config_catches_up_in_halves() {
    let dir = tempfile::tempdir().unwrap();
    let (half1, half2) = (dir.path().join("half1"), dir.path().join("half2"));
    for (part, keep) in [(&half1, 0..=120), (&half2, 121..=300)] {
        std::fs::create_dir_all(part).unwrap();
        for (ip, down) in [("1.2.3.4", Some((at(1, 0), at(3, 30)))), ("5.6.7.8", None)] {
            let whole = dir.path().join(format!("whole-{ip}.log"));
            tunnel_log(&whole, down);
            let text: String = std::fs::read_to_string(&whole)
                .unwrap()
                .lines()
                .enumerate()
                .filter(|(i, _)| keep.contains(&(*i as i64)))
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            std::fs::write(part.join(format!("vpn-1234abcd-{ip}.log")), text).unwrap();
        }
    }
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let sent = dir.path().join("sent.ndjson");
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"preset = "aws-vpn"

[notifiers.sent]
type = "file"
path = "{}"

{down}

[health]
notify = ["sent"]
"#,
            sent.display(),
            down = down_alarm("sent")
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let out = ok(&[
        "ingest",
        "--data",
        d,
        "--config",
        c,
        half1.to_str().unwrap(),
    ]);
    assert!(out.contains("alarms: evaluated up to"), "{out}");
    let after_first = history(&data);
    let out = ok(&[
        "ingest",
        "--data",
        d,
        "--config",
        c,
        half2.to_str().unwrap(),
    ]);
    assert!(out.contains("carried on from the last run"), "{out}");
    let whole = history(&data);
    // The same again: already stored, nothing new.
    let out = ok(&[
        "ingest",
        "--data",
        d,
        "--config",
        c,
        half2.to_str().unwrap(),
    ]);
    assert!(out.contains(" 0 new transition(s)"), "{out}");
    assert_eq!(history(&data), whole);
    // The next day, both up: the single-tunnel event's first notification (due at the end of
    // the flagged day) goes out, once.
    let half3 = dir.path().join("half3");
    std::fs::create_dir_all(&half3).unwrap();
    for ip in ["1.2.3.4", "5.6.7.8"] {
        std::fs::write(
            half3.join(format!("vpn-1234abcd-{ip}.log")),
            format!(
                "{{\"event_timestamp\": {}, \"ike_phase1_state\": \"established\", \
                 \"ike_phase2_state\": \"established\", \"details\": \"AWS tunnel processed \
                 request (id=8) for CREATE_CHILD_SA\"}}\n",
                at(24, 10)
            ),
        )
        .unwrap();
    }
    ok(&[
        "ingest",
        "--data",
        d,
        "--config",
        c,
        half3.to_str().unwrap(),
    ]);
    ok(&[
        "ingest",
        "--data",
        d,
        "--config",
        c,
        half3.to_str().unwrap(),
    ]);
    assert_eq!(history(&data), whole);

    let preview = ok(&[
        "alarms", "test", "--data", d, "--config", c, "--output", "json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&preview).unwrap();
    let mut want: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {}->{}",
                r["alarm_instance"].as_str().unwrap(),
                r["old_state"].as_str().unwrap(),
                r["new_state"].as_str().unwrap()
            )
        })
        .collect();
    let mut got = whole.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(whole.len(), 12, "{whole:#?}");
    assert!(
        after_first.len() > 4 && after_first.len() < whole.len(),
        "{after_first:#?}"
    );
    assert!(
        after_first.contains(&"down/vpn-1234abcd/1.2.3.4 OK->ALARM".to_owned()),
        "{after_first:#?}"
    );
    // OK actions run on INSUFFICIENT_DATA -> OK too (CloudWatch's rule): 2 + ALARM + OK, and
    // the Health event once, in AWS Health's EventBridge shape.
    let notified = std::fs::read_to_string(&sent).unwrap();
    assert_eq!(notified.lines().count(), 5, "{notified}");
    let health_message: serde_json::Value =
        serde_json::from_str(notified.lines().last().unwrap()).unwrap();
    assert_eq!(
        health_message["detail-type"], "AWS Health Event",
        "{health_message}"
    );
    assert_eq!(
        health_message["detail"]["eventTypeCode"],
        "AWS_VPN_SINGLE_TUNNEL_NOTIFICATION"
    );
    assert_eq!(
        health_message["detail"]["affectedEntities"][0]["entityValue"],
        "vpn-1234abcd"
    );
    // The tunnel's diagnosis rides along, as in alarm messages: the outage was DPD timeouts.
    let tw = &health_message["Tunnelwatch"];
    assert_eq!(tw["Diagnosis"]["Cause"], "dpd-flapping", "{health_message}");
    assert_eq!(tw["Diagnosis"]["TunnelIpAddress"], "1.2.3.4");
    assert_eq!(tw["Diagnoses"][0]["VpnId"], "vpn-1234abcd");
    let listed = ok(&["alarms", "list", "--data", d]);
    let states: Vec<&str> = listed
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(states, ["OK"; 6], "{listed}");

    let health = common::query_csv(
        &data,
        "SELECT event_type_code, status_code, vpn_id FROM health_events ORDER BY status_code DESC",
    );
    assert_eq!(
        health.lines().skip(1).collect::<Vec<_>>(),
        // Open while November lasted (Health runs on data time), closed once the data reached
        // December: one row per version, the newest is the event's state.
        [
            "AWS_VPN_SINGLE_TUNNEL_NOTIFICATION,open,vpn-1234abcd",
            "AWS_VPN_SINGLE_TUNNEL_NOTIFICATION,closed,vpn-1234abcd"
        ],
        "{health}"
    );
}

/// A five-minute outage of one tunnel while its twin stays up, with no configuration error
/// around it, is inferred as an endpoint replacement: one `AWS_VPN_REDUNDANCY_LOSS` row for
/// that tunnel, closed, once however often the ingest runs.
#[test]
fn ingest_with_config_infers_an_endpoint_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let logs = replacement_logs(dir.path());
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(&config, "preset = \"aws-vpn\"\n").unwrap();
    let c = config.to_str().unwrap();
    for _ in 0..2 {
        ok(&["ingest", "--data", d, "--config", c, logs.to_str().unwrap()]);
    }
    // The preview shows it too.
    let preview = ok(&["alarms", "test", "--data", d, "--config", c]);
    assert!(
        preview.contains("HEALTH AWS_VPN_REDUNDANCY_LOSS closed")
            && preview.contains("vpn-1234abcd tunnel 1.2.3.4"),
        "{preview}"
    );
    let health = common::query_csv(
        &data,
        "SELECT event_type_code, status_code, vpn_id, tunnel_ip, start_time, end_time FROM health_events",
    );
    assert_eq!(
        health.lines().skip(1).collect::<Vec<_>>(),
        [format!(
            "AWS_VPN_REDUNDANCY_LOSS,closed,vpn-1234abcd,1.2.3.4,{},{}",
            utc(2, 0).replace('Z', ".000Z"),
            utc(2, 5).replace('Z', ".000Z")
        )],
        "{health}"
    );
}

/// The current Health events, one line each: the last version of each event and connection,
/// without the inferences an AWS event confirmed (docs/tables.md gives this query).
const CURRENT_HEALTH: &str = "SELECT event_arn, event_type_code, origin, confirmed, vpn_id, tunnel_ip, matched_arn \
     FROM (SELECT *, row_number() OVER (PARTITION BY event_arn, vpn_id \
       ORDER BY coalesce(confirmed, false) DESC, last_updated_time DESC) AS version \
       FROM health_events) \
     WHERE version = 1 AND NOT (origin = 'tunnelwatch' AND coalesce(confirmed, false)) \
     ORDER BY event_arn, vpn_id";

#[test]
fn an_aws_health_event_confirms_the_inferred_replacement_in_either_order() {
    const AWS_ARN: &str = "arn:aws:health:us-east-1::event/VPN/AWS_VPN_REDUNDANCY_LOSS/AWS_VPN_REDUNDANCY_LOSS_1a2b3c4d-EXAMPLE";
    let event = aws_health_event();
    // An AWS event about another connection, which no inference matches.
    let other = serde_json::to_string(&{
        let mut v: serde_json::Value = serde_json::from_str(&event).unwrap();
        v["detail"]["eventArn"] =
            "arn:aws:health:us-east-1::event/VPN/AWS_VPN_REDUNDANCY_LOSS/OTHER".into();
        v["detail"]["affectedEntities"] = serde_json::json!([{"entityValue": "vpn-0000ffff"}]);
        v
    })
    .unwrap();
    for aws_first_with_logs in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let logs = replacement_logs(dir.path());
        let health_dir = dir.path().join("health");
        std::fs::create_dir_all(&health_dir).unwrap();
        let health_file = health_dir.join("aws-health.json");
        std::fs::write(&health_file, format!("{event}\n{other}\n")).unwrap();
        let data = dir.path().join("data");
        let d = data.to_str().unwrap();
        let config = dir.path().join("tunnelwatch.toml");
        std::fs::write(&config, "preset = \"aws-vpn\"\n").unwrap();
        let c = config.to_str().unwrap();
        let (l, h) = (logs.to_str().unwrap(), health_file.to_str().unwrap());
        if aws_first_with_logs {
            // Together: the inference meets the AWS event before it is ever stored.
            ok(&["ingest", "--data", d, "--config", c, l, h]);
        } else {
            // The inference is stored (and would be notified) first; AWS's event comes later.
            ok(&["ingest", "--data", d, "--config", c, l]);
            ok(&["ingest", "--data", d, "--config", c, h]);
        }
        // Again: nothing new.
        ok(&["ingest", "--data", d, "--config", c, h]);
        let current = common::query_csv(&data, CURRENT_HEALTH);
        let inferred = format!(
            "arn:aws:health:global::event/VPN/AWS_VPN_REDUNDANCY_LOSS/tunnelwatch-vpn-1234abcd-1.2.3.4-{}",
            at(2, 0) * 1000
        );
        assert_eq!(
            current.lines().skip(1).collect::<Vec<_>>(),
            [
                format!("{AWS_ARN},AWS_VPN_REDUNDANCY_LOSS,aws,true,vpn-1234abcd,1.2.3.4,{inferred}"),
                "arn:aws:health:us-east-1::event/VPN/AWS_VPN_REDUNDANCY_LOSS/OTHER,AWS_VPN_REDUNDANCY_LOSS,aws,false,vpn-0000ffff,,".to_owned(),
            ],
            "aws first with logs: {aws_first_with_logs}\n{current}"
        );
        // The raw table: the inference appears only if it was stored before AWS's event came.
        let inferred_rows = common::query_csv(
            &data,
            &format!(
                "SELECT confirmed, matched_arn FROM health_events WHERE event_arn = '{inferred}' ORDER BY confirmed"
            ),
        );
        let want: Vec<String> = if aws_first_with_logs {
            vec![]
        } else {
            vec!["false,".into(), format!("true,{AWS_ARN}")]
        };
        assert_eq!(
            inferred_rows.lines().skip(1).collect::<Vec<_>>(),
            want,
            "{inferred_rows}"
        );
        // The preview lists the pair once, as the AWS event.
        let preview = ok(&["alarms", "test", "--data", d, "--config", c]);
        assert!(
            preview.contains(&format!("HEALTH (AWS) AWS_VPN_REDUNDANCY_LOSS closed ({AWS_ARN}): vpn-1234abcd tunnel 1.2.3.4, confirms {inferred}"))
                && !preview.contains("HEALTH AWS_VPN_REDUNDANCY_LOSS"),
            "{preview}"
        );
    }
}

/// `serve` runs Health too: an AWS Health event POSTed to the `http` source (as an EventBridge
/// API destination sends it) is stored as coming from AWS and confirms the endpoint
/// replacement the logs show; an episode AWS does not confirm is inferred and notified once.
#[test]
fn serve_takes_aws_health_events_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let base = (chrono::Utc::now().timestamp() / 3600 - 5) * 3600;
    // Tunnel 1.2.3.4 down 30..35 (AWS confirms it) and 80..84 (AWS says nothing).
    append_minutes(&logs, base, 0, 120, 30..35);
    let data = dir.path().join("data");
    let sent = dir.path().join("sent.ndjson");
    let config = dir.path().join("tunnelwatch.toml");
    let extra = r#"[sources.eventbridge]
type = "http"
address = "127.0.0.1:0"
token = "0123456789abcdef"

[health]
notify = ["sent"]"#;
    std::fs::write(&config, serve_config(&data, &logs, &sent, extra)).unwrap();
    // The second episode, by rewriting tunnel 1.2.3.4's minutes 80..84 as down.
    let path = logs.join("vpn-1234abcd-1.2.3.4.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let text: String = text
        .lines()
        .enumerate()
        .map(|(m, l)| {
            let l = if (80..84).contains(&m) {
                l.replace("established", "down")
            } else {
                l.to_owned()
            };
            l + "\n"
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    let rfc1123 = |s: i64| {
        chrono::DateTime::from_timestamp(s, 0)
            .unwrap()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    };
    let mut event: serde_json::Value = serde_json::from_str(&aws_health_event()).unwrap();
    event["detail"]["startTime"] = rfc1123(base + 29 * 60).into();
    event["detail"]["endTime"] = rfc1123(base + 36 * 60).into();
    event["detail"]["lastUpdatedTime"] = rfc1123(base + 40 * 60).into();

    let mut served = common::start_serve(&config);
    wait_count(
        &served.http,
        "SELECT count(*) FROM tunnel_activity",
        2 * 121,
    );
    let (status, _, body) = common::http_request(
        &served.sources["eventbridge"],
        "POST",
        "/ingest",
        &[("Authorization", "Bearer 0123456789abcdef")],
        event.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    wait_count(
        &served.http,
        "SELECT count(*) FROM health_events WHERE origin = 'aws'",
        1,
    );
    // Health runs every few minutes and when the pipeline stops.
    std::thread::sleep(Duration::from_secs(2));
    assert!(common::terminate(&mut served.child).success());
    let current = common::query_csv(&data, CURRENT_HEALTH);
    let lines: Vec<&str> = current.lines().skip(1).collect();
    let aws_arn = event["detail"]["eventArn"].as_str().unwrap();
    let episode = |m: i64| {
        format!(
            "arn:aws:health:global::event/VPN/AWS_VPN_REDUNDANCY_LOSS/tunnelwatch-vpn-1234abcd-1.2.3.4-{}",
            (base + m * 60) * 1000
        )
    };
    assert_eq!(
        lines,
        [
            format!(
                "{},AWS_VPN_REDUNDANCY_LOSS,tunnelwatch,false,vpn-1234abcd,1.2.3.4,",
                episode(80)
            ),
            format!(
                "{aws_arn},AWS_VPN_REDUNDANCY_LOSS,aws,true,vpn-1234abcd,1.2.3.4,{}",
                episode(30)
            ),
        ],
        "{current}"
    );
    // Only the unconfirmed one is notified (AWS told its users about the other), once.
    let notified = std::fs::read_to_string(&sent).unwrap_or_default();
    let health: Vec<serde_json::Value> = notified
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|m: &serde_json::Value| {
            m["message"]["detail-type"] == "AWS Health Event"
                || m["detail-type"] == "AWS Health Event"
        })
        .collect();
    assert_eq!(health.len(), 1, "{notified}");
    assert!(notified.contains(&episode(80)), "{notified}");
    let message = if health[0]["message"].is_object() {
        &health[0]["message"]
    } else {
        &health[0]
    };
    let d = &message["Tunnelwatch"]["Diagnosis"];
    // The replacement's diagnosis rides along (these minute records show the tunnel down with
    // no message that says why).
    assert_eq!(d["TunnelIpAddress"], "1.2.3.4", "{message}");
    assert_eq!(d["Cause"], "unexplained", "{message}");
}

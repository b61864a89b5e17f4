//! The `alertmanager` notifier against a real Prometheus Alertmanager (Debian
//! `prometheus-alertmanager`, started here on loopback): an ALARM notification shows as a
//! firing alert with the tunnel's labels in `/api/v2/alerts`, and the OK that follows resolves
//! it. Without the binary the test says so and passes, unless `CI=true`, where it fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tunnelwatch_exporters::notify::NotifierConfig;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary() -> Option<&'static str> {
    ["prometheus-alertmanager", "alertmanager"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    // Chunked answers: keep the JSON between the first '[' and the last ']'.
    let body = match (body.find('['), body.rfind(']')) {
        (Some(a), Some(b)) if b > a => body[a..=b].to_owned(),
        _ => body,
    };
    (status, body)
}

fn message(state: &str, at: &str) -> Value {
    json!({
        "AlarmName": "vpn-tunnel-down",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 3 out of the last 3 datapoints were less than the threshold (1.0).",
        "StateChangeTime": at,
        "Tunnelwatch": {"AlarmInstance": "vpn-tunnel-down/vpn-1234abcd/1.2.3.4",
                        "VpnId": "vpn-1234abcd", "TunnelIpAddress": "1.2.3.4",
                        "Summary": "vpn-tunnel-down: tunnel 1.2.3.4 of vpn-1234abcd is in ALARM",
                        "ProbableCause": ["dpd_timeout"], "Severity": "warning"}
    })
}

#[test]
fn alarm_fires_and_ok_resolves_in_a_real_alertmanager() {
    let Some(bin) = binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prometheus-alertmanager is not installed and CI=true"
        );
        eprintln!("skipped: prometheus-alertmanager is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("am.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _am = Killed(
        Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() || get(&addr, "/-/ready").0 != 200 {
        assert!(Instant::now() < deadline, "alertmanager did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let notifier: NotifierConfig = serde_json::from_value(json!({
        "type": "alertmanager", "url": format!("http://{addr}"), "labels": {"team": "network"}
    }))
    .unwrap();
    let n = notifier.build("am").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = tunnelwatch_monitor::alarm::iso_time;
    let body = serde_json::to_vec(&message("ALARM", &at(now - 60_000))).unwrap();
    n.deliver(&body, "k1").unwrap();
    let (status, alerts) = get(&addr, "/api/v2/alerts");
    assert_eq!(status, 200, "{alerts}");
    let alerts: Vec<Value> = serde_json::from_str(&alerts).unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "vpn-tunnel-down");
    assert_eq!(a["labels"]["tunnel_ip"], "1.2.3.4");
    assert_eq!(a["labels"]["vpn_id"], "vpn-1234abcd");
    assert_eq!(a["labels"]["team"], "network");
    // The alarm definition's severity, as the message carries it.
    assert_eq!(a["labels"]["severity"], "warning");
    assert_eq!(a["status"]["state"], "active", "{a}");
    assert_eq!(a["annotations"]["probable_cause"], "dpd_timeout");

    // The OK resolves it: it leaves the active alerts.
    let body = serde_json::to_vec(&message("OK", &at(now))).unwrap();
    n.deliver(&body, "k2").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, alerts) = get(
            &addr,
            "/api/v2/alerts?active=true&silenced=false&inhibited=false",
        );
        let alerts: Vec<Value> = serde_json::from_str(&alerts).unwrap_or_default();
        if alerts.iter().all(|a| a["status"]["state"] != "active") {
            break;
        }
        assert!(Instant::now() < deadline, "still active: {alerts:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

//! The `prometheus` source against a real exporter: Debian's `prometheus-node-exporter`,
//! started here on loopback with only its netdev collector, scraped every second by
//! `tunnelwatch serve`; the loopback interface's counters become traffic samples of the
//! configured tunnel (transmit → `bytes_in`, AWS's direction), rising as the scrapes
//! themselves cross `lo`. Without the exporter the test says so and passes, unless `CI=true`.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http, missing, start_serve, terminate};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exporter() -> Option<&'static str> {
    ["prometheus-node-exporter", "node_exporter"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `(count, min bytes_in, max bytes_in, max packets_out, max ts in ms)` of the tunnel's rows.
fn samples(addr: &str) -> (u64, u64, u64, u64, i64) {
    let (status, body) = http(
        addr,
        "POST",
        "/api/query?format=csv",
        "SELECT count(*), min(bytes_in), max(bytes_in), max(packets_out), \
         max(CAST(ts AS BIGINT)) FROM traffic \
         WHERE vpn_id = 'vpn-0123456789abcdef0' AND tunnel_ip = '192.0.2.10'",
    );
    assert_eq!(status, 200, "{body}");
    let row: Vec<&str> = body.lines().nth(1).unwrap().split(',').collect();
    let n = |i: usize| row[i].parse::<u64>().unwrap_or(0);
    (n(0), n(1), n(2), n(3), row[4].parse().unwrap_or(0))
}

#[test]
fn node_exporter_counters_become_a_tunnels_traffic() {
    let Some(bin) = exporter() else {
        missing(
            "prometheus-node-exporter is missing (Debian `prometheus-node-exporter`; .ci/run installs it)",
        );
        return;
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let _exporter = Killed(
        Command::new(bin)
            .arg(format!("--web.listen-address={addr}"))
            .args([
                "--collector.disable-defaults",
                "--collector.netdev",
                "--collector.netdev.device-exclude=",
                "--collector.netdev.device-include=^lo$",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the exporter"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the exporter did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[sources.cgw]
type = "prometheus"
url = "http://{addr}/metrics"
interval = "1s"

[[sources.cgw.tunnels]]
vpn_id = "vpn-0123456789abcdef0"
tunnel_ip = "192.0.2.10"
bytes_in = 'node_network_transmit_bytes_total{{device="lo"}}'
bytes_out = 'node_network_receive_bytes_total{{device="lo"}}'
packets_in = 'node_network_transmit_packets_total{{device="lo"}}'
packets_out = 'node_network_receive_packets_total{{device="lo"}}'

# Series this exporter does not have: no record for this tunnel, and serve goes on.
[[sources.cgw.tunnels]]
vpn_id = "vpn-0123456789abcdef0"
tunnel_ip = "192.0.2.11"
bytes_in = 'ipsec_out_bytes{{tunnel="Tunnel2"}}'
"#,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut served = start_serve(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (count, low, high, packets, ts) = loop {
        let s = samples(&served.http);
        if s.0 >= 3 && s.2 > s.1 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no rising traffic samples from the exporter: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(count >= 3 && high > low && low > 0, "{count} {low} {high}");
    assert!(packets > 0);
    assert!(ts >= started - 1_000, "{ts} before the start {started}");
    // Only the tunnel whose series exist has samples.
    let (_, body) = http(
        &served.http,
        "POST",
        "/api/query?format=csv",
        "SELECT count(*) FROM traffic WHERE tunnel_ip = '192.0.2.11'",
    );
    assert_eq!(body.lines().nth(1), Some("0"), "{body}");
    assert!(terminate(&mut served.child).success());
}

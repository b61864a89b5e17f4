//! The `vici` source against a real strongSwan charon: `tests/data/gateway/vici-pair.sh`
//! brings up two charons (5.9.8, Debian) in network namespaces with an established IKEv2
//! tunnel and pings through it; `tunnelwatch serve` polls the customer gateway's charon over
//! its VICI socket every second, and the SA's counters become the tunnel's traffic in AWS's
//! directions, placed by the config's inventory, equal to what `swanctl --list-sas --raw`
//! reports and rising with more pings. Needs root (namespaces); without it, or without the
//! packages, the test says so and passes, unless `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{http, missing, start_serve, terminate};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gateway/vici-pair.sh")
}

/// Tears the pair down however the test ends.
struct Pair(PathBuf);

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = Command::new("timeout")
            .arg("60")
            .arg(script())
            .arg("down")
            .arg(&self.0)
            .status();
    }
}

fn pair(cmd: &str, dir: &Path, extra: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg(script())
        .arg(cmd)
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vici-pair.sh {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn runnable() -> Result<(), &'static str> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        return Err("not root (network namespaces)");
    }
    if !Path::new("/usr/lib/ipsec/charon").exists() {
        return Err("strongSwan's charon is missing (Debian `strongswan-charon`)");
    }
    for tool in ["swanctl", "ip", "ping", "unshare"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            return Err("swanctl, ip, ping or unshare is missing");
        }
    }
    Ok(())
}

/// `(rows, max bytes_in, max bytes_out, max packets_in)` of the tunnel's traffic.
fn traffic(addr: &str) -> (u64, u64, u64, u64) {
    let (status, body) = http(
        addr,
        "POST",
        "/api/query?format=csv",
        "SELECT count(*), max(bytes_in), max(bytes_out), max(packets_in) FROM traffic \
         WHERE vpn_id = 'vpn-0123456789abcdef0' AND tunnel_ip = '192.0.2.10'",
    );
    assert_eq!(status, 200, "{body}");
    let row: Vec<u64> = body
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    (row[0], row[1], row[2], row[3])
}

/// The cgw's (bytes-out, bytes-in) as swanctl reports them: AWS's in and out.
fn swanctl_bytes(dir: &Path) -> (u64, u64) {
    let raw = pair("raw", dir, &[]);
    let sum = |key: &str| -> u64 {
        raw.split_whitespace()
            .filter_map(|w| w.strip_prefix(key))
            .filter_map(|v| v.parse::<u64>().ok())
            .sum()
    };
    (sum("bytes-out="), sum("bytes-in="))
}

fn wait_for(
    addr: &str,
    what: &str,
    ok: impl Fn((u64, u64, u64, u64)) -> bool,
) -> (u64, u64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = traffic(addr);
        if ok(t) {
            return t;
        }
        assert!(Instant::now() < deadline, "{what}: {t:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_real_charons_sa_counters_become_the_tunnels_traffic() {
    if let Err(why) = runnable() {
        missing(&format!(
            "the vici test cannot run: {why}; .ci/run installs the packages"
        ));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("pair");
    let _pair = Pair(work.clone());
    let socket = pair("up", &work, &[]);
    let socket = socket.trim();
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[sources.charon]
type = "vici"
socket = "unix://{socket}"
interval = "1s"

[[connections]]
vpn_id = "vpn-0123456789abcdef0"
routing = "bgp"
tunnels = [{{ outside_ip = "192.0.2.10", inside_cidr = "169.254.10.0/30" }}]
"#,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut served = start_serve(&config);
    // Five pings of 84 bytes each way went through before serve started.
    let first = wait_for(&served.http, "no samples of the pinged SA", |t| {
        t.1 >= 420 && t.2 >= 420
    });
    assert!(first.3 >= 5, "{first:?}");
    // Five more: the samples follow, and settle at what swanctl reports.
    pair("ping", &work, &["5"]);
    let (aws_in, aws_out) = swanctl_bytes(&work);
    assert!(
        aws_in >= 840 && aws_out >= 840,
        "swanctl: {aws_in} {aws_out}"
    );
    wait_for(
        &served.http,
        "the samples do not reach swanctl's counters",
        |t| t.1 >= aws_in && t.2 >= aws_out,
    );
    assert!(terminate(&mut served.child).success());
}

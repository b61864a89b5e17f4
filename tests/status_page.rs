//! The status page in a real headless browser (Debian `chromium`): it loads on the demo, the
//! fleet table lists the demo's connections (as the API does), a connection page shows its
//! SVG TunnelState chart with both tunnels, and screenshots of both pages are saved as PNGs
//! under `target/screenshots/` (the README says how to make them by hand).
//!
//! Skips when no chromium is installed, except under `CI=true`, where that is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{http_request, missing, start_demo, terminate};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Runs headless chromium on `url` with `what` (`--dump-dom` or `--screenshot=FILE`), bounded
/// in time; returns stdout.
fn browse(browser: &Path, url: &str, what: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(what)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {what} {url}: {status}");
            return reader.join().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium {what} {url} did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(bytes.len() > 10_000, "{} is nearly empty", path.display());
}

#[test]
fn the_status_page_in_headless_chromium() {
    let Some(browser) = chromium() else {
        missing("chromium is missing (Debian `chromium`; .ci/run installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, addr) = start_demo(&data, &["--connections", "4", "--history", "2h"]);
    // The demo's connections, once the live view knows them all (and their minutes are stored).
    let deadline = Instant::now() + Duration::from_secs(90);
    let vpns: Vec<String> = loop {
        let (status, _, body) = http_request(&addr, "GET", "/api/v1/connections", &[], b"");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let list: Vec<String> = v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["state"] != "unknown")
            .map(|c| c["vpn_id"].as_str().unwrap().to_owned())
            .collect();
        let (_, _, minutes) = http_request(
            &addr,
            "POST",
            "/api/v1/query?format=csv",
            &[],
            b"SELECT count(DISTINCT vpn_id) FROM metrics WHERE metric_name = 'TunnelState'",
        );
        if list.len() == 4 && minutes.lines().nth(1) == Some("4") {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "the demo never showed 4 connections: {v}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };

    let fleet = browse(&browser, &format!("http://{addr}/"), "--dump-dom");
    assert!(fleet.contains("<table id=\"fleet\">"), "{fleet}");
    for vpn in &vpns {
        assert!(
            fleet.contains(&format!("data-vpn-id=\"{vpn}\"")),
            "{vpn} is not in the fleet table"
        );
        assert!(fleet.contains(&format!("href=\"/connections/{vpn}\"")));
    }

    let vpn = &vpns[0];
    let page = browse(
        &browser,
        &format!("http://{addr}/connections/{vpn}"),
        "--dump-dom",
    );
    assert!(page.contains("<svg id=\"timeline\""), "no chart: {page}");
    assert!(
        page.matches("<polyline").count() >= 2,
        "no TunnelState lines: {page}"
    );
    let (_, _, body) = http_request(
        &addr,
        "GET",
        &format!("/api/v1/connections/{vpn}"),
        &[],
        b"",
    );
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    for t in detail["connection"]["tunnels"].as_array().unwrap() {
        let ip = t["tunnel_ip"].as_str().unwrap();
        assert!(page.contains(ip), "{ip} not on the page");
    }
    assert!(page.contains("The SQL behind this page"));
    assert!(
        page.contains("<h2>Diagnosis</h2>"),
        "no diagnosis section: {page}"
    );

    let shots = screenshot_dir();
    let (fleet_png, conn_png) = (
        shots.join("status-page.png"),
        shots.join("status-connection.png"),
    );
    browse(
        &browser,
        &format!("http://{addr}/"),
        &format!("--screenshot={}", fleet_png.display()),
    );
    browse(
        &browser,
        &format!("http://{addr}/connections/{vpn}"),
        &format!("--screenshot={}", conn_png.display()),
    );
    assert_png(&fleet_png);
    assert_png(&conn_png);
    eprintln!(
        "screenshots: {} {}",
        fleet_png.display(),
        conn_png.display()
    );
    assert!(terminate(&mut child).success());
}

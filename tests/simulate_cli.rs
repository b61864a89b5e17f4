//! End-to-end tests of `tunnelwatch simulate`: the binary writes one file per log stream and
//! `truth.json`; the same seed gives the same bytes; every file parses back through
//! `tunnelwatch-parsers` with no reject and no `unknown` kind, with the identity its file name
//! gives; `truth.json` agrees with the parsed streams; bad arguments exit 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tunnelwatch_parsers::{
    DecoderOptions, Event, EventBody, MessageKind, ParseQuality, Parsed, parse_all,
};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("tw-simulate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn simulate(out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .arg("simulate")
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("run tunnelwatch")
}

fn ok(out: &Path, args: &[&str]) -> String {
    let o = simulate(out, args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// File name → contents, for every file in `dir`.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn truth(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap()
}

/// Parses every `.log` file, checking: no reject, no unknown kind, identity = file name.
fn parse_dir(dir: &Path) -> BTreeMap<String, Vec<Event>> {
    let mut out = BTreeMap::new();
    for (name, bytes) in files(dir) {
        if name == "truth.json" {
            continue;
        }
        let path = dir.join(&name);
        let source = path.to_string_lossy();
        let (vpn, ip) = tunnelwatch_parsers::identity::parse_tunnel_name(&name).unwrap();
        let mut events = Vec::new();
        for p in parse_all(&source, &bytes, DecoderOptions::default()) {
            match p {
                Parsed::Event(e) => {
                    assert_eq!(e.vpn_id(), Some(vpn), "{name}");
                    assert_eq!(e.tunnel_ip(), Some(ip), "{name}");
                    if let Some(m) = e.message() {
                        assert_ne!(m.kind, MessageKind::Unknown, "{name}: {e:?}");
                    }
                    events.push(e);
                }
                Parsed::Reject(r) => panic!("{r}"),
            }
        }
        assert_eq!(
            events.len(),
            bytes.iter().filter(|&&b| b == b'\n').count(),
            "{name}"
        );
        out.insert(name.trim_end_matches(".log").to_owned(), events);
    }
    out
}

fn phases_up(e: &Event) -> Option<bool> {
    match &e.body {
        EventBody::Activity(a) => {
            Some(a.ike_phase1_state.unwrap().is_up() && a.ike_phase2_state.unwrap().is_up())
        }
        _ => None,
    }
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let (a, b, c) = (
        TempDir::new("seed-a"),
        TempDir::new("seed-b"),
        TempDir::new("seed-c"),
    );
    let args = ["--connections", "3", "--duration", "3h", "--seed", "7"];
    let summary = ok(&a.0, &args);
    ok(&b.0, &args);
    ok(
        &c.0,
        &["--connections", "3", "--duration", "3h", "--seed", "8"],
    );
    let (fa, fb, fc) = (files(&a.0), files(&b.0), files(&c.0));
    assert!(fa.len() > 6);
    assert_eq!(fa, fb);
    assert_ne!(fa, fc);
    // One summary line: files, records, bytes, seconds.
    assert_eq!(summary.lines().count(), 1, "{summary}");
    let records: u64 = fa
        .iter()
        .filter(|(n, _)| n.ends_with(".log"))
        .map(|(_, b)| b.iter().filter(|&&x| x == b'\n').count() as u64)
        .sum();
    let bytes: u64 = fa
        .iter()
        .filter(|(n, _)| n.ends_with(".log"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert!(
        summary.contains(&format!("{} files + truth.json", fa.len() - 1)),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("{records} records, {bytes} bytes")),
        "{summary}"
    );
    assert!(summary.contains(" s ("), "{summary}");
}

#[test]
fn files_parse_back_and_truth_agrees() {
    let dir = TempDir::new("truth");
    ok(
        &dir.0,
        &[
            "--connections",
            "3",
            "--duration",
            "5h",
            "--seed",
            "3",
            "--scenario",
            "single-tunnel",
            "--scenario",
            "endpoint-replacement",
            "--no-random-faults",
        ],
    );
    let streams = parse_dir(&dir.0);
    let truth = truth(&dir.0);
    // Exactly the streams the inventory names, and nothing else.
    let mut named: Vec<String> = Vec::new();
    for c in truth["connections"].as_array().unwrap() {
        for s in c["streams"].as_array().unwrap() {
            for k in ["activity", "bgp", "traffic"] {
                if let Some(n) = s[k].as_str() {
                    named.push(n.to_owned());
                }
            }
        }
    }
    named.sort();
    assert_eq!(named, streams.keys().cloned().collect::<Vec<_>>());

    let incidents = truth["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2);
    for inc in incidents {
        let scenario = inc["scenario"].as_str().unwrap();
        let vpn = inc["vpn_id"].as_str().unwrap();
        let ip = inc["tunnel_ips"][0].as_str().unwrap();
        let (start, end) = (
            inc["start_ms"].as_i64().unwrap(),
            inc["end_ms"].as_i64().unwrap(),
        );
        assert_eq!(
            tunnelwatch_parsers::time::format_ms(start),
            inc["start"].as_str().unwrap()
        );
        let down = &inc["tunnels"][0]["ipsec_down"][0];
        let (from, until) = (
            down["from_ms"].as_i64().unwrap(),
            down["until_ms"].as_i64().unwrap(),
        );
        // The tunnel's phase states go down at `from` and come back at `until` (activity
        // timestamps are whole seconds on the wire).
        let own = &streams[&format!("{vpn}-{ip}")];
        let mut transitions = Vec::new();
        let mut prev = None;
        for e in own {
            let up = phases_up(e).unwrap();
            if prev.is_some_and(|p| p != up) {
                transitions.push((e.ts, up));
            }
            prev = Some(up);
        }
        assert_eq!(
            transitions,
            vec![(from - from % 1000, false), (until - until % 1000, true)],
            "{scenario}"
        );
        if scenario == "single-tunnel" {
            assert!(until - from > 3_600_000, "down for more than an hour");
        }
        // The other tunnel of the connection stays up throughout.
        let other = streams
            .keys()
            .find(|k| k.starts_with(&format!("{vpn}-")) && **k != format!("{vpn}-{ip}"))
            .unwrap();
        for e in &streams[other] {
            assert_eq!(phases_up(e), Some(true), "{scenario}: {other}");
        }
        if let Some(bgp) = streams.get(&format!("{vpn}_{}-bgp", &other[vpn.len() + 1..])) {
            for e in bgp.iter().filter(|e| e.ts >= start && e.ts <= end) {
                let EventBody::Bgp(b) = &e.body else {
                    unreachable!()
                };
                assert_ne!(b.message.kind, MessageKind::HoldTimerExpired);
            }
        }
        // The kinds truth lists are the kinds the parsed streams show in the incident's span.
        let mut seen: Vec<&str> = Vec::new();
        let mut in_span: Vec<&Event> = streams[&format!("{vpn}-{ip}")]
            .iter()
            .chain(
                streams
                    .get(&format!("{vpn}_{ip}-bgp"))
                    .into_iter()
                    .flatten(),
            )
            .filter(|e| e.ts >= start - start % 1000 && e.ts <= end)
            .collect();
        in_span.sort_by_key(|e| e.ts);
        for e in in_span {
            let k = e.message().unwrap().kind.as_str();
            if !seen.contains(&k) {
                seen.push(k);
            }
        }
        let mut want: Vec<&str> = inc["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        want.sort_unstable();
        seen.sort_unstable();
        assert_eq!(seen, want, "{scenario}");
    }
}

#[test]
fn text_format_parses_as_structured() {
    let dir = TempDir::new("text");
    ok(
        &dir.0,
        &[
            "--connections",
            "4",
            "--duration",
            "4h",
            "--format",
            "text",
            "--scenario",
            "prefix-limit",
            "--scenario",
            "psk-mismatch",
            "--scenario",
            "as-path-loop",
        ],
    );
    let streams = parse_dir(&dir.0);
    let mut checked = 0;
    for (name, events) in &streams {
        for e in events {
            let want = if name.ends_with("-traffic") {
                ParseQuality::Exact
            } else {
                ParseQuality::Structured
            };
            assert_eq!(e.parse_quality, want, "{name}");
            checked += 1;
        }
    }
    assert!(checked > 1000);
}

#[test]
fn rate_limit_caps_records_per_tunnel_second() {
    let dir = TempDir::new("rate");
    ok(
        &dir.0,
        &[
            "--connections",
            "2",
            "--duration",
            "2h",
            "--scenario",
            "prefix-limit",
            "--rate-limit",
            "5",
        ],
    );
    let streams = parse_dir(&dir.0);
    let mut per_second: BTreeMap<(String, i64), u32> = BTreeMap::new();
    for (name, events) in &streams {
        let (vpn, ip) = tunnelwatch_parsers::identity::parse_tunnel_name(name).unwrap();
        for e in events {
            *per_second
                .entry((format!("{vpn}_{ip}"), e.ts.div_euclid(1000)))
                .or_default() += 1;
        }
    }
    assert!(per_second.values().all(|&n| n <= 5));
    assert!(per_second.values().any(|&n| n == 5));
}

#[test]
fn bad_arguments_exit_2() {
    let dir = TempDir::new("bad");
    for args in [
        &["--duration", "6x"][..],
        &["--duration", "0h"],
        &["--connections", "0"],
        &["--connections", "5001"],
        &["--scenario", "meteor-strike"],
        &["--format", "xml"],
        &["--start", "yesterday"],
        &["--start", "1969-12-31T23:00:00Z"],
        &["--rate-limit", "0"],
        // single-tunnel runs for more than two hours: it cannot fit in one.
        &["--duration", "1h", "--scenario", "single-tunnel"],
    ] {
        let o = simulate(&dir.0, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!o.stderr.is_empty(), "{args:?}");
    }
    // A directory with other files in it is refused; --overwrite replaces earlier output only.
    std::fs::create_dir_all(&dir.0).unwrap();
    ok(&dir.0, &["--connections", "1", "--duration", "1h"]);
    let o = simulate(&dir.0, &["--connections", "1", "--duration", "1h"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    ok(
        &dir.0,
        &["--connections", "1", "--duration", "1h", "--overwrite"],
    );
    std::fs::write(dir.0.join("notes.txt"), "mine").unwrap();
    let o = simulate(
        &dir.0,
        &["--connections", "1", "--duration", "1h", "--overwrite"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(dir.0.join("notes.txt").exists());
}

#[test]
fn start_flag_moves_the_timeline() {
    let dir = TempDir::new("start");
    ok(
        &dir.0,
        &[
            "--connections",
            "1",
            "--duration",
            "30m",
            "--start",
            "2027-03-01T12:00:00Z",
        ],
    );
    let t = truth(&dir.0);
    assert_eq!(t["start"], "2027-03-01T12:00:00.000Z");
    assert_eq!(t["end"], "2027-03-01T12:30:00.000Z");
    for events in parse_dir(&dir.0).values() {
        for e in events {
            assert!(
                e.ts >= t["start_ms"].as_i64().unwrap() && e.ts < t["end_ms"].as_i64().unwrap()
            );
        }
    }
}

/// The simulator's own output ingests clean: `tunnelwatch ingest DIR` on a simulated directory
/// stores every record and no reject (the ground truth beside the logs is not a log).
#[test]
fn simulated_directory_ingests_without_rejects() {
    let dir = TempDir::new("ingest-dir");
    let (fleet, data) = (dir.0.join("fleet"), dir.0.join("data"));
    ok(
        &fleet,
        &[
            "--connections",
            "2",
            "--duration",
            "2h",
            "--scenario",
            "dpd-flap",
        ],
    );
    assert!(fleet.join("truth.json").is_file());
    let lines: usize = files(&fleet)
        .iter()
        .filter(|(name, _)| name.ends_with(".log"))
        .map(|(_, bytes)| bytes.iter().filter(|b| **b == b'\n').count())
        .sum();
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["ingest", "--no-metrics", "--data"])
        .arg(&data)
        .arg(&fleet)
        .output()
        .expect("run tunnelwatch ingest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |table: &str| -> usize {
        let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
            .args(["query", "--output", "csv", "--data"])
            .arg(&data)
            .arg(format!("SELECT count(*) FROM {table}"))
            .output()
            .expect("run tunnelwatch query");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    };
    assert_eq!(count("rejects"), 0, "ingest reported:\n{stdout}");
    assert_eq!(
        count("tunnel_activity") + count("bgp_events") + count("traffic"),
        lines,
        "every record of the stream files is stored"
    );
}

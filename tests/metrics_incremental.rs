//! End to end: metrics computed incrementally by successive `ingest`s (from the checkpoint of
//! the last computation, reading only the new rows) are exactly the metrics one `ingest` of
//! everything computes; records that arrive late fall back to a full recomputation, with the
//! same result. A simulated fleet of 40 connections over a day, with its random faults and several
//! flushes per ingest, cut into three time slices.

mod common;

use std::path::{Path, PathBuf};

use common::{query_csv, tunnelwatch_ok as tunnelwatch};

const SLICES: usize = 3;

/// Simulates the fleet into `dir/logs` and writes each file's records into
/// `dir/slice-<i>/` by event time (hours 0–8, 8–16, 16–24).
fn sliced_fleet(dir: &Path) -> Vec<PathBuf> {
    let logs = dir.join("logs");
    tunnelwatch(&[
        "simulate",
        "--out",
        logs.to_str().unwrap(),
        "--connections",
        "40",
        "--duration",
        "1d",
        "--seed",
        "5",
    ]);
    let start_ms = 1_793_577_600_000_i64; // the simulator's default start, 2026-11-02
    let slice_ms = 8 * 3_600_000;
    let dirs: Vec<PathBuf> = (0..SLICES)
        .map(|i| dir.join(format!("slice-{i}")))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let mut parts = vec![String::new(); SLICES];
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let t = v["event_timestamp"].as_i64().unwrap();
            let ms = if t < 100_000_000_000 { t * 1000 } else { t };
            let i = ((ms - start_ms) / slice_ms).clamp(0, SLICES as i64 - 1) as usize;
            parts[i].push_str(line);
            parts[i].push('\n');
        }
        for (i, text) in parts.iter().enumerate() {
            std::fs::write(dirs[i].join(path.file_name().unwrap()), text).unwrap();
        }
    }
    // Three connections — the first, one in the middle and the last in id order — go silent
    // after the first slice: their state holds, and the later computations must carry them on
    // without a record of theirs to read.
    let mut vpns: Vec<String> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy()[..21].to_owned())
        .collect();
    vpns.sort();
    vpns.dedup();
    let silent = [&vpns[0], &vpns[vpns.len() / 2], &vpns[vpns.len() - 1]];
    for d in &dirs[1..] {
        for e in std::fs::read_dir(d).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if silent.iter().any(|v| name.starts_with(v.as_str())) {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    dirs
}

/// Ingests `input` into `data` with small flushes; returns its `metrics:` line.
fn ingest(data: &Path, input: &[&Path]) -> String {
    let mut args = vec![
        "ingest",
        "--data",
        data.to_str().unwrap(),
        "--flush-rows",
        "20000",
    ];
    args.extend(input.iter().map(|p| p.to_str().unwrap()));
    let out = tunnelwatch(&args);
    out.lines()
        .find(|l| l.starts_with("metrics:"))
        .unwrap_or_else(|| panic!("no metrics line in {out}"))
        .to_owned()
}

/// The whole metrics table, in a fixed order.
fn metrics(data: &Path) -> String {
    query_csv(
        data,
        "SELECT CAST(ts AS BIGINT) AS ts, namespace, metric_name, vpn_id, tunnel_ip, sample_count, \
           sum, minimum, maximum, concentrator_id FROM metrics \
         ORDER BY metric_name, vpn_id, tunnel_ip, concentrator_id, ts",
    )
}

#[test]
fn ingests_in_slices_give_the_metrics_of_one_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let slices = sliced_fleet(dir.path());
    let s: Vec<&Path> = slices.iter().map(PathBuf::as_path).collect();

    let whole = dir.path().join("whole");
    assert!(ingest(&whole, &s).contains("recomputed from all stored events"));
    let expected = metrics(&whole);
    assert!(expected.lines().count() > 100_000, "a day of 80 tunnels");

    // In time order: the first computes everything, the next two only their slice.
    let sliced = dir.path().join("sliced");
    let first = ingest(&sliced, &s[..1]);
    assert!(first.contains("no checkpoint"), "{first}");
    for slice in &s[1..] {
        let line = ingest(&sliced, &[slice]);
        assert!(line.contains("(incremental:"), "{line}");
    }
    let got = metrics(&sliced);
    assert!(
        got == expected,
        "incremental metrics differ from one ingest's"
    );

    // Out of order: the late slice falls back to a full recomputation; the same table.
    let late = dir.path().join("late");
    ingest(&late, &[s[0]]);
    assert!(ingest(&late, &[s[2]]).contains("(incremental:"));
    let line = ingest(&late, &[s[1]]);
    assert!(
        line.contains("are not later than the stored metrics' end"),
        "{line}"
    );
    assert!(metrics(&late) == expected, "after the fallback");
    // And the next in-order ingest is incremental again (nothing new: no change).
    let again = ingest(&late, &[s[2]]);
    assert!(again.contains("(incremental: 0 new records)"), "{again}");
    assert!(metrics(&late) == expected);
}

#[test]
fn a_metrics_file_the_checkpoint_does_not_know_forces_a_full_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    let slices = sliced_fleet(dir.path());
    let data = dir.path().join("data");
    ingest(&data, &[&slices[0]]);
    let whole = dir.path().join("whole");
    ingest(&whole, &[&slices[0], &slices[1]]);
    // What an interrupted computation leaves: a newer generation's file.
    let file = walk(&data.join("metrics"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let stray = file.with_file_name(format!("m{:020}-000000.parquet", 99));
    std::fs::copy(&file, &stray).unwrap();
    let line = ingest(&data, &[&slices[1]]);
    assert!(
        line.contains("is not from the checkpoint's computation"),
        "{line}"
    );
    assert!(!stray.exists(), "the full recomputation retires it");
    assert!(metrics(&data) == metrics(&whole));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

//! Damage to a data directory as the binary meets it: a Parquet segment deleted under a running
//! `serve`, a segment with a damaged footer and a ledger cut in half at the next start. Each
//! time tunnelwatch starts, says what it quarantined, and answers from what is intact.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{activity, http, query_csv, start_serve, terminate};

/// Writes `ids` as a log file named for its tunnel and ingests it; returns its stderr.
fn ingest(dir: &Path, data: &Path, name: &str, ids: std::ops::Range<u32>) -> String {
    let path = dir.join(format!("vpn-0a1b2c3d-{name}.log"));
    let mut f = std::fs::File::create(&path).unwrap();
    for i in ids {
        writeln!(f, "{}", activity(i)).unwrap();
    }
    drop(f);
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["ingest", "--data"])
        .arg(data)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn activity_files(data: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for day in std::fs::read_dir(data.join("tunnel_activity")).unwrap() {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    files.sort();
    files
}

fn count(addr: &str) -> (u16, String) {
    http(
        addr,
        "POST",
        "/api/query?format=csv",
        // A filter on a column, so that the pages are read (a bare count comes from statistics).
        "SELECT count(*) FROM tunnel_activity WHERE details LIKE '%CREATE%'",
    )
}

#[test]
fn a_segment_deleted_under_serve_and_damage_found_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ingest(dir.path(), &data, "1.1.1.1", 0..100);
    ingest(dir.path(), &data, "2.2.2.2", 100..130);
    let files = activity_files(&data);
    assert_eq!(files.len(), 2, "{files:?}");
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            "data = \"{}\"\n\n[sources.push]\ntype = \"http\"\naddress = \"127.0.0.1:0\"\ntoken = \"t0ken-for-this-test\"\n",
            data.display()
        ),
    )
    .unwrap();

    let mut served = start_serve(&config);
    assert_eq!(count(&served.http), (200, "count(*)\n130\n".into()));
    // Removed from under the running store: the query answers from the file that is left (each
    // snapshot file is listed when a query scans it, so a removed one is simply not there).
    std::fs::remove_file(&files[1]).unwrap();
    assert_eq!(count(&served.http), (200, "count(*)\n100\n".into()));
    // And a diagnosis, after the other one went too.
    std::fs::remove_file(&files[0]).unwrap();
    let (status, body) = http(&served.http, "GET", "/api/v1/diagnose", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&served.http), (200, "count(*)\n0\n".into()));
    assert!(terminate(&mut served.child).success());

    // A damaged footer and a ledger cut in half, found at the next start.
    ingest(dir.path(), &data, "4.4.4.4", 300..400);
    ingest(dir.path(), &data, "3.3.3.3", 200..210);
    let files = activity_files(&data);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let n = bytes.len();
    let meta_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    bytes[n - 8 - meta_len] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    let ledger = data.join("sources.json");
    let text = std::fs::read(&ledger).unwrap();
    std::fs::write(&ledger, &text[..text.len() / 2]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["ingest", "--data"])
        .arg(&data)
        .arg(dir.path().join("vpn-0a1b2c3d-3.3.3.3.log"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("quarantined: tunnel_activity/"), "{stderr}");
    assert!(stderr.contains("quarantined: sources.json"), "{stderr}");
    assert!(stderr.contains("read its backup"), "{stderr}");
    // The backup knew the file: nothing of it was stored twice; the damaged segment's 100
    // rows are in quarantine, not in the table.
    assert_eq!(
        query_csv(&data, "SELECT count(*) AS n FROM tunnel_activity"),
        "n\n10\n"
    );
    let index = std::fs::read_to_string(data.join("quarantine/index.ndjson")).unwrap();
    assert_eq!(index.lines().count(), 2, "{index}");
}

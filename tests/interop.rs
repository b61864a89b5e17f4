//! The store is plain Parquet that other engines read: a real DuckDB (PyPI `duckdb`, run through
//! `python3`) reads every table of a data directory that `tunnelwatch ingest` wrote — several
//! day partitions, every record kind, a reject, the metrics — and gets the same answers as `tunnelwatch query`,
//! including the delta-encoded time and position columns. Skipped without DuckDB, except under
//! `CI=true`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{missing, query_csv, tunnelwatch_ok};

fn duckdb_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing("python3 with duckdb is not installed (pip install duckdb)");
    }
    ok
}

/// Runs `sql` in DuckDB over `data`, each table a view over its Parquet files; returns CSV
/// rows (no header).
fn duckdb_csv(data: &Path, sql: &str) -> String {
    const SCRIPT: &str = r#"
import csv, duckdb, os, sys
root, sql = sys.argv[1], sys.stdin.read()
con = duckdb.connect()
for t in sorted(os.listdir(root)):
    d = os.path.join(root, t)
    if os.path.isdir(d) and any(f.endswith(".parquet") for _, _, fs in os.walk(d) for f in fs):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{d}/*/*.parquet')")
w = csv.writer(sys.stdout, lineterminator="\n")
for row in con.execute(sql).fetchall():
    w.writerow(row)
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "duckdb: {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn duckdb_reads_every_table_with_the_same_answers() {
    if !duckdb_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let data = dir.path().join("data");
    tunnelwatch_ok(&[
        "simulate",
        "--out",
        logs.to_str().unwrap(),
        "--connections",
        "30",
        "--duration",
        "1d",
        "--seed",
        "3",
    ]);
    // A bad line becomes a reject, which must be readable too.
    std::fs::write(
        logs.join("vpn-0123456789abcdef0-203.0.113.9.log"),
        "{\"event_timestamp\": 1762580430, \"details\": \"AWS tunnel DPD timed out\"}\nnot json\n",
    )
    .unwrap();
    tunnelwatch_ok(&[
        "ingest",
        "--data",
        data.to_str().unwrap(),
        logs.to_str().unwrap(),
    ]);
    // (table, the same aggregate in DataFusion's and DuckDB's spelling)
    let ms = |c: &str| (format!("CAST({c} AS BIGINT)"), format!("epoch_ms({c})"));
    let checks: Vec<(&str, String, String)> = [
        ("tunnel_activity", "count(DISTINCT message_kind), count(DISTINCT vpn_id), count(details), sum(source_offset), sum(source_line)"),
        ("bgp_events", "count(DISTINCT message_kind), count(DISTINCT neighbor_ip), count(prefix), sum(source_offset), sum(source_line)"),
        ("traffic", "count(DISTINCT tunnel_ip), sum(bytes_in), sum(bytes_out), sum(source_offset)"),
        ("metrics", "count(DISTINCT metric_name), count(DISTINCT vpn_id), CAST(round(sum(sum)) AS BIGINT), sum(period_s)"),
        ("rejects", "count(DISTINCT error), count(raw), sum(source_line)"),
    ]
    .into_iter()
    .map(|(table, aggregates)| {
        let (df_ts, duck_ts) = ms("ts");
        (
            table,
            format!("SELECT count(*), {aggregates}, min({df_ts}), max({df_ts}) FROM {table}"),
            format!("SELECT count(*), {aggregates}, min({duck_ts}), max({duck_ts}) FROM {table}"),
        )
    })
    .collect();
    for (table, ours, theirs) in &checks {
        let ours = query_csv(&data, ours);
        let ours = ours.lines().nth(1).unwrap_or_default().to_owned();
        let theirs = duckdb_csv(&data, theirs);
        assert_eq!(ours, theirs.trim_end(), "{table}");
        let count: u64 = ours.split(',').next().unwrap().parse().unwrap();
        assert!(count > 0, "{table} is empty");
    }
    // The day partitions made more than one file per table, so several files were read.
    let files = walk_parquet(&data.join("tunnel_activity"));
    assert!(files > 1, "{files} file(s)");
}

fn walk_parquet(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += walk_parquet(&p);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            n += 1;
        }
    }
    n
}

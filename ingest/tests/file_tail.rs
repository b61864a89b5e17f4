//! The file tail source against the collector harness, with real files in temp directories:
//! growth is followed, partial lines wait for their newline, rename+create and copytruncate
//! rotation, truncation, restarts from the collected checkpoints (also across a rotation that
//! happened while stopped), files appearing after the start, `exclude`, gzip files and
//! `read_from = "end"`. Every record is a tunnel activity JSON line whose `event_timestamp`
//! carries its sequence number, so the decoded events show every line arrived exactly once.
mod common;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::Collector;
use tunnelwatch_ingest::pipeline::{ShutdownTrigger, SourceStats};
use tunnelwatch_ingest::sources::{SourceConfig, SourceError};

const BASE_MS: i64 = 1_762_580_429_000;
const WAIT: Duration = Duration::from_secs(20);
const LOG: &str = "vpn-1234abcd-1.2.3.4.log";

/// Tunnel activity record number `n` (as AWS writes them, one JSON object per line).
fn record(n: u64) -> String {
    format!(
        r#"{{"event_timestamp": {}, "timestamp": "2025-11-08 05:40:29.000Z", "dpd_enabled": true, "nat_t_detected": false, "ike_phase1_state": "established", "ike_phase2_state": "established", "details": "AWS tunnel processed request (id={n}) for CREATE_CHILD_SA"}}"#,
        BASE_MS + n as i64
    )
}

fn records(range: std::ops::Range<u64>) -> String {
    range.map(|n| record(n) + "\n").collect()
}

/// A log writer holding its file open, as a daemon does (it keeps writing to the same file
/// after a rename).
fn writer(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn write(w: &mut File, text: &str) {
    w.write_all(text.as_bytes()).unwrap();
    w.flush().unwrap();
}

fn config(include: &[PathBuf], extra: serde_json::Value) -> SourceConfig {
    let mut c = serde_json::json!({
        "type": "file",
        "include": include.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "glob_interval": "20ms",
        "poll_interval": "10ms",
        "rotate_wait": "0s",
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    serde_json::from_value(c).unwrap()
}

struct Running {
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<Result<(), SourceError>>,
    stats: Arc<SourceStats>,
}

fn start(c: &Collector, config: &SourceConfig) -> Running {
    let source = config.build("tail").unwrap();
    let (cx, trigger) = c.context("tail", "file");
    let stats = cx.stats.clone();
    Running {
        trigger,
        task: tokio::spawn(source.run(cx)),
        stats,
    }
}

impl Running {
    async fn stop(self) -> Arc<SourceStats> {
        self.trigger.trigger();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the source stops on shutdown")
            .unwrap()
            .expect("the source returns Ok on shutdown");
        self.stats
    }
}

/// The sequence number of an event (`request (id=N)` in its details).
fn seq(event: &serde_json::Value) -> u64 {
    let details = event["details"].as_str().expect("an activity event");
    let id = details
        .split("(id=")
        .nth(1)
        .and_then(|s| s.split(')').next());
    id.and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected details: {details}"))
}

/// The sequence numbers of the events collected so far, in arrival order.
fn seqs(c: &Collector) -> Vec<u64> {
    c.events().iter().map(seq).collect()
}

async fn wait_events(c: &Collector, n: usize) {
    assert!(
        c.wait_for(WAIT, |s| s.events.len() >= n).await,
        "waited for {n} events, have {}",
        c.events().len()
    );
}

/// Every record of `expected` arrived exactly once, nothing else, and nothing was rejected.
fn assert_exactly_once(c: &Collector, expected: impl IntoIterator<Item = u64>) {
    let got = seqs(c);
    let distinct: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(
        got.len(),
        distinct.len(),
        "{} duplicates",
        got.len() - distinct.len()
    );
    let want: BTreeSet<u64> = expected.into_iter().collect();
    let missing: Vec<_> = want.difference(&distinct).take(5).collect();
    let extra: Vec<_> = distinct.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}…, unexpected {extra:?}…"
    );
    assert_eq!(c.rejects(), Vec::<serde_json::Value>::new());
}

#[tokio::test]
async fn appended_lines_arrive_and_a_partial_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let sentinel_path = dir.path().join("vpn-1234abcd-5.6.7.8.log");
    let mut w = writer(&path);
    write(&mut w, &records(0..100));
    let c = Collector::start(1 << 20);
    let source = start(
        &c,
        &config(&[dir.path().join("*.log")], serde_json::json!({})),
    );
    wait_events(&c, 100).await;

    // The source names the tunnel from the file name.
    let e = &c.events()[0];
    assert_eq!(e["vpn_id"], "vpn-1234abcd");
    assert_eq!(e["tunnel_ip"], "1.2.3.4");
    assert_eq!(e["source"], path.display().to_string());

    for n in 100..199 {
        write(&mut w, &(record(n) + "\n"));
    }
    wait_events(&c, 199).await;

    // A line and half the next in one write: once a file written after it has been read
    // twice, the source has polled the half line, and must not have handed it on.
    let partial = record(200);
    let (head, tail) = partial.split_at(partial.len() / 2);
    write(&mut w, &(records(199..200) + head));
    let mut sentinel = writer(&sentinel_path);
    write(&mut sentinel, &records(1000..1001));
    wait_events(&c, 201).await;
    write(&mut sentinel, &records(1001..1002));
    wait_events(&c, 202).await;
    let complete_bytes = records(0..200).len() + records(1000..1002).len();
    assert_eq!(
        source.stats.bytes.load(Ordering::Relaxed),
        complete_bytes as u64,
        "only complete lines are handed on"
    );

    write(&mut w, &format!("{tail}\n"));
    wait_events(&c, 203).await;
    let mut want: Vec<u64> = (0..201).collect();
    want.extend([1000, 1001]);
    let mut got = seqs(&c);
    got.sort();
    assert_eq!(got, want);
    assert_eq!(c.rejects(), Vec::<serde_json::Value>::new());
    assert_eq!(source.stats.open.load(Ordering::Relaxed), 2);
    let key_prefix = "file:tail:";
    let checkpoints = c.checkpoints();
    let cp = checkpoints
        .values()
        .find(|cp| cp.state["path"] == path.display().to_string())
        .unwrap();
    assert!(cp.key.starts_with(key_prefix));
    assert_eq!(cp.offset, records(0..201).len() as u64);

    // Half a line on its own.
    let partial = record(201);
    let (head, tail) = partial.split_at(partial.len() / 3);
    write(&mut w, head);
    write(&mut sentinel, &records(1002..1003));
    wait_events(&c, 204).await;
    write(&mut sentinel, &records(1003..1004));
    wait_events(&c, 205).await;
    let complete_bytes = records(0..201).len() + records(1000..1004).len();
    assert_eq!(
        source.stats.bytes.load(Ordering::Relaxed),
        complete_bytes as u64,
        "only complete lines are handed on"
    );
    write(&mut w, &format!("{tail}\n"));
    wait_events(&c, 206).await;
    assert_exactly_once(&c, (0..202).chain(1000..1004));
    let stats = source.stop().await;
    assert_eq!(stats.open.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn rename_and_create_rotation_reads_every_line_once() {
    // The renamed file followed only through the open file, or also matched by the pattern.
    rename_and_create("*.log").await;
    rename_and_create("*.log*").await;
}

async fn rename_and_create(pattern: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let rotated = dir.path().join(format!("{LOG}.1"));
    let mut old = writer(&path);
    write(&mut old, &records(0..500));
    let c = Collector::start(1 << 20);
    let source = start_blocked(&c, dir.path(), pattern, 500).await;

    // Lines not read yet; the rename; the writer keeps writing to the renamed file until it
    // reopens its log; the new file.
    write(&mut old, &records(500..1000));
    std::fs::rename(&path, &rotated).unwrap();
    write(&mut old, &records(1000..1100));
    let mut new = writer(&path);
    write(&mut new, &records(1100..1500));
    write(&mut old, &records(1500..1510));
    // Its last line has no newline: it goes with the end of the renamed file's stream.
    write(&mut old, &record(1510));
    drop(old);
    c.release();

    wait_events(&c, 1511 + FILLER.count()).await;
    // The renamed file's stream ends and it is closed; the new file and the filler stay open.
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    assert!(
        c.wait_for(WAIT, |_| source.stats.open.load(Ordering::Relaxed) == 2)
            .await
    );
    write(&mut new, &records(1511..1600));
    wait_events(&c, 1600 + FILLER.count()).await;
    assert_exactly_once(&c, (0..1600).chain(FILLER));
    source.stop().await;
}

#[tokio::test]
async fn a_renamed_file_is_followed_for_rotate_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let mut old = writer(&path);
    write(&mut old, &records(0..10));
    let c = Collector::start(1 << 20);
    let source = start(
        &c,
        &config(
            &[dir.path().join("*.log")],
            serde_json::json!({"rotate_wait": "1h"}),
        ),
    );
    wait_events(&c, 10).await;
    std::fs::rename(&path, dir.path().join(format!("{LOG}.1"))).unwrap();
    let mut new = writer(&path);
    write(&mut new, &records(10..20));
    wait_events(&c, 20).await;
    // The writer has not reopened its log yet.
    write(&mut old, &records(20..30));
    wait_events(&c, 30).await;
    assert_exactly_once(&c, 0..30);
    assert_eq!(source.stats.open.load(Ordering::Relaxed), 2);
    assert_eq!(c.state.lock().unwrap().ended_streams, 0);
    source.stop().await;
}

#[tokio::test]
async fn copytruncate_with_the_copy_matched_reads_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let copy = dir.path().join(format!("{LOG}.1"));
    let mut w = writer(&path);
    write(&mut w, &records(0..300));
    let c = Collector::start(1 << 20);
    let source = start(
        &c,
        &config(&[dir.path().join(format!("{LOG}*"))], serde_json::json!({})),
    );
    wait_events(&c, 300).await;

    // logrotate copytruncate: lines written just before the copy may be unread yet; the copy
    // holds them. The writer (O_APPEND) goes on at the start of the truncated file.
    write(&mut w, &records(300..400));
    std::fs::copy(&path, &copy).unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    write(&mut w, &records(400..500));

    wait_events(&c, 500).await;
    write(&mut w, &records(500..550));
    wait_events(&c, 550).await;
    assert_exactly_once(&c, 0..550);
    // Both the copy and the truncated original are followed.
    assert_eq!(source.stats.open.load(Ordering::Relaxed), 2);
    source.stop().await;
}

#[tokio::test]
async fn truncation_to_empty_starts_again_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    std::fs::write(&path, records(0..50)).unwrap();
    let c = Collector::start(1 << 20);
    let source = start(
        &c,
        &config(std::slice::from_ref(&path), serde_json::json!({})),
    );
    wait_events(&c, 50).await;

    // `> file`, then new lines (fewer bytes than before, and more).
    std::fs::write(&path, "").unwrap();
    let mut w = writer(&path);
    write(&mut w, &records(50..60));
    wait_events(&c, 60).await;
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    write(&mut w, &records(60..200));
    wait_events(&c, 200).await;
    assert_exactly_once(&c, 0..200);
    source.stop().await;
}

#[tokio::test]
async fn restart_resumes_from_the_checkpoints_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let mut w = writer(&path);
    write(&mut w, &records(0..10_000));
    // A 1 MiB budget the collector does not give back: the source stops mid-file, blocked on
    // budget, after a few deliveries.
    let c = Collector::start(1 << 20);
    c.hold();
    let source = start(
        &c,
        &config(&[dir.path().join("*.log")], serde_json::json!({})),
    );
    wait_events(&c, 1000).await;
    assert!(
        c.wait_for(WAIT, |_| c.out.budget_free_bytes() < 256 << 10)
            .await
    );
    source.stop().await;
    let (first_run, deliveries) = {
        let s = c.state.lock().unwrap();
        (s.events.len(), s.deliveries)
    };
    assert!(first_run < 10_000, "stopped mid-way, read {first_run}");
    assert!(deliveries >= 2, "{deliveries} deliveries");
    c.release();

    write(&mut w, &records(10_000..12_000));
    let source = start(
        &c,
        &config(&[dir.path().join("*.log")], serde_json::json!({})),
    );
    wait_events(&c, 12_000).await;
    write(&mut w, &records(12_000..12_010));
    wait_events(&c, 12_010).await;
    assert_exactly_once(&c, 0..12_010);
    source.stop().await;
}

#[tokio::test]
async fn restart_after_a_rotation_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let rotated = dir.path().join(format!("{LOG}.1"));
    let include = [dir.path().join(format!("{LOG}*"))];
    let mut old = writer(&path);
    write(&mut old, &records(0..1000));
    let c = Collector::start(1 << 20);
    let source = start(&c, &config(&include, serde_json::json!({})));
    wait_events(&c, 1000).await;
    source.stop().await;

    // While stopped: more lines, rotation, lines in the new file.
    write(&mut old, &records(1000..1200));
    std::fs::rename(&path, &rotated).unwrap();
    drop(old);
    std::fs::write(&path, records(1200..1300)).unwrap();

    let source = start(&c, &config(&include, serde_json::json!({})));
    wait_events(&c, 1300).await;
    let mut w = writer(&path);
    write(&mut w, &records(1300..1310));
    wait_events(&c, 1310).await;
    assert_exactly_once(&c, 0..1310);
    source.stop().await;
}

#[tokio::test]
async fn files_appearing_after_the_start_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(1 << 20);
    let source = start(
        &c,
        &config(&[dir.path().join("*.log")], serde_json::json!({})),
    );
    let first = dir.path().join(LOG);
    std::fs::write(&first, records(0..20)).unwrap();
    wait_events(&c, 20).await;

    // A file whose first line is still incomplete is not read (it cannot be fingerprinted);
    // once the line is complete, all of it arrives.
    let second = dir.path().join("vpn-1234abcd-5.6.7.8.log");
    let line = record(100);
    let (head, tail) = line.split_at(40);
    let mut w = writer(&second);
    write(&mut w, head);
    std::fs::write(
        dir.path().join("vpn-1234abcd-9.9.9.9.log"),
        records(200..201),
    )
    .unwrap();
    wait_events(&c, 21).await;
    write(&mut w, &format!("{tail}\n{}", records(101..110)));
    wait_events(&c, 31).await;
    let mut want: Vec<u64> = (0..20).chain(100..110).chain([200]).collect();
    want.sort();
    let mut got = seqs(&c);
    got.sort();
    assert_eq!(got, want);
    let tunnel_of_100 = c.events().into_iter().find(|e| seq(e) == 100).unwrap();
    assert_eq!(tunnel_of_100["tunnel_ip"], "5.6.7.8");
    assert_eq!(source.stats.open.load(Ordering::Relaxed), 3);
    source.stop().await;
}

#[tokio::test]
async fn excluded_and_gzip_files_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vpn-1234abcd-1.1.1.1.log"), records(0..10)).unwrap();
    std::fs::write(
        dir.path().join("vpn-1234abcd-2.2.2.2.skip.log"),
        records(100..110),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(records(300..310).as_bytes()).unwrap();
    std::fs::write(
        dir.path().join("vpn-1234abcd-3.3.3.3.log.1.gz"),
        gz.finish().unwrap(),
    )
    .unwrap();
    // Sorted after the others: once its lines arrive, the others were polled too.
    std::fs::write(
        dir.path().join("vpn-1234abcd-4.4.4.4.log"),
        records(200..210),
    )
    .unwrap();
    let c = Collector::start(1 << 20);
    let source = start(
        &c,
        &config(
            &[dir.path().join("*")],
            serde_json::json!({"exclude": ["*.skip.*"]}),
        ),
    );
    wait_events(&c, 20).await;
    assert!(
        c.wait_for(WAIT, |s| s.events.iter().any(|e| seq(e) == 209))
            .await
    );
    let mut got = seqs(&c);
    got.sort();
    assert_eq!(got, (0..10).chain(200..210).collect::<Vec<_>>());
    assert_eq!(source.stats.open.load(Ordering::Relaxed), 2);
    source.stop().await;
}

#[tokio::test]
async fn read_from_end_skips_what_was_there_and_remembers_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let mut w = writer(&path);
    write(&mut w, &records(0..100));
    let include = [path.clone()];
    let c = Collector::start(1 << 20);
    let source = start(
        &c,
        &config(&include, serde_json::json!({"read_from": "end"})),
    );
    // The skip is stored as a checkpoint before anything is read.
    assert!(c.wait_for(WAIT, |s| !s.checkpoints.is_empty()).await);
    assert_eq!(
        c.checkpoints().values().next().unwrap().offset,
        records(0..100).len() as u64
    );
    write(&mut w, &records(100..150));
    wait_events(&c, 50).await;
    source.stop().await;

    // A restart resumes from the checkpoint, not from the (new) end.
    write(&mut w, &records(150..160));
    let source = start(
        &c,
        &config(&include, serde_json::json!({"read_from": "end"})),
    );
    wait_events(&c, 60).await;
    assert_exactly_once(&c, 100..160);
    source.stop().await;
}

#[tokio::test]
async fn a_deleted_file_is_read_to_its_end_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let mut w = writer(&path);
    write(&mut w, &records(0..100));
    let c = Collector::start(1 << 20);
    let source = start_blocked(&c, dir.path(), "*.log", 100).await;
    // The writer still holds it after the unlink.
    std::fs::remove_file(&path).unwrap();
    write(&mut w, &records(100..120));
    drop(w);
    c.release();
    wait_events(&c, 120 + FILLER.count()).await;
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    assert!(
        c.wait_for(WAIT, |_| source.stats.open.load(Ordering::Relaxed) == 1)
            .await
    );
    assert_exactly_once(&c, (0..120).chain(FILLER));
    source.stop().await;
}

const FILLER: std::ops::Range<u64> = 1_000_000..1_010_000;

/// Starts a source on `<dir>/<pattern>` with the collector holding receipts and a 1 MiB budget,
/// next to a filler file of 10,000 records (`FILLER`) sorted after the others; returns once
/// the others are read and the source is blocked on budget partway through the filler. Until
/// `release`, the source looks at nothing: what a test changes meanwhile, it sees at once.
async fn start_blocked(c: &Collector, dir: &Path, pattern: &str, others: usize) -> Running {
    std::fs::write(dir.join("vpn-1234abcd-9.9.9.9.log"), records(FILLER)).unwrap();
    c.hold();
    let source = start(c, &config(&[dir.join(pattern)], serde_json::json!({})));
    wait_events(c, others + 1).await;
    assert!(
        c.wait_for(WAIT, |_| c.out.budget_free_bytes() < 256 << 10)
            .await
    );
    assert!(c.events().len() < others + FILLER.count());
    source
}

#[tokio::test]
async fn a_copy_of_a_followed_file_is_not_read_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    let mut w = writer(&path);
    write(&mut w, &records(0..100));
    let c = Collector::start(1 << 20);
    let source = start_blocked(&c, dir.path(), "*.log*", 100).await;

    // Lines not read yet, a copy (as copytruncate makes before it truncates, or `cp`), and
    // lines after the copy.
    write(&mut w, &records(100..150));
    std::fs::copy(&path, dir.path().join(format!("{LOG}.1"))).unwrap();
    write(&mut w, &records(150..200));
    c.release();
    wait_events(&c, 200 + FILLER.count()).await;

    // A file found by a later scan than the copy's.
    std::fs::write(
        dir.path().join("vpn-1234abcd-5.6.7.8.log"),
        records(5000..5001),
    )
    .unwrap();
    write(&mut w, &records(200..210));
    wait_events(&c, 211 + FILLER.count()).await;
    assert_exactly_once(&c, (0..210).chain(FILLER).chain([5000]));
    source.stop().await;
}

#[tokio::test]
async fn a_file_truncated_and_regrown_past_the_offset_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG);
    std::fs::write(&path, records(0..50)).unwrap();
    let c = Collector::start(1 << 20);
    let source = start_blocked(&c, dir.path(), "*.log*", 50).await;

    // Rewritten with more bytes than were read: only the first line shows it.
    std::fs::write(&path, records(2000..2200)).unwrap();
    c.release();
    wait_events(&c, 250 + FILLER.count()).await;
    assert_exactly_once(&c, (0..50).chain(2000..2200).chain(FILLER));
    source.stop().await;
}

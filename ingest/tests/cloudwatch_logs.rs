//! The `cloudwatch_logs` source against a real moto server (`moto_server`, PyPI `moto[server]`),
//! which each test starts on a free loopback port and kills when it ends. Without moto_server the
//! tests print why and pass, unless `CI=true`, where they fail.
//!
//! Credentials reach the source through the standard chain: the tests set dummy
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` for the process (once, before any client exists)
//! and point the config and credentials files nowhere, so a developer's `~/.aws` cannot leak in.
//!
//! What they show: events are handed on exactly once across a restart from the collected
//! checkpoints, including an event arriving late (older than the checkpoint, inside the lookback)
//! and with pagination; the tunnel comes from the log stream name; `stream_prefix` and the
//! `start`..`end` range select events and the finite form returns on its own (and a rerun of the
//! same range adds nothing); a long-running source and finite pulls over overlapping, nested and
//! prefixed ranges share the log group's coverage, so each event is handed on once; a missing log group is an error naming it in the finite form and a
//! counted, retried failure in the long-running form; an unreachable endpoint is retried with
//! backoff until shutdown.
mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tunnelwatch_ingest::pipeline::{Delivery, ShutdownTrigger, SourceContext, Stream, now_ms};
use tunnelwatch_ingest::sources::{BuildSource, SourceError, cloudwatch_logs};
use tunnelwatch_parsers::DecoderOptions;

const WAIT: Duration = Duration::from_secs(30);
const REGION: &str = "us-east-1";
const TUNNEL_A: &str = "vpn-0a1b2c3d-203.0.113.10";
const TUNNEL_B: &str = "vpn-0a1b2c3d-203.0.113.11";
const OTHER_VPN: &str = "vpn-99ff00ee-198.51.100.7";

/// A moto server on a free loopback port; killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|dir| dir.join(program).is_file()))
}

/// Starts moto_server, or returns `None` (printing why) when it is not installed outside CI.
async fn moto() -> Option<Moto> {
    dummy_credentials();
    if !on_path("moto_server") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "moto_server is not installed (pip install 'moto[server]') and CI=true"
        );
        eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
        return None;
    }
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let client = admin(&moto.endpoint);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let probe =
            tokio::time::timeout(Duration::from_secs(2), client.describe_log_groups().send()).await;
        if matches!(probe, Ok(Ok(_))) {
            return Some(moto);
        }
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto_server exited with {status}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "moto_server did not answer on {} within {WAIT:?}",
            moto.endpoint
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Dummy credentials for the source's standard chain, set once before any client reads them.
fn dummy_credentials() {
    static SET: Once = Once::new();
    SET.call_once(|| {
        // SAFETY: every test calls this first, before it starts any client or thread of its own;
        // `Once` makes the other tests wait until the variables are set.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::remove_var("AWS_SESSION_TOKEN");
            std::env::remove_var("AWS_PROFILE");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/tunnelwatch-test/config");
            std::env::set_var(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/tunnelwatch-test/credentials",
            );
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
}

/// The test's own client (sets up groups and streams, puts events).
fn admin(endpoint: &str) -> Client {
    let config = aws_sdk_cloudwatchlogs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    Client::from_conf(config)
}

async fn create(client: &Client, group: &str, streams: &[&str]) {
    client
        .create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    for s in streams {
        client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(*s)
            .send()
            .await
            .unwrap();
    }
}

/// Tunnel activity records of the sample data, one per timestamp, `event_timestamp` = `ts`.
fn activity_records(times: &[i64]) -> Vec<(i64, String)> {
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/vpn-1234abcd-1.2.3.4.ndjson"
    ))
    .unwrap();
    let lines: Vec<serde_json::Value> = sample
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    times
        .iter()
        .enumerate()
        .map(|(i, &ts)| {
            let mut record = lines[i % lines.len()].clone();
            let object = record.as_object_mut().unwrap();
            object.remove("timestamp");
            object.insert("event_timestamp".into(), ts.into());
            (ts, record.to_string())
        })
        .collect()
}

/// Puts `records` into one stream (sorted, as PutLogEvents requires); none may be rejected.
async fn put(client: &Client, group: &str, stream: &str, records: &[(i64, String)]) {
    let mut records = records.to_vec();
    records.sort();
    let out = client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(
            records
                .iter()
                .map(|(ts, m)| {
                    InputLogEvent::builder()
                        .timestamp(*ts)
                        .message(m)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    assert!(
        out.rejected_log_events_info().is_none(),
        "{:?}",
        out.rejected_log_events_info()
    );
}

fn source_config(json: serde_json::Value) -> cloudwatch_logs::Config {
    serde_json::from_value(json).unwrap()
}

type RunHandle = tokio::task::JoinHandle<Result<(), SourceError>>;

fn spawn(config: &cloudwatch_logs::Config, cx: SourceContext) -> RunHandle {
    let source = config.build(&cx.name).unwrap();
    tokio::spawn(source.run(cx))
}

async fn stop(trigger: ShutdownTrigger, run: RunHandle) -> Result<(), SourceError> {
    trigger.trigger();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("the source stops on shutdown")
        .unwrap()
}

/// Waits until the collector has processed everything sent before this call (the channel is
/// FIFO: an end-of-stream marker sent now is processed after them).
async fn drain(c: &common::Collector) {
    let ended = c.state.lock().unwrap().ended_streams;
    let marker = Arc::new(Stream {
        id: "test-marker".into(),
        source: "test-marker".into(),
        options: DecoderOptions::default(),
    });
    c.out
        .send(Delivery::new(marker, Vec::new()).end())
        .await
        .unwrap();
    assert!(c.wait_for(WAIT, |s| s.ended_streams > ended).await);
}

/// (source column, event time ms) → how many times it was collected.
fn collected(c: &common::Collector) -> BTreeMap<(String, i64), usize> {
    let mut seen = BTreeMap::new();
    for e in c.events() {
        let ts = chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        *seen
            .entry((e["source"].as_str().unwrap().to_owned(), ts))
            .or_insert(0) += 1;
    }
    seen
}

fn expected(group: &str, put: &[(&str, &[(i64, String)])]) -> BTreeMap<(String, i64), usize> {
    put.iter()
        .flat_map(|(stream, records)| {
            records
                .iter()
                .map(move |(ts, _)| ((format!("cloudwatch://{group}/{stream}"), *ts), 1))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_hands_on_every_event_exactly_once_including_late_ones() {
    let Some(moto) = moto().await else { return };
    let admin = admin(&moto.endpoint);
    let group = "/aws/vpn/restart";
    create(&admin, group, &[TUNNEL_A, TUNNEL_B, OTHER_VPN]).await;
    let t0 = now_ms() - 30 * 60_000;
    let at =
        |offsets: &[i64]| activity_records(&offsets.iter().map(|o| t0 + o).collect::<Vec<_>>());
    // 12 events over three streams, interleaved in time.
    let a1 = at(&[0, 30_000, 60_000, 90_000]);
    let b1 = at(&[10_000, 40_000, 70_000, 100_000]);
    let o1 = at(&[20_000, 50_000, 80_000, 110_000]);
    put(&admin, group, TUNNEL_A, &a1).await;
    put(&admin, group, TUNNEL_B, &b1).await;
    put(&admin, group, OTHER_VPN, &o1).await;

    let config = source_config(serde_json::json!({
        "log_group": group,
        "endpoint_url": moto.endpoint,
        "region": REGION,
        "start": t0 - 60_000,
        "poll_interval": "100ms",
        "lookback": "5m",
        "page_size": 5,
    }));
    let c = common::Collector::start(1 << 20);
    let (cx, trigger) = c.context("cw", "cloudwatch_logs");
    let stats = cx.stats.clone();
    let run = spawn(&config, cx);
    assert!(
        c.wait_for(WAIT, |s| s.events.len() >= 12).await,
        "first run: {}",
        c.events().len()
    );
    stop(trigger, run).await.unwrap();
    drain(&c).await;
    assert_eq!(stats.errors.load(Ordering::Relaxed), 0);
    let checkpoints = c.checkpoints();
    let key = format!("cloudwatch:{}:{REGION}:{group}", moto.endpoint);
    let cp = checkpoints
        .get(&key)
        .unwrap_or_else(|| panic!("{checkpoints:?}"));
    assert_eq!(cp.offset, (t0 + 110_000) as u64);
    assert_eq!(cp.state["newest_ms"], t0 + 110_000);
    assert_eq!(cp.state["seen"].as_object().unwrap().len(), 12);
    // The tunnel comes from the log stream name (tunnel activity records carry none).
    for e in c.events() {
        let source = e["source"].as_str().unwrap();
        let stream = source.rsplit('/').next().unwrap();
        let (vpn, ip) = stream.rsplit_once('-').unwrap();
        assert_eq!(
            (e["vpn_id"].as_str(), e["tunnel_ip"].as_str()),
            (Some(vpn), Some(ip)),
            "{e}"
        );
    }
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());

    // While the source is down: new events, and late ones older than the checkpoint but inside
    // the lookback.
    let a2 = at(&[120_000, 65_000]);
    let b2 = at(&[130_000, 95_000]);
    let o2 = at(&[140_000]);
    put(&admin, group, TUNNEL_A, &a2).await;
    put(&admin, group, TUNNEL_B, &b2).await;
    put(&admin, group, OTHER_VPN, &o2).await;
    let (cx, trigger) = c.context("cw", "cloudwatch_logs");
    let run = spawn(&config, cx);
    assert!(
        c.wait_for(WAIT, |s| s.events.len() >= 17).await,
        "second run: {}",
        c.events().len()
    );
    // A last event: the poll that hands it on re-read everything above, so a repeat would
    // show up no later than this one.
    let sentinel = at(&[150_000]);
    put(&admin, group, TUNNEL_A, &sentinel).await;
    assert!(c.wait_for(WAIT, |s| s.events.len() >= 18).await);
    stop(trigger, run).await.unwrap();
    drain(&c).await;

    let want = expected(
        group,
        &[
            (TUNNEL_A, &a1),
            (TUNNEL_B, &b1),
            (OTHER_VPN, &o1),
            (TUNNEL_A, &a2),
            (TUNNEL_B, &b2),
            (OTHER_VPN, &o2),
            (TUNNEL_A, &sentinel),
        ],
    );
    assert_eq!(want.len(), 18);
    assert_eq!(collected(&c), want);
    assert_eq!(c.checkpoints()[&key].offset, (t0 + 150_000) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finite_range_with_stream_prefix_returns_on_its_own() {
    let Some(moto) = moto().await else { return };
    let admin = admin(&moto.endpoint);
    let group = "/aws/vpn/range";
    create(&admin, group, &[TUNNEL_A, TUNNEL_B, OTHER_VPN]).await;
    let t0 = now_ms() - 20 * 60_000;
    let at =
        |offsets: &[i64]| activity_records(&offsets.iter().map(|o| t0 + o).collect::<Vec<_>>());
    // Range: [t0, t0 + 60 s]; one event before it, one after it, one on its end (inclusive).
    let a = at(&[-1_000, 0, 20_000, 60_000]);
    let b = at(&[10_000, 30_000, 61_000]);
    let o = at(&[5_000, 15_000]);
    put(&admin, group, TUNNEL_A, &a).await;
    put(&admin, group, TUNNEL_B, &b).await;
    put(&admin, group, OTHER_VPN, &o).await;
    let config = source_config(serde_json::json!({
        "log_group": group,
        "stream_prefix": "vpn-0a1b2c3d-",
        "endpoint_url": moto.endpoint,
        "region": REGION,
        "start": t0,
        "end": chrono::DateTime::from_timestamp_millis(t0 + 60_000).unwrap().to_rfc3339(),
        "poll_interval": "100ms",
    }));
    let c = common::Collector::start(1 << 20);
    let (cx, _trigger) = c.context("cw", "cloudwatch_logs");
    let run = spawn(&config, cx);
    tokio::time::timeout(WAIT, run)
        .await
        .expect("the finite form returns on its own")
        .unwrap()
        .unwrap();
    drain(&c).await;
    let want = expected(group, &[(TUNNEL_A, &a[1..]), (TUNNEL_B, &b[..2])]);
    assert_eq!(collected(&c), want);
    let key = format!(
        "cloudwatch:{}:{REGION}:{group}:vpn-0a1b2c3d-@{}..{}",
        moto.endpoint,
        t0,
        t0 + 60_000
    );
    assert_eq!(c.checkpoints()[&key].offset, (t0 + 60_000) as u64);
    // Running the same range again resumes from its checkpoint: nothing new.
    let deliveries = c.state.lock().unwrap().deliveries;
    let (cx, _trigger) = c.context("cw", "cloudwatch_logs");
    tokio::time::timeout(WAIT, spawn(&config, cx))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drain(&c).await;
    // Only the marker came through.
    assert_eq!(c.state.lock().unwrap().deliveries, deliveries + 1);
    assert_eq!(collected(&c), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_log_group_fails_the_finite_form_and_is_retried_by_the_long_running_one() {
    let Some(moto) = moto().await else { return };
    let group = "/aws/vpn/does-not-exist";
    let c = common::Collector::start(1 << 20);
    let finite = source_config(serde_json::json!({
        "log_group": group,
        "endpoint_url": moto.endpoint,
        "region": REGION,
        "start": now_ms() - 60_000,
        "end": now_ms(),
    }));
    let (cx, _trigger) = c.context("cw", "cloudwatch_logs");
    let err = tokio::time::timeout(WAIT, spawn(&finite, cx))
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(group) && message.contains("does not exist"),
        "{message}"
    );

    let running = source_config(serde_json::json!({
        "log_group": group,
        "endpoint_url": moto.endpoint,
        "region": REGION,
        "poll_interval": "50ms",
    }));
    let (cx, trigger) = c.context("cw", "cloudwatch_logs");
    let stats = cx.stats.clone();
    let run = spawn(&running, cx);
    let counted = tokio::time::timeout(WAIT, async {
        while stats.errors.load(Ordering::Relaxed) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        counted.is_ok(),
        "errors: {}",
        stats.errors.load(Ordering::Relaxed)
    );
    assert!(!run.is_finished());
    stop(trigger, run).await.unwrap();
    assert!(c.events().is_empty());
}

#[tokio::test]
async fn unreachable_endpoint_is_retried_until_shutdown() {
    dummy_credentials();
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = source_config(serde_json::json!({
        "log_group": "/aws/vpn/nowhere",
        "endpoint_url": format!("http://127.0.0.1:{port}"),
        "region": REGION,
        "poll_interval": "50ms",
    }));
    let c = common::Collector::start(1 << 20);
    let (cx, trigger) = c.context("cw", "cloudwatch_logs");
    let stats = cx.stats.clone();
    let run = spawn(&config, cx);
    let counted = tokio::time::timeout(WAIT, async {
        while stats.errors.load(Ordering::Relaxed) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(counted.is_ok());
    assert!(!run.is_finished());
    stop(trigger, run).await.unwrap();
    assert!(c.events().is_empty());
}

/// The log group's coverage checkpoint of the collector.
fn coverage(c: &common::Collector, endpoint: &str, group: &str) -> serde_json::Value {
    let key = format!("cloudwatch-coverage:{endpoint}:{REGION}:{group}");
    c.checkpoints()
        .get(&key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", c.checkpoints().keys()))
        .state
        .clone()
}

/// A long-running source, then finite pulls over overlapping, nested and prefixed ranges, then
/// the long-running source again: each event is handed on exactly once, late ones included, and
/// the group's coverage stays a few claims (events older than the visibility margin are claimed,
/// not listed by id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_over_overlapping_ranges_share_the_log_groups_coverage() {
    let Some(moto) = moto().await else { return };
    let admin = admin(&moto.endpoint);
    let group = "/aws/vpn/coverage";
    create(&admin, group, &[TUNNEL_A, TUNNEL_B]).await;
    let t0 = now_ms() - 20 * 60_000;
    let at =
        |offsets: &[i64]| activity_records(&offsets.iter().map(|o| t0 + o).collect::<Vec<_>>());
    let a1 = at(&[0, 60_000, 120_000]);
    let b1 = at(&[30_000, 90_000]);
    put(&admin, group, TUNNEL_A, &a1).await;
    put(&admin, group, TUNNEL_B, &b1).await;
    // Past the visibility margin, so that reads claim these events rather than list them.
    let settle = Duration::from_millis(2_500);
    tokio::time::sleep(settle).await;
    let base = serde_json::json!({
        "log_group": group,
        "endpoint_url": moto.endpoint,
        "region": REGION,
        "poll_interval": "100ms",
        "visibility_margin": "1s",
    });
    let with = |extra: serde_json::Value| {
        let mut j = base.clone();
        j.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        source_config(j)
    };
    let c = common::Collector::start(1 << 20);
    let finite = |config: cloudwatch_logs::Config| {
        let c = c.clone();
        async move {
            let (cx, _trigger) = c.context("once", "cloudwatch_logs");
            tokio::time::timeout(WAIT, spawn(&config, cx))
                .await
                .expect("the finite form returns")
                .unwrap()
                .unwrap();
            drain(&c).await;
        }
    };

    // The long-running source reads the first five, then stops.
    let live = with(serde_json::json!({ "start": t0 - 60_000 }));
    let (cx, trigger) = c.context("cw", "cloudwatch_logs");
    let run = spawn(&live, cx);
    assert!(c.wait_for(WAIT, |s| s.events.len() >= 5).await);
    stop(trigger, run).await.unwrap();
    drain(&c).await;

    // While it is stopped: a late event inside the range read and a new one.
    let a2 = at(&[45_000]);
    let b2 = at(&[150_000]);
    put(&admin, group, TUNNEL_A, &a2).await;
    put(&admin, group, TUNNEL_B, &b2).await;
    tokio::time::sleep(settle).await;
    // A one-shot over everything takes just those two.
    finite(with(
        serde_json::json!({ "start": t0 - 60_000, "end": t0 + 200_000 }),
    ))
    .await;
    assert_eq!(c.events().len(), 7);
    // Nested and prefixed ranges: nothing.
    finite(with(
        serde_json::json!({ "start": t0 + 10_000, "end": t0 + 100_000 }),
    ))
    .await;
    finite(with(serde_json::json!({
        "start": t0 - 60_000, "end": t0 + 300_000, "stream_prefix": TUNNEL_A
    })))
    .await;
    assert_eq!(c.events().len(), 7);

    // The long-running source again: nothing old twice, a new event once.
    let (cx, trigger) = c.context("cw", "cloudwatch_logs");
    let run = spawn(&live, cx);
    let sentinel = at(&[180_000]);
    put(&admin, group, TUNNEL_A, &sentinel).await;
    assert!(c.wait_for(WAIT, |s| s.events.len() >= 8).await);
    // A few more polls.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(trigger, run).await.unwrap();
    drain(&c).await;

    let want = expected(
        group,
        &[
            (TUNNEL_A, &a1),
            (TUNNEL_B, &b1),
            (TUNNEL_A, &a2),
            (TUNNEL_B, &b2),
            (TUNNEL_A, &sentinel),
        ],
    );
    assert_eq!(collected(&c), want);
    let cov = coverage(&c, &moto.endpoint, group);
    let claims = cov["claims"].as_array().unwrap();
    let ids = cov["ids"].as_object().unwrap();
    assert!(claims.len() <= 4, "{cov:#}");
    // Only the sentinel may still be listed (it reached CloudWatch just before a read).
    assert!(ids.len() <= 1, "{cov:#}");
}

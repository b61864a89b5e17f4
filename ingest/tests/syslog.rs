//! The syslog source over real loopback sockets, decoded by the collector harness: TCP newline
//! and octet-counting framing, records split across writes, concurrent connections, the
//! connection limit, idle timeout, UDP datagrams (newlines inside one stay one record), TLS and
//! mutual TLS (plain-text and certificate-less clients refused and counted), backpressure on a
//! flooding TCP sender, UDP drops when the budget is full, shutdown, and the util-linux `logger`
//! as a real sender.
mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::Collector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tunnelwatch_ingest::pipeline::{ShutdownTrigger, SourceStats};
use tunnelwatch_ingest::sources::{Source, SourceConfig, SourceError};

const WAIT: Duration = Duration::from_secs(20);
const TUNNEL: &str = "vpn-1234abcd-1.2.3.4";

/// An RFC 5424 line carrying a tunnel activity record whose `request_id` is `id`.
fn rfc5424(id: u64) -> String {
    format!(
        "<134>1 2025-11-08T05:40:29.000Z gw01 {TUNNEL} - - - {{\"event_timestamp\": 1762580429, \
         \"dpd_enabled\": true, \"nat_t_detected\": false, \"ike_phase1_state\": \"established\", \
         \"ike_phase2_state\": \"established\", \"details\": \"AWS tunnel processed request \
         (id={id}) for CREATE_CHILD_SA\"}}"
    )
}

/// An RFC 3164 line carrying a BGP record.
fn rfc3164() -> String {
    "<134>Nov  8 05:40:29 gw01 vpnlog: {\"resource_id\": \"vpn-1234abcd_1.2.3.4\", \
     \"event_timestamp\": 1762580429641, \"type\": \"BGPStatus\", \"status\": \"UP\", \
     \"message\": {\"details\": \"AWS-side peer BGP session state has changed from OpenConfirm \
     to Established with neighbor 169.254.50.85\"}}"
        .to_owned()
}

fn octet_counted(msg: &str) -> String {
    format!("{} {msg}", msg.len())
}

struct Running {
    addr: SocketAddr,
    stats: Arc<SourceStats>,
    trigger: ShutdownTrigger,
    task: JoinHandle<Result<(), SourceError>>,
}

impl Running {
    /// Triggers shutdown and waits (bounded) for the source to return.
    async fn stop(self) -> Result<(), SourceError> {
        self.trigger.trigger();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the source returns after shutdown")
            .expect("the source task does not panic")
    }
}

/// Builds a syslog source from a `[sources.NAME]` table (as JSON) on a free loopback port and
/// runs it.
async fn start(c: &Collector, table: serde_json::Value) -> Running {
    let mut table = table;
    table["type"] = "syslog".into();
    if table.get("address").is_none() {
        table["address"] = "127.0.0.1:0".into();
    }
    let SourceConfig::Syslog(config) = serde_json::from_value(table).unwrap() else {
        panic!("type = syslog is not the syslog source");
    };
    let listener = config.build_syslog("gw").unwrap().bind().await.unwrap();
    let addr = listener.local_addr();
    assert_ne!(addr.port(), 0);
    let (cx, trigger) = c.context("gw", "syslog");
    let stats = cx.stats.clone();
    let task = tokio::spawn(Box::new(listener).run(cx));
    Running {
        addr,
        stats,
        trigger,
        task,
    }
}

fn request_ids(events: &[serde_json::Value]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| e["request_id"].as_u64())
        .collect()
}

async fn wait_events(c: &Collector, n: usize) {
    assert!(
        c.wait_for(WAIT, |s| s.events.len() + s.rejects.len() >= n)
            .await,
        "expected {n} records, got {} events and rejects {:?}",
        c.events().len(),
        c.rejects()
    );
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads until the server closes the connection (EOF or reset), bounded in time.
async fn closed_by_server(mut s: impl tokio::io::AsyncRead + Unpin) {
    let mut buf = [0u8; 256];
    let r = tokio::time::timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "the server did not close the connection");
}

#[tokio::test]
async fn tcp_newline_framing_rfc5424_and_rfc3164() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({})).await;
    let mut s = TcpStream::connect(src.addr).await.unwrap();
    // The project's syslog sample (RFC 5424 tunnel activity, RFC 3164 BGP) plus two more.
    let sample = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/syslog-newline.log"),
    )
    .unwrap();
    s.write_all(&sample).await.unwrap();
    s.write_all(format!("{}\r\n{}\n", rfc5424(77), rfc3164()).as_bytes())
        .await
        .unwrap();
    wait_events(&c, 6).await;
    // Received while the connection is still open.
    assert_eq!(src.stats.open.load(Ordering::Relaxed), 1);
    drop(s);
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    let events = c.events();
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());
    assert_eq!(events.len(), 6);
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e["message_kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "create_child_sa_request_received",
            "dpd_timeout",
            "ike_sa_deleted",
            "bgp_state_change",
            "create_child_sa_request_received",
            "bgp_state_change"
        ]
    );
    for e in &events {
        assert_eq!(e["envelope"], "syslog");
        assert_eq!(e["vpn_id"], "vpn-1234abcd");
        assert_eq!(e["tunnel_ip"], "1.2.3.4");
        assert_eq!(e["source"], format!("syslog+tcp://{}", src.addr));
    }
    assert_eq!(request_ids(&events), [12, 77]);
    assert_eq!(
        src.stats.bytes.load(Ordering::Relaxed),
        sample.len() as u64 + rfc5424(77).len() as u64 + rfc3164().len() as u64 + 3
    );
    wait_until("the connection is closed", || {
        src.stats.open.load(Ordering::Relaxed) == 0
    })
    .await;
    src.stop().await.unwrap();
}

#[tokio::test]
async fn tcp_octet_counting_when_the_sender_closes() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({})).await;
    let mut s = TcpStream::connect(src.addr).await.unwrap();
    let sample =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/syslog-octet.log"))
            .unwrap();
    s.write_all(&sample).await.unwrap();
    // A message with a newline inside its octet-counted frame stays one message.
    let multi_line = rfc5424(5).replace("\"details\"", "\n  \"details\"");
    s.write_all(octet_counted(&multi_line).as_bytes())
        .await
        .unwrap();
    drop(s);
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());
    let events = c.events();
    assert_eq!(events.len(), 5);
    assert_eq!(request_ids(&events), [12, 5]);
    src.stop().await.unwrap();
}

/// rsyslog and syslog-ng keep octet-counted connections open for hours: messages must arrive
/// while the connection is open. Octet-counted senders (`logger --octet-count`, rsyslog
/// `TCP_Framing="octet-counted"`) send no newlines; the decoder once waited for one, so messages
/// sat until the connection closed, or until `max_frame_bytes` of them piled up and were
/// rejected together as one oversized record.
#[tokio::test]
async fn tcp_octet_counting_on_an_open_connection() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({})).await;
    let mut s = TcpStream::connect(src.addr).await.unwrap();
    for id in 0..3 {
        s.write_all(octet_counted(&rfc5424(id)).as_bytes())
            .await
            .unwrap();
    }
    wait_events(&c, 3).await;
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());
    assert_eq!(request_ids(&c.events()), [0, 1, 2]);
    drop(s);
    src.stop().await.unwrap();
}

#[tokio::test]
async fn a_record_split_across_writes_is_joined() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({})).await;
    let mut s = TcpStream::connect(src.addr).await.unwrap();
    let line = format!("{}\n{}\n", rfc5424(1), octet_counted(&rfc5424(2)));
    // Cut inside the first record, then inside the octet-count header of the second.
    let cuts = [40, rfc5424(1).len() + 2, line.len()];
    let mut from = 0;
    for to in cuts {
        s.write_all(&line.as_bytes()[from..to]).await.unwrap();
        // Each piece is read and handed on on its own before the next is written.
        wait_until("the piece is handed on", || {
            src.stats.bytes.load(Ordering::Relaxed) == to as u64
        })
        .await;
        from = to;
    }
    wait_events(&c, 2).await;
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());
    assert_eq!(request_ids(&c.events()), [1, 2]);
    assert!(c.state.lock().unwrap().deliveries >= 3);
    drop(s);
    src.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_connections_keep_their_streams_apart() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({})).await;
    let mut clients = Vec::new();
    for conn in 0..8u64 {
        let addr = src.addr;
        clients.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            for i in 0..50u64 {
                let line = format!("{}\n", rfc5424(conn * 1000 + i));
                // Small writes, so records of different connections interleave.
                let (a, b) = line.as_bytes().split_at(line.len() / 2);
                s.write_all(a).await.unwrap();
                tokio::task::yield_now().await;
                s.write_all(b).await.unwrap();
            }
        }));
    }
    for client in clients {
        tokio::time::timeout(WAIT, client).await.unwrap().unwrap();
    }
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 8).await);
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());
    let ids: BTreeSet<u64> = request_ids(&c.events()).into_iter().collect();
    let expected: BTreeSet<u64> = (0..8u64)
        .flat_map(|c| (0..50).map(move |i| c * 1000 + i))
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(c.events().len(), 400);
    wait_until("all connections closed", || {
        src.stats.open.load(Ordering::Relaxed) == 0
    })
    .await;
    src.stop().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_and_counted() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({ "max_connections": 2 })).await;
    let mut first = TcpStream::connect(src.addr).await.unwrap();
    let mut second = TcpStream::connect(src.addr).await.unwrap();
    first
        .write_all(format!("{}\n", rfc5424(1)).as_bytes())
        .await
        .unwrap();
    second
        .write_all(format!("{}\n", rfc5424(2)).as_bytes())
        .await
        .unwrap();
    wait_events(&c, 2).await;
    assert_eq!(src.stats.open.load(Ordering::Relaxed), 2);
    let third = TcpStream::connect(src.addr).await.unwrap();
    closed_by_server(third).await;
    assert_eq!(src.stats.refused.load(Ordering::Relaxed), 1);
    // A slot frees when a connection closes.
    drop(first);
    wait_until("the first connection is closed", || {
        src.stats.open.load(Ordering::Relaxed) == 1
    })
    .await;
    let mut fourth = TcpStream::connect(src.addr).await.unwrap();
    fourth
        .write_all(format!("{}\n", rfc5424(4)).as_bytes())
        .await
        .unwrap();
    wait_events(&c, 3).await;
    assert_eq!(request_ids(&c.events()), [1, 2, 4]);
    assert_eq!(src.stats.refused.load(Ordering::Relaxed), 1);
    src.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_its_stream_ended() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({ "idle_timeout": "300ms" })).await;
    let mut s = TcpStream::connect(src.addr).await.unwrap();
    // The last message has no newline: it is decoded when the stream ends.
    s.write_all(rfc5424(9).as_bytes()).await.unwrap();
    closed_by_server(&mut s).await;
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    assert_eq!(request_ids(&c.events()), [9]);
    assert_eq!(src.stats.errors.load(Ordering::Relaxed), 0);
    src.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_frame_without_newline_is_rejected_not_buffered() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({ "max_frame_bytes": 1024 })).await;
    let mut s = TcpStream::connect(src.addr).await.unwrap();
    s.write_all(format!("<134>1 - - {TUNNEL} - - - ").as_bytes())
        .await
        .unwrap();
    s.write_all(&[b'x'; 4000]).await.unwrap();
    assert!(
        c.wait_for(WAIT, |s| !s.rejects.is_empty()).await,
        "the oversized message is rejected while the connection is open"
    );
    let reject = &c.rejects()[0];
    let error = reject["error"].as_str().unwrap();
    assert!(error.contains("exceeds the limit of 1024 bytes"), "{error}");
    // What was refused is kept, and no more than the limit plus one read.
    let raw = reject["raw"].as_str().unwrap();
    assert!(raw.starts_with("<134>1 - - vpn-1234abcd") && raw.len() <= 1024 + 65536);
    // The connection stays usable.
    s.write_all(format!("\n{}\n", rfc5424(3)).as_bytes())
        .await
        .unwrap();
    assert!(c.wait_for(WAIT, |s| !s.events.is_empty()).await);
    assert_eq!(request_ids(&c.events()), [3]);
    drop(s);
    src.stop().await.unwrap();
}

#[tokio::test]
async fn udp_datagrams_are_one_record_each() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({ "mode": "udp" })).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .send_to(rfc5424(1).as_bytes(), src.addr)
        .await
        .unwrap();
    // A pretty-printed record: newlines inside one datagram do not split it.
    let pretty = rfc5424(2)
        .replace("{\"", "{\n  \"")
        .replace(", \"", ",\n  \"")
        .replace("\"}", "\"\n}");
    assert!(pretty.matches('\n').count() >= 5);
    client.send_to(pretty.as_bytes(), src.addr).await.unwrap();
    client
        .send_to(format!("{}\n", rfc3164()).as_bytes(), src.addr)
        .await
        .unwrap();
    // Bare JSON, no syslog header: handed on as a line.
    let bare = r#"{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580429641,"type":"BGPStatus","status":"DOWN","message":{"details":"AWS-side peer BGP session state has changed from Established to Idle with neighbor 169.254.50.85"}}"#;
    client.send_to(bare.as_bytes(), src.addr).await.unwrap();
    wait_events(&c, 4).await;
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());
    let events = c.events();
    assert_eq!(events.len(), 4);
    assert_eq!(request_ids(&events), [1, 2]);
    assert_eq!(events[1]["parse_quality"], "exact");
    assert_eq!(events[2]["status"], "UP");
    assert_eq!(events[3]["status"], "DOWN");
    for e in &events {
        assert_eq!(e["source"], format!("syslog+udp://{}", src.addr));
    }
    // Oversized datagrams are refused and counted.
    drop(src.stop().await);
    let c = Collector::start(1 << 20);
    let src = start(
        &c,
        serde_json::json!({ "mode": "udp", "max_frame_bytes": 200 }),
    )
    .await;
    client
        .send_to(rfc5424(3).as_bytes(), src.addr)
        .await
        .unwrap();
    client
        .send_to(b"<134>short message", src.addr)
        .await
        .unwrap();
    wait_events(&c, 1).await;
    wait_until("the long datagram is refused", || {
        src.stats.refused.load(Ordering::Relaxed) == 1
    })
    .await;
    assert!(request_ids(&c.events()).is_empty());
    src.stop().await.unwrap();
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
}

/// The budget held (the store stalled): a TCP sender writing as fast as it can is stopped by
/// the kernel once the source stops reading; nothing is lost once the store catches up.
#[tokio::test]
async fn tcp_backpressure_stalls_the_sender_and_loses_nothing() {
    const BUDGET: usize = 256 << 10;
    const LIMIT: u64 = 64 << 20;
    let c = Collector::start(BUDGET);
    let src = start(&c, serde_json::json!({})).await;
    c.hold();
    let written = Arc::new(AtomicU64::new(0));
    let records = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (written, records, stop) = (written.clone(), records.clone(), stop.clone());
        let addr = src.addr;
        tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) && written.load(Ordering::Relaxed) < LIMIT {
                let mut batch = String::new();
                for _ in 0..100 {
                    batch.push_str(&rfc5424(id));
                    batch.push('\n');
                    id += 1;
                }
                s.write_all(batch.as_bytes()).await.unwrap();
                written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                records.store(id, Ordering::Relaxed);
            }
        })
    };
    // Wait until the sender makes no progress for 20 polls in a row.
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut last, mut still) = (0, 0);
    while still < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sender never stalled"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = written.load(Ordering::Relaxed);
        assert!(
            now < LIMIT,
            "the sender wrote {now} bytes without being stopped"
        );
        if now == last && now > 0 {
            still += 1;
        } else {
            (last, still) = (now, 0);
        }
    }
    let handed_on = src.stats.bytes.load(Ordering::Relaxed);
    let stalled_at = written.load(Ordering::Relaxed);
    eprintln!(
        "backpressure: sender stalled after {stalled_at} bytes; {handed_on} bytes handed on \
         (budget {BUDGET}); the rest sits in kernel buffers"
    );
    assert!(
        handed_on <= BUDGET as u64,
        "{handed_on} bytes in flight exceed the budget"
    );
    assert!(handed_on > 0);
    // The reader waits for room for its next chunk (at most 64 KiB): the budget is used up.
    assert!(c.out.budget_free_bytes() < 64 << 10);
    // The source does not read on while held.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(src.stats.bytes.load(Ordering::Relaxed), handed_on);
    stop.store(true, Ordering::Relaxed);
    c.release();
    tokio::time::timeout(WAIT, client).await.unwrap().unwrap();
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    let sent = records.load(Ordering::Relaxed);
    assert_eq!(
        src.stats.bytes.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed)
    );
    assert!(c.rejects().is_empty(), "{} rejects", c.rejects().len());
    let ids = request_ids(&c.events());
    assert_eq!(ids.len() as u64, sent);
    assert_eq!(
        ids,
        (0..sent).collect::<Vec<_>>(),
        "every record once, in order"
    );
    src.stop().await.unwrap();
}

/// UDP with the budget held: datagrams are dropped and counted, none is stored twice, and
/// datagrams are taken again once the budget frees.
#[tokio::test]
async fn udp_flood_with_the_budget_full_drops_and_counts() {
    const BUDGET: usize = 16 << 10;
    const SENT: u64 = 2000;
    let c = Collector::start(BUDGET);
    let src = start(&c, serde_json::json!({ "mode": "udp" })).await;
    c.hold();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for id in 0..SENT {
        client
            .send_to(rfc5424(id).as_bytes(), src.addr)
            .await
            .unwrap();
        if id % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Wait until the source has taken every datagram the kernel kept.
    let seen = || c.events().len() as u64 + src.stats.dropped.load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut last, mut still) = (u64::MAX, 0);
    while still < 20 && seen() < SENT {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = seen();
        if now == last {
            still += 1
        } else {
            (last, still) = (now, 0)
        }
    }
    let dropped = src.stats.dropped.load(Ordering::Relaxed);
    let ids = request_ids(&c.events());
    eprintln!(
        "udp flood: {SENT} sent, {} stored, {dropped} dropped (budget {BUDGET})",
        ids.len()
    );
    assert!(dropped > 0, "the full budget drops datagrams");
    assert!(!ids.is_empty());
    assert!(ids.len() as u64 + dropped <= SENT);
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a datagram stored twice");
    assert!(src.stats.bytes.load(Ordering::Relaxed) <= BUDGET as u64);
    c.release();
    let before = ids.len();
    for id in SENT..SENT + 5 {
        client
            .send_to(rfc5424(id).as_bytes(), src.addr)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_events(&c, before + 5).await;
    assert_eq!(
        &request_ids(&c.events())[before..],
        &[2000, 2001, 2002, 2003, 2004]
    );
    src.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_returns() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({})).await;
    let mut s = TcpStream::connect(src.addr).await.unwrap();
    let idle = TcpStream::connect(src.addr).await.unwrap();
    // A complete record and an unterminated one.
    let text = format!("{}\n{}", rfc5424(1), rfc5424(2));
    s.write_all(text.as_bytes()).await.unwrap();
    wait_until("both connections accepted and the bytes read", || {
        src.stats.bytes.load(Ordering::Relaxed) == text.len() as u64
            && src.stats.open.load(Ordering::Relaxed) == 2
    })
    .await;
    assert_eq!(c.state.lock().unwrap().ended_streams, 0);
    let stats = src.stats.clone();
    let addr = src.addr;
    src.stop().await.unwrap();
    // The stream with data is ended (its last record flushed); the idle one had none.
    assert!(
        c.wait_for(WAIT, |s| s.ended_streams == 1 && s.events.len() == 2)
            .await
    );
    assert_eq!(c.state.lock().unwrap().ended_streams, 1);
    assert_eq!(request_ids(&c.events()), [1, 2]);
    assert_eq!(stats.open.load(Ordering::Relaxed), 0);
    closed_by_server(&mut s).await;
    closed_by_server(idle).await;
    // The listener is closed.
    assert!(TcpStream::connect(addr).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// TLS

struct Pki {
    dir: tempfile::TempDir,
    ca: rustls::pki_types::CertificateDer<'static>,
    client_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    client_key: rustls::pki_types::PrivateKeyDer<'static>,
}

/// A CA, a server certificate for `localhost`/127.0.0.1 and a client certificate, all signed by
/// the CA, written as PEM files.
fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();

    let mut client = CertificateParams::new(vec!["gw01".into()]).unwrap();
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &issuer).unwrap();

    std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("server.pem"),
        server_cert.pem() + &ca_cert.pem(),
    )
    .unwrap();
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
    Pki {
        ca: ca_cert.der().clone(),
        client_chain: vec![client_cert.der().clone()],
        client_key: rustls::pki_types::PrivateKeyDer::Pkcs8(client_key.serialize_der().into()),
        dir,
    }
}

fn tls_table(pki: &Pki, mutual: bool) -> serde_json::Value {
    let p = |f: &str| pki.dir.path().join(f).display().to_string();
    let mut tls = serde_json::json!({ "cert_file": p("server.pem"), "key_file": p("server.key") });
    if mutual {
        tls["client_ca_file"] = p("ca.pem").into();
    }
    serde_json::json!({ "tls": tls, "idle_timeout": "30s" })
}

async fn tls_connect(
    pki: &Pki,
    addr: SocketAddr,
    with_cert: bool,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        builder
            .with_client_auth_cert(pki.client_chain.clone(), pki.client_key.clone_key())
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

#[tokio::test]
async fn tls_receives_records_and_refuses_plain_text() {
    let pki = pki();
    let c = Collector::start(1 << 20);
    let src = start(&c, tls_table(&pki, false)).await;
    // A plain-text sender on the TLS port: refused, counted, connection closed.
    let mut plain = TcpStream::connect(src.addr).await.unwrap();
    plain
        .write_all(format!("{}\n", rfc5424(0)).as_bytes())
        .await
        .unwrap();
    closed_by_server(&mut plain).await;
    wait_until("the plain-text client is refused", || {
        src.stats.refused.load(Ordering::Relaxed) == 1
    })
    .await;
    // The listener keeps serving TLS clients.
    let mut s = tls_connect(&pki, src.addr, false).await.unwrap();
    s.write_all(format!("{}\n{}", rfc5424(1), octet_counted(&rfc5424(2))).as_bytes())
        .await
        .unwrap();
    s.write_all(format!("\n{}\n", rfc3164()).as_bytes())
        .await
        .unwrap();
    s.flush().await.unwrap();
    wait_events(&c, 3).await;
    s.shutdown().await.unwrap();
    drop(s);
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());
    let events = c.events();
    assert_eq!(events.len(), 3);
    assert_eq!(request_ids(&events), [1, 2]);
    assert_eq!(events[0]["source"], format!("syslog+tls://{}", src.addr));
    assert_eq!(src.stats.refused.load(Ordering::Relaxed), 1);
    src.stop().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate() {
    let pki = pki();
    let c = Collector::start(1 << 20);
    let src = start(&c, tls_table(&pki, true)).await;
    // Without a client certificate: the server ends the handshake (TLS 1.3 clients may only
    // notice at their next read).
    if let Ok(mut s) = tls_connect(&pki, src.addr, false).await {
        let _ = s.write_all(format!("{}\n", rfc5424(0)).as_bytes()).await;
        let _ = s.flush().await;
        closed_by_server(s).await;
    }
    wait_until("the client without a certificate is refused", || {
        src.stats.refused.load(Ordering::Relaxed) == 1
    })
    .await;
    let mut s = tls_connect(&pki, src.addr, true).await.unwrap();
    s.write_all(format!("{}\n", rfc5424(1)).as_bytes())
        .await
        .unwrap();
    s.flush().await.unwrap();
    wait_events(&c, 1).await;
    assert_eq!(request_ids(&c.events()), [1]);
    assert_eq!(src.stats.refused.load(Ordering::Relaxed), 1);
    // Closed without close_notify: a close, not an error.
    drop(s);
    wait_until("the connection is closed", || {
        src.stats.open.load(Ordering::Relaxed) == 0
    })
    .await;
    assert!(c.wait_for(WAIT, |s| s.ended_streams == 1).await);
    assert_eq!(src.stats.errors.load(Ordering::Relaxed), 0);
    src.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Config

fn build_error(table: serde_json::Value) -> String {
    let mut table = table;
    table["type"] = "syslog".into();
    let config: SourceConfig = serde_json::from_value(table).unwrap();
    assert_eq!(config.kind(), "syslog");
    match config.build("gw") {
        Ok(_) => panic!("built"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_defaults_and_errors() {
    let SourceConfig::Syslog(c) =
        serde_json::from_value(serde_json::json!({ "type": "syslog" })).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.address, "127.0.0.1:5514");
    assert_eq!(c.mode, tunnelwatch_ingest::sources::syslog::Mode::Tcp);
    assert_eq!(c.max_connections, 256);
    assert_eq!(c.max_frame_bytes, 65536);
    assert_eq!(c.idle_timeout, Duration::from_secs(300));
    assert!(SourceConfig::Syslog(c).build("gw").is_ok());

    let unknown = serde_json::from_value::<SourceConfig>(
        serde_json::json!({ "type": "syslog", "adress": "127.0.0.1:1" }),
    );
    assert!(unknown.unwrap_err().to_string().contains("adress"));

    let e = build_error(serde_json::json!({ "address": "localhost:5514" }));
    assert!(e.contains("source `gw`") && e.contains("address"), "{e}");
    let e = build_error(serde_json::json!({ "max_connections": 0 }));
    assert!(e.contains("max_connections"), "{e}");
    let e = build_error(serde_json::json!({ "format": "yaml" }));
    assert!(e.contains("format"), "{e}");

    let pki = pki();
    let e = build_error(serde_json::json!({
        "mode": "udp",
        "tls": { "cert_file": "/x", "key_file": "/y" }
    }));
    assert!(e.contains("tls") && e.contains("mode = \"tcp\""), "{e}");
    let missing = pki.dir.path().join("missing.pem");
    let e = build_error(serde_json::json!({
        "tls": { "cert_file": missing, "key_file": pki.dir.path().join("server.key") }
    }));
    assert!(
        e.contains("tls.cert_file") && e.contains("missing.pem"),
        "{e}"
    );
    // A certificate where the key should be.
    let e = build_error(serde_json::json!({
        "tls": { "cert_file": pki.dir.path().join("server.pem"), "key_file": pki.dir.path().join("ca.pem") }
    }));
    assert!(e.contains("tls.key_file") && e.contains("ca.pem"), "{e}");
    // A key that does not belong to the certificate.
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(pki.dir.path().join("other.key"), other.serialize_pem()).unwrap();
    let e = build_error(serde_json::json!({
        "tls": { "cert_file": pki.dir.path().join("server.pem"), "key_file": pki.dir.path().join("other.key") }
    }));
    assert!(e.contains("server.pem") && e.contains("other.key"), "{e}");
}

#[tokio::test]
async fn bind_fails_on_a_taken_port() {
    let c = Collector::start(1 << 20);
    let src = start(&c, serde_json::json!({})).await;
    let SourceConfig::Syslog(config) = serde_json::from_value(
        serde_json::json!({ "type": "syslog", "address": src.addr.to_string() }),
    )
    .unwrap() else {
        panic!()
    };
    let e = config
        .build_syslog("gw2")
        .unwrap()
        .bind()
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&src.addr.to_string()), "{e}");
    src.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// A real sender

/// Runs util-linux `logger` with `args`, the message last.
async fn logger(args: Vec<String>) {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("logger").args(&args).output()
    })
    .await
    .unwrap()
    .expect("logger runs");
    assert!(
        out.status.success(),
        "logger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn logger_present() -> bool {
    let found = std::process::Command::new("logger")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`logger` (util-linux / bsdutils) is missing on CI"
        );
        eprintln!("skipped: `logger` (util-linux) is not installed");
    }
    found
}

#[tokio::test]
async fn util_linux_logger_over_tcp_and_udp() {
    if !logger_present() {
        return;
    }
    let activity = |id: u64| {
        format!(
            "{{\"event_timestamp\": 1762580429, \"dpd_enabled\": true, \"nat_t_detected\": false, \
             \"ike_phase1_state\": \"established\", \"ike_phase2_state\": \"established\", \
             \"details\": \"AWS tunnel processed request (id={id}) for CREATE_CHILD_SA\"}}"
        )
    };
    let c = Collector::start(1 << 20);
    let tcp = start(&c, serde_json::json!({})).await;
    let udp = start(&c, serde_json::json!({ "mode": "udp" })).await;
    let common = |mode: &str, addr: SocketAddr| {
        vec![
            mode.to_owned(),
            "-n".into(),
            addr.ip().to_string(),
            "-P".into(),
            addr.port().to_string(),
            "-t".into(),
            TUNNEL.into(),
        ]
    };
    let mut args = common("--tcp", tcp.addr);
    args.extend(["--rfc5424".into(), activity(1)]);
    logger(args).await;
    let mut args = common("--tcp", tcp.addr);
    args.extend(["--rfc3164".into(), activity(2)]);
    logger(args).await;
    // Octet counting, several messages on one connection (one per line of the file).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{}\n{}\n", activity(3), activity(4))).unwrap();
    let mut args = common("--tcp", tcp.addr);
    args.extend([
        "--octet-count".into(),
        "--rfc5424".into(),
        "-f".into(),
        file.path().display().to_string(),
    ]);
    logger(args).await;
    let mut args = common("--udp", udp.addr);
    args.extend(["--rfc5424".into(), activity(5)]);
    logger(args).await;
    let mut args = common("--udp", udp.addr);
    args.extend(["--rfc3164".into(), activity(6)]);
    logger(args).await;
    wait_events(&c, 6).await;
    assert!(c.rejects().is_empty(), "{:?}", c.rejects());
    let mut ids = request_ids(&c.events());
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    for e in c.events() {
        assert_eq!(e["vpn_id"], "vpn-1234abcd");
        assert_eq!(e["envelope"], "syslog");
    }
    tcp.stop().await.unwrap();
    udp.stop().await.unwrap();
}

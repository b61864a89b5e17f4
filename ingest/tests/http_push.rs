//! The http and firehose sources' backpressure and acknowledgement contract, with the collector
//! standing in for the store: a request is answered 200 only once its records are durable (the
//! collector completes its receipt); while the store holds receipts the budget fills, and a
//! request that does not fit waits in line for budget (at most 5 s or its ack timeout), then is
//! answered 503 with `Retry-After` (memory does not grow); a Firehose request 503 at once;
//! a request whose records are not confirmed within `ack_timeout` is answered 503 too.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Collector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tunnelwatch_ingest::pipeline::SourceStats;
use tunnelwatch_ingest::sources::SourceConfig;

const TOKEN: &str = "token-for-tests";

fn line(i: usize) -> String {
    format!(
        r#"{{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":{},"type":"BGPStatus","status":"UP","message":{{"details":"AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85 (#{i})"}}}}"#,
        1_762_580_429_000i64 + i as i64
    ) + "\n"
}

fn body(records: usize) -> Vec<u8> {
    (0..records).map(line).collect::<String>().into_bytes()
}

struct Started {
    addr: String,
    stats: Arc<SourceStats>,
    _trigger: tunnelwatch_ingest::pipeline::ShutdownTrigger,
}

async fn start(c: &Collector, table: serde_json::Value) -> Started {
    let config: SourceConfig = serde_json::from_value(table).unwrap();
    let source = config.build("push").unwrap();
    let (cx, trigger) = c.context("push", source.kind());
    let stats = cx.stats.clone();
    tokio::spawn(source.run(cx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let addr = loop {
        if let Some(a) = stats.listening.get() {
            break a.trim_start_matches("http://").to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    Started {
        addr,
        stats,
        _trigger: trigger,
    }
}

/// Sends one request; returns (status, head, body).
async fn post(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn http_answers_200_only_once_durable_and_503_when_saturated() {
    let c = Collector::start(64 << 10);
    let s = start(
        &c,
        serde_json::json!({"type": "http", "address": "127.0.0.1:0", "token": TOKEN, "ack_timeout": "20s"}),
    )
    .await;
    let auth = format!("Bearer {TOKEN}");
    let first = body(150); // ~40 KiB of the 64 KiB budget
    assert!(first.len() > 32 << 10 && first.len() < 48 << 10);

    // The store holds receipts: the first request waits for durability.
    c.hold();
    let pending = {
        let (addr, auth, first) = (s.addr.clone(), auth.clone(), first.clone());
        tokio::spawn(
            async move { post(&addr, "/ingest", &[("Authorization", &auth)], &first).await },
        )
    };
    assert!(
        c.wait_for(Duration::from_secs(10), |st| st.deliveries == 1)
            .await,
        "first request handed on"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !pending.is_finished(),
        "answered before its records were durable"
    );

    // A second request does not fit the rest of the budget: 503 at once, with Retry-After.
    let (status, head, text) = post(&s.addr, "/ingest", &[("Authorization", &auth)], &first).await;
    assert_eq!(status, 503, "{text}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert_eq!(
        s.stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        c.state.lock().unwrap().deliveries,
        1,
        "nothing queued beyond the budget"
    );

    // Durable: the first request is answered 200 and its records are all there.
    c.release();
    let (status, _, text) = pending.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(c.events().len(), 150);
    assert_eq!(c.out.budget_free_bytes(), 64 << 10);

    // Now the retry fits.
    let (status, _, _) = post(&s.addr, "/ingest", &[("Authorization", &auth)], &first).await;
    assert_eq!(status, 200);
    assert_eq!(c.events().len(), 300);
}

#[tokio::test]
async fn http_answers_503_when_durability_is_not_confirmed_in_time() {
    let c = Collector::start(1 << 20);
    let s = start(
        &c,
        serde_json::json!({"type": "http", "address": "127.0.0.1:0", "token": TOKEN, "ack_timeout": "300ms"}),
    )
    .await;
    c.hold();
    let (status, head, text) = post(
        &s.addr,
        "/ingest",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        &body(3),
    )
    .await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("not confirmed durable"), "{text}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    c.release();
}

#[tokio::test]
async fn firehose_answers_503_when_saturated_and_echoes_the_request_id() {
    let c = Collector::start(64 << 10);
    let s = start(
        &c,
        serde_json::json!({"type": "firehose", "address": "127.0.0.1:0", "access_key": "firehose-key"}),
    )
    .await;
    let request = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/firehose-request.json"
    ))
    .unwrap();
    let headers = [
        (
            "X-Amz-Firehose-Request-Id",
            "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
        ),
        ("X-Amz-Firehose-Access-Key", "firehose-key"),
    ];
    // Fill the budget with a held HTTP-sized delivery from another "request".
    c.hold();
    let filler = {
        let out = c.out.clone();
        let stream = Arc::new(tunnelwatch_ingest::pipeline::Stream {
            id: "filler".into(),
            source: "filler".into(),
            options: Default::default(),
        });
        out.try_send(tunnelwatch_ingest::pipeline::Delivery::new(
            stream,
            vec![b'\n'; 64 << 10],
        ))
    };
    filler.unwrap();
    let (status, _, text) = post(&s.addr, "/", &headers, &request).await;
    assert_eq!(status, 503, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["requestId"], "ed4acda5-034f-9f42-bba1-f29aea6d7d8f");
    assert!(
        answer["errorMessage"]
            .as_str()
            .unwrap()
            .contains("saturated")
    );
    c.release();
    let (status, _, text) = post(&s.addr, "/", &headers, &request).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(c.events().len(), 3);
}

//! The source test harness itself: a delivery split mid-record is joined, the checkpoint is
//! lowered to the start of the incomplete record, and held receipts keep the budget used.
mod common;

use std::sync::Arc;
use std::time::Duration;

use tunnelwatch_ingest::pipeline::{Checkpoint, Delivery, Stream};
use tunnelwatch_parsers::DecoderOptions;

const LINE: &str = r#"{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580429641,"type":"BGPStatus","status":"UP","message":{"details":"AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85"}}"#;

#[tokio::test]
async fn split_record_checkpoint_and_hold() {
    let c = common::Collector::start(8192);
    let stream = Arc::new(Stream {
        id: "s".into(),
        source: "test".into(),
        options: DecoderOptions::default(),
    });
    let mut bytes = format!("{LINE}\n{LINE}").into_bytes();
    let second_start = LINE.len() as u64 + 1;
    let total = bytes.len() as u64;
    let cp = |offset| Checkpoint {
        key: "k".into(),
        offset,
        state: serde_json::Value::Null,
    };
    c.out
        .send(Delivery::new(stream.clone(), std::mem::take(&mut bytes)).with_checkpoint(cp(total)))
        .await
        .unwrap();
    assert!(
        c.wait_for(Duration::from_secs(5), |s| s.deliveries == 1)
            .await
    );
    assert_eq!(c.events().len(), 1);
    assert_eq!(c.checkpoints()["k"].offset, second_start);
    c.hold();
    c.out
        .send(Delivery::new(stream.clone(), b"\n".to_vec()).with_checkpoint(cp(total + 1)))
        .await
        .unwrap();
    assert!(
        c.wait_for(Duration::from_secs(5), |s| s.deliveries == 2)
            .await
    );
    assert_eq!(c.events().len(), 2);
    assert_eq!(c.checkpoints()["k"].offset, total + 1);
    assert_eq!(c.out.budget_free_bytes(), 8192 - 1024);
    c.release();
    assert_eq!(c.out.budget_free_bytes(), 8192);
}

//! What the store's integration tests share: rows of the metrics table with numbered ids, ledger
//! marks, store options, and a census of a data directory as SQL sees it.
#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use tunnelwatch_queries::{
    Engine, QueryOptions, QueryRuntime, Snapshot, SourceMark, StoreOptions, Sync, TableName,
};

pub const DAY: i64 = 86_400_000;
pub const T0: i64 = 1_762_560_000_000; // 2025-11-08T00:00:00Z

/// `n` metric rows with ids `first..first+n` (in `sum`), spread over `days` days.
pub fn rows(first: i64, n: i64, days: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n).collect();
    RecordBatch::try_new(
        TableName::Metrics.schema(),
        vec![
            Arc::new(
                TimestampMillisecondArray::from(
                    ids.iter()
                        .map(|i| T0 + (i % days.max(1)) * DAY + i)
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec!["AWS/VPN"; n as usize])),
            Arc::new(StringArray::from(vec!["TunnelState"; n as usize])),
            Arc::new(StringArray::from(vec![
                Some("vpn-0123456789abcdef0");
                n as usize
            ])),
            Arc::new(StringArray::from(vec![None::<&str>; n as usize])),
            Arc::new(Int64Array::from(vec![60; n as usize])),
            Arc::new(Float64Array::from(vec![1.0; n as usize])),
            Arc::new(Float64Array::from(
                ids.iter().map(|i| *i as f64).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(vec![0.0; n as usize])),
            Arc::new(Float64Array::from(vec![1.0; n as usize])),
            Arc::new(StringArray::from(vec![Some("None"); n as usize])),
            // concentrator_id
            Arc::new(StringArray::from(vec![None::<&str>; n as usize])),
        ],
    )
    .unwrap()
}

/// "Every record of `source_key` before `offset` is stored" (a plain ledger mark).
pub fn mark(source_key: &str, offset: u64) -> SourceMark {
    SourceMark {
        source_key: source_key.into(),
        offset,
        state: None,
    }
}

pub fn opts(flush_rows: usize) -> StoreOptions {
    StoreOptions {
        sync: Sync::Never,
        flush_rows,
        ..Default::default()
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// (rows, distinct ids, sum of ids) as SQL sees the data directory.
pub fn census(root: &std::path::Path) -> (i64, i64, f64) {
    census_in(
        root,
        &QueryRuntime::new(QueryOptions::default().memory_limit).unwrap(),
    )
}

/// [`census`] by an engine in `shared` (a runtime other engines used before).
pub fn census_in(root: &std::path::Path, shared: &QueryRuntime) -> (i64, i64, f64) {
    runtime().block_on(async {
        let snapshot = Snapshot::read(root).unwrap();
        let engine = Engine::open_in(&snapshot, QueryOptions::default(), shared)
            .await
            .unwrap();
        let r = engine
            .query("SELECT count(*) AS n, count(DISTINCT sum) AS d, coalesce(sum(sum), 0) AS s FROM metrics")
            .await
            .unwrap();
        let b = &r.batches[0];
        let n = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
        let d = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
        let s = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap().value(0);
        (n, d, s)
    })
}

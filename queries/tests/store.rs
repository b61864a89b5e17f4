//! The store as a whole: round trips through WAL, Parquet and SQL; crash points (a process that
//! dies between any two steps) never lose or duplicate an acknowledged row; the read-only guard
//! holds against the real engine.

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use common::*;
use proptest::prelude::*;
use tunnelwatch_queries::store::read_unflushed;
use tunnelwatch_queries::{
    Engine, QueryOptions, QueryRuntime, Snapshot, SourceMark, Store, StoreOptions, TableName,
};

#[test]
fn round_trip_through_wal_parquet_and_sql() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut store, rec) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        assert_eq!(rec.wal_segments, 0);
        store
            .append(vec![(TableName::Metrics, rows(0, 1000, 3))], None)
            .unwrap();
        store.flush().unwrap();
        store
            .append(vec![(TableName::Metrics, rows(1000, 500, 1))], None)
            .unwrap();
        // Not flushed: the query still sees it, from the WAL.
        assert_eq!(census(dir.path()).0, 1500);
    }
    // Reopening moves the WAL's rows to Parquet.
    let (store, rec) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(rec.wal_segments, 1);
    assert_eq!(rec.rows, 500);
    assert!(read_unflushed(dir.path()).unwrap().is_empty());
    let files = store.segments().list(TableName::Metrics).unwrap();
    assert_eq!(files.len(), 4, "{files:?}"); // three days, then one
    drop(store);
    let (n, d, s) = census(dir.path());
    assert_eq!((n, d), (1500, 1500));
    assert_eq!(s, (0..1500).sum::<i64>() as f64);
}

#[test]
fn torn_wal_tail_keeps_every_acknowledged_row() {
    let dir = tempfile::tempdir().unwrap();
    let wal_file;
    {
        let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        for i in 0..5 {
            store
                .append(vec![(TableName::Metrics, rows(i * 100, 100, 1))], None)
                .unwrap();
        }
        wal_file = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        // Crash: no flush.
    }
    // A sixth append torn half way.
    let len = std::fs::metadata(&wal_file).unwrap().len();
    let mut bytes = std::fs::read(&wal_file).unwrap();
    let frame = bytes[(len as usize / 5) * 4..].to_vec();
    bytes.extend_from_slice(&frame[..frame.len() / 2]);
    std::fs::write(&wal_file, &bytes).unwrap();
    let (_, rec) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(rec.rows, 500);
    assert_eq!(rec.torn.len(), 1, "{:?}", rec.torn);
    assert_eq!(census(dir.path()).0, 500);
}

/// Streaming checkpoints: last write wins (a truncated file moves back), they survive a crash
/// from the WAL alone and after a flush from the ledger, and plain marks are unaffected.
#[test]
fn checkpoints_last_write_wins_and_survive_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let cp = |o: u64, generation: u64| SourceMark {
        source_key: "file:fp1".into(),
        offset: o,
        state: Some(serde_json::json!({ "generation": generation })),
    };
    {
        let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        store
            .append(vec![(TableName::Metrics, rows(0, 10, 1))], vec![cp(500, 1)])
            .unwrap();
        store.flush().unwrap();
        // Truncated and re-read: the offset moves back, in the WAL only (no flush).
        store
            .append(vec![(TableName::Metrics, rows(10, 10, 1))], vec![cp(40, 2)])
            .unwrap();
        assert_eq!(store.checkpoints()["file:fp1"].offset, 40);
        assert_eq!(
            store.committed("file:fp1"),
            0,
            "checkpoints are not plain marks"
        );
    }
    let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    let c = &store.checkpoints()["file:fp1"];
    assert_eq!((c.offset, c.state["generation"].as_u64()), (40, Some(2)));
    store.flush().unwrap();
    drop(store);
    let (store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(store.checkpoints()["file:fp1"].offset, 40);
    assert_eq!(census(dir.path()).0, 20);
}

#[test]
fn ledger_marks_survive_crashes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        store
            .append(
                vec![(TableName::Metrics, rows(0, 10, 1))],
                Some(mark("file#1", 100)),
            )
            .unwrap();
        store.flush().unwrap();
        store
            .append(
                vec![(TableName::Metrics, rows(10, 10, 1))],
                Some(mark("file#1", 200)),
            )
            .unwrap();
        assert_eq!(store.committed("file#1"), 200);
        // Crash with the second mark only in the WAL.
    }
    let (store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(store.committed("file#1"), 200);
    assert_eq!(store.committed("other"), 0);
}

#[test]
fn second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    let err = Store::open(dir.path(), opts(1 << 20)).err().unwrap();
    assert!(err.to_string().contains("locked"), "{err}");
}

#[test]
fn compaction_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    for i in 0..6 {
        store
            .append(vec![(TableName::Metrics, rows(i * 10, 10, 2))], None)
            .unwrap();
        store.flush().unwrap();
    }
    assert_eq!(store.segments().list(TableName::Metrics).unwrap().len(), 12);
    let merged = store.compact(4).unwrap();
    assert_eq!(merged, 12);
    let files = store.segments().list(TableName::Metrics).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.name.starts_with('c')));
    drop(store);
    assert_eq!(census(dir.path()).0, 60);
    // Keep only the newest day.
    let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    let dropped = store.apply_retention(T0 + DAY + 1, 1).unwrap();
    assert_eq!(dropped, 1);
    drop(store);
    assert_eq!(census(dir.path()).0, 30);
}

/// A compaction interrupted after writing its output and before deleting its inputs must not
/// leave the rows twice.
#[test]
fn interrupted_compaction_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        for i in 0..3 {
            store
                .append(vec![(TableName::Metrics, rows(i * 10, 10, 1))], None)
                .unwrap();
            store.flush().unwrap();
        }
        // Simulate the crash: write the merged output by hand, keep the inputs.
        let files = store.segments().list(TableName::Metrics).unwrap();
        let mut batches = Vec::new();
        for f in &files {
            batches.extend(store.segments().read(f).unwrap());
        }
        store
            .segments()
            .write(
                TableName::Metrics,
                &batches,
                "c00000000000000000001-00000000000000000003",
            )
            .unwrap();
    }
    let (store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(store.segments().list(TableName::Metrics).unwrap().len(), 1);
    drop(store);
    assert_eq!(census(dir.path()), (30, 30, (0..30).sum::<i64>() as f64));
}

#[test]
fn the_guard_holds_against_the_real_engine() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.csv");
    runtime().block_on(async {
        let engine = Engine::open(
            &Snapshot::read(dir.path()).unwrap(),
            QueryOptions::default(),
        )
        .await
        .unwrap();
        for sql in [
            format!("COPY (SELECT 1) TO '{}'", target.display()),
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'".to_owned(),
            "CREATE TABLE t AS SELECT 1".to_owned(),
            "SELECT * FROM '/etc/passwd'".to_owned(),
            "SELECT * FROM read_csv('/etc/passwd')".to_owned(),
            "SELECT * FROM read_parquet('/etc/passwd')".to_owned(),
        ] {
            assert!(engine.query(&sql).await.is_err(), "{sql} was accepted");
        }
        assert!(!target.exists());
        // Nothing was created: the tables are still the store's own.
        let r = engine
            .query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .await
            .unwrap();
        let n = r.batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(
            n as usize,
            tunnelwatch_queries::schema::TableName::ALL.len()
        );
        // And the ordinary things work.
        assert!(engine.query("SHOW TABLES").await.is_ok());
        assert!(engine.query("DESCRIBE tunnel_activity").await.is_ok());
        assert!(
            engine
                .query("EXPLAIN SELECT * FROM bgp_events WHERE ts > now()")
                .await
                .is_ok()
        );
    });
    assert!(!dir.path().join("t").exists());
}

#[derive(Debug, Clone)]
enum Op {
    Append(i64, i64),
    /// Reads the next records of a re-readable source (a file) into the store, past the WAL.
    AppendFile(i64, i64),
    Flush,
    Crash,
    /// A crash in the middle of a flush, at the given step.
    CrashInFlush(FlushStep),
    Compact,
}

/// Where a flush can be interrupted: after the Parquet files are durable but before the ledger
/// is saved; after the ledger is saved but before the WAL segment is removed.
#[derive(Debug, Clone, Copy)]
enum FlushStep {
    BeforeLedger,
    BeforeWalRemoval,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1i64..200, 1i64..4).prop_map(|(n, days)| Op::Append(n, days)),
        4 => (1i64..200, 1i64..4).prop_map(|(n, days)| Op::AppendFile(n, days)),
        1 => Just(Op::Flush),
        1 => Just(Op::Crash),
        1 => Just(Op::CrashInFlush(FlushStep::BeforeLedger)),
        1 => Just(Op::CrashInFlush(FlushStep::BeforeWalRemoval)),
        1 => Just(Op::Compact),
    ]
}

/// Ids of the re-readable source's records start here (the WAL rows' ids start at 0).
const FILE_IDS: i64 = 1_000_000;
const FILE_KEY: &str = "file:fingerprint";

/// Flushes `store`, then puts the directory back the way a crash at `step` of that flush would
/// leave it, and drops the store (the process is gone).
fn crash_in_flush(root: &std::path::Path, mut store: Store, step: FlushStep) {
    let wal_dir = root.join("wal");
    let wal_files = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let before = wal_files(&wal_dir);
    assert_eq!(before.len(), 1, "one live WAL segment: {before:?}");
    let wal_bytes = std::fs::read(&before[0]).unwrap();
    let ledger = root.join("sources.json");
    let ledger_bytes = std::fs::read(&ledger).ok();
    store.flush().unwrap();
    drop(store);
    std::fs::write(&before[0], &wal_bytes).unwrap();
    if let FlushStep::BeforeLedger = step {
        match ledger_bytes {
            Some(b) => std::fs::write(&ledger, b).unwrap(),
            None => {
                let _ = std::fs::remove_file(&ledger);
            }
        }
        // The next segment is opened after the ledger is saved.
        for f in wal_files(&wal_dir) {
            if f != before[0] {
                std::fs::remove_file(f).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any sequence of appends (through the WAL, or past it from a re-readable source),
    /// flushes, compactions and crashes (dropping the store without flushing, or dying in the
    /// middle of a flush) ends with every acknowledged row present exactly once — and every
    /// record of the re-readable source too, once the reader resumes where the ledger says.
    #[test]
    fn every_acknowledged_row_exactly_once(ops in proptest::collection::vec(op(), 1..16), flush_rows in 50usize..400) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Some(Store::open(dir.path(), opts(flush_rows)).unwrap().0);
        let mut next = 0i64;
        // The source's records 0..file_len exist; the reader is at file_pos.
        let mut file_len = 0i64;
        let mut file_pos = 0i64;
        let file_batch = |from: i64, n: i64, days: i64| {
            vec![(TableName::Metrics, rows(FILE_IDS + from, n, days))]
        };
        let file_mark = |to: i64| mark(FILE_KEY, to as u64);
        for op in ops {
            let s = store.as_mut().unwrap();
            match op {
                Op::Append(n, days) => {
                    s.append(vec![(TableName::Metrics, rows(next, n, days))], None).unwrap();
                    next += n;
                }
                Op::AppendFile(n, days) => {
                    // Re-read what a crash lost first, then new records.
                    let n = (file_len - file_pos).max(n);
                    s.append_replayable(file_batch(file_pos, n, days), Some(file_mark(file_pos + n))).unwrap();
                    file_pos += n;
                    file_len = file_len.max(file_pos);
                }
                Op::Flush => { s.flush().unwrap(); }
                Op::Compact => { s.compact(2).unwrap(); }
                Op::Crash => {
                    drop(store.take());
                    store = Some(Store::open(dir.path(), opts(flush_rows)).unwrap().0);
                    file_pos = store.as_ref().unwrap().committed(FILE_KEY) as i64;
                }
                Op::CrashInFlush(step) => {
                    crash_in_flush(dir.path(), store.take().unwrap(), step);
                    store = Some(Store::open(dir.path(), opts(flush_rows)).unwrap().0);
                    file_pos = store.as_ref().unwrap().committed(FILE_KEY) as i64;
                }
            }
        }
        // The reader finishes the source.
        let s = store.as_mut().unwrap();
        if file_pos < file_len {
            s.append_replayable(file_batch(file_pos, file_len - file_pos, 1), Some(file_mark(file_len))).unwrap();
        }
        s.flush().unwrap();
        prop_assert_eq!(s.committed(FILE_KEY), file_len as u64);
        drop(store);
        let (n, d, s) = census(dir.path());
        let expected_sum = (0..next).sum::<i64>() + (FILE_IDS..FILE_IDS + file_len).sum::<i64>();
        prop_assert_eq!(n, next + file_len);
        prop_assert_eq!(d, next + file_len);
        prop_assert_eq!(s, expected_sum as f64);
    }
}

/// A crash after the ledger of a flush is saved but before its WAL segment is removed: the
/// Parquet of that flush holds rows the WAL never had (a re-readable source's), and the ledger
/// already says they are stored, so recovery must keep that Parquet rather than rewrite the
/// flush from the WAL.
#[test]
fn a_flush_the_ledger_covers_is_kept_when_its_wal_segment_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    store
        .append(vec![(TableName::Metrics, rows(0, 10, 1))], None)
        .unwrap();
    store
        .append_replayable(
            vec![(TableName::Metrics, rows(10, 90, 1))],
            Some(mark(FILE_KEY, 90)),
        )
        .unwrap();
    assert_eq!(store.committed(FILE_KEY), 90);
    crash_in_flush(dir.path(), store, FlushStep::BeforeWalRemoval);
    let (store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(store.committed(FILE_KEY), 90);
    drop(store);
    let (n, d, _) = census(dir.path());
    assert_eq!((n, d), (100, 100));
}

/// Rows held for a re-readable source are not in the WAL: a crash before the flush loses them
/// and leaves the source's mark where it was, so reading the source again stores them once.
#[test]
fn replayable_rows_wait_for_the_flush() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        store
            .append_replayable(
                vec![(TableName::Metrics, rows(0, 10, 1))],
                Some(mark(FILE_KEY, 10)),
            )
            .unwrap();
        store.flush().unwrap();
        store
            .append_replayable(
                vec![(TableName::Metrics, rows(10, 10, 1))],
                Some(mark(FILE_KEY, 20)),
            )
            .unwrap();
        assert_eq!(store.unflushed()[&TableName::Metrics].len(), 1);
        assert!(
            read_unflushed(dir.path()).unwrap().is_empty(),
            "not in the WAL"
        );
        // Crash.
    }
    let (store, rec) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(rec.rows, 0);
    assert_eq!(store.committed(FILE_KEY), 10);
    drop(store);
    assert_eq!(census(dir.path()).0, 10);
}

/// Files not written by a WAL flush (the metrics table's generations) are not compacted.
#[test]
fn compaction_leaves_other_writers_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    for g in 0..5 {
        store
            .segments()
            .write(
                TableName::Metrics,
                &[rows(g * 10, 10, 1)],
                &format!("m{g:020}"),
            )
            .unwrap();
    }
    assert_eq!(store.compact(2).unwrap(), 0);
    let names: Vec<String> = store
        .segments()
        .list(TableName::Metrics)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names.len(), 5);
    assert!(names.iter().all(|n| n.starts_with('m')), "{names:?}");
}

/// Spends the calling task's cooperative budget: polls a tokio channel that still holds
/// messages until it answers `Pending` (tokio's "you have used up your budget, yield"), then
/// returns without yielding — the state a task is in after a long run of ready batches.
async fn spend_coop_budget() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..100_000 {
        tx.send(i).unwrap();
    }
    std::future::poll_fn(|cx| {
        loop {
            match rx.poll_recv(cx) {
                std::task::Poll::Ready(Some(_)) => continue,
                std::task::Poll::Ready(None) => panic!("the channel ran dry before the budget"),
                std::task::Poll::Pending => return std::task::Poll::Ready(()),
            }
        }
    })
    .await;
}

/// The store's synchronous API called from async code whose task has spent its cooperative
/// budget — what the metrics rebuild does when a chunk of datapoints fills up in the middle of
/// a DataFusion stream. It used to park forever in `put` (issue 10, item 1): the store bridged
/// to object_store with `futures::executor::block_on`, and `LocalFileSystem` awaits a
/// `spawn_blocking` handle, which on a spent budget defers its wake-up to the very scheduler
/// the bridge blocks. Writes, lists, reads and deletes must all finish.
#[test]
fn segment_io_inside_a_runtime_with_a_spent_budget_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (store, _) = Store::open(&root, opts(1 << 20)).unwrap();
        let result = runtime().block_on(async {
            let mut written = Vec::new();
            // Many chunks, as a large rebuild writes them, each after a spent budget.
            for chunk in 0..8 {
                spend_coop_budget().await;
                written.extend(
                    store
                        .segments()
                        .write(
                            TableName::Metrics,
                            &[rows(chunk * 1000, 1000, 2)],
                            &format!("m{chunk:020}"),
                        )
                        .unwrap(),
                );
            }
            spend_coop_budget().await;
            let listed = store.segments().list(TableName::Metrics).unwrap();
            spend_coop_budget().await;
            let read: usize = listed
                .iter()
                .map(|f| {
                    store
                        .segments()
                        .read(f)
                        .unwrap()
                        .iter()
                        .map(|b| b.num_rows())
                        .sum::<usize>()
                })
                .sum();
            spend_coop_budget().await;
            for f in &listed {
                store.segments().delete(f).unwrap();
            }
            (written.len(), listed.len(), read)
        });
        let _ = done_tx.send(result);
    });
    let (written, listed, read) = done_rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("segment I/O from inside a runtime hung");
    assert_eq!(written, 16, "8 chunks over 2 days");
    assert_eq!(listed, 16);
    assert_eq!(read, 8000);
}

/// Strings are scanned as views, but every result (stored rows, unflushed rows, a list of
/// strings, a streamed statement) comes back in the declared `Utf8`; time and position columns
/// are stored delta-encoded without a dictionary, floats plain.
#[test]
fn results_keep_the_declared_types_and_times_are_delta_encoded() {
    use arrow::datatypes::{DataType, Field};
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    store
        .append(vec![(TableName::Metrics, rows(0, 100, 1))], None)
        .unwrap();
    store.flush().unwrap();
    store
        .append(vec![(TableName::Metrics, rows(100, 50, 1))], None)
        .unwrap();
    let sql =
        "SELECT metric_name, vpn_id, array_agg(DISTINCT namespace) AS namespaces, count(*) AS n
               FROM metrics GROUP BY metric_name, vpn_id";
    runtime().block_on(async {
        let snapshot = Snapshot::read(dir.path()).unwrap();
        let engine = Engine::open(&snapshot, QueryOptions::default())
            .await
            .unwrap();
        let r = engine.query(sql).await.unwrap();
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
        let types: Vec<DataType> = r
            .schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            [
                DataType::Utf8,
                DataType::Utf8,
                list.clone(),
                DataType::Int64
            ]
        );
        assert_eq!(r.num_rows(), 1);
        for b in &r.batches {
            assert_eq!(b.schema().fields(), r.schema.fields());
            let names = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            assert_eq!(names.value(0), "TunnelState");
            let n = b.column(3).as_any().downcast_ref::<Int64Array>().unwrap();
            assert_eq!(n.value(0), 150);
        }
        let mut stream = engine.stream(sql).await.unwrap();
        assert_eq!(stream.schema().field(2).data_type(), &list);
        let mut rows = 0;
        while let Some(b) = stream.next().await {
            let b = b.unwrap();
            assert_eq!(b.column(1).data_type(), &DataType::Utf8);
            rows += b.num_rows();
        }
        assert_eq!(rows, 1);
    });
    let file = &store.segments().list(TableName::Metrics).unwrap()[0];
    let parquet_file = std::fs::File::open(dir.path().join(file.relative_path())).unwrap();
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(parquet_file).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&reader).clone();
    let columns = meta.row_group(0).columns();
    let ts = columns
        .iter()
        .find(|c| c.column_path().string() == "ts")
        .unwrap();
    let encodings: Vec<_> = ts.encodings().collect();
    assert!(
        encodings.contains(&parquet::basic::Encoding::DELTA_BINARY_PACKED)
            && !encodings.contains(&parquet::basic::Encoding::RLE_DICTIONARY),
        "{encodings:?}"
    );
    let name = columns
        .iter()
        .find(|c| c.column_path().string() == "metric_name")
        .unwrap();
    assert!(
        name.encodings()
            .any(|e| e == parquet::basic::Encoding::RLE_DICTIONARY)
    );
}

/// Engines sharing one runtime (the server's) keep answering right while flushes, compaction
/// and retention replace the files under them: the cached Parquet metadata is never taken for
/// a file's that has gone or changed.
#[test]
fn a_shared_runtime_follows_flushes_compaction_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    let shared = QueryRuntime::new(64 << 20).unwrap();
    let count = |store: &Store| {
        let (n, _, s) = census_in(store.root(), &shared);
        (n, s as i64)
    };
    let sum = |n: i64| (0..n).sum::<i64>();
    for i in 0..6 {
        store
            .append(vec![(TableName::Metrics, rows(i * 10, 10, 2))], None)
            .unwrap();
        store.flush().unwrap();
        assert_eq!(count(&store), ((i + 1) * 10, sum((i + 1) * 10)));
    }
    store.compact(4).unwrap();
    assert_eq!(count(&store), (60, sum(60)));
    store
        .append(vec![(TableName::Metrics, rows(60, 10, 2))], None)
        .unwrap();
    store.flush().unwrap();
    store.compact(2).unwrap();
    assert_eq!(count(&store), (70, sum(70)));
    store.apply_retention(T0 + DAY + 1, 1).unwrap();
    let odd: i64 = (0..70).filter(|i| i % 2 == 1).sum();
    assert_eq!(count(&store), (35, odd));
}

/// `flush_bytes` bounds the memory unflushed rows take: a flush happens once they reach it.
#[test]
fn a_memory_limit_flushes_before_the_row_limit() {
    let dir = tempfile::tempdir().unwrap();
    let one = rows(0, 1000, 1).get_array_memory_size();
    let (mut store, _) = Store::open(
        dir.path(),
        StoreOptions {
            flush_bytes: one * 3,
            ..opts(1 << 30)
        },
    )
    .unwrap();
    for i in 0..10 {
        store
            .append(vec![(TableName::Metrics, rows(i * 1000, 1000, 1))], None)
            .unwrap();
        let held: usize = store
            .unflushed()
            .values()
            .flatten()
            .map(|b| b.get_array_memory_size())
            .sum();
        assert!(held < one * 3, "{held} bytes held after append {i}");
    }
    assert_eq!(store.flushes(), 3);
}

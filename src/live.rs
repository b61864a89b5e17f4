//! The live pipeline of `demo` (and later `serve`): records from a source thread go through one
//! `Decoder` per log stream into Arrow batches, a writer thread makes them durable in the store,
//! and a shared snapshot lets HTTP handlers query committed Parquet plus the rows not yet
//! flushed.
//!
//! Invariants: a batch is visible to queries only after `Store::append` returned (it is in the
//! WAL); queries see a [`Snapshot`] the writer published whole (Parquet file list + unflushed
//! rows), so a flush never shows rows twice or not at all; the writer flushes to Parquet at
//! least every `FLUSH_EVERY` so the in-memory part stays small; on shutdown the source stops
//! first, then the writer drains its queue and flushes.
//!
//! Metrics: the source thread also feeds every parsed event to the shared
//! `tunnelwatch_monitor::Monitor` (lateness window 5 minutes) and advances it to the watermark
//! `max(wall clock, newest event time)` (the newest event time leads when `--speed` > 1); the
//! minutes it completes go to the store's `metrics` table through the writer, and `/metrics`
//! renders the monitor's live view.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tunnelwatch_ingest::simulator::live::{Clock, LiveFleet, SystemClock};
use tunnelwatch_monitor::{Monitor, MonitorConfig, Observation};
use tunnelwatch_parsers::{Decoder, DecoderOptions, Parsed};
use tunnelwatch_queries::rows::table_of;
use tunnelwatch_queries::{MetricRows, RowBuilder, Snapshot, Store, StoreError, TableName};

/// Rows per append at most; a partial batch is sent after `SEND_EVERY` anyway.
const BATCH_ROWS: usize = 8192;
const SEND_EVERY: Duration = Duration::from_millis(500);
const FLUSH_EVERY: Duration = Duration::from_secs(300);

pub type Job = Vec<(TableName, RecordBatch)>;

/// What the pipeline counts, for the status page and `/metrics`.
#[derive(Default)]
pub struct Counters {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub rejects: AtomicU64,
    pub rows: [AtomicU64; TableName::ALL.len()],
    /// Event time of the newest record seen, epoch ms.
    pub last_event_ms: AtomicI64,
    /// Wall time at which it was received, epoch ms.
    pub last_received_ms: AtomicI64,
}

/// State shared between the pipeline threads and the HTTP server.
pub struct Shared {
    pub data: PathBuf,
    pub source: String,
    pub description: String,
    pub started_ms: i64,
    pub counters: Counters,
    /// Tunnel state and metrics; the source thread feeds it, `/metrics` reads its live view.
    pub monitor: Mutex<Monitor>,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl Shared {
    pub fn new(data: PathBuf, source: &str, description: String) -> Shared {
        Shared {
            data,
            source: source.to_owned(),
            description,
            started_ms: now_ms(),
            counters: Counters::default(),
            monitor: Mutex::new(
                Monitor::new(MonitorConfig::default()).expect("the default config is valid"),
            ),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
        }
    }

    /// What queries see: the store as of the last append or flush.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn publish(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut g) => *g = snapshot,
            Err(p) => *p.into_inner() = snapshot,
        }
    }
}

pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// The simulator as a source: releases records as the clock reaches them and parses them.
pub fn run_simulator(
    mut live: LiveFleet<SystemClock>,
    shared: Arc<Shared>,
    tx: SyncSender<Job>,
    stop: Arc<AtomicBool>,
) {
    let mut decoders: HashMap<Arc<str>, Decoder> = HashMap::new();
    let mut rows = RowBuilder::default();
    let mut last_send = Instant::now();
    let c = &shared.counters;
    let mut line = Vec::with_capacity(1024);
    let mut observed: Vec<Observation> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = now_ms();
        while let Some(rec) = live.take_due(now) {
            let decoder = decoders.entry(rec.stream.clone()).or_insert_with(|| {
                Decoder::new(
                    &format!("simulator:{}", rec.stream),
                    DecoderOptions {
                        stream_name: Some(rec.stream.to_string()),
                        ..Default::default()
                    },
                )
            });
            line.clear();
            line.extend_from_slice(rec.line.as_bytes());
            line.push(b'\n');
            c.records.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(line.len() as u64, Ordering::Relaxed);
            c.last_event_ms.fetch_max(rec.ts_ms, Ordering::Relaxed);
            c.last_received_ms.store(now, Ordering::Relaxed);
            decoder.decode(&line, false, &mut |p| match p {
                Parsed::Event(e) => {
                    c.rows[table_of(&e) as usize].fetch_add(1, Ordering::Relaxed);
                    rows.push_event(&e);
                    // Records without tunnel identity are stored but feed no tunnel.
                    if let Ok(o) = Observation::from_event(&e) {
                        observed.push(o);
                    }
                }
                Parsed::Reject(r) => {
                    c.rejects.fetch_add(1, Ordering::Relaxed);
                    c.rows[TableName::Rejects as usize].fetch_add(1, Ordering::Relaxed);
                    rows.push_reject(&r, now);
                }
            });
            if rows.len() >= BATCH_ROWS && tx.send(rows.finish()).is_err() {
                return;
            }
        }
        let watermark = now_ms().max(c.last_event_ms.load(Ordering::Relaxed));
        let metrics = feed_monitor(&shared, &mut observed, watermark);
        if !metrics.is_empty() && tx.send(metrics).is_err() {
            return;
        }
        if !rows.is_empty() && last_send.elapsed() >= SEND_EVERY {
            if tx.send(rows.finish()).is_err() {
                return;
            }
            last_send = Instant::now();
        }
        let wait = match live.next_due_wall_ms() {
            Some(due) => (due - now_ms()).clamp(0, 200),
            None => 200,
        };
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    if !rows.is_empty() {
        let _ = tx.send(rows.finish());
    }
}

/// Pushes what was parsed into the shared monitor, advances it to `watermark`, and returns the
/// completed minutes as `metrics` rows.
fn feed_monitor(shared: &Shared, observed: &mut Vec<Observation>, watermark: i64) -> Job {
    let points = {
        let mut m = match shared.monitor.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for o in observed.drain(..) {
            m.push(o);
        }
        m.advance(watermark);
        m.drain()
    };
    if points.is_empty() {
        return Vec::new();
    }
    let mut rows = MetricRows::default();
    for p in &points {
        crate::metrics_cmd::push_datapoint(&mut rows, p);
    }
    shared.counters.rows[TableName::Metrics as usize]
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    vec![(TableName::Metrics, rows.finish())]
}

/// The store writer: appends what arrives, publishes the unflushed snapshot, flushes to Parquet
/// every few minutes and at the end.
pub fn run_writer(
    mut store: Store,
    rx: Receiver<Job>,
    shared: Arc<Shared>,
) -> Result<Store, StoreError> {
    let mut last_flush = Instant::now();
    // The Parquet file list changes only when this thread flushes.
    let mut files = Snapshot::list_files(store.root())?;
    let publish = |store: &Store, files: &BTreeMap<TableName, Vec<PathBuf>>| {
        shared.publish(Snapshot {
            files: files.clone(),
            unflushed: store.unflushed().clone(),
        })
    };
    publish(&store, &files);
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(batches) => {
                let flushes = store.flushes();
                store.append(batches, None)?;
                // `append` flushes on its own past a size threshold.
                if store.flushes() != flushes {
                    files = Snapshot::list_files(store.root())?;
                }
                publish(&store, &files);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            store.flush()?;
            files = Snapshot::list_files(store.root())?;
            publish(&store, &files);
            last_flush = Instant::now();
        }
    }
    store.flush()?;
    files = Snapshot::list_files(store.root())?;
    publish(&store, &files);
    Ok(store)
}

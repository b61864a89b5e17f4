//! The running pipeline of `demo`, `serve` and `ingest cloudwatch://`: sources (tokio tasks) hand deliveries over the
//! budgeted channel of `tunnelwatch_ingest::pipeline`; a decode thread runs one `Decoder` per
//! stream, builds Arrow rows and feeds the monitor; a writer thread appends rows with their
//! checkpoints to the store, then answers the deliveries' acks and releases their budget; HTTP
//! handlers query published snapshots.
//!
//! Invariants:
//! - A delivery's ack is answered, and its budget released, only after the store append that
//!   holds its rows returned (records durable in the WAL).
//! - A checkpoint reaches the WAL in the same append as the rows of the bytes it covers, lowered
//!   by the bytes of an incomplete record its decoder still holds.
//! - Queries see a [`Snapshot`] the writer published whole (Parquet file list + unflushed rows),
//!   so a flush never shows rows twice or not at all. The writer flushes at least every
//!   `FLUSH_EVERY`, and hourly merges day partitions of 8 files or more and applies retention
//!   (a query still reading a file merged away at that moment fails and can be run again).
//! - On shutdown: sources stop first (and hand on what they hold), then the decode thread drains
//!   the channel, then the writer drains its queue and flushes.
//!
//! Metrics: the decode thread advances the monitor (lateness window 5 minutes) to
//! `max(wall clock, newest event time)`; completed minutes go to the `metrics` table through the
//! writer, and `/metrics` renders the monitor's live view. Records older than the live window
//! the runner sets (`serve`: 24 h; `demo`: its history) are stored but not applied live —
//! `tunnelwatch metrics rebuild` computes their minutes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tunnelwatch_exporters::alarm_message::{MessageContext, alarm_message, idempotency_key};
use tunnelwatch_exporters::notify::Notifier;
use tunnelwatch_ingest::pipeline::{
    self as source_pipeline, BudgetGauge, Input, Receipt, SourceStats,
};
use tunnelwatch_ingest::sources::{Source, SourceError};
use tunnelwatch_monitor::alarm::{
    AlarmDefinition, AlarmEvaluator, Resume, SavedAlarms, Transition,
};
use tunnelwatch_monitor::diagnose::Diagnosis;
use tunnelwatch_monitor::health::HealthEvent;
use tunnelwatch_monitor::{Monitor, MonitorConfig, Observation};
use tunnelwatch_parsers::{Decoder, Event, EventBody, MessageKind, Parsed, Severity};
use tunnelwatch_queries::rows::table_of;
use tunnelwatch_queries::{
    MetricRows, Recovery, RowBuilder, Snapshot, SourceMark, Store, StoreError, StoreOptions,
    TableName,
};

use crate::alarm_state::{self, AlarmStateFile};
use crate::error::PipelineError;
use crate::outbox::Outbox;

/// Rows per append at most.
const BATCH_ROWS: usize = 8192;
/// A partial batch without acks waiting goes to the store after this long anyway.
const SEND_EVERY: Duration = Duration::from_millis(500);
const FLUSH_EVERY: Duration = Duration::from_secs(300);
/// Compaction and retention, hourly.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);
/// A day partition with this many files or more is merged into one.
const COMPACT_MIN_FILES: usize = 8;
/// How often the monitor is advanced when no data arrives.
const TICK: Duration = Duration::from_millis(200);

/// What the decode thread hands to the writer: rows, the checkpoints they complete, and the
/// receipts to answer once they are durable.
#[derive(Default)]
pub struct Job {
    pub batches: Vec<(TableName, RecordBatch)>,
    pub marks: Vec<SourceMark>,
    receipts: Vec<(Receipt, Option<Arc<SourceStats>>, bool)>,
    /// The alarm state after the transitions in `batches` (and the time evaluated up to):
    /// saved once they are durable.
    alarm_state: Option<(SavedAlarms, i64)>,
}

impl Job {
    fn is_empty(&self) -> bool {
        self.batches.is_empty()
            && self.marks.is_empty()
            && self.receipts.is_empty()
            && self.alarm_state.is_none()
    }

    fn merge(&mut self, other: Job) {
        self.batches.extend(other.batches);
        self.marks.extend(other.marks);
        self.receipts.extend(other.receipts);
        if other.alarm_state.is_some() {
            self.alarm_state = other.alarm_state;
        }
    }
}

/// The first wait before a failed append is tried again, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Failures worth waiting out: the disk (full, failing to sync) or the object store. Anything
/// else (an encoding error) will not get better by itself.
fn retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Io { .. } | StoreError::ObjectStore(_))
}

/// The writer's view of whether the store takes writes, published in [`Counters`] and logged
/// once per change (not once per retry).
struct StoreHealth<'a> {
    shared: &'a Shared,
    failing: bool,
}

impl<'a> StoreHealth<'a> {
    fn new(shared: &'a Shared) -> StoreHealth<'a> {
        StoreHealth {
            shared,
            failing: false,
        }
    }

    fn failing(&self) -> bool {
        self.failing
    }

    fn failed(&mut self, what: &str, e: &StoreError) {
        let c = &self.shared.counters;
        c.store_write_errors.fetch_add(1, Ordering::Relaxed);
        c.store_writable.store(false, Ordering::Relaxed);
        if !self.failing {
            tracing::error!(error = %e, "store {what} failed; holding sources back and retrying");
        }
        self.failing = true;
    }

    /// After a write that worked: writable again unless the last flush still fails.
    fn ok(&mut self, store: &Store) {
        if store.flush_failure().is_some() {
            // The append is durable in the WAL, but the flush behind it failed: still failing.
            return;
        }
        self.shared
            .counters
            .store_writable
            .store(true, Ordering::Relaxed);
        if self.failing {
            tracing::info!("the store takes writes again");
        }
        self.failing = false;
    }
}

/// What the pipeline counts, for the status page and `/metrics`.
pub struct Counters {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub rejects: AtomicU64,
    pub rows: [AtomicU64; TableName::ALL.len()],
    /// Event time of the newest record seen, epoch ms.
    pub last_event_ms: AtomicI64,
    /// Store writes (appends, flushes, maintenance) that failed; each is retried.
    pub store_write_errors: AtomicU64,
    /// Whether the last store write worked (false while the disk is full).
    pub store_writable: AtomicBool,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            rejects: AtomicU64::new(0),
            rows: Default::default(),
            last_event_ms: AtomicI64::new(0),
            store_write_errors: AtomicU64::new(0),
            store_writable: AtomicBool::new(true),
        }
    }
}

/// State shared between the pipeline threads and the HTTP server.
pub struct Shared {
    pub data: PathBuf,
    pub description: String,
    pub started_ms: i64,
    pub counters: Counters,
    /// Per-source counters, in config order.
    pub sources: Vec<Arc<SourceStats>>,
    /// The in-flight budget between sources and the store.
    pub budget: BudgetGauge,
    /// Tunnel state and metrics; the decode thread feeds it, `/metrics` reads its live view.
    pub monitor: Mutex<Monitor>,
    /// Whether the decode thread feeds the monitor and stores its minutes (one-shot ingest
    /// recomputes metrics from the stored events afterwards instead).
    pub live_metrics: bool,
    /// Records with an older event time are stored but not pushed to the monitor (it would
    /// count them late anyway).
    live_since_ms: i64,
    /// The configured alarms, fed the monitor's completed minutes; their transitions become
    /// `alarm_history` rows. `None` without alarms (or without live metrics).
    pub alarms: Mutex<Option<AlarmEvaluator>>,
    /// Where transitions with actions go: the outbox and the notifiers it delivers to.
    pub notify: Option<Notify>,
    /// Whether the writer brings Health up to date every [`HEALTH_EVERY`].
    pub health: bool,
    /// The alarm state file as this run loaded it (its Health fields are carried on), and
    /// when the alarm part was last handed to the writer (wall clock, ms).
    alarm_file: Mutex<(AlarmStateFile, i64)>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The inventory's tunnels by address: every stream's decoder places gateway lines (and
    /// gateway counters) with it.
    pub gateway_peers: Option<Arc<tunnelwatch_parsers::gateway::PeerMap>>,
    /// Set when the run is stopping: the writer then stops waiting for a full disk (what it
    /// could not store is answered as not stored, never acknowledged).
    pub stopping: AtomicBool,
}

impl Shared {
    /// `sources` are the sources about to run: each gets its counters here, in this order.
    pub fn new(
        data: PathBuf,
        description: String,
        sources: &[(String, Box<dyn Source>)],
        out: &source_pipeline::Output,
        monitor: MonitorConfig,
        live_since_ms: i64,
    ) -> Result<Shared, tunnelwatch_monitor::MonitorError> {
        let lateness = monitor.lateness_ms;
        let mut monitor = Monitor::new(monitor)?;
        // Records older than this are stored but not applied to the live tunnel state: a tunnel
        // first seen a year back would otherwise be filled minute by minute up to now.
        monitor.advance(live_since_ms.saturating_add(lateness));
        Ok(Shared {
            data,
            description,
            started_ms: now_ms(),
            counters: Counters::default(),
            sources: sources
                .iter()
                .map(|(name, s)| {
                    let stats = SourceStats::new(name, s.kind());
                    stats
                        .replaying
                        .store(s.replays_at_start(), Ordering::Relaxed);
                    Arc::new(stats)
                })
                .collect(),
            budget: out.budget_gauge(),
            monitor: Mutex::new(monitor),
            live_metrics: true,
            live_since_ms,
            alarms: Mutex::new(None),
            notify: None,
            health: false,
            alarm_file: Mutex::new((AlarmStateFile::default(), 0)),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            gateway_peers: None,
            stopping: AtomicBool::new(false),
        })
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
    source_pipeline::now_ms()
}

/// The checkpoints a store holds, as sources read them at start.
pub fn checkpoints_of(store: &Store) -> source_pipeline::Checkpoints {
    source_pipeline::Checkpoints(
        store
            .checkpoints()
            .into_iter()
            .map(|(key, c)| {
                let cp = source_pipeline::Checkpoint {
                    key: key.clone(),
                    offset: c.offset,
                    state: c.state,
                };
                (key, cp)
            })
            .collect(),
    )
}

struct StreamState {
    decoder: Decoder,
    /// Bytes of an incomplete record, joined with the next delivery.
    held: Vec<u8>,
}

impl StreamState {
    /// Decodes the next bytes of the stream; what ends mid-record is held for the next call.
    fn decode(&mut self, bytes: &[u8], end: bool, sink: &mut dyn FnMut(Parsed)) {
        let first_newline = if self.held.is_empty() || end {
            None
        } else {
            memchr::memchr(b'\n', bytes)
        };
        if self.held.is_empty() {
            let consumed = self.decoder.decode(bytes, end, sink);
            self.held.extend_from_slice(&bytes[consumed..]);
        } else if let Some(nl) = first_newline {
            // Complete the held record with the first line only, then decode the rest in place
            // (no copy of the whole delivery).
            self.held.extend_from_slice(&bytes[..=nl]);
            let consumed = self.decoder.decode(&self.held, false, sink);
            let rest = &bytes[nl + 1..];
            if consumed == self.held.len() {
                self.held.clear();
                let consumed = self.decoder.decode(rest, false, sink);
                self.held.extend_from_slice(&rest[consumed..]);
            } else {
                // The record spans more than a line (pretty JSON, an octet frame).
                self.held.drain(..consumed);
                self.held.extend_from_slice(rest);
                let consumed = self.decoder.decode(&self.held, false, sink);
                self.held.drain(..consumed);
            }
        } else {
            self.held.extend_from_slice(bytes);
            let consumed = self.decoder.decode(&self.held, end, sink);
            self.held.drain(..consumed);
        }
    }
}

enum Next {
    Delivery(source_pipeline::Delivery),
    Idle,
    Closed,
}

/// The decode stage: runs until every `Output` is dropped and the channel is empty.
pub fn run_decoder(mut input: Input, shared: Arc<Shared>, tx: SyncSender<Job>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the decode stage");
            return;
        }
    };
    let mut streams: HashMap<String, StreamState> = HashMap::new();
    let mut rows = RowBuilder::default();
    let mut job = Job::default();
    let mut observed: Vec<Observation> = Vec::new();
    let mut last_send = Instant::now();
    let mut last_tick = Instant::now();
    let c = &shared.counters;
    loop {
        // Take what is queued without waiting; wait only when idle.
        let next = match input.try_recv() {
            Ok(d) => Next::Delivery(d),
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => Next::Closed,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                // Idle: whatever a sender waits for (acks) goes to the store now, and so do
                // completed minutes and alarm transitions (a quiet fleet still has them).
                if !job.receipts.is_empty()
                    || !job.batches.is_empty()
                    || job.alarm_state.is_some()
                    || (!rows.is_empty() && last_send.elapsed() >= SEND_EVERY)
                {
                    job.batches.extend(rows.finish());
                    if tx.send(std::mem::take(&mut job)).is_err() {
                        return;
                    }
                    last_send = Instant::now();
                }
                runtime.block_on(async {
                    match tokio::time::timeout(TICK, input.recv()).await {
                        Ok(Some(d)) => Next::Delivery(d),
                        Ok(None) => Next::Closed,
                        Err(_) => Next::Idle,
                    }
                })
            }
        };
        match next {
            Next::Closed => break,
            Next::Idle => {}
            Next::Delivery(mut d) => {
                let receipt = d.take_receipt();
                let stats = d.stats().cloned();
                c.bytes.fetch_add(d.bytes.len() as u64, Ordering::Relaxed);
                let state = streams.entry(d.stream.id.clone()).or_insert_with(|| {
                    let mut options = d.stream.options.clone();
                    if options.gateway_peers.is_none() {
                        options.gateway_peers = shared.gateway_peers.clone();
                    }
                    StreamState {
                        decoder: Decoder::new(&d.stream.source, options),
                        held: Vec::new(),
                    }
                });
                let mut sink = |p: Parsed| {
                    c.records.fetch_add(1, Ordering::Relaxed);
                    if let Some(s) = &stats {
                        s.records.fetch_add(1, Ordering::Relaxed);
                    }
                    match p {
                        Parsed::Event(e) => {
                            c.rows[table_of(&e) as usize].fetch_add(1, Ordering::Relaxed);
                            c.last_event_ms.fetch_max(e.ts, Ordering::Relaxed);
                            if let Some(s) = &stats {
                                s.last_event_ms.fetch_max(e.ts, Ordering::Relaxed);
                            }
                            rows.push_event(&e);
                            if let Some(notify) = &shared.notify {
                                notify.note_event(&e);
                            }
                            // Records without tunnel identity are stored but feed no tunnel.
                            if shared.live_metrics
                                && e.ts >= shared.live_since_ms
                                && let Ok(o) = Observation::from_event(&e)
                            {
                                observed.push(o);
                            }
                        }
                        Parsed::Reject(r) => {
                            c.rejects.fetch_add(1, Ordering::Relaxed);
                            c.rows[TableName::Rejects as usize].fetch_add(1, Ordering::Relaxed);
                            if let Some(s) = &stats {
                                s.rejects.fetch_add(1, Ordering::Relaxed);
                            }
                            rows.push_reject(&r, d.received_ms);
                        }
                    }
                };
                state.decode(&d.bytes, d.end, &mut sink);
                if let Some(s) = &stats {
                    if let Some(t) = d.replayed_until {
                        s.replayed_until_ms.fetch_max(t, Ordering::Relaxed);
                    }
                    if d.caught_up {
                        s.replaying.store(false, Ordering::Relaxed);
                    }
                }
                let held = state.held.len() as u64;
                if d.end {
                    streams.remove(&d.stream.id);
                }
                let has_checkpoint = !d.checkpoints.is_empty();
                for cp in std::mem::take(&mut d.checkpoints) {
                    job.marks.push(SourceMark {
                        source_key: cp.key,
                        offset: cp.offset.saturating_sub(held),
                        state: Some(cp.state),
                    });
                }
                job.receipts.push((receipt, stats, has_checkpoint));
                if rows.len() >= BATCH_ROWS {
                    job.batches.extend(rows.finish());
                    if tx.send(std::mem::take(&mut job)).is_err() {
                        return;
                    }
                    last_send = Instant::now();
                }
            }
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            feed_monitor(&shared, &mut observed, watermark(&shared), &mut job);
        }
    }
    // Every source has stopped: what a decoder still holds is an incomplete last record.
    for (_, mut state) in streams.drain() {
        if !state.held.is_empty() {
            let held = std::mem::take(&mut state.held);
            state.decoder.decode(&held, true, &mut |p| match p {
                Parsed::Event(e) => rows.push_event(&e),
                Parsed::Reject(r) => {
                    c.rejects.fetch_add(1, Ordering::Relaxed);
                    rows.push_reject(&r, now_ms());
                }
            });
        }
    }
    // Every source has stopped: nothing replayed is still on its way.
    let watermark = now_ms().max(c.last_event_ms.load(Ordering::Relaxed));
    feed_monitor(&shared, &mut observed, watermark, &mut job);
    job.batches.extend(rows.finish());
    if !job.is_empty() {
        let _ = tx.send(job);
    }
}

/// The live monitor's event-time watermark: the wall clock (or the newest record, if ahead of
/// it), unless a source is still replaying what it had at start; then the least of the
/// replaying sources' progress marks (no mark yet: no advance). The lateness window still
/// applies behind a mark, for a replay whose streams interleave loosely. A watermark that
/// followed the wall clock during a replay would count the rest of the replay late.
fn watermark(shared: &Shared) -> i64 {
    let replayed = (shared.sources.iter())
        .filter(|s| s.replaying.load(Ordering::Relaxed))
        .map(|s| s.replayed_until_ms.load(Ordering::Relaxed))
        .min();
    match replayed {
        Some(until) if until <= 0 => i64::MIN,
        Some(until) => until,
        None => now_ms().max(shared.counters.last_event_ms.load(Ordering::Relaxed)),
    }
}

/// How often the alarm state is saved when no transition forces it (wall clock).
const ALARM_STATE_EVERY_MS: i64 = 60_000;

/// Pushes what was parsed into the shared monitor, advances it to `watermark`, and adds the
/// completed minutes (`metrics` rows), the alarm transitions they cause (`alarm_history` rows)
/// and the alarm state to save after them to `job`.
fn feed_monitor(shared: &Shared, observed: &mut Vec<Observation>, watermark: i64, job: &mut Job) {
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
        return;
    }
    let mut rows = MetricRows::default();
    for p in &points {
        crate::metrics::push_datapoint(&mut rows, p);
    }
    shared.counters.rows[TableName::Metrics as usize]
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    job.batches.push((TableName::Metrics, rows.finish()));
    let (transitions, saved) = {
        let mut guard = match shared.alarms.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match guard.as_mut() {
            Some(evaluator) => {
                for p in &points {
                    evaluator.push(p);
                }
                // Every minute up to the newest one drained is complete.
                let complete = points.iter().map(|p| p.ts).max().unwrap_or(0) + 60_000;
                let transitions = evaluator.evaluate(complete);
                let mut file = shared.alarm_file.lock().unwrap_or_else(|p| p.into_inner());
                let due = now_ms() - file.1 >= ALARM_STATE_EVERY_MS;
                let saved = (due || !transitions.is_empty()).then(|| {
                    file.1 = now_ms();
                    (evaluator.save(), complete)
                });
                (transitions, saved)
            }
            None => (Vec::new(), None),
        }
    };
    if let Some(notify) = &shared.notify {
        notify.enqueue(&transitions);
    }
    if !transitions.is_empty() {
        shared.counters.rows[TableName::AlarmHistory as usize]
            .fetch_add(transitions.len() as u64, Ordering::Relaxed);
        job.batches.push((
            TableName::AlarmHistory,
            crate::alarms::history_rows(&transitions),
        ));
    }
    if saved.is_some() {
        job.alarm_state = saved;
    }
}

/// Saves the alarm state (keeping what the loaded file said about Health).
fn save_alarm_state(shared: &Shared, alarms: SavedAlarms, evaluated_until: i64) {
    let mut file = {
        let guard = shared.alarm_file.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.clone()
    };
    file.saved_ms = now_ms();
    file.evaluated_until = Some(evaluated_until.max(file.evaluated_until.unwrap_or(i64::MIN)));
    file.alarms = alarms;
    if let Err(e) = alarm_state::save(&shared.data, &file) {
        tracing::warn!(error = %e, "alarm state not saved");
    }
    shared
        .alarm_file
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .0 = file;
}

/// One Health round of the writer: the new `health_events` rows are appended and the state
/// file lists them (and the notifications queued) once they are durable. A failed read is
/// reported and retried next round; a failed append ends the writer like any other.
fn health_round(store: &mut Store, snapshot: &Snapshot, shared: &Shared) -> Result<(), StoreError> {
    let mut file = shared
        .alarm_file
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .0
        .clone();
    let mut batches = Vec::new();
    match crate::alarms::health_step(snapshot, &mut file, shared.notify.as_ref(), &mut batches) {
        Ok(Some((rows, _))) => {
            shared.counters.rows[TableName::HealthEvents as usize]
                .fetch_add(rows as u64, Ordering::Relaxed);
        }
        Ok(None) => return Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "Health round failed; retried next round");
            return Ok(());
        }
    }
    if !batches.is_empty() {
        store.append(batches, Vec::new())?;
    }
    let mut guard = shared.alarm_file.lock().unwrap_or_else(|p| p.into_inner());
    guard.0.health_rows = file.health_rows;
    guard.0.health_notified = file.health_notified;
    guard.0.saved_ms = now_ms();
    if let Err(e) = alarm_state::save(&shared.data, &guard.0) {
        tracing::warn!(error = %e, "alarm state not saved");
    }
    Ok(())
}

/// The store writer: appends what arrives (coalescing what is queued into one WAL write),
/// answers acks, publishes the unflushed snapshot, flushes to Parquet every few minutes and at
/// the end.
pub fn run_writer(
    mut store: Store,
    rx: Receiver<Job>,
    shared: Arc<Shared>,
    retention_days: Option<u32>,
) -> Result<Store, StoreError> {
    let mut last_flush = Instant::now();
    let mut last_maintenance = Instant::now();
    let mut last_health = Instant::now();
    // The Parquet file list changes only when this thread flushes.
    let mut files = Snapshot::list_files(store.root())?;
    let publish = |store: &Store, files: &BTreeMap<TableName, Vec<PathBuf>>| {
        shared.publish(Snapshot {
            files: files.clone(),
            unflushed: store.unflushed().clone(),
        })
    };
    publish(&store, &files);
    // A job whose append failed for want of disk: retried, before any later job (checkpoints of
    // one stream must reach the store in order), until it is stored. Its acks wait, and the
    // budget it holds makes the sources wait too (backpressure), so nothing is dropped.
    let mut held: Option<Job> = None;
    let mut retry_in = RETRY_FIRST;
    let mut health = StoreHealth::new(&shared);
    loop {
        let next = match held.take() {
            Some(job) => {
                std::thread::sleep(retry_in);
                retry_in = (retry_in * 2).min(RETRY_MAX);
                Ok(job)
            }
            None => rx.recv_timeout(Duration::from_secs(1)).map(|mut job| {
                while let Ok(more) = rx.try_recv() {
                    job.merge(more);
                    if job.batches.len() > 64 {
                        break;
                    }
                }
                job
            }),
        };
        match next {
            Ok(mut job) => {
                let flushes = store.flushes();
                let result = store.append(job.batches.clone(), job.marks.clone());
                if let Err(e) = &result {
                    health.failed("append", e);
                    // Stopping: the sources are gone or going, so waiting cannot help. Nothing
                    // of the job is acknowledged: its senders retry, file sources re-read.
                    if retryable(e) && !shared.stopping.load(Ordering::Relaxed) {
                        held = Some(job);
                        continue;
                    }
                } else {
                    health.ok(&store);
                    retry_in = RETRY_FIRST;
                }
                if result.is_ok()
                    && let Some((alarms, until)) = job.alarm_state.take()
                {
                    save_alarm_state(&shared, alarms, until);
                }
                if result.is_ok() {
                    // `append` flushes on its own past a size threshold.
                    if store.flushes() != flushes {
                        files = Snapshot::list_files(store.root())?;
                    }
                    // Visible before acknowledged: a sender that got its 200 can query its rows.
                    publish(&store, &files);
                }
                let now = now_ms();
                let answer = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
                for (receipt, stats, checkpoint) in job.receipts {
                    if checkpoint
                        && answer.is_ok()
                        && let Some(s) = stats
                    {
                        s.last_checkpoint_ms.store(now, Ordering::Relaxed);
                    }
                    receipt.complete(answer.clone());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_flush.elapsed() >= FLUSH_EVERY || (health.failing() && held.is_none()) {
            // A failed flush keeps its rows in the WAL and memory; it is tried again here.
            match store.flush() {
                Ok(_) => {
                    health.ok(&store);
                    files = Snapshot::list_files(store.root())?;
                    publish(&store, &files);
                }
                Err(e) => health.failed("flush", &e),
            }
            last_flush = Instant::now();
        }
        if shared.health && last_health.elapsed() >= HEALTH_EVERY {
            let snapshot = Snapshot {
                files: files.clone(),
                unflushed: store.unflushed().clone(),
            };
            if let Err(e) = health_round(&mut store, &snapshot, &shared) {
                health.failed("Health round", &e);
            }
            publish(&store, &files);
            last_health = Instant::now();
        }
        if last_maintenance.elapsed() >= MAINTENANCE_EVERY {
            // A long run flushes every few minutes: merge a day's small files, drop old days.
            let mut changed = false;
            match store.compact(COMPACT_MIN_FILES) {
                Ok(n) => changed |= n > 0,
                Err(e) => health.failed("compaction", &e),
            }
            if let Some(days) = retention_days {
                match store.apply_retention(now_ms(), days) {
                    Ok(n) => changed |= n > 0,
                    Err(e) => health.failed("retention", &e),
                }
            }
            if changed {
                files = Snapshot::list_files(store.root())?;
            }
            publish(&store, &files);
            last_maintenance = Instant::now();
        }
    }
    if shared.health {
        let snapshot = Snapshot {
            files: files.clone(),
            unflushed: store.unflushed().clone(),
        };
        health_round(&mut store, &snapshot, &shared)?;
    }
    store.flush()?;
    files = Snapshot::list_files(store.root())?;
    publish(&store, &files);
    // The decode thread is gone: the evaluator is as it ends.
    let last = match shared.alarms.lock() {
        Ok(g) => g.as_ref().map(|e| e.save()),
        Err(p) => p.into_inner().as_ref().map(|e| e.save()),
    };
    if let Some(alarms) = last {
        let until = shared
            .alarm_file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .evaluated_until
            .unwrap_or(i64::MIN);
        save_alarm_state(&shared, alarms, until);
    }
    Ok(store)
}

/// What a source task returns: its name and how it ended.
pub type SourceTasks = tokio::task::JoinSet<(String, Result<(), SourceError>)>;

/// Starts every source on `runtime` with its context (its own counters, the shared output,
/// shutdown signal and stored checkpoints) and consumes `out`: once the sources are gone, so is
/// the last sender, and the decode stage drains and ends.
pub fn spawn_sources(
    runtime: &tokio::runtime::Handle,
    sources: Vec<(String, Box<dyn Source>)>,
    stats: &[Arc<SourceStats>],
    out: source_pipeline::Output,
    shutdown: &source_pipeline::Shutdown,
    checkpoints: &Arc<source_pipeline::Checkpoints>,
) -> SourceTasks {
    let mut tasks = SourceTasks::new();
    for ((name, source), stats) in sources.into_iter().zip(stats) {
        let cx = source_pipeline::SourceContext {
            name: name.clone(),
            out: out.for_source(stats.clone()),
            shutdown: shutdown.clone(),
            stats: stats.clone(),
            checkpoints: checkpoints.clone(),
        };
        let fut = source.run(cx);
        tasks.spawn_on(async move { (name, fut.await) }, runtime);
    }
    tasks
}

/// What a run with sources needs (`serve`, `demo`, `ingest cloudwatch://`).
pub struct RunSpec<'a> {
    pub data: PathBuf,
    pub store: StoreOptions,
    /// The sources about to run (each gets its counters in [`Shared::sources`], in this order).
    pub sources: &'a [(String, Box<dyn Source>)],
    pub budget_bytes: usize,
    pub monitor: MonitorConfig,
    /// Whether records feed the live monitor (one-shot ingest recomputes metrics afterwards).
    pub live_metrics: bool,
    /// Records with an older event time are stored but not applied to the live tunnel state.
    pub live_since_ms: i64,
    pub retention_days: Option<u32>,
    pub description: String,
    /// Alarms evaluated as minutes complete (with `live_metrics`).
    pub alarms: Vec<AlarmDefinition>,
    /// The notifiers the alarms' `actions` name.
    pub notifiers: BTreeMap<String, Box<dyn Notifier>>,
    /// Health evaluated every [`HEALTH_EVERY`] (with `live_metrics`), its events notified to
    /// these notifiers; `None`: no Health.
    pub health_notify: Option<Vec<String>>,
    /// The inventory's tunnels by address, for gateway lines.
    pub gateway_peers: Option<Arc<tunnelwatch_parsers::gateway::PeerMap>>,
}

/// How often a running pipeline brings Health up to its newest stored minute.
pub const HEALTH_EVERY: Duration = Duration::from_secs(300);

/// Alarm notifications: definitions by name (for their actions), the outbox, the notifiers,
/// and each tunnel's recent error and warning message kinds (the probable cause a message
/// names).
pub struct Notify {
    pub definitions: HashMap<String, AlarmDefinition>,
    pub outbox: Outbox,
    pub notifiers: BTreeMap<String, Box<dyn Notifier>>,
    /// The notifiers Health events go to.
    pub health_notify: Vec<String>,
    recent: Mutex<RecentCauses>,
    /// Each tunnel's recent records that matter to a diagnosis.
    records: Mutex<RecentRecords>,
}

/// (vpn_id, tunnel_ip) → its recent records for a live diagnosis, oldest first.
type RecentRecords = HashMap<
    (Arc<str>, Arc<str>),
    std::collections::VecDeque<tunnelwatch_monitor::diagnose::Record>,
>;

/// (vpn_id, tunnel_ip) → its last error/warning records as (event time, kind).
type RecentCauses = HashMap<(Arc<str>, Arc<str>), Vec<(i64, MessageKind)>>;

/// How many recent error/warning records per tunnel are kept for probable causes.
const RECENT_CAUSES: usize = 16;

/// A connection's diagnosis, as a Health notification carries it.
pub type ConnectionDiagnosis = (Arc<str>, Diagnosis);

/// What a notification says about why: the recent error kinds and the top diagnosis.
#[derive(Debug, Default)]
pub struct Cause {
    pub kinds: Vec<String>,
    pub diagnosis: Option<tunnelwatch_monitor::diagnose::Diagnosis>,
}

/// How far before an alarm's evaluation range the records for its diagnosis go (an outage's
/// first records come before the periods that breach).
pub const DIAGNOSIS_LOOKBACK_MS: i64 = 3_600_000;

/// Records kept per tunnel for live diagnoses (the non-info ones and those that change state).
const RECENT_RECORDS: usize = 64;

/// The diagnosis of `records` (one connection's) that covers the transition `t`: on its tunnel
/// (any tunnel for a per-connection alarm), going on at `t.ts`, the most confident first.
pub fn top_diagnosis(
    records: &[tunnelwatch_monitor::diagnose::Record],
    t: &Transition,
) -> Option<tunnelwatch_monitor::diagnose::Diagnosis> {
    if records.is_empty() {
        return None;
    }
    let report = tunnelwatch_monitor::diagnose::diagnose_connection(&t.vpn_id, records, t.ts);
    tunnelwatch_monitor::diagnose::covering(report, t.tunnel_ip.as_deref(), t.ts)
}

/// How long a notification is retried before it is recorded as failed.
pub const NOTIFICATION_EXPIRY_MS: i64 = 24 * 3_600_000;

impl Notify {
    pub fn new(
        definitions: HashMap<String, AlarmDefinition>,
        outbox: Outbox,
        notifiers: BTreeMap<String, Box<dyn Notifier>>,
    ) -> Notify {
        Notify {
            definitions,
            outbox,
            notifiers,
            health_notify: Vec::new(),
            recent: Mutex::new(HashMap::new()),
            records: Mutex::new(HashMap::new()),
        }
    }

    /// Health events go to `names` too.
    pub fn with_health(mut self, names: Vec<String>) -> Notify {
        self.health_notify = names;
        self
    }

    /// Queues each weekly notification of `events` due by `until` that `done` (idempotency
    /// keys) does not hold, for the Health notifiers; returns the keys queued.
    pub fn enqueue_health(
        &self,
        events: &[HealthEvent],
        until: i64,
        done: &std::collections::BTreeSet<String>,
        diagnoses: &dyn Fn(&HealthEvent) -> Vec<ConnectionDiagnosis>,
    ) -> Vec<String> {
        use tunnelwatch_exporters::health_message::{health_idempotency_key, health_message};
        let mut keys = Vec::new();
        if self.health_notify.is_empty() {
            return keys;
        }
        for e in events {
            // Read the records behind the event once, and only if it has something to send.
            let mut found: Option<Vec<ConnectionDiagnosis>> = None;
            for &at in e.notified.iter().filter(|&&t| t <= until) {
                let key = health_idempotency_key(e, at);
                if done.contains(&key) {
                    continue;
                }
                let found = found.get_or_insert_with(|| diagnoses(e));
                let message = health_message(e, at, found);
                for n in &self.health_notify {
                    if let Err(err) = self.outbox.enqueue(n, &key, message.clone(), now_ms()) {
                        tracing::warn!(error = %err, notifier = %n, "outbox: notification not queued");
                    }
                }
                keys.push(key);
            }
        }
        keys
    }

    /// Remembers an error or warning record of a tunnel, and the records a diagnosis needs (the
    /// decode thread calls this).
    fn note_event(&self, e: &Event) {
        let (message, phases, transition, prefix) = match &e.body {
            EventBody::Activity(a) => (
                &a.message,
                (a.ike_phase1_state, a.ike_phase2_state),
                None,
                None,
            ),
            EventBody::Bgp(b) => {
                let c = b.message.captures();
                let transition = c
                    .from_state
                    .as_deref()
                    .map(Arc::from)
                    .zip(c.to_state.as_deref().map(Arc::from));
                let prefix = b
                    .route
                    .as_ref()
                    .and_then(|r| r.prefix.as_deref().map(Arc::from));
                (&b.message, (None, None), transition, prefix)
            }
            EventBody::Traffic(_) | EventBody::Health(_) | EventBody::Gateway(_) => return,
        };
        let (Some(vpn), Some(ip)) = (e.vpn_id(), e.tunnel_ip()) else {
            return;
        };
        let changes_state = phases.0.is_some() || transition.is_some();
        if message.severity != Severity::Info || changes_state {
            let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
            let list = records.entry((Arc::from(vpn), Arc::from(ip))).or_default();
            // Routine up records only matter after trouble: keep one of a run of them.
            let routine = message.severity == Severity::Info && transition.is_none();
            let last_routine =
                list.back()
                    .is_some_and(|r: &tunnelwatch_monitor::diagnose::Record| {
                        r.severity == Severity::Info && r.bgp_transition.is_none()
                    });
            if routine && last_routine {
                list.pop_back();
            }
            list.push_back(tunnelwatch_monitor::diagnose::Record {
                ts: e.ts,
                tunnel_ip: Arc::from(ip),
                kind: message.kind,
                severity: message.severity,
                phase1: phases.0,
                phase2: phases.1,
                bgp_transition: transition,
                prefix,
            });
            if list.len() > RECENT_RECORDS {
                list.pop_front();
            }
        }
        if message.severity == Severity::Info {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let list = recent.entry((Arc::from(vpn), Arc::from(ip))).or_default();
        list.push((e.ts, message.kind));
        if list.len() > RECENT_CAUSES {
            list.remove(0);
        }
    }

    /// The error/warning kinds of the transition's tunnel (or connection) in the `window_ms`
    /// before it, newest first, each once, at most 3.
    fn probable_cause(&self, t: &Transition, window_ms: i64) -> Vec<String> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let mut hits: Vec<(i64, MessageKind)> = recent
            .iter()
            .filter(|((vpn, ip), _)| {
                *vpn == t.vpn_id && t.tunnel_ip.as_ref().is_none_or(|tip| tip == ip)
            })
            .flat_map(|(_, list)| list.iter().copied())
            .filter(|(ts, _)| *ts <= t.ts && *ts > t.ts - window_ms)
            .collect();
        hits.sort_by_key(|h| std::cmp::Reverse(h.0));
        let mut kinds: Vec<String> = Vec::new();
        for (_, k) in hits {
            let k = k.as_str().to_owned();
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds.truncate(3);
        kinds
    }

    /// Writes the notifications of `transitions` (one per notifier its alarm's actions name for
    /// the new state) to the outbox, with probable causes and the diagnosis from the recent
    /// records.
    fn enqueue(&self, transitions: &[Transition]) {
        self.enqueue_with(transitions, &|t, window| Cause {
            kinds: self.probable_cause(t, window),
            diagnosis: self.recent_diagnosis(t, window),
        });
    }

    /// The top diagnosis of the transition's tunnel (or connection) from the recent records.
    fn recent_diagnosis(
        &self,
        t: &Transition,
        window_ms: i64,
    ) -> Option<tunnelwatch_monitor::diagnose::Diagnosis> {
        let records: Vec<tunnelwatch_monitor::diagnose::Record> = {
            let recent = self.records.lock().unwrap_or_else(|p| p.into_inner());
            recent
                .iter()
                .filter(|((vpn, _), _)| *vpn == t.vpn_id)
                .flat_map(|(_, list)| list.iter())
                .filter(|r| r.ts <= t.ts && r.ts > t.ts - window_ms - DIAGNOSIS_LOOKBACK_MS)
                .cloned()
                .collect()
        };
        top_diagnosis(&records, t)
    }

    /// Like `enqueue`, with causes from `cause(transition, window_ms)` (e.g. the stored
    /// records, for a one-shot ingest). Returns how many notifications were queued.
    pub fn enqueue_with(
        &self,
        transitions: &[Transition],
        cause: &dyn Fn(&Transition, i64) -> Cause,
    ) -> usize {
        let mut queued = 0;
        for t in transitions {
            let Some(def) = self.definitions.get(&*t.alarm_name) else {
                continue;
            };
            let names = match t.new_state.as_str() {
                "ALARM" => &def.actions.alarm,
                "OK" => &def.actions.ok,
                _ => &def.actions.insufficient_data,
            };
            if names.is_empty() {
                continue;
            }
            let cause = if t.new_state.as_str() == "ALARM" {
                cause(t, def.evaluation_range_ms())
            } else {
                Cause::default()
            };
            let cx = MessageContext {
                probable_cause: &cause.kinds,
                diagnosis: cause.diagnosis.as_ref(),
                ..Default::default()
            };
            let message = alarm_message(def, t, &cx);
            let key = idempotency_key(t);
            for n in names {
                match self.outbox.enqueue(n, &key, message.clone(), now_ms()) {
                    Ok(()) => queued += 1,
                    Err(e) => tracing::warn!(error = %e, "outbox: notification not queued"),
                }
            }
        }
        queued
    }
}

/// A run whose decode and writer threads are going; the sources are the caller's to start
/// (with [`spawn_sources`], handing them `out` and `checkpoints`).
pub struct Started {
    pub shared: Arc<Shared>,
    pub running: Running,
    pub out: source_pipeline::Output,
    pub checkpoints: Arc<source_pipeline::Checkpoints>,
    /// What opening the store recovered from the write-ahead log of an interrupted run.
    pub recovery: Recovery,
}

/// Opens the store (recovering its write-ahead log), applies retention, reads the stored
/// checkpoints and starts the decode and writer threads.
pub fn start_run(spec: RunSpec<'_>) -> Result<Started, PipelineError> {
    let (mut store, recovery) = Store::open(&spec.data, spec.store)?;
    if let Some(days) = spec.retention_days {
        store.apply_retention(now_ms(), days)?;
    }
    let checkpoints = Arc::new(checkpoints_of(&store));
    let (out, input) = source_pipeline::channel(spec.budget_bytes);
    let data_dir = spec.data.clone();
    let mut shared = Shared::new(
        spec.data,
        spec.description,
        spec.sources,
        &out,
        spec.monitor,
        spec.live_since_ms,
    )?;
    shared.live_metrics = spec.live_metrics;
    shared.gateway_peers = spec.gateway_peers;
    let health = spec.live_metrics && spec.health_notify.is_some();
    if spec.live_metrics && (!spec.alarms.is_empty() || health) && !spec.notifiers.is_empty() {
        shared.notify = Some(
            Notify::new(
                spec.alarms
                    .iter()
                    .map(|d| (d.name.clone(), d.clone()))
                    .collect(),
                Outbox::open(&data_dir, NOTIFICATION_EXPIRY_MS)?,
                spec.notifiers,
            )
            .with_health(spec.health_notify.clone().unwrap_or_default()),
        );
    }
    if health {
        shared.health = true;
        let loaded = alarm_state::load(&data_dir)?.unwrap_or_default();
        shared.alarm_file = Mutex::new((loaded, now_ms()));
    }
    if spec.live_metrics && !spec.alarms.is_empty() {
        let mut evaluator = AlarmEvaluator::new(spec.alarms)?;
        // A restart: instances keep their state and start new series at their next datapoint
        // (the minutes this process was not running are not data).
        let loaded = alarm_state::load(&data_dir)?.unwrap_or_default();
        evaluator.restore(&loaded.alarms, Resume::AfterGap);
        shared.alarm_file = Mutex::new((loaded, now_ms()));
        shared.alarms = Mutex::new(Some(evaluator));
    }
    let shared = Arc::new(shared);
    let running = start(store, input, shared.clone(), spec.retention_days)
        .map_err(|e| PipelineError::io("starting the pipeline threads", e))?;
    Ok(Started {
        shared,
        running,
        out,
        checkpoints,
        recovery,
    })
}

/// The pipeline's threads, started together and stopped in order.
pub struct Running {
    decoder: std::thread::JoinHandle<()>,
    writer: std::thread::JoinHandle<Result<Store, StoreError>>,
    /// The outbox sender and its stop flag (with notifiers configured).
    outbox: Option<(std::thread::JoinHandle<()>, Arc<AtomicBool>)>,
}

/// How often the outbox sender looks for due notifications.
const OUTBOX_EVERY: Duration = Duration::from_millis(250);

/// The outbox sender: delivers what is due until `stop`, then one last round.
fn run_outbox(shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let Some(notify) = &shared.notify else {
        return;
    };
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if let Err(e) = notify.outbox.deliver_due(now_ms(), &notify.notifiers) {
            tracing::warn!(error = %e, "outbox: delivery round failed");
        }
        if stopping {
            return;
        }
        std::thread::sleep(OUTBOX_EVERY);
    }
}

/// Starts the decode and writer threads on `input`.
pub fn start(
    store: Store,
    input: Input,
    shared: Arc<Shared>,
    retention_days: Option<u32>,
) -> std::io::Result<Running> {
    // Room for the decode thread to go on while the writer flushes to Parquet (~0.3 s); the
    // in-flight budget bounds what the queued jobs hold in any case.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(32);
    // What is stored is visible from the first request on, not from the writer thread's start.
    shared.publish(Snapshot {
        files: Snapshot::list_files(store.root()).map_err(std::io::Error::other)?,
        unflushed: store.unflushed().clone(),
    });
    let writer_shared = shared.clone();
    let writer = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run_writer(store, rx, writer_shared, retention_days))?;
    let outbox = match shared.notify {
        Some(_) => {
            let stop = Arc::new(AtomicBool::new(false));
            let (s, flag) = (shared.clone(), stop.clone());
            let handle = std::thread::Builder::new()
                .name("outbox".into())
                .spawn(move || run_outbox(s, flag))?;
            Some((handle, stop))
        }
        None => None,
    };
    let decoder = std::thread::Builder::new()
        .name("decoder".into())
        .spawn(move || run_decoder(input, shared, tx))?;
    Ok(Running {
        decoder,
        writer,
        outbox,
    })
}

impl Running {
    /// Waits for the pipeline to drain (call after every source and `Output` is gone).
    pub fn join(self) -> Result<Store, PipelineError> {
        self.decoder
            .join()
            .map_err(|_| PipelineError::Panicked("decode"))?;
        let store = self
            .writer
            .join()
            .map_err(|_| PipelineError::Panicked("store writer"))??;
        if let Some((handle, stop)) = self.outbox {
            stop.store(true, Ordering::Relaxed);
            handle
                .join()
                .map_err(|_| PipelineError::Panicked("outbox"))?;
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunnelwatch_parsers::DecoderOptions;

    /// Every way of cutting a stream into deliveries decodes to what one piece decodes to:
    /// NDJSON, a pretty-printed document spanning cuts, octet-counted syslog frames with a
    /// newline inside, text lines and a record cut at the end.
    #[test]
    fn any_cut_into_deliveries_decodes_like_one_piece() {
        let frame = "<134>1 2025-11-08T05:40:29.000Z gw01 vpn-1234abcd-1.2.3.4 - - - {\"event_timestamp\": 1762580429,\n \"details\": \"AWS tunnel processed request (id=12) for CREATE_CHILD_SA\"}";
        let input = format!(
            "{}\n{{\n  \"resource_id\": \"vpn-1234abcd_1.2.3.4\",\n  \"event_timestamp\": 1762580429641,\n  \"type\": \"BGPStatus\",\n  \"status\": \"UP\",\n  \"message\": {{\"details\": \"AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85\"}}\n}}\n{} {frame}{} {frame}this line means nothing\n{}\n{{\"resource_id\": \"vpn-1",
            r#"{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580429641,"type":"BGPStatus","status":"UP","message":{"details":"AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85"}}"#,
            frame.len(),
            frame.len(),
            r#"{"event_timestamp": 1762580430, "details": "AWS tunnel DPD timed out after 3 retransmits"}"#,
        );
        let bytes = input.as_bytes();
        let render = |p: Parsed| match p {
            Parsed::Event(e) => format!("event {} {:?}", e.ts, e.message().map(|m| m.kind)),
            Parsed::Reject(r) => format!("reject {:?} {}", r.error, r.position.offset),
        };
        let run = |cuts: &[usize]| {
            let mut state = StreamState {
                decoder: Decoder::new("t", DecoderOptions::default()),
                held: Vec::new(),
            };
            let mut out = Vec::new();
            let mut from = 0;
            for &cut in cuts.iter().chain([bytes.len()].iter()) {
                let end = cut == bytes.len();
                state.decode(&bytes[from..cut], end, &mut |p| out.push(render(p)));
                from = cut;
            }
            assert!(state.held.is_empty());
            out
        };
        let whole = run(&[]);
        assert_eq!(
            whole.iter().filter(|l| l.starts_with("event")).count(),
            5,
            "{whole:#?}"
        );
        assert_eq!(
            whole.iter().filter(|l| l.starts_with("reject")).count(),
            2,
            "{whole:#?}"
        );
        for a in 1..bytes.len() {
            assert_eq!(run(&[a]), whole, "cut at {a}");
        }
        for a in (1..bytes.len()).step_by(7) {
            for b in (a + 1..bytes.len()).step_by(11) {
                assert_eq!(run(&[a, b]), whole, "cuts at {a}, {b}");
            }
        }
    }
}

//! The contract between sources and the rest of the pipeline: what a source hands on
//! ([`Delivery`]), how it waits for room ([`Output`], the in-flight memory budget), how it learns
//! that its records are durable ([`Ack`]), how it is told to stop ([`Shutdown`]), what it counts
//! ([`SourceStats`]) and where it resumes after a restart ([`Checkpoints`]).
//!
//! Invariants:
//! - Every delivery holds budget permits for its bytes from the moment `send` returns until the
//!   store has appended the rows decoded from it (the permits are dropped with the delivery's
//!   [`Receipt`]); so the bytes in flight between sources and the WAL never exceed the budget.
//!   A delivery larger than the whole budget takes the whole budget.
//! - A [`Checkpoint`] travels with the bytes it covers and reaches the store in the same WAL
//!   append as their rows: after a crash, a source resumes exactly after what was stored.
//! - An [`Ack`] is answered only after that append returned (records durable), or with the
//!   error that prevented it.
//!
//! Limits: the channel itself is unbounded; the budget bounds it. Deliveries of one stream are
//! decoded in the order they were sent; deliveries of different streams interleave freely.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc, oneshot, watch};
use tunnelwatch_parsers::DecoderOptions;

/// Default in-flight budget: bytes received by sources and not yet durable.
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;
const PERMIT_BYTES: usize = 1024;

/// One byte stream inside a source (a file, a TCP connection, a CloudWatch log stream, an HTTP
/// request body). Each stream gets its own decoder, so a record split across two deliveries of
/// the same stream is joined, and records of different streams never mix.
#[derive(Debug)]
pub struct Stream {
    /// Unique while the stream is open (e.g. `syslog:tcp:127.0.0.1:5514<-127.0.0.1:40512`).
    pub id: String,
    /// What records carry in their `source` column (a file path, `syslog://…`, …).
    pub source: String,
    /// Format, log stream name and limits for the decoder.
    pub options: DecoderOptions,
}

/// Where a source resumes: an opaque key, the byte offset (or time) below which everything is
/// stored, and whatever else the source needs (inode, fingerprint, event ids). Last write wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub key: String,
    pub offset: u64,
    #[serde(default)]
    pub state: serde_json::Value,
}

/// Answered once the records of a delivery are durable (or could not be made so).
pub type Ack = oneshot::Sender<Result<(), String>>;

/// What a source hands to the pipeline.
#[derive(Debug)]
pub struct Delivery {
    pub stream: Arc<Stream>,
    pub bytes: Vec<u8>,
    /// The stream ends after these bytes: its decoder is flushed (an incomplete last record
    /// becomes a reject) and dropped.
    pub end: bool,
    /// Stored with the rows of these bytes (several, with different keys, when one source keeps
    /// more than one). The pipeline lowers each `offset` by the bytes its decoder still holds (an
    /// incomplete record), so a checkpoint never skips a record.
    pub checkpoints: Vec<Checkpoint>,
    pub ack: Option<Ack>,
    /// Wall-clock epoch ms of receipt (the `rejects.ts` of records that fail to parse).
    pub received_ms: i64,
    /// The source has caught up with what it had to replay once these bytes are decoded (see
    /// [`SourceStats::replaying`]).
    pub caught_up: bool,
    /// During a replay: every record the source will replay with an earlier event time (epoch
    /// ms) is in this delivery or an earlier one.
    pub replayed_until: Option<i64>,
    pub(crate) permit: Option<OwnedSemaphorePermit>,
    pub(crate) stats: Option<Arc<SourceStats>>,
}

impl Delivery {
    pub fn new(stream: Arc<Stream>, bytes: Vec<u8>) -> Delivery {
        Delivery {
            stream,
            bytes,
            end: false,
            checkpoints: Vec::new(),
            ack: None,
            received_ms: now_ms(),
            caught_up: false,
            replayed_until: None,
            permit: None,
            stats: None,
        }
    }

    /// Marks the last delivery of a replay: once its bytes are decoded, the source no longer
    /// holds the event-time watermark back.
    pub fn caught_up(mut self) -> Delivery {
        self.caught_up = true;
        self
    }

    /// Marks how far a replay has come: no record the source has yet to replay is older than
    /// `ts_ms`. The live monitor's watermark moves up to it once these bytes are decoded.
    pub fn replayed_until(mut self, ts_ms: i64) -> Delivery {
        self.replayed_until = Some(ts_ms);
        self
    }

    pub fn end(mut self) -> Delivery {
        self.end = true;
        self
    }

    pub fn with_checkpoint(mut self, c: Checkpoint) -> Delivery {
        self.checkpoints.push(c);
        self
    }

    pub fn with_ack(mut self, ack: Ack) -> Delivery {
        self.ack = Some(ack);
        self
    }

    /// Splits off what must outlive decoding: the ack, the budget permits and the stats to
    /// credit. The pipeline answers the receipt after the store append.
    pub fn take_receipt(&mut self) -> Receipt {
        Receipt {
            ack: self.ack.take(),
            _permit: self.permit.take(),
        }
    }

    /// The stats of the source that sent it (records and rejects are credited after decoding).
    pub fn stats(&self) -> Option<&Arc<SourceStats>> {
        self.stats.as_ref()
    }
}

/// Held by the pipeline until the rows of a delivery are appended to the store.
#[derive(Debug)]
pub struct Receipt {
    ack: Option<Ack>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Receipt {
    /// Answers the ack (if any) and releases the budget.
    pub fn complete(self, result: Result<(), String>) {
        if let Some(ack) = self.ack {
            let _ = ack.send(result);
        }
    }
}

/// Why a send did not happen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    #[error("the pipeline is saturated (in-flight budget used up)")]
    Full,
    #[error("the pipeline has stopped")]
    Closed,
}

/// The sending half a source uses. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Output {
    tx: mpsc::UnboundedSender<Delivery>,
    budget: Arc<Semaphore>,
    budget_permits: u32,
    stats: Option<Arc<SourceStats>>,
}

/// The receiving half, read by the pipeline's decode stage.
pub type Input = mpsc::UnboundedReceiver<Delivery>;

/// Creates the channel between sources and the decode stage with a budget of `budget_bytes`.
pub fn channel(budget_bytes: usize) -> (Output, Input) {
    let permits = (budget_bytes / PERMIT_BYTES)
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Output {
            tx,
            budget: Arc::new(Semaphore::new(permits as usize)),
            budget_permits: permits,
            stats: None,
        },
        rx,
    )
}

impl Output {
    /// The same channel, crediting `stats`.
    pub fn for_source(&self, stats: Arc<SourceStats>) -> Output {
        Output {
            stats: Some(stats),
            ..self.clone()
        }
    }

    fn permits_for(&self, bytes: usize) -> u32 {
        (bytes.div_ceil(PERMIT_BYTES) as u32).clamp(1, self.budget_permits)
    }

    /// Bytes of budget currently free.
    pub fn budget_free_bytes(&self) -> usize {
        self.budget.available_permits() * PERMIT_BYTES
    }

    /// The whole budget in bytes.
    pub fn budget_bytes(&self) -> usize {
        self.budget_permits as usize * PERMIT_BYTES
    }

    /// A reading of the budget that does not keep the channel open.
    pub fn budget_gauge(&self) -> BudgetGauge {
        BudgetGauge {
            budget: self.budget.clone(),
            total: self.budget_bytes(),
        }
    }

    /// Waits for budget, then hands the delivery on (TCP and file sources: the sender is slowed
    /// because the source stops reading while it waits).
    pub async fn send(&self, mut d: Delivery) -> Result<(), SendError> {
        let n = self.permits_for(d.bytes.len());
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| SendError::Closed)?;
        self.count(&d);
        d.permit = Some(permit);
        d.stats = self.stats.clone();
        self.tx.send(d).map_err(|_| SendError::Closed)
    }

    /// Waits at most `wait` for budget, then hands the delivery on; `Full` if none came (HTTP
    /// answers 503). Waiters are served in arrival order, so a request queues behind the TCP
    /// and file sources already waiting instead of losing every race to them.
    pub async fn send_within(&self, mut d: Delivery, wait: Duration) -> Result<(), SendError> {
        let n = self.permits_for(d.bytes.len());
        let permit =
            match tokio::time::timeout(wait, self.budget.clone().acquire_many_owned(n)).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(SendError::Closed),
                Err(_) => return Err(SendError::Full),
            };
        self.count(&d);
        d.permit = Some(permit);
        d.stats = self.stats.clone();
        self.tx.send(d).map_err(|_| SendError::Closed)
    }

    /// Hands the delivery on only if the budget has room now (UDP drops, Firehose answers 503).
    pub fn try_send(&self, mut d: Delivery) -> Result<(), SendError> {
        let n = self.permits_for(d.bytes.len());
        let permit = match self.budget.clone().try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits) => return Err(SendError::Full),
            Err(TryAcquireError::Closed) => return Err(SendError::Closed),
        };
        self.count(&d);
        d.permit = Some(permit);
        d.stats = self.stats.clone();
        self.tx.send(d).map_err(|_| SendError::Closed)
    }

    /// `send` for sources running on a plain thread (never call it from an async task).
    pub fn blocking_send(&self, d: Delivery) -> Result<(), SendError> {
        futures::executor::block_on(self.send(d))
    }

    fn count(&self, d: &Delivery) {
        if let Some(s) = &self.stats {
            s.bytes.fetch_add(d.bytes.len() as u64, Ordering::Relaxed);
            s.last_received_ms.store(d.received_ms, Ordering::Relaxed);
        }
    }
}

/// Reads the in-flight budget (for self-metrics).
#[derive(Clone, Debug)]
pub struct BudgetGauge {
    budget: Arc<Semaphore>,
    total: usize,
}

impl BudgetGauge {
    pub fn total_bytes(&self) -> usize {
        self.total
    }

    /// Bytes received by sources and not yet durable.
    pub fn in_flight_bytes(&self) -> usize {
        self.total
            .saturating_sub(self.budget.available_permits() * PERMIT_BYTES)
    }
}

/// Counters of one source, shared with the pipeline (records, rejects) and the exporter.
#[derive(Debug, Default)]
pub struct SourceStats {
    pub name: String,
    pub kind: &'static str,
    /// Bytes handed to the pipeline.
    pub bytes: AtomicU64,
    /// Records decoded from them (events + rejects).
    pub records: AtomicU64,
    pub rejects: AtomicU64,
    /// Deliveries dropped because the budget was used up (UDP) or refused with 503 (HTTP).
    pub dropped: AtomicU64,
    /// Requests answered as already stored and not stored again (Firehose retries).
    pub duplicates: AtomicU64,
    /// Requests, connections or frames refused: bad auth, bad framing, body too large, TLS
    /// handshake failures.
    pub refused: AtomicU64,
    /// Open connections (network sources) or open files (file source).
    pub open: AtomicU64,
    /// Errors talking to the outside (I/O, API calls); the source retries.
    pub errors: AtomicU64,
    /// Epoch ms of the newest event time decoded from this source (0 = none yet).
    pub last_event_ms: AtomicI64,
    /// Epoch ms of the last delivery.
    pub last_received_ms: AtomicI64,
    /// Epoch ms at which a checkpoint of this source was last made durable (0 = never).
    pub last_checkpoint_ms: AtomicI64,
    /// The address a network source bound (set once it listens; `serve` prints it).
    pub listening: std::sync::OnceLock<String>,
    /// The source is replaying records it already had when it started (a simulated history, a
    /// file's backlog): until it has caught up, the live monitor's event-time watermark stays at
    /// [`SourceStats::replayed_until_ms`] instead of following the wall clock, so the replay is
    /// not counted late. Set by the pipeline from [`crate::sources::Source::replays_at_start`],
    /// cleared when a [`Delivery::caught_up`] delivery has been decoded.
    pub replaying: AtomicBool,
    /// Epoch ms before which every replayed record has been decoded (the newest
    /// [`Delivery::replayed_until`] decoded; 0 = none yet).
    pub replayed_until_ms: AtomicI64,
}

impl SourceStats {
    pub fn new(name: &str, kind: &'static str) -> SourceStats {
        SourceStats {
            name: name.to_owned(),
            kind,
            ..Default::default()
        }
    }
}

/// A stop signal every source watches. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The trigger side of [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

pub fn shutdown() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown is triggered (or the trigger is dropped).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// The checkpoints stored when the pipeline started, by key (read-only for sources).
#[derive(Debug, Default, Clone)]
pub struct Checkpoints(pub BTreeMap<String, Checkpoint>);

impl Checkpoints {
    pub fn get(&self, key: &str) -> Option<&Checkpoint> {
        self.0.get(key)
    }

    /// All checkpoints whose key starts with `prefix`.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Checkpoint> + 'a {
        self.0
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, c)| c)
    }
}

/// What every source gets when it runs.
#[derive(Clone, Debug)]
pub struct SourceContext {
    pub name: String,
    pub out: Output,
    pub shutdown: Shutdown,
    pub stats: Arc<SourceStats>,
    pub checkpoints: Arc<Checkpoints>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Arc<Stream> {
        Arc::new(Stream {
            id: "t".into(),
            source: "t".into(),
            options: DecoderOptions::default(),
        })
    }

    #[tokio::test]
    async fn budget_bounds_in_flight_bytes_until_receipts_complete() {
        let (out, mut input) = channel(4096);
        out.try_send(Delivery::new(stream(), vec![b'x'; 3000]))
            .unwrap();
        // 3 KiB of 4 KiB in flight: 2 KiB more does not fit.
        assert_eq!(
            out.try_send(Delivery::new(stream(), vec![b'x'; 2000])),
            Err(SendError::Full)
        );
        let mut d = input.recv().await.unwrap();
        let receipt = d.take_receipt();
        assert_eq!(out.budget_free_bytes(), 1024);
        receipt.complete(Ok(()));
        assert_eq!(out.budget_free_bytes(), 4096);
        out.try_send(Delivery::new(stream(), vec![b'x'; 2000]))
            .unwrap();
        // A delivery larger than the budget takes all of it rather than waiting forever.
        let waiter = {
            let out = out.clone();
            tokio::spawn(async move { out.send(Delivery::new(stream(), vec![b'x'; 10_000])).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(input.recv().await.unwrap().take_receipt());
        waiter.await.unwrap().unwrap();
        assert_eq!(out.budget_free_bytes(), 0);
    }

    /// `send_within` waits in line: budget freed goes to it before a sender that came after,
    /// and with no budget in time it gives up with `Full`.
    #[tokio::test]
    async fn send_within_waits_in_line_then_gives_up() {
        let (out, mut input) = channel(4096);
        out.try_send(Delivery::new(stream(), vec![b'x'; 4096]))
            .unwrap();
        let first = {
            let out = out.clone();
            tokio::spawn(async move {
                out.send_within(
                    Delivery::new(stream(), vec![b'a'; 4096]),
                    Duration::from_secs(30),
                )
                .await
            })
        };
        tokio::task::yield_now().await;
        let later = {
            let out = out.clone();
            tokio::spawn(async move { out.send(Delivery::new(stream(), vec![b'b'; 1024])).await })
        };
        tokio::task::yield_now().await;
        drop(input.recv().await.unwrap().take_receipt());
        first.await.unwrap().unwrap();
        let held = input.recv().await.unwrap();
        assert_eq!(held.bytes[0], b'a');
        tokio::task::yield_now().await;
        assert!(!later.is_finished());
        // The budget is held again: a short wait ends in Full.
        assert_eq!(
            out.send_within(
                Delivery::new(stream(), vec![b'c'; 10]),
                Duration::from_millis(50)
            )
            .await,
            Err(SendError::Full)
        );
        later.abort();
        drop(held);
    }

    #[tokio::test]
    async fn ack_reports_the_store_result() {
        let (out, mut input) = channel(4096);
        let (tx, rx) = oneshot::channel();
        out.send(Delivery::new(stream(), b"x\n".to_vec()).with_ack(tx))
            .await
            .unwrap();
        input
            .recv()
            .await
            .unwrap()
            .take_receipt()
            .complete(Err("disk full".into()));
        assert_eq!(rx.await.unwrap(), Err("disk full".to_string()));
    }

    #[test]
    fn checkpoints_by_prefix() {
        let mut c = Checkpoints::default();
        for k in ["cw:a", "cw:b", "file:x"] {
            c.0.insert(
                k.into(),
                Checkpoint {
                    key: k.into(),
                    offset: 1,
                    state: serde_json::Value::Null,
                },
            );
        }
        let keys: Vec<_> = c.with_prefix("cw:").map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["cw:a", "cw:b"]);
    }
}

//! Metrics from stored events: the recomputation behind `tunnelwatch metrics rebuild`, the
//! incremental [`update`] run at the end of every `ingest`, and the stored datapoints read back
//! for export.
//!
//! Rebuild reads the tunnel activity, BGP and traffic rows back through the SQL engine in
//! `(vpn_id, tunnel_ip, ts)` order, runs one `tunnelwatch_monitor::Monitor` per connection
//! (both tunnels, merged in event-time order) up to the watermark — the newest event time in
//! the store — and writes the datapoints as the `metrics` table's Parquet files. It saves each
//! connection's monitor, as it stands at the watermark, in the checkpoint
//! ([`crate::metrics_checkpoint`]). [`update`] goes on from there: it reads only the rows of the
//! WAL segments flushed after the checkpoint, feeds them to the restored monitors, advances
//! every connection (also those without new rows: their state holds) to the new watermark and
//! writes those datapoints as one more generation — the same table a rebuild would write, for
//! the cost of the new rows and the new minutes. When that cannot be exact (no checkpoint, a
//! new record not later than the checkpoint's watermark, metrics files the checkpoint does not
//! know) it rebuilds and says why.
//!
//! Invariants and limits:
//! - The `metrics` table is derived data and is rewritten, never appended to: a rebuild writes
//!   a new generation of files (`m<gen>-…`), then deletes the older generation's files in the
//!   days it covers, so recomputed datapoints replace the old ones instead of doubling them.
//!   A crash between the two steps can leave both generations of a day until the next rebuild
//!   (or ingest) removes the older one.
//! - Every rebuild reads **all** stored events: a tunnel's state holds across any gap, so the
//!   minutes after `since` depend on records before it. `since` only limits which day
//!   partitions are rewritten (the UTC day of `since` onwards; earlier days keep their
//!   datapoints).
//! - An update writes generation `checkpoint + 1` and then the checkpoint naming it; a crash in
//!   between leaves a generation the checkpoint does not know, and the next update rebuilds
//!   (which retires every older generation). Compaction must run after the metrics step: the
//!   checkpoint tells new rows from old by the WAL segments their files hold.
//! - Memory: one connection's records at a time in the monitor, the datapoints of up to
//!   `ROWS_PER_WRITE` rows, and DataFusion's sort (spills under its memory limit).
//! - Sync/async: the functions here are synchronous. Each owns a current-thread runtime and
//!   pulls one DataFusion batch at a time with `block_on` from plain code; everything else
//!   (the monitor, the store's writes) runs between pulls, never inside async code.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use tunnelwatch_monitor::{
    Datapoint, MetricName, Monitor, MonitorConfig, Observation, ObservationBody, bgp_session,
    kind_from_str,
};
use tunnelwatch_parsers::PhaseState;
use tunnelwatch_queries::{
    Engine, MetricRow, MetricRows, QueryOptions, Snapshot, Store, StoreError, TableName,
};

use crate::error::PipelineError;
use crate::metrics_checkpoint as checkpoint;

/// Datapoints held before they are written as Parquet.
pub const ROWS_PER_WRITE: usize = 1 << 20;

/// What a rebuild did.
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub datapoints: u64,
    pub tunnels: u64,
    pub records: u64,
    pub watermark: Option<i64>,
    /// Parquet writes of `ROWS_PER_WRITE` datapoints or fewer.
    pub chunks: u64,
}

const EVENTS_SQL: &str = "SELECT ts, vpn_id, tunnel_ip, src, p1, p2, message_kind, type, status, to_state, bytes_in, bytes_out, concentrator_id FROM (
  SELECT ts, vpn_id, tunnel_ip, 0 AS src, source_offset, source_index, ike_phase1_state AS p1, ike_phase2_state AS p2,
         message_kind, CAST(NULL AS VARCHAR) AS type, CAST(NULL AS VARCHAR) AS status, CAST(NULL AS VARCHAR) AS to_state,
         CAST(NULL AS BIGINT) AS bytes_in, CAST(NULL AS BIGINT) AS bytes_out, CAST(NULL AS VARCHAR) AS concentrator_id
  FROM tunnel_activity WHERE vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL
  UNION ALL
  SELECT ts, vpn_id, tunnel_ip, 1, source_offset, source_index, NULL, NULL, message_kind, type, status, to_state, NULL, NULL, NULL
  FROM bgp_events WHERE vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL
  UNION ALL
  SELECT ts, vpn_id, tunnel_ip, 2, source_offset, source_index, NULL, NULL, NULL, NULL, NULL, NULL, bytes_in, bytes_out, concentrator_id
  FROM traffic WHERE vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL)
ORDER BY vpn_id, tunnel_ip, ts, src, source_offset, source_index";

const WATERMARK_SQL: &str = "SELECT max(ts) AS ts FROM (SELECT max(ts) AS ts FROM tunnel_activity
  UNION ALL SELECT max(ts) FROM bgp_events UNION ALL SELECT max(ts) FROM traffic)";

fn runtime() -> Result<tokio::runtime::Runtime, PipelineError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PipelineError::io("starting the query runtime", e))
}

/// A query's batches, pulled one at a time from synchronous code.
pub(crate) struct Batches {
    rt: tokio::runtime::Runtime,
    stream: SendableRecordBatchStream,
}

impl Batches {
    pub(crate) fn open(snapshot: &Snapshot, sql: &str) -> Result<Batches, PipelineError> {
        let rt = runtime()?;
        let stream = rt.block_on(async {
            let engine = Engine::open(snapshot, QueryOptions::default()).await?;
            engine.stream(sql).await
        })?;
        Ok(Batches { rt, stream })
    }

    pub(crate) fn next(&mut self) -> Option<Result<RecordBatch, PipelineError>> {
        self.rt
            .block_on(self.stream.next())
            .map(|b| b.map_err(|e| StoreError::from(e).into()))
    }
}

fn column(batch: &RecordBatch, i: usize, to: &DataType) -> Result<Arc<dyn Array>, PipelineError> {
    Ok(cast(batch.column(i), to)?)
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The `N` timestamp columns of the first row of `sql` (an aggregate); `None` for a null or
/// no row.
fn first_row_times<const N: usize>(
    snapshot: &Snapshot,
    sql: &str,
) -> Result<[Option<i64>; N], PipelineError> {
    let mut out = [None; N];
    let mut batches = Batches::open(snapshot, sql)?;
    if let Some(b) = batches.next().transpose()?
        && b.num_rows() > 0
    {
        for (i, t) in out.iter_mut().enumerate() {
            let c = column(&b, i, &ts_type())?;
            let c = c.as_primitive::<TimestampMillisecondType>();
            *t = (!c.is_null(0)).then(|| c.value(0));
        }
    }
    Ok(out)
}

/// Recomputes the `metrics` table of the store's data directory (see the module docs):
/// the days from `since` on (all when `None`).
pub fn rebuild(store: &Store, since: Option<i64>) -> Result<Rebuilt, PipelineError> {
    rebuild_in_chunks(store, since, ROWS_PER_WRITE)
}

/// [`rebuild`], writing a Parquet chunk every `rows_per_write` datapoints.
pub fn rebuild_in_chunks(
    store: &Store,
    since: Option<i64>,
    rows_per_write: usize,
) -> Result<Rebuilt, PipelineError> {
    let snapshot = Snapshot {
        files: Snapshot::list_files(store.root())?,
        unflushed: store.unflushed().clone(),
    };
    let [watermark] = first_row_times(&snapshot, WATERMARK_SQL)?;
    let mut out = Rebuilt {
        watermark,
        ..Default::default()
    };
    let keep_before_day = since.map(|t| t.div_euclid(86_400_000));
    let mut writer = MetricsWriter::new(
        store,
        rows_per_write,
        keep_before_day.map(|d| d * 86_400_000),
    )?;
    // The checkpoint of this computation, unless rows still wait in memory (they belong to no
    // flushed WAL segment the next one could tell apart).
    let mut checkpoint = match (watermark, snapshot.unflushed.values().all(Vec::is_empty)) {
        (Some(w), true) => Some(writer.checkpoint(w)?),
        _ => None,
    };
    if let Some(w) = watermark {
        let mut batches = Batches::open(&snapshot, EVENTS_SQL)?;
        let mut current: Option<(Arc<str>, Monitor)> = None;
        while let Some(batch) = batches.next() {
            for obs in observations(&batch?)? {
                out.records += 1;
                if current.as_ref().map(|(v, _)| &**v) != Some(&*obs.vpn_id) {
                    if let Some((vpn, m)) = current.take() {
                        finish(vpn, m, w, &mut writer, checkpoint.as_mut(), &mut out)?;
                    }
                    current = Some((obs.vpn_id.clone(), batch_monitor()?));
                }
                if let Some((_, m)) = current.as_mut() {
                    m.push(obs);
                }
            }
        }
        if let Some((vpn, m)) = current.take() {
            finish(vpn, m, w, &mut writer, checkpoint.as_mut(), &mut out)?;
        }
    }
    writer.flush()?;
    out.chunks = writer.chunk;
    // Retire the older generations: every day they hold from `since` on (all when no `since`).
    for f in store.segments().list(TableName::Metrics)? {
        if writer.wrote(&f) {
            continue;
        }
        if keep_before_day.is_none_or(|d| f.day >= d) {
            store.segments().delete(&f)?;
        }
    }
    match checkpoint {
        Some(c) => c.commit()?,
        None => checkpoint::remove(store.root())?,
    }
    Ok(out)
}

/// The newest WAL segment whose rows the event tables' files hold.
fn covered_seq(store: &Store) -> Result<u64, PipelineError> {
    let mut newest = 0;
    for t in EVENT_TABLES {
        for f in store.segments().list(t)? {
            newest = newest.max(f.wal_seqs().map_or(0, |(_, last)| last));
        }
    }
    Ok(newest)
}

/// The tables the metrics come from.
const EVENT_TABLES: [TableName; 3] = [
    TableName::TunnelActivity,
    TableName::BgpEvents,
    TableName::Traffic,
];

/// What [`update`] did.
#[derive(Debug, Default)]
pub struct Updated {
    pub rebuilt: Rebuilt,
    /// Why everything was recomputed; `None` when only the new records were read.
    pub full_because: Option<String>,
}

/// Brings the `metrics` table up to what is stored now (after an ingest): from the checkpoint
/// of the last computation when it can — the connections' monitors restored at its watermark,
/// fed only the event rows of the WAL segments flushed since, advanced to the new watermark,
/// their datapoints written as a new generation — else by a full [`rebuild`]. It rebuilds when
/// there is no usable checkpoint, when metrics files exist that the checkpoint does not
/// account for (a live `serve`, an interrupted computation), when a file holds rows from both
/// sides of the checkpoint, or when a new record is not later than the checkpoint's
/// watermark (it would change minutes already written). Either way the table ends up as a
/// full rebuild would leave it.
pub fn update(store: &Store) -> Result<Updated, PipelineError> {
    update_in_chunks(store, ROWS_PER_WRITE)
}

/// [`update`], writing a Parquet chunk every `rows_per_write` datapoints.
pub fn update_in_chunks(store: &Store, rows_per_write: usize) -> Result<Updated, PipelineError> {
    match incremental(store, rows_per_write)? {
        Ok(rebuilt) => Ok(Updated {
            rebuilt,
            full_because: None,
        }),
        Err(reason) => Ok(Updated {
            rebuilt: rebuild_in_chunks(store, None, rows_per_write)?,
            full_because: Some(reason),
        }),
    }
}

/// The `m<generation>` of a metrics generation file.
fn generation_of(name: &str) -> Option<u64> {
    name.strip_prefix('m')?.get(..20)?.parse().ok()
}

/// The incremental computation of [`update`]; `Ok(Err(why not))` when it cannot be used.
fn incremental(
    store: &Store,
    rows_per_write: usize,
) -> Result<Result<Rebuilt, String>, PipelineError> {
    if !store.unflushed().values().all(Vec::is_empty) {
        return Ok(Err("rows are not flushed yet".into()));
    }
    let mut saved = match checkpoint::Reader::open(store.root()) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Err("no checkpoint of an earlier computation".into())),
        Err(e) => return Ok(Err(format!("the checkpoint is unusable: {e}"))),
    };
    let h = saved.header;
    for f in store.segments().list(TableName::Metrics)? {
        if generation_of(&f.name).is_none_or(|g| g > h.generation) {
            return Ok(Err(format!(
                "metrics file {} is not from the checkpoint's computation",
                f.relative_path()
            )));
        }
    }
    let root = std::path::absolute(store.root())
        .map_err(|e| PipelineError::io(store.root().display().to_string(), e))?;
    let mut files = std::collections::BTreeMap::new();
    let mut new_files = 0;
    for t in EVENT_TABLES {
        let mut list = Vec::new();
        for f in store.segments().list(t)? {
            match f.wal_seqs() {
                Some((_, last)) if last <= h.covered_seq => {}
                Some((first, _)) if first > h.covered_seq => {
                    list.push(root.join(f.relative_path()))
                }
                _ => {
                    return Ok(Err(format!(
                        "{} holds rows from before and after the checkpoint",
                        f.relative_path()
                    )));
                }
            }
        }
        new_files += list.len();
        files.insert(t, list);
    }
    if new_files == 0 {
        return Ok(Ok(Rebuilt {
            watermark: Some(h.watermark_ms),
            ..Default::default()
        }));
    }
    let new = Snapshot {
        files,
        unflushed: Default::default(),
    };
    let [Some(first), Some(last)] = first_row_times(&new, SPAN_SQL)? else {
        // New files without rows: nothing changes.
        return Ok(Ok(Rebuilt {
            watermark: Some(h.watermark_ms),
            ..Default::default()
        }));
    };
    if first <= h.watermark_ms {
        return Ok(Err(format!(
            "new records from {} are not later than the stored metrics' end {}",
            tunnelwatch_parsers::time::format_ms(first),
            tunnelwatch_parsers::time::format_ms(h.watermark_ms)
        )));
    }
    let w = last;
    let mut writer = MetricsWriter::new(store, rows_per_write, None)?;
    let mut next = writer.checkpoint(w)?;
    let mut out = Rebuilt {
        watermark: Some(w),
        ..Default::default()
    };
    let late = carry_forward(&new, &mut saved, w, &mut writer, &mut next, &mut out)?;
    if let Some(vpn) = late {
        // Undo this generation; the caller recomputes everything.
        for f in store.segments().list(TableName::Metrics)? {
            if writer.wrote(&f) {
                store.segments().delete(&f)?;
            }
        }
        return Ok(Err(format!(
            "a new record of {vpn} is older than its connection's saved state"
        )));
    }
    writer.flush()?;
    out.chunks = writer.chunk;
    next.commit()?;
    Ok(Ok(out))
}

/// Feeds the new records (`new`, in connection order) to the saved monitors (`saved`, in the
/// same order; a new one for a connection it lacks), advances every connection to `w`, writes
/// the datapoints and the next checkpoint. Returns the connection of a record a monitor refused
/// as late (nothing is then complete).
fn carry_forward(
    new: &Snapshot,
    saved: &mut checkpoint::Reader,
    w: i64,
    writer: &mut MetricsWriter<'_>,
    next: &mut checkpoint::Writer,
    out: &mut Rebuilt,
) -> Result<Option<Arc<str>>, PipelineError> {
    let mut waiting = saved.next_connection()?;
    let mut current: Option<(Arc<str>, Monitor)> = None;
    let mut batches = Batches::open(new, EVENTS_SQL)?;
    while let Some(batch) = batches.next() {
        for obs in observations(&batch?)? {
            out.records += 1;
            if current.as_ref().map(|(v, _)| &**v) != Some(&*obs.vpn_id) {
                if let Some((vpn, m)) = current.take() {
                    finish(vpn, m, w, writer, Some(&mut *next), out)?;
                }
                // The saved connections without new records, up to this one.
                while let Some((vpn, _)) = &waiting
                    && **vpn < *obs.vpn_id
                {
                    let (vpn, m) = waiting.take().expect("just matched");
                    finish(vpn, m, w, writer, Some(&mut *next), out)?;
                    waiting = saved.next_connection()?;
                }
                let m = match waiting.take() {
                    Some((vpn, m)) if vpn == obs.vpn_id => {
                        waiting = saved.next_connection()?;
                        m
                    }
                    other => {
                        waiting = other;
                        batch_monitor()?
                    }
                };
                current = Some((obs.vpn_id.clone(), m));
            }
            let (vpn, m) = current.as_mut().expect("set above");
            if m.push(obs) == tunnelwatch_monitor::Pushed::Late {
                return Ok(Some(vpn.clone()));
            }
        }
    }
    if let Some((vpn, m)) = current.take() {
        finish(vpn, m, w, writer, Some(&mut *next), out)?;
    }
    while let Some((vpn, m)) = waiting.take() {
        finish(vpn, m, w, writer, Some(&mut *next), out)?;
        waiting = saved.next_connection()?;
    }
    Ok(None)
}

const SPAN_SQL: &str = "SELECT min(lo) AS lo, max(hi) AS hi FROM (
  SELECT min(ts) AS lo, max(ts) AS hi FROM tunnel_activity WHERE vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL
  UNION ALL SELECT min(ts), max(ts) FROM bgp_events WHERE vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL
  UNION ALL SELECT min(ts), max(ts) FROM traffic WHERE vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL)";

/// A monitor for recomputation: the records are complete and merged in order, so no lateness.
fn batch_monitor() -> Result<Monitor, PipelineError> {
    Ok(Monitor::new(MonitorConfig {
        lateness_ms: 0,
        ..Default::default()
    })?)
}

/// Advances one connection's monitor to `watermark`, writes its datapoints, adds it to the
/// checkpoint being written and counts its tunnels and datapoints in `out`.
fn finish(
    vpn_id: Arc<str>,
    mut m: Monitor,
    watermark: i64,
    writer: &mut MetricsWriter<'_>,
    checkpoint: Option<&mut checkpoint::Writer>,
    out: &mut Rebuilt,
) -> Result<(), PipelineError> {
    m.advance(watermark);
    let points = m.drain();
    let mut n = 0;
    for p in &points {
        if writer.keep_before_ms.is_some_and(|t| p.ts < t) {
            continue;
        }
        writer.push(p)?;
        n += 1;
    }
    out.datapoints += n;
    out.tunnels += m.tunnel_count() as u64;
    if let Some(c) = checkpoint {
        c.connection(vpn_id, m)?;
    }
    Ok(())
}

/// Writes one generation of the `metrics` table (`m<generation>-<chunk>` files).
struct MetricsWriter<'a> {
    store: &'a Store,
    generation: u64,
    stem: String,
    rows: MetricRows,
    rows_per_write: usize,
    chunk: u64,
    keep_before_ms: Option<i64>,
}

impl<'a> MetricsWriter<'a> {
    /// The writer of the next generation (one more than the newest stored).
    fn new(
        store: &'a Store,
        rows_per_write: usize,
        keep_before_ms: Option<i64>,
    ) -> Result<MetricsWriter<'a>, PipelineError> {
        let generation = next_generation(store)?;
        Ok(MetricsWriter {
            store,
            generation,
            stem: format!("m{generation:020}"),
            rows: MetricRows::default(),
            rows_per_write: rows_per_write.max(1),
            chunk: 0,
            keep_before_ms,
        })
    }

    /// The checkpoint of this generation, its monitors at `watermark_ms`, covering the event
    /// files stored now.
    fn checkpoint(&self, watermark_ms: i64) -> Result<checkpoint::Writer, PipelineError> {
        checkpoint::Writer::create(
            self.store.root(),
            checkpoint::Header {
                version: checkpoint::VERSION,
                watermark_ms,
                generation: self.generation,
                covered_seq: covered_seq(self.store)?,
            },
        )
    }

    /// Whether `f` is one of this generation's files.
    fn wrote(&self, f: &tunnelwatch_queries::segments::SegmentFile) -> bool {
        f.name.starts_with(&format!("{}-", self.stem))
    }

    fn push(&mut self, p: &Datapoint) -> Result<(), PipelineError> {
        push_datapoint(&mut self.rows, p);
        if self.rows.len() >= self.rows_per_write {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PipelineError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = self.rows.finish();
        self.store.segments().write(
            TableName::Metrics,
            &[batch],
            &format!("{}-{:06}", self.stem, self.chunk),
        )?;
        self.chunk += 1;
        Ok(())
    }
}

/// Appends one datapoint as a `metrics` row.
pub fn push_datapoint(rows: &mut MetricRows, p: &Datapoint) {
    rows.push(&MetricRow {
        ts: p.ts,
        namespace: p.metric.namespace(),
        metric_name: p.metric.as_str(),
        vpn_id: &p.vpn_id,
        tunnel_ip: p.tunnel_ip.as_deref(),
        period_s: p.period_s(),
        sample_count: p.sample_count,
        sum: p.sum,
        minimum: p.minimum,
        maximum: p.maximum,
        unit: p.metric.unit().as_str(),
        concentrator_id: p.concentrator_id.as_deref(),
    });
}

/// One more than the newest generation of metrics files.
fn next_generation(store: &Store) -> Result<u64, PipelineError> {
    let newest = store
        .segments()
        .list(TableName::Metrics)?
        .iter()
        .filter_map(|f| generation_of(&f.name))
        .max();
    Ok(newest.map_or(1, |g| g + 1))
}

/// The rows of one batch of `EVENTS_SQL` as observations.
fn observations(b: &RecordBatch) -> Result<Vec<Observation>, PipelineError> {
    let utf8 = DataType::Utf8;
    let ts = column(b, 0, &ts_type())?;
    let ts = ts.as_primitive::<TimestampMillisecondType>();
    let vpn = column(b, 1, &utf8)?;
    let vpn = vpn.as_string::<i32>();
    let ip = column(b, 2, &utf8)?;
    let ip = ip.as_string::<i32>();
    let src = column(b, 3, &DataType::Int64)?;
    let src = src.as_primitive::<Int64Type>();
    let strings: Vec<Arc<dyn Array>> = [4, 5, 6, 7, 8, 9, 12]
        .into_iter()
        .map(|i| column(b, i, &utf8))
        .collect::<Result<_, PipelineError>>()?;
    let s = |k: usize, row: usize| -> Option<&str> {
        let a = strings[k].as_string::<i32>();
        (!a.is_null(row)).then(|| a.value(row))
    };
    let bytes_in = column(b, 10, &DataType::Int64)?;
    let bytes_in = bytes_in.as_primitive::<Int64Type>();
    let bytes_out = column(b, 11, &DataType::Int64)?;
    let bytes_out = bytes_out.as_primitive::<Int64Type>();
    let counter = |a: &arrow::array::PrimitiveArray<Int64Type>, row: usize| {
        (!a.is_null(row))
            .then(|| a.value(row))
            .map(|v| v.max(0) as u64)
    };
    let mut out = Vec::with_capacity(b.num_rows());
    let mut vpn_arc: Option<Arc<str>> = None;
    let mut ip_arc: Option<Arc<str>> = None;
    for row in 0..b.num_rows() {
        // Rows come grouped by tunnel: share the identity strings.
        let v = vpn.value(row);
        if vpn_arc.as_deref() != Some(v) {
            vpn_arc = Some(Arc::from(v));
        }
        let t = ip.value(row);
        if ip_arc.as_deref() != Some(t) {
            ip_arc = Some(Arc::from(t));
        }
        let body = match src.value(row) {
            0 => ObservationBody::Activity {
                phase1: s(0, row).and_then(PhaseState::parse),
                phase2: s(1, row).and_then(PhaseState::parse),
                kind: kind_from_str(s(2, row).unwrap_or("unknown")),
            },
            1 => {
                let kind = kind_from_str(s(2, row).unwrap_or("unknown"));
                ObservationBody::Bgp {
                    session: bgp_session(kind, s(3, row).unwrap_or(""), s(4, row), s(5, row)),
                    kind,
                }
            }
            _ => ObservationBody::Traffic {
                bytes_in: counter(bytes_in, row),
                bytes_out: counter(bytes_out, row),
                concentrator_id: s(6, row).map(Arc::from),
            },
        };
        out.push(Observation {
            ts: ts.value(row),
            vpn_id: vpn_arc.clone().expect("set above"),
            tunnel_ip: ip_arc.clone().expect("set above"),
            body,
        });
    }
    Ok(out)
}

/// The SQL condition `ts` in `[since, until)` (either bound optional).
fn window_filter(since: Option<i64>, until: Option<i64>) -> String {
    let mut filter = String::from("TRUE");
    if let Some(t) = since {
        filter.push_str(&format!(" AND ts >= to_timestamp_millis({t})"));
    }
    if let Some(t) = until {
        filter.push_str(&format!(" AND ts < to_timestamp_millis({t})"));
    }
    filter
}

/// The stored datapoints whose period starts in `[since, until)`, a batch at a time, grouped by
/// metric, then series (connection level last), then time — the order an exposition writer
/// needs.
pub fn stored_datapoints(
    snapshot: &Snapshot,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<StoredDatapoints, PipelineError> {
    let filter = window_filter(since, until);
    let sql = format!(
        "SELECT ts, namespace, metric_name, vpn_id, tunnel_ip, sample_count, sum, minimum, maximum, concentrator_id
         FROM metrics WHERE {filter}
         ORDER BY metric_name, tunnel_ip IS NULL, vpn_id, tunnel_ip, concentrator_id, ts"
    );
    Ok(StoredDatapoints {
        batches: Batches::open(snapshot, &sql)?,
    })
}

/// The stored datapoints of the named metrics (`metric_name`s) whose period starts in
/// `[since, until)`, in no particular order: what alarm evaluation reads (the evaluator keeps
/// each instance's periods, so it needs no sort, and a sort of a fleet's whole `metrics` table
/// is what a large catch-up spent its time on).
pub fn stored_datapoints_of_metrics(
    snapshot: &Snapshot,
    metric_names: &[&str],
    since: Option<i64>,
    until: Option<i64>,
) -> Result<StoredDatapoints, PipelineError> {
    let mut filter = window_filter(since, until);
    let names: Vec<String> = metric_names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect();
    if names.is_empty() {
        filter.push_str(" AND FALSE");
    } else {
        filter.push_str(&format!(" AND metric_name IN ({})", names.join(", ")));
    }
    let sql = format!(
        "SELECT ts, namespace, metric_name, vpn_id, tunnel_ip, sample_count, sum, minimum, maximum, concentrator_id
         FROM metrics WHERE {filter}"
    );
    Ok(StoredDatapoints {
        batches: Batches::open(snapshot, &sql)?,
    })
}

/// See [`stored_datapoints`].
pub struct StoredDatapoints {
    batches: Batches,
}

impl Iterator for StoredDatapoints {
    type Item = Result<Vec<Datapoint>, PipelineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|b| datapoints_of(&b)))
    }
}

/// The rows of one batch of the `metrics` table as datapoints.
fn datapoints_of(b: &RecordBatch) -> Result<Vec<Datapoint>, PipelineError> {
    let utf8 = DataType::Utf8;
    let ts = column(b, 0, &ts_type())?;
    let ts = ts.as_primitive::<TimestampMillisecondType>();
    let strs: Vec<Arc<dyn Array>> = [1, 2, 3, 4, 9]
        .into_iter()
        .map(|i| column(b, i, &utf8))
        .collect::<Result<_, PipelineError>>()?;
    let nums: Vec<Arc<dyn Array>> = [5, 6, 7, 8]
        .into_iter()
        .map(|i| column(b, i, &DataType::Float64))
        .collect::<Result<_, PipelineError>>()?;
    let s = |k: usize, row: usize| -> Option<&str> {
        let a = strs[k].as_string::<i32>();
        (!a.is_null(row)).then(|| a.value(row))
    };
    let f = |k: usize, row: usize| -> f64 {
        let a = nums[k].as_primitive::<Float64Type>();
        if a.is_null(row) { 0.0 } else { a.value(row) }
    };
    let mut out = Vec::with_capacity(b.num_rows());
    for row in 0..b.num_rows() {
        let (Some(ns), Some(name), Some(vpn)) = (s(0, row), s(1, row), s(2, row)) else {
            continue;
        };
        // Rows of metrics this version does not know are skipped, not an error.
        let Ok(metric) = MetricName::parse(ns, name) else {
            continue;
        };
        out.push(Datapoint {
            ts: ts.value(row),
            metric,
            vpn_id: Arc::from(vpn),
            tunnel_ip: s(3, row).map(Arc::from),
            concentrator_id: s(4, row).map(Arc::from),
            sample_count: f(0, row),
            sum: f(1, row),
            minimum: f(2, row),
            maximum: f(3, row),
        });
    }
    Ok(out)
}

//! Metrics from stored events: `tunnelwatch metrics rebuild` (also run at the end of every
//! `ingest`) and `tunnelwatch export openmetrics`.
//!
//! Rebuild reads the tunnel activity, BGP and traffic rows back through the SQL engine in
//! `(vpn_id, tunnel_ip, ts)` order, runs one `tunnelwatch_monitor::Monitor` per connection
//! (both tunnels, merged in event-time order) up to the watermark — the newest event time in
//! the store — and writes the datapoints as the `metrics` table's Parquet files.
//!
//! Invariants and limits:
//! - The `metrics` table is derived data and is rewritten, never appended to: a rebuild writes
//!   a new generation of files (`m<gen>-…`), then deletes the older generation's files in the
//!   days it covers, so recomputed datapoints replace the old ones instead of doubling them.
//!   A crash between the two steps can leave both generations of a day until the next rebuild
//!   (or ingest) removes the older one.
//! - Every rebuild reads **all** stored events: a tunnel's state holds across any gap, so the
//!   minutes after `--since` depend on records before it. `--since T` only limits which day
//!   partitions are rewritten (the UTC day of T onwards; earlier days keep their datapoints).
//! - Memory: one connection's records at a time in the monitor, the datapoints of up to
//!   `ROWS_PER_WRITE` rows, and DataFusion's sort (spills under its memory limit).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
use clap::{Args, Subcommand};
use futures::StreamExt;
use tunnelwatch_exporters::openmetrics::OpenMetricsWriter;
use tunnelwatch_monitor::{
    Datapoint, MetricName, Monitor, MonitorConfig, Observation, ObservationBody, bgp_session,
    kind_from_str,
};
use tunnelwatch_parsers::PhaseState;
use tunnelwatch_queries::{
    Engine, MetricRow, MetricRows, QueryOptions, Snapshot, Store, StoreOptions, TableName,
};

/// Datapoints held before they are written as Parquet.
const ROWS_PER_WRITE: usize = 1 << 20;

#[derive(Args)]
pub struct MetricsArgs {
    #[command(subcommand)]
    command: MetricsCommand,
}

#[derive(Subcommand)]
enum MetricsCommand {
    /// Recompute the metrics table from the stored events (replaces its datapoints).
    Rebuild {
        /// Data directory.
        #[arg(long, default_value = "./tunnelwatch-data")]
        data: PathBuf,
        /// Rewrite only the days from this time on (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_time, value_name = "T")]
        since: Option<i64>,
    },
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    command: ExportCommand,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Write the stored datapoints as OpenMetrics with timestamps, for
    /// `promtool tsdb create-blocks-from openmetrics FILE DIR`.
    Openmetrics {
        /// Data directory.
        #[arg(long, default_value = "./tunnelwatch-data")]
        data: PathBuf,
        /// First period start to export (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_time, value_name = "T")]
        since: Option<i64>,
        /// Export periods starting before this time.
        #[arg(long, value_parser = parse_time, value_name = "T")]
        until: Option<i64>,
        /// Output file (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis());
    }
    tunnelwatch_parsers::time::parse_readable(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 time or a YYYY-MM-DD date"))
}

pub fn run(args: MetricsArgs) -> Result<ExitCode> {
    match args.command {
        MetricsCommand::Rebuild { data, since } => {
            let started = Instant::now();
            let (mut store, _) = Store::open(&data, StoreOptions::default())
                .with_context(|| format!("opening the data directory {}", data.display()))?;
            store.flush()?;
            let s = rebuild(&store, since)?;
            println!(
                "metrics: {} datapoints for {} tunnels up to {} in {:.2} s",
                s.datapoints,
                s.tunnels,
                s.watermark
                    .map(tunnelwatch_parsers::time::format_ms)
                    .unwrap_or_else(|| "—".into()),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What a rebuild did.
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub datapoints: u64,
    pub tunnels: u64,
    pub records: u64,
    pub watermark: Option<i64>,
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn column(batch: &RecordBatch, i: usize, to: &DataType) -> Result<Arc<dyn Array>> {
    Ok(cast(batch.column(i), to)?)
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Recomputes the `metrics` table of the store's data directory (see the module docs).
pub fn rebuild(store: &Store, since: Option<i64>) -> Result<Rebuilt> {
    let snapshot = Snapshot {
        files: Snapshot::list_files(store.root())?,
        unflushed: store.unflushed().clone(),
    };
    let rt = runtime()?;
    let engine = rt.block_on(Engine::open(&snapshot, QueryOptions::default()))?;
    let watermark = {
        let r = rt.block_on(engine.query(WATERMARK_SQL))?;
        r.batches
            .first()
            .filter(|b| b.num_rows() > 0)
            .map(|b| column(b, 0, &ts_type()))
            .transpose()?
            .and_then(|c| {
                let c = c.as_primitive::<TimestampMillisecondType>();
                (!c.is_null(0)).then(|| c.value(0))
            })
    };
    let mut out = Rebuilt {
        watermark,
        ..Default::default()
    };
    let generation = next_generation(store)?;
    let stem = format!("m{generation:020}");
    let keep_before_day = since.map(|t| t.div_euclid(86_400_000));
    let mut writer = MetricsWriter {
        store,
        stem: &stem,
        rows: MetricRows::default(),
        chunk: 0,
        keep_before_ms: keep_before_day.map(|d| d * 86_400_000),
    };
    if let Some(w) = watermark {
        rt.block_on(async {
            let mut stream = engine
                .context()
                .sql(EVENTS_SQL)
                .await?
                .execute_stream()
                .await?;
            let mut current: Option<(Arc<str>, Monitor)> = None;
            let mut last_tunnel: Option<Arc<str>> = None;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                for obs in observations(&batch)? {
                    out.records += 1;
                    if last_tunnel.as_deref() != Some(&*obs.tunnel_ip)
                        || current.as_ref().map(|(v, _)| &**v) != Some(&*obs.vpn_id)
                    {
                        out.tunnels += 1;
                        last_tunnel = Some(obs.tunnel_ip.clone());
                    }
                    if current.as_ref().map(|(v, _)| &**v) != Some(&*obs.vpn_id) {
                        if let Some((_, m)) = current.take() {
                            out.datapoints += finish(m, w, &mut writer)?;
                        }
                        current = Some((obs.vpn_id.clone(), batch_monitor()?));
                    }
                    if let Some((_, m)) = current.as_mut() {
                        m.push(obs);
                    }
                }
            }
            if let Some((_, m)) = current.take() {
                out.datapoints += finish(m, w, &mut writer)?;
            }
            anyhow::Ok(())
        })?;
    }
    writer.flush()?;
    // Retire the older generations: every day they hold from `since` on (all when no `since`).
    for f in store.segments().list(TableName::Metrics)? {
        if f.name.starts_with(&format!("{stem}-")) {
            continue;
        }
        if keep_before_day.is_none_or(|d| f.day >= d) {
            store.segments().delete(&f)?;
        }
    }
    Ok(out)
}

/// A monitor for recomputation: the records are complete and merged in order, so no lateness.
fn batch_monitor() -> Result<Monitor> {
    Ok(Monitor::new(MonitorConfig {
        lateness_ms: 0,
        ..Default::default()
    })?)
}

fn finish(mut m: Monitor, watermark: i64, writer: &mut MetricsWriter<'_>) -> Result<u64> {
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
    Ok(n)
}

struct MetricsWriter<'a> {
    store: &'a Store,
    stem: &'a str,
    rows: MetricRows,
    chunk: u64,
    keep_before_ms: Option<i64>,
}

impl MetricsWriter<'_> {
    fn push(&mut self, p: &Datapoint) -> Result<()> {
        push_datapoint(&mut self.rows, p);
        if self.rows.len() >= ROWS_PER_WRITE {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
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
fn next_generation(store: &Store) -> Result<u64> {
    let newest = store
        .segments()
        .list(TableName::Metrics)?
        .iter()
        .filter_map(|f| f.name.strip_prefix('m')?.get(..20)?.parse::<u64>().ok())
        .max();
    Ok(newest.map_or(1, |g| g + 1))
}

/// The rows of one batch of `EVENTS_SQL` as observations.
fn observations(b: &RecordBatch) -> Result<Vec<Observation>> {
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
        .collect::<Result<_>>()?;
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

pub fn run_export(args: ExportArgs) -> Result<ExitCode> {
    let ExportCommand::Openmetrics {
        data,
        since,
        until,
        out,
    } = args.command;
    if !data.is_dir() {
        eprintln!("tunnelwatch: {}: no such data directory", data.display());
        return Ok(ExitCode::from(2));
    }
    let snapshot = Snapshot::read(&data)?;
    let rt = runtime()?;
    let engine = rt.block_on(Engine::open(&snapshot, QueryOptions::default()))?;
    let mut filter = String::from("TRUE");
    if let Some(t) = since {
        filter.push_str(&format!(" AND ts >= to_timestamp_millis({t})"));
    }
    if let Some(t) = until {
        filter.push_str(&format!(" AND ts < to_timestamp_millis({t})"));
    }
    // Grouped by exposition family, then series, then time (what the writer needs).
    let sql = format!(
        "SELECT ts, namespace, metric_name, vpn_id, tunnel_ip, sample_count, sum, minimum, maximum, concentrator_id
         FROM metrics WHERE {filter}
         ORDER BY metric_name, tunnel_ip IS NULL, vpn_id, tunnel_ip, concentrator_id, ts"
    );
    let sink: Box<dyn Write> = match &out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| p.display().to_string())?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = OpenMetricsWriter::new(std::io::BufWriter::new(sink));
    let n = rt.block_on(async {
        let mut stream = engine.context().sql(&sql).await?.execute_stream().await?;
        let mut n = 0u64;
        while let Some(batch) = stream.next().await {
            for p in stored_datapoints(&batch?)? {
                writer.write(&p)?;
                n += 1;
            }
        }
        anyhow::Ok(n)
    })?;
    writer.finish()?;
    if let Some(p) = &out {
        eprintln!("tunnelwatch: wrote {n} datapoints to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn stored_datapoints(b: &RecordBatch) -> Result<Vec<Datapoint>> {
    let utf8 = DataType::Utf8;
    let ts = column(b, 0, &ts_type())?;
    let ts = ts.as_primitive::<TimestampMillisecondType>();
    let strs: Vec<Arc<dyn Array>> = [1, 2, 3, 4, 9]
        .into_iter()
        .map(|i| column(b, i, &utf8))
        .collect::<Result<_>>()?;
    let nums: Vec<Arc<dyn Array>> = [5, 6, 7, 8]
        .into_iter()
        .map(|i| column(b, i, &DataType::Float64))
        .collect::<Result<_>>()?;
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

/// `ingest`'s last step: recompute the metrics table for what is stored now.
pub fn after_ingest(store: &Store) -> Result<Rebuilt> {
    rebuild(store, None).map_err(|e| anyhow!("computing metrics: {e:#}"))
}

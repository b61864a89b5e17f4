//! `tunnelwatch metrics rebuild` and `tunnelwatch export openmetrics`: the command line over
//! `tunnelwatch_pipeline::metrics` (the recomputation and the stored datapoints).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use tunnelwatch_exporters::openmetrics::OpenMetricsWriter;
use tunnelwatch_pipeline::metrics;
use tunnelwatch_queries::{Snapshot, Store, StoreOptions};

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
            let s = metrics::rebuild(&store, since)?;
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
    let sink: Box<dyn Write> = match &out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| p.display().to_string())?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = OpenMetricsWriter::new(std::io::BufWriter::new(sink));
    let mut n = 0u64;
    for points in metrics::stored_datapoints(&snapshot, since, until)? {
        for p in points? {
            writer.write(&p)?;
            n += 1;
        }
    }
    writer.finish()?;
    if let Some(p) = &out {
        eprintln!("tunnelwatch: wrote {n} datapoints to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The line `ingest` prints about its metrics step.
pub fn summary(m: &metrics::Updated, seconds: f64) -> String {
    let r = &m.rebuilt;
    match &m.full_because {
        None => format!(
            "metrics: {} datapoints for {} tunnels in {seconds:.2} s (incremental: {} new records)",
            r.datapoints, r.tunnels, r.records
        ),
        Some(why) => format!(
            "metrics: {} datapoints for {} tunnels in {seconds:.2} s (recomputed from all stored events: {why})",
            r.datapoints, r.tunnels
        ),
    }
}

/// `ingest`'s last step: bring the metrics table up to what is stored now (from the last
/// computation's checkpoint when it can, else from all stored events).
pub fn after_ingest(store: &Store) -> Result<metrics::Updated> {
    metrics::update(store).map_err(|e| anyhow!("computing metrics: {e:#}"))
}

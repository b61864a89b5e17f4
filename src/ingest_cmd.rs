//! `tunnelwatch ingest`: one-shot load of files, globs, directories or stdin into the store —
//! the command line over `tunnelwatch_pipeline::file_ingest` (progress bar, printed rejects,
//! the summary), then compaction, retention and the metrics recomputation.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tunnelwatch_ingest::files;
use tunnelwatch_parsers::Reject;
use tunnelwatch_pipeline::file_ingest::{self, Tally};
use tunnelwatch_queries::{Store, StoreOptions, Sync, TableName};

use crate::parse_cmd::DecodeArgs;

/// Rejects printed on stderr before the rest are only counted.
const SHOWN_REJECTS: u64 = 10;

#[derive(Args)]
pub struct IngestArgs {
    /// Data directory.
    #[arg(long, default_value = "./tunnelwatch-data")]
    pub data: PathBuf,
    #[command(flatten)]
    decode: DecodeArgs,
    /// When the write-ahead log reaches the disk: `always` (fsync per batch) or `never`.
    #[arg(long, default_value = "always", value_parser = parse_sync)]
    pub sync: Sync,
    /// Drop day partitions older than this many days (by wall clock) after ingesting.
    #[arg(long)]
    retention_days: Option<u32>,
    /// A config file whose alarms (`[[alarms]]`, `preset`) and notifiers run after the
    /// ingest: alarms and Health are brought up to the last stored minute, going on from
    /// where the last run left them; new transitions are recorded and notified once. Its
    /// `[[connections]]` tunnels place customer-gateway lines on their tunnels as they are
    /// stored.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not compute the metrics table (run `tunnelwatch metrics rebuild` later).
    #[arg(long)]
    pub no_metrics: bool,
    /// Threads that parse the input side by side (default: one per core; 1 parses on the
    /// reading thread). Rows, positions and rejects are the same whatever the number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Input bytes per piece a parsing thread takes (tests use small values).
    #[arg(long, default_value_t = tunnelwatch_pipeline::file_ingest::PIECE_BYTES, hide = true)]
    piece_bytes: usize,
    /// Rows held in memory before a flush to Parquet (tests use small values).
    #[arg(long, default_value_t = StoreOptions::default().flush_rows, hide = true)]
    flush_rows: usize,
    /// `cloudwatch://GROUP` only: read log streams whose name starts with this.
    #[arg(long)]
    pub stream_prefix: Option<String>,
    /// `cloudwatch://GROUP` only: first event time (RFC 3339 or epoch ms; default: an hour
    /// before --end).
    #[arg(long)]
    pub start: Option<String>,
    /// `cloudwatch://GROUP` only: last event time, inclusive (RFC 3339 or epoch ms; default: now).
    #[arg(long)]
    pub end: Option<String>,
    /// `cloudwatch://GROUP` only: CloudWatch Logs endpoint (e.g. a VPC endpoint or a local
    /// moto_server); default: AWS's regional endpoint.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// `cloudwatch://GROUP` only: AWS region (default: the standard chain, e.g. AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
    /// Files, directories (recursively), glob patterns, `-` for stdin, or
    /// `cloudwatch://LOG_GROUP` (credentials from the standard AWS chain).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

fn parse_sync(s: &str) -> Result<Sync, String> {
    match s {
        "always" => Ok(Sync::Always),
        "never" => Ok(Sync::Never),
        _ => Err(format!(
            "unknown sync policy {s:?}; expected always or never"
        )),
    }
}

/// Progress on a terminal, the first rejects on stderr.
struct Terminal {
    bar: ProgressBar,
    stderr_is_tty: bool,
    rejects_shown: u64,
}

impl file_ingest::Observer for Terminal {
    fn position(&mut self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    fn reject(&mut self, r: &Reject) {
        if self.rejects_shown < SHOWN_REJECTS {
            self.rejects_shown += 1;
            let line = format!("tunnelwatch: rejected: {r}");
            if self.stderr_is_tty {
                self.bar.println(line);
            } else {
                eprintln!("{line}");
            }
        }
    }
}

pub fn run(args: IngestArgs) -> Result<ExitCode> {
    if args.config.is_some() && args.no_metrics {
        eprintln!(
            "tunnelwatch: --config evaluates alarms over the metrics; it cannot go with --no-metrics"
        );
        return Ok(ExitCode::from(2));
    }
    let groups: Vec<&str> = args
        .paths
        .iter()
        .filter_map(|p| p.strip_prefix("cloudwatch://"))
        .collect();
    if !groups.is_empty() {
        if groups.len() != args.paths.len() {
            eprintln!(
                "tunnelwatch: cloudwatch:// inputs cannot be mixed with files in one run; run ingest twice"
            );
            return Ok(ExitCode::from(2));
        }
        return crate::ingest_cloudwatch::run(&args, &groups);
    }
    let cloudwatch_only = [
        ("--stream-prefix", args.stream_prefix.is_some()),
        ("--start", args.start.is_some()),
        ("--end", args.end.is_some()),
        ("--endpoint-url", args.endpoint_url.is_some()),
        ("--region", args.region.is_some()),
    ];
    if let Some((flag, _)) = cloudwatch_only.iter().find(|(_, set)| *set) {
        eprintln!("tunnelwatch: {flag} applies to cloudwatch://LOG_GROUP inputs only");
        return Ok(ExitCode::from(2));
    }
    let inputs = match files::expand(&args.paths) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("tunnelwatch: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let started = Instant::now();
    let (store, recovery) = Store::open(
        &args.data,
        StoreOptions {
            sync: args.sync,
            flush_rows: args.flush_rows,
            ..Default::default()
        },
    )
    .with_context(|| format!("opening the data directory {}", args.data.display()))?;
    for line in recovery.report() {
        eprintln!("tunnelwatch: {line}");
    }
    let total: u64 = inputs.iter().filter_map(|i| i.size()).sum();
    let mut terminal = Terminal {
        bar: progress_bar(total),
        stderr_is_tty: std::io::stderr().is_terminal(),
        rejects_shown: 0,
    };
    // The config's inventory places gateway lines on their tunnels as they are stored.
    let mut options = args.decode.options();
    if let Some(path) = &args.config {
        match crate::config::load_for(path, crate::config::Needs::Alarms) {
            Ok(l) if !l.gateway_peers.is_empty() => {
                options.gateway_peers = Some(std::sync::Arc::new(l.gateway_peers));
            }
            Ok(_) => {}
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                return Ok(ExitCode::from(2));
            }
        }
    }
    let loaded = file_ingest::ingest_files(
        store,
        inputs,
        &options,
        chrono::Utc::now().timestamp_millis(),
        file_ingest::Split {
            workers: args
                .threads
                .map_or(file_ingest::Split::per_core().workers, usize::from),
            piece_bytes: args.piece_bytes,
        },
        &mut terminal,
    );
    terminal.bar.finish_and_clear();
    let (mut store, tally) = loaded?;
    if let Some(days) = args.retention_days {
        let dropped = store.apply_retention(chrono::Utc::now().timestamp_millis(), days)?;
        if dropped > 0 {
            eprintln!("tunnelwatch: retention dropped {dropped} file(s) older than {days} days");
        }
    }
    let metrics_started = Instant::now();
    let metrics = if args.no_metrics {
        None
    } else {
        Some(crate::metrics_cmd::after_ingest(&store)?)
    };
    let metrics_s = metrics_started.elapsed().as_secs_f64();
    // After the metrics: a compaction merges this run's files with earlier ones, and the
    // metrics checkpoint tells new rows from old by the files they are in.
    let merged = store.compact(8)?;
    let alarms = match &args.config {
        Some(path) => match after_ingest_alarms(&mut store, path)? {
            Ok(summary) => Some(summary),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let disk = store.segments().total_size()?;
    print_summary(
        &args,
        total,
        &tally,
        terminal.rejects_shown,
        started.elapsed(),
        disk,
        merged,
    )?;
    if let Some(m) = metrics {
        println!("{}", crate::metrics_cmd::summary(&m, metrics_s));
    }
    if let Some(line) = alarms {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `--config`: loads the alarms and notifiers, brings alarms and Health up to the last stored
/// minute ([`tunnelwatch_pipeline::alarms::catch_up`]), tries each queued notification once
/// (what fails stays in the outbox for the next run or `serve`) and returns the summary line.
/// A bad config is reported (FILE:LINE:COL) and gives exit code 2.
pub fn after_ingest_alarms(
    store: &mut Store,
    path: &std::path::Path,
) -> Result<std::result::Result<String, ExitCode>> {
    let loaded = match crate::config::load_for(path, crate::config::Needs::Alarms) {
        Ok(l) => l,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return Ok(Err(ExitCode::from(2)));
        }
    };
    if loaded.alarms.is_empty() {
        return Ok(Ok(format!(
            "alarms: none in {} (add [[alarms]] or preset = \"aws-vpn\"); Health: not evaluated",
            path.display()
        )));
    }
    use tunnelwatch_pipeline::runner::{NOTIFICATION_EXPIRY_MS, Notify, now_ms};
    let notify = if loaded.notifiers.is_empty() {
        None
    } else {
        Some(
            Notify::new(
                loaded
                    .alarms
                    .iter()
                    .map(|d| (d.name.clone(), d.clone()))
                    .collect(),
                tunnelwatch_pipeline::outbox::Outbox::open(store.root(), NOTIFICATION_EXPIRY_MS)?,
                loaded.notifiers,
            )
            .with_health(loaded.health_notify),
        )
    };
    let done = tunnelwatch_pipeline::alarms::catch_up(store, loaded.alarms, notify.as_ref())?;
    let mut sent = 0;
    if let Some(n) = &notify {
        sent = n.outbox.deliver_due(now_ms(), &n.notifiers)?;
    }
    let alarming = done
        .transitions
        .iter()
        .filter(|t| t.new_state.as_str() == "ALARM")
        .count();
    Ok(Ok(format!(
        "alarms: evaluated up to {}: {} new transition(s) ({alarming} into ALARM; {} instance(s) \
         carried on from the last run), {} notification(s) queued, {sent} sent now{}; \
         health_events: {} new row(s). See `tunnelwatch alarms list --data {}`",
        done.evaluated_until
            .map(crate::output::rfc3339)
            .unwrap_or_else(|| "-".into()),
        done.transitions.len(),
        done.restored,
        done.queued,
        notify
            .as_ref()
            .map(|n| n.outbox.pending())
            .filter(|p| *p > 0)
            .map(|p| format!(", {p} waiting in the outbox"))
            .unwrap_or_default(),
        done.health_rows,
        store.root().display()
    )))
}

fn progress_bar(total: u64) -> ProgressBar {
    // indicatif draws only when stderr is a terminal.
    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(
    args: &IngestArgs,
    bytes: u64,
    tally: &Tally,
    rejects_shown: u64,
    elapsed: Duration,
    disk: u64,
    merged: usize,
) -> Result<()> {
    let records = tally.records();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ingested {} input(s), {:.1} MB in {:.2} s ({:.1} MB/s, {:.0} records/s)",
        tally.inputs,
        bytes as f64 / 1e6,
        secs,
        bytes as f64 / 1e6 / secs,
        records as f64 / secs
    )?;
    for t in TableName::RECORDS {
        writeln!(out, "  {:<16} {:>12}", t.as_str(), tally.rows[t as usize])?;
    }
    if tally.skipped > 0 {
        writeln!(
            out,
            "  {:<16} {:>12}  (already stored by an earlier run)",
            "skipped", tally.skipped
        )?;
    }
    let rejects = tally.rows[TableName::Rejects as usize];
    if rejects > rejects_shown {
        writeln!(
            out,
            "  {} more rejects not shown: tunnelwatch query --data {} --saved rejects-by-error",
            rejects - rejects_shown,
            args.data.display()
        )?;
    }
    writeln!(
        out,
        "data: {} ({:.1} MB of Parquet{})",
        args.data.display(),
        disk as f64 / 1e6,
        if merged > 0 {
            format!(", {merged} small files compacted")
        } else {
            String::new()
        }
    )?;
    Ok(())
}

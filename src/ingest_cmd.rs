//! `tunnelwatch ingest`: one-shot load of files, globs, directories or stdin into the store.
//!
//! Two threads: this one reads and parses, building Arrow batches; a writer thread owns the
//! store (WAL append + fsync, Parquet flushes). Batches are cut at chunk boundaries, so each
//! carries a source mark "everything before offset N of this input is stored"; a second run
//! over the same input skips what the ledger says is stored (re-ingesting never duplicates).

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use arrow::array::RecordBatch;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tunnelwatch_ingest::files::{self, Input};
use tunnelwatch_parsers::{Decoder, Parsed};
use tunnelwatch_queries::rows::table_of;
use tunnelwatch_queries::{RowBuilder, SourceMark, Store, StoreOptions, Sync, TableName};

use crate::parse_cmd::DecodeArgs;

/// Rows per WAL append (one fsync each).
const BATCH_ROWS: usize = 64 * 1024;
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
    /// Do not compute the metrics table (run `tunnelwatch metrics rebuild` later).
    #[arg(long)]
    pub no_metrics: bool,
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

type Job = (Vec<(TableName, RecordBatch)>, Option<SourceMark>);

#[derive(Default)]
struct Tally {
    rows: [u64; TableName::ALL.len()],
    skipped: u64,
    rejects_shown: u64,
}

pub fn run(args: IngestArgs) -> Result<ExitCode> {
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
    let mut inputs = match files::expand(&args.paths) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("tunnelwatch: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // A file named twice (directly and through its directory, say) is read once.
    let mut seen = std::collections::HashSet::new();
    inputs.retain(|i| match i {
        Input::File(p) => seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())),
        Input::Stdin => true,
    });
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
    if recovery.wal_segments > 0 {
        eprintln!(
            "tunnelwatch: recovered {} rows from {} write-ahead log segment(s) of an interrupted run",
            recovery.rows, recovery.wal_segments
        );
        for t in &recovery.torn {
            eprintln!("tunnelwatch: recovered up to a torn write: {t}");
        }
    }
    // Each input's ledger key (read once: it fingerprints the file) and how far it is stored.
    let keys: Vec<Option<String>> = inputs
        .iter()
        .map(Input::source_key)
        .collect::<Result<_, files::InputError>>()?;
    let committed: Vec<u64> = keys
        .iter()
        .map(|k| k.as_deref().map_or(0, |k| store.committed(k)))
        .collect();

    let (tx, rx) = sync_channel::<Job>(2);
    let writer = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || -> Result<Store> {
            let mut store = store;
            for (batches, mark) in rx {
                store.append(batches, mark)?;
            }
            store.flush()?;
            Ok(store)
        })?;

    let total: u64 = inputs.iter().filter_map(|i| i.size()).sum();
    let progress = progress_bar(total);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut tally = Tally::default();
    let mut bytes_done = 0u64;
    let mut send_error = None;
    for ((input, key), &skip_below) in inputs.iter().zip(&keys).zip(&committed) {
        if let Err(e) = ingest_one(
            input, key, skip_below, &args, now_ms, &tx, &progress, bytes_done, &mut tally,
        ) {
            send_error = Some(e);
            break;
        }
        bytes_done += input.size().unwrap_or(0);
    }
    drop(tx);
    progress.finish_and_clear();
    let store = match writer.join() {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => return Err(e.context("writing to the store")),
        Err(_) => return Err(anyhow!("the store writer thread panicked")),
    };
    if let Some(e) = send_error {
        return Err(e);
    }
    let mut store = store;
    let merged = store.compact(8)?;
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
    let disk = store.segments().total_size()?;
    print_summary(&args, &inputs, &tally, started.elapsed(), disk, merged)?;
    if let Some(m) = metrics {
        println!(
            "metrics: {} datapoints for {} tunnels in {:.2} s",
            m.datapoints,
            m.tunnels,
            metrics_started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn ingest_one(
    input: &Input,
    key: &Option<String>,
    skip_below: u64,
    args: &IngestArgs,
    now_ms: i64,
    tx: &SyncSender<Job>,
    progress: &ProgressBar,
    bytes_before: u64,
    tally: &mut Tally,
) -> Result<()> {
    let opts = args.decode.options();
    let name = input.name();
    let mut decoder = Decoder::new(&name, opts);
    // Both the record sink and the chunk callback use the row builder, never at once.
    let rows = RefCell::new(RowBuilder::default());
    let stderr_is_tty = std::io::stderr().is_terminal();
    let mut sink = |p: Parsed| match p {
        Parsed::Event(e) => {
            if e.position.offset < skip_below {
                tally.skipped += 1;
                return;
            }
            tally.rows[table_of(&e) as usize] += 1;
            rows.borrow_mut().push_event(&e);
        }
        Parsed::Reject(r) => {
            if r.position.offset < skip_below {
                tally.skipped += 1;
                return;
            }
            tally.rows[TableName::Rejects as usize] += 1;
            if tally.rejects_shown < SHOWN_REJECTS {
                tally.rejects_shown += 1;
                let line = format!("tunnelwatch: rejected: {r}");
                if stderr_is_tty {
                    progress.println(line);
                } else {
                    eprintln!("{line}");
                }
            }
            rows.borrow_mut().push_reject(&r, now_ms);
        }
    };
    // After each chunk every record before the decoder's offset has been handed over: a batch
    // cut there carries an exact mark.
    let mut after_chunk = |decoder: &Decoder, read: u64| -> std::io::Result<()> {
        progress.set_position(bytes_before + read);
        let mut rows = rows.borrow_mut();
        if rows.len() >= BATCH_ROWS {
            send(tx, rows.finish(), mark(key, decoder))?;
        }
        Ok(())
    };
    let reader = input.open()?;
    files::decode_stream(&mut decoder, reader, &mut sink, &mut after_chunk)
        .with_context(|| format!("{name}: read error at {}", decoder.position()))?;
    let rest = rows.borrow_mut().finish();
    send(tx, rest, mark(key, &decoder))?;
    Ok(())
}

fn mark(key: &Option<String>, decoder: &Decoder) -> Option<SourceMark> {
    key.as_ref().map(|k| SourceMark {
        source_key: k.clone(),
        offset: decoder.position().offset,
        state: None,
    })
}

fn send(
    tx: &SyncSender<Job>,
    batches: Vec<(TableName, RecordBatch)>,
    mark: Option<SourceMark>,
) -> std::io::Result<()> {
    tx.send((batches, mark))
        .map_err(|_| std::io::Error::other("the store writer stopped (see the error that follows)"))
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
    inputs: &[Input],
    tally: &Tally,
    elapsed: Duration,
    disk: u64,
    merged: usize,
) -> Result<()> {
    let bytes: u64 = inputs.iter().filter_map(|i| i.size()).sum();
    let records: u64 = tally.rows.iter().sum();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ingested {} input(s), {:.1} MB in {:.2} s ({:.1} MB/s, {:.0} records/s)",
        inputs.len(),
        bytes as f64 / 1e6,
        secs,
        bytes as f64 / 1e6 / secs,
        records as f64 / secs
    )?;
    for t in [
        TableName::TunnelActivity,
        TableName::BgpEvents,
        TableName::Traffic,
        TableName::Rejects,
    ] {
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
    if rejects > tally.rejects_shown {
        writeln!(
            out,
            "  {} more rejects not shown: tunnelwatch query --data {} --saved rejects-by-error",
            rejects - tally.rejects_shown,
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

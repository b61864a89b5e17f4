//! `tunnelwatch ingest --data DIR cloudwatch://LOG_GROUP [--stream-prefix P] [--start T]
//! [--end T] [--endpoint-url U] [--region R]`: the one-shot form of the `cloudwatch_logs` source.
//! Each group is read from `--start` to `--end` (default: the hour before now) through the
//! same pipeline `serve` runs (one decoder per log stream, checkpoints in the WAL with their
//! rows), then metrics are recomputed as after a file ingest.
//!
//! Each event is stored once whatever the ranges: re-running the same range, a later run with a
//! later end, a nested range or a range a `serve` source read before store only the events not
//! stored yet (the log group's coverage checkpoint, see the `cloudwatch_logs` source). The
//! summary names the window read, and when it found nothing says how to widen it.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use tunnelwatch_ingest::pipeline as source_pipeline;
use tunnelwatch_ingest::sources::cloudwatch_logs::parse_time_point;
use tunnelwatch_ingest::sources::{SourceConfig, SourceError};
use tunnelwatch_monitor::MonitorConfig;
use tunnelwatch_pipeline::runner::{self as pipeline, RunSpec};
use tunnelwatch_queries::{StoreOptions, TableName};

use crate::ingest_cmd::IngestArgs;
use crate::output::rfc3339;

/// Without `--start`, the window is this long before its end.
const DEFAULT_WINDOW_MS: i64 = 3_600_000;

pub fn run(args: &IngestArgs, groups: &[&str]) -> Result<ExitCode> {
    let now = pipeline::now_ms();
    let time = |flag: &str, value: &Option<String>, default: i64| match value {
        None => Ok(default),
        Some(v) => parse_time_point(v).map_err(|e| format!("--{flag}: {e}")),
    };
    let window = time("end", &args.end, now).and_then(|end| {
        time("start", &args.start, end - DEFAULT_WINDOW_MS).map(|start| (start, end))
    });
    let (start, end) = match window {
        Ok(w) => w,
        Err(e) => {
            eprintln!("tunnelwatch: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut sources = Vec::new();
    for group in groups {
        let mut table = serde_json::json!({
            "type": "cloudwatch_logs",
            "log_group": group,
            "start": start,
            "end": end,
        });
        for (k, v) in [
            ("stream_prefix", &args.stream_prefix),
            ("endpoint_url", &args.endpoint_url),
            ("region", &args.region),
        ] {
            if let Some(v) = v {
                table[k] = v.clone().into();
            }
        }
        let config: SourceConfig = match serde_json::from_value(table) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tunnelwatch: cloudwatch://{group}: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        match config.build(&format!("cloudwatch://{group}")) {
            Ok(s) => sources.push((format!("cloudwatch://{group}"), s)),
            Err(e) => {
                eprintln!("tunnelwatch: {}", e.message);
                return Ok(ExitCode::from(2));
            }
        }
    }

    let started = Instant::now();
    let run = pipeline::start_run(RunSpec {
        data: args.data.clone(),
        store: StoreOptions {
            sync: args.sync,
            ..Default::default()
        },
        sources: &sources,
        budget_bytes: source_pipeline::DEFAULT_BUDGET_BYTES,
        monitor: MonitorConfig::default(),
        live_metrics: false,
        live_since_ms: now,
        retention_days: None,
        description: "ingest".into(),
        alarms: Vec::new(),
        notifiers: Default::default(),
        health_notify: None,
        gateway_peers: None,
    })
    .with_context(|| format!("opening the data directory {}", args.data.display()))?;
    let shared = run.shared.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (trigger, shutdown) = source_pipeline::shutdown();
    let mut failures: Vec<(String, SourceError)> = Vec::new();
    let mut tasks = pipeline::spawn_sources(
        runtime.handle(),
        sources,
        &shared.sources,
        run.out,
        &shutdown,
        &run.checkpoints,
    );
    runtime.block_on(async {
        let mut interrupted = false;
        let stop = crate::serve_cmd::stop_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    None => break,
                    Some(Ok((_, Ok(())))) => {}
                    Some(Ok((name, Err(e)))) => failures.push((name, e)),
                    Some(Err(e)) => failures.push(("?".into(), SourceError::Other(e.to_string()))),
                },
                _ = &mut stop, if !interrupted => {
                    eprintln!("tunnelwatch: interrupted: storing what was read (the next run resumes there)");
                    interrupted = true;
                    trigger.trigger();
                    shared.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    let mut store = run.running.join()?;
    for (name, e) in &failures {
        eprintln!("tunnelwatch: {name}: {e}");
    }
    let metrics_started = std::time::Instant::now();
    let metrics = if args.no_metrics {
        None
    } else {
        Some(crate::metrics_cmd::after_ingest(&store)?)
    };
    let metrics_s = metrics_started.elapsed().as_secs_f64();
    // After the metrics (their checkpoint tells new rows from old by file).
    store.compact(8)?;
    let alarms = match &args.config {
        Some(path) => match crate::ingest_cmd::after_ingest_alarms(&mut store, path)? {
            Ok(summary) => Some(summary),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let c = &shared.counters;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let records = c.records.load(Ordering::Relaxed);
    println!(
        "read {} from {} to {}{}",
        groups
            .iter()
            .map(|g| format!("cloudwatch://{g}"))
            .collect::<Vec<_>>()
            .join(", "),
        rfc3339(start),
        rfc3339(end),
        if args.start.is_none() {
            " (the hour before --end; --start reads further back)"
        } else {
            ""
        }
    );
    println!(
        "ingested {} log group(s), {:.1} MB in {:.2} s ({:.0} records/s)",
        shared.sources.len(),
        c.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        secs,
        records as f64 / secs
    );
    for t in TableName::RECORDS {
        println!(
            "  {:<16} {:>12}",
            t.as_str(),
            c.rows[t as usize].load(Ordering::Relaxed)
        );
    }
    if let Some(m) = metrics {
        println!("{}", crate::metrics_cmd::summary(&m, metrics_s));
    }
    if let Some(line) = alarms {
        println!("{line}");
    }
    if records == 0 && failures.is_empty() {
        println!(
            "no new events between {} and {}{}. To read another window give --start and --end \
             (RFC 3339 or epoch ms), e.g. --start {} for the last 7 days; events already stored \
             are not stored again.",
            rfc3339(start),
            rfc3339(end),
            if args.stream_prefix.is_some() {
                " in the streams with that prefix"
            } else {
                ""
            },
            rfc3339(end - 7 * 24 * DEFAULT_WINDOW_MS),
        );
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! `tunnelwatch ingest --data DIR cloudwatch://LOG_GROUP [--stream-prefix P] [--start T]
//! [--end T] [--endpoint-url U] [--region R]`: the one-shot form of the `cloudwatch_logs` source.
//! Each group is read from `--start` to `--end` (default: the hour before now) through the
//! same pipeline `serve` runs (one decoder per log stream, checkpoints in the WAL with their
//! rows), then metrics are recomputed as after a file ingest.
//!
//! Re-running the same range adds nothing: the source's checkpoint (key: endpoint, region,
//! group, prefix and range) says how far it got; an interrupted run resumes there.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use tunnelwatch_ingest::pipeline as source_pipeline;
use tunnelwatch_ingest::sources::{SourceConfig, SourceError};
use tunnelwatch_monitor::MonitorConfig;
use tunnelwatch_pipeline::runner::{self as pipeline, RunSpec};
use tunnelwatch_queries::{StoreOptions, TableName};

use crate::ingest_cmd::IngestArgs;

pub fn run(args: &IngestArgs, groups: &[&str]) -> Result<ExitCode> {
    let now = pipeline::now_ms();
    let end = args.end.clone().unwrap_or_else(|| now.to_string());
    let start = args.start.clone();
    let mut sources = Vec::new();
    for group in groups {
        let mut table = serde_json::json!({
            "type": "cloudwatch_logs",
            "log_group": group,
            "end": end,
        });
        // Without --start: an hour before the end (set below, once the end is parsed).
        if let Some(start) = &start {
            table["start"] = start.clone().into();
        }
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
        let config = match config {
            SourceConfig::CloudwatchLogs(mut c) => {
                if c.start.is_none() {
                    c.start = c.end.map(|e| e - 3_600_000);
                }
                SourceConfig::CloudwatchLogs(c)
            }
            other => other,
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
                }
            }
        }
    });
    let mut store = run.running.join()?;
    for (name, e) in &failures {
        eprintln!("tunnelwatch: {name}: {e}");
    }
    store.compact(8)?;
    let metrics = if args.no_metrics {
        None
    } else {
        Some(crate::metrics_cmd::after_ingest(&store)?)
    };
    let c = &shared.counters;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let records = c.records.load(Ordering::Relaxed);
    println!(
        "ingested {} log group(s), {:.1} MB in {:.2} s ({:.0} records/s)",
        shared.sources.len(),
        c.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        secs,
        records as f64 / secs
    );
    for t in [
        TableName::TunnelActivity,
        TableName::BgpEvents,
        TableName::Traffic,
        TableName::Rejects,
    ] {
        println!(
            "  {:<16} {:>12}",
            t.as_str(),
            c.rows[t as usize].load(Ordering::Relaxed)
        );
    }
    if let Some(m) = metrics {
        println!(
            "metrics: {} datapoints for {} tunnels",
            m.datapoints, m.tunnels
        );
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

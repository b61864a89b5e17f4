//! `tunnelwatch serve --config FILE`: the long-running pipeline from a config file, and the
//! runner `demo` shares with it — open the store, start the decode and writer threads, start
//! every source with its checkpoints, serve HTTP, and on SIGINT/SIGTERM (or when every finite
//! source has ended) stop in order: sources, decode, writer (flush), HTTP.
//!
//! `serve --check-config` reads and builds the config without starting anything and prints each
//! error as `FILE:LINE:COL: message` (exit 2 when there is one).
//!
//! Exit codes: 0 clean stop, 1 runtime failure (a port in use, a source that failed, the store),
//! 2 bad config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tunnelwatch_ingest::pipeline as source_pipeline;
use tunnelwatch_ingest::sources::Source;
use tunnelwatch_monitor::MonitorConfig;
use tunnelwatch_pipeline::runner::{self as pipeline, RunSpec, Shared, Started};
use tunnelwatch_queries::StoreOptions;

/// How far back `serve` applies records to the live tunnel state and metrics.
const LIVE_WINDOW_MS: i64 = 24 * 3_600_000;

#[derive(Args)]
pub struct ServeArgs {
    /// The config file (see tunnelwatch.example.toml).
    #[arg(long, short = 'c', default_value = "tunnelwatch.toml")]
    config: PathBuf,
    /// Only read and validate the config (and build its sources); print errors with line numbers.
    #[arg(long)]
    check_config: bool,
    /// Override the config's HTTP listen address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Override the config's data directory.
    #[arg(long)]
    data: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let loaded = match crate::config::load(&args.config) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "tunnelwatch: {} error{} in {}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                args.config.display()
            );
            return Ok(ExitCode::from(2));
        }
    };
    if args.check_config {
        let kinds: Vec<String> = loaded
            .sources
            .iter()
            .map(|(n, s)| format!("{n} ({})", s.kind()))
            .collect();
        println!(
            "{}: ok — {} source{}: {}; {} connection{} in the inventory; data {}",
            args.config.display(),
            kinds.len(),
            if kinds.len() == 1 { "" } else { "s" },
            kinds.join(", "),
            loaded.config.connections.len(),
            if loaded.config.connections.len() == 1 {
                ""
            } else {
                "s"
            },
            loaded.config.data.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let description = format!(
        "serve: {} ({} source{})",
        args.config.display(),
        loaded.sources.len(),
        if loaded.sources.len() == 1 { "" } else { "s" }
    );
    run_pipeline(Spec {
        data: args.data.unwrap_or(loaded.config.data),
        listen: args.listen.unwrap_or(loaded.listen),
        description,
        sources: loaded.sources,
        budget_bytes: loaded.budget_bytes,
        store: StoreOptions {
            sync: loaded.sync,
            flush_bytes: loaded.store_memory.unwrap_or(usize::MAX),
            ..StoreOptions::default()
        },
        monitor: loaded.monitor,
        retention_days: loaded.config.retention_days,
        live_since_ms: pipeline::now_ms() - LIVE_WINDOW_MS,
        guide: Box::new(print_serve_guide),
        alarms: loaded.alarms,
        notifiers: loaded.notifiers,
        health_notify: loaded.health_notify,
        http: loaded.http,
        gateway_peers: (!loaded.gateway_peers.is_empty())
            .then(|| std::sync::Arc::new(loaded.gateway_peers)),
    })
}

/// Prints what is running and where, once it listens.
/// Prints the guide, given the HTTP server's base URL (`http://…` or `https://…`).
pub type Guide = Box<dyn FnOnce(&Shared, &str)>;

/// Everything the runner needs.
pub struct Spec {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub description: String,
    pub sources: Vec<(String, Box<dyn Source>)>,
    pub budget_bytes: usize,
    pub store: StoreOptions,
    pub monitor: MonitorConfig,
    pub retention_days: Option<u32>,
    /// Records older than this (epoch ms) are stored but not applied to the live tunnel state.
    pub live_since_ms: i64,
    /// Printed once the HTTP server and the network sources listen.
    pub guide: Guide,
    /// Alarms evaluated as minutes complete; transitions go to `alarm_history`.
    pub alarms: Vec<tunnelwatch_monitor::alarm::AlarmDefinition>,
    /// The notifiers the alarms' actions name (through the outbox in the data directory).
    pub notifiers:
        std::collections::BTreeMap<String, Box<dyn tunnelwatch_exporters::notify::Notifier>>,
    /// The notifiers Health events go to (Health is evaluated every few minutes either way).
    pub health_notify: Vec<String>,
    /// API token and request limits of the HTTP server.
    pub http: crate::http::Settings,
    /// The inventory's tunnels by address, for gateway lines.
    pub gateway_peers: Option<std::sync::Arc<tunnelwatch_parsers::gateway::PeerMap>>,
}

pub fn run_pipeline(spec: Spec) -> Result<ExitCode> {
    let http_settings = spec.http.clone();
    let run = match pipeline::start_run(RunSpec {
        data: spec.data.clone(),
        store: spec.store.clone(),
        sources: &spec.sources,
        budget_bytes: spec.budget_bytes,
        monitor: spec.monitor,
        live_metrics: true,
        live_since_ms: spec.live_since_ms,
        retention_days: spec.retention_days,
        description: spec.description.clone(),
        alarms: spec.alarms,
        notifiers: spec.notifiers,
        health_notify: Some(spec.health_notify),
        gateway_peers: spec.gateway_peers,
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "tunnelwatch: cannot start on the data directory {}: {e}",
                spec.data.display()
            );
            return Ok(ExitCode::from(1));
        }
    };
    for line in run.recovery.report() {
        eprintln!("tunnelwatch: {line}");
    }
    let Started {
        shared,
        running,
        out,
        checkpoints,
        ..
    } = run;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (trigger, shutdown) = source_pipeline::shutdown();
    let listener = match runtime.block_on(tokio::net::TcpListener::bind(spec.listen)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tunnelwatch: cannot listen on {}: {e}", spec.listen);
            drop(out);
            running.join()?;
            return Ok(ExitCode::from(1));
        }
    };
    let addr = listener.local_addr()?;

    let listens: Vec<bool> = spec.sources.iter().map(|(_, s)| s.listens()).collect();
    // The decode stage ends when the last sender is gone: only sources hold one now.
    let mut tasks = pipeline::spawn_sources(
        runtime.handle(),
        spec.sources,
        &shared.sources,
        out,
        &shutdown,
        &checkpoints,
    );

    let tls = http_settings.tls.clone();
    // A request may keep its connection silent for its timeout; past that and a margin, the
    // connection is closed.
    let idle = tunnelwatch_ingest::idle::limit_for(http_settings.request_timeout);
    let base = match &tls {
        Some(_) => format!("https://{addr}"),
        None => format!("http://{addr}"),
    };
    let app = crate::http::router(shared.clone(), http_settings);
    let http_stop = shutdown.clone();
    let server = runtime.spawn(tunnelwatch_ingest::tls::serve(
        listener,
        tls,
        idle,
        app,
        || {},
        async move { http_stop.wait().await },
    ));

    let failed = runtime.block_on(async {
        // One signal listener for the whole run: a signal is never missed between iterations.
        let stop = stop_signal();
        tokio::pin!(stop);
        // Network sources report their address once bound (a bind failure ends the source).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline
            && !tasks.is_empty()
            && shared
                .sources
                .iter()
                .zip(&listens)
                .any(|(s, listens)| *listens && s.listening.get().is_none())
        {
            tokio::select! {
                _ = &mut stop => return None,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                Some(done) = tasks.join_next() => {
                    if let Some(f) = report(done) {
                        return Some(f);
                    }
                }
            }
        }
        (spec.guide)(&shared, &base);
        loop {
            tokio::select! {
                _ = &mut stop => {
                    tracing::info!("stopping: sources first, then the store flushes");
                    return None;
                }
                done = tasks.join_next() => match done {
                    None => {
                        tracing::info!("every source has ended; stopping");
                        return None;
                    }
                    Some(done) => {
                        if let Some(f) = report(done) {
                            return Some(f);
                        }
                    }
                },
            }
        }
    });
    trigger.trigger();
    shared.stopping.store(true, Ordering::Relaxed);
    let mut exit = if failed.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    runtime.block_on(async {
        let drained = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(done) = tasks.join_next().await {
                if report(done).is_some() {
                    exit = ExitCode::from(1);
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("sources did not stop within 30 s; abandoning them");
            tasks.abort_all();
        }
    });
    let store = running.join()?;
    match runtime.block_on(server) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "HTTP server failed"),
        Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
    }
    drop(store);
    let c = &shared.counters;
    tracing::info!(
        "stopped after {} records ({} rejected); data kept in {}",
        c.records.load(Ordering::Relaxed),
        c.rejects.load(Ordering::Relaxed),
        spec.data.display()
    );
    Ok(exit)
}

/// Prints a source that ended with an error; returns its name then.
fn report(
    done: Result<
        (String, Result<(), tunnelwatch_ingest::sources::SourceError>),
        tokio::task::JoinError,
    >,
) -> Option<String> {
    match done {
        Ok((_, Ok(()))) => None,
        Ok((name, Err(e))) => {
            tracing::error!(source = %name, "source `{name}` failed: {e}");
            Some(name)
        }
        Err(e) => {
            tracing::error!(error = %e, "a source task failed");
            Some(String::from("?"))
        }
    }
}

fn print_serve_guide(shared: &Shared, base: &str) {
    let d = shared.data.display();
    let mut lines = vec![format!(
        "tunnelwatch serve is running. {}\n\n  Status page   {base}/\n  SQL           curl -s {base}/api/v1/query --data-binary \"SELECT count(*) FROM tunnel_activity\"\n  Prometheus    {base}/metrics\n  Data          {d}\n\n  Sources",
        shared.description
    )];
    for s in &shared.sources {
        match s.listening.get() {
            Some(a) => lines.push(format!("    {:<20} {:<16} {a}", s.name, s.kind)),
            None => lines.push(format!("    {:<20} {}", s.name, s.kind)),
        }
    }
    lines.push("\nCtrl-C stops.".into());
    println!("{}", lines.join("\n"));
}

/// Resolves on SIGINT or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

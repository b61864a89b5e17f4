//! `tunnelwatch demo`: the main job on an embedded default. A simulated fleet (history first,
//! then live) streams through the parsers into a store in a fresh data directory, and the HTTP
//! server serves the status page, the SQL endpoint and `/metrics`. Ctrl-C (or SIGTERM) stops
//! it cleanly: the simulator stops, the store flushes, the server drains.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use tunnelwatch_ingest::simulator::live::{LiveFleet, SystemClock};
use tunnelwatch_ingest::simulator::{SimConfig, Simulation, parse_duration};
use tunnelwatch_queries::{Store, StoreOptions};

use crate::live::{self, Shared, now_ms};

#[derive(Args)]
pub struct DemoArgs {
    /// Address for the HTTP server (status page, /api/query, /metrics).
    #[arg(long, default_value = "127.0.0.1:9977")]
    listen: SocketAddr,
    /// Data directory (default: a new directory under the system's temporary directory).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Simulated VPN connections (two tunnels each).
    #[arg(long, default_value_t = 20)]
    connections: usize,
    /// Random seed of the fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// History to generate at once before going live, e.g. 6h, 2d.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    history: i64,
    /// Simulated seconds per wall-clock second once live.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Random incidents per connection per simulated day.
    #[arg(long, default_value_t = 6.0)]
    faults_per_day: f64,
}

/// How far past now the simulated fleet is planned (the demo runs at most this long).
const HORIZON_MS: i64 = 30 * 86_400_000;

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        eprintln!("tunnelwatch: --speed must be a positive number");
        return Ok(ExitCode::from(2));
    }
    let now = now_ms();
    let start = now - args.history - (now - args.history).rem_euclid(60_000);
    let sim = match Simulation::new(SimConfig {
        connections: args.connections,
        start_ms: start,
        duration_ms: (now - start) + HORIZON_MS,
        seed: args.seed,
        random_faults: args.faults_per_day > 0.0,
        random_faults_per_day: args.faults_per_day,
        ..SimConfig::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tunnelwatch: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let data = match &args.data {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("tunnelwatch-demo-{}", now / 1000)),
    };
    let (store, _) = Store::open(&data, StoreOptions::default())
        .with_context(|| format!("opening the data directory {}", data.display()))?;
    let description = format!(
        "Demo: {} simulated VPN connections ({} tunnels), seed {}, {} of history, then live at {}× real time.",
        args.connections,
        sim.tunnel_count(),
        args.seed,
        humanize(args.history),
        args.speed
    );
    let shared = Arc::new(Shared::new(data.clone(), "simulator", description.clone()));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = match runtime.block_on(tokio::net::TcpListener::bind(args.listen)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tunnelwatch: cannot listen on {}: {e}", args.listen);
            return Ok(ExitCode::from(1));
        }
    };
    let addr = listener.local_addr()?;

    let (tx, rx) = sync_channel::<live::Job>(16);
    let writer_shared = shared.clone();
    let writer = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || live::run_writer(store, rx, writer_shared))?;
    let stop = Arc::new(AtomicBool::new(false));
    let fleet = LiveFleet::new(sim.fleet(), SystemClock, now, args.speed);
    let (sim_shared, sim_stop) = (shared.clone(), stop.clone());
    let source = std::thread::Builder::new()
        .name("simulator".into())
        .spawn(move || live::run_simulator(fleet, sim_shared, tx, sim_stop))?;

    print_guide(&description, addr, &data);

    let app = crate::http::router(shared.clone());
    let served = runtime.block_on(async {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });
    eprintln!("tunnelwatch: stopping: flushing the store…");
    stop.store(true, Ordering::Relaxed);
    source
        .join()
        .map_err(|_| anyhow!("the simulator thread panicked"))?;
    writer
        .join()
        .map_err(|_| anyhow!("the store writer thread panicked"))?
        .context("writing to the store")?;
    served.context("HTTP server")?;
    let c = &shared.counters;
    eprintln!(
        "tunnelwatch: stopped after {} records ({} rejected); data kept in {}",
        c.records.load(Ordering::Relaxed),
        c.rejects.load(Ordering::Relaxed),
        data.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn humanize(ms: i64) -> String {
    let h = ms / 3_600_000;
    let m = (ms % 3_600_000) / 60_000;
    match (h, m) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn print_guide(description: &str, addr: SocketAddr, data: &std::path::Path) {
    let d = data.display();
    println!(
        r#"tunnelwatch demo is running. {description}

  Status page   http://{addr}/
  SQL           curl -s http://{addr}/api/query --data-binary "SELECT message_kind, count(*) AS n FROM tunnel_activity GROUP BY 1 ORDER BY 2 DESC"
  Prometheus    http://{addr}/metrics
                scrape config:  - job_name: tunnelwatch
                                  static_configs: [{{ targets: ['{addr}'] }}]
  Data          {d}
                tunnelwatch query --data {d} --saved errors-by-kind

Ctrl-C stops."#
    );
}

async fn shutdown_signal() {
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

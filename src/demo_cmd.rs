//! `tunnelwatch demo`: the main job on an embedded default. A simulated fleet (history first,
//! then live) streams through the parsers into a store in a fresh data directory, and the HTTP
//! server serves the status page, the SQL endpoint and `/metrics`. Ctrl-C (or SIGTERM) stops
//! it cleanly: the simulator stops, the store flushes, the server drains. It is `serve` with one
//! `simulator` source (the same runner).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use tunnelwatch_ingest::pipeline::DEFAULT_BUDGET_BYTES;
use tunnelwatch_ingest::simulator::parse_duration;
use tunnelwatch_ingest::sources::{BuildSource, simulator};
use tunnelwatch_monitor::MonitorConfig;
use tunnelwatch_queries::StoreOptions;

use crate::serve_cmd::{Spec, run_pipeline};
use tunnelwatch_pipeline::runner::now_ms;

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
    #[arg(long, default_value = "6h")]
    history: String,
    /// Simulated seconds per wall-clock second once live.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Random incidents per connection per simulated day.
    #[arg(long, default_value_t = 6.0)]
    faults_per_day: f64,
    /// The customer gateways' own logs beside AWS's (an IKE and a BGP daemon: strongswan or
    /// libreswan, frr or bird), or `none`.
    #[arg(long, default_value = "strongswan,frr", value_name = "DAEMONS")]
    gateway: String,
}

/// The demo's file notifier (into its data directory).
const DEMO_NOTIFIER: &str = "demo-file";

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let config = simulator::Config {
        connections: args.connections,
        seed: args.seed,
        history: args.history.clone(),
        speed: args.speed,
        faults_per_day: args.faults_per_day,
        scenarios: Vec::new(),
        gateway: Some(args.gateway.clone()),
    };
    let source = match config.build("simulator") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tunnelwatch: {}", e.message);
            return Ok(ExitCode::from(2));
        }
    };
    let history = parse_duration(&args.history).unwrap_or(0);
    let data = match &args.data {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("tunnelwatch-demo-{}", now_ms() / 1000)),
    };
    let description = format!(
        "Demo: {} simulated VPN connections ({} tunnels), seed {}, {} of history, then live at {}× real time.",
        args.connections,
        args.connections * 2,
        args.seed,
        humanize(history),
        args.speed
    );
    // The preset, its transitions into ALARM and back to OK notified through a file notifier.
    let notifications = data.join("notifications.ndjson");
    let mut alarms = crate::config::preset_alarms("aws-vpn").unwrap_or_default();
    for a in &mut alarms {
        a.actions.alarm = vec![DEMO_NOTIFIER.to_owned()];
        a.actions.ok = vec![DEMO_NOTIFIER.to_owned()];
    }
    let notifier = tunnelwatch_exporters::notify::NotifierConfig::File(
        tunnelwatch_exporters::notify::file::Config {
            path: notifications,
        },
    );
    let mut notifiers = std::collections::BTreeMap::new();
    match notifier.build(DEMO_NOTIFIER) {
        Ok(n) => {
            notifiers.insert(DEMO_NOTIFIER.to_owned(), n);
        }
        Err(e) => {
            eprintln!("tunnelwatch: {e}");
            return Ok(ExitCode::from(2));
        }
    }
    run_pipeline(Spec {
        data,
        listen: args.listen,
        description,
        sources: vec![("simulator".to_owned(), source)],
        budget_bytes: DEFAULT_BUDGET_BYTES,
        store: StoreOptions::default(),
        monitor: MonitorConfig::default(),
        retention_days: None,
        live_since_ms: now_ms() - history - 120_000,
        guide: Box::new(|shared, base| print_guide(&shared.description, base, &shared.data)),
        alarms,
        notifiers,
        health_notify: vec![DEMO_NOTIFIER.to_owned()],
        http: crate::http::Settings::default(),
        gateway_peers: None,
    })
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

fn print_guide(description: &str, base: &str, data: &std::path::Path) {
    let d = data.display();
    println!(
        r#"tunnelwatch demo is running. {description}

  Try first     tunnelwatch diagnose --data {d}
                why each troubled connection broke, with evidence and what to change
                (cargo run -- diagnose --data {d}; add a vpn-… id for one connection's timeline)
  Status page   {base}/
                the fleet, in trouble first; click a connection for its 24 h chart
  API           curl -s {base}/api/v1/connections        (docs/openapi.yaml)
  SQL           curl -s {base}/api/v1/query --data-binary "SELECT message_kind, count(*) AS n FROM tunnel_activity GROUP BY 1 ORDER BY 2 DESC"
  Prometheus    {base}/metrics
                prometheus --config.file=dashboards/prometheus/prometheus.yml   (rules and Grafana: dashboards/README.md)
  Alarms        the aws-vpn preset (docs/alarms.md), transitions as minutes complete:
                curl -s {base}/api/v1/alarms?state=ALARM
                curl -s {base}/api/v1/query --data-binary "SELECT ts, alarm_instance, old_state, new_state FROM alarm_history WHERE new_state <> 'OK' OR old_state = 'ALARM' ORDER BY ts DESC LIMIT 20"
                notifications (CloudWatch's SNS JSON) appended to {d}/notifications.ndjson
  Data          {d}
                tunnelwatch query --data {d} --saved errors-by-kind

Ctrl-C stops."#
    );
}

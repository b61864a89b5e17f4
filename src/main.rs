//! The `tunnelwatch` command line: parses arguments and wires the library crates together.
//! Exit codes: 0 ok, 1 runtime failure, 2 usage or bad input (DESIGN §7).

mod alarms_cmd;
mod config;
mod demo_cmd;
mod diagnose_cmd;
mod http;
mod ingest_cloudwatch;
mod ingest_cmd;
mod metrics_cmd;
mod output;
mod parse_cmd;
mod query_cmd;
mod serve_cmd;
mod simulate_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tunnelwatch",
    version,
    about = "Observability pipeline for AWS Site-to-Site VPN fleets",
    long_about = "Observability pipeline for AWS Site-to-Site VPN fleets: parses tunnel activity \
                  (IKE/DPD) and tunnel BGP logs from files, gateways and CloudWatch Logs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Operational log level (error, warn, info, debug, trace) or a RUST_LOG-style filter
    /// (`info,tunnelwatch_ingest=debug`); default: RUST_LOG, else info. Logs go to stderr.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Operational log lines as text or JSON (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Installs the operational log: `tracing` events to stderr, filtered by `--log-level` (else
/// `RUST_LOG`, else `info`). Secrets (tokens, keys) are never in an event's fields or message.
fn init_logging(level: Option<&str>, format: LogFormat) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let spec = level
        .map(str::to_owned)
        .or(from_env)
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_new(&spec).map_err(|e| format!("--log-level {spec:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum Command {
    /// Parse VPN log input and print one normalised event per line as JSON; bad records go to
    /// stderr with their position.
    Parse(parse_cmd::ParseArgs),
    /// The main job on an embedded default: a simulated fleet streams through the whole
    /// pipeline; serves a status page, SQL and /metrics.
    Demo(demo_cmd::DemoArgs),
    /// The long-running pipeline from a config file: files, syslog, HTTP push, Firehose and
    /// CloudWatch Logs sources into the store; HTTP status page, SQL and /metrics.
    Serve(serve_cmd::ServeArgs),
    /// Load files, directories, globs or stdin into the data directory (durable Parquet);
    /// re-running over the same input adds nothing twice.
    Ingest(ingest_cmd::IngestArgs),
    /// Run a read-only SQL query (or a saved one) over the data directory.
    Query(query_cmd::QueryArgs),
    /// Write a simulated fleet's logs (one file per log stream) and truth.json into a directory.
    Simulate(simulate_cmd::SimulateArgs),
    /// The AWS/VPN metrics table: `metrics rebuild` recomputes it from the stored events.
    Metrics(metrics_cmd::MetricsArgs),
    /// Export stored data: `export openmetrics` writes the datapoints for Prometheus backfill.
    Export(metrics_cmd::ExportArgs),
    /// Alarms: `alarms test` evaluates alarm definitions over stored metrics and prints what
    /// they would have done.
    Alarms(alarms_cmd::AlarmsArgs),
    /// Why connections are down or flapping: the fleet ranked by trouble, or one connection's
    /// timeline, root causes with evidence and remedies.
    Diagnose(diagnose_cmd::DiagnoseArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Err(e) = init_logging(cli.log_level.as_deref(), cli.log_format) {
        eprintln!("tunnelwatch: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Parse(args) => parse_cmd::run(args),
        Command::Demo(args) => demo_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Ingest(args) => ingest_cmd::run(args),
        Command::Query(args) => query_cmd::run(args),
        Command::Simulate(args) => simulate_cmd::run(args),
        Command::Metrics(args) => metrics_cmd::run(args),
        Command::Export(args) => metrics_cmd::run_export(args),
        Command::Alarms(args) => alarms_cmd::run(args),
        Command::Diagnose(args) => diagnose_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tunnelwatch: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

//! `tunnelwatch simulate`: writes a simulated fleet's logs into a directory, one file per log
//! stream plus `truth.json`, using `tunnelwatch_ingest::simulator`. This file only turns flags
//! into a [`SimConfig`], checks the output directory, shows progress on a terminal and prints
//! the one-line summary. Exit 2 for bad arguments (including a scenario that does not fit the
//! duration), 1 for I/O failures.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use tunnelwatch_ingest::simulator::gateway::GatewaySides;
use tunnelwatch_ingest::simulator::output::{self, Progress};
use tunnelwatch_ingest::simulator::{
    DEFAULT_START_MS, OutputFormat, Scenario, SimConfig, Simulation, parse_duration,
};

#[derive(Args)]
#[command(after_help = "\
Files: <vpn>-<ip>.log (tunnel activity), <vpn>_<ip>-bgp.log (tunnel BGP, BGP connections only),
<vpn>_<ip>-traffic.log (TunnelTraffic counter samples, one a minute, always JSON) and truth.json
(the fleet inventory and every injected incident with its time span and message kinds).
With --gateway, also each tunnel's customer-gateway logs, <vpn>_<ip>-cgw-<daemon>.log, in the
daemon's own log-file format (charon and pluto write no year: ingest them with --syslog-year
when the simulated time is not in the current year).

Scenarios: psk-mismatch, proposal-mismatch, dpd-flap, ts-unacceptable, bgp-hold-timer,
prefix-limit, as-path-loop, endpoint-replacement, single-tunnel, lifetime-mismatch (named only).

Examples:
  tunnelwatch simulate --out /tmp/fleet
  tunnelwatch simulate --out /tmp/st --connections 3 --duration 6h --scenario single-tunnel --no-random-faults
  tunnelwatch simulate --out /tmp/big --connections 200 --duration 16d --format text
  tunnelwatch simulate --out /tmp/both --gateway strongswan,frr --scenario psk-mismatch")]
pub struct SimulateArgs {
    /// Directory to write into (created if missing; must be empty unless --overwrite).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of VPN connections (two tunnels each), 1 to 5000.
    #[arg(long, default_value_t = 10, value_name = "N")]
    connections: usize,
    /// Simulated time span: a number and a unit (s, m, h, d), e.g. 90m, 6h, 2d, 1h30m.
    #[arg(long, default_value = "6h", value_parser = parse_duration, value_name = "D")]
    duration: i64,
    /// Simulation start, RFC 3339 (e.g. 2026-11-02T00:00:00Z), or `now` (the current minute).
    /// Default: 2026-11-02T00:00:00Z, fixed so that the same seed gives the same bytes.
    #[arg(long, value_parser = parse_start, value_name = "T")]
    start: Option<i64>,
    /// Random seed: the same seed and flags give byte-identical output.
    #[arg(long, default_value_t = 1, value_name = "S")]
    seed: u64,
    /// Record rendering for activity and BGP logs: json (AWS's default) or text (the documented
    /// field order, space-separated).
    #[arg(long, default_value = "json", value_parser = parse_format, value_name = "F")]
    format: OutputFormat,
    /// Inject this fault scenario (repeatable; see the list below).
    #[arg(long = "scenario", value_parser = parse_scenario, value_name = "NAME")]
    scenarios: Vec<Scenario>,
    /// Inject only the --scenario faults, no random ones.
    #[arg(long)]
    no_random_faults: bool,
    /// At most R records per tunnel within one second of simulated time: further records are
    /// delayed to the next second (never dropped, order kept), as a throttled log pipeline would.
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: Option<u32>,
    /// Also write the customer gateways' own logs: one IKE daemon (strongswan or libreswan)
    /// and/or one BGP daemon (frr or bird, on BGP connections), e.g. `strongswan,frr`.
    #[arg(long, value_parser = GatewaySides::parse, value_name = "DAEMONS")]
    gateway: Option<GatewaySides>,
    /// Remove earlier simulate output (*.log named after a stream, truth.json) from DIR first.
    #[arg(long)]
    overwrite: bool,
}

fn parse_start(s: &str) -> Result<i64, String> {
    if s.eq_ignore_ascii_case("now") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_millis() as i64;
        return Ok(now - now.rem_euclid(60_000));
    }
    tunnelwatch_parsers::time::parse_readable(s)
        .ok_or_else(|| format!("not an RFC 3339 time: {s:?}, e.g. 2026-11-02T00:00:00Z"))
}

fn parse_format(s: &str) -> Result<OutputFormat, String> {
    OutputFormat::parse(s).ok_or_else(|| format!("unknown format {s:?}; expected json or text"))
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    Scenario::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        format!(
            "unknown scenario {s:?}; expected one of {}",
            names.join(", ")
        )
    })
}

/// Is this a file an earlier `simulate` wrote?
fn is_simulate_output(name: &str) -> bool {
    name == "truth.json"
        || (name.ends_with(".log")
            && name.starts_with("vpn-")
            && tunnelwatch_parsers::identity::parse_tunnel_name(name).is_some())
}

/// Creates `dir`, or checks that it holds nothing (or, with `overwrite`, removes what an
/// earlier run wrote). `Ok(Some(message))` is a usage error.
fn prepare_dir(dir: &Path, overwrite: bool) -> Result<Option<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut others = 0;
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if overwrite && is_simulate_output(&name) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("{}: cannot remove", entry.path().display()))?;
        } else {
            others += 1;
        }
    }
    Ok((others > 0).then(|| {
        if overwrite {
            format!(
                "{}: holds {others} file(s) that simulate did not write; choose another --out",
                dir.display()
            )
        } else {
            format!(
                "{}: not empty; choose an empty or new directory, or pass --overwrite",
                dir.display()
            )
        }
    }))
}

pub fn run(args: SimulateArgs) -> Result<ExitCode> {
    let config = SimConfig {
        connections: args.connections,
        start_ms: args.start.unwrap_or(DEFAULT_START_MS),
        duration_ms: args.duration,
        seed: args.seed,
        format: args.format,
        scenarios: args.scenarios,
        random_faults: !args.no_random_faults,
        rate_limit: args.rate_limit,
        gateway: args.gateway.unwrap_or_default(),
        ..SimConfig::default()
    };
    let sim = match Simulation::new(config) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("tunnelwatch simulate: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(message) = prepare_dir(&args.out, args.overwrite)? {
        eprintln!("tunnelwatch simulate: {message}");
        return Ok(ExitCode::from(2));
    }
    let started = Instant::now();
    let progress = Progress::default();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let show = std::io::stderr().is_terminal();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (summary, _truth) = std::thread::scope(|scope| {
        if show {
            let (progress, done) = (&progress, &done);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                    let records = progress.records.load(Ordering::Relaxed);
                    let mb = progress.bytes.load(Ordering::Relaxed) as f64 / 1e6;
                    let s = started.elapsed().as_secs_f64();
                    eprint!(
                        "\r{records} records, {mb:.1} MB, {:.0} records/s   ",
                        records as f64 / s.max(1e-9)
                    );
                    let _ = std::io::stderr().flush();
                }
            });
        }
        let result = output::write_dir(&sim, &args.out, workers, &progress);
        done.store(true, Ordering::Relaxed);
        result
    })?;
    if show {
        eprint!("\r\x1b[K");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "simulate: {} files + truth.json, {} records, {} bytes ({:.1} MB) in {:.2} s ({:.0} records/s); {} incident(s) in {}",
        summary.files,
        summary.records,
        summary.bytes,
        summary.bytes as f64 / 1e6,
        secs,
        summary.records as f64 / secs.max(1e-9),
        summary.incidents,
        args.out.join("truth.json").display(),
    );
    Ok(ExitCode::SUCCESS)
}

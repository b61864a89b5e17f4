//! `tunnelwatch diagnose --data DIR [VPN_ID] [--since T] [--until T] [--output text|json]`:
//! without an id, the fleet's connections ranked by trouble on one screen; with one, per tunnel
//! its down intervals and flap figures, then each diagnosis with its evidence and remedy, and
//! the SQL that reproduces the evidence; with the gateway's logs in the store, what the
//! gateway said and which side to fix, and (`--timeline`) both sides' records in one timeline. The rules are `tunnelwatch_monitor::diagnose`; the
//! reading is `tunnelwatch_pipeline::diagnose`; this is the command line and the printing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use tunnelwatch_monitor::diagnose::{ConnectionReport, Diagnosis};
use tunnelwatch_pipeline::diagnose::{
    FleetDiagnosis, TunnelTimeline, diagnose, gateway_sql, records_sql, timeline,
};
use tunnelwatch_queries::Snapshot;

use crate::metrics_cmd::parse_time;
use crate::output::rfc3339;

#[derive(Args)]
pub struct DiagnoseArgs {
    /// Data directory.
    #[arg(long, default_value = "./tunnelwatch-data")]
    data: PathBuf,
    /// One connection (`vpn-…`): its timeline, diagnoses, evidence and remedies.
    vpn_id: Option<String>,
    /// First record time to read (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_time, value_name = "T")]
    since: Option<i64>,
    /// Read records before this time.
    #[arg(long, value_parser = parse_time, value_name = "T")]
    until: Option<i64>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// With a connection: also print each tunnel's merged timeline, AWS's records and the
    /// customer gateway's lines side by side in time order.
    #[arg(long)]
    timeline: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn span(from: i64, until: Option<i64>) -> String {
    match until {
        Some(u) => format!("{} – {} ({})", rfc3339(from), rfc3339(u), minutes(u - from)),
        None => format!("{} – still going on", rfc3339(from)),
    }
}

fn minutes(ms: i64) -> String {
    let m = (ms + 30_000) / 60_000;
    if m >= 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{m} min")
    }
}

fn print_diagnosis(d: &Diagnosis) {
    println!(
        "  {} [{}] tunnel {}, confidence {:.0} %{}",
        d.title,
        d.cause,
        d.tunnel_ip,
        d.confidence * 100.0,
        if d.episodes > 1 {
            format!(", {} episodes", d.episodes)
        } else {
            String::new()
        }
    );
    println!("    when:     {}", span(d.from_ms, d.until_ms));
    if let Some(up) = d.recurs_after_ms {
        println!("    period:   each down came after {} up", minutes(up));
    }
    let evidence: Vec<String> = d
        .evidence
        .iter()
        .map(|e| {
            format!(
                "{} ×{} ({}…{})",
                e.message_kind,
                e.count,
                &rfc3339(e.first_ms)[11..19],
                &rfc3339(e.last_ms)[11..19]
            )
        })
        .collect();
    println!("    evidence: {}", evidence.join(", "));
    println!("    remedy:   {}", d.remedy);
    if let Some(g) = &d.gateway {
        println!("    fix on:   {} — {}", g.side.as_str(), g.verdict);
        for e in &g.evidence {
            println!(
                "    gateway:  {} {} ×{} ({}…{}): {}",
                e.daemon,
                e.gateway_kind,
                e.count,
                &rfc3339(e.first_ms)[11..19],
                &rfc3339(e.last_ms)[11..19],
                e.example
            );
        }
        for (label, list) in &g.proposals {
            println!("    proposals ({label} by the gateway): {list}");
        }
    }
}

fn print_timeline(timeline: &[TunnelTimeline]) {
    for (ip, entries) in timeline {
        println!();
        println!("timeline of tunnel {ip} (AWS and the customer gateway):");
        let side = entries.iter().map(|e| e.side.len()).max().unwrap_or(0);
        let kind = entries.iter().map(|e| e.kind.len()).max().unwrap_or(0);
        for e in entries {
            println!(
                "  {}  {:<side$} {:<7} {:<kind$} {}",
                rfc3339(e.ts),
                e.side,
                e.severity.as_str(),
                e.kind,
                e.details
            );
        }
    }
}

pub fn run(args: DiagnoseArgs) -> Result<ExitCode> {
    if let Some(v) = &args.vpn_id
        && !v.starts_with("vpn-")
    {
        eprintln!("tunnelwatch: {v:?} is not a VPN connection id (vpn-…)");
        return Ok(ExitCode::from(2));
    }
    let snapshot = Snapshot::read(&args.data)?;
    let fleet = diagnose(&snapshot, args.vpn_id.as_deref(), args.since, args.until)?;
    let reports = &fleet.connections;
    if let Some(v) = &args.vpn_id
        && reports.is_empty()
    {
        eprintln!("tunnelwatch: no records of {v} in {}", args.data.display());
        return Ok(ExitCode::from(1));
    }
    if args.timeline && args.vpn_id.is_none() {
        eprintln!("tunnelwatch: --timeline needs a connection (vpn-…)");
        return Ok(ExitCode::from(2));
    }
    let merged = match (&args.vpn_id, args.timeline) {
        (Some(v), true) => Some(timeline(&snapshot, v, args.since, args.until)?),
        _ => None,
    };
    match args.output {
        Output::Json => {
            let sql = records_sql(args.vpn_id.as_deref(), args.since, args.until);
            let mut out = serde_json::json!({
                "fleet_events": fleet.fleet_events,
                "connections": reports,
                "sql": sql,
                "gateway_sql": gateway_sql(args.since, args.until),
            });
            if let Some(t) = &merged {
                out["timeline"] = serde_json::to_value(
                    t.iter()
                        .map(|(ip, e)| serde_json::json!({"tunnel_ip": ip, "entries": e}))
                        .collect::<Vec<_>>(),
                )?;
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Output::Text if args.vpn_id.is_none() => print_fleet(&fleet),
        Output::Text => {
            print_connection(&reports[0], &args);
            if let Some(t) = &merged {
                print_timeline(t);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_fleet(fleet: &FleetDiagnosis) {
    let reports = &fleet.connections;
    for e in &fleet.fleet_events {
        println!(
            "Fleet-wide: {} connections went down within {} min of {} ({}): a shared upstream \
             cause is likely (the internet path, a provider, an AWS-side event), not {} separate \
             faults.",
            e.connections.len(),
            tunnelwatch_monitor::diagnose::FLEET_WINDOW_MS / 60_000,
            rfc3339(e.from_ms),
            e.causes.join(", "),
            e.connections.len()
        );
        println!(
            "  {}",
            e.connections
                .iter()
                .map(|c| &**c)
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!();
    }
    let troubled: Vec<&ConnectionReport> =
        reports.iter().filter(|r| !r.diagnoses.is_empty()).collect();
    println!(
        "{} connection(s), {} with trouble (most first):",
        reports.len(),
        troubled.len()
    );
    println!();
    println!("  {:<24} {:>10}  causes", "connection", "down");
    for r in &troubled {
        let down: i64 = r.tunnels.iter().map(|t| t.down_ms).sum();
        let mut causes: Vec<&str> = Vec::new();
        for d in &r.diagnoses {
            if !causes.contains(&d.cause) {
                causes.push(d.cause);
            }
        }
        println!(
            "  {:<24} {:>10}  {}",
            r.vpn_id,
            minutes(down),
            causes.join(", ")
        );
    }
    if let Some(first) = troubled.first() {
        println!();
        println!(
            "Details: tunnelwatch diagnose --data DIR {} (timeline, evidence, remedies)",
            first.vpn_id
        );
    }
}

fn print_connection(r: &ConnectionReport, args: &DiagnoseArgs) {
    println!("{}", r.vpn_id);
    for t in &r.tunnels {
        println!();
        println!(
            "tunnel {}: down {} time(s), {} in all{}{}",
            t.tunnel_ip,
            t.down.len(),
            minutes(t.down_ms),
            t.mtbf_ms
                .map(|m| format!(", every {} on average", minutes(m)))
                .unwrap_or_default(),
            t.mttr_ms
                .map(|m| format!(", back after {} on average", minutes(m)))
                .unwrap_or_default()
        );
        for (from, until) in &t.down {
            println!("  down {}", span(*from, *until));
        }
        if t.down.len() > 1 {
            println!(
                "  {} of them began within 2 min after a rekey, {} while the other tunnel was down too",
                t.downs_near_rekey, t.downs_with_other_tunnel
            );
        }
    }
    println!();
    if r.diagnoses.is_empty() {
        println!("No trouble found in the records read.");
    } else {
        println!("Diagnoses:");
        for d in &r.diagnoses {
            print_diagnosis(d);
        }
    }
    println!();
    println!("The records behind this (tunnelwatch query --data DIR \"…\"):");
    println!(
        "  {}",
        records_sql(args.vpn_id.as_deref(), args.since, args.until)
    );
    if r.diagnoses.iter().any(|d| d.gateway.is_some()) {
        println!("The customer gateways' lines:");
        println!("  {}", gateway_sql(args.since, args.until));
    }
}

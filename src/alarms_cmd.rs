//! `tunnelwatch alarms test --data DIR --config FILE [--preset NAME] [--since T] [--until T]
//! [--output table|json|sns]`: the alarms of a config file (and/or a preset) evaluated over the
//! stored `metrics` table, printed as the timeline of state transitions they would have
//! produced (`sns`: the notifications themselves, one JSON per line, in the shape CloudWatch
//! publishes to SNS). Sends nothing. The evaluation is `tunnelwatch_pipeline::alarms`; this is the
//! command line and the printing.
//!
//! `tunnelwatch alarms list --data DIR [--output table|json]`: each alarm instance's current
//! state as the last `serve`, `demo` or `ingest --config` saved it (`DATA/alarms/state.json`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use tunnelwatch_exporters::alarm_message::{MessageContext, alarm_message};
use tunnelwatch_monitor::alarm::AlarmDefinition;
use tunnelwatch_pipeline::alarms;
use tunnelwatch_queries::Snapshot;

use crate::config::{self, Needs};
use crate::metrics_cmd::parse_time;
use crate::output::rfc3339;

#[derive(Args)]
pub struct AlarmsArgs {
    #[command(subcommand)]
    command: AlarmsCommand,
}

#[derive(Subcommand)]
enum AlarmsCommand {
    /// Show each alarm instance's current state (as the last run that evaluated alarms saved
    /// it), ALARM first.
    List {
        /// Data directory.
        #[arg(long, default_value = "./tunnelwatch-data")]
        data: PathBuf,
        #[arg(long, value_enum, default_value_t = ListOutput::Table)]
        output: ListOutput,
    },
    /// Evaluate alarms over stored metrics and print the transitions they would have
    /// produced (nothing is sent).
    Test {
        /// Data directory.
        #[arg(long, default_value = "./tunnelwatch-data")]
        data: PathBuf,
        /// Config file with `[[alarms]]` (and/or `preset = "…"`); sources are not needed.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A built-in alarm preset to evaluate (`aws-vpn`), alone or beside the config's.
        #[arg(long)]
        preset: Option<String>,
        /// First minute to read (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_time, value_name = "T")]
        since: Option<i64>,
        /// Read minutes before this time.
        #[arg(long, value_parser = parse_time, value_name = "T")]
        until: Option<i64>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListOutput {
    Table,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    /// The notification messages (CloudWatch's SNS JSON plus a `Tunnelwatch` key), NDJSON.
    Sns,
}

pub fn run(args: AlarmsArgs) -> Result<ExitCode> {
    match args.command {
        AlarmsCommand::List { data, output } => list(&data, output),
        test @ AlarmsCommand::Test { .. } => run_test(test),
    }
}

fn list(data: &std::path::Path, output: ListOutput) -> Result<ExitCode> {
    if !data.is_dir() {
        eprintln!("tunnelwatch: {}: no such data directory", data.display());
        return Ok(ExitCode::from(2));
    }
    let Some(file) = tunnelwatch_pipeline::alarm_state::load(data)? else {
        eprintln!(
            "tunnelwatch: {}: no alarm state yet (alarms run in `serve`, `demo` and `ingest --config`;              `alarms test` previews them without saving)",
            data.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let rank = |s: tunnelwatch_monitor::alarm::AlarmState| match s.as_str() {
        "ALARM" => 0,
        "INSUFFICIENT_DATA" => 1,
        _ => 2,
    };
    let mut instances = file.alarms.instances.clone();
    instances.sort_by(|a, b| {
        (rank(a.state), &a.alarm_name, &a.vpn_id, &a.tunnel_ip).cmp(&(
            rank(b.state),
            &b.alarm_name,
            &b.vpn_id,
            &b.tunnel_ip,
        ))
    });
    match output {
        ListOutput::Json => {
            let rows: Vec<serde_json::Value> = instances
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "alarm_name": i.alarm_name,
                        "vpn_id": i.vpn_id,
                        "tunnel_ip": i.tunnel_ip,
                        "state": i.state.as_str(),
                        "since": i.since.map(rfc3339),
                        "next_evaluation": i.next_evaluation.map(rfc3339),
                        "reason": i.reason,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        ListOutput::Table => {
            println!(
                "{:<28} {:<22} {:<16} {:<17} {:<20} REASON",
                "ALARM", "VPN_ID", "TUNNEL_IP", "STATE", "SINCE"
            );
            for i in &instances {
                println!(
                    "{:<28} {:<22} {:<16} {:<17} {:<20} {}",
                    i.alarm_name,
                    i.vpn_id,
                    i.tunnel_ip.as_deref().unwrap_or("-"),
                    i.state.as_str(),
                    i.since.map(rfc3339).unwrap_or_else(|| "-".into()),
                    i.reason
                );
            }
        }
    }
    let alarming = instances.iter().filter(|i| rank(i.state) == 0).count();
    eprintln!(
        "tunnelwatch: {} instance(s), {alarming} in ALARM; evaluated up to {} (saved {})",
        instances.len(),
        file.evaluated_until
            .map(rfc3339)
            .unwrap_or_else(|| "-".into()),
        rfc3339(file.saved_ms)
    );
    Ok(ExitCode::SUCCESS)
}

fn run_test(command: AlarmsCommand) -> Result<ExitCode> {
    let AlarmsCommand::Test {
        data,
        config,
        preset,
        since,
        until,
        output,
    } = command
    else {
        unreachable!("run_test takes `alarms test`")
    };
    let mut definitions = Vec::new();
    if let Some(path) = &config {
        match config::load_for(path, Needs::Alarms) {
            Ok(loaded) => definitions.extend(loaded.alarms),
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                return Ok(ExitCode::from(2));
            }
        }
    }
    if let Some(name) = &preset {
        match config::preset_alarms(name) {
            Some(p) => definitions.extend(p),
            None => {
                eprintln!(
                    "tunnelwatch: --preset: `{name}` is not a preset (known: {})",
                    config::preset_names()
                );
                return Ok(ExitCode::from(2));
            }
        }
    }
    if definitions.is_empty() {
        eprintln!(
            "tunnelwatch: no alarms: give --config FILE with [[alarms]] or preset = \"aws-vpn\", or --preset aws-vpn"
        );
        return Ok(ExitCode::from(2));
    }
    if !data.is_dir() {
        eprintln!("tunnelwatch: {}: no such data directory", data.display());
        return Ok(ExitCode::from(2));
    }
    let snapshot = Snapshot::read(&data)?;
    let alarm_count = definitions.len();
    let by_name: std::collections::HashMap<String, AlarmDefinition> = definitions
        .iter()
        .map(|d| (d.name.clone(), d.clone()))
        .collect();
    let preview = match alarms::preview(&snapshot, definitions, since, until) {
        Ok(p) => p,
        Err(tunnelwatch_pipeline::error::PipelineError::AlarmConfig(e)) => {
            eprintln!("tunnelwatch: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    // The probable cause of each ALARM: what the logs said in the alarm's evaluation range.
    let cause = |t: &tunnelwatch_monitor::alarm::Transition| -> Result<Vec<String>> {
        let def = &by_name[&*t.alarm_name];
        if output == Output::Table || t.new_state.as_str() != "ALARM" {
            return Ok(Vec::new());
        }
        Ok(alarms::probable_cause(
            &snapshot,
            t,
            def.evaluation_range_ms(),
        )?)
    };
    match output {
        Output::Sns => {
            for t in &preview.transitions {
                let causes = cause(t)?;
                let diagnosis = (t.new_state.as_str() == "ALARM")
                    .then(|| {
                        let window = by_name[&*t.alarm_name].evaluation_range_ms();
                        alarms::stored_diagnosis(&snapshot, t, window)
                    })
                    .flatten();
                let cx = MessageContext {
                    probable_cause: &causes,
                    diagnosis: diagnosis.as_ref(),
                    ..Default::default()
                };
                let message = alarm_message(&by_name[&*t.alarm_name], t, &cx);
                println!("{}", serde_json::to_string(&message)?);
            }
        }
        Output::Json => {
            let rows: Vec<serde_json::Value> = preview
                .transitions
                .iter()
                .map(|t| {
                    let causes = cause(t)?;
                    Ok(serde_json::json!({
                        "ts": rfc3339(t.ts),
                        "alarm_name": &*t.alarm_name,
                        "alarm_instance": &*t.instance_id,
                        "vpn_id": &*t.vpn_id,
                        "tunnel_ip": t.tunnel_ip.as_deref(),
                        "old_state": t.old_state.as_str(),
                        "new_state": t.new_state.as_str(),
                        "reason": t.reason,
                        "reason_data": serde_json::from_str::<serde_json::Value>(&t.reason_data)
                            .unwrap_or(serde_json::Value::Null),
                        "probable_cause": causes,
                    }))
                })
                .collect::<Result<_>>()?;
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        Output::Table => {
            // A confirmed inference is listed as the AWS event that confirms it.
            for h in preview
                .health
                .events
                .iter()
                .filter(|h| h.confirmed_by.is_none())
            {
                let mut list: Vec<String> = h.connections.keys().map(|v| v.to_string()).collect();
                if let (Some(ip), [vpn]) = (&h.tunnel_ip, list.as_mut_slice()) {
                    *vpn = format!("{vpn} tunnel {ip}");
                }
                println!(
                    "{}  HEALTH {} {} ({}): {}",
                    rfc3339(h.start_time),
                    h.event_type_code,
                    h.status_code,
                    h.event_arn,
                    list.join(", ")
                );
            }
            for (a, pair) in &preview.health.aws {
                let vpns: Vec<&str> = a.vpn_ids.iter().map(|v| &**v).collect();
                let confirms = match pair {
                    Some((ip, arn)) => format!(" tunnel {ip}, confirms {arn}"),
                    None => String::new(),
                };
                println!(
                    "{}  HEALTH (AWS) {} {} ({}): {}{confirms}",
                    rfc3339(a.start_time),
                    a.event_type_code.as_deref().unwrap_or("-"),
                    a.status_code.as_deref().unwrap_or("-"),
                    a.event_arn,
                    vpns.join(", ")
                );
            }
            for t in &preview.transitions {
                println!(
                    "{}  {:<28} {:<17} -> {:<17} {}",
                    rfc3339(t.ts),
                    t.instance_id,
                    t.old_state.as_str(),
                    t.new_state.as_str(),
                    t.reason
                );
            }
        }
    }
    let alarming = preview
        .instances
        .iter()
        .filter(|i| i.state.as_str() == "ALARM")
        .count();
    match (preview.data_range, preview.evaluated_until) {
        (Some((first, last)), Some(until)) => eprintln!(
            "tunnelwatch: {alarm_count} alarm(s), {} instance(s), {} datapoints from {} to {}, \
             evaluated up to {}: {} transition(s), {alarming} instance(s) in ALARM at the end, \
             {} Health event(s) (nothing was sent)",
            preview.instances.len(),
            preview.datapoints,
            rfc3339(first),
            rfc3339(last),
            rfc3339(until),
            preview.transitions.len(),
            preview
                .health
                .events
                .iter()
                .filter(|h| h.confirmed_by.is_none())
                .count()
                + preview.health.aws.len(),
        ),
        _ => eprintln!(
            "tunnelwatch: no stored metrics in the window; ingest logs first (metrics are computed by ingest, or `tunnelwatch metrics rebuild`)"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

//! `tunnelwatch query`: read-only SQL over a data directory, or one of the saved
//! troubleshooting queries. Output as an aligned table (default on a terminal), CSV, a JSON
//! array or NDJSON. Times print as RFC 3339 UTC.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::output::{Output, render};
use anyhow::{Context, Result};
use clap::Args;
use tunnelwatch_queries::{Engine, QueryOptions, Snapshot, StoreError, saved};

#[derive(Args)]
pub struct QueryArgs {
    /// Data directory.
    #[arg(long, default_value = "./tunnelwatch-data")]
    data: PathBuf,
    /// Output format (default: table on a terminal, csv otherwise).
    #[arg(long, value_enum)]
    output: Option<Output>,
    /// Run a saved query by name (see --list-saved).
    #[arg(long, conflicts_with = "sql")]
    saved: Option<String>,
    /// List the saved queries.
    #[arg(long)]
    list_saved: bool,
    /// Memory available to the query, e.g. 512M, 2G.
    #[arg(long, default_value = "2G", value_parser = parse_bytes)]
    memory_limit: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
    /// Print the planning + execution time on stderr.
    #[arg(long)]
    timing: bool,
    /// The SQL statement (read-only: SELECT, WITH, EXPLAIN, SHOW, DESCRIBE).
    #[arg(required_unless_present_any = ["saved", "list_saved"])]
    sql: Option<String>,
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mult = match s[i..].to_ascii_uppercase().trim_end_matches(['B', 'I']) {
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "" => 1,
                other => return Err(format!("unknown size unit {other:?} (use K, M or G)")),
            };
            (&s[..i], mult)
        }
        None => (s, 1),
    };
    num.trim()
        .parse::<usize>()
        .map(|n| n * mult)
        .map_err(|e| format!("{s:?}: {e}"))
}

pub fn run(args: QueryArgs) -> Result<ExitCode> {
    if args.list_saved {
        let mut out = std::io::stdout().lock();
        for q in saved::SAVED {
            writeln!(out, "{:<22} {}", q.name, q.description)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let sql = match (&args.saved, &args.sql) {
        (Some(name), _) => match saved::find(name) {
            Some(q) => q.sql.to_owned(),
            None => {
                eprintln!(
                    "tunnelwatch: {}",
                    StoreError::UnknownSavedQuery(name.clone())
                );
                return Ok(ExitCode::from(2));
            }
        },
        (None, Some(sql)) => sql.clone(),
        (None, None) => unreachable!("clap requires SQL or --saved"),
    };
    if !args.data.is_dir() {
        eprintln!(
            "tunnelwatch: {}: no such data directory (create one with `tunnelwatch ingest --data {} FILE…`)",
            args.data.display(),
            args.data.display()
        );
        return Ok(ExitCode::from(2));
    }
    let output = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Table
    } else {
        Output::Csv
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let opts = QueryOptions {
        memory_limit: args.memory_limit,
        timeout: Duration::from_secs(args.timeout_s),
    };
    let result = runtime.block_on(async {
        let snapshot = Snapshot::read(&args.data)?;
        let engine = Engine::open(&snapshot, opts).await?;
        let started = std::time::Instant::now();
        let r = engine.query(&sql).await;
        if args.timing {
            eprintln!(
                "tunnelwatch: query took {:.3} s",
                started.elapsed().as_secs_f64()
            );
        }
        r
    });
    let result = match result {
        Ok(r) => r,
        Err(e @ (StoreError::Refused(_) | StoreError::DataFusion(_) | StoreError::Timeout(_))) => {
            eprintln!("tunnelwatch: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match out.write_all(&render(output, &result)?) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r?,
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    Ok(ExitCode::SUCCESS)
}

//! `tunnelwatch parse`: the first debugging tool. Reads files (plain or gzip) or stdin in
//! chunks, runs them through `tunnelwatch-parsers` and prints events as NDJSON on stdout and
//! rejects as `source: line N (byte M): error` on stderr. Exit 0 when at least one event was
//! parsed, 2 when the input was unusable (nothing parsed, or a path could not be read).

use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use tunnelwatch_ingest::files::decode_stream;
use tunnelwatch_parsers::{Decoder, DecoderOptions, InputFormat, Parsed};

/// How to decode inputs: the flags `parse` and `ingest` share.
#[derive(Args)]
pub struct DecodeArgs {
    /// Input format: auto (sniff each record), ndjson, json, cli (aws logs output), cli-text
    /// (aws logs --output text), s3 (export lines), subscription, firehose, syslog or text. Gzip
    /// is always detected.
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    format: InputFormat,
    /// Log stream name (`<vpn-id>-<outside-ip>`) for records that carry no tunnel identity.
    /// Default: the file name, when it is a stream name.
    #[arg(long)]
    stream_name: Option<String>,
    /// Year for RFC 3164 syslog timestamps (default: the current year).
    #[arg(long)]
    syslog_year: Option<i32>,
}

impl DecodeArgs {
    pub fn options(&self) -> DecoderOptions {
        DecoderOptions {
            format: self.format,
            stream_name: self.stream_name.clone(),
            syslog_year: self.syslog_year,
            ..Default::default()
        }
    }
}

#[derive(Args)]
pub struct ParseArgs {
    #[command(flatten)]
    decode: DecodeArgs,
    /// Print rejects on stderr as JSON objects (raw bytes included) instead of one-line messages.
    #[arg(long)]
    rejects_json: bool,
    /// Files to read, or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

fn parse_format(s: &str) -> Result<InputFormat, String> {
    InputFormat::parse(s).ok_or_else(|| {
        format!(
            "unknown format {s:?}; expected one of {}",
            InputFormat::NAMES.join(", ")
        )
    })
}

#[derive(Default)]
struct Counts {
    events: u64,
    rejects: u64,
}

pub fn run(args: ParseArgs) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let mut counts = Counts::default();
    let mut unreadable = 0;
    for path in &args.paths {
        let opts = args.decode.options();
        let (source, reader): (&str, Box<dyn Read>) = if path == "-" {
            ("stdin", Box::new(io::stdin().lock()))
        } else {
            match std::fs::File::open(path) {
                Ok(f) => (path.as_str(), Box::new(f)),
                Err(e) => {
                    writeln!(err, "tunnelwatch: {path}: cannot open: {e}")?;
                    unreadable += 1;
                    continue;
                }
            }
        };
        let mut decoder = Decoder::new(source, opts);
        let mut sink = |p: Parsed| emit(p, &mut out, &mut err, &mut counts, args.rejects_json);
        let result = decode_stream(&mut decoder, reader, &mut sink, &mut |_, _| Ok(()));
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(e) => {
                writeln!(
                    err,
                    "tunnelwatch: {}: read error at {}: {e}",
                    source,
                    decoder.position()
                )?;
                unreadable += 1;
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r.context("writing stdout")?,
    }
    writeln!(
        err,
        "tunnelwatch: {} events, {} rejected",
        counts.events, counts.rejects
    )?;
    if counts.events == 0 {
        writeln!(err, "tunnelwatch: no records could be parsed")?;
        return Ok(ExitCode::from(2));
    }
    Ok(if unreadable > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn emit(
    p: Parsed,
    out: &mut impl Write,
    err: &mut impl Write,
    counts: &mut Counts,
    rejects_json: bool,
) {
    // Write errors on stdout surface at flush time; a closed pipe ends the command there.
    match p {
        Parsed::Event(e) => {
            counts.events += 1;
            let _ = serde_json::to_writer(&mut *out, &e);
            let _ = out.write_all(b"\n");
        }
        Parsed::Reject(r) => {
            counts.rejects += 1;
            if rejects_json {
                let _ = serde_json::to_writer(&mut *err, &r);
                let _ = err.write_all(b"\n");
            } else {
                let _ = writeln!(err, "{r}");
            }
        }
    }
}

//! Rendering query results for people and programs: an aligned table, CSV (RFC 3339 UTC
//! times), a JSON array, or NDJSON. One renderer serves `tunnelwatch query` and the HTTP SQL
//! endpoint, so both print the same bytes for the same result.

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use clap::ValueEnum;
use tunnelwatch_queries::QueryResult;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Csv,
    Json,
    Ndjson,
}

impl Output {
    pub fn parse(name: &str) -> Option<Output> {
        Output::from_str(name, true).ok()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Output::Table => "text/plain; charset=utf-8",
            Output::Csv => "text/csv; charset=utf-8",
            Output::Json => "application/json",
            Output::Ndjson => "application/x-ndjson",
        }
    }
}

/// The result as bytes in the given form. Empty results still carry their columns (table and
/// CSV header) or are an empty array (`[]`).
pub fn render(output: Output, result: &QueryResult) -> Result<Vec<u8>, ArrowError> {
    let empty = [RecordBatch::new_empty(result.schema.clone())];
    let batches: &[RecordBatch] = if result.batches.is_empty() {
        &empty
    } else {
        &result.batches
    };
    let mut out = Vec::new();
    match output {
        Output::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches)?;
            let rows = result.num_rows();
            let plural = if rows == 1 { "" } else { "s" };
            out.extend_from_slice(format!("{table}\n{rows} row{plural}\n").as_bytes());
        }
        Output::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%S%.3fZ".to_owned())
                .build(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        Output::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
            out.push(b'\n');
        }
        Output::Ndjson => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    Ok(out)
}

/// Epoch ms as RFC 3339 UTC to the second (`2026-12-02T01:15:00Z`), for summaries.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

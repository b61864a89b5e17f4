//! Prometheus / OpenMetrics exposition of the pipeline's own metrics (records and bytes per
//! source, rejects, ingest lag, rows stored per table), rendered with `prometheus-client`.
//!
//! Invariants: every family has help text; labels carry only bounded values (source names and
//! table names, never free text). Tunnel state families come with the metrics engine.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

/// The content type of [`encode_pipeline`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters of one source.
#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    pub name: String,
    pub records: u64,
    pub bytes: u64,
    pub rejects: u64,
    /// Seconds between now and the newest event time received, if any.
    pub lag_seconds: Option<f64>,
}

/// A reading of the pipeline's counters.
#[derive(Debug, Clone, Default)]
pub struct PipelineStats {
    pub sources: Vec<SourceStats>,
    /// Rows stored per table (`tunnel_activity`, `bgp_events`, …).
    pub store_rows: Vec<(String, u64)>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

/// Renders the pipeline's metrics in the OpenMetrics text format.
pub fn encode_pipeline(stats: &PipelineStats) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("tunnelwatch");
    let records = Family::<SourceLabel, Counter>::default();
    let bytes = Family::<SourceLabel, Counter>::default();
    let rejects = Family::<SourceLabel, Counter>::default();
    let lag = Family::<SourceLabel, Gauge<f64, AtomicU64>>::default();
    let rows = Family::<TableLabel, Counter>::default();
    registry.register(
        "source_records",
        "Log records received per source",
        records.clone(),
    );
    registry.register_with_unit(
        "source",
        "Log bytes received per source",
        Unit::Bytes,
        bytes.clone(),
    );
    registry.register(
        "rejects",
        "Records that could not be parsed (kept in the rejects table), per source",
        rejects.clone(),
    );
    registry.register_with_unit(
        "ingest_lag",
        "Wall-clock time minus the newest event time received, per source",
        Unit::Seconds,
        lag.clone(),
    );
    registry.register(
        "store_rows",
        "Rows written to the store per table",
        rows.clone(),
    );
    for s in &stats.sources {
        let l = SourceLabel {
            source: s.name.clone(),
        };
        records.get_or_create(&l).inc_by(s.records);
        bytes.get_or_create(&l).inc_by(s.bytes);
        rejects.get_or_create(&l).inc_by(s.rejects);
        if let Some(v) = s.lag_seconds {
            lag.get_or_create(&l).set(v);
        }
    }
    for (table, n) in &stats.store_rows {
        rows.get_or_create(&TableLabel {
            table: table.clone(),
        })
        .inc_by(*n);
    }
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_labels() {
        let text = encode_pipeline(&PipelineStats {
            sources: vec![SourceStats {
                name: "simulator".into(),
                records: 10,
                bytes: 2000,
                rejects: 1,
                lag_seconds: Some(0.5),
            }],
            store_rows: vec![("tunnel_activity".into(), 9)],
        })
        .unwrap();
        for want in [
            "# HELP tunnelwatch_source_records Log records received per source",
            "tunnelwatch_source_records_total{source=\"simulator\"} 10",
            "tunnelwatch_source_bytes_total{source=\"simulator\"} 2000",
            "tunnelwatch_rejects_total{source=\"simulator\"} 1",
            "tunnelwatch_ingest_lag_seconds{source=\"simulator\"} 0.5",
            "tunnelwatch_store_rows_total{table=\"tunnel_activity\"} 9",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}

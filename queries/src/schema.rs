//! The Arrow schemas of the SQL tables (DESIGN §4). Column names are a contract: columns may
//! be added, never renamed. All times are `Timestamp(Millisecond, "UTC")`.
//!
//! Strings are plain `Utf8` in memory; on disk Parquet dictionary-encodes them per column chunk,
//! which is where the low-cardinality columns (`vpn_id`, `message_kind`, `severity`, …) pay.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The tables of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableName {
    TunnelActivity,
    BgpEvents,
    Traffic,
    Metrics,
    AlarmHistory,
    HealthEvents,
    Rejects,
    /// Last: the WAL names tables by their position here.
    GatewayEvents,
}

impl TableName {
    pub const ALL: [TableName; 8] = [
        TableName::TunnelActivity,
        TableName::BgpEvents,
        TableName::Traffic,
        TableName::Metrics,
        TableName::AlarmHistory,
        TableName::HealthEvents,
        TableName::Rejects,
        TableName::GatewayEvents,
    ];

    /// The tables parsed input lands in, as an ingest run reports them.
    pub const RECORDS: [TableName; 5] = [
        TableName::TunnelActivity,
        TableName::BgpEvents,
        TableName::Traffic,
        TableName::GatewayEvents,
        TableName::Rejects,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TableName::TunnelActivity => "tunnel_activity",
            TableName::BgpEvents => "bgp_events",
            TableName::Traffic => "traffic",
            TableName::Metrics => "metrics",
            TableName::AlarmHistory => "alarm_history",
            TableName::HealthEvents => "health_events",
            TableName::Rejects => "rejects",
            TableName::GatewayEvents => "gateway_events",
        }
    }

    pub fn parse(name: &str) -> Option<TableName> {
        TableName::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The column that places a row in a day partition.
    pub fn time_column(self) -> &'static str {
        match self {
            TableName::HealthEvents => "start_time",
            _ => "ts",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            TableName::TunnelActivity => TUNNEL_ACTIVITY.clone(),
            TableName::BgpEvents => BGP_EVENTS.clone(),
            TableName::Traffic => TRAFFIC.clone(),
            TableName::Metrics => METRICS.clone(),
            TableName::AlarmHistory => ALARM_HISTORY.clone(),
            TableName::HealthEvents => HEALTH_EVENTS.clone(),
            TableName::Rejects => REJECTS.clone(),
            TableName::GatewayEvents => GATEWAY_EVENTS.clone(),
        }
    }
}

pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp(), nullable)
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn int(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}

/// Where a row came from: common trailing columns of the event tables.
fn provenance() -> Vec<Field> {
    vec![
        Field::new("source", DataType::Utf8, false),
        text("format"),
        text("parse_quality"),
        text("envelope"),
        text("log_stream"),
        Field::new("source_line", DataType::Int64, false),
        Field::new("source_offset", DataType::Int64, false),
        int("source_index"),
        text("extra"),
    ]
}

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

static TUNNEL_ACTIVITY: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = vec![
        ts("ts", false),
        ts("ingest_ts", true),
        text("vpn_id"),
        text("tunnel_ip"),
        Field::new("dpd_enabled", DataType::Boolean, true),
        Field::new("nat_t_detected", DataType::Boolean, true),
        text("ike_phase1_state"),
        text("ike_phase2_state"),
        text("details"),
        Field::new("message_kind", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        text("spi"),
        int("retry_count"),
        text("cgw_ip"),
        int("request_id"),
    ];
    f.extend(provenance());
    schema(f)
});

static BGP_EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = vec![
        ts("ts", false),
        ts("ingest_ts", true),
        text("vpn_id"),
        text("tunnel_ip"),
        Field::new("type", DataType::Utf8, false),
        text("status"),
        text("details"),
        Field::new("message_kind", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        text("from_state"),
        text("to_state"),
        text("neighbor_ip"),
        int("prefix_count"),
        int("prefix_limit"),
        text("direction"),
        int("error_code"),
        int("error_subcode"),
        text("reason"),
        int("peer_asn"),
        int("expected_asn"),
        int("hold_time"),
        text("router_id"),
        text("prefix"),
        text("as_path"),
        int("local_pref"),
        int("med"),
        text("next_hop_ip"),
        int("weight"),
        text("denied_reason"),
    ];
    f.extend(provenance());
    schema(f)
});

static TRAFFIC: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = vec![
        ts("ts", false),
        ts("ingest_ts", true),
        text("vpn_id"),
        text("tunnel_ip"),
        int("bytes_in"),
        int("bytes_out"),
        int("packets_in"),
        int("packets_out"),
        text("concentrator_id"),
    ];
    f.extend(provenance());
    schema(f)
});

static METRICS: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        ts("ts", false),
        Field::new("namespace", DataType::Utf8, false),
        Field::new("metric_name", DataType::Utf8, false),
        text("vpn_id"),
        text("tunnel_ip"),
        Field::new("period_s", DataType::Int64, false),
        Field::new("sample_count", DataType::Float64, true),
        Field::new("sum", DataType::Float64, true),
        Field::new("minimum", DataType::Float64, true),
        Field::new("maximum", DataType::Float64, true),
        text("unit"),
        // Added with the metrics engine: the VPN Concentrator of ConcentratorBandwidthUsage.
        text("concentrator_id"),
    ])
});

static ALARM_HISTORY: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        ts("ts", false),
        Field::new("alarm_name", DataType::Utf8, false),
        text("alarm_instance"),
        text("vpn_id"),
        text("tunnel_ip"),
        text("old_state"),
        text("new_state"),
        text("reason"),
        text("reason_data"),
    ])
});

static HEALTH_EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        Field::new("event_arn", DataType::Utf8, false),
        text("event_type_code"),
        ts("start_time", false),
        ts("end_time", true),
        ts("last_updated_time", true),
        text("status_code"),
        text("vpn_id"),
        text("tunnel_ip"),
        text("description"),
        // `aws` (an AWS Health event as AWS sent it) or `tunnelwatch` (inferred from the logs).
        text("origin"),
        // An inference and an AWS event agree (AWS confirmed the endpoint replacement).
        Field::new("confirmed", DataType::Boolean, true),
        // The other half of a confirmed pair: on an AWS row the inference, and back.
        text("matched_arn"),
        text("event_type_category"),
        text("region"),
        // The AWS event's JSON as it arrived.
        text("raw"),
    ])
});

/// Customer-gateway daemon lines (`docs/gateway-kinds.md`): the strings, then the numbers of
/// the captured values, in the order `rows.rs` builds them.
pub(crate) const GATEWAY_TEXT_COLUMNS: [&str; 25] = [
    "host",
    "daemon",
    "gateway_kind",
    "severity",
    "peer_ip",
    "local_ip",
    "peer_id",
    "local_id",
    "ike_sa",
    "child_sa",
    "session",
    "sa",
    "direction",
    "notify",
    "proposals",
    "dh_group",
    "requested_group",
    "spi_in",
    "spi_out",
    "local_ts",
    "remote_ts",
    "from_state",
    "to_state",
    "reason",
    "details",
];

pub(crate) const GATEWAY_INT_COLUMNS: [&str; 12] = [
    "ike_sa_id",
    "child_sa_id",
    "retry_count",
    "bytes_in",
    "bytes_out",
    "peer_asn",
    "expected_asn",
    "error_code",
    "error_subcode",
    "prefix_count",
    "prefix_limit",
    "hold_time",
];

static GATEWAY_EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = vec![
        ts("ts", false),
        ts("ingest_ts", true),
        text("vpn_id"),
        text("tunnel_ip"),
    ];
    for name in GATEWAY_TEXT_COLUMNS {
        f.push(match name {
            "daemon" | "gateway_kind" | "severity" | "details" => {
                Field::new(name, DataType::Utf8, false)
            }
            _ => text(name),
        });
    }
    f.extend(GATEWAY_INT_COLUMNS.map(int));
    f.extend(provenance());
    schema(f)
});

static REJECTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        ts("ts", false),
        Field::new("source", DataType::Utf8, false),
        Field::new("position", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, false),
        Field::new("raw", DataType::Binary, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("source_offset", DataType::Int64, false),
        int("source_index"),
    ])
});

#[cfg(test)]
mod docs {
    use super::TableName;

    /// docs/tables.md names every column of every table in the table's own section.
    #[test]
    fn every_column_is_documented_under_its_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/tables.md");
        let doc = std::fs::read_to_string(path).unwrap();
        for t in TableName::ALL {
            let head = format!("## `{}`", t.as_str());
            let at = doc
                .find(&head)
                .unwrap_or_else(|| panic!("docs/tables.md has no section {head}"));
            let rest = &doc[at + head.len()..];
            let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
            let common = t
                .schema()
                .fields()
                .iter()
                .any(|f| f.name() == "source_line")
                && section.contains("common columns");
            for f in t.schema().fields() {
                let name = format!("`{}`", f.name());
                let shared = common
                    && ["ts", "ingest_ts", "vpn_id", "tunnel_ip"].contains(&f.name().as_str());
                assert!(
                    section.contains(&name) || shared,
                    "docs/tables.md, {head}: column {name} is not described"
                );
            }
        }
    }
}

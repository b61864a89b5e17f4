//! Parsed events and rejects to Arrow record batches, one builder per table.
//!
//! Invariant: the columns produced match `schema.rs` exactly, in order; `finish` hands out a
//! batch and leaves the builder empty and reusable.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMillisecondBuilder,
};
use tunnelwatch_parsers::{Event, EventBody, Gateway, Reject, Table};

use crate::schema::TableName;

fn ts_builder() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

/// Columns shared by the three event tables, at their end.
#[derive(Default)]
struct Provenance {
    source: StringBuilder,
    format: StringBuilder,
    parse_quality: StringBuilder,
    envelope: StringBuilder,
    log_stream: StringBuilder,
    line: Int64Builder,
    offset: Int64Builder,
    index: Int64Builder,
    extra: StringBuilder,
}

impl Provenance {
    fn push(&mut self, e: &Event, extra: Option<&str>) {
        self.source.append_value(&*e.source);
        self.format.append_value(e.format.as_str());
        self.parse_quality.append_value(e.parse_quality.as_str());
        self.envelope.append_value(e.envelope.as_str());
        self.log_stream.append_option(e.log_stream.as_deref());
        self.line.append_value(e.position.line as i64);
        self.offset.append_value(e.position.offset as i64);
        self.index.append_option(e.position.index.map(|i| i as i64));
        self.extra.append_option(extra);
    }

    fn finish(&mut self, cols: &mut Vec<ArrayRef>) {
        cols.push(Arc::new(self.source.finish()));
        cols.push(Arc::new(self.format.finish()));
        cols.push(Arc::new(self.parse_quality.finish()));
        cols.push(Arc::new(self.envelope.finish()));
        cols.push(Arc::new(self.log_stream.finish()));
        cols.push(Arc::new(self.line.finish()));
        cols.push(Arc::new(self.offset.finish()));
        cols.push(Arc::new(self.index.finish()));
        cols.push(Arc::new(self.extra.finish()));
    }
}

struct Common {
    ts: TimestampMillisecondBuilder,
    ingest_ts: TimestampMillisecondBuilder,
    vpn_id: StringBuilder,
    tunnel_ip: StringBuilder,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            ts: ts_builder(),
            ingest_ts: ts_builder(),
            vpn_id: StringBuilder::new(),
            tunnel_ip: StringBuilder::new(),
        }
    }
}

impl Common {
    fn push(&mut self, e: &Event) {
        self.ts.append_value(e.ts);
        self.ingest_ts.append_option(e.ingest_ts);
        self.vpn_id.append_option(e.vpn_id());
        self.tunnel_ip.append_option(e.tunnel_ip());
    }

    fn finish(&mut self, cols: &mut Vec<ArrayRef>) {
        cols.push(Arc::new(self.ts.finish()));
        cols.push(Arc::new(self.ingest_ts.finish()));
        cols.push(Arc::new(self.vpn_id.finish()));
        cols.push(Arc::new(self.tunnel_ip.finish()));
    }
}

#[derive(Default)]
struct ActivityRows {
    common: Common,
    dpd: BooleanBuilder,
    nat: BooleanBuilder,
    p1: StringBuilder,
    p2: StringBuilder,
    details: StringBuilder,
    kind: StringBuilder,
    severity: StringBuilder,
    spi: StringBuilder,
    retry_count: Int64Builder,
    cgw_ip: StringBuilder,
    request_id: Int64Builder,
    prov: Provenance,
    len: usize,
}

#[derive(Default)]
struct BgpRows {
    common: Common,
    kind_type: StringBuilder,
    status: StringBuilder,
    details: StringBuilder,
    kind: StringBuilder,
    severity: StringBuilder,
    from_state: StringBuilder,
    to_state: StringBuilder,
    neighbor_ip: StringBuilder,
    prefix_count: Int64Builder,
    prefix_limit: Int64Builder,
    direction: StringBuilder,
    error_code: Int64Builder,
    error_subcode: Int64Builder,
    reason: StringBuilder,
    peer_asn: Int64Builder,
    expected_asn: Int64Builder,
    hold_time: Int64Builder,
    router_id: StringBuilder,
    prefix: StringBuilder,
    as_path: StringBuilder,
    local_pref: Int64Builder,
    med: Int64Builder,
    next_hop_ip: StringBuilder,
    weight: Int64Builder,
    denied_reason: StringBuilder,
    prov: Provenance,
    len: usize,
}

#[derive(Default)]
struct TrafficRows {
    common: Common,
    bytes_in: Int64Builder,
    bytes_out: Int64Builder,
    packets_in: Int64Builder,
    packets_out: Int64Builder,
    concentrator_id: StringBuilder,
    prov: Provenance,
    len: usize,
}

struct RejectRows {
    ts: TimestampMillisecondBuilder,
    source: StringBuilder,
    position: StringBuilder,
    error: StringBuilder,
    raw: BinaryBuilder,
    line: Int64Builder,
    offset: Int64Builder,
    index: Int64Builder,
    len: usize,
}

impl Default for RejectRows {
    fn default() -> Self {
        RejectRows {
            ts: ts_builder(),
            source: StringBuilder::new(),
            position: StringBuilder::new(),
            error: StringBuilder::new(),
            raw: BinaryBuilder::new(),
            line: Int64Builder::new(),
            offset: Int64Builder::new(),
            index: Int64Builder::new(),
            len: 0,
        }
    }
}

/// `gateway_events` rows: the text columns and the number columns of `schema.rs`, in order.
struct GatewayRows {
    common: Common,
    text: Vec<StringBuilder>,
    int: Vec<Int64Builder>,
    prov: Provenance,
    len: usize,
}

impl Default for GatewayRows {
    fn default() -> Self {
        use crate::schema::{GATEWAY_INT_COLUMNS, GATEWAY_TEXT_COLUMNS};
        GatewayRows {
            common: Common::default(),
            text: GATEWAY_TEXT_COLUMNS
                .iter()
                .map(|_| StringBuilder::new())
                .collect(),
            int: GATEWAY_INT_COLUMNS
                .iter()
                .map(|_| Int64Builder::new())
                .collect(),
            prov: Provenance::default(),
            len: 0,
        }
    }
}

impl GatewayRows {
    fn push(&mut self, e: &Event, g: &Gateway) {
        self.common.push(e);
        let c = &g.captures;
        // The order of GATEWAY_TEXT_COLUMNS.
        let text: [Option<&str>; 25] = [
            g.host.as_deref(),
            Some(g.daemon_name()),
            Some(g.kind.as_str()),
            Some(g.severity.as_str()),
            g.peer_ip.as_deref(),
            g.local_ip.as_deref(),
            c.peer_id.as_deref(),
            c.local_id.as_deref(),
            g.ike_sa.as_deref(),
            g.child_sa.as_deref(),
            g.session.as_deref(),
            c.sa.as_deref(),
            c.direction.as_deref(),
            c.notify.as_deref(),
            c.proposals.as_deref(),
            c.dh_group.as_deref(),
            c.requested_group.as_deref(),
            c.spi_in.as_deref(),
            c.spi_out.as_deref(),
            c.local_ts.as_deref(),
            c.remote_ts.as_deref(),
            c.from_state.as_deref(),
            c.to_state.as_deref(),
            c.reason.as_deref(),
            Some(g.details.as_str()),
        ];
        for (b, v) in self.text.iter_mut().zip(text) {
            b.append_option(v);
        }
        // The order of GATEWAY_INT_COLUMNS (hold_time: no gateway line carries it yet).
        let int: [Option<u64>; 12] = [
            g.ike_sa_id,
            g.child_sa_id,
            c.retry_count,
            c.bytes_in,
            c.bytes_out,
            c.peer_asn,
            c.expected_asn,
            c.error_code,
            c.error_subcode,
            c.prefix_count,
            c.prefix_limit,
            None,
        ];
        for (b, v) in self.int.iter_mut().zip(int) {
            b.append_option(opt_i64(v));
        }
        self.prov.push(e, None);
        self.len += 1;
    }

    fn finish(&mut self) -> RecordBatch {
        let mut c: Vec<ArrayRef> = Vec::with_capacity(60);
        self.common.finish(&mut c);
        c.extend(
            self.text
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        c.extend(
            self.int
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        self.prov.finish(&mut c);
        self.len = 0;
        batch(TableName::GatewayEvents, c)
    }
}

fn opt_i64<T: TryInto<i64>>(v: Option<T>) -> Option<i64> {
    v.and_then(|x| x.try_into().ok())
}

/// Accumulates rows for the event tables and `rejects`.
#[derive(Default)]
pub struct RowBuilder {
    activity: ActivityRows,
    bgp: BgpRows,
    traffic: TrafficRows,
    gateway: GatewayRows,
    rejects: RejectRows,
    /// AWS Health events (rare: kept as plain rows).
    health: Vec<HealthRow>,
}

impl RowBuilder {
    /// Rows held so far, all tables together.
    pub fn len(&self) -> usize {
        self.activity.len
            + self.bgp.len
            + self.traffic.len
            + self.gateway.len
            + self.rejects.len
            + self.health.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push_event(&mut self, e: &Event) {
        match &e.body {
            EventBody::Activity(a) => {
                let r = &mut self.activity;
                r.common.push(e);
                r.dpd.append_option(a.dpd_enabled);
                r.nat.append_option(a.nat_t_detected);
                r.p1.append_option(a.ike_phase1_state.map(|s| s.as_str()));
                r.p2.append_option(a.ike_phase2_state.map(|s| s.as_str()));
                r.details.append_option(a.details.as_deref());
                r.kind.append_value(a.message.kind.as_str());
                r.severity.append_value(a.message.severity.as_str());
                let c = a.message.captures();
                r.spi.append_option(c.spi.as_deref());
                r.retry_count.append_option(opt_i64(c.retry_count));
                r.cgw_ip.append_option(c.cgw_ip.as_deref());
                r.request_id.append_option(opt_i64(c.request_id));
                r.prov.push(e, a.extra.as_deref());
                r.len += 1;
            }
            EventBody::Bgp(b) => {
                let r = &mut self.bgp;
                r.common.push(e);
                r.kind_type.append_value(b.kind.as_str());
                r.status.append_option(b.status.as_deref());
                r.details.append_option(b.details.as_deref());
                r.kind.append_value(b.message.kind.as_str());
                r.severity.append_value(b.message.severity.as_str());
                let c = b.message.captures();
                r.from_state.append_option(c.from_state.as_deref());
                r.to_state.append_option(c.to_state.as_deref());
                r.neighbor_ip.append_option(c.neighbor_ip.as_deref());
                r.prefix_count.append_option(opt_i64(c.prefix_count));
                r.prefix_limit.append_option(opt_i64(c.prefix_limit));
                r.direction.append_option(c.direction.map(|d| d.as_str()));
                r.error_code.append_option(opt_i64(c.error_code));
                r.error_subcode.append_option(opt_i64(c.error_subcode));
                r.reason.append_option(c.reason.as_deref());
                r.peer_asn.append_option(opt_i64(c.peer_asn));
                r.expected_asn.append_option(opt_i64(c.expected_asn));
                r.hold_time.append_option(opt_i64(c.hold_time));
                r.router_id.append_option(c.router_id.as_deref());
                let route = b.route.as_deref();
                r.prefix
                    .append_option(route.and_then(|x| x.prefix.as_deref()));
                r.as_path.append_option(
                    route
                        .and_then(|x| x.as_path.as_deref())
                        .or(c.as_path.as_deref()),
                );
                r.local_pref.append_option(route.and_then(|x| x.local_pref));
                r.med.append_option(route.and_then(|x| x.med));
                r.next_hop_ip
                    .append_option(route.and_then(|x| x.next_hop_ip.as_deref()));
                r.weight.append_option(route.and_then(|x| x.weight));
                r.denied_reason.append_option(c.denied_reason.as_deref());
                r.prov.push(e, b.extra.as_deref());
                r.len += 1;
            }
            EventBody::Traffic(t) => {
                let r = &mut self.traffic;
                r.common.push(e);
                r.bytes_in.append_option(opt_i64(t.bytes_in));
                r.bytes_out.append_option(opt_i64(t.bytes_out));
                r.packets_in.append_option(opt_i64(t.packets_in));
                r.packets_out.append_option(opt_i64(t.packets_out));
                r.concentrator_id
                    .append_option(t.concentrator_id.as_deref());
                r.prov.push(e, None);
                r.len += 1;
            }
            EventBody::Health(h) => self.health.extend(HealthRow::of_aws(e.ts, h)),
            EventBody::Gateway(g) => self.gateway.push(e, g),
        }
    }

    /// A reject, timestamped with its envelope time or `now_ms`.
    pub fn push_reject(&mut self, r: &Reject, now_ms: i64) {
        let x = &mut self.rejects;
        x.ts.append_value(r.ingest_ts.unwrap_or(now_ms));
        x.source.append_value(&*r.source);
        x.position.append_value(r.position.to_string());
        x.error.append_value(r.error.to_string());
        x.raw.append_value(&r.raw);
        x.line.append_value(r.position.line as i64);
        x.offset.append_value(r.position.offset as i64);
        x.index.append_option(r.position.index.map(|i| i as i64));
        x.len += 1;
    }

    /// Hands out the non-empty batches and resets.
    pub fn finish(&mut self) -> Vec<(TableName, RecordBatch)> {
        let mut out = Vec::new();
        if self.activity.len > 0 {
            let r = &mut self.activity;
            let mut c: Vec<ArrayRef> = Vec::with_capacity(24);
            r.common.finish(&mut c);
            c.push(Arc::new(r.dpd.finish()));
            c.push(Arc::new(r.nat.finish()));
            c.push(Arc::new(r.p1.finish()));
            c.push(Arc::new(r.p2.finish()));
            c.push(Arc::new(r.details.finish()));
            c.push(Arc::new(r.kind.finish()));
            c.push(Arc::new(r.severity.finish()));
            c.push(Arc::new(r.spi.finish()));
            c.push(Arc::new(r.retry_count.finish()));
            c.push(Arc::new(r.cgw_ip.finish()));
            c.push(Arc::new(r.request_id.finish()));
            r.prov.finish(&mut c);
            r.len = 0;
            out.push((
                TableName::TunnelActivity,
                batch(TableName::TunnelActivity, c),
            ));
        }
        if self.bgp.len > 0 {
            let r = &mut self.bgp;
            let mut c: Vec<ArrayRef> = Vec::with_capacity(40);
            r.common.finish(&mut c);
            c.push(Arc::new(r.kind_type.finish()));
            c.push(Arc::new(r.status.finish()));
            c.push(Arc::new(r.details.finish()));
            c.push(Arc::new(r.kind.finish()));
            c.push(Arc::new(r.severity.finish()));
            c.push(Arc::new(r.from_state.finish()));
            c.push(Arc::new(r.to_state.finish()));
            c.push(Arc::new(r.neighbor_ip.finish()));
            c.push(Arc::new(r.prefix_count.finish()));
            c.push(Arc::new(r.prefix_limit.finish()));
            c.push(Arc::new(r.direction.finish()));
            c.push(Arc::new(r.error_code.finish()));
            c.push(Arc::new(r.error_subcode.finish()));
            c.push(Arc::new(r.reason.finish()));
            c.push(Arc::new(r.peer_asn.finish()));
            c.push(Arc::new(r.expected_asn.finish()));
            c.push(Arc::new(r.hold_time.finish()));
            c.push(Arc::new(r.router_id.finish()));
            c.push(Arc::new(r.prefix.finish()));
            c.push(Arc::new(r.as_path.finish()));
            c.push(Arc::new(r.local_pref.finish()));
            c.push(Arc::new(r.med.finish()));
            c.push(Arc::new(r.next_hop_ip.finish()));
            c.push(Arc::new(r.weight.finish()));
            c.push(Arc::new(r.denied_reason.finish()));
            r.prov.finish(&mut c);
            r.len = 0;
            out.push((TableName::BgpEvents, batch(TableName::BgpEvents, c)));
        }
        if self.traffic.len > 0 {
            let r = &mut self.traffic;
            let mut c: Vec<ArrayRef> = Vec::with_capacity(20);
            r.common.finish(&mut c);
            c.push(Arc::new(r.bytes_in.finish()));
            c.push(Arc::new(r.bytes_out.finish()));
            c.push(Arc::new(r.packets_in.finish()));
            c.push(Arc::new(r.packets_out.finish()));
            c.push(Arc::new(r.concentrator_id.finish()));
            r.prov.finish(&mut c);
            r.len = 0;
            out.push((TableName::Traffic, batch(TableName::Traffic, c)));
        }
        if self.gateway.len > 0 {
            out.push((TableName::GatewayEvents, self.gateway.finish()));
        }
        if !self.health.is_empty() {
            let rows = std::mem::take(&mut self.health);
            out.push((TableName::HealthEvents, health_event_rows(&rows)));
        }
        if self.rejects.len > 0 {
            let x = &mut self.rejects;
            let c: Vec<ArrayRef> = vec![
                Arc::new(x.ts.finish()),
                Arc::new(x.source.finish()),
                Arc::new(x.position.finish()),
                Arc::new(x.error.finish()),
                Arc::new(x.raw.finish()),
                Arc::new(x.line.finish()),
                Arc::new(x.offset.finish()),
                Arc::new(x.index.finish()),
            ];
            x.len = 0;
            out.push((TableName::Rejects, batch(TableName::Rejects, c)));
        }
        out
    }
}

fn batch(table: TableName, cols: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(table.schema(), cols)
        .unwrap_or_else(|e| panic!("{}: builder and schema disagree: {e}", table.as_str()))
}

/// The table an event goes to.
pub fn table_of(e: &Event) -> TableName {
    match e.table() {
        Table::TunnelActivity => TableName::TunnelActivity,
        Table::BgpEvents => TableName::BgpEvents,
        Table::Traffic => TableName::Traffic,
        Table::HealthEvents => TableName::HealthEvents,
        Table::GatewayEvents => TableName::GatewayEvents,
    }
}

/// One `health_events` row, as plain values: an AWS event's (one per affected connection) or
/// one the pipeline derives (single-tunnel, inferred endpoint replacement).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthRow {
    pub event_arn: String,
    pub event_type_code: Option<String>,
    /// Epoch ms; an AWS record without one (`describe-affected-entities`) takes its record time.
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub last_updated_time: Option<i64>,
    pub status_code: Option<String>,
    pub vpn_id: Option<String>,
    pub tunnel_ip: Option<String>,
    pub description: Option<String>,
    /// `aws` or `tunnelwatch`.
    pub origin: &'static str,
    pub confirmed: bool,
    pub matched_arn: Option<String>,
    pub event_type_category: Option<String>,
    pub region: Option<String>,
    pub raw: Option<String>,
}

impl HealthRow {
    /// The rows of an AWS event recorded at `ts`: one per affected entity (one without a
    /// connection when it names none).
    pub fn of_aws(ts: i64, h: &tunnelwatch_parsers::AwsHealth) -> Vec<HealthRow> {
        let row = |vpn: Option<&String>| HealthRow {
            event_arn: h.event_arn.clone(),
            event_type_code: h.event_type_code.clone(),
            start_time: h.start_time.unwrap_or(ts),
            end_time: h.end_time,
            last_updated_time: h.last_updated_time,
            status_code: h.status_code.clone(),
            vpn_id: vpn.cloned(),
            tunnel_ip: None,
            description: h.description.clone(),
            origin: "aws",
            confirmed: false,
            matched_arn: None,
            event_type_category: h.event_type_category.clone(),
            region: h.region.clone(),
            raw: Some(h.raw.clone()),
        };
        if h.entities.is_empty() {
            vec![row(None)]
        } else {
            h.entities.iter().map(|v| row(Some(v))).collect()
        }
    }
}

/// `rows` as a `health_events` batch.
pub fn health_event_rows(rows: &[HealthRow]) -> RecordBatch {
    use arrow::array::{BooleanArray, StringArray, TimestampMillisecondArray};
    let ts = |f: &dyn Fn(&HealthRow) -> Option<i64>| -> ArrayRef {
        Arc::new(
            TimestampMillisecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let text = |f: &dyn Fn(&HealthRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let cols: Vec<ArrayRef> = vec![
        text(&|r| Some(&r.event_arn)),
        text(&|r| r.event_type_code.as_deref()),
        ts(&|r| Some(r.start_time)),
        ts(&|r| r.end_time),
        ts(&|r| r.last_updated_time),
        text(&|r| r.status_code.as_deref()),
        text(&|r| r.vpn_id.as_deref()),
        text(&|r| r.tunnel_ip.as_deref()),
        text(&|r| r.description.as_deref()),
        text(&|r| Some(r.origin)),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.confirmed))
                .collect::<BooleanArray>(),
        ),
        text(&|r| r.matched_arn.as_deref()),
        text(&|r| r.event_type_category.as_deref()),
        text(&|r| r.region.as_deref()),
        text(&|r| r.raw.as_deref()),
    ];
    batch(TableName::HealthEvents, cols)
}

/// One datapoint of the `metrics` table, as plain values (the store knows nothing of how it was
/// computed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRow<'a> {
    /// Period start, epoch ms UTC.
    pub ts: i64,
    pub namespace: &'a str,
    pub metric_name: &'a str,
    pub vpn_id: &'a str,
    /// `None` for connection-level datapoints.
    pub tunnel_ip: Option<&'a str>,
    pub period_s: i64,
    pub sample_count: f64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
    pub unit: &'a str,
    pub concentrator_id: Option<&'a str>,
}

/// Accumulates rows of the `metrics` table.
pub struct MetricRows {
    ts: TimestampMillisecondBuilder,
    namespace: StringBuilder,
    metric_name: StringBuilder,
    vpn_id: StringBuilder,
    tunnel_ip: StringBuilder,
    period_s: Int64Builder,
    sample_count: Float64Builder,
    sum: Float64Builder,
    minimum: Float64Builder,
    maximum: Float64Builder,
    unit: StringBuilder,
    concentrator_id: StringBuilder,
    len: usize,
}

impl Default for MetricRows {
    fn default() -> Self {
        MetricRows {
            ts: ts_builder(),
            namespace: StringBuilder::new(),
            metric_name: StringBuilder::new(),
            vpn_id: StringBuilder::new(),
            tunnel_ip: StringBuilder::new(),
            period_s: Int64Builder::new(),
            sample_count: Float64Builder::new(),
            sum: Float64Builder::new(),
            minimum: Float64Builder::new(),
            maximum: Float64Builder::new(),
            unit: StringBuilder::new(),
            concentrator_id: StringBuilder::new(),
            len: 0,
        }
    }
}

impl MetricRows {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, r: &MetricRow<'_>) {
        self.ts.append_value(r.ts);
        self.namespace.append_value(r.namespace);
        self.metric_name.append_value(r.metric_name);
        self.vpn_id.append_value(r.vpn_id);
        self.tunnel_ip.append_option(r.tunnel_ip);
        self.period_s.append_value(r.period_s);
        self.sample_count.append_value(r.sample_count);
        self.sum.append_value(r.sum);
        self.minimum.append_value(r.minimum);
        self.maximum.append_value(r.maximum);
        self.unit.append_value(r.unit);
        self.concentrator_id.append_option(r.concentrator_id);
        self.len += 1;
    }

    /// Hands out the rows as one batch of the `metrics` schema and resets.
    pub fn finish(&mut self) -> RecordBatch {
        let c: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.namespace.finish()),
            Arc::new(self.metric_name.finish()),
            Arc::new(self.vpn_id.finish()),
            Arc::new(self.tunnel_ip.finish()),
            Arc::new(self.period_s.finish()),
            Arc::new(self.sample_count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.minimum.finish()),
            Arc::new(self.maximum.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.concentrator_id.finish()),
        ];
        self.len = 0;
        batch(TableName::Metrics, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_rows_match_the_schema() {
        let mut rows = MetricRows::default();
        rows.push(&MetricRow {
            ts: 60_000,
            namespace: "AWS/VPN",
            metric_name: "TunnelState",
            vpn_id: "vpn-1",
            tunnel_ip: None,
            period_s: 60,
            sample_count: 60.0,
            sum: 30.0,
            minimum: 0.5,
            maximum: 0.5,
            unit: "None",
            concentrator_id: None,
        });
        let b = rows.finish();
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.schema(), TableName::Metrics.schema());
        assert!(rows.is_empty());
    }
}

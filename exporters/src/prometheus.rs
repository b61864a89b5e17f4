//! Prometheus / OpenMetrics exposition, rendered with `prometheus-client`: the pipeline's own
//! metrics (records and bytes per source, rejects, ingest lag, rows stored per table) and the
//! fleet's live state from `tunnelwatch-monitor` ([`encode_with_fleet`]): TunnelState per
//! tunnel and connection, TunnelDataIn/Out byte counters, ConcentratorBandwidthUsage, IKE phase
//! and BGP session state, records per message kind, late records.
//!
//! With alarms configured ([`encode_with_alarms`]): `tunnelwatch_alarm_state{alarm, vpn_id,
//! tunnel_ip, state, severity}`, 1 for each instance's current state.
//!
//! Invariants: every family has help text (and a unit where the value has one) and follows the
//! Prometheus naming conventions `promtool check metrics` applies (base units: bytes and
//! seconds, so ConcentratorBandwidthUsage, bits per second at AWS, is exposed as
//! `tunnelwatch_concentrator_bandwidth_bytes_per_second`); labels carry
//! only bounded values — source and table names, VPN ids, tunnel outside IPs, concentrator ids,
//! the phase number and catalogue `message_kind`s — never free text. A tunnel whose state is
//! not known yet (no record said) has no state sample rather than a 0.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use tunnelwatch_monitor::FleetStatus;
use tunnelwatch_monitor::alarm::{AlarmState, InstanceStatus};

/// The content type of [`encode_pipeline`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters of one source.
#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    pub name: String,
    /// The source kind (`file`, `syslog`, …).
    pub kind: String,
    pub records: u64,
    pub bytes: u64,
    pub rejects: u64,
    /// Deliveries dropped (UDP) or refused with 503 (HTTP) because the in-flight budget was used up.
    pub dropped: u64,
    /// Requests answered as already stored, not stored again (Firehose retries).
    pub duplicates: u64,
    /// Requests, connections or frames refused (bad auth, too large, TLS handshake failures).
    pub refused: u64,
    /// Errors talking to the outside; the source retried.
    pub errors: u64,
    /// Open connections or files.
    pub open: u64,
    /// Seconds between now and the newest event time received, if any.
    pub lag_seconds: Option<f64>,
    /// Unix time of the last checkpoint made durable, if any.
    pub last_checkpoint_seconds: Option<f64>,
    /// Unix time at which the source last handed anything on, if ever.
    pub last_received_seconds: Option<f64>,
    /// Still replaying what it had at start (a history, a backlog).
    pub replaying: bool,
}

/// A reading of the pipeline's counters.
#[derive(Debug, Clone, Default)]
pub struct PipelineStats {
    pub sources: Vec<SourceStats>,
    /// The in-flight budget between sources and the store, and what of it is in use.
    pub budget_bytes: Option<u64>,
    pub in_flight_bytes: Option<u64>,
    /// Rows stored per table (`tunnel_activity`, `bgp_events`, …).
    pub store_rows: Vec<(String, u64)>,
    /// Store writes that failed (each retried), and whether the last one worked.
    pub store_write_errors: u64,
    pub store_writable: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

/// Renders the pipeline's metrics in the OpenMetrics text format.
pub fn encode_pipeline(stats: &PipelineStats) -> Result<String, std::fmt::Error> {
    let registry = pipeline_registry(stats);
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

/// Renders the pipeline's metrics and the fleet's live state in the OpenMetrics text format.
pub fn encode_with_fleet(
    stats: &PipelineStats,
    fleet: &FleetStatus,
) -> Result<String, std::fmt::Error> {
    encode_with_alarms(stats, fleet, None, None)
}

/// The notification outbox's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxCounts {
    /// Notifications written and not yet acknowledged.
    pub pending: u64,
    pub sent: u64,
    pub retries: u64,
    /// Expired or refused for good (kept in `outbox/failed/`).
    pub failed: u64,
}

fn register_outbox(registry: &mut Registry, o: OutboxCounts) {
    let pending: Gauge = Gauge::default();
    pending.set(o.pending as i64);
    registry.register(
        "notifications_pending",
        "Alarm notifications in the outbox, not yet acknowledged by their notifier",
        pending,
    );
    for (name, help, value) in [
        (
            "notifications_sent",
            "Alarm notifications delivered (acknowledged)",
            o.sent,
        ),
        (
            "notifications_retries",
            "Failed delivery attempts that will be retried",
            o.retries,
        ),
        (
            "notifications_failed",
            "Alarm notifications given up on (expired or refused), kept in outbox/failed",
            o.failed,
        ),
    ] {
        let c: Counter = Counter::default();
        c.inc_by(value);
        registry.register(name, help, c);
    }
}

/// Like [`encode_with_fleet`], plus `tunnelwatch_alarm_state` for the alarm instances when
/// alarms are configured (`Some`, even if no instance exists yet) and the outbox's
/// `tunnelwatch_notifications_*` when notifiers are.
pub fn encode_with_alarms(
    stats: &PipelineStats,
    fleet: &FleetStatus,
    alarms: Option<&[InstanceStatus]>,
    outbox: Option<OutboxCounts>,
) -> Result<String, std::fmt::Error> {
    let mut registry = pipeline_registry(stats);
    register_fleet(&mut registry, fleet);
    if let Some(instances) = alarms {
        register_alarms(&mut registry, instances);
    }
    if let Some(o) = outbox {
        register_outbox(&mut registry, o);
    }
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlarmLabels {
    alarm: String,
    vpn_id: String,
    /// Empty for a per-connection alarm.
    tunnel_ip: String,
    state: &'static str,
    /// The definition's `critical`, `warning` or `info`.
    severity: &'static str,
}

/// One series per instance and state, 1 for the instance's current state (the
/// kube-state-metrics convention), so `tunnelwatch_alarm_state{state="ALARM"} == 1` lists what
/// is firing.
fn register_alarms(registry: &mut Registry, instances: &[InstanceStatus]) {
    let family = Family::<AlarmLabels, FloatGauge>::default();
    registry.register(
        "alarm_state",
        "Alarm instance state: 1 for its current state (OK, ALARM or INSUFFICIENT_DATA), 0 for the others",
        family.clone(),
    );
    for i in instances {
        for state in [
            AlarmState::Ok,
            AlarmState::Alarm,
            AlarmState::InsufficientData,
        ] {
            family
                .get_or_create(&AlarmLabels {
                    alarm: i.alarm_name.to_string(),
                    vpn_id: i.vpn_id.to_string(),
                    tunnel_ip: i.tunnel_ip.as_deref().unwrap_or("").to_owned(),
                    state: state.as_str(),
                    severity: i.severity.as_str(),
                })
                .set(flag(i.state == state));
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TunnelLabels {
    vpn_id: String,
    tunnel_ip: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    vpn_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConcentratorLabels {
    vpn_id: String,
    concentrator_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    vpn_id: String,
    tunnel_ip: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    vpn_id: String,
    tunnel_ip: String,
    message_kind: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn register_fleet(registry: &mut Registry, fleet: &FleetStatus) {
    let state = Family::<TunnelLabels, FloatGauge>::default();
    let conn_state = Family::<ConnectionLabels, FloatGauge>::default();
    let data_in = Family::<TunnelLabels, Counter>::default();
    let data_out = Family::<TunnelLabels, Counter>::default();
    let bandwidth = Family::<ConcentratorLabels, FloatGauge>::default();
    let phase = Family::<PhaseLabels, FloatGauge>::default();
    let bgp = Family::<TunnelLabels, FloatGauge>::default();
    let events = Family::<EventLabels, Counter>::default();
    let late: Counter = Counter::default();
    registry.register(
        "tunnel_state",
        "TunnelState per tunnel (AWS/VPN semantics): static routing 1 while IPsec is up, BGP routing 1 while the BGP session is Established, else 0",
        state.clone(),
    );
    registry.register(
        "connection_tunnel_state",
        "TunnelState per connection: the mean over its tunnels with a known state (0, 0.5 or 1 for two tunnels)",
        conn_state.clone(),
    );
    registry.register_with_unit(
        "tunnel_data_in",
        "TunnelDataIn: bytes received by AWS through the tunnel from the customer gateway (after decryption), from traffic counter deltas",
        Unit::Bytes,
        data_in.clone(),
    );
    registry.register_with_unit(
        "tunnel_data_out",
        "TunnelDataOut: bytes sent by AWS through the tunnel to the customer gateway (before encryption), from traffic counter deltas",
        Unit::Bytes,
        data_out.clone(),
    );
    // Prometheus base units: bytes, not the bits per second AWS reports.
    registry.register_with_unit(
        "concentrator_bandwidth",
        "ConcentratorBandwidthUsage of a connection on a VPN Concentrator over the last complete minute, in bytes per second (AWS reports bits per second: multiply by 8)",
        Unit::Other("bytes_per_second".into()),
        bandwidth.clone(),
    );
    registry.register(
        "ike_phase_state",
        "IKE phase 1 / phase 2 up (established or rekeying) per tunnel",
        phase.clone(),
    );
    registry.register(
        "bgp_session_established",
        "1 while the tunnel's BGP session is Established, else 0 (BGP tunnels with a BGP record)",
        bgp.clone(),
    );
    registry.register(
        "events",
        "Tunnel activity and BGP records received per tunnel and message kind",
        events.clone(),
    );
    registry.register(
        "monitor_late_records",
        "Records that arrived after the lateness window: stored, but not applied to tunnel state",
        late.clone(),
    );
    late.inc_by(fleet.late_records);
    for t in &fleet.tunnels {
        let labels = TunnelLabels {
            vpn_id: t.vpn_id.to_string(),
            tunnel_ip: t.tunnel_ip.to_string(),
        };
        if let Some(s) = t.state {
            state.get_or_create(&labels).set(flag(s));
        }
        data_in.get_or_create(&labels).inc_by(t.bytes_in_total);
        data_out.get_or_create(&labels).inc_by(t.bytes_out_total);
        for (p, up) in [("1", t.phase1_up), ("2", t.phase2_up)] {
            if let Some(up) = up {
                phase
                    .get_or_create(&PhaseLabels {
                        vpn_id: labels.vpn_id.clone(),
                        tunnel_ip: labels.tunnel_ip.clone(),
                        phase: p,
                    })
                    .set(flag(up));
            }
        }
        if let Some(b) = t.bgp_established {
            bgp.get_or_create(&labels).set(flag(b));
        }
        for (kind, n) in &t.events {
            events
                .get_or_create(&EventLabels {
                    vpn_id: labels.vpn_id.clone(),
                    tunnel_ip: labels.tunnel_ip.clone(),
                    message_kind: kind.as_str(),
                })
                .inc_by(*n);
        }
    }
    for c in &fleet.connections {
        if let Some(s) = c.state {
            conn_state
                .get_or_create(&ConnectionLabels {
                    vpn_id: c.vpn_id.to_string(),
                })
                .set(s);
        }
        if let (Some(id), Some(b)) = (&c.concentrator_id, c.bandwidth_bits_per_second) {
            bandwidth
                .get_or_create(&ConcentratorLabels {
                    vpn_id: c.vpn_id.to_string(),
                    concentrator_id: id.to_string(),
                })
                .set(b / 8.0);
        }
    }
}

fn pipeline_registry(stats: &PipelineStats) -> Registry {
    let mut registry = Registry::with_prefix("tunnelwatch");
    let records = Family::<SourceLabel, Counter>::default();
    let bytes = Family::<SourceLabel, Counter>::default();
    let rejects = Family::<SourceLabel, Counter>::default();
    let lag = Family::<SourceLabel, Gauge<f64, AtomicU64>>::default();
    let rows = Family::<TableLabel, Counter>::default();
    let dropped = Family::<SourceLabel, Counter>::default();
    let duplicates = Family::<SourceLabel, Counter>::default();
    let refused = Family::<SourceLabel, Counter>::default();
    let errors = Family::<SourceLabel, Counter>::default();
    let open = Family::<SourceLabel, Gauge>::default();
    let checkpoint = Family::<SourceLabel, Gauge<f64, AtomicU64>>::default();
    let received = Family::<SourceLabel, Gauge<f64, AtomicU64>>::default();
    let replaying = Family::<SourceLabel, Gauge>::default();
    let budget: Gauge = Gauge::default();
    let in_flight: Gauge = Gauge::default();
    registry.register(
        "source_dropped",
        "Deliveries a source dropped (UDP) or refused with 503 (HTTP) because the in-flight budget was used up",
        dropped.clone(),
    );
    registry.register(
        "source_duplicates",
        "Requests a source answered as already stored and did not store again (Firehose retries of a stored requestId)",
        duplicates.clone(),
    );
    registry.register(
        "source_refused",
        "Requests, connections or frames a source refused: bad credentials, too large, bad framing, TLS handshake failures",
        refused.clone(),
    );
    registry.register(
        "source_errors",
        "Errors a source met talking to the outside (I/O, API calls); it retried",
        errors.clone(),
    );
    registry.register(
        "source_open",
        "Open connections (network sources) or files (file source)",
        open.clone(),
    );
    registry.register(
        "source_replaying",
        "1 while a source replays what it had at start (a history, a backlog): live metrics and alarms follow its event times until it has caught up",
        replaying.clone(),
    );
    registry.register_with_unit(
        "source_last_checkpoint_timestamp",
        "Unix time at which the source's last checkpoint was made durable",
        Unit::Seconds,
        checkpoint.clone(),
    );
    registry.register_with_unit(
        "source_last_received_timestamp",
        "Unix time at which the source last received data (alert on silence: time() minus this)",
        Unit::Seconds,
        received.clone(),
    );
    if let (Some(total), Some(used)) = (stats.budget_bytes, stats.in_flight_bytes) {
        registry.register_with_unit(
            "pipeline_budget",
            "In-flight budget: bytes sources may hold before they are slowed (TCP, files), answer 503 (HTTP) or drop (UDP)",
            Unit::Bytes,
            budget.clone(),
        );
        registry.register_with_unit(
            "pipeline_in_flight",
            "Bytes received by sources and not yet durable in the store",
            Unit::Bytes,
            in_flight.clone(),
        );
        budget.set(total as i64);
        in_flight.set(used as i64);
    }
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
            kind: s.kind.clone(),
        };
        records.get_or_create(&l).inc_by(s.records);
        dropped.get_or_create(&l).inc_by(s.dropped);
        duplicates.get_or_create(&l).inc_by(s.duplicates);
        refused.get_or_create(&l).inc_by(s.refused);
        errors.get_or_create(&l).inc_by(s.errors);
        open.get_or_create(&l).set(s.open as i64);
        replaying.get_or_create(&l).set(i64::from(s.replaying));
        if let Some(t) = s.last_checkpoint_seconds {
            checkpoint.get_or_create(&l).set(t);
        }
        if let Some(t) = s.last_received_seconds {
            received.get_or_create(&l).set(t);
        }
        bytes.get_or_create(&l).inc_by(s.bytes);
        rejects.get_or_create(&l).inc_by(s.rejects);
        if let Some(v) = s.lag_seconds {
            lag.get_or_create(&l).set(v);
        }
    }
    let write_errors: Counter = Counter::default();
    write_errors.inc_by(stats.store_write_errors);
    registry.register(
        "store_write_errors",
        "Store writes (WAL appends, flushes, compaction) that failed, e.g. on a full disk; \
         each is retried and sources are held back meanwhile",
        write_errors,
    );
    let writable: Gauge = Gauge::default();
    writable.set(i64::from(stats.store_writable));
    registry.register(
        "store_writable",
        "1 if the store's last write worked, 0 while it fails (sources are not acknowledged)",
        writable,
    );
    for (table, n) in &stats.store_rows {
        rows.get_or_create(&TableLabel {
            table: table.clone(),
        })
        .inc_by(*n);
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_labels() {
        let text = encode_pipeline(&PipelineStats {
            sources: vec![SourceStats {
                name: "gw".into(),
                kind: "syslog".into(),
                records: 10,
                bytes: 2000,
                rejects: 1,
                dropped: 3,
                duplicates: 0,
                refused: 2,
                errors: 0,
                open: 4,
                lag_seconds: Some(0.5),
                last_checkpoint_seconds: Some(1.7e9),
                last_received_seconds: Some(1.8e9),
                replaying: true,
            }],
            budget_bytes: Some(1 << 20),
            in_flight_bytes: Some(4096),
            store_rows: vec![("tunnel_activity".into(), 9)],
            store_write_errors: 2,
            store_writable: false,
        })
        .unwrap();
        for want in [
            "tunnelwatch_store_write_errors_total 2",
            "tunnelwatch_store_writable 0",
            "# HELP tunnelwatch_source_records Log records received per source",
            "tunnelwatch_source_records_total{source=\"gw\",kind=\"syslog\"} 10",
            "tunnelwatch_source_bytes_total{source=\"gw\",kind=\"syslog\"} 2000",
            "tunnelwatch_rejects_total{source=\"gw\",kind=\"syslog\"} 1",
            "tunnelwatch_source_dropped_total{source=\"gw\",kind=\"syslog\"} 3",
            "tunnelwatch_source_refused_total{source=\"gw\",kind=\"syslog\"} 2",
            "tunnelwatch_source_open{source=\"gw\",kind=\"syslog\"} 4",
            "tunnelwatch_source_replaying{source=\"gw\",kind=\"syslog\"} 1",
            "tunnelwatch_source_last_checkpoint_timestamp_seconds{source=\"gw\",kind=\"syslog\"} 1700000000.0",
            "tunnelwatch_pipeline_in_flight_bytes 4096",
            "tunnelwatch_source_last_received_timestamp_seconds{source=\"gw\",kind=\"syslog\"} 1800000000.0",
            "tunnelwatch_pipeline_budget_bytes 1048576",
            "tunnelwatch_ingest_lag_seconds{source=\"gw\",kind=\"syslog\"} 0.5",
            "tunnelwatch_store_rows_total{table=\"tunnel_activity\"} 9",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    /// Prometheus names carry base units: the concentrator bandwidth AWS reports in bits per
    /// second is exposed in bytes per second.
    #[test]
    fn concentrator_bandwidth_in_bytes_per_second() {
        use std::sync::Arc;
        use tunnelwatch_monitor::{ConnectionStatus, Routing};
        let fleet = FleetStatus {
            connections: vec![ConnectionStatus {
                vpn_id: Arc::from("vpn-1"),
                routing: Routing::Bgp,
                state: Some(1.0),
                concentrator_id: Some(Arc::from("vcn-1")),
                bandwidth_bits_per_second: Some(1.5e7),
            }],
            ..Default::default()
        };
        let text = encode_with_fleet(&PipelineStats::default(), &fleet).unwrap();
        for want in [
            "# TYPE tunnelwatch_concentrator_bandwidth_bytes_per_second gauge",
            "# UNIT tunnelwatch_concentrator_bandwidth_bytes_per_second bytes_per_second",
            "tunnelwatch_concentrator_bandwidth_bytes_per_second{vpn_id=\"vpn-1\",concentrator_id=\"vcn-1\"} 1875000.0",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(!text.contains("bits_per_second"), "{text}");
    }
}

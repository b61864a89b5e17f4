//! `tunnelwatch diagnose`: reads the records the rules need from the store (tunnel activity and
//! BGP events, one pass, in `since..until`) and hands each connection's to
//! [`tunnelwatch_monitor::diagnose::diagnose_connection`]; then reads the customer gateways'
//! lines of the same window (`gateway_events`), places them on tunnels by the addresses AWS's
//! records name, and adds each diagnosis the gateway's side of the story
//! ([`tunnelwatch_monitor::diagnose::gateway`]). [`timeline`] is one tunnel's merged story.
//!
//! Owns: the SQL (also given to the user, so that the evidence can be reproduced) and the fleet
//! ranking (connections by trouble score, then id). Limits: the records of the window are held
//! in memory (about 200 bytes each); route records other than denials and withdrawals are not
//! read (they never decide a cause).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use tunnelwatch_monitor::diagnose::gateway::{
    self as gw, AFTER_MS, BEFORE_MS, GatewayRecord, Resolver, TimelineEntry,
};
use tunnelwatch_monitor::diagnose::{
    ConnectionReport, FleetEvent, Record, diagnose_connection, fleet_events,
};
use tunnelwatch_parsers::{GatewayKind, PhaseState, Severity};
use tunnelwatch_queries::Snapshot;

use crate::error::PipelineError;

/// The SQL that reads the records of `vpn_id` (or of every connection) in `since..until`.
pub fn records_sql(vpn_id: Option<&str>, since: Option<i64>, until: Option<i64>) -> String {
    let mut filter = String::from("vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL");
    if let Some(v) = vpn_id {
        filter.push_str(&format!(
            " AND vpn_id = {}",
            tunnelwatch_queries::guard::sql_literal(v)
        ));
    }
    if let Some(t) = since {
        filter.push_str(&format!(" AND ts >= to_timestamp_millis({t})"));
    }
    if let Some(t) = until {
        filter.push_str(&format!(" AND ts < to_timestamp_millis({t})"));
    }
    format!(
        "SELECT vpn_id, tunnel_ip, CAST(ts AS BIGINT) AS ts_ms, CAST(message_kind AS VARCHAR) AS kind, \
           CAST(severity AS VARCHAR) AS severity, ike_phase1_state, ike_phase2_state, \
           NULL AS from_state, NULL AS to_state, NULL AS prefix \
         FROM tunnel_activity WHERE {filter} \
         UNION ALL \
         SELECT vpn_id, tunnel_ip, CAST(ts AS BIGINT), CAST(message_kind AS VARCHAR), \
           CAST(severity AS VARCHAR), NULL, NULL, from_state, to_state, prefix \
         FROM bgp_events WHERE {filter} \
           AND (message_kind NOT IN ('route_advertised', 'route_updated', 'update_received', \
                'end_of_rib_sent', 'open_sent', 'open_received', 'connect_initiated'))"
    )
}

fn phase(s: Option<&str>) -> Option<PhaseState> {
    match s? {
        "established" => Some(PhaseState::Established),
        "rekeying" => Some(PhaseState::Rekeying),
        "negotiating" => Some(PhaseState::Negotiating),
        "down" => Some(PhaseState::Down),
        _ => None,
    }
}

fn severity(s: &str) -> Severity {
    match s {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        _ => Severity::Info,
    }
}

/// The diagnosis of the fleet (or of one connection).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetDiagnosis {
    /// Trouble that started on several connections at once (a shared upstream cause).
    pub fleet_events: Vec<FleetEvent>,
    /// Every connection read, ranked by trouble.
    pub connections: Vec<ConnectionReport>,
}

/// Every connection's report over the stored records of `since..until` (or one connection's),
/// ranked by trouble, and the fleet events. `end_ms` of an open episode: `until`, else the
/// newest record read.
pub fn diagnose(
    snapshot: &Snapshot,
    vpn_id: Option<&str>,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<FleetDiagnosis, PipelineError> {
    use crate::columns::map_strings;
    let sql = records_sql(vpn_id, since, until);
    // Connections in first-seen order, and their index by id.
    let mut connections: Vec<(Arc<str>, Vec<Record>)> = Vec::new();
    let mut index: HashMap<Arc<str>, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut ips: HashSet<Arc<str>, foldhash::fast::RandomState> = HashSet::default();
    let mut newest = i64::MIN;
    let mut batches = crate::metrics::Batches::open(snapshot, &sql)?;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let c = |i: usize| batch.column(i);
        let vpn = map_strings(c(0), |v| {
            let v: Arc<str> = Arc::from(v);
            *index.entry(v.clone()).or_insert_with(|| {
                connections.push((v, Vec::new()));
                connections.len() - 1
            })
        })?;
        let ip = map_strings(c(1), |v| match ips.get(v) {
            Some(k) => k.clone(),
            None => {
                let k: Arc<str> = Arc::from(v);
                ips.insert(k.clone());
                k
            }
        })?;
        let kind = map_strings(c(3), tunnelwatch_monitor::kind_from_str)?;
        let sev = map_strings(c(4), severity)?;
        let p1 = map_strings(c(5), |v| phase(Some(v)))?;
        let p2 = map_strings(c(6), |v| phase(Some(v)))?;
        let from = map_strings(c(7), |v| Arc::<str>::from(v))?;
        let to = map_strings(c(8), |v| Arc::<str>::from(v))?;
        let prefix = map_strings(c(9), |v| Arc::<str>::from(v))?;
        let ts = arrow::compute::cast(c(2), &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let (Some(v), Some(ip), Some(kind)) = (vpn[row], ip[row].clone(), kind[row]) else {
                continue;
            };
            let t = ts.value(row);
            newest = newest.max(t);
            connections[v].1.push(Record {
                ts: t,
                tunnel_ip: ip,
                kind,
                severity: sev[row].unwrap_or(Severity::Info),
                phase1: p1[row].flatten(),
                phase2: p2[row].flatten(),
                bgp_transition: from[row].clone().zip(to[row].clone()),
                prefix: prefix[row].clone(),
            });
        }
    }
    let end = until.unwrap_or(newest);
    let mut reports: Vec<ConnectionReport> = connections
        .iter()
        .map(|(vpn, records)| diagnose_connection(vpn, records, end))
        .collect();
    // The gateways' side, for the connections read.
    let mut resolver = Resolver::default();
    for (vpn, records) in &connections {
        for r in records {
            resolver.tunnel(vpn, &r.tunnel_ip);
        }
    }
    add_inside_addresses(snapshot, &mut resolver, since, until)?;
    let mut gateway = read_gateway(snapshot, since, until)?;
    resolver.resolve(&mut gateway);
    let mut by_vpn: HashMap<Arc<str>, Vec<GatewayRecord>> = HashMap::new();
    for r in gateway {
        if let Some(v) = r.vpn_id.clone() {
            by_vpn.entry(v).or_default().push(r);
        }
    }
    for report in &mut reports {
        if let Some(records) = by_vpn.get(&report.vpn_id) {
            gw::correlate(report, records, end);
        }
    }
    reports.sort_by(|a, b| {
        b.trouble_score
            .total_cmp(&a.trouble_score)
            .then_with(|| a.vpn_id.cmp(&b.vpn_id))
    });
    Ok(FleetDiagnosis {
        fleet_events: fleet_events(&reports),
        connections: reports,
    })
}

/// A time window's SQL filter on `ts`, widened by the gateway margins.
/// ` AND ts …` bounds of `since..until` widened by the gateway margins (empty: no bounds).
fn gateway_window(since: Option<i64>, until: Option<i64>) -> String {
    let mut filter = String::new();
    if let Some(t) = since {
        filter.push_str(&format!(
            " AND ts >= to_timestamp_millis({})",
            t - BEFORE_MS
        ));
    }
    if let Some(t) = until {
        filter.push_str(&format!(" AND ts < to_timestamp_millis({})", t + AFTER_MS));
    }
    filter
}

/// The SQL that reads the gateway lines the verdicts and the timeline use (everything but
/// `unknown` lines) in `since..until`, widened by the gateway margins. A line's peer is its
/// peer address or, failing that, the peer's IKE identity (AWS's is its outside IP: pluto
/// names the peer only so, `ID_IPV4_ADDR '203.0.113.30'`).
pub fn gateway_sql(since: Option<i64>, until: Option<i64>) -> String {
    format!(
        "SELECT CAST(ts AS BIGINT) AS ts_ms, vpn_id, tunnel_ip, source, daemon, gateway_kind, \
           severity, COALESCE(peer_ip, peer_id) AS peer, COALESCE(ike_sa, session) AS connection, direction, sa, notify, \
           proposals, reason, peer_asn, expected_asn, details \
         FROM gateway_events WHERE gateway_kind <> 'unknown'{} ORDER BY ts_ms",
        gateway_window(since, until)
    )
}

/// Teaches `resolver` the gateways' inside addresses that AWS's BGP records name.
fn add_inside_addresses(
    snapshot: &Snapshot,
    resolver: &mut Resolver,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<(), PipelineError> {
    let sql = format!(
        "SELECT DISTINCT vpn_id, tunnel_ip, neighbor_ip FROM bgp_events \
         WHERE vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL AND neighbor_ip IS NOT NULL{}",
        gateway_window(since, until)
    );
    let mut batches = crate::metrics::Batches::open(snapshot, &sql)?;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let text = |i: usize| crate::columns::map_strings(batch.column(i), |v| Arc::<str>::from(v));
        let (vpn, ip, inside) = (text(0)?, text(1)?, text(2)?);
        for row in 0..batch.num_rows() {
            if let (Some(v), Some(t), Some(n)) = (&vpn[row], &ip[row], &inside[row]) {
                resolver.inside(v, t, n);
            }
        }
    }
    Ok(())
}

/// The gateway lines of the window, in time order, as stored (not yet resolved).
pub fn read_gateway(
    snapshot: &Snapshot,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Vec<GatewayRecord>, PipelineError> {
    use crate::columns::map_strings;
    let mut out = Vec::new();
    let mut batches = crate::metrics::Batches::open(snapshot, &gateway_sql(since, until))?;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let text = |i: usize| map_strings(batch.column(i), |v| Arc::<str>::from(v));
        let ts = arrow::compute::cast(batch.column(0), &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        let int = |i: usize| -> Result<Vec<Option<i64>>, PipelineError> {
            let a = arrow::compute::cast(batch.column(i), &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            Ok((0..a.len())
                .map(|r| a.is_valid(r).then(|| a.value(r)))
                .collect())
        };
        let (vpn, tunnel, source, daemon) = (text(1)?, text(2)?, text(3)?, text(4)?);
        let kind = map_strings(batch.column(5), GatewayKind::parse)?;
        let sev = map_strings(batch.column(6), severity)?;
        let (peer, connection, direction, sa) = (text(7)?, text(8)?, text(9)?, text(10)?);
        let (notify, proposals, reason) = (text(11)?, text(12)?, text(13)?);
        let (peer_asn, expected_asn) = (int(14)?, int(15)?);
        let details = text(16)?;
        for row in 0..batch.num_rows() {
            let (Some(Some(kind)), Some(source), Some(daemon)) =
                (kind[row], source[row].clone(), daemon[row].clone())
            else {
                continue;
            };
            out.push(GatewayRecord {
                ts: ts.value(row),
                tunnel_ip: tunnel[row].clone(),
                vpn_id: vpn[row].clone(),
                source,
                daemon,
                kind,
                severity: sev[row].unwrap_or(Severity::Info),
                peer_ip: peer[row].clone(),
                connection: connection[row].clone(),
                direction: direction[row].clone(),
                sa: sa[row].clone(),
                notify: notify[row].clone(),
                proposals: proposals[row].clone(),
                reason: reason[row].clone(),
                peer_asn: peer_asn[row],
                expected_asn: expected_asn[row],
                details: details[row].clone().unwrap_or_else(|| Arc::from("")),
            });
        }
    }
    Ok(out)
}

/// One tunnel's outside IP and its merged timeline.
pub type TunnelTimeline = (Arc<str>, Vec<TimelineEntry>);

/// One connection's merged timeline, per tunnel: AWS's records (tunnel activity and BGP, all
/// of them) and the gateways' lines placed on that tunnel (all but `unknown`), in time order.
pub fn timeline(
    snapshot: &Snapshot,
    vpn_id: &str,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Vec<TunnelTimeline>, PipelineError> {
    use crate::columns::map_strings;
    let vpn = tunnelwatch_queries::guard::sql_literal(vpn_id);
    let mut filter = format!("vpn_id = {vpn} AND tunnel_ip IS NOT NULL");
    if let Some(t) = since {
        filter.push_str(&format!(" AND ts >= to_timestamp_millis({t})"));
    }
    if let Some(t) = until {
        filter.push_str(&format!(" AND ts < to_timestamp_millis({t})"));
    }
    let sql = format!(
        "SELECT tunnel_ip, CAST(ts AS BIGINT) AS ts_ms, message_kind, severity, \
           COALESCE(details, '') AS details FROM tunnel_activity WHERE {filter} \
         UNION ALL \
         SELECT tunnel_ip, CAST(ts AS BIGINT), message_kind, severity, \
           COALESCE(details, status, '') FROM bgp_events WHERE {filter} \
         ORDER BY ts_ms"
    );
    let mut aws: HashMap<Arc<str>, Vec<TimelineEntry>> = HashMap::new();
    let mut resolver = Resolver::default();
    let vpn_id: Arc<str> = Arc::from(vpn_id);
    let side: Arc<str> = Arc::from("aws");
    let mut batches = crate::metrics::Batches::open(snapshot, &sql)?;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let text = |i: usize| map_strings(batch.column(i), |v| Arc::<str>::from(v));
        let (ip, kind, details) = (text(0)?, text(2)?, text(4)?);
        let sev = map_strings(batch.column(3), severity)?;
        let ts = arrow::compute::cast(batch.column(1), &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let (Some(ip), Some(kind)) = (ip[row].clone(), kind[row].clone()) else {
                continue;
            };
            resolver.tunnel(&vpn_id, &ip);
            aws.entry(ip).or_default().push(TimelineEntry {
                ts: ts.value(row),
                side: side.clone(),
                kind,
                severity: sev[row].unwrap_or(Severity::Info),
                details: details[row].clone().unwrap_or_else(|| Arc::from("")),
            });
        }
    }
    add_inside_addresses(snapshot, &mut resolver, since, until)?;
    let mut gateway = read_gateway(snapshot, since, until)?;
    resolver.resolve(&mut gateway);
    let mut theirs: HashMap<Arc<str>, Vec<TimelineEntry>> = HashMap::new();
    for r in gateway {
        if r.vpn_id.as_deref() != Some(&*vpn_id) || r.kind == GatewayKind::IkeMessage {
            continue;
        }
        let Some(ip) = r.tunnel_ip.clone() else {
            continue;
        };
        theirs.entry(ip).or_default().push(TimelineEntry {
            ts: r.ts,
            side: r.daemon.clone(),
            kind: Arc::from(r.kind.as_str()),
            severity: r.severity,
            details: r.details.clone(),
        });
    }
    let mut tunnels: Vec<Arc<str>> = aws.keys().chain(theirs.keys()).cloned().collect();
    tunnels.sort();
    tunnels.dedup();
    Ok(tunnels
        .into_iter()
        .map(|ip| {
            let a = aws.remove(&ip).unwrap_or_default();
            let g = theirs.remove(&ip).unwrap_or_default();
            (ip, gw::merge(a, g))
        })
        .collect())
}

//! `tunnelwatch diagnose`: reads the records the rules need from the store (tunnel activity and
//! BGP events, one pass, in `since..until`) and hands each connection's to
//! [`tunnelwatch_monitor::diagnose::diagnose_connection`].
//!
//! Owns: the SQL (also given to the user, so that the evidence can be reproduced) and the fleet
//! ranking (connections by trouble score, then id). Limits: the records of the window are held
//! in memory (about 200 bytes each); route records other than denials and withdrawals are not
//! read (they never decide a cause).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use tunnelwatch_monitor::diagnose::{
    ConnectionReport, FleetEvent, Record, diagnose_connection, fleet_events,
};
use tunnelwatch_parsers::{PhaseState, Severity};
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

//! `tunnelwatch diagnose`: reads the records the rules need from the store (tunnel activity and
//! BGP events, one pass, in `since..until`) and hands each connection's to
//! [`tunnelwatch_monitor::diagnose::diagnose_connection`].
//!
//! Owns: the SQL (also given to the user, so that the evidence can be reproduced) and the fleet
//! ranking (connections by trouble score, then id). Limits: the records of the window are held
//! in memory (about 200 bytes each); route records other than denials and withdrawals are not
//! read (they never decide a cause).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
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
    let sql = records_sql(vpn_id, since, until);
    let mut by_vpn: BTreeMap<Arc<str>, Vec<Record>> = BTreeMap::new();
    let mut newest = i64::MIN;
    let mut ips: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let mut batches = crate::metrics::Batches::open(snapshot, &sql)?;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let text: Vec<_> = [0, 1, 3, 4, 5, 6, 7, 8, 9]
            .iter()
            .map(|&c| arrow::compute::cast(batch.column(c), &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        let ts = arrow::compute::cast(batch.column(2), &DataType::Int64)?;
        let ts = ts.as_primitive::<Int64Type>();
        let col = |i: usize, row: usize| {
            let a = text[i].as_string::<i32>();
            a.is_valid(row).then(|| a.value(row))
        };
        for row in 0..batch.num_rows() {
            let (Some(vpn), Some(ip), Some(kind)) = (col(0, row), col(1, row), col(2, row)) else {
                continue;
            };
            let t = ts.value(row);
            newest = newest.max(t);
            let ip = ips
                .entry(ip.to_owned())
                .or_insert_with(|| Arc::from(ip))
                .clone();
            let vpn = match by_vpn.get_key_value(vpn) {
                Some((k, _)) => k.clone(),
                None => Arc::from(vpn),
            };
            by_vpn.entry(vpn).or_default().push(Record {
                ts: t,
                tunnel_ip: ip,
                kind: tunnelwatch_monitor::kind_from_str(kind),
                severity: severity(col(3, row).unwrap_or("info")),
                phase1: phase(col(4, row)),
                phase2: phase(col(5, row)),
                bgp_transition: match (col(6, row), col(7, row)) {
                    (Some(f), Some(t)) => Some((f.to_owned(), t.to_owned())),
                    _ => None,
                },
                prefix: col(8, row).map(str::to_owned),
            });
        }
    }
    let end = until.unwrap_or(newest);
    let mut reports: Vec<ConnectionReport> = by_vpn
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

//! Saved troubleshooting queries (`tunnelwatch query --saved NAME`). Time windows are relative
//! to the newest record of the table, not to the wall clock, so that they answer the same on
//! replayed historical logs as on live ones. Every query orders its rows completely, so the
//! output is deterministic (golden files test it).

/// A named query with a one-line description.
#[derive(Debug, Clone, Copy)]
pub struct SavedQuery {
    pub name: &'static str,
    pub description: &'static str,
    pub sql: &'static str,
}

pub const SAVED: &[SavedQuery] = &[
    SavedQuery {
        name: "errors-by-kind",
        description: "Error-severity messages by kind per tunnel over the last day of data (IKE and BGP)",
        sql: "WITH e AS (
    SELECT ts, vpn_id, tunnel_ip, message_kind FROM tunnel_activity WHERE severity = 'error'
    UNION ALL
    SELECT ts, vpn_id, tunnel_ip, message_kind FROM bgp_events WHERE severity = 'error'
), h AS (SELECT max(ts) - INTERVAL '1 day' AS since FROM e)
SELECT e.vpn_id, e.tunnel_ip, e.message_kind, count(*) AS errors,
       min(e.ts) AS first_seen, max(e.ts) AS last_seen
FROM e, h
WHERE e.ts >= h.since
GROUP BY e.vpn_id, e.tunnel_ip, e.message_kind
ORDER BY errors DESC, e.vpn_id, e.tunnel_ip, e.message_kind",
    },
    SavedQuery {
        name: "phase1-down",
        description: "Tunnels whose IKE phase 1 went down: how often, first and last time, last message",
        sql: "WITH d AS (
    SELECT vpn_id, tunnel_ip, ts, message_kind,
           row_number() OVER (PARTITION BY vpn_id, tunnel_ip ORDER BY ts DESC, message_kind) AS rn
    FROM tunnel_activity WHERE ike_phase1_state = 'down'
)
SELECT vpn_id, tunnel_ip, count(*) AS down_records, min(ts) AS first_down, max(ts) AS last_down,
       max(CASE WHEN rn = 1 THEN message_kind END) AS last_message_kind
FROM d
GROUP BY vpn_id, tunnel_ip
ORDER BY last_down DESC, vpn_id, tunnel_ip",
    },
    SavedQuery {
        name: "bgp-flaps",
        description: "BGP sessions that left Established: drops, recoveries, first and last change",
        sql: "SELECT vpn_id, tunnel_ip, neighbor_ip,
       count(*) FILTER (WHERE from_state = 'Established' AND to_state <> 'Established') AS session_drops,
       count(*) FILTER (WHERE to_state = 'Established') AS session_ups,
       min(ts) AS first_change, max(ts) AS last_change
FROM bgp_events
WHERE message_kind = 'bgp_state_change'
GROUP BY vpn_id, tunnel_ip, neighbor_ip
HAVING count(*) FILTER (WHERE from_state = 'Established' AND to_state <> 'Established') > 0
ORDER BY session_drops DESC, vpn_id, tunnel_ip, neighbor_ip",
    },
    SavedQuery {
        name: "route-denials",
        description: "Routes AWS denied, by reason: how many, how many prefixes and connections",
        sql: "SELECT denied_reason, count(*) AS denials, count(DISTINCT prefix) AS prefixes,
       count(DISTINCT vpn_id) AS connections, min(ts) AS first_seen, max(ts) AS last_seen
FROM bgp_events
WHERE message_kind = 'route_denied'
GROUP BY denied_reason
ORDER BY denials DESC, denied_reason",
    },
    SavedQuery {
        name: "noisy-connections",
        description: "Top 10 connections by warning and error records (IKE and BGP)",
        sql: "WITH n AS (
    SELECT vpn_id, severity FROM tunnel_activity WHERE severity <> 'info'
    UNION ALL
    SELECT vpn_id, severity FROM bgp_events WHERE severity <> 'info'
)
SELECT vpn_id,
       count(*) FILTER (WHERE severity = 'error') AS errors,
       count(*) FILTER (WHERE severity = 'warning') AS warnings,
       count(*) AS total
FROM n
GROUP BY vpn_id
ORDER BY total DESC, errors DESC, vpn_id
LIMIT 10",
    },
    SavedQuery {
        name: "latest-tunnel-state",
        description: "Each tunnel's latest IKE phase states and message",
        sql: "WITH l AS (
    SELECT vpn_id, tunnel_ip, ts, ike_phase1_state, ike_phase2_state, message_kind,
           row_number() OVER (PARTITION BY vpn_id, tunnel_ip ORDER BY ts DESC, source_offset DESC) AS rn
    FROM tunnel_activity
)
SELECT vpn_id, tunnel_ip, ts AS last_record, ike_phase1_state, ike_phase2_state, message_kind
FROM l WHERE rn = 1
ORDER BY vpn_id, tunnel_ip",
    },
    SavedQuery {
        name: "rejects-by-error",
        description: "Records that could not be parsed, by source and error",
        sql: "SELECT source, error, count(*) AS records, min(source_line) AS first_line
FROM rejects
GROUP BY source, error
ORDER BY records DESC, source, error",
    },
];

pub fn find(name: &str) -> Option<&'static SavedQuery> {
    SAVED.iter().find(|q| q.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_queries_pass_the_guard() {
        for q in SAVED {
            crate::guard::check(q.sql).unwrap_or_else(|e| panic!("{}: {e}", q.name));
        }
    }
}

//! The fleet as people look at it: one [`ConnectionView`] per connection of the live monitor,
//! with its tunnels, their state and time in state, the alarms firing on it and its last
//! error or warning, ordered with the connections in trouble first. What the HTTP API's
//! `/api/v1/connections` and the status page show.
//!
//! Owns: the composition and the trouble order (both tunnels down, one down, alarms firing, state
//! unknown, up; then by connection id). Pure: the caller hands in the monitor's status, the
//! alarm instances and the last problems (read from the store); no I/O here.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use tunnelwatch_monitor::alarm::{AlarmSeverity, AlarmState, InstanceStatus};
use tunnelwatch_monitor::{FleetStatus, Routing};

/// A connection's overall state, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Every tunnel with a known state is down.
    Down,
    /// Some tunnels down, some up.
    Degraded,
    /// No tunnel has said its state yet.
    Unknown,
    Up,
}

/// One tunnel of a connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunnelView {
    pub tunnel_ip: Arc<str>,
    /// TunnelState: `true` up, `false` down, `None` not known yet.
    pub up: Option<bool>,
    /// Event time (epoch ms) since which `up` holds.
    pub since_ms: Option<i64>,
    pub phase1_up: Option<bool>,
    pub phase2_up: Option<bool>,
    pub bgp_established: Option<bool>,
    pub bytes_in_total: u64,
    pub bytes_out_total: u64,
}

/// One alarm instance in ALARM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FiringAlarm {
    pub alarm_instance: Arc<str>,
    pub alarm_name: Arc<str>,
    pub tunnel_ip: Option<Arc<str>>,
    /// `critical`, `warning` or `info`.
    pub severity: AlarmSeverity,
    pub since_ms: Option<i64>,
}

/// A connection's last error or warning record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub ts_ms: i64,
    pub tunnel_ip: Option<Arc<str>>,
    pub message_kind: String,
}

/// One connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionView {
    pub vpn_id: Arc<str>,
    /// `static` or `bgp`.
    pub routing: &'static str,
    pub state: ConnectionState,
    pub tunnels: Vec<TunnelView>,
    /// The alarm instances in ALARM on this connection or its tunnels, most severe first.
    pub alarms_firing: Vec<FiringAlarm>,
    pub last_problem: Option<Problem>,
    pub concentrator_id: Option<Arc<str>>,
    pub bandwidth_bits_per_second: Option<f64>,
}

impl ConnectionView {
    /// Whether a critical or warning alarm fires on it (info alarms are not trouble).
    pub fn alarmed(&self) -> bool {
        self.alarms_firing
            .iter()
            .any(|a| a.severity != AlarmSeverity::Info)
    }

    /// Sort key: the worst state first, then alarms firing, then the id.
    fn trouble(&self) -> (u8, &str) {
        let rank = match (self.state, !self.alarmed()) {
            (ConnectionState::Down, _) => 0,
            (ConnectionState::Degraded, _) => 1,
            (_, false) => 2,
            (ConnectionState::Unknown, true) => 3,
            (ConnectionState::Up, true) => 4,
        };
        (rank, &self.vpn_id)
    }
}

/// The fleet view of `status`, with `alarms`' firing instances and each connection's
/// `problems` (vpn id → last error or warning), connections in trouble first.
pub fn fleet_view(
    status: &FleetStatus,
    alarms: &[InstanceStatus],
    problems: &HashMap<Arc<str>, Problem>,
) -> Vec<ConnectionView> {
    let mut tunnels: HashMap<&str, Vec<TunnelView>> = HashMap::new();
    for t in &status.tunnels {
        tunnels.entry(&t.vpn_id).or_default().push(TunnelView {
            tunnel_ip: t.tunnel_ip.clone(),
            up: t.state,
            since_ms: t.state_since_ms,
            phase1_up: t.phase1_up,
            phase2_up: t.phase2_up,
            bgp_established: t.bgp_established,
            bytes_in_total: t.bytes_in_total,
            bytes_out_total: t.bytes_out_total,
        });
    }
    let mut firing: HashMap<&str, Vec<FiringAlarm>> = HashMap::new();
    for a in alarms.iter().filter(|a| a.state == AlarmState::Alarm) {
        firing.entry(&a.vpn_id).or_default().push(FiringAlarm {
            alarm_instance: a.instance_id.clone(),
            alarm_name: a.alarm_name.clone(),
            tunnel_ip: a.tunnel_ip.clone(),
            severity: a.severity,
            since_ms: a.since,
        });
    }
    // Most severe first (critical, warning, info), then by instance.
    for list in firing.values_mut() {
        list.sort_by(|a, b| {
            (std::cmp::Reverse(a.severity), &a.alarm_instance)
                .cmp(&(std::cmp::Reverse(b.severity), &b.alarm_instance))
        });
    }
    let mut out: Vec<ConnectionView> = status
        .connections
        .iter()
        .map(|c| {
            let mut tunnels = tunnels.remove(&*c.vpn_id).unwrap_or_default();
            tunnels.sort_by(|a, b| a.tunnel_ip.cmp(&b.tunnel_ip));
            let known: Vec<bool> = tunnels.iter().filter_map(|t| t.up).collect();
            let state = match (known.iter().filter(|u| **u).count(), known.len()) {
                (_, 0) => ConnectionState::Unknown,
                (0, _) => ConnectionState::Down,
                (up, n) if up == n => ConnectionState::Up,
                _ => ConnectionState::Degraded,
            };
            ConnectionView {
                vpn_id: c.vpn_id.clone(),
                routing: match c.routing {
                    Routing::Bgp => "bgp",
                    Routing::Static => "static",
                },
                state,
                tunnels,
                alarms_firing: firing.remove(&*c.vpn_id).unwrap_or_default(),
                last_problem: problems.get(&c.vpn_id).cloned(),
                concentrator_id: c.concentrator_id.clone(),
                bandwidth_bits_per_second: c.bandwidth_bits_per_second,
            }
        })
        .collect();
    out.sort_by(|a, b| a.trouble().cmp(&b.trouble()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunnelwatch_monitor::{ConnectionStatus, TunnelStatus};

    fn tunnel(vpn: &str, ip: &str, up: Option<bool>) -> TunnelStatus {
        TunnelStatus {
            vpn_id: vpn.into(),
            tunnel_ip: ip.into(),
            routing: Routing::Static,
            state: up,
            state_since_ms: up.map(|_| 1_000),
            phase1_up: up,
            phase2_up: up,
            bgp_established: None,
            bytes_in_total: 0,
            bytes_out_total: 0,
            events: Vec::new(),
        }
    }

    fn connection(vpn: &str) -> ConnectionStatus {
        ConnectionStatus {
            vpn_id: vpn.into(),
            routing: Routing::Static,
            state: None,
            concentrator_id: None,
            bandwidth_bits_per_second: None,
        }
    }

    /// Table: (connection, tunnel states, alarm firing) → (state, place in the order).
    #[test]
    fn states_and_trouble_order() {
        let cases: [(&str, [Option<bool>; 2], bool, ConnectionState); 7] = [
            (
                "vpn-a-up",
                [Some(true), Some(true)],
                false,
                ConnectionState::Up,
            ),
            (
                "vpn-b-down",
                [Some(false), Some(false)],
                false,
                ConnectionState::Down,
            ),
            (
                "vpn-c-one",
                [Some(true), Some(false)],
                false,
                ConnectionState::Degraded,
            ),
            (
                "vpn-d-unknown",
                [None, None],
                false,
                ConnectionState::Unknown,
            ),
            (
                "vpn-e-alarm",
                [Some(true), Some(true)],
                true,
                ConnectionState::Up,
            ),
            (
                "vpn-f-half-known",
                [Some(false), None],
                false,
                ConnectionState::Down,
            ),
            // An info alarm (traffic high) is shown but is not trouble.
            (
                "vpn-g-info",
                [Some(true), Some(true)],
                true,
                ConnectionState::Up,
            ),
        ];
        let mut status = FleetStatus::default();
        let mut alarms = Vec::new();
        for (vpn, ups, alarm, _) in &cases {
            status.connections.push(connection(vpn));
            status.tunnels.push(tunnel(vpn, "2.2.2.2", ups[1]));
            status.tunnels.push(tunnel(vpn, "1.1.1.1", ups[0]));
            if *alarm {
                let info = vpn.ends_with("info");
                alarms.push(InstanceStatus {
                    severity: if info {
                        AlarmSeverity::Info
                    } else {
                        AlarmSeverity::Critical
                    },
                    alarm_name: "down".into(),
                    instance_id: format!("down/{vpn}/1.1.1.1").into(),
                    vpn_id: (*vpn).into(),
                    tunnel_ip: Some("1.1.1.1".into()),
                    state: AlarmState::Alarm,
                    since: Some(0),
                    reason: String::new(),
                    next_evaluation: None,
                });
            }
        }
        let view = fleet_view(&status, &alarms, &HashMap::new());
        let order: Vec<&str> = view.iter().map(|c| &*c.vpn_id).collect();
        assert_eq!(
            order,
            [
                "vpn-b-down",
                "vpn-f-half-known",
                "vpn-c-one",
                "vpn-e-alarm",
                "vpn-d-unknown",
                "vpn-a-up",
                "vpn-g-info"
            ]
        );
        for (vpn, _, alarm, want) in &cases {
            let c = view.iter().find(|c| &*c.vpn_id == *vpn).unwrap();
            assert_eq!(c.state, *want, "{vpn}");
            assert_eq!(c.alarms_firing.len(), usize::from(*alarm), "{vpn}");
            // Tunnels in address order.
            assert_eq!(&*c.tunnels[0].tunnel_ip, "1.1.1.1");
        }
    }
}

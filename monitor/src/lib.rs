//! Business rules over the event stream: per-tunnel state machines (IKE phases, BGP session),
//! the CloudWatch `AWS/VPN` metric datapoints (TunnelState, TunnelDataIn/Out,
//! ConcentratorBandwidthUsage) and tunnelwatch's derived per-tunnel metrics (IKE phase up,
//! BGP session established, BGP flaps, rekeys, DPD timeouts, route denials), at 1-minute
//! resolution; CloudWatch-style alarms over those datapoints ([`alarm`]); the Health rules
//! ([`health`]); root-cause diagnosis of tunnel trouble from the records ([`diagnose`]).
//!
//! Must not: talk HTTP, know about exposition formats (`tunnelwatch-exporters`) or about the
//! store (`tunnelwatch-queries`): callers hand it [`Observation`]s and take [`Datapoint`]s.
//!
//! ```
//! use std::sync::Arc;
//! use tunnelwatch_monitor::{Monitor, MonitorConfig, MetricName, Observation, ObservationBody};
//! use tunnelwatch_parsers::{MessageKind, PhaseState};
//!
//! let mut m = Monitor::new(MonitorConfig::default()).unwrap();
//! m.push(Observation {
//!     ts: 0,
//!     vpn_id: Arc::from("vpn-1"),
//!     tunnel_ip: Arc::from("192.0.2.1"),
//!     body: ObservationBody::Activity {
//!         phase1: Some(PhaseState::Established),
//!         phase2: Some(PhaseState::Established),
//!         kind: MessageKind::Unknown,
//!     },
//! });
//! // Three quiet minutes later (plus the 5-minute lateness window), three datapoints each.
//! m.advance(3 * 60_000 + 5 * 60_000);
//! let points = m.drain();
//! let up: Vec<_> = points
//!     .iter()
//!     .filter(|p| p.metric == MetricName::TunnelState && p.tunnel_ip.is_some())
//!     .map(|p| p.average())
//!     .collect();
//! assert_eq!(up, [1.0, 1.0, 1.0]);
//! ```

pub mod alarm;
mod datapoint;
pub mod diagnose;
mod engine;
mod error;
pub mod health;
mod observation;
mod state;

pub use datapoint::{Datapoint, MetricName, NAMESPACE_AWS, NAMESPACE_TUNNELWATCH, PERIOD_MS, Unit};
pub use engine::{
    ConnectionStatus, DEFAULT_LATENESS_MS, FleetStatus, Monitor, MonitorConfig, Pushed,
    TunnelStatus,
};
pub use error::MonitorError;
pub use observation::{Observation, ObservationBody, bgp_session, kind_from_str};
pub use state::{Applied, Delta, Routing, TunnelCore};

//! The monitor's typed errors.
//!
//! Owns: every way a caller can hand the monitor something it cannot use (a record without
//! tunnel identity, a negative lateness window, a metric name it does not know).

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MonitorError {
    /// The record named no tunnel (no `resource_id`, no stream name): it cannot feed a tunnel's
    /// state. It is still stored; only the metrics skip it.
    #[error("{input}: {position}: the record names no tunnel (vpn_id/tunnel_ip)")]
    NoTunnel { input: String, position: String },
    /// A customer gateway's line: the AWS metrics are AWS's view of the tunnel and do not take
    /// the other side's word for it (the line is stored in `gateway_events`).
    #[error("{input}: {position}: a gateway's line does not feed the AWS metrics")]
    GatewaySide { input: String, position: String },
    #[error("the lateness window must be zero or positive, not {0} ms")]
    InvalidLateness(i64),
    #[error("unknown metric {namespace}/{name}")]
    UnknownMetric { namespace: String, name: String },
}

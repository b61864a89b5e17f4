//! Metric datapoints: one row of the `metrics` table (DESIGN §4) per metric, dimension set and
//! minute, in CloudWatch's statistic-set shape (`sample_count`, `sum`, `minimum`, `maximum`).
//!
//! Representations (what `sum / sample_count` means for each metric):
//!
//! - State metrics (`TunnelState`, `IkePhase1Up`, `IkePhase2Up`, `BgpSessionEstablished`): one
//!   sample per **second** of the minute that is covered by data. `sample_count` is the number
//!   of seconds with a known state (60 for a whole minute, less in a tunnel's first minute;
//!   fractional when a state starts mid-second), `sum` the seconds spent up (the integral of the
//!   0/1 state; at connection level the integral of the mean of the tunnels' states),
//!   `minimum`/`maximum` the lowest and highest value held for a non-zero time. So
//!   `sum / sample_count` is the time-weighted up fraction, and summing `sum` and `sample_count`
//!   over several minutes gives the up fraction of a longer period exactly — the CloudWatch
//!   `Average`, `Minimum` and `Maximum` statistics of any period follow.
//! - `TunnelDataIn` / `TunnelDataOut` (Bytes): one sample per counter delta. `sum` = bytes in the
//!   minute (CloudWatch's `Sum`), `minimum`/`maximum` the smallest/largest delta. A sample taken
//!   at `t` counts in the minute `m` with `m < t ≤ m + 60 s` (the bytes it reports were moved
//!   before `t`). Minutes without a sample have no datapoint.
//! - `ConcentratorBandwidthUsage` (Bits/Second): one sample per minute and connection: the sum
//!   over its tunnels of their mean sample rate (`8 × (Δin + Δout) / Δt`) in that minute.
//! - Counts (`BgpFlaps`, `Rekeys`, `DpdTimeouts`, `RouteDenials`, Count): one sample per minute,
//!   value = the count; emitted only for minutes with a count above zero (missing means zero).

use std::sync::Arc;

use crate::error::MonitorError;

/// The length of every datapoint's period.
pub const PERIOD_MS: i64 = 60_000;

/// The metrics the monitor computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricName {
    TunnelState,
    TunnelDataIn,
    TunnelDataOut,
    ConcentratorBandwidthUsage,
    IkePhase1Up,
    IkePhase2Up,
    BgpSessionEstablished,
    BgpFlaps,
    Rekeys,
    DpdTimeouts,
    RouteDenials,
}

/// CloudWatch-style unit names, as stored in the `unit` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    None,
    Bytes,
    BitsPerSecond,
    Count,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::None => "None",
            Unit::Bytes => "Bytes",
            Unit::BitsPerSecond => "Bits/Second",
            Unit::Count => "Count",
        }
    }
}

/// `AWS/VPN` for the metrics CloudWatch itself publishes, `tunnelwatch` for derived ones.
pub const NAMESPACE_AWS: &str = "AWS/VPN";
pub const NAMESPACE_TUNNELWATCH: &str = "tunnelwatch";

impl MetricName {
    pub const ALL: [MetricName; 11] = [
        MetricName::TunnelState,
        MetricName::TunnelDataIn,
        MetricName::TunnelDataOut,
        MetricName::ConcentratorBandwidthUsage,
        MetricName::IkePhase1Up,
        MetricName::IkePhase2Up,
        MetricName::BgpSessionEstablished,
        MetricName::BgpFlaps,
        MetricName::Rekeys,
        MetricName::DpdTimeouts,
        MetricName::RouteDenials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::TunnelState => "TunnelState",
            MetricName::TunnelDataIn => "TunnelDataIn",
            MetricName::TunnelDataOut => "TunnelDataOut",
            MetricName::ConcentratorBandwidthUsage => "ConcentratorBandwidthUsage",
            MetricName::IkePhase1Up => "IkePhase1Up",
            MetricName::IkePhase2Up => "IkePhase2Up",
            MetricName::BgpSessionEstablished => "BgpSessionEstablished",
            MetricName::BgpFlaps => "BgpFlaps",
            MetricName::Rekeys => "Rekeys",
            MetricName::DpdTimeouts => "DpdTimeouts",
            MetricName::RouteDenials => "RouteDenials",
        }
    }

    pub fn namespace(self) -> &'static str {
        match self {
            MetricName::TunnelState
            | MetricName::TunnelDataIn
            | MetricName::TunnelDataOut
            | MetricName::ConcentratorBandwidthUsage => NAMESPACE_AWS,
            _ => NAMESPACE_TUNNELWATCH,
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            MetricName::TunnelState
            | MetricName::IkePhase1Up
            | MetricName::IkePhase2Up
            | MetricName::BgpSessionEstablished => Unit::None,
            MetricName::TunnelDataIn | MetricName::TunnelDataOut => Unit::Bytes,
            MetricName::ConcentratorBandwidthUsage => Unit::BitsPerSecond,
            MetricName::BgpFlaps
            | MetricName::Rekeys
            | MetricName::DpdTimeouts
            | MetricName::RouteDenials => Unit::Count,
        }
    }

    /// The metric stored as `namespace`/`name`.
    pub fn parse(namespace: &str, name: &str) -> Result<MetricName, MonitorError> {
        MetricName::ALL
            .into_iter()
            .find(|m| m.as_str() == name && m.namespace() == namespace)
            .ok_or_else(|| MonitorError::UnknownMetric {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
    }
}

/// One datapoint (one row of the `metrics` table).
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    /// Period start, epoch ms UTC (a multiple of [`PERIOD_MS`]).
    pub ts: i64,
    pub metric: MetricName,
    pub vpn_id: Arc<str>,
    /// `None` for connection-level datapoints.
    pub tunnel_ip: Option<Arc<str>>,
    /// The connection's VPN Concentrator (ConcentratorBandwidthUsage only).
    pub concentrator_id: Option<Arc<str>>,
    pub sample_count: f64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
}

impl Datapoint {
    /// CloudWatch's `Average` statistic: `sum / sample_count`.
    pub fn average(&self) -> f64 {
        if self.sample_count > 0.0 {
            self.sum / self.sample_count
        } else {
            0.0
        }
    }

    pub fn period_s(&self) -> i64 {
        PERIOD_MS / 1000
    }
}

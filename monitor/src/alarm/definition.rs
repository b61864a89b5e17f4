//! Alarm definitions: what one `[[alarms]]` table of the configuration carries, and the checks
//! that make a definition evaluable.
//!
//! Owns: [`AlarmDefinition`] (deserialised with unknown keys refused, snake_case keys, the
//! CloudWatch names for statistics, comparison operators and missing-data treatments), its
//! defaults (`namespace` = `AWS/VPN`, `datapoints_to_alarm` = `evaluation_periods`,
//! `treat_missing_data` = `missing`, `recovery_periods` = 1) and [`AlarmDefinition::validate`].
//!
//! Invariants of a definition that passed [`AlarmDefinition::validate`]: the metric is one the
//! monitor computes in the given namespace; `period` is a positive multiple of 60 s;
//! 1 ≤ `datapoints_to_alarm` ≤ `evaluation_periods`; `recovery_periods` ≥ 1; the dimensions
//! are `VpnId` alone (a per-connection alarm) or `VpnId` and `TunnelIpAddress` (a per-tunnel
//! alarm), each a concrete value or the `*` wildcard.
//!
//! Limits: no metric math, percentiles, anomaly bands or high-resolution (10 s / 30 s) periods.
//! Actions are notifier names, carried and not checked here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::datapoint::{MetricName, NAMESPACE_AWS};

/// The dimension naming the VPN connection.
pub const DIMENSION_VPN_ID: &str = "VpnId";
/// The dimension naming the tunnel (its AWS-side outside IP).
pub const DIMENSION_TUNNEL_IP: &str = "TunnelIpAddress";
/// The dimension value that matches every connection or tunnel.
pub const DIMENSION_WILDCARD: &str = "*";

/// The period statistic the alarm compares with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Statistic {
    Average,
    Sum,
    Minimum,
    Maximum,
    SampleCount,
}

impl Statistic {
    pub fn as_str(self) -> &'static str {
        match self {
            Statistic::Average => "Average",
            Statistic::Sum => "Sum",
            Statistic::Minimum => "Minimum",
            Statistic::Maximum => "Maximum",
            Statistic::SampleCount => "SampleCount",
        }
    }
}

/// CloudWatch's `ComparisonOperator` (the static-threshold ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    /// The words CloudWatch puts in a state reason ("were less than the threshold").
    pub fn phrase(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Comparison::GreaterThanThreshold => "greater than",
            Comparison::LessThanThreshold => "less than",
            Comparison::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// CloudWatch's `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    /// Missing datapoints are not considered; all missing ⇒ INSUFFICIENT_DATA.
    #[default]
    Missing,
    /// Missing datapoints are within the threshold.
    NotBreaching,
    /// Missing datapoints breach the threshold.
    Breaching,
    /// The current state is kept when missing datapoints would decide it.
    Ignore,
}

impl TreatMissingData {
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissingData::Missing => "missing",
            TreatMissingData::NotBreaching => "notBreaching",
            TreatMissingData::Breaching => "breaching",
            TreatMissingData::Ignore => "ignore",
        }
    }
}

/// Notifier names to call on entering each state (carried, not checked here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmActions {
    pub alarm: Vec<String>,
    pub ok: Vec<String>,
    pub insufficient_data: Vec<String>,
}

/// How much an alarm in ALARM matters to the people watching: what the status page, the fleet
/// order and the `severity` label of notifications say. Not part of CloudWatch's model (and not
/// of the [`AlarmDefinition::fingerprint`]: changing it keeps the state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmSeverity {
    /// Informational (traffic thresholds and the like): shown, never ranked as trouble.
    Info,
    Warning,
    #[default]
    Critical,
}

impl AlarmSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmSeverity::Info => "info",
            AlarmSeverity::Warning => "warning",
            AlarmSeverity::Critical => "critical",
        }
    }
}

fn default_namespace() -> String {
    NAMESPACE_AWS.to_owned()
}

fn default_recovery_periods() -> u32 {
    1
}

/// One alarm as configured (one `[[alarms]]` table).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmDefinition {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A metric name of [`MetricName`], e.g. `TunnelState`.
    pub metric: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// `VpnId` (and for per-tunnel alarms `TunnelIpAddress`) → value or `*`.
    pub dimensions: BTreeMap<String, String>,
    pub statistic: Statistic,
    /// Seconds; a positive multiple of 60.
    pub period: u32,
    /// N: how many of the most recent periods are evaluated.
    pub evaluation_periods: u32,
    /// M: how many of those must breach for ALARM (default N).
    #[serde(default)]
    pub datapoints_to_alarm: Option<u32>,
    pub comparison: Comparison,
    pub threshold: f64,
    #[serde(default)]
    pub treat_missing_data: TreatMissingData,
    #[serde(default)]
    pub actions: AlarmActions,
    /// tunnelwatch's addition: consecutive evaluations that would leave ALARM needed before the
    /// alarm leaves it (1 = CloudWatch's behaviour).
    #[serde(default = "default_recovery_periods")]
    pub recovery_periods: u32,
    /// `critical` (default), `warning` or `info`.
    #[serde(default)]
    pub severity: AlarmSeverity,
}

/// Why a definition cannot be evaluated.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AlarmConfigError {
    #[error("alarm {alarm}: unknown metric {namespace}/{metric}")]
    UnknownMetric {
        alarm: String,
        namespace: String,
        metric: String,
    },
    #[error("alarm {alarm}: period must be a positive multiple of 60 seconds, not {period}")]
    InvalidPeriod { alarm: String, period: u32 },
    #[error("alarm {alarm}: evaluation_periods must be at least 1")]
    ZeroEvaluationPeriods { alarm: String },
    #[error(
        "alarm {alarm}: datapoints_to_alarm ({datapoints_to_alarm}) must be between 1 and \
         evaluation_periods ({evaluation_periods})"
    )]
    InvalidDatapointsToAlarm {
        alarm: String,
        datapoints_to_alarm: u32,
        evaluation_periods: u32,
    },
    #[error("alarm {alarm}: recovery_periods must be at least 1")]
    ZeroRecoveryPeriods { alarm: String },
    #[error("alarm {alarm}: unknown dimension {dimension} (expected VpnId or TunnelIpAddress)")]
    UnknownDimension { alarm: String, dimension: String },
    #[error("alarm {alarm}: TunnelIpAddress is given without VpnId")]
    TunnelWithoutVpn { alarm: String },
    #[error("alarm {alarm}: dimensions must include VpnId (a value or \"*\")")]
    MissingVpnId { alarm: String },
    #[error("alarm {alarm}: the name is used by another alarm")]
    DuplicateName { alarm: String },
}

impl AlarmDefinition {
    /// M, with its default N.
    pub fn datapoints_to_alarm(&self) -> u32 {
        self.datapoints_to_alarm.unwrap_or(self.evaluation_periods)
    }

    /// How far back one evaluation looks: the evaluation range (N + 2 periods), in ms.
    pub fn evaluation_range_ms(&self) -> i64 {
        i64::from(self.period)
            * 1000
            * crate::alarm::evaluation_range(self.evaluation_periods) as i64
    }

    /// The metric, once [`AlarmDefinition::validate`] has passed.
    /// What evaluation depends on, as text: saved instance state is restored only into a
    /// definition with the same fingerprint (a changed threshold or period starts afresh; new
    /// actions or a new description do not).
    pub fn fingerprint(&self) -> String {
        format!(
            "{} {} {:?} {} {} {} {} {} {} {} {}",
            self.namespace,
            self.metric,
            self.dimensions,
            self.statistic.as_str(),
            self.period,
            self.evaluation_periods,
            self.datapoints_to_alarm(),
            self.comparison.as_str(),
            self.threshold,
            self.treat_missing_data.as_str(),
            self.recovery_periods
        )
    }

    pub fn metric_name(&self) -> Result<MetricName, AlarmConfigError> {
        MetricName::parse(&self.namespace, &self.metric).map_err(|_| {
            AlarmConfigError::UnknownMetric {
                alarm: self.name.clone(),
                namespace: self.namespace.clone(),
                metric: self.metric.clone(),
            }
        })
    }

    /// Whether the alarm is per tunnel (has `TunnelIpAddress`) rather than per connection.
    pub fn is_per_tunnel(&self) -> bool {
        self.dimensions.contains_key(DIMENSION_TUNNEL_IP)
    }

    /// Checks every invariant listed in the module documentation.
    pub fn validate(&self) -> Result<(), AlarmConfigError> {
        let alarm = || self.name.clone();
        self.metric_name()?;
        if self.period == 0 || !self.period.is_multiple_of(60) {
            return Err(AlarmConfigError::InvalidPeriod {
                alarm: alarm(),
                period: self.period,
            });
        }
        if self.evaluation_periods == 0 {
            return Err(AlarmConfigError::ZeroEvaluationPeriods { alarm: alarm() });
        }
        let m = self.datapoints_to_alarm();
        if m == 0 || m > self.evaluation_periods {
            return Err(AlarmConfigError::InvalidDatapointsToAlarm {
                alarm: alarm(),
                datapoints_to_alarm: m,
                evaluation_periods: self.evaluation_periods,
            });
        }
        if self.recovery_periods == 0 {
            return Err(AlarmConfigError::ZeroRecoveryPeriods { alarm: alarm() });
        }
        if let Some(key) = self
            .dimensions
            .keys()
            .find(|k| *k != DIMENSION_VPN_ID && *k != DIMENSION_TUNNEL_IP)
        {
            return Err(AlarmConfigError::UnknownDimension {
                alarm: alarm(),
                dimension: key.clone(),
            });
        }
        if !self.dimensions.contains_key(DIMENSION_VPN_ID) {
            if self.is_per_tunnel() {
                return Err(AlarmConfigError::TunnelWithoutVpn { alarm: alarm() });
            }
            return Err(AlarmConfigError::MissingVpnId { alarm: alarm() });
        }
        Ok(())
    }
}

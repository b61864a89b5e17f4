//! CloudWatch-style metric alarms over the monitor's minute [`Datapoint`](crate::Datapoint)s:
//! definitions, the evaluation rule and the evaluator that turns datapoints into state
//! transitions. A pure library: no I/O, threads, clocks or store; callers push datapoints,
//! call [`AlarmEvaluator::evaluate`] with the time, and take [`Transition`]s (the rows of the
//! `alarm_history` table).
//!
//! Semantics follow Amazon CloudWatch's user guide page "Using Amazon CloudWatch alarms"
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html>),
//! its sections "Evaluating an alarm" (period, evaluation periods N, datapoints to alarm M,
//! "M out of N"), "Configuring how CloudWatch alarms treat missing data"
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html>),
//! "How alarm state is evaluated when data is missing" (the evaluation range and its two
//! example tables) and "Avoiding premature transitions to alarm state".
//!
//! Modules: `definition` (the configuration and its validation), `evaluate` (the rule for one
//! evaluation range), `reason` (CloudWatch's reason sentence and reason data JSON),
//! `evaluator` (instances, period aggregation, state, damping).
//!
//! Where tunnelwatch differs from CloudWatch: evaluations happen once per period at
//! epoch-aligned boundaries (CloudWatch evaluates every minute over a sliding window); the
//! evaluation range is N + 2 periods (CloudWatch documents only the N = 3 → 5 example);
//! `recovery_periods` adds flap damping when leaving ALARM (default 1 = CloudWatch).
//!
//! ```
//! use std::sync::Arc;
//! use tunnelwatch_monitor::alarm::{AlarmDefinition, AlarmEvaluator, AlarmState};
//! use tunnelwatch_monitor::{Datapoint, MetricName};
//!
//! let a1: AlarmDefinition = serde_json::from_str(r#"{
//!     "name": "A1", "metric": "TunnelState",
//!     "dimensions": {"VpnId": "*", "TunnelIpAddress": "*"},
//!     "statistic": "Average", "period": 300, "evaluation_periods": 3,
//!     "comparison": "LessThanThreshold", "threshold": 1.0,
//!     "treat_missing_data": "breaching"
//! }"#).unwrap();
//! let mut alarms = AlarmEvaluator::new([a1]).unwrap();
//! for minute in 0..15 {
//!     alarms.push(&Datapoint {
//!         ts: minute * 60_000,
//!         metric: MetricName::TunnelState,
//!         vpn_id: Arc::from("vpn-1"),
//!         tunnel_ip: Some(Arc::from("192.0.2.1")),
//!         concentrator_id: None,
//!         sample_count: 60.0,
//!         sum: 0.0, // down the whole minute
//!         minimum: 0.0,
//!         maximum: 0.0,
//!     });
//! }
//! let transitions = alarms.evaluate(15 * 60_000);
//! // At 00:05 one breaching period is all the series has (periods before it are not
//! // "missing"): OK. At 00:15 three real periods breach: ALARM.
//! assert_eq!(transitions.len(), 2);
//! assert_eq!(transitions[0].new_state, AlarmState::Ok);
//! assert_eq!(transitions[1].new_state, AlarmState::Alarm);
//! assert_eq!(transitions[1].ts, 15 * 60_000);
//! assert_eq!(alarms.state("A1/vpn-1/192.0.2.1"), Some(AlarmState::Alarm));
//! ```

mod definition;
mod evaluate;
mod evaluator;
pub(crate) mod reason;

pub use definition::{
    AlarmActions, AlarmConfigError, AlarmDefinition, AlarmSeverity, Comparison,
    DIMENSION_TUNNEL_IP, DIMENSION_VPN_ID, DIMENSION_WILDCARD, Statistic, TreatMissingData,
};
pub use evaluate::{RangeDecision, RangeOutcome, decide, evaluation_range};
pub use evaluator::{
    AlarmEvaluator, InstanceStatus, Resume, SavedAlarms, SavedInstance, Transition,
};
pub use reason::iso_time;

/// An alarm's state.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    /// The name stored in `alarm_history` (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

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

mod definition;
mod evaluate;
mod evaluator;
mod reason;

pub use definition::{
    AlarmActions, AlarmConfigError, AlarmDefinition, Comparison, DIMENSION_TUNNEL_IP,
    DIMENSION_VPN_ID, DIMENSION_WILDCARD, Statistic, TreatMissingData,
};
pub use evaluate::{RangeDecision, RangeOutcome, decide, evaluation_range};
pub use evaluator::{AlarmEvaluator, InstanceStatus, Transition};

/// An alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

//! Ways out of tunnelwatch: the Prometheus/OpenMetrics exposition of tunnel state and pipeline
//! self-metrics ([`prometheus`]), the OpenMetrics export of stored datapoints with timestamps
//! for backfilling ([`openmetrics`]), the CloudWatch-SNS-shaped message of an alarm state
//! change ([`alarm_message`]), and the notifiers that deliver it ([`notify`]: file and command
//! today; webhook, Alertmanager and Slack to come).
//! Must not: own business rules; it renders what `tunnelwatch-monitor` decided.

pub mod alarm_message;
pub mod health_message;
pub mod notify;
pub mod openmetrics;
pub mod prometheus;

//! Ways out of tunnelwatch: the Prometheus/OpenMetrics exposition of tunnel state and pipeline
//! self-metrics ([`prometheus`]), the OpenMetrics export of stored datapoints with timestamps
//! for backfilling ([`openmetrics`]), the CloudWatch-SNS-shaped message of an alarm state
//! change ([`alarm_message`]), and (to come) notification sinks (webhook, Alertmanager, command,
//! file) for alarms and Health events.
//! Must not: own business rules; it renders what `tunnelwatch-monitor` decided.

pub mod alarm_message;
pub mod openmetrics;
pub mod prometheus;

//! Ways out of tunnelwatch: the Prometheus/OpenMetrics exposition of tunnel state and pipeline
//! self-metrics ([`prometheus`]), the OpenMetrics export of stored datapoints with timestamps
//! for backfilling ([`openmetrics`]), and (to come) notification sinks (webhook, command, file)
//! for alarms and Health events.
//! Must not: own business rules; it renders what `tunnelwatch-monitor` decided.

pub mod openmetrics;
pub mod prometheus;

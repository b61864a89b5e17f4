//! Ways out of tunnelwatch: the Prometheus/OpenMetrics exposition of tunnel state and pipeline
//! self-metrics, and notification sinks (webhook, command, file) for alarms and Health events.
//! Must not: own business rules; it renders what `tunnelwatch-monitor` decided.
//!
//! Status: the pipeline's self-metrics exposition ([`prometheus`]) is built; tunnel-state
//! families and notification sinks are not yet (issue "The AWS/VPN metrics engine and the
//! Prometheus exporter").

pub mod prometheus;

//! Sources of VPN log bytes: file tail, stdin, syslog (TCP/UDP/TLS), HTTP push, Kinesis Data
//! Firehose HTTP endpoint, CloudWatch Logs polling and the fleet simulator.
//!
//! Owns: reading bytes, framing them for `tunnelwatch-parsers`, per-source checkpoints that are
//! advanced only after the store acknowledged durability, and backpressure towards senders.
//! Must not: parse message text itself (that is `tunnelwatch-parsers`' job) or know how the
//! store lays out data.
//!
//! Layout: [`pipeline`] is the contract between sources and the rest (deliveries, the in-flight
//! budget, acks, checkpoints, shutdown, per-source counters); [`sources`] is the registry with one
//! folder per source kind (`file`, `stdin`, `syslog`, `http`, `firehose`, `cloudwatch_logs`,
//! `simulator`); [`files`] is the one-shot reading `tunnelwatch ingest` does; [`simulator`] is the
//! deterministic fleet model behind `tunnelwatch simulate` and `demo`.

pub mod duration;
pub mod files;
pub mod idle;
pub mod pipeline;
pub mod simulator;
pub mod sources;
pub mod tls;

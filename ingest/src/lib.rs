//! Sources of VPN log bytes: file tail, stdin, syslog (TCP/UDP/TLS), HTTP push, Kinesis Data
//! Firehose HTTP endpoint, CloudWatch Logs polling and the fleet simulator.
//!
//! Owns: reading bytes, framing them for `tunnelwatch-parsers`, per-source checkpoints that are
//! advanced only after the store acknowledged durability, and backpressure towards senders.
//! Must not: parse message text itself (that is `tunnelwatch-parsers`' job) or know how the
//! store lays out data.
//!
//! Status: the fleet simulator ([`simulator`]: deterministic fleet model, fault scenarios, the
//! files `tunnelwatch simulate` writes, and a clock-paced live iterator for `demo`) is built.
//! The other sources, checkpoints and backpressure are not built yet (issue "Streaming
//! collectors and `tunnelwatch serve`").

pub mod files;
pub mod pipeline;
pub mod simulator;
pub mod sources;

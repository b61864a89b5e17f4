//! The engine runner: what every command that moves data runs, between the sources and the
//! store. Data flows one way: `ingest` (sources, files) → `parsers` → (`queries` store ∥
//! `monitor`); this crate wires them and owns nothing they own.
//!
//! - [`runner`]: the long-running pipeline of `serve`, `demo` and `ingest cloudwatch://` — a
//!   decode thread (one decoder per stream, feeding the live monitor) and a store writer thread
//!   (WAL appends with the checkpoints of what they hold, acks once durable, flushes,
//!   compaction, retention), and snapshots for queries.
//! - [`file_ingest`]: the one-shot load of files and stdin, idempotent through the store's
//!   source ledger.
//! - [`metrics`]: recomputing the `metrics` table from stored events, and reading the stored
//!   datapoints back for export.
//! - [`alarms`]: the `alarms test` preview, alarm definitions evaluated over stored metrics.
//! - [`alarm_state`]: the alarm state file that carries alarm instances over restarts.
//! - [`diagnose`]: the records `tunnelwatch diagnose` reads, handed to the monitor's rules.
//! - [`fleet`]: the fleet view (connections, tunnels, time in state, alarms firing), trouble
//!   first, for the HTTP API and the status page.
//! - [`outbox`]: the durable outbox of notifications (written before sent, retried until
//!   acknowledged or expired).
//!
//! Sync/async boundary: everything here is synchronous (plain threads). Sources are async
//! tasks the caller spawns on its runtime ([`runner::spawn_sources`]); the decode thread waits
//! for deliveries in its own current-thread runtime; [`metrics`] pulls DataFusion batches with
//! `block_on` from plain code. Nothing here blocks inside async code.

pub mod alarm_state;
pub mod alarms;
pub mod columns;
pub mod diagnose;
pub mod error;
pub mod file_ingest;
pub mod fleet;
pub mod metrics;
pub mod metrics_checkpoint;
pub mod outbox;
pub mod runner;

pub use error::PipelineError;

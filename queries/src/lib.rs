//! The durable columnar store and its SQL face.
//!
//! Owns: the Arrow schemas of the tables in DESIGN §4 (`tunnel_activity`, `bgp_events`,
//! `traffic`, `metrics`, `alarm_history`, `health_events`, `rejects`), the write-ahead log,
//! Parquet segments partitioned by table and UTC day, retention and compaction, the source
//! ledger that makes re-ingestion idempotent, the DataFusion session, the read-only SQL guard
//! and the saved queries.
//! Must not: know where events came from (sources live in `tunnelwatch-ingest`).
//!
//! Data flow: [`rows::RowBuilder`] (events → Arrow) → [`store::Store::append`] (WAL, fsync) →
//! memory → [`store::Store::flush`] (Parquet via `object_store`) → [`engine::Engine`] (SQL).
//!
//! Sync/async boundary: the store's API is synchronous; its object-store I/O crosses into async
//! in one place, [`object_io::run`], which is safe from any thread, inside a tokio runtime or
//! not. The SQL engine's API is async (DataFusion) and is driven by the caller's runtime.

pub mod engine;
mod error;
pub mod guard;
pub mod object_io;
pub mod quarantine;
pub mod rows;
pub mod saved;
pub mod schema;
pub mod segments;
pub mod store;
pub mod wal;

pub use engine::{Engine, QueryOptions, QueryResult, QueryRuntime, Snapshot};
pub use error::StoreError;
pub use quarantine::Quarantined;
pub use rows::{HealthRow, MetricRow, MetricRows, RowBuilder};
pub use schema::TableName;
pub use store::{Recovery, Store, StoreOptions, StoredCheckpoint};
pub use wal::{SourceMark, Sync};

//! The durable columnar store and its SQL face.
//!
//! Owns: the Arrow schemas of the tables in DESIGN §4 (`tunnel_activity`, `bgp_events`,
//! `traffic`, `metrics`, `alarm_history`, `health_events`, `rejects`), the write-ahead log,
//! Parquet segments partitioned by table and UTC day, retention and compaction, the DataFusion
//! session, the read-only SQL guard and the saved queries.
//! Must not: know where events came from (sources live in `tunnelwatch-ingest`).
//!
//! Status: not built yet (issue "Durable columnar store with DataFusion SQL").

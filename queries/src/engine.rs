//! The read path: one DataFusion `SessionContext` over a data directory. Each table of
//! DESIGN §4 is a listing table over its Parquet segments; rows that are durable in the WAL but
//! not yet flushed (another process is ingesting, or the store is live in `serve`) are added as
//! an in-memory table behind a `UNION ALL` view of the same name.
//!
//! Limits: a memory limit for query execution (spilling operators spill, others fail with a
//! clear error) and a wall-clock timeout. Every statement passes the read-only guard first.
//! Time-range pruning: Parquet row-group and page statistics on `ts` (files are per UTC day, so
//! a time filter skips whole files by their statistics).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::StoreError;
use crate::guard;
use crate::schema::TableName;

#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Memory for query execution, in bytes.
    pub memory_limit: usize,
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            memory_limit: 2 << 30,
            timeout: Duration::from_secs(300),
        }
    }
}

/// The result of a query: its schema (also when there are no rows) and batches.
#[derive(Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

pub struct Engine {
    ctx: SessionContext,
    opts: QueryOptions,
}

impl Engine {
    /// Opens `root` for queries. `unflushed` are rows durable elsewhere (the WAL) but not yet
    /// in Parquet; pass [`crate::store::read_unflushed`] for a data directory on disk.
    pub async fn open(
        root: &Path,
        unflushed: &BTreeMap<TableName, Vec<RecordBatch>>,
        opts: QueryOptions,
    ) -> Result<Engine, StoreError> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(2);
        let o = config.options_mut();
        o.execution.parquet.pushdown_filters = true;
        o.execution.parquet.reorder_filters = true;
        // Keep the declared Utf8 columns (a view type would differ from the in-memory rows).
        o.execution.parquet.schema_force_view_types = false;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(opts.memory_limit, 1.0)
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let root = std::path::absolute(root).map_err(|e| StoreError::io(root, e))?;
        for table in TableName::ALL {
            let dir = root.join(table.as_str());
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
            let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(table.schema());
            let stored = Arc::new(ListingTable::try_new(config)?);
            let live: Vec<RecordBatch> = unflushed.get(&table).cloned().unwrap_or_default();
            let name = table.as_str();
            if live.iter().all(|b| b.num_rows() == 0) {
                ctx.register_table(name, stored)?;
            } else {
                let mem = MemTable::try_new(table.schema(), vec![live])?;
                ctx.register_table(format!("{name}__stored"), stored)?;
                ctx.register_table(format!("{name}__unflushed"), Arc::new(mem))?;
                ctx.sql(&format!(
                    "CREATE VIEW {name} AS SELECT * FROM {name}__stored UNION ALL SELECT * FROM {name}__unflushed"
                ))
                .await?;
            }
        }
        Ok(Engine { ctx, opts })
    }

    /// Runs one read-only statement.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, StoreError> {
        guard::check(sql)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let run = async {
            let df = self.ctx.sql_with_options(sql, options).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            Ok::<_, StoreError>(QueryResult { schema, batches })
        };
        tokio::time::timeout(self.opts.timeout, run)
            .await
            .map_err(|_| StoreError::Timeout(self.opts.timeout))?
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }
}

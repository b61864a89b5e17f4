//! The read path: one DataFusion `SessionContext` over a [`Snapshot`] of a data directory. Each
//! table of DESIGN §4 is a listing table over exactly the snapshot's Parquet segments; rows
//! that are durable in the WAL but not yet flushed (another process is ingesting, or the store
//! is live in `demo`/`serve`) are added as an in-memory table behind a `UNION ALL` view of the
//! same name. Because the file list is fixed when the snapshot is taken, a flush that runs
//! during a query cannot make rows appear twice.
//!
//! Strings are scanned as `Utf8View`: Parquet's dictionary pages decode into views that share
//! the dictionary's buffer instead of copying every value (the copy was a third of a saved
//! query's time). Results are handed out in the declared types of [`crate::schema`] (`Utf8`),
//! so callers never see the view types.
//!
//! Limits: a memory limit for query execution (spilling operators spill, others fail with a
//! clear error) and a wall-clock timeout. Every statement passes the read-only guard first.
//! Time-range pruning: Parquet row-group and page statistics on `ts` (files are per UTC day, so
//! a time filter skips whole files by their statistics).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::compute::{can_cast_types, cast};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::StoreError;
use crate::guard;
use crate::schema::TableName;
use crate::segments::Segments;

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

/// A consistent view of a data directory: the Parquet files of each table and the rows that
/// are durable in the WAL but not yet in those files. Take it while no flush can run (the
/// writer's lock, or no writer at all), then open an [`Engine`] on it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub files: BTreeMap<TableName, Vec<PathBuf>>,
    pub unflushed: BTreeMap<TableName, Vec<RecordBatch>>,
}

impl Snapshot {
    /// Lists the Parquet files of every table under `root`.
    pub fn list_files(root: &Path) -> Result<BTreeMap<TableName, Vec<PathBuf>>, StoreError> {
        let root = std::path::absolute(root).map_err(|e| StoreError::io(root, e))?;
        let segments = Segments::open(&root)?;
        let mut files = BTreeMap::new();
        for t in TableName::ALL {
            let list = segments.list(t)?;
            files.insert(
                t,
                list.iter().map(|f| root.join(f.relative_path())).collect(),
            );
        }
        Ok(files)
    }

    /// A data directory on disk, read without taking the writer's lock: its Parquet files and
    /// what its WAL holds. Another process's flush in between could show a segment twice; a
    /// one-shot `ingest` flushes once, at its end.
    pub fn read(root: &Path) -> Result<Snapshot, StoreError> {
        let unflushed = crate::store::read_unflushed(root)?;
        let files = Snapshot::list_files(root)?;
        Ok(Snapshot { files, unflushed })
    }
}

/// What engines can share: the memory pool and the caches of Parquet metadata and file
/// statistics. Files are immutable once written (every name is new), so a cached footer is
/// never stale; the listing cache is off, because each engine reads the file list of its own
/// snapshot.
#[derive(Clone)]
pub struct QueryRuntime(Arc<RuntimeEnv>);

impl QueryRuntime {
    pub fn new(memory_limit: usize) -> Result<QueryRuntime, StoreError> {
        let caches = CacheManagerConfig::default().with_list_files_cache_limit(0);
        let env = RuntimeEnvBuilder::new()
            .with_memory_limit(memory_limit, 1.0)
            .with_cache_manager(caches)
            .build_arc()?;
        Ok(QueryRuntime(env))
    }
}

impl std::fmt::Debug for QueryRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryRuntime").finish_non_exhaustive()
    }
}

pub struct Engine {
    ctx: SessionContext,
    opts: QueryOptions,
}

impl Engine {
    /// Opens a snapshot for queries: each table reads exactly the snapshot's files, plus its
    /// unflushed rows behind a `UNION ALL` view. A one-shot engine with its own runtime (memory
    /// limit `opts.memory_limit`, nothing cached from earlier queries).
    pub async fn open(snapshot: &Snapshot, opts: QueryOptions) -> Result<Engine, StoreError> {
        let runtime = QueryRuntime::new(opts.memory_limit)?;
        Engine::open_in(snapshot, opts, &runtime).await
    }

    /// Like [`Engine::open`], in a runtime shared with other engines (a server's): its memory
    /// limit is the sum over the engines open at once, and the Parquet footers, page indexes and
    /// statistics that earlier queries read are not read again.
    pub async fn open_in(
        snapshot: &Snapshot,
        opts: QueryOptions,
        runtime: &QueryRuntime,
    ) -> Result<Engine, StoreError> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(2);
        let o = config.options_mut();
        // Late materialisation measured slower on the saved queries (their filters keep many
        // rows); page-index and row-group pruning still apply.
        o.execution.parquet.pushdown_filters = false;
        o.execution.parquet.schema_force_view_types = true;
        let ctx = SessionContext::new_with_config_rt(config, runtime.0.clone());
        for table in TableName::ALL {
            let name = table.as_str();
            let schema = scan_schema(&table.schema());
            let files = snapshot.files.get(&table).map(Vec::as_slice).unwrap_or(&[]);
            let stored: Arc<dyn TableProvider> = if files.is_empty() {
                Arc::new(MemTable::try_new(schema.clone(), vec![vec![]])?)
            } else {
                let urls = files
                    .iter()
                    .map(|f| ListingTableUrl::parse(f.display().to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet");
                let config = ListingTableConfig::new_with_multi_paths(urls)
                    .with_listing_options(options)
                    .with_schema(schema.clone());
                Arc::new(ListingTable::try_new(config)?)
            };
            let live = snapshot
                .unflushed
                .get(&table)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if live.iter().all(|b| b.num_rows() == 0) {
                ctx.register_table(name, stored)?;
            } else {
                let live = live
                    .iter()
                    .map(|b| cast_batch(b, &schema))
                    .collect::<Result<Vec<_>, _>>()?;
                let mem = MemTable::try_new(schema.clone(), vec![live])?;
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
            let scanned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let schema = result_schema(&scanned);
            let batches = df
                .collect()
                .await?
                .iter()
                .map(|b| cast_batch(b, &schema))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, StoreError>(QueryResult { schema, batches })
        };
        tokio::time::timeout(self.opts.timeout, run)
            .await
            .map_err(|_| StoreError::Timeout(self.opts.timeout))?
    }

    /// Streams the batches of one of tunnelwatch's own statements (no guard, no timeout: the
    /// caller wrote the SQL), in the declared types like [`Engine::query`].
    pub async fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream, StoreError> {
        let stream = self.ctx.sql(sql).await?.execute_stream().await?;
        let schema = result_schema(&stream.schema());
        let out = schema.clone();
        let batches = stream.map(move |b| {
            b.and_then(|b| cast_batch(&b, &out).map_err(datafusion::error::DataFusionError::from))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }
}

/// A stored table as the scan sees it: its string columns as views.
fn scan_schema(declared: &SchemaRef) -> SchemaRef {
    let fields: Vec<FieldRef> = declared
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View)),
            _ => f.clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(
        fields,
        declared.metadata().clone(),
    ))
}

/// A result's schema with every view type (also inside lists and structs) replaced by its
/// plain form, where Arrow can cast it.
fn result_schema(scanned: &SchemaRef) -> SchemaRef {
    let fields: Vec<FieldRef> = scanned.fields().iter().map(plain_field).collect();
    Arc::new(Schema::new_with_metadata(
        fields,
        scanned.metadata().clone(),
    ))
}

fn plain_field(f: &FieldRef) -> FieldRef {
    let plain = plain_type(f.data_type());
    if &plain == f.data_type() || !can_cast_types(f.data_type(), &plain) {
        return f.clone();
    }
    Arc::new(Field::clone(f).with_data_type(plain))
}

fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) => DataType::List(plain_field(f)),
        DataType::LargeList(f) => DataType::LargeList(plain_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(plain_field(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(plain_field).collect()),
        other => other.clone(),
    }
}

/// `batch` with its columns cast to `schema`'s types (columns already of that type are not
/// copied).
fn cast_batch(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

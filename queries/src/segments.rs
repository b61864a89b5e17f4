//! Parquet segments: the durable, queryable form of the data, laid out as
//! `<data>/<table>/date=YYYY-MM-DD/<name>.parquet` (zstd, dictionary-encoded strings, page
//! statistics), so that DuckDB, Athena, Trino or Spark can read the same tree as plain Parquet.
//!
//! All segment I/O goes through `object_store` (a `LocalFileSystem` rooted at the data
//! directory today; the same layout works on S3-compatible storage), bridged from this
//! synchronous API by [`crate::object_io::run`] — safe from plain threads and from inside a
//! tokio runtime alike. On a local disk every file is fsynced, and its directory, before a
//! write returns.
//!
//! Naming: `w<wal-seq>-<n>.parquet` for files flushed from WAL segment `<wal-seq>`, and
//! `c<first>-<last>-<n>.parquet` for a compaction of files `w<first>`…`w<last>`. These names
//! let recovery find and remove the partial output of an interrupted flush or compaction.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch, TimestampMillisecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field};
use chrono::DateTime;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::StoreError;
use crate::object_io;
use crate::quarantine::{self, Quarantined};
use crate::schema::TableName;
use crate::wal::sync_dir;

const MS_PER_DAY: i64 = 86_400_000;

/// One Parquet file of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub table: TableName,
    /// Days since the epoch of its partition.
    pub day: i64,
    pub name: String,
    pub size: u64,
}

impl SegmentFile {
    /// The WAL segments whose rows it holds: (seq, seq) for a flush `w<seq>-…`, (first, last)
    /// for a compaction `c<first>-<last>-…`; `None` for files written otherwise (the metrics
    /// table's generations).
    pub fn wal_seqs(&self) -> Option<(u64, u64)> {
        file_seqs(&self.name)
    }

    pub fn relative_path(&self) -> String {
        format!(
            "{}/date={}/{}",
            self.table.as_str(),
            day_name(self.day),
            self.name
        )
    }
}

pub fn day_name(day: i64) -> String {
    DateTime::from_timestamp_millis(day * MS_PER_DAY)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("day{day}"))
}

fn parse_day(name: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(name, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis() / MS_PER_DAY)
}

/// The Parquet files of a data directory.
pub struct Segments {
    root: PathBuf,
    store: Arc<LocalFileSystem>,
    props: WriterProperties,
}

impl Segments {
    pub fn open(root: &Path) -> Result<Segments, StoreError> {
        for t in TableName::ALL {
            let dir = root.join(t.as_str());
            if !dir.is_dir() {
                std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
            }
        }
        let store = LocalFileSystem::new_with_prefix(root)?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(1 << 20));
        for column in delta_columns() {
            props = props
                .set_column_dictionary_enabled(ColumnPath::from(column.as_str()), false)
                .set_column_encoding(
                    ColumnPath::from(column.as_str()),
                    Encoding::DELTA_BINARY_PACKED,
                );
        }
        for column in float_columns() {
            props = props.set_column_dictionary_enabled(ColumnPath::from(column.as_str()), false);
        }
        let props = props.build();
        Ok(Segments {
            root: root.to_owned(),
            store: Arc::new(store),
            props,
        })
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Writes `batches` of one table as Parquet, one file per UTC day of the time column,
    /// named `<stem>-<n>.parquet`. Returns the files written.
    pub fn write(
        &self,
        table: TableName,
        batches: &[RecordBatch],
        stem: &str,
    ) -> Result<Vec<SegmentFile>, StoreError> {
        // Each batch is cut by day on its own (a batch of one day, the usual case, is not
        // copied), and a day's parts go to its file one after another: the rows are never
        // concatenated into one more copy.
        let mut by_day: BTreeMap<i64, Vec<RecordBatch>> = BTreeMap::new();
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            for (day, part) in split_by_day(table, batch)? {
                by_day.entry(day).or_default().push(part);
            }
        }
        let mut out = Vec::new();
        for (n, (day, parts)) in by_day.into_iter().enumerate() {
            let name = format!("{stem}-{n}.parquet");
            let file = SegmentFile {
                table,
                day,
                name,
                size: 0,
            };
            let size = self.put_parquet(&file.relative_path(), &table.schema(), &parts)?;
            out.push(SegmentFile { size, ..file });
        }
        Ok(out)
    }

    fn put_parquet(
        &self,
        relative: &str,
        schema: &arrow::datatypes::SchemaRef,
        parts: &[RecordBatch],
    ) -> Result<u64, StoreError> {
        let memory: usize = parts.iter().map(RecordBatch::get_array_memory_size).sum();
        let mut buf = Vec::with_capacity(memory / 8 + 4096);
        {
            let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), Some(self.props.clone()))?;
            for part in parts {
                w.write(part)?;
            }
            w.close()?;
        }
        let size = buf.len() as u64;
        let store = self.store.clone();
        let location = ObjectPath::from(relative);
        object_io::run(async move { store.put(&location, buf.into()).await })??;
        // LocalFileSystem renames a staged file into place; make both durable.
        let path = self.root.join(relative);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(&path, e))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(size)
    }

    /// Every segment file of `table`.
    pub fn list(&self, table: TableName) -> Result<Vec<SegmentFile>, StoreError> {
        let prefix = ObjectPath::from(table.as_str());
        let store = self.store.clone();
        let metas: Vec<_> =
            object_io::run(async move { store.list(Some(&prefix)).try_collect().await })??;
        let mut files: Vec<SegmentFile> = metas
            .into_iter()
            .filter_map(|m| {
                let mut parts = m.location.parts();
                let _table = parts.next()?;
                let part = parts.next()?;
                let name = parts.next()?.as_ref().to_owned();
                let day = parse_day(part.as_ref().strip_prefix("date=")?)?;
                name.ends_with(".parquet").then_some(SegmentFile {
                    table,
                    day,
                    name,
                    size: m.size,
                })
            })
            .collect();
        files.sort_by(|a, b| (a.day, &a.name).cmp(&(b.day, &b.name)));
        Ok(files)
    }

    pub fn delete(&self, file: &SegmentFile) -> Result<(), StoreError> {
        let store = self.store.clone();
        let location = ObjectPath::from(file.relative_path());
        object_io::run(async move { store.delete(&location).await })??;
        Ok(())
    }

    /// Removes the output of every flush of a WAL sequence after `seq` (flushes the ledger does
    /// not cover, before recovery replays their WAL segments). Compacted files are made from
    /// covered flushes only and are kept.
    pub fn delete_flushed_after(&self, seq: u64) -> Result<usize, StoreError> {
        let mut n = 0;
        for t in TableName::ALL {
            for f in self.list(t)? {
                if f.name.starts_with('w') && f.wal_seqs().is_some_and(|(first, _)| first > seq) {
                    self.delete(&f)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Whether a segment's footer reads as Parquet metadata whose column chunks lie inside the
    /// file (what a torn copy, a truncated file or a damaged footer fails); `Err` says why not.
    /// Reads two ranges at the end of the file, not its pages.
    pub fn check_footer(&self, file: &SegmentFile) -> Result<(), String> {
        const TAIL: u64 = 8;
        let size = file.size;
        if size < 4 + TAIL {
            return Err(format!("{size} bytes, too short for Parquet"));
        }
        let range = |start: u64, end: u64| {
            let store = self.store.clone();
            let location = ObjectPath::from(file.relative_path());
            object_io::run(async move { store.get_range(&location, start..end).await })
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        };
        let tail = range(size - TAIL, size)?;
        let tail: [u8; TAIL as usize] = tail[..].try_into().map_err(|_| "short read")?;
        let footer = FooterTail::try_new(&tail).map_err(|e| e.to_string())?;
        let meta_len = footer.metadata_length() as u64;
        let data_end = size
            .checked_sub(TAIL + meta_len)
            .ok_or_else(|| format!("footer of {meta_len} bytes in a file of {size}"))?;
        let meta = ParquetMetaDataReader::decode_metadata(&range(data_end, size - TAIL)?)
            .map_err(|e| e.to_string())?;
        for rg in meta.row_groups() {
            for col in rg.columns() {
                let (start, len) = col.byte_range();
                if start.saturating_add(len) > data_end {
                    return Err(format!(
                        "column chunk {} at {start}+{len} lies past the data ({data_end} bytes)",
                        col.column_path()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Moves every segment whose footer does not read ([`Segments::check_footer`]) into the
    /// quarantine, so that queries see the intact ones.
    pub fn quarantine_unreadable(&self) -> Result<Vec<Quarantined>, StoreError> {
        let mut out = Vec::new();
        for t in TableName::ALL {
            for f in self.list(t)? {
                if let Err(reason) = self.check_footer(&f) {
                    let path = self.root.join(f.relative_path());
                    out.push(quarantine::move_in(
                        &self.root,
                        &path,
                        &format!("unreadable Parquet segment: {reason}"),
                    )?);
                }
            }
        }
        Ok(out)
    }

    /// Reads a segment file back.
    pub fn read(&self, file: &SegmentFile) -> Result<Vec<RecordBatch>, StoreError> {
        let store = self.store.clone();
        let location = ObjectPath::from(file.relative_path());
        let bytes = object_io::run(async move { store.get(&location).await?.bytes().await })??;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?
            .build()?;
        Ok(reader.collect::<Result<Vec<_>, _>>()?)
    }

    /// Merges the files of each day partition that has more than `min_files` of them into one.
    /// Crash-safe: the merged file is complete before any input is removed, and recovery
    /// ([`Segments::finish_interrupted_compactions`]) removes inputs a merged file covers.
    /// Only files of the WAL's flushes and earlier compactions take part; files written
    /// otherwise (the metrics table's generations) are left to their writer.
    pub fn compact(&self, table: TableName, min_files: usize) -> Result<usize, StoreError> {
        let mut by_day: BTreeMap<i64, Vec<SegmentFile>> = BTreeMap::new();
        for f in self.list(table)? {
            if file_seqs(&f.name).is_some() {
                by_day.entry(f.day).or_default().push(f);
            }
        }
        let mut merged = 0;
        for (_, files) in by_day {
            if files.len() < min_files.max(2) {
                continue;
            }
            let (first, last) = seq_range(&files);
            let mut batches = Vec::new();
            for f in &files {
                batches.extend(self.read(f)?);
            }
            let stem = format!("c{first:020}-{last:020}");
            let outputs = self.write(table, &batches, &stem)?;
            for f in &files {
                if !outputs.iter().any(|o| o.name == f.name) {
                    self.delete(f)?;
                }
            }
            merged += files.len();
        }
        Ok(merged)
    }

    /// After a crash during compaction: drop inputs that a complete merged file covers.
    pub fn finish_interrupted_compactions(&self) -> Result<(), StoreError> {
        for t in TableName::ALL {
            let files = self.list(t)?;
            for merged in files.iter().filter(|f| f.name.starts_with('c')) {
                let Some((first, last)) = compaction_range(&merged.name) else {
                    continue;
                };
                for f in &files {
                    if f.day == merged.day
                        && f.name != merged.name
                        && file_seqs(&f.name).is_some_and(|(a, b)| a >= first && b <= last)
                        && !(f.name.starts_with('c')
                            && compaction_range(&f.name) == Some((first, last)))
                    {
                        self.delete(f)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Drops whole day partitions older than `keep_from_day`. Returns the number of files.
    pub fn drop_days_before(&self, keep_from_day: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for t in TableName::ALL {
            for f in self.list(t)? {
                if f.day < keep_from_day {
                    self.delete(&f)?;
                    n += 1;
                }
            }
        }
        // Remove the emptied partition directories (best effort).
        for t in TableName::ALL {
            if let Ok(dirs) = std::fs::read_dir(self.root.join(t.as_str())) {
                for d in dirs.flatten() {
                    let _ = std::fs::remove_dir(d.path());
                }
            }
        }
        Ok(n)
    }

    /// Bytes on disk of all segment files.
    pub fn total_size(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for t in TableName::ALL {
            n += self.list(t)?.iter().map(|f| f.size).sum::<u64>();
        }
        Ok(n)
    }
}

/// The integer columns that are (nearly) unique per row and (nearly) sorted: every time column
/// and the source positions. A dictionary of them never pays (the writer tried one for each
/// page and fell back to plain values after spending its time interning); delta encoding
/// stores them in a few bits per row, which made the stored tables 40 % smaller and the saved
/// queries that read `ts` faster.
fn delta_columns() -> BTreeSet<String> {
    column_names(|f| {
        matches!(f.data_type(), DataType::Timestamp(..))
            || matches!(f.name().as_str(), "source_line" | "source_offset")
    })
}

/// The floating-point columns (the datapoints' statistics): measured values, mostly distinct,
/// stored plain under zstd. With a dictionary tried for each page, `metrics rebuild` of
/// 12.3 M datapoints took 12–13 s and the table was 82 MB; without, 10.5–10.9 s and 60 MB
/// (byte-stream-split encoding measured no better than plain).
fn float_columns() -> BTreeSet<String> {
    column_names(|f| f.data_type() == &DataType::Float64)
}

/// The names of the columns, in any table, that `pick` picks. Writer properties are set per
/// column name, so a name stands for its column in every table (the test below checks that
/// each such name has one type everywhere).
fn column_names(pick: impl Fn(&Field) -> bool) -> BTreeSet<String> {
    TableName::ALL
        .iter()
        .flat_map(|t| t.schema().fields().to_vec())
        .filter(|f| pick(f))
        .map(|f| f.name().clone())
        .collect()
}

/// `w<seq>-…` → (seq, seq); `c<first>-<last>-…` → (first, last).
fn file_seqs(name: &str) -> Option<(u64, u64)> {
    if let Some(rest) = name.strip_prefix('w') {
        let seq = rest.get(..20)?.parse().ok()?;
        return Some((seq, seq));
    }
    compaction_range(name)
}

fn compaction_range(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix('c')?;
    let first = rest.get(..20)?.parse().ok()?;
    let last = rest.get(21..41)?.parse().ok()?;
    Some((first, last))
}

fn seq_range(files: &[SegmentFile]) -> (u64, u64) {
    files
        .iter()
        .filter_map(|f| file_seqs(&f.name))
        .fold((u64::MAX, 0), |(a, b), (x, y)| (a.min(x), b.max(y)))
}

/// Splits a batch by the UTC day of its time column (one part when all rows share a day).
fn split_by_day(
    table: TableName,
    batch: &RecordBatch,
) -> Result<Vec<(i64, RecordBatch)>, StoreError> {
    let col = batch
        .column_by_name(table.time_column())
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
        .expect("time column is a millisecond timestamp");
    let days: Vec<i64> = (0..col.len())
        .map(|i| col.value(i).div_euclid(MS_PER_DAY))
        .collect();
    let Some(&first) = days.first() else {
        return Ok(Vec::new());
    };
    if days.iter().all(|d| *d == first) {
        return Ok(vec![(first, batch.clone())]);
    }
    let mut distinct: Vec<i64> = days.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let mut parts = Vec::with_capacity(distinct.len());
    for day in distinct {
        let mask = BooleanArray::from(days.iter().map(|d| *d == day).collect::<Vec<_>>());
        parts.push((day, filter_record_batch(batch, &mask)?));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delta encoding applies to integers only: a delta column is an integer or a time in every
    /// table that has a column of that name; a float column is a float wherever it appears.
    #[test]
    fn delta_columns_are_integers_wherever_they_appear() {
        let floats = float_columns();
        assert!(floats.contains("sum") && floats.contains("maximum"));
        let delta = delta_columns();
        assert!(delta.contains("ts") && delta.contains("source_offset"));
        for t in TableName::ALL {
            for f in t.schema().fields() {
                let ok = if floats.contains(f.name()) {
                    f.data_type() == &DataType::Float64
                } else if delta.contains(f.name()) {
                    matches!(f.data_type(), DataType::Int64 | DataType::Timestamp(..))
                } else {
                    true
                };
                assert!(ok, "{}.{} is {}", t.as_str(), f.name(), f.data_type());
            }
        }
    }
}

//! Errors of the store and the SQL engine. Each says what failed and where (a path, a table, a
//! statement), so the binary can print it as is.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("refused: {0}")]
    Refused(String),
    #[error("query timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("unknown saved query {0:?} (see --list-saved)")]
    UnknownSavedQuery(String),
    #[error("the store's I/O runtime: {0}")]
    IoRuntime(String),
    #[error("the data directory {0} is locked by another tunnelwatch process")]
    Locked(PathBuf),
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

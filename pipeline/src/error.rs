//! Errors of the engine runner: each says which stage failed and wraps the cause.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] tunnelwatch_queries::StoreError),
    #[error("starting the monitor: {0}")]
    Monitor(#[from] tunnelwatch_monitor::MonitorError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    #[error("{0}")]
    Input(#[from] tunnelwatch_ingest::files::InputError),
    #[error("{path}: {reason}")]
    StateFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{0}")]
    AlarmConfig(#[from] tunnelwatch_monitor::alarm::AlarmConfigError),
}

impl PipelineError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> PipelineError {
        PipelineError::Io {
            context: context.into(),
            source,
        }
    }
}

//! The source registry: one folder per source kind, each with a config struct (deserialised from
//! the `[sources.NAME]` tables of `tunnelwatch.toml`, `type = "…"` picks the kind), a `build`
//! step that validates it (addresses, certificates, globs) without touching the outside world,
//! and a [`Source`] that runs until the shutdown signal.
//!
//! Adding a source: a folder here with `Config: BuildSource` and its `Source`, plus one variant
//! in [`SourceConfig`] (the registry line).
//!
//! Contract for every source (see [`crate::pipeline`]): hand bytes on through
//! `SourceContext::out`, one [`crate::pipeline::Stream`] per independent byte stream; advance
//! checkpoints only by attaching them to deliveries; on shutdown stop taking new input, hand
//! on what was already received, and return.

use std::future::Future;
use std::pin::Pin;

use serde::Deserialize;
use thiserror::Error;
use tunnelwatch_parsers::InputFormat;

use crate::pipeline::SourceContext;

pub mod cloudwatch_logs;
pub mod file;
pub mod firehose;
pub mod http;
pub mod prometheus;
pub mod simulator;
pub mod stdin;
pub mod syslog;
pub mod vici;

/// A source's run future.
pub type Run = Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>>;

/// One running source.
pub trait Source: Send {
    /// The kind, as written after `type =` in the config.
    fn kind(&self) -> &'static str;
    /// Whether it listens on a socket (and publishes the bound address in
    /// `SourceStats::listening` once it does).
    fn listens(&self) -> bool {
        false
    }
    /// Whether it starts by replaying records it already has (a history, a backlog): its
    /// deliveries then say how far the replay has come
    /// ([`crate::pipeline::Delivery::replayed_until`]) and the last one that it is over
    /// ([`crate::pipeline::Delivery::caught_up`]). Until then the live monitor's watermark
    /// stays at the replay's progress instead of following the wall clock.
    fn replays_at_start(&self) -> bool {
        false
    }
    /// Runs until `cx.shutdown` fires (or the input ends, for finite sources).
    fn run(self: Box<Self>, cx: SourceContext) -> Run;
}

/// The build step of a source config.
pub trait BuildSource {
    /// Validates the config and prepares the source; `name` is the config table's name.
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError>;
}

/// A config that cannot be built: the message names the field and what is wrong.
#[derive(Debug, Error)]
#[error("source `{source_name}`: {message}")]
pub struct BuildError {
    pub source_name: String,
    pub message: String,
}

impl BuildError {
    pub fn new(source_name: &str, message: impl Into<String>) -> BuildError {
        BuildError {
            source_name: source_name.to_owned(),
            message: message.into(),
        }
    }
}

/// A source that stopped with an error.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
    #[error("the pipeline stopped")]
    PipelineClosed,
}

impl From<crate::pipeline::SendError> for SourceError {
    fn from(_: crate::pipeline::SendError) -> SourceError {
        SourceError::PipelineClosed
    }
}

/// The registry: every source kind a config may name.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    Stdin(stdin::Config),
    Http(http::Config),
    Firehose(firehose::Config),
    CloudwatchLogs(cloudwatch_logs::Config),
    File(file::Config),
    Syslog(syslog::Config),
    Simulator(simulator::Config),
    Vici(vici::Config),
    Prometheus(prometheus::Config),
}

impl SourceConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Stdin(_) => "stdin",
            SourceConfig::Http(_) => "http",
            SourceConfig::Firehose(_) => "firehose",
            SourceConfig::CloudwatchLogs(_) => "cloudwatch_logs",
            SourceConfig::File(_) => "file",
            SourceConfig::Syslog(_) => "syslog",
            SourceConfig::Simulator(_) => "simulator",
            SourceConfig::Vici(_) => "vici",
            SourceConfig::Prometheus(_) => "prometheus",
        }
    }

    pub fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        match self {
            SourceConfig::Stdin(c) => c.build(name),
            SourceConfig::Http(c) => c.build(name),
            SourceConfig::Firehose(c) => c.build(name),
            SourceConfig::CloudwatchLogs(c) => c.build(name),
            SourceConfig::File(c) => c.build(name),
            SourceConfig::Syslog(c) => c.build(name),
            SourceConfig::Simulator(c) => c.build(name),
            SourceConfig::Vici(c) => c.build(name),
            SourceConfig::Prometheus(c) => c.build(name),
        }
    }
}

/// Parses a duration such as `500ms`, `10s`, `5m`, `6h`, `1d` or `1h30m` (zero allowed).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse_ms(s).map(|ms| std::time::Duration::from_millis(ms as u64))
}

/// Resolves a `format = "…"` setting.
pub fn parse_format(source: &str, format: Option<&str>) -> Result<InputFormat, BuildError> {
    match format {
        None => Ok(InputFormat::Auto),
        Some(f) => InputFormat::parse(f)
            .ok_or_else(|| BuildError::new(source, format!("format: unknown format `{f}`"))),
    }
}

/// Serde helper: a duration written as a string (`"10s"`).
pub mod duration_str {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

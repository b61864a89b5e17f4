//! Notifiers: where alarm notifications go (`[notifiers.NAME] type = "…"` in tunnelwatch.toml).
//! One trait, [`Notifier`], and one config enum, [`NotifierConfig`], with a `build` step; adding
//! a kind touches its own module and one line of [`NotifierConfig`].
//!
//! A notifier delivers one message (the JSON bytes of [`crate::alarm_message`]) with its
//! idempotency key, synchronously, and says whether a failure is worth retrying. It keeps no
//! queue: the durable outbox that calls it (retries, backoff, expiry) lives in the pipeline.
//!
//! Kinds today: `file` (append NDJSON), `command` (run a program with the JSON on stdin) and
//! `webhook` (HTTP(S) POST, optional HMAC signature) and `alertmanager` (Prometheus
//! Alertmanager's `/api/v2/alerts`). Not built yet: `slack`.

pub mod alertmanager;
pub mod command;
pub mod file;
pub mod webhook;

use serde::Deserialize;
use thiserror::Error;

/// A delivery that did not happen.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// Worth retrying later (I/O error, the program failed, the receiver is down).
    #[error("{0}")]
    Transient(String),
    /// Retrying the same message will not help.
    #[error("{0}")]
    Permanent(String),
}

/// A notifier's config could not be built into a notifier.
#[derive(Debug, Error)]
#[error("notifiers.{name}: {message}")]
pub struct BuildError {
    pub name: String,
    pub message: String,
}

/// Where notifications go.
pub trait Notifier: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Delivers `body` (one JSON document). `key` is the message's idempotency key: a notifier
    /// that can tell it already delivered that key must not deliver it again.
    fn deliver(&self, body: &[u8], key: &str) -> Result<(), NotifyError>;
}

/// `[notifiers.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifierConfig {
    File(file::Config),
    Command(command::Config),
    Webhook(webhook::Config),
    Alertmanager(alertmanager::Config),
}

impl NotifierConfig {
    pub fn build(&self, name: &str) -> Result<Box<dyn Notifier>, BuildError> {
        match self {
            NotifierConfig::File(c) => c.build(name),
            NotifierConfig::Command(c) => c.build(name),
            NotifierConfig::Webhook(c) => c.build(name),
            NotifierConfig::Alertmanager(c) => c.build(name),
        }
    }
}

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
//! Alertmanager's `/api/v2/alerts`) and `slack` (an incoming webhook's text).

pub mod alertmanager;
pub mod command;
pub mod file;
pub mod slack;
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
    Slack(slack::Config),
}

impl NotifierConfig {
    pub fn build(&self, name: &str) -> Result<Box<dyn Notifier>, BuildError> {
        match self {
            NotifierConfig::File(c) => c.build(name),
            NotifierConfig::Command(c) => c.build(name),
            NotifierConfig::Webhook(c) => c.build(name),
            NotifierConfig::Alertmanager(c) => c.build(name),
            NotifierConfig::Slack(c) => c.build(name),
        }
    }
}

/// A loopback HTTP server for the notifier tests.
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// (request head, body) of each request served.
    pub(crate) type Seen = Vec<(String, Vec<u8>)>;

    pub(crate) fn server(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for status in statuses {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .unwrap();
                seen.push((head, body));
            }
            seen
        });
        (url, handle)
    }
}

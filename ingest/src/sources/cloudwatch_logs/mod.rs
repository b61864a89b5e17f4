//! `type = "cloudwatch_logs"`: pulls VPN logs from one CloudWatch Logs log group with
//! `FilterLogEvents`, polling at `poll_interval` (long-running form) or over a fixed
//! `start`..`end` range, returning on its own (finite form, the one-shot
//! `tunnelwatch ingest cloudwatch://GROUP --start … --end …`).
//!
//! What it owns: the AWS client (standard credential and region chain of `aws-config`, or the
//! configured `region` / `profile` / `endpoint_url`), pagination, backoff on throttling and
//! outages, de-duplication of re-read events, framing and checkpoints. It never parses messages:
//! each event's message plus `\n` goes to the decoder of its log stream.
//!
//! Each poll reads `[max(newest − lookback, start), end]` (all pages), drops events already handed on (by
//! `eventId`, see [`cursor`]), sorts the rest by (timestamp, stream, eventId) and hands them on as
//! one delivery per log stream (split at 256 KiB): stream id
//! `<source name>:cloudwatch:<group>/<stream>`, `source` column `cloudwatch://<group>/<stream>`,
//! `DecoderOptions::stream_name` = the log stream name (tunnel activity records take their tunnel
//! from it). The last chunk of each stream in a poll ends that stream (its decoder is flushed):
//! every CloudWatch event is a whole message, so nothing is held between polls.
//!
//! Invariants:
//! - Each event of the group is stored once, across pulls: before handing events on, a poll
//!   drops those the group's [`coverage`] says are stored (by this source before, by a one-shot
//!   `ingest cloudwatch://` over an overlapping range, by a `serve` source that ran before), then
//!   records its own claim. The coverage travels as checkpoint
//!   `cloudwatch-coverage:<endpoint_url|aws>:<region>:<group>` on every delivery (as far as that
//!   delivery goes); one source per log group and endpoint keeps it (two would each overwrite the
//!   other's, which can only make later pulls store some events again, never skip one).
//! - The cursor checkpoint, on the poll's LAST delivery: `offset` = newest event time (ms),
//!   `state` = the cursor (newest time + ids inside the lookback window). Key:
//!   `cloudwatch:<endpoint_url|aws>:<region>:<group>[:<stream_prefix>]`, and for the finite form
//!   `…@<start_ms>..<end_ms>` (rerunning the same range after a crash continues it).
//!   Checkpoints rely on the pipeline making a source's deliveries durable in the order they
//!   were sent.
//! - On shutdown it stops between pages and polls; what a poll already fetched is either handed
//!   on in full (with its checkpoint) or, if shutdown came mid-fetch, dropped unsent (re-read on
//!   restart): nothing is lost, nothing repeated.
//!
//! Errors: throttling, 5xx, timeouts and connection errors are retried with exponential backoff
//! and jitter (0.5 s doubling to 30 s), each counted in `stats.errors`. A missing log group,
//! denied access or missing credentials end the finite form with an error naming the group; the
//! long-running form reports them on stderr, counts them and retries (no less than
//! `poll_interval` apart). The finite form also gives up after 6 consecutive transient failures.
//! The AWS SDK's own retries are off, so every failure is seen and counted here.
//!
//! Limits: an event arriving more than `lookback` behind the newest event already handed on is
//! missed; one poll's events are held in memory until delivered (a first poll over a long
//! `start` range reads it all at once); moto ignores `logStreamNamePrefix`, so the prefix is also
//! applied to the returned events.

pub mod coverage;
pub mod cursor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use tunnelwatch_parsers::{DecoderOptions, InputFormat};

use crate::pipeline::{Delivery, SourceContext, Stream, now_ms};
use crate::sources::parse_format;
use crate::sources::{BuildError, BuildSource, Run, Source, SourceError, duration_str};
use coverage::{Coverage, Poll, coverage_key};
use cursor::{Cursor, LogEvent};

/// Largest delivery handed on for one log stream; a poll's events of one stream are split there.
const CHUNK_BYTES: usize = 256 << 10;
/// First backoff delay after a transient failure; doubles up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Consecutive transient failures after which the finite form gives up.
const FINITE_ATTEMPTS: u32 = 6;
/// Most events `FilterLogEvents` returns per page.
const MAX_PAGE_SIZE: u32 = 10_000;

/// `[sources.NAME] type = "cloudwatch_logs"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The log group the VPN connections log to (e.g. `/aws/vpn/site-to-site`). Required.
    pub log_group: String,
    /// Only log streams whose name starts with this (`FilterLogEvents` `logStreamNamePrefix`),
    /// e.g. `vpn-0a1b2c3d` for the tunnels of one VPN connection. Default: all streams.
    #[serde(default)]
    pub stream_prefix: Option<String>,
    /// Where to begin when no checkpoint is stored: RFC 3339 (`"2025-11-08T05:00:00Z"`) or epoch
    /// milliseconds. Default: now − `initial_lookback`. Required when `end` is set.
    #[serde(default, deserialize_with = "time_point::deserialize")]
    pub start: Option<i64>,
    /// How far back to begin when there is neither a checkpoint nor `start`. Default `"1h"`.
    #[serde(
        default = "default_initial_lookback",
        deserialize_with = "duration_str::deserialize"
    )]
    pub initial_lookback: Duration,
    /// Where to stop (RFC 3339 or epoch ms, inclusive). When set the source is finite: it reads
    /// `start`..`end` and returns once a poll has started after `end`. Default: runs until
    /// shutdown.
    #[serde(default, deserialize_with = "time_point::deserialize")]
    pub end: Option<i64>,
    /// Endpoint instead of the regional AWS one (`http://127.0.0.1:5000` for moto, a VPC
    /// endpoint). Default: AWS's endpoint for the region.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// AWS region (`eu-west-1`). Default: the standard chain (`AWS_REGION`, the profile, EC2
    /// instance metadata).
    #[serde(default)]
    pub region: Option<String>,
    /// Named profile of `~/.aws/config` / `~/.aws/credentials`. Default: the standard
    /// credential chain (`AWS_ACCESS_KEY_ID`…, `AWS_PROFILE`, web identity, ECS/EC2 roles).
    #[serde(default)]
    pub profile: Option<String>,
    /// Pause between polls. Default `"10s"`.
    #[serde(
        default = "default_poll_interval",
        deserialize_with = "duration_str::deserialize"
    )]
    pub poll_interval: Duration,
    /// How far behind the newest event handed on each poll re-reads, to catch events that reach
    /// CloudWatch late; already-seen events are dropped by id. Default `"5m"`.
    #[serde(
        default = "default_lookback",
        deserialize_with = "duration_str::deserialize"
    )]
    pub lookback: Duration,
    /// How long an event may take, after reaching CloudWatch (its `ingestionTime`), to show in
    /// `FilterLogEvents`, plus how far this host's clock may be off AWS's. A read claims every
    /// event ingested this long before it started; events ingested later are remembered by id.
    /// Default `"1m"`; at most half the `lookback`.
    #[serde(
        default = "default_visibility_margin",
        deserialize_with = "duration_str::deserialize"
    )]
    pub visibility_margin: Duration,
    /// Events per `FilterLogEvents` page, 1–10000. Default 10000.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Input format of the messages (`auto` by default); see `tunnelwatch parse --help`.
    #[serde(default)]
    pub format: Option<String>,
}

fn default_initial_lookback() -> Duration {
    Duration::from_secs(3600)
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_lookback() -> Duration {
    Duration::from_secs(300)
}
fn default_visibility_margin() -> Duration {
    Duration::from_secs(60)
}
fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        let err = |m: String| BuildError::new(name, m);
        if !valid_log_group(&self.log_group) {
            return Err(err(format!(
                "log_group: `{}` is not a log group name (1–512 of A-Z a-z 0-9 . - _ / #)",
                self.log_group
            )));
        }
        if let Some(p) = &self.stream_prefix
            && (p.is_empty() || p.len() > 512 || p.contains([':', '*']))
        {
            return Err(err(format!(
                "stream_prefix: `{p}` is not a log stream name prefix (1–512 characters, no `:` or `*`)"
            )));
        }
        let format = parse_format(name, self.format.as_deref())?;
        let range = match (self.start, self.end) {
            (Some(s), Some(e)) if e < s => {
                return Err(err(format!("end ({e} ms) is before start ({s} ms)")));
            }
            (None, Some(_)) => {
                return Err(err(
                    "end is set (a finite range) but start is not: give both".into(),
                ));
            }
            (Some(s), Some(e)) => Some((s, e)),
            _ => None,
        };
        if let Some(u) = &self.endpoint_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(err(format!(
                "endpoint_url: `{u}` must start with http:// or https://"
            )));
        }
        if self.poll_interval.is_zero() {
            return Err(err("poll_interval must be more than 0".into()));
        }
        // Below twice the margin a re-reading source could claim nothing lasting about the
        // range it gives up (see `coverage`).
        if self.lookback < self.visibility_margin * 2 {
            return Err(err(format!(
                "lookback ({:?}) must be at least twice visibility_margin ({:?})",
                self.lookback, self.visibility_margin
            )));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(err(format!(
                "page_size: {} is outside 1–{MAX_PAGE_SIZE}",
                self.page_size
            )));
        }
        Ok(Box::new(CloudWatchLogsSource {
            config: self.clone(),
            format,
            range,
        }))
    }
}

/// CloudWatch's log group name rule.
fn valid_log_group(g: &str) -> bool {
    (1..=512).contains(&g.len())
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#'))
}

/// Parses a point in time: RFC 3339 or epoch milliseconds.
pub fn parse_time_point(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| format!("`{s}` is too large for epoch milliseconds"));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!("`{s}` is neither RFC 3339 (2025-11-08T05:00:00Z) nor epoch milliseconds: {e}")
        })
}

/// Serde helper: an optional point in time written as RFC 3339 text or epoch ms (number or text).
mod time_point {
    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        struct TimePoint;
        impl Visitor<'_> for TimePoint {
            type Value = i64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 time or epoch milliseconds")
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
                i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<i64, E> {
                super::parse_time_point(v).map_err(E::custom)
            }
        }
        d.deserialize_any(TimePoint).map(Some)
    }
}

struct CloudWatchLogsSource {
    config: Config,
    format: InputFormat,
    /// `start`..`end` of the finite form.
    range: Option<(i64, i64)>,
}

impl Source for CloudWatchLogsSource {
    fn kind(&self) -> &'static str {
        "cloudwatch_logs"
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move { self.run_polls(cx).await })
    }
}

/// How a failed call is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// Throttling, 5xx, timeouts, connection errors: back off and retry.
    Transient,
    /// Missing group, access denied, no credentials, bad parameters: retrying soon will not help.
    Permanent,
}

#[derive(Debug)]
struct CallFailure {
    kind: FailureKind,
    message: String,
}

impl CloudWatchLogsSource {
    async fn run_polls(self, cx: SourceContext) -> Result<(), SourceError> {
        let group = self.config.log_group.clone();
        let fail =
            |m: String| SourceError::Other(format!("cloudwatch_logs log group `{group}`: {m}"));
        let sdk = tokio::select! {
            c = self.sdk_config() => c,
            _ = cx.shutdown.wait() => return Ok(()),
        };
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            return Err(fail(
                "no AWS region: set `region` in the source or AWS_REGION".into(),
            ));
        };
        let client = Client::new(&sdk);
        let key = self.checkpoint_key(&region);
        let mut cursor = match cx.checkpoints.get(&key) {
            None => Cursor::default(),
            Some(c) => Cursor::from_checkpoint(c).unwrap_or_else(|e| {
                cx.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %cx.name, error = %e, "bad checkpoint; resuming from its offset");
                Cursor::from_newest(c.offset as i64)
            }),
        };
        let endpoint = self
            .config
            .endpoint_url
            .as_deref()
            .map(|u| u.trim_end_matches('/'));
        let coverage_key = coverage_key(endpoint, &region, &group);
        let mut coverage = match cx.checkpoints.get(&coverage_key) {
            None => Coverage::default(),
            Some(c) => Coverage::from_checkpoint(c).unwrap_or_else(|e| {
                cx.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    source = %cx.name,
                    error = %e,
                    "bad coverage record; events other pulls stored may be stored again"
                );
                Coverage::default()
            }),
        };
        let lookback_ms = self.config.lookback.as_millis() as i64;
        let initial_start = match (self.range, self.config.start) {
            (Some((s, _)), _) | (None, Some(s)) => s,
            (None, None) => now_ms() - self.config.initial_lookback.as_millis() as i64,
        };
        let mut backoff = Backoff::new(now_ms() as u64 ^ std::process::id() as u64);
        loop {
            let poll_started = now_ms();
            let start_ms = cursor.query_start(lookback_ms, initial_start, self.config.start);
            let failure = match self.fetch(&client, start_ms, &cx).await {
                Ok(None) => return Ok(()),
                Ok(Some(events)) => {
                    backoff.reset();
                    let last = self.range.is_some_and(|(_, end)| poll_started > end);
                    let poll = Poll {
                        owner: &key,
                        prefix: self.config.stream_prefix.as_deref(),
                        start: start_ms,
                        end: self.range.map_or(i64::MAX, |(_, e)| e),
                        read_at: poll_started,
                        lookback: lookback_ms,
                        margin: self.config.visibility_margin.as_millis() as i64,
                    };
                    let fresh = cursor.admit(events, lookback_ms);
                    let keys = Keys {
                        cursor: &key,
                        coverage: &coverage_key,
                    };
                    self.deliver(&cx, keys, &poll, fresh, last, (&mut cursor, &mut coverage))
                        .await?;
                    if last {
                        return Ok(());
                    }
                    None
                }
                Err(f) => Some(f),
            };
            let pause = match failure {
                None => self.config.poll_interval,
                Some(f) => {
                    cx.stats.errors.fetch_add(1, Ordering::Relaxed);
                    let finite = self.range.is_some();
                    if finite
                        && (f.kind == FailureKind::Permanent
                            || backoff.failures() + 1 >= FINITE_ATTEMPTS)
                    {
                        return Err(fail(f.message));
                    }
                    let delay = backoff.next_delay();
                    let delay = match f.kind {
                        FailureKind::Transient => delay,
                        FailureKind::Permanent => delay.max(self.config.poll_interval),
                    };
                    tracing::warn!(
                        source = %cx.name,
                        log_group = %group,
                        error = %f.message,
                        retry_in_s = delay.as_secs_f64(),
                        "CloudWatch Logs call failed; retrying"
                    );
                    delay
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = cx.shutdown.wait() => return Ok(()),
            }
        }
    }

    async fn sdk_config(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(r) = &self.config.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(p) = &self.config.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &self.config.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        loader.load().await
    }

    /// `cloudwatch:<endpoint_url|aws>:<region>:<group>[:<prefix>][@<start>..<end>]`.
    fn checkpoint_key(&self, region: &str) -> String {
        let c = &self.config;
        let mut key = format!(
            "cloudwatch:{}:{region}:{}",
            c.endpoint_url.as_deref().unwrap_or("aws"),
            c.log_group
        );
        if let Some(p) = &c.stream_prefix {
            key.push(':');
            key.push_str(p);
        }
        if let Some((s, e)) = self.range {
            key.push_str(&format!("@{s}..{e}"));
        }
        key
    }

    /// All pages of one poll from `start_ms`; `None` if shutdown came first.
    async fn fetch(
        &self,
        client: &Client,
        start_ms: i64,
        cx: &SourceContext,
    ) -> Result<Option<Vec<LogEvent>>, CallFailure> {
        let c = &self.config;
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = client
                .filter_log_events()
                .log_group_name(&c.log_group)
                .start_time(start_ms)
                .limit(c.page_size as i32)
                .set_log_stream_name_prefix(c.stream_prefix.clone())
                .set_end_time(self.range.map(|(_, e)| e))
                .set_next_token(token.clone());
            let page = tokio::select! {
                r = request.send() => r.map_err(classify)?,
                _ = cx.shutdown.wait() => return Ok(None),
            };
            for e in page.events() {
                let stream = e.log_stream_name().unwrap_or_default();
                if c.stream_prefix
                    .as_deref()
                    .is_some_and(|p| !stream.starts_with(p))
                {
                    continue;
                }
                let message = e.message().unwrap_or_default();
                let ts = e.timestamp().or(e.ingestion_time()).unwrap_or(start_ms);
                let ingestion = e.ingestion_time().unwrap_or(ts);
                let id = match e.event_id() {
                    Some(id) => id.to_owned(),
                    None => format!("{stream}:{ts}:{:08x}", crc32fast::hash(message.as_bytes())),
                };
                events.push(LogEvent {
                    stream: stream.to_owned(),
                    ts,
                    ingestion,
                    id,
                    message: message.to_owned(),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => {
                    token = Some(t.to_owned())
                }
                _ => return Ok(Some(events)),
            }
        }
    }

    /// Hands on one poll's events that are not stored yet, then advances the cursor and the
    /// coverage. Every delivery carries the coverage as far as it goes (a claim in progress, up
    /// to its last event); the last one carries the poll's cursor and its full coverage. A
    /// finite pull's `last` poll makes its claim permanent (and stores that even when it handed
    /// nothing on, if an earlier poll of the same pull had stored the claim as its own).
    async fn deliver(
        &self,
        cx: &SourceContext,
        keys: Keys<'_>,
        poll: &Poll<'_>,
        admitted: Vec<LogEvent>,
        last: bool,
        (cursor, coverage): (&mut Cursor, &mut Coverage),
    ) -> Result<(), SourceError> {
        let lookback_ms = poll.lookback;
        let mut next = cursor.clone();
        next.record(&admitted, lookback_ms);
        let handed: Vec<LogEvent> = admitted
            .into_iter()
            .filter(|e| !coverage.covers(e))
            .collect();
        // A pull resumed after a crash still owns its claim: its end makes the claim permanent.
        let unfinished = last && coverage.owns(poll.owner);
        let mut covered = coverage.clone();
        covered.record(poll, &handed);
        if last {
            covered.finish(poll.owner);
        }
        let chunks = frame(&handed, CHUNK_BYTES);
        if chunks.is_empty() && !unfinished {
            *cursor = next;
            *coverage = covered;
            return Ok(());
        }
        let group = &self.config.log_group;
        let mut streams: BTreeMap<String, Arc<Stream>> = BTreeMap::new();
        let mut stream_of = |name: &str| -> Arc<Stream> {
            streams
                .entry(name.to_owned())
                .or_insert_with(|| {
                    Arc::new(Stream {
                        id: format!("{}:cloudwatch:{group}/{name}", cx.name),
                        source: format!("cloudwatch://{group}/{name}"),
                        options: DecoderOptions {
                            format: self.format,
                            stream_name: Some(name.to_owned()),
                            ..Default::default()
                        },
                    })
                })
                .clone()
        };
        let final_checkpoints = |d: Delivery| {
            let d = d.with_checkpoint(covered.to_checkpoint(keys.coverage));
            match next.to_checkpoint(keys.cursor) {
                Some(c) => d.with_checkpoint(c),
                None => d,
            }
        };
        if chunks.is_empty() {
            // Nothing new, but a finished pull's claim to store: an empty delivery carries it.
            let d = Delivery::new(stream_of(""), Vec::new()).end();
            cx.out.send(final_checkpoints(d)).await?;
        }
        let n = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut d = Delivery::new(stream_of(chunk.stream), chunk.bytes);
            if chunk.ends_stream {
                d = d.end();
            }
            d = if i + 1 == n {
                final_checkpoints(d)
            } else {
                let (stream, ts, id) = chunk.last;
                let upto = (stream.to_owned(), ts, id.to_owned());
                d.with_checkpoint(
                    coverage
                        .in_progress(poll, upto)
                        .to_checkpoint(keys.coverage),
                )
            };
            cx.out.send(d).await?;
        }
        *cursor = next;
        *coverage = covered;
        Ok(())
    }
}

/// The checkpoint keys of a source: its cursor's and its log group's coverage.
#[derive(Clone, Copy)]
struct Keys<'a> {
    cursor: &'a str,
    coverage: &'a str,
}

/// A slice of one log stream's messages of a poll, framed one per line.
#[derive(Debug, PartialEq)]
struct Chunk<'a> {
    stream: &'a str,
    bytes: Vec<u8>,
    /// The stream's last chunk of this poll.
    ends_stream: bool,
    /// The last event in it, as (stream, timestamp, id): hand-on order.
    last: (&'a str, i64, &'a str),
}

/// Groups sorted events by log stream (streams in name order, events in the given order) into
/// chunks of at most `max_bytes` (a single larger message gets a chunk of its own). Each message
/// ends with exactly one `\n`.
fn frame(events: &[LogEvent], max_bytes: usize) -> Vec<Chunk<'_>> {
    let mut by_stream: BTreeMap<&str, Vec<&LogEvent>> = BTreeMap::new();
    for e in events {
        by_stream.entry(&e.stream).or_default().push(e);
    }
    let mut chunks = Vec::new();
    for (stream, events) in by_stream {
        let mut bytes = Vec::new();
        let mut last = (stream, 0, "");
        for e in events {
            let message = e.message.trim_end_matches(['\n', '\r']);
            if !bytes.is_empty() && bytes.len() + message.len() + 1 > max_bytes {
                chunks.push(Chunk {
                    stream,
                    bytes: std::mem::take(&mut bytes),
                    ends_stream: false,
                    last,
                });
            }
            bytes.extend_from_slice(message.as_bytes());
            bytes.push(b'\n');
            last = (stream, e.ts, e.id.as_str());
        }
        chunks.push(Chunk {
            stream,
            bytes,
            ends_stream: true,
            last,
        });
    }
    chunks
}

/// Sorts a failed `FilterLogEvents` call into retry-soon or retry-later.
fn classify(err: SdkError<FilterLogEventsError>) -> CallFailure {
    let (kind, message) = match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let e = se.err();
            let code = e.code().unwrap_or("error");
            let detail = format!("{code} (HTTP {status}): {}", e.message().unwrap_or(""));
            let kind = service_failure_kind(status, code);
            if e.is_resource_not_found_exception() {
                (kind, format!("the log group does not exist ({detail})"))
            } else {
                (kind, detail)
            }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            (FailureKind::Transient, error_chain(&err))
        }
        SdkError::DispatchFailure(d) => {
            // Connection errors are I/O or timeouts (or "other" with a retry kind); "other"
            // without one is a local failure such as missing credentials.
            let transient = d.is_io() || d.is_timeout() || d.as_other().is_some();
            let kind = if transient {
                FailureKind::Transient
            } else {
                FailureKind::Permanent
            };
            (kind, error_chain(&err))
        }
        _ => (FailureKind::Permanent, error_chain(&err)),
    };
    CallFailure { kind, message }
}

/// A service error answer: throttling, 429 and 5xx are transient; anything else (a missing log
/// group, access denied, bad credentials or parameters) is not.
fn service_failure_kind(status: u16, code: &str) -> FailureKind {
    const THROTTLING: [&str; 7] = [
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "ServiceUnavailableException",
    ];
    if status >= 500 || status == 429 || THROTTLING.contains(&code) {
        FailureKind::Transient
    } else {
        FailureKind::Permanent
    }
}

/// An error and its sources, `: `-separated (the SDK's top-level messages alone say little, e.g.
/// "dispatch failure").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Exponential backoff with jitter: the n-th consecutive failure waits a random time in
/// `[ceiling/2, ceiling]`, `ceiling = min(0.5 s · 2ⁿ, 30 s)`.
struct Backoff {
    failures: u32,
    rng: ChaCha8Rng,
}

impl Backoff {
    fn new(seed: u64) -> Backoff {
        Backoff {
            failures: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn ceiling(failures: u32) -> Duration {
        BACKOFF_FIRST
            .saturating_mul(1u32 << failures.min(16))
            .min(BACKOFF_MAX)
    }

    /// Consecutive failures so far.
    fn failures(&self) -> u32 {
        self.failures
    }

    fn next_delay(&mut self) -> Duration {
        let ceiling = Backoff::ceiling(self.failures).as_millis() as u64;
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(self.rng.random_range(ceiling / 2..=ceiling))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Result<Config, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn defaults_and_time_points() {
        let c = config(serde_json::json!({"log_group": "/aws/vpn/site-to-site"})).unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(10));
        assert_eq!(c.lookback, Duration::from_secs(300));
        assert_eq!(c.initial_lookback, Duration::from_secs(3600));
        assert_eq!(c.page_size, 10_000);
        assert!(c.start.is_none() && c.end.is_none());
        let c = config(serde_json::json!({
            "log_group": "/vpn", "start": "2025-11-08T05:40:29Z", "end": 1762580500000u64,
            "poll_interval": "250ms"
        }))
        .unwrap();
        assert_eq!(c.start, Some(1_762_580_429_000));
        assert_eq!(c.end, Some(1_762_580_500_000));
        assert_eq!(c.poll_interval, Duration::from_millis(250));
        assert_eq!(parse_time_point("1762580429641"), Ok(1_762_580_429_641));
        assert_eq!(
            parse_time_point("2025-11-08T06:40:29.641+01:00"),
            Ok(1_762_580_429_641)
        );
        let e = config(serde_json::json!({"log_group": "/vpn", "start": "yesterday"})).unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
        assert!(config(serde_json::json!({"log_group": "/vpn", "poll": "1s"})).is_err());
    }

    #[test]
    fn build_validates_fields() {
        let build = |j: serde_json::Value| match config(j).unwrap().build("cw") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert_eq!(build(serde_json::json!({"log_group": "/aws/vpn#1"})), "");
        assert!(build(serde_json::json!({"log_group": "a:b"})).contains("log_group"));
        assert!(build(serde_json::json!({"log_group": ""})).contains("log_group"));
        assert!(
            build(serde_json::json!({"log_group": "g", "stream_prefix": "vpn*"}))
                .contains("stream_prefix")
        );
        assert!(build(serde_json::json!({"log_group": "g", "end": 5})).contains("start"));
        assert!(
            build(serde_json::json!({"log_group": "g", "start": 6, "end": 5}))
                .contains("before start")
        );
        assert!(
            build(serde_json::json!({"log_group": "g", "endpoint_url": "127.0.0.1:5000"}))
                .contains("endpoint_url")
        );
        assert!(build(serde_json::json!({"log_group": "g", "page_size": 0})).contains("page_size"));
        assert!(
            build(serde_json::json!({"log_group": "g", "poll_interval": "0s"}))
                .contains("poll_interval")
        );
        assert!(build(serde_json::json!({"log_group": "g", "format": "xml"})).contains("format"));
    }

    #[test]
    fn checkpoint_keys_name_endpoint_region_group_prefix_and_range() {
        let source = |j: serde_json::Value| {
            let c = config(j).unwrap();
            let range = c.start.zip(c.end);
            CloudWatchLogsSource {
                config: c,
                format: InputFormat::Auto,
                range,
            }
        };
        assert_eq!(
            source(serde_json::json!({"log_group": "/vpn"})).checkpoint_key("eu-west-1"),
            "cloudwatch:aws:eu-west-1:/vpn"
        );
        assert_eq!(
            source(serde_json::json!({
                "log_group": "/vpn", "stream_prefix": "vpn-1",
                "endpoint_url": "http://127.0.0.1:5000", "start": 1, "end": 2
            }))
            .checkpoint_key("us-east-1"),
            "cloudwatch:http://127.0.0.1:5000:us-east-1:/vpn:vpn-1@1..2"
        );
    }

    fn ev(stream: &str, ts: i64, message: &str) -> LogEvent {
        LogEvent {
            stream: stream.into(),
            ts,
            ingestion: ts,
            id: format!("{stream}{ts}"),
            message: message.into(),
        }
    }

    #[test]
    fn frame_groups_by_stream_and_splits_at_the_chunk_size() {
        let events = [
            ev("b", 1, "b1"),
            ev("a", 2, "a2\n"),
            ev("b", 3, "b3"),
            ev("a", 4, "a4\r\n"),
            ev("a", 5, "a5"),
        ];
        let chunks = frame(&events, 6);
        let got: Vec<_> = chunks
            .iter()
            .map(|c| {
                (
                    c.stream,
                    String::from_utf8(c.bytes.clone()).unwrap(),
                    c.ends_stream,
                    c.last,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", "a2\na4\n".to_owned(), false, ("a", 4, "a4")),
                ("a", "a5\n".to_owned(), true, ("a", 5, "a5")),
                ("b", "b1\nb3\n".to_owned(), true, ("b", 3, "b3")),
            ]
        );
        // A message larger than the chunk size travels alone, whole.
        let big = "x".repeat(20);
        let events = [ev("a", 1, &big)];
        let chunks = frame(&events, 6);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].bytes.len(), 21);
    }

    #[test]
    fn throttling_and_server_errors_are_transient_the_rest_permanent() {
        use FailureKind::*;
        assert_eq!(service_failure_kind(400, "ThrottlingException"), Transient);
        assert_eq!(
            service_failure_kind(400, "LimitExceededException"),
            Transient
        );
        assert_eq!(
            service_failure_kind(503, "ServiceUnavailableException"),
            Transient
        );
        assert_eq!(service_failure_kind(500, "InternalFailure"), Transient);
        assert_eq!(service_failure_kind(429, "error"), Transient);
        assert_eq!(
            service_failure_kind(400, "ResourceNotFoundException"),
            Permanent
        );
        assert_eq!(
            service_failure_kind(400, "AccessDeniedException"),
            Permanent
        );
        assert_eq!(
            service_failure_kind(403, "UnrecognizedClientException"),
            Permanent
        );
        assert_eq!(
            service_failure_kind(400, "InvalidParameterException"),
            Permanent
        );
    }

    #[test]
    fn backoff_doubles_within_bounds_and_resets() {
        let mut b = Backoff::new(7);
        let mut prev_ceiling = Duration::ZERO;
        for n in 0..12 {
            let ceiling = Backoff::ceiling(n);
            assert!(ceiling >= prev_ceiling && ceiling <= BACKOFF_MAX);
            prev_ceiling = ceiling;
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{n}: {d:?} vs {ceiling:?}"
            );
        }
        assert_eq!(Backoff::ceiling(0), BACKOFF_FIRST);
        assert_eq!(Backoff::ceiling(1), BACKOFF_FIRST * 2);
        assert_eq!(Backoff::ceiling(40), BACKOFF_MAX);
        assert_eq!(b.failures(), 12);
        b.reset();
        assert!(b.next_delay() <= BACKOFF_FIRST);
    }
}

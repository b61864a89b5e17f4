//! `type = "http"`: `POST /ingest` with NDJSON, JSON arrays, pretty JSON or any other envelope
//! the parsers detect, optionally `Content-Encoding: gzip`.
//!
//! Contract with senders (at-least-once): `200` only after the request's records are durable in
//! the store's WAL; `401` without the configured bearer token (compared in constant time); `413`
//! above `max_body_bytes` (also after gzip inflation); `503` with `Retry-After` when the
//! pipeline's in-flight budget stays used up for 5 s (a request waits in line with the other
//! sources that long) or the store did not answer within `ack_timeout` — the sender retries,
//! and a retried request may be stored twice (no request ids here: at-least-once is the
//! contract; the Firehose source dedupes by its requestId). Each request is one
//! stream: a record cut at the end of a body is a reject, never joined with the next request.
//! `?stream=NAME` names the log stream for records without tunnel identity.
//!
//! Also shared with the `firehose` source: body reading with limits and gzip, token comparison,
//! serving until shutdown.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use tunnelwatch_parsers::{DecoderOptions, InputFormat};

use crate::pipeline::{Delivery, SendError, SourceContext, Stream};
use crate::sources::{BuildError, BuildSource, Run, Source, SourceError, duration_str};
use crate::tls::TlsConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_address")]
    pub address: String,
    /// Bearer token senders must present (`Authorization: Bearer …`). Required; use
    /// `token_env` to keep it out of the file.
    #[serde(default)]
    pub token: Option<String>,
    /// Name of an environment variable holding the token (instead of `token`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Largest request body accepted, before and after gzip inflation.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a request waits for its records to become durable before it is answered 503.
    #[serde(default = "default_ack_timeout", with = "duration_str")]
    pub ack_timeout: Duration,
    /// Input format (`auto` by default).
    #[serde(default)]
    pub format: Option<String>,
    /// Serve HTTPS: `tls = { cert_file = "…", key_file = "…" }` (PEM; optional
    /// `client_ca_file` for mutual TLS).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_address() -> String {
    "127.0.0.1:8088".into()
}
fn default_max_body() -> usize {
    10 << 20
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Reads a secret given inline or through an environment variable.
pub(crate) fn secret(
    name: &str,
    field: &str,
    inline: &Option<String>,
    env: &Option<String>,
) -> Result<String, BuildError> {
    let value = match (inline, env) {
        (Some(_), Some(_)) => {
            return Err(BuildError::new(
                name,
                format!("{field} and {field}_env: give one of them"),
            ));
        }
        (Some(t), None) => t.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            BuildError::new(
                name,
                format!("{field}_env: the environment variable {var} is not set"),
            )
        })?,
        (None, None) => {
            return Err(BuildError::new(
                name,
                format!("{field}: required (or {field}_env)"),
            ));
        }
    };
    if value.len() < 8 {
        return Err(BuildError::new(
            name,
            format!("{field}: at least 8 characters"),
        ));
    }
    Ok(value)
}

pub(crate) fn parse_address(name: &str, address: &str) -> Result<SocketAddr, BuildError> {
    address.parse().map_err(|_| {
        BuildError::new(
            name,
            format!("address: `{address}` is not an address (IP:PORT)"),
        )
    })
}

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        let address = parse_address(name, &self.address)?;
        let token = secret(name, "token", &self.token, &self.token_env)?;
        let format = crate::sources::parse_format(name, self.format.as_deref())?;
        if self.max_body_bytes == 0 {
            return Err(BuildError::new(name, "max_body_bytes: must be positive"));
        }
        Ok(Box::new(HttpSource {
            address,
            token,
            max_body_bytes: self.max_body_bytes,
            ack_timeout: self.ack_timeout,
            format,
            tls: tls_of(name, &self.tls)?,
        }))
    }
}

struct HttpSource {
    address: SocketAddr,
    token: String,
    max_body_bytes: usize,
    ack_timeout: Duration,
    format: InputFormat,
    tls: Option<Arc<rustls::ServerConfig>>,
}

struct AppState {
    cx: SourceContext,
    expected: String,
    max_body_bytes: usize,
    ack_timeout: Duration,
    format: InputFormat,
    requests: AtomicU64,
}

impl Source for HttpSource {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn listens(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move {
            let state = Arc::new(AppState {
                expected: format!("Bearer {}", self.token),
                max_body_bytes: self.max_body_bytes,
                ack_timeout: self.ack_timeout,
                format: self.format,
                requests: AtomicU64::new(0),
                cx: cx.clone(),
            });
            let app = Router::new()
                .route("/ingest", post(ingest))
                .with_state(state);
            serve(
                self.address,
                self.tls,
                idle_limit(self.ack_timeout),
                app,
                &cx,
            )
            .await
        })
    }
}

/// The server configuration of a source's `tls` table, read when the source is built.
pub(crate) fn tls_of(
    name: &str,
    tls: &Option<TlsConfig>,
) -> Result<Option<Arc<rustls::ServerConfig>>, BuildError> {
    tls.as_ref()
        .map(|t| crate::tls::server_config(t).map_err(|m| BuildError::new(name, m)))
        .transpose()
}

/// How long a push source's connection may stay silent: a request waits up to its ack timeout
/// for the store.
pub(crate) fn idle_limit(ack_timeout: Duration) -> Duration {
    crate::idle::limit_for(ack_timeout)
}

/// Binds, publishes the bound address, and serves (HTTPS with `tls`) until shutdown (requests
/// in progress finish). Failed TLS handshakes count as refused; a connection silent for `idle`
/// is closed.
pub(crate) async fn serve(
    address: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    idle: Duration,
    app: Router,
    cx: &SourceContext,
) -> Result<(), SourceError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| SourceError::Io {
            what: format!("cannot listen on {address}"),
            source: e,
        })?;
    let bound = listener.local_addr().map_err(|e| SourceError::Io {
        what: format!("cannot listen on {address}"),
        source: e,
    })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let _ = cx.stats.listening.set(format!("{scheme}://{bound}"));
    let shutdown = cx.shutdown.clone();
    let stats = cx.stats.clone();
    let refused = move || {
        stats.refused.fetch_add(1, Ordering::Relaxed);
    };
    crate::tls::serve(listener, tls, idle, app, refused, async move {
        shutdown.wait().await
    })
    .await
    .map_err(|e| SourceError::Io {
        what: format!("serving on {bound}"),
        source: e,
    })
}

/// Constant-time comparison of a presented credential with the expected one.
pub fn credential_ok(presented: Option<&[u8]>, expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    match presented {
        // Lengths are not secret enough to hide; contents are compared in constant time.
        Some(p) if p.len() == expected.len() => p.ct_eq(expected).into(),
        _ => false,
    }
}

/// Why a body was not read.
pub(crate) enum BodyError {
    TooLarge,
    Bad(String),
}

/// Reads a request body up to `limit` bytes, inflating gzip (also up to `limit`).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(BodyError::TooLarge);
    }
    let raw = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| BodyError::TooLarge)?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().eq_ignore_ascii_case("gzip"))
        .unwrap_or(false);
    match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("") | Some("identity") => {}
        Some(e) if e.eq_ignore_ascii_case("gzip") => {}
        Some(e) => {
            return Err(BodyError::Bad(format!(
                "unsupported Content-Encoding `{e}`"
            )));
        }
    }
    if !gzip {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut inflater = flate2::read::GzDecoder::new(&raw[..]).take(limit as u64 + 1);
    inflater
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Bad(format!("bad gzip body: {e}")))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct IngestParams {
    stream: Option<String>,
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

async fn ingest(
    State(s): State<Arc<AppState>>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let stats = &s.cx.stats;
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !credential_ok(auth, s.expected.as_bytes()) {
        stats.refused.fetch_add(1, Ordering::Relaxed);
        return answer(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "missing or wrong bearer token"}),
        );
    }
    let bytes = match read_body(&headers, body, s.max_body_bytes).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"error": format!("body larger than {} bytes", s.max_body_bytes)}),
            );
        }
        Err(BodyError::Bad(e)) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return answer(StatusCode::BAD_REQUEST, serde_json::json!({ "error": e }));
        }
    };
    let n = s.requests.fetch_add(1, Ordering::Relaxed);
    let len = bytes.len();
    let stream = Arc::new(Stream {
        id: format!("{}:request:{n}", s.cx.name),
        source: format!("http:{}", s.cx.name),
        options: DecoderOptions {
            format: s.format,
            stream_name: params.stream,
            ..Default::default()
        },
    });
    match hand_on(&s.cx, stream, bytes, s.ack_timeout).await {
        Ok(()) => answer(
            StatusCode::OK,
            serde_json::json!({"status": "ok", "bytes": len}),
        ),
        Err(refusal) => answer(
            refusal.status(),
            serde_json::json!({ "error": refusal.to_string() }),
        ),
    }
}

/// Why a request's records were not (confirmed) stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the pipeline is saturated; retry later")]
    Saturated,
    #[error("shutting down")]
    ShuttingDown,
    #[error("not stored: {0}")]
    NotStored(String),
    #[error("not confirmed durable in time; retry")]
    NotInTime,
}

impl Refusal {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Refusal::NotStored(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Hands a whole request body on as one stream and waits until its records are durable: the
/// answer an HTTP sender gets. It waits in line for budget for at most [`BUDGET_WAIT`] (the
/// ack timeout if shorter), then is answered 503 (and counted as dropped); it never queues
/// beyond the budget.
pub(crate) async fn hand_on(
    cx: &SourceContext,
    stream: Arc<Stream>,
    bytes: Vec<u8>,
    ack_timeout: Duration,
) -> Result<(), Refusal> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let delivery = Delivery::new(stream, bytes).end().with_ack(tx);
    // Budget may free within moments: wait in line with the other sources for a while rather
    // than lose every race to a TCP sender that is already waiting.
    match cx
        .out
        .send_within(delivery, BUDGET_WAIT.min(ack_timeout))
        .await
    {
        Ok(()) => {}
        Err(SendError::Full) => {
            cx.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Saturated);
        }
        Err(SendError::Closed) => return Err(Refusal::ShuttingDown),
    }
    await_ack(rx, ack_timeout)
        .await
        .map_err(|(refusal, _)| refusal)
}

/// How long an HTTP push waits for in-flight budget before it is answered 503.
const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// Hands a delivery on at once (synchronously, so a caller can order it under its own lock)
/// with an ack attached; the receiver is answered once its records are durable.
pub(crate) fn send_now(
    cx: &SourceContext,
    delivery: Delivery,
) -> Result<tokio::sync::oneshot::Receiver<Result<(), String>>, Refusal> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    match cx.out.try_send(delivery.with_ack(tx)) {
        Ok(()) => Ok(rx),
        Err(SendError::Full) => {
            cx.stats.dropped.fetch_add(1, Ordering::Relaxed);
            Err(Refusal::Saturated)
        }
        Err(SendError::Closed) => Err(Refusal::ShuttingDown),
    }
}

/// The answer for a delivery sent with [`send_now`], waited for at most `ack_timeout`. Not in
/// time, the receiver comes back with the refusal, so the caller can still learn the outcome.
pub(crate) async fn await_ack(
    mut ack: tokio::sync::oneshot::Receiver<Result<(), String>>,
    ack_timeout: Duration,
) -> Result<
    (),
    (
        Refusal,
        Option<tokio::sync::oneshot::Receiver<Result<(), String>>>,
    ),
> {
    match tokio::time::timeout(ack_timeout, &mut ack).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err((Refusal::NotStored(e), None)),
        Ok(Err(_)) => Err((Refusal::NotInTime, None)),
        Err(_) => Err((Refusal::NotInTime, Some(ack))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_compare_whole_values() {
        assert!(credential_ok(Some(b"Bearer abcdefgh"), b"Bearer abcdefgh"));
        assert!(!credential_ok(Some(b"Bearer abcdefgX"), b"Bearer abcdefgh"));
        assert!(!credential_ok(Some(b"Bearer abcdefg"), b"Bearer abcdefgh"));
        assert!(!credential_ok(None, b"Bearer abcdefgh"));
    }

    #[test]
    fn config_errors_name_the_field() {
        let c: Config = serde_json::from_value(serde_json::json!({"token": "short"})).unwrap();
        assert!(
            c.build("h")
                .err()
                .unwrap()
                .to_string()
                .contains("token: at least 8")
        );
        let c: Config = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(
            c.build("h")
                .err()
                .unwrap()
                .to_string()
                .contains("token: required")
        );
        let c: Config =
            serde_json::from_value(serde_json::json!({"token": "12345678", "address": "x"}))
                .unwrap();
        assert!(c.build("h").err().unwrap().to_string().contains("address"));
    }
}

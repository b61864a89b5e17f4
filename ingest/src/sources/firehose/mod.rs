//! `type = "firehose"`: an Amazon Kinesis Data Firehose HTTP endpoint destination — the push path
//! from AWS: CloudWatch Logs subscription filter → Firehose → tunnelwatch.
//!
//! Protocol (AWS "HTTP endpoint delivery request and response specifications"): `POST` on any
//! path with `X-Amz-Firehose-Request-Id`, `X-Amz-Firehose-Access-Key`, optionally
//! `Content-Encoding: gzip`; body `{"requestId", "timestamp", "records": [{"data": base64}]}`,
//! where each record's data is a gzip'd CloudWatch Logs subscription payload. Answers are JSON
//! `{"requestId", "timestamp"}` (plus `"errorMessage"` when not 200): `200` only after the
//! records are durable in the WAL; `401` for a wrong access key (constant-time comparison);
//! `400` for a body that is not a Firehose request or whose requestId differs from the header;
//! `413` above `max_body_bytes`; `503` (with `Retry-After`) when the pipeline is saturated or
//! not durable in time — Firehose retries for its configured retry duration, then backs up to S3.
//!
//! Delivery is exactly-once per `requestId` within the last 4,096 requests: a request Firehose
//! retries after a lost or late 200 is answered 200 and not stored again once its first
//! delivery is stored (see [`request_ids`]), also across a restart or crash.
//!
//! Limits: a retry of an older request is stored again. A record whose data does not decode is stored in `rejects` and the request still
//! succeeds (nothing is lost; Firehose would only retry it forever).

mod request_ids;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tunnelwatch_parsers::{DecoderOptions, InputFormat};

use crate::pipeline::{Delivery, SourceContext, Stream, now_ms};
use crate::sources::http::{
    BodyError, await_ack, credential_ok, idle_limit, parse_address, read_body, secret, send_now,
    serve, tls_of,
};
use crate::sources::{BuildError, BuildSource, Run, Source, duration_str};
use crate::tls::TlsConfig;
use request_ids::{RequestIds, Seen};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (put a TLS-terminating proxy or load balancer in front: Firehose
    /// only delivers to HTTPS endpoints).
    #[serde(default = "default_address")]
    pub address: String,
    /// The access key configured on the Firehose stream's HTTP endpoint destination.
    #[serde(default)]
    pub access_key: Option<String>,
    /// Name of an environment variable holding the access key (instead of `access_key`).
    #[serde(default)]
    pub access_key_env: Option<String>,
    /// Largest request body accepted, before and after gzip inflation (Firehose buffers at
    /// most 64 MiB per request; its default is 5 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a request waits for its records to become durable before it is answered 503.
    #[serde(default = "default_ack_timeout", with = "duration_str")]
    pub ack_timeout: Duration,
    /// Serve HTTPS itself (Firehose delivers only to HTTPS endpoints): `tls = { cert_file =
    /// "…", key_file = "…" }` with a certificate Firehose trusts; else put a TLS-terminating
    /// proxy in front.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_address() -> String {
    "127.0.0.1:8089".into()
}
fn default_max_body() -> usize {
    32 << 20
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(30)
}

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        let address = parse_address(name, &self.address)?;
        let access_key = secret(name, "access_key", &self.access_key, &self.access_key_env)?;
        if self.max_body_bytes == 0 {
            return Err(BuildError::new(name, "max_body_bytes: must be positive"));
        }
        Ok(Box::new(FirehoseSource {
            address,
            access_key,
            max_body_bytes: self.max_body_bytes,
            ack_timeout: self.ack_timeout,
            tls: tls_of(name, &self.tls)?,
        }))
    }
}

struct FirehoseSource {
    address: SocketAddr,
    access_key: String,
    max_body_bytes: usize,
    ack_timeout: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
}

struct AppState {
    cx: SourceContext,
    access_key: String,
    max_body_bytes: usize,
    ack_timeout: Duration,
    requests: AtomicU64,
    /// Recently stored request ids, so Firehose's retries are not stored twice.
    ids: Mutex<RequestIds>,
}

impl Source for FirehoseSource {
    fn kind(&self) -> &'static str {
        "firehose"
    }

    fn listens(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move {
            let state = Arc::new(AppState {
                access_key: self.access_key,
                max_body_bytes: self.max_body_bytes,
                ack_timeout: self.ack_timeout,
                requests: AtomicU64::new(0),
                ids: Mutex::new(RequestIds::recover(&cx.name, &cx.checkpoints)),
                cx: cx.clone(),
            });
            let app = Router::new()
                .fallback(axum::routing::post(deliver))
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

/// The part of a Firehose request checked before it is handed on (the decoder reads the rest).
#[derive(Deserialize)]
struct RequestHead {
    #[serde(rename = "requestId")]
    request_id: String,
    records: Vec<serde::de::IgnoredAny>,
}

fn answer(status: StatusCode, request_id: &str, error: Option<&str>) -> Response {
    let mut body = serde_json::json!({ "requestId": request_id, "timestamp": now_ms() });
    if let Some(e) = error {
        body["errorMessage"] = e.into();
    }
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
    r
}

async fn deliver(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let stats = &s.cx.stats;
    let header_id = headers
        .get("x-amz-firehose-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let key = headers
        .get("x-amz-firehose-access-key")
        .map(|v| v.as_bytes());
    if !credential_ok(key, s.access_key.as_bytes()) {
        stats.refused.fetch_add(1, Ordering::Relaxed);
        return answer(
            StatusCode::UNAUTHORIZED,
            &header_id,
            Some("missing or wrong X-Amz-Firehose-Access-Key"),
        );
    }
    let bytes = match read_body(&headers, body, s.max_body_bytes).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                &header_id,
                Some(&format!("body larger than {} bytes", s.max_body_bytes)),
            );
        }
        Err(BodyError::Bad(e)) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return answer(StatusCode::BAD_REQUEST, &header_id, Some(&e));
        }
    };
    let head: RequestHead = match serde_json::from_slice(&bytes) {
        Ok(h) => h,
        Err(e) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return answer(
                StatusCode::BAD_REQUEST,
                &header_id,
                Some(&format!("not a Firehose request: {e}")),
            );
        }
    };
    if !header_id.is_empty() && head.request_id != header_id {
        stats.refused.fetch_add(1, Ordering::Relaxed);
        return answer(
            StatusCode::BAD_REQUEST,
            &header_id,
            Some("requestId in the body differs from X-Amz-Firehose-Request-Id"),
        );
    }
    let request_id = head.request_id;
    if head.records.is_empty() {
        return answer(StatusCode::OK, &request_id, None);
    }
    let n = s.requests.fetch_add(1, Ordering::Relaxed);
    let stream = Arc::new(Stream {
        id: format!("{}:request:{n}", s.cx.name),
        source: format!("firehose:{}", s.cx.name),
        options: DecoderOptions {
            format: InputFormat::Firehose,
            ..Default::default()
        },
    });
    // Recorded and handed on under one lock: checkpoints reach the WAL in sequence order.
    let sent = {
        let mut ids = s.ids.lock().unwrap_or_else(|p| p.into_inner());
        match ids.seen(&request_id) {
            Seen::Stored => {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                return answer(StatusCode::OK, &request_id, None);
            }
            Seen::Pending => {
                return answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &request_id,
                    Some("this request's first delivery is still being stored; retry"),
                );
            }
            Seen::New => {}
        }
        let checkpoint = ids.record(&request_id);
        let sent = send_now(
            &s.cx,
            Delivery::new(stream, bytes)
                .end()
                .with_checkpoint(checkpoint),
        );
        if sent.is_err() {
            ids.forget(&request_id);
        }
        sent
    };
    let result = match sent {
        Ok(ack) => await_ack(ack, s.ack_timeout).await,
        Err(refusal) => Err((refusal, None)),
    };
    let settle = |s: &AppState, stored: bool| {
        let mut ids = s.ids.lock().unwrap_or_else(|p| p.into_inner());
        if stored {
            ids.stored(&request_id)
        } else {
            ids.forget(&request_id)
        }
    };
    match result {
        Ok(()) => {
            settle(&s, true);
            answer(StatusCode::OK, &request_id, None)
        }
        Err((refusal, late)) => {
            match late {
                // Not in time: the delivery may still be stored; learn which in the background.
                Some(ack) => {
                    let s = s.clone();
                    let id = request_id.clone();
                    tokio::spawn(async move {
                        let stored = matches!(ack.await, Ok(Ok(())));
                        let mut ids = s.ids.lock().unwrap_or_else(|p| p.into_inner());
                        if stored {
                            ids.stored(&id)
                        } else {
                            ids.forget(&id)
                        }
                    });
                }
                None => settle(&s, false),
            }
            answer(refusal.status(), &request_id, Some(&refusal.to_string()))
        }
    }
}

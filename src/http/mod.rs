//! The HTTP server of `serve` and `demo`: the status page, the HTTP API (`api`, documented by
//! `docs/openapi.yaml`), `/metrics` and `/healthz`.
//!
//! - `GET /` and `GET /connections/{vpn_id}` — the status pages ([`status`]).
//! - `/api/v1/…` — the API ([`api`]); `GET|POST /api/query` is kept as an alias of
//!   `/api/v1/query` with its old `?format=` parameter.
//! - `GET /metrics` — OpenMetrics text for Prometheus: pipeline self-metrics, the monitor's live
//!   tunnel state, alarm states and the outbox.
//! - `GET /healthz` — `ok`, always open.
//!
//! Invariants: with a token configured (`[http] token`), every `/api` route answers 401 without
//! `Authorization: Bearer <token>` (compared in constant time), and so does `/metrics` with
//! `protect_metrics`; the token is never logged or echoed. Every request body is limited to
//! `max_body_bytes` (413) and every request to `request_timeout` (504).

mod api;
mod status;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tunnelwatch_exporters::prometheus::{self, PipelineStats, SourceStats};
use tunnelwatch_queries::{Engine, QueryOptions, QueryResult, QueryRuntime, StoreError, TableName};

use tunnelwatch_pipeline::runner::{Shared, now_ms};

/// How the server protects and limits itself (`[http]` in the config).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bearer token of the `/api` routes; `None`: open.
    pub token: Option<String>,
    /// `/metrics` requires the token too.
    pub protect_metrics: bool,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Serve HTTPS with this configuration; `None`: plain HTTP.
    pub tls: Option<std::sync::Arc<tunnelwatch_ingest::tls::ServerConfig>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token: None,
            protect_metrics: false,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct AppState {
    pub shared: Arc<Shared>,
    pub settings: Arc<Settings>,
    /// Shared by the queries of the API: one memory pool, cached Parquet metadata.
    pub queries: QueryRuntime,
}

pub fn router(shared: Arc<Shared>, settings: Settings) -> Router {
    let queries = QueryRuntime::new(QUERY_MEMORY).expect("a memory pool and caches build");
    let state = AppState {
        shared,
        settings: Arc::new(settings),
        queries,
    };
    let api = api::routes()
        .route(
            "/api/query",
            get(api::query_get).post(api::query_post_alias),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let metrics_route = Router::new().route("/metrics", get(metrics));
    let metrics_route = if state.settings.protect_metrics {
        metrics_route.route_layer(middleware::from_fn_with_state(state.clone(), require_token))
    } else {
        metrics_route
    };
    Router::new()
        .route("/", get(status::status_page))
        .route("/connections/{vpn_id}", get(status::connection_page))
        .merge(api)
        .merge(metrics_route)
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .with_state(state)
}

/// 401 without the configured bearer token.
async fn require_token(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &app.settings.token {
        let expected = format!("Bearer {token}");
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !tunnelwatch_ingest::sources::http::credential_ok(presented, expected.as_bytes()) {
            let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(req).await
}

/// 504 past the request time limit.
async fn time_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limit = app.settings.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            &format!("the request took longer than {} s", limit.as_secs_f64()),
        ),
    }
}

/// Memory for the queries that arrive over HTTP, all together.
const QUERY_MEMORY: usize = 1 << 30;

/// Limits for queries that arrive over HTTP.
fn query_options(settings: &Settings) -> QueryOptions {
    QueryOptions {
        memory_limit: QUERY_MEMORY,
        timeout: settings.request_timeout,
    }
}

pub(crate) async fn run_sql(app: &AppState, sql: &str) -> Result<QueryResult, StoreError> {
    let snapshot = app.shared.snapshot();
    let engine = Engine::open_in(&snapshot, query_options(&app.settings), &app.queries).await?;
    engine.query(sql).await
}

#[derive(Deserialize)]
pub(crate) struct QueryParams {
    pub sql: Option<String>,
    pub format: Option<String>,
}

/// `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

/// A failed request: its status and message, answered as `{"error": message}`.
pub(crate) struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// A failed query: refused or bad SQL 400, too slow 504, else 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let status = match e {
            StoreError::Refused(_) | StoreError::DataFusion(_) => StatusCode::BAD_REQUEST,
            StoreError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

pub fn pipeline_stats(shared: &Shared) -> PipelineStats {
    let c = &shared.counters;
    let now = now_ms();
    let seconds = |ms: i64| (ms > 0).then_some(ms as f64 / 1000.0);
    PipelineStats {
        sources: shared
            .sources
            .iter()
            .map(|s| SourceStats {
                name: s.name.clone(),
                kind: s.kind.to_owned(),
                records: s.records.load(Ordering::Relaxed),
                bytes: s.bytes.load(Ordering::Relaxed),
                rejects: s.rejects.load(Ordering::Relaxed),
                dropped: s.dropped.load(Ordering::Relaxed),
                duplicates: s.duplicates.load(Ordering::Relaxed),
                refused: s.refused.load(Ordering::Relaxed),
                errors: s.errors.load(Ordering::Relaxed),
                open: s.open.load(Ordering::Relaxed),
                lag_seconds: seconds(s.last_event_ms.load(Ordering::Relaxed))
                    .map(|t| (now as f64 / 1000.0 - t).max(0.0)),
                last_checkpoint_seconds: seconds(s.last_checkpoint_ms.load(Ordering::Relaxed)),
                last_received_seconds: seconds(s.last_received_ms.load(Ordering::Relaxed)),
                replaying: s.replaying.load(Ordering::Relaxed),
            })
            .collect(),
        budget_bytes: Some(shared.budget.total_bytes() as u64),
        in_flight_bytes: Some(shared.budget.in_flight_bytes() as u64),
        store_rows: TableName::ALL
            .iter()
            .map(|t| {
                (
                    t.as_str().to_owned(),
                    c.rows[*t as usize].load(Ordering::Relaxed),
                )
            })
            .collect(),
        store_write_errors: c.store_write_errors.load(Ordering::Relaxed),
        store_writable: c.store_writable.load(Ordering::Relaxed),
    }
}

/// The alarm instances of the running evaluator (`None` without alarms).
pub(crate) fn alarm_instances(
    shared: &Shared,
) -> Option<Vec<tunnelwatch_monitor::alarm::InstanceStatus>> {
    match shared.alarms.lock() {
        Ok(a) => a.as_ref().map(|e| e.instances()),
        Err(p) => p.into_inner().as_ref().map(|e| e.instances()),
    }
}

/// The monitor's live view.
pub(crate) fn fleet_status(shared: &Shared) -> tunnelwatch_monitor::FleetStatus {
    match shared.monitor.lock() {
        Ok(m) => m.status(),
        Err(p) => p.into_inner().status(),
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let shared = &app.shared;
    let fleet = fleet_status(shared);
    let alarms = alarm_instances(shared);
    let outbox = shared.notify.as_ref().map(|n| {
        let s = &n.outbox.stats;
        prometheus::OutboxCounts {
            pending: n.outbox.pending() as u64,
            sent: s.sent.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
        }
    });
    match prometheus::encode_with_alarms(&pipeline_stats(shared), &fleet, alarms.as_deref(), outbox)
    {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

//! The HTTP API, `/api/v1/…` (documented in `docs/openapi.yaml`):
//!
//! - `POST /api/v1/query` — SQL (the body as text, or `{"sql": "…"}` as JSON) through the
//!   read-only guard; the answer in the form `Accept` asks for: `application/json` (default),
//!   `application/x-ndjson`, `text/csv` or `application/vnd.apache.arrow.stream` (Arrow IPC
//!   stream); `?format=json|ndjson|csv|arrow` overrides it.
//! - `GET /api/v1/connections` — the fleet: each connection with its tunnels, state, time in
//!   state, alarms firing and last error, in trouble first.
//! - `GET /api/v1/connections/{vpn_id}` — one connection: the same, its tunnels' TunnelState
//!   minutes of the last 24 hours, its recent IKE/BGP events and alarm history, and the SQL
//!   that reproduces each part.
//! - `GET /api/v1/alarms[?state=ALARM|OK|INSUFFICIENT_DATA]` — the alarm instances.
//! - `GET /api/v1/health` — the current Health events (one per event and connection).
//! - `GET /api/v1/diagnose[/{vpn_id}]` — root causes of the stored records' trouble (what
//!   `tunnelwatch diagnose` prints): the troubled connections, most first, or one connection.
//!
//! Limits: "the last 24 hours" are counted back from the newest event time seen (the demo's
//! and a replay's data are not at the wall clock).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tunnelwatch_pipeline::fleet::{ConnectionState, ConnectionView, Problem, fleet_view};

use super::{ApiError, AppState, QueryParams, alarm_instances, error, fleet_status, run_sql};
use tunnelwatch_queries::guard::sql_literal;

use crate::output::{Output, render};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/query", post(query_v1))
        .route("/api/v1/connections", get(connections))
        .route("/api/v1/connections/{vpn_id}", get(connection))
        .route("/api/v1/alarms", get(alarms))
        .route("/api/v1/health", get(health))
        .route("/api/v1/diagnose", get(diagnose_fleet))
        .route("/api/v1/diagnose/{vpn_id}", get(diagnose_one))
}

/// The answer forms of a query.
#[derive(Clone, Copy)]
enum Form {
    Text(Output),
    Arrow,
}

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// `?format=` if given, else the first `Accept` type we serve, else JSON.
fn form(format: Option<&str>, headers: &HeaderMap) -> Result<Form, ApiError> {
    if let Some(f) = format {
        return match f {
            "arrow" => Ok(Form::Arrow),
            _ => match Output::parse(f) {
                Some(o @ (Output::Json | Output::Ndjson | Output::Csv)) => Ok(Form::Text(o)),
                _ => Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("unknown format {f:?}: json, ndjson, csv or arrow"),
                )),
            },
        };
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for t in accept.split(',') {
        let t = t.split(';').next().unwrap_or("").trim();
        match t {
            "application/json" | "*/*" | "application/*" => return Ok(Form::Text(Output::Json)),
            "application/x-ndjson" | "application/ndjson" => {
                return Ok(Form::Text(Output::Ndjson));
            }
            "text/csv" => return Ok(Form::Text(Output::Csv)),
            ARROW_STREAM => return Ok(Form::Arrow),
            _ => {}
        }
    }
    if accept.trim().is_empty() {
        Ok(Form::Text(Output::Json))
    } else {
        Err(ApiError(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "cannot answer in {accept:?}: application/json, application/x-ndjson, \
                 text/csv or {ARROW_STREAM}"
            ),
        ))
    }
}

/// Runs `sql` and answers in `form`.
async fn answer(app: &AppState, sql: &str, form: Form) -> Response {
    let result = match run_sql(app, sql).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match form {
        Form::Text(output) => match render(output, &result) {
            Ok(b) => ([(header::CONTENT_TYPE, output.content_type())], b).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        Form::Arrow => {
            let mut out = Vec::new();
            let written = (|| {
                let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &result.schema)?;
                for b in &result.batches {
                    w.write(b)?;
                }
                w.finish()
            })();
            match written {
                Ok(()) => ([(header::CONTENT_TYPE, ARROW_STREAM)], out).into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
    }
}

#[derive(Deserialize)]
struct SqlBody {
    sql: String,
}

/// `POST /api/v1/query`.
async fn query_v1(
    State(app): State<AppState>,
    Query(p): Query<QueryParams>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = match form(p.format.as_deref(), &headers) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let sql = if is_json {
        match serde_json::from_str::<SqlBody>(&body) {
            Ok(b) => b.sql,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("a JSON body is {{\"sql\": \"…\"}}: {e}"),
                );
            }
        }
    } else {
        body
    };
    if sql.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "no SQL in the request body");
    }
    answer(&app, &sql, form).await
}

/// `GET /api/query?sql=…&format=…` (the old route).
pub(super) async fn query_get(
    State(app): State<AppState>,
    Query(p): Query<QueryParams>,
) -> Response {
    match p.sql.as_deref() {
        Some(sql) => answer_alias(&app, sql, p.format.as_deref()).await,
        None => error(StatusCode::BAD_REQUEST, "missing the sql parameter"),
    }
}

/// `POST /api/query?format=…` (the old route; body: the SQL text).
pub(super) async fn query_post_alias(
    State(app): State<AppState>,
    Query(p): Query<QueryParams>,
    body: String,
) -> Response {
    answer_alias(&app, &body, p.format.as_deref()).await
}

/// The old route's answer: `?format=` only (JSON by default), `Accept` is not read.
async fn answer_alias(app: &AppState, sql: &str, format: Option<&str>) -> Response {
    match form(Some(format.unwrap_or("json")), &HeaderMap::new()) {
        Ok(f) => answer(app, sql, f).await,
        Err(r) => r.into_response(),
    }
}

/// The rows of `sql` as JSON objects (for the small results the API composes).
async fn rows(app: &AppState, sql: &str) -> Result<Vec<Value>, ApiError> {
    let result = run_sql(app, sql).await?;
    let bytes = render(Output::Json, &result).map_err(ApiError::internal)?;
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

const DAY_MS: i64 = 86_400_000;

/// The newest event time seen, or the wall clock before any.
pub(super) fn data_now(app: &AppState) -> i64 {
    match app.shared.counters.last_event_ms.load(Ordering::Relaxed) {
        t if t > 0 => t,
        _ => tunnelwatch_pipeline::runner::now_ms(),
    }
}

/// The last error or warning record of each connection in the day before `until`, or of one.
fn problems_sql(until: i64, vpn: Option<&str>) -> String {
    let mut filter = format!(
        "severity IN ('error', 'warning') AND vpn_id IS NOT NULL AND ts >= to_timestamp_millis({})",
        until - DAY_MS
    );
    if let Some(v) = vpn {
        filter.push_str(&format!(" AND vpn_id = {}", sql_literal(v)));
    }
    format!(
        "SELECT vpn_id, tunnel_ip, CAST(message_kind AS VARCHAR) AS message_kind, \
         CAST(ts AS BIGINT) AS ts_ms FROM (\
           SELECT *, row_number() OVER (PARTITION BY vpn_id ORDER BY ts DESC) AS rn FROM (\
             SELECT vpn_id, tunnel_ip, message_kind, ts FROM tunnel_activity WHERE {filter} \
             UNION ALL SELECT vpn_id, tunnel_ip, message_kind, ts FROM bgp_events WHERE {filter})) \
         WHERE rn = 1"
    )
}

async fn problems(
    app: &AppState,
    vpn: Option<&str>,
) -> Result<HashMap<Arc<str>, Problem>, ApiError> {
    let mut out = HashMap::new();
    for r in rows(app, &problems_sql(data_now(app), vpn)).await? {
        let (Some(vpn), Some(kind), Some(ts)) = (
            r["vpn_id"].as_str(),
            r["message_kind"].as_str(),
            r["ts_ms"].as_i64(),
        ) else {
            continue;
        };
        out.insert(
            Arc::from(vpn),
            Problem {
                ts_ms: ts,
                tunnel_ip: r["tunnel_ip"].as_str().map(Arc::from),
                message_kind: kind.to_owned(),
            },
        );
    }
    Ok(out)
}

/// The fleet view with its counts per state.
#[derive(Serialize)]
pub(super) struct Fleet {
    pub connections: Vec<ConnectionView>,
    /// Connections per state (`up`, `degraded`, `down`, `unknown`).
    pub counts: BTreeMap<&'static str, usize>,
    pub applied_until_ms: Option<i64>,
}

/// The fleet, in trouble first (what `/api/v1/connections` and the status page show).
pub(super) async fn fleet(app: &AppState) -> Result<Fleet, ApiError> {
    let problems = problems(app, None).await?;
    let status = fleet_status(&app.shared);
    let alarms = alarm_instances(&app.shared).unwrap_or_default();
    let connections = fleet_view(&status, &alarms, &problems);
    let mut counts = BTreeMap::new();
    for c in &connections {
        *counts.entry(state_name(c.state)).or_default() += 1;
    }
    Ok(Fleet {
        connections,
        counts,
        applied_until_ms: status.applied_until_ms,
    })
}

pub(super) fn state_name(s: ConnectionState) -> &'static str {
    match s {
        ConnectionState::Up => "up",
        ConnectionState::Degraded => "degraded",
        ConnectionState::Down => "down",
        ConnectionState::Unknown => "unknown",
    }
}

/// `GET /api/v1/connections`.
async fn connections(State(app): State<AppState>) -> Response {
    match fleet(&app).await {
        Ok(f) => axum::Json(f).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A connection id as the API takes it: `vpn-` and letters, digits or `-`.
fn valid_vpn_id(v: &str) -> bool {
    v.starts_with("vpn-")
        && v.len() <= 64
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// One tunnel's TunnelState minutes: (minute start ms, up fraction).
#[derive(Serialize)]
pub(super) struct Series {
    pub tunnel_ip: String,
    pub points: Vec<(i64, f64)>,
}

#[derive(Serialize)]
pub(super) struct Timeline {
    pub from_ms: i64,
    pub until_ms: i64,
    pub tunnels: Vec<Series>,
}

/// One connection, as `/api/v1/connections/{vpn_id}` and its status page show it.
#[derive(Serialize)]
pub(super) struct ConnectionDetail {
    /// `None` when only the store knows the connection.
    pub connection: Option<ConnectionView>,
    pub timeline: Timeline,
    pub events: Vec<Value>,
    pub alarm_history: Vec<Value>,
    /// The SQL of `timeline`, `events` and `alarm_history`.
    pub sql: BTreeMap<&'static str, String>,
}

/// One connection's detail; 400 for an id that is not one, 404 for one nobody knows.
pub(super) async fn connection_detail(
    app: &AppState,
    vpn: &str,
) -> Result<ConnectionDetail, ApiError> {
    if !valid_vpn_id(vpn) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("{vpn:?} is not a VPN connection id (vpn-…)"),
        ));
    }
    let problems = problems(app, Some(vpn)).await?;
    let status = fleet_status(&app.shared);
    let alarms = alarm_instances(&app.shared).unwrap_or_default();
    let connection = fleet_view(&status, &alarms, &problems)
        .into_iter()
        .find(|c| *c.vpn_id == *vpn);
    let until = data_now(app);
    let v = sql_literal(vpn);
    let sql: BTreeMap<&'static str, String> = [
        (
            "timeline",
            format!(
                "SELECT tunnel_ip, CAST(ts AS BIGINT) AS ts_ms, sum / sample_count AS up \
                 FROM metrics WHERE metric_name = 'TunnelState' AND vpn_id = {v} \
                 AND tunnel_ip IS NOT NULL AND ts >= to_timestamp_millis({}) \
                 ORDER BY tunnel_ip, ts",
                until - DAY_MS
            ),
        ),
        (
            "events",
            format!(
                "SELECT CAST(ts AS BIGINT) AS ts_ms, tunnel_ip, table_name, \
                 CAST(message_kind AS VARCHAR) AS message_kind, \
                 CAST(severity AS VARCHAR) AS severity, details FROM (\
                   SELECT ts, tunnel_ip, 'tunnel_activity' AS table_name, message_kind, severity, \
                   details FROM tunnel_activity WHERE vpn_id = {v} \
                   UNION ALL SELECT ts, tunnel_ip, 'bgp_events' AS table_name, message_kind, \
                   severity, details FROM bgp_events WHERE vpn_id = {v}) \
                 ORDER BY ts DESC LIMIT 50"
            ),
        ),
        (
            "alarm_history",
            format!(
                "SELECT CAST(ts AS BIGINT) AS ts_ms, alarm_instance, tunnel_ip, old_state, \
                 new_state, reason FROM alarm_history WHERE vpn_id = {v} \
                 ORDER BY ts DESC LIMIT 20"
            ),
        ),
    ]
    .into_iter()
    .collect();
    let events = rows(app, &sql["events"]).await?;
    if connection.is_none() && events.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no connection {vpn} in the live view or the store"),
        ));
    }
    let alarm_history = rows(app, &sql["alarm_history"]).await?;
    let mut series: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for p in rows(app, &sql["timeline"]).await? {
        if let (Some(ip), Some(ts), Some(up)) = (
            p["tunnel_ip"].as_str(),
            p["ts_ms"].as_i64(),
            p["up"].as_f64(),
        ) {
            series.entry(ip.to_owned()).or_default().push((ts, up));
        }
    }
    Ok(ConnectionDetail {
        connection,
        timeline: Timeline {
            from_ms: until - DAY_MS,
            until_ms: until,
            tunnels: series
                .into_iter()
                .map(|(tunnel_ip, points)| Series { tunnel_ip, points })
                .collect(),
        },
        events,
        alarm_history,
        sql,
    })
}

/// `GET /api/v1/connections/{vpn_id}`.
async fn connection(State(app): State<AppState>, Path(vpn): Path<String>) -> Response {
    match connection_detail(&app, &vpn).await {
        Ok(d) => axum::Json(d).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct AlarmParams {
    state: Option<String>,
}

/// `GET /api/v1/alarms`.
async fn alarms(State(app): State<AppState>, Query(p): Query<AlarmParams>) -> Response {
    let instances = alarm_instances(&app.shared).unwrap_or_default();
    if let Some(s) = &p.state
        && !["OK", "ALARM", "INSUFFICIENT_DATA"].contains(&s.as_str())
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("state {s:?}: OK, ALARM or INSUFFICIENT_DATA"),
        );
    }
    let list: Vec<Value> = instances
        .iter()
        .filter(|i| p.state.as_deref().is_none_or(|s| i.state.as_str() == s))
        .map(|i| {
            json!({
                "alarm_name": &*i.alarm_name,
                "severity": i.severity.as_str(),
                "alarm_instance": &*i.instance_id,
                "vpn_id": &*i.vpn_id,
                "tunnel_ip": i.tunnel_ip.as_deref(),
                "state": i.state.as_str(),
                "since_ms": i.since,
                "reason": i.reason,
                "next_evaluation_ms": i.next_evaluation,
            })
        })
        .collect();
    axum::Json(json!({ "alarms": list })).into_response()
}

/// The current Health events: the newest version of each event and connection, without the
/// inferences an AWS event confirmed (docs/alarms.md).
const CURRENT_HEALTH: &str = "SELECT event_arn, event_type_code, origin, confirmed, vpn_id, tunnel_ip, \
       CAST(start_time AS BIGINT) AS start_ms, CAST(end_time AS BIGINT) AS end_ms, \
       CAST(last_updated_time AS BIGINT) AS last_updated_ms, status_code, matched_arn, description \
     FROM (SELECT *, row_number() OVER (PARTITION BY event_arn, vpn_id \
       ORDER BY coalesce(confirmed, false) DESC, last_updated_time DESC) AS version \
       FROM health_events) \
     WHERE version = 1 AND NOT (origin = 'tunnelwatch' AND coalesce(confirmed, false)) \
     ORDER BY start_time DESC";

/// `GET /api/v1/health`.
async fn health(State(app): State<AppState>) -> Response {
    match rows(&app, CURRENT_HEALTH).await {
        Ok(r) => axum::Json(json!({ "events": r, "sql": CURRENT_HEALTH })).into_response(),
        Err(r) => r.into_response(),
    }
}

/// The diagnosis of the stored records (one connection or all), computed on a plain thread:
/// the pipeline's reader runs its own runtime, which must not start inside this one.
pub(super) async fn diagnosis(
    app: &AppState,
    vpn: Option<String>,
) -> Result<tunnelwatch_pipeline::diagnose::FleetDiagnosis, ApiError> {
    if let Some(v) = &vpn
        && !valid_vpn_id(v)
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("{v:?} is not a VPN connection id (vpn-…)"),
        ));
    }
    let snapshot = app.shared.snapshot();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("diagnose".into())
        .spawn(move || {
            let _ = tx.send(tunnelwatch_pipeline::diagnose::diagnose(
                &snapshot,
                vpn.as_deref(),
                None,
                None,
            ));
        })
        .map_err(ApiError::internal)?;
    rx.await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// `GET /api/v1/diagnose`: the connections with trouble, most first.
async fn diagnose_fleet(State(app): State<AppState>) -> Response {
    match diagnosis(&app, None).await {
        Ok(d) => {
            let total = d.connections.len();
            let troubled: Vec<_> = d
                .connections
                .into_iter()
                .filter(|r| !r.diagnoses.is_empty())
                .collect();
            axum::Json(json!({
                "fleet_events": d.fleet_events,
                "connections": troubled,
                "connections_read": total,
                "sql": tunnelwatch_pipeline::diagnose::records_sql(None, None, None),
            }))
            .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /api/v1/diagnose/{vpn_id}`.
async fn diagnose_one(State(app): State<AppState>, Path(vpn): Path<String>) -> Response {
    match diagnosis(&app, Some(vpn.clone())).await {
        Ok(mut d) if !d.connections.is_empty() => axum::Json(json!({
            "connection": d.connections.remove(0),
            "sql": tunnelwatch_pipeline::diagnose::records_sql(Some(&vpn), None, None),
        }))
        .into_response(),
        Ok(_) => ApiError(StatusCode::NOT_FOUND, format!("no records of {vpn}")).into_response(),
        Err(e) => e.into_response(),
    }
}

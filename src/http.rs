//! The HTTP server of `demo` (and later `serve`): a status page, the read-only SQL endpoint and
//! `/metrics`.
//!
//! - `GET /` — status page: pipeline counters, each tunnel's latest IKE state, recent errors, a
//!   SQL box (`GET /?sql=…` runs it and shows the result as a table).
//! - `GET /api/query?sql=…&format=json|ndjson|csv` and `POST /api/query` (body: the SQL text) —
//!   the same guard as `tunnelwatch query`; 400 with `{"error": …}` for refused or bad SQL.
//! - `GET /metrics` — OpenMetrics text for Prometheus: pipeline self-metrics and the monitor's
//!   live tunnel state.
//! - `GET /healthz` — `ok`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tunnelwatch_exporters::prometheus::{self, PipelineStats, SourceStats};
use tunnelwatch_queries::{Engine, QueryOptions, QueryResult, StoreError, TableName};

use crate::output::{Output, render};
use tunnelwatch_pipeline::runner::{Shared, now_ms};

/// Limits for queries that arrive over HTTP.
fn query_options() -> QueryOptions {
    QueryOptions {
        memory_limit: 1 << 30,
        timeout: Duration::from_secs(60),
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/api/query", get(query_get).post(query_post))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(shared)
}

async fn run_sql(shared: &Shared, sql: &str) -> Result<QueryResult, StoreError> {
    let snapshot = shared.snapshot();
    let engine = Engine::open(&snapshot, query_options()).await?;
    engine.query(sql).await
}

#[derive(Deserialize)]
struct QueryParams {
    sql: Option<String>,
    format: Option<String>,
}

async fn query_get(State(shared): State<Arc<Shared>>, Query(p): Query<QueryParams>) -> Response {
    match p.sql {
        Some(sql) => answer(&shared, &sql, p.format.as_deref()).await,
        None => error(StatusCode::BAD_REQUEST, "missing the sql parameter"),
    }
}

async fn query_post(
    State(shared): State<Arc<Shared>>,
    Query(p): Query<QueryParams>,
    body: String,
) -> Response {
    answer(&shared, &body, p.format.as_deref()).await
}

async fn answer(shared: &Shared, sql: &str, format: Option<&str>) -> Response {
    let result = match run_sql(shared, sql).await {
        Ok(r) => r,
        Err(e @ (StoreError::Refused(_) | StoreError::DataFusion(_))) => {
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
        Err(e @ StoreError::Timeout(_)) => {
            return error(StatusCode::GATEWAY_TIMEOUT, &e.to_string());
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let output = match Output::parse(format.unwrap_or("json")) {
        Some(o @ (Output::Json | Output::Ndjson | Output::Csv)) => o,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "unknown format {:?}: json, ndjson or csv",
                    format.unwrap_or("")
                ),
            );
        }
    };
    match render(output, &result) {
        Ok(b) => ([(header::CONTENT_TYPE, output.content_type())], b).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
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
                refused: s.refused.load(Ordering::Relaxed),
                errors: s.errors.load(Ordering::Relaxed),
                open: s.open.load(Ordering::Relaxed),
                lag_seconds: seconds(s.last_event_ms.load(Ordering::Relaxed))
                    .map(|t| (now as f64 / 1000.0 - t).max(0.0)),
                last_checkpoint_seconds: seconds(s.last_checkpoint_ms.load(Ordering::Relaxed)),
                last_received_seconds: seconds(s.last_received_ms.load(Ordering::Relaxed)),
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
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let fleet = match shared.monitor.lock() {
        Ok(m) => m.status(),
        Err(p) => p.into_inner().status(),
    };
    let alarms = match shared.alarms.lock() {
        Ok(a) => a.as_ref().map(|e| e.instances()),
        Err(p) => p.into_inner().as_ref().map(|e| e.instances()),
    };
    let outbox = shared.notify.as_ref().map(|n| {
        let s = &n.outbox.stats;
        prometheus::OutboxCounts {
            pending: n.outbox.pending() as u64,
            sent: s.sent.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
        }
    });
    match prometheus::encode_with_alarms(
        &pipeline_stats(&shared),
        &fleet,
        alarms.as_deref(),
        outbox,
    ) {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Status page

const STATE_SQL: &str = "WITH l AS (
  SELECT vpn_id, tunnel_ip, ts, ike_phase1_state, ike_phase2_state, message_kind, severity,
         row_number() OVER (PARTITION BY vpn_id, tunnel_ip ORDER BY ts DESC, source_offset DESC) AS rn
  FROM tunnel_activity)
SELECT vpn_id, tunnel_ip, ts AS last_record, ike_phase1_state, ike_phase2_state, message_kind
FROM l WHERE rn = 1 ORDER BY vpn_id, tunnel_ip";

const ERRORS_SQL: &str = "SELECT ts, vpn_id, tunnel_ip, message_kind, details FROM (
  SELECT ts, vpn_id, tunnel_ip, message_kind, details FROM tunnel_activity WHERE severity = 'error'
  UNION ALL
  SELECT ts, vpn_id, tunnel_ip, message_kind, details FROM bgp_events WHERE severity = 'error')
ORDER BY ts DESC LIMIT 15";

const EXAMPLE_SQL: &str = "SELECT vpn_id, message_kind, count(*) AS n FROM tunnel_activity WHERE severity <> 'info' GROUP BY 1, 2 ORDER BY n DESC";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_table(result: &QueryResult) -> String {
    let mut out = String::from("<table><thead><tr>");
    for f in result.schema.fields() {
        out.push_str(&format!("<th>{}</th>", escape(f.name())));
    }
    out.push_str("</tr></thead><tbody>");
    let opts = arrow::util::display::FormatOptions::default().with_null("");
    for b in &result.batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        for row in 0..b.num_rows() {
            out.push_str("<tr>");
            for f in &formatters {
                let cell = f.value(row).to_string();
                let class = match cell.as_str() {
                    "down" | "error" => " class=bad",
                    "established" => " class=good",
                    _ => "",
                };
                out.push_str(&format!("<td{class}>{}</td>", escape(&cell)));
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</tbody></table>");
    out
}

async fn section(shared: &Shared, title: &str, sql: &str) -> String {
    match run_sql(shared, sql).await {
        Ok(r) if r.num_rows() == 0 => format!("<h2>{title}</h2><p>No rows yet.</p>"),
        Ok(r) => format!("<h2>{title}</h2>{}", html_table(&r)),
        Err(e) => format!(
            "<h2>{title}</h2><pre class=bad>{}</pre>",
            escape(&e.to_string())
        ),
    }
}

async fn status_page(
    State(shared): State<Arc<Shared>>,
    Query(p): Query<QueryParams>,
) -> Html<String> {
    let c = &shared.counters;
    let records = c.records.load(Ordering::Relaxed);
    let rejects = c.rejects.load(Ordering::Relaxed);
    let last = c.last_event_ms.load(Ordering::Relaxed);
    let rows: Vec<String> = [
        TableName::TunnelActivity,
        TableName::BgpEvents,
        TableName::Traffic,
        TableName::Rejects,
    ]
    .iter()
    .map(|t| {
        format!(
            "<td>{}</td><td>{}</td>",
            t.as_str(),
            c.rows[*t as usize].load(Ordering::Relaxed)
        )
    })
    .collect();
    let sql = p.sql.clone().unwrap_or_default();
    let result = if sql.trim().is_empty() {
        String::new()
    } else {
        section(&shared, "Result", &sql).await
    };
    let refresh = if sql.is_empty() {
        "<meta http-equiv=refresh content=10>"
    } else {
        ""
    };
    let states = section(&shared, "Tunnels (latest IKE state)", STATE_SQL).await;
    let errors = section(&shared, "Recent errors", ERRORS_SQL).await;
    Html(format!(
        r#"<!doctype html><html><head><meta charset=utf-8>{refresh}<title>tunnelwatch</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; font-size: 90%; }}
td, th {{ border: 1px solid #ccc; padding: .2em .6em; text-align: left; }}
th {{ background: #f0f0f0; }}
.bad {{ color: #b00; font-weight: bold; }} .good {{ color: #070; }}
textarea {{ width: 100%; font-family: monospace; }}
code {{ background: #f4f4f4; padding: .1em .3em; }}
</style></head><body>
<h1>tunnelwatch</h1>
<p>{description}</p>
<p>Running since {since} · data directory <code>{data}</code> · {records} records received · {rejects} rejected ·
newest event {newest} · <a href="/metrics">/metrics</a> · SQL API: <code>curl --data-binary @query.sql {{this host}}/api/query</code></p>
<table><tr>{rows}</tr></table>
<form method=get action="/"><textarea name=sql rows=4 placeholder="{example}">{sql}</textarea><br><button>Run SQL</button> (read-only; tables: tunnel_activity, bgp_events, traffic, rejects, metrics, alarm_history, health_events)</form>
{result}
{states}
{errors}
</body></html>"#,
        description = escape(&shared.description),
        since = tunnelwatch_parsers::time::format_ms(shared.started_ms),
        data = escape(&shared.data.display().to_string()),
        newest = if last > 0 {
            tunnelwatch_parsers::time::format_ms(last)
        } else {
            "—".to_owned()
        },
        rows = rows.join(""),
        example = escape(EXAMPLE_SQL),
        sql = escape(&sql),
    ))
}

//! `GET /`: the status page — pipeline counters, each tunnel's latest IKE state, recent errors
//! and a SQL box (`GET /?sql=…` runs it through the read-only guard and shows a table). When
//! an API token is configured the SQL box is off (a browser cannot send the bearer token).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::Html;
use tunnelwatch_queries::{QueryResult, TableName};

use super::{AppState, QueryParams, run_sql};
use tunnelwatch_pipeline::runner::Shared;

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

async fn section(app: &AppState, title: &str, sql: &str) -> String {
    match run_sql(app, sql).await {
        Ok(r) if r.num_rows() == 0 => format!("<h2>{title}</h2><p>No rows yet.</p>"),
        Ok(r) => format!("<h2>{title}</h2>{}", html_table(&r)),
        Err(e) => format!(
            "<h2>{title}</h2><pre class=bad>{}</pre>",
            escape(&e.to_string())
        ),
    }
}

pub(super) async fn status_page(
    State(app): State<AppState>,
    Query(p): Query<QueryParams>,
) -> Html<String> {
    let shared: Arc<Shared> = app.shared.clone();
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
    let sql = if app.settings.token.is_some() {
        String::new()
    } else {
        p.sql.clone().unwrap_or_default()
    };
    let result = if sql.trim().is_empty() {
        String::new()
    } else {
        section(&app, "Result", &sql).await
    };
    let refresh = if sql.is_empty() {
        "<meta http-equiv=refresh content=10>"
    } else {
        ""
    };
    let states = section(&app, "Tunnels (latest IKE state)", STATE_SQL).await;
    let errors = section(&app, "Recent errors", ERRORS_SQL).await;
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
newest event {newest} · <a href="/metrics">/metrics</a> · SQL API: <code>curl --data-binary @query.sql {{this host}}/api/v1/query</code> · <a href="/api/v1/connections">/api/v1/connections</a></p>
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

//! The status page, server-rendered with `maud` (escaped by construction, no JavaScript):
//!
//! - `GET /` — the fleet: connections in trouble first, each tunnel's state and time in state,
//!   the last error kind, alarms firing; pipeline counters; recent errors; a SQL box
//!   (`GET /?sql=…` runs it through the read-only guard and shows a table). It reloads every
//!   10 s (not while it shows a SQL result).
//! - `GET /connections/{vpn_id}` — one connection: its tunnels, their TunnelState over the last
//!   24 hours of data as an inline SVG chart, its diagnoses (root cause, evidence, remedy, and
//!   with the customer gateway's logs stored the side to fix and the gateway's own lines), the
//!   IKE/BGP events, the alarm history, and the SQL that reproduces each part.
//!
//! With an API token configured the SQL box is off (a browser cannot send the bearer token)
//! and the pages show only the live view and fixed queries.

use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;
use tunnelwatch_monitor::alarm::AlarmSeverity;
use tunnelwatch_parsers::time::format_ms;
use tunnelwatch_pipeline::fleet::{ConnectionState, ConnectionView, TunnelView};
use tunnelwatch_queries::{QueryResult, TableName};

use super::api::{ConnectionDetail, Timeline, connection_detail, data_now, fleet, state_name};
use super::{AppState, QueryParams, run_sql};

const ERRORS_SQL: &str = "SELECT ts, vpn_id, tunnel_ip, message_kind, details FROM (
  SELECT ts, vpn_id, tunnel_ip, message_kind, details FROM tunnel_activity WHERE severity = 'error'
  UNION ALL
  SELECT ts, vpn_id, tunnel_ip, message_kind, details FROM bgp_events WHERE severity = 'error')
ORDER BY ts DESC LIMIT 15";

const EXAMPLE_SQL: &str = "SELECT vpn_id, message_kind, count(*) AS n FROM tunnel_activity WHERE severity <> 'info' GROUP BY 1, 2 ORDER BY n DESC";

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #1d2430; background: #fafbfc; }
a { color: #0b5cad; text-decoration: none; } a:hover { text-decoration: underline; }
h1 { margin: 0 0 .2em; font-size: 1.6em; } h2 { margin: 1.4em 0 .4em; font-size: 1.15em; }
.sub { color: #5a6475; margin: 0 0 1em; }
.cards { display: flex; gap: .8em; flex-wrap: wrap; margin: .8em 0; }
.card { background: #fff; border: 1px solid #dde2ea; border-radius: 6px; padding: .5em .9em; min-width: 7em; }
.card b { display: block; font-size: 1.5em; }
table { border-collapse: collapse; background: #fff; font-size: 90%; margin: .3em 0 1em; }
td, th { border-bottom: 1px solid #e5e9f0; padding: .3em .7em; text-align: left; vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; }
.pill { display: inline-block; border-radius: 1em; padding: 0 .6em; font-size: 85%; font-weight: 600; }
.up { background: #d9f2e1; color: #11602f; } .down { background: #fbdcdc; color: #8d1414; }
.degraded { background: #fdebc8; color: #7a4b00; } .unknown { background: #e6e9ee; color: #4a5261; }
.bad { color: #a31515; font-weight: 600; } .muted { color: #6b7585; }
.sev-critical { color: #a31515; font-weight: 600; } .sev-warning { color: #8a5300; font-weight: 600; }
.sev-info { color: #4a5261; }
textarea { width: 100%; max-width: 60em; font-family: ui-monospace, monospace; }
pre { background: #f4f6f9; padding: .6em; overflow-x: auto; max-width: 90em; white-space: pre-wrap; }
svg { background: #fff; border: 1px solid #dde2ea; border-radius: 6px; }
.diag { background: #fff; border-left: 4px solid #a31515; padding: .1em .9em; margin: .5em 0; max-width: 80em; }
";

fn page(title: &str, refresh: bool, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    @if refresh { meta http-equiv="refresh" content="10"; }
                    title { (title) " · tunnelwatch" }
                    style { (PreEscaped(STYLE)) }
                }
                body { (body) }
            }
        }
        .into_string(),
    )
}

/// `3 h 12 min`, `45 s`.
fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

fn state_pill(s: ConnectionState) -> Markup {
    let name = state_name(s);
    html! { span class={"pill " (name)} { (name) } }
}

fn tunnel_cell(t: &TunnelView, now: i64, with_ip: bool) -> Markup {
    let (class, word) = match t.up {
        Some(true) => ("up", "up"),
        Some(false) => ("down", "down"),
        None => ("unknown", "unknown"),
    };
    html! {
        span class={"pill " (class)} { (word) } " "
        @if with_ip { span class="muted" { (t.tunnel_ip.as_ref()) } }
        @if let Some(since) = t.since_ms { br; span class="muted" { "for " (duration(now - since)) } }
    }
}

fn fleet_table(connections: &[ConnectionView], now: i64) -> Markup {
    html! {
        table #fleet {
            thead { tr {
                th { "Connection" } th { "State" } th { "Routing" } th { "Tunnel 1" } th { "Tunnel 2" }
                th { "Last error or warning" } th { "Alarms firing" }
            } }
            tbody {
                @for c in connections {
                    tr data-vpn-id=(c.vpn_id.as_ref()) {
                        td { a href={"/connections/" (c.vpn_id.as_ref())} { (c.vpn_id.as_ref()) } }
                        td { (state_pill(c.state)) }
                        td { (c.routing) }
                        @for i in 0..2 {
                            td { @if let Some(t) = c.tunnels.get(i) { (tunnel_cell(t, now, true)) } }
                        }
                        td {
                            @if let Some(p) = &c.last_problem {
                                span class="bad" { (p.message_kind) }
                                br; span class="muted" { (duration(now - p.ts_ms)) " ago"
                                    @if let Some(ip) = &p.tunnel_ip { " on " (ip.as_ref()) } }
                            }
                        }
                        td {
                            @for a in &c.alarms_firing {
                                span class={"sev-" (a.severity.as_str())} { (a.alarm_name.as_ref()) }
                                @if let Some(ip) = &a.tunnel_ip { " " span class="muted" { (ip.as_ref()) } }
                                br;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A query result as a table (cells as arrow formats them).
fn result_table(result: &QueryResult) -> Markup {
    let opts = arrow::util::display::FormatOptions::default().with_null("");
    html! {
        table {
            thead { tr { @for f in result.schema.fields() { th { (f.name()) } } } }
            tbody {
                @for b in &result.batches {
                    @let formatters: Vec<_> = b.columns().iter()
                        .filter_map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts).ok())
                        .collect();
                    @for row in 0..b.num_rows() {
                        tr { @for f in &formatters {
                            @let cell = f.value(row).to_string();
                            td class=[matches!(cell.as_str(), "down" | "error").then_some("bad")] { (cell) }
                        } }
                    }
                }
            }
        }
    }
}

async fn section(app: &AppState, title: &str, sql: &str) -> Markup {
    let result = run_sql(app, sql).await;
    html! {
        h2 { (title) }
        @match result {
            Ok(r) if r.num_rows() == 0 => p class="muted" { "No rows yet." },
            Ok(r) => (result_table(&r)),
            Err(e) => pre class="bad" { (e.to_string()) },
        }
    }
}

/// The newest event time seen (what "ago" and "for" count from), else the wall clock.
/// It follows the wall clock for up to 5 minutes after the newest event.
fn now_of(app: &AppState) -> i64 {
    let t = data_now(app);
    t.max(tunnelwatch_pipeline::runner::now_ms().min(t + 300_000))
}

/// `GET /`.
pub(super) async fn status_page(
    State(app): State<AppState>,
    Query(p): Query<QueryParams>,
) -> Response {
    let shared = &app.shared;
    let c = &shared.counters;
    let sql_allowed = app.settings.token.is_none();
    let sql = if sql_allowed {
        p.sql.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let result = if sql.trim().is_empty() {
        None
    } else {
        Some(section(&app, "Result", &sql).await)
    };
    let fleet = fleet(&app).await;
    let errors = section(&app, "Recent errors", ERRORS_SQL).await;
    let now = now_of(&app);
    let last = c.last_event_ms.load(Ordering::Relaxed);
    let count = |info: bool| {
        fleet.as_ref().map_or(0, |f| {
            f.connections
                .iter()
                .flat_map(|c| &c.alarms_firing)
                .filter(|a| (a.severity == AlarmSeverity::Info) == info)
                .count()
        })
    };
    let (firing, info_firing) = (count(false), count(true));
    let body = html! {
        h1 { "tunnelwatch" }
        p class="sub" {
            (shared.description) " · running since " (format_ms(shared.started_ms))
            " · data " code { (shared.data.display().to_string()) }
            " · newest event " @if last > 0 { (format_ms(last)) } @else { "—" }
        }
        div class="cards" {
            @if let Ok(f) = &fleet {
                @for (name, n) in &f.counts { div class="card" { b { (n) } (name) } }
            }
            div class="card" { b class=[(firing > 0).then_some("bad")] { (firing) } "alarms firing" }
            div class="card" { b { (info_firing) } "info alarms" }
            div class="card" { b { (c.records.load(Ordering::Relaxed)) } "records" }
            div class="card" { b class=[(c.rejects.load(Ordering::Relaxed) > 0).then_some("bad")] { (c.rejects.load(Ordering::Relaxed)) } "rejects" }
            @for t in [TableName::TunnelActivity, TableName::BgpEvents, TableName::Traffic] {
                div class="card" { b { (c.rows[t as usize].load(Ordering::Relaxed)) } (t.as_str()) }
            }
        }
        p {
            a href="/metrics" { "/metrics" } " · "
            a href="/api/v1/connections" { "/api/v1/connections" } " · "
            a href="/api/v1/alarms" { "/api/v1/alarms" } " · "
            a href="/api/v1/health" { "/api/v1/health" }
        }
        @if let Some(r) = result { (r) }
        h2 { "Connections" }
        @match &fleet {
            Ok(f) if f.connections.is_empty() => p class="muted" { "No connection has logged yet." },
            Ok(f) => (fleet_table(&f.connections, now)),
            Err(e) => pre class="bad" { (e.1) },
        }
        (errors)
        @if sql_allowed {
            h2 { "SQL" }
            form method="get" action="/" {
                textarea name="sql" rows="4" placeholder=(EXAMPLE_SQL) { (sql) }
                br;
                button { "Run SQL" }
                " read-only; tables: tunnel_activity, bgp_events, traffic, gateway_events, rejects, metrics, alarm_history, health_events"
            }
        }
    };
    page("Fleet", sql.is_empty(), body).into_response()
}

/// The tunnels' TunnelState over the timeline as an SVG chart: one band per tunnel, the up
/// fraction per minute as a step line, down minutes shaded.
fn timeline_svg(t: &Timeline) -> Markup {
    const W: f64 = 960.0;
    const LEFT: f64 = 130.0;
    const ROW: f64 = 56.0;
    const TOP: f64 = 10.0;
    let span = (t.until_ms - t.from_ms).max(1) as f64;
    let x = |ms: i64| LEFT + ((ms - t.from_ms) as f64 / span).clamp(0.0, 1.0) * (W - LEFT - 10.0);
    let height = TOP + ROW * t.tunnels.len().max(1) as f64 + 24.0;
    let hours: Vec<i64> = {
        let step = 3 * 3_600_000;
        let first = (t.from_ms / step + 1) * step;
        (0..)
            .map(|k| first + k * step)
            .take_while(|h| *h <= t.until_ms)
            .collect()
    };
    html! {
        svg #timeline xmlns="http://www.w3.org/2000/svg" width=(W) height=(height)
            viewBox={"0 0 " (W) " " (height)} role="img" aria-label="TunnelState over the last 24 hours" {
            @for h in &hours {
                line x1=(x(*h)) x2=(x(*h)) y1=(TOP) y2=(height - 20.0) stroke="#e5e9f0" {}
                text x=(x(*h)) y=(height - 6.0) font-size="11" text-anchor="middle" fill="#6b7585" {
                    (format_ms(*h).get(11..16).unwrap_or(""))
                }
            }
            @for (i, s) in t.tunnels.iter().enumerate() {
                @let top = TOP + ROW * i as f64;
                @let y = |up: f64| top + 6.0 + (1.0 - up.clamp(0.0, 1.0)) * (ROW - 22.0);
                text x="6" y=(top + ROW / 2.0) font-size="12" fill="#1d2430" { (s.tunnel_ip) }
                text x="6" y=(top + ROW / 2.0 + 14.0) font-size="10" fill="#6b7585" { "up ↑ down ↓" }
                @for (ts, up) in &s.points {
                    @if *up < 1.0 {
                        rect x=(x(*ts)) y=(top + 4.0) width=((x(ts + 60_000) - x(*ts)).max(0.5)) height=(ROW - 18.0)
                            fill="#fbdcdc" {}
                    }
                }
                @for run in runs(&s.points) {
                    polyline fill="none" stroke="#11602f" stroke-width="1.5"
                        points=(run.iter().map(|(ts, up)| format!("{:.1},{:.1} {:.1},{:.1}", x(*ts), y(*up), x(ts + 60_000), y(*up))).collect::<Vec<_>>().join(" ")) {}
                }
            }
        }
    }
}

/// The points cut where a minute is missing (a gap in the line, not a slope).
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].0 != points[i - 1].0 + 60_000 {
            if i > start {
                out.push(&points[start..i]);
            }
            start = i;
        }
    }
    out
}

fn rows_table(rows: &[Value], columns: &[&str]) -> Markup {
    html! {
        table {
            thead { tr { @for c in columns { th { (c) } } } }
            tbody {
                @for r in rows {
                    tr { @for c in columns {
                        @let v = &r[*c];
                        @let text = match (c.ends_with("_ms"), v) {
                            (true, Value::Number(n)) => n.as_i64().map(format_ms).unwrap_or_default(),
                            (_, Value::String(s)) => s.clone(),
                            (_, Value::Null) => String::new(),
                            (_, other) => other.to_string(),
                        };
                        td class=[matches!(text.as_str(), "error" | "ALARM").then_some("bad")] { (text) }
                    } }
                }
            }
        }
    }
}

/// `GET /connections/{vpn_id}`.
pub(super) async fn connection_page(
    State(app): State<AppState>,
    Path(vpn): Path<String>,
) -> Response {
    let detail: ConnectionDetail = match connection_detail(&app, &vpn).await {
        Ok(d) => d,
        Err(e) => {
            let status = e.0;
            let body = html! { h1 { "tunnelwatch" } p class="bad" { (e.1) } p { a href="/" { "← the fleet" } } };
            return (status, page("Not found", false, body)).into_response();
        }
    };
    let now = now_of(&app);
    let diagnosis = super::api::diagnosis(&app, Some(vpn.clone())).await;
    let body = html! {
        p { a href="/" { "← the fleet" } }
        h1 { (vpn) " "
            @if let Some(c) = &detail.connection { (state_pill(c.state)) } }
        @if let Some(c) = &detail.connection {
            p class="sub" { (c.routing) " routing"
                @if let Some(id) = &c.concentrator_id { " · concentrator " (id.as_ref()) }
                @if !c.alarms_firing.is_empty() { " · " span class="bad" { (c.alarms_firing.len()) " alarm(s) firing" } } }
            table {
                thead { tr { th { "Tunnel" } th { "State" } th { "IKE phase 1" } th { "IKE phase 2" } th { "BGP" } th { "Bytes in" } th { "Bytes out" } } }
                tbody { @for t in &c.tunnels {
                    tr {
                        td { (t.tunnel_ip.as_ref()) }
                        td { (tunnel_cell(t, now, false)) }
                        td { (updown(t.phase1_up)) } td { (updown(t.phase2_up)) }
                        td { @match t.bgp_established { Some(true) => "established", Some(false) => "not established", None => "—" } }
                        td { (t.bytes_in_total) } td { (t.bytes_out_total) }
                    }
                } }
            }
        } @else {
            p class="muted" { "Not in the live view (only stored records know it)." }
        }
        h2 { "Diagnosis" }
        @match &diagnosis {
            Ok(fd) if fd.connections.first().is_some_and(|r| !r.diagnoses.is_empty()) => {
                @for d in &fd.connections[0].diagnoses {
                    div class="diag" {
                        p {
                            span class=[d.tunnel_down.then_some("bad")] { (d.title) }
                            " · tunnel " (d.tunnel_ip.as_ref())
                            " · " (format_ms(d.from_ms)) " – " (d.until_ms.map(format_ms).unwrap_or_else(|| "now".into()))
                            " · confidence " (format!("{:.0} %", d.confidence * 100.0))
                            @if d.episodes > 1 { " · " (d.episodes) " episodes" }
                            @if let Some(up) = d.recurs_after_ms { " · each after " (up / 60_000) " min up" }
                        }
                        p class="muted" {
                            "Evidence: "
                            @for (i, e) in d.evidence.iter().enumerate() {
                                @if i > 0 { ", " }
                                (e.message_kind) " ×" (e.count)
                            }
                        }
                        p { "What to do: " (d.remedy) }
                        @if let Some(g) = &d.gateway {
                            p class="fix" {
                                "Fix on: " strong { (g.side.as_str()) } " — " (g.verdict)
                            }
                            @if !g.evidence.is_empty() {
                                ul class="muted gateway" {
                                    @for e in &g.evidence {
                                        li { (e.daemon.as_ref()) " " code { (e.gateway_kind) } " ×" (e.count) ": " (e.example.as_ref()) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Ok(_) => p class="muted" { "No trouble found in the stored records." },
            Err(e) => pre class="bad" { (e.1) },
        }
        h2 { "TunnelState, last 24 hours" }
        @if detail.timeline.tunnels.is_empty() {
            p class="muted" { "No TunnelState minutes stored for this window yet." }
        } @else {
            (timeline_svg(&detail.timeline))
            p class="muted" { (format_ms(detail.timeline.from_ms)) " to " (format_ms(detail.timeline.until_ms)) " (UTC); shaded: minutes not fully up" }
        }
        h2 { "Recent IKE and BGP events" }
        (rows_table(&detail.events, &["ts_ms", "tunnel_ip", "table_name", "message_kind", "severity", "details"]))
        h2 { "Alarm history" }
        @if detail.alarm_history.is_empty() { p class="muted" { "No transitions." } }
        @else { (rows_table(&detail.alarm_history, &["ts_ms", "alarm_instance", "old_state", "new_state", "reason"])) }
        h2 { "The SQL behind this page" }
        @for (name, sql) in &detail.sql {
            details { summary { (name) } pre { (sql) } }
        }
    };
    (StatusCode::OK, page(&vpn, true, body)).into_response()
}

fn updown(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "up",
        Some(false) => "down",
        None => "—",
    }
}

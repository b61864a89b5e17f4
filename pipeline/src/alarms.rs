//! `alarms test`: evaluates alarm definitions over the stored `metrics` table and returns the
//! state transitions they would have produced, sending nothing (the preview of what an alarm
//! would have done on last week's data).
//!
//! Owns: reading the stored datapoints (one pass, any order: the evaluator keeps each
//! instance's periods) and choosing how far to evaluate. Evaluation stops at the end of the
//! last stored minute (or `until`, if earlier): past the data every period would be missing, and
//! `treat_missing_data = "breaching"` would raise alarms the data never showed.
//!
//! Also: [`history_rows`], transitions as `alarm_history` rows (what `serve` and `demo` store
//! as minutes complete).
//!
//! Limits: every instance's periods inside the window are held in memory until the end (about
//! one aggregate per period per instance).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use tunnelwatch_monitor::MetricName;
use tunnelwatch_monitor::alarm::{AlarmDefinition, AlarmEvaluator, InstanceStatus, Transition};
use tunnelwatch_monitor::health::{HealthEvent, single_tunnel_events};
use tunnelwatch_parsers::MessageKind;
use tunnelwatch_queries::{Snapshot, TableName};

use crate::error::PipelineError;
use crate::metrics::stored_datapoints_of_metrics;

/// What the alarms would have done.
#[derive(Debug)]
pub struct Preview {
    /// Every transition, in time order.
    pub transitions: Vec<Transition>,
    /// Each instance's state at `evaluated_until`.
    pub instances: Vec<InstanceStatus>,
    /// Stored datapoints read in the window.
    pub datapoints: u64,
    /// The first and last stored minute read (epoch ms), if any.
    pub data_range: Option<(i64, i64)>,
    /// The time evaluation ran up to (epoch ms).
    pub evaluated_until: Option<i64>,
    /// The Health events the TunnelState minutes give (single-tunnel, then inferred endpoint
    /// replacements).
    pub health: Vec<HealthEvent>,
}

/// Evaluates `alarms` over the datapoints stored in `since..until`.
pub fn preview(
    snapshot: &Snapshot,
    alarms: Vec<AlarmDefinition>,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Preview, PipelineError> {
    let mut names = metric_names(&alarms);
    if !names.contains(&MetricName::TunnelState.as_str()) {
        names.push(MetricName::TunnelState.as_str());
    }
    let mut evaluator = AlarmEvaluator::new(alarms)?;
    let mut datapoints = 0u64;
    let mut range: Option<(i64, i64)> = None;
    let mut tunnel_states = Vec::new();
    for batch in stored_datapoints_of_metrics(snapshot, &names, since, until)? {
        for p in batch? {
            datapoints += 1;
            range = Some(range.map_or((p.ts, p.ts), |(a, b)| (a.min(p.ts), b.max(p.ts))));
            evaluator.push(&p);
            if p.metric == MetricName::TunnelState && p.tunnel_ip.is_some() {
                tunnel_states.push(p);
            }
        }
    }
    let evaluated_until = range.map(|(_, last)| {
        let end = last + 60_000;
        until.map_or(end, |u| u.min(end))
    });
    let mut transitions = match evaluated_until {
        Some(t) => evaluator.evaluate(t),
        None => Vec::new(),
    };
    transitions.sort_by(|a, b| (a.ts, &a.instance_id).cmp(&(b.ts, &b.instance_id)));
    let health = match evaluated_until {
        Some(t) => health_events(snapshot, &tunnel_states, since, t)?,
        None => Vec::new(),
    };
    Ok(Preview {
        health,
        transitions,
        instances: evaluator.instances(),
        datapoints,
        data_range: range,
        evaluated_until,
    })
}

/// The `metric_name`s the definitions read (each once).
fn metric_names(alarms: &[AlarmDefinition]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for a in alarms {
        if let Ok(m) = a.metric_name()
            && !names.contains(&m.as_str())
        {
            names.push(m.as_str());
        }
    }
    names
}

/// Transitions as `alarm_history` rows.
pub fn history_rows(transitions: &[Transition]) -> RecordBatch {
    let text = |f: &dyn Fn(&Transition) -> Option<String>| -> ArrayRef {
        Arc::new(transitions.iter().map(f).collect::<StringArray>())
    };
    let ts = TimestampMillisecondArray::from_iter_values(transitions.iter().map(|t| t.ts))
        .with_timezone("UTC");
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ts),
        text(&|t| Some(t.alarm_name.to_string())),
        text(&|t| Some(t.instance_id.to_string())),
        text(&|t| Some(t.vpn_id.to_string())),
        text(&|t| t.tunnel_ip.as_deref().map(str::to_owned)),
        text(&|t| Some(t.old_state.as_str().to_owned())),
        text(&|t| Some(t.new_state.as_str().to_owned())),
        text(&|t| Some(t.reason.clone())),
        text(&|t| Some(t.reason_data.clone())),
    ];
    RecordBatch::try_new(TableName::AlarmHistory.schema(), columns)
        .expect("the columns follow the alarm_history schema")
}

/// The probable cause of a transition into ALARM: the error and warning message kinds of the
/// instance's tunnel (or connection) in the `window_ms` before it, newest first (at most 3).
pub fn probable_cause(
    snapshot: &Snapshot,
    t: &Transition,
    window_ms: i64,
) -> Result<Vec<String>, PipelineError> {
    let quote = |s: &str| s.replace('\'', "''");
    let mut filter = format!(
        "vpn_id = '{}' AND severity IN ('error', 'warning') AND ts <= to_timestamp_millis({}) \
         AND ts > to_timestamp_millis({})",
        quote(&t.vpn_id),
        t.ts,
        t.ts - window_ms
    );
    if let Some(ip) = &t.tunnel_ip {
        filter.push_str(&format!(" AND tunnel_ip = '{}'", quote(ip)));
    }
    let sql = format!(
        "SELECT message_kind, max(ts) AS last FROM (\
           SELECT message_kind, ts FROM tunnel_activity WHERE {filter} \
           UNION ALL SELECT message_kind, ts FROM bgp_events WHERE {filter}) \
         GROUP BY message_kind ORDER BY last DESC, message_kind LIMIT 3"
    );
    let mut batches = crate::metrics::Batches::open(snapshot, &sql)?;
    let mut kinds = Vec::new();
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let column = batch.column(0);
        let strings = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)?;
        let strings = strings
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8 gives a StringArray");
        kinds.extend(strings.iter().flatten().map(str::to_owned));
    }
    Ok(kinds)
}

/// What [`catch_up`] did.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// Instances restored from the state file.
    pub restored: usize,
    /// New transitions (recorded in `alarm_history`), in time order.
    pub transitions: Vec<Transition>,
    /// Notifications written to the outbox.
    pub queued: usize,
    /// New `health_events` rows.
    pub health_rows: usize,
    /// The time alarms were evaluated up to (the end of the last stored minute).
    pub evaluated_until: Option<i64>,
}

/// Brings alarms and Health up to the last stored minute after a one-shot ingest (DESIGN §7):
/// the instances of the state file go on where the last run left them (`Resume::Continue`,
/// fed the stored datapoints of their ranges again), transitions after the saved
/// `evaluated_until` are appended to `alarm_history` and queued for their notifiers, Health
/// events not stored yet are appended to `health_events`, and the state file is saved. Run
/// twice over the same data, the second run records and queues nothing.
///
/// Limits: data ingested for times before the saved `evaluated_until` does not change past
/// evaluations (`alarms test` shows what it would have done); a tunnel first seen in such
/// data is evaluated from the earliest saved range on.
pub fn catch_up(
    store: &mut tunnelwatch_queries::Store,
    alarms: Vec<AlarmDefinition>,
    notify: Option<&crate::runner::Notify>,
) -> Result<CatchUp, PipelineError> {
    use tunnelwatch_monitor::alarm::Resume;
    let data = store.root().to_owned();
    let mut file = crate::alarm_state::load(&data)?.unwrap_or_default();
    let names = metric_names(&alarms);
    let mut evaluator = AlarmEvaluator::new(alarms)?;
    let restored = evaluator.restore(&file.alarms, Resume::Continue);
    let snapshot = Snapshot::read(&data)?;
    let since = evaluator.resume_from();
    // Single-tunnel events are per calendar month: read TunnelState back far enough to hold
    // the whole previous month (which may close now) and the current one. One pass reads both
    // what the alarms need (from `since`) and the TunnelState minutes Health needs.
    let health_since = since.map(|t| t - 62 * 86_400_000);
    let mut read = names.clone();
    if !read.contains(&MetricName::TunnelState.as_str()) {
        read.push(MetricName::TunnelState.as_str());
    }
    let mut last: Option<i64> = None;
    let mut tunnel_states = Vec::new();
    for batch in stored_datapoints_of_metrics(&snapshot, &read, health_since, None)? {
        for p in batch? {
            last = Some(last.map_or(p.ts, |l| l.max(p.ts)));
            if names.contains(&p.metric.as_str()) && since.is_none_or(|s| p.ts >= s) {
                evaluator.push(&p);
            }
            if p.metric == MetricName::TunnelState && p.tunnel_ip.is_some() {
                tunnel_states.push(p);
            }
        }
    }
    let Some(last) = last else {
        return Ok(CatchUp {
            restored,
            ..Default::default()
        });
    };
    let until = last + 60_000;
    let done = file.evaluated_until.unwrap_or(i64::MIN);
    let mut transitions: Vec<Transition> = evaluator
        .evaluate(until)
        .into_iter()
        .filter(|t| t.ts > done)
        .collect();
    transitions.sort_by(|a, b| (a.ts, &a.instance_id).cmp(&(b.ts, &b.instance_id)));

    let health = health_events(&snapshot, &tunnel_states, health_since, until)?;
    let (health_batch, new_keys) = health_rows(&health, &file.health_rows);
    let mut batches = Vec::new();
    if !transitions.is_empty() {
        batches.push((TableName::AlarmHistory, history_rows(&transitions)));
    }
    let health_count = health_batch.num_rows();
    if health_count > 0 {
        batches.push((TableName::HealthEvents, health_batch));
    }
    if !batches.is_empty() {
        store.append(batches, None)?;
        store.flush()?;
    }
    // Probable causes come from tunnel_activity and bgp_events, which the rows just appended do
    // not touch: the snapshot read above answers them.
    let queued = match notify {
        Some(n) => n.enqueue_with(&transitions, &|t, window| {
            probable_cause(&snapshot, t, window).unwrap_or_default()
        }),
        None => 0,
    };
    let health_keys = match notify {
        Some(n) => n.enqueue_health(&health, until, &file.health_notified),
        None => Vec::new(),
    };
    let queued = queued + health_keys.len() * notify.map_or(0, |n| n.health_notify.len());
    file.health_notified.extend(health_keys);
    file.health_rows.extend(new_keys);
    file.alarms = evaluator.save();
    file.evaluated_until = Some(until.max(done));
    file.saved_ms = crate::runner::now_ms();
    crate::alarm_state::save(&data, &file)?;
    Ok(CatchUp {
        restored,
        transitions,
        queued,
        health_rows: health_count,
        evaluated_until: Some(until),
    })
}

/// The Health events of the tunnel-level TunnelState minutes `tunnel_states` as of `now_ms`:
/// single-tunnel, then inferred endpoint replacements (with the configuration errors stored
/// since `since`).
fn health_events(
    snapshot: &Snapshot,
    tunnel_states: &[tunnelwatch_monitor::Datapoint],
    since: Option<i64>,
    now_ms: i64,
) -> Result<Vec<HealthEvent>, PipelineError> {
    let mut events = single_tunnel_events(tunnel_states, now_ms);
    let errors = config_errors(snapshot, since)?;
    events.extend(
        tunnelwatch_monitor::health::redundancy_loss_events(tunnel_states, &errors, now_ms)
            .iter()
            .map(|r| r.to_event()),
    );
    Ok(events)
}

/// The message kinds that say a tunnel's configuration is wrong (an outage with these around it
/// is the customer's, not an endpoint replacement).
const CONFIG_ERROR_KINDS: [MessageKind; 6] = [
    MessageKind::PskInvalid,
    MessageKind::PskMismatch,
    MessageKind::NoProposalMatch,
    MessageKind::NoProposalChosen,
    MessageKind::AuthFailed,
    MessageKind::TsUnacceptable,
];

/// (vpn, tunnel, ts): one configuration-error record.
type ConfigError = (Arc<str>, Arc<str>, i64);

/// The stored configuration-error records since `since`.
fn config_errors(
    snapshot: &Snapshot,
    since: Option<i64>,
) -> Result<Vec<ConfigError>, PipelineError> {
    let kinds: Vec<String> = CONFIG_ERROR_KINDS
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    let mut sql = format!(
        "SELECT vpn_id, tunnel_ip, CAST(ts AS BIGINT) AS ms FROM tunnel_activity \
         WHERE message_kind IN ({}) AND vpn_id IS NOT NULL AND tunnel_ip IS NOT NULL",
        kinds.join(", ")
    );
    if let Some(t) = since {
        sql.push_str(&format!(" AND ts >= to_timestamp_millis({t})"));
    }
    let mut out = Vec::new();
    let mut batches = crate::metrics::Batches::open(snapshot, &sql)?;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let utf8 = arrow::datatypes::DataType::Utf8;
        let vpn = arrow::compute::cast(batch.column(0), &utf8)?;
        let ip = arrow::compute::cast(batch.column(1), &utf8)?;
        let ms = arrow::compute::cast(batch.column(2), &arrow::datatypes::DataType::Int64)?;
        let (vpn, ip) = (vpn.as_string::<i32>(), ip.as_string::<i32>());
        let ms = ms.as_primitive::<arrow::datatypes::Int64Type>();
        for row in 0..batch.num_rows() {
            out.push((
                Arc::from(vpn.value(row)),
                Arc::from(ip.value(row)),
                ms.value(row),
            ));
        }
    }
    Ok(out)
}

/// The `health_events` rows of `events` not in `stored` (one row per event and connection and
/// status: an event's row is written when the connection is added, and again when the event
/// closes), and their keys.
pub fn health_rows(
    events: &[HealthEvent],
    stored: &std::collections::BTreeSet<String>,
) -> (RecordBatch, Vec<String>) {
    struct Row<'a> {
        e: &'a HealthEvent,
        vpn: &'a str,
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut keys = Vec::new();
    for e in events {
        for vpn in e.connections.keys() {
            let key = format!(
                "{} {} {} {}",
                e.event_arn,
                vpn,
                e.tunnel_ip.as_deref().unwrap_or("-"),
                e.status_code
            );
            if !stored.contains(&key) {
                keys.push(key);
                rows.push(Row { e, vpn });
            }
        }
    }
    let ts = |f: &dyn Fn(&Row) -> Option<i64>| -> ArrayRef {
        Arc::new(
            TimestampMillisecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let text = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|r| Some(r.e.event_arn.clone())),
        text(&|r| Some(r.e.event_type_code.to_owned())),
        ts(&|r| Some(r.e.start_time)),
        ts(&|r| r.e.end_time),
        ts(&|r| Some(r.e.last_updated_time)),
        text(&|r| Some(r.e.status_code.to_owned())),
        text(&|r| Some(r.vpn.to_owned())),
        text(&|r| r.e.tunnel_ip.as_deref().map(str::to_owned)),
        text(&|r| Some(r.e.description.clone())),
    ];
    let batch = RecordBatch::try_new(TableName::HealthEvents.schema(), columns)
        .expect("the columns follow the health_events schema");
    (batch, keys)
}

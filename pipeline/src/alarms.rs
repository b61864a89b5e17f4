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

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use tunnelwatch_monitor::MetricName;
use tunnelwatch_monitor::alarm::{AlarmDefinition, AlarmEvaluator, InstanceStatus, Transition};
use tunnelwatch_monitor::health::{
    AwsEvent, CONFIRM_MARGIN_MS, HealthEvent, pair, single_tunnel_events,
};
use tunnelwatch_parsers::MessageKind;
use tunnelwatch_queries::rows::health_event_rows;
use tunnelwatch_queries::{HealthRow, Snapshot, TableName};

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
    /// replacements), paired with the stored AWS events.
    pub health: Health,
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
        None => Health::default(),
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
    use tunnelwatch_queries::guard::sql_literal;
    let mut filter = format!(
        "vpn_id = {} AND severity IN ('error', 'warning') AND ts <= to_timestamp_millis({}) \
         AND ts > to_timestamp_millis({})",
        sql_literal(&t.vpn_id),
        t.ts,
        t.ts - window_ms
    );
    if let Some(ip) = &t.tunnel_ip {
        filter.push_str(&format!(" AND tunnel_ip = {}", sql_literal(ip)));
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

/// The top diagnosis of the transition's tunnel from the stored records before it.
pub fn stored_diagnosis(
    snapshot: &Snapshot,
    t: &Transition,
    window_ms: i64,
) -> Option<tunnelwatch_monitor::diagnose::Diagnosis> {
    let since = t.ts - window_ms - crate::runner::DIAGNOSIS_LOOKBACK_MS;
    let fleet =
        crate::diagnose::diagnose(snapshot, Some(&t.vpn_id), Some(since), Some(t.ts + 1)).ok()?;
    let report = fleet.connections.into_iter().next()?;
    tunnelwatch_monitor::diagnose::covering(report, t.tunnel_ip.as_deref(), t.ts)
}

/// At most this many connections of one Health event get a diagnosis in its notification (a
/// monthly single-tunnel event may name hundreds).
pub const HEALTH_DIAGNOSES_MAX: usize = 10;

/// The diagnoses behind a Health event, from the stored records: for each affected connection
/// (the latest flagged first, at most [`HEALTH_DIAGNOSES_MAX`]), its most confident (then
/// longest) diagnosis that took a tunnel down — the event's tunnel when it names one — between
/// the connection's flagging and the event's end or last update (an hour at least).
pub fn stored_health_diagnoses(
    snapshot: &Snapshot,
    e: &HealthEvent,
) -> Vec<(Arc<str>, tunnelwatch_monitor::diagnose::Diagnosis)> {
    let mut flagged: Vec<(&Arc<str>, i64)> = e.connections.iter().map(|(v, t)| (v, *t)).collect();
    flagged.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
    flagged.truncate(HEALTH_DIAGNOSES_MAX);
    let length = |d: &tunnelwatch_monitor::diagnose::Diagnosis| {
        d.until_ms.unwrap_or(i64::MAX).saturating_sub(d.from_ms)
    };
    flagged
        .into_iter()
        .filter_map(|(vpn, from)| {
            let until = e
                .end_time
                .unwrap_or(e.last_updated_time)
                .max(from + 3_600_000);
            let since = from - crate::runner::DIAGNOSIS_LOOKBACK_MS;
            let fleet =
                crate::diagnose::diagnose(snapshot, Some(vpn), Some(since), Some(until)).ok()?;
            let report = fleet.connections.into_iter().next()?;
            report
                .diagnoses
                .into_iter()
                .filter(|d| d.tunnel_down)
                .filter(|d| e.tunnel_ip.as_ref().is_none_or(|ip| *ip == d.tunnel_ip))
                .filter(|d| d.from_ms <= until && d.until_ms.is_none_or(|u| u >= from))
                .max_by(|a, b| {
                    a.confidence
                        .total_cmp(&b.confidence)
                        .then(length(a).cmp(&length(b)))
                })
                .map(|d| (vpn.clone(), d))
        })
        .collect()
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

    let mut batches = Vec::new();
    if !transitions.is_empty() {
        batches.push((TableName::AlarmHistory, history_rows(&transitions)));
    }
    let health = health_events(&snapshot, &tunnel_states, health_since, until)?;
    let health_rows = record_health(&snapshot, &health, &mut file, notify, until, &mut batches);
    if !batches.is_empty() {
        store.append(batches, None)?;
        store.flush()?;
    }
    // Probable causes come from tunnel_activity and bgp_events, which the rows just appended do
    // not touch: the snapshot read above answers them.
    let queued = match notify {
        Some(n) => n.enqueue_with(&transitions, &|t, window| crate::runner::Cause {
            kinds: probable_cause(&snapshot, t, window).unwrap_or_default(),
            diagnosis: stored_diagnosis(&snapshot, t, window),
        }),
        None => 0,
    } + health_rows.1;
    let health_count = health_rows.0;
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

/// Adds the `health_events` rows of `health` that `file` does not list as stored to `batches`,
/// queues the Health notifications due by `until` that it does not list as queued (with the
/// diagnoses of the stored records in `snapshot`), and lists both in `file` (to be saved once
/// `batches` are durable). Returns (rows, notifications).
fn record_health(
    snapshot: &Snapshot,
    health: &Health,
    file: &mut crate::alarm_state::AlarmStateFile,
    notify: Option<&crate::runner::Notify>,
    until: i64,
    batches: &mut Vec<(TableName, RecordBatch)>,
) -> (usize, usize) {
    let (batch, new_keys) = health_rows(health, &file.health_rows);
    let rows = batch.num_rows();
    if rows > 0 {
        batches.push((TableName::HealthEvents, batch));
    }
    file.health_rows.extend(new_keys);
    let keys = match notify {
        Some(n) => n.enqueue_health(&health.to_notify(), until, &file.health_notified, &|e| {
            stored_health_diagnoses(snapshot, e)
        }),
        None => Vec::new(),
    };
    let queued = keys.len() * notify.map_or(0, |n| n.health_notify.len());
    file.health_notified.extend(keys);
    (rows, queued)
}

/// One Health round of a running pipeline (`serve`, `demo`): the Health of the TunnelState
/// minutes stored in `snapshot` (from the start of the previous calendar month) as of the end
/// of the newest one; the new rows are added to `batches` and the notifications queued, as
/// [`catch_up`] does. `None` without stored TunnelState.
///
/// Limits: reads up to two months of tunnel-level TunnelState minutes per round (the runner
/// calls it every few minutes).
pub fn health_step(
    snapshot: &Snapshot,
    file: &mut crate::alarm_state::AlarmStateFile,
    notify: Option<&crate::runner::Notify>,
    batches: &mut Vec<(TableName, RecordBatch)>,
) -> Result<Option<(usize, usize)>, PipelineError> {
    let names = [MetricName::TunnelState.as_str()];
    let since = crate::runner::now_ms() - 62 * 86_400_000;
    let mut tunnel_states = Vec::new();
    let mut last: Option<i64> = None;
    for batch in stored_datapoints_of_metrics(snapshot, &names, Some(since), None)? {
        for p in batch? {
            if p.tunnel_ip.is_some() {
                last = Some(last.map_or(p.ts, |l| l.max(p.ts)));
                tunnel_states.push(p);
            }
        }
    }
    let Some(last) = last else {
        return Ok(None);
    };
    let until = last + 60_000;
    let health = health_events(snapshot, &tunnel_states, Some(since), until)?;
    Ok(Some(record_health(
        snapshot, &health, file, notify, until, batches,
    )))
}

/// What Health gives as of a time.
#[derive(Debug, Default)]
pub struct Health {
    /// The events tunnelwatch derives: single-tunnel, then inferred endpoint replacements (those
    /// an AWS event confirms with `confirmed_by` set).
    pub events: Vec<HealthEvent>,
    /// The stored AWS events, each with the inference it confirms.
    pub aws: Vec<(AwsEvent, Option<Confirmation>)>,
}

/// What an AWS event confirms: the tunnel the logs showed down, and the inference's ARN.
pub type Confirmation = (Arc<str>, String);

impl Health {
    /// The events to notify: tunnelwatch's own that AWS did not confirm (AWS told its users
    /// about the rest itself).
    pub fn to_notify(&self) -> Vec<HealthEvent> {
        self.events
            .iter()
            .filter(|e| e.confirmed_by.is_none())
            .cloned()
            .collect()
    }
}

/// The Health of the tunnel-level TunnelState minutes `tunnel_states` as of `now_ms`:
/// single-tunnel and inferred endpoint replacements (with the configuration errors stored since
/// `since`), paired with the AWS Health events stored since then.
fn health_events(
    snapshot: &Snapshot,
    tunnel_states: &[tunnelwatch_monitor::Datapoint],
    since: Option<i64>,
    now_ms: i64,
) -> Result<Health, PipelineError> {
    let mut events = single_tunnel_events(tunnel_states, now_ms);
    let errors = config_errors(snapshot, since)?;
    let mut inferred =
        tunnelwatch_monitor::health::redundancy_loss_events(tunnel_states, &errors, now_ms);
    let aws = stored_aws_events(snapshot, since.map(|t| t - CONFIRM_MARGIN_MS))?;
    let mut confirmations = vec![None; aws.len()];
    for (a, r) in pair(&aws, &inferred) {
        inferred[r].confirmed_by = Some(aws[a].event_arn.clone());
        confirmations[a] = Some((inferred[r].tunnel_ip.clone(), inferred[r].event_arn.clone()));
    }
    events.extend(inferred.iter().map(|r| r.to_event()));
    Ok(Health {
        events,
        aws: aws.into_iter().zip(confirmations).collect(),
    })
}

/// The AWS Health events stored in `health_events` (origin `aws`, start at or after `since`),
/// their rows joined by ARN (a `describe-affected-entities` row adds connections).
fn stored_aws_events(
    snapshot: &Snapshot,
    since: Option<i64>,
) -> Result<Vec<AwsEvent>, PipelineError> {
    let mut sql = "SELECT event_arn, event_type_code, CAST(start_time AS BIGINT), \
         CAST(end_time AS BIGINT), CAST(last_updated_time AS BIGINT), status_code, description, \
         event_type_category, region, vpn_id FROM health_events WHERE origin = 'aws'"
        .to_owned();
    if let Some(t) = since {
        sql.push_str(&format!(" AND start_time >= to_timestamp_millis({t})"));
    }
    let mut by_arn: std::collections::BTreeMap<String, AwsEvent> = Default::default();
    let mut batches = crate::metrics::Batches::open(snapshot, &sql)?;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let utf8 = arrow::datatypes::DataType::Utf8;
        let int = arrow::datatypes::DataType::Int64;
        let texts: Vec<ArrayRef> = [0, 1, 5, 6, 7, 8, 9]
            .iter()
            .map(|&c| arrow::compute::cast(batch.column(c), &utf8))
            .collect::<Result<_, _>>()?;
        let times: Vec<ArrayRef> = [2, 3, 4]
            .iter()
            .map(|&c| arrow::compute::cast(batch.column(c), &int))
            .collect::<Result<_, _>>()?;
        let text = |c: usize, row: usize| {
            let a = texts[c].as_string::<i32>();
            a.is_valid(row).then(|| a.value(row).to_owned())
        };
        let time = |c: usize, row: usize| {
            let a = times[c].as_primitive::<arrow::datatypes::Int64Type>();
            a.is_valid(row).then(|| a.value(row))
        };
        for row in 0..batch.num_rows() {
            let Some(arn) = text(0, row) else { continue };
            let e = by_arn.entry(arn.clone()).or_insert_with(|| AwsEvent {
                event_arn: arn,
                start_time: i64::MAX,
                ..Default::default()
            });
            let keep = |slot: &mut Option<String>, v: Option<String>| {
                if slot.is_none() {
                    *slot = v;
                }
            };
            keep(&mut e.event_type_code, text(1, row));
            keep(&mut e.status_code, text(2, row));
            keep(&mut e.description, text(3, row));
            keep(&mut e.event_type_category, text(4, row));
            keep(&mut e.region, text(5, row));
            if let Some(vpn) = text(6, row) {
                e.vpn_ids.insert(Arc::from(vpn));
            }
            // An entities-only row has no event times of its own (its start is its record time).
            if text(1, row).is_some() {
                e.start_time = e.start_time.min(time(0, row).unwrap_or(i64::MAX));
                e.end_time = e.end_time.or(time(1, row));
                e.last_updated_time = e.last_updated_time.max(time(2, row));
            }
        }
    }
    Ok(by_arn
        .into_values()
        .filter(|e| e.start_time != i64::MAX)
        .collect())
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

/// The `health_events` rows of `health` not in `stored` (keys `event_arn vpn_id tunnel_ip
/// status [confirmed]`), and their keys:
/// - tunnelwatch's events: one row per event and connection and status (written when the
///   connection is added, and again when the event closes);
/// - a confirmed pair: a version of the AWS event with the tunnel the logs showed, `confirmed`,
///   and the inference's ARN; the inference itself only if it was stored before (a `confirmed`
///   version pointing at the AWS event), never as an event of its own;
/// - AWS events without a pair: nothing (their rows were stored as they arrived).
pub fn health_rows(
    health: &Health,
    stored: &std::collections::BTreeSet<String>,
) -> (RecordBatch, Vec<String>) {
    let stored_arns: std::collections::BTreeSet<&str> =
        stored.iter().filter_map(|k| k.split(' ').next()).collect();
    let mut rows: Vec<HealthRow> = Vec::new();
    let mut keys = Vec::new();
    let mut add = |key: String, row: HealthRow| {
        if !stored.contains(&key) && !keys.contains(&key) {
            keys.push(key);
            rows.push(row);
        }
    };
    for e in &health.events {
        if e.confirmed_by.is_some() && !stored_arns.contains(e.event_arn.as_str()) {
            continue;
        }
        for vpn in e.connections.keys() {
            let mut key = format!(
                "{} {} {} {}",
                e.event_arn,
                vpn,
                e.tunnel_ip.as_deref().unwrap_or("-"),
                e.status_code
            );
            if e.confirmed_by.is_some() {
                key.push_str(" confirmed");
            }
            add(
                key,
                HealthRow {
                    event_arn: e.event_arn.clone(),
                    event_type_code: Some(e.event_type_code.to_owned()),
                    start_time: e.start_time,
                    end_time: e.end_time,
                    last_updated_time: Some(e.last_updated_time),
                    status_code: Some(e.status_code.to_owned()),
                    vpn_id: Some(vpn.to_string()),
                    tunnel_ip: e.tunnel_ip.as_deref().map(str::to_owned),
                    description: Some(e.description.clone()),
                    origin: "tunnelwatch",
                    confirmed: e.confirmed_by.is_some(),
                    matched_arn: e.confirmed_by.clone(),
                    event_type_category: Some("accountNotification".into()),
                    region: None,
                    raw: None,
                },
            );
        }
    }
    for (a, pair) in &health.aws {
        let Some((ip, inferred_arn)) = pair else {
            continue;
        };
        let vpn = health
            .events
            .iter()
            .find(|e| &e.event_arn == inferred_arn)
            .and_then(|e| e.connections.keys().next().cloned());
        let Some(vpn) = vpn else { continue };
        let status = a.status_code.as_deref().unwrap_or("-");
        add(
            format!("{} {vpn} {ip} {status} confirmed", a.event_arn),
            HealthRow {
                event_arn: a.event_arn.clone(),
                event_type_code: a.event_type_code.clone(),
                start_time: a.start_time,
                end_time: a.end_time,
                last_updated_time: a.last_updated_time,
                status_code: a.status_code.clone(),
                vpn_id: Some(vpn.to_string()),
                tunnel_ip: Some(ip.to_string()),
                description: a.description.clone(),
                origin: "aws",
                confirmed: true,
                matched_arn: Some(inferred_arn.clone()),
                event_type_category: a.event_type_category.clone(),
                region: a.region.clone(),
                raw: None,
            },
        );
    }
    (health_event_rows(&rows), keys)
}

//! The [`AlarmEvaluator`]: alarm instances fed minute [`Datapoint`]s, evaluated at period
//! boundaries, giving state [`Transition`]s.
//!
//! Owns: instantiation (one instance per alarm and concrete connection or tunnel matching its
//! dimensions; a `*` wildcard instantiates on the first datapoint seen for that connection or
//! tunnel), the per-period aggregates of each instance (Average = Σ sum / Σ sample_count, Sum,
//! Minimum, Maximum, SampleCount = Σ sample_count over the minutes of the period), each
//! instance's state (initially INSUFFICIENT_DATA) and `recovery_periods` damping.
//!
//! Invariants:
//! - Periods are aligned to the epoch (a 300 s period starts at :00, :05, …). An instance is
//!   evaluated at every period boundary from the end of the period of its first datapoint up
//!   to `now`, in order, whatever else happens in the fleet: an instance's transitions depend
//!   only on its own datapoints.
//! - An evaluation at boundary `t` looks at the range of the R = N + 2 periods ending at `t`
//!   and applies [`decide`](crate::alarm::decide). Periods before the instance's first
//!   datapoint are not in any range: a new tunnel's alarm is not raised by `breaching`
//!   periods from before the tunnel existed (CloudWatch would count them as missing). A datapoint that arrives after its period
//!   was evaluated still counts in later evaluations whose range holds its period (CloudWatch:
//!   "any real data points in the evaluation range, no matter when they were reported, are
//!   included"); one older than every future range is dropped.
//! - A per-connection alarm (dimension `VpnId` only) takes connection-level datapoints
//!   (`tunnel_ip` None), a per-tunnel alarm tunnel-level ones.
//! - `recovery_periods` = K: an instance in ALARM goes to OK only when CloudWatch's rule says OK
//!   and the K newest periods were all not breaching (a real datapoint on the OK side, or a
//!   missing one under `notBreaching`), counted as each period completes. So one good period
//!   inside an outage never ends the alarm, whatever M of N is. K = 1 is CloudWatch. Leaving
//!   ALARM for INSUFFICIENT_DATA is not damped. A datapoint arriving after its period was
//!   evaluated does not change the count.
//!
//! - State survives a restart through [`AlarmEvaluator::save`] / [`AlarmEvaluator::restore`]:
//!   each instance's state, when it was entered, its reason, the damping count and where
//!   evaluation stood (not the period aggregates: they are the stored `metrics` rows). With
//!   [`Resume::Continue`] evaluation goes on from the saved boundary and the caller pushes the
//!   stored datapoints again (a one-shot ingest: the data has no gap); with
//!   [`Resume::AfterGap`] an instance keeps its state but waits for its next datapoint and
//!   starts a new series there (a restarted `serve`: the minutes it was down are not data, and
//!   counting them as missing would raise every `breaching` alarm). Either way a restart
//!   records and notifies no transition twice, and INSUFFICIENT_DATA → OK is not repeated.
//!
//! Limits: CloudWatch evaluates every minute over a sliding window; this evaluator evaluates
//! once per period at aligned boundaries (for a 60 s period the two are the same). Memory per
//! instance is R period aggregates.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alarm::AlarmState;
use crate::alarm::definition::{
    AlarmConfigError, AlarmDefinition, DIMENSION_TUNNEL_IP, DIMENSION_VPN_ID, DIMENSION_WILDCARD,
    Statistic, TreatMissingData,
};
use crate::alarm::evaluate::{RangeDecision, RangeOutcome, decide_into, evaluation_range};
use crate::alarm::reason::{
    ReasonDataInput, ReasonPoint, ThresholdCrossing, insufficient_data, reason_data,
    threshold_crossed,
};
use crate::datapoint::{Datapoint, MetricName};

/// One state change of one alarm instance (one `alarm_history` row).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub alarm_name: Arc<str>,
    /// `alarm/vpn` or `alarm/vpn/tunnel_ip`.
    pub instance_id: Arc<str>,
    pub vpn_id: Arc<str>,
    /// `None` for a per-connection alarm.
    pub tunnel_ip: Option<Arc<str>>,
    /// The evaluation time (a period boundary), epoch ms UTC.
    pub ts: i64,
    pub old_state: AlarmState,
    pub new_state: AlarmState,
    /// CloudWatch's `NewStateReason` wording.
    pub reason: String,
    /// CloudWatch's `StateReasonData` JSON.
    pub reason_data: String,
}

/// One instance as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceStatus {
    pub alarm_name: Arc<str>,
    /// The definition's severity.
    pub severity: crate::alarm::AlarmSeverity,
    pub instance_id: Arc<str>,
    pub vpn_id: Arc<str>,
    pub tunnel_ip: Option<Arc<str>>,
    pub state: AlarmState,
    /// When the current state was entered (`None`: never evaluated away from the initial
    /// INSUFFICIENT_DATA).
    pub since: Option<i64>,
    /// The reason of the last transition (empty before the first).
    pub reason: String,
    /// The next boundary at which it will be evaluated (`None`: restored after a gap, waiting
    /// for its next datapoint).
    pub next_evaluation: Option<i64>,
}

/// How a restored instance goes on (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// From the saved boundary; the caller pushes the stored datapoints of the saved ranges.
    Continue,
    /// From the instance's next datapoint, as a new series keeping its state.
    AfterGap,
}

/// One instance's saved state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedInstance {
    pub alarm_name: String,
    pub vpn_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_ip: Option<String>,
    pub state: AlarmState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub clear_run: u32,
    /// The next boundary to evaluate; `None` while waiting for a datapoint after a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_evaluation: Option<i64>,
    /// Start of the series' first period (`None` with `next_evaluation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_period: Option<i64>,
}

/// Everything [`AlarmEvaluator::restore`] needs, as JSON-able data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedAlarms {
    pub version: u32,
    /// Alarm name → [`AlarmDefinition::fingerprint`].
    pub fingerprints: BTreeMap<String, String>,
    pub instances: Vec<SavedInstance>,
}

/// `next_eval_ms` / `first_period` of an instance waiting for its first datapoint after a gap.
const DORMANT: i64 = i64::MAX;

#[derive(Debug, Clone)]
enum VpnMatch {
    Any,
    Exactly(String),
}

#[derive(Debug, Clone)]
enum TunnelMatch {
    /// Connection-level datapoints only.
    Connection,
    Any,
    Exactly(String),
}

#[derive(Debug, Clone)]
struct CompiledAlarm {
    def: AlarmDefinition,
    name: Arc<str>,
    metric: MetricName,
    vpn: VpnMatch,
    tunnel: TunnelMatch,
    period_ms: i64,
    m: u32,
    n: u32,
    range: usize,
}

impl CompiledAlarm {
    fn compile(def: AlarmDefinition) -> Result<CompiledAlarm, AlarmConfigError> {
        def.validate()?;
        let metric = def.metric_name()?;
        let value_match = |v: &str| v != DIMENSION_WILDCARD;
        let vpn = match def.dimensions.get(DIMENSION_VPN_ID) {
            Some(v) if value_match(v) => VpnMatch::Exactly(v.clone()),
            _ => VpnMatch::Any,
        };
        let tunnel = match def.dimensions.get(DIMENSION_TUNNEL_IP) {
            None => TunnelMatch::Connection,
            Some(v) if value_match(v) => TunnelMatch::Exactly(v.clone()),
            Some(_) => TunnelMatch::Any,
        };
        Ok(CompiledAlarm {
            name: Arc::from(def.name.as_str()),
            metric,
            vpn,
            tunnel,
            period_ms: i64::from(def.period) * 1000,
            m: def.datapoints_to_alarm(),
            n: def.evaluation_periods,
            range: evaluation_range(def.evaluation_periods),
            def,
        })
    }

    fn matches(&self, d: &Datapoint) -> bool {
        if d.metric != self.metric {
            return false;
        }
        if let VpnMatch::Exactly(v) = &self.vpn
            && **v != *d.vpn_id
        {
            return false;
        }
        match (&self.tunnel, &d.tunnel_ip) {
            (TunnelMatch::Connection, None) => true,
            (TunnelMatch::Any, Some(_)) => true,
            (TunnelMatch::Exactly(t), Some(ip)) => **t == **ip,
            _ => false,
        }
    }

    fn period_start(&self, ts: i64) -> i64 {
        ts.div_euclid(self.period_ms) * self.period_ms
    }
}

/// The statistic set of one period, summed over its minute datapoints.
#[derive(Debug, Clone, Copy)]
struct PeriodAggregate {
    sample_count: f64,
    sum: f64,
    minimum: f64,
    maximum: f64,
}

impl PeriodAggregate {
    fn add(&mut self, d: &Datapoint) {
        self.sample_count += d.sample_count;
        self.sum += d.sum;
        self.minimum = self.minimum.min(d.minimum);
        self.maximum = self.maximum.max(d.maximum);
    }

    fn value(&self, statistic: Statistic) -> Option<f64> {
        match statistic {
            Statistic::Average => (self.sample_count > 0.0).then(|| self.sum / self.sample_count),
            Statistic::Sum => Some(self.sum),
            Statistic::Minimum => Some(self.minimum),
            Statistic::Maximum => Some(self.maximum),
            Statistic::SampleCount => Some(self.sample_count),
        }
    }
}

#[derive(Debug, Clone)]
struct Instance {
    id: Arc<str>,
    vpn_id: Arc<str>,
    tunnel_ip: Option<Arc<str>>,
    /// (period start, aggregate), sorted by start; only periods some future range can hold.
    periods: Vec<(i64, PeriodAggregate)>,
    next_eval_ms: i64,
    state: AlarmState,
    /// Consecutive newest periods, as evaluated, that were not breaching.
    clear_run: u32,
    /// Start of the first period with a datapoint: periods before it are outside every
    /// evaluation range (the series did not exist; they are not "missing").
    first_period: i64,
    /// Whether any boundary was evaluated (until then, an earlier datapoint moves the first
    /// boundary back: datapoints may come in any order).
    evaluated: bool,
    since: Option<i64>,
    reason: String,
}

type InstanceKey = (usize, Arc<str>, Option<Arc<str>>);

/// Evaluates a set of alarm definitions over a stream of datapoints.
#[derive(Debug, Clone)]
pub struct AlarmEvaluator {
    alarms: Vec<CompiledAlarm>,
    /// foldhash (seeded per process): cheaper than std's SipHash on these short keys.
    instances: HashMap<InstanceKey, Instance, foldhash::fast::RandomState>,
    /// Instance id → key, for [`AlarmEvaluator::state`].
    by_id: HashMap<Arc<str>, InstanceKey>,
    /// Buffers one evaluation reuses (so a cycle allocates only for transitions).
    scratch: Scratch,
}

/// The per-evaluation buffers of [`evaluate_once`].
#[derive(Debug, Clone, Default)]
struct Scratch {
    points: Vec<Option<ReasonPoint>>,
    slots: Vec<Option<bool>>,
    decision: Option<RangeDecision>,
}

impl AlarmEvaluator {
    /// Validates every definition (and that names are unique).
    pub fn new(
        definitions: impl IntoIterator<Item = AlarmDefinition>,
    ) -> Result<AlarmEvaluator, AlarmConfigError> {
        let mut alarms: Vec<CompiledAlarm> = Vec::new();
        for def in definitions {
            if alarms.iter().any(|a| a.def.name == def.name) {
                return Err(AlarmConfigError::DuplicateName { alarm: def.name });
            }
            alarms.push(CompiledAlarm::compile(def)?);
        }
        Ok(AlarmEvaluator {
            alarms,
            instances: HashMap::default(),
            by_id: HashMap::new(),
            scratch: Scratch::default(),
        })
    }

    /// The definitions, in configuration order.
    pub fn definitions(&self) -> impl Iterator<Item = &AlarmDefinition> {
        self.alarms.iter().map(|a| &a.def)
    }

    /// Feeds one minute datapoint to every alarm it matches, instantiating wildcard alarms on
    /// first sight. Returns how many instances took it.
    pub fn push(&mut self, d: &Datapoint) -> usize {
        let mut fed = 0;
        for (idx, alarm) in self.alarms.iter().enumerate() {
            if !alarm.matches(d) {
                continue;
            }
            let start = alarm.period_start(d.ts);
            let key: InstanceKey = (idx, d.vpn_id.clone(), d.tunnel_ip.clone());
            let by_id = &mut self.by_id;
            let instance = self.instances.entry(key).or_insert_with(|| {
                let id = instance_id(&alarm.name, &d.vpn_id, d.tunnel_ip.as_deref());
                by_id.insert(id.clone(), (idx, d.vpn_id.clone(), d.tunnel_ip.clone()));
                Instance {
                    id,
                    vpn_id: d.vpn_id.clone(),
                    tunnel_ip: d.tunnel_ip.clone(),
                    periods: Vec::with_capacity(alarm.range + 1),
                    next_eval_ms: start + alarm.period_ms,
                    state: AlarmState::InsufficientData,
                    clear_run: 0,
                    first_period: start,
                    evaluated: false,
                    since: None,
                    reason: String::new(),
                }
            });
            // Until the first evaluation, the earliest datapoint sets the first boundary (also
            // for an instance restored after a gap: its first_period is DORMANT, after all).
            if !instance.evaluated && start < instance.first_period {
                instance.next_eval_ms = start + alarm.period_ms;
            }
            // Older than every range still to be evaluated: it can no longer count.
            if start < instance.next_eval_ms - alarm.range as i64 * alarm.period_ms {
                continue;
            }
            instance.first_period = instance.first_period.min(start);
            // Usually the newest period: search from the end.
            let at = instance.periods.partition_point(|(s, _)| *s < start);
            match instance.periods.get_mut(at) {
                Some((s, agg)) if *s == start => agg.add(d),
                _ => instance.periods.insert(
                    at,
                    (
                        start,
                        PeriodAggregate {
                            sample_count: d.sample_count,
                            sum: d.sum,
                            minimum: d.minimum,
                            maximum: d.maximum,
                        },
                    ),
                ),
            }
            fed += 1;
        }
        fed
    }

    /// Evaluates every instance at each of its period boundaries up to and including `now_ms`,
    /// in order. Transitions are ordered by time, then alarm (configuration order), then
    /// instance id.
    pub fn evaluate(&mut self, now_ms: i64) -> Vec<Transition> {
        let mut out: Vec<(usize, Transition)> = Vec::new();
        let scratch = &mut self.scratch;
        for ((idx, _, _), instance) in self.instances.iter_mut() {
            let alarm = &self.alarms[*idx];
            while instance.next_eval_ms <= now_ms {
                let t = instance.next_eval_ms;
                instance.evaluated = true;
                if let Some(tr) = evaluate_once(alarm, instance, t, scratch) {
                    out.push((*idx, tr));
                }
                instance.next_eval_ms += alarm.period_ms;
                let keep_from = instance.next_eval_ms - alarm.range as i64 * alarm.period_ms;
                let stale = instance.periods.partition_point(|(s, _)| *s < keep_from);
                instance.periods.drain(..stale);
            }
        }
        out.sort_by(|(ia, a), (ib, b)| (a.ts, ia, &a.instance_id).cmp(&(b.ts, ib, &b.instance_id)));
        out.into_iter().map(|(_, t)| t).collect()
    }

    /// Every instance, ordered by alarm (configuration order) then instance id.
    pub fn instances(&self) -> Vec<InstanceStatus> {
        let mut list: Vec<(usize, InstanceStatus)> = self
            .instances
            .iter()
            .map(|((idx, _, _), i)| {
                (
                    *idx,
                    InstanceStatus {
                        alarm_name: self.alarms[*idx].name.clone(),
                        severity: self.alarms[*idx].def.severity,
                        instance_id: i.id.clone(),
                        vpn_id: i.vpn_id.clone(),
                        tunnel_ip: i.tunnel_ip.clone(),
                        state: i.state,
                        since: i.since,
                        reason: i.reason.clone(),
                        next_evaluation: (i.next_eval_ms != DORMANT).then_some(i.next_eval_ms),
                    },
                )
            })
            .collect();
        list.sort_by(|(ia, a), (ib, b)| (ia, &a.instance_id).cmp(&(ib, &b.instance_id)));
        list.into_iter().map(|(_, s)| s).collect()
    }

    /// The state to save (instances ordered as [`AlarmEvaluator::instances`]).
    pub fn save(&self) -> SavedAlarms {
        let mut list: Vec<(usize, &Instance)> = self
            .instances
            .iter()
            .map(|((idx, _, _), i)| (*idx, i))
            .collect();
        list.sort_by(|(ia, a), (ib, b)| (ia, &a.id).cmp(&(ib, &b.id)));
        let live = |v: i64| (v != DORMANT).then_some(v);
        SavedAlarms {
            version: 1,
            fingerprints: self
                .alarms
                .iter()
                .map(|a| (a.def.name.clone(), a.def.fingerprint()))
                .collect(),
            instances: list
                .into_iter()
                .map(|(idx, i)| SavedInstance {
                    alarm_name: self.alarms[idx].def.name.clone(),
                    vpn_id: i.vpn_id.to_string(),
                    tunnel_ip: i.tunnel_ip.as_deref().map(str::to_owned),
                    state: i.state,
                    since: i.since,
                    reason: i.reason.clone(),
                    clear_run: i.clear_run,
                    next_evaluation: live(i.next_eval_ms),
                    first_period: live(i.first_period),
                })
                .collect(),
        }
    }

    /// Restores saved instances of the alarms whose definition is unchanged (same name and
    /// fingerprint); the rest of `saved` is ignored. Returns how many instances were restored.
    pub fn restore(&mut self, saved: &SavedAlarms, resume: Resume) -> usize {
        let mut restored = 0;
        for s in &saved.instances {
            let Some(idx) = self.alarms.iter().position(|a| a.def.name == s.alarm_name) else {
                continue;
            };
            let alarm = &self.alarms[idx];
            if saved.fingerprints.get(&s.alarm_name) != Some(&alarm.def.fingerprint()) {
                continue;
            }
            let per_tunnel = !matches!(alarm.tunnel, TunnelMatch::Connection);
            if per_tunnel != s.tunnel_ip.is_some() {
                continue;
            }
            let vpn_id: Arc<str> = Arc::from(s.vpn_id.as_str());
            let tunnel_ip: Option<Arc<str>> = s.tunnel_ip.as_deref().map(Arc::from);
            let id = instance_id(&alarm.name, &vpn_id, tunnel_ip.as_deref());
            let (next_eval_ms, first_period) = match (resume, s.next_evaluation, s.first_period) {
                (Resume::Continue, Some(next), Some(first)) => (next, first),
                _ => (DORMANT, DORMANT),
            };
            let key: InstanceKey = (idx, vpn_id.clone(), tunnel_ip.clone());
            self.by_id.insert(id.clone(), key.clone());
            self.instances.insert(
                key,
                Instance {
                    id,
                    vpn_id,
                    tunnel_ip,
                    periods: Vec::new(),
                    next_eval_ms,
                    state: s.state,
                    clear_run: s.clear_run,
                    first_period,
                    evaluated: resume == Resume::Continue && next_eval_ms != DORMANT,
                    since: s.since,
                    reason: s.reason.clone(),
                },
            );
            restored += 1;
        }
        restored
    }

    /// The earliest period start any restored or live instance can still use (where a caller
    /// resuming with [`Resume::Continue`] starts pushing stored datapoints); `None` without
    /// instances under evaluation.
    pub fn resume_from(&self) -> Option<i64> {
        self.instances
            .iter()
            .filter(|(_, i)| i.next_eval_ms != DORMANT)
            .map(|((idx, _, _), i)| {
                let a = &self.alarms[*idx];
                (i.next_eval_ms - a.range as i64 * a.period_ms).max(i.first_period)
            })
            .min()
    }

    /// The current state of one instance, by id.
    pub fn state(&self, instance_id: &str) -> Option<AlarmState> {
        let key = self.by_id.get(instance_id)?;
        self.instances.get(key).map(|i| i.state)
    }
}

/// `alarm/vpn` or `alarm/vpn/tunnel_ip`.
fn instance_id(alarm: &str, vpn_id: &str, tunnel_ip: Option<&str>) -> Arc<str> {
    Arc::from(match tunnel_ip {
        Some(ip) => format!("{alarm}/{vpn_id}/{ip}"),
        None => format!("{alarm}/{vpn_id}"),
    })
}

/// One evaluation of one instance at boundary `t`.
fn evaluate_once(
    alarm: &CompiledAlarm,
    instance: &mut Instance,
    t: i64,
    scratch: &mut Scratch,
) -> Option<Transition> {
    let def = &alarm.def;
    // The range, cut at the series' first period.
    let range_start = (t - alarm.range as i64 * alarm.period_ms).max(instance.first_period);
    let slots_in_range = ((t - range_start) / alarm.period_ms).max(0) as usize;
    let Scratch {
        points,
        slots,
        decision,
    } = scratch;
    points.clear();
    // Both sorted by start: one walk over the stored periods.
    let mut stored = instance.periods.iter().peekable();
    points.extend((0..slots_in_range).map(|k| {
        let ts = range_start + k as i64 * alarm.period_ms;
        while stored.next_if(|(s, _)| *s < ts).is_some() {}
        let (_, agg) = stored.next_if(|(s, _)| *s == ts)?;
        Some(ReasonPoint {
            ts,
            value: agg.value(def.statistic)?,
            sample_count: agg.sample_count,
        })
    }));
    slots.clear();
    slots.extend(
        points
            .iter()
            .map(|p| p.map(|p| def.comparison.breaches(p.value, def.threshold))),
    );
    let decision = decision.get_or_insert_with(|| RangeDecision {
        outcome: RangeOutcome::InsufficientData,
        evaluated: Vec::new(),
        filled: Vec::new(),
        filled_breaching: false,
    });
    decide_into(slots, alarm.m, alarm.n, def.treat_missing_data, decision);
    let (points, slots, decision) = (&*points, &*slots, &*decision);
    let newest_clear = match slots.last() {
        Some(Some(breaching)) => !breaching,
        Some(None) => def.treat_missing_data == TreatMissingData::NotBreaching,
        None => false,
    };
    instance.clear_run = if newest_clear {
        instance.clear_run.saturating_add(1)
    } else {
        0
    };
    let target = match decision.outcome {
        RangeOutcome::Alarm => Some(AlarmState::Alarm),
        RangeOutcome::Ok => Some(AlarmState::Ok),
        RangeOutcome::InsufficientData => Some(AlarmState::InsufficientData),
        RangeOutcome::RetainCurrent => None,
    };
    let new_state = match target {
        Some(s) if s != instance.state => s,
        _ => return None,
    };
    let recovering = instance.state == AlarmState::Alarm && new_state == AlarmState::Ok;
    if recovering && instance.clear_run < def.recovery_periods {
        return None;
    }
    let damped = recovering && def.recovery_periods > 1;

    let evaluated: Vec<ReasonPoint> = decision
        .evaluated
        .iter()
        .filter_map(|&i| points[i])
        .collect();
    let filled: Vec<i64> = decision
        .filled
        .iter()
        .map(|&i| range_start + i as i64 * alarm.period_ms)
        .collect();
    let old_state = instance.state;
    let n = alarm.n as usize;
    let m = alarm.m as usize;
    let minimum = |count: usize| (n > 1).then_some((count, old_state.as_str(), new_state.as_str()));
    let recent: Vec<ReasonPoint> = points.iter().flatten().copied().collect();
    let recent_is_empty = recent.is_empty();
    let mut reason = match new_state {
        AlarmState::Alarm | AlarmState::Ok => {
            let alarm_side = new_state == AlarmState::Alarm;
            let side: Vec<ReasonPoint> = decision
                .evaluated
                .iter()
                .filter(|&&i| slots[i] == Some(alarm_side))
                .filter_map(|&i| points[i])
                .collect();
            let filled_on_side = decision.filled_breaching == alarm_side;
            let phrase = if alarm_side {
                def.comparison.phrase().to_owned()
            } else {
                format!("not {}", def.comparison.phrase())
            };
            threshold_crossed(&ThresholdCrossing {
                points: &side,
                filled_counted: if filled_on_side { filled.len() } else { 0 },
                filled_other: if filled_on_side { 0 } else { filled.len() },
                filled_breaching: decision.filled_breaching,
                no_real: recent_is_empty,
                evaluation_periods: alarm.n,
                comparison_phrase: phrase,
                threshold: def.threshold,
                minimum: minimum(if alarm_side { m } else { n - m + 1 }),
            })
        }
        AlarmState::InsufficientData => insufficient_data(n.saturating_sub(evaluated.len())),
    };
    if damped {
        reason.push_str(&format!(
            " Left ALARM after {} consecutive periods not breaching (recovery_periods).",
            def.recovery_periods
        ));
    }
    let data = reason_data(&ReasonDataInput {
        query_ms: t,
        start_ms: range_start,
        statistic: def.statistic.as_str(),
        period_s: def.period,
        recent: &recent,
        threshold: def.threshold,
        evaluated: &evaluated,
        filled: &filled,
    });
    instance.state = new_state;
    instance.since = Some(t);
    instance.reason = reason.clone();
    Some(Transition {
        alarm_name: alarm.name.clone(),
        instance_id: instance.id.clone(),
        vpn_id: instance.vpn_id.clone(),
        tunnel_ip: instance.tunnel_ip.clone(),
        ts: t,
        old_state,
        new_state,
        reason,
        reason_data: data,
    })
}

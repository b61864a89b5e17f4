//! The evaluation rule: from the datapoints of one evaluation range (breaching, not breaching
//! or missing, oldest first) to the state the alarm should take, as CloudWatch's "Using Amazon
//! CloudWatch alarms" page specifies it in "Evaluating an alarm", "How alarm state is evaluated
//! when data is missing" and "Avoiding premature transitions to alarm state".
//!
//! Owns: [`decide`] and [`evaluation_range`]. Pure functions; no time, no values, no state.
//!
//! The rule (N = evaluation periods, M = datapoints to alarm, the range holds R > N slots):
//! 1. N or more real datapoints in the range: the N most recent real ones are evaluated, the
//!    missing-data treatment is not used; ALARM if at least M breach, else OK.
//! 2. No real datapoint: `missing` ⇒ INSUFFICIENT_DATA, `ignore` ⇒ the current state is kept,
//!    `breaching` ⇒ ALARM, `notBreaching` ⇒ OK.
//! 3. Fewer than N real datapoints: all of them are evaluated; if M of them breach ⇒ ALARM.
//!    Otherwise `breaching` fills the N − real most recent missing slots as breaching,
//!    `notBreaching` as not breaching (CloudWatch "uses missing data points only as few times
//!    as possible"). `missing` and `ignore` do not fill: a real non-breaching datapoint ⇒ OK;
//!    if every real datapoint breaches, the "premature alarm" rule applies: ALARM when the
//!    oldest breaching datapoint is at least M periods old (the newest slot is 1 old) and every
//!    more recent one breaches or is missing, for `missing`; otherwise INSUFFICIENT_DATA
//!    (`missing`) — and `ignore` keeps the current state in both cases.
//!
//! This reproduces every row of the two documented tables (3 of 3 and 2 of 3, range 5) and the
//! documented `- - - - X` case (3 of 3, INSUFFICIENT_DATA / current state).
//!
//! Readings where the page is not explicit: the premature-alarm rule measures the oldest
//! breaching datapoint's age over the whole evaluation range (the page says "during the
//! Evaluation Periods" once and "during the evaluation range" once); so `X - - - -` (3 of 3,
//! `missing`) is ALARM, which is also how the alarm keeps re-evaluating "the last set of data
//! points" after a metric stops. The `- - - - X` → INSUFFICIENT_DATA row comes from the
//! earlier edition of the first table (the current one says only "does not go immediately
//! into ALARM state").
//!
//! Limits: CloudWatch does not document the size of the evaluation range beyond the example
//! (N = 3, range 5); [`evaluation_range`] uses N + 2.

use crate::alarm::definition::TreatMissingData;

/// The state an evaluation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeOutcome {
    Alarm,
    Ok,
    InsufficientData,
    /// `ignore`: keep whatever state the alarm is in.
    RetainCurrent,
}

/// The outcome with what it was decided on (indices into the slots, oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeDecision {
    pub outcome: RangeOutcome,
    /// The real datapoints evaluated.
    pub evaluated: Vec<usize>,
    /// The missing slots filled in by the treatment (`breaching` / `notBreaching` only).
    pub filled: Vec<usize>,
    /// Whether the filled slots count as breaching.
    pub filled_breaching: bool,
}

/// How many periods an evaluation looks back: N + 2 (CloudWatch's example: 3 → 5).
pub fn evaluation_range(evaluation_periods: u32) -> usize {
    evaluation_periods as usize + 2
}

/// Decides the state for one evaluation range. `slots[i]` is `Some(true)` for a breaching
/// datapoint, `Some(false)` for a non-breaching one, `None` for a missing one; the last slot is
/// the most recent period.
pub fn decide(
    slots: &[Option<bool>],
    datapoints_to_alarm: u32,
    evaluation_periods: u32,
    treat: TreatMissingData,
) -> RangeDecision {
    let mut out = RangeDecision {
        outcome: RangeOutcome::InsufficientData,
        evaluated: Vec::new(),
        filled: Vec::new(),
        filled_breaching: false,
    };
    decide_into(
        slots,
        datapoints_to_alarm,
        evaluation_periods,
        treat,
        &mut out,
    );
    out
}

/// [`decide`] into `out`, reusing its vectors (the evaluator's hot path allocates nothing).
pub fn decide_into(
    slots: &[Option<bool>],
    datapoints_to_alarm: u32,
    evaluation_periods: u32,
    treat: TreatMissingData,
    out: &mut RangeDecision,
) {
    let m = datapoints_to_alarm as usize;
    let n = evaluation_periods as usize;
    out.evaluated.clear();
    out.filled.clear();
    out.filled_breaching = false;
    // The real datapoints, oldest first (what is evaluated unless case 1 trims it).
    out.evaluated
        .extend((0..slots.len()).filter(|&i| slots[i].is_some()));
    let real = out.evaluated.len();
    let breaching = |idx: &[usize]| idx.iter().filter(|&&i| slots[i] == Some(true)).count();
    let alarm_if = |yes: bool| {
        if yes {
            RangeOutcome::Alarm
        } else {
            RangeOutcome::Ok
        }
    };
    // The most recent `count` missing slots, oldest first.
    let fill = |count: usize, filled: &mut Vec<usize>| {
        filled.extend(
            (0..slots.len())
                .rev()
                .filter(|&i| slots[i].is_none())
                .take(count),
        );
        filled.reverse();
    };

    // 1. Enough real datapoints: the treatment is not needed.
    if real >= n {
        out.evaluated.drain(..real - n);
        out.outcome = alarm_if(breaching(&out.evaluated) >= m);
        return;
    }
    // 2. Nothing at all.
    if real == 0 {
        out.outcome = match treat {
            TreatMissingData::Missing => RangeOutcome::InsufficientData,
            TreatMissingData::Ignore => RangeOutcome::RetainCurrent,
            TreatMissingData::Breaching => {
                fill(n, &mut out.filled);
                out.filled_breaching = true;
                RangeOutcome::Alarm
            }
            TreatMissingData::NotBreaching => {
                fill(n, &mut out.filled);
                RangeOutcome::Ok
            }
        };
        return;
    }
    // 3. Some, but fewer than N.
    let b = breaching(&out.evaluated);
    if b >= m {
        out.outcome = RangeOutcome::Alarm;
        return;
    }
    let to_fill = n - real;
    out.outcome = match treat {
        TreatMissingData::Breaching => {
            // A range cut at the start of its series may hold fewer missing slots than that.
            fill(to_fill, &mut out.filled);
            out.filled_breaching = true;
            alarm_if(b + out.filled.len() >= m)
        }
        TreatMissingData::NotBreaching => {
            fill(to_fill, &mut out.filled);
            RangeOutcome::Ok
        }
        TreatMissingData::Missing | TreatMissingData::Ignore => {
            if b < real {
                RangeOutcome::Ok
            } else {
                // Every real datapoint breaches but there are fewer than M of them.
                let oldest_age = slots.len() - out.evaluated[0];
                match (treat, oldest_age >= m) {
                    (TreatMissingData::Missing, true) => RangeOutcome::Alarm,
                    (TreatMissingData::Missing, false) => RangeOutcome::InsufficientData,
                    _ => RangeOutcome::RetainCurrent,
                }
            }
        }
    };
}

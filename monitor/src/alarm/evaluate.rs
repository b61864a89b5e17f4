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
    let m = datapoints_to_alarm as usize;
    let n = evaluation_periods as usize;
    let real: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_some()).collect();
    let breaching = |idx: &[usize]| idx.iter().filter(|&&i| slots[i] == Some(true)).count();
    let decision =
        |outcome, evaluated: Vec<usize>, filled: Vec<usize>, filled_breaching| RangeDecision {
            outcome,
            evaluated,
            filled,
            filled_breaching,
        };
    let alarm_if = |yes: bool| {
        if yes {
            RangeOutcome::Alarm
        } else {
            RangeOutcome::Ok
        }
    };
    // The most recent `count` missing slots, oldest first.
    let fill = |count: usize| {
        let mut missing: Vec<usize> = (0..slots.len())
            .rev()
            .filter(|&i| slots[i].is_none())
            .take(count)
            .collect();
        missing.reverse();
        missing
    };

    // 1. Enough real datapoints: the treatment is not needed.
    if real.len() >= n {
        let evaluated = real[real.len() - n..].to_vec();
        let b = breaching(&evaluated);
        return decision(alarm_if(b >= m), evaluated, Vec::new(), false);
    }
    // 2. Nothing at all.
    if real.is_empty() {
        return match treat {
            TreatMissingData::Missing => decision(
                RangeOutcome::InsufficientData,
                Vec::new(),
                Vec::new(),
                false,
            ),
            TreatMissingData::Ignore => {
                decision(RangeOutcome::RetainCurrent, Vec::new(), Vec::new(), false)
            }
            TreatMissingData::Breaching => decision(RangeOutcome::Alarm, Vec::new(), fill(n), true),
            TreatMissingData::NotBreaching => {
                decision(RangeOutcome::Ok, Vec::new(), fill(n), false)
            }
        };
    }
    // 3. Some, but fewer than N.
    let b = breaching(&real);
    if b >= m {
        return decision(RangeOutcome::Alarm, real, Vec::new(), false);
    }
    let to_fill = n - real.len();
    match treat {
        TreatMissingData::Breaching => {
            // A range cut at the start of its series may hold fewer missing slots than that.
            let filled = fill(to_fill);
            decision(alarm_if(b + filled.len() >= m), real, filled, true)
        }
        TreatMissingData::NotBreaching => decision(RangeOutcome::Ok, real, fill(to_fill), false),
        TreatMissingData::Missing | TreatMissingData::Ignore => {
            if b < real.len() {
                return decision(RangeOutcome::Ok, real, Vec::new(), false);
            }
            // Every real datapoint breaches but there are fewer than M of them.
            let oldest_age = slots.len() - real[0];
            let outcome = match (treat, oldest_age >= m) {
                (TreatMissingData::Missing, true) => RangeOutcome::Alarm,
                (TreatMissingData::Missing, false) => RangeOutcome::InsufficientData,
                _ => RangeOutcome::RetainCurrent,
            };
            decision(outcome, real, Vec::new(), false)
        }
    }
}

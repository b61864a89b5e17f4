//! State-change reasons in CloudWatch's words: the `NewStateReason` sentence and the
//! `StateReasonData` JSON document stored in `alarm_history.reason` / `reason_data`.
//!
//! Owns: the sentence shapes ("Threshold Crossed: 3 out of the last 3 datapoints [0.0
//! (02/12/26 01:10:00), …] were less than the threshold (1.0) (minimum 3 datapoints for OK ->
//! ALARM transition).", "Threshold Crossed: 1 datapoint [...] was ...", "Threshold Crossed: no
//! datapoints were received for 3 periods and 3 missing datapoints were treated as
//! [Breaching].", "Insufficient Data: 3 datapoints were unknown."), the number format (Java
//! `Double.toString` style for integral values: `1.0`), the datapoint time format
//! (`dd/MM/yy HH:mm:ss`, UTC, datapoints newest first) and the JSON shape
//! (`version`, `queryDate`, `startDate`, `statistic`, `period`, `recentDatapoints` oldest first,
//! `threshold`, `evaluatedDatapoints` newest first with `timestamp`, `sampleCount`, `value`;
//! filled-in missing datapoints carry only `timestamp`).
//!
//! Limits: CloudWatch's wording for mixed real and filled datapoints is not documented; the
//! sentence then names the real datapoints and appends "and K missing datapoints were treated
//! as [Breaching]" (or `[NonBreaching]`).

use serde::Serialize;

/// One period of the evaluation range as the reason shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ReasonPoint {
    /// Period start, epoch ms.
    pub ts: i64,
    pub value: f64,
    pub sample_count: f64,
}

/// A number as CloudWatch prints it (`1.0`, `0.5`, `5000000.0`).
pub(crate) fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// (year, month, day, hour, minute, second, millisecond) of an epoch-ms UTC instant.
pub(crate) fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = in_day / 1000;
    (
        year,
        month,
        day,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
        (in_day % 1000) as u32,
    )
}

/// `dd/MM/yy HH:mm:ss` (the datapoint times in a state reason).
pub(crate) fn reason_time(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(ms);
    format!(
        "{d:02}/{mo:02}/{:02} {h:02}:{mi:02}:{s:02}",
        y.rem_euclid(100)
    )
}

/// `yyyy-MM-ddTHH:mm:ss.SSS+0000`: the times in the reason data, and an SNS message's
/// `StateChangeTime`.
pub fn iso_time(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}+0000")
}

fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
}

fn point_list(points: &[ReasonPoint]) -> String {
    let items: Vec<String> = points
        .iter()
        .rev()
        .map(|p| format!("{} ({})", number(p.value), reason_time(p.ts)))
        .collect();
    format!("[{}]", items.join(", "))
}

fn filled_words(filled: usize, breaching: bool) -> String {
    format!(
        "{filled} missing {} treated as [{}]",
        plural(filled, "datapoint was", "datapoints were"),
        if breaching {
            "Breaching"
        } else {
            "NonBreaching"
        }
    )
}

/// What a threshold sentence is about.
pub(crate) struct ThresholdCrossing<'a> {
    /// The real datapoints on the side of the new state (breaching for ALARM, not breaching
    /// for OK), oldest first.
    pub points: &'a [ReasonPoint],
    /// Missing datapoints filled in and counted on that side.
    pub filled_counted: usize,
    /// Missing datapoints filled in on the other side.
    pub filled_other: usize,
    /// Whether filled datapoints are breaching.
    pub filled_breaching: bool,
    /// Whether the range held no real datapoint at all.
    pub no_real: bool,
    pub evaluation_periods: u32,
    /// "less than" etc., with "not " in front for OK.
    pub comparison_phrase: String,
    pub threshold: f64,
    /// `(minimum, old, new)` for the trailing "(minimum M datapoints for OK -> ALARM
    /// transition)"; `None` for 1-of-1 alarms.
    pub minimum: Option<(usize, &'static str, &'static str)>,
}

/// The `NewStateReason` of an OK or ALARM state.
pub(crate) fn threshold_crossed(c: &ThresholdCrossing<'_>) -> String {
    let total_filled = c.filled_counted + c.filled_other;
    let mut s = String::from("Threshold Crossed: ");
    if c.no_real && total_filled > 0 {
        let n = c.evaluation_periods as usize;
        s.push_str(&format!(
            "no datapoints were received for {n} {} and {}",
            plural(n, "period", "periods"),
            filled_words(total_filled, c.filled_breaching)
        ));
    } else {
        let k = c.points.len() + c.filled_counted;
        // The real datapoints on the new state's side, if any ("[...] ").
        let list = if c.points.is_empty() {
            String::new()
        } else {
            format!("{} ", point_list(c.points))
        };
        if c.evaluation_periods == 1 && total_filled == 0 {
            s.push_str(&format!("{k} datapoint {list}was"));
        } else {
            s.push_str(&format!(
                "{k} out of the last {} datapoints {list}{}",
                c.evaluation_periods,
                plural(k, "was", "were")
            ));
        }
        s.push_str(&format!(
            " {} the threshold ({})",
            c.comparison_phrase,
            number(c.threshold)
        ));
        if total_filled > 0 {
            s.push_str(" and ");
            s.push_str(&filled_words(total_filled, c.filled_breaching));
        }
    }
    if let Some((min, old, new)) = c.minimum {
        s.push_str(&format!(
            " (minimum {min} {} for {old} -> {new} transition)",
            plural(min, "datapoint", "datapoints")
        ));
    }
    s.push('.');
    s
}

/// The `NewStateReason` of INSUFFICIENT_DATA.
pub(crate) fn insufficient_data(unknown: usize) -> String {
    format!(
        "Insufficient Data: {unknown} {} unknown.",
        plural(unknown, "datapoint was", "datapoints were")
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EvaluatedDatapoint {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_count: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StateReasonData<'a> {
    version: &'static str,
    query_date: String,
    start_date: String,
    statistic: &'a str,
    period: u32,
    recent_datapoints: Vec<f64>,
    threshold: f64,
    evaluated_datapoints: Vec<EvaluatedDatapoint>,
}

/// What the reason data document is built from.
pub(crate) struct ReasonDataInput<'a> {
    pub query_ms: i64,
    pub start_ms: i64,
    pub statistic: &'a str,
    pub period_s: u32,
    /// Every real datapoint of the range, oldest first.
    pub recent: &'a [ReasonPoint],
    pub threshold: f64,
    /// Evaluated real datapoints, oldest first.
    pub evaluated: &'a [ReasonPoint],
    /// Period starts of the filled-in missing datapoints.
    pub filled: &'a [i64],
}

/// The `StateReasonData` JSON text.
pub(crate) fn reason_data(input: &ReasonDataInput<'_>) -> String {
    let mut evaluated: Vec<(i64, EvaluatedDatapoint)> = input
        .evaluated
        .iter()
        .map(|p| {
            (
                p.ts,
                EvaluatedDatapoint {
                    timestamp: iso_time(p.ts),
                    sample_count: Some(p.sample_count),
                    value: Some(p.value),
                },
            )
        })
        .chain(input.filled.iter().map(|&ts| {
            (
                ts,
                EvaluatedDatapoint {
                    timestamp: iso_time(ts),
                    sample_count: None,
                    value: None,
                },
            )
        }))
        .collect();
    evaluated.sort_by_key(|e| std::cmp::Reverse(e.0));
    let data = StateReasonData {
        version: "1.0",
        query_date: iso_time(input.query_ms),
        start_date: iso_time(input.start_ms),
        statistic: input.statistic,
        period: input.period_s,
        recent_datapoints: input.recent.iter().map(|p| p.value).collect(),
        threshold: input.threshold,
        evaluated_datapoints: evaluated.into_iter().map(|(_, e)| e).collect(),
    };
    serde_json::to_string(&data).expect("reason data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_numbers() {
        // 2026-02-12T01:05:00Z = 20496 days + 3900 s.
        let ms = (20_496 * 86_400 + 3_900) * 1000;
        assert_eq!(reason_time(ms), "12/02/26 01:05:00");
        assert_eq!(iso_time(ms + 7), "2026-02-12T01:05:00.007+0000");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(number(0.0), "0.0");
        assert_eq!(number(5_000_000.0), "5000000.0");
        assert_eq!(number(0.25), "0.25");
    }
}

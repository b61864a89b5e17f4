//! The alarm module against CloudWatch's documented behaviour ("Using Amazon CloudWatch
//! alarms": the missing-data tables, M out of N) and against the VPN incidents it exists for.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tunnelwatch_monitor::alarm::{
    AlarmConfigError, AlarmDefinition, AlarmEvaluator, AlarmState, Comparison, RangeOutcome,
    Resume, SavedAlarms, Transition, TreatMissingData, decide, evaluation_range,
};
use tunnelwatch_monitor::{Datapoint, MetricName};

const MIN: i64 = 60_000;
/// 2026-02-12T00:00:00Z.
const T0: i64 = 20_496 * 86_400_000;

fn at(h: i64, m: i64) -> i64 {
    T0 + (h * 60 + m) * MIN
}

/// "0 - X - X" → slots, oldest first (0 not breaching, X breaching, - missing).
fn slots(data: &str) -> Vec<Option<bool>> {
    data.split_whitespace()
        .map(|c| match c {
            "0" => Some(false),
            "X" => Some(true),
            "-" => None,
            other => panic!("bad slot {other}"),
        })
        .collect()
}

const MODES: [TreatMissingData; 4] = [
    TreatMissingData::Missing,
    TreatMissingData::Ignore,
    TreatMissingData::Breaching,
    TreatMissingData::NotBreaching,
];

fn outcome(s: &str) -> RangeOutcome {
    match s {
        "OK" => RangeOutcome::Ok,
        "ALARM" => RangeOutcome::Alarm,
        "INSUFFICIENT_DATA" => RangeOutcome::InsufficientData,
        "RETAIN" => RangeOutcome::RetainCurrent,
        other => panic!("bad outcome {other}"),
    }
}

/// The two tables of "How alarm state is evaluated when data is missing" (evaluation range 5,
/// most recent datapoint on the right), columns MISSING, IGNORE, BREACHING, NOT BREACHING, plus
/// the `- - - - X` case of "Avoiding premature transitions to alarm state" (and of the earlier
/// edition of the first table).
const MISSING_DATA_TABLE: &[(u32, u32, &str, [&str; 4])] = &[
    // Datapoints to Alarm 3, Evaluation Periods 3.
    (3, 3, "0 - X - X", ["OK", "OK", "OK", "OK"]),
    (3, 3, "0 - - - -", ["OK", "OK", "OK", "OK"]),
    (
        3,
        3,
        "- - - - -",
        ["INSUFFICIENT_DATA", "RETAIN", "ALARM", "OK"],
    ),
    (3, 3, "0 X X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
    (3, 3, "- - X - -", ["ALARM", "RETAIN", "ALARM", "OK"]),
    (
        3,
        3,
        "- - - - X",
        ["INSUFFICIENT_DATA", "RETAIN", "ALARM", "OK"],
    ),
    // Datapoints to Alarm 2, Evaluation Periods 3.
    (2, 3, "0 - X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
    (2, 3, "0 0 X 0 X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
    (2, 3, "0 - X - -", ["OK", "OK", "ALARM", "OK"]),
    (2, 3, "- - - - 0", ["OK", "OK", "ALARM", "OK"]),
    (2, 3, "- - - X -", ["ALARM", "RETAIN", "ALARM", "OK"]),
];

#[test]
fn documented_missing_data_table_rule() {
    assert_eq!(evaluation_range(3), 5);
    for &(m, n, data, expected) in MISSING_DATA_TABLE {
        for (mode, want) in MODES.iter().zip(expected) {
            let got = decide(&slots(data), m, n, *mode).outcome;
            assert_eq!(got, outcome(want), "{m} of {n}, {data:?}, {mode:?}");
        }
    }
}

/// A per-tunnel `TunnelDataIn` Sum > 1 alarm, 5-minute periods: "X" = 5 bytes, "0" = 0 bytes.
fn bytes_alarm(m: u32, n: u32, treat: TreatMissingData) -> AlarmDefinition {
    serde_json::from_value(json!({
        "name": "bytes",
        "metric": "TunnelDataIn",
        "dimensions": {"VpnId": "*", "TunnelIpAddress": "*"},
        "statistic": "Sum",
        "period": 300,
        "evaluation_periods": n,
        "datapoints_to_alarm": m,
        "comparison": "GreaterThanThreshold",
        "threshold": 1.0,
        "treat_missing_data": treat.as_str(),
    }))
    .unwrap()
}

fn bytes_point(ts: i64, bytes: f64) -> Datapoint {
    Datapoint {
        ts,
        metric: MetricName::TunnelDataIn,
        vpn_id: Arc::from("vpn-1"),
        tunnel_ip: Some(Arc::from("192.0.2.1")),
        concentrator_id: None,
        sample_count: 1.0,
        sum: bytes,
        minimum: bytes,
        maximum: bytes,
    }
}

/// The same table end to end: real datapoints through the evaluator. An anchor datapoint
/// ten periods earlier creates the instance; the row's five periods follow; the state after
/// the evaluation at the end of the fifth is the table's (for "Retain current state": the state
/// after the evaluation before it).
#[test]
fn documented_missing_data_table_through_the_evaluator() {
    const P: i64 = 5 * MIN;
    for &(m, n, data, expected) in MISSING_DATA_TABLE {
        for (mode, want) in MODES.iter().zip(expected) {
            let mut ev = AlarmEvaluator::new([bytes_alarm(m, n, *mode)]).unwrap();
            ev.push(&bytes_point(T0 - 10 * P, 0.0));
            for (k, slot) in slots(data).into_iter().enumerate() {
                if let Some(breach) = slot {
                    let bytes = if breach { 5.0 } else { 0.0 };
                    ev.push(&bytes_point(T0 + k as i64 * P + 2 * MIN, bytes));
                }
            }
            ev.evaluate(T0 + 4 * P);
            let before = ev.state("bytes/vpn-1/192.0.2.1").unwrap();
            ev.evaluate(T0 + 5 * P);
            let after = ev.state("bytes/vpn-1/192.0.2.1").unwrap();
            let expected_state = match want {
                "OK" => AlarmState::Ok,
                "ALARM" => AlarmState::Alarm,
                "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
                _ => before,
            };
            assert_eq!(after, expected_state, "{m} of {n}, {data:?}, {mode:?}");
        }
    }
}

#[test]
fn m_out_of_n_with_every_datapoint_present() {
    // (M, N, the N + 2 datapoints of the range, expected): only the N most recent count.
    let cases: &[(u32, u32, &str, &str)] = &[
        (1, 1, "0 0 X", "ALARM"),
        (1, 1, "X X 0", "OK"),
        (2, 3, "X X 0 X 0", "OK"),
        (2, 3, "0 0 X 0 X", "ALARM"),
        (3, 3, "0 0 X X X", "ALARM"),
        (3, 3, "X X X X 0", "OK"),
        (3, 5, "X X 0 X 0 X 0", "OK"),
        (3, 5, "0 0 X 0 X X 0", "ALARM"),
        (4, 5, "0 0 X X 0 X X", "ALARM"),
        (5, 5, "0 0 X X X X X", "ALARM"),
        (5, 5, "X X X X X X 0", "OK"),
    ];
    for &(m, n, data, want) in cases {
        assert_eq!(slots(data).len(), evaluation_range(n));
        for mode in MODES {
            assert_eq!(
                decide(&slots(data), m, n, mode).outcome,
                outcome(want),
                "{m} of {n}, {data:?}, {mode:?}"
            );
        }
    }
}

/// Fewer than N real datapoints (not rows of the documented tables; they follow from its
/// rules: M real breaching datapoints are enough whatever the treatment; otherwise the
/// treatment fills the N − real most recent missing slots).
#[test]
fn m_out_of_n_with_fewer_than_n_datapoints() {
    let cases: &[(u32, u32, &str, [&str; 4])] = &[
        (2, 3, "- - X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
        (2, 3, "- - - X X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
        (1, 3, "- - - - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
        (2, 3, "- - - 0 X", ["OK", "OK", "ALARM", "OK"]),
        (
            3,
            3,
            "- - - X X",
            ["INSUFFICIENT_DATA", "RETAIN", "ALARM", "OK"],
        ),
        (3, 3, "- - X X -", ["ALARM", "RETAIN", "ALARM", "OK"]),
        (
            3,
            5,
            "- - - - - X X",
            ["INSUFFICIENT_DATA", "RETAIN", "ALARM", "OK"],
        ),
        (3, 5, "- - - - X - X", ["ALARM", "RETAIN", "ALARM", "OK"]),
        (4, 5, "- - - 0 X - X", ["OK", "OK", "ALARM", "OK"]),
        (
            4,
            5,
            "- - - - X - X",
            ["INSUFFICIENT_DATA", "RETAIN", "ALARM", "OK"],
        ),
    ];
    for &(m, n, data, expected) in cases {
        assert_eq!(slots(data).len(), evaluation_range(n));
        for (mode, want) in MODES.iter().zip(expected) {
            let got = decide(&slots(data), m, n, *mode).outcome;
            assert_eq!(got, outcome(want), "{m} of {n}, {data:?}, {mode:?}");
        }
    }
    // Breaching fills the most recent missing slots: "0 - X - -", 2 of 3, fills the last one.
    let d = decide(&slots("0 - X - -"), 2, 3, TreatMissingData::Breaching);
    assert_eq!(
        (d.evaluated, d.filled, d.filled_breaching),
        (vec![0, 2], vec![4], true)
    );
}

#[test]
fn late_datapoints_count_while_their_period_is_in_range() {
    let mut ev = AlarmEvaluator::new([a1(TreatMissingData::Missing, 1)]).unwrap();
    assert_eq!(ev.push(&tunnel_minute(VPN, DOWN_IP, at(1, 0), 60.0)), 1);
    ev.evaluate(at(2, 0));
    // The range of the next evaluation (02:05) starts at 01:40.
    assert_eq!(ev.push(&tunnel_minute(VPN, DOWN_IP, at(1, 40), 0.0)), 1);
    assert_eq!(ev.push(&tunnel_minute(VPN, DOWN_IP, at(1, 39), 0.0)), 0);
    for m in [45, 50, 55] {
        ev.push(&tunnel_minute(VPN, DOWN_IP, at(1, m), 0.0));
    }
    let t = ev.evaluate(at(2, 5));
    // 01:40, 01:45, 01:50, 01:55 breach (01:40 arrived after the 01:45 evaluation); the lone
    // 01:00 datapoint left the range at 01:30, so the alarm was INSUFFICIENT_DATA.
    assert_eq!(
        summary(&t),
        [(id(DOWN_IP), at(2, 5), "INSUFFICIENT_DATA", "ALARM")]
    );
    assert!(t[0].reason.starts_with("Threshold Crossed: 3 out of the last 3 datapoints [0.0 (12/02/26 01:55:00), 0.0 (12/02/26 01:50:00), 0.0 (12/02/26 01:45:00)]"), "{}", t[0].reason);
}

#[test]
fn comparison_operators() {
    use Comparison::*;
    let cases = [
        (GreaterThanOrEqualToThreshold, 1.0, true),
        (GreaterThanOrEqualToThreshold, 0.99, false),
        (GreaterThanOrEqualToThreshold, 1.01, true),
        (GreaterThanThreshold, 1.0, false),
        (GreaterThanThreshold, 1.01, true),
        (GreaterThanThreshold, 0.99, false),
        (LessThanThreshold, 1.0, false),
        (LessThanThreshold, 0.99, true),
        (LessThanThreshold, 1.01, false),
        (LessThanOrEqualToThreshold, 1.0, true),
        (LessThanOrEqualToThreshold, 0.99, true),
        (LessThanOrEqualToThreshold, 1.01, false),
    ];
    for (op, value, breaches) in cases {
        assert_eq!(op.breaches(value, 1.0), breaches, "{op:?} {value}");
        // And through deserialisation and an evaluation: one period, 1 of 1.
        let def: AlarmDefinition = serde_json::from_value(json!({
            "name": "cmp", "metric": "TunnelDataIn",
            "dimensions": {"VpnId": "vpn-1", "TunnelIpAddress": "192.0.2.1"},
            "statistic": "Maximum", "period": 60, "evaluation_periods": 1,
            "comparison": op.as_str(), "threshold": 1.0,
        }))
        .unwrap();
        let mut ev = AlarmEvaluator::new([def]).unwrap();
        ev.push(&bytes_point(T0, value));
        let t = ev.evaluate(T0 + MIN);
        let want = if breaches {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        };
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].new_state, want, "{op:?} {value}");
    }
}

#[test]
fn period_statistics_from_minute_datapoints() {
    // One 300 s period from two minutes: 30 of 30 known seconds up, then 60 seconds down.
    let minutes = [
        Datapoint {
            sample_count: 30.0,
            sum: 30.0,
            minimum: 1.0,
            maximum: 1.0,
            ..tunnel_minute(VPN, DOWN_IP, at(1, 0), 60.0)
        },
        tunnel_minute(VPN, DOWN_IP, at(1, 1), 0.0),
    ];
    for (statistic, value) in [
        ("Average", 30.0 / 90.0),
        ("Sum", 30.0),
        ("Minimum", 0.0),
        ("Maximum", 1.0),
        ("SampleCount", 90.0),
    ] {
        let def = with(json!({
            "statistic": statistic, "evaluation_periods": 1,
            "comparison": "GreaterThanOrEqualToThreshold", "threshold": -1.0,
        }));
        let t = run(vec![def], &minutes, at(1, 5));
        assert_eq!(t.len(), 1, "{statistic}");
        let data: Value = serde_json::from_str(&t[0].reason_data).unwrap();
        assert_eq!(data["statistic"], statistic);
        assert_eq!(
            data["evaluatedDatapoints"][0],
            json!({"timestamp": "2026-02-12T01:00:00.000+0000", "sampleCount": 90.0,
                   "value": value}),
            "{statistic}"
        );
    }
}

fn base_definition() -> Value {
    json!({
        "name": "A1",
        "metric": "TunnelState",
        "dimensions": {"VpnId": "*", "TunnelIpAddress": "*"},
        "statistic": "Average",
        "period": 300,
        "evaluation_periods": 3,
        "comparison": "LessThanThreshold",
        "threshold": 1.0,
    })
}

fn with(changes: Value) -> AlarmDefinition {
    let mut v = base_definition();
    for (k, val) in changes.as_object().unwrap() {
        v[k] = val.clone();
    }
    serde_json::from_value(v).unwrap()
}

#[test]
fn definition_defaults() {
    let d = with(json!({}));
    assert_eq!(d.namespace, "AWS/VPN");
    assert_eq!(d.datapoints_to_alarm(), 3);
    assert_eq!(d.treat_missing_data, TreatMissingData::Missing);
    assert_eq!(d.recovery_periods, 1);
    assert!(d.actions.alarm.is_empty() && d.actions.ok.is_empty());
    assert!(d.is_per_tunnel());
    assert_eq!(d.validate(), Ok(()));
    let d = with(json!({
        "description": "tunnel down", "datapoints_to_alarm": 2,
        "treat_missing_data": "notBreaching",
        "actions": {"alarm": ["pager"], "ok": ["pager"], "insufficient_data": ["chat"]},
        "recovery_periods": 3,
    }));
    assert_eq!(d.treat_missing_data, TreatMissingData::NotBreaching);
    assert_eq!(d.actions.insufficient_data, ["chat"]);
    assert_eq!(d.validate(), Ok(()));
    // A derived metric lives in the tunnelwatch namespace.
    let d = with(json!({"metric": "BgpFlaps", "namespace": "tunnelwatch"}));
    assert_eq!(d.validate(), Ok(()));
}

#[test]
fn unknown_keys_are_refused() {
    let mut v = base_definition();
    v["evaluation_period"] = json!(3);
    assert!(serde_json::from_value::<AlarmDefinition>(v).is_err());
    let mut v = base_definition();
    v["actions"] = json!({"alarms": ["pager"]});
    assert!(serde_json::from_value::<AlarmDefinition>(v).is_err());
    let mut v = base_definition();
    v["treat_missing_data"] = json!("not_breaching");
    assert!(serde_json::from_value::<AlarmDefinition>(v).is_err());
    let mut v = base_definition();
    v["statistic"] = json!("p99");
    assert!(serde_json::from_value::<AlarmDefinition>(v).is_err());
}

#[test]
fn validation_errors() {
    let alarm = "A1".to_owned();
    let cases: Vec<(Value, AlarmConfigError)> = vec![
        (
            json!({"metric": "TunnelStatus"}),
            AlarmConfigError::UnknownMetric {
                alarm: alarm.clone(),
                namespace: "AWS/VPN".into(),
                metric: "TunnelStatus".into(),
            },
        ),
        (
            json!({"metric": "BgpFlaps"}),
            AlarmConfigError::UnknownMetric {
                alarm: alarm.clone(),
                namespace: "AWS/VPN".into(),
                metric: "BgpFlaps".into(),
            },
        ),
        (
            json!({"period": 0}),
            AlarmConfigError::InvalidPeriod {
                alarm: alarm.clone(),
                period: 0,
            },
        ),
        (
            json!({"period": 90}),
            AlarmConfigError::InvalidPeriod {
                alarm: alarm.clone(),
                period: 90,
            },
        ),
        (
            json!({"period": 30}),
            AlarmConfigError::InvalidPeriod {
                alarm: alarm.clone(),
                period: 30,
            },
        ),
        (
            json!({"evaluation_periods": 0, "datapoints_to_alarm": 1}),
            AlarmConfigError::ZeroEvaluationPeriods {
                alarm: alarm.clone(),
            },
        ),
        (
            json!({"datapoints_to_alarm": 4}),
            AlarmConfigError::InvalidDatapointsToAlarm {
                alarm: alarm.clone(),
                datapoints_to_alarm: 4,
                evaluation_periods: 3,
            },
        ),
        (
            json!({"datapoints_to_alarm": 0}),
            AlarmConfigError::InvalidDatapointsToAlarm {
                alarm: alarm.clone(),
                datapoints_to_alarm: 0,
                evaluation_periods: 3,
            },
        ),
        (
            json!({"recovery_periods": 0}),
            AlarmConfigError::ZeroRecoveryPeriods {
                alarm: alarm.clone(),
            },
        ),
        (
            json!({"dimensions": {"VpnId": "*", "TunnelIp": "*"}}),
            AlarmConfigError::UnknownDimension {
                alarm: alarm.clone(),
                dimension: "TunnelIp".into(),
            },
        ),
        (
            json!({"dimensions": {"TunnelIpAddress": "192.0.2.1"}}),
            AlarmConfigError::TunnelWithoutVpn {
                alarm: alarm.clone(),
            },
        ),
        (
            json!({"dimensions": {}}),
            AlarmConfigError::MissingVpnId {
                alarm: alarm.clone(),
            },
        ),
    ];
    for (change, want) in cases {
        let d = with(change.clone());
        assert_eq!(d.validate(), Err(want.clone()), "{change}");
        assert_eq!(AlarmEvaluator::new([d]).err(), Some(want), "{change}");
    }
    let dup = AlarmEvaluator::new([with(json!({})), with(json!({}))]).err();
    assert_eq!(dup, Some(AlarmConfigError::DuplicateName { alarm }));
}

// ---- VPN scenarios ------------------------------------------------------------------------

const VPN: &str = "vpn-1";
const DOWN_IP: &str = "198.51.100.1";
const UP_IP: &str = "198.51.100.2";

/// The per-tunnel A1 alarm of the reference: TunnelState (Average) < 1, 300 s, 3 of 3.
fn a1(treat: TreatMissingData, recovery_periods: u32) -> AlarmDefinition {
    with(json!({
        "treat_missing_data": treat.as_str(),
        "recovery_periods": recovery_periods,
    }))
}

/// A tunnel-level TunnelState minute: `up` seconds of 60 up.
fn tunnel_minute(vpn: &str, ip: &str, ts: i64, up: f64) -> Datapoint {
    Datapoint {
        ts,
        metric: MetricName::TunnelState,
        vpn_id: Arc::from(vpn),
        tunnel_ip: Some(Arc::from(ip)),
        concentrator_id: None,
        sample_count: 60.0,
        sum: up,
        minimum: if up < 60.0 { 0.0 } else { 1.0 },
        maximum: if up > 0.0 { 1.0 } else { 0.0 },
    }
}

/// Minute datapoints from `from` to `to` (exclusive), down in the given minute ranges.
fn tunnel_series(ip: &str, from: i64, to: i64, down: &[(i64, i64)]) -> Vec<Datapoint> {
    (from..to)
        .step_by(MIN as usize)
        .map(|ts| {
            let is_down = down.iter().any(|&(a, b)| ts >= a && ts < b);
            tunnel_minute(VPN, ip, ts, if is_down { 0.0 } else { 60.0 })
        })
        .collect()
}

fn run(defs: Vec<AlarmDefinition>, points: &[Datapoint], now: i64) -> Vec<Transition> {
    let mut ev = AlarmEvaluator::new(defs).unwrap();
    for p in points {
        ev.push(p);
    }
    ev.evaluate(now)
}

/// (instance id, ts, old, new) for compact assertions.
fn summary(ts: &[Transition]) -> Vec<(String, i64, &'static str, &'static str)> {
    ts.iter()
        .map(|t| {
            (
                t.instance_id.to_string(),
                t.ts,
                t.old_state.as_str(),
                t.new_state.as_str(),
            )
        })
        .collect()
}

fn id(ip: &str) -> String {
    format!("A1/{VPN}/{ip}")
}

#[test]
fn scripted_incident_one_alarm_and_one_ok_for_the_down_tunnel() {
    let mut points = tunnel_series(DOWN_IP, at(0, 0), at(5, 0), &[(at(1, 0), at(3, 30))]);
    points.extend(tunnel_series(UP_IP, at(0, 0), at(5, 0), &[]));
    let t = run(vec![a1(TreatMissingData::Breaching, 1)], &points, at(5, 0));
    // 00:05: first evaluation of each tunnel: one real non-breaching period and two missing
    // ones filled as breaching = 2 of 3 breaching: INSUFFICIENT_DATA -> OK.
    // 01:15: periods [01:00,01:05), [01:05,01:10), [01:10,01:15) have Average 0 < 1: 3 of 3.
    // 03:35: [03:30,03:35) is the first period with Average 1 (the last down one is
    // [03:25,03:30)); 1 non-breaching of 3 >= N - M + 1 = 1: ALARM -> OK.
    assert_eq!(
        summary(&t),
        [
            (id(DOWN_IP), at(0, 5), "INSUFFICIENT_DATA", "OK"),
            (id(UP_IP), at(0, 5), "INSUFFICIENT_DATA", "OK"),
            (id(DOWN_IP), at(1, 15), "OK", "ALARM"),
            (id(DOWN_IP), at(3, 35), "ALARM", "OK"),
        ]
    );
    let alarm = &t[2];
    assert_eq!(&*alarm.alarm_name, "A1");
    assert_eq!(&*alarm.vpn_id, VPN);
    assert_eq!(alarm.tunnel_ip.as_deref(), Some(DOWN_IP));
    assert_eq!(
        alarm.reason,
        "Threshold Crossed: 3 out of the last 3 datapoints [0.0 (12/02/26 01:10:00), 0.0 \
         (12/02/26 01:05:00), 0.0 (12/02/26 01:00:00)] were less than the threshold (1.0) \
         (minimum 3 datapoints for OK -> ALARM transition)."
    );
    let data: Value = serde_json::from_str(&alarm.reason_data).unwrap();
    assert_eq!(
        data,
        json!({
            "version": "1.0",
            "queryDate": "2026-02-12T01:15:00.000+0000",
            "startDate": "2026-02-12T00:50:00.000+0000",
            "statistic": "Average",
            "period": 300,
            "recentDatapoints": [1.0, 1.0, 0.0, 0.0, 0.0],
            "threshold": 1.0,
            "evaluatedDatapoints": [
                {"timestamp": "2026-02-12T01:10:00.000+0000", "sampleCount": 300.0, "value": 0.0},
                {"timestamp": "2026-02-12T01:05:00.000+0000", "sampleCount": 300.0, "value": 0.0},
                {"timestamp": "2026-02-12T01:00:00.000+0000", "sampleCount": 300.0, "value": 0.0},
            ],
        })
    );
    assert_eq!(
        t[3].reason,
        "Threshold Crossed: 1 out of the last 3 datapoints [1.0 (12/02/26 03:30:00)] was not \
         less than the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition)."
    );
}

#[test]
fn ten_minute_outage_does_not_fire_three_of_three() {
    // Down 01:00-01:10: two breaching periods, the third ([01:10,01:15)) is up.
    let points = tunnel_series(DOWN_IP, at(0, 0), at(3, 0), &[(at(1, 0), at(1, 10))]);
    let t = run(vec![a1(TreatMissingData::Breaching, 1)], &points, at(3, 0));
    assert_eq!(
        summary(&t),
        [(id(DOWN_IP), at(0, 5), "INSUFFICIENT_DATA", "OK")]
    );
    // The Average statistic breaches on any down second, so a 10-minute outage that straddles
    // three periods (01:02-01:12 touches [01:00..), [01:05..), [01:10..)) does fire; the older
    // form of A1 (Maximum <= 0) does not.
    let points = tunnel_series(DOWN_IP, at(0, 0), at(3, 0), &[(at(1, 2), at(1, 12))]);
    let t = run(vec![a1(TreatMissingData::Breaching, 1)], &points, at(3, 0));
    assert_eq!(t.len(), 3, "{:?}", summary(&t));
    let maximum = with(json!({
        "statistic": "Maximum", "comparison": "LessThanOrEqualToThreshold", "threshold": 0.0,
        "treat_missing_data": "breaching",
    }));
    let t = run(vec![maximum], &points, at(3, 0));
    assert_eq!(
        summary(&t),
        [(id(DOWN_IP), at(0, 5), "INSUFFICIENT_DATA", "OK")]
    );
}

#[test]
fn silent_down_tunnel_stays_in_alarm_when_missing_is_breaching() {
    // Down from 01:00; the last datapoint is the 01:29 minute, then nothing.
    let points = tunnel_series(DOWN_IP, at(0, 0), at(1, 30), &[(at(1, 0), at(9, 0))]);
    let t = run(vec![a1(TreatMissingData::Breaching, 1)], &points, at(6, 0));
    assert_eq!(
        summary(&t),
        [
            (id(DOWN_IP), at(0, 5), "INSUFFICIENT_DATA", "OK"),
            (id(DOWN_IP), at(1, 15), "OK", "ALARM"),
        ]
    );

    // With `missing`: the evaluations at 01:35 and 01:40 still have 4 and 3 real breaching
    // periods; 01:45 (X X - - -) and 01:50 (X - - - -) keep ALARM by the premature-alarm rule
    // (the oldest breaching datapoint is 5 >= M = 3 periods old); 01:55 has no datapoint in
    // its 5-period range: INSUFFICIENT_DATA.
    let mut ev = AlarmEvaluator::new([a1(TreatMissingData::Missing, 1)]).unwrap();
    for p in &points {
        ev.push(p);
    }
    let t = ev.evaluate(at(6, 0));
    assert_eq!(
        summary(&t),
        [
            (id(DOWN_IP), at(0, 5), "INSUFFICIENT_DATA", "OK"),
            (id(DOWN_IP), at(1, 15), "OK", "ALARM"),
            (id(DOWN_IP), at(1, 55), "ALARM", "INSUFFICIENT_DATA"),
        ]
    );
    assert_eq!(t[2].reason, "Insufficient Data: 3 datapoints were unknown.");
    let listed = ev.instances();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, AlarmState::InsufficientData);
    assert_eq!(listed[0].since, Some(at(1, 55)));
    assert_eq!(listed[0].next_evaluation, Some(at(6, 5)));

    // `notBreaching` goes to OK at 01:45 (X X + one filled non-breaching is 2 of 3)...
    let t = run(
        vec![a1(TreatMissingData::NotBreaching, 1)],
        &points,
        at(6, 0),
    );
    assert_eq!(summary(&t).last().unwrap().1, at(1, 45));
    assert_eq!(summary(&t).last().unwrap().3, "OK");
    // ...and `ignore` keeps ALARM.
    let t = run(vec![a1(TreatMissingData::Ignore, 1)], &points, at(6, 0));
    assert_eq!(summary(&t).last().unwrap().3, "ALARM");
}

#[test]
fn silent_up_tunnel_goes_to_alarm_when_missing_is_breaching() {
    // Up, last datapoint the 01:29 minute. 01:45 (0 0 - - -) and 01:50 (0 - - - -) stay OK:
    // the real non-breaching datapoint is evaluated with only N - real filled ones; 01:55 has
    // no datapoint in range: ALARM (the documented "next time this alarm is evaluated").
    let points = tunnel_series(UP_IP, at(0, 0), at(1, 30), &[]);
    let t = run(vec![a1(TreatMissingData::Breaching, 1)], &points, at(3, 0));
    assert_eq!(
        summary(&t),
        [
            (id(UP_IP), at(0, 5), "INSUFFICIENT_DATA", "OK"),
            (id(UP_IP), at(1, 55), "OK", "ALARM"),
        ]
    );
    assert_eq!(
        t[1].reason,
        "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints \
         were treated as [Breaching] (minimum 3 datapoints for OK -> ALARM transition)."
    );
    let data: Value = serde_json::from_str(&t[1].reason_data).unwrap();
    assert_eq!(data["recentDatapoints"], json!([]));
    assert_eq!(
        data["evaluatedDatapoints"],
        json!([
            {"timestamp": "2026-02-12T01:50:00.000+0000"},
            {"timestamp": "2026-02-12T01:45:00.000+0000"},
            {"timestamp": "2026-02-12T01:40:00.000+0000"},
        ])
    );
}

/// TunnelState Maximum <= 0 per tunnel, one 5-minute period.
fn one_period_down(recovery_periods: u32) -> AlarmDefinition {
    with(json!({
        "statistic": "Maximum", "comparison": "LessThanOrEqualToThreshold", "threshold": 0.0,
        "evaluation_periods": 1, "treat_missing_data": "breaching",
        "recovery_periods": recovery_periods,
    }))
}

#[test]
fn recovery_periods_suppress_a_flap() {
    // Down 01:00-03:00 except the single period [02:00,02:05) when it is up.
    let down = [(at(1, 0), at(2, 0)), (at(2, 5), at(3, 0))];
    let points = tunnel_series(DOWN_IP, at(0, 0), at(4, 0), &down);

    // 1 of 1, recovery 1 (CloudWatch): the up period is evaluated OK at 02:05, the next at
    // 02:10 is ALARM again.
    let t = run(vec![one_period_down(1)], &points, at(4, 0));
    let flap = [
        (id(DOWN_IP), at(0, 5), "INSUFFICIENT_DATA", "OK"),
        (id(DOWN_IP), at(1, 5), "OK", "ALARM"),
        (id(DOWN_IP), at(2, 5), "ALARM", "OK"),
        (id(DOWN_IP), at(2, 10), "OK", "ALARM"),
        (id(DOWN_IP), at(3, 5), "ALARM", "OK"),
    ];
    assert_eq!(summary(&t), flap);
    // Recovery 3: the single good period at 02:05 does not leave ALARM; after the outage three
    // good periods (evaluated at 03:05, 03:10, 03:15) are needed: OK at 03:15.
    let t = run(vec![one_period_down(3)], &points, at(4, 0));
    assert_eq!(
        summary(&t),
        [
            (id(DOWN_IP), at(0, 5), "INSUFFICIENT_DATA", "OK"),
            (id(DOWN_IP), at(1, 5), "OK", "ALARM"),
            (id(DOWN_IP), at(3, 15), "ALARM", "OK"),
        ]
    );
    assert!(
        t[2].reason
            .ends_with("Left ALARM after 3 consecutive periods not breaching (recovery_periods).")
    );

    // With A1 (3 of 3) CloudWatch leaves ALARM at 02:05 (X X 0 is not 3 of 3) and re-enters at
    // 02:20. recovery_periods counts good periods, not OK evaluations, so 3 damps this flap just
    // as on a 1-of-1 alarm: one good period, then bad ones, keeps ALARM until 03:15, the third
    // good period after the outage.
    let t = run(vec![a1(TreatMissingData::Breaching, 1)], &points, at(4, 0));
    assert_eq!(
        summary(&t)[2..],
        [
            (id(DOWN_IP), at(2, 5), "ALARM", "OK"),
            (id(DOWN_IP), at(2, 20), "OK", "ALARM"),
            (id(DOWN_IP), at(3, 5), "ALARM", "OK"),
        ]
    );
    let t = run(vec![a1(TreatMissingData::Breaching, 3)], &points, at(4, 0));
    assert_eq!(
        summary(&t)[1..],
        [
            (id(DOWN_IP), at(1, 15), "OK", "ALARM"),
            (id(DOWN_IP), at(3, 15), "ALARM", "OK"),
        ]
    );
}

/// A connection-level TunnelState minute: the mean of the two tunnels' up fractions.
fn connection_minute(ts: i64, tunnels_up: [bool; 2]) -> Datapoint {
    let ups: Vec<f64> = tunnels_up
        .iter()
        .map(|&u| if u { 1.0 } else { 0.0 })
        .collect();
    let mean = (ups[0] + ups[1]) / 2.0;
    Datapoint {
        ts,
        metric: MetricName::TunnelState,
        vpn_id: Arc::from(VPN),
        tunnel_ip: None,
        concentrator_id: None,
        sample_count: 60.0,
        sum: 60.0 * mean,
        minimum: mean,
        maximum: mean,
    }
}

#[test]
fn connection_level_alarm_a2() {
    let a2: AlarmDefinition = serde_json::from_value(json!({
        "name": "A2",
        "description": "both tunnels down for one 5-minute period",
        "metric": "TunnelState",
        "dimensions": {"VpnId": VPN},
        "statistic": "Maximum",
        "period": 300,
        "evaluation_periods": 1,
        "comparison": "LessThanOrEqualToThreshold",
        "threshold": 0.0,
    }))
    .unwrap();
    let mut ev = AlarmEvaluator::new([a2]).unwrap();
    for ts in (at(0, 0)..at(2, 0)).step_by(MIN as usize) {
        // One tunnel down 00:30-01:40, the other down 01:00-01:20.
        let first = !(at(0, 30)..at(1, 40)).contains(&ts);
        let second = !(at(1, 0)..at(1, 20)).contains(&ts);
        assert_eq!(ev.push(&connection_minute(ts, [first, second])), 1);
        // Tunnel-level datapoints are not the connection's.
        assert_eq!(ev.push(&tunnel_minute(VPN, DOWN_IP, ts, 0.0)), 0);
    }
    // Another connection is not matched by VpnId = vpn-1.
    let mut other = connection_minute(at(0, 0), [false, false]);
    other.vpn_id = Arc::from("vpn-2");
    assert_eq!(ev.push(&other), 0);
    let t = ev.evaluate(at(2, 0));
    // Maximum of [01:00,01:05) is 0 (both down): ALARM at 01:05; [01:15,01:20) is the last
    // all-down period, [01:20,01:25) has Maximum 0.5: OK at 01:25. One tunnel down alone
    // (Maximum 0.5) never breaches.
    assert_eq!(
        summary(&t),
        [
            (format!("A2/{VPN}"), at(0, 5), "INSUFFICIENT_DATA", "OK"),
            (format!("A2/{VPN}"), at(1, 5), "OK", "ALARM"),
            (format!("A2/{VPN}"), at(1, 25), "ALARM", "OK"),
        ]
    );
    assert_eq!(t[1].tunnel_ip, None);
    assert_eq!(
        t[1].reason,
        "Threshold Crossed: 1 datapoint [0.0 (12/02/26 01:00:00)] was less than or equal to the \
         threshold (0.0)."
    );
    assert_eq!(
        t[2].reason,
        "Threshold Crossed: 1 datapoint [0.5 (12/02/26 01:20:00)] was not less than or equal to \
         the threshold (0.0)."
    );
}

/// A deterministic pseudo-random fleet: per tunnel, outages of 1-45 minutes, some tunnels
/// starting late, some going silent.
struct FleetTunnel {
    vpn: String,
    ip: String,
    first: i64,
    last: i64,
    down: Vec<(i64, i64)>,
}

fn fleet(connections: usize, hours: i64) -> Vec<FleetTunnel> {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let end = at(hours, 0);
    let mut out = Vec::new();
    for c in 0..connections {
        for t in 0..2 {
            let first = at(0, 0) + next(4) as i64 * 17 * MIN;
            let last = if next(10) == 0 {
                first + (60 + next(120) as i64) * MIN
            } else {
                end
            };
            let mut down = Vec::new();
            for _ in 0..next(4) {
                let start = at(0, 0) + next((hours * 60) as u64) as i64 * MIN;
                down.push((start, start + (1 + next(45) as i64) * MIN));
            }
            out.push(FleetTunnel {
                vpn: format!("vpn-{c:04}"),
                ip: format!("10.{}.{}.{}", c / 250, c % 250, t + 1),
                first,
                last,
                down,
            });
        }
    }
    out
}

#[test]
fn wildcard_fleet_matches_each_tunnel_alone() {
    let hours = 6;
    let tunnels = fleet(520, hours);
    assert!(tunnels.len() >= 1000);
    let defs = || {
        vec![
            a1(TreatMissingData::Breaching, 1),
            with(
                json!({"name": "A1-missing", "treat_missing_data": "missing",
                        "recovery_periods": 2}),
            ),
        ]
    };
    let series = |tun: &FleetTunnel, minute: i64| {
        (minute >= tun.first && minute < tun.last).then(|| {
            let down = tun.down.iter().any(|&(a, b)| minute >= a && minute < b);
            tunnel_minute(&tun.vpn, &tun.ip, minute, if down { 0.0 } else { 60.0 })
        })
    };

    // The fleet: minute by minute, evaluating as time passes.
    let mut ev = AlarmEvaluator::new(defs()).unwrap();
    let mut fleet_transitions = Vec::new();
    for minute in (at(0, 0)..at(hours, 0)).step_by(MIN as usize) {
        for tun in &tunnels {
            if let Some(p) = series(tun, minute) {
                ev.push(&p);
            }
        }
        fleet_transitions.extend(ev.evaluate(minute + MIN));
    }
    assert_eq!(ev.instances().len(), 2 * tunnels.len());

    // Each tunnel alone, all its datapoints first, one evaluation at the end.
    let mut alone: BTreeMap<String, Vec<Transition>> = BTreeMap::new();
    for tun in &tunnels {
        let points: Vec<Datapoint> = (at(0, 0)..at(hours, 0))
            .step_by(MIN as usize)
            .filter_map(|m| series(tun, m))
            .collect();
        for t in run(defs(), &points, at(hours, 0)) {
            alone.entry(t.instance_id.to_string()).or_default().push(t);
        }
    }
    let mut from_fleet: BTreeMap<String, Vec<Transition>> = BTreeMap::new();
    for t in fleet_transitions {
        from_fleet
            .entry(t.instance_id.to_string())
            .or_default()
            .push(t);
    }
    assert_eq!(from_fleet.len(), 2 * tunnels.len());
    assert_eq!(from_fleet, alone);

    // The fleet did something worth comparing.
    let count = |state: AlarmState| {
        alone
            .values()
            .flatten()
            .filter(|t| t.new_state == state)
            .count()
    };
    assert!(
        count(AlarmState::Alarm) > 300,
        "{}",
        count(AlarmState::Alarm)
    );
    assert!(count(AlarmState::InsufficientData) > 50);
}

/// A tunnel that appears in the middle of the data, down for its first minutes: the periods
/// before its first datapoint are outside the range, not "missing", so `breaching` does not
/// fill them and its first evaluation has one breaching datapoint of the three needed.
#[test]
fn periods_before_a_series_begins_are_not_missing() {
    let points = tunnel_series(DOWN_IP, at(1, 0), at(2, 0), &[(at(1, 0), at(1, 3))]);
    let t = run(vec![a1(TreatMissingData::Breaching, 1)], &points, at(2, 0));
    assert_eq!(
        summary(&t),
        [(id(DOWN_IP), at(1, 5), "INSUFFICIENT_DATA", "OK")],
        "{t:#?}"
    );
    // A tunnel down from its first minute for 15 minutes does fire, once three real periods
    // breach.
    let points = tunnel_series(DOWN_IP, at(1, 0), at(2, 0), &[(at(1, 0), at(1, 15))]);
    let t = run(vec![a1(TreatMissingData::Breaching, 1)], &points, at(2, 0));
    assert_eq!(
        summary(&t),
        [
            (id(DOWN_IP), at(1, 5), "INSUFFICIENT_DATA", "OK"),
            (id(DOWN_IP), at(1, 15), "OK", "ALARM"),
            (id(DOWN_IP), at(1, 20), "ALARM", "OK"),
        ],
        "{t:#?}"
    );
}

/// Saving at any boundary and restoring with `Continue` (pushing the stored datapoints of the
/// saved ranges again, as `ingest --config` does) gives exactly the transitions of one
/// uninterrupted run after that boundary, and none before it twice.
#[test]
fn save_and_continue_equals_one_uninterrupted_run() {
    let mut points = tunnel_series(DOWN_IP, at(0, 0), at(5, 0), &[(at(1, 0), at(3, 30))]);
    points.extend(tunnel_series(UP_IP, at(0, 0), at(5, 0), &[]));
    let def = a1(TreatMissingData::Breaching, 2);
    let whole = run(vec![def.clone()], &points, at(5, 0));
    for cut in [
        at(0, 3),
        at(0, 5),
        at(1, 12),
        at(1, 15),
        at(2, 0),
        at(3, 40),
    ] {
        let mut first = AlarmEvaluator::new([def.clone()]).unwrap();
        for p in points.iter().filter(|p| p.ts < cut) {
            first.push(p);
        }
        let mut got = first.evaluate(cut);
        // Through JSON, as the state file holds it.
        let saved: SavedAlarms =
            serde_json::from_str(&serde_json::to_string(&first.save()).unwrap()).unwrap();
        let mut second = AlarmEvaluator::new([def.clone()]).unwrap();
        assert_eq!(second.restore(&saved, Resume::Continue), 2);
        let from = second.resume_from().unwrap();
        for p in points.iter().filter(|p| p.ts >= from) {
            second.push(p);
        }
        got.extend(second.evaluate(at(5, 0)));
        assert_eq!(summary(&got), summary(&whole), "cut at {cut}");
        assert_eq!(got, whole, "cut at {cut}: reasons too");
    }
}

/// A restart after a gap keeps each instance's state, does not repeat INSUFFICIENT_DATA → OK,
/// and does not count the gap as missing periods (which `breaching` would turn into ALARM).
#[test]
fn restore_after_a_gap_keeps_state_and_ignores_the_gap() {
    let def = a1(TreatMissingData::Breaching, 1);
    let mut first = AlarmEvaluator::new([def.clone()]).unwrap();
    for p in tunnel_series(UP_IP, at(0, 0), at(1, 0), &[]) {
        first.push(&p);
    }
    for p in tunnel_series(DOWN_IP, at(0, 0), at(1, 0), &[(at(0, 30), at(1, 0))]) {
        first.push(&p);
    }
    let t = first.evaluate(at(1, 0));
    assert_eq!(first.state(&id(DOWN_IP)), Some(AlarmState::Alarm));
    assert_eq!(first.state(&id(UP_IP)), Some(AlarmState::Ok));
    assert_eq!(t.len(), 3);
    let saved = first.save();

    // Two hours later; no datapoints for the gap.
    let mut second = AlarmEvaluator::new([def.clone()]).unwrap();
    assert_eq!(second.restore(&saved, Resume::AfterGap), 2);
    let listed = second.instances();
    assert!(listed.iter().all(|i| i.next_evaluation.is_none()));
    assert_eq!(listed[0].since, Some(at(0, 45)));
    // Before any datapoint: nothing is evaluated, states hold.
    assert!(second.evaluate(at(3, 0)).is_empty());
    for p in tunnel_series(UP_IP, at(3, 0), at(3, 30), &[]) {
        second.push(&p);
    }
    for p in tunnel_series(DOWN_IP, at(3, 0), at(3, 30), &[]) {
        second.push(&p);
    }
    let t = second.evaluate(at(3, 30));
    // The up tunnel stays OK (no repeated INSUFFICIENT_DATA -> OK); the recovered one leaves
    // ALARM at its first period after the restart.
    assert_eq!(
        summary(&t),
        [(id(DOWN_IP), at(3, 5), "ALARM", "OK")],
        "{t:#?}"
    );
}

/// A changed definition (threshold, period, …) does not take the old state; changed actions do.
#[test]
fn restore_only_into_an_unchanged_definition() {
    let def = a1(TreatMissingData::Breaching, 1);
    let mut first = AlarmEvaluator::new([def.clone()]).unwrap();
    for p in tunnel_series(UP_IP, at(0, 0), at(0, 30), &[]) {
        first.push(&p);
    }
    first.evaluate(at(0, 30));
    let saved = first.save();
    let mut changed = def.clone();
    changed.threshold = 0.5;
    assert_eq!(
        AlarmEvaluator::new([changed])
            .unwrap()
            .restore(&saved, Resume::Continue),
        0
    );
    let mut new_actions = def.clone();
    new_actions.actions.alarm = vec!["ops".into()];
    new_actions.description = Some("paged".into());
    assert_eq!(
        AlarmEvaluator::new([new_actions])
            .unwrap()
            .restore(&saved, Resume::Continue),
        1
    );
}

/// Datapoints in any order give the transitions of the same datapoints in time order (stored
/// metrics are read unsorted).
#[test]
fn datapoint_order_does_not_matter() {
    let mut points = tunnel_series(DOWN_IP, at(0, 0), at(5, 0), &[(at(1, 0), at(3, 30))]);
    points.extend(tunnel_series(UP_IP, at(0, 0), at(5, 0), &[]));
    let def = a1(TreatMissingData::Breaching, 1);
    let sorted = run(vec![def.clone()], &points, at(5, 0));
    let mut reversed = points.clone();
    reversed.reverse();
    assert_eq!(run(vec![def.clone()], &reversed, at(5, 0)), sorted);
    // Interleaved halves: the later half first.
    let (a, b) = points.split_at(points.len() / 3);
    let shuffled: Vec<Datapoint> = b.iter().chain(a).cloned().collect();
    assert_eq!(run(vec![def], &shuffled, at(5, 0)), sorted);
}

//! AWS Health events as input: the EventBridge event (the shape AWS delivers), `aws health`
//! CLI outputs, the envelopes they may arrive in, and malformed events (rejects naming the
//! field, nothing lost; log records around them unaffected).

use std::path::PathBuf;

use tunnelwatch_parsers::{
    AwsHealth, DecoderOptions, Envelope, EventBody, ParseError, Parsed, Table, parse_all,
};

fn fixture() -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "tests",
        "data",
        "aws-health-redundancy-loss.json",
    ]
    .iter()
    .collect();
    std::fs::read_to_string(path).unwrap()
}

/// (health events, rejects' errors, other events' count)
fn parse(input: &str) -> (Vec<AwsHealth>, Vec<ParseError>, usize) {
    let mut health = Vec::new();
    let mut rejects = Vec::new();
    let mut other = 0;
    for p in parse_all("test", input.as_bytes(), DecoderOptions::default()) {
        match p {
            Parsed::Event(e) => match &e.body {
                EventBody::Health(h) => {
                    assert_eq!(e.table(), Table::HealthEvents);
                    assert_eq!(e.tunnel, None);
                    assert_eq!(Some(e.ts), h.start_time.or(h.last_updated_time));
                    health.push((**h).clone());
                }
                _ => other += 1,
            },
            Parsed::Reject(r) => rejects.push(r.error),
        }
    }
    (health, rejects, other)
}

const ARN: &str = "arn:aws:health:us-east-1::event/VPN/AWS_VPN_REDUNDANCY_LOSS/AWS_VPN_REDUNDANCY_LOSS_1a2b3c4d-EXAMPLE";
/// 2026-11-30T01:58:00Z and 02:10, 02:20.
const START: i64 = 1_796_003_880_000;
const END: i64 = START + 12 * 60_000;

#[test]
fn the_eventbridge_event_pretty_printed() {
    let (health, rejects, other) = parse(&fixture());
    assert!(rejects.is_empty() && other == 0, "{rejects:?}");
    let [h] = &health[..] else {
        panic!("{health:?}")
    };
    assert_eq!(h.event_arn, ARN);
    assert_eq!(h.service.as_deref(), Some("VPN"));
    assert_eq!(
        h.event_type_code.as_deref(),
        Some("AWS_VPN_REDUNDANCY_LOSS")
    );
    assert_eq!(
        h.event_type_category.as_deref(),
        Some("accountNotification")
    );
    assert_eq!(h.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        (h.start_time, h.end_time, h.last_updated_time),
        (Some(START), Some(END), Some(END + 600_000))
    );
    assert_eq!(h.status_code.as_deref(), Some("closed"));
    assert_eq!(h.entities, ["vpn-1234abcd"]);
    assert!(
        h.description
            .as_deref()
            .unwrap()
            .contains("momentary lapse of redundancy")
    );
    // Nothing AWS said is lost.
    let raw: serde_json::Value = serde_json::from_str(&h.raw).unwrap();
    assert_eq!(raw["detail"]["communicationId"], "1a2b3c4d5e6f-EXAMPLE");
}

/// Table: (shape, input, expected (arn, type, start, entities) per event).
#[test]
fn every_shape() {
    let one_line =
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&fixture()).unwrap())
            .unwrap();
    let cli_event = |arn: &str, start: &str| {
        format!(
            r#"{{"arn": "{arn}", "service": "VPN", "eventTypeCode": "AWS_VPN_REDUNDANCY_LOSS",
               "eventTypeCategory": "accountNotification", "region": "us-east-1",
               "startTime": {start}, "lastUpdatedTime": {start}, "statusCode": "closed",
               "eventScopeCode": "ACCOUNT_SPECIFIC"}}"#
        )
        .replace('\n', " ")
    };
    type Want = Vec<(&'static str, Option<i64>, Vec<&'static str>)>;
    let cases: Vec<(&str, String, Want)> = vec![
        ("EventBridge, one line (NDJSON)", one_line.clone(), vec![(ARN, Some(START), vec!["vpn-1234abcd"])]),
        (
            "EventBridge, two back to back",
            format!("{one_line}\n{one_line}\n"),
            vec![(ARN, Some(START), vec!["vpn-1234abcd"]); 2],
        ),
        ("EventBridge, in a JSON array", format!("[{one_line}]"), vec![(ARN, Some(START), vec!["vpn-1234abcd"])]),
        (
            "describe-events, CLI v2 (ISO times)",
            format!(r#"{{"events": [{}, {}]}}"#, cli_event("arn:a", "\"2026-11-30T01:58:00+00:00\""), cli_event("arn:b", "\"2026-11-30T01:58:00.000000+00:00\"")),
            vec![("arn:a", Some(START), vec![]), ("arn:b", Some(START), vec![])],
        ),
        (
            "describe-events, CLI v1 (epoch seconds)",
            format!(r#"{{"events": [{}]}}"#, cli_event("arn:a", "1796003880.0")),
            vec![("arn:a", Some(START), vec![])],
        ),
        (
            "describe-event-details",
            format!(
                r#"{{"successfulSet": [{{"event": {}, "eventDescription": {{"latestDescription": "lapse"}}, "eventMetadata": {{}}}}], "failedSet": []}}"#,
                cli_event("arn:a", "\"2026-11-30T01:58:00Z\"")
            ),
            vec![("arn:a", Some(START), vec![])],
        ),
        (
            "describe-affected-entities",
            r#"{"entities": [{"entityArn": "arn:e", "eventArn": "arn:a", "entityValue": "vpn-1234abcd", "awsAccountId": "123456789012", "lastUpdatedTime": "2026-11-30T01:58:00Z", "statusCode": "RESOLVED"}]}"#.to_owned(),
            vec![("arn:a", None, vec!["vpn-1234abcd"])],
        ),
    ];
    for (name, input, want) in cases {
        let (health, rejects, other) = parse(&input);
        assert!(rejects.is_empty() && other == 0, "{name}: {rejects:?}");
        let got: Vec<(&str, Option<i64>, Vec<&str>)> = health
            .iter()
            .map(|h| {
                (
                    h.event_arn.as_str(),
                    h.start_time,
                    h.entities.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn inside_a_cloudwatch_logs_cli_output_and_among_log_records() {
    // EventBridge → CloudWatch Logs (a common rule target): the event is the message.
    let one_line =
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&fixture()).unwrap())
            .unwrap();
    let cli = serde_json::json!({"events": [{"logStreamName": "health", "timestamp": START, "message": one_line, "ingestionTime": START, "eventId": "1"}]});
    let input = format!(
        "{}\n{}\n",
        r#"{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1796003880,"type":"BGPStatus","status":"UP","message":{"details":"BGP keepalive"}}"#,
        cli
    );
    let out = parse_all("test", input.as_bytes(), DecoderOptions::default());
    let envelopes: Vec<(Table, Envelope)> = out
        .iter()
        .map(|p| match p {
            Parsed::Event(e) => (e.table(), e.envelope),
            Parsed::Reject(r) => panic!("{r:?}"),
        })
        .collect();
    assert_eq!(
        envelopes,
        [
            (Table::BgpEvents, Envelope::Raw),
            (Table::HealthEvents, Envelope::CliEvents)
        ]
    );
}

/// Table: (case, input, the error's text contains).
#[test]
fn malformed_events_are_rejects_naming_the_field() {
    let cases = [
        (
            "no ARN",
            r#"{"source": "aws.health", "detail-type": "AWS Health Event", "detail": {"eventTypeCode": "AWS_VPN_REDUNDANCY_LOSS"}}"#,
            "detail.eventArn",
        ),
        (
            "bad time",
            r#"{"source": "aws.health", "detail": {"eventArn": "arn:x", "startTime": "soon"}}"#,
            "startTime",
        ),
        (
            "no time at all",
            r#"{"source": "aws.health", "detail": {"eventArn": "arn:x"}}"#,
            "timestamp",
        ),
    ];
    for (name, input, want) in cases {
        let (health, rejects, _) = parse(input);
        assert!(health.is_empty(), "{name}");
        let [e] = &rejects[..] else {
            panic!("{name}: {rejects:?}")
        };
        assert!(e.to_string().contains(want), "{name}: {e}");
    }
    // A JSON object that is neither a log record nor Health is still the log-record reject.
    let (_, rejects, _) = parse(r#"{"hello": "world"}"#);
    assert!(
        matches!(rejects[..], [ParseError::NotAVpnRecord(_)]),
        "{rejects:?}"
    );
}

//! One test per envelope of DESIGN §2, the AWS documentation example parsed exactly, streaming
//! equivalence, and malformed inputs (errors with positions, no panic, nothing lost).

use std::path::PathBuf;

use tunnelwatch_parsers::{
    BgpType, Decoder, DecoderOptions, Envelope, Event, EventBody, InputFormat, MessageKind,
    ParseError, ParseQuality, Parsed, PhaseState, RecordFormat, Reject, Route, Severity, parse_all,
};

fn data(name: &str) -> (String, Vec<u8>) {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "tests", "data", name]
        .iter()
        .collect();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (name.to_owned(), bytes)
}

fn split(out: Vec<Parsed>) -> (Vec<Event>, Vec<Reject>) {
    let mut events = Vec::new();
    let mut rejects = Vec::new();
    for p in out {
        match p {
            Parsed::Event(e) => events.push(e),
            Parsed::Reject(r) => rejects.push(r),
        }
    }
    (events, rejects)
}

fn parse_file(name: &str) -> (Vec<Event>, Vec<Reject>) {
    let (source, bytes) = data(name);
    let opts = DecoderOptions {
        syslog_year: Some(2025),
        ..Default::default()
    };
    split(parse_all(&source, &bytes, opts))
}

fn parse_str(input: &str) -> (Vec<Event>, Vec<Reject>) {
    split(parse_all(
        "test",
        input.as_bytes(),
        DecoderOptions::default(),
    ))
}

fn kinds(events: &[Event]) -> Vec<MessageKind> {
    events
        .iter()
        .filter_map(|e| e.message().map(|m| m.kind))
        .collect()
}

fn activity(e: &Event) -> &tunnelwatch_parsers::Activity {
    match &e.body {
        EventBody::Activity(a) => a,
        other => panic!("expected activity, got {other:?}"),
    }
}

fn bgp(e: &Event) -> &tunnelwatch_parsers::Bgp {
    match &e.body {
        EventBody::Bgp(b) => b,
        other => panic!("expected BGP, got {other:?}"),
    }
}

const ACTIVITY_KINDS: [MessageKind; 3] = [
    MessageKind::CreateChildSaRequestReceived,
    MessageKind::DpdTimeout,
    MessageKind::IkeSaDeleted,
];

#[test]
fn aws_documentation_bgp_example_exactly() {
    let (events, rejects) = parse_file("aws-doc-bgp-example.json");
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(events.len(), 2);

    let up = &events[0];
    assert_eq!(up.ts, 1762580429641);
    assert_eq!(up.vpn_id(), Some("vpn-1234abcd"));
    assert_eq!(up.tunnel_ip(), Some("1.2.3.4"));
    assert_eq!(up.format, RecordFormat::Json);
    assert_eq!(up.parse_quality, ParseQuality::Exact);
    assert_eq!(up.position.line, 1);
    let b = bgp(up);
    assert_eq!(b.kind, BgpType::BgpStatus);
    assert_eq!(b.status.as_deref(), Some("UP"));
    assert_eq!(
        b.details.as_deref(),
        Some(
            "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85"
        )
    );
    assert_eq!(b.message.kind, MessageKind::BgpStateChange);
    assert_eq!(b.message.severity, Severity::Info);
    assert_eq!(
        b.message.captures().from_state.as_deref(),
        Some("OpenConfirm")
    );
    assert_eq!(
        b.message.captures().to_state.as_deref(),
        Some("Established")
    );
    assert_eq!(
        b.message.captures().neighbor_ip.as_deref(),
        Some("169.254.50.85")
    );
    assert_eq!(b.route, None);

    let route = &events[1];
    assert_eq!(route.ts, 1762579573243);
    assert_eq!(route.position.line, 12);
    let b = bgp(route);
    assert_eq!(b.kind, BgpType::RouteStatus);
    assert_eq!(b.status.as_deref(), Some("UPDATED"));
    assert_eq!(b.message.kind, MessageKind::RouteDenied);
    assert_eq!(b.message.severity, Severity::Warning);
    assert_eq!(
        b.message.captures().denied_reason.as_deref(),
        Some("as-path contains our own AS")
    );
    assert_eq!(
        b.route.as_deref(),
        Some(&Route {
            prefix: Some("172.31.0.0/16".into()),
            as_path: Some("64512".into()),
            local_pref: Some(100),
            med: Some(100),
            next_hop_ip: Some("169.254.50.85".into()),
            weight: Some(32768),
        })
    );
}

#[test]
fn ndjson_activity_named_by_file() {
    let (events, rejects) = parse_file("vpn-1234abcd-1.2.3.4.ndjson");
    assert!(rejects.is_empty());
    assert_eq!(kinds(&events), ACTIVITY_KINDS);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.vpn_id(), Some("vpn-1234abcd"));
        assert_eq!(e.tunnel_ip(), Some("1.2.3.4"));
        assert_eq!(e.envelope, Envelope::Raw);
        assert_eq!(e.position.line, i as u64 + 1);
        // event_timestamp in seconds.
        assert_eq!(e.ts, (1762580429 + i as i64) * 1000);
    }
    // Booleans as JSON booleans or "True"/"False"; states case-insensitive.
    let a = activity(&events[1]);
    assert_eq!(a.dpd_enabled, Some(true));
    assert_eq!(a.nat_t_detected, Some(false));
    assert_eq!(a.ike_phase1_state, Some(PhaseState::Down));
    assert_eq!(a.message.captures().retry_count, Some(3));
    // DELETE for IKE_SA with phase 1 down is an error.
    assert_eq!(activity(&events[2]).message.severity, Severity::Error);
}

#[test]
fn ndjson_bgp_and_traffic() {
    let (events, rejects) = parse_file("bgp-and-traffic.ndjson");
    assert!(rejects.is_empty());
    assert_eq!(events.len(), 3);
    match &events[2].body {
        EventBody::Traffic(t) => {
            assert_eq!(t.bytes_in, Some(123456));
            assert_eq!(t.bytes_out, Some(654321));
            assert_eq!(t.packets_in, Some(100));
            assert_eq!(t.packets_out, Some(200));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events[2].vpn_id(), Some("vpn-1234abcd"));
}

#[test]
fn aws_logs_cli_output() {
    let (events, rejects) = parse_file("filter-log-events.json");
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(events.len(), 5);
    assert_eq!(kinds(&events)[..3], ACTIVITY_KINDS);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.envelope, Envelope::CliEvents);
        assert_eq!(e.vpn_id(), Some("vpn-1234abcd"), "event {i}");
        assert_eq!(e.position.index, Some(i as u64));
        assert_eq!(e.position.line, 1);
    }
    assert_eq!(
        events[0].log_stream.as_deref(),
        Some("vpn-1234abcd-1.2.3.4")
    );
    assert_eq!(events[0].ingest_ts, Some(1762580429900));
}

/// `aws logs filter-log-events --output text` as real awscli printed it (against moto_server):
/// six events (JSON activity, JSON BGP, text activity with spaces and with tabs), the
/// `SEARCHEDLOGSTREAMS` lines and a `NEXTTOKEN` line (`--max-items`).
#[test]
fn aws_logs_cli_text_output() {
    let (events, rejects) = parse_file("filter-log-events.txt");
    assert!(
        rejects.is_empty(),
        "metadata lines are not rejects: {rejects:?}"
    );
    assert_eq!(
        kinds(&events),
        [
            MessageKind::CreateChildSaRequestReceived,
            MessageKind::DpdTimeout,
            MessageKind::BgpStateChange,
            MessageKind::RouteDenied,
            MessageKind::Phase1Timeout,
            MessageKind::CreateChildSaRequestSent,
        ]
    );
    let quality: Vec<ParseQuality> = events.iter().map(|e| e.parse_quality).collect();
    use ParseQuality::{Exact, Structured};
    assert_eq!(
        quality,
        [Exact, Exact, Exact, Exact, Structured, Structured]
    );
    let streams = [
        "vpn-1234abcd-1.2.3.4",
        "vpn-1234abcd-1.2.3.4",
        "vpn-1234abcd_1.2.3.4-bgp",
        "vpn-1234abcd_1.2.3.4-bgp",
        "vpn-1234abcd-5.6.7.8",
        "vpn-1234abcd-5.6.7.8",
    ];
    let ingestion = [
        1796197923469,
        1796197923469,
        1796197924053,
        1796197924053,
        1796197924606,
        1796197924606,
    ];
    let ts = [
        1762583400000,
        1762583401000,
        1762583400641,
        1762583402243,
        1762583403000,
        1762583404000,
    ];
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.envelope, Envelope::CliText, "event {i}");
        assert_eq!(e.log_stream.as_deref(), Some(streams[i]), "event {i}");
        assert_eq!(e.vpn_id(), Some("vpn-1234abcd"), "event {i}");
        assert_eq!(e.ingest_ts, Some(ingestion[i]), "event {i}");
        assert_eq!(e.ts, ts[i], "event {i}");
        assert_eq!(e.position.line, i as u64 + 1);
        assert_eq!(e.position.index, None);
    }
    // Activity records take their tunnel from the stream name.
    assert_eq!(events[0].tunnel_ip(), Some("1.2.3.4"));
    assert_eq!(events[4].tunnel_ip(), Some("5.6.7.8"));
    assert_eq!(
        activity(&events[4]).message.captures().cgw_ip.as_deref(),
        Some("198.51.100.7")
    );
    // A message holding tabs is kept whole: the timestamp is the last field.
    assert_eq!(
        activity(&events[5]).details.as_deref(),
        Some("AWS tunnel is sending request (id=7) for CREATE_CHILD_SA")
    );
    assert_eq!(
        activity(&events[5]).ike_phase1_state,
        Some(PhaseState::Established)
    );
    assert_eq!(
        bgp(&events[3]).message.captures().denied_reason.as_deref(),
        Some("as-path contains our own AS")
    );
}

/// The same output forced with `--format cli-text` decodes the same; anything else is refused.
#[test]
fn aws_logs_cli_text_forced() {
    let (source, bytes) = data("filter-log-events.txt");
    let forced = DecoderOptions {
        format: InputFormat::CliText,
        ..Default::default()
    };
    assert_eq!(
        parse_all(&source, &bytes, forced.clone()),
        parse_all(&source, &bytes, DecoderOptions::default())
    );
    assert_eq!(InputFormat::parse("cli-text"), Some(InputFormat::CliText));
    assert!(InputFormat::NAMES.contains(&"cli-text"));
    let (events, rejects) = split(parse_all(
        "f",
        format!("{GOOD}\n{{\n}}\n").as_bytes(),
        forced,
    ));
    assert!(events.is_empty());
    assert_eq!(rejects.len(), 3, "{rejects:?}");
    assert_eq!(
        rejects[0].error,
        ParseError::WrongFormat {
            expected: "aws logs --output text lines (EVENTS …)",
            found: "JSON"
        }
    );
    assert_eq!(rejects[2].position.line, 3);
}

/// `get-log-events --output text` (real awscli output): a token line, then
/// `EVENTS ingestionTime message timestamp`; the stream comes from `--stream-name`.
#[test]
fn aws_get_log_events_text_output() {
    let input = concat!(
        "b/00000000000000000000000000000000000000000000000000000000\tf/00000000000000000000000000000000000000000000000000000001\n",
        "EVENTS\t1796197923469\t{\"event_timestamp\": 1762583400, \"timestamp\": \"2025-11-08 06:30:00.000Z\", \"dpd_enabled\": true, \"nat_t_detected\": false, \"ike_phase1_state\": \"established\", \"ike_phase2_state\": \"established\", \"details\": \"AWS tunnel processed request (id=12) for CREATE_CHILD_SA\"}\t1762583400000\n",
        "EVENTS\t1796197923469\t{\"event_timestamp\": 1762583401, \"dpd_enabled\": true, \"nat_t_detected\": false, \"ike_phase1_state\": \"down\", \"ike_phase2_state\": \"down\", \"details\": \"AWS tunnel DPD timed out after 3 retransmits\"}\t1762583401000\n",
    );
    let opts = DecoderOptions {
        stream_name: Some("vpn-1234abcd-1.2.3.4".into()),
        ..Default::default()
    };
    let (events, rejects) = split(parse_all("get", input.as_bytes(), opts.clone()));
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(
        kinds(&events),
        [
            MessageKind::CreateChildSaRequestReceived,
            MessageKind::DpdTimeout
        ]
    );
    for e in &events {
        assert_eq!(e.envelope, Envelope::CliText);
        assert_eq!(e.parse_quality, ParseQuality::Exact);
        assert_eq!(e.tunnel_ip(), Some("1.2.3.4"));
        assert_eq!(e.ingest_ts, Some(1796197923469));
    }
    assert_eq!(events[1].position.line, 3);
    assert_every_split_matches(input.as_bytes(), &opts);
}

/// An `EVENTS` line without the fields of either command is a reject naming the envelope, and
/// the lines after it still decode; a record without its own time takes the event's.
#[test]
fn aws_logs_cli_text_bad_lines() {
    let input = "EVENTS\tnot\tenough\n\
                 EVENTS\t7\t1796197924606\tvpn-1234abcd-5.6.7.8\t\t1762583404000\n\
                 EVENTS\t8\t1796197924606\tvpn-1234abcd-5.6.7.8\tAWS tunnel DPD timed out after 3 retransmits\t1762583405000\n";
    let (events, rejects) = parse_str(input);
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert!(
        matches!(&rejects[0].error, ParseError::Envelope("aws logs text", why) if why.contains("eventId")),
        "{:?}",
        rejects[0].error
    );
    assert_eq!(rejects[0].position.line, 1);
    assert_eq!(rejects[0].raw, b"EVENTS\tnot\tenough");
    assert!(
        matches!(&rejects[1].error, ParseError::Envelope(_, why) if why.contains("without a message"))
    );
    assert_eq!(rejects[1].position.line, 2);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].ts, 1762583405000);
    assert_eq!(events[0].tunnel_ip(), Some("5.6.7.8"));
    assert_eq!(kinds(&events), [MessageKind::DpdTimeout]);
}

#[test]
fn s3_export_lines() {
    let (events, rejects) = parse_file("s3-export.txt");
    assert!(rejects.is_empty());
    assert_eq!(kinds(&events), ACTIVITY_KINDS);
    assert_eq!(events[0].envelope, Envelope::S3Export);
    assert_eq!(events[0].ingest_ts, Some(1762580430000));
    assert_eq!(events[0].ts, 1762580429000);
    // The export names no stream: identity comes from --stream-name.
    assert_eq!(events[0].vpn_id(), None);
    let (_, bytes) = data("s3-export.txt");
    let opts = DecoderOptions {
        stream_name: Some("vpn-1234abcd-1.2.3.4".into()),
        format: InputFormat::S3,
        ..Default::default()
    };
    let (events, _) = split(parse_all("s3", &bytes, opts));
    assert!(events.iter().all(|e| e.tunnel_ip() == Some("1.2.3.4")));
}

#[test]
fn subscription_payload_gzip() {
    let (events, rejects) = parse_file("subscription.json.gz");
    assert!(rejects.is_empty());
    assert_eq!(kinds(&events), ACTIVITY_KINDS);
    for e in &events {
        assert_eq!(e.envelope, Envelope::Subscription);
        assert_eq!(e.vpn_id(), Some("vpn-1234abcd"));
        assert_eq!(e.log_stream.as_deref(), Some("vpn-1234abcd-1.2.3.4"));
    }
}

#[test]
fn subscription_control_message_is_skipped_not_rejected() {
    let control = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1762580429000,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
    let (events, rejects) = parse_str(control);
    assert!(events.is_empty());
    assert!(rejects.is_empty());
}

#[test]
fn firehose_request() {
    let (events, rejects) = parse_file("firehose-request.json");
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(kinds(&events), ACTIVITY_KINDS);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.envelope, Envelope::Subscription);
        // Record 1 of the request (record 0 is a control message), event i inside it.
        assert_eq!(e.position.index, Some(100_000 + i as u64));
    }
}

#[test]
fn syslog_newline_rfc5424_and_rfc3164() {
    let (events, rejects) = parse_file("syslog-newline.log");
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(events.len(), 4);
    assert_eq!(kinds(&events)[..3], ACTIVITY_KINDS);
    assert!(events.iter().all(|e| e.envelope == Envelope::Syslog));
    // RFC 5424: identity from APP-NAME, time from the header.
    assert_eq!(events[0].vpn_id(), Some("vpn-1234abcd"));
    assert_eq!(events[0].ingest_ts, Some(1762580429000));
    // RFC 3164 (no year in the header): a BGP record with its own identity.
    assert_eq!(events[3].ingest_ts, Some(1762580429000));
    assert_eq!(
        events[3].message().unwrap().kind,
        MessageKind::BgpStateChange
    );
}

#[test]
fn syslog_octet_counting() {
    let (a, _) = parse_file("syslog-newline.log");
    let (b, rejects) = parse_file("syslog-octet.log");
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(kinds(&a), kinds(&b));
    // The second frame starts after `LEN SP` and LEN bytes of the first.
    let (_, bytes) = data("syslog-octet.log");
    let sp = bytes.iter().position(|b| *b == b' ').unwrap();
    let len: u64 = std::str::from_utf8(&bytes[..sp]).unwrap().parse().unwrap();
    assert_eq!(b[1].position.offset, sp as u64 + 1 + len);
}

#[test]
fn text_layouts() {
    let (events, rejects) = parse_file("text-layouts.log");
    assert_eq!(events.len(), 4);
    let q: Vec<_> = events.iter().map(|e| e.parse_quality).collect();
    assert_eq!(
        q,
        [
            ParseQuality::Structured,
            ParseQuality::Structured,
            ParseQuality::Structured,
            ParseQuality::Heuristic
        ]
    );
    assert_eq!(
        kinds(&events),
        [
            MessageKind::CreateChildSaRequestSent,
            MessageKind::Phase1Timeout,
            MessageKind::BgpNotification,
            MessageKind::TsUnacceptable
        ]
    );
    let a = activity(&events[1]);
    assert_eq!(a.ike_phase1_state, Some(PhaseState::Down));
    assert_eq!(a.dpd_enabled, Some(true));
    assert_eq!(a.message.captures().cgw_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(events[1].ts, 1762580430000);
    let b = bgp(&events[2]);
    assert_eq!(b.status.as_deref(), Some("DOWN"));
    assert_eq!(events[2].vpn_id(), Some("vpn-1234abcd"));
    assert_eq!(events[2].ts, 1762580431000);
    assert_eq!(events[3].vpn_id(), Some("vpn-1234abcd"));
    assert_eq!(events[3].ts, 1762580432000);
    // The meaningless line is rejected with its position, not stored as noise.
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].position.line, 5);
    assert_eq!(rejects[0].error, ParseError::UnrecognisedText);
    assert_eq!(rejects[0].raw, b"this line means nothing at all");
}

#[test]
fn text_key_value_bgp_route() {
    let (events, rejects) = parse_str(
        "2025-11-08 05:26:13.243Z RouteStatus ADVERTISED prefix=10.1.0.0/16 asPath=\"65000 65010\" localPref=100 med=0 nextHopIp=169.254.50.85 weight=32768 vpn-1234abcd_1.2.3.4 1762579573243\n",
    );
    assert!(rejects.is_empty(), "{rejects:?}");
    let b = bgp(&events[0]);
    assert_eq!(b.message.kind, MessageKind::RouteAdvertised);
    let r = b.route.as_ref().unwrap();
    assert_eq!(r.prefix.as_deref(), Some("10.1.0.0/16"));
    assert_eq!(r.as_path.as_deref(), Some("65000 65010"));
    assert_eq!(r.weight, Some(32768));
    assert_eq!(events[0].tunnel_ip(), Some("1.2.3.4"));
}

#[test]
fn streaming_in_small_chunks_matches_one_shot() {
    for name in [
        "aws-doc-bgp-example.json",
        "bgp-and-traffic.ndjson",
        "filter-log-events.json",
        "filter-log-events.txt",
        "firehose-request.json",
        "s3-export.txt",
        "syslog-newline.log",
        "syslog-octet.log",
        "text-layouts.log",
        "vpn-1234abcd-1.2.3.4.ndjson",
    ] {
        let (source, bytes) = data(name);
        let opts = DecoderOptions {
            syslog_year: Some(2025),
            ..Default::default()
        };
        let whole = parse_all(&source, &bytes, opts.clone());
        for chunk in [1, 7, 64] {
            let mut decoder = Decoder::new(&source, opts.clone());
            let mut out = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            for piece in bytes.chunks(chunk) {
                pending.extend_from_slice(piece);
                let used = decoder.decode(&pending, false, &mut |p| out.push(p));
                pending.drain(..used);
            }
            decoder.decode(&pending, true, &mut |p| out.push(p));
            assert_eq!(out, whole, "{name} in chunks of {chunk}");
        }
    }
}

/// CLI text output split at every byte, auto-detected and forced.
#[test]
fn aws_logs_cli_text_split_anywhere() {
    let (_, bytes) = data("filter-log-events.txt");
    for format in [InputFormat::Auto, InputFormat::CliText] {
        let opts = DecoderOptions {
            format,
            ..Default::default()
        };
        assert_every_split_matches(&bytes, &opts);
    }
}

#[test]
fn json_array_of_records() {
    let (events, rejects) = parse_str(
        r#"[{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580429641,"type":"BGPStatus","status":"UP","message":null}, 42]"#,
    );
    assert_eq!(events.len(), 1);
    assert_eq!(bgp(&events[0]).message.kind, MessageKind::Unknown);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].error, ParseError::NotAnObject("a number"));
    assert_eq!(rejects[0].position.index, Some(1));
}

#[test]
fn unknown_keys_are_kept_and_unknown_messages_are_unknown() {
    let (events, _) = parse_str(
        r#"{"event_timestamp":1762580429,"ike_phase1_state":"established","ike_phase2_state":"sideways","details":"Tunnel is up","VpnConnectionId":"vpn-1234abcd","TunnelOutsideIPAddress":"1.2.3.4","vendor":{"x":1}}"#,
    );
    let e = &events[0];
    assert_eq!(e.vpn_id(), Some("vpn-1234abcd"));
    let a = activity(e);
    assert_eq!(a.message.kind, MessageKind::Unknown);
    assert_eq!(a.ike_phase2_state, None);
    assert_eq!(
        a.extra.as_deref(),
        Some(r#"{"vendor":{"x":1},"ike_phase2_state":"sideways"}"#)
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed input: an error with a position, the records after it still parsed, no panic.

const GOOD: &str = r#"{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580429641,"type":"BGPStatus","status":"UP","message":{"details":"AWS-side peer sent an End-of-RIB message to neighbor 169.254.50.85"}}"#;

#[test]
fn truncated_json_line() {
    let input = format!("{GOOD}\n{{\"resource_id\":\"vpn-1234abcd_1.2.3.4\",\"event_\n{GOOD}\n");
    let (events, rejects) = parse_str(&input);
    assert_eq!(events.len(), 2);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].position.line, 2);
    assert_eq!(rejects[0].position.offset, GOOD.len() as u64 + 1);
    assert!(
        matches!(rejects[0].error, ParseError::InvalidJson(_)),
        "{:?}",
        rejects[0].error
    );
    assert!(
        rejects[0].to_string().starts_with("test: line 2 (byte "),
        "{}",
        rejects[0]
    );
}

#[test]
fn truncated_pretty_document_followed_by_a_good_one() {
    let input = "{\n    \"resource_id\": \"vpn-1234abcd_1.2.3.4\",\n    \"type\": \"BGP\n{\n    \"resource_id\": \"vpn-1234abcd_1.2.3.4\",\n    \"event_timestamp\": 1762580429641,\n    \"type\": \"BGPStatus\",\n    \"status\": \"UP\"\n}\n";
    let (events, rejects) = parse_str(input);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].position.line, 4);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].position.line, 1);
    assert_eq!(rejects[0].error, ParseError::Truncated("JSON document"));
}

#[test]
fn pretty_document_cut_at_end_of_input() {
    let (events, rejects) = parse_str("{\n  \"details\": \"x\",\n");
    assert!(events.is_empty());
    assert_eq!(rejects[0].error, ParseError::Truncated("JSON document"));
    assert_eq!(rejects[0].raw, b"{\n  \"details\": \"x\",\n");
}

#[test]
fn binary_and_invalid_utf8() {
    let mut input = Vec::new();
    input.extend_from_slice(b"\x00\x01\x02\x03binary\xff\xfe\n");
    input.extend_from_slice(b"AWS tunnel DPD timed out after 3 retransmits \xc3\x28 1762580429\n");
    input.extend_from_slice(b"{\"details\":\"a\x00b\"}\n");
    input.extend_from_slice(GOOD.as_bytes());
    let (events, rejects) = split(parse_all("bin", &input, DecoderOptions::default()));
    assert_eq!(events.len(), 1);
    assert_eq!(rejects.len(), 3);
    assert!(
        matches!(
            rejects[0].error,
            ParseError::InvalidUtf8 { valid_up_to: 10 }
        ),
        "{:?}",
        rejects[0].error
    );
    assert!(
        matches!(
            rejects[1].error,
            ParseError::InvalidUtf8 { valid_up_to: 45 }
        ),
        "{:?}",
        rejects[1].error
    );
    assert_eq!(rejects[2].error, ParseError::Binary);
    assert_eq!(
        rejects.iter().map(|r| r.position.line).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(rejects[0].raw, b"\x00\x01\x02\x03binary\xff\xfe");
}

#[test]
fn two_megabyte_line() {
    let big = format!("{{\"details\":\"{}\"", "x".repeat(2 << 20));
    let input = format!("{big}\n{GOOD}\n");
    let (events, rejects) = parse_str(&input);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].position.line, 2);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].raw.len(), big.len());
    // A 2 MB record that is valid is accepted.
    let valid = format!(
        "{{\"event_timestamp\":1762580429,\"details\":\"{}\"}}",
        "y".repeat(2 << 20)
    );
    let (events, rejects) = parse_str(&valid);
    assert!(rejects.is_empty());
    assert_eq!(
        activity(&events[0]).details.as_ref().unwrap().len(),
        2 << 20
    );
}

#[test]
fn line_over_the_record_limit_is_refused_while_streaming() {
    let opts = DecoderOptions {
        max_record_bytes: 1024,
        ..Default::default()
    };
    let mut decoder = Decoder::new("s", opts);
    let mut out = Vec::new();
    let used = decoder.decode(&vec![b'a'; 4096], false, &mut |p| out.push(p));
    assert_eq!(used, 4096);
    let (_, rejects) = split(out);
    assert!(matches!(
        rejects[0].error,
        ParseError::TooLarge {
            size: 4096,
            limit: 1024
        }
    ));
}

#[test]
fn empty_and_blank_inputs() {
    assert!(parse_all("e", b"", DecoderOptions::default()).is_empty());
    assert!(parse_all("e", b"\n\n  \r\n\t\n", DecoderOptions::default()).is_empty());
}

#[test]
fn json_that_is_not_an_object() {
    let (events, rejects) = parse_str("\"a string\"\n42\ntrue\nnull\n[]\n{}\n{\"foo\":1}\n");
    assert!(events.is_empty());
    let errors: Vec<_> = rejects
        .iter()
        .map(|r| (r.position.line, r.error.clone()))
        .collect();
    // Scalars do not start like JSON documents: the text parser finds nothing in them. An empty
    // array holds no record; objects without VPN keys are not records.
    let not_vpn =
        ParseError::NotAVpnRecord("event_timestamp, ike_phase1_state, details, resource_id, type");
    assert_eq!(
        errors,
        [
            (1, ParseError::UnrecognisedText),
            (2, ParseError::UnrecognisedText),
            (3, ParseError::UnrecognisedText),
            (4, ParseError::UnrecognisedText),
            (6, not_vpn.clone()),
            (7, not_vpn),
        ]
    );
    // Forced to JSON, scalars are refused as such.
    let opts = DecoderOptions {
        format: InputFormat::Ndjson,
        ..Default::default()
    };
    let (_, rejects) = split(parse_all("j", br#"["a string"]"#, opts));
    assert_eq!(rejects[0].error, ParseError::NotAnObject("a string"));
}

#[test]
fn missing_timestamp_and_wrong_types() {
    let (_, rejects) = parse_str(
        "{\"details\":\"AWS tunnel received DELETE for IKE_SA from CGW\"}\n{\"event_timestamp\":1,\"dpd_enabled\":\"maybe\",\"details\":\"x\"}\n",
    );
    assert_eq!(rejects[0].error, ParseError::MissingTimestamp);
    assert!(
        rejects[1].error.to_string().contains("dpd_enabled"),
        "{}",
        rejects[1].error
    );
}

#[test]
fn forced_format_mismatch() {
    let opts = DecoderOptions {
        format: InputFormat::Syslog,
        ..Default::default()
    };
    let (_, rejects) = split(parse_all("f", GOOD.as_bytes(), opts));
    assert_eq!(
        rejects[0].error,
        ParseError::WrongFormat {
            expected: "a syslog line",
            found: "JSON"
        }
    );
}

#[test]
fn corrupt_gzip_keeps_what_inflated() {
    let (_, bytes) = data("subscription.json.gz");
    let cut = &bytes[..bytes.len() - 12];
    let (events, rejects) = split(parse_all("gz", cut, DecoderOptions::default()));
    assert!(events.is_empty() || events.len() == 3);
    assert!(!rejects.is_empty());
}

#[test]
fn bad_firehose_record() {
    let input = r#"{"requestId":"r","timestamp":1,"records":[{"data":"!!notbase64"}]}"#;
    let (_, rejects) = parse_str(input);
    assert!(matches!(rejects[0].error, ParseError::Base64(_)));
    assert_eq!(rejects[0].position.index, Some(0));
}

/// Decodes `input` split in two at every byte and checks the result equals the one-shot one.
fn assert_every_split_matches(input: &[u8], opts: &DecoderOptions) {
    let whole = parse_all("s", input, opts.clone());
    for k in 0..=input.len() {
        let mut decoder = Decoder::new("s", opts.clone());
        let mut out = Vec::new();
        let used = decoder.decode(&input[..k], false, &mut |p| out.push(p));
        let mut rest = input[used..k].to_vec();
        rest.extend_from_slice(&input[k..]);
        decoder.decode(&rest, true, &mut |p| out.push(p));
        assert_eq!(out, whole, "split at {k} of {input:?} ({:?})", opts.format);
    }
}

/// Found by the fuzzer (`fuzz/`): where a read ends must never change what is decoded.
#[test]
fn split_points_do_not_change_results() {
    let inputs: [&[u8]; 4] = [
        // An octet-counting header whose PRI does not follow the space directly.
        b"\x80\n5 \n<1>\n",
        // Text after the closing bracket of a pretty-printed document.
        b"{\n}  x\n",
        b"{\n  \"details\": \"x\", \"event_timestamp\": 1762580429\n}   \n{\"details\":\"y\",\"event_timestamp\":1}\n",
        b"12 <14>1 - - - -x\n<14>1 2025-11-08T05:40:29Z h vpn-1234abcd-1.2.3.4 - - - AWS tunnel DPD timed out after 3 retransmits\n",
    ];
    for input in inputs {
        for format in [
            InputFormat::Auto,
            InputFormat::Json,
            InputFormat::Syslog,
            InputFormat::Text,
        ] {
            let opts = DecoderOptions {
                format,
                syslog_year: Some(2025),
                ..Default::default()
            };
            assert_every_split_matches(input, &opts);
        }
    }
}

/// Octet-counted syslog frames end where their length says: no newline needed (rsyslog,
/// syslog-ng and `logger --octet-count` send none), and a length above the record limit is not
/// trusted as a frame, so a bad header cannot make the decoder hold more than the limit.
#[test]
fn octet_counted_frames_need_no_newline_and_lengths_are_capped() {
    let msg = r#"<134>1 2025-11-08T05:40:29.000Z gw01 vpn-1234abcd-1.2.3.4 - - - {"event_timestamp": 1762580429, "details": "AWS tunnel processed request (id=12) for CREATE_CHILD_SA"}"#;
    let frames = format!("{} {msg}{} {msg}", msg.len(), msg.len());
    let mut d = Decoder::new("tcp", DecoderOptions::default());
    let mut out = Vec::new();
    let consumed = d.decode(frames.as_bytes(), false, &mut |p| out.push(p));
    assert_eq!(consumed, frames.len(), "both frames decode without eof");
    let (events, rejects) = split(out);
    assert_eq!((events.len(), rejects.len()), (2, 0), "{rejects:?}");
    // Half a frame waits for the rest.
    let mut d = Decoder::new("tcp", DecoderOptions::default());
    let half = &frames.as_bytes()[..msg.len() / 2];
    assert_eq!(d.decode(half, false, &mut |_| panic!("nothing yet")), 0);

    // A length far above the limit: read as a text line, not held for a gigabyte.
    let opts = DecoderOptions {
        max_record_bytes: 1024,
        ..Default::default()
    };
    let mut d = Decoder::new("tcp", opts);
    let bogus = format!("99999999 {msg}\n");
    let mut out = Vec::new();
    assert_eq!(
        d.decode(bogus.as_bytes(), false, &mut |p| out.push(p)),
        bogus.len()
    );
    assert_eq!(out.len(), 1);
}

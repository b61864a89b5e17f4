//! CloudWatch Logs envelopes: `aws logs` CLI output (`events[]`), subscription payloads
//! (`DATA_MESSAGE` with `logEvents[]`; `CONTROL_MESSAGE` is skipped), and Kinesis Data Firehose
//! HTTP endpoint requests (`records[].data`, base64 of a usually gzipped subscription payload).
//!
//! Each event's `message` is one record and goes back through [`Decoder::message`]; its stream
//! name gives tunnel identity to activity records, its `timestamp` stands in for a missing
//! record time, and `ingestionTime` (or the subscription `timestamp`) fills `ingest_ts`.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine;

use super::{Decoder, Frame, with_index};
use crate::error::ParseError;
use crate::event::{Envelope, Parsed};
use crate::record::json::{CwEvent, FirehoseRecord};

pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Inflates gzip (all members). On corruption returns what inflated before it and the error.
pub(crate) fn gunzip(bytes: &[u8]) -> (Vec<u8>, Option<ParseError>) {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    let mut dec = flate2::read::MultiGzDecoder::new(bytes);
    match dec.read_to_end(&mut out) {
        Ok(_) => (out, None),
        Err(e) => (out, Some(ParseError::Gzip(e.to_string()))),
    }
}

pub(super) fn cli_events(
    dec: &mut Decoder,
    events: Vec<CwEvent<'_>>,
    frame: Frame<'_>,
    out: &mut dyn FnMut(Parsed),
) {
    for (i, ev) in events.into_iter().enumerate() {
        let stream = ev.log_stream_name.as_deref().or(frame.stream);
        let inner = Frame {
            envelope: Envelope::CliEvents,
            stream,
            event_ts: ev.timestamp,
            ingest_ts: ev.ingestion_time.or(ev.timestamp),
            position: with_index(frame.position, i),
            depth: frame.depth + 1,
        };
        event_message(dec, ev.message, "aws logs events[]", inner, out);
    }
}

pub(super) fn subscription(
    dec: &mut Decoder,
    message_type: Option<Cow<'_, str>>,
    log_stream: Option<Cow<'_, str>>,
    events: Vec<CwEvent<'_>>,
    frame: Frame<'_>,
    raw: &[u8],
    out: &mut dyn FnMut(Parsed),
) {
    match message_type.as_deref() {
        // CloudWatch sends one when a subscription is created, to check the destination.
        Some("CONTROL_MESSAGE") => return,
        Some("DATA_MESSAGE") | None => {}
        Some(other) => {
            let e = ParseError::Envelope(
                "subscription",
                format!("unknown messageType {other:?} (expected DATA_MESSAGE or CONTROL_MESSAGE)"),
            );
            out(Parsed::Reject(dec.reject(
                frame.position,
                e,
                raw,
                frame.ingest_ts,
            )));
            return;
        }
    }
    let stream = log_stream.as_deref().or(frame.stream);
    for (i, ev) in events.into_iter().enumerate() {
        let inner = Frame {
            envelope: Envelope::Subscription,
            stream,
            event_ts: ev.timestamp,
            ingest_ts: ev.timestamp,
            position: with_index(frame.position, i),
            depth: frame.depth + 1,
        };
        event_message(dec, ev.message, "subscription logEvents[]", inner, out);
    }
}

fn event_message(
    dec: &mut Decoder,
    message: Option<Cow<'_, str>>,
    what: &'static str,
    frame: Frame<'_>,
    out: &mut dyn FnMut(Parsed),
) {
    match message {
        Some(m) if !m.trim().is_empty() => dec.message(m.as_bytes(), frame, out),
        _ => {
            let e = ParseError::Envelope(what, "event without a message".into());
            out(Parsed::Reject(dec.reject(
                frame.position,
                e,
                b"",
                frame.ingest_ts,
            )));
        }
    }
}

pub(super) fn firehose(
    dec: &mut Decoder,
    records: Vec<FirehoseRecord<'_>>,
    frame: Frame<'_>,
    out: &mut dyn FnMut(Parsed),
) {
    let engine = base64::engine::general_purpose::STANDARD;
    for (i, rec) in records.into_iter().enumerate() {
        let position = with_index(frame.position, i);
        let data = match engine.decode(rec.data.trim()) {
            Ok(d) => d,
            Err(e) => {
                let err = ParseError::Base64(format!("Firehose record {i}: {e}"));
                out(Parsed::Reject(dec.reject(
                    position,
                    err,
                    rec.data.as_bytes(),
                    None,
                )));
                continue;
            }
        };
        let data = if is_gzip(&data) {
            let (inflated, err) = gunzip(&data);
            if let Some(e) = err {
                out(Parsed::Reject(dec.reject(position, e, &data, None)));
                continue;
            }
            inflated
        } else {
            data
        };
        let inner = Frame {
            envelope: Envelope::Firehose,
            position,
            depth: frame.depth + 1,
            ..frame
        };
        // A record holds one JSON document (a subscription payload), or newline-separated
        // records.
        let trimmed = data.trim_ascii();
        let single_document = matches!(
            super::scan_json_document(trimmed, usize::MAX),
            super::DocumentEnd::Complete(end) if end == trimmed.len()
        );
        if single_document {
            dec.message(trimmed, inner, out);
        } else {
            for (j, line) in trimmed
                .split(|b| *b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .enumerate()
            {
                let f = Frame {
                    position: with_index(position, j),
                    ..inner
                };
                dec.message(line, f, out);
            }
        }
    }
}

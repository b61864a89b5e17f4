//! `aws logs … --output text`: the AWS CLI's tab-separated rendering of `filter-log-events` and
//! `get-log-events`, one line per event.
//!
//! The CLI's text output prints each list item as its upper-cased key followed by the item's
//! scalar values in alphabetical key order, so the lines are:
//!
//! - `filter-log-events`: `EVENTS <eventId> <ingestionTime> <logStreamName> <message> <timestamp>`,
//!   then `SEARCHEDLOGSTREAMS <logStreamName> <searchedCompletely>` per stream searched and,
//!   when the output was cut by `--max-items`, `NEXTTOKEN <token>`;
//! - `get-log-events`: a first line `<nextBackwardToken> <nextForwardToken>` (`b/…`, `f/…`),
//!   then `EVENTS <ingestionTime> <message> <timestamp>`.
//!
//! (separated by tabs). The message is printed as it is, tabs included, so it is found by
//! position, not by splitting: the fields before it are taken from the left and the
//! `timestamp` from the right, and everything between is the message. A message holding a
//! newline cannot be told from the next line and is not supported (VPN records hold none).
//!
//! Each message goes back through [`Decoder::message`] (a JSON or text record): the stream
//! name gives tunnel identity, `timestamp` stands in for a missing record time and
//! `ingestionTime` fills `ingest_ts`. The metadata lines are skipped; they are not records.

use super::{Decoder, Frame};
use crate::error::ParseError;
use crate::event::{Envelope, Parsed, Position};

/// One event line, split.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TextEvent<'a> {
    /// `logStreamName` (`filter-log-events` only).
    pub stream: Option<&'a str>,
    pub ingestion_time: i64,
    pub timestamp: i64,
    pub message: &'a [u8],
}

/// What a line of CLI text output is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line<'a> {
    Event(TextEvent<'a>),
    /// `SEARCHEDLOGSTREAMS`, `NEXTTOKEN` or the `get-log-events` token line.
    Metadata,
    /// Starts with `EVENTS` + tab but does not have the fields of either command.
    BadEvent(String),
    /// Not CLI text output.
    Other,
}

const EVENTS: &[u8] = b"EVENTS\t";

/// Classifies one line (without its newline).
pub(super) fn classify(line: &[u8]) -> Line<'_> {
    if let Some(rest) = line.strip_prefix(EVENTS) {
        return event(rest);
    }
    if is_metadata(line) {
        Line::Metadata
    } else {
        Line::Other
    }
}

/// Is this one of the lines that describe the output rather than an event: `SEARCHEDLOGSTREAMS`,
/// `NEXTTOKEN`, or the `get-log-events` token line?
fn is_metadata(line: &[u8]) -> bool {
    let fields: Vec<&[u8]> = line.split(|b| *b == b'\t').collect();
    match fields.as_slice() {
        [b"SEARCHEDLOGSTREAMS", stream, complete] => {
            token(stream) && matches!(*complete, b"True" | b"False" | b"true" | b"false")
        }
        [b"NEXTTOKEN", t] => token(t),
        [back, forward] => {
            back.starts_with(b"b/") && forward.starts_with(b"f/") && token(back) && token(forward)
        }
        _ => false,
    }
}

/// A non-empty field without spaces.
fn token(field: &[u8]) -> bool {
    !field.is_empty() && !field.iter().any(u8::is_ascii_whitespace)
}

fn number(field: &[u8]) -> Option<i64> {
    if field.is_empty() || field.len() > 18 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// The fields after `EVENTS\t`.
fn event(rest: &[u8]) -> Line<'_> {
    let Some(tab) = memchr::memrchr(b'\t', rest) else {
        return bad(rest);
    };
    let Some(timestamp) = number(&rest[tab + 1..]) else {
        return bad(rest);
    };
    let head = &rest[..tab];
    let mut fields = head.splitn(4, |b| *b == b'\t');
    let first = fields.next().unwrap_or_default();
    let second = fields.next();
    let third = fields.next();
    let fourth = fields.next();
    // filter-log-events: eventId, ingestionTime, logStreamName, then the message.
    if let (Some(ingestion), Some(stream), Some(message)) = (second, third, fourth)
        && token(first)
        && !stream.is_empty()
        && let Some(ingestion_time) = number(ingestion)
    {
        let Ok(stream) = std::str::from_utf8(stream) else {
            return Line::BadEvent("logStreamName is not valid UTF-8".into());
        };
        return Line::Event(TextEvent {
            stream: Some(stream),
            ingestion_time,
            timestamp,
            message,
        });
    }
    // get-log-events: ingestionTime, then the message.
    if let (Some(ingestion_time), Some(_)) = (number(first), second) {
        let message = &head[first.len() + 1..];
        return Line::Event(TextEvent {
            stream: None,
            ingestion_time,
            timestamp,
            message,
        });
    }
    bad(rest)
}

fn bad(rest: &[u8]) -> Line<'_> {
    let fields = rest.split(|b| *b == b'\t').count();
    Line::BadEvent(format!(
        "EVENTS line with {fields} field(s) after EVENTS; expected eventId, ingestionTime, \
         logStreamName, message, timestamp (filter-log-events) or ingestionTime, message, \
         timestamp (get-log-events), the times in epoch milliseconds"
    ))
}

/// Decodes one event line's message, or rejects the line.
pub(super) fn decode_line(
    dec: &mut Decoder,
    line: &[u8],
    parsed: Line<'_>,
    default_stream: Option<&str>,
    position: Position,
    out: &mut dyn FnMut(Parsed),
) {
    let reject = |dec: &Decoder, e: ParseError, ts: Option<i64>, out: &mut dyn FnMut(Parsed)| {
        out(Parsed::Reject(dec.reject(position, e, line, ts)))
    };
    match parsed {
        // Nothing to decode.
        Line::Metadata | Line::Other => {}
        Line::BadEvent(why) => reject(dec, ParseError::Envelope("aws logs text", why), None, out),
        Line::Event(ev) => {
            if ev.message.trim_ascii().is_empty() {
                let e = ParseError::Envelope("aws logs text", "event without a message".into());
                reject(dec, e, Some(ev.ingestion_time), out);
                return;
            }
            let frame = Frame {
                envelope: Envelope::CliText,
                stream: ev.stream.or(default_stream),
                event_ts: Some(ev.timestamp),
                ingest_ts: Some(ev.ingestion_time),
                position,
                depth: 1,
            };
            dec.message(ev.message, frame, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(line: &[u8]) -> TextEvent<'_> {
        match classify(line) {
            Line::Event(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filter_log_events_line_with_tabs_in_the_message() {
        let e = ev(b"EVENTS\t0\t1796197924606\tvpn-1234abcd-5.6.7.8\ta=1\tb=2\t\t1762583404000");
        assert_eq!(e.stream, Some("vpn-1234abcd-5.6.7.8"));
        assert_eq!(e.ingestion_time, 1796197924606);
        assert_eq!(e.timestamp, 1762583404000);
        assert_eq!(e.message, b"a=1\tb=2\t");
    }

    #[test]
    fn get_log_events_line() {
        let e = ev(b"EVENTS\t1796197923469\t{\"a\": \"x\ty\"}\t1796126400000");
        assert_eq!(e.stream, None);
        assert_eq!(e.ingestion_time, 1796197923469);
        assert_eq!(e.message, b"{\"a\": \"x\ty\"}");
    }

    #[test]
    fn metadata_and_other_lines() {
        for line in [
            &b"SEARCHEDLOGSTREAMS\tvpn-1234abcd-1.2.3.4\tTrue"[..],
            b"NEXTTOKEN\teyJuZXh0VG9rZW4iOiBudWxsfQ==",
            b"b/00000000000000000000000000000000000000000000000000000000\tf/0000/s",
        ] {
            assert_eq!(classify(line), Line::Metadata, "{line:?}");
        }
        for line in [
            &b"SEARCHEDLOGSTREAMS\tvpn-1\tmaybe"[..],
            b"NEXTTOKEN",
            b"EVENTSX\t1\t2",
            b"AWS tunnel DPD timed out after 3 retransmits",
            b"b/x f/y",
        ] {
            assert_eq!(classify(line), Line::Other, "{line:?}");
        }
        for line in [
            &b"EVENTS\t"[..],
            b"EVENTS\tx\ty",
            b"EVENTS\t1\tmessage\tnot-a-time",
            b"EVENTS\t1\t2",
        ] {
            assert!(matches!(classify(line), Line::BadEvent(_)), "{line:?}");
        }
    }
}

//! Syslog envelopes: RFC 5424 and RFC 3164 headers (parsed by `syslog_loose`), newline framed
//! or RFC 6587 octet-counting framed (`LEN SP <PRI>…`).
//!
//! The message body is one record (or any other envelope). The tunnel identity is taken from
//! the first of APP-NAME, MSGID, HOSTNAME that looks like a log stream name; the header time
//! becomes `ingest_ts`. RFC 3164 times carry no year and are read as UTC in the given year.

use chrono::{Datelike, Utc};
use syslog_loose::Variant;

use crate::error::ParseError;
use crate::identity;

/// A syslog message reduced to what the pipeline uses.
pub(super) struct SyslogMessage<'a> {
    pub ts: Option<i64>,
    pub stream: Option<&'a str>,
    pub appname: Option<&'a str>,
    pub hostname: Option<&'a str>,
    pub body: &'a str,
}

/// `<` followed by 1–3 digits and `>`: a syslog PRI.
pub(super) fn looks_like(line: &[u8]) -> bool {
    let line = line.trim_ascii_start();
    if line.first() != Some(&b'<') {
        return false;
    }
    let digits = line[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=3).contains(&digits) && line.get(1 + digits) == Some(&b'>')
}

/// An octet-counting frame header at the start of `buf`: `(header length, frame length)`.
pub(super) fn octet_frame(buf: &[u8]) -> Option<(usize, usize)> {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    // `LEN SP <PRI>`: the PRI follows the space directly (no other whitespace may stand
    // between, or the frame would depend on where a read happened to end).
    if digits == 0
        || digits > 9
        || buf.get(digits) != Some(&b' ')
        || buf.get(digits + 1) != Some(&b'<')
    {
        return None;
    }
    if !looks_like(&buf[digits + 1..buf.len().min(digits + 6)]) {
        return None;
    }
    let len: usize = std::str::from_utf8(&buf[..digits]).ok()?.parse().ok()?;
    Some((digits + 1, len))
}

pub(super) fn parse(text: &str, year: Option<i32>) -> Result<SyslogMessage<'_>, ParseError> {
    let text = text.trim_end_matches(['\r', '\n']);
    // Asked only for RFC 3164 timestamps, which have no year.
    let msg = syslog_loose::parse_message_with_year_exact_tz(
        text,
        move |_| year.unwrap_or_else(|| Utc::now().year()),
        Some(Utc),
        Variant::Either,
    )
    .map_err(ParseError::Syslog)?;
    let stream = [msg.appname, msg.msgid, msg.hostname]
        .into_iter()
        .flatten()
        .find(|s| identity::parse_tunnel_name(s).is_some());
    // A local daemon's datagram has no HOSTNAME (`<30>Dec  4 05:01:51 charon: …`): the parser
    // then takes the tag for the host. A "host" followed by its colon is the tag.
    let (appname, hostname) = match (msg.appname, msg.hostname) {
        (None, Some(h)) if text.contains(&format!(" {h}: ")) => (Some(h), None),
        other => other,
    };
    Ok(SyslogMessage {
        ts: msg.timestamp.map(|t| t.timestamp_millis()),
        stream,
        appname,
        hostname,
        body: msg.msg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(octet_frame(b"12 <14>1 - - -"), Some((3, 12)));
        assert_eq!(octet_frame(b"12 hello"), None);
        assert_eq!(octet_frame(b"<14>x"), None);
        assert_eq!(octet_frame(b"5 \n<1>\n"), None);
        assert!(looks_like(b"<134>Nov  8 05:40:29 host app: x"));
        assert!(!looks_like(b"<html>"));
    }

    #[test]
    fn rfc5424_body_and_stream() {
        let m = parse(
            "<134>1 2025-11-08T05:40:29.641Z gw vpn-1234abcd-1.2.3.4 - - - {\"details\":\"x\"}",
            None,
        )
        .unwrap();
        assert_eq!(m.ts, Some(1762580429641));
        assert_eq!(m.stream, Some("vpn-1234abcd-1.2.3.4"));
        assert_eq!(m.body, "{\"details\":\"x\"}");
    }

    #[test]
    fn a_tag_without_a_host_is_the_tag() {
        let m = parse("<30>Dec  4 05:01:51 charon: 00[DMN] x", Some(2026)).unwrap();
        assert_eq!((m.appname, m.hostname), (Some("charon"), None));
        let m = parse("<30>Dec  4 05:01:51 gw1 charon[12]: 00[DMN] x", Some(2026)).unwrap();
        assert_eq!((m.appname, m.hostname), (Some("charon"), Some("gw1")));
    }

    #[test]
    fn rfc3164_year() {
        let m = parse("<134>Nov  8 05:40:29 gw vpnlog: hello", Some(2025)).unwrap();
        assert_eq!(m.ts, Some(1762580429000));
        assert_eq!(m.body, "hello");
    }
}

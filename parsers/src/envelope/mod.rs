//! The decoder: raw bytes in, [`Parsed`] events and rejects out, for every envelope of DESIGN §2.
//!
//! Framing (in [`Decoder::decode`]): records are lines, except that a line holding only `{` or
//! `[` opens a pretty-printed JSON document that runs until its brackets balance, and a syslog
//! frame in RFC 6587 octet-counting form (`LEN <PRI>…`) runs for `LEN` bytes. Each record is then
//! sniffed (or taken as the `--format` says): `<PRI>` → syslog, `{`/`[` → JSON (a record, CLI
//! `events[]`, a subscription payload, a Firehose request or an array), `EVENTS` + tab (and the
//! other lines of `aws logs … --output text`) → CLI text output, ISO-8601 time + space →
//! CloudWatch export-to-S3 line, anything else → a text record. Envelope contents go through the
//! same sniffing again, up to [`MAX_DEPTH`] levels.
//!
//! Invariants:
//! - Streaming: `decode` consumes only complete records and returns how far it got, so a caller
//!   can feed a growing file chunk by chunk; at `eof` everything left is consumed.
//! - Nothing is dropped silently: every record becomes an event or a reject (with raw bytes and
//!   position); blank lines, subscription `CONTROL_MESSAGE`s and the metadata lines of CLI text
//!   output (`SEARCHEDLOGSTREAMS`, `NEXTTOKEN`, `get-log-events` tokens) are the only things
//!   skipped.
//! - A bad record never stops the records after it; a truncated pretty-printed document ends
//!   where a new one starts in column 0.
//! - Gzip (whole input, or a Firehose record) is inflated first; positions then count bytes of
//!   the inflated data.

mod cli_text;
mod cloudwatch;
mod syslog;

use std::sync::Arc;

use crate::error::ParseError;
use crate::event::{
    Envelope, Event, EventBody, ParseQuality, Parsed, Position, RecordFormat, Reject,
};
use crate::gateway;
use crate::record::json::{self, JsonDoc};
use crate::record::{self, Fields, Identities, RecordContext, health, text};
use crate::time;

/// Envelopes nested deeper than this are refused (a Firehose record holding a subscription
/// payload holding a record is depth 2).
pub const MAX_DEPTH: usize = 4;

/// The default limit on one record (a line, a JSON document or a syslog frame).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 << 20;

/// What the input is, as `--format` names it. `Auto` sniffs every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    #[default]
    Auto,
    /// One JSON record per line.
    Ndjson,
    /// JSON documents back to back, pretty-printed or not (records, arrays, CLI output,
    /// subscription payloads, Firehose requests).
    Json,
    /// `aws logs filter-log-events` / `get-log-events` output.
    Cli,
    /// `aws logs filter-log-events` / `get-log-events` `--output text` (tab-separated `EVENTS`
    /// lines).
    CliText,
    /// CloudWatch Logs export-to-S3 lines.
    S3,
    /// CloudWatch Logs subscription payload(s), gzip or inflated.
    Subscription,
    /// Firehose HTTP endpoint request bodies.
    Firehose,
    /// RFC 5424 / RFC 3164 syslog, newline or octet-counting framed.
    Syslog,
    /// Text records, one per line.
    Text,
    /// Customer-gateway daemon lines (strongSwan, Libreswan, FRR, BIRD), bare or in syslog;
    /// a line whose writer is not recognised is kept as `unknown`.
    Gateway,
}

impl InputFormat {
    pub const NAMES: [&'static str; 12] = [
        "auto",
        "ndjson",
        "json",
        "cli",
        "cli-text",
        "s3",
        "subscription",
        "firehose",
        "syslog",
        "text",
        "gateway",
        "gzip",
    ];

    /// Parses a `--format` value (`gzip` is accepted as `auto`: gzip is detected anyway).
    pub fn parse(name: &str) -> Option<InputFormat> {
        Some(match name.to_ascii_lowercase().as_str() {
            "auto" | "gzip" => InputFormat::Auto,
            "ndjson" | "jsonl" | "json-lines" => InputFormat::Ndjson,
            "json" => InputFormat::Json,
            "cli" | "cwl" | "filter-log-events" | "get-log-events" => InputFormat::Cli,
            "cli-text" | "cli_text" => InputFormat::CliText,
            "s3" | "s3-export" | "export" => InputFormat::S3,
            "subscription" | "cwl-subscription" => InputFormat::Subscription,
            "firehose" => InputFormat::Firehose,
            "syslog" => InputFormat::Syslog,
            "text" | "txt" => InputFormat::Text,
            "gateway" | "strongswan" | "charon" | "libreswan" | "pluto" | "frr" | "bgpd"
            | "bird" => InputFormat::Gateway,
            _ => return None,
        })
    }

    fn is_json(self) -> bool {
        matches!(
            self,
            InputFormat::Ndjson
                | InputFormat::Json
                | InputFormat::Cli
                | InputFormat::Subscription
                | InputFormat::Firehose
        )
    }
}

/// How to read one source.
#[derive(Debug, Clone)]
pub struct DecoderOptions {
    pub format: InputFormat,
    /// Log stream name for records that carry no identity (tunnel activity): the
    /// `--stream-name` flag. When `None`, the source name is tried (a file named after its
    /// stream).
    pub stream_name: Option<String>,
    pub max_record_bytes: usize,
    /// Year for RFC 3164 timestamps, which have none (default: the current UTC year).
    pub syslog_year: Option<i32>,
    /// The tunnels gateway lines are about, by peer address (from the config's inventory).
    pub gateway_peers: Option<std::sync::Arc<gateway::PeerMap>>,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions {
            format: InputFormat::Auto,
            stream_name: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            syslog_year: None,
            gateway_peers: None,
        }
    }
}

/// Envelope facts handed down to the records inside.
#[derive(Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub envelope: Envelope,
    pub stream: Option<&'a str>,
    /// Event time offered by the envelope (CloudWatch event `timestamp`), used when the record
    /// has none.
    pub event_ts: Option<i64>,
    /// Ingestion / export / syslog time.
    pub ingest_ts: Option<i64>,
    pub position: Position,
    pub depth: usize,
}

/// Decodes one source. Keep one per source: it tracks line numbers and byte offsets across
/// calls and caches tunnel identities.
pub struct Decoder {
    source: Arc<str>,
    opts: DecoderOptions,
    /// Stream name from the options or, failing that, from the source name.
    default_stream: Option<Arc<str>>,
    line: u64,
    offset: u64,
    ids: Identities,
}

impl Decoder {
    pub fn new(source: &str, opts: DecoderOptions) -> Decoder {
        let default_stream = opts.stream_name.as_deref().map(Arc::from).or_else(|| {
            let file = source.rsplit(['/', '\\']).next().unwrap_or(source);
            crate::identity::parse_tunnel_name(file).map(|_| Arc::from(file))
        });
        Decoder {
            source: Arc::from(source),
            opts,
            default_stream,
            line: 1,
            offset: 0,
            ids: Identities::default(),
        }
    }

    /// A decoder that starts at `line` and byte `offset` of its source, as one that had
    /// decoded everything before would be (its only state across records is its position): for
    /// decoding line-aligned pieces of one input on several threads.
    pub fn starting_at(mut self, line: u64, offset: u64) -> Decoder {
        self.line = line;
        self.offset = offset;
        self
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Line and byte offset of the next byte `decode` expects.
    pub fn position(&self) -> Position {
        Position {
            line: self.line,
            offset: self.offset,
            index: None,
        }
    }

    /// Decodes a whole input held in memory (inflating it first if it is gzip).
    pub fn decode_all(&mut self, input: &[u8], out: &mut dyn FnMut(Parsed)) {
        if cloudwatch::is_gzip(input) {
            let (inflated, err) = cloudwatch::gunzip(input);
            self.decode(&inflated, true, out);
            if let Some(e) = err {
                let position = self.position();
                out(Parsed::Reject(self.reject(position, e, &[], None)));
            }
        } else {
            self.decode(input, true, out);
        }
    }

    /// Decodes the complete records at the start of `buf` (which must begin where the previous
    /// call stopped) and returns the number of bytes consumed. With `eof`, consumes everything.
    pub fn decode(&mut self, buf: &[u8], eof: bool, out: &mut dyn FnMut(Parsed)) -> usize {
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            let nl = memchr::memchr(b'\n', rest);
            // RFC 6587 octet counting: the length says where the frame ends, so a frame needs
            // no newline (senders that count octets send none). A length above the record
            // limit is not taken as a frame (the line is read as text instead), so a bad
            // header cannot make the decoder hold more than the limit.
            let octets = matches!(
                self.opts.format,
                InputFormat::Auto | InputFormat::Syslog | InputFormat::Gateway
            )
            .then(|| syslog::octet_frame(rest))
            .flatten()
            .filter(|(_, len)| *len <= self.opts.max_record_bytes);
            if nl.is_none() && !eof && octets.is_none() {
                if rest.len() > self.opts.max_record_bytes {
                    // A line this long will not end well: refuse what we have.
                    let e = ParseError::TooLarge {
                        size: rest.len(),
                        limit: self.opts.max_record_bytes,
                    };
                    let position = self.position();
                    out(Parsed::Reject(self.reject(position, e, rest, None)));
                    self.advance(rest);
                    return buf.len();
                }
                return pos;
            }
            let line_len = nl.unwrap_or(rest.len());
            let line = &rest[..line_len];
            let next = (line_len + 1).min(rest.len());
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                self.line += u64::from(nl.is_some());
                self.offset += next as u64;
                pos += next;
                continue;
            }
            let position = self.position();

            if let Some((header, len)) = octets {
                if header + len > rest.len() {
                    if !eof {
                        return pos;
                    }
                    let e = ParseError::Truncated("syslog octet-counted frame");
                    out(Parsed::Reject(self.reject(position, e, rest, None)));
                    self.advance(rest);
                    return buf.len();
                }
                let frame = &rest[header..header + len];
                self.syslog_record(frame, position, 0, out);
                self.advance(&rest[..header + len]);
                pos += header + len;
                continue;
            }

            // A pretty-printed JSON document.
            if (trimmed == b"{" || trimmed == b"[")
                && !matches!(
                    self.opts.format,
                    InputFormat::Text | InputFormat::CliText | InputFormat::Gateway
                )
            {
                match scan_json_document(rest, self.opts.max_record_bytes) {
                    DocumentEnd::Complete(end) => {
                        let doc = &rest[..end];
                        let stream = self.default_stream.clone();
                        self.json_record(doc, raw_frame(stream.as_deref(), position), out);
                        // Swallow the rest of the closing line if it is blank up to its
                        // newline (anything else on it is the next record, and a blank tail
                        // without its newline yet is left for the blank-line skip).
                        let blank = rest[end..]
                            .iter()
                            .take_while(|b| **b != b'\n' && b.is_ascii_whitespace())
                            .count();
                        let end = if rest.get(end + blank) == Some(&b'\n') {
                            end + blank + 1
                        } else {
                            end
                        };
                        self.advance(&rest[..end]);
                        pos += end;
                    }
                    DocumentEnd::Incomplete if !eof => return pos,
                    DocumentEnd::Incomplete => {
                        let e = ParseError::Truncated("JSON document");
                        out(Parsed::Reject(self.reject(position, e, rest, None)));
                        self.advance(rest);
                        return buf.len();
                    }
                    DocumentEnd::Broken(restart) => {
                        let e = ParseError::Truncated("JSON document");
                        out(Parsed::Reject(self.reject(
                            position,
                            e,
                            &rest[..restart],
                            None,
                        )));
                        self.advance(&rest[..restart]);
                        pos += restart;
                    }
                    DocumentEnd::TooLarge(size) => {
                        let e = ParseError::TooLarge {
                            size,
                            limit: self.opts.max_record_bytes,
                        };
                        out(Parsed::Reject(self.reject(
                            position,
                            e,
                            &rest[..next],
                            None,
                        )));
                        self.advance(&rest[..next]);
                        pos += next;
                    }
                }
                continue;
            }

            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.line_record(line, position, out);
            // One line: no need to count its newlines.
            self.line += u64::from(nl.is_some());
            self.offset += next as u64;
            pos += next;
        }
        pos
    }

    fn advance(&mut self, consumed: &[u8]) {
        self.line += memchr::memchr_iter(b'\n', consumed).count() as u64;
        self.offset += consumed.len() as u64;
    }

    pub(crate) fn reject(
        &self,
        position: Position,
        error: ParseError,
        raw: &[u8],
        ingest_ts: Option<i64>,
    ) -> Reject {
        Reject {
            source: self.source.clone(),
            position,
            error,
            raw: raw.to_vec(),
            ingest_ts,
        }
    }

    /// One line at the outermost level: dispatch by `--format` or by sniffing.
    fn line_record(&mut self, line: &[u8], position: Position, out: &mut dyn FnMut(Parsed)) {
        let first = line.trim_ascii_start().first().copied();
        let format = self.opts.format;
        let wrong = |expected: &'static str| ParseError::WrongFormat {
            expected,
            found: match first {
                Some(b'{' | b'[') => "JSON",
                Some(b'<') => "a syslog header",
                _ => "text",
            },
        };
        let reject = match format {
            f if f.is_json() && !matches!(first, Some(b'{' | b'[')) => Some(wrong("JSON")),
            InputFormat::Syslog if first != Some(b'<') => Some(wrong("a syslog line")),
            InputFormat::S3 if s3_prefix(line).is_none() => {
                Some(wrong("an export line (<ISO-8601 time> <message>)"))
            }
            _ => None,
        };
        if let Some(e) = reject {
            out(Parsed::Reject(self.reject(position, e, line, None)));
            return;
        }
        let stream = self.default_stream.clone();
        if format == InputFormat::Gateway {
            if syslog::looks_like(line) {
                self.syslog_record(line, position, 0, out);
            } else {
                let frame = raw_frame(stream.as_deref(), position);
                self.gateway_record(line, gateway::Hint::default(), frame, out);
            }
            return;
        }
        if matches!(format, InputFormat::Auto | InputFormat::CliText) {
            match cli_text::classify(line) {
                cli_text::Line::Metadata => return,
                cli_text::Line::Other if format == InputFormat::Auto => {}
                cli_text::Line::Other => {
                    let e = wrong("aws logs --output text lines (EVENTS …)");
                    out(Parsed::Reject(self.reject(position, e, line, None)));
                    return;
                }
                parsed => {
                    cli_text::decode_line(self, line, parsed, stream.as_deref(), position, out);
                    return;
                }
            }
        }
        let frame = raw_frame(stream.as_deref(), position);
        if format == InputFormat::Text {
            self.text_record(line, frame, out);
            return;
        }
        if format == InputFormat::Syslog
            || (format == InputFormat::Auto && syslog::looks_like(line))
        {
            self.syslog_record(line, position, 0, out);
            return;
        }
        self.message(line, frame, out);
    }

    /// A record or envelope body, sniffed: JSON, export line, or text.
    pub(crate) fn message(&mut self, bytes: &[u8], frame: Frame<'_>, out: &mut dyn FnMut(Parsed)) {
        if frame.depth > MAX_DEPTH {
            let e = ParseError::TooDeep(MAX_DEPTH);
            out(Parsed::Reject(self.reject(
                frame.position,
                e,
                bytes,
                frame.ingest_ts,
            )));
            return;
        }
        let trimmed = bytes.trim_ascii();
        match trimmed.first() {
            Some(b'{' | b'[') => self.json_record(trimmed, frame, out),
            Some(b'<') if frame.depth > 0 && syslog::looks_like(trimmed) => {
                self.syslog_record(trimmed, frame.position, frame.depth, out)
            }
            _ if self.opts.format != InputFormat::Text
                && self.gateway_line(trimmed, frame, out) => {}
            _ => {
                if let Some((len, ts)) = s3_prefix(trimmed) {
                    let frame = Frame {
                        envelope: Envelope::S3Export,
                        ingest_ts: Some(ts),
                        depth: frame.depth + 1,
                        ..frame
                    };
                    let body = trimmed[len..].trim_ascii();
                    if body.is_empty() {
                        let e = ParseError::Envelope(
                            "S3 export",
                            "no message after the timestamp".into(),
                        );
                        out(Parsed::Reject(self.reject(
                            frame.position,
                            e,
                            bytes,
                            Some(ts),
                        )));
                    } else {
                        self.message(body, frame, out);
                    }
                } else {
                    self.text_record(trimmed, frame, out);
                }
            }
        }
    }

    fn syslog_record(
        &mut self,
        bytes: &[u8],
        position: Position,
        depth: usize,
        out: &mut dyn FnMut(Parsed),
    ) {
        let Some(text) = self.utf8(bytes, position, None, out) else {
            return;
        };
        match syslog::parse(text, self.opts.syslog_year) {
            Ok(msg) => {
                let default = self.default_stream.clone();
                let frame = Frame {
                    envelope: Envelope::Syslog,
                    stream: msg.stream.or(default.as_deref()),
                    event_ts: None,
                    ingest_ts: msg.ts,
                    position,
                    depth: depth + 1,
                };
                let gateway_tag = msg.appname.filter(|t| gateway::Daemon::of_tag(t).is_some());
                if msg.body.trim().is_empty() {
                    let e = ParseError::Syslog("empty message".into());
                    out(Parsed::Reject(self.reject(position, e, bytes, msg.ts)));
                } else if gateway_tag.is_some() || self.opts.format == InputFormat::Gateway {
                    let hint = gateway::Hint {
                        tag: gateway_tag.or(msg.appname),
                        host: msg.hostname,
                        any: true,
                    };
                    self.gateway_record(msg.body.as_bytes(), hint, frame, out);
                } else {
                    self.message(msg.body.as_bytes(), frame, out);
                }
            }
            Err(e) => out(Parsed::Reject(self.reject(position, e, bytes, None))),
        }
    }

    /// Checks UTF-8 (and refuses binary), rejecting with the position on failure.
    fn utf8<'b>(
        &self,
        bytes: &'b [u8],
        position: Position,
        ingest_ts: Option<i64>,
        out: &mut dyn FnMut(Parsed),
    ) -> Option<&'b str> {
        match std::str::from_utf8(bytes) {
            Ok(_) if memchr::memchr(0, bytes).is_some() => {
                out(Parsed::Reject(self.reject(
                    position,
                    ParseError::Binary,
                    bytes,
                    ingest_ts,
                )));
                None
            }
            Ok(s) => Some(s),
            Err(e) => {
                let err = ParseError::InvalidUtf8 {
                    valid_up_to: e.valid_up_to(),
                };
                out(Parsed::Reject(self.reject(position, err, bytes, ingest_ts)));
                None
            }
        }
    }

    /// A JSON document: a record, or an envelope whose events are decoded in turn.
    fn json_record(&mut self, bytes: &[u8], frame: Frame<'_>, out: &mut dyn FnMut(Parsed)) {
        let Some(text) = self.utf8(bytes, frame.position, frame.ingest_ts, out) else {
            return;
        };
        let doc = match json::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                out(Parsed::Reject(self.reject(
                    frame.position,
                    e,
                    bytes,
                    frame.ingest_ts,
                )));
                return;
            }
        };
        match doc {
            JsonDoc::Record(fields) => self.emit(
                *fields,
                RecordFormat::Json,
                ParseQuality::Exact,
                frame,
                bytes,
                out,
            ),
            JsonDoc::Scalar(what) => {
                let e = ParseError::NotAnObject(what);
                out(Parsed::Reject(self.reject(
                    frame.position,
                    e,
                    bytes,
                    frame.ingest_ts,
                )));
            }
            JsonDoc::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    let frame = Frame {
                        position: with_index(frame.position, i),
                        depth: frame.depth + 1,
                        ..frame
                    };
                    self.json_record(item.get().as_bytes(), frame, out);
                }
            }
            // `aws health describe-events` output has `events[]` too, of Health events.
            JsonDoc::CliEvents(events)
                if events
                    .first()
                    .is_some_and(|e| e.message.is_none() && e.log_stream_name.is_none())
                    && self.health(bytes, frame, out) => {}
            JsonDoc::CliEvents(events) => {
                cloudwatch::cli_events(self, events, frame, out);
            }
            JsonDoc::Subscription {
                message_type,
                log_stream,
                events,
            } => {
                cloudwatch::subscription(self, message_type, log_stream, events, frame, bytes, out)
            }
            JsonDoc::Firehose { records } => cloudwatch::firehose(self, records, frame, out),
        }
    }

    /// A customer-gateway line (see [`gateway`]): an event in `gateway_events`, or a reject
    /// when it carries no time and its envelope none either.
    fn gateway_record(
        &mut self,
        bytes: &[u8],
        hint: gateway::Hint<'_>,
        frame: Frame<'_>,
        out: &mut dyn FnMut(Parsed),
    ) {
        let Some(text) = self.utf8(bytes, frame.position, frame.ingest_ts, out) else {
            return;
        };
        let hint = gateway::Hint { any: true, ..hint };
        if let Some(line) = gateway::parse(text, hint, self.opts.syslog_year) {
            self.emit_gateway(line, bytes, frame, out);
        }
    }

    /// Emits `bytes` as a gateway event if it is a gateway's line (a time, a charon thread, a
    /// quoted pluto connection first; then a daemon's own prefix or tag): checked before the
    /// AWS text parsers, which would otherwise read its time and give up on the rest.
    fn gateway_line(
        &mut self,
        bytes: &[u8],
        frame: Frame<'_>,
        out: &mut dyn FnMut(Parsed),
    ) -> bool {
        if !bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'"')
            || aws_text_layout(bytes)
        {
            return false;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return false;
        };
        match gateway::parse(text, gateway::Hint::default(), self.opts.syslog_year) {
            Some(line) => {
                self.emit_gateway(line, bytes, frame, out);
                true
            }
            None => false,
        }
    }

    fn emit_gateway(
        &mut self,
        line: gateway::Line,
        bytes: &[u8],
        frame: Frame<'_>,
        out: &mut dyn FnMut(Parsed),
    ) {
        let Some(ts) = line.ts.or(frame.event_ts).or(frame.ingest_ts) else {
            let e = ParseError::MissingTimestamp;
            // A reject keeps its raw bytes, except a hex dump's (keys, see `gateway::HEX_DUMP`).
            let raw = match &line.body {
                gateway::Body::Message(g) if g.details == gateway::HEX_DUMP => {
                    gateway::HEX_DUMP.as_bytes()
                }
                _ => bytes,
            };
            out(Parsed::Reject(self.reject(
                frame.position,
                e,
                raw,
                frame.ingest_ts,
            )));
            return;
        };
        let peers = self.opts.gateway_peers.clone();
        let log_stream = frame.stream.map(|s| self.ids.stream(s));
        let event = |position, tunnel, parse_quality, body| Event {
            ts,
            ingest_ts: frame.ingest_ts,
            tunnel,
            source: self.source.clone(),
            position,
            format: RecordFormat::Text,
            envelope: frame.envelope,
            parse_quality,
            log_stream: log_stream.clone(),
            body,
        };
        match line.body {
            gateway::Body::Message(g) => {
                let quality = if g.kind == gateway::GatewayKind::Unknown {
                    ParseQuality::Heuristic
                } else {
                    ParseQuality::Structured
                };
                let tunnel = peers.as_ref().and_then(|p| p.tunnel_of(&g));
                out(Parsed::Event(event(
                    frame.position,
                    tunnel,
                    quality,
                    EventBody::Gateway(g),
                )));
            }
            // One traffic sample per IKE_SA, in AWS's directions (see gateway::swanctl).
            gateway::Body::Counters(sas) => {
                let many = sas.len() > 1;
                for (i, c) in sas.into_iter().enumerate() {
                    let position = if many {
                        with_index(frame.position, i)
                    } else {
                        frame.position
                    };
                    let tunnel = peers
                        .as_ref()
                        .zip(c.remote_host.as_deref())
                        .and_then(|(p, ip)| p.tunnel_of_ip(ip));
                    let traffic = crate::event::Traffic {
                        bytes_in: Some(c.gateway_bytes_out),
                        bytes_out: Some(c.gateway_bytes_in),
                        packets_in: Some(c.gateway_packets_out),
                        packets_out: Some(c.gateway_packets_in),
                        concentrator_id: None,
                    };
                    out(Parsed::Event(event(
                        position,
                        tunnel,
                        ParseQuality::Exact,
                        EventBody::Traffic(traffic),
                    )));
                }
            }
        }
    }

    fn text_record(&mut self, bytes: &[u8], frame: Frame<'_>, out: &mut dyn FnMut(Parsed)) {
        let Some(text) = self.utf8(bytes, frame.position, frame.ingest_ts, out) else {
            return;
        };
        match text::parse(text) {
            Ok(rec) => {
                let frame = Frame {
                    stream: frame.stream.or(rec.stream),
                    ingest_ts: frame.ingest_ts.or(rec.prefix_ts),
                    ..frame
                };
                self.emit(rec.fields, rec.format, rec.quality, frame, bytes, out);
            }
            Err(e) => out(Parsed::Reject(self.reject(
                frame.position,
                e,
                bytes,
                frame.ingest_ts,
            ))),
        }
    }

    /// Builds the event from a record's fields, or rejects it.
    fn emit(
        &mut self,
        fields: Fields<'_>,
        format: RecordFormat,
        quality: ParseQuality,
        frame: Frame<'_>,
        raw: &[u8],
        out: &mut dyn FnMut(Parsed),
    ) {
        let ctx = RecordContext {
            stream: frame.stream,
            fallback_ts: frame.event_ts.or(frame.ingest_ts),
        };
        match record::build(fields, &ctx, &mut self.ids) {
            // Not a log record: perhaps an AWS Health event (only then is it read again).
            Err(ParseError::NotAVpnRecord(_))
                if format == RecordFormat::Json && self.health(raw, frame, out) => {}
            Ok(built) => out(Parsed::Event(Event {
                ts: built.ts,
                ingest_ts: frame.ingest_ts,
                tunnel: built.tunnel,
                source: self.source.clone(),
                position: frame.position,
                format,
                envelope: frame.envelope,
                parse_quality: quality,
                log_stream: frame.stream.map(|s| self.ids.stream(s)),
                body: built.body,
            })),
            Err(e) => out(Parsed::Reject(self.reject(
                frame.position,
                e,
                raw,
                frame.ingest_ts,
            ))),
        }
    }
}

impl Decoder {
    /// Emits the AWS Health events of the JSON document `raw`, if it is one (then `true`); an
    /// event in it that cannot be read becomes a reject naming the field.
    fn health(&mut self, raw: &[u8], frame: Frame<'_>, out: &mut dyn FnMut(Parsed)) -> bool {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(raw) else {
            return false;
        };
        if !health::is_health(&value) {
            return false;
        }
        let events = match health::events(&value) {
            Ok(events) => events,
            Err(e) => {
                out(Parsed::Reject(self.reject(
                    frame.position,
                    e,
                    raw,
                    frame.ingest_ts,
                )));
                return true;
            }
        };
        let many = events.len() > 1;
        for (i, h) in events.into_iter().enumerate() {
            let position = if many {
                with_index(frame.position, i)
            } else {
                frame.position
            };
            let ts = h
                .start_time
                .or(h.last_updated_time)
                .or(frame.event_ts)
                .or(frame.ingest_ts);
            let Some(ts) = ts else {
                let raw = h.raw.into_bytes();
                out(Parsed::Reject(self.reject(
                    position,
                    ParseError::MissingTimestamp,
                    &raw,
                    frame.ingest_ts,
                )));
                continue;
            };
            out(Parsed::Event(Event {
                ts,
                ingest_ts: frame.ingest_ts,
                tunnel: None,
                source: self.source.clone(),
                position,
                format: RecordFormat::Json,
                envelope: frame.envelope,
                parse_quality: ParseQuality::Exact,
                log_stream: frame.stream.map(|s| self.ids.stream(s)),
                body: EventBody::Health(Box::new(h)),
            }));
        }
        true
    }
}

/// The frame of a record read straight from the input.
fn raw_frame(stream: Option<&str>, position: Position) -> Frame<'_> {
    Frame {
        envelope: Envelope::Raw,
        stream,
        event_ts: None,
        ingest_ts: None,
        position,
        depth: 0,
    }
}

/// Adds an envelope index to a position, combining with an outer index.
pub(crate) fn with_index(p: Position, i: usize) -> Position {
    Position {
        index: Some(match p.index {
            Some(outer) => outer * 100_000 + i as u64,
            None => i as u64,
        }),
        ..p
    }
}

/// `<ISO-8601 time with T> ` at the start of a CloudWatch export line: its length including
/// the space, and the time.
fn s3_prefix(line: &[u8]) -> Option<(usize, i64)> {
    if line.len() < 21 || line[10] != b'T' {
        return None;
    }
    let head = std::str::from_utf8(&line[..line.len().min(40)])
        .ok()
        .or_else(|| {
            // The cut at 40 may split a character; the timestamp itself is ASCII.
            let n = line.iter().take(40).take_while(|b| b.is_ascii()).count();
            std::str::from_utf8(&line[..n]).ok()
        })?;
    let (len, ts) = time::readable_prefix(head)?;
    (line.get(len) == Some(&b' ')).then_some((len + 1, ts))
}

enum DocumentEnd {
    /// The document ends just before this offset.
    Complete(usize),
    /// More input is needed.
    Incomplete,
    /// A new document starts in column 0 at this offset before this one closed.
    Broken(usize),
    TooLarge(usize),
}

/// Finds the end of a JSON document that starts at `buf[0]` by bracket depth, skipping strings.
fn scan_json_document(buf: &[u8], limit: usize) -> DocumentEnd {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in buf.iter().enumerate() {
        if i > limit {
            return DocumentEnd::TooLarge(i);
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            } else if b == b'\n' {
                // JSON strings cannot hold a raw newline: the document is broken here.
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if depth > 0 && buf[0] == b'{' && buf[i - 1] == b'\n' && b == b'{' {
                    return DocumentEnd::Broken(i);
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return DocumentEnd::Complete(i + 1);
                }
            }
            _ => {}
        }
    }
    DocumentEnd::Incomplete
}

/// AWS's own text layouts ([`crate::record::text`]): a readable time, then a boolean (tunnel
/// activity) or a record type (BGP). Such a line is AWS's, so the gateway catalogues are not
/// asked (asking cost AWS's text records 8 % of their parse time; `benches/text_sniff.rs`).
fn aws_text_layout(b: &[u8]) -> bool {
    if b.len() < 21
        || !b[..4].iter().all(u8::is_ascii_digit)
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
    {
        return false;
    }
    let Some(blank) = memchr::memchr(b' ', &b[11..]) else {
        return false;
    };
    let next = b[11 + blank + 1..]
        .split(|c| *c == b' ')
        .next()
        .unwrap_or_default();
    matches!(
        next,
        b"true"
            | b"false"
            | b"True"
            | b"False"
            | b"TRUE"
            | b"FALSE"
            | b"BGPStatus"
            | b"RouteStatus"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_text_lines_are_not_asked_for_gateway_shapes() {
        for (line, aws) in [
            (
                "2025-11-08 05:40:30.000Z True False down down 1762580430 AWS tunnel …",
                true,
            ),
            (
                "2025-11-08 05:40:31.000Z BGPStatus DOWN AWS-side peer …",
                true,
            ),
            ("2025-11-08T05:40:31Z RouteStatus ADVERTISED …", true),
            (
                "2026-12-04 05:02:53.666 <RMT> cgw_tunnel1: Received: Administrative shutdown",
                false,
            ),
            (
                "2026/12/04 05:02:49.453 BGP: [N9HHH-F8H1M] %ADJCHANGE: …",
                false,
            ),
            ("2026-12-04T05:00:00Z list-sa event {}", false),
            (
                "2026-12-04T05:10:09+00:00 gw charon[12]: 08[IKE] <vpn-tunnel1|1> …",
                false,
            ),
        ] {
            assert_eq!(aws_text_layout(line.as_bytes()), aws, "{line}");
        }
    }

    #[test]
    fn document_scan() {
        assert!(matches!(
            scan_json_document(b"{\n \"a\": \"}\"\n}\nx", 1000),
            DocumentEnd::Complete(13)
        ));
        assert!(matches!(
            scan_json_document(b"{\n \"a\": 1\n", 1000),
            DocumentEnd::Incomplete
        ));
        assert!(matches!(
            scan_json_document(b"{\n \"a\": 1\n{\n}", 1000),
            DocumentEnd::Broken(10)
        ));
        assert!(matches!(
            scan_json_document(b"[\n{\"a\":1}\n]", 1000),
            DocumentEnd::Complete(11)
        ));
    }

    #[test]
    fn export_prefix() {
        assert_eq!(
            s3_prefix(b"2025-11-08T05:40:29.641Z {\"a\":1}"),
            Some((25, 1762580429641))
        );
        assert_eq!(s3_prefix(b"2025-11-08 05:40:29.641Z x"), None);
        assert_eq!(s3_prefix(b"{\"a\":1}"), None);
    }
}

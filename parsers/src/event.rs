//! The typed output of the parsers: one [`Event`] per accepted log record, one [`Reject`] per
//! record that could not be understood.
//!
//! Invariants: every event carries an event time in epoch milliseconds (UTC), the source it came
//! from and its [`Position`] there; tunnel identity (`vpn_id`, `tunnel_ip`) is present whenever
//! the record or its envelope named it. Field names follow the SQL columns of DESIGN §4 so that
//! the store and the `parse` command render the same names.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalogue::Message;
use crate::error::ParseError;
use crate::gateway::Gateway;

/// Which table of DESIGN §4 an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    TunnelActivity,
    BgpEvents,
    Traffic,
    /// AWS Health events (from AWS; tunnelwatch's inferred ones are written by the pipeline).
    HealthEvents,
    /// Customer-gateway daemon lines (strongSwan, Libreswan, FRR, BIRD).
    GatewayEvents,
}

impl Table {
    pub fn as_str(self) -> &'static str {
        match self {
            Table::TunnelActivity => "tunnel_activity",
            Table::BgpEvents => "bgp_events",
            Table::Traffic => "traffic",
            Table::HealthEvents => "health_events",
            Table::GatewayEvents => "gateway_events",
        }
    }
}

/// `info|warning|error`, as users filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// IKE phase 1 / phase 2 state, normalised to lower case (the wire casing is uncertain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    Established,
    Rekeying,
    Negotiating,
    Down,
}

impl PhaseState {
    /// Case-insensitive; `None` for anything that is not one of the four documented states.
    pub fn parse(s: &str) -> Option<PhaseState> {
        let s = s.trim();
        [
            ("established", PhaseState::Established),
            ("rekeying", PhaseState::Rekeying),
            ("negotiating", PhaseState::Negotiating),
            ("down", PhaseState::Down),
        ]
        .into_iter()
        .find(|(name, _)| s.eq_ignore_ascii_case(name))
        .map(|(_, state)| state)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Established => "established",
            PhaseState::Rekeying => "rekeying",
            PhaseState::Negotiating => "negotiating",
            PhaseState::Down => "down",
        }
    }

    /// Up for the purpose of TunnelState: established or rekeying.
    pub fn is_up(self) -> bool {
        matches!(self, PhaseState::Established | PhaseState::Rekeying)
    }
}

/// How the record itself was rendered: the `format` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFormat {
    Json,
    Text,
}

impl RecordFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordFormat::Json => "json",
            RecordFormat::Text => "text",
        }
    }
}

/// How sure the parser is of the columns: the `parse_quality` column.
///
/// `exact`: a JSON record with the documented keys. `structured`: a text rendering in one of the
/// recognised layouts (`key=value`, documented field order, embedded JSON). `heuristic`: values
/// pulled out of free text; check them before relying on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParseQuality {
    Exact,
    Structured,
    Heuristic,
}

impl ParseQuality {
    pub fn as_str(self) -> &'static str {
        match self {
            ParseQuality::Exact => "exact",
            ParseQuality::Structured => "structured",
            ParseQuality::Heuristic => "heuristic",
        }
    }
}

/// How the record reached us: the `envelope` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope {
    /// One record per line (NDJSON or text), or pretty-printed JSON objects back to back.
    Raw,
    /// `aws logs filter-log-events` / `get-log-events` output.
    CliEvents,
    /// `aws logs filter-log-events` / `get-log-events` `--output text` (tab-separated lines).
    CliText,
    /// CloudWatch Logs export to S3: `<ISO-8601> <message>`.
    S3Export,
    /// CloudWatch Logs subscription payload (`DATA_MESSAGE`).
    Subscription,
    /// Kinesis Data Firehose HTTP endpoint request.
    Firehose,
    /// RFC 5424 / RFC 3164 syslog.
    Syslog,
}

impl Envelope {
    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::Raw => "raw",
            Envelope::CliEvents => "cli_events",
            Envelope::CliText => "cli_text",
            Envelope::S3Export => "s3_export",
            Envelope::Subscription => "subscription",
            Envelope::Firehose => "firehose",
            Envelope::Syslog => "syslog",
        }
    }
}

/// Where a record was found: line and byte offset in the source, and the index of the event
/// inside an envelope that carries several (CLI output, subscription, Firehose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Position {
    /// 1-based line of the record's first byte in the outermost input.
    pub line: u64,
    /// Byte offset of the record's first byte in the outermost input.
    pub offset: u64,
    /// 0-based index of the event inside its envelope(s); `None` for a bare record. For nested
    /// envelopes (Firehose record → subscription event) the indices are combined as
    /// `outer * 100_000 + inner`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} (byte {})", self.line, self.offset)?;
        if let Some(i) = self.index {
            write!(f, ", event {i}")?;
        }
        Ok(())
    }
}

/// The tunnel a record is about: the VPN connection and the tunnel's outside IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TunnelId {
    pub vpn_id: Arc<str>,
    pub tunnel_ip: Arc<str>,
}

/// One accepted log record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event time, epoch milliseconds UTC (`event_timestamp`, else the readable `timestamp`,
    /// else the envelope's ingestion time).
    pub ts: i64,
    /// CloudWatch ingestion time (or syslog / export timestamp) in epoch ms, when the envelope
    /// carried one.
    pub ingest_ts: Option<i64>,
    pub tunnel: Option<TunnelId>,
    pub source: Arc<str>,
    pub position: Position,
    pub format: RecordFormat,
    pub envelope: Envelope,
    pub parse_quality: ParseQuality,
    /// The log stream the envelope named, if any.
    pub log_stream: Option<Arc<str>>,
    pub body: EventBody,
}

impl Event {
    pub fn table(&self) -> Table {
        match self.body {
            EventBody::Activity(_) => Table::TunnelActivity,
            EventBody::Bgp(_) => Table::BgpEvents,
            EventBody::Traffic(_) => Table::Traffic,
            EventBody::Health(_) => Table::HealthEvents,
            EventBody::Gateway(_) => Table::GatewayEvents,
        }
    }

    pub fn vpn_id(&self) -> Option<&str> {
        self.tunnel.as_ref().map(|t| &*t.vpn_id)
    }

    pub fn tunnel_ip(&self) -> Option<&str> {
        self.tunnel.as_ref().map(|t| &*t.tunnel_ip)
    }

    /// The classified message, for activity and BGP events.
    pub fn message(&self) -> Option<&Message> {
        match &self.body {
            EventBody::Activity(a) => Some(&a.message),
            EventBody::Bgp(b) => Some(&b.message),
            EventBody::Traffic(_) | EventBody::Health(_) | EventBody::Gateway(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    Activity(Activity),
    Bgp(Bgp),
    Traffic(Traffic),
    /// An AWS Health event (EventBridge or `aws health` CLI output); no tunnel identity.
    Health(Box<AwsHealth>),
    /// A customer-gateway daemon's line (boxed: it is the widest body).
    Gateway(Box<Gateway>),
}

/// One AWS Health event as AWS reported it (`record::health` lists the shapes read). Only the
/// ARN is always there: `describe-affected-entities` output carries just the ARN and entities.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsHealth {
    pub event_arn: String,
    pub service: Option<String>,
    pub event_type_code: Option<String>,
    pub event_type_category: Option<String>,
    pub region: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub last_updated_time: Option<i64>,
    /// `open`, `closed` or `upcoming`.
    pub status_code: Option<String>,
    /// The affected entities' values (for VPN events, `vpn-…` connection ids).
    pub entities: Vec<String>,
    pub description: Option<String>,
    /// The JSON of the event as it arrived.
    pub raw: String,
}

/// A tunnel activity (IKE/IPsec/DPD) record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Activity {
    pub dpd_enabled: Option<bool>,
    pub nat_t_detected: Option<bool>,
    pub ike_phase1_state: Option<PhaseState>,
    pub ike_phase2_state: Option<PhaseState>,
    pub details: Option<String>,
    pub message: Message,
    /// Keys the record carried that are not documented, as a JSON object text (kept, not used).
    pub extra: Option<String>,
}

/// The `type` of a BGP record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BgpType {
    BgpStatus,
    RouteStatus,
    /// Anything else (e.g. `BFDStatus`, seen in the sibling Route Server log), kept verbatim.
    Other(String),
}

impl BgpType {
    pub fn parse(s: &str) -> BgpType {
        if s.eq_ignore_ascii_case("BGPStatus") {
            BgpType::BgpStatus
        } else if s.eq_ignore_ascii_case("RouteStatus") {
            BgpType::RouteStatus
        } else {
            BgpType::Other(s.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BgpType::BgpStatus => "BGPStatus",
            BgpType::RouteStatus => "RouteStatus",
            BgpType::Other(s) => s,
        }
    }
}

/// A tunnel BGP record (BGPStatus or RouteStatus).
#[derive(Debug, Clone, PartialEq)]
pub struct Bgp {
    pub kind: BgpType,
    /// Upper-cased `status`: `UP|DOWN` or `ADVERTISED|UPDATED|WITHDRAWN`.
    pub status: Option<String>,
    pub details: Option<String>,
    pub message: Message,
    /// Route attributes (RouteStatus records), boxed: most BGP records have none.
    pub route: Option<Box<Route>>,
    pub extra: Option<String>,
}

/// The route attributes of a RouteStatus record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    pub prefix: Option<String>,
    pub as_path: Option<String>,
    pub local_pref: Option<i64>,
    pub med: Option<i64>,
    pub next_hop_ip: Option<String>,
    pub weight: Option<i64>,
}

/// A traffic counter sample (cumulative counters as the gateway reports them; a sample without
/// one of the counters leaves it `None`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Traffic {
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub packets_in: Option<u64>,
    pub packets_out: Option<u64>,
    pub concentrator_id: Option<String>,
}

/// A record that could not be parsed, kept with its raw bytes so nothing is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub source: Arc<str>,
    pub position: Position,
    pub error: ParseError,
    pub raw: Vec<u8>,
    /// Ingestion time from the envelope, if one was known.
    pub ingest_ts: Option<i64>,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.position, self.error)
    }
}

/// What the decoder hands out, in input order.
// Events are far more common than rejects and go straight to the caller's sink: boxing them to
// even out the variants would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Event),
    Reject(Reject),
}

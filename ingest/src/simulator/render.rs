//! Rendering: record specifications to the exact lines written, in JSON (reference §2 keys,
//! the §3.2 BGP shape, the DESIGN §4 `TunnelTraffic` record) or in the documented text field
//! order. Also the message kind each text is classified as.
//!
//! Invariants: every text written is a catalogue text of reference §5 with its placeholders
//! filled as in the documented example (bare values); JSON strings are escaped; readable
//! timestamps are `YYYY-MM-DD HH:MM:SS.mmmZ`; activity `event_timestamp` is in seconds, BGP
//! and traffic `event_timestamp` in milliseconds. Rendering allocates nothing but the line.

use tunnelwatch_parsers::{MessageKind, PhaseState};

use super::OutputFormat;

/// An activity `details` message with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IkeText {
    DeleteIkeSa,
    DeletePhase2Sa { spi: u32 },
    DpdTimeout { retries: u32 },
    PeerDead,
    PskMismatch,
    AuthFailed,
    PskInvalid,
    NoProposalMatch,
    NoProposalChosen,
    Phase2Failed,
    Phase1Timeout,
    TsUnacceptable,
    RequestReceived { id: u64 },
    ResponseSent { id: u64 },
    RequestSent { id: u64 },
    ResponseReceived { id: u64 },
    RedundantSa,
}

impl IkeText {
    pub fn kind(self) -> MessageKind {
        use MessageKind as K;
        match self {
            IkeText::DeleteIkeSa => K::IkeSaDeleted,
            IkeText::DeletePhase2Sa { .. } => K::Phase2SaDeleted,
            IkeText::DpdTimeout { .. } => K::DpdTimeout,
            IkeText::PeerDead => K::DpdPeerDead,
            IkeText::PskMismatch => K::PskMismatch,
            IkeText::AuthFailed => K::AuthFailed,
            IkeText::PskInvalid => K::PskInvalid,
            IkeText::NoProposalMatch => K::NoProposalMatch,
            IkeText::NoProposalChosen => K::NoProposalChosen,
            IkeText::Phase2Failed => K::Phase2Failed,
            IkeText::Phase1Timeout => K::Phase1Timeout,
            IkeText::TsUnacceptable => K::TsUnacceptable,
            IkeText::RequestReceived { .. } => K::CreateChildSaRequestReceived,
            IkeText::ResponseSent { .. } => K::CreateChildSaResponseSent,
            IkeText::RequestSent { .. } => K::CreateChildSaRequestSent,
            IkeText::ResponseReceived { .. } => K::CreateChildSaResponseReceived,
            IkeText::RedundantSa => K::RedundantSaDeleted,
        }
    }

    /// Writes the text; `json` escapes the one text that holds double quotes.
    fn write(self, out: &mut String, cgw_ip: &str, json: bool) {
        match self {
            IkeText::DeleteIkeSa => out.push_str("AWS tunnel received DELETE for IKE_SA from CGW"),
            IkeText::DeletePhase2Sa { spi } => {
                out.push_str("AWS tunnel received DELETE for Phase 2 SA with SPI: ");
                push_hex8(out, spi);
            }
            IkeText::DpdTimeout { retries } => {
                out.push_str("AWS tunnel DPD timed out after ");
                push_u64(out, u64::from(retries));
                out.push_str(" retransmits");
            }
            IkeText::PeerDead => out.push_str("Peer is not responsive - Declaring peer dead"),
            IkeText::PskMismatch => {
                out.push_str("AWS tunnel detected a pre-shared key mismatch with cgw: ");
                out.push_str(cgw_ip);
            }
            IkeText::AuthFailed => {
                out.push_str("AWS tunnel is sending AUTHENTICATION_FAILED as the response")
            }
            IkeText::PskInvalid => out.push_str(
                "AWS tunnel payload decryption was unsuccessful due to invalid Pre-shared Key",
            ),
            IkeText::NoProposalMatch => out.push_str("No Proposal Match Found by AWS"),
            IkeText::NoProposalChosen => out.push_str(if json {
                r#"No Proposal Match Found. Notifying with \"No proposal chosen\""#
            } else {
                r#"No Proposal Match Found. Notifying with "No proposal chosen""#
            }),
            IkeText::Phase2Failed => {
                out.push_str("AWS tunnel Phase 2 was unable to establish while keeping Phase 1")
            }
            IkeText::Phase1Timeout => {
                out.push_str(
                    "AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: ",
                );
                out.push_str(cgw_ip);
            }
            IkeText::TsUnacceptable => {
                out.push_str("AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder")
            }
            IkeText::RequestReceived { id } => child_sa(out, "processed request", id),
            IkeText::ResponseSent { id } => child_sa(out, "is sending response", id),
            IkeText::RequestSent { id } => child_sa(out, "is sending request", id),
            IkeText::ResponseReceived { id } => child_sa(out, "processed response", id),
            IkeText::RedundantSa => out.push_str(
                "AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision",
            ),
        }
    }
}

fn child_sa(out: &mut String, verb: &str, id: u64) {
    out.push_str("AWS tunnel ");
    out.push_str(verb);
    out.push_str(" (id=");
    push_u64(out, id);
    out.push_str(") for CREATE_CHILD_SA");
}

/// BGP session states (RFC 4271 names, as AWS writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BgpState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl BgpState {
    pub fn as_str(self) -> &'static str {
        match self {
            BgpState::Idle => "Idle",
            BgpState::Connect => "Connect",
            BgpState::Active => "Active",
            BgpState::OpenSent => "OpenSent",
            BgpState::OpenConfirm => "OpenConfirm",
            BgpState::Established => "Established",
        }
    }
}

/// A `BGPStatus` message with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BgpText {
    StateChange {
        from: BgpState,
        to: BgpState,
    },
    HoldTimerExpired,
    ConnectInitiated,
    OpenSent,
    OpenReceived,
    EndOfRib,
    /// `update_received` with the tunnel's AS path, or the looped one.
    UpdateReceived {
        looped: bool,
    },
    PrefixWarning {
        count: u32,
        limit: u32,
    },
    PrefixExceeded {
        count: u32,
        limit: u32,
    },
    /// 6/1 sent to the CGW.
    MaxPrefixNotification,
}

impl BgpText {
    pub fn kind(self) -> MessageKind {
        use MessageKind as K;
        match self {
            BgpText::StateChange { .. } => K::BgpStateChange,
            BgpText::HoldTimerExpired => K::HoldTimerExpired,
            BgpText::ConnectInitiated => K::ConnectInitiated,
            BgpText::OpenSent => K::OpenSent,
            BgpText::OpenReceived => K::OpenReceived,
            BgpText::EndOfRib => K::EndOfRibSent,
            BgpText::UpdateReceived { .. } => K::UpdateReceived,
            BgpText::PrefixWarning { .. } => K::PrefixLimitWarning,
            BgpText::PrefixExceeded { .. } => K::PrefixLimitExceeded,
            BgpText::MaxPrefixNotification => K::BgpNotification,
        }
    }

    /// `UP` or `DOWN`: from the target state for state changes, else the reference §5.4 table.
    pub fn up(self) -> bool {
        match self {
            BgpText::StateChange { to, .. } => to == BgpState::Established,
            BgpText::EndOfRib | BgpText::UpdateReceived { .. } | BgpText::PrefixWarning { .. } => {
                true
            }
            BgpText::HoldTimerExpired
            | BgpText::ConnectInitiated
            | BgpText::OpenSent
            | BgpText::OpenReceived
            | BgpText::PrefixExceeded { .. }
            | BgpText::MaxPrefixNotification => false,
        }
    }

    fn write(self, out: &mut String, t: &TunnelText) {
        let nb = &*t.neighbor;
        match self {
            BgpText::StateChange { from, to } => {
                out.push_str("AWS-side peer BGP session state has changed from ");
                out.push_str(from.as_str());
                out.push_str(" to ");
                out.push_str(to.as_str());
                out.push_str(" with neighbor ");
                out.push_str(nb);
            }
            BgpText::HoldTimerExpired => {
                out.push_str("AWS-side peer sent a Hold Timer Expired notification to neighbor ");
                out.push_str(nb);
            }
            BgpText::ConnectInitiated => {
                out.push_str("AWS-side peer is initiating a connection (via Connect) to neighbor ");
                out.push_str(nb);
            }
            BgpText::OpenSent => {
                out.push_str("AWS-side peer sent an OPEN message to neighbor ");
                out.push_str(nb);
                out.push_str(" - version 4, AS ");
                push_u64(out, u64::from(t.aws_asn));
                out.push_str(", holdtime 30, router-id ");
                out.push_str(&t.aws_router_id);
            }
            BgpText::OpenReceived => {
                out.push_str("AWS-side peer received an OPEN message from neighbor ");
                out.push_str(nb);
                out.push_str(" - version 4, AS ");
                push_u64(out, u64::from(t.cgw_asn));
                out.push_str(", holdtime 30, router-id ");
                out.push_str(&t.cgw_router_id);
            }
            BgpText::EndOfRib => {
                out.push_str("AWS-side peer sent an End-of-RIB message to neighbor ");
                out.push_str(nb);
            }
            BgpText::UpdateReceived { looped } => {
                out.push_str("AWS-side peer received update with attributes from neighbor ");
                out.push_str(nb);
                out.push_str(" - AS path: ");
                out.push_str(if looped { &t.looped_path } else { &t.as_path });
            }
            BgpText::PrefixWarning { count, limit } => {
                out.push_str(
                    "AWS-side peer is reporting a maximum prefix limit warning - received ",
                );
                prefix_tail(out, count, nb, limit);
            }
            BgpText::PrefixExceeded { count, limit } => {
                out.push_str(
                    "AWS-side peer detected the maximum prefix limit was exceeded - received ",
                );
                prefix_tail(out, count, nb, limit);
            }
            BgpText::MaxPrefixNotification => {
                out.push_str(
                    "AWS-side peer sent a notification 6/1 (Cease/Maximum Number of Prefixes Reached) to neighbor ",
                );
                out.push_str(nb);
            }
        }
    }
}

fn prefix_tail(out: &mut String, count: u32, nb: &str, limit: u32) {
    push_u64(out, u64::from(count));
    out.push_str(" prefixes from neighbor ");
    out.push_str(nb);
    out.push_str(", limit is ");
    push_u64(out, u64::from(limit));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteStatus {
    Advertised,
    Updated,
    Withdrawn,
}

impl RouteStatus {
    fn as_str(self) -> &'static str {
        match self {
            RouteStatus::Advertised => "ADVERTISED",
            RouteStatus::Updated => "UPDATED",
            RouteStatus::Withdrawn => "WITHDRAWN",
        }
    }
}

/// Which prefix a route record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixRef {
    /// One of the connection's own prefixes.
    Own(u16),
    /// The n-th prefix of a prefix-limit flood (`10.128.0.0/9` in /24s).
    Flood(u16),
    /// The n-th AWS-side CIDR a looping CGW re-advertises.
    Looped(u8),
}

const LOOPED: [&str; 3] = ["172.31.0.0/16", "10.0.0.0/16", "10.1.0.0/16"];

/// What one record says, before its time is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    Activity {
        p1: PhaseState,
        p2: PhaseState,
        text: IkeText,
    },
    Bgp(BgpText),
    Route {
        status: RouteStatus,
        prefix: PrefixRef,
        med: u32,
        denied: bool,
    },
    Traffic {
        bytes_in: u64,
        bytes_out: u64,
        packets_in: u64,
        packets_out: u64,
    },
}

impl Spec {
    pub fn kind(self) -> Option<MessageKind> {
        match self {
            Spec::Activity { text, .. } => Some(text.kind()),
            Spec::Bgp(t) => Some(t.kind()),
            Spec::Route { denied: true, .. } => Some(MessageKind::RouteDenied),
            Spec::Route { status, .. } => Some(match status {
                RouteStatus::Advertised => MessageKind::RouteAdvertised,
                RouteStatus::Updated => MessageKind::RouteUpdated,
                RouteStatus::Withdrawn => MessageKind::RouteWithdrawn,
            }),
            Spec::Traffic { .. } => None,
        }
    }
}

/// Per-tunnel strings used by every record, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct TunnelText {
    pub resource_id: String,
    pub neighbor: String,
    pub cgw_ip: String,
    pub aws_router_id: String,
    pub cgw_router_id: String,
    pub aws_asn: u32,
    pub cgw_asn: u32,
    pub as_path: String,
    pub looped_path: String,
    pub prefixes: Vec<String>,
    pub concentrator_id: Option<String>,
    pub dpd_enabled: bool,
    pub nat_t_detected: bool,
}

/// Formats readable timestamps, caching the `YYYY-MM-DD HH:MM:SS` part of the last second.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    second: i64,
    text: [u8; 19],
    valid: bool,
}

impl Clock {
    /// `YYYY-MM-DD HH:MM:SS.mmmZ`
    fn push_readable(&mut self, out: &mut String, ms: i64) {
        let second = ms.div_euclid(1000);
        if !self.valid || second != self.second {
            self.second = second;
            self.valid = true;
            let days = second.div_euclid(86_400);
            let sod = second.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let y = y.clamp(0, 9999) as u32;
            let fields = [
                (0, y / 100),
                (2, y % 100),
                (5, m),
                (8, d),
                (11, (sod / 3600) as u32),
                (14, (sod / 60 % 60) as u32),
                (17, (sod % 60) as u32),
            ];
            self.text = *b"0000-00-00 00:00:00";
            for (at, v) in fields {
                self.text[at] = b'0' + (v / 10) as u8;
                self.text[at + 1] = b'0' + (v % 10) as u8;
            }
        }
        out.push_str(std::str::from_utf8(&self.text).expect("ASCII"));
        out.push('.');
        let milli = ms.rem_euclid(1000) as u32;
        out.push((b'0' + (milli / 100) as u8) as char);
        out.push((b'0' + (milli / 10 % 10) as u8) as char);
        out.push((b'0' + (milli % 10) as u8) as char);
        out.push('Z');
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("digits"));
}

fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

fn push_hex8(out: &mut String, v: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..8).rev() {
        out.push(HEX[((v >> (shift * 4)) & 0xf) as usize] as char);
    }
}

fn push_bool(out: &mut String, b: bool) {
    out.push_str(if b { "true" } else { "false" });
}

fn prefix_text(out: &mut String, t: &TunnelText, p: PrefixRef) {
    match p {
        PrefixRef::Own(i) => out.push_str(&t.prefixes[usize::from(i)]),
        PrefixRef::Flood(i) => {
            out.push_str("10.");
            push_u64(out, 128 + u64::from(i / 256));
            out.push('.');
            push_u64(out, u64::from(i % 256));
            out.push_str(".0/24");
        }
        PrefixRef::Looped(i) => out.push_str(LOOPED[usize::from(i) % LOOPED.len()]),
    }
}

const DENIED: &str = "DENIED due to: as-path contains our own AS";

/// Renders `spec` at `ts` into `out` (cleared first).
pub(crate) fn render(
    out: &mut String,
    spec: &Spec,
    ts: i64,
    format: OutputFormat,
    t: &TunnelText,
    clock: &mut Clock,
) {
    out.clear();
    let json = format == OutputFormat::Json;
    match *spec {
        Spec::Traffic {
            bytes_in,
            bytes_out,
            packets_in,
            packets_out,
        } => {
            // Traffic samples are this project's own JSON record in both formats.
            out.push_str(r#"{"type":"TunnelTraffic","resource_id":""#);
            out.push_str(&t.resource_id);
            out.push_str(r#"","event_timestamp":"#);
            push_i64(out, ts);
            out.push_str(r#","bytes_in":"#);
            push_u64(out, bytes_in);
            out.push_str(r#","bytes_out":"#);
            push_u64(out, bytes_out);
            out.push_str(r#","packets_in":"#);
            push_u64(out, packets_in);
            out.push_str(r#","packets_out":"#);
            push_u64(out, packets_out);
            if let Some(c) = &t.concentrator_id {
                out.push_str(r#","concentrator_id":""#);
                out.push_str(c);
                out.push('"');
            }
            out.push('}');
        }
        Spec::Activity { p1, p2, text } if json => {
            out.push_str(r#"{"event_timestamp":"#);
            push_i64(out, ts.div_euclid(1000));
            out.push_str(r#","timestamp":""#);
            clock.push_readable(out, ts);
            out.push_str(r#"","dpd_enabled":"#);
            push_bool(out, t.dpd_enabled);
            out.push_str(r#","nat_t_detected":"#);
            push_bool(out, t.nat_t_detected);
            out.push_str(r#","ike_phase1_state":""#);
            out.push_str(p1.as_str());
            out.push_str(r#"","ike_phase2_state":""#);
            out.push_str(p2.as_str());
            out.push_str(r#"","details":""#);
            text.write(out, &t.cgw_ip, true);
            out.push_str("\"}");
        }
        Spec::Activity { p1, p2, text } => {
            clock.push_readable(out, ts);
            out.push(' ');
            push_bool(out, t.dpd_enabled);
            out.push(' ');
            push_bool(out, t.nat_t_detected);
            out.push(' ');
            out.push_str(p1.as_str());
            out.push(' ');
            out.push_str(p2.as_str());
            out.push(' ');
            push_i64(out, ts.div_euclid(1000));
            out.push(' ');
            text.write(out, &t.cgw_ip, false);
        }
        Spec::Bgp(text) if json => {
            bgp_head(
                out,
                t,
                ts,
                clock,
                "BGPStatus",
                if text.up() { "UP" } else { "DOWN" },
            );
            out.push_str(r#","message":{"details":""#);
            text.write(out, t);
            out.push_str("\"}}");
        }
        Spec::Bgp(text) => {
            clock.push_readable(out, ts);
            out.push_str(" BGPStatus ");
            out.push_str(if text.up() { "UP " } else { "DOWN " });
            text.write(out, t);
            text_tail(out, t, ts);
        }
        Spec::Route {
            status,
            prefix,
            med,
            denied,
        } => {
            let path = if matches!(prefix, PrefixRef::Looped(_)) {
                &t.looped_path
            } else {
                &t.as_path
            };
            if json {
                bgp_head(out, t, ts, clock, "RouteStatus", status.as_str());
                out.push_str(r#","message":{"prefix":""#);
                prefix_text(out, t, prefix);
                out.push_str(r#"","asPath":""#);
                out.push_str(path);
                out.push_str(r#"","localPref":100,"med":"#);
                push_u64(out, u64::from(med));
                out.push_str(r#","nextHopIp":""#);
                out.push_str(&t.neighbor);
                out.push_str(r#"","weight":32768"#);
                if denied {
                    out.push_str(r#","details":""#);
                    out.push_str(DENIED);
                    out.push('"');
                }
                out.push_str("}}");
            } else {
                clock.push_readable(out, ts);
                out.push_str(" RouteStatus ");
                out.push_str(status.as_str());
                out.push_str(" prefix=");
                prefix_text(out, t, prefix);
                out.push_str(" asPath=\"");
                out.push_str(path);
                out.push_str("\" localPref=100 med=");
                push_u64(out, u64::from(med));
                out.push_str(" nextHopIp=");
                out.push_str(&t.neighbor);
                out.push_str(" weight=32768");
                if denied {
                    out.push_str(" details=\"");
                    out.push_str(DENIED);
                    out.push('"');
                }
                text_tail(out, t, ts);
            }
        }
    }
}

fn bgp_head(
    out: &mut String,
    t: &TunnelText,
    ts: i64,
    clock: &mut Clock,
    kind: &str,
    status: &str,
) {
    out.push_str(r#"{"resource_id":""#);
    out.push_str(&t.resource_id);
    out.push_str(r#"","event_timestamp":"#);
    push_i64(out, ts);
    out.push_str(r#","timestamp":""#);
    clock.push_readable(out, ts);
    out.push_str(r#"","type":""#);
    out.push_str(kind);
    out.push_str(r#"","status":""#);
    out.push_str(status);
    out.push('"');
}

fn text_tail(out: &mut String, t: &TunnelText, ts: i64) {
    out.push(' ');
    out.push_str(&t.resource_id);
    out.push(' ');
    push_i64(out, ts);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_time_matches_parsers() {
        let mut c = Clock::default();
        for ms in [
            0i64,
            1_762_580_429_641,
            1_793_577_600_000,
            951_782_400_999,
            4_102_444_799_001,
        ] {
            let mut s = String::new();
            c.push_readable(&mut s, ms);
            let want = tunnelwatch_parsers::time::format_ms(ms).replace('T', " ");
            assert_eq!(s, want);
        }
    }

    fn tunnel_text() -> TunnelText {
        TunnelText {
            resource_id: "vpn-0123456789abcdef0_203.0.113.12".into(),
            neighbor: "169.254.44.2".into(),
            cgw_ip: "198.51.100.7".into(),
            aws_router_id: "169.254.44.1".into(),
            cgw_router_id: "198.51.100.7".into(),
            aws_asn: 64512,
            cgw_asn: 65010,
            as_path: "65010 65101".into(),
            looped_path: "65010 64512".into(),
            prefixes: vec!["10.20.0.0/16".into()],
            concentrator_id: Some("vcn-0123456789abcdef0".into()),
            dpd_enabled: true,
            nat_t_detected: false,
        }
    }

    /// Every text and record shape the simulator can write, in both formats, parses back with
    /// the claimed kind, the right quality and identity.
    #[test]
    fn every_spec_parses_back() {
        use tunnelwatch_parsers::{DecoderOptions, ParseQuality, Parsed, parse_all};
        let ike = [
            IkeText::DeleteIkeSa,
            IkeText::DeletePhase2Sa { spi: 0xc0ffee01 },
            IkeText::DpdTimeout { retries: 3 },
            IkeText::PeerDead,
            IkeText::PskMismatch,
            IkeText::AuthFailed,
            IkeText::PskInvalid,
            IkeText::NoProposalMatch,
            IkeText::NoProposalChosen,
            IkeText::Phase2Failed,
            IkeText::Phase1Timeout,
            IkeText::TsUnacceptable,
            IkeText::RequestReceived { id: 7 },
            IkeText::ResponseSent { id: 7 },
            IkeText::RequestSent { id: 8 },
            IkeText::ResponseReceived { id: 8 },
            IkeText::RedundantSa,
        ];
        let states = [
            BgpState::Idle,
            BgpState::Connect,
            BgpState::Active,
            BgpState::OpenSent,
        ];
        let mut bgp: Vec<BgpText> = vec![
            BgpText::HoldTimerExpired,
            BgpText::ConnectInitiated,
            BgpText::OpenSent,
            BgpText::OpenReceived,
            BgpText::EndOfRib,
            BgpText::UpdateReceived { looped: false },
            BgpText::UpdateReceived { looped: true },
            BgpText::PrefixWarning {
                count: 75,
                limit: 100,
            },
            BgpText::PrefixExceeded {
                count: 101,
                limit: 100,
            },
            BgpText::MaxPrefixNotification,
        ];
        for from in states {
            for to in [
                BgpState::Connect,
                BgpState::Active,
                BgpState::OpenSent,
                BgpState::Idle,
            ] {
                bgp.push(BgpText::StateChange { from, to });
            }
        }
        bgp.push(BgpText::StateChange {
            from: BgpState::OpenConfirm,
            to: BgpState::Established,
        });
        let mut specs: Vec<Spec> = ike
            .iter()
            .map(|&text| Spec::Activity {
                p1: PhaseState::Established,
                p2: PhaseState::Down,
                text,
            })
            .collect();
        specs.extend(bgp.into_iter().map(Spec::Bgp));
        for status in [
            RouteStatus::Advertised,
            RouteStatus::Updated,
            RouteStatus::Withdrawn,
        ] {
            for prefix in [
                PrefixRef::Own(0),
                PrefixRef::Flood(300),
                PrefixRef::Looped(2),
            ] {
                for denied in [false, true] {
                    specs.push(Spec::Route {
                        status,
                        prefix,
                        med: 100,
                        denied,
                    });
                }
            }
        }
        specs.push(Spec::Traffic {
            bytes_in: 1,
            bytes_out: 2,
            packets_in: 3,
            packets_out: 4,
        });
        let t = tunnel_text();
        let mut clock = Clock::default();
        for format in [OutputFormat::Json, OutputFormat::Text] {
            for spec in &specs {
                let mut line = String::new();
                render(&mut line, spec, 1_793_577_600_123, format, &t, &mut clock);
                let parsed = parse_all(
                    "vpn-0123456789abcdef0-203.0.113.12.log",
                    line.as_bytes(),
                    DecoderOptions::default(),
                );
                let [Parsed::Event(e)] = &parsed[..] else {
                    panic!("{line}: {parsed:?}");
                };
                assert_eq!(e.message().map(|m| m.kind), spec.kind(), "{line}");
                assert_eq!(e.vpn_id(), Some("vpn-0123456789abcdef0"), "{line}");
                assert_eq!(e.tunnel_ip(), Some("203.0.113.12"), "{line}");
                let want = match (format, spec) {
                    (_, Spec::Traffic { .. }) | (OutputFormat::Json, _) => ParseQuality::Exact,
                    (OutputFormat::Text, _) => ParseQuality::Structured,
                };
                assert_eq!(e.parse_quality, want, "{line}");
            }
        }
    }

    #[test]
    fn numbers() {
        let mut s = String::new();
        push_u64(&mut s, 0);
        s.push(' ');
        push_u64(&mut s, u64::MAX);
        s.push(' ');
        push_i64(&mut s, -42);
        s.push(' ');
        push_hex8(&mut s, 0x0a1b_2c3d);
        assert_eq!(s, "0 18446744073709551615 -42 0a1b2c3d");
    }
}

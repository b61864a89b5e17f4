//! Customer-gateway logs: the lines strongSwan's charon, Libreswan's pluto, FRR's bgpd and
//! BIRD 2 write about the same tunnels AWS logs, as one `gateway` record family (table
//! `gateway_events`, catalogue in `docs/gateway-kinds.md`).
//!
//! A line reaches this module in one of the shapes the daemons write (see [`frame`]):
//! a log file line with its own time (`charon` filelog, FRR `log file`, BIRD `log "file"`), a
//! syslog file line (`<time> <host> <tag>[pid]: …`), or the body of a syslog message whose
//! APP-NAME names the daemon. Each daemon's module then strips its own prefix (charon's
//! `05[IKE] <conn|7>`, FRR's `[XXXXX-XXXXX]`, BIRD's `proto:`) and matches the message against
//! its catalogue of templates ([`template`]).
//!
//! Invariants:
//! - A line recognised as a gateway's is never dropped: a message no template matches is kept
//!   with `gateway_kind = 'unknown'` and the names and addresses its prefix carried.
//! - Parsing is a pure function of the line (and the year for year-less times): no state is
//!   carried between lines, so line-aligned pieces of one input decode the same on any thread.
//!   Addresses that a line does not name (most charon lines name only their IKE_SA) are filled
//!   in later, from the lines of the same SA that do (`diagnose`'s timeline).
//! - Times without a zone are read as UTC (gateways that log local time need their clock in
//!   UTC, or a syslog forwarder that adds a zone).

mod bird;
mod charon;
mod clock;
mod frr;
mod peers;
mod pluto;
pub mod swanctl;
pub(crate) mod template;

pub use charon::HEX_DUMP;
pub use peers::{PeerMap, slash30};

use serde::Serialize;

use crate::event::Severity;
use template::{Filled, Slot};

/// The daemon that wrote a line: the `daemon` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Daemon {
    Strongswan,
    Libreswan,
    Frr,
    Bird,
    /// A line read with `--format gateway` whose writer was not recognised.
    Unknown,
}

impl Daemon {
    pub fn as_str(self) -> &'static str {
        match self {
            Daemon::Strongswan => "strongswan",
            Daemon::Libreswan => "libreswan",
            Daemon::Frr => "frr",
            Daemon::Bird => "bird",
            Daemon::Unknown => "unknown",
        }
    }

    /// The daemon a syslog tag (APP-NAME) names.
    pub fn of_tag(tag: &str) -> Option<Daemon> {
        Some(match tag {
            "charon" | "charon-systemd" | "charon-cmd" | "charon-nm" | "ipsec" | "starter"
            | "ipsec_starter" | "swanctl" => Daemon::Strongswan,
            "pluto" | "ipsec_pluto" | "libreswan" | "libipsecconf" | "addconn" | "whack" => {
                Daemon::Libreswan
            }
            "bgpd" | "frr" | "watchfrr" | "frr-bgpd" => Daemon::Frr,
            "bird" | "bird2" | "bird6" => Daemon::Bird,
            _ => return None,
        })
    }

    pub fn is_bgp(self) -> bool {
        matches!(self, Daemon::Frr | Daemon::Bird)
    }
}

/// The `gateway_kind` column: stable snake_case names, as `message_kind` is for AWS's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayKind {
    IkeSaInitiating,
    IkeSaEstablished,
    IkeSaRekeyed,
    IkeSaDeleted,
    ChildSaEstablished,
    ChildSaRekeyed,
    ChildSaFailed,
    ChildSaDeleted,
    AuthSucceeded,
    AuthFailed,
    NoProposalChosen,
    ProposalList,
    InvalidKe,
    TsUnacceptable,
    Retransmit,
    PeerNotResponding,
    DpdRequest,
    NatDetected,
    NotifyReceived,
    IkeMessage,
    BgpStateChange,
    BgpConnect,
    BgpOpen,
    BgpNotification,
    HoldTimerExpired,
    BadPeerAs,
    PrefixLimit,
    AdminShutdown,
    DaemonStarted,
    #[default]
    Unknown,
}

impl GatewayKind {
    /// Every kind, in catalogue order.
    pub const ALL: [GatewayKind; 30] = [
        GatewayKind::IkeSaInitiating,
        GatewayKind::IkeSaEstablished,
        GatewayKind::IkeSaRekeyed,
        GatewayKind::IkeSaDeleted,
        GatewayKind::ChildSaEstablished,
        GatewayKind::ChildSaRekeyed,
        GatewayKind::ChildSaFailed,
        GatewayKind::ChildSaDeleted,
        GatewayKind::AuthSucceeded,
        GatewayKind::AuthFailed,
        GatewayKind::NoProposalChosen,
        GatewayKind::ProposalList,
        GatewayKind::InvalidKe,
        GatewayKind::TsUnacceptable,
        GatewayKind::Retransmit,
        GatewayKind::PeerNotResponding,
        GatewayKind::DpdRequest,
        GatewayKind::NatDetected,
        GatewayKind::NotifyReceived,
        GatewayKind::IkeMessage,
        GatewayKind::BgpStateChange,
        GatewayKind::BgpConnect,
        GatewayKind::BgpOpen,
        GatewayKind::BgpNotification,
        GatewayKind::HoldTimerExpired,
        GatewayKind::BadPeerAs,
        GatewayKind::PrefixLimit,
        GatewayKind::AdminShutdown,
        GatewayKind::DaemonStarted,
        GatewayKind::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        use GatewayKind::*;
        match self {
            IkeSaInitiating => "ike_sa_initiating",
            IkeSaEstablished => "ike_sa_established",
            IkeSaRekeyed => "ike_sa_rekeyed",
            IkeSaDeleted => "ike_sa_deleted",
            ChildSaEstablished => "child_sa_established",
            ChildSaRekeyed => "child_sa_rekeyed",
            ChildSaFailed => "child_sa_failed",
            ChildSaDeleted => "child_sa_deleted",
            AuthSucceeded => "auth_succeeded",
            AuthFailed => "auth_failed",
            NoProposalChosen => "no_proposal_chosen",
            ProposalList => "proposal_list",
            InvalidKe => "invalid_ke",
            TsUnacceptable => "ts_unacceptable",
            Retransmit => "retransmit",
            PeerNotResponding => "peer_not_responding",
            DpdRequest => "dpd_request",
            NatDetected => "nat_detected",
            NotifyReceived => "notify_received",
            IkeMessage => "ike_message",
            BgpStateChange => "bgp_state_change",
            BgpConnect => "bgp_connect",
            BgpOpen => "bgp_open",
            BgpNotification => "bgp_notification",
            HoldTimerExpired => "hold_timer_expired",
            BadPeerAs => "bad_peer_as",
            PrefixLimit => "prefix_limit",
            AdminShutdown => "admin_shutdown",
            DaemonStarted => "daemon_started",
            Unknown => "unknown",
        }
    }

    pub fn parse(name: &str) -> Option<GatewayKind> {
        GatewayKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// How bad the kind is on its own; the daemon's own level (BIRD's `<ERR>`) or a state
    /// change's direction can raise it (see [`severity`]).
    fn base_severity(self) -> Severity {
        use GatewayKind::*;
        match self {
            AuthFailed | NoProposalChosen | TsUnacceptable | PeerNotResponding | ChildSaFailed
            | HoldTimerExpired | BadPeerAs | PrefixLimit => Severity::Error,
            InvalidKe | Retransmit | BgpNotification | AdminShutdown | IkeSaDeleted
            | ChildSaDeleted => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

/// Values the line carried, as the `gateway_events` columns hold them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GatewayCaptures {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    /// `ike` or `child`: which SA a proposal or traffic-selector failure is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sa: Option<String>,
    /// `sent` (this gateway sent the notify / refused the peer) or `received`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposals: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dh_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spi_in: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spi_out: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_asn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One gateway log line, classified.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gateway {
    pub daemon: Option<Daemon>,
    /// The host the line came from (syslog HOSTNAME), when the line or envelope named it.
    pub host: Option<String>,
    pub kind: GatewayKind,
    pub severity: Severity,
    /// The other end: the IKE peer (for a tunnel to AWS, the tunnel's outside IP) or the BGP
    /// neighbour (AWS's inside address, 169.254.x.y).
    pub peer_ip: Option<String>,
    pub local_ip: Option<String>,
    /// The IKE_SA's (connection's) name and unique id (`<aws-1|7>` / `aws-1[7]`), Libreswan's
    /// connection name and state number.
    pub ike_sa: Option<String>,
    pub ike_sa_id: Option<u64>,
    pub child_sa: Option<String>,
    pub child_sa_id: Option<u64>,
    /// BIRD's protocol name (`aws_t1: State changed to up`).
    pub session: Option<String>,
    /// The daemon's message, its own prefix removed.
    pub details: String,
    pub captures: GatewayCaptures,
}

impl Gateway {
    pub fn daemon_name(&self) -> &'static str {
        self.daemon.unwrap_or(Daemon::Unknown).as_str()
    }

    /// Stores a template's holes in their columns (a value that does not fit its type is left
    /// out; the template matcher already checked the types).
    fn fill(&mut self, filled: &Filled<'_>) {
        let num = |v: &str| v.parse::<u64>().ok();
        let s = |v: &str| Some(v.trim().to_owned());
        let c = &mut self.captures;
        for &(slot, v) in filled {
            match slot {
                Slot::PeerIp => self.peer_ip = s(v),
                Slot::LocalIp => self.local_ip = s(v),
                Slot::PeerId => c.peer_id = s(v),
                Slot::LocalId => c.local_id = s(v),
                Slot::IkeSa => self.ike_sa = s(v),
                Slot::IkeSaId => self.ike_sa_id = num(v),
                Slot::ChildSa => self.child_sa = s(v),
                Slot::ChildSaId => self.child_sa_id = num(v),
                Slot::Notify => c.notify = s(v),
                Slot::Proposals => c.proposals = s(v),
                Slot::DhGroup => c.dh_group = s(v),
                Slot::RequestedGroup => c.requested_group = s(v),
                Slot::RetryCount => c.retry_count = num(v),
                Slot::SpiIn => c.spi_in = s(v),
                Slot::SpiOut => c.spi_out = s(v),
                Slot::BytesIn => c.bytes_in = num(v),
                Slot::BytesOut => c.bytes_out = num(v),
                Slot::LocalTs => c.local_ts = s(v),
                Slot::RemoteTs => c.remote_ts = s(v),
                Slot::FromState => c.from_state = s(v),
                Slot::ToState => c.to_state = s(v),
                Slot::PeerAsn => c.peer_asn = num(v),
                Slot::ExpectedAsn => c.expected_asn = num(v),
                Slot::ErrorCode => c.error_code = num(v),
                Slot::ErrorSubcode => c.error_subcode = num(v),
                Slot::PrefixCount => c.prefix_count = num(v),
                Slot::PrefixMax => c.prefix_limit = num(v),
                Slot::Reason => c.reason = s(v),
                Slot::Session => self.session = s(v),
                Slot::Direction => c.direction = s(v),
                Slot::Sa => c.sa = s(v),
                Slot::Skip => {}
            }
        }
    }
}

/// One catalogue entry: the kind a template means and values it sets by itself.
pub(crate) struct Entry {
    pub kind: GatewayKind,
    pub template: &'static str,
    pub set: &'static [(Slot, &'static str)],
}

/// Shorthand for catalogue tables.
pub(crate) const fn entry(
    kind: GatewayKind,
    template: &'static str,
    set: &'static [(Slot, &'static str)],
) -> Entry {
    Entry {
        kind,
        template,
        set,
    }
}

/// Classifies `message` with the first entry of `catalogue` that matches it (`Unknown` when
/// none does), filling `g`.
pub(crate) fn classify(catalogue: &[Entry], message: &str, g: &mut Gateway) {
    for e in catalogue {
        if let Some(filled) = template::matches(e.template, message) {
            g.kind = e.kind;
            g.fill(&filled);
            let set: Filled<'_> = e.set.to_vec();
            g.fill(&set);
            return;
        }
    }
    g.kind = GatewayKind::Unknown;
}

/// The severity of a classified line: the kind's own, raised by the daemon's level, and for a
/// BGP state change, an error when a session leaves Established.
fn severity(g: &Gateway, level: Option<Severity>) -> Severity {
    let mut s = g.kind.base_severity();
    if g.kind == GatewayKind::BgpStateChange {
        let from_up =
            g.captures.from_state.as_deref().is_some_and(|f| {
                f.eq_ignore_ascii_case("established") || f.eq_ignore_ascii_case("up")
            });
        if from_up {
            s = Severity::Error;
        }
    }
    level.map_or(s, |l| s.max(l))
}

/// The kind a BGP NOTIFICATION stands for (RFC 4271 §4.5, RFC 4486): hold timer expiry (4),
/// a bad peer AS in the OPEN (2/2), the peer's prefix limit (6/1) and an administrative
/// shutdown or reset (6/2, 6/4) get their own kinds; any other code stays a notification.
pub(crate) fn notification_kind(code: Option<u64>, subcode: Option<u64>) -> GatewayKind {
    match (code, subcode) {
        (Some(4), _) => GatewayKind::HoldTimerExpired,
        (Some(2), Some(2)) => GatewayKind::BadPeerAs,
        (Some(6), Some(1)) => GatewayKind::PrefixLimit,
        (Some(6), Some(2 | 4)) => GatewayKind::AdminShutdown,
        _ => GatewayKind::BgpNotification,
    }
}

/// What the envelope (a syslog header) already said about a line.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hint<'a> {
    /// The syslog APP-NAME, when a syslog envelope carried the line.
    pub tag: Option<&'a str>,
    pub host: Option<&'a str>,
    /// Accept lines whose writer is not recognised (`--format gateway`).
    pub any: bool,
}

/// A classified gateway line and the time it carried (if any).
pub(crate) struct Line {
    pub ts: Option<i64>,
    pub body: Body,
}

/// What a gateway line holds: a log message, or SA counters (`swanctl --list-sas --raw`).
pub(crate) enum Body {
    Message(Box<Gateway>),
    Counters(Vec<swanctl::SaCounters>),
}

/// Recognises and classifies one line. `None`: not a gateway line (only without `hint.any`).
pub(crate) fn parse(line: &str, hint: Hint<'_>, year: Option<i32>) -> Option<Line> {
    let framed = frame(line, hint, year)?;
    if framed.daemon == Some(Daemon::Strongswan)
        && let Some(sas) = swanctl::parse(framed.body)
    {
        return Some(Line {
            ts: framed.ts,
            body: Body::Counters(sas),
        });
    }
    let mut g = Gateway {
        daemon: framed.daemon,
        host: framed.host.map(str::to_owned),
        ..Gateway::default()
    };
    let level = match framed.daemon {
        Some(Daemon::Strongswan) => charon::parse(framed.body, &mut g),
        Some(Daemon::Libreswan) => pluto::parse(framed.body, &mut g),
        Some(Daemon::Frr) => frr::parse(framed.body, &mut g),
        Some(Daemon::Bird) => bird::parse(framed.body, &mut g),
        Some(Daemon::Unknown) | None => {
            g.details = framed.body.trim().to_owned();
            None
        }
    };
    g.severity = severity(&g, level);
    Some(Line {
        ts: framed.ts,
        body: Body::Message(Box::new(g)),
    })
}

/// `tag:` or `tag[pid]:`: the tag.
fn tag_word(word: &str) -> Option<&str> {
    let word = word.strip_suffix(':')?;
    let name = match word.find('[') {
        Some(at) if word.ends_with(']') => &word[..at],
        Some(_) => return None,
        None => word,
    };
    (!name.is_empty()).then_some(name)
}

/// A line split into its time, host, writer and the daemon's own text.
struct Framed<'a> {
    ts: Option<i64>,
    host: Option<&'a str>,
    daemon: Option<Daemon>,
    body: &'a str,
}

/// Splits the shapes gateways write:
/// - `<time> NN[GRP] …` (charon filelog), `NN[GRP] …` (charon's syslog body);
/// - `YYYY/MM/DD hh:mm:ss[.fff] BGP: …` (FRR log file);
/// - `YYYY-MM-DD hh:mm:ss[.fff] <LEVEL> …` (BIRD log file);
/// - `<time>: …` (pluto's log file);
/// - `<time> <host> <tag>[pid]: …` (a syslog file), `<tag>[pid]: …`;
/// - with a syslog envelope's tag: the body as it is.
fn frame<'a>(line: &'a str, hint: Hint<'a>, year: Option<i32>) -> Option<Framed<'a>> {
    let line = line.trim();
    if let Some(daemon) = hint.tag.and_then(Daemon::of_tag) {
        // The envelope named the writer; a file-style time may still lead the body.
        let (ts, body) = match clock::prefix(line, year) {
            Some((len, ts)) => (Some(ts), line[len..].trim_start()),
            None => (None, line),
        };
        return Some(Framed {
            ts,
            host: hint.host,
            daemon: Some(daemon),
            body,
        });
    }
    let (ts, rest, time_style) = match clock::prefix(line, year) {
        Some((len, ts)) => (Some(ts), &line[len..], clock::style(line)),
        None => (None, line, clock::Style::None),
    };
    // `<time>: …`: pluto's own log file (`logfile=`, `logtime=yes`), the only writer that puts
    // a colon straight after the time.
    if ts.is_some()
        && let Some(body) = rest.strip_prefix(": ")
    {
        return Some(Framed {
            ts,
            host: hint.host,
            daemon: Some(Daemon::Libreswan),
            body,
        });
    }
    let rest = rest.trim_start();
    if charon::has_prefix(rest) || swanctl::has_prefix(rest) {
        return Some(Framed {
            ts,
            host: hint.host,
            daemon: Some(Daemon::Strongswan),
            body: rest,
        });
    }
    if time_style == clock::Style::Slashes && frr::has_prefix(rest) {
        return Some(Framed {
            ts,
            host: hint.host,
            daemon: Some(Daemon::Frr),
            body: rest,
        });
    }
    if bird::has_level(rest) {
        return Some(Framed {
            ts,
            host: hint.host,
            daemon: Some(Daemon::Bird),
            body: rest,
        });
    }
    if pluto::has_prefix(rest) {
        return Some(Framed {
            ts,
            host: hint.host,
            daemon: Some(Daemon::Libreswan),
            body: rest,
        });
    }
    // `host tag[pid]: body` or `tag[pid]: body`, with a tag that names a gateway daemon. Only
    // the first two words are looked at, so a line that is not a gateway's costs little.
    let mut host = hint.host;
    let (first, after_first) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut found = tag_word(first).map(|name| (name, after_first));
    if found.is_none_or(|(name, _)| Daemon::of_tag(name).is_none()) {
        let (second, after_second) = after_first.split_once(' ').unwrap_or((after_first, ""));
        if let Some(name) = tag_word(second)
            && Daemon::of_tag(name).is_some()
        {
            host = Some(first);
            found = Some((name, after_second));
        }
    }
    if let Some((name, body)) = found
        && let Some(daemon) = Daemon::of_tag(name)
    {
        return Some(Framed {
            ts,
            host,
            daemon: Some(daemon),
            body: body.trim_start(),
        });
    }
    hint.any.then_some(Framed {
        ts,
        host,
        daemon: None,
        body: rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_template_is_well_formed_and_kinds_round_trip() {
        for table in [
            charon::CATALOGUE,
            pluto::CATALOGUE,
            frr::CATALOGUE,
            bird::CATALOGUE,
        ] {
            for e in table {
                template::check(e.template).unwrap();
            }
        }
        for k in GatewayKind::ALL {
            assert_eq!(GatewayKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn shapes() {
        let p = |l: &str| parse(l, Hint::default(), Some(2026));
        let message = |l: Line| match l.body {
            Body::Message(g) => (l.ts, g),
            Body::Counters(_) => panic!("counters"),
        };
        let (ts, c) = message(
            p("Dec  4 04:50:11 09[IKE] <aws-1|1> initiating IKE_SA aws-1[1] to 192.0.2.10")
                .unwrap(),
        );
        assert_eq!(c.daemon, Some(Daemon::Strongswan));
        assert_eq!(c.kind, GatewayKind::IkeSaInitiating);
        assert_eq!(c.peer_ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(ts, Some(1796359811000));
        let (_, s) = message(
            p("Dec  4 04:50:11 cgw1 charon: 09[IKE] <aws-1|1> sending DPD request").unwrap(),
        );
        assert_eq!(s.host.as_deref(), Some("cgw1"));
        assert_eq!(s.ike_sa_id, Some(1));
        assert!(p("2026-12-04T04:50:11Z some other line").is_none());
        assert!(p("hello").is_none());
        let (_, any) = message(
            parse(
                "hello",
                Hint {
                    any: true,
                    ..Hint::default()
                },
                None,
            )
            .unwrap(),
        );
        assert_eq!(any.kind, GatewayKind::Unknown);
        assert_eq!(any.daemon, None);
        let counters =
            p("2026-12-04T04:50:11Z list-sa event {t {remote-host=192.0.2.10}}").unwrap();
        assert!(matches!(counters.body, Body::Counters(ref c) if c.len() == 1));
    }
}

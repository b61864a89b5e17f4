//! The message catalogue: the English `details` texts AWS writes into tunnel activity and BGP
//! logs (reference §5), matched by nom parsers into a stable [`MessageKind`] and the values the
//! text carries ([`Captures`]).
//!
//! Invariants:
//! - Matching never fails: a text that matches no entry is [`MessageKind::Unknown`].
//! - [`classify`] wants the whole text to be the message (surrounding blanks and one final `.`
//!   forgiven); [`find_in_text`] looks for a message anywhere inside a longer line, for the
//!   heuristic text parser.
//! - BGP state changes and notifications parse any state names and any `code/subcode`, not only
//!   the documented ones, and `DENIED due to: …` any reason.
//! - The " - " separator is matched as `\s*[-–•]\s*` (the doc's markdown shows it as a bullet).

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_till1, take_while1};
use nom::character::complete::{char, digit1, multispace0, one_of, space0, space1};
use nom::combinator::{opt, rest, value};
use nom::sequence::preceded;
use nom::{IResult, Parser};
use serde::{Deserialize, Serialize};

use crate::event::{PhaseState, Severity};

/// The `message_kind` column: stable snake_case names users write in SQL and alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    DpdPeerDead,
    PskInvalid,
    NoProposalMatch,
    NoProposalChosen,
    Phase2SaDeleted,
    IkeSaDeleted,
    DpdTimeout,
    ChildRekeyCollision,
    RedundantSaDeleted,
    Phase2Failed,
    TsUnacceptable,
    AuthFailed,
    PskMismatch,
    Phase1Timeout,
    CreateChildSaRequestReceived,
    CreateChildSaResponseSent,
    CreateChildSaRequestSent,
    CreateChildSaResponseReceived,
    BgpStateChange,
    PrefixLimitWarning,
    PrefixLimitExceeded,
    BgpNotification,
    HoldTimerExpired,
    BadOpen,
    OpenReceived,
    OpenSent,
    ConnectInitiated,
    EndOfRibSent,
    UpdateReceived,
    RouteAdvertised,
    RouteUpdated,
    RouteWithdrawn,
    RouteDenied,
    #[default]
    Unknown,
}

impl MessageKind {
    /// Every kind, in catalogue order.
    pub const ALL: [MessageKind; 34] = [
        MessageKind::DpdPeerDead,
        MessageKind::PskInvalid,
        MessageKind::NoProposalMatch,
        MessageKind::NoProposalChosen,
        MessageKind::Phase2SaDeleted,
        MessageKind::IkeSaDeleted,
        MessageKind::DpdTimeout,
        MessageKind::ChildRekeyCollision,
        MessageKind::RedundantSaDeleted,
        MessageKind::Phase2Failed,
        MessageKind::TsUnacceptable,
        MessageKind::AuthFailed,
        MessageKind::PskMismatch,
        MessageKind::Phase1Timeout,
        MessageKind::CreateChildSaRequestReceived,
        MessageKind::CreateChildSaResponseSent,
        MessageKind::CreateChildSaRequestSent,
        MessageKind::CreateChildSaResponseReceived,
        MessageKind::BgpStateChange,
        MessageKind::PrefixLimitWarning,
        MessageKind::PrefixLimitExceeded,
        MessageKind::BgpNotification,
        MessageKind::HoldTimerExpired,
        MessageKind::BadOpen,
        MessageKind::OpenReceived,
        MessageKind::OpenSent,
        MessageKind::ConnectInitiated,
        MessageKind::EndOfRibSent,
        MessageKind::UpdateReceived,
        MessageKind::RouteAdvertised,
        MessageKind::RouteUpdated,
        MessageKind::RouteWithdrawn,
        MessageKind::RouteDenied,
        MessageKind::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        use MessageKind::*;
        match self {
            DpdPeerDead => "dpd_peer_dead",
            PskInvalid => "psk_invalid",
            NoProposalMatch => "no_proposal_match",
            NoProposalChosen => "no_proposal_chosen",
            Phase2SaDeleted => "phase2_sa_deleted",
            IkeSaDeleted => "ike_sa_deleted",
            DpdTimeout => "dpd_timeout",
            ChildRekeyCollision => "child_rekey_collision",
            RedundantSaDeleted => "redundant_sa_deleted",
            Phase2Failed => "phase2_failed",
            TsUnacceptable => "ts_unacceptable",
            AuthFailed => "auth_failed",
            PskMismatch => "psk_mismatch",
            Phase1Timeout => "phase1_timeout",
            CreateChildSaRequestReceived => "create_child_sa_request_received",
            CreateChildSaResponseSent => "create_child_sa_response_sent",
            CreateChildSaRequestSent => "create_child_sa_request_sent",
            CreateChildSaResponseReceived => "create_child_sa_response_received",
            BgpStateChange => "bgp_state_change",
            PrefixLimitWarning => "prefix_limit_warning",
            PrefixLimitExceeded => "prefix_limit_exceeded",
            BgpNotification => "bgp_notification",
            HoldTimerExpired => "hold_timer_expired",
            BadOpen => "bad_open",
            OpenReceived => "open_received",
            OpenSent => "open_sent",
            ConnectInitiated => "connect_initiated",
            EndOfRibSent => "end_of_rib_sent",
            UpdateReceived => "update_received",
            RouteAdvertised => "route_advertised",
            RouteUpdated => "route_updated",
            RouteWithdrawn => "route_withdrawn",
            RouteDenied => "route_denied",
            Unknown => "unknown",
        }
    }

    /// True for the kinds that only BGP logs carry.
    pub fn is_bgp(self) -> bool {
        use MessageKind::*;
        matches!(
            self,
            BgpStateChange
                | PrefixLimitWarning
                | PrefixLimitExceeded
                | BgpNotification
                | HoldTimerExpired
                | BadOpen
                | OpenReceived
                | OpenSent
                | ConnectInitiated
                | EndOfRibSent
                | UpdateReceived
                | RouteAdvertised
                | RouteUpdated
                | RouteWithdrawn
                | RouteDenied
        )
    }
}

/// Direction of a BGP notification, seen from the AWS side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// Values a message text carries. Each kind fills the columns DESIGN §3 lists for it and leaves
/// the others `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Captures {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgw_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbor_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_asn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_reason: Option<String>,
}

/// A classified message: kind, severity and captured values.
///
/// Captures are boxed and absent when empty: most records carry none or few, and events move
/// through the pipeline by value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub kind: MessageKind,
    pub severity: Severity,
    captures: Option<Box<Captures>>,
}

static NO_CAPTURES: Captures = Captures {
    spi: None,
    retry_count: None,
    cgw_ip: None,
    request_id: None,
    from_state: None,
    to_state: None,
    neighbor_ip: None,
    prefix_count: None,
    prefix_limit: None,
    direction: None,
    error_code: None,
    error_subcode: None,
    reason: None,
    peer_asn: None,
    expected_asn: None,
    hold_time: None,
    router_id: None,
    as_path: None,
    denied_reason: None,
};

impl Message {
    /// A message of `kind` whose severity is judged in `ctx`.
    pub fn new(kind: MessageKind, captures: Captures, ctx: Context<'_>) -> Message {
        let severity = severity(kind, &captures, ctx);
        Message {
            kind,
            severity,
            captures: (captures != NO_CAPTURES).then(|| Box::new(captures)),
        }
    }

    /// The values the text carried (all `None` when it carried none).
    pub fn captures(&self) -> &Captures {
        self.captures.as_deref().unwrap_or(&NO_CAPTURES)
    }
}

type Matched = (MessageKind, Captures);

fn only(kind: MessageKind) -> Matched {
    (kind, Captures::default())
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/// `\s*[-–•]\s*`
fn sep(i: &str) -> IResult<&str, ()> {
    value((), (multispace0, one_of("-–•"), multispace0)).parse(i)
}

/// A value token: up to whitespace or punctuation that ends a value in running text; a final
/// `.` (end of sentence) is left unconsumed.
fn token(i: &str) -> IResult<&str, &str> {
    let (_, t) = take_till1(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ')' | '"' | '\'' | ';' | '}' | ']')
    })
    .parse(i)?;
    let t = t.trim_end_matches('.');
    if t.is_empty() {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::TakeTill1,
        )));
    }
    Ok((&i[t.len()..], t))
}

fn number<T: std::str::FromStr>(i: &str) -> IResult<&str, T> {
    digit1.map_res(|d: &str| d.parse::<T>()).parse(i)
}

fn word(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_').parse(i)
}

fn neighbor(i: &str) -> IResult<&str, String> {
    preceded((tag("neighbor"), space1), token)
        .map(str::to_owned)
        .parse(i)
}

// ---------------------------------------------------------------------------------------------
// IKE messages (reference §5.1–5.3)

fn aws_tunnel(i: &str) -> IResult<&str, Matched> {
    use MessageKind::*;
    let (i, _) = tag("AWS tunnel ").parse(i)?;
    alt((
        preceded(
            (tag("received DELETE for Phase 2 SA with SPI:"), space0),
            token,
        )
        .map(|spi| {
            (
                Phase2SaDeleted,
                Captures {
                    spi: Some(spi.to_owned()),
                    ..Default::default()
                },
            )
        }),
        value(
            only(IkeSaDeleted),
            tag("received DELETE for IKE_SA from CGW"),
        ),
        (
            tag("DPD timed out after "),
            number::<u32>,
            space1,
            alt((
                tag("retransmits"),
                tag("retransmissions"),
                tag("retransmit"),
            )),
        )
            .map(|(_, n, _, _)| {
                (
                    DpdTimeout,
                    Captures {
                        retry_count: Some(n),
                        ..Default::default()
                    },
                )
            }),
        value(
            only(ChildRekeyCollision),
            tag("detected a (CHILD_REKEY) collision as CHILD_DELETE"),
        ),
        value(
            only(RedundantSaDeleted),
            tag("(CHILD_SA) redundant SA is being deleted due to detected collision"),
        ),
        value(
            only(Phase2Failed),
            tag("Phase 2 was unable to establish while keeping Phase 1"),
        ),
        value(
            only(AuthFailed),
            tag("is sending AUTHENTICATION_FAILED as the response"),
        ),
        preceded(
            (tag("detected a pre-shared key mismatch with cgw:"), space0),
            token,
        )
        .map(|ip| cgw(PskMismatch, ip)),
        preceded(
            (
                tag("Timeout: deleting un-established Phase 1 IKE_SA with cgw:"),
                space0,
            ),
            token,
        )
        .map(|ip| cgw(Phase1Timeout, ip)),
        value(
            only(PskInvalid),
            tag("payload decryption was unsuccessful due to invalid Pre-shared Key"),
        ),
        create_child_sa,
    ))
    .parse(i)
}

fn cgw(kind: MessageKind, ip: &str) -> Matched {
    (
        kind,
        Captures {
            cgw_ip: Some(ip.to_owned()),
            ..Default::default()
        },
    )
}

fn create_child_sa(i: &str) -> IResult<&str, Matched> {
    use MessageKind::*;
    (
        alt((
            value(CreateChildSaRequestReceived, tag("processed request")),
            value(CreateChildSaResponseSent, tag("is sending response")),
            value(CreateChildSaRequestSent, tag("is sending request")),
            value(CreateChildSaResponseReceived, tag("processed response")),
        )),
        (space0, tag("(id="), space0),
        number::<u64>,
        (space0, char(')'), space1, tag("for CREATE_CHILD_SA")),
    )
        .map(|(kind, _, id, _)| {
            (
                kind,
                Captures {
                    request_id: Some(id),
                    ..Default::default()
                },
            )
        })
        .parse(i)
}

fn other_ike(i: &str) -> IResult<&str, Matched> {
    use MessageKind::*;
    alt((
        value(
            only(DpdPeerDead),
            (
                tag("Peer is not responsive"),
                sep,
                tag("Declaring peer dead"),
            ),
        ),
        value(
            only(NoProposalChosen),
            (
                tag("No Proposal Match Found. Notifying with "),
                one_of("\"“”'"),
                tag("No proposal chosen"),
                one_of("\"“”'"),
            ),
        ),
        value(only(NoProposalMatch), tag("No Proposal Match Found by AWS")),
        value(
            only(TsUnacceptable),
            tag("AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder"),
        ),
    ))
    .parse(i)
}

// ---------------------------------------------------------------------------------------------
// BGP messages (reference §5.4–5.5)

fn aws_side_peer(i: &str) -> IResult<&str, Matched> {
    let (i, _) = tag("AWS-side peer ").parse(i)?;
    alt((
        state_change,
        prefix_limit,
        notification,
        hold_timer,
        bad_open,
        open_message,
        connect_initiated,
        end_of_rib,
        update_received,
    ))
    .parse(i)
}

/// `… changed from X to Y [with neighbor IP]`, the tail shared by the documented and any other
/// state-change wording.
fn changed_from(i: &str) -> IResult<&str, Matched> {
    (
        tag("changed from "),
        word,
        space1,
        tag("to "),
        word,
        opt(preceded((space1, tag("with"), space1), neighbor)),
    )
        .map(|(_, from, _, _, to, nb)| {
            (
                MessageKind::BgpStateChange,
                Captures {
                    from_state: Some(from.to_owned()),
                    to_state: Some(to.to_owned()),
                    neighbor_ip: nb,
                    ..Default::default()
                },
            )
        })
        .parse(i)
}

fn state_change(i: &str) -> IResult<&str, Matched> {
    preceded(tag("BGP session state has "), changed_from).parse(i)
}

fn prefix_limit(i: &str) -> IResult<&str, Matched> {
    (
        alt((
            value(
                MessageKind::PrefixLimitWarning,
                tag("is reporting a maximum prefix limit warning"),
            ),
            value(
                MessageKind::PrefixLimitExceeded,
                tag("detected the maximum prefix limit was exceeded"),
            ),
        )),
        sep,
        tag("received "),
        number::<u64>,
        (space1, tag("prefixes from"), space1),
        neighbor,
        (space0, char(','), space0, tag("limit is"), space1),
        number::<u64>,
    )
        .map(|(kind, _, _, count, _, nb, _, limit)| {
            (
                kind,
                Captures {
                    prefix_count: Some(count),
                    prefix_limit: Some(limit),
                    neighbor_ip: Some(nb),
                    ..Default::default()
                },
            )
        })
        .parse(i)
}

fn notification(i: &str) -> IResult<&str, Matched> {
    (
        alt((
            value(
                Direction::Sent,
                alt((tag("sent a notification "), tag("sent notification "))),
            ),
            value(
                Direction::Received,
                alt((
                    tag("received notification "),
                    tag("received a notification "),
                )),
            ),
        )),
        number::<u16>,
        char('/'),
        number::<u16>,
        opt(preceded(
            (space1, char('(')),
            (take_till(|c| c == ')'), char(')')),
        )),
        (space1, alt((tag("to"), tag("from"))), space1),
        neighbor,
    )
        .map(|(direction, code, _, sub, reason, _, nb)| {
            (
                MessageKind::BgpNotification,
                Captures {
                    direction: Some(direction),
                    error_code: Some(code),
                    error_subcode: Some(sub),
                    reason: reason.map(|(r, _)| r.trim().to_owned()),
                    neighbor_ip: Some(nb),
                    ..Default::default()
                },
            )
        })
        .parse(i)
}

fn nb_only(kind: MessageKind, nb: String) -> Matched {
    (
        kind,
        Captures {
            neighbor_ip: Some(nb),
            ..Default::default()
        },
    )
}

fn hold_timer(i: &str) -> IResult<&str, Matched> {
    preceded(tag("sent a Hold Timer Expired notification to "), neighbor)
        .map(|nb| nb_only(MessageKind::HoldTimerExpired, nb))
        .parse(i)
}

fn bad_open(i: &str) -> IResult<&str, Matched> {
    (
        tag("detected a bad OPEN message from "),
        neighbor,
        sep,
        tag("remote AS is "),
        number::<u64>,
        (space0, char(','), space0, tag("expected"), space1),
        number::<u64>,
    )
        .map(|(_, nb, _, _, asn, _, expected)| {
            (
                MessageKind::BadOpen,
                Captures {
                    neighbor_ip: Some(nb),
                    peer_asn: Some(asn),
                    expected_asn: Some(expected),
                    ..Default::default()
                },
            )
        })
        .parse(i)
}

fn open_message(i: &str) -> IResult<&str, Matched> {
    (
        alt((
            value(
                MessageKind::OpenReceived,
                tag("received an OPEN message from "),
            ),
            value(MessageKind::OpenSent, tag("sent an OPEN message to ")),
        )),
        neighbor,
        sep,
        (tag("version "), digit1, char(','), space0, tag("AS ")),
        number::<u64>,
        (char(','), space0, tag("holdtime "), opt(tag("(seconds): "))),
        number::<u32>,
        (char(','), space0, tag("router-id "), opt(tag("{id: "))),
        token,
        opt(take_while1(|c| c == '}')),
    )
        .map(|(kind, nb, _, _, asn, _, hold, _, rid, _)| {
            (
                kind,
                Captures {
                    neighbor_ip: Some(nb),
                    peer_asn: Some(asn),
                    hold_time: Some(hold),
                    router_id: Some(rid.to_owned()),
                    ..Default::default()
                },
            )
        })
        .parse(i)
}

fn connect_initiated(i: &str) -> IResult<&str, Matched> {
    preceded(
        tag("is initiating a connection (via Connect) to "),
        neighbor,
    )
    .map(|nb| nb_only(MessageKind::ConnectInitiated, nb))
    .parse(i)
}

fn end_of_rib(i: &str) -> IResult<&str, Matched> {
    preceded(tag("sent an End-of-RIB message to "), neighbor)
        .map(|nb| nb_only(MessageKind::EndOfRibSent, nb))
        .parse(i)
}

fn update_received(i: &str) -> IResult<&str, Matched> {
    (
        tag("received update with attributes from "),
        neighbor,
        sep,
        tag("AS path:"),
        space0,
        rest,
    )
        .map(|(_, nb, _, _, _, path)| {
            (
                MessageKind::UpdateReceived,
                Captures {
                    neighbor_ip: Some(nb),
                    as_path: Some(normalise_as_path(path)),
                    ..Default::default()
                },
            )
        })
        .parse(i)
}

/// A space-separated AS path with runs of blanks collapsed (a trailing `"` or `.` of running
/// text dropped).
fn normalise_as_path(path: &str) -> String {
    let path = path.trim().trim_end_matches(['"', '.', '}']);
    path.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn denied(i: &str) -> IResult<&str, Matched> {
    preceded((tag("DENIED due to:"), space0), rest)
        .map(|reason: &str| {
            (
                MessageKind::RouteDenied,
                Captures {
                    denied_reason: Some(reason.trim().to_owned()),
                    ..Default::default()
                },
            )
        })
        .parse(i)
}

fn any_message(i: &str) -> IResult<&str, Matched> {
    alt((aws_tunnel, aws_side_peer, other_ike, denied)).parse(i)
}

// ---------------------------------------------------------------------------------------------
// Entry points

/// Classifies a complete `details` text. Blanks around it and one final `.` are forgiven; any
/// other trailing text makes it `unknown` (a longer message is a different message), except for
/// state changes, which match `changed from X to Y` anywhere.
pub fn classify(details: &str) -> (MessageKind, Captures) {
    let text = details.trim();
    let text = text.strip_suffix('.').unwrap_or(text).trim_end();
    if let Ok((rest, m)) = any_message(text)
        && rest.trim().is_empty()
    {
        return m;
    }
    if let Some(at) = memchr::memmem::find(text.as_bytes(), b"changed from ")
        && let Ok((rest, m)) = changed_from(&text[at..])
        && rest.trim().is_empty()
    {
        return m;
    }
    only(MessageKind::Unknown)
}

/// Anchors where a catalogue message can start inside free text.
const ANCHORS: [&str; 6] = [
    "AWS tunnel ",
    "AWS-side peer ",
    "AWS: Traffic Selector",
    "Peer is not responsive",
    "No Proposal Match Found",
    "DENIED due to:",
];

/// Looks for a catalogue message anywhere in `line` (used on text records of unknown layout).
/// Returns the byte offset where the message starts, with its kind and captures; trailing text
/// after the message is allowed.
pub fn find_in_text(line: &str) -> Option<(usize, MessageKind, Captures)> {
    let bytes = line.as_bytes();
    let mut starts: Vec<usize> = ANCHORS
        .iter()
        .filter_map(|a| memchr::memmem::find(bytes, a.as_bytes()))
        .collect();
    starts.sort_unstable();
    for at in starts {
        if let Ok((_, (kind, captures))) = any_message(&line[at..]) {
            return Some((at, kind, captures));
        }
    }
    let at = memchr::memmem::find(bytes, b"changed from ")?;
    let (_, (kind, captures)) = changed_from(&line[at..]).ok()?;
    // Include the words before "changed from" that belong to the sentence.
    let start = memchr::memmem::rfind(&bytes[..at], b"AWS-side peer").unwrap_or(at);
    Some((start, kind, captures))
}

/// The RouteStatus message for a `status` and optional `details` (present only on error).
pub fn route_message(status: Option<&str>, details: Option<&str>) -> (MessageKind, Captures) {
    if let Some(d) = details.map(str::trim).filter(|d| !d.is_empty()) {
        return match denied(d) {
            Ok((_, m)) => m,
            Err(_) => classify(d),
        };
    }
    let kind = match status {
        Some(s) if s.eq_ignore_ascii_case("ADVERTISED") => MessageKind::RouteAdvertised,
        Some(s) if s.eq_ignore_ascii_case("UPDATED") => MessageKind::RouteUpdated,
        Some(s) if s.eq_ignore_ascii_case("WITHDRAWN") => MessageKind::RouteWithdrawn,
        _ => MessageKind::Unknown,
    };
    only(kind)
}

/// What the record around the message said about the tunnel, for severity rules that depend
/// on it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub ike_phase1_state: Option<PhaseState>,
    pub ike_phase2_state: Option<PhaseState>,
    /// BGP `status` (`UP`, `DOWN`, …).
    pub bgp_status: Option<&'a str>,
}

/// Severity of a message in its context.
///
/// A DELETE for the IKE SA or a phase 2 SA is routine rekey housekeeping unless the matching
/// phase is down (reference §2.4). A BGP session leaving Established is an error; a benign
/// collision or informational negotiation step is info; an unknown message is a warning when
/// the record says the tunnel or session is down.
pub fn severity(kind: MessageKind, captures: &Captures, ctx: Context<'_>) -> Severity {
    use MessageKind::*;
    use Severity::*;
    let down = |s: Option<PhaseState>| s == Some(PhaseState::Down);
    match kind {
        IkeSaDeleted => {
            if down(ctx.ike_phase1_state) {
                Error
            } else {
                Info
            }
        }
        Phase2SaDeleted => {
            if down(ctx.ike_phase2_state) {
                Error
            } else {
                Info
            }
        }
        DpdPeerDead | PskInvalid | NoProposalMatch | NoProposalChosen | DpdTimeout
        | Phase2Failed | TsUnacceptable | AuthFailed | PskMismatch | Phase1Timeout
        | PrefixLimitExceeded | HoldTimerExpired | BadOpen => Error,
        BgpNotification => {
            // 6/7 Connection Collision Resolution closes one of two parallel connections.
            if captures.error_code == Some(6) && captures.error_subcode == Some(7) {
                Info
            } else {
                Error
            }
        }
        BgpStateChange => {
            let from = captures.from_state.as_deref().unwrap_or("");
            let to = captures.to_state.as_deref().unwrap_or("");
            if from.eq_ignore_ascii_case("Established") && !to.eq_ignore_ascii_case("Established") {
                Error
            } else if to.eq_ignore_ascii_case("Active") {
                Warning
            } else {
                Info
            }
        }
        ChildRekeyCollision | PrefixLimitWarning | RouteDenied => Warning,
        RedundantSaDeleted
        | CreateChildSaRequestReceived
        | CreateChildSaResponseSent
        | CreateChildSaRequestSent
        | CreateChildSaResponseReceived
        | OpenReceived
        | OpenSent
        | ConnectInitiated
        | EndOfRibSent
        | UpdateReceived
        | RouteAdvertised
        | RouteUpdated
        | RouteWithdrawn => Info,
        Unknown => {
            let bgp_down = ctx
                .bgp_status
                .is_some_and(|s| s.eq_ignore_ascii_case("DOWN"));
            if down(ctx.ike_phase1_state) || down(ctx.ike_phase2_state) || bgp_down {
                Warning
            } else {
                Info
            }
        }
    }
}

/// Classifies `details` and attaches its severity in `ctx`.
pub fn message(details: Option<&str>, ctx: Context<'_>) -> Message {
    let (kind, captures) = match details {
        Some(d) => classify(d),
        None => only(MessageKind::Unknown),
    };
    Message::new(kind, captures, ctx)
}

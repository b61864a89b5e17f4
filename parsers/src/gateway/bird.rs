//! BIRD 2 (its BGP protocol): its line prefix and its catalogue.
//!
//! In BIRD's own log file a line is `YYYY-MM-DD hh:mm:ss[.fff] <LEVEL> proto: message`; in
//! syslog the tag is `bird` and the body is `proto: message`. The protocol's name is kept as
//! `session`; most of BIRD's lines name no address, so the peer comes from the lines that do
//! (`Connecting to …`, `Incoming connection from …`).

use super::template::Slot::{self, *};
use super::{Entry, Gateway, GatewayKind::*, classify, entry};
use crate::event::Severity;

const SENT: &[(Slot, &str)] = &[(Direction, "sent")];
const RECEIVED: &[(Slot, &str)] = &[(Direction, "received")];

pub(super) const CATALOGUE: &[Entry] = &[
    entry(BgpStateChange, "State changed to {to_state}", &[]),
    entry(
        BgpStateChange,
        "BGP session established",
        &[(ToState, "established")],
    ),
    entry(HoldTimerExpired, "Error: Hold timer expired", SENT),
    entry(HoldTimerExpired, "Received: Hold timer expired", RECEIVED),
    entry(HoldTimerExpired, "Hold timer expired", SENT),
    entry(BadPeerAs, "Error: Bad peer AS: {peer_asn}", SENT),
    entry(BadPeerAs, "Received: Bad peer AS", RECEIVED),
    entry(BadPeerAs, "Received: Bad peer AS: {peer_asn}", RECEIVED),
    entry(AdminShutdown, "Received: Administrative shutdown", RECEIVED),
    entry(
        AdminShutdown,
        "Received: Administrative shutdown: {reason}",
        RECEIVED,
    ),
    entry(
        PrefixLimit,
        // BIRD appends the NOTIFICATION's data: `…reached: 00010100000002`.
        "Received: Maximum number of prefixes reached{*}",
        RECEIVED,
    ),
    entry(
        PrefixLimit,
        "Protocol {session} hits route {reason} limit ({prefix_limit}), action: {_}",
        &[],
    ),
    entry(
        PrefixLimit,
        "Route limit exceeded, shutting down",
        &[(Reason, "route limit exceeded")],
    ),
    entry(BgpNotification, "Received: {reason}", RECEIVED),
    entry(BgpNotification, "Error: {reason}", SENT),
    entry(DaemonStarted, "Started", &[]),
    entry(
        BgpConnect,
        "Connecting to {peer_ip} from local address {local_ip}",
        SENT,
    ),
    entry(
        BgpConnect,
        "Incoming connection from {peer_ip} (port {_}) accepted",
        RECEIVED,
    ),
    entry(
        BgpOpen,
        "Sending OPEN(ver={_},as={_},hold={_},id={_})",
        SENT,
    ),
    entry(BgpOpen, "Got OPEN(as={peer_asn},hold={_},id={_})", RECEIVED),
];

const LEVELS: [(&str, Severity); 11] = [
    ("<INFO> ", Severity::Info),
    ("<WARN> ", Severity::Warning),
    ("<ERR> ", Severity::Error),
    ("<AUTH> ", Severity::Warning),
    ("<FATAL> ", Severity::Error),
    ("<BUG> ", Severity::Error),
    ("<TRACE> ", Severity::Info),
    ("<DEBUG> ", Severity::Info),
    ("<REMOTE> ", Severity::Warning),
    ("<RMT> ", Severity::Warning),
    ("<WARNING> ", Severity::Warning),
];

/// A `<LEVEL> ` tag at the start of `s`.
pub(super) fn has_level(s: &str) -> bool {
    LEVELS.iter().any(|(tag, _)| s.starts_with(tag))
}

pub(super) fn parse(body: &str, g: &mut Gateway) -> Option<Severity> {
    let mut rest = body.trim();
    let mut level = None;
    if let Some((tag, sev)) = LEVELS.iter().find(|(tag, _)| rest.starts_with(tag)) {
        rest = rest[tag.len()..].trim_start();
        level = Some(*sev);
    }
    // `proto: message` (a protocol name is one word; `proto.ipv4:` names its channel).
    if let Some((name, msg)) = rest.split_once(": ")
        && !name.is_empty()
        && !name.contains(' ')
    {
        let proto = name.split('.').next().unwrap_or(name);
        g.session = Some(proto.to_owned());
        rest = msg.trim_start();
    }
    g.details = rest.to_owned();
    classify(CATALOGUE, rest, g);
    // `Started` without a protocol is the daemon's; a protocol's `Started` is routine.
    if g.kind == DaemonStarted && g.session.is_some() {
        g.kind = Unknown;
    }
    if g.kind == BgpStateChange
        && g.captures
            .to_state
            .as_deref()
            .is_some_and(|s| s == "stop" || s == "down")
    {
        level = Some(level.map_or(Severity::Warning, |l| l.max(Severity::Warning)));
    }
    // BIRD's INFO/TRACE levels do not lower a kind's own severity.
    level.filter(|l| *l > Severity::Info)
}

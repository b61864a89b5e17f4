//! FRR's BGP daemon, bgpd (8.x): its line prefix and its catalogue.
//!
//! In FRR's own log file a line is `YYYY/MM/DD hh:mm:ss[.fff] BGP: [XXXXX-XXXXX] message`
//! (the bracket is the message's stable id, sometimes followed by `[EC nnn]`); in syslog the
//! tag is `bgpd` and the body starts at the bracket. With `bgp log-neighbor-changes` (the
//! default) FRR reports every session change as `%ADJCHANGE` and every NOTIFICATION it sends or
//! receives with its code and subcode.

use super::template::Slot::{self, *};
use super::{Entry, Gateway, GatewayKind::*, classify, entry, notification_kind};
use crate::event::Severity;

const UP: &[(Slot, &str)] = &[(FromState, "down"), (ToState, "established")];
const DOWN: &[(Slot, &str)] = &[(FromState, "established"), (ToState, "down")];

pub(super) const CATALOGUE: &[Entry] = &[
    entry(
        BgpStateChange,
        "%ADJCHANGE: neighbor {peer_ip}({_}) in vrf {_} Up",
        UP,
    ),
    entry(
        BgpStateChange,
        "%ADJCHANGE: neighbor {peer_ip} in vrf {_} Up",
        UP,
    ),
    entry(
        BgpStateChange,
        "%ADJCHANGE: neighbor {peer_ip}({_}) in vrf {_} Down {reason}",
        DOWN,
    ),
    entry(
        BgpStateChange,
        "%ADJCHANGE: neighbor {peer_ip} in vrf {_} Down {reason}",
        DOWN,
    ),
    entry(
        BgpNotification,
        "%NOTIFICATION: sent to neighbor {peer_ip} {error_code}/{error_subcode} ({reason}){*}",
        &[(Direction, "sent")],
    ),
    entry(
        BgpNotification,
        "%NOTIFICATION: received from neighbor {peer_ip} {error_code}/{error_subcode} ({reason}){*}",
        &[(Direction, "received")],
    ),
    entry(
        PrefixLimit,
        "%MAXPFXEXCEED: No. of {_} prefix received from {peer_ip}({_}) {prefix_count} exceed, limit {prefix_limit}",
        &[(Reason, "limit exceeded")],
    ),
    entry(
        PrefixLimit,
        "%MAXPFXEXCEED: No. of {_} prefix received from {peer_ip} {prefix_count} exceed, limit {prefix_limit}",
        &[(Reason, "limit exceeded")],
    ),
    entry(
        PrefixLimit,
        "%MAXPFX: No. of {_} prefix received from {peer_ip}({_}) reaches {prefix_count}, max {prefix_limit}",
        &[(Reason, "threshold reached")],
    ),
    entry(
        PrefixLimit,
        "%MAXPFX: No. of {_} prefix received from {peer_ip} reaches {prefix_count}, max {prefix_limit}",
        &[(Reason, "threshold reached")],
    ),
    entry(
        BadPeerAs,
        "{peer_ip} bad OPEN, remote AS is {peer_asn}, expected {expected_asn}",
        &[(Direction, "sent")],
    ),
    entry(
        BadPeerAs,
        "{peer_ip}({_}) bad OPEN, remote AS is {peer_asn}, expected {expected_asn}",
        &[(Direction, "sent")],
    ),
    entry(
        BgpStateChange,
        "{peer_ip} went from {from_state} to {to_state}",
        &[],
    ),
    entry(DaemonStarted, "BGPd {_} starting: {*}", &[]),
    entry(
        BgpOpen,
        "{peer_ip} rcv OPEN, version {_}, remote-as (in open) {peer_asn}, holdtime {_}, id {_}",
        &[(Direction, "received")],
    ),
];

/// `BGP: ` (FRR's protocol tag in its own log file) at the start of `s`.
pub(super) fn has_prefix(s: &str) -> bool {
    let word = s.bytes().take_while(u8::is_ascii_uppercase).count();
    word >= 2 && s[word..].starts_with(": ")
}

pub(super) fn parse(body: &str, g: &mut Gateway) -> Option<Severity> {
    let mut rest = body.trim();
    if has_prefix(rest) {
        rest = rest[rest.find(": ").map_or(0, |i| i + 2)..].trim_start();
    }
    // `[XXXXX-XXXXX]` and `[EC nnn]` tags.
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(end) = inner.find(']') else { break };
        rest = inner[end + 1..].trim_start();
    }
    g.details = rest.to_owned();
    classify(CATALOGUE, rest, g);
    if g.kind == BgpNotification {
        g.kind = notification_kind(g.captures.error_code, g.captures.error_subcode);
    }
    if g.kind == BgpStateChange
        && g.captures
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("Admin"))
    {
        g.captures.to_state = Some("idle".into());
    }
    None
}

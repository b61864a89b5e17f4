//! Libreswan's IKE daemon, pluto (4.x): its line prefix and its catalogue.
//!
//! A pluto line names its connection and state: `"conn" #7: message` (or `"conn"[2] 192.0.2.10
//! #7: …` for an instance). The connection becomes `ike_sa` and the state number `ike_sa_id`.
//! The templates follow pluto 4.10's wording (captured: `tests/data/gateway/libreswan/`).

use super::template::Slot::{self, *};
use super::{Entry, Gateway, GatewayKind::*, classify, entry};
use crate::event::Severity;

const SENT: &[(Slot, &str)] = &[(Direction, "sent")];
const RECEIVED: &[(Slot, &str)] = &[(Direction, "received")];

pub(super) const CATALOGUE: &[Entry] = &[
    entry(IkeSaInitiating, "initiating IKEv2 connection", SENT),
    entry(IkeSaInitiating, "initiating IKEv2 IKE SA", SENT),
    entry(
        IkeSaInitiating,
        "initiating IKEv1 Main Mode connection",
        SENT,
    ),
    entry(IkeSaInitiating, "responding to Main Mode", RECEIVED),
    entry(
        IkeSaEstablished,
        "initiator established IKE SA; authenticated peer using authby={_} and {_} '{peer_id}'",
        &[],
    ),
    entry(
        IkeSaEstablished,
        "responder established IKE SA; authenticated peer using authby={_} and {_} '{peer_id}'",
        &[],
    ),
    entry(
        IkeSaEstablished,
        "established IKE SA; authenticated {*}",
        &[],
    ),
    entry(IkeSaEstablished, "IKE SA established {*}", &[]),
    entry(IkeSaEstablished, "ISAKMP SA established {*}", &[]),
    // IKEv1 Main Mode names the peer only here.
    entry(AuthSucceeded, "Peer ID is {_}: '{peer_id}'", RECEIVED),
    entry(
        ChildSaEstablished,
        "initiator established Child SA using #{_}; IPsec tunnel [{local_ts}] -> [{remote_ts}] {*}",
        &[],
    ),
    entry(
        ChildSaEstablished,
        "responder established Child SA using #{_}; IPsec tunnel [{local_ts}] -> [{remote_ts}] {*}",
        &[],
    ),
    entry(
        ChildSaEstablished,
        "established Child SA using #{_}; IPsec tunnel [{local_ts}] -> [{remote_ts}] {*}",
        &[],
    ),
    entry(
        ChildSaEstablished,
        "IPsec SA established tunnel mode {*}",
        &[],
    ),
    entry(
        ChildSaFailed,
        "setup_half_ipsec_sa() hit fail:",
        &[(Reason, "kernel refused the SA")],
    ),
    entry(
        ChildSaFailed,
        "netlink response for Add SA {_}: {reason}",
        &[],
    ),
    entry(
        AuthFailed,
        "IKE SA authentication request rejected by peer: AUTHENTICATION_FAILED",
        &[(Direction, "received"), (Notify, "AUTHENTICATION_FAILED")],
    ),
    entry(AuthFailed, "authentication failed: {reason}", SENT),
    entry(
        AuthFailed,
        "probable authentication failure (mismatch of preshared secrets?): {reason}",
        &[(Direction, "sent")],
    ),
    entry(
        IkeMessage,
        "responding to {_} message (ID {_}) from {peer_ip}:{_} with encrypted notification {notify}",
        SENT,
    ),
    entry(
        IkeMessage,
        "sent IKE_SA_INIT request to {peer_ip}:{_}",
        SENT,
    ),
    entry(IkeMessage, "sent {_} request {*}", SENT),
    entry(IkeMessage, "sent {_} reply {*}", SENT),
    entry(
        NoProposalChosen,
        "IKE_SA_INIT request rejected by peer: NO_PROPOSAL_CHOSEN",
        &[
            (Direction, "received"),
            (Sa, "ike"),
            (Notify, "NO_PROPOSAL_CHOSEN"),
        ],
    ),
    entry(
        NoProposalChosen,
        "IKE_AUTH response rejected Child SA with NO_PROPOSAL_CHOSEN",
        &[
            (Direction, "received"),
            (Sa, "child"),
            (Notify, "NO_PROPOSAL_CHOSEN"),
        ],
    ),
    entry(
        NoProposalChosen,
        "no local proposal matches remote proposals {proposals}",
        &[(Direction, "sent"), (Sa, "ike")],
    ),
    entry(
        ProposalList,
        "proposal {proposals} chosen from remote proposals {_}",
        &[(Reason, "selected")],
    ),
    entry(
        ProposalList,
        "{_}:IKE={proposals}",
        &[(Reason, "configured"), (Sa, "ike")],
    ),
    entry(
        ProposalList,
        "{_}:ESP={proposals}",
        &[(Reason, "configured"), (Sa, "child")],
    ),
    entry(
        TsUnacceptable,
        "IKE_AUTH response rejected Child SA with TS_UNACCEPTABLE",
        &[
            (Direction, "received"),
            (Sa, "child"),
            (Notify, "TS_UNACCEPTABLE"),
        ],
    ),
    entry(
        InvalidKe,
        "IKE_SA_INIT request rejected by peer: INVALID_KE_PAYLOAD",
        &[(Direction, "received"), (Notify, "INVALID_KE_PAYLOAD")],
    ),
    entry(
        Retransmit,
        "{_}: retransmission; will wait {_} seconds for response",
        SENT,
    ),
    entry(
        PeerNotResponding,
        "{_}: {_} second timeout exceeded after {retry_count} retransmits.{*}",
        &[],
    ),
    entry(PeerNotResponding, "DPD action - {reason}", &[]),
    // A CHILD SA's state (IKEv1 Quick Mode, an IKEv2 CHILD_SA state) before the IKE SA's.
    entry(
        ChildSaDeleted,
        "deleting state (STATE_QUICK_{_}) aged {_} and sending notification",
        SENT,
    ),
    entry(
        ChildSaDeleted,
        "deleting state (STATE_QUICK_{_}) aged {_} and NOT sending notification",
        &[],
    ),
    entry(
        ChildSaDeleted,
        "deleting state (STATE_V2_{_}CHILD{_}) aged {_} and sending notification",
        SENT,
    ),
    entry(
        ChildSaDeleted,
        "deleting state (STATE_V2_{_}CHILD{_}) aged {_} and NOT sending notification",
        &[],
    ),
    entry(
        IkeSaDeleted,
        "deleting state ({_}) aged {_} and sending notification",
        SENT,
    ),
    entry(
        IkeSaDeleted,
        "deleting state ({_}) aged {_} and NOT sending notification",
        &[],
    ),
    entry(IkeSaDeleted, "received Delete SA payload: {*}", RECEIVED),
    entry(DaemonStarted, "Starting Pluto ({reason}){*}", &[]),
    entry(NatDetected, "NAT-Traversal: {*}", &[]),
];

/// `"conn" #N: ` or `"conn": ` (perhaps after `ERROR: `) at the start of `s`.
pub(super) fn has_prefix(s: &str) -> bool {
    split(s.strip_prefix("ERROR: ").unwrap_or(s)).is_some()
}

/// `("conn", instance address, state number, message)`.
fn split(s: &str) -> Option<(&str, Option<&str>, Option<u64>, &str)> {
    let inner = s.strip_prefix('"')?;
    let close = inner.find('"')?;
    let name = &inner[..close];
    let mut rest = &inner[close + 1..];
    // `[2]` instance number and the peer's address.
    if let Some(r) = rest.strip_prefix('[') {
        rest = &r[r.find(']')? + 1..];
    }
    let (head, message) = rest.split_once(": ")?;
    let mut addr = None;
    let mut state = None;
    for word in head.split_whitespace() {
        if let Some(n) = word.strip_prefix('#') {
            state = Some(n.parse().ok()?);
        } else if word.parse::<std::net::IpAddr>().is_ok() {
            addr = Some(word);
        } else {
            return None;
        }
    }
    Some((name, addr, state, message))
}

pub(super) fn parse(body: &str, g: &mut Gateway) -> Option<Severity> {
    let mut body = body.trim();
    // `ERROR: "conn" #7: …` / `WARNING: …`: pluto's own level.
    let mut level = None;
    for (tag, sev) in [
        ("ERROR: ", Severity::Error),
        ("WARNING: ", Severity::Warning),
    ] {
        if let Some(rest) = body.strip_prefix(tag) {
            body = rest;
            level = Some(sev);
        }
    }
    let rest = match split(body) {
        Some((name, addr, state, message)) => {
            g.ike_sa = Some(name.to_owned());
            g.ike_sa_id = state;
            g.peer_ip = addr.map(str::to_owned);
            message.trim()
        }
        None => body,
    };
    g.details = rest.to_owned();
    classify(CATALOGUE, rest, g);
    level
}

//! Libreswan's IKE daemon, pluto (4.x): its line prefix and its catalogue.
//!
//! A pluto line names its connection and state: `"conn" #7: message` (or `"conn"[2] 192.0.2.10
//! #7: …` for an instance). The connection becomes `ike_sa` and the state number `ike_sa_id`.
//! The templates follow pluto 4.x's wording.

use super::template::Slot::{self, *};
use super::{Entry, Gateway, GatewayKind::*, classify, entry};
use crate::event::Severity;

const SENT: &[(Slot, &str)] = &[(Direction, "sent")];
const RECEIVED: &[(Slot, &str)] = &[(Direction, "received")];

pub(super) const CATALOGUE: &[Entry] = &[
    entry(IkeSaInitiating, "initiating IKEv2 connection", SENT),
    entry(IkeSaInitiating, "initiating IKEv2 IKE SA", SENT),
    entry(IkeSaInitiating, "initiating IKEv1 Main Mode connection", SENT),
    entry(IkeSaEstablished, "established IKE SA; authenticated {*}", &[]),
    entry(IkeSaEstablished, "ISAKMP SA established {*}", &[]),
    entry(IkeSaEstablished, "IKE SA established {*}", &[]),
    entry(ChildSaEstablished, "established Child SA using #{_}; IPsec tunnel [{local_ts}] -> [{remote_ts}] {*}", &[]),
    entry(ChildSaEstablished, "IPsec SA established tunnel mode {*}", &[]),
    entry(ChildSaEstablished, "negotiated connection [{local_ts}] -> [{remote_ts}]", &[]),
    entry(AuthFailed, "IKE SA authentication request rejected by peer: AUTHENTICATION_FAILED", &[(Direction, "received"), (Notify, "AUTHENTICATION_FAILED")]),
    entry(AuthFailed, "authentication failed: {reason}", SENT),
    entry(AuthFailed, "Authenticator Failed: {reason}", SENT),
    entry(AuthFailed, "responding to IKE_AUTH request with AUTHENTICATION_FAILED{*}", &[(Direction, "sent"), (Notify, "AUTHENTICATION_FAILED")]),
    entry(NoProposalChosen, "IKE_SA_INIT request rejected by peer: NO_PROPOSAL_CHOSEN", &[(Direction, "received"), (Sa, "ike"), (Notify, "NO_PROPOSAL_CHOSEN")]),
    entry(NoProposalChosen, "IKE_AUTH response rejected Child SA with NO_PROPOSAL_CHOSEN", &[(Direction, "received"), (Sa, "child"), (Notify, "NO_PROPOSAL_CHOSEN")]),
    entry(NoProposalChosen, "no local proposal matches remote proposals {proposals}", &[(Direction, "sent"), (Sa, "ike")]),
    entry(TsUnacceptable, "IKE_AUTH response rejected Child SA with TS_UNACCEPTABLE", &[(Direction, "received"), (Sa, "child"), (Notify, "TS_UNACCEPTABLE")]),
    entry(InvalidKe, "IKE_SA_INIT request rejected by peer: INVALID_KE_PAYLOAD", &[(Direction, "received"), (Notify, "INVALID_KE_PAYLOAD")]),
    entry(Retransmit, "{_}: retransmission; will wait {_} seconds for response", &[]),
    entry(PeerNotResponding, "{_}: {_} second timeout exceeded after {retry_count} retransmits.{*}", &[]),
    entry(PeerNotResponding, "DPD action - {reason}", &[]),
    entry(IkeSaDeleted, "deleting state ({_}) aged {_} and sending notification", SENT),
    entry(IkeSaDeleted, "deleting state ({_}) aged {_} and NOT sending notification", &[]),
    entry(IkeSaDeleted, "received Delete SA payload: {*}", RECEIVED),
    entry(DaemonStarted, "Starting Pluto {*}", &[]),
    entry(NatDetected, "NAT-Traversal: {*}", &[]),
];

/// `"conn" #N: ` or `"conn": ` at the start of `s`.
pub(super) fn has_prefix(s: &str) -> bool {
    split(s).is_some()
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
    let body = body.trim();
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
    None
}

//! strongSwan's IKE daemon, charon (5.x, IKEv1 and IKEv2): its line prefix and its catalogue.
//!
//! A charon line is `NN[GRP] [<conn|id>] message`: the thread, the log group (IKE, CFG, NET,
//! ENC, KNL, …) and, with `ike_name = yes` (or in syslog), the IKE_SA's name and unique id. The
//! templates are charon's format strings at log level 1 (the default); lines of level 2 and
//! above mostly stay `unknown`, which is what they are for a tunnel's story.

use super::template::Slot::{self, *};
use super::{Entry, Gateway, GatewayKind::*, classify, entry};
use crate::event::Severity;

const SENT: &[(Slot, &str)] = &[(Direction, "sent")];
const RECEIVED: &[(Slot, &str)] = &[(Direction, "received")];

/// The catalogue, most specific templates first.
pub(super) const CATALOGUE: &[Entry] = &[
    // IKE_SA life.
    entry(
        IkeSaInitiating,
        "initiating IKE_SA {ike_sa}[{ike_sa_id}] to {peer_ip}",
        SENT,
    ),
    entry(
        IkeSaInitiating,
        "initiating Main Mode IKE_SA {ike_sa}[{ike_sa_id}] to {peer_ip}",
        SENT,
    ),
    entry(
        IkeSaInitiating,
        "initiating Aggressive Mode IKE_SA {ike_sa}[{ike_sa_id}] to {peer_ip}",
        SENT,
    ),
    entry(
        IkeSaInitiating,
        "{peer_ip} is initiating an IKE_SA",
        RECEIVED,
    ),
    entry(
        IkeSaInitiating,
        "{peer_ip} is initiating a Main Mode IKE_SA",
        RECEIVED,
    ),
    entry(
        IkeSaInitiating,
        "{peer_ip} is initiating a Aggressive Mode IKE_SA",
        RECEIVED,
    ),
    entry(
        IkeSaEstablished,
        "IKE_SA {ike_sa}[{ike_sa_id}] established between {local_ip}[{local_id}]...{peer_ip}[{peer_id}]",
        &[],
    ),
    entry(
        IkeSaRekeyed,
        "IKE_SA {ike_sa}[{ike_sa_id}] rekeyed between {local_ip}[{local_id}]...{peer_ip}[{peer_id}]",
        &[],
    ),
    entry(
        IkeSaDeleted,
        "deleting IKE_SA {ike_sa}[{ike_sa_id}] between {local_ip}[{local_id}]...{peer_ip}[{peer_id}]",
        SENT,
    ),
    entry(
        IkeSaDeleted,
        "received DELETE for IKE_SA {ike_sa}[{ike_sa_id}]",
        RECEIVED,
    ),
    // CHILD_SA life.
    entry(
        ChildSaEstablished,
        "CHILD_SA {child_sa}{{{child_sa_id}}} established with SPIs {spi_in}_i {spi_out}_o and TS {local_ts} === {remote_ts}",
        &[],
    ),
    entry(
        ChildSaRekeyed,
        "outbound CHILD_SA {child_sa}{{{child_sa_id}}} established with SPIs {spi_in}_i {spi_out}_o and TS {local_ts} === {remote_ts}",
        &[],
    ),
    entry(
        ChildSaRekeyed,
        "inbound CHILD_SA {child_sa}{{{child_sa_id}}} established with SPIs {spi_in}_i {spi_out}_o and TS {local_ts} === {remote_ts}",
        &[],
    ),
    entry(
        ChildSaDeleted,
        "closing CHILD_SA {child_sa}{{{child_sa_id}}} with SPIs {spi_in}_i ({bytes_in} bytes) {spi_out}_o ({bytes_out} bytes) and TS {local_ts} === {remote_ts}",
        SENT,
    ),
    entry(
        ChildSaDeleted,
        "closing CHILD_SA {child_sa}{{{child_sa_id}}} with SPIs {spi_in}_i ({bytes_in} bytes) {spi_out}_o ({bytes_out} bytes){*}",
        SENT,
    ),
    entry(
        ChildSaDeleted,
        "received DELETE for {_} CHILD_SA with SPI {spi_out}",
        RECEIVED,
    ),
    entry(
        ChildSaFailed,
        "failed to establish CHILD_SA, keeping IKE_SA",
        &[],
    ),
    entry(
        ChildSaFailed,
        "unable to install inbound and outbound IPsec SA (SAD) in kernel",
        &[(Reason, "kernel refused the SA")],
    ),
    entry(
        ChildSaFailed,
        "unable to install IPsec policies (SPD) in kernel",
        &[(Reason, "kernel refused the policies")],
    ),
    // Authentication.
    entry(
        AuthSucceeded,
        "authentication of '{local_id}' (myself) with {_} successful",
        SENT,
    ),
    entry(
        AuthSucceeded,
        "authentication of '{peer_id}' with {_} successful",
        RECEIVED,
    ),
    entry(
        AuthFailed,
        "tried {_} shared key for '{local_id}' - '{peer_id}', but MAC mismatched",
        &[(Direction, "sent"), (Reason, "pre-shared key mismatch")],
    ),
    entry(
        AuthFailed,
        "tried {_} shared keys for '{local_id}' - '{peer_id}', but MAC mismatched",
        &[(Direction, "sent"), (Reason, "pre-shared key mismatch")],
    ),
    entry(
        AuthFailed,
        "no shared key found for '{local_id}' - '{peer_id}'",
        &[
            (Direction, "sent"),
            (Reason, "no pre-shared key for the identities"),
        ],
    ),
    entry(
        AuthFailed,
        "received AUTHENTICATION_FAILED notify error",
        &[(Direction, "received"), (Notify, "AUTHENTICATION_FAILED")],
    ),
    entry(
        AuthFailed,
        "received AUTHENTICATION_FAILED error notify",
        &[(Direction, "received"), (Notify, "AUTHENTICATION_FAILED")],
    ),
    entry(
        AuthFailed,
        "invalid HASH_V1 payload length, decryption failed?",
        &[
            (Direction, "sent"),
            (Reason, "pre-shared key mismatch (IKEv1 decryption failed)"),
        ],
    ),
    entry(
        AuthFailed,
        "invalid ID_V1 payload length, decryption failed?",
        &[
            (Direction, "sent"),
            (Reason, "pre-shared key mismatch (IKEv1 decryption failed)"),
        ],
    ),
    entry(AuthFailed, "constraint check failed: {reason}", SENT),
    entry(
        AuthFailed,
        "no trusted {_} public key found for '{peer_id}'",
        SENT,
    ),
    // Proposals.
    entry(
        ProposalList,
        "received proposals: {proposals}",
        &[(Direction, "received"), (Reason, "received")],
    ),
    entry(
        ProposalList,
        "configured proposals: {proposals}",
        &[(Reason, "configured")],
    ),
    entry(
        ProposalList,
        "selected proposal: {proposals}",
        &[(Reason, "selected")],
    ),
    entry(NoProposalChosen, "no acceptable proposal found", SENT),
    entry(NoProposalChosen, "no proposal found", SENT),
    entry(NoProposalChosen, "received proposals unacceptable", SENT),
    entry(
        NoProposalChosen,
        "no IKE config found for {local_ip}...{peer_ip}, sending NO_PROPOSAL_CHOSEN",
        &[
            (Direction, "sent"),
            (Sa, "ike"),
            (Reason, "no matching IKE config"),
        ],
    ),
    entry(
        NoProposalChosen,
        "received NO_PROPOSAL_CHOSEN notify error",
        &[
            (Direction, "received"),
            (Sa, "ike"),
            (Notify, "NO_PROPOSAL_CHOSEN"),
        ],
    ),
    entry(
        NoProposalChosen,
        "received NO_PROPOSAL_CHOSEN error notify",
        &[
            (Direction, "received"),
            (Sa, "ike"),
            (Notify, "NO_PROPOSAL_CHOSEN"),
        ],
    ),
    entry(
        NoProposalChosen,
        "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built",
        &[
            (Direction, "received"),
            (Sa, "child"),
            (Notify, "NO_PROPOSAL_CHOSEN"),
        ],
    ),
    entry(
        InvalidKe,
        "peer didn't accept DH group {dh_group}, it requested {requested_group}",
        RECEIVED,
    ),
    entry(
        InvalidKe,
        "DH group {dh_group} unacceptable, requesting {requested_group}",
        SENT,
    ),
    entry(
        InvalidKe,
        "received INVALID_KE_PAYLOAD notify error",
        &[(Direction, "received"), (Notify, "INVALID_KE_PAYLOAD")],
    ),
    entry(
        TsUnacceptable,
        "received TS_UNACCEPTABLE notify, no CHILD_SA built",
        &[
            (Direction, "received"),
            (Sa, "child"),
            (Notify, "TS_UNACCEPTABLE"),
        ],
    ),
    entry(
        TsUnacceptable,
        "traffic selectors {local_ts} === {remote_ts} unacceptable",
        &[(Direction, "sent"), (Sa, "child")],
    ),
    entry(
        TsUnacceptable,
        "no matching CHILD_SA config found",
        &[
            (Direction, "sent"),
            (Sa, "child"),
            (Reason, "no CHILD_SA config matches the traffic selectors"),
        ],
    ),
    entry(
        TsUnacceptable,
        "received INVALID_ID_INFORMATION error notify",
        &[
            (Direction, "received"),
            (Sa, "child"),
            (Notify, "INVALID_ID_INFORMATION"),
        ],
    ),
    // Liveness.
    entry(
        Retransmit,
        "retransmit {retry_count} of request with message ID {_}",
        SENT,
    ),
    entry(
        Retransmit,
        "sending retransmit {retry_count} of request message ID {_}, seq {_}",
        SENT,
    ),
    entry(
        Retransmit,
        "received retransmit of request with ID {_}, retransmitting response",
        RECEIVED,
    ),
    entry(
        PeerNotResponding,
        "giving up after {retry_count} retransmits",
        &[],
    ),
    entry(
        PeerNotResponding,
        "peer not responding, trying again ({retry_count}/{_})",
        &[],
    ),
    entry(
        PeerNotResponding,
        "establishing IKE_SA failed, peer not responding",
        &[],
    ),
    entry(DpdRequest, "sending DPD request", &[]),
    entry(DpdRequest, "sending DPD request with seq no {_}", &[]),
    entry(
        NatDetected,
        "local host is behind NAT, sending keep alives",
        &[(Reason, "local host behind NAT")],
    ),
    entry(
        NatDetected,
        "remote host is behind NAT",
        &[(Reason, "remote host behind NAT")],
    ),
    entry(
        NatDetected,
        "faking NAT situation to enforce UDP encapsulation",
        &[(Reason, "UDP encapsulation forced")],
    ),
    entry(DaemonStarted, "Starting IKE charon daemon ({reason})", &[]),
    // Other notifies and the exchange log.
    entry(NotifyReceived, "received {notify} notify error", RECEIVED),
    entry(NotifyReceived, "received {notify} error notify", RECEIVED),
    entry(
        NotifyReceived,
        "received {notify} notify, no CHILD_SA built",
        &[(Direction, "received"), (Sa, "child")],
    ),
    entry(
        IkeMessage,
        "sending packet: from {local_ip}[{_}] to {peer_ip}[{_}] ({_} bytes)",
        SENT,
    ),
    entry(
        IkeMessage,
        "received packet: from {peer_ip}[{_}] to {local_ip}[{_}] ({_} bytes)",
        RECEIVED,
    ),
    entry(IkeMessage, "generating {*}", SENT),
    entry(IkeMessage, "parsed {*}", RECEIVED),
];

/// `NN[GRP] ` at the start of `s`.
pub(super) fn has_prefix(s: &str) -> bool {
    thread_group(s).is_some() || group_only(s).is_some()
}

/// The length of `NN[GRP] ` (thread digits, a 3-letter upper-case group).
fn thread_group(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(1..=4).contains(&digits) || b.get(digits) != Some(&b'[') {
        return None;
    }
    let group = b.get(digits + 1..digits + 4)?;
    (group.iter().all(u8::is_ascii_uppercase)
        && b.get(digits + 4) == Some(&b']')
        && b.get(digits + 5) == Some(&b' '))
    .then_some(digits + 6)
}

/// Classifies a charon line (prefix included). Returns the level the line carried, if any.
pub(super) fn parse(body: &str, g: &mut Gateway) -> Option<Severity> {
    let mut rest = body.trim();
    if let Some(n) = thread_group(rest) {
        rest = rest[n..].trim_start();
    } else if let Some(n) = group_only(rest) {
        // `swanctl --initiate` forwards the log as `[IKE] message`.
        rest = rest[n..].trim_start();
    }
    // `<conn|id> ` (the IKE_SA's name and unique id) or `<id> ` (unnamed).
    if let Some(inner) = rest.strip_prefix('<')
        && let Some(end) = inner.find("> ")
    {
        let tag = &inner[..end];
        let (name, id) = match tag.rsplit_once('|') {
            Some((n, i)) => (Some(n), i),
            None => (None, tag),
        };
        if let Ok(id) = id.parse::<u64>() {
            g.ike_sa = name.filter(|n| !n.is_empty()).map(str::to_owned);
            g.ike_sa_id = Some(id);
            rest = inner[end + 2..].trim_start();
        }
    }
    if hex_dump(rest) {
        g.details = HEX_DUMP.to_owned();
        return None;
    }
    g.details = rest.to_owned();
    classify(CATALOGUE, rest, g);
    if g.kind == IkeMessage && g.captures.notify.is_none() {
        g.captures.notify = error_notify(rest).map(str::to_owned);
    }
    None
}

/// The length of `[GRP] ` (a 3-letter upper-case group without a thread: swanctl's stream).
fn group_only(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (b.first() == Some(&b'[')
        && b.get(1..4)
            .is_some_and(|g| g.iter().all(u8::is_ascii_uppercase))
        && b.get(4) == Some(&b']')
        && b.get(5) == Some(&b' '))
    .then_some(6)
}

/// What a hex dump row is stored as.
pub const HEX_DUMP: &str = "hex dump row (bytes not stored: at log level 4 charon dumps keys, \
                            the pre-shared key and packets)";

/// A row of charon's hex dumps (`  16: 2D 70 73 6B 2D …  -psk-0123456789`, log level 4): an
/// offset, then one to sixteen hex byte pairs. Their bytes are keys, the pre-shared key itself,
/// nonces and packets, so the row is kept only as its place (an `unknown` row).
fn hex_dump(s: &str) -> bool {
    let Some((offset, rest)) = s.split_once(": ") else {
        return false;
    };
    if offset.is_empty() || offset.len() > 6 || !offset.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut words = rest.split(' ');
    let pairs = words
        .by_ref()
        .take_while(|w| w.len() == 2 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .count();
    (1..=16).contains(&pairs)
}

/// The first error notify an exchange line lists (`[ N(AUTH_FAILED) ]`): the IKEv2 error
/// types are below 16384 and charon prints them with these short names.
fn error_notify(line: &str) -> Option<&str> {
    const ERRORS: [&str; 9] = [
        "AUTH_FAILED",
        "NO_PROP",
        "TS_UNACCEPT",
        "INVAL_KE",
        "INVAL_SYN",
        "NO_ADD_SAS",
        "INT_ADDR_FAIL",
        "FAILED_CP_REQ",
        "INVAL_SPI",
    ];
    let mut from = 0;
    while let Some(at) = line[from..].find("N(") {
        let start = from + at + 2;
        let end = start + line[start..].find(')')?;
        let name = &line[start..end];
        if ERRORS.contains(&name) {
            return Some(name);
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dump_rows() {
        assert!(hex_dump(
            "0: 74 75 6E 6E 65 6C 77 61 74 63 68 2D 74 65 73 74  tunnelwatch-test"
        ));
        assert!(hex_dump(
            "16: 2D 70 73 6B 2D 30 31 32 33 34 35 36 37 38 39     -psk-0123456789"
        ));
        assert!(hex_dump(
            "32: 0A                                               ."
        ));
        assert!(!hex_dump("secret => 31 bytes @ 0x7f9060000b90"));
        assert!(!hex_dump("received AUTHENTICATION_FAILED notify error"));
        assert!(!hex_dump("2: something else"));
    }
}

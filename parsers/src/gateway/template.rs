//! Message templates: the gateway catalogues are written as the daemons' own format strings,
//! `IKE_SA {ike_sa}[{ike_sa_id}] established between {local_ip}[{local_id}]...{peer_ip}[{peer_id}]`,
//! and matched here.
//!
//! Invariants and limits:
//! - A template is literal text (`{{` and `}}` stand for braces) and `{name}` holes; a hole takes the shortest text (never
//!   empty) up to the next literal, the last hole takes the rest of the message. A template
//!   that ends in `{*}` matches any tail without capturing it; otherwise the whole message must
//!   be consumed.
//! - Each hole names a [`Slot`]; a slot with a type (`_ip` an IP address, `_id`/counts an
//!   unsigned number) makes the match fail when the text is not of that type, so the next
//!   template gets its chance. Matching never allocates until a template has matched.
//! - Templates are checked once, by a unit test, so a typo in a catalogue fails the build's
//!   tests rather than silently never matching.

use std::net::IpAddr;

/// What a hole captures: the columns of `gateway_events` that come from the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    PeerIp,
    LocalIp,
    PeerId,
    LocalId,
    IkeSa,
    IkeSaId,
    ChildSa,
    ChildSaId,
    Notify,
    Proposals,
    DhGroup,
    RequestedGroup,
    RetryCount,
    SpiIn,
    SpiOut,
    BytesIn,
    BytesOut,
    LocalTs,
    RemoteTs,
    FromState,
    ToState,
    PeerAsn,
    ExpectedAsn,
    ErrorCode,
    ErrorSubcode,
    PrefixCount,
    PrefixMax,
    Reason,
    /// BIRD's protocol name.
    Session,
    /// Set by a catalogue entry, not by the text: `sent` / `received`.
    Direction,
    /// Set by a catalogue entry: which SA a failure is about, `ike` or `child`.
    Sa,
    /// Matched but not kept (`{*}`, or a value no column holds).
    Skip,
}

impl Slot {
    fn of(name: &str) -> Option<Slot> {
        use Slot::*;
        Some(match name {
            "peer_ip" => PeerIp,
            "local_ip" => LocalIp,
            "peer_id" => PeerId,
            "local_id" => LocalId,
            "ike_sa" => IkeSa,
            "ike_sa_id" => IkeSaId,
            "child_sa" => ChildSa,
            "child_sa_id" => ChildSaId,
            "notify" => Notify,
            "proposals" => Proposals,
            "dh_group" => DhGroup,
            "requested_group" => RequestedGroup,
            "retry_count" => RetryCount,
            "spi_in" => SpiIn,
            "spi_out" => SpiOut,
            "bytes_in" => BytesIn,
            "bytes_out" => BytesOut,
            "local_ts" => LocalTs,
            "remote_ts" => RemoteTs,
            "from_state" => FromState,
            "to_state" => ToState,
            "peer_asn" => PeerAsn,
            "expected_asn" => ExpectedAsn,
            "error_code" => ErrorCode,
            "error_subcode" => ErrorSubcode,
            "prefix_count" => PrefixCount,
            "prefix_limit" => PrefixMax,
            "reason" => Reason,
            "session" => Session,
            "direction" => Direction,
            "sa" => Sa,
            "*" | "_" => Skip,
            _ => return None,
        })
    }

    /// Whether `text` is acceptable for this slot.
    fn accepts(self, text: &str) -> bool {
        use Slot::*;
        match self {
            PeerIp | LocalIp => text.parse::<IpAddr>().is_ok(),
            IkeSaId | ChildSaId | RetryCount | BytesIn | BytesOut | PeerAsn | ExpectedAsn
            | ErrorCode | ErrorSubcode | PrefixCount | PrefixMax => {
                !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit())
            }
            SpiIn | SpiOut => text.len() <= 16 && text.bytes().all(|b| b.is_ascii_hexdigit()),
            // Names and identities are single words.
            IkeSa | ChildSa | Session | Notify | DhGroup | RequestedGroup | FromState | ToState => {
                !text.contains(' ')
            }
            PeerId | LocalId | Proposals | LocalTs | RemoteTs | Reason | Direction | Sa | Skip => {
                true
            }
        }
    }
}

/// One piece of a template.
#[derive(Debug, Clone, Copy)]
enum Piece<'t> {
    Literal(&'t str),
    Hole(Slot),
    /// `{*}` at the end: any tail.
    Tail,
}

/// Splits a template into pieces; `None` when it names an unknown slot or puts two holes side
/// by side (which could not be told apart).
fn pieces(template: &str) -> Option<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            // An escaped brace: a literal `{` or `}`.
            out.push(Piece::Literal(&rest[..1]));
            rest = &rest[2..];
        } else if rest.starts_with('{') {
            let end = rest.find('}')?;
            let name = &rest[1..end];
            let piece = if name == "*" && end + 1 == rest.len() {
                Piece::Tail
            } else {
                Piece::Hole(Slot::of(name)?)
            };
            if matches!(out.last(), Some(Piece::Hole(_))) {
                return None;
            }
            out.push(piece);
            rest = &rest[end + 1..];
        } else {
            let stop = [rest.find('{'), rest.find("}}")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(rest.len());
            out.push(Piece::Literal(&rest[..stop]));
            rest = &rest[stop..];
        }
    }
    Some(out)
}

/// The holes a matched template filled, in template order.
pub(crate) type Filled<'m> = Vec<(Slot, &'m str)>;

/// Matches `message` against `template`.
pub(crate) fn matches<'m>(template: &str, message: &'m str) -> Option<Filled<'m>> {
    // Cheap refusal first: the literal head must be there.
    let head = template.split('{').next().unwrap_or("");
    if !message.starts_with(head) {
        return None;
    }
    let pieces = pieces(template)?;
    let mut filled = Vec::new();
    let mut rest = message;
    let mut i = 0;
    while i < pieces.len() {
        match pieces[i] {
            Piece::Literal(l) => rest = rest.strip_prefix(l)?,
            Piece::Tail => return Some(filled),
            Piece::Hole(slot) => {
                let (value, after) = match pieces.get(i + 1) {
                    Some(Piece::Literal(next)) => {
                        // Shortest non-empty value before the next literal.
                        let at = rest.get(1..)?.find(next)? + 1;
                        (&rest[..at], &rest[at..])
                    }
                    _ => (rest, ""),
                };
                if value.is_empty() || !slot.accepts(value) {
                    return None;
                }
                if slot != Slot::Skip {
                    filled.push((slot, value));
                }
                rest = after;
            }
        }
        i += 1;
    }
    rest.is_empty().then_some(filled)
}

/// Checks a template: `Err` says what is wrong with it.
#[cfg(test)]
pub(crate) fn check(template: &str) -> Result<(), String> {
    pieces(template)
        .map(|_| ())
        .ok_or_else(|| format!("bad template (unknown slot or adjacent holes): {template}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_take_the_shortest_text_and_types_are_checked() {
        let t = "IKE_SA {ike_sa}[{ike_sa_id}] established between {local_ip}[{local_id}]...{peer_ip}[{peer_id}]";
        let m = matches(
            t,
            "IKE_SA aws[3] established between 198.51.100.20[cgw]...192.0.2.10[192.0.2.10]",
        )
        .unwrap();
        assert_eq!(
            m,
            vec![
                (Slot::IkeSa, "aws"),
                (Slot::IkeSaId, "3"),
                (Slot::LocalIp, "198.51.100.20"),
                (Slot::LocalId, "cgw"),
                (Slot::PeerIp, "192.0.2.10"),
                (Slot::PeerId, "192.0.2.10"),
            ]
        );
        assert!(matches(t, "IKE_SA aws[x] established between a[b]...c[d]").is_none());
        assert!(
            matches(
                "retransmit {retry_count} of request{*}",
                "retransmit 2 of request with message ID 0"
            )
            .is_some()
        );
        assert!(matches("sending DPD request", "sending DPD request now").is_none());
        assert!(matches("a {reason}", "a ").is_none());
        let child = "CHILD_SA {child_sa}{{{child_sa_id}}} established";
        assert_eq!(
            matches(child, "CHILD_SA aws-1{12} established").unwrap(),
            vec![(Slot::ChildSa, "aws-1"), (Slot::ChildSaId, "12")]
        );
        assert!(check("x {nope}").is_err());
        assert!(check("x {peer_ip}{local_ip}").is_err());
    }
}

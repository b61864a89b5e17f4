//! Table test of the message catalogue: one real-wording sample per entry of reference §5, with
//! the kind and every captured column asserted (all other captures must stay empty).

use tunnelwatch_parsers::catalogue::{self, Context, classify, find_in_text, route_message};
use tunnelwatch_parsers::{Captures, Direction, MessageKind as K, PhaseState, Severity};

fn caps() -> Captures {
    Captures::default()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn every_catalogue_entry() {
    let nb = "169.254.50.85";
    let notif = |dir, code, sub, reason: &str| Captures {
        direction: Some(dir),
        error_code: Some(code),
        error_subcode: Some(sub),
        reason: s(reason),
        neighbor_ip: s(nb),
        ..caps()
    };
    let state = |from: &str, to: &str| Captures {
        from_state: s(from),
        to_state: s(to),
        neighbor_ip: s(nb),
        ..caps()
    };
    let only_nb = Captures {
        neighbor_ip: s(nb),
        ..caps()
    };
    let cases: Vec<(&str, &str, K, Captures)> = vec![
        // §5.1 IKEv1
        (
            "1.1",
            "Peer is not responsive - Declaring peer dead",
            K::DpdPeerDead,
            caps(),
        ),
        (
            "1.1 bullet",
            "Peer is not responsive\n• Declaring peer dead",
            K::DpdPeerDead,
            caps(),
        ),
        (
            "1.2",
            "AWS tunnel payload decryption was unsuccessful due to invalid Pre-shared Key",
            K::PskInvalid,
            caps(),
        ),
        (
            "1.3",
            "No Proposal Match Found by AWS",
            K::NoProposalMatch,
            caps(),
        ),
        (
            "1.4",
            "No Proposal Match Found. Notifying with \"No proposal chosen\"",
            K::NoProposalChosen,
            caps(),
        ),
        (
            "1.4 curly",
            "No Proposal Match Found. Notifying with “No proposal chosen”",
            K::NoProposalChosen,
            caps(),
        ),
        (
            "1.5",
            "AWS tunnel received DELETE for Phase 2 SA with SPI: 0xc5a3b2f1",
            K::Phase2SaDeleted,
            Captures {
                spi: s("0xc5a3b2f1"),
                ..caps()
            },
        ),
        (
            "1.6",
            "AWS tunnel received DELETE for IKE_SA from CGW",
            K::IkeSaDeleted,
            caps(),
        ),
        // §5.2 IKEv2
        (
            "2.1",
            "AWS tunnel DPD timed out after 5 retransmits",
            K::DpdTimeout,
            Captures {
                retry_count: Some(5),
                ..caps()
            },
        ),
        (
            "2.3",
            "AWS tunnel received DELETE for Phase 2 SA with SPI: c5a3b2f1",
            K::Phase2SaDeleted,
            Captures {
                spi: s("c5a3b2f1"),
                ..caps()
            },
        ),
        (
            "2.4",
            "AWS tunnel detected a (CHILD_REKEY) collision as CHILD_DELETE",
            K::ChildRekeyCollision,
            caps(),
        ),
        (
            "2.5",
            "AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision",
            K::RedundantSaDeleted,
            caps(),
        ),
        (
            "2.6",
            "AWS tunnel Phase 2 was unable to establish while keeping Phase 1",
            K::Phase2Failed,
            caps(),
        ),
        (
            "2.7",
            "AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder",
            K::TsUnacceptable,
            caps(),
        ),
        (
            "2.8",
            "AWS tunnel is sending AUTHENTICATION_FAILED as the response",
            K::AuthFailed,
            caps(),
        ),
        (
            "2.9",
            "AWS tunnel detected a pre-shared key mismatch with cgw: 198.51.100.7",
            K::PskMismatch,
            Captures {
                cgw_ip: s("198.51.100.7"),
                ..caps()
            },
        ),
        (
            "2.10",
            "AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: 198.51.100.7",
            K::Phase1Timeout,
            Captures {
                cgw_ip: s("198.51.100.7"),
                ..caps()
            },
        ),
        (
            "2.11",
            "No Proposal Match Found. Notifying with \"No proposal chosen\"",
            K::NoProposalChosen,
            caps(),
        ),
        (
            "2.12",
            "No Proposal Match Found by AWS",
            K::NoProposalMatch,
            caps(),
        ),
        // §5.3 negotiation
        (
            "3.1",
            "AWS tunnel processed request (id=1234) for CREATE_CHILD_SA",
            K::CreateChildSaRequestReceived,
            Captures {
                request_id: Some(1234),
                ..caps()
            },
        ),
        (
            "3.2",
            "AWS tunnel is sending response (id=1234) for CREATE_CHILD_SA",
            K::CreateChildSaResponseSent,
            Captures {
                request_id: Some(1234),
                ..caps()
            },
        ),
        (
            "3.3",
            "AWS tunnel is sending request (id=7) for CREATE_CHILD_SA",
            K::CreateChildSaRequestSent,
            Captures {
                request_id: Some(7),
                ..caps()
            },
        ),
        (
            "3.4",
            "AWS tunnel processed response (id=7) for CREATE_CHILD_SA",
            K::CreateChildSaResponseReceived,
            Captures {
                request_id: Some(7),
                ..caps()
            },
        ),
        // §5.4 BGP
        (
            "4.1",
            "AWS-side peer BGP session state has changed from Idle to Connect with neighbor 169.254.50.85",
            K::BgpStateChange,
            state("Idle", "Connect"),
        ),
        (
            "4.2",
            "AWS-side peer BGP session state has changed from Connect to OpenSent with neighbor 169.254.50.85",
            K::BgpStateChange,
            state("Connect", "OpenSent"),
        ),
        (
            "4.3",
            "AWS-side peer BGP session state has changed from OpenSent to OpenConfirm with neighbor 169.254.50.85",
            K::BgpStateChange,
            state("OpenSent", "OpenConfirm"),
        ),
        (
            "4.4",
            "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85",
            K::BgpStateChange,
            state("OpenConfirm", "Established"),
        ),
        (
            "4.5",
            "AWS-side peer BGP session state has changed from Established to Idle with neighbor 169.254.50.85",
            K::BgpStateChange,
            state("Established", "Idle"),
        ),
        (
            "4.6",
            "AWS-side peer BGP session state has changed from Connect to Active with neighbor 169.254.50.85",
            K::BgpStateChange,
            state("Connect", "Active"),
        ),
        (
            "4.x undocumented",
            "AWS-side peer BGP session state has changed from Active to OpenSent with neighbor 169.254.50.85",
            K::BgpStateChange,
            state("Active", "OpenSent"),
        ),
        (
            "4.7",
            "AWS-side peer is reporting a maximum prefix limit warning - received 95 prefixes from neighbor 169.254.50.85, limit is 100",
            K::PrefixLimitWarning,
            Captures {
                prefix_count: Some(95),
                prefix_limit: Some(100),
                neighbor_ip: s(nb),
                ..caps()
            },
        ),
        (
            "4.8",
            "AWS-side peer detected the maximum prefix limit was exceeded - received 101 prefixes from neighbor 169.254.50.85, limit is 100",
            K::PrefixLimitExceeded,
            Captures {
                prefix_count: Some(101),
                prefix_limit: Some(100),
                neighbor_ip: s(nb),
                ..caps()
            },
        ),
        (
            "4.9",
            "AWS-side peer sent a notification 6/1 (Cease/Maximum Number of Prefixes Reached) to neighbor 169.254.50.85",
            K::BgpNotification,
            notif(
                Direction::Sent,
                6,
                1,
                "Cease/Maximum Number of Prefixes Reached",
            ),
        ),
        (
            "4.10",
            "AWS-side peer received notification 6/1 (Cease/Maximum Number of Prefixes Reached) from neighbor 169.254.50.85",
            K::BgpNotification,
            notif(
                Direction::Received,
                6,
                1,
                "Cease/Maximum Number of Prefixes Reached",
            ),
        ),
        (
            "4.11",
            "AWS-side peer sent a notification 6/2 (Cease/Administrative Shutdown) to neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Sent, 6, 2, "Cease/Administrative Shutdown"),
        ),
        (
            "4.12",
            "AWS-side peer received notification 6/2 (Cease/Administrative Shutdown) from neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Received, 6, 2, "Cease/Administrative Shutdown"),
        ),
        (
            "4.13",
            "AWS-side peer sent a notification 6/3 (Cease/Peer Unconfigured) to neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Sent, 6, 3, "Cease/Peer Unconfigured"),
        ),
        (
            "4.14",
            "AWS-side peer received notification 6/3 (Cease/Peer Unconfigured) from neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Received, 6, 3, "Cease/Peer Unconfigured"),
        ),
        (
            "4.15",
            "AWS-side peer sent a notification 6/4 (Cease/Administrative Reset) to neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Sent, 6, 4, "Cease/Administrative Reset"),
        ),
        (
            "4.16",
            "AWS-side peer received notification 6/4 (Cease/Administrative Reset) from neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Received, 6, 4, "Cease/Administrative Reset"),
        ),
        (
            "4.17",
            "AWS-side peer sent a notification 6/5 (Cease/Connection Rejected) to neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Sent, 6, 5, "Cease/Connection Rejected"),
        ),
        (
            "4.18",
            "AWS-side peer received notification 6/5 (Cease/Connection Rejected) from neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Received, 6, 5, "Cease/Connection Rejected"),
        ),
        (
            "4.19",
            "AWS-side peer sent a notification 6/6 (Cease/Other Configuration Change) to neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Sent, 6, 6, "Cease/Other Configuration Change"),
        ),
        (
            "4.20",
            "AWS-side peer received notification 6/6 (Cease/Other Configuration Change) from neighbor 169.254.50.85",
            K::BgpNotification,
            notif(
                Direction::Received,
                6,
                6,
                "Cease/Other Configuration Change",
            ),
        ),
        (
            "4.21",
            "AWS-side peer sent a notification 6/7 (Cease/Connection Collision Resolution) to neighbor 169.254.50.85",
            K::BgpNotification,
            notif(
                Direction::Sent,
                6,
                7,
                "Cease/Connection Collision Resolution",
            ),
        ),
        (
            "4.22",
            "AWS-side peer received notification 6/7 (Cease/Connection Collision Resolution) from neighbor 169.254.50.85",
            K::BgpNotification,
            notif(
                Direction::Received,
                6,
                7,
                "Cease/Connection Collision Resolution",
            ),
        ),
        (
            "4.x other code",
            "AWS-side peer sent a notification 4/0 (Hold Timer Expired) to neighbor 169.254.50.85",
            K::BgpNotification,
            notif(Direction::Sent, 4, 0, "Hold Timer Expired"),
        ),
        (
            "4.23",
            "AWS-side peer sent a Hold Timer Expired notification to neighbor 169.254.50.85",
            K::HoldTimerExpired,
            only_nb.clone(),
        ),
        (
            "4.24",
            "AWS-side peer detected a bad OPEN message from neighbor 169.254.50.85 - remote AS is 65001, expected 65000",
            K::BadOpen,
            Captures {
                peer_asn: Some(65001),
                expected_asn: Some(65000),
                neighbor_ip: s(nb),
                ..caps()
            },
        ),
        (
            "4.25",
            "AWS-side peer received an OPEN message from neighbor 169.254.50.85 - version 4, AS 65000, holdtime 30, router-id 192.0.2.1",
            K::OpenReceived,
            Captures {
                peer_asn: Some(65000),
                hold_time: Some(30),
                router_id: s("192.0.2.1"),
                neighbor_ip: s(nb),
                ..caps()
            },
        ),
        (
            "4.25 stray braces",
            "AWS-side peer received an OPEN message from neighbor 169.254.50.85 - version 4, AS 65000, holdtime 30, router-id 192.0.2.1}}",
            K::OpenReceived,
            Captures {
                peer_asn: Some(65000),
                hold_time: Some(30),
                router_id: s("192.0.2.1"),
                neighbor_ip: s(nb),
                ..caps()
            },
        ),
        (
            "4.26",
            "AWS-side peer sent an OPEN message to neighbor 169.254.50.85 - version 4, AS 64512, holdtime 30, router-id 169.254.50.86",
            K::OpenSent,
            Captures {
                peer_asn: Some(64512),
                hold_time: Some(30),
                router_id: s("169.254.50.86"),
                neighbor_ip: s(nb),
                ..caps()
            },
        ),
        (
            "4.27",
            "AWS-side peer is initiating a connection (via Connect) to neighbor 169.254.50.85",
            K::ConnectInitiated,
            only_nb.clone(),
        ),
        (
            "4.28",
            "AWS-side peer sent an End-of-RIB message to neighbor 169.254.50.85",
            K::EndOfRibSent,
            only_nb.clone(),
        ),
        (
            "4.29",
            "AWS-side peer received update with attributes from neighbor 169.254.50.85 - AS path: 65000  65010 65020",
            K::UpdateReceived,
            Captures {
                as_path: s("65000 65010 65020"),
                neighbor_ip: s(nb),
                ..caps()
            },
        ),
        // §5.5 route status
        (
            "5.1",
            "DENIED due to: as-path contains our own AS",
            K::RouteDenied,
            Captures {
                denied_reason: s("as-path contains our own AS"),
                ..caps()
            },
        ),
        (
            "5.2",
            "DENIED due to: non-connected next-hop",
            K::RouteDenied,
            Captures {
                denied_reason: s("non-connected next-hop"),
                ..caps()
            },
        ),
        // Anything else.
        (
            "unknown success",
            "AWS tunnel IKE_SA established with cgw: 198.51.100.7",
            K::Unknown,
            caps(),
        ),
        (
            "wrong word",
            "AWS tunnel DPD timed out after 3 attempts",
            K::Unknown,
            caps(),
        ),
        (
            "longer message",
            "No Proposal Match Found by AWS for phase 3",
            K::Unknown,
            caps(),
        ),
        ("empty", "", K::Unknown, caps()),
        (
            "asa line",
            "Rejecting IPSec tunnel: no matching crypto map entry for remote proxy 0.0.0.0/0.0.0.0/0/0 local proxy 0.0.0.0/0.0.0.0/0/0 on interface outside",
            K::Unknown,
            caps(),
        ),
    ];
    for (id, text, kind, captures) in cases {
        let (got_kind, got) = classify(text);
        assert_eq!(got_kind, kind, "{id}: kind of {text:?}");
        assert_eq!(got, captures, "{id}: captures of {text:?}");
        if kind != K::Unknown {
            // The same text with a trailing full stop and blanks is the same message.
            assert_eq!(classify(&format!("  {text}. ")).0, kind, "{id} (padded)");
            // And it is found inside a longer text line.
            let line = format!("2025-11-08 05:40:29.641Z vpn-1234abcd-1.2.3.4 {text}");
            let (at, found, found_caps) =
                find_in_text(&line).unwrap_or_else(|| panic!("{id}: not found in {line:?}"));
            assert_eq!(found, kind, "{id}: found kind");
            assert_eq!(found_caps, captures, "{id}: found captures");
            assert!(
                line[at..].starts_with(text.split_whitespace().next().unwrap()),
                "{id}: offset"
            );
        }
    }
}

#[test]
fn generic_state_change_without_prefix() {
    let (k, c) = classify("BGP session state has changed from Active to Idle");
    assert_eq!(k, K::BgpStateChange);
    assert_eq!(c.from_state.as_deref(), Some("Active"));
    assert_eq!(c.to_state.as_deref(), Some("Idle"));
    assert_eq!(c.neighbor_ip, None);
}

#[test]
fn every_kind_has_a_distinct_snake_case_name() {
    let names: std::collections::HashSet<&str> = K::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), K::ALL.len());
    for n in names {
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
            "{n}"
        );
    }
}

#[test]
fn route_status_messages() {
    assert_eq!(
        route_message(Some("ADVERTISED"), None).0,
        K::RouteAdvertised
    );
    assert_eq!(route_message(Some("updated"), None).0, K::RouteUpdated);
    assert_eq!(
        route_message(Some("WITHDRAWN"), Some("  ")).0,
        K::RouteWithdrawn
    );
    let (k, c) = route_message(
        Some("UPDATED"),
        Some("DENIED due to: as-path contains our own AS"),
    );
    assert_eq!(k, K::RouteDenied);
    assert_eq!(
        c.denied_reason.as_deref(),
        Some("as-path contains our own AS")
    );
    let (k, c) = route_message(Some("ADVERTISED"), Some("DENIED due to: some new reason"));
    assert_eq!(k, K::RouteDenied);
    assert_eq!(c.denied_reason.as_deref(), Some("some new reason"));
    assert_eq!(route_message(Some("BOGUS"), None).0, K::Unknown);
}

#[test]
fn severities() {
    let ctx = |p1, p2| Context {
        ike_phase1_state: p1,
        ike_phase2_state: p2,
        bgp_status: None,
    };
    let up = Some(PhaseState::Established);
    let down = Some(PhaseState::Down);
    let sev = |text: &str, c: Context| {
        let (k, caps) = classify(text);
        catalogue::severity(k, &caps, c)
    };
    // Deletes are housekeeping unless the matching phase is down (reference §2.4).
    let ike_del = "AWS tunnel received DELETE for IKE_SA from CGW";
    assert_eq!(sev(ike_del, ctx(up, up)), Severity::Info);
    assert_eq!(sev(ike_del, ctx(up, down)), Severity::Info);
    assert_eq!(sev(ike_del, ctx(down, down)), Severity::Error);
    let p2_del = "AWS tunnel received DELETE for Phase 2 SA with SPI: 1";
    assert_eq!(sev(p2_del, ctx(up, up)), Severity::Info);
    assert_eq!(sev(p2_del, ctx(down, up)), Severity::Info);
    assert_eq!(sev(p2_del, ctx(up, down)), Severity::Error);
    // Benign collision, real errors, warnings.
    let none = ctx(None, None);
    assert_eq!(
        sev(
            "AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision",
            none
        ),
        Severity::Info
    );
    assert_eq!(
        sev("AWS tunnel DPD timed out after 3 retransmits", none),
        Severity::Error
    );
    assert_eq!(
        sev(
            "AWS tunnel detected a (CHILD_REKEY) collision as CHILD_DELETE",
            none
        ),
        Severity::Warning
    );
    assert_eq!(
        sev(
            "AWS-side peer BGP session state has changed from Established to Idle with neighbor 1.1.1.1",
            none
        ),
        Severity::Error
    );
    assert_eq!(
        sev(
            "AWS-side peer BGP session state has changed from Connect to Active with neighbor 1.1.1.1",
            none
        ),
        Severity::Warning
    );
    assert_eq!(
        sev(
            "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 1.1.1.1",
            none
        ),
        Severity::Info
    );
    assert_eq!(
        sev(
            "AWS-side peer sent a notification 6/7 (Cease/Connection Collision Resolution) to neighbor 1.1.1.1",
            none
        ),
        Severity::Info
    );
    assert_eq!(
        sev(
            "AWS-side peer sent a notification 6/2 (Cease/Administrative Shutdown) to neighbor 1.1.1.1",
            none
        ),
        Severity::Error
    );
    // Unknown text follows the record's state.
    assert_eq!(sev("Tunnel is happy", ctx(up, up)), Severity::Info);
    assert_eq!(sev("Tunnel is sad", ctx(down, up)), Severity::Warning);
}

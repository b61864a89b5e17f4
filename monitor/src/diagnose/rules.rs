//! The rule base: which evidence means which root cause, and what to change. One table,
//! [`RULES`], tried in order (most specific first); adding a cause is adding one entry.
//!
//! A rule matches an episode (one tunnel's trouble from its first bad record to its recovery)
//! when the episode holds at least one of `any_of`, none of `none_of`, and meets the duration,
//! IPsec and other-tunnel conditions. The remedy texts follow the AWS explanations and likely
//! causes collected in the reference (§5 messages, §8 tunnel options, §9 limits, §10 Health).

use tunnelwatch_parsers::MessageKind::{self, *};

/// What the episode's IPsec must have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipsec {
    Any,
    /// A record showed phase 1 or 2 down during the episode.
    WentDown,
    /// Every activity record of the episode showed both phases up (or there were none).
    StayedUp,
}

/// One root cause.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id (`psk-mismatch`, …), what JSON output and tests use.
    pub id: &'static str,
    pub title: &'static str,
    pub any_of: &'static [MessageKind],
    pub none_of: &'static [MessageKind],
    pub ipsec: Ipsec,
    /// The episode lasted at least this long (ms).
    pub min_duration_ms: Option<i64>,
    /// The episode lasted at most this long (ms).
    pub max_duration_ms: Option<i64>,
    /// The connection's other tunnel stayed up throughout.
    pub other_tunnel_up: bool,
    /// The episode is one of a tunnel's downs that recur after the same time up (see
    /// [`super::PERIODIC_MIN_DOWNS`]): an SA lifetime, not chance.
    pub periodic: bool,
    /// How sure the match is, 0..1, before evidence counts adjust it.
    pub confidence: f64,
    pub remedy: &'static str,
}

const HOUR: i64 = 3_600_000;

/// Kinds that say the tunnel's configuration (not AWS) is wrong.
pub const CONFIG_ERRORS: &[MessageKind] = &CONFIG_ERROR_KINDS;

const CONFIG_ERROR_KINDS: [MessageKind; 7] = [
    PskMismatch,
    PskInvalid,
    NoProposalMatch,
    NoProposalChosen,
    Phase2Failed,
    TsUnacceptable,
    AuthFailed,
];

/// A configuration error, or a BGP cause of its own: what rules out "BGP does not come up".
const CONFIG_OR_BGP_ERRORS: [MessageKind; 10] = concat(
    CONFIG_ERROR_KINDS,
    [HoldTimerExpired, BadOpen, PrefixLimitExceeded],
);

/// `a` then `b` (`N` = `A + B`), for kind lists built from others.
const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [MessageKind; A],
    b: [MessageKind; B],
) -> [MessageKind; N] {
    assert!(A + B == N);
    let mut out = [MessageKind::Unknown; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

const NONE: &[MessageKind] = &[];

/// The rules, most specific first.
pub const RULES: &[Rule] = &[
    Rule {
        id: "psk-mismatch",
        title: "Pre-shared key mismatch",
        any_of: &[PskMismatch, PskInvalid],
        none_of: NONE,
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.95,
        remedy: "The customer gateway and AWS hold different pre-shared keys for this tunnel. \
                 Compare the key on the gateway with the tunnel's key in the downloaded \
                 configuration (or set a new one with ModifyVpnTunnelOptions) and restart IKE.",
    },
    Rule {
        id: "phase1-proposal-mismatch",
        title: "Phase 1 proposal mismatch",
        any_of: &[NoProposalMatch],
        none_of: &[PskMismatch, PskInvalid],
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.9,
        remedy: "The gateway proposes phase 1 encryption, integrity or DH groups the tunnel does \
                 not allow (3DES, DH group 2 …). Align the gateway's IKE proposal with the \
                 tunnel options (Phase1EncryptionAlgorithms, Phase1IntegrityAlgorithms, \
                 Phase1DHGroupNumbers).",
    },
    Rule {
        id: "phase2-proposal-mismatch",
        title: "Phase 2 proposal mismatch",
        any_of: &[NoProposalChosen, Phase2Failed],
        none_of: &[PskMismatch, PskInvalid, TsUnacceptable],
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.9,
        remedy: "Phase 1 is up but phase 2 cannot be negotiated: the gateway's IPsec proposal \
                 (encryption, integrity, PFS DH group) is not among the tunnel's phase 2 \
                 options. Align the gateway's transform set / PFS group with the tunnel options.",
    },
    Rule {
        id: "traffic-selector-mismatch",
        title: "Traffic selector mismatch",
        any_of: &[TsUnacceptable],
        none_of: &[PskMismatch, PskInvalid],
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.9,
        remedy: "The gateway proposes traffic selectors (encryption domain) that do not match the \
                 tunnel's local/remote IPv4 network CIDRs, or a policy-based gateway uses several \
                 encryption domains (AWS supports one SA pair). Make the selectors identical or \
                 use a route-based (0.0.0.0/0) configuration.",
    },
    Rule {
        id: "authentication-failure",
        title: "IKE authentication / identity failure",
        any_of: &[AuthFailed],
        none_of: &[PskMismatch, PskInvalid],
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.75,
        remedy: "AWS cannot authenticate the gateway's IKE_AUTH: a wrong key or certificate, or an \
                 identity payload that does not match the gateway's configured IP (behind NAT \
                 the gateway must send its public IP as IDr/IDi).",
    },
    Rule {
        id: "prefix-limit",
        title: "BGP prefix limit exceeded",
        any_of: &[PrefixLimitExceeded, PrefixLimitWarning],
        none_of: NONE,
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.95,
        remedy: "The gateway advertises more prefixes than the attachment accepts (100 on a \
                 virtual private gateway, 1,000 on a transit gateway): AWS closes the session \
                 with a 6/1 notification. Summarise the routes the gateway advertises, or move \
                 the connection to a transit gateway.",
    },
    Rule {
        id: "as-path-loop",
        title: "Routes denied (AS-path loop or non-connected next hop)",
        any_of: &[RouteDenied],
        none_of: NONE,
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.85,
        remedy: "AWS rejects routes from the gateway: their AS path contains AWS's own ASN (the \
                 gateway re-advertises routes it learnt from AWS, a transit/CloudHub loop) or \
                 their next hop is not the gateway's inside address. Filter AWS-learnt routes \
                 out of the gateway's advertisements and advertise with next-hop-self.",
    },
    Rule {
        id: "bgp-misconfiguration",
        title: "BGP misconfiguration (bad OPEN, ASN mismatch)",
        any_of: &[BadOpen],
        none_of: NONE,
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.9,
        remedy: "The gateway's BGP OPEN names another ASN than the customer gateway resource's \
                 BGP ASN. Set the gateway's local AS to the customer gateway's ASN (or recreate \
                 the customer gateway with the right one).",
    },
    Rule {
        id: "lifetime-mismatch",
        title: "SA lifetime mismatch: drops recur after the same time up",
        any_of: NONE,
        none_of: CONFIG_ERRORS,
        ipsec: Ipsec::WentDown,
        min_duration_ms: None,
        max_duration_ms: Some(HOUR),
        other_tunnel_up: false,
        periodic: true,
        confidence: 0.8,
        remedy: "The tunnel drops each time it has been up for the same while: one side's phase 1 \
                 or phase 2 lifetime expires before the other rekeys (AWS rekeys \
                 RekeyMarginTimeSeconds before its own Phase1/Phase2LifetimeSeconds, 28,800 s and \
                 3,600 s by default). Set the gateway's IKE and IPsec lifetimes to the tunnel's \
                 values (or the tunnel's to the gateway's), and let the gateway rekey before \
                 expiry instead of deleting the SA.",
    },
    Rule {
        id: "dpd-flapping",
        title: "Dead peer detection timeouts (connectivity lost)",
        any_of: &[DpdTimeout, DpdPeerDead],
        none_of: CONFIG_ERRORS,
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.8,
        remedy: "The gateway stopped answering DPD: internet path loss between the gateway and \
                 AWS, an overloaded or restarting gateway, or UDP 500/4500 rate-limited on the \
                 way. If the tunnel is idle, let AWS initiate (startup action Start, DPD timeout \
                 action Restart) or keep traffic flowing; check the gateway's uplink at those \
                 times.",
    },
    Rule {
        id: "single-tunnel",
        title: "Single-tunnel operation: one tunnel down for hours",
        any_of: &[
            IkeSaDeleted,
            Phase1Timeout,
            HoldTimerExpired,
            BgpStateChange,
        ],
        none_of: CONFIG_ERRORS,
        ipsec: Ipsec::WentDown,
        min_duration_ms: Some(HOUR),
        max_duration_ms: None,
        other_tunnel_up: true,
        periodic: false,
        confidence: 0.8,
        remedy: "The connection ran on one tunnel for more than an hour (AWS sends an \
                 AWS_VPN_SINGLE_TUNNEL_NOTIFICATION for this): there is no redundancy. The \
                 gateway does not answer IKE on this tunnel: configure it (both tunnels are \
                 needed), and check that UDP 500/4500 and ESP reach this tunnel's outside IP.",
    },
    Rule {
        id: "ike-unreachable",
        title: "IKE unreachable (the gateway does not answer)",
        any_of: &[Phase1Timeout],
        none_of: CONFIG_ERRORS,
        ipsec: Ipsec::Any,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.75,
        remedy: "AWS deletes half-open IKE SAs because the gateway never completes phase 1: UDP \
                 500/4500 or ESP blocked by a firewall, the gateway unreachable or down, or a \
                 wrong remote IP on the gateway. Verify reachability and the firewall rules.",
    },
    Rule {
        id: "endpoint-replacement",
        title: "Tunnel endpoint replacement (AWS maintenance)",
        any_of: &[IkeSaDeleted],
        none_of: CONFIG_ERRORS,
        ipsec: Ipsec::WentDown,
        min_duration_ms: None,
        max_duration_ms: Some(HOUR),
        other_tunnel_up: true,
        periodic: false,
        confidence: 0.6,
        remedy: "One tunnel went down and came back with the same outside IP while the other \
                 stayed up: what an AWS endpoint replacement looks like (not your fault; only \
                 AWS Health can confirm it). Make sure the gateway prefers the up tunnel (same \
                 weight/local preference on both) and re-initiates IKE after a replacement.",
    },
    Rule {
        id: "bgp-hold-timer",
        title: "IPsec up but BGP down: hold timer expired",
        any_of: &[HoldTimerExpired],
        none_of: CONFIG_ERRORS,
        ipsec: Ipsec::StayedUp,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.8,
        remedy: "The IPsec tunnel stayed up but BGP keepalives stopped for 30 s: the gateway's BGP \
                 process stalled or restarted, TCP 179 is filtered inside the tunnel, ESP (IP \
                 protocol 50) is blocked on the path while IKE still passes, or the gateway's \
                 hold time is longer than it can keep up. Check the gateway's BGP process and \
                 its keepalive (10 s) / hold (30 s) timers, and that ESP reaches AWS.",
    },
    Rule {
        id: "bgp-not-establishing",
        title: "IPsec up but the BGP session does not come up",
        any_of: &[BgpStateChange],
        none_of: &CONFIG_OR_BGP_ERRORS,
        ipsec: Ipsec::StayedUp,
        min_duration_ms: None,
        max_duration_ms: None,
        other_tunnel_up: false,
        periodic: false,
        confidence: 0.7,
        remedy: "IPsec is up but AWS's BGP connection attempts to the gateway fail (Connect → \
                 Active) and no session establishes: nothing answers on TCP 179 inside the \
                 tunnel. Traffic inside the tunnel does not get through — ESP (IP protocol 50) \
                 blocked on the path while IKE passes, or a gateway firewall — or the gateway's \
                 BGP neighbour (the tunnel's 169.254.x.y inside address), its inside interface \
                 or its BGP process is not configured. Check the gateway's BGP configuration, \
                 then the path for ESP.",
    },
];

/// When no rule matches.
pub const UNEXPLAINED: Rule = Rule {
    id: "unexplained",
    title: "Outage without a known cause in the logs",
    any_of: NONE,
    none_of: NONE,
    ipsec: Ipsec::Any,
    min_duration_ms: None,
    max_duration_ms: None,
    other_tunnel_up: false,
    periodic: false,
    confidence: 0.3,
    remedy: "The logs show the tunnel down but no message that explains it. Look at the \
             gateway's own logs for that time, and at the evidence rows below.",
};

//! The other side of the tunnel: the customer gateway's own log lines (`gateway_events`) put
//! beside AWS's diagnosis, a verdict on which side to fix, and one merged timeline per tunnel.
//!
//! Identity ([`Resolver`]): a gateway line is about a tunnel when its peer address is the
//! tunnel's outside IP (an IKE peer) or lies in the tunnel's inside /30 (a BGP neighbour,
//! 169.254.x.y, matched against the inside address AWS's BGP log names). Lines that name no
//! address take it from another line of the same daemon and connection (charon's IKE_SA name,
//! BIRD's protocol) that does. Lines already tagged at ingest (from the config's inventory)
//! keep their tunnel.
//!
//! Verdicts ([`PAIRS`]): one table, tried in order; an entry pairs AWS causes with gateway
//! kinds seen in the same episode (from [`BEFORE_MS`] before it began to [`AFTER_MS`] after it
//! ended) and, of the cause's layer, IKE or BGP (a PSK failure hears charon and pluto, a
//! hold-timer expiry FRR and BIRD), and names the side: `customer_gateway` (its configuration or the device), `aws`
//! (the tunnel's options on the AWS side), `network` (both ends lost each other: the path
//! between) or `unknown`. A diagnosis whose episode has no gateway line at all gets a verdict
//! only when silence itself says something (the gateway down or not logging).
//!
//! Limits: the gateway's clock is trusted to within [`BEFORE_MS`]; a gateway that serves
//! several tunnels from one connection name is resolved by the address its lines carry.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use serde::Serialize;
use tunnelwatch_parsers::{GatewayKind, Severity};

use super::{ConnectionReport, Diagnosis};

/// Gateway lines this long before an episode began still belong to it (clock skew, and the
/// gateway often notices first).
pub const BEFORE_MS: i64 = 5 * 60_000;
/// … and this long after it ended.
pub const AFTER_MS: i64 = 60_000;

/// One gateway line, as the verdicts read it.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRecord {
    pub ts: i64,
    /// The tunnel (outside IP) it is about, once resolved.
    pub tunnel_ip: Option<Arc<str>>,
    pub vpn_id: Option<Arc<str>>,
    /// Where it came from (the source name): with the daemon and connection, what ties lines
    /// that name no address to those that do.
    pub source: Arc<str>,
    pub daemon: Arc<str>,
    pub kind: GatewayKind,
    pub severity: Severity,
    pub peer_ip: Option<Arc<str>>,
    /// charon's IKE_SA name or BIRD's protocol.
    pub connection: Option<Arc<str>>,
    pub direction: Option<Arc<str>>,
    pub sa: Option<Arc<str>>,
    pub notify: Option<Arc<str>>,
    pub proposals: Option<Arc<str>>,
    pub reason: Option<Arc<str>>,
    pub peer_asn: Option<i64>,
    pub expected_asn: Option<i64>,
    pub details: Arc<str>,
}

/// Which side has to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    CustomerGateway,
    Aws,
    Network,
    Unknown,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::CustomerGateway => "customer gateway",
            Side::Aws => "AWS",
            Side::Network => "the network path between them",
            Side::Unknown => "unknown",
        }
    }
}

/// Counts of one gateway kind in an episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayEvidence {
    pub daemon: Arc<str>,
    pub gateway_kind: &'static str,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// The text of the first of the most severe such lines.
    pub example: Arc<str>,
}

/// What the gateway said about a diagnosis, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayVerdict {
    pub side: Side,
    pub verdict: String,
    pub evidence: Vec<GatewayEvidence>,
    /// Proposal lists the gateway logged: what it was configured with, what it received
    /// from AWS, what was selected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proposals: Vec<(String, String)>,
}

/// Who wrote a line: its source, daemon and connection (IKE_SA name or BGP session).
type LineOwner = (Arc<str>, Arc<str>, Arc<str>);

/// Maps gateway lines to tunnels (see the module doc).
#[derive(Debug, Default)]
pub struct Resolver {
    outside: HashMap<IpAddr, (Arc<str>, Arc<str>)>,
    inside: HashMap<Ipv4Addr, (Arc<str>, Arc<str>)>,
}

fn slash30(a: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(a) & !3)
}

impl Resolver {
    /// A tunnel AWS's records name.
    pub fn tunnel(&mut self, vpn_id: &Arc<str>, tunnel_ip: &Arc<str>) {
        if let Ok(ip) = tunnel_ip.parse() {
            self.outside.insert(ip, (vpn_id.clone(), tunnel_ip.clone()));
        }
    }

    /// An inside address of a tunnel (AWS's BGP log names the gateway's).
    pub fn inside(&mut self, vpn_id: &Arc<str>, tunnel_ip: &Arc<str>, inside_ip: &str) {
        if let Ok(ip) = inside_ip.parse::<Ipv4Addr>() {
            self.inside
                .insert(slash30(ip), (vpn_id.clone(), tunnel_ip.clone()));
        }
    }

    fn of(&self, peer: &str) -> Option<&(Arc<str>, Arc<str>)> {
        let ip: IpAddr = peer.parse().ok()?;
        self.outside.get(&ip).or_else(|| match ip {
            IpAddr::V4(v4) => self.inside.get(&slash30(v4)),
            IpAddr::V6(_) => None,
        })
    }

    /// Fills `vpn_id`/`tunnel_ip` of the records that have none and can be placed.
    pub fn resolve(&self, records: &mut [GatewayRecord]) {
        // (source, daemon, connection) → peer, from the lines that name both.
        let mut peers: HashMap<LineOwner, Arc<str>> = HashMap::new();
        for r in records.iter() {
            if let (Some(c), Some(p)) = (&r.connection, &r.peer_ip)
                && self.of(p).is_some()
            {
                peers.insert((r.source.clone(), r.daemon.clone(), c.clone()), p.clone());
            }
        }
        for r in records.iter_mut() {
            if r.tunnel_ip.is_some() {
                continue;
            }
            let peer = r
                .peer_ip
                .clone()
                .filter(|p| self.of(p).is_some())
                .or_else(|| {
                    let c = r.connection.clone()?;
                    peers.get(&(r.source.clone(), r.daemon.clone(), c)).cloned()
                });
            if let Some((vpn, ip)) = peer.as_deref().and_then(|p| self.of(p)) {
                r.vpn_id = Some(vpn.clone());
                r.tunnel_ip = Some(ip.clone());
            }
        }
    }
}

/// What a verdict entry needs from the gateway's lines.
#[derive(Debug, Clone, Copy)]
pub enum Seen {
    /// At least one line of these kinds.
    Any(&'static [GatewayKind]),
    /// No gateway line at all in the episode (it was silent).
    Silent,
}

/// One pairing of AWS's causes with the gateway's evidence.
pub struct Pair {
    pub causes: &'static [&'static str],
    pub seen: Seen,
    pub side: Side,
    /// The verdict; `{daemon}` is replaced by the daemon that logged the evidence.
    pub verdict: &'static str,
}

use GatewayKind::*;

/// The verdict table, most specific first.
pub const PAIRS: &[Pair] = &[
    Pair {
        causes: &["psk-mismatch", "authentication-failure"],
        seen: Seen::Any(&[AuthFailed]),
        side: Side::CustomerGateway,
        verdict: "both ends refuse the authentication: AWS logged a pre-shared key failure and \
                  {daemon} did too. The keys differ: set the tunnel's pre-shared key from the \
                  VPN configuration on the gateway (or change it on AWS with \
                  modify-vpn-tunnel-options PreSharedKey=… and on the gateway together)",
    },
    Pair {
        causes: &["phase1-proposal-mismatch", "phase2-proposal-mismatch"],
        seen: Seen::Any(&[NoProposalChosen, ProposalList, InvalidKe]),
        side: Side::CustomerGateway,
        verdict: "no common proposal: {daemon} logged what it offered and what it received \
                  (below). Add one of the tunnel options' algorithms to the gateway's \
                  proposals, or allow the gateway's in the tunnel options \
                  (Phase1/Phase2 Encryption/Integrity/DHGroupNumbers)",
    },
    Pair {
        causes: &["traffic-selector-mismatch"],
        seen: Seen::Any(&[TsUnacceptable, ChildSaFailed]),
        side: Side::CustomerGateway,
        verdict: "the traffic selectors differ: {daemon} refused or was refused the CHILD_SA's \
                  selectors. Make the gateway's local/remote subnets match the tunnel's \
                  Local/Remote IPv4 Network CIDR (or widen those to 0.0.0.0/0)",
    },
    Pair {
        causes: &[
            "dpd-flapping",
            "ike-unreachable",
            "single-tunnel",
            "unexplained",
        ],
        seen: Seen::Any(&[PeerNotResponding, Retransmit]),
        side: Side::Network,
        verdict: "both ends lost each other: AWS's dead peer detection fired while {daemon} \
                  retransmitted to AWS without answer. The path between them drops IKE/ESP \
                  (UDP 500/4500, protocol 50): check the gateway's uplink, firewalls and NAT, \
                  not the tunnel configuration",
    },
    Pair {
        causes: &[
            "dpd-flapping",
            "ike-unreachable",
            "single-tunnel",
            "unexplained",
        ],
        seen: Seen::Any(&[DaemonStarted]),
        side: Side::CustomerGateway,
        verdict: "the gateway restarted: {daemon} started again during AWS's outage. Find why \
                  the gateway or its IKE daemon restarted (a crash, a reboot, a config reload)",
    },
    Pair {
        causes: &["dpd-flapping", "ike-unreachable"],
        seen: Seen::Silent,
        side: Side::CustomerGateway,
        verdict: "the gateway logged nothing while AWS's dead peer detection fired: it was \
                  down, hung or not logging (check that its logs reach tunnelwatch)",
    },
    Pair {
        causes: &["endpoint-replacement"],
        seen: Seen::Any(&[IkeSaDeleted, Retransmit, PeerNotResponding]),
        side: Side::Aws,
        verdict: "AWS replaced or restarted its end of this tunnel: {daemon} saw the IKE_SA \
                  deleted or its requests go unanswered while the other tunnel stayed up. \
                  Nothing to change on either side; make sure traffic fails over to the other \
                  tunnel (BGP, or the static route's preference)",
    },
    Pair {
        causes: &["lifetime-mismatch"],
        seen: Seen::Any(&[ChildSaDeleted]),
        side: Side::CustomerGateway,
        verdict: "{daemon} closed the CHILD_SA itself before AWS's lifetime ran out: the \
                  gateway's phase 2 lifetime is shorter and it does not rekey in time. Set it \
                  to the tunnel's Phase2LifetimeSeconds (3600 s by default), or lower the \
                  tunnel's to the gateway's, and let the gateway rekey before expiry",
    },
    Pair {
        causes: &["bgp-hold-timer"],
        seen: Seen::Any(&[AdminShutdown]),
        side: Side::CustomerGateway,
        verdict: "the BGP session was shut down on the gateway side: {daemon} logged an \
                  administrative shutdown. Re-enable the neighbour if it was not intended",
    },
    Pair {
        causes: &["bgp-hold-timer"],
        seen: Seen::Any(&[HoldTimerExpired]),
        side: Side::Network,
        verdict: "both BGP speakers stopped hearing each other: {daemon}'s hold timer expired \
                  too. Keepalives are lost inside the tunnel (IPsec up but traffic dropped, \
                  MTU, or a filter on TCP 179), not a BGP configuration error",
    },
    Pair {
        causes: &["bgp-hold-timer"],
        seen: Seen::Silent,
        side: Side::CustomerGateway,
        verdict: "the gateway's BGP daemon logged nothing while AWS's hold timer expired: it \
                  was stopped, hung or not logging",
    },
    Pair {
        causes: &[
            "bgp-misconfiguration",
            "bgp-not-establishing",
            "unexplained",
        ],
        seen: Seen::Any(&[BadPeerAs]),
        side: Side::CustomerGateway,
        verdict: "the autonomous system numbers disagree: {daemon} logged a bad peer AS. Set \
                  the gateway's neighbour remote-as to the VPN's Amazon-side ASN and its own \
                  ASN to the customer gateway's BGP ASN",
    },
    Pair {
        causes: &["prefix-limit"],
        seen: Seen::Any(&[PrefixLimit]),
        side: Side::CustomerGateway,
        verdict: "a prefix limit was hit: {daemon} logged it. Advertise fewer, aggregated \
                  prefixes to AWS (at most 100), or raise the gateway's own maximum-prefix",
    },
];

/// Fills each diagnosis of `report` with what the gateway said (`records`: this connection's
/// gateway lines, resolved, any order).
pub fn correlate(report: &mut ConnectionReport, records: &[GatewayRecord], end_ms: i64) {
    for d in &mut report.diagnoses {
        d.gateway = verdict(d, records, end_ms);
    }
}

fn verdict(d: &Diagnosis, records: &[GatewayRecord], end_ms: i64) -> Option<GatewayVerdict> {
    let from = d.from_ms - BEFORE_MS;
    let until = d.until_ms.unwrap_or(end_ms) + AFTER_MS;
    let layer = cause_layer(d.cause);
    let heard = |r: &&GatewayRecord| {
        r.tunnel_ip.as_deref() == Some(&*d.tunnel_ip)
            && (layer.is_none() || record_layer(r).is_none_or(|l| Some(l) == layer))
    };
    let mine: Vec<&GatewayRecord> = records
        .iter()
        .filter(heard)
        .filter(|r| r.ts >= from && r.ts <= until)
        .collect();
    let any_for_tunnel = records.iter().any(|r| heard(&r));
    for pair in PAIRS {
        if !pair.causes.contains(&d.cause) {
            continue;
        }
        match pair.seen {
            Seen::Any(kinds) => {
                let Some(first) = mine.iter().find(|r| kinds.contains(&r.kind)) else {
                    continue;
                };
                return Some(GatewayVerdict {
                    side: pair.side,
                    verdict: pair.verdict.replace("{daemon}", &first.daemon),
                    evidence: evidence(&mine),
                    proposals: proposals(&mine),
                });
            }
            // Silence means something only for a tunnel whose gateway logs reach us.
            Seen::Silent if mine.is_empty() && any_for_tunnel => {
                return Some(GatewayVerdict {
                    side: pair.side,
                    verdict: pair.verdict.to_owned(),
                    evidence: Vec::new(),
                    proposals: Vec::new(),
                });
            }
            Seen::Silent => {}
        }
    }
    (!mine.is_empty()).then(|| GatewayVerdict {
        side: Side::Unknown,
        verdict: "the gateway's lines in this window do not pair with AWS's cause".into(),
        evidence: evidence(&mine),
        proposals: proposals(&mine),
    })
}

/// What a cause or a gateway line is about. A diagnosis hears only the daemons of its cause's
/// layer (a PSK failure is not explained by a BGP hold timer a minute later, nor a hold-timer
/// expiry by an IKE failure before it); causes of no one layer (a single tunnel up, nothing
/// explained) hear every daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Ike,
    Bgp,
}

/// The causes of the IKE/IPsec layer and of the BGP layer (ids of the rule base).
const IKE_CAUSES: &[&str] = &[
    "psk-mismatch",
    "authentication-failure",
    "phase1-proposal-mismatch",
    "phase2-proposal-mismatch",
    "traffic-selector-mismatch",
    "lifetime-mismatch",
    "dpd-flapping",
    "ike-unreachable",
    "endpoint-replacement",
];
const BGP_CAUSES: &[&str] = &[
    "bgp-hold-timer",
    "bgp-misconfiguration",
    "bgp-not-establishing",
    "prefix-limit",
    "as-path-loop",
];

fn cause_layer(cause: &str) -> Option<Layer> {
    if IKE_CAUSES.contains(&cause) {
        Some(Layer::Ike)
    } else if BGP_CAUSES.contains(&cause) {
        Some(Layer::Bgp)
    } else {
        None
    }
}

/// By the daemon that wrote the line; for a writer not recognised, by its kind.
fn record_layer(r: &GatewayRecord) -> Option<Layer> {
    match &*r.daemon {
        "strongswan" | "libreswan" => Some(Layer::Ike),
        "frr" | "bird" => Some(Layer::Bgp),
        _ => match r.kind {
            BgpStateChange | BgpConnect | BgpOpen | BgpNotification | HoldTimerExpired
            | BadPeerAs | PrefixLimit | AdminShutdown => Some(Layer::Bgp),
            DaemonStarted | Unknown => None,
            _ => Some(Layer::Ike),
        },
    }
}

/// The gateway kinds worth showing: everything but routine exchange lines.
fn evidence(records: &[&GatewayRecord]) -> Vec<GatewayEvidence> {
    let mut out: Vec<GatewayEvidence> = Vec::new();
    let mut worst: Vec<Severity> = Vec::new();
    for r in records {
        if matches!(r.kind, IkeMessage | Unknown | ProposalList) && r.severity == Severity::Info {
            continue;
        }
        match out
            .iter_mut()
            .zip(&mut worst)
            .find(|(e, _)| e.gateway_kind == r.kind.as_str() && e.daemon == r.daemon)
        {
            Some((e, worst)) => {
                e.count += 1;
                e.first_ms = e.first_ms.min(r.ts);
                e.last_ms = e.last_ms.max(r.ts);
                // The example is the first of the most severe lines (a session going Down,
                // not the Idle → Connect before it).
                if r.severity > *worst {
                    *worst = r.severity;
                    e.example = r.details.clone();
                }
            }
            None => {
                worst.push(r.severity);
                out.push(GatewayEvidence {
                    daemon: r.daemon.clone(),
                    gateway_kind: r.kind.as_str(),
                    count: 1,
                    first_ms: r.ts,
                    last_ms: r.ts,
                    example: r.details.clone(),
                });
            }
        }
    }
    out
}

/// The distinct proposal lists, labelled `configured` / `received` / `selected`.
fn proposals(records: &[&GatewayRecord]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in records.iter().filter(|r| r.kind == ProposalList) {
        let (Some(label), Some(p)) = (&r.reason, &r.proposals) else {
            continue;
        };
        let item = (label.to_string(), p.to_string());
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// One line of a tunnel's merged timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub ts: i64,
    /// `aws` or the gateway daemon.
    pub side: Arc<str>,
    pub kind: Arc<str>,
    pub severity: Severity,
    pub details: Arc<str>,
}

/// Merges AWS's and the gateway's entries of one tunnel into time order (AWS first on a tie:
/// its record is the one being explained).
pub fn merge(mut aws: Vec<TimelineEntry>, gateway: Vec<TimelineEntry>) -> Vec<TimelineEntry> {
    aws.extend(gateway);
    aws.sort_by(|a, b| {
        a.ts.cmp(&b.ts)
            .then_with(|| (&*b.side == "aws").cmp(&(&*a.side == "aws")))
    });
    aws
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        ts: i64,
        kind: GatewayKind,
        peer: Option<&str>,
        connection: Option<&str>,
    ) -> GatewayRecord {
        GatewayRecord {
            ts,
            tunnel_ip: None,
            vpn_id: None,
            source: Arc::from("cgw.log"),
            daemon: Arc::from("strongswan"),
            kind,
            severity: Severity::Error,
            peer_ip: peer.map(Arc::from),
            connection: connection.map(Arc::from),
            direction: None,
            sa: None,
            notify: None,
            proposals: None,
            reason: None,
            peer_asn: None,
            expected_asn: None,
            details: Arc::from("x"),
        }
    }

    #[test]
    fn lines_are_placed_by_outside_ip_inside_slash30_or_their_connection() {
        let (vpn, t1): (Arc<str>, Arc<str>) = (Arc::from("vpn-0123abcd"), Arc::from("192.0.2.10"));
        let mut r = Resolver::default();
        r.tunnel(&vpn, &t1);
        r.inside(&vpn, &t1, "169.254.10.2");
        let mut records = vec![
            rec(1, IkeSaInitiating, Some("192.0.2.10"), Some("vpn-tunnel1")),
            rec(2, AuthFailed, None, Some("vpn-tunnel1")),
            rec(3, BgpStateChange, Some("169.254.10.1"), None),
            rec(4, AuthFailed, None, Some("other")),
            rec(5, AuthFailed, Some("203.0.113.9"), None),
        ];
        r.resolve(&mut records);
        let placed: Vec<Option<&str>> = records.iter().map(|r| r.tunnel_ip.as_deref()).collect();
        assert_eq!(
            placed,
            [
                Some("192.0.2.10"),
                Some("192.0.2.10"),
                Some("192.0.2.10"),
                None,
                None
            ]
        );
    }

    fn diagnosis(cause: &'static str, from: i64, until: i64) -> Diagnosis {
        Diagnosis {
            cause,
            title: "t",
            tunnel_ip: Arc::from("192.0.2.10"),
            from_ms: from,
            until_ms: Some(until),
            tunnel_down: true,
            confidence: 0.9,
            episodes: 1,
            recurs_after_ms: None,
            evidence: Vec::new(),
            remedy: "r",
            gateway: None,
        }
    }

    #[test]
    fn each_pair_names_its_side() {
        let at = 1_000_000;
        // The BGP kinds as FRR writes them, the others as charon does.
        let placed = |kind, ts| GatewayRecord {
            tunnel_ip: Some(Arc::from("192.0.2.10")),
            vpn_id: Some(Arc::from("vpn-0123abcd")),
            daemon: Arc::from(match kind {
                HoldTimerExpired | AdminShutdown | BadPeerAs | PrefixLimit => "frr",
                _ => "strongswan",
            }),
            ..rec(ts, kind, None, None)
        };
        let cases: &[(&str, &[GatewayKind], Option<Side>)] = &[
            ("psk-mismatch", &[AuthFailed], Some(Side::CustomerGateway)),
            (
                "phase1-proposal-mismatch",
                &[NoProposalChosen],
                Some(Side::CustomerGateway),
            ),
            (
                "traffic-selector-mismatch",
                &[TsUnacceptable],
                Some(Side::CustomerGateway),
            ),
            (
                "dpd-flapping",
                &[Retransmit, PeerNotResponding],
                Some(Side::Network),
            ),
            (
                "dpd-flapping",
                &[DaemonStarted],
                Some(Side::CustomerGateway),
            ),
            ("bgp-hold-timer", &[HoldTimerExpired], Some(Side::Network)),
            (
                "bgp-hold-timer",
                &[AdminShutdown, HoldTimerExpired],
                Some(Side::CustomerGateway),
            ),
            (
                "bgp-misconfiguration",
                &[BadPeerAs],
                Some(Side::CustomerGateway),
            ),
            ("prefix-limit", &[PrefixLimit], Some(Side::CustomerGateway)),
            ("endpoint-replacement", &[IkeSaDeleted], Some(Side::Aws)),
            (
                "lifetime-mismatch",
                &[ChildSaDeleted],
                Some(Side::CustomerGateway),
            ),
            // Lines that do not pair: said, but no side.
            ("psk-mismatch", &[Retransmit], Some(Side::Unknown)),
        ];
        for (cause, kinds, want) in cases {
            let records: Vec<GatewayRecord> = kinds.iter().map(|k| placed(*k, at + 1000)).collect();
            let got = verdict(&diagnosis(cause, at, at + 60_000), &records, at + 120_000);
            assert_eq!(got.as_ref().map(|v| v.side), *want, "{cause} {kinds:?}");
        }
        // Silence counts only for a gateway whose lines reach the store at all.
        let elsewhere = vec![placed(IkeSaEstablished, at - 3_600_000)];
        let silent = verdict(&diagnosis("dpd-flapping", at, at + 60_000), &elsewhere, at);
        assert_eq!(silent.map(|v| v.side), Some(Side::CustomerGateway));
        assert_eq!(
            verdict(&diagnosis("dpd-flapping", at, at + 60_000), &[], at),
            None
        );
        // Lines outside the episode's margins do not count.
        let late = vec![placed(AuthFailed, at + 60_000 + AFTER_MS + 1)];
        let v = verdict(
            &diagnosis("psk-mismatch", at, at + 60_000),
            &late,
            at + 200_000,
        );
        assert_eq!(v, None);
    }

    #[test]
    fn a_cause_hears_only_the_daemons_of_its_layer() {
        // One tunnel, a PSK failure at `at` and a BGP hold-timer expiry 100 s later: both
        // inside each other's margins. Each diagnosis hears only its own protocol's daemon.
        let at = 10_000_000;
        let from = |daemon: &str, kind, ts| GatewayRecord {
            tunnel_ip: Some(Arc::from("192.0.2.10")),
            daemon: Arc::from(daemon),
            ..rec(ts, kind, None, None)
        };
        let records = vec![
            from("strongswan", AuthFailed, at),
            from("frr", HoldTimerExpired, at + 100_000),
            from("bird", DaemonStarted, at + 1_000),
        ];
        let daemons = |v: &GatewayVerdict| {
            let mut d: Vec<String> = v.evidence.iter().map(|e| e.daemon.to_string()).collect();
            d.dedup();
            d
        };
        let psk = verdict(
            &diagnosis("psk-mismatch", at, at + 75_000),
            &records,
            at + 200_000,
        )
        .unwrap();
        assert_eq!(
            (psk.side, daemons(&psk)),
            (Side::CustomerGateway, vec!["strongswan".into()])
        );
        let bgp = verdict(
            &diagnosis("bgp-hold-timer", at + 100_000, at + 150_000),
            &records,
            at + 200_000,
        )
        .unwrap();
        assert_eq!(
            (bgp.side, daemons(&bgp)),
            (Side::Network, vec!["frr".into(), "bird".into()])
        );
        // A restart of the BGP daemon says nothing about DPD; IKE's silence is what counts
        // there, and only when the IKE daemon's lines reach the store at all.
        let bgp_only = vec![from("bird", DaemonStarted, at + 1_000)];
        assert_eq!(
            verdict(
                &diagnosis("dpd-flapping", at, at + 60_000),
                &bgp_only,
                at + 200_000
            ),
            None
        );
        // Causes of no one protocol (a single tunnel up) hear every daemon.
        let single = verdict(
            &diagnosis("single-tunnel", at, at + 150_000),
            &records,
            at + 200_000,
        )
        .unwrap();
        assert_eq!(daemons(&single).len(), 3);
        // An evidence line's example is its most severe line.
        let mut down = from("frr", BgpStateChange, at + 100_500);
        down.details = Arc::from("Down");
        let mut up = from("frr", BgpStateChange, at + 100_200);
        (up.severity, up.details) = (Severity::Info, Arc::from("Idle to Connect"));
        let ex = evidence(&[&up, &down]);
        assert_eq!((ex[0].count, &*ex[0].example), (2, "Down"));
        // The layer lists name rules that exist.
        for cause in IKE_CAUSES.iter().chain(BGP_CAUSES) {
            assert!(
                super::super::rules::RULES.iter().any(|r| r.id == *cause),
                "{cause} is no rule"
            );
        }
    }

    #[test]
    fn the_timeline_puts_aws_first_on_a_tie() {
        let e = |ts, side: &str| TimelineEntry {
            ts,
            side: Arc::from(side),
            kind: Arc::from("k"),
            severity: Severity::Info,
            details: Arc::from(""),
        };
        let merged = merge(
            vec![e(2, "aws"), e(5, "aws")],
            vec![e(2, "frr"), e(1, "frr")],
        );
        let order: Vec<(i64, &str)> = merged.iter().map(|e| (e.ts, &*e.side)).collect();
        assert_eq!(order, [(1, "frr"), (2, "aws"), (2, "frr"), (5, "aws")]);
    }
}

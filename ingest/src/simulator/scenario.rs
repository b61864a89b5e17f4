//! Fault scenarios: their names, what a connection needs to host one, and the timed script of
//! operations each one runs on its tunnel(s). The sequences are documented in the parent
//! module; the tunnel generator turns each [`Op`] into the records AWS would log.
//!
//! Invariants: a script's steps lie within `[start, end]`; IPsec recovery always comes after
//! the last failure step; a BGP re-establishment always comes after IPsec is back.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::model::{Connection, IkeVersion, Routing};
use tunnelwatch_parsers::PhaseState;

/// A named fault scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    PskMismatch,
    ProposalMismatch,
    DpdFlap,
    TsUnacceptable,
    BgpHoldTimer,
    PrefixLimit,
    AsPathLoop,
    EndpointReplacement,
    SingleTunnel,
    LifetimeMismatch,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::PskMismatch,
        Scenario::ProposalMismatch,
        Scenario::DpdFlap,
        Scenario::TsUnacceptable,
        Scenario::BgpHoldTimer,
        Scenario::PrefixLimit,
        Scenario::AsPathLoop,
        Scenario::EndpointReplacement,
        Scenario::SingleTunnel,
        Scenario::LifetimeMismatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::PskMismatch => "psk-mismatch",
            Scenario::ProposalMismatch => "proposal-mismatch",
            Scenario::DpdFlap => "dpd-flap",
            Scenario::TsUnacceptable => "ts-unacceptable",
            Scenario::BgpHoldTimer => "bgp-hold-timer",
            Scenario::PrefixLimit => "prefix-limit",
            Scenario::AsPathLoop => "as-path-loop",
            Scenario::EndpointReplacement => "endpoint-replacement",
            Scenario::SingleTunnel => "single-tunnel",
            Scenario::LifetimeMismatch => "lifetime-mismatch",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Scenarios that only make sense on a BGP connection.
    pub fn needs_bgp(self) -> bool {
        matches!(
            self,
            Scenario::BgpHoldTimer | Scenario::PrefixLimit | Scenario::AsPathLoop
        )
    }

    /// Both tunnels of the connection are affected (the CGW advertises the same to both).
    pub fn both_tunnels(self) -> bool {
        matches!(self, Scenario::PrefixLimit | Scenario::AsPathLoop)
    }

    /// Longest span from the incident start to its last record (for placement).
    pub(crate) fn max_span_ms(self) -> i64 {
        MIN * match self {
            Scenario::PskMismatch => 62,
            Scenario::ProposalMismatch => 47,
            Scenario::DpdFlap => 62,
            Scenario::TsUnacceptable => 42,
            Scenario::BgpHoldTimer => 32,
            Scenario::PrefixLimit => 42,
            Scenario::AsPathLoop => 61,
            Scenario::EndpointReplacement => 12,
            Scenario::SingleTunnel => 212,
            Scenario::LifetimeMismatch => 100,
        }
    }

    /// Can this connection host the scenario as it is?
    pub(crate) fn fits(self, c: &Connection, tunnel: usize) -> bool {
        (!self.needs_bgp() || c.is_bgp())
            && (self != Scenario::TsUnacceptable || c.ike_version == IkeVersion::Ikev2)
            && (self != Scenario::DpdFlap || c.tunnels[tunnel].dpd_enabled)
    }

    /// Changes the connection so that it can host the scenario (named scenarios only, on a
    /// connection without other incidents).
    pub(crate) fn adapt(self, c: &mut Connection, tunnel: usize) {
        if self.needs_bgp() {
            c.routing = Routing::Bgp;
        }
        if self == Scenario::TsUnacceptable {
            c.ike_version = IkeVersion::Ikev2;
        }
        if self == Scenario::DpdFlap {
            c.tunnels[tunnel].dpd_enabled = true;
        }
    }

    /// Relative weight among random faults.
    pub(crate) fn random_weight(self) -> u32 {
        match self {
            Scenario::DpdFlap => 30,
            Scenario::EndpointReplacement => 15,
            Scenario::BgpHoldTimer => 12,
            Scenario::PskMismatch | Scenario::ProposalMismatch | Scenario::AsPathLoop => 8,
            Scenario::TsUnacceptable | Scenario::SingleTunnel => 7,
            Scenario::PrefixLimit => 5,
            // Named only: it needs ~1.5 h of one tunnel, and keeping it out of the random mix
            // keeps the random faults of existing seeds as they were.
            Scenario::LifetimeMismatch => 0,
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
/// How often a `lifetime-mismatch` tunnel drops.
const LIFETIME_DROPS: usize = 4;

/// An activity message an incident logs (the routine ones are produced by the tunnel itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultMsg {
    DeleteIkeSa,
    DeletePhase2Sa,
    DpdTimeout,
    PeerDead,
    PskMismatch,
    AuthFailed,
    PskInvalid,
    NoProposalMatch,
    NoProposalChosen,
    Phase2Failed,
    Phase1Timeout,
    /// 3.3 from AWS (a new message ID), as part of a failing or succeeding negotiation.
    AwsRequest,
    TsUnacceptable,
}

/// Who initiates the first exchange on a recovered IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Initiator {
    Aws,
    Cgw,
}

/// RouteStatus of a looped (denied) route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoopStatus {
    Advertised,
    Updated,
}

/// One operation of a script, run by the tunnel generator at its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// One activity record with these phase states.
    Ike {
        p1: PhaseState,
        p2: PhaseState,
        msg: FaultMsg,
    },
    /// IPsec is back: the first exchange on the new IKE SA, both phases established.
    Recover {
        via: Initiator,
        reset_counters: bool,
    },
    /// Hold timer expired, session `Established→Idle`.
    BgpHoldExpired,
    /// One connect attempt that fails (`→Connect`, `connect_initiated`, `Connect→Active`).
    BgpRetry,
    /// Full session establishment with End-of-RIB and the CGW's routes.
    BgpEstablish,
    /// The CGW floods prefixes up to `limit + 1`: warning, exceeded, 6/1, `Established→Idle`.
    PrefixFlood { limit: u32 },
    /// Denied routes whose AS path holds AWS's own AS.
    LoopedRoutes { status: LoopStatus, count: u8 },
    /// The CGW withdraws the looped routes.
    LoopWithdrawn { count: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub tunnel: u8,
    pub at: i64,
    pub op: Op,
}

/// A scenario instance's timed operations and the intervals during which each tunnel carries no
/// traffic (IPsec or BGP down), for the traffic model.
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    pub steps: Vec<Step>,
    pub end: i64,
    pub traffic_down: Vec<(u8, i64, i64)>,
}

struct Builder<'a> {
    rng: &'a mut ChaCha8Rng,
    bgp: bool,
    v2: bool,
    script: Script,
}

use PhaseState::{Down, Established, Negotiating, Rekeying};

impl Builder<'_> {
    fn at(&mut self, tunnel: u8, at: i64, op: Op) {
        self.script.end = self.script.end.max(at);
        self.script.steps.push(Step { tunnel, at, op });
    }

    fn ike(&mut self, tunnel: u8, at: i64, p1: PhaseState, p2: PhaseState, msg: FaultMsg) {
        self.at(tunnel, at, Op::Ike { p1, p2, msg });
    }

    fn jitter(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    /// The BGP side of an IPsec outage: connectivity lost at `lost`, IPsec back at `back`.
    /// Returns when the session is established again (or `back` for static routing).
    fn bgp_outage(&mut self, tunnel: u8, lost: i64, back: i64) -> i64 {
        if !self.bgp {
            self.script.traffic_down.push((tunnel, lost, back));
            return back;
        }
        let hold = lost + self.jitter(20 * SEC, 30 * SEC);
        self.at(tunnel, hold, Op::BgpHoldExpired);
        let first = hold + self.jitter(SEC, 5 * SEC);
        self.bgp_retries(tunnel, first, back);
        let up = back + self.jitter(2 * SEC, 5 * SEC);
        self.at(tunnel, up, Op::BgpEstablish);
        // The establishment sequence itself takes up to ~25 s.
        self.script.end = self.script.end.max(up + 30 * SEC);
        self.script.traffic_down.push((tunnel, lost, up + 30 * SEC));
        up
    }

    /// Failed connect attempts every ~120 s from `first` while before `until`.
    fn bgp_retries(&mut self, tunnel: u8, first: i64, until: i64) {
        let mut t = first;
        while t + 40 * SEC < until {
            self.at(tunnel, t, Op::BgpRetry);
            t += 120 * SEC + self.jitter(0, 3 * SEC);
        }
    }

    /// Repeats `pair` (one or two failure records) every `lo..hi` from `from` while before
    /// `until`.
    fn repeat(&mut self, tunnel: u8, from: i64, until: i64, lo: i64, hi: i64, steps: &[Op]) {
        let mut t = from;
        while t < until {
            let mut u = t;
            for op in steps {
                self.at(tunnel, u, *op);
                u += self.jitter(20, 120);
            }
            t += self.jitter(lo, hi);
        }
    }
}

/// Builds the script of `scenario` on `tunnels` of `c`, starting at `start`.
pub(crate) fn build(
    scenario: Scenario,
    c: &Connection,
    tunnels: &[u8],
    start: i64,
    rng: &mut ChaCha8Rng,
) -> Script {
    let mut b = Builder {
        bgp: c.is_bgp(),
        v2: c.ike_version == IkeVersion::Ikev2,
        rng,
        script: Script {
            end: start,
            ..Default::default()
        },
    };
    let t = tunnels[0];
    match scenario {
        Scenario::PskMismatch => {
            let dur = b.jitter(15 * MIN, 60 * MIN);
            let back = start + dur;
            b.ike(t, start, Down, Down, FaultMsg::DeleteIkeSa);
            let first = start + b.jitter(5 * SEC, 30 * SEC);
            let ops: &[Op] = if b.v2 {
                &[
                    Op::Ike {
                        p1: Negotiating,
                        p2: Down,
                        msg: FaultMsg::PskMismatch,
                    },
                    Op::Ike {
                        p1: Down,
                        p2: Down,
                        msg: FaultMsg::AuthFailed,
                    },
                ]
            } else {
                &[Op::Ike {
                    p1: Down,
                    p2: Down,
                    msg: FaultMsg::PskInvalid,
                }]
            };
            b.repeat(t, first, back - 10 * SEC, 45 * SEC, 75 * SEC, ops);
            b.at(
                t,
                back,
                Op::Recover {
                    via: Initiator::Cgw,
                    reset_counters: false,
                },
            );
            b.bgp_outage(t, start, back);
        }
        Scenario::ProposalMismatch => {
            let dur = b.jitter(10 * MIN, 45 * MIN);
            let back = start + dur;
            let first = start + b.jitter(5 * SEC, 30 * SEC);
            if b.rng.random_bool(0.5) {
                b.ike(t, start, Down, Down, FaultMsg::DeleteIkeSa);
                let ops = [Op::Ike {
                    p1: Down,
                    p2: Down,
                    msg: FaultMsg::NoProposalMatch,
                }];
                b.repeat(t, first, back - 10 * SEC, 50 * SEC, 70 * SEC, &ops);
            } else {
                b.ike(t, start, Established, Down, FaultMsg::DeletePhase2Sa);
                let ops: &[Op] = if b.v2 {
                    &[
                        Op::Ike {
                            p1: Established,
                            p2: Negotiating,
                            msg: FaultMsg::NoProposalChosen,
                        },
                        Op::Ike {
                            p1: Established,
                            p2: Down,
                            msg: FaultMsg::Phase2Failed,
                        },
                    ]
                } else {
                    &[Op::Ike {
                        p1: Established,
                        p2: Down,
                        msg: FaultMsg::NoProposalChosen,
                    }]
                };
                b.repeat(t, first, back - 10 * SEC, 50 * SEC, 70 * SEC, ops);
            }
            b.at(
                t,
                back,
                Op::Recover {
                    via: Initiator::Cgw,
                    reset_counters: false,
                },
            );
            b.bgp_outage(t, start, back);
        }
        Scenario::DpdFlap => {
            let flaps = b.jitter(2, 4);
            let mut lost = start;
            for _ in 0..flaps {
                let dead = lost + b.jitter(35 * SEC, 45 * SEC);
                let msg = if b.v2 {
                    FaultMsg::DpdTimeout
                } else {
                    FaultMsg::PeerDead
                };
                b.ike(t, dead, Down, Down, msg);
                let back = lost + b.jitter(60 * SEC, 4 * MIN);
                let back = back.max(dead + 10 * SEC);
                b.at(
                    t,
                    back,
                    Op::Recover {
                        via: Initiator::Cgw,
                        reset_counters: false,
                    },
                );
                let up = b.bgp_outage(t, lost, back);
                lost = up + b.jitter(3 * MIN, 10 * MIN);
            }
        }
        Scenario::TsUnacceptable => {
            let dur = b.jitter(10 * MIN, 40 * MIN);
            let back = start + dur;
            b.ike(t, start, Established, Rekeying, FaultMsg::AwsRequest);
            let reject = start + b.jitter(20, 200);
            b.ike(t, reject, Established, Down, FaultMsg::TsUnacceptable);
            let ops = [
                Op::Ike {
                    p1: Established,
                    p2: Negotiating,
                    msg: FaultMsg::AwsRequest,
                },
                Op::Ike {
                    p1: Established,
                    p2: Down,
                    msg: FaultMsg::TsUnacceptable,
                },
            ];
            let first = start + b.jitter(60 * SEC, 90 * SEC);
            b.repeat(t, first, back - 10 * SEC, 60 * SEC, 90 * SEC, &ops);
            b.at(
                t,
                back,
                Op::Recover {
                    via: Initiator::Aws,
                    reset_counters: false,
                },
            );
            b.bgp_outage(t, start, back);
        }
        Scenario::BgpHoldTimer => {
            let dur = b.jitter(5 * MIN, 30 * MIN);
            b.at(t, start, Op::BgpHoldExpired);
            let back = start + dur;
            let first = start + b.jitter(SEC, 5 * SEC);
            b.bgp_retries(t, first, back);
            b.at(t, back, Op::BgpEstablish);
            b.script.end = b.script.end.max(back + 30 * SEC);
            b.script.traffic_down.push((t, start, back + 30 * SEC));
        }
        Scenario::PrefixLimit => {
            let dur = b.jitter(10 * MIN, 40 * MIN);
            let limit = c.gateway.prefix_limit();
            for &t in tunnels {
                let flood = start + b.jitter(0, 3 * SEC);
                b.at(t, flood, Op::PrefixFlood { limit });
                let back = start + dur + b.jitter(0, 5 * SEC);
                b.at(t, back, Op::BgpEstablish);
                b.script.end = b.script.end.max(back + 30 * SEC);
                // The flood takes at most limit × 45 ms before the session drops.
                b.script
                    .traffic_down
                    .push((t, flood + i64::from(limit) * 45, back + 30 * SEC));
            }
        }
        Scenario::AsPathLoop => {
            let dur = b.jitter(10 * MIN, 60 * MIN);
            let count = b.jitter(1, 3) as u8;
            for &t in tunnels {
                let first = start + b.jitter(0, 2 * SEC);
                b.at(
                    t,
                    first,
                    Op::LoopedRoutes {
                        status: LoopStatus::Advertised,
                        count,
                    },
                );
                let end = start + dur;
                let mut u = first + b.jitter(5 * MIN, 10 * MIN);
                while u + MIN < end {
                    b.at(
                        t,
                        u,
                        Op::LoopedRoutes {
                            status: LoopStatus::Updated,
                            count,
                        },
                    );
                    u += b.jitter(5 * MIN, 10 * MIN);
                }
                let withdrawn = end + b.jitter(0, 2 * SEC);
                b.at(t, withdrawn, Op::LoopWithdrawn { count });
            }
        }
        Scenario::EndpointReplacement => {
            let dur = b.jitter(3 * MIN, 10 * MIN);
            let back = start + dur;
            b.ike(t, start, Down, Down, FaultMsg::DeleteIkeSa);
            let via = if b.v2 { Initiator::Aws } else { Initiator::Cgw };
            b.at(
                t,
                back,
                Op::Recover {
                    via,
                    reset_counters: true,
                },
            );
            b.bgp_outage(t, start, back);
        }
        Scenario::SingleTunnel => {
            let dur = b.jitter(125 * MIN, 210 * MIN);
            let back = start + dur;
            b.ike(t, start, Down, Down, FaultMsg::DeleteIkeSa);
            if b.v2 {
                let ops = [Op::Ike {
                    p1: Down,
                    p2: Down,
                    msg: FaultMsg::Phase1Timeout,
                }];
                let first = start + b.jitter(60 * SEC, 5 * MIN);
                b.repeat(t, first, back - 30 * SEC, 290 * SEC, 310 * SEC, &ops);
            }
            b.at(
                t,
                back,
                Op::Recover {
                    via: Initiator::Cgw,
                    reset_counters: false,
                },
            );
            b.bgp_outage(t, start, back);
        }
        Scenario::LifetimeMismatch => {
            // The gateway's phase 2 lifetime is shorter than the tunnel's and the gateway lets
            // its SA expire instead of rekeying: each time the SA has been up that long, the
            // gateway deletes it and AWS renegotiates a minute or two later.
            let lifetime = b.jitter(20 * MIN, 30 * MIN);
            let mut drop = start;
            for _ in 0..LIFETIME_DROPS {
                b.ike(t, drop, Established, Down, FaultMsg::DeletePhase2Sa);
                let back = drop + b.jitter(40 * SEC, 120 * SEC);
                b.at(
                    t,
                    back,
                    Op::Recover {
                        via: Initiator::Aws,
                        reset_counters: false,
                    },
                );
                b.bgp_outage(t, drop, back);
                drop = back + lifetime + b.jitter(-10 * SEC, 10 * SEC);
            }
        }
    }
    b.script.steps.sort_by_key(|s| (s.tunnel, s.at));
    b.script
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::model::FleetModel;
    use rand::SeedableRng;

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("nope"), None);
    }

    #[test]
    fn scripts_stay_within_their_span() {
        let m = FleetModel::generate(40, 9);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for s in Scenario::ALL {
            for c in &m.connections {
                let mut c = c.clone();
                s.adapt(&mut c, 0);
                let tunnels: &[u8] = if s.both_tunnels() { &[0, 1] } else { &[0] };
                let script = build(s, &c, tunnels, 0, &mut rng);
                assert!(script.end <= s.max_span_ms(), "{s}: {}", script.end);
                assert!(script.steps.iter().all(|st| st.at >= 0));
            }
        }
    }
}

//! One tunnel's state machine: the IKE phase states, the BGP session, the traffic counters, and
//! the routing rule that turns them into TunnelState (DESIGN §5, reference §6 rule 1).
//!
//! Invariants: state changes only when a record says so and holds in between (a tunnel that
//! came up at 09:00 and logged nothing since is up at 17:00); a value that no record has set yet
//! is unknown (`None`), never 0.
//!
//! Rules:
//! - IPsec is up when phase 1 and phase 2 are both `established` or `rekeying`; a known-down
//!   phase makes it down even while the other phase is unknown.
//! - Static routing: TunnelState = IPsec up.
//! - BGP routing: TunnelState = the BGP session is `Established`. Until the first BGP record that
//!   says anything about the session (BGP logs only record changes, so a session established
//!   before the logs start is silent), the IPsec state stands in for it.
//! - Counters: a delta is `current − previous`; a value below the previous one is a reset (the
//!   counter restarted from zero, e.g. after an endpoint replacement), whose delta is the value
//!   itself. The first sample of a tunnel is only a baseline.

use tunnelwatch_parsers::PhaseState;

use crate::observation::ObservationBody;

/// How a connection routes: decides what TunnelState follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Routing {
    Static,
    Bgp,
}

impl Routing {
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::Static => "static",
            Routing::Bgp => "bgp",
        }
    }
}

/// A counter delta: bytes since the previous sample, over `interval_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub bytes: u64,
    pub interval_ms: i64,
    /// The counter went backwards (reset) before this sample.
    pub reset: bool,
}

/// What applying one observation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The BGP session left `Established`.
    pub flap: bool,
    pub data_in: Option<Delta>,
    pub data_out: Option<Delta>,
}

/// The state of one tunnel (cheap to clone: the live view applies buffered records to a copy).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TunnelCore {
    pub phase1: Option<PhaseState>,
    pub phase2: Option<PhaseState>,
    /// `Some(true)` while the BGP session is `Established`; `None` until a BGP record says.
    pub bgp_established: Option<bool>,
    last_in: Option<(i64, u64)>,
    last_out: Option<(i64, u64)>,
    pub bytes_in_total: u64,
    pub bytes_out_total: u64,
}

fn counter(last: &mut Option<(i64, u64)>, ts: i64, value: Option<u64>) -> Option<Delta> {
    let v = value?;
    let delta = last.map(|(pts, pv)| Delta {
        bytes: if v >= pv { v - pv } else { v },
        interval_ms: ts - pts,
        reset: v < pv,
    });
    *last = Some((ts, v));
    delta
}

impl TunnelCore {
    /// IPsec up: both phases established or rekeying.
    pub fn ipsec_up(&self) -> Option<bool> {
        match (self.phase1, self.phase2) {
            (Some(a), Some(b)) => Some(a.is_up() && b.is_up()),
            (Some(p), None) | (None, Some(p)) if !p.is_up() => Some(false),
            _ => None,
        }
    }

    /// TunnelState under `routing`: `None` while nothing is known.
    pub fn tunnel_state(&self, routing: Routing) -> Option<bool> {
        match routing {
            Routing::Static => self.ipsec_up(),
            Routing::Bgp => self.bgp_established.or_else(|| self.ipsec_up()),
        }
    }

    pub fn apply(&mut self, ts: i64, body: &ObservationBody) -> Applied {
        let mut out = Applied::default();
        match body {
            ObservationBody::Activity { phase1, phase2, .. } => {
                if phase1.is_some() {
                    self.phase1 = *phase1;
                }
                if phase2.is_some() {
                    self.phase2 = *phase2;
                }
            }
            ObservationBody::Bgp { session, .. } => {
                if let Some(s) = session {
                    out.flap = self.bgp_established == Some(true) && !s;
                    self.bgp_established = Some(*s);
                }
            }
            ObservationBody::Traffic {
                bytes_in,
                bytes_out,
                ..
            } => {
                out.data_in = counter(&mut self.last_in, ts, *bytes_in);
                out.data_out = counter(&mut self.last_out, ts, *bytes_out);
                self.bytes_in_total += out.data_in.map_or(0, |d| d.bytes);
                self.bytes_out_total += out.data_out.map_or(0, |d| d.bytes);
            }
        }
        out
    }
}

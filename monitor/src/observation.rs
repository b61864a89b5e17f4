//! What the monitor needs of a log record: its event time, its tunnel and the few values that
//! move a tunnel's state or its counters. Built from a parsed [`Event`] (live pipelines) or
//! from stored columns (recomputation from the store), so both paths run the same rules.
//!
//! Invariant: an observation always names its tunnel; records without identity are refused
//! with [`MonitorError::NoTunnel`].

use std::sync::Arc;

use tunnelwatch_parsers::{BgpType, Event, EventBody, MessageKind, PhaseState};

use crate::error::MonitorError;

/// One record, reduced to what the state machines and metrics use.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Event time, epoch ms UTC.
    pub ts: i64,
    pub vpn_id: Arc<str>,
    pub tunnel_ip: Arc<str>,
    pub body: ObservationBody,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ObservationBody {
    /// A tunnel activity (IKE/IPsec/DPD) record: the phase states it reported (`None` when the
    /// record did not carry one) and its message kind.
    Activity {
        phase1: Option<PhaseState>,
        phase2: Option<PhaseState>,
        kind: MessageKind,
    },
    /// A tunnel BGP record: what it says about the session (see [`bgp_session`]) and its kind.
    Bgp {
        session: Option<bool>,
        kind: MessageKind,
    },
    /// A traffic counter sample (cumulative counters).
    Traffic {
        bytes_in: Option<u64>,
        bytes_out: Option<u64>,
        concentrator_id: Option<Arc<str>>,
    },
}

impl ObservationBody {
    pub fn kind(&self) -> Option<MessageKind> {
        match self {
            ObservationBody::Activity { kind, .. } | ObservationBody::Bgp { kind, .. } => {
                Some(*kind)
            }
            ObservationBody::Traffic { .. } => None,
        }
    }
}

/// What a BGP record says about the session being `Established`:
///
/// - a `bgp_state_change` names the new state: `Some(to == Established)`;
/// - otherwise a `BGPStatus` record's `status` is the fallback: `UP` ⇒ established, `DOWN` ⇒
///   not (reference §5.4 derives `status` from the session state);
/// - RouteStatus records (and anything else) say nothing about the session: `None`.
pub fn bgp_session(
    kind: MessageKind,
    record_type: &str,
    status: Option<&str>,
    to_state: Option<&str>,
) -> Option<bool> {
    if kind == MessageKind::BgpStateChange
        && let Some(to) = to_state
    {
        return Some(to.trim().eq_ignore_ascii_case("established"));
    }
    if !record_type.eq_ignore_ascii_case("BGPStatus") {
        return None;
    }
    match status.map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("UP") => Some(true),
        Some(s) if s.eq_ignore_ascii_case("DOWN") => Some(false),
        _ => None,
    }
}

/// The catalogue kind named `s` (`unknown` for a name the catalogue does not have).
pub fn kind_from_str(s: &str) -> MessageKind {
    // A hash lookup: a linear scan of the catalogue's names was the hot spot of reading
    // records back (metrics rebuild, diagnose).
    static BY_NAME: std::sync::OnceLock<
        std::collections::HashMap<&'static str, MessageKind, foldhash::fast::FixedState>,
    > = std::sync::OnceLock::new();
    BY_NAME
        .get_or_init(|| MessageKind::ALL.iter().map(|k| (k.as_str(), *k)).collect())
        .get(s)
        .copied()
        .unwrap_or(MessageKind::Unknown)
}

impl Observation {
    /// Reduces a parsed event; refuses one without tunnel identity.
    pub fn from_event(e: &Event) -> Result<Observation, MonitorError> {
        let Some(tunnel) = &e.tunnel else {
            return Err(MonitorError::NoTunnel {
                input: e.source.to_string(),
                position: e.position.to_string(),
            });
        };
        let body = match &e.body {
            EventBody::Activity(a) => ObservationBody::Activity {
                phase1: a.ike_phase1_state,
                phase2: a.ike_phase2_state,
                kind: a.message.kind,
            },
            EventBody::Bgp(b) => {
                let record_type = match &b.kind {
                    BgpType::BgpStatus => "BGPStatus",
                    BgpType::RouteStatus => "RouteStatus",
                    BgpType::Other(s) => s.as_str(),
                };
                ObservationBody::Bgp {
                    session: bgp_session(
                        b.message.kind,
                        record_type,
                        b.status.as_deref(),
                        b.message.captures().to_state.as_deref(),
                    ),
                    kind: b.message.kind,
                }
            }
            EventBody::Traffic(t) => ObservationBody::Traffic {
                bytes_in: t.bytes_in,
                bytes_out: t.bytes_out,
                concentrator_id: t.concentrator_id.as_deref().map(Arc::from),
            },
            EventBody::Gateway(_) => {
                return Err(MonitorError::GatewaySide {
                    input: e.source.to_string(),
                    position: e.position.to_string(),
                });
            }
            // An AWS Health event is about connections, never one tunnel's state.
            EventBody::Health(_) => {
                return Err(MonitorError::NoTunnel {
                    input: e.source.to_string(),
                    position: e.position.to_string(),
                });
            }
        };
        Ok(Observation {
            ts: e.ts,
            vpn_id: tunnel.vpn_id.clone(),
            tunnel_ip: tunnel.tunnel_ip.clone(),
            body,
        })
    }
}

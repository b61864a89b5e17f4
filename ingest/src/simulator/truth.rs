//! Ground truth: every injected incident with what it emitted, written as `truth.json` so
//! tests and users can check the rest of the pipeline against it.
//!
//! Invariants: built only from records actually emitted (final times, after rate limiting);
//! incident kinds are the distinct `message_kind`s in order of first appearance (ties: tunnel
//! order); down intervals are the spans between the record that took a tunnel's IPsec (both
//! phases established or rekeying) or BGP session (Established) down and the record that
//! brought it back; `tunnel_state_down` is the one the `TunnelState` metric follows (IPsec for
//! static routing, BGP for BGP routing, DESIGN §5). `until` is absent when the simulation ended
//! first.
//!
//! The file is not a log: [`is_truth_file`] recognises it (its name and its `generator`), so
//! that ingesting a simulated directory (`crate::files::expand`) passes it over.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use tunnelwatch_parsers::MessageKind;
use tunnelwatch_parsers::time::format_ms;

use super::gateway::GatewaySides;
use super::model::{Connection, FleetModel, Routing};
use super::plan::{Injected, Plan};
use super::{SimConfig, StreamKind};

/// The name of the ground-truth file in a simulated directory.
pub const TRUTH_FILE: &str = "truth.json";

/// The `generator` the ground truth names first.
pub const GENERATOR: &str = "tunnelwatch simulate";

/// Is `path` a ground-truth file the simulator wrote: named [`TRUTH_FILE`] and opening with
/// `{"generator": "tunnelwatch simulate"` (whitespace aside)? A log that happens to bear the name
/// is not one. Unreadable files are not (whoever reads them next reports the error).
pub fn is_truth_file(path: &Path) -> bool {
    if path.file_name().is_none_or(|n| n != TRUTH_FILE) {
        return false;
    }
    let mut head = Vec::with_capacity(128);
    let read = std::fs::File::open(path).and_then(|f| f.take(128).read_to_end(&mut head));
    if read.is_err() {
        return false;
    }
    let squeeze = |bytes: &mut Vec<u8>| bytes.retain(|b| !b.is_ascii_whitespace());
    let mut signature = format!("{{\"generator\":\"{GENERATOR}\"").into_bytes();
    squeeze(&mut signature);
    squeeze(&mut head);
    head.starts_with(&signature)
}

/// A down interval as tracked while generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from_ms: i64,
    pub until_ms: Option<i64>,
}

/// What one tunnel emitted for one incident.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentPart {
    pub first_ms: i64,
    pub last_ms: i64,
    pub records: u64,
    /// Distinct kinds with the time each first appeared.
    pub kinds: Vec<(MessageKind, i64)>,
    pub ipsec_down: Vec<Span>,
    pub bgp_down: Vec<Span>,
}

/// Everything one tunnel contributed to the truth, by incident id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TunnelPart {
    pub incidents: BTreeMap<u32, IncidentPart>,
}

impl TunnelPart {
    fn part(&mut self, id: u32, ts: i64) -> &mut IncidentPart {
        self.incidents.entry(id).or_insert_with(|| IncidentPart {
            first_ms: ts,
            last_ms: ts,
            ..Default::default()
        })
    }

    pub(crate) fn record(&mut self, id: u32, ts: i64, kind: Option<MessageKind>) {
        let p = self.part(id, ts);
        p.first_ms = p.first_ms.min(ts);
        p.last_ms = p.last_ms.max(ts);
        p.records += 1;
        if let Some(k) = kind
            && !p.kinds.iter().any(|(seen, _)| *seen == k)
        {
            p.kinds.push((k, ts));
        }
    }

    pub(crate) fn ipsec_down(&mut self, id: u32, ts: i64) {
        self.part(id, ts).ipsec_down.push(Span {
            from_ms: ts,
            until_ms: None,
        });
    }

    pub(crate) fn ipsec_up(&mut self, id: u32, ts: i64) {
        if let Some(s) = self.part(id, ts).ipsec_down.last_mut() {
            s.until_ms = Some(ts);
        }
    }

    pub(crate) fn bgp_down(&mut self, id: u32, ts: i64) {
        self.part(id, ts).bgp_down.push(Span {
            from_ms: ts,
            until_ms: None,
        });
    }

    pub(crate) fn bgp_up(&mut self, id: u32, ts: i64) {
        if let Some(s) = self.part(id, ts).bgp_down.last_mut() {
            s.until_ms = Some(ts);
        }
    }
}

/// An interval as written in `truth.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub from: String,
    pub from_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
}

impl From<Span> for Interval {
    fn from(s: Span) -> Interval {
        Interval {
            from: format_ms(s.from_ms),
            from_ms: s.from_ms,
            until: s.until_ms.map(format_ms),
            until_ms: s.until_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelTruth {
    pub tunnel_ip: String,
    pub records: u64,
    pub kinds: Vec<&'static str>,
    pub ipsec_down: Vec<Interval>,
    pub bgp_down: Vec<Interval>,
    /// When `TunnelState` is 0 because of this incident.
    pub tunnel_state_down: Vec<Interval>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentTruth {
    pub id: u32,
    pub scenario: &'static str,
    pub injected: Injected,
    pub vpn_id: String,
    pub tunnel_ips: Vec<String>,
    pub start: String,
    pub start_ms: i64,
    pub end: String,
    pub end_ms: i64,
    pub records: u64,
    /// Distinct message kinds in order of first appearance.
    pub kinds: Vec<&'static str>,
    pub tunnels: Vec<TunnelTruth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamNames {
    pub activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp: Option<String>,
    pub traffic: String,
    /// The customer gateway's logs (`simulate --gateway`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_ike: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_bgp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionTruth {
    #[serde(flatten)]
    pub connection: Connection,
    /// Log stream names of tunnel 1 and tunnel 2 (file names add `.log`).
    pub streams: [StreamNames; 2],
}

/// The content of `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    pub generator: &'static str,
    pub seed: u64,
    pub format: &'static str,
    pub start: String,
    pub start_ms: i64,
    pub end: String,
    pub end_ms: i64,
    pub rate_limit: Option<u32>,
    pub connections: Vec<ConnectionTruth>,
    /// Sorted by start time (then id).
    pub incidents: Vec<IncidentTruth>,
}

/// The stream name of `kind` for tunnel `t` of `c` (a gateway stream is named after the
/// daemon `gateway` runs for it).
pub fn stream_name(c: &Connection, t: usize, kind: StreamKind, gateway: GatewaySides) -> String {
    let ip = c.tunnels[t].outside_ip;
    let daemon = |name: Option<&str>| name.unwrap_or("none").to_owned();
    match kind {
        StreamKind::Activity => format!("{}-{ip}", c.vpn_id),
        StreamKind::Bgp => format!("{}_{ip}-bgp", c.vpn_id),
        StreamKind::Traffic => format!("{}_{ip}-traffic", c.vpn_id),
        StreamKind::GatewayIke => format!("{}_{ip}-cgw-{}", c.vpn_id, daemon(gateway.ike_name())),
        StreamKind::GatewayBgp => format!("{}_{ip}-cgw-{}", c.vpn_id, daemon(gateway.bgp_name())),
    }
}

impl Truth {
    pub(crate) fn assemble(
        config: &SimConfig,
        model: &FleetModel,
        plan: &Plan,
        parts: &[TunnelPart],
    ) -> Truth {
        let end_ms = config.start_ms + config.duration_ms;
        let gw = config.gateway;
        let connections = model
            .connections
            .iter()
            .map(|c| ConnectionTruth {
                connection: c.clone(),
                streams: [0, 1].map(|t| StreamNames {
                    activity: stream_name(c, t, StreamKind::Activity, gw),
                    bgp: c.is_bgp().then(|| stream_name(c, t, StreamKind::Bgp, gw)),
                    traffic: stream_name(c, t, StreamKind::Traffic, gw),
                    gateway_ike: gw
                        .ike
                        .map(|_| stream_name(c, t, StreamKind::GatewayIke, gw)),
                    gateway_bgp: (gw.bgp.is_some() && c.is_bgp())
                        .then(|| stream_name(c, t, StreamKind::GatewayBgp, gw)),
                }),
            })
            .collect();
        let mut incidents: Vec<IncidentTruth> = plan
            .incidents
            .iter()
            .filter_map(|inc| {
                let c = &model.connections[inc.conn];
                let mut tunnels = Vec::new();
                let mut all_kinds: Vec<(i64, usize, MessageKind)> = Vec::new();
                let (mut first, mut last, mut records) = (i64::MAX, i64::MIN, 0);
                for (order, &t) in inc.tunnels.iter().enumerate() {
                    let Some(p) = parts
                        .get(inc.conn * 2 + usize::from(t))
                        .and_then(|tp| tp.incidents.get(&inc.id))
                    else {
                        continue;
                    };
                    first = first.min(p.first_ms);
                    last = last.max(p.last_ms);
                    records += p.records;
                    all_kinds.extend(p.kinds.iter().map(|(k, ts)| (*ts, order, *k)));
                    let ipsec: Vec<Interval> = p.ipsec_down.iter().map(|s| (*s).into()).collect();
                    let bgp: Vec<Interval> = p.bgp_down.iter().map(|s| (*s).into()).collect();
                    let state = match c.routing {
                        Routing::Static => ipsec.clone(),
                        Routing::Bgp => bgp.clone(),
                    };
                    tunnels.push(TunnelTruth {
                        tunnel_ip: c.tunnels[usize::from(t)].outside_ip.to_string(),
                        records: p.records,
                        kinds: p.kinds.iter().map(|(k, _)| k.as_str()).collect(),
                        ipsec_down: ipsec,
                        bgp_down: bgp,
                        tunnel_state_down: state,
                    });
                }
                if tunnels.is_empty() {
                    // Nothing emitted (the fleet was not run to this point).
                    return None;
                }
                all_kinds.sort_by_key(|(ts, order, _)| (*ts, *order));
                let mut kinds: Vec<&'static str> = Vec::new();
                for (_, _, k) in all_kinds {
                    if !kinds.contains(&k.as_str()) {
                        kinds.push(k.as_str());
                    }
                }
                Some(IncidentTruth {
                    id: inc.id,
                    scenario: inc.scenario.name(),
                    injected: inc.injected,
                    vpn_id: c.vpn_id.clone(),
                    tunnel_ips: tunnels.iter().map(|t| t.tunnel_ip.clone()).collect(),
                    start: format_ms(first),
                    start_ms: first,
                    end: format_ms(last),
                    end_ms: last,
                    records,
                    kinds,
                    tunnels,
                })
            })
            .collect();
        incidents.sort_by_key(|i| (i.start_ms, i.id));
        Truth {
            generator: GENERATOR,
            seed: config.seed,
            format: config.format.as_str(),
            start: format_ms(config.start_ms),
            start_ms: config.start_ms,
            end: format_ms(end_ms),
            end_ms,
            rate_limit: config.rate_limit,
            connections,
            incidents,
        }
    }
}

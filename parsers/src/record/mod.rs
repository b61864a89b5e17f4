//! Records: one VPN log record (tunnel activity, tunnel BGP, traffic sample) from its JSON or
//! text rendering to an [`EventBody`] with time and tunnel identity.
//!
//! Both renderings first fill the same [`Fields`] (the documented keys, under their JSON names
//! and documented aliases); [`build`] then decides the table, normalises values and classifies
//! the message. Keys nobody documented are kept as JSON text in `extra`, never dropped.

pub(crate) mod health;
pub(crate) mod json;
pub(crate) mod text;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::catalogue::{self, Context, Message};
use crate::error::ParseError;
use crate::event::{Activity, Bgp, BgpType, EventBody, PhaseState, Route, Traffic, TunnelId};
use crate::identity;
use crate::time;

/// The documented record keys, whatever name they arrived under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    EventTimestamp,
    Timestamp,
    DpdEnabled,
    NatTDetected,
    Phase1,
    Phase2,
    Details,
    ResourceId,
    VpnId,
    TunnelIp,
    Type,
    Status,
    Message,
    Prefix,
    AsPath,
    LocalPref,
    Med,
    NextHopIp,
    Weight,
    BytesIn,
    BytesOut,
    PacketsIn,
    PacketsOut,
    ConcentratorId,
}

impl Key {
    /// Maps a key to its meaning: the JSON names first (fast path), then the documented
    /// CamelCase names of reference §2.1 and the 2022 field list, compared without case or `_`.
    pub(crate) fn of(name: &str) -> Option<Key> {
        use Key::*;
        Some(match name {
            "event_timestamp" => EventTimestamp,
            // `ts` is what `tunnelwatch parse` prints: its output can be read back.
            "timestamp" | "ts" => Timestamp,
            "dpd_enabled" => DpdEnabled,
            "nat_t_detected" => NatTDetected,
            "ike_phase1_state" => Phase1,
            "ike_phase2_state" => Phase2,
            "details" => Details,
            "resource_id" => ResourceId,
            "type" => Type,
            "status" => Status,
            "message" => Message,
            "prefix" => Prefix,
            "asPath" | "as_path" => AsPath,
            "localPref" | "local_pref" => LocalPref,
            "med" => Med,
            "nextHopIp" | "next_hop_ip" => NextHopIp,
            "weight" => Weight,
            "bytes_in" => BytesIn,
            "bytes_out" => BytesOut,
            "packets_in" => PacketsIn,
            "packets_out" => PacketsOut,
            "concentrator_id" => ConcentratorId,
            "vpn_id" => VpnId,
            "tunnel_ip" => TunnelIp,
            other => return Key::alias(other),
        })
    }

    fn alias(name: &str) -> Option<Key> {
        use Key::*;
        if name.len() > 40 {
            return None;
        }
        let folded: String = name
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match folded.as_str() {
            "vpnlogcreationtimestamp" | "eventtimestamp" => EventTimestamp,
            "vpnlogcreationtimestampreadable" => Timestamp,
            "tunneldpdenabled" | "dpdenabled" => DpdEnabled,
            "tunnelcgwnattdetectionstatus" | "nattdetected" => NatTDetected,
            "tunnelikephase1state" | "ikephase1state" => Phase1,
            "tunnelikephase2state" | "ikephase2state" => Phase2,
            "vpnlogdetail" => Details,
            "resourceid" => ResourceId,
            "vpnconnectionid" | "vpnid" => VpnId,
            "tunneloutsideipaddress" | "tunnelipaddress" | "tunnelip" => TunnelIp,
            "aspath" => AsPath,
            "localpref" => LocalPref,
            "nexthopip" => NextHopIp,
            "concentratorid" => ConcentratorId,
            _ => return None,
        })
    }

    /// Keys that only a tunnel activity record has.
    fn is_activity(self) -> bool {
        matches!(
            self,
            Key::DpdEnabled | Key::NatTDetected | Key::Phase1 | Key::Phase2
        )
    }
}

/// Route attributes as they arrived.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RouteFields<'a> {
    pub prefix: Option<Cow<'a, str>>,
    pub as_path: Option<Cow<'a, str>>,
    pub local_pref: Option<i64>,
    pub med: Option<i64>,
    pub next_hop_ip: Option<Cow<'a, str>>,
    pub weight: Option<i64>,
}

impl RouteFields<'_> {
    fn is_empty(&self) -> bool {
        *self == RouteFields::default()
    }
}

/// Every documented field of every record kind, as found in one record.
#[derive(Debug, Default)]
pub(crate) struct Fields<'a> {
    pub event_timestamp: Option<f64>,
    pub timestamp: Option<Cow<'a, str>>,
    pub dpd_enabled: Option<bool>,
    pub nat_t_detected: Option<bool>,
    pub phase1: Option<Cow<'a, str>>,
    pub phase2: Option<Cow<'a, str>>,
    /// `details` of an activity record, or `message.details` of a BGP record.
    pub details: Option<Cow<'a, str>>,
    pub resource_id: Option<Cow<'a, str>>,
    pub vpn_id: Option<Cow<'a, str>>,
    pub tunnel_ip: Option<Cow<'a, str>>,
    pub kind: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    /// A BGP `message` key was present (object, null or text).
    pub has_message: bool,
    pub route: RouteFields<'a>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub packets_in: Option<u64>,
    pub packets_out: Option<u64>,
    pub concentrator_id: Option<Cow<'a, str>>,
    /// Undocumented keys and their JSON values.
    pub extra: Vec<(String, String)>,
    /// At least one key that only tunnel activity records have was present.
    pub has_activity_key: bool,
}

impl<'a> Fields<'a> {
    /// Records that `key` was seen (for table selection).
    pub(crate) fn saw(&mut self, key: Key) {
        self.has_activity_key |= key.is_activity();
    }

    /// Sets a field from its text form (text renderings, string-typed JSON values). Returns
    /// false when the text is not a valid value for the key.
    pub(crate) fn set_text(&mut self, key: Key, value: Cow<'a, str>) -> bool {
        use Key::*;
        self.saw(key);
        match key {
            EventTimestamp => match value.trim().parse::<f64>() {
                Ok(v) => self.event_timestamp = Some(v),
                Err(_) => match time::parse_readable(&value) {
                    Some(ms) => self.event_timestamp = Some(ms as f64),
                    None => return false,
                },
            },
            Timestamp => self.timestamp = Some(value),
            DpdEnabled => match parse_bool(&value) {
                Some(b) => self.dpd_enabled = Some(b),
                None => return false,
            },
            NatTDetected => match parse_bool(&value) {
                Some(b) => self.nat_t_detected = Some(b),
                None => return false,
            },
            Phase1 => self.phase1 = Some(value),
            Phase2 => self.phase2 = Some(value),
            Details | Message => {
                self.has_message |= key == Message;
                self.details = Some(value)
            }
            ResourceId => self.resource_id = Some(value),
            VpnId => self.vpn_id = Some(value),
            TunnelIp => self.tunnel_ip = Some(value),
            Type => self.kind = Some(value),
            Status => self.status = Some(value),
            Prefix => self.route.prefix = Some(value),
            AsPath => self.route.as_path = Some(value),
            NextHopIp => self.route.next_hop_ip = Some(value),
            ConcentratorId => self.concentrator_id = Some(value),
            LocalPref | Med | Weight => {
                let Ok(n) = value.trim().parse::<i64>() else {
                    return false;
                };
                match key {
                    LocalPref => self.route.local_pref = Some(n),
                    Med => self.route.med = Some(n),
                    _ => self.route.weight = Some(n),
                }
            }
            BytesIn | BytesOut | PacketsIn | PacketsOut => {
                let Ok(n) = value.trim().parse::<u64>() else {
                    return false;
                };
                self.set_counter(key, n);
            }
        }
        true
    }

    pub(crate) fn set_counter(&mut self, key: Key, n: u64) {
        match key {
            Key::BytesIn => self.bytes_in = Some(n),
            Key::BytesOut => self.bytes_out = Some(n),
            Key::PacketsIn => self.packets_in = Some(n),
            Key::PacketsOut => self.packets_out = Some(n),
            _ => {}
        }
    }
}

/// `true`/`false` in any case, and the `True`/`False` strings of the documentation.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") || s == "1" || s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") || s == "0" || s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// What the envelope and the caller know about a record.
pub(crate) struct RecordContext<'c> {
    /// Log stream name from the envelope, the `--stream-name` flag or the file name.
    pub stream: Option<&'c str>,
    /// Time to use when the record has none: the envelope's event time, else its ingestion,
    /// export or syslog time (epoch ms).
    pub fallback_ts: Option<i64>,
}

/// Shares `TunnelId` and stream-name allocations between records of the same tunnel.
#[derive(Debug, Default)]
pub(crate) struct Identities {
    by_name: HashMap<String, Option<TunnelId>>,
    last_stream: Option<Arc<str>>,
}

impl Identities {
    const MAX: usize = 65_536;

    /// The stream name as a shared string, reusing the previous one when it is the same.
    pub(crate) fn stream(&mut self, name: &str) -> Arc<str> {
        match &self.last_stream {
            Some(last) if **last == *name => last.clone(),
            _ => {
                let arc: Arc<str> = Arc::from(name);
                self.last_stream = Some(arc.clone());
                arc
            }
        }
    }

    pub(crate) fn lookup(&mut self, name: &str) -> Option<TunnelId> {
        if let Some(hit) = self.by_name.get(name) {
            return hit.clone();
        }
        if self.by_name.len() >= Self::MAX {
            self.by_name.clear();
        }
        let id = identity::parse_tunnel_name(name).map(|(vpn, ip)| TunnelId {
            vpn_id: vpn.into(),
            tunnel_ip: ip.into(),
        });
        self.by_name.insert(name.to_owned(), id.clone());
        id
    }
}

/// The table-independent part of an event, as [`build`] derives it.
pub(crate) struct Built {
    pub ts: i64,
    pub tunnel: Option<TunnelId>,
    pub body: EventBody,
}

const RECORD_KEYS: &str = "event_timestamp, ike_phase1_state, details, resource_id, type";

/// Turns the fields of one record into an event body with time and identity.
pub(crate) fn build(
    f: Fields<'_>,
    ctx: &RecordContext<'_>,
    ids: &mut Identities,
) -> Result<Built, ParseError> {
    let is_traffic = f
        .kind
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("TunnelTraffic"))
        || (f.kind.is_none() && (f.bytes_in.is_some() || f.bytes_out.is_some()));
    let is_bgp =
        !is_traffic && (f.kind.is_some() || (f.resource_id.is_some() && !f.has_activity_key));
    let is_activity = !is_traffic && !is_bgp && (f.has_activity_key || f.details.is_some());
    if !(is_traffic || is_bgp || is_activity) {
        return Err(ParseError::NotAVpnRecord(RECORD_KEYS));
    }

    let ts = f
        .event_timestamp
        .and_then(time::epoch_to_ms)
        .or_else(|| f.timestamp.as_deref().and_then(time::parse_readable))
        .or(ctx.fallback_ts)
        .ok_or(ParseError::MissingTimestamp)?;

    let tunnel = if let Some(rid) = f.resource_id.as_deref() {
        ids.lookup(rid)
    } else if let (Some(vpn), Some(ip)) = (f.vpn_id.as_deref(), f.tunnel_ip.as_deref()) {
        Some(TunnelId {
            vpn_id: vpn.into(),
            tunnel_ip: ip.into(),
        })
    } else {
        None
    }
    .or_else(|| ctx.stream.and_then(|s| ids.lookup(s)));

    let mut extra = f.extra;
    let body = if is_traffic {
        if f.bytes_in.is_none() && f.bytes_out.is_none() {
            return Err(ParseError::BadField {
                field: "bytes_in",
                reason: "a TunnelTraffic sample needs bytes_in or bytes_out".into(),
            });
        }
        EventBody::Traffic(Traffic {
            bytes_in: f.bytes_in,
            bytes_out: f.bytes_out,
            packets_in: f.packets_in,
            packets_out: f.packets_out,
            concentrator_id: f.concentrator_id.map(Cow::into_owned),
        })
    } else if is_bgp {
        let kind = BgpType::parse(f.kind.as_deref().unwrap_or("BGPStatus"));
        let status = f.status.map(|s| s.trim().to_ascii_uppercase());
        let details = f.details.map(Cow::into_owned);
        let route_status = kind == BgpType::RouteStatus;
        let (mkind, captures) = if route_status {
            catalogue::route_message(status.as_deref(), details.as_deref())
        } else {
            match details.as_deref() {
                Some(d) => catalogue::classify(d),
                None => (catalogue::MessageKind::Unknown, Default::default()),
            }
        };
        let message = Message::new(
            mkind,
            captures,
            Context {
                bgp_status: status.as_deref(),
                ..Default::default()
            },
        );
        let route = (route_status || !f.route.is_empty()).then(|| {
            Box::new(Route {
                prefix: f.route.prefix.map(Cow::into_owned),
                as_path: f.route.as_path.map(Cow::into_owned),
                local_pref: f.route.local_pref,
                med: f.route.med,
                next_hop_ip: f.route.next_hop_ip.map(Cow::into_owned),
                weight: f.route.weight,
            })
        });
        EventBody::Bgp(Bgp {
            kind,
            status,
            details,
            message,
            route,
            extra: render_extra(extra),
        })
    } else {
        let p1 = state(f.phase1.as_deref(), "ike_phase1_state", &mut extra);
        let p2 = state(f.phase2.as_deref(), "ike_phase2_state", &mut extra);
        let details = f.details.map(Cow::into_owned);
        let message = catalogue::message(
            details.as_deref(),
            Context {
                ike_phase1_state: p1,
                ike_phase2_state: p2,
                bgp_status: None,
            },
        );
        EventBody::Activity(Activity {
            dpd_enabled: f.dpd_enabled,
            nat_t_detected: f.nat_t_detected,
            ike_phase1_state: p1,
            ike_phase2_state: p2,
            details,
            message,
            extra: render_extra(extra),
        })
    };
    Ok(Built { ts, tunnel, body })
}

/// A phase state; an undocumented value is kept in `extra` rather than lost.
fn state(value: Option<&str>, name: &str, extra: &mut Vec<(String, String)>) -> Option<PhaseState> {
    let v = value?;
    let parsed = PhaseState::parse(v);
    if parsed.is_none() {
        extra.push((
            name.to_owned(),
            serde_json::Value::String(v.to_owned()).to_string(),
        ));
    }
    parsed
}

fn render_extra(extra: Vec<(String, String)>) -> Option<String> {
    if extra.is_empty() {
        return None;
    }
    let mut out = String::from("{");
    for (i, (k, v)) in extra.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String(k.clone()).to_string());
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    Some(out)
}

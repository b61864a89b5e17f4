//! JSON rendering of events and rejects with the column names of DESIGN §4 (what
//! `tunnelwatch parse` prints, one object per line). Times are RFC 3339 UTC with milliseconds.
//! Columns that do not apply to the event's table are left out; captured columns appear only
//! when the message carried them; the rest of the table's columns are always present (`null`
//! when unknown).

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::catalogue::Captures;
use crate::event::{Event, EventBody, Reject};
use crate::time::format_ms;

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("table", self.table().as_str())?;
        m.serialize_entry("ts", &format_ms(self.ts))?;
        if let EventBody::Health(h) = &self.body {
            // The health_events columns, as AWS reported the event.
            let t = |v: Option<i64>| v.map(format_ms);
            m.serialize_entry("event_arn", &h.event_arn)?;
            m.serialize_entry("event_type_code", &h.event_type_code)?;
            m.serialize_entry("event_type_category", &h.event_type_category)?;
            m.serialize_entry("service", &h.service)?;
            m.serialize_entry("region", &h.region)?;
            m.serialize_entry("start_time", &t(h.start_time))?;
            m.serialize_entry("end_time", &t(h.end_time))?;
            m.serialize_entry("last_updated_time", &t(h.last_updated_time))?;
            m.serialize_entry("status_code", &h.status_code)?;
            m.serialize_entry("vpn_ids", &h.entities)?;
            m.serialize_entry("description", &h.description)?;
            m.serialize_entry("origin", "aws")?;
        }
        if !matches!(self.body, EventBody::Traffic(_) | EventBody::Health(_)) {
            m.serialize_entry("ingest_ts", &self.ingest_ts.map(format_ms))?;
        }
        m.serialize_entry("vpn_id", &self.vpn_id())?;
        m.serialize_entry("tunnel_ip", &self.tunnel_ip())?;
        match &self.body {
            EventBody::Activity(a) => {
                m.serialize_entry("dpd_enabled", &a.dpd_enabled)?;
                m.serialize_entry("nat_t_detected", &a.nat_t_detected)?;
                m.serialize_entry("ike_phase1_state", &a.ike_phase1_state.map(|p| p.as_str()))?;
                m.serialize_entry("ike_phase2_state", &a.ike_phase2_state.map(|p| p.as_str()))?;
                m.serialize_entry("details", &a.details)?;
                m.serialize_entry("message_kind", a.message.kind.as_str())?;
                m.serialize_entry("severity", a.message.severity.as_str())?;
                captures(&mut m, a.message.captures(), true)?;
                if let Some(extra) = &a.extra {
                    m.serialize_entry("extra", extra)?;
                }
            }
            EventBody::Bgp(b) => {
                m.serialize_entry("type", b.kind.as_str())?;
                m.serialize_entry("status", &b.status)?;
                m.serialize_entry("details", &b.details)?;
                m.serialize_entry("message_kind", b.message.kind.as_str())?;
                m.serialize_entry("severity", b.message.severity.as_str())?;
                captures(&mut m, b.message.captures(), false)?;
                let route = b.route.as_ref();
                m.serialize_entry("prefix", &route.and_then(|r| r.prefix.as_ref()))?;
                let as_path = route.and_then(|r| r.as_path.as_ref()).or(b
                    .message
                    .captures()
                    .as_path
                    .as_ref());
                m.serialize_entry("as_path", &as_path)?;
                m.serialize_entry("local_pref", &route.and_then(|r| r.local_pref))?;
                m.serialize_entry("med", &route.and_then(|r| r.med))?;
                m.serialize_entry("next_hop_ip", &route.and_then(|r| r.next_hop_ip.as_ref()))?;
                m.serialize_entry("weight", &route.and_then(|r| r.weight))?;
                m.serialize_entry("denied_reason", &b.message.captures().denied_reason)?;
                if let Some(extra) = &b.extra {
                    m.serialize_entry("extra", extra)?;
                }
            }
            EventBody::Traffic(t) => {
                m.serialize_entry("bytes_in", &t.bytes_in)?;
                m.serialize_entry("bytes_out", &t.bytes_out)?;
                m.serialize_entry("packets_in", &t.packets_in)?;
                m.serialize_entry("packets_out", &t.packets_out)?;
                m.serialize_entry("concentrator_id", &t.concentrator_id)?;
            }
            EventBody::Health(_) => {}
            EventBody::Gateway(g) => {
                m.serialize_entry("host", &g.host)?;
                m.serialize_entry("daemon", g.daemon_name())?;
                m.serialize_entry("gateway_kind", g.kind.as_str())?;
                m.serialize_entry("severity", g.severity.as_str())?;
                m.serialize_entry("peer_ip", &g.peer_ip)?;
                m.serialize_entry("local_ip", &g.local_ip)?;
                m.serialize_entry("ike_sa", &g.ike_sa)?;
                m.serialize_entry("ike_sa_id", &g.ike_sa_id)?;
                m.serialize_entry("child_sa", &g.child_sa)?;
                m.serialize_entry("child_sa_id", &g.child_sa_id)?;
                m.serialize_entry("session", &g.session)?;
                m.serialize_entry("details", &g.details)?;
                // The captured columns present on this line, flattened.
                if let serde_json::Value::Object(c) =
                    serde_json::to_value(&g.captures).map_err(serde::ser::Error::custom)?
                {
                    for (k, v) in c {
                        m.serialize_entry(&k, &v)?;
                    }
                }
            }
        }
        m.serialize_entry("source", &*self.source)?;
        m.serialize_entry("format", &self.format)?;
        m.serialize_entry("envelope", &self.envelope)?;
        m.serialize_entry("parse_quality", &self.parse_quality)?;
        m.serialize_entry("log_stream", &self.log_stream.as_deref())?;
        m.serialize_entry("position", &self.position)?;
        m.end()
    }
}

/// The captured columns present on this message. `as_path` and `denied_reason` are route
/// columns on BGP rows, rendered there instead.
fn captures<M: SerializeMap>(m: &mut M, c: &Captures, activity: bool) -> Result<(), M::Error> {
    macro_rules! opt {
        ($($f:ident),*) => {$(
            if let Some(v) = &c.$f {
                m.serialize_entry(stringify!($f), v)?;
            }
        )*};
    }
    opt!(
        spi,
        retry_count,
        cgw_ip,
        request_id,
        from_state,
        to_state,
        neighbor_ip,
        prefix_count,
        prefix_limit,
        direction,
        error_code,
        error_subcode,
        reason,
        peer_asn,
        expected_asn,
        hold_time,
        router_id
    );
    if activity {
        opt!(as_path, denied_reason);
    }
    Ok(())
}

impl Serialize for Reject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("source", &*self.source)?;
        m.serialize_entry("position", &self.position)?;
        m.serialize_entry("error", &self.error.to_string())?;
        m.serialize_entry("raw", &String::from_utf8_lossy(&self.raw))?;
        m.serialize_entry("ingest_ts", &self.ingest_ts.map(format_ms))?;
        m.end()
    }
}

//! Stored datapoints as an OpenMetrics text file with timestamps, the input of
//! `promtool tsdb create-blocks-from openmetrics`: history computed from replayed logs can be
//! backfilled into Prometheus under the same family names the live `/metrics` exposes.
//!
//! Mapping (one sample per datapoint, timestamped with the period start, in seconds):
//! - `TunnelState` → `tunnelwatch_tunnel_state{vpn_id,tunnel_ip}` (gauge: the minute's average,
//!   i.e. the up fraction) and, at connection level, `tunnelwatch_connection_tunnel_state{vpn_id}`;
//! - `IkePhase1Up`/`IkePhase2Up` → `tunnelwatch_ike_phase_state{vpn_id,tunnel_ip,phase="1"|"2"}`,
//!   `BgpSessionEstablished` → `tunnelwatch_bgp_session_established` (gauges, average);
//! - `TunnelDataIn`/`TunnelDataOut` (tunnel level) → `tunnelwatch_tunnel_data_{in,out}_bytes_total`
//!   (counters: the running sum of the minutes' sums from the first exported minute);
//! - `ConcentratorBandwidthUsage` (bits per second) →
//!   `tunnelwatch_concentrator_bandwidth_bytes_per_second` (gauge, the minute's average / 8: the
//!   Prometheus base unit is bytes);
//! - counts → gauges `tunnelwatch_{bgp_flaps,rekeys,dpd_timeouts,route_denials}_per_minute`.
//!
//! Invariant: the input must come grouped by family, then by series, then in time order (the
//! export query sorts so); a family that reappears after another is refused with
//! [`ExportError::Interleaved`] rather than written twice (promtool would reject the file).

use std::collections::HashSet;
use std::io::Write;

use thiserror::Error;
use tunnelwatch_monitor::{Datapoint, MetricName};

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("datapoints of family {0} are not contiguous (sort by family, series, time)")]
    Interleaved(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

struct Family {
    name: &'static str,
    kind: Kind,
    unit: Option<&'static str>,
    help: &'static str,
}

const TUNNEL_STATE: Family = Family {
    name: "tunnelwatch_tunnel_state",
    kind: Kind::Gauge,
    unit: None,
    help: "TunnelState per tunnel (AWS/VPN semantics): 1 up, 0 down; the minute's up fraction",
};
const CONNECTION_STATE: Family = Family {
    name: "tunnelwatch_connection_tunnel_state",
    kind: Kind::Gauge,
    unit: None,
    help: "TunnelState per connection: mean over its tunnels (0, 0.5, 1); the minute's average",
};
const DATA_IN: Family = Family {
    name: "tunnelwatch_tunnel_data_in_bytes",
    kind: Kind::Counter,
    unit: Some("bytes"),
    help: "TunnelDataIn: bytes received by AWS through the tunnel (after decryption)",
};
const DATA_OUT: Family = Family {
    name: "tunnelwatch_tunnel_data_out_bytes",
    kind: Kind::Counter,
    unit: Some("bytes"),
    help: "TunnelDataOut: bytes sent by AWS through the tunnel (before encryption)",
};
const BANDWIDTH: Family = Family {
    name: "tunnelwatch_concentrator_bandwidth_bytes_per_second",
    kind: Kind::Gauge,
    unit: Some("bytes_per_second"),
    help: "ConcentratorBandwidthUsage of a connection on a VPN Concentrator, in bytes per second (AWS reports bits per second: multiply by 8)",
};
const PHASE: Family = Family {
    name: "tunnelwatch_ike_phase_state",
    kind: Kind::Gauge,
    unit: None,
    help: "IKE phase up (established or rekeying) per tunnel and phase; the minute's up fraction",
};
const BGP: Family = Family {
    name: "tunnelwatch_bgp_session_established",
    kind: Kind::Gauge,
    unit: None,
    help: "BGP session Established per tunnel; the minute's up fraction",
};
const FLAPS: Family = Family {
    name: "tunnelwatch_bgp_flaps_per_minute",
    kind: Kind::Gauge,
    unit: None,
    help: "Times the BGP session left Established in the minute",
};
const REKEYS: Family = Family {
    name: "tunnelwatch_rekeys_per_minute",
    kind: Kind::Gauge,
    unit: None,
    help: "CREATE_CHILD_SA requests (IKE or child SA rekeys) in the minute",
};
const DPD: Family = Family {
    name: "tunnelwatch_dpd_timeouts_per_minute",
    kind: Kind::Gauge,
    unit: None,
    help: "DPD timeouts (dpd_timeout, dpd_peer_dead) in the minute",
};
const DENIALS: Family = Family {
    name: "tunnelwatch_route_denials_per_minute",
    kind: Kind::Gauge,
    unit: None,
    help: "Routes denied (route_denied) in the minute",
};

/// Escapes a label value for the text formats.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Streams datapoints out as OpenMetrics; call [`OpenMetricsWriter::finish`] at the end.
pub struct OpenMetricsWriter<W: Write> {
    w: W,
    family: Option<&'static str>,
    done: HashSet<&'static str>,
    series: String,
    total: f64,
}

impl<W: Write> OpenMetricsWriter<W> {
    pub fn new(w: W) -> Self {
        OpenMetricsWriter {
            w,
            family: None,
            done: HashSet::new(),
            series: String::new(),
            total: 0.0,
        }
    }

    fn family_of(p: &Datapoint) -> Option<(&'static Family, String, f64)> {
        let vpn = escape_label(&p.vpn_id);
        let tunnel = p.tunnel_ip.as_deref().map(escape_label);
        let tl = |t: &str| format!("vpn_id=\"{vpn}\",tunnel_ip=\"{t}\"");
        Some(match (p.metric, tunnel.as_deref()) {
            (MetricName::TunnelState, Some(t)) => (&TUNNEL_STATE, tl(t), p.average()),
            (MetricName::TunnelState, None) => {
                (&CONNECTION_STATE, format!("vpn_id=\"{vpn}\""), p.average())
            }
            (MetricName::TunnelDataIn, Some(t)) => (&DATA_IN, tl(t), p.sum),
            (MetricName::TunnelDataOut, Some(t)) => (&DATA_OUT, tl(t), p.sum),
            (MetricName::TunnelDataIn | MetricName::TunnelDataOut, None) => return None,
            (MetricName::ConcentratorBandwidthUsage, _) => (
                &BANDWIDTH,
                format!(
                    "vpn_id=\"{vpn}\",concentrator_id=\"{}\"",
                    escape_label(p.concentrator_id.as_deref().unwrap_or(""))
                ),
                p.average() / 8.0,
            ),
            (MetricName::IkePhase1Up, Some(t)) => {
                (&PHASE, format!("{},phase=\"1\"", tl(t)), p.average())
            }
            (MetricName::IkePhase2Up, Some(t)) => {
                (&PHASE, format!("{},phase=\"2\"", tl(t)), p.average())
            }
            (MetricName::BgpSessionEstablished, Some(t)) => (&BGP, tl(t), p.average()),
            (MetricName::BgpFlaps, Some(t)) => (&FLAPS, tl(t), p.sum),
            (MetricName::Rekeys, Some(t)) => (&REKEYS, tl(t), p.sum),
            (MetricName::DpdTimeouts, Some(t)) => (&DPD, tl(t), p.sum),
            (MetricName::RouteDenials, Some(t)) => (&DENIALS, tl(t), p.sum),
            _ => return None,
        })
    }

    /// Writes one datapoint (skips those without an exposition family, e.g. connection-level
    /// data counters, which Prometheus sums from the tunnels).
    pub fn write(&mut self, p: &Datapoint) -> Result<(), ExportError> {
        let Some((family, labels, value)) = Self::family_of(p) else {
            return Ok(());
        };
        if self.family != Some(family.name) {
            if !self.done.insert(family.name) {
                return Err(ExportError::Interleaved(family.name));
            }
            self.family = Some(family.name);
            let kind = match family.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            writeln!(self.w, "# TYPE {} {kind}", family.name)?;
            if let Some(u) = family.unit {
                writeln!(self.w, "# UNIT {} {u}", family.name)?;
            }
            writeln!(self.w, "# HELP {} {}", family.name, family.help)?;
            self.series.clear();
        }
        if labels != self.series {
            self.series = labels;
            self.total = 0.0;
        }
        let (suffix, value) = match family.kind {
            Kind::Gauge => ("", value),
            Kind::Counter => {
                self.total += value;
                ("_total", self.total)
            }
        };
        let secs = p.ts.div_euclid(1000);
        let ms = p.ts.rem_euclid(1000);
        write!(
            self.w,
            "{}{suffix}{{{}}} {value} {secs}",
            family.name, self.series
        )?;
        if ms != 0 {
            write!(self.w, ".{ms:03}")?;
        }
        writeln!(self.w)?;
        Ok(())
    }

    /// Ends the exposition (`# EOF`) and flushes.
    pub fn finish(mut self) -> Result<W, ExportError> {
        writeln!(self.w, "# EOF")?;
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn dp(metric: MetricName, ip: Option<&str>, ts: i64, sum: f64) -> Datapoint {
        Datapoint {
            ts,
            metric,
            vpn_id: Arc::from("vpn-1"),
            tunnel_ip: ip.map(Arc::from),
            concentrator_id: None,
            sample_count: 60.0,
            sum,
            minimum: 0.0,
            maximum: 1.0,
        }
    }

    #[test]
    fn families_counters_and_timestamps() {
        let mut w = OpenMetricsWriter::new(Vec::new());
        w.write(&dp(
            MetricName::TunnelDataIn,
            Some("1.2.3.4"),
            60_000,
            100.0,
        ))
        .unwrap();
        w.write(&dp(
            MetricName::TunnelDataIn,
            Some("1.2.3.4"),
            120_000,
            50.0,
        ))
        .unwrap();
        w.write(&dp(MetricName::TunnelDataIn, None, 120_000, 50.0))
            .unwrap();
        w.write(&dp(MetricName::TunnelState, Some("1.2.3.4"), 60_000, 30.0))
            .unwrap();
        w.write(&dp(MetricName::TunnelState, None, 60_000, 60.0))
            .unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "# TYPE tunnelwatch_tunnel_data_in_bytes counter\n\
             # UNIT tunnelwatch_tunnel_data_in_bytes bytes\n\
             # HELP tunnelwatch_tunnel_data_in_bytes TunnelDataIn: bytes received by AWS through the tunnel (after decryption)\n\
             tunnelwatch_tunnel_data_in_bytes_total{vpn_id=\"vpn-1\",tunnel_ip=\"1.2.3.4\"} 100 60\n\
             tunnelwatch_tunnel_data_in_bytes_total{vpn_id=\"vpn-1\",tunnel_ip=\"1.2.3.4\"} 150 120\n\
             # TYPE tunnelwatch_tunnel_state gauge\n\
             # HELP tunnelwatch_tunnel_state TunnelState per tunnel (AWS/VPN semantics): 1 up, 0 down; the minute's up fraction\n\
             tunnelwatch_tunnel_state{vpn_id=\"vpn-1\",tunnel_ip=\"1.2.3.4\"} 0.5 60\n\
             # TYPE tunnelwatch_connection_tunnel_state gauge\n\
             # HELP tunnelwatch_connection_tunnel_state TunnelState per connection: mean over its tunnels (0, 0.5, 1); the minute's average\n\
             tunnelwatch_connection_tunnel_state{vpn_id=\"vpn-1\"} 1 60\n\
             # EOF\n"
        );
    }

    /// ConcentratorBandwidthUsage (bits per second in the `metrics` table) is exported in bytes
    /// per second, the Prometheus base unit.
    #[test]
    fn concentrator_bandwidth_in_bytes_per_second() {
        let mut w = OpenMetricsWriter::new(Vec::new());
        let mut p = dp(
            MetricName::ConcentratorBandwidthUsage,
            None,
            60_000,
            60.0 * 8e6,
        );
        p.concentrator_id = Some(Arc::from("vcn-1"));
        w.write(&p).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "# TYPE tunnelwatch_concentrator_bandwidth_bytes_per_second gauge\n\
             # UNIT tunnelwatch_concentrator_bandwidth_bytes_per_second bytes_per_second\n\
             # HELP tunnelwatch_concentrator_bandwidth_bytes_per_second ConcentratorBandwidthUsage of a connection on a VPN Concentrator, in bytes per second (AWS reports bits per second: multiply by 8)\n\
             tunnelwatch_concentrator_bandwidth_bytes_per_second{vpn_id=\"vpn-1\",concentrator_id=\"vcn-1\"} 1000000 60\n\
             # EOF\n"
        );
    }

    #[test]
    fn interleaved_families_are_refused() {
        let mut w = OpenMetricsWriter::new(Vec::new());
        w.write(&dp(MetricName::TunnelState, Some("a"), 0, 1.0))
            .unwrap();
        w.write(&dp(MetricName::BgpFlaps, Some("a"), 0, 1.0))
            .unwrap();
        assert!(matches!(
            w.write(&dp(MetricName::TunnelState, Some("a"), 60_000, 1.0)),
            Err(ExportError::Interleaved("tunnelwatch_tunnel_state"))
        ));
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

//! The fleet model: connections, their two tunnels and the options that shape their logs,
//! drawn deterministically from the seed.
//!
//! Invariants: VPN IDs are `vpn-` + 17 lowercase hex digits and unique; tunnel outside IPs and
//! customer gateway IPs are unique across the fleet (documentation ranges first, then
//! 198.18.0.0/15); inside /30s are unique, never one of the reserved ones of reference §8, AWS
//! on the first usable address and the CGW on the second.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The Amazon-side ASN (the default, reference §9.4).
pub const AWS_ASN: u32 = 64512;
/// BGP hold time both sides use (reference §9.4).
pub const HOLD_TIME_S: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    Static,
    Bgp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IkeVersion {
    Ikev1,
    Ikev2,
}

/// What the connection terminates on; it sets the CGW→AWS prefix limit (reference §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Gateway {
    Vgw,
    Tgw,
}

impl Gateway {
    pub fn prefix_limit(self) -> u32 {
        match self {
            Gateway::Vgw => 100,
            Gateway::Tgw => 1000,
        }
    }
}

/// Tunnel options that drive the simulated timers (defaults of reference §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TunnelOptions {
    pub phase1_lifetime_s: u32,
    pub phase2_lifetime_s: u32,
    pub rekey_margin_s: u32,
    pub rekey_fuzz_percent: u32,
    pub dpd_timeout_s: u32,
}

impl Default for TunnelOptions {
    fn default() -> Self {
        TunnelOptions {
            phase1_lifetime_s: 28_800,
            phase2_lifetime_s: 3_600,
            rekey_margin_s: 270,
            rekey_fuzz_percent: 100,
            dpd_timeout_s: 40,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tunnel {
    pub outside_ip: Ipv4Addr,
    pub inside_cidr: String,
    pub aws_inside_ip: Ipv4Addr,
    pub cgw_inside_ip: Ipv4Addr,
    pub dpd_enabled: bool,
    pub nat_t_detected: bool,
    /// The AS path the CGW advertises on this tunnel (a standby tunnel may prepend).
    pub as_path: String,
    /// The CGW rekeys phase 2 before AWS does (its own, shorter lifetime).
    #[serde(skip)]
    pub cgw_rekeys: bool,
    /// Share of the connection's traffic while both tunnels are up.
    #[serde(skip)]
    pub traffic_share: f64,
}

/// How much a connection sends and receives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficProfile {
    /// Peak-hour throughput, bytes per second, in + out.
    pub peak_bytes_per_s: f64,
    /// Fraction of the bytes that flow CGW → AWS (`bytes_in`).
    pub in_fraction: f64,
    pub mean_packet_bytes: f64,
    /// Hours east of UTC of the customer site (shapes the diurnal curve).
    pub utc_offset_h: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    pub vpn_id: String,
    pub routing: Routing,
    pub ike_version: IkeVersion,
    pub gateway: Gateway,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concentrator_id: Option<String>,
    pub cgw_ip: Ipv4Addr,
    pub cgw_asn: u32,
    pub aws_asn: u32,
    /// Prefixes the CGW advertises over BGP (RFC 1918).
    pub prefixes: Vec<String>,
    pub options: TunnelOptions,
    pub tunnels: [Tunnel; 2],
    #[serde(skip)]
    pub traffic: TrafficProfile,
}

impl Connection {
    pub fn is_bgp(&self) -> bool {
        self.routing == Routing::Bgp
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetModel {
    pub connections: Vec<Connection>,
}

/// Tunnel and CGW outside addresses: the three documentation /24s shuffled, then 198.18.0.0/15.
struct AddressPool {
    shuffled: Vec<Ipv4Addr>,
    next: usize,
}

impl AddressPool {
    fn new(rng: &mut ChaCha8Rng) -> AddressPool {
        let mut shuffled: Vec<Ipv4Addr> = [[203, 0, 113], [198, 51, 100], [192, 0, 2]]
            .iter()
            .flat_map(|[a, b, c]| (1..=254).map(move |d| Ipv4Addr::new(*a, *b, *c, d)))
            .collect();
        shuffled.shuffle(rng);
        AddressPool { shuffled, next: 0 }
    }

    fn take(&mut self) -> Ipv4Addr {
        let i = self.next;
        self.next += 1;
        if let Some(ip) = self.shuffled.get(i) {
            return *ip;
        }
        // 198.18.0.0/15, skipping .0 and .255 host parts.
        let k = (i - self.shuffled.len()) as u32;
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        Ipv4Addr::from(base + (k / 254) * 256 + 1 + k % 254)
    }
}

fn hex_id(rng: &mut ChaCha8Rng, prefix: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(prefix.len() + 17);
    s.push_str(prefix);
    for _ in 0..17 {
        s.push(HEX[rng.random_range(0..16)] as char);
    }
    s
}

/// Is the /30 with this index (169.254.0.0 + 4 × index) reserved (reference §8)?
fn reserved_slash30(index: u32) -> bool {
    let third = index / 64;
    let fourth = (index % 64) * 4;
    (third <= 5 && fourth == 0) || (third == 169 && fourth == 252)
}

fn prefixes(rng: &mut ChaCha8Rng) -> Vec<String> {
    let n = rng.random_range(2..=10);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // Customer-side ranges; 10.0/16, 10.1/16 and 172.31/16 are kept for AWS-side VPCs (the
        // as-path-loop scenario), 10.128/9 for the prefix-limit flood.
        let p = match rng.random_range(0..3) {
            0 => format!(
                "10.{}.{}.0/{}",
                rng.random_range(2..128),
                rng.random_range(0..16) * 16,
                [20, 22, 24][rng.random_range(0..3)]
            ),
            1 => format!("172.{}.0.0/16", rng.random_range(16..31)),
            _ => format!("192.168.{}.0/24", rng.random_range(0..256)),
        };
        if seen.insert(p.clone()) {
            out.push(p);
        }
    }
    out
}

impl FleetModel {
    /// `n` connections drawn from `seed`.
    pub fn generate(n: usize, seed: u64) -> FleetModel {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        let mut pool = AddressPool::new(&mut rng);
        let mut vpn_ids = HashSet::new();
        let mut inside = HashSet::new();
        let concentrator_count = n.div_ceil(10).max(1);
        let concentrators: Vec<String> = (0..concentrator_count)
            .map(|_| hex_id(&mut rng, "vcn-"))
            .collect();
        let mut connections = Vec::with_capacity(n);
        for _ in 0..n {
            let vpn_id = loop {
                let id = hex_id(&mut rng, "vpn-");
                if vpn_ids.insert(id.clone()) {
                    break id;
                }
            };
            let routing = if rng.random_bool(0.6) {
                Routing::Bgp
            } else {
                Routing::Static
            };
            let ike_version = if rng.random_bool(0.7) {
                IkeVersion::Ikev2
            } else {
                IkeVersion::Ikev1
            };
            let kind = rng.random_range(0..10);
            let (gateway, concentrator_id) = match kind {
                0 | 1 => (
                    Gateway::Tgw,
                    Some(concentrators[rng.random_range(0..concentrators.len())].clone()),
                ),
                2..=4 => (Gateway::Tgw, None),
                _ => (Gateway::Vgw, None),
            };
            let cgw_asn = rng.random_range(65000..=65534);
            let downstream = rng
                .random_bool(0.3)
                .then(|| rng.random_range(65000..=65534));
            let base_path = match downstream {
                Some(d) if d != cgw_asn => format!("{cgw_asn} {d}"),
                _ => cgw_asn.to_string(),
            };
            let ecmp = gateway == Gateway::Tgw && routing == Routing::Bgp;
            let prepend_standby = !ecmp && rng.random_bool(0.4);
            let primary_share = if ecmp {
                0.5
            } else {
                rng.random_range(0.9..0.98)
            };
            let nat_t = rng.random_bool(0.25);
            let cgw_rekeys = rng.random_bool(0.4);
            let tunnels = [0u8, 1].map(|t| {
                let outside_ip = pool.take();
                let index = loop {
                    let i = rng.random_range(0..16_384u32);
                    if !reserved_slash30(i) && inside.insert(i) {
                        break i;
                    }
                };
                let net = u32::from(Ipv4Addr::new(169, 254, 0, 0)) + index * 4;
                let as_path = if t == 1 && prepend_standby {
                    format!("{cgw_asn} {cgw_asn} {base_path}")
                } else {
                    base_path.clone()
                };
                Tunnel {
                    outside_ip,
                    inside_cidr: format!("{}/30", Ipv4Addr::from(net)),
                    aws_inside_ip: Ipv4Addr::from(net + 1),
                    cgw_inside_ip: Ipv4Addr::from(net + 2),
                    dpd_enabled: rng.random_bool(0.95),
                    nat_t_detected: nat_t,
                    as_path,
                    cgw_rekeys,
                    traffic_share: if t == 0 {
                        primary_share
                    } else {
                        1.0 - primary_share
                    },
                }
            });
            // Log-uniform peak throughput between 50 kB/s and 40 MB/s; concentrator sites are
            // capped at 100 Mbit/s (12.5 MB/s) in + out.
            let mut peak = (rng.random_range(50e3f64.ln()..40e6f64.ln())).exp();
            if concentrator_id.is_some() {
                peak = peak.min(11.5e6);
            }
            let traffic = TrafficProfile {
                peak_bytes_per_s: peak,
                in_fraction: rng.random_range(0.25..0.75),
                mean_packet_bytes: rng.random_range(350.0..1100.0),
                utc_offset_h: rng.random_range(-8..=9) as f64,
            };
            connections.push(Connection {
                vpn_id,
                routing,
                ike_version,
                gateway,
                concentrator_id,
                cgw_ip: Ipv4Addr::UNSPECIFIED,
                cgw_asn,
                aws_asn: AWS_ASN,
                prefixes: prefixes(&mut rng),
                options: TunnelOptions::default(),
                tunnels,
                traffic,
            });
        }
        // Customer gateway IPs after all tunnel IPs, so tunnel IPs stay in the documentation
        // ranges as long as possible.
        for c in &mut connections {
            c.cgw_ip = pool.take();
        }
        FleetModel { connections }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_and_addresses() {
        let m = FleetModel::generate(500, 7);
        let mut ips = HashSet::new();
        let mut cidrs = HashSet::new();
        let mut ids = HashSet::new();
        for c in &m.connections {
            assert_eq!(c.vpn_id.len(), 21);
            assert!(c.vpn_id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(ids.insert(c.vpn_id.clone()));
            assert!(ips.insert(c.cgw_ip));
            for t in &c.tunnels {
                assert!(ips.insert(t.outside_ip), "{}", t.outside_ip);
                assert!(cidrs.insert(t.inside_cidr.clone()));
                let o = t.aws_inside_ip.octets();
                assert_eq!((o[0], o[1]), (169, 254));
                assert_eq!(o[3] % 4, 1);
                assert_eq!(u32::from(t.cgw_inside_ip), u32::from(t.aws_inside_ip) + 1);
                assert!(!(o[2] <= 5 && o[3] == 1), "reserved {}", t.inside_cidr);
                assert!(!(o[2] == 169 && o[3] == 253), "reserved {}", t.inside_cidr);
            }
            if c.concentrator_id.is_some() {
                assert!(c.traffic.peak_bytes_per_s <= 12.5e6);
            }
        }
        // The first 762 addresses come from the documentation ranges.
        let first = m.connections[0].tunnels[0].outside_ip.octets();
        assert!(matches!(
            (first[0], first[1], first[2]),
            (203, 0, 113) | (198, 51, 100) | (192, 0, 2)
        ));
    }

    #[test]
    fn deterministic() {
        assert_eq!(FleetModel::generate(20, 3), FleetModel::generate(20, 3));
        assert_ne!(FleetModel::generate(20, 3), FleetModel::generate(20, 4));
    }

    #[test]
    fn reserved() {
        assert!(reserved_slash30(0));
        assert!(reserved_slash30(5 * 64));
        assert!(!reserved_slash30(6 * 64));
        assert!(reserved_slash30(169 * 64 + 63));
        assert!(!reserved_slash30(1));
    }
}

//! Which tunnel a gateway line is about, from its peer address: the tunnel's outside IP (an
//! IKE peer) or an address of the tunnel's inside /30 (a BGP neighbour, 169.254.x.y).
//!
//! The map is built by the caller from the connection inventory of the config; addresses it
//! does not hold leave the line without a tunnel (`diagnose` infers those from the AWS-side
//! records that name the same addresses).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::Gateway;
use crate::event::TunnelId;

/// Peer addresses to tunnels.
#[derive(Debug, Default, Clone)]
pub struct PeerMap {
    outside: HashMap<IpAddr, TunnelId>,
    /// By the network address of the inside /30.
    inside: HashMap<Ipv4Addr, TunnelId>,
}

impl PeerMap {
    /// Adds a tunnel: its outside IP and, when known, its inside CIDR (`169.254.10.0/30`) or
    /// either inside address.
    pub fn add(&mut self, vpn_id: &str, outside_ip: IpAddr, inside: Option<Ipv4Addr>) {
        let id = TunnelId {
            vpn_id: Arc::from(vpn_id),
            tunnel_ip: Arc::from(outside_ip.to_string()),
        };
        if let Some(inside) = inside {
            self.inside.insert(slash30(inside), id.clone());
        }
        self.outside.insert(outside_ip, id);
    }

    pub fn is_empty(&self) -> bool {
        self.outside.is_empty()
    }

    /// The tunnel the line's peer address names.
    pub fn tunnel_of(&self, g: &Gateway) -> Option<TunnelId> {
        // The peer address, or its IKE identity (AWS's is the outside IP).
        [g.peer_ip.as_deref(), g.captures.peer_id.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|p| self.tunnel_of_ip(p))
    }

    /// The tunnel `peer` (an outside IP, or an inside address) belongs to.
    pub fn tunnel_of_ip(&self, peer: &str) -> Option<TunnelId> {
        let peer: IpAddr = peer.parse().ok()?;
        if let Some(id) = self.outside.get(&peer) {
            return Some(id.clone());
        }
        match peer {
            IpAddr::V4(v4) => self.inside.get(&slash30(v4)).cloned(),
            IpAddr::V6(_) => None,
        }
    }
}

/// The network address of the /30 holding `a`.
pub fn slash30(a: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(a) & !3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_placed_by_its_peer_address_or_its_peer_identity() {
        let mut peers = PeerMap::default();
        peers.add(
            "vpn-0123456789abcdef0",
            "203.0.113.30".parse().unwrap(),
            Some("169.254.7.130".parse().unwrap()),
        );
        let placed = |g: &Gateway| peers.tunnel_of(g).map(|t| t.tunnel_ip.to_string());
        let mut g = Gateway::default();
        assert_eq!(placed(&g), None);
        // pluto names the peer only by its IKE identity.
        g.captures.peer_id = Some("203.0.113.30".into());
        assert_eq!(placed(&g).as_deref(), Some("203.0.113.30"));
        // A BGP neighbour in the inside /30.
        let g = Gateway {
            peer_ip: Some("169.254.7.129".into()),
            ..Gateway::default()
        };
        assert_eq!(placed(&g).as_deref(), Some("203.0.113.30"));
        let g = Gateway {
            peer_ip: Some("198.51.100.1".into()),
            ..Gateway::default()
        };
        assert_eq!(placed(&g), None);
    }
}

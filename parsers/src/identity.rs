//! Tunnel identity: which VPN connection and tunnel outside IP a record belongs to.
//!
//! BGP records carry `resource_id = <vpn-id>_<outside-ip>`. Tunnel activity records carry none;
//! their identity comes from the log stream name `<vpn-id>-<outside-ip>` (reference §1.2), which
//! may reach us through an envelope, a `--stream-name` flag or a file named after its stream
//! (`vpn-0123abcd-203.0.113.12.log`, `vpn-0123abcd_203.0.113.12-bgp.ndjson.gz`).
//!
//! VPN IDs match `vpn-[0-9a-f]{8,17}`; the outside IP may be IPv4 or IPv6 and is validated with
//! `std::net::IpAddr`.

use std::net::IpAddr;
use std::sync::Arc;

use crate::event::TunnelId;

/// Finds `vpn-<hex>` followed by `-` or `_` and an IP address anywhere in `name` (a stream name,
/// a file name or a resource id). Returns the VPN ID and the IP as written.
pub fn parse_tunnel_name(name: &str) -> Option<(&str, &str)> {
    let bytes = name.as_bytes();
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&bytes[from..], b"vpn-") {
        let start = from + at;
        from = start + 4;
        // The VPN ID must not be glued to a preceding identifier character.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric()) {
            continue;
        }
        let hex_len = bytes[start + 4..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            .count();
        if !(8..=17).contains(&hex_len) {
            continue;
        }
        let id_end = start + 4 + hex_len;
        if !matches!(bytes.get(id_end), Some(b'-' | b'_')) {
            continue;
        }
        if let Some(ip) = ip_prefix(&name[id_end + 1..]) {
            return Some((&name[start..id_end], ip));
        }
    }
    None
}

/// The longest prefix of `s` that is an IP address, trimming trailing `.suffix` parts
/// (file extensions) until it parses.
fn ip_prefix(s: &str) -> Option<&str> {
    let run = s
        .bytes()
        .take_while(|b| b.is_ascii_hexdigit() || *b == b'.' || *b == b':')
        .count();
    let mut candidate = &s[..run];
    loop {
        let trimmed = candidate.trim_end_matches(['.', ':']);
        if trimmed.parse::<IpAddr>().is_ok() {
            return Some(trimmed);
        }
        // `1.2.3.4.log` has no hex-only run past the IP, but `10.0.0.1.bad` might: drop the
        // last dotted part and retry.
        match trimmed.rfind('.') {
            Some(i) if i > 0 => candidate = &trimmed[..i],
            _ => return None,
        }
    }
}

/// Remembers the last identity parsed so that consecutive records of the same tunnel share one
/// allocation (a file or envelope is nearly always a single stream).
#[derive(Debug, Default)]
pub struct IdentityCache {
    last_name: String,
    last: Option<TunnelId>,
}

impl IdentityCache {
    pub fn lookup(&mut self, name: &str) -> Option<TunnelId> {
        if let Some(last) = &self.last
            && self.last_name == name
        {
            return Some(last.clone());
        }
        let (vpn, ip) = parse_tunnel_name(name)?;
        let id = TunnelId {
            vpn_id: Arc::from(vpn),
            tunnel_ip: Arc::from(ip),
        };
        self.last_name.clear();
        self.last_name.push_str(name);
        self.last = Some(id.clone());
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases = [
            (
                "vpn-0123456789abcdef0-203.0.113.12",
                Some(("vpn-0123456789abcdef0", "203.0.113.12")),
            ),
            ("vpn-1234abcd_1.2.3.4", Some(("vpn-1234abcd", "1.2.3.4"))),
            (
                "logs/vpn-1234abcd-1.2.3.4.log",
                Some(("vpn-1234abcd", "1.2.3.4")),
            ),
            (
                "vpn-1234abcd_1.2.3.4-bgp.ndjson.gz",
                Some(("vpn-1234abcd", "1.2.3.4")),
            ),
            (
                "vpn-1234abcd-2600:1f18:abcd::1",
                Some(("vpn-1234abcd", "2600:1f18:abcd::1")),
            ),
            (
                "vpn-1234abcd-2600:1f18:abcd::1.json",
                Some(("vpn-1234abcd", "2600:1f18:abcd::1")),
            ),
            ("vpn-12ab-1.2.3.4", None),
            ("vpn-1234abcd-notanip", None),
            ("myvpn-1234abcd-1.2.3.4", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_tunnel_name(name), want, "{name}");
        }
    }

    #[test]
    fn cache_reuses() {
        let mut c = IdentityCache::default();
        let a = c.lookup("vpn-1234abcd_1.2.3.4").unwrap();
        let b = c.lookup("vpn-1234abcd_1.2.3.4").unwrap();
        assert!(Arc::ptr_eq(&a.vpn_id, &b.vpn_id));
        let d = c.lookup("vpn-1234abcd_1.2.3.5").unwrap();
        assert_eq!(&*d.tunnel_ip, "1.2.3.5");
        assert!(c.lookup("nothing").is_none());
    }
}

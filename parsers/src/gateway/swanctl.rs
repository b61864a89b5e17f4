//! strongSwan's SA counters: one `list-sa event {…}` line per IKE_SA, as `swanctl --list-sas
//! --raw` prints them and as the `vici` source renders charon's `list-sas` answers.
//!
//! A line becomes one traffic sample of the tunnel the IKE_SA's `remote-host` is (the AWS
//! outside IP): the bytes and packets of all its CHILD_SAs summed. The directions are AWS's
//! (`traffic.bytes_in` is TunnelDataIn, customer gateway → AWS): the gateway's `bytes-out` is
//! AWS's in. A CHILD_SA rekey starts new counters from zero; the metrics take the drop as a
//! counter reset, so the old SA's last bytes after the previous sample are not counted.
//!
//! The `list-sas reply {}` line that ends a listing gives no sample (like the metadata lines of
//! `aws logs` text output, it is skipped).
//!
//! Limits: values with blanks (identities such as `C=CH, O=…`) are cut at the first blank; no
//! counter this module reads has one.

/// The counters of one IKE_SA.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaCounters {
    pub ike_sa: String,
    pub ike_sa_id: Option<u64>,
    pub remote_host: Option<String>,
    pub local_host: Option<String>,
    /// The gateway's own view: in = received from AWS.
    pub gateway_bytes_in: u64,
    pub gateway_bytes_out: u64,
    pub gateway_packets_in: u64,
    pub gateway_packets_out: u64,
    pub child_sas: usize,
}

/// One node of a VICI message tree.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Value(String),
    Section(Vec<(String, Node)>),
    List(Vec<String>),
}

struct Tokens<'a> {
    s: &'a str,
    at: usize,
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Open,
    Close,
    ListOpen,
    ListClose,
    Word(&'a str),
}

impl<'a> Tokens<'a> {
    fn next(&mut self) -> Option<Token<'a>> {
        let b = self.s.as_bytes();
        while self.at < b.len() && b[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
        let c = *b.get(self.at)?;
        let single = match c {
            b'{' => Some(Token::Open),
            b'}' => Some(Token::Close),
            b'[' => Some(Token::ListOpen),
            b']' => Some(Token::ListClose),
            _ => None,
        };
        if let Some(t) = single {
            self.at += 1;
            return Some(t);
        }
        let start = self.at;
        while self.at < b.len()
            && !b[self.at].is_ascii_whitespace()
            && !b"{}[]".contains(&b[self.at])
        {
            self.at += 1;
        }
        Some(Token::Word(&self.s[start..self.at]))
    }
}

/// The elements of a section up to its `}` (or the end).
fn section(t: &mut Tokens<'_>, depth: usize) -> Option<Vec<(String, Node)>> {
    if depth > 16 {
        return None;
    }
    let mut out = Vec::new();
    loop {
        match t.next() {
            None | Some(Token::Close) => return Some(out),
            Some(Token::Word(w)) => {
                // `key=value`, or `key=[a b]` (the raw form of a list: `local-ts=[…]`).
                let (key, list_follows) = match w.split_once('=') {
                    Some((k, "")) if t.s.as_bytes().get(t.at) == Some(&b'[') => (k, true),
                    Some((k, v)) => {
                        out.push((k.to_owned(), Node::Value(v.to_owned())));
                        continue;
                    }
                    None => (w, false),
                };
                match t.next()? {
                    Token::Open if !list_follows => {
                        out.push((key.to_owned(), Node::Section(section(t, depth + 1)?)))
                    }
                    Token::ListOpen => {
                        let mut items = Vec::new();
                        loop {
                            match t.next()? {
                                Token::ListClose => break,
                                Token::Word(i) => items.push(i.to_owned()),
                                _ => return None,
                            }
                        }
                        out.push((key.to_owned(), Node::List(items)));
                    }
                    _ => return None,
                }
            }
            Some(_) => return None,
        }
    }
}

fn value<'n>(s: &'n [(String, Node)], key: &str) -> Option<&'n str> {
    s.iter().find_map(|(k, n)| match n {
        Node::Value(v) if k == key => Some(v.as_str()),
        _ => None,
    })
}

/// `list-sa event {…}` (or the `list-sas reply {}` that ends a listing) at the start of `s`.
pub(super) fn has_prefix(s: &str) -> bool {
    s.starts_with("list-sa event") || s.starts_with("list-sas reply")
}

/// The IKE_SAs of one `list-sa event {…}` line (charon sends one IKE_SA per event; a line
/// holding several gives one each).
pub fn parse(line: &str) -> Option<Vec<SaCounters>> {
    let line = line.trim();
    // The reply that ends a listing carries nothing: no sample.
    if line.starts_with("list-sas reply") {
        return Some(Vec::new());
    }
    let rest = line.strip_prefix("list-sa event")?;
    let mut t = Tokens { s: rest, at: 0 };
    if t.next()? != Token::Open {
        return None;
    }
    let top = section(&mut t, 0)?;
    let mut out = Vec::new();
    for (name, node) in &top {
        let Node::Section(ike) = node else { continue };
        let mut c = SaCounters {
            ike_sa: name.clone(),
            ike_sa_id: value(ike, "uniqueid").and_then(|v| v.parse().ok()),
            remote_host: value(ike, "remote-host").map(str::to_owned),
            local_host: value(ike, "local-host").map(str::to_owned),
            ..SaCounters::default()
        };
        let children = ike.iter().find_map(|(k, n)| match n {
            Node::Section(s) if k == "child-sas" => Some(s),
            _ => None,
        });
        for (_, child) in children.into_iter().flatten() {
            let Node::Section(child) = child else {
                continue;
            };
            let n = |k: &str| {
                value(child, k)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            c.gateway_bytes_in += n("bytes-in");
            c.gateway_bytes_out += n("bytes-out");
            c.gateway_packets_in += n("packets-in");
            c.gateway_packets_out += n("packets-out");
            c.child_sas += 1;
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_child_sas_of_each_ike_sa() {
        let line = "list-sa event {vpn-tunnel1 {uniqueid=2 remote-host=192.0.2.10 local-host=198.51.100.20 \
            child-sas {a-3 {name=a bytes-in=100 packets-in=2 bytes-out=300 packets-out=4} \
            a-4 {name=a bytes-in=20 packets-in=1 bytes-out=0 packets-out=0 local-ts=[10.0.0.0/24] remote-ts=[10.1.0.0/24 10.2.0.0/24]}}}}";
        let got = parse(line).unwrap();
        assert_eq!(
            got,
            vec![SaCounters {
                ike_sa: "vpn-tunnel1".into(),
                ike_sa_id: Some(2),
                remote_host: Some("192.0.2.10".into()),
                local_host: Some("198.51.100.20".into()),
                gateway_bytes_in: 120,
                gateway_bytes_out: 300,
                gateway_packets_in: 3,
                gateway_packets_out: 4,
                child_sas: 2,
            }]
        );
        assert_eq!(parse("list-sa event {}"), Some(vec![]));
        // The older spelling with a blank before the list parses too.
        assert_eq!(
            parse("list-sa event {a {local-ts [x y] bytes-in=3}}").unwrap()[0].ike_sa,
            "a"
        );
        assert_eq!(parse("list-sa event {a {b [x}"), None);
        assert_eq!(parse("list-sas reply {}"), Some(vec![]));
        assert_eq!(parse("list-conns reply {}"), None);
    }
}

//! The VICI wire format (strongSwan's `src/libcharon/plugins/vici/README.md`): packets framed
//! by a 32-bit big-endian length, a packet type, a name for named types, and a message of
//! sections, key/values and lists. Only what `list-sas` needs: requests, event
//! registration, and decoding answers into a tree.
//!
//! Limits: a packet above [`MAX_PACKET`] is refused (charon's own limit is 512 KiB by default);
//! sections nest at most [`MAX_DEPTH`] deep.

use std::fmt::Write as _;

/// The largest packet read.
pub const MAX_PACKET: usize = 4 << 20;
const MAX_DEPTH: usize = 32;

pub const CMD_REQUEST: u8 = 0;
pub const CMD_RESPONSE: u8 = 1;
pub const CMD_UNKNOWN: u8 = 2;
pub const EVENT_REGISTER: u8 = 3;
pub const EVENT_UNREGISTER: u8 = 4;
pub const EVENT_CONFIRM: u8 = 5;
pub const EVENT_UNKNOWN: u8 = 6;
pub const EVENT: u8 = 7;

const SECTION_START: u8 = 1;
const SECTION_END: u8 = 2;
const KEY_VALUE: u8 = 3;
const LIST_START: u8 = 4;
const LIST_ITEM: u8 = 5;
const LIST_END: u8 = 6;

/// One element of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    Value(String, Vec<u8>),
    Section(String, Vec<Element>),
    List(String, Vec<Vec<u8>>),
}

/// A packet of a named type (a request or event registration) with an empty message, framed.
pub fn named(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind, name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// A received packet: its type, name (for named types) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: u8,
    pub name: Option<String>,
    pub message: Vec<Element>,
}

/// Decodes one packet body (without its length prefix).
pub fn decode(body: &[u8]) -> Result<Packet, String> {
    let (&kind, mut rest) = body.split_first().ok_or("empty packet")?;
    let name = if matches!(
        kind,
        CMD_REQUEST | EVENT_REGISTER | EVENT_UNREGISTER | EVENT
    ) {
        let (n, r) = short(rest)?;
        rest = r;
        Some(String::from_utf8_lossy(n).into_owned())
    } else {
        None
    };
    let (message, rest) = elements(rest, 0)?;
    if !rest.is_empty() {
        return Err("section end without a section".into());
    }
    Ok(Packet {
        kind,
        name,
        message,
    })
}

/// A u8-length-prefixed name.
fn short(b: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (&len, rest) = b.split_first().ok_or("truncated name")?;
    let len = len as usize;
    if rest.len() < len {
        return Err("truncated name".into());
    }
    Ok(rest.split_at(len))
}

/// A u16-length-prefixed value.
fn long(b: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if b.len() < 2 {
        return Err("truncated value".into());
    }
    let len = u16::from_be_bytes([b[0], b[1]]) as usize;
    if b.len() < 2 + len {
        return Err("truncated value".into());
    }
    Ok(b[2..].split_at(len))
}

/// Elements up to a section end (returned with the rest after it) or the end of input.
fn elements(mut b: &[u8], depth: usize) -> Result<(Vec<Element>, &[u8]), String> {
    if depth > MAX_DEPTH {
        return Err("sections nested too deep".into());
    }
    let mut out = Vec::new();
    while let Some((&t, rest)) = b.split_first() {
        match t {
            SECTION_START => {
                let (name, rest) = short(rest)?;
                let (inner, rest) = elements(rest, depth + 1)?;
                let rest = rest
                    .strip_prefix(&[SECTION_END])
                    .ok_or("unterminated section")?;
                out.push(Element::Section(
                    String::from_utf8_lossy(name).into_owned(),
                    inner,
                ));
                b = rest;
            }
            SECTION_END if depth > 0 => return Ok((out, b)),
            KEY_VALUE => {
                let (name, rest) = short(rest)?;
                let (value, rest) = long(rest)?;
                out.push(Element::Value(
                    String::from_utf8_lossy(name).into_owned(),
                    value.to_vec(),
                ));
                b = rest;
            }
            LIST_START => {
                let (name, mut rest) = short(rest)?;
                let mut items = Vec::new();
                loop {
                    match rest.split_first() {
                        Some((&LIST_ITEM, r)) => {
                            let (item, r) = long(r)?;
                            items.push(item.to_vec());
                            rest = r;
                        }
                        Some((&LIST_END, r)) => {
                            rest = r;
                            break;
                        }
                        _ => return Err("unterminated list".into()),
                    }
                }
                out.push(Element::List(
                    String::from_utf8_lossy(name).into_owned(),
                    items,
                ));
                b = rest;
            }
            other => return Err(format!("unknown element type {other}")),
        }
    }
    if depth > 0 {
        return Err("unterminated section".into());
    }
    Ok((out, b))
}

/// Renders a message the way `swanctl --raw` prints it (`name {key=value list [a b]}`): what
/// the gateway parser reads (`tunnelwatch_parsers::gateway::swanctl`).
pub fn render(event_name: &str, message: &[Element]) -> String {
    let mut out = format!("{event_name} event {{");
    write_elements(&mut out, message);
    out.push('}');
    out
}

fn write_elements(out: &mut String, elements: &[Element]) {
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match e {
            Element::Value(k, v) => {
                let _ = write!(out, "{k}={}", printable(v));
            }
            Element::Section(k, inner) => {
                let _ = write!(out, "{k} {{");
                write_elements(out, inner);
                out.push('}');
            }
            Element::List(k, items) => {
                let _ = write!(out, "{k}=[");
                for (j, item) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(' ');
                    }
                    out.push_str(&printable(item));
                }
                out.push(']');
            }
        }
    }
}

/// A value as one token of the rendering: no line breaks or braces (they would end the line
/// or a section early).
fn printable(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .chars()
        .map(|c| {
            if c.is_control() || "{}[]".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message built element by element, as charon encodes it.
    fn encode(elements: &[Element], out: &mut Vec<u8>) {
        for e in elements {
            match e {
                Element::Value(k, v) => {
                    out.push(KEY_VALUE);
                    out.push(k.len() as u8);
                    out.extend_from_slice(k.as_bytes());
                    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
                    out.extend_from_slice(v);
                }
                Element::Section(k, inner) => {
                    out.push(SECTION_START);
                    out.push(k.len() as u8);
                    out.extend_from_slice(k.as_bytes());
                    encode(inner, out);
                    out.push(SECTION_END);
                }
                Element::List(k, items) => {
                    out.push(LIST_START);
                    out.push(k.len() as u8);
                    out.extend_from_slice(k.as_bytes());
                    for i in items {
                        out.push(LIST_ITEM);
                        out.extend_from_slice(&(i.len() as u16).to_be_bytes());
                        out.extend_from_slice(i);
                    }
                    out.push(LIST_END);
                }
            }
        }
    }

    #[test]
    fn decodes_what_charon_sends_and_renders_it_for_the_parser() {
        let v = |k: &str, x: &str| Element::Value(k.into(), x.as_bytes().to_vec());
        let message = vec![Element::Section(
            "vpn-tunnel1".into(),
            vec![
                v("uniqueid", "2"),
                v("remote-host", "192.0.2.10"),
                Element::Section(
                    "child-sas".into(),
                    vec![Element::Section(
                        "c-3".into(),
                        vec![
                            v("bytes-in", "420"),
                            v("bytes-out", "84"),
                            Element::List("local-ts".into(), vec![b"10.0.0.0/24".to_vec()]),
                        ],
                    )],
                ),
            ],
        )];
        let mut body = vec![EVENT, 7];
        body.extend_from_slice(b"list-sa");
        encode(&message, &mut body);
        let p = decode(&body).unwrap();
        assert_eq!(p.kind, EVENT);
        assert_eq!(p.name.as_deref(), Some("list-sa"));
        assert_eq!(p.message, message);
        let line = render("list-sa", &p.message);
        assert_eq!(
            line,
            "list-sa event {vpn-tunnel1 {uniqueid=2 remote-host=192.0.2.10 child-sas {c-3 \
             {bytes-in=420 bytes-out=84 local-ts=[10.0.0.0/24]}}}}"
        );
        let sas = tunnelwatch_parsers::gateway::swanctl::parse(&line).unwrap();
        assert_eq!(
            (sas[0].gateway_bytes_in, sas[0].gateway_bytes_out),
            (420, 84)
        );
        // Truncated or malformed packets are errors, not panics.
        for cut in 1..body.len() {
            let _ = decode(&body[..cut]);
        }
        assert!(decode(&[EVENT_CONFIRM]).unwrap().message.is_empty());
        assert!(decode(&[CMD_RESPONSE, SECTION_END]).is_err());
        assert_eq!(
            named(CMD_REQUEST, "list-sas")[..5],
            [0, 0, 0, 10, CMD_REQUEST]
        );
    }
}

//! Text renderings of VPN records. AWS has not published its text layout (reference §4), so the
//! parser accepts the plausible ones and says how sure it is:
//!
//! 1. a line that embeds a JSON record after a prefix (`<time> <stream> {...}`): `exact`;
//! 2. the documented BGP field order, space-separated:
//!    `timestamp type status message… [resource_id] [event_timestamp]`, where the message may be
//!    text, a JSON object or `key=value` route attributes: `structured`;
//! 3. `key=value` pairs (values bare or double-quoted; an unquoted `details=` runs to the end
//!    of the line or the next known key): `structured`;
//! 4. the documented tunnel activity field order, space-separated:
//!    `timestamp dpd_enabled nat_t_detected ike_phase1_state ike_phase2_state [event_timestamp] details…`:
//!    `structured`;
//! 5. anything else: timestamps, identity, states, booleans, BGP type/status and a catalogue
//!    message are picked out wherever they are: `heuristic`. A line with none of these is
//!    rejected rather than stored as noise.

use std::borrow::Cow;

use super::json::{self, JsonDoc};
use super::{Fields, Key};
use crate::catalogue;
use crate::error::ParseError;
use crate::event::{ParseQuality, PhaseState, RecordFormat};
use crate::identity;
use crate::time;

pub(crate) struct TextRecord<'a> {
    pub fields: Fields<'a>,
    pub quality: ParseQuality,
    pub format: RecordFormat,
    /// A stream name found in a prefix, when the record names none itself.
    pub stream: Option<&'a str>,
    /// A timestamp found in a prefix (used as the envelope time).
    pub prefix_ts: Option<i64>,
}

pub(crate) fn parse(line: &str) -> Result<TextRecord<'_>, ParseError> {
    let line = line.trim();
    if let Some(r) = embedded_json(line) {
        return Ok(r);
    }
    if let Some(f) = positional_bgp(line) {
        return Ok(structured(f));
    }
    if let Some(f) = key_values(line) {
        return Ok(structured(f));
    }
    if let Some(f) = positional_activity(line) {
        return Ok(structured(f));
    }
    heuristic(line)
}

fn structured(fields: Fields<'_>) -> TextRecord<'_> {
    TextRecord {
        fields,
        quality: ParseQuality::Structured,
        format: RecordFormat::Text,
        stream: None,
        prefix_ts: None,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Embedded JSON

fn embedded_json(line: &str) -> Option<TextRecord<'_>> {
    if !line.ends_with('}') {
        return None;
    }
    let at = line.find('{')?;
    let JsonDoc::Record(fields) = json::parse(&line[at..]).ok()? else {
        return None;
    };
    let prefix = &line[..at];
    Some(TextRecord {
        fields: *fields,
        quality: ParseQuality::Exact,
        format: RecordFormat::Json,
        stream: prefix
            .split_whitespace()
            .find(|t| identity::parse_tunnel_name(t).is_some()),
        prefix_ts: time::readable_prefix(prefix.trim_start()).map(|(_, ms)| ms),
    })
}

// ---------------------------------------------------------------------------------------------
// 2. key=value

/// Finds `key=` at `i` where `key` is a known field name; returns the key and the value start.
fn key_at(line: &str, i: usize) -> Option<(Key, &str, usize)> {
    let rest = &line[i..];
    let name_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if name_len == 0 || rest.as_bytes().get(name_len) != Some(&b'=') {
        return None;
    }
    let name = &rest[..name_len];
    Key::of(name).map(|k| (k, name, i + name_len + 1))
}

/// Start offsets of whitespace-separated tokens.
fn token_starts(line: &str) -> impl Iterator<Item = usize> + '_ {
    let b = line.as_bytes();
    (0..b.len())
        .filter(move |&i| !b[i].is_ascii_whitespace() && (i == 0 || b[i - 1].is_ascii_whitespace()))
}

fn key_values(line: &str) -> Option<Fields<'_>> {
    let keyed = token_starts(line)
        .filter(|&i| key_at(line, i).is_some())
        .take(2)
        .count();
    if keyed < 2 {
        return None;
    }
    let mut f = Fields::default();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() || (i > 0 && !b[i - 1].is_ascii_whitespace()) {
            i += 1;
            continue;
        }
        let Some((key, name, vstart)) = key_at(line, i) else {
            // An unknown key=value or stray word: skip the token, keeping unknown pairs. A token
            // ends at ASCII whitespace, as the check at the top of this loop and `token_starts`
            // have it: one starting with other whitespace (VT, NBSP) would otherwise end where
            // it starts and never be skipped.
            let end = line[i..]
                .find(|c: char| c.is_ascii_whitespace())
                .map_or(b.len(), |e| i + e);
            if let Some((k, v)) = line[i..end].split_once('=') {
                f.extra.push((
                    k.to_owned(),
                    serde_json::Value::String(v.to_owned()).to_string(),
                ));
            }
            i = end;
            continue;
        };
        let (value, next) = if b.get(vstart) == Some(&b'"') {
            quoted(line, vstart)
        } else if matches!(key, Key::Details | Key::Message) {
            // Unquoted free text: up to the next known key or the end of the line.
            let end = token_starts(line)
                .find(|&j| j > vstart && key_at(line, j).is_some())
                .unwrap_or(b.len());
            (Cow::Borrowed(line[vstart..end].trim_end()), end)
        } else {
            let end = line[vstart..]
                .find(char::is_whitespace)
                .map_or(b.len(), |e| vstart + e);
            (Cow::Borrowed(&line[vstart..end]), end)
        };
        if !f.set_text(key, value.clone()) {
            f.extra.push((
                name.to_owned(),
                serde_json::Value::String(value.into_owned()).to_string(),
            ));
        }
        i = next;
    }
    Some(f)
}

/// A double-quoted value starting at `at` (the quote), with `\"` and `\\` escapes. An
/// unterminated quote runs to the end of the line.
fn quoted(line: &str, at: usize) -> (Cow<'_, str>, usize) {
    let body = &line[at + 1..];
    let mut out: Option<String> = None;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let v = match out {
                    Some(s) => Cow::Owned(s),
                    None => Cow::Borrowed(&body[..i]),
                };
                return (v, at + 1 + i + 1);
            }
            '\\' => {
                let s = out.get_or_insert_with(|| body[..i].to_owned());
                if let Some((_, n)) = chars.next() {
                    s.push(n);
                }
            }
            _ => {
                if let Some(s) = out.as_mut() {
                    s.push(c);
                }
            }
        }
    }
    (out.map_or(Cow::Borrowed(body), Cow::Owned), line.len())
}

// ---------------------------------------------------------------------------------------------
// 3. Documented field order

/// A leading readable timestamp (`2025-11-08 05:40:29.641Z` spans two tokens) or epoch value.
/// Returns the offset just past it.
fn leading_time<'a>(line: &'a str, f: &mut Fields<'a>) -> usize {
    if let Some((len, _)) = time::readable_prefix(line) {
        f.timestamp = Some(Cow::Borrowed(&line[..len]));
        return len;
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (9..=13).contains(&digits) && line[digits..].starts_with(char::is_whitespace) {
        f.event_timestamp = line[..digits].parse().ok();
        return digits;
    }
    0
}

/// The next whitespace-separated token at or after `i`: (start, end).
fn next_token(line: &str, i: usize) -> Option<(usize, usize)> {
    let start = i + line[i..].find(|c: char| !c.is_whitespace())?;
    let end = line[start..]
        .find(char::is_whitespace)
        .map_or(line.len(), |e| start + e);
    Some((start, end))
}

fn positional_activity(line: &str) -> Option<Fields<'_>> {
    let mut f = Fields::default();
    let mut i = leading_time(line, &mut f);
    let take = |i: &mut usize| {
        let (s, e) = next_token(line, *i)?;
        *i = e;
        Some(&line[s..e])
    };
    let dpd = super::parse_bool(take(&mut i)?)?;
    let nat = super::parse_bool(take(&mut i)?)?;
    let p1 = take(&mut i)?;
    let p2 = take(&mut i)?;
    PhaseState::parse(p1)?;
    PhaseState::parse(p2)?;
    f.set_text(
        Key::DpdEnabled,
        Cow::Borrowed(if dpd { "true" } else { "false" }),
    );
    f.set_text(
        Key::NatTDetected,
        Cow::Borrowed(if nat { "true" } else { "false" }),
    );
    f.set_text(Key::Phase1, Cow::Borrowed(p1));
    f.set_text(Key::Phase2, Cow::Borrowed(p2));
    if let Some((s, e)) = next_token(line, i) {
        let tok = &line[s..e];
        if tok.len() >= 9 && tok.bytes().all(|b| b.is_ascii_digit()) {
            f.event_timestamp = tok.parse().ok();
            i = e;
        }
    }
    let details = unquote(line[i..].trim());
    if !details.is_empty() {
        f.details = Some(Cow::Borrowed(details));
    }
    Some(f)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn positional_bgp(line: &str) -> Option<Fields<'_>> {
    let mut f = Fields::default();
    let mut i = leading_time(line, &mut f);
    let (ts, te) = next_token(line, i)?;
    let kind = &line[ts..te];
    if !(kind.eq_ignore_ascii_case("BGPStatus") || kind.eq_ignore_ascii_case("RouteStatus")) {
        return None;
    }
    f.set_text(Key::Type, Cow::Borrowed(kind));
    i = te;
    let (ss, se) = next_token(line, i)?;
    f.set_text(Key::Status, Cow::Borrowed(&line[ss..se]));
    let mut middle = line[se..].trim();
    // Trailing event_timestamp, then trailing resource_id.
    if let Some(sp) = middle.rfind(char::is_whitespace) {
        let last = &middle[sp + 1..];
        if last.len() >= 9 && last.bytes().all(|b| b.is_ascii_digit()) {
            f.event_timestamp = last.parse().ok();
            middle = middle[..sp].trim_end();
        }
    }
    let last_start = middle.rfind(char::is_whitespace).map_or(0, |sp| sp + 1);
    let last = &middle[last_start..];
    if last.contains('_') && identity::parse_tunnel_name(last).is_some() {
        f.set_text(Key::ResourceId, Cow::Borrowed(last));
        middle = middle[..last_start].trim_end();
    }
    // The message: a JSON object, key=value route attributes, or the details text.
    if middle.starts_with('{') {
        if let Ok(JsonDoc::Record(m)) = json::parse(&format!("{{\"message\":{middle}}}")) {
            f.details = m.details.map(|d| Cow::Owned(d.into_owned()));
            f.route.prefix = m.route.prefix.map(|v| Cow::Owned(v.into_owned()));
            f.route.as_path = m.route.as_path.map(|v| Cow::Owned(v.into_owned()));
            f.route.next_hop_ip = m.route.next_hop_ip.map(|v| Cow::Owned(v.into_owned()));
            f.route.local_pref = m.route.local_pref;
            f.route.med = m.route.med;
            f.route.weight = m.route.weight;
        } else {
            f.details = Some(Cow::Borrowed(middle));
        }
    } else if let Some(kv) = key_values(middle) {
        f.details = kv.details;
        f.route = kv.route;
    } else if !middle.is_empty() {
        f.details = Some(Cow::Borrowed(unquote(middle)));
    }
    f.has_message = true;
    Some(f)
}

// ---------------------------------------------------------------------------------------------
// 4. Heuristic extraction

fn heuristic(line: &str) -> Result<TextRecord<'_>, ParseError> {
    let mut f = Fields::default();
    let found = catalogue::find_in_text(line);
    let head = &line[..found.as_ref().map_or(line.len(), |(at, _, _)| *at)];
    let mut recognised = found.is_some();

    // Timestamps: a readable one anywhere in the head, else an epoch-looking number.
    let mut i = 0;
    let mut p1_seen = false;
    while let Some((s, e)) = next_token(head, i) {
        i = e;
        let tok = head[s..e]
            .trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | '[' | ']' | '(' | ')'));
        // `key:value` or `key=value` prefixes are common in ad-hoc layouts.
        let tok = tok
            .rsplit_once(['=', ':'])
            .filter(|(k, v)| {
                !v.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
            })
            .map_or(tok, |(_, v)| v);
        if f.timestamp.is_none()
            && f.event_timestamp.is_none()
            && let Some((len, _)) = time::readable_prefix(&head[s..])
        {
            f.timestamp = Some(Cow::Borrowed(&head[s..s + len]));
            i = s + len;
            recognised = true;
            continue;
        }
        if f.event_timestamp.is_none()
            && f.timestamp.is_none()
            && (tok.len() == 10 || tok.len() == 13)
            && tok.bytes().all(|b| b.is_ascii_digit())
        {
            f.event_timestamp = tok.parse().ok();
            recognised = true;
            continue;
        }
        if let Some((vpn, ip)) = identity::parse_tunnel_name(tok) {
            if tok.contains(&format!("{vpn}_{ip}")) {
                f.resource_id = Some(Cow::Borrowed(tok));
            } else {
                f.vpn_id = Some(Cow::Borrowed(vpn));
                f.tunnel_ip = Some(Cow::Borrowed(ip));
            }
            recognised = true;
            continue;
        }
        if PhaseState::parse(tok).is_some() && !(tok == "DOWN" && f.kind.is_some()) {
            f.set_text(
                if p1_seen { Key::Phase2 } else { Key::Phase1 },
                Cow::Borrowed(tok),
            );
            p1_seen = true;
            recognised = true;
            continue;
        }
        if let Some(b) = super::parse_bool(tok).filter(|_| tok.len() > 1) {
            let key = if f.dpd_enabled.is_none() {
                Key::DpdEnabled
            } else {
                Key::NatTDetected
            };
            f.set_text(key, Cow::Borrowed(if b { "true" } else { "false" }));
            continue;
        }
        if tok.eq_ignore_ascii_case("BGPStatus") || tok.eq_ignore_ascii_case("RouteStatus") {
            f.set_text(Key::Type, Cow::Borrowed(tok));
            recognised = true;
            continue;
        }
        if matches!(tok, "UP" | "DOWN" | "ADVERTISED" | "UPDATED" | "WITHDRAWN") {
            f.set_text(Key::Status, Cow::Borrowed(tok));
            recognised = true;
        }
    }
    if !recognised {
        return Err(ParseError::UnrecognisedText);
    }
    if let Some((at, kind, _)) = found {
        let details = line[at..]
            .trim_end_matches(|c: char| matches!(c, '"' | '\'' | '}' | ']') || c.is_whitespace());
        f.details = Some(Cow::Borrowed(details));
        if kind.is_bgp() && f.kind.is_none() {
            let t = if kind == catalogue::MessageKind::RouteDenied {
                "RouteStatus"
            } else {
                "BGPStatus"
            };
            f.set_text(Key::Type, Cow::Borrowed(t));
        }
    }
    // A phase state seen in the head makes this an activity record; state words inside a BGP
    // line (e.g. "DOWN") must not.
    if f.kind.is_some() {
        f.phase1 = None;
        f.phase2 = None;
        f.has_activity_key = false;
    }
    Ok(TextRecord {
        fields: f,
        quality: ParseQuality::Heuristic,
        format: RecordFormat::Text,
        stream: None,
        prefix_ts: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `cargo fuzz` (fuzz/): a stray token starting with whitespace that is not ASCII
    /// whitespace (VT, NBSP) after ASCII whitespace made `key_values` loop forever.
    #[test]
    fn key_values_token_starting_with_non_ascii_whitespace() {
        for stray in ["\u{b}x", "\u{a0}x", "\u{2003}x=1"] {
            let line = format!(
                "dpd_enabled=true nat_t_detected=false {stray} ike_phase1_state=established"
            );
            let rec = parse(&line).expect("a key=value record");
            assert_eq!(rec.quality, ParseQuality::Structured);
            assert_eq!(rec.fields.dpd_enabled, Some(true));
            assert_eq!(rec.fields.nat_t_detected, Some(false));
            assert_eq!(rec.fields.phase1.as_deref(), Some("established"));
        }
        // A minimal input, through the whole decoder.
        let out = crate::parse_all("t", b"med=1 med=2 \x0bx\n", Default::default());
        assert_eq!(out.len(), 1);
    }
}

//! Fuzz target for the envelope + record entry point of `tunnelwatch-parsers`.
//!
//! For every input it checks that:
//! - `parse_all` (auto format, default options) does not panic;
//! - the streaming path (`Decoder::decode` fed in two chunks split at a position taken from the
//!   first byte, the unconsumed rest handed back with the second chunk, then `eof`) does not
//!   panic, consumes everything, and gives exactly the same events and rejects as the one-shot
//!   path, in the same order (first the count, then the values) — unless the input is gzip,
//!   which only `decode_all` inflates;
//! - outside gzip, every result's position lies inside the input, positions never go
//!   backwards, and each `line` matches the newlines before its `offset`;
//! - the same holds with the format forced to the `InputFormat` picked by the last byte (the
//!   customer-gateway format among them, with an inventory that places its lines).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnelwatch_parsers::{Decoder, DecoderOptions, InputFormat, Parsed, Position, parse_all};

const SOURCE: &str = "fuzz-input";

const FORMATS: [InputFormat; 11] = [
    InputFormat::Auto,
    InputFormat::Ndjson,
    InputFormat::Json,
    InputFormat::Cli,
    InputFormat::CliText,
    InputFormat::S3,
    InputFormat::Subscription,
    InputFormat::Firehose,
    InputFormat::Syslog,
    InputFormat::Text,
    InputFormat::Gateway,
];

fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

fn position(p: &Parsed) -> Position {
    match p {
        Parsed::Event(e) => e.position,
        Parsed::Reject(r) => r.position,
    }
}

/// The split point: the first byte scaled to `0..=len`, so every split of a short input can be
/// reached and long inputs are split anywhere.
fn split_point(data: &[u8]) -> usize {
    match data.first() {
        Some(&b) => (b as usize * (data.len() + 1)) / 256,
        None => 0,
    }
}

/// Feeds `data` as a streaming caller would: the first `k` bytes without `eof`, then the
/// unconsumed remainder with the rest appended, with `eof`.
fn streaming(data: &[u8], k: usize, opts: DecoderOptions) -> Vec<Parsed> {
    let mut decoder = Decoder::new(SOURCE, opts);
    let mut out = Vec::new();
    let used = decoder.decode(&data[..k], false, &mut |p| out.push(p));
    assert!(used <= k, "decode consumed {used} bytes of a {k}-byte chunk");
    assert_eq!(decoder.position().offset, used as u64, "position after the first chunk");
    let mut buf = data[used..k].to_vec();
    buf.extend_from_slice(&data[k..]);
    let used2 = decoder.decode(&buf, true, &mut |p| out.push(p));
    assert_eq!(used2, buf.len(), "decode with eof must consume everything");
    assert_eq!(decoder.position().offset, data.len() as u64, "final offset");
    let newlines = memchr_count(data);
    assert_eq!(decoder.position().line, 1 + newlines, "final line");
    out
}

fn memchr_count(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Positions of a non-gzip input: inside it, in order, and with `line` agreeing with `offset`.
fn check_positions(data: &[u8], results: &[Parsed]) {
    let mut cursor = 0usize;
    let mut line = 1u64;
    for p in results {
        let pos = position(p);
        let offset = pos.offset as usize;
        assert!(offset < data.len(), "position {pos:?} outside a {}-byte input", data.len());
        assert!(offset >= cursor, "position {pos:?} goes back before byte {cursor}");
        line += memchr_count(&data[cursor..offset]);
        cursor = offset;
        assert_eq!(pos.line, line, "line of {pos:?}");
    }
}

fn compare(data: &[u8], k: usize, format: InputFormat, one_shot: &[Parsed], streamed: &[Parsed]) {
    assert_eq!(
        one_shot.len(),
        streamed.len(),
        "format {format:?}, split at {k}: one-shot gave {} results, streaming {}\n\
         one-shot: {one_shot:#?}\nstreaming: {streamed:#?}",
        one_shot.len(),
        streamed.len(),
    );
    if let Some(i) = (0..one_shot.len()).find(|&i| one_shot[i] != streamed[i]) {
        panic!(
            "format {format:?}, split at {k} of {}: result {i} differs\n\
             one-shot: {:#?}\nstreaming: {:#?}",
            data.len(),
            one_shot[i],
            streamed[i],
        );
    }
}

fn check(data: &[u8], opts: DecoderOptions) {
    let format = opts.format;
    let one_shot = parse_all(SOURCE, data, opts.clone());
    if is_gzip(data) {
        // Streaming callers inflate gzip themselves; decoding the compressed bytes as lines
        // must still not panic.
        let mut decoder = Decoder::new(SOURCE, opts);
        decoder.decode(data, true, &mut |_| {});
        return;
    }
    check_positions(data, &one_shot);
    let k = split_point(data);
    let streamed = streaming(data, k, opts);
    compare(data, k, format, &one_shot, &streamed);
}

fuzz_target!(|data: &[u8]| {
    check(data, DecoderOptions::default());

    if let Some(&last) = data.last() {
        let format = FORMATS[last as usize % FORMATS.len()];
        let mut peers = tunnelwatch_parsers::gateway::PeerMap::default();
        peers.add(
            "vpn-1234abcd",
            "192.0.2.10".parse().unwrap(),
            Some("169.254.10.0".parse().unwrap()),
        );
        check(
            data,
            DecoderOptions {
                format,
                stream_name: Some("vpn-1234abcd-1.2.3.4".into()),
                gateway_peers: Some(std::sync::Arc::new(peers)),
                ..DecoderOptions::default()
            },
        );
    }
});

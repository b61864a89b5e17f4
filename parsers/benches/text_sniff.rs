//! What recognising customer-gateway lines costs AWS's own text records: the same 300k
//! tunnel-activity and BGP text lines (the layout `tunnelwatch simulate --format text` writes)
//! decoded with `--format auto`, which first asks whether each line is a strongSwan, Libreswan,
//! FRR or BIRD line, against `--format text`, which does not ask. Both in the same run,
//! interleaved, 7 rounds; the figure is the ratio of the best rounds (1.00 = free).
//!
//! Run: `cargo bench -p tunnelwatch-parsers --bench text_sniff` (release profile; builds only
//! this crate). Results go to BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tunnelwatch_parsers::{DecoderOptions, InputFormat, Parsed, parse_all};

const LINES: usize = 300_000;

fn corpus() -> Vec<u8> {
    let activity = [
        "AWS tunnel is sending request (id={n}) for CREATE_CHILD_SA",
        "AWS tunnel processed response (id={n}) for CREATE_CHILD_SA",
        "AWS tunnel received DELETE for Phase 2 SA with SPI: c{n}",
        "AWS tunnel DPD timed out after 3 retransmits",
        "AWS tunnel detected a pre-shared key mismatch with cgw: 198.51.100.{n}",
    ];
    let bgp = [
        "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.{n}.2",
        "AWS-side peer sent a Hold Timer Expired notification to neighbor 169.254.{n}.2",
    ];
    let mut out = Vec::with_capacity(LINES * 140);
    for i in 0..LINES {
        let ts = 1_793_577_600 + i as i64;
        let n = i % 250;
        let time = chrono::DateTime::from_timestamp(ts, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S%.3fZ");
        let line = if i % 3 == 2 {
            let text = bgp[i % bgp.len()].replace("{n}", &n.to_string());
            format!("{time} BGPStatus UP {text} vpn-0123456789abcdef0_192.0.2.10 {ts}000\n")
        } else {
            let text = activity[i % activity.len()].replace("{n}", &n.to_string());
            format!("{time} true false established established {ts} {text}\n")
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn run(bytes: &[u8], format: InputFormat) -> (Duration, usize) {
    let opts = DecoderOptions {
        format,
        stream_name: Some("vpn-0123456789abcdef0-192.0.2.10".into()),
        ..DecoderOptions::default()
    };
    let start = Instant::now();
    let parsed = parse_all("bench.log", black_box(bytes), opts);
    let took = start.elapsed();
    let events = parsed
        .iter()
        .filter(|p| matches!(p, Parsed::Event(_)))
        .count();
    (took, events)
}

fn main() {
    let bytes = corpus();
    let (mut auto, mut text) = (Duration::MAX, Duration::MAX);
    for _ in 0..7 {
        let (a, na) = run(&bytes, InputFormat::Auto);
        let (t, nt) = run(&bytes, InputFormat::Text);
        assert_eq!(
            (na, nt),
            (LINES, LINES),
            "every line is an AWS record either way"
        );
        auto = auto.min(a);
        text = text.min(t);
    }
    let mb = bytes.len() as f64 / 1e6;
    println!(
        "{LINES} AWS text lines ({mb:.1} MB): --format text {:.1} ms ({:.0} MB/s), --format auto {:.1} ms ({:.0} MB/s); ratio auto/text {:.3}",
        text.as_secs_f64() * 1e3,
        mb / text.as_secs_f64(),
        auto.as_secs_f64() * 1e3,
        mb / auto.as_secs_f64(),
        auto.as_secs_f64() / text.as_secs_f64()
    );
}

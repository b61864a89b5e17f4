//! Parse+classify throughput of `tunnelwatch-parsers` over 100k realistic NDJSON records (half
//! tunnel activity, half BGP), against the baseline of `serde_json::from_slice::<Value>` on the
//! same lines in the same run.
//!
//! Run: `cargo bench --bench parse` (criterion; figures go to BENCHMARKS.md). The ratio printed
//! at the end is tunnelwatch time / baseline time (≤ 1.0 means at least as fast).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use tunnelwatch_parsers::{Decoder, DecoderOptions, Parsed};

const RECORDS: usize = 100_000;

/// A small deterministic generator (xorshift), so every run parses the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Mixed NDJSON as AWS writes it: activity records carry no identity (it comes from the stream
/// name), BGP records carry `resource_id`.
fn corpus() -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let activity = [
        "AWS tunnel processed request (id={n}) for CREATE_CHILD_SA",
        "AWS tunnel is sending response (id={n}) for CREATE_CHILD_SA",
        "AWS tunnel is sending request (id={n}) for CREATE_CHILD_SA",
        "AWS tunnel processed response (id={n}) for CREATE_CHILD_SA",
        "AWS tunnel received DELETE for Phase 2 SA with SPI: c{n}",
        "AWS tunnel DPD timed out after {n} retransmits",
        "AWS tunnel received DELETE for IKE_SA from CGW",
        "AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision",
        "AWS tunnel detected a pre-shared key mismatch with cgw: 198.51.100.{n}",
        "No Proposal Match Found. Notifying with \\\"No proposal chosen\\\"",
        "Peer is not responsive - Declaring peer dead",
    ];
    let bgp = [
        "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.{n}.1",
        "AWS-side peer BGP session state has changed from Established to Idle with neighbor 169.254.{n}.1",
        "AWS-side peer received update with attributes from neighbor 169.254.{n}.1 - AS path: 65000 65010",
        "AWS-side peer sent a notification 6/2 (Cease/Administrative Shutdown) to neighbor 169.254.{n}.1",
        "AWS-side peer is reporting a maximum prefix limit warning - received 95 prefixes from neighbor 169.254.{n}.1, limit is 100",
        "AWS-side peer sent an End-of-RIB message to neighbor 169.254.{n}.1",
    ];
    let states = [
        "established",
        "established",
        "established",
        "rekeying",
        "down",
    ];
    let mut out = Vec::with_capacity(RECORDS * 300);
    let mut t_ms: u64 = 1_762_580_429_641;
    for i in 0..RECORDS {
        t_ms += rng.next() % 2000;
        let n = rng.next() % 250;
        let line = if i % 2 == 0 {
            let details = rng.pick(&activity).replace("{n}", &n.to_string());
            format!(
                r#"{{"event_timestamp":{},"timestamp":"2025-11-08 05:40:29.641Z","dpd_enabled":true,"nat_t_detected":false,"ike_phase1_state":"{}","ike_phase2_state":"{}","details":"{}"}}"#,
                t_ms / 1000,
                rng.pick(&states),
                rng.pick(&states),
                details
            )
        } else if i % 6 == 1 {
            format!(
                r#"{{"resource_id":"vpn-0123456789abcdef{}_203.0.113.{}","event_timestamp":{},"timestamp":"2025-11-08 05:40:29.641Z","type":"RouteStatus","status":"ADVERTISED","message":{{"prefix":"10.{}.0.0/16","asPath":"65000 65010","localPref":100,"med":100,"nextHopIp":"169.254.{}.1","weight":32768}}}}"#,
                n % 10,
                n,
                t_ms,
                n,
                n
            )
        } else {
            let details = rng.pick(&bgp).replace("{n}", &n.to_string());
            format!(
                r#"{{"resource_id":"vpn-0123456789abcdef{}_203.0.113.{}","event_timestamp":{},"timestamp":"2025-11-08 05:40:29.641Z","type":"BGPStatus","status":"UP","message":{{"details":"{}"}}}}"#,
                n % 10,
                n,
                t_ms,
                details
            )
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

fn tunnelwatch(input: &[u8]) -> usize {
    let mut decoder = Decoder::new(
        "bench/vpn-0123456789abcdef0-203.0.113.12.ndjson",
        DecoderOptions::default(),
    );
    let mut events = 0;
    decoder.decode_all(input, &mut |p| {
        if let Parsed::Event(e) = p {
            black_box(&e);
            events += 1;
        }
    });
    events
}

fn serde_value(input: &[u8]) -> usize {
    let mut n = 0;
    for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).expect("valid JSON");
        black_box(&v);
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let input = corpus();
    assert_eq!(tunnelwatch(&input), RECORDS, "every record must parse");
    assert_eq!(serde_value(&input), RECORDS);
    let mut g = c.benchmark_group("parse_100k_ndjson");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| serde_value(black_box(&input)))
    });
    g.bench_function("tunnelwatch_parse_classify", |b| {
        b.iter(|| tunnelwatch(black_box(&input)))
    });
    g.finish();

    // A same-run ratio, interleaved to share the machine's mood.
    let (mut base, mut ours) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..10 {
        let t = Instant::now();
        black_box(serde_value(&input));
        base += t.elapsed();
        let t = Instant::now();
        black_box(tunnelwatch(&input));
        ours += t.elapsed();
    }
    let secs = ours.as_secs_f64() / 10.0;
    println!(
        "\nsummary: {} records, {:.1} MB; serde_json Value {:.2} M records/s; tunnelwatch {:.2} M records/s ({:.0} MB/s); ratio tunnelwatch/baseline = {:.2}",
        RECORDS,
        input.len() as f64 / 1e6,
        RECORDS as f64 / (base.as_secs_f64() / 10.0) / 1e6,
        RECORDS as f64 / secs / 1e6,
        input.len() as f64 / secs / 1e6,
        ours.as_secs_f64() / base.as_secs_f64()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}

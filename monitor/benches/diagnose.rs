//! Diagnosing a 1,000-connection, 7-day fleet from its records in memory (issue 13's
//! performance target is ≤ 5 s and ≤ 3× one scan of the same rows), against a baseline in the
//! same run: a plain loop over the same records that counts them per connection, kind and
//! severity (what any pass over the rows costs at least). The records are synthetic but shaped
//! like the simulator's: a routine rekey record per tunnel every 30 minutes, and per connection
//! a few incidents (PSK mismatch, DPD flaps, an endpoint replacement) with their error records
//! and recoveries. This measures the rules, not the store: `tunnelwatch diagnose` adds the SQL
//! read (BENCHMARKS.md has a scale run of the whole command).
//!
//! Reproduce: `cargo bench -p tunnelwatch-monitor --bench diagnose`. The last line is the
//! summary with the ratio.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use tunnelwatch_monitor::diagnose::{Record, diagnose_connection};
use tunnelwatch_parsers::{MessageKind, PhaseState, Severity};

const CONNECTIONS: usize = 1_000;
const MIN: i64 = 60_000;
const DAYS: i64 = 7;

fn rec(ts: i64, ip: &Arc<str>, kind: MessageKind, sev: Severity, up: bool) -> Record {
    let p = if up {
        PhaseState::Established
    } else {
        PhaseState::Down
    };
    Record {
        ts,
        tunnel_ip: ip.clone(),
        kind,
        severity: sev,
        phase1: Some(p),
        phase2: Some(p),
        bgp_transition: None,
        prefix: None,
    }
}

/// One connection's records, in time order per tunnel.
fn connection(c: usize) -> Vec<Record> {
    let ips: [Arc<str>; 2] = [
        Arc::from(format!("10.{}.{}.1", c / 256, c % 256)),
        Arc::from(format!("10.{}.{}.2", c / 256, c % 256)),
    ];
    let mut out = Vec::new();
    let end = DAYS * 1440 * MIN;
    for (t, ip) in ips.iter().enumerate() {
        let mut ts = (c as i64 * 7 + t as i64 * 13) % 30 * MIN;
        while ts < end {
            out.push(rec(
                ts,
                ip,
                MessageKind::CreateChildSaResponseReceived,
                Severity::Info,
                true,
            ));
            ts += 30 * MIN;
        }
    }
    let e = Severity::Error;
    let day = 1440 * MIN;
    let base = (c as i64 % 5) * 97 * MIN;
    // A PSK mismatch on day 1, three DPD flaps on day 3, an endpoint replacement on day 5.
    let a = &ips[0];
    out.push(rec(day + base, a, MessageKind::IkeSaDeleted, e, false));
    for k in 0..40 {
        out.push(rec(
            day + base + (k + 1) * MIN,
            a,
            MessageKind::PskMismatch,
            e,
            false,
        ));
        out.push(rec(
            day + base + (k + 1) * MIN + 1,
            a,
            MessageKind::AuthFailed,
            e,
            false,
        ));
    }
    out.push(rec(
        day + base + 45 * MIN,
        a,
        MessageKind::CreateChildSaRequestReceived,
        Severity::Info,
        true,
    ));
    for f in 0..3 {
        let at = 3 * day + base + f * 15 * MIN;
        out.push(rec(at, a, MessageKind::DpdTimeout, e, false));
        out.push(rec(
            at + 2 * MIN,
            a,
            MessageKind::CreateChildSaRequestReceived,
            Severity::Info,
            true,
        ));
    }
    let b = &ips[1];
    out.push(rec(5 * day + base, b, MessageKind::IkeSaDeleted, e, false));
    out.push(rec(
        5 * day + base + 5 * MIN,
        b,
        MessageKind::CreateChildSaResponseReceived,
        Severity::Info,
        true,
    ));
    out.sort_by_key(|r| r.ts);
    out
}

/// The baseline: one pass counting the records per kind and severity.
fn scan(fleet: &[Vec<Record>]) -> u64 {
    let mut counts = [[0u64; 3]; MessageKind::ALL.len()];
    for records in fleet {
        for r in records {
            counts[r.kind as usize][r.severity as usize] += 1;
        }
    }
    counts.iter().flatten().sum()
}

fn ours(fleet: &[Vec<Record>]) -> usize {
    let end = DAYS * 1440 * MIN;
    fleet
        .iter()
        .enumerate()
        .map(|(i, records)| {
            diagnose_connection(&format!("vpn-{i:017x}"), records, end)
                .diagnoses
                .len()
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let fleet: Vec<Vec<Record>> = (0..CONNECTIONS).map(connection).collect();
    let rows: usize = fleet.iter().map(Vec::len).sum();
    assert_eq!(
        ours(&fleet),
        CONNECTIONS * 3,
        "each connection: PSK, DPD flapping, replacement"
    );
    let mut g = c.benchmark_group("diagnose_1000_connections_7_days");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("baseline_scan", |b| b.iter(|| scan(black_box(&fleet))));
    g.bench_function("diagnose", |b| b.iter(|| ours(black_box(&fleet))));
    g.finish();
    let rounds = 10;
    let (mut base, mut mine) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(scan(&fleet));
        base += t.elapsed();
        let t = Instant::now();
        black_box(ours(&fleet));
        mine += t.elapsed();
    }
    println!(
        "\nsummary: {CONNECTIONS} connections, {DAYS} days, {rows} records; scan {:.1} ms; diagnose {:.1} ms; ratio = {:.1}",
        base.as_secs_f64() * 1000.0 / rounds as f64,
        mine.as_secs_f64() * 1000.0 / rounds as f64,
        mine.as_secs_f64() / base.as_secs_f64()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}

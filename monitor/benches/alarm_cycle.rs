//! One alarm evaluation cycle for 10,000 alarm instances over a minute of data (issue 11's
//! performance target: ≤ 100 ms per cycle and ≤ 2× the baseline), against two baselines in
//! the same run: a plain loop over the same datapoints that keeps each tunnel's last three
//! minute values in an array found by position, and the same loop finding each tunnel's array
//! by its (vpn_id, tunnel_ip) in a hash map, as anything fed datapoints by identity must. Both
//! count the breaching values for the same 3-of-3 decision, without CloudWatch's missing-data
//! rules, reasons or transitions.
//!
//! Reproduce: `cargo bench -p tunnelwatch-monitor --bench alarm_cycle`. The last line it prints
//! is the summary with the ratio.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group};
use tunnelwatch_monitor::alarm::{AlarmDefinition, AlarmEvaluator};
use tunnelwatch_monitor::{Datapoint, MetricName};

const INSTANCES: usize = 10_000;
const MIN: i64 = 60_000;

fn alarm() -> AlarmDefinition {
    serde_json::from_value(serde_json::json!({
        "name": "A1", "metric": "TunnelState",
        "dimensions": {"VpnId": "*", "TunnelIpAddress": "*"},
        "statistic": "Average", "period": 60, "evaluation_periods": 3,
        "comparison": "LessThanThreshold", "threshold": 1.0,
        "treat_missing_data": "breaching"
    }))
    .unwrap()
}

struct Fleet {
    vpn: Vec<Arc<str>>,
    ip: Vec<Arc<str>>,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet {
            vpn: (0..INSTANCES)
                .map(|i| Arc::from(format!("vpn-{:017x}", i / 2)))
                .collect(),
            ip: (0..INSTANCES)
                .map(|i| Arc::from(format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)))
                .collect(),
        }
    }

    /// Minute `k`'s TunnelState datapoints: every 7th tunnel flaps down for some minutes.
    fn minute(&self, k: i64) -> Vec<Datapoint> {
        (0..INSTANCES)
            .map(|i| {
                let up = !(i % 7 == 0 && (k + i as i64) % 11 < 4);
                let v = if up { 1.0 } else { 0.0 };
                Datapoint {
                    ts: k * MIN,
                    metric: MetricName::TunnelState,
                    vpn_id: self.vpn[i].clone(),
                    tunnel_ip: Some(self.ip[i].clone()),
                    concentrator_id: None,
                    sample_count: 60.0,
                    sum: 60.0 * v,
                    minimum: v,
                    maximum: v,
                }
            })
            .collect()
    }
}

/// (vpn_id, tunnel_ip) → (last three values, alarming).
type Rings = std::collections::HashMap<(Arc<str>, Arc<str>), ([f64; 3], bool)>;

/// The keyed baseline: the same ring, found by the datapoint's identity.
#[derive(Default)]
struct Keyed {
    last: Rings,
}

impl Keyed {
    fn cycle(&mut self, k: i64, points: &[Datapoint]) -> usize {
        let slot = k.rem_euclid(3) as usize;
        let mut changes = 0;
        for p in points {
            let ip = p.tunnel_ip.clone().unwrap_or_else(|| Arc::from(""));
            let (last, alarming) = self
                .last
                .entry((p.vpn_id.clone(), ip))
                .or_insert(([1.0; 3], false));
            last[slot] = p.sum / p.sample_count;
            let now = last.iter().all(|v| *v < 1.0);
            if now != *alarming {
                *alarming = now;
                changes += 1;
            }
        }
        changes
    }
}

/// The baseline: each tunnel's last three values in a ring, 3 of 3 below 1 → alarming.
struct Plain {
    last: Vec<[f64; 3]>,
    alarming: Vec<bool>,
}

impl Plain {
    fn cycle(&mut self, k: i64, points: &[Datapoint]) -> usize {
        let slot = k.rem_euclid(3) as usize;
        let mut changes = 0;
        for (i, p) in points.iter().enumerate() {
            self.last[i][slot] = p.sum / p.sample_count;
            let now = self.last[i].iter().all(|v| *v < 1.0);
            if now != self.alarming[i] {
                self.alarming[i] = now;
                changes += 1;
            }
        }
        changes
    }
}

fn bench(c: &mut Criterion) {
    let fleet = Fleet::new();
    let minutes: Vec<Vec<Datapoint>> = (0..64).map(|k| fleet.minute(k)).collect();
    let mut evaluator = AlarmEvaluator::new([alarm()]).unwrap();
    let mut plain = Plain {
        last: vec![[1.0; 3]; INSTANCES],
        alarming: vec![false; INSTANCES],
    };
    // Warm up: the instances exist and hold a full range.
    let mut k = 0i64;
    for _ in 0..8 {
        for p in &minutes[k as usize % 64] {
            evaluator.push(p);
        }
        evaluator.evaluate((k + 1) * MIN);
        plain.cycle(k, &minutes[k as usize % 64]);
        k += 1;
    }
    assert_eq!(evaluator.instances().len(), INSTANCES);
    // Minute k's datapoints carry ts = k·MIN; the data repeats every 64 minutes but time moves
    // on, so the evaluator sees a new minute every cycle. Stamping happens outside the timing.
    let stamped = |k: i64| -> Vec<Datapoint> {
        let mut points = minutes[k as usize % 64].clone();
        for p in &mut points {
            p.ts = k * MIN;
        }
        points
    };
    let mut cycle_ours = |k: i64, points: &[Datapoint]| {
        for p in points {
            evaluator.push(p);
        }
        evaluator.evaluate((k + 1) * MIN).len()
    };
    let mut g = c.benchmark_group("alarm_cycle_10000_instances");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    let mut keyed = Keyed::default();
    let mut kk = k;
    g.bench_function("baseline_keyed_loop", |b| {
        b.iter(|| {
            kk += 1;
            keyed.cycle(kk, black_box(&minutes[kk as usize % 64]))
        })
    });
    let mut kb = k;
    g.bench_function("baseline_plain_loop", |b| {
        b.iter(|| {
            kb += 1;
            plain.cycle(kb, black_box(&minutes[kb as usize % 64]))
        })
    });
    let mut ko = k;
    g.bench_function("alarm_evaluator", |b| {
        b.iter_batched(
            || {
                ko += 1;
                (ko, stamped(ko))
            },
            // The points are handed back, so that dropping them is not timed (the baselines
            // borrow theirs).
            |(k, points)| (cycle_ours(k, &points), points),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // Paired runs for the ratio.
    let (mut base, mut keyed_t, mut ours, mut transitions) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0usize);
    let rounds = 30;
    for _ in 0..rounds {
        ko += 1;
        let points = stamped(ko);
        let t = Instant::now();
        black_box(plain.cycle(ko, &minutes[ko as usize % 64]));
        base += t.elapsed();
        let t = Instant::now();
        black_box(keyed.cycle(ko, &minutes[ko as usize % 64]));
        keyed_t += t.elapsed();
        let t = Instant::now();
        transitions += black_box(cycle_ours(ko, &points));
        ours += t.elapsed();
    }
    println!(
        "\nsummary: {INSTANCES} alarm instances, one minute of datapoints per cycle ({} transitions over {rounds} cycles); plain loop {:.3} ms/cycle; keyed loop {:.3} ms/cycle; evaluator {:.2} ms/cycle; ratio to plain = {:.1}; ratio to keyed = {:.1}",
        transitions,
        base.as_secs_f64() * 1000.0 / rounds as f64,
        keyed_t.as_secs_f64() * 1000.0 / rounds as f64,
        ours.as_secs_f64() * 1000.0 / rounds as f64,
        ours.as_secs_f64() / base.as_secs_f64(),
        ours.as_secs_f64() / keyed_t.as_secs_f64()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}

//! Generation speed of the fleet simulator (`tunnelwatch simulate`), against the baseline of
//! merely writing the same bytes to the same number of files with `BufWriter`s, in the same
//! run.
//!
//! Run: `cargo bench --bench simulate` (release profile). Defaults: 200 connections over 16
//! days, about 10 million records; override with `TW_BENCH_CONNECTIONS`, `TW_BENCH_DURATION`
//! (e.g. `2d`) and `TW_BENCH_ROUNDS` (interleaved rounds, default 3). Output goes under
//! `target/bench-simulate/` and is removed after each round. A criterion group first measures
//! the in-memory global-order iterator ([`Fleet`]) on a small fleet. The summary lines at the
//! end are what BENCHMARKS.md records; ratio = simulator time / baseline time (median of the
//! rounds).

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tunnelwatch_ingest::simulator::output::{Progress, write_dir};
use tunnelwatch_ingest::simulator::{SimConfig, Simulation, parse_duration};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn small_fleet(c: &mut Criterion) {
    let cfg = SimConfig {
        connections: 10,
        duration_ms: 12 * 3_600_000,
        ..Default::default()
    };
    let sim = Simulation::new(cfg).unwrap();
    let records = sim.fleet().count() as u64;
    let mut group = c.benchmark_group("simulate");
    group.throughput(Throughput::Elements(records));
    group.sample_size(20);
    group.bench_function("fleet_iterator_10_connections_12h", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for r in sim.fleet() {
                bytes += r.line.len();
            }
            black_box(bytes)
        })
    });
    group.finish();
}

/// Writes `size` bytes of `chunk` repeated into `path` through a `BufWriter`.
fn write_bytes(path: &Path, size: u64, chunk: &[u8]) {
    let mut w = BufWriter::with_capacity(256 << 10, File::create(path).unwrap());
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    w.flush().unwrap();
}

/// The baseline: the same files with the same sizes, written by the same number of threads.
fn baseline(dir: &Path, sizes: &[(String, u64)], chunk: &[u8], workers: usize) {
    std::thread::scope(|s| {
        for w in 0..workers {
            s.spawn(move || {
                for (name, size) in sizes.iter().skip(w).step_by(workers) {
                    write_bytes(&dir.join(name), *size, chunk);
                }
            });
        }
    });
}

/// Generation without I/O: every tunnel's records rendered and dropped, on `workers` threads.
fn generate_only(sim: &Simulation, workers: usize) -> u64 {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= sim.tunnel_count() {
                        break;
                    }
                    let n: usize = sim.tunnel(i).map(|r| r.line.len() + 1).sum();
                    total.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    total.into_inner()
}

fn fresh(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn same_run_summary() {
    let connections: usize = env_or("TW_BENCH_CONNECTIONS", "200").parse().unwrap();
    let duration = env_or("TW_BENCH_DURATION", "16d");
    let rounds: usize = env_or("TW_BENCH_ROUNDS", "3").parse().unwrap();
    let cfg = SimConfig {
        connections,
        duration_ms: parse_duration(&duration).unwrap(),
        ..Default::default()
    };
    let sim = Simulation::new(cfg).unwrap();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-simulate");
    let (sim_dir, base_dir) = (root.join("simulate"), root.join("baseline"));

    let (mut t_sim, mut t_gen, mut t_base) = (Vec::new(), Vec::new(), Vec::new());
    let (mut records, mut bytes, mut files) = (0, 0, 0);
    for round in 0..rounds {
        fresh(&sim_dir);
        let t = Instant::now();
        let (summary, _) = write_dir(&sim, &sim_dir, workers, &Progress::default()).unwrap();
        t_sim.push(t.elapsed());
        (records, bytes, files) = (summary.records, summary.bytes, summary.files);

        // The baseline writes exactly these files' sizes, with a real line repeated.
        let mut sizes: Vec<(String, u64)> = std::fs::read_dir(&sim_dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .filter(|(n, _)| n.ends_with(".log"))
            .collect();
        sizes.sort();
        let sample = std::fs::read(sim_dir.join(&sizes[0].0)).unwrap();
        let line_end = sample.iter().position(|&b| b == b'\n').unwrap() + 1;
        let chunk: Vec<u8> = sample[..line_end]
            .iter()
            .copied()
            .cycle()
            .take(64 << 10)
            .collect();
        fresh(&sim_dir);

        let t = Instant::now();
        let generated = generate_only(&sim, workers);
        t_gen.push(t.elapsed());
        assert_eq!(generated, bytes);

        fresh(&base_dir);
        let t = Instant::now();
        baseline(&base_dir, &sizes, &chunk, workers);
        t_base.push(t.elapsed());
        fresh(&base_dir);
        eprintln!(
            "round {round}: simulate {:.2} s, generate only {:.2} s, baseline {:.2} s",
            t_sim[round].as_secs_f64(),
            t_gen[round].as_secs_f64(),
            t_base[round].as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
    let (s, g, b) = (
        median(t_sim).as_secs_f64(),
        median(t_gen).as_secs_f64(),
        median(t_base).as_secs_f64(),
    );
    println!(
        "simulate: {connections} connections over {duration}: {files} files, {records} records, {:.1} MB; {workers} worker(s); median of {rounds} interleaved rounds",
        bytes as f64 / 1e6
    );
    println!(
        "  write_dir (tunnelwatch simulate):  {s:.2} s  {:.2} M records/s  {:.0} MB/s",
        records as f64 / s / 1e6,
        bytes as f64 / s / 1e6
    );
    println!(
        "  generate only (no I/O):            {g:.2} s  {:.2} M records/s  {:.0} MB/s",
        records as f64 / g / 1e6,
        bytes as f64 / g / 1e6
    );
    println!(
        "  baseline BufWriter, same bytes:    {b:.2} s  {:.0} MB/s",
        bytes as f64 / b / 1e6
    );
    println!(
        "  ratio simulate / baseline: {:.2}; generate only / baseline: {:.2}",
        s / b,
        g / b
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    small_fleet(&mut c);
    c.final_summary();
    same_run_summary();
}

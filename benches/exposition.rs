//! `/metrics` encode time for a fleet of 5,000 tunnels (2,500 connections, a few message kinds
//! each): `prometheus-client` rendering of the pipeline and fleet families, against a baseline
//! in the same run that writes the same samples with plain `write!` calls (the least any
//! exposition can cost).
//!
//! Run: `cargo bench --bench exposition`; the summary line gives both times and the ratio.

use std::fmt::Write;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use tunnelwatch_exporters::prometheus::{PipelineStats, SourceStats, encode_with_fleet};
use tunnelwatch_monitor::{ConnectionStatus, FleetStatus, Routing, TunnelStatus};
use tunnelwatch_parsers::MessageKind;

const CONNECTIONS: usize = 2_500;

fn fleet() -> FleetStatus {
    let kinds = [
        MessageKind::CreateChildSaRequestSent,
        MessageKind::CreateChildSaResponseReceived,
        MessageKind::Phase2SaDeleted,
        MessageKind::BgpStateChange,
        MessageKind::DpdTimeout,
    ];
    let mut f = FleetStatus::default();
    for c in 0..CONNECTIONS {
        let vpn: Arc<str> = format!("vpn-{c:017x}").into();
        let bgp = c % 3 != 0;
        for t in 0..2 {
            f.tunnels.push(TunnelStatus {
                vpn_id: vpn.clone(),
                tunnel_ip: format!("198.18.{}.{}", (c * 2 + t) / 256, (c * 2 + t) % 256).into(),
                routing: if bgp { Routing::Bgp } else { Routing::Static },
                state: Some(t == 0 || c % 7 != 0),
                state_since_ms: None,
                phase1_up: Some(true),
                phase2_up: Some(true),
                bgp_established: bgp.then_some(true),
                bytes_in_total: (c * 1_000_003) as u64,
                bytes_out_total: (c * 2_000_003) as u64,
                events: kinds.iter().map(|k| (*k, (c % 97) as u64 + 1)).collect(),
            });
        }
        f.connections.push(ConnectionStatus {
            vpn_id: vpn,
            routing: if bgp { Routing::Bgp } else { Routing::Static },
            state: Some(if c % 7 == 0 { 0.5 } else { 1.0 }),
            concentrator_id: (c % 5 == 0).then(|| Arc::from(format!("vcn-{c:017x}"))),
            bandwidth_bits_per_second: (c % 5 == 0).then_some(1.5e7),
        });
    }
    f
}

fn stats() -> PipelineStats {
    PipelineStats {
        sources: vec![SourceStats {
            name: "simulator".into(),
            kind: "simulator".into(),
            records: 123_456_789,
            bytes: 34_567_890_123,
            rejects: 12,
            lag_seconds: Some(0.8),
            ..Default::default()
        }],
        budget_bytes: Some(64 << 20),
        in_flight_bytes: Some(0),
        store_rows: vec![("tunnel_activity".into(), 1), ("bgp_events".into(), 2)],
        ..Default::default()
    }
}

/// The same samples written directly: the floor for any exposition.
fn plain(f: &FleetStatus) -> String {
    let mut out = String::with_capacity(4 << 20);
    for t in &f.tunnels {
        let l = format!("vpn_id=\"{}\",tunnel_ip=\"{}\"", t.vpn_id, t.tunnel_ip);
        let _ = writeln!(
            out,
            "tunnelwatch_tunnel_state{{{l}}} {}",
            t.state.unwrap_or(false) as u8
        );
        let _ = writeln!(
            out,
            "tunnelwatch_ike_phase_state{{{l},phase=\"1\"}} {}",
            t.phase1_up.unwrap_or(false) as u8
        );
        let _ = writeln!(
            out,
            "tunnelwatch_ike_phase_state{{{l},phase=\"2\"}} {}",
            t.phase2_up.unwrap_or(false) as u8
        );
        if let Some(b) = t.bgp_established {
            let _ = writeln!(
                out,
                "tunnelwatch_bgp_session_established{{{l}}} {}",
                b as u8
            );
        }
        let _ = writeln!(
            out,
            "tunnelwatch_tunnel_data_in_bytes_total{{{l}}} {}",
            t.bytes_in_total
        );
        let _ = writeln!(
            out,
            "tunnelwatch_tunnel_data_out_bytes_total{{{l}}} {}",
            t.bytes_out_total
        );
        for (k, n) in &t.events {
            let _ = writeln!(
                out,
                "tunnelwatch_events_total{{{l},message_kind=\"{}\"}} {n}",
                k.as_str()
            );
        }
    }
    for c in &f.connections {
        let _ = writeln!(
            out,
            "tunnelwatch_connection_tunnel_state{{vpn_id=\"{}\"}} {}",
            c.vpn_id,
            c.state.unwrap_or(0.0)
        );
        if let (Some(id), Some(bw)) = (&c.concentrator_id, c.bandwidth_bits_per_second) {
            let _ = writeln!(
                out,
                "tunnelwatch_concentrator_bandwidth_bytes_per_second{{vpn_id=\"{}\",concentrator_id=\"{id}\"}} {}",
                c.vpn_id,
                bw / 8.0
            );
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let f = fleet();
    let s = stats();
    let text = encode_with_fleet(&s, &f).unwrap();
    assert!(text.contains("tunnelwatch_tunnel_state{"));
    let mut g = c.benchmark_group("metrics_5000_tunnels");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("baseline_plain_write", |b| b.iter(|| plain(black_box(&f))));
    g.bench_function("prometheus_client_encode", |b| {
        b.iter(|| encode_with_fleet(black_box(&s), black_box(&f)).unwrap())
    });
    g.finish();

    let (mut base, mut ours) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..10 {
        let t = Instant::now();
        black_box(plain(&f));
        base += t.elapsed();
        let t = Instant::now();
        black_box(encode_with_fleet(&s, &f).unwrap());
        ours += t.elapsed();
    }
    println!(
        "\nsummary: {} tunnels, {} connections, {:.1} MB of exposition; plain write {:.1} ms; prometheus-client encode {:.1} ms; ratio = {:.2}",
        f.tunnels.len(),
        f.connections.len(),
        text.len() as f64 / 1e6,
        base.as_secs_f64() * 100.0,
        ours.as_secs_f64() * 100.0,
        ours.as_secs_f64() / base.as_secs_f64()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}

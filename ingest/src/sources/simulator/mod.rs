//! `type = "simulator"`: a simulated fleet as a source — `history` of records at once, then live
//! records as the clock reaches them (`speed` simulated seconds per second), one stream per
//! simulated log stream. This is what `tunnelwatch demo` runs.
//!
//! Limits: no checkpoints (a restarted simulator starts a new history); runs on its own thread
//! (the fleet model is synchronous) and stops within ~200 ms of shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use tunnelwatch_parsers::DecoderOptions;

use crate::pipeline::{Delivery, SourceContext, Stream, now_ms};
use crate::simulator::gateway::GatewaySides;
use crate::simulator::live::{LiveFleet, SystemClock};
use crate::simulator::{Scenario, SimConfig, Simulation};
use crate::sources::{BuildError, BuildSource, Run, Source, SourceError};

/// How far past now the simulated fleet is planned (the source runs at most this long).
const HORIZON_MS: i64 = 30 * 86_400_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Simulated VPN connections (two tunnels each).
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Random seed of the fleet.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// History generated at once before going live, e.g. "6h".
    #[serde(default = "default_history")]
    pub history: String,
    /// Simulated seconds per wall-clock second once live.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Random incidents per connection per simulated day (0 = none).
    #[serde(default = "default_faults")]
    pub faults_per_day: f64,
    /// Named fault scenarios to inject (see `tunnelwatch simulate --help`).
    #[serde(default)]
    pub scenarios: Vec<String>,
    /// Also the customer gateways' own logs, e.g. "strongswan,frr" (see `simulate --gateway`).
    #[serde(default)]
    pub gateway: Option<String>,
}

fn default_connections() -> usize {
    20
}
fn default_seed() -> u64 {
    1
}
fn default_history() -> String {
    "6h".into()
}
fn default_speed() -> f64 {
    1.0
}
fn default_faults() -> f64 {
    6.0
}

impl Default for Config {
    fn default() -> Self {
        Config {
            connections: default_connections(),
            seed: default_seed(),
            history: default_history(),
            speed: default_speed(),
            faults_per_day: default_faults(),
            scenarios: Vec::new(),
            gateway: None,
        }
    }
}

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        let history = crate::simulator::parse_duration(&self.history)
            .map_err(|e| BuildError::new(name, format!("history: {e}")))?;
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(BuildError::new(name, "speed: must be a positive number"));
        }
        let scenarios = self
            .scenarios
            .iter()
            .map(|s| {
                Scenario::from_name(s).ok_or_else(|| {
                    BuildError::new(name, format!("scenarios: unknown scenario `{s}`"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let gateway = match &self.gateway {
            Some(list) => GatewaySides::parse(list)
                .map_err(|e| BuildError::new(name, format!("gateway: {e}")))?,
            None => GatewaySides::default(),
        };
        let now = now_ms();
        let start = now - history - (now - history).rem_euclid(60_000);
        let simulation = Simulation::new(SimConfig {
            connections: self.connections,
            start_ms: start,
            duration_ms: (now - start) + HORIZON_MS,
            seed: self.seed,
            scenarios,
            random_faults: self.faults_per_day > 0.0,
            random_faults_per_day: self.faults_per_day,
            gateway,
            ..SimConfig::default()
        })
        .map_err(|e| BuildError::new(name, e.to_string()))?;
        Ok(Box::new(SimulatorSource {
            simulation,
            now,
            speed: self.speed,
        }))
    }
}

/// A built simulator: the fleet is planned at build time.
pub struct SimulatorSource {
    simulation: Simulation,
    now: i64,
    speed: f64,
}

impl SimulatorSource {
    pub fn tunnel_count(&self) -> usize {
        self.simulation.tunnel_count()
    }
}

impl Source for SimulatorSource {
    fn kind(&self) -> &'static str {
        "simulator"
    }

    /// The history (from the simulation's start up to the build time) is replayed first.
    fn replays_at_start(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move {
            let handle = std::thread::Builder::new()
                .name("simulator".into())
                .spawn(move || run_fleet(*self, cx))
                .map_err(|e| SourceError::Io {
                    what: "simulator: cannot start its thread".into(),
                    source: e,
                })?;
            // Wait without blocking the runtime.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(handle.join());
            });
            match rx.await {
                Ok(Ok(r)) => r,
                _ => Err(SourceError::Other("the simulator thread panicked".into())),
            }
        })
    }
}

fn run_fleet(sim: SimulatorSource, cx: SourceContext) -> Result<(), SourceError> {
    let mut live = LiveFleet::new(sim.simulation.fleet(), SystemClock, sim.now, sim.speed);
    let mut streams: HashMap<Arc<str>, Arc<Stream>> = HashMap::new();
    let mut pending: HashMap<Arc<str>, Vec<u8>> = HashMap::new();
    let mut replaying = true;
    while !cx.shutdown.is_set() {
        let now = now_ms();
        let mut n = 0;
        while let Some(rec) = live.take_due(now) {
            let buf = pending.entry(rec.stream.clone()).or_default();
            buf.extend_from_slice(rec.line.as_bytes());
            buf.push(b'\n');
            n += 1;
            if n >= 4096 {
                break;
            }
        }
        // Everything due by now is taken: after this round the history has been handed over.
        let caught_up = replaying && n < 4096;
        let mut round: Vec<Delivery> = (pending.drain())
            .map(|(name, bytes)| {
                let stream = streams
                    .entry(name.clone())
                    .or_insert_with(|| {
                        Arc::new(Stream {
                            id: format!("{}:{name}", cx.name),
                            source: format!("simulator:{name}"),
                            options: DecoderOptions {
                                stream_name: Some(name.to_string()),
                                ..Default::default()
                            },
                        })
                    })
                    .clone();
                Delivery::new(stream, bytes)
            })
            .collect();
        if replaying {
            // The last delivery of a replay round says how far the replay has come (every
            // record before the next one's event time is in this round or an earlier one), or
            // that it is over. With no bytes to carry it, an empty delivery does.
            let mark = match round.pop() {
                Some(last) => Some(last),
                None => streams
                    .values()
                    .next()
                    .map(|s| Delivery::new(s.clone(), Vec::new())),
            };
            match mark {
                Some(last) if caught_up => round.push(last.caught_up()),
                Some(last) => {
                    round.push(last.replayed_until(live.fleet().peek_ts().unwrap_or(i64::MAX)))
                }
                // Nothing was ever sent: nothing of the history is in flight.
                None if caught_up => cx.stats.replaying.store(false, Ordering::Relaxed),
                None => {}
            }
            replaying = !caught_up;
        }
        for delivery in round {
            cx.out.blocking_send(delivery)?;
        }
        if n >= 4096 {
            continue;
        }
        let wait = match live.next_due_wall_ms() {
            Some(due) => (due - now_ms()).clamp(0, 200),
            None => 200,
        };
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    for stream in streams.into_values() {
        cx.out
            .blocking_send(Delivery::new(stream, Vec::new()).end())?;
    }
    Ok(())
}

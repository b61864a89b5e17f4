//! The incident plan: where and when each named and random scenario runs, and its script.
//!
//! Invariants: incidents of one connection never overlap and are at least [`GUARD_MS`] apart;
//! none starts before [`FIRST_START_MS`] after the simulation start (the fleet is still coming
//! up) and every one ends before the simulation ends. Named scenarios are placed first, in the
//! order given; a named scenario that cannot be placed is an error, a random one is skipped.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::model::FleetModel;
use super::scenario::{self, Scenario, Script};
use super::{SimConfig, SimError};

/// Quiet time kept between two incidents of the same connection.
const GUARD_MS: i64 = 10 * 60_000;
/// No incident starts in the first ten minutes (start-up).
pub(crate) const FIRST_START_MS: i64 = 10 * 60_000;

/// How an incident came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Injected {
    /// Asked for with `--scenario`.
    Named,
    /// Drawn by the random fault process.
    Random,
}

#[derive(Debug, Clone)]
pub(crate) struct Incident {
    pub id: u32,
    pub scenario: Scenario,
    pub injected: Injected,
    pub conn: usize,
    pub tunnels: Vec<u8>,
    pub start: i64,
    pub script: Script,
}

#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// In id order (ids start at 1).
    pub incidents: Vec<Incident>,
    /// Indices into `incidents`, per connection.
    by_conn: Vec<Vec<usize>>,
}

impl Plan {
    /// The incidents of connection `conn`, in id order.
    pub fn of(&self, conn: usize) -> impl Iterator<Item = &Incident> {
        self.by_conn
            .get(conn)
            .into_iter()
            .flatten()
            .map(|&i| &self.incidents[i])
    }

    /// Intervals during which tunnel `t` of connection `conn` carries no traffic.
    pub fn traffic_down(&self, conn: usize, t: u8) -> Vec<(i64, i64)> {
        let mut v: Vec<(i64, i64)> = self
            .of(conn)
            .flat_map(|i| i.script.traffic_down.iter())
            .filter(|(tt, _, _)| *tt == t)
            .map(|(_, a, b)| (*a, *b))
            .collect();
        v.sort_unstable();
        v
    }
}

struct Busy {
    /// Per connection: occupied `[start, end]` spans.
    spans: Vec<Vec<(i64, i64)>>,
}

impl Busy {
    fn free(&self, conn: usize, start: i64, end: i64) -> bool {
        self.spans[conn]
            .iter()
            .all(|&(a, b)| end + GUARD_MS <= a || start >= b + GUARD_MS)
    }
}

pub(crate) fn plan(model: &mut FleetModel, config: &SimConfig) -> Result<Plan, SimError> {
    let n = model.connections.len();
    let start = config.start_ms;
    let end = config.start_ms + config.duration_ms;
    let mut busy = Busy {
        spans: vec![Vec::new(); n],
    };
    let mut plan = Plan {
        incidents: Vec::new(),
        by_conn: vec![Vec::new(); n],
    };

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(1);
    for &scenario in &config.scenarios {
        let span = scenario.max_span_ms();
        let earliest = start + FIRST_START_MS;
        let latest = end - span - 60_000;
        if latest < earliest {
            return Err(SimError::TooShort {
                scenario: scenario.name(),
                needed_min: (FIRST_START_MS + span + 60_000 + 59_999) / 60_000,
            });
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let tunnel: u8 = rng.random_range(0..2);
        // Each named scenario on its own connection when possible: compatible connections
        // without incidents first, then ones without incidents that can be adapted, then
        // compatible ones that still have room.
        let fits = |c: usize| scenario.fits(&model.connections[c], usize::from(tunnel));
        let unused = |c: usize| busy.spans[c].is_empty();
        let candidates: Vec<usize> = (order.iter().copied())
            .filter(|&c| fits(c) && unused(c))
            .chain(order.iter().copied().filter(|&c| !fits(c) && unused(c)))
            .chain(order.iter().copied().filter(|&c| fits(c) && !unused(c)))
            .collect();
        // Preferred start: random; then every 10 minutes from the earliest.
        let preferred = rng.random_range(earliest..=latest);
        let mut times = vec![preferred];
        times.extend(
            (0..)
                .map(|k| earliest + k * 600_000)
                .take_while(|&t| t <= latest),
        );
        let mut placed = None;
        'search: for &c in &candidates {
            for &t in &times {
                if busy.free(c, t, t + span) {
                    placed = Some((c, t));
                    break 'search;
                }
            }
        }
        let Some((c, t0)) = placed else {
            return Err(SimError::NoRoom(scenario.name()));
        };
        if !scenario.fits(&model.connections[c], usize::from(tunnel)) {
            scenario.adapt(&mut model.connections[c], usize::from(tunnel));
        }
        add(
            &mut plan,
            &mut busy,
            model,
            scenario,
            Injected::Named,
            c,
            tunnel,
            t0,
            &mut rng,
        );
    }

    if config.random_faults && config.random_faults_per_day > 0.0 {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(2);
        let mean_gap_ms = 86_400_000.0 / config.random_faults_per_day;
        let total_weight: u32 = Scenario::ALL.iter().map(|s| s.random_weight()).sum();
        for c in 0..n {
            let mut t = start;
            loop {
                // Exponential inter-arrival times.
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                t += (-u.ln() * mean_gap_ms) as i64;
                if t >= end {
                    break;
                }
                let mut pick = rng.random_range(0..total_weight);
                let scenario = Scenario::ALL
                    .into_iter()
                    .find(|s| {
                        let w = s.random_weight();
                        if pick < w {
                            true
                        } else {
                            pick -= w;
                            false
                        }
                    })
                    .expect("weights cover the range");
                let tunnel: u8 = rng.random_range(0..2);
                let span = scenario.max_span_ms();
                if t < start + FIRST_START_MS
                    || t + span + 60_000 > end
                    || !scenario.fits(&model.connections[c], usize::from(tunnel))
                    || !busy.free(c, t, t + span)
                {
                    continue;
                }
                add(
                    &mut plan,
                    &mut busy,
                    model,
                    scenario,
                    Injected::Random,
                    c,
                    tunnel,
                    t,
                    &mut rng,
                );
            }
        }
    }
    Ok(plan)
}

#[allow(clippy::too_many_arguments)]
fn add(
    plan: &mut Plan,
    busy: &mut Busy,
    model: &FleetModel,
    scenario: Scenario,
    injected: Injected,
    conn: usize,
    tunnel: u8,
    start: i64,
    rng: &mut ChaCha8Rng,
) {
    let tunnels = if scenario.both_tunnels() {
        vec![0, 1]
    } else {
        vec![tunnel]
    };
    let script = scenario::build(scenario, &model.connections[conn], &tunnels, start, rng);
    busy.spans[conn].push((start, script.end));
    plan.by_conn[conn].push(plan.incidents.len());
    plan.incidents.push(Incident {
        id: plan.incidents.len() as u32 + 1,
        scenario,
        injected,
        conn,
        tunnels,
        start,
        script,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(scenarios: Vec<Scenario>, random: bool) -> SimConfig {
        SimConfig {
            connections: 4,
            duration_ms: 8 * 3_600_000,
            scenarios,
            random_faults: random,
            random_faults_per_day: 3.0,
            ..Default::default()
        }
    }

    #[test]
    fn named_scenarios_are_placed_and_adapted() {
        let cfg = config(Scenario::ALL.to_vec(), false);
        let mut model = FleetModel::generate(cfg.connections, cfg.seed);
        let plan = plan(&mut model, &cfg).unwrap();
        assert_eq!(plan.incidents.len(), Scenario::ALL.len());
        for i in &plan.incidents {
            let c = &model.connections[i.conn];
            assert!(
                i.scenario.fits(c, usize::from(i.tunnels[0])),
                "{}",
                i.scenario
            );
            assert!(i.start >= cfg.start_ms + FIRST_START_MS);
            assert!(i.script.end < cfg.start_ms + cfg.duration_ms);
        }
        for a in &plan.incidents {
            for b in &plan.incidents {
                if a.id != b.id && a.conn == b.conn {
                    assert!(
                        a.script.end + GUARD_MS <= b.start || b.script.end + GUARD_MS <= a.start
                    );
                }
            }
        }
    }

    #[test]
    fn too_short_and_no_room() {
        let mut cfg = config(vec![Scenario::SingleTunnel], false);
        cfg.duration_ms = 3_600_000;
        let mut model = FleetModel::generate(cfg.connections, cfg.seed);
        assert!(matches!(
            plan(&mut model, &cfg),
            Err(SimError::TooShort { .. })
        ));
        let mut cfg = config(vec![Scenario::SingleTunnel; 3], false);
        cfg.connections = 1;
        cfg.duration_ms = 5 * 3_600_000;
        let mut model = FleetModel::generate(cfg.connections, cfg.seed);
        assert!(matches!(plan(&mut model, &cfg), Err(SimError::NoRoom(_))));
    }

    #[test]
    fn random_faults_fit() {
        let cfg = config(vec![], true);
        let mut model = FleetModel::generate(cfg.connections, cfg.seed);
        let plan = plan(&mut model, &cfg).unwrap();
        assert!(!plan.incidents.is_empty());
        for i in &plan.incidents {
            assert_eq!(i.injected, Injected::Random);
            assert!(
                i.scenario
                    .fits(&model.connections[i.conn], usize::from(i.tunnels[0]))
            );
        }
    }
}

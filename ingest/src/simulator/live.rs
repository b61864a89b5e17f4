//! Live mode: releases a [`Fleet`]'s records when the wall clock reaches their event time,
//! optionally accelerated, for a streaming source (`tunnelwatch demo`).
//!
//! A record with event time `ts` is due at wall time
//! `wall_origin + (ts − sim_origin) / acceleration`. Time comes from a [`Clock`], so tests run
//! without sleeping ([`ManualClock`]); async callers use [`LiveFleet::next_due_wall_ms`] and
//! [`LiveFleet::take_due`] with their own timer instead of the blocking iterator.
//!
//! Invariants: records come out in the fleet's order, never before they are due; a caller that
//! falls behind gets every overdue record at once (nothing is skipped).

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Fleet, SimRecord};

/// Wall-clock time in epoch milliseconds, and a way to wait for it.
pub trait Clock {
    fn now_ms(&self) -> i64;
    /// Returns once `now_ms() >= wall_ms` (at once if it already is).
    fn sleep_until(&self, wall_ms: i64);
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn sleep_until(&self, wall_ms: i64) {
        let now = self.now_ms();
        if wall_ms > now {
            std::thread::sleep(Duration::from_millis((wall_ms - now) as u64));
        }
    }
}

/// A clock that only moves when told to (or when slept on): for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Cell<i64>,
}

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock {
            now: Cell::new(now_ms),
        }
    }

    pub fn set(&self, now_ms: i64) {
        self.now.set(now_ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.get()
    }

    fn sleep_until(&self, wall_ms: i64) {
        if wall_ms > self.now.get() {
            self.now.set(wall_ms);
        }
    }
}

/// A fleet paced against a clock.
pub struct LiveFleet<C: Clock> {
    fleet: Fleet,
    clock: C,
    acceleration: f64,
    sim_origin_ms: i64,
    wall_origin_ms: i64,
}

impl<C: Clock> LiveFleet<C> {
    /// Paces `fleet` so that simulated time `sim_origin_ms` (usually the simulation start)
    /// happens now, and simulated time runs `acceleration` times faster than the clock
    /// (1.0 = real time). A non-positive or non-finite acceleration is taken as 1.0.
    pub fn new(fleet: Fleet, clock: C, sim_origin_ms: i64, acceleration: f64) -> LiveFleet<C> {
        let acceleration = if acceleration.is_finite() && acceleration > 0.0 {
            acceleration
        } else {
            1.0
        };
        let wall_origin_ms = clock.now_ms();
        LiveFleet {
            fleet,
            clock,
            acceleration,
            sim_origin_ms,
            wall_origin_ms,
        }
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The fleet (for its truth parts).
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Wall time at which a record with event time `ts_ms` is due.
    pub fn due_wall_ms(&self, ts_ms: i64) -> i64 {
        let offset = (ts_ms - self.sim_origin_ms) as f64 / self.acceleration;
        self.wall_origin_ms + offset.ceil() as i64
    }

    /// Wall time at which the next record is due, `None` when the fleet is exhausted.
    pub fn next_due_wall_ms(&self) -> Option<i64> {
        self.fleet.peek_ts().map(|ts| self.due_wall_ms(ts))
    }

    /// The next record if it is due at `now_wall_ms`.
    pub fn take_due(&mut self, now_wall_ms: i64) -> Option<SimRecord> {
        let due = self.next_due_wall_ms()?;
        (due <= now_wall_ms).then(|| self.fleet.next()).flatten()
    }
}

impl<C: Clock> Iterator for LiveFleet<C> {
    type Item = SimRecord;

    /// Blocks (through the clock) until the next record is due.
    fn next(&mut self) -> Option<SimRecord> {
        let due = self.next_due_wall_ms()?;
        self.clock.sleep_until(due);
        self.fleet.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{SimConfig, Simulation};

    fn fleet() -> (Simulation, i64) {
        let cfg = SimConfig {
            connections: 2,
            duration_ms: 30 * 60_000,
            random_faults: false,
            ..Default::default()
        };
        let start = cfg.start_ms;
        (Simulation::new(cfg).unwrap(), start)
    }

    #[test]
    fn paces_against_the_clock() {
        let (sim, start) = fleet();
        let clock = ManualClock::new(1_000_000);
        let mut live = LiveFleet::new(sim.fleet(), clock, start, 60.0);
        // Nothing is due before its time.
        let first_due = live.next_due_wall_ms().unwrap();
        assert!(first_due >= 1_000_000);
        assert!(live.take_due(first_due - 1).is_none());
        let r = live.take_due(first_due).unwrap();
        assert_eq!(live.due_wall_ms(r.ts_ms), first_due);
        // The blocking iterator advances the manual clock to each record's due time.
        let mut last_ts = r.ts_ms;
        for r in live.by_ref().take(200) {
            assert!(r.ts_ms >= last_ts);
            last_ts = r.ts_ms;
        }
        let due = live.due_wall_ms(last_ts);
        assert_eq!(live.clock().now_ms(), due);
        // 60× acceleration: one simulated minute per wall second.
        assert_eq!(live.due_wall_ms(start + 60_000), 1_001_000);
    }

    #[test]
    fn overdue_records_all_come_out_in_order() {
        let (sim, start) = fleet();
        let all: Vec<SimRecord> = sim.fleet().collect();
        let clock = ManualClock::new(0);
        let mut live = LiveFleet::new(sim.fleet(), clock, start, 1.0);
        let mut got = Vec::new();
        while let Some(r) = live.take_due(i64::MAX / 2) {
            got.push(r);
        }
        assert_eq!(got, all);
    }
}

//! The [`Monitor`]: per-tunnel state machines fed in event-time order, turned into 1-minute
//! datapoints up to a watermark.
//!
//! Owns: the reorder buffer and lateness window, the tunnel and connection registries, the
//! per-minute accumulators, and the live view ([`Monitor::status`]) for exposition.
//!
//! Invariants:
//! - Records are applied in event-time order (ties in arrival order; a traffic sample at `t`
//!   sorts as `t − 1 ms`, so a sample on a minute boundary closes the minute it measured).
//! - [`Monitor::advance`]`(w)` applies every buffered record older than the cut `w − lateness`
//!   and emits the datapoints of every minute that ends at or before the cut, for every tunnel
//!   with known state, whether or not it logged anything in that minute. A record older than the
//!   cut when it arrives is **late**: counted ([`Monitor::late_records`]) and not applied (the
//!   minutes it belongs to are already out); it is still stored by the caller.
//! - A tunnel contributes nothing before its first record (missing, not 0). A connection's
//!   TunnelState is the mean over its tunnels whose state is known at that instant.
//!
//! Limits: the buffer holds the records of one lateness window (default 5 minutes); memory is
//! per tunnel a few hundred bytes plus that buffer. Routing comes from the inventory given in
//! [`MonitorConfig`], else it is inferred: a connection becomes BGP at its first BGP record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use tunnelwatch_parsers::MessageKind;

use crate::datapoint::{Datapoint, MetricName, PERIOD_MS};
use crate::error::MonitorError;
use crate::observation::{Observation, ObservationBody};
use crate::state::{Applied, Routing, TunnelCore};

/// Default lateness window: 5 minutes.
pub const DEFAULT_LATENESS_MS: i64 = 5 * 60_000;

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// How far behind the watermark a record may arrive and still be applied in order.
    pub lateness_ms: i64,
    /// Routing per `vpn_id` from the connection inventory; connections not listed are inferred.
    pub inventory: HashMap<String, Routing>,
    /// Concentrator per `vpn_id` from the inventory (traffic records that name one override it).
    pub concentrators: HashMap<String, Arc<str>>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            lateness_ms: DEFAULT_LATENESS_MS,
            inventory: HashMap::new(),
            concentrators: HashMap::new(),
        }
    }
}

/// What became of a pushed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Buffered; applied in order once the watermark passes it.
    Accepted,
    /// Older than the cut: counted, not applied.
    Late,
}

/// A value that holds between changes, integrated per minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Signal {
    value: Option<f64>,
    since: i64,
    covered_ms: i64,
    integral: f64,
    min: f64,
    max: f64,
}

impl Default for Signal {
    fn default() -> Self {
        Signal {
            value: None,
            since: i64::MIN,
            covered_ms: 0,
            integral: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Signal {
    fn accumulate(&mut self, t: i64) {
        if let Some(v) = self.value {
            let d = t - self.since;
            if d > 0 {
                self.covered_ms += d;
                self.integral += v * d as f64;
                self.min = self.min.min(v);
                self.max = self.max.max(v);
            }
        }
        self.since = self.since.max(t);
    }

    fn set(&mut self, t: i64, v: Option<f64>) {
        self.accumulate(t);
        self.value = v;
    }

    /// Closes the minute ending at `end`: (sample_count s, sum, min, max) if any time was covered.
    fn close(&mut self, end: i64) -> Option<(f64, f64, f64, f64)> {
        self.accumulate(end);
        let out = (self.covered_ms > 0).then(|| {
            (
                self.covered_ms as f64 / 1000.0,
                self.integral / 1000.0,
                self.min,
                self.max,
            )
        });
        self.covered_ms = 0;
        self.integral = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
        out
    }
}

/// Statistic set of discrete samples.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Samples {
    n: u32,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for Samples {
    fn default() -> Self {
        Samples {
            n: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Samples {
    fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn merge(&mut self, o: &Samples) {
        self.n += o.n;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Counts {
    flaps: u32,
    rekeys: u32,
    dpd: u32,
    denials: u32,
}

#[derive(Serialize, Deserialize)]
struct Tunnel {
    vpn_id: Arc<str>,
    tunnel_ip: Arc<str>,
    conn: usize,
    core: TunnelCore,
    state: Signal,
    phase1: Signal,
    phase2: Signal,
    bgp: Signal,
    counts: Counts,
    data_in: Samples,
    data_out: Samples,
    /// Sample rates (bits/s) in the open minute.
    rate: Samples,
    #[serde(with = "event_counts")]
    events: [u64; MessageKind::ALL.len()],
    /// The applied TunnelState and the event time it took that value.
    since: Option<(Option<bool>, i64)>,
}

/// A tunnel's per-kind record counts as a saved state holds them: the non-zero ones as
/// (kind, count) pairs (serde's arrays stop at 32, and most counts are zero).
mod event_counts {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use tunnelwatch_parsers::MessageKind;

    const N: usize = MessageKind::ALL.len();

    pub fn serialize<S: Serializer>(counts: &[u64; N], s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(MessageKind, u64)> = MessageKind::ALL
            .iter()
            .map(|k| (*k, counts[*k as usize]))
            .filter(|(_, n)| *n > 0)
            .collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u64; N], D::Error> {
        let pairs = Vec::<(MessageKind, u64)>::deserialize(d)?;
        let mut counts = [0; N];
        for (k, n) in pairs {
            counts[k as usize] = n;
        }
        Ok(counts)
    }
}

/// `since` after a record at `ts` left the tunnel in `state`: unchanged while the state is.
fn state_since(
    since: Option<(Option<bool>, i64)>,
    state: Option<bool>,
    ts: i64,
) -> (Option<bool>, i64) {
    match since {
        Some((s, t)) if s == state => (s, t),
        _ => (state, ts),
    }
}

#[derive(Serialize, Deserialize)]
struct Connection {
    vpn_id: Arc<str>,
    tunnels: Vec<usize>,
    inventory: Option<Routing>,
    /// Applied records included a BGP record (inference).
    bgp_seen: bool,
    /// Pushed records included a BGP record (live view).
    bgp_pushed: bool,
    concentrator_id: Option<Arc<str>>,
    state: Signal,
    last_bandwidth: Option<f64>,
}

impl Connection {
    fn routing(&self, bgp_seen: bool) -> Routing {
        self.inventory.unwrap_or(if bgp_seen {
            Routing::Bgp
        } else {
            Routing::Static
        })
    }
}

/// A tunnel as the live view sees it (applied records plus the buffered ones).
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelStatus {
    pub vpn_id: Arc<str>,
    pub tunnel_ip: Arc<str>,
    pub routing: Routing,
    /// TunnelState (`None` before the first record that says).
    pub state: Option<bool>,
    /// Event time of the record since which `state` holds (the first record that said it).
    pub state_since_ms: Option<i64>,
    pub phase1_up: Option<bool>,
    pub phase2_up: Option<bool>,
    pub bgp_established: Option<bool>,
    pub bytes_in_total: u64,
    pub bytes_out_total: u64,
    /// Records received per message kind (non-zero ones), late ones included.
    pub events: Vec<(MessageKind, u64)>,
}

/// A connection as the live view sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionStatus {
    pub vpn_id: Arc<str>,
    pub routing: Routing,
    /// Mean TunnelState over the tunnels with a known state.
    pub state: Option<f64>,
    pub concentrator_id: Option<Arc<str>>,
    /// ConcentratorBandwidthUsage of the last complete minute.
    pub bandwidth_bits_per_second: Option<f64>,
}

/// The live view of the fleet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetStatus {
    pub tunnels: Vec<TunnelStatus>,
    pub connections: Vec<ConnectionStatus>,
    pub late_records: u64,
    /// The cut: records before it are applied, minutes ending before it emitted.
    pub applied_until_ms: Option<i64>,
}

/// The metrics engine. See the module documentation.
#[derive(Serialize, Deserialize)]
pub struct Monitor {
    lateness_ms: i64,
    inventory: HashMap<String, Routing>,
    concentrators: HashMap<String, Arc<str>>,
    tunnels: Vec<Tunnel>,
    tunnel_index: HashMap<(Arc<str>, Arc<str>), usize>,
    conns: Vec<Connection>,
    conn_index: HashMap<Arc<str>, usize>,
    pending: BTreeMap<(i64, u64), (usize, i64, ObservationBody)>,
    seq: u64,
    cut: i64,
    open_minute: Option<i64>,
    late: u64,
    /// Emitted, not drained yet (never part of a saved state: see [`Monitor::save`]).
    #[serde(skip)]
    out: Vec<Datapoint>,
}

fn order_ts(ts: i64, body: &ObservationBody) -> i64 {
    match body {
        ObservationBody::Traffic { .. } => ts.saturating_sub(1),
        _ => ts,
    }
}

fn bool_value(b: Option<bool>) -> Option<f64> {
    b.map(|b| if b { 1.0 } else { 0.0 })
}

impl Monitor {
    pub fn new(config: MonitorConfig) -> Result<Monitor, MonitorError> {
        if config.lateness_ms < 0 {
            return Err(MonitorError::InvalidLateness(config.lateness_ms));
        }
        Ok(Monitor {
            lateness_ms: config.lateness_ms,
            inventory: config.inventory,
            concentrators: config.concentrators,
            tunnels: Vec::new(),
            tunnel_index: HashMap::new(),
            conns: Vec::new(),
            conn_index: HashMap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            cut: i64::MIN,
            open_minute: None,
            late: 0,
            out: Vec::new(),
        })
    }

    /// Records that arrived older than the cut (not applied).
    pub fn late_records(&self) -> u64 {
        self.late
    }

    /// Records buffered, waiting for the watermark.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    pub fn tunnel_count(&self) -> usize {
        self.tunnels.len()
    }

    fn tunnel(&mut self, vpn_id: &Arc<str>, tunnel_ip: &Arc<str>) -> usize {
        if let Some(&i) = self.tunnel_index.get(&(vpn_id.clone(), tunnel_ip.clone())) {
            return i;
        }
        let conn = match self.conn_index.get(vpn_id) {
            Some(&c) => c,
            None => {
                let c = self.conns.len();
                self.conns.push(Connection {
                    vpn_id: vpn_id.clone(),
                    tunnels: Vec::new(),
                    inventory: self.inventory.get(&**vpn_id).copied(),
                    bgp_seen: false,
                    bgp_pushed: false,
                    concentrator_id: self.concentrators.get(&**vpn_id).cloned(),
                    state: Signal::default(),
                    last_bandwidth: None,
                });
                self.conn_index.insert(vpn_id.clone(), c);
                c
            }
        };
        let i = self.tunnels.len();
        self.conns[conn].tunnels.push(i);
        self.tunnels.push(Tunnel {
            vpn_id: vpn_id.clone(),
            tunnel_ip: tunnel_ip.clone(),
            conn,
            core: TunnelCore::default(),
            state: Signal::default(),
            phase1: Signal::default(),
            phase2: Signal::default(),
            bgp: Signal::default(),
            counts: Counts::default(),
            data_in: Samples::default(),
            data_out: Samples::default(),
            rate: Samples::default(),
            events: [0; MessageKind::ALL.len()],
            since: None,
        });
        self.tunnel_index
            .insert((vpn_id.clone(), tunnel_ip.clone()), i);
        i
    }

    /// Takes one record. It is applied (in event-time order) by a later [`Monitor::advance`],
    /// unless it is older than the current cut (then it is late).
    pub fn push(&mut self, obs: Observation) -> Pushed {
        let t = self.tunnel(&obs.vpn_id, &obs.tunnel_ip);
        if let Some(kind) = obs.body.kind() {
            self.tunnels[t].events[kind as usize] += 1;
        }
        if matches!(obs.body, ObservationBody::Bgp { .. }) {
            self.conns[self.tunnels[t].conn].bgp_pushed = true;
        }
        let key = order_ts(obs.ts, &obs.body);
        if key < self.cut {
            self.late += 1;
            return Pushed::Late;
        }
        self.seq += 1;
        self.pending.insert((key, self.seq), (t, obs.ts, obs.body));
        Pushed::Accepted
    }

    /// Moves the watermark to `watermark_ms`: applies the records older than
    /// `watermark_ms − lateness` and emits the datapoints of the minutes that end by then.
    /// A watermark behind an earlier one changes nothing.
    pub fn advance(&mut self, watermark_ms: i64) {
        let cut = watermark_ms.saturating_sub(self.lateness_ms);
        if cut <= self.cut {
            return;
        }
        self.cut = cut;
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 >= cut {
                break;
            }
            let ((key, _), (t, ts, body)) = entry.remove_entry();
            self.roll_to(key);
            self.apply(t, ts, &body);
        }
        self.roll_to(cut);
    }

    /// Takes the datapoints emitted so far.
    pub fn drain(&mut self) -> Vec<Datapoint> {
        std::mem::take(&mut self.out)
    }

    /// Closes every open minute that ends at or before `t`.
    fn roll_to(&mut self, t: i64) {
        let Some(mut m) = self.open_minute else {
            if t > i64::MIN {
                self.open_minute = Some(t.div_euclid(PERIOD_MS) * PERIOD_MS);
            }
            return;
        };
        while m + PERIOD_MS <= t {
            self.close_minute(m);
            m += PERIOD_MS;
        }
        self.open_minute = Some(m);
    }

    fn apply(&mut self, t: usize, ts: i64, body: &ObservationBody) {
        let c = self.tunnels[t].conn;
        let mut routing_changed = false;
        if matches!(body, ObservationBody::Bgp { .. }) && !self.conns[c].bgp_seen {
            self.conns[c].bgp_seen = true;
            routing_changed = self.conns[c].inventory.is_none();
        }
        if let ObservationBody::Traffic {
            concentrator_id: Some(id),
            ..
        } = body
            && self.conns[c].concentrator_id.as_ref() != Some(id)
        {
            self.conns[c].concentrator_id = Some(id.clone());
        }
        let routing = self.conns[c].routing(self.conns[c].bgp_seen);
        let tun = &mut self.tunnels[t];
        let Applied {
            flap,
            data_in,
            data_out,
        } = tun.core.apply(ts, body);
        tun.since = Some(state_since(tun.since, tun.core.tunnel_state(routing), ts));
        match body {
            ObservationBody::Activity { kind, .. } => {
                tun.phase1
                    .set(ts, bool_value(tun.core.phase1.map(|p| p.is_up())));
                tun.phase2
                    .set(ts, bool_value(tun.core.phase2.map(|p| p.is_up())));
                match kind {
                    MessageKind::CreateChildSaRequestSent
                    | MessageKind::CreateChildSaRequestReceived => tun.counts.rekeys += 1,
                    MessageKind::DpdTimeout | MessageKind::DpdPeerDead => tun.counts.dpd += 1,
                    _ => {}
                }
            }
            ObservationBody::Bgp { kind, .. } => {
                tun.bgp.set(ts, bool_value(tun.core.bgp_established));
                if flap {
                    tun.counts.flaps += 1;
                }
                if *kind == MessageKind::RouteDenied {
                    tun.counts.denials += 1;
                }
            }
            ObservationBody::Traffic { .. } => {
                if let Some(d) = data_in {
                    tun.data_in.add(d.bytes as f64);
                }
                if let Some(d) = data_out {
                    tun.data_out.add(d.bytes as f64);
                }
                let bytes = data_in.map_or(0, |d| d.bytes) + data_out.map_or(0, |d| d.bytes);
                let interval = data_in.or(data_out).map_or(0, |d| d.interval_ms);
                if interval > 0 {
                    tun.rate.add(bytes as f64 * 8.0 * 1000.0 / interval as f64);
                }
                return;
            }
        }
        if routing_changed {
            let tunnels = self.conns[c].tunnels.clone();
            for i in tunnels {
                let v = bool_value(self.tunnels[i].core.tunnel_state(routing));
                self.tunnels[i].state.set(ts, v);
            }
        } else {
            let v = bool_value(self.tunnels[t].core.tunnel_state(routing));
            self.tunnels[t].state.set(ts, v);
        }
        let mean = self.connection_mean(c);
        self.conns[c].state.set(ts, mean);
    }

    fn connection_mean(&self, c: usize) -> Option<f64> {
        let (mut n, mut sum) = (0u32, 0.0);
        for &i in &self.conns[c].tunnels {
            if let Some(v) = self.tunnels[i].state.value {
                n += 1;
                sum += v;
            }
        }
        (n > 0).then(|| sum / f64::from(n))
    }

    fn close_minute(&mut self, start: i64) {
        let end = start + PERIOD_MS;
        let out = &mut self.out;
        let point =
            |metric: MetricName,
             vpn_id: &Arc<str>,
             tunnel_ip: Option<&Arc<str>>,
             (sample_count, sum, minimum, maximum): (f64, f64, f64, f64)| {
                Datapoint {
                    ts: start,
                    metric,
                    vpn_id: vpn_id.clone(),
                    tunnel_ip: tunnel_ip.cloned(),
                    concentrator_id: None,
                    sample_count,
                    sum,
                    minimum,
                    maximum,
                }
            };
        let samples = |s: &Samples| (f64::from(s.n), s.sum, s.min, s.max);
        let count = |n: u32| (1.0, f64::from(n), f64::from(n), f64::from(n));
        for conn in &mut self.conns {
            let mut conn_in = Samples::default();
            let mut conn_out = Samples::default();
            let mut bandwidth: Option<f64> = None;
            for &i in &conn.tunnels {
                let tun = &mut self.tunnels[i];
                let ip = Some(&tun.tunnel_ip);
                for (metric, signal) in [
                    (MetricName::TunnelState, &mut tun.state),
                    (MetricName::IkePhase1Up, &mut tun.phase1),
                    (MetricName::IkePhase2Up, &mut tun.phase2),
                    (MetricName::BgpSessionEstablished, &mut tun.bgp),
                ] {
                    if let Some(v) = signal.close(end) {
                        out.push(point(metric, &tun.vpn_id, ip, v));
                    }
                }
                for (metric, n) in [
                    (MetricName::BgpFlaps, tun.counts.flaps),
                    (MetricName::Rekeys, tun.counts.rekeys),
                    (MetricName::DpdTimeouts, tun.counts.dpd),
                    (MetricName::RouteDenials, tun.counts.denials),
                ] {
                    if n > 0 {
                        out.push(point(metric, &tun.vpn_id, ip, count(n)));
                    }
                }
                tun.counts = Counts::default();
                for (metric, s, conn_s) in [
                    (MetricName::TunnelDataIn, &mut tun.data_in, &mut conn_in),
                    (MetricName::TunnelDataOut, &mut tun.data_out, &mut conn_out),
                ] {
                    if s.n > 0 {
                        out.push(point(metric, &tun.vpn_id, ip, samples(s)));
                        conn_s.merge(s);
                    }
                    *s = Samples::default();
                }
                if tun.rate.n > 0 {
                    *bandwidth.get_or_insert(0.0) += tun.rate.sum / f64::from(tun.rate.n);
                }
                tun.rate = Samples::default();
            }
            if let Some(v) = conn.state.close(end) {
                out.push(point(MetricName::TunnelState, &conn.vpn_id, None, v));
            }
            for (metric, s) in [
                (MetricName::TunnelDataIn, &conn_in),
                (MetricName::TunnelDataOut, &conn_out),
            ] {
                if s.n > 0 {
                    out.push(point(metric, &conn.vpn_id, None, samples(s)));
                }
            }
            if let (Some(id), Some(b)) = (&conn.concentrator_id, bandwidth) {
                let mut p = point(
                    MetricName::ConcentratorBandwidthUsage,
                    &conn.vpn_id,
                    None,
                    (1.0, b, b, b),
                );
                p.concentrator_id = Some(id.clone());
                out.push(p);
                conn.last_bandwidth = Some(b);
            }
        }
    }

    /// The live view: each tunnel's state after every record received so far (the buffered ones
    /// applied, in order, to a copy), for exposition. Tunnels and connections in first-seen order.
    pub fn status(&self) -> FleetStatus {
        let mut cores: Vec<TunnelCore> = self.tunnels.iter().map(|t| t.core.clone()).collect();
        let mut since: Vec<_> = self.tunnels.iter().map(|t| t.since).collect();
        for (t, ts, body) in self.pending.values() {
            cores[*t].apply(*ts, body);
            let conn = &self.conns[self.tunnels[*t].conn];
            let routing = conn.routing(conn.bgp_seen || conn.bgp_pushed);
            since[*t] = Some(state_since(since[*t], cores[*t].tunnel_state(routing), *ts));
        }
        let mut tunnels = Vec::with_capacity(self.tunnels.len());
        for ((tun, core), since) in self.tunnels.iter().zip(&cores).zip(since) {
            let conn = &self.conns[tun.conn];
            let routing = conn.routing(conn.bgp_seen || conn.bgp_pushed);
            let state = core.tunnel_state(routing);
            tunnels.push(TunnelStatus {
                vpn_id: tun.vpn_id.clone(),
                tunnel_ip: tun.tunnel_ip.clone(),
                routing,
                state,
                state_since_ms: since.filter(|(s, _)| *s == state).map(|(_, t)| t),
                phase1_up: core.phase1.map(|p| p.is_up()),
                phase2_up: core.phase2.map(|p| p.is_up()),
                bgp_established: core.bgp_established,
                bytes_in_total: core.bytes_in_total,
                bytes_out_total: core.bytes_out_total,
                events: MessageKind::ALL
                    .into_iter()
                    .filter_map(|k| {
                        let n = tun.events[k as usize];
                        (n > 0).then_some((k, n))
                    })
                    .collect(),
            });
        }
        let connections = self
            .conns
            .iter()
            .map(|conn| {
                let states: Vec<f64> = conn
                    .tunnels
                    .iter()
                    .filter_map(|&i| tunnels[i].state.map(|s| if s { 1.0 } else { 0.0 }))
                    .collect();
                let concentrator_id = conn.concentrator_id.clone().or_else(|| {
                    // A concentrator named only by a buffered sample.
                    self.pending.values().find_map(|(t, _, b)| match b {
                        ObservationBody::Traffic {
                            concentrator_id: Some(id),
                            ..
                        } if self.tunnels[*t].conn == self.conn_index[&conn.vpn_id] => {
                            Some(id.clone())
                        }
                        _ => None,
                    })
                });
                ConnectionStatus {
                    vpn_id: conn.vpn_id.clone(),
                    routing: conn.routing(conn.bgp_seen || conn.bgp_pushed),
                    state: (!states.is_empty())
                        .then(|| states.iter().sum::<f64>() / states.len() as f64),
                    concentrator_id,
                    bandwidth_bits_per_second: conn.last_bandwidth,
                }
            })
            .collect();
        FleetStatus {
            tunnels,
            connections,
            late_records: self.late,
            applied_until_ms: (self.cut > i64::MIN).then_some(self.cut),
        }
    }
}

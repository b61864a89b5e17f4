//! One tunnel's generator: its IKE/IPsec state (phase states, SPI, IKE message IDs, rekey
//! timers), its BGP session state machine, its traffic counters, and the incident steps the
//! plan gave it. Records come out one at a time in event-time order.
//!
//! How: an agenda of timed actions (routine timers and incident steps) and an outbox of
//! records not yet emitted, both min-heaps on `(time, sequence)`. An action at time `a` only
//! produces records at `a` or later, so a record can leave the outbox as soon as no pending
//! action is earlier than it. The rate limit and rendering happen on the way out, so the
//! truth is collected from the final times.
//!
//! Invariants: rekey timers carry the epoch of the SA they belong to and are ignored once that
//! SA is gone; routine BGP route churn never runs during one of the connection's incidents;
//! nothing is scheduled at or after the simulation end (records already in the outbox are
//! still emitted, so a sequence is never cut in half by a rate-limit delay).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tunnelwatch_parsers::PhaseState;

use super::gateway::{self, Echo};
use super::model::{FleetModel, IkeVersion};
use super::plan::{FIRST_START_MS, Plan};
use super::render::{self, BgpState, BgpText, IkeText, PrefixRef, RouteStatus, Spec, TunnelText};
use super::scenario::{FaultMsg, Initiator, LoopStatus, Op, Scenario};
use super::truth::{TunnelPart, stream_name};
use super::{OutputFormat, SimConfig, SimRecord, StreamKind};

const SEC: i64 = 1_000;

#[derive(Debug, Clone, Copy)]
enum Action {
    Startup,
    Traffic,
    Phase2Rekey { epoch: u32, by: Initiator },
    Phase1Rekey { epoch: u32 },
    RouteChurn,
    RouteReadvertise { prefix: u16 },
    Step { incident: u32, op: Op },
}

struct Pending {
    at: i64,
    seq: u64,
    action: Action,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Out {
    ts: i64,
    seq: u64,
    spec: Spec,
    incident: Option<u32>,
}

impl PartialEq for Out {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Out {}
impl PartialOrd for Out {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Out {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

use PhaseState::{Established, Rekeying};

pub(crate) struct TunnelGen {
    model: Arc<FleetModel>,
    conn: usize,
    tunnel: usize,
    rng: ChaCha8Rng,
    format: OutputFormat,
    end: i64,
    rate_limit: Option<u32>,
    text: TunnelText,
    streams: [Arc<str>; 5],
    /// The customer gateway's answers to AWS's records, and those not yet handed out.
    echo: Option<Echo>,
    echoed: VecDeque<SimRecord>,
    /// The scenario of each of the connection's incidents, by id.
    scenarios: Vec<(u32, Scenario)>,
    bgp_enabled: bool,
    v2: bool,
    nat_t: bool,
    cgw_rekeys: bool,

    p1: PhaseState,
    p2: PhaseState,
    spi: u32,
    aws_msg: u64,
    aws_msg_at: i64,
    cgw_msg: u64,
    sa_epoch: u32,
    ike_epoch: u32,
    bgp: BgpState,

    counters: [u64; 4],
    own_down: Vec<(i64, i64)>,
    sibling_down: Vec<(i64, i64)>,
    incident_spans: Vec<(i64, i64)>,

    agenda: BinaryHeap<Reverse<Pending>>,
    outbox: BinaryHeap<Reverse<Out>>,
    seq: u64,

    last_ts: i64,
    rl_second: i64,
    rl_count: u32,
    clock: render::Clock,

    truth: TunnelPart,
    ipsec_up: Option<bool>,
    bgp_up: Option<bool>,
    ipsec_down_by: Option<u32>,
    bgp_down_by: Option<u32>,
}

fn covers(intervals: &[(i64, i64)], t: i64) -> bool {
    intervals.iter().any(|&(a, b)| a <= t && t < b)
}

impl TunnelGen {
    pub fn new(model: Arc<FleetModel>, plan: Arc<Plan>, config: &SimConfig, index: usize) -> Self {
        let conn = index / 2;
        let tunnel = index % 2;
        let c = &model.connections[conn];
        let tc = &c.tunnels[tunnel];
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(1000 + index as u64);
        let ip = tc.outside_ip.to_string();
        let streams = [
            StreamKind::Activity,
            StreamKind::Bgp,
            StreamKind::Traffic,
            StreamKind::GatewayIke,
            StreamKind::GatewayBgp,
        ]
        .map(|k| Arc::from(stream_name(c, tunnel, k, config.gateway)));
        let echo = (!config.gateway.is_empty()).then(|| {
            Echo::new(
                config.gateway,
                gateway::Peer {
                    tunnel,
                    aws_ip: ip.clone(),
                    cgw_ip: c.cgw_ip.to_string(),
                    aws_inside: tc.aws_inside_ip.to_string(),
                    cgw_inside: tc.cgw_inside_ip.to_string(),
                    ikev2: c.ike_version == IkeVersion::Ikev2,
                    bgp: c.is_bgp(),
                },
            )
        });
        let scenarios = plan.of(conn).map(|i| (i.id, i.scenario)).collect();
        let text = TunnelText {
            resource_id: format!("{}_{ip}", c.vpn_id),
            neighbor: tc.cgw_inside_ip.to_string(),
            cgw_ip: c.cgw_ip.to_string(),
            aws_router_id: tc.aws_inside_ip.to_string(),
            cgw_router_id: c.cgw_ip.to_string(),
            aws_asn: c.aws_asn,
            cgw_asn: c.cgw_asn,
            as_path: tc.as_path.clone(),
            looped_path: format!("{} {}", c.cgw_asn, c.aws_asn),
            prefixes: c.prefixes.clone(),
            concentrator_id: c.concentrator_id.clone(),
            dpd_enabled: tc.dpd_enabled,
            nat_t_detected: tc.nat_t_detected,
        };
        let start = config.start_ms;
        let mut g = TunnelGen {
            conn,
            tunnel,
            format: config.format,
            end: start + config.duration_ms,
            rate_limit: config.rate_limit,
            text,
            streams,
            echo,
            echoed: VecDeque::new(),
            scenarios,
            bgp_enabled: c.is_bgp(),
            v2: c.ike_version == IkeVersion::Ikev2,
            nat_t: tc.nat_t_detected,
            cgw_rekeys: tc.cgw_rekeys,
            p1: PhaseState::Down,
            p2: PhaseState::Down,
            spi: rng.random(),
            aws_msg: 0,
            aws_msg_at: start,
            cgw_msg: 0,
            sa_epoch: 0,
            ike_epoch: 0,
            bgp: BgpState::Idle,
            counters: [
                rng.random_range(0..1u64 << 40),
                rng.random_range(0..1u64 << 40),
                rng.random_range(0..1u64 << 30),
                rng.random_range(0..1u64 << 30),
            ],
            own_down: plan.traffic_down(conn, tunnel as u8),
            sibling_down: plan.traffic_down(conn, 1 - tunnel as u8),
            incident_spans: plan
                .of(conn)
                .map(|i| (i.start - 60 * SEC, i.script.end + 5 * 60 * SEC))
                .collect(),
            agenda: BinaryHeap::new(),
            outbox: BinaryHeap::new(),
            seq: 0,
            last_ts: i64::MIN,
            rl_second: i64::MIN,
            rl_count: 0,
            clock: render::Clock::default(),
            truth: TunnelPart::default(),
            ipsec_up: None,
            bgp_up: None,
            ipsec_down_by: None,
            bgp_down_by: None,
            rng,
            model,
        };
        for inc in plan.of(conn) {
            for s in inc
                .script
                .steps
                .iter()
                .filter(|s| usize::from(s.tunnel) == tunnel)
            {
                g.schedule(
                    s.at,
                    Action::Step {
                        incident: inc.id,
                        op: s.op,
                    },
                );
            }
        }
        let startup = start + g.rng.random_range(0..120 * SEC);
        g.schedule(startup, Action::Startup);
        let first_sample = start + g.rng.random_range(0..60 * SEC);
        g.schedule(first_sample, Action::Traffic);
        if g.bgp_enabled {
            let churn = start + FIRST_START_MS + g.exp_ms(6.0 * 3600.0);
            g.schedule(churn, Action::RouteChurn);
        }
        g
    }

    pub fn streams(&self) -> [Arc<str>; 5] {
        self.streams.clone()
    }

    pub fn truth_part(&self) -> &TunnelPart {
        &self.truth
    }

    pub fn into_truth_part(self) -> TunnelPart {
        self.truth
    }

    fn exp_ms(&mut self, mean_s: f64) -> i64 {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        (-u.ln() * mean_s * 1000.0) as i64
    }

    fn jitter(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    fn schedule(&mut self, at: i64, action: Action) {
        if at >= self.end {
            return;
        }
        self.seq += 1;
        self.agenda.push(Reverse(Pending {
            at,
            seq: self.seq,
            action,
        }));
    }

    fn push(&mut self, ts: i64, spec: Spec, incident: Option<u32>) {
        self.seq += 1;
        self.outbox.push(Reverse(Out {
            ts,
            seq: self.seq,
            spec,
            incident,
        }));
    }

    fn activity(
        &mut self,
        ts: i64,
        p1: PhaseState,
        p2: PhaseState,
        text: IkeText,
        inc: Option<u32>,
    ) {
        self.push(ts, Spec::Activity { p1, p2, text }, inc);
    }

    fn bgp_text(&mut self, ts: i64, text: BgpText, inc: Option<u32>) {
        self.push(ts, Spec::Bgp(text), inc);
    }

    fn transition(&mut self, ts: i64, from: BgpState, to: BgpState, inc: Option<u32>) {
        self.bgp_text(ts, BgpText::StateChange { from, to }, inc);
        self.bgp = to;
    }

    /// The next record of this tunnel, or `None` when the simulation end is reached.
    pub fn next_record(&mut self) -> Option<SimRecord> {
        if let Some(r) = self.echoed.pop_front() {
            return Some(r);
        }
        loop {
            let next_action = self.agenda.peek().map(|Reverse(p)| p.at);
            let next_out = self.outbox.peek().map(|Reverse(o)| o.ts);
            match (next_out, next_action) {
                (Some(o), Some(a)) if o <= a => return Some(self.emit()),
                (Some(_), None) => return Some(self.emit()),
                (_, Some(_)) => {
                    let Reverse(p) = self.agenda.pop().expect("peeked");
                    self.run(p.at, p.action);
                }
                (None, None) => return None,
            }
        }
    }

    fn emit(&mut self) -> SimRecord {
        let Reverse(out) = self.outbox.pop().expect("peeked");
        let mut ts = out.ts.max(self.last_ts);
        if let Some(limit) = self.rate_limit {
            let second = ts.div_euclid(1000);
            if second != self.rl_second {
                self.rl_second = second;
                self.rl_count = 0;
            }
            if self.rl_count >= limit {
                self.rl_second += 1;
                self.rl_count = 0;
                ts = self.rl_second * 1000;
            }
            self.rl_count += 1;
        }
        self.last_ts = ts;
        let mut line = String::with_capacity(256);
        render::render(
            &mut line,
            &out.spec,
            ts,
            self.format,
            &self.text,
            &mut self.clock,
        );
        let message_kind = out.spec.kind();
        if let Some(id) = out.incident {
            self.truth.record(id, ts, message_kind);
        }
        let was_up = self.ipsec_up;
        let kind = match out.spec {
            Spec::Activity { p1, p2, .. } => {
                let up = p1.is_up() && p2.is_up();
                let prev = self.ipsec_up.replace(up);
                if prev == Some(true) && !up {
                    self.ipsec_down_by = out.incident;
                    if let Some(id) = out.incident {
                        self.truth.ipsec_down(id, ts);
                    }
                } else if prev == Some(false)
                    && up
                    && let Some(id) = self.ipsec_down_by.take()
                {
                    self.truth.ipsec_up(id, ts);
                }
                StreamKind::Activity
            }
            Spec::Bgp(BgpText::StateChange { to, .. }) => {
                let up = to == BgpState::Established;
                let prev = self.bgp_up.replace(up);
                if prev == Some(true) && !up {
                    self.bgp_down_by = out.incident;
                    if let Some(id) = out.incident {
                        self.truth.bgp_down(id, ts);
                    }
                } else if prev == Some(false)
                    && up
                    && let Some(id) = self.bgp_down_by.take()
                {
                    self.truth.bgp_up(id, ts);
                }
                StreamKind::Bgp
            }
            Spec::Bgp(_) | Spec::Route { .. } => StreamKind::Bgp,
            Spec::Traffic { .. } => StreamKind::Traffic,
        };
        let stream = self.streams[kind as usize].clone();
        if self.echo.is_some() {
            self.answer(&out.spec, ts, was_up, out.incident);
        }
        SimRecord {
            stream,
            kind,
            ts_ms: ts,
            line,
            message_kind,
        }
    }

    /// Queues the customer gateway's lines that answer the record just emitted (same time).
    fn answer(&mut self, spec: &Spec, ts: i64, was_up: Option<bool>, incident: Option<u32>) {
        let scenario = incident.and_then(|id| {
            self.scenarios
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, s)| *s)
        });
        let now_up = self.ipsec_up.unwrap_or(false);
        let mut lines = Vec::new();
        if let Some(echo) = self.echo.as_mut() {
            echo.answer(spec, ts, was_up, now_up, scenario, &mut lines);
        }
        for (log, line) in lines {
            let kind = match log {
                gateway::Log::Ike => StreamKind::GatewayIke,
                gateway::Log::Bgp => StreamKind::GatewayBgp,
            };
            self.echoed.push_back(SimRecord {
                stream: self.streams[kind as usize].clone(),
                kind,
                ts_ms: ts,
                line,
                message_kind: None,
            });
        }
    }

    fn ipsec_is_up(&self) -> bool {
        self.p1.is_up() && self.p2.is_up()
    }

    fn run(&mut self, at: i64, action: Action) {
        match action {
            Action::Startup => {
                let via = if self.v2 && self.rng.random_bool(0.5) {
                    Initiator::Aws
                } else {
                    Initiator::Cgw
                };
                self.recover(at, via, false, None);
                if self.bgp_enabled {
                    let t = at + self.jitter(SEC, 3 * SEC);
                    self.bgp_establish(t, None);
                }
            }
            Action::Traffic => {
                self.traffic(at);
                self.schedule(at + 60 * SEC, Action::Traffic);
            }
            Action::Phase2Rekey { epoch, by } => {
                if epoch == self.sa_epoch && self.ipsec_is_up() {
                    self.phase2_rekey(at, by);
                }
            }
            Action::Phase1Rekey { epoch } => {
                if epoch == self.ike_epoch && self.ipsec_is_up() {
                    self.phase1_rekey(at);
                }
            }
            Action::RouteChurn => {
                let quiet = !self.incident_spans.iter().any(|&(a, b)| a <= at && at < b);
                if quiet && self.bgp == BgpState::Established && !self.text.prefixes.is_empty() {
                    self.route_churn(at);
                }
                let next = at + self.exp_ms(6.0 * 3600.0);
                self.schedule(next, Action::RouteChurn);
            }
            Action::RouteReadvertise { prefix } => {
                if self.bgp == BgpState::Established {
                    let spec = Spec::Route {
                        status: RouteStatus::Advertised,
                        prefix: PrefixRef::Own(prefix),
                        med: 100,
                        denied: false,
                    };
                    self.push(at, spec, None);
                }
            }
            Action::Step { incident, op } => self.step(at, incident, op),
        }
    }

    // -----------------------------------------------------------------------------------------
    // IKE

    /// An AWS-initiated exchange's message ID. Behind NAT AWS runs periodic DPD (one
    /// INFORMATIONAL exchange every 10 s), which uses up IDs in between.
    fn next_aws_id(&mut self, now: i64) -> u64 {
        let skipped = if self.nat_t {
            ((now - self.aws_msg_at).max(0) / (10 * SEC)) as u64
        } else {
            self.rng.random_range(0..=2)
        };
        self.aws_msg_at = now;
        self.aws_msg += skipped;
        let id = self.aws_msg;
        self.aws_msg += 1;
        id
    }

    fn next_cgw_id(&mut self) -> u64 {
        self.cgw_msg += self.rng.random_range(0..=3);
        let id = self.cgw_msg;
        self.cgw_msg += 1;
        id
    }

    fn options(&self) -> super::model::TunnelOptions {
        self.model.connections[self.conn].options
    }

    /// Schedules the next phase 2 rekey of the SA created at `created`: AWS at
    /// `lifetime − margin − U(0, margin × fuzz)`; a CGW that rekeys on its own does so after
    /// 2,900–3,100 s and wins when earlier.
    fn schedule_phase2(&mut self, created: i64) {
        let o = self.options();
        let margin = i64::from(o.rekey_margin_s) * SEC;
        let fuzz = margin * i64::from(o.rekey_fuzz_percent) / 100;
        let aws_at = created + i64::from(o.phase2_lifetime_s) * SEC - margin - self.jitter(0, fuzz);
        let (at, by) = if self.cgw_rekeys {
            let cgw_at = created + self.jitter(2_900 * SEC, 3_100 * SEC);
            if cgw_at < aws_at {
                (cgw_at, Initiator::Cgw)
            } else {
                (aws_at, Initiator::Aws)
            }
        } else {
            (aws_at, Initiator::Aws)
        };
        let epoch = self.sa_epoch;
        self.schedule(at, Action::Phase2Rekey { epoch, by });
    }

    fn schedule_phase1(&mut self, created: i64) {
        let o = self.options();
        let margin = i64::from(o.rekey_margin_s) * SEC;
        let fuzz = margin * i64::from(o.rekey_fuzz_percent) / 100;
        let at = created + i64::from(o.phase1_lifetime_s) * SEC - margin - self.jitter(0, fuzz);
        let epoch = self.ike_epoch;
        self.schedule(at, Action::Phase1Rekey { epoch });
    }

    fn new_child_sa(&mut self, at: i64) {
        self.spi = self.rng.random();
        self.sa_epoch += 1;
        self.schedule_phase2(at);
    }

    fn phase2_rekey(&mut self, at: i64, by: Initiator) {
        let old = self.spi;
        let mut t = at;
        if !self.v2 {
            // IKEv1 quick mode is not logged; the CGW's DELETE of the old SA is.
            t += self.jitter(0, 2 * SEC);
        } else if by == Initiator::Aws {
            let id = self.next_aws_id(at);
            self.activity(t, Established, Rekeying, IkeText::RequestSent { id }, None);
            if self.cgw_rekeys && self.rng.random_bool(0.05) {
                // Both sides rekeyed at once (RFC 7296 §2.8.1): the redundant SA goes.
                let cid = self.next_cgw_id();
                t += self.jitter(5, 40);
                self.activity(
                    t,
                    Established,
                    Rekeying,
                    IkeText::RequestReceived { id: cid },
                    None,
                );
                t += self.jitter(1, 5);
                self.activity(
                    t,
                    Established,
                    Rekeying,
                    IkeText::ResponseSent { id: cid },
                    None,
                );
                t += self.jitter(10, 300);
                self.activity(
                    t,
                    Established,
                    Established,
                    IkeText::ResponseReceived { id },
                    None,
                );
                t += self.jitter(50, 300);
                self.activity(t, Established, Established, IkeText::RedundantSa, None);
            } else {
                t += self.jitter(20, 400);
                self.activity(
                    t,
                    Established,
                    Established,
                    IkeText::ResponseReceived { id },
                    None,
                );
            }
            t += self.jitter(500, 2_000);
        } else {
            let cid = self.next_cgw_id();
            self.activity(
                t,
                Established,
                Rekeying,
                IkeText::RequestReceived { id: cid },
                None,
            );
            t += self.jitter(1, 20);
            self.activity(
                t,
                Established,
                Established,
                IkeText::ResponseSent { id: cid },
                None,
            );
            t += self.jitter(500, 2_000);
        }
        self.activity(
            t,
            Established,
            Established,
            IkeText::DeletePhase2Sa { spi: old },
            None,
        );
        self.new_child_sa(at);
    }

    fn phase1_rekey(&mut self, at: i64) {
        let mut t = at;
        if self.v2 {
            let id = self.next_aws_id(at);
            self.activity(t, Rekeying, Established, IkeText::RequestSent { id }, None);
            t += self.jitter(20, 300);
            self.activity(
                t,
                Established,
                Established,
                IkeText::ResponseReceived { id },
                None,
            );
            t += self.jitter(300, 1_500);
            // Message IDs restart on the new IKE SA.
            self.aws_msg = 0;
            self.aws_msg_at = t;
            self.cgw_msg = 0;
        } else {
            t += self.jitter(0, 1_500);
        }
        self.activity(t, Established, Established, IkeText::DeleteIkeSa, None);
        self.ike_epoch += 1;
        self.schedule_phase1(at);
    }

    /// IPsec is up again on a new IKE SA (see the module doc of `simulator`, "Recovery").
    fn recover(&mut self, at: i64, via: Initiator, reset_counters: bool, inc: Option<u32>) {
        let mut t = at;
        if self.v2 {
            match via {
                Initiator::Aws => {
                    self.aws_msg = 2;
                    self.cgw_msg = 0;
                    self.aws_msg_at = at;
                    let id = self.next_aws_id(at);
                    self.activity(
                        t,
                        Established,
                        Established,
                        IkeText::RequestSent { id },
                        inc,
                    );
                    t += self.jitter(20, 300);
                    self.activity(
                        t,
                        Established,
                        Established,
                        IkeText::ResponseReceived { id },
                        inc,
                    );
                }
                Initiator::Cgw => {
                    self.aws_msg = 0;
                    self.aws_msg_at = at;
                    self.cgw_msg = 2;
                    let id = self.next_cgw_id();
                    self.activity(
                        t,
                        Established,
                        Established,
                        IkeText::RequestReceived { id },
                        inc,
                    );
                    t += self.jitter(1, 20);
                    self.activity(
                        t,
                        Established,
                        Established,
                        IkeText::ResponseSent { id },
                        inc,
                    );
                }
            }
        } else {
            let stale = self.spi;
            self.activity(
                t,
                Established,
                Established,
                IkeText::DeletePhase2Sa { spi: stale },
                inc,
            );
        }
        self.p1 = Established;
        self.p2 = Established;
        if reset_counters {
            self.counters = [0; 4];
        }
        self.ike_epoch += 1;
        self.schedule_phase1(at);
        self.new_child_sa(at);
    }

    fn step(&mut self, at: i64, inc: u32, op: Op) {
        let inc_id = Some(inc);
        match op {
            Op::Ike { p1, p2, msg } => {
                let text = match msg {
                    FaultMsg::DeleteIkeSa => IkeText::DeleteIkeSa,
                    FaultMsg::DeletePhase2Sa => IkeText::DeletePhase2Sa { spi: self.spi },
                    FaultMsg::DpdTimeout => IkeText::DpdTimeout { retries: 3 },
                    FaultMsg::PeerDead => IkeText::PeerDead,
                    FaultMsg::PskMismatch => IkeText::PskMismatch,
                    FaultMsg::AuthFailed => IkeText::AuthFailed,
                    FaultMsg::PskInvalid => IkeText::PskInvalid,
                    FaultMsg::NoProposalMatch => IkeText::NoProposalMatch,
                    FaultMsg::NoProposalChosen => IkeText::NoProposalChosen,
                    FaultMsg::Phase2Failed => IkeText::Phase2Failed,
                    FaultMsg::Phase1Timeout => IkeText::Phase1Timeout,
                    FaultMsg::TsUnacceptable => IkeText::TsUnacceptable,
                    FaultMsg::AwsRequest => IkeText::RequestSent {
                        id: self.next_aws_id(at),
                    },
                };
                self.activity(at, p1, p2, text, inc_id);
                self.p1 = p1;
                self.p2 = p2;
                if !(p1.is_up() && p2.is_up()) {
                    // The SAs are gone: their rekey timers with them.
                    self.sa_epoch += 1;
                    self.ike_epoch += 1;
                }
            }
            Op::Recover {
                via,
                reset_counters,
            } => self.recover(at, via, reset_counters, inc_id),
            Op::BgpHoldExpired => {
                if self.bgp == BgpState::Established {
                    self.bgp_text(at, BgpText::HoldTimerExpired, inc_id);
                    let t = at + self.jitter(1, 5);
                    self.transition(t, BgpState::Established, BgpState::Idle, inc_id);
                }
            }
            Op::BgpRetry => {
                let from = self.bgp;
                if matches!(from, BgpState::Idle | BgpState::Active) {
                    self.transition(at, from, BgpState::Connect, inc_id);
                    let t = at + self.jitter(1, 3);
                    self.bgp_text(t, BgpText::ConnectInitiated, inc_id);
                    let t = t + self.jitter(3 * SEC, 10 * SEC);
                    self.transition(t, BgpState::Connect, BgpState::Active, inc_id);
                }
            }
            Op::BgpEstablish => self.bgp_establish(at, inc_id),
            Op::PrefixFlood { limit } => {
                if self.bgp != BgpState::Established {
                    return;
                }
                let mut count = self.text.prefixes.len() as u32;
                let warn_at = (limit * 3).div_ceil(4);
                let mut t = at;
                let mut i: u16 = 0;
                while count <= limit {
                    t += self.jitter(5, 40);
                    let spec = Spec::Route {
                        status: RouteStatus::Advertised,
                        prefix: PrefixRef::Flood(i),
                        med: 100,
                        denied: false,
                    };
                    self.push(t, spec, inc_id);
                    i += 1;
                    count += 1;
                    if count == warn_at {
                        t += 1;
                        self.bgp_text(t, BgpText::PrefixWarning { count, limit }, inc_id);
                    }
                }
                t += self.jitter(1, 5);
                self.bgp_text(t, BgpText::PrefixExceeded { count, limit }, inc_id);
                self.bgp_text(t + 1, BgpText::MaxPrefixNotification, inc_id);
                self.transition(t + 2, BgpState::Established, BgpState::Idle, inc_id);
            }
            Op::LoopedRoutes { status, count } => {
                if self.bgp != BgpState::Established {
                    return;
                }
                self.bgp_text(at, BgpText::UpdateReceived { looped: true }, inc_id);
                let status = match status {
                    LoopStatus::Advertised => RouteStatus::Advertised,
                    LoopStatus::Updated => RouteStatus::Updated,
                };
                let mut t = at;
                for i in 0..count {
                    t += self.jitter(1, 10);
                    let spec = Spec::Route {
                        status,
                        prefix: PrefixRef::Looped(i),
                        med: 100,
                        denied: true,
                    };
                    self.push(t, spec, inc_id);
                }
            }
            Op::LoopWithdrawn { count } => {
                let mut t = at;
                for i in 0..count {
                    let spec = Spec::Route {
                        status: RouteStatus::Withdrawn,
                        prefix: PrefixRef::Looped(i),
                        med: 100,
                        denied: false,
                    };
                    self.push(t, spec, inc_id);
                    t += self.jitter(1, 10);
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // BGP

    /// Session establishment from the current state, End-of-RIB, the CGW's update and routes.
    fn bgp_establish(&mut self, at: i64, inc: Option<u32>) {
        let mut t = at;
        match self.bgp {
            BgpState::Established => return,
            BgpState::Idle | BgpState::Active => {
                let from = self.bgp;
                self.transition(t, from, BgpState::Connect, inc);
                t += 1;
                self.bgp_text(t, BgpText::ConnectInitiated, inc);
            }
            BgpState::Connect => self.bgp_text(t, BgpText::ConnectInitiated, inc),
            BgpState::OpenSent | BgpState::OpenConfirm => {}
        }
        if self.bgp == BgpState::Connect {
            t += self.jitter(SEC, 5 * SEC);
            self.transition(t, BgpState::Connect, BgpState::OpenSent, inc);
            t += 1;
            self.bgp_text(t, BgpText::OpenSent, inc);
        }
        t += self.jitter(20, 300);
        self.bgp_text(t, BgpText::OpenReceived, inc);
        t += 1;
        self.transition(t, BgpState::OpenSent, BgpState::OpenConfirm, inc);
        t += self.jitter(20, 300);
        self.transition(t, BgpState::OpenConfirm, BgpState::Established, inc);
        t += self.jitter(300, 2_000);
        self.bgp_text(t, BgpText::EndOfRib, inc);
        t += self.jitter(100, 1_000);
        self.bgp_text(t, BgpText::UpdateReceived { looped: false }, inc);
        for i in 0..self.text.prefixes.len() {
            t += self.jitter(1, 10);
            let spec = Spec::Route {
                status: RouteStatus::Advertised,
                prefix: PrefixRef::Own(i as u16),
                med: 100,
                denied: false,
            };
            self.push(t, spec, inc);
        }
    }

    /// Routine churn: a route flap (withdrawn, re-advertised later) or an attribute update.
    fn route_churn(&mut self, at: i64) {
        let prefix = self.rng.random_range(0..self.text.prefixes.len()) as u16;
        if self.rng.random_bool(0.5) {
            let spec = Spec::Route {
                status: RouteStatus::Withdrawn,
                prefix: PrefixRef::Own(prefix),
                med: 100,
                denied: false,
            };
            self.push(at, spec, None);
            let back = at + self.jitter(30 * SEC, 10 * 60 * SEC);
            self.schedule(back, Action::RouteReadvertise { prefix });
        } else {
            self.bgp_text(at, BgpText::UpdateReceived { looped: false }, None);
            let med = [100, 110, 200][self.rng.random_range(0..3)];
            let spec = Spec::Route {
                status: RouteStatus::Updated,
                prefix: PrefixRef::Own(prefix),
                med,
                denied: false,
            };
            let t = at + self.jitter(1, 10);
            self.push(t, spec, None);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Traffic

    /// One counter sample covering the minute before `at`.
    fn traffic(&mut self, at: i64) {
        let c = &self.model.connections[self.conn];
        let profile = c.traffic;
        let share = c.tunnels[self.tunnel].traffic_share;
        let concentrator = c.concentrator_id.is_some();
        let secs = at.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let local_h =
            ((secs.rem_euclid(86_400)) as f64 / 3600.0 + profile.utc_offset_h).rem_euclid(24.0);
        // Lowest at 04:00 local, highest at 16:00; weekends (1970-01-01 was a Thursday) lighter.
        let diurnal =
            0.15 + 0.85 * (0.5 - 0.5 * ((local_h - 4.0) * std::f64::consts::PI / 12.0).cos());
        let weekday = (days + 3).rem_euclid(7);
        let weekly = if weekday >= 5 { 0.6 } else { 1.0 };
        let noise: f64 = self.rng.random_range(0.85..1.15);
        let mut rate = profile.peak_bytes_per_s * diurnal * weekly * noise;
        if concentrator {
            rate = rate.min(12.4e6);
        }
        let own_down = covers(&self.own_down, at);
        let share = if own_down {
            0.0
        } else if covers(&self.sibling_down, at) {
            1.0
        } else {
            share
        };
        // A down tunnel still counts status checks and BGP/ARP background (reference §6).
        let background: f64 = if own_down {
            self.rng.random_range(200.0..2_000.0)
        } else {
            self.rng.random_range(0.0..500.0)
        };
        let bytes = rate * share * 60.0 + background;
        let bytes_in = (bytes * profile.in_fraction) as u64;
        let bytes_out = (bytes as u64).saturating_sub(bytes_in);
        let pkt = profile.mean_packet_bytes;
        let packets_in = (bytes_in as f64 / pkt).ceil() as u64;
        let packets_out = (bytes_out as f64 / pkt).ceil() as u64;
        self.counters[0] += bytes_in;
        self.counters[1] += bytes_out;
        self.counters[2] += packets_in;
        self.counters[3] += packets_out;
        let spec = Spec::Traffic {
            bytes_in: self.counters[0],
            bytes_out: self.counters[1],
            packets_in: self.counters[2],
            packets_out: self.counters[3],
        };
        self.push(at, spec, None);
    }
}

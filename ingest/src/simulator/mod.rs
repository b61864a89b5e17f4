//! The fleet simulator: a deterministic, seeded model of an AWS Site-to-Site VPN fleet that
//! writes the logs AWS would publish for it: tunnel activity (IKE/IPsec/DPD), tunnel BGP, and
//! the `TunnelTraffic` counter samples of DESIGN §4, plus the ground truth of every fault it
//! injected.
//!
//! Owns: the fleet model ([`model`]), the incident plan ([`Scenario`], named and random), one
//! generator per tunnel (IKE/IPsec state, BGP session state machine, traffic counters), the
//! rendering of records in the JSON and text layouts the parsers read, the ground truth
//! ([`truth`]), writing a fleet to a directory ([`output`]) and pacing it against a clock for a
//! live source ([`live`]).
//!
//! # Invariants
//!
//! - Same [`SimConfig`] (seed included) ⇒ the same records, byte for byte, in the same order,
//!   whichever way they are consumed: [`Fleet`] (one iterator in global event-time order),
//!   [`Simulation::tunnel`] (one tunnel at a time, what [`output::write_dir`] does on several
//!   threads) or [`live::LiveFleet`]. Every tunnel has its own ChaCha8 stream derived from the
//!   seed, so tunnels never influence each other's randomness.
//! - Each tunnel's records come out in event-time order (ties keep the order of the sequence
//!   AWS would log); [`Fleet`] merges tunnels by `(ts_ms, tunnel index)`.
//! - Every `details` text is one of the catalogue texts of `reference/vpn-logs.md` §5, filled in
//!   the way the documented example fills placeholders, and [`SimRecord::message_kind`] is the
//!   kind `tunnelwatch-parsers` classifies it as (the tests check this record by record). No
//!   undocumented "success" texts are invented: a tunnel coming back up is visible through the
//!   phase states of the first record after it (see "Recovery" below).
//! - BGP `status` is derived as the reference says: for a state change from the target state
//!   (`Established` ⇒ `UP`, anything else `DOWN`), for the other messages from the §5.4 table.
//! - The truth ([`truth::Truth`]) is collected from the records actually emitted (after
//!   `--rate-limit` delays), so it always agrees with the files.
//!
//! # The model
//!
//! N connections `vpn-` + 17 hex digits, two tunnels each. Outside IPs are unique per tunnel,
//! drawn from the documentation ranges 203.0.113.0/24, 198.51.100.0/24 and 192.0.2.0/24 (762
//! addresses, shared with the customer gateways' IPs); larger fleets continue in the RFC 2544
//! benchmarking range 198.18.0.0/15. Inside CIDRs are unique /30s of 169.254.0.0/16 outside the
//! reserved ones; AWS takes the first usable address, the CGW the second (the BGP neighbor and
//! the routes' `nextHopIp`). About 60 % of connections use BGP (AWS ASN 64512, a private CGW
//! ASN, hold time 30 s), 70 % IKEv2, 20 % sit on a VPN Concentrator (`concentrator_id`
//! `vcn-` + 17 hex digits: the real ID format is not documented), the rest on a VGW or TGW
//! (prefix limit 100 or 1000, reference §9.3). Tunnel options are the defaults of reference
//! §8: phase 1 lifetime 28,800 s, phase 2 lifetime 3,600 s, rekey margin 270 s, fuzz 100 %.
//!
//! Routine life of a tunnel:
//!
//! - start-up in the first two minutes (as when logging is switched on): the IKE recovery
//!   records below, then for BGP the full session establishment;
//! - AWS-initiated phase 2 rekeys at `created + lifetime − margin − U(0, margin × fuzz)`:
//!   IKEv2 logs 3.3 (`create_child_sa_request_sent`, phase 2 `rekeying`), 3.4 with the same
//!   `id=` (`create_child_sa_response_received`) and the routine
//!   `AWS tunnel received DELETE for Phase 2 SA with SPI: …` for the old SA, states still
//!   established; about 40 % of CGWs rekey earlier themselves (3.1/3.2 then the DELETE), and
//!   2 % of rekeys collide (3.3, 3.1, 3.2, 3.4, then 2.5 `redundant_sa_deleted`). Message IDs
//!   grow by one per exchange, faster behind NAT (periodic DPD), and restart with each IKE SA.
//!   IKEv1 logs only the DELETE for the old SA (quick mode has no catalogue text);
//! - IKE SA (phase 1) rekeys the same way at the phase 1 lifetime: IKEv2 3.3/3.4 with phase 1
//!   `rekeying`, then `AWS tunnel received DELETE for IKE_SA from CGW` with phase 1 still
//!   established (routine, severity info); IKEv1 only the DELETE;
//! - BGP: now and then a route flap (`WITHDRAWN`, re-`ADVERTISED` later) or an attribute update
//!   (`update_received` then `UPDATED`);
//! - a traffic sample every minute: cumulative bytes/packets in and out, diurnal (peak in the
//!   afternoon of the connection's time zone), the connection's traffic on its active tunnel
//!   (both for ECMP on a TGW), failing over to the other tunnel while one is down; a down tunnel
//!   still counts a trickle (reference §6: BGP/ARP background); Concentrator sites are capped
//!   at 100 Mbit/s (in + out).
//!
//! Recovery: AWS documents no "tunnel up" text, so a tunnel coming back is logged with the
//! first exchange on the new IKE SA, with both phases `established`: IKEv2 3.1 + 3.2
//! (CGW-initiated, startup action Add) or 3.3 + 3.4 (AWS-initiated, startup action Start:
//! used after an endpoint replacement and for ts-unacceptable); IKEv1 the CGW's DELETE of its
//! stale phase 2 SA. For BGP the session then re-establishes: `Idle→Connect` (or
//! `Active→Connect`), `connect_initiated`, `Connect→OpenSent`, `open_sent` (AS 64512, holdtime
//! 30, router-id = AWS inside IP), `open_received` (CGW AS, holdtime 30, router-id = CGW outside
//! IP), `OpenSent→OpenConfirm`, `OpenConfirm→Established` (UP), `end_of_rib_sent` (UP),
//! `update_received` (UP) and one `ADVERTISED` RouteStatus per CGW prefix.
//!
//! A BGP tunnel whose IPsec goes down loses its session when the hold timer runs out, 20–30 s
//! after connectivity was lost: `hold_timer_expired` (DOWN), `Established→Idle` (DOWN); then a
//! connect attempt every 120 s while IPsec is down: `Idle→Connect` / `Active→Connect`,
//! `connect_initiated`, `Connect→Active` (all DOWN).
//!
//! # Scenarios and the exact sequences they emit
//!
//! "(BGP outage)" marks the BGP side just described (only on BGP connections); times are
//! offsets from the incident start; `p1/p2` are the phase states of each activity record.
//!
//! - `psk-mismatch` (one tunnel, 15–60 min): `ike_sa_deleted` (down/down: the CGW tore its SA
//!   down after the key change), (BGP outage), then every 45–75 s: IKEv2 `psk_mismatch`
//!   (`cgw:` the CGW outside IP; negotiating/down) + `auth_failed` (down/down); IKEv1
//!   `psk_invalid` (down/down); then recovery.
//! - `proposal-mismatch` (one tunnel, 10–45 min), phase 1 or phase 2 at random: phase 1:
//!   `ike_sa_deleted` (down/down) then every ~60 s `no_proposal_match` (down/down); phase 2:
//!   `phase2_sa_deleted` (established/down, a real teardown), then every ~60 s IKEv2
//!   `no_proposal_chosen` (established/negotiating) + `phase2_failed` (established/down), IKEv1
//!   `no_proposal_chosen` (established/down); (BGP outage); recovery.
//! - `dpd-flap` (one tunnel with DPD enabled, 2–4 flaps over ≤ 1 h): per flap, connectivity is
//!   lost at L; (BGP outage) with the hold timer at L+20–30 s; `dpd_timeout` "after 3
//!   retransmits" (IKEv2) or `dpd_peer_dead` (IKEv1) at L+35–45 s, down/down; recovery 1–4 min
//!   after L.
//! - `ts-unacceptable` (one IKEv2 tunnel, 10–40 min): `create_child_sa_request_sent`
//!   (established/rekeying) + `ts_unacceptable` (established/down), (BGP outage), the same pair
//!   every 60–90 s with phase 2 negotiating, then recovery via 3.3 + 3.4 (AWS-initiated).
//! - `bgp-hold-timer` (one BGP tunnel, 5–30 min; IPsec stays up): `hold_timer_expired`,
//!   `Established→Idle`, connect attempts every 120 s (`Idle→Connect`, `connect_initiated`,
//!   `Connect→Active`, later `Active→Connect`…), then the session re-establishment.
//! - `prefix-limit` (both tunnels of a BGP connection, 10–40 min): the CGW floods prefixes:
//!   `ADVERTISED` routes until 75 % of the limit, `prefix_limit_warning` (UP), more `ADVERTISED`
//!   until limit + 1, `prefix_limit_exceeded` (DOWN), `bgp_notification` 6/1 sent (DOWN),
//!   `Established→Idle` (DOWN); the session stays Idle until the CGW is fixed (AWS's restart
//!   behaviour after a 6/1 is not documented), then re-establishes with the normal prefixes.
//! - `as-path-loop` (both tunnels of a BGP connection, 10–60 min; session stays UP):
//!   `update_received` with path `<cgw-asn> 64512`, `ADVERTISED` + `DENIED due to: as-path
//!   contains our own AS` for 1–3 AWS-side CIDRs (`route_denied`), the same as `UPDATED` every
//!   5–10 min, finally `WITHDRAWN` (no details) for each.
//! - `endpoint-replacement` (one tunnel, 3–10 min; the other untouched; same outside IP):
//!   `ike_sa_deleted` (down/down), (BGP outage), recovery AWS-initiated for IKEv2 (startup action
//!   Start after a replacement, reference §10.2) or CGW-initiated for IKEv1; the new endpoint's
//!   traffic counters restart from 0.
//! - `single-tunnel` (one tunnel, 2 h 05 min – 3 h 30 min, so that more than one hour of it
//!   falls in one UTC day and the Health single-tunnel rule fires): `ike_sa_deleted`
//!   (down/down), (BGP outage), IKEv2 every 5 min `phase1_timeout` (`cgw:` the CGW IP; down/down),
//!   then recovery; traffic fails over to the other tunnel for the whole time.
//! - `lifetime-mismatch` (one tunnel, 4 drops over ≤ 100 min; named only, never random): the
//!   gateway's phase 2 lifetime L (20–30 min, fixed per incident) is shorter than the tunnel's
//!   and it lets the SA expire: `phase2_sa_deleted` (established/down), (BGP outage), recovery
//!   AWS-initiated 40–120 s later; the next drop L ± 10 s after each recovery.
//!
//! Named scenarios (`SimConfig::scenarios`) are placed first, each on its own connection when
//! possible (a compatible one: BGP for BGP scenarios, IKEv2 for ts-unacceptable, DPD for
//! dpd-flap; else a connection without incidents is converted), at random times between 10 min
//! after the start and the end. Random faults (unless disabled) arrive per connection as a
//! Poisson process ([`SimConfig::random_faults_per_day`]) and never overlap another incident of
//! the same connection (10 min apart at least).
//!
//! # Limits
//!
//! At most [`MAX_CONNECTIONS`] connections and [`MAX_DURATION_MS`] of simulated time. The text
//! layout of AWS logs is not published (reference §4): `--format text` writes the documented
//! field order that the parsers recognise as `structured`; traffic samples are always JSON (they
//! are this project's own record, DESIGN §4). A [`Fleet`] with a long duration is cheap: each
//! tunnel generates lazily, holding only its pending actions.

pub mod gateway;
pub mod live;
pub mod model;
pub mod output;
mod plan;
mod render;
mod scenario;
pub mod truth;
mod tunnel;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use tunnelwatch_parsers::MessageKind;

pub use plan::Injected;
pub use scenario::Scenario;

use model::FleetModel;
use plan::Plan;
use tunnel::TunnelGen;

/// Default simulation start: 2026-11-02T00:00:00Z (a Monday), fixed so that the same seed gives
/// the same bytes on any day. `--start now` picks the current minute instead.
pub const DEFAULT_START_MS: i64 = 1_793_577_600_000;

/// The largest fleet: inside /30s of 169.254.0.0/16 must stay unique.
pub const MAX_CONNECTIONS: usize = 5_000;

/// The longest simulated span: 366 days.
pub const MAX_DURATION_MS: i64 = 366 * 86_400_000;

/// Which log stream a record belongs to (in the order of [`TunnelRecords::streams`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    /// Tunnel activity log, stream `<vpn>-<ip>`.
    Activity,
    /// Tunnel BGP log, stream `<vpn>_<ip>-bgp`.
    Bgp,
    /// Traffic counter samples, stream `<vpn>_<ip>-traffic`.
    Traffic,
    /// The customer gateway's IKE daemon log, stream `<vpn>_<ip>-cgw-<daemon>`
    /// ([`gateway`]; only with [`SimConfig::gateway`]).
    GatewayIke,
    /// The customer gateway's BGP daemon log, stream `<vpn>_<ip>-cgw-<daemon>`.
    GatewayBgp,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Activity => "activity",
            StreamKind::Bgp => "bgp",
            StreamKind::Traffic => "traffic",
            StreamKind::GatewayIke => "gateway-ike",
            StreamKind::GatewayBgp => "gateway-bgp",
        }
    }
}

/// How records are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// One JSON object per line, with the documented keys (reference §2 and §3.2).
    #[default]
    Json,
    /// The documented field order, space-separated (activity: `timestamp dpd_enabled
    /// nat_t_detected ike_phase1_state ike_phase2_state event_timestamp details`; BGP:
    /// `timestamp type status details-or-route-key=value resource_id event_timestamp`).
    Text,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Some(OutputFormat::Json),
            "text" => Some(OutputFormat::Text),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Text => "text",
        }
    }
}

/// One generated log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecord {
    /// Log stream name (also the file name without `.log`).
    pub stream: Arc<str>,
    pub kind: StreamKind,
    /// Event time, epoch milliseconds UTC (activity records carry it in seconds on the wire).
    pub ts_ms: i64,
    /// The record as written, without the newline.
    pub line: String,
    /// What the parsers classify the record's message as (`None` for traffic samples and
    /// gateway lines).
    pub message_kind: Option<MessageKind>,
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub connections: usize,
    pub start_ms: i64,
    pub duration_ms: i64,
    pub seed: u64,
    pub format: OutputFormat,
    /// Scenarios to inject by name, in order (a name may repeat).
    pub scenarios: Vec<Scenario>,
    /// Inject random faults besides the named ones.
    pub random_faults: bool,
    /// Mean random incidents per connection per simulated day.
    pub random_faults_per_day: f64,
    /// At most this many records per tunnel within one second of simulated time; further
    /// records are delayed to the next second (never dropped, order kept).
    pub rate_limit: Option<u32>,
    /// Also write the customer gateways' own logs ([`gateway`]).
    pub gateway: gateway::GatewaySides,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            connections: 10,
            start_ms: DEFAULT_START_MS,
            duration_ms: 6 * 3_600_000,
            seed: 1,
            format: OutputFormat::Json,
            scenarios: Vec::new(),
            random_faults: true,
            random_faults_per_day: 1.0,
            rate_limit: None,
            gateway: gateway::GatewaySides::default(),
        }
    }
}

/// Why a simulation cannot be set up (all of these are bad input).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "scenario {scenario} needs a --duration of at least {needed_min} min (incidents start 10 min after the start and must end before the end)"
    )]
    TooShort {
        scenario: &'static str,
        needed_min: i64,
    },
    #[error(
        "cannot place scenario {0} without overlapping another incident: add --connections or --duration"
    )]
    NoRoom(&'static str),
}

/// A planned simulation: the fleet model and its incidents. Cheap to turn into generators
/// any number of times; every generator of the same simulation yields the same records.
#[derive(Debug)]
pub struct Simulation {
    config: SimConfig,
    model: Arc<FleetModel>,
    plan: Arc<Plan>,
}

impl Simulation {
    pub fn new(config: SimConfig) -> Result<Simulation, SimError> {
        if config.connections == 0 || config.connections > MAX_CONNECTIONS {
            return Err(SimError::Config(format!(
                "connections must be between 1 and {MAX_CONNECTIONS}, not {}",
                config.connections
            )));
        }
        if config.duration_ms <= 0 || config.duration_ms > MAX_DURATION_MS {
            return Err(SimError::Config(format!(
                "duration must be positive and at most 366 days, not {} ms",
                config.duration_ms
            )));
        }
        if !(0..=253_402_300_799_999 - MAX_DURATION_MS).contains(&config.start_ms) {
            return Err(SimError::Config(
                "start must be between 1970 and 9998 (epoch timestamps are unsigned)".into(),
            ));
        }
        if config.rate_limit == Some(0) {
            return Err(SimError::Config("rate limit must be at least 1".into()));
        }
        if !(config.random_faults_per_day.is_finite() && config.random_faults_per_day >= 0.0) {
            return Err(SimError::Config(
                "random faults per day must be a non-negative number".into(),
            ));
        }
        let mut model = FleetModel::generate(config.connections, config.seed);
        let plan = plan::plan(&mut model, &config)?;
        Ok(Simulation {
            config,
            model: Arc::new(model),
            plan: Arc::new(plan),
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    pub fn model(&self) -> &FleetModel {
        &self.model
    }

    /// Number of tunnels (two per connection); tunnel `i` is tunnel `i % 2` of connection
    /// `i / 2`.
    pub fn tunnel_count(&self) -> usize {
        self.model.connections.len() * 2
    }

    /// The generator of one tunnel: all its records (activity, BGP, traffic) in time order.
    pub fn tunnel(&self, index: usize) -> TunnelRecords {
        TunnelRecords {
            generator: TunnelGen::new(self.model.clone(), self.plan.clone(), &self.config, index),
        }
    }

    /// All records of the fleet in global event-time order.
    pub fn fleet(&self) -> Fleet {
        Fleet::new((0..self.tunnel_count()).map(|i| self.tunnel(i)).collect())
    }

    /// The ground truth assembled from tunnels' collected parts (tunnel order).
    pub fn truth(&self, parts: &[truth::TunnelPart]) -> truth::Truth {
        truth::Truth::assemble(&self.config, &self.model, &self.plan, parts)
    }
}

/// The records of one tunnel, in time order.
pub struct TunnelRecords {
    generator: TunnelGen,
}

impl TunnelRecords {
    /// What this tunnel contributed to the truth so far (complete once the iterator is done).
    pub fn truth_part(&self) -> &truth::TunnelPart {
        self.generator.truth_part()
    }

    pub fn into_truth_part(self) -> truth::TunnelPart {
        self.generator.into_truth_part()
    }

    /// The stream names of this tunnel (activity, BGP, traffic, gateway IKE, gateway BGP).
    pub fn streams(&self) -> [Arc<str>; 5] {
        self.generator.streams()
    }
}

impl Iterator for TunnelRecords {
    type Item = SimRecord;

    fn next(&mut self) -> Option<SimRecord> {
        self.generator.next_record()
    }
}

/// The whole fleet as one iterator in global event-time order (ties: tunnel order), the shape a
/// live source paces against the wall clock ([`live::LiveFleet`]).
pub struct Fleet {
    tunnels: Vec<TunnelRecords>,
    heads: Vec<Option<SimRecord>>,
    queue: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Fleet {
    fn new(mut tunnels: Vec<TunnelRecords>) -> Fleet {
        let mut heads = Vec::with_capacity(tunnels.len());
        let mut queue = BinaryHeap::with_capacity(tunnels.len());
        for (i, t) in tunnels.iter_mut().enumerate() {
            let head = t.next();
            if let Some(r) = &head {
                queue.push(Reverse((r.ts_ms, i)));
            }
            heads.push(head);
        }
        Fleet {
            tunnels,
            heads,
            queue,
        }
    }

    /// Event time of the next record, without consuming it.
    pub fn peek_ts(&self) -> Option<i64> {
        self.queue.peek().map(|Reverse((ts, _))| *ts)
    }

    /// The truth parts of every tunnel, in tunnel order (complete once the fleet is exhausted).
    pub fn truth_parts(&self) -> Vec<truth::TunnelPart> {
        self.tunnels
            .iter()
            .map(|t| t.truth_part().clone())
            .collect()
    }
}

impl Iterator for Fleet {
    type Item = SimRecord;

    fn next(&mut self) -> Option<SimRecord> {
        let Reverse((_, i)) = self.queue.pop()?;
        let out = self.heads[i].take();
        let next = self.tunnels[i].next();
        if let Some(r) = &next {
            self.queue.push(Reverse((r.ts_ms, i)));
        }
        self.heads[i] = next;
        out
    }
}

/// Parses a positive duration like `90s`, `90m`, `6h`, `2d` or `1h30m` into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let total = crate::duration::parse_ms(s)?;
    if total <= 0 {
        return Err(format!("bad duration {:?}: must be positive", s.trim()));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("6h"), Ok(6 * 3_600_000));
        assert_eq!(parse_duration("90m"), Ok(90 * 60_000));
        assert_eq!(parse_duration("2d"), Ok(2 * 86_400_000));
        assert_eq!(parse_duration("1h30m"), Ok(90 * 60_000));
        assert_eq!(parse_duration("45s"), Ok(45_000));
        assert!(parse_duration("6").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("6y").is_err());
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn default_start_is_documented_instant() {
        assert_eq!(
            tunnelwatch_parsers::time::format_ms(DEFAULT_START_MS),
            "2026-11-02T00:00:00.000Z"
        );
    }
}

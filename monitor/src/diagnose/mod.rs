//! Why a connection is down or flapping: its tunnels' records cut into trouble *episodes*, each
//! matched against the rule base ([`rules::RULES`]) to a root cause with its evidence, time span,
//! confidence and remedy; plus each tunnel's down intervals and flap figures.
//!
//! Episode, per tunnel, in record order: it opens at the first *bad* record — severity warning
//! or error, an activity record with a phase not up, a BGP hold-timer expiry or a transition
//! away from Established — and closes at the tunnel's recovery (the first record after which
//! IPsec is up again and, if the session went down, BGP is Established again), or, for trouble
//! that never took the tunnel down (route denials, prefix warnings), at its last bad record once
//! [`QUIET_MS`] pass without another. Withdrawals of denied prefixes belong to the episode of
//! their denial. Consecutive episodes of one tunnel with the same cause less than an hour apart
//! are one diagnosis (a flapping tunnel), counted in `episodes`.
//!
//! A healthy tunnel gives no diagnosis: routine rekeys, phase 2 deletes with the phases up and
//! rekey collisions are info records, and a lone warning that takes nothing down and matches no
//! rule is not reported. An outage no rule explains is reported as `unexplained`.
//!
//! Limits: works on one connection's records at a time (the caller reads them); no fleet-wide
//! correlation yet; "the other tunnel stayed up" is judged from that tunnel's own episodes (a
//! tunnel that never logged counts as not up).

pub mod gateway;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use tunnelwatch_parsers::{MessageKind, PhaseState, Severity};

use rules::{Ipsec, RULES, Rule, UNEXPLAINED};

/// Trouble that did not take the tunnel down ends after this long without a bad record.
pub const QUIET_MS: i64 = 15 * 60_000;
/// Episodes with the same cause closer than this are one (flapping) diagnosis.
const FLAP_GAP_MS: i64 = 3_600_000;

/// One record of a tunnel, as the rules read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub ts: i64,
    pub tunnel_ip: Arc<str>,
    pub kind: MessageKind,
    pub severity: Severity,
    /// Activity records: the phase states.
    pub phase1: Option<PhaseState>,
    pub phase2: Option<PhaseState>,
    /// BGP state changes: (from, to).
    pub bgp_transition: Option<(Arc<str>, Arc<str>)>,
    /// Route records: the prefix.
    pub prefix: Option<Arc<str>>,
}

/// Counts of one message kind in an episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub message_kind: &'static str,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// One root cause of one tunnel's trouble.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    /// The rule's id (`psk-mismatch`, …).
    pub cause: &'static str,
    pub title: &'static str,
    pub tunnel_ip: Arc<str>,
    pub from_ms: i64,
    /// `None`: still going on at the end of the records.
    pub until_ms: Option<i64>,
    /// Whether it took the tunnel down (TunnelState 0).
    pub tunnel_down: bool,
    pub confidence: f64,
    /// Episodes it covers (more than one: the tunnel flapped).
    pub episodes: usize,
    /// The time up after which its downs recur, when they do (a lifetime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurs_after_ms: Option<i64>,
    pub evidence: Vec<Evidence>,
    pub remedy: &'static str,
    /// What the customer gateway's own logs said, and which side to fix (when its logs are
    /// in the store; see [`gateway`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<gateway::GatewayVerdict>,
}

/// One tunnel's down intervals and flap figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunnelReport {
    pub tunnel_ip: Arc<str>,
    /// (from, until) of each time TunnelState was 0; until `None` while still down.
    pub down: Vec<(i64, Option<i64>)>,
    pub down_ms: i64,
    /// Mean time between the starts of consecutive downs.
    pub mtbf_ms: Option<i64>,
    /// Mean down duration of the downs that ended.
    pub mttr_ms: Option<i64>,
    /// Downs that began at most [`ALIGN_MS`] after a rekey of this tunnel started (a lifetime or
    /// rekey problem when most do; the exchange a recovery logs is not a rekey).
    pub downs_near_rekey: usize,
    /// Downs that overlapped a down of the connection's other tunnel (a shared cause: the
    /// gateway or its uplink, not one tunnel's configuration).
    pub downs_with_other_tunnel: usize,
}

/// How close a down's start must be to a rekey to count as aligned with it.
pub const ALIGN_MS: i64 = 2 * 60_000;

/// The records that are a rekey (IKEv2 CREATE_CHILD_SA exchanges, a rekey collision).
fn is_rekey(k: MessageKind) -> bool {
    matches!(
        k,
        MessageKind::CreateChildSaRequestSent
            | MessageKind::CreateChildSaRequestReceived
            | MessageKind::CreateChildSaResponseSent
            | MessageKind::CreateChildSaResponseReceived
            | MessageKind::ChildRekeyCollision
    )
}

/// One connection's diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionReport {
    pub vpn_id: Arc<str>,
    pub tunnels: Vec<TunnelReport>,
    /// Time order.
    pub diagnoses: Vec<Diagnosis>,
    /// Down time of all tunnels, plus an hour per critical diagnosis: what the fleet ranking
    /// sorts by.
    pub trouble_score: f64,
}

#[derive(Debug, Clone)]
struct Episode {
    from: i64,
    until: Option<i64>,
    last_bad: i64,
    /// (kind, count, first, last), in order of first appearance.
    kinds: Vec<(MessageKind, u64, i64, i64)>,
    ipsec_down: bool,
    state_down: Option<i64>,
    denied: BTreeSet<Arc<str>>,
}

impl Episode {
    fn new(ts: i64) -> Episode {
        Episode {
            from: ts,
            until: None,
            last_bad: ts,
            kinds: Vec::new(),
            ipsec_down: false,
            state_down: None,
            denied: BTreeSet::new(),
        }
    }

    fn note(&mut self, r: &Record) {
        match self.kinds.iter_mut().find(|k| k.0 == r.kind) {
            Some(k) => {
                k.1 += 1;
                k.3 = r.ts;
            }
            None => self.kinds.push((r.kind, 1, r.ts, r.ts)),
        }
    }

    fn has(&self, kind: MessageKind) -> bool {
        self.kinds.iter().any(|k| k.0 == kind)
    }

    fn duration(&self, end: i64) -> i64 {
        self.until.unwrap_or(end) - self.from
    }
}

fn up(p: Option<PhaseState>) -> Option<bool> {
    p.map(|s| matches!(s, PhaseState::Established | PhaseState::Rekeying))
}

/// One tunnel's episodes (records in time order).
fn episodes(records: &[&Record], bgp_routing: bool) -> Vec<Episode> {
    let mut out = Vec::new();
    let mut cur: Option<Episode> = None;
    let (mut ipsec_down, mut bgp_down) = (false, false);
    for r in records {
        // The tunnel's state after this record.
        let phases = (up(r.phase1), up(r.phase2));
        let ipsec_bad = matches!(phases, (Some(false), _) | (_, Some(false)));
        if ipsec_bad {
            ipsec_down = true;
        } else if phases == (Some(true), Some(true)) {
            ipsec_down = false;
        }
        let mut leaves_established = r.kind == MessageKind::HoldTimerExpired;
        if let Some((from, to)) = &r.bgp_transition {
            if to.eq_ignore_ascii_case("Established") {
                bgp_down = false;
            } else if from.eq_ignore_ascii_case("Established") {
                leaves_established = true;
            } else {
                // Any other state is a session that is not up, whether or not these records
                // saw it established before (one that never comes up is down too).
                bgp_down = true;
            }
        }
        if leaves_established {
            bgp_down = true;
        }
        let continues_denial = r.kind == MessageKind::RouteWithdrawn
            && cur
                .as_ref()
                .is_some_and(|c| r.prefix.as_ref().is_some_and(|p| c.denied.contains(p)));
        let bad = r.severity != Severity::Info || ipsec_bad || leaves_established;
        if bad || continues_denial {
            let stale = cur
                .as_ref()
                .is_some_and(|c| c.state_down.is_none() && r.ts - c.last_bad > QUIET_MS);
            if stale {
                out.extend(cur.take());
            }
            let c = cur.get_or_insert_with(|| Episode::new(r.ts));
            c.note(r);
            c.last_bad = r.ts;
            if r.kind == MessageKind::RouteDenied
                && let Some(p) = &r.prefix
            {
                c.denied.insert(p.clone());
            }
            c.ipsec_down |= ipsec_bad;
            let state_is_down = if bgp_routing {
                bgp_down || ipsec_down
            } else {
                ipsec_down
            };
            if state_is_down && c.state_down.is_none() {
                c.state_down = Some(r.ts);
            }
            if continues_denial {
                c.until = Some(r.ts);
            }
            continue;
        }
        // A good record: it may end the episode.
        let Some(c) = &mut cur else { continue };
        let still_down = ipsec_down || (bgp_routing && bgp_down);
        if c.state_down.is_some() && !still_down {
            c.until = Some(r.ts);
            out.extend(cur.take());
        } else if c.state_down.is_none() && r.ts - c.last_bad > QUIET_MS {
            c.until = Some(c.until.unwrap_or(c.last_bad).max(c.last_bad));
            out.extend(cur.take());
        }
    }
    if let Some(mut c) = cur {
        if c.state_down.is_none() {
            c.until = Some(c.until.unwrap_or(c.last_bad).max(c.last_bad));
        }
        out.push(c);
    }
    out
}

/// A tunnel's downs recur with a period when at least this many in a row came after the same
/// time up, within [`PERIODIC_TOLERANCE_MS`] or [`PERIODIC_TOLERANCE_SHARE`] of it, and that
/// time lies within the range of IPsec lifetimes ([`PERIODIC_MIN_UP_MS`] to
/// [`PERIODIC_MAX_UP_MS`]). Four downs make three equal up-times, which independent faults give
/// by chance about once in a 2,000-tunnel week; three downs would make hundreds.
pub const PERIODIC_MIN_DOWNS: usize = 4;
pub const PERIODIC_TOLERANCE_MS: i64 = 45_000;
pub const PERIODIC_TOLERANCE_SHARE: f64 = 0.01;
/// Phase 2 lifetimes start at 900 s; DPD flaps come back within minutes.
pub const PERIODIC_MIN_UP_MS: i64 = 14 * 60_000;
/// The longest phase 1 lifetime (28,800 s) and some.
pub const PERIODIC_MAX_UP_MS: i64 = 9 * 3_600_000;

/// For each of a tunnel's episodes, the up-time after which it recurs when it belongs to a
/// periodic run of downs (see [`PERIODIC_MIN_DOWNS`]). Only downs of IPsec that no
/// configuration error explains count; any other episode breaks a run.
fn periods(eps: &[Episode]) -> Vec<Option<i64>> {
    let mut out = vec![None; eps.len()];
    let candidate = |e: &Episode| {
        e.ipsec_down
            && e.state_down.is_some()
            && e.until.is_some()
            && !rules::CONFIG_ERRORS.iter().any(|k| e.has(*k))
    };
    // The current run's episodes, by index.
    let mut run: Vec<usize> = Vec::new();
    let close = |run: &[usize], out: &mut Vec<Option<i64>>| {
        if run.len() < PERIODIC_MIN_DOWNS {
            return;
        }
        let mut ups: Vec<i64> = run
            .windows(2)
            .map(|w| eps[w[1]].from - eps[w[0]].until.unwrap_or(eps[w[0]].from))
            .collect();
        ups.sort_unstable();
        let median = ups[ups.len() / 2];
        for &i in run {
            out[i] = Some(median);
        }
    };
    let fits = |period: i64, up: i64| {
        let tolerance =
            PERIODIC_TOLERANCE_MS.max((period as f64 * PERIODIC_TOLERANCE_SHARE) as i64);
        (up - period).abs() <= tolerance
    };
    for (i, e) in eps.iter().enumerate() {
        if !candidate(e) {
            close(&run, &mut out);
            run.clear();
            continue;
        }
        let Some(&prev) = run.last() else {
            run.push(i);
            continue;
        };
        let up = e.from - eps[prev].until.unwrap_or(eps[prev].from);
        let in_range = (PERIODIC_MIN_UP_MS..=PERIODIC_MAX_UP_MS).contains(&up);
        let period = (run.len() >= 2)
            .then(|| eps[run[1]].from - eps[run[0]].until.unwrap_or(eps[run[0]].from));
        if in_range && period.is_none_or(|p| fits(p, up)) {
            run.push(i);
        } else {
            close(&run, &mut out);
            run.clear();
            // This down may start a new run: after the previous one, if that gap qualifies.
            if in_range {
                run.push(prev);
            }
            run.push(i);
        }
    }
    close(&run, &mut out);
    out
}

/// What a rule may ask about an episode beyond its own records.
#[derive(Debug, Clone, Copy)]
struct Context {
    /// The connection's other tunnel stayed up throughout.
    other_up: bool,
    /// The episode recurs with a period (see [`periods`]).
    periodic: bool,
}

/// The first rule the episode satisfies.
fn classify(e: &Episode, ctx: Context, end: i64) -> Option<&'static Rule> {
    let has = |ks: &[MessageKind]| ks.iter().any(|k| e.has(*k));
    let duration = e.duration(end);
    RULES.iter().find(|r| {
        (r.any_of.is_empty() || has(r.any_of))
            && !has(r.none_of)
            && match r.ipsec {
                Ipsec::Any => true,
                Ipsec::WentDown => e.ipsec_down,
                Ipsec::StayedUp => !e.ipsec_down,
            }
            && r.min_duration_ms.is_none_or(|m| duration > m)
            && r.max_duration_ms.is_none_or(|m| duration <= m)
            && (!r.other_tunnel_up || ctx.other_up)
            && (!r.periodic || ctx.periodic)
    })
}

/// Diagnoses one connection from its records (any order) up to `end_ms` (the end of the data
/// looked at: an open episode lasts until then).
pub fn diagnose_connection(vpn_id: &str, records: &[Record], end_ms: i64) -> ConnectionReport {
    let mut by_tunnel: BTreeMap<&Arc<str>, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_tunnel.entry(&r.tunnel_ip).or_default().push(r);
    }
    let bgp_routing = records
        .iter()
        .any(|r| r.bgp_transition.is_some() || r.kind == MessageKind::HoldTimerExpired);
    let mut tunnel_episodes: Vec<(Arc<str>, Vec<Episode>)> = Vec::new();
    let mut rekeys: Vec<Vec<i64>> = Vec::new();
    for (ip, mut list) in by_tunnel {
        list.sort_by_key(|r| r.ts);
        tunnel_episodes.push((ip.clone(), episodes(&list, bgp_routing)));
        rekeys.push(
            list.iter()
                .filter(|r| is_rekey(r.kind))
                .map(|r| r.ts)
                .collect(),
        );
    }
    let down_spans = |eps: &[Episode]| -> Vec<(i64, i64)> {
        eps.iter()
            .filter_map(|e| e.state_down.map(|d| (d, e.until.unwrap_or(end_ms))))
            .collect()
    };
    let mut diagnoses: Vec<Diagnosis> = Vec::new();
    let mut tunnels = Vec::new();
    for (i, (ip, eps)) in tunnel_episodes.iter().enumerate() {
        let others: Vec<(i64, i64)> = tunnel_episodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, (_, e))| down_spans(e))
            .collect();
        let two_tunnels = tunnel_episodes.len() == 2;
        let mut last: Option<(usize, i64)> = None; // (index in diagnoses, episode end)
        let periods = periods(eps);
        for (e, period) in eps.iter().zip(periods) {
            let until = e.until.unwrap_or(end_ms);
            let other_up = two_tunnels && !others.iter().any(|(f, u)| *f < until && *u > e.from);
            let ctx = Context {
                other_up,
                periodic: period.is_some(),
            };
            let rule = match classify(e, ctx, end_ms) {
                Some(r) => r,
                None if e.state_down.is_some() => &UNEXPLAINED,
                None => continue,
            };
            let evidence: Vec<Evidence> = e
                .kinds
                .iter()
                .map(|(k, count, first, last)| Evidence {
                    message_kind: k.as_str(),
                    count: *count,
                    first_ms: *first,
                    last_ms: *last,
                })
                .collect();
            // The same cause again within the hour: one flapping diagnosis.
            if let Some((idx, end)) = last
                && diagnoses[idx].cause == rule.id
                && e.from - end < FLAP_GAP_MS
            {
                let d = &mut diagnoses[idx];
                d.until_ms = e.until;
                d.episodes += 1;
                d.tunnel_down |= e.state_down.is_some();
                for ev in evidence {
                    match d
                        .evidence
                        .iter_mut()
                        .find(|x| x.message_kind == ev.message_kind)
                    {
                        Some(x) => {
                            x.count += ev.count;
                            x.last_ms = x.last_ms.max(ev.last_ms);
                        }
                        None => d.evidence.push(ev),
                    }
                }
                last = Some((idx, until));
                continue;
            }
            let strong = e.kinds.iter().map(|k| k.1).sum::<u64>() >= 3;
            diagnoses.push(Diagnosis {
                cause: rule.id,
                title: rule.title,
                tunnel_ip: ip.clone(),
                from_ms: e.from,
                until_ms: e.until,
                tunnel_down: e.state_down.is_some(),
                // Two decimals: a figure for people, stable in JSON.
                confidence: ((rule.confidence + if strong { 0.04 } else { 0.0 }).min(0.99) * 100.0)
                    .round()
                    / 100.0,
                episodes: 1,
                recurs_after_ms: period.filter(|_| rule.periodic),
                evidence,
                remedy: rule.remedy,
                gateway: None,
            });
            last = Some((diagnoses.len() - 1, until));
        }
        let down: Vec<(i64, Option<i64>)> = eps
            .iter()
            .filter_map(|e| e.state_down.map(|d| (d, e.until)))
            .collect();
        let down_ms = down.iter().map(|(f, u)| u.unwrap_or(end_ms) - f).sum();
        let starts: Vec<i64> = down.iter().map(|(f, _)| *f).collect();
        let mtbf_ms = (starts.len() > 1)
            .then(|| (starts[starts.len() - 1] - starts[0]) / (starts.len() as i64 - 1));
        let ended: Vec<i64> = down.iter().filter_map(|(f, u)| u.map(|u| u - f)).collect();
        let mttr_ms = (!ended.is_empty()).then(|| ended.iter().sum::<i64>() / ended.len() as i64);
        // A rekey that began at most ALIGN_MS before the down.
        let near = |from: i64| rekeys[i].iter().any(|r| *r <= from && from - r <= ALIGN_MS);
        let downs_near_rekey = starts.iter().filter(|s| near(**s)).count();
        let downs_with_other_tunnel = down
            .iter()
            .filter(|(f, u)| {
                let u = u.unwrap_or(end_ms);
                others.iter().any(|(of, ou)| *of < u && *ou > *f)
            })
            .count();
        tunnels.push(TunnelReport {
            tunnel_ip: ip.clone(),
            down,
            down_ms,
            mtbf_ms,
            mttr_ms,
            downs_near_rekey,
            downs_with_other_tunnel,
        });
    }
    diagnoses.sort_by(|a, b| (a.from_ms, &a.tunnel_ip).cmp(&(b.from_ms, &b.tunnel_ip)));
    let down_ms: i64 = tunnels.iter().map(|t| t.down_ms).sum();
    let serious = diagnoses
        .iter()
        .filter(|d| d.tunnel_down && d.cause != "endpoint-replacement")
        .count();
    ConnectionReport {
        vpn_id: Arc::from(vpn_id),
        tunnels,
        trouble_score: down_ms as f64 / 3_600_000.0 + serious as f64,
        diagnoses,
    }
}

/// The diagnosis of `report` going on at `at` (or ended less than 15 minutes before) on
/// `tunnel_ip` (any tunnel when `None`), the most confident: what a notification of a state
/// change at `at` names as the cause.
pub fn covering(report: ConnectionReport, tunnel_ip: Option<&str>, at: i64) -> Option<Diagnosis> {
    report
        .diagnoses
        .into_iter()
        .filter(|d| tunnel_ip.is_none_or(|ip| *ip == *d.tunnel_ip))
        .filter(|d| d.from_ms <= at && d.until_ms.is_none_or(|u| u >= at - QUIET_MS))
        .max_by(|a, b| {
            a.confidence
                .total_cmp(&b.confidence)
                .then(a.from_ms.cmp(&b.from_ms))
        })
}

/// Trouble that started on many connections at once: a shared upstream cause (the internet path,
/// an AWS-side event), which no per-connection view shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetEvent {
    /// The earliest start of its diagnoses.
    pub from_ms: i64,
    /// The latest end (`None`: one is still going on).
    pub until_ms: Option<i64>,
    pub connections: Vec<Arc<str>>,
    /// The causes its diagnoses were given, each once.
    pub causes: Vec<&'static str>,
}

/// At least this many connections whose trouble starts within [`FLEET_WINDOW_MS`] of each
/// other make a fleet event — and at least [`FLEET_MIN_SHARE`] of the connections read: in a
/// large fleet a few unrelated outages fall into the same two minutes by chance (1,000
/// connections with ~800 incidents a day gave hundreds of 3-connection coincidences a week).
pub const FLEET_MIN_CONNECTIONS: usize = 3;
pub const FLEET_MIN_SHARE: f64 = 0.02;
pub const FLEET_WINDOW_MS: i64 = 2 * 60_000;

/// The fleet events of `reports`: diagnoses that took a tunnel down, grouped when they start
/// within [`FLEET_WINDOW_MS`] of the group's first, on at least [`FLEET_MIN_CONNECTIONS`]
/// connections and [`FLEET_MIN_SHARE`] of them. Each is reported once (its connections keep
/// their own diagnoses).
pub fn fleet_events(reports: &[ConnectionReport]) -> Vec<FleetEvent> {
    let needed =
        FLEET_MIN_CONNECTIONS.max((reports.len() as f64 * FLEET_MIN_SHARE).ceil() as usize);
    let mut starts: Vec<(i64, Option<i64>, &Arc<str>, &'static str)> = reports
        .iter()
        .flat_map(|r| {
            r.diagnoses
                .iter()
                .filter(|d| d.tunnel_down)
                .map(move |d| (d.from_ms, d.until_ms, &r.vpn_id, d.cause))
        })
        .collect();
    starts.sort_by_key(|s| s.0);
    let mut out = Vec::new();
    let mut i = 0;
    while i < starts.len() {
        let first = starts[i].0;
        let group: Vec<_> = starts[i..]
            .iter()
            .take_while(|s| s.0 - first <= FLEET_WINDOW_MS)
            .collect();
        let mut connections: Vec<Arc<str>> = group.iter().map(|s| s.2.clone()).collect();
        connections.sort();
        connections.dedup();
        if connections.len() >= needed {
            let mut causes: Vec<&'static str> = Vec::new();
            for s in &group {
                if !causes.contains(&s.3) {
                    causes.push(s.3);
                }
            }
            out.push(FleetEvent {
                from_ms: first,
                until_ms: group
                    .iter()
                    .map(|s| s.1)
                    .try_fold(i64::MIN, |m, u| u.map(|u| m.max(u))),
                connections,
                causes,
            });
        }
        i += group.len();
    }
    out
}

#[cfg(test)]
mod tests;

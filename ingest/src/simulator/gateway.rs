//! The customer gateway's side of a simulated tunnel: what its IKE daemon (strongSwan charon
//! or Libreswan pluto) and its BGP daemon (FRR bgpd or BIRD 2) log while AWS logs the tunnel's
//! records, written in the daemons' own log-file formats with the wording of the real lines
//! kept under `tests/data/gateway/` (every line here is one the gateway parsers classify into
//! the `gateway_kind` its comment names; the simulator's tests check each).
//!
//! The gateway answers AWS's records ([`Echo::answer`]): each AWS record may give gateway
//! lines at the same instant (so a tunnel's records stay in time order). The gateway is the
//! CGW of the connection: its connection is `Tunnel1`/`Tunnel2` (the names of AWS's
//! downloadable configurations), its IKE peer the tunnel's AWS outside IP, its BGP neighbour
//! AWS's inside address. What it says follows the incident: it retransmits into a dead path
//! (DPD, IKE unreachable: the network), it is refused authentication or proposals (its own
//! configuration), it receives AWS's DELETE during an endpoint replacement (AWS), its hold
//! timer expires with AWS's (the network), it is sent a Cease 6/1 when it floods prefixes.
//!
//! Limits: routine IKE exchanges are not echoed line by line (the real daemons log ten or more
//! lines per exchange; the gateway here logs what the verdicts and the timeline read: SAs up,
//! rekeyed, deleted, refused, retransmitted); the gateway never logs a trouble AWS does not
//! see; SPIs and thread numbers are derived from counters, not random. charon and pluto write
//! no year: ingest these files with `--syslog-year` when the simulated time is not this year.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use tunnelwatch_parsers::PhaseState;

use super::render::{BgpState, BgpText, IkeText, Spec};
use super::scenario::Scenario;

/// The IKE daemon a simulated gateway runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeDaemon {
    Strongswan,
    Libreswan,
}

/// The BGP daemon a simulated gateway runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgpDaemon {
    Frr,
    Bird,
}

/// Which gateway logs to write beside AWS's (none by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewaySides {
    pub ike: Option<IkeDaemon>,
    pub bgp: Option<BgpDaemon>,
}

impl GatewaySides {
    /// The names `simulate --gateway` takes.
    pub const NAMES: [&'static str; 4] = ["strongswan", "libreswan", "frr", "bird"];

    /// `strongswan`, `frr`, `strongswan,frr`, …: at most one IKE and one BGP daemon; `none`
    /// (or nothing) for no gateway logs.
    pub fn parse(list: &str) -> Result<GatewaySides, String> {
        let mut sides = GatewaySides::default();
        if list.trim().eq_ignore_ascii_case("none") {
            return Ok(sides);
        }
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (ike, bgp) = match name.to_ascii_lowercase().as_str() {
                "strongswan" | "charon" => (Some(IkeDaemon::Strongswan), None),
                "libreswan" | "pluto" => (Some(IkeDaemon::Libreswan), None),
                "frr" | "bgpd" => (None, Some(BgpDaemon::Frr)),
                "bird" => (None, Some(BgpDaemon::Bird)),
                _ => {
                    return Err(format!(
                        "unknown gateway daemon {name:?} (one of {})",
                        Self::NAMES.join(", ")
                    ));
                }
            };
            if (ike.is_some() && sides.ike.is_some()) || (bgp.is_some() && sides.bgp.is_some()) {
                return Err(format!(
                    "{list:?}: a gateway runs one IKE daemon (strongswan or libreswan) and one \
                     BGP daemon (frr or bird)"
                ));
            }
            sides.ike = sides.ike.or(ike);
            sides.bgp = sides.bgp.or(bgp);
        }
        Ok(sides)
    }

    pub fn is_empty(&self) -> bool {
        self.ike.is_none() && self.bgp.is_none()
    }

    /// The daemon names, as the stream names carry them.
    pub fn ike_name(&self) -> Option<&'static str> {
        self.ike.map(|d| match d {
            IkeDaemon::Strongswan => "strongswan",
            IkeDaemon::Libreswan => "libreswan",
        })
    }

    pub fn bgp_name(&self) -> Option<&'static str> {
        self.bgp.map(|d| match d {
            BgpDaemon::Frr => "frr",
            BgpDaemon::Bird => "bird",
        })
    }
}

/// Which of the gateway's logs a line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Log {
    Ike,
    Bgp,
}

/// What the gateway needs to know of its tunnel.
pub(crate) struct Peer {
    /// 0 or 1.
    pub tunnel: usize,
    pub aws_ip: String,
    pub cgw_ip: String,
    pub aws_inside: String,
    pub cgw_inside: String,
    pub ikev2: bool,
    pub bgp: bool,
}

/// One tunnel's gateway: its daemons and the SA numbering they carry.
pub(crate) struct Echo {
    sides: GatewaySides,
    peer: Peer,
    conn: String,
    /// charon's IKE_SA unique id / pluto's state serial (pluto numbers CHILD SAs in the same
    /// series).
    ike_id: u64,
    child_id: u64,
    serial: u64,
    /// pluto's serial of the current CHILD SA.
    child_serial: u64,
    lines: u64,
    /// A rekey requested while the tunnel was up, and whether it was phase 1's.
    rekey: Option<bool>,
    /// The notification that ends the BGP session next (`send` or `received`).
    bgp_down_reason: &'static str,
}

impl Echo {
    pub fn new(sides: GatewaySides, peer: Peer) -> Echo {
        Echo {
            sides,
            conn: format!("Tunnel{}", peer.tunnel + 1),
            peer,
            ike_id: 0,
            child_id: 0,
            serial: 0,
            child_serial: 0,
            lines: 0,
            rekey: None,
            bgp_down_reason: "BGP Notification send",
        }
    }

    /// The gateway lines that answer AWS's record `spec` at `ts`: `was_up`/`now_up` are the
    /// tunnel's IPsec state before and after it, `scenario` the incident it belongs to.
    pub fn answer(
        &mut self,
        spec: &Spec,
        ts: i64,
        was_up: Option<bool>,
        now_up: bool,
        scenario: Option<Scenario>,
        out: &mut Vec<(Log, String)>,
    ) {
        match spec {
            Spec::Activity { p1, text, .. } if self.sides.ike.is_some() => {
                self.ike(*text, *p1, ts, was_up == Some(true), now_up, scenario, out)
            }
            Spec::Bgp(text) if self.sides.bgp.is_some() && self.peer.bgp => {
                self.bgp(*text, ts, out)
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ike(
        &mut self,
        text: IkeText,
        p1: PhaseState,
        ts: i64,
        was_up: bool,
        now_up: bool,
        scenario: Option<Scenario>,
        out: &mut Vec<(Log, String)>,
    ) {
        use IkeText as T;
        let mut say = Vec::new();
        if !was_up && now_up {
            self.established(&mut say);
        }
        match text {
            T::RequestSent { .. } | T::RequestReceived { .. } => {
                self.rekey = (was_up && now_up).then_some(p1 == PhaseState::Rekeying);
            }
            T::ResponseReceived { .. } | T::ResponseSent { .. } => {
                if let Some(phase1) = self.rekey.take()
                    && was_up
                {
                    self.rekeyed(phase1, &mut say);
                }
            }
            T::DeleteIkeSa => self.ike_deleted(was_up, now_up, scenario, &mut say),
            T::DeletePhase2Sa { .. } if was_up && !now_up => self.child_closed(&mut say),
            T::PskMismatch | T::PskInvalid => self.refused_authentication(&mut say),
            T::NoProposalMatch => self.refused_proposal(&mut say),
            T::NoProposalChosen => self.refused_child(&mut say, "NO_PROPOSAL_CHOSEN"),
            T::TsUnacceptable => self.refused_child(&mut say, "TS_UNACCEPTABLE"),
            T::DpdTimeout { .. } | T::PeerDead => self.path_lost(&mut say),
            T::Phase1Timeout => self.unreachable(&mut say),
            _ => {}
        }
        for line in say {
            let framed = self.frame_ike(ts, &line);
            out.push((Log::Ike, framed));
        }
    }

    fn strongswan(&self) -> bool {
        self.sides.ike == Some(IkeDaemon::Strongswan)
    }

    /// `between C[C]...A[A]`, charon's pair of endpoints.
    fn between(&self) -> String {
        let (c, a) = (&self.peer.cgw_ip, &self.peer.aws_ip);
        format!("{c}[{c}]...{a}[{a}]")
    }

    fn spis(&self) -> (u32, u32) {
        let base = (self.peer.tunnel as u32 + 1) << 28;
        let n = self.child_id as u32;
        (
            base | n.wrapping_mul(2).wrapping_add(0x0c01),
            base | n.wrapping_mul(2).wrapping_add(0x0c02),
        )
    }

    /// pluto's state name: the IKEv2 one or the IKEv1 one.
    fn pluto_state(&self, v2: &'static str, v1: &'static str) -> &'static str {
        if self.peer.ikev2 { v2 } else { v1 }
    }

    /// pluto: IKE SA `ike` is up (IKEv2 wording; ike_sa_established).
    fn pluto_ike_established(&self, ike: u64) -> String {
        format!(
            "\"{}\" #{ike}: initiator established IKE SA; authenticated peer using authby=secret and ID_IPV4_ADDR '{}'",
            self.conn, self.peer.aws_ip
        )
    }

    /// pluto: CHILD SA `child` of IKE SA `ike` is up with SPIs `(in, out)` (child_sa_established).
    fn pluto_child_established(&self, child: u64, ike: u64, (i, o): (u32, u32)) -> String {
        format!(
            "\"{}\" #{child}: initiator established Child SA using #{ike}; IPsec tunnel [0.0.0.0/0===0.0.0.0/0] -> [0.0.0.0/0===0.0.0.0/0] {{ESP=>0x{o:08x} <0x{i:08x} xfrm=AES_CBC_256-HMAC_SHA2_256_128 DPD=active}}",
            self.conn
        )
    }

    /// charon: CHILD_SA `c` with SPIs `(in, out)` is closed (child_sa_deleted).
    fn charon_child_closed(&self, c: u64, (i, o): (u32, u32)) -> String {
        let (n, u) = (&self.conn, self.ike_id);
        format!(
            "<{n}|{u}> closing CHILD_SA {n}{{{c}}} with SPIs {i:08x}_i (0 bytes) {o:08x}_o (0 bytes) and TS 0.0.0.0/0 === 0.0.0.0/0"
        )
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// A new IKE SA and its CHILD SA (the tunnel is up again).
    fn established(&mut self, say: &mut Vec<String>) {
        self.ike_id += 1;
        self.child_id += 1;
        let (i, o) = self.spis();
        let (n, u, c) = (self.conn.clone(), self.ike_id, self.child_id);
        if self.strongswan() {
            // ike_sa_established, child_sa_established
            say.push(format!(
                "<{n}|{u}> IKE_SA {n}[{u}] established between {}",
                self.between()
            ));
            say.push(format!(
                "<{n}|{u}> CHILD_SA {n}{{{c}}} established with SPIs {i:08x}_i {o:08x}_o and TS 0.0.0.0/0 === 0.0.0.0/0"
            ));
        } else {
            let ike = self.next_serial();
            let child = self.next_serial();
            self.ike_id = ike;
            self.child_serial = child;
            if self.peer.ikev2 {
                say.push(self.pluto_ike_established(ike));
                say.push(self.pluto_child_established(child, ike, (i, o)));
            } else {
                // auth_succeeded (what names the peer in IKEv1), ike_sa_established
                say.push(format!(
                    "\"{n}\" #{ike}: Peer ID is ID_IPV4_ADDR: '{}'",
                    self.peer.aws_ip
                ));
                say.push(format!(
                    "\"{n}\" #{ike}: ISAKMP SA established {{auth=PRESHARED_KEY cipher=AES_CBC_256 integ=HMAC_SHA2_256 group=MODP2048}}"
                ));
                say.push(format!(
                    "\"{n}\" #{child}: IPsec SA established tunnel mode {{ESP=>0x{o:08x} <0x{i:08x} xfrm=AES_CBC_256-HMAC_SHA2_256_128 DPD=active}}"
                ));
            }
        }
    }

    fn rekeyed(&mut self, phase1: bool, say: &mut Vec<String>) {
        let n = self.conn.clone();
        if phase1 {
            if self.strongswan() {
                // ike_sa_rekeyed, then the old IKE_SA's ike_sa_deleted comes with AWS's DELETE.
                self.ike_id += 1;
                let u = self.ike_id;
                say.push(format!(
                    "<{n}|{u}> IKE_SA {n}[{u}] rekeyed between {}",
                    self.between()
                ));
            } else {
                let ike = self.next_serial();
                self.ike_id = ike;
                say.push(self.pluto_ike_established(ike));
            }
            return;
        }
        self.child_id += 1;
        let (i, o) = self.spis();
        let (u, c) = (self.ike_id, self.child_id);
        if self.strongswan() {
            // child_sa_rekeyed, child_sa_deleted (the old one)
            say.push(format!(
                "<{n}|{u}> inbound CHILD_SA {n}{{{c}}} established with SPIs {i:08x}_i {o:08x}_o and TS 0.0.0.0/0 === 0.0.0.0/0"
            ));
            say.push(self.charon_child_closed(c - 1, (i.wrapping_sub(2), o.wrapping_sub(2))));
        } else {
            let child = self.next_serial();
            self.child_serial = child;
            say.push(self.pluto_child_established(child, u, (i, o)));
        }
    }

    fn ike_deleted(
        &mut self,
        was_up: bool,
        now_up: bool,
        scenario: Option<Scenario>,
        say: &mut Vec<String>,
    ) {
        let n = self.conn.clone();
        // Routine: the IKE SA a phase 1 rekey replaced; a teardown: the current one.
        let old = if was_up && now_up {
            self.ike_id.saturating_sub(1)
        } else {
            self.ike_id
        };
        let by_aws = scenario == Some(Scenario::EndpointReplacement);
        if self.strongswan() {
            if by_aws {
                // ike_sa_deleted, received from AWS
                say.push(format!("<{n}|{old}> received DELETE for IKE_SA {n}[{old}]"));
            } else {
                // ike_sa_deleted, by the gateway
                say.push(format!(
                    "<{n}|{old}> deleting IKE_SA {n}[{old}] between {}",
                    self.between()
                ));
            }
        } else if by_aws {
            say.push(format!(
                "\"{n}\" #{old}: received Delete SA payload: self-deleting ISAKMP State #{old}"
            ));
        } else {
            let state = self.pluto_state("STATE_V2_ESTABLISHED_IKE_SA", "STATE_MAIN_I4");
            say.push(format!(
                "\"{n}\" #{old}: deleting state ({state}) aged 3600.000000s and sending notification"
            ));
        }
    }

    /// The gateway let its CHILD SA expire (a lifetime shorter than AWS's).
    fn child_closed(&mut self, say: &mut Vec<String>) {
        if self.strongswan() {
            // child_sa_deleted
            say.push(self.charon_child_closed(self.child_id, self.spis()));
        } else {
            let state = self.pluto_state("STATE_V2_ESTABLISHED_CHILD_SA", "STATE_QUICK_I2");
            // child_sa_deleted
            say.push(format!(
                "\"{}\" #{}: deleting state ({state}) aged 1500.000000s and sending notification",
                self.conn, self.child_serial
            ));
        }
    }

    /// A new attempt: charon's `initiating …` with a fresh IKE_SA, or pluto's.
    fn initiate(&mut self, say: &mut Vec<String>) -> u64 {
        let n = self.conn.clone();
        if self.strongswan() {
            self.ike_id += 1;
            let u = self.ike_id;
            let mode = if self.peer.ikev2 { "" } else { "Main Mode " };
            // ike_sa_initiating
            say.push(format!(
                "<{n}|{u}> initiating {mode}IKE_SA {n}[{u}] to {}",
                self.peer.aws_ip
            ));
            u
        } else {
            let s = self.next_serial();
            let what = if self.peer.ikev2 {
                "IKEv2 connection"
            } else {
                "IKEv1 Main Mode connection"
            };
            say.push(format!("\"{n}\" #{s}: initiating {what}"));
            s
        }
    }

    fn refused_authentication(&mut self, say: &mut Vec<String>) {
        let u = self.initiate(say);
        let n = &self.conn;
        // auth_failed
        let line = match (self.strongswan(), self.peer.ikev2) {
            (true, true) => format!("<{n}|{u}> received AUTHENTICATION_FAILED notify error"),
            (true, false) => {
                format!("<{n}|{u}> invalid HASH_V1 payload length, decryption failed?")
            }
            (false, true) => format!(
                "\"{n}\" #{u}: IKE SA authentication request rejected by peer: AUTHENTICATION_FAILED"
            ),
            (false, false) => format!(
                "\"{n}\" #{u}: probable authentication failure (mismatch of preshared secrets?): malformed payload in packet"
            ),
        };
        say.push(line);
    }

    fn refused_proposal(&mut self, say: &mut Vec<String>) {
        let u = self.initiate(say);
        let n = &self.conn;
        // no_proposal_chosen (IKE)
        let line = match (self.strongswan(), self.peer.ikev2) {
            (true, true) => format!("<{n}|{u}> received NO_PROPOSAL_CHOSEN notify error"),
            (true, false) => format!("<{n}|{u}> received NO_PROPOSAL_CHOSEN error notify"),
            (false, _) => {
                format!("\"{n}\" #{u}: IKE_SA_INIT request rejected by peer: NO_PROPOSAL_CHOSEN")
            }
        };
        say.push(line);
    }

    fn refused_child(&mut self, say: &mut Vec<String>, notify: &str) {
        let (n, u) = (self.conn.clone(), self.ike_id);
        if self.strongswan() {
            if self.peer.ikev2 {
                // no_proposal_chosen / ts_unacceptable (CHILD), child_sa_failed
                say.push(format!(
                    "<{n}|{u}> received {notify} notify, no CHILD_SA built"
                ));
                say.push(format!(
                    "<{n}|{u}> failed to establish CHILD_SA, keeping IKE_SA"
                ));
            } else {
                say.push(format!("<{n}|{u}> received {notify} error notify"));
            }
        } else {
            let s = self.next_serial();
            say.push(format!(
                "\"{n}\" #{s}: IKE_AUTH response rejected Child SA with {notify}"
            ));
        }
    }

    /// AWS's DPD fired: the gateway's own requests went unanswered too.
    fn path_lost(&mut self, say: &mut Vec<String>) {
        let (n, u) = (&self.conn, self.ike_id);
        if self.strongswan() {
            let id = 2 + self.lines % 50;
            // retransmit ×2, peer_not_responding
            for k in 1..=2 {
                say.push(format!(
                    "<{n}|{u}> retransmit {k} of request with message ID {id}"
                ));
            }
            say.push(format!("<{n}|{u}> giving up after 2 retransmits"));
        } else {
            let state = self.pluto_state("STATE_V2_ESTABLISHED_IKE_SA", "STATE_MAIN_I4");
            say.push(format!(
                "\"{n}\" #{u}: {state}: retransmission; will wait 0.5 seconds for response"
            ));
            say.push(format!("\"{n}\" #{u}: DPD action - restarting connection"));
        }
    }

    /// AWS cannot reach the gateway, nor the gateway AWS.
    fn unreachable(&mut self, say: &mut Vec<String>) {
        let u = self.initiate(say);
        let n = &self.conn;
        if self.strongswan() {
            // peer_not_responding
            say.push(format!("<{n}|{u}> giving up after 5 retransmits"));
            say.push(format!(
                "<{n}|{u}> establishing IKE_SA failed, peer not responding"
            ));
        } else {
            let state = self.pluto_state("STATE_V2_PARENT_I1", "STATE_MAIN_I1");
            say.push(format!(
                "\"{n}\" #{u}: {state}: 60 second timeout exceeded after 5 retransmits.  No response (or no acceptable response) to our first IKE message"
            ));
        }
    }

    fn bgp(&mut self, text: BgpText, ts: i64, out: &mut Vec<(Log, String)>) {
        let x = self.peer.aws_inside.clone();
        let frr = self.sides.bgp == Some(BgpDaemon::Frr);
        let proto = format!("aws_tunnel{}", self.peer.tunnel + 1);
        let mut say: Vec<String> = Vec::new();
        match text {
            BgpText::StateChange { from, to } => {
                if frr {
                    // bgp_state_change
                    say.push(format!(
                        "[ZQHFG-DQGX1] {x} went from {} to {}",
                        from.as_str(),
                        to.as_str()
                    ));
                    if to == BgpState::Established {
                        say.push(format!(
                            "[N9HHH-F8H1M] %ADJCHANGE: neighbor {x}(Unknown) in vrf default Up"
                        ));
                    } else if from == BgpState::Established {
                        say.push(format!(
                            "[PXVXG-TFNNT] %ADJCHANGE: neighbor {x}(Unknown) in vrf default Down {}",
                            self.bgp_down_reason
                        ));
                    }
                } else if to == BgpState::Established {
                    // bgp_connect (what names the neighbour), bgp_state_change
                    say.push(format!(
                        "<TRACE> {proto}: Connecting to {x} from local address {}",
                        self.peer.cgw_inside
                    ));
                    say.push(format!("<TRACE> {proto}: BGP session established"));
                    say.push(format!("<TRACE> {proto}: State changed to up"));
                } else if from == BgpState::Established {
                    say.push(format!("<TRACE> {proto}: State changed to start"));
                }
                if from == BgpState::Established {
                    self.bgp_down_reason = "BGP Notification send";
                }
            }
            BgpText::HoldTimerExpired => {
                // hold_timer_expired: the gateway stopped hearing AWS too
                if frr {
                    say.push(format!(
                        "[HZN6M-XRM1G] %NOTIFICATION: sent to neighbor {x} 4/0 (Hold Timer Expired) 0 bytes"
                    ));
                } else {
                    say.push(format!("<TRACE> {proto}: Hold timer expired"));
                }
                self.bgp_down_reason = "BGP Notification send";
            }
            BgpText::OpenReceived if frr => {
                // bgp_open
                say.push(format!(
                    "[WNM1E-D314G] {x} rcv OPEN, version 4, remote-as (in open) {}, holdtime {}, id {x}",
                    super::model::AWS_ASN,
                    super::model::HOLD_TIME_S
                ));
            }
            BgpText::MaxPrefixNotification => {
                // prefix_limit: AWS's Cease 6/1, received
                if frr {
                    say.push(format!(
                        "[HZN6M-XRM1G] %NOTIFICATION: received from neighbor {x} 6/1 (Cease/Maximum Number of Prefixes Reached) 0 bytes"
                    ));
                } else {
                    say.push(format!(
                        "<RMT> {proto}: Received: Maximum number of prefixes reached"
                    ));
                }
                self.bgp_down_reason = "BGP Notification received";
            }
            _ => {}
        }
        for line in say {
            let framed = self.frame_bgp(ts, frr, &line);
            out.push((Log::Bgp, framed));
        }
    }

    fn time(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ts).unwrap_or_default()
    }

    /// charon's filelog (`%b %e %T`, thread, group) or pluto's log file (`%b %e %T.%6f: `).
    fn frame_ike(&mut self, ts: i64, line: &str) -> String {
        self.lines += 1;
        let t = Self::time(ts);
        let mut s = String::with_capacity(line.len() + 32);
        if self.strongswan() {
            let _ = write!(
                s,
                "{} {:02}[IKE] {line}",
                t.format("%b %e %T"),
                1 + self.lines % 16
            );
        } else {
            let _ = write!(s, "{}: {line}", t.format("%b %e %T%.6f"));
        }
        s
    }

    /// FRR's log file (`%Y/%m/%d %T.%3f BGP: `) or BIRD's (`%Y-%m-%d %T.%3f `).
    fn frame_bgp(&mut self, ts: i64, frr: bool, line: &str) -> String {
        self.lines += 1;
        let t = Self::time(ts);
        if frr {
            format!("{} BGP: {line}", t.format("%Y/%m/%d %T%.3f"))
        } else {
            format!("{} {line}", t.format("%Y-%m-%d %T%.3f"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_lists() {
        assert_eq!(
            GatewaySides::parse("strongswan,frr"),
            Ok(GatewaySides {
                ike: Some(IkeDaemon::Strongswan),
                bgp: Some(BgpDaemon::Frr)
            })
        );
        assert_eq!(
            GatewaySides::parse("bird").map(|s| (s.ike, s.bgp)),
            Ok((None, Some(BgpDaemon::Bird)))
        );
        assert!(GatewaySides::parse("strongswan,libreswan").is_err());
        assert!(GatewaySides::parse("openswan").is_err());
        assert!(GatewaySides::parse("").unwrap().is_empty());
        assert!(GatewaySides::parse("none").unwrap().is_empty());
    }
}

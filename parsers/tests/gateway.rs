//! The gateway catalogue against lines real daemons wrote: strongSwan 5.9.8, FRR 8.4.4 and
//! BIRD 2.0.12, captured in network namespaces by `tests/data/gateway/capture.sh` (see the
//! README there).
//!
//! Two checks: a table of notable lines (each found in its capture by a piece of its text, so
//! every line tested is one a daemon wrote) with the kind and values they must give; and a
//! golden rendering of every capture, line by line, so a change to any template shows up as a
//! diff. Regenerate the golden files with `UPDATE_GOLDEN=1 cargo test -p tunnelwatch-parsers
//! --test gateway` and review the diff.

use std::path::{Path, PathBuf};

use tunnelwatch_parsers::{
    Decoder, DecoderOptions, EventBody, Gateway, InputFormat, Parsed, Table, parse_all,
};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/gateway")
}

/// Every capture of daemon logs (`.log` files and `.syslog` datagrams).
fn captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![data()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "expected") {
                    dirs.push(p);
                }
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("log" | "syslog")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn opts(format: InputFormat) -> DecoderOptions {
    DecoderOptions {
        format,
        syslog_year: Some(2026),
        ..DecoderOptions::default()
    }
}

fn gateway_events(path: &Path, format: InputFormat) -> Vec<(u64, Gateway, i64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut decoder = Decoder::new(&path.display().to_string(), opts(format));
    decoder.decode_all(&bytes, &mut |p| match p {
        Parsed::Event(e) => {
            assert_eq!(e.table(), Table::GatewayEvents, "{}: {e:?}", path.display());
            let EventBody::Gateway(g) = e.body else {
                unreachable!()
            };
            out.push((e.position.line, *g, e.ts));
        }
        Parsed::Reject(r) => panic!("{}: rejected: {r}", path.display()),
    });
    out
}

#[test]
fn every_captured_line_is_a_gateway_event_sniffed_or_forced() {
    let files = captures();
    assert!(files.len() >= 20, "captures missing: {files:?}");
    for path in files {
        let lines = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let auto = gateway_events(&path, InputFormat::Auto);
        assert_eq!(auto.len(), lines, "{}", path.display());
        let forced = gateway_events(&path, InputFormat::Gateway);
        assert_eq!(
            auto.iter().map(|e| &e.1).collect::<Vec<_>>(),
            forced.iter().map(|e| &e.1).collect::<Vec<_>>(),
            "{}",
            path.display()
        );
        // Every line knows its writer and its own time (the captures were made on 2026-12-04;
        // threads of one daemon may log a millisecond out of order, so no order is asserted).
        let day = 1_796_342_400_000..1_796_428_800_000;
        for (line, g, ts) in &auto {
            assert!(g.daemon.is_some(), "{}:{line}: {g:?}", path.display());
            assert!(day.contains(ts), "{}:{line}: time {ts}", path.display());
        }
    }
}

/// One notable line: the capture, a piece of the line's text, and what it must give.
struct Case {
    file: &'static str,
    text: &'static str,
    kind: &'static str,
    /// `column=value` pairs (columns of `gateway_events`).
    want: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        file: "strongswan/ikev2-success-rekey-delete.cgw.log",
        text: "initiating IKE_SA",
        kind: "ike_sa_initiating",
        want: &[
            ("ike_sa", "vpn-tunnel1"),
            ("ike_sa_id", "1"),
            ("peer_ip", "192.0.2.10"),
            ("daemon", "strongswan"),
        ],
    },
    Case {
        file: "strongswan/ikev2-success-rekey-delete.cgw.log",
        text: "] established between",
        kind: "ike_sa_established",
        want: &[
            ("local_ip", "198.51.100.20"),
            ("peer_ip", "192.0.2.10"),
            ("peer_id", "192.0.2.10"),
        ],
    },
    Case {
        file: "strongswan/ikev2-success-rekey-delete.cgw.log",
        text: "CHILD_SA vpn-tunnel1-esp{1} established",
        kind: "child_sa_established",
        want: &[("child_sa", "vpn-tunnel1-esp"), ("child_sa_id", "1")],
    },
    Case {
        file: "strongswan/ikev2-success-rekey-delete.cgw.log",
        text: "] rekeyed between",
        kind: "ike_sa_rekeyed",
        want: &[("peer_ip", "192.0.2.10")],
    },
    Case {
        file: "strongswan/ikev2-success-rekey-delete.cgw.log",
        text: "closing CHILD_SA",
        kind: "child_sa_deleted",
        want: &[("direction", "sent")],
    },
    Case {
        file: "strongswan/ikev2-psk-mismatch.aws.log",
        text: "but MAC mismatched",
        kind: "auth_failed",
        want: &[
            ("direction", "sent"),
            ("local_id", "192.0.2.10"),
            ("peer_id", "198.51.100.20"),
            ("severity", "error"),
        ],
    },
    Case {
        file: "strongswan/ikev2-psk-mismatch.cgw.log",
        text: "received AUTHENTICATION_FAILED notify error",
        kind: "auth_failed",
        want: &[
            ("direction", "received"),
            ("notify", "AUTHENTICATION_FAILED"),
            ("ike_sa", "vpn-tunnel1"),
        ],
    },
    Case {
        file: "strongswan/ikev2-psk-mismatch.aws.log",
        text: "generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]",
        kind: "ike_message",
        want: &[("notify", "AUTH_FAILED"), ("direction", "sent")],
    },
    Case {
        file: "strongswan/ikev1-psk-mismatch.aws.log",
        text: "invalid ID_V1 payload length, decryption failed?",
        kind: "auth_failed",
        want: &[("direction", "sent")],
    },
    Case {
        file: "strongswan/ikev1-psk-mismatch.cgw.log",
        text: "giving up after 2 retransmits",
        kind: "peer_not_responding",
        want: &[("retry_count", "2")],
    },
    Case {
        file: "strongswan/ikev1-psk-mismatch.cgw.log",
        text: "sending retransmit 1 of request",
        kind: "retransmit",
        want: &[("retry_count", "1")],
    },
    Case {
        file: "strongswan/ikev1-ike-proposal-mismatch.aws.log",
        text: "received proposals:",
        kind: "proposal_list",
        want: &[
            (
                "proposals",
                "IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024",
            ),
            ("reason", "received"),
        ],
    },
    Case {
        file: "strongswan/ikev1-ike-proposal-mismatch.aws.log",
        text: "configured proposals:",
        kind: "proposal_list",
        want: &[
            (
                "proposals",
                "IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
            ),
            ("reason", "configured"),
        ],
    },
    Case {
        file: "strongswan/ikev1-ike-proposal-mismatch.aws.log",
        text: "no proposal found",
        kind: "no_proposal_chosen",
        want: &[("direction", "sent")],
    },
    Case {
        file: "strongswan/ikev2-ike-proposal-mismatch.cgw.log",
        text: "received NO_PROPOSAL_CHOSEN notify error",
        kind: "no_proposal_chosen",
        want: &[("direction", "received"), ("sa", "ike")],
    },
    Case {
        file: "strongswan/ikev2-esp-proposal-mismatch.cgw.log",
        text: "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built",
        kind: "no_proposal_chosen",
        want: &[("sa", "child")],
    },
    Case {
        file: "strongswan/ikev2-invalid-ke-retry.cgw.log",
        text: "peer didn't accept DH group",
        kind: "invalid_ke",
        want: &[
            ("dh_group", "MODP_3072"),
            ("requested_group", "MODP_2048"),
            ("direction", "received"),
        ],
    },
    Case {
        file: "strongswan/ikev2-invalid-ke-retry.aws.log",
        text: "unacceptable, requesting",
        kind: "invalid_ke",
        want: &[
            ("dh_group", "MODP_3072"),
            ("requested_group", "MODP_2048"),
            ("direction", "sent"),
        ],
    },
    Case {
        file: "strongswan/ikev2-ts-unacceptable.cgw.log",
        text: "received TS_UNACCEPTABLE notify, no CHILD_SA built",
        kind: "ts_unacceptable",
        want: &[("direction", "received"), ("sa", "child")],
    },
    Case {
        file: "strongswan/ikev2-dpd-timeout.cgw.log",
        text: "sending DPD request",
        kind: "dpd_request",
        want: &[],
    },
    Case {
        file: "strongswan/ikev2-dpd-timeout.cgw.log",
        text: "giving up after",
        kind: "peer_not_responding",
        want: &[],
    },
    Case {
        file: "strongswan/ikev2-kernel-sad-install-failed.aws.log",
        text: "unable to install inbound and outbound IPsec SA",
        kind: "child_sa_failed",
        want: &[
            ("reason", "kernel refused the SA"),
            ("ike_sa", "aws-tunnel1"),
        ],
    },
    Case {
        file: "strongswan/ikev2-success-rekey-delete.cgw.syslog",
        text: "initiating IKE_SA",
        kind: "ike_sa_initiating",
        want: &[("peer_ip", "192.0.2.10"), ("ike_sa", "vpn-tunnel1")],
    },
    Case {
        file: "frr-bird/bgp-established-admin-shutdown.frr.log",
        text: "rcv OPEN, version 4",
        kind: "bgp_open",
        want: &[
            ("peer_ip", "169.254.10.1"),
            ("peer_asn", "64512"),
            ("daemon", "frr"),
        ],
    },
    Case {
        file: "frr-bird/bgp-established-admin-shutdown.frr.log",
        text: "went from OpenConfirm to Established",
        kind: "bgp_state_change",
        want: &[("from_state", "OpenConfirm"), ("to_state", "Established")],
    },
    Case {
        file: "frr-bird/bgp-established-admin-shutdown.bird.log",
        text: "Received: Administrative shutdown",
        kind: "admin_shutdown",
        want: &[
            ("session", "cgw_tunnel1"),
            ("direction", "received"),
            ("daemon", "bird"),
        ],
    },
    // pluto deleting a Quick Mode state deletes a CHILD SA, not the IKE SA.
    Case {
        file: "libreswan/ikev1-ike-up-child-install-failed.aws.log",
        text: "deleting state (STATE_QUICK_R0)",
        kind: "child_sa_deleted",
        want: &[("ike_sa", "aws-tunnel1")],
    },
    // BIRD appends the NOTIFICATION's data to the Cease it received: still a prefix limit.
    Case {
        file: "frr-bird/bgp-max-prefix-frr.bird.log",
        text: "Received: Maximum number of prefixes reached",
        kind: "prefix_limit",
        want: &[("session", "cgw_tunnel1"), ("direction", "received")],
    },
    Case {
        file: "frr-bird/bgp-established-admin-shutdown.bird.log",
        text: "Incoming connection from",
        kind: "bgp_connect",
        want: &[("peer_ip", "169.254.10.2"), ("session", "cgw_tunnel1")],
    },
];

/// A `gateway_events` column of a classified line, as text.
fn column(g: &Gateway, name: &str) -> Option<String> {
    let c = &g.captures;
    let s = |v: &Option<String>| v.clone();
    let n = |v: Option<u64>| v.map(|x| x.to_string());
    match name {
        "daemon" => Some(g.daemon_name().to_owned()),
        "severity" => Some(g.severity.as_str().to_owned()),
        "peer_ip" => s(&g.peer_ip),
        "local_ip" => s(&g.local_ip),
        "ike_sa" => s(&g.ike_sa),
        "ike_sa_id" => n(g.ike_sa_id),
        "child_sa" => s(&g.child_sa),
        "child_sa_id" => n(g.child_sa_id),
        "session" => s(&g.session),
        "peer_id" => s(&c.peer_id),
        "local_id" => s(&c.local_id),
        "sa" => s(&c.sa),
        "direction" => s(&c.direction),
        "notify" => s(&c.notify),
        "proposals" => s(&c.proposals),
        "dh_group" => s(&c.dh_group),
        "requested_group" => s(&c.requested_group),
        "retry_count" => n(c.retry_count),
        "from_state" => s(&c.from_state),
        "to_state" => s(&c.to_state),
        "peer_asn" => n(c.peer_asn),
        "expected_asn" => n(c.expected_asn),
        "error_code" => n(c.error_code),
        "error_subcode" => n(c.error_subcode),
        "prefix_count" => n(c.prefix_count),
        "prefix_limit" => n(c.prefix_limit),
        "reason" => s(&c.reason),
        other => panic!("no column {other} in the test's list"),
    }
}

#[test]
fn notable_captured_lines_give_their_kind_and_values() {
    for case in CASES {
        let path = data().join(case.file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let line = text
            .lines()
            .find(|l| l.contains(case.text))
            .unwrap_or_else(|| panic!("{}: no line with {:?}", case.file, case.text));
        let parsed = parse_all(case.file, line.as_bytes(), opts(InputFormat::Auto));
        let [Parsed::Event(e)] = parsed.as_slice() else {
            panic!("{}: {line}: {parsed:?}", case.file)
        };
        let EventBody::Gateway(g) = &e.body else {
            panic!("{}: {line}: not a gateway event", case.file)
        };
        assert_eq!(g.kind.as_str(), case.kind, "{}: {line}", case.file);
        for (col, want) in case.want {
            assert_eq!(
                column(g, col).as_deref(),
                Some(*want),
                "{}: {line}: column {col}",
                case.file
            );
        }
    }
}

/// The golden rendering of one capture: one line per event.
fn render(events: &[(u64, Gateway, i64)]) -> String {
    let mut out = String::new();
    for (line, g, _) in events {
        let mut cols = vec![
            format!("{line}"),
            g.kind.as_str().to_owned(),
            g.severity.as_str().to_owned(),
        ];
        for name in [
            "peer_ip",
            "local_ip",
            "ike_sa",
            "ike_sa_id",
            "child_sa",
            "child_sa_id",
            "session",
            "direction",
            "sa",
            "notify",
            "dh_group",
            "requested_group",
            "retry_count",
            "from_state",
            "to_state",
            "peer_asn",
            "expected_asn",
            "error_code",
            "error_subcode",
            "prefix_count",
            "prefix_limit",
            "reason",
        ] {
            if let Some(v) = column(g, name) {
                cols.push(format!("{name}={v}"));
            }
        }
        out.push_str(&cols.join(" "));
        out.push('\n');
    }
    out
}

#[test]
fn every_capture_matches_its_golden_rendering() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for path in captures() {
        let rel = path.strip_prefix(data()).unwrap();
        let golden = data().join("expected").join(rel).with_extension(format!(
            "{}.kinds",
            rel.extension().unwrap().to_str().unwrap()
        ));
        let got = render(&gateway_events(&path, InputFormat::Auto));
        if update {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
        // The first line that differs, not the whole file.
        let differs = got
            .lines()
            .zip(want.lines())
            .find(|(g, w)| g != w)
            .map(|(g, w)| format!("got  {g}\nwant {w}"))
            .or_else(|| {
                (got.lines().count() != want.lines().count()).then(|| "line counts differ".into())
            });
        if let Some(d) = differs {
            panic!(
                "{} differs from {} (UPDATE_GOLDEN=1 rewrites it):\n{d}",
                path.display(),
                golden.display()
            );
        }
    }
}

#[test]
fn recorded_swanctl_counters_become_traffic_samples_in_aws_directions() {
    use tunnelwatch_parsers::gateway::PeerMap;
    // `swanctl --list-sas --raw` as recorded from the captured gateway, each line stamped the
    // way the README tells (`sed "s/^/$(date -u +%FT%TZ) /"`).
    let raw = std::fs::read_to_string(data().join("strongswan/list-sas-raw.txt")).unwrap();
    let stamped: String = raw
        .lines()
        .map(|l| format!("2026-12-04T05:00:00Z {l}\n"))
        .collect();
    let mut peers = PeerMap::default();
    peers.add("vpn-0123456789abcdef0", "192.0.2.10".parse().unwrap(), None);
    let opts = DecoderOptions {
        gateway_peers: Some(std::sync::Arc::new(peers)),
        ..opts(InputFormat::Auto)
    };
    let parsed = parse_all("counters", stamped.as_bytes(), opts);
    let samples: Vec<_> = parsed
        .iter()
        .map(|p| match p {
            Parsed::Event(e) => e,
            Parsed::Reject(r) => panic!("{r}"),
        })
        .collect();
    assert_eq!(samples.len(), 1, "{parsed:?}");
    let e = samples[0];
    assert_eq!(e.vpn_id(), Some("vpn-0123456789abcdef0"), "{e:?}");
    assert_eq!(e.tunnel_ip(), Some("192.0.2.10"));
    let EventBody::Traffic(t) = &e.body else {
        panic!("{e:?}")
    };
    // The capture's CHILD_SAs: the deleted one with 0 bytes and the installed one with 420
    // each way in 5 packets (the gateway's out is AWS's in).
    assert_eq!(
        (t.bytes_in, t.bytes_out, t.packets_in, t.packets_out),
        (Some(420), Some(420), Some(5), Some(5))
    );
}

/// charon at log level 4 (`vici-pair.sh` with `default = 4`, a real run) dumps the pre-shared
/// key, the derived IKE keys and every packet as hex. None of those bytes is stored: each dump
/// row keeps its place (an `unknown` row at its line) with its bytes left out.
#[test]
fn charon_hex_dumps_of_keys_are_not_stored() {
    let path = data().join("strongswan/ikev2-success-loglevel4.cgw.log");
    let text = std::fs::read_to_string(&path).unwrap();
    // The capture does hold the key, in both renderings of the dump.
    assert!(
        text.contains("74 75 6E 6E 65 6C 77 61"),
        "no PSK dump in the capture"
    );
    assert!(text.contains("-psk-0123456789"));
    let events = gateway_events(&path, InputFormat::Auto);
    assert_eq!(events.len(), text.lines().count(), "a line was dropped");
    let dumps: Vec<&Gateway> = events
        .iter()
        .map(|(_, g, _)| g)
        .filter(|g| g.details.contains("hex dump"))
        .collect();
    assert!(dumps.len() > 1000, "{} dump rows", dumps.len());
    for (line, g, _) in &events {
        for secret in ["tunnelwatch-test", "-psk-0123456789", "74 75 6E 6E 65 6C"] {
            assert!(
                !g.details.contains(secret),
                "line {line} stores {secret:?}: {}",
                g.details
            );
        }
    }
}

/// The same rows without a time (a level-4 `swanctl --initiate` stream read as strongSwan's):
/// rejected for the missing time, and the reject keeps no key bytes either.
#[test]
fn an_untimed_hex_dump_is_rejected_without_its_bytes() {
    let lines = "[IKE]    0: 74 75 6E 6E 65 6C 77 61 74 63 68 2D 74 65 73 74  tunnelwatch-test\n\
                 [IKE]   16: 2D 70 73 6B 2D 30 31 32 33 34 35 36 37 38 39     -psk-0123456789\n\
                 [IKE] received AUTHENTICATION_FAILED notify error\n";
    let parsed = parse_all("initiate", lines.as_bytes(), opts(InputFormat::Gateway));
    assert_eq!(parsed.len(), 3);
    for p in &parsed {
        let Parsed::Reject(r) = p else {
            panic!("{p:?}")
        };
        let raw = String::from_utf8_lossy(&r.raw);
        assert!(
            !raw.contains("74 75 6E") && !raw.contains("psk-0123"),
            "{raw}"
        );
    }
    // An ordinary line keeps its bytes.
    let Parsed::Reject(last) = &parsed[2] else {
        unreachable!()
    };
    assert!(String::from_utf8_lossy(&last.raw).contains("AUTHENTICATION_FAILED"));
}

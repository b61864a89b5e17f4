#!/usr/bin/env python3
"""`tunnelwatch diagnose` over a whole fleet against one SQL scan of the same rows (issue 13).

    cargo build --release
    python3 benches/diagnose_vs_scan.py [--connections 1000] [--days 7] [--seed 11] [--runs 5] [--bin PATH]

Simulates `--connections` connections for `--days` days (random faults, the simulator's default
six a day per connection), ingests the tunnel activity and BGP logs with `--no-metrics` (the
minute counter samples, `*-traffic.log`, are left out: diagnose never reads them), and then
times, alternating run by run, each as a whole process (start-up, opening the store, the query,
the output):

- the baseline: `tunnelwatch query` of one scan over exactly the rows diagnose reads (the SQL
  diagnose prints), touching every column it decodes and grouping by connection as it does,
  printing one line per connection;
- `tunnelwatch diagnose --output json` of the whole fleet (every connection diagnosed, ranked,
  fleet events).

It reports medians, the ratio, and peak RSS, and scores the diagnoses against `truth.json`: an
incident is right when a diagnosis of one of its causes names its connection and tunnel with
start and end within 60 s. Data and `results.json` go under `target/bench-diagnose/`.
"""
import argparse, json, os, shutil, statistics, sys

from store_vs_duckdb import measured  # one process, its wall time and peak RSS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The causes a scenario may be diagnosed as (as in tests/diagnose_cli.rs).
CAUSES = {
    "psk-mismatch": {"psk-mismatch"},
    "proposal-mismatch": {"phase1-proposal-mismatch", "phase2-proposal-mismatch"},
    "dpd-flap": {"dpd-flapping"},
    "ts-unacceptable": {"traffic-selector-mismatch"},
    "bgp-hold-timer": {"bgp-hold-timer"},
    "prefix-limit": {"prefix-limit"},
    "as-path-loop": {"as-path-loop"},
    "endpoint-replacement": {"endpoint-replacement"},
    "single-tunnel": {"single-tunnel"},
    "lifetime-mismatch": {"lifetime-mismatch"},
}

def run(cmd):
    """(seconds, peak RSS in MB, stdout) of `cmd` as its own process."""
    dt, rss, out, _ = measured(cmd)
    return dt, rss, out


def score(truth, diagnosis):
    """(right, missed, extra): incidents diagnosed as their own cause on their tunnel within
    60 s at both ends; incidents without such a diagnosis; diagnoses matching no incident."""
    by_vpn = {c["vpn_id"]: c["diagnoses"] for c in diagnosis["connections"]}
    used = set()
    right = 0
    missed = []
    for inc in truth["incidents"]:
        ok = False
        for i, d in enumerate(by_vpn.get(inc["vpn_id"], [])):
            if (d["cause"] in CAUSES[inc["scenario"]] and d["tunnel_ip"] in inc["tunnel_ips"]
                    and abs(d["from_ms"] - inc["start_ms"]) <= 60_000
                    and d["until_ms"] is not None and abs(d["until_ms"] - inc["end_ms"]) <= 60_000):
                used.add((inc["vpn_id"], i))
                ok = True
        if ok:
            right += 1
        else:
            missed.append(inc["scenario"])
    # A diagnosis overlapping an incident of its connection counts as that incident's (a span off
    # by more than 60 s is already counted as missed); the rest are false alarms.
    spans = {}
    for inc in truth["incidents"]:
        spans.setdefault(inc["vpn_id"], []).append((inc["start_ms"] - 60_000, inc["end_ms"] + 60_000))
    extra = []
    for vpn, ds in by_vpn.items():
        for i, d in enumerate(ds):
            if (vpn, i) in used:
                continue
            until = d["until_ms"] if d["until_ms"] is not None else d["from_ms"]
            if not any(f <= until and d["from_ms"] <= u for f, u in spans.get(vpn, [])):
                extra.append(d["cause"])
    return right, missed, extra


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tunnelwatch"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-diagnose"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    logs = os.path.join(a.work, "logs")
    data = os.path.join(a.work, "data")
    tag = f"{a.connections}-{a.days}-{a.seed}"
    tag_file = os.path.join(a.work, "tag")
    if not (os.path.exists(tag_file) and open(tag_file).read() == tag):
        shutil.rmtree(logs, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
        sim_s, _, _ = run([a.bin, "simulate", "--out", logs, "--connections", str(a.connections),
                           "--duration", f"{a.days}d", "--seed", str(a.seed)])
        files = sorted(os.path.join(logs, f) for f in os.listdir(logs)
                       if f.endswith(".log") and not f.endswith("-traffic.log"))
        ingest_s, ingest_rss, _ = run([a.bin, "ingest", "--data", data, "--no-metrics"] + files)
        open(tag_file, "w").write(tag)
        print(f"simulated in {sim_s:.1f} s, ingested {len(files)} files in {ingest_s:.1f} s "
              f"({ingest_rss:.0f} MB)", file=sys.stderr)
    truth = json.load(open(os.path.join(logs, "truth.json")))

    # The rows diagnose reads, from diagnose itself.
    _, _, out = run([a.bin, "diagnose", "--data", data, "--output", "json"])
    records_sql = json.loads(out)["sql"]
    scan_sql = (
        "SELECT vpn_id, count(*) AS records, count(DISTINCT tunnel_ip) AS tunnels, min(ts_ms), max(ts_ms), "
        "count(kind), count(severity), count(ike_phase1_state), count(ike_phase2_state), "
        f"count(from_state), count(to_state), count(prefix) FROM ({records_sql}) GROUP BY vpn_id ORDER BY vpn_id"
    )
    _, _, counted = run([a.bin, "query", "--data", data, "--output", "csv",
                         f"SELECT count(*) FROM ({records_sql})"])
    rows = int(counted.strip().splitlines()[-1])

    scan, diag, scan_rss, diag_rss = [], [], 0.0, 0.0
    last = None
    for _ in range(a.runs):
        s, r, _ = run([a.bin, "query", "--data", data, "--output", "csv", scan_sql])
        scan.append(s)
        scan_rss = max(scan_rss, r)
        d, r, out = run([a.bin, "diagnose", "--data", data, "--output", "json"])
        diag.append(d)
        diag_rss = max(diag_rss, r)
        last = out
    diagnosis = json.loads(last)
    right, missed, extra = score(truth, diagnosis)
    incidents = len(truth["incidents"])
    res = {
        "connections": a.connections, "days": a.days, "seed": a.seed, "runs": a.runs,
        "rows_read": rows,
        "scan_s": scan, "diagnose_s": diag,
        "scan_median_s": statistics.median(scan), "diagnose_median_s": statistics.median(diag),
        "ratio": statistics.median(diag) / statistics.median(scan),
        "scan_rss_mb": scan_rss, "diagnose_rss_mb": diag_rss,
        "incidents": incidents, "right": right, "right_share": right / incidents if incidents else None,
        "missed_by_scenario": {s: missed.count(s) for s in sorted(set(missed))},
        "extra_by_cause": {c: extra.count(c) for c in sorted(set(extra))},
        "diagnoses": sum(len(c["diagnoses"]) for c in diagnosis["connections"]),
        "fleet_events": len(diagnosis["fleet_events"]),
    }
    json.dump(res, open(os.path.join(a.work, "results.json"), "w"), indent=2)
    print(json.dumps(res, indent=2))
    print(f"diagnose {res['diagnose_median_s']:.2f} s vs one scan {res['scan_median_s']:.2f} s: "
          f"{res['ratio']:.2f}x; {right}/{incidents} incidents right, {len(extra)} extra diagnoses")


if __name__ == "__main__":
    main()

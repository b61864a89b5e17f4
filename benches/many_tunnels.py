#!/usr/bin/env python3
"""One-shot ingest of a store with very many distinct tunnels, metrics included.

    cargo build --release
    python3 benches/many_tunnels.py [--records 2000000] [--tunnels 1000000] [--hours 11] [--bin PATH]

The input is the shape that once hung `tunnelwatch ingest` in its metrics step (issue 10): one
NDJSON file whose name is a log stream name, half of it tunnel activity records of that one
tunnel, half BGP records each naming a different tunnel (`resource_id` of `--tunnels` distinct
connections), spread evenly over `--hours` of event time. Every tunnel's state holds from its
first record up to the newest event time, so the metrics step writes about
`tunnels × hours × 60 / 2 × series` datapoints — many Parquet chunks of the `metrics` table.

It runs `tunnelwatch ingest --no-metrics` (the load alone, the baseline) and then
`tunnelwatch metrics rebuild` on the same store, each as its own process with wall time and peak
RSS, and reports the metrics step as a ratio of the load. It checks that every tunnel got
TunnelState datapoints. Data and `results.json` go under `target/bench-many-tunnels/`.
"""
import argparse, json, os, shutil, subprocess, sys, time

from store_vs_duckdb import readable  # the same "YYYY-MM-DD HH:MM:SS.mmmZ" rendering

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STREAM = "vpn-0123456789abcdef0-198.51.100.1"
ACTIVITY = [
    ("established", "established", "AWS tunnel processed request (id={n}) for CREATE_CHILD_SA"),
    ("established", "established", "AWS tunnel is sending response (id={n}) for CREATE_CHILD_SA"),
    ("down", "down", "AWS tunnel DPD timed out after 3 retransmits"),
]
BGP = [
    ("UP", "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.{m}.1"),
    ("DOWN", "AWS-side peer BGP session state has changed from Established to Idle with neighbor 169.254.{m}.1"),
]


def generate(path, records, tunnels, hours, start_ms=1762560000000):
    """Deterministic: record i at start + i × span / records; odd records are BGP records of
    tunnel (i // 2) % tunnels, even ones activity records of the file's own stream."""
    span = int(hours * 3_600_000)
    with open(path, "w") as f:
        for i in range(records):
            t = start_ms + i * span // records
            if i % 2 == 0:
                p1, p2, d = ACTIVITY[(i // 2) % len(ACTIVITY)]
                rec = {"event_timestamp": t // 1000, "timestamp": readable(t), "dpd_enabled": True,
                       "nat_t_detected": False, "ike_phase1_state": p1, "ike_phase2_state": p2,
                       "details": d.format(n=i)}
            else:
                k = (i // 2) % tunnels
                rid = "vpn-%017x_10.%d.%d.%d" % (k, (k >> 16) & 255, (k >> 8) & 255, k & 255)
                status, d = BGP[(i // 2 // tunnels) % len(BGP)]
                rec = {"resource_id": rid, "event_timestamp": t, "timestamp": readable(t),
                       "type": "BGPStatus", "status": status,
                       "message": {"details": d.format(m=k % 250)}}
            f.write(json.dumps(rec, separators=(", ", ": ")) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--tunnels", type=int, default=1_000_000)
    ap.add_argument("--hours", type=float, default=11)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tunnelwatch"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-many-tunnels"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    src = os.path.join(a.work, f"{STREAM}.ndjson")
    tag = f"{a.records}-{a.tunnels}-{a.hours}"
    tag_file = src + ".tag"
    if not (os.path.exists(src) and os.path.exists(tag_file) and open(tag_file).read() == tag):
        generate(src, a.records, a.tunnels, a.hours)
        open(tag_file, "w").write(tag)
    data = os.path.join(a.work, "data")
    shutil.rmtree(data, ignore_errors=True)
    # ru_maxrss of children is the maximum over all children so far: measure each in a wrapper.
    wrap = [sys.executable, "-c",
            "import resource,subprocess,sys; r=subprocess.run(sys.argv[1:]); "
            "print('@@', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"]

    def run(cmd):
        t = time.time()
        p = subprocess.run(wrap + cmd, capture_output=True, text=True)
        dt = time.time() - t
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-4000:]}")
        rss = int([l for l in p.stderr.splitlines() if l.startswith("@@")][-1].split()[1]) / 1024
        return dt, rss, p.stdout

    load_s, load_rss, out1 = run([a.bin, "ingest", "--data", data, "--no-metrics", src])
    metrics_s, metrics_rss, out2 = run([a.bin, "metrics", "rebuild", "--data", data])
    _, _, counted = run([a.bin, "query", "--data", data, "--output", "csv",
                         "SELECT count(DISTINCT vpn_id) AS connections, count(*) AS datapoints FROM metrics "
                         "WHERE metric_name = 'TunnelState' AND tunnel_ip IS NOT NULL"])
    connections, datapoints = (int(x) for x in counted.strip().splitlines()[-1].split(","))
    size = os.path.getsize(src)
    res = {
        "records": a.records, "tunnels": a.tunnels, "hours": a.hours, "input_mb": size / 1e6,
        "load_s": load_s, "load_rss_mb": load_rss, "metrics_s": metrics_s, "metrics_rss_mb": metrics_rss,
        "ratio_metrics_to_load": metrics_s / load_s,
        "connections_with_tunnel_state": connections, "tunnel_state_datapoints": datapoints,
        "rebuild_output": out2.strip(),
    }
    json.dump(res, open(os.path.join(a.work, "results.json"), "w"), indent=2)
    print(json.dumps(res, indent=2))
    # Every tunnel seen before the last, incomplete minute has TunnelState datapoints (the
    # metrics end at the newest complete minute; a tunnel whose only record falls in the last
    # minute has none yet), plus the activity stream's own tunnel.
    start_ms, span = 1762560000000, int(a.hours * 3_600_000)
    newest = start_ms + (a.records - 1) * span // a.records
    last_complete = newest // 60_000 * 60_000
    bgp_records = (a.records + 1) // 2
    seen_before = {(i // 2) % a.tunnels for i in range(1, min(a.records, 2 * a.tunnels + 1), 2)
                   if start_ms + i * span // a.records < last_complete}
    expected = len(seen_before) + 1 if bgp_records else 1
    res["expected_connections"] = expected
    json.dump(res, open(os.path.join(a.work, "results.json"), "w"), indent=2)
    if connections != expected:
        raise SystemExit(f"TunnelState for {connections} connections, expected {expected}")
    print(f"ok: TunnelState for all {expected} connections seen before the last complete minute")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Soak: `tunnelwatch demo` at 20x speed for an hour (or `--minutes`), with its resident memory,
open file descriptors and threads sampled every minute, while the status page, the API and
/metrics are read as a browser and Prometheus would. Stable means: no growth trend after the
first samples (the history load and the first flushes).

    cargo build --locked
    python3 benches/soak.py [--minutes 60] [--speed 20] [--binary target/debug/tunnelwatch] \
        [--plot benches/results/soak.png]

Prints one JSON object with every sample (minute, RSS MiB, fds, threads, rows stored); with
`--plot` (needs matplotlib) draws them. Exit 1 if the last third's mean RSS is more than 25 %
above the second third's, or fds or threads grew by more than 10 between them (a leak would
keep growing; a store that flushes and compacts levels off).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc(pid):
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def get(addr, path, body=None):
    req = urllib.request.Request(f"http://{addr}{path}", data=body,
                                 method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/debug/tunnelwatch")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--speed", type=int, default=20)
    ap.add_argument("--plot")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tw-soak-")
    addr = f"127.0.0.1:{free_port()}"
    p = subprocess.Popen([args.binary, "demo", "--listen", addr, "--data", f"{work}/data",
                          "--speed", str(args.speed)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if "Ctrl-C stops" in line:
            break
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    stop = threading.Event()

    def reader():
        # What a browser on the status page and a Prometheus scrape do, every few seconds.
        while not stop.is_set():
            try:
                get(addr, "/")
                get(addr, "/metrics")
                get(addr, "/api/v1/connections")
                get(addr, "/api/query?format=csv",
                    b"SELECT message_kind, count(*) FROM tunnel_activity GROUP BY 1")
            except OSError:
                pass
            stop.wait(5)

    threading.Thread(target=reader, daemon=True).start()
    samples = []
    started = time.time()
    minute = 0
    while minute <= args.minutes:
        rss, fds, threads = proc(p.pid)
        rows = json.loads(get(addr, "/api/query?format=json",
                              b"SELECT count(*) AS n FROM tunnel_activity"))
        n = rows[0]["n"] if isinstance(rows, list) else rows.get("rows", [{}])[0].get("n")
        samples.append({"minute": minute, "rss_mib": rss, "fds": fds, "threads": threads,
                        "activity_rows": n})
        print(json.dumps(samples[-1]), file=sys.stderr)
        minute += 1
        time.sleep(max(0, started + minute * 60 - time.time()))
    stop.set()
    p.terminate()
    code = p.wait(timeout=120)

    k = len(samples) // 3
    mid, last = samples[k:2 * k], samples[2 * k:]
    mean = lambda xs, key: sum(x[key] for x in xs) / max(1, len(xs))
    failures = []
    if mean(last, "rss_mib") > 1.25 * mean(mid, "rss_mib"):
        failures.append("RSS still growing in the last third")
    for key in ("fds", "threads"):
        if mean(last, key) > mean(mid, key) + 10:
            failures.append(f"{key} growing")
    if code != 0:
        failures.append(f"demo exited {code} on SIGTERM")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 4))
        m = [s["minute"] for s in samples]
        ax.plot(m, [s["rss_mib"] for s in samples], label="RSS (MiB)")
        ax.plot(m, [s["fds"] for s in samples], label="open fds")
        ax.plot(m, [s["threads"] for s in samples], label="threads")
        ax.set_xlabel(f"minute (demo at {args.speed}x)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
    print(json.dumps({"minutes": args.minutes, "speed": args.speed, "samples": samples,
                      "failures": failures}, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

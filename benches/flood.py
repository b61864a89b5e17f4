#!/usr/bin/env python3
"""Floods and idle connections against `tunnelwatch serve`: memory stays within the in-flight
budget, backpressure shows on /metrics, nothing acknowledged is lost, and the pipeline catches
up; thousands of idle connections do not starve a real client.

    cargo build --locked        # or --release and --binary target/release/tunnelwatch
    python3 benches/flood.py [--seconds 60] [--budget-mib 16] [--idle 10000]

Phase 1, flood: for `--seconds`, at once and as fast as the senders can go —
- syslog TCP: 4 connections, `sendall` of RFC 5424 lines (TCP backpressure: the sender blocks
  when tunnelwatch stops reading; no line may be lost);
- syslog UDP: 1 sender (beyond the budget datagrams are dropped, counted);
- HTTP push: 4 threads POSTing 1,000-record bodies (503 when saturated; every 200 must be
  stored).
Every 0.5 s the script samples serve's RSS (/proc/PID/status VmRSS) and
`tunnelwatch_pipeline_in_flight_bytes`. Afterwards it waits until every TCP line and every
acknowledged HTTP record is stored, and reports the time to catch up.

Phase 2, idle connections: opens `--idle` TCP connections (half to the HTTP push port, half to
the API port) that send nothing or half a request line, then times `/healthz` and one push while
they stay open, and after 20 s (the idle limit with the 5 s timeouts set here is 15 s) counts
how many the server has not closed.

Prints one JSON object; exit 1 if a check fails (records lost, RSS over idle + budget +
`store_memory` + the stated allowance, a real client refused or slower than 5 s while the idle connections are open).
"""

import argparse
import json
import os
import resource
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from serve_process import activity, start

TOKEN = "flood-bench-token-0123456"




def request(addr, method, path, body=b"", headers=None, timeout=30):
    req = urllib.request.Request(f"http://{addr}{path}", data=body if method == "POST" else None,
                                 headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def metric(http, name):
    _, body = request(http, "GET", "/metrics")
    for line in body.decode(errors="replace").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return None


def count(http, kind):
    _, body = request(http, "POST", "/api/query?format=csv",
                      f"SELECT count(*), count(DISTINCT details) FROM tunnel_activity "
                      f"WHERE details LIKE '%(id={kind}-%'".encode(), timeout=120)
    n, d = body.decode().strip().splitlines()[1].split(",")
    return int(n), int(d)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/debug/tunnelwatch")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--budget-mib", type=int, default=16)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--store-memory-mib", type=int, default=64,
                    help="[pipeline] store_memory (0: unset, a flush every 512 Ki rows)")
    # Above the budget and the store's unflushed rows: the runtime, decoders, a flush's Parquet
    # encoding and the query caches.
    ap.add_argument("--allowance-mib", type=int, default=200,
                    help="RSS allowed above idle + budget + store memory")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tw-flood-")
    config = os.path.join(work, "tunnelwatch.toml")
    with open(config, "w") as f:
        f.write(f'''data = "{work}/data"

[pipeline]
in_flight_budget = "{args.budget_mib}MiB"
{f'store_memory = "{args.store_memory_mib}MiB"' if args.store_memory_mib else ""}

[http]
request_timeout = "5s"

[sources.push]
type = "http"
address = "127.0.0.1:0"
token = "{TOKEN}"
max_body_bytes = 4194304
ack_timeout = "5s"

[sources.tcp]
type = "syslog"
address = "127.0.0.1:0"

[sources.udp]
type = "syslog"
mode = "udp"
address = "127.0.0.1:0"
''')
    p, http, sources = start(args.binary, config)
    idle_rss = rss_kib(p.pid)
    stop = threading.Event()
    sent = {"tcp": 0, "udp": 0, "http_sent": 0, "http_acked": 0, "http_503": 0, "http_other": 0}
    acked_ids = []
    lock = threading.Lock()

    def tcp_sender(k):
        host, port = sources["tcp"].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        i = k * 100_000_000
        while not stop.is_set():
            chunk = "".join(f"<134>1 2026-12-01T00:00:00Z gw vpn-0a0a0a0a-1.1.1.1 - - - "
                            f"{activity('tcp', i + j)}\n" for j in range(200))
            s.sendall(chunk.encode())
            i += 200
            with lock:
                sent["tcp"] += 200
        s.close()

    def udp_sender():
        host, port = sources["udp"].rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        i = 0
        while not stop.is_set():
            s.sendto((f"<134>1 2026-12-01T00:00:00Z gw vpn-0b0b0b0b-2.2.2.2 - - - "
                      f"{activity('udp', i)}").encode(), (host, int(port)))
            i += 1
            with lock:
                sent["udp"] += 1

    def http_sender(k):
        i = k * 100_000_000
        while not stop.is_set():
            body = "".join(activity("http", i + j) + "\n" for j in range(1000)).encode()
            status, _ = request(sources["push"], "POST", "/ingest?stream=vpn-0c0c0c0c-3.3.3.3",
                                body, {"Authorization": f"Bearer {TOKEN}"})
            with lock:
                sent["http_sent"] += 1000
                if status == 200:
                    sent["http_acked"] += 1000
                    acked_ids.append(i)
                elif status == 503:
                    sent["http_503"] += 1
                else:
                    sent["http_other"] += 1
            i += 1000

    threads = [threading.Thread(target=tcp_sender, args=(k,), daemon=True) for k in range(4)]
    threads += [threading.Thread(target=udp_sender, daemon=True)]
    threads += [threading.Thread(target=http_sender, args=(k,), daemon=True) for k in range(4)]
    started = time.time()
    for t in threads:
        t.start()
    samples = []
    while time.time() - started < args.seconds:
        samples.append((round(time.time() - started, 1), rss_kib(p.pid),
                        metric(http, "tunnelwatch_pipeline_in_flight_bytes")))
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    flood_end = time.time()
    # Catch up: every TCP line and every acknowledged HTTP record stored.
    deadline = time.time() + 600
    while True:
        tcp_n, tcp_d = count(http, "tcp")
        http_n, http_d = count(http, "http")
        if (tcp_n >= sent["tcp"] and http_n >= sent["http_acked"]) or time.time() > deadline:
            break
        samples.append((round(time.time() - started, 1), rss_kib(p.pid),
                        metric(http, "tunnelwatch_pipeline_in_flight_bytes")))
        time.sleep(1)
    caught_up = time.time() - flood_end
    udp_n, _ = count(http, "udp")
    udp_dropped = metric(http, 'tunnelwatch_source_dropped_total{source="udp",kind="syslog"}')
    # The flood's samples: the catch-up's queries (count DISTINCT over millions of rows) take
    # query memory, reported on its own.
    flood_samples = [s for s in samples if s[0] <= args.seconds]
    peak_rss = max(s[1] for s in flood_samples)
    peak_catch_up = max(s[1] for s in samples)
    peak_in_flight = max((s[2] or 0) for s in flood_samples)

    # Phase 2: idle connections.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 1000)), hard))
    idle = []
    opened = 0
    for k in range(args.idle):
        addr = sources["push"] if k % 2 else http
        host, port = addr.rsplit(":", 1)
        try:
            c = socket.create_connection((host, int(port)), timeout=5)
            if k % 4 == 1:
                c.send(b"POST /ingest HTTP/1.1\r\nHost: x\r\n")  # half a request, never finished
            idle.append(c)
            opened += 1
        except OSError:
            break
    t = time.time()
    health, _ = request(http, "GET", "/healthz", timeout=30)
    health_s = time.time() - t
    t = time.time()
    push, _ = request(sources["push"], "POST", "/ingest?stream=vpn-0c0c0c0c-3.3.3.3",
                      (activity("late", 1) + "\n").encode(), {"Authorization": f"Bearer {TOKEN}"})
    push_s = time.time() - t
    # Past the idle limit (twice the 5 s timeouts, and 5 s): the server has closed them.
    rss_with_idle = rss_kib(p.pid)
    time.sleep(20)
    still_open = 0
    for c in idle:
        try:
            c.setblocking(False)
            if c.recv(1) == b"":
                pass
            else:
                still_open += 1
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        c.close()
    p.terminate()
    p.wait(timeout=120)

    failures = []
    if tcp_n != sent["tcp"] or tcp_d != tcp_n:
        failures.append(f"syslog TCP: {sent['tcp']} sent, {tcp_n} stored ({tcp_d} distinct)")
    if http_n < sent["http_acked"] or http_d != http_n:
        failures.append(f"HTTP: {sent['http_acked']} acknowledged, {http_n} stored ({http_d} distinct)")
    # Unset, the store holds up to 512 Ki rows (~500 MiB decoded) before a flush.
    store_kib = (args.store_memory_mib or 500) * 1024
    budget_kib = args.budget_mib * 1024
    if peak_rss > idle_rss + budget_kib + store_kib + args.allowance_mib * 1024:
        failures.append(f"peak RSS {peak_rss} KiB over idle {idle_rss} + budget + allowance")
    if still_open:
        failures.append(f"{still_open} idle connections still open past the idle limit")
    if health != 200 or push != 200 or health_s > 5 or push_s > 5:
        failures.append(f"with {opened} idle connections: /healthz {health} in {health_s:.2f} s, "
                        f"push {push} in {push_s:.2f} s")
    print(json.dumps({
        "seconds": args.seconds, "budget_mib": args.budget_mib,
        "store_memory_mib": args.store_memory_mib or None,
        "rss_mib": {"idle": round(idle_rss / 1024), "peak": round(peak_rss / 1024),
                    "peak_minus_idle": round((peak_rss - idle_rss) / 1024),
                    "peak_with_catch_up_queries": round(peak_catch_up / 1024),
                    "with_idle_connections": round(rss_with_idle / 1024)},
        "peak_in_flight_mib": round(peak_in_flight / 2**20, 1),
        "syslog_tcp": {"sent": sent["tcp"], "stored": tcp_n,
                       "per_second": round(sent["tcp"] / args.seconds)},
        "syslog_udp": {"sent": sent["udp"], "stored": udp_n, "dropped_counted": udp_dropped},
        "http": {"records_sent": sent["http_sent"], "acknowledged": sent["http_acked"],
                 "stored": http_n, "answers_503": sent["http_503"],
                 "other_answers": sent["http_other"]},
        "catch_up_seconds": round(caught_up, 1),
        "idle_connections": {"opened": opened, "still_open_after_20_s": still_open,
                             "healthz_seconds": round(health_s, 3), "healthz": health,
                             "push_seconds": round(push_s, 3), "push": push},
        "rss_samples": samples[::max(1, len(samples) // 40)],
        "failures": failures,
    }, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

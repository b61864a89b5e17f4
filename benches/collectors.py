#!/usr/bin/env python3
"""Streaming collectors (HTTP NDJSON, syslog TCP) against file ingest, same machine, same run.

    cargo build --release --locked
    python3 benches/collectors.py [--records 2000000] [--clients 4] [--body-mib 4] [--work DIR]

One data set (the mixed NDJSON of benches/store_vs_duckdb.py: half tunnel activity, half BGP,
283 bytes per record), loaded four ways into a fresh data directory each:

- file ingest (the baseline): `tunnelwatch ingest --no-metrics --data D FILE`, wall time of the
  process (parse, WAL with fsync per batch, Parquet flush at the end);
- HTTP NDJSON: `tunnelwatch serve` with an `http` source (in-flight budget 64 MiB,
  sync = "always"); the NDJSON cut at line boundaries into ~4 MiB bodies, POSTed from K client
  threads (one kept-alive connection each) to `/ingest?stream=<log stream>`; timed from the first
  request to the last 200 (a 200 means the body's records are durable in the WAL);
- syslog TCP: `serve` with a `syslog` TCP source; the same records as RFC 5424 lines
  (`<134>1 TS bench-gw <log stream> - - - {json}`, the log stream in APP-NAME gives the activity
  records their tunnel), formatted in memory before timing, sent over K connections with
  sendall; syslog has no acks, so timed from the first byte sent until `/metrics` shows every
  record counted and nothing in flight (`tunnelwatch_source_records_total` = N and
  `tunnelwatch_pipeline_in_flight_bytes 0`: every delivery appended to the WAL);
- raw NDJSON over TCP: the same syslog source kind with `stream_name` set, the NDJSON lines sent
  bare (no syslog header), timed the same way.

Each serve run then checks the stored rows through `/api/query` (tunnel_activity + bgp_events +
traffic + rejects = records sent, and no rejects), reads the peak RSS of the serve process
(VmHWM, before stopping) and the CPU time of each of its threads over the timed window, stops it
with SIGTERM (the store flushes to Parquet; that time is reported on its own, it is not part of
the timed window) and requires exit code 0. Ratio = collector records/s / file-ingest records/s
(the issue's target: ≥ 0.70); "+stop" also counts serve's stop (its final Parquet flush, which
file ingest's time includes).
"""
import argparse, http.client, importlib.util, json, os, re, resource, shutil, signal, socket
import subprocess, sys, threading, time, urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "tunnelwatch")
STREAM = "vpn-0123456789abcdef0-203.0.113.12"
TOKEN = "bench-token-0123456789"
BUDGET = "64MiB"
TABLES = ["tunnel_activity", "bgp_events", "traffic", "rejects"]


def _store_bench():
    spec = importlib.util.spec_from_file_location(
        "store_vs_duckdb", os.path.join(os.path.dirname(os.path.abspath(__file__)), "store_vs_duckdb.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


STORE = _store_bench()


def dataset(work, n):
    """The store benchmark's data set (same generator, same seed), named as its log stream."""
    src = os.path.join(work, STREAM + ".ndjson")
    if not os.path.exists(src) or sum(1 for _ in open(src, "rb")) != n:
        STORE.generate(src, n)
    with open(src, "rb") as f:
        data = f.read()
    return src, data


def split_lines(data, parts):
    """Cuts `data` at line boundaries into `parts` pieces of about equal size."""
    out, start = [], 0
    for i in range(1, parts + 1):
        end = len(data) if i == parts else data.index(b"\n", max(start, len(data) * i // parts)) + 1
        out.append(data[start:end])
        start = end
    return [p for p in out if p]


def bodies_of(data, size):
    out, start = [], 0
    while start < len(data):
        end = min(len(data), start + size)
        if end < len(data):
            end = data.rindex(b"\n", start, end) + 1
        out.append(data[start:end])
        start = end
    return out


TS = re.compile(rb'"timestamp": "(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}Z)"')


def syslog_lines(data):
    """RFC 5424 lines: the record's own time in the header, the log stream in APP-NAME."""
    out = []
    head = b"<134>1 %s bench-gw " + STREAM.encode() + b" - - - "
    for line in data.splitlines(keepends=True):
        m = TS.search(line)
        out.append(head % (m.group(1) + b"T" + m.group(2)) + line)
    return b"".join(out)


class Serve:
    """A `tunnelwatch serve` process with the given sources, on free ports."""

    def __init__(self, work, name, sources_toml):
        self.data = os.path.join(work, "data-" + name)
        shutil.rmtree(self.data, ignore_errors=True)
        self.config = os.path.join(work, name + ".toml")
        with open(self.config, "w") as f:
            f.write(f'data = "{self.data}"\nlisten = "127.0.0.1:0"\n\n'
                    f'[pipeline]\nin_flight_budget = "{BUDGET}"\nsync = "always"\n\n{sources_toml}')
        self.stderr = open(os.path.join(work, name + ".stderr"), "w+")
        subprocess.run(["sync"])
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config, "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.sources, self.addr = {}, None
        deadline = time.time() + 30
        for line in self.proc.stdout:
            m = re.search(r"Status page\s+http://(\S+?)/", line)
            if m:
                self.addr = m.group(1)
            m = re.match(r"\s+(\S+)\s+(syslog|http|firehose)\s+(\S+)$", line.rstrip())
            if m:
                self.sources[m.group(1)] = m.group(3)
            if line.startswith("Ctrl-C stops") or time.time() > deadline:
                break
        if self.addr is None:
            self.proc.kill()
            raise SystemExit(f"serve did not start:\n{self.log()}")
        # Keep draining stdout so serve never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def log(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def source_addr(self, name):
        host, port = self.sources[name].split("://", 1)[1].rsplit(":", 1)
        return host, int(port)

    def get(self, path, body=None):
        c = http.client.HTTPConnection(*self.addr.rsplit(":", 1), timeout=120)
        c.request("POST" if body is not None else "GET", path, body=body)
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        if r.status != 200:
            raise SystemExit(f"GET {path}: {r.status} {text}")
        return text

    def metric(self, text, name, labels=""):
        for line in text.splitlines():
            if line.startswith(name + labels) and (labels or line[len(name)] in " {"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def counts(self):
        sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in TABLES)
        rows = json.loads(self.get("/api/query?format=json", sql.encode()))
        return {r["t"]: int(r["n"]) for r in rows}

    def vm_hwm_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024

    def thread_cpu(self):
        """CPU seconds per thread name (tokio workers summed)."""
        out, tick = {}, os.sysconf("SC_CLK_TCK")
        base = f"/proc/{self.proc.pid}/task"
        for tid in os.listdir(base):
            try:
                with open(f"{base}/{tid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return out

    def stop(self):
        """SIGTERM; returns (seconds to exit, peak RSS in MB incl. the final flush).

        The peak is VmHWM sampled every 5 ms until exit: wait4's ru_maxrss is useless here, since
        Linux starts a child's maxrss at the RSS of the (large) parent that forked it."""
        hwm, done = [self.vm_hwm_mb()], threading.Event()

        def sample():
            while not done.is_set():
                try:
                    hwm.append(self.vm_hwm_mb() or 0)
                except OSError:
                    return
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t = time.time()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait()
        dt = time.time() - t
        done.set()
        sampler.join()
        if rc != 0:
            raise SystemExit(f"serve exited with {rc}:\n{self.log()}")
        return dt, max(hwm)


def cpu_delta(before, after):
    return {k: round(after.get(k, 0) - before.get(k, 0), 2) for k in after if after.get(k, 0) - before.get(k, 0) > 0.005}


def wait_stored(serve, source, n, timeout=600):
    """Polls /metrics until the source counted n records and nothing is in flight."""
    deadline = time.time() + timeout
    labels = '{source="%s"' % source
    while time.time() < deadline:
        text = serve.get("/metrics")
        got = None
        for line in text.splitlines():
            if line.startswith("tunnelwatch_source_records_total" + labels):
                got = int(float(line.rsplit(" ", 1)[1]))
        inflight = serve.metric(text, "tunnelwatch_pipeline_in_flight_bytes")
        if got is not None and got >= n and inflight == 0:
            return time.time()
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {n} records in {source}:\n{serve.log()}")


def finish(serve, n, t0, t1, nbytes, extra):
    hwm = serve.vm_hwm_mb()
    counts = serve.counts()
    stored = sum(counts.values())
    if stored != n or counts.get("rejects", 0) != 0:
        serve.proc.kill()
        raise SystemExit(f"stored rows {counts} (sum {stored}) != records sent {n}, or rejects:\n{serve.log()}")
    stop_s, rss_life = serve.stop()
    dt = t1 - t0
    return dict(extra, records=n, bytes_sent=nbytes, seconds=dt, rec_per_s=n / dt, mb_per_s=nbytes / 1e6 / dt,
                peak_rss_mb=hwm, peak_rss_incl_stop_mb=rss_life, stop_s=stop_s, counts=counts)


def run_http(work, data, n, clients, body_size):
    serve = Serve(work, "http", f'[sources.bench_http]\ntype = "http"\naddress = "127.0.0.1:0"\ntoken = "{TOKEN}"\n')
    host, port = serve.source_addr("bench_http")
    bodies = bodies_of(data, body_size)
    path = "/ingest?stream=" + urllib.parse.quote(STREAM)
    headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/x-ndjson"}
    lock, nxt, retries, errors, last = threading.Lock(), [0], [0], [], [0.0]
    conns = [http.client.HTTPConnection(host, port, timeout=120) for _ in range(clients)]
    for c in conns:
        c.connect()
    start = threading.Barrier(clients + 1)

    def client(c):
        start.wait()
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(bodies) or errors:
                return
            while True:
                c.request("POST", path, body=bodies[i], headers=headers)
                r = c.getresponse()
                text = r.read()
                if r.status == 200:
                    break
                if r.status == 503:
                    with lock:
                        retries[0] += 1
                    time.sleep(0.05)
                    continue
                errors.append(f"{r.status} {text[:300]!r}")
                return
            t = time.time()
            with lock:
                last[0] = max(last[0], t)

    threads = [threading.Thread(target=client, args=(c,)) for c in conns]
    for th in threads:
        th.start()
    before, cpu0 = serve.thread_cpu(), os.times()
    t0 = time.time()
    start.wait()
    for th in threads:
        th.join()
    cpu1 = os.times()
    after = serve.thread_cpu()
    for c in conns:
        c.close()
    if errors:
        serve.proc.kill()
        raise SystemExit(f"HTTP ingest failed: {errors[0]}\n{serve.log()}")
    return finish(serve, n, t0, last[0], len(data),
                  dict(name=f"HTTP NDJSON ({clients} clients, {len(bodies)} bodies of ~{body_size >> 20} MiB)",
                       retries_503=retries[0], serve_cpu_s=cpu_delta(before, after),
                       sender_cpu_s=round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2)))


def run_tcp(work, data, n, clients, label, name, extra_toml=""):
    serve = Serve(work, name, f'[sources.{name}]\ntype = "syslog"\nmode = "tcp"\naddress = "127.0.0.1:0"\n{extra_toml}')
    host, port = serve.source_addr(name)
    parts = split_lines(data, clients)
    socks = [socket.create_connection((host, port)) for _ in parts]
    start = threading.Barrier(len(parts) + 1)

    def sender(s, part):
        start.wait()
        s.sendall(part)
        s.shutdown(socket.SHUT_WR)
        s.close()

    threads = [threading.Thread(target=sender, args=(s, p)) for s, p in zip(socks, parts)]
    for th in threads:
        th.start()
    before, cpu0 = serve.thread_cpu(), os.times()
    t0 = time.time()
    start.wait()
    for th in threads:
        th.join()
    t_sent = time.time()
    t1 = wait_stored(serve, name, n)
    cpu1 = os.times()
    after = serve.thread_cpu()
    return finish(serve, n, t0, t1, len(data),
                  dict(name=f"{label} ({len(parts)} connections)", send_s=t_sent - t0,
                       serve_cpu_s=cpu_delta(before, after),
                       sender_cpu_s=round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2)))


def run_file(work, src, n):
    d = os.path.join(work, "data-file")
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run(["sync"])
    dt, rss, out, _ = STORE.measured([BIN, "ingest", "--data", d, "--no-metrics", src])
    size = os.path.getsize(src)
    return dict(name="file ingest (baseline)", records=n, bytes_sent=size, seconds=dt, rec_per_s=n / dt,
                mb_per_s=size / 1e6 / dt, peak_rss_mb=rss, summary=out.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--clients", type=int, default=4, help="HTTP client threads and TCP connections")
    ap.add_argument("--body-mib", type=float, default=4)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-collectors"))
    ap.add_argument("--skip-raw", action="store_true", help="skip raw NDJSON over TCP")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release --locked")
    os.makedirs(args.work, exist_ok=True)
    n = args.records
    src, data = dataset(args.work, n)
    lines = syslog_lines(data)

    results = [run_file(args.work, src, n)]
    print(json.dumps(results[-1]), flush=True)
    results.append(run_http(args.work, data, n, args.clients, int(args.body_mib * (1 << 20))))
    print(json.dumps(results[-1]), flush=True)
    results.append(run_tcp(args.work, lines, n, args.clients, "syslog TCP, RFC 5424", "bench_syslog"))
    print(json.dumps(results[-1]), flush=True)
    if not args.skip_raw:
        results.append(run_tcp(args.work, data, n, args.clients, "raw NDJSON over TCP", "bench_tcp_ndjson",
                               f'stream_name = "{STREAM}"\n'))
        print(json.dumps(results[-1]), flush=True)

    base = results[0]["rec_per_s"]
    for r in results:
        r["ratio"] = r["rec_per_s"] / base
        # File ingest's time includes its final Parquet flush; serve's stop does the same.
        r["ratio_incl_stop"] = n / (r["seconds"] + r.get("stop_s", 0)) / base
    print()
    print(f"{n:,} records, {len(data) / 1e6:.1f} MB NDJSON ({len(lines) / 1e6:.1f} MB as syslog); "
          f"in-flight budget {BUDGET}, sync = always")
    print(f"{'':<52} {'seconds':>8} {'records/s':>11} {'MB/s':>7} {'ratio':>6} {'+stop':>6} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['name']:<52} {r['seconds']:>8.2f} {r['rec_per_s']:>11,.0f} {r['mb_per_s']:>7.1f} "
              f"{r['ratio']:>6.2f} {r['ratio_incl_stop']:>6.2f} {r['peak_rss_mb']:>12.0f}")
    for r in results[1:]:
        print(f"  {r['name']}: stop (Parquet flush) {r['stop_s']:.2f} s, peak RSS incl. stop "
              f"{r['peak_rss_incl_stop_mb']:.0f} MB; serve CPU s {r['serve_cpu_s']}; sender CPU {r['sender_cpu_s']} s")
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Ingest, query and storage benchmarks of tunnelwatch against DuckDB, same machine, same run.

    cargo build --release && pip install duckdb chdb
    python3 benches/store_vs_duckdb.py [--ingest-records 2000000] [--query-records 10000000] [--work DIR]
        [--skip-ingest] [--skip-queries] [--rounds 5]

Ingest: the same mixed NDJSON file (half tunnel activity, half BGP) loaded by
`tunnelwatch ingest` (durable, fsynced Parquet; a file's rows skip the WAL) and by DuckDB
(`CREATE TABLE … AS SELECT * FROM read_json(…)` + CHECKPOINT). Wall time and peak RSS of each
process; ratio = tunnelwatch / DuckDB (≤ 1.0 means tunnelwatch is at least as fast).

Queries: the saved queries and three ad-hoc ones (a LIKE over `details`, a per-tunnel hourly
count, a join of activity and BGP events by minute) over the query-size data set, the same SQL in
each tool, answered two ways. Cold: a fresh process per query — `tunnelwatch query` (its whole
wall time, process start included) vs a new Python process opening DuckDB's database file (the
rows loaded from tunnelwatch's Parquet into DuckDB's own tables) and chDB (embedded ClickHouse,
`pip install chdb`) reading the same Parquet files, both timed from opening the store to the
fetched result. Warm: `tunnelwatch serve` answering `POST /api/v1/query` over one keep-alive
connection vs a warm DuckDB connection and a warm chDB session. Medians of `--rounds` runs (the
first warm run is not counted); the row counts must agree.

Storage: bytes on disk per record against the raw NDJSON.

Gzip: the same load from the file gzip'd (level 6), each tool decompressing it itself.
Text: the same records in the text format; DuckDB, which has no parser for it, stores the lines.

The floor: `wc -l` of the same file in the same run (reading the bytes alone), so the table
shows how far both loads are from what reading the input costs.
"""
import argparse, json, os, random, resource, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "tunnelwatch")
QUERIES = ["errors-by-kind", "phase1-down", "bgp-flaps", "route-denials", "noisy-connections"]

ACTIVITY = [
    ("established", "established", "AWS tunnel processed request (id={n}) for CREATE_CHILD_SA"),
    ("established", "established", "AWS tunnel is sending response (id={n}) for CREATE_CHILD_SA"),
    ("established", "established", "AWS tunnel is sending request (id={n}) for CREATE_CHILD_SA"),
    ("established", "established", "AWS tunnel processed response (id={n}) for CREATE_CHILD_SA"),
    ("established", "established", "AWS tunnel received DELETE for Phase 2 SA with SPI: c{n:07x}"),
    ("down", "down", "AWS tunnel DPD timed out after 3 retransmits"),
    ("down", "down", "AWS tunnel received DELETE for IKE_SA from CGW"),
    ("established", "established", "AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision"),
    ("negotiating", "down", "AWS tunnel detected a pre-shared key mismatch with cgw: 198.51.100.{m}"),
    ("down", "down", "Peer is not responsive - Declaring peer dead"),
]
BGP = [
    ("UP", "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.{m}.1"),
    ("DOWN", "AWS-side peer BGP session state has changed from Established to Idle with neighbor 169.254.{m}.1"),
    ("UP", "AWS-side peer received update with attributes from neighbor 169.254.{m}.1 - AS path: 65000 65010"),
    ("DOWN", "AWS-side peer sent a notification 6/2 (Cease/Administrative Shutdown) to neighbor 169.254.{m}.1"),
    ("UP", "AWS-side peer is reporting a maximum prefix limit warning - received 95 prefixes from neighbor 169.254.{m}.1, limit is 100"),
    ("UP", "AWS-side peer sent an End-of-RIB message to neighbor 169.254.{m}.1"),
]


def readable(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + ".%03dZ" % (ms % 1000)


def generate(path, n, seed=7):
    """Deterministic mixed NDJSON: activity records (identity from the file name) and BGP records
    of 400 tunnels, over ~3 days."""
    rng = random.Random(seed)
    t = 1762560000000
    with open(path, "w") as f:
        for i in range(n):
            t += rng.randrange(0, 260)
            m = rng.randrange(250)
            if i % 2 == 0:
                p1, p2, d = ACTIVITY[rng.randrange(len(ACTIVITY)) if rng.random() < 0.1 else rng.randrange(5)]
                rec = {"event_timestamp": t // 1000, "timestamp": readable(t), "dpd_enabled": True,
                       "nat_t_detected": False, "ike_phase1_state": p1, "ike_phase2_state": p2,
                       "details": d.format(n=i, m=m)}
            else:
                rid = "vpn-0123456789abcd%03x_203.0.113.%d" % (m % 200, m)
                if i % 6 == 1:
                    msg = {"prefix": "10.%d.%d.0/24" % (m, i % 256), "asPath": "65000 65010",
                           "localPref": 100, "med": 100, "nextHopIp": "169.254.%d.1" % m, "weight": 32768}
                    status = "ADVERTISED"
                    if rng.random() < 0.02:
                        msg["details"] = "DENIED due to: as-path contains our own AS"
                        status = "UPDATED"
                    rec = {"resource_id": rid, "event_timestamp": t, "timestamp": readable(t),
                           "type": "RouteStatus", "status": status, "message": msg}
                else:
                    status, d = BGP[rng.randrange(len(BGP))]
                    rec = {"resource_id": rid, "event_timestamp": t, "timestamp": readable(t),
                           "type": "BGPStatus", "status": status, "message": {"details": d.format(m=m)}}
            f.write(json.dumps(rec, separators=(", ", ": ")) + "\n")


def measured(cmd, **kw):
    """Runs cmd in a fresh process; returns (seconds, peak RSS in MB, stdout, stderr)."""
    wrapper = ("import resource, subprocess, sys, time; t = time.time(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "dt = time.time() - t; sys.stdout.write(p.stdout); sys.stderr.write(p.stderr); "
               "print('@@', dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode, file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", wrapper] + cmd, capture_output=True, text=True, **kw)
    tail = [l for l in p.stderr.splitlines() if l.startswith("@@")][-1].split()
    dt, rss, rc = float(tail[1]), int(tail[2]) / 1024, int(tail[3])
    if rc != 0:
        raise SystemExit(f"{cmd[0]} failed ({rc}):\n{p.stderr}")
    return dt, rss, p.stdout, p.stderr


DUCK_LOAD = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE logs AS SELECT * FROM read_json(?, format='newline_delimited')", [sys.argv[2]])
con.execute("CHECKPOINT")
print(con.execute("SELECT count(*) FROM logs").fetchone()[0])
"""

DUCK_FROM_PARQUET = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
for t in ["tunnel_activity", "bgp_events"]:
    con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{sys.argv[2]}/{t}/*/*.parquet')")
con.execute("CHECKPOINT")
"""



def du(path):
    total = 0
    for dp, _, fs in os.walk(path):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    return total


def ingest_bench(work, n):
    src = os.path.join(work, "vpn-0123456789abcdef0-203.0.113.12.ndjson")
    if not os.path.exists(src) or sum(1 for _ in open(src)) != n:
        generate(src, n)
    raw = os.path.getsize(src)
    tw_dir = os.path.join(work, "tw-ingest")
    duck_db = os.path.join(work, "duck-ingest.db")
    shutil.rmtree(tw_dir, ignore_errors=True)
    if os.path.exists(duck_db):
        os.remove(duck_db)
    subprocess.run(["sync"])
    # Loading only: the metrics engine's own cost is measured on its own below.
    tw_t, tw_rss, out, _ = measured([BIN, "ingest", "--no-metrics", "--data", tw_dir, src])
    # The same load decoded by one thread (what ingest did before split parsing).
    one_dir = tw_dir + "-one-thread"
    shutil.rmtree(one_dir, ignore_errors=True)
    one_t, one_rss, _, _ = measured([BIN, "ingest", "--no-metrics", "--threads", "1", "--data", one_dir, src])
    shutil.rmtree(one_dir, ignore_errors=True)
    m_t, m_rss, _, _ = measured([BIN, "metrics", "rebuild", "--data", tw_dir])
    subprocess.run(["sync"])
    dk_t, dk_rss, dk_out, _ = measured([sys.executable, "-c", DUCK_LOAD, duck_db, src])
    # The floor: reading the input's bytes and nothing else (`wc -l` counts newlines with
    # memchr), from the page cache like the two loads above.
    floor_t, _, _, _ = measured(["wc", "-l", src])
    parquet = du(tw_dir)
    return {
        "records": n, "raw_mb": raw / 1e6,
        "tunnelwatch_s": tw_t, "tunnelwatch_rss_mb": tw_rss,
        "duckdb_s": dk_t, "duckdb_rss_mb": dk_rss,
        "ratio": tw_t / dk_t,
        "tunnelwatch_one_thread_s": one_t, "tunnelwatch_one_thread_rss_mb": one_rss,
        "one_thread_ratio": one_t / dk_t,
        "floor_wc_s": floor_t, "tunnelwatch_vs_floor": tw_t / floor_t, "duckdb_vs_floor": dk_t / floor_t,
        "metrics_rebuild_s": m_t, "metrics_rebuild_rss_mb": m_rss,
        "metrics_vs_ingest": m_t / tw_t,
        "tunnelwatch_rec_per_s": n / tw_t, "duckdb_rec_per_s": n / dk_t,
        "tunnelwatch_disk_bytes": parquet, "duckdb_disk_bytes": os.path.getsize(duck_db),
        "tunnelwatch_bytes_per_record": parquet / n, "raw_bytes_per_record": raw / n,
        "disk_vs_raw": parquet / raw, "duckdb_disk_vs_raw": os.path.getsize(duck_db) / raw,
        "summary": out.strip(),
    }


def gzip_bench(work, src):
    """The same load from the gzip'd file (level 6), both tools decompressing it themselves; the
    floor is `gzip -dc` alone."""
    gz = src + ".gz"
    if not os.path.exists(gz) or os.path.getmtime(gz) < os.path.getmtime(src):
        subprocess.run(["gzip", "-k", "-6", "-f", src], check=True)
    r = compared_load(work, "gz", gz, DUCK_LOAD, ["sh", "-c", 'gzip -dc "$0" > /dev/null', gz])
    return {"gz_mb": os.path.getsize(gz) / 1e6, "tunnelwatch_s": r["tunnelwatch_s"],
            "tunnelwatch_rss_mb": r["tunnelwatch_rss_mb"], "duckdb_s": r["duckdb_s"],
            "duckdb_rss_mb": r["duckdb_rss_mb"], "ratio": r["ratio"], "floor_gunzip_s": r["floor_s"]}


def compared_load(work, tag, path, duck_script, floor_cmd):
    """One load of `path` by each tool into fresh stores (removed afterwards) and the floor
    command, each its own process."""
    tw_dir = os.path.join(work, "tw-ingest-" + tag)
    duck_db = os.path.join(work, "duck-ingest-%s.db" % tag)
    shutil.rmtree(tw_dir, ignore_errors=True)
    if os.path.exists(duck_db):
        os.remove(duck_db)
    subprocess.run(["sync"])
    tw_t, tw_rss, out, _ = measured([BIN, "ingest", "--no-metrics", "--data", tw_dir, path])
    dk_t, dk_rss, _, _ = measured([sys.executable, "-c", duck_script, duck_db, path])
    floor_t, _, _, _ = measured(floor_cmd)
    shutil.rmtree(tw_dir, ignore_errors=True)
    os.remove(duck_db)
    return {"tunnelwatch_s": tw_t, "tunnelwatch_rss_mb": tw_rss, "duckdb_s": dk_t,
            "duckdb_rss_mb": dk_rss, "ratio": tw_t / dk_t, "floor_s": floor_t,
            "summary": out.strip()}


DUCK_LOAD_TEXT = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
path = sys.argv[2].replace("'", "''")
con.execute(f"CREATE TABLE logs AS SELECT * FROM read_csv('{path}', columns={{'line': 'VARCHAR'}}, "
            "header=false, delim='\\x1f', quote='', escape='')")
con.execute("CHECKPOINT")
print(con.execute("SELECT count(*) FROM logs").fetchone()[0])
"""


def to_text(src, dst):
    """The same records in the text format (the documented field order, space-separated; the
    simulator's `--format text` rendering)."""
    with open(src) as f, open(dst + ".tmp", "w") as out:
        for line in f:
            r = json.loads(line)
            if "details" in r and "type" not in r:
                out.write("%s %s %s %s %s %d %s\n" % (
                    r["timestamp"], str(r["dpd_enabled"]).lower(), str(r["nat_t_detected"]).lower(),
                    r["ike_phase1_state"], r["ike_phase2_state"], r["event_timestamp"], r["details"]))
            else:
                m = r["message"]
                if r["type"] == "BGPStatus":
                    m = m["details"]
                else:
                    m = ("prefix=%s asPath=\"%s\" localPref=%d med=%d nextHopIp=%s weight=%d" % (
                        m["prefix"], m["asPath"], m["localPref"], m["med"], m["nextHopIp"], m["weight"])
                         + (' details="%s"' % m["details"] if "details" in m else ""))
                out.write("%s %s %s %s %s %d\n" % (
                    r["timestamp"], r["type"], r["status"], m, r["resource_id"], r["event_timestamp"]))
    os.replace(dst + ".tmp", dst)


def text_bench(work, src):
    """The same load from the text format. DuckDB has no parser for it: its baseline stores each
    line as one VARCHAR (`read_csv` with no delimiter in the data), which is less work than ours
    (fields, classification, identity)."""
    txt = os.path.join(work, "vpn-0123456789abcdef0-203.0.113.12.log")
    if not os.path.exists(txt) or os.path.getmtime(txt) < os.path.getmtime(src):
        to_text(src, txt)
    r = compared_load(work, "text", txt, DUCK_LOAD_TEXT, ["wc", "-l", txt])
    return {"text_mb": os.path.getsize(txt) / 1e6, "tunnelwatch_s": r["tunnelwatch_s"],
            "tunnelwatch_rss_mb": r["tunnelwatch_rss_mb"], "duckdb_lines_s": r["duckdb_s"],
            "duckdb_rss_mb": r["duckdb_rss_mb"], "ratio": r["ratio"], "floor_wc_s": r["floor_s"],
            "summary": r["summary"]}


ADHOC = [
    ("like-details", """SELECT vpn_id, tunnel_ip, count(*) AS dpd_timeouts, max(ts) AS last_seen
FROM tunnel_activity WHERE details LIKE '%DPD timed out%'
GROUP BY vpn_id, tunnel_ip ORDER BY dpd_timeouts DESC, vpn_id, tunnel_ip"""),
    ("tunnel-hours", """SELECT vpn_id, tunnel_ip, date_trunc('hour', ts) AS hour, count(*) AS records,
       count(*) FILTER (WHERE severity <> 'info') AS problems
FROM bgp_events GROUP BY vpn_id, tunnel_ip, date_trunc('hour', ts)
HAVING count(*) FILTER (WHERE severity <> 'info') > 40
ORDER BY problems DESC, vpn_id, tunnel_ip, hour LIMIT 100"""),
    ("activity-bgp-join", """WITH a AS (
    SELECT date_trunc('minute', ts) AS minute, count(*) AS ike_problems
    FROM tunnel_activity WHERE severity <> 'info' GROUP BY date_trunc('minute', ts)
), b AS (
    SELECT date_trunc('minute', ts) AS minute, vpn_id, tunnel_ip, count(*) AS bgp_changes
    FROM bgp_events WHERE message_kind = 'bgp_state_change' GROUP BY date_trunc('minute', ts), vpn_id, tunnel_ip
)
SELECT b.vpn_id, b.tunnel_ip, count(*) AS minutes, sum(a.ike_problems) AS ike_problems,
       sum(b.bgp_changes) AS bgp_changes
FROM a JOIN b ON a.minute = b.minute
GROUP BY b.vpn_id, b.tunnel_ip ORDER BY minutes DESC, b.vpn_id, b.tunnel_ip LIMIT 20"""),
]

# Warm baselines: one long-lived process per tool, each query run `rounds` times; prints, per
# query, [best s, median s, rows] as JSON.
DUCK_WARM = """
import duckdb, json, statistics, sys, time
con = duckdb.connect(sys.argv[1], read_only=True)
qs = json.load(sys.stdin); out = {}
for name, sql in qs:
    ts = []
    for _ in range(int(sys.argv[2])):
        t = time.perf_counter(); rows = con.execute(sql).fetchall(); ts.append(time.perf_counter() - t)
    out[name] = [min(ts), statistics.median(ts), len(rows)]
print(json.dumps(out))
"""
CHDB_VIEWS = """
def views(session, root):
    for t in ["tunnel_activity", "bgp_events"]:
        session.query(f"CREATE VIEW {t} AS SELECT * FROM file('{root}/{t}/*/*.parquet', Parquet)")
"""
CHDB_WARM = CHDB_VIEWS + """
import json, statistics, sys, time
from chdb import session
s = session.Session(); views(s, sys.argv[1])
qs = json.load(sys.stdin); out = {}
for name, sql in qs:
    ts = []
    for _ in range(int(sys.argv[2])):
        t = time.perf_counter(); r = s.query(sql, "CSV"); ts.append(time.perf_counter() - t)
    out[name] = [min(ts), statistics.median(ts), len(str(r).splitlines())]
print(json.dumps(out))
"""
# Cold baselines: a fresh process opens the store and answers one query; prints seconds from
# opening the store to the fetched result (the interpreter's start and the import are not
# counted, which favours the baseline), and rows.
DUCK_COLD = """
import duckdb, sys, time
sql = sys.stdin.read(); t = time.perf_counter()
con = duckdb.connect(sys.argv[1], read_only=True); rows = con.execute(sql).fetchall()
print(time.perf_counter() - t, len(rows))
"""
CHDB_COLD = CHDB_VIEWS + """
import sys, time
from chdb import session
sql = sys.stdin.read(); t = time.perf_counter()
s = session.Session(); views(s, sys.argv[1]); r = s.query(sql, "CSV")
print(time.perf_counter() - t, len(str(r).splitlines()))
"""


def have_chdb():
    return subprocess.run([sys.executable, "-c", "import chdb"], capture_output=True).returncode == 0


def serve_tunnelwatch(work, data):
    """A `tunnelwatch serve` over `data` whose one source (a file glob) matches nothing; returns
    (process, port)."""
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    cfg = os.path.join(work, "serve-query.toml")
    with open(cfg, "w") as f:
        f.write(f'data = "{data}"\nlisten = "127.0.0.1:{port}"\n\n[sources.none]\ntype = "file"\n'
                f'include = ["{work}/serve-inbox/*.log"]\n')
    p = subprocess.Popen([BIN, "serve", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return p, port
        except Exception:
            if p.poll() is not None:
                raise SystemExit("tunnelwatch serve exited early")
            time.sleep(0.1)
    p.kill()
    raise SystemExit("tunnelwatch serve did not answer /healthz")


def query_bench(work, n, rounds=5):
    """The saved and ad-hoc queries over `n` records, cold (a fresh process per query) and warm
    (a long-running server / connection), tunnelwatch vs DuckDB vs chDB over the same rows."""
    import http.client, statistics
    src = os.path.join(work, "q-vpn-0123456789abcdef0-203.0.113.12.ndjson")
    if not os.path.exists(src) or sum(1 for _ in open(src)) != n:
        generate(src, n, seed=11)
    tw_dir = os.path.join(work, "tw-query")
    if not os.path.exists(os.path.join(tw_dir, "sources.json")):
        shutil.rmtree(tw_dir, ignore_errors=True)
        measured([BIN, "ingest", "--no-metrics", "--data", tw_dir, src])
    duck_db = os.path.join(work, "duck-query.db")
    if not os.path.exists(duck_db):
        measured([sys.executable, "-c", DUCK_FROM_PARQUET, duck_db, tw_dir])
    chdb = have_chdb()
    queries = [(name, saved_sql(name)) for name in QUERIES] + ADHOC
    results = {name: {"query": name} for name, _ in queries}

    # Cold: alternate the tools, `rounds` times per query; each a new process.
    for name, sql in queries:
        r = results[name]
        tw, dk, ch = [], [], []
        for _ in range(rounds):
            t = time.perf_counter()
            p = subprocess.run([BIN, "query", "--data", tw_dir, "--output", "csv", sql],
                               capture_output=True, text=True, check=True)
            tw.append(time.perf_counter() - t)
            r["rows_tunnelwatch"] = len(p.stdout.splitlines()) - 1
            d = subprocess.run([sys.executable, "-c", DUCK_COLD, duck_db], input=sql, capture_output=True,
                               text=True, check=True).stdout.split()
            dk.append(float(d[0]))
            r["rows_duckdb"] = int(d[1])
            if chdb:
                c = subprocess.run([sys.executable, "-c", CHDB_COLD, tw_dir], input=sql, capture_output=True,
                                   text=True, check=True).stdout.split()
                ch.append(float(c[0]))
                r["rows_chdb"] = int(c[1])
        r["cold_tunnelwatch_s"] = statistics.median(tw)
        r["cold_duckdb_s"] = statistics.median(dk)
        r["cold_ratio"] = r["cold_tunnelwatch_s"] / r["cold_duckdb_s"]
        if chdb:
            r["cold_chdb_s"] = statistics.median(ch)

    # Warm: tunnelwatch serve over HTTP (keep-alive), DuckDB's and chDB's own warm sessions.
    proc, port = serve_tunnelwatch(work, tw_dir)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for name, sql in queries:
            ts = []
            for _ in range(rounds + 1):
                t = time.perf_counter()
                conn.request("POST", "/api/v1/query?format=csv", body=sql.encode(),
                             headers={"Content-Type": "text/plain"})
                resp = conn.getresponse()
                body = resp.read()
                ts.append(time.perf_counter() - t)
                if resp.status != 200:
                    raise SystemExit(f"{name}: HTTP {resp.status}: {body[:300]!r}")
            ts = ts[1:]  # the first request warms the server's caches
            results[name]["warm_tunnelwatch_s"] = statistics.median(ts)
            results[name]["warm_tunnelwatch_best_s"] = min(ts)
    finally:
        proc.terminate()
        proc.wait()
    payload = json.dumps(queries)
    duck = json.loads(subprocess.run([sys.executable, "-c", DUCK_WARM, duck_db, str(rounds + 1)], input=payload,
                                     capture_output=True, text=True, check=True).stdout)
    ch = json.loads(subprocess.run([sys.executable, "-c", CHDB_WARM, tw_dir, str(rounds + 1)], input=payload,
                                   capture_output=True, text=True, check=True).stdout) if chdb else {}
    for name, _ in queries:
        r = results[name]
        r["warm_duckdb_s"] = duck[name][1]
        r["warm_ratio"] = r["warm_tunnelwatch_s"] / r["warm_duckdb_s"]
        if name in ch:
            r["warm_chdb_s"] = ch[name][1]
            r["rows_chdb_warm"] = ch[name][2]
        if r["rows_tunnelwatch"] != r["rows_duckdb"]:
            raise SystemExit(f"{name}: tunnelwatch {r['rows_tunnelwatch']} rows, DuckDB {r['rows_duckdb']}")
    return [results[name] for name, _ in queries]


def saved_sql(name):
    text = open(os.path.join(ROOT, "queries", "src", "saved.rs")).read()
    i = text.index(f'name: "{name}"')
    j = text.index('sql: "', i) + len('sql: "')
    k = text.index('",\n    },', j)
    return text[j:k].replace('\\"', '"')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingest-records", type=int, default=2_000_000)
    ap.add_argument("--query-records", type=int, default=10_000_000)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-store"))
    ap.add_argument("--skip-queries", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true", help="only the queries")
    ap.add_argument("--rounds", type=int, default=5, help="runs per query and way (median counts)")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    os.makedirs(args.work, exist_ok=True)
    out = {}
    if not args.skip_ingest:
        out["ingest"] = ingest_bench(args.work, args.ingest_records)
        print(json.dumps(out["ingest"], indent=2))
        src = os.path.join(args.work, "vpn-0123456789abcdef0-203.0.113.12.ndjson")
        out["ingest_gzip"] = gzip_bench(args.work, src)
        print(json.dumps(out["ingest_gzip"], indent=2))
        out["ingest_text"] = text_bench(args.work, src)
        print(json.dumps(out["ingest_text"], indent=2))
    if not args.skip_queries:
        out["queries"] = query_bench(args.work, args.query_records, args.rounds)
        for q in out["queries"]:
            print(json.dumps(q))
        for way in ["cold", "warm"]:
            tw = sum(q[f"{way}_tunnelwatch_s"] for q in out["queries"])
            dk = sum(q[f"{way}_duckdb_s"] for q in out["queries"])
            print(json.dumps({f"{way}_sum_tunnelwatch_s": tw, f"{way}_sum_duckdb_s": dk, f"{way}_sum_ratio": tw / dk}))
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

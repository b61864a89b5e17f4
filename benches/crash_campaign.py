#!/usr/bin/env python3
"""Crash campaign: `tunnelwatch serve` with every push and tail source under load, SIGKILLed at
random points and restarted, counting what was acknowledged against what is stored.

    cargo build --locked            # the debug binary is enough: the point is crash points
    python3 benches/crash_campaign.py [--kills 200] [--seed 1] [--binary target/debug/tunnelwatch]

One data directory for the whole campaign; each round starts `serve` (config below), drives
four sources at once from threads for a random 0.1–1.5 s, then SIGKILLs the process:

- file (`type = "file"`, tailing one log): the writer appends lines with unique ids; a file can
  be read again, so every line written must end up stored exactly once (exactly-once);
- http push: batches of 20 unique records POSTed to `/ingest`; a 200 is an acknowledgement.
  Every acknowledged record must be stored (zero lost); a batch whose answer the kill cut off
  may be stored or not, and is not sent again (so a duplicate would be a bug, counted);
- firehose: requests of 10 records with a unique requestId; a request without a 200 is sent
  again with the same requestId in the next round (as Firehose retries). Every record of an
  acknowledged request must be stored exactly once (the requestId ledger), also when the kill
  fell between the store and the 200;
- syslog TCP: lines with unique ids; syslog has no acknowledgement, so what the kill caught in
  socket buffers is lost by design: reported as a figure, not checked.

After the last kill a final `serve` runs until the file source has caught up, then every count
is read over `/api/query` and checked. Exit status 1 if any check fails. The figures go into
RELIABILITY.md.
"""

import argparse
import base64
import gzip
import json
import os
import random
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from serve_process import T0, activity, start

TOKEN = "crash-campaign-token-0123"
KEY = "crash-campaign-firehose-key"




def post(addr, path, body, headers, timeout=5):
    req = urllib.request.Request(f"http://{addr}{path}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError):
        return None, b""


def query(http, sql):
    status, body = post(http, "/api/query?format=csv", sql.encode(), {}, timeout=60)
    if status != 200:
        raise SystemExit(f"query failed ({status}): {body[:300]!r}")
    return [line.split(",") for line in body.decode().strip().splitlines()[1:]]


def firehose_body(request_id, ids):
    events = [{"id": str(i), "timestamp": (T0 + i % 3000) * 1000, "message": activity("fh", i)}
              for i in ids]
    payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012",
               "logGroup": "/aws/vpn", "logStream": "vpn-0c0c0c0c-3.3.3.3",
               "subscriptionFilters": ["tw"], "logEvents": events}
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return json.dumps({"requestId": request_id, "timestamp": int(time.time() * 1000),
                       "records": [{"data": data}]}).encode()


class Load:
    """What each source was sent and what was acknowledged, across rounds."""

    def __init__(self, log):
        self.log = log
        self.file_next = 0
        self.http_next = 0
        self.http_acked = set()
        self.http_sent = set()
        self.fh_next = 0
        self.fh_pending = []  # (request_id, ids) not yet answered 200
        self.fh_acked = set()
        self.fh_requests = 0
        self.fh_retries = 0
        self.fh_answers = {}
        self.syslog_next = 0
        self.lock = threading.Lock()

    def run(self, http, sources, stop):
        threads = [threading.Thread(target=f, args=(sources, stop), daemon=True)
                   for f in (self.file_writer, self.http_pusher, self.firehose, self.syslog)]
        for t in threads:
            t.start()
        return threads

    def file_writer(self, _sources, stop):
        with open(self.log, "a") as f:
            while not stop.is_set():
                for _ in range(20):
                    f.write(activity("file", self.file_next) + "\n")
                    self.file_next += 1
                f.flush()
                time.sleep(0.005)

    def http_pusher(self, sources, stop):
        while not stop.is_set():
            ids = range(self.http_next, self.http_next + 20)
            self.http_next += 20
            body = "".join(activity("http", i) + "\n" for i in ids).encode()
            self.http_sent.update(ids)
            status, _ = post(sources["push"], "/ingest?stream=vpn-0b0b0b0b-2.2.2.2", body,
                             {"Authorization": f"Bearer {TOKEN}"})
            if status == 200:
                self.http_acked.update(ids)

    def firehose(self, sources, stop):
        while not stop.is_set():
            if self.fh_pending:
                request_id, ids = self.fh_pending[0]
                self.fh_retries += 1
            else:
                ids = list(range(self.fh_next, self.fh_next + 10))
                self.fh_next += 10
                request_id = f"req-{self.fh_requests:08d}"
                self.fh_requests += 1
                self.fh_pending.append((request_id, ids))
            status, _ = post(sources["aws"], "/", firehose_body(request_id, ids),
                             {"X-Amz-Firehose-Request-Id": request_id,
                              "X-Amz-Firehose-Access-Key": KEY,
                              "Content-Type": "application/json"})
            self.fh_answers[str(status)] = self.fh_answers.get(str(status), 0) + 1
            if status == 200:
                self.fh_pending.pop(0)
                self.fh_acked.update(ids)
            elif status is None:
                return  # killed: retried next round

    def syslog(self, sources, stop):
        try:
            host, port = sources["gw_tcp"].rsplit(":", 1)
            s = socket.create_connection((host, int(port)), timeout=2)
            while not stop.is_set():
                lines = "".join(
                    f"<134>1 2026-12-01T00:00:00Z gw vpn-0d0d0d0d-4.4.4.4 - - - "
                    f"{activity('syslog', self.syslog_next + k)}\n" for k in range(20))
                s.sendall(lines.encode())
                self.syslog_next += 20
                time.sleep(0.005)
        except OSError:
            return


def stored_ids(http, kind):
    rows = query(http, "SELECT details FROM tunnel_activity "
                       f"WHERE details LIKE '%(id={kind}-%'")
    ids = {}
    for (details,) in rows:
        m = re.search(rf"id={kind}-(\d+)\)", details)
        i = int(m.group(1))
        ids[i] = ids.get(i, 0) + 1
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--binary", default="target/debug/tunnelwatch")
    ap.add_argument("--work")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = args.work or tempfile.mkdtemp(prefix="tw-crash-")
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    log = os.path.join(logs, "vpn-0a0a0a0a-1.1.1.1.log")
    config = os.path.join(work, "tunnelwatch.toml")
    with open(config, "w") as f:
        f.write(f'''data = "{work}/data"

[sources.files]
type = "file"
include = ["{logs}/*.log"]
glob_interval = "100ms"
poll_interval = "50ms"

[sources.push]
type = "http"
address = "127.0.0.1:0"
token = "{TOKEN}"
ack_timeout = "5s"

[sources.aws]
type = "firehose"
address = "127.0.0.1:0"
access_key = "{KEY}"
ack_timeout = "5s"

[sources.gw_tcp]
type = "syslog"
address = "127.0.0.1:0"
''')
    load = Load(log)
    started = time.time()
    for k in range(args.kills):
        p, http, sources = start(args.binary, config)
        stop = threading.Event()
        threads = load.run(http, sources, stop)
        time.sleep(rng.uniform(0.1, 1.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        stop.set()
        for t in threads:
            t.join(timeout=10)
        if (k + 1) % 20 == 0:
            print(f"{k + 1} kills, {time.time() - started:.0f} s", file=sys.stderr)
    # The last run: no kill; wait until the file source has read everything.
    p, http, sources = start(args.binary, config)
    while load.fh_pending:
        request_id, ids = load.fh_pending[0]
        status, _ = post(sources["aws"], "/", firehose_body(request_id, ids),
                         {"X-Amz-Firehose-Request-Id": request_id,
                          "X-Amz-Firehose-Access-Key": KEY, "Content-Type": "application/json"})
        load.fh_retries += 1
        if status == 200:
            load.fh_pending.pop(0)
            load.fh_acked.update(ids)
    deadline = time.time() + 120
    while True:
        n = int(query(http, "SELECT count(*) FROM tunnel_activity WHERE details LIKE '%(id=file-%'")[0][0])
        if n >= load.file_next or time.time() > deadline:
            break
        time.sleep(0.5)
    file_ids = stored_ids(http, "file")
    http_ids = stored_ids(http, "http")
    fh_ids = stored_ids(http, "fh")
    sys_ids = stored_ids(http, "syslog")
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)

    failures = []
    def check(ok, what):
        if not ok:
            failures.append(what)
    file_lost = load.file_next - len(file_ids)
    file_dup = sum(c - 1 for c in file_ids.values())
    check(file_lost == 0 and file_dup == 0, f"file: {file_lost} lost, {file_dup} duplicated")
    http_lost = len(load.http_acked - set(http_ids))
    http_dup = sum(c - 1 for c in http_ids.values())
    unacked_stored = len(set(http_ids) - load.http_acked)
    check(http_lost == 0, f"http: {http_lost} acknowledged records lost")
    check(http_dup == 0, f"http: {http_dup} duplicated")
    fh_lost = len(load.fh_acked - set(fh_ids))
    fh_dup = sum(c - 1 for c in fh_ids.values())
    check(fh_lost == 0 and fh_dup == 0, f"firehose: {fh_lost} lost, {fh_dup} duplicated")
    sys_dup = sum(c - 1 for c in sys_ids.values())
    check(sys_dup == 0, f"syslog: {sys_dup} duplicated")
    print(json.dumps({
        "kills": args.kills, "seed": args.seed, "seconds": round(time.time() - started),
        "file": {"written": load.file_next, "stored": len(file_ids), "lost": file_lost,
                 "duplicated": file_dup},
        "http": {"sent": len(load.http_sent), "acknowledged": len(load.http_acked),
                 "stored": len(http_ids), "acknowledged_lost": http_lost,
                 "unacknowledged_but_stored": unacked_stored, "duplicated": http_dup},
        "firehose": {"requests": load.fh_requests, "retries": load.fh_retries,
                     "records_acknowledged": len(load.fh_acked), "stored": len(fh_ids),
                     "lost": fh_lost, "duplicated": fh_dup, "answers": load.fh_answers},
        "syslog_tcp": {"sent": load.syslog_next, "stored": len(sys_ids),
                       "lost_in_flight": load.syslog_next - len(sys_ids), "duplicated": sys_dup},
        "failures": failures,
    }, indent=2))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""What the serve benchmarks share (benches/crash_campaign.py, benches/flood.py): records with a
unique id in `details`, and starting `tunnelwatch serve` and reading the addresses its guide
prints."""

import json
import subprocess
import threading
import time

T0 = int(time.time()) - 3600


def activity(kind, i):
    """A tunnel activity record (JSON) whose details say `id=<kind>-<i>`."""
    return json.dumps({
        "event_timestamp": T0 + i % 3000,
        "ike_phase1_state": "established",
        "ike_phase2_state": "established",
        "details": f"AWS tunnel processed request (id={kind}-{i}) for CREATE_CHILD_SA",
    })


def start(binary, config):
    """Starts `serve`; returns (process, API address, {source name: bound address})."""
    p = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--config", config],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    http, sources, in_sources = None, {}, False
    for line in p.stdout:
        t = line.strip()
        if t.startswith("Status page"):
            http = t.split()[-1].split("://")[-1].rstrip("/")
        elif t == "Sources":
            in_sources = True
        elif in_sources and not t:
            break
        elif in_sources:
            parts = t.split()
            if len(parts) >= 3:
                sources[parts[0]] = parts[2].split("://")[-1].rstrip("/")
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    if http is None:
        raise SystemExit("serve did not start")
    return p, http, sources

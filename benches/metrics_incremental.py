#!/usr/bin/env python3
"""What the metrics step adds to `tunnelwatch ingest`: a fresh load, and a small append to a
large store (issue 14, item 3).

    cargo build --release
    python3 benches/metrics_incremental.py [--connections 200] [--days 3] [--append-minutes 60] [--runs 3] [--bin PATH]

Simulates `--connections` connections for `--days` days (all record kinds, the minute traffic
samples included) and cuts every file at `--append-minutes` before the end. Then, each as its
own process:

- **fresh**: `ingest --no-metrics` of the large part (the load, the baseline), then
  `metrics rebuild` of that store (what a fresh `ingest` adds: it has no checkpoint yet);
- **append**: into a copy of that store, `ingest` of the small part with metrics (incremental
  from the checkpoint the rebuild left), against `ingest --no-metrics` of the same part into
  another copy (the baseline); the metrics step is the difference, checked against the
  `metrics:` line's own figure;
- **full after append**: `metrics rebuild` of the appended store (what every ingest cost before
  the checkpoint), for the ratio of the two.

Reports medians over `--runs` and writes `target/bench-metrics/results.json`.
"""
import argparse, json, os, re, shutil, statistics

from store_vs_duckdb import measured  # one process, its wall time and peak RSS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    """(seconds, stdout) of `cmd` as its own process."""
    dt, _, out, _ = measured(cmd)
    return dt, out


def cut(logs, big, small, cut_ms):
    """Writes each log file's records before `cut_ms` to `big`, the rest to `small`."""
    for d in (big, small):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for name in os.listdir(logs):
        if not name.endswith(".log"):
            continue
        with open(os.path.join(logs, name)) as f, open(os.path.join(big, name), "w") as b, \
                open(os.path.join(small, name), "w") as s:
            for line in f:
                m = re.search(r'"event_timestamp":(\d+)', line)
                t = int(m.group(1))
                t = t * 1000 if t < 100_000_000_000 else t
                (b if t < cut_ms else s).write(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--append-minutes", type=int, default=60)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tunnelwatch"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-metrics"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    logs, big, small = (os.path.join(a.work, d) for d in ("logs", "big", "small"))
    tag = f"{a.connections}-{a.days}-{a.append_minutes}"
    tag_file = os.path.join(a.work, "tag")
    if not (os.path.exists(tag_file) and open(tag_file).read() == tag):
        shutil.rmtree(logs, ignore_errors=True)
        run([a.bin, "simulate", "--out", logs, "--connections", str(a.connections),
             "--duration", f"{a.days}d", "--seed", "3"])
        end_ms = json.load(open(os.path.join(logs, "truth.json")))["end_ms"]
        cut(logs, big, small, end_ms - a.append_minutes * 60_000)
        open(tag_file, "w").write(tag)

    def store(name):
        d = os.path.join(a.work, name)
        shutil.rmtree(d, ignore_errors=True)
        return d

    load, rebuild, append_base, append_with, append_line_s, full_after = [], [], [], [], [], []
    lines = []
    for _ in range(a.runs):
        base = store("base")
        load.append(run([a.bin, "ingest", "--data", base, "--no-metrics", big])[0])
        rebuild.append(run([a.bin, "metrics", "rebuild", "--data", base])[0])
        plain, incr = store("plain"), store("incr")
        shutil.copytree(base, plain)
        shutil.copytree(base, incr)
        append_base.append(run([a.bin, "ingest", "--data", plain, "--no-metrics", small])[0])
        dt, out = run([a.bin, "ingest", "--data", incr, small])
        append_with.append(dt)
        line = next(l for l in out.splitlines() if l.startswith("metrics:"))
        lines.append(line)
        if "(incremental:" not in line:
            raise SystemExit(f"the append was not incremental: {line}")
        append_line_s.append(float(re.search(r" in ([0-9.]+) s", line).group(1)))
        full_after.append(run([a.bin, "metrics", "rebuild", "--data", incr])[0])

    med = statistics.median
    res = {
        "connections": a.connections, "days": a.days, "append_minutes": a.append_minutes, "runs": a.runs,
        "fresh_load_s": med(load), "fresh_metrics_s": med(rebuild),
        "fresh_metrics_share": med(rebuild) / med(load),
        "append_load_s": med(append_base), "append_with_metrics_s": med(append_with),
        "append_metrics_s": med(append_line_s),
        "append_metrics_share": med(append_line_s) / med(append_base),
        "append_metrics_share_by_difference": (med(append_with) - med(append_base)) / med(append_base),
        "full_rebuild_after_append_s": med(full_after),
        "incremental_vs_full": med(append_line_s) / med(full_after),
        "metrics_line": lines[-1],
        "raw": {"load": load, "rebuild": rebuild, "append_base": append_base, "append_with": append_with,
                "append_line_s": append_line_s, "full_after": full_after},
    }
    json.dump(res, open(os.path.join(a.work, "results.json"), "w"), indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

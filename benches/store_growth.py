#!/usr/bin/env python3
"""Growth: load time and peak memory against input size, and query time against store size.

    cargo build --release && pip install duckdb matplotlib
    python3 benches/store_growth.py [--sizes 500000,2000000,8000000,32000000] [--work DIR]

One deterministic NDJSON file of the largest size, made by the store benchmark's generator
(`store_vs_duckdb.generate`); every smaller size is its first lines, so each input is a prefix
of the next. For each size, in one run: the floor (`wc -l` of the input), `tunnelwatch ingest
--no-metrics` into a new store (wall time, peak RSS), DuckDB's `read_json` load of the same
file (the baseline of the store benchmark), and the saved queries, each a fresh `tunnelwatch
query` process (median of `--rounds`). Writes `<work>/growth.json` and `<work>/growth.png`:
seconds per million records and peak RSS against the input size, and query time against the
store size. Memory should stay flat and time linear: a per-million figure that grows, or an RSS
that follows the input, is a defect.
"""
import argparse, importlib.util, json, os, shutil, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("store_vs_duckdb", os.path.join(HERE, "store_vs_duckdb.py"))
svd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svd)
BIN = svd.BIN
NAME = "g-vpn-0123456789abcdef0-203.0.113.12.ndjson"


def prefix(src, dst, n, whole):
    """The first n lines of src as dst (a hard link when that is the whole file)."""
    if os.path.exists(dst):
        os.remove(dst)
    if whole:
        os.link(src, dst)
        return
    with open(src, "rb") as f, open(dst + ".part", "wb") as out:
        for i, line in enumerate(f):
            if i == n:
                break
            out.write(line)
    os.replace(dst + ".part", dst)


def one_size(work, src_all, n, whole, rounds):
    d = os.path.join(work, str(n))
    os.makedirs(d, exist_ok=True)
    # The file's name carries the tunnel's identity, like the store benchmark's.
    src = os.path.join(d, NAME)
    prefix(src_all, src, n, whole)
    # Written just now: let the kernel write it out first, or its writeback competes with the
    # store's fsyncs and the small sizes look slow.
    os.sync()
    floor = min(svd.measured(["wc", "-l", src])[0] for _ in range(2))
    store = os.path.join(d, "tw")
    shutil.rmtree(store, ignore_errors=True)
    tw_s, tw_rss, _, _ = svd.measured([BIN, "ingest", "--no-metrics", "--data", store, src])
    duck_db = os.path.join(d, "duck.db")
    if os.path.exists(duck_db):
        os.remove(duck_db)
    dk_s, dk_rss, _, _ = svd.measured([sys.executable, "-c", svd.DUCK_LOAD, duck_db, src])
    os.remove(duck_db)
    queries = {}
    for name in svd.QUERIES:
        ts = []
        for _ in range(rounds):
            t = time.perf_counter()
            subprocess.run([BIN, "query", "--data", store, "--output", "csv", "--saved", name],
                           capture_output=True, check=True)
            ts.append(time.perf_counter() - t)
        queries[name] = statistics.median(ts)
    r = {"records": n, "input_mb": os.path.getsize(src) / 1e6, "store_mb": svd.du(store) / 1e6,
         "floor_s": floor, "tunnelwatch_s": tw_s, "tunnelwatch_rss_mb": tw_rss,
         "tunnelwatch_s_per_m": tw_s / (n / 1e6), "duckdb_s": dk_s, "duckdb_rss_mb": dk_rss,
         "ratio": tw_s / dk_s, "queries_s": queries, "queries_sum_s": sum(queries.values())}
    os.remove(src)  # the large prefixes are big; the whole file stays
    return r


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = [r["records"] / 1e6 for r in results]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    ax[0].plot(m, [r["tunnelwatch_s_per_m"] for r in results], "o-", label="tunnelwatch ingest")
    ax[0].plot(m, [r["duckdb_s"] / (r["records"] / 1e6) for r in results], "s--", label="DuckDB read_json")
    ax[0].set(xscale="log", xlabel="records (millions)", ylabel="seconds per million records",
              title="Load time per record", ylim=(0, None))
    ax[1].plot(m, [r["tunnelwatch_rss_mb"] for r in results], "o-", label="tunnelwatch ingest")
    ax[1].plot(m, [r["duckdb_rss_mb"] for r in results], "s--", label="DuckDB read_json")
    ax[1].set(xscale="log", xlabel="records (millions)", ylabel="peak RSS (MB)", title="Peak memory",
              ylim=(0, None))
    for name in results[0]["queries_s"]:
        ax[2].plot([r["store_mb"] for r in results], [r["queries_s"][name] for r in results], "o-", label=name)
    ax[2].set(xscale="log", yscale="log", xlabel="store size (MB of Parquet)",
              ylabel="seconds (fresh process)", title="Saved queries against store size")
    for a in ax:
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="500000,2000000,8000000,32000000")
    ap.add_argument("--work", default=os.path.join(os.path.dirname(HERE), "target", "bench-growth"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    os.makedirs(args.work, exist_ok=True)
    src_all = os.path.join(args.work, NAME)
    have = 0
    if os.path.exists(src_all):
        with open(src_all, "rb") as f:
            have = sum(1 for _ in f)
    if have < sizes[-1]:
        svd.generate(src_all, sizes[-1], seed=5)
        have = sizes[-1]
    results = []
    for n in sizes:
        r = one_size(args.work, src_all, n, n == have, args.rounds)
        print(json.dumps(r), flush=True)
        results.append(r)
    with open(os.path.join(args.work, "growth.json"), "w") as f:
        json.dump(results, f, indent=2)
    plot(results, os.path.join(args.work, "growth.png"))
    print("wrote", os.path.join(args.work, "growth.json"), "and growth.png")


if __name__ == "__main__":
    main()

"""Vector index speed, recall and memory: LoopMind's VectorIndex against numpy brute force.

Data: seeded random-but-clustered unit vectors (``clustered``): n // 200 cluster centres drawn
from N(0, I), each vector a centre plus N(0, 0.6^2 I) noise, L2-normalized. Queries are 1,000
fresh draws from the same distribution (not members of the index).

For each dimension and size:
  - peer: exact brute force in numpy (one matrix-vector product + argpartition per query) over
    a normalized float32 copy; its answers are the ground truth for recall@10;
  - ours, flat (IndexFlatIP) and HNSW (M=32, efConstruction=80, efSearch=HNSW_EF_SEARCH):
    build time, single-query search p50/p99 (k=10), recall@10, RSS growth after building,
    file size, save and load time;
  - the same with an ``allowed`` filter of 1% and 30% of the ids (the peer picks the faster
    of gathering the allowed rows or masking a full product);
  - at the largest size, recall/latency for several efSearch values and the exact-vs-selector
    crossover that sets EXACT_SUBSET_MAX.

    python benchmarks/bench_index.py [--sizes 100000 1000000] [--dims 128 192] [--threads 2]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result  # noqa: E402

K = 10
ID_OFFSET = 1_000_000  # ids are not positions


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def clustered(n: int, dim: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(50, n // 200), dim), dtype=np.float32)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), dtype=np.float32)
        for i in range(0, m, 100_000):
            j = min(m, i + 100_000)
            out[i:j] = centres[rng.integers(0, len(centres), j - i)]
            out[i:j] += 0.6 * rng.standard_normal((j - i, dim), dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    return draw(n), draw(n_queries)


def pct(times_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(times_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def numpy_top(xn: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    s = xn @ q
    top = np.argpartition(-s, k - 1)[:k]
    return top[np.argsort(-s[top])]


def recall(got: list[list[int]], truth: list[np.ndarray]) -> float:
    return float(np.mean([len(set(g) & set(t.tolist())) / len(t) for g, t in zip(got, truth)]))


def time_ours(index, queries, **kw) -> tuple[list[float], list[list[int]]]:
    times, got = [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = index.search(q, K, **kw)
        times.append(time.perf_counter() - t0)
        got.append([i - ID_OFFSET for i, _ in hits])
    return times, got


def peer_filtered(xn, queries, positions, mask) -> tuple[list[float], list[np.ndarray], str]:
    """numpy over an allowed subset: gather its rows, or mask a full product; the faster."""
    def gather(q):
        s = xn[positions] @ q
        top = np.argpartition(-s, K - 1)[:K]
        return positions[top[np.argsort(-s[top])]]

    def masked(q):
        s = xn @ q
        s[~mask] = -np.inf
        top = np.argpartition(-s, K - 1)[:K]
        return top[np.argsort(-s[top])]

    trial = {}
    for name, fn in (("gather", gather), ("mask", masked)):
        t0 = time.perf_counter()
        for q in queries[:50]:
            fn(q)
        trial[name] = time.perf_counter() - t0
    name = min(trial, key=trial.get)
    fn = gather if name == "gather" else masked
    times, truth = [], []
    for q in queries:
        t0 = time.perf_counter()
        truth.append(fn(q))
        times.append(time.perf_counter() - t0)
    return times, truth, name


def numpy_blas_limit(threads: int | None):
    """A context limiting numpy's own OpenBLAS (not FAISS's) to ``threads``; None: no limit."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # pragma: no cover - the bench extra brings it
        return contextlib.nullcontext()
    prefixes = {i["prefix"]: threads for i in threadpool_info()
                if i.get("user_api") == "blas" and "numpy" in i["filepath"]}
    return threadpool_limits(limits=prefixes)


def bench_size(n: int, dim: int, n_queries: int, seed: int, sweep: bool) -> dict:
    from loopmind.index import vectors as vx
    from loopmind.index.vectors import VectorIndex

    log(f"dim {dim}, n {n:,}: data")
    x, queries = clustered(n, dim, n_queries, seed)
    ids = np.arange(n, dtype=np.int64) + ID_OFFSET
    out: dict = {"n": n, "dim": dim, "rows": [], "filters": [], "sweep": [], "cross": [],
                 "load": [os.getloadavg()[0]]}

    # ---- peer: numpy brute force over a normalized copy (it is the ground truth too)
    r0 = rss_mb()
    t0 = time.perf_counter()
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    build_np = time.perf_counter() - t0
    rss_np = rss_mb() - r0
    times = []
    for q in queries[:200]:
        t0 = time.perf_counter()
        numpy_top(xn, q, K)
        times.append(time.perf_counter() - t0)
    d50, d99 = pct(times)
    times, truth = [], []
    with numpy_blas_limit(1):
        for q in queries:
            t0 = time.perf_counter()
            truth.append(numpy_top(xn, q, K))
            times.append(time.perf_counter() - t0)
    np50, np99 = pct(times)
    out["rows"].append(dict(name="numpy brute force, 1 BLAS thread (peer)", build=build_np,
                            p50=np50, p99=np99, recall=1.0, rss=rss_np, file=None, save=None,
                            load=None))
    out["rows"].append(dict(name="numpy brute force, default BLAS threads (200 queries)",
                            build=build_np, p50=d50, p99=d99, recall=1.0, rss=rss_np,
                            file=None, save=None, load=None))
    log(f"  numpy p50 {np50:.2f} ms (default threads {d50:.2f} ms)")

    rng = np.random.default_rng(seed + 1)
    filters = {}
    for frac in (0.01, 0.30):
        pos = np.sort(rng.choice(n, int(n * frac), replace=False))
        mask = np.zeros(n, dtype=bool)
        mask[pos] = True
        with numpy_blas_limit(1):
            t, tr, how = peer_filtered(xn, queries, pos, mask)
        filters[frac] = (pos, tr, pct(t), how)
        log(f"  numpy {frac:.0%} filter ({how}) p50 {pct(t)[0]:.2f} ms")
    del xn
    gc.collect()

    for kind in ("flat", "hnsw"):
        gc.collect()
        r0 = rss_mb()
        t0 = time.perf_counter()
        index = VectorIndex.build(ids, x, embedder="bench", version="1", kind=kind)
        build = time.perf_counter() - t0
        gc.collect()
        rss = rss_mb() - r0
        log(f"  {kind}: built in {build:.1f} s")
        index.search(queries[0], K)  # warm up
        times, got = time_ours(index, queries)
        p50, p99 = pct(times)
        rec = recall(got, truth)
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            path = Path(tmp) / "vectors.faiss"
            t0 = time.perf_counter()
            index.save(path)
            save_s = time.perf_counter() - t0
            size_mb = path.stat().st_size / 2**20
            t0 = time.perf_counter()
            loaded = VectorIndex.load(path)
            load_s = time.perf_counter() - t0
            assert len(loaded) == n
            del loaded
        label = "ours, flat (IndexFlatIP)" if kind == "flat" else \
            f"ours, HNSW (M={vx.HNSW_M}, efC={vx.HNSW_EF_CONSTRUCTION}, efS={vx.HNSW_EF_SEARCH})"
        out["rows"].append(dict(name=label, build=build, p50=p50, p99=p99, recall=rec, rss=rss,
                                file=size_mb, save=save_s, load=load_s))
        log(f"  {kind}: p50 {p50:.3f} p99 {p99:.3f} ms recall {rec:.4f} rss {rss:.0f} MB")

        for frac, (pos, tr, (peer50, peer99), how) in filters.items():
            allowed = pos + ID_OFFSET
            path_name = "exact over subset" if kind == "flat" or \
                pos.size <= vx.EXACT_SUBSET_MAX else "HNSW + IDSelectorBitmap"
            times, got = time_ours(index, queries, allowed=allowed)
            p50f, p99f = pct(times)
            out["filters"].append(dict(kind=kind, frac=frac, path=path_name, p50=p50f, p99=p99f,
                                       recall=recall(got, tr), peer50=peer50, peer99=peer99,
                                       peer_how=how))
            log(f"  {kind} {frac:.0%}: p50 {p50f:.3f} ms recall {recall(got, tr):.4f}")

        if kind == "hnsw" and sweep:
            default_ef = vx.HNSW_EF_SEARCH
            for ef in (16, 32, 48, 64, 96, 128):
                vx.HNSW_EF_SEARCH = ef
                times, got = time_ours(index, queries)
                p50s, p99s = pct(times)
                out["sweep"].append(dict(ef=ef, p50=p50s, p99=p99s, recall=recall(got, truth)))
            vx.HNSW_EF_SEARCH = default_ef
            # exact-over-subset vs selector, by allowed fraction (200 queries each)
            default_max = vx.EXACT_SUBSET_MAX
            for frac in (0.005, 0.01, 0.02, 0.05, 0.10):
                pos = np.sort(rng.choice(n, int(n * frac), replace=False))
                row = {"frac": frac, "m": pos.size}
                for how, limit in (("exact", n + 1), ("selector", 0)):
                    vx.EXACT_SUBSET_MAX = limit
                    times, _ = time_ours(index, queries[:200], allowed=pos + ID_OFFSET)
                    row[how] = pct(times)
                out["cross"].append(row)
                log(f"  crossover {frac:.1%}: {row}")
            vx.EXACT_SUBSET_MAX = default_max
        del index
        gc.collect()
    out["load"].append(os.getloadavg()[0])
    return out


NOTES = [
    "## Notes",
    "",
    "- The flat rows at 100,000 and 1,000,000 are forced (`kind=\"flat\"`) for comparison; "
    "LoopMind itself uses flat only below `HNSW_THRESHOLD` (50,000) vectors.",
    "- p99 values near 4.2 and 8.4 ms are the scheduler's 4 ms time slice: with a load "
    "average of 5-9 on 2 cores about 1% of queries were preempted once or twice. The HNSW "
    "p50 is what one query costs.",
    "- With a 1% filter both sides compute exactly over ~10,000 rows (ours in place through "
    "`faiss.knn_inner_products_by_idx`, numpy by gathering them): parity is expected. The "
    "filtered win is at 30%, where HNSW with an `IDSelectorBitmap` (efSearch raised to "
    "64 / 0.3) keeps recall at 0.999.",
    "- Building HNSW at 1M took 8-9 minutes on this loaded machine. The automatic rebuild "
    "when tombstones pass 20% costs about as much for the live vectors, under the index's "
    "lock; crossing 50,000 upward costs a 50,000-vector build (~15 s); going back to flat "
    "below 25,000 is cheap.",
    "- Load time includes a CRC32 pass over the whole file before FAISS parses it.",
    "",
]


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def render(results: list[dict], args, wall_s: float) -> str:
    import faiss

    from loopmind.index import vectors as vx

    lines = [
        "# Vector index: speed, recall and memory",
        "",
        f"Machine and date: {machine()}. Shared and noisy (other jobs ran at the same time): "
        "read p99 as an upper bound. Script: `benchmarks/bench_index.py` "
        f"(wall time {wall_s / 60:.0f} min).",
        "",
        f"faiss-cpu {faiss.__version__}, numpy {np.__version__}; `faiss.omp_set_num_threads"
        f"({args.threads})` (builds use both cores; a single-query search runs on one thread "
        "in FAISS). The numpy peer runs with its OpenBLAS limited to 1 thread (threadpoolctl): "
        "on this shared machine its 2-thread gemv was slower (second numpy row).",
        "",
        "Data: seeded clustered unit vectors (n/200 centres ~ N(0, I), vector = centre + "
        "N(0, 0.6² I), normalized); 1,000 fresh queries from the same distribution; k = 10. "
        "Recall@10 is against exact brute force. Latency is one `VectorIndex.search` call per "
        "query (Python wrapper, lock and id mapping included). RSS Δ is the process's resident "
        "growth after building (the peer's is its normalized float32 copy); file is the saved "
        "`vectors.faiss`.",
        "",
        f"Module constants: HNSW_THRESHOLD = {vx.HNSW_THRESHOLD:,}, M = {vx.HNSW_M}, "
        f"efConstruction = {vx.HNSW_EF_CONSTRUCTION}, efSearch = {vx.HNSW_EF_SEARCH}, "
        f"EXACT_SUBSET_MAX = {vx.EXACT_SUBSET_MAX:,}.",
        "",
    ]
    for r in results:
        lines += [f"## dim {r['dim']}, {r['n']:,} vectors", "",
                  f"1-minute load average at start and end: {r['load'][0]:.1f}, "
                  f"{r['load'][-1]:.1f} (2 cores).", "",
                  "| index | build (s) | p50 (ms) | p99 (ms) | recall@10 | RSS Δ (MB) | "
                  "file (MB) | save (s) | load (s) | p50 speed-up vs numpy |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        peer50 = r["rows"][0]["p50"]
        for row in r["rows"]:
            lines.append(
                f"| {row['name']} | {row['build']:.2f} | {row['p50']:.3f} | {row['p99']:.3f} | "
                f"{row['recall']:.4f} | {row['rss']:.0f} | {fmt(row['file'], '.0f')} | "
                f"{fmt(row['save'], '.2f')} | {fmt(row['load'], '.2f')} | "
                f"{peer50 / row['p50']:.1f}x |")
        lines += ["", "With an `allowed` filter (random ids):", "",
                  "| index | allowed | path taken | p50 (ms) | p99 (ms) | recall@10 | "
                  "numpy p50 / p99 (ms), 1 BLAS thread | p50 speed-up vs numpy |",
                  "|---|---|---|---|---|---|---|---|"]
        for f in r["filters"]:
            lines.append(
                f"| {f['kind']} | {f['frac']:.0%} | {f['path']} | {f['p50']:.3f} | "
                f"{f['p99']:.3f} | {f['recall']:.4f} | {f['peer50']:.2f} / {f['peer99']:.2f} "
                f"({f['peer_how']}) | {f['peer50'] / f['p50']:.1f}x |")
        if r["sweep"]:
            lines += ["", "HNSW efSearch (no filter):", "",
                      "| efSearch | p50 (ms) | p99 (ms) | recall@10 |", "|---|---|---|---|"]
            for s in r["sweep"]:
                lines.append(f"| {s['ef']} | {s['p50']:.3f} | {s['p99']:.3f} | "
                             f"{s['recall']:.4f} |")
        if r["cross"]:
            lines += ["", "HNSW with an `allowed` filter: exact over the subset vs the FAISS "
                      "selector (200 queries, p50 / p99 ms):", "",
                      "| allowed | vectors | exact over subset | selector |", "|---|---|---|---|"]
            for c in r["cross"]:
                lines.append(f"| {c['frac']:.1%} | {c['m']:,} | {c['exact'][0]:.2f} / "
                             f"{c['exact'][1]:.2f} | {c['selector'][0]:.2f} / "
                             f"{c['selector'][1]:.2f} |")
        lines.append("")
    lines += NOTES
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 192])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=440)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "index.md"))
    args = ap.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.threads)
    t0 = time.perf_counter()
    results = []
    for dim in args.dims:
        for n in args.sizes:
            results.append(bench_size(n, dim, args.queries, args.seed,
                                      sweep=(n == max(args.sizes) and dim == args.dims[0])))
            # written after each size, so a long run leaves its finished part behind
            write_result(args.out, render(results, args, time.perf_counter() - t0))


if __name__ == "__main__":
    main()

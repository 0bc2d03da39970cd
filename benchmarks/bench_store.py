"""The store stage alone: CPU of the writer process per file, over the dev set's results.

The pipeline's store runs in the calling process, beside the analysis workers, so its CPU is
taken from the cores the workers use. This analyzes every dev file once (inline, cached in
``--cache``), then stores all results into a fresh temporary library and reports the writer's
CPU per file: the fast path for never-seen files (plain DB-API inserts) and the general ORM
path (``--orm``: the fast path disabled), in the same run.

    python benchmarks/bench_store.py [--cache /tmp/loopmind-store-results.pkl]
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import labels, machine, write_result  # noqa: E402


def results(cache: str) -> list:
    from loopmind.library.pipeline import process_file

    if os.path.exists(cache):
        with open(cache, "rb") as fh:
            return pickle.load(fh)
    paths = sorted({r["abspath"] for r in labels() if r["task"] != "flp"})
    out = [process_file(p, embedder_name="features") for p in paths]
    with open(cache, "wb") as fh:
        pickle.dump(out, fh)
    return out


def store_all(res: list, *, orm: bool) -> tuple[float, float]:
    """(CPU s, wall s) of storing every result but the first (which opens the tables)."""
    from loopmind.config import Settings, set_settings
    from loopmind.library import store
    from loopmind.library.db import Library

    saved = store._insert_new
    if orm:
        store._insert_new = lambda *a, **k: None
    try:
        with tempfile.TemporaryDirectory() as home:
            settings = Settings.from_env({"LOOPMIND_HOME": home})
            set_settings(settings)
            lib = Library(settings)
            store.store_result(lib, res[0])
            c0, t0 = time.process_time(), time.perf_counter()
            for r in res[1:]:
                store.store_result(lib, r)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            lib.close()
    finally:
        store._insert_new = saved
    return cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                    "loopmind-store-results.pkl"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "store.md"))
    args = ap.parse_args()
    res = results(args.cache)
    n = len(res) - 1
    rows = {"fast path (never-seen files)": [], "ORM path": []}
    for _ in range(args.repeats):  # interleaved: the machine is noisy
        rows["fast path (never-seen files)"].append(store_all(res, orm=False))
        rows["ORM path"].append(store_all(res, orm=True))
    lines = ["# Store stage: writer CPU per file", "",
             f"Machine: {machine()}. {n} dev-set results (segments, tags, embeddings, "
             "fingerprints) stored into a fresh library, one transaction per file; "
             f"{args.repeats} interleaved runs, median.", "",
             "| path | CPU ms per file | wall ms per file |", "|---|---|---|"]
    med = {}
    for name, runs in rows.items():
        cpu = sorted(c for c, _ in runs)[len(runs) // 2]
        wall = sorted(w for _, w in runs)[len(runs) // 2]
        med[name] = cpu
        lines.append(f"| {name} | {1000 * cpu / n:.2f} | {1000 * wall / n:.2f} |")
    lines += ["", f"Ratio ORM / fast: {med['ORM path'] / med['fast path (never-seen files)']:.1f}x."]
    write_result(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

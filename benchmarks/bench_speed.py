"""Indexing speed over the dev set: LoopMind's pipeline against a librosa baseline.

Seconds of audio analyzed per wall-clock second, both with a pool of one process per core:
  - ours: decode + chop + tempo + key + loudness + role + tone + embed + store (the full
    pipeline into a temporary library, as `loopmind add` runs it, with the default
    "features" embedder), and the same without the embed stage (the figure issue 2 was
    first measured with, before the search issue filled that stage);
  - baseline: librosa.load at 22,050 Hz + beat_track + chroma_cqt + mfcc per file. Its
    workers are warmed up first (one call each) so numba's JIT compile time is NOT counted.
Peak memory: the largest resident set of any worker process and of the main process.

    python benchmarks/bench_speed.py [--limit N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import audio_paths, machine, write_result  # noqa: E402


def _baseline_one(path: str) -> float:
    import librosa

    y, sr = librosa.load(path, sr=22050, mono=True)
    librosa.beat.beat_track(y=y, sr=sr)
    librosa.feature.chroma_cqt(y=y, sr=sr)
    librosa.feature.mfcc(y=y, sr=sr)
    return len(y) / sr


def _warm(_: int) -> int:
    import numpy as np

    _baseline_one_array(np.random.default_rng(0).standard_normal(22050 * 2).astype("float32"))
    return os.getpid()


def _baseline_one_array(y) -> None:
    import librosa

    librosa.beat.beat_track(y=y, sr=22050)
    librosa.feature.chroma_cqt(y=y, sr=22050)
    librosa.feature.mfcc(y=y, sr=22050)


def _maxrss_mb(who) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


class DescendantPeak:
    """Polls /proc for this process's descendants (pool workers are children of the
    forkserver, so getrusage cannot see them) and keeps the peak resident sizes."""

    def __init__(self, interval_s: float = 0.05):
        import threading

        self.interval_s = interval_s
        self.worker_peak_mb = 0.0
        self.total_peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _descendants() -> list[int]:
        parents: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as fh:
                        parents[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        me, out, frontier = os.getpid(), [], [os.getpid()]
        while frontier:
            p = frontier.pop()
            kids = [c for c, pp in parents.items() if pp == p]
            out += kids
            frontier += kids
        del me
        return out

    @staticmethod
    def _rss_mb(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = [self._rss_mb(p) for p in self._descendants()]
            if rss:
                self.worker_peak_mb = max(self.worker_peak_mb, max(rss))
            self.total_peak_mb = max(self.total_peak_mb,
                                     sum(rss) + self._rss_mb(os.getpid()))
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_ours(paths: list[str], workers: int, embedder: str | None) -> dict:
    from dataclasses import replace

    from loopmind.config import Settings, set_settings
    from loopmind.library import store
    from loopmind.library.db import Library
    from loopmind.library.pipeline import Job, run_jobs

    with tempfile.TemporaryDirectory() as home:
        settings = replace(Settings.from_env({"LOOPMIND_HOME": home}), workers=workers)
        set_settings(settings)
        lib = Library(settings)
        audio_s = 0.0
        failed = 0

        def on_result(res):
            nonlocal audio_s, failed
            store.store_result(lib, res)
            if res.error:
                failed += 1
            else:
                audio_s += res.duration_s or 0.0

        t0 = time.perf_counter()
        run_jobs([Job(p) for p in paths], workers=workers, on_result=on_result,
                 max_duration_s=settings.max_duration_s, sr=settings.analysis_sr,
                 embedder_name=embedder)
        wall = time.perf_counter() - t0
        lib.close()
    return {"audio_s": audio_s, "wall_s": wall, "failed": failed}


BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run_baseline(paths: list[str], workers: int, *, blas_threads: int | None) -> dict:
    """The librosa baseline in a pool of `workers` spawned processes.

    blas_threads None leaves BLAS at its default (one thread per core in every worker, as
    a user's script would run); 1 gives each worker one BLAS thread, as LoopMind's pool does.
    """
    import multiprocessing as mp

    saved = {v: os.environ.get(v) for v in BLAS_VARS}
    for v in BLAS_VARS:
        if blas_threads is None:
            os.environ.pop(v, None)
        else:
            os.environ[v] = str(blas_threads)
    try:
        ctx = mp.get_context("spawn")  # spawned workers see the environment set just now
        # numba's on-disk cache is written by one process first: workers compiling at once
        # wrote entries that later crashed every fresh process loading them (segfault)
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as first:
            first.submit(_warm, 0).result()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            list(pool.map(_warm, range(workers * 2)))  # compile numba once per worker
            t0 = time.perf_counter()
            audio_s = sum(pool.map(_baseline_one, paths, chunksize=4))
            wall = time.perf_counter() - t0
    finally:
        for v, val in saved.items():
            if val is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = val
    return {"audio_s": audio_s, "wall_s": wall, "failed": 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.md"))
    args = ap.parse_args()
    paths = audio_paths(args.limit)
    bases = {}
    if not args.skip_baseline:
        # baselines first: LoopMind's pool sets single-thread BLAS in this process's env
        bases["default BLAS threads"] = run_baseline(paths, args.workers, blas_threads=None)
        bases["1 BLAS thread per worker"] = run_baseline(paths, args.workers, blas_threads=1)
    with DescendantPeak() as peak:
        ours = run_ours(paths, args.workers, "features")
    main_rss = _maxrss_mb(resource.RUSAGE_SELF)
    bare = run_ours(paths, args.workers, None)
    lines = [
        "# Indexing speed on the dev set", "",
        f"Machine: {machine()}; {len(paths)} files, pool of {args.workers} processes.", "",
        "| pipeline | audio (min) | wall (s) | x real time | failed |",
        "|---|---|---|---|---|",
        f"| LoopMind (decode, chop, analyze, embed, store: what a scan runs) | "
        f"{ours['audio_s'] / 60:.1f} | {ours['wall_s']:.1f} | "
        f"{ours['audio_s'] / ours['wall_s']:.0f}x | {ours['failed']} |",
        f"| LoopMind without the embed stage | {bare['audio_s'] / 60:.1f} | "
        f"{bare['wall_s']:.1f} | {bare['audio_s'] / bare['wall_s']:.0f}x | {bare['failed']} |",
    ]
    ours_x = ours["audio_s"] / ours["wall_s"]
    ratios = []
    for name, base in bases.items():
        base_x = base["audio_s"] / base["wall_s"]
        lines.append(f"| librosa baseline, {name} (load 22 kHz + beat_track + chroma_cqt + "
                     f"mfcc) | {base['audio_s'] / 60:.1f} | {base['wall_s']:.1f} | "
                     f"{base_x:.0f}x | - |")
        ratios.append(f"{ours_x / base_x:.1f}x against the baseline with {name} "
                      f"({bare['audio_s'] / bare['wall_s'] / base_x:.1f}x without embed)")
    if ratios:
        lines += ["", "Ratio LoopMind / baseline: " + "; ".join(ratios) +
                  " (baseline numba JIT warm-up excluded)."]
    lines += ["", f"Peak memory (LoopMind run): largest worker {peak.worker_peak_mb:.0f} MB "
              f"resident, all processes together {peak.total_peak_mb:.0f} MB (sampled every "
              f"50 ms), main process {main_rss:.0f} MB (ru_maxrss)."]
    text = "\n".join(lines) + "\n"
    write_result(args.out, text)


if __name__ == "__main__":
    main()

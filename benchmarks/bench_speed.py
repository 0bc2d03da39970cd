"""Indexing speed over the dev set: LoopMind's pipeline against a librosa baseline.

Seconds of audio analyzed per wall-clock second, both with a pool of one process per core:
  - ours: decode + chop + tempo + key + loudness + role + tone + embed + store (the full
    pipeline into a temporary library, as `loopmind add` runs it, with the default
    "features" embedder), and the same without the embed stage (the figure issue 2 was
    first measured with, before the search issue filled that stage);
  - baseline: librosa.load at 22,050 Hz + beat_track + chroma_cqt + mfcc per file. Its
    workers are warmed up first (one call each) so numba's JIT compile time is NOT counted.
Peak memory: the largest resident set of any worker process and of the main process.

    python benchmarks/bench_speed.py [--limit N] [--workers N] [--rounds N]
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
    import warnings

    import numpy as np

    # librosa warns about every file shorter than its FFT; printing those only slows it down
    warnings.filterwarnings("ignore")

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


def _x(run: dict) -> float:
    return run["audio_s"] / run["wall_s"]


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of (1-thread baseline, LoopMind with embed, without embed)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.md"))
    args = ap.parse_args()
    paths = audio_paths(args.limit)
    t_start = time.perf_counter()
    default_base = None
    if not args.skip_baseline:
        # once: the weaker setting (BLAS threads fight the pool), as a plain script runs
        default_base = run_baseline(paths, args.workers, blas_threads=None)
    # the first pipeline run of a process pays one-off costs (the forkserver, the main
    # process's imports and page cache of the models) that later runs do not; the baseline's
    # workers are warmed up too, so both are timed warm
    run_ours(paths[: 4 * args.workers], args.workers, "features")
    # the machine's speed drifts by tens of percent within minutes: each round times the
    # baseline and LoopMind back to back, and the ratio is taken within the round
    rounds = []
    for _ in range(args.rounds):
        base = None if args.skip_baseline else run_baseline(paths, args.workers, blas_threads=1)
        ours = run_ours(paths, args.workers, "features")
        bare = run_ours(paths, args.workers, None)
        rounds.append((base, ours, bare))
    # memory in a run of its own: polling /proc every 50 ms costs CPU the timed runs must not pay
    with DescendantPeak() as peak:
        run_ours(paths, args.workers, "features")
    main_rss = _maxrss_mb(resource.RUSAGE_SELF)
    audio_min = rounds[0][1]["audio_s"] / 60
    lines = [
        "# Indexing speed on the dev set", "",
        f"Machine: {machine()}; {len(paths)} files ({audio_min:.1f} min of audio), pool of "
        f"{args.workers} processes; {args.rounds} rounds, total run time "
        f"{(time.perf_counter() - t_start) / 60:.1f} min.", "",
        "LoopMind is the full pipeline into a temporary library, as `loopmind add` runs it "
        "(hash, decode, loudness, chop, analyze, embed with the default features embedder, "
        "store), and the same without the embed stage. The baseline is librosa.load at "
        "22,050 Hz + beat_track + chroma_cqt + mfcc per file, in a pool of the same size, its "
        "numba JIT compiled before timing. Each round times the 1-thread baseline and "
        "LoopMind back to back; the ratio is taken within a round.", "",
        "| round | baseline, 1 BLAS thread per worker | LoopMind with embed | ratio | "
        "LoopMind without embed | ratio | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    r_embed, r_bare = [], []
    for i, (base, ours, bare) in enumerate(rounds, 1):
        if base is None:
            lines.append(f"| {i} | - | {_x(ours):.0f}x ({ours['wall_s']:.1f} s) | - | "
                         f"{_x(bare):.0f}x ({bare['wall_s']:.1f} s) | - | "
                         f"{ours['failed']} / {bare['failed']} |")
            continue
        r_embed.append(_x(ours) / _x(base))
        r_bare.append(_x(bare) / _x(base))
        lines.append(f"| {i} | {_x(base):.0f}x ({base['wall_s']:.1f} s) | "
                     f"{_x(ours):.0f}x ({ours['wall_s']:.1f} s) | {r_embed[-1]:.2f}x | "
                     f"{_x(bare):.0f}x ({bare['wall_s']:.1f} s) | {r_bare[-1]:.2f}x | "
                     f"{ours['failed']} / {bare['failed']} |")
    lines += ["", f"Median over rounds: LoopMind {_median([_x(o) for _, o, _ in rounds]):.0f}x "
              f"with embed, {_median([_x(b) for _, _, b in rounds]):.0f}x without"]
    if r_embed:
        base_med = _median([_x(b) for b, _, _ in rounds])
        lines[-1] += (f"; baseline {base_med:.0f}x; ratio **{_median(r_embed):.2f}x** with "
                      f"embed (rounds {min(r_embed):.2f}-{max(r_embed):.2f}), "
                      f"{_median(r_bare):.2f}x without.")
    else:
        lines[-1] += "."
    if default_base is not None:
        lines += ["", f"Baseline with default BLAS threads (once, before the rounds): "
                  f"{_x(default_base):.0f}x ({default_base['wall_s']:.1f} s); LoopMind's median "
                  f"is {_median([_x(o) for _, o, _ in rounds]) / _x(default_base):.1f}x that "
                  f"with embed."]
    lines += ["", f"Peak memory (a LoopMind run of its own, with embed): largest worker "
              f"{peak.worker_peak_mb:.0f} MB resident, all processes together "
              f"{peak.total_peak_mb:.0f} MB (sampled every 50 ms), main process "
              f"{main_rss:.0f} MB (ru_maxrss)."]
    text = "\n".join(lines) + "\n"
    write_result(args.out, text)


if __name__ == "__main__":
    main()

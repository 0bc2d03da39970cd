"""Song generation speed: a three-minute song from a 1,000-segment library.

The issue asks for at most 10 s on this machine (report the multiple of real time and the peak
memory), and for a re-render with another seed to be at least 3x faster on a warm stretch
cache. The library is the demo pack built with 17 seeds (1,020 files: the same instruments
with other notes, patterns and tempi), indexed through the normal pipeline.

Runs, each timed as `generate_song` end to end (pool, arrangement, render, mix, export):
1. cold: an empty stretch cache;
2. warm, the same seed (everything stretched is reused);
3. warm, another seed (different choices; what it already stretched is reused).
A peer in the same run: the same song rendered with the stretch cache switched off.

    python benchmarks/bench_generate.py [--seeds 17]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result  # noqa: E402


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def self_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=17)
    ap.add_argument("--prompt", default="dark trap 140 in F minor")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "generate.md"))
    args = ap.parse_args()

    from loopmind.config import Settings, set_settings
    from loopmind.demo import build_demo_library
    from loopmind.generate.compose import generate_song
    from loopmind.library.db import Library
    from loopmind.library.indexer import Indexer
    from loopmind.library.queries import status

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"LOOPMIND_HOME": os.path.join(tmp, "home")})
        set_settings(settings)
        root = Path(tmp) / "library"
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            build_demo_library(root / f"pack{seed:02d}", seed=seed)
        build_s = time.perf_counter() - t0
        lib = Library(settings)
        idx = Indexer(lib)
        idx.add_folder(root)
        t0 = time.perf_counter()
        report = idx.scan()
        index_s = time.perf_counter() - t0
        st = status(lib)
        rss_before = self_peak_mb()

        def run(seed: int, name: str, **kw) -> tuple[float, object]:
            t = time.perf_counter()
            res = generate_song(lib, args.prompt, seed=seed, minutes=3.0,
                                out_dir=Path(tmp) / "songs" / name, **kw)
            return time.perf_counter() - t, res

        cold_s, cold = run(1, "cold")
        warm_same_s, warm_same = run(1, "warm-same")
        warm_other_s, warm_other = run(2, "warm-other")
        # the peer: no cache at all (every clip stretched again)
        import loopmind.generate.render as render

        orig = render.StretchCache.get
        render.StretchCache.get = lambda self, key: None
        try:
            nocache_s, _ = run(2, "no-cache")
        finally:
            render.StretchCache.get = orig
        peak = max(self_peak_mb(), children_peak_mb())

    song_s = cold.song.duration_s
    lines = [
        "# Song generation speed",
        "",
        f"Machine: {machine()}. Library: {st.segments} segments from {report.indexed} files "
        f"({args.seeds} seeds of the demo pack; built in {build_s:.0f} s, indexed in "
        f"{index_s:.0f} s). Prompt: \"{args.prompt}\", 3 minutes.",
        "",
        "| run | wall s | x real time | render s | mix s | export s | cache hits/misses |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, secs, res in (("cold cache, seed 1", cold_s, cold),
                            ("warm, same seed", warm_same_s, warm_same),
                            ("warm, other seed (2)", warm_other_s, warm_other)):
        c = res.summary["cache"]
        lines.append(f"| {name} | {secs:.2f} | {song_s / secs:.1f} | "
                     f"{res.timings['render']:.2f} | {res.timings['mix']:.2f} | "
                     f"{res.timings['export']:.2f} | {c['hits']}/{c['misses']} |")
    lines.append(f"| peer: seed 2 with no stretch cache | {nocache_s:.2f} | "
                 f"{song_s / nocache_s:.1f} | | | | |")
    lines += [
        "",
        f"- Song length {song_s:.1f} s ({cold.song.bars} bars at {cold.song.bpm:g} BPM), "
        f"{len(cold.song.tracks)} tracks.",
        f"- Target ≤ 10 s for the cold render: {cold_s:.2f} s, "
        f"{'met' if cold_s <= 10 else 'NOT met'}.",
        f"- Re-render with another seed on a warm cache: {warm_other_s:.2f} s vs "
        f"{nocache_s:.2f} s without the cache = {nocache_s / warm_other_s:.1f}x "
        f"(target ≥ 3x: {'met' if nocache_s / warm_other_s >= 3 else 'NOT met'}); the same "
        f"seed again: {cold_s / warm_same_s:.1f}x faster than cold.",
        f"- Peak memory (RSS): {peak:.0f} MB (the generating process; before generating "
        f"{rss_before:.0f} MB).",
    ]
    write_result(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

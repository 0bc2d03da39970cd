"""Hybrid and interpretive modes: time per mode for a three-minute song, and novelty of the
generated bars.

The library is the demo pack (one seed, 60 files), indexed through the normal pipeline. For
each mode (direct as the reference, hybrid, interpret) and seeds 0 and 1, ``generate_song``
makes a three-minute "dark trap 140 in F minor" song end to end (pool, arrangement, generated
parts, render, mix, export), first on an empty stretch cache (cold), then the same seed again
(warm). Reported: wall time per stage, master loudness and true peak.

Novelty: every generated clip of the cold songs is rendered alone with the song renderer
(``render.render_clip``) and cut at its bar lines; each bar with sound is compared with every
bar of every loop in the pool (cut at its own bar lines) and with every one-shot, as the
largest normalized cross-correlation over +-20 ms (``interpret.measures.novelty``, at
11025 Hz); target < 0.9 for every bar.

    python benchmarks/bench_hybrid.py [--minutes 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result  # noqa: E402

MODES = ("direct", "hybrid", "interpret")
NOVELTY_SR = 11025


def _source_bars(pool, sr: int) -> list[np.ndarray]:
    from loopmind.generate.render import load_source

    bars = []
    for it in pool.items:
        y = load_source(it.path, it.start_s, it.end_s, sr=sr).mean(axis=0)
        n = it.loop_bars
        if it.kind == "loop" and n:
            step = len(y) // n
            bars += [y[i * step:(i + 1) * step] for i in range(n)]
        else:
            bars.append(y)
    return bars


def _novelty(song, pool, source_bars) -> dict:
    from loopmind.generate.interpret.measures import novelty
    from loopmind.generate.render import render_clip
    from scipy.signal import resample_poly

    by_kind: dict[str, list[float]] = {}
    for t in song.tracks:
        for c in t.clips:
            if not c.generated:
                continue
            kind = ("texture:" + c.texture["kind"] if c.is_texture else
                    f"events:{t.role}")
            y = render_clip(c, song, None, role=t.role).mean(axis=0)
            y = resample_poly(y, NOVELTY_SR, song.sample_rate)
            n_bar = song.bar_s * NOVELTY_SR
            for b in range(c.bars):
                bar = y[int(round(b * n_bar)):int(round((b + 1) * n_bar))]
                if len(bar) == 0 or np.sqrt(np.mean(bar ** 2)) < 1e-3:
                    continue
                by_kind.setdefault(kind, []).append(
                    novelty(bar, source_bars, sr=NOVELTY_SR))
    return by_kind


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--prompt", default="dark trap 140 in F minor")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "hybrid.md"))
    args = ap.parse_args()

    from loopmind.config import Settings, set_settings
    from loopmind.demo import build_demo_library
    from loopmind.generate.compose import generate_song
    from loopmind.generate.pool import load_pool
    from loopmind.library.db import Library
    from loopmind.library.indexer import Indexer

    rows = []
    novelty_rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"LOOPMIND_HOME": os.path.join(tmp, "home"),
                                      "LOOPMIND_WORKERS": str(args.workers)})
        set_settings(settings)
        root = Path(tmp) / "pack"
        build_demo_library(root, seed=0)
        lib = Library(settings)
        idx = Indexer(lib)
        idx.add_folder(root)
        idx.scan()
        pool = load_pool(lib, folder=str(root))
        source_bars = [np.asarray(b) for b in _source_bars(pool, NOVELTY_SR)]
        for mode in MODES:
            for seed in (0, 1):
                for run in ("cold", "warm"):
                    if run == "cold":
                        import shutil

                        shutil.rmtree(settings.cache_dir / "stretch", ignore_errors=True)
                    t0 = time.perf_counter()
                    res = generate_song(lib, args.prompt, folder=str(root), seed=seed,
                                        minutes=args.minutes, mode=mode,
                                        out_dir=Path(tmp) / f"{mode}-{seed}-{run}",
                                        workers=args.workers)
                    wall = time.perf_counter() - t0
                    song = res.song
                    n_gen = sum(1 for t in song.tracks for c in t.clips if c.generated)
                    rows.append((mode, seed, run, wall, res.timings, song.duration_s,
                                 res.mix_report.get("master_lufs"),
                                 res.mix_report.get("master_true_peak_dbtp"), n_gen,
                                 sum(len(c.events or []) for t in song.tracks
                                     for c in t.clips)))
                    print(rows[-1][:4], flush=True)
                    if run == "cold" and mode != "direct":
                        for k, v in _novelty(song, pool, source_bars).items():
                            novelty_rows.setdefault(mode, {}).setdefault(k, []).extend(v)

    lines = [
        "# Hybrid and interpretive modes: speed and novelty",
        "",
        f"Machine: {machine()} (shared with other jobs while this ran, so times are upper "
        "bounds). Workers: "
        f"{args.workers}. Library: the demo pack (60 files), prompt \"{args.prompt}\", "
        f"{args.minutes:g} minutes requested.",
        "",
        "`python benchmarks/bench_hybrid.py`",
        "",
        "## Time per mode (s, wall clock, end to end)",
        "",
        "| mode | seed | cache | total | generate | render | mix | export | song s | "
        "x real time | generated clips | slice events | LUFS | true peak dBTP |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, seed, run, wall, t, dur, lufs, tp, n_gen, n_ev in rows:
        lines.append(
            f"| {mode} | {seed} | {run} | {wall:.1f} | {t.get('generate', 0.0):.1f} | "
            f"{t.get('render', 0.0):.1f} | {t.get('mix', 0.0):.1f} | "
            f"{t.get('export', 0.0):.1f} | {dur:.0f} | {dur / wall:.1f} | {n_gen} | {n_ev} | "
            f"{lufs:.1f} | {tp:.2f} |")
    lines += ["", "## Novelty of generated bars (max NCC against every source bar, "
              "+-20 ms; target < 0.9)", "",
              "| mode | generated part | bars | median | max | bars >= 0.9 |",
              "|---|---|---|---|---|---|"]
    for mode, kinds in novelty_rows.items():
        for kind, vals in sorted(kinds.items()):
            v = np.asarray(vals)
            lines.append(f"| {mode} | {kind} | {len(v)} | {np.median(v):.3f} | "
                         f"{v.max():.3f} | {int((v >= 0.9).sum())} |")
    lines += ["", "Reading: \"generate\" is the extra work of the mode (hybrid: fills, risers, "
              "variations; interpret: slicing the pool and training or loading the sequence "
              "model, cached per pool after the first run). A cold render also computes the "
              "re-pitched slices and the textures; warm runs take them from the stretch "
              "cache. Bars are measured on each generated clip rendered alone (a fill clip "
              "holds the loop's own slices up to the fill, which is why its NCC is the "
              "highest of the hybrid parts); the texture parts are far from any source bar."]
    write_result(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

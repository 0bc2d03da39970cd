"""Embed-stage CPU per audio second: this checkout's ``FeatureEmbedder.features`` against
another commit's (``--before``, default ``main``), on the dev set.

Each file goes through the analysis stage (``analyze_audio``) as in a scan; at its embed hook,
both versions are called on the segment and its shared Spectrogram, interleaved (the order
alternates per repetition) after one warm-up call each, and timed with ``time.process_time``.
The figure is total CPU over the segments' total duration, per repetition; the median is the
one to quote. Also: how many segments start with silence, the cosine between the two
versions' vectors, and the cosine between each version's vector of a segment and of the same
segment with 50 ms of digital silence before it.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. taskset -c 0 python benchmarks/time_embed.py \\
        [--before main] [--reps 5] [--limit N]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import audio_paths  # noqa: E402
from loopmind.index import embed as embed_now  # noqa: E402
from loopmind.library.analysis import role as role_mod  # noqa: E402
from loopmind.library.analysis.segments import analyze_audio  # noqa: E402
from loopmind.library.audio import decode  # noqa: E402


def _module_at(ref: str, tmp: Path):
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:loopmind/index/embed.py"],
                         check=True, capture_output=True, text=True).stdout
    path = tmp / "a" / "b" / "embed_before.py"  # MODELS_DIR is parents[2] of the module
    path.parent.mkdir(parents=True)
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("embed_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="main", help="commit of the 'before' embed.py")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="every n-th file, this many")
    args = ap.parse_args()

    paths = audio_paths(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        before_mod = _module_at(args.before, Path(tmp))
    impls = {"before": before_mod.FeatureEmbedder(constants_path=embed_now.CONSTANTS_PATH),
             "after": embed_now.FeatureEmbedder()}
    R = args.reps
    cpu = {n: np.zeros(R) for n in impls}
    spectral = {n: 0 for n in impls}
    counter = [0]
    spectral_features = role_mod._spectral_features

    def counting(spec):
        counter[0] += 1
        return spectral_features(spec)

    role_mod._spectral_features = counting
    stats = {"dur": 0.0, "starts": [], "cos": [], "sil": {n: [] for n in impls}}

    def hook(ys, *, sr, spec):
        stats["dur"] += len(ys) / sr
        stats["starts"].append(embed_now._sound_start(np.asarray(ys, np.float32)))
        for e in impls.values():  # warm-up
            e.features(ys, sr=sr, spec=spec)
        names = list(impls)
        for r in range(R):
            for n in (names if r % 2 == 0 else names[::-1]):
                c0 = counter[0]
                t0 = time.process_time()
                impls[n].features(ys, sr=sr, spec=spec)
                cpu[n][r] += time.process_time() - t0
                spectral[n] += counter[0] - c0
        v = {n: e.embed(ys, sr=sr, spec=spec) for n, e in impls.items()}
        stats["cos"].append(float(v["before"] @ v["after"]))
        y50 = np.r_[np.zeros(int(0.05 * sr), np.float32), ys]
        for n, e in impls.items():
            stats["sil"][n].append(float(e.embed(y50, sr=sr) @ v[n]))
        return v["after"]

    t = time.time()
    for p in paths:
        try:
            analyze_audio(decode(p, sr=22050), path=p, embed=hook, embedder="timing")
        except Exception as exc:  # noqa: BLE001 - a file the pipeline refuses is skipped
            print(f"skipped {p}: {type(exc).__name__}: {exc}", file=sys.stderr)
    starts = np.array(stats["starts"])
    dur = stats["dur"]
    print(f"{len(paths)} files, {len(starts)} segments, {dur:.0f} audio s, {R} interleaved "
          f"repetitions, {time.time() - t:.0f} s wall; before = {args.before}")
    print(f"segments with leading silence: {(starts > 0).sum()} (median "
          f"{np.median(starts[starts > 0]) if (starts > 0).any() else 0:.0f} samples); "
          f"at least one hop (512): {(starts >= 512).sum()}")
    for n in impls:
        per = cpu[n] / dur * 1000
        print(f"{n:6s}: embed-stage CPU ms per audio s, per repetition "
              f"{' '.join(f'{x:.3f}' for x in per)}; median {np.median(per):.3f}; "
              f"role spectral features computed {spectral[n] / R:.0f} times per repetition")
    c = np.array(stats["cos"])
    print(f"cosine before/after: min {c.min():.4f}, 1st percentile {np.percentile(c, 1):.4f}, "
          f"median {np.median(c):.6f}; {(c < 0.99999).sum()} segments below 0.99999")
    for n in impls:
        c = np.array(stats["sil"][n])
        print(f"{n:6s}: 50 ms of silence before vs the segment: cosine min {c.min():.4f}, "
              f"1st percentile {np.percentile(c, 1):.4f}, 5th {np.percentile(c, 5):.4f}, "
              f"mean {c.mean():.5f}")


if __name__ == "__main__":
    main()

"""Compute the feature embedder's constants (models/embed.safetensors) and write its card.

The "features" embedder (``loopmind.index.embed.FeatureEmbedder``) standardizes its timbre
block — ``role_features`` (111) and ``extra_features`` (36) — with a fixed mean and scale per
feature, the same for every library. They are the mean and standard deviation of those
features over sounds that are **not** in the dev set:

* the one-shots that ``train_role.py`` renders with fluidsynth from five General MIDI
  soundfonts (FluidR3_GM from the dev-set build, and the four Debian soundfonts in
  ``eval-data/.pkgs-extra``; ``--no-extra`` uses FluidR3_GM only);
* loops sequenced from those one-shots (``train_role.synth_loops``), so that loop features
  (onset autocorrelation, duration) have a scale too.

Nothing is fitted to role labels here: the role block of the vector is the shipped role
model's output (``models/role.safetensors``, see ``models/role.md``).

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/train_embed.py
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import train_role as tr  # noqa: E402
from benchmarks.common import machine  # noqa: E402
from loopmind.index import embed as embed_mod  # noqa: E402
from loopmind.library.analysis.features import Spectrogram  # noqa: E402
from loopmind.library.analysis.role import role_features  # noqa: E402

OUT = ROOT / "models" / "embed.safetensors"
MIN_SCALE = 1e-3  # a feature that hardly varies over the data keeps a finite weight


def timbre_features(ys: list[np.ndarray]) -> np.ndarray:
    """Role and extra features of each signal at ``tr.SR``, shape (n, 147)."""
    out = []
    for y in ys:
        spec = Spectrogram(y, tr.SR)
        out.append(np.r_[role_features(y, sr=tr.SR, spec=spec),
                         embed_mod.extra_features(y, sr=tr.SR, spec=spec)])
    return np.asarray(out, dtype=np.float32)


def constants(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per column (floored at ``MIN_SCALE``)."""
    n_role = F.shape[1] - len(embed_mod.EXTRA_FEATURE_NAMES)
    F = F[F[:, :n_role].any(axis=1)]  # silent renders (all-zero features) say nothing
    mean = F.mean(axis=0)
    scale = np.maximum(F.std(axis=0), MIN_SCALE)
    return mean.astype(np.float32), scale.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-extra", action="store_true",
                    help="FluidR3_GM only (no soundfonts from .pkgs-extra)")
    args = ap.parse_args(argv)
    from safetensors.numpy import save_file

    t0 = time.time()
    sources = tr.synthetic_sources(not args.no_extra)
    synth = tr.render_all(sources, phrases=False)  # one-shots only, as documented below
    pool: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    for s in synth:
        pool[s.truth].append(s.y)
    loop_ys, loop_roles = tr.synth_loops(pool)
    F = timbre_features([s.y for s in synth] + loop_ys)
    mean, scale = constants(F)
    names = list(embed_mod._timbre_feature_names())
    date = _dt.date.today().isoformat()
    meta = {"features": json.dumps(names), "trained": date,
            "recipe": "benchmarks/train_embed.py",
            "soundfonts": json.dumps([p.name for p in sources]),
            "n_oneshots": str(len(synth)), "n_loops": str(len(loop_ys))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"mean": mean, "scale": scale}, str(args.out), metadata=meta)
    os.chmod(args.out, 0o644)
    write_card(args.out.with_suffix(".md"), sources=sources, synth=synth,
               loop_roles=loop_roles, date=date, n_features=len(names),
               size_bytes=args.out.stat().st_size)
    print(f"wrote {args.out} ({len(names)} features from {len(synth)} one-shots and "
          f"{len(loop_ys)} loops; {time.time() - t0:.0f} s)")
    return 0


def write_card(path: Path, *, sources, synth, loop_roles, date, n_features,
               size_bytes) -> None:
    def fmt(counter) -> str:
        return ", ".join(f"{k} {v}" for k, v in counter.most_common())

    fonts = ", ".join(p.name for p in sources)
    path.write_text(f"""# embed.safetensors — constants of the "features" embedder

Made {date} by `benchmarks/train_embed.py` ({machine()}); read by
`loopmind/index/embed.py` (`load_constants`, `FeatureEmbedder`). Weights-only file (a JSON
header and two float32 arrays, {size_bytes} bytes); nothing executable.

## What it holds
`mean` and `scale` ({n_features} each): the mean and standard deviation of the timbre block's
features — `role_features` (envelope, band energy ratios, spectral shape, pitchedness, band
decays, MFCC-like statistics) and `extra_features` (16 mel-group energy shares, spectral
contrast in 7 octave bands, the level 10 ms to 2 s after the peak, onset autocorrelation in
5 lag ranges). The embedder computes `clip((f - mean) / scale, -4, 4) / sqrt({n_features})`,
appends `sqrt(p_role)` from the shipped role model, and L2-normalizes: 163 numbers per
segment. The constants are the same for every library, so vectors from different machines
and different days are comparable.

## Data
Not the dev set. {len(synth)} one-shots rendered with fluidsynth from {len(sources)} General
MIDI soundfonts ({fonts}; the recipe of `train_role.py`: GM programs mapped to roles, every
drum note of each font's kits; roles: {fmt(collections.Counter(s.truth for s in synth))}), and
{len(loop_roles)} loops sequenced from them ({fmt(collections.Counter(loop_roles))}).
No role labels are used: only the mean and standard deviation of each feature.

## Metrics
See `benchmarks/results/similar.md` (precision@10 of same-role neighbours on the dev set's
one-shots, leave-one-pack-out for the role block, against an MFCC cosine peer).

## Limits
The constants describe General MIDI renders and their loops; a library of very different
material (field recordings, full mixes) has other spreads, and features with a large spread
there weigh more in its distances. The role block is only as good as the role model
(leave-one-pack-out accuracy about 0.70 on one-shots, see `models/role.md`).

## Reproduce
```
/work/shared/eval/build.sh /work/eval-data     # FluidR3_GM in .pkgs
# the four extra soundfonts: see models/role.md (or pass --no-extra)
cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/train_embed.py
```
About a minute on 2 cores; needs fluidsynth and safetensors. Deterministic up to
floating-point rounding. Any change to the features or to this file changes
`FeatureEmbedder.version`, so stored vectors are recomputed.
""")


if __name__ == "__main__":
    sys.exit(main())

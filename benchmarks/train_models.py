"""Reproduce the shipped checkpoints (models/arranger, models/mixer, models/embedder) and
record their figures and training times in benchmarks/results/train.md.

Data a fresh machine can obtain:

* the LMMS demo projects of Debian's ``lmms-common`` (``/work/shared/eval/build.sh`` fetches
  it with ``apt-get download``; here in ``$LOOPMIND_EVAL_DATA/.pkgs/lmms-common``), with the
  factory samples their sampler tracks play;
* the FL Studio projects in ``/work/shared/eval/flp`` (the invalid-* files are refused by the
  importer and only show up as warnings);
* for the embedder: the dev set's audio (``$LOOPMIND_EVAL_DATA``) as a stand-in library, and
  LoopMind's demo library (``loopmind demo``) for the 5,000-segment timing.

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/train_models.py [arranger]
        [mixer] [embedder] [--quick]

Each part rewrites its own section of results/train.md; the others are kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import EVAL_DATA, SHARED_EVAL, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
RESULTS = Path(__file__).resolve().parent / "results"
TITLES = {"arranger": "## Arranger", "mixer": "## Mixer", "embedder": "## Embedder"}
LMMS_DEMOS = EVAL_DATA / ".pkgs" / "lmms-common" / "usr" / "share" / "lmms" / "projects" / "demos"
FLP_DIR = SHARED_EVAL / "flp"


def _project_dirs() -> list[Path]:
    if not LMMS_DEMOS.is_dir():
        raise SystemExit(f"LMMS demos not found at {LMMS_DEMOS}: run {SHARED_EVAL}/build.sh "
                         f"{EVAL_DATA}")
    return [LMMS_DEMOS] + ([FLP_DIR] if FLP_DIR.is_dir() else [])


def _data_note() -> str:
    n_lmms = len([p for p in LMMS_DEMOS.rglob("*") if p.suffix in (".mmp", ".mmpz")])
    n_flp = len(list(FLP_DIR.glob("*.flp"))) if FLP_DIR.is_dir() else 0
    return (f"Sources: the {n_lmms} LMMS demo projects of Debian's `lmms-common` package "
            f"(`apt-get download lmms-common`, `usr/share/lmms/projects/demos`; sampler tracks "
            f"play the package's own `usr/share/lmms/samples`), and the {n_flp} .flp files of "
            "`shared/eval/flp` (most of them deliberately broken test files that the importer "
            "refuses). Imported with `loopmind.generate.projects.load_project`.")


def part_arranger(quick: bool) -> list[str]:
    import torch

    from loopmind.generate.train import arranger

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.time()
    res = arranger.train(_project_dirs(), out=MODELS / "arranger.safetensors",
                         epochs=20 if quick else None, data_note=_data_note(),
                         quiet=not sys.stderr.isatty())
    m = res.metrics
    lo, hi = m["accuracy_difference_ci95"]
    flo, fhi = m["role_f1_difference_ci95"]
    lines = ["## Arranger", "",
             f"`models/arranger.safetensors` ({res.path.stat().st_size} bytes), trained on "
             f"{res.n_projects} projects (sections inferred by the importer from which tracks "
             f"play) plus {res.n_augmented} of LoopMind's rule-based plans as augmentation. "
             f"Wall time {time.time() - t0:.0f} s including the leave-one-project-out "
             f"evaluation ({m['folds']} folds, {m['steps']} predicted steps).", "",
             "| predictor (held-out projects) | next-section accuracy | role-set F1 |",
             "|---|---|---|",
             f"| learned arranger | {m['model_next_section_accuracy']:.3f} | "
             f"{m['model_role_f1']:.3f} |",
             f"| rule-based plan (`styles.plan_sections`) | "
             f"{m['rules_next_section_accuracy']:.3f} | {m['rules_role_f1']:.3f} |", "",
             f"Differences (learned − rules), 95 % bootstrap intervals over projects: "
             f"accuracy [{lo:+.3f}, {hi:+.3f}], role-set F1 [{flo:+.3f}, {fhi:+.3f}]. Used by "
             "`generate` by default (better on one measure with 95 % confidence, not "
             f"significantly worse on the other): {'yes' if arranger._beats(m) else 'no'}.", ""]
    if res.warnings:
        lines += [f"Skipped files: {'; '.join(res.warnings)}.", ""]
    return lines


def part_mixer(quick: bool) -> list[str]:
    import torch

    from loopmind.generate.train import mixer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.time()
    res = mixer.train(_project_dirs(), out=MODELS / "mixer.safetensors",
                      epochs=50 if quick else None, data_note=_data_note(),
                      quiet=not sys.stderr.isatty())
    cv = res.metrics["cv"]
    lines = ["## Mixer", "",
             f"`models/mixer.safetensors` ({res.path.stat().st_size} bytes), trained on "
             f"{res.n_tracks} tracks of {res.n_songs} projects. Wall time "
             f"{time.time() - t0:.0f} s including the leave-one-song-out evaluation.", "",
             "| target (held-out songs) | tracks | learned MAE | heuristic MAE |",
             "|---|---|---|---|"]
    for t in mixer.TARGETS:
        a, b = cv["model"][t], cv["heuristic"][t]
        if a["mae"] is not None:
            lines.append(f"| {t} | {a['n']} | {a['mae']:.3f} | {b['mae']:.3f} |")
    proven = mixer.proven_targets(cv)
    lines += ["", "Level: LU, centred per song; pan: distance from the centre (0..1); reverb: "
                  "send 0..1; highpass: octaves above 20 Hz (0 = none). MAE differences "
                  "(learned − heuristic), 95 % bootstrap intervals over songs: "
              + ", ".join(f"{t} [{a:+.3f}, {b:+.3f}]" for t, (a, b)
                          in cv["mae_difference_ci95"].items())
              + ". `auto_mix` uses the learned "
              + (", ".join(proven) + " (the targets better with 95 % confidence)" if proven
                 else "mixer for nothing: no target is better with 95 % confidence, so it "
                      "keeps the heuristic")
              + ".", ""]
    if res.warnings:
        lines += [f"Skipped files: {'; '.join(res.warnings)}.", ""]
    return lines


def _similar_figures() -> dict[str, float]:
    """Figures of results/similar.md (bench_similar.py) on the same one-shots: the feature
    embedder ("features"), its timbre block alone ("timbre") and the MFCC peer ("mfcc")."""
    import re

    p = RESULTS / "similar.md"
    text = p.read_text() if p.exists() else ""
    pats = {"features": r"\| \*\*ours\*\*[^|]*\| \*\*([0-9.]+)\*\* \|",
            "mfcc": r"\| peer: MFCC[^|]*\| ([0-9.]+) \|",
            "timbre": r"\| ours, timbre block only[^|]*\| ([0-9.]+) \|"}
    out = {}
    for k, pat in pats.items():
        m = re.search(pat, text)
        if m:
            out[k] = float(m.group(1))
    return out


def _precision_at_10(path: Path, items) -> tuple[float, float]:
    """P@10 of same-role neighbours among the dev one-shots (bench_similar's method), and the
    same with neighbours from other instruments only."""
    import numpy as np

    from benchmarks.bench_similar import hits, neighbours
    from loopmind.generate.train.embedder import LearnedEmbedder

    emb = LearnedEmbedder(path)
    V = np.concatenate([emb.embed_many([it.y for it in items[i:i + 64]], sr=22050)
                        for i in range(0, len(items), 64)])
    truth = np.array([it.truth for it in items])
    inst = np.array([it.instrument for it in items])
    return (float(hits(neighbours(V), truth).mean()),
            float(hits(neighbours(V, exclude=inst[:, None] == inst[None, :]), truth).mean()))


def part_embedder(quick: bool) -> list[str]:
    import shutil
    import tempfile

    import torch

    from benchmarks import train_role as tr
    from loopmind.generate.train import embedder as E

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    files = sorted(p for p in EVAL_DATA.rglob("*")
                   if p.suffix.lower() in (".wav", ".flac", ".ogg")
                   and not any(part.startswith(".pkgs") for part in p.relative_to(EVAL_DATA).parts))
    items = [it for it in tr.load_dev_set() if it.kind == "oneshot"]
    figures = _similar_figures()
    baseline = figures.get("features")
    budget = 1.0 if quick else 9.0
    epochs = 2 if quick else None
    tmp = Path(tempfile.mkdtemp(prefix="loopmind-embedder-"))
    rows = []
    try:
        # 1. the dev set's audio as the user's library (labels unused in training)
        res = E.train_on_segments([E.SegmentRef(str(p)) for p in files],
                                  out=tmp / "embedder.safetensors", epochs=epochs,
                                  budget_minutes=budget, quiet=not sys.stderr.isatty(),
                                  card=False)
        p10, p10x = _precision_at_10(res.path, items)
        rows.append(("dev-set audio as the library", res, p10, p10x))
        # 2. the timing: 5,000 segments, each its own file name (a symlink), so every one is
        # decoded as a 5,000-file library's would be
        lib = tmp / "library"
        lib.mkdir()
        segs = []
        for k in range(5000):
            src = files[k % len(files)]
            link = lib / f"{k:05d}-{src.name}"
            link.symlink_to(src)
            # later copies start a little later, so no two segments are the same audio
            segs.append(E.SegmentRef(str(link), start_s=0.01 * (k // len(files))))
        res5 = E.train_on_segments(segs, out=tmp / "embedder5k.safetensors", epochs=epochs,
                                   budget_minutes=budget, quiet=not sys.stderr.isatty(),
                                   card=False)
        q10, q10x = _precision_at_10(res5.path, items)
        rows.append(("5,000 segments (dev files cycled, 10 ms later start per cycle)", res5,
                     q10, q10x))
        best = max(rows, key=lambda r: r[2])
        wins = baseline is not None and best[2] > baseline
        shipped = MODELS / "embedder.safetensors"
        if wins:
            shutil.copy(best[1].path, shipped)
            E.write_card(shipped, metrics=best[1].metrics, tensors=E.load_checkpoint(
                shipped, model=E.NAME, version=E.VERSION)[0], device="cpu",
                where="the dev set's audio", extra_metrics=f"precision@10 {best[2]:.3f} "
                f"(features embedder {baseline:.3f})")
        else:
            for p in (shipped, shipped.with_suffix(".md")):
                p.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["## Embedder", "",
             f"`loopmind train embedder` (contrastive, two augmented crops of a segment as the "
             f"positive pair, budget {budget:g} min for the whole run, decoding included), "
             f"then bench_similar's measure: precision@10 of same-role neighbours among the "
             f"{len(items)} dev-set one-shots. Training uses no labels; the library it trains "
             f"on is the dev set's own audio ({len(files)} files: one-shots, loops, chorales), "
             "as a user's embedder trains on the library it then searches.", "",
             "| run | segments | spectrograms s | epochs (steps) | total s | P@10 | P@10 other "
             "instruments only |", "|---|---|---|---|---|---|---|"]
    for name, r, a, b in rows:
        m = r.metrics
        cut = ", stopped by the budget" if m.get("stopped_by_budget") else ""
        lines.append(f"| {name} | {m['segments']} | {m['spectrogram_s']:.0f} | "
                     f"{m['epochs']} ({m['steps']}{cut}) | {m['total_s']:.0f} | {a:.3f} | "
                     f"{b:.3f} |")
    lines += ["", "Same one-shots in results/similar.md: the feature embedder "
                  f"(`features`, leave-one-pack-out role block) {figures.get('features', 'n/a')}, "
                  f"its timbre block alone (no labels anywhere) {figures.get('timbre', 'n/a')}, "
                  f"MFCC mean + std {figures.get('mfcc', 'n/a')}.", "",
              f"Against the feature embedder ({baseline if baseline is not None else 'n/a'}): "
                  + ("The learned embedder wins and ships as models/embedder.safetensors."
                     if wins else "The learned embedder does **not** beat it: no embedder "
                     "checkpoint is shipped and the default stays `features`; users can train "
                     "their own (`loopmind train embedder`, then `embedder = \"learned\"`)."),
              ""]
    return lines


PART_FUNCS = {"arranger": part_arranger, "mixer": part_mixer, "embedder": part_embedder}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("parts", nargs="*", default=list(PART_FUNCS))
    ap.add_argument("--quick", action="store_true", help="few epochs (a smoke run)")
    args = ap.parse_args()
    out = RESULTS / "train.md"
    sections: dict[str, str] = {}
    if out.exists():  # keep the sections of the parts not run now
        for chunk in out.read_text().split("\n## ")[1:]:
            title = "## " + chunk.split("\n", 1)[0]
            sections[title] = "## " + chunk
    for part in args.parts:
        sections[TITLES[part]] = "\n".join(PART_FUNCS[part](args.quick))
    body = ["# Trained models (issue 7)", "",
            f"Machine: {machine()} (shared with other jobs, so times are noisy). Script: "
            "`benchmarks/train_models.py`. Model cards: `models/<name>.md`.", ""]
    body += [sections[t].rstrip() + "\n" for t in TITLES.values() if t in sections]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(body))
    print("\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Role accuracy on the dev set's one-shots from audio alone, measured with grouped CV.

Folds: leave one pack out — LMMS, Sonic Pi, and each of the 7 Hydrogen kits in turn is held
out, so the held-out fold never shares a kit, pack or instrument (nor a velocity layer of one)
with the training side. Every method is trained and tested on the same folds:

* ours: the recipe of ``train_role.py`` (dev training folds + their augmentations + the
  synthetic one-shots of the GM soundfonts + the phrase loops rendered by the extra ones + loops
  sequenced from the training fold's one-shots, LR + 3 MLP ensemble), inferred with
  ``RoleModel``;
* ours trained on the dev folds only (ablation: no synthetic one-shots or loops);
* peer: 1-nearest-neighbour on librosa MFCC (20 coefficients) means and standard deviations,
  standardized with the training fold's statistics, Euclidean distance. Its ungrouped
  leave-one-file-out figure is also given, since that is how the 0.685 quoted in issue 2 can be
  reproduced (a velocity layer's neighbour is its sibling layer).

Also: the in-sample accuracy of the shipped model (labelled as such), confusions, the loops,
and speed. Writes benchmarks/results/role.md.

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/bench_role.py
"""

from __future__ import annotations

import collections
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import train_role as tr  # noqa: E402
from benchmarks.common import machine  # noqa: E402
from loopmind.library.analysis import role as role_mod  # noqa: E402
from loopmind.library.analysis.features import Spectrogram  # noqa: E402
from loopmind.library.analysis.role import ROLES  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "role.md"
EXTRA = True  # the extra Debian soundfonts, as train_role.py uses them by default
CNN = "--cnn" in sys.argv[1:]  # also train and report the CNN head (tried, not shipped)


def mfcc_stats(items) -> np.ndarray:
    import librosa

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_fft larger than a 20 ms click
        for it in items:
            m = librosa.feature.mfcc(y=it.y, sr=tr.SR, n_mfcc=20)
            out.append(np.r_[m.mean(axis=1), m.std(axis=1)])
    return np.array(out)


def nn1(M: np.ndarray, labels: np.ndarray, splits) -> np.ndarray:
    pred = np.empty(len(labels), dtype=object)
    for train, test in splits:
        mu, sd = M[train].mean(axis=0), M[train].std(axis=0) + 1e-9
        A, B = (M[train] - mu) / sd, (M[test] - mu) / sd
        d = ((B[:, None, :] - A[None, :, :]) ** 2).sum(axis=-1)
        pred[test] = labels[train][d.argmin(axis=1)]
    return pred


def demo_library_roles(model) -> tuple[int, int, list[str]]:
    """Role accuracy of the whole pipeline (audio + file names) on the synthesized demo library.

    Every file goes through ``process_file`` (decode, chop, analyses; the role of the file is
    its segments' most common role) and is compared with ``demo-manifest.json``. Returns
    (right, files, descriptions of the misses).
    """
    import json
    import tempfile

    from loopmind.demo import MANIFEST_NAME, build_demo_library
    from loopmind.library.pipeline import process_file

    right, misses = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        build_demo_library(tmp)
        files = json.loads((Path(tmp) / MANIFEST_NAME).read_text())["files"]
        for f in files:
            res = process_file(str(Path(tmp) / f["path"]))
            got = (collections.Counter(s.role for s in res.segments).most_common(1)[0][0]
                   if res.segments else f"error: {res.error}")
            right += got == f["role"]
            if got != f["role"]:
                misses.append(f"{f['path']} ({f['role']} → {got})")
    return right, len(files), misses


def acc(pred, truth, mask) -> float:
    return float(np.mean(pred[mask] == truth[mask]))


def main() -> int:
    t_start = time.time()
    items = tr.load_dev_set()
    sources = tr.synthetic_sources(EXTRA)
    synth = tr.render_all(sources)
    X = tr.features(items)
    aug = tr.augmented_signals(items)
    XA = tr.augmented_features(items, signals=aug)
    XS = tr.features(synth)
    mel = tr.mel_inputs(items, aug, synth) if CNN else None
    truth = np.array([it.truth for it in items])
    packs = np.array([it.pack for it in items])
    one = np.array([it.kind == "oneshot" for it in items])
    loops = ~one
    pack_names = sorted(set(packs))
    lopo = [(np.flatnonzero(packs != p), np.flatnonzero(packs == p)) for p in pack_names]

    _, _, fold_models = tr.grouped_cv(items, X, XA, synth, XS, return_proba=True, mel=mel,
                                      return_models=True)
    # ours: the shipped recipe's feature heads (LR + 3 MLP). With --cnn the fold models also
    # have the CNN head (trained after and apart from the feature heads, which are the same);
    # its output alone and blended in are reported as a tried alternative
    probs = np.zeros((len(items), len(ROLES)))
    probs_blend, probs_cnn = np.zeros_like(probs), np.zeros_like(probs)
    for p, m in fold_models.items():
        te = packs == p
        probs[te] = m.predict_proba(X[te])
        if CNN:
            probs_blend[te] = m.predict_proba(X[te], mel=mel.dev[te])
            probs_cnn[te] = m.cnn_proba(mel.dev[te])
    ours, ours_blend, ours_cnn = (np.array([ROLES[i] for i in P.argmax(axis=1)], dtype=object)
                                  for P in (probs, probs_blend, probs_cnn))
    ours_devonly = tr.grouped_cv(items, X, XA, [], None, loops=False)
    # ablation: FluidR3_GM as the only soundfont (the recipe before the extra Debian fonts)
    fluid = [i for i, s in enumerate(synth) if s.pack == "synth:" + tr.FLUID_SF2.stem]
    ours_fluid = tr.grouped_cv(items, X, XA, [synth[i] for i in fluid], XS[fluid])
    # with the kind prior (in the pipeline the chopper says loop or one-shot): the fold
    # models' probabilities through classify_role's combination step
    ours_kind = np.array([ROLES[int(np.argmax(role_mod._combine(p, kind=it.kind, name_role=None,
                                                                 name_confidence=0.0)))]
                          for p, it in zip(probs, items)])
    # calibration as shipped: a temperature fitted on out-of-fold probabilities. To keep the
    # figures honest, the held-out pack's temperature is fitted on the other packs' OOF
    # probabilities only (nested); the shipped one uses all of them.
    temps = {}
    calibrated = np.zeros_like(probs)
    for p in pack_names:
        te = packs == p
        temps[p] = tr.fit_temperature(probs[~te], truth[~te], weights=tr.balanced_weights(
            truth[~te], np.ones(int((~te).sum()))))
        calibrated[te] = role_mod._softmax(np.log(np.maximum(probs[te], 1e-12)) / temps[p])
    t_all = tr.fit_temperature(probs, truth,
                               weights=tr.balanced_weights(truth, np.ones(len(truth))))

    def nll(P) -> float:
        return float(-np.mean(np.log(np.maximum(
            P[np.arange(len(truth)), [ROLES.index(t) for t in truth]], 1e-12))[one]))

    def mean_conf(P) -> float:
        return float(np.mean(P.max(axis=1)[one]))

    # with file/folder words of a given reliability, simulated: the true role at confidence
    # 0.8, but a random wrong role for 20 % of the files (what a careless pack looks like)
    # (and a tidier pack where 5 % are wrong; names.py still says 0.8)
    def sim_words(wrong: float) -> np.ndarray:
        rng = np.random.default_rng(tr.SEED)
        return np.array([it.truth if rng.random() >= wrong else str(rng.choice(
            [r for r in ROLES if r != it.truth])) for it in items])

    def with_words(P, words) -> np.ndarray:
        return np.array([ROLES[int(np.argmax(role_mod._combine(
            p, kind=it.kind, name_role=w, name_confidence=0.8)))]
            for p, it, w in zip(P, items, words)])

    words_rows = []
    for wrong in (0.2, 0.05):
        w = sim_words(wrong)
        words_rows.append((wrong, acc(w, truth, one), acc(with_words(probs, w), truth, one),
                           acc(with_words(calibrated, w), truth, one)))

    t0 = time.perf_counter()
    M = mfcc_stats(items)
    t_mfcc = time.perf_counter() - t0
    peer = nn1(M, truth, lopo)
    loo = [(np.delete(np.arange(len(items)), i), np.array([i])) for i in range(len(items))]
    peer_loo = nn1(M, truth, loo)

    # the shipped model, in sample (it was trained on these very files)
    shipped = role_mod.get_model()
    if shipped is not None:
        in_sample = np.array([ROLES[i] for i in shipped.predict_proba(X).argmax(axis=1)])
    else:
        in_sample = None

    # the whole pipeline (audio + file names) on the demo library, with the shipped model
    # calibrated and with its temperature set to 1 (the model before calibration)
    demo_cal = demo_raw = None
    if shipped is not None:
        demo_cal = demo_library_roles(shipped)
        t_shipped = shipped.temperature
        shipped.temperature = 1.0
        try:
            demo_raw = demo_library_roles(shipped)
        finally:
            shipped.temperature = t_shipped

    # speed: the shared STFT work vs classify_role on top of it (one process, one core)
    t_spec = t_role = 0.0
    per_file = []
    for it in items:
        a = time.perf_counter()
        spec = Spectrogram(it.y, tr.SR)
        spec.magnitude, spec.log_mel, spec.onset_envelope  # noqa: B018 - shared, cached
        b = time.perf_counter()
        role_mod.classify_role(it.y, sr=tr.SR, spec=spec, kind=it.kind)
        c = time.perf_counter()
        t_spec += b - a
        t_role += c - b
        per_file.append((c - b) * 1e3)
    audio_s = sum(len(it.y) for it in items) / tr.SR
    cnn_ms = []
    if CNN:  # what the tried CNN head would add per file: its patch and its forward pass
        m = next(iter(fold_models.values()))
        for it in items:
            spec = Spectrogram(it.y, tr.SR)
            spec.log_mel  # noqa: B018 - shared with the other analyses in the pipeline
            a = time.perf_counter()
            m.cnn_proba(role_mod.role_mel_patch(it.y, sr=tr.SR, spec=spec)[None])
            cnn_ms.append((time.perf_counter() - a) * 1e3)

    # -- report -----------------------------------------------------------------------------
    n1 = int(one.sum())
    lines = [
        "# Role classification benchmark",
        "",
        f"Machine and date: {machine()}. "
        f"Script: `benchmarks/bench_role.py` (wall time {time.time() - t_start:.0f} s).",
        "",
        f"Dev set: {len(items)} `role` rows of ../shared/eval/labels.csv ({n1} one-shots, "
        f"{int(loops.sum())} loops). Accuracy on the **one-shots, from audio alone** (no file "
        "names; the kind is not given unless stated).",
        "",
        "**Folds: leave one pack out** (9 folds: LMMS, Sonic Pi, GMRockKit, TR808EmulationKit, "
        "ForzeeStereo, HardElectro1, Millo-Drums, VariBreaks, circAfrique). The held-out pack "
        "never shares a kit, pack or instrument with the training side. All methods below use "
        "these same folds.",
        "",
        "| method | one-shot accuracy |",
        "|---|---|",
        f"| **ours** (LR + 3 MLP on {len(role_mod.FEATURE_NAMES)} features; dev folds + "
        f"augmentation + {sum(s.kind == 'oneshot' for s in synth)} synthetic one-shots from "
        f"{len(sources)} GM soundfonts ({', '.join(x.stem for x in sources)}) + "
        f"{sum(s.kind == 'loop' for s in synth)} phrase loops rendered by all but FluidR3_GM "
        f"+ synthetic loops) | "
        f"**{acc(ours, truth, one):.3f}** |",
        f"| ours, kind = one-shot given (drum-loop prior) | {acc(ours_kind, truth, one):.3f} |",
    ]
    if CNN:
        lines += [
            f"| tried, not shipped: ours averaged with a small CNN on the log-mel patch (share "
            f"{tr.CNN_SHARE:g}; `train_role.py --cnn`) | {acc(ours_blend, truth, one):.3f} |",
            f"| tried: the CNN head alone (same fold models) | {acc(ours_cnn, truth, one):.3f} |"]
    lines += [
        f"| ours with FluidR3_GM as the only soundfont (ablation: no extra fonts, so no "
        f"phrase loops) | "
        f"{acc(ours_fluid, truth, one):.3f} |",
        f"| ours trained on the dev folds only (no synthetic one-shots or loops; ablation) | "
        f"{acc(ours_devonly, truth, one):.3f} |",
        f"| peer: MFCC (librosa, 20) mean+std, standardized, 1-NN | {acc(peer, truth, one):.3f} |",
        "| target (issue 2) | 0.85 |",
        "",
        "Not comparable with the above (leaky, for reference only):",
        "",
        "| method | one-shot accuracy |",
        "|---|---|",
        f"| peer MFCC 1-NN, ungrouped leave-one-file-out (sibling velocity layers and pack-mates "
        f"in training; reproduces the 0.685 quoted in issue 2) | {acc(peer_loo, truth, one):.3f} |",
    ]
    if in_sample is not None:
        lines.append(f"| **in-sample** accuracy of the shipped models/role.safetensors (trained "
                     f"on these files) | {acc(in_sample, truth, one):.3f} |")
    lines += ["", "## Per held-out pack (one-shots)", "",
              "| pack | n | ours | " + ("ours + CNN (tried) | CNN alone | " if CNN else "")
              + "ours FluidR3_GM only | ours dev-only | MFCC 1-NN |",
              "|---|---|---|" + ("---|---|" if CNN else "") + "---|---|---|"]
    for p in pack_names:
        m = one & (packs == p)
        lines.append(f"| {p} | {int(m.sum())} | {acc(ours, truth, m):.2f} | "
                     + (f"{acc(ours_blend, truth, m):.2f} | {acc(ours_cnn, truth, m):.2f} | "
                        if CNN else "")
                     + f"{acc(ours_fluid, truth, m):.2f} | "
                     f"{acc(ours_devonly, truth, m):.2f} | {acc(peer, truth, m):.2f} |")
    lines += ["", "## Per role (ours, one-shots, leave-one-pack-out)", "",
              "| role | n | recall | precision | most often mistaken for |"
              + (" recall, ours + CNN (tried) |" if CNN else ""),
              "|---|---|---|---|---|" + ("---|" if CNN else "")]
    for r in ROLES:
        m = one & (truth == r)
        if not m.any():
            continue
        npred = int(np.sum(one & (ours == r)))
        prec = np.sum(m & (ours == r)) / npred if npred else float("nan")
        wrong = collections.Counter(ours[m & (ours != r)]).most_common(3)
        lines.append(f"| {r} | {int(m.sum())} | {acc(ours, truth, m):.2f} | {prec:.2f} | "
                     + ", ".join(f"{k} {v}" for k, v in wrong) + " |"
                     + (f" {acc(ours_blend, truth, m):.2f} |" if CNN else ""))
    conf = collections.Counter((a, b) for a, b in zip(truth[one], ours[one]) if a != b)
    lines += ["", "Most frequent confusions (truth → ours): "
              + "; ".join(f"{a} → {b} {n}" for (a, b), n in conf.most_common(12)) + ".", ""]
    lines += ["## Calibration", "",
              "The ensemble's probabilities are tempered, p ∝ p_ensemble^(1/T), with T fitted "
              "(class-balanced log loss, every role weighing the same as in training) on the "
              "leave-one-pack-out probabilities; the shipped model stores "
              f"T = {shipped.temperature if shipped is not None else float('nan'):.2f} "
              f"(fitted in train_role.py; this run's fit on all folds: {t_all:.2f}). Below, "
              "each held-out pack is calibrated with T fitted on the other packs only "
              f"(T from {min(temps.values()):.2f} to {max(temps.values()):.2f}).", "",
              "| one-shots, leave-one-pack-out | raw ensemble | calibrated |", "|---|---|---|",
              f"| log loss | {nll(probs):.3f} | {nll(calibrated):.3f} |",
              f"| mean top probability (accuracy {acc(ours, truth, one):.3f}) | "
              f"{mean_conf(probs):.3f} | {mean_conf(calibrated):.3f} |", ""]
    if CNN:
        lines += [f"Tried (not shipped), ours + CNN head: raw log loss {nll(probs_blend):.3f} "
                  f"(ours {nll(probs):.3f}), accuracy {acc(ours_blend, truth, one):.3f}.", ""]
    lines += ["## With file/folder words (simulated)", "",
              "Words give the true role with name_confidence 0.8 (what names.py assigns), "
              "except that a share of the files gets a random wrong role; fused with the same "
              "leave-one-pack-out audio probabilities (calibrated per held-out pack as above) "
              "and kind. One-shot accuracy:", "",
              "| wrong words | words alone | + audio, raw ensemble | + audio, calibrated |",
              "|---|---|---|---|"]
    lines += [f"| {w:.0%} | {a:.3f} | {b:.3f} | **{c:.3f}** |" for w, a, b, c in words_rows]
    (w1, a1, b1, c1), (w2, a2, b2, c2) = words_rows
    lines += ["", f"With {w1:.0%} wrong words (the reliability names.py's 0.8 states) "
              f"calibration changes little ({b1:.3f} → {c1:.3f}). With {w2:.0%} wrong words the "
              f"raw ensemble overrules right words often enough to do {'worse' if b2 < a2 else 'no better'} "
              f"than the words alone ({b2:.3f} vs {a2:.3f}); calibrated, audio + words reach "
              f"{c2:.3f}.", ""]
    if demo_cal is not None:
        lines += ["## Demo library (whole pipeline, file names + audio)", "",
                  "`build_demo_library` into a temporary folder, every file through "
                  "`pipeline.process_file` (the file's role is its segments' most common role), "
                  "compared with demo-manifest.json; shipped model. The demo audio is "
                  "synthesized by LoopMind and was not used in training.", "",
                  "| shipped model | files right | misses |", "|---|---|---|",
                  f"| calibrated (T = {shipped.temperature:.2f}) | {demo_cal[0]}/{demo_cal[1]} | "
                  + ("; ".join(demo_cal[2]) or "none") + " |",
                  f"| same model, temperature 1 (no calibration) | {demo_raw[0]}/{demo_raw[1]} | "
                  + ("; ".join(demo_raw[2]) or "none") + " |", ""]
    lines += ["## Loops (29, leave-one-pack-out, audio alone)", "",
              f"ours {acc(ours, truth, loops):.3f}; with kind = loop given "
              f"{acc(ours_kind, truth, loops):.3f}; MFCC 1-NN {acc(peer, truth, loops):.3f}.", ""]
    lines += ["## Speed (one process, one core)", "",
              "| step | ms per audio second | ms per file (median) |", "|---|---|---|",
              f"| shared Spectrogram (STFT, log-mel, onset envelope) | "
              f"{t_spec / audio_s * 1e3:.2f} | |",
              f"| classify_role on top of it (features + model) | "
              f"{t_role / audio_s * 1e3:.2f} | {np.median(per_file):.2f} |",
              f"| peer: librosa MFCC alone | {t_mfcc / audio_s * 1e3:.2f} | |",
              ] + ([f"| tried CNN head (mel patch + numpy forward), on top | | "
                    f"{np.median(cnn_ms):.2f} |"] if CNN else []) + [
              "", f"Over {audio_s:.0f} s of audio in {len(items)} files (mean "
              f"{audio_s / len(items):.2f} s per file; short one-shots make the per-second "
              "figures dominated by per-file overhead).", ""]
    lines += ["## Notes", "",
              "* The 0.85 target is **not met** on these folds. Each fold's training side has "
              "no example of the held-out pack's conventions: holding out LMMS leaves almost no "
              "real keys/strings/guitar/lead; Sonic Pi's tabla and circAfrique's djembes/duns "
              "are labelled perc but sound like toms, snares or bass notes to a model that has "
              "never heard them; open hats vs cymbals and snares-off vs perc are conventions.",
              "* Differences of about 0.02 are noise at this data size (~400 instruments from 9 "
              "packs): while developing, equivalent variants (MLP seeds, small feature changes) "
              "scored 0.68-0.735. The four extra Debian soundfonts (TimGM6mb, MuseScore General "
              "Lite, csound's GM bank, OPL-3 FM) were kept because the gain was consistent over "
              "two sets of MLP seeds (FluidR3_GM only 0.691 / 0.683, five fonts 0.704 / 0.698 "
              "on these folds) and the class-balanced out-of-fold log loss fell (1.40 -> 1.36 / "
              "1.41 -> 1.32); the gain is small and Sonic Pi got slightly worse (see the per-pack "
              "table). Six augmented copies per dev file instead of three: 0.698 (not kept). "
              "The synthetic one-shots and loops are worth about +0.04 over training on the "
              "augmented dev folds alone (see the ablation rows).",
              "* Calibration does not change the audio-alone accuracy (the ranking is kept); it "
              "changes how often words win. A plain (not class-balanced) fit gives T of about "
              "1.3: the dev set is 80 % drums, on which the ensemble is nearly calibrated, while "
              "it is confidently wrong mostly on tonal and fx sounds.",
              "* The weakest confusions are mostly label conventions: hihat → cymbal are open "
              "and semi-open hats (ForzeeStereo's ring for up to 12 s), perc → tom are tabla "
              "'ghe' strokes and djembe/dunun bass and head hits, perc → hihat are shakers and "
              "bell mutes. No feature change for them was tried in this round.",
              "* Demo library before this change (measured once while developing, same "
              "pipeline): the previous shipped model (FluidR3_GM only, no temperature) got 58/60 "
              "(Keys/chords_Cmaj_120bpm.flac → guitar, FX/noise_sweep_01.wav → cymbal); the same "
              "model with T = 1.59 (its recipe's balanced out-of-fold fit) got 60/60.",
              "* With file/folder words (the normal case in producers' packs) the calibrated "
              "fused estimate is above either source alone (see above).", ""]
    if CNN:
        lines[-1:-1] = [
            "* Tried in this round, not shipped: a small CNN (4 conv layers, "
            f"{'-'.join(map(str, tr.CNN_CHANNELS))} channels, {tr.CNN_EPOCHS} epochs) on a 64-band "
            "log-mel patch of the first ~1.5 s, trained per fold on the same rows, averaged with "
            f"the feature heads (share {tr.CNN_SHARE:g}). Alone it reaches "
            f"{acc(ours_cnn, truth, one):.3f}; averaged in, {acc(ours_blend, truth, one):.3f} "
            f"against {acc(ours, truth, one):.3f} (within the noise above), though its raw "
            f"out-of-fold log loss is lower ({nll(probs_blend):.3f} vs {nll(probs):.3f}); see the "
            "per-pack and per-role columns. It would add time per file (see Speed), and the "
            "embedder's role block would not see it without a patch. In a scratch run of the "
            "same recipe while developing, shares 0.5 and 0.7 did worse (0.687, 0.672)."]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Find by sound: precision@10 of same-role neighbours on the dev set's one-shots.

For every one-shot of the dev set (``labels("role")``, kind one-shot, decoded with LoopMind's
decoder at 22,050 Hz), its 10 nearest other one-shots by cosine similarity; the score is the
fraction of those with the same true role, averaged over the one-shots.

* ours: ``FeatureEmbedder`` ("features"). Its timbre block uses no labels (constants from
  synthetic General MIDI sounds, ``train_embed.py``), but its role block is the role model's
  output, and the shipped role model was trained on these very files. So the headline
  computes every one-shot's vector with a role model trained **without its pack**
  (leave-one-pack-out, the folds and training recipe of ``train_role.py``, reused by import;
  each fold's temperature is fitted on the other packs' out-of-fold probabilities, as in
  ``bench_role.py``): every vector in the search is one the model made for audio it never
  heard, as in a user's library. The shipped model's in-sample figure is shown, labelled.
* peer: librosa MFCC (20 coefficients) means and standard deviations, cosine.

Also: per role and per pack, neighbours from other instruments only (Hydrogen velocity
layers of one drum are near-copies), the role-block weight, robustness of the vectors to
gain, MP3 128 kbit/s, resampling and 50 ms trims (what near-duplicate search relies on),
and speed. Writes benchmarks/results/similar.md.

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/bench_similar.py
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import train_role as tr  # noqa: E402
from benchmarks.common import labels, machine, write_result  # noqa: E402
from loopmind.index.embed import FeatureEmbedder, get_embedder  # noqa: E402
from loopmind.library.analysis.features import Spectrogram  # noqa: E402
from loopmind.library.analysis.role import ROLES, RoleModel  # noqa: E402
from loopmind.library.audio import decode  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "similar.md"
K = 10
TARGET = 0.75
EXTRA = True  # the extra Debian soundfonts, as train_role.py uses them by default


# -- metrics -------------------------------------------------------------------------------

def unit(V: np.ndarray) -> np.ndarray:
    V = np.asarray(V, dtype=np.float64)
    return V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-30)


def neighbours(V: np.ndarray, *, exclude: np.ndarray | None = None, k: int = K) -> np.ndarray:
    """Indices of the ``k`` most cosine-similar other rows of ``V``, shape (n, k).

    Args:
        exclude: optional (n, n) boolean mask of pairs that may not be neighbours.
    """
    U = unit(V)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    if exclude is not None:
        S[exclude] = -np.inf
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


def hits(nn: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per query: the fraction of its neighbours with its true role."""
    return (truth[nn] == truth[:, None]).mean(axis=1)


def mfcc_stats(ys: list[np.ndarray], sr: int) -> np.ndarray:
    import librosa

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_fft larger than a 20 ms click
        for y in ys:
            m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
            out.append(np.r_[m.mean(axis=1), m.std(axis=1)])
    return np.asarray(out)


# -- leave-one-pack-out role models ------------------------------------------------------

def fold_models(items, X, XA, synth, XS) -> dict[str, RoleModel]:
    """One role model per held-out pack, trained by ``train_role.py``'s recipe without it.

    The same training as ``train_role.grouped_cv`` (which returns only predictions), then
    each model gets the temperature fitted on the other packs' out-of-fold probabilities.
    """
    packs = np.array([it.pack for it in items])
    truth = np.array([it.truth for it in items])
    models: dict[str, RoleModel] = {}
    oof = np.zeros((len(items), len(ROLES)))
    for p in sorted(set(packs)):
        te, trn = np.flatnonzero(packs == p), np.flatnonzero(packs != p)
        EX, Ey = tr.extra_rows(items, trn, synth, XS)
        Xtr, ytr, wtr = tr.training_arrays(items, X, XA, trn, EX, Ey)
        models[p] = RoleModel(tr.fit_role_model(Xtr, ytr, wtr))
        oof[te] = models[p].predict_proba(X[te], calibrated=False)
    for p, m in models.items():
        other = packs != p
        m.temperature = tr.fit_temperature(oof[other], truth[other], weights=tr.balanced_weights(
            truth[other], np.ones(int(other.sum()))))
    return models


# -- robustness ------------------------------------------------------------------------------

def variants(path: str, y: np.ndarray, sr: int, tmp: Path) -> dict[str, np.ndarray]:
    """Copies of one file as a near-duplicate finder meets them, decoded at ``sr``."""
    import soundfile as sf
    from pedalboard.io import AudioFile
    from scipy.signal import resample_poly

    native, native_sr = sf.read(path, dtype="float32", always_2d=True)
    out = {"gain -6 dB": y * np.float32(10 ** (-6 / 20))}
    mp3 = tmp / "v.mp3"
    with AudioFile(str(mp3), "w", native_sr, native.shape[1], quality="128k") as f:
        f.write(native.T)
    out["MP3 128 kbit/s"] = decode(str(mp3), sr=sr).y
    wav = tmp / "v.wav"
    g = np.gcd(int(native_sr), 48000)
    sf.write(str(wav), resample_poly(native, 48000 // g, int(native_sr) // g, axis=0), 48000,
             subtype="PCM_16")
    out["resampled to 48 kHz (file)"] = decode(str(wav), sr=sr).y
    n50 = int(round(0.05 * sr))
    out["tail cut by 50 ms"] = y[:-n50] if len(y) > 2 * n50 else y[: len(y) // 2]
    out["head cut by 50 ms"] = y[n50:] if len(y) > 2 * n50 else y[len(y) // 2:]
    return out


# -- main -----------------------------------------------------------------------------------

def main() -> int:
    t_start = time.time()
    sr = tr.SR
    items = tr.load_dev_set()  # every "role" row, decoded with loopmind's decode at 22,050 Hz
    sources = tr.synthetic_sources(EXTRA)
    synth = tr.render_all(sources)
    X = tr.features(items)
    XA = tr.augmented_features(items)
    XS = tr.features(synth)
    one = np.flatnonzero([it.kind == "oneshot" for it in items])
    O = [items[i] for i in one]
    truth = np.array([it.truth for it in O])
    packs = np.array([it.pack for it in O])
    inst = np.array([it.instrument for it in O])
    same_inst = inst[:, None] == inst[None, :]
    n = len(O)

    shipped = FeatureEmbedder()
    feats = [shipped.features(it.y, sr=sr) for it in O]
    FR = np.array([f[0] for f in feats])
    FE = np.array([f[1] for f in feats])

    models = fold_models(items, X, XA, synth, XS)

    # headline: each one-shot embedded by the role model that never heard its pack
    V_oop = np.zeros((n, shipped.dim), np.float32)
    for p, m in models.items():
        sel = packs == p
        V_oop[sel] = FeatureEmbedder(role_model=m).from_features(FR[sel], FE[sel])
    nn_oop = neighbours(V_oop)
    h_oop = hits(nn_oop, truth)
    h_oop_x = hits(neighbours(V_oop, exclude=same_inst), truth)

    # variant: the held-out pack's queries against everything, all embedded by the fold model
    # (the other packs' vectors are then in-sample for that model)
    h_mixed = np.zeros(n)
    for p, m in models.items():
        V = FeatureEmbedder(role_model=m).from_features(FR, FE)
        sel = packs == p
        h_mixed[sel] = hits(neighbours(V), truth)[sel]

    V_in = shipped.from_features(FR, FE)                        # in-sample (leaky)
    h_in = hits(neighbours(V_in), truth)
    V_tim = FeatureEmbedder(role_model=None).from_features(FR, FE)  # no labels anywhere
    h_tim = hits(neighbours(V_tim), truth)
    h_tim_x = hits(neighbours(V_tim, exclude=same_inst), truth)
    P_oop = V_oop[:, -len(ROLES):] / shipped.role_weight  # sqrt of the out-of-pack posteriors
    h_role = hits(neighbours(P_oop), truth)
    weight_rows = []
    for w in (0.0, 0.5, 1.0, 1.5, 2.0, 4.0):
        V = np.zeros_like(V_oop)
        for p, m in models.items():
            sel = packs == p
            V[sel] = FeatureEmbedder(role_model=m, role_weight=w).from_features(FR[sel], FE[sel])
        weight_rows.append((w, float(hits(neighbours(V), truth).mean())))

    t0 = time.process_time()
    M = mfcc_stats([it.y for it in O], sr)
    t_mfcc = time.process_time() - t0
    h_mfcc = hits(neighbours(M), truth)
    h_mfcc_x = hits(neighbours(M, exclude=same_inst), truth)

    # robustness of the shipped vectors: is the original the variant's nearest one-shot?
    rob = collections.defaultdict(lambda: {"cos": [], "top1": [], "top5": [], "top20": [],
                                           "mcos": [], "mtop1": []})
    U_in, U_m = unit(V_in), unit(M)
    with tempfile.TemporaryDirectory() as tmpdir:
        for i, it in enumerate(O):
            for name, yv in variants(str(tr.AUDIO_DIR / it.path), it.y, sr,
                                     Path(tmpdir)).items():
                v = shipped.embed(yv, sr=sr).astype(np.float64)
                s = U_in @ v
                rank = int(np.sum(s > s[i]))
                r = rob[name]
                r["cos"].append(s[i])
                r["top1"].append(rank == 0)
                r["top5"].append(rank < 5)
                r["top20"].append(rank < 20)
                mv = unit(mfcc_stats([yv], sr))[0]
                ms = U_m @ mv
                r["mcos"].append(ms[i])
                r["mtop1"].append(int(np.sum(ms > ms[i])) == 0)
    # resampling inside the embedder (a caller passing 44.1 kHz audio)
    from scipy.signal import resample_poly
    cos_sr = [float(unit(shipped.embed(resample_poly(it.y, 2, 1).astype(np.float32),
                                       sr=2 * sr)[None])[0] @ U_in[i])
              for i, it in enumerate(O[:100])]

    # speed: CPU time of this process (the machine may be busy with other work), the whole
    # embed and embed given the pipeline's shared Spectrogram
    clock = time.process_time
    emb = get_embedder("features")
    emb.embed(O[0].y, sr=sr)  # load constants and the role model outside the timing
    t_full = t_shared = 0.0
    per_file = []
    for it in O:
        a = clock()
        emb.embed(it.y, sr=sr)
        b = clock()
        spec = Spectrogram(it.y, sr)
        spec.magnitude, spec.log_mel, spec.onset_envelope  # noqa: B018 - shared, cached
        c = clock()
        emb.embed(it.y, sr=sr, spec=spec)
        d = clock()
        t_full += b - a
        t_shared += d - c
        per_file.append((b - a) * 1e3)
    audio_s = sum(len(it.y) for it in O) / sr
    loop_rows = labels("bpm")[:24]
    loops = [decode(r["abspath"], sr=sr).y for r in loop_rows]
    a = clock()
    for y in loops:
        emb.embed(y, sr=sr)
    t_loops = clock() - a
    loops_s = sum(len(y) for y in loops) / sr

    # -- report -----------------------------------------------------------------------------
    ours, peer = float(h_oop.mean()), float(h_mfcc.mean())
    verdict = "met" if ours >= TARGET else "**not met**"
    pack_names = sorted(set(packs))
    lines = [
        "# Find by sound: same-role neighbours", "",
        f"Machine and date: {machine()}. Script: `benchmarks/bench_similar.py` (wall time "
        f"{time.time() - t_start:.0f} s). Embedder: `features`, version `{shipped.version}`, "
        f"{shipped.dim} numbers.", "",
        f"Dev set: the {n} one-shots of the `role` rows of ../shared/eval/labels.csv, decoded "
        f"with `loopmind.library.audio.decode` at {sr} Hz. For each one-shot, its {K} nearest "
        "other one-shots by cosine; precision@10 = the share with the same true role, averaged "
        "over the one-shots.", "",
        "**Leave one pack out** for anything learned from roles: every one-shot's vector is "
        "made with a role model trained (recipe of `train_role.py`) without its pack "
        f"({len(pack_names)} packs: {', '.join(pack_names)}), so no vector in the search comes "
        "from a model that heard that audio — as in a user's library. The timbre block's "
        "constants come from synthetic General MIDI sounds only (`train_embed.py`).", "",
        "| method | precision@10 |", "|---|---|",
        f"| **ours** (`features`: standardized timbre block + role block, leave-one-pack-out) "
        f"| **{ours:.3f}** |",
        f"| peer: MFCC (librosa, 20) mean + std, cosine | {peer:.3f} |",
        f"| ratio ours / peer | {ours / peer:.2f} |",
        f"| target (issue 3) | {TARGET:.2f} ({verdict}) |", "",
        "Other views (same one-shots):", "",
        "| method | precision@10 |", "|---|---|",
        f"| ours, timbre block only (nothing learned from labels; no folds needed) | "
        f"{h_tim.mean():.3f} |",
        f"| ours, role block only (leave-one-pack-out posteriors) | {h_role.mean():.3f} |",
        f"| ours, neighbours from other instruments only (no velocity layers of the same drum) "
        f"| {h_oop_x.mean():.3f} |",
        f"| ours timbre only, other instruments only | {h_tim_x.mean():.3f} |",
        f"| peer MFCC, other instruments only | {h_mfcc_x.mean():.3f} |",
        f"| ours, held-out pack's queries against all one-shots embedded by the same fold "
        f"model (the other packs' vectors are in-sample for it) | {h_mixed.mean():.3f} |",
        f"| **in-sample**: shipped role model (trained on these files; NOT a generalization "
        f"figure) | {h_in.mean():.3f} |", "",
        "## Per role", "",
        "Ceiling: a role with m one-shots can reach at most min(m − 1, 10) / 10.", "",
        "| role | n | ours | timbre only | MFCC | ceiling |", "|---|---|---|---|---|---|",
    ]
    for r in ROLES:
        m = truth == r
        if m.any():
            lines.append(f"| {r} | {int(m.sum())} | {h_oop[m].mean():.2f} | "
                         f"{h_tim[m].mean():.2f} | {h_mfcc[m].mean():.2f} | "
                         f"{min(int(m.sum()) - 1, K) / K:.1f} |")
    ceiling = float(np.mean([min(int((truth == t).sum()) - 1, K) / K for t in truth]))
    lines += ["", f"Ceiling over all one-shots: {ceiling:.3f}.", "",
              "## Per pack (queries from the pack; neighbours from all packs)", "",
              "| pack | n | ours | MFCC |", "|---|---|---|---|"]
    for p in pack_names:
        m = packs == p
        lines.append(f"| {p} | {int(m.sum())} | {h_oop[m].mean():.2f} | "
                     f"{h_mfcc[m].mean():.2f} |")
    lines += ["", "## Weight of the role block", "",
              "`ROLE_WEIGHT` scales the role block (norm 1) against the timbre block (norm about "
              "1). Leave-one-pack-out precision@10; 0 is the timbre block alone. The shipped "
              "weight (1) was chosen looking at this table, on this dev set.", "",
              "| role weight | precision@10 |", "|---|---|"]
    lines += [f"| {w:g} | {v:.3f} |" for w, v in weight_rows]
    lines += ["", "## Robustness (for near-duplicate search)", "",
              "Each one-shot re-made as below and embedded with the shipped `features` embedder; "
              "cosine to the original's vector, and whether the original is the variant's "
              f"nearest (top-1) or among its 5 or 20 nearest of all {n} one-shots. MP3: the "
              "source file encoded with LAME at 128 kbit/s (pedalboard) and decoded by "
              "LoopMind; resampled: the source file resampled to 48 kHz, written as 16-bit WAV, "
              "decoded.", "",
              "| variant | mean cosine | min cosine | top-1 | top-5 | top-20 | MFCC mean cosine "
              "| MFCC top-1 |", "|---|---|---|---|---|---|---|---|"]
    for name, r in rob.items():
        lines.append(f"| {name} | {np.mean(r['cos']):.3f} | {np.min(r['cos']):.3f} | "
                     f"{np.mean(r['top1']):.2f} | {np.mean(r['top5']):.2f} | "
                     f"{np.mean(r['top20']):.2f} | "
                     f"{np.mean(r['mcos']):.3f} | {np.mean(r['mtop1']):.2f} |")
    lines += ["", f"Audio handed to `embed` at 44.1 kHz (resampled inside): mean cosine "
              f"{np.mean(cos_sr):.4f} to the 22.05 kHz vector (first 100 one-shots).",
              "Velocity layers of one Hydrogen drum are near-copies of each other, so a "
              "variant's nearest one-shot can be a sibling layer; top-5 shows how close it is. "
              "Cutting 50 ms off the head removes the attack (half of a short hat), so that copy "
              "is a different sound to these features: a near-duplicate finder that uses this "
              "vector for candidates should take the 20 or more nearest, or leading-trim "
              "copies to its fingerprint alone.",
              "", "## Speed (CPU time of one process)", "",
              "| step | ms per audio second | ms per file (median) |", "|---|---|---|",
              f"| `embed` on the one-shots, Spectrogram made inside | "
              f"{t_full / audio_s * 1e3:.2f} | {np.median(per_file):.2f} |",
              f"| `embed` given the pipeline's shared Spectrogram | "
              f"{t_shared / audio_s * 1e3:.2f} | |",
              f"| `embed` on {len(loops)} dev-set loops ({loops_s:.0f} s, Spectrogram inside) | "
              f"{t_loops / loops_s * 1e3:.2f} | |",
              f"| peer: librosa MFCC alone | {t_mfcc / audio_s * 1e3:.2f} | |", "",
              f"One-shots: {audio_s:.0f} s of audio in {n} files (mean {audio_s / n:.2f} s, so "
              "per-file overhead dominates their per-second figure). Budget: well under 5 ms "
              "per audio second.", ""]
    drums = np.isin(truth, ["kick", "snare", "hihat", "cymbal", "tom"])
    tonal = np.isin(truth, ["bass", "keys", "pad", "lead", "strings", "guitar", "vocal", "fx"])
    oop_pred = np.array([ROLES[int(np.argmax(v))] for v in P_oop])
    conf = collections.Counter((truth[i], truth[j]) for i in range(n) for j in nn_oop[i]
                               if truth[i] != truth[j])
    lines += ["## Notes", "",
              "* Most frequent wrong-role neighbours (query role → neighbour role, counted over "
              "all 10 neighbours): " + "; ".join(f"{a} → {b} {c}" for (a, b), c in
                                                 conf.most_common(10)) + ".",
              f"* What limits the figure: the drum roles (kick, snare, hihat, cymbal, tom; "
              f"{int(drums.sum())} one-shots) find their own kind ({h_oop[drums].mean():.2f}); "
              f"the tonal and fx one-shots ({int(tonal.sum())}) score "
              f"{h_oop[tonal].mean():.2f}: each of their roles has few members (a role with 10 "
              f"one-shots is a needle among {n}), and the role model, which has heard few real "
              "tonal samples, names them right on a pack it has not heard only "
              f"{np.mean(oop_pred[tonal] == truth[tonal]):.2f} of the time (drums: "
              f"{np.mean(oop_pred[drums] == truth[drums]):.2f}); perc "
              f"({int((truth == 'perc').sum())}, {h_oop[truth == 'perc'].mean():.2f}) is a "
              "catch-all (tabla, djembe, shakers, cowbells) whose members sound like toms, "
              "snares and hats.",
              "* Variants tried while developing (on these folds), none more than about 0.005 "
              "above the shipped design and several 0.01-0.04 below: clipping at ±2/3/6, a "
              "robust (median/IQR) or quantile scaling, Fisher-weighted features, dropping any "
              "one feature group, an LDA projection or a logistic-regression/MLP posterior "
              "(roles, or 123 General MIDI sound classes) trained on the synthetic sounds only, "
              "a spectro-temporal mel thumbnail, raw vs calibrated probabilities and powers "
              "0.25-1 of them. The figure seems limited by what the features and the role model "
              "can tell apart on unheard packs, not by how the blocks are combined.",
              "* The role block makes the vectors depend on `models/role.safetensors`: "
              "retraining it changes `FeatureEmbedder.version`, and stored vectors must be "
              "recomputed.", ""]
    write_result(OUT, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Find by sound, exploration: variants of the "features" embedder on the folds of bench_similar.

Not a benchmark of shipped code: it measures candidate changes to ``FeatureEmbedder`` with
the metric and leave-one-pack-out (LOPO) folds of ``bench_similar.py`` (precision@10 of
same-role neighbours over the dev set's one-shots), so the next change can start from
measured numbers. Every variant that learns from dev labels is trained per fold without the
held-out pack; variants trained on synthetic General MIDI renders only need no folds.

Variants:

* the shipped design (timbre block + role block of the LOPO role models), as the baseline;
* an LDA projection of the timbre block trained on the synthetic one-shots, appended;
* a second role posterior, a logistic regression on all 147 timbre features (dev one-shots
  of the other packs + synthetic one-shots, class-balanced), averaged with the role model's;
* a small log-mel CNN (4 conv blocks, 64 mel bands x the first 64 frames = 1.5 s after the
  sound starts, trained with cross-entropy on roles), its 96-number pooled embedding
  appended to the vector: trained on synthetic one-shots only, and per fold on the other
  packs' dev one-shots + synthetic. The embedding is centred on the mean embedding of the
  model's own synthetic training patches (a constant a shipped model could carry).

torch is needed (the venv has it). About 30 minutes on 2 busy cores. Writes
benchmarks/results/similar_explore.md.

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/explore_similar.py
"""

from __future__ import annotations

import collections
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_similar as bs  # noqa: E402
from benchmarks import train_role as tr  # noqa: E402
from benchmarks.common import machine, write_result  # noqa: E402
from loopmind.index.embed import FeatureEmbedder, _sound_start, load_constants  # noqa: E402
from loopmind.library.analysis.features import Spectrogram  # noqa: E402
from loopmind.library.analysis.role import ROLES  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "similar_explore.md"
N_FRAMES = 64          # 64 hops of 512 samples at 22,050 Hz: the first 1.5 s of the sound
CNN_EPOCHS = 15
SEED = 440


def log_mel_patch(y: np.ndarray, sr: int) -> np.ndarray:
    """The first 1.5 s of a sound as a log-mel patch in [0, 1], shape (64, N_FRAMES).

    0 dB re the patch's loudest bin maps to 1, -80 dB and below to 0; leading silence is
    skipped, as in ``FeatureEmbedder``.
    """
    y = y[_sound_start(y):]
    if len(y) < 2048:
        y = np.r_[y, np.zeros(2048 - len(y), np.float32)]
    lm = Spectrogram(y, sr).log_mel[:, :N_FRAMES]
    lm = np.maximum(lm - lm.max(), -80.0) / 80.0 + 1.0
    out = np.zeros((64, N_FRAMES), np.float32)
    out[:, : lm.shape[1]] = lm
    return out


def balanced_sampling(yi: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Sampling probabilities that give every class the same total weight (each item's
    weight ``w`` divided by its class's total, normalized)."""
    tot = collections.defaultdict(float)
    for c, wi in zip(yi, w):
        tot[c] += wi
    p = np.array([wi / tot[c] for c, wi in zip(yi, w)])
    return p / p.sum()


def train_cnn(X: np.ndarray, y: np.ndarray, base_w: np.ndarray, classes: list[str], *,
              epochs: int = CNN_EPOCHS, seed: int = SEED):
    """A small CNN on log-mel patches (n, 64, N_FRAMES), class-balanced sampling.

    Augmentation per batch: a shift of -3..3 mel bands, a delay of 0-3 frames and a random
    spectral tilt. Returns the trained module (eval mode).
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    class Net(nn.Module):
        def __init__(self, n_classes: int, d: int = 48):
            super().__init__()

            def block(i, o):
                return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o),
                                     nn.ReLU(), nn.MaxPool2d(2))

            self.f = nn.Sequential(block(1, 16), block(16, 24), block(24, 32), block(32, d))
            self.head = nn.Linear(2 * d, n_classes)

        def emb(self, x):
            h = self.f(x[:, None])
            return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], 1)

        def forward(self, x):
            return self.head(torch.dropout(self.emb(x), 0.3, self.training))

    yi = np.array([classes.index(c) for c in y])
    p = balanced_sampling(yi, base_w)
    net = Net(len(classes))
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-3)
    Xt, Yt = torch.tensor(X), torch.tensor(yi)
    ramp = torch.linspace(-1, 1, 64)[None, :, None]
    for _ in range(epochs):
        net.train()
        idx = rng.choice(len(Xt), len(Xt), p=p)
        for b in range(0, len(idx), 64):
            j = idx[b: b + 64]
            xb = torch.roll(Xt[j], int(rng.integers(-3, 4)), 1)
            delay = int(rng.integers(0, 4))
            if delay:
                xb = torch.cat([torch.zeros(len(j), 64, delay), xb[:, :, :-delay]], 2)
            tilt = torch.tensor(rng.uniform(-0.1, 0.1, (len(j), 1, 1)), dtype=torch.float32)
            xb = torch.clamp(xb + tilt * ramp * (xb > 0), 0, 1)
            loss = nn.functional.cross_entropy(net(xb), Yt[j], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    return net


def cnn_embed(net, X: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net.emb(torch.tensor(X)).numpy().astype(np.float64)


def main() -> int:
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    t_start = time.time()
    sr = tr.SR
    items = tr.load_dev_set()
    synth = tr.render_all(tr.synthetic_sources(bs.EXTRA), phrases=False)
    X = tr.features(items)
    XA = tr.augmented_features(items)
    XS = tr.features(synth)
    O = [it for it in items if it.kind == "oneshot"]
    truth = np.array([it.truth for it in O])
    packs = np.array([it.pack for it in O])
    inst = np.array([it.instrument for it in O])
    struth = np.array([s.truth for s in synth])
    layers = collections.Counter(inst)
    pack_names = sorted(set(packs))

    shipped = FeatureEmbedder()
    f_dev = [shipped.features(it.y, sr=sr) for it in O]
    f_syn = [shipped.features(s.y, sr=sr) for s in synth]
    F = np.array([np.r_[a, b] for a, b in f_dev])
    FS = np.array([np.r_[a, b] for a, b in f_syn])
    mean, scale = load_constants()

    def timbre(f):
        return np.clip((f - mean) / scale, -4, 4) / np.sqrt(f.shape[1])

    T, TS = timbre(F), timbre(FS)
    models = bs.fold_models(items, X, XA, synth, XS)
    P = np.zeros((len(O), len(ROLES)))
    for p, m in models.items():
        P[packs == p] = m.predict_proba(F[packs == p, : X.shape[1]])
    R = np.sqrt(P)

    rows: list[tuple[str, np.ndarray]] = []

    def score(name, V):
        h = bs.hits(bs.neighbours(V), truth)
        rows.append((name, h))
        print(f"{name}: {h.mean():.4f} ({time.time() - t_start:.0f} s)", flush=True)

    score("shipped design: timbre + role block (LOPO role models)", np.c_[T, R])
    score("timbre block only", T)

    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression

    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.5).fit(TS, struth)
    L = lda.transform(T)
    L /= np.linalg.norm(lda.transform(TS), axis=1).mean()
    score("+ 0.5 x LDA of the timbre block (synthetic only)", np.c_[T, 0.5 * L, R])

    # a second role posterior on all 147 timbre features, per fold
    Q = np.zeros_like(P)
    for p in pack_names:
        te, trn = packs == p, packs != p
        Xf = np.r_[T[trn], TS] * np.sqrt(T.shape[1])
        yf = np.r_[truth[trn], struth]
        w = tr.balanced_weights(yf, np.r_[[1.0 / layers[u] for u in inst[trn]],
                                          np.ones(len(TS))])
        lr = LogisticRegression(C=0.03, max_iter=2000).fit(Xf, yf, sample_weight=w)
        pr = lr.predict_proba(T[te] * np.sqrt(T.shape[1]))
        for j, c in enumerate(lr.classes_):
            Q[te, ROLES.index(c)] = pr[:, j]
    score("role block = sqrt of (role model + LR on 147 features) / 2 (LOPO)",
          np.c_[T, np.sqrt((P + Q) / 2)])

    PD = np.array([log_mel_patch(it.y, sr) for it in O])
    PS = np.array([log_mel_patch(s.y, sr) for s in synth])
    classes = sorted(set(struth) | set(truth))
    net = train_cnn(PS, struth, np.ones(len(PS)), classes)
    c0 = cnn_embed(net, PS).mean(axis=0)
    E_syn = bs.unit(cnn_embed(net, PD) - c0)
    for a in (0.5, 1.0):
        score(f"+ {a:g} x log-mel CNN embedding (synthetic only)", np.c_[T, a * E_syn, R])
    E = np.zeros((len(O), E_syn.shape[1]))
    for p in pack_names:
        te, trn = packs == p, packs != p
        bw = np.r_[[1.0 / layers[u] for u in inst[trn]], np.ones(len(PS))]
        net = train_cnn(np.r_[PD[trn], PS], np.r_[truth[trn], struth], bw, classes)
        E[te] = bs.unit(cnn_embed(net, PD[te]) - cnn_embed(net, PS).mean(axis=0))
        print(f"  CNN fold {p} ({time.time() - t_start:.0f} s)", flush=True)
    score("log-mel CNN embedding alone (LOPO: other packs + synthetic)", E)
    for a in (0.5, 0.75, 1.0):
        score(f"+ {a:g} x log-mel CNN embedding (LOPO)", np.c_[T, a * E, R])

    lines = ["# Find by sound: exploration of embedder variants", "",
             f"Machine and date: {machine()}. Script: `benchmarks/explore_similar.py` (wall "
             f"time {time.time() - t_start:.0f} s). Same one-shots ({len(O)}), metric "
             "(precision@10 of same-role neighbours, cosine) and leave-one-pack-out role "
             "models as `bench_similar.py`; the shipped design's row is its headline "
             "recomputed. None of these variants is shipped. Weights (0.5, 0.75, 1) were looked "
             "at on this dev set, so the best row is optimistic by the choice among them.", "",
             "| variant | precision@10 | " + " | ".join(
                 r for r in ROLES if (truth == r).sum() >= 10) + " |",
             "|---|---|" + "---|" * sum((truth == r).sum() >= 10 for r in ROLES)]
    for name, h in rows:
        per = " | ".join(f"{h[truth == r].mean():.2f}" for r in ROLES if (truth == r).sum() >= 10)
        lines.append(f"| {name} | {h.mean():.3f} | {per} |")
    lines += ["", "Roles with fewer than 10 one-shots are left out of the per-role columns "
              "(they count in the overall figure).", ""]
    write_result(OUT, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

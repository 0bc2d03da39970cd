"""Find by sound, exploration 2: metric learning and re-ranking on the folds of bench_similar.

Not a benchmark of shipped code, and nothing here is shipped: it measures candidate changes
to ``FeatureEmbedder`` with the metric of ``bench_similar.py`` (precision@10 of same-role
neighbours, cosine, over the dev set's 527 one-shots) and its leave-one-pack-out (LOPO) role
models, after ``explore_similar.py`` (LDA, a second posterior, a log-mel CNN).

Variants (one fixed setting each, chosen before looking at the dev set, unless a row says
otherwise):

* re-ranking without labels, on the shipped design's vectors: CSLS hubness correction
  (k = 5, 10, 20), average query expansion and database-side augmentation (m = 3, 5, 10);
* a role posterior from a similarity-weighted kNN vote over labelled one-shots (the other
  packs' dev one-shots, with or without the synthetic General MIDI ones; k = 10, 30), mixed
  into or appended to the role block (LOPO, so the posterior means the same in every fold);
* metric learning: a soft-kNN (NCA-style) loss over class-balanced batches of 512, on the
  147 standardized timbre features (plus Gaussian noise 0.1), cosine / temperature 0.1,
  AdamW with a one-cycle schedule, 3000 steps; a linear map (147 -> 64) or a one-hidden-layer
  MLP (256 ReLU units, dropout 0.2, -> 64), outputs L2-normalized:
  - trained on the synthetic one-shots and 2 augmented copies of each (one model; no
    folds needed), alone and appended to the shipped vector;
  - per fold, on the synthetic rows plus the other packs' dev one-shots and 3 augmented
    copies of each (velocity layers of an instrument weigh as one sample, dev and synthetic
    rows the same total). A fold model makes its own space, so it is shown three ways:
    "mixed" (the held-out pack's queries against all one-shots embedded by that fold model;
    the other packs' vectors are then in-sample for it, so the figure is optimistic; the
    shipped design's mixed figure is given beside it), "assembled" (each pack embedded by
    its own fold model, as the headline does for the role block; spaces of different fold
    models are not strictly comparable) and as a kNN role posterior in the fold's learned
    space (k = 30), which means the same in every fold and so is a plain LOPO figure.

torch (CPU) is needed. About 20 minutes on one core. Decoded features are cached in
``$LOOPMIND_EXPLORE_CACHE`` (default /tmp/loopmind-explore2). Writes
benchmarks/results/similar_explore2.md.

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/explore_similar2.py
"""

from __future__ import annotations

import collections
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_similar as bs  # noqa: E402
from benchmarks import train_role as tr  # noqa: E402
from benchmarks.common import machine, write_result  # noqa: E402
from benchmarks.explore_similar import balanced_sampling  # noqa: E402
from loopmind.index.embed import FeatureEmbedder, load_constants  # noqa: E402
from loopmind.library.analysis.role import ROLES  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "similar_explore2.md"
CACHE = Path(os.environ.get("LOOPMIND_EXPLORE_CACHE", "/tmp/loopmind-explore2"))
SEED = 440
READING = "## Reading (written by hand)"


# -- data ------------------------------------------------------------------------------------

def build_data() -> dict:
    """Features of the dev one-shots and the synthetic ones (and augmented copies), and the
    LOPO role models' probabilities for every one-shot (cached)."""
    path = CACHE / "data.pkl"
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    sr = tr.SR
    items = tr.load_dev_set()
    synth = tr.render_all(tr.synthetic_sources(bs.EXTRA), phrases=False)
    X, XA, XS = tr.features(items), tr.augmented_features(items), tr.features(synth)
    O = [it for it in items if it.kind == "oneshot"]
    emb = FeatureEmbedder(role_model=None)

    def f147(y):
        a, b = emb.features(y, sr=sr)
        return np.r_[a, b]

    rng = np.random.default_rng(SEED)
    d = {"F": np.array([f147(it.y) for it in O]),
         "FS": np.array([f147(s.y) for s in synth]),
         "FA": np.array([[f147(tr.augment(it.y, rng)) for _ in range(3)] for it in O]),
         "FSA": np.array([[f147(tr.augment(s.y, rng)) for _ in range(2)] for s in synth]),
         "truth": np.array([it.truth for it in O]), "packs": np.array([it.pack for it in O]),
         "inst": np.array([it.instrument for it in O]),
         "struth": np.array([s.truth for s in synth])}
    models = bs.fold_models(items, X, XA, synth, XS)
    d["Pfold"] = {p: m.predict_proba(d["F"][:, :X.shape[1]].astype(np.float32))
                  for p, m in models.items()}
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(d, fh)
    return d


# -- metric learning -------------------------------------------------------------------------

def train_metric(X: np.ndarray, y: np.ndarray, w: np.ndarray, *, linear: bool = False,
                 steps: int = 3000, bs_: int = 512, tau: float = 0.1, lr: float = 2e-3,
                 noise: float = 0.1, seed: int = 0):
    """A map of standardized features (n, 147) to unit vectors (n, 64) whose cosine
    neighbours share a role: soft-kNN (NCA) loss, class-balanced sampling by ``w``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes = sorted(set(y))
    yi = np.array([classes.index(c) for c in y])
    p = balanced_sampling(yi, w)
    f = nn.Linear(X.shape[1], 64, bias=False) if linear else nn.Sequential(
        nn.Linear(X.shape[1], 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 64))
    opt = torch.optim.AdamW(f.parameters(), lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    Xt, Yt = torch.tensor(X, dtype=torch.float32), torch.tensor(yi)
    eye = torch.eye(bs_, dtype=torch.bool)
    for _ in range(steps):
        j = torch.as_tensor(rng.choice(len(Xt), bs_, p=p))
        e = nn.functional.normalize(f(Xt[j] + noise * torch.randn(bs_, X.shape[1])), dim=1)
        logp = (e @ e.T / tau).masked_fill(eye, -1e9).log_softmax(dim=1)
        same = (Yt[j][:, None] == Yt[j][None, :]) & ~eye
        pos = torch.logsumexp(logp.masked_fill(~same, -1e9), dim=1)
        loss = -pos[same.any(dim=1)].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    f.eval()

    def embed(Z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return nn.functional.normalize(f(torch.tensor(Z, dtype=torch.float32)),
                                           dim=1).numpy().astype(np.float64)

    return embed


def knn_posterior(Q: np.ndarray, D: np.ndarray, labels: np.ndarray, w: np.ndarray, *,
                  k: int, tau: float) -> np.ndarray:
    """Role probabilities (n, 16) of unit rows ``Q`` from a vote of their ``k`` most
    cosine-similar unit rows of ``D`` (weights ``w`` * exp(similarity / tau))."""
    yi = np.array([ROLES.index(c) for c in labels])
    S = Q @ D.T
    nn_ = np.argsort(-S, axis=1)[:, :k]
    out = np.zeros((len(Q), len(ROLES)))
    for a in range(len(Q)):
        s = S[a, nn_[a]]
        np.add.at(out[a], yi[nn_[a]], np.exp((s - s.max()) / tau) * w[nn_[a]])
    return out / out.sum(axis=1, keepdims=True)


# -- main ------------------------------------------------------------------------------------

def main() -> int:
    import torch

    torch.set_num_threads(1)
    t_start = time.time()
    d = build_data()
    truth, packs, inst, struth = d["truth"], d["packs"], d["inst"], d["struth"]
    pack_names = sorted(set(packs))
    layers = collections.Counter(inst)
    mean, scale = load_constants()

    def z(f):
        return np.clip((f - mean) / scale, -4, 4)

    Z, ZS = z(d["F"]), z(d["FS"])
    ZA, ZSA = z(d["FA"]), z(d["FSA"])
    T, TS = Z / np.sqrt(Z.shape[1]), ZS / np.sqrt(Z.shape[1])
    P = np.zeros((len(Z), len(ROLES)))
    for p in pack_names:
        P[packs == p] = d["Pfold"][p][packs == p]
    R = np.sqrt(P)
    U, US = bs.unit(T), bs.unit(TS)
    w_dev = np.array([1.0 / layers[u] for u in inst])

    rows: list[tuple[str, np.ndarray]] = []

    def add(name: str, h: np.ndarray) -> None:
        rows.append((name, h))
        print(f"{h.mean():.4f} {name} ({time.time() - t_start:.0f} s)", flush=True)

    def from_sims(S: np.ndarray) -> np.ndarray:
        S = S.copy()
        np.fill_diagonal(S, -np.inf)
        nn_ = np.argsort(-S, axis=1, kind="stable")[:, :bs.K]
        return bs.hits(nn_, truth)

    V0 = bs.unit(np.c_[T, R])
    S0 = V0 @ V0.T
    add("shipped design: timbre + role block (LOPO)", from_sims(S0))
    add("timbre block only", from_sims(U @ U.T))

    # re-ranking without labels
    S0d = S0.copy()
    np.fill_diagonal(S0d, -np.inf)
    srt = -np.sort(-S0d, axis=1)
    for k in (5, 10, 20):
        r = srt[:, :k].mean(axis=1)
        add(f"CSLS hubness correction, k = {k}", from_sims(2 * S0 - r[:, None] - r[None, :]))
    order = np.argsort(-S0d, axis=1)
    for m in (3, 5, 10):
        Qv = bs.unit(V0 + V0[order[:, :m]].mean(axis=1))
        add(f"average query expansion, m = {m}", from_sims(Qv @ V0.T))
        add(f"query expansion + database-side augmentation, m = {m}", from_sims(Qv @ Qv.T))

    # kNN vote posteriors over labelled one-shots (LOPO)
    for k in (10, 30):
        for with_synth in (True, False):
            Q = np.zeros_like(P)
            for p in pack_names:
                te, trn = packs == p, packs != p
                D, lab, w = U[trn], truth[trn], w_dev[trn]
                if with_synth:
                    D, lab, w = np.r_[D, US], np.r_[lab, struth], np.r_[w, np.ones(len(US))]
                Q[te] = knn_posterior(U[te], D, lab, w, k=k, tau=0.05)
            src = "other packs + synthetic" if with_synth else "other packs"
            acc = np.mean(np.array(ROLES)[Q.argmax(axis=1)] == truth)
            add(f"role block sqrt((P + Q_kNN) / 2), kNN k = {k} over {src} (kNN accuracy "
                f"{acc:.2f})", from_sims(bs.unit(np.c_[T, np.sqrt((P + Q) / 2)]) @
                                         bs.unit(np.c_[T, np.sqrt((P + Q) / 2)]).T))
            V = bs.unit(np.c_[T, R, np.sqrt(Q)])
            add(f"+ sqrt(Q_kNN) appended, kNN k = {k} over {src}", from_sims(V @ V.T))

    # metric learning on synthetic one-shots only: one model, no folds
    Xs = np.r_[ZS, ZSA[:, 0], ZSA[:, 1]]
    ys = np.r_[struth, struth, struth]
    ws = np.ones(len(ys))
    for linear in (False, True):
        kind = "linear" if linear else "MLP"
        G = train_metric(Xs, ys, ws, linear=linear)(Z)
        add(f"NCA {kind} embedding alone (synthetic only)", from_sims(G @ G.T))
        for a in (0.5, 1.0) if not linear else (0.5,):
            V = bs.unit(np.c_[T, a * G, R])
            add(f"shipped + {a:g} x NCA {kind} embedding (synthetic only)", from_sims(V @ V.T))

    # metric learning per fold: other packs' dev one-shots + synthetic
    G_fold, GS_fold = {}, {}
    for p in pack_names:
        trn = np.flatnonzero(packs != p)
        Xd = np.concatenate([Z[trn]] + [ZA[trn, k] for k in range(ZA.shape[1])])
        yd = np.tile(truth[trn], 1 + ZA.shape[1])
        wd = np.tile(w_dev[trn], 1 + ZA.shape[1])
        wd = wd * (len(ys) / wd.sum())
        emb = train_metric(np.r_[Xs, Xd], np.r_[ys, yd], np.r_[ws, wd])
        G_fold[p], GS_fold[p] = emb(Z), emb(ZS)
        print(f"  fold {p} ({time.time() - t_start:.0f} s)", flush=True)

    mixed = collections.defaultdict(lambda: np.zeros(len(Z)))
    for p in pack_names:
        te = packs == p
        Rp = np.sqrt(d["Pfold"][p])
        for name, V in (("shipped design", np.c_[T, Rp]),
                        ("NCA MLP embedding alone", G_fold[p]),
                        ("NCA MLP embedding + role block", np.c_[G_fold[p], Rp]),
                        ("shipped + 1 x NCA MLP embedding", np.c_[T, G_fold[p], Rp]),
                        ("shipped + 0.5 x NCA MLP embedding", np.c_[T, .5 * G_fold[p], Rp])):
            V = bs.unit(V)
            mixed[name][te] = from_sims(V @ V.T)[te]
    for name, h in mixed.items():
        add(f"MIXED view (optimistic): {name}, per fold", h)
    Ga = np.zeros((len(Z), 64))
    for p in pack_names:
        Ga[packs == p] = G_fold[p][packs == p]
    add("ASSEMBLED (cross-fold spaces): NCA MLP embedding alone", from_sims(Ga @ Ga.T))
    V = bs.unit(np.c_[T, .5 * Ga, R])
    add("ASSEMBLED (cross-fold spaces): shipped + 0.5 x NCA MLP embedding", from_sims(V @ V.T))
    Q = np.zeros_like(P)
    for p in pack_names:
        te, trn = packs == p, packs != p
        D = np.r_[G_fold[p][trn], GS_fold[p]]
        Q[te] = knn_posterior(G_fold[p][te], D, np.r_[truth[trn], struth],
                              np.r_[w_dev[trn], np.ones(len(ZS))], k=30, tau=0.1)
    acc = np.mean(np.array(ROLES)[Q.argmax(axis=1)] == truth)
    V = bs.unit(np.c_[T, np.sqrt((P + Q) / 2)])
    add(f"role block sqrt((P + Q) / 2), Q = kNN k = 30 in the fold's NCA space (kNN accuracy "
        f"{acc:.2f})", from_sims(V @ V.T))
    V = bs.unit(np.c_[T, R, np.sqrt(Q)])
    add("+ sqrt(Q) appended, Q = kNN k = 30 in the fold's NCA space", from_sims(V @ V.T))

    big = [r for r in ROLES if (truth == r).sum() >= 10]
    lines = ["# Find by sound: exploration 2 (metric learning, re-ranking)", "",
             f"Machine and date: {machine()}. Script: `benchmarks/explore_similar2.py` (wall "
             f"time {time.time() - t_start:.0f} s, one core). Same one-shots ({len(Z)}), metric "
             "(precision@10 of same-role neighbours, cosine) and leave-one-pack-out role "
             "models as `bench_similar.py` (target 0.75). None of these variants is shipped. "
             "Each row is one fixed setting; where a row belongs to a small family (k, m, "
             "weights), every member is listed, and picking the best of a family on this "
             "dev set would inflate it. MIXED rows are optimistic by construction (see the "
             "script's docstring); compare them with the shipped design's MIXED row only.", "",
             "| variant | precision@10 | " + " | ".join(big) + " | lmms | sonicpi |",
             "|---|---|" + "---|" * (len(big) + 2)]
    for name, h in rows:
        per = " | ".join(f"{h[truth == r].mean():.2f}" for r in big)
        lines.append(f"| {name} | {h.mean():.3f} | {per} | {h[packs == 'lmms'].mean():.2f} | "
                     f"{h[packs == 'sonicpi'].mean():.2f} |")
    lines += ["", "Roles with fewer than 10 one-shots are left out of the per-role columns "
              "(they count in the overall figure).", ""]
    # the reading of the figures is written by hand below the table; a re-run keeps it
    if OUT.exists() and READING in OUT.read_text():
        lines.append(OUT.read_text()[OUT.read_text().index(READING):].rstrip("\n") + "\n")
    write_result(OUT, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

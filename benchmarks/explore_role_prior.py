"""Role, exploration: adapting the role model's class prior to the library (EM).

Not a benchmark of shipped code, and nothing here is shipped. The role model is trained
class-balanced, while a producer's folder has its own role mix (a drum kit has no pads). The
EM re-estimation of Saerens, Latinne and Decaestecker (2002, "Adjusting the outputs of a
classifier to new a priori probabilities") estimates that mix from the model's own
probabilities on the library, with no labels, and re-weights them. This measures it on the
leave-one-pack-out probabilities of ``train_role.py``'s recipe (the folds of
``bench_role.py``), with each held-out pack as the library and with the whole dev set as one
library; probabilities raw (temperature 1) and tempered as shipped (1.43), the prior ratio
applied whole (alpha 1) or as its square root (alpha 0.5). One-shot accuracy.

    python benchmarks/explore_role_prior.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import train_role as tr  # noqa: E402
from benchmarks.common import machine, write_result  # noqa: E402
from loopmind.library.analysis.role import ROLES  # noqa: E402


def temper(P: np.ndarray, t: float) -> np.ndarray:
    L = np.log(np.maximum(P, 1e-12)) / t
    L -= L.max(axis=1, keepdims=True)
    Q = np.exp(L)
    return Q / Q.sum(axis=1, keepdims=True)


def em_prior(P: np.ndarray, *, alpha: float = 1.0, iters: int = 100,
             floor: float = 1e-3) -> np.ndarray:
    """Posteriors re-weighted by the EM estimate of the library's prior (training prior
    uniform)."""
    k = P.shape[1]
    pi = np.full(k, 1.0 / k)
    for _ in range(iters):
        Q = P * (pi * k) ** alpha
        Q /= Q.sum(axis=1, keepdims=True)
        new = np.maximum(Q.mean(axis=0), floor)
        new /= new.sum()
        done = np.abs(new - pi).max() < 1e-6
        pi = new
        if done:
            break
    Q = P * (pi * k) ** alpha
    return Q / Q.sum(axis=1, keepdims=True)


def main() -> int:
    t0 = time.time()
    items = tr.load_dev_set()
    synth = tr.render_all(tr.synthetic_sources(True))
    X = tr.features(items)
    XA = tr.augmented_features(items, signals=tr.augmented_signals(items))
    XS = tr.features(synth)
    _, P = tr.grouped_cv(items, X, XA, synth, XS, return_proba=True)
    T = np.array([ROLES.index(it.truth) for it in items])
    packs = np.array([it.pack for it in items])
    one = np.array([it.kind == "oneshot" for it in items])
    names = sorted(set(packs))

    def acc(Q, mask):
        return float((Q.argmax(axis=1) == T)[mask].mean())

    lines = ["# Role, exploration: the library's class prior by EM", "",
             f"Machine and date: {machine()}. Script: `benchmarks/explore_role_prior.py`. "
             f"{int(one.sum())} one-shots, leave-one-pack-out probabilities of the "
             "`train_role.py` recipe. Nothing here is shipped.", "",
             "| probabilities | prior ratio | no adaptation | each pack its own library | "
             "whole dev set one library | " + " | ".join(names) + " |",
             "|---|---|---|---|---|" + "---|" * len(names)]
    for t in (1.0, 1.43):
        Pt = temper(P, t)
        for alpha in (1.0, 0.5):
            Q = np.zeros_like(Pt)
            for p in names:
                m = packs == p
                Q[m] = em_prior(Pt[m], alpha=alpha)
            whole = em_prior(Pt, alpha=alpha)
            per = " | ".join(f"{acc(Pt, (packs == p) & one):.2f} -> "
                             f"{acc(Q, (packs == p) & one):.2f}" for p in names)
            lines.append(f"| T = {t:g} | alpha {alpha:g} | {acc(Pt, one):.3f} | "
                         f"{acc(Q, one):.3f} | {acc(whole, one):.3f} | {per} |")
    lines += ["", f"Run time {time.time() - t0:.0f} s."]
    write_result(str(Path(__file__).parent / "results" / "role_prior_explore.md"),
                 "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

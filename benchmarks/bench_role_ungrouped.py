"""Role accuracy on the dev one-shots with files (not packs) held out: ungrouped random 10-fold.

The protocol under which the issue's MFCC 1-NN figure (0.685) is reproduced: sibling velocity
layers and pack-mates are on the training side, so this is NOT a generalization figure (the
leave-one-pack-out one in ``bench_role.py`` is). ``train_role.py``'s recipe per fold; the peer
(MFCC mean+std, standardized, 1-NN) on the same folds and leave-one-file-out. Prints one line
(about 20 minutes on 2 loaded cores).

    python benchmarks/bench_role_ungrouped.py
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import train_role as tr
from benchmarks import bench_similar as bs
from loopmind.library.analysis.role import ROLES, RoleModel
t0 = time.time()
items = tr.load_dev_set(); synth = tr.render_all(tr.synthetic_sources(True))
X = tr.features(items); XA = tr.augmented_features(items); XS = tr.features(synth)
one = np.array([it.kind == "oneshot" for it in items]); truth = np.array([it.truth for it in items])
rng = np.random.default_rng(0)
fold = rng.permutation(len(items)) % 10
pred = np.empty(len(items), dtype=object)
for f in range(10):
    te = np.flatnonzero(fold == f); trn = np.flatnonzero(fold != f)
    EX, Ey = tr.extra_rows(items, trn, synth, XS)
    Xtr, ytr, wtr = tr.training_arrays(items, X, XA, trn, EX, Ey)
    m = RoleModel(tr.fit_role_model(Xtr, ytr, wtr))
    pred[te] = [ROLES[i] for i in m.predict_proba(X[te]).argmax(axis=1)]
    print("fold", f, round(time.time() - t0), flush=True)
acc = float(np.mean(pred[one] == truth[one]))
# the peer, same folds: MFCC mean+std 1-NN (standardized on the training side), and ungrouped leave-one-file-out
O = np.flatnonzero(one)
M = bs.mfcc_stats([items[i].y for i in O], tr.SR)
t1 = truth[O]; fo = fold[O]
Z = (M - M.mean(0)) / (M.std(0) + 1e-9)
D = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
np.fill_diagonal(D, np.inf)
lofo = float(np.mean(t1[D.argmin(1)] == t1))
D2 = D.copy(); D2[fo[:, None] == fo[None, :]] = np.inf
kf = float(np.mean(t1[D2.argmin(1)] == t1))
print(f"ours ungrouped 10-fold one-shots {acc:.3f} (n={one.sum()}); peer 1-NN same 10 folds {kf:.3f}; peer 1-NN leave-one-file-out {lofo:.3f}; {time.time()-t0:.0f}s")

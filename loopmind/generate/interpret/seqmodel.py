"""Sequence models over slice tokens: a small GRU trained at generation time, or a Markov
chain when the pool is too small to train one.

Both learn from ``PoolModel.sequences()`` (one token sequence per loop, each opened by a
``<bos:role>`` token) and give the same sampling interface, ``Sampler``: ``start(role)``,
``probs()`` (next-token distribution over the vocabulary) and ``push(token)``.

The GRU is trained with a fixed seed derived from the pool (not the song's seed), so the same
pool always trains the same model and the cache holds one model per pool; the song's seed
drives sampling only. Training stops at the wall-clock budget (by default 30 s) or when the
loss stops improving, whichever comes first, and reports progress through a callback. The
weights are cached as safetensors with a JSON header (version, vocabulary, sizes); a cached
model of another version, vocabulary or shape is refused and retrained.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# bump whenever the architecture, the tokens or the training change
MODEL_VERSION = 2
MIN_TOKENS_FOR_GRU = 64
DEFAULT_BUDGET_S = 30.0
EMBED_DIM = 32
HIDDEN_DIM = 64
MAX_EPOCHS = 400
SEQ_CHUNK = 128
PATIENCE = 12  # passes without improvement on the held-out chunks before stopping
TRAIN_THREADS = 1

Progress = Callable[[str, float], None]


def bos(role: str) -> str:
    return f"<bos:{role}>"


def training_sequences(sequences: list[list[str]]) -> list[list[str]]:
    """Each sequence opened with its role's BOS token."""
    return [[bos(seq[0].split(":", 1)[0]), *seq] for seq in sequences if seq]


def build_vocab(sequences: list[list[str]]) -> list[str]:
    return sorted({t for seq in training_sequences(sequences) for t in seq})


# -- Markov fallback ---------------------------------------------------------------------------

class MarkovModel:
    """Interpolated n-gram model (order 3 by default) with Dirichlet backoff.

    p(w | h) = (c(h, w) + beta * p(w | h')) / (c(h) + beta), h' the shorter history, down to
    a unigram smoothed over the vocabulary.
    """

    kind = "markov"

    def __init__(self, sequences: list[list[str]], *, order: int = 3, beta: float = 1.0):
        self.order = order
        self.beta = beta
        self.vocab = build_vocab(sequences)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.counts: dict[tuple[int, ...], Counter] = defaultdict(Counter)
        for seq in training_sequences(sequences):
            ids = [self.index[t] for t in seq]
            for i in range(1, len(ids)):
                for n in range(0, order):
                    if i - n < 0:
                        break
                    self.counts[tuple(ids[i - n:i])][ids[i]] += 1
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def dist(self, history: tuple[int, ...]) -> np.ndarray:
        history = history[-(self.order - 1):] if self.order > 1 else ()
        if history in self._cache:
            return self._cache[history]
        if not history:
            c = self.counts.get((), Counter())
            p = np.full(len(self.vocab), 0.1)
            for w, n in c.items():
                p[w] += n
            p /= p.sum()
        else:
            lower = self.dist(history[1:])
            c = self.counts.get(history)
            if not c:
                p = lower
            else:
                total = sum(c.values())
                p = self.beta * lower
                for w, n in c.items():
                    p[w] = p[w] + n
                p = p / (total + self.beta)
        self._cache[history] = p
        return p

    def log_likelihood(self, sequences: list[list[str]]) -> tuple[float, int]:
        """Summed natural-log probability of ``sequences`` and the number of tokens scored
        (a token outside the vocabulary scores 1e-6 and is left out of the history)."""
        total, n = 0.0, 0
        for seq in training_sequences(sequences):
            hist: list[int] = []
            for i, t in enumerate(seq):
                w = self.index.get(t)
                if i > 0:
                    p = self.dist(tuple(hist))[w] if w is not None else 1e-6
                    total += math.log(max(float(p), 1e-12))
                    n += 1
                if w is not None:
                    hist.append(w)
        return total, n

    def sampler(self) -> "Sampler":
        return _MarkovSampler(self)


# -- the GRU -----------------------------------------------------------------------------------

@dataclass
class GRUModel:
    """A trained token GRU and what it was trained on."""

    vocab: list[str]
    state: dict  # name -> torch tensor
    epochs: int
    train_s: float
    loss: float
    stopped_by_budget: bool = False
    from_cache: bool = False
    kind: str = "gru"
    _net: object = field(default=None, repr=False)

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.vocab)}

    def net(self):
        if self._net is None:
            net = _make_net(len(self.vocab))
            net.load_state_dict(self.state)
            net.eval()
            self._net = net
        return self._net

    def sampler(self) -> "Sampler":
        return _GRUSampler(self)

    def log_likelihood(self, sequences: list[list[str]]) -> tuple[float, int]:
        """Summed natural-log probability of ``sequences`` (unknown tokens get 1e-6)."""
        import torch

        idx = self.index
        total, n = 0.0, 0
        net = self.net()
        with torch.no_grad():
            for seq in training_sequences(sequences):
                ids = [idx.get(t, -1) for t in seq]
                inp = torch.tensor([[max(i, 0) for i in ids[:-1]]])
                logp = torch.log_softmax(net(inp)[0], dim=-1)
                for k, w in enumerate(ids[1:]):
                    total += float(logp[k, w]) if w >= 0 else math.log(1e-6)
                    n += 1
        return total, n


def _make_net(vocab_size: int):
    from torch import nn

    class TokenGRU(nn.Module):
        def __init__(self, v: int):
            super().__init__()
            self.emb = nn.Embedding(v, EMBED_DIM)
            self.gru = nn.GRU(EMBED_DIM, HIDDEN_DIM, batch_first=True)
            self.out = nn.Linear(HIDDEN_DIM, v)

        def forward(self, x, h=None, *, return_state: bool = False):
            z, h = self.gru(self.emb(x), h)
            logits = self.out(z)
            return (logits, h) if return_state else logits

    return TokenGRU(vocab_size)


def _expected_shapes(vocab_size: int) -> dict[str, tuple[int, ...]]:
    return {"emb.weight": (vocab_size, EMBED_DIM),
            "gru.weight_ih_l0": (3 * HIDDEN_DIM, EMBED_DIM),
            "gru.weight_hh_l0": (3 * HIDDEN_DIM, HIDDEN_DIM),
            "gru.bias_ih_l0": (3 * HIDDEN_DIM,), "gru.bias_hh_l0": (3 * HIDDEN_DIM,),
            "out.weight": (vocab_size, HIDDEN_DIM), "out.bias": (vocab_size,)}


def _seed_of(key: str) -> int:
    return int(hashlib.sha256(f"interpret-gru/{key}".encode()).hexdigest()[:8], 16)


def train_gru(sequences: list[list[str]], *, pool_key: str = "", budget_s: float = DEFAULT_BUDGET_S,
              max_epochs: int = MAX_EPOCHS,
              on_progress: Progress | None = None) -> GRUModel:
    """Train the token GRU on a pool's sequences within a wall-clock budget.

    Args:
        sequences: token sequences (``PoolModel.sequences()``).
        pool_key: seeds the initial weights and batch order (same pool, same model).
        budget_s: stop after this many seconds of training.
        max_epochs: stop after this many passes.
        on_progress: called with ("training", fraction done).
    """
    import torch
    from torch import nn

    vocab = build_vocab(sequences)
    idx = {t: i for i, t in enumerate(vocab)}
    chunks: list[list[int]] = []
    for seq in training_sequences(sequences):
        ids = [idx[t] for t in seq]
        for a in range(0, max(1, len(ids) - 1), SEQ_CHUNK):
            part = ids[a:a + SEQ_CHUNK + 1]
            if len(part) >= 2:
                chunks.append(part)
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)  # one thread: the same bits on every run
    try:
        # the initial weights and the batch order come from the pool, not the song's seed
        torch.manual_seed(_seed_of(pool_key))
        rng = np.random.default_rng(_seed_of(pool_key))
        net = _make_net(len(vocab))
        for p in net.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            else:
                nn.init.zeros_(p)
        opt = torch.optim.Adam(net.parameters(), lr=5e-3)
        lossf = nn.CrossEntropyLoss(ignore_index=-1)
        maxlen = max(len(c) for c in chunks)
        inp = torch.full((len(chunks), maxlen - 1), 0, dtype=torch.long)
        tgt = torch.full((len(chunks), maxlen - 1), -1, dtype=torch.long)
        for i, c in enumerate(chunks):
            inp[i, :len(c) - 1] = torch.tensor(c[:-1])
            tgt[i, :len(c) - 1] = torch.tensor(c[1:])
        # every sixth chunk is held out: training stops when it stops improving, so the
        # model learns the pool's habits rather than reciting its loops
        val = np.arange(len(chunks)) % 6 == 5 if len(chunks) >= 8 else np.zeros(len(chunks), bool)
        train_idx = np.flatnonzero(~val)
        val_idx = torch.from_numpy(np.flatnonzero(val))
        batch = 32
        t0 = time.perf_counter()
        best, stale, epochs, last = float("inf"), 0, 0, float("inf")
        best_state = None
        by_budget = False
        for epoch in range(max_epochs):
            order = train_idx[rng.permutation(len(train_idx))]
            total, count = 0.0, 0
            net.train()
            for a in range(0, len(order), batch):
                sel = torch.from_numpy(order[a:a + batch])
                opt.zero_grad()
                logits = net(inp[sel])
                loss = lossf(logits.reshape(-1, len(vocab)), tgt[sel].reshape(-1))
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                k = int((tgt[sel] >= 0).sum())
                total += float(loss.detach()) * k
                count += k
            epochs = epoch + 1
            last = total / max(1, count)
            if len(val_idx):
                net.eval()
                with torch.no_grad():
                    score = float(lossf(net(inp[val_idx]).reshape(-1, len(vocab)),
                                        tgt[val_idx].reshape(-1)))
            else:
                score = last
            elapsed = time.perf_counter() - t0
            if on_progress:
                on_progress("training", min(1.0, max(epochs / max_epochs, elapsed / budget_s)))
            if score < best - 1e-3:
                best, stale = score, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
            if stale >= PATIENCE:
                break
            if elapsed >= budget_s:
                by_budget = True
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        if on_progress:
            on_progress("training", 1.0)
        net.eval()
        state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
        m = GRUModel(vocab=vocab, state=state, epochs=epochs,
                     train_s=time.perf_counter() - t0, loss=best if best_state else last,
                     stopped_by_budget=by_budget)
        m._net = net
        return m
    finally:
        torch.set_num_threads(threads)


def model_path(cache_dir: Path, pool_key: str) -> Path:
    return Path(cache_dir) / "interpret" / f"model-{pool_key}.safetensors"


def save_model(model: GRUModel, path: Path) -> None:
    """Write the weights and a JSON header (version, vocabulary, sizes) atomically."""
    from safetensors.torch import save

    from loopmind.fileio import atomic_write

    meta = {"loopmind": json.dumps({"format": "loopmind.interpret-gru", "version": MODEL_VERSION,
                                    "vocab": model.vocab, "embed_dim": EMBED_DIM,
                                    "hidden_dim": HIDDEN_DIM, "epochs": model.epochs,
                                    "train_s": round(model.train_s, 3),
                                    "loss": round(model.loss, 5),
                                    "stopped_by_budget": model.stopped_by_budget})}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, save(model.state, metadata=meta), fsync=False)


def load_model(path: Path, vocab: list[str]) -> tuple[GRUModel | None, str | None]:
    """A cached model for ``vocab``, or (None, why it was refused; None if there is none)."""
    from safetensors import safe_open

    if not path.exists():
        return None, None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("loopmind", "{}"))
            if meta.get("version") != MODEL_VERSION:
                return None, (f"cached sequence model is version {meta.get('version')}, this "
                              f"is {MODEL_VERSION}: retrained")
            if meta.get("vocab") != vocab:
                return None, "cached sequence model has another vocabulary: retrained"
            want = _expected_shapes(len(vocab))
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - a corrupt file is retrained, never trusted
        return None, f"cached sequence model is unreadable ({type(exc).__name__}): retrained"
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    if shapes != want:
        return None, "cached sequence model has another shape: retrained"
    with suppress(OSError):
        os.utime(path)  # used: the interpret cache's size cap removes the least recent first
    return GRUModel(vocab=vocab, state=state, epochs=int(meta.get("epochs", 0)),
                    train_s=float(meta.get("train_s", 0.0)), loss=float(meta.get("loss", 0.0)),
                    stopped_by_budget=bool(meta.get("stopped_by_budget")),
                    from_cache=True), None


def fit_model(sequences: list[list[str]], *, pool_key: str, cache_dir: Path | None,
              budget_s: float = DEFAULT_BUDGET_S, on_progress: Progress | None = None,
              min_tokens: int = MIN_TOKENS_FOR_GRU):
    """The pool's sequence model: a cached or freshly trained GRU, or the Markov fallback.

    Returns:
        (model, notes): a ``GRUModel`` or ``MarkovModel``, and what was decided.
    """
    notes: list[str] = []
    n_tokens = sum(len(s) for s in sequences)
    if n_tokens < min_tokens:
        notes.append(f"the pool has only {n_tokens} slice tokens (fewer than {min_tokens}): "
                     "a Markov chain orders the slices instead of the trained model")
        return MarkovModel(sequences), notes
    vocab = build_vocab(sequences)
    path = model_path(cache_dir, pool_key) if cache_dir is not None else None
    if path is not None:
        model, why = load_model(path, vocab)
        if model is not None:
            return model, notes
        if why:
            notes.append(why)
    model = train_gru(sequences, pool_key=pool_key, budget_s=budget_s, on_progress=on_progress)
    if model.stopped_by_budget:
        notes.append(f"sequence model training stopped at the {budget_s:g} s budget after "
                     f"{model.epochs} passes")
    if path is not None:
        try:
            save_model(model, path)
        except OSError as exc:
            log.warning("cannot cache the sequence model at %s: %s", path, exc)
    return model, notes


# -- sampling ----------------------------------------------------------------------------------

class Sampler:
    """Next-token distributions for one stream of tokens."""

    vocab: list[str]
    index: dict[str, int]

    def start(self, role: str) -> None:
        raise NotImplementedError

    def probs(self) -> np.ndarray:
        raise NotImplementedError

    def push(self, tok: str) -> None:
        raise NotImplementedError


class _MarkovSampler(Sampler):
    def __init__(self, model: MarkovModel):
        self.m = model
        self.vocab = model.vocab
        self.index = model.index
        self.hist: list[int] = []

    def start(self, role: str) -> None:
        self.hist = [self.index[bos(role)]] if bos(role) in self.index else []

    def probs(self) -> np.ndarray:
        return self.m.dist(tuple(self.hist[-(self.m.order - 1):]))

    def push(self, tok: str) -> None:
        self.hist.append(self.index[tok])


class _GRUSampler(Sampler):
    def __init__(self, model: GRUModel):
        self.m = model
        self.vocab = model.vocab
        self.index = model.index
        self.h = None
        self._p: np.ndarray | None = None

    def _feed(self, i: int) -> None:
        import torch

        with torch.no_grad():
            logits, self.h = self.m.net()(torch.tensor([[i]]), self.h, return_state=True)
            p = torch.softmax(logits[0, -1].double(), dim=-1).numpy()
        self._p = p / p.sum()

    def start(self, role: str) -> None:
        self.h = None
        self._feed(self.index[bos(role)])

    def probs(self) -> np.ndarray:
        return self._p

    def push(self, tok: str) -> None:
        self._feed(self.index[tok])

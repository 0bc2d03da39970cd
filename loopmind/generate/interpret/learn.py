"""What the pool plays, per role: rhythm on the 16th grid, which slice follows which, melodic
intervals and harmony.

Slices of one role are grouped by timbre (k-means, deterministic), and every loop becomes a
sequence of tokens ``<role>:<cluster>:<step in bar>`` with a bar-line token ``<role>:|`` at
each bar line: the sequence model and the Markov fallback learn from these, so a token says
both which kind of sound plays and where in the bar. The statistics here also drive the
parts directly: onset probabilities per step and whole observed bar patterns for drums (per
drum: kick, snare and hihat slices of drum loops are told apart by their spectrum), the
intervals between successive notes of melodic loops and the chord roots (as scale degrees of
the loop's key) of the pitched material.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from loopmind.generate.interpret.slices import (CHORD_ROLES, PITCHED_ROLES, STEPS_PER_BAR,
                                                Slice, SliceBank)

MAX_CLUSTERS = 6
BAR = "|"


def bar_token(role: str) -> str:
    return f"{role}:{BAR}"


def token(role: str, cluster: int, pos: int) -> str:
    return f"{role}:{cluster}:{pos}"


def parse_token(tok: str) -> tuple[str, int | None, int | None]:
    """(role, cluster, step in bar); cluster and step are None for a bar line."""
    role, rest = tok.split(":", 1)
    if rest == BAR:
        return role, None, None
    c, p = rest.split(":")
    return role, int(c), int(p)


@dataclass
class RoleStats:
    """What one role's slices say.

    Attributes:
        role: the role.
        slices: the role's slices (bank order).
        clusters: cluster label per slice, shape (len(slices),).
        n_clusters: number of timbre clusters.
        onset_prob: per 16th step of a bar, the share of loop bars with an onset there.
        bar_patterns: observed bars as 16-tuples of 0/1 (distinct, most frequent first).
        transitions: (n_clusters, n_clusters) counts of cluster i followed by cluster j.
        intervals: semitone steps between successive pitched slices of a loop (|i| <= 12).
        degrees: chord roots (or note pitch classes) relative to the loop's tonic, weighted by
            length in steps.
        lengths: note lengths in steps.
        pitch_lo, pitch_hi: the pitched slices' range (MIDI), None when none is pitched.
        sequences: token sequences, one per loop (bar lines included).
    """

    role: str
    slices: list[Slice]
    clusters: np.ndarray
    n_clusters: int
    onset_prob: np.ndarray = field(default_factory=lambda: np.zeros(STEPS_PER_BAR))
    bar_patterns: list[tuple[int, ...]] = field(default_factory=list)
    transitions: np.ndarray | None = None
    intervals: Counter = field(default_factory=Counter)
    degrees: Counter = field(default_factory=Counter)
    lengths: Counter = field(default_factory=Counter)
    pitch_lo: float | None = None
    pitch_hi: float | None = None
    sequences: list[list[str]] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return sum(len(s) for s in self.sequences)

    def cluster_of(self, s: Slice) -> int:
        return int(self.clusters[self.slices.index(s)])


@dataclass
class PoolModel:
    """Everything learned from a bank: per-role statistics and per-drum rhythm."""

    roles: dict[str, RoleStats]
    drums: dict[str, RoleStats]  # kick | snare | hihat -> rhythm of that drum in drum loops
    key: str

    def sequences(self) -> list[list[str]]:
        return [seq for r in sorted(self.roles) for seq in self.roles[r].sequences]


def kmeans(x: np.ndarray, k: int, *, iterations: int = 25) -> np.ndarray:
    """Deterministic k-means (farthest-point start from the first row).

    Args:
        x: shape (n, d).
        k: clusters wanted (at most n).

    Returns:
        labels, shape (n,), int; cluster 0 holds the first row.
    """
    n = len(x)
    k = max(1, min(k, n))
    centres = [x[0]]
    d = np.linalg.norm(x - x[0], axis=1)
    for _ in range(1, k):
        i = int(np.argmax(d))
        if d[i] <= 1e-9:
            break
        centres.append(x[i])
        d = np.minimum(d, np.linalg.norm(x - x[i], axis=1))
    c = np.array(centres)
    labels = np.zeros(n, dtype=int)
    for _ in range(iterations):
        dist = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        new = np.argmin(dist, axis=1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        for j in range(len(c)):
            if (labels == j).any():
                c[j] = x[labels == j].mean(axis=0)
    # renumber by first appearance so labels do not depend on centre order
    order = {}
    for lab in labels:
        order.setdefault(int(lab), len(order))
    return np.array([order[int(v)] for v in labels], dtype=int)


def _cluster(slices: list[Slice]) -> tuple[np.ndarray, int]:
    if not slices:
        return np.zeros(0, dtype=int), 0
    x = np.array([s.timbre for s in slices], dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        return np.zeros(len(slices), dtype=int), 1
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    k = int(np.clip(round(np.sqrt(len(slices) / 3)), 1, MAX_CLUSTERS))
    labels = kmeans(x, k)
    return labels, int(labels.max()) + 1


def _tonic(key: str | None) -> int | None:
    from loopmind.library.analysis.key import KEYS, parse_key

    k = parse_key(key or "")
    return None if k is None else KEYS.index(k) % 12


def _rhythm(groups: dict[int, list[Slice]],
            loop_steps: dict[int, int]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Onset probability per step and distinct bar patterns.

    Args:
        groups: loop (segment id) -> its slices that count as onsets.
        loop_steps: loop -> its length in steps (a loop without onsets counts empty bars).
    """
    counts = np.zeros(STEPS_PER_BAR)
    n_bars = 0
    patterns: Counter = Counter()
    for item_id, total in loop_steps.items():
        bars = max(1, total // STEPS_PER_BAR)
        grid = np.zeros((bars, STEPS_PER_BAR), dtype=int)
        for s in groups.get(item_id, ()):
            if s.step is not None and s.step < bars * STEPS_PER_BAR:
                grid[s.step // STEPS_PER_BAR, s.step % STEPS_PER_BAR] = 1
        counts += grid.sum(axis=0)
        n_bars += bars
        for row in grid:
            if row.any():
                patterns[tuple(int(v) for v in row)] += 1
    prob = counts / max(1, n_bars)
    return prob, [p for p, _ in sorted(patterns.items(), key=lambda kv: (-kv[1], kv[0]))]


def learn(bank: SliceBank, pool=None) -> PoolModel:
    """Per-role statistics and token sequences of a slice bank.

    Args:
        bank: the pool's slices (``slices.slice_pool``).
        pool: the pool, for the loops' keys (harmony is learned relative to the key).
    """
    keys = {it.id: it.key for it in pool.items} if pool is not None else {}
    roles: dict[str, RoleStats] = {}
    for role in bank.roles():
        ss = bank.by_role(role)
        labels, k = _cluster(ss)
        st = RoleStats(role=role, slices=ss, clusters=labels, n_clusters=k)
        st.transitions = np.zeros((max(k, 1), max(k, 1)))
        groups: dict[int, list[Slice]] = {}
        for s, lab in zip(ss, labels):
            if s.kind == "loop":
                groups.setdefault(s.item_id, []).append(s)
        steps_of = {i: g[0].loop_steps or STEPS_PER_BAR for i, g in groups.items()}
        st.onset_prob, st.bar_patterns = _rhythm(groups, steps_of)
        pitched = [s.pitch for s in ss if s.pitch is not None]
        if pitched:
            st.pitch_lo, st.pitch_hi = float(min(pitched)), float(max(pitched))
        label_of = {id(s): int(lab) for s, lab in zip(ss, labels)}
        for item_id, group in groups.items():
            group.sort(key=lambda s: s.step)
            seq: list[str] = []
            total = group[0].loop_steps or STEPS_PER_BAR
            bar = -1
            for s in group:
                while bar < s.step // STEPS_PER_BAR:
                    seq.append(bar_token(role))
                    bar += 1
                seq.append(token(role, label_of[id(s)], s.step % STEPS_PER_BAR))
            while bar < total // STEPS_PER_BAR - 1:
                seq.append(bar_token(role))
                bar += 1
            st.sequences.append(seq)
            for a, b in zip(group, group[1:]):
                st.transitions[label_of[id(a)], label_of[id(b)]] += 1
                if a.pitch is not None and b.pitch is not None:
                    iv = int(round(b.pitch - a.pitch))
                    if abs(iv) <= 12:
                        st.intervals[iv] += 1
            for s in group:
                st.lengths[int(s.length or 1)] += 1
        if role in PITCHED_ROLES:
            for s in ss:
                tonic = _tonic(keys.get(s.item_id))
                if tonic is None:
                    continue
                weight = s.length or 4
                if role in CHORD_ROLES and s.chord is not None:
                    st.degrees[(s.chord[0] - tonic) % 12] += weight
                elif s.pitch is not None:
                    st.degrees[int(round(s.pitch - tonic)) % 12] += weight
        roles[role] = st
    drums: dict[str, RoleStats] = {}
    loops = [s for s in bank.slices if s.role == "drumloop" and s.kind == "loop"]
    steps_of = {s.item_id: s.loop_steps or STEPS_PER_BAR for s in loops}
    for cls in ("kick", "snare", "hihat"):
        ss = [s for s in loops if s.drum_class == cls]
        groups = {}
        for s in ss:
            groups.setdefault(s.item_id, []).append(s)
        prob, patterns = _rhythm(groups, steps_of)
        drums[cls] = RoleStats(role=cls, slices=ss, clusters=np.zeros(len(ss), dtype=int),
                               n_clusters=1 if ss else 0, onset_prob=prob,
                               bar_patterns=patterns)
    return PoolModel(roles=roles, drums=drums, key=bank.key)


"""Duplicates: byte-identical files by content hash, near duplicates by a sound fingerprint.

A near duplicate is the same recording in another file: re-encoded (MP3), gain-changed,
trimmed at either end, or resampled. Every segment gets a ``fingerprint`` when it is indexed:
its band-energy contour (23 bands of the shared mel spectrogram, 43 frames/s, smoothed and
decimated in time for segments longer than 2 s so it stays under 2 KB), relative to its
loudest cell and quantized to 1/3 dB over 80 dB.

``similarity`` compares two fingerprints: the contours are aligned by a lag search over
whole and quarter frames (covering trims of up to ``MAX_TRIM_S``), the gain difference is
taken out, and what remains is the mean level difference in dB where the sound is. Three
things keep a copy close to its original while another sound stays apart:

* cells are compared above the higher of the two floors (a copy that lost a loud attack to a
  trim resolves its tail further down) and weighted by loudness, globally and relative to
  their frame's loudest band, where an encoder hides its noise;
* a cell may differ by half its curvature in time without cost: the STFT power of a transient
  is too coarsely sampled for a shift by part of a frame to be interpolated, and the
  curvature bounds that error while a smooth decay keeps no slack;
* frames whose analysis window reached past the start or end of one sound but not the other
  are left out.

A copy differs from its original by hundredths of a dB; another velocity layer of the same
drum, or other bars of the same groove, by tenths to several dB. ``find_duplicates`` groups a
library: exact groups from SQL, near groups from candidate pairs (the vector index's nearest
neighbours, or similar durations and contours when there is no index) verified with
``similarity`` and joined with union-find.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

FORMAT = 1
_HEADER = struct.Struct("<BBBHI")  # format, bands, log2 pool, frames, duration in ms

# groups of the 64 shared mel bands (20 Hz - 11 kHz): single bands up to ~450 Hz (a kick's
# pitch), pairs up to ~1.6 kHz, then fives up to ~8.4 kHz. The bands above are left out:
# there the decoder's resampling filter, which depends on the file's native rate, shapes the
# level, so a 48 kHz copy of a 44.1 kHz file would differ there.
BAND_EDGES = tuple(range(0, 8)) + tuple(range(8, 24, 2)) + tuple(range(24, 60, 5))
N_BANDS = len(BAND_EDGES) - 1
MAX_FRAMES = 88
"""Contour frames at most (23 x 88 cells, 2,033 bytes with the header; 2.0 s fits unpooled);
longer segments are pooled by 2, 4, ..."""
FLOOR_DB = -80.0
DB_STEP = 1.0 / 3.0

MAX_TRIM_S = 0.15
"""The most a copy may have lost at its ends (start and end together), in seconds ..."""
MAX_TRIM_FRACTION = 0.4
"""... and at most this fraction of the longer sound: 0.1 s of a 0.18 s hi-hat is another
(choked) hi-hat, not a copy."""
CURV_TOL = 0.5
"""Slack per cell, as a fraction of its |second difference| in time ..."""
CURV_TOL_POOLED = 0.75
"""... and in a pooled contour, whose frames are sampled more coarsely for their width."""
LOCAL_RANGE_DB = 45.0
"""Cells this far below their frame's loudest band get no weight (they fade in linearly)."""
OFFSET_MARGIN_DB = 10.0
"""The gain difference is measured on cells at least this far above both floors."""
MIN_COVER = 0.5
"""The compared frames must cover at least this fraction of the shorter contour."""
REFINE_BELOW_DB = 4.0
"""Shifts by part of a frame are tried only when a whole-frame shift came within this many dB:
on the dev set's copies the best whole-frame mismatch was at most 2.6 dB for every pair that
passed, while most pairs of different sounds are far above."""
SCORE_SCALE_DB = 0.3
"""similarity = exp(-mismatch / SCORE_SCALE_DB), times a penalty for unmatched ends ..."""
OUTSIDE_RANGE_S = 0.05
"""... falling linearly to 0 as the shorter sound reaches this far (beyond a small slack)
outside the longer one."""
DEFAULT_THRESHOLD = 0.75
"""Chosen on the dev set (benchmarks/results/dupes.md): the highest similarity at which at
least 97 % of copies in the calibration half are found (2 points of margin over the 95 %
target), rounded down."""


def max_trim_s(duration_s: float) -> float:
    """The most a copy of a sound ``duration_s`` long may have lost at its ends, in seconds."""
    return min(MAX_TRIM_S, MAX_TRIM_FRACTION * duration_s)


ANALYSIS_SR = 22050


def _base_rate() -> float:
    """STFT frames per second at the analysis rate."""
    from loopmind.library.analysis.features import HOP_LENGTH

    return ANALYSIS_SR / HOP_LENGTH


# -- fingerprints --------------------------------------------------------------------------

def fingerprint(y: np.ndarray, *, sr: int, spec=None) -> bytes:
    """A compact fingerprint of one segment for near-duplicate checks.

    Costs about 0.05 ms per second of audio once the shared spectrogram's mel bands exist.
    Silence (all zeros) gets an empty contour, which matches nothing.

    Args:
        y: mono float32 signal, shape (n,).
        sr: its sample rate in Hz: the analysis rate, 22050, whose spectrogram is shared;
            any other rate is resampled to it first (and ``spec`` ignored), since contours are
            only comparable at one rate.
        spec: the segment's shared ``Spectrogram`` of ``y`` (made here when None).

    Returns:
        a 9-byte header (format, bands, log2 of the pool, frames, duration in ms) and a uint8
        array of shape (23, frames) holding -dB / DB_STEP; frames <= 88, so 2,033 bytes at
        most (about 1 KB per second up to 2 s).
    """
    from loopmind.library.analysis.features import Spectrogram

    y = np.asarray(y, dtype=np.float32)
    duration_ms = min(int(round(len(y) / sr * 1000)) if sr > 0 else 0, 2**32 - 1)
    if len(y) == 0 or not np.any(y):
        return _HEADER.pack(FORMAT, N_BANDS, 0, 0, duration_ms)
    if sr != ANALYSIS_SR:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sr), ANALYSIS_SR)
        y = resample_poly(y, ANALYSIS_SR // g, int(sr) // g).astype(np.float32)
        sr, spec = ANALYSIS_SR, None
    if spec is None:
        spec = Spectrogram(y, sr)
    bands = np.add.reduceat(spec.mel, np.asarray(BAND_EDGES[:-1]), axis=0)
    n_frames = bands.shape[1]
    log2_pool = 0
    while -(-n_frames // (1 << log2_pool)) > MAX_FRAMES:
        log2_pool += 1
    bands = _pool(bands, 1 << log2_pool)
    db = 10.0 * np.log10(np.maximum(bands, 1e-20))
    db -= db.max()
    q = np.clip(np.round(-db / DB_STEP), 0, round(-FLOOR_DB / DB_STEP)).astype(np.uint8)
    return _HEADER.pack(FORMAT, N_BANDS, log2_pool, q.shape[1], duration_ms) + q.tobytes()


def _halve(power: np.ndarray) -> np.ndarray:
    """Every other frame, smoothed by [1, 2, 1] / 4: shape (bands, ceil(frames / 2)); output
    frame i is centred on input frame 2i."""
    n = power.shape[1]
    m = -(-n // 2)
    p = np.concatenate([power[:, :1], power, power[:, -1:], power[:, -1:]], axis=1)
    return (p[:, 0:2 * m:2] + 2.0 * p[:, 1:2 * m + 1:2] + p[:, 2:2 * m + 2:2]) * 0.25


def _pool(power: np.ndarray, pool: int) -> np.ndarray:
    """Power at every ``pool``-th frame, smoothed over about ``2 * pool`` frames: shape
    (bands, ceil(frames / pool)); output frame i is centred on input frame ``i * pool``.

    Repeated halving, so pooling by 2 and then by 2 again is exactly pooling by 4 (contours
    pooled differently are compared at the coarser pool), and neighbouring cells overlap, so
    a shift by part of a cell changes them smoothly.
    """
    while pool > 1:
        power = _halve(power)
        pool //= 2
    return power


@dataclass(eq=False)
class Contour:
    """A parsed fingerprint. It holds the stored bytes only (a library's worth fits in memory);
    levels in dB are made when a comparison needs them.

    Attributes:
        q: the quantized levels, uint8 shape (bands, frames), a view of ``key``.
        pool: STFT frames per contour frame (a power of two).
        duration_s: length of the segment.
        key: the fingerprint's bytes (also orders a pair, so similarity is symmetric).
    """

    q: np.ndarray
    pool: int
    duration_s: float
    key: bytes = b""

    @property
    def frames(self) -> int:
        return self.q.shape[1]

    @property
    def db(self) -> np.ndarray:
        """Band levels in dB relative to the loudest cell, float32 shape (bands, frames)."""
        return self.q.astype(np.float32) * np.float32(-DB_STEP)

    def levels(self, pool: int) -> tuple[np.ndarray, np.ndarray]:
        """(levels in dB pooled to ``pool``, their |second difference| in time)."""
        db = self.db
        if pool != self.pool:
            power = _pool(10.0 ** (db / 10.0), pool // self.pool)
            db = 10.0 * np.log10(np.maximum(power, 1e-20))
            db = np.maximum(db - db.max(), FLOOR_DB).astype(np.float32)
        curv = np.zeros_like(db)
        curv[:, 1:-1] = np.abs(db[:, 2:] - 2.0 * db[:, 1:-1] + db[:, :-2])
        return db, curv


def parse(fp: bytes) -> Contour:
    """The contour a fingerprint holds.

    Raises:
        ValueError: not a fingerprint of this format.
    """
    if len(fp) < _HEADER.size:
        raise ValueError("fingerprint too short")
    fmt, bands, log2_pool, frames, duration_ms = _HEADER.unpack_from(fp)
    if fmt != FORMAT or len(fp) != _HEADER.size + bands * frames:
        raise ValueError(f"not a format-{FORMAT} fingerprint")
    key = bytes(fp)
    q = np.frombuffer(key, dtype=np.uint8, offset=_HEADER.size, count=bands * frames)
    return Contour(q=q.reshape(bands, frames), pool=1 << log2_pool,
                   duration_s=duration_ms / 1000.0, key=key)


# -- comparing two fingerprints -----------------------------------------------------------------

def similarity(fp_a: bytes, fp_b: bytes) -> float:
    """How surely two fingerprints are the same recording, in [0, 1] (symmetric).

    About 1 for a copy (re-encoded, gain-changed, trimmed by up to ``max_trim_s``, resampled);
    0 when the durations differ by more than a trim, and for silence.
    """
    return contour_similarity(parse(fp_a), parse(fp_b))


def contour_similarity(a: Contour, b: Contour) -> float:
    """``similarity`` of parsed fingerprints (reuse parsed contours when comparing many)."""
    mismatch_db, outside_s = contour_mismatch(a, b)
    return _score(mismatch_db, outside_s, max(a.pool, b.pool))


def _score(mismatch_db: float, outside_s: float, pool: int) -> float:
    """The similarity of a mismatch (dB) with this much of the shorter sound outside the
    longer one (s), at a contour pool."""
    if not np.isfinite(mismatch_db):
        return 0.0
    # the shorter sound must lie within the longer one: a loop rotated by a 16th matches
    # itself at that lag but holds other audio at its end
    penalty = max(0.0, 1.0 - max(0.0, outside_s - _slack_s(pool)) / OUTSIDE_RANGE_S)
    return float(np.clip(np.exp(-mismatch_db / SCORE_SCALE_DB) * penalty, 0.0, 1.0))



def _slack_s(pool: int) -> float:
    """How much of the shorter sound may lie outside the longer one at no cost: half a
    contour frame (the alignment's resolution) and 20 ms."""
    return 0.5 * pool / _base_rate() + 0.02


def _outside_s(a_dur: float, b_dur: float, start_b: float) -> float:
    """Seconds of the shorter sound outside the longer one when b starts at ``start_b`` on
    a's time line."""
    end_b = start_b + b_dur
    if a_dur >= b_dur:
        return max(0.0, -start_b) + max(0.0, end_b - a_dur)
    return max(0.0, start_b) + max(0.0, a_dur - end_b)


def contour_mismatch(a: Contour, b: Contour) -> tuple[float, float]:
    """Compare two contours at their best alignment (the one ``similarity`` scores highest;
    of equals, the smallest shift).

    Returns:
        (mean level difference in dB, seconds of the shorter sound lying outside the longer
        one at that alignment); (inf, inf) when they cannot be copies (durations too far
        apart, too little overlap, silence against sound).
    """
    if b.key < a.key:
        a, b = b, a  # one order for every pair, so similarity is symmetric
    if a.frames == 0 or b.frames == 0:
        return np.inf, np.inf  # silence is nobody's copy
    allowed_s = max_trim_s(max(a.duration_s, b.duration_s))
    if abs(a.duration_s - b.duration_s) > allowed_s + 0.01:
        return np.inf, np.inf
    pool = max(a.pool, b.pool)
    rate = _base_rate() / pool
    A, cA = a.levels(pool)
    B, cB = b.levels(pool)
    edge = 2 if pool == 1 else 1  # frames whose window reaches past the sound's ends
    max_lag = int(np.ceil((allowed_s + 0.01) * rate))
    args = (A, B, cA, cB, rate, a.duration_s, b.duration_s, edge)
    best = (-1.0, 0.0, np.inf, np.inf, 0.0)  # score, -|lag|, mismatch, outside, lag

    def consider(lag: float) -> None:
        nonlocal best
        m = _compare(*args, lag)
        out = _outside_s(a.duration_s, b.duration_s, lag / rate)
        cand = (_score(m, out, pool), -abs(lag), m, out, lag)
        if cand[:2] > best[:2]:
            best = cand

    # only shifts at which the shorter sound lies (nearly) within the longer one can score
    reach_s = _slack_s(pool) + OUTSIDE_RANGE_S
    diff_s = a.duration_s - b.duration_s
    lo_s, hi_s = (-reach_s, diff_s + reach_s) if diff_s >= 0 else (diff_s - reach_s, reach_s)
    lags = np.arange(max(-max_lag, int(np.ceil(lo_s * rate))),
                     min(max_lag, int(np.floor(hi_s * rate))) + 1)
    for lag in lags:
        consider(float(lag))
    if not np.isfinite(best[2]):
        return np.inf, np.inf
    if best[2] > REFINE_BELOW_DB:
        return best[2], best[3]
    whole = best[4]
    for frac in (-0.5, -0.25, 0.25, 0.5):
        consider(whole + frac)
    return best[2], best[3]


def _frames_at(x: np.ndarray, start: float, n: int) -> np.ndarray:
    """``x`` at frames start, start + 1, ..., start + n - 1 (linear interpolation)."""
    i0 = int(np.floor(start + 1e-6))
    f = start - i0
    if f < 1e-6:
        return x[:, i0:i0 + n]
    return x[:, i0:i0 + n] * np.float32(1.0 - f) + x[:, i0 + 1:i0 + 1 + n] * np.float32(f)


def _compare(A: np.ndarray, B: np.ndarray, cA: np.ndarray, cB: np.ndarray, rate: float,
             a_dur: float, b_dur: float, edge: int, lag: float) -> float:
    """Weighted mean level difference in dB of a[:, t] against b at frame t - lag."""
    na, nb = A.shape[1], B.shape[1]
    lo_a, hi_a = 0, na - 1
    lo_b, hi_b = 0.0, nb - 1.0
    # frames whose window held zero padding in one sound but audio in the other
    if lag > 0.5:
        lo_b = float(edge)
    elif lag < -0.5:
        lo_a = edge
    end_b = lag / rate + b_dur
    if end_b < a_dur - 0.5 / rate:
        hi_b = nb - 1.0 - edge
    elif end_b > a_dur + 0.5 / rate:
        hi_a = na - 1 - edge
    t0 = max(lo_a, int(np.ceil(lo_b + lag - 1e-6)))
    t1 = min(hi_a, int(np.floor(hi_b + lag + 1e-6)))
    n = t1 - t0 + 1
    if n < max(1.0, MIN_COVER * min(na, nb)):
        return np.inf
    xa = A[:, t0:t1 + 1]
    xb = _frames_at(B, t0 - lag, n)
    loud = (xa > FLOOR_DB + OFFSET_MARGIN_DB) & (xb > FLOOR_DB + OFFSET_MARGIN_DB)
    w = ((np.maximum(xa, xb) - FLOOR_DB) * (1.0 / -FLOOR_DB)) ** 2 * loud
    sw = float(w.sum())
    if sw <= 0:
        return np.inf
    off = float((w * (xa - xb)).sum()) / sw  # the gain difference
    # each contour is relative to its own loudest cell, so after the offset their floors
    # differ: compare above the higher one
    top = max(off, 0.0)
    floor = FLOOR_DB + top
    xa = np.maximum(xa, floor)
    xb = np.maximum(xb + off, floor)
    lvl = np.maximum(xa, xb)
    w = ((lvl - floor) * (1.0 / (top - floor))) ** 2
    w *= np.clip(1.0 - (lvl.max(axis=0) - lvl) * (1.0 / LOCAL_RANGE_DB), 0.0, 1.0)
    sw = float(w.sum())
    if sw <= 0:
        return np.inf
    d = xa - xb
    d -= float((w * d).sum()) / sw
    tol = np.maximum(cA[:, t0:t1 + 1], _frames_at(cB, t0 - lag, n))
    tol *= CURV_TOL if edge == 2 else CURV_TOL_POOLED
    return float((w * np.maximum(np.abs(d) - tol, 0.0)).sum()) / sw


# -- grouping --------------------------------------------------------------------------------

class UnionFind:
    """Disjoint sets over 0..n-1 (path halving, union by size)."""

    def __init__(self, n: int):
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, i: int, j: int) -> bool:
        ri, rj = self.find(i), self.find(j)
        if ri == rj:
            return False
        if self.size[ri] < self.size[rj]:
            ri, rj = rj, ri
        self.parent[rj] = ri
        self.size[ri] += self.size[rj]
        return True

    def groups(self) -> list[list[int]]:
        """Sets of two or more, each sorted, in order of their smallest member."""
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return sorted((g for g in out.values() if len(g) > 1), key=lambda g: g[0])


def _profile(c: Contour) -> np.ndarray:
    """The sound's spectral shape for finding candidates: each frame's band levels relative
    to its loudest band (floored at -50 dB), averaged with the frames weighted by loudness,
    centred over the bands. Frame-relative levels keep a gain change out, and a trim that
    removes the loud attack moves this average less than it moves the mean spectrum.
    Shape (bands,)."""
    if c.frames == 0:
        return np.zeros(N_BANDS, dtype=np.float32)
    db = c.db
    frame_max = db.max(axis=0)
    rel = np.maximum(db - frame_max[None, :], -50.0)
    w = np.clip((frame_max + 60.0) / 60.0, 0.0, 1.0) ** 2
    p = (rel * w).sum(axis=1) / max(float(w.sum()), 1e-9)
    return (p - p.mean()).astype(np.float32)


def candidate_pairs(contours: Sequence[Contour], *, k: int = 10,
                    max_cells: int = 2_000_000) -> set[tuple[int, int]]:
    """Pairs worth verifying: for each contour, the ``k`` nearest by spectral shape
    (``_profile``, Euclidean) among those whose duration is within a trim of its own.

    Costs O(n x w) profile distances, w being how many contours share a duration window
    (BLAS in blocks of at most ``max_cells`` distances; 0.2 s for 4,600 contours).

    Returns:
        pairs (i, j) with i < j, indices into ``contours``.
    """
    n = len(contours)
    if n < 2:
        return set()
    dur = np.array([c.duration_s for c in contours])
    order = np.argsort(dur, kind="stable")
    ds = dur[order]
    prof = np.stack([_profile(contours[i]) for i in order])
    sq = (prof ** 2).sum(axis=1)
    allowed = np.minimum(MAX_TRIM_S, MAX_TRIM_FRACTION * ds) + 0.011
    # a longer partner d may be at most allowed(d) longer: d - allowed(d) rises with d, so the
    # partners of a sound of duration x end where d - allowed(d) passes x
    reach = ds - allowed
    pairs: set[tuple[int, int]] = set()
    s0 = 0
    while s0 < n:
        # a block of contours (by duration) against every one within a trim of them
        lo = int(np.searchsorted(ds, ds[s0] - allowed[s0], side="left"))
        block = 512
        while True:
            s1 = min(n, s0 + block)
            hi = int(np.searchsorted(ds, ds[s1 - 1] + MAX_TRIM_S + 0.011, side="right"))
            if block <= 8 or block * (hi - lo) <= max_cells:
                break
            block //= 2
        dist = sq[s0:s1, None] + sq[None, lo:hi] - 2.0 * (prof[s0:s1] @ prof[lo:hi].T)
        # partners within a trim of each other (the longer one's allowance) form a run of the
        # sorted durations: [first, last) per row
        first = np.searchsorted(ds, ds[s0:s1] - allowed[s0:s1], side="left") - lo
        last = np.searchsorted(reach, ds[s0:s1], side="right") - lo
        cols = np.arange(hi - lo)
        dist[(cols[None, :] < first[:, None]) | (cols[None, :] >= last[:, None])] = np.inf
        dist[np.arange(s1 - s0), np.arange(s0, s1) - lo] = np.inf  # itself
        kk = min(k, hi - lo - 1)
        if kk > 0:
            nearest = np.argpartition(dist, kk - 1, axis=1)[:, :kk]
            for r in range(s1 - s0):
                i = int(order[s0 + r])
                for c in nearest[r]:
                    if np.isfinite(dist[r, c]):
                        j = int(order[lo + c])
                        pairs.add((min(i, j), max(i, j)))
        s0 = s1
    return pairs


def near_groups(contours: Sequence[Contour], pairs: Iterable[tuple[int, int]], *,
                threshold: float = DEFAULT_THRESHOLD,
                same: Callable[[int, int], bool] | None = None,
                on_progress: Callable[[int, int], None] | None = None,
                ) -> tuple[list[list[int]], dict[tuple[int, int], float]]:
    """Verify candidate pairs and group the ones that hold.

    Args:
        contours: parsed fingerprints.
        pairs: candidate (i, j) index pairs (either order, repeats allowed).
        threshold: the least similarity of a duplicate pair.
        same: ``same(i, j)`` True for pairs that are not near duplicates by definition (two
            segments of one file, two files with the same content).
        on_progress: called as ``on_progress(done, total)`` while the pairs are verified
            (``pairs`` is read into a list first to know the total).

    Returns:
        (groups of indices, {(i, j): similarity} of the pairs at or above ``threshold``, i < j).
    """
    uf = UnionFind(len(contours))
    found: dict[tuple[int, int], float] = {}
    seen: set[tuple[int, int]] = set()
    pairs = list(pairs)
    every = max(1, len(pairs) // 200)
    for n, (i, j) in enumerate(pairs):
        if on_progress is not None and n % every == 0:
            on_progress(n, len(pairs))
        i, j = (i, j) if i < j else (j, i)
        if i == j or (i, j) in seen:
            continue
        seen.add((i, j))
        if same is not None and same(i, j):
            continue
        s = contour_similarity(contours[i], contours[j])
        if s >= threshold:
            found[(i, j)] = s
            uf.union(i, j)
    if on_progress is not None:
        on_progress(len(pairs), len(pairs))
    return uf.groups(), found


# -- the library ---------------------------------------------------------------------------

@dataclass
class DuplicateMember:
    """One file (exact groups) or segment (near groups) of a duplicate group."""

    path: str
    file_id: int
    segment_id: int | None = None
    start_s: float | None = None
    end_s: float | None = None


@dataclass
class DuplicateGroup:
    """Files with the same content ("exact") or segments that are copies ("near").

    Attributes:
        kind: "exact" or "near".
        members: sorted by path.
        similarity: for near groups, the least similarity among the verified pairs that
            joined the group (1.0 for exact groups).
        content_hash: for exact groups, the shared hash.
    """

    kind: str
    members: list[DuplicateMember]
    similarity: float = 1.0
    content_hash: str | None = None


@dataclass
class DuplicateReport:
    """What ``find_duplicates`` found."""

    exact: list[DuplicateGroup] = field(default_factory=list)
    near: list[DuplicateGroup] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD
    segments_compared: int = 0
    pairs_verified: int = 0
    segments_without_fingerprint: int = 0

    def to_dict(self) -> dict:
        """A JSON-ready dict (``loopmind dupes --json``)."""
        return asdict(self)

    def describe(self) -> str:
        """Human-readable lines for the CLI."""
        lines: list[str] = []
        for title, groups in (("exact duplicates (same content)", self.exact),
                              ("near duplicates (same sound)", self.near)):
            lines.append(f"{title}: {len(groups)} group{'s' * (len(groups) != 1)}")
            for n, g in enumerate(groups, 1):
                head = f"  [{n}]" + ("" if g.kind == "exact" else f" similarity {g.similarity:.2f}")
                lines.append(head)
                for m in g.members:
                    where = "" if m.segment_id is None else \
                        f"  (segment {m.segment_id}, {m.start_s:.2f}-{m.end_s:.2f} s)"
                    lines.append(f"      {m.path}{where}")
        if self.segments_without_fingerprint:
            lines.append(f"{self.segments_without_fingerprint} segments have no fingerprint yet "
                         "(indexed by an older version): rescan to include them")
        return "\n".join(lines)


VectorSearch = Callable[[int, int], Iterable]


def find_duplicates(library, *, threshold: float = DEFAULT_THRESHOLD,
                    vector_search: VectorSearch | None = None, k: int = 10,
                    exact_only: bool = False,
                    on_stage: Callable[[str], None] | None = None,
                    on_progress: Callable[[str, float], None] | None = None
                    ) -> DuplicateReport:
    """Exact and near duplicates in a library.

    Exact groups are files with status "ok" sharing a content hash. Near groups are segments
    whose fingerprints are at least ``threshold`` similar, over candidate pairs: each
    segment's ``k`` nearest by fingerprint profile among similar durations
    (``candidate_pairs``), joined by its ``k`` nearest from ``vector_search(segment_id, k)``
    (an iterable of ``(segment_id, score)``) when one is given. Segments of one file never
    pair, and of files with the same content only the first (lowest id) takes part, so a
    near group never repeats an exact one.

    Args:
        library: a ``loopmind.library.db.Library``.
        threshold: least similarity of a near-duplicate pair.
        vector_search: nearest neighbours by embedding (more candidates), or None.
        k: neighbours per segment, from each source.
        exact_only: skip near duplicates.
        on_stage: called with each stage's name ("finding candidates", "verifying pairs").
        on_progress: called as ``(what, fraction)`` while candidates are found and verified.
    """
    from sqlmodel import select

    from loopmind.library.models import AudioFile, Segment

    report = DuplicateReport(threshold=threshold)
    with library.session() as session:
        files = session.exec(select(AudioFile.id, AudioFile.path, AudioFile.content_hash).where(
            AudioFile.status == "ok")).all()
    by_hash: dict[str, list[tuple[int, str]]] = {}
    for fid, path, h in files:
        if h:
            by_hash.setdefault(h, []).append((fid, path))
    twin_of: dict[int, int] = {}  # file id -> the lowest file id with its content
    for h, group in by_hash.items():
        group.sort()
        for fid, _ in group:
            twin_of[fid] = group[0][0]
        if len(group) > 1:
            report.exact.append(DuplicateGroup(
                kind="exact", content_hash=h,
                members=sorted((DuplicateMember(path=p, file_id=f) for f, p in group),
                               key=lambda m: m.path)))
    report.exact.sort(key=lambda g: g.members[0].path)
    if exact_only:
        return report

    paths = {fid: path for fid, path, _ in files}
    with library.session() as session:
        rows = session.exec(
            select(Segment.id, Segment.file_id, Segment.start_s, Segment.end_s,
                   Segment.fingerprint)
            .join(AudioFile, AudioFile.id == Segment.file_id)
            .where(AudioFile.status == "ok")).all()
    seg_ids: list[int] = []
    seg_file: list[int] = []
    spans: list[tuple[float, float]] = []
    contours: list[Contour] = []
    for sid, fid, start_s, end_s, fp in rows:
        if twin_of.get(fid, fid) != fid:
            continue  # an exact copy: its first file stands for it
        if fp is None:
            report.segments_without_fingerprint += 1
            continue
        try:
            c = parse(fp)
        except ValueError:
            report.segments_without_fingerprint += 1
            continue
        seg_ids.append(int(sid))
        seg_file.append(int(fid))
        spans.append((float(start_s), float(end_s)))
        contours.append(c)
    report.segments_compared = len(contours)
    index_of = {sid: i for i, sid in enumerate(seg_ids)}

    # the fingerprints' own candidates always: an embedding made for "more like this"
    # misses trimmed copies of short sounds (benchmarks/results/dupes.md)
    stage = on_stage or (lambda name: None)
    stage("finding candidates")
    pairs = candidate_pairs(contours, k=k)
    if vector_search is not None:
        every = max(1, len(seg_ids) // 200)
        for i, sid in enumerate(seg_ids):
            if on_progress is not None and i % every == 0:
                on_progress("nearest by sound", i / len(seg_ids))
            for hit in vector_search(sid, k) or ():
                j = index_of.get(int(hit[0]))
                if j is not None and j != i:
                    pairs.add((min(i, j), max(i, j)))
    pairs = sorted(pairs)
    report.pairs_verified = sum(1 for i, j in pairs if seg_file[i] != seg_file[j])
    stage(f"verifying {report.pairs_verified} pairs")
    verify_progress = None if on_progress is None else \
        (lambda done, total: on_progress("verifying", done / max(total, 1)))
    groups, found = near_groups(contours, pairs, threshold=threshold,
                                same=lambda i, j: seg_file[i] == seg_file[j],
                                on_progress=verify_progress)
    for g in groups:
        members = sorted((DuplicateMember(path=paths[seg_file[i]], file_id=seg_file[i],
                                          segment_id=seg_ids[i], start_s=spans[i][0],
                                          end_s=spans[i][1]) for i in g),
                         key=lambda m: (m.path, m.start_s))
        inside = set(g)
        sims = [s for (i, j), s in found.items() if i in inside]
        report.near.append(DuplicateGroup(kind="near", members=members,
                                          similarity=round(min(sims), 4)))
    report.near.sort(key=lambda g: (g.members[0].path, g.members[0].start_s))
    return report

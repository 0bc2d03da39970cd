"""Duplicates: byte-identical files by content hash, near duplicates by a sound fingerprint.

A near duplicate is the same recording made into another file: re-encoded (MP3), gain-changed,
trimmed at the start or end, or resampled. Each segment gets a ``fingerprint`` at indexing
time: its log band-energy contour (16 mel bands, 43 frames/s, pooled in time for long
segments so it stays under ~2 KB), gain-normalized and quantized to 0.25 dB. Two fingerprints
are compared by ``similarity``: the contours are aligned by a lag search (covering trims of up
to ``MAX_TRIM_S``), the gain difference is taken out, and what is left is the mean level
difference in dB where the sound is. A copy differs from its original by a fraction of a dB
(MP3 noise in quiet bands, the edge of a trim); another velocity layer of the same drum, or the
next bars of the same groove, differ by a few dB somewhere.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

FORMAT = 1
TOP_MEL = 59
POOL_KERNEL = 'tri'
# groups of the 64 shared mel bands: single bands up to ~450 Hz (a kick's pitch), then
# pairs up to ~1.6 kHz, then fives
BAND_EDGES = tuple(range(0, 8)) + tuple(range(8, 24, 2)) + tuple(range(24, TOP_MEL + 1, 5))
N_BANDS = len(BAND_EDGES) - 1
MAX_FRAMES = 84
FLOOR_DB = -80.0
DB_STEP = 1 / 3
OFFSET_MARGIN_DB = 10.0
W_EXP = 2
LOCAL_R = 0.0
SMOOTH = (1,)
MAX_TRIM_S = 0.15
MAX_TRIM_FRACTION = 0.4


def max_trim_s(duration_s: float) -> float:
    """The most a copy of a sound this long may have lost at its ends, in seconds."""
    return min(MAX_TRIM_S, MAX_TRIM_FRACTION * duration_s)

"""Longest trim (start and end together) a copy may have and still be a near duplicate."""
_HEADER = struct.Struct("<BBBHI")  # format, bands, log2 pool, frames, duration in ms


@dataclass(frozen=True)
class Contour:
    """A parsed fingerprint.

    Attributes:
        db: band levels in dB relative to the loudest cell, float32 shape (bands, frames).
        pool: frames of the analysis STFT per contour frame (a power of two).
        frame_rate: contour frames per second.
        duration_s: length of the segment.
    """

    db: np.ndarray
    pool: int
    frame_rate: float
    duration_s: float


def _base_rate() -> float:
    from loopmind.library.analysis.features import HOP_LENGTH

    return 22050 / HOP_LENGTH


def fingerprint(y: np.ndarray, *, sr: int, spec=None) -> bytes:
    """A compact fingerprint of one segment for near-duplicate checks.

    Args:
        y: mono float32 signal, shape (n,).
        sr: its sample rate in Hz (the analysis rate, 22050).
        spec: the segment's shared ``Spectrogram`` (made here when None).

    Returns:
        bytes: a 9-byte header and a uint8 array of shape (16, frames), frames <= 128;
        about 16 bytes per 23 ms frame, 2 KB at most.
    """
    from loopmind.library.analysis.features import Spectrogram

    if spec is None:
        spec = Spectrogram(np.asarray(y, dtype=np.float32), sr)
    duration_ms = int(round(len(y) / sr * 1000)) if sr else 0
    if len(y) == 0:
        return _HEADER.pack(FORMAT, N_BANDS, 0, 0, duration_ms)
    mel = spec.mel  # (64, frames), power
    n_mels, n_frames = mel.shape
    bands = np.add.reduceat(mel, np.asarray(BAND_EDGES[:-1]), axis=0)
    if len(SMOOTH) > 1:
        k = np.asarray(SMOOTH, dtype=np.float32) / np.sum(SMOOTH)
        h = len(k) // 2
        padded = np.pad(bands, ((0, 0), (h, len(k) - 1 - h)), mode="edge")
        bands = sum(k[i] * padded[:, i:i + n_frames] for i in range(len(k)))
    log2_pool = 0
    while -(-n_frames // (1 << log2_pool)) > MAX_FRAMES:
        log2_pool += 1
    bands = _pool(bands, 1 << log2_pool)
    db = 10.0 * np.log10(np.maximum(bands, 1e-12))
    db -= db.max()
    q = np.clip(np.round(-db / DB_STEP), 0, min(255, round(-FLOOR_DB / DB_STEP))).astype(np.uint8)
    return _HEADER.pack(FORMAT, N_BANDS, log2_pool, q.shape[1], duration_ms) + q.tobytes()


def _pool(power: np.ndarray, pool: int) -> np.ndarray:
    """Power averaged over ``pool`` frames at a stride of ``pool``, shape
    (bands, ceil(frames / pool)).

    A triangle twice the stride wide rather than a box: neighbouring cells overlap, so a
    shift by a fraction of a cell changes them smoothly (a trimmed copy stays close)."""
    if pool == 1:
        return power
    n = power.shape[1]
    n_out = -(-n // pool)
    if POOL_KERNEL == 'box':
        pad = n_out * pool - n
        p = np.pad(power, ((0, 0), (0, pad)), mode="edge")
        return p.reshape(power.shape[0], -1, pool).mean(axis=2)
    # a triangle centred on each box's centre: taps m = 0 .. 2*pool-1 at frames
    # i*pool - pool/2 + m, weights rising from 0.5 to pool-0.5 and falling back
    m = np.arange(2 * pool)
    k = np.where(m < pool, m + 0.5, 2 * pool - m - 0.5).astype(np.float32)
    left = pool // 2
    right = n_out * pool + pool - n - left
    p = np.pad(power, ((0, 0), (left, right)), mode="edge")
    out = np.zeros((power.shape[0], n_out), dtype=np.float32)
    for j, kj in enumerate(k):
        out += kj * p[:, j: j + n_out * pool: pool]
    return out / k.sum()


def parse(fp: bytes) -> Contour:
    """The contour a fingerprint holds."""
    fmt, bands, log2_pool, frames, duration_ms = _HEADER.unpack_from(fp)
    if fmt != FORMAT:
        raise ValueError(f"unknown fingerprint format {fmt}")
    q = np.frombuffer(fp, dtype=np.uint8, offset=_HEADER.size, count=bands * frames)
    pool = 1 << log2_pool
    return Contour(db=q.reshape(bands, frames).astype(np.float32) * -DB_STEP, pool=pool,
                   frame_rate=_base_rate() / pool, duration_s=duration_ms / 1000.0)


def _repool(c: Contour, pool: int) -> np.ndarray:
    if pool == c.pool:
        return c.db
    power = 10.0 ** (c.db / 10.0)
    db = 10.0 * np.log10(np.maximum(_pool(power, pool // c.pool), 1e-12))
    return np.maximum(db - db.max(), FLOOR_DB)


CURV_TOL = 0.5
MIN_COVER = 0.5


def similarity(fp_a: bytes, fp_b: bytes) -> float:
    """How likely two fingerprints are the same recording, in [0, 1]."""
    return contour_similarity(parse(fp_a), parse(fp_b))


def _curvature(x: np.ndarray) -> np.ndarray:
    """|second difference| per cell (0 at the ends), shape as ``x``: how far a line through
    the neighbours can be from the contour between frames."""
    c = np.zeros_like(x)
    c[:, 1:-1] = np.abs(x[:, 2:] - 2.0 * x[:, 1:-1] + x[:, :-2])
    return c


def _at(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``x`` at fractional frame positions (linear interpolation); pos within [0, n-1]."""
    i0 = np.minimum(np.floor(pos).astype(int), x.shape[1] - 2) if x.shape[1] > 1 else \
        np.zeros(len(pos), dtype=int)
    if x.shape[1] == 1:
        return x[:, i0]
    f = (pos - i0).astype(np.float32)
    return x[:, i0] * (1.0 - f) + x[:, i0 + 1] * f


def _compare(A, B, cA, cB, lag: float, rate: float, a_dur: float, b_dur: float,
             edge: int) -> float:
    """Mismatch in dB of a[:, t] against b at frame t - lag (see ``contour_mismatch``)."""
    na, nb = A.shape[1], B.shape[1]
    t = np.arange(na)
    pos = t - lag
    ok = (pos >= 0) & (pos <= nb - 1)
    if lag > 0.5:
        ok &= pos >= edge  # b starts later: its first frames hold zero padding a does not
    elif lag < -0.5:
        ok &= t >= edge
    end_b = lag / rate + b_dur
    if end_b < a_dur - 0.5 / rate:
        ok &= pos <= nb - 1 - edge
    elif end_b > a_dur + 0.5 / rate:
        ok &= t <= na - 1 - edge
    if ok.sum() < max(1, MIN_COVER * min(na, nb)):
        return np.inf
    t, pos = t[ok], pos[ok]
    xa, xb = A[:, t], _at(B, pos)
    # the gain difference, from cells well above both floors
    loud = (xa > FLOOR_DB + OFFSET_MARGIN_DB) & (xb > FLOOR_DB + OFFSET_MARGIN_DB)
    if not loud.any():
        return np.inf
    w = ((np.maximum(xa, xb) - FLOOR_DB) / -FLOOR_DB) ** W_EXP * loud
    off = float((w * (xa - xb)).sum() / w.sum())
    # each is normalized to its own loudest cell, so after the offset their floors differ: a
    # copy missing a loud attack (a trim) resolves its tail further down; compare above the
    # higher floor only
    floor = FLOOR_DB + max(off, 0.0)
    top = max(off, 0.0)
    xa = np.maximum(xa, floor)
    xb = np.maximum(xb + off, floor)
    lvl = np.maximum(xa, xb)
    w = ((lvl - floor) / (top - floor)) ** W_EXP
    if LOCAL_R:
        # an encoder's noise sits under each frame's loudest band (masking): cells far below
        # it say little
        w *= np.clip(1.0 - (lvl.max(axis=0) - lvl) / LOCAL_R, 0.0, 1.0)
    sw = float(w.sum())
    if sw <= 0:
        return np.inf
    d = xa - xb
    d -= float((w * d).sum() / sw)
    tol = CURV_TOL * np.maximum(cA[:, t], _at(cB, pos))
    return float((w * np.maximum(np.abs(d) - tol, 0.0)).sum() / sw)


def contour_mismatch(a: Contour, b: Contour) -> tuple[float, float]:
    """(mean level difference in dB at the best alignment, seconds of the shorter sound that
    lie outside the longer one); (inf, inf) when they cannot be copies."""
    na, nb = a.db.shape[1], b.db.shape[1]
    if na == 0 or nb == 0:
        return (0.0, 0.0) if na == nb == 0 else (np.inf, np.inf)
    allowed = max_trim_s(max(a.duration_s, b.duration_s))
    if abs(a.duration_s - b.duration_s) > allowed + 0.01:
        return np.inf, np.inf
    pool = max(a.pool, b.pool)
    rate = _base_rate() / pool
    A, B = _repool(a, pool), _repool(b, pool)
    edge = 2 if pool == 1 else 1  # frames whose window reaches past the sound's ends
    cA, cB = _curvature(A), _curvature(B)
    max_lag = int(np.ceil((allowed + 0.01) * rate))
    args = (A, B, cA, cB)
    kw = dict(rate=rate, a_dur=a.duration_s, b_dur=b.duration_s, edge=edge)
    scores = [(_compare(*args, lag=float(lag), **kw), lag)
              for lag in range(-max_lag, max_lag + 1)]
    mad, lag = min(scores)
    best = float(lag)
    if not np.isfinite(mad):
        return np.inf, np.inf
    for frac in (-0.5, -0.25, 0.25, 0.5):
        m = _compare(*args, lag=lag + frac, **kw)
        if m < mad:
            mad, best = m, lag + frac
    lag_s = best / rate
    # the shorter sound must lie within the longer one, give or take the trim: a loop rotated
    # by a 16th matches itself at that lag but holds other audio at its end
    start_b, end_b = lag_s, lag_s + b.duration_s
    if a.duration_s >= b.duration_s:
        outside = max(0.0, -start_b) + max(0.0, end_b - a.duration_s)
    else:
        outside = max(0.0, start_b) + max(0.0, a.duration_s - end_b)
    return mad, outside


def contour_similarity(a: Contour, b: Contour) -> float:
    """``similarity`` of parsed fingerprints."""
    mad, outside = contour_mismatch(a, b)
    if not np.isfinite(mad):
        return 0.0
    slack = 0.5 / (_base_rate() / max(a.pool, b.pool)) + 0.02
    penalty = max(0.0, outside - slack)
    return float(np.clip(np.exp(-mad) * max(0.0, 1.0 - penalty / 0.1), 0.0, 1.0))

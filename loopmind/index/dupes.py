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
# groups of the 64 shared mel bands: single bands up to ~450 Hz (a kick's pitch), then
# pairs up to ~1.6 kHz, then fives
BAND_EDGES = tuple(range(0, 8)) + tuple(range(8, 24, 2)) + tuple(range(24, 65, 5))
N_BANDS = len(BAND_EDGES) - 1
MAX_FRAMES = 84
DB_STEP = 0.25
FLOOR_DB = -60.0
SMOOTH = (1,)
MAX_TRIM_S = 0.15
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
    q = np.clip(np.round(-db / DB_STEP), 0, round(-FLOOR_DB / DB_STEP)).astype(np.uint8)
    return _HEADER.pack(FORMAT, N_BANDS, log2_pool, q.shape[1], duration_ms) + q.tobytes()


def _pool(power: np.ndarray, pool: int) -> np.ndarray:
    """Mean power over ``pool`` consecutive frames, shape (bands, ceil(frames / pool))."""
    if pool == 1:
        return power
    n = power.shape[1]
    pad = (-n) % pool
    if pad:
        # the last partial group: mean over the frames it has
        last = power[:, n - (n % pool):].mean(axis=1, keepdims=True)
        power = np.concatenate([power[:, : n - (n % pool)],
                                np.repeat(last, pool, axis=1)], axis=1)
    return power.reshape(power.shape[0], -1, pool).mean(axis=2)


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


def _upsample(db: np.ndarray, factor: int) -> np.ndarray:
    """Levels at every 1/factor frame: cubic (Keys) interpolation of the power, back in dB.

    The power of a Hann-windowed STFT hopped at a quarter of its window is nearly critically
    sampled, so a cubic through the power follows an attack far better than a line through
    the dB values. Shape (bands, (frames - 1) * factor + 1).
    """
    n = db.shape[1]
    if n < 2 or factor == 1:
        return db
    p = 10.0 ** (db / 10.0)
    pp = np.concatenate([p[:, :1], p, p[:, -1:], p[:, -1:]], axis=1)  # edge-extended
    t = np.arange((n - 1) * factor + 1) / factor
    i = np.minimum(t.astype(int), n - 2)
    f = (t - i).astype(np.float32)
    # Keys cubic convolution weights (a = -0.5) for samples i-1, i, i+1, i+2
    w0 = ((-0.5 * f + 1.0) * f - 0.5) * f
    w1 = (1.5 * f - 2.5) * f * f + 1.0
    w2 = ((-1.5 * f + 2.0) * f + 0.5) * f
    w3 = (0.5 * f - 0.5) * f * f
    out = pp[:, i] * w0 + pp[:, i + 1] * w1 + pp[:, i + 2] * w2 + pp[:, i + 3] * w3
    return np.maximum(10.0 * np.log10(np.maximum(out, 1e-12)), FLOOR_DB)


def _mismatch(a: np.ndarray, bup: np.ndarray, shifts: np.ndarray, factor: int,
              valid_b: tuple[int, int], valid_a: np.ndarray) -> np.ndarray:
    """Mean absolute level difference in dB, after the best gain offset, for each shift.

    ``a`` is (bands, na); ``bup`` is b upsampled by ``factor``; shift ``m`` compares
    ``a[:, t]`` with b at frame ``t - m / factor``. ``valid_b`` is the range of b's frames
    (in upsampled units) that may be compared; ``valid_a`` (len(shifts), na) masks a's frames.
    Cells are weighted by loudness, so the MP3 noise floor in quiet cells barely counts.
    Returns (len(shifts),) with inf where nothing overlaps.
    """
    na = a.shape[1]
    pos = factor * np.arange(na)[None, :] - shifts[:, None]  # (k, na) positions in bup
    ok = (pos >= valid_b[0]) & (pos <= valid_b[1]) & valid_a
    bs = bup[:, np.clip(pos, 0, bup.shape[1] - 1)]  # (bands, k, na)
    w = np.clip((np.maximum(a[:, None, :], bs) - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0) ** 2
    w *= ok[None]
    sw = w.sum(axis=(0, 2))
    d = a[:, None, :] - bs
    with np.errstate(invalid="ignore", divide="ignore"):
        off = (w * d).sum(axis=(0, 2)) / sw
        mad = (w * np.abs(d - off[None, :, None])).sum(axis=(0, 2)) / sw
    return np.where(sw > 0, mad, np.inf)


UPSAMPLE = 4


def similarity(fp_a: bytes, fp_b: bytes) -> float:
    """How likely two fingerprints are the same recording, in [0, 1].

    1 for identical contours; a copy scores about 0.9 or more, different sounds (another
    velocity layer, the next bars of a groove) less.
    """
    return contour_similarity(parse(fp_a), parse(fp_b))


def _envelope(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The range each cell could take if the frames were half a frame earlier or later:
    between the cell and the midpoints to its neighbours. Shapes as ``x``."""
    prev = np.concatenate([x[:, :1], x[:, :-1]], axis=1)
    nxt = np.concatenate([x[:, 1:], x[:, -1:]], axis=1)
    lo = np.minimum(x, (x + np.minimum(prev, nxt)) * 0.5)
    hi = np.maximum(x, (x + np.maximum(prev, nxt)) * 0.5)
    return lo, hi


def _dist(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.maximum(lo - x, 0.0) + np.maximum(x - hi, 0.0)


MIN_COVER = 0.5


CURV_TOL = 0.5


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
    w = np.clip((np.maximum(xa, xb) - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0) ** 2
    sw = float(w.sum())
    if sw <= 0:
        return np.inf
    d = xa - xb
    off = float((w * d).sum() / sw)
    tol = CURV_TOL * np.maximum(cA[:, t], _at(cB, pos))
    return float((w * np.maximum(np.abs(d - off) - tol, 0.0)).sum() / sw)


def contour_mismatch(a: Contour, b: Contour) -> tuple[float, float]:
    """(mean level difference in dB at the best alignment, seconds of the shorter sound that
    lie outside the longer one); (inf, inf) when they cannot be copies."""
    na, nb = a.db.shape[1], b.db.shape[1]
    if na == 0 or nb == 0:
        return (0.0, 0.0) if na == nb == 0 else (np.inf, np.inf)
    if abs(a.duration_s - b.duration_s) > MAX_TRIM_S + 0.02 * max(a.duration_s, b.duration_s):
        return np.inf, np.inf
    pool = max(a.pool, b.pool)
    rate = _base_rate() / pool
    A, B = _repool(a, pool), _repool(b, pool)
    edge = 2 if pool == 1 else 1  # frames whose window reaches past the sound's ends
    cA, cB = _curvature(A), _curvature(B)
    max_lag = int(np.ceil(MAX_TRIM_S * rate))
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

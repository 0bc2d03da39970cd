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
N_BANDS = 16
MAX_FRAMES = 128
DB_STEP = 0.25
FLOOR_DB = -60.0
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
    bands = mel[: n_mels // N_BANDS * N_BANDS].reshape(N_BANDS, -1, n_frames).sum(axis=1)
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


def _shift(x: np.ndarray, lag: float) -> np.ndarray:
    """``x`` delayed by ``lag`` frames (linear interpolation), NaN where undefined."""
    n = x.shape[1]
    t = np.arange(n, dtype=np.float64) - lag
    i0 = np.floor(t).astype(int)
    frac = (t - i0).astype(np.float32)
    ok = (i0 >= 0) & (i0 + 1 <= n - 1) | (frac == 0) & (i0 >= 0) & (i0 <= n - 1)
    i0c = np.clip(i0, 0, n - 1)
    i1c = np.clip(i0 + 1, 0, n - 1)
    out = x[:, i0c] * (1 - frac) + x[:, i1c] * frac
    out[:, ~ok] = np.nan
    return out


def _mismatch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean absolute level difference in dB (after the best gain offset) where either is loud,
    and the weight it covered. ``a`` and ``b`` have the same shape; NaN marks no data."""
    ok = ~(np.isnan(a[0]) | np.isnan(b[0]))
    if not ok.any():
        return np.inf, 0.0
    a, b = a[:, ok], b[:, ok]
    w = np.clip((np.maximum(a, b) - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0) ** 2
    sw = float(w.sum())
    if sw <= 0:
        return np.inf, 0.0
    d = a - b
    off = float((w * d).sum() / sw)
    return float((w * np.abs(d - off)).sum() / sw), sw


def similarity(fp_a: bytes, fp_b: bytes) -> float:
    """How likely two fingerprints are the same recording, in [0, 1].

    1 for identical contours; a copy scores about 0.9 or more, different sounds (another
    velocity layer, the next bars of a groove) less.
    """
    a, b = parse(fp_a), parse(fp_b)
    if a.db.shape[1] == 0 or b.db.shape[1] == 0:
        return 1.0 if a.db.shape[1] == b.db.shape[1] == 0 and \
            abs(a.duration_s - b.duration_s) <= MAX_TRIM_S else 0.0
    longer = max(a.duration_s, b.duration_s)
    if abs(a.duration_s - b.duration_s) > MAX_TRIM_S + 0.02 * longer:
        return 0.0
    pool = max(a.pool, b.pool)
    rate = _base_rate() / pool
    da, db_ = _repool(a, pool), _repool(b, pool)
    n = max(da.shape[1], db_.shape[1])
    da = np.pad(da, ((0, 0), (0, n - da.shape[1])), constant_values=np.nan)
    db_ = np.pad(db_, ((0, 0), (0, n - db_.shape[1])), constant_values=np.nan)
    max_lag = int(np.ceil(MAX_TRIM_S * rate))
    best = (np.inf, 0.0)
    for lag in range(-max_lag, max_lag + 1):
        m = _mismatch(da, _shift(db_, lag))
        if m[0] < best[0]:
            best = (m[0], lag)
    lag0 = best[1]
    for frac in (-0.75, -0.5, -0.25, 0.25, 0.5, 0.75):
        m = _mismatch(da, _shift(db_, lag0 + frac))
        if m[0] < best[0]:
            best = (m[0], lag0 + frac)
    mad, lag = best
    # b's content must lie within a's (or the reverse) up to the trim: a loop rotated by a
    # 16th matches itself at that lag but holds other audio at its end
    lag_s = lag / rate
    start_b, end_b = lag_s, lag_s + b.duration_s
    outside = max(0.0, -start_b) + max(0.0, end_b - a.duration_s) if a.duration_s >= \
        b.duration_s else max(0.0, start_b) + max(0.0, a.duration_s - end_b)
    slack = 1.5 / rate + 0.02
    penalty = max(0.0, outside - slack)
    score = np.exp(-mad / 1.0) * max(0.0, 1.0 - penalty / 0.1)
    return float(np.clip(score, 0.0, 1.0))

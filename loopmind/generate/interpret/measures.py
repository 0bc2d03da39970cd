"""How new and how faithful generated parts are.

* Novelty: a generated bar must not be a copy of a source bar. ``novelty`` gives the largest
  normalized cross-correlation between a generated bar and any source bar over small lags
  (FFT based, all source bars at once); below 0.9 counts as new.
* Fidelity: a generated part should sound like its own pool. ``pool_distance`` is the mean
  cosine distance from a part's embedding (the project's embedder) to its nearest pool
  vectors; ``closer_to_own`` compares the own pool with another. ``reference_part`` plays a
  pool item in the form of a generated part (a loop stretched to the song's tempo and repeated,
  a one-shot triggered on the part's own steps), so that a part is compared like for like with
  each pool's material; ``centroid_distance`` gives a distance to a set that does not shrink as
  the set grows.
"""

from __future__ import annotations

import numpy as np

NOVELTY_THRESHOLD = 0.9


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2:
        y = y.mean(axis=0) if y.shape[0] <= 2 else y.mean(axis=1)
    return y


def novelty(generated_bar: np.ndarray, source_bars: list[np.ndarray], *, sr: int,
            max_lag_s: float = 0.02) -> float:
    """Largest normalized cross-correlation of a bar with any source bar.

    NCC(lag) = sum_t g[t] s[t + lag] / (|g| |s|), for |lag| <= ``max_lag_s``; signals of
    different lengths are zero-padded (a bar copied at another tempo is not a copy of the
    audio). 1.0 means sample-identical up to gain and a small shift.

    Args:
        generated_bar: the generated bar, mono (n,) or stereo (2, n).
        source_bars: the pool's bars (each mono or stereo, any length).
        sr: sample rate of all of them in Hz.

    Returns:
        max NCC in [0, 1] (0.0 for silence or no source bars).
    """
    g = _mono(generated_bar)
    if not source_bars or not np.any(g):
        return 0.0
    srcs = [_mono(s) for s in source_bars]
    n = max(len(g), max(len(s) for s in srcs))
    n_fft = 1 << int(np.ceil(np.log2(2 * n)))
    lag = int(round(max_lag_s * sr))
    G = np.fft.rfft(g, n_fft)
    gn = np.linalg.norm(g)
    best = 0.0
    for a in range(0, len(srcs), 64):  # bounded memory: 64 source bars per FFT batch
        batch = np.zeros((len(srcs[a:a + 64]), n))
        for i, s in enumerate(srcs[a:a + 64]):
            batch[i, :len(s)] = s
        norms = np.linalg.norm(batch, axis=1)
        S = np.fft.rfft(batch, n_fft, axis=1)
        cc = np.fft.irfft(S * np.conj(G)[None, :], n_fft, axis=1)
        # cc[k] = sum_t g[t] s[t + k]; negative lags wrap to the end
        window = np.concatenate([cc[:, :lag + 1], cc[:, n_fft - lag:]], axis=1) if lag else \
            cc[:, :1]
        ok = norms > 0
        if ok.any():
            val = np.abs(window[ok]).max(axis=1) / (norms[ok] * gn)
            best = max(best, float(val.max()))
    return min(1.0, best)


class NoveltyIndex:
    """Many source bars prepared once (their spectra), for scoring many generated bars.

    ``score(bar)`` equals ``novelty(bar, source_bars, sr=sr)`` for bars no longer than the
    longest source bar (a longer bar is cut to that length).
    """

    def __init__(self, source_bars: list[np.ndarray], *, sr: int, max_lag_s: float = 0.02):
        srcs = [_mono(s) for s in source_bars if np.any(s)]
        self.sr = sr
        self.lag = int(round(max_lag_s * sr))
        self.n = max((len(s) for s in srcs), default=0)
        self.n_fft = 1 << int(np.ceil(np.log2(max(2, self.n + self.lag + 1))))
        self.spectra = np.zeros((len(srcs), self.n_fft // 2 + 1), dtype=np.complex64)
        self.norms = np.zeros(len(srcs))
        for i, s in enumerate(srcs):
            self.spectra[i] = np.fft.rfft(s, self.n_fft)
            self.norms[i] = np.linalg.norm(s)

    def __len__(self) -> int:
        return len(self.norms)

    def score(self, bar: np.ndarray) -> float:
        g = _mono(bar)[: self.n]
        gn = float(np.linalg.norm(g))
        if not len(self) or gn == 0:
            return 0.0
        G = np.conj(np.fft.rfft(g, self.n_fft)).astype(np.complex64)
        best = 0.0
        for a in range(0, len(self), 64):
            cc = np.fft.irfft(self.spectra[a:a + 64] * G[None, :], self.n_fft, axis=1)
            lag = self.lag
            window = np.concatenate([cc[:, :lag + 1], cc[:, self.n_fft - lag:]], axis=1) \
                if lag else cc[:, :1]
            val = np.abs(window).max(axis=1) / (self.norms[a:a + 64] * gn)
            best = max(best, float(val.max()))
        return min(1.0, best)


def bars_of(y: np.ndarray, *, sr: int, bar_s: float, bars: int | None = None) -> list[np.ndarray]:
    """Cut audio into whole bars (mono) of ``bar_s`` seconds; a partial last bar is dropped."""
    y = _mono(y)
    n = int(round(bar_s * sr))
    count = len(y) // n if bars is None else min(bars, len(y) // n)
    return [y[i * n:(i + 1) * n] for i in range(count)]


def embed_audio(y: np.ndarray, *, sr: int, embedder=None) -> np.ndarray:
    """The project embedder's vector of a signal (mono or stereo)."""
    if embedder is None:
        from loopmind.index.embed import get_embedder

        embedder = get_embedder()
    return np.asarray(embedder.embed(_mono(y).astype(np.float32), sr=sr), dtype=np.float32)


def pool_distance(vector: np.ndarray, pool_vectors: np.ndarray, *, k: int = 3) -> float:
    """Mean cosine distance from ``vector`` to its ``k`` nearest pool vectors.

    Args:
        vector: shape (d,).
        pool_vectors: shape (n, d).
    """
    p = np.asarray(pool_vectors, dtype=np.float64)
    v = np.asarray(vector, dtype=np.float64)
    p = p / (np.linalg.norm(p, axis=1, keepdims=True) + 1e-12)
    v = v / (np.linalg.norm(v) + 1e-12)
    d = 1.0 - p @ v
    k = max(1, min(k, len(d)))
    return float(np.sort(d)[:k].mean())


def closer_to_own(vector: np.ndarray, own: np.ndarray, other: np.ndarray, *,
                  k: int = 3) -> bool:
    """Whether a part's embedding is closer to its own pool than to another pool."""
    return pool_distance(vector, own, k=k) < pool_distance(vector, other, k=k)


def render_part(clip, song, *, role: str | None = None, sr: int | None = None) -> np.ndarray:
    """A generated clip's audio through the song renderer (mono, at ``sr`` or the song's rate).

    Returns:
        float32 array, shape (n,), the clip's span (hits ringing past it are cut).
    """
    from loopmind.generate.render import render_clip

    y = render_clip(clip, song, None, role=role)
    span = song.bar_to_sample(clip.end_bar) - song.bar_to_sample(clip.start_bar)
    y = _mono(y)[:span]
    if sr and sr != song.sample_rate:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(sr, song.sample_rate)
        y = resample_poly(y, sr // g, song.sample_rate // g)
    return y.astype(np.float32)


def centroid_distance(vector: np.ndarray, pool_vectors: np.ndarray) -> float:
    """Cosine distance from ``vector`` (d,) to the mean of ``pool_vectors`` (n, d).

    Unlike the nearest-neighbour distance it does not get smaller as a pool gets bigger.
    """
    c = np.asarray(pool_vectors, dtype=np.float64).mean(axis=0)
    v = np.asarray(vector, dtype=np.float64)
    return float(1.0 - (v @ c) / (np.linalg.norm(v) * np.linalg.norm(c) + 1e-12))


def reference_part(clips, song, *, path: str, start_s: float, end_s: float,
                   loop: bool = False, bpm: float | None = None, bars: float | None = None,
                   role: str | None = None, max_s: float | None = None) -> np.ndarray:
    """A pool item played in the form of a generated part, the way the direct arranger plays it.

    A loop with a tempo is stretched to the song's tempo to fill its bars (its labelled bar
    count, else its length in bars at its own tempo) and repeated over all the part's bars; a
    loop without one is played whole, back to back, at its own speed; a one-shot is triggered
    on every step of the part's events with their velocities. None is shifted to the song's
    key.

    Args:
        clips: the generated part's clips (sequence clips: ``events`` set), in order.
        song: the part's song (tempo, sample rate).
        path, start_s, end_s: the item's audio.
        loop: whether the item is a loop.
        bpm, bars: the loop's tempo and bar count (None: unknown).
        role: the part's role (drum roles choke and are never re-pitched).
        max_s: keep at most this many seconds.

    Returns:
        float32 mono array at ``song.sample_rate``: as long as the part's clips (or ``max_s``).
    """
    from loopmind.generate.render import render_clip
    from loopmind.generate.song import Clip

    total_bars = sum(c.bars for c in clips)
    n_total = sum(song.bar_to_sample(c.end_bar) - song.bar_to_sample(c.start_bar) for c in clips)
    if max_s is not None:
        n_total = min(n_total, int(round(max_s * song.sample_rate)))
    if loop and not bpm:
        from loopmind.generate.render import load_source

        y = _mono(load_source(path, start_s, end_s, sr=song.sample_rate))
        if len(y):
            y = np.tile(y, int(np.ceil(n_total / len(y))))
    elif loop:
        if not bars:
            bars = max(1.0, round((end_s - start_s) * bpm / 240.0))
        clip = Clip(start_bar=0, bars=int(total_bars), source_path=path, source_start_s=start_s,
                    source_end_s=end_s, source_bpm=bpm, source_bars=float(bars),
                    stretch=song.bpm / bpm)
        y = _mono(render_clip(clip, song, None, role=role))
    else:
        parts = []
        for c in clips:
            span = song.bar_to_sample(c.end_bar) - song.bar_to_sample(c.start_bar)
            steps = [(e.step, e.velocity) for e in c.events]
            clip = Clip(start_bar=0, bars=c.bars, source_path=path, source_start_s=start_s,
                        source_end_s=end_s, steps=steps, gain_db=c.gain_db)
            part = _mono(render_clip(clip, song, None, role=role))[:span]
            parts.append(np.pad(part, (0, span - len(part))))
        y = np.concatenate(parts) if parts else np.zeros(0)
    return y[:n_total].astype(np.float32)

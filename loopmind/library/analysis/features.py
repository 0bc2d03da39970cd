"""Shared signal features, computed once per segment and shared by every analyzer.

All analyzers receive the same ``Spectrogram`` so the STFT is taken once. Properties are
computed lazily and cached, so an analyzer that needs only the onset envelope does not pay for
the chroma.

Conventions (librosa's): ``y`` is mono float32 in [-1, 1], ``sr`` in Hz, ``n_fft`` and
``hop_length`` in samples; frame ``t`` covers ``y[t*hop_length : t*hop_length + n_fft]`` with
the signal centre-padded by ``n_fft // 2``.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np

N_FFT = 2048
HOP_LENGTH = 512


def mel_filterbank(*, sr: int, n_fft: int, n_mels: int = 64, fmin: float = 20.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters (Slaney-style, area-normalized).

    Returns:
        float32 array of shape (n_mels, 1 + n_fft // 2).
    """
    fmax = sr / 2 if fmax is None else fmax

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lower) / np.maximum(center - lower, 1e-9)
    down = (upper - freqs[None, :]) / np.maximum(upper - center, 1e-9)
    weights = np.maximum(0.0, np.minimum(up, down))
    weights *= (2.0 / np.maximum(upper - lower, 1e-9))
    return weights.astype(np.float32)


_MEL_CACHE: dict[tuple, np.ndarray] = {}
_SPARSE_MEL_CACHE: dict[tuple, object] = {}


def cached_mel(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    key = (sr, n_fft, n_mels)
    if key not in _MEL_CACHE:
        _MEL_CACHE[key] = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels)
    return _MEL_CACHE[key]


def sparse_mel(sr: int, n_fft: int, n_mels: int):
    """The mel filterbank as a CSR matrix: each filter touches a few bins, so the product
    costs ~50x less than the dense one (same result to float32 rounding)."""
    key = (sr, n_fft, n_mels)
    if key not in _SPARSE_MEL_CACHE:
        from scipy import sparse

        _SPARSE_MEL_CACHE[key] = sparse.csr_matrix(cached_mel(sr, n_fft, n_mels))
    return _SPARSE_MEL_CACHE[key]


@lru_cache(maxsize=8)
def periodic_hann(n: int) -> np.ndarray:
    """The periodic Hann window of ``n`` samples, float32, read-only (made once per size)."""
    w = np.hanning(n + 1)[:-1].astype(np.float32)
    w.setflags(write=False)
    return w


def frame_signal(y: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Centre-padded frames of ``y``, shape (n_frames, n_fft) (a view, no copy)."""
    pad = n_fft // 2
    yp = np.pad(y, (pad, pad))
    if len(yp) < n_fft:
        yp = np.pad(yp, (0, n_fft - len(yp)))
    return np.lib.stride_tricks.sliding_window_view(yp, n_fft)[::hop_length]


class Spectrogram:
    """Lazily computed features of one mono signal.

    Args:
        y: mono float32 signal, shape (n,).
        sr: sample rate in Hz.
    """

    def __init__(self, y: np.ndarray, sr: int, *, n_fft: int = N_FFT,
                 hop_length: int = HOP_LENGTH):
        self.y = np.ascontiguousarray(y, dtype=np.float32)
        self.sr = int(sr)
        self.n_fft = n_fft
        self.hop_length = hop_length

    def skip_frames(self, k: int) -> "Spectrogram":
        """The Spectrogram of ``y[k * hop_length:]`` made from this one's STFT columns.

        Frame ``t`` of the result is frame ``t + k`` of this one (both are centred, and the
        result has ``n_frames - k`` frames), so no STFT is taken; the mel spectrogram is
        sliced too when it is already computed. The first ``n_fft // (2 * hop_length)``
        frames differ from a fresh STFT of the shorter signal: their windows reach back into
        the skipped samples instead of zero padding (no difference when those are zeros).

        Args:
            k: frames to skip, 0 <= k <= len(y) // hop_length.

        Returns:
            a new Spectrogram (``self`` when ``k`` is 0); this one is not changed.
        """
        k = int(k)
        if k <= 0:
            return self
        if k > len(self.y) // self.hop_length:
            raise ValueError(f"cannot skip {k} frames of a {len(self.y)}-sample signal")
        out = Spectrogram(self.y[k * self.hop_length:], self.sr, n_fft=self.n_fft,
                          hop_length=self.hop_length)
        out.__dict__["magnitude"] = self.magnitude[:, k:]
        for name in ("power", "mel", "log_mel"):  # column-wise, so a slice is exact
            if name in self.__dict__:
                out.__dict__[name] = self.__dict__[name][:, k:]
        return out

    @property
    def duration_s(self) -> float:
        return len(self.y) / self.sr

    @property
    def frame_rate(self) -> float:
        """Frames per second of every frame-based feature."""
        return self.sr / self.hop_length

    @cached_property
    def magnitude(self) -> np.ndarray:
        """|STFT|, float32, shape (1 + n_fft // 2, n_frames)."""
        from scipy import fft

        frames = frame_signal(self.y, n_fft=self.n_fft, hop_length=self.hop_length)
        window = periodic_hann(self.n_fft)
        # scipy's FFT keeps float32 in single precision and is ~3x faster here than numpy's
        spec = fft.rfft(frames * window, axis=1, overwrite_x=True)
        return np.abs(spec).T  # float32 (abs of complex64); a transposed view, no copy

    @cached_property
    def power(self) -> np.ndarray:
        return self.magnitude ** 2

    @cached_property
    def freqs(self) -> np.ndarray:
        """Centre frequency in Hz of each STFT bin, shape (1 + n_fft // 2,)."""
        return np.fft.rfftfreq(self.n_fft, 1.0 / self.sr)

    @cached_property
    def mel(self) -> np.ndarray:
        """Mel power spectrogram, shape (64, n_frames)."""
        return np.asarray(sparse_mel(self.sr, self.n_fft, 64) @ self.power, dtype=np.float32)

    @cached_property
    def log_mel(self) -> np.ndarray:
        """Mel spectrogram in dB (10 log10, floor at -100 dB), shape (64, n_frames)."""
        return 10.0 * np.log10(np.maximum(self.mel, 1e-10))

    @cached_property
    def onset_envelope(self) -> np.ndarray:
        """Spectral flux onset strength (half-wave rectified log-mel difference), per frame.

        Shape (n_frames,); frame ``t`` is at ``t * hop_length / sr`` seconds.
        """
        lm = np.maximum(self.log_mel, self.log_mel.max() - 80.0)
        flux = np.maximum(0.0, np.diff(lm, axis=1)).mean(axis=0)
        return np.concatenate([[0.0], flux]).astype(np.float32)

    @cached_property
    def rms(self) -> np.ndarray:
        """Frame RMS from the spectrum (Parseval), shape (n_frames,)."""
        window_energy = float(np.sum(np.hanning(self.n_fft + 1)[:-1] ** 2))
        p = self.power
        e = (p[0] + p[-1] + 2.0 * p[1:-1].sum(axis=0)) / (self.n_fft * window_energy)
        return np.sqrt(np.maximum(e, 0.0)).astype(np.float32)

    @cached_property
    def spectral_centroid(self) -> np.ndarray:
        """Centroid in Hz per frame, shape (n_frames,)."""
        m = self.magnitude
        return (self.freqs[:, None] * m).sum(axis=0) / np.maximum(m.sum(axis=0), 1e-10)


def same_signal(spec, y: np.ndarray, sr: int) -> bool:
    """Whether ``spec`` was made from ``y`` itself (the same memory, not an equal copy)."""
    s = getattr(spec, "y", None)
    return (isinstance(s, np.ndarray) and int(getattr(spec, "sr", -1)) == int(sr)
            and s.dtype == y.dtype and s.shape == y.shape and s.strides == y.strides
            and s.__array_interface__["data"][0] == y.__array_interface__["data"][0])


def hop_mean_square(y: np.ndarray, sr: int, hop: int, spec=None) -> np.ndarray:
    """Mean square of ``y`` per hop of ``hop`` samples, float64 (read-only).

    The tail shorter than a hop is left out; a signal shorter than one hop gives one value,
    its own mean square. Role, tone and embed features all read the 5 ms envelope: when
    ``spec`` is the Spectrogram of ``y`` itself, it is computed once and kept on ``spec``.
    """
    cache = None
    if spec is not None and same_signal(spec, y, sr):
        cache = spec.__dict__.setdefault("_hop_mean_square", {})
        if hop in cache:
            return cache[hop]
    n = len(y) // hop
    if n < 1:
        e = np.array([float(np.mean(np.square(y, dtype=np.float64)))]) if len(y) else \
            np.zeros(1)
    else:
        e = np.mean(np.square(y[: n * hop].reshape(n, hop), dtype=np.float64), axis=1)
    e.setflags(write=False)
    if cache is not None:
        cache[hop] = e
    return e


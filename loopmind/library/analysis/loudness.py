"""Integrated loudness (EBU R128 / ITU-R BS.1770-4) and true peak, measured while decoding.

The meter is fed blocks of the native-rate signal and keeps, per 100 ms step, the
channel-summed mean square of the K-weighted signal and the true peak. Those two short arrays
are enough to give the integrated loudness and true peak of any segment of the file (the
400 ms gating blocks of BS.1770 overlap by 75 %, so they are unions of four 100 ms steps),
without keeping the native-rate audio in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import sosfilt

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
STEP_S = 0.1
SILENCE_LUFS = -120.0


def k_weighting_sos(sr: int) -> np.ndarray:
    """Second-order sections of the BS.1770 K-weighting filter at ``sr`` Hz.

    The pre-filter (high shelf) and the RLB high-pass are designed by bilinear transform from
    their analogue prototypes, as in the standard's reference (and pyloudnorm), so any rate
    works, not just 48 kHz.
    """
    # high shelf, +4 dB above ~1.5 kHz
    G, Q, fc = 3.999843853973347, 0.7071752369554196, 1681.974450955533
    K = np.tan(np.pi * fc / sr)
    Vh = 10 ** (G / 20.0)
    Vb = Vh ** 0.4996667741545416
    a0 = 1.0 + K / Q + K * K
    b_shelf = [(Vh + Vb * K / Q + K * K) / a0, 2.0 * (K * K - Vh) / a0,
               (Vh - Vb * K / Q + K * K) / a0]
    a_shelf = [1.0, 2.0 * (K * K - 1.0) / a0, (1.0 - K / Q + K * K) / a0]
    # RLB high-pass at ~38 Hz
    Q, fc = 0.5003270373238773, 38.13547087602444
    K = np.tan(np.pi * fc / sr)
    a0 = 1.0 + K / Q + K * K
    b_hp = [1.0, -2.0, 1.0]
    a_hp = [1.0, 2.0 * (K * K - 1.0) / a0, (1.0 - K / Q + K * K) / a0]
    return np.array([b_shelf + a_shelf, b_hp + a_hp], dtype=np.float64)


def _true_peak_filter(oversample: int = 4, taps_per_phase: int = 32) -> np.ndarray:
    """Polyphase interpolation filter, shape (oversample, taps_per_phase).

    A 4x windowed-sinc interpolator as in BS.1770-4 Annex 2, but with 32 taps per phase
    instead of 12: the short filter rolls off early and under-reads peaks of full-band
    material (drum hits) by up to 0.3 dB. Only samples near peaks are interpolated, so the
    longer filter costs little. Phase 0 reproduces the original samples.
    """
    n = oversample * taps_per_phase
    # phase 0 lands exactly on the samples
    t = np.arange(n) / oversample - (taps_per_phase // 2)
    h = np.sinc(t) * np.kaiser(n, 8.0)
    return h.reshape(taps_per_phase, oversample).T[:, ::-1].copy()


_TP_FILTER = _true_peak_filter()
_TP_HALF = _TP_FILTER.shape[1] // 2
_TP_PHASES = _TP_FILTER[1:].astype(np.float32)  # the three phases between samples


def _block_true_peak(x: np.ndarray, step: int) -> np.ndarray:
    """Per-step true peak of one channel (linear), only oversampling near large samples.

    A true peak sits between two samples, at least one of which is within 3 dB of the
    step's sample peak for any band-limited material short of pathological test signals, so
    only those neighbourhoods are interpolated. ``x`` carries ``_TP_HALF`` samples of context
    on both sides.
    """
    core = x[_TP_HALF:len(x) - _TP_HALF]
    n = len(core)
    n_steps = int(np.ceil(n / step))
    ax = np.abs(core)
    n_full = n // step
    sample_peak = np.zeros(n_steps, dtype=np.float32)
    if n_full:
        sample_peak[:n_full] = ax[:n_full * step].reshape(n_full, step).max(axis=1)
    if n_full < n_steps:
        sample_peak[n_full] = ax[n_full * step:].max()
    threshold = sample_peak * 0.7
    # candidates: local maxima of |x| within 3 dB of their step's sample peak; the
    # inter-sample peak lies on one side of such a sample. The level test (a few samples
    # per step pass it) runs on every sample, the neighbour tests only on those that pass.
    loud = np.empty(n, dtype=bool)
    if n_full:
        np.greater_equal(ax[:n_full * step].reshape(n_full, step), threshold[:n_full, None],
                         out=loud[:n_full * step].reshape(n_full, step))
    if n_full < n_steps:
        np.greater_equal(ax[n_full * step:], threshold[n_full], out=loud[n_full * step:])
    idx = np.flatnonzero(loud)
    a = ax[idx]
    keep = a > 0
    inner = idx > 0
    keep[inner] &= a[inner] >= ax[idx[inner] - 1]
    inner = idx < n - 1
    keep[inner] &= a[inner] >= ax[idx[inner] + 1]
    idx = idx[keep]
    if len(idx) == 0:
        return sample_peak
    cand = np.concatenate([idx - 1, idx])
    cand = cand[(cand >= 0) & (cand < len(core))]
    # x[c + 1 : c + 1 + taps] is the filter's reach around core sample c: gather those rows
    # from a strided view (one contiguous copy per candidate) and apply the three fractional
    # phases as one float32 product
    windows = np.lib.stride_tricks.sliding_window_view(x, _TP_FILTER.shape[1])[cand + 1]
    vals = np.abs(_TP_PHASES @ windows.T).max(axis=0)  # fractional positions
    tp = sample_peak.copy()
    np.maximum.at(tp, cand // step, vals)
    return tp


@dataclass
class LoudnessTrack:
    """Loudness measurements per 100 ms step of a file.

    Attributes:
        mean_square: channel-summed mean square of the K-weighted signal per step.
        true_peak: true peak (linear, all channels) per step.
        step_s: step length in seconds.
    """

    mean_square: np.ndarray
    true_peak: np.ndarray
    step_s: float = STEP_S

    def _range(self, start_s: float, end_s: float | None) -> slice:
        a = int(np.floor(start_s / self.step_s + 1e-6))
        b = len(self.mean_square) if end_s is None else int(np.ceil(end_s / self.step_s - 1e-6))
        return slice(max(0, a), max(a + 1, min(b, len(self.mean_square))))

    def integrated_lufs(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        """Gated integrated loudness of a span in LUFS (``SILENCE_LUFS`` for silence)."""
        ms = self.mean_square[self._range(start_s, end_s)]
        if len(ms) == 0:
            return SILENCE_LUFS
        if len(ms) < 4:
            # shorter than one gating block: one block over what there is
            blocks = np.array([ms.mean()])
        else:
            blocks = np.lib.stride_tricks.sliding_window_view(ms, 4).mean(axis=1)
        with np.errstate(divide="ignore"):
            lk = -0.691 + 10.0 * np.log10(np.maximum(blocks, 1e-30))
        gated = blocks[lk > ABSOLUTE_GATE_LUFS]
        if len(gated) == 0:
            return SILENCE_LUFS
        rel = -0.691 + 10.0 * np.log10(gated.mean()) + RELATIVE_GATE_LU
        gated = blocks[(lk > ABSOLUTE_GATE_LUFS) & (lk > rel)]
        if len(gated) == 0:
            return SILENCE_LUFS
        return float(-0.691 + 10.0 * np.log10(gated.mean()))

    def true_peak_db(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        """True peak of a span in dBTP (-inf clipped to -120)."""
        tp = self.true_peak[self._range(start_s, end_s)]
        peak = float(tp.max()) if len(tp) else 0.0
        return float(20.0 * np.log10(max(peak, 1e-6)))


class LoudnessMeter:
    """Streaming BS.1770 meter: feed native-rate blocks, then call ``result()``.

    Args:
        sr: native sample rate in Hz.
        channels: number of channels fed (weights are 1.0 each; surround weighting of
            BS.1770 for channels 4-5 is not applied to files without a channel map).
    """

    def __init__(self, sr: int, channels: int):
        self.sr = sr
        self.channels = channels
        self.step = max(1, int(round(sr * STEP_S)))
        # float32 filtering: the K-weighting's two biquads are well conditioned at audio
        # rates, and the result agrees with float64 to far below 0.01 LU
        self._sos = k_weighting_sos(sr).astype(np.float32)
        self._zi = np.zeros((self._sos.shape[0], channels, 2), dtype=np.float32)
        self._pending = np.zeros((0,), dtype=np.float32)  # summed squares not yet a full step
        self._ms: list[np.ndarray] = []
        self._tp: list[np.ndarray] = []
        self._tail = np.zeros((channels, 2 * _TP_HALF), dtype=np.float32)
        self._tp_pending = np.zeros((channels, 0), dtype=np.float32)

    def feed(self, block: np.ndarray) -> None:
        """Add a block of shape (frames, channels), float32."""
        if block.size == 0:
            return
        x = np.asarray(block, dtype=np.float32).T  # (channels, frames)
        filtered, self._zi = sosfilt(self._sos, x, axis=-1, zi=self._zi)
        # squares in float32 (a sample's square needs no more), summed per step in float64
        sq = np.square(filtered[0])
        for ch in range(1, filtered.shape[0]):
            sq += np.square(filtered[ch])
        if len(self._pending):
            sq = np.concatenate([self._pending, sq])
        n_full = len(sq) // self.step
        if n_full:
            self._ms.append(sq[: n_full * self.step].reshape(n_full, self.step).sum(
                axis=1, dtype=np.float64) / self.step)
        self._pending = sq[n_full * self.step:]
        # true peak: process whole steps, keeping context samples across blocks
        buf = np.concatenate([self._tp_pending, x], axis=1)
        n_tp = buf.shape[1] // self.step
        if n_tp:
            self._emit_tp(buf[:, : n_tp * self.step])
        self._tp_pending = buf[:, n_tp * self.step:]

    def _emit_tp(self, core: np.ndarray) -> None:
        # context: previous tail on the left, zeros on the right (a few samples of look-ahead
        # are lost at block edges; the effect on a peak estimate is far below 0.1 dB)
        left = self._tail[:, -_TP_HALF:]
        right = np.zeros((core.shape[0], _TP_HALF), dtype=np.float32)
        peaks = None
        for ch in range(core.shape[0]):
            x = np.concatenate([left[ch], core[ch], right[ch]])
            p = _block_true_peak(x, self.step)
            peaks = p if peaks is None else np.maximum(peaks, p)
        self._tp.append(peaks)
        self._tail = core[:, -2 * _TP_HALF:] if core.shape[1] >= 2 * _TP_HALF else self._tail

    def result(self) -> LoudnessTrack:
        """Flush and return the per-step measurements."""
        if len(self._pending):
            self._ms.append(np.array([self._pending.sum(dtype=np.float64) / self.step]))
            self._pending = np.zeros((0,), dtype=np.float32)
        if self._tp_pending.shape[1]:
            core = self._tp_pending
            self._tp_pending = np.zeros((self.channels, 0), dtype=np.float32)
            self._emit_tp(core)
        ms = np.concatenate(self._ms) if self._ms else np.zeros(0)
        tp = np.concatenate(self._tp) if self._tp else np.zeros(0, dtype=np.float32)
        n = min(len(ms), len(tp))
        return LoudnessTrack(mean_square=ms[:n], true_peak=tp[:n].astype(np.float32))


def measure(y: np.ndarray, sr: int) -> LoudnessTrack:
    """Loudness track of an in-memory signal, shape (frames,) or (frames, channels)."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[:, None]
    meter = LoudnessMeter(sr, y.shape[1])
    meter.feed(y)
    return meter.result()

"""Tempo (BPM) with a confidence, and a beat/downbeat grid.

Two paths share one scoring model:

* **Loop path.** A bar-exact loop holds a whole number of beats ``k``, so its tempo is one of
  ``60 k / duration_s`` (Font & Serra, "Tempo estimation for music loops and a simple confidence
  measure", ISMIR 2016; essentia's LoopBpmEstimator/LoopBpmConfidence check a free estimate
  against that grid, here the grid *is* the candidate set). The onset signal of a loop is
  periodic with the loop's length, so its Fourier series has exact harmonics ``m / duration_s``
  and each candidate is judged on those harmonics.
* **Onset path.** For material that is not a bar-exact loop (songs, long stems, odd cuts), a
  comb over the onset autocorrelation scores a fine log-spaced BPM grid; for pieces of 8 bars
  or more, half/double is then re-decided by scoring 4-bar windows starting on tracked beats
  with the loop model.

Both paths pick the metrical level (half/double) with the same few pieces of evidence:

* a log-normal tempo prior (perceived tempi cluster around 100-120 BPM),
* periodicity: how much of the onset signal's power repeats at the beat period,
* backbeat: snare-band onsets on beats 2 and 4 of a bar (the defining accent pattern of most
  4/4 popular music), measured on the 2-beat harmonic,
* a prior on the beat count of a loop (whole 4/4 bars first) and the file-name hint.

A softmax over candidate scores is the posterior; the confidence is the posterior mass of the
answer times how rhythmic the audio is (no onsets, no tempo).

The weights were chosen on the DEV evaluation set (see benchmarks/results/tempo.md): a broad
plateau of settings reaches the same accuracy, these sit in its middle and were checked on
halves of the set split by drummer and by performance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BPM_MIN = 40.0
BPM_MAX = 250.0

# log-normal tempo prior: centre (BPM) and spread (octaves)
PRIOR_BPM = 106.0
PRIOR_OCTAVES = 0.42
# weights of the evidence, in nats per unit of each feature
W_PERIODIC = 1.5   # log of the fraction of onset power periodic at the beat
W_BACKBEAT = 1.0   # snare-band accent on beats 2 and 4 (loops: phase from the loop start)
W_BACKBEAT_HI = 0.25  # the same on the high band (snare noise, claps)
W_HALFBAR = 0.5    # snare-band 2-beat periodicity that is not 1-beat periodic (no phase)
W_HINT = 3.0       # a file-name BPM that matches the candidate within 2 %

# mel band groups (64 Slaney mel bands, 20 Hz - sr/2) for the band onset signals
_SNARE_BANDS = (6, 30)    # ~270 Hz - 2 kHz: snare body, claps, toms (kick has little here)
_HIGH_BANDS = (45, 64)    # above ~4.5 kHz: snare noise, hats, cymbals

_MIN_ONSETS = 3           # fewer distinct onsets than this is a hit, not a rhythm
LOOP_MAX_S = 8 * 4 * 60.0 / 60.0  # 8 bars of 4/4 at 60 BPM: longer audio is a song or stem


@dataclass
class TempoEstimate:
    """A tempo estimate.

    Attributes:
        bpm: beats per minute, or None for material with no rhythm.
        confidence: in [0, 1], roughly the probability that ``bpm`` is right within 4 %.
        beats: whole number of beats in the audio when the loop path decided (else None).
        method: "loop", "onset" or "none".
    """

    bpm: float | None
    confidence: float
    beats: int | None = None
    method: str = "none"


# -- shared onset signals ------------------------------------------------------------------

class OnsetSignals:
    """Onset signals of one Spectrogram, computed once and cached on it."""

    def __init__(self, spec):
        lm = spec.log_mel
        lm = np.maximum(lm, lm.max() - 80.0)
        # circular first difference: for a loop the last frame precedes the first, so a hit at
        # t = 0 (the downbeat of most loops) is seen; for other audio it adds one frame at most
        self.flux = np.maximum(0.0, lm - np.roll(lm, 1, axis=1)).mean(axis=0)
        mel = spec.mel
        snare = np.sqrt(mel[_SNARE_BANDS[0]:_SNARE_BANDS[1]].sum(axis=0))
        high = np.sqrt(mel[_HIGH_BANDS[0]:_HIGH_BANDS[1]].sum(axis=0))
        # magnitude (not log) flux, so the loud drum dominates its band, not low-level noise
        self.snare = np.maximum(0.0, snare - np.roll(snare, 1))
        self.high = np.maximum(0.0, high - np.roll(high, 1))
        self.frame_rate = spec.frame_rate
        self.n_frames = lm.shape[1]
        self.n_onsets = _count_onsets(self.flux, spec.frame_rate)
        self.silent = float(spec.rms.max()) < 1e-4 if self.n_frames else True


def onset_signals(spec) -> OnsetSignals:
    """The onset signals of a Spectrogram, computed once and cached on it (tempo and the
    chopper share them)."""
    cached = getattr(spec, "_loopmind_onsets", None)
    if cached is None:
        cached = OnsetSignals(spec)
        spec._loopmind_onsets = cached
    return cached


def _count_onsets(flux: np.ndarray, frame_rate: float) -> int:
    """Distinct onsets: peaks of the flux well above its floor, at least 50 ms apart."""
    if len(flux) < 3 or flux.max() <= 0:
        return 0
    floor = np.median(flux)
    thr = floor + 0.1 * (flux.max() - floor)
    peak = (flux[1:-1] > thr) & (flux[1:-1] >= flux[:-2]) & (flux[1:-1] > flux[2:])
    idx = np.flatnonzero(peak) + 1
    if len(idx) == 0:
        return 0
    gap = max(1, int(round(0.05 * frame_rate)))
    return 1 + int(np.sum(np.diff(idx) >= gap))


# -- scoring -------------------------------------------------------------------------------

def _log_prior(bpm: np.ndarray) -> np.ndarray:
    x = np.log2(np.asarray(bpm, dtype=np.float64) / PRIOR_BPM)
    return -0.5 * (x / PRIOR_OCTAVES) ** 2


def _beat_count_prior(k: int) -> float:
    """Log prior of a loop holding k beats: whole 4/4 bars first, then 3/4 and half bars."""
    if k % 4 == 0:
        return 0.0
    if k == 2:
        return -0.5
    if k % 3 == 0:
        return -1.0
    if k % 2 == 0:
        return -1.5
    return -3.0


def _hint_bonus(bpm: np.ndarray, bpm_hint: float | None) -> np.ndarray:
    if not bpm_hint or not np.isfinite(bpm_hint) or bpm_hint <= 0:
        return np.zeros_like(bpm)
    err = np.abs(bpm / bpm_hint - 1.0)
    return np.where(err < 0.02, W_HINT, np.where(err < 0.04, 0.5 * W_HINT, 0.0))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()


def _circular_spectrum(x: np.ndarray, n_exact: float) -> np.ndarray:
    """Fourier series of a loop-periodic frame signal whose period is ``n_exact`` frames.

    The frames are re-sampled (circular linear interpolation) onto ``ceil(n_exact)`` points
    per period, so harmonic ``m`` of the loop is FFT bin ``m`` exactly.

    Returns:
        complex array, shape (L // 2 + 1,); index m is harmonic m (index 0 is the mean).
    """
    n_pts = max(4, int(np.ceil(n_exact)))
    pos = np.arange(n_pts) * (n_exact / n_pts)
    xs = np.interp(pos, np.arange(len(x)), x, period=len(x) if len(x) > n_exact else None)
    return np.fft.rfft(xs - xs.mean())


# -- loop path -----------------------------------------------------------------------------

def _loop_scores(ons: OnsetSignals, duration_s: float, bpm_hint: float | None, start: int = 0):
    """Score every whole-beat tempo of a loop of ``duration_s`` seconds.

    ``start`` is the first frame of the loop (0 for a whole file; a bar line for a window of
    a longer piece).

    Returns:
        (k, bpm, score, periodicity) arrays over candidates, or None when no candidate fits.
    """
    k_lo = int(np.ceil(BPM_MIN * duration_s / 60.0))
    k_hi = int(np.floor(BPM_MAX * duration_s / 60.0))
    k = np.arange(max(k_lo, 1), k_hi + 1)
    if len(k) == 0:
        return None
    n_exact = duration_s * ons.frame_rate
    stop = min(ons.n_frames, start + int(np.ceil(n_exact)) + 1)
    spec_all = _circular_spectrum(ons.flux[start:stop], n_exact)
    spec_sn = _circular_spectrum(ons.snare[start:stop], n_exact)
    spec_hi = _circular_spectrum(ons.high[start:stop], n_exact)
    power = np.abs(spec_all[1:]) ** 2
    total = power.sum()
    if total <= 0:
        return None
    harm = np.arange(1, len(power) + 1)
    # fraction of onset power on multiples of the beat frequency (1 = perfectly beat-periodic)
    cum = np.array([power[harm % kk == 0].sum() for kk in k]) / total
    periodic = np.maximum(cum, 1e-4)
    p_sn = np.abs(spec_sn[1:]) ** 2
    p_hi = np.abs(spec_hi[1:]) ** 2
    # running energy of the harmonics up to m, to normalise by the metrical harmonics up to
    # the beat rate (bar, half note, beat ...) whatever the loop length and onset sharpness
    cum_sn = np.sqrt(np.cumsum(p_sn)) + 1e-12
    cum_hi = np.sqrt(np.cumsum(p_hi)) + 1e-12
    back = np.zeros(len(k))
    back_hi = np.zeros(len(k))
    halfbar = np.zeros(len(k))
    for i, kk in enumerate(k):
        if kk % 2 == 0 and kk // 2 < len(spec_sn):
            # harmonic k/2 has a 2-beat period; -Re() is large when the band's onsets sit on
            # the odd beats (2 and 4) counted from the loop start, which is a bar line for loops
            top = min(kk, len(p_sn)) - 1
            back[i] = -spec_sn[kk // 2].real / cum_sn[top]
            back_hi[i] = -spec_hi[kk // 2].real / cum_hi[top]
        halfbar[i] = _rho_diff(p_sn, harm, kk)
    bpm = 60.0 * k / duration_s
    score = (_log_prior(bpm) + np.array([_beat_count_prior(int(x)) for x in k])
             + W_PERIODIC * np.log(periodic) + W_BACKBEAT * back + W_BACKBEAT_HI * back_hi
             + W_HALFBAR * halfbar + _hint_bonus(bpm, bpm_hint))
    return k, bpm, score, cum


def _rho_diff(p: np.ndarray, harm: np.ndarray, k: int) -> float:
    """Circular autocorrelation at 2 beats minus at 1 beat (loop of k beats), from powers."""
    tot = p.sum()
    if tot <= 0:
        return 0.0
    return float((p * (np.cos(4 * np.pi * harm / k) - np.cos(2 * np.pi * harm / k))).sum() / tot)


# -- onset path ----------------------------------------------------------------------------

_GRID = np.exp(np.linspace(np.log(BPM_MIN), np.log(BPM_MAX), 600))


def _acf(x: np.ndarray) -> np.ndarray:
    n = len(x)
    x = x - x.mean()
    f = np.fft.rfft(x, 2 * n)
    r = np.fft.irfft(np.abs(f) ** 2)[:n]
    if r[0] <= 0:
        return np.zeros(n)
    # unbiased: long lags overlap less, do not let that alone favour slow tempi
    r = r / (n - np.arange(n))
    return r / r[0]


def _interp(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return np.interp(pos, np.arange(len(a)), a, right=0.0)


def _onset_scores(ons: OnsetSignals, bpm_hint: float | None):
    """Score the log-spaced BPM grid from onset autocorrelations.

    Returns:
        (bpm, score, periodicity) arrays over the grid, or None if too short.
    """
    fr = ons.frame_rate
    n = ons.n_frames
    flux = ons.flux.copy()
    flux[0] = 0.0  # the circular difference of a non-loop is meaningless at frame 0
    if n < 2 * 60.0 * fr / BPM_MAX:
        return None
    acf = _acf(flux)
    sn = ons.snare.copy()
    sn[0] = 0.0
    acf_sn = _acf(sn)
    lag = 60.0 * fr / _GRID
    # comb over the first 4 multiples of the beat period: precision grows with the multiple,
    # and a true beat period repeats at 2, 3 and 4 beats too
    hs = np.arange(1, 5)
    lags = lag[:, None] * hs[None, :]
    valid = lags < 0.9 * n
    comb = np.where(valid, _interp(acf, lags.ravel()).reshape(lags.shape), 0.0)
    cnt = np.maximum(valid.sum(axis=1), 1)
    periodic = np.clip(comb.sum(axis=1) / cnt, 1e-4, None)
    halfbar = _interp(acf_sn, 2 * lag) - _interp(acf_sn, lag)
    score = (_log_prior(_GRID) + W_PERIODIC * np.log(periodic) + W_HALFBAR * halfbar
             + _hint_bonus(_GRID, bpm_hint))
    return _GRID, score, periodic


def _bar_window_level(y, sr, spec, ons: OnsetSignals, bpm: float, bpm_hint: float | None
                      ) -> tuple[float, float]:
    """Re-decide half/double of a free tempo on 4-bar windows that start on beats.

    The loop model judges the metrical level with the backbeat phase, which needs a bar line
    at the start of the audio; a song has bar lines only where a tracker would guess them.
    So windows of 16 beats (at ``bpm``) start on tracked beats, in each of the 4 rotations of
    the bar, and each is scored as a loop at half, same and double tempo. A level's score is
    its best rotation's total: the rotation that starts windows on bar lines carries the
    backbeat evidence. Known limit: when ``bpm`` is already double the true tempo, windows
    starting on off-beats see the snare on odd (double-time) beats too, so a slow song can
    keep its double reading.

    Returns:
        (bpm, agreement): the chosen tempo and the share of windows that preferred it.
    """
    window_s = 16 * 60.0 / bpm
    if len(y) / sr < 2 * window_s:
        return bpm, 1.0
    beats, _ = beat_grid(y, sr=sr, spec=spec, bpm=bpm, downbeats=False)
    beats = beats[beats + window_s <= len(y) / sr]
    if len(beats) < 4:
        return bpm, 1.0
    levels = np.array([8, 16, 32])  # beats in the window at half, same and double tempo
    totals = np.full((4, 3), 0.0)
    votes = np.zeros((4, 3))
    for rot in range(4):
        starts = beats[rot::4]
        # at most 6 windows per rotation keep the cost bounded for long songs
        starts = starts[np.unique(np.linspace(0, len(starts) - 1, min(6, len(starts))).astype(int))]
        for t0 in starts:
            res = _loop_scores(ons, window_s, bpm_hint, start=int(round(t0 * ons.frame_rate)))
            if res is None:
                continue
            k, _, score, _ = res
            # log posterior of each level within the window (normalised over all candidates),
            # so windows and rotations are compared on the same scale
            logpost = score - (score.max() + np.log(np.exp(score - score.max()).sum()))
            sc = np.array([logpost[k == lv][0] if np.any(k == lv) else -20.0 for lv in levels])
            totals[rot] += sc
            votes[rot, int(np.argmax(sc))] += 1
    best_rot = totals.max(axis=1).argmax()
    level_score = totals.max(axis=0)
    best = int(np.argmax(level_score))
    n = votes[best_rot].sum()
    agree = float(votes[best_rot, best] / n) if n else 1.0
    return bpm * levels[best] / 16.0, agree


def _refine_peak(bpm: np.ndarray, score: np.ndarray, i: int) -> float:
    if 0 < i < len(score) - 1:
        a, b, c = score[i - 1], score[i], score[i + 1]
        den = a - 2 * b + c
        if den < 0:
            d = 0.5 * (a - c) / den
            step = np.log(bpm[i + 1] / bpm[i])
            return float(bpm[i] * np.exp(np.clip(d, -0.5, 0.5) * step))
    return float(bpm[i])


def _posterior_near(bpm: np.ndarray, post: np.ndarray, value: float, tol: float = 0.04) -> float:
    return float(post[np.abs(bpm / value - 1.0) < tol].sum())


# -- public API ----------------------------------------------------------------------------

def estimate_tempo(y: np.ndarray, *, sr: int, spec=None, bpm_hint: float | None = None,
                   is_loop: bool | None = None) -> TempoEstimate:
    """Estimate the tempo of a loop, a one-shot or a longer piece.

    Args:
        y: mono float32 signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared ``features.Spectrogram`` of ``y`` (built here if None).
        bpm_hint: a BPM read from the file name; used as evidence (it can be wrong).
        is_loop: True if the caller knows ``y`` is a bar-exact loop, False if it is not, None
            to decide here (loop path when its whole-beat fit explains the onsets best).

    Returns:
        TempoEstimate; ``bpm`` is None with confidence 0 for silence, a sustained tone or a
        single hit.
    """
    if spec is None:
        from loopmind.library.analysis.features import Spectrogram

        spec = Spectrogram(y, sr)
    duration_s = len(y) / float(sr)
    if duration_s <= 0 or len(y) < spec.n_fft // 2:
        return TempoEstimate(None, 0.0)
    ons = onset_signals(spec)
    if ons.silent or ons.n_onsets < _MIN_ONSETS:
        return TempoEstimate(None, 0.0)

    loop_res = None
    # a loop of more than 8 bars at the slowest tempo is a song or stem: the onset path leads
    if is_loop or (is_loop is None and duration_s <= LOOP_MAX_S):
        loop_res = _loop_scores(ons, duration_s, bpm_hint)
    onset_res = None if is_loop else _onset_scores(ons, bpm_hint)

    loop_est = onset_est = None
    loop_quality = onset_quality = 0.0
    if loop_res is not None:
        k, bpm, score, cum = loop_res
        post = _softmax(score)
        i = int(np.argmax(score))
        # rhythmic quality: beat-periodic share of onset power, relative to a random pattern
        loop_quality = float(np.clip((cum[i] - 1.0 / k[i]) / (1.0 - 1.0 / k[i]), 0.0, 1.0)) \
            if k[i] > 1 else 0.0
        conf = float(post[i]) * min(1.0, loop_quality / 0.3)
        loop_est = TempoEstimate(float(bpm[i]), conf, int(k[i]), "loop")
    if onset_res is not None:
        grid, score, periodic = onset_res
        post = _softmax(score)
        i = int(np.argmax(score))
        value = _refine_peak(grid, score, i)
        onset_quality = float(np.clip(periodic[i], 0.0, 1.0))
        conf = _posterior_near(grid, post, value) * min(1.0, onset_quality / 0.3)
        value, agree = _bar_window_level(y, sr, spec, ons, value, bpm_hint)
        onset_est = TempoEstimate(float(value), float(conf * agree), None, "onset")

    if is_loop:
        return loop_est or TempoEstimate(None, 0.0)
    if is_loop is False or loop_est is None:
        return onset_est or TempoEstimate(None, 0.0)
    if onset_est is None or _is_loop_reading(loop_est, loop_quality, onset_est, onset_quality):
        return loop_est
    return onset_est


# tempo ratios under which the free (onset) reading still supports a whole-beat loop reading
_RELATED = (1.0, 2.0, 0.5, 3.0, 1.0 / 3, 1.5, 2.0 / 3, 4.0 / 3, 0.75)


def _is_loop_reading(loop_est: TempoEstimate, loop_quality: float,
                     onset_est: TempoEstimate, onset_quality: float) -> bool:
    """Whether audio of unknown kind reads as a bar-exact loop.

    A loop's onsets are periodic with its length, so the circular (loop) periodicity at the
    best whole-beat tempo is about as strong as the free periodicity the autocorrelation
    finds; a cut of arbitrary length breaks that circular periodicity at the seam. When the
    two tempi are related (same, half, double, triple or a 3:2/4:3 cross-rhythm) the
    duration holds whole beats at the onset tempo, as in Font & Serra's confidence, and the
    loop reading stands. Checked on DEV loops and on the same loops cut at random lengths
    (benchmarks/results/tempo.md).
    """
    ratio = loop_est.bpm / onset_est.bpm
    if any(abs(ratio / r - 1.0) < 0.04 for r in _RELATED):
        return True
    return loop_quality >= 0.3 * onset_quality


def loop_fit_confidence(duration_s: float, bpm: float) -> float:
    """Font & Serra's confidence that ``duration_s`` holds a whole number of beats at ``bpm``.

    1 when the duration is an exact multiple of the beat, falling linearly to 0 at half a beat
    off.
    """
    if not bpm or bpm <= 0 or duration_s <= 0:
        return 0.0
    n = duration_s * bpm / 60.0
    if n < 0.5:
        return 0.0
    return float(max(0.0, 1.0 - abs(n - round(n)) / 0.5))


def beat_grid(y: np.ndarray, *, sr: int, spec, bpm: float, tightness: float = 100.0,
              downbeats: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat times for 4/4 material at a known tempo.

    Beats follow Ellis's dynamic-programming tracker (onset strength plus a penalty on
    intervals that stray from the beat period), so human tempo drift is followed. The
    downbeat phase is the one of the four whose beats carry the most low-band onsets and
    spectral change, and whose second and fourth beats carry the snare-band accents.

    Args:
        y: mono signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared Spectrogram of ``y``.
        bpm: tempo in beats per minute.
        tightness: how strongly beat intervals are held to the period.
        downbeats: False to skip the downbeat estimate (an empty array is returned).

    Returns:
        (beat_times_s, downbeat_times_s), float arrays in seconds.
    """
    ons = onset_signals(spec)
    fr = ons.frame_rate
    period = 60.0 * fr / bpm
    flux = ons.flux.copy()
    flux[0] = 0.0
    n = len(flux)
    if n < 2 or flux.max() <= 0:
        return np.zeros(0), np.zeros(0)
    o = flux / (flux.std() + 1e-9)
    beats = _dp_beats(o, period, tightness)
    if len(beats) == 0:
        return np.zeros(0), np.zeros(0)
    beat_t = _subframe(o, beats) / fr
    if not downbeats:
        return beat_t, np.zeros(0)
    phase = _downbeat_phase(spec, ons, beats)
    down_t = beat_t[phase::4]
    return beat_t, down_t


def _subframe(o: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Frame positions refined to the parabolic peak of the onset signal (within +-0.5)."""
    f = frames.astype(np.float64)
    inner = (frames > 0) & (frames < len(o) - 1)
    i = frames[inner]
    a, b, c = o[i - 1], o[i], o[i + 1]
    den = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(den < 0, 0.5 * (a - c) / den, 0.0)
    f[inner] += np.clip(d, -0.5, 0.5)
    return f


def _dp_beats(o: np.ndarray, period: float, tightness: float) -> np.ndarray:
    n = len(o)
    # local score: onset strength smoothed by a Gaussian a fraction of a beat wide
    w = max(1, int(round(period / 16)))
    win = np.exp(-0.5 * (np.arange(-2 * w, 2 * w + 1) / w) ** 2)
    local = np.convolve(o, win / win.sum(), mode="same")
    lo = max(1, int(round(period / 2)))
    hi = max(lo + 1, int(round(2 * period)))
    offs = np.arange(lo, hi + 1)
    penalty = -tightness * np.log(offs / period) ** 2
    score = local.copy()
    back = np.full(n, -1, dtype=np.int64)
    for t in range(lo, n):
        prev = t - offs
        ok = prev >= 0
        cand = np.where(ok, score[np.maximum(prev, 0)] + penalty, -np.inf)
        j = int(np.argmax(cand))
        if cand[j] > 0:
            score[t] = local[t] + cand[j]
            back[t] = prev[j]
    # end on the best-scoring frame within the last beat period
    tail = np.arange(max(0, n - int(round(period)) - 1), n)
    t = int(tail[np.argmax(score[tail])])
    path = []
    while t >= 0:
        path.append(t)
        t = int(back[t])
    beats = np.array(path[::-1], dtype=np.int64)
    # drop leading and trailing beats that sit on near-silence
    if len(beats):
        strong = local[beats] > 0.3 * np.median(local[beats] + 1e-9)
        if strong.any():
            first, last = np.flatnonzero(strong)[[0, -1]]
            beats = beats[first:last + 1]
    return beats


def _downbeat_phase(spec, ons: OnsetSignals, beats: np.ndarray) -> int:
    """Which of the 4 beat phases starts the bars (0 = the first tracked beat).

    Three cues, each standardised over the 4 phases and added:
    * bar change: spectra averaged over whole bars differ most from bar to bar when the bars
      are aligned with the music's bar lines (chords and bass change there; a drum pattern
      that repeats every bar adds the same to every alignment, so it cancels);
    * snare-band accents on beats 2 and 4 rather than 1 and 3;
    * low-band (kick) onsets on beat 1, at half weight (kicks often fall on 3 too).
    """
    if len(beats) < 8:
        return 0
    low = np.sqrt(spec.mel[0:4].sum(axis=0))
    low_flux = np.maximum(0.0, low - np.roll(low, 1))
    low_flux[0] = 0.0
    sn = ons.snare.copy()
    sn[0] = 0.0

    def at(x):
        # strongest value within a small window around each beat (human timing)
        idx = np.clip(beats[:, None] + np.arange(-2, 3)[None, :], 0, len(x) - 1)
        v = x[idx].max(axis=1)
        return v / (v.mean() + 1e-9)

    k_b, s_b = at(low_flux), at(sn)
    lm = spec.log_mel
    csum = np.concatenate([np.zeros((lm.shape[0], 1)), np.cumsum(lm, axis=1)], axis=1)
    pos_all = np.arange(len(beats))
    kick, snare, change = np.zeros(4), np.zeros(4), np.zeros(4)
    for ph in range(4):
        pos = (pos_all - ph) % 4
        kick[ph] = k_b[pos == 0].mean() - k_b[pos != 0].mean()
        snare[ph] = (s_b[(pos == 1) | (pos == 3)].mean() - s_b[(pos == 0) | (pos == 2)].mean())
        starts = beats[ph::4]
        if len(starts) >= 3:
            means = np.array([(csum[:, b] - csum[:, a]) / (b - a)
                              for a, b in zip(starts[:-1], starts[1:]) if b > a])
            if len(means) >= 2:
                change[ph] = np.sqrt((np.diff(means, axis=0) ** 2).mean(axis=1)).mean()

    def z(v):
        sd = v.std()
        return (v - v.mean()) / sd if sd > 1e-9 else np.zeros_like(v)

    return int(np.argmax(z(change) + z(snare) + 0.5 * z(kick)))

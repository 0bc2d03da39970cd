"""Instrument role of a segment: kick, snare, hihat, ... from audio features and filename words.

The audio part is a small model trained on the dev set (``benchmarks/train_role.py``, card in
``models/role.md``): a fixed vector of cheap features (``role_features``) is standardized and
fed to a multinomial logistic regression and three small ReLU MLPs whose softmax outputs are
averaged. A model file may also hold a small convolutional network on a log-mel patch of the
sound's first ~1.5 s (``role_mel_patch``), whose output then joins that mean (optional: it did
not beat the feature heads on held-out packs, so the shipped model has none). Their parameters live in ``models/role.safetensors`` (a JSON header plus raw float32
arrays: loading executes no code) and inference is plain numpy. When the file is missing,
corrupt, or made for another feature vector, a few documented rules stand in (see
``_rule_scores``) and a warning is logged once.

A one-shot or a loop (``kind``) shifts the odds mildly: a one-shot is almost never a drum loop,
a loop rarely a single drum hit.

The ensemble is over-confident on packs it has never heard (nearly always right on its training
packs, right about 7 times in 10 on a new one), so its probabilities are calibrated with a
temperature T fitted on leave-one-pack-out predictions and stored in the model file:
p ∝ p_ensemble ** (1 / T).

The calibrated audio probabilities are then combined with the role suggested by file and folder
words (``name_role``), treating the words as an independent observation whose reliability is
``name_confidence``: posterior ∝ p_audio(role) · p(words | role). Words in producers' packs are
usually right, so a confident word wins unless the audio is very sure of something else.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loopmind.library.analysis.features import Spectrogram, hop_mean_square, same_signal

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = (
    "kick", "snare", "hihat", "cymbal", "tom", "clap", "perc", "drumloop",
    "bass", "keys", "pad", "lead", "strings", "guitar", "vocal", "fx",
)
DRUM_ROLES = frozenset({"kick", "snare", "hihat", "cymbal", "tom", "clap", "perc"})
MODEL_PATH = Path(__file__).resolve().parents[3] / "models" / "role.safetensors"

# band edges in Hz for the energy-ratio features (kick fundamentals live below 120 Hz, snare
# bodies 150-400 Hz, hats and cymbals above 4 kHz)
_BAND_EDGES_HZ = (0.0, 60.0, 120.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 1e9)
_N_MFCC = 20
# bands whose decays are measured separately: a kick's low band rings while its click dies,
# a cymbal's top band outlasts everything, a snare's wires decay faster than its shell
_DECAY_EDGES_HZ = (0.0, 150.0, 800.0, 4000.0, 1e9)
_ATTACK_S = 0.07          # the first 70 ms after the onset count as "attack"
_ENV_HOP_S = 0.005        # fine envelope hop for attack/decay times
_SILENCE_DB = -60.0       # below this (re peak) a frame is silence
_MAX_FRAMES = 2048        # spectral statistics use at most the first 2048 frames (~47 s)


@dataclass
class RoleEstimate:
    """The role of one segment.

    Attributes:
        role: one of ``ROLES``.
        confidence: probability of ``role`` in [0, 1] after combining audio and words.
        scores: probability of every role (sums to 1).
    """

    role: str
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)


# -- features ------------------------------------------------------------------------------

def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II basis, shape (n_out, n_in) (as librosa's MFCC uses)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


_DCT = _dct_matrix(64, _N_MFCC)


def _feature_names() -> list[str]:
    names = ["log_duration", "log_attack", "log_decay6", "log_decay12", "log_decay24",
             "log_decay40", "log_temporal_centroid", "sustain_frac", "crest_db", "env_std_db",
             "log_onset_rate", "log_onsets", "late_energy_ratio", "env_periodicity"]
    bands = [f"{int(a)}-{int(b) if b < 1e8 else 'top'}" for a, b in
             zip(_BAND_EDGES_HZ[:-1], _BAND_EDGES_HZ[1:])]
    names += [f"band_{b}" for b in bands]
    names += [f"attack_band_{b}" for b in bands]
    names += [f"body_band_{b}" for b in bands]
    names += ["log_centroid", "log_centroid_attack", "log_centroid_body", "centroid_std",
              "log_rolloff85", "log_rolloff15", "log_bandwidth", "flatness_db",
              "flatness_body_db", "log_spectral_crest", "flux_mean", "spectral_stability",
              "periodicity", "voiced_frac", "log_f0", "f0_std", "peak_conc", "log_peak_freq",
              "low_glide", "centroid_glide"]
    for b in ("low", "lowmid", "highmid", "high"):
        names += [f"{b}_log_decay20", f"{b}_log_decay10", f"{b}_log_peak_delay"]
    names += [f"mfcc{i}_mean" for i in range(1, _N_MFCC)]
    names += [f"mfcc{i}_std" for i in range(1, _N_MFCC)]
    return names


FEATURE_NAMES: tuple[str, ...] = tuple(_feature_names())
N_ENVELOPE = 14  # role_features starts with this many envelope features
N_FEATURES = len(FEATURE_NAMES)


def _log_time(t_s: float) -> float:
    # 1 ms floor so that "no time at all" is a finite value
    return float(np.log10(max(t_s, 1e-3)))


def _fine_envelope(y: np.ndarray, sr: int, spec: Spectrogram | None = None,
                   ) -> tuple[np.ndarray, float, np.ndarray]:
    """RMS envelope in dB re its peak at ~5 ms resolution; returns (env_db, hop_s, mean
    square per hop)."""
    hop = max(16, int(round(sr * _ENV_HOP_S)))
    e = hop_mean_square(y, sr, hop, spec)
    db = 10.0 * np.log10(np.maximum(e, 1e-12))
    return db - db.max(), hop / sr, e


def _first_below(x: np.ndarray, start: int, level: float) -> int:
    idx = np.flatnonzero(x[start:] < level)
    return start + int(idx[0]) if len(idx) else len(x)


def _envelope_features(y: np.ndarray, sr: int, spec: Spectrogram) -> list[float]:
    onset_env, frame_rate = spec.onset_envelope, spec.frame_rate
    env, dt, e_hop = _fine_envelope(y, sr, spec)
    active = np.flatnonzero(env > -40.0)
    start, end = (int(active[0]), int(active[-1]) + 1) if len(active) else (0, len(env))
    peak = int(np.argmax(env))
    # smooth over ~20 ms so decay times are not fooled by single low-frequency periods
    k = 4
    smooth = np.convolve(env, np.ones(k) / k, mode="same") if len(env) > k else env
    decays = [(_first_below(smooth, peak, -lvl) - peak) * dt for lvl in (6.0, 12.0, 24.0, 40.0)]
    seg = env[start:end]
    lin = 10.0 ** (seg / 10.0)
    t = np.arange(len(seg)) * dt
    tc = float((t * lin).sum() / max(lin.sum(), 1e-12))
    # attack: from the first frame within 30 dB of the peak to the peak
    first = int(np.flatnonzero(env > -30.0)[0])
    attack = (peak - first) * dt + dt / 2
    sustain = float(np.mean(seg > -12.0)) if len(seg) else 0.0
    hop = int(round(dt * sr))
    ys = y[start * hop: end * hop]
    if len(ys) == 0 or len(y) < hop:
        ys = y
        rms = float(np.sqrt(np.mean(np.square(ys, dtype=np.float64)))) + 1e-12
    else:
        # the sounding part is whole hops: its mean square is their mean (no second pass)
        rms = float(np.sqrt(np.mean(e_hop[start:end]))) + 1e-12
    crest = 20.0 * np.log10(max(float(ys.max()), -float(ys.min())) / rms + 1e-12)
    env_std = float(np.std(seg)) if len(seg) > 1 else 0.0
    duration = (end - start) * dt
    # onsets: local maxima of the spectral-flux envelope above 30 % of its maximum
    o = onset_env
    n_on = 0
    periodicity = 0.0
    if len(o) >= 3 and o.max() > 0:
        thr = 0.3 * o.max()
        peaks = (o[1:-1] > o[:-2]) & (o[1:-1] >= o[2:]) & (o[1:-1] > thr)
        n_on = int(peaks.sum())
        if len(o) >= 16:
            # repetitiveness of the onset envelope (loops repeat, one-shots do not)
            oc = o - o.mean()
            # autocorrelation by FFT: O(n log n), so a long stem costs no more than its STFT
            ac = np.fft.irfft(np.abs(np.fft.rfft(oc, 2 * len(oc))) ** 2)[: len(oc)]
            if ac[0] > 0:
                lo = max(2, int(0.1 * frame_rate))
                periodicity = float(np.max(ac[lo:]) / ac[0]) if len(ac) > lo else 0.0
    frames_s = len(o) / frame_rate
    onset_rate = n_on / max(frames_s, 0.05)
    half = len(lin) // 2
    late = float(lin[half:].sum() / max(lin.sum(), 1e-12)) if len(lin) > 1 else 0.0
    return [_log_time(duration), _log_time(attack)] + [_log_time(d) for d in decays] + [
        _log_time(tc), sustain, crest, env_std, float(np.log10(1.0 + onset_rate)),
        float(np.log10(1.0 + n_on)), late, periodicity]


def _band_fracs(p: np.ndarray | None, band_idx: list[slice]) -> list[float]:
    """Log share of each band in ``p``, a power spectrum summed over some frames (None: no
    frames)."""
    if p is None:
        return [-4.0] * len(band_idx)
    tot = float(p.sum()) + 1e-20
    return [float(np.log10(p[s].sum() / tot + 1e-4)) for s in band_idx]


def _band_decays(P: np.ndarray, freqs: np.ndarray, e: np.ndarray, emax: float, onset: int,
                 frame_rate: float) -> list[float]:
    """Per band: log time from the band's peak to -20 and -10 dB, and log delay of its peak."""
    out: list[float] = []
    edges = np.searchsorted(freqs, _DECAY_EDGES_HZ)
    # every band's per-frame power as one product with the bands' indicator rows
    ind = np.zeros((len(edges) - 1, P.shape[0]), dtype=P.dtype)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        ind[i, a:b] = 1.0
    bands = ind @ P
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        band = bands[i] if b > a else np.zeros(0, dtype=P.dtype)
        bmax = float(band.max()) if band.size else 0.0
        if bmax <= emax * 1e-6:  # band empty (more than 60 dB down): values of "no ring"
            out += [-2.0, -2.0, -2.0]
            continue
        db = 10.0 * np.log10(np.maximum(band, 1e-20) / bmax)
        pk = int(np.argmax(band))
        d20 = (_first_below(db, pk, -20.0) - pk) / frame_rate
        d10 = (_first_below(db, pk, -10.0) - pk) / frame_rate
        out += [float(np.log10(max(d20, 1e-2))), float(np.log10(max(d10, 1e-2))),
                float(np.log10(max(pk - onset, 0) / frame_rate + 1e-2))]
    return out


def _spectral_features(spec: Spectrogram) -> list[float]:
    # the first ~47 s say what the instrument is; capping keeps memory bounded on long stems
    P = spec.power[:, :_MAX_FRAMES]
    freqs = spec.freqs
    sr = spec.sr
    e = P.sum(axis=0)
    emax = float(e.max()) if e.size else 0.0
    if emax <= 0:
        return [0.0] * (N_FEATURES - N_ENVELOPE)
    active = e > emax * 10.0 ** (_SILENCE_DB / 10.0)
    loud = e > emax * 1e-3  # within 30 dB of the loudest frame
    idx_loud = np.flatnonzero(loud)
    onset = int(idx_loud[0])
    n_attack = max(1, int(round(_ATTACK_S * spec.frame_rate)))
    attack_cols = np.arange(onset, min(onset + n_attack, P.shape[1]))
    body_mask = loud.copy()
    body_mask[: onset + n_attack] = False
    band_idx = []
    for lo, hi in zip(_BAND_EDGES_HZ[:-1], _BAND_EDGES_HZ[1:]):
        a, b = np.searchsorted(freqs, [lo, hi])
        band_idx.append(slice(int(a), int(max(b, a + 1))))
    # power summed over the active, attack and body frames: one product, no column copies
    masks = np.zeros((P.shape[1], 3), dtype=P.dtype)
    masks[active, 0] = 1.0
    masks[attack_cols, 1] = 1.0
    masks[body_mask, 2] = 1.0
    sums = P @ masks
    feats = _band_fracs(sums[:, 0] if active.any() else None, band_idx)
    feats += _band_fracs(sums[:, 1] if len(attack_cols) else None, band_idx)
    feats += _band_fracs(sums[:, 2], band_idx) if body_mask.any() else feats[-len(band_idx):]

    logf = np.log10(np.maximum(freqs, 20.0))
    all_loud = bool(loud.all())
    Pl = P if all_loud else P[:, loud]  # no copy when every frame counts (most sounds)
    el = e if all_loud else e[loud]
    w = el / el.sum()
    # log-frequency centroid (a float32 matrix-vector product: no bins x frames temporary)
    cent_t = (logf.astype(np.float32) @ Pl) / np.maximum(el, 1e-20)
    cent = float((cent_t * w).sum())
    cent_att = float(np.mean(cent_t[: min(n_attack, len(cent_t))]))
    cent_body = float(np.mean(cent_t[n_attack:])) if len(cent_t) > n_attack else cent_att
    cent_std = float(np.sqrt(((cent_t - cent) ** 2 * w).sum()))
    mean_p = Pl @ w.astype(Pl.dtype)
    cum = np.cumsum(mean_p)
    cum /= max(cum[-1], 1e-20)
    roll85 = float(logf[min(np.searchsorted(cum, 0.85), len(logf) - 1)])
    roll15 = float(logf[min(np.searchsorted(cum, 0.15), len(logf) - 1)])
    spread = float(np.sqrt((((logf - cent) ** 2) * mean_p).sum() / max(mean_p.sum(), 1e-20)))
    # flatness over the band up to 10 kHz (above that, resampled sources are empty)
    top = int(np.searchsorted(freqs, min(10000.0, sr / 2 * 0.95)))
    Pb = Pl[1:top] + np.float32(1e-12)
    arith = np.mean(Pb, axis=0)
    flat_t = np.exp(np.mean(np.log(Pb, out=Pb), axis=0)) / arith
    flat = float(10 * np.log10((flat_t * w).sum() + 1e-12))
    flat_body = float(10 * np.log10(np.mean(flat_t[n_attack:]) + 1e-12)) \
        if len(flat_t) > n_attack else flat
    M = spec.magnitude[:top, :_MAX_FRAMES]  # sqrt(power), already computed
    M = M if all_loud else M[:, loud]
    crest_t = M.max(axis=0) / np.maximum(M.mean(axis=0), 1e-20)
    spec_crest = float(np.log10((crest_t * w).sum() + 1e-12))
    # normalized spectral flux and frame-to-frame similarity (sustained tones are stable)
    if M.shape[1] > 1:
        # cosine of consecutive frames: dot products over norms, no normalized copy of M
        norm = np.maximum(np.sqrt(np.einsum("ij,ij->j", M, M)), 1e-20)
        sim = np.einsum("ij,ij->j", M[:, 1:], M[:, :-1]) / (norm[1:] * norm[:-1])
        flux = float(np.mean(1.0 - sim))
        stability = float(np.mean(sim[-min(len(sim), 40):]))
    else:
        flux, stability = 0.0, 0.0
    # periodicity from the autocorrelation (inverse FFT of the power spectrum) of the loudest
    # frames: pitched material has a strong peak at the period, noise and most drums do not
    order = np.argsort(el)[::-1][:12]
    from scipy import fft as sfft  # float32 stays float32 (numpy's FFT works in float64)

    ac = sfft.irfft(np.ascontiguousarray(Pl[:, order].T), axis=1).T
    ac0 = np.maximum(ac[0], 1e-20)
    lag_lo, lag_hi = max(2, int(sr / 1500)), min(ac.shape[0] // 2, int(sr / 35))
    r = ac[1:lag_hi] / ac0[None, :]  # r[i] is lag i + 1
    # search for the period only after the autocorrelation first goes negative: before that
    # a low note's correlation is still high merely because the waveform is smooth
    neg = r < 0
    first_neg = np.where(neg.any(axis=0), np.argmax(neg, axis=0), r.shape[0])
    lag_idx = np.arange(r.shape[0])[:, None]
    r = np.where((lag_idx >= first_neg[None, :]) & (lag_idx + 1 >= lag_lo), r, -1.0)
    lags = np.argmax(r, axis=0)
    rmax = r[lags, np.arange(r.shape[1])]
    # the Hann window tapers long lags; undo that so low notes are not penalized
    n_fft = spec.n_fft
    lag_s = lags + 1
    taper = 1.0 - lag_s / n_fft * 1.5
    rmax = np.clip(rmax / np.maximum(taper, 0.3), 0.0, 1.0)
    period = float(np.mean(rmax))
    voiced = rmax > 0.7
    voiced_frac = float(np.mean(voiced))
    f0s = np.log10(sr / lag_s)
    log_f0 = float(np.median(f0s[voiced])) if voiced.any() else 1.5
    f0_std = float(np.std(f0s[voiced])) if voiced.sum() > 1 else 0.0
    # share of energy in the 20 strongest bins (tonal sounds concentrate energy in partials)
    srt = np.sort(mean_p[:top])[::-1]
    peak_conc = float(srt[:20].sum() / max(srt.sum(), 1e-20))
    peak_freq = float(logf[int(np.argmax(mean_p[:top]))])
    # pitch glide of the low band (kicks sweep down) and of the centroid
    lo_top = int(np.searchsorted(freqs, 500.0))
    lf = logf[1:lo_top]
    L = P[1:lo_top]
    att = L[:, attack_cols].sum(axis=1)
    bod = L[:, body_mask].sum(axis=1) if body_mask.any() else att
    lc_att = float((lf * att).sum() / max(att.sum(), 1e-20))
    lc_bod = float((lf * bod).sum() / max(bod.sum(), 1e-20))
    feats += [cent, cent_att, cent_body, cent_std, roll85, roll15, spread, flat, flat_body,
              spec_crest, flux, stability, period, voiced_frac, log_f0, f0_std, peak_conc,
              peak_freq, lc_att - lc_bod, cent_att - cent_body]
    feats += _band_decays(P, freqs, e, emax, onset, spec.frame_rate)
    # MFCC-like: DCT of the log-mel spectrum relative to its maximum (gain-independent)
    lm = spec.log_mel[:, :_MAX_FRAMES][:, loud]
    lm = np.maximum(lm, lm.max() - 80.0) - lm.max()
    cc = _DCT @ lm
    feats += list((cc[1:] * w[None, :]).sum(axis=1) / 10.0)
    feats += list(np.sqrt(((cc[1:] - (cc[1:] * w).sum(axis=1, keepdims=True)) ** 2 * w)
                          .sum(axis=1)) / 10.0)
    return feats


def role_features(y: np.ndarray, *, sr: int, spec: Spectrogram | None = None) -> np.ndarray:
    """A fixed-length vector of cheap, gain-independent audio features for role classification.

    Envelope (duration, attack, decay to -6/-12/-24/-40 dB, temporal centroid, crest, onset
    rate, repetitiveness), band energy ratios (whole / attack / body), spectral shape (log
    centroid, rolloff, spread, flatness, crest, flux, stability), pitchedness (autocorrelation
    periodicity, f0), pitch glide, and 19 MFCC-like means and deviations.

    Args:
        y: mono signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared ``Spectrogram`` of ``y`` (made here if None).

    Returns:
        float32 array of shape (N_FEATURES,); all zeros for silence.
    """
    y = np.asarray(y, dtype=np.float32)
    if spec is None:
        spec = Spectrogram(y, sr)
    # the pipeline asks twice for the same segment (the role classifier, then the embedder):
    # the features are kept on the spectrogram when it was made from this very signal
    memo = same_signal(spec, y, sr)
    if memo and "_role_features" in spec.__dict__:
        return spec.__dict__["_role_features"].copy()
    if len(y) == 0 or not np.isfinite(y).all() or max(float(y.max()), -float(y.min())) < 1e-6:
        out = np.zeros(N_FEATURES, dtype=np.float32)
    else:
        feats = _envelope_features(y, sr, spec)
        feats += _spectral_features(spec)
        out = np.nan_to_num(np.asarray(feats, dtype=np.float32), nan=0.0, posinf=0.0,
                            neginf=0.0)
    if memo:
        spec.__dict__["_role_features"] = out.copy()
    return out


def envelope_features(y: np.ndarray, *, sr: int, spec: Spectrogram) -> np.ndarray:
    """The envelope part of ``role_features``: its first ``N_ENVELOPE`` values.

    Args:
        y: mono signal, shape (n,), not silent.
        sr: sample rate in Hz.
        spec: the ``Spectrogram`` whose onset envelope is read (onset rate, repetitiveness).

    Returns:
        float32 array of shape (N_ENVELOPE,).
    """
    feats = _envelope_features(np.asarray(y, dtype=np.float32), sr, spec)
    return np.nan_to_num(np.asarray(feats, dtype=np.float32), nan=0.0, posinf=0.0,
                         neginf=0.0)


# mel patch for the convolutional head: 64 mel bands x 64 frames (~1.5 s at 22,050 Hz, hop
# 512) from the onset, in dB re the patch's maximum, floored at -80 dB and scaled to [0, 1]
MEL_PATCH_FRAMES = 64
_PATCH_FLOOR_DB = 80.0


def role_mel_patch(y: np.ndarray, *, sr: int, spec: Spectrogram | None = None) -> np.ndarray:
    """The log-mel patch the convolutional head of ``RoleModel`` reads.

    The sound's first ~1.5 s from its onset (the first frame within 30 dB of the loudest), in dB
    re the loudest bin, floored at -80 dB and scaled to [0, 1]; gain-independent. Shorter
    sounds are padded with zeros (silence).

    Args:
        y: mono signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared ``Spectrogram`` of ``y`` (made here if None).

    Returns:
        float32 array of shape (64, MEL_PATCH_FRAMES); all zeros for silence.
    """
    if spec is None:
        spec = Spectrogram(np.asarray(y, dtype=np.float32), sr)
    lm = spec.log_mel
    out = np.zeros((lm.shape[0], MEL_PATCH_FRAMES), dtype=np.float32)
    if lm.size == 0 or not np.isfinite(lm).all():
        return out
    top = float(lm.max())
    if top <= -99.0:  # the log-mel floor: silence
        return out
    onset = int(np.flatnonzero(lm.max(axis=0) > top - 30.0)[0])
    lm = lm[:, onset: onset + MEL_PATCH_FRAMES]
    out[:, : lm.shape[1]] = (np.maximum(lm - top, -_PATCH_FLOOR_DB) + _PATCH_FLOOR_DB) \
        / _PATCH_FLOOR_DB
    return out


def _conv3x3_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 'same' convolution + ReLU: x (n, C, H, W), w (O, C, 3, 3) -> (n, O, H, W)."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # n C H W 3 3
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))                   # n H W O
    return np.maximum(out.transpose(0, 3, 1, 2) + b[None, :, None, None], 0.0)


def _max_pool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


# -- the audio model -----------------------------------------------------------------------

def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    ez = np.exp(z)
    return ez / ez.sum(axis=-1, keepdims=True)


class RoleModel:
    """Standardized features → mean of a logistic regression and small ReLU MLPs' softmaxes.

    Tensors (all float32): ``mean`` and ``scale`` (F,); ``lr.weight`` (R, F) and ``lr.bias``
    (R,); for each MLP ``mlp{i}.w1`` (F, H), ``mlp{i}.b1`` (H,), ``mlp{i}.w2`` (H, R),
    ``mlp{i}.b2`` (R,). R = len(ROLES), F = N_FEATURES. Any head may be absent but not all.
    Optional ``temperature`` (1,): the calibration temperature (1 if absent).

    Optional convolutional head on the ``role_mel_patch`` (BatchNorm folded into the
    convolutions): ``cnn.conv{i}.weight`` (O, C, 3, 3) and ``cnn.conv{i}.bias`` (O,) for
    i = 0, 1, ...; ``cnn.fc.weight`` (R, 2 O_last) and ``cnn.fc.bias`` (R,); ``cnn.share`` (1,),
    its weight in the mean with the feature heads. Input pooled 2x2; a 2x2 max pool after every
    convolution but the last; then the mean and max over the map, a linear layer and a softmax.
    """

    def __init__(self, tensors: dict[str, np.ndarray]):
        def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
            a = np.asarray(tensors[name], dtype=np.float32)
            if a.shape != shape or not np.isfinite(a).all():
                raise ValueError(f"tensor {name!r} has shape {a.shape}, expected {shape}")
            return a

        F, R = N_FEATURES, len(ROLES)
        self.mean = get("mean", (F,))
        self.scale = get("scale", (F,))
        if (self.scale <= 0).any():
            raise ValueError("non-positive feature scale")
        self.heads: list[tuple[str, tuple[np.ndarray, ...]]] = []
        if "lr.weight" in tensors:
            self.heads.append(("lr", (get("lr.weight", (R, F)), get("lr.bias", (R,)))))
        i = 0
        while f"mlp{i}.w1" in tensors:
            H = np.asarray(tensors[f"mlp{i}.w1"]).shape[-1]
            self.heads.append(("mlp", (get(f"mlp{i}.w1", (F, H)), get(f"mlp{i}.b1", (H,)),
                                       get(f"mlp{i}.w2", (H, R)), get(f"mlp{i}.b2", (R,)))))
            i += 1
        if not self.heads:
            raise ValueError("no classifier heads in the model file")
        self.cnn: list[tuple[np.ndarray, np.ndarray]] = []
        c_in = 1
        while f"cnn.conv{len(self.cnn)}.weight" in tensors:
            i = len(self.cnn)
            c_out = np.asarray(tensors[f"cnn.conv{i}.weight"]).shape[0]
            self.cnn.append((get(f"cnn.conv{i}.weight", (c_out, c_in, 3, 3)),
                             get(f"cnn.conv{i}.bias", (c_out,))))
            c_in = c_out
        self.cnn_share = 0.0
        if self.cnn:
            self.cnn_fc = (get("cnn.fc.weight", (R, 2 * c_in)), get("cnn.fc.bias", (R,)))
            self.cnn_share = float(get("cnn.share", (1,))[0])
            if not 0.0 <= self.cnn_share <= 1.0:
                raise ValueError(f"cnn share {self.cnn_share} outside [0, 1]")
        self.temperature = 1.0
        if "temperature" in tensors:
            t = float(get("temperature", (1,))[0])
            if not 0.05 <= t <= 100.0:
                raise ValueError(f"implausible calibration temperature {t}")
            self.temperature = t

    @property
    def has_cnn(self) -> bool:
        """Whether the model has a convolutional head (which reads ``role_mel_patch``)."""
        return bool(self.cnn)

    def cnn_proba(self, mel: np.ndarray) -> np.ndarray:
        """The convolutional head's probabilities, shape (n, R), for patches (n, 64, T)."""
        h = _avg_pool2(np.asarray(mel, dtype=np.float32).reshape(-1, 1, *np.shape(mel)[-2:]))
        for i, (w, b) in enumerate(self.cnn):
            h = _conv3x3_relu(h, w, b)
            if i < len(self.cnn) - 1:
                h = _max_pool2(h)
        h = np.concatenate([h.mean(axis=(2, 3)), h.max(axis=(2, 3))], axis=1)
        W, b = self.cnn_fc
        return _softmax(h @ W.T + b)

    def predict_proba(self, X: np.ndarray, *, mel: np.ndarray | None = None,
                      calibrated: bool = True) -> np.ndarray:
        """Role probabilities, shape (n, R), for features of shape (n, F) or (F,).

        Args:
            X: features, shape (n, F) or (F,).
            mel: the ``role_mel_patch`` of the same sounds, shape (n, 64, T) or (64, T); with
                a convolutional head in the model its output joins the mean (weight
                ``cnn_share``). None uses the feature heads only.
            calibrated: apply the stored temperature (False gives the raw ensemble mean).
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float32))
        # clip standardized features: a value far outside the training range (a 20-minute
        # drone, a DC offset) should not dominate a linear score
        Z = np.clip((X - self.mean) / self.scale, -6.0, 6.0)
        probs = []
        for kind, p in self.heads:
            if kind == "lr":
                W, b = p
                probs.append(_softmax(Z @ W.T + b))
            else:
                W1, b1, W2, b2 = p
                probs.append(_softmax(np.maximum(Z @ W1 + b1, 0.0) @ W2 + b2))
        p = np.mean(probs, axis=0)
        if mel is not None and self.cnn:
            p = (1.0 - self.cnn_share) * p + self.cnn_share * self.cnn_proba(mel)
        if calibrated and self.temperature != 1.0:
            p = _softmax(np.log(np.maximum(p, 1e-12)) / self.temperature)
        return p

    @classmethod
    def load(cls, path: Path) -> "RoleModel":
        """Read a safetensors file (weights only: a JSON header and raw arrays, no code).

        Raises:
            ValueError / OSError: missing, corrupt, or made for other roles or features.
        """
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            roles = tuple(json.loads(meta.get("roles", "[]")))
            feats = tuple(json.loads(meta.get("features", "[]")))
            if roles != ROLES:
                raise ValueError("model roles differ from this version's roles")
            if feats != FEATURE_NAMES:
                raise ValueError("model was trained on a different feature vector")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return cls(tensors)


_MODELS: dict[Path, RoleModel | None] = {}


def get_model(path: Path | None = None) -> RoleModel | None:
    """The role model at ``path`` (default ``MODEL_PATH``), loaded once; None if unusable.

    A missing or unusable file logs one warning and makes ``classify_role`` use the rules.
    """
    path = Path(MODEL_PATH if path is None else path)
    if path not in _MODELS:
        try:
            _MODELS[path] = RoleModel.load(path)
        except Exception as exc:  # noqa: BLE001 - any bad file means "use the rules"
            log.warning("role model %s unusable (%s); using simple rules instead", path,
                        str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            _MODELS[path] = None
    return _MODELS[path]


def _rule_scores(f: np.ndarray) -> np.ndarray:
    """Fallback role probabilities from a few features when no model is available.

    Rules (first match wins; values are the feature names in ``FEATURE_NAMES``):
      * several onsets (>= 4) over more than 1.5 s → drumloop;
      * more than 40 % of energy below 120 Hz, shorter than 1 s, attack under 30 ms → kick;
      * attack over 80 ms and longer than 1.5 s → pad;
      * pitched (periodicity > 0.7 and voiced_frac > 0.5): f0 < 180 Hz → bass; attack
        > 80 ms → pad; else keys;
      * otherwise: log-frequency centroid above 5 kHz → hihat if the sound decays by 40 dB within
        0.5 s, else cymbal; centroid 1-5 kHz and flatness above -15 dB → snare;
        centroid below 1 kHz → tom; otherwise perc.
    The chosen role gets probability 0.5, the rest share the remainder.
    """
    v = dict(zip(FEATURE_NAMES, f.tolist()))
    dur = 10 ** v["log_duration"]
    cent_hz = 10 ** v["log_centroid"]
    low = 10 ** v["band_0-60"] + 10 ** v["band_60-120"]
    if v["log_onsets"] >= np.log10(5) and dur > 1.5:
        role = "drumloop"
    elif low > 0.4 and dur < 1.0 and 10 ** v["log_attack"] < 0.03:
        role = "kick"
    elif 10 ** v["log_attack"] > 0.08 and dur > 1.5:
        role = "pad"
    elif v["periodicity"] > 0.7 and v["voiced_frac"] > 0.5:
        role = ("bass" if 10 ** v["log_f0"] < 180 else
                "pad" if 10 ** v["log_attack"] > 0.08 else "keys")
    elif cent_hz > 5000:
        role = "hihat" if 10 ** v["log_decay40"] < 0.5 else "cymbal"
    elif cent_hz > 1000 and v["flatness_db"] > -15:
        role = "snare"
    elif cent_hz <= 1000:
        role = "tom"
    else:
        role = "perc"
    p = np.full(len(ROLES), 0.5 / (len(ROLES) - 1))
    p[ROLES.index(role)] = 0.5
    return p


# kind priors: a one-shot is almost never a whole drum loop; a loop is rarely a single drum
# hit (but hat, shaker and percussion loops are common, so those are damped less)
_ONESHOT_PRIOR = {"drumloop": 0.05}
_LOOP_PRIOR = {"kick": 0.2, "snare": 0.2, "clap": 0.2, "tom": 0.2, "cymbal": 0.3,
               "hihat": 0.6, "perc": 0.6}


def _combine(p_audio: np.ndarray, *, kind: str | None, name_role: str | None,
             name_confidence: float) -> np.ndarray:
    p = p_audio.astype(np.float64).copy()
    prior = _ONESHOT_PRIOR if kind == "oneshot" else _LOOP_PRIOR if kind == "loop" else {}
    for r, m in prior.items():
        p[ROLES.index(r)] *= m
    if name_role in ROLES and name_confidence > 0:
        # the words as an independent observation: right with probability c, otherwise
        # any other role equally likely (likelihood ratio c (R-1) / (1-c))
        c = float(np.clip(name_confidence, 0.0, 0.99))
        lik = np.full(len(ROLES), (1.0 - c) / (len(ROLES) - 1))
        lik[ROLES.index(name_role)] = c
        p *= lik
    s = p.sum()
    return p / s if s > 0 else np.full(len(ROLES), 1.0 / len(ROLES))


def classify_role(y: np.ndarray, *, sr: int, spec: Spectrogram | None = None,
                  kind: str | None = None, name_role: str | None = None,
                  name_confidence: float = 0.0) -> RoleEstimate:
    """Estimate the instrument role of a segment from its audio and its file/folder words.

    Args:
        y: mono signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared ``Spectrogram`` of ``y`` (made here if None).
        kind: "loop", "oneshot" or None; a mild prior (a one-shot is not a drum loop).
        name_role: the role suggested by file and folder words (from filename parsing), or None.
        name_confidence: how reliable those words are, in [0, 1) (e.g. 0.8 for "Kick" in a
            file name); 0 ignores them.

    Returns:
        The most probable role, its probability, and every role's probability.
    """
    f = role_features(y, sr=sr, spec=spec)
    if not f.any():
        # silence: no audio evidence at all, so only the words (if any) speak
        p_audio = np.full(len(ROLES), 1.0 / len(ROLES))
    else:
        model = get_model()
        if model is None:
            p_audio = _rule_scores(f)
        else:
            mel = role_mel_patch(y, sr=sr, spec=spec)[None] if model.has_cnn else None
            p_audio = model.predict_proba(f, mel=mel)[0]
    p = _combine(p_audio, kind=kind, name_role=name_role, name_confidence=name_confidence)
    best = int(np.argmax(p))
    return RoleEstimate(role=ROLES[best], confidence=float(p[best]),
                        scores={r: float(v) for r, v in zip(ROLES, p)})

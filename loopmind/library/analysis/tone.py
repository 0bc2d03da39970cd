"""Tone tags: dark, bright, warm, distorted, clean, wet, dry, punchy, soft.

Each tag comes from measured numbers (``tone_measures``) and fixed, documented thresholds
(the constants below). Role norms are the medians of each role on the dev set.

bright / dark
    ``centroid_ratio``: magnitude-weighted spectral centroid over the role's norm
    (``CENTROID_NORM_HZ``). bright if >= 1.6 (about +0.7 octave), dark if <= 1 / 1.6.
warm
    ``lowmid_ratio`` (share of power 150-800 Hz) >= 0.30, ``high_ratio`` (share above
    4 kHz) <= 0.08, ``flatness_db`` <= -25 (tonal, not noise) and not bright.
distorted
    any of: ``ceiling_fraction`` >= 0.30 (in the loud 1024-sample frames, the median share of
    samples within 5 % of the frame's peak: clipping and saturation pile the waveform up
    against its ceiling; a sine scores 0.17-0.20, a saw 0.04, drums and noise about 0.01, a
    clipped sine 0.6-0.9); ``frame_crest_db`` <= 2.5 (peak over RMS of the loud frames: below
    a sine's 3.0 dB only a squashed waveform goes); or ``frame_crest_db`` <= 4.5 with
    ``flatness_db`` >= -30 (a dense spectrum at a low crest: an overdriven guitar, not a sine).
    A square wave counts as distorted: it sounds like one.
clean
    not distorted, tonal (``flatness_db`` <= -25) and either ``frame_crest_db`` >= 6 or a
    sparse spectrum (``flatness_db`` <= -40) at a sine's crest (>= 2.9 dB). Noise-like sounds
    (hats, cymbals, most snares) are neither clean nor distorted unless clipped.
wet / dry
    ``decay_t60_s``: reverberation time of the final release, from the Schroeder energy-decay
    curve between -5 and -25 dB extrapolated to 60 dB. wet if >= 1.2 s and >= 2 x the role's
    norm (``T60_NORM_S``: a crash rings for seconds without any reverb); dry if <= 0.35 s or
    <= 0.6 x the norm. No tag when the sound does not decay within the segment (NaN).
punchy
    ``attack_ms`` <= 15 (10 % -> 90 % rise of the first event on a 1 ms RMS envelope) and
    ``envelope_crest_db`` >= 6 (the loudest 5 ms over the mean amplitude of the first 300 ms:
    a transient standing out of a short body).
soft
    ``attack_ms`` >= 40, or ``envelope_crest_db`` < 3 with ``attack_ms`` >= 15.

Contradictory pairs (dark/bright, distorted/clean, wet/dry, punchy/soft) are never both set;
a sound gets neither of a pair when it sits between the thresholds. Cost: about 0.5 ms per
second of audio on top of the shared Spectrogram.
"""

from __future__ import annotations

import numpy as np

from loopmind.library.analysis.features import Spectrogram, hop_mean_square

# Median spectral centroid (Hz) per role, measured on the dev set's 556 role files
# (../shared/eval, labels.csv) and rounded; "any" is the median of all of them. Roles with few
# files there (lead 2, vocal 1, keys/pad/strings/guitar about 10) have rough norms.
CENTROID_NORM_HZ: dict[str, float] = {
    "kick": 350.0, "snare": 2700.0, "hihat": 5300.0, "cymbal": 3500.0, "tom": 630.0,
    "clap": 3400.0, "perc": 2000.0, "drumloop": 3200.0, "bass": 1250.0, "keys": 1100.0,
    "pad": 950.0, "lead": 1800.0, "strings": 2100.0, "guitar": 1200.0, "vocal": 1500.0,
    "fx": 2100.0, "any": 2400.0,
}
# Median final-release T60 (s) per role on the same files: how long such sounds ring anyway
# (a crash for seconds, a closed hat for a fraction of one), so that only an unusually long
# tail for the role counts as reverb.
T60_NORM_S: dict[str, float] = {
    "kick": 0.43, "snare": 0.48, "hihat": 0.49, "cymbal": 9.0, "tom": 1.9, "clap": 0.32,
    "perc": 0.62, "drumloop": 0.46, "bass": 0.18, "keys": 1.2, "pad": 3.5, "lead": 1.0,
    "strings": 0.57, "guitar": 3.2, "vocal": 1.8, "fx": 0.5, "any": 0.6,
}

_MAX_FRAMES = 2048   # spectral measures use at most the first 2048 STFT frames
_MAX_SAMPLES_S = 60  # waveform-shape measures use at most the first minute

BRIGHT_RATIO = 1.6
WARM_LOWMID = 0.30
WARM_HIGH_MAX = 0.08
DISTORTED_CEILING = 0.30
DISTORTED_CREST_DB = 2.5
RICH_CREST_DB = 4.5
RICH_FLATNESS_DB = -30.0
CLEAN_CREST_DB = 6.0
SPARSE_FLATNESS_DB = -40.0
TONAL_FLATNESS_DB = -25.0
SINE_CREST_DB = 2.9
WET_T60_S = 1.2
WET_NORM_FACTOR = 2.0
DRY_T60_S = 0.35
DRY_NORM_FACTOR = 0.6
PUNCHY_ATTACK_MS = 15.0
PUNCHY_CREST_DB = 6.0
SOFT_ATTACK_MS = 40.0
SOFT_CREST_DB = 3.0
SOFT_CREST_ATTACK_MS = 15.0


def _spectral_measures(spec: Spectrogram) -> tuple[float, float, float, float]:
    """Centroid (Hz), 150-800 Hz and > 4 kHz energy shares, and flatness (dB).

    The centroid is the usual magnitude-weighted one of the spectrum summed over the frames
    within 40 dB of the loudest; the flatness (geometric over arithmetic mean of the power,
    50 Hz - 8 kHz) is the median over the frames within 12 dB of the loudest.
    """
    P = spec.power[:, :_MAX_FRAMES]  # the first ~47 s: bounded memory on long stems
    e = P.sum(axis=0)
    if e.size == 0 or e.max() <= 0:
        return float("nan"), 0.0, 0.0, -100.0
    f = spec.freqs
    loud = e > e.max() * 1e-4
    w = loud.astype(P.dtype)  # sums over the loud frames as products: no column copies
    mag = spec.magnitude[:, :_MAX_FRAMES] @ w
    centroid = float((f * mag).sum() / (mag.sum() + 1e-20))
    power = P @ w
    sel = f >= 40.0  # ignore DC and rumble for the shares
    tot = float(power[sel].sum()) + 1e-20
    lowmid = float(power[(f >= 150) & (f < 800)].sum() / tot)
    high = float(power[f >= 4000].sum() / tot)
    band = (f >= 50) & (f <= 8000)
    near = np.flatnonzero(e >= e.max() * 10 ** (-12 / 10))
    near = near[np.argsort(e[near])[::-1][:16]]  # the 16 loudest are plenty for a median
    Pb = P[:, near][band] + 1e-12  # the 16 frames first, then the band
    flat = np.exp(np.mean(np.log(Pb), axis=0)) / np.mean(Pb, axis=0)
    return centroid, lowmid, high, float(10 * np.log10(np.median(flat)))


def _frames(y: np.ndarray, n: int) -> np.ndarray:
    m = len(y) // n
    return y[: m * n].reshape(m, n) if m else y[None, :]


def _waveform_shape(y: np.ndarray, sr: int) -> tuple[float, float]:
    """Median ceiling fraction and crest (dB) of the loud 1024-sample frames."""
    fr = _frames(y[: int(_MAX_SAMPLES_S * sr)].astype(np.float64), 1024)
    fr -= fr.mean(axis=1, keepdims=True)  # fr is a new array: centred in place
    rms = np.sqrt(np.einsum("ij,ij->i", fr, fr) / fr.shape[1])
    if rms.max() <= 0:
        return 0.0, 0.0
    sel = rms >= rms.max() * 10 ** (-12 / 20)  # frames within 12 dB of the loudest
    loud = np.abs(fr[sel])
    peak = loud.max(axis=1, keepdims=True)
    ceiling = np.mean(loud >= 0.95 * peak, axis=1)
    crest = 20 * np.log10(peak[:, 0] / np.maximum(rms[sel], 1e-12))
    return float(np.median(ceiling)), float(np.median(crest))


def _envelope_db(y: np.ndarray, sr: int, hop_s: float,
                 spec: Spectrogram | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """(level per hop in dB re the loudest, hop in s, mean square per hop)."""
    hop = max(1, int(round(sr * hop_s)))
    e = hop_mean_square(y, sr, hop, spec)
    return 10 * np.log10(np.maximum(e, 1e-20) / max(e.max(), 1e-20)), hop / sr, e


def _attack_ms(y: np.ndarray, sr: int) -> float:
    """10 % → 90 % rise time (ms) of the first loud event on a 1 ms RMS envelope."""
    env, dt, _ = _envelope_db(y[: int(sr * 2.0)], sr, 0.001)
    amp = 10 ** (env / 20)  # amplitude re the loudest millisecond in the first 2 s
    start = np.flatnonzero(amp >= 0.1)
    if not len(start):
        return float("nan")
    i0 = int(start[0])
    # the first event's peak: the maximum within 300 ms of the 10 % crossing
    win = amp[i0: i0 + int(0.3 / dt) + 1]
    top = float(win.max())
    i1 = i0 + int(np.flatnonzero(win >= 0.9 * top)[0])
    return (i1 - i0 + 1) * dt * 1e3


def _t60_s(y: np.ndarray, sr: int,
           envelope: tuple[np.ndarray, float] | None = None) -> float:
    """T60 of the final release from the Schroeder curve (-5 to -25 dB), or NaN.
    ``envelope``: the (level, hop) of ``_envelope_db(y, sr, 0.005)`` when the caller has it."""
    env, dt = envelope if envelope is not None else _envelope_db(y, sr, 0.005)[:2]
    if len(env) < 8:
        return float("nan")
    above = np.flatnonzero(env > -10.0)
    start = int(above[-1])  # the release starts after the last frame within 10 dB of peak
    tail = 10 ** (env[start:] / 10)
    if len(tail) < 4:
        return float("nan")
    edc = np.cumsum(tail[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    if edc_db[-1] > -25.0:
        # the signal ends before its energy has decayed 25 dB: judge by the last value
        # when at least 10 dB of decay is visible, otherwise do not guess
        if edc_db[-1] > -10.0 or len(edc_db) < 2:
            return float("nan")
    i5 = int(np.argmax(edc_db <= -5.0))
    i25 = int(np.argmax(edc_db <= -25.0)) if edc_db.min() <= -25.0 else len(edc_db) - 1
    drop = edc_db[i5] - edc_db[i25]
    if i25 <= i5 or drop <= 0:
        return float("nan")
    return float((i25 - i5) * dt * 60.0 / drop)


def tone_measures(y: np.ndarray, *, sr: int, spec: Spectrogram | None = None,
                  role: str | None = None) -> dict[str, float]:
    """The numbers behind the tone tags.

    Args:
        y: mono signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared ``Spectrogram`` of ``y`` (made here if None).
        role: the segment's role, for the centroid and decay norms (None: all roles).

    Returns:
        centroid_hz, centroid_ratio (re the role norm), lowmid_ratio, high_ratio,
        flatness_db, ceiling_fraction, frame_crest_db, crest_db (peak over RMS of the whole
        sounding part), envelope_crest_db, attack_ms, decay_t60_s (NaN when the sound does
        not decay within the segment). NaN or 0 for silence.
    """
    y = np.asarray(y, dtype=np.float32)
    if spec is None:
        spec = Spectrogram(y, sr)
    nan = float("nan")
    if len(y) == 0 or not np.isfinite(y).all() or max(float(y.max()), -float(y.min())) < 1e-6:
        return {"centroid_hz": nan, "centroid_ratio": nan, "lowmid_ratio": 0.0,
                "high_ratio": 0.0, "flatness_db": -100.0, "ceiling_fraction": 0.0,
                "frame_crest_db": 0.0, "crest_db": 0.0, "envelope_crest_db": 0.0,
                "attack_ms": nan, "decay_t60_s": nan}
    centroid, lowmid, high, flatness = _spectral_measures(spec)
    norm = CENTROID_NORM_HZ.get(role or "any", CENTROID_NORM_HZ["any"])
    ceiling, frame_crest = _waveform_shape(y, sr)
    env, dt, e_hop = _envelope_db(y, sr, 0.005, spec)
    active = np.flatnonzero(env > -40.0)
    hop = max(1, int(round(sr * dt)))
    ya = y[active[0] * hop: (active[-1] + 1) * hop] if len(active) else y
    if len(active) and len(y) >= hop:
        # whole hops of the envelope: their mean square is the mean of the envelope's
        rms = float(np.sqrt(np.mean(e_hop[active[0]:active[-1] + 1]))) + 1e-12
    else:
        rms = float(np.sqrt(np.mean(np.square(ya, dtype=np.float64)))) + 1e-12
    crest = 20 * np.log10(max(float(ya.max()), -float(ya.min())) / rms)
    # envelope crest: the loudest 5 ms against the mean amplitude of the first 300 ms of the
    # sound; a transient standing out of a short body scores high, a pad, steady noise or a
    # slowly decaying cymbal low
    first = int(active[0]) if len(active) else 0
    body = 10 ** (env[first: first + int(round(0.3 / dt))] / 20)
    env_crest = float(20 * np.log10(body.max() / max(float(body.mean()), 1e-6))) \
        if len(body) else 0.0
    return {"centroid_hz": centroid, "centroid_ratio": centroid / norm,
            "lowmid_ratio": lowmid, "high_ratio": high, "flatness_db": flatness,
            "ceiling_fraction": ceiling,
            "frame_crest_db": frame_crest, "crest_db": float(crest),
            "envelope_crest_db": float(env_crest),
            "attack_ms": _attack_ms(y, sr), "decay_t60_s": _t60_s(y, sr, envelope=(env, dt))}


def tags_from_measures(m: dict[str, float], *, role: str | None = None) -> list[str]:
    """Apply the documented thresholds to ``tone_measures`` output."""
    tags: list[str] = []
    cr = m.get("centroid_ratio", float("nan"))
    bright = bool(cr >= BRIGHT_RATIO)
    if bright:
        tags.append("bright")
    elif cr <= 1.0 / BRIGHT_RATIO:
        tags.append("dark")
    if (not bright and m["lowmid_ratio"] >= WARM_LOWMID
            and m["high_ratio"] <= WARM_HIGH_MAX and m["flatness_db"] <= TONAL_FLATNESS_DB):
        tags.append("warm")
    crest, flat = m["frame_crest_db"], m["flatness_db"]
    if (m["ceiling_fraction"] >= DISTORTED_CEILING or crest <= DISTORTED_CREST_DB
            or (crest <= RICH_CREST_DB and flat >= RICH_FLATNESS_DB)):
        tags.append("distorted")
    elif flat <= TONAL_FLATNESS_DB and (crest >= CLEAN_CREST_DB or (
            flat <= SPARSE_FLATNESS_DB and crest >= SINE_CREST_DB)):
        # only tonal material is called clean: noise (hats, cymbals) has nothing to be clean of
        tags.append("clean")
    t60 = m["decay_t60_s"]
    t60_norm = T60_NORM_S.get(role or "any", T60_NORM_S["any"])
    if t60 == t60:  # not NaN
        if t60 >= WET_T60_S and t60 >= WET_NORM_FACTOR * t60_norm:
            tags.append("wet")
        elif t60 <= DRY_T60_S or t60 <= DRY_NORM_FACTOR * t60_norm:
            tags.append("dry")
    att = m["attack_ms"]
    if att == att:
        if att <= PUNCHY_ATTACK_MS and m["envelope_crest_db"] >= PUNCHY_CREST_DB:
            tags.append("punchy")
        elif att >= SOFT_ATTACK_MS or (m["envelope_crest_db"] < SOFT_CREST_DB
                                       and att >= SOFT_CREST_ATTACK_MS):
            tags.append("soft")
    return tags


def tone_tags(y: np.ndarray, *, sr: int, spec: Spectrogram | None = None,
              role: str | None = None) -> list[str]:
    """Tone tags of a segment (see the module docstring for each rule).

    Args:
        y: mono signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared ``Spectrogram`` of ``y`` (made here if None).
        role: the segment's role (from ``classify_role``), for role-relative norms.

    Returns:
        Tags in the order bright/dark, warm, distorted/clean, wet/dry, punchy/soft.
    """
    return tags_from_measures(tone_measures(y, sr=sr, spec=spec, role=role), role=role)

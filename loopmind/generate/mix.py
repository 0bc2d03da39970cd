"""Auto-mix: per-track settings from features, then the mix and the master bus.

Two halves with a ``MixSettings`` per track between them, so a trained mixer can replace the
heuristic one and a user can edit the result in ``arrangement.json``:

1. ``track_features`` measures each rendered track (loudness where it plays, spectrum, crest,
   stereo width) and a ``Mixer`` turns the features into ``MixSettings``. ``HeuristicMixer``
   is the default: role loudness targets relative to the kick, high-pass per role, a fixed
   pan spread, reverb sends for pads and leads, bass ducked under the kick.
2. ``apply_mix`` applies the song's settings: per track EQ, fader, side-chain ducking and
   constant-power pan into post-fader stems; sends into one reverb bus; then the master bus:
   a trim to a nominal level, a linked glue compressor, loudness normalization to
   ``master.target_lufs`` and a look-ahead true-peak limiter to ``master.ceiling_dbtp``.

Envelopes (ducking, glue, limiter) are computed on a grid of about 1 ms blocks that divides the
loudness meter's 100 ms step, and the resulting gain curves are interpolated back to samples;
attack/release followers are vectorized (a running maximum in the log domain gives an exact
exponential release, ``scipy.signal.lfilter`` the attack), so nothing loops per sample in Python.
Everything is deterministic: the same song and tracks give a bit-identical master.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import pedalboard
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter, lfilter, sosfilt

from loopmind.generate.song import MasterSettings, MixSettings, Song, Track
from loopmind.library.analysis.loudness import (
    _TP_FILTER,
    _TP_HALF,
    ABSOLUTE_GATE_LUFS,
    SILENCE_LUFS,
    STEP_S,
    LoudnessTrack,
    k_weighting_sos,
)

# -- the heuristic mixer's tables -------------------------------------------------------------

# Loudness of each role where it plays, in LU relative to the mix reference (the kick sits
# at -8): the balance of a typical beat. Roles not listed get ``_DEFAULT_LEVEL_LU``.
ROLE_LEVEL_LU: dict[str, float] = {
    "kick": -8.0, "drumloop": -9.0, "snare": -10.0, "clap": -10.0, "tom": -13.0,
    "hihat": -16.0, "cymbal": -18.0, "perc": -17.0,
    "bass": -9.0, "keys": -13.0, "pad": -15.0, "lead": -12.0, "strings": -14.0,
    "guitar": -13.0, "vocal": -11.0, "fx": -18.0,
}
_DEFAULT_LEVEL_LU = -14.0

# Genre offsets on top of ROLE_LEVEL_LU (LU); genres use the filename vocabulary of
# ``library.names.GENRE_WORDS``.
GENRE_LEVEL_LU: dict[str, dict[str, float]] = {
    "trap": {"bass": 1.5, "hihat": 1.0, "kick": -1.0},
    "drill": {"bass": 1.5, "hihat": 1.0, "kick": -1.0},
    "house": {"kick": 1.0, "hihat": 1.0, "pad": -1.0},
    "techno": {"kick": 1.5, "perc": 1.0, "pad": -1.0},
    "dnb": {"drumloop": 1.0, "bass": 1.0, "snare": 1.0},
    "jungle": {"drumloop": 1.5, "bass": 1.0},
    "boombap": {"snare": 1.0, "drumloop": 1.0, "keys": -1.0},
    "hiphop": {"snare": 1.0, "bass": 0.5},
    "lofi": {"keys": 1.5, "hihat": -2.0, "drumloop": -1.0},
    "ambient": {"pad": 4.0, "strings": 2.0, "kick": -3.0, "drumloop": -3.0},
    "pop": {"vocal": 1.5, "lead": 1.0},
    "rnb": {"vocal": 1.5, "keys": 1.0},
}

# High-pass cut-off per role (Hz); no entry means none. Kick, bass and drum loops keep their
# low end (a drum loop carries the kick); melodic parts make room for the bass.
ROLE_HIGHPASS_HZ: dict[str, float] = {
    "snare": 100.0, "clap": 150.0, "tom": 60.0, "hihat": 300.0, "cymbal": 300.0,
    "perc": 150.0, "keys": 120.0, "pad": 150.0, "lead": 180.0, "strings": 120.0,
    "guitar": 100.0, "vocal": 100.0, "fx": 100.0,
}
# melodic roles that carry the low end themselves when the song has no bass track
_LOW_END_ROLES = frozenset({"keys", "pad", "strings", "guitar"})
_NO_BASS_HIGHPASS_HZ = 40.0
# a gentle dip where pads and keys muddy the bass and kick: (freq_hz, gain_db, q)
_MUD_CUT = (300.0, -2.0, 1.0)

# Pan amount of the roles spread left and right (alternately, by track name); all others
# stay centred.
ROLE_PAN_SPREAD: dict[str, float] = {
    "hihat": 0.3, "perc": 0.45, "keys": 0.25, "guitar": 0.35, "cymbal": 0.35, "tom": 0.3,
    "strings": 0.2,
}

# Reverb send (0..1, amplitude) per role.
ROLE_REVERB_SEND: dict[str, float] = {
    "pad": 0.35, "lead": 0.25, "keys": 0.2, "vocal": 0.25, "strings": 0.3, "guitar": 0.15,
    "snare": 0.1, "clap": 0.12, "perc": 0.08, "tom": 0.1, "fx": 0.2,
}
GENRE_REVERB_SCALE: dict[str, float] = {
    "ambient": 1.6, "lofi": 1.2, "trance": 1.3, "trap": 0.8, "drill": 0.8, "techno": 0.8,
    "boombap": 0.8,
}

# Side-chain ducking depth (dB) per role, under the kick (or the drum loop without a kick).
ROLE_DUCK_DB: dict[str, float] = {"bass": 5.0, "pad": 2.0}
GENRE_DUCK_SCALE: dict[str, float] = {"house": 1.2, "techno": 1.2, "edm": 1.3, "trance": 1.2,
                                      "garage": 1.1, "ambient": 0.5, "lofi": 0.6}

# The mix reference: the kick plays at MIX_REFERENCE_LUFS + ROLE_LEVEL_LU["kick"]. Low enough
# that post-fader stems keep headroom; the master bus sets the final level anyway.
MIX_REFERENCE_LUFS = -14.0
# post-fader stems peak at most here (dBFS; a stem above 0 dBFS would clip when written)
STEM_PEAK_LIMIT_DB = -1.0
_MAX_BOOST_DB = 24.0
_MAX_CUT_DB = -40.0

# -- the buses ---------------------------------------------------------------------------------

REVERB_ROOM_SIZE = 0.55
REVERB_DAMPING = 0.5
REVERB_PREDELAY_S = 0.015
# Freeverb at 100 % wet is about 3 LU louder than its input; this brings it to unity
REVERB_RETURN_DB = -3.0
REVERB_RETURN_HIGHPASS_HZ = 300.0
REVERB_RETURN_LOWPASS_HZ = 10000.0
REVERB_CHUNK_S = 45.0
REVERB_TAIL_S = 4.0

DUCK_ATTACK_S = 0.002
DUCK_RELEASE_S = 0.12
# the side-chain hears only the low end, so a drum loop's hats and snares do not duck the bass
DUCK_SIDECHAIN_LOWPASS_HZ = 150.0

# the bus is trimmed to this RMS level (dBFS, over the parts BS.1770 gating keeps) before the
# glue compressor, so MasterSettings' threshold means the same whatever level the faders left
# the mix at (about -18 LUFS for most mixes)
GLUE_INPUT_RMS_DB = -20.0
GLUE_RMS_S = 0.01
GLUE_ATTACK_S = 0.02
GLUE_RELEASE_S = 0.2
GLUE_KNEE_DB = 6.0

LIMITER_ATTACK_S = 0.0015
LIMITER_HOLD_S = 0.01
LIMITER_RELEASE_S = 0.08
# the limiter aims this far under the ceiling: its gain curve moves between samples, which
# shifts inter-sample peaks by a few hundredths of a dB
LIMITER_MARGIN_DB = 0.1
# more gain reduction than this on the loudest peak is audible pumping and distortion: the
# master then stays quieter than the target and the report says so
MAX_LIMITING_DB = 12.0
# blocks whose sample peak is this far under the ceiling are not searched for inter-sample
# peaks (real material overshoots its samples by well under 1 dB; the meter itself only
# looks within 3 dB of a step's sample peak)
_TP_SEARCH_DB = 3.0


# -- features ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrackFeatures:
    """What a mixer knows about one rendered track.

    Attributes:
        name: the track's name.
        role: one of ``role.ROLES`` (or anything else: mixers fall back to defaults).
        integrated_lufs: BS.1770 gated loudness over the whole track (``SILENCE_LUFS`` if
            silent).
        active_lufs: loudness over the 400 ms blocks where the track plays (within 20 LU of
            its loud blocks), so a track silent half the song is judged on where it plays.
        active_fraction: share of the song's blocks where the track plays, 0..1.
        peak_db: sample peak in dBFS.
        crest_db: sample peak over the RMS of the active part, in dB.
        spectral_centroid_hz: power-weighted mean frequency of the active part.
        low_energy_fraction: share of the power below 150 Hz, 0..1.
        stereo_width: side energy over total (mid + side) energy: 0 mono, 0.5 uncorrelated
            channels, 1 opposite polarity.
    """

    name: str
    role: str
    integrated_lufs: float
    active_lufs: float
    active_fraction: float
    peak_db: float
    crest_db: float
    spectral_centroid_hz: float
    low_energy_fraction: float
    stereo_width: float

    @property
    def silent(self) -> bool:
        return self.active_lufs <= ABSOLUTE_GATE_LUFS


_ACTIVE_RANGE_LU = 20.0
_LOW_CUTOFF_HZ = 150.0
_SPECTRUM_FRAMES = 64
_SPECTRUM_N_FFT = 4096


def _as_stereo(y: np.ndarray, what: str = "track") -> np.ndarray:
    """(2, n) float32 from (2, n) or mono (n,); other shapes raise ValueError."""
    y = np.asarray(y)
    if y.ndim == 1:
        y = np.stack([y, y])
    if y.ndim != 2 or y.shape[0] != 2:
        raise ValueError(f"{what}: expected audio of shape (2, n) or (n,), got {y.shape}")
    return np.ascontiguousarray(y, dtype=np.float32)


def _step(sr: int) -> int:
    """Samples per loudness step, as the meter counts them."""
    return max(1, int(round(sr * STEP_S)))


def _k_weighted(y: np.ndarray, sr: int) -> np.ndarray:
    """K-weighted copy of ``y`` (C, n), float32 like the meter."""
    return filter_active(k_weighting_sos(sr).astype(np.float32), y)


# a filter's ringing is followed until it is this far below its input's level
_RING_FLOOR = 1e-10
_ACTIVE_BLOCK = 1024  # samples per silence test


@lru_cache(maxsize=64)
def _ring_samples(sos_bytes: bytes, n_sections: int) -> int:
    """Samples after the input stops until the cascade's ringing is ``_RING_FLOOR`` down (its
    slowest pole decides; a margin covers the cascade's repeated poles)."""
    sos = np.frombuffer(sos_bytes, dtype=np.float64).reshape(n_sections, 6)
    slowest = max((float(np.max(np.abs(np.roots(sec[3:])))) for sec in sos), default=0.0)
    if slowest <= 0.0:
        return 8
    if slowest >= 1.0:  # not stable: no shortcut
        return -1
    return int(math.ceil(1.5 * math.log(_RING_FLOOR) / math.log(slowest))) + 64


def filter_active(sos: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``sosfilt(sos, y, axis=-1)`` for (C, n) audio that is silent in places, computed only
    where the input plays or the filter still rings.

    A song's tracks are silent wherever their role does not play (a third of the time and
    more): there the filter's output is its free decay, followed until it is 200 dB down and
    zero after. Each stretch that plays starts from a clean filter state, which differs from
    the exact state by what is left of the ringing then (under ``_RING_FLOOR`` of the level);
    a signal without such silences is filtered in one piece, exactly as ``sosfilt``.

    Returns:
        a new array of ``y``'s shape, the dtype ``sosfilt`` gives.
    """
    n = y.shape[-1]
    ring = _ring_samples(np.asarray(sos, dtype=np.float64).tobytes(), len(sos))
    if ring < 0 or n <= 2 * ring + _ACTIVE_BLOCK:
        return sosfilt(sos, y, axis=-1)
    n_full = n // _ACTIVE_BLOCK
    playing = np.any(y[:, :n_full * _ACTIVE_BLOCK].reshape(y.shape[0], n_full, _ACTIVE_BLOCK)
                     != 0, axis=(0, 2))
    if n_full * _ACTIVE_BLOCK < n:  # the partial last block
        playing = np.append(playing, bool(np.any(y[:, n_full * _ACTIVE_BLOCK:])))
    active = np.flatnonzero(playing)
    spans: list[list[int]] = []
    for b in active:
        a0, b0 = int(b) * _ACTIVE_BLOCK, min(n, (int(b) + 1) * _ACTIVE_BLOCK)
        if spans and a0 <= spans[-1][1] + ring:
            spans[-1][1] = b0
        else:
            spans.append([a0, b0])
    if len(spans) == 1 and spans[0][0] == 0 and spans[0][1] + ring >= n:
        return sosfilt(sos, y, axis=-1)
    out_dtype = np.result_type(sos.dtype, y.dtype, np.float32)
    out = np.zeros(y.shape, dtype=out_dtype)
    for a0, b0 in spans:
        end = min(n, b0 + ring)
        out[:, a0:end] = sosfilt(sos, y[:, a0:end], axis=-1)
    return out


_BLOCK_OPS = {"max": np.maximum, "min": np.minimum, "sum": np.add}


def _blocks(x: np.ndarray, hop: int, reduce: str = "max") -> np.ndarray:
    """Per-block max, min or sum of ``x`` (n,) (a partial last block counts what it has);
    sums come back as float64 (accumulated in ``x``'s dtype: blocks are short)."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.float64 if reduce == "sum" else x.dtype)
    out = _BLOCK_OPS[reduce].reduceat(x, np.arange(0, len(x), hop))
    return out.astype(np.float64) if reduce == "sum" else out


def _power(y: np.ndarray) -> np.ndarray:
    """Channel-summed square of ``y`` (C, n), float32 (n,)."""
    p = y[0] * y[0]
    for ch in y[1:]:
        p += ch * ch
    return p


def _loudness_track(y: np.ndarray, sr: int) -> LoudnessTrack:
    """The meter's per-step mean squares of ``y`` (C, n) (true peaks left at zero).

    ``loudness.measure`` would give the same loudness but also finds every step's true peak,
    which costs three times the K-weighting; the mixer needs true peaks only on the master,
    near the ceiling.
    """
    step = _step(sr)
    ms = _blocks(_power(_k_weighted(y, sr)), step, "sum") / step
    return LoudnessTrack(mean_square=ms, true_peak=np.zeros(len(ms), dtype=np.float32))


def integrated_lufs(y: np.ndarray, *, sr: int) -> float:
    """BS.1770 integrated loudness of an in-memory signal.

    Args:
        y: audio, shape (2, n) or (n,).
        sr: sample rate in Hz.

    Returns:
        loudness in LUFS; ``SILENCE_LUFS`` for silence or an empty signal.
    """
    y = _as_stereo(y)
    if y.shape[1] == 0:
        return SILENCE_LUFS
    return _loudness_track(y, sr).integrated_lufs()


def _to_db(x):
    """Linear amplitude (scalar or array) to dB, floored at ``SILENCE_LUFS`` as the meter
    floors true peaks."""
    return 20.0 * np.log10(np.maximum(x, 10.0 ** (SILENCE_LUFS / 20.0)))


def track_features(name: str, role: str, y: np.ndarray, sr: int) -> TrackFeatures:
    """Measure one rendered track for a mixer.

    Args:
        name: the track's name.
        role: its role.
        y: the track's audio, shape (2, n) (or mono (n,)), float.
        sr: sample rate in Hz.

    Returns:
        TrackFeatures (silent or empty audio gives ``SILENCE_LUFS`` levels and zeros).
    """
    y = _as_stereo(y, name)
    if not np.isfinite(y.sum()):  # one cheap pass; NaN and inf propagate into the sum
        y = np.where(np.isfinite(y), y, np.float32(0.0))
    step = _step(sr)
    peak = max(float(y.max(initial=0.0)), -float(y.min(initial=0.0)))
    if peak == 0.0:
        return TrackFeatures(name, role, SILENCE_LUFS, SILENCE_LUFS, 0.0, SILENCE_LUFS, 0.0,
                             0.0, 0.0, 0.0)
    lt = _loudness_track(y, sr)
    integrated = lt.integrated_lufs()
    ms = lt.mean_square
    blocks = (np.lib.stride_tricks.sliding_window_view(ms, 4).mean(axis=1) if len(ms) >= 4
              else np.array([ms.mean()]))
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(np.maximum(blocks, 1e-30))
        step_lufs = -0.691 + 10.0 * np.log10(np.maximum(ms, 1e-30))
    audible = block_lufs > ABSOLUTE_GATE_LUFS
    if not audible.any():
        active_lufs, active_fraction = SILENCE_LUFS, 0.0
        active_steps = ms > 0
    else:
        # "where it plays": blocks within 20 LU of the track's loud blocks (its 95th percentile,
        # so one freak peak does not decide)
        floor = max(ABSOLUTE_GATE_LUFS, float(np.percentile(block_lufs[audible], 95))
                    - _ACTIVE_RANGE_LU)
        active = block_lufs > floor
        active_lufs = float(-0.691 + 10.0 * np.log10(blocks[active].mean()))
        active_fraction = float(active.mean())
        active_steps = step_lufs > floor
        if not active_steps.any():
            active_steps = ms > 0

    raw = _blocks(_power(y), step, "sum")
    rms = math.sqrt(float(raw[active_steps[:len(raw)]].mean()) / (2 * step))
    crest_db = float(_to_db(peak) - _to_db(rms)) if rms > 0 else 0.0

    # side = (L - R) / 2 holds (sum L^2 + sum R^2 - 2 sum LR) / 4 of the (sum L^2 + sum R^2) / 2
    # that mid and side hold together
    total = float(raw.sum())
    lr = float(np.dot(y[0], y[1]))
    width = float(np.clip((total - 2.0 * lr) / (2.0 * total), 0.0, 1.0)) if total > 0 else 0.0

    centroid, low_fraction = _spectrum_stats(y, sr, np.flatnonzero(active_steps) * step)
    return TrackFeatures(
        name=name, role=role, integrated_lufs=float(integrated), active_lufs=active_lufs,
        active_fraction=active_fraction, peak_db=float(_to_db(peak)), crest_db=crest_db,
        spectral_centroid_hz=centroid, low_energy_fraction=low_fraction,
        stereo_width=float(width))


def _spectrum_stats(y: np.ndarray, sr: int, starts: np.ndarray) -> tuple[float, float]:
    """(spectral centroid in Hz, power fraction below 150 Hz) from up to 64 frames of
    4096 samples spread evenly over ``starts`` (sample offsets of active steps)."""
    n_fft = _SPECTRUM_N_FFT
    n = y.shape[1]
    if n < n_fft:
        frames = np.zeros((2, 1, n_fft), dtype=np.float32)
        frames[:, 0, :n] = y
    else:
        starts = np.minimum(starts, n - n_fft)
        if len(starts) > _SPECTRUM_FRAMES:
            starts = starts[np.linspace(0, len(starts) - 1, _SPECTRUM_FRAMES).round().astype(int)]
        if len(starts) == 0:
            starts = np.array([0])
        frames = y[:, starts[:, None] + np.arange(n_fft)[None, :]]  # (2, frames, n_fft)
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=-1)) ** 2
    power = spec.sum(axis=(0, 1))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    total = float(power.sum())
    if total <= 0:
        return 0.0, 0.0
    return (float((freqs * power).sum() / total),
            float(power[freqs < _LOW_CUTOFF_HZ].sum() / total))


# -- mixers ------------------------------------------------------------------------------------

class Mixer(Protocol):
    """Turns per-track features into mix settings (the heuristic now, a trained model later).

    Attributes:
        name: recorded in the render's report.
    """

    name: str

    def settings(self, features: dict[str, TrackFeatures], *,
                 genre: str | None) -> dict[str, MixSettings]:
        """Settings for every track in ``features`` (same keys). ``mute`` is ignored:
        ``auto_mix`` keeps the user's. Must be deterministic."""
        ...


def _genre_key(genre: str | None) -> str | None:
    if not genre:
        return None
    return "".join(ch for ch in genre.lower() if ch.isalnum()) or None


def _round(x: float, nd: int = 2) -> float:
    return float(round(x, nd)) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass
class HeuristicMixer:
    """The default mixer: fixed tables by role, adjusted by genre and a few features.

    Attributes:
        reference_lufs: the mix reference the role levels are relative to.
        stem_peak_limit_db: all faders come down together until no post-fader stem is
            expected to peak above this.
    """

    name: str = "heuristic"
    reference_lufs: float = MIX_REFERENCE_LUFS
    stem_peak_limit_db: float = STEM_PEAK_LIMIT_DB

    def level_lu(self, role: str, genre: str | None) -> float:
        """Target loudness of ``role`` where it plays, LU relative to the mix reference."""
        g = GENRE_LEVEL_LU.get(_genre_key(genre) or "", {})
        return ROLE_LEVEL_LU.get(role, _DEFAULT_LEVEL_LU) + g.get(role, 0.0)

    def settings(self, features: dict[str, TrackFeatures], *,
                 genre: str | None) -> dict[str, MixSettings]:
        g = _genre_key(genre) or ""
        names = sorted(features)  # every decision depends on names in a fixed order
        roles = {n: features[n].role for n in names}
        audible = [n for n in names if not features[n].silent]
        has_bass = any(roles[n] == "bass" for n in audible)
        has_drums = any(roles[n] in ("kick", "drumloop") for n in audible)
        trigger = self.duck_trigger(features)

        out: dict[str, MixSettings] = {}
        spread_index = 0
        for n in names:
            f = features[n]
            role = f.role
            s = MixSettings()
            if not f.silent:
                s.gain_db = float(np.clip(self.reference_lufs + self.level_lu(role, genre)
                                          - f.active_lufs, _MAX_CUT_DB, _MAX_BOOST_DB))
            hp = ROLE_HIGHPASS_HZ.get(role)
            if hp is not None and role in _LOW_END_ROLES and not has_bass:
                hp = _NO_BASS_HIGHPASS_HZ
            if hp is not None and f.spectral_centroid_hz > 0:
                # a low instrument in a high role (a sub lead) keeps its body
                hp = max(20.0, min(hp, f.spectral_centroid_hz / 3.0))
            s.highpass_hz = float(round(hp / 5.0) * 5.0) if hp is not None else None
            if role in _LOW_END_ROLES and has_bass and has_drums:
                s.eq = [_MUD_CUT]
            amount = ROLE_PAN_SPREAD.get(role)
            if amount is not None:
                if f.stereo_width > 0.35:
                    amount *= 0.5  # already wide: a small nudge keeps it from leaning
                s.pan = _round(-amount if spread_index % 2 == 0 else amount)
                spread_index += 1
            s.reverb_send = _round(min(1.0, ROLE_REVERB_SEND.get(role, 0.0)
                                       * GENRE_REVERB_SCALE.get(g, 1.0)))
            duck = ROLE_DUCK_DB.get(role, 0.0) * GENRE_DUCK_SCALE.get(g, 1.0)
            if trigger is not None and trigger != n and duck > 0 and not f.silent:
                s.duck_under = trigger
                s.duck_db = _round(duck, 1)
            out[n] = s

        # stem headroom: pan adds up to 3 dB to one side, EQ boosts are not used here
        worst = max((features[n].peak_db + out[n].gain_db + 3.0 for n in audible),
                    default=-math.inf)
        shift = min(0.0, self.stem_peak_limit_db - worst)
        for n in names:
            if not features[n].silent:
                out[n].gain_db = _round(out[n].gain_db + shift)
        return out

    @staticmethod
    def duck_trigger(features: dict[str, TrackFeatures]) -> str | None:
        """The track others duck under: the loudest kick, else the loudest drum loop."""
        for role in ("kick", "drumloop"):
            cands = [f for f in features.values() if f.role == role and not f.silent]
            if cands:
                return min(cands, key=lambda f: (-f.active_lufs, f.name)).name
        return None


def auto_mix(song: Song, tracks: dict[str, np.ndarray], *, sr: int,
             mixer: Mixer | None = None, workers: int = 1) -> dict[str, TrackFeatures]:
    """Measure every track and write the mixer's settings into ``song.tracks[*].mix``.

    A track's ``mute`` flag is kept (it is the user's, not the mixer's). Tracks of the song
    without audio in ``tracks`` are measured as silence.

    Args:
        song: the arrangement; its tracks' ``mix`` are replaced.
        tracks: track name -> audio, shape (2, n).
        sr: sample rate in Hz.
        mixer: when None, the learned mixer if one is present and valid
            (``train.mixer.default_mixer``), else ``HeuristicMixer()``.
        workers: threads for measuring; the result does not depend on it.

    Returns:
        the features the settings came from, by track name.
    """
    if mixer is None:
        # a trained mixer (the user's, else the shipped one) when present and valid, for the
        # decisions it made better than the heuristic on held-out songs; the heuristic else
        from loopmind.generate.train.mixer import default_mixer

        mixer, why = default_mixer()
        if why and why not in song.notes:
            song.notes.append(why)
        mixer = mixer or HeuristicMixer()
    todo = list({t.name: t for t in reversed(song.tracks)}.values())[::-1]  # first of a name

    def measure(t: Track) -> TrackFeatures:
        return track_features(t.name, t.role, tracks.get(t.name, np.zeros((2, 0))), sr)

    if workers > 1 and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopmind-mix") as ex:
            features = dict(zip([t.name for t in todo], ex.map(measure, todo)))
    else:
        features = {t.name: measure(t) for t in todo}
    settings = mixer.settings(features, genre=song.genre)
    for t in song.tracks:
        s = settings.get(t.name)
        if s is not None:
            t.mix = replace(s, mute=t.mix.mute)
    return features


# -- block envelopes ---------------------------------------------------------------------------

def _block_hop(sr: int) -> int:
    """Block length: the divisor of the meter's step closest to 1 ms, so blocks tile steps."""
    step = _step(sr)
    target = max(1.0, sr / 1000.0)
    divisors = [d for d in range(1, step + 1) if step % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), d))


def _peak_release(x: np.ndarray, tau_blocks: float) -> np.ndarray:
    """env[b] = max over k <= b of x[k] * exp(-(b - k) / tau): a peak follower with instant
    attack and exponential release, as a running maximum in the log domain. ``x`` >= 0."""
    if len(x) == 0:
        return x.astype(np.float64)
    d = 1.0 / max(tau_blocks, 1e-9)
    k = np.arange(len(x), dtype=np.float64) * d
    with np.errstate(divide="ignore"):
        lx = np.log(np.maximum(x.astype(np.float64), 1e-300))
    return np.exp(np.maximum.accumulate(lx + k) - k)


def _one_pole(x: np.ndarray, tau_blocks: float) -> np.ndarray:
    """One-pole low-pass (the follower's attack), starting from the first value."""
    if len(x) == 0 or tau_blocks <= 0:
        return x
    a = math.exp(-1.0 / tau_blocks)
    y, _ = lfilter([1.0 - a], [1.0, -a], x, zi=[a * x[0]])
    return y


def _follow(x: np.ndarray, *, attack_blocks: float, release_blocks: float) -> np.ndarray:
    """Attack/release envelope follower on a block grid (x >= 0)."""
    return _one_pole(_peak_release(x, release_blocks), attack_blocks)


def _to_samples(block_values: np.ndarray, hop: int, n: int) -> np.ndarray:
    """Linear interpolation of per-block values, placed at block centres, to ``n`` samples
    (float32). Every sample lies between its own block's value and a neighbour's."""
    v = np.asarray(block_values, dtype=np.float32)
    nb = len(v)
    if nb == 0:
        return np.zeros(n, dtype=np.float32)
    ext = np.concatenate([v[:1], v, v[-1:]])  # ext[b + 1] is block b
    step = np.diff(ext)  # step[b] goes from block b - 1 to block b
    frac = ((np.arange(hop) - (hop - 1) / 2.0) / hop).astype(np.float32)  # -0.5 .. 0.5
    h = int(np.count_nonzero(frac < 0))
    out = np.empty((nb, hop), dtype=np.float32)
    # before the centre: between block b - 1 and b; after it: between b and b + 1
    out[:, :h] = ext[:nb, None] + step[:nb, None] * (1.0 + frac[None, :h])
    out[:, h:] = ext[1:nb + 1, None] + step[1:, None] * frac[None, h:]
    return out.reshape(-1)[:n]


# -- true peak ---------------------------------------------------------------------------------

def _abs_peaks(x: np.ndarray, hop: int) -> np.ndarray:
    """Per-block max |x| of ``x`` (n,), float64 (no |x| temporary)."""
    return np.maximum(_blocks(x, hop), -_blocks(x, hop, "min")).astype(np.float64)


def _inter_sample_peaks(y: np.ndarray, hop: int, threshold: float) -> np.ndarray:
    """Largest inter-sample value per block (linear, max over channels) near loud samples.

    The meter's 4x interpolator (BS.1770 Annex 2) is evaluated on both sides of every local
    maximum of |y| at or above ``threshold``: an inter-sample peak sits next to one. Looking
    only at samples within 3 dB of where peaks could matter is what the meter does too (it
    interpolates within 3 dB of each 100 ms step's peak).

    Args:
        y: audio, shape (C, n), float32.
        hop: block length in samples.
        threshold: linear level; quieter samples are not interpolated around.

    Returns:
        float64 array, shape (ceil(n / hop),); 0 where nothing was interpolated.
    """
    n = y.shape[1]
    out = np.zeros(-(-n // hop), dtype=np.float64)
    if n < 3:
        return out
    offs = np.arange(-_TP_HALF + 1, _TP_HALF + 1)
    phases = _TP_FILTER[1:].T.astype(np.float32)  # (taps, 3 fractional positions)
    thr = np.float32(threshold)
    for ch in y:
        idx = np.flatnonzero((ch >= thr) | (ch <= -thr))
        idx = idx[(idx >= 1) & (idx < n - 1)]
        if len(idx) == 0:
            continue
        a = np.abs(ch[idx])
        c = idx[(a >= np.abs(ch[idx - 1])) & (a >= np.abs(ch[idx + 1]))]
        # the intervals on both sides of each local maximum, each named by its left sample
        left = np.concatenate([c - 1, c])
        left.sort()
        left = left[np.concatenate([[True], left[1:] != left[:-1]])]
        vals = np.empty(len(left), dtype=np.float32)
        chunk = 1 << 15
        for s0 in range(0, len(left), chunk):
            w = left[s0:s0 + chunk, None] + offs[None, :]
            inside = (w >= 0) & (w < n)
            win = np.where(inside, ch[np.clip(w, 0, n - 1)], np.float32(0.0))
            vals[s0:s0 + chunk] = np.abs(win @ phases).max(axis=1)
        blk = left // hop
        starts = np.flatnonzero(np.concatenate([[True], blk[1:] != blk[:-1]]))
        ub = blk[starts]
        out[ub] = np.maximum(out[ub], np.maximum.reduceat(vals, starts))
    return out


# -- per-track processing ----------------------------------------------------------------------

def _peaking_sos(freq_hz: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """RBJ peaking EQ biquad as one second-order section."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * min(freq_hz, 0.49 * sr) / sr
    alpha = math.sin(w0) / (2.0 * max(q, 1e-3))
    b = [1.0 + alpha * a, -2.0 * math.cos(w0), 1.0 - alpha * a]
    den = [1.0 + alpha / a, -2.0 * math.cos(w0), 1.0 - alpha / a]
    return np.array([[b[0] / den[0], b[1] / den[0], b[2] / den[0], 1.0, den[1] / den[0],
                      den[2] / den[0]]])


def _eq_sos(s: MixSettings, sr: int) -> np.ndarray | None:
    """The track's filters (12 dB/oct high- and low-pass, peaking bands) as one SOS chain."""
    nyq = sr / 2.0
    sections = []
    if s.highpass_hz and 0 < s.highpass_hz < 0.95 * nyq:
        sections.append(butter(2, s.highpass_hz, "highpass", fs=sr, output="sos"))
    if s.lowpass_hz and 0 < s.lowpass_hz < 0.95 * nyq:
        sections.append(butter(2, s.lowpass_hz, "lowpass", fs=sr, output="sos"))
    for freq, gain, q in s.eq:
        if gain and 0 < freq < nyq:
            sections.append(_peaking_sos(freq, gain, q, sr))
    return np.vstack(sections).astype(np.float32) if sections else None


def _pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan law, unity at the centre: (left, right) gains."""
    theta = (float(np.clip(pan, -1.0, 1.0)) + 1.0) * math.pi / 4.0
    return math.sqrt(2.0) * math.cos(theta), math.sqrt(2.0) * math.sin(theta)


def _sidechain_envelope(trigger: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """The trigger's low-end envelope per block, normalized so its hits reach 1.

    The side-chain only needs the low end at block resolution, so it runs decimated: a
    boxcar average over ``d`` samples (a divisor of ``hop``, rate >= 4 kHz; its nulls sit on
    the alias frequencies) and then the low-pass at that rate.
    """
    d = max(k for k in range(1, hop + 1) if hop % k == 0 and sr / k >= 4000.0)
    mono = (_blocks(trigger[0], d, "sum") + _blocks(trigger[1], d, "sum")) / (2.0 * d)
    sos = butter(2, DUCK_SIDECHAIN_LOWPASS_HZ, "lowpass", fs=sr / d, output="sos")
    low = np.abs(sosfilt(sos, mono))
    blocks_per_s = sr / hop
    env = _follow(_blocks(low, hop // d), attack_blocks=DUCK_ATTACK_S * blocks_per_s,
                  release_blocks=DUCK_RELEASE_S * blocks_per_s)
    top = float(env.max(initial=0.0))
    if top <= 0:
        return np.zeros_like(env)
    # its hits' level: a high percentile of where it plays (within 60 dB of its loudest),
    # so one stray peak does not weaken every duck
    ref = float(np.percentile(env[env > top * 1e-3], 99))
    return np.minimum(env / ref, 1.0)


# -- the master bus ----------------------------------------------------------------------------

def _glue_gain(pow_blocks: np.ndarray, sr: int, hop: int, m: MasterSettings) -> np.ndarray:
    """Per-block gain (linear) of a stereo-linked RMS compressor with a soft knee, from the
    channel-summed signal power per block."""
    power = pow_blocks / (2 * hop)
    blocks_per_s = sr / hop
    rms_power = _one_pole(power, GLUE_RMS_S * blocks_per_s)
    with np.errstate(divide="ignore"):
        level = 10.0 * np.log10(np.maximum(rms_power, 1e-20))
    over = level - m.glue_threshold_db
    slope = 1.0 - 1.0 / max(m.glue_ratio, 1.0)
    knee = GLUE_KNEE_DB
    gr = np.where(over <= -knee / 2, 0.0,
                  np.where(over >= knee / 2, slope * over,
                           slope * (over + knee / 2) ** 2 / (2 * knee)))
    gr = _follow(gr, attack_blocks=GLUE_ATTACK_S * blocks_per_s,
                 release_blocks=GLUE_RELEASE_S * blocks_per_s)
    return 10.0 ** (-gr / 20.0)


def _limiter_reduction(need_db: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """Gain reduction (dB, per block) that covers ``need_db`` everywhere, smoothly.

    The need is first spread over its neighbouring blocks (so the interpolated per-sample gain
    stays under every sample's need) and held; then it is met by an exponential look-ahead
    attack before each peak and an exponential release after it.
    """
    blocks_per_s = sr / hop
    hold = max(3, int(round(LIMITER_HOLD_S * blocks_per_s)) | 1)
    r = maximum_filter1d(maximum_filter1d(need_db, 3, mode="nearest"), hold,
                         origin=hold // 2, mode="nearest")  # hold after the peak
    release = _peak_release(r, LIMITER_RELEASE_S * blocks_per_s)
    attack = _peak_release(r[::-1], LIMITER_ATTACK_S * blocks_per_s)[::-1]
    return np.maximum(np.maximum(release, attack), r)


def _loudness_from_blocks(kpow_blocks: np.ndarray, gain_blocks: np.ndarray,
                          blocks_per_step: int, step: int) -> float:
    """Integrated loudness of a signal whose K-weighted power per block is ``kpow_blocks``,
    after a slowly varying gain (per block, linear)."""
    p = kpow_blocks * np.asarray(gain_blocks, dtype=np.float64) ** 2
    n_steps = len(p) // blocks_per_step
    ms = p[:n_steps * blocks_per_step].reshape(n_steps, blocks_per_step).sum(axis=1) / step
    lt = LoudnessTrack(mean_square=ms, true_peak=np.zeros(n_steps, dtype=np.float32))
    return lt.integrated_lufs()


def _silent_master(n: int, note: str, report: dict[str, Any],
                   gain_out: list | None = None) -> np.ndarray:
    report["notes"].append(note)
    if gain_out is not None:
        gain_out.append(np.zeros(n, dtype=np.float32))
    report.update(master_lufs=SILENCE_LUFS, master_true_peak_dbtp=SILENCE_LUFS,
                  master_sample_peak_dbfs=SILENCE_LUFS, glue_trim_db=0.0,
                  glue_max_reduction_db=0.0, master_gain_db=0.0, limiter_max_reduction_db=0.0)
    return np.zeros((2, n), dtype=np.float32)


def _master(x: np.ndarray, n: int, sr: int, m: MasterSettings,
            report: dict[str, Any], gain_out: list | None = None) -> np.ndarray:
    """Trim, glue, normalize and true-peak limit the summed bus.

    The whole chain is one smooth gain per sample, so ``master == bus * gain``; with
    ``gain_out`` that gain (float32 (n,)) is appended to it (the player applies it live).

    Args:
        x: the bus, float32 (2, n_pad), zero-padded to whole loudness steps so that blocks
            tile steps exactly; processed in place.
        n: the song's length in samples.

    Returns:
        the master, float32 (2, n).
    """
    notes: list[str] = report["notes"]
    step = _step(sr)
    hop = _block_hop(sr)
    bps = step // hop
    n_pad = x.shape[1]

    # 1. trim to the glue compressor's nominal input level (RMS over what BS.1770's gates
    # keep, unweighted: what the detector sees), then glue; one multiply does both
    pow_blocks = _blocks(_power(x), hop, "sum")
    ms = pow_blocks.reshape(-1, bps).sum(axis=1) / step
    lufs = LoudnessTrack(mean_square=ms, true_peak=np.zeros(len(ms), np.float32)).integrated_lufs()
    bus_db = lufs + 0.691 - 10.0 * math.log10(2.0) if lufs > SILENCE_LUFS else SILENCE_LUFS
    report["bus_rms_db"] = _round(bus_db)
    if lufs <= SILENCE_LUFS:
        return _silent_master(n, "the mix is silent: nothing to master", report, gain_out)
    trim_db = GLUE_INPUT_RMS_DB - bus_db
    trim = 10.0 ** (trim_db / 20.0)
    glue = (_glue_gain(pow_blocks * trim ** 2, sr, hop, m) if m.glue_ratio > 1.0
            else np.ones(len(pow_blocks)))
    glue_gain = _to_samples(glue * trim, hop, n_pad)
    x *= glue_gain
    if gain_out is None:
        del glue_gain
    report["glue_trim_db"] = _round(trim_db)
    report["glue_max_reduction_db"] = _round(-20.0 * math.log10(max(glue.min(), 1e-12)))

    # 2. the gain that meets the target after limiting, solved on the block grid: the limiter
    # only scales blocks, so loudness after limiting follows from K-weighted block powers
    kpow = _blocks(_power(_k_weighted(x, sr)), hop, "sum")
    if _loudness_from_blocks(kpow, np.ones(len(kpow)), bps, step) <= SILENCE_LUFS:
        return _silent_master(n, "the mix is only sub-sonic rumble or DC: nothing to master",
                              report, gain_out)
    ceiling = m.ceiling_dbtp - LIMITER_MARGIN_DB

    def solve(peak_db: np.ndarray, gain_db: float) -> tuple[float, np.ndarray, bool]:
        capped = False
        reduction = np.zeros(len(kpow))
        for _ in range(8):
            need = np.maximum(peak_db + gain_db - ceiling, 0.0)
            if need.max() > MAX_LIMITING_DB:
                gain_db -= float(need.max()) - MAX_LIMITING_DB
                need = np.maximum(peak_db + gain_db - ceiling, 0.0)
                capped = True
            reduction = _limiter_reduction(need, sr, hop)
            err = m.target_lufs - _loudness_from_blocks(
                kpow, 10.0 ** ((gain_db - reduction) / 20.0), bps, step)
            if capped or abs(err) < 0.02:
                break
            gain_db += err
        return gain_db, reduction, capped

    # limit on sample peaks, then measure the output's inter-sample peaks and tighten the
    # blocks that went over by their overshoot (one or two rounds settle it)
    ch_peaks = [_abs_peaks(ch, hop) for ch in x]
    sample_db = _to_db(np.maximum.reduce(ch_peaks))
    del ch_peaks
    gain_db = m.target_lufs - _loudness_from_blocks(kpow, np.ones(len(kpow)), bps, step)
    overshoot = np.zeros(len(kpow))
    y = np.empty((2, n), dtype=np.float32)
    threshold = 10.0 ** ((ceiling - _TP_SEARCH_DB) / 20.0)
    n_blocks = len(kpow)  # y is not padded: its blocks are the first of these

    def blocks_db(v: np.ndarray) -> np.ndarray:
        out = np.full(n_blocks, SILENCE_LUFS)
        out[:len(v)] = _to_db(v[:n_blocks])
        return out

    for _ in range(4):
        gain_db, reduction, capped = solve(sample_db + overshoot, gain_db)
        level = _to_samples(10.0 ** ((gain_db - reduction) / 20.0), hop, n)
        np.multiply(x[:, :n], level, out=y)
        inter = _inter_sample_peaks(y, hop, threshold)
        inter_db = blocks_db(inter)
        over = inter_db > ceiling + LIMITER_MARGIN_DB / 2
        if not over.any():
            break
        # the output's overshoot over its own samples is the input's too (the gain is smooth)
        out_db = blocks_db(np.maximum.reduce([_abs_peaks(ch, hop) for ch in y]))
        overshoot[over] = np.maximum(overshoot[over], inter_db[over] - out_db[over] + 0.01)
    del x
    if capped:
        notes.append(f"the master needs more than {MAX_LIMITING_DB:.0f} dB of limiting to "
                     f"reach {m.target_lufs:g} LUFS; it stops at {MAX_LIMITING_DB:.0f} dB")

    # 3. what is left over the ceiling (nothing, short of pathological signals) comes off
    # by plain gain
    sample_peak = max(float(y.max(initial=0.0)), -float(y.min(initial=0.0)))
    peak_db = float(_to_db(max(sample_peak, float(inter.max(initial=0.0)))))
    fix_gain = np.float32(1.0)
    if peak_db > m.ceiling_dbtp - 0.01:
        fix = m.ceiling_dbtp - 0.01 - peak_db
        fix_gain = np.float32(10.0 ** (fix / 20.0))
        y *= fix_gain
        gain_db += fix
        peak_db += fix
        sample_peak *= 10.0 ** (fix / 20.0)
    sample_peak_db = float(_to_db(sample_peak))
    lufs = integrated_lufs(y, sr=sr)
    report.update(master_lufs=_round(lufs), master_true_peak_dbtp=_round(peak_db),
                  master_sample_peak_dbfs=_round(sample_peak_db),
                  master_gain_db=_round(gain_db),
                  limiter_max_reduction_db=_round(float(reduction.max(initial=0.0))))
    if abs(lufs - m.target_lufs) > 0.5 and not capped:
        notes.append(f"the master is at {lufs:.1f} LUFS, not {m.target_lufs:g}")
    if gain_out is not None:
        level *= glue_gain[:n]
        level *= fix_gain
        gain_out.append(level)
    return y


# -- the mix -----------------------------------------------------------------------------------

@dataclass
class MixResult:
    """A mixed and mastered song.

    Attributes:
        master: the master, float32, shape (2, n).
        stems: track name -> post-fader stem (EQ, fader, ducking, pan), float32 (2, n); muted
            tracks are included. The unmuted stems plus ``reverb`` sum to the bus that the
            master chain processes.
        reverb: the reverb return, float32 (2, n).
        report: measurements and decisions: ``master_lufs``, ``master_true_peak_dbtp``,
            ``master_sample_peak_dbfs``, ``bus_lufs``, ``glue_trim_db``,
            ``glue_max_reduction_db``, ``master_gain_db``, ``limiter_max_reduction_db``,
            ``target_lufs``, ``ceiling_dbtp``, ``tracks`` (name -> gain_db, pan, mute,
            duck_under, duck_max_db, reverb_send) and ``notes`` (list of str).
        sr: sample rate in Hz.
        master_gain: with ``apply_mix(..., master_gain=True)``, the master chain as one gain
            per sample, float32 (n,): ``master == (unmuted stems + reverb) * master_gain``
            (to float32 rounding); None otherwise.
    """

    master: np.ndarray
    stems: dict[str, np.ndarray]
    reverb: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)
    sr: int = 44100
    master_gain: np.ndarray | None = None


def _mix_order(tracks: list[Track], notes: list[str]) -> list[Track]:
    """``tracks`` (unique names) with every side-chain trigger before the tracks ducking
    under it; tracks in a ducking cycle are left out, so they are not ducked."""
    names = {t.name for t in tracks}
    pending = list(tracks)
    done: set[str] = set()
    order: list[Track] = []
    while pending:
        ready = {t.name for t in pending if (d := t.mix.duck_under) is None or d in done
                 or d not in names or d == t.name}
        if not ready:
            notes.append("ducking cycle between " + ", ".join(t.name for t in pending)
                         + ": those tracks are not ducked")
            break
        order.extend(t for t in pending if t.name in ready)
        done |= ready
        pending = [t for t in pending if t.name not in ready]
    return order


def _track_stem(y: np.ndarray | None, s: MixSettings, n: int, sr: int) -> np.ndarray:
    """EQ, fader and pan of one track: a new float32 (2, n) array (the input is untouched)."""
    if y is None:
        return np.zeros((2, n), dtype=np.float32)
    if y.shape[1] < n:
        y = np.concatenate([y, np.zeros((2, n - y.shape[1]), np.float32)], axis=1)
    # fader and pan are one scalar per channel
    ch_gain = (np.array(_pan_gains(s.pan), dtype=np.float32)[:, None]
               * np.float32(10.0 ** (s.gain_db / 20.0)))
    sos = _eq_sos(s, sr)
    if sos is not None and n:
        y = filter_active(sos, y)
        y *= ch_gain
        return y
    return y * ch_gain


def apply_mix(song: Song, tracks: dict[str, np.ndarray], *, sr: int,
              workers: int = 1, master_gain: bool = False) -> MixResult:
    """Mix and master the rendered tracks with the song's per-track and master settings.

    Args:
        song: the arrangement; ``song.tracks[*].mix`` and ``song.master`` are applied (see
            ``auto_mix`` to fill them).
        tracks: track name -> audio, shape (2, n) (mono (n,) is accepted), float. Arrays of
            different lengths are padded with silence to the longest. Never modified.
        sr: sample rate in Hz.
        workers: threads for the per-track filters and the reverb (scipy and pedalboard
            release the GIL); the result does not depend on it.
        master_gain: also return the master chain's gain curve (``MixResult.master_gain``).

    Returns:
        MixResult. Bit-identical for identical inputs.
    """
    notes: list[str] = []
    m = song.master
    report: dict[str, Any] = {"target_lufs": m.target_lufs, "ceiling_dbtp": m.ceiling_dbtp,
                              "tracks": {}, "notes": notes}
    audio: dict[str, np.ndarray] = {}
    for name, y in tracks.items():
        y = _as_stereo(y, name)
        # a float32 sum is one cheap pass; NaN and inf propagate into it
        if not np.isfinite(y.sum()) and not np.isfinite(y).all():
            notes.append(f"{name}: non-finite samples were replaced by silence")
            y = np.where(np.isfinite(y), y, np.float32(0.0))
        audio[name] = y
    n = max((y.shape[1] for y in audio.values()), default=0)
    if not audio:
        n = int(round(song.duration_s * sr))
    if len({y.shape[1] for y in audio.values()}) > 1:
        notes.append("tracks differ in length: the shorter ones are padded with silence")
    names = [t.name for t in song.tracks]
    for name in audio:
        if name not in names:
            notes.append(f"{name}: audio without a track in the song is left out")
    for name in dict.fromkeys(x for x in names if names.count(x) > 1):
        notes.append(f"several tracks are named {name!r}: only the first is mixed")
    mixed = [t for i, t in enumerate(song.tracks) if t.name not in names[:i]]
    for t in mixed:
        if t.name not in audio:
            notes.append(f"{t.name}: no audio rendered; the track is silent")
    if not song.tracks:
        notes.append("the song has no tracks")

    # 1. EQ, fader and pan: independent per track
    def stem(t: Track) -> np.ndarray:
        return _track_stem(audio.get(t.name), t.mix, n, sr)

    if workers > 1 and len(mixed) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopmind-mix") as ex:
            stems = dict(zip([t.name for t in mixed], ex.map(stem, mixed)))
    else:
        stems = {t.name: stem(t) for t in mixed}

    # 2. side-chain ducking, triggers before the tracks ducking under them
    hop = _block_hop(sr)
    envelopes: dict[str, np.ndarray] = {}
    duck_max: dict[str, float] = {}
    for t in _mix_order(mixed, notes):
        d = t.mix.duck_under
        if not d or d == t.name or t.mix.duck_db <= 0 or n == 0:
            continue
        trig = next((x for x in mixed if x.name == d), None)
        if trig is None:
            notes.append(f"{t.name}: cannot duck under {d!r}, no such track")
            continue
        if trig.mix.mute:  # a muted trigger would pump the track under silence
            continue
        if d not in envelopes:
            envelopes[d] = _sidechain_envelope(stems[d], sr, hop)
        gr_db = t.mix.duck_db * envelopes[d]
        duck_max[t.name] = float(gr_db.max(initial=0.0))
        stems[t.name] *= _to_samples(10.0 ** (-gr_db / 20.0), hop, n)

    # 3. the bus (padded to whole loudness steps for the master, see _master) and the sends,
    # summed in song order
    step = _step(sr)
    bus_padded = np.zeros((2, -(-n // step) * step), dtype=np.float32)
    bus = bus_padded[:, :n]
    sends: np.ndarray | None = None
    for t in mixed:
        y = stems[t.name]
        s = t.mix
        if not s.mute:
            bus += y
            if s.reverb_send > 0:
                if sends is None:
                    sends = np.zeros((2, n), dtype=np.float32)
                sends += np.float32(min(s.reverb_send, 1.0)) * y
        report["tracks"][t.name] = {
            "gain_db": _round(s.gain_db), "pan": _round(s.pan), "mute": s.mute,
            "reverb_send": _round(s.reverb_send), "duck_under": s.duck_under,
            "duck_max_db": _round(duck_max.get(t.name, 0.0))}
    reverb = np.zeros((2, n), dtype=np.float32)
    if sends is not None and n and np.any(sends):
        reverb = _reverb(sends, sr, workers)
        bus += reverb
    report["reverb"] = {"room_size": REVERB_ROOM_SIZE, "damping": REVERB_DAMPING,
                        "predelay_s": REVERB_PREDELAY_S, "return_db": REVERB_RETURN_DB}
    del sends, bus

    # 4. the master bus
    gain_out: list | None = [] if master_gain else None
    if n == 0:
        report["bus_rms_db"] = SILENCE_LUFS
        master = _silent_master(0, "the song is empty: nothing to mix", report, gain_out)
    else:
        master = _master(bus_padded, n, sr, m, report, gain_out)
    return MixResult(master=master, stems=stems, reverb=reverb, report=report, sr=sr,
                     master_gain=gain_out[0] if gain_out else None)


def _reverb(sends: np.ndarray, sr: int, workers: int = 1) -> np.ndarray:
    """The shared reverb: pre-delay, Freeverb at 100 % wet, band-limited return.

    Freeverb and the return filters are linear and time-invariant, so the sends are
    processed in fixed 45 s chunks, each from a clean state and rung out for 4 s (at this
    room size the tail is 180 dB down by then), and the pieces are summed in order: silent
    chunks cost nothing, chunks can run in parallel, and the result does not depend on
    ``workers``.
    """
    n = sends.shape[1]
    delay = min(int(round(REVERB_PREDELAY_S * sr)), n)
    chunk = int(REVERB_CHUNK_S * sr)
    tail = int(REVERB_TAIL_S * sr)
    sos = np.vstack([butter(2, REVERB_RETURN_HIGHPASS_HZ, "highpass", fs=sr, output="sos"),
                     butter(2, min(REVERB_RETURN_LOWPASS_HZ, 0.45 * sr), "lowpass", fs=sr,
                            output="sos")]).astype(np.float32)
    gain = np.float32(10.0 ** (REVERB_RETURN_DB / 20.0))
    # chunk k covers output samples a..b; its input is the send delayed by the pre-delay
    spans = [(a, min(n, a + chunk)) for a in range(0, n, chunk)]

    def run(span: tuple[int, int]) -> np.ndarray | None:
        a, b = span
        seg = sends[:, max(0, a - delay):max(0, b - delay)]
        if not np.any(seg):
            return None
        x = np.zeros((2, min(n, b + tail) - a), dtype=np.float32)
        x[:, (b - a) - seg.shape[1]:b - a] = seg
        plugin = pedalboard.Reverb(room_size=REVERB_ROOM_SIZE, damping=REVERB_DAMPING,
                                   wet_level=1.0, dry_level=0.0, width=1.0)
        wet = sosfilt(sos, plugin(x, sr, reset=True), axis=-1)
        wet *= gain
        return wet

    if workers > 1 and len(spans) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopmind-mix") as ex:
            pieces = list(ex.map(run, spans))
    else:
        pieces = [run(span) for span in spans]
    out = np.zeros((2, n), dtype=np.float32)
    for (a, _), piece in zip(spans, pieces):
        if piece is not None:
            out[:, a:a + piece.shape[1]] += piece
    return out

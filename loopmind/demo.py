"""The demo library: a small sample pack that LoopMind synthesizes itself.

When the user has no library yet, the app and the song generator use this one; tests and
benchmarks use it as audio whose truth is known. Everything is made here with numpy and scipy
(no recordings ship with LoopMind): drum one-shots from swept sines, filtered noise and
metallic square clusters; drum loops assembled from those hits with genre step patterns;
bass, chord, pad and lead loops from band-limited wavetables, FM and additive partials; and
fx from swept filters and reversed reverb.

The pack looks like a producer's: folders by instrument, names that carry tempo, key and
character (``Bass/bass_Fmin_140bpm.wav``), mostly 44.1 kHz 16-bit WAV with a few FLAC, OGG,
24-bit AIFF, 48 kHz and mono files. Every loop is bar-exact (``bars * 4 * 60 / bpm`` seconds,
rounded to samples) and its tails wrap around to the start, so it loops seamlessly.
``demo-manifest.json`` records the truth for each file (role, kind, bpm, key, bars, format).

The build is deterministic per seed (same bytes twice on one machine) and takes a few seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

DEMO_VERSION = 1  # bump whenever the pack's audio or names change: old builds are rebuilt
MANIFEST_NAME = "demo-manifest.json"
SR = 44100
_TMP_SUFFIX = ".demo-part"
_STALE_TMP_S = 600.0  # a temp file this old is a leftover of a killed build, not a live one


# -- public helpers ------------------------------------------------------------------------

def bar_frames(*, bpm: float, bars: float, sr: int = SR, beats_per_bar: int = 4) -> int:
    """Length of ``bars`` bars at ``bpm`` in samples (``bars * beats * 60 / bpm``, rounded)."""
    return int(round(bars * beats_per_bar * 60.0 / bpm * sr))


def read_manifest(dest: os.PathLike | str) -> dict | None:
    """The demo manifest in ``dest``, or None if it is missing or unreadable."""
    try:
        with open(Path(dest) / MANIFEST_NAME, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "files" in manifest else None


# -- signal building blocks ------------------------------------------------------------------

def _times(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


_TABLE_N = 4096


@lru_cache(maxsize=None)
def _wavetable(shape: str, n_harmonics: int) -> np.ndarray:
    """One period of a band-limited wave (sum of ``n_harmonics`` sines), plus a guard point."""
    k = np.arange(1, n_harmonics + 1)
    if shape == "saw":
        amp = 1.0 / k
    elif shape == "square":
        amp = np.where(k % 2 == 1, 1.0 / k, 0.0)
    elif shape == "triangle":
        amp = np.where(k % 2 == 1, (-1.0) ** ((k - 1) // 2) / k**2, 0.0)
    else:
        raise ValueError(f"unknown wave shape {shape!r}")
    spec = np.zeros(_TABLE_N // 2 + 1, dtype=complex)
    spec[1:n_harmonics + 1] = -1j * amp * _TABLE_N / 2
    table = np.fft.irfft(spec, _TABLE_N)
    table /= np.abs(table).max()
    table = np.append(table, table[0])
    table.setflags(write=False)
    return table


def _osc(shape: str, freq, n: int, sr: int, *, phase0: float = 0.0,
         max_hz: float | None = None) -> np.ndarray:
    """An oscillator, shape (n,), with constant or per-sample frequency ``freq`` in Hz.

    Non-sine shapes read a band-limited wavetable (harmonics stop below ``max_hz`` or 0.45 sr)
    so there is no aliasing for the analyzers to mistake for pitch.
    """
    if np.ndim(freq) == 0:
        top = float(freq)
        phase = phase0 + np.arange(n) * (top / sr)
    else:
        f = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
        top = float(f.max())
        phase = phase0 + np.concatenate(([0.0], np.cumsum(f[:-1]))) / sr
    if shape == "sine":
        return np.sin(2 * np.pi * phase)
    limit = 0.45 * sr if max_hz is None else min(max_hz, 0.45 * sr)
    n_harm = int(np.clip(limit // max(top, 1.0), 1, _TABLE_N // 2 - 1))
    table = _wavetable(shape, n_harm)
    idx = (phase % 1.0) * _TABLE_N
    i0 = idx.astype(np.int64)
    frac = idx - i0
    return table[i0] * (1.0 - frac) + table[i0 + 1] * frac


def _adsr(n: int, sr: int, *, attack_s: float, decay_s: float, sustain: float,
          release_s: float, gate_s: float) -> np.ndarray:
    """Attack-decay-sustain envelope held for ``gate_s``, then an exponential release."""
    t = _times(n, sr)
    attack_s = max(attack_s, 1.0 / sr)
    env = np.where(t < attack_s, t / attack_s,
                   sustain + (1.0 - sustain) * np.exp(-(t - attack_s) / max(decay_s, 1e-4)))
    gate = min(gate_s, t[-1] if n else 0.0)
    at_gate = np.interp(gate, t, env) if n else 0.0
    # release reaches -60 dB after release_s
    rel = at_gate * np.exp(-(t - gate) * 6.9 / max(release_s, 1e-3))
    return np.where(t < gate, env, rel)


def _sos_filter(x: np.ndarray, sos: np.ndarray) -> np.ndarray:
    from scipy.signal import sosfilt

    return sosfilt(sos, x, axis=0)


def _butter(x: np.ndarray, sr: int, kind: str, hz, order: int = 2) -> np.ndarray:
    from scipy.signal import butter

    nyq_safe = 0.45 * sr
    hz = min(hz, nyq_safe) if np.isscalar(hz) else [min(h, nyq_safe) for h in hz]
    return _sos_filter(x, butter(order, hz, kind, fs=sr, output="sos"))


def _biquad(kind: str, hz: float, q: float, sr: int) -> np.ndarray:
    """One RBJ-cookbook biquad as an SOS row (cheap enough to redesign every block)."""
    w0 = 2 * np.pi * min(hz, 0.45 * sr) / sr
    alpha = np.sin(w0) / (2 * q)
    cw = np.cos(w0)
    if kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
    elif kind == "bandpass":
        b = [alpha, 0.0, -alpha]
    else:
        raise ValueError(kind)
    a = [1 + alpha, -2 * cw, 1 - alpha]
    return np.array([[b[0] / a[0], b[1] / a[0], b[2] / a[0], 1.0, a[1] / a[0], a[2] / a[0]]])


def _swept(x: np.ndarray, sr: int, kind: str, hz_start: float, hz_end: float, *,
           q: float = 0.9, block: int = 256) -> np.ndarray:
    """Filter mono ``x`` with a cutoff gliding exponentially from hz_start to hz_end."""
    from scipy.signal import sosfilt

    out = np.empty_like(x)
    zi = np.zeros((1, 2))
    n_blocks = max(1, -(-len(x) // block))
    for b in range(n_blocks):
        hz = hz_start * (hz_end / hz_start) ** (b / max(n_blocks - 1, 1))
        seg = slice(b * block, (b + 1) * block)
        out[seg], zi = sosfilt(_biquad(kind, hz, q, sr), x[seg], zi=zi)
    return out


def _stereo(y: np.ndarray, pan: float = 0.0) -> np.ndarray:
    """Mono (n,) to stereo (n, 2) with a constant-power pan in [-1, 1]."""
    if y.ndim == 2:
        return y
    angle = (pan + 1.0) * np.pi / 4
    return np.stack([y * np.cos(angle), y * np.sin(angle)], axis=1) * np.sqrt(2.0)


def _reverb(x: np.ndarray, sr: int, rng: np.random.Generator, *, decay_s: float = 1.2,
            wet: float = 0.25, damp_hz: float = 6000.0, predelay_s: float = 0.012) -> np.ndarray:
    """Convolution with decaying noise, a different impulse per channel for width.

    Returns:
        (n + tail, 2) array: the dry signal plus the wet tail (the caller folds or trims it).
    """
    from scipy.signal import fftconvolve

    x = _stereo(x)
    n_ir = int(decay_s * sr)
    env = np.exp(-6.9 * _times(n_ir, sr) / decay_s)  # -60 dB at decay_s
    ir = _butter(rng.standard_normal((n_ir, 2)) * env[:, None], sr, "lowpass", damp_hz)
    ir = np.vstack([np.zeros((int(predelay_s * sr), 2)), ir])
    ir /= np.sqrt((ir**2).sum(axis=0))  # unit energy: the tail is as loud as the dry sound
    tail = np.stack([fftconvolve(x[:, c], ir[:, c]) for c in range(2)], axis=1)
    out = tail * wet
    out[:len(x)] += x * (1.0 - 0.5 * wet)
    return out


def _fold(y: np.ndarray, n: int) -> np.ndarray:
    """Wrap everything past ``n`` samples back onto the start (a loop's tails ring into bar 1)."""
    out = y[:n].copy()
    for start in range(n, len(y), n):
        seg = y[start:start + n]
        out[:len(seg)] += seg
    return out


def _place(buf: np.ndarray, sound: np.ndarray, at: int, gain: float = 1.0) -> None:
    end = min(len(buf), at + len(sound))
    if end > at:
        buf[at:end] += gain * sound[:end - at]


def _saturate(y: np.ndarray, drive: float) -> np.ndarray:
    return np.tanh(drive * y) / np.tanh(drive) if drive > 0 else y


def _trim_tail(y: np.ndarray, sr: int, *, floor_db: float = -66.0, fade_s: float = 0.01):
    """Cut a one-shot where it has decayed below ``floor_db`` (re peak) and fade the cut."""
    mag = np.abs(y).max(axis=1) if y.ndim == 2 else np.abs(y)
    loud = np.nonzero(mag > mag.max() * 10 ** (floor_db / 20))[0]
    end = min(len(y), int(loud[-1]) + 1 + int(fade_s * sr)) if len(loud) else len(y)
    y = y[:end].copy()
    n_fade = min(int(fade_s * sr), len(y))
    ramp = np.linspace(1.0, 0.0, n_fade)
    y[len(y) - n_fade:] *= ramp[:, None] if y.ndim == 2 else ramp
    return y


# -- drum hits -------------------------------------------------------------------------------

def _kick(sr, rng, *, f_start=170.0, f_end=52.0, sweep_s=0.03, decay_s=0.3, click=0.3,
          click_hz=2500.0, drive=1.5, attack_s=0.0005, lowpass_hz=None, length_s=0.6):
    n = int(length_s * sr)
    t = _times(n, sr)
    f = f_end + (f_start - f_end) * np.exp(-t / sweep_s)
    amp = np.exp(-t / decay_s) * np.minimum(1.0, t / attack_s)
    y = _osc("sine", f, n, sr) * amp
    if click:
        burst = rng.standard_normal(n) * np.exp(-t / 0.003)
        y += click * _butter(burst, sr, "highpass", click_hz)
    y = _saturate(y, drive)
    if lowpass_hz:
        y = _butter(y, sr, "lowpass", lowpass_hz, order=4)
    return y


def _snare(sr, rng, *, tones=(185.0, 330.0), tone_s=0.07, noise_s=0.16, band=(1500, 9000),
           tone_mix=0.6, noise_attack_s=0.0, length_s=0.5, drive=1.2):
    n = int(length_s * sr)
    t = _times(n, sr)
    body = sum(_osc("sine", f * (1 + 0.25 * np.exp(-t / 0.01)), n, sr) for f in tones)
    body = body * np.exp(-t / tone_s) / len(tones)
    noise_env = np.exp(-t / noise_s)
    if noise_attack_s:
        noise_env *= np.minimum(1.0, t / noise_attack_s)
    noise = _butter(rng.standard_normal(n), sr, "bandpass", band) * noise_env
    noise /= np.abs(noise).max()
    return _saturate(tone_mix * body + noise, drive)


_METAL_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)  # the TR-808's six square waves


def _metal(n, sr, base=1.0):
    return sum(_osc("square", f * base, n, sr, phase0=0.13 * i) for i, f in enumerate(_METAL_HZ))


def _hat(sr, rng, *, decay_s=0.04, band=(7000, 16000), metal_mix=0.5, base=1.0,
         attack_s=0.0003, length_s=0.2):
    n = int(length_s * sr)
    t = _times(n, sr)
    src = metal_mix * _metal(n, sr, base) / 3.0 + (1 - metal_mix) * rng.standard_normal(n)
    y = _butter(src, sr, "bandpass", band, order=3)
    return y * np.exp(-t / decay_s) * np.minimum(1.0, t / attack_s)


def _clap(sr, rng, *, bursts=4, spacing_s=0.011, tail_s=0.16, band=(900, 2600), length_s=0.6):
    n = int(length_s * sr)
    t = _times(n, sr)
    env = np.zeros(n)
    for i in range(bursts):
        t0 = i * spacing_s * (1 + 0.15 * rng.standard_normal())
        shape = np.exp(-(t - t0) / (tail_s if i == bursts - 1 else 0.005))
        env = np.maximum(env, np.where(t >= t0, shape, 0.0))
    return _butter(rng.standard_normal(n), sr, "bandpass", band) * env


def _tom(sr, rng, *, hz=120.0, decay_s=0.35, length_s=0.8):
    n = int(length_s * sr)
    t = _times(n, sr)
    f = hz * (1 + 0.45 * np.exp(-t / 0.05))
    y = _osc("sine", f, n, sr) * np.exp(-t / decay_s)
    y += 0.3 * _osc("sine", 1.5 * f, n, sr) * np.exp(-t / (decay_s / 3))
    y += 0.25 * _butter(rng.standard_normal(n), sr, "bandpass", (800, 4000)) * np.exp(-t / 0.015)
    return _saturate(y, 1.3)


def _conga(sr, rng):
    n = int(0.5 * sr)
    t = _times(n, sr)
    f = 210 * (1 + 0.15 * np.exp(-t / 0.02))
    y = _osc("sine", f, n, sr) * np.exp(-t / 0.16)
    y += 0.15 * _osc("sine", 2.76 * f, n, sr) * np.exp(-t / 0.05)
    y += 0.4 * _butter(rng.standard_normal(n), sr, "bandpass", (1800, 5000)) * np.exp(-t / 0.006)
    return y


def _shaker(sr, rng):
    n = int(0.22 * sr)
    t = _times(n, sr)
    env = (t / 0.03) * np.exp(1 - t / 0.03)  # a swell, not a click: beads take time to hit
    return _butter(rng.standard_normal(n), sr, "bandpass", (5000, 13000), order=3) * env


def _cowbell(sr, rng):
    n = int(0.6 * sr)
    t = _times(n, sr)
    y = _osc("square", 540.0, n, sr) + 0.8 * _osc("square", 800.0, n, sr)
    y = _butter(y, sr, "bandpass", (500, 3500))
    return y * (0.6 * np.exp(-t / 0.02) + 0.4 * np.exp(-t / 0.2))


def _woodblock(sr, rng):
    n = int(0.25 * sr)
    t = _times(n, sr)
    return (_osc("sine", 950.0, n, sr) * np.exp(-t / 0.04)
            + 0.4 * _osc("sine", 2480.0, n, sr) * np.exp(-t / 0.015))


def _tambourine(sr, rng):
    n = int(0.5 * sr)
    t = _times(n, sr)
    env = sum(np.where(t >= t0, np.exp(-(t - t0) / 0.06), 0.0) * g
              for t0, g in ((0.0, 1.0), (0.012, 0.6), (0.027, 0.35)))
    jingle = _metal(n, sr, 3.1) / 3.0 + rng.standard_normal(n)
    return _butter(jingle, sr, "bandpass", (6000, 15000), order=3) * env


def _cymbal(sr, rng, *, decay_s=1.3, base=1.7, band=(4000, 16000), bell=0.0, length_s=2.6,
            lowpass_hz=None):
    n = int(length_s * sr)
    t = _times(n, sr)
    chans = []
    for _ in range(2):  # independent noise per side: a real cymbal is wide
        src = _metal(n, sr, base) / 3.0 + rng.standard_normal(n)
        y = _butter(src, sr, "bandpass", band, order=2)
        y *= np.exp(-t / decay_s) * (0.4 + 0.6 * np.exp(-t / 0.08))
        if bell:
            y += bell * sum(_osc("sine", f, n, sr) * np.exp(-t / 0.6) / (i + 1)
                            for i, f in enumerate((760.0, 1780.0, 2550.0)))
        if lowpass_hz:
            y = _butter(y, sr, "lowpass", lowpass_hz)
        chans.append(y)
    return np.stack(chans, axis=1)


def _reverbed(fn, *, decay_s, wet):
    def make(sr, rng):
        return _reverb(fn(sr, rng), sr, rng, decay_s=decay_s, wet=wet)
    return make


def _lofi(fn, *, bits=7, hold=3):
    def make(sr, rng):
        y = fn(sr, rng)
        y = np.repeat(y[::hold], hold)[:len(y)]  # sample-and-hold: a cheap 14 kHz sampler
        q = 2.0 ** (bits - 1)
        return _butter(np.round(y / np.abs(y).max() * q) / q, sr, "lowpass", 7000)
    return make


def _p(fn, **kw):
    return lambda sr, rng: fn(sr, rng, **kw)


# name -> (synth, description, tags)
_HITS: dict[str, tuple[Callable, str, tuple[str, ...]]] = {
    "kick_punchy": (_p(_kick, f_start=180, f_end=55, sweep_s=0.028, decay_s=0.22, click=0.5,
                       drive=2.0, length_s=0.5), "punchy kick with a beater click", ("punchy",)),
    "kick_soft": (_p(_kick, f_start=115, f_end=54, sweep_s=0.05, decay_s=0.28, click=0.0,
                     drive=1.0, attack_s=0.007, lowpass_hz=700, length_s=0.6),
                  "soft rounded kick", ("soft",)),
    "kick_dark": (_p(_kick, f_start=130, f_end=47, sweep_s=0.04, decay_s=0.38, click=0.05,
                     drive=1.4, lowpass_hz=320, length_s=0.75), "dark low kick", ("dark",)),
    "kick_bright": (_p(_kick, f_start=230, f_end=60, sweep_s=0.02, decay_s=0.18, click=0.9,
                       click_hz=4500, drive=1.6, length_s=0.45), "bright clicky kick",
                    ("bright", "punchy")),
    "kick_distorted": (_p(_kick, f_start=200, f_end=52, sweep_s=0.03, decay_s=0.3, click=0.3,
                          drive=6.0, length_s=0.55), "hard distorted kick", ("distorted",)),
    "kick_808": (_p(_kick, f_start=95, f_end=_midi_hz(29), sweep_s=0.025, decay_s=0.75,
                    click=0.0, drive=1.8, length_s=2.2), "long 808 kick tuned to F1",
                 ("deep",)),
    "snare_tight": (_p(_snare, tones=(200, 350), tone_s=0.05, noise_s=0.08, band=(2000, 10000),
                       length_s=0.35), "tight dry snare", ("dry", "punchy")),
    "snare_fat": (_reverbed(_p(_snare, tones=(160, 280), tone_s=0.11, noise_s=0.22,
                               band=(1200, 8000), tone_mix=0.8), decay_s=0.9, wet=0.25),
                  "fat roomy snare", ("wet",)),
    "snare_lofi": (_lofi(_p(_snare, tones=(180, 320), noise_s=0.15, band=(1000, 6000))),
                   "crunchy lo-fi snare", ("lofi", "dark")),
    "snare_bright": (_p(_snare, tones=(250, 450), tone_s=0.04, noise_s=0.12, band=(3000, 14000),
                        tone_mix=0.5, drive=2.0), "bright cracking snare", ("bright",)),
    "snare_soft": (_p(_snare, tones=(190,), tone_s=0.04, noise_s=0.2, band=(800, 6000),
                      tone_mix=0.2, noise_attack_s=0.012, drive=0.0),
                   "soft brushed snare", ("soft",)),
    "hihat_closed": (_p(_hat, decay_s=0.035, length_s=0.15), "closed hi-hat", ()),
    "hihat_closed_dark": (_p(_hat, decay_s=0.05, band=(3500, 9000), metal_mix=0.6, base=0.8,
                             length_s=0.2), "dark closed hi-hat", ("dark",)),
    "hihat_open": (_p(_hat, decay_s=0.3, length_s=0.9), "open hi-hat", ()),
    "hihat_pedal": (_p(_hat, decay_s=0.06, attack_s=0.004, band=(5000, 11000), base=0.9,
                       length_s=0.25), "pedal hi-hat", ("soft",)),
    "hihat_closed_bright": (_p(_hat, decay_s=0.025, band=(9000, 19000), metal_mix=0.3,
                               length_s=0.12), "bright tick hi-hat", ("bright",)),
    "clap": (_p(_clap), "classic clap", ()),
    "clap_wet": (_reverbed(_p(_clap, bursts=5, tail_s=0.2), decay_s=1.3, wet=0.45),
                 "clap in a big room", ("wet",)),
    "clap_tight": (_p(_clap, bursts=3, spacing_s=0.008, tail_s=0.07, band=(1200, 4000),
                      length_s=0.3), "tight dry clap", ("dry",)),
    "perc_conga": (_conga, "high conga", ()),
    "perc_shaker": (_shaker, "shaker", ()),
    "perc_cowbell": (_cowbell, "808-style cowbell", ()),
    "perc_woodblock": (_woodblock, "wood block", ("dry",)),
    "perc_tamb": (_tambourine, "tambourine hit", ("bright",)),
    "crash": (_p(_cymbal), "crash cymbal", ()),
    "ride": (_p(_cymbal, decay_s=1.1, base=2.3, band=(5000, 15000), bell=0.08),
             "ride cymbal with bell", ()),
    "crash_dark": (_p(_cymbal, decay_s=0.7, base=1.4, band=(2500, 11000), lowpass_hz=7000,
                      length_s=1.6), "dark splash cymbal", ("dark",)),
    "tom_low": (_p(_tom, hz=92.0, decay_s=0.4), "low floor tom", ()),
    "tom_mid": (_p(_tom, hz=135.0, decay_s=0.32), "mid tom", ()),
    "tom_high": (_p(_tom, hz=190.0, decay_s=0.26, length_s=0.6), "high tom", ()),
}

DRUM_HITS = tuple(_HITS)


def _rng(seed: int, name: str) -> np.random.Generator:
    # one stream per (seed, sound): a file's audio does not depend on build order
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


@lru_cache(maxsize=64)
def _hit_cached(name: str, sr: int, seed: int) -> np.ndarray:
    fn = _HITS[name][0]
    y = np.asarray(fn(sr, _rng(seed, "hit:" + name)), dtype=np.float64)
    y = _trim_tail(y / np.abs(y).max(), sr)
    y.setflags(write=False)
    return y


def drum_hit(name: str, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A synthesized drum one-shot, peak 1.0.

    Args:
        name: one of ``DRUM_HITS`` (e.g. "kick_punchy", "snare_fat", "hihat_open").
        sr: sample rate in Hz.
        seed: noise seed (same seed, same samples).

    Returns:
        float64 array, shape (n,) for mono hits or (n, 2) for stereo ones (cymbals, reverbed).
    """
    if name not in _HITS:
        raise ValueError(f"unknown drum hit {name!r}; choose from {', '.join(DRUM_HITS)}")
    return _hit_cached(name, sr, seed).copy()


# -- drum loops ------------------------------------------------------------------------------

# Step patterns, 16 steps per bar. X accent, x normal, o ghost, r a 32nd-note pair,
# z a 32nd-note triplet (trap hat rolls). Each genre lists bars; loops cycle through them.
_VEL = {"X": 1.0, "x": 0.78, "o": 0.45}
_GENRES: dict[str, dict] = {
    "trap": {
        "kit": {"kick": "kick_punchy", "clap": "clap", "snare": "snare_tight",
                "hat": "hihat_closed_bright", "open": "hihat_open"},
        "pan": {"hat": 0.25, "open": -0.2},
        "swing": 0.0, "jitter_s": 0.0,
        "bars": [
            {"kick": "X......x..X.....", "clap": "........X.......", "snare": "........x.......",
             "hat": "x.x.x.x.x.x.x.x.", "open": "..............o."},
            {"kick": "X.........x..x..", "clap": "........X.......", "snare": "........x.......",
             "hat": "x.x.x.x.x.x.rrrr"},
            {"kick": "X......x..X.....", "clap": "........X.......", "snare": "........x.......",
             "hat": "x.x.x.x.x.xxx.x.", "open": "......o........."},
            {"kick": "X..x......X.x...", "clap": "........X.....o.", "snare": "........x.......",
             "hat": "x.x.x.x.zzzzx.rr"},
        ],
    },
    "boombap": {
        "kit": {"kick": "kick_dark", "snare": "snare_fat", "hat": "hihat_closed_dark",
                "open": "hihat_open", "perc": "perc_tamb"},
        "pan": {"hat": 0.2, "perc": -0.35, "open": 0.2},
        "swing": 0.3, "jitter_s": 0.003, "bus_lowpass_hz": 11000,
        "bars": [
            {"kick": "X.......X.x.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.xo",
             "perc": "....x.......x..."},
            {"kick": "X.....x...X..x..", "snare": "....X..o....X...", "hat": "x.x.x.x.x.x.x.x.",
             "open": "..............x.", "perc": "....x.......x..."},
            {"kick": "X.......X.x.....", "snare": "....X.......X..o", "hat": "x.x.x.x.x.x.x.xo",
             "perc": "....x.......x..."},
            {"kick": "X.....x.X....x..", "snare": "....X.......X.o.", "hat": "x.x.x.x.x.x.xox.",
             "perc": "....x.......x.x."},
        ],
    },
    "house": {
        "kit": {"kick": "kick_punchy", "clap": "clap_wet", "hat": "hihat_closed",
                "open": "hihat_open", "shaker": "perc_shaker", "conga": "perc_conga"},
        "pan": {"hat": 0.2, "open": -0.15, "shaker": 0.4, "conga": -0.4},
        "swing": 0.0, "jitter_s": 0.0,
        "bars": [
            {"kick": "X...X...X...X...", "clap": "....X.......X...", "open": "..x...x...x...x.",
             "hat": "x...x...x...x...", "shaker": "ooxoooxoooxoooxo"},
            {"kick": "X...X...X...X...", "clap": "....X.......X...", "open": "..x...x...x...x.",
             "hat": "x...x...x...x...", "shaker": "ooxoooxoooxoooxo"},
            {"kick": "X...X...X...X...", "clap": "....X.......X...", "open": "..x...x...x...x.",
             "hat": "x...x...x...x.o.", "shaker": "ooxoooxoooxoooxo",
             "conga": "...x..x......x.."},
            {"kick": "X...X...X...X...", "clap": "....X.......X..o", "open": "..x...x...x...x.",
             "hat": "x...x...x...x...", "shaker": "ooxoooxoooxoooxo",
             "conga": "...x..x...x..xx."},
        ],
    },
    "dnb": {
        "kit": {"kick": "kick_bright", "snare": "snare_bright", "hat": "hihat_closed",
                "ride": "ride"},
        "pan": {"hat": 0.2, "ride": -0.3},
        "swing": 0.0, "jitter_s": 0.0,
        "bars": [
            {"kick": "X.........X.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x.",
             "ride": "x..............."},
            {"kick": "X.........XX....", "snare": "....X..o....X..o", "hat": "x.x.x.xxx.x.x.x."},
            {"kick": "X.X.......X.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x.",
             "ride": "x.......x......."},
            {"kick": "X.........X..x..", "snare": "....X..o.o..X.oo", "hat": "x.x.x.x.x.x.xxxx"},
        ],
    },
}
DRUM_GENRES = tuple(_GENRES)


def drum_loop(genre: str = "house", *, bpm: float, bars: int, sr: int = SR,
              seed: int = 0) -> np.ndarray:
    """A drum loop assembled from the demo's hits with a genre's step pattern.

    Args:
        genre: one of ``DRUM_GENRES`` ("trap", "boombap", "house", "dnb").
        bpm: tempo in beats per minute (4 beats a bar, 16 steps a bar).
        bars: length in bars; the result is exactly ``bar_frames(bpm=bpm, bars=bars)`` long.
        sr: sample rate in Hz.
        seed: seed for the hits' noise, velocities and (boom bap) timing.

    Returns:
        float64 stereo array, shape (n, 2), peak 1.0.
    """
    g = _GENRES[genre]
    rng = _rng(seed, f"drumloop:{genre}:{bpm}:{bars}")
    n = bar_frames(bpm=bpm, bars=bars, sr=sr)
    step_s = 60.0 / bpm / 4
    hits = {part: _stereo(_hit_cached(name, sr, seed), g["pan"].get(part, 0.0))
            for part, name in g["kit"].items()}
    buf = np.zeros((n + max(len(h) for h in hits.values()), 2))
    for bar in range(bars):
        pattern = g["bars"][bar % len(g["bars"])]
        for part, steps in pattern.items():
            if part not in hits:
                continue
            for i, ch in enumerate(steps):
                if ch == ".":
                    continue
                if ch in "rz":
                    subs, vel = (2, 0.55) if ch == "r" else (3, 0.5)
                else:
                    subs, vel = 1, _VEL[ch]
                for k in range(subs):
                    t = (bar * 16 + i + k / subs) * step_s
                    if i % 2 == 1 and subs == 1:
                        t += g["swing"] * step_s  # swing delays the off-beat 16ths
                    if g["jitter_s"]:
                        t += float(rng.normal(0.0, g["jitter_s"]))
                    v = vel * float(rng.uniform(0.9, 1.0))
                    _place(buf, hits[part], max(0, int(round(t * sr))), v)
    y = _fold(buf, n)
    if g.get("bus_lowpass_hz"):
        # filter two loop passes and keep the second: the filter state wraps like the audio
        y = _butter(np.vstack([y, y]), sr, "lowpass", g["bus_lowpass_hz"])[n:]
    y = _saturate(y / np.abs(y).max(), 1.2)  # a little bus glue
    return y / np.abs(y).max()


# -- pitched material ------------------------------------------------------------------------

_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_QUALITY = {"": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10), "m7": (0, 3, 7, 10),
            "maj7": (0, 4, 7, 11), "dim": (0, 3, 6)}
_NOTE_RE = re.compile(r"^([A-G])([#b]?)(-?\d)$")
_CHORD_RE = re.compile(r"^([A-G])([#b]?)(maj7|m7|m|7|dim)?$")


def _pc(letter: str, acc: str) -> int:
    return (_PC[letter] + {"#": 1, "b": -1, "": 0}[acc]) % 12


def _note(name: str) -> int:
    m = _NOTE_RE.match(name)
    if not m:
        raise ValueError(f"bad note {name!r}")
    return 12 * (int(m.group(3)) + 1) + _pc(m.group(1), m.group(2))


def _chord(name: str) -> tuple[int, tuple[int, ...]]:
    m = _CHORD_RE.match(name)
    if not m:
        raise ValueError(f"bad chord {name!r}")
    return _pc(m.group(1), m.group(2)), _QUALITY[m.group(3) or ""]


def _voicing(name: str, *, low: int = 53) -> tuple[list[int], int]:
    """Close root-position voicing with its root in [low, low + 11], and a bass note."""
    root_pc, ivs = _chord(name)
    root = low + (root_pc - low) % 12
    return [root + i for i in ivs], 36 + root_pc if root_pc >= 4 else 48 + root_pc


# A score is a list of (start_step, length_steps, midi, velocity) on a 16th-note grid.
Score = list[tuple[float, float, float, float]]


def _melody(text: str, *, vel: float = 0.9) -> Score:
    """Notes like "F4:2 Ab4:2 -:4 | C5:4": name (or - for a rest) and length in 16ths."""
    score: Score = []
    step = 0.0
    for tok in text.replace("|", " ").split():
        name, length = tok.split(":")
        if name != "-":
            score.append((step, float(length), float(_note(name)), vel))
        step += float(length)
    return score


def _comp(chords: list[list[str]], rhythm: str, *, legato: float = 0.92,
          bass: bool = False, low: int = 53) -> Score:
    """Chord hits: ``chords`` per bar (1 or 2 chords a bar), ``rhythm`` 16 steps per bar."""
    score: Score = []
    for bar, names in enumerate(chords):
        seg_len = 16 // len(names)
        for s, name in enumerate(names):
            notes, root = _voicing(name, low=low)
            seg0, seg1 = bar * 16 + s * seg_len, bar * 16 + (s + 1) * seg_len
            hits = [bar * 16 + i for i, ch in enumerate(rhythm)
                    if ch != "." and seg0 <= bar * 16 + i < seg1]
            for j, h in enumerate(hits):
                nxt = hits[j + 1] if j + 1 < len(hits) else seg1
                v = _VEL.get(rhythm[h - bar * 16], 0.78)
                for m in notes:
                    score.append((h, max(0.5, (nxt - h) * legato), m, v))
            if bass:
                score.append((seg0, seg_len * 0.95, root, 0.7))
    return score


def _render_score(score: Score, voice: Callable, *, bpm: float, bars: int, sr: int,
                  rng: np.random.Generator, spread: float = 0.0, tail_s: float = 2.0):
    """Render notes with ``voice(midi, dur_s, vel, sr, rng) -> (n,)`` into a bar-exact loop.

    Voices must be deterministic in (midi, dur_s, vel): equal notes are rendered once.
    """
    n = bar_frames(bpm=bpm, bars=bars, sr=sr)
    step_s = 60.0 / bpm / 4
    buf = np.zeros((n + int(tail_s * sr) + sr, 2))
    rendered: dict[tuple, np.ndarray] = {}  # chords repeat: synthesize each note once
    for start, length, midi, vel in score:
        if (midi, length, vel) not in rendered:
            rendered[midi, length, vel] = voice(midi, length * step_s, vel, sr, rng)
        y = rendered[midi, length, vel]
        # higher notes a little right, lower a little left: a keyboard's natural spread
        pan = float(np.clip((midi - 60) / 24.0, -1, 1)) * spread
        _place(buf, _stereo(y, pan) * vel, int(round(start * step_s * sr)))
    return _fold(buf, n)


# voices: (midi, dur_s, vel, sr, rng) -> mono array (dur plus release)

def _v_epiano(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.5) * sr)
    t = _times(n, sr)
    index = (0.6 + 1.6 * vel) * np.exp(-t / 0.35) + 0.25
    y = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * t))
    if 14 * f < 0.4 * sr:
        y += 0.12 * vel * np.sin(2 * np.pi * 14 * f * t) * np.exp(-t / 0.03)  # the tine's ping
    env = _adsr(n, sr, attack_s=0.002, decay_s=1.5, sustain=0.0, release_s=0.25, gate_s=dur_s)
    return y * env


def _v_piano(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.6) * sr)
    t = _times(n, sr)
    y = np.zeros(n)
    decay = np.exp(-0.6 * t)
    step = np.exp(-0.5 * t)  # partial k decays as exp(-(0.6 + 0.5 k) t): higher ones faster
    for k in range(1, 13):
        fk = k * f * np.sqrt(1 + 0.0004 * k * k)  # string stiffness stretches the partials
        if fk > 0.42 * sr:
            break
        decay *= step
        y += (0.9 ** k / k) * np.sin(2 * np.pi * fk * t + k) * decay
    env = _adsr(n, sr, attack_s=0.002, decay_s=2.0, sustain=0.0, release_s=0.3, gate_s=dur_s)
    return y * env


def _v_organ(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.1) * sr)
    t = _times(n, sr)
    y = sum(a * np.sin(2 * np.pi * f * r * t) for r, a in ((0.5, 0.5), (1, 1.0), (2, 0.6),
                                                          (3, 0.35), (4, 0.25), (6, 0.1))
            if f * r < 0.42 * sr)
    env = _adsr(n, sr, attack_s=0.004, decay_s=0.2, sustain=0.75, release_s=0.06, gate_s=dur_s)
    return y * env


def _v_supersaw(midi, dur_s, vel, sr, rng, *, cutoff_hz=2200.0, attack_s=0.45):
    f = _midi_hz(midi)
    n = int((dur_s + 0.8) * sr)
    # fixed phases per voice, so equal notes render equal (and are rendered once)
    y = sum(_osc("saw", f * 2 ** (d / 1200), n, sr, phase0=(0.37 * i + 0.11 * midi) % 1.0,
                 max_hz=9000) for i, d in enumerate((-9.0, 0.0, 8.0)))
    y = _butter(y, sr, "lowpass", cutoff_hz)
    env = _adsr(n, sr, attack_s=attack_s, decay_s=1.0, sustain=0.85, release_s=0.7,
                gate_s=dur_s)
    return y * env / 3


def _v_808(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.15) * sr)
    t = _times(n, sr)
    freq = f * (1 + 0.6 * np.exp(-t / 0.012))  # the 808's pitch drop gives it its knock
    y = _saturate(_osc("sine", freq, n, sr), 1.6)
    env = _adsr(n, sr, attack_s=0.001, decay_s=0.9, sustain=0.55, release_s=0.08,
                gate_s=dur_s)
    return y * env


def _v_house_bass(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.08) * sr)
    t = _times(n, sr)
    # additive saw whose upper partials die first: a filter envelope without a filter
    y = sum(np.sin(2 * np.pi * k * f * t) / k * np.exp(-t * 14 * k / 4)
            for k in range(1, 24) if k * f < 0.42 * sr)
    y += 0.6 * np.sin(2 * np.pi * f * t)
    env = _adsr(n, sr, attack_s=0.002, decay_s=0.15, sustain=0.6, release_s=0.04, gate_s=dur_s)
    return y * env


def _v_reese(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.1) * sr)
    y = (_osc("saw", f * 2 ** (-12 / 1200), n, sr, max_hz=4000)
         + _osc("saw", f * 2 ** (12 / 1200), n, sr, phase0=0.37, max_hz=4000))
    y = _butter(y, sr, "lowpass", 700) + 0.8 * _osc("sine", f / 2, n, sr)
    env = _adsr(n, sr, attack_s=0.005, decay_s=0.3, sustain=0.8, release_s=0.06, gate_s=dur_s)
    return y * env


def _v_round_bass(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.1) * sr)
    t = _times(n, sr)
    y = np.sin(2 * np.pi * f * t) + 0.3 * _osc("triangle", 2 * f, n, sr)
    env = _adsr(n, sr, attack_s=0.004, decay_s=0.5, sustain=0.4, release_s=0.06, gate_s=dur_s)
    return _saturate(y * env, 1.2)


def _v_pluck_bass(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.1) * sr)
    t = _times(n, sr)
    y = sum(np.sin(2 * np.pi * k * f * t) / k ** 1.2 * np.exp(-t * 5 * k)
            for k in range(1, 12) if k * f < 0.42 * sr)
    env = _adsr(n, sr, attack_s=0.002, decay_s=0.4, sustain=0.5, release_s=0.05, gate_s=dur_s)
    return y * env


def _v_pluck(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.4) * sr)
    t = _times(n, sr)
    y = sum(np.sin(2 * np.pi * k * f * t) / k * np.exp(-t * (4 + 9 * k))
            for k in range(1, 16) if k * f < 0.42 * sr)
    env = _adsr(n, sr, attack_s=0.001, decay_s=0.5, sustain=0.0, release_s=0.1, gate_s=dur_s)
    return y * env


def _v_saw_lead(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.2) * sr)
    t = _times(n, sr)
    vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t) * np.minimum(1, t / 0.3)
    y = (_osc("saw", f * vib * 2 ** (-6 / 1200), n, sr, max_hz=8000)
         + _osc("saw", f * vib * 2 ** (6 / 1200), n, sr, phase0=0.5, max_hz=8000))
    y = _butter(y, sr, "lowpass", 3500)
    env = _adsr(n, sr, attack_s=0.01, decay_s=0.3, sustain=0.7, release_s=0.12, gate_s=dur_s)
    return y * env / 2


def _v_square_lead(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.12) * sr)
    t = _times(n, sr)
    vib = 1 + 0.005 * np.sin(2 * np.pi * 6.0 * t) * np.minimum(1, t / 0.2)
    y = _butter(_osc("square", f * vib, n, sr, max_hz=6000), sr, "lowpass", 4000)
    env = _adsr(n, sr, attack_s=0.005, decay_s=0.2, sustain=0.8, release_s=0.08, gate_s=dur_s)
    return y * env


def _v_bell(midi, dur_s, vel, sr, rng):
    f = _midi_hz(midi)
    n = int((dur_s + 0.8) * sr)
    t = _times(n, sr)
    index = 2.5 * np.exp(-t / 0.25)
    y = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * 3.5 * f * t))
    env = _adsr(n, sr, attack_s=0.001, decay_s=0.9, sustain=0.0, release_s=0.3, gate_s=dur_s)
    return y * env


def _sidechain(y: np.ndarray, *, bpm: float, sr: int, depth: float = 0.6) -> np.ndarray:
    """Duck on every beat, as if keyed from a four-on-the-floor kick (an EDM pump)."""
    since_beat_s = (_times(len(y), sr) * bpm / 60.0) % 1.0 * 60.0 / bpm
    # a 5 ms duck-in: an instant gain step would click on every beat
    duck = np.minimum(1.0, since_beat_s / 0.005) * np.exp(-since_beat_s / 0.09)
    return y * (1 - depth * duck)[:, None]


def _keyed(score_fn, voice, *, bpm, bars, reverb=None, spread=0.4, pump=False):
    def make(sr, rng):
        y = _render_score(score_fn(), voice, bpm=bpm, bars=bars, sr=sr, rng=rng, spread=spread)
        n = len(y)
        if reverb:
            y = _fold(_reverb(y, sr, rng, decay_s=reverb[0], wet=reverb[1]), n)
        if pump:
            y = _sidechain(y, bpm=bpm, sr=sr)
        return y
    return make


_PROGRESSIONS = {"minor": [(0, "m"), (8, ""), (5, "m"), (7, "")],   # i VI iv V
                 "major": [(0, ""), (9, "m"), (5, ""), (7, "")]}    # I vi IV V
_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


def chord_loop(key: str = "A minor", *, bpm: float, bars: int, sr: int = SR, seed: int = 0,
               instrument: str = "epiano") -> np.ndarray:
    """A chord loop in ``key`` (i-VI-iv-V in minor, I-vi-IV-V in major) with a bass note.

    Args:
        key: "A minor", "F# major", "Eb minor", ...
        bpm: tempo; chords are struck on a syncopated 16th-note rhythm.
        bars: 1, 2, 4 or 8; the four chords share the loop (one a bar at 4 bars).
        instrument: "epiano", "piano", "organ" or "pad".

    Returns:
        float64 stereo array, shape (bar_frames(bpm=bpm, bars=bars), 2), peak 1.0.
    """
    tonic, mode = key.split()
    m = re.match(r"^([A-G])([#b]?)$", tonic)
    if not m or mode not in _PROGRESSIONS:
        raise ValueError(f"bad key {key!r}")
    pc = _pc(m.group(1), m.group(2))
    names = [_NAMES[(pc + iv) % 12] + q for iv, q in _PROGRESSIONS[mode]]
    per_bar = max(1, 4 // bars)
    chords = [[names[(b * per_bar + i) % 4] for i in range(per_bar)] for b in range(bars)]
    voice = {"epiano": _v_epiano, "piano": _v_piano, "organ": _v_organ,
             "pad": _v_supersaw}[instrument]
    rhythm = "X.......X......." if instrument == "pad" else "X..x..x...x.x..."
    y = _keyed(lambda: _comp(chords, rhythm, bass=True), voice, bpm=bpm, bars=bars,
               reverb=(1.2, 0.2))(sr, _rng(seed, f"chords:{key}:{bpm}:{bars}:{instrument}"))
    return y / np.abs(y).max()


# -- fx --------------------------------------------------------------------------------------

def _fx_riser(sr, rng):
    n = int(4.0 * sr)
    t = _times(n, sr)
    ramp = (t / t[-1]) ** 2
    chans = [_swept(rng.standard_normal(n), sr, "bandpass", 300, 9000, q=2.5) for _ in range(2)]
    y = np.stack(chans, axis=1) * ramp[:, None]
    tone = _osc("saw", 110 * 2 ** (4 * t / t[-1]), n, sr, max_hz=6000)
    y += 0.15 * (ramp * _butter(tone, sr, "lowpass", 5000))[:, None]
    return _reverb(y / np.abs(y).max(), sr, rng, decay_s=1.2, wet=0.3)


def _fx_impact(sr, rng):
    n = int(2.5 * sr)
    t = _times(n, sr)
    boom = _osc("sine", 32 + 60 * np.exp(-t / 0.08), n, sr) * np.exp(-t / 0.7)
    crack = _butter(rng.standard_normal(n), sr, "lowpass", 3000) * np.exp(-t / 0.06)
    y = _saturate(boom + 0.6 * crack, 1.5)
    return _reverb(y, sr, rng, decay_s=2.5, wet=0.4, damp_hz=3500)


def _fx_reverse_swell(sr, rng):
    y = _reverb(_cymbal(sr, rng, decay_s=0.9, length_s=1.6), sr, rng, decay_s=1.5, wet=0.5)
    y = _trim_tail(y / np.abs(y).max(), sr)
    return y[::-1].copy()  # the swell ends at the cut, where the hit would be


def _fx_noise_sweep(sr, rng):
    n = int(3.0 * sr)
    t = _times(n, sr)
    fade = np.exp(-t / 1.4)
    chans = [_swept(rng.standard_normal(n), sr, "lowpass", 14000, 150, q=1.4) for _ in range(2)]
    return np.stack(chans, axis=1) * fade[:, None]


# -- the pack --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    path: str
    role: str
    kind: str  # "loop" | "oneshot"
    # a synth (sr, rng) -> samples, or ("hit", name) / ("drumloop", genre) for shared sounds
    make: Callable[[int, np.random.Generator], np.ndarray] | tuple[str, str]
    description: str
    bpm: float | None = None
    key: str | None = None
    bars: int | None = None
    genre: str | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None
    sr: int = SR
    channels: int = 2
    format: str = "WAV"
    subtype: str = "PCM_16"
    peak_db: float = -1.0


_EXT = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg", "AIFF": ".aiff"}


def _hit_spec(folder, file_stem, hit, role, **kw) -> _Spec:
    _, desc, tags = _HITS[hit]
    fmt = kw.get("format", "WAV")
    return _Spec(path=f"{folder}/{file_stem}{_EXT[fmt]}", role=role, kind="oneshot",
                 make=("hit", hit), description=desc, tags=tags, **kw)


def _loop_spec(folder, stem, role, make, description, *, bpm, bars, key=None, **kw) -> _Spec:
    fmt = kw.get("format", "WAV")
    return _Spec(path=f"{folder}/{stem}{_EXT[fmt]}", role=role, kind="loop", make=make,
                 description=description, bpm=float(bpm), key=key, bars=bars, **kw)


def _drum_spec(stem, genre, bpm, bars, **kw) -> _Spec:
    return _loop_spec("Drums/Loops", stem, "drumloop", ("drumloop", genre), f"{genre} drums",
                      bpm=bpm, bars=bars, genre=genre, **kw)


def _specs() -> list[_Spec]:
    K, S, H = "Drums/Kicks", "Drums/Snares", "Drums/HiHats"
    C, P, Y, T = "Drums/Claps", "Drums/Percussion", "Drums/Cymbals", "Drums/Toms"
    specs = [
        _hit_spec(K, "kick_punchy_01", "kick_punchy", "kick", channels=1),
        _hit_spec(K, "kick_soft_02", "kick_soft", "kick", peak_db=-3.0),
        _hit_spec(K, "kick_dark_03", "kick_dark", "kick", channels=1),
        _hit_spec(K, "kick_bright_04", "kick_bright", "kick"),
        _hit_spec(K, "kick_distorted_05", "kick_distorted", "kick", format="AIFF",
                  subtype="PCM_24"),
        _hit_spec(K, "808_kick_long_06", "kick_808", "kick", channels=1, note="F1"),
        _hit_spec(S, "snare_tight_01", "snare_tight", "snare"),
        _hit_spec(S, "snare_fat_02", "snare_fat", "snare"),
        _hit_spec(S, "snare_lofi_03", "snare_lofi", "snare", channels=1),
        _hit_spec(S, "snare_bright_04", "snare_bright", "snare"),
        _hit_spec(S, "snare_soft_05", "snare_soft", "snare", peak_db=-4.0),
        _hit_spec(H, "hihat_closed_01", "hihat_closed", "hihat"),
        _hit_spec(H, "hihat_closed_dark_02", "hihat_closed_dark", "hihat"),
        _hit_spec(H, "hihat_open_03", "hihat_open", "hihat"),
        _hit_spec(H, "hihat_pedal_04", "hihat_pedal", "hihat", peak_db=-3.0),
        _hit_spec(H, "hihat_closed_bright_05", "hihat_closed_bright", "hihat", format="OGG",
                  subtype="VORBIS", peak_db=-2.0),
        _hit_spec(C, "clap_01", "clap", "clap"),
        _hit_spec(C, "clap_wet_02", "clap_wet", "clap"),
        _hit_spec(C, "clap_tight_03", "clap_tight", "clap"),
        _hit_spec(P, "perc_conga_01", "perc_conga", "perc"),
        _hit_spec(P, "perc_shaker_02", "perc_shaker", "perc"),
        _hit_spec(P, "perc_cowbell_03", "perc_cowbell", "perc"),
        _hit_spec(P, "perc_woodblock_04", "perc_woodblock", "perc", channels=1),
        _hit_spec(P, "perc_tamb_05", "perc_tamb", "perc"),
        _hit_spec(Y, "crash_01", "crash", "cymbal", format="FLAC"),
        _hit_spec(Y, "ride_02", "ride", "cymbal"),
        _hit_spec(Y, "crash_dark_03", "crash_dark", "cymbal"),
        _hit_spec(T, "tom_low_01", "tom_low", "tom"),
        _hit_spec(T, "tom_mid_02", "tom_mid", "tom"),
        _hit_spec(T, "tom_high_03", "tom_high", "tom"),
        # drum loops at the tempos producers use most
        _drum_spec("trap_drums_140bpm_01", "trap", 140, 4),
        _drum_spec("trap_drums_140bpm_02", "trap", 140, 2),
        _drum_spec("boombap_drums_90bpm_01", "boombap", 90, 2),
        _drum_spec("boombap_drums_85bpm_02", "boombap", 85, 4, format="FLAC"),
        _drum_spec("house_drums_128bpm_01", "house", 128, 4, format="FLAC"),
        _drum_spec("house_drums_120bpm_02", "house", 120, 1),
        _drum_spec("dnb_drums_174bpm_01", "dnb", 174, 4),
        _drum_spec("dnb_drums_174bpm_02", "dnb", 174, 2, format="OGG", subtype="VORBIS",
                   peak_db=-2.0),
    ]

    def bass(stem, key, bpm, bars, voice, text, desc, **kw):
        make = _keyed(lambda: _melody(text), voice, bpm=bpm, bars=bars, spread=0.0)
        return _loop_spec("Bass", stem, "bass", make, desc, bpm=bpm, bars=bars, key=key, **kw)

    specs += [
        bass("bass_Fmin_140bpm", "F minor", 140, 4, _v_808,
             "F1:10 F1:2 F1:4 | Db2:6 Db2:4 Db2:6 | Bb1:10 Bb1:2 C2:4 | C2:6 C2:4 E1:2 F1:4",
             "trap 808 bass", channels=1, genre="trap"),
        bass("bass_Amin_128bpm", "A minor", 128, 2, _v_house_bass,
             "-:2 A1:2 -:2 A1:2 -:2 A1:2 -:2 C2:2 | -:2 E1:2 -:2 E1:2 -:2 G#1:2 -:2 A1:2",
             "house off-beat saw bass", channels=1, genre="house"),
        bass("bass_Dmin_174bpm", "D minor", 174, 4, _v_reese,
             "D2:12 -:2 D2:2 | D2:8 F2:4 E2:4 | Bb1:12 -:2 Bb1:2 | A1:8 C#2:4 D2:4",
             "dnb reese bass", genre="dnb", tags=("dark",)),
        bass("bass_Gmaj_90bpm", "G major", 90, 2, _v_round_bass,
             "G1:6 G1:2 -:2 B1:2 D2:4 | C2:6 C2:2 -:2 D2:2 F#1:2 G1:2",
             "round boom bap bass", channels=1, genre="boombap", tags=("warm",)),
        bass("bass_Cmaj_120bpm", "C major", 120, 4, _v_pluck_bass,
             "C2:4 C2:2 E2:2 G2:4 E2:4 | A1:4 A1:2 C2:2 E2:4 C2:4 | F1:4 F1:2 A1:2 C2:4 A1:4 | "
             "G1:4 G1:2 B1:2 D2:4 B1:2 G1:2", "plucked finger bass", channels=1,
             format="FLAC"),
    ]

    def keys(stem, key, bpm, bars, voice, chords, rhythm, desc, *, legato=0.92,
             reverb=(1.2, 0.2), **kw):
        make = _keyed(lambda: _comp(chords, rhythm, legato=legato, bass=True), voice,
                      bpm=bpm, bars=bars, reverb=reverb)
        return _loop_spec("Keys", stem, "keys", make, desc, bpm=bpm, bars=bars, key=key, **kw)

    specs += [
        keys("chords_Cmaj_120bpm", "C major", 120, 4, _v_epiano,
             [["C"], ["Am"], ["F"], ["G"]], "X.....x...X...x.", "electric piano chords",
             format="FLAC"),
        keys("chords_Fmin_140bpm", "F minor", 140, 4, _v_piano,
             [["Fm"], ["Db"], ["Bbm"], ["C"]], "X..x..x.X..x..x.", "piano chords",
             tags=("dark",)),
        keys("chords_Amin_90bpm", "A minor", 90, 2, _v_epiano,
             [["Am7", "Dm7"], ["E7", "Am7"]], "X.....x.X.....x.", "mellow rhodes chords",
             tags=("warm",)),
        keys("chords_Gmaj_128bpm", "G major", 128, 4, _v_organ,
             [["G"], ["Em"], ["C"], ["D"]], "..X...X...X...X.", "house organ stabs",
             legato=0.4, reverb=(0.8, 0.25), genre="house"),
        keys("chords_Dmin_85bpm", "D minor", 85, 2, _v_piano,
             [["Dm"], ["Gm", "A"]], "X.......x...x...", "slow piano chords", tags=("soft",)),
    ]

    def pad(stem, key, bpm, bars, chords, desc, *, pump=False, **kw):
        make = _keyed(lambda: _comp(chords, "X" + "." * 15, legato=1.0, bass=True),
                      _v_supersaw, bpm=bpm, bars=bars, reverb=(2.5, 0.35), spread=0.7,
                      pump=pump)
        return _loop_spec("Pads", stem, "pad", make, desc, bpm=bpm, bars=bars, key=key, **kw)

    specs += [
        pad("pad_Fmin_140bpm", "F minor", 140, 4, [["Fm"], ["Fm"], ["Db"], ["C"]],
            "dark supersaw pad", format="FLAC", tags=("dark", "wet")),
        pad("pad_Cmaj_120bpm", "C major", 120, 4, [["C"], ["F"], ["C"], ["G"]],
            "pumping supersaw pad", pump=True, format="OGG", subtype="VORBIS", peak_db=-2.0,
            tags=("wet",)),
        pad("pad_Amin_90bpm", "A minor", 90, 2, [["Am"], ["Dm", "E"]], "warm pad",
            tags=("warm", "wet")),
        pad("pad_Emin_128bpm", "E minor", 128, 4, [["Em"], ["C"], ["Am"], ["B"]],
            "pumping trance pad", pump=True, sr=48000, tags=("wet",)),
    ]

    def lead(stem, key, bpm, bars, voice, text, desc, *, reverb=(1.0, 0.25), **kw):
        make = _keyed(lambda: _melody(text), voice, bpm=bpm, bars=bars, reverb=reverb,
                      spread=0.0)
        return _loop_spec("Leads", stem, "lead", make, desc, bpm=bpm, bars=bars, key=key, **kw)

    specs += [
        lead("lead_Fmin_140bpm", "F minor", 140, 2, _v_pluck,
             "F4:2 Ab4:2 C5:2 Ab4:2 G4:2 Ab4:2 F4:4 | C5:2 Db5:2 C5:2 Ab4:2 G4:2 E4:2 F4:4",
             "trap pluck melody", genre="trap"),
        lead("lead_Amin_128bpm", "A minor", 128, 4, _v_saw_lead,
             "A4:4 C5:2 E5:2 D5:4 C5:4 | B4:4 G#4:2 B4:2 E5:8 | A4:4 C5:2 E5:2 A5:4 G5:2 E5:2 | "
             "D5:2 C5:2 B4:4 A4:8", "saw lead melody", tags=("bright",)),
        lead("lead_Gmaj_120bpm", "G major", 120, 2, _v_square_lead,
             "G4:2 A4:2 B4:2 D5:2 E5:2 D5:2 B4:4 | C5:2 B4:2 A4:2 F#4:2 G4:8",
             "square lead melody", channels=1, reverb=None, format="AIFF", subtype="PCM_24",
             tags=("dry",)),
        lead("lead_Dmin_174bpm", "D minor", 174, 4, _v_bell,
             "D5:2 F5:2 A5:2 D5:2 C5:4 A4:4 | Bb4:4 A4:2 G4:2 A4:8 | D5:2 F5:2 A5:2 C6:2 "
             "Bb5:4 A5:4 | G5:2 F5:2 E5:2 C#5:2 D5:8", "FM bell melody", genre="dnb"),
    ]

    def fx(stem, make, desc, **kw):
        fmt = kw.get("format", "WAV")
        return _Spec(path=f"FX/{stem}{_EXT[fmt]}", role="fx", kind="oneshot", make=make,
                     description=desc, **kw)

    specs += [
        fx("riser_01", _fx_riser, "noise riser"),
        fx("impact_01", _fx_impact, "sub impact", subtype="PCM_24", tags=("wet",)),
        fx("reverse_swell_01", _fx_reverse_swell, "reverse cymbal swell"),
        fx("noise_sweep_01", _fx_noise_sweep, "downward noise sweep"),
    ]
    return specs


def _render(spec: _Spec, seed: int) -> np.ndarray:
    """The file's samples: float64, shape (n, channels), at spec.sr, peak at spec.peak_db."""
    if isinstance(spec.make, tuple) and spec.make[0] == "hit":
        y = _hit_cached(spec.make[1], spec.sr, seed)
    elif isinstance(spec.make, tuple) and spec.make[0] == "drumloop":
        y = drum_loop(spec.make[1], bpm=spec.bpm, bars=spec.bars, sr=spec.sr, seed=seed)
    else:
        y = spec.make(spec.sr, _rng(seed, spec.path))
        if spec.kind == "oneshot":
            y = _trim_tail(y / np.abs(y).max(), spec.sr)
    y = _stereo(np.asarray(y, dtype=np.float64))
    if spec.channels == 1:
        y = y.mean(axis=1, keepdims=True)
    if spec.kind == "loop":
        assert len(y) == bar_frames(bpm=spec.bpm, bars=spec.bars, sr=spec.sr), spec.path
    return y * (10 ** (spec.peak_db / 20) / np.abs(y).max())


# -- writing ---------------------------------------------------------------------------------

def _ogg_crc(data: bytes | bytearray) -> int:
    crc = 0
    table = _ogg_crc_table()
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) & 0xFF) ^ byte]
    return crc


@lru_cache(maxsize=1)
def _ogg_crc_table() -> tuple[int, ...]:
    out = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        out.append(r & 0xFFFFFFFF)
    return tuple(out)


def _fix_ogg_serial(data: bytes, serial: int) -> bytes:
    """Set every Ogg page's stream serial number (libsndfile picks a random one) and re-CRC.

    Without this an OGG file differs from build to build, and the demo would not be
    reproducible byte for byte.
    """
    b = bytearray(data)
    pos = 0
    while pos + 27 <= len(b):
        if b[pos:pos + 4] != b"OggS":
            raise ValueError("not an Ogg page")
        n_segs = b[pos + 26]
        page_len = 27 + n_segs + sum(b[pos + 27:pos + 27 + n_segs])
        b[pos + 14:pos + 18] = serial.to_bytes(4, "little")
        b[pos + 22:pos + 26] = b"\0\0\0\0"
        b[pos + 22:pos + 26] = _ogg_crc(b[pos:pos + page_len]).to_bytes(4, "little")
        pos += page_len
    return bytes(b)


def _encode(y: np.ndarray, spec: _Spec) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, spec.sr, format=spec.format, subtype=spec.subtype)
    data = buf.getvalue()
    if spec.format == "OGG":
        data = _fix_ogg_serial(data, zlib.crc32(spec.path.encode()))
    return data


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a hidden temp file in the same folder and os.replace: never a partial file.

    The temp name ends in ``.demo-part`` so a scanner watching the folder ignores it.
    """
    from loopmind.fileio import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, suffix=_TMP_SUFFIX, fsync=False)


def _remove_stale_temps(dest: Path) -> None:
    now = time.time()
    for tmp in dest.rglob(f".*{_TMP_SUFFIX}"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TMP_S:
                tmp.unlink()
        except OSError:
            pass


def _complete(dest: Path, seed: int) -> list[Path] | None:
    """The files of a complete demo library of this version and seed in ``dest``, or None."""
    manifest = read_manifest(dest)
    if not manifest or manifest.get("version") != DEMO_VERSION or manifest.get("seed") != seed:
        return None
    paths = []
    try:
        for entry in manifest["files"]:
            rel = entry["path"]
            if not isinstance(rel, str) or rel.startswith("/") or ".." in rel.split("/"):
                return None
            p = dest / rel
            if p.stat().st_size != entry["bytes"]:
                return None
            paths.append(p)
    except (OSError, KeyError, TypeError):
        return None  # missing file or a manifest we did not write: rebuild
    return paths or None


def build_demo_library(dest: os.PathLike | str, *, seed: int = 0,
                       force: bool = False) -> list[Path]:
    """Synthesize the demo sample library into ``dest`` (or reuse a complete one there).

    Each file is written atomically (temp file in the same folder, then ``os.replace``), and
    ``demo-manifest.json`` is written last: a library without a manifest is incomplete and is
    rebuilt. Files of an older demo version that are no longer part of the pack are removed;
    nothing else in ``dest`` is touched.

    Args:
        dest: folder for the library (created if missing), e.g. ``Settings.demo_dir``.
        seed: seed for every random choice (noise, velocities); same seed, same bytes.
        force: rebuild even if ``dest`` already holds a complete library of this version.

    Returns:
        Paths of the audio files, in manifest order.
    """
    dest = Path(dest)
    if not force:
        existing = _complete(dest, seed)
        if existing is not None:
            return existing
    dest.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest)
    old = read_manifest(dest)
    # an interrupted rebuild must not look complete
    (dest / MANIFEST_NAME).unlink(missing_ok=True)

    entries = []
    for spec in _specs():
        y = _render(spec, seed)
        data = _encode(y, spec)
        _atomic_write(dest / spec.path, data)
        entries.append({
            "path": spec.path,
            "role": spec.role,
            "kind": spec.kind,
            "bpm": spec.bpm,
            "key": spec.key,
            "bars": spec.bars,
            "genre": spec.genre,
            "tags": list(spec.tags),
            "note": spec.note,
            "description": spec.description,
            "format": spec.format,
            "subtype": spec.subtype,
            "sr": spec.sr,
            "channels": spec.channels,
            "frames": len(y),
            "duration_s": round(len(y) / spec.sr, 6),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        })

    if old:
        keep = {e["path"] for e in entries}
        root = dest.resolve()
        for entry in old.get("files", []):
            rel = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(rel, str) or rel in keep:
                continue
            p = (dest / rel).resolve()
            if root in p.parents:  # never delete outside the demo folder
                p.unlink(missing_ok=True)

    manifest = {"name": "LoopMind demo library", "version": DEMO_VERSION, "seed": seed,
                "sr": SR, "files": entries}
    _atomic_write(dest / MANIFEST_NAME,
                  (json.dumps(manifest, indent=1, sort_keys=False) + "\n").encode("utf-8"))
    return [dest / e["path"] for e in entries]

"""Tempo estimation and beat grid on drum patterns synthesized in code."""

from __future__ import annotations

import numpy as np
import pytest

from loopmind.library.analysis.features import Spectrogram
from loopmind.library.analysis.tempo import (
    TempoEstimate,
    beat_grid,
    estimate_tempo,
    loop_fit_confidence,
)

SR = 22050


def _kick(rng):
    t = np.arange(int(0.25 * SR)) / SR
    f = 50 + 80 * np.exp(-t * 30)  # pitch drop of a kick drum
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t * 14)


def _snare(rng):
    t = np.arange(int(0.18 * SR)) / SR
    return (0.6 * rng.standard_normal(len(t)) * np.exp(-t * 25)
            + 0.7 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 30))


def _hat(rng):
    t = np.arange(int(0.05 * SR)) / SR
    return 0.25 * np.diff(rng.standard_normal(len(t)), prepend=0.0) * np.exp(-t * 80)


def drum_pattern(bpm: float, bars: int, *, offset_s: float = 0.0, bass: bool = False,
                 loop: bool = True) -> np.ndarray:
    """A 4/4 groove: kick on 1, 3 and 3-and, snare on 2 and 4, eighth-note hats.

    With ``loop`` the sound ringing past the end folds onto the start (a seamless loop);
    ``bass`` adds a bass note that changes at every bar line (as chords do in songs).
    """
    rng = np.random.default_rng(440)
    beat = 60.0 / bpm
    n = int(round((offset_s + bars * 4 * beat) * SR))
    y = np.zeros(n + SR)

    def put(x, t):
        i = int(round((offset_s + t) * SR))
        j = min(len(y), i + len(x))
        y[i:j] += x[: j - i]

    kick, snare = _kick(rng), _snare(rng)
    for b in range(bars):
        t0 = b * 4 * beat
        for q in (0, 2, 2.5):
            put(kick, t0 + q * beat)
        for q in (1, 3):
            put(snare, t0 + q * beat)
        for e in range(8):
            put(_hat(rng), t0 + e * beat / 2)
        if bass:
            t = np.arange(int(round(4 * beat * SR))) / SR
            f = (55.0, 73.4, 65.4, 49.0)[b % 4]
            put(0.5 * np.sin(2 * np.pi * f * t) * np.minimum(1.0, t * 50), t0)
    if loop and offset_s == 0:
        y[:SR] += y[n:n + SR]
    y = y[:n]
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def _est(y, **kw) -> TempoEstimate:
    return estimate_tempo(y, sr=SR, spec=Spectrogram(y, SR), **kw)


@pytest.mark.parametrize("bpm", [70, 90, 120, 140])
@pytest.mark.parametrize("bars", [1, 2, 4])
def test_loop_tempo_known_and_unknown_kind(bpm, bars):
    y = drum_pattern(bpm, bars)
    for is_loop in (True, None):
        est = _est(y, is_loop=is_loop)
        assert est.bpm == pytest.approx(bpm, rel=0.01), (is_loop, est)
        assert est.method == "loop"
        assert est.beats == 4 * bars
        assert 0.3 < est.confidence <= 1.0


def test_fast_loop_octave_and_hint():
    y = drum_pattern(174, 2)
    est = _est(y, is_loop=True)
    # without a hint 174 may be read at half tempo (as many listeners do), never elsewhere
    assert min(abs(est.bpm / 174 - 1), abs(est.bpm / 87 - 1)) < 0.01
    hinted = _est(y, is_loop=True, bpm_hint=174)
    assert hinted.bpm == pytest.approx(174, rel=0.01)
    assert hinted.confidence > est.confidence or est.bpm == pytest.approx(174, rel=0.01)


def test_hint_resolves_octave_but_a_wrong_hint_is_ignored():
    y = drum_pattern(90, 2)
    assert _est(y, is_loop=True, bpm_hint=180).bpm == pytest.approx(180, rel=0.01)
    # 100 BPM is no whole number of beats in this loop: the hint cannot apply
    assert _est(y, is_loop=True, bpm_hint=100).bpm == pytest.approx(90, rel=0.01)


def test_song_uses_onset_path():
    y = drum_pattern(120, 32, offset_s=0.7, bass=True, loop=False)
    est = _est(y)
    assert est.method == "onset"
    assert est.bpm == pytest.approx(120, rel=0.01)
    assert _est(y, is_loop=False).bpm == pytest.approx(120, rel=0.01)


def test_beat_grid_on_song():
    y = drum_pattern(120, 16, offset_s=0.7, bass=True, loop=False)
    spec = Spectrogram(y, SR)
    beats, downbeats = beat_grid(y, sr=SR, spec=spec, bpm=120.0)
    assert (beats[-1] - beats[0]) / (len(beats) - 1) == pytest.approx(0.5, rel=0.01)
    true_bars = 0.7 + 2.0 * np.arange(16)
    # every detected downbeat sits on a bar line (onset frames lead attacks by < 60 ms)
    err = np.abs(downbeats[:, None] - true_bars[None, :]).min(axis=1)
    assert len(downbeats) >= 14
    assert np.all(err < 0.06)


@pytest.mark.parametrize("kind", ["silence", "tone", "hit"])
def test_no_rhythm_gives_no_tempo(kind):
    t = np.arange(int(3.0 * SR)) / SR
    if kind == "silence":
        y = np.zeros_like(t)
    elif kind == "tone":
        y = 0.3 * np.sin(2 * np.pi * 220 * t) * np.minimum(1.0, t * 20)
    else:
        y = np.zeros_like(t)
        k = _kick(np.random.default_rng(440))
        y[:len(k)] = k
    est = _est(y.astype(np.float32))
    assert est.bpm is None and est.confidence == 0.0


def test_noise_has_low_confidence():
    y = (0.1 * np.random.default_rng(440).standard_normal(4 * SR)).astype(np.float32)
    est = _est(y)
    assert est.confidence < 0.3


def test_loop_fit_confidence():
    assert loop_fit_confidence(2.0, 120) == pytest.approx(1.0)
    assert loop_fit_confidence(2.25, 120) == pytest.approx(0.0)  # half a beat off
    assert 0.4 < loop_fit_confidence(2.0, 126) < 0.8

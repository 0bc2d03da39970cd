"""Tone tags on synthetic sounds with known character."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import butter, fftconvolve, sosfilt

from loopmind.library.analysis.features import Spectrogram
from loopmind.library.analysis.tone import tags_from_measures, tone_measures, tone_tags

SR = 22050
PAIRS = [("dark", "bright"), ("distorted", "clean"), ("wet", "dry"), ("punchy", "soft")]


def _t(duration_s: float) -> np.ndarray:
    return np.arange(int(duration_s * SR)) / SR


def sine(duration_s: float = 1.0, f: float = 220.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * f * _t(duration_s))).astype(np.float32)


def burst() -> np.ndarray:
    """A 30 ms-decay noise burst followed by silence (dry)."""
    rng = np.random.default_rng(440)
    t = _t(1.5)
    y = rng.standard_normal(len(t)) * np.exp(-t / 0.03)
    return (0.5 * y).astype(np.float32)


def reverberant(y: np.ndarray, t60_s: float = 1.5) -> np.ndarray:
    """``y`` convolved with exponentially decaying noise (the given T60), plus its tail."""
    rng = np.random.default_rng(441)
    n = int(t60_s * 1.5 * SR)
    ir = rng.standard_normal(n) * np.exp(-np.arange(n) / SR * 6.91 / t60_s)
    ir[0] = 0.0
    wet = fftconvolve(y, ir)
    wet = np.r_[y, np.zeros(len(wet) - len(y))] + 0.5 * wet / np.abs(wet).max()
    return (0.5 * wet / np.abs(wet).max()).astype(np.float32)


def filtered_noise(kind: str, cutoff_hz: float) -> np.ndarray:
    rng = np.random.default_rng(440)
    y = sosfilt(butter(4, cutoff_hz, kind, fs=SR, output="sos"), rng.standard_normal(SR))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def test_measures_are_numbers_and_spec_is_reused():
    y = burst()
    spec = Spectrogram(y, SR)
    m = tone_measures(y, sr=SR, spec=spec)
    for key in ("centroid_hz", "centroid_ratio", "lowmid_ratio", "high_ratio", "flatness_db",
                "ceiling_fraction", "frame_crest_db", "crest_db", "envelope_crest_db",
                "attack_ms", "decay_t60_s"):
        assert key in m and isinstance(m[key], float)
    assert tone_tags(y, sr=SR, spec=spec) == tags_from_measures(m)


def test_clipped_vs_clean_sine():
    clean = sine()
    clipped = np.clip(clean * 6, -0.5, 0.5)
    m_clean, m_clip = tone_measures(clean, sr=SR), tone_measures(clipped, sr=SR)
    assert m_clean["frame_crest_db"] == pytest.approx(3.0, abs=0.3)  # a sine's crest
    assert m_clip["ceiling_fraction"] > 0.5 > m_clean["ceiling_fraction"]
    assert "clean" in tone_tags(clean, sr=SR)
    assert "distorted" not in tone_tags(clean, sr=SR)
    assert "distorted" in tone_tags(clipped, sr=SR)
    assert "clean" not in tone_tags(clipped, sr=SR)


def test_saturated_chord_is_distorted():
    t = _t(1.0)
    chord = sum(2 * ((f * t) % 1.0) - 1 for f in (220.0, 277.2, 329.6)) / 3
    assert "distorted" in tone_tags(np.tanh(4 * chord).astype(np.float32) * 0.5, sr=SR)


def test_dry_vs_reverberant():
    dry = burst()
    wet = reverberant(dry, t60_s=1.5)
    m_dry, m_wet = tone_measures(dry, sr=SR), tone_measures(wet, sr=SR)
    assert m_dry["decay_t60_s"] == pytest.approx(6.91 * 0.03, rel=0.3)  # T60 of the burst
    assert m_wet["decay_t60_s"] == pytest.approx(1.5, rel=0.35)
    assert "dry" in tone_tags(dry, sr=SR) and "wet" not in tone_tags(dry, sr=SR)
    assert "wet" in tone_tags(wet, sr=SR) and "dry" not in tone_tags(wet, sr=SR)


def test_steady_sound_gets_no_reverb_guess():
    m = tone_measures(sine(2.0), sr=SR)
    assert math.isnan(m["decay_t60_s"])
    assert not {"wet", "dry"} & set(tone_tags(sine(2.0), sr=SR))


def test_bright_vs_dark_noise():
    bright = filtered_noise("hp", 6000)
    dark = filtered_noise("lp", 500)
    assert tone_measures(bright, sr=SR)["centroid_hz"] > 4 * tone_measures(dark, sr=SR)[
        "centroid_hz"]
    assert "bright" in tone_tags(bright, sr=SR)
    assert "dark" in tone_tags(dark, sr=SR)


def test_brightness_is_relative_to_the_role():
    y = filtered_noise("bp", [1500, 2500])
    # the same sound is bright for a kick and dark for a hi-hat
    assert "bright" in tone_tags(y, sr=SR, role="kick")
    assert "dark" in tone_tags(y, sr=SR, role="hihat")


def test_warm_pad_and_soft_attack():
    t = _t(3.0)
    y = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220, 440, 660), 1))
    y = (0.2 * y * np.minimum(t / 0.4, 1.0)).astype(np.float32)
    tags = tone_tags(y, sr=SR, role="pad")
    assert "warm" in tags and "soft" in tags and "punchy" not in tags
    assert tone_measures(y, sr=SR)["attack_ms"] > 200


def test_punchy_kick():
    t = _t(0.5)
    freq = 50 + 200 * np.exp(-t / 0.03)
    kick = (0.9 * np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-t / 0.08)).astype(
        np.float32)
    m = tone_measures(kick, sr=SR, role="kick")
    assert m["attack_ms"] < 10
    tags = tone_tags(kick, sr=SR, role="kick")
    assert "punchy" in tags and "soft" not in tags


@pytest.mark.parametrize("make", [burst, sine, lambda: filtered_noise("hp", 6000),
                                  lambda: np.clip(sine() * 6, -0.5, 0.5)])
def test_pairs_never_both(make):
    tags = tone_tags(make(), sr=SR)
    for a, b in PAIRS:
        assert not (a in tags and b in tags)


@pytest.mark.parametrize("y", [np.zeros(SR, np.float32), np.zeros(0, np.float32),
                               np.ones(5, np.float32), np.full(SR, np.nan, np.float32)])
def test_degenerate_input(y):
    assert isinstance(tone_tags(y, sr=SR), list)


def test_hop_mean_square_is_shared_only_for_the_spectrogram_of_the_same_signal():
    """Role, tone and embed read one 5 ms envelope: computed once per Spectrogram of that very
    signal, never handed to an equal copy's caller from another signal's cache."""
    from loopmind.library.analysis.features import Spectrogram, hop_mean_square

    sr = 22050
    y = (np.random.default_rng(3).standard_normal(sr) * 0.1).astype(np.float32)
    spec = Spectrogram(y, sr)
    e = hop_mean_square(y, sr, 110, spec)
    want = np.mean(np.square(y[: len(y) // 110 * 110].reshape(-1, 110), dtype=np.float64),
                   axis=1)
    np.testing.assert_array_equal(e, want)
    assert hop_mean_square(y, sr, 110, spec) is e  # cached
    other = y * 2.0
    assert hop_mean_square(other, sr, 110, spec) is not e  # not the spectrogram's signal
    np.testing.assert_allclose(hop_mean_square(other, sr, 110, spec), 4 * want, rtol=1e-6)
    assert not e.flags.writeable
    assert hop_mean_square(y[:50], sr, 110).shape == (1,)

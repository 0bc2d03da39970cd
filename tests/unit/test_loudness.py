"""Loudness and true peak against pyloudnorm (the reference BS.1770 implementation)."""

import numpy as np
import pytest

from loopmind.library.analysis.loudness import LoudnessMeter, measure

pyln = pytest.importorskip("pyloudnorm")


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_integrated_matches_pyloudnorm(sr, channels):
    rng = np.random.default_rng(440)
    y = (rng.standard_normal((sr * 6, channels)) * 0.1).astype(np.float32)
    y[: sr * 2] *= 0.05  # a quiet part that the relative gate removes
    ours = measure(y, sr).integrated_lufs()
    ref = pyln.Meter(sr).integrated_loudness(y.astype(np.float64))
    assert ours == pytest.approx(ref, abs=0.2)


def test_streaming_equals_one_block():
    sr = 44100
    rng = np.random.default_rng(440)
    y = (rng.standard_normal((sr * 5, 2)) * 0.2).astype(np.float32)
    meter = LoudnessMeter(sr, 2)
    for a in range(0, len(y), 3001):  # odd block size, not a multiple of the 100 ms step
        meter.feed(y[a:a + 3001])
    streamed = meter.result()
    whole = measure(y, sr)
    assert streamed.integrated_lufs() == pytest.approx(whole.integrated_lufs(), abs=1e-6)
    assert streamed.true_peak_db() == pytest.approx(whole.true_peak_db(), abs=0.05)


def test_true_peak_finds_inter_sample_peak():
    sr = 44100
    t = np.arange(sr) / sr
    # fs/4 sine at 45 degrees: samples peak at -3 dB, the waveform at 0 dB
    y = np.sin(2 * np.pi * (sr / 4) * t + np.pi / 4).astype(np.float32)
    tr = measure(y, sr)
    sample_peak_db = 20 * np.log10(np.abs(y).max())
    assert sample_peak_db == pytest.approx(-3.01, abs=0.05)
    assert tr.true_peak_db() == pytest.approx(0.0, abs=0.3)


def test_segment_loudness_and_silence():
    sr = 48000
    t = np.arange(sr * 4) / sr
    y = np.zeros_like(t)
    y[sr * 2:] = 0.5 * np.sin(2 * np.pi * 1000 * t[sr * 2:])
    tr = measure(y.astype(np.float32), sr)
    assert tr.integrated_lufs(0.0, 2.0) <= -70
    loud = tr.integrated_lufs(2.0, 4.0)
    ref = pyln.Meter(sr).integrated_loudness(y[sr * 2:])
    assert loud == pytest.approx(ref, abs=0.2)
    assert tr.true_peak_db(2.0, 4.0) == pytest.approx(20 * np.log10(0.5), abs=0.2)


def test_true_peak_shortcut_matches_full_oversampling():
    from scipy.signal import resample_poly

    rng = np.random.default_rng(440)
    sr = 44100
    for trial in range(5):
        # drum-like bursts: decaying filtered noise at random places
        y = np.zeros(sr * 2, dtype=np.float32)
        for start in rng.integers(0, sr * 2 - 4000, size=12):
            burst = rng.standard_normal(4000) * np.exp(-np.arange(4000) / 600)
            y[start:start + 4000] += burst.astype(np.float32)
        y /= np.abs(y).max()
        full = 20 * np.log10(np.abs(resample_poly(y, 4, 1)).max())
        assert measure(y, sr).true_peak_db() == pytest.approx(full, abs=0.3)

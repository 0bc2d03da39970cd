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


def test_feed_keeps_no_reference_to_the_block():
    """decode reads every block into the same buffer: overwriting it after feed changes
    nothing."""
    sr = 44100
    rng = np.random.default_rng(440)
    y = (rng.standard_normal((sr * 3, 2)) * 0.2).astype(np.float32)
    meter = LoudnessMeter(sr, 2)
    buf = np.empty((3001, 2), dtype=np.float32)
    for a in range(0, len(y), 3001):  # not a multiple of the filter's or the step's length
        block = buf[:len(y[a:a + 3001])]
        block[...] = y[a:a + 3001]
        meter.feed(block)
        buf[...] = rng.standard_normal(buf.shape)  # the next read
    got, want = meter.result(), measure(y, sr)
    np.testing.assert_allclose(got.mean_square, want.mean_square, rtol=1e-6)
    np.testing.assert_allclose(got.true_peak, want.true_peak, rtol=1e-6)


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


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000, 192000])
def test_block_filter_equals_sosfilt(sr):
    from scipy.signal import sosfilt

    from loopmind.library.analysis.loudness import BlockFilter, k_weighting_sos

    rng = np.random.default_rng(440)
    n = BlockFilter.ROW * BlockFilter.GROUP * 80  # more than one piece, fed in three calls
    y = (rng.standard_normal((2, n)) * 0.3).astype(np.float32)
    y[:, 1000:9000] = 0.99  # a DC step: the high-pass state swings far
    y[1, 50_000:120_000] = 0.0
    sos = k_weighting_sos(sr)
    want = sosfilt(sos, y.astype(np.float64), axis=-1)
    f = BlockFilter(sos, 2)
    q = BlockFilter.ROW * BlockFilter.GROUP
    cuts = [0, 3 * q, 67 * q, n]
    got = np.concatenate([f(y[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:])], axis=1)
    assert got.dtype == np.float32 and got.shape == y.shape
    np.testing.assert_allclose(got, want, atol=2e-3 if sr > 100_000 else 1e-3)
    ms_got, ms_want = np.mean(got.astype(np.float64) ** 2), np.mean(want ** 2)
    assert 10 * np.log10(ms_got / ms_want) == pytest.approx(0.0, abs=1e-3)


def _full_true_peak(y: np.ndarray, step: int) -> np.ndarray:
    """Per-step true peak by 4x oversampling every sample with the meter's own polyphase
    interpolator (the reference the candidate shortcut must reproduce)."""
    from loopmind.library.analysis.loudness import _TP_FILTER, _TP_HALF

    peaks = np.zeros(-(-y.shape[0] // step))
    for ch in range(y.shape[1]):
        x = np.concatenate([np.zeros(_TP_HALF), y[:, ch].astype(np.float64),
                            np.zeros(_TP_HALF)])
        win = np.lib.stride_tricks.sliding_window_view(x, 2 * _TP_HALF)[1:y.shape[0] + 1]
        up = np.abs(win @ _TP_FILTER.T).max(axis=1)  # all four phases of every sample
        up = np.maximum(up, np.abs(y[:, ch]))
        pad = np.zeros(len(peaks) * step)
        pad[:len(up)] = up
        peaks = np.maximum(peaks, pad.reshape(-1, step).max(axis=1))
    return peaks


def _inter_sample_fixtures(sr: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(440)
    t = np.arange(sr * 2) / sr
    out = {}
    # fs/4 sine at 45 degrees: every sample at -3 dB, the waveform at 0 dB
    out["fs4_sine"] = np.sin(2 * np.pi * sr / 4 * t + np.pi / 4)
    # a near-Nyquist tone whose samples beat slowly against its peaks
    out["near_nyquist"] = 0.8 * np.sin(2 * np.pi * (sr / 2 - 37.0) * t + 0.3)
    # a clipped, band-limited square: the classic inter-sample overshoot of mastered audio
    sq = np.sign(np.sin(2 * np.pi * 441.0 * t))
    spec = np.fft.rfft(sq)
    spec[int(len(spec) * 0.45):] = 0
    sq = np.fft.irfft(spec, len(sq))
    out["bandlimited_square"] = sq / np.abs(sq).max()
    # drum-like bursts and a stereo pair with the peak in the other channel
    y = np.zeros(sr * 2)
    for start in rng.integers(0, sr * 2 - 4000, size=12):
        y[start:start + 4000] += rng.standard_normal(4000) * np.exp(-np.arange(4000) / 600)
    out["bursts"] = y / np.abs(y).max()
    # single alternating-sign pairs: the largest overshoot a pair of samples can make
    z = np.zeros(sr * 2)
    for a in rng.integers(100, sr * 2 - 100, size=20):
        z[a], z[a + 1] = 0.5, -0.5
    out["alternating_pairs"] = z
    out["noise"] = np.clip(rng.standard_normal(sr * 2) * 0.3, -1, 1)
    return out


@pytest.mark.parametrize("sr", [44100, 48000])
def test_true_peak_shortcut_equals_full_oversampling(sr):
    """The candidate shortcut (only neighbourhoods of the largest samples are interpolated)
    gives the same per-step true peak as 4x-oversampling every sample, within 0.1 dB, also
    when the signal is fed in blocks."""
    fixtures = _inter_sample_fixtures(sr)
    for name, y in fixtures.items():
        y = y.astype(np.float32)[:, None]
        if name == "bursts":
            y = np.concatenate([y * 0.3, np.roll(y, 777, axis=0)], axis=1)  # stereo
        full = _full_true_peak(y, int(sr * 0.1))
        meter = LoudnessMeter(sr, y.shape[1])
        for a in range(0, len(y), 65536):
            meter.feed(y[a:a + 65536])
        got = meter.result().true_peak
        n = min(len(got), len(full))
        with np.errstate(divide="ignore"):
            diff = 20 * np.log10(np.maximum(got[:n], 1e-9) / np.maximum(full[:n], 1e-9))
        loud = full[:n] > 1e-4
        assert np.abs(diff[loud]).max() < 0.1, (name, np.abs(diff[loud]).max())
        if name == "fs4_sine":
            assert 20 * np.log10(got.max()) == pytest.approx(0.0, abs=0.1)


def _pairwise_true_peak(x: np.ndarray, step: int) -> np.ndarray:
    """The candidate rule pair by pair (the meter's first implementation): every pair with a
    sample at or above ``_TP_CANDIDATE_RATIO`` of its step's sample peak is interpolated."""
    from loopmind.library.analysis.loudness import _TP_CANDIDATE_RATIO, _TP_FILTER, _TP_HALF

    core = x[_TP_HALF:len(x) - _TP_HALF].astype(np.float64)
    n = len(core)
    ax = np.abs(core)
    steps = np.arange(n) // step
    sample_peak = np.zeros(-(-n // step))
    np.maximum.at(sample_peak, steps, ax)
    loud = (ax >= sample_peak[steps] * _TP_CANDIDATE_RATIO) & (ax > 0)
    start = loud.copy()
    start[:-1] |= loud[1:]
    cand = np.flatnonzero(start)
    win = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), 2 * _TP_HALF)
    tp = sample_peak.copy()
    if len(cand):
        vals = np.abs(win[cand + 1] @ _TP_FILTER[1:].T).max(axis=1)
        np.maximum.at(tp, steps[cand], vals)
    return tp


def _full_block_true_peak(x: np.ndarray, step: int) -> np.ndarray:
    """Every pair of a context-padded block interpolated (the reference of both rules)."""
    from loopmind.library.analysis.loudness import _TP_FILTER, _TP_HALF

    n = len(x) - 2 * _TP_HALF
    win = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), 2 * _TP_HALF)
    up = np.maximum(np.abs(win[1:n + 1] @ _TP_FILTER.T).max(axis=1),
                    np.abs(x[_TP_HALF:_TP_HALF + n]))
    tp = np.zeros(-(-n // step))
    np.maximum.at(tp, np.arange(n) // step, up)
    return tp


def _edge_blocks() -> dict[str, np.ndarray]:
    """Context-padded blocks (16 samples each side) whose candidates sit where the row-wise
    evaluation could lose them: row and step edges, the first and last sample, lengths that
    are not a multiple of the row, silence, clipping."""
    from loopmind.library.analysis.loudness import _TP_HALF, _TP_ROW

    rng = np.random.default_rng(440)
    R, h = _TP_ROW, _TP_HALF
    out = {}
    for n in (1, 2, R - 1, R, R + 1, 3 * R + 5, 100, 441, 1000):
        y = np.zeros(n + 2 * h, dtype=np.float32)
        y[h] = 0.9  # first sample of the core
        y[h + n - 1] = -0.8  # last sample of the core
        y[-h:] = 0.7  # loud right context: only read, never a candidate of its own
        out[f"edges_{n}"] = y
    for n in (1, 7, 441):
        out[f"silence_{n}"] = np.zeros(n + 2 * h, dtype=np.float32)
    y = np.zeros(1000 + 2 * h, dtype=np.float32)
    for c in (R - 1, 2 * R, 5 * R - 1, 99, 100, 199, 200):  # row and step (100) edges
        y[h + c], y[h + c + 1] = 0.6, -0.6  # alternating pair: a large inter-sample peak
    out["pairs_on_edges"] = y
    y = np.zeros(1000 + 2 * h, dtype=np.float32)
    for c in (3 * R, 7 * R):
        # the step's true peak lies in the pair that ends on a row's first sample, and only
        # that sample is a candidate: the row before must be interpolated for it
        y[h + c - 2:h + c + 2] = (-0.49, 0.49, 1.0, -0.2)
    out["peak_in_pair_into_row"] = y
    noise = rng.standard_normal(1000 + 2 * h).astype(np.float32)
    out["noise"] = noise * 0.3
    out["clipped"] = np.clip(noise * 2.0, -1.0, 1.0)
    t = np.arange(1000 + 2 * h)
    out["fs4_sine"] = np.sin(np.pi / 2 * t + np.pi / 4).astype(np.float32)
    quiet = noise * 1e-3
    quiet[h + 350] = 0.5  # one loud sample in a quiet step
    out["one_loud_sample"] = quiet
    return out


@pytest.mark.parametrize("name", list(_edge_blocks()))
def test_row_true_peak_covers_every_candidate_pair(name):
    """Rows of pairs are interpolated whole, so every step reads at least what the pair rule
    reads (and never more than full oversampling), at row and step edges too."""
    from loopmind.library.analysis.loudness import _block_true_peak

    x = _edge_blocks()[name]
    step = 100
    # mono, and stereo with a second channel whose candidates sit elsewhere
    for x in (x, np.stack([x, -0.7 * x[::-1]]), np.stack([np.zeros_like(x), x])):
        channels = np.atleast_2d(x)
        got = _block_true_peak(x, step)[0].astype(np.float64)
        pairwise = np.max([_pairwise_true_peak(c, step) for c in channels], axis=0)
        full = np.max([_full_block_true_peak(c, step) for c in channels], axis=0)
        assert got.shape == pairwise.shape == full.shape
        np.testing.assert_array_less(pairwise - 1e-6 * (1 + pairwise), got)
        np.testing.assert_array_less(got, full + 1e-6 * (1 + full))
        if name.startswith("silence"):
            assert not got.any()


@pytest.mark.parametrize("n", [1, 2, 17, 4409, 4410, 4411, 65537])
def test_true_peak_of_short_and_odd_lengths_equals_full_oversampling(n):
    """Files of one sample, shorter than a row or a step, and just past a feed block: the
    whole-file true peak is full 4x oversampling's to 0.005 dB (the shortcut's promise)."""
    sr = 44100
    rng = np.random.default_rng(440)
    y = np.clip(rng.standard_normal((n, 2)) * 0.5, -1, 1).astype(np.float32)
    y[n // 2] = [1.0, -1.0]  # clipped: full scale on both channels
    meter = LoudnessMeter(sr, 2)
    for a in range(0, n, 65536):
        meter.feed(y[a:a + 65536])
    got = meter.result().true_peak
    full = _full_true_peak(y, int(sr * 0.1))
    assert len(got) == len(full)
    assert np.abs(20 * np.log10(got / full)).max() < 0.005


@pytest.mark.parametrize("sr", [44100, 48000])
def test_running_peak_meter_gives_the_whole_true_peak(sr):
    """A meter that interpolates only near the file's running peak finds the same whole-file
    true peak as full oversampling, fed in blocks, for every fixture (also stereo, and with
    the loudest part last or first)."""
    for name, y in _inter_sample_fixtures(sr).items():
        for order in (1, -1):
            y2 = np.concatenate([0.2 * y, y])[::order].astype(np.float32)[:, None]
            if name == "bursts":
                y2 = np.concatenate([y2 * 0.3, np.roll(y2, 777, axis=0)], axis=1)
            full = _full_true_peak(y2, int(sr * 0.1)).max()
            meter = LoudnessMeter(sr, y2.shape[1], running_peak=True)
            for a in range(0, len(y2), 65536):
                meter.feed(y2[a:a + 65536])
            track = meter.result()
            assert track.true_peak_exact()
            assert 20 * np.log10(track.true_peak.max() / full) == pytest.approx(0.0, abs=0.1), \
                (name, order)


def test_running_peak_flags_a_quiet_span_after_a_loud_one():
    """A span quieter than an earlier peak is not claimed exact; one that holds its own
    running peak is, and then its value is full oversampling's."""
    sr = 48000
    t = np.arange(sr * 2) / sr
    sine = np.sin(2 * np.pi * sr / 4 * t + np.pi / 4)  # samples at -3 dB of the waveform
    y = np.concatenate([0.1 * sine, 0.9 * sine, 0.1 * sine]).astype(np.float32)[:, None]
    meter = LoudnessMeter(sr, 1, running_peak=True)
    meter.feed(y)
    track = meter.result()
    full = _full_true_peak(y, int(sr * 0.1))
    for a, b, exact in ((0.0, 2.0, True), (0.0, 4.0, True), (2.0, 4.0, True),
                        (4.0, 6.0, False), (0.0, None, True)):
        assert track.true_peak_exact(a, b) is exact, (a, b)
        if exact:
            want = 20 * np.log10(full[int(a * 10):None if b is None else int(b * 10)].max())
            assert track.true_peak_db(a, b) == pytest.approx(want, abs=0.05)
    # the quiet tail's value is a lower bound: its samples, not its waveform's peak
    assert track.true_peak_db(4.0, 6.0) < 20 * np.log10(0.1) - 2.0

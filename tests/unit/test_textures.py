"""Textures from a user's sound: exact length, determinism, no clipping, no copied bars, and
what each process does (risers rise, swells swell, grains follow the chord)."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_audio import SR, chord_loop, tone

from loopmind.generate.interpret import textures
from loopmind.generate.interpret.textures import TEXTURE_KINDS, render_texture

BPM = 120.0
BAR = int(round(240.0 / BPM * SR))  # 2 s


def max_ncc(bar: np.ndarray, source: np.ndarray) -> float:
    """The highest normalised cross-correlation of ``bar`` with any same-length window of
    ``source`` (any lag; mono). A source shorter than the bar is slid across the bar."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (bar, source))
    if len(b) < len(a):
        a, b = b, a
    n = len(a)
    num = np.fft.irfft(np.fft.rfft(b, len(b) + n) * np.conj(np.fft.rfft(a, len(b) + n)),
                       len(b) + n)[:len(b) - n + 1]
    c = np.concatenate([[0.0], np.cumsum(b * b)])
    energy = c[n:] - c[:-n]
    den = np.sqrt(np.maximum(energy, 1e-12) * max(float(a @ a), 1e-12))
    ok = energy > 1e-6 * energy.max()
    return float(np.max(np.abs(num[ok] / den[ok]))) if ok.any() else 0.0


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    """Two bars of chords at 120 BPM, stereo (2, n)."""
    y = chord_loop("A minor", BPM, 2)
    y = y.T if y.ndim == 2 else np.stack([y, y])
    return np.ascontiguousarray(y, dtype=np.float32)


def test_ncc_helper_sees_a_copy(source):
    mono = source.mean(axis=0)
    assert max_ncc(mono[BAR // 3: BAR // 3 + BAR // 2], mono) > 0.999
    assert max_ncc(np.random.default_rng(1).standard_normal(BAR // 2), mono) < 0.2


@pytest.mark.parametrize("kind", TEXTURE_KINDS)
def test_texture_is_exact_deterministic_unclipped_and_new(kind, source):
    n = 4 * BAR + 7
    a = render_texture(source, sr=SR, n_samples=n, spec={"kind": kind, "seed": 5})
    b = render_texture(source, sr=SR, n_samples=n, spec={"kind": kind, "seed": 5})
    c = render_texture(source, sr=SR, n_samples=n, spec={"kind": kind, "seed": 6})
    assert a.shape == (2, n) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.isfinite(a).all()
    assert np.max(np.abs(a)) <= textures.PEAK + 1e-6
    assert np.sqrt(np.mean(a ** 2)) > 0.01  # not silence
    mono_src = source.mean(axis=0)
    src_bars = [mono_src[i * BAR:(i + 1) * BAR] for i in range(2)]
    mono = a.mean(axis=0)
    for i in range(4):
        bar = mono[i * BAR:(i + 1) * BAR]
        if np.sqrt(np.mean(bar ** 2)) < 1e-3:
            continue  # the quiet start of a riser or swell copies nothing
        for sb in src_bars:
            assert max_ncc(bar, sb) < 0.9, (kind, i)


def test_riser_rises_in_level_and_brightness(source):
    n = 4 * BAR
    y = render_texture(source, sr=SR, n_samples=n, spec={"kind": "riser", "seed": 1}).mean(0)

    def centroid(x):
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        f = np.fft.rfftfreq(len(x), 1 / SR)
        return float((spec * f).sum() / spec.sum())

    q = n // 4
    first, last = y[q // 2:q], y[-q:-q // 2]
    assert 20 * np.log10(np.std(last) / np.std(first)) > 10
    assert centroid(last) > 1.5 * centroid(first)
    assert np.argmax(np.abs(y)) > 0.75 * n  # loudest at the end, into the drop


def test_swell_grows_into_the_bar_line(source):
    y = render_texture(source, sr=SR, n_samples=BAR, spec={"kind": "swell", "seed": 2})
    env = [np.sqrt(np.mean(y[:, i * BAR // 8:(i + 1) * BAR // 8] ** 2)) for i in range(8)]
    assert env[-1] > 4 * env[0]
    assert np.argmax(env) >= 6


def test_grains_take_the_pitches_asked_for():
    y = np.stack([tone(220.0, 2.0)] * 2)
    out = render_texture(y, sr=SR, n_samples=2 * SR,
                         spec={"kind": "granular", "seed": 3, "pitches": [12.0]})
    spec = np.abs(np.fft.rfft(out.mean(axis=0)[SR // 2: SR // 2 + SR] * np.hanning(SR)))
    assert abs(np.argmax(spec) - 440.0) < 3.0  # 1 Hz bins


def test_short_and_odd_sources_still_give_exact_audio():
    one = np.zeros((2, 1), dtype=np.float32)
    one[:, 0] = 0.5
    for kind in TEXTURE_KINDS:
        y = render_texture(one, sr=SR, n_samples=SR // 3, spec={"kind": kind, "seed": 0})
        assert y.shape == (2, SR // 3) and np.isfinite(y).all()
    with pytest.raises(ValueError):
        render_texture(one, sr=SR, n_samples=100, spec={"kind": "warp"})


# -- the optional neural codec ---------------------------------------------------------------

def test_codec_without_checkpoint_is_a_one_line_error(tmp_path, source):
    from loopmind.errors import LoopMindError
    from loopmind.generate.interpret.codec import load_codec

    with pytest.raises(LoopMindError) as err:
        load_codec(tmp_path / "nope.th")
    assert "not found" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(LoopMindError):
        render_texture(source, sr=SR, n_samples=100, spec={"kind": "codec", "seed": 1})


def test_codec_clip_that_cannot_load_is_skipped_with_a_note(tmp_path):
    from fixtures_audio import write_audio

    from loopmind.generate.render import StretchCache, render_tracks
    from loopmind.generate.song import Clip, Section, Song, Track

    path = write_audio(tmp_path / "pad.wav", tone(220.0, 1.0))
    clip = Clip(start_bar=0, bars=1, source_path=str(path), source_start_s=0.0,
                source_end_s=1.0, generated=True,
                texture={"kind": "codec", "seed": 1, "checkpoint": str(tmp_path / "x.th")})
    song = Song(bpm=120.0, key=None, sections=[Section("intro", 0, 1)],
                tracks=[Track("texture", "pad", [clip])])
    r = render_tracks(song, cache=StretchCache(tmp_path / "cache"))
    assert any("checkpoint not found" in n for n in r.notes)
    assert np.abs(r.tracks["texture"]).max() == 0.0


def test_codec_texture_with_real_weights(tmp_path, source):
    """Runs only where the encodec package and a local checkpoint are installed."""
    import os

    pytest.importorskip("encodec")
    ckpt = os.environ.get("ENCODEC_CHECKPOINT")
    if not ckpt:
        pytest.skip("no local EnCodec checkpoint (ENCODEC_CHECKPOINT)")
    spec = {"kind": "codec", "seed": 4, "checkpoint": ckpt}
    a = render_texture(source, sr=SR, n_samples=2 * BAR, spec=spec)
    b = render_texture(source, sr=SR, n_samples=2 * BAR, spec=spec)
    assert a.shape == (2, 2 * BAR) and np.array_equal(a, b)
    assert np.max(np.abs(a)) <= textures.PEAK + 1e-6
    for i in range(2):
        assert max_ncc(a.mean(0)[i * BAR:(i + 1) * BAR], source.mean(0)[:BAR]) < 0.9

"""The embedders: the default feature vector's shape, invariances and neighbours, lookup errors,
the missing CLAP extra, and that importing the module stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures_audio import drum_hit, tone

from loopmind import config
from loopmind.errors import LoopMindError
from loopmind.index import embed as embed_mod
from loopmind.index.embed import (ClapEmbedder, Embedder, FeatureEmbedder, get_embedder,
                                  load_constants)
from loopmind.library.analysis import features as features_mod
from loopmind.library.analysis import role as role_mod
from loopmind.library.analysis.features import Spectrogram

SR = 22050


def _resample(y: np.ndarray, up: int, down: int) -> np.ndarray:
    from scipy.signal import resample_poly

    return resample_poly(y.astype(np.float64), up, down).astype(np.float32)


def kick(sr: int = SR) -> np.ndarray:
    return drum_hit("kick_punchy", sr=sr)


def pad(sr: int = SR) -> np.ndarray:
    """A sustained A-minor chord of harmonic tones with a slow fade-in, 3 s."""
    t = np.arange(int(3.0 * sr)) / sr
    y = np.zeros_like(t)
    for f0 in (220.0, 261.6, 329.6):
        for k in range(1, 7):
            y += np.sin(2 * np.pi * f0 * k * t + k) / k
    env = np.minimum(t / 0.4, 1.0) * np.minimum((3.0 - t) / 0.5, 1.0)
    return (0.15 * y * env).astype(np.float32)


@pytest.fixture(scope="module")
def embedder() -> FeatureEmbedder:
    return FeatureEmbedder()


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_vector_shape_dtype_norm(embedder):
    assert isinstance(embedder, Embedder)
    assert embedder.dim <= 256
    for y in (kick(), pad(), tone(440.0, 0.05, SR), np.zeros(SR // 2, np.float32),
              np.zeros(0, np.float32)):
        v = embedder.embed(y, sr=SR)
        assert v.shape == (embedder.dim,) and v.dtype == np.float32
        assert np.isfinite(v).all()
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


def test_shared_spectrogram_gives_the_same_vector_and_is_deterministic(embedder):
    y = kick()
    a = embedder.embed(y, sr=SR)
    b = embedder.embed(y, sr=SR, spec=Spectrogram(y, SR))
    c = FeatureEmbedder().embed(y.copy(), sr=SR)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_gain_invariant(embedder):
    for y in (kick(), pad(), drum_hit("hihat_open", sr=SR)):
        a = embedder.embed(y, sr=SR)
        b = embedder.embed(y * np.float32(10 ** (-6 / 20)), sr=SR)
        assert cos(a, b) > 0.999


def test_resampled_and_trimmed_copy_is_nearer_than_another_sound(embedder):
    y = drum_hit("snare_tight", sr=SR)
    v = embedder.embed(y, sr=SR)
    n50 = int(0.05 * SR)
    copies = {
        "44.1 kHz": embedder.embed(_resample(y, 2, 1), sr=2 * SR),
        "round trip via 48 kHz": embedder.embed(_resample(_resample(y, 320, 147), 147, 320),
                                                sr=SR),
        "tail cut by 50 ms": embedder.embed(y[:-n50], sr=SR),
        "50 ms of silence before": embedder.embed(np.r_[np.zeros(n50, np.float32), y], sr=SR),
    }
    others = [embedder.embed(s, sr=SR) for s in (drum_hit("snare_fat", sr=SR), kick(),
                                                drum_hit("hihat_closed", sr=SR), pad())]
    nearest_other = max(cos(v, o) for o in others)
    for name, c in copies.items():
        assert cos(v, c) > 0.97, name
        assert cos(v, c) > nearest_other, name


def _reference_features(y: np.ndarray, *, grid_start: int):
    """``FeatureEmbedder.features`` from scratch: a fresh STFT of ``y[grid_start:]`` for the
    spectral features, the time-domain ones from the first sample within 60 dB of the peak."""
    start = embed_mod._sound_start(y)
    ys = np.array(y[grid_start:], dtype=np.float32)
    spec = Spectrogram(ys, SR)
    f_role = role_mod.role_features(ys, sr=SR, spec=spec)
    f_role[:role_mod.N_ENVELOPE] = role_mod.envelope_features(y[start:], sr=SR, spec=spec)
    return f_role, embed_mod.extra_features(np.array(y[start:]), sr=SR, spec=spec)


def _no_new_stft(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a new STFT was taken")

    monkeypatch.setattr(features_mod, "frame_signal", refuse)


@pytest.mark.parametrize("lead", [1024, 1024 + 40, 5 * 512 + 63])
def test_whole_hops_of_leading_silence_are_a_column_slice_of_the_shared_stft(
        embedder, monkeypatch, lead):
    y = np.r_[np.zeros(lead, np.float32), drum_hit("snare_tight", sr=SR)]
    spec = Spectrogram(y, SR)
    spec.magnitude  # noqa: B018 - the analysis stage's STFT
    _no_new_stft(monkeypatch)
    f_role, f_extra = embedder.features(y, sr=SR, spec=spec)
    monkeypatch.undo()
    r_role, r_extra = _reference_features(y, grid_start=lead // 512 * 512)
    np.testing.assert_allclose(f_role, r_role, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f_extra, r_extra, rtol=1e-4, atol=1e-4)


def test_a_lead_under_an_eighth_of_a_hop_keeps_the_analysis_role_features(embedder,
                                                                          monkeypatch):
    y = np.r_[np.zeros(40, np.float32), kick()]
    spec = Spectrogram(y, SR)
    role_mod.role_features(y, sr=SR, spec=spec)  # what the role classifier computed
    _no_new_stft(monkeypatch)
    monkeypatch.setattr(role_mod, "_spectral_features", lambda spec: 1 / 0)
    f_role, f_extra = embedder.features(y, sr=SR, spec=spec)
    monkeypatch.undo()
    r_role, r_extra = _reference_features(y, grid_start=0)
    np.testing.assert_allclose(f_role, r_role, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f_extra, r_extra, rtol=1e-5, atol=1e-5)
    # against the features of the exactly trimmed sound (its own STFT grid): 40 samples of
    # grid shift change the vector by next to nothing
    exact = embedder.from_features(*_reference_features(y, grid_start=40))
    assert cos(embedder.from_features(f_role, f_extra), exact) > 0.999


def test_a_lead_of_other_lengths_gets_its_own_stft(embedder):
    for lead in (64, 300, 1102, 2 * 512 + 64):
        y = np.r_[np.zeros(lead, np.float32), kick()]
        f_role, f_extra = embedder.features(y, sr=SR, spec=Spectrogram(y, SR))
        r_role, r_extra = _reference_features(y, grid_start=lead)
        np.testing.assert_allclose(f_role, r_role, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(f_extra, r_extra, rtol=1e-5, atol=1e-5)


def test_silence_before_a_sound_leaves_its_vector_nearly_unchanged(embedder):
    sounds = [kick(), drum_hit("snare_fat", sr=SR), drum_hit("hihat_open", sr=SR),
              drum_hit("crash", sr=SR), drum_hit("tom_mid", sr=SR), pad(),
              tone(440.0, 0.5, SR)]
    for i, y in enumerate(sounds):
        v = embedder.embed(y, sr=SR)
        for lead in (int(0.05 * SR), 300, 511, 512, 4000):
            c = cos(v, embedder.embed(np.r_[np.zeros(lead, np.float32), y], sr=SR))
            assert c > 0.995, (i, lead, c)


def test_skip_frames_is_the_stft_of_the_shorter_signal():
    y = np.r_[np.zeros(3 * 512, np.float32), kick()]
    spec = Spectrogram(y, SR)
    spec.log_mel  # noqa: B018
    assert spec.skip_frames(0) is spec
    tail = spec.skip_frames(3)
    fresh = Spectrogram(y[3 * 512:], SR)
    assert tail.magnitude.shape == fresh.magnitude.shape
    np.testing.assert_allclose(tail.magnitude, fresh.magnitude, atol=1e-4)
    np.testing.assert_allclose(tail.log_mel, fresh.log_mel, atol=1e-3)
    np.testing.assert_allclose(tail.onset_envelope, fresh.onset_envelope, atol=1e-3)
    assert spec.magnitude.shape[1] == tail.magnitude.shape[1] + 3  # the original unchanged
    with pytest.raises(ValueError):
        spec.skip_frames(len(y) // 512 + 1)


def test_kicks_are_nearer_each_other_than_a_kick_and_a_pad(embedder):
    k1, k2 = embedder.embed(kick(), sr=SR), embedder.embed(drum_hit("kick_dark", sr=SR), sr=SR)
    p = embedder.embed(pad(), sr=SR)
    assert cos(k1, k2) > cos(k1, p) + 0.3
    assert cos(k2, k1) > cos(k2, p) + 0.3


def test_features_embedder_has_no_text(embedder):
    assert embedder.supports_text is False
    with pytest.raises(LoopMindError, match="text"):
        embedder.embed_text("punchy kick")


def test_version_names_the_constants_and_the_role_model(embedder, tmp_path):
    assert embedder.version.startswith("features-")
    assert embedder.version == FeatureEmbedder().version
    assert FeatureEmbedder(role_model=None).version != embedder.version
    assert FeatureEmbedder(role_weight=2.0).version != embedder.version
    missing = FeatureEmbedder(constants_path=tmp_path / "nope.safetensors")
    with pytest.raises(LoopMindError, match="train_embed"):
        missing.embed(kick(), sr=SR)


def test_constants_file_matches_the_features():
    mean, scale = load_constants()
    assert mean.shape == scale.shape == (FeatureEmbedder().n_timbre,)
    assert (scale > 0).all()


def test_get_embedder_default_and_unknown(monkeypatch):
    e = get_embedder()
    assert e.name == "features" and e is get_embedder("features") is get_embedder(" Features ")
    with pytest.raises(LoopMindError, match="unknown embedder 'wav2vec'.*features.*clap"):
        get_embedder("wav2vec")
    monkeypatch.setenv("LOOPMIND_EMBEDDER", "nonsense")
    config.set_settings(None)
    with pytest.raises(LoopMindError, match="unknown embedder"):
        get_embedder()


def test_clap_without_the_extra_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(embed_mod, "_clap_installed", lambda: False)
    ckpt = tmp_path / "630k-audioset-best.pt"
    ckpt.write_bytes(b"not really a checkpoint")
    monkeypatch.setenv("LOOPMIND_CLAP_CHECKPOINT", str(ckpt))
    config.set_settings(None)
    with pytest.raises(LoopMindError, match="pip install laion-clap") as err:
        get_embedder("clap")
    assert "\n" not in str(err.value)


def test_clap_without_a_checkpoint_says_what_to_set(monkeypatch, tmp_path):
    monkeypatch.setattr(embed_mod, "_clap_installed", lambda: True)
    monkeypatch.delenv("LOOPMIND_CLAP_CHECKPOINT", raising=False)
    config.set_settings(None)
    with pytest.raises(LoopMindError, match="LOOPMIND_CLAP_CHECKPOINT"):
        get_embedder("clap")
    monkeypatch.setenv("LOOPMIND_CLAP_CHECKPOINT", str(tmp_path / "missing.pt"))
    config.set_settings(None)
    with pytest.raises(LoopMindError, match="not a file"):
        get_embedder("clap")


def test_clap_with_extra_and_checkpoint_is_built_lazily(monkeypatch, tmp_path):
    monkeypatch.setattr(embed_mod, "_clap_installed", lambda: True)
    ckpt = tmp_path / "music.pt"
    ckpt.write_bytes(b"x")
    monkeypatch.setenv("LOOPMIND_CLAP_CHECKPOINT", str(ckpt))
    monkeypatch.setenv("LOOPMIND_CLAP_AMODEL", "HTSAT-base")
    config.set_settings(None)
    e = ClapEmbedder.from_settings()  # nothing is loaded until the first embed
    assert (e.name, e.dim, e.supports_text, e.amodel) == ("clap", 512, True, "HTSAT-base")
    assert e.version.startswith("clap-HTSAT-base-")
    assert isinstance(e, Embedder)


@pytest.mark.skipif(embed_mod._clap_installed(), reason="laion-clap is installed here")
def test_clap_is_missing_here():
    with pytest.raises(LoopMindError, match="laion-clap"):
        get_embedder("clap")


def test_import_is_light():
    code = ("import sys, loopmind.index.embed as e; e.get_embedder('features'); "
            "heavy = [m for m in ('torch', 'faiss', 'laion_clap', 'librosa', 'sklearn', "
            "'safetensors') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == ""

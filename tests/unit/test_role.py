"""Role classification on synthetic sounds, word fusion, and the model-file fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from loopmind.library.analysis import role as role_mod
from loopmind.library.analysis.features import Spectrogram
from loopmind.library.analysis.role import (FEATURE_NAMES, N_FEATURES, ROLES, RoleEstimate,
                                            classify_role, role_features)

SR = 22050
DRUMS = {"kick", "snare", "hihat", "cymbal", "tom", "clap", "perc"}
TONAL = {"bass", "keys", "pad", "lead", "strings", "guitar", "vocal"}


def _t(duration_s: float) -> np.ndarray:
    return np.arange(int(duration_s * SR)) / SR


def kick() -> np.ndarray:
    """A sine sweep 250 → 50 Hz with a 150 ms decay."""
    t = _t(0.6)
    freq = 50 + 200 * np.exp(-t / 0.03)
    return (0.9 * np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-t / 0.15)).astype(np.float32)


def snare() -> np.ndarray:
    """A noise burst (wires) plus a 190 Hz body."""
    rng = np.random.default_rng(440)
    t = _t(0.4)
    noise = rng.standard_normal(len(t)) * np.exp(-t / 0.06)
    body = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.04)
    return (0.5 * (noise + body) / 2).astype(np.float32)


def hihat() -> np.ndarray:
    """High-passed (> 7 kHz) noise, 50 ms decay."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(440)
    t = _t(0.25)
    y = sosfilt(butter(4, 7000, "hp", fs=SR, output="sos"), rng.standard_normal(len(t)))
    return (0.5 * y * np.exp(-t / 0.05)).astype(np.float32)


def pad() -> np.ndarray:
    """A sustained A-minor chord of harmonic tones with a 400 ms fade-in."""
    t = _t(4.0)
    y = np.zeros_like(t)
    for f0 in (220.0, 261.6, 329.6):
        for k in range(1, 7):
            y += np.sin(2 * np.pi * f0 * k * t + k) / k
    return (0.15 * y * np.minimum(t / 0.4, 1.0) * np.minimum((4.0 - t) / 0.5, 1.0)).astype(
        np.float32)


def saw_bass() -> np.ndarray:
    """A 55 Hz saw, low-passed, 0.8 s with a short release."""
    from scipy.signal import butter, sosfilt

    t = _t(0.8)
    saw = 2 * ((55 * t) % 1.0) - 1
    y = sosfilt(butter(2, 800, fs=SR, output="sos"), saw)
    return (0.6 * y * np.minimum((0.8 - t) / 0.05, 1.0)).astype(np.float32)


def test_features_shape_finite_and_gain_independent():
    y = snare()
    f = role_features(y, sr=SR, spec=Spectrogram(y, SR))
    assert f.shape == (N_FEATURES,) == (len(FEATURE_NAMES),)
    assert np.isfinite(f).all()
    g = role_features(y * 0.05, sr=SR)
    np.testing.assert_allclose(f, g, atol=0.02)


@pytest.mark.parametrize("y", [np.zeros(SR, np.float32), np.zeros(0, np.float32),
                               np.ones(10, np.float32) * 0.5, np.full(SR, np.nan, np.float32)])
def test_degenerate_input_does_not_crash(y):
    f = role_features(y, sr=SR)
    assert f.shape == (N_FEATURES,) and np.isfinite(f).all()
    est = classify_role(y, sr=SR)
    assert est.role in ROLES and 0.0 <= est.confidence <= 1.0


def test_shipped_model_roles_in_broad_terms():
    if role_mod.get_model() is None:
        pytest.skip("models/role.safetensors not present")
    k = classify_role(kick(), sr=SR)
    assert k.role == "kick", k.scores
    h = classify_role(hihat(), sr=SR)
    assert h.role in {"hihat", "cymbal", "perc"}, h.scores
    assert classify_role(snare(), sr=SR).role in DRUMS
    b = classify_role(saw_bass(), sr=SR).scores
    p = classify_role(pad(), sr=SR).scores
    # bass vs pad in broad terms: the saw bass is more bass-like than the pad, and vice versa
    assert b["bass"] > p["bass"]
    assert p["pad"] + p["keys"] + p["strings"] > b["pad"] + b["keys"] + b["strings"]
    assert sum(p[r] for r in TONAL) > 0.5


def test_scores_are_a_distribution():
    est = classify_role(snare(), sr=SR)
    assert isinstance(est, RoleEstimate)
    assert set(est.scores) == set(ROLES)
    assert sum(est.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert est.confidence == pytest.approx(max(est.scores.values()))


def test_words_agreeing_raise_confidence_and_strong_words_win():
    y = kick()
    audio = classify_role(y, sr=SR)
    agree = classify_role(y, sr=SR, name_role=audio.role, name_confidence=0.8)
    assert agree.role == audio.role and agree.confidence >= audio.confidence
    # a pack folder saying "perc" with confidence outweighs a moderately sure audio opinion
    p_audio = np.full(len(ROLES), 0.02)
    p_audio[ROLES.index("tom")] = 1 - 0.02 * (len(ROLES) - 1)
    fused = role_mod._combine(p_audio, kind=None, name_role="perc", name_confidence=0.9)
    assert ROLES[int(np.argmax(fused))] == "perc"
    # ... but weak words do not override a confident audio estimate
    p_audio = np.full(len(ROLES), 0.001)
    p_audio[ROLES.index("kick")] = 1 - 0.001 * (len(ROLES) - 1)
    fused = role_mod._combine(p_audio, kind=None, name_role="pad", name_confidence=0.3)
    assert ROLES[int(np.argmax(fused))] == "kick"


def test_kind_prior():
    p = np.full(len(ROLES), 1.0 / len(ROLES))
    p[ROLES.index("drumloop")] = 0.3
    p /= p.sum()
    one = role_mod._combine(p, kind="oneshot", name_role=None, name_confidence=0.0)
    assert ROLES[int(np.argmax(one))] != "drumloop"
    loop = role_mod._combine(p, kind="loop", name_role=None, name_confidence=0.0)
    assert ROLES[int(np.argmax(loop))] == "drumloop"


@pytest.fixture
def model_at(monkeypatch, tmp_path):
    """Point the module at a model file in tmp_path (a fresh cache entry per path)."""
    def use(content: bytes | None):
        path = tmp_path / "role.safetensors"
        if content is not None:
            path.write_bytes(content)
        monkeypatch.setattr(role_mod, "MODEL_PATH", path)
        role_mod._MODELS.pop(path, None)
        return path
    yield use


@pytest.mark.parametrize("content", [None, b"", b"\x00" * 64, b"not a safetensors file"])
def test_missing_or_corrupt_model_falls_back_to_rules(model_at, caplog, content):
    model_at(content)
    with caplog.at_level(logging.WARNING, logger="loopmind.library.analysis.role"):
        est = classify_role(kick(), sr=SR)
    assert est.role in ROLES and 0 < est.confidence <= 1
    assert "using simple rules" in caplog.text
    # the rules still get the obvious cases
    assert est.role == "kick"
    assert classify_role(hihat(), sr=SR).role in {"hihat", "cymbal"}
    assert classify_role(saw_bass(), sr=SR).role in {"bass", "kick", "tom"}


def test_wrong_shape_model_falls_back(model_at, caplog):
    from safetensors.numpy import save_file

    import json

    path = model_at(None)
    meta = {"roles": json.dumps(list(ROLES)), "features": json.dumps(list(FEATURE_NAMES))}
    save_file({"mean": np.zeros(3, np.float32), "scale": np.ones(3, np.float32)}, str(path),
              metadata=meta)
    with caplog.at_level(logging.WARNING, logger="loopmind.library.analysis.role"):
        est = classify_role(snare(), sr=SR)
    assert est.role in ROLES
    assert "unusable" in caplog.text


def test_model_for_other_features_falls_back(model_at, caplog):
    from safetensors.numpy import save_file

    import json

    path = model_at(None)
    F, R = N_FEATURES, len(ROLES)
    tensors = {"mean": np.zeros(F, np.float32), "scale": np.ones(F, np.float32),
               "lr.weight": np.zeros((R, F), np.float32), "lr.bias": np.zeros(R, np.float32)}
    meta = {"roles": json.dumps(list(ROLES)), "features": json.dumps(["something", "else"])}
    save_file(tensors, str(path), metadata=meta)
    with caplog.at_level(logging.WARNING, logger="loopmind.library.analysis.role"):
        assert role_mod.get_model() is None
    assert "different feature vector" in caplog.text


def test_model_roundtrip(model_at):
    """A well-formed file loads, and the numpy inference is a proper distribution."""
    from safetensors.numpy import save_file

    import json

    path = model_at(None)
    rng = np.random.default_rng(440)
    F, R, H = N_FEATURES, len(ROLES), 8
    tensors = {"mean": np.zeros(F, np.float32), "scale": np.ones(F, np.float32),
               "lr.weight": rng.standard_normal((R, F)).astype(np.float32) * 0.1,
               "lr.bias": np.zeros(R, np.float32),
               "mlp0.w1": rng.standard_normal((F, H)).astype(np.float32) * 0.1,
               "mlp0.b1": np.zeros(H, np.float32),
               "mlp0.w2": rng.standard_normal((H, R)).astype(np.float32) * 0.1,
               "mlp0.b2": np.zeros(R, np.float32)}
    meta = {"roles": json.dumps(list(ROLES)), "features": json.dumps(list(FEATURE_NAMES))}
    save_file(tensors, str(path), metadata=meta)
    model = role_mod.get_model()
    assert model is not None and len(model.heads) == 2
    p = model.predict_proba(np.zeros((3, F), np.float32))
    assert p.shape == (3, R)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def _tiny_model_tensors(temperature: float | None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(440)
    F, R = N_FEATURES, len(ROLES)
    t = {"mean": np.zeros(F, np.float32), "scale": np.ones(F, np.float32),
         "lr.weight": rng.standard_normal((R, F)).astype(np.float32) * 0.2,
         "lr.bias": np.zeros(R, np.float32)}
    if temperature is not None:
        t["temperature"] = np.array([temperature], np.float32)
    return t


def test_temperature_softens_without_changing_the_ranking():
    X = np.random.default_rng(440).standard_normal((5, N_FEATURES)).astype(np.float32)
    raw = role_mod.RoleModel(_tiny_model_tensors(None)).predict_proba(X)
    warm = role_mod.RoleModel(_tiny_model_tensors(2.0))
    p = warm.predict_proba(X)
    np.testing.assert_allclose(warm.predict_proba(X, calibrated=False), raw, rtol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert (p.argmax(axis=1) == raw.argmax(axis=1)).all()
    assert (p.max(axis=1) < raw.max(axis=1)).all()
    # p ∝ raw ** (1 / T)
    q = np.sqrt(raw)
    np.testing.assert_allclose(p, q / q.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("bad", [0.0, -1.0, 1e6])
def test_implausible_temperature_is_rejected(bad):
    with pytest.raises(ValueError):
        role_mod.RoleModel(_tiny_model_tensors(bad))


def test_shipped_model_is_calibrated():
    model = role_mod.get_model()
    if model is None:
        pytest.skip("models/role.safetensors not present")
    # fitted on out-of-pack predictions, the model is less sure than in sample
    assert 1.0 < model.temperature < 5.0


def test_features_are_computed_once_per_spectrogram_of_the_same_signal(monkeypatch):
    """The pipeline asks for a segment's features twice (role, then embedding): the second
    call reuses the first's, and a different signal never gets them."""
    rng = np.random.default_rng(3)
    y = (rng.standard_normal(22050) * np.exp(-np.arange(22050) / 3000.0)).astype(np.float32)
    spec = Spectrogram(y, 22050)
    calls = []
    real = role_mod._spectral_features
    monkeypatch.setattr(role_mod, "_spectral_features", lambda s: calls.append(1) or real(s))
    first = role_features(y, sr=22050, spec=spec)
    again = role_features(y, sr=22050, spec=spec)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, again)
    again[:] = 0  # the caller's copy; the kept one is untouched
    np.testing.assert_array_equal(role_features(y, sr=22050, spec=spec), first)
    # an equal copy, another signal, another rate: computed, not taken from the spectrogram
    np.testing.assert_array_equal(role_features(y.copy(), sr=22050, spec=spec), first)
    assert len(calls) == 2
    other = np.roll(y, 100)
    role_features(other, sr=22050, spec=spec)
    role_features(y, sr=44100, spec=spec)
    assert len(calls) == 4
    # the result is what a fresh spectrogram gives
    np.testing.assert_array_equal(first, role_features(y, sr=22050))


# -- the convolutional head -------------------------------------------------------------------

def test_mel_patch_shape_range_gain_independent_and_silence():
    y = snare()
    p = role_mod.role_mel_patch(y, sr=SR)
    assert p.shape == (64, role_mod.MEL_PATCH_FRAMES) and p.dtype == np.float32
    assert 0.0 <= p.min() and p.max() == pytest.approx(1.0)
    np.testing.assert_allclose(role_mod.role_mel_patch(0.1 * y, sr=SR), p, atol=1e-4)
    # leading silence is skipped: the patch starts at the onset (delay: 20 hops of 512)
    delayed = np.r_[np.zeros(20 * 512, np.float32), y]
    # (give or take the frames whose 2048-sample window already reaches the onset)
    q = role_mod.role_mel_patch(delayed, sr=SR)
    assert min(np.abs(q[:, k + 4: k + 24] - p[:, 4:24]).max() for k in range(4)) < 0.05
    assert not role_mod.role_mel_patch(np.zeros(SR, np.float32), sr=SR).any()


def _cnn_tensors(rng, channels=(3, 4)) -> dict[str, np.ndarray]:
    t, c_in = {}, 1
    for i, c in enumerate(channels):
        t[f"cnn.conv{i}.weight"] = rng.standard_normal((c, c_in, 3, 3)).astype(np.float32)
        t[f"cnn.conv{i}.bias"] = rng.standard_normal(c).astype(np.float32) * 0.1
        c_in = c
    t["cnn.fc.weight"] = rng.standard_normal((len(ROLES), 2 * c_in)).astype(np.float32)
    t["cnn.fc.bias"] = np.zeros(len(ROLES), np.float32)
    t["cnn.share"] = np.array([0.5], np.float32)
    return t


def _reference_cnn(t, mel) -> np.ndarray:
    """The CNN head by explicit loops (the definition the vectorized inference must match)."""
    x = mel.reshape(1, *mel.shape)
    x = x.reshape(1, x.shape[1] // 2, 2, x.shape[2] // 2, 2).mean(axis=(2, 4))
    i = 0
    while f"cnn.conv{i}.weight" in t:
        w, b = t[f"cnn.conv{i}.weight"], t[f"cnn.conv{i}.bias"]
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
        out = np.zeros((w.shape[0],) + x.shape[1:])
        for o in range(w.shape[0]):
            for r in range(x.shape[1]):
                for c in range(x.shape[2]):
                    out[o, r, c] = (xp[:, r:r + 3, c:c + 3] * w[o]).sum() + b[o]
        x = np.maximum(out, 0.0)
        i += 1
        if f"cnn.conv{i}.weight" in t:
            x = x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2).max(axis=(2, 4))
    h = np.r_[x.mean(axis=(1, 2)), x.max(axis=(1, 2))]
    z = t["cnn.fc.weight"] @ h + t["cnn.fc.bias"]
    e = np.exp(z - z.max())
    return e / e.sum()


def test_cnn_head_matches_reference_and_blends_with_feature_heads():
    rng = np.random.default_rng(440)
    t = {**_tiny_model_tensors(None), **_cnn_tensors(rng)}
    model = role_mod.RoleModel(t)
    assert model.has_cnn
    mel = rng.random((2, 16, 12)).astype(np.float32)
    got = model.cnn_proba(mel)
    for k in range(2):
        np.testing.assert_allclose(got[k], _reference_cnn(t, mel[k]), rtol=1e-4, atol=1e-6)
    X = rng.standard_normal((2, N_FEATURES)).astype(np.float32)
    feat = role_mod.RoleModel(_tiny_model_tensors(None)).predict_proba(X)
    np.testing.assert_allclose(model.predict_proba(X), feat, rtol=1e-5)  # no patch: features
    np.testing.assert_allclose(model.predict_proba(X, mel=mel), 0.5 * feat + 0.5 * got,
                               rtol=1e-5)


def test_cnn_head_with_bad_share_or_shape_is_rejected():
    rng = np.random.default_rng(440)
    t = {**_tiny_model_tensors(None), **_cnn_tensors(rng)}
    with pytest.raises(ValueError):
        role_mod.RoleModel({**t, "cnn.share": np.array([1.5], np.float32)})
    with pytest.raises(ValueError):
        role_mod.RoleModel({**t, "cnn.fc.weight": np.zeros((len(ROLES), 3), np.float32)})

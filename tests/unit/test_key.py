"""Key estimation on synthetic progressions and drums, and key-name helpers."""

from __future__ import annotations

import numpy as np
import pytest

from loopmind.library.analysis.features import Spectrogram
from loopmind.library.analysis.key import (
    KEYS,
    KeyEstimate,
    analyze_key,
    estimate_key,
    fifth_neighbors,
    parse_key,
    parallel,
    relative,
)

SR = 22050


def _tone(midi: float, duration_s: float, *, sr: int = SR, cents: float = 0.0) -> np.ndarray:
    """A harmonic note: 7 partials falling as 1/h (not the estimator's own template), with a
    short attack and an exponential decay, like a plucked or bowed instrument."""
    t = np.arange(int(duration_s * sr)) / sr
    f0 = 440.0 * 2.0 ** ((midi - 69 + cents / 100.0) / 12.0)
    y = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 8) if h * f0 < sr / 2)
    env = np.minimum(1.0, t / 0.01) * np.exp(-t / 1.5)
    return (y * env).astype(np.float32)


def _progression(chords: list[list[int]], *, chord_s: float = 0.6, repeats: int = 2,
                 sr: int = SR, cents: float = 0.0) -> np.ndarray:
    """Chords given as MIDI notes, each held ``chord_s``, the whole repeated; peak 0.5."""
    parts = [sum(_tone(n, chord_s, sr=sr, cents=cents) for n in chord) for chord in chords]
    y = np.concatenate(parts * repeats)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def _major_cadence(tonic: int) -> list[list[int]]:
    """I-IV-V-I with the root in the bass (tonic as a MIDI note around C3)."""
    t = tonic
    return [[t - 12, t, t + 4, t + 7], [t - 7, t + 5, t + 9, t + 12],
            [t - 5, t + 2, t + 7, t + 11], [t - 12, t + 4, t + 7, t + 12]]


def _minor_cadence(tonic: int) -> list[list[int]]:
    """i-iv-V-i with the raised leading tone in V (harmonic minor)."""
    t = tonic
    return [[t - 12, t, t + 3, t + 7], [t - 7, t + 5, t + 8, t + 12],
            [t - 5, t + 2, t + 7, t + 11], [t - 12, t + 3, t + 7, t + 12]]


def _drum_loop(*, sr: int = SR, bars: int = 2, bpm: float = 120.0) -> np.ndarray:
    """Kick (150->50 Hz sweep), noise snare and hats, as a 4/4 pattern."""
    rng = np.random.default_rng(440)
    beat = int(60.0 / bpm * sr)
    y = np.zeros(beat * 4 * bars, dtype=np.float64)
    t = np.arange(int(0.3 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * t + 100 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.08)
    ts = np.arange(int(0.2 * sr)) / sr
    snare = ((rng.standard_normal(ts.size) * 0.6 + 0.4 * np.sin(2 * np.pi * 185 * ts))
             * np.exp(-ts / 0.05))
    th = np.arange(int(0.05 * sr)) / sr
    hat = np.diff(rng.standard_normal(th.size + 1)) * np.exp(-th / 0.01) * 0.3
    for b in range(4 * bars):
        start = b * beat
        y[start:start + kick.size] += kick[: y.size - start] if b % 2 == 0 else 0.0
        if b % 2 == 1:
            y[start:start + snare.size] += snare[: y.size - start]
        for half in (0, beat // 2):
            s = start + half
            y[s:s + hat.size] += hat[: max(0, y.size - s)]
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize("tonic, name", [(60, "C major"), (55, "G major"), (63, "Eb major"),
                                         (58, "Bb major"), (64, "E major")])
def test_major_cadence(tonic, name):
    est = estimate_key(_progression(_major_cadence(tonic)), sr=SR)
    assert est.key == name
    assert 0.3 < est.confidence <= 1.0


@pytest.mark.parametrize("tonic, name", [(57, "A minor"), (54, "F# minor"), (60, "C minor"),
                                         (62, "D minor"), (55, "G minor")])
def test_minor_cadence_with_leading_tone_is_not_the_dominant(tonic, name):
    est = estimate_key(_progression(_minor_cadence(tonic)), sr=SR)
    assert est.key == name
    assert 0.3 < est.confidence <= 1.0


def test_detuned_audio_keeps_its_key():
    y = _progression(_minor_cadence(57), cents=35.0)  # between A and Bb: tuning estimate matters
    a = analyze_key(y, sr=SR)
    assert a.estimate().key == "A minor"
    assert a.tuning_cents == pytest.approx(35.0, abs=5.0)


@pytest.mark.parametrize("sr", [16000, 44100, 48000])
def test_other_sample_rates(sr):
    y = _progression(_major_cadence(62), sr=sr)
    assert estimate_key(y, sr=sr).key == "D major"


def test_shared_spectrogram_gives_same_answer():
    y = _progression(_major_cadence(60))
    assert estimate_key(y, sr=SR, spec=Spectrogram(y, SR)) == estimate_key(y, sr=SR)


@pytest.mark.parametrize("drums_db", [0.0, 6.0])
def test_chords_over_loud_drums_keep_the_key(drums_db):
    music = _progression(_minor_cadence(57), repeats=2)
    drums = np.resize(_drum_loop(), music.size)
    drums *= 10 ** (drums_db / 20) * np.sqrt(np.mean(music ** 2) / np.mean(drums ** 2))
    a = analyze_key(music + drums, sr=SR)
    est = a.estimate()
    assert est.key == "A minor"
    assert 0.1 < est.confidence < 0.95  # drums make it less sure than the clean cadence
    if drums_db == 6.0:
        assert a.tonal_ratio < 0.3  # kept by the full-mix branch of the gate


def _unpitched() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(440)
    clicks = np.zeros(4 * SR, dtype=np.float32)
    clicks[:: SR // 2] = 1.0  # 120 BPM pulse train
    fast_clicks = np.zeros(2 * SR, dtype=np.float32)
    fast_clicks[:: SR // 12] = 0.9  # 12 Hz: a comb spectrum, still no notes
    noise = (0.3 * rng.standard_normal(3 * SR)).astype(np.float32)
    pink = np.cumsum(rng.standard_normal(3 * SR)).astype(np.float32)
    pink = 0.5 * (pink - np.convolve(pink, np.ones(64) / 64, mode="same")) / np.abs(pink).max()
    drums = _drum_loop()
    t = np.arange(int(0.4 * SR)) / SR
    kick = (np.sin(2 * np.pi * (50 * t + 100 * 0.03 * (1 - np.exp(-t / 0.03))))
            * np.exp(-t / 0.08)).astype(np.float32)
    return {"clicks": clicks, "fast_clicks": fast_clicks, "white_noise": noise,
            "filtered_noise": pink.astype(np.float32), "drum_loop": drums, "kick": kick,
            "silence": np.zeros(2 * SR, dtype=np.float32),
            "near_silence": (1e-5 * rng.standard_normal(SR)).astype(np.float32)}


@pytest.mark.parametrize("name", list(_unpitched()))
def test_unpitched_material_has_no_key(name):
    est = estimate_key(_unpitched()[name], sr=SR)
    assert est == KeyEstimate(None, 0.0)


@pytest.mark.parametrize("y", [np.zeros(0, dtype=np.float32),
                               np.array([np.nan] * 1000, dtype=np.float32),
                               np.full(100, 0.5, dtype=np.float32)])
def test_degenerate_input_has_no_key(y):
    assert estimate_key(y, sr=SR).key is None


@pytest.mark.parametrize("midi, tonic", [(48, "C"), (45, "A"), (38, "D"), (66, "F#")])
def test_single_note_is_named_after_the_note_with_low_confidence(midi, tonic):
    est = estimate_key(_progression([[midi]], chord_s=2.0, repeats=1), sr=SR)
    assert est.key is not None and est.key.split()[0] == tonic
    assert est.confidence < 0.5


def test_chroma_is_a_distribution_and_scores_follow_keys_order():
    a = analyze_key(_progression(_major_cadence(60)), sr=SR)
    assert a.chroma.shape == (12,) and a.chroma.sum() == pytest.approx(1.0)
    assert a.scores.shape == (24,)
    assert KEYS[int(np.argmax(a.scores))] == "C major"
    assert a.pitched and a.tonal_ratio > 0.6 and a.pitch_coherence > 0.8


def test_keys_list():
    assert len(KEYS) == 24 and len(set(KEYS)) == 24
    assert KEYS[0] == "C major" and KEYS[12] == "C minor"
    assert "Bb major" in KEYS and "F# minor" in KEYS and "Ab minor" in KEYS


@pytest.mark.parametrize("text, expected", [
    ("Fm", "F minor"), ("F#min", "F# minor"), ("Gb major", "F# major"), ("f minor", "F minor"),
    ("A", "A major"), ("a", "A major"), ("Am", "A minor"), ("AM", "A major"),
    ("Bbm", "Bb minor"), ("A#", "Bb major"), ("Db", "C# major"), ("D#m", "Eb minor"),
    ("G#min", "Ab minor"), ("C# Minor", "C# minor"), ("Eb-maj", "Eb major"),
    ("F sharp minor", "F# minor"), ("B flat major", "Bb major"), ("A♭ major", "Ab major"),
    ("F♯m", "F# minor"), ("Cb", "B major"), ("E#", "F major"), ("bb", "Bb major"),
    ("  c  major ", "C major"), ("E_minor", "E minor"), ("Dmaj", "D major"),
    ("d moll", "D minor"), ("bm", "B minor"),
])
def test_parse_key(text, expected):
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["", "H minor", "C lydian7", "Cmaj7", "major", "12", None, "X"])
def test_parse_key_rejects_non_keys(text):
    assert parse_key(text) is None


def test_every_canonical_key_parses_to_itself():
    assert [parse_key(k) for k in KEYS] == KEYS


def test_relative_and_fifths():
    assert relative("A minor") == "C major"
    assert relative("C major") == "A minor"
    assert relative("F# minor") == "A major"
    assert relative("Eb major") == "C minor"
    assert relative("Bbm") == "C# major"
    assert fifth_neighbors("C major") == ("G major", "F major")
    assert fifth_neighbors("A minor") == ("E minor", "D minor")
    assert fifth_neighbors("F# major") == ("C# major", "B major")
    assert all(relative(relative(k)) == k for k in KEYS)
    with pytest.raises(ValueError):
        relative("not a key")


def test_parallel():
    assert parallel("F minor") == "F major"
    assert parallel("Gbm") == "F# major"
    assert all(parallel(parallel(k)) == k for k in KEYS)
    with pytest.raises(ValueError):
        parallel("not a key")

"""The role model's training material: phrase loops of the tonal roles (benchmarks/train_role.py).

A keys loop made of one note repeated taught the model nothing about a polyphonic piano phrase
(the chorales' piano was called "guitar"), so the phrases must really be chords, voices and
lines, in the role's register, and never rendered by FluidR3_GM.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks import train_role as tr

CHORDAL = {"block", "comp", "strum", "split", "voices"}
LINES = {"melody", "riff", "bassline"}
TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")  # Debian timgm6mb-soundfont


def _phrases(role: str, texture: str, seeds=range(8)):
    lo, hi = tr._GM_RANGE[role]
    for seed in seeds:
        rng = np.random.default_rng(seed)
        beat_s = 60.0 / float(rng.uniform(70, 170))
        yield beat_s, lo, hi, tr._phrase_notes(texture, rng=rng, beat_s=beat_s, n_beats=8,
                                               lo=lo, hi=hi)


@pytest.mark.parametrize("role,texture", [(r, t) for r, ts in tr._PHRASE_TEXTURES.items()
                                          for t in ts])
def test_phrase_notes_fill_the_phrase_in_the_role_register(role, texture):
    for beat_s, lo, hi, notes in _phrases(role, texture):
        assert notes
        assert all(lo - 12 <= n.note <= hi + 12 for n in notes)
        assert all(1 <= n.vel <= 127 and n.dur_s > 0 for n in notes)
        onsets = [n.t_s for n in notes]
        assert min(onsets) == pytest.approx(0.0, abs=0.02)
        assert max(onsets) < 8 * beat_s
        if texture != "block":  # held chords may change once a bar; the rest move more often
            assert len(set(np.round(onsets, 3))) >= 2


@pytest.mark.parametrize("texture", sorted(CHORDAL))
def test_chordal_textures_sound_several_notes_at_once(texture):
    for _, _, _, notes in _phrases("keys", texture):
        starts = Counter(np.round([n.t_s for n in notes], 1))
        assert max(starts.values()) >= 3, texture
        assert len({n.note for n in notes}) >= 3


def test_voices_move_four_parts_together():
    for _, _, _, notes in _phrases("strings", "voices"):
        starts = Counter(round(n.t_s, 6) for n in notes)
        assert set(starts.values()) == {4}


@pytest.mark.parametrize("texture", sorted(LINES))
def test_lines_are_one_note_at_a_time(texture):
    role = "bass" if texture == "bassline" else "lead"
    for _, _, _, notes in _phrases(role, texture):
        starts = Counter(round(n.t_s, 6) for n in notes)
        assert max(starts.values()) == 1


def test_no_phrases_from_fluidr3(monkeypatch):
    calls = []
    monkeypatch.setattr(tr, "render_synthetic", lambda p, seed: [])
    monkeypatch.setattr(tr, "render_phrases", lambda p, seed: calls.append(Path(p).name) or [])
    tr.render_all([Path("x") / tr.FLUID_SF2.name, Path("y/TimGM6mb.sf2")])
    assert calls == ["TimGM6mb.sf2"]
    calls.clear()
    tr.render_all([Path("y/TimGM6mb.sf2")], phrases=False)
    assert calls == []


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not TIMGM.exists(),
                    reason="needs fluidsynth and the timgm6mb-soundfont package")
def test_render_phrases_gives_labelled_loops(monkeypatch):
    monkeypatch.setattr(tr, "_PHRASE_RECIPES", {"keys": 2, "bass": 1, "strings": 1})
    items = tr.render_phrases(TIMGM, seed=1)
    assert Counter(it.truth for it in items) == {"keys": 2, "bass": 1, "strings": 1}
    for it in items:
        assert it.kind == "loop" and it.pack == "synth:TimGM6mb"
        bars, bpm = (float(v) for v in
                     it.source.split(", ")[1].replace(" bar(s) at", "").split()[:2])
        bar_exact_s = 4 * bars * 60 / bpm
        assert bar_exact_s - 0.01 <= len(it.y) / tr.SR <= bar_exact_s + 2.01
        peak = float(np.abs(it.y).max())
        assert 0.09 < peak < 0.9
        # sound throughout the first bar, not one note and silence
        hop = tr.SR // 10
        first_bar = it.y[: int(bar_exact_s / bars * tr.SR)]
        rms = np.sqrt(np.mean(first_bar[: len(first_bar) // hop * hop]
                              .reshape(-1, hop) ** 2, axis=1))
        assert np.mean(rms > peak * 1e-3) > 0.5

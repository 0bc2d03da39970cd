"""Interpretive mode end to end: learned parts plus a texture pad through render, mix and
export; progress reporting; determinism."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from loopmind.generate.song import Song


def _song(out) -> Song:
    return Song.from_dict(json.loads((out / "arrangement.json").read_text()))


def test_interpret_mode_end_to_end(indexed_demo, tmp_path):
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    progress = []
    stages = []
    res = generate_song(lib, "house", folder=str(root), seed=5, minutes=1.0, mode="interpret",
                        out_dir=tmp_path / "i", on_stage=stages.append,
                        on_progress=lambda what, f: progress.append(f))
    song = _song(tmp_path / "i")
    assert song.mode == "interpret" and "learning the pool" in stages
    assert progress and all(0.0 <= f <= 1.0 for f in progress)
    generated = [c for t in song.tracks for c in t.clips if c.generated]
    assert generated and any(c.is_sequence for c in generated)
    assert song.track("texture") is not None
    y, sr = sf.read(tmp_path / "i" / "master.wav", dtype="float32", always_2d=True)
    assert np.max(np.abs(y)) < 1.0
    assert res.mix_report["master_true_peak_dbtp"] <= song.master.ceiling_dbtp + 0.05
    assert abs(res.mix_report["master_lufs"] - song.master.target_lufs) <= 1.0
    again = generate_song(lib, "house", folder=str(root), seed=5, minutes=1.0,
                          mode="interpret", out_dir=tmp_path / "j")
    assert (tmp_path / "i" / "arrangement.json").read_text() == \
        (tmp_path / "j" / "arrangement.json").read_text()
    del again
    other = generate_song(lib, "house", folder=str(root), seed=6, minutes=1.0,
                          mode="interpret", out_dir=tmp_path / "k")
    a, b = _song(tmp_path / "i"), _song(tmp_path / "k")
    events = lambda s: [(t.name, e.step, e.slice_id, e.pitch)  # noqa: E731
                        for t in s.tracks for c in t.clips for e in c.events or []]
    assert events(a) != events(b)  # another seed, another song
    assert other.paths["master"].is_file()
    # the generated parts go out as MIDI notes and as the slices they play
    assert (tmp_path / "i" / "song.mid").is_file()
    assert any((tmp_path / "i" / "slices").glob("*.wav"))



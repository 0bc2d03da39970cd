"""Generated parts (interpretive/hybrid clips made of slice events) in the studio's editing."""

from __future__ import annotations

from loopmind.app import songedit
from loopmind.generate.song import Clip, SliceEvent, Song, Track


def _song() -> Song:
    events = [SliceEvent(step=b * 16 + s, length=2, source_path="/x/bass.wav",
                         source_start_s=0.5, source_end_s=0.7, semitones=2.0, velocity=0.8,
                         pitch=41 + s % 3, slice_id="bass#3")
              for b in range(2) for s in (0, 6, 10)]
    clip = Clip(start_bar=0, bars=2, source_path="/x/bass.wav", source_start_s=0.5,
                source_end_s=0.7, events=events, generated=True)
    return Song(bpm=140.0, key="F minor", tracks=[Track("bass", "bass", [clip])])


def test_a_generated_part_is_a_step_channel() -> None:
    song = _song()
    t = song.tracks[0]
    assert songedit.is_pattern_track(t)
    row = songedit.pattern_row(t)
    assert [i for i, on in enumerate(row) if on] == [0, 6, 10]


def test_toggling_a_step_edits_every_bar_of_the_generated_part() -> None:
    song = _song()
    t = song.tracks[0]
    assert songedit.toggle_step(t, 6) is False
    assert sorted(e.step for e in t.clips[0].events) == [0, 10, 16, 26]
    assert songedit.toggle_step(t, 4) is True
    steps = sorted(e.step for e in t.clips[0].events)
    assert steps == [0, 4, 10, 16, 20, 26]
    added = [e for e in t.clips[0].events if e.step in (4, 20)]
    # the new hits reuse the bar's nearest slice (the producer's sound), one step long
    assert all(e.slice_id == "bass#3" and e.length == 1 for e in added)


def test_a_key_change_moves_the_generated_notes() -> None:
    song = _song()
    before = [(e.semitones, e.pitch) for e in song.tracks[0].clips[0].events]
    songedit.set_key(song, "G minor")
    after = [(e.semitones, e.pitch) for e in song.tracks[0].clips[0].events]
    assert after == [(s + 2, p + 2) for s, p in before]


def test_the_channel_plays_its_first_slice_when_auditioned() -> None:
    sound = songedit.track_sound(_song().tracks[0])
    assert (sound.path, sound.start_s, sound.end_s, sound.kind) == ("/x/bass.wav", 0.5, 0.7,
                                                                   "oneshot")

"""The studio's non-UI parts: song edits, the session's render bookkeeping, the waveform
envelope, the browser's paged queries, fader scales, and what importing the app costs."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from loopmind.app import songedit
from loopmind.app.envelope import braille, envelope
from loopmind.app.levels import db_to_fraction, fraction_to_db, meter_fraction
from loopmind.app.session import SongSession
from loopmind.generate.song import STEPS_PER_BAR


def _loop(**kw):
    d = dict(id=1, path="/x/chords_Amin_90bpm.wav", start_s=0.0, end_s=2 * 240 / 90,
             kind="loop", role="keys", bpm=90.0, key="A minor", bars=2.0)
    d.update(kw)
    return SimpleNamespace(**d)


def _hit(role="kick", **kw):
    d = dict(id=2, path=f"/x/{role}.wav", start_s=0.0, end_s=0.4, kind="oneshot", role=role,
             bpm=None, key=None, bars=None)
    d.update(kw)
    return SimpleNamespace(**d)


# -- song edits --------------------------------------------------------------------------------

def test_first_loop_sets_tempo_and_key_and_fills_four_bars():
    song = songedit.new_song()
    t = songedit.add_sound(song, _loop())
    assert (song.bpm, song.key) == (90.0, "A minor")
    clip = t.clips[0]
    assert clip.source_bars == 2.0 and clip.stretch == pytest.approx(1.0)
    assert clip.bars == 4  # two whole repeats
    assert song.bars == 4 and t.name == "keys" and t.color


def test_oneshots_get_a_starting_pattern_over_the_song():
    song = songedit.new_song()
    songedit.add_sound(song, _loop())
    kick = songedit.add_sound(song, _hit("kick"))
    snare = songedit.add_sound(song, _hit("snare", id=3))
    assert songedit.pattern_row(kick) == [s % 4 == 0 for s in range(16)]
    assert songedit.pattern_row(snare) == [s in (4, 12) for s in range(16)]
    assert kick.clips[0].bars == 4 and len(kick.clips[0].steps) == 16  # 4 per bar, 4 bars
    other = songedit.add_sound(song, _hit("kick", id=9))
    assert other.name == "kick 2"


def test_toggle_step_edits_every_bar_of_every_pattern_clip():
    song = songedit.new_song()
    kick = songedit.add_sound(song, _hit("kick"))
    songedit.add_sound(song, _hit("kick"), start_bar=6, track="kick")  # a second clip
    assert len(kick.clips) == 2 and kick.clips[1].bars == 1
    assert songedit.toggle_step(kick, 3) is True
    for clip in kick.clips:
        steps = dict(clip.steps)
        assert all(b * STEPS_PER_BAR + 3 in steps for b in range(clip.bars))
    assert songedit.toggle_step(kick, 3) is False
    assert all(s % STEPS_PER_BAR != 3 for c in kick.clips for s, _ in c.steps)
    loop_track = songedit.add_sound(song, _loop())
    assert songedit.toggle_step(loop_track, 3) is None
    assert songedit.toggle_step(kick, 16) is None


def test_drop_on_the_playlist_places_a_clip_on_that_bar():
    song = songedit.new_song()
    songedit.add_sound(song, _loop())
    t = songedit.add_sound(song, _loop(id=5), start_bar=4, track="keys")
    assert t.name == "keys" and [c.start_bar for c in t.clips] == [0, 4]
    assert song.bars == 6
    # a one-shot dropped on a loop track gets its own track
    t2 = songedit.add_sound(song, _hit("snare"), start_bar=2, track="keys")
    assert t2.name == "snare" and t2.clips[0].start_bar == 2


def test_tempo_and_key_changes_follow_through_the_clips():
    song = songedit.new_song()
    t = songedit.add_sound(song, _loop())
    songedit.set_tempo(song, 100.0)
    clip = t.clips[0]
    assert clip.stretch == pytest.approx(100 / 90, rel=1e-4) and clip.source_bars == 2.0
    songedit.set_key(song, "C minor")
    assert clip.semitones == 3
    songedit.set_key(song, None)
    assert clip.semitones == 0
    with pytest.raises(ValueError):
        songedit.set_tempo(song, 1000)


def test_a_loop_without_a_tempo_plays_once():
    song = songedit.new_song(bpm=120)
    t = songedit.add_sound(song, _loop(bpm=None, bars=None, role="fx", key=None,
                                       end_s=3.0))
    clip = t.clips[0]
    assert clip.source_bars is None and clip.stretch == 1.0 and clip.bars == 2


def test_remove_clip_and_track_sound():
    song = songedit.new_song()
    songedit.add_sound(song, _hit("kick"))
    sound = songedit.track_sound(song.tracks[0])
    assert sound.kind == "oneshot" and sound.path.endswith("kick.wav")
    assert songedit.remove_clip(song, "kick", 0) and song.tracks == []
    assert not songedit.remove_clip(song, "kick", 0)


# -- the session -------------------------------------------------------------------------------

def test_session_renders_what_an_edit_touched_and_drops_stale_results():
    s = SongSession()
    s.add_sound(_loop())
    job = s.take_render()
    assert job.names is None  # the first sound set tempo, key and length: all of it
    assert s.take_render() is None
    s.add_sound(_hit("kick"))
    job = s.take_render()
    assert job.names == {"kick"} and job.song is not s.song  # a copy for the worker
    y = np.zeros((2, 10), np.float32)
    s.toggle_step("kick", 1)  # an edit after the job was taken
    assert s.apply_render(job.version, {"kick": y}) == []  # too old: a newer render comes
    job2 = s.take_render()
    assert s.apply_render(job2.version, {"kick": y}) == ["kick"]
    s.set_solo("kick", True)
    assert s.solo == {"kick"}
    assert s.set_gain("kick", 99) == 6.0
    s.master_gain_db = -3.0
    assert s.monitor_gain_db(s.song.track("kick")) == 3.0


def test_session_plays_the_export_mix_and_faders_move_relative_to_it():
    """The transport gets the mixed, mastered stems (their sum with the returns is the
    master); a fader then plays relative to where the mix had it; a stale mix is dropped; a
    remix renders nothing and mixes everything."""
    from loopmind.app.session import playback_mix
    from loopmind.generate.mix import apply_mix

    s = SongSession()
    s.add_sound(_loop(role="pad"))
    s.add_sound(_hit("kick"))
    n = s.song.bar_to_sample(s.song.bars)
    rng = np.random.default_rng(0)
    t = np.arange(n) / s.song.sample_rate
    raw = {"pad": np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32),
           "kick": (rng.standard_normal((2, n)) * 0.2 * (t % 0.5 < 0.05)).astype(np.float32)}
    s.song.track("pad").mix.reverb_send = 0.3
    s.song.track("kick").mix.gain_db = -2.0
    job = s.take_render()
    assert job.names is None and job.raw == {}
    played = playback_mix(job.song, raw)
    assert playback_mix(job.song, {"pad": raw["pad"]}) is None  # a track without audio
    master = apply_mix(job.song, raw, sr=s.song.sample_rate).master
    heard = sum(played.stems.values()) + sum(played.returns.values())
    np.testing.assert_allclose(heard, master, atol=2e-5)
    assert list(played.returns) == ["reverb"]
    assert s.apply_render(job.version, raw, played) == ["pad", "kick"]
    stems, returns = s.playback()
    assert stems["kick"] is played.stems["kick"] and list(returns) == ["reverb"]
    kick = s.song.track("kick")
    assert s.monitor_gain_db(kick) == 0.0  # as mixed
    s.set_gain("kick", 1.0)
    s.master_gain_db = -1.0
    assert s.monitor_gain_db(kick) == 2.0  # +3 dB over the mix, -1 dB of master
    # an edit after the job was taken: its mix is too old to keep
    s.master_gain_db = 0.0
    s.toggle_step("kick", 1)
    job2 = s.take_render()
    assert job2.names == {"kick"} and set(job2.raw) == {"pad"}
    s.toggle_step("kick", 1)
    assert s.apply_render(job2.version, {"kick": raw["kick"]},
                          playback_mix(job2.song, {**job2.raw, "kick": raw["kick"]})) == []
    assert s.played is played
    # a remix: no track to render, every track mixed again
    job3 = s.take_render()
    s.request_remix()
    job4 = s.take_render()
    assert job4.names == set() and set(job4.raw) == {"pad", "kick"} and job3.version < job4.version
    new = playback_mix(job4.song, job4.raw)
    assert s.apply_render(job4.version, {}, new) == [] and s.played is new


# -- the waveform --------------------------------------------------------------------------------

def test_envelope_and_braille():
    y = np.zeros(8000, np.float32)
    y[:100] = np.linspace(-0.5, 0.5, 100)
    lo, hi = envelope(y, bins=64)
    assert lo.shape == hi.shape == (64,) and hi.max() == pytest.approx(1.0)
    assert lo[-1] == hi[-1] == 0.0
    lines = braille(lo, hi, 20, 3)
    assert len(lines) == 3 and all(len(line) == 20 for line in lines)
    assert all(0x2800 <= ord(c) <= 0x28FF for c in "".join(lines))
    assert lines[0][0] != "\u2800" and lines[2][0] != "\u2800"  # a full swing at the start
    assert lines[0][-1] == "\u2800" and lines[2][-1] == "\u2800"  # silence: the centre line
    assert lines[1][-1] != "\u2800"
    silent = envelope(np.zeros(0, np.float32), bins=8)
    assert not silent[0].any() and not silent[1].any()


# -- paged queries ----------------------------------------------------------------------------

def test_find_ids_and_pages(studio_settings):
    from loopmind.app.pager import BrowseQuery, fetch_page, find_ids
    from loopmind.library.db import Library

    lib = Library(studio_settings)
    every = find_ids(lib, BrowseQuery())
    assert len(every) == 7 and every.note is None
    hits = fetch_page(lib, every, 0)
    assert [h.id for h in hits] == every.ids
    assert [h.path for h in hits] == sorted(h.path for h in hits)  # by path
    assert len(find_ids(lib, BrowseQuery(kind="loop"))) == 3
    drums = find_ids(lib, BrowseQuery(text="house drums"))
    assert len(drums) == 1 and drums.note is None
    partial = find_ids(lib, BrowseQuery(text="kick nosuchword"))
    assert len(partial) >= 1 and "partial" in partial.note
    none = find_ids(lib, BrowseQuery(text="nosuchword"))
    assert len(none) == 0 and "no sound matches" in none.note
    assert find_ids(lib, BrowseQuery(text="120")).ids == drums.ids
    assert find_ids(lib, BrowseQuery(), limit=2).ids == every.ids[:2]
    lib.close()


# -- fader scales --------------------------------------------------------------------------------

def test_fader_taper_and_meter_scale():
    assert db_to_fraction(0.0) == pytest.approx(0.8)
    assert db_to_fraction(6.0) == 1.0 and db_to_fraction(-60.0) == 0.0
    for db in (-40.0, -12.0, -3.0, 0.0, 3.0):
        assert fraction_to_db(db_to_fraction(db)) == pytest.approx(db, abs=0.5)
    assert meter_fraction(1.0) == 1.0 and meter_fraction(0.0) == 0.0
    assert meter_fraction(10 ** (-30 / 20)) == pytest.approx(0.5)


# -- import cost -----------------------------------------------------------------------------

def test_the_app_module_imports_no_domain_before_the_first_frame():
    code = ("import sys, loopmind.app.app\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    heavy = {"numpy", "scipy", "sqlalchemy", "sqlmodel", "faiss", "soundfile", "sounddevice",
             "pedalboard", "watchdog"}
    assert not heavy & set(out)

"""Export: the four kinds of files, bit-identical masters, MIDI content, and atomicity."""

from __future__ import annotations

import os
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from fixtures_audio import SR, click_track, permissions_enforced, tone, write_audio

from loopmind.errors import LoopMindError
from loopmind.generate import export as export_mod
from loopmind.generate.export import (ExportError, export_song, read_arrangement,
                                      stem_filenames)
from loopmind.generate.midi import GM_DRUM_NOTES, mido_key, write_midi
from loopmind.generate.render import StretchCache, render_tracks
from loopmind.generate.song import Clip, MixSettings, Section, Song, Track


def _song(folder: Path) -> Song:
    folder.mkdir(parents=True, exist_ok=True)
    drums = write_audio(folder / "drums100.wav", click_track(100, 2))
    keys = write_audio(folder / "keys.wav", tone(330.0, 4.8, harmonics=3), subtype="FLOAT")
    hat = write_audio(folder / "hat.wav", tone(8000.0, 0.05), subtype="FLOAT")
    dur = 2 * 4 * 60 / 100
    return Song(
        bpm=120.0, key="F# minor", seed=7, prompt="dark house",
        sections=[Section("intro", 0, 2, roles=["drumloop"]), Section("drop", 2, 2, energy=0.9)],
        tracks=[
            Track("Drums", "drumloop",
                  [Clip(0, 4, str(drums), 0.0, dur, segment_id=3, source_bpm=100.0,
                        source_bars=2.0, stretch=1.2)],
                  mix=MixSettings(gain_db=-2.0, eq=[(200.0, -3.0, 1.0)])),
            Track("Keys / Pad", "keys",
                  [Clip(2, 2, str(keys), 0.0, dur, segment_id=9, source_bpm=100.0,
                        source_key="E minor", source_bars=2.0, stretch=1.2, semitones=2)]),
            Track("Hats", "hihat",
                  [Clip(0, 4, str(hat), 0.0, 0.05, steps=[(s, 0.8) for s in range(0, 64, 2)])]),
        ])


def _render(song: Song, cache_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rendered = render_tracks(song, cache=StretchCache(cache_dir))
    master = sum(rendered.tracks.values()) * np.float32(0.5)
    return rendered.tracks, master


@pytest.fixture
def rendered(tmp_path: Path):
    song = _song(tmp_path / "src")
    tracks, master = _render(song, tmp_path / "cache")
    return song, tracks, master


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_export_writes_master_stems_arrangement_and_midi(tmp_path: Path, rendered) -> None:
    song, tracks, master = rendered
    out = tmp_path / "songs" / "first"
    result = export_song(song, tracks, master, out, flac=True)
    assert sorted(_tree(out)) == ["arrangement.json", "master.flac", "master.wav", "song.mid",
                                  "stems/Drums.wav", "stems/Hats.wav", "stems/Keys _ Pad.wav"]
    assert result.paths["master"] == out / "master.wav"
    assert result.paths["master_flac"] == out / "master.flac"
    assert result.paths["stems"] == {"Drums": out / "stems/Drums.wav",
                                     "Keys / Pad": out / "stems/Keys _ Pad.wav",
                                     "Hats": out / "stems/Hats.wav"}
    info = sf.info(str(out / "master.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "PCM_24")
    assert info.frames == master.shape[1]
    y, _ = sf.read(str(out / "master.wav"), dtype="float32")
    assert np.abs(y.T - master).max() < 2.0 ** -22
    flac, _ = sf.read(str(out / "master.flac"), dtype="float32")
    np.testing.assert_array_equal(flac, y)
    stem, _ = sf.read(str(out / "stems/Drums.wav"), dtype="float32")
    assert np.abs(stem.T - tracks["Drums"]).max() < 2.0 ** -22
    # the arrangement round-trips to the same Song, and names the files
    assert read_arrangement(out / "arrangement.json") == song
    import json

    doc = json.loads((out / "arrangement.json").read_text())
    assert doc["files"]["stems"]["Keys / Pad"] == "stems/Keys _ Pad.wav"
    clip = doc["tracks"][1]["clips"][0]
    assert (clip["source_path"], clip["segment_id"], clip["start_bar"], clip["bars"],
            clip["stretch"], clip["semitones"]) == (song.tracks[1].clips[0].source_path, 9, 2,
                                                    2, 1.2, 2)
    assert doc["tracks"][0]["mix"]["gain_db"] == -2.0 and doc["bpm"] == 120.0
    # no staging folder is left
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_same_song_gives_a_bit_identical_master(tmp_path: Path) -> None:
    masters = []
    for run in range(2):
        song = _song(tmp_path / "src")  # rewritten identically (new mtime: a cache miss)
        tracks, master = _render(song, tmp_path / f"cache{run}")
        export_song(song, tracks, master, tmp_path / f"out{run}")
        masters.append((tmp_path / f"out{run}" / "master.wav").read_bytes())
    assert masters[0] == masters[1]


def test_midi_holds_tempo_markers_and_notes(tmp_path: Path) -> None:
    song = _song(tmp_path / "src")
    path = write_midi(song, tmp_path / "song.mid")
    mid = mido.MidiFile(str(path))
    assert mid.type == 1 and mid.ticks_per_beat == 480
    assert len(mid.tracks) == 1 + len(song.tracks)
    meta = list(mid.tracks[0])
    tempo = next(m for m in meta if m.type == "set_tempo")
    assert abs(mido.tempo2bpm(tempo.tempo) - 120.0) < 1e-3
    assert next(m for m in meta if m.type == "key_signature").key == "F#m"
    ts = next(m for m in meta if m.type == "time_signature")
    assert (ts.numerator, ts.denominator) == (4, 4)
    ticks, markers = 0, []
    for m in meta:
        ticks += m.time
        if m.type == "marker":
            markers.append((ticks, m.text))
    assert markers == [(0, "intro"), (2 * 4 * 480, "drop")]

    def notes(track) -> list[tuple[int, int, int, int]]:
        out, now = [], 0
        for m in track:
            now += m.time
            if m.type == "note_on" and m.velocity > 0:
                out.append((now, m.channel, m.note, m.velocity))
        return out

    names = [next(m.name for m in t if m.type == "track_name") for t in mid.tracks[1:]]
    assert names == ["Drums", "Keys / Pad", "Hats"]
    drums, keys, hats = (notes(t) for t in mid.tracks[1:])
    assert drums == [(0, drums[0][1], 60, 100)]
    assert keys == [(2 * 1920, keys[0][1], 62, 100)]  # C3 + 2 semitones, from bar 2
    assert len(hats) == 32 and {h[1] for h in hats} == {9}
    assert {h[2] for h in hats} == {GM_DRUM_NOTES["hihat"]}
    assert [h[0] for h in hats] == [s * 120 for s in range(0, 64, 2)]
    assert hats[0][3] == round(0.8 * 127)
    # loop notes last the clip: the keys note ends at bar 4
    now, off = 0, None
    for m in mid.tracks[2]:
        now += m.time
        if m.type == "note_off":
            off = now
    assert off == 4 * 1920

    # a swung song: the odd 16ths of the patterns are late by the swing, in MIDI as in audio
    song.swing = 0.5
    mid = mido.MidiFile(str(write_midi(song, tmp_path / "swung.mid")))
    assert [h[0] for h in notes(mid.tracks[3])] == [s * 120 for s in range(0, 64, 2)]
    song.tracks[2].clips[0].steps = [(1, 1.0), (2, 1.0), (3, 0.5)]
    mid = mido.MidiFile(str(write_midi(song, tmp_path / "swung.mid")))
    assert [h[0] for h in notes(mid.tracks[3])] == [120 + 60, 240, 360 + 60]


def test_mido_key_names() -> None:
    assert mido_key("A minor") == "Am" and mido_key("Bb major") == "Bb"
    assert mido_key("C# minor") == "C#m" and mido_key(None) is None
    assert mido_key("not a key") is None


def test_stem_filenames_are_safe_and_unique() -> None:
    names = stem_filenames(["Drums", "drums", "../etc/passwd", "  ", "con", "Bass: sub"])
    assert names["Drums"] == "Drums.wav" and names["drums"] == "drums-2.wav"
    assert "/" not in names["../etc/passwd"] and not names["../etc/passwd"].startswith(".")
    assert names["  "] == "track.wav" and names["con"] == "con_.wav"
    assert names["Bass: sub"] == "Bass_ sub.wav"
    assert len({v.lower() for v in names.values()}) == len(names)


def test_export_replaces_old_outputs_and_keeps_user_files(tmp_path: Path, rendered) -> None:
    song, tracks, master = rendered
    out = tmp_path / "out"
    (out / "stems").mkdir(parents=True)
    (out / "master.wav").write_bytes(b"old master")
    (out / "notes.txt").write_text("mine")
    (out / "stems" / "Extra.wav").write_bytes(b"a user's file")
    export_song(song, tracks, master, out)
    assert (out / "master.wav").read_bytes()[:4] == b"RIFF"
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "stems" / "Extra.wav").read_bytes() == b"a user's file"


def test_unwritable_folder_is_a_clear_error(tmp_path: Path, rendered) -> None:
    if not permissions_enforced():
        pytest.skip("running as root: folder permissions are not enforced")
    song, tracks, master = rendered
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(ExportError, match=r"cannot write to .*locked: permission denied"):
            export_song(song, tracks, master, out)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o700)


def test_folder_under_a_file_is_a_clear_error(tmp_path: Path, rendered) -> None:
    song, tracks, master = rendered
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(LoopMindError) as info:
        export_song(song, tracks, master, tmp_path / "a-file" / "out")
    assert str(info.value).startswith("cannot write to ") and "\n" not in str(info.value)
    with pytest.raises(ExportError, match="is a file"):
        export_song(song, tracks, master, tmp_path / "a-file")


def test_failure_midway_leaves_nothing_partial(tmp_path: Path, rendered,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    song, tracks, master = rendered
    out = tmp_path / "out"
    export_song(song, tracks, master, out)
    before = _tree(out)
    (out / "notes.txt").write_text("mine")
    real_write, calls = sf.write, []

    def failing(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(sf, "write", failing)
    quieter = [t * np.float32(0.5) for t in tracks.values()]
    with pytest.raises(ExportError, match="no space left on device"):
        export_song(song, dict(zip(tracks, quieter)), master * 0.5, out)
    assert len(calls) >= 2  # files are written on a few threads: some may have been under way
    after = _tree(out)
    assert after.pop("notes.txt") == b"mine"
    assert after == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    # into a new folder: the folder itself is not left behind either
    calls.clear()
    with pytest.raises(ExportError):
        export_song(song, tracks, master, tmp_path / "new" / "song")
    assert not (tmp_path / "new").exists()


def test_failure_while_moving_restores_the_old_outputs(tmp_path: Path, rendered,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    song, tracks, master = rendered
    out = tmp_path / "out"
    export_song(song, tracks, master, out)
    before = _tree(out)
    real_replace, calls = os.replace, []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == 3 and str(dst).startswith(str(out)):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(export_mod.os, "replace", failing)
    with pytest.raises(ExportError, match="input/output error"):
        export_song(song, {k: v * np.float32(0.5) for k, v in tracks.items()}, master * 0.5,
                    out)
    assert _tree(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_full_disk_is_refused_up_front(tmp_path: Path, rendered,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    song, tracks, master = rendered
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ExportError, match="not enough disk space"):
        export_song(song, tracks, master, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_staging_left_by_a_killed_export_is_removed(tmp_path: Path, rendered) -> None:
    import subprocess
    import sys

    song, tracks, master = rendered
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = out / f".loopmind-export-{dead}-abc123"
    (stale / "stems").mkdir(parents=True)
    (stale / "master.wav").write_bytes(b"half")
    foreign = out / ".loopmind-export-notapid"
    foreign.mkdir()
    export_song(song, tracks, master, out)
    assert not stale.exists() and foreign.exists()


def test_unusual_names_export_and_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    # a Latin-1 file name (not UTF-8) and a track name MIDI cannot hold as it is
    path = write_audio(os.path.join(os.fsencode(src), b"caf\xe9_loop.wav"),
                       tone(220.0, 2.0), subtype="FLOAT")
    song = Song(bpm=120.0, key=None, sections=[Section("intro", 0, 2)], tracks=[
        Track("Bass 🎸", "bass", [Clip(0, 2, str(path), 0.0, 2.0, source_bars=1.0)])])
    rendered = render_tracks(song, cache=StretchCache(tmp_path / "cache"))
    assert not rendered.notes
    out = tmp_path / "out"
    result = export_song(song, rendered.tracks, rendered.tracks["Bass 🎸"], out)
    assert result.stems["Bass 🎸"].name == "Bass.wav"
    assert read_arrangement(out / "arrangement.json") == song
    names = [m.name for m in mido.MidiFile(str(out / "song.mid")).tracks[1]
             if m.type == "track_name"]
    assert names == ["Bass ?"]


def test_midi_writes_a_glide_as_a_pitch_wheel_slide(tmp_path: Path) -> None:
    """A sliding 808 note: the part's channel gets a 12-semitone bend range, and the note's
    last two 16ths ramp the wheel to the interval (+5 of 12 semitones), back to centre at its
    end; a part without glides has no pitch wheel at all."""
    from loopmind.generate.song import SliceEvent

    def ev(step, pitch, glide=0.0):
        return SliceEvent(step=step, length=4, source_path="/x/808.wav", source_start_s=0.0,
                          source_end_s=1.0, pitch=pitch, slice_id="808#0", glide=glide)

    def song(events):
        clip = Clip(start_bar=0, bars=1, source_path="/x/808.wav", source_start_s=0.0,
                    source_end_s=1.0, events=events)
        return Song(bpm=120.0, key="F minor", sections=[Section("verse", 0, 1)],
                    tracks=[Track(name="bass", role="bass", clips=[clip])])

    mid = mido.MidiFile(write_midi(song([ev(0, 41, glide=5.0), ev(4, 46)]), tmp_path / "a.mid"))
    part = next(t for t in mid.tracks if t.name == "bass slices")
    msgs, now = [], 0
    for msg in part:
        now += msg.time
        msgs.append((now, msg))
    cc = [(m.control, m.value) for _, m in msgs if m.type == "control_change"]
    assert cc[:4] == [(101, 0), (100, 0), (6, 12), (38, 0)]
    wheel = [(t, m.pitch) for t, m in msgs if m.type == "pitchwheel"]
    step = mid.ticks_per_beat // 4
    assert wheel[0][0] == 2 * step and max(p for _, p in wheel) == round(5 / 12 * 8191)
    assert wheel[-1] == (4 * step, 0)  # centred again when the note ends
    assert [p for _, p in wheel[:-1]] == sorted(p for _, p in wheel[:-1])  # a rising ramp
    plain = mido.MidiFile(write_midi(song([ev(0, 41), ev(4, 46)]), tmp_path / "b.mid"))
    assert not any(m.type in ("pitchwheel", "control_change") for t in plain.tracks for m in t)

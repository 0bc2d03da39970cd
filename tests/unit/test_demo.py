"""The demo library: deterministic, decodable, bar-exact, truthful manifest, atomic builds."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from loopmind import demo
from loopmind.demo import DEMO_VERSION, MANIFEST_NAME, build_demo_library, read_manifest
from loopmind.library.audio import decode

ROLES = {"kick", "snare", "hihat", "clap", "perc", "cymbal", "tom", "drumloop", "bass", "keys",
         "pad", "lead", "fx"}
# a few cheap files covering every writer path: mono, OGG (serial fix), FLAC, 24-bit AIFF
SMALL = ("Drums/Kicks/kick_punchy_01.wav", "Drums/HiHats/hihat_closed_bright_05.ogg",
         "Drums/Percussion/perc_woodblock_04.wav", "Drums/Loops/house_drums_120bpm_02.wav",
         "Bass/bass_Cmaj_120bpm.flac", "Leads/lead_Gmaj_120bpm.aiff")


@pytest.fixture
def small_pack(monkeypatch):
    """Shrink the pack to SMALL so build/rebuild/failure tests take milliseconds."""
    specs = [s for s in demo._specs() if s.path in SMALL]
    assert len(specs) == len(SMALL)
    monkeypatch.setattr(demo, "_specs", lambda: list(specs))
    return specs


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".demo-part")]


# -- the full library (built once per session by conftest) ----------------------------------

@pytest.mark.slow  # a second full build: about 3 s
def test_full_build_is_deterministic(demo_library, tmp_path):
    again = build_demo_library(tmp_path / "again", seed=0)
    assert _tree(tmp_path / "again") == _tree(demo_library)
    assert [p.relative_to(tmp_path / "again") for p in again] == \
        [Path(e["path"]) for e in read_manifest(demo_library)["files"]]


def test_seed_changes_the_noise_not_the_truth():
    a = demo.drum_hit("perc_shaker", seed=0)
    b = demo.drum_hit("perc_shaker", seed=1)
    assert a.shape == b.shape and not np.allclose(a, b)
    np.testing.assert_array_equal(a, demo.drum_hit("perc_shaker", seed=0))


def test_manifest_matches_files(demo_library, demo_manifest):
    entries = demo_manifest["files"]
    assert demo_manifest["version"] == DEMO_VERSION and demo_manifest["seed"] == 0
    on_disk = {p.relative_to(demo_library).as_posix() for p in demo_library.rglob("*")
               if p.is_file() and p.name != MANIFEST_NAME}
    assert on_disk == {e["path"] for e in entries}
    assert len(entries) == len(on_disk)  # no duplicates
    assert 40 <= len(entries) <= 60
    total = sum(e["bytes"] for e in entries)
    assert total < 30e6
    for e in entries:
        data = (demo_library / e["path"]).read_bytes()
        assert len(data) == e["bytes"], e["path"]
        assert hashlib.sha256(data).hexdigest() == e["sha256"], e["path"]
    assert not _temps(demo_library)


def test_every_file_decodes_as_the_manifest_says(demo_library, demo_manifest):
    for e in demo_manifest["files"]:
        d = decode(demo_library / e["path"])
        assert d.info.format == e["format"], e["path"]
        assert d.info.subtype == e["subtype"], e["path"]
        assert (d.info.sr, d.info.channels) == (e["sr"], e["channels"]), e["path"]
        assert d.info.frames == e["frames"], e["path"]
        assert abs(d.duration_s - e["duration_s"]) < 2 / d.sr, e["path"]
        assert np.isfinite(d.y).all() and np.abs(d.y).max() > 0.05, e["path"]
        assert -40 < d.loudness.integrated_lufs() < -3, e["path"]


def test_loops_are_bar_exact(demo_manifest):
    loops = [e for e in demo_manifest["files"] if e["kind"] == "loop"]
    assert loops
    for e in loops:
        assert e["bars"] in (1, 2, 4) and e["bpm"], e["path"]
        expected = round(e["bars"] * 4 * 60 / e["bpm"] * e["sr"])
        assert e["frames"] == expected, e["path"]


def test_pack_covers_what_the_app_needs(demo_manifest):
    entries = demo_manifest["files"]
    assert {e["role"] for e in entries} == ROLES
    loops = [e for e in entries if e["kind"] == "loop"]
    drum_loops = [e for e in loops if e["role"] == "drumloop"]
    assert {e["bpm"] for e in drum_loops} >= {85.0, 90.0, 120.0, 128.0, 140.0, 174.0}
    assert {e["bars"] for e in drum_loops} == {1, 2, 4}
    assert {e["genre"] for e in drum_loops} == {"trap", "boombap", "house", "dnb"}
    pitched = [e for e in loops if e["role"] in ("bass", "keys", "pad", "lead")]
    assert all(re.fullmatch(r"[A-G][#b]? (major|minor)", e["key"]) for e in pitched)
    assert {e["key"] for e in pitched} >= {"F minor", "A minor", "C major", "G major",
                                          "D minor"}
    assert all(e["key"] is None for e in entries if e not in pitched)
    assert all(e["bpm"] is None and e["bars"] is None for e in entries if e["kind"] == "oneshot")
    for role in ("kick", "snare", "hihat", "clap", "perc", "cymbal", "tom", "fx"):
        assert sum(e["role"] == role for e in entries) >= 3, role
    # mostly 44.1 kHz 16-bit WAV, plus each other kind of file
    wav16 = [e for e in entries if (e["format"], e["subtype"], e["sr"]) == ("WAV", "PCM_16",
                                                                           44100)]
    assert len(wav16) > len(entries) / 2
    formats = {(e["format"], e["subtype"]) for e in entries}
    assert {("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("AIFF", "PCM_24")} <= formats
    assert any(e["channels"] == 1 for e in entries)
    assert any(e["sr"] != 44100 for e in entries)


def test_file_names_carry_the_truth(demo_manifest):
    """A producer reading the name gets the manifest's tempo and key."""
    for e in demo_manifest["files"]:
        stem = Path(e["path"]).stem
        m = re.search(r"(\d+)bpm", stem)
        assert (float(m.group(1)) if m else None) == e["bpm"], e["path"]
        k = re.search(r"_([A-G][#b]?)(maj|min)_", stem + "_")
        key = f"{k.group(1)} {'major' if k.group(2) == 'maj' else 'minor'}" if k else None
        assert key == e["key"], e["path"]


# -- build mechanics (on a six-file pack) ---------------------------------------------------

def test_small_build_writes_manifest_last(small_pack, tmp_path):
    files = build_demo_library(tmp_path / "demo")
    assert [p.relative_to(tmp_path / "demo").as_posix() for p in files] == \
        [s.path for s in small_pack]
    manifest = read_manifest(tmp_path / "demo")
    assert [e["path"] for e in manifest["files"]] == [s.path for s in small_pack]
    manifest_mtime = (tmp_path / "demo" / MANIFEST_NAME).stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= manifest_mtime for p in files)
    assert not _temps(tmp_path / "demo")


def test_rebuilding_reuses_a_complete_library(small_pack, tmp_path, monkeypatch):
    dest = tmp_path / "demo"
    first = build_demo_library(dest)
    before = {p: p.stat().st_mtime_ns for p in first}

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(demo, "_render", no_render)
    assert build_demo_library(dest) == first
    assert {p: p.stat().st_mtime_ns for p in first} == before


def test_reuse_also_works_for_the_full_library(demo_library, monkeypatch):
    monkeypatch.setattr(demo, "_render", lambda *a, **k: pytest.fail("rendered again"))
    t0 = time.perf_counter()
    files = build_demo_library(demo_library)
    assert len(files) == len(read_manifest(demo_library)["files"])
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("change", ["force", "version", "seed", "missing_file", "resized_file",
                                    "no_manifest", "bad_manifest", "foreign_manifest"])
def test_incomplete_or_other_library_is_rebuilt(small_pack, tmp_path, monkeypatch, change):
    dest = tmp_path / "demo"
    build_demo_library(dest)
    kwargs = {}
    manifest_path = dest / MANIFEST_NAME
    if change == "force":
        kwargs["force"] = True
    elif change == "version":
        m = json.loads(manifest_path.read_text())
        m["version"] = DEMO_VERSION - 1
        manifest_path.write_text(json.dumps(m))
    elif change == "seed":
        kwargs["seed"] = 7
    elif change == "missing_file":
        (dest / SMALL[0]).unlink()
    elif change == "resized_file":
        with open(dest / SMALL[2], "ab") as fh:
            fh.write(b"\0")
    elif change == "no_manifest":
        manifest_path.unlink()
    elif change == "bad_manifest":
        manifest_path.write_text("{not json")
    elif change == "foreign_manifest":
        manifest_path.write_text(json.dumps({"version": DEMO_VERSION, "seed": 0,
                                             "files": [{"path": "../../etc/passwd"}]}))
    rendered = []
    real_render = demo._render
    monkeypatch.setattr(demo, "_render",
                        lambda spec, seed: rendered.append(spec.path) or real_render(spec, seed))
    build_demo_library(dest, **kwargs)
    assert rendered == [s.path for s in small_pack]
    assert read_manifest(dest)["seed"] == kwargs.get("seed", 0)
    for e in read_manifest(dest)["files"]:
        assert (dest / e["path"]).stat().st_size == e["bytes"]


def _fail_on_call(n_ok: int, real):
    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        if len(calls) > n_ok:
            raise OSError(28, "No space left on device (simulated)")
        return real(*args, **kwargs)

    return fake


@pytest.mark.parametrize("where", ["render", "replace"])
def test_failed_build_leaves_no_partial_files(small_pack, tmp_path, monkeypatch, where):
    reference = tmp_path / "reference"
    build_demo_library(reference)
    expected = _tree(reference)

    dest = tmp_path / "demo"
    build_demo_library(dest)  # a complete library that a forced rebuild then fails to replace
    (dest / "my_own_notes.txt").write_text("not ours")
    real_render, real_replace = demo._render, os.replace
    if where == "render":
        monkeypatch.setattr(demo, "_render", _fail_on_call(3, real_render))
    else:
        # fail the 4th os.replace: its temp file is fully written at that moment
        monkeypatch.setattr(demo.os, "replace", _fail_on_call(3, real_replace))
    with pytest.raises(OSError, match="simulated"):
        build_demo_library(dest, force=True)
    monkeypatch.setattr(demo, "_render", real_render)
    monkeypatch.setattr(demo.os, "replace", real_replace)

    assert not _temps(dest)
    assert not (dest / MANIFEST_NAME).exists()  # incomplete, so the next call rebuilds
    assert (dest / "my_own_notes.txt").read_text() == "not ours"
    for rel, data in _tree(dest).items():
        if rel != "my_own_notes.txt":
            assert data == expected[rel], rel  # every file is whole: old or new, never half

    build_demo_library(dest)
    got = _tree(dest)
    got.pop("my_own_notes.txt")
    assert got == expected


def test_failure_on_first_build_leaves_only_whole_files(small_pack, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    build_demo_library(reference)
    dest = tmp_path / "demo"
    monkeypatch.setattr(demo, "_encode", _fail_on_call(2, demo._encode))
    with pytest.raises(OSError):
        build_demo_library(dest)
    written = _tree(dest)
    assert len(written) == 2 and MANIFEST_NAME not in written
    assert all(written[rel] == (reference / rel).read_bytes() for rel in written)
    assert not _temps(dest)


def test_stale_temp_files_are_cleaned_and_fresh_ones_kept(small_pack, tmp_path):
    dest = tmp_path / "demo"
    (dest / "Drums").mkdir(parents=True)
    stale = dest / "Drums" / ".kick.wav.abc123.demo-part"
    fresh = dest / ".pad.wav.def456.demo-part"  # maybe a concurrent build's: leave it
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    build_demo_library(dest)
    assert not stale.exists() and fresh.exists()


def test_files_dropped_from_the_pack_are_removed(small_pack, tmp_path, monkeypatch):
    dest = tmp_path / "demo"
    build_demo_library(dest)
    (dest / "keep_me.wav").write_bytes(b"user file")
    fewer = small_pack[:3]
    monkeypatch.setattr(demo, "_specs", lambda: list(fewer))
    files = build_demo_library(dest, force=True)
    assert [p.relative_to(dest).as_posix() for p in files] == [s.path for s in fewer]
    left = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert left == {s.path for s in fewer} | {MANIFEST_NAME, "keep_me.wav"}


def test_small_build_is_deterministic(small_pack, tmp_path):
    build_demo_library(tmp_path / "a")
    build_demo_library(tmp_path / "b")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")  # OGG too: its serial is fixed
    d = decode(tmp_path / "a" / "Drums/HiHats/hihat_closed_bright_05.ogg")
    assert d.info.format == "OGG" and d.info.frames > 0


# -- synth helpers used by the test fixtures ------------------------------------------------

@pytest.mark.parametrize("genre", demo.DRUM_GENRES)
def test_drum_loop_is_bar_exact(genre):
    y = demo.drum_loop(genre, bpm=97, bars=2, sr=22050, seed=3)
    assert y.shape == (demo.bar_frames(bpm=97, bars=2, sr=22050), 2)
    assert np.isfinite(y).all() and np.abs(y).max() == pytest.approx(1.0)


def test_chord_loop_is_bar_exact_in_any_key():
    for key in ("F# major", "Eb minor"):
        y = demo.chord_loop(key, bpm=100, bars=1, sr=22050)
        assert y.shape == (demo.bar_frames(bpm=100, bars=1, sr=22050), 2)
    with pytest.raises(ValueError):
        demo.chord_loop("H dorian", bpm=100, bars=1)


def test_drum_hit_names():
    assert len(demo.DRUM_HITS) >= 25
    with pytest.raises(ValueError):
        demo.drum_hit("cowbell_of_doom")


# -- the audio fixtures other tests use (tests/fixtures_audio.py) ---------------------------

def test_click_track_is_bar_exact_with_clicks_on_beats():
    from fixtures_audio import click_track

    y = click_track(100, 2, sr=22050)
    assert y.shape == (demo.bar_frames(bpm=100, bars=2, sr=22050),) and y.dtype == np.float32
    starts = np.flatnonzero((np.abs(y) > 1e-3) & (np.abs(np.roll(y, 1)) <= 1e-3))
    expected = [round(i * 0.6 * 22050) for i in range(8)]
    assert all(min(abs(s - e) for s in starts) <= 1 for e in expected)


def test_audio_folder_fixture_holds_the_truth_files(audio_folder):
    from fixtures_audio import AUDIO_FOLDER_TRUTH

    found = {p.relative_to(audio_folder).as_posix() for p in audio_folder.rglob("*")
             if p.is_file()}
    assert found == set(AUDIO_FOLDER_TRUTH)
    for rel, truth in AUDIO_FOLDER_TRUTH.items():
        d = decode(audio_folder / rel)
        if truth["kind"] == "loop":
            assert d.info.frames == demo.bar_frames(bpm=truth["bpm"], bars=truth["bars"],
                                                    sr=d.info.sr), rel


def test_bad_file_factory_makes_every_case_cheaply(tmp_path):
    from fixtures_audio import BAD_FILES, make_bad_files

    files = make_bad_files(tmp_path)
    assert set(files) == set(BAD_FILES)
    hour = files["hour_long"]
    assert hour.stat().st_size > 600e6
    assert hour.stat().st_blocks * 512 < 1e6  # sparse: nothing was really written
    assert os.fsencode(files["non_utf8_name"].name) == b"caf\xe9_loop.wav"
    assert files["symlink_loop"].is_symlink()
    assert (files["dir_symlink_loop"] / "sub").resolve() == files["dir_symlink_loop"].resolve()


def test_isolated_home(loopmind_home):
    from loopmind.config import get_settings

    settings = get_settings()
    assert os.environ["LOOPMIND_HOME"] == str(loopmind_home)
    assert settings.data_dir == loopmind_home and settings.demo_dir.is_relative_to(loopmind_home)
    assert not loopmind_home.exists()  # nothing created until LoopMind needs it

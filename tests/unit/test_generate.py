"""Making songs end to end on the demo library: the issue's quality checks, determinism and
bad input."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from fixtures_audio import permissions_enforced
from loopmind.errors import LoopMindError
from loopmind.generate.song import Song


@pytest.fixture(scope="module")
def song_dir(indexed_demo, tmp_path_factory):
    """One full-length song (the README's main job), made once for the module."""
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    out = tmp_path_factory.mktemp("song") / "dark-trap"
    res = generate_song(lib, "dark trap 140 in F minor", folder=str(root), seed=7, out_dir=out)
    return res, out


def _load(out):
    song = Song.from_dict(json.loads((out / "arrangement.json").read_text()))
    y, sr = sf.read(out / "master.wav", dtype="float32", always_2d=True)
    return song, y, sr


def test_output_folder_holds_the_four_kinds_of_files(song_dir):
    res, out = song_dir
    assert (out / "master.wav").exists() and (out / "arrangement.json").exists()
    assert (out / "song.mid").exists()
    stems = sorted(p.name for p in (out / "stems").iterdir())
    song, _, _ = _load(out)
    assert len(stems) == len(song.tracks) >= 4
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_tempo_sections_and_bar_lines(song_dir):
    from loopmind.library.analysis.tempo import estimate_tempo
    from loopmind.library.audio import decode

    res, out = song_dir
    song, y, sr = _load(out)
    assert song.bpm == 140 and song.key == "F minor"
    assert len({s.name for s in song.sections}) >= 3
    for t in song.tracks:
        for c in t.clips:
            assert c.start_bar == int(c.start_bar) and c.bars == int(c.bars)  # on bar lines
            if not c.is_pattern:
                r = c.stretch
                assert 0.8 - 1e-6 <= r <= 1.25 + 1e-6
                # the ratio is exactly what makes the loop fill its bars at the song tempo
                assert abs((c.source_end_s - c.source_start_s) / r
                           - c.source_bars * song.bar_s) < 0.02
    # the master's tempo, measured blind (no loop-length hint) section by section: the
    # median over sections must be within 1% of the song's (half and double time allowed)
    dec = decode(out / "master.wav", sr=22050)
    measured = []
    for sec in song.sections:
        a, b = (int(x * song.bar_s * 22050) for x in (sec.start_bar, sec.end_bar))
        est = estimate_tempo(dec.y[a:b], sr=22050, is_loop=False)
        if est.bpm:
            measured.append(min(abs(est.bpm / song.bpm - m) / m for m in (0.5, 1.0, 2.0)))
    assert len(measured) >= 3
    assert float(np.median(measured)) < 0.01, measured


def test_loudness_and_peak(song_dir):
    import pyloudnorm

    res, out = song_dir
    song, y, sr = _load(out)
    assert np.max(np.abs(y)) < 1.0
    lufs = pyloudnorm.Meter(sr).integrated_loudness(y)
    assert abs(lufs - song.master.target_lufs) <= 1.0
    assert res.mix_report["master_true_peak_dbtp"] <= song.master.ceiling_dbtp + 0.05


def test_melodic_stems_are_in_the_song_key(song_dir):
    from loopmind.index.search import keys_compatible
    from loopmind.library.analysis.key import estimate_key, relative
    from loopmind.library.audio import decode

    res, out = song_dir
    song, _, _ = _load(out)
    checked = 0
    for t in song.tracks:
        if t.role not in ("bass", "keys", "pad", "lead"):
            continue
        dec = decode(out / "stems" / f"{t.name}.wav", sr=22050)
        est = estimate_key(dec.y, sr=22050)
        if t.role == "bass":
            # a bass line alone rarely settles its key: its fifth neighbours are accepted
            assert keys_compatible(song.key, est.key), (t.name, est)
        else:
            assert est.key in (song.key, relative(song.key)), (t.name, est)
            checked += 1
    assert checked >= 2


def test_same_seed_same_master_other_seed_other_song(indexed_demo, tmp_path):
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    a = generate_song(lib, "house", folder=str(root), seed=3, minutes=0.5, out_dir=tmp_path / "a")
    # keep_audio (what the studio asks for) returns the render and the mix, same files
    b = generate_song(lib, "house", folder=str(root), seed=3, minutes=0.5, out_dir=tmp_path / "b",
                      keep_audio=True)
    c = generate_song(lib, "house", folder=str(root), seed=4, minutes=0.5, out_dir=tmp_path / "c")
    ma = (tmp_path / "a" / "master.wav").read_bytes()
    assert ma == (tmp_path / "b" / "master.wav").read_bytes()
    ja = json.loads((tmp_path / "a" / "arrangement.json").read_text())
    jc = json.loads((tmp_path / "c" / "arrangement.json").read_text())
    clips = lambda j: [(c["source_path"], c["start_bar"]) for t in j["tracks"]
                       for c in t["clips"]]  # noqa: E731
    assert clips(ja) != clips(jc) or ma != (tmp_path / "c" / "master.wav").read_bytes()
    assert b.summary["cache"]["hits"] >= 1  # the second render came from the cache
    assert a.tracks is None and a.mix is None
    assert set(b.tracks) == {t.name for t in b.song.tracks}
    from loopmind.app.session import playback_from_mix

    played = playback_from_mix(b.song, b.mix)
    live = sum(y for name, y in played.stems.items()
               if not b.song.track(name).mix.mute) + sum(played.returns.values())
    master, _ = sf.read(tmp_path / "b" / "master.wav", dtype="float32", always_2d=True)
    assert live.shape[1] == master.shape[0]
    assert np.abs(live.T - master).max() < 2e-3  # 24-bit file vs float sum
    del a, c


def test_variation_between_sections(song_dir):
    res, out = song_dir
    song, _, _ = _load(out)
    sources = {c.source_path for t in song.tracks for c in t.clips if not c.is_pattern}
    by_track = [len({c.source_path for c in t.clips}) for t in song.tracks]
    assert len(sources) >= 5 and max(by_track) >= 2


def test_pattern_drums(indexed_demo, tmp_path):
    from loopmind.generate import arrange
    from loopmind.generate.pool import Pool, load_pool
    from loopmind.generate.prompt import parse_prompt

    lib, root = indexed_demo
    full = load_pool(lib, folder=str(root))
    no_loops = Pool([i for i in full.items if i.role != "drumloop"], "test")
    song = arrange.arrange(no_loops, parse_prompt("trap 140 F minor"), seed=0, minutes=1)
    kick = song.track("kick")
    assert kick is not None and kick.clips and all(c.is_pattern for c in kick.clips)
    for c in kick.clips:
        assert all(0 <= s < c.bars * 16 and 0 < v <= 1 for s, v in c.steps)


def test_the_genre_swing_plays_in_the_patterns(indexed_demo, tmp_path):
    """Boom bap swings its 16ths (the genre's 0.25), trap plays them straight; the swing is
    part of the arrangement file, and the rendered hits sit where the swing puts them."""
    from loopmind.generate import arrange
    from loopmind.generate.pool import Pool, load_pool
    from loopmind.generate.prompt import parse_prompt
    from loopmind.generate.render import render_clip
    from loopmind.generate.styles import GENRES

    lib, root = indexed_demo
    full = load_pool(lib, folder=str(root))
    no_loops = Pool([i for i in full.items if i.role != "drumloop"], "test")
    song = arrange.arrange(no_loops, parse_prompt("boom bap 90 in A minor"), seed=0, minutes=1)
    assert song.swing == GENRES["boom bap"].swing > 0
    assert arrange.arrange(no_loops, parse_prompt("trap 140"), seed=0, minutes=1).swing == 0
    assert Song.from_dict(json.loads(song.to_json())).swing == song.swing
    assert Song.from_dict({k: v for k, v in song.to_dict().items() if k != "swing"}).swing == 0
    hats = next(t for t in song.tracks if t.role == "hihat")
    clip = next(c for c in hats.clips if any(s % 2 for s, v in c.steps if v > 0))
    y = render_clip(clip, song, role="hihat")[0]
    origin = song.bar_to_sample(clip.start_bar)
    for s, v in clip.steps:
        at = song.step_to_sample(clip.start_bar, s) - origin
        straight = song.bar_to_sample(clip.start_bar + s / 16) - origin
        assert (at > straight) == bool(s % 2)
        assert np.abs(y[at:at + 64]).max() > 0  # a hit starts there


def test_semitones_to():
    from loopmind.generate.arrange import semitones_to

    assert semitones_to("F minor", "F minor") == 0
    assert semitones_to("G minor", "F minor") == -2
    assert semitones_to("Ab major", "F minor") == 0  # relative keys share their notes
    assert semitones_to("C major", "F minor") == -4  # via A minor, its relative
    assert semitones_to("B minor", "F minor") == 6
    assert semitones_to(None, "F minor") is None


# -- bad input -------------------------------------------------------------------------------


def test_empty_folder_and_unknown_tag(indexed_demo, tmp_path):
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoopMindError, match="not in the library|no sounds"):
        generate_song(lib, "", folder=str(empty), out_dir=tmp_path / "o")
    with pytest.raises(LoopMindError, match="no sounds for tag"):
        generate_song(lib, "", tag="nosuchtag", out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_unknown_key_spelling(indexed_demo, tmp_path):
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    with pytest.raises(LoopMindError, match="not a key"):
        generate_song(lib, "", folder=str(root), key="H minor", out_dir=tmp_path / "o")


def test_pool_missing_roles_says_what_was_done(indexed_demo, tmp_path):
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    res = generate_song(lib, "trap 140 F minor", folder=str(root / "Pads"), seed=0,
                        minutes=0.5, out_dir=tmp_path / "pads")
    assert any("no kick" in n or "no bass" in n for n in res.song.notes)
    assert (tmp_path / "pads" / "master.wav").exists()


@pytest.mark.skipif(not permissions_enforced(), reason="running as root: chmod is not enforced")
def test_unwritable_output_folder(indexed_demo, tmp_path):
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        with pytest.raises(LoopMindError, match="cannot write|permission"):
            generate_song(lib, "", folder=str(root), minutes=0.5, out_dir=ro / "song")
        assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o700)


def test_output_path_is_a_file(indexed_demo, tmp_path):
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    f = tmp_path / "afile"
    f.write_text("mine")
    with pytest.raises(LoopMindError):
        generate_song(lib, "", folder=str(root), minutes=0.5, out_dir=f)
    assert f.read_text() == "mine"


def test_cli_generate_json(audio_folder, tmp_path):
    from loopmind.cli import main
    from loopmind.config import set_settings

    set_settings(None)
    r = CliRunner().invoke(main, ["add", str(audio_folder)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = tmp_path / "song"
    r = CliRunner().invoke(main, ["generate", "lofi chill", "--minutes", "0.5", "--seed", "2",
                                  "--out", str(out), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert os.path.exists(doc["paths"]["master"]) and doc["arrangement"]["sections"]
    r = CliRunner().invoke(main, ["generate", "--key", "Q minor", "--out", str(out)])
    assert r.exit_code == 1 and "not a key" in r.output and "Traceback" not in r.output

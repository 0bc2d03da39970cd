"""Hybrid mode: fills before section changes, risers into drops, loop variations,
determinism, loudness, the MIDI export of generated parts and their slices, small pools."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from loopmind.generate.song import STEPS_PER_BAR, Song

DRUM_ROLES = {"drumloop", "kick", "snare", "clap", "hihat", "perc", "tom"}


@pytest.fixture(scope="module")
def hybrid(indexed_demo, tmp_path_factory):
    """One hybrid house song (1.5 minutes), made once for the module."""
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    out = tmp_path_factory.mktemp("hybrid") / "a"
    res = generate_song(lib, "house", folder=str(root), seed=11, minutes=1.5, mode="hybrid",
                        out_dir=out)
    return res, out


def _song(out) -> Song:
    return Song.from_dict(json.loads((out / "arrangement.json").read_text()))


def test_fills_end_the_sections_that_another_follows(hybrid):
    res, out = hybrid
    song = _song(out)
    assert song.mode == "hybrid"
    fills = {}
    for t in song.tracks:
        for c in t.clips:
            if c.is_sequence and c.generated and t.role in DRUM_ROLES | {"tom"}:
                fills.setdefault(c.start_bar, []).append((t, c))
    # every section that drums play to the end of (a clip of the direct arrangement covers
    # its second-to-last bar; the last one is the fill's) and that another follows
    changes = [s.end_bar for s in song.sections[:-1]
               if any(c.start_bar <= s.end_bar - 2 < c.end_bar and not c.generated
                      for t in song.tracks if t.role in DRUM_ROLES for c in t.clips)]
    assert changes and all(b - 1 in fills for b in changes), (changes, sorted(fills))
    for bar, found in fills.items():
        events = [e for _, c in found for e in c.events]
        assert all(0 <= e.step < STEPS_PER_BAR and e.step + e.length <= STEPS_PER_BAR
                   for e in events)
        assert max(e.step for e in events) >= STEPS_PER_BAR // 2  # the fill is at the end
        # nothing else of the drums plays there: a drum loop's clip stops a bar early
        for t in song.tracks:
            if t.role == "drumloop":
                assert not any(c.start_bar <= bar < c.end_bar and not c.generated
                               for c in t.clips), (t.name, bar)


def test_a_riser_leads_into_every_drop_and_hook(hybrid):
    res, out = hybrid
    song = _song(out)
    risers = song.track("risers")
    assert risers is not None and all(c.generated and c.texture["kind"] == "riser"
                                      for c in risers.clips)
    peaks = [s for s in song.sections if s.name in ("drop", "hook") and s.start_bar >= 2]
    assert peaks
    for s in peaks:
        assert any(c.end_bar == s.start_bar for c in risers.clips), s
    # the riser really rises in the stem: its last half bar is far louder than its first
    y, sr = sf.read(out / "stems" / "risers.wav", dtype="float32", always_2d=True)
    c = risers.clips[0]
    a, b = song.bar_to_sample(c.start_bar), song.bar_to_sample(c.end_bar)
    half = int(song.bar_s * sr / 2)
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)) + 1e-12)  # noqa: E731
    assert 20 * np.log10(rms(y[b - half:b]) / rms(y[a:a + half])) > 10


def test_the_main_loop_varies(hybrid):
    res, out = hybrid
    song = _song(out)
    varied = [(t, c) for t in song.tracks for c in t.clips
              if c.generated and t.role in ("keys", "lead", "pad", "strings", "guitar", "bass")]
    assert varied
    for t, c in varied:
        # the variation replaces bars of the loop, it is not played on top of it
        assert not any(o is not c and not o.generated and o.start_bar < c.end_bar
                       and o.end_bar > c.start_bar for o in t.clips)


def test_master_loudness_and_peak(hybrid):
    import pyloudnorm

    res, out = hybrid
    song = _song(out)
    y, sr = sf.read(out / "master.wav", dtype="float32", always_2d=True)
    assert np.max(np.abs(y)) < 1.0
    assert abs(pyloudnorm.Meter(sr).integrated_loudness(y) - song.master.target_lufs) <= 1.0
    assert res.mix_report["master_true_peak_dbtp"] <= song.master.ceiling_dbtp + 0.05


def test_midi_holds_the_generated_notes_named_by_slice(hybrid):
    import mido

    res, out = hybrid
    song = _song(out)
    mid = mido.MidiFile(out / "song.mid")
    slice_tracks = {t.name: t for t in mid.tracks if t.name.endswith(" slices")}
    expected = {t.name for t in song.tracks if any(c.is_sequence for c in t.clips)}
    assert {n.removesuffix(" slices") for n in slice_tracks} == expected
    for t in song.tracks:
        if t.name not in expected:
            continue
        events = [e for c in t.clips if c.is_sequence for e in c.events]
        mt = slice_tracks[f"{t.name} slices"]
        ons = [m for m in mt if m.type == "note_on" and m.velocity > 0]
        lyrics = [m.text for m in mt if m.type == "lyrics"]
        assert len(ons) == len(events)
        assert sorted(lyrics) == sorted(e.slice_id for e in events)
        legend = [m.text for m in mt if m.type == "text"]
        assert len(legend) == len({e.slice_id for e in events})
        assert all(" s" in x and "note " in x for x in legend)
        if t.role in DRUM_ROLES:
            assert all(m.channel == 9 for m in ons)


def test_same_seed_same_song_other_seed_other_song(indexed_demo, hybrid, tmp_path):
    from loopmind.generate.compose import generate_song

    lib, root = indexed_demo
    res, out = hybrid
    generate_song(lib, "house", folder=str(root), seed=11, minutes=1.5, mode="hybrid",
                  out_dir=tmp_path / "b")
    generate_song(lib, "house", folder=str(root), seed=12, minutes=1.5, mode="hybrid",
                  out_dir=tmp_path / "c")
    ja = (out / "arrangement.json").read_text()
    assert ja == (tmp_path / "b" / "arrangement.json").read_text()
    assert (out / "master.wav").read_bytes() == (tmp_path / "b" / "master.wav").read_bytes()

    def generated(text):
        return [(t["name"], c["start_bar"], c["events"], c["texture"])
                for t in json.loads(text)["tracks"] for c in t["clips"] if c["generated"]]

    assert generated(ja) != generated((tmp_path / "c" / "arrangement.json").read_text())


def test_pattern_drums_make_room_for_fills(indexed_demo):
    from loopmind.generate import arrange
    from loopmind.generate.hybrid import add_hybrid_parts
    from loopmind.generate.pool import Pool, load_pool
    from loopmind.generate.prompt import parse_prompt

    lib, root = indexed_demo
    pool = load_pool(lib, folder=str(root))
    pool = Pool(items=[i for i in pool.items if i.role != "drumloop"], source=pool.source)
    song = arrange.arrange(pool, parse_prompt("trap"), seed=2, minutes=1.0)
    before = {t.name: [list(c.steps or []) for c in t.clips] for t in song.tracks}
    add_hybrid_parts(song, pool, seed=2)
    fills = [(t, c) for t in song.tracks for c in t.clips if c.is_sequence]
    assert fills
    for t, c in fills:
        first = min(e.step for e in c.events)
        for o in t.clips:
            if o.is_pattern and o.start_bar <= c.start_bar < o.end_bar:
                a = (c.start_bar - o.start_bar) * STEPS_PER_BAR
                assert not [s for s, _ in o.steps if a + first <= s < a + STEPS_PER_BAR]
    # steps outside the fills are untouched
    kick = song.track("kick")
    assert kick is not None
    assert sum(len(c.steps) for c in kick.clips if c.is_pattern) > \
        0.6 * sum(len(s) for s in before["kick"])


def test_variations_are_not_copies_of_the_loop(indexed_demo, tmp_path):
    """Every bar of a re-sliced or granular variation differs from every bar of its loop."""
    from loopmind.generate import arrange
    from loopmind.generate.hybrid import _granular, _reslice
    from loopmind.generate.pool import load_pool
    from loopmind.generate.prompt import parse_prompt
    from loopmind.generate.render import StretchCache, load_source, render_clip
    from tests.unit.test_textures import max_ncc

    lib, root = indexed_demo
    pool = load_pool(lib, folder=str(root))
    song = arrange.arrange(pool, parse_prompt("house"), seed=1, minutes=1.0)
    track = next(t for t in song.tracks if t.role in ("keys", "lead"))
    clip = next(c for c in track.clips if c.source_bars)
    cache = StretchCache(tmp_path / "cache")
    src = load_source(clip.source_path, clip.source_start_s, clip.source_end_s,
                      sr=song.sample_rate).mean(axis=0)
    n_src_bar = len(src) // int(round(clip.source_bars))
    src_bars = [src[i * n_src_bar:(i + 1) * n_src_bar] for i in range(int(clip.source_bars))]
    n_bar = int(round(song.bar_s * song.sample_rate))
    for seed, make in ((1, _reslice), (2, _granular)):
        var = make(song, clip, clip.start_bar, clip.start_bar + 2, np.random.default_rng(seed))
        y = render_clip(var, song, cache, role=track.role).mean(axis=0)
        for i in range(2):
            bar = y[i * n_bar:(i + 1) * n_bar]
            worst = max(max_ncc(bar, sb) for sb in src_bars)
            assert worst < 0.9, (make.__name__, i, worst)


# -- small and bad pools ---------------------------------------------------------------------

@pytest.fixture
def small_library(audio_folder):
    """The small audio folder plus a silent, a noise-only and a one-sample file, added to the
    test's library through the CLI."""
    from click.testing import CliRunner
    from fixtures_audio import noise, silence, write_audio

    from loopmind.cli import main

    write_audio(audio_folder / "oneshots" / "silence.wav", silence(2.0))
    write_audio(audio_folder / "oneshots" / "noise.wav", noise(2.0))
    write_audio(audio_folder / "oneshots" / "one.wav", np.array([0.5], dtype=np.float32))
    r = CliRunner().invoke(main, ["add", str(audio_folder)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "silence.wav" in r.output  # refused by the indexer, with a message
    return audio_folder


@pytest.mark.parametrize("mode", ["hybrid", "interpret"])
def test_cli_small_pool_falls_back_and_says_so(small_library, tmp_path, mode):
    """Hybrid and interpretive modes on a tiny pool with bad files (interpretive mode's
    learner is in ``interpret``; its skip and fallback messages are checked here too)."""
    from click.testing import CliRunner

    from loopmind.cli import main

    out = tmp_path / mode
    r = CliRunner().invoke(main, ["generate", "lofi chill", "--minutes", "0.5", "--mode", mode,
                                  "--seed", "1", "--out", str(out), "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    notes = "\n".join(doc["arrangement"]["notes"])
    song = _song(out)
    assert song.mode == mode
    assert any(c.generated for t in song.tracks for c in t.clips)
    assert doc["master"]["master_true_peak_dbtp"] <= song.master.ceiling_dbtp + 0.05
    if mode == "hybrid":
        assert "drum fill" in notes and "riser" in notes
    else:
        # the one-sample and noise-only files are skipped with a message, and a pool this
        # small is ordered by a Markov chain instead of the trained model
        assert "one.wav" in notes and "noise.wav" in notes and "skipped" in notes
        assert "Markov" in notes


def test_hybrid_without_drums_or_fx_says_what_it_left_out(indexed_demo):
    from loopmind.generate import arrange
    from loopmind.generate.hybrid import add_hybrid_parts
    from loopmind.generate.pool import Pool, load_pool
    from loopmind.generate.prompt import parse_prompt

    lib, root = indexed_demo
    full = load_pool(lib, folder=str(root))
    pool = Pool(items=[i for i in full.items if i.role in ("keys", "bass")], source="keys")
    song = arrange.arrange(pool, parse_prompt("house"), seed=1, minutes=1.0)
    notes = add_hybrid_parts(song, pool, seed=1)
    assert any("no fills" in n for n in notes)
    assert not any(c.is_sequence and t.role in DRUM_ROLES for t in song.tracks
                   for c in t.clips)


def test_export_holds_the_slices_the_midi_names(hybrid):
    res, out = hybrid
    song = _song(out)
    doc = json.loads((out / "arrangement.json").read_text())
    names = {e.slice_id for t in song.tracks for c in t.clips for e in c.events or []}
    assert set(doc["files"]["slices"]) == names
    for name, rel in doc["files"]["slices"].items():
        info = sf.info(out / rel)
        assert info.samplerate == song.sample_rate and info.frames > 0
    assert set(res.paths["slices"]) == names


def test_midi_slot_notes_for_a_sliced_instrument(tmp_path):
    import mido

    from loopmind.generate.midi import SLICE_ROOT, write_midi
    from loopmind.generate.song import Clip, Section, SliceEvent, Track

    def ev(step, k, pitch=None):
        return SliceEvent(step=step, length=2, source_path="/x/loop.wav",
                          source_start_s=k * 0.25, source_end_s=k * 0.25 + 0.25,
                          velocity=0.5, pitch=pitch, slice_id=f"loop#1.{k}")

    keys = Track("keys", "keys", [Clip(0, 1, "/x/loop.wav", 0.0, 1.0, generated=True,
                                       events=[ev(0, 2), ev(4, 0), ev(8, 2), ev(12, 1)])])
    lead = Track("lead", "lead", [Clip(1, 1, "/x/loop.wav", 0.0, 1.0, generated=True,
                                       events=[ev(0, 0, pitch=64), ev(2, 1, pitch=67)])])
    loop = Track("drumloop", "drumloop", [Clip(0, 1, "/x/loop.wav", 0.0, 1.0, generated=True,
                                               events=[ev(0, 0), ev(3, 1)])])
    song = Song(bpm=120.0, key="A minor", sections=[Section("intro", 0, 2)],
                tracks=[keys, lead, loop])
    mid = mido.MidiFile(write_midi(song, tmp_path / "s.mid"))
    tracks = {t.name: t for t in mid.tracks}

    def notes(name):
        return [(m.note, m.velocity) for m in tracks[name] if m.type == "note_on"]

    # slots in order of first use; the same slice is the same note
    assert notes("keys slices") == [(SLICE_ROOT, 64), (SLICE_ROOT + 1, 64), (SLICE_ROOT, 64),
                                    (SLICE_ROOT + 2, 64)]
    assert [n for n, _ in notes("lead slices")] == [64, 67]
    assert not [m for m in tracks["keys"] if m.type == "note_on"]  # not also as a loop note
    on = [m for m in tracks["drumloop slices"] if m.type == "note_on"]
    assert on and all(m.channel != 9 for m in on)  # slots, not GM drums
    ticks = 0
    starts = []
    for m in tracks["lead slices"]:
        ticks += m.time
        if m.type == "note_on":
            starts.append(ticks)
    assert starts == [4 * 480, 4 * 480 + 2 * 120]  # bar 2, then two 16ths later


def test_generated_event_bars_are_not_copies_of_their_sources(hybrid, indexed_demo):
    """Every bar of a generated part (fills, re-sliced loops), rendered alone, against every
    bar of the loops its slices come from: normalized cross-correlation below 0.9."""
    from scipy.signal import resample_poly

    from loopmind.generate.interpret.measures import novelty
    from loopmind.generate.pool import load_pool
    from loopmind.generate.render import load_source, render_clip

    res, out = hybrid
    song = _song(out)
    lib, root = indexed_demo
    items = {i.path: i for i in load_pool(lib, folder=str(root)).items}
    sr = 11025
    checked = 0
    for t in song.tracks:
        for c in t.clips:
            if not (c.is_sequence and c.generated):
                continue
            bars = []
            for path in sorted({e.source_path for e in c.events}):
                it = items[path]
                y = load_source(path, it.start_s, it.end_s, sr=sr).mean(axis=0)
                n = it.loop_bars or 1
                bars += [y[i * len(y) // n:(i + 1) * len(y) // n] for i in range(n)]
            y = resample_poly(render_clip(c, song, None, role=t.role).mean(axis=0), sr,
                              song.sample_rate)
            n_bar = int(round(song.bar_s * sr))
            for b in range(c.bars):
                bar = y[b * n_bar:(b + 1) * n_bar]
                if np.sqrt(np.mean(bar ** 2)) > 1e-3:
                    assert novelty(bar, bars, sr=sr) < 0.9, (t.name, c.start_bar + b)
                    checked += 1
    assert checked >= 3


def test_grid_slicer_names_the_drums_of_a_loop(tmp_path):
    """The fallback slicer (when the onset slicer finds nothing) tells kick, snare and hat
    apart by the same rule as the interpretive slicer, and skips steps where nothing starts."""
    import soundfile as sf

    from loopmind.generate import hybrid as hybrid_mod
    from loopmind.generate.song import Clip

    sr, bpm = 22050, 120.0
    step_n = int(round(sr * 60.0 / bpm / 4))
    rng = np.random.default_rng(5)
    y = np.zeros(16 * step_n, dtype=np.float32)
    env = np.exp(-np.arange(step_n) / (0.02 * sr)).astype(np.float32)
    t = np.arange(step_n) / sr
    kick = np.sin(2 * np.pi * 55 * t).astype(np.float32) * env
    hat = np.diff(rng.standard_normal(step_n + 1)).astype(np.float32) * env * 0.5
    from scipy.signal import butter, sosfilt
    snare = sosfilt(butter(2, [300, 2500], "bandpass", fs=sr, output="sos"),
                    rng.standard_normal(step_n)).astype(np.float32) * env * 2
    plan = {0: kick, 4: snare, 8: kick, 12: snare, 2: hat, 6: hat, 10: hat, 14: hat}
    for k, hit in plan.items():
        y[k * step_n:(k + 1) * step_n] += hit * 0.8 / np.max(np.abs(hit))
    path = tmp_path / "loop.wav"
    sf.write(path, y, sr)
    clip = Clip(0, 1, str(path), 0.0, len(y) / sr, segment_id=7, source_bpm=bpm, source_bars=1)
    got = hybrid_mod._grid_slices(clip, bars=1, sr=sr, notes=[])
    assert {k: part for part, *_rest, k, _len in got} == \
        {k: ("kick" if h is kick else "snare" if h is snare else "hihat") for k, h in plan.items()}

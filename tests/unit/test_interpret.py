"""Interpretive mode, the learning and sequencing half: slicing on the grid, pitch tracking,
the sequence model (GRU, Markov fallback, cache), generated parts (determinism, key, copy
guard, fallbacks) and the novelty / fidelity measures."""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from fixtures_audio import drum_hit, noise, silence, tone, write_audio
from loopmind.generate.pool import Pool, PoolItem
from loopmind.generate.song import STEPS_PER_BAR, Section, Song

SR = 44100
F_MINOR = {5, 7, 8, 10, 0, 1, 3}


def _midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def _item(i: int, path: Path, *, role: str, kind: str = "loop", bpm: float | None = None,
          bars: float | None = None, key: str | None = None, duration_s: float) -> PoolItem:
    return PoolItem(id=i, path=str(path), start_s=0.0, end_s=duration_s, kind=kind, role=role,
                    bpm=bpm, bpm_confidence=1.0, key=key, bars=bars, lufs=None)


def _demo_pool(root: Path, keep=None) -> Pool:
    """The demo library as a pool, with the manifest's roles, tempi and keys (no indexing)."""
    from loopmind.demo import read_manifest

    items = []
    for i, f in enumerate(read_manifest(root)["files"]):
        if keep is None or keep(f):
            items.append(_item(i + 1, root / f["path"], role=f["role"], kind=f["kind"],
                               bpm=f["bpm"], bars=f["bars"], key=f["key"],
                               duration_s=f["duration_s"]))
    return Pool(items=items, source="demo")


@pytest.fixture(scope="module")
def interp(demo_library, tmp_path_factory):
    """The demo pool sliced, a 1-minute trap skeleton and its interpretive parts (seed 3),
    with caches in one module-wide home."""
    import torch

    from loopmind.config import Settings
    from loopmind.generate import arrange
    from loopmind.generate.interpret.parts import interpret_parts
    from loopmind.generate.interpret.slices import slice_pool
    from loopmind.generate.prompt import parse_prompt

    torch.set_num_threads(1)
    settings = Settings.from_env({"LOOPMIND_HOME": str(tmp_path_factory.mktemp("interp"))})
    pool = _demo_pool(demo_library)
    bank = slice_pool(pool, settings=settings)
    song = arrange.arrange(pool, parse_prompt("dark trap 140 in F minor"), seed=3, minutes=1.0)
    progress: list[tuple[str, float]] = []
    tracks, notes = interpret_parts(song, pool, seed=3, settings=settings, budget_s=8.0,
                                    on_progress=lambda s, f: progress.append((s, f)))
    return dict(settings=settings, pool=pool, bank=bank, song=song, tracks=tracks,
                notes=notes, progress=progress)


def _events(tracks):
    return [(t.name, c.start_bar, e.step, e.length, e.slice_id, e.semitones, e.velocity,
             e.pitch) for t in tracks for c in t.clips for e in c.events]


# -- slicing and pitch ------------------------------------------------------------------------

def test_slicing_finds_known_onsets_on_grid(tmp_path):
    from loopmind.generate.interpret.slices import ANALYSIS_SR, slice_item

    bpm, steps = 120.0, [0, 3, 6, 8, 10, 14, 20, 24, 27, 30]
    step_s = 60.0 / bpm / 4
    n = int(round(2 * 240.0 / bpm * SR))
    y = np.zeros(n, dtype=np.float32)
    for k, st in enumerate(steps):
        hit = drum_hit("kick_punchy" if k % 2 == 0 else "snare_tight")
        at = int(round(st * step_s * SR))
        seg = hit[: n - at]
        y[at: at + len(seg)] += seg
    path = tmp_path / "beat.wav"
    write_audio(path, y)
    item = _item(1, path, role="drumloop", bpm=bpm, bars=2, duration_s=n / SR)
    from loopmind.generate.render import load_source

    mono = load_source(path, 0.0, n / SR, sr=ANALYSIS_SR).mean(axis=0)
    slices, note = slice_item(item, mono)
    assert note is None
    assert [s.step for s in slices] == steps
    for s, st in zip(slices, steps):
        assert abs(s.start_s - st * step_s) < 0.006  # the slice starts at its attack
        assert s.loop_steps == 32 and s.drum_class in ("kick", "snare", "hihat")
    assert [s.length for s in slices] == [b - a for a, b in zip(steps, steps[1:] + [32])]


def test_pitch_tracker_finds_known_pitches():
    from loopmind.generate.interpret.slices import slice_pitch

    for midi in (28, 33, 40, 45, 52, 57, 64, 69, 76):
        y = tone(_midi_hz(midi), 0.25, sr=22050, harmonics=5)
        pitch, conf = slice_pitch(y, sr=22050)
        assert pitch is not None and abs(pitch - midi) < 0.15, (midi, pitch)
        assert conf > 0.8
    pitch, _ = slice_pitch(noise(0.3, sr=22050), sr=22050)
    assert pitch is None  # noise has no pitch


def test_bass_loop_slices_follow_the_score(interp):
    """The demo's 808 bass (F1:10 F1:2 F1:4 | Db2:6 Db2:4 Db2:6 | Bb1:10 Bb1:2 C2:4 |
    C2:6 C2:4 E1:2 F1:4): every note found on its step with its pitch."""
    slices = [s for s in interp["bank"].slices if "bass_Fmin_140bpm" in s.path]
    assert [s.step for s in slices] == [0, 10, 12, 16, 22, 26, 32, 42, 44, 48, 54, 58, 60]
    want = [29, 29, 29, 37, 37, 37, 34, 34, 36, 36, 36, 28, 29]
    assert [round(s.pitch) for s in slices] == want
    assert all(abs(s.pitch - w) < 0.2 for s, w in zip(slices, want))


def test_silence_noise_and_one_sample_files_are_skipped_with_a_message(tmp_path):
    from loopmind.config import Settings
    from loopmind.generate.interpret.slices import slice_pool

    files = {"quiet.wav": silence(1.0), "hiss.wav": noise(1.0, amplitude=0.3),
             "blip.wav": np.array([0.5], dtype=np.float32),
             "note.wav": tone(_midi_hz(45), 0.5, harmonics=4)}
    items = []
    for i, (name, y) in enumerate(files.items()):
        write_audio(tmp_path / name, y)
        items.append(_item(i + 1, tmp_path / name, role="bass", kind="oneshot",
                           duration_s=len(y) / SR))
    settings = Settings.from_env({"LOOPMIND_HOME": str(tmp_path / "home")})
    bank = slice_pool(Pool(items=items, source="t"), settings=settings)
    text = "\n".join(bank.notes)
    assert "quiet.wav: silent" in text
    assert "hiss.wav: only noise" in text
    assert "blip.wav: too short" in text
    assert [Path(s.path).name for s in bank.slices] == ["note.wav"]
    assert abs(bank.slices[0].pitch - 45) < 0.2
    # the bank is cached: a second call reads it; a corrupt cache file is rebuilt
    again = slice_pool(Pool(items=items, source="t"), settings=settings)
    assert again.from_cache and [s.id for s in again.slices] == [s.id for s in bank.slices]
    for f in (Path(settings.cache_dir) / "interpret").glob("slices-*.json"):
        f.write_text("{not json")
    rebuilt = slice_pool(Pool(items=items, source="t"), settings=settings)
    assert not rebuilt.from_cache and len(rebuilt.slices) == 1


def test_a_pool_that_gains_a_file_slices_only_that_file(tmp_path, monkeypatch):
    import loopmind.generate.interpret.slices as slices_mod
    from loopmind.config import Settings

    items = []
    for i, midi in enumerate((40, 43, 45, 47)):
        p = tmp_path / f"note{i}.wav"
        write_audio(p, tone(_midi_hz(midi), 0.5, harmonics=4))
        items.append(_item(i + 1, p, role="bass", kind="oneshot", duration_s=0.5))
    settings = Settings.from_env({"LOOPMIND_HOME": str(tmp_path / "home")})
    first = slices_mod.slice_pool(Pool(items=items[:3], source="t"), settings=settings)
    calls = []
    real = slices_mod.slice_item
    monkeypatch.setattr(slices_mod, "slice_item",
                        lambda item, y, **kw: calls.append(item.id) or real(item, y, **kw))
    grown = slices_mod.slice_pool(Pool(items=items, source="t"), settings=settings)
    assert calls == [4] and not grown.from_cache
    fresh = slices_mod.slice_pool(Pool(items=items, source="t"), settings=settings,
                                  use_cache=False)
    assert [asdict(s) for s in grown.slices] == [asdict(s) for s in fresh.slices]
    assert [s.id for s in grown.slices[:len(first.slices)]] == [s.id for s in first.slices]
    # a corrupt entry is sliced again; a changed file too (its size and mtime are in the key)
    entry = slices_mod._item_cache_path(Path(settings.cache_dir),
                                        slices_mod.item_key(items[0]))
    entry.write_text("{not json")
    write_audio(items[1].path, tone(_midi_hz(50), 0.5, harmonics=4))
    st = os.stat(items[1].path)  # a coarse file-system clock must not hide the change
    os.utime(items[1].path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    calls.clear()
    again = slices_mod.slice_pool(Pool(items=items[:3], source="t"), settings=settings)
    assert sorted(calls) == [1, 2]
    assert abs(again.slices[1].pitch - 50) < 0.2


def test_the_interpret_cache_keeps_under_its_cap_dropping_the_least_recent(tmp_path,
                                                                           monkeypatch):
    import loopmind.generate.interpret.slices as slices_mod
    from loopmind.config import Settings

    settings = Settings.from_env({"LOOPMIND_HOME": str(tmp_path / "home")})
    folder = Path(settings.cache_dir) / "interpret"
    (folder / "items" / "ab").mkdir(parents=True)
    old = []
    for i in range(6):  # banks of pools used long ago, oldest first
        p = folder / ("items/ab" if i % 2 else ".") / f"old{i}.json"
        p.write_bytes(b"x" * 100_000)
        os.utime(p, ns=(10**18 + i, 10**18 + i))
        old.append(p)
    p = tmp_path / "note.wav"
    write_audio(p, tone(_midi_hz(45), 0.5, harmonics=4))
    items = [_item(1, p, role="bass", kind="oneshot", duration_s=0.5)]
    monkeypatch.setattr(slices_mod, "INTERPRET_CACHE_BYTES", 400_000)
    bank = slices_mod.slice_pool(Pool(items=items, source="t"), settings=settings)
    # 600 kB of old files and the new bank: the oldest go until under 90 % of 400 kB
    assert [q.exists() for q in old] == [False, False, False, True, True, True]
    again = slices_mod.slice_pool(Pool(items=items, source="t"), settings=settings)
    assert again.from_cache and [s.id for s in again.slices] == [s.id for s in bank.slices]
    assert slices_mod.trim_cache(Path(settings.cache_dir), 10**9) == 0  # under the cap: kept


# -- learning and the sequence model -----------------------------------------------------------

def test_learned_statistics(interp):
    from loopmind.generate.interpret.learn import learn

    model = learn(interp["bank"], interp["pool"])
    kick = model.drums["kick"]
    assert kick.onset_prob[0] > 0.8  # the drum loops' kicks land on the downbeat
    assert kick.bar_patterns and all(len(p) == STEPS_PER_BAR for p in kick.bar_patterns)
    bass = model.roles["bass"]
    assert bass.intervals and bass.degrees[0] == max(bass.degrees.values())  # tonic most used
    assert bass.transitions.sum() > 0
    assert all(seq[0].endswith(":|") for seq in bass.sequences)


def test_gru_budget_progress_and_cache(tmp_path, monkeypatch):
    from loopmind.generate.interpret import seqmodel

    seqs = [["bass:|", *[f"bass:{i % 3}:{(4 * i) % 16}" for i in range(k, k + 12)]]
            for k in range(12)]
    progress: list[float] = []
    m = seqmodel.train_gru(seqs, pool_key="t", budget_s=0.3, max_epochs=100000,
                           on_progress=lambda s, f: progress.append(f))
    assert m.stopped_by_budget or m.epochs < 100000
    assert m.train_s < 3.0 and progress[-1] == 1.0 and progress == sorted(progress)

    calls = []
    real = seqmodel.train_gru
    monkeypatch.setattr(seqmodel, "train_gru",
                        lambda *a, **k: calls.append(1) or real(*a, **{**k, "budget_s": 1.0}))
    first, notes = seqmodel.fit_model(seqs, pool_key="p1", cache_dir=tmp_path)
    assert first.kind == "gru" and not first.from_cache and len(calls) == 1
    second, notes = seqmodel.fit_model(seqs, pool_key="p1", cache_dir=tmp_path)
    assert second.from_cache and len(calls) == 1 and not notes  # reused, not retrained
    # a file with the right header but the wrong shape is refused and retrained
    import torch
    from safetensors.torch import save_file

    path = seqmodel.model_path(tmp_path, "p1")
    bad = {k: torch.zeros(3, 5) if k == "emb.weight" else v for k, v in first.state.items()}
    import json

    meta = {"loopmind": json.dumps({"version": seqmodel.MODEL_VERSION, "vocab": first.vocab})}
    save_file(bad, str(path), metadata=meta)
    third, notes = seqmodel.fit_model(seqs, pool_key="p1", cache_dir=tmp_path)
    assert len(calls) == 2 and any("another shape" in n for n in notes)
    assert not third.from_cache
    # and a model of another version, or garbage, is refused too
    meta = {"loopmind": json.dumps({"version": seqmodel.MODEL_VERSION + 1,
                                    "vocab": first.vocab})}
    save_file(first.state, str(path), metadata=meta)
    _, notes = seqmodel.fit_model(seqs, pool_key="p1", cache_dir=tmp_path)
    assert len(calls) == 3 and any("version" in n for n in notes)
    path.write_bytes(b"\x00garbage")
    _, notes = seqmodel.fit_model(seqs, pool_key="p1", cache_dir=tmp_path)
    assert len(calls) == 4 and any("unreadable" in n for n in notes)


def test_markov_fallback_for_a_tiny_pool_says_so(demo_library, tmp_path):
    from loopmind.config import Settings
    from loopmind.generate.interpret.parts import interpret_parts

    pool = _demo_pool(demo_library, keep=lambda f: "bass_Gmaj" in f["path"]
                      or "kick_punchy" in f["path"] or "chords_Amin" in f["path"])
    song = Song(bpm=100.0, key="G major", seed=1, sections=[
        Section("verse", 0, 4, roles=["kick", "bass", "keys", "lead"], energy=0.7)])
    settings = Settings.from_env({"LOOPMIND_HOME": str(tmp_path / "home")})
    tracks, notes = interpret_parts(song, pool, seed=1, settings=settings, budget_s=2.0)
    text = "\n".join(notes)
    assert "Markov chain" in text and "fewer than 64" in text
    assert not list((Path(settings.cache_dir) / "interpret").glob("model-*"))  # nothing trained
    names = {t.name for t in tracks}
    assert "bass" in names and "kick" in names
    # no drum loop to learn from: the kick says it plays the genre's pattern
    assert "no drum loops to learn the kick rhythm" in text
    bass = next(t for t in tracks if t.name == "bass")
    scale = {7, 9, 11, 0, 2, 4, 6}
    assert all(e.pitch % 12 in scale for c in bass.clips for e in c.events)
    # hybrid mode asks for some roles only
    only, _ = interpret_parts(song, pool, seed=1, settings=settings, budget_s=2.0,
                              roles=["bass"])
    assert [t.name for t in only] == ["bass"]


def test_role_with_too_few_slices_falls_back_and_says_so(demo_library, tmp_path):
    from loopmind.config import Settings
    from loopmind.generate.interpret.parts import interpret_parts

    # keys: a single chord slice (a 2-bar loop cut to one bar's first beat)
    pool = _demo_pool(demo_library, keep=lambda f: "bass_Gmaj" in f["path"]
                      or "lead_Gmaj" in f["path"])
    keys_path = Path(demo_library) / "Keys" / "chords_Amin_90bpm.wav"
    pool.items.append(_item(99, keys_path, role="keys", kind="oneshot", key="A minor",
                            duration_s=0.6))
    song = Song(bpm=120.0, key="G major", seed=2, sections=[
        Section("verse", 0, 4, roles=["bass", "keys"], energy=0.7)])
    settings = Settings.from_env({"LOOPMIND_HOME": str(tmp_path / "home")})
    tracks, notes = interpret_parts(song, pool, seed=2, settings=settings, budget_s=2.0)
    text = "\n".join(notes)
    assert "too few pitched keys slices (1)" in text
    # lead is not planned, so its slices play the keys part
    assert "lead slices play the new keys part" in text
    keys = next(t for t in tracks if t.name == "keys")
    lead_ids = {s.id for s in _demo_slices(pool, settings) if s.role == "lead"}
    assert {e.slice_id for c in keys.clips for e in c.events} <= lead_ids
    # with the lead planned too it plays its own part: the keys part is left to the direct
    # arranger, and the note says so
    song.sections[0].roles.append("lead")
    tracks, notes = interpret_parts(song, pool, seed=2, settings=settings, budget_s=2.0)
    assert "the direct arranger's keys loop stays" in "\n".join(notes)
    assert "keys" not in {t.name for t in tracks} and "lead" in {t.name for t in tracks}


def _demo_slices(pool, settings):
    from loopmind.generate.interpret.slices import slice_pool

    return slice_pool(pool, settings=settings).slices


# -- generated parts ---------------------------------------------------------------------------

def test_parts_are_generated_sequences_on_the_grid(interp):
    song, tracks = interp["song"], interp["tracks"]
    names = {t.name for t in tracks}
    assert {"drumloop", "bass", "lead"} <= names
    assert interp["progress"] and interp["progress"][-1][1] == 1.0
    for t in tracks:
        for c in t.clips:
            assert c.generated and c.is_sequence and c.events
            assert c.source_bpm is None and c.stretch == 1.0
            assert c.source_path == c.events[0].source_path
            sec = next(s for s in song.sections if s.start_bar == c.start_bar)
            assert c.bars == sec.bars and t.role in sec.roles
            steps = [e.step for e in c.events]
            assert steps == sorted(steps) and 0 <= steps[0] and steps[-1] < c.bars * 16
            for e in c.events:
                assert e.length >= 1 and 0 < e.velocity <= 1 and e.slice_id
                assert abs(e.semitones) <= 7 + 1e-6
                assert e.source_end_s > e.source_start_s
    # sections of the same role get different bars
    lead = next(t for t in tracks if t.name == "lead")
    firsts = [tuple((e.step, e.slice_id) for e in c.events if e.step < 16) for c in lead.clips]
    assert len(set(firsts)) == len(firsts)


def test_generated_notes_are_in_key(interp):
    for t in interp["tracks"]:
        if t.role in ("bass", "lead", "keys", "guitar", "vocal", "strings"):
            for c in t.clips:
                for e in c.events:
                    assert e.pitch is not None and e.pitch % 12 in F_MINOR, (t.name, e)


def test_same_seed_same_events_other_seed_other_events(interp):
    from loopmind.generate.interpret.parts import interpret_parts

    again, _ = interpret_parts(interp["song"], interp["pool"], seed=3,
                               settings=interp["settings"], budget_s=8.0)
    assert _events(again) == _events(interp["tracks"])  # the cached model, same choices
    other, _ = interpret_parts(interp["song"], interp["pool"], seed=4,
                               settings=interp["settings"], budget_s=8.0)
    assert _events(other) != _events(interp["tracks"])


# -- measures ----------------------------------------------------------------------------------

def test_novelty_measure():
    from loopmind.generate.interpret.measures import closer_to_own, novelty, pool_distance

    rng = np.random.default_rng(440)
    src = [rng.standard_normal(4000) for _ in range(3)]
    shifted = np.concatenate([np.zeros(100), src[1][:-100]]) * 0.3  # 2 ms late, quieter
    assert novelty(shifted, src, sr=44100) > 0.95
    assert novelty(rng.standard_normal(4000), src, sr=44100) < 0.1
    assert novelty(np.zeros(4000), src, sr=44100) == 0.0
    own = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0]])
    other = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert closer_to_own(np.array([1.0, 0.05, 0.0]), own, other)
    assert pool_distance(np.array([1.0, 0.0, 0.0]), own, k=1) == pytest.approx(0.0, abs=1e-9)


def test_generated_bars_are_not_copies(interp):
    """Rendered generated bars correlate below 0.9 with every source bar; a bar rebuilt from
    one source bar's slices at their own places (a copy) is caught by the same measure."""
    from loopmind.generate.interpret.measures import bars_of, novelty, render_part
    from loopmind.generate.render import load_source
    from loopmind.generate.song import Clip, SliceEvent

    sr = 22050
    song, pool = interp["song"], interp["pool"]
    sources = []
    for it in pool.loops():
        y = load_source(it.path, it.start_s, it.end_s, sr=sr).mean(axis=0)
        sources += bars_of(y, sr=sr, bar_s=240.0 / it.bpm)
    checked = 0
    for t in interp["tracks"]:
        if t.name not in ("drumloop", "bass", "lead"):
            continue
        c = t.clips[0]
        short = replace(c, bars=2, events=[e for e in c.events if e.step < 32])
        y = render_part(short, song, role=t.role, sr=sr)
        for bar in bars_of(y, sr=sr, bar_s=song.bar_s, bars=2):
            if np.abs(bar).max() > 1e-3:
                assert novelty(bar, sources, sr=sr) < 0.9, t.name
                checked += 1
    assert checked >= 4
    # the control: a trap loop's first bar rebuilt from its own slices at 140 BPM
    trap = [s for s in interp["bank"].slices if "trap_drums_140bpm_01" in s.path and s.bar == 0]
    copy = Clip(start_bar=0, bars=1, source_path=trap[0].path, source_start_s=0.0,
                source_end_s=1.0, events=[SliceEvent(step=s.step, length=s.length,
                                                     source_path=s.path,
                                                     source_start_s=s.start_s,
                                                     source_end_s=s.end_s, slice_id=s.id)
                                          for s in trap], generated=True)
    y = render_part(copy, song, role="drumloop", sr=sr)
    assert novelty(bars_of(y, sr=sr, bar_s=song.bar_s, bars=1)[0], sources, sr=sr) > 0.9


def test_fidelity_embedding_of_a_generated_part(interp):
    """A generated bass part embeds closer to the demo pool than to a pool of noise."""
    from loopmind.generate.interpret.measures import closer_to_own, embed_audio, render_part

    sr = 22050
    bass = next(t for t in interp["tracks"] if t.name == "bass")
    c = bass.clips[0]
    short = replace(c, bars=2, events=[e for e in c.events if e.step < 32])
    v = embed_audio(render_part(short, interp["song"], role="bass", sr=sr), sr=sr)
    assert v.shape[0] > 8 and abs(float(np.linalg.norm(v)) - 1.0) < 1e-3
    from loopmind.generate.render import load_source

    own = [embed_audio(load_source(it.path, it.start_s, it.end_s, sr=sr), sr=sr)
           for it in interp["pool"].items if it.role == "bass"]
    other = [embed_audio(noise(1.0, seed=k, sr=sr), sr=sr) for k in range(3)]
    assert closer_to_own(v, np.array(own), np.array(other))


def test_copy_guards():
    from loopmind.generate.interpret.parts import is_copy, pattern_copy
    from loopmind.generate.interpret.slices import Slice

    src = [frozenset({(0, 0), (4, 1), (8, 0), (12, 1)})]
    assert pattern_copy([(0, 0), (4, 1), (8, 0), (12, 1)], src)
    assert not pattern_copy([(0, 0), (6, 1), (10, 2), (14, 1)], src)
    loop = [Slice(id=f"a#1.{i}", item_id=1, role="drumloop", kind="loop", path="a.wav",
                  start_s=i * 0.1, end_s=i * 0.1 + 0.1, step=4 * i, length=4, loop_steps=16)
            for i in range(4)]
    assert is_copy([(4 * i, s) for i, s in enumerate(loop)])  # every slice back in its place
    assert not is_copy([(4 * i, s) for i, s in enumerate(reversed(loop))])


def test_reference_part_plays_an_item_in_the_parts_form(tmp_path):
    """A one-shot is triggered on the part's own steps; a loop is stretched to the song's tempo
    and repeated over the part's bars; the centroid distance prefers the nearer set."""
    from loopmind.generate.interpret.measures import centroid_distance, reference_part
    from loopmind.generate.song import Clip, SliceEvent

    song = Song(bpm=120.0, key="A minor", seed=0,
                sections=[Section("verse", 0, 2, roles=["kick"], energy=0.8)])
    y_hit = drum_hit("kick_punchy", sr=SR)[: int(0.1 * SR)]
    hit = write_audio(tmp_path / "kick.wav", y_hit, sr=SR)
    ev = [SliceEvent(step=s, length=2, source_path=str(hit), source_start_s=0.0,
                     source_end_s=0.1, velocity=1.0, slice_id=f"k#{s}") for s in (0, 6, 20)]
    clip = Clip(start_bar=0, bars=2, source_path=str(hit), source_start_s=0.0,
                source_end_s=0.1, events=ev, generated=True)
    y = reference_part([clip], song, path=str(hit), start_s=0.0, end_s=0.1, role="kick")
    step_n = song.bar_s / STEPS_PER_BAR * song.sample_rate
    assert len(y) == song.bar_to_sample(2)
    env = np.abs(y)
    for s in (0, 6, 20):
        a = int(s * step_n)
        assert env[a:a + 200].max() > 0.1  # a hit on each of the part's steps
    assert env[int(10 * step_n):int(12 * step_n)].max() < 1e-3  # and none elsewhere

    # a one-bar loop at 100 BPM with a click on each beat, played in a 120 BPM part
    bar = np.zeros(int(2.4 * SR), dtype=np.float32)
    for b in range(4):
        bar[int(b * 0.6 * SR):int(b * 0.6 * SR) + 200] = 0.8
    loop = write_audio(tmp_path / "loop.wav", bar, sr=SR)
    y = reference_part([clip], song, path=str(loop), start_s=0.0, end_s=2.4, loop=True,
                       bpm=100.0, bars=1.0, role="drumloop")
    assert len(y) == song.bar_to_sample(2)
    beat_n = int(0.5 * song.sample_rate)  # a beat at 120 BPM
    for b in range(8):
        assert np.abs(y[max(0, b * beat_n - 441):b * beat_n + 441]).max() > 0.1
    assert np.abs(y[beat_n // 2 - 2000:beat_n // 2 + 2000]).max() < 0.05
    y = reference_part([clip], song, path=str(loop), start_s=0.0, end_s=2.4, loop=True,
                       bpm=100.0, bars=1.0, role="drumloop", max_s=1.0)
    assert len(y) == song.sample_rate
    # a loop without a tempo is played whole, back to back, at its own speed
    y = reference_part([clip], song, path=str(loop), start_s=0.0, end_s=2.4, loop=True,
                       role="drumloop")
    assert len(y) == song.bar_to_sample(2)
    for b in range(6):
        a = int(b * 0.6 * song.sample_rate)
        assert np.abs(y[a:a + 100]).max() > 0.1

    near = np.array([[1.0, 0.1], [1.0, -0.1]])
    far = np.array([[0.0, 1.0], [0.2, 1.0]])
    v = np.array([1.0, 0.0])
    assert centroid_distance(v, near) < 1e-6 < centroid_distance(v, far)


def test_loop_slices_keep_their_own_level(interp):
    """A slice of a loop plays at the level it has in its loop: its velocity does not scale
    with its loudness (that would change the kit's balance), only a quiet section softens it,
    and slices of louder loops are brought down to the quietest loop used (so the level does
    not jump from loop to loop); one-shots are still scaled by their level."""
    from loopmind.generate.interpret.parts import MAX_ACCENT_DB, SOFT_ENERGY, _velocity
    from loopmind.generate.interpret.slices import Slice

    by_id = {s.id: s for s in interp["bank"].slices}
    song = interp["song"]
    drums = next(t for t in interp["tracks"] if t.name == "drumloop")
    sq: dict[int, list[float]] = {}
    for s in interp["bank"].by_role("drumloop"):
        sq.setdefault(s.item_id, []).append(s.peak ** 2)
    level = {i: float(np.sqrt(np.mean(v))) for i, v in sq.items()}  # the loops' hit levels
    seen = set()
    mixed = 0  # clips that play slices of loops at different levels
    for c in drums.clips:
        sec = next(s for s in song.sections if s.start_bar == c.start_bar)
        want = 0.85 if sec.energy < SOFT_ENERGY else 1.0
        levels = {level[by_id[e.slice_id].item_id] for e in c.events}
        mixed += max(levels) > 1.2 * min(levels)
        lo = min(levels)
        hits = [e.velocity ** 1.5 * by_id[e.slice_id].peak for e in c.events]
        cap = float(np.median(hits)) * 10 ** (MAX_ACCENT_DB / 20)
        for e, h in zip(c.events, hits):
            s = by_id[e.slice_id]
            assert s.kind == "loop"
            assert h <= cap * 1.002
            if h < cap * 0.998:
                # every loop at the quietest one's level: velocity ** 1.5 * level is constant
                # (a hit brought down to the accent cap is the exception)
                assert e.velocity ** 1.5 * level[s.item_id] == pytest.approx(
                    want ** 1.5 * lo, rel=2e-3)
            seen.add(round(s.rms, 4))
    assert len(seen) > 3  # slices of many levels, at one velocity per loop
    assert mixed

    def one(kind, rms):
        return Slice(id="x#1.0", item_id=1, role="kick", kind=kind, path="x.wav", start_s=0.0,
                     end_s=0.1, rms=rms)
    assert _velocity(one("loop", 0.05), 1.0, 0.9) == _velocity(one("loop", 1.0), 1.0, 0.9)
    assert _velocity(one("oneshot", 0.05), 1.0, 0.9) < _velocity(one("oneshot", 1.0), 1.0, 0.9)


def test_a_sparse_loops_hits_are_matched_to_a_busy_loops_hits():
    """Two loops whose hits peak alike, one busy (high RMS) and one sparse (hits with long
    gaps: a quarter of the RMS): matched by their hits, the level does not jump between them.
    Matched by RMS, the busy loop would be brought 12 dB under the sparse one's hits."""
    from loopmind.generate.interpret.parts import _level_matched
    from loopmind.generate.interpret.slices import Slice

    def sl(item, i, rms, peak):
        return Slice(id=f"{item}#{item}.{i}", item_id=item, role="drumloop", kind="loop",
                     path=f"{item}.wav", start_s=0.1 * i, end_s=0.1 * i + 0.1, step=i,
                     length=1, loop_steps=16, bpm=100.0, rms=rms, peak=peak)

    busy = [sl(1, i, 0.30, 0.80) for i in range(8)]
    sparse = [sl(2, i, 0.075, 0.80) for i in range(4)]
    onsets = [(i, s, 0.0, 1.0, None) for i, s in enumerate(busy[:4] + sparse)]
    out = _level_matched(onsets, busy + sparse)
    hit = [vel ** 1.5 * s.peak for _, s, _, vel, _ in out]
    assert max(hit) == pytest.approx(min(hit), rel=2e-3)


def test_a_hit_far_above_the_parts_other_hits_is_brought_down_to_an_accent():
    from loopmind.generate.interpret.parts import MAX_ACCENT_DB, _accents_capped
    from loopmind.generate.interpret.slices import Slice

    def sl(i, peak):
        return Slice(id=f"1#1.{i}", item_id=1, role="drumloop", kind="loop", path="1.wav",
                     start_s=0.1 * i, end_s=0.1 * i + 0.1, step=i, length=1, loop_steps=16,
                     bpm=100.0, rms=peak / 4, peak=peak)

    # a crash recorded 14 dB above the rest, and a 4 dB accent
    peaks = [0.1] * 7 + [0.1 * 10 ** (14 / 20), 0.1 * 10 ** (4 / 20)]
    out = _accents_capped([(i, sl(i, p), 0.0, 1.0, None) for i, p in enumerate(peaks)])
    hits = [vel ** 1.5 * s.peak for _, s, _, vel, _ in out]
    assert hits[:7] == pytest.approx([0.1] * 7)
    assert hits[7] == pytest.approx(0.1 * 10 ** (MAX_ACCENT_DB / 20), rel=2e-3)
    assert hits[8] == pytest.approx(peaks[8])  # an accent within the cap keeps its level


def test_drum_slices_fill_the_gap_to_the_next_hit():
    """A drum-loop slice is chosen to last until the next hit (a loop has no holes): one of
    the candidates that does, else one of the group's, else the longest candidate."""
    from loopmind.generate.interpret.parts import _drumloop_section, _filling
    from loopmind.generate.interpret.learn import RoleStats
    from loopmind.generate.interpret.slices import Slice

    song = Song(bpm=120.0, key="A minor", seed=0,
                sections=[Section("verse", 0, 4, roles=["drumloop"], energy=0.8)])
    step_s = song.bar_s / STEPS_PER_BAR

    def sl(i, steps):
        return Slice(id=f"a#1.{i}", item_id=1 + i % 2, role="drumloop", kind="loop",
                     path="a.wav", start_s=0.0, end_s=steps * step_s, step=(4 * i) % 16,
                     length=steps, loop_steps=16, bpm=100.0, rms=0.1)

    short, mid, long_ = sl(0, 1), sl(1, 2), sl(2, 4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert _filling([short, mid, long_], [short, mid, long_], 2, song, rng) in (mid, long_)
        assert _filling([short], [short, mid, long_], 4, song, rng) is long_
        assert _filling([short, mid], [short, mid], 4, song, rng) is mid

    class Sampler:  # every bar: hits on 0, 4, 8, 12, all of cluster 0
        vocab = ["drumloop:|"] + [f"drumloop:0:{p}" for p in (0, 4, 8, 12)]

        def start(self, role):
            self.i = 0

        def probs(self):
            p = np.zeros(len(self.vocab))
            p[[0, 1, 2, 3, 4][self.i % 5]] = 1.0
            return p

        def push(self, tok):
            self.i += 1

    slices = [sl(i, 1 + i % 4) for i in range(12)]
    st = RoleStats(role="drumloop", slices=slices, clusters=np.zeros(12, dtype=int),
                   n_clusters=1)
    events = _drumloop_section(Sampler(), st, song.sections[0], song, rng)
    assert events
    for e in events:  # every hit rings for the 4 steps to the next one
        assert e.source_end_s - e.source_start_s >= 4 * step_s - 1e-9

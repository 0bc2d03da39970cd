"""Rendering: sample-exact placement, stretching, pitch, fades, patterns, the stretch cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fixtures_audio import SR, click_track, tone, write_audio

from loopmind.errors import DecodeError
from loopmind.generate import render
from loopmind.generate.render import (StretchCache, load_source, render_clip, render_tracks,
                                      unit_key)
from loopmind.generate.song import Clip, Section, Song, Track


def _song(bpm: float, tracks: list[Track], *, key: str | None = None, bars: int = 4) -> Song:
    return Song(bpm=bpm, key=key, sections=[Section("intro", 0, bars)], tracks=tracks)


def _impulses(n: int, at: list[int], amplitude: float = 0.9) -> np.ndarray:
    y = np.zeros(n, dtype=np.float32)
    y[at] = amplitude
    return y


def _onsets(y: np.ndarray, threshold: float) -> np.ndarray:
    """Indices where |y| first rises above ``threshold`` after being below it for 10 ms."""
    above = np.abs(y) > threshold
    idx = np.flatnonzero(above)
    if len(idx) == 0:
        return idx
    keep = np.concatenate([[True], np.diff(idx) > int(0.01 * SR)])
    return idx[keep]


@pytest.fixture
def cache(tmp_path: Path) -> StretchCache:
    return StretchCache(tmp_path / "cache")


# -- load_source ---------------------------------------------------------------------------

def test_load_source_reads_the_segment_as_stereo(tmp_path: Path) -> None:
    y = np.arange(SR, dtype=np.float32) / SR  # a ramp: each sample says where it came from
    path = write_audio(tmp_path / "ramp.wav", y, subtype="FLOAT")
    seg = load_source(path, 0.25, 0.5, sr=SR)
    assert seg.shape == (2, SR // 4) and seg.dtype == np.float32
    np.testing.assert_array_equal(seg[0], seg[1])
    np.testing.assert_allclose(seg[0, :3], y[SR // 4:SR // 4 + 3])


def test_load_source_resamples_and_pads(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a48k.flac", tone(440.0, 1.0, sr=48000, amplitude=0.5),
                       48000)
    seg = load_source(path, 0.5, 1.25, sr=SR)  # runs 0.25 s past the end
    assert seg.shape == (2, int(round(0.75 * SR)))
    spec = np.abs(np.fft.rfft(seg[0, 1000:20000]))
    assert abs(np.argmax(spec) * SR / 19000 - 440.0) < 5.0
    assert np.abs(seg[:, -SR // 5:]).max() == 0.0


def test_load_source_falls_back_to_the_library_decoder(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_audio(tmp_path / "a.wav", tone(440.0, 1.0), subtype="FLOAT")
    direct = load_source(path, 0.25, 0.75, sr=SR)

    def refuse(path):
        raise RuntimeError("Format not recognised")

    monkeypatch.setattr(render, "_open_soundfile", refuse)  # as for a format only ffmpeg reads
    fallback = load_source(path, 0.25, 0.75, sr=SR)
    assert fallback.shape == direct.shape
    np.testing.assert_allclose(fallback, direct, atol=1e-4)


def test_load_source_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="not found"):
        load_source(tmp_path / "gone.wav", 0.0, 1.0, sr=SR)
    (tmp_path / "junk.wav").write_bytes(os.urandom(4096))
    with pytest.raises(DecodeError) as info:
        load_source(tmp_path / "junk.wav", 0.0, 1.0, sr=SR)
    assert "\n" not in str(info.value)


# -- loops ---------------------------------------------------------------------------------

def test_unstretched_loop_lands_sample_exactly(tmp_path: Path, cache: StretchCache) -> None:
    bpm = 125.0  # a bar is 1.92 s = 84672 samples: bar lines land on whole samples
    song = _song(bpm, [])
    n_bar = song.bar_to_sample(1)
    path = write_audio(tmp_path / "imp.wav", _impulses(n_bar, [0, 1000, n_bar - 1000]),
                       subtype="FLOAT")
    clip = Clip(start_bar=3, bars=3, source_path=str(path), source_start_s=0.0,
                source_end_s=n_bar / SR, source_bpm=bpm, source_bars=1.0, fade_in_s=0.0)
    song.tracks.append(Track("perc", "perc", [clip]))
    out = render_tracks(song, cache=cache).tracks["perc"][0]
    hits = np.flatnonzero(np.abs(out) > 0.5)
    starts = [song.bar_to_sample(b) for b in (3, 4, 5)]
    expected = sorted(s + k for s in starts for k in (0, 1000, n_bar - 1000))
    np.testing.assert_array_equal(hits, expected)


def test_fractional_bar_lines_do_not_drift(tmp_path: Path, cache: StretchCache) -> None:
    bpm = 93.0  # a bar is 2.5806... s: bar lines fall between samples
    song = _song(bpm, [])
    n = int(np.ceil(song.bar_s * SR))
    path = write_audio(tmp_path / "imp.wav", _impulses(n, [500]), subtype="FLOAT")
    clip = Clip(start_bar=1, bars=16, source_path=str(path), source_start_s=0.0,
                source_end_s=song.bar_s, source_bpm=bpm, source_bars=1.0)
    song.tracks.append(Track("perc", "perc", [clip]))
    out = render_tracks(song, cache=cache).tracks["perc"][0]
    hits = np.flatnonzero(np.abs(out) > 0.5)
    np.testing.assert_array_equal(hits, [song.bar_to_sample(b) + 500 for b in range(1, 17)])


def test_stretched_loop_has_the_song_tempo(tmp_path: Path, cache: StretchCache) -> None:
    from loopmind.library.analysis.tempo import estimate_tempo

    src_bpm, bpm = 100.0, 120.0
    y = click_track(src_bpm, 2)
    path = write_audio(tmp_path / "click100.wav", y)
    clip = Clip(start_bar=1, bars=4, source_path=str(path), source_start_s=0.0,
                source_end_s=len(y) / SR, source_bpm=src_bpm, source_bars=2.0,
                stretch=bpm / src_bpm, fade_in_s=0.001)
    song = _song(bpm, [Track("drums", "drumloop", [clip])], bars=5)
    rendered = render_tracks(song, cache=cache)
    out = rendered.tracks["drums"][0]
    a, b = song.bar_to_sample(1), song.bar_to_sample(5)
    assert np.abs(out[:a]).max() == 0.0 and np.abs(out[b:]).max() == 0.0
    # the unit is exactly two bars at 120 BPM
    unit = render.render_unit(unit_key(clip, song, role="drumloop"), cache)
    assert unit.shape == (2, song.bar_to_sample(2))
    # every click lands on its beat within a few ms
    beat = 60.0 / bpm * SR
    found = _onsets(out, 0.1)
    expected = a + np.round(np.arange(16) * beat).astype(int)
    assert len(found) == 16
    err_ms = np.abs(found - expected) / SR * 1000
    assert err_ms.max() < 2.0
    est = estimate_tempo(out[a:b], sr=SR)
    assert est.bpm is not None and abs(est.bpm - bpm) / bpm < 0.01


def test_pitch_shift_moves_the_tone_three_semitones(tmp_path: Path,
                                                    cache: StretchCache) -> None:
    bpm = 120.0  # a bar is 2 s
    path = write_audio(tmp_path / "a440.wav", tone(440.0, 2.0), subtype="FLOAT")
    clip = Clip(start_bar=0, bars=2, source_path=str(path), source_start_s=0.0,
                source_end_s=2.0, source_bpm=bpm, source_bars=1.0, semitones=3)
    song = _song(bpm, [Track("keys", "keys", [clip]),
                       Track("drums", "drumloop", [Clip(**{**clip.__dict__})])])
    tracks = render_tracks(song, cache=cache).tracks

    def peak_hz(y: np.ndarray) -> float:
        seg = y[0, SR // 4: SR // 4 + SR] * np.hanning(SR)
        spec = np.abs(np.fft.rfft(seg, 8 * SR))
        return float(np.argmax(spec) / 8)

    assert abs(peak_hz(tracks["keys"]) - 440.0 * 2 ** (3 / 12)) < 2.0
    # drum roles are never pitch-shifted, whatever the clip says
    assert abs(peak_hz(tracks["drums"]) - 440.0) < 1.0


def test_no_clicks_at_clip_and_repetition_edges(tmp_path: Path, cache: StretchCache) -> None:
    bpm = 120.0
    f, amp = 220.0, 0.5
    # 1.9 s of sine: not a whole number of periods, so a seam without fades would jump
    path = write_audio(tmp_path / "sine.wav", tone(f, 1.9, amplitude=amp, fade_s=0.0),
                       subtype="FLOAT")
    clips = [Clip(start_bar=0, bars=3, source_path=str(path), source_start_s=0.0,
                  source_end_s=1.9, source_bpm=bpm, source_bars=1.0),
             Clip(start_bar=3, bars=1, source_path=str(path), source_start_s=0.37,
                  source_end_s=1.9, source_bpm=bpm, source_bars=1.0)]
    song = _song(bpm, [Track("pad", "pad", clips)])
    out = render_tracks(song, cache=cache).tracks["pad"]
    max_step = 2 * np.pi * f * amp / SR  # the sine's own steepest sample-to-sample change
    assert np.abs(np.diff(out, axis=1)).max() < 1.5 * max_step


def test_clip_gain_and_reverse(tmp_path: Path, cache: StretchCache) -> None:
    bpm = 120.0
    song = _song(bpm, [])
    n = song.bar_to_sample(1)
    path = write_audio(tmp_path / "imp.wav", _impulses(n, [1000]), subtype="FLOAT")
    clip = Clip(start_bar=0, bars=1, source_path=str(path), source_start_s=0.0,
                source_end_s=n / SR, source_bars=1.0, gain_db=-6.0, reverse=True)
    y = render_clip(clip, song, cache, role="fx")
    hit = np.flatnonzero(np.abs(y[0]) > 0.1)
    np.testing.assert_array_equal(hit, [n - 1 - 1000])
    assert abs(y[0, hit[0]] - 0.9 * 10 ** (-6 / 20)) < 1e-6


# -- patterns ------------------------------------------------------------------------------

def test_pattern_hits_land_on_the_sixteenth_grid(tmp_path: Path, cache: StretchCache) -> None:
    bpm = 97.0
    hit = np.zeros(2000, dtype=np.float32)
    hit[0] = 1.0
    hit[1:] = 0.01  # a quiet tail, so chokes are visible
    path = write_audio(tmp_path / "kick.wav", hit, subtype="FLOAT")
    steps = [(0, 1.0), (4, 0.5), (10, 1.0), (16, 0.8), (31, 1.0)]
    clip = Clip(start_bar=2, bars=2, source_path=str(path), source_start_s=0.0,
                source_end_s=len(hit) / SR, steps=steps, fade_in_s=0.0)
    song = _song(bpm, [Track("kick", "kick", [clip])])
    out = render_tracks(song, cache=cache).tracks["kick"][0]
    peaks = np.flatnonzero(out > 0.1)
    expected = [song.bar_to_sample(2 + s / 16) for s, _ in steps]
    np.testing.assert_array_equal(peaks, expected)
    np.testing.assert_allclose(out[peaks], [v ** 1.5 for _, v in steps], rtol=1e-6)


def test_swing_delays_the_odd_sixteenths(tmp_path: Path, cache: StretchCache) -> None:
    """The song's swing (the genre's groove) moves every odd 16th of a pattern and of a
    generated part late by that fraction of a 16th; even steps and bar lines stay put."""
    from loopmind.generate.song import SliceEvent

    bpm = 92.0
    hit = np.zeros(2000, dtype=np.float32)
    hit[0] = 1.0
    path = write_audio(tmp_path / "hat.wav", hit, subtype="FLOAT")
    steps = [(0, 1.0), (1, 1.0), (2, 1.0), (7, 1.0), (16, 1.0), (31, 1.0)]
    clip = Clip(start_bar=1, bars=2, source_path=str(path), source_start_s=0.0,
                source_end_s=len(hit) / SR, steps=steps, fade_in_s=0.0)
    events = [SliceEvent(step=st, length=1, source_path=str(path), source_start_s=0.0,
                         source_end_s=len(hit) / SR, velocity=1.0, slice_id="hat#0")
              for st, _ in steps]
    seq = _seq_clip(path, events)
    straight = _song(bpm, [Track("hats", "hihat", [clip]), Track("part", "perc", [seq])])
    swung = _song(bpm, [Track("hats", "hihat", [clip]), Track("part", "perc", [seq])])
    swung.swing = 0.25
    sixteenth = straight.bar_s / 16 * SR
    a = render_tracks(straight, cache=cache).tracks
    b = render_tracks(swung, cache=cache).tracks
    for name, start in (("hats", 1), ("part", seq.start_bar)):
        got = np.flatnonzero(b[name][0] > 0.1)
        want = [straight.bar_to_sample(start + st / 16)
                + (int(round(swung.bar_to_sample(start + (st + 0.25) / 16)
                             - straight.bar_to_sample(start + st / 16))) if st % 2 else 0)
                for st, _ in steps]
        np.testing.assert_array_equal(got, want)
        late = got - np.flatnonzero(a[name][0] > 0.1)
        assert list(late[[0, 2, 4]]) == [0, 0, 0]
        assert all(abs(d - 0.25 * sixteenth) <= 1 for d in late[[1, 3, 5]])


def test_choke_cuts_a_hit_at_the_next_one(tmp_path: Path, cache: StretchCache) -> None:
    bpm = 120.0
    path = write_audio(tmp_path / "long.wav", tone(300.0, 1.0, amplitude=0.5),
                       subtype="FLOAT")
    steps = [(s, 1.0) for s in range(0, 16, 2)]  # 8th notes, 0.125 s apart: hits overlap
    clip = Clip(start_bar=0, bars=1, source_path=str(path), source_start_s=0.0,
                source_end_s=1.0, steps=steps)
    song = _song(bpm, [])
    choked = render_clip(clip, song, cache, role="hihat")
    ringing = render_clip(clip, song, cache, role="hihat", choke=False)
    assert np.abs(choked).max() <= 0.51  # one voice at a time
    assert np.abs(ringing).max() > 0.9  # overlapping voices add up
    second = song.bar_to_sample(2 / 16)
    assert abs(choked[0, second - 1]) < 0.01  # faded out just before the next hit


def test_pitched_one_shot_is_shifted_but_not_stretched(tmp_path: Path,
                                                       cache: StretchCache,
                                                       stretch_calls) -> None:
    path = write_audio(tmp_path / "bass.wav", tone(110.0, 0.5), subtype="FLOAT")
    clip = Clip(start_bar=0, bars=1, source_path=str(path), source_start_s=0.0,
                source_end_s=0.5, steps=[(0, 1.0)], semitones=-2, stretch=1.3)
    song = _song(120.0, [Track("bass", "bass", [clip])])
    render_tracks(song, cache=cache)
    assert stretch_calls == [(1.0, -2.0)]


# -- the whole song ------------------------------------------------------------------------

def _mixed_song(folder: Path) -> Song:
    drums = write_audio(folder / "drums100.wav", click_track(100, 2))
    keys = write_audio(folder / "keys.wav", tone(330.0, 4.8, harmonics=3), subtype="FLOAT")
    kick = write_audio(folder / "kick.wav", tone(60.0, 0.3), subtype="FLOAT")
    dur = 2 * 4 * 60 / 100
    return _song(120.0, [
        Track("Drums", "drumloop", [Clip(0, 4, str(drums), 0.0, dur, source_bpm=100.0,
                                         source_bars=2.0, stretch=1.2)]),
        Track("Keys", "keys", [Clip(0, 2, str(keys), 0.0, dur, source_bpm=100.0,
                                    source_bars=2.0, stretch=1.2, semitones=2),
                               Clip(2, 2, str(keys), 0.0, dur / 2, source_bpm=100.0,
                                    source_bars=1.0, stretch=1.2, semitones=-1)]),
        Track("Kick", "kick", [Clip(0, 4, str(kick), 0.0, 0.3,
                                    steps=[(s, 1.0) for s in range(0, 64, 4)])]),
    ], key="A minor")


def test_render_is_bit_identical_across_runs_and_workers(tmp_path: Path) -> None:
    song = _mixed_song(tmp_path)
    a = render_tracks(song, cache=StretchCache(tmp_path / "c1"), workers=1)
    b = render_tracks(song, cache=StretchCache(tmp_path / "c2"), workers=2)
    c = render_tracks(song, cache=StretchCache(tmp_path / "c2"), workers=2)  # from the cache
    d = render_tracks(song, use_cache=False, workers=2)
    assert list(a.tracks) == ["Drums", "Keys", "Kick"]
    for name in a.tracks:
        for other in (b, c, d):
            assert np.array_equal(a.tracks[name], other.tracks[name]), name
    assert a.n_samples == song.bar_to_sample(4) + 2 * SR
    assert c.cache_hits == 3 and c.stretched == 0


def test_cache_hit_skips_the_stretcher_and_a_changed_file_misses(
        tmp_path: Path, cache: StretchCache, stretch_calls) -> None:
    song = _mixed_song(tmp_path)
    first = render_tracks(song, cache=cache)
    assert len(stretch_calls) == 3 and first.stretched == 3
    progress: list[tuple[int, int]] = []
    second = render_tracks(song, cache=StretchCache(cache.folder.parent),
                           on_progress=lambda done, total: progress.append((done, total)))
    assert len(stretch_calls) == 3 and second.cache_hits == 3
    # 4 units (3 stretched, the kick as it is) and 3 tracks placed
    assert progress[-1] == (7, 7) and [d for d, _ in progress] == list(range(1, 8))
    # rewriting the drum loop (new size/mtime) invalidates its unit only
    drums = Path(song.tracks[0].clips[0].source_path)
    write_audio(drums, click_track(100, 2, freq_hz=800.0), subtype="PCM_24")
    third = render_tracks(song, cache=cache)
    assert len(stretch_calls) == 4 and third.cache_hits == 2
    assert not np.array_equal(first.tracks["Drums"], third.tracks["Drums"])


def test_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = StretchCache(tmp_path / "c", max_bytes=10**9)
    keys = [render.UnitKey(f"/x/{i}.wav", 1, 1, 0.0, 1.0, 1.1, 0.0, SR, 1000, False)
            for i in range(5)]
    for i, k in enumerate(keys):
        cache.put(k, np.full((2, 1000), i, dtype=np.float32))
        p = cache._path(k)
        os.utime(p, ns=(i * 10**9, i * 10**9))
    assert cache.get(keys[0]) is not None  # touched: now the most recent
    one = cache._path(keys[0]).stat().st_size
    cache.max_bytes = int(3.5 * one)
    cache.evict()
    left = [k for k in keys if cache._path(k).exists()]
    assert keys[0] in left and keys[1] not in left and len(left) <= 3
    assert cache.size_bytes() <= cache.max_bytes
    # no temporary files left behind
    assert not [p for p in cache.folder.rglob("*") if p.name.endswith(".tmp")]


def test_unwritable_cache_only_costs_speed(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    song = _mixed_song(tmp_path)
    rendered = render_tracks(song, cache=StretchCache(blocker))
    assert set(rendered.tracks) == {"Drums", "Keys", "Kick"} and not rendered.notes


def test_missing_and_broken_sources_are_skipped_with_a_note(tmp_path: Path,
                                                            cache: StretchCache) -> None:
    song = _mixed_song(tmp_path)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(os.urandom(4096))
    song.tracks.append(Track("Gone", "pad", [
        Clip(1, 2, str(tmp_path / "vanished.wav"), 0.0, 2.0, source_bars=1.0)]))
    song.tracks.append(Track("Junk", "pad", [Clip(0, 1, str(junk), 0.0, 1.0, source_bars=1.0,
                                                  stretch=1.1)]))
    song.tracks.append(Track("Empty", "pad", [Clip(0, 1, str(junk), 1.0, 1.0, source_bars=1.0)]))
    rendered = render_tracks(song, cache=cache)
    assert len(rendered.notes) == 3 and song.notes == rendered.notes
    assert "vanished.wav" in rendered.notes[0] and "missing" in rendered.notes[0]
    assert "empty segment" in rendered.notes[1]
    assert "junk.wav" in rendered.notes[2]
    assert np.abs(rendered.tracks["Gone"]).max() == 0.0
    assert np.abs(rendered.tracks["Drums"]).max() > 0.1


def test_stereo_sources_keep_their_image(tmp_path: Path, cache: StretchCache) -> None:
    y = click_track(100, 1)
    stereo = np.stack([y, np.zeros_like(y)], axis=1)  # clicks on the left only
    path = write_audio(tmp_path / "left.wav", stereo, subtype="FLOAT")
    clip = Clip(start_bar=0, bars=1, source_path=str(path), source_start_s=0.0,
                source_end_s=len(y) / SR, source_bpm=100.0, source_bars=1.0, stretch=1.2)
    out = render_clip(clip, _song(120.0, []), cache, role="perc")
    assert np.abs(out[0]).max() > 0.2 and np.abs(out[1]).max() < 1e-3


def test_clip_without_source_bars_plays_once(tmp_path: Path, cache: StretchCache) -> None:
    # a riser: 1.5 s, played once from its bar, sped up 1.5x, silent after it ends
    path = write_audio(tmp_path / "riser.wav", tone(500.0, 1.5), subtype="FLOAT")
    clip = Clip(start_bar=1, bars=2, source_path=str(path), source_start_s=0.0,
                source_end_s=1.5, stretch=1.5)
    song = _song(120.0, [Track("fx", "fx", [clip])])
    out = render_tracks(song, cache=cache).tracks["fx"][0]
    loud = np.flatnonzero(np.abs(out) > 0.05)
    start = song.bar_to_sample(1)
    assert abs(loud[0] - start) < 0.01 * SR
    assert abs((loud[-1] - loud[0]) / SR - 1.0) < 0.02  # 1.5 s at 1.5x


# -- sequence and texture clips (hybrid and interpretive modes) ------------------------------

def _seq_clip(path: Path, events: list, *, start_bar: int = 1, bars: int = 2) -> Clip:
    return Clip(start_bar=start_bar, bars=bars, source_path=str(path), source_start_s=0.0,
                source_end_s=0.1, events=events, fade_in_s=0.0, generated=True)


def test_sequence_events_land_sample_exactly_on_their_steps(tmp_path: Path,
                                                             cache: StretchCache) -> None:
    from loopmind.generate.song import SliceEvent

    bpm = 97.0
    # three "slices" in one file: an impulse 5 samples into each 0.1 s region
    y = np.zeros(SR, dtype=np.float32)
    for k, amp in enumerate((0.9, 0.6, 0.3)):
        y[int(k * 0.1 * SR) + 5] = amp
    path = write_audio(tmp_path / "slices.wav", y, subtype="FLOAT")
    plan = [(0, 0, 1.0), (3, 1, 1.0), (10, 2, 0.5), (17, 0, 0.8), (31, 1, 1.0)]
    events = [SliceEvent(step=s, length=2, source_path=str(path), source_start_s=k * 0.1,
                         source_end_s=k * 0.1 + 0.1, velocity=v, slice_id=f"slices#{k}")
              for s, k, v in plan]
    song = _song(bpm, [Track("fills", "perc", [_seq_clip(path, events)])])
    out = render_tracks(song, cache=cache).tracks["fills"][0]
    peaks = np.flatnonzero(np.abs(out) > 0.05)
    expected = [song.bar_to_sample(1 + s / 16) + 5 for s, _, _ in plan]
    np.testing.assert_array_equal(peaks, expected)
    amps = [(0.9, 0.6, 0.3)[k] * v ** 1.5 for _, k, v in plan]
    np.testing.assert_allclose(out[peaks], amps, rtol=1e-5)


def test_sequence_event_is_cut_at_its_length(tmp_path: Path, cache: StretchCache) -> None:
    from loopmind.generate.song import SliceEvent

    bpm = 120.0  # a 16th is 0.125 s
    path = write_audio(tmp_path / "tone.wav", tone(300.0, 1.0), subtype="FLOAT")
    ev = SliceEvent(step=4, length=2, source_path=str(path), source_start_s=0.0,
                    source_end_s=1.0)
    clip = _seq_clip(path, [ev], start_bar=0, bars=1)
    y = render_clip(clip, _song(bpm, []), cache, role="keys")[0]
    a = int(round(4 * 0.125 * SR))
    b = int(round(6 * 0.125 * SR))
    assert np.abs(y[:a]).max() == 0.0
    assert np.abs(y[a + 500:b - 500]).max() > 0.3
    assert np.abs(y[b:]).max() == 0.0  # the note ends at its length, faded, no ringing
    assert np.abs(y[b - 3]) < 0.05  # the cut is faded, not a step


def _peak_hz(y: np.ndarray, a: int, n: int) -> float:
    seg = y[a:a + n] * np.hanning(n)
    spec = np.abs(np.fft.rfft(seg, 8 * SR))
    return float(np.argmax(spec) / 8)


@pytest.mark.parametrize("role", ["keys", "perc"])
def test_sequence_event_semitones_move_the_pitch(tmp_path: Path, cache: StretchCache,
                                                 role: str) -> None:
    from loopmind.generate.song import SliceEvent

    bpm = 120.0
    path = write_audio(tmp_path / "a440.wav", tone(440.0, 1.5), subtype="FLOAT")
    ev = SliceEvent(step=0, length=16, source_path=str(path), source_start_s=0.0,
                    source_end_s=1.5, semitones=-5.0)
    y = render_clip(_seq_clip(path, [ev], start_bar=0, bars=1), _song(bpm, []), cache,
                    role=role)[0]
    # keys go through Rubber Band (length kept), drums through varispeed (a sampler's
    # slower, lower playback): both land on the shifted pitch
    assert abs(_peak_hz(y, SR // 4, SR // 2) - 440.0 * 2 ** (-5 / 12)) < 3.0


def test_reversed_slice_and_cached_shift(tmp_path: Path, cache: StretchCache,
                                         stretch_calls) -> None:
    from loopmind.generate.song import SliceEvent

    ramp = np.linspace(0.0, 0.8, SR, dtype=np.float32)
    path = write_audio(tmp_path / "ramp.wav", ramp, subtype="FLOAT")
    ev = SliceEvent(step=0, length=16, source_path=str(path), source_start_s=0.0,
                    source_end_s=1.0, reverse=True)
    y = render_clip(_seq_clip(path, [ev], start_bar=0, bars=1), _song(120.0, []), cache,
                    role="fx")[0]
    assert y[10] > 0.75 and y[SR - 200] < 0.01  # loud first: played backwards
    shifted = SliceEvent(**{**ev.__dict__, "semitones": 2.0, "reverse": False})
    short = SliceEvent(**{**shifted.__dict__, "source_end_s": 0.2, "step": 8})
    song = _song(120.0, [Track("keys", "keys", [_seq_clip(path, [shifted, shifted, short])])])
    first = render_tracks(song, cache=cache)
    again = render_tracks(song, cache=cache)
    # the long slice goes through Rubber Band once, the short one is re-pitched by
    # varispeed; both are cached
    assert len(stretch_calls) == 1
    assert again.cache_hits == 2 and first.cache_misses == 2
    assert np.array_equal(first.tracks["keys"], again.tracks["keys"])


def test_texture_clip_fills_its_bars_exactly_and_is_cached(tmp_path: Path,
                                                           cache: StretchCache) -> None:
    bpm = 123.0
    path = write_audio(tmp_path / "pad.wav", tone(220.0, 2.0, harmonics=4), subtype="FLOAT")
    clip = Clip(start_bar=1, bars=3, source_path=str(path), source_start_s=0.0,
                source_end_s=2.0, texture={"kind": "freeze", "seed": 9}, generated=True)
    song = _song(bpm, [Track("texture", "pad", [clip])])
    first = render_tracks(song, cache=cache, tail_s=0.0)
    y = first.tracks["texture"]
    a, b = song.bar_to_sample(1), song.bar_to_sample(4)
    assert np.abs(y[:, :a]).max() == 0.0
    assert np.sqrt(np.mean(y[:, a:b] ** 2)) > 0.01
    assert y.shape[1] == b
    again = render_tracks(song, cache=cache, tail_s=0.0)
    assert again.cache_hits == 1 and np.array_equal(again.tracks["texture"], y)


def test_missing_slice_source_skips_only_those_events(tmp_path: Path,
                                                      cache: StretchCache) -> None:
    from loopmind.generate.song import SliceEvent

    path = write_audio(tmp_path / "hit.wav", _impulses(4410, [5]), subtype="FLOAT")
    good = SliceEvent(step=0, length=4, source_path=str(path), source_start_s=0.0,
                      source_end_s=0.1)
    gone = SliceEvent(step=4, length=4, source_path=str(tmp_path / "gone.wav"),
                      source_start_s=0.0, source_end_s=0.1)
    song = _song(120.0, [Track("fills", "perc", [_seq_clip(path, [good, gone])])])
    r = render_tracks(song, cache=cache)
    assert np.abs(r.tracks["fills"]).max() > 0.5
    assert any("1 of 2 slices" in n for n in r.notes)


def test_glide_slides_the_note_into_the_next_pitch(tmp_path: Path, cache: StretchCache) -> None:
    """An 808 slide: the note keeps its pitch, then bends over its last two 16ths to the
    glide's interval; without a glide the same event renders as before."""
    from loopmind.generate.song import SliceEvent

    bpm = 120.0  # a 16th is 0.125 s: the note is 1 s, the bend its last 0.25 s
    path = write_audio(tmp_path / "sub.wav", tone(110.0, 2.0), subtype="FLOAT")
    kw = dict(step=0, length=8, source_path=str(path), source_start_s=0.0, source_end_s=2.0)
    flat = render_clip(_seq_clip(path, [SliceEvent(**kw)], start_bar=0, bars=1),
                       _song(bpm, []), cache, role="bass")[0]
    slid = render_clip(_seq_clip(path, [SliceEvent(**kw, glide=7.0)], start_bar=0, bars=1),
                       _song(bpm, []), cache, role="bass")[0]
    bend_at = int(0.75 * SR)
    np.testing.assert_array_equal(slid[:bend_at], flat[:bend_at])
    assert abs(_peak_hz(slid, SR // 4, SR // 4) - 110.0) < 2.0
    # over the bend's last quarter the pitch is near a fifth up (5.25 to 7 semitones)
    hz = _peak_hz(slid, int(0.95 * SR), int(0.045 * SR))
    assert 110.0 * 2 ** (5.0 / 12) < hz < 110.0 * 2 ** (7.3 / 12), hz
    assert abs(_peak_hz(flat, int(0.95 * SR), int(0.045 * SR)) - 110.0) < 12.0
    assert np.abs(slid[int(1.0 * SR) + 10:]).max() == 0.0  # the note still ends on time


def test_add_glides_slides_only_legato_steps_within_an_octave() -> None:
    from loopmind.generate.interpret.parts import add_glides
    from loopmind.generate.song import SliceEvent

    def ev(step, length, pitch):
        return SliceEvent(step=step, length=length, source_path="/x.wav", source_start_s=0.0,
                          source_end_s=1.0, pitch=pitch)

    class Always:
        def random(self):
            return 0.0

    events = [ev(0, 4, 36), ev(4, 4, 41), ev(10, 2, 43), ev(12, 4, 60), ev(16, 4, 48),
              ev(20, 4, 48)]
    assert add_glides(events, Always()) == 2
    # 36 -> 41 legato: slides; 41 -> 43 has a gap; 43 -> 60 is over an octave;
    # 60 -> 48 legato within an octave: slides; 48 -> 48 is no change
    assert [e.glide for e in events] == [5.0, 0.0, 0.0, -12.0, 0.0, 0.0]
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    many_a = [ev(i * 4, 4, 36 + (i % 5)) for i in range(40)]
    many_b = [ev(i * 4, 4, 36 + (i % 5)) for i in range(40)]
    n = add_glides(many_a, rng_a)
    assert n == add_glides(many_b, rng_b) and 5 < n < 35  # some, not all; repeatable
    assert [e.glide for e in many_a] == [e.glide for e in many_b]

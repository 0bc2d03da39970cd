"""Duplicates: the fingerprint and similarity on generated audio, grouping, and the library.

Copies are made as a user's library gets them (written to a file, then read back with the one
decoder), so the resampling and MP3 paths are the real ones.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from fixtures_audio import SR, chord_loop, drum_hit, drum_loop, tone, write_audio
from loopmind.index import dupes
from loopmind.index.dupes import (DEFAULT_THRESHOLD, UnionFind, find_duplicates, fingerprint,
                                  near_groups, parse, similarity)
from loopmind.library.audio import decode

THR = DEFAULT_THRESHOLD


def _mp3_supported() -> bool:
    return "MP3" in sf.available_formats()


def fp_of(path) -> bytes:
    d = decode(path)
    return fingerprint(d.y, sr=d.sr)


def make_copies(tmp_path, name: str, y: np.ndarray, sr: int = SR) -> dict[str, bytes]:
    """The original and its copies, each written and decoded: kind -> fingerprint."""
    out = {"orig": fp_of(write_audio(tmp_path / f"{name}.wav", y, sr))}
    peak = float(np.abs(y).max())
    out["gain+6"] = fp_of(write_audio(tmp_path / f"{name}_up.wav",
                                      y * min(10 ** (6 / 20), 0.99 / peak), sr))
    out["gain-6"] = fp_of(write_audio(tmp_path / f"{name}_down.wav", y * 10 ** (-6 / 20), sr))
    out["trim"] = fp_of(write_audio(tmp_path / f"{name}_trim.wav", y[int(0.05 * sr):], sr))
    out["resample"] = fp_of(write_audio(tmp_path / f"{name}_48k.wav",
                                        resample_poly(y, 160, 147).astype(np.float32), 48000))
    if _mp3_supported():
        p = tmp_path / f"{name}.mp3"
        sf.write(p, y, sr, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.65,
                 bitrate_mode="CONSTANT")  # 128 kbit/s
        out["mp3"] = fp_of(p)
    return out


SOUNDS = {
    "kick": lambda: drum_hit("kick_punchy", amplitude=0.5),
    "snare": lambda: drum_hit("snare_fat", amplitude=0.5),
    "drum_loop": lambda: drum_loop(120, 2, genre="house", amplitude=0.5),
    "chord_loop": lambda: chord_loop("A minor", 90, 1, amplitude=0.5),
    "tone": lambda: tone(440.0, 1.0, harmonics=3),
}


@pytest.mark.parametrize("name", sorted(SOUNDS))
def test_copies_score_above_threshold(tmp_path, name):
    fps = make_copies(tmp_path, name, SOUNDS[name]())
    for kind, fp in fps.items():
        s = similarity(fps["orig"], fp)
        assert s >= THR, f"{name} {kind}: {s:.3f}"
    # copies of copies too
    assert similarity(fps["trim"], fps["resample"]) >= THR


def _analysed(y: np.ndarray, sr: int = SR) -> bytes:
    from loopmind.library.audio import ANALYSIS_SR

    return fingerprint(resample_poly(y, ANALYSIS_SR // 50, sr // 50).astype(np.float32),
                       sr=ANALYSIS_SR)


@pytest.mark.parametrize("a, b", [
    (("kick_punchy",), ("kick_dark",)),
    (("kick_punchy",), ("kick_soft",)),
    (("snare_tight",), ("snare_fat",)),
    (("hihat_closed",), ("hihat_closed_dark",)),
    (("tom_low",), ("tom_mid",)),
])
def test_different_drum_hits_score_below_threshold(a, b):
    s = similarity(_analysed(drum_hit(*a)), _analysed(drum_hit(*b)))
    assert s < THR, f"{a} vs {b}: {s:.3f}"


def test_a_softer_hit_with_another_tone_is_not_a_copy():
    # a velocity layer: quieter and darker, as a real softer hit is (a mere gain change of
    # one sample is a copy by definition)
    from scipy.signal import lfilter

    y = drum_hit("snare_fat")
    soft = lfilter([0.35, 0.35], [1.0, -0.3], y) * 0.4
    assert similarity(_analysed(y), _analysed(soft)) < THR
    assert similarity(_analysed(y), _analysed(y * 0.4)) >= THR


def test_loops_at_one_tempo_with_other_patterns_score_below_threshold():
    a = _analysed(drum_loop(120, 2, genre="house"))
    for genre in ("trap", "boombap", "dnb"):
        b = _analysed(drum_loop(120, 2, genre=genre))
        assert similarity(a, b) < THR, genre
    # the same chords in another key, same tempo and length
    c = _analysed(chord_loop("A minor", 90, 2))
    d = _analysed(chord_loop("C minor", 90, 2))
    assert similarity(c, d) < THR


def test_a_loop_rotated_by_a_sixteenth_is_not_a_copy():
    y = drum_loop(120, 2, genre="house")
    sixteenth = int(round(SR * 60 / 120 / 4))
    assert similarity(_analysed(y), _analysed(np.roll(y, -sixteenth))) < THR


def test_a_tone_and_its_transposition_score_below_threshold():
    a = _analysed(tone(440.0, 1.0, harmonics=3))
    for semitones in (1, 2, 12):
        b = _analysed(tone(440.0 * 2 ** (semitones / 12), 1.0, harmonics=3))
        assert similarity(a, b) < THR, semitones


def test_a_short_piece_of_a_longer_sound_is_not_a_copy():
    y = drum_loop(120, 4, genre="house")
    assert similarity(_analysed(y), _analysed(y[: len(y) // 2])) == 0.0
    hat = drum_hit("hihat_open")
    assert similarity(_analysed(hat), _analysed(hat[: len(hat) // 3])) < THR


def test_fingerprint_size_bounds():
    short = _analysed(drum_hit("kick_punchy"))
    assert 9 < len(short) <= 9 + dupes.N_BANDS * 30
    for bars in (1, 2, 8, 16):
        fp = _analysed(drum_loop(100, bars, genre="boombap"))
        assert len(fp) <= 9 + dupes.N_BANDS * dupes.MAX_FRAMES <= 2048
    c = parse(_analysed(drum_loop(100, 16, genre="boombap")))
    assert c.pool >= 4 and abs(c.duration_s - 16 * 4 * 60 / 100) < 0.01


def test_fingerprint_uses_the_shared_spectrogram_at_the_analysis_rate():
    from loopmind.library.analysis.features import Spectrogram

    y44 = drum_hit("snare_fat")
    y = resample_poly(y44, 1, 2).astype(np.float32)
    spec = Spectrogram(y, 22050)
    assert fingerprint(y, sr=22050, spec=spec) == fingerprint(y, sr=22050)
    # another rate is brought to the analysis rate first
    assert similarity(fingerprint(y44, sr=SR), fingerprint(y, sr=22050)) >= 0.99


@pytest.mark.parametrize("n", [0, 1, 10, 300, 2048])
def test_silence_and_very_short_input(n, rng):
    silent = fingerprint(np.zeros(n, dtype=np.float32), sr=22050)
    noise = fingerprint((rng.standard_normal(n) * 0.1).astype(np.float32), sr=22050)
    assert parse(silent).db.shape[1] == 0
    assert similarity(silent, silent) == 0.0  # silence is nobody's copy
    assert 0.0 <= similarity(noise, noise) <= 1.0
    assert similarity(silent, noise) == 0.0
    sound = _analysed(drum_hit("kick_punchy"))
    assert similarity(silent, sound) == 0.0
    assert 0.0 <= similarity(noise, sound) <= 1.0


def test_similarity_is_symmetric_and_one_for_itself(tmp_path):
    fps = make_copies(tmp_path, "loop", SOUNDS["drum_loop"]())
    others = [_analysed(drum_hit("kick_punchy")), _analysed(drum_loop(120, 2, genre="trap"))]
    allfp = list(fps.values()) + others
    for a in allfp:
        assert similarity(a, a) == pytest.approx(1.0)
        for b in allfp:
            assert similarity(a, b) == similarity(b, a)


def test_parse_rejects_garbage():
    with pytest.raises(ValueError):
        parse(b"")
    with pytest.raises(ValueError):
        parse(b"\x09" + b"\x00" * 20)
    fp = _analysed(drum_hit("kick_punchy"))
    with pytest.raises(ValueError):
        parse(fp[:-1])


def test_union_find_groups():
    uf = UnionFind(7)
    for i, j in [(0, 3), (3, 5), (1, 2), (5, 0)]:
        uf.union(i, j)
    assert uf.groups() == [[0, 3, 5], [1, 2]]
    assert not uf.union(0, 5)


def test_near_groups_verify_candidates_and_skip_same_pairs():
    y = drum_hit("snare_fat")
    k = drum_hit("kick_punchy")
    fps = [_analysed(y), _analysed(y * 0.5), _analysed(k), _analysed(k[2205:]),
           _analysed(drum_hit("hihat_open"))]
    contours = [parse(f) for f in fps]
    all_pairs = [(i, j) for i in range(5) for j in range(5) if i != j]
    groups, found = near_groups(contours, all_pairs)
    assert groups == [[0, 1], [2, 3]]
    assert set(found) == {(0, 1), (2, 3)} and all(s >= THR for s in found.values())
    groups, _ = near_groups(contours, all_pairs, same=lambda i, j: {i, j} == {2, 3})
    assert groups == [[0, 1]]
    # only candidates are verified
    groups, _ = near_groups(contours, [(2, 3)])
    assert groups == [[2, 3]]


def test_candidate_pairs_hold_the_copies():
    hits = ["kick_punchy", "kick_dark", "snare_fat", "snare_tight", "hihat_open", "tom_low",
            "clap", "perc_conga", "crash"]
    fps = []
    for h in hits:
        y = drum_hit(h)
        fps += [_analysed(y), _analysed(y[int(0.05 * SR):] * 0.6)]
    cands = dupes.candidate_pairs([parse(f) for f in fps], k=3)
    for n in range(len(hits)):
        assert (2 * n, 2 * n + 1) in cands, hits[n]


# -- the library -----------------------------------------------------------------------------

def _add_file(lib, path: str, content_hash: str | None, fps: list[bytes | None], *,
              status: str = "ok") -> tuple[int, list[int]]:
    import os

    from loopmind.library.models import AudioFile, Segment

    with lib.write() as session:
        f = AudioFile(path=path, path_bytes=os.fsencode(path), content_hash=content_hash,
                      status=status)
        session.add(f)
        session.flush()
        segs = []
        for n, fp in enumerate(fps):
            s = Segment(file_id=f.id, index=n, start_s=float(n), end_s=float(n + 1),
                        fingerprint=fp)
            session.add(s)
            session.flush()
            segs.append(s.id)
        return f.id, segs


@pytest.fixture
def library():
    from loopmind.library.db import Library

    lib = Library()
    yield lib
    lib.close()


def test_find_duplicates_in_a_library(library):
    snare = drum_hit("snare_fat")
    kick = drum_hit("kick_punchy")
    loop = drum_loop(120, 1, genre="house")
    f_snare = _analysed(snare)
    f_kick = _analysed(kick)
    _add_file(library, "/s/snare.wav", "h-snare", [f_snare])
    _add_file(library, "/s/snare copy.wav", "h-snare", [f_snare])         # exact
    _add_file(library, "/s/snare.mp3", "h-snare-mp3", [_analysed(snare * 0.5)])  # near
    _add_file(library, "/s/kick.wav", "h-kick", [f_kick])
    _add_file(library, "/s/kick trimmed.wav", "h-kick2", [_analysed(kick[2205:])])
    _add_file(library, "/s/hat.wav", "h-hat", [_analysed(drum_hit("hihat_open"))])
    # one file whose two segments are the same sound: not a duplicate of itself
    _add_file(library, "/s/two kicks.wav", "h-two", [_analysed(drum_hit("kick_808")),
                                                      _analysed(drum_hit("kick_808"))])
    _add_file(library, "/s/loop.wav", "h-loop", [_analysed(loop)])
    _add_file(library, "/s/gone.wav", "h-loop-gone", [_analysed(loop)], status="missing")
    _add_file(library, "/s/gone copy.wav", "h-kick", [f_kick], status="error")
    _add_file(library, "/s/old.wav", "h-old", [None])

    report = find_duplicates(library)
    assert [[m.path for m in g.members] for g in report.exact] == \
        [["/s/snare copy.wav", "/s/snare.wav"]]
    near = [[m.path for m in g.members] for g in report.near]
    assert sorted(near) == [["/s/kick trimmed.wav", "/s/kick.wav"],
                            ["/s/snare.mp3", "/s/snare.wav"]]
    assert all(g.similarity >= THR for g in report.near)
    assert all(m.segment_id is not None for g in report.near for m in g.members)
    assert report.segments_without_fingerprint == 1
    assert report.segments_compared == 8  # the exact copy and the missing/error files left out
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["exact"][0]["kind"] == "exact" and doc["near"][0]["kind"] == "near"
    text = report.describe()
    assert "snare.mp3" in text and "kick trimmed.wav" in text

    assert find_duplicates(library, exact_only=True).near == []
    strict = find_duplicates(library, threshold=1.01)
    assert strict.near == [] and len(strict.exact) == 1

    # stages and progress, as the command line shows them; the result does not change
    stages, progress = [], []
    seen = find_duplicates(library, on_stage=stages.append,
                           on_progress=lambda what, f: progress.append((what, f)),
                           vector_search=lambda sid, k: [])
    assert stages == ["finding candidates", f"verifying {seen.pairs_verified} pairs"]
    fractions = [f for what, f in progress if what == "verifying"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [f for what, f in progress if what == "nearest by sound"][0] == 0.0
    assert [[m.path for m in g.members] for g in seen.near] == \
        [[m.path for m in g.members] for g in report.near]


def test_near_groups_report_progress_to_the_end():
    contours = [parse(_analysed(drum_hit(n))) for n in ("snare_fat", "kick_punchy", "hihat_open")]
    calls = []
    near_groups(contours, [(0, 1), (1, 2), (0, 2)], on_progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_find_duplicates_adds_the_vector_search_neighbours(library):
    snare = drum_hit("snare_fat")
    _, (a,) = _add_file(library, "/s/a.wav", "ha", [_analysed(snare)])
    _, (b,) = _add_file(library, "/s/b.wav", "hb", [_analysed(snare * 0.7)])
    _, (c,) = _add_file(library, "/s/c.wav", "hc", [_analysed(drum_hit("kick_punchy"))])
    asked = []

    def neighbours(segment_id, k):
        asked.append((segment_id, k))
        return {a: [(b, 0.9), (999, 0.5)], b: [(c, 0.8)], c: []}[segment_id]  # 999: gone

    report = find_duplicates(library, vector_search=neighbours, k=4)
    assert sorted(asked) == [(a, 4), (b, 4), (c, 4)]
    assert [[m.path for m in g.members] for g in report.near] == [["/s/a.wav", "/s/b.wav"]]
    assert report.pairs_verified >= 2
    # the fingerprints' own candidates find the copy when the vector index does not
    report = find_duplicates(library, vector_search=lambda sid, k: [])
    assert [[m.path for m in g.members] for g in report.near] == [["/s/a.wav", "/s/b.wav"]]


@pytest.mark.skipif(not _mp3_supported(), reason="libsndfile without MP3")
def test_indexed_copies_are_found(tmp_path, audio_folder):
    """Through the real pipeline: the indexer stores fingerprints that group the copies."""
    from loopmind.library.db import Library
    from loopmind.library.indexer import Indexer
    from loopmind.library.models import Segment

    if not hasattr(Segment, "fingerprint"):
        pytest.skip("Segment.fingerprint not there yet")
    lib = Library()
    src = audio_folder / "oneshots" / "snare.wav"
    y, sr = sf.read(src)
    shutil.copy(src, audio_folder / "oneshots" / "snare copy.wav")
    sf.write(audio_folder / "oneshots" / "snare quiet.wav", y * 0.5, sr)
    sf.write(audio_folder / "oneshots" / "snare.mp3", y, sr, format="MP3",
             subtype="MPEG_LAYER_III", compression_level=0.65, bitrate_mode="CONSTANT")
    idx = Indexer(lib, workers=1)
    idx.add_folder(audio_folder)
    idx.scan()
    report = find_duplicates(lib)
    assert [sorted(m.path.rsplit("/", 1)[-1] for m in g.members) for g in report.exact] == \
        [["snare copy.wav", "snare.wav"]]
    near = [sorted(m.path.rsplit("/", 1)[-1] for m in g.members) for g in report.near]
    # of the two byte-identical files, the one with the lower id stands for both
    assert (["snare quiet.wav", "snare.mp3", "snare.wav"] in near
            or ["snare copy.wav", "snare quiet.wav", "snare.mp3"] in near), near
    assert not any("kick.wav" in g and "snare.wav" in g for g in near)
    lib.close()

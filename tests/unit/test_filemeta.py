"""Loop metadata in the files themselves (ACID chunks): read safely, used when it agrees."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from loopmind.library.filemeta import LoopMeta, read_loop_meta

SR = 22050


def acid_chunk(*, bpm: float, beats: int, one_shot: bool = False, meter=(4, 4)) -> bytes:
    body = struct.pack("<IHHfIHHf", 0x01 if one_shot else 0x04, 60, 0, 0.0, beats,
                       meter[1], meter[0], bpm)
    return b"acid" + struct.pack("<I", len(body)) + body


def write_wav(path, y, *, chunks: bytes = b"", at_end: bool = False) -> None:
    """A 16-bit WAV with extra chunks before the data chunk (or after it, at the end)."""
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="WAV", subtype="PCM_16")
    w = buf.getvalue()
    i = w.index(b"data")
    body = w[12:] + chunks if at_end else w[12:i] + chunks + w[i:]
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)


def pad(seconds: float) -> np.ndarray:
    """A held chord: no onsets to measure a tempo from."""
    t = np.arange(int(round(seconds * SR))) / SR
    y = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    return (0.2 * y * np.minimum(1.0, t * 4)).astype(np.float32)


def test_acid_chunk_is_read_before_or_after_the_data(tmp_path):
    y = pad(2.0)
    junk = b"JUNK" + struct.pack("<I", 3) + b"abc\x00"  # an odd size and its pad byte
    for at_end in (False, True):
        p = tmp_path / f"loop{at_end}.wav"
        write_wav(p, y, chunks=junk + acid_chunk(bpm=96.0, beats=8), at_end=at_end)
        assert read_loop_meta(p) == LoopMeta(one_shot=False, bpm=96.0, beats=8, meter=(4, 4))
        # libsndfile still reads the audio
        assert len(sf.read(p)[0]) == len(y)


def test_no_chunk_other_formats_and_broken_headers_give_none(tmp_path):
    y = pad(1.0)
    plain = tmp_path / "plain.wav"
    write_wav(plain, y)
    flac = tmp_path / "x.flac"
    sf.write(flac, y, SR)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\x7f")  # a size past the end
    short = tmp_path / "short.wav"
    short.write_bytes(b"RIFF")
    for p in (plain, flac, broken, short, tmp_path / "missing.wav"):
        assert read_loop_meta(p) is None


def test_a_one_shot_flag_beats_the_name(tmp_path):
    from loopmind.library.analysis.segments import analyze_audio
    from loopmind.library.audio import decode

    p = tmp_path / "Chord Stab 120bpm.wav"
    write_wav(p, pad(2.0), chunks=acid_chunk(bpm=120.0, beats=4, one_shot=True))
    [seg] = analyze_audio(decode(p), path=p)
    assert seg.kind == "oneshot" and seg.bars is None


def test_a_tempo_the_length_confirms_is_the_loops_tempo(tmp_path):
    """A held pad has no onsets, so the audio gives no tempo; its chunk says 90 BPM and 8
    beats, which is its length (5.333 s), so it is a 2-bar loop at 90 BPM."""
    from loopmind.library.analysis.segments import METADATA_CONFIDENCE, analyze_audio
    from loopmind.library.audio import decode

    y = pad(8 * 60 / 90)
    bare = tmp_path / "pad.wav"
    write_wav(bare, y)
    [without] = analyze_audio(decode(bare), path=bare)
    assert without.bpm is None
    tagged = tmp_path / "pad_acid.wav"
    write_wav(tagged, y, chunks=acid_chunk(bpm=90.0, beats=8))
    [seg] = analyze_audio(decode(tagged), path=tagged)
    assert (seg.kind, seg.bpm, seg.bars) == ("loop", 90.0, 2.0)
    assert seg.bpm_confidence == pytest.approx(METADATA_CONFIDENCE)


def test_a_tempo_the_length_contradicts_is_not_trusted(tmp_path):
    """A chunk a tool filled with its project tempo (140 BPM, 4 beats = 1.71 s) on a 5.33 s
    file is not the loop's tempo: the file is not declared a 140 BPM loop."""
    from loopmind.library.analysis.segments import analyze_audio
    from loopmind.library.audio import decode

    p = tmp_path / "pad.wav"
    write_wav(p, pad(8 * 60 / 90), chunks=acid_chunk(bpm=140.0, beats=4))
    assert not read_loop_meta(p).agrees_with(8 * 60 / 90)
    [seg] = analyze_audio(decode(p), path=p)
    assert seg.bpm != 140.0 and seg.bpm_confidence < 0.9

"""The decoder: formats, resampling, channel folding and its errors."""

import numpy as np
import pytest
import soundfile as sf

from loopmind.errors import DecodeError, UnsupportedFormatError
from loopmind.library.audio import decode, probe


def _tone(sr, seconds, channels=2, freq=440.0):
    t = np.arange(int(sr * seconds)) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32)


@pytest.mark.parametrize("ext,fmt,subtype", [
    (".wav", "WAV", "PCM_16"), (".aiff", "AIFF", "PCM_24"), (".flac", "FLAC", "PCM_16"),
    (".ogg", "OGG", "VORBIS"), (".mp3", "MP3", "MPEG_LAYER_III")])
def test_formats_decode(tmp_path, ext, fmt, subtype):
    path = tmp_path / f"tone{ext}"
    sf.write(path, _tone(44100, 2.0), 44100, format=fmt, subtype=subtype)
    d = decode(path)
    assert d.sr == 22050
    assert d.duration_s == pytest.approx(2.0, abs=0.06)
    # the tone survives: its spectrum peaks at 440 Hz
    spec = np.abs(np.fft.rfft(d.y[:16384]))
    assert np.fft.rfftfreq(16384, 1 / 22050)[spec.argmax()] == pytest.approx(440, abs=3)
    assert d.loudness.true_peak_db() == pytest.approx(-6.0, abs=0.6)


def test_resampling_is_seamless_across_blocks(tmp_path):
    sr = 48000
    path = tmp_path / "long.wav"
    sf.write(path, _tone(sr, 5.0, channels=1, freq=1000), sr, subtype="FLOAT")
    d = decode(path)
    assert len(d.y) == pytest.approx(5.0 * 22050, abs=2)
    # no discontinuities at block joins: sample-to-sample steps stay small
    steps = np.abs(np.diff(d.y[2000:-2000]))
    assert steps.max() < 0.2


def test_many_channels_high_rate(tmp_path):
    path = tmp_path / "8ch.wav"
    sr = 192000
    y = np.tile(_tone(sr, 1.0, channels=1), (1, 8)) * 0.5
    sf.write(path, y, sr, subtype="PCM_24")
    d = decode(path)
    assert d.info.channels == 8 and d.info.sr == sr
    assert d.duration_s == pytest.approx(1.0, abs=0.01)


def test_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(440).bytes(5000))
    for p in (empty, junk):
        with pytest.raises(DecodeError) as ei:
            decode(p)
        assert "\n" not in str(ei.value)
    nan = tmp_path / "nan.wav"
    y = _tone(44100, 0.5)
    y[100, 0] = np.nan
    sf.write(nan, y, 44100, subtype="FLOAT")
    with pytest.raises(DecodeError, match="NaN"):
        decode(nan)


def test_unsupported_extension_without_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr("loopmind.library.audio._ffmpeg", lambda: None)
    p = tmp_path / "song.m4a"
    p.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    with pytest.raises(UnsupportedFormatError, match="unsupported format .m4a"):
        probe(p)


def test_too_long_refused_from_header(tmp_path):
    p = tmp_path / "long.wav"
    sf.write(p, _tone(8000, 3.0, channels=1), 8000)
    with pytest.raises(DecodeError, match="too long"):
        decode(p, max_duration_s=1.0)


@pytest.mark.parametrize("sr_in", [44100, 48000, 96000, 32000, 11025, 8000])
def test_block_resampler_equals_resample_poly_of_the_whole_signal(sr_in):
    from scipy.signal import resample_poly

    from loopmind.library.audio import _rational, _resample_taps, _resampler

    rng = np.random.default_rng(440)
    up, down = _rational(sr_in, 22050)
    for n in (1, 77, 5000, 2 * 65536 + 17):
        y = rng.standard_normal(n).astype(np.float32)
        run = _resampler(sr_in, 22050)
        pieces, i = [], 0
        while i < n:
            size = int(rng.integers(1, 70000))
            pieces.append(run(y[i:i + size]))
            i += size
        pieces.append(run(np.zeros(0, dtype=np.float32), final=True))
        got = np.concatenate(pieces)
        want = resample_poly(y, up, down, window=_resample_taps(up, down))
        assert len(got) == len(want)
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"),
                                         ("WAV", "PCM_24"), ("WAV", "FLOAT"),
                                         ("WAV", "PCM_32"), ("WAVEX", "PCM_24")])
@pytest.mark.parametrize("channels", [1, 2])
def test_decoded_samples_are_libsndfiles_float_samples(tmp_path, fmt, subtype, channels):
    """Over several read blocks (the read buffer is reused) the analysis signal at the native
    rate is exactly the mono mix of libsndfile's float32 samples, and the loudness is the
    meter's on them: 16-bit PCM, scaled by the decoder itself, gives the same samples."""
    from loopmind.library.analysis.loudness import measure
    from loopmind.library.audio import BLOCK_FRAMES

    sr = 22050
    rng = np.random.default_rng(440)
    n = 3 * BLOCK_FRAMES + 1234
    y = np.clip(rng.standard_normal((n, channels)) * 0.3, -1, 1)
    y[1000] = 1.0  # full scale: the largest 16-bit sample
    y[2000] = -1.0
    path = tmp_path / f"x.{'wav' if fmt == 'WAVEX' else fmt.lower()}"
    sf.write(path, y, sr, format=fmt, subtype=subtype)
    want, _ = sf.read(path, dtype="float32", always_2d=True)
    d = decode(path, sr=sr)
    mono = want[:, 0] if channels == 1 else (want[:, 0] + want[:, 1]) * np.float32(0.5)
    np.testing.assert_array_equal(d.y, mono)
    ref = measure(want, sr)
    np.testing.assert_allclose(d.loudness.mean_square, ref.mean_square, rtol=1e-6)
    np.testing.assert_allclose(d.loudness.true_peak, ref.true_peak, rtol=1e-6)


@pytest.mark.parametrize("fmt,subtype,channels", [
    ("WAV", "GSM610", 1), ("WAV", "IMA_ADPCM", 2), ("WAV", "MS_ADPCM", 2), ("WAV", "ULAW", 2),
    ("WAV", "ALAW", 1), ("WAV", "PCM_U8", 2), ("AIFF", "PCM_S8", 1), ("WAV", "DOUBLE", 2)])
def test_other_wav_codecs_decode_to_libsndfiles_samples(tmp_path, fmt, subtype, channels):
    """Older sample libraries hold 8-bit, mu-law, ADPCM and GSM 6.10 WAVs. libsndfile cannot
    seek in some of them (GSM 6.10), which ``SoundFile.blocks`` refuses; the decoder reads
    them anyway, every block, and gets libsndfile's own samples."""
    from loopmind.library.audio import BLOCK_FRAMES

    sr = 8000
    rng = np.random.default_rng(7)
    n = 2 * BLOCK_FRAMES + 777
    y = np.clip(rng.standard_normal((n, channels)) * 0.2, -1, 1)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, y, sr, format=fmt, subtype=subtype)
    want, _ = sf.read(path, dtype="float32", always_2d=True)
    d = decode(path, sr=sr)
    mono = want[:, 0] if channels == 1 else (want[:, 0] + want[:, 1]) * np.float32(0.5)
    assert d.info.frames == len(want)
    np.testing.assert_array_equal(d.y, mono)


def test_channels_in_opposite_phase_are_not_folded_away(tmp_path):
    """A stereo file whose right channel is the left one polarity-flipped folds to silence in
    (L + R) / 2; the decoder then analyses the louder channel. Ordinary stereo (here two
    unrelated channels, and a wide pair at correlation -0.3) keeps the mono fold."""
    sr = 22050
    rng = np.random.default_rng(3)
    left = np.clip(rng.standard_normal(3 * sr) * 0.2, -1, 1).astype(np.float32)
    other = np.clip(rng.standard_normal(3 * sr) * 0.2, -1, 1).astype(np.float32)
    flipped = tmp_path / "flipped.wav"
    sf.write(flipped, np.stack([left, -0.9 * left], axis=1), sr, subtype="FLOAT")
    d = decode(flipped, sr=sr)
    np.testing.assert_array_equal(d.y, left)
    assert d.loudness.integrated_lufs() > -30  # the meter measures both channels as before
    for name, right in (("unrelated", other), ("wide", -0.3 * left + 0.95 * other)):
        path = tmp_path / f"{name}.wav"
        stereo = np.stack([left, right.astype(np.float32)], axis=1)
        sf.write(path, stereo, sr, subtype="FLOAT")
        np.testing.assert_array_equal(decode(path, sr=sr).y,
                                      (stereo[:, 0] + stereo[:, 1]) * np.float32(0.5))


@pytest.mark.parametrize("ext,subtype", [(".wav", "PCM_24"), (".flac", "PCM_24")])
def test_true_peak_of_a_quiet_segment_after_a_loud_one(tmp_path, ext, subtype):
    """The meter skips steps far below the file's running peak; a quiet span after a loud
    part is then read again from the file, so its true peak is what a meter interpolating
    every step gives (an fs/4 sine: samples 3 dB below the waveform)."""
    from loopmind.library.analysis.loudness import measure

    sr = 48000
    t = np.arange(sr * 3) / sr
    sine = np.sin(2 * np.pi * sr / 4 * t + np.pi / 4)
    y = np.concatenate([0.1 * sine, 0.9 * sine, 0.1 * sine])
    path = tmp_path / f"loud_then_quiet{ext}"
    sf.write(path, np.stack([y, 0.5 * y], axis=1), sr, subtype=subtype)
    d = decode(path)
    every_step = measure(sf.read(path, dtype="float32")[0], sr)
    assert every_step.running is None
    spans = [(6.0, 9.0), (7.0, 7.5), (6.5, None), (0.0, 3.0), (3.0, 6.0), (0.0, None)]
    for a, b in spans:
        assert d.true_peak_db(a, b) == pytest.approx(every_step.true_peak_db(a, b), abs=1e-4)
    assert not d.loudness.true_peak_exact(7.0, 7.5)  # the spans the second read measured
    assert d.true_peak_db(7.0, 7.5) == pytest.approx(20 * np.log10(0.1), abs=0.05)
    # the file gone before the second read: the meter's value (a lower bound), no error
    path.unlink()
    assert d.true_peak_db(7.0, 7.5) == pytest.approx(d.loudness.true_peak_db(7.0, 7.5))
    assert d.true_peak_db(7.0, 7.5) < 20 * np.log10(0.1) - 2.0


def test_a_long_file_is_metered_step_by_step(tmp_path):
    """A file longer than one loop can be (a song, a stem) is metered near every step's own
    peak, so none of its many segments is read twice; a short one near the running peak."""
    from loopmind.library.audio import RUNNING_PEAK_MAX_S

    sr = 8000
    for seconds, running in ((RUNNING_PEAK_MAX_S + 2.0, False), (5.0, True)):
        path = tmp_path / f"{seconds}.wav"
        sf.write(path, _tone(sr, seconds, channels=1), sr)
        d = decode(path)
        assert (d.loudness.running is not None) is running, seconds
        assert d.true_peak_db() == pytest.approx(-6.0, abs=0.3)



def _riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WAVE" + b"".join(cid + len(data).to_bytes(4, "little") + data
                              + (b"\0" if len(data) & 1 else b"") for cid, data in chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _chunks(path) -> list[tuple[bytes, bytes]]:
    raw = path.read_bytes()
    out, pos = [], 12
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4:pos + 8], "little")
        out.append((raw[pos:pos + 4], raw[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


@pytest.mark.parametrize("fmt", ["WAV", "WAVEX"])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
@pytest.mark.parametrize("channels", [1, 3])
def test_a_plain_wav_read_whole_decodes_as_libsndfile_reads_it(tmp_path, fmt, subtype,
                                                                 channels):
    """A small plain WAV is read once into memory and its samples viewed in place
    (``read_wav_image``); the decoded signal, header and loudness are exactly what the
    libsndfile path gives, with an odd-sized chunk before the data as well."""
    from loopmind.library.audio import BLOCK_FRAMES, read_wav_image

    rng = np.random.default_rng(5)
    y = np.clip(rng.standard_normal((BLOCK_FRAMES + 999, channels)) * 0.4, -1, 1)
    plain = tmp_path / "plain.wav"
    sf.write(plain, y, 48000, format=fmt, subtype=subtype)
    chunks = _chunks(plain)
    odd = tmp_path / "odd.wav"
    odd.write_bytes(_riff(*chunks[:-1], (b"LIST", b"INFOabc"), chunks[-1]))
    for path in (plain, odd):
        image = read_wav_image(path)
        assert image is not None and image.data == path.read_bytes()
        via_sndfile = decode(path, info=probe(path))
        via_image = decode(path, image=image)
        assert via_image.info == via_sndfile.info == probe(path)
        np.testing.assert_array_equal(via_image.y, via_sndfile.y)
        np.testing.assert_array_equal(via_image.loudness.mean_square,
                                      via_sndfile.loudness.mean_square)
        assert via_image.true_peak_db() == via_sndfile.true_peak_db()


def test_other_files_are_left_to_libsndfile(tmp_path, monkeypatch):
    """Anything but a small, complete, plain WAV gets no image: other containers and
    codecs, a streaming header (data size unknown), a data chunk before its format, a chunk
    running past the end, and a file above the size limit; they decode as before."""
    from loopmind.library import audio

    y = _tone(22050, 0.5)
    sf.write(tmp_path / "a.flac", y, 22050)
    sf.write(tmp_path / "u8.wav", y, 22050, subtype="PCM_U8")
    sf.write(tmp_path / "plain.wav", y, 22050)
    fmt, data = _chunks(tmp_path / "plain.wav")
    (tmp_path / "streaming.wav").write_bytes(
        _riff(fmt) + b"data" + (0xFFFFFFFF).to_bytes(4, "little") + data[1])
    (tmp_path / "data_first.wav").write_bytes(_riff(data, fmt))
    (tmp_path / "cut.wav").write_bytes(_riff(fmt, data)[:-100])
    for name in ("a.flac", "u8.wav", "data_first.wav", "cut.wav", "streaming.wav"):
        assert audio.read_wav_image(tmp_path / name) is None, name
    assert audio.read_wav_image(tmp_path / "plain.wav") is not None
    monkeypatch.setattr(audio, "WAV_IMAGE_MAX_BYTES", 1000)
    assert audio.read_wav_image(tmp_path / "plain.wav") is None
    assert decode(tmp_path / "plain.wav").info.frames == len(y)
    with pytest.raises(DecodeError, match="truncated"):
        decode(tmp_path / "cut.wav")

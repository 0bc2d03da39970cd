"""Audio made in code for tests: signals, small folders, and a factory of bad files.

Import from tests as ``from fixtures_audio import click_track, make_bad_files`` (conftest.py
puts this folder on ``sys.path``). Every generator is deterministic: random parts take a seed,
440 by default, as in ``numpy.random.default_rng(440)``.

Signals are float arrays in [-1, 1]; mono ones have shape (n,), stereo ones (n, 2). Loops
are bar-exact: ``bars * beats_per_bar * 60 / bpm`` seconds, rounded to samples.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopmind import demo

SR = 44100
SEED = 440


# -- signals -------------------------------------------------------------------------------

def bar_frames(bpm: float, bars: float, *, sr: int = SR, beats_per_bar: int = 4) -> int:
    """Samples in ``bars`` bars at ``bpm`` (the length every loop here has)."""
    return demo.bar_frames(bpm=bpm, bars=bars, sr=sr, beats_per_bar=beats_per_bar)


def click_track(bpm: float, bars: float, sr: int = SR, *, beats_per_bar: int = 4,
                click_s: float = 0.01, freq_hz: float = 1000.0, accent: bool = True,
                amplitude: float = 0.5) -> np.ndarray:
    """A metronome: a short decaying sine burst on every beat, bar-exact.

    Args:
        bpm: beats per minute.
        bars: length in bars.
        sr: sample rate in Hz.
        click_s: length of each click in seconds.
        freq_hz: click pitch; the downbeat is a fifth higher and louder when ``accent``.
        amplitude: peak of the downbeat click.

    Returns:
        mono float32 array, shape (bar_frames(bpm, bars),); clicks start exactly at
        ``round(i * 60 / bpm * sr)``.
    """
    n = bar_frames(bpm, bars, sr=sr, beats_per_bar=beats_per_bar)
    y = np.zeros(n, dtype=np.float32)
    m = max(1, int(click_s * sr))
    t = np.arange(m) / sr
    burst = np.sin(2 * np.pi * t * freq_hz) * np.exp(-t / (click_s / 4))
    hi = np.sin(2 * np.pi * t * freq_hz * 1.5) * np.exp(-t / (click_s / 4))
    beats = int(round(bars * beats_per_bar))
    for i in range(beats):
        at = int(round(i * 60.0 / bpm * sr))
        down = accent and i % beats_per_bar == 0
        seg = (hi if down else burst) * (amplitude if down or not accent else 0.6 * amplitude)
        end = min(n, at + m)
        y[at:end] += seg[:end - at].astype(np.float32)
    return y


def tone(freq_hz: float, duration_s: float, sr: int = SR, *, amplitude: float = 0.5,
         harmonics: int = 1, fade_s: float = 0.005) -> np.ndarray:
    """A steady tone with ``harmonics`` partials (amplitude 1/k), faded in and out.

    Returns:
        mono float32 array, shape (round(duration_s * sr),), peak about ``amplitude``.
    """
    n = int(round(duration_s * sr))
    t = np.arange(n) / sr
    y = sum(np.sin(2 * np.pi * k * freq_hz * t) / k for k in range(1, harmonics + 1)
            if k * freq_hz < sr / 2)
    y = np.asarray(y, dtype=np.float64)
    if np.abs(y).max() > 0:
        y *= amplitude / np.abs(y).max()
    nf = min(int(fade_s * sr), n // 2)
    if nf:
        ramp = np.linspace(0.0, 1.0, nf)
        y[:nf] *= ramp
        y[n - nf:] *= ramp[::-1]
    return y.astype(np.float32)


def noise(duration_s: float, seed: int = SEED, sr: int = SR, *, amplitude: float = 0.3,
          color: str = "white") -> np.ndarray:
    """Gaussian noise, "white" or "pink" (-3 dB/octave), scaled to peak ``amplitude``.

    Returns:
        mono float32 array, shape (round(duration_s * sr),).
    """
    n = int(round(duration_s * sr))
    y = np.random.default_rng(seed).standard_normal(n)
    if color == "pink":
        spec = np.fft.rfft(y)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        y = np.fft.irfft(spec / np.sqrt(f), n)
    elif color != "white":
        raise ValueError(f"unknown noise color {color!r}")
    return (y * amplitude / max(np.abs(y).max(), 1e-12)).astype(np.float32)


def silence(duration_s: float, sr: int = SR) -> np.ndarray:
    """Digital silence, mono float32."""
    return np.zeros(int(round(duration_s * sr)), dtype=np.float32)


def _mono(y: np.ndarray, mono: bool) -> np.ndarray:
    return (y.mean(axis=1) if mono and y.ndim == 2 else y).astype(np.float32)


def drum_loop(bpm: float, bars: int, sr: int = SR, *, genre: str = "house", seed: int = SEED,
              mono: bool = True, amplitude: float = 0.9) -> np.ndarray:
    """A drum loop from the demo library's synth (genres: trap, boombap, house, dnb).

    Hits sit on a 16th-note grid from bar 1 beat 1 (boom bap is swung and humanized by a few
    ms). Mono (n,) by default, stereo (n, 2) with ``mono=False``; peak ``amplitude``.
    """
    y = demo.drum_loop(genre, bpm=bpm, bars=bars, sr=sr, seed=seed)
    return _mono(y * amplitude / np.abs(y).max(), mono)


def chord_loop(key: str, bpm: float, bars: int, sr: int = SR, *, seed: int = SEED,
               instrument: str = "epiano", mono: bool = True,
               amplitude: float = 0.9) -> np.ndarray:
    """A chord loop in ``key`` ("A minor", "F# major"): i-VI-iv-V or I-vi-IV-V with a bass note.

    ``instrument`` is "epiano", "piano", "organ" or "pad". Mono (n,) by default.
    """
    y = demo.chord_loop(key, bpm=bpm, bars=bars, sr=sr, seed=seed, instrument=instrument)
    return _mono(y * amplitude / np.abs(y).max(), mono)


def drum_hit(name: str, sr: int = SR, *, seed: int = SEED, mono: bool = True,
             amplitude: float = 0.9) -> np.ndarray:
    """A drum one-shot from the demo synth, e.g. "kick_punchy", "snare_fat", "hihat_open".

    See ``loopmind.demo.DRUM_HITS`` for the names.
    """
    y = demo.drum_hit(name, sr=sr, seed=seed)
    return _mono(y * amplitude, mono)


# -- files ---------------------------------------------------------------------------------

_FORMATS = {".wav": "WAV", ".wave": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aif": "AIFF",
            ".aiff": "AIFF", ".mp3": "MP3"}


def write_audio(path: os.PathLike | str | bytes, y: np.ndarray, sr: int = SR, *,
                subtype: str | None = "PCM_16", format: str | None = None) -> Path:
    """Write ``y`` (shape (n,) or (n, channels)) with soundfile; return the path.

    ``format`` defaults from the extension (WAV for unknown ones, so ``x.mp3`` can hold a
    WAV); OGG files get the VORBIS subtype. ``path`` may be bytes (a non-UTF-8 name); the
    returned Path then carries the name with surrogate escapes, as os.listdir would give it.
    """
    import soundfile as sf

    raw = os.fsencode(path)
    fmt = format or _FORMATS.get(os.path.splitext(raw)[1].decode("ascii", "replace").lower(),
                                 "WAV")
    if fmt == "OGG":
        subtype = "VORBIS"
    elif fmt == "MP3":
        subtype = "MPEG_LAYER_III"
    buf = io.BytesIO()
    sf.write(buf, np.asarray(y), sr, format=fmt, subtype=subtype)
    # write through the bytes name: soundfile cannot open a str path holding surrogates
    with open(raw, "wb") as fh:
        fh.write(buf.getvalue())
    return Path(os.fsdecode(raw))


# what make_audio_folder writes: relative path -> truth
AUDIO_FOLDER_TRUTH: dict[str, dict] = {
    "loops/house_drums_120bpm.wav": {"kind": "loop", "role": "drumloop", "bpm": 120.0,
                                     "bars": 2, "key": None},
    "loops/chords_Amin_90bpm.wav": {"kind": "loop", "role": "keys", "bpm": 90.0, "bars": 2,
                                    "key": "A minor"},
    "loops/click_100bpm.flac": {"kind": "loop", "role": None, "bpm": 100.0, "bars": 2,
                                "key": None},
    "oneshots/kick.wav": {"kind": "oneshot", "role": "kick", "bpm": None, "bars": None,
                          "key": None},
    "oneshots/snare.wav": {"kind": "oneshot", "role": "snare", "bpm": None, "bars": None,
                           "key": None},
    "oneshots/hat.aiff": {"kind": "oneshot", "role": "hihat", "bpm": None, "bars": None,
                          "key": None},
    "oneshots/tone_440.wav": {"kind": "oneshot", "role": None, "bpm": None, "bars": None,
                              "key": None},
}


def make_audio_folder(folder: os.PathLike | str, *, seed: int = SEED) -> dict[str, dict]:
    """Write a handful of loops and one-shots (about 2 MB) into ``folder``.

    Returns:
        ``AUDIO_FOLDER_TRUTH``: relative path -> kind, role, bpm, bars, key.
    """
    folder = Path(folder)
    (folder / "loops").mkdir(parents=True, exist_ok=True)
    (folder / "oneshots").mkdir(parents=True, exist_ok=True)
    write_audio(folder / "loops/house_drums_120bpm.wav",
                drum_loop(120, 2, genre="house", seed=seed, mono=False), SR)
    write_audio(folder / "loops/chords_Amin_90bpm.wav",
                chord_loop("A minor", 90, 2, seed=seed, mono=False), SR)
    write_audio(folder / "loops/click_100bpm.flac", click_track(100, 2), SR)
    write_audio(folder / "oneshots/kick.wav", drum_hit("kick_punchy", seed=seed), SR)
    write_audio(folder / "oneshots/snare.wav", drum_hit("snare_tight", seed=seed, mono=False),
                SR)
    write_audio(folder / "oneshots/hat.aiff", drum_hit("hihat_closed", seed=seed), SR,
                subtype="PCM_24")
    write_audio(folder / "oneshots/tone_440.wav", tone(440.0, 1.0, harmonics=3), SR)
    return {k: dict(v) for k, v in AUDIO_FOLDER_TRUTH.items()}


# -- bad files -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BadFile:
    """What LoopMind should do with one file made by ``make_bad_files``.

    Attributes:
        expect: "error" (one clear per-file error, the batch goes on), "ok" (valid audio that
            must decode), or "walk" (a directory case: scanning must terminate and find the
            audio inside exactly once).
        error: for "error", the exception class name decode raises ("DecodeError" or its
            subclass "UnsupportedFormatError"; catch DecodeError to cover both).
        message: a lower-case word the one-line message contains (the decoder's wording today).
        note: why the case exists and any caveat.
    """

    expect: str
    error: str | None = None
    message: str | None = None
    note: str = ""


BAD_FILES: dict[str, BadFile] = {
    "valid": BadFile("ok", note="a plain 1 s stereo WAV: proves the batch goes on after errors"),
    "zero_byte": BadFile("error", "DecodeError", "empty", "a 0-byte .wav"),
    "truncated": BadFile(
        "ok", note="header claims 1 s, data holds 0.25 s (cut at a frame boundary). "
        "libsndfile clamps the length to the data present, so it decodes 11025 frames; a "
        "decoder cannot tell it was cut without parsing the header itself"),
    "truncated_mid_frame": BadFile(
        "ok", note="as 'truncated' but cut 3 bytes into a stereo 16-bit frame: the partial "
        "frame is dropped, 11025 frames decode"),
    "truncated_header": BadFile("error", "DecodeError", None,
                                "only the first 30 bytes of a WAV: no data chunk"),
    "random_wav": BadFile("error", "DecodeError", None, "4 KiB of random bytes named .wav"),
    "random_mp3": BadFile(
        "error", "DecodeError", None, "random bytes named .mp3: libmpg123 hunts for frame "
        "sync in them, prints resync notes on stderr, and libsndfile then reports the "
        "misleading 'File does not exist or is not a regular file'"),
    "random_flac": BadFile("error", "DecodeError", None, "random bytes named .flac"),
    "text_wav": BadFile("error", "DecodeError", None, "a text file named .wav"),
    "wav_as_mp3": BadFile(
        "ok", note="a valid WAV named .mp3 (wrong extension): libsndfile detects the format "
        "from the content, so it decodes as WAV (info.format == 'WAV')"),
    "random_m4a": BadFile(
        "error", "UnsupportedFormatError", "unsupported", "random bytes named .m4a: refused "
        "as unsupported without ffmpeg; with ffmpeg installed, ffmpeg fails and it is still "
        "UnsupportedFormatError"),
    "random_wma": BadFile("error", "UnsupportedFormatError", "unsupported",
                          "random bytes named .wma, as random_m4a"),
    "exotic_codec_wav": BadFile(
        "error", "DecodeError", "unimplemented", "a well-formed WAVE_FORMAT_EXTENSIBLE header "
        "whose sub-format GUID no codec knows: libsndfile says 'File contains data in an "
        "unimplemented format'"),
    "hour_long": BadFile(
        "error", "DecodeError", "too long", "a SPARSE file (no data written, about 8 disk "
        "blocks) whose header claims 1 hour of 44.1 kHz stereo 16-bit (635 MB of zeros). "
        "Refused from the header when max_duration_s (Settings: 30 min) is passed; without "
        "a limit it would decode an hour of silence. Anything that reads the whole file "
        "(a content hash) reads 635 MB: hash a bounded part or check the header first"),
    "multichannel_192k": BadFile(
        "ok", note="8 channels at 192 kHz, 2 s, 16-bit (6 MB): valid audio that must decode "
        "to 2 s of mono at the analysis rate with bounded memory; info.channels == 8, "
        "info.sr == 192000"),
    "nan_inf": BadFile("error", "DecodeError", "nan",
                       "a 32-bit float WAV holding NaN, +inf and -inf samples"),
    "non_utf8_name": BadFile(
        "ok", note="valid 1 s audio named b'caf\\xe9_loop.wav' (Latin-1, not UTF-8). The "
        "returned Path holds the name with a surrogate escape ('caf\\udce9_loop.wav'), as "
        "os.listdir gives it; it must decode, and be stored and printed without crashing. "
        "soundfile encodes str paths as strict UTF-8, so the decoder has to pass "
        "os.fsencode(path) to it"),
    "symlink_loop": BadFile("error", "DecodeError", "symlink loop",
                            "loop_a.wav -> loop_b.wav -> loop_a.wav (ELOOP on open)"),
    "dir_symlink_loop": BadFile(
        "walk", note="dir_loop/sub -> dir_loop (a directory symlink to its own parent) with "
        "dir_loop/inside_loop.wav: a scan must terminate and see inside_loop.wav once (do "
        "not follow directory symlinks, or track visited (st_dev, st_ino))"),
    "unreadable": BadFile(
        "error", "DecodeError", "permission denied", "a valid WAV with mode 000. Root "
        "ignores file modes: skip the check when permissions_enforced() is False"),
}


def permissions_enforced() -> bool:
    """Whether file modes stop this process (False as root, where mode 000 is readable)."""
    return hasattr(os, "geteuid") and os.geteuid() != 0


def _wav_header(*, channels: int, sr: int, bits: int, data_bytes: int, tag: int = 1,
                fmt_extra: bytes = b"") -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, sr, sr * block, block, bits) + fmt_extra
    chunks = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
              + b"data" + struct.pack("<I", data_bytes))
    return b"RIFF" + struct.pack("<I", len(chunks) + data_bytes) + chunks


def _wav_bytes(y: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def make_bad_files(folder: os.PathLike | str, *, seed: int = SEED) -> dict[str, Path]:
    """Write one file (or folder) per bad-input case into ``folder``.

    See ``BAD_FILES`` for what is expected of each. Cheap: about 7 MB is written (the hour-long
    file is sparse) and it takes well under a second.

    Returns:
        case name -> path (for "dir_symlink_loop", the looping directory).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, Path] = {}

    def put(name: str, filename: str | bytes, data: bytes) -> Path:
        raw = os.path.join(os.fsencode(folder), os.fsencode(filename))
        with open(raw, "wb") as fh:
            fh.write(data)
        out[name] = Path(os.fsdecode(raw))
        return out[name]

    stereo = np.stack([tone(220.0, 1.0), tone(330.0, 1.0)], axis=1)
    valid = _wav_bytes(stereo, SR)
    put("valid", "valid.wav", valid)
    put("zero_byte", "zero_byte.wav", b"")
    # a header claiming 1 s, with a quarter of the data: frames of 4 bytes after 44 header bytes
    quarter = 44 + 4 * (SR // 4)
    put("truncated", "truncated.wav", valid[:quarter])
    put("truncated_mid_frame", "truncated_mid_frame.wav", valid[:quarter + 3])
    put("truncated_header", "truncated_header.wav", valid[:30])
    for ext in ("wav", "mp3", "flac"):
        put(f"random_{ext}", f"random.{ext}", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    put("text_wav", "notes.wav",
        b"This is not audio.\nJust a text file someone named .wav by mistake.\n" * 20)
    put("wav_as_mp3", "wrong_extension.mp3", valid)
    put("random_m4a", "random.m4a", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    put("random_wma", "random.wma", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    # WAVE_FORMAT_EXTENSIBLE: cbSize 22, 16 valid bits, channel mask, then a made-up GUID
    guid = bytes.fromhex("4c4f4f504d494e440010800000aa0038")
    extensible = struct.pack("<HHI", 22, 16, 3) + guid
    body = rng.integers(0, 256, 8192, dtype=np.uint8).tobytes()
    put("exotic_codec_wav", "exotic_codec.wav",
        _wav_header(channels=2, sr=SR, bits=16, data_bytes=len(body), tag=0xFFFE,
                    fmt_extra=extensible) + body)
    # one hour of 44.1 kHz stereo 16-bit, as a sparse file: write the header, then extend
    hour_bytes = 3600 * SR * 2 * 2
    p = put("hour_long", "hour_long.wav",
            _wav_header(channels=2, sr=SR, bits=16, data_bytes=hour_bytes))
    os.truncate(p, 44 + hour_bytes)
    sr_hi = 192000
    t = np.arange(2 * sr_hi) / sr_hi
    multi = np.stack([0.3 * np.sin(2 * np.pi * 110 * (c + 1) * t) for c in range(8)], axis=1)
    put("multichannel_192k", "multichannel_192k.wav", _wav_bytes(multi, sr_hi))
    bad = stereo.astype(np.float32).copy()
    bad[1000, 0], bad[2000, 1], bad[3000, 0] = np.nan, np.inf, -np.inf
    put("nan_inf", "nan_inf.wav", _wav_bytes(bad, SR, "FLOAT"))
    put("non_utf8_name", b"caf\xe9_loop.wav", valid)
    a, b = folder / "loop_a.wav", folder / "loop_b.wav"
    os.symlink(b.name, a)
    os.symlink(a.name, b)
    out["symlink_loop"] = a
    loop_dir = folder / "dir_loop"
    loop_dir.mkdir()
    (loop_dir / "inside_loop.wav").write_bytes(valid)
    os.symlink(".", loop_dir / "sub", target_is_directory=True)
    out["dir_symlink_loop"] = loop_dir
    p = put("unreadable", "unreadable.wav", valid)
    os.chmod(p, 0)
    assert set(out) == set(BAD_FILES), set(out) ^ set(BAD_FILES)
    return out

"""The one decoder: every audio file LoopMind reads goes through ``decode``.

soundfile (libsndfile >= 1.1) reads WAV, AIFF, FLAC, OGG/Vorbis/Opus and MP3. Anything else is
handed to ffmpeg when it is installed, otherwise refused with a one-line error. Files are read
in blocks, down-mixed and resampled block by block, so memory stays bounded whatever the
channel count or sample rate; loudness is measured on the native-rate blocks on the way.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np

from loopmind.errors import DecodeError, UnsupportedFormatError
from loopmind.library.analysis.loudness import LoudnessMeter, LoudnessTrack
from loopmind.fileio import quiet_stderr as _quiet_stderr

log = logging.getLogger(__name__)

# files up to this long are metered with LoudnessMeter(running_peak=True)
RUNNING_PEAK_MAX_S = 30.0

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".opus", ".mp3"}
)
FFMPEG_EXTENSIONS = frozenset({".m4a", ".aac", ".wma", ".mp4", ".caf", ".w64"})
BLOCK_FRAMES = 1 << 16
ANALYSIS_SR = 22050


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says.

    Attributes:
        format: container, e.g. "WAV", "FLAC", "MP3".
        subtype: sample encoding, e.g. "PCM_16".
        sr: native sample rate in Hz.
        channels: channel count.
        frames: length in samples per channel.
    """

    format: str
    subtype: str
    sr: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sr if self.sr else 0.0


@dataclass
class DecodedAudio:
    """A decoded file: a mono analysis signal plus loudness measured at the native rate.

    Attributes:
        y: mono float32 signal at ``sr``, shape (n,).
        sr: sample rate of ``y`` (the analysis rate).
        info: the file's native properties.
        loudness: per-100 ms loudness and true peak of the native signal.
        path: the file, where a span's true peak can be measured again (see
            ``true_peak_db``; only files up to ``RUNNING_PEAK_MAX_S`` ever need it).
    """

    y: np.ndarray
    sr: int
    info: AudioInfo
    loudness: LoudnessTrack
    path: Path | None = None

    @property
    def duration_s(self) -> float:
        return len(self.y) / self.sr

    def true_peak_db(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        """True peak of a span of the file in dBTP.

        The meter oversamples only near the file's running peak, which gives the whole
        file's true peak and that of any span holding its own loudest sample so far; a span
        quieter than something before it (the quiet part of a long file) is read again from
        the file, that span alone (``_span_true_peak``).
        """
        lt = self.loudness
        if self.path is None or lt.true_peak_exact(start_s, end_s):
            return lt.true_peak_db(start_s, end_s)
        a, b = lt.span_frames(start_s, end_s, self.info.sr)
        try:
            peak = _span_true_peak(self.path, self.info, a, b, lt.true_peak_db(start_s, end_s))
        except Exception:  # noqa: BLE001 - the first read went through; keep its bound
            log.debug("true peak of %s [%d, %d) not re-read", self.path, a, b, exc_info=True)
            return lt.true_peak_db(start_s, end_s)
        return float(20.0 * np.log10(max(peak, 1e-6)))


def is_audio_path(path: os.PathLike | str) -> bool:
    """Whether the file name has an extension LoopMind tries to decode."""
    ext = os.path.splitext(os.fsdecode(path))[1].lower()
    return ext in AUDIO_EXTENSIONS or ext in FFMPEG_EXTENSIONS


def _os_error(path: Path, exc: OSError) -> DecodeError:
    if exc.errno == errno.EACCES:
        return DecodeError("permission denied")
    if exc.errno == errno.ELOOP:
        return DecodeError("symlink loop")
    if exc.errno == errno.ENOENT:
        return DecodeError("file not found")
    return DecodeError(exc.strerror or str(exc))


def _check_readable(path: Path) -> int:
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise _os_error(path, exc) from None
    if st.st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    if not head.strip(b"\x00"):
        raise DecodeError("not audio: the file starts with zero bytes")
    if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        _check_wav_complete(path, st.st_size)
    return st.st_size


def _riff_chunks(header_at, size: int):
    """(chunk id, offset of its body, its declared size) of each chunk of a RIFF file of
    ``size`` bytes, after the 12-byte RIFF/WAVE header, in file order; ``header_at(pos)``
    gives the 8 bytes at ``pos``. A chunk may declare more bytes than the file holds: the
    caller decides what that means."""
    pos = 12
    while pos + 8 <= size:
        hdr = header_at(pos)
        if len(hdr) < 8:
            return
        csize = int.from_bytes(hdr[4:8], "little")
        yield hdr[:4], pos + 8, csize
        pos += 8 + csize + (csize & 1)


def _check_wav_complete(path: Path, size: int) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says.

    libsndfile silently clamps such a file to the data present, so a cut-off download would
    otherwise look like a shorter sound. Streaming writers put 0 or 0xFFFFFFFF in the size
    field; those mean "unknown" and pass.
    """
    try:
        with open(path, "rb") as fh:
            def header_at(pos: int) -> bytes:
                fh.seek(pos)
                return fh.read(8)

            for cid, body, csize in _riff_chunks(header_at, size):
                if cid == b"data":
                    if csize in (0, 0xFFFFFFFF):
                        return
                    have = size - body
                    if have < csize:
                        raise DecodeError(
                            f"truncated: the header promises {csize} bytes of audio, "
                            f"the file holds {max(have, 0)}")
                    return
    except OSError:
        return


def probe(path: os.PathLike | str) -> AudioInfo:
    """Read the header of an audio file.

    Raises:
        DecodeError: the file is unreadable, empty or not audio.
        UnsupportedFormatError: the format is not one LoopMind decodes.
    """
    import soundfile as sf

    path = Path(os.fsdecode(path))
    _check_readable(path)
    try:
        with _quiet_stderr(path.suffix.lower() == ".mp3"):
            i = sf.info(os.fsencode(path))
    except Exception as exc:  # noqa: BLE001 - libsndfile raises RuntimeError/LibsndfileError
        if path.suffix.lower() in FFMPEG_EXTENSIONS or path.suffix.lower() not in AUDIO_EXTENSIONS:
            return _ffmpeg_probe(path)
        raise DecodeError(f"not a decodable audio file ({_sf_reason(exc)})") from None
    if i.samplerate <= 0 or i.channels <= 0:
        raise DecodeError("invalid header (no sample rate or channels)")
    frames = int(i.frames)
    if frames <= 0 or frames >= 2**62:
        # MP3 and some truncated files report unknown/huge lengths: count while decoding
        frames = max(frames, 0) if frames < 2**62 else 0
    return AudioInfo(format=i.format, subtype=i.subtype or "", sr=int(i.samplerate),
                     channels=int(i.channels), frames=frames)


def _sf_reason(exc: Exception) -> str:
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    if "does not exist or is not a regular file" in msg:
        # libsndfile's words when its MP3 reader finds no frame in an existing file
        return "no valid audio frames found"
    if ":" in msg and "Error opening" in msg:
        msg = msg.split(":", 1)[-1].strip() if msg.count(":") == 1 else msg.rsplit(":", 1)[-1].strip()
    return msg[:160]


def _rational(sr_in: int, sr_out: int) -> tuple[int, int]:
    """(up, down) with sr_out / sr_in ~= up / down and both at most 1000."""
    g = gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    if up > 1000 or down > 1000:
        # unusual rate pair: approximate with a nearby ratio (<0.1 % tempo error is far below
        # what analysis resolves)
        from fractions import Fraction

        fr = Fraction(sr_out, sr_in).limit_denominator(1000)
        up, down = fr.numerator, fr.denominator
    return up, down


@lru_cache(maxsize=16)
def _resample_taps(up: int, down: int) -> np.ndarray:
    """resample_poly's default anti-aliasing FIR for up/down, float32: ``firwin(2 * 10 *
    max_rate + 1, 1 / max_rate, window=("kaiser", 5.0))``, written out in numpy so that
    decoding does not import scipy.signal (about 1 s of start-up in every worker)."""
    max_rate = max(up, down)
    n_taps = 2 * 10 * max_rate + 1
    cutoff = 1.0 / max_rate  # relative to Nyquist
    m = np.arange(n_taps) - (n_taps - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(n_taps, 5.0)
    return (h / h.sum()).astype(np.float32)  # unit gain at DC, as firwin scales it


# outputs per matrix row: enough for the product to run at BLAS speed, few enough that the
# band of zeros in each row (the filter touches ~41 inputs of the row's 2 * 32 + 40) stays small
_ROW_OUTPUTS = 32


@lru_cache(maxsize=16)
def _row_matrix(up: int, down: int) -> tuple[int, int, int, int, np.ndarray]:
    """(periods per row m, inputs per row, left context, row width, the (width, m * up)
    float32 matrix) of ``_BlockResampler``; designed once per rate pair."""
    taps = _resample_taps(up, down)
    half = (len(taps) - 1) // 2
    g = taps.astype(np.float64) * up
    m = max(1, _ROW_OUTPUTS // up)
    n_row = m * up  # outputs per row
    left = -(-half // up)
    width = ((n_row - 1) * down + half) // up + left + 1
    w = np.arange(width)[:, None]
    q = np.arange(n_row)[None, :]
    k = q * down + half - (w - left) * up
    inside = (k >= 0) & (k <= 2 * half)
    matrix = np.where(inside, g[np.clip(k, 0, 2 * half)], 0.0).astype(np.float32)
    matrix.setflags(write=False)
    return m, m * down, left, width, matrix


class _BlockResampler:
    """Polyphase resampling by up/down, fed block by block, equal to ``resample_poly`` of the
    whole signal (zero padding at both ends) to float32 rounding.

    Output ``j`` is ``sum_i x[i] * g[j * down + half - i * up]`` with ``g`` the FIR times
    ``up``. Outputs are computed a row of ``m * up`` at a time as one matrix product: row ``r``
    reads the ``width`` inputs from ``r * m * down - left`` (a strided view of the buffered
    input) and multiplies them by a fixed banded matrix, so a block costs one BLAS call
    instead of upfirdn's scalar loop (about 5x faster at 44.1 -> 22.05 kHz).
    """

    def __init__(self, up: int, down: int):
        self.up, self.down = up, down
        self.m, self.hop, self.left, self.width, self.matrix = _row_matrix(up, down)
        # padded input: ``left`` zeros before the first sample, so row r starts at r * hop
        self.buf = np.zeros(self.left, dtype=np.float32)
        self.n_in = 0  # real input samples seen
        self.emitted = 0

    def _rows(self, n_rows: int) -> np.ndarray:
        if n_rows <= 0:
            return np.zeros(0, dtype=np.float32)
        # row r: the ``width`` inputs from r * hop, viewed with as_strided directly
        # (sliding_window_view's argument handling costs about 20 us a block)
        size = self.buf.itemsize
        view = np.lib.stride_tricks.as_strided(
            self.buf[: (n_rows - 1) * self.hop + self.width], (n_rows, self.width),
            (self.hop * size, size), writeable=False)
        out = (view @ self.matrix).ravel()
        self.buf = self.buf[n_rows * self.hop:]
        return out

    def __call__(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        self.n_in += len(x)
        self.buf = np.concatenate([self.buf, x])
        if not final:
            out = self._rows((len(self.buf) - self.width) // self.hop + 1)
            self.emitted += len(out)
            return out
        n_out = -(-self.n_in * self.up // self.down) - self.emitted
        if n_out <= 0:
            return np.zeros(0, dtype=np.float32)
        n_rows = -(-n_out // (self.m * self.up))
        need = (n_rows - 1) * self.hop + self.width
        if len(self.buf) < need:
            self.buf = np.concatenate(
                [self.buf, np.zeros(need - len(self.buf), dtype=np.float32)])
        out = self._rows(n_rows)[:n_out]
        self.emitted += len(out)
        return out


def resample(y: np.ndarray, *, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(y, up, down)`` (its default Kaiser FIR) for a float32
    signal of shape (n,), computed by the block resampler; float32, shape (ceil(n * up /
    down),)."""
    if up == down:
        return np.asarray(y, dtype=np.float32)
    return _BlockResampler(up, down)(y, final=True)


def _resampler(sr_in: int, sr_out: int):
    """A block resampler with state: ``run(x, final=False) -> y`` (see _BlockResampler).
    The output never shares memory with ``x`` (decode reuses its read buffer)."""
    if sr_in == sr_out:
        return lambda x, final=False: np.array(x, dtype=np.float32)
    return _BlockResampler(*_rational(sr_in, sr_out))


def _blocks(f, buf: np.ndarray):
    """``f.blocks(out=buf)`` that also reads files libsndfile cannot seek in (GSM 6.10 WAV,
    some ADPCM variants), for which ``blocks`` refuses to start; blocks are views of ``buf``."""
    while True:
        block = f.read(len(buf), dtype=buf.dtype.name, always_2d=True, out=buf)
        if len(block) == 0:
            return
        yield block
        if len(block) < len(buf):  # libsndfile reads short only at the end
            return


def _float_blocks(f, subtype: str):
    """Blocks of a soundfile.SoundFile as float32 (frames, channels), read into one reused
    buffer: a block is valid until the next one is read.

    16-bit PCM is read as int16 and scaled here: libsndfile's own int16 -> float conversion
    costs about three times the whole int16 read, and ``i * 2**-15`` is exact in float32, so
    the samples are the ones libsndfile gives.
    """
    out = np.empty((BLOCK_FRAMES, f.channels), dtype=np.float32)
    if subtype != "PCM_16":
        yield from _blocks(f, out)
        return
    raw = np.empty((BLOCK_FRAMES, f.channels), dtype=np.int16)
    for block in _blocks(f, raw):
        yield np.multiply(block, np.float32(1.0 / 32768.0), out=out[:len(block)],
                          dtype=np.float32)


# -- plain WAV files read whole --------------------------------------------------------------
# A loop or one-shot in a plain WAV (most of a sample library) is read once, into memory: the
# content hash and the decoder take the same bytes, and the samples are viewed in place
# instead of going through libsndfile's reader (which copies and converts them once more).
# Anything else (other containers, big files, odd or damaged headers) goes through libsndfile.

WAV_IMAGE_MAX_BYTES = 32 << 20
# (libsndfile subtype, bytes per sample) by (WAVE format tag, bits per sample)
_WAV_SUBTYPES = {(1, 16): ("PCM_16", 2), (1, 24): ("PCM_24", 3), (1, 32): ("PCM_32", 4),
                 (3, 32): ("FLOAT", 4)}
# the tail shared by the KSDATAFORMAT_SUBTYPE GUIDs of WAVE_FORMAT_EXTENSIBLE
_WAVEX_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


@dataclass(frozen=True)
class WavImage:
    """A plain WAV file held in memory: its bytes, its header, and where the samples are.

    Attributes:
        data: the whole file.
        info: what the header says, as ``probe`` would give it.
        offset: first byte of the samples in ``data``.
    """

    data: bytes
    info: AudioInfo
    offset: int


def read_wav_image(path: os.PathLike | str, size: int | None = None) -> WavImage | None:
    """The file read whole when it is a plain WAV (RIFF, PCM of 16, 24 or 32 bits or 32-bit
    float, a complete data chunk) of at most ``WAV_IMAGE_MAX_BYTES``; None otherwise, and
    for any error (``probe`` and ``decode`` then give the file's own message).

    Args:
        size: the file's size from a ``stat`` the caller made; a file whose size is
            different when read (being written) is left to the other path.
    """
    path = os.fsdecode(path)
    if os.path.splitext(path)[1].lower() not in (".wav", ".wave"):
        return None
    try:
        if size is None:
            size = os.stat(path).st_size
        if not 0 < size <= WAV_IMAGE_MAX_BYTES:
            return None
        with open(path, "rb") as fh:
            data = fh.read(size + 1)
    except OSError:
        return None
    if len(data) != size:
        return None
    parsed = _parse_wav(data)
    if parsed is None:
        return None
    info, offset = parsed
    return WavImage(data=data, info=info, offset=offset)


def _parse_wav(data: bytes) -> tuple[AudioInfo, int] | None:
    """(header, offset of the samples) of a plain WAV in ``data``, or None when the file is
    anything libsndfile should read itself."""
    import struct

    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt = None
    for cid, body, csize in _riff_chunks(lambda pos: data[pos:pos + 8], len(data)):
        if body + csize > len(data):
            return None  # a chunk running past the end (a truncated file, among others)
        if cid == b"fmt ":
            if csize < 16 or fmt is not None:
                return None
            tag, channels, sr, _, align, bits = struct.unpack_from("<HHIIHH", data, body)
            container = "WAV"
            if tag == 0xFFFE:
                if csize < 40 or data[body + 26:body + 40] != _WAVEX_GUID_TAIL:
                    return None
                tag = int.from_bytes(data[body + 24:body + 26], "little")
                container = "WAVEX"
            known = _WAV_SUBTYPES.get((tag, bits))
            if known is None or channels < 1 or sr < 1 or align != channels * known[1]:
                return None
            fmt = (container, known[0], channels, sr, align)
        elif cid == b"data":
            if fmt is None or csize in (0, 0xFFFFFFFF):
                return None
            container, subtype, channels, sr, align = fmt
            frames = csize // align
            if frames == 0:
                return None
            return AudioInfo(format=container, subtype=subtype, sr=sr, channels=channels,
                             frames=frames), body
    return None


def _image_blocks(image: WavImage):
    """The samples of a ``WavImage`` as float32 (frames, channels) blocks of
    ``BLOCK_FRAMES``, in one reused buffer, with the values libsndfile gives (integers scaled
    by powers of two, which is exact in float32 for up to 24 bits and rounds as libsndfile
    does for 32)."""
    info = image.info
    ch, n = info.channels, info.frames
    out = np.empty((BLOCK_FRAMES, ch), dtype=np.float32)
    if info.subtype == "PCM_24":
        raw = np.frombuffer(image.data, dtype=np.uint8, count=n * ch * 3,
                            offset=image.offset).reshape(n * ch, 3)
        # each sample in the top three bytes of an int32 (the low byte zero): x * 256
        wide = np.zeros((min(n, BLOCK_FRAMES) * ch, 4), dtype=np.uint8)
        for a in range(0, n, BLOCK_FRAMES):
            k = min(BLOCK_FRAMES, n - a)
            w = wide[:k * ch]
            w[:, 1:] = raw[a * ch:(a + k) * ch]
            yield np.multiply(w.view("<i4").reshape(k, ch), np.float32(2.0 ** -31),
                              out=out[:k], dtype=np.float32)
        return
    dtype, scale = {"PCM_16": ("<i2", 2.0 ** -15), "PCM_32": ("<i4", 2.0 ** -31),
                    "FLOAT": ("<f4", 1.0)}[info.subtype]
    samples = np.frombuffer(image.data, dtype=dtype, count=n * ch,
                            offset=image.offset).reshape(n, ch)
    for a in range(0, n, BLOCK_FRAMES):
        block = samples[a:a + BLOCK_FRAMES]
        if scale == 1.0:
            np.copyto(out[:len(block)], block)
            yield out[:len(block)]
        else:
            yield np.multiply(block, np.float32(scale), out=out[:len(block)],
                              dtype=np.float32)


def _file_blocks(path: Path, subtype: str):
    """``_float_blocks`` of the file, opened with libsndfile for as long as it is read."""
    import soundfile as sf

    with sf.SoundFile(os.fsencode(path)) as f:
        yield from _float_blocks(f, subtype)


def check_duration(info: AudioInfo, max_duration_s: float | None) -> None:
    """Refuse a file whose header says it is longer than ``max_duration_s``.

    Raises:
        DecodeError: the file is too long.
    """
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise DecodeError(f"too long: {info.duration_s / 60:.1f} min "
                          f"(limit {max_duration_s / 60:.0f} min)")


def decode(path: os.PathLike | str, *, sr: int = ANALYSIS_SR,
           max_duration_s: float | None = None, info: AudioInfo | None = None,
           image: WavImage | None = None) -> DecodedAudio:
    """Decode a file to a mono analysis signal and measure its loudness.

    Args:
        path: the audio file (only read, never written).
        sr: sample rate of the returned signal in Hz.
        max_duration_s: refuse files longer than this (checked from the header first).
        info: the file's header from ``probe`` when the caller already read it.
        image: the file already read whole (``read_wav_image``); without it or ``info``, a
            small plain WAV is read whole here.

    Raises:
        DecodeError: unreadable, corrupt, too long, or containing NaN/infinite samples.
        UnsupportedFormatError: not a format LoopMind decodes (and no ffmpeg for it).
    """
    path = Path(os.fsdecode(path))
    if image is None and info is None:
        image = read_wav_image(path)
    if image is not None:
        info = image.info
    elif info is None:
        info = probe(path)
    if info.format == "FFMPEG":
        return _ffmpeg_decode(path, info, sr=sr, max_duration_s=max_duration_s)
    check_duration(info, max_duration_s)
    meter_channels = min(info.channels, 2)
    # a file short enough to be one loop interpolates only near its running peak; a long one
    # (a song, a stem: many segments, most quieter than its loudest part) near every step's
    # own peak, so its segments need no second read
    meter = LoudnessMeter(info.sr, meter_channels,
                          running_peak=0 < info.duration_s <= RUNNING_PEAK_MAX_S)
    resample = _resampler(info.sr, sr)
    pieces: list[np.ndarray] = []
    n_read = 0
    limit_frames = None if max_duration_s is None else int(max_duration_s * info.sr) + 1
    # energies of the mono fold (mid) and of the side: a fold that cancels (left and right in
    # opposite phase) is replaced by one channel below
    e_mid = e_side = 0.0
    side = np.empty(BLOCK_FRAMES, dtype=np.float32)
    try:
        blocks = _image_blocks(image) if image is not None else _file_blocks(path, info.subtype)
        with closing(blocks):
            # only floating-point files can hold NaN or infinity
            check_finite = info.subtype in ("FLOAT", "DOUBLE", "VORBIS", "OPUS", "")
            for block in blocks:
                if check_finite and not np.isfinite(block.sum(dtype=np.float64)):
                    raise DecodeError("contains NaN or infinite samples")
                n_read += len(block)
                if limit_frames is not None and n_read > limit_frames:
                    raise DecodeError(f"too long (more than {max_duration_s / 60:.0f} min)")
                block = _to_stereo(block)
                meter.feed(block)
                if block.shape[1] == 1:
                    mono = block[:, 0]
                else:
                    mono = (block[:, 0] + block[:, 1]) * np.float32(0.5)
                    d = np.subtract(block[:, 0], block[:, 1], out=side[:len(block)])
                    e_mid += float(np.dot(mono, mono))
                    e_side += 0.25 * float(np.dot(d, d))
                pieces.append(resample(mono))
        # mid^2 + side^2 is the channels' mean energy
        if e_mid < _FOLD_CANCELLED * (e_mid + e_side):
            # the fold lost more than it kept: analyse the louder channel instead
            pieces = _louder_channel(path, info, sr)
            resample = None
    except DecodeError:
        raise
    except MemoryError:
        raise DecodeError("out of memory while decoding") from None
    except Exception as exc:  # noqa: BLE001 - libsndfile errors mid-stream (truncated data)
        if n_read == 0:
            raise DecodeError(f"corrupt audio data ({_sf_reason(exc)})") from None
        # a truncated file: keep what decoded
    if resample is not None:
        pieces.append(resample(np.zeros(0, dtype=np.float32), final=True))
    y = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    if n_read == 0 or len(y) == 0:
        raise DecodeError("no audio frames (empty or truncated file)")
    info = AudioInfo(format=info.format, subtype=info.subtype, sr=info.sr,
                     channels=info.channels, frames=n_read)
    return DecodedAudio(y=np.ascontiguousarray(y, dtype=np.float32), sr=sr, info=info,
                        loudness=meter.result(), path=path)


# the mono fold (L + R) / 2 keeps (1 + r) / 2 of the channels' mean energy for a correlation
# r between them: 1/2 for unrelated channels, 1/4 at r = -1/2. Below that the channels are
# mostly in opposite phase (a polarity-flipped channel, an extreme stereo widener) and the fold
# is not the sound
_FOLD_CANCELLED = 0.25


def _span_true_peak(path: Path, info: AudioInfo, a: int, b: int, bound_db: float) -> float:
    """True peak (linear) of native frames ``[a, b)`` of a file, every step interpolated as
    the meter does (with its context of ``_TP_HALF`` frames each side): a second read of one
    segment. ``bound_db`` (what the meter found, a lower bound) is kept if it is larger."""
    import soundfile as sf

    from loopmind.library.analysis.loudness import _TP_HALF, _block_true_peak, step_frames

    h = _TP_HALF
    lo, hi = max(0, a - h), b + h
    parts: list[np.ndarray] = []
    with sf.SoundFile(os.fsencode(path)) as f:
        at = 0
        if f.seekable():
            f.seek(lo)
            at = lo
        for block in _float_blocks(f, info.subtype):
            block = _to_stereo(block)
            end = at + len(block)
            if end > lo:
                parts.append(block[max(0, lo - at):hi - at].T.copy())
            at = end
            if at >= hi:
                break
    got = np.concatenate(parts, axis=1) if parts else np.zeros((1, 0), dtype=np.float32)
    # laid out as the meter's blocks: left context, the frames, right context (zeros past
    # either end of the file)
    x = np.zeros((got.shape[0], (b - a) + 2 * h), dtype=np.float32)
    off = lo - (a - h)
    x[:, off:off + got.shape[1]] = got
    values, _ = _block_true_peak(x, step_frames(info.sr), b - a)
    return max(float(values.max()) if len(values) else 0.0, 10 ** (bound_db / 20.0))


def _to_stereo(block: np.ndarray) -> np.ndarray:
    """Many channels folded to stereo (odd channels left, even right); mono and stereo as
    they are."""
    if block.shape[1] <= 2:
        return block
    return np.stack([block[:, 0::2].mean(axis=1), block[:, 1::2].mean(axis=1)], axis=1)


def _louder_channel(path: Path, info: AudioInfo, sr: int) -> list[np.ndarray]:
    """The louder channel of the (stereo-folded) file at ``sr``, as decode's pieces: a second
    read, for the rare file whose channels cancel in the mono fold."""
    import soundfile as sf

    resamplers = [_resampler(info.sr, sr), _resampler(info.sr, sr)]
    pieces: list[list[np.ndarray]] = [[], []]
    energy = [0.0, 0.0]
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            for block in _float_blocks(f, info.subtype):
                block = _to_stereo(block)
                for c in (0, 1):
                    x = block[:, c]
                    energy[c] += float(np.dot(x, x))
                    pieces[c].append(resamplers[c](x))
    except Exception:  # noqa: BLE001 - the first read already went through; keep what decoded
        pass
    c = int(energy[1] > energy[0])
    return pieces[c] + [resamplers[c](np.zeros(0, dtype=np.float32), final=True)]


def load(path: os.PathLike | str, *, sr: int = ANALYSIS_SR) -> tuple[np.ndarray, int]:
    """Mono float32 signal of a file at ``sr`` (a convenience over ``decode``)."""
    d = decode(path, sr=sr)
    return d.y, d.sr


# -- ffmpeg, only if present ---------------------------------------------------------------

def _ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def _ffmpeg_probe(path: Path) -> AudioInfo:
    ext = path.suffix.lower() or "(no extension)"
    if _ffmpeg() is None:
        raise UnsupportedFormatError(
            f"unsupported format {ext}: LoopMind reads WAV, AIFF, FLAC, OGG and MP3 "
            "(install ffmpeg for other formats)")
    return AudioInfo(format="FFMPEG", subtype="", sr=0, channels=0, frames=0)


def _ffmpeg_decode(path: Path, info: AudioInfo, *, sr: int,
                   max_duration_s: float | None) -> DecodedAudio:
    native_sr = 44100
    cmd = [_ffmpeg() or "ffmpeg", "-v", "error", "-nostdin", "-i", str(path),
           "-f", "f32le", "-ac", "2", "-ar", str(native_sr)]
    if max_duration_s is not None:
        cmd += ["-t", str(max_duration_s + 1)]
    cmd += ["-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DecodeError(f"ffmpeg failed: {exc}") from None
    if proc.returncode != 0 or not proc.stdout:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UnsupportedFormatError(
            f"ffmpeg could not decode it ({reason[-1][:120] if reason else 'no audio'})")
    block = np.frombuffer(proc.stdout, dtype=np.float32).reshape(-1, 2)
    if max_duration_s is not None and len(block) > max_duration_s * native_sr:
        raise DecodeError(f"too long (more than {max_duration_s / 60:.0f} min)")
    if not np.isfinite(block).all():
        raise DecodeError("contains NaN or infinite samples")
    meter = LoudnessMeter(native_sr, 2)
    meter.feed(block)
    g = gcd(native_sr, sr)
    y = resample(block.mean(axis=1), up=sr // g, down=native_sr // g)
    info = AudioInfo(format=path.suffix.lstrip(".").upper(), subtype="ffmpeg", sr=native_sr,
                     channels=2, frames=len(block))
    return DecodedAudio(y=y, sr=sr, info=info, loudness=meter.result())

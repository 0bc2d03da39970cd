"""Render a song's tracks: every clip stretched to the song tempo, shifted to its key and placed
sample-exactly on its bar line.

A loop clip's *unit* is its source segment stretched so that it lasts exactly ``source_bars``
bars at the song tempo (and pitch-shifted for melodic roles); the clip repeats the unit to fill
its bars. A pattern clip triggers its one-shot on 16th-note steps. Units are the expensive part
(Rubber Band through pedalboard), so each distinct one is computed once per render, in a thread
pool (pedalboard releases the GIL), and kept in a ``StretchCache`` on disk for the next render.

Generated parts (hybrid and interpretive modes) add two kinds of clip. A sequence clip
(``Clip.events``) plays slices of the user's files on the 16th grid: each distinct slice
(span x reverse x pitch shift) is a unit too, re-pitched by Rubber Band or, for drums and
short slices, by varispeed as a sampler would, and cached like the others; each event lands
sample-exactly on its step and is cut at its length. A texture clip (``Clip.texture``) is its
source processed into exactly ``bars`` bars of new audio by ``interpret.textures`` (granular,
spectral freeze, long stretch, riser, swell), cached by its parameters and seed.

Everything here is deterministic: the arranger decided everything, and summation happens in
song order after all units are ready, so the result is bit-identical whatever ``workers`` is.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from loopmind.errors import DecodeError, LoopMindError
from loopmind.fileio import remove_least_recent
from loopmind.generate.song import STEPS_PER_BAR, Clip, SliceEvent, Song

log = logging.getLogger(__name__)

# bump whenever a unit's audio would change for the same key (stretcher options, trimming)
RENDER_VERSION = 1
DEFAULT_CACHE_BYTES = 2 * 1024**3
DEFAULT_TAIL_S = 2.0
# roles that are never pitch-shifted (an unpitched hit shifted to a key just sounds detuned)
UNPITCHED_ROLES = frozenset({"kick", "snare", "hihat", "cymbal", "tom", "clap", "perc",
                             "drumloop"})
# roles whose pattern hits cut the previous hit of the same clip, like a drum machine's voice
CHOKE_ROLES = frozenset({"kick", "snare", "hihat", "clap", "tom", "perc", "bass"})
# below this distance from 1 a stretch is not worth the stretcher: < 0.5 ms per second of drift
_NO_STRETCH_TOL = 5e-4
_CHOKE_FADE_S = 0.003
_DECLICK_S = 0.002  # fades on a segment before it is stretched
_CONTEXT_S = 0.2  # silence fed to the stretcher on each side of a unit (a few windows)
# a loop repeating inside its clip fades in over at most 1 ms: enough to remove a step, short
# enough to keep the downbeat's attack (a 5 ms fade audibly dulls a kick on every repeat)
_SEAM_FADE_IN_S = 0.001
_VELOCITY_EXPONENT = 1.5
_CUT_FADE_S = 0.005  # where a sequence event's note ends before its slice does
# slices up to this long are re-pitched by varispeed whatever their role (see slice_key)
VARISPEED_MAX_S = 0.5


# -- reading sources -------------------------------------------------------------------------

def _fold_stereo(block: np.ndarray) -> np.ndarray:
    """(n, channels) -> (2, n) float32: mono duplicated, many channels folded odd/even."""
    if block.shape[1] == 1:
        mono = block[:, 0]
        return np.stack([mono, mono])
    if block.shape[1] == 2:
        return np.ascontiguousarray(block.T)
    return np.stack([block[:, 0::2].mean(axis=1), block[:, 1::2].mean(axis=1)]).astype(
        np.float32)


def _resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (C, n) audio channel by channel with the library decoder's polyphase
    resampler: scipy's ``resample_poly`` (its default Kaiser FIR) to float32 rounding, as one
    matrix product per block of output rows instead of a per-sample loop."""
    if sr_in == sr_out:
        return y
    from loopmind.library.audio import _rational, resample

    up, down = _rational(sr_in, sr_out)
    return np.stack([resample(np.ascontiguousarray(c, dtype=np.float32), up=up, down=down)
                     for c in y])


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad (2, m) audio to exactly n samples."""
    if y.shape[1] == n:
        return y
    if y.shape[1] > n:
        return y[:, :n]
    out = np.zeros((y.shape[0], n), dtype=np.float32)
    out[:, :y.shape[1]] = y
    return out


def load_source(path: os.PathLike | str, start_s: float, end_s: float, *,
                sr: int, mono: bool = False) -> np.ndarray:
    """Read one segment of a file as stereo at the song rate.

    Only the segment's frames are read where soundfile can seek; formats soundfile cannot open
    go through ``loopmind.library.audio.decode`` (mono, duplicated to both channels).

    Args:
        path: the audio file (never written).
        start_s, end_s: the segment in seconds from the start of the file.
        sr: the output sample rate in Hz.
        mono: return the mono fold, shape (1, n) (folded before resampling).

    Returns:
        float32 array, shape (2, round((end_s - start_s) * sr)); a segment reaching past the end
        of the file is padded with silence.

    Raises:
        DecodeError: the file is missing, unreadable, or the segment is empty or past its end.
    """
    from loopmind.library import audio

    path = Path(os.fsdecode(path))
    n_out = int(round((end_s - start_s) * sr))
    if n_out <= 0 or start_s < 0:
        raise DecodeError(f"{path.name}: empty segment {start_s:.3f}-{end_s:.3f} s")
    try:
        os.stat(path)
    except OSError as exc:
        raise DecodeError(f"{path.name}: {audio._os_error(path, exc)}") from None
    try:
        f = _open_soundfile(path)
    except Exception:  # noqa: BLE001 - not a soundfile format: the library decoder decides
        y = _load_decoded(path, start_s, end_s, sr=sr, n_out=n_out)
        return y[0:1] if mono else y
    try:
        with f:
            file_sr = int(f.samplerate)
            first = int(round(start_s * file_sr))
            n_in = int(round(end_s * file_sr)) - first
            if f.seekable():
                if first >= f.frames > 0:
                    raise DecodeError(f"{path.name}: segment starts past the end of the file")
                f.seek(first)
            else:
                skip = first
                while skip > 0:  # read and drop: still bounded memory
                    got = f.read(min(skip, 1 << 16), dtype="float32", always_2d=True)
                    if len(got) == 0:
                        raise DecodeError(f"{path.name}: segment starts past the end of the "
                                          "file")
                    skip -= len(got)
            block = f.read(n_in, dtype="float32", always_2d=True)
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - libsndfile errors
        raise DecodeError(f"{path.name}: {audio._sf_reason(exc)}") from None
    if len(block) == 0:
        raise DecodeError(f"{path.name}: no audio in {start_s:.3f}-{end_s:.3f} s")
    if not np.isfinite(block.sum(dtype=np.float64)):
        raise DecodeError(f"{path.name}: contains NaN or infinite samples")
    y = _fold_stereo(block)
    if mono:  # folded before resampling: half the work
        y = (y[0:1] + y[1:2]) * np.float32(0.5)
    y = _resample(y, file_sr, sr)
    return _fit(np.ascontiguousarray(y, dtype=np.float32), n_out)


def _open_soundfile(path: Path):
    import soundfile as sf

    # soundfile encodes str paths as strict UTF-8; bytes reach non-UTF-8 names too
    return sf.SoundFile(os.fsencode(path))


def _load_decoded(path: Path, start_s: float, end_s: float, *, sr: int,
                  n_out: int) -> np.ndarray:
    from loopmind.library import audio

    try:
        decoded = audio.decode(path, sr=sr)
    except DecodeError as exc:
        raise DecodeError(f"{path.name}: {exc}") from None
    first = int(round(start_s * sr))
    mono = decoded.y[first:first + n_out]
    if len(mono) == 0:
        raise DecodeError(f"{path.name}: segment starts past the end of the file")
    return _fit(np.stack([mono, mono]).astype(np.float32), n_out)


# -- the stretcher and its cache -------------------------------------------------------------

def _rubberband(y: np.ndarray, sr: int, *, stretch: float, semitones: float,
                high_quality: bool) -> np.ndarray:
    from pedalboard import time_stretch

    return time_stretch(np.ascontiguousarray(y, dtype=np.float32), float(sr),
                        stretch_factor=float(stretch),
                        pitch_shift_in_semitones=float(semitones),
                        high_quality=bool(high_quality))


def _stretch(y: np.ndarray, sr: int, *, stretch: float, semitones: float,
             high_quality: bool = False) -> np.ndarray:
    """Rubber Band (via pedalboard) on (2, n) float32 audio: one call per unit, so tests can
    count them. ``high_quality`` picks the R3 ("finer") engine over R2 ("faster")."""
    return _rubberband(y, sr, stretch=stretch, semitones=semitones, high_quality=high_quality)


def _varispeed(y: np.ndarray, *, semitones: float) -> np.ndarray:
    """Shift (2, n) audio by ``semitones`` as a sampler does: played ``2 ** (semitones / 12)``
    times faster (so shorter), resampled with scipy's polyphase filter.

    Returns:
        float32 array, shape (2, about n / 2 ** (semitones / 12)).
    """
    from scipy.signal import resample_poly

    ratio = Fraction(2.0 ** (float(semitones) / 12.0)).limit_denominator(240)
    # playing `ratio` times faster = resampling by down / up with the rate unchanged
    return resample_poly(y, ratio.denominator, ratio.numerator, axis=1).astype(np.float32)


@lru_cache(maxsize=512)
def _stretch_offset(sr: int, stretch: float, semitones: float, high_quality: bool) -> int:
    """Samples by which the stretcher's output runs late (negative: early) once it is past its
    first window, measured on a click.

    Rubber Band times the first few ms of its input right but everything after it shifted by
    a constant that depends on the ratio and the shift (R2: about 25 ms x (1 - 1 / stretch),
    so up to +-10 ms for the usual ratios). Feeding it context before the audio and removing
    this measured constant puts every onset within about 1 ms of where it belongs.
    """
    pre = int(_CONTEXT_S * sr)
    n = pre + sr // 2
    x = np.zeros(n, dtype=np.float32)
    m = max(8, int(0.002 * sr))
    at = pre + sr // 8
    x[at:at + m] = np.hanning(m) * np.sin(2 * np.pi * 2000.0 * np.arange(m) / sr)
    y = _rubberband(x[None, :], sr, stretch=stretch, semitones=semitones,
                    high_quality=high_quality)[0]
    box = np.ones(32, dtype=np.float32) / 32

    def peak(z: np.ndarray) -> int:
        return int(np.argmax(np.convolve(np.abs(z), box, "same")))

    return int(round(peak(y) - peak(x) / stretch))


def _stretch_aligned(y: np.ndarray, sr: int, *, stretch: float, semitones: float,
                     high_quality: bool) -> np.ndarray:
    """Stretch (2, n) audio to round(n / stretch) samples with its onsets where they belong.

    The stretcher gets ``_CONTEXT_S`` of silence on both sides, so the audio's first onset is
    past its start-up and shifted by the same measured constant as every later one (a loop's
    own end as context would make repeats seamless for well-cut loops, but turns the jump of a
    badly cut one into a burst a few ms past the seam, out of reach of the fades). The output
    is cut from where the audio's first sample lands.
    """
    n = y.shape[1]
    pad = int(_CONTEXT_S * sr)
    # a mono source (both channels equal) is stretched once: Rubber Band gives each channel
    # of a dual-mono pair exactly the mono result, at half the cost
    mono = y.shape[0] == 2 and np.array_equal(y[0], y[1])
    channels = y[:1] if mono else y
    silence = np.zeros((channels.shape[0], pad), np.float32)
    ext = np.concatenate([silence, channels, silence], axis=1)
    out = _stretch(ext, sr, stretch=stretch, semitones=semitones, high_quality=high_quality)
    # the offset hardly depends on a fraction of a semitone: a quarter-tone grid keeps the
    # measurements few when slices are re-pitched by cents (whole shifts are unchanged)
    first = int(round(pad / stretch)) + _stretch_offset(sr, stretch, round(semitones * 4) / 4,
                                                        high_quality)
    out = _fit(out[:, max(0, first):], int(round(n / stretch)))
    return np.concatenate([out, out]) if mono else out


@dataclass(frozen=True)
class UnitKey:
    """Everything a unit's audio depends on.

    Attributes:
        path: the source file; size and mtime_ns: its state when read (a changed file misses).
        start_s, end_s: the segment.
        stretch: speed factor rounded to 1e-4 (1.0 = not stretched).
        semitones: pitch shift.
        sr: output rate.
        n_samples: the unit's exact length, or -1 for "as long as the stretcher makes it".
        reverse: the source is reversed before stretching.
        high_quality: Rubber Band's R3 engine rather than R2.
        varispeed: shift pitch the way a sampler does, by playing faster or slower (length
            changes with pitch; for drum slices, whose attack a phase vocoder smears).
    """

    path: str
    size: int
    mtime_ns: int
    start_s: float
    end_s: float
    stretch: float
    semitones: float
    sr: int
    n_samples: int
    reverse: bool
    high_quality: bool = False
    varispeed: bool = False

    @property
    def needs_stretcher(self) -> bool:
        return self.stretch != 1.0 or self.semitones != 0

    def digest(self) -> str:
        fields_ = (os.fsencode(self.path), self.size, self.mtime_ns, round(self.start_s, 6),
                   round(self.end_s, 6), self.stretch, self.semitones, self.sr,
                   self.n_samples, self.reverse, self.high_quality, RENDER_VERSION)
        if self.varispeed:  # appended only when set, so direct-mode units keep their files
            fields_ += ("varispeed",)
        return hashlib.sha256(repr(fields_).encode()).hexdigest()


@dataclass(frozen=True)
class TextureKey:
    """Everything a texture clip's audio depends on (see ``interpret.textures``).

    Attributes:
        path, size, mtime_ns, start_s, end_s: the source span and its file's state.
        semitones: shift of the source to the song's key before processing.
        sr: output rate.
        n_samples: the texture's exact length (the clip's bars at the song tempo).
        spec: the clip's ``texture`` dict as canonical JSON (kind, seed, parameters).
    """

    path: str
    size: int
    mtime_ns: int
    start_s: float
    end_s: float
    semitones: float
    sr: int
    n_samples: int
    spec: str

    @property
    def needs_stretcher(self) -> bool:
        return True  # always worth caching

    @property
    def reverse(self) -> bool:
        return False

    def digest(self) -> str:
        from loopmind.generate.interpret.textures import TEXTURE_VERSION

        raw = repr(("texture", os.fsencode(self.path), self.size, self.mtime_ns,
                    round(self.start_s, 6), round(self.end_s, 6), self.semitones, self.sr,
                    self.n_samples, self.spec, RENDER_VERSION, TEXTURE_VERSION))
        return hashlib.sha256(raw.encode()).hexdigest()


class StretchCache:
    """Stretched and pitch-shifted units on disk, one ``.npy`` (float32, shape (2, n)) per key.

    Files are written to a temporary name and renamed into place, so concurrent renders (threads
    or processes) only ever see whole files. A hit refreshes the file's mtime; when the folder
    grows past ``max_bytes`` the least recently used files are removed until it is under 90 %.
    Failures to write (a full or read-only disk) only cost speed: the render goes on.
    """

    def __init__(self, cache_dir: os.PathLike | str | None = None, *,
                 max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        """Args:
            cache_dir: LoopMind's cache folder (``Settings.cache_dir`` when None); units live in
                its ``stretch`` subfolder.
            max_bytes: size cap of that subfolder.
        """
        if cache_dir is None:
            from loopmind.config import get_settings

            cache_dir = get_settings().cache_dir
        self.folder = Path(cache_dir) / "stretch"
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._size: int | None = None  # bytes in the folder, counted on the first write

    def _path(self, key: UnitKey) -> Path:
        d = key.digest()
        return self.folder / d[:2] / f"{d}.npy"

    def get(self, key: UnitKey) -> np.ndarray | None:
        """The cached unit, or None."""
        p = self._path(key)
        try:
            y = np.load(p, allow_pickle=False)
        except FileNotFoundError:
            with self._lock:
                self.misses += 1
            return None
        except Exception:  # noqa: BLE001 - a damaged file is a miss and goes away
            log.warning("removing unreadable cache file %s", p)
            with suppress(OSError):
                p.unlink()
            with self._lock:
                self.misses += 1
            return None
        if y.dtype != np.float32 or y.ndim != 2 or y.shape[0] != 2 or (
                key.n_samples >= 0 and y.shape[1] != key.n_samples):
            with suppress(OSError):
                p.unlink()
            with self._lock:
                self.misses += 1
            return None
        with suppress(OSError):
            os.utime(p)  # atime is often not kept (noatime), so LRU goes by mtime
        with self._lock:
            self.hits += 1
        return y

    def put(self, key: UnitKey, y: np.ndarray) -> None:
        """Store a unit (atomically; errors are logged, not raised)."""
        p = self._path(key)
        tmp = None
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(y, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, p)
            tmp = None
        except OSError as exc:
            log.warning("could not cache a stretched segment in %s: %s", self.folder, exc)
            return
        finally:
            if tmp is not None:
                with suppress(OSError):
                    os.unlink(tmp)
        with self._lock:
            if self._size is None:
                self._size = self.size_bytes()
            else:
                with suppress(OSError):
                    self._size += p.stat().st_size
            over = self._size > self.max_bytes
        if over:
            self.evict()

    def _files(self) -> list[os.DirEntry]:
        out = []
        try:
            subdirs = list(os.scandir(self.folder))
        except OSError:
            return out
        for sub in subdirs:
            if not sub.is_dir(follow_symlinks=False):
                continue
            with suppress(OSError):
                out += [e for e in os.scandir(sub.path)
                        if e.name.endswith(".npy") and e.is_file(follow_symlinks=False)]
        return out

    def size_bytes(self) -> int:
        """Bytes the cache's files take now."""
        total = 0
        for e in self._files():
            with suppress(OSError):
                total += e.stat().st_size
        return total

    def evict(self, target_bytes: int | None = None) -> int:
        """Remove least recently used files until the folder is under ``target_bytes``
        (90 % of the cap by default). Returns the number of files removed."""
        target = int(self.max_bytes * 0.9) if target_bytes is None else target_bytes
        entries = []
        for e in self._files():
            with suppress(OSError):
                st = e.stat()
                entries.append((max(st.st_mtime_ns, st.st_atime_ns), e.path, st.st_size))
        removed, total = remove_least_recent(entries, target)
        with self._lock:
            self._size = total
        return removed

    def clear(self) -> None:
        """Remove every cached unit."""
        self.evict(target_bytes=0)


# -- units -----------------------------------------------------------------------------------

def _pitched(role: str | None) -> bool:
    return role not in UNPITCHED_ROLES


def _source_state(path: str) -> tuple[int, int]:
    st = os.stat(os.fsencode(path))
    return st.st_size, st.st_mtime_ns


def _loop_unit_samples(clip: Clip, song: Song) -> int | None:
    """Samples of one repetition of a loop clip (enough for the longest repetition; each one is
    cut at its own bar line), or None for a clip played once at its own length."""
    if clip.source_bars is None or clip.source_bars <= 0:
        return None
    return int(math.ceil(clip.source_bars * song.bar_s * song.sample_rate - 1e-6))


def unit_key(clip: Clip, song: Song, *, role: str | None = None,
             high_quality: bool = False) -> UnitKey:
    """The cache key of a clip's unit (stat()s the source file).

    ``high_quality`` picks Rubber Band's R3 engine instead of R2. R2 is the default: with the
    offset correction here it keeps every onset within about 1 ms, at 40 % of R3's CPU; R3
    sounds cleaner on sustained tones but its timing wanders by up to ~0.1 % within a unit
    (5-15 ms over a 4-bar loop at some ratios), which loosens layers against the drums.

    Raises:
        OSError: the source file is missing or unreadable.
        ValueError: the clip's segment is empty or its stretch is not a positive number.
    """
    if not clip.source_end_s > clip.source_start_s >= 0:
        raise ValueError(f"empty segment {clip.source_start_s:.3f}-{clip.source_end_s:.3f} s")
    size, mtime_ns = _source_state(clip.source_path)
    sr = song.sample_rate
    semitones = float(clip.semitones) if _pitched(role) else 0.0
    hq = bool(high_quality)
    if clip.is_pattern:
        return UnitKey(clip.source_path, size, mtime_ns, clip.source_start_s,
                       clip.source_end_s, 1.0, semitones, sr, -1, clip.reverse, hq)
    n_unit = _loop_unit_samples(clip, song)
    if n_unit is None:
        stretch = float(clip.stretch)
        n_unit = -1
    else:
        # the ratio that makes the segment fill source_bars exactly (clip.stretch by the
        # contract; deriving it keeps every repetition seamless whatever rounding happened)
        n_src = int(round((clip.source_end_s - clip.source_start_s) * sr))
        stretch = n_src / (clip.source_bars * song.bar_s * sr)
    if not (math.isfinite(stretch) and 0.05 <= stretch <= 20.0):
        raise ValueError(f"stretch {stretch:g} is out of range")
    stretch = round(stretch, 4)
    if abs(stretch - 1.0) < _NO_STRETCH_TOL:
        stretch = 1.0
    return UnitKey(clip.source_path, size, mtime_ns, clip.source_start_s, clip.source_end_s,
                   stretch, semitones, sr, n_unit, clip.reverse, hq)


def slice_key(event: SliceEvent, song: Song, *, role: str | None = None,
              high_quality: bool = False) -> UnitKey:
    """The cache key of one sequence event's slice: the span reversed and re-pitched by the
    event's ``semitones``, never stretched. Drum slices and short slices of any role are
    re-pitched by varispeed, as a sampler plays them (a phase vocoder smears an attack, and
    its fixed cost per call is most of the work for a short slice); longer melodic slices go
    through Rubber Band, which keeps their length.

    Raises:
        OSError: the source file is missing or unreadable.
        ValueError: the slice is empty.
    """
    if not event.source_end_s > event.source_start_s >= 0:
        raise ValueError(f"empty slice {event.source_start_s:.3f}-{event.source_end_s:.3f} s")
    size, mtime_ns = _source_state(event.source_path)
    semitones = round(float(event.semitones), 3)
    if not (math.isfinite(semitones) and abs(semitones) <= 36):
        raise ValueError(f"pitch shift {semitones:g} is out of range")
    return UnitKey(event.source_path, size, mtime_ns, event.source_start_s,
                   event.source_end_s, 1.0, semitones, song.sample_rate, -1,
                   bool(event.reverse), bool(high_quality),
                   varispeed=semitones != 0 and (
                       not _pitched(role)
                       or event.source_end_s - event.source_start_s <= VARISPEED_MAX_S))


def texture_key(clip: Clip, song: Song, *, role: str | None = None) -> TextureKey:
    """The cache key of a texture clip's audio (stat()s the source file).

    Raises:
        OSError: the source file is missing or unreadable.
        ValueError: the clip's segment is empty or its texture has no known kind.
    """
    import json

    from loopmind.generate.interpret.textures import ALL_KINDS

    if not clip.source_end_s > clip.source_start_s >= 0:
        raise ValueError(f"empty segment {clip.source_start_s:.3f}-{clip.source_end_s:.3f} s")
    kind = (clip.texture or {}).get("kind")
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown texture {kind!r}")
    size, mtime_ns = _source_state(clip.source_path)
    n = song.bar_to_sample(clip.end_bar) - song.bar_to_sample(clip.start_bar)
    semitones = float(clip.semitones) if _pitched(role) else 0.0
    return TextureKey(clip.source_path, size, mtime_ns, clip.source_start_s, clip.source_end_s,
                      semitones, song.sample_rate, n,
                      json.dumps(clip.texture, sort_keys=True, default=str))


def render_texture_unit(key: TextureKey, cache: StretchCache | None = None) -> np.ndarray:
    """A texture clip's audio: the source span shifted to the key, then processed.

    Returns:
        float32 array, shape (2, key.n_samples).

    Raises:
        DecodeError: the source cannot be read.
        LoopMindError: the texture needs the neural codec and it cannot be loaded.
    """
    import json

    from loopmind.generate.interpret.textures import render_texture

    if cache is not None:
        y = cache.get(key)
        if y is not None:
            return y
    y = load_source(key.path, key.start_s, key.end_s, sr=key.sr)
    if key.semitones:
        _fade(y, int(_DECLICK_S * key.sr), int(_DECLICK_S * key.sr))
        y = _stretch_aligned(y, key.sr, stretch=1.0, semitones=key.semitones,
                             high_quality=False)
    y = render_texture(y, sr=key.sr, n_samples=key.n_samples, spec=json.loads(key.spec))
    y = np.ascontiguousarray(_fit(y, key.n_samples), dtype=np.float32)
    if cache is not None:
        cache.put(key, y)
    return y


def _compute(key: UnitKey | TextureKey, cache: StretchCache | None) -> np.ndarray:
    if isinstance(key, TextureKey):
        return render_texture_unit(key, cache)
    return render_unit(key, cache)


def clip_keys(clip: Clip, song: Song, *, role: str | None = None,
              high_quality: bool = False) -> list[UnitKey | TextureKey | None]:
    """Every unit a clip needs: one for a loop, pattern or texture clip; one per event for a
    sequence clip (None for an event whose slice cannot play: its file is missing or its span
    empty).

    Raises:
        OSError, ValueError: as ``unit_key`` (loop, pattern and texture clips only; a sequence
            clip's bad events become None).
    """
    if clip.is_texture:
        return [texture_key(clip, song, role=role)]
    if clip.is_sequence:
        keys: list[UnitKey | TextureKey | None] = []
        for ev in clip.events or []:
            try:
                keys.append(slice_key(ev, song, role=role, high_quality=high_quality))
            except (OSError, ValueError):
                keys.append(None)
        return keys
    return [unit_key(clip, song, role=role, high_quality=high_quality)]


def render_unit(key: UnitKey, cache: StretchCache | None = None) -> np.ndarray:
    """A unit's audio: the segment reversed, stretched and shifted as the key says.

    Returns:
        float32 array, shape (2, key.n_samples) (or the stretcher's length when n_samples is -1).

    Raises:
        DecodeError: the source cannot be read.
    """
    if cache is not None and key.needs_stretcher:
        y = cache.get(key)
        if y is not None:
            return y
    y = load_source(key.path, key.start_s, key.end_s, sr=key.sr)
    if key.reverse:
        y = np.ascontiguousarray(y[:, ::-1])
    if key.needs_stretcher:
        # a segment cut mid-waveform starts and ends with a step; the stretcher would smear
        # that click over its whole window, past the reach of the clip's fades (varispeed
        # smears nothing: a slice keeps its attack, only its cut end is faded)
        n_declick = int(_DECLICK_S * key.sr)
        _fade(y, 0 if key.varispeed else n_declick, n_declick)
        if key.varispeed:
            y = _varispeed(y, semitones=key.semitones)
        else:
            y = _stretch_aligned(y, key.sr, stretch=key.stretch, semitones=key.semitones,
                                 high_quality=key.high_quality)
    if key.n_samples >= 0:
        y = _fit(y, key.n_samples)
    y = np.ascontiguousarray(y, dtype=np.float32)
    if cache is not None and key.needs_stretcher:
        cache.put(key, y)
    return y


# -- clips -----------------------------------------------------------------------------------

def _fade(y: np.ndarray, n_in: int, n_out: int) -> None:
    """Raised-cosine fades in place at both ends of (2, n) audio."""
    n = y.shape[1]
    n_in, n_out = min(max(n_in, 0), n), min(max(n_out, 0), n)
    if n_in:
        y[:, :n_in] *= _ramp(n_in)
    if n_out:
        y[:, n - n_out:] *= _ramp(n_out)[::-1]


def _ramp(n: int) -> np.ndarray:
    # from the first sample above zero to one sample short of full gain: a 0 at the start and
    # 1 at the end would waste a sample at each end
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 1) / (n + 1))).astype(np.float32)


def _assemble_loop(clip: Clip, song: Song, unit: np.ndarray) -> np.ndarray:
    sr = song.sample_rate
    origin = song.bar_to_sample(clip.start_bar)
    n = song.bar_to_sample(clip.end_bar) - origin
    out = np.zeros((2, max(n, 0)), dtype=np.float32)
    n_in, n_out = int(round(clip.fade_in_s * sr)), int(round(clip.fade_out_s * sr))
    if clip.source_bars is None or clip.source_bars <= 0:
        piece = unit[:, :n].copy()
        _fade(piece, n_in, n_out)
        out[:, :piece.shape[1]] = piece
        return out
    n_seam = min(n_in, int(round(_SEAM_FADE_IN_S * sr)))
    k = 0
    while True:
        a = song.bar_to_sample(clip.start_bar + k * clip.source_bars) - origin
        if a >= n:
            break
        b = min(n, song.bar_to_sample(clip.start_bar + (k + 1) * clip.source_bars) - origin)
        piece = _fit(unit, b - a).copy()
        _fade(piece, n_in if k == 0 else n_seam, n_out)
        out[:, a:b] = piece
        k += 1
    return out


def _assemble_pattern(clip: Clip, song: Song, hit: np.ndarray, *, choke: bool) -> np.ndarray:
    sr = song.sample_rate
    origin = song.bar_to_sample(clip.start_bar)
    limit = clip.bars * STEPS_PER_BAR
    events = sorted({int(s): float(v) for s, v in (clip.steps or []) if 0 <= int(s) < limit}
                    .items())
    onsets = [song.step_to_sample(clip.start_bar, s) - origin for s, _ in events]
    span = song.bar_to_sample(clip.end_bar) - origin
    n_hit = hit.shape[1]
    n_total = max([span] + [o + n_hit for o in onsets])
    out = np.zeros((2, n_total), dtype=np.float32)
    n_in, n_out = int(round(clip.fade_in_s * sr)), int(round(clip.fade_out_s * sr))
    n_choke = int(round(_CHOKE_FADE_S * sr))
    for i, ((_, velocity), onset) in enumerate(zip(events, onsets)):
        gain = np.float32(max(0.0, min(1.0, velocity)) ** _VELOCITY_EXPONENT)
        if gain == 0:
            continue
        length = n_hit
        fade_out = n_out
        if choke and i + 1 < len(events):
            gap = onsets[i + 1] - onset
            if gap < length:
                length, fade_out = gap, min(n_choke, gap // 2)
        piece = hit[:, :length] * gain
        _fade(piece, n_in, fade_out)
        out[:, onset:onset + length] += piece
    return out


GLIDE_STEPS = 2  # a slide takes the last two 16ths of the note (at most half of it)


def _glide(y: np.ndarray, length: int, semitones: float, n_bend: int) -> np.ndarray:
    """The first ``length`` samples of ``y`` (2, m) with the pitch bent over the last
    ``n_bend`` of them, from 0 to ``semitones`` (linear in semitones), as a sampler's
    portamento does: the slice is read faster or slower, so a slide up reads past ``length``
    (silence where the slice has ended)."""
    n_bend = max(1, min(int(n_bend), length))
    bend = np.zeros(length)
    bend[length - n_bend:] = np.linspace(0.0, float(semitones), n_bend, endpoint=False)
    rate = 2.0 ** (bend / 12.0)
    pos = np.concatenate([[0.0], np.cumsum(rate[:-1])])
    src = np.arange(y.shape[1])
    out = np.empty((y.shape[0], length), dtype=np.float32)
    for c in range(y.shape[0]):
        out[c] = np.interp(pos, src, y[c], right=0.0)
    return out


def _assemble_sequence(clip: Clip, song: Song, slices: list[np.ndarray | None]) -> np.ndarray:
    """Place each event's slice on its 16th step, cut at ``length`` steps (a short fade where
    it is cut), gain ``velocity ** 1.5``; ``slices[i]`` is event i's audio (None: skipped)."""
    sr = song.sample_rate
    origin = song.bar_to_sample(clip.start_bar)
    limit = clip.bars * STEPS_PER_BAR
    span = song.bar_to_sample(clip.end_bar) - origin
    placed = []
    for ev, y in zip(clip.events or [], slices):
        if y is None or not 0 <= int(ev.step) < limit or int(ev.length) <= 0:
            continue
        step = int(ev.step)
        onset = song.step_to_sample(clip.start_bar, step) - origin
        end = song.step_to_sample(clip.start_bar, step + int(ev.length))
        placed.append((onset, end - origin, ev, y))
    n_total = max([span] + [min(end, onset + y.shape[1]) for onset, end, _, y in placed])
    out = np.zeros((2, max(n_total, 0)), dtype=np.float32)
    # slices start on their onsets: 1 ms at most keeps the attack and removes a step
    n_in = min(int(round(clip.fade_in_s * sr)), int(round(_SEAM_FADE_IN_S * sr)))
    n_out = int(round(clip.fade_out_s * sr))
    n_cut = int(round(_CUT_FADE_S * sr))
    for onset, end, ev, y in placed:
        gain = np.float32(max(0.0, min(1.0, float(ev.velocity))) ** _VELOCITY_EXPONENT)
        if gain == 0:
            continue
        length = min(y.shape[1], end - onset)
        fade_out = n_out if length == y.shape[1] else min(n_cut, length // 2)
        if ev.glide and length > 1:
            n_bend = min(length // 2, song.step_to_sample(0, GLIDE_STEPS))
            piece = _glide(y, length, float(ev.glide), n_bend) * gain
        else:
            piece = y[:, :length] * gain
        _fade(piece, n_in, fade_out)
        out[:, onset:onset + length] += piece
    return out


def render_clip(clip: Clip, song: Song, cache: StretchCache | None = None, *,
                role: str | None = None, choke: bool | None = None,
                high_quality: bool = False, unit: np.ndarray | None = None,
                slices: list[np.ndarray | None] | None = None) -> np.ndarray:
    """One clip's audio, starting at its first bar line.

    A loop clip repeats its unit (the segment stretched to ``source_bars`` bars) on every
    ``source_bars`` bar line; a pattern clip triggers its one-shot on each 16th step with gain
    ``velocity ** 1.5``. Clip gain and edge fades are applied: ``fade_in_s`` at the clip's
    start (at most 1 ms where the loop repeats inside the clip) and ``fade_out_s`` at the end of
    every repetition and every hit. A sequence clip (``events``) plays each event's slice,
    re-pitched and maybe reversed, on its step for ``length`` steps; a texture clip is its
    processed source (``interpret.textures``), exactly ``bars`` long.

    Args:
        clip: the clip.
        song: its song (tempo, sample rate).
        cache: where stretched units are kept (None: compute every time).
        role: the track's role; unpitched roles (drums) are never pitch-shifted.
        choke: a pattern hit is cut (with a 3 ms fade) where the next hit of the clip starts,
            like a drum machine voice; None decides by role (``CHOKE_ROLES``). Without choke a
            hit rings to its end.
        high_quality: Rubber Band's R3 engine rather than R2 (see ``unit_key``).
        unit: the clip's unit when the caller already has it (``render_tracks`` does).
        slices: a sequence clip's slices, one per event (None: skip that event), when the
            caller already has them.

    Returns:
        float32 array, shape (2, n): n is the clip's span in samples for a loop; a pattern's
        last hits may ring past the span.

    Raises:
        DecodeError: the source file is missing or cannot be read.
        ValueError: the clip's segment is empty or its stretch out of range.
    """
    if clip.is_sequence:
        if slices is None:
            slices = []
            for key in clip_keys(clip, song, role=role, high_quality=high_quality):
                try:
                    slices.append(None if key is None else _compute(key, cache))
                except DecodeError:
                    slices.append(None)
        y = _assemble_sequence(clip, song, slices)
    else:
        if unit is None:
            try:
                key = clip_keys(clip, song, role=role, high_quality=high_quality)[0]
            except OSError as exc:
                from loopmind.library import audio

                raise DecodeError(f"{Path(clip.source_path).name}: "
                                  f"{audio._os_error(Path(clip.source_path), exc)}") from None
            unit = _compute(key, cache)
        if clip.is_texture:
            y = unit[:, :song.bar_to_sample(clip.end_bar) - song.bar_to_sample(clip.start_bar)]
            y = y.copy()
            _fade(y, int(round(clip.fade_in_s * song.sample_rate)),
                  int(round(clip.fade_out_s * song.sample_rate)))
        elif clip.is_pattern:
            if choke is None:
                choke = role in CHOKE_ROLES
            y = _assemble_pattern(clip, song, unit, choke=choke)
        else:
            y = _assemble_loop(clip, song, unit)
    if clip.gain_db:
        y *= np.float32(10.0 ** (clip.gain_db / 20.0))
    return y


# -- tracks ----------------------------------------------------------------------------------

@dataclass
class RenderedTracks:
    """Every track of a song as audio.

    Attributes:
        tracks: track name -> float32 array, shape (2, n_samples), in song order.
        sr: sample rate in Hz.
        n_samples: length of every track: the song's bars plus the tail.
        notes: what this render skipped and why (also appended to ``song.notes``).
        cache_hits, cache_misses, stretched: how many units came from the cache, missed it, and
            went through the stretcher.
    """

    tracks: dict[str, np.ndarray]
    sr: int
    n_samples: int
    notes: list[str] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0
    stretched: int = 0


def render_tracks(song: Song, *, cache: StretchCache | None = None, workers: int = 1,
                  tail_s: float = DEFAULT_TAIL_S,
                  on_progress: Callable[[int, int], None] | None = None,
                  use_cache: bool = True, high_quality: bool = False) -> RenderedTracks:
    """Render every track of ``song``; each clip lands at ``song.bar_to_sample(start_bar)``.

    Distinct units (segment x stretch x shift) are computed once, ``workers`` at a time in
    threads, then clips are summed in song order, so the result does not depend on
    ``workers``. A clip whose source is missing or unreadable is skipped with a note in
    ``song.notes``; the rest renders.

    Args:
        song: the arrangement (its ``notes`` may grow).
        cache: the stretch cache (the settings' cache folder when None and ``use_cache``).
        workers: threads for the stretcher.
        tail_s: silence kept after the last bar for reverb and decays.
        on_progress: called as ``on_progress(done, total)`` from the calling thread.
        use_cache: False renders without reading or writing any cache.
        high_quality: Rubber Band's R3 engine rather than R2 (see ``unit_key``).

    Returns:
        RenderedTracks.
    """
    if cache is None and use_cache:
        cache = StretchCache()
    if not use_cache:
        cache = None
    sr = song.sample_rate
    n_total = song.bar_to_sample(song.bars) + int(round(tail_s * sr))
    notes: list[str] = []

    # 1. which unit every clip needs (a missing file is known here, before any work)
    plan: list[list[tuple[Clip, list]]] = []
    for track in song.tracks:
        plan.append([])
        for clip in track.clips:
            try:
                clip_units = clip_keys(clip, song, role=track.role, high_quality=high_quality)
            except OSError:
                notes.append(_skip_note(track.name, clip, "the source file is missing"))
                clip_units = None
            except ValueError as exc:
                notes.append(_skip_note(track.name, clip, str(exc)))
                clip_units = None
            if clip_units is not None and clip.is_sequence and None in clip_units:
                bad = clip_units.count(None)
                notes.append(f"skipped {bad} of {len(clip_units)} slices on {track.name} at "
                             f"bar {clip.start_bar + 1}: a source is missing or empty")
            plan[-1].append((clip, clip_units))
    keys = list(dict.fromkeys(k for clips in plan for _, ks in clips if ks is not None
                              for k in ks if k is not None))
    hits_before = (cache.hits, cache.misses) if cache is not None else (0, 0)
    n_steps = len(keys) + len(song.tracks)
    done = 0

    # 2. units, in parallel (each is deterministic on its own)
    units: dict[UnitKey | TextureKey, np.ndarray] = {}
    failed: dict[UnitKey | TextureKey, str] = {}
    stretched = 0

    def job(key: UnitKey | TextureKey) -> np.ndarray:
        return _compute(key, cache)

    def finish(key: UnitKey | TextureKey, fut_result: Callable[[], np.ndarray]) -> None:
        nonlocal done
        try:
            units[key] = fut_result()
        except LoopMindError as exc:  # unreadable source; a texture's codec not available
            failed[key] = str(exc)
        except (ValueError, RuntimeError) as exc:  # the stretcher refused this unit
            log.exception("could not render %s", key)
            failed[key] = f"could not be stretched ({exc})"
        done += 1
        if on_progress is not None:
            on_progress(done, n_steps)

    if workers <= 1 or len(keys) <= 1:
        for key in keys:
            finish(key, lambda key=key: job(key))
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopmind-render") as ex:
            futures = {ex.submit(job, key): key for key in keys}
            for fut in as_completed(futures):
                finish(futures[fut], fut.result)
    if cache is not None:
        hits = cache.hits - hits_before[0]
        misses = cache.misses - hits_before[1]
        stretched = misses
    else:
        hits = misses = 0
        stretched = sum(1 for k in keys if k.needs_stretcher and k in units)

    # 3. place clips, in song order
    out: dict[str, np.ndarray] = {}
    for track, clips in zip(song.tracks, plan):
        # tracks sharing a name (the contract says they do not) share one buffer
        y = out.get(track.name)
        if y is None:
            y = out[track.name] = np.zeros((2, n_total), dtype=np.float32)
        for clip, clip_units in clips:
            if clip_units is None:
                continue
            if clip.is_sequence:
                bad = [k for k in clip_units if k is not None and k in failed]
                if bad:
                    notes.append(f"skipped {len(bad)} slices on {track.name} at bar "
                                 f"{clip.start_bar + 1}: {failed[bad[0]]}")
                clip_y = render_clip(clip, song, role=track.role,
                                     slices=[units.get(k) if k is not None else None
                                             for k in clip_units])
            else:
                key = clip_units[0]
                if key in failed:
                    notes.append(_skip_note(track.name, clip, failed[key]))
                    continue
                clip_y = render_clip(clip, song, role=track.role, unit=units[key])
            a = song.bar_to_sample(clip.start_bar)
            b = min(n_total, a + clip_y.shape[1])
            if b > a:
                y[:, a:b] += clip_y[:, :b - a]
        done += 1
        if on_progress is not None:
            on_progress(done, n_steps)
    for note in notes:
        log.info(note)
    song.notes.extend(notes)
    return RenderedTracks(tracks=out, sr=sr, n_samples=n_total, notes=notes, cache_hits=hits,
                          cache_misses=misses, stretched=stretched)


def _skip_note(track: str, clip: Clip, reason: str) -> str:
    name = Path(os.fsdecode(clip.source_path)).name
    reason = reason.removeprefix(f"{name}: ")
    return f"skipped {name} on {track} at bar {clip.start_bar + 1}: {reason}"

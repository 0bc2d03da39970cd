"""Write a rendered song to a folder: master, stems, arrangement and MIDI.

The folder ends up holding::

    master.wav            24-bit PCM (and master.flac, 24-bit, on request)
    stems/<track>.wav     one per track, 24-bit PCM
    arrangement.json      Song.to_dict() plus a "files" section naming what was written
    song.mid              tempo, section markers, patterns as notes (see midi.py)
    slices/<slice>.wav    every slice a generated part triggers (hybrid and interpretive
                          modes), 24-bit PCM, cut from the user's file as it is (unshifted), so
                          the MIDI notes can be played with them in a DAW's sampler

Nothing partial is ever left behind: every file is written into a hidden staging folder inside
the output folder (same filesystem), synced, and only then renamed over the old outputs of the
same names. If a rename fails midway the outputs already replaced are put back. Files in the
folder that LoopMind did not write are never touched. 24-bit PCM written by libsndfile is
deterministic, so the same render gives a bit-identical ``master.wav``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loopmind.errors import LoopMindError
from loopmind.generate.song import Song
from loopmind.fileio import fsync_dir as _fsync_dir

SUBTYPE = "PCM_24"
MASTER_NAME = "master.wav"
MASTER_FLAC_NAME = "master.flac"
ARRANGEMENT_NAME = "arrangement.json"
MIDI_NAME = "song.mid"
STEMS_DIR = "stems"
SLICES_DIR = "slices"
MAX_SLICE_FILES = 2000
_FULL_SCALE = float(1 << 23)  # 24-bit PCM
_BLOCK = 1 << 16
_STAGING_PREFIX = ".loopmind-export-"
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}


class ExportError(LoopMindError):
    """The song could not be written (unwritable folder, full disk, ...)."""


@dataclass
class ExportResult:
    """What ``export_song`` wrote.

    Attributes:
        paths: "master", "arrangement", "midi" (and "master_flac" when asked) -> Path, and
            "stems" -> {track name: Path}.
        warnings: things the user should know (a stem that clipped at 0 dBFS).
    """

    paths: dict
    warnings: list[str] = field(default_factory=list)

    @property
    def master(self) -> Path:
        return self.paths["master"]

    @property
    def stems(self) -> dict[str, Path]:
        return self.paths["stems"]


def stem_filenames(names: list[str]) -> dict[str, str]:
    """A safe, unique (case-insensitively) ``.wav`` file name for each track name."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        if name in out:
            continue
        base = unicodedata.normalize("NFC", name)
        base = re.sub(r"[^\w\-. ]+", "_", base).strip(" ._")
        base = re.sub(r"\s+", " ", base)[:80] or "track"
        if base.lower() in _WINDOWS_RESERVED:
            base += "_"
        candidate, i = base, 2
        while candidate.lower() in taken:
            candidate, i = f"{base}-{i}", i + 1
        taken.add(candidate.lower())
        out[name] = f"{candidate}.wav"
    return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        if exc.errno == errno.ENOSPC:
            return "no space left on device"
        if exc.errno == errno.EROFS:
            return "read-only file system"
        if exc.errno == errno.ENOTDIR:
            return "a path component is a file, not a folder"
        if exc.strerror:
            return exc.strerror.lower()
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


def _as_frames(y: np.ndarray, what: str) -> np.ndarray:
    """(channels, n) float -> (n, channels) int32 holding 24-bit samples in the top bits.

    Quantizing here (round to nearest, clip at full scale) rather than in libsndfile makes the
    WAV and the FLAC hold the same samples (libsndfile's float conversions differ by one step
    between the two) and makes clipping explicit instead of wrapping around. Done in blocks
    straight into an interleaved array, which is what libsndfile wants.
    """
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or not 1 <= y.shape[0] <= 8:
        raise ExportError(f"cannot write {what}: expected (channels, samples) audio, "
                          f"got shape {y.shape}")
    channels, n = y.shape
    out = np.empty((n, channels), dtype=np.int32)
    scale = np.float32(_FULL_SCALE)
    for a in range(0, n, _BLOCK):
        # float32 is exact here: scaling by a power of two, integers below 2**24
        block = np.multiply(y[:, a:a + _BLOCK].T, scale, dtype=np.float32)
        np.rint(block, out=block)
        np.clip(block, -_FULL_SCALE, _FULL_SCALE - 1, out=block)
        np.left_shift(block.astype(np.int32), 8, out=out[a:a + _BLOCK])
    return out


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_audio(path: Path, y: np.ndarray, sr: int, fmt: str) -> None:
    import soundfile as sf

    sf.write(os.fsencode(path), y, sr, format=fmt, subtype=SUBTYPE)
    _fsync(path)


def _estimate_bytes(tracks: dict[str, np.ndarray], master: np.ndarray, flac: bool) -> int:
    n = int(np.asarray(master).shape[-1])
    per_file = 3 * 2 * n + 1024  # 24-bit stereo plus header
    total = per_file * (1 + len(tracks))
    if flac:
        total += per_file  # FLAC is smaller; the worst case is no compression
    return total + 1024 * 1024  # JSON and MIDI


def _check_space(folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise ExportError(f"not enough disk space in {folder}: the song needs about "
                          f"{needed / 1e6:.0f} MB, {free / 1e6:.0f} MB are free")


def _make_dirs(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and missing parents, appending each one made to ``created`` (so a
    failure halfway still knows what to remove)."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        created.append(d)


def _remove_stale_staging(folder: Path) -> None:
    """Remove staging folders left by exports that were killed (their process is gone)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        if not e.name.startswith(_STAGING_PREFIX) or not e.is_dir(follow_symlinks=False):
            continue
        pid = e.name[len(_STAGING_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(e.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def export_song(song: Song, tracks: dict[str, np.ndarray], master: np.ndarray,
                out_dir: os.PathLike | str, *, flac: bool = False,
                sr: int | None = None) -> ExportResult:
    """Write the song's master, stems, arrangement and MIDI file into ``out_dir``.

    Args:
        song: the arrangement (written as ``arrangement.json`` and ``song.mid``).
        tracks: track name -> float32 audio, shape (2, n): one stem each.
        master: the master, float32, shape (2, n).
        out_dir: the output folder (created if missing). Older outputs of the same names are
            replaced; other files are left alone.
        flac: also write ``master.flac``.
        sr: sample rate of the audio (the song's when None).

    Returns:
        ExportResult with the final paths.

    Raises:
        ExportError: the folder cannot be written or the disk is too full; nothing was
            changed in ``out_dir`` then.
    """
    from loopmind.generate.midi import write_midi

    out_dir = Path(os.fsdecode(out_dir)).absolute()
    sr = int(sr or song.sample_rate)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"cannot write to {out_dir}: it is a file, not a folder")
    created: list[Path] = []
    staging: Path | None = None
    try:
        _make_dirs(out_dir, created)
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
        _check_space(out_dir, _estimate_bytes(tracks, master, flac))
        _remove_stale_staging(out_dir)
        # staging inside the folder, not beside it: the same filesystem even when the folder
        # is a mount point, and it works when only the folder itself is writable
        staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-",
                                        dir=out_dir))
        result, moves = _write_staged(song, tracks, master, staging, flac=flac, sr=sr,
                                      write_midi=write_midi)
        _move_into_place(staging, out_dir, moves)
    except ExportError:
        _cleanup(staging, created)
        raise
    except Exception as exc:  # noqa: BLE001 - OSError, libsndfile errors, anything midway
        _cleanup(staging, created)
        raise ExportError(f"cannot write to {out_dir}: {_reason(exc)}") from exc
    except BaseException:
        _cleanup(staging, created)
        raise
    _cleanup(staging, [])
    final = {k: (out_dir / v if isinstance(v, str) else
                 {name: out_dir / rel for name, rel in v.items()})
             for k, v in result.paths.items()}
    return ExportResult(paths=final, warnings=result.warnings)


def _write_staged(song: Song, tracks: dict[str, np.ndarray], master: np.ndarray,
                  staging: Path, *, flac: bool, sr: int, write_midi) -> tuple[ExportResult,
                                                                          list[str]]:
    """Write every file under ``staging``; return relative paths and the move order."""
    warnings: list[str] = []
    rel: dict = {"master": MASTER_NAME}
    # the audio files are independent: quantize and write them on a few threads (numpy and
    # libsndfile release the GIL); the first failure is raised once every write has ended
    # (file, audio, what it is, the FLAC copy to write from the same samples)
    jobs: list[tuple[Path, np.ndarray, str, Path | None]] = [
        (staging / MASTER_NAME, master, "the master",
         staging / MASTER_FLAC_NAME if flac else None)]
    if flac:
        rel["master_flac"] = MASTER_FLAC_NAME
    (staging / STEMS_DIR).mkdir()
    stem_names = stem_filenames(list(tracks))
    rel["stems"] = {}
    for name, audio in tracks.items():
        if np.abs(audio).max(initial=0.0) > 1.0 - 0.5 / _FULL_SCALE:
            warnings.append(f"stem {name!r} peaks above 0 dBFS and was clipped")
        r = f"{STEMS_DIR}/{stem_names[name]}"
        jobs.append((staging / r, audio, f"the {name} stem", None))
        rel["stems"][name] = r
    rel["midi"] = MIDI_NAME
    write_midi(song, staging / MIDI_NAME)
    slices = used_slices(song)
    if slices:
        from loopmind.errors import DecodeError
        from loopmind.generate.render import load_source

        (staging / SLICES_DIR).mkdir()
        rel["slices"] = {}
        for name, file_name in stem_filenames(list(slices)).items():
            path, a, b = slices[name]
            try:
                y = load_source(path, a, b, sr=sr)
            except DecodeError as exc:
                warnings.append(f"slice {name} not written: {exc}")
                continue
            r = f"{SLICES_DIR}/{file_name}"
            jobs.append((staging / r, y, f"the slice {name}", None))
            rel["slices"][name] = r

    failed: list[BaseException] = []

    def write(job: tuple[Path, np.ndarray, str, Path | None]) -> None:
        if failed:  # a full disk stays full: start no other file
            return
        path, audio, what, flac_path = job
        try:
            frames = _as_frames(audio, what)
            _write_audio(path, frames, sr, "WAV")
            if flac_path is not None:
                _write_audio(flac_path, frames, sr, "FLAC")
        except BaseException as exc:
            failed.append(exc)
            raise

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        futures = [pool.submit(write, job) for job in jobs]
    for fut in futures:
        fut.result()  # re-raise the first failure (the others have finished)
    rel["arrangement"] = ARRANGEMENT_NAME
    doc = song.to_dict()
    doc["files"] = {"master": MASTER_NAME, **({"master_flac": MASTER_FLAC_NAME} if flac else {}),
                    "stems": dict(rel["stems"]), "midi": MIDI_NAME,
                    **({"slices": dict(rel["slices"])} if rel.get("slices") else {}),
                    "sample_rate": sr, "subtype": SUBTYPE}
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # a source path that is not UTF-8 (held with surrogate escapes): \u escapes keep it
        data = (json.dumps(doc, indent=2) + "\n").encode("ascii")
    with open(staging / ARRANGEMENT_NAME, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    # the master last: whoever watches the folder sees the complete set once it appears
    moves = list(rel["stems"].values()) + list(rel.get("slices", {}).values()) + [
        MIDI_NAME, ARRANGEMENT_NAME]
    if flac:
        moves.append(MASTER_FLAC_NAME)
    moves.append(MASTER_NAME)
    return ExportResult(paths=rel, warnings=warnings), moves


def used_slices(song: Song) -> dict[str, tuple[str, float, float]]:
    """The distinct slices the song's generated parts trigger: MIDI slice name -> (path,
    start_s, end_s), in song order (at most ``MAX_SLICE_FILES``)."""
    from loopmind.generate.midi import slice_name

    out: dict[str, tuple[str, float, float]] = {}
    for track in song.tracks:
        for clip in track.clips:
            for ev in clip.events or []:
                name = slice_name(ev)
                if name not in out and len(out) < MAX_SLICE_FILES:
                    out[name] = (ev.source_path, ev.source_start_s, ev.source_end_s)
    return out


def _move_into_place(staging: Path, out_dir: Path, moves: list[str]) -> None:
    """Rename staged files over their targets; on failure put the old targets back."""
    backup = staging / ".previous"
    backup.mkdir()
    dirs_created: list[str] = []
    for sub in (STEMS_DIR, SLICES_DIR):
        if any(m.startswith(sub + "/") for m in moves) and not (out_dir / sub).is_dir():
            (out_dir / sub).mkdir()
            dirs_created.append(sub)
    _fsync_dir(staging)
    done: list[tuple[str, Path | None]] = []
    try:
        for i, rel in enumerate(moves):
            target = out_dir / rel
            saved = None
            if target.exists():
                saved = backup / str(i)
                try:
                    os.link(target, saved)  # a second name for the old file, to restore it
                except OSError:  # no hard links here (FAT, some network shares)
                    shutil.copy2(target, saved)
            os.replace(staging / rel, target)
            done.append((rel, saved))
    except BaseException:
        for rel, saved in reversed(done):
            try:
                if saved is not None:
                    os.replace(saved, out_dir / rel)
                else:
                    os.unlink(out_dir / rel)
            except OSError:
                pass
        for sub in dirs_created:
            try:
                (out_dir / sub).rmdir()
            except OSError:
                pass
        raise
    _fsync_dir(out_dir)
    for sub in (STEMS_DIR, SLICES_DIR):
        if (out_dir / sub).is_dir() and any(m.startswith(sub + "/") for m in moves):
            _fsync_dir(out_dir / sub)


def _cleanup(staging: Path | None, created: list[Path]) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break


def read_arrangement(path: os.PathLike | str) -> Song:
    """The Song in an exported ``arrangement.json`` (the "files" section is dropped)."""
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    doc.pop("files", None)
    return Song.from_dict(doc)

"""The one way LoopMind replaces a file, syncs a folder, trims a cache folder, or mutes C
libraries' stderr.

Files are written to a hidden temporary file in the same folder and renamed over the old one
(``os.replace`` is atomic on POSIX), so a reader sees the old file or the new one, never a
partial one, even if the process is killed mid-write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: os.PathLike | str, write: Callable[[BinaryIO], None] | bytes, *,
                 suffix: str = ".tmp", fsync: bool = True) -> Path:
    """Replace ``path`` with new content, atomically.

    Args:
        path: the file to write (its folder must exist).
        write: the bytes, or a function that writes them to an open binary file.
        suffix: the temporary file's suffix (so watchers can ignore it).
        fsync: flush the data to disk before the rename (and the folder after it).

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(write, (bytes, bytearray, memoryview)):
                fh.write(write)
            else:
                write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        fsync_dir(path.parent)
    return path


def fsync_dir(folder: os.PathLike | str) -> None:
    """Make renames in ``folder`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_least_recent(files: list[tuple[int, str, int]],
                        target_bytes: float) -> tuple[int, int]:
    """Delete cache files, least recently used first, until the rest take at most
    ``target_bytes``.

    Args:
        files: (last use, path, size in bytes) of every file of the cache.
        target_bytes: what may stay.

    Returns:
        (files removed, bytes left). A file that cannot be removed stays and counts; one that
        is already gone (another process trimmed it) counts as removed.
    """
    total = sum(size for _, _, size in files)
    removed = 0
    for _, path, size in sorted(files):
        if total <= target_bytes:
            break
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            continue
        total -= size
        removed += 1
    return removed, total


@contextlib.contextmanager
def quiet_stderr(active: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (C libraries such as libmpg123
    and ALSA print there, which would scribble over a terminal app)."""
    if not active:
        yield
        return
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

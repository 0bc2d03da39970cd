"""Discovering audio files in watched folders.

Walks folders without ever writing to them, follows directory symlinks once (a visited set of
(device, inode) pairs stops symlink loops), and turns a file it cannot even stat into an error
entry instead of stopping the walk.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from dataclasses import dataclass
from typing import Iterator

from loopmind.library.audio import is_audio_path


@dataclass(frozen=True)
class Found:
    """A discovered file: its path (str, surrogate-escaped if not UTF-8) and stat or error."""

    path: str
    size: int = 0
    mtime_ns: int = 0
    error: str | None = None


def display_path(path: str | bytes) -> str:
    """A printable form of a path whose bytes may not be UTF-8."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


def _stat_error(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "broken symlink or vanished file"
    return exc.strerror or str(exc)


def walk(folder: str | os.PathLike) -> Iterator[Found]:
    """Yield every audio file under ``folder`` (by extension), depth first, sorted by name.

    Hidden files and folders (starting with '.') are skipped. Errors on single entries become
    ``Found(error=...)``; an unreadable sub-folder becomes one error entry for that folder.
    """
    root = os.fspath(folder)
    visited: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            st = os.stat(current)
        except OSError as exc:
            yield Found(current, error=_stat_error(exc))
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in visited:
            continue  # a directory symlink loop, or the same folder reached twice
        visited.add(ident)
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Found(current, error=f"cannot read folder: {_stat_error(exc)}")
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(entry.path)
                continue
            if not is_audio_path(entry.name):
                continue
            try:
                est = entry.stat(follow_symlinks=True)
            except OSError as exc:
                yield Found(entry.path, error=_stat_error(exc))
                continue
            if not stat_mod.S_ISREG(est.st_mode):
                yield Found(entry.path, error="not a regular file")
                continue
            yield Found(entry.path, size=est.st_size, mtime_ns=est.st_mtime_ns)
        stack.extend(reversed(subdirs))

"""Project import: FL Studio (.flp), LMMS (.mmp, .mmpz), arrangement JSON and LoopMind's own
``arrangement.json``, all turned into one normalized ``Project`` (``loopmind.project/1``).

Every file is treated as hostile: sizes are bounded before anything is read or decompressed,
XML may not declare entities, nothing in a project is executed, and any failure is a
``ProjectError`` whose message names the file.
"""

from __future__ import annotations

import os

from loopmind.errors import LoopMindError
from loopmind.generate.projects.model import (FORMAT, Clip, Mixer, Note, Project, Section,
                                              Track)

__all__ = ["FORMAT", "MAX_FILE_BYTES", "MAX_JSON_BYTES", "Clip", "Mixer", "Note", "Project",
           "ProjectError", "Section", "Track", "load_project", "project_kind", "read_bounded"]

MAX_FILE_BYTES = 64 * 1024 * 1024   # the largest project file read at all
# JSON becomes Python objects at ~15x its size, so it gets a tighter limit than binary FLPs
MAX_JSON_BYTES = 16 * 1024 * 1024
_EXTENSIONS = {".flp": "flp", ".mmp": "mmp", ".mpt": "mmp", ".mmpz": "mmpz", ".json": "json"}


class ProjectError(LoopMindError):
    """A project file that cannot be imported; the message is "<file>: <reason>"."""


def project_kind(path: str, head: bytes) -> str | None:
    """The loader for a file: by its extension, else by its first bytes."""
    kind = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if kind:
        return kind
    if head.startswith(b"FLhd"):
        return "flp"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        return "mmp"
    if stripped.startswith(b"{"):
        return "json"
    if len(head) >= 6 and head[4] == 0x78:  # qCompress: 4-byte length, then a zlib stream
        return "mmpz"
    return None


def read_bounded(path: str, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a project file, refusing directories, missing files and files over
    ``limit`` (checked before reading and again while reading, for files that grow)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such file") from None
    except OSError as exc:
        raise ProjectError(f"{path}: cannot open ({exc.strerror or exc})") from None
    if os.path.isdir(path):
        raise ProjectError(f"{path}: is a folder, not a project file")
    if st.st_size > limit:
        raise ProjectError(f"{path}: too large for a project ({st.st_size / 2**20:.0f} MB; "
                           f"the limit is {limit // 2**20} MB)")
    try:
        with open(path, "rb") as fh:
            # read(n) allocates n bytes up front: ask for what the file holds, not the limit
            data = fh.read(min(st.st_size, limit) + 1)
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise ProjectError(f"{path}: too large for a project (over {limit // 2**20} MB)")
    if not data:
        raise ProjectError(f"{path}: empty file")
    return data


def load_project(path: os.PathLike | str) -> Project:
    """Read a project file into the normalized format.

    Args:
        path: an .flp, .mmp/.mmpz, arrangement JSON or LoopMind ``arrangement.json``.

    Returns:
        The project; sections are read from the source (arrangement sections, FL time
        markers) or derived from the tracks (``inferred``), each with the roles that play.

    Raises:
        ProjectError: the file is missing, too large, corrupt, truncated or not a project
            ("<path>: <reason>").
    """
    from loopmind.generate.projects import sections as sections_mod

    path = os.fspath(path)
    data = read_bounded(path)
    kind = project_kind(path, data[:64])
    if kind == "json" and len(data) > MAX_JSON_BYTES:
        raise ProjectError(f"{path}: too large for an arrangement ({len(data) / 2**20:.0f} MB; "
                           f"the limit is {MAX_JSON_BYTES // 2**20} MB)")
    try:
        if kind == "flp":
            from loopmind.generate.projects.flp import load_flp

            project = load_flp(path, data)
        elif kind in ("mmp", "mmpz"):
            from loopmind.generate.projects.lmms import load_lmms

            project = load_lmms(path, data, compressed=kind == "mmpz")
        elif kind == "json":
            from loopmind.generate.projects.jsonarr import load_json

            project = load_json(path, data)
        else:
            raise ProjectError(f"{path}: not a project file LoopMind knows "
                               "(.flp, .mmp, .mmpz, .json)")
        if not project.sections:
            project.sections = sections_mod.derive_sections(project)
        else:
            sections_mod.fill_section_roles(project)
    except ProjectError:
        raise
    except MemoryError:
        raise ProjectError(f"{path}: too large to import") from None
    except RecursionError:
        raise ProjectError(f"{path}: nested too deeply") from None
    except Exception as exc:  # a hostile file must not escape as a traceback
        raise ProjectError(f"{path}: cannot import ({type(exc).__name__}: {exc})"[:400]) from exc
    return project

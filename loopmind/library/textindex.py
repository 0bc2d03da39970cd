"""The full-text index behind ``loopmind search``: one FTS5 row per segment.

Columns: ``name`` (the file name's words), ``folder`` (its folders' words) and ``tags`` (tags
of the file and the segment from every source, the role and the kind). File names are split
the way ``names.words_of`` splits them ("DarkTrap_808-140bpm" → dark trap 808 140 bpm), which
SQLite's tokenizer cannot do, so rows are written from Python in the same transaction as the
segment writes. Deleting a segment deletes its row (an SQL trigger); searches join on files
present on disk, so a missing file's rows need no upkeep.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import bindparam, text

FOLDER_LEVELS = 3


def _words(text_: str) -> str:
    """Words for the index: each name part whole ("hihats", "dark808") and split at camelCase
    and digits ("hi", "hats", "dark", "808"), so either spelling finds it."""
    import re

    from loopmind.library.names import words_of

    seen: dict[str, None] = {}
    for part in re.split(r"[^0-9A-Za-z#]+", text_):
        if part:
            seen.setdefault(part.lower().replace("#", "sharp"), None)
    for w in words_of(text_):
        seen.setdefault(w.replace("#", "sharp"), None)
    return " ".join(seen)


def row_text(path: str, tags: Iterable[str], role: str | None, kind: str | None
             ) -> tuple[str, str, str]:
    """The (name, folder, tags) text of one segment."""
    head, name = os.path.split(path)
    folders = []
    for _ in range(FOLDER_LEVELS):
        head, part = os.path.split(head)
        if not part:
            break
        folders.append(part)
    tag_words = " ".join(sorted({*tags, *(x for x in (role, kind) if x)}))
    return (_words(os.path.splitext(name)[0]), _words(" ".join(reversed(folders))),
            _words(tag_words))


def refresh(conn, file_ids: Iterable[int]) -> int:
    """Rewrite the text rows of these files' segments (``conn``: a SQLAlchemy Session or
    Connection inside the caller's transaction). Returns the number of rows written."""
    ids = sorted({int(i) for i in file_ids})
    n = 0
    for i in range(0, len(ids), 500):
        n += _refresh_chunk(conn, ids[i:i + 500])
    return n


def _refresh_chunk(conn, ids: list[int]) -> int:
    in_files = bindparam("ids", expanding=True)
    segs = conn.execute(text(
        "SELECT s.id, s.file_id, s.\"index\", coalesce(s.user_role, s.role), s.kind, f.path "
        "FROM segment s JOIN audio_file f ON f.id = s.file_id WHERE s.file_id IN :ids"
    ).bindparams(in_files), {"ids": ids}).all()
    tags: dict[tuple[int, int], list[str]] = defaultdict(list)
    for file_id, seg_index, name in conn.execute(text(
            "SELECT file_id, segment_index, name FROM tag WHERE file_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True)), {"ids": ids}).all():
        tags[(file_id, seg_index)].append(name)
    seg_ids = [s[0] for s in segs]
    if seg_ids:
        conn.execute(text("DELETE FROM segment_text WHERE rowid IN :sids").bindparams(
            bindparam("sids", expanding=True)), {"sids": seg_ids})
    rows = []
    for seg_id, file_id, seg_index, role, kind, path in segs:
        names = tags[(file_id, -1)] + tags[(file_id, seg_index)]
        name, folder, tag_text = row_text(path, names, role, kind)
        rows.append({"rowid": seg_id, "name": name, "folder": folder, "tags": tag_text})
    if rows:
        conn.execute(text("INSERT INTO segment_text (rowid, name, folder, tags) "
                          "VALUES (:rowid, :name, :folder, :tags)"), rows)
    return len(rows)


def rebuild_all(conn) -> int:
    """Rebuild every row (a migration, or a repair)."""
    conn.execute(text("DELETE FROM segment_text"))
    ids = [r[0] for r in conn.execute(text("SELECT id FROM audio_file")).all()]
    return refresh(conn, ids)

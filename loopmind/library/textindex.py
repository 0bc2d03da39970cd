"""The full-text index behind ``loopmind search``: one FTS5 row per segment.

Columns: ``name`` (the file name's words), ``folder`` (its folders' words), ``tags`` (tags
of the file and the segment from every source, the role and the kind) and ``facets``: tokens
for the values search filters on (effective role, kind, key, tempo to the whole BPM and to the
ten), so a filter narrows the full-text match itself and only rows that can pass are ranked.
User words never match the facets column (queries name the other three) and its bm25 weight
is 0. File names are split
the way ``names.words_of`` splits them ("DarkTrap_808-140bpm" → dark trap 808 140 bpm), which
SQLite's tokenizer cannot do, so rows are written from Python in the same transaction as the
segment writes. Deleting a segment deletes its row (an SQL trigger); searches join on files
present on disk, so a missing file's rows need no upkeep.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import bindparam, text

FOLDER_LEVELS = 3
COLUMNS = ("name", "folder", "tags", "facets")
WORD_COLUMNS = "{name folder tags}"  # an FTS5 column filter: what user words may match
MAX_BPM_TOKENS = 24  # a wider tempo filter is spelled in tens of BPM (a coarser superset)


def _token(prefix: str, value: str | None) -> str:
    v = re.sub(r"[^0-9a-z]+", "", str(value).lower().replace("#", "sharp")) if value else ""
    return prefix + (v or "none")


def key_token(key: str | None) -> str:
    return _token("key", key)


def role_token(role: str | None) -> str:
    return _token("role", role)


def kind_token(kind: str | None) -> str:
    return _token("kind", kind)


def facet_text(role: str | None, kind: str | None, key: str | None, bpm: float | None) -> str:
    """The facets column of one segment (its effective values)."""
    if bpm is None or not math.isfinite(bpm) or bpm <= 0:
        tempo = ["bpmnone", "bpmdnone"]
    else:
        tempo = [f"bpm{math.floor(bpm)}", f"bpmd{math.floor(bpm / 10)}"]
    return " ".join([role_token(role), kind_token(kind), key_token(key), *tempo])


def bpm_tokens(intervals: Iterable[tuple[float, float]], *, none: bool = False) -> list[str]:
    """Facet tokens that every tempo within the closed ``intervals`` carries (a superset of
    the rows that pass: the SQL filter stays exact), plus the no-tempo token when ``none``."""
    ivs = [(lo, hi) for lo, hi in intervals if hi >= lo and hi > 0]
    whole = sorted({b for lo, hi in ivs
                    for b in range(math.floor(max(lo, 0)), math.floor(hi) + 1)})
    if len(whole) <= MAX_BPM_TOKENS:
        out = [f"bpm{b}" for b in whole]
    else:
        out = [f"bpmd{d}" for d in sorted({b // 10 for b in whole})]
    return out + (["bpmnone"] if none else [])


def _words(text_: str) -> str:
    """Words for the index: each name part whole ("hihats", "dark808") and split at camelCase
    and digits ("hi", "hats", "dark", "808"), so either spelling finds it."""
    from loopmind.library.names import words_of

    seen: dict[str, None] = {}
    for part in re.split(r"[^0-9A-Za-z#]+", text_):
        if part:
            seen.setdefault(part.lower().replace("#", "sharp"), None)
    for w in words_of(text_):
        seen.setdefault(w.replace("#", "sharp"), None)
    return " ".join(seen)


def row_text(path: str, tags: Iterable[str], role: str | None, kind: str | None,
             key: str | None = None, bpm: float | None = None) -> tuple[str, str, str, str]:
    """The (name, folder, tags, facets) text of one segment."""
    head, name = os.path.split(path)
    folders = []
    for _ in range(FOLDER_LEVELS):
        head, part = os.path.split(head)
        if not part:
            break
        folders.append(part)
    tag_words = " ".join(sorted({*tags, *(x for x in (role, kind) if x)}))
    return (_words(os.path.splitext(name)[0]), _words(" ".join(reversed(folders))),
            _words(tag_words), facet_text(role, kind, key, bpm))


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
        "SELECT s.id, s.file_id, s.\"index\", coalesce(s.user_role, s.role), s.kind, f.path, "
        "coalesce(s.user_key, s.key), coalesce(s.user_bpm, s.bpm) "
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
    for seg_id, file_id, seg_index, role, kind, path, key, bpm in segs:
        names = tags[(file_id, -1)] + tags[(file_id, seg_index)]
        name, folder, tag_text, facets = row_text(path, names, role, kind, key, bpm)
        rows.append({"rowid": seg_id, "name": name, "folder": folder, "tags": tag_text,
                     "facets": facets})
    if rows:
        conn.execute(text("INSERT INTO segment_text (rowid, name, folder, tags, facets) "
                          "VALUES (:rowid, :name, :folder, :tags, :facets)"), rows)
    return len(rows)


def rebuild_all(conn) -> int:
    """Rebuild every row (a migration, or a repair)."""
    conn.execute(text("DELETE FROM segment_text"))
    ids = [r[0] for r in conn.execute(text("SELECT id FROM audio_file")).all()]
    n = refresh(conn, ids)
    optimize(conn)
    return n


OPTIMIZE_AFTER = 50  # files written by one scan before the index is merged into one b-tree


def optimize(conn) -> None:
    """Merge the index's b-trees into one. Writing file by file leaves many small ones, which
    every query must visit (at 100,000 segments a common word ranked in 15 ms instead of 10);
    FTS5's automerge catches up only gradually. About 3 s per million segments."""
    conn.execute(text("INSERT INTO segment_text (segment_text) VALUES ('optimize')"))

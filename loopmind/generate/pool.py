"""The sounds a song is made from: a folder, a tag, a text query, or the whole library.

A pool is read once from SQLite (the source of truth, so the same library gives the same pool
in every process) and sorted by segment id, so everything downstream is deterministic.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import bindparam, text

from loopmind.errors import LoopMindError
from loopmind.library.db import Library


class PoolError(LoopMindError):
    """The pool cannot make a song (empty folder or tag, nothing usable)."""


@dataclass
class PoolItem:
    """One usable segment."""

    id: int
    path: str
    start_s: float
    end_s: float
    kind: str
    role: str | None
    bpm: float | None
    bpm_confidence: float
    key: str | None
    bars: float | None
    lufs: float | None
    tags: frozenset[str] = frozenset()
    vector: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def loop_bars(self) -> int | None:
        """Whole bars the loop spans at its own tempo (None when that is not clear)."""
        if self.kind != "loop" or not self.bpm:
            return None
        if self.bars:
            return int(round(self.bars))
        n = self.duration_s * self.bpm / 240.0
        return int(round(n)) if round(n) >= 1 and abs(n - round(n)) < 0.05 else None


@dataclass
class Pool:
    items: list[PoolItem]
    source: str
    notes: list[str] = field(default_factory=list)

    def by_role(self, role: str, *, kind: str | None = None) -> list[PoolItem]:
        return [i for i in self.items if i.role == role and (kind is None or i.kind == kind)]

    @property
    def roles(self) -> Counter:
        return Counter(i.role for i in self.items if i.role)

    def loops(self) -> list[PoolItem]:
        return [i for i in self.items if i.kind == "loop" and i.loop_bars]


_COLUMNS = ("s.id, f.path, s.start_s, s.end_s, s.kind, coalesce(s.user_role, s.role), "
            "coalesce(s.user_bpm, s.bpm), s.bpm_confidence, coalesce(s.user_key, s.key), "
            "s.bars, s.lufs, s.embedding, s.file_id, s.\"index\"")


def load_pool(library: Library, *, folder: str | None = None, tag: str | None = None,
              query: str | None = None, limit: int = 5000) -> Pool:
    """The segments to make a song from.

    Args:
        folder: segments of files under this folder.
        tag: segments carrying this tag (from any source) or of this role.
        query: the best matches of a text search (``loopmind search``).
        (none of them: the whole library)

    Raises:
        PoolError: nothing matches (with what was asked for).
    """
    where = ["f.status = 'ok'"]
    params: dict = {}
    source = "the whole library"
    ids: list[int] | None = None
    if folder:
        from loopmind.library.pipeline import resolve_folder

        root = resolve_folder(folder).rstrip(os.sep)
        where.append("(substr(f.path, 1, :flen) = :fprefix)")
        params.update(flen=len(root) + 1, fprefix=root + os.sep)
        source = f"folder {root}"
    if tag:
        t = tag.strip().lower()
        where.append("(coalesce(s.user_role, s.role) = :tag OR EXISTS (SELECT 1 FROM tag g "
                     "WHERE g.file_id = s.file_id AND g.name = :tag AND "
                     "(g.segment_index = -1 OR g.segment_index = s.\"index\")))")
        params["tag"] = t
        source = f"tag {t}"
    if query:
        from loopmind.index.search import Searcher

        res = Searcher(library).search(query, limit=limit)
        ids = [h.id for h in res.hits]
        source = f"search '{query}'"
        if not ids:
            raise PoolError(f"no sounds for {source}: {res.reason}")
    sql = (f"SELECT {_COLUMNS} FROM segment s JOIN audio_file f ON f.id = s.file_id "
           f"WHERE {' AND '.join(where)}")
    stmt = text(sql + (" AND s.id IN :ids" if ids is not None else "") + " ORDER BY s.id")
    if ids is not None:
        stmt = stmt.bindparams(bindparam("ids", expanding=True))
        params["ids"] = ids
    with library.engine.connect() as conn:
        rows = conn.execute(stmt, params).all()
        file_ids = sorted({r[12] for r in rows})
        tags: dict[tuple[int, int], set[str]] = {}
        for i in range(0, len(file_ids), 500):
            for fid, si, name in conn.execute(text(
                    "SELECT file_id, segment_index, name FROM tag WHERE file_id IN :f"
            ).bindparams(bindparam("f", expanding=True)), {"f": file_ids[i:i + 500]}).all():
                tags.setdefault((fid, si), set()).add(name)
    items = []
    for r in rows:
        (sid, path, a, b, kind, role, bpm, bconf, key, bars, lufs, emb, fid, idx) = r
        vec = None
        if emb:
            vec = np.frombuffer(emb, dtype=np.float32)
        t = frozenset(tags.get((fid, -1), set()) | tags.get((fid, idx), set()))
        items.append(PoolItem(id=sid, path=path, start_s=a, end_s=b, kind=kind, role=role,
                              bpm=bpm, bpm_confidence=bconf or 0.0, key=key, bars=bars,
                              lufs=lufs, tags=t, vector=vec))
    if not items:
        if folder and not _folder_known(library, params.get("fprefix", "")):
            raise PoolError(f"no sounds from {source}: it is not in the library "
                            f"(add it with `loopmind add {folder}`)")
        raise PoolError(f"no sounds for {source}")
    # vectors from different embedders cannot be compared: keep the majority's dimension
    dims = Counter(len(i.vector) for i in items if i.vector is not None)
    if dims:
        dim = dims.most_common(1)[0][0]
        for i in items:
            if i.vector is not None and len(i.vector) != dim:
                i.vector = None
    return Pool(items=items, source=source)


def _folder_known(library: Library, prefix: str) -> bool:
    with library.engine.connect() as conn:
        return conn.execute(text("SELECT 1 FROM audio_file WHERE substr(path, 1, :n) = :p "
                                 "LIMIT 1"), {"n": len(prefix), "p": prefix}).first() is not None

"""The store stage: the only code that writes analysis results to the library.

Each function runs one transaction. Values the user set (``user_*`` columns, tags with source
"user") are never touched by re-analysis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlmodel import Session, col, delete, func, select

from loopmind.library import textindex
from loopmind.library.db import Library
from loopmind.library.models import ANALYSIS_VERSION, AudioFile, Segment, Tag, utcnow
from loopmind.library.pipeline import (LEGACY_HASH_HEX, FileResult, is_under,
                                       legacy_file_hash)
from loopmind.library.scanner import display_path


@dataclass
class StoreOutcome:
    """What a store did: "indexed", "failed", "unchanged", "moved"."""

    action: str
    file_id: int | None
    path: str
    error: str | None = None
    segments: int = 0


def path_key(path: str) -> bytes:
    return os.fsencode(path)


def folder_for(session: Session, path: str) -> int | None:
    """The id of the innermost watched folder that holds ``path`` (None: none does)."""
    best_id, best_len = None, -1
    for folder_id, folder in session.connection().exec_driver_sql(
            "SELECT id, path FROM watched_folder"):
        if is_under(path, folder) and len(folder) > best_len:
            best_id, best_len = folder_id, len(folder)
    return best_id


def _segment_values(seg) -> dict:
    return dict(start_s=seg.start_s, end_s=seg.end_s, kind=seg.kind, bars=seg.bars,
                bpm=seg.bpm, bpm_confidence=seg.bpm_confidence, key=seg.key,
                key_confidence=seg.key_confidence, lufs=seg.lufs,
                true_peak_db=seg.true_peak_db, role=seg.role,
                role_confidence=seg.role_confidence,
                embedding=None if seg.embedding is None
                else seg.embedding.astype("float32").tobytes(),
                embedder=seg.embedder if seg.embedding is not None else None,
                fingerprint=seg.fingerprint)


def _tag_rows(row_id: int, result: FileResult) -> list[dict]:
    seen: set[tuple[int, str, str]] = set()
    rows = []
    for seg in result.segments:
        for name, source in seg.tags:
            k = (seg.index if source == "analysis" else -1, name, source)
            if k not in seen:
                seen.add(k)
                rows.append(dict(file_id=row_id, segment_index=k[0], name=name, source=source))
    return rows


def _apply_segments(session: Session, row: AudioFile, result: FileResult, *,
                    new: bool = False) -> None:
    from sqlalchemy import insert

    if new:
        # a new file: plain bulk inserts (the common case of a first scan, ~3x cheaper)
        if result.segments:
            session.execute(insert(Segment), [
                dict(file_id=row.id, index=seg.index, **_segment_values(seg))
                for seg in result.segments])
        tags = _tag_rows(row.id, result)
        if tags:
            session.execute(insert(Tag), tags)
        return
    existing = {s.index: s for s in session.exec(
        select(Segment).where(Segment.file_id == row.id)).all()}
    for seg in result.segments:
        s = existing.pop(seg.index, None) or Segment(file_id=row.id, index=seg.index)
        for name, value in _segment_values(seg).items():
            setattr(s, name, value)
        session.add(s)
    for stale in existing.values():
        session.delete(stale)
    # tags from analysis and file names are re-derived; user tags stay
    session.exec(delete(Tag).where(Tag.file_id == row.id,
                                   col(Tag.source).in_(["analysis", "filename"])))
    for t in _tag_rows(row.id, result):
        session.add(Tag(**t))


_FILE_COLS = ("path", "path_bytes", "folder_id", "size", "mtime_ns", "content_hash", "format",
              "subtype", "sample_rate", "channels", "duration_s", "status", "error",
              "analysis_version", "indexed_at")
_SEG_COLS = ("file_id", "index", "start_s", "end_s", "kind", "bars", "bpm", "bpm_confidence",
             "key", "key_confidence", "lufs", "true_peak_db", "role", "role_confidence",
             "embedding", "embedder", "fingerprint")


def _insert_sql(table: str, cols: tuple[str, ...]) -> str:
    names = ", ".join('"' + c + '"' for c in cols)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})"


_FILE_SQL = _insert_sql("audio_file", _FILE_COLS)
_SEG_SQL = _insert_sql("segment", _SEG_COLS)
_TAG_SQL = _insert_sql("tag", ("file_id", "segment_index", "name", "source"))
_TEXT_SQL = _insert_sql("segment_text", ("rowid", *textindex.COLUMNS))
# known by path, by content, or possibly by content (a missing row of the same size that
# holds a legacy hash: ``_moved_from`` reads the file to tell)
_KNOWN_SQL = ("SELECT 1 FROM audio_file WHERE path_bytes = ? OR content_hash = ? OR "
              "(status = 'missing' AND size = ? AND length(content_hash) = "
              f"{LEGACY_HASH_HEX}) LIMIT 1")
_datetime_bind = None


def _db_datetime(value):
    """A datetime as SQLAlchemy's SQLite dialect stores it (so ORM reads see the same)."""
    global _datetime_bind
    if _datetime_bind is None:
        from sqlalchemy import DateTime
        from sqlalchemy.dialects import sqlite

        dialect = sqlite.dialect()
        _datetime_bind = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    return _datetime_bind(value)


def _insert_new(session: Session, key: bytes, result: FileResult) -> int | None:
    """The first scan's common case, a file the library has never seen (by path or by
    content), written with plain DB-API statements inside the session's transaction: the
    ORM's unit of work cost about 4 ms of CPU per file in the writer process, which shares
    the cores with the analysis workers. Returns the new file's id, or None when the file is
    known and the general path must run. The text rows are built from the result itself,
    exactly as ``textindex.refresh`` builds them from the stored rows."""
    cur = session.connection().connection.driver_connection.cursor()
    try:
        if cur.execute(_KNOWN_SQL, (key, result.content_hash, result.size)).fetchone() is not None:
            return None
        path = display_path(result.path)
        cur.execute(_FILE_SQL, (
            path, key, folder_for(session, result.path), result.size, result.mtime_ns,
            result.content_hash, result.format, result.subtype, result.sample_rate,
            result.channels, result.duration_s, "ok", None, ANALYSIS_VERSION,
            _db_datetime(utcnow())))
        file_id = cur.lastrowid
        tags = _tag_rows(file_id, result)
        if tags:
            cur.executemany(_TAG_SQL, [(t["file_id"], t["segment_index"], t["name"],
                                        t["source"]) for t in tags])
        file_tags = [t["name"] for t in tags if t["segment_index"] == -1]
        for seg in result.segments:
            values = _segment_values(seg)
            cur.execute(_SEG_SQL, (file_id, seg.index, *(values[c] for c in _SEG_COLS[2:])))
            names = file_tags + [t["name"] for t in tags if t["segment_index"] == seg.index]
            cur.execute(_TEXT_SQL, (cur.lastrowid, *textindex.row_text(
                path, names, seg.role, seg.kind, seg.key, seg.bpm)))
        return file_id
    finally:
        cur.close()


def _moved_from(session: Session, result: FileResult) -> AudioFile | None:
    """The row of a file gone from its path (missing, or no longer on disk) with this new
    file's content, or None. Missing rows still holding a legacy hash are compared by that
    hash (read here, only when one of them has the new file's size; a scan's own move check,
    ``Indexer._try_move``, covers the rows not yet marked missing)."""
    def gone(row: AudioFile) -> bool:
        return row.status == "missing" or not os.path.exists(os.fsdecode(row.path_bytes))

    for cand in session.exec(select(AudioFile).where(
            AudioFile.content_hash == result.content_hash)).all():
        if gone(cand):
            return cand
    legacy = session.exec(select(AudioFile).where(
        AudioFile.status == "missing", AudioFile.size == result.size,
        func.length(AudioFile.content_hash) == LEGACY_HASH_HEX)).all()
    if legacy:
        try:
            digest = legacy_file_hash(result.path)
        except OSError:
            return None
        for cand in legacy:
            if cand.content_hash == digest:
                return cand
    return None


def store_result(library: Library, result: FileResult) -> StoreOutcome:
    """Write one file's result in one transaction (insert, update, move or error)."""
    key = path_key(result.path)
    with library.write() as session:
        if not result.error and not result.unchanged:
            file_id = _insert_new(session, key, result)
            if file_id is not None:
                return StoreOutcome("indexed", file_id, result.path,
                                    segments=len(result.segments))
        row = session.exec(select(AudioFile).where(AudioFile.path_bytes == key)).first()
        action = "indexed"
        if row is None and result.content_hash and not result.error:
            # a moved or renamed file keeps its identity: same content, old path gone
            cand = _moved_from(session, result)
            if cand is not None:
                row, action = cand, "moved"
        is_new = row is None
        if row is None:
            row = AudioFile(path=display_path(result.path), path_bytes=key)
        elif action == "moved":
            row.path, row.path_bytes = display_path(result.path), key
        row.folder_id = folder_for(session, result.path)
        row.size, row.mtime_ns = result.size, result.mtime_ns
        row.indexed_at = utcnow()
        if result.error:
            row.status, row.error = "error", result.error
            session.add(row)
            session.flush()
            return StoreOutcome("failed", row.id, result.path, error=result.error)
        if (result.unchanged or action == "moved") and not result.segments:
            row.status, row.error = "ok", None
            if result.content_hash:
                row.content_hash = result.content_hash  # a legacy hash gives way
            session.add(row)
            session.flush()
            if action == "moved":
                textindex.refresh(session, [row.id])
            return StoreOutcome(action if action == "moved" else "unchanged", row.id,
                                result.path)
        row.content_hash = result.content_hash
        row.format, row.subtype = result.format, result.subtype
        row.sample_rate, row.channels = result.sample_rate, result.channels
        row.duration_s = result.duration_s
        row.status, row.error = "ok", None
        row.analysis_version = ANALYSIS_VERSION
        session.add(row)
        session.flush()
        _apply_segments(session, row, result, new=is_new)
        session.flush()
        textindex.refresh(session, [row.id])
        return StoreOutcome(action, row.id, result.path, segments=len(result.segments))


def store_error(library: Library, path: str, error: str) -> StoreOutcome:
    """Record a file that could not even be examined (stat failed, symlink loop, ...)."""
    return store_result(library, FileResult(path=path, error=error))


def mark_missing(library: Library, paths: list[str]) -> int:
    """Mark files as gone (they keep their rows, so a file that returns keeps its tags)."""
    if not paths:
        return 0
    keys = [path_key(p) for p in paths]
    n = 0
    with library.write() as session:
        for i in range(0, len(keys), 500):
            rows = session.exec(select(AudioFile).where(
                col(AudioFile.path_bytes).in_(keys[i:i + 500]))).all()
            for row in rows:
                if row.status != "missing":
                    row.status = "missing"
                    session.add(row)
                    n += 1
    return n


def mark_missing_under(library: Library, folder: str) -> int:
    """Mark every file under a folder as gone (the folder was deleted or moved away)."""
    with library.session() as session:
        rows = session.exec(select(AudioFile.path_bytes).where(
            AudioFile.status != "missing")).all()
    paths = [os.fsdecode(p) for p in rows]
    return mark_missing(library, [p for p in paths if p != folder and is_under(p, folder)])


def move(library: Library, src: str, dst: str) -> bool:
    """Re-point a file's row from ``src`` to ``dst`` (a rename seen by the watcher)."""
    with library.write() as session:
        row = session.exec(select(AudioFile).where(AudioFile.path_bytes == path_key(src))).first()
        if row is None:
            return False
        clash = session.exec(select(AudioFile).where(AudioFile.path_bytes == path_key(dst))).first()
        if clash is not None and clash.id != row.id:
            # the destination was overwritten: drop its old row, the moved file wins
            session.exec(delete(Tag).where(Tag.file_id == clash.id))
            session.exec(delete(Segment).where(Segment.file_id == clash.id))
            session.delete(clash)
            session.flush()
        row.path, row.path_bytes = display_path(dst), path_key(dst)
        row.folder_id = folder_for(session, dst)
        try:
            st = os.stat(dst)
            row.size, row.mtime_ns = st.st_size, st.st_mtime_ns
        except OSError:
            pass
        session.add(row)
        session.flush()
        textindex.refresh(session, [row.id])
    return True


def move_tree(library: Library, src_dir: str, dst_dir: str) -> int:
    """Re-point every file under a renamed folder."""
    src_prefix = src_dir.rstrip(os.sep) + os.sep
    with library.session() as session:
        rows = session.exec(select(AudioFile.path_bytes)).all()
    n = 0
    for raw in rows:
        p = os.fsdecode(raw)
        if p.startswith(src_prefix):
            if move(library, p, os.path.join(dst_dir, p[len(src_prefix):])):
                n += 1
    return n

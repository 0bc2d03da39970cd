"""The vector index's life: load, catch up with the library, rebuild, save, re-embed.

SQLite is the source of truth; the FAISS file is a cache of the embeddings stored there. SQL
triggers append every segment whose vector may have changed to ``vector_log``; a loaded index
remembers the last ``seq`` it applied and replays newer rows before each search, so the CLI, the
app and the watcher all see new, changed, moved and deleted files within one cheap query. A
missing, corrupt or stale file is rebuilt from SQLite with a message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import bindparam, text

from loopmind.errors import LoopMindError
from loopmind.fileio import atomic_write
from loopmind.library.db import Library

log = logging.getLogger(__name__)

# live vectors: files on disk, made by the embedder in use
_LIVE = ("FROM segment s JOIN audio_file f ON f.id = s.file_id "
         "WHERE f.status = 'ok' AND s.embedding IS NOT NULL AND s.embedder = :embedder")
SAVE_EVERY = 2000  # changes replayed before the file is rewritten (also saved on close)
COMPACT_ABOVE = 20000  # vector_log rows kept before old ones are dropped


def embedder_id(name: str | None = None):
    """The embedder in use (from the settings when ``name`` is None) and its "name/version"."""
    from loopmind.index.embed import get_embedder

    e = get_embedder(name)
    return e, f"{e.name}/{e.version}"


class Catalog:
    """The library's vector index, kept in step with SQLite.

    Args:
        library: the open library.
        embedder: embedder name (default: the settings').
        on_message: called with one-line notices ("vector index was corrupt; rebuilt ...").
    """

    def __init__(self, library: Library, *, embedder: str | None = None,
                 on_message: Callable[[str], None] | None = None):
        self.library = library
        self.settings = library.settings
        self.embedder, self.embedder_id = embedder_id(embedder or self.settings.embedder)
        self.on_message = on_message or (lambda msg: log.warning("%s", msg))
        self.path: Path = self.settings.vectors_path
        self._index = None
        self._seq = 0
        self._dirty = 0
        self._lock = threading.RLock()

    # -- loading ----------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.path.with_suffix(".state.json")

    def _fetch(self, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = f"SELECT s.id, s.embedding {_LIVE}"
        params: dict = {"embedder": self.embedder_id}
        stmt = text(q)
        if ids is not None:
            stmt = text(q + " AND s.id IN :ids").bindparams(bindparam("ids", expanding=True))
            params["ids"] = ids
        with self.library.engine.connect() as conn:
            rows = conn.execute(stmt, params).all()
        dim = self.embedder.dim
        good = [(i, b) for i, b in rows if b is not None and len(b) == 4 * dim]
        if len(good) < len(rows):
            log.warning("%d stored vectors have the wrong size; skipped", len(rows) - len(good))
        ids_ = np.fromiter((i for i, _ in good), dtype=np.int64, count=len(good))
        vecs = (np.frombuffer(b"".join(b for _, b in good), dtype=np.float32).reshape(-1, dim)
                if good else np.zeros((0, dim), dtype=np.float32))
        return ids_, vecs

    def _max_seq(self, conn) -> int:
        return int(conn.execute(text("SELECT coalesce(max(seq), 0) FROM vector_log")).scalar())

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def vectors(self):
        """The loaded, up-to-date ``VectorIndex`` (loaded or rebuilt on first use)."""
        with self._lock:
            if self._index is None:
                self._load()
            else:
                self.sync()
            return self._index

    def _load(self) -> None:
        from loopmind.index.vectors import VectorIndex, id_checksum

        state = self._read_state()
        with self.library.engine.connect() as conn:
            head = self._max_seq(conn)
        index = None
        if self.path.exists() and state.get("embedder") == self.embedder_id:
            try:
                index = VectorIndex.load(self.path)
                if index.embedder != self.embedder.name or index.version != self.embedder.version \
                        or index.dim != self.embedder.dim:
                    index = None
            except Exception as exc:  # noqa: BLE001 - any unreadable cache is rebuilt
                self.on_message(f"vector index unreadable ({_one_line(exc)}); rebuilding "
                                f"from the library")
                index = None
        elif self.path.exists():
            self.on_message("vector index was made by another embedder; rebuilding")
        if index is not None:
            self._index, self._seq = index, int(state.get("seq", 0))
            if not self._replay():
                index = None
        if index is not None:
            # the final word: the ids the index holds are exactly SQLite's live ids
            with self.library.engine.connect() as conn:
                ids = [r[0] for r in conn.execute(text(f"SELECT s.id {_LIVE}"),
                                                  {"embedder": self.embedder_id}).all()]
            if len(ids) != len(index) or id_checksum(np.asarray(ids, dtype=np.int64)) != \
                    index.checksum:
                self.on_message("vector index was stale; rebuilt from the library")
                index = None
        if index is None:
            self._rebuild(head)

    def _rebuild(self, head: int | None = None) -> None:
        from loopmind.index.vectors import VectorIndex

        with self.library.engine.connect() as conn:
            head = self._max_seq(conn) if head is None else head
        ids, vecs = self._fetch()
        self._index = VectorIndex.build(ids, vecs, embedder=self.embedder.name,
                                        version=self.embedder.version)
        self._seq = head
        self._dirty = 1
        # rows logged while fetching are replayed (upserts are idempotent)
        self._replay()
        self.save()

    def rebuild(self) -> int:
        """Rebuild the index from SQLite now; returns its size."""
        with self._lock:
            self._rebuild()
            return len(self._index)

    # -- catching up ---------------------------------------------------------------------

    def sync(self) -> int:
        """Apply changes logged since the last sync; returns how many segments changed."""
        with self._lock:
            if self._index is None:
                self._load()
                return 0
            before = self._dirty
            if not self._replay():
                self._rebuild()
            return self._dirty - before

    def _replay(self) -> bool:
        """Replay vector_log rows after ``self._seq``; False when the log no longer reaches
        back that far (compacted by another process), which needs a reload."""
        with self.library.engine.connect() as conn:
            head = self._max_seq(conn)
            if head <= self._seq:
                return True
            lo = conn.execute(text("SELECT min(seq) FROM vector_log")).scalar()
            if lo is not None and lo > self._seq + 1 and self._seq > 0:
                return False
            changed = sorted({r[0] for r in conn.execute(text(
                "SELECT segment_id FROM vector_log WHERE seq > :a AND seq <= :b"),
                {"a": self._seq, "b": head}).all()})
        for i in range(0, len(changed), 5000):
            chunk = changed[i:i + 5000]
            ids, vecs = self._fetch(chunk)
            present = set(ids.tolist())
            gone = [c for c in chunk if c not in present]
            if len(ids):
                self._index.add(ids, vecs)
            if gone:
                self._index.remove(np.asarray(gone, dtype=np.int64))
        self._seq = head
        self._dirty += len(changed)
        if self._dirty >= SAVE_EVERY:
            self.save()
        return True

    # -- saving ----------------------------------------------------------------------------

    def save(self) -> None:
        """Write the index and its state atomically (nothing when unchanged)."""
        with self._lock:
            if self._index is None or not self._dirty:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._index.save(self.path)
                atomic_write(self.state_path, json.dumps(
                    {"seq": self._seq, "embedder": self.embedder_id}).encode())
            except OSError as exc:
                # a cache that cannot be written is rebuilt next time; the library is intact
                self.on_message(f"could not save the vector index ({exc.strerror or exc})")
                return
            self._dirty = 0
        self._compact()

    def _compact(self) -> None:
        with self.library.engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM vector_log")).scalar() or 0
        if n > COMPACT_ABOVE:
            with self.library.write() as s:
                s.execute(text("DELETE FROM vector_log WHERE seq <= :seq"), {"seq": self._seq})

    def close(self) -> None:
        self.save()

    # -- queries the search layer needs ------------------------------------------------------

    def vector_of(self, segment_id: int) -> np.ndarray | None:
        """A segment's stored vector (from the index, else SQLite)."""
        v = self.vectors().vector(int(segment_id))
        if v is not None:
            return v
        ids, vecs = self._fetch([int(segment_id)])
        return vecs[0] if len(ids) else None

    def stale_count(self) -> int:
        """Segments of files on disk whose vector is missing or from another embedder."""
        with self.library.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM segment s JOIN audio_file f ON f.id = s.file_id "
                "WHERE f.status = 'ok' AND (s.embedder IS NULL OR s.embedder != :e)"),
                {"e": self.embedder_id}).scalar())

    def reembed(self, *, progress: Callable[[int, int], None] | None = None,
                stop: threading.Event | None = None) -> int:
        """Re-embed segments whose vector is missing or from another embedder (after the
        settings name a new embedder). One file is decoded once for all its segments and
        written in one transaction; ``stop`` ends the job between files. Returns how many
        segments were re-embedded."""
        from loopmind.library.analysis.features import Spectrogram
        from loopmind.library.audio import decode

        with self.library.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT f.id, f.path_bytes, s.id, s.start_s, s.end_s FROM segment s "
                "JOIN audio_file f ON f.id = s.file_id WHERE f.status = 'ok' AND "
                "(s.embedder IS NULL OR s.embedder != :e) ORDER BY f.id, s.\"index\""),
                {"e": self.embedder_id}).all()
        by_file: dict[int, tuple[bytes, list]] = {}
        for fid, pb, sid, a, b in rows:
            by_file.setdefault(fid, (pb, []))[1].append((sid, a, b))
        done = 0
        for n, (fid, (pb, segs)) in enumerate(by_file.items()):
            if stop is not None and stop.is_set():
                break
            try:
                dec = decode(os.fsdecode(pb), sr=self.settings.analysis_sr,
                             max_duration_s=self.settings.max_duration_s)
            except (LoopMindError, OSError) as exc:
                log.warning("re-embed: %s: %s", os.fsdecode(pb), _one_line(exc))
                continue
            values = []
            for sid, a, b in segs:
                ys = dec.y[int(a * dec.sr):int(b * dec.sr)]
                if len(ys) == 0:
                    continue
                v = self.embedder.embed(ys, sr=dec.sr, spec=Spectrogram(ys, dec.sr))
                values.append({"sid": sid, "emb": np.asarray(v, np.float32).tobytes(),
                               "e": self.embedder_id})
            if values:
                with self.library.write() as s:
                    s.execute(text("UPDATE segment SET embedding = :emb, embedder = :e "
                                   "WHERE id = :sid"), values)
                done += len(values)
            if progress:
                progress(n + 1, len(by_file))
        return done


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__

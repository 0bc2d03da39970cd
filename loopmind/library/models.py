"""The library's tables (SQLModel). SQLite is the source of truth.

A file keeps its row (and so its id, segments' user values and tags) when it is moved or
renamed: the scanner recognises it by content hash. User-set values live in their own
columns (``user_bpm``, ...) and tags carry their source, so re-analysis never overwrites what
the user chose.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

# 2: segments gained a duplicate fingerprint and an embedding with its embedder's name
ANALYSIS_VERSION = 2


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class WatchedFolder(SQLModel, table=True):
    __tablename__ = "watched_folder"

    id: Optional[int] = Field(default=None, primary_key=True)
    path: str = Field(index=True, unique=True)
    added_at: datetime = Field(default_factory=utcnow)


class AudioFile(SQLModel, table=True):
    """One audio file in a watched folder.

    ``path_bytes`` is the exact file-system path (names need not be UTF-8); ``path`` is its
    readable form for display and search.
    """

    __tablename__ = "audio_file"
    __table_args__ = (Index("ix_audio_file_hash", "content_hash"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    folder_id: Optional[int] = Field(default=None, foreign_key="watched_folder.id",
                                     index=True)
    path: str = Field(index=True)
    path_bytes: bytes = Field(sa_column=Column(LargeBinary, unique=True, nullable=False))
    size: int = 0
    mtime_ns: int = 0
    content_hash: Optional[str] = None
    format: Optional[str] = None
    subtype: Optional[str] = None
    sample_rate: Optional[int] = None
    channels: Optional[int] = None
    duration_s: Optional[float] = None
    status: str = Field(default="ok", index=True)  # ok | error | missing
    error: Optional[str] = None
    analysis_version: int = ANALYSIS_VERSION
    indexed_at: datetime = Field(default_factory=utcnow)


class Segment(SQLModel, table=True):
    """A loop, a one-shot, or a bar-aligned part of a longer file (offsets into the file)."""

    __tablename__ = "segment"
    __table_args__ = (UniqueConstraint("file_id", "index", name="uq_segment_file_index"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    file_id: int = Field(foreign_key="audio_file.id", index=True)
    index: int = 0
    start_s: float = 0.0
    end_s: float = 0.0
    kind: str = "oneshot"  # loop | oneshot
    bars: Optional[float] = None
    bpm: Optional[float] = Field(default=None, index=True)
    bpm_confidence: float = 0.0
    key: Optional[str] = Field(default=None, index=True)
    key_confidence: float = 0.0
    lufs: Optional[float] = None
    true_peak_db: Optional[float] = None
    role: Optional[str] = Field(default=None, index=True)
    role_confidence: float = 0.0
    # values the user set; re-analysis never touches these
    user_bpm: Optional[float] = Field(default=None, index=True)
    user_key: Optional[str] = Field(default=None, index=True)
    user_role: Optional[str] = Field(default=None, index=True)
    embedding: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary))
    # "name/version" of the embedder that made ``embedding`` (stale when settings change)
    embedder: Optional[str] = None
    # compact contour for near-duplicate checks (loopmind.index.dupes.fingerprint)
    fingerprint: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary))

    @property
    def effective_bpm(self) -> Optional[float]:
        return self.user_bpm if self.user_bpm is not None else self.bpm

    @property
    def effective_key(self) -> Optional[str]:
        return self.user_key if self.user_key is not None else self.key

    @property
    def effective_role(self) -> Optional[str]:
        return self.user_role if self.user_role is not None else self.role


class Tag(SQLModel, table=True):
    """A tag on a file (segment_id None) or on one segment, with where it came from."""

    __tablename__ = "tag"
    __table_args__ = (
        UniqueConstraint("file_id", "segment_index", "name", "source", name="uq_tag"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    file_id: int = Field(foreign_key="audio_file.id", index=True)
    # tags follow the segment's position in the file, so they survive re-analysis
    segment_index: int = -1  # -1: the whole file
    name: str = Field(index=True)
    source: str = "analysis"  # filename | analysis | user


class VectorLog(SQLModel, table=True):
    """Segments whose vector may have changed, in commit order (filled by SQL triggers).

    The FAISS index is a cache: it remembers the last ``seq`` it applied and replays newer
    rows, so every process (CLI, app, watcher) catches up with one cheap query.
    """

    __tablename__ = "vector_log"

    seq: Optional[int] = Field(default=None, primary_key=True)
    segment_id: int

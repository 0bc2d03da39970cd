"""Reading the library: counts, errors and segment listings (shared by the CLI and the app)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select

from loopmind.library import textindex
from loopmind.library.db import Library
from loopmind.library.models import AudioFile, Segment, Tag, WatchedFolder


@dataclass
class LibraryStatus:
    folders: list[str]
    files_by_status: dict[str, int]
    segments: int
    loops: int
    oneshots: int
    roles: dict[str, int]
    errors: list[tuple[str, str]]


def status(library: Library, *, max_errors: int | None = None) -> LibraryStatus:
    with library.session() as s:
        folders = [f.path for f in s.exec(select(WatchedFolder).order_by(WatchedFolder.path))]
        by_status = dict(s.exec(select(AudioFile.status, func.count()).group_by(
            AudioFile.status)).all())
        live = select(Segment).join(AudioFile).where(AudioFile.status == "ok")
        kinds = dict(s.exec(select(Segment.kind, func.count()).join(AudioFile).where(
            AudioFile.status == "ok").group_by(Segment.kind)).all())
        role_expr = func.coalesce(Segment.user_role, Segment.role)
        roles = dict(s.exec(select(role_expr, func.count()).join(AudioFile).where(
            AudioFile.status == "ok").group_by(role_expr)).all())
        q = select(AudioFile.path, AudioFile.error).where(AudioFile.status == "error").order_by(
            AudioFile.path)
        if max_errors:
            q = q.limit(max_errors)
        errors = [(p, e or "") for p, e in s.exec(q).all()]
        del live
    return LibraryStatus(folders=folders, files_by_status=by_status,
                         segments=sum(kinds.values()), loops=kinds.get("loop", 0),
                         oneshots=kinds.get("oneshot", 0),
                         roles={k or "unknown": v for k, v in roles.items()}, errors=errors)


def list_segments(library: Library, *, role: str | None = None, kind: str | None = None,
                  limit: int | None = None, offset: int = 0) -> list[dict]:
    """Segments of files present on disk, as dicts (the ``loopmind ls --json`` records).

    User-set values win over analysed ones.
    """
    with library.session() as s:
        q = select(Segment, AudioFile).join(AudioFile).where(AudioFile.status == "ok")
        if role:
            q = q.where(func.coalesce(Segment.user_role, Segment.role) == role)
        if kind:
            q = q.where(Segment.kind == kind)
        q = q.order_by(AudioFile.path, Segment.index).offset(offset)
        if limit:
            q = q.limit(limit)
        rows = s.exec(q).all()
        file_ids = {f.id for _, f in rows}
        tags: dict[tuple[int, int], list[str]] = defaultdict(list)
        ids = list(file_ids)
        for i in range(0, len(ids), 500):
            for t in s.exec(select(Tag).where(col(Tag.file_id).in_(ids[i:i + 500]))).all():
                tags[(t.file_id, t.segment_index)].append(t.name)
    out = []
    for seg, f in rows:
        names = sorted(set(tags[(f.id, -1)]) | set(tags[(f.id, seg.index)]))
        out.append(segment_record(seg, f, names))
    return out


def segment_record(seg: Segment, f: AudioFile, tags: list[str]) -> dict:
    return {
        "id": seg.id, "file_id": f.id, "path": f.path, "segment": seg.index,
        "start_s": round(seg.start_s, 4), "end_s": round(seg.end_s, 4),
        "duration_s": round(seg.end_s - seg.start_s, 4), "kind": seg.kind, "bars": seg.bars,
        "bpm": seg.effective_bpm, "bpm_confidence": seg.bpm_confidence,
        "key": seg.effective_key, "key_confidence": seg.key_confidence,
        "role": seg.effective_role, "role_confidence": seg.role_confidence,
        "tags": tags, "lufs": seg.lufs, "true_peak_db": seg.true_peak_db,
    }


def set_user_values(library: Library, segment_id: int, *, bpm: float | None = None,
                    key: str | None = None, role: str | None = None,
                    tags: list[str] | None = None) -> bool:
    """Set values by hand; re-analysis never overwrites them."""
    with library.write() as s:
        seg = s.get(Segment, segment_id)
        if seg is None:
            return False
        if bpm is not None:
            seg.user_bpm = bpm
        if key is not None:
            seg.user_key = key
        if role is not None:
            seg.user_role = role
        s.add(seg)
        for name in tags or []:
            exists = s.exec(select(Tag).where(Tag.file_id == seg.file_id,
                                              Tag.segment_index == seg.index,
                                              Tag.name == name, Tag.source == "user")).first()
            if exists is None:
                s.add(Tag(file_id=seg.file_id, segment_index=seg.index, name=name,
                          source="user"))
        s.flush()
        textindex.refresh(s, [seg.file_id])
    return True

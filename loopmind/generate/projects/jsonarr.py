"""Arrangement JSON: LoopMind's own ``arrangement.json`` (``loopmind.arrangement/1``), simple
arrangement documents ``{bpm, genre, mood, structure: [{bar, section, loops}]}``, and already
normalized ``loopmind.project/1`` documents.

In a simple arrangement, ``bar`` is where a section starts (1-based when the first section
starts at bar 1, else 0-based), and a section lasts until the next one starts (the last one
for its own ``bars``, else as long as the one before it). ``loops`` name what plays: strings
(a file or a loop name) or objects ``{name|file|path, role}``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from loopmind.generate.projects import ProjectError
from loopmind.generate.projects.model import (FORMAT, MAX_TRACKS, Clip, Mixer, Note, Project,
                                              Section, Track)
from loopmind.generate.projects.roles import canonical_role, guess_role
from loopmind.generate.projects.sections import MAX_BARS, canonical_section

MAX_ITEMS = 100_000     # sections, tracks, clips or notes in one document


def _decode(path: str, data: bytes) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise ProjectError(f"{path}: JSON nested too deeply") from None


def _number(path: str, value: Any, what: str, *, lo: float, hi: float,
            default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ProjectError(f"{path}: {what} is not a number ({str(value)[:30]!r})")
    try:
        x = float(value)
    except ValueError:
        raise ProjectError(f"{path}: {what} is not a number ({str(value)[:30]!r})") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise ProjectError(f"{path}: {what} out of range ({x:g})")
    return x


def _bounded(path: str, items: Any, what: str) -> list:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ProjectError(f"{path}: {what} must be a list")
    if len(items) > MAX_ITEMS:
        raise ProjectError(f"{path}: more than {MAX_ITEMS} {what}")
    return items


def _time_signature(path: str, value: Any) -> tuple[int, int]:
    if value is None:
        return (4, 4)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ProjectError(f"{path}: time_signature must be [beats, unit]")
    num = int(_number(path, value[0], "time signature", lo=1, hi=64))
    den = int(_number(path, value[1], "time signature", lo=1, hi=32))
    return (num, den)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value[:8])
    return str(value)[:200]


def load_json(path: str, data: bytes) -> Project:
    """A project from any of the JSON forms (see the module docstring)."""
    doc = _decode(path, data)
    if not isinstance(doc, dict):
        raise ProjectError(f"{path}: JSON is not an arrangement (expected an object)")
    fmt = str(doc.get("format") or "")
    if fmt.startswith("loopmind.arrangement"):
        return _from_loopmind(path, doc)
    if fmt.startswith("loopmind.project"):
        return _from_normalized(path, doc)
    if "structure" in doc:
        return _from_structure(path, doc)
    if "sections" in doc and "tracks" in doc:
        return _from_loopmind(path, doc)
    raise ProjectError(f"{path}: JSON without an arrangement (no 'structure', 'sections' "
                       "or 'tracks')")


def _from_normalized(path: str, doc: dict) -> Project:
    if len(_bounded(path, doc.get("tracks"), "tracks")) > MAX_TRACKS:
        raise ProjectError(f"{path}: more than {MAX_TRACKS} tracks")
    _bounded(path, doc.get("sections"), "sections")
    _number(path, doc.get("bpm"), "bpm", lo=10, hi=999)
    _time_signature(path, doc.get("time_signature"))
    try:
        project = Project.from_dict(doc)
        project.to_dict()   # every value must survive the trip back to JSON
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ProjectError(f"{path}: malformed {FORMAT} document ({exc})") from None
    project.source = os.path.abspath(path)
    project.kind = "json"
    return project


def _from_loopmind(path: str, doc: dict) -> Project:
    """LoopMind's exported arrangement (``Song.to_dict``)."""
    from loopmind.generate.midi import GM_DRUM_NOTES
    from loopmind.generate.song import Song

    doc = dict(doc)
    doc.pop("files", None)
    if len(_bounded(path, doc.get("tracks"), "tracks")) > MAX_TRACKS:
        raise ProjectError(f"{path}: more than {MAX_TRACKS} tracks")
    _bounded(path, doc.get("sections"), "sections")
    try:
        song = Song.from_dict(doc)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ProjectError(f"{path}: malformed LoopMind arrangement ({exc})") from None
    bpm = _number(path, song.bpm, "bpm", lo=10, hi=999)
    ts = _time_signature(path, song.time_signature)
    bpb = ts[0] * 4.0 / ts[1]
    beats_per_step = bpb / 16
    project = Project(source=os.path.abspath(path), kind="loopmind",
                      name=_text(song.prompt) or os.path.splitext(os.path.basename(path))[0],
                      bpm=bpm, time_signature=ts, genre=song.genre,
                      mood=", ".join(song.moods) or None, key=song.key,
                      creator=f"LoopMind ({song.mode})")
    for t in song.tracks:
        role = canonical_role(t.role)
        m = t.mix
        eq = [{"type": "peak", "freq_hz": float(f), "gain_db": float(g), "q": float(q)}
              for f, g, q in m.eq]
        if m.highpass_hz:
            eq.insert(0, {"type": "highpass", "freq_hz": float(m.highpass_hz), "gain_db": None,
                          "q": None})
        if m.lowpass_hz:
            eq.append({"type": "lowpass", "freq_hz": float(m.lowpass_hz), "gain_db": None,
                       "q": None})
        track = Track(name=t.name, role=role, role_source="source" if role else None,
                      mixer=Mixer(gain_db=m.gain_db, pan=m.pan, eq=eq or None,
                                  reverb_send=m.reverb_send, muted=m.mute,
                                  effects=[f"duck under {m.duck_under}"] if m.duck_under else []),
                      muted=m.mute)
        drum_note = GM_DRUM_NOTES.get(role or "", 60)
        kinds = set()
        for c in _bounded(path, t.clips, "clips"):
            notes = None
            if c.steps is not None:
                notes = [Note(start_beat=s * beats_per_step, length=beats_per_step,
                              key=drum_note, velocity=float(v))
                         for s, v in c.steps[:MAX_ITEMS]]
                kinds.add("sample")
            elif c.events is not None:
                notes = [Note(start_beat=e.step * beats_per_step,
                              length=max(e.length, 1) * beats_per_step,
                              key=int(e.pitch if e.pitch is not None else drum_note),
                              velocity=float(e.velocity)) for e in c.events[:MAX_ITEMS]]
                kinds.add("sample")
            else:
                kinds.add("audio")
            track.clips.append(Clip(start_bar=float(c.start_bar), bars=float(c.bars),
                                    sample=c.source_path, notes=notes))
        track.kind = "sample" if kinds == {"sample"} else "audio"
        samples = {c.source_path for c in t.clips}
        track.sample_path = samples.pop() if len(samples) == 1 else None
        project.tracks.append(track)
    for s in song.sections:
        project.sections.append(Section(
            name=canonical_section(s.name) or s.name, start_bar=float(s.start_bar),
            bars=float(s.bars), roles=sorted({r for r in (canonical_role(x) for x in s.roles)
                                              if r}),
            inferred=False, label=None if canonical_section(s.name) == s.name else s.name,
            energy=s.energy))
    return project


def _loop_fields(path: str, loop: Any) -> tuple[str, str | None, str | None]:
    """(track name, sample path or None, stated role or None) of one ``loops`` entry."""
    if isinstance(loop, str):
        name = loop
        sample = loop if ("/" in loop or "\\" in loop or os.path.splitext(loop)[1]) else None
        return os.path.splitext(os.path.basename(loop.replace("\\", "/")))[0] or loop, sample, None
    if isinstance(loop, dict):
        sample = loop.get("file") or loop.get("path") or loop.get("sample")
        name = loop.get("name") or loop.get("id") or (
            os.path.splitext(os.path.basename(str(sample).replace("\\", "/")))[0]
            if sample else None)
        if not name:
            raise ProjectError(f"{path}: a loop without a name or file")
        return str(name)[:200], None if sample is None else str(sample), \
            None if loop.get("role") is None else str(loop.get("role"))
    raise ProjectError(f"{path}: a loop must be a name or an object, not {type(loop).__name__}")


def _from_structure(path: str, doc: dict) -> Project:
    """``{bpm, genre, mood, structure: [{bar, section, loops}]}``."""
    bpm = _number(path, doc.get("bpm"), "bpm", lo=10, hi=999)
    ts = _time_signature(path, doc.get("time_signature"))
    entries = _bounded(path, doc.get("structure"), "structure entries")
    if not entries:
        raise ProjectError(f"{path}: empty structure")
    starts: list[float] = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ProjectError(f"{path}: structure entry {i + 1} is not an object")
        starts.append(_number(path, e.get("bar", e.get("start_bar")), f"structure[{i}].bar",
                              lo=0, hi=MAX_BARS, default=None) if
                      e.get("bar", e.get("start_bar")) is not None else math.nan)
    known = [x for x in starts if not math.isnan(x)]
    if any(b < a for a, b in zip(known, known[1:])):
        raise ProjectError(f"{path}: a structure entry starts before the one before it")
    base = 1.0 if starts and starts[0] == 1 else 0.0
    project = Project(source=os.path.abspath(path), kind="json",
                      name=_text(doc.get("name") or doc.get("title"))
                      or os.path.splitext(os.path.basename(path))[0],
                      bpm=bpm, time_signature=ts, genre=_text(doc.get("genre")),
                      mood=_text(doc.get("mood") or doc.get("moods")), key=_text(doc.get("key")))
    tracks: dict[str, Track] = {}
    cursor = 0.0
    prev_len = 8.0
    for i, e in enumerate(entries):
        start = cursor if math.isnan(starts[i]) else starts[i] - base
        if start < cursor - 1e-6:
            raise ProjectError(f"{path}: structure entry {i + 1} starts before the one before it")
        own = e.get("bars", e.get("length"))
        if own is not None:
            length = _number(path, own, f"structure[{i}].bars", lo=0, hi=MAX_BARS)
        elif i + 1 < len(entries) and not math.isnan(starts[i + 1]):
            length = starts[i + 1] - base - start
        else:
            length = prev_len
        if length <= 0:
            continue
        prev_len = length
        label = _text(e.get("section") or e.get("name")) or ""
        roles: set[str] = set()
        for loop in _bounded(path, e.get("loops"), "loops"):
            name, sample, stated = _loop_fields(path, loop)
            track = tracks.get(name)
            if track is None:
                role = canonical_role(stated)
                src = "source" if role else None
                if role is None:
                    role, src = guess_role(name, sample_path=sample)
                track = tracks[name] = Track(name=name, role=role, role_source=src,
                                             kind="audio", sample_path=sample)
                if len(tracks) > MAX_TRACKS:
                    raise ProjectError(f"{path}: more than {MAX_TRACKS} different loops")
            track.clips.append(Clip(start_bar=start, bars=length, sample=sample or name))
            if track.role:
                roles.add(track.role)
        project.sections.append(Section(name=canonical_section(label) or "", start_bar=start,
                                        bars=length, roles=sorted(roles), inferred=False,
                                        label=label or None))
        cursor = start + length
    project.tracks = list(tracks.values())
    # labels that are no section word get a name by energy, like derived sections
    if any(not s.name for s in project.sections):
        from loopmind.generate.projects.sections import name_sections

        given = [s.name for s in project.sections]
        name_sections(project.sections, project.genre,
                       [float(len(s.roles)) for s in project.sections])
        for s, g in zip(project.sections, given):
            if not g:
                s.inferred = True
    else:
        top = max((len(s.roles) for s in project.sections), default=0) or 1
        for s in project.sections:
            s.energy = len(s.roles) / top
    return project

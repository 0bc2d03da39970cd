"""The normalized project: one shape for FL Studio, LMMS, arrangement JSON and LoopMind's own
``arrangement.json``.

Times on the timeline are in bars at the project's time signature (floats where the source
places things between bar lines); note times inside a clip are in beats (quarter notes) from
the clip's start. Velocities are 0..1, keys are MIDI note numbers (60 = middle C), pans are
-1 (left) .. 1 (right). ``to_dict`` gives the ``loopmind.project/1`` document that
``loopmind import --json`` prints and that the arranger and mixer trainers read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

FORMAT = "loopmind.project/1"
KINDS = ("flp", "mmp", "mmpz", "json", "loopmind")
TRACK_KINDS = ("sample", "instrument", "audio", "automation")
MAX_TRACKS = 2048     # more tracks than any song has; bounds per-track work on hostile files
ROLES = ("kick", "snare", "hihat", "cymbal", "tom", "clap", "perc", "bass", "keys", "pad", "lead",
         "strings", "guitar", "vocal", "fx", "drumloop")


def _num(x: float | None, digits: int = 4) -> float | None:
    """A float rounded for the document (None and non-finite values become None)."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    r = round(x, digits)
    return int(r) if r == int(r) and abs(r) < 1e15 else r


@dataclass
class Note:
    """One note of a pattern or clip.

    Attributes:
        start_beat: quarter notes from the start of the clip (or pattern).
        length: quarter notes the note lasts (a drum hit without a length gets 1/4 beat).
        key: MIDI note number.
        velocity: 0..1.
        pan: -1..1 when the source has a per-note pan, else None.
    """

    start_beat: float
    length: float
    key: int
    velocity: float = 0.8
    pan: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"start_beat": _num(self.start_beat), "length": _num(self.length),
             "key": int(self.key), "velocity": _num(self.velocity, 3)}
        if self.pan is not None:
            d["pan"] = _num(self.pan, 3)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Note":
        return cls(start_beat=float(d.get("start_beat", 0.0)), length=float(d.get("length", 0.25)),
                   key=int(d.get("key", 60)), velocity=float(d.get("velocity", 0.8)),
                   pan=None if d.get("pan") is None else float(d["pan"]))


@dataclass
class Mixer:
    """A track's mixer settings as far as the source tells them.

    Attributes:
        volume: the source's own fader/knob value scaled to 0..1 of its range (FL: /12800,
            LMMS: /200), None when unknown.
        gain_db: the gain that fader means (channel and mixer insert combined), None if unknown.
        pan: -1..1.
        eq: bands as ``{"type": "peak|lowshelf|highshelf|highpass|lowpass", "freq_hz",
            "gain_db", "q"}`` (gain/q None where the type has none), only when the source has an
            EQ on the track or its insert.
        reverb_send: 0..1 to a reverb (a send to a bus with a reverb on it, or an insert
            reverb's wet amount), None when no reverb is known.
        insert: the mixer insert / FX channel the track is routed to (None: master or unknown).
        effects: names of the effects on the track and its insert, in chain order.
        muted: the track or its insert is muted.
    """

    volume: float | None = None
    gain_db: float | None = None
    pan: float = 0.0
    eq: list[dict[str, Any]] | None = None
    reverb_send: float | None = None
    insert: int | None = None
    effects: list[str] = field(default_factory=list)
    muted: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"volume": _num(self.volume), "gain_db": _num(self.gain_db, 2),
                             "pan": _num(self.pan, 3), "insert": self.insert,
                             "muted": self.muted, "effects": list(self.effects)}
        if self.eq is not None:
            d["eq"] = [{k: (_num(v, 3) if isinstance(v, float) else v) for k, v in b.items()}
                       for b in self.eq]
        if self.reverb_send is not None:
            d["reverb_send"] = _num(self.reverb_send, 3)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Mixer":
        return cls(volume=d.get("volume"), gain_db=d.get("gain_db"), pan=float(d.get("pan") or 0),
                   eq=d.get("eq"), reverb_send=d.get("reverb_send"), insert=d.get("insert"),
                   effects=list(d.get("effects") or []), muted=bool(d.get("muted", False)))


@dataclass
class Clip:
    """One placement on a track's timeline.

    Attributes:
        start_bar, bars: where it sits on the timeline (bars, float allowed).
        pattern: the pattern it plays (its id or name), for note clips.
        sample: the audio file it plays, for sample/audio clips.
        notes: the notes that sound inside the clip (start_beat from the clip start; a looping
            pattern is unrolled over the clip); None when the source has no notes for it
            (an audio loop), [] for an empty pattern.
        muted: the clip is muted in the source.
        offset_bars: how far into the pattern/sample the clip starts (FL slip/trim).
    """

    start_bar: float
    bars: float
    pattern: str | None = None
    sample: str | None = None
    notes: list[Note] | None = None
    muted: bool = False
    offset_bars: float = 0.0

    @property
    def end_bar(self) -> float:
        return self.start_bar + self.bars

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"start_bar": _num(self.start_bar), "bars": _num(self.bars)}
        if self.pattern is not None:
            d["pattern"] = self.pattern
        if self.sample is not None:
            d["sample"] = self.sample
        if self.notes is not None:
            d["notes"] = [n.to_dict() for n in self.notes]
        if self.muted:
            d["muted"] = True
        if self.offset_bars:
            d["offset_bars"] = _num(self.offset_bars)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Clip":
        notes = d.get("notes")
        return cls(start_bar=float(d["start_bar"]), bars=float(d["bars"]),
                   pattern=d.get("pattern"), sample=d.get("sample"),
                   notes=None if notes is None else [Note.from_dict(n) for n in notes],
                   muted=bool(d.get("muted", False)), offset_bars=float(d.get("offset_bars", 0)))


@dataclass
class Track:
    """A channel / track of the project.

    Attributes:
        name: as the source names it.
        role: one of ``ROLES`` or None when nothing tells.
        role_source: what the role was read from ("name", "sample", "plugin", "notes",
            "source" when the file states it), None without a role.
        kind: "sample" (plays a sample file), "instrument" (a synth/plugin playing notes),
            "audio" (audio clips on the timeline), "automation".
        sample_path: the sample a sampler channel plays (as written in the project).
        plugin: the instrument plugin's name.
        mixer: its mixer settings.
        clips: its placements on the timeline.
        muted: the track is muted in the source.
    """

    name: str
    role: str | None = None
    kind: str = "instrument"
    sample_path: str | None = None
    plugin: str | None = None
    mixer: Mixer = field(default_factory=Mixer)
    clips: list[Clip] = field(default_factory=list)
    muted: bool = False
    role_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "role_source": self.role_source,
                "kind": self.kind, "sample_path": self.sample_path, "plugin": self.plugin,
                "muted": self.muted, "mixer": self.mixer.to_dict(),
                "clips": [c.to_dict() for c in self.clips]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Track":
        return cls(name=str(d.get("name", "")), role=d.get("role"),
                   kind=d.get("kind", "instrument"),
                   sample_path=d.get("sample_path"), plugin=d.get("plugin"),
                   mixer=Mixer.from_dict(d.get("mixer") or {}),
                   clips=[Clip.from_dict(c) for c in d.get("clips") or []],
                   muted=bool(d.get("muted", False)), role_source=d.get("role_source"))


@dataclass
class Section:
    """A stretch of the song: intro | verse | pre-chorus | hook | drop | break | bridge | outro
    (or the source's own label).

    Attributes:
        name: canonical section word.
        start_bar, bars: the span on the timeline.
        roles: the roles that play in it (sorted).
        inferred: True when LoopMind derived the section from the tracks' activity rather than
            reading it from the source.
        label: the source's own text for it (a marker or section name), when different.
        energy: number of roles playing divided by the most in any section (0..1).
    """

    name: str
    start_bar: float
    bars: float
    roles: list[str] = field(default_factory=list)
    inferred: bool = False
    label: str | None = None
    energy: float | None = None

    @property
    def end_bar(self) -> float:
        return self.start_bar + self.bars

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "start_bar": _num(self.start_bar), "bars": _num(self.bars),
             "roles": list(self.roles), "inferred": self.inferred}
        if self.label is not None:
            d["label"] = self.label
        if self.energy is not None:
            d["energy"] = _num(self.energy, 3)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Section":
        return cls(name=str(d.get("name", "")), start_bar=float(d.get("start_bar", 0)),
                   bars=float(d.get("bars", 0)), roles=list(d.get("roles") or []),
                   inferred=bool(d.get("inferred", False)), label=d.get("label"),
                   energy=d.get("energy"))


@dataclass
class Project:
    """A whole imported project (see the module docstring for units)."""

    source: str
    kind: str
    name: str | None = None
    bpm: float | None = None
    time_signature: tuple[int, int] = (4, 4)
    genre: str | None = None
    mood: str | None = None
    ppq: int | None = None
    sections: list[Section] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)
    patterns: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    key: str | None = None
    creator: str | None = None

    @property
    def bars(self) -> float:
        ends = [s.end_bar for s in self.sections]
        ends += [c.end_bar for t in self.tracks for c in t.clips]
        return max(ends, default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "source": self.source, "kind": self.kind, "name": self.name,
                "creator": self.creator, "bpm": _num(self.bpm, 3),
                "time_signature": list(self.time_signature), "key": self.key,
                "genre": self.genre, "mood": self.mood, "ppq": self.ppq,
                "bars": _num(self.bars),
                "sections": [s.to_dict() for s in self.sections],
                "tracks": [t.to_dict() for t in self.tracks],
                "patterns": list(self.patterns), "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Project":
        ts = d.get("time_signature") or (4, 4)
        return cls(source=str(d.get("source", "")), kind=str(d.get("kind", "json")),
                   name=d.get("name"), bpm=d.get("bpm"), time_signature=(int(ts[0]), int(ts[1])),
                   genre=d.get("genre"), mood=d.get("mood"), ppq=d.get("ppq"),
                   sections=[Section.from_dict(s) for s in d.get("sections") or []],
                   tracks=[Track.from_dict(t) for t in d.get("tracks") or []],
                   patterns=list(d.get("patterns") or []), warnings=list(d.get("warnings") or []),
                   key=d.get("key"), creator=d.get("creator"))

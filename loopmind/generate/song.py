"""The song: what the arranger decides and what render, mix and export consume.

Plain dataclasses, serialized as the exported ``arrangement.json``. Times on the timeline are
in bars (4/4; a bar is ``240 / bpm`` seconds); times in source files are in seconds. A loop
clip plays ``source_start_s..source_end_s`` stretched so that it lasts exactly ``source_bars``
bars at the song's tempo, repeated to fill ``bars``. A one-shot clip triggers its sound on
16th-note ``steps`` (step 0 = the clip's first bar line).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ARRANGEMENT_FORMAT = "loopmind.arrangement/1"
STEPS_PER_BAR = 16


@dataclass
class MixSettings:
    """One track's mix: what the auto-mixer (or a trained mixer) decided.

    Attributes:
        gain_db: fader gain applied to the track.
        pan: -1 (left) .. 1 (right).
        highpass_hz: high-pass cut-off, None for none.
        lowpass_hz: low-pass cut-off, None for none.
        eq: peaking bands as (freq_hz, gain_db, q).
        reverb_send: 0..1 to the shared reverb bus.
        duck_under: name of the track this one is side-chained under (bass under kick).
        duck_db: how deep the ducking goes (positive dB of gain reduction).
        mute: the track is silent in the master (its stem is still written).
    """

    gain_db: float = 0.0
    pan: float = 0.0
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    eq: list[tuple[float, float, float]] = field(default_factory=list)
    reverb_send: float = 0.0
    duck_under: str | None = None
    duck_db: float = 0.0
    mute: bool = False


@dataclass
class MasterSettings:
    target_lufs: float = -14.0
    ceiling_dbtp: float = -1.0
    glue_ratio: float = 2.0
    glue_threshold_db: float = -18.0


@dataclass
class SliceEvent:
    """One hit of a generated part (interpretive and hybrid modes): a slice of a user's file
    played on the 16th grid, re-pitched, for ``length`` steps.

    Attributes:
        step: 16th step from the clip's first bar line (absolute over the clip).
        length: steps the note lasts (the slice is cut with a short fade there; a slice that
            is shorter than the note simply ends).
        source_path, source_start_s, source_end_s: the slice in the user's file (never
            modified).
        semitones: pitch shift applied to the slice (re-pitching a melodic slice to a new note,
            or the song's key shift).
        velocity: 0..1; the gain is ``velocity ** 1.5`` as for pattern steps.
        pitch: the MIDI note this event plays (melodic parts: the new note; drum parts: None,
            the exporter uses the role's General MIDI drum note).
        slice_id: a stable token naming the slice (``<file stem>#<index>``), written into the
            MIDI export so a producer can map notes back to slices.
        reverse: play the slice backwards.
        glide: semitones the note slides by at its end, into the next note (drill's sliding
            808s); 0: none. The bend takes the note's last ``GLIDE_STEPS`` steps (at most
            half the note) and leaves the slice's own cached audio as it is.
    """

    step: int
    length: int
    source_path: str
    source_start_s: float
    source_end_s: float
    semitones: float = 0.0
    velocity: float = 1.0
    pitch: int | None = None
    slice_id: str | None = None
    reverse: bool = False
    glide: float = 0.0


@dataclass
class Clip:
    """One placement of a sound on a track.

    Attributes:
        start_bar: first bar on the timeline (0-based, whole bars).
        bars: how many bars the clip occupies on the timeline.
        source_path: the audio file (never modified).
        source_start_s, source_end_s: the segment's offsets in that file.
        segment_id: the library segment, when it came from the library.
        source_bpm: the segment's tempo (None for a one-shot).
        source_key: the segment's key (None when unpitched).
        source_bars: bars the segment fills at the song's tempo (loops); None for a sound that
            plays once at ``stretch`` (a riser, an fx).
        stretch: playback speed factor, song_bpm / source_bpm (1.0 = unchanged; 2.0 = twice as
            fast); for a loop it is exactly what makes ``source_bars`` fill that many bars.
        semitones: pitch shift to the song's key.
        steps: for one-shots, (step, velocity 0..1) pairs on the 16th grid from start_bar,
            absolute over the whole clip (a 4-bar clip has steps 0..63; a one-bar pattern does
            not repeat by itself; steps past the clip's end are dropped).
        gain_db: clip gain before the track's mix.
        reverse: play the source backwards (risers, swells).
        fade_in_s, fade_out_s: edge fades (short by default, so no clicks).
        events: a generated part (interpretive/hybrid): slices triggered on the 16th grid
            (see ``SliceEvent``); the clip's own source fields then name its main source.
        texture: a processed sound (pads, risers, swells), e.g. ``{"kind": "granular",
            "seed": 3, ...}``: the source span is turned into ``bars`` bars of new audio by the
            named process (``loopmind.generate.interpret.textures``).
        generated: True for material that did not exist in the library (the MIDI export
            writes these parts note by note).
    """

    start_bar: int
    bars: int
    source_path: str
    source_start_s: float
    source_end_s: float
    segment_id: int | None = None
    source_bpm: float | None = None
    source_key: str | None = None
    source_bars: float | None = None
    stretch: float = 1.0
    semitones: int = 0
    steps: list[tuple[int, float]] | None = None
    gain_db: float = 0.0
    reverse: bool = False
    fade_in_s: float = 0.005
    fade_out_s: float = 0.01
    events: list[SliceEvent] | None = None
    texture: dict[str, Any] | None = None
    generated: bool = False

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.bars

    @property
    def is_pattern(self) -> bool:
        return self.steps is not None

    @property
    def is_sequence(self) -> bool:
        return self.events is not None

    @property
    def is_texture(self) -> bool:
        return self.texture is not None


@dataclass
class Track:
    """A mixer channel: one role, its clips and its mix. Names are unique within a song (they
    key the rendered stems)."""

    name: str
    role: str
    clips: list[Clip] = field(default_factory=list)
    mix: MixSettings = field(default_factory=MixSettings)
    color: str | None = None


@dataclass
class Section:
    name: str  # intro | verse | pre-chorus | hook | drop | break | bridge | outro
    start_bar: int
    bars: int
    roles: list[str] = field(default_factory=list)
    energy: float = 0.5  # 0..1

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.bars


@dataclass
class Song:
    """A whole arrangement."""

    bpm: float
    key: str | None
    sections: list[Section] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)
    time_signature: tuple[int, int] = (4, 4)
    sample_rate: int = 44100
    master: MasterSettings = field(default_factory=MasterSettings)
    seed: int | None = None
    prompt: str | None = None
    genre: str | None = None
    moods: list[str] = field(default_factory=list)
    mode: str = "direct"
    notes: list[str] = field(default_factory=list)  # what was missing and what was done instead
    # the groove of step-sequenced parts (one-shot patterns, generated parts): every odd 16th
    # step is late by this fraction of a 16th (the genre's; 0 is straight). Loops from the
    # library keep their own groove.
    swing: float = 0.0

    @property
    def bars(self) -> int:
        ends = [s.end_bar for s in self.sections] + [c.end_bar for t in self.tracks
                                                       for c in t.clips]
        return max(ends, default=0)

    @property
    def bar_s(self) -> float:
        return 60.0 / self.bpm * self.time_signature[0] * 4 / self.time_signature[1]

    @property
    def duration_s(self) -> float:
        return self.bars * self.bar_s

    def bar_to_sample(self, bar: float) -> int:
        """Sample index of a bar line (rounded once from the exact position, so clips placed on
        the same bar line agree to the sample and no error accumulates)."""
        return int(round(bar * self.bar_s * self.sample_rate))

    def swung_step(self, step: float) -> float:
        """Where the 16th step ``step`` plays, in 16ths: odd steps late by the song's swing."""
        s = float(step)
        if self.swing and s == int(s) and int(s) % 2 == 1:
            s += float(self.swing)
        return s

    def step_to_sample(self, bar: float, step: float) -> int:
        """Sample index of the 16th step ``step`` counted from the bar line ``bar``, with the
        song's swing on odd steps (rounded once, like ``bar_to_sample``)."""
        return self.bar_to_sample(bar + self.swung_step(step) / STEPS_PER_BAR)

    def track(self, name: str) -> Track | None:
        return next((t for t in self.tracks if t.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = ARRANGEMENT_FORMAT
        d["bars"] = self.bars
        d["duration_s"] = round(self.duration_s, 4)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Song":
        d = dict(d)
        d.pop("format", None)
        d.pop("bars", None)
        d.pop("duration_s", None)
        tracks = []
        for t in d.pop("tracks", []):
            t = dict(t)
            clips = []
            for c in t.pop("clips", []):
                c = dict(c)
                if c.get("steps") is not None:
                    c["steps"] = [(int(s), float(v)) for s, v in c["steps"]]
                if c.get("events") is not None:
                    c["events"] = [SliceEvent(**e) for e in c["events"]]
                clips.append(Clip(**c))
            mix = dict(t.pop("mix", {}))
            mix["eq"] = [tuple(b) for b in mix.get("eq", [])]
            tracks.append(Track(clips=clips, mix=MixSettings(**mix), **t))
        sections = [Section(**s) for s in d.pop("sections", [])]
        master = MasterSettings(**d.pop("master", {}))
        ts = tuple(d.pop("time_signature", (4, 4)))
        # keys this version does not know (an exporter's "files", a newer field) are skipped
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        return cls(sections=sections, tracks=tracks, master=master, time_signature=ts, **d)

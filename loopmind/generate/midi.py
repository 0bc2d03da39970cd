"""The arrangement as a MIDI file, for opening a LoopMind song in a DAW.

A type-1 file at 480 ticks per quarter note. The first track holds the tempo, time signature,
key signature and one marker per section. Then one track per song track, named after it:

* pattern clips become their steps: drum roles as General MIDI drum notes on channel 10, other
  one-shots at ``60 + semitones`` (a sampler with the sound on C3 = MIDI 60, as Ableton and most
  samplers name it, plays it at the song's pitch);
* loop clips become one note per clip, ``60 + semitones`` at velocity 100, spanning the clip,
  so the DAW user sees where each loop plays (texture clips too: one note per processed
  span).

Generated parts (sequence clips, hybrid and interpretive modes) get a MIDI track of their own
after their song track, ``<track> slices``, written note by note: each ``SliceEvent`` is a note
at its step, lasting its ``length``, with its velocity. The note is the event's ``pitch``
(melodic parts and drum hits the generator named), else the role's General MIDI drum note,
else a slot per distinct slice from ``SLICE_ROOT`` up (C1, the first pad of a sliced
instrument such as Simpler's or Slicex's slice mode). Parts whose notes are all General MIDI
drums play on channel 10. Every note
carries a lyric naming its slice (``slice_id``), and the track starts with one text event per
slice (``note 38 = kick_01.wav#12 1.234-1.456 s``) so a producer can map notes to slices; the
slice files themselves are in the export's ``slices/`` folder. A note that slides into the
next (``SliceEvent.glide``, drill's 808s) gets a pitch-wheel ramp over the same last two 16ths
the audio bends in, back to centre when it ends; such a track first sets its channel's
pitch-bend range to ``BEND_RANGE`` semitones (RPN 0).
"""

from __future__ import annotations

import os
from pathlib import Path

from loopmind.fileio import atomic_write
from loopmind.generate.song import STEPS_PER_BAR, Song

PPQ = 480
ROOT_NOTE = 60  # "C3" in Ableton's and FL's naming of middle C's neighbour octave
LOOP_VELOCITY = 100
DRUM_CHANNEL = 9  # channel 10, counted from 1
GM_DRUM_NOTES = {"kick": 36, "snare": 38, "clap": 39, "hihat": 42, "cymbal": 49, "tom": 45,
                 "perc": 56}
SLICE_ROOT = 36  # C1: the first slot of a sliced instrument
DRUM_PART_ROLES = frozenset(GM_DRUM_NOTES) | {"drumloop"}


def _bar_ticks(song: Song) -> int:
    num, den = song.time_signature
    return PPQ * 4 * num // den


def mido_key(key: str | None) -> str | None:
    """A key name as mido's key_signature wants it ("A minor" -> "Am"), or None."""
    from loopmind.library.analysis.key import parse_key

    canonical = parse_key(key) if key else None
    if canonical is None:
        return None
    tonic, mode = canonical.split()
    return tonic + ("m" if mode == "minor" else "")


def build_midi(song: Song):
    """The song as a ``mido.MidiFile`` (type 1, ``PPQ`` ticks per beat)."""
    import mido

    bar = _bar_ticks(song)
    step = bar // STEPS_PER_BAR
    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)

    conductor: list[tuple[int, int, object]] = [
        (0, 0, mido.MetaMessage("track_name", name=_text(song.prompt or "LoopMind song"),
                                time=0)),
        (0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(song.bpm), time=0)),
        (0, 0, mido.MetaMessage("time_signature", numerator=song.time_signature[0],
                                denominator=song.time_signature[1], time=0)),
    ]
    key = mido_key(song.key)
    if key is not None:
        conductor.append((0, 0, mido.MetaMessage("key_signature", key=key, time=0)))
    for section in song.sections:
        conductor.append((section.start_bar * bar, 1,
                          mido.MetaMessage("marker", text=_text(section.name), time=0)))
    mid.tracks.append(_to_track(conductor))

    melodic = iter([c for c in range(16) if c != DRUM_CHANNEL] * 8)
    for track in song.tracks:
        drums = track.role in GM_DRUM_NOTES
        channel = DRUM_CHANNEL if drums else next(melodic)
        events: list[tuple[int, int, object]] = [
            (0, 0, mido.MetaMessage("track_name", name=_text(track.name), time=0))]
        for clip in track.clips:
            start = clip.start_bar * bar
            if clip.is_sequence:
                continue  # note by note on the track's slices track
            if clip.is_pattern:
                note = GM_DRUM_NOTES[track.role] if drums else _clamp(ROOT_NOTE + clip.semitones)
                for s, v in sorted(clip.steps or []):
                    if not 0 <= s < clip.bars * STEPS_PER_BAR or v <= 0:
                        continue
                    on = start + _step_tick(song, int(s), step)
                    _add_note(events, on, on + step, channel, note, _velocity(v))
            else:
                _add_note(events, start, start + clip.bars * bar, channel,
                          _clamp(ROOT_NOTE + clip.semitones), LOOP_VELOCITY)
        mid.tracks.append(_to_track(events))
        if any(c.is_sequence and c.events for c in track.clips):
            # channel 10 when every note is a General MIDI drum; a drum loop's slices without
            # one are slots of a sliced instrument, on a melodic channel
            drum_part = track.role in GM_DRUM_NOTES or (
                track.role in DRUM_PART_ROLES
                and all(e.pitch is not None for c in track.clips for e in c.events or []))
            mid.tracks.append(_to_track(_slice_track(
                track, song, bar=bar, step=step, channel=DRUM_CHANNEL if drum_part
                else next(melodic))))
    return mid


def slice_name(ev) -> str:
    """How an event's slice is named in the MIDI file and the export's ``slices/`` folder:
    its ``slice_id``, else ``<file stem>@<start>-<end>``."""
    if ev.slice_id:
        return ev.slice_id
    return f"{Path(ev.source_path).stem}@{ev.source_start_s:.3f}-{ev.source_end_s:.3f}"


def slice_notes(track) -> dict[str, int]:
    """Slot notes for the distinct slices of a track's events that carry no pitch (in order of
    first use), for a sliced instrument."""
    slots: dict[str, int] = {}
    drums = track.role in GM_DRUM_NOTES  # their role's drum note
    for clip in track.clips:
        for ev in sorted(clip.events or [], key=lambda e: e.step):
            if ev.pitch is None and not drums:
                slots.setdefault(slice_name(ev), _clamp(SLICE_ROOT + len(slots)))
    return slots


def _slice_track(track, song: Song, *, bar: int, step: int, channel: int):
    """A generated part as notes (see the module docstring)."""
    import mido

    slots = slice_notes(track)
    events: list[tuple[int, int, object]] = [
        (0, 0, mido.MetaMessage("track_name", name=_text(f"{track.name} slices"), time=0))]
    legend: dict[str, str] = {}
    if any(ev.glide for c in track.clips if c.is_sequence for ev in c.events or []):
        events += [(0, 0, msg) for msg in _bend_range(channel)]
    for clip in track.clips:
        if not clip.is_sequence:
            continue
        start = clip.start_bar * bar
        limit = clip.bars * STEPS_PER_BAR
        for ev in sorted(clip.events or [], key=lambda e: (e.step, slice_name(e))):
            if not 0 <= ev.step < limit or ev.length <= 0 or ev.velocity <= 0:
                continue
            name = slice_name(ev)
            if ev.pitch is not None:
                note = _clamp(ev.pitch)
            elif track.role in GM_DRUM_NOTES:
                note = GM_DRUM_NOTES[track.role]
            else:
                note = slots[name]
            if name not in legend:
                legend[name] = (f"note {note} = {name}: {Path(ev.source_path).name} "
                                f"{ev.source_start_s:.3f}-{ev.source_end_s:.3f} s"
                                + (f" {ev.semitones:+g} st" if ev.semitones else "")
                                + (" reversed" if ev.reverse else ""))
            on = start + _step_tick(song, int(ev.step), step)
            events.append((on, 1, mido.MetaMessage("lyrics", text=_text(name), time=0)))
            off = start + _step_tick(song, int(ev.step) + int(ev.length), step)
            _add_note(events, on, off, channel, note, _velocity(ev.velocity))
            if ev.glide:
                from loopmind.generate.render import GLIDE_STEPS

                bend = min((off - on) // 2, GLIDE_STEPS * step)
                events += _glide_bends(on, off, bend, float(ev.glide), channel)
    for i, text in enumerate(legend.values()):
        events.insert(1 + i, (0, 0, mido.MetaMessage("text", text=_text(text), time=0)))
    return events


BEND_RANGE = 12  # semitones of a full pitch-wheel throw on a track with glides
BEND_POINTS = 8  # pitch-wheel messages per slide


def _bend_range(channel: int) -> list:
    """RPN 0 (pitch-bend sensitivity) to ``BEND_RANGE`` semitones, then RPN null."""
    import mido

    return [mido.Message("control_change", channel=channel, control=c, value=v, time=0)
            for c, v in ((101, 0), (100, 0), (6, BEND_RANGE), (38, 0), (101, 127),
                         (100, 127))]


def _glide_bends(on: int, off: int, bend_ticks: int, semitones: float, channel: int) -> list:
    """(tick, priority, message) pitch-wheel steps from centre to ``semitones`` over the last
    ``bend_ticks`` before ``off``, and back to centre at ``off`` (after the note-off)."""
    import mido

    start = max(on, off - bend_ticks)
    full = max(-1.0, min(1.0, semitones / BEND_RANGE))
    out = []
    for i in range(BEND_POINTS):
        frac = (i + 1) / BEND_POINTS
        tick = start + int(round((off - start) * i / BEND_POINTS))
        out.append((tick, 1, mido.Message("pitchwheel", channel=channel,
                                          pitch=int(round(full * frac * 8191)), time=0)))
    out.append((off, 0, mido.Message("pitchwheel", channel=channel, pitch=0, time=0)))
    return out


def _step_tick(song: Song, s: int, step: int) -> int:
    """Ticks from a clip's start to its 16th step ``s`` (``step`` ticks a 16th), odd steps late
    by the song's swing as the audio plays them (``Song.swung_step``)."""
    return int(round(song.swung_step(s) * step))


def _velocity(v: float) -> int:
    """A 0..1 velocity as MIDI's 1..127."""
    return max(1, min(127, int(round(v * 127))))


def _add_note(events: list[tuple[int, int, object]], on: int, off: int, channel: int,
              note: int, velocity: int) -> None:
    """A note-on and its note-off; note-offs sort before note-ons at the same tick (priority
    0 < 2), so a repeated note is never cut by its predecessor's off."""
    import mido

    events.append((on, 2, mido.Message("note_on", channel=channel, note=note,
                                       velocity=velocity, time=0)))
    events.append((off, 0, mido.Message("note_off", channel=channel, note=note, velocity=0,
                                        time=0)))


def _text(text: str) -> str:
    """Text a MIDI meta event can hold: mido writes Latin-1, so other characters become '?'."""
    return text.encode("latin-1", errors="replace").decode("latin-1")


def _clamp(note: int) -> int:
    return max(0, min(127, int(note)))


def _to_track(events: list[tuple[int, int, object]]):
    import mido

    track = mido.MidiTrack()
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def write_midi(song: Song, path: os.PathLike | str) -> Path:
    """Write the song's MIDI file atomically (a temporary file renamed into place).

    Returns:
        the path written.
    """
    path = Path(path)
    mid = build_midi(song)
    atomic_write(path, lambda fh: mid.save(file=fh))
    return path

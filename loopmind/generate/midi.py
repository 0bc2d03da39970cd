"""The arrangement as a MIDI file, for opening a LoopMind song in a DAW.

A type-1 file at 480 ticks per quarter note. The first track holds the tempo, time signature,
key signature and one marker per section. Then one track per song track, named after it:

* pattern clips become their steps: drum roles as General MIDI drum notes on channel 10, other
  one-shots at ``60 + semitones`` (a sampler with the sound on C3 = MIDI 60, as Ableton and most
  samplers name it, plays it at the song's pitch);
* loop clips become one note per clip, ``60 + semitones`` at velocity 100, spanning the clip,
  so the DAW user sees where each loop plays.
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
            if clip.is_pattern:
                note = GM_DRUM_NOTES[track.role] if drums else _clamp(ROOT_NOTE + clip.semitones)
                for s, v in sorted(clip.steps or []):
                    if not 0 <= s < clip.bars * STEPS_PER_BAR or v <= 0:
                        continue
                    velocity = max(1, min(127, int(round(v * 127))))
                    on = start + int(s) * step
                    # note-offs sort before note-ons at the same tick (priority 0 < 2)
                    events.append((on, 2, mido.Message("note_on", channel=channel, note=note,
                                                       velocity=velocity, time=0)))
                    events.append((on + step, 0, mido.Message("note_off", channel=channel,
                                                              note=note, velocity=0, time=0)))
            else:
                note = _clamp(ROOT_NOTE + clip.semitones)
                events.append((start, 2, mido.Message("note_on", channel=channel, note=note,
                                                      velocity=LOOP_VELOCITY, time=0)))
                events.append((start + clip.bars * bar, 0, mido.Message(
                    "note_off", channel=channel, note=note, velocity=0, time=0)))
        mid.tracks.append(_to_track(events))
    return mid


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

"""Editing a song by hand: the channel rack's and the playlist's operations on a ``Song``.

Plain functions over the song dataclasses (no Textual, no audio): adding a sound as a channel or
a clip, the 16-step pattern of a one-shot channel, and moving the song to a new tempo or key
(the clips' stretch and pitch shift follow, as the arranger would have set them).

A one-shot channel has one 16-step pattern that plays in every bar of its pattern clips, as in
a drum machine: toggling step 5 toggles step 5 of every bar. A generated song's drum parts vary
per section; the rack shows the first bar of the first clip, and an edit makes every bar of the
channel follow it.
"""

from __future__ import annotations

import math
import os
from typing import Any

from loopmind.generate.song import STEPS_PER_BAR, Clip, Song, Track

DEFAULT_BPM = 120.0
DEFAULT_PATTERN_BARS = 4
DEFAULT_VELOCITY = 0.9
_PALETTE = ("#ff8c1a", "#a855f7", "#3b82f6", "#22d3ee", "#f472b6", "#facc15", "#4ade80")
# where a one-shot channel starts: one hit per beat for kicks, a backbeat, off-beat hats ...
_STARTER_PATTERNS = {"kick": (0, 4, 8, 12), "snare": (4, 12), "clap": (4, 12),
                      "hihat": (2, 6, 10, 14), "perc": (3, 11), "cymbal": (0,), "tom": (14,)}


def new_song(*, bpm: float = DEFAULT_BPM, key: str | None = None) -> Song:
    """An empty song (no tracks) at ``bpm``."""
    return Song(bpm=float(bpm), key=key)


def track_color(role: str | None, index: int) -> str:
    from loopmind.generate.arrange import TRACK_COLORS

    return TRACK_COLORS.get(role or "", _PALETTE[index % len(_PALETTE)])


def unique_name(song: Song, base: str) -> str:
    names = {t.name.lower() for t in song.tracks}
    base = base.strip() or "sound"
    if base.lower() not in names:
        return base
    n = 2
    while f"{base} {n}".lower() in names:
        n += 1
    return f"{base} {n}"


def is_pattern_track(track: Track) -> bool:
    """A step channel: its clips trigger sounds on 16th steps (a one-shot's pattern, or a
    generated part's slice events)."""
    return any(c.is_pattern or c.is_sequence for c in track.clips)


def _loop_bars(item: Any) -> int | None:
    """Whole bars a loop spans at its own tempo (None when unclear)."""
    if getattr(item, "kind", None) != "loop" or not getattr(item, "bpm", None):
        return None
    if getattr(item, "bars", None):
        return max(1, int(round(item.bars)))
    n = (item.end_s - item.start_s) * item.bpm / 240.0
    return int(round(n)) if round(n) >= 1 and abs(n - round(n)) < 0.05 else None


def _pool_item(item: Any):
    from loopmind.generate.pool import PoolItem

    return PoolItem(id=getattr(item, "id", 0), path=item.path, start_s=item.start_s,
                    end_s=item.end_s, kind=item.kind, role=item.role, bpm=item.bpm,
                    bpm_confidence=1.0, key=item.key, bars=getattr(item, "bars", None),
                    lufs=None)


def _semitones(role: str | None, source_key: str | None, song_key: str | None) -> int:
    from loopmind.generate.arrange import UNPITCHED, semitones_to

    if role in UNPITCHED:
        return 0
    s = semitones_to(source_key, song_key)
    return 0 if s is None else int(s)


def default_steps(role: str | None, genre: str | None = None) -> list[tuple[int, float]]:
    """One bar of a sensible starting pattern for a one-shot of this role: a drum machine's
    basics for drums (four on the floor, a backbeat, off-beat hats), else the genre's pattern
    for the role, else one hit on the downbeat."""
    if role in _STARTER_PATTERNS:
        return [(s, DEFAULT_VELOCITY) for s in _STARTER_PATTERNS[role]]
    from loopmind.generate import styles

    g = styles.find_genre(genre or "") or styles.find_genre("house")
    steps = styles.pattern_steps(g, role) if g is not None and role else []
    if steps:
        return [(int(s), float(v)) for s, v in steps]
    return [(0, DEFAULT_VELOCITY)]


def _loop_clip(song: Song, item: Any, start_bar: int, bars: int | None) -> Clip:
    own_bars = _loop_bars(item)
    if own_bars is None:
        # no reliable tempo: the sound plays once, unstretched, from its bar line
        n = max(1, math.ceil((item.end_s - item.start_s) / song.bar_s - 1e-6))
        return Clip(start_bar=start_bar, bars=bars or n, source_path=item.path,
                    source_start_s=item.start_s, source_end_s=item.end_s,
                    segment_id=getattr(item, "id", None), source_bpm=item.bpm,
                    source_key=item.key, source_bars=None, stretch=1.0,
                    semitones=_semitones(item.role, item.key, song.key))
    from loopmind.generate.arrange import _fit

    fit = _fit(_pool_item(item), song.bpm, song.key)
    if fit is not None:
        stretch, semis, src_bars = fit
    else:
        # out of the stretcher's comfortable range: stretch anyway, the user asked for it
        src_bars = own_bars
        stretch = song.bpm / item.bpm
        semis = _semitones(item.role, item.key, song.key)
    return Clip(start_bar=start_bar, bars=bars or max(1, int(math.ceil(src_bars))),
                source_path=item.path, source_start_s=item.start_s, source_end_s=item.end_s,
                segment_id=getattr(item, "id", None), source_bpm=item.bpm, source_key=item.key,
                source_bars=float(src_bars), stretch=round(stretch, 6), semitones=int(semis))


def _pattern_clip(song: Song, item: Any, start_bar: int, bars: int,
                  steps: list[tuple[int, float]]) -> Clip:
    return Clip(start_bar=start_bar, bars=bars, source_path=item.path,
                source_start_s=item.start_s, source_end_s=item.end_s,
                segment_id=getattr(item, "id", None), source_key=item.key,
                steps=[(b * STEPS_PER_BAR + s, v) for b in range(bars) for s, v in steps])


def add_sound(song: Song, item: Any, *, start_bar: int | None = None,
              track: str | None = None) -> Track:
    """Add a library sound (a search ``Hit`` or anything with its fields) to the song.

    With no ``start_bar`` (the rack) the sound becomes a new channel that plays from bar 1 for
    the length of the song (4 bars for an empty song). With a ``start_bar`` (a drop on the
    playlist) it becomes one clip there, on ``track`` when that channel holds the same kind of
    sound, else on a new channel. A loop is stretched to the song's tempo and shifted to its
    key; a one-shot gets a starting pattern for its role. The first loop of an empty song sets
    the song's tempo and key.

    Returns:
        the track the sound went to.
    """
    oneshot = item.kind != "loop"
    if not song.tracks and not oneshot and _loop_bars(item) and item.bpm:
        song.bpm = float(round(item.bpm, 3))
    if not song.tracks and song.key is None and item.key and item.role not in (
            "drumloop", "fx"):
        song.key = item.key
    target = song.track(track) if track else None
    if target is not None and is_pattern_track(target) != oneshot:
        target = None
    at = 0 if start_bar is None else max(0, int(start_bar))
    if oneshot:
        if target is not None and start_bar is not None:
            bars = 1
            steps = _first_bar_steps(target) or default_steps(item.role, song.genre)
        else:
            bars = DEFAULT_PATTERN_BARS if start_bar is not None else max(
                song.bars, DEFAULT_PATTERN_BARS)
            steps = default_steps(item.role, song.genre)
        clip = _pattern_clip(song, item, at, bars, steps)
    else:
        clip = _loop_clip(song, item, at, None)
        if start_bar is None and clip.source_bars:
            # a new channel loops through the song (4 bars at least), in whole repeats
            fill = max(song.bars, DEFAULT_PATTERN_BARS)
            unit = max(1, int(math.ceil(clip.source_bars)))
            clip.bars = max(clip.bars, int(math.ceil(fill / unit)) * unit)
    if target is None:
        base = item.role or os.path.splitext(os.path.basename(item.path))[0][:16]
        target = Track(name=unique_name(song, base), role=item.role or "unknown",
                       color=track_color(item.role, len(song.tracks)))
        song.tracks.append(target)
    target.clips.append(clip)
    target.clips.sort(key=lambda c: c.start_bar)
    return target


def remove_clip(song: Song, track: str, index: int) -> bool:
    """Remove a clip; a channel left without clips goes too. True when something went."""
    t = song.track(track)
    if t is None or not 0 <= index < len(t.clips):
        return False
    del t.clips[index]
    if not t.clips:
        song.tracks.remove(t)
    return True


# -- the 16-step pattern ----------------------------------------------------------------------

def _first_bar_steps(track: Track) -> list[tuple[int, float]]:
    clip = next((c for c in track.clips if c.is_pattern or c.is_sequence), None)
    if clip is None:
        return []
    if clip.is_sequence:
        return [(int(e.step), float(e.velocity)) for e in clip.events or []
                if 0 <= int(e.step) < STEPS_PER_BAR]
    return [(int(s), float(v)) for s, v in clip.steps or [] if 0 <= int(s) < STEPS_PER_BAR]


def pattern_row(track: Track) -> list[bool]:
    """The channel's 16 steps (the first bar of its first pattern clip)."""
    on = {s for s, v in _first_bar_steps(track) if v > 0}
    return [i in on for i in range(STEPS_PER_BAR)]


def toggle_step(track: Track, step: int) -> bool | None:
    """Switch one of the 16 steps in every bar of every pattern clip of the channel.

    Returns:
        the step's new state, or None for a channel without a pattern (a loop).
    """
    if not 0 <= step < STEPS_PER_BAR or not is_pattern_track(track):
        return None
    on = not pattern_row(track)[step]
    for clip in track.clips:
        if clip.is_sequence:
            _toggle_event(clip, step, on)
            continue
        if not clip.is_pattern:
            continue
        velocities = [v for _, v in clip.steps or [] if v > 0]
        velocity = max(velocities) if velocities else DEFAULT_VELOCITY
        by_step = {int(s): float(v) for s, v in clip.steps or []}
        for bar in range(clip.bars):
            s = bar * STEPS_PER_BAR + step
            if on:
                by_step[s] = velocity
            else:
                by_step.pop(s, None)
        clip.steps = sorted(by_step.items())
    return on


def _toggle_event(clip: Clip, step: int, on: bool) -> None:
    """A generated part's step in every bar: switched off, its events go; switched on, each
    bar gets a copy of the bar's nearest event (same slice, note and velocity), one step long."""
    from dataclasses import replace

    events = list(clip.events or [])
    for bar in range(clip.bars):
        s = bar * STEPS_PER_BAR + step
        if not on:
            events = [e for e in events if e.step != s]
            continue
        if any(e.step == s for e in events):
            continue
        near = sorted(events, key=lambda e: (abs(e.step - s), e.step))
        if near:
            events.append(replace(near[0], step=s, length=1))
    clip.events = sorted(events, key=lambda e: e.step)


# -- tempo and key ----------------------------------------------------------------------------

def set_tempo(song: Song, bpm: float) -> None:
    """Move the song to ``bpm``: every loop still fills the same bars (its stretch follows)."""
    if not 20.0 <= bpm <= 400.0:
        raise ValueError(f"tempo {bpm:g} is out of range (20-400)")
    song.bpm = float(bpm)
    for t in song.tracks:
        for c in t.clips:
            if not c.is_pattern and c.source_bars:
                c.stretch = round((c.source_end_s - c.source_start_s) /
                                  (c.source_bars * song.bar_s), 6)


def set_key(song: Song, key: str | None) -> None:
    """Move the song to ``key`` (None: no key; nothing is shifted)."""
    from loopmind.generate.arrange import UNPITCHED, semitones_to

    old = song.key
    song.key = key
    move = semitones_to(old, key) if old and key else None
    for t in song.tracks:
        for c in t.clips:
            if c.is_sequence:
                # a generated part already plays notes of the old key: move every note
                if move and t.role not in UNPITCHED:
                    for e in c.events or []:
                        e.semitones += move
                        if e.pitch is not None:
                            e.pitch = int(e.pitch) + int(move)
                continue
            c.semitones = _semitones(t.role, c.source_key, key) if key else 0


def clip_label(clip: Clip) -> str:
    """A short name for a clip: its source file's name without the extension."""
    return os.path.splitext(os.path.basename(os.fsdecode(clip.source_path)))[0]


def track_sound(track: Track):
    """The sound a channel plays (its first clip's source), shaped like a search hit for the
    auditioner: path, start_s, end_s, kind, role, bpm, key, bars, id."""
    from types import SimpleNamespace

    if not track.clips:
        return None
    c = track.clips[0]
    if c.is_sequence and c.events:
        e = c.events[0]
        return SimpleNamespace(id=None, path=e.source_path, start_s=e.source_start_s,
                               end_s=e.source_end_s, kind="oneshot", role=track.role,
                               bpm=None, key=None, bars=None,
                               duration_s=e.source_end_s - e.source_start_s, segment=0,
                               tags=[])
    kind = "oneshot" if c.is_pattern else "loop"
    bars = None
    if kind == "loop" and c.source_bpm:
        bars = round((c.source_end_s - c.source_start_s) * c.source_bpm / 240.0, 3)
    return SimpleNamespace(id=c.segment_id, path=c.source_path, start_s=c.source_start_s,
                           end_s=c.source_end_s, kind=kind, role=track.role,
                           bpm=c.source_bpm, key=c.source_key, bars=bars,
                           duration_s=c.source_end_s - c.source_start_s, segment=0, tags=[])

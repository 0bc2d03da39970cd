"""The song being made in the studio, and what playing and exporting it need.

``SongSession`` holds the ``Song`` the panes show and edit, the rendered audio of each track
for the transport, and the channel state that is not part of the song (solo, the master
fader). Every edit says which tracks it made stale; ``take_render`` hands a worker a copy of
the song and the names to render, and ``apply_render`` keeps the result only if no newer edit
of those tracks happened meanwhile. ``render_stems`` and ``export`` run in thread workers and
call the same render, mix and export functions as ``loopmind generate``.

What the transport plays is the export's mix (``playback_mix``): each track's post-fader stem
(EQ, fader, ducking, pan) and the reverb return, all multiplied by the master chain's gain
curve, so with every fader where the mix left it the live sum is the exported master. Moving
a fader then changes the level relative to the mix; the master gain curve stays the one the
mix computed (a frozen master, not a live compressor). Until a track has been mixed it plays
raw at its fader.

No Textual here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopmind.app import songedit
from loopmind.app.levels import clamp_db
from loopmind.errors import LoopMindError
from loopmind.generate.song import Song, Track

if TYPE_CHECKING:  # pragma: no cover - numpy is imported where audio is handled
    import numpy as np


@dataclass
class RenderJob:
    """A copy of the song and the tracks to render (None: all; empty: none, only mix), with
    the rendered audio of the other tracks for the mix."""

    version: int
    song: Song
    names: set[str] | None
    raw: dict[str, "np.ndarray"] = field(default_factory=dict)


@dataclass
class PlaybackMix:
    """The song mixed for the transport (see the module's docstring).

    Attributes:
        stems: track name -> post-fader stem times the master gain, float32 (2, n).
        returns: return name ("reverb") -> its audio times the master gain.
        gains_db: each track's fader when it was mixed (live faders play relative to it).
    """

    stems: dict[str, "np.ndarray"]
    returns: dict[str, "np.ndarray"]
    gains_db: dict[str, float]


@dataclass
class SongSession:
    song: Song = field(default_factory=songedit.new_song)
    stems: dict[str, "np.ndarray"] = field(default_factory=dict)
    solo: set[str] = field(default_factory=set)
    master_gain_db: float = 0.0
    auto_mix: bool = True
    version: int = 0
    played: PlaybackMix | None = None
    _dirty: set[str] = field(default_factory=set)
    _all_dirty: bool = False
    _remix: bool = False
    _edited_at: dict[str, int] = field(default_factory=dict)

    # -- edits ---------------------------------------------------------------------------------

    def _touch(self, names: set[str] | None) -> None:
        self.version += 1
        self._remix = True  # every edit changes the mix
        if names is None:
            self._all_dirty = True
            for t in self.song.tracks:
                self._edited_at[t.name] = self.version
        else:
            self._dirty |= names
            for n in names:
                self._edited_at[n] = self.version

    def load(self, song: Song, stems: dict[str, "np.ndarray"] | None = None) -> None:
        """Replace the song (a generated one comes with its rendered tracks)."""
        self.song = song
        self.solo.clear()
        self.stems = dict(stems or {})
        self.played = None
        self._remix = False
        self.version += 1
        self._dirty.clear()
        self._edited_at = {t.name: self.version for t in song.tracks}
        self._all_dirty = stems is None and bool(song.tracks)

    def add_sound(self, item: Any, *, start_bar: int | None = None,
                  track: str | None = None) -> Track:
        bars_before = self.song.bars
        bpm_before, key_before = self.song.bpm, self.song.key
        t = songedit.add_sound(self.song, item, start_bar=start_bar, track=track)
        if (self.song.bars, self.song.bpm, self.song.key) != (bars_before, bpm_before, key_before):
            self._touch(None)  # every stem must have the song's new length, tempo or key
        else:
            self._touch({t.name})
        return t

    def remove_clip(self, track: str, index: int) -> bool:
        bars_before = self.song.bars
        if not songedit.remove_clip(self.song, track, index):
            return False
        if self.song.track(track) is None:
            self.stems.pop(track, None)
            self.solo.discard(track)
        self._touch(None if self.song.bars != bars_before else
                    ({track} if self.song.track(track) else set()))
        return True

    def toggle_step(self, track: str, step: int) -> bool | None:
        t = self.song.track(track)
        if t is None:
            return None
        on = songedit.toggle_step(t, step)
        if on is not None:
            self._touch({track})
        return on

    def set_tempo(self, bpm: float) -> None:
        songedit.set_tempo(self.song, bpm)
        self._touch(None)

    def set_key(self, key: str | None) -> None:
        songedit.set_key(self.song, key)
        self._touch(None)

    # -- channels --------------------------------------------------------------------------

    def set_mute(self, track: str, on: bool) -> None:
        t = self.song.track(track)
        if t is not None:
            t.mix.mute = bool(on)

    def set_solo(self, track: str, on: bool) -> None:
        (self.solo.add if on else self.solo.discard)(track)

    def set_gain(self, track: str, gain_db: float) -> float:
        t = self.song.track(track)
        g = clamp_db(gain_db)
        if t is not None:
            t.mix.gain_db = round(g, 2)
        return g

    def monitor_gain_db(self, track: Track) -> float:
        """What the transport plays a track at: its fader plus the master fader, relative to
        the fader it was mixed at when it plays mixed."""
        base = self.played.gains_db.get(track.name, 0.0) if self._mixed(track.name) else 0.0
        return track.mix.gain_db - base + self.master_gain_db

    def _mixed(self, name: str) -> bool:
        return self.played is not None and name in self.played.stems

    def playback(self) -> tuple[dict[str, "np.ndarray"], dict[str, "np.ndarray"]]:
        """(track stems, returns) for the transport: each track mixed when it has been,
        else raw; the returns only when every track plays mixed."""
        names = [t.name for t in self.song.tracks if t.name in self.stems or self._mixed(t.name)]
        stems = {n: self.played.stems[n] if self._mixed(n) else self.stems[n] for n in names}
        every = self.played is not None and all(self._mixed(n) for n in names)
        return stems, (dict(self.played.returns) if every else {})

    def request_remix(self) -> None:
        """Mix again without rendering (mix settings changed, e.g. by the auto-mixer)."""
        self.version += 1
        self._remix = True

    # -- rendering -------------------------------------------------------------------------

    @property
    def needs_render(self) -> bool:
        return self._all_dirty or bool(self._dirty) or (self._remix and bool(self.song.tracks))

    def take_render(self) -> RenderJob | None:
        """The stale tracks and a copy of the song to render them from, with the other
        tracks' audio for the mix (None: nothing stale)."""
        if not self.needs_render:
            return None
        names = None if self._all_dirty else {n for n in self._dirty if self.song.track(n)}
        self._dirty.clear()
        self._all_dirty = False
        self._remix = False
        if not self.song.tracks:
            return None
        raw = {} if names is None else {n: y for n, y in self.stems.items() if n not in names}
        return RenderJob(self.version, copy.deepcopy(self.song), names, raw)

    def apply_render(self, version: int, stems: dict[str, "np.ndarray"],
                     played: PlaybackMix | None = None) -> list[str]:
        """Keep rendered tracks that no edit after ``version`` touched, and their mix when no
        edit at all came after it; returns the names of the tracks kept."""
        if played is not None and version == self.version:
            self.played = played
        kept = []
        for name, y in stems.items():
            if self.song.track(name) is None or self._edited_at.get(name, 0) > version:
                continue
            self.stems[name] = y
            kept.append(name)
        for name in list(self.stems):
            if self.song.track(name) is None:
                del self.stems[name]
        return kept


def stretch_cache(settings):
    from loopmind.generate.render import StretchCache

    return StretchCache(settings.cache_dir,
                        max_bytes=int(settings.stretch_cache_mb * 1024 * 1024))


def _fit(y: "np.ndarray", n: int) -> "np.ndarray":
    import numpy as np

    if y.shape[1] == n:
        return y
    out = np.zeros((2, n), dtype=np.float32)
    m = min(n, y.shape[1])
    out[:, :m] = y[:, :m]
    return out


def render_stems(song: Song, names: set[str] | None, *, cache, workers: int = 1
                 ) -> tuple[dict[str, "np.ndarray"], list[str]]:
    """Render some tracks of ``song`` (None: all) at the whole song's length.

    Returns:
        (track name -> float32 (2, n) audio, notes about clips that could not be rendered).
    """
    from loopmind.generate.render import DEFAULT_TAIL_S, render_tracks

    part = replace(song, tracks=[t for t in song.tracks if names is None or t.name in names],
                   notes=[])
    rendered = render_tracks(part, cache=cache, workers=workers)
    n = song.bar_to_sample(song.bars) + int(round(DEFAULT_TAIL_S * song.sample_rate))
    return {k: _fit(v, n) for k, v in rendered.tracks.items()}, rendered.notes


def playback_mix(song: Song, raw: dict[str, "np.ndarray"], *, workers: int = 1
                 ) -> PlaybackMix | None:
    """Mix rendered tracks as the export does, for the transport (None: a track of the song
    has no audio, or there are no tracks)."""
    from loopmind.generate.mix import apply_mix

    names = [t.name for t in song.tracks]
    if not names or any(n not in raw for n in names):
        return None
    mixed = apply_mix(song, {n: raw[n] for n in names}, sr=song.sample_rate, workers=workers,
                      master_gain=True)
    return playback_from_mix(song, mixed)


def playback_from_mix(song: Song, mixed) -> PlaybackMix:
    """The transport's ``PlaybackMix`` from a ``MixResult`` made with ``master_gain=True``
    (its stems and reverb are scaled in place: use it after they were exported)."""
    g = mixed.master_gain
    for y in mixed.stems.values():
        y *= g
    mixed.reverb *= g
    returns = {"reverb": mixed.reverb} if mixed.reverb.any() else {}
    return PlaybackMix(stems=mixed.stems, returns=returns,
                       gains_db={t.name: t.mix.gain_db for t in song.tracks})


def auto_mix_gains(song: Song, *, cache, workers: int = 1) -> dict[str, Any]:
    """Run the auto-mixer over ``song`` (a copy: its mixes are replaced); the ``MixSettings``
    it decided, by track name."""
    from loopmind.generate.mix import auto_mix

    stems, _ = render_stems(song, None, cache=cache, workers=workers)
    auto_mix(song, stems, sr=song.sample_rate, workers=workers)
    return {t.name: t.mix for t in song.tracks}


def export(song: Song, out_dir: str | Path, *, cache, flac: bool = False, auto: bool = True,
           workers: int = 1, on_stage: Callable[[str], None] | None = None):
    """Render, mix and write a copy of the song as ``loopmind generate`` does.

    Args:
        song: a copy (the auto-mixer may change its mix settings).
        auto: run the auto-mixer first (else the song's own faders are used).

    Returns:
        ``ExportResult`` (paths of master, stems, arrangement, MIDI).

    Raises:
        LoopMindError: an empty song, or a folder that cannot be written.
    """
    from loopmind.generate.export import export_song
    from loopmind.generate.mix import apply_mix, auto_mix

    if not song.tracks:
        raise LoopMindError("the song is empty: add sounds or generate one first")
    stage = on_stage or (lambda s: None)
    stage("rendering")
    from loopmind.generate.render import render_tracks

    rendered = render_tracks(song, cache=cache, workers=workers)
    stage("mixing")
    if auto:
        auto_mix(song, rendered.tracks, sr=rendered.sr, workers=workers)
    mixed = apply_mix(song, rendered.tracks, sr=rendered.sr, workers=workers)
    stage("writing")
    return export_song(song, mixed.stems, mixed.master, Path(out_dir), sr=rendered.sr,
                       flac=flac)

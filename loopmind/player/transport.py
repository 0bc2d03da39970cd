"""Song playback: the rendered stems as engine voices, with a playhead, a loop, and the mixer's
mute, solo and volume applied live.

Every stem plays as its own voice ``track:<name>``, and a silent voice ``transport`` (a
zero-stride view, no memory) as long as the song is the clock the playhead and the
audition's beat sync read. All of them start on the same sample in one ``Engine.play_many``
call and loop together, so they cannot drift apart. The live mix is the sum of the stems at
their fader gains, plus the returns (the reverb) as voices ``return:<name>`` at unity, silent
while a track is soloed. The app hands it the export's mix with the master chain's gain
already in every stem (``loopmind.app.session.playback_mix``), so with the faders where the
mix left them the sum is the exported master; raw stems play as they are, and the engine
hard-clips at +-1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from loopmind.errors import LoopMindError
from loopmind.player.engine import Engine

if TYPE_CHECKING:
    from loopmind.generate.song import Song

TRANSPORT_VOICE = "transport"
TRACK_PREFIX = "track:"
RETURN_PREFIX = "return:"


def track_voice(name: str) -> str:
    """The engine voice that plays track ``name``."""
    return TRACK_PREFIX + name


def track_gains(names: Iterable[str], *, mute: Mapping[str, bool] | None = None,
                solo: Mapping[str, bool] | None = None,
                volume_db: Mapping[str, float] | None = None) -> dict[str, float]:
    """Each track's linear gain from the mixer's buttons and faders.

    A muted track is silent, even when soloed; when any track is soloed, the tracks that are
    not are silent; otherwise a track plays at ``10 ** (volume_db / 20)``.

    Returns:
        track name -> linear gain (0.0 = silent).
    """
    names = list(names)
    mute, solo, volume_db = mute or {}, solo or {}, volume_db or {}
    soloing = any(solo.get(n, False) for n in names)
    out = {}
    for n in names:
        if mute.get(n, False) or (soloing and not solo.get(n, False)):
            out[n] = 0.0
        else:
            out[n] = float(10.0 ** (float(volume_db.get(n, 0.0)) / 20.0))
    return out


class Transport:
    """Play state of one song on an ``Engine``.

    Attributes:
        engine: the output.
        sr: sample rate in Hz (the song and its stems must have it).
        song: the loaded song, or None.
    """

    def __init__(self, engine: Engine, *, sr: int = 44100) -> None:
        self.engine = engine
        self.sr = int(sr)
        self.song: Song | None = None
        self._stems: dict[str, np.ndarray] = {}
        self._returns: dict[str, np.ndarray] = {}
        self._clock = np.zeros((2, 0), dtype=np.float32)
        self._n = 0
        self._mute: dict[str, bool] = {}
        self._solo: dict[str, bool] = {}
        self._volume_db: dict[str, float] = {}
        self._loop = False
        self._loop_range: tuple[float, float] | None = None
        self._pos = 0
        self._playing = False
        self._lock = threading.RLock()

    # -- loading ---------------------------------------------------------------------------

    def load(self, song: Song, stems: Mapping[str, np.ndarray],
             returns: Mapping[str, np.ndarray] | None = None) -> None:
        """Load a song and its rendered stems (stops what was playing; the playhead goes to
        the start).

        Args:
            song: the ``loopmind.generate.song.Song``; its tracks' ``mix.mute`` start muted.
            stems: track name -> float audio, shape (2, n), at ``sr``: the mixed stems
                (``apply_mix(...).stems``, plus ``"reverb": mix.reverb`` if wanted) or the raw
                ones (``render_tracks(...).tracks``). Shorter stems are padded with silence.
                Stems named after no track play too.
            returns: return name -> audio like a stem (the mix's reverb return), played at
                unity and silent while a track is soloed; not tracks of the mixer.

        Raises:
            LoopMindError: the song's sample rate is not the player's.
        """
        if song.sample_rate != self.sr:
            raise LoopMindError(f"the song is at {song.sample_rate} Hz but the player at "
                                f"{self.sr} Hz")
        arrays, rets = {}, {}
        for table, src in ((arrays, stems), (rets, returns or {})):
            for name, y in src.items():
                y = np.asarray(y, dtype=np.float32)
                if y.ndim == 1:
                    y = np.stack([y, y])
                if y.ndim != 2 or y.shape[0] != 2:
                    raise LoopMindError(f"stem {name!r}: expected shape (2, n), not {y.shape}")
                table[name] = y
        n = max([y.shape[1] for y in [*arrays.values(), *rets.values()]]
                + [song.bar_to_sample(song.bars)])
        for table in (arrays, rets):
            for name, y in table.items():
                if y.shape[1] < n:
                    table[name] = np.concatenate(
                        [y, np.zeros((2, n - y.shape[1]), np.float32)], axis=1)
        order = [t.name for t in song.tracks if t.name in arrays]
        order += [name for name in arrays if name not in order]
        with self._lock:
            self.stop()
            self.song = song
            self._stems = {name: arrays[name] for name in order}
            self._returns = rets
            self._n = n
            self._clock = np.broadcast_to(np.zeros((2, 1), dtype=np.float32), (2, n))
            self._mute = {name: False for name in order}
            for t in song.tracks:
                if t.name in self._mute:
                    self._mute[t.name] = bool(t.mix.mute)
            self._solo = {name: False for name in order}
            self._volume_db = {name: 0.0 for name in order}
            self._loop_range = None
            self._pos = 0

    # -- play state ------------------------------------------------------------------------

    def play(self, from_bar: float | None = None) -> None:
        """Start playing from ``from_bar`` (0-based, fractional allowed) or from the
        playhead; from a finished song's end it starts again from the top (or the loop)."""
        with self._lock:
            if self.song is None:
                return
            if from_bar is not None:
                start = self.song.bar_to_sample(max(float(from_bar), 0.0))
            else:
                start = self.position_samples
            a, b = self._loop_samples()
            if start >= self._n or (self._loop and not a <= start < b):
                start = a if self._loop else 0
            voices = {TRANSPORT_VOICE: self._clock}
            voices.update({track_voice(name): y for name, y in self._stems.items()})
            voices.update({RETURN_PREFIX + name: y for name, y in self._returns.items()})
            gains = self._voice_gains()
            gains[TRANSPORT_VOICE] = 0.0
            self.engine.play_many(voices, loop=self._loop, loop_range=(a, b), start=start,
                                  gain=gains)
            self._playing = True

    def stop(self) -> None:
        """Stop; the playhead stays where it was."""
        with self._lock:
            if self._playing:
                self._pos = self.engine.position(TRANSPORT_VOICE)
                self.engine.stop_many(self._voice_names())
                self._playing = False

    def toggle(self) -> None:
        """Play if stopped, stop if playing (the space bar)."""
        with self._lock:
            if self.playing:
                self.stop()
            else:
                self.play()

    def seek(self, bar: float) -> None:
        """Move the playhead to ``bar``; playback goes on from there if it was playing."""
        with self._lock:
            if self.song is None:
                return
            if self.playing:
                self.play(from_bar=bar)
            else:
                self._pos = min(self.song.bar_to_sample(max(float(bar), 0.0)), self._n)

    @property
    def playing(self) -> bool:
        """Whether the song is playing (False once it has played to its end)."""
        with self._lock:
            if self._playing and not self.engine.is_playing(TRANSPORT_VOICE):
                self._pos = self.engine.position(TRANSPORT_VOICE)
                self._playing = False
            return self._playing

    @property
    def position_samples(self) -> int:
        with self._lock:
            if self._playing:
                return self.engine.position(TRANSPORT_VOICE)
            return self._pos

    @property
    def position_s(self) -> float:
        """The playhead in seconds from the song's start."""
        return self.position_samples / self.sr

    @property
    def position_bars(self) -> float:
        """The playhead in bars from the song's start (0-based, fractional)."""
        song = self.song
        if song is None:
            return 0.0
        return self.position_s / song.bar_s

    @property
    def duration_s(self) -> float:
        """Length of the loaded audio (the song plus its tail) in seconds."""
        return self._n / self.sr

    @property
    def bpm(self) -> float | None:
        return None if self.song is None else self.song.bpm

    @property
    def key(self) -> str | None:
        return None if self.song is None else self.song.key

    # -- loop ------------------------------------------------------------------------------

    @property
    def loop(self) -> bool:
        """Loop the whole song (its bars, without the tail) or ``loop_range``."""
        return self._loop

    @loop.setter
    def loop(self, value: bool) -> None:
        with self._lock:
            self._loop = bool(value)
            self._apply_loop()

    @property
    def loop_range(self) -> tuple[float, float] | None:
        """(first bar, end bar) of the loop, 0-based and end-exclusive; None: the whole
        song."""
        return self._loop_range

    @loop_range.setter
    def loop_range(self, value: tuple[float, float] | None) -> None:
        with self._lock:
            if value is not None:
                a, b = float(value[0]), float(value[1])
                if not 0 <= a < b:
                    raise ValueError(f"loop range {value!r}: need 0 <= first < end")
                value = (a, b)
            self._loop_range = value
            self._apply_loop()

    def _loop_samples(self) -> tuple[int, int]:
        song = self.song
        if song is None:
            return 0, 0
        end = song.bar_to_sample(song.bars) if song.bars > 0 else self._n
        if self._loop_range is not None:
            a = song.bar_to_sample(self._loop_range[0])
            b = min(song.bar_to_sample(self._loop_range[1]), self._n)
            if a < b:
                return a, b
        return 0, min(end, self._n) or self._n

    def _apply_loop(self) -> None:
        if self._playing:
            self.engine.set_loop(self._voice_names(), self._loop, self._loop_samples())

    # -- mixer -----------------------------------------------------------------------------

    @property
    def tracks(self) -> list[str]:
        """Track names in song order."""
        return list(self._stems)

    def set_mute(self, track: str, mute: bool) -> None:
        self._set(self._mute, track, bool(mute))

    def set_solo(self, track: str, solo: bool) -> None:
        self._set(self._solo, track, bool(solo))

    def set_volume(self, track: str, db: float) -> None:
        """Set a track's fader in dB relative to its mixed level (0 = as mixed)."""
        db = float(db)
        if db != db:
            raise ValueError("volume must be a number")
        self._set(self._volume_db, track, db)

    def is_muted(self, track: str) -> bool:
        return self._mute[track]

    def is_soloed(self, track: str) -> bool:
        return self._solo[track]

    def volume_db(self, track: str) -> float:
        return self._volume_db[track]

    def gains(self) -> dict[str, float]:
        """Each track's linear gain now (see ``track_gains``)."""
        with self._lock:
            return track_gains(self._stems, mute=self._mute, solo=self._solo,
                               volume_db=self._volume_db)

    def _set(self, table: dict, track: str, value) -> None:
        with self._lock:
            if track not in table:
                raise KeyError(f"no track named {track!r}")
            table[track] = value
            if self._playing:
                self.engine.set_gains(self._voice_gains())

    def _voice_gains(self) -> dict[str, float]:
        gains = {track_voice(n): g for n, g in self.gains().items()}
        ret = 0.0 if any(self._solo.values()) else 1.0
        gains.update({RETURN_PREFIX + name: ret for name in self._returns})
        return gains

    @property
    def returns(self) -> list[str]:
        """Names of the returns playing beside the tracks."""
        return list(self._returns)

    def track_levels(self) -> dict[str, tuple[float, float]]:
        """Decaying peak (left, right) per track for the mixer's meters (0 when silent)."""
        levels = self.engine.levels()
        return {name: levels.get(track_voice(name), (0.0, 0.0)) for name in self._stems}

    def master_level(self) -> tuple[float, float]:
        return self.engine.master_level()

    def _voice_names(self) -> list[str]:
        return ([TRANSPORT_VOICE] + [track_voice(name) for name in self._stems]
                + [RETURN_PREFIX + name for name in self._returns])

"""Audition: the selected sound played at the song's tempo and key, as fast as a key press.

A loop is stretched to the song tempo (``stretch_ratio``: within 0.8-1.25, reading the loop at
half or double time if that is closer; left alone when no ratio reaches) and, unless it is
drums or fx, shifted to the song key (``semitones_to``). It is rendered as a ``Clip`` through
``loopmind.generate.render``, so it lands in (and comes from) the same ``StretchCache`` as the
song's own clips. One-shots play as they are, shifted to the key when they have one and are
pitched.

Buffers are made ahead of time by ``prepare`` in one background thread (the newest request
replaces a queued older one: only the sound under the cursor matters) and kept in a small
in-memory LRU, so ``play`` of a prepared sound only hands a buffer to the engine.

Beat sync: while the song plays, a loop audition starts on the song's next beat (a scheduled
start at a sample-exact engine frame, see ``Engine.sync_point``), entered at the offset where
it would be had it started with the song, so its downbeat falls on the song's bar lines.
One-shots, and any sound while the song is stopped, start at once.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopmind.errors import LoopMindError
from loopmind.player.engine import Engine
from loopmind.player.transport import TRANSPORT_VOICE

if TYPE_CHECKING:
    from loopmind.generate.render import StretchCache

log = logging.getLogger(__name__)

AUDITION_VOICE = "audition"
# never pitch-shifted: drums (render's UNPITCHED_ROLES) and effects (a riser "in C" is noise)
_UNSHIFTED_ROLES = frozenset({"kick", "snare", "hihat", "cymbal", "tom", "clap", "perc",
                              "drumloop", "fx"})
# a loop whose length at the song tempo is this close to whole bars is made exactly whole bars,
# so it repeats on the song's bar lines (the arranger's tolerance for PoolItem.loop_bars)
_WHOLE_BARS_TOL = 0.05
_LOOP_FADE_IN_S = 0.001  # keeps the downbeat's attack (see render._SEAM_FADE_IN_S)
_ONESHOT_FADE_IN_S = 0.002
_FADE_OUT_S = 0.005
DEFAULT_MEMORY_ITEMS = 32
DEFAULT_MEMORY_BYTES = 512 * 1024**2


@dataclass(frozen=True)
class _Plan:
    """Everything an audition buffer depends on (the in-memory cache key)."""

    path: str
    size: int
    mtime_ns: int
    start_s: float
    end_s: float
    kind: str
    role: str | None
    sr: int
    stretch: float  # playback speed (1.0: not stretched)
    source_bars: float | None  # bars the loop fills at the song tempo; None: as it is
    semitones: int
    # described by the fields above as far as the audio goes: not part of the key, so a drum
    # loop is made once whatever the song's key
    source_bpm: float | None = field(default=None, compare=False)
    source_key: str | None = field(default=None, compare=False)
    song_bpm: float | None = field(default=None, compare=False)
    song_key: str | None = field(default=None, compare=False)

    @property
    def is_loop(self) -> bool:
        return self.kind == "loop"

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class Audition:
    """What ``Auditioner.play`` started.

    Attributes:
        duration_s: the buffer's length (one repetition for a loop).
        stretch: playback speed applied (1.0: none; 140/120 = 1.1667 for a 120 BPM loop in a
            140 BPM song).
        semitones: pitch shift applied.
        loop: whether it repeats.
        synced: whether it waits for the song's next beat.
    """

    duration_s: float
    stretch: float
    semitones: int
    loop: bool
    synced: bool


class Auditioner:
    """Plays library sounds on an engine, fitted to the song.

    Args:
        engine: the output.
        cache: the stretch cache shared with song rendering (the settings' one when None).
        sr: sample rate of the buffers (the engine's).
        on_error: called with a one-line message when the background worker cannot prepare a
            sound (from the worker thread; post a message from it, do not touch a UI).
        memory_items, memory_bytes: size of the in-memory LRU of ready buffers.

    Attributes:
        gain: linear gain of auditions.
        sync: start loops on the song's next beat while the song plays.
    """

    def __init__(self, engine: Engine, *, cache: "StretchCache | None" = None,
                 sr: int = 44100, on_error: Callable[[str], None] | None = None,
                 memory_items: int = DEFAULT_MEMORY_ITEMS,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        if cache is None:
            from loopmind.generate.render import StretchCache

            cache = StretchCache()
        self.engine = engine
        self.cache = cache
        self.sr = int(sr)
        self.on_error = on_error
        self.gain = 1.0
        self.sync = True
        self.memory_items = int(memory_items)
        self.memory_bytes = int(memory_bytes)
        self.renders = 0  # buffers made (cache or stretcher), for tests and benchmarks
        self._memory: OrderedDict[_Plan, np.ndarray] = OrderedDict()
        self._memory_used = 0
        self._cond = threading.Condition()
        self._pending: _Plan | None = None
        self._busy: _Plan | None = None
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="loopmind-audition",
                                        daemon=True)
        self._worker.start()

    # -- public ----------------------------------------------------------------------------

    def prepare(self, item: Any, *, song_bpm: float | None, song_key: str | None) -> None:
        """Make ``item``'s buffer in the background (returns at once).

        Args:
            item: anything with ``path, start_s, end_s, kind, role, bpm, key`` (a search
                ``Hit``, a ``PoolItem``); ``bars`` is used when present.
            song_bpm, song_key: the song's tempo and key (None: play the sound as it is).

        Raises:
            LoopMindError: the file is gone (checked here, cheaply); a file that exists but
                cannot be decoded is reported later through ``on_error``.
        """
        plan = self._plan(item, song_bpm, song_key)
        with self._cond:
            if plan in self._memory or plan == self._busy or self._closed:
                return
            self._pending = plan  # replaces an older request still waiting
            self._cond.notify_all()

    def is_ready(self, item: Any, *, song_bpm: float | None, song_key: str | None) -> bool:
        """Whether ``play`` would start from memory (no decoding or stretching)."""
        try:
            plan = self._plan(item, song_bpm, song_key)
        except LoopMindError:
            return False
        with self._cond:
            return plan in self._memory

    def play(self, item: Any, *, song_bpm: float | None, song_key: str | None,
             loop: bool | None = None) -> Audition:
        """Play ``item`` fitted to the song, replacing the previous audition.

        From memory when prepared; when the worker is making it right now, waits for it;
        otherwise makes it here (stretching a loop takes about 0.1-0.5 s).

        Args:
            item, song_bpm, song_key: as ``prepare``.
            loop: repeat it; None: loops repeat and one-shots play once.

        Returns:
            what was started.

        Raises:
            LoopMindError: the file is gone or cannot be decoded or stretched (one line).
        """
        plan = self._plan(item, song_bpm, song_key)
        with self._cond:
            if self._pending == plan:
                self._pending = None  # made here instead
            while plan not in self._memory and self._busy == plan:
                self._cond.wait()
            y = self._recall(plan)
        if y is None:
            y = self._render(plan)
            with self._cond:
                self._remember(plan, y)
        loop = plan.is_loop if loop is None else bool(loop)
        at, start = None, 0
        if (loop and self.sync and song_bpm and plan.is_loop
                and self.engine.is_playing(TRANSPORT_VOICE)):
            point = self.engine.sync_point(TRANSPORT_VOICE, 60.0 / float(song_bpm) * self.sr)
            if point is not None:
                at, song_pos = point
                start = song_pos % y.shape[1] if y.shape[1] else 0
        self.engine.play(y, voice=AUDITION_VOICE, loop=loop, gain=self.gain, start=start,
                         at=at)
        return Audition(duration_s=y.shape[1] / self.sr, stretch=plan.stretch,
                        semitones=plan.semitones, loop=loop, synced=at is not None)

    def stop(self) -> None:
        """Stop the audition (fades out over one block)."""
        self.engine.stop(AUDITION_VOICE)

    def is_playing(self) -> bool:
        return self.engine.is_playing(AUDITION_VOICE)

    def clear_memory(self) -> None:
        """Forget the in-memory buffers (the stretch cache on disk stays)."""
        with self._cond:
            self._memory.clear()
            self._memory_used = 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the worker has nothing queued or in hand; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and self._busy is None,
                                       timeout)

    def close(self) -> None:
        """Stop the worker (idempotent); the engine stays open."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout=5.0)

    def __enter__(self) -> "Auditioner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker ------------------------------------------------------------------------

    def _work(self) -> None:
        # the first audition should not pay for these imports
        try:
            import loopmind.generate.arrange  # noqa: F401
            import loopmind.generate.render  # noqa: F401
            import loopmind.index.search  # noqa: F401
            import pedalboard  # noqa: F401
        except Exception:  # noqa: BLE001 - play() will raise the real error
            log.debug("audition warm-up imports failed", exc_info=True)
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                plan, self._pending = self._pending, None
                self._busy = plan
            message = None
            y = None
            try:
                y = self._render(plan)
            except LoopMindError as exc:
                message = str(exc)
            except Exception as exc:  # noqa: BLE001 - the worker outlives any one bad file
                log.exception("could not prepare %s", plan.path)
                message = f"{plan.name}: could not be prepared ({exc})"
            with self._cond:
                self._busy = None
                if y is not None:
                    self._remember(plan, y)
                self._cond.notify_all()
            if message is not None:
                self._report(message)

    def _report(self, message: str) -> None:
        if self.on_error is None:
            log.warning("audition: %s", message)
            return
        try:
            self.on_error(message)
        except Exception:  # noqa: BLE001 - a failing handler must not stop the worker
            log.exception("audition on_error handler failed")

    # -- memory ----------------------------------------------------------------------------

    def _recall(self, plan: _Plan) -> np.ndarray | None:
        y = self._memory.get(plan)
        if y is not None:
            self._memory.move_to_end(plan)
        return y

    def _remember(self, plan: _Plan, y: np.ndarray) -> None:
        if plan in self._memory:
            self._memory.move_to_end(plan)
            return
        self._memory[plan] = y
        self._memory_used += y.nbytes
        while len(self._memory) > 1 and (len(self._memory) > self.memory_items
                                         or self._memory_used > self.memory_bytes):
            _, old = self._memory.popitem(last=False)
            self._memory_used -= old.nbytes

    # -- planning and rendering ------------------------------------------------------------

    def _plan(self, item: Any, song_bpm: float | None, song_key: str | None) -> _Plan:
        """Decide stretch, bars and shift for ``item`` (cheap: one stat, no audio)."""
        from loopmind.generate.arrange import semitones_to
        from loopmind.index.search import stretch_ratio

        path = os.fsdecode(item.path)
        name = Path(path).name
        try:
            st = os.stat(os.fsencode(path))
        except FileNotFoundError:
            raise LoopMindError(f"{name}: the file is gone") from None
        except OSError as exc:
            raise LoopMindError(f"{name}: {exc.strerror or exc}") from None
        start_s, end_s = float(item.start_s), float(item.end_s)
        if not end_s > start_s >= 0:
            raise LoopMindError(f"{name}: empty segment {start_s:.3f}-{end_s:.3f} s")
        kind = str(item.kind or "oneshot")
        role = item.role
        source_bpm = float(item.bpm) if item.bpm else None
        song_bpm = float(song_bpm) if song_bpm else None
        stretch, source_bars = 1.0, None
        if kind == "loop" and source_bpm and song_bpm:
            ratio = stretch_ratio(source_bpm, song_bpm)
            if ratio is not None:
                bars = (end_s - start_s) / ratio / (240.0 / song_bpm)
                whole = round(bars)
                if whole >= 1 and abs(bars - whole) < _WHOLE_BARS_TOL:
                    bars = float(whole)
                source_bars = bars
                stretch = (end_s - start_s) / (bars * 240.0 / song_bpm)
        semitones = 0
        if role not in _UNSHIFTED_ROLES and item.key and song_key:
            semitones = semitones_to(item.key, song_key) or 0
        return _Plan(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns, start_s=start_s,
                     end_s=end_s, kind=kind, role=role, source_bpm=source_bpm,
                     source_key=item.key, song_bpm=song_bpm, song_key=song_key, sr=self.sr,
                     stretch=round(stretch, 6), source_bars=source_bars, semitones=semitones)

    def _render(self, plan: _Plan) -> np.ndarray:
        """The audition buffer, through render's clip functions and the stretch cache.

        Returns:
            float32 array, shape (2, n), read-only.

        Raises:
            LoopMindError: the source cannot be read or stretched.
        """
        from loopmind.generate.render import render_clip, render_unit, unit_key
        from loopmind.generate.song import Clip, Song

        song = Song(bpm=plan.song_bpm or plan.source_bpm or 120.0, key=plan.song_key,
                    sample_rate=plan.sr)
        try:
            if plan.source_bars is not None:
                clip = Clip(start_bar=0, bars=max(1, math.ceil(plan.source_bars - 1e-9)),
                            source_path=plan.path, source_start_s=plan.start_s,
                            source_end_s=plan.end_s, source_bpm=plan.source_bpm,
                            source_key=plan.source_key, source_bars=plan.source_bars,
                            stretch=plan.stretch, semitones=plan.semitones,
                            fade_in_s=_LOOP_FADE_IN_S)
                y = render_clip(clip, song, self.cache, role=plan.role)
                n = int(round(plan.source_bars * song.bar_s * plan.sr))
                y = np.ascontiguousarray(y[:, :n])
            else:
                clip = Clip(start_bar=0, bars=1, source_path=plan.path,
                            source_start_s=plan.start_s, source_end_s=plan.end_s,
                            source_bpm=plan.source_bpm, source_key=plan.source_key,
                            semitones=plan.semitones)
                try:
                    key = unit_key(clip, song, role=plan.role)
                except OSError:
                    raise LoopMindError(f"{plan.name}: the file is gone") from None
                y = np.array(render_unit(key, self.cache), dtype=np.float32)
                fade_in = _LOOP_FADE_IN_S if plan.is_loop else _ONESHOT_FADE_IN_S
                _fade(y, int(fade_in * plan.sr), int(_FADE_OUT_S * plan.sr))
        except LoopMindError:
            raise
        except (ValueError, RuntimeError, OSError) as exc:
            raise LoopMindError(f"{plan.name}: could not be stretched ({exc})") from None
        if not np.isfinite(y.sum(dtype=np.float64)):
            y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
        y.flags.writeable = False
        self.renders += 1
        return y


def _fade(y: np.ndarray, n_in: int, n_out: int) -> None:
    """Linear edge fades in place on (2, n) audio (against clicks at a cut)."""
    n = y.shape[1]
    n_in, n_out = min(n_in, n), min(n_out, n)
    if n_in > 0:
        y[:, :n_in] *= np.linspace(0.0, 1.0, n_in + 1, dtype=np.float32)[1:]
    if n_out > 0:
        y[:, n - n_out:] *= np.linspace(1.0, 0.0, n_out + 1, dtype=np.float32)[:-1]

"""The audio output: one sounddevice stream whose callback mixes named voices.

A *voice* is a (2, n) float32 buffer with a play position, a gain, and optionally a loop
region. Voices are replaced, stopped and re-gained from any thread; the callback sums them into
the device's block, hard-clips at +-1 and moves every position on. Control methods only swap
references and set numbers under ``Engine._lock`` (never copy audio while holding it), so the
callback, which holds the lock for the short time it mixes one block, never waits on real work.

Without PortAudio or an output device ``Engine.open`` still returns an engine, with
``available`` False and a one-line ``error``; a *silent clock* thread then runs the same mixer
in real time into nothing, so positions, loops, levels and voice ends behave as with sound.

Two details of the callback:
- Gain changes, stops, replacements and seeks never cut a waveform: a gain change ramps over
  one block (11.6 ms at 512 frames), a stopped or replaced sound fades out over one block, and
  a buffer entered mid-way (a seek, a start offset) fades in (over one block after a seek, 1 ms
  for a start offset, which keeps a beat's attack); a buffer played from its start is not
  faded.
- A device that takes audio faster than real time (ALSA's ``null`` plugin, used in CI, has no
  clock: its buffer is always empty) is detected in the stream's first two seconds and then
  paced by the callback itself, by sleeping until wall time catches up. A real device never
  runs that far ahead, so it is never paced.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping

import numpy as np
from loopmind.fileio import quiet_stderr as _quiet_stderr

log = logging.getLogger(__name__)

DEFAULT_SR = 44100
DEFAULT_BLOCKSIZE = 512
# sounddevice's "high" latency (PortAudio's default high latency for the device): a Python
# callback can be held up by the GIL for a few ms, so the extra buffer buys safety against
# dropouts; the key-press-to-sound time is dominated by it only on slow devices
DEFAULT_LATENCY = "high"
# peak meters fall 20 dB in this time (a DAW's usual peak-hold release)
METER_FALL_S = 1.5
_METER_TAU_S = METER_FALL_S / math.log(10.0)
_METER_FLOOR = 1e-4
# a device this far ahead of wall time within its first seconds has no clock of its own
_UNPACED_LEAD_S = 0.5
_UNPACED_WINDOW_S = 2.0
# a paced or silent clock more than this behind wall time (the process was stopped) starts
# again from now instead of rushing through the gap
_RESYNC_LAG_S = 0.5
_FIRST_CALLBACK_TIMEOUT_S = 2.0
_PACING_PROBE_S = 0.03
_MAX_FADING = 64
# entering a buffer mid-waveform (a start offset, a late scheduled start) fades in this fast:
# enough against a click, short enough to keep the attack of a beat entered on the beat
_ENTRY_FADE_S = 0.001


class _Voice:
    """One buffer being played (internal: only touched under ``Engine._lock``)."""

    __slots__ = ("y", "n", "pos", "loop", "loop_start", "loop_end", "gain", "gain_now", "at",
                 "started", "ramp")

    def __init__(self, y: np.ndarray, *, pos: int, loop: bool, loop_start: int, loop_end: int,
                 gain: float, at: int | None) -> None:
        self.y = y
        self.n = int(y.shape[1])
        self.pos = pos
        self.loop = loop
        self.loop_start = loop_start
        self.loop_end = loop_end
        self.gain = gain
        self.gain_now = gain
        self.at = at  # engine frame at which to start; None: at once
        self.started = False
        self.ramp = 0  # samples of the next gain ramp; 0: the rest of the block

    def ghost(self) -> "_Voice":
        """A copy that fades out over the next block (what a stop or a jump leaves behind)."""
        g = _Voice(self.y, pos=self.pos, loop=self.loop, loop_start=self.loop_start,
                   loop_end=self.loop_end, gain=0.0, at=self.at)
        g.gain_now = self.gain_now
        g.started = self.started
        return g


class Engine:
    """Named voices mixed into one stereo output stream (or a silent clock without one).

    Build it with ``Engine.open`` (a device, or the silent clock when there is none) or
    ``Engine.offline`` (no thread at all; ``render`` pulls blocks, for tests). Every method is
    thread-safe; ``close`` is idempotent and the engine is a context manager.

    Attributes:
        available: True while audio goes to a device.
        error: why there is no output (one line), else None.
        sr: sample rate in Hz.
        blocksize: frames per callback.
        latency_s: the stream's output latency in seconds (0 without a device).
        device_name: the output device's name, or None.
        xruns: callbacks that reported an output underflow.
    """

    def __init__(self, *, sr: int = DEFAULT_SR, blocksize: int = DEFAULT_BLOCKSIZE) -> None:
        """Use ``Engine.open`` or ``Engine.offline``; this makes an engine that renders nothing
        until one of them starts a stream or a clock."""
        if sr <= 0 or blocksize <= 0:
            raise ValueError("sr and blocksize must be positive")
        self.sr = int(sr)
        self.blocksize = int(blocksize)
        self.available = False
        self.error: str | None = None
        self.latency_s = 0.0
        self.device_name: str | None = None
        self.xruns = 0
        self.paced = False  # the device had no clock and the callback paces it
        self._lock = threading.Lock()
        self._voices: dict[str, _Voice] = {}
        self._fading: list[_Voice] = []
        self._frame = 0  # frames rendered so far: the clock ``at`` counts in
        self._meters: dict[str, list[float]] = {}  # name -> [left, right, time]
        self._master = [0.0, 0.0, 0.0]
        self._first_output: dict[str, float] = {}
        self._last_pos: dict[str, int] = {}
        self._stream = None
        self._clock: threading.Thread | None = None
        self._offline = False
        self._closed = threading.Event()
        self._close_lock = threading.Lock()
        self._first_callback = threading.Event()
        self._pacing_known = threading.Event()
        self._t_origin: float | None = None
        self._frames_out = 0
        self._callback_failed = False
        self._alloc(self.blocksize)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def open(cls, *, sr: int = DEFAULT_SR, blocksize: int = DEFAULT_BLOCKSIZE,
             device: int | str | None = None, latency: str | float = DEFAULT_LATENCY
             ) -> "Engine":
        """Open the output stream; never raises for a missing library or device.

        Args:
            sr: sample rate in Hz.
            blocksize: frames per callback (512 is 11.6 ms at 44.1 kHz).
            device: a sounddevice device index or name substring; None for the default.
            latency: sounddevice's ``latency`` ("low", "high" or seconds).

        Returns:
            an engine; when the output cannot be opened its ``available`` is False, its
            ``error`` says why in one line (logged once as a warning) and a silent clock runs
            instead of the stream.
        """
        engine = cls(sr=sr, blocksize=blocksize)
        try:
            engine._start_stream(device, latency)
        except Exception as exc:  # noqa: BLE001 - no output is a mode of the engine, not a crash
            engine._drop_stream()
            engine.error = _no_output_reason(exc)
            log.warning("%s", engine.error)
            engine._start_clock()
        return engine

    @classmethod
    def offline(cls, *, sr: int = DEFAULT_SR, blocksize: int = DEFAULT_BLOCKSIZE) -> "Engine":
        """An engine with neither stream nor clock: time moves only when ``render`` is called.
        Deterministic, for tests and for bouncing what the player would play."""
        engine = cls(sr=sr, blocksize=blocksize)
        engine._offline = True
        engine.error = "offline"
        return engine

    def _start_stream(self, device: int | str | None, latency: str | float) -> None:
        with _quiet_stderr():  # ALSA prints its probing of absent cards on fd 2
            import sounddevice as sd

            self._stream = sd.OutputStream(
                samplerate=self.sr, blocksize=self.blocksize, channels=2, dtype="float32",
                device=device, latency=latency, callback=self._callback,
                finished_callback=self._on_finished)
            self._stream.start()
        if not self._first_callback.wait(_FIRST_CALLBACK_TIMEOUT_S):
            raise RuntimeError("the output device does not ask for audio")
        # a clockless device shows itself within a few ms; a real one is left alone
        self._pacing_known.wait(_PACING_PROBE_S)
        self.latency_s = float(self._stream.latency)
        try:
            self.device_name = str(sd.query_devices(self._stream.device)["name"])
        except Exception:  # noqa: BLE001 - the name is cosmetic
            self.device_name = None
        self.available = True

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.abort()
            with contextlib.suppress(Exception):
                stream.close()

    def _start_clock(self) -> None:
        if self._closed.is_set() or self._offline or (
                self._clock is not None and self._clock.is_alive()):
            return
        self._clock = threading.Thread(target=self._run_clock, name="loopmind-silent-clock",
                                       daemon=True)
        self._clock.start()

    def _on_finished(self) -> None:
        # PortAudio stopped the stream without close(): the device went away (unplugged,
        # suspended); keep the playheads moving on the silent clock. (A stream that failed
        # while opening is open()'s business.)
        if self._closed.is_set() or not self.available:
            return
        self.available = False
        self.error = "audio output stopped: the device went away"
        log.warning("%s", self.error)
        self._start_clock()

    # -- control -------------------------------------------------------------------------

    def play(self, y: np.ndarray, *, voice: str = "audition", loop: bool = False,
             gain: float = 1.0, start: int = 0, at: int | None = None,
             loop_range: tuple[int, int] | None = None) -> None:
        """Play ``y`` as ``voice``, replacing what that voice played (other voices go on).

        Args:
            y: float audio, shape (2, n) (mono (n,) and (n, 2) are accepted); float32 is used
                as is, without a copy, and must not be changed while it plays.
            voice: the voice's name.
            loop: repeat ``loop_range`` (the whole buffer by default) until stopped.
            gain: linear gain (1.0 = unchanged).
            start: first sample of ``y`` to play.
            at: engine frame (see ``clock`` and ``sync_point``) at which to start; None: with
                the next block. A start the callback reaches late skips the late samples, so a
                loop stays in phase.
            loop_range: (first, end) samples of the loop region.
        """
        self.play_many({voice: y}, loop=loop, gain=gain, start=start, at=at,
                       loop_range=loop_range)

    def play_many(self, voices: Mapping[str, np.ndarray], *, loop: bool = False,
                  gain: float | Mapping[str, float] = 1.0, start: int = 0, at: int | None = None,
                  loop_range: tuple[int, int] | None = None) -> None:
        """Start several voices on the same sample (song stems stay in sync).

        Arguments as ``play``; ``gain`` may map voice names to gains (missing ones get 1.0).
        """
        made = {}
        for name, y in voices.items():
            g = gain.get(name, 1.0) if isinstance(gain, Mapping) else gain
            made[name] = _make_voice(y, loop=loop, gain=g, start=start, at=at,
                                     loop_range=loop_range)
        with self._lock:
            for name, v in made.items():
                old = self._voices.get(name)
                if old is not None and old.started:
                    self._fade_out(old)
                self._voices[name] = v
                self._first_output.pop(name, None)
                self._last_pos.pop(name, None)

    def stop(self, voice: str | Iterable[str] | None = None) -> None:
        """Stop one voice, several (an iterable of names), or every voice (None); the sound
        fades out over one block. Unknown names are ignored."""
        with self._lock:
            if voice is None:
                names = list(self._voices)
            elif isinstance(voice, str):
                names = [voice]
            else:
                names = list(voice)
            for name in names:
                v = self._voices.pop(name, None)
                if v is not None:
                    self._last_pos[name] = v.pos
                    if v.started:
                        self._fade_out(v)

    def stop_many(self, voices: Iterable[str]) -> None:
        """Stop several voices in the same block."""
        self.stop(list(voices))

    def is_playing(self, voice: str) -> bool:
        """Whether ``voice`` is playing or waiting for its scheduled start."""
        with self._lock:
            return voice in self._voices

    def position(self, voice: str) -> int:
        """Samples of the voice's buffer rendered so far (its read position; a loop wraps).

        For a stopped or finished voice, where it stopped; 0 for an unknown one. The position
        runs ahead of what is heard by the stream's output latency (``latency_s``).
        """
        with self._lock:
            v = self._voices.get(voice)
            if v is not None:
                return v.pos
            return self._last_pos.get(voice, 0)

    def seek(self, voice: str, sample: int) -> None:
        """Move a playing voice to ``sample`` of its buffer (crossfaded over one block)."""
        with self._lock:
            v = self._voices.get(voice)
            if v is None:
                return
            if v.started:
                self._fade_out(v)
                v.gain_now = 0.0
            v.pos = min(max(int(sample), 0), v.n)

    def set_gain(self, voice: str, gain: float) -> None:
        """Change a voice's gain; the change ramps over one block."""
        self.set_gains({voice: gain})

    def set_gains(self, gains: Mapping[str, float]) -> None:
        """Change several voices' gains in the same block (mute, solo)."""
        checked = {name: _check_gain(g) for name, g in gains.items()}
        with self._lock:
            for name, g in checked.items():
                v = self._voices.get(name)
                if v is not None:
                    v.gain = g

    def set_loop(self, voices: str | Iterable[str], loop: bool,
                 loop_range: tuple[int, int] | None = None) -> None:
        """Turn looping on or off for playing voices, with a new loop region (None: the
        whole buffer), in the same block."""
        names = [voices] if isinstance(voices, str) else list(voices)
        with self._lock:
            for name in names:
                v = self._voices.get(name)
                if v is not None:
                    v.loop = bool(loop)
                    v.loop_start, v.loop_end = _loop_bounds(loop_range, v.n)

    def clock(self) -> int:
        """Frames the engine has rendered since it started (what ``at`` counts in)."""
        with self._lock:
            return self._frame

    def sync_point(self, voice: str, grid: float) -> tuple[int, int] | None:
        """When ``voice`` next reaches a multiple of ``grid`` samples of its buffer.

        Read in one step with the engine's clock, so the answer is sample-exact.

        Args:
            voice: the reference voice (the transport's clock).
            grid: grid spacing in samples (a beat), > 0.

        Returns:
            (engine frame, the voice's position then), or None when the voice is not playing.
        """
        if not grid > 0:
            raise ValueError("grid must be positive")
        with self._lock:
            v = self._voices.get(voice)
            if v is None or v.at is not None:
                return None
            pos = v.pos
            delay = int(round(math.ceil(pos / grid - 1e-9) * grid - pos))
            frame = self._frame + max(delay, 0)
            there = pos + max(delay, 0)
            if v.loop and there >= v.loop_end > v.loop_start:
                there = v.loop_start + (there - v.loop_end) % (v.loop_end - v.loop_start)
            return frame, there

    def first_output_time(self, voice: str) -> float | None:
        """``time.perf_counter()`` at the start of the first callback that output samples of
        the voice's current buffer, or None before then."""
        with self._lock:
            return self._first_output.get(voice)

    def levels(self) -> dict[str, tuple[float, float]]:
        """Decaying peak level (left, right) per voice for meters: 1.0 is full scale (more is
        clipping); a stopped voice's meter falls 20 dB per ``METER_FALL_S`` and then goes."""
        now = time.perf_counter()
        out = {}
        with self._lock:
            for name in list(self._meters):
                left, right, t = self._meters[name]
                f = math.exp(-max(now - t, 0.0) / _METER_TAU_S)
                lv = (left * f, right * f)
                if name not in self._voices and max(lv) < _METER_FLOOR:
                    del self._meters[name]
                    continue
                out[name] = lv
        return out

    def master_level(self) -> tuple[float, float]:
        """Decaying peak (left, right) of the sum before clipping (above 1.0: it clips)."""
        with self._lock:
            left, right, t = self._master
        f = math.exp(-max(time.perf_counter() - t, 0.0) / _METER_TAU_S)
        return left * f, right * f

    def voices(self) -> list[str]:
        """Names of the voices playing or scheduled."""
        with self._lock:
            return list(self._voices)

    def render(self, frames: int) -> np.ndarray:
        """Pull the next ``frames`` of the mix (offline engines only).

        Returns:
            float32 array, shape (frames, 2), as the device would receive it.
        """
        if not self._offline:
            raise RuntimeError("render() is for offline engines; a live one is pulled by "
                               "its stream")
        out = np.zeros((frames, 2), dtype=np.float32)
        done = 0
        while done < frames:  # in blocks, as the device would pull them
            k = min(self.blocksize, frames - done)
            self._render(out[done:done + k], k, time.perf_counter())
            done += k
        return out

    def close(self) -> None:
        """Stop the stream or the clock (idempotent)."""
        with self._close_lock:
            if self._closed.is_set():
                return
            self._closed.set()
        self._drop_stream()
        clock = self._clock
        if clock is not None and clock is not threading.current_thread():
            clock.join(timeout=2.0)
        self.available = False

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the mixer (runs in the callback or the clock thread) -----------------------------

    def _alloc(self, frames: int) -> None:
        self._cap = frames
        self._mix = np.zeros((2, frames), dtype=np.float32)
        self._tmp = np.zeros((2, frames), dtype=np.float32)
        self._gvec = np.zeros(frames, dtype=np.float32)
        self._steps = np.arange(1, frames + 1, dtype=np.float32)

    def _fade_out(self, v: _Voice) -> None:
        if len(self._fading) < _MAX_FADING:
            self._fading.append(v.ghost())

    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        now = time.perf_counter()
        if status.output_underflow:
            self.xruns += 1
        try:
            self._render(outdata, frames, now)
        except Exception:  # noqa: BLE001 - an exception would abort the stream
            outdata.fill(0)
            if not self._callback_failed:
                self._callback_failed = True
                log.exception("audio callback failed; output silenced for this block")
        self._first_callback.set()
        self._pace(frames, now)

    def _pace(self, frames: int, now: float) -> None:
        """Sleep in the callback when the device has no clock of its own (see module doc)."""
        if self._t_origin is None:
            self._t_origin = now
        self._frames_out += frames
        lead = self._frames_out / self.sr - (now - self._t_origin)
        if not self.paced:
            if lead > max(_UNPACED_LEAD_S, 4 * self.latency_s):
                if now - self._t_origin < _UNPACED_WINDOW_S:
                    # forget the burst (silence before anything played) and keep time from now
                    self.paced = True
                    self._t_origin = now - self._frames_out / self.sr
                    log.info("the output device has no clock; pacing it in real time")
                self._pacing_known.set()
            elif now - self._t_origin > _PACING_PROBE_S:
                self._pacing_known.set()
            return
        ahead = lead - self.blocksize / self.sr
        if ahead > 0:
            time.sleep(min(ahead, 0.5))
        elif ahead < -_RESYNC_LAG_S:
            self._t_origin = now - self._frames_out / self.sr

    def _run_clock(self) -> None:
        """The silent clock: the mixer in real time, its output dropped."""
        k = self.blocksize
        out = np.zeros((k, 2), dtype=np.float32)
        t0 = time.perf_counter()
        n = 0
        while not self._closed.is_set():
            now = time.perf_counter()
            try:
                self._render(out, k, now)
            except Exception:  # noqa: BLE001 - the clock must keep running
                if not self._callback_failed:
                    self._callback_failed = True
                    log.exception("silent clock: mixing failed")
            n += k
            wait = t0 + n / self.sr - time.perf_counter()
            if wait > 0:
                self._closed.wait(wait)
            elif wait < -_RESYNC_LAG_S:
                t0, n = time.perf_counter(), 0

    def _render(self, out: np.ndarray, frames: int, now: float) -> None:
        """Mix the next ``frames`` of every voice into ``out`` (frames, 2) float32."""
        if frames > self._cap:
            self._alloc(frames)  # only if a host ignores the fixed blocksize
        mix = self._mix[:, :frames]
        mix.fill(0.0)
        with self._lock:
            frame0 = self._frame
            if self._fading:
                for v in self._fading:
                    self._render_voice(v, mix, frame0, frames)
                self._fading.clear()
            ended = None
            for name, v in self._voices.items():
                was_started = v.started
                peak_l, peak_r, done = self._render_voice(v, mix, frame0, frames)
                if v.started and not was_started:
                    self._first_output[name] = now
                if v.started:
                    m = self._meters.get(name)
                    if m is None:
                        self._meters[name] = [peak_l, peak_r, now]
                    else:
                        _hold(m, peak_l, peak_r, now)
                if done:
                    ended = ended or []
                    ended.append(name)
            if ended:
                for name in ended:
                    self._last_pos[name] = self._voices.pop(name).pos
            self._frame = frame0 + frames
            if not math.isfinite(float(mix.sum())):
                np.nan_to_num(mix, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
            tmp = self._tmp[:, :frames]
            np.abs(mix, out=tmp)
            _hold(self._master, float(tmp[0].max(initial=0.0)),
                  float(tmp[1].max(initial=0.0)), now)
        np.clip(mix, -1.0, 1.0, out=mix)
        out[:frames, 0] = mix[0]
        out[:frames, 1] = mix[1]
        if out.shape[1] > 2:
            out[:frames, 2:] = 0.0

    def _render_voice(self, v: _Voice, mix: np.ndarray, frame0: int, k: int
                      ) -> tuple[float, float, bool]:
        """Add the voice's next samples into ``mix`` (2, k); move it on.

        Returns:
            (peak left, peak right, finished) for this block.
        """
        i = 0
        if v.at is not None:
            rel = v.at - frame0
            if rel >= k:
                return 0.0, 0.0, False
            if rel > 0:
                i = rel
            elif rel < 0:
                v.pos += -rel  # reached late: skip what should already have played
            v.at = None
        if not v.started and v.pos > 0:
            # entering a buffer in the middle of a waveform: fade in rather than click
            v.gain_now = 0.0
            v.ramp = max(1, int(_ENTRY_FADE_S * self.sr))
        g0, g1 = v.gain_now, v.gain
        peak_l = peak_r = 0.0
        done = False
        first = i
        if g0 != g1:  # the gain for the rest of the block: a linear ramp, then steady
            n_ramp = min(v.ramp or k - first, k - first)
            gv = self._gvec
            np.multiply(self._steps[:n_ramp], np.float32((g1 - g0) / n_ramp),
                        out=gv[first:first + n_ramp])
            gv[first:first + n_ramp] += np.float32(g0)
            gv[first + n_ramp:k] = g1
        v.ramp = 0
        while i < k:
            end = v.loop_end if v.loop else v.n
            if v.pos >= end:
                if v.loop and end > v.loop_start:
                    v.pos = v.loop_start + (v.pos - end) % (end - v.loop_start)
                    continue
                done = True
                break
            m = min(k - i, end - v.pos)
            if g0 != 0.0 or g1 != 0.0:
                tmp = self._tmp[:, :m]
                src = v.y[:, v.pos:v.pos + m]
                if g0 == g1:
                    np.multiply(src, np.float32(g1), out=tmp)
                else:
                    np.multiply(src, self._gvec[i:i + m], out=tmp)
                mix[:, i:i + m] += tmp
                np.abs(tmp, out=tmp)
                peak_l = max(peak_l, float(tmp[0].max()))
                peak_r = max(peak_r, float(tmp[1].max()))
            v.pos += m
            i += m
        if i > first:
            v.started = True
        v.gain_now = g1
        return peak_l, peak_r, done


# -- helpers -----------------------------------------------------------------------------------

def _hold(meter: list[float], left: float, right: float, now: float) -> None:
    """Peak-hold with exponential fall: ``meter`` is [left, right, time], updated in place."""
    f = math.exp(-max(now - meter[2], 0.0) / _METER_TAU_S)
    meter[0] = max(left, meter[0] * f)
    meter[1] = max(right, meter[1] * f)
    meter[2] = now


def _check_gain(gain: float) -> float:
    g = float(gain)
    if not (math.isfinite(g) and g >= 0.0):
        raise ValueError(f"gain must be a finite number >= 0, not {gain!r}")
    return g


def _as_stereo(y: np.ndarray) -> np.ndarray:
    """(2, n) float32 without a copy where possible: mono is broadcast, (n, 2) transposed."""
    y = np.asarray(y)
    if y.dtype != np.float32:
        y = y.astype(np.float32)
    if y.ndim == 1:
        return np.broadcast_to(y, (2, y.shape[0]))
    if y.ndim == 2 and y.shape[0] == 2:
        return y
    if y.ndim == 2 and y.shape[1] == 2:
        return y.T
    if y.ndim == 2 and y.shape[0] == 1:
        return np.broadcast_to(y, (2, y.shape[1]))
    raise ValueError(f"expected audio of shape (2, n), not {y.shape}")


def _loop_bounds(loop_range: tuple[int, int] | None, n: int) -> tuple[int, int]:
    if loop_range is None:
        return 0, n
    a, b = int(loop_range[0]), int(loop_range[1])
    a, b = min(max(a, 0), n), min(max(b, 0), n)
    if b <= a:
        return 0, n
    return a, b


def _make_voice(y: np.ndarray, *, loop: bool, gain: float, start: int, at: int | None,
                loop_range: tuple[int, int] | None) -> _Voice:
    y = _as_stereo(y)
    n = int(y.shape[1])
    a, b = _loop_bounds(loop_range, n)
    return _Voice(y, pos=min(max(int(start), 0), n), loop=bool(loop), loop_start=a,
                  loop_end=b, gain=_check_gain(gain), at=None if at is None else int(at))


def _no_output_reason(exc: BaseException) -> str:
    """One line for why there is no output."""
    if isinstance(exc, ImportError):
        return "no audio output: the sounddevice package is not installed"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and "PortAudio" in text:
        return "no audio output: PortAudio library not found"
    if text == "Error querying device -1":  # PortAudio found no device at all
        return "no audio output: no output device found"
    if text.startswith("No output device matching"):
        text = "no output device matching" + text[len("No output device matching"):]
    return f"no audio output: {text}"

"""The player as the studio uses it: one engine, its transport and its auditioner.

``open_audio`` never raises: without an output device the engine says so (``available`` is
False, ``error`` one line) and everything else goes on silently; without the player package at
all, silent stand-ins keep the transport's state so the studio still works.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("loopmind.app")

SR = 44100


@dataclass
class Audio:
    engine: Any
    transport: Any
    auditioner: Any

    @property
    def available(self) -> bool:
        return bool(getattr(self.engine, "available", False))

    @property
    def error(self) -> str | None:
        return getattr(self.engine, "error", None)

    def close(self) -> None:
        for part in (self.auditioner, self.transport):
            try:
                part.stop()
            except Exception:  # noqa: BLE001 - closing must not fail the app's exit
                log.exception("stopping audio")
        try:
            if hasattr(self.auditioner, "close"):
                self.auditioner.close()
        except Exception:  # noqa: BLE001
            log.exception("closing the auditioner")
        try:
            self.engine.close()
        except Exception:  # noqa: BLE001
            log.exception("closing the audio engine")


def open_audio(settings, *, engine: Any = None, sr: int = SR, on_error=None) -> Audio:
    """The engine (``engine``, or the default output), a transport and an auditioner on it.

    Args:
        settings: where the stretch cache lives.
        engine: an engine to use instead of opening the default device (tests pass a fake).
        sr: sample rate in Hz.
        on_error: called with one line when an audition cannot play.
    """
    try:
        from loopmind.player.audition import Auditioner
        from loopmind.player.engine import Engine
        from loopmind.player.transport import Transport
    except ImportError as exc:
        reason = f"the player is not installed ({exc})"
        eng = engine or SilentEngine(reason)
        return Audio(eng, SilentTransport(), SilentAuditioner())
    from loopmind.generate.render import StretchCache

    eng = engine if engine is not None else Engine.open(sr=sr)
    cache = StretchCache(settings.cache_dir,
                         max_bytes=int(settings.stretch_cache_mb * 1024 * 1024))
    return Audio(eng, Transport(eng, sr=sr),
                 Auditioner(eng, cache=cache, sr=sr, on_error=on_error))


# -- silent stand-ins (no player package) --------------------------------------------------------

class SilentEngine:
    """An engine that has no output."""

    def __init__(self, reason: str) -> None:
        self.available = False
        self.error = reason

    def levels(self) -> dict:
        return {}

    def master_level(self) -> tuple[float, float]:
        return (0.0, 0.0)

    def set_gain(self, voice: str, gain: float) -> None:
        pass

    def close(self) -> None:
        pass


class SilentTransport:
    """Play state without sound: the studio's controls keep working."""

    def __init__(self) -> None:
        self.playing = False
        self.loop = False
        self.loop_range = None
        self.position_bars = 0.0
        self.position_s = 0.0
        self.bpm = 120.0
        self.key = None

    def load(self, song, stems) -> None:
        self.bpm, self.key = song.bpm, song.key

    def play(self, from_bar=None) -> None:
        self.playing = True
        if from_bar is not None:
            self.position_bars = float(from_bar)

    def stop(self) -> None:
        self.playing = False

    def toggle(self) -> None:
        self.stop() if self.playing else self.play()

    def set_mute(self, track, on) -> None:
        pass

    def set_solo(self, track, on) -> None:
        pass

    def set_volume(self, track, db) -> None:
        pass

    def track_levels(self) -> dict:
        return {}


class SilentAuditioner:
    def prepare(self, item, *, song_bpm, song_key) -> None:
        pass

    def play(self, item, *, song_bpm, song_key, loop=None):
        return None

    def stop(self) -> None:
        pass

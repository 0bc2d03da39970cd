"""Helpers of the studio tests: running async tests, waiting for workers, capturing messages."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

SIZE = (160, 50)


def pilot_test(fn):
    """Run an async test function in a fresh event loop (no asyncio plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def app_settings(home: Path, **env):
    from loopmind.config import Settings

    return Settings.from_env({"LOOPMIND_HOME": str(home), "LOOPMIND_WORKERS": "1", **env})


def device_engine(available: bool = True):
    """An offline engine (no stream, no thread: deterministic); unless ``available`` is False
    it says it has an output, so the studio shows no "no audio output" notice."""
    from loopmind.player.engine import Engine

    engine = Engine.offline()
    if available:
        engine.available = True
        engine.error = None
        engine.device_name = "test output"
    return engine


async def settle(pilot, *, timeout: float = 60.0) -> None:
    """Wait until the library and audio are open and all workers (but the watcher's) are done,
    then let the screen catch up."""
    app = pilot.app
    t0 = time.monotonic()
    while app.library is None or app.audio is None:
        await pilot.pause(0.02)
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("the studio did not open its library and audio")
    await wait_workers(pilot, timeout=timeout - (time.monotonic() - t0))


def _busy(app) -> list:
    return [w for w in app.workers
            if not w.is_finished and not (w.group == "library" and app._watcher is not None)]


async def wait_workers(pilot, *, timeout: float = 60.0) -> None:
    """Wait until no worker but the watcher runs, twice in a row across a debounce interval
    (a finished worker or a debounce timer may start another)."""
    t0 = time.monotonic()
    quiet = 0
    while quiet < 2:
        await pilot.pause(0.05 if quiet == 0 else 0.3)
        if _busy(pilot.app):
            quiet = 0
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"workers still running: {_busy(pilot.app)}")
        else:
            quiet += 1
    await pilot.pause()


async def wait_for(pilot, predicate, *, timeout: float = 30.0, what: str = "condition"):
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


class Messages(list):
    """A ``message_hook`` that keeps every message once (a bubbling message reaches the hook
    at every widget it passes); ``of(type)`` filters."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[int] = set()

    def __call__(self, message) -> None:
        if id(message) not in self._seen:
            self._seen.add(id(message))
            self.append(message)

    def of(self, cls) -> list:
        return [m for m in self if isinstance(m, cls)]

"""How the studio's thread workers report failure: one handler, one line.

Textual posts ``Worker.StateChanged`` to the node that started the worker and does not bubble
it, so panes that run workers mix in ``ForwardsWorkerErrors``: an errored worker's state
change is re-posted to the app, whose single ``on_worker_state_changed`` shows the error in
the status bar and a notification, and logs the traceback (never on screen).
"""

from __future__ import annotations

import logging

from textual.worker import Worker, WorkerState

log = logging.getLogger("loopmind.app")


def one_line(error: BaseException | None) -> str:
    """An error as one short line: LoopMind's own errors as they are, others with their type."""
    if error is None:
        return "unknown error"
    from loopmind.errors import LoopMindError

    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(error, LoopMindError):
        return text[:200] or type(error).__name__
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__


class ForwardsWorkerErrors:
    """Mix into a widget that runs workers: their errors reach the app's one handler."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            event.stop()
            app = self.app  # type: ignore[attr-defined]
            app.post_message(Worker.StateChanged(event.worker, event.state))

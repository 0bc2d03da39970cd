"""The status bar: the last thing that happened (or went wrong), live indexing progress, the
library's size and the audio output."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

_BAR_CELLS = 12


def progress_bar(done: int, total: int, cells: int = _BAR_CELLS) -> str:
    if total <= 0:
        return "░" * cells
    full = int(round(cells * min(done, total) / total))
    return "█" * full + "░" * (cells - full)


class StatusBar(Horizontal):
    """One line at the bottom. ``say`` sets the message (an error gets the ``-error`` class),
    ``progress`` the indexing part, ``library`` and ``audio`` the right-hand facts."""

    def compose(self) -> ComposeResult:
        yield Static("starting …", id="message")
        yield Static("", id="progress")
        yield Static("", id="library")
        yield Static("", id="audio")

    def say(self, text: str, *, error: bool = False) -> None:
        msg = self.query_one("#message", Static)
        msg.set_class(error, "-error")
        msg.update(text)

    def progress(self, done: int, total: int, *, stage: str = "indexing",
                 current: str = "") -> None:
        p = self.query_one("#progress", Static)
        if total <= 0 and not stage:
            p.update("")
            p.remove_class("-busy")
            return
        p.add_class("-busy")
        if total > 0:
            p.update(f"{stage} {done}/{total} {progress_bar(done, total)} {current[:24]}")
        else:
            p.update(f"{stage} …")

    def idle(self, text: str = "") -> None:
        p = self.query_one("#progress", Static)
        p.remove_class("-busy")
        p.update(text)

    def library(self, segments: int, folders: int) -> None:
        self.query_one("#library", Static).update(
            f"{segments:,} sounds · {folders} folder{'s' if folders != 1 else ''}")

    def audio(self, text: str, *, ok: bool) -> None:
        a = self.query_one("#audio", Static)
        a.set_class(not ok, "-off")
        a.update(text)

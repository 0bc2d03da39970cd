"""The "AI Brain" button: makes a song; glows and animates while the generator works."""

from __future__ import annotations

from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from loopmind.app.messages import GenerateRequested

_FRAMES = ("◐", "◓", "◑", "◒")
IDLE_LABEL = "✦ AI Brain"


class AIBrainButton(Static):
    """Click (or ctrl+g) to generate. While ``thinking`` the class ``-thinking`` makes it glow
    and a timer turns a spinner and pulses between two glow classes; ``stage`` says what the
    generator is doing."""

    thinking: reactive[bool] = reactive(False)
    stage: reactive[str] = reactive("")

    def __init__(self, **kwargs) -> None:
        super().__init__(IDLE_LABEL, **kwargs)
        self._frame = 0
        self._timer: Timer | None = None

    def on_click(self) -> None:
        if not self.thinking:
            self.post_message(GenerateRequested())

    def watch_thinking(self, thinking: bool) -> None:
        self.set_class(thinking, "-thinking")
        if thinking:
            self._frame = 0
            if self._timer is None:
                self._timer = self.set_interval(0.12, self._spin)
            else:
                self._timer.resume()
        else:
            if self._timer is not None:
                self._timer.pause()
            self.remove_class("-pulse")
            self.stage = ""
        self._show()

    def watch_stage(self, stage: str) -> None:
        self._show()

    def _spin(self) -> None:
        self._frame += 1
        self.set_class(self._frame % 8 < 4, "-pulse")
        self._show()

    def _show(self) -> None:
        if self.thinking:
            spin = _FRAMES[self._frame % len(_FRAMES)]
            self.update(f"{spin} AI Brain · {self.stage or 'thinking'}")
        else:
            self.update(IDLE_LABEL)

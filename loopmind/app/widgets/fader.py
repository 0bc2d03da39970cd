"""A vertical fader (the mixer's)."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from loopmind.app.levels import FADER_MAX_DB, FADER_MIN_DB, db_to_fraction, fraction_to_db


class Fader(Widget, can_focus=True):
    """A vertical fader: up/down move it 1 dB (shift: 6 dB), a click or a drag sets it."""

    BINDINGS = [
        Binding("up", "nudge(1)", "Louder", show=False),
        Binding("down", "nudge(-1)", "Softer", show=False),
        Binding("shift+up", "nudge(6)", "Louder", show=False),
        Binding("shift+down", "nudge(-6)", "Softer", show=False),
        Binding("0", "unity", "0 dB", show=False),
    ]

    value: reactive[float] = reactive(0.0)

    class Changed(Message):
        def __init__(self, fader: "Fader", value: float) -> None:
            super().__init__()
            self.fader = fader
            self.value = value

        @property
        def control(self) -> "Fader":
            return self.fader

    def __init__(self, value: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.set_reactive(Fader.value, float(value))
        self._dragging = False

    def set_value(self, value: float) -> None:
        """Move the fader without announcing it (the app set it)."""
        self.set_reactive(Fader.value, float(value))
        self.refresh()

    def validate_value(self, value: float) -> float:
        return max(FADER_MIN_DB, min(FADER_MAX_DB, float(value)))

    def watch_value(self, value: float) -> None:
        self.post_message(self.Changed(self, value))

    def action_nudge(self, db: float) -> None:
        self.value = round(self.value + db, 1)

    def action_unity(self) -> None:
        self.value = 0.0

    def _set_from_y(self, y: int) -> None:
        h = max(1, self.content_size.height)
        f = 1.0 - (min(max(y, 0), h - 1) + 0.5) / h
        self.value = fraction_to_db(f)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.focus()
        self._dragging = True
        self.capture_mouse()
        self._set_from_y(event.y)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self._set_from_y(event.y)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self._dragging = False
        self.release_mouse()

    def render(self) -> Text:
        h = max(1, self.content_size.height)
        w = max(1, self.content_size.width)
        knob = h - 1 - min(h - 1, int(db_to_fraction(self.value) * h))
        unity = h - 1 - min(h - 1, int(db_to_fraction(0.0) * h))
        lines = []
        for row in range(h):
            if row == knob:
                lines.append(Text("▀" * w if w > 1 else "■", style="bold"))
            elif row > knob:
                lines.append(Text("┃".center(w), style="dim" if row != unity else ""))
            else:
                lines.append(Text(("┊" if row != unity else "┼").center(w), style="dim"))
        return Text("\n").join(lines)

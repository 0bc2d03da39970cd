"""The browser's search box: words, tempo and key in one field ("dark 808 140 F minor"), and
role and kind filters. Changes are debounced so typing does not start a query per key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Select

DEBOUNCE_S = 0.25
KINDS = [("loops", "loop"), ("one-shots", "oneshot")]


class SearchBox(Horizontal):
    """Posts ``SearchBox.QueryChanged`` a moment after the last change."""

    class QueryChanged(Message):
        def __init__(self, text: str, role: str | None, kind: str | None) -> None:
            super().__init__()
            self.text = text
            self.role = role
            self.kind = kind

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search: dark 808 140 F minor", id="query")
        yield Select([], prompt="role", id="role", allow_blank=True, compact=True)
        yield Select(KINDS, prompt="kind", id="kind", allow_blank=True, compact=True)

    def set_roles(self, roles: list[str]) -> None:
        select = self.query_one("#role", Select)
        current = select.value
        select.set_options([(r, r) for r in roles])
        if current in roles:
            select.value = current

    @property
    def text(self) -> str:
        return self.query_one("#query", Input).value

    def values(self) -> tuple[str, str | None, str | None]:
        def pick(sel: Select) -> str | None:
            return None if sel.value is Select.NULL else str(sel.value)

        return (self.text, pick(self.query_one("#role", Select)),
                pick(self.query_one("#kind", Select)))

    def focus_query(self) -> None:
        self.query_one("#query", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._schedule()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._fire()  # enter searches at once

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._fire()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, self._fire)

    def _fire(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.post_message(self.QueryChanged(*self.values()))

"""The toolbar: transport (play, stop, loop), the song's tempo and key, its position, and the AI
Brain button."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Input, Label, Static

from loopmind.app.messages import SetKey, SetTempo, TransportCommand
from loopmind.app.widgets.ai_brain import AIBrainButton


class TransportButton(Static):
    """A transport button: click-only (the keyboard has space for play/stop)."""

    def __init__(self, label: str, command: str, **kwargs) -> None:
        super().__init__(label, **kwargs)
        self.command = command

    def on_click(self) -> None:
        self.post_message(TransportCommand(self.command))


def format_position(bars: float, seconds: float) -> str:
    """"bar.beat" (1-based) and minutes:seconds, e.g. ``  5.3  0:08.1``."""
    bar = int(bars)
    beat = int((bars - bar) * 4) + 1
    m, s = divmod(max(seconds, 0.0), 60.0)
    return f"{bar + 1:>3}.{beat}  {int(m)}:{s:04.1f}"


class Toolbar(Horizontal):
    """The studio's top bar. ``playing`` and ``looping`` toggle the ``-playing``/``-looping``
    classes that light the buttons."""

    playing: reactive[bool] = reactive(False)
    looping: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        yield Label("LOOPMIND", id="logo")
        yield TransportButton("▶", "play", id="play", classes="transport")
        yield TransportButton("■", "stop", id="stop", classes="transport")
        yield TransportButton("⟲", "loop", id="loop", classes="transport")
        yield Label("BPM", classes="field-label")
        yield Input("120", id="tempo", max_length=7, select_on_focus=True)
        yield Label("KEY", classes="field-label")
        yield Input("", id="key", placeholder="none", max_length=12, select_on_focus=True)
        yield Static(format_position(0, 0), id="position")
        yield AIBrainButton(id="brain")

    def watch_playing(self, playing: bool) -> None:
        self.set_class(playing, "-playing")

    def watch_looping(self, looping: bool) -> None:
        self.set_class(looping, "-looping")

    def show_song(self, bpm: float, key: str | None) -> None:
        """Show the song's tempo and key (unless the user is typing in the field)."""
        tempo = self.query_one("#tempo", Input)
        if not tempo.has_focus:
            tempo.value = f"{bpm:g}"
        k = self.query_one("#key", Input)
        if not k.has_focus:
            k.value = key or ""

    def show_position(self, bars: float, seconds: float) -> None:
        self.query_one("#position", Static).update(format_position(bars, seconds))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._commit(event.input)
        self.screen.set_focus(None)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        self._commit(event.input)

    def _commit(self, field: Input) -> None:
        if field.id == "tempo":
            try:
                bpm = float(field.value.strip().lower().removesuffix("bpm"))
            except ValueError:
                self.notify(f"tempo {field.value!r} is not a number", severity="warning")
                return
            self.post_message(SetTempo(bpm))
        elif field.id == "key":
            self.post_message(SetKey(field.value.strip() or None))

    @property
    def brain(self) -> AIBrainButton:
        return self.query_one(AIBrainButton)

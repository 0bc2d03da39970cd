"""One mixer channel strip: name, level meter, fader, gain, mute and solo."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from loopmind.app.levels import format_db
from loopmind.app.messages import SetChannel, SetMasterGain
from loopmind.app.widgets.fader import Fader
from loopmind.app.widgets.level_meter import LevelMeter

MASTER = "master"


class StripButton(Static):
    def __init__(self, label: str, what: str, **kwargs) -> None:
        super().__init__(label, **kwargs)
        self.what = what

    def on_click(self) -> None:
        strip = next(a for a in self.ancestors if isinstance(a, MixerStrip))
        strip.press(self.what)


class MixerStrip(Vertical):
    """A track's strip (or the master's, when ``track`` is ``MASTER``)."""

    def __init__(self, track: str, *, color: str | None = None, gain_db: float = 0.0,
                 mute: bool = False, solo: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.track = track
        self.color = color
        self.gain_db = gain_db
        self.mute = mute
        self.solo = solo
        if track == MASTER:
            self.add_class("-master")

    def compose(self) -> ComposeResult:
        name = Label(self.track[:9], classes="strip-name")
        if self.color:
            name.styles.color = self.color
        yield name
        with Horizontal(classes="strip-body"):
            yield LevelMeter(classes="strip-meter")
            yield Fader(self.gain_db, classes="strip-fader")
        yield Label(format_db(self.gain_db), classes="strip-db")
        if self.track != MASTER:
            with Horizontal(classes="strip-buttons"):
                yield StripButton("M", "mute", classes="strip-mute")
                yield StripButton("S", "solo", classes="strip-solo")

    def on_mount(self) -> None:
        self._show_buttons()

    @property
    def fader(self) -> Fader:
        return self.query_one(Fader)

    @property
    def meter(self) -> LevelMeter:
        return self.query_one(LevelMeter)

    def show(self, *, gain_db: float, mute: bool, solo: bool) -> None:
        """Show the channel's state (as set by the app, without announcing it)."""
        self.gain_db, self.mute, self.solo = gain_db, mute, solo
        self.fader.set_value(gain_db)
        self.query_one(".strip-db", Label).update(format_db(gain_db))
        self._show_buttons()

    def _show_buttons(self) -> None:
        if self.track == MASTER:
            return
        self.query_one(".strip-mute").set_class(self.mute, "-on")
        self.query_one(".strip-solo").set_class(self.solo, "-on")

    def on_fader_changed(self, event: Fader.Changed) -> None:
        event.stop()
        self.gain_db = event.value
        self.query_one(".strip-db", Label).update(format_db(event.value))
        if self.track == MASTER:
            self.post_message(SetMasterGain(event.value))
        else:
            self.post_message(SetChannel(self.track, gain_db=event.value))

    def press(self, what: str) -> None:
        if what == "mute":
            self.post_message(SetChannel(self.track, mute=not self.mute))
        elif what == "solo":
            self.post_message(SetChannel(self.track, solo=not self.solo))

"""The mixer: a fader and a level meter per track and for the master, and an Auto-Mix toggle.

The app sets what the strips show (``show_channels``) and feeds the meters while the song
plays (``show_levels``); moving a fader posts ``SetChannel``/``SetMasterGain``.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, HorizontalScroll, Vertical
from textual.reactive import reactive
from textual.widgets import Label, Static

from loopmind.app.messages import SetAutoMix
from loopmind.app.widgets.mixer_strip import MASTER, MixerStrip


class AutoMixToggle(Static):
    def on_click(self) -> None:
        mixer = next(a for a in self.ancestors if isinstance(a, MixerView))
        mixer.action_toggle_auto_mix()


class MixerView(Vertical):
    """Strips left to right in song order, the master last."""

    BINDINGS = [
        Binding("a", "toggle_auto_mix", "Auto-Mix"),
        Binding("left", "focus_strip(-1)", "Previous strip", show=False),
        Binding("right", "focus_strip(1)", "Next strip", show=False),
    ]

    auto_mix: reactive[bool] = reactive(True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._names: list[str] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="mixer-head"):
            yield AutoMixToggle("◆ Auto-Mix", id="auto-mix")
            yield Label("", id="mixer-hint")
        yield HorizontalScroll(MixerStrip(MASTER, id="strip-master"), id="strips")

    def watch_auto_mix(self, on: bool) -> None:
        toggle = self.query_one("#auto-mix", AutoMixToggle)
        toggle.set_class(on, "-on")
        toggle.update(("◆" if on else "◇") + " Auto-Mix " + ("on" if on else "off"))

    def action_toggle_auto_mix(self) -> None:
        self.post_message(SetAutoMix(not self.auto_mix))

    def action_focus_strip(self, direction: int) -> None:
        faders = [s.fader for s in self.query(MixerStrip)]
        if not faders:
            return
        focused = self.screen.focused
        i = faders.index(focused) if focused in faders else -direction
        faders[(i + direction) % len(faders)].focus()

    def focus_first(self) -> None:
        strips = list(self.query(MixerStrip))
        strips[0].fader.focus()

    async def show_channels(self, channels: list, *, master_gain_db: float,
                            auto_mix: bool) -> None:
        """Show the song's channels (``ChannelView``s in song order)."""
        self.auto_mix = auto_mix
        names = [c.name for c in channels]
        strips = self.query_one("#strips", HorizontalScroll)
        if names != self._names:
            self._names = names
            await strips.remove_children(".track-strip")
            new = [MixerStrip(c.name, color=c.color, gain_db=c.gain_db, mute=c.mute,
                              solo=c.solo, classes="track-strip") for c in channels]
            if new:
                await strips.mount_all(new, before=0)
        else:
            for strip, c in zip(self.query(".track-strip").results(MixerStrip), channels):
                strip.show(gain_db=c.gain_db, mute=c.mute, solo=c.solo)
        self.query_one("#strip-master", MixerStrip).show(gain_db=master_gain_db, mute=False,
                                                          solo=False)
        self.query_one("#mixer-hint", Label).update(
            "faders follow the auto-mixer; moving one turns it off" if auto_mix
            else "your faders; the master is normalized on export")

    def show_levels(self, levels: dict[str, tuple[float, float]],
                    master: tuple[float, float]) -> None:
        for strip in self.query(MixerStrip):
            if strip.track == MASTER:
                strip.meter.set_levels(*master)
            else:
                strip.meter.set_levels(*levels.get(strip.track, (0.0, 0.0)))

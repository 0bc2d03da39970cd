"""The channel rack: the song's channels with mute, solo and volume, and a 16-step sequencer
for one-shot channels.

One line per channel, drawn with the Line API; a click lands on a part of the line by column
(the M and S buttons, the volume bar, a step pad). Keys work on the channel and step under the
cursor: up/down pick a channel, left/right a step, ``x`` toggles it, ``m``/``s`` mute and solo,
``+``/``-`` change the volume. Sounds dragged from the browser land here as new channels.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from loopmind.app.levels import db_to_fraction, format_db, fraction_to_db
from loopmind.app.messages import AddSound, SetChannel, SoundDropped, ToggleStep

STEPS = 16
# columns of a channel line
X_NAME, W_NAME = 2, 12
X_MUTE, X_SOLO = 15, 18  # " M ", " S "
X_FADER, W_FADER = 22, 10
X_DB = 32
X_PADS = 40
VOLUME_STEP_DB = 1.0


def pad_x(step: int) -> int:
    """First column of a step's pad (pads are 2 wide, 1 apart, with a gap every beat)."""
    return X_PADS + step * 3 + step // 4


def pad_at(x: int) -> int | None:
    for step in range(STEPS):
        if pad_x(step) <= x < pad_x(step) + 2:
            return step
    return None


@dataclass
class ChannelView:
    """What one rack line shows."""

    name: str
    color: str | None
    mute: bool
    solo: bool
    gain_db: float
    steps: list[bool] | None  # None: a loop channel
    detail: str


class ChannelRack(ScrollView, can_focus=True):
    """The song's channels (``show_channels``); posts ``ToggleStep`` and ``SetChannel``."""

    ACCEPTS_DROPS = True
    COMPONENT_CLASSES = {"channel-rack--header", "channel-rack--cursor", "channel-rack--on",
                         "channel-rack--off", "channel-rack--off-beat", "channel-rack--pad-cursor",
                         "channel-rack--mute", "channel-rack--solo", "channel-rack--button",
                         "channel-rack--fader", "channel-rack--fader-empty", "channel-rack--hint",
                         "channel-rack--detail"}
    BINDINGS = [
        Binding("up", "move(-1, 0)", "Channel up", show=False),
        Binding("down", "move(1, 0)", "Channel down", show=False),
        Binding("left", "move(0, -1)", "Step left", show=False),
        Binding("right", "move(0, 1)", "Step right", show=False),
        Binding("x", "toggle_step", "Toggle step"),
        Binding("m", "mute", "Mute"),
        Binding("s", "solo", "Solo"),
        Binding("plus,equals_sign", "volume(1)", "Volume up", show=False),
        Binding("minus", "volume(-1)", "Volume down", show=False),
    ]

    row: reactive[int] = reactive(0)
    step: reactive[int] = reactive(0)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels: list[ChannelView] = []

    def show_channels(self, channels: list[ChannelView]) -> None:
        self.channels = channels
        self.virtual_size = Size(max(self.size.width, pad_x(STEPS)), len(channels) + 2)
        self.row = min(self.row, max(0, len(channels) - 1))
        self.refresh()

    @property
    def current(self) -> ChannelView | None:
        return self.channels[self.row] if 0 <= self.row < len(self.channels) else None

    # -- drawing ---------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"channel-rack--{name}")

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._header(width)
        i = self.scroll_offset.y + y - 1
        if i == len(self.channels):
            hint = "  + drop a sound here, or press a in the browser"
            return Strip([Segment(hint, self._style("hint"))]).adjust_cell_length(
                width, self.rich_style)
        if not 0 <= i < len(self.channels):
            return Strip.blank(width, self.rich_style)
        return self._channel_line(self.channels[i], i, width)

    def _header(self, width: int) -> Strip:
        base = self._style("header")
        text = list(f"  {'channel':<{W_NAME}} M  S   volume".ljust(X_PADS))
        for beat in range(4):
            x = pad_x(beat * 4)
            label = str(beat + 1)
            text += [" "] * (x - len(text))
            text[x:x + len(label)] = list(label)
        return Strip([Segment("".join(text), base)]).adjust_cell_length(width, base)

    def _channel_line(self, ch: ChannelView, i: int, width: int) -> Strip:
        base = self.rich_style
        is_cursor = i == self.row
        if is_cursor:
            base = base + self._style("cursor")
        segs: list[Segment] = [Segment("█ ", base + Style(color=ch.color or "#ff8c1a"))]
        segs.append(Segment(f"{ch.name[:W_NAME]:<{W_NAME}} ", base))
        segs.append(Segment(" M ", base + self._style("mute" if ch.mute else "button")))
        segs.append(Segment(" S ", base + self._style("solo" if ch.solo else "button")))
        segs.append(Segment(" ", base))
        filled = int(round(db_to_fraction(ch.gain_db) * W_FADER))
        segs.append(Segment("━" * filled, base + self._style("fader")))
        segs.append(Segment("─" * (W_FADER - filled), base + self._style("fader-empty")))
        segs.append(Segment(f"{format_db(ch.gain_db):>6}  ", base))
        if ch.steps is None:
            segs.append(Segment(ch.detail, base + self._style("detail")))
        else:
            for step, on in enumerate(ch.steps):
                if step and step % 4 == 0:
                    segs.append(Segment(" ", base))
                if is_cursor and step == self.step and self.has_focus:
                    style = self._style("pad-cursor") + (self._style("on") if on else Style())
                elif on:
                    style = self._style("on") + Style(color=ch.color) if ch.color else \
                        self._style("on")
                else:
                    style = self._style("off-beat" if (step // 4) % 2 else "off")
                segs.append(Segment("██" if on else "▒▒", style))
                segs.append(Segment(" ", base))
        strip = Strip(segs).adjust_cell_length(max(width, pad_x(STEPS) + 2), base)
        return strip.crop(self.scroll_offset.x, self.scroll_offset.x + width)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def watch_row(self) -> None:
        top = self.scroll_offset.y
        visible = max(1, self.size.height - 2)
        if self.row < top:
            self.scroll_to(y=self.row, animate=False)
        elif self.row >= top + visible:
            self.scroll_to(y=self.row - visible + 1, animate=False)
        self.refresh()

    def watch_step(self) -> None:
        self.refresh()

    # -- keys --------------------------------------------------------------------------------

    def action_move(self, d_row: int, d_step: int) -> None:
        if self.channels:
            self.row = max(0, min(len(self.channels) - 1, self.row + d_row))
        self.step = (self.step + d_step) % STEPS

    def action_toggle_step(self) -> None:
        ch = self.current
        if ch is not None and ch.steps is not None:
            self.post_message(ToggleStep(ch.name, self.step))

    def action_mute(self) -> None:
        ch = self.current
        if ch is not None:
            self.post_message(SetChannel(ch.name, mute=not ch.mute))

    def action_solo(self) -> None:
        ch = self.current
        if ch is not None:
            self.post_message(SetChannel(ch.name, solo=not ch.solo))

    def action_volume(self, direction: int) -> None:
        ch = self.current
        if ch is not None:
            self.post_message(SetChannel(ch.name, gain_db=ch.gain_db + direction *
                                         VOLUME_STEP_DB))

    # -- mouse -----------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        i = self.scroll_offset.y + event.y - 1
        if event.y < 1 or not 0 <= i < len(self.channels):
            return
        ch = self.channels[i]
        self.row = i
        x = event.x + self.scroll_offset.x
        if X_MUTE <= x < X_MUTE + 3:
            self.post_message(SetChannel(ch.name, mute=not ch.mute))
        elif X_SOLO <= x < X_SOLO + 3:
            self.post_message(SetChannel(ch.name, solo=not ch.solo))
        elif X_FADER <= x < X_FADER + W_FADER:
            f = (x - X_FADER + 1) / W_FADER
            self.post_message(SetChannel(ch.name, gain_db=fraction_to_db(f)))
        elif ch.steps is not None and (step := pad_at(x)) is not None:
            self.step = step
            self.post_message(ToggleStep(ch.name, step))

    def on_sound_dropped(self, event: SoundDropped) -> None:
        event.stop()
        self.post_message(AddSound(event.hit))

"""A small waveform of the selected sound: its min/max envelope in braille dots.

The envelope is computed by the browser's worker; this widget only draws it at its size.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class Waveform(Widget):
    """Shows the envelope of one segment, or a caption when there is none."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.segment_id: int | None = None
        self._lo = None
        self._hi = None
        self._caption = "no sound selected"

    def show(self, segment_id: int, lo, hi) -> None:
        self.segment_id = segment_id
        self._lo, self._hi = lo, hi
        self.set_class(False, "-empty")
        self.refresh()

    def clear(self, caption: str = "no sound selected") -> None:
        self.segment_id = None
        self._lo = self._hi = None
        self._caption = caption
        self.set_class(True, "-empty")
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        if self._lo is None or height < 1:
            return Text(self._caption, overflow="ellipsis")
        from loopmind.app.envelope import braille

        lines = braille(self._lo, self._hi, width, max(1, height))
        return Text("\n".join(lines), no_wrap=True)

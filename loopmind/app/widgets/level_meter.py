"""A vertical stereo level meter (left and right peaks, -60..0 dBFS)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from loopmind.app.levels import meter_fraction

_HOT = 0.9  # top tenth of the travel (-6 dBFS and up) is drawn hot


class LevelMeter(Widget):
    """Two bars that follow ``set_levels(left, right)`` (linear peaks)."""

    COMPONENT_CLASSES = {"level-meter--low", "level-meter--hot", "level-meter--off"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.left = 0.0
        self.right = 0.0

    def set_levels(self, left: float, right: float) -> None:
        if (left, right) != (self.left, self.right):
            self.left, self.right = float(left), float(right)
            self.refresh()

    def render(self) -> Text:
        h = max(1, self.content_size.height)
        lit = [int(round(meter_fraction(v) * h)) for v in (self.left, self.right)]
        low = self.get_component_rich_style("level-meter--low")
        hot = self.get_component_rich_style("level-meter--hot")
        off = self.get_component_rich_style("level-meter--off")
        out = Text()
        for row in range(h):
            level_from_bottom = h - row
            for n in lit:
                if level_from_bottom <= n:
                    out.append("█", hot if level_from_bottom > _HOT * h else low)
                else:
                    out.append("▁", off)
            if row < h - 1:
                out.append("\n")
        return out

"""The playlist: the song's tracks by bars, with colored section blocks, clips, zoom, scroll
and a moving playhead.

A ``ScrollView`` drawn line by line: the bar ruler and the sections stay on top and the track
names on the left while the timeline scrolls under them. ``+``/``-`` zoom (columns per bar),
left/right scroll a bar, up/down pick a track; a click on the ruler moves the playhead, a click
on a clip selects it and delete removes it. Sounds dragged from the browser land where they are
let go: on that bar, on that track when it holds the same kind of sound.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from loopmind.app.messages import AddSound, RemoveClip, SeekTo, SoundDropped

GUTTER = 14
HEADER_LINES = 2
ZOOMS = (1, 2, 4, 8, 16)  # columns per bar
MIN_BARS_SHOWN = 16
SECTION_COLORS = {"intro": "#3b82f6", "verse": "#a855f7", "pre-chorus": "#c084fc",
                  "hook": "#ff8c1a", "drop": "#ff8c1a", "break": "#22d3ee",
                  "bridge": "#f472b6", "outro": "#60a5fa"}
_INK = "#1e1f22"  # text on a colored block


def _merge(cells: list[tuple[str, Style]]) -> list[Segment]:
    """Cells (a character and its style each) as few segments."""
    out: list[Segment] = []
    text, style = "", None
    for ch, st in cells:
        if st == style:
            text += ch
        else:
            if text:
                out.append(Segment(text, style))
            text, style = ch, st
    if text:
        out.append(Segment(text, style))
    return out


class PlaylistView(ScrollView, can_focus=True):
    """Shows ``show_song(song)``; ``set_playhead(bars)`` moves the playhead."""

    ACCEPTS_DROPS = True
    COMPONENT_CLASSES = {"playlist--ruler", "playlist--gutter", "playlist--grid",
                         "playlist--grid-alt", "playlist--playhead", "playlist--cursor",
                         "playlist--selected"}
    BINDINGS = [
        Binding("plus,equals_sign", "zoom(1)", "Zoom in"),
        Binding("minus", "zoom(-1)", "Zoom out"),
        Binding("left", "scroll_bars(-1)", "Scroll left", show=False),
        Binding("right", "scroll_bars(1)", "Scroll right", show=False),
        Binding("up", "move(-1)", "Track up", show=False),
        Binding("down", "move(1)", "Track down", show=False),
        Binding("home", "to_start", "Start", show=False),
        Binding("delete,backspace", "remove_clip", "Remove clip"),
    ]

    zoom: reactive[int] = reactive(2)  # index into ZOOMS
    row: reactive[int] = reactive(0)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.song = None
        self.playhead: float | None = None
        self.selected: tuple[str, int] | None = None
        self.follow = True

    @property
    def cols_per_bar(self) -> int:
        return ZOOMS[self.zoom]

    def show_song(self, song) -> None:
        self.song = song
        if self.selected is not None:
            t = song.track(self.selected[0])
            if t is None or self.selected[1] >= len(t.clips):
                self.selected = None
        self.row = min(self.row, max(0, len(song.tracks) - 1))
        self._resize_virtual()
        self.refresh()

    def _bars_shown(self) -> int:
        bars = self.song.bars if self.song is not None else 0
        return max(MIN_BARS_SHOWN, bars + 4)

    def _resize_virtual(self) -> None:
        n_tracks = len(self.song.tracks) if self.song is not None else 0
        self.virtual_size = Size(GUTTER + self._bars_shown() * self.cols_per_bar,
                                 n_tracks + HEADER_LINES + 1)

    def set_playhead(self, bars: float | None) -> None:
        """Move the playhead (None hides it); while following, keep it in view."""
        self.playhead = bars
        if bars is not None and self.follow:
            col = int(bars * self.cols_per_bar)
            view = max(1, self.size.width - GUTTER)
            if not self.scroll_offset.x <= col < self.scroll_offset.x + view:
                self.scroll_to(x=max(0, col - view // 8), animate=False)
        self.refresh()

    def watch_zoom(self) -> None:
        self._resize_virtual()
        self.refresh()

    def watch_row(self) -> None:
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"playlist--{name}")

    def _timeline(self, width: int):
        """(first timeline column shown, number of columns) for this width."""
        return self.scroll_offset.x, max(0, width - GUTTER)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if self.song is None:
            return Strip.blank(width, base)
        x0, n = self._timeline(width)
        cpb = self.cols_per_bar
        if y == 0:
            gutter = Segment(f" bars ×{cpb}".ljust(GUTTER), self._style("gutter"))
            cells = self._ruler(x0, n, cpb)
        elif y == 1:
            gutter = Segment(" sections".ljust(GUTTER), self._style("gutter"))
            cells = self._sections(x0, n, cpb)
        else:
            i = self.scroll_offset.y + y - HEADER_LINES
            tracks = self.song.tracks
            if i == len(tracks):
                hint = "  drop sounds here ▸"
                return Strip([Segment(hint, self._style("grid"))]).adjust_cell_length(width,
                                                                                       base)
            if not 0 <= i < len(tracks):
                return Strip.blank(width, base)
            t = tracks[i]
            name_style = self._style("gutter")
            if i == self.row and self.has_focus:
                name_style = name_style + self._style("cursor")
            gutter_segs = [Segment("▌", Style(color=t.color or "#ff8c1a")),
                           Segment(f"{t.name[:GUTTER - 2]:<{GUTTER - 1}}", name_style)]
            cells = self._track(t, x0, n, cpb)
            cells = self._with_playhead(cells, x0, cpb, "│")
            return Strip(gutter_segs + _merge(cells)).adjust_cell_length(width, base)
        cells = self._with_playhead(cells, x0, cpb, "▼" if y == 0 else "│")
        return Strip([gutter] + _merge(cells)).adjust_cell_length(width, base)

    def _grid_cell(self, col: int, cpb: int) -> tuple[str, Style]:
        bar = col // cpb
        style = self._style("grid-alt" if (bar // 4) % 2 else "grid")
        return ("┆" if col % cpb == 0 and cpb > 1 else " ", style)

    def _ruler(self, x0: int, n: int, cpb: int) -> list[tuple[str, Style]]:
        style = self._style("ruler")
        chars = [" "] * n
        every = 1 if cpb >= 4 else (2 if cpb == 2 else 4)
        for c in range(n):
            col = x0 + c
            if col % cpb == 0 and (col // cpb) % every == 0:
                label = str(col // cpb + 1)
                for k, ch in enumerate(label):
                    if c + k < n:
                        chars[c + k] = ch
        return [(ch, style) for ch in chars]

    def _sections(self, x0: int, n: int, cpb: int) -> list[tuple[str, Style]]:
        cells = [self._grid_cell(x0 + c, cpb) for c in range(n)]
        for s in self.song.sections:
            color = SECTION_COLORS.get(s.name, "#a855f7")
            style = Style(bgcolor=color, color=_INK, bold=True)
            a, b = s.start_bar * cpb, s.end_bar * cpb
            label = f" {s.name}"
            for col in range(max(a, x0), min(b, x0 + n)):
                k = col - a
                ch = label[k] if k < len(label) and col < b - 1 else " "
                if col == b - 1:
                    ch = "▕" if b - a > 1 else " "
                cells[col - x0] = (ch, style)
        return cells

    def _track(self, t, x0: int, n: int, cpb: int) -> list[tuple[str, Style]]:
        from loopmind.app.songedit import clip_label

        cells = [self._grid_cell(x0 + c, cpb) for c in range(n)]
        color = t.color or "#ff8c1a"
        for ci, clip in enumerate(t.clips):
            style = Style(bgcolor=color, color=_INK)
            if self.selected == (t.name, ci):
                style = style + self._style("selected")
            a, b = clip.start_bar * cpb, clip.end_bar * cpb
            stepped = clip.is_pattern or clip.is_sequence
            if stepped:
                on = ({int(e.step) for e in clip.events or [] if e.velocity > 0}
                      if clip.is_sequence else {int(s) for s, v in clip.steps or [] if v > 0})
                steps_per_col = 16 / cpb
            else:
                label = clip_label(clip)
            for col in range(max(a, x0), min(b, x0 + n)):
                k = col - a
                if stepped:
                    lo = int(k * steps_per_col)
                    hi = max(lo + 1, int((k + 1) * steps_per_col))
                    ch = "▪" if any(s in on for s in range(lo, hi)) else "·"
                else:
                    ch = label[k - 1] if 1 <= k <= len(label) else " "
                if k == 0:
                    ch = "▏" if not stepped else ch
                cells[col - x0] = (ch, style)
        return cells

    def _with_playhead(self, cells, x0: int, cpb: int, mark: str):
        if self.playhead is None:
            return cells
        c = int(self.playhead * cpb) - x0
        if 0 <= c < len(cells):
            _, st = cells[c]
            cells[c] = (mark, st + self._style("playhead"))
        return cells

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- keys ------------------------------------------------------------------------------

    def action_zoom(self, direction: int) -> None:
        self.zoom = max(0, min(len(ZOOMS) - 1, self.zoom + direction))

    def action_scroll_bars(self, bars: int) -> None:
        self.follow = False
        self.scroll_to(x=max(0, self.scroll_offset.x + bars * self.cols_per_bar),
                       animate=False)

    def action_to_start(self) -> None:
        self.follow = True
        self.scroll_to(x=0, animate=False)

    def action_move(self, d: int) -> None:
        if self.song is not None and self.song.tracks:
            self.row = max(0, min(len(self.song.tracks) - 1, self.row + d))

    def action_remove_clip(self) -> None:
        if self.selected is not None:
            track, index = self.selected
            self.selected = None
            self.post_message(RemoveClip(track, index))

    # -- mouse -----------------------------------------------------------------------------

    def position_at(self, x: int, y: int) -> tuple[int | None, str | None]:
        """(bar, track name) under a point of this widget (None where there is none)."""
        if self.song is None or x < GUTTER:
            return None, None
        bar = (self.scroll_offset.x + x - GUTTER) // self.cols_per_bar
        i = self.scroll_offset.y + y - HEADER_LINES
        track = self.song.tracks[i].name if y >= HEADER_LINES and \
            0 <= i < len(self.song.tracks) else None
        return max(0, int(bar)), track

    def on_click(self, event: events.Click) -> None:
        bar, track = self.position_at(event.x, event.y)
        if bar is None:
            return
        if event.y == 0:
            self.post_message(SeekTo(float(bar)))
            return
        if track is None:
            return
        t = self.song.track(track)
        self.row = self.song.tracks.index(t)
        self.selected = next(((track, ci) for ci, c in enumerate(t.clips)
                              if c.start_bar <= bar < c.end_bar), None)
        self.refresh()

    def on_sound_dropped(self, event: SoundDropped) -> None:
        event.stop()
        region = self.content_region
        bar, track = self.position_at(event.screen_x - region.x, event.screen_y - region.y)
        self.post_message(AddSound(event.hit, start_bar=bar or 0, track=track))

"""The browser's result table: a virtual table over any number of sounds.

The table is a ``ScrollView`` that draws only the lines on screen (``render_line``). It holds
the result's ordered ids; rows are read a page (200) at a time by a thread worker when a line
that needs them is drawn, and kept in a small LRU of pages, so neither drawing nor scrolling
depends on the size of the library. A row not read yet shows as "…" until its page arrives.

Mouse: a click selects, a double click auditions, and dragging a row onto the channel rack or
the playlist drops the sound there (``SoundDropped`` is posted to the widget under the pointer
that has ``ACCEPTS_DROPS``).
"""

from __future__ import annotations

import os
from collections import OrderedDict

from rich.segment import Segment
from textual import events, work
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from loopmind.app.messages import (AuditionSound, DragStarted, PageLoaded, SoundDropped,
                                   SoundHighlighted)
from loopmind.app.pager import PAGE_ROWS
from loopmind.app.workers import ForwardsWorkerErrors

PAGES_KEPT = 40
# (title, width, align); the name column takes what is left
COLUMNS = (("role", 9, "<"), ("BPM", 6, ">"), ("key", 8, "<"), ("bars", 4, ">"),
           ("dur", 6, ">"))
_FIXED = sum(w for _, w, _ in COLUMNS) + len(COLUMNS) + 1


def display_name(hit) -> str:
    name = os.path.basename(hit.path)
    return f"{name} ·{hit.segment + 1}" if hit.segment else name


def _num(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def row_cells(hit) -> list[str]:
    """The table's cells for one sound: name, role, BPM, key, bars, duration."""
    return [display_name(hit), hit.role or "-", _num(hit.bpm, ".1f"), hit.key or "-",
            _num(hit.bars, "g"), f"{hit.duration_s:.2f}s"]


def _fit(text: str, width: int, align: str = "<") -> str:
    if width <= 0:
        return ""
    if len(text) > width:
        return text[:max(0, width - 1)] + "…"
    return text.rjust(width) if align == ">" else text.ljust(width)


def format_row(cells: list[str], width: int) -> str:
    name_w = max(8, width - _FIXED)
    parts = [" " + _fit(cells[0], name_w)]
    for (_, w, align), cell in zip(COLUMNS, cells[1:]):
        parts.append(_fit(cell, w, align))
    return _fit(" ".join(parts), width)


class SampleTable(ForwardsWorkerErrors, ScrollView, can_focus=True):
    """Rows of sounds, paged in from the library as they are scrolled to."""

    ACCEPTS_DROPS = False
    COMPONENT_CLASSES = {"sample-table--header", "sample-table--cursor",
                         "sample-table--cursor-blurred", "sample-table--loading",
                         "sample-table--odd"}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move_page(-1)", "Page up", show=False),
        Binding("pagedown", "move_page(1)", "Page down", show=False),
        Binding("home", "move_to(0)", "First", show=False),
        Binding("end", "move_to(-1)", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.library = None
        self.result = None
        self._pages: OrderedDict[int, list] = OrderedDict()
        self._pending: set[int] = set()
        self._press: tuple[int, int, object] | None = None  # (screen x, y, hit) of a press
        self._dragging = False

    # -- the data ----------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return 0 if self.result is None else len(self.result)

    def show_result(self, result) -> None:
        """Show a new result (a ``BrowseResult``) from its first row."""
        self.result = result
        self._pages.clear()
        self._pending.clear()
        self.virtual_size = Size(self.size.width, self.row_count + 1)
        self.scroll_to(0, 0, animate=False)
        if self.cursor == 0:
            self._announce()
        self.cursor = 0
        self.refresh()

    def hit_at(self, row: int):
        """The sound on a row, or None when its page has not been read yet."""
        if self.result is None or not 0 <= row < self.row_count:
            return None
        page = self._pages.get(row // PAGE_ROWS)
        if page is None:
            return None
        self._pages.move_to_end(row // PAGE_ROWS)
        i = row % PAGE_ROWS
        return page[i] if i < len(page) else None

    @property
    def current(self):
        """The sound under the cursor (None when there is none or it is not read yet)."""
        return self.hit_at(self.cursor)

    def _request_page(self, page: int) -> None:
        if page in self._pages or page in self._pending or self.library is None:
            return
        self._pending.add(page)
        self._load_page(self.result, page)

    @work(thread=True, group="browser-pages", exit_on_error=False,
          description="reading sounds")
    def _load_page(self, result, page: int) -> None:
        from loopmind.app.pager import fetch_page

        hits = fetch_page(self.library, result, page)
        self.post_message(PageLoaded(result.token, page, hits))

    def on_page_loaded(self, event: PageLoaded) -> None:
        event.stop()
        if self.result is None or event.token != self.result.token:
            return
        self._pending.discard(event.page)
        self._pages[event.page] = event.hits
        while len(self._pages) > PAGES_KEPT:
            self._pages.popitem(last=False)
        if self.cursor // PAGE_ROWS == event.page:
            self._announce()
        self.refresh()

    # -- drawing -----------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.row_count + 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            title = format_row([c[0] for c in (("name", 0, "<"),) + COLUMNS], width)
            return Strip([Segment(title, self.get_component_rich_style("sample-table--header"))],
                         width)
        row = self.scroll_offset.y + y - 1
        if self.result is None or row >= self.row_count:
            return Strip.blank(width, self.rich_style)
        hit = self.hit_at(row)
        if hit is None:
            self._request_page(row // PAGE_ROWS)
            style = self.get_component_rich_style("sample-table--loading")
            text = _fit("  …", width)
        else:
            text = format_row(row_cells(hit), width)
            style = self.rich_style
            if row % 2:
                style = style + self.get_component_rich_style("sample-table--odd")
        if row == self.cursor:
            style = style + self.get_component_rich_style(
                "sample-table--cursor" if self.has_focus else "sample-table--cursor-blurred")
        return Strip([Segment(text, style)], width)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- the cursor ----------------------------------------------------------------------------

    def validate_cursor(self, cursor: int) -> int:
        return max(0, min(cursor, self.row_count - 1)) if self.row_count else 0

    def watch_cursor(self, old: int, new: int) -> None:
        visible = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False)
        self._announce()
        self.refresh()

    def _announce(self) -> None:
        hit = self.current
        if hit is not None:
            self.post_message(SoundHighlighted(hit))

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_move_page(self, delta: int) -> None:
        self.cursor += delta * max(1, self.size.height - 2)

    def action_move_to(self, row: int) -> None:
        self.cursor = row if row >= 0 else self.row_count - 1

    def _row_at(self, y: int) -> int | None:
        if y < 1:
            return None
        row = self.scroll_offset.y + y - 1
        return row if row < self.row_count else None

    # -- mouse: select, audition, drag ---------------------------------------------------------

    def on_mouse_down(self, event: events.MouseDown) -> None:
        row = self._row_at(event.y)
        if row is None:
            return
        self.focus()
        self.cursor = row
        hit = self.hit_at(row)
        if hit is not None:
            self._press = (event.screen_x, event.screen_y, hit)
            self._dragging = False
            self.capture_mouse()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._press is None:
            return
        x, y, hit = self._press
        if not self._dragging and abs(event.screen_x - x) + abs(event.screen_y - y) >= 2:
            self._dragging = True
            self.add_class("-dragging")
            self.post_message(DragStarted(hit))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        press, dragging = self._press, self._dragging
        self._press, self._dragging = None, False
        self.remove_class("-dragging")
        self.release_mouse()
        if press is None or not dragging:
            return
        target = self._drop_target(event.screen_x, event.screen_y)
        if target is not None:
            target.post_message(SoundDropped(press[2], event.screen_x, event.screen_y))

    def _drop_target(self, x: int, y: int):
        try:
            widget, _ = self.screen.get_widget_at(x, y)
        except Exception:  # noqa: BLE001 - let go outside every widget
            return None
        node = widget
        while node is not None:
            if getattr(node, "ACCEPTS_DROPS", False):
                return node
            node = node.parent
        return None

    def on_click(self, event: events.Click) -> None:
        if event.chain == 2:
            hit = self.current
            if hit is not None:
                self.post_message(AuditionSound(hit))

"""The browser pane: watched folders, search, the result table, a waveform of the selected
sound, and "more like this" / "fits with" on it.

Queries run in thread workers (a newer query cancels an older one) and answer with the
matching ids; the table reads rows as it scrolls. The waveform is computed in its own worker a
moment after the cursor stops.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Label, Static

from loopmind.app.messages import (AddSound, AuditionSound, FolderChosen, SoundHighlighted,
                                   SoundsFound, WaveformComputed)
from loopmind.app.pager import BrowseQuery
from loopmind.app.widgets.folder_tree import FolderTree
from loopmind.app.widgets.sample_table import SampleTable, display_name
from loopmind.app.widgets.search_box import SearchBox
from loopmind.app.widgets.waveform import Waveform
from loopmind.app.workers import ForwardsWorkerErrors

WAVEFORM_DELAY_S = 0.12
SIMILAR_K = 50


class ActionButton(Static):
    """A click-only button of the browser (keys: see the help screen)."""

    def __init__(self, label: str, action: str, **kwargs) -> None:
        super().__init__(label, **kwargs)
        self.action = action

    def on_click(self) -> None:
        browser = next(a for a in self.ancestors if isinstance(a, Browser))
        getattr(browser, f"action_{self.action}")()


class Browser(ForwardsWorkerErrors, Vertical):
    """The sound browser. ``attach`` gives it the library once it is open."""

    BINDINGS = [
        Binding("a", "add_to_rack", "Add to rack"),
        Binding("m", "more_like_this", "More like this"),
        Binding("f", "fits_with", "Fits with"),
        Binding("escape", "all_sounds", "All sounds", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.library = None
        self.catalog = None
        self._searcher = None
        self.query = BrowseQuery()
        self._wave_timer: Timer | None = None
        self._pending_hit = None

    def compose(self) -> ComposeResult:
        yield FolderTree(id="folders")
        yield SearchBox(id="search")
        yield Label("opening the library …", id="result-label")
        yield SampleTable(id="results")
        yield Label("", id="selection-label")
        yield Waveform(id="waveform")
        with Horizontal(id="browser-actions"):
            yield ActionButton("▶ audition", "audition", classes="action")
            yield ActionButton("+ rack", "add_to_rack", classes="action")
            yield ActionButton("≈ more like this", "more_like_this", classes="action")
            yield ActionButton("⊕ fits with", "fits_with", classes="action")

    @property
    def table(self) -> SampleTable:
        return self.query_one(SampleTable)

    def attach(self, library, folders: list[str]) -> None:
        """Start browsing ``library`` (its vector index, ``catalog``, comes later)."""
        self.library = library
        self._searcher = None
        self.table.library = library
        self.query_one(FolderTree).set_folders(folders)
        self.run_query()

    def show_folders(self, folders: list[str]) -> None:
        self.query_one(FolderTree).set_folders(folders)

    def show_roles(self, roles: list[str]) -> None:
        self.query_one(SearchBox).set_roles(roles)

    # -- queries ---------------------------------------------------------------------------

    def run_query(self, query: BrowseQuery | None = None) -> None:
        if query is not None:
            self.query = query
        if self.library is not None:
            self._find_sounds(self.query)

    @work(thread=True, exclusive=True, group="browser-query", exit_on_error=False,
          description="searching")
    def _find_sounds(self, query: BrowseQuery) -> None:
        from loopmind.app.pager import find_ids

        self.post_message(SoundsFound(find_ids(self.library, query)))

    def searcher(self):
        if self._searcher is None or self._searcher._catalog is not self.catalog:
            from loopmind.index.search import Searcher

            self._searcher = Searcher(self.library, self.catalog)
        return self._searcher

    @work(thread=True, exclusive=True, group="browser-query", exit_on_error=False,
          description="finding similar sounds")
    def _find_similar(self, hit) -> None:
        from loopmind.app.pager import from_results

        res = self.searcher().similar(hit.id, k=SIMILAR_K)
        self.post_message(SoundsFound(from_results(res, f"like {display_name(hit)}")))

    @work(thread=True, exclusive=True, group="browser-query", exit_on_error=False,
          description="finding sounds that fit")
    def _find_fits(self, hit) -> None:
        from loopmind.app.pager import from_results

        res = self.searcher().fits([hit.id], k=SIMILAR_K)
        self.post_message(SoundsFound(from_results(res, f"fits with {display_name(hit)}")))

    def on_sounds_found(self, event: SoundsFound) -> None:
        event.stop()
        result = event.result
        text = f"{len(result):,} · {result.label}"
        if result.note:
            text += f" — {result.note}"
        self.query_one("#result-label", Label).update(text)
        self.table.show_result(result)
        if not len(result):
            self.query_one(Waveform).clear("nothing found")
            self.query_one("#selection-label", Label).update("")

    def on_search_box_query_changed(self, event: SearchBox.QueryChanged) -> None:
        event.stop()
        self.run_query(BrowseQuery(text=event.text, role=event.role, kind=event.kind,
                                   folder=self.query.folder))

    def on_folder_chosen(self, event: FolderChosen) -> None:
        event.stop()
        q = self.query
        self.run_query(BrowseQuery(text=q.text, role=q.role, kind=q.kind, folder=event.path))

    # -- the selection -------------------------------------------------------------------------

    def on_sound_highlighted(self, event: SoundHighlighted) -> None:
        # the app hears of it too (it prepares the audition), the waveform waits a moment
        hit = event.hit
        self._pending_hit = hit
        self.query_one("#selection-label", Label).update(
            f"{display_name(hit)} · {hit.kind} · {hit.role or 'unknown'}"
            + (f" · {', '.join(hit.tags[:4])}" if hit.tags else ""))
        if self._wave_timer is not None:
            self._wave_timer.stop()
        self._wave_timer = self.set_timer(WAVEFORM_DELAY_S, self._start_waveform)

    def _start_waveform(self) -> None:
        hit = self._pending_hit
        if hit is not None and self.query_one(Waveform).segment_id != hit.id:
            self._draw_waveform(hit)

    @work(thread=True, exclusive=True, group="waveform", exit_on_error=False,
          description="drawing the waveform")
    def _draw_waveform(self, hit) -> None:
        from loopmind.app.envelope import segment_envelope
        from loopmind.app.workers import one_line
        from loopmind.errors import LoopMindError

        try:
            lo, hi = segment_envelope(hit.path, hit.start_s, hit.end_s)
        except LoopMindError as exc:  # a file gone or unreadable: said in place of the picture
            self.post_message(WaveformComputed(hit.id, None, None, error=one_line(exc)))
            return
        self.post_message(WaveformComputed(hit.id, lo, hi))

    def on_waveform_computed(self, event: WaveformComputed) -> None:
        event.stop()
        hit = self._pending_hit
        if hit is None or hit.id != event.segment_id:
            return
        if event.error:
            self.query_one(Waveform).clear(f"cannot draw it: {event.error}")
        else:
            self.query_one(Waveform).show(event.segment_id, event.lo, event.hi)

    # -- actions on the selection ------------------------------------------------------------

    @property
    def selection(self):
        return self.table.current

    def _need_selection(self):
        hit = self.selection
        if hit is None:
            self.notify("select a sound first", severity="warning")
        return hit

    def action_audition(self) -> None:
        hit = self._need_selection()
        if hit is not None:
            self.post_message(AuditionSound(hit))

    def action_add_to_rack(self) -> None:
        hit = self._need_selection()
        if hit is not None:
            self.post_message(AddSound(hit))

    def action_more_like_this(self) -> None:
        hit = self._need_selection()
        if hit is not None and self.library is not None:
            self._find_similar(hit)

    def action_fits_with(self) -> None:
        hit = self._need_selection()
        if hit is not None and self.library is not None:
            self._find_fits(hit)

    def action_all_sounds(self) -> None:
        self.run_query()

    def focus_search(self) -> None:
        self.query_one(SearchBox).focus_query()


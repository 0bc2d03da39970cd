"""The studio: toolbar on top, the browser on the left, the playlist, channel rack or mixer
on the right, the status bar below.

F5, F6 and F9 bring the playlist, the channel rack and the mixer to the front (and focus
them); F8 shows, focuses or hides the browser; ctrl+f goes to the search box.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import ContentSwitcher

from loopmind.app.widgets.browser import Browser
from loopmind.app.widgets.channel_rack import ChannelRack
from loopmind.app.widgets.mixer import MixerView
from loopmind.app.widgets.playlist import PlaylistView
from loopmind.app.widgets.status_bar import StatusBar
from loopmind.app.widgets.toolbar import Toolbar

PANE_TITLES = {"playlist": "PLAYLIST · F5", "rack": "CHANNEL RACK · F6", "mixer": "MIXER · F9"}


class StudioScreen(Screen):
    AUTO_FOCUS = "SampleTable"
    BINDINGS = [
        Binding("f5", "show_pane('playlist')", "Playlist"),
        Binding("f6", "show_pane('rack')", "Channel rack"),
        Binding("f8", "toggle_browser", "Browser"),
        Binding("f9", "show_pane('mixer')", "Mixer"),
        Binding("ctrl+f", "search", "Search"),
    ]

    def compose(self) -> ComposeResult:
        yield Toolbar(id="toolbar")
        with Horizontal(id="workspace"):
            yield Browser(id="browser")
            with ContentSwitcher(initial="rack", id="main"):
                yield PlaylistView(id="playlist")
                yield ChannelRack(id="rack")
                yield MixerView(id="mixer")
        yield StatusBar(id="status")

    def on_mount(self) -> None:
        self.query_one(Browser).border_title = "BROWSER · F8"
        self._title_main("rack")

    def _title_main(self, name: str) -> None:
        self.query_one("#main", ContentSwitcher).border_title = PANE_TITLES[name]

    @property
    def current_pane(self) -> str:
        return self.query_one("#main", ContentSwitcher).current or "rack"

    def action_show_pane(self, name: str) -> None:
        self.query_one("#main", ContentSwitcher).current = name
        self._title_main(name)
        if name == "mixer":
            self.query_one(MixerView).focus_first()
        else:
            self.query_one(f"#{name}").focus()

    def action_toggle_browser(self) -> None:
        browser = self.query_one(Browser)
        if not browser.display:
            browser.display = True
            browser.table.focus()
        elif browser.has_focus_within:
            browser.display = False
            self.action_show_pane(self.current_pane)
        else:
            browser.table.focus()

    def action_search(self) -> None:
        browser = self.query_one(Browser)
        browser.display = True
        browser.focus_search()

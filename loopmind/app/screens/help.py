"""The help screen (``?``): every key and mouse gesture of the studio."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]LoopMind studio[/b]

[b $accent]Anywhere[/]
  F5            playlist            F6       channel rack
  F8            browser (show/hide) F9       mixer
  space         play / stop         enter    audition the selection
  ctrl+g        generate a song     ctrl+e   export the song
  ctrl+f        search              ?        this help
  ctrl+q        quit

[b $accent]Browser[/]
  type to search: words, a tempo ("140") and a key ("F minor") in one line
  ↑ ↓ pgup pgdn home end   move      a   add to the channel rack
  m   more like this       f   fits with       esc   all sounds again
  mouse: click selects, double click auditions, drag a row onto the
  channel rack (a new channel) or the playlist (a clip on that bar)

[b $accent]Channel rack[/]
  ↑ ↓ channel   ← → step   x toggle step   m mute   s solo   + - volume
  enter auditions the channel's sound; click pads, M, S and the volume bar

[b $accent]Playlist[/]
  + - zoom   ← → scroll   ↑ ↓ track   home start   delete  remove the clip
  click the ruler to move the playhead; click a clip to select it (delete removes it)

[b $accent]Mixer[/]
  ← → strip   ↑ ↓ fader (shift: 6 dB)   0 unity   a Auto-Mix on/off
  click or drag a fader; M and S under each strip

[dim]escape or ? closes this help[/]
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss(None)", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(HELP, id="help-text")

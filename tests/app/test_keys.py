"""Every key binding of the studio: F5, F6, F8, F9, space, enter, ctrl+g, ctrl+e, ctrl+f, ?, and
the toolbar's tempo and key fields."""

from __future__ import annotations

from textual.widgets import Input

from loopmind.app import messages as m
from loopmind.app.screens.export import ExportModal
from loopmind.app.screens.generate import GenerateModal
from loopmind.app.screens.help import HelpScreen
from loopmind.app.widgets.browser import Browser
from loopmind.app.widgets.channel_rack import ChannelRack
from loopmind.app.widgets.fader import Fader
from loopmind.app.widgets.playlist import PlaylistView
from loopmind.app.widgets.sample_table import SampleTable
from loopmind.app.widgets.toolbar import Toolbar
from tests.app.helpers import SIZE, Messages, pilot_test, settle, wait_workers


@pilot_test
async def test_function_keys_switch_panes(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        studio = app.studio
        assert studio.current_pane == "rack"
        await pilot.press("f5")
        assert studio.current_pane == "playlist"
        assert isinstance(app.screen.focused, PlaylistView)
        assert studio.query_one("#main").border_title == "PLAYLIST · F5"
        await pilot.press("f9")
        assert studio.current_pane == "mixer" and isinstance(app.screen.focused, Fader)
        await pilot.press("f6")
        assert studio.current_pane == "rack" and isinstance(app.screen.focused, ChannelRack)
        # F8: focus the browser, again: hide it, again: show it
        browser = studio.query_one(Browser)
        await pilot.press("f8")
        assert isinstance(app.screen.focused, SampleTable) and browser.display
        await pilot.press("f8")
        assert not browser.display and isinstance(app.screen.focused, ChannelRack)
        await pilot.press("f8")
        assert browser.display and isinstance(app.screen.focused, SampleTable)


@pilot_test
async def test_ctrl_f_searches_even_with_the_browser_hidden(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f8")  # the browser has the focus: F8 hides it
        assert not app.studio.query_one(Browser).display
        await pilot.press("ctrl+f")
        assert app.studio.query_one(Browser).display
        assert isinstance(app.screen.focused, Input) and app.screen.focused.id == "query"
        await pilot.press("space")  # typing a space in the search box does not play
        assert app.screen.focused.value == " "
        assert not app.audio.transport.playing


@pilot_test
async def test_space_plays_and_stops(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space")  # nothing to play yet: says so
        assert "nothing to play" in str(app.studio.query_one("#message").render())
        await pilot.press("a")
        await wait_workers(pilot)
        await pilot.press("space")
        assert app.audio.transport.playing and app.studio.query_one(Toolbar).playing
        await pilot.press("space")
        assert not app.audio.transport.playing
        await pilot.click("#play")
        assert app.audio.transport.playing
        await pilot.click("#stop")
        assert not app.audio.transport.playing
        await pilot.click("#loop")
        assert app.audio.transport.loop and app.studio.query_one(Toolbar).looping


@pilot_test
async def test_enter_auditions_the_focused_panes_selection(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # the browser's sound under the cursor
        await wait_workers(pilot)
        first = app.studio.query_one(SampleTable).current
        assert hook.of(m.AuditionStarted)[-1].item is first
        app.studio.query_one(SampleTable).cursor = 4
        await pilot.press("a", "f6", "enter")  # the rack's channel
        await wait_workers(pilot)
        item = hook.of(m.AuditionStarted)[-1].item
        assert item.path == app.session.song.tracks[0].clips[0].source_path
        assert app.audio.engine.is_playing("audition")


@pilot_test
async def test_ctrl_g_ctrl_e_and_help(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+g")
        assert isinstance(app.screen, GenerateModal)
        assert app.screen.query_one("#prompt", Input).has_focus
        await pilot.press("escape")
        await pilot.press("a", "ctrl+e")
        assert isinstance(app.screen, ExportModal)
        await pilot.press("escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        for key in ("F5", "F6", "F8", "F9", "space", "enter", "ctrl+g", "ctrl+e", "ctrl+f"):
            assert key in text
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)


@pilot_test
async def test_tempo_and_key_fields(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.studio.query_one(SampleTable).cursor = 0  # the chords loop (90 BPM, A minor)
        await pilot.press("a")
        await wait_workers(pilot)
        clip = app.session.song.tracks[0].clips[0]
        tempo = app.studio.query_one("#tempo", Input)
        await pilot.click(tempo)
        tempo.value = "100"
        await pilot.press("enter")
        await wait_workers(pilot)
        assert app.session.song.bpm == 100.0 and abs(clip.stretch - 100 / 90) < 1e-3
        assert app.audio.transport.song.bpm == 100.0  # re-rendered and reloaded
        key = app.studio.query_one("#key", Input)
        await pilot.click(key)
        key.value = "Cm"
        await pilot.press("enter")
        await wait_workers(pilot)
        assert app.session.song.key == "C minor" and clip.semitones == 3
        assert key.value == "C minor"
        await pilot.click(key)
        key.value = "H minor"  # not a key: said, and the field goes back
        await pilot.press("enter")
        assert app.session.song.key == "C minor"
        assert "not a key" in str(app.studio.query_one("#message").render())
        await pilot.click(tempo)
        tempo.value = "999"
        await pilot.press("enter")
        assert app.session.song.bpm == 100.0 and tempo.value == "100"

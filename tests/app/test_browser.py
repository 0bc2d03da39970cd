"""The browser: folders, search and filters, the paged table, the waveform, "more like this",
"fits with", audition, and dragging sounds onto the rack and the playlist."""

from __future__ import annotations

import os

from textual.widgets import Input, Select

from loopmind.app import messages as m
from loopmind.app.widgets.browser import Browser
from loopmind.app.widgets.channel_rack import ChannelRack
from loopmind.app.widgets.folder_tree import FolderTree
from loopmind.app.widgets.playlist import GUTTER, PlaylistView
from loopmind.app.widgets.sample_table import SampleTable
from loopmind.app.widgets.waveform import Waveform
from tests.app.helpers import SIZE, Messages, pilot_test, settle, wait_workers


def _names(table: SampleTable) -> list[str]:
    return [os.path.basename(table.hit_at(i).path) for i in range(table.row_count)]


def _select(table: SampleTable, name: str) -> None:
    table.cursor = _names(table).index(name)


@pilot_test
async def test_search_box_filters_the_table(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        table = app.studio.query_one(SampleTable)
        await pilot.press("ctrl+f")
        assert isinstance(app.screen.focused, Input) and app.screen.focused.id == "query"
        await pilot.press(*"kick")
        await wait_workers(pilot)  # debounced: one query for the four keys
        assert _names(table) == ["kick.wav"]
        found = hook.of(m.SoundsFound)
        assert found[-1].result.label == "'kick'"
        # a tempo in the text is a filter
        app.screen.focused.value = "120"
        await wait_workers(pilot)
        assert _names(table) == ["house_drums_120bpm.wav"]
        # role and kind filters
        app.screen.focused.value = ""
        app.studio.query_one("#kind", Select).value = "oneshot"
        await wait_workers(pilot)
        assert sorted(_names(table)) == ["hat.aiff", "kick.wav", "snare.wav", "tone_440.wav"]
        app.studio.query_one("#role", Select).value = "snare"
        await wait_workers(pilot)
        assert _names(table) == ["snare.wav"]
        # nothing found says so
        app.studio.query_one("#role", Select).value = Select.NULL
        app.studio.query_one("#query", Input).value = "nosuchsound"
        await wait_workers(pilot)
        assert table.row_count == 0
        assert "no sound matches" in str(app.studio.query_one("#result-label").render())


@pilot_test
async def test_folder_tree_narrows_to_a_folder(make_app, studio_pack):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.studio.query_one(FolderTree)
        pack = tree.root.children[0]
        assert str(pack.label) == "pack" and pack.data == str(studio_pack)
        tree.focus()
        tree.move_cursor(pack)
        await pilot.press("right")  # opens it: subfolders are listed by a worker
        await wait_workers(pilot)
        assert sorted(str(c.label) for c in pack.children) == ["loops", "oneshots"]
        loops = next(c for c in pack.children if str(c.label) == "loops")
        tree.move_cursor(loops)
        await pilot.press("enter")
        await wait_workers(pilot)
        table = app.studio.query_one(SampleTable)
        assert sorted(_names(table)) == ["chords_Amin_90bpm.wav", "click_100bpm.flac",
                                         "house_drums_120bpm.wav"]
        tree.move_cursor(tree.root)
        await pilot.press("enter")
        await wait_workers(pilot)
        assert table.row_count == 7


@pilot_test
async def test_table_pages_rows_in_as_it_scrolls(make_app, monkeypatch):
    import loopmind.app.pager as pager
    import loopmind.app.widgets.sample_table as sample_table

    monkeypatch.setattr(pager, "PAGE_ROWS", 2)
    monkeypatch.setattr(sample_table, "PAGE_ROWS", 2)
    hook = Messages()
    app = make_app()
    async with app.run_test(size=(160, 30), message_hook=hook) as pilot:
        await settle(pilot)
        table = app.studio.query_one(SampleTable)
        assert table.row_count == 7
        loaded = {e.page for e in hook.of(m.PageLoaded)}
        assert loaded and loaded <= {0, 1, 2, 3}
        await pilot.press("end")
        await wait_workers(pilot)
        assert table.cursor == 6 and 3 in {e.page for e in hook.of(m.PageLoaded)}
        assert table.current is not None
        await pilot.press("home", "down", "down")
        assert table.cursor == 2


@pilot_test
async def test_waveform_of_the_selection(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        table = app.studio.query_one(SampleTable)
        _select(table, "snare.wav")
        await wait_workers(pilot)
        wave = app.studio.query_one(Waveform)
        assert wave.segment_id == table.current.id
        computed = hook.of(m.WaveformComputed)[-1]
        assert computed.lo.shape == computed.hi.shape and computed.hi.max() == 1.0
        lines = str(wave.render()).splitlines()
        assert len(lines) == wave.content_size.height
        assert all(0x2800 <= ord(c) <= 0x28FF for c in "".join(lines))  # braille
        assert "snare.wav" in str(app.studio.query_one("#selection-label").render())


@pilot_test
async def test_more_like_this_and_fits_with(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        table = app.studio.query_one(SampleTable)
        _select(table, "kick.wav")
        await pilot.press("m")
        await wait_workers(pilot)
        result = hook.of(m.SoundsFound)[-1].result
        assert result.label == "like kick.wav"
        assert 0 < table.row_count <= 6 and "kick.wav" not in _names(table)
        await pilot.press("escape")  # back to every sound
        await wait_workers(pilot)
        assert table.row_count == 7
        _select(table, "chords_Amin_90bpm.wav")
        buttons = list(app.studio.query("ActionButton"))  # audition, + rack, more, fits
        await pilot.click(buttons[3])
        await wait_workers(pilot)
        result = hook.of(m.SoundsFound)[-1].result
        assert result.label == "fits with chords_Amin_90bpm.wav"
        assert all(table.hit_at(i).role != "keys" for i in range(table.row_count))
        table.cursor = 0
        await pilot.click(buttons[1])  # + rack
        await wait_workers(pilot)
        assert [t.clips[0].segment_id for t in app.session.song.tracks] == \
            [table.hit_at(0).id]


@pilot_test
async def test_enter_and_double_click_audition_the_selection(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        table = app.studio.query_one(SampleTable)
        _select(table, "chords_Amin_90bpm.wav")
        await wait_workers(pilot)
        await pilot.press("enter")
        await wait_workers(pilot)
        started = hook.of(m.AuditionStarted)[-1]
        assert os.path.basename(started.item.path) == "chords_Amin_90bpm.wav"
        assert app.audio.engine.is_playing("audition")
        assert "▶ chords_Amin_90bpm.wav" in str(app.studio.query_one("#message").render())
        _select(table, "kick.wav")
        await wait_workers(pilot)
        await pilot.click(SampleTable, offset=(3, table.cursor + 1), times=2)
        await wait_workers(pilot)
        assert os.path.basename(hook.of(m.AuditionStarted)[-1].item.path) == "kick.wav"


@pilot_test
async def test_drag_a_sound_onto_the_rack_and_the_playlist(make_app):
    """The pilot drags for real: press on a row, move over the target, let go there."""
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        table = app.studio.query_one(SampleTable)
        rows = _names(table)
        kick_y = rows.index("kick.wav") + 1
        await pilot.mouse_down(SampleTable, offset=(4, kick_y))
        await pilot.hover(ChannelRack, offset=(10, 3))
        await pilot.mouse_up(ChannelRack, offset=(10, 3))
        await wait_workers(pilot)
        assert hook.of(m.DragStarted) and hook.of(m.SoundDropped)
        assert [t.name for t in app.session.song.tracks] == ["kick"]
        # onto the playlist: the chords land on bar 3 of a new track
        await pilot.press("f5")
        playlist = app.studio.query_one(PlaylistView)
        chords_y = rows.index("chords_Amin_90bpm.wav") + 1
        x = GUTTER + 2 * playlist.cols_per_bar + 1
        await pilot.mouse_down(SampleTable, offset=(4, chords_y))
        await pilot.hover(PlaylistView, offset=(x, 4))
        await pilot.mouse_up(PlaylistView, offset=(x, 4))
        await wait_workers(pilot)
        keys = app.session.song.track("keys")
        assert keys is not None and [c.start_bar for c in keys.clips] == [2]
        # a plain click is not a drag
        n = len(hook.of(m.SoundDropped))
        await pilot.click(SampleTable, offset=(4, chords_y))
        assert len(hook.of(m.SoundDropped)) == n
        assert app.studio.query_one(Browser).selection.path.endswith("chords_Amin_90bpm.wav")


@pilot_test
async def test_an_unexpected_worker_error_is_one_line_and_the_app_goes_on(make_app,
                                                                          monkeypatch):
    import loopmind.app.pager as pager

    def broken(*a, **kw):
        raise RuntimeError("disk on fire\nsecond line\nthird line")

    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook, notifications=True) as pilot:
        await settle(pilot)
        monkeypatch.setattr(pager, "find_ids", broken)
        await pilot.press("ctrl+f", *"hat")
        await wait_workers(pilot)
        failed = hook.of(m.WorkFailed)[-1]
        assert (failed.what, failed.error) == ("searching", "RuntimeError: disk on fire")
        message = str(app.studio.query_one("#message").render())
        assert message == "searching: RuntimeError: disk on fire"
        assert any(n.message == "RuntimeError: disk on fire" for n in app._notifications)
        monkeypatch.undo()
        app.studio.query_one("#query", Input).value = "kick"
        await wait_workers(pilot)
        assert _names(app.studio.query_one(SampleTable)) == ["kick.wav"]

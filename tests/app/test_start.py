"""Opening the studio: first paint, the library, the demo library, the watcher, no audio."""

from __future__ import annotations

import shutil
import time

from fixtures_audio import make_audio_folder

from loopmind.app import messages as m
from loopmind.app.widgets.browser import Browser
from loopmind.app.widgets.channel_rack import ChannelRack
from loopmind.app.widgets.sample_table import SampleTable
from loopmind.app.widgets.status_bar import StatusBar
from loopmind.app.widgets.toolbar import Toolbar
from tests.app.helpers import (SIZE, Messages, app_settings, pilot_test, settle, wait_for,
                               wait_workers)


def _status_text(app, part: str = "#message") -> str:
    return str(app.studio.query_one(StatusBar).query_one(part).render())


@pilot_test
async def test_first_paint_does_not_wait_for_the_library(make_app):
    app = make_app()
    t0 = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        first_paint = time.perf_counter() - t0
        # every pane is there at once; the library is opened behind it
        assert app.studio.query_one(Toolbar) and app.studio.query_one(Browser)
        assert app.studio.query_one(ChannelRack).display
        await settle(pilot)
        assert first_paint < 5.0  # generous for CI; benchmarks/bench_app.py measures it
        table = app.studio.query_one(SampleTable)
        assert table.row_count == 7
        assert "7 sounds · 1 folder" in _status_text(app, "#library")
        assert app.screen.focused is table


@pilot_test
async def test_no_audio_output_is_said_once_and_the_rest_works(make_app):
    app = make_app(available=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        notes = [n.message for n in app._notifications]
        assert sum("no audio output" in n for n in notes) == 1, notes
        assert "no output" in _status_text(app, "#audio")
        await pilot.press("a")  # the browser still adds sounds ...
        await wait_workers(pilot)
        assert len(app.session.song.tracks) == 1
        await pilot.press("space")  # ... and the transport still runs (silently)
        assert app.audio.transport.playing
        await pilot.press("space")
        assert not app.audio.transport.playing
        app.on_audio_opened(m.AudioOpened(app.audio))  # a second report says nothing new
        assert sum("no audio output" in n.message for n in app._notifications) == 1


@pilot_test
async def test_empty_library_gets_the_demo_library(make_app, tmp_path, monkeypatch):
    import loopmind.demo

    built = []

    def fake_demo(dest, **kw):  # the real pack takes seconds; its build is tested elsewhere
        built.append(dest)
        make_audio_folder(dest)
        return sorted(dest.rglob("*.wav"))

    monkeypatch.setattr(loopmind.demo, "build_demo_library", fake_demo)
    # two analysis processes: the pool's helpers must start before Textual takes stderr
    settings = app_settings(tmp_path / "home", LOOPMIND_WORKERS="2")
    hook = Messages()
    app = make_app(settings, demo=True, watch=True)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await wait_for(pilot, lambda: hook.of(m.WatcherStarted) or hook.of(m.WorkFailed),
                       timeout=120, what="the scan and the watcher")
        assert not hook.of(m.WorkFailed), hook.of(m.WorkFailed)[0].error
        await wait_workers(pilot)
        assert built == [settings.demo_dir]
        assert app.folders == [str(settings.demo_dir)]
        progress = hook.of(m.ScanProgressed)
        assert progress and progress[-1].total == 7  # progress was reported live
        assert hook.of(m.ScanFinished)[0].summary.startswith("7 files: 7 indexed")
        assert app.studio.query_one(SampleTable).row_count == 7
        assert "watching 1 folder" in _status_text(app, "#progress")


@pilot_test
async def test_watcher_follows_the_folder_while_the_app_is_open(make_app, tmp_path):
    from loopmind.library.db import Library
    from loopmind.library.indexer import Indexer

    folder = tmp_path / "pack"
    make_audio_folder(folder)
    (folder / "oneshots" / "tone_440.wav").unlink()
    settings = app_settings(tmp_path / "home")
    Indexer(Library(settings)).add_folder(folder)  # registered, not yet scanned
    hook = Messages()
    app = make_app(settings, watch=True)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await wait_for(pilot, lambda: hook.of(m.WatcherStarted) or hook.of(m.WorkFailed),
                       timeout=120, what="the scan and the watcher")
        assert not hook.of(m.WorkFailed), hook.of(m.WorkFailed)[0].error
        await wait_workers(pilot)
        table = app.studio.query_one(SampleTable)
        assert table.row_count == 6
        shutil.copy(folder / "oneshots" / "kick.wav", folder / "oneshots" / "kick2.wav")
        await wait_for(pilot, lambda: any(e.action == "indexed" for e in
                                          hook.of(m.LibraryChanged)), timeout=30,
                       what="the watcher to index a new file")
        await wait_for(pilot, lambda: table.row_count == 7, timeout=10,
                       what="the browser to show the new sound")
        assert "6 sounds" not in _status_text(app, "#library")
    # leaving the app stopped the watcher
    assert app._watcher is not None and app._watcher._stop.is_set()

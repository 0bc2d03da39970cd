"""SVG snapshots of every pane and dialog (pytest-textual-snapshot).

Deterministic by construction: a fixed terminal size, the seeded fixture library, an offline
audio engine that reports a device, nothing playing (no playhead or meter moves), every worker
finished before the picture is taken, and no blinking cursor. Update them after a deliberate
change of the look with ``pytest tests/app/test_snapshots.py --snapshot-update`` and look at
the report before committing.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from textual.widgets import Input  # noqa: E402

from loopmind.app.widgets.sample_table import SampleTable  # noqa: E402
from loopmind.generate.song import Section  # noqa: E402
from tests.app.helpers import SIZE, settle, wait_workers  # noqa: E402


def _no_blink(app) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False


async def _add(pilot, *rows: int) -> None:
    table = pilot.app.studio.query_one(SampleTable)
    table.focus()
    for row in rows:
        table.cursor = row
        await pilot.press("a")
    await wait_workers(pilot)


async def _with_song(pilot) -> None:
    """Chords, drums and three one-shots, with two sections."""
    await settle(pilot)
    await _add(pilot, 0, 2, 4, 5, 3)
    song = pilot.app.session.song
    song.sections = [Section("intro", 0, 2, energy=0.4), Section("hook", 2, 2, energy=0.9)]
    pilot.app.show_song()
    await wait_workers(pilot)


def test_browser(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.studio.query_one(SampleTable).cursor = 5  # the snare: its waveform shows
        await wait_workers(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_channel_rack(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await _with_song(pilot)
        await pilot.press("f6", "down", "down", "right", "x", "m")  # a step on, a mute
        await wait_workers(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_playlist(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await _with_song(pilot)
        await pilot.press("f5", "plus")
        pilot.app.audio.transport.seek(1.5)
        pilot.app._tick()  # the playhead at bar 2.3 (stopped: it does not move)
        await wait_workers(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_mixer(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await _with_song(pilot)
        await pilot.press("f9", "up", "up", "up", "right", "down")
        await wait_workers(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_generate_dialog(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("ctrl+g")
        _no_blink(pilot.app)
        pilot.app.screen.query_one("#prompt", Input).value = "dark trap 140 in F minor"
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_export_dialog(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await _with_song(pilot)
        pilot.app.default_export_folder = lambda: "/songs/my-song"
        await pilot.press("ctrl+e")
        _no_blink(pilot.app)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)

"""Generating and exporting from the studio, and the end-to-end path: a fixture folder is
indexed by the app, searched, added to the rack, a song is generated and exported."""

from __future__ import annotations

import json

from fixtures_audio import make_audio_folder
from textual.widgets import Input, Select

from loopmind.app import messages as m
from loopmind.app.screens.export import ExportModal
from loopmind.app.screens.generate import GenerateModal
from loopmind.app.widgets.ai_brain import AIBrainButton
from loopmind.app.widgets.channel_rack import ChannelRack
from loopmind.app.widgets.playlist import PlaylistView
from loopmind.app.widgets.sample_table import SampleTable
from loopmind.app.widgets.status_bar import StatusBar
from tests.app.helpers import (SIZE, Messages, app_settings, pilot_test, settle, wait_for,
                               wait_workers)


class BrainWatch:
    """Records whether the AI Brain glowed while the generator reported its stages."""

    def __init__(self, app) -> None:
        self.app = app
        self.glowing: list[bool] = []

    def __call__(self, message) -> None:
        if isinstance(message, m.GenerateStageReached):
            brain = self.app.studio.query_one(AIBrainButton)
            self.glowing.append(brain.has_class("-thinking"))


@pilot_test
async def test_end_to_end_index_search_rack_generate_export(make_app, tmp_path):
    folder = tmp_path / "my-sounds"
    make_audio_folder(folder)
    settings = app_settings(tmp_path / "home")
    from loopmind.library.db import Library
    from loopmind.library.indexer import Indexer

    Indexer(Library(settings)).add_folder(folder)  # as `loopmind add --no-scan` would
    hook = Messages()
    app = make_app(settings, watch=True)
    brain = BrainWatch(app)

    def both(message) -> None:
        hook(message)
        brain(message)

    async with app.run_test(size=SIZE, message_hook=both) as pilot:
        # 1. index: the app's start-up scan, with progress in the status bar
        await wait_for(pilot, lambda: hook.of(m.WatcherStarted) or hook.of(m.WorkFailed),
                       timeout=180, what="the start-up scan")
        assert not hook.of(m.WorkFailed), hook.of(m.WorkFailed)[0].error
        await settle(pilot)
        assert hook.of(m.ScanProgressed) and hook.of(m.ScanFinished)
        table = app.studio.query_one(SampleTable)
        assert table.row_count == 7
        # 2. search
        await pilot.press("ctrl+f", *"kick")
        await wait_workers(pilot)
        assert table.row_count == 1 and table.current.path.endswith("kick.wav")
        # 3. add to the rack
        table.focus()
        await pilot.press("a")
        await wait_workers(pilot)
        assert [c.name for c in app.studio.query_one(ChannelRack).channels] == ["kick"]
        # 4. generate (ctrl+g): prompt, the folder, mode, seed
        await pilot.press("ctrl+g")
        assert isinstance(app.screen, GenerateModal)
        app.screen.query_one("#prompt", Input).value = "lofi chill"
        app.screen.query_one("#folder", Select).value = str(folder)
        app.screen.query_one("#seed", Input).value = "2"
        app.screen.query_one("#minutes", Input).value = "0.5"
        await pilot.click("#go")
        await wait_for(pilot, lambda: hook.of(m.SongGenerated) or hook.of(m.WorkFailed),
                       timeout=240, what="the song")
        assert not hook.of(m.WorkFailed), hook.of(m.WorkFailed)[0].error
        await wait_workers(pilot)
        assert brain.glowing and all(brain.glowing)  # it glowed through every stage
        assert not app.studio.query_one(AIBrainButton).has_class("-thinking")
        song = app.session.song
        assert song.prompt == "lofi chill" and song.seed == 2 and song.sections
        assert set(app.session.stems) == {t.name for t in song.tracks}
        assert app.audio.transport.tracks == [t.name for t in song.tracks]
        assert app.studio.current_pane == "playlist"
        pl_lines = [app.studio.query_one(PlaylistView).render_line(y).text for y in range(3)]
        assert song.sections[0].name in pl_lines[1]
        # what the transport plays is the generated master (the export's mix and master
        # chain), not the raw tracks
        import numpy as np
        import soundfile as sf

        master, sr = sf.read(hook.of(m.SongGenerated)[-1].result.paths["master"],
                             dtype="float32")
        transport = app.audio.transport
        assert app.session.played is not None and transport.returns == list(
            app.session.played.returns)
        transport.play(from_bar=0)
        heard = app.audio.engine.render(2 * sr)
        transport.stop()
        ref = master[1024:len(heard)]
        got = heard[1024:len(ref) + 1024]
        assert np.sqrt(np.mean(ref ** 2)) > 0.01  # not silence against silence
        assert np.abs(got - ref).max() < 2e-3, np.abs(got - ref).max()
        # 5. export (ctrl+e) into a folder of our choosing
        out = tmp_path / "export"
        await pilot.press("ctrl+e")
        assert isinstance(app.screen, ExportModal)
        app.screen.query_one("#folder", Input).value = str(out)
        await pilot.press("enter")
        await wait_for(pilot, lambda: hook.of(m.SongExported) or hook.of(m.WorkFailed),
                       timeout=240, what="the export")
        assert not hook.of(m.WorkFailed), hook.of(m.WorkFailed)[0].error
        for name in ("master.wav", "arrangement.json", "song.mid"):
            assert (out / name).is_file(), name
        stems = sorted(p.stem for p in (out / "stems").glob("*.wav"))
        assert len(stems) == len(song.tracks)
        doc = json.loads((out / "arrangement.json").read_text())
        assert doc["bpm"] == song.bpm and len(doc["tracks"]) == len(song.tracks)
        assert "exported" in str(app.studio.query_one(StatusBar).query_one("#message").render())


@pilot_test
async def test_generate_errors_are_one_line_and_the_brain_calms_down(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+g")
        app.screen.query_one("#tag", Input).value = "no-such-tag-anywhere"
        app.screen.query_one("#prompt", Input).focus()
        await pilot.press("enter")  # enter in the prompt field submits
        await wait_for(pilot, lambda: hook.of(m.WorkFailed), what="the error")
        await wait_workers(pilot)
        failed = hook.of(m.WorkFailed)[-1]
        assert failed.what == "generating a song" and "no sounds" in failed.error
        message = str(app.studio.query_one(StatusBar).query_one("#message").render())
        assert "\n" not in message and "Traceback" not in message and "no sounds" in message
        assert not app.studio.query_one(AIBrainButton).thinking
        assert any("no sounds" in n.message for n in app._notifications)
        # a form error stays in the dialog
        await pilot.press("ctrl+g")
        app.screen.query_one("#seed", Input).value = "seven"
        await pilot.click("#go")
        assert isinstance(app.screen, GenerateModal)
        assert "not a whole number" in str(app.screen.query_one("#generate-error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, GenerateModal)


@pilot_test
async def test_ai_brain_button_and_the_animation(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        brain = app.studio.query_one(AIBrainButton)
        await pilot.click(AIBrainButton)
        assert isinstance(app.screen, GenerateModal)
        await pilot.press("escape")
        brain.thinking = True
        brain.stage = "rendering"
        frames = set()
        for _ in range(12):
            await pilot.pause(0.05)
            frames.add(str(brain.render()))
        assert len(frames) > 1 and all("rendering" in f for f in frames)  # it animates
        assert brain.has_class("-thinking")
        brain.thinking = False
        assert not brain.has_class("-thinking") and not brain.has_class("-pulse")
        assert str(brain.render()) == "✦ AI Brain"


@pilot_test
async def test_export_needs_a_song_and_can_be_cancelled(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+e")
        assert not isinstance(app.screen, ExportModal)
        assert "nothing to export" in str(app.studio.query_one("#message").render())
        app.studio.query_one(SampleTable).focus()
        await pilot.press("a")
        await wait_workers(pilot)
        await pilot.press("ctrl+e")
        assert isinstance(app.screen, ExportModal)
        assert app.screen.query_one("#folder", Input).value.endswith("studio-song")
        await pilot.press("escape")
        assert not isinstance(app.screen, ExportModal)


@pilot_test
async def test_the_brain_makes_a_hybrid_song_with_generated_channels(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+g")
        app.screen.query_one("#prompt", Input).value = "dark trap 140 in F minor"
        app.screen.query_one("#mode", Select).value = "hybrid"
        app.screen.query_one("#seed", Input).value = "3"
        app.screen.query_one("#minutes", Input).value = "1"
        await pilot.click("#go")
        await wait_for(pilot, lambda: hook.of(m.SongGenerated) or hook.of(m.WorkFailed),
                       timeout=240, what="the song")
        assert not hook.of(m.WorkFailed), hook.of(m.WorkFailed)[0].error
        await wait_workers(pilot)
        song = app.session.song
        assert song.mode == "hybrid"
        generated = [t for t in song.tracks if any(c.generated for c in t.clips)]
        assert generated, [t.name for t in song.tracks]
        assert set(app.session.stems) == {t.name for t in song.tracks}
        rack = {c.name: c for c in app.studio.query_one(ChannelRack).channels}
        stepped = [t for t in generated if any(c.is_sequence for c in t.clips)]
        assert stepped, "no fills or variations as slice events"
        for t in stepped:  # generated parts show as step channels with their hits
            assert rack[t.name].steps is not None and "generated" in rack[t.name].detail

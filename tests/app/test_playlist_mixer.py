"""The playlist (tracks by bars, sections, zoom, scroll, playhead) and the mixer (faders,
meters, Auto-Mix)."""

from __future__ import annotations

from loopmind.app import messages as m
from loopmind.app.widgets.fader import Fader
from loopmind.app.widgets.level_meter import LevelMeter
from loopmind.app.widgets.mixer import MixerView
from loopmind.app.widgets.mixer_strip import MixerStrip
from loopmind.app.widgets.playlist import GUTTER, ZOOMS, PlaylistView
from loopmind.app.widgets.toolbar import Toolbar
from loopmind.generate.song import Section
from tests.app.helpers import SIZE, Messages, pilot_test, settle, wait_for, wait_workers
from tests.app.test_rack import _add


@pilot_test
async def test_playlist_shows_tracks_sections_and_clips(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        await _add(pilot, "chords_Amin_90bpm.wav", "kick.wav")
        song = app.session.song
        song.sections = [Section("intro", 0, 2), Section("hook", 2, 2)]
        app.show_song()
        await pilot.press("f5")
        pl = app.studio.query_one(PlaylistView)
        assert app.screen.focused is pl
        lines = [pl.render_line(y).text for y in range(5)]
        assert lines[0].startswith(" bars ×4") and " 1   2   3" in lines[0]
        assert " intro" in lines[1] and " hook" in lines[1]
        assert lines[2].startswith("▌keys") and "chords_" in lines[2]
        assert lines[3].startswith("▌kick") and "▪" in lines[3]
        # zoom
        await pilot.press("plus")
        assert pl.cols_per_bar == ZOOMS[3]
        await pilot.press("minus", "minus")
        assert pl.cols_per_bar == ZOOMS[1]
        # a click on the ruler moves the playhead
        await pilot.click(PlaylistView, offset=(GUTTER + 3 * pl.cols_per_bar, 0))
        assert hook.of(m.SeekTo)[-1].bar == 3.0
        assert abs(app.audio.transport.position_bars - 3.0) < 1e-9
        assert pl.playhead == app.audio.transport.position_bars
        # select a clip and delete it
        await pilot.click(PlaylistView, offset=(GUTTER + 1, 3))
        assert pl.selected == ("kick", 0)
        await pilot.press("delete")
        await wait_workers(pilot)
        assert song.track("kick") is None and "kick" not in app.session.stems


@pilot_test
async def test_playhead_moves_during_playback(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _add(pilot, "chords_Amin_90bpm.wav")
        await pilot.press("f5", "space")
        transport = app.audio.transport
        assert transport.playing and app.studio.query_one(Toolbar).playing
        pl = app.studio.query_one(PlaylistView)
        app.audio.engine.render(int(1.5 * 44100))  # the offline engine moves on 1.5 s
        await wait_for(pilot, lambda: pl.playhead and pl.playhead > 0.5, what="the playhead")
        assert abs(pl.playhead - 1.5 / app.session.song.bar_s) < 0.05
        assert "0:01.5" in str(app.studio.query_one("#position").render())
        await pilot.press("space")
        assert not transport.playing and not app.studio.query_one(Toolbar).playing
        # stop while stopped goes back to the start
        await pilot.click("#stop")
        assert transport.position_bars == 0.0


@pilot_test
async def test_mixer_faders_meters_and_auto_mix(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        await _add(pilot, "chords_Amin_90bpm.wav", "kick.wav")
        await pilot.press("f9")
        mixer = app.studio.query_one(MixerView)
        await wait_for(pilot, lambda: len(mixer.query(MixerStrip)) == 3, what="the strips")
        strips = list(mixer.query(MixerStrip))
        assert [s.track for s in strips] == ["keys", "kick", "master"]
        assert app.screen.focused is strips[0].fader
        transport = app.audio.transport
        await pilot.press("up", "up")
        assert app.session.song.track("keys").mix.gain_db == 2.0
        assert transport.volume_db("keys") == 2.0
        assert "+2.0" in str(strips[0].query_one(".strip-db").render())
        assert not mixer.auto_mix  # a fader moved by hand turns Auto-Mix off
        # a click near the bottom of the kick's fader pulls it down
        fader = strips[1].fader
        await pilot.click(fader, offset=(2, fader.content_size.height - 2))
        assert app.session.song.track("kick").mix.gain_db < -30
        # the master fader moves every track's monitor level
        await pilot.press("right", "down")  # from the kick's fader to the master's
        assert app.screen.focused is strips[2].fader
        assert app.session.master_gain_db == -1.0
        assert transport.volume_db("keys") == 1.0
        # meters follow the song while it plays
        await pilot.press("space")
        app.audio.engine.render(44100)
        meter = strips[0].query_one(LevelMeter)
        await wait_for(pilot, lambda: meter.left > 0, what="the keys meter")
        assert strips[2].query_one(LevelMeter).left > 0  # the master's
        await pilot.press("space")
        # Auto-Mix on: the auto-mixer sets the faders
        await pilot.press("a")
        await wait_workers(pilot)
        assert mixer.auto_mix and hook.of(m.SongMixed)
        gains = {t.name: t.mix.gain_db for t in app.session.song.tracks}
        assert gains["kick"] > -30 and gains != {"keys": 2.0, "kick": gains["kick"]}
        assert [round(s.fader.value, 1) for s in strips[:2]] == \
            [round(gains["keys"], 1), round(gains["kick"], 1)]
        await pilot.click("#auto-mix")
        assert not mixer.auto_mix and isinstance(fader, Fader)

"""The channel rack: channels added from the browser, steps by key and click, mute, solo and
volume, and what reaches the transport."""

from __future__ import annotations

import os

from loopmind.app import messages as m
from loopmind.app.widgets.channel_rack import X_FADER, X_MUTE, X_SOLO, ChannelRack, pad_x
from loopmind.app.widgets.sample_table import SampleTable
from tests.app.helpers import SIZE, Messages, pilot_test, settle, wait_workers


async def _add(pilot, *names: str) -> None:
    table = pilot.app.studio.query_one(SampleTable)
    table.focus()
    rows = [os.path.basename(table.hit_at(i).path) for i in range(table.row_count)]
    for name in names:
        table.cursor = rows.index(name)
        await pilot.press("a")
    await wait_workers(pilot)


@pilot_test
async def test_channels_from_the_browser(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _add(pilot, "chords_Amin_90bpm.wav", "kick.wav", "hat.aiff")
        song = app.session.song
        assert [t.name for t in song.tracks] == ["keys", "kick", "hihat"]
        assert song.bpm == 90.0 and song.key == "A minor"  # the first loop set them
        rack = app.studio.query_one(ChannelRack)
        assert [c.name for c in rack.channels] == ["keys", "kick", "hihat"]
        assert rack.channels[0].steps is None  # a loop channel has no pads
        assert rack.channels[1].steps == [s % 4 == 0 for s in range(16)]  # four on the floor
        # every channel was rendered and handed to the transport
        assert set(app.session.stems) == {"keys", "kick", "hihat"}
        assert app.audio.transport.tracks == ["keys", "kick", "hihat"]
        lines = [rack.render_line(y).text for y in range(5)]
        assert "kick" in lines[2] and "██" in lines[2] and "▒▒" in lines[2]
        assert "loop · chords_Amin_90bpm" in lines[1]


@pilot_test
async def test_steps_by_key_and_by_click(make_app):
    hook = Messages()
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        await _add(pilot, "kick.wav")
        await pilot.press("f6")
        rack = app.studio.query_one(ChannelRack)
        assert app.screen.focused is rack
        kick = app.session.song.track("kick")
        before = app.session.stems["kick"].copy()
        await pilot.press("right", "right", "x")  # step 3 of every bar
        await wait_workers(pilot)
        assert rack.channels[0].steps[2] is True
        assert all((b * 16 + 2) in dict(c.steps) for c in kick.clips for b in range(c.bars))
        # the edit re-rendered the channel
        assert hook.of(m.SongRendered) and hook.of(m.SongRendered)[-1].stems.keys() == {"kick"}
        assert not (app.session.stems["kick"] == before).all()
        await pilot.press("x")  # and off again
        await wait_workers(pilot)
        assert rack.channels[0].steps[2] is False
        # a click on the pad of step 6 (channel line 1 under the header)
        await pilot.click(ChannelRack, offset=(pad_x(5), 1))
        await wait_workers(pilot)
        assert rack.channels[0].steps[5] is True and rack.step == 5
        toggles = hook.of(m.ToggleStep)
        assert [(t.track, t.step) for t in toggles] == [("kick", 2), ("kick", 2), ("kick", 5)]


@pilot_test
async def test_mute_solo_and_volume(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _add(pilot, "kick.wav", "snare.wav")
        await pilot.press("f6")
        transport = app.audio.transport
        rack = app.studio.query_one(ChannelRack)
        await pilot.press("m")  # mute the kick
        assert app.session.song.track("kick").mix.mute and transport.is_muted("kick")
        assert rack.channels[0].mute
        await pilot.press("m")
        assert not transport.is_muted("kick")
        await pilot.press("down", "s")  # solo the snare
        assert transport.is_soloed("snare") and rack.channels[1].solo
        assert transport.gains()["kick"] == 0.0 and transport.gains()["snare"] == 1.0
        await pilot.press("plus", "plus", "minus")  # +1 dB
        assert app.session.song.track("snare").mix.gain_db == 1.0
        assert transport.volume_db("snare") == 1.0
        # mouse: M and S of the kick, then its volume bar
        await pilot.click(ChannelRack, offset=(X_MUTE + 1, 1))
        assert transport.is_muted("kick")
        await pilot.click(ChannelRack, offset=(X_SOLO + 1, 2))
        assert not transport.is_soloed("snare")
        await pilot.click(ChannelRack, offset=(X_FADER + 3, 1))
        gain = app.session.song.track("kick").mix.gain_db
        assert -30 < gain < -5 and transport.volume_db("kick") == gain
        # moving a fader by hand turns the auto-mixer off
        assert not app.session.auto_mix

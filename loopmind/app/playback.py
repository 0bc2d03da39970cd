"""The studio's side of the player: open the output, keep the transport loaded with the song's
rendered tracks and its channel settings, play, stop, loop, seek, and move the playhead, the
position and the meters while the song plays.

A mixin of ``LoopMindApp``. The output is opened in a thread worker (it can take a moment,
and may find no device: the app then says so once and goes on silently).
"""

from __future__ import annotations

from textual import work

from loopmind.app import messages as m
from loopmind.app.widgets.mixer import MixerView
from loopmind.app.widgets.playlist import PlaylistView
from loopmind.app.widgets.toolbar import Toolbar
from loopmind.app.workers import one_line

PLAYHEAD_HZ = 15


class Playback:
    """Audio output and transport (mixed into the app)."""

    @work(thread=True, exclusive=True, group="audio", exit_on_error=False,
          description="opening the audio output")
    def _open_audio(self) -> None:
        from loopmind.app.audio import open_audio

        self.post_message(m.AudioOpened(open_audio(
            self.settings, engine=self._engine,
            on_error=lambda msg: self.post_message(m.WorkFailed("audition", msg)))))

    def on_audio_opened(self, event: m.AudioOpened) -> None:
        self._freeze_heap()
        self.audio = event.audio
        if event.audio.available:
            name = getattr(event.audio.engine, "device_name", None)
            self.status.audio(f"♪ {name or 'audio out'}", ok=True)
        else:
            self.status.audio("♪ no output", ok=False)
            if not self._said_no_output:
                self._said_no_output = True
                self.notify(f"no audio output: {event.audio.error}", severity="warning",
                            timeout=6)
        self._load_transport()

    def _load_transport(self) -> None:
        if self.audio is None or self.session is None:
            return
        t = self.audio.transport
        playing, at = t.playing, t.position_bars
        from loopmind.errors import LoopMindError

        try:
            stems, returns = self.session.playback()
            t.load(self.session.song, stems, returns)
        except LoopMindError as exc:
            self.status.say(f"cannot play the song: {one_line(exc)}", error=True)
            return
        self._apply_channels()
        if playing:
            t.play(from_bar=at)

    def _apply_channels(self) -> None:
        if self.audio is None:
            return
        t, s = self.audio.transport, self.session
        playing = set(t.tracks)
        for track in s.song.tracks:
            if track.name in playing:
                t.set_mute(track.name, track.mix.mute)
                t.set_solo(track.name, track.name in s.solo)
                t.set_volume(track.name, s.monitor_gain_db(track))

    def on_transport_command(self, event: m.TransportCommand) -> None:
        if event.command == "loop":
            self._set_loop()
        elif event.command == "play":
            self._play()
        elif event.command == "stop":
            self._stop(rewind=True)
        else:
            self.action_play_stop()

    def action_play_stop(self) -> None:
        if self.audio is not None and self.audio.transport.playing:
            self._stop()
        else:
            self._play()

    def _play(self) -> None:
        if not self.session.song.tracks:
            self.status.say("nothing to play yet: add sounds (a in the browser) or generate "
                            "one (ctrl+g)")
            return
        if self.audio is None:
            self.status.say("the audio output is still opening")
            return
        self.audio.auditioner.stop()
        self.audio.transport.play()
        self.studio.query_one(Toolbar).playing = True
        if self._playhead_timer is None:
            self._playhead_timer = self.set_interval(1 / PLAYHEAD_HZ, self._tick)
        else:
            self._playhead_timer.resume()

    def _stop(self, *, rewind: bool = False) -> None:
        if self.audio is None:
            return
        t = self.audio.transport
        if rewind and not t.playing and hasattr(t, "seek"):
            t.seek(0.0)  # stop while stopped: back to the start, as in a DAW
        t.stop()
        self._tick()

    def _set_loop(self) -> None:
        if self.audio is None:
            return
        t = self.audio.transport
        t.loop = not t.loop
        self.studio.query_one(Toolbar).looping = t.loop

    def _tick(self) -> None:
        """Move the playhead, the position and the meters while the song plays."""
        if self.audio is None:
            return
        t = self.audio.transport
        playing = t.playing
        self.studio.query_one(Toolbar).show_position(t.position_bars, t.position_s)
        self.studio.query_one(PlaylistView).set_playhead(t.position_bars)
        mixer = self.studio.query_one(MixerView)
        if mixer.display and self.studio.current_pane == "mixer":
            mixer.show_levels(t.track_levels(), self.audio.engine.master_level())
        if not playing:
            self.studio.query_one(Toolbar).playing = False
            if self._playhead_timer is not None:
                self._playhead_timer.pause()

    def on_seek_to(self, event: m.SeekTo) -> None:
        if self.audio is not None and hasattr(self.audio.transport, "seek"):
            self.audio.transport.seek(event.bar)
            self._tick()

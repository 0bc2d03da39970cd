"""The LoopMind studio: a bare ``loopmind`` opens it on the user's library.

The app owns the library, the audio and the song being made (a ``SongSession``); the panes
show them and post requests (``AddSound``, ``ToggleStep``, ...) that the handlers here apply.
The library's life (``library_jobs.LibraryJobs``) and the player's (``playback.Playback``) are
mixins in their own modules.
Every blocking job is a thread worker that ends by posting a message: opening the library
(building and indexing the demo library when there is none, a catch-up scan, then the watcher
for as long as the app is open), opening the audio output, rendering what an edit changed,
auditioning, generating, mixing and exporting. One ``Worker.StateChanged`` handler turns any
worker's error into one line in the status bar and a notification.

Nothing here imports the domain at module level, so the first frame is drawn before the
library, numpy or the audio device are touched.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from loopmind.app import messages as m
from loopmind.app.library_jobs import LibraryJobs
from loopmind.app.playback import Playback
from loopmind.app.screens.export import ExportModal, ExportRequest
from loopmind.app.screens.generate import GenerateModal, GenerateRequest
from loopmind.app.screens.help import HelpScreen
from loopmind.app.screens.studio import StudioScreen
from loopmind.app.widgets.channel_rack import ChannelRack, ChannelView
from loopmind.app.widgets.mixer import MixerView
from loopmind.app.widgets.playlist import PlaylistView
from loopmind.app.widgets.sample_table import SampleTable, display_name
from loopmind.app.widgets.status_bar import StatusBar
from loopmind.app.widgets.toolbar import Toolbar
from loopmind.app.workers import log, one_line

if TYPE_CHECKING:  # pragma: no cover
    from loopmind.app.audio import Audio
    from loopmind.app.session import SongSession
    from loopmind.config import Settings

RENDER_DELAY_S = 0.15  # edits within this time render together
THREADS = 16  # thread workers at once (watcher, scan, queries, pages, renders, auditions)


class LoopMindApp(LibraryJobs, Playback, App[None]):
    """The studio.

    Args:
        settings: where the library lives (the process settings when None).
        engine: an audio engine to use instead of the default output (tests pass one).
        watch: scan the watched folders at start and follow them while the app is open.
        demo: build, add and index the demo library when no folder is watched.
    """

    TITLE = "LoopMind"
    CSS_PATH = Path(__file__).with_name("loopmind.tcss")  # absolute: subclasses live elsewhere
    BINDINGS = [
        Binding("space", "play_stop", "Play/Stop"),
        Binding("enter", "audition", "Audition"),
        Binding("ctrl+g", "generate", "Generate"),
        Binding("ctrl+e", "export", "Export"),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, settings: "Settings | None" = None, *, engine=None, watch: bool = True,
                 demo: bool = True) -> None:
        super().__init__()
        if settings is None:
            from loopmind.config import get_settings

            settings = get_settings()
        self.settings = settings
        self.watch = watch
        self.demo = demo
        if (watch or demo) and settings.workers > 1:
            start_process_helpers()
        self._engine = engine
        self.audio: Audio | None = None
        self.library = None
        self.catalog = None
        self.folders: list[str] = []
        self.session: SongSession | None = None
        self._watcher = None
        self._cache = None
        self._render_timer: Timer | None = None
        self._refresh_timer: Timer | None = None
        self._playhead_timer: Timer | None = None
        self._last_generate: GenerateRequest | None = None
        self._said_no_output = False

    # -- start and stop --------------------------------------------------------------------

    def get_default_screen(self) -> StudioScreen:
        return StudioScreen(id="studio")

    def on_mount(self) -> None:
        import asyncio

        from textual.theme import Theme

        self.register_theme(Theme(name="loopmind", primary="#ff8c1a", secondary="#a855f7",
                                  accent="#3b82f6", background="#1e1f22", surface="#242529",
                                  panel="#2c2d32", foreground="#d4d4d8", warning="#ff8c1a",
                                  error="#f43f5e", success="#22c55e", dark=True))
        self.theme = "loopmind"
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(THREADS, thread_name_prefix="loopmind-worker"))
        from loopmind.app.session import SongSession

        self.session = SongSession()
        # the first frame goes out before any worker competes with it
        self.call_after_refresh(self._start_background)

    def _start_background(self) -> None:
        self.show_song()
        self._open_audio()
        self._open_library()

    def on_unmount(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self.audio is not None:
            self.audio.close()
        if self.catalog is not None:
            try:
                self.catalog.close()
            except Exception:  # noqa: BLE001 - the index is a cache; never fail the exit
                log.exception("saving the vector index")

    @property
    def studio(self) -> StudioScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    @property
    def status(self) -> StatusBar:
        return self.studio.query_one(StatusBar)

    def stretch_cache(self):
        if self._cache is None:
            from loopmind.app.session import stretch_cache

            self._cache = stretch_cache(self.settings)
        return self._cache

    # -- errors: the one handler ---------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "generate" and event.state in (WorkerState.ERROR,
                                                          WorkerState.CANCELLED):
            self.studio.query_one(Toolbar).brain.thinking = False
        if event.state != WorkerState.ERROR:
            return
        what = worker.description or worker.group or "working"
        error = one_line(worker.error)
        from loopmind.errors import LoopMindError

        if not isinstance(worker.error, LoopMindError):
            log.error("%s failed", what, exc_info=worker.error)
        self.post_message(m.WorkFailed(what, error))

    def on_status_noted(self, event: m.StatusNoted) -> None:
        self.status.say(event.text)

    def on_work_failed(self, event: m.WorkFailed) -> None:
        if not self.screen_stack:  # the app is closing
            log.warning("%s: %s", event.what, event.error)
            return
        self.status.idle()
        self.status.say(f"{event.what}: {event.error}", error=True)
        self.notify(event.error, title=event.what, severity="error")

    # -- auditioning ----------------------------------------------------------------------------

    def on_sound_highlighted(self, event: m.SoundHighlighted) -> None:
        # stretch it to the song now, so enter plays it at once
        if self.audio is not None:
            from loopmind.errors import LoopMindError

            song = self.session.song
            try:
                self.audio.auditioner.prepare(event.hit, song_bpm=song.bpm, song_key=song.key)
            except LoopMindError as exc:
                self.status.say(one_line(exc), error=True)

    def action_audition(self) -> None:
        item = self._selection()
        if item is None:
            self.status.say("nothing to audition: select a sound in the browser")
            return
        self.post_message(m.AuditionSound(item))

    def _selection(self):
        """The sound the focused pane has selected (the browser's otherwise)."""
        from loopmind.app.songedit import track_sound

        focused = self.screen.focused
        song = self.session.song
        if isinstance(focused, ChannelRack) and focused.current is not None:
            t = song.track(focused.current.name)
            return track_sound(t) if t is not None else None
        if isinstance(focused, PlaylistView) and song.tracks:
            return track_sound(song.tracks[min(focused.row, len(song.tracks) - 1)])
        return self.studio.query_one(SampleTable).current

    def on_audition_sound(self, event: m.AuditionSound) -> None:
        if self.audio is None:
            self.status.say("the audio output is still opening")
            return
        song = self.session.song
        self._audition(event.item, song.bpm, song.key)

    @work(thread=True, exclusive=True, group="audition", exit_on_error=False,
          description="auditioning")
    def _audition(self, item, song_bpm: float, song_key: str | None) -> None:
        # a prepared sound only hands its buffer to the engine; one that is not is made here
        started = self.audio.auditioner.play(item, song_bpm=song_bpm, song_key=song_key)
        self.post_message(m.AuditionStarted(item, started))

    def on_audition_started(self, event: m.AuditionStarted) -> None:
        a, name = event.audition, os.path.basename(event.item.path)
        how = []
        if a is not None and abs(getattr(a, "stretch", 1.0) - 1.0) > 1e-3:
            how.append(f"×{a.stretch:.2f}")
        if a is not None and getattr(a, "semitones", 0):
            how.append(f"{a.semitones:+d} st")
        self.status.say(f"▶ {name}" + (f" ({', '.join(how)})" if how else ""))

    # -- editing the song ------------------------------------------------------------------------

    def show_song(self) -> None:
        """Show the session's song in the toolbar, the rack, the playlist and the mixer."""
        from loopmind.app.songedit import clip_label, is_pattern_track, pattern_row

        s = self.session
        channels = []
        for t in s.song.tracks:
            pattern = is_pattern_track(t)
            first = t.clips[0] if t.clips else None
            detail = ""
            if first is not None and not pattern:
                n = len(t.clips)
                detail = f"loop · {clip_label(first)}" + (f" · {n} clips" if n > 1 else "")
            elif any(c.is_sequence for c in t.clips):
                n = len({e.slice_id or (e.source_path, e.source_start_s)
                         for c in t.clips for e in c.events or []})
                detail = f"generated · {n} slice{'s' if n != 1 else ''}"
            channels.append(ChannelView(t.name, t.color, t.mix.mute, t.name in s.solo,
                                        t.mix.gain_db, pattern_row(t) if pattern else None,
                                        detail))
        studio = self.studio
        studio.query_one(Toolbar).show_song(s.song.bpm, s.song.key)
        studio.query_one(ChannelRack).show_channels(channels)
        studio.query_one(PlaylistView).show_song(s.song)
        self.call_later(studio.query_one(MixerView).show_channels, channels,
                        master_gain_db=s.master_gain_db, auto_mix=s.auto_mix)

    def _song_edited(self) -> None:
        self.show_song()
        if self.session.needs_render:
            if self._render_timer is not None:
                self._render_timer.stop()
            self._render_timer = self.set_timer(RENDER_DELAY_S, self._start_render)

    def _start_render(self) -> None:
        job = self.session.take_render()
        if job is not None:
            self._render_song(job)

    @work(thread=True, group="render", exit_on_error=False, description="rendering")
    def _render_song(self, job) -> None:
        from loopmind.app.session import playback_mix, render_stems

        stems, notes = ({}, []) if job.names == set() else render_stems(
            job.song, job.names, cache=self.stretch_cache(), workers=self.settings.workers)
        # the transport plays the export's mix: every track, mixed and mastered together
        played = playback_mix(job.song, {**job.raw, **stems}, workers=self.settings.workers)
        self.post_message(m.SongRendered(job.version, stems, notes, played))

    def on_song_rendered(self, event: m.SongRendered) -> None:
        before = self.session.played
        kept = self.session.apply_render(event.version, event.stems, event.played)
        if kept or self.session.played is not before:
            self._load_transport()
        for note in event.notes:
            self.status.say(note, error=True)

    def on_add_sound(self, event: m.AddSound) -> None:
        from loopmind.errors import LoopMindError

        try:
            t = self.session.add_sound(event.hit, start_bar=event.start_bar,
                                       track=event.track)
        except (LoopMindError, ValueError) as exc:
            self.status.say(f"cannot add {display_name(event.hit)}: {one_line(exc)}",
                            error=True)
            return
        where = "the rack" if event.start_bar is None else f"bar {event.start_bar + 1}"
        self.status.say(f"added {display_name(event.hit)} to {where} as '{t.name}'")
        self._song_edited()

    def on_toggle_step(self, event: m.ToggleStep) -> None:
        if self.session.toggle_step(event.track, event.step) is not None:
            self._song_edited()

    def on_remove_clip(self, event: m.RemoveClip) -> None:
        if self.session.remove_clip(event.track, event.index):
            self._song_edited()
            self._load_transport()

    def on_set_channel(self, event: m.SetChannel) -> None:
        s = self.session
        t = s.song.track(event.track)
        if t is None:
            return
        if event.mute is not None:
            s.set_mute(t.name, event.mute)
        if event.solo is not None:
            s.set_solo(t.name, event.solo)
        if event.gain_db is not None and event.gain_db != t.mix.gain_db:
            s.set_gain(t.name, event.gain_db)
            if s.auto_mix:
                s.auto_mix = False
                self.status.say("Auto-Mix off: the faders are yours")
        self._apply_channels()
        self.show_song()

    def on_set_master_gain(self, event: m.SetMasterGain) -> None:
        self.session.master_gain_db = event.gain_db
        self._apply_channels()

    def on_set_auto_mix(self, event: m.SetAutoMix) -> None:
        self.session.auto_mix = event.on
        self.show_song()
        if event.on and self.session.song.tracks:
            import copy

            self.status.say("auto-mixing …")
            self._auto_mix(copy.deepcopy(self.session.song))

    @work(thread=True, exclusive=True, group="mix", exit_on_error=False,
          description="auto-mixing")
    def _auto_mix(self, song) -> None:
        from loopmind.app.session import auto_mix_gains

        self.post_message(m.SongMixed(auto_mix_gains(song, cache=self.stretch_cache(),
                                                     workers=self.settings.workers)))

    def on_song_mixed(self, event: m.SongMixed) -> None:
        from dataclasses import replace

        if not self.session.auto_mix:
            return
        for name, mix in event.mixes.items():
            t = self.session.song.track(name)
            if t is not None:
                t.mix = replace(mix, mute=t.mix.mute)
        self._apply_channels()
        self.show_song()
        self.status.say("auto-mixed: the faders show the mixer's levels")
        self.session.request_remix()  # EQ, pan, sends and the master follow the new mix
        self._song_edited()

    def on_set_tempo(self, event: m.SetTempo) -> None:
        if abs(event.bpm - self.session.song.bpm) < 1e-6:
            return
        if not 40 <= event.bpm <= 300:
            self.status.say(f"tempo {event.bpm:g} is out of range (40-300)", error=True)
            self.show_song()
            return
        self.session.set_tempo(event.bpm)
        self.status.say(f"tempo {event.bpm:g} BPM")
        self._song_edited()

    def on_set_key(self, event: m.SetKey) -> None:
        key = None
        if event.key:
            from loopmind.library.analysis.key import parse_key

            key = parse_key(event.key)
            if key is None:
                self.status.say(f"{event.key!r} is not a key (try 'F minor', 'Fm', 'F#min')",
                                error=True)
                self.show_song()
                return
        if key == self.session.song.key:
            self.show_song()
            return
        self.session.set_key(key)
        self.status.say(f"key {key or 'none'}")
        self._song_edited()

    # -- generate ------------------------------------------------------------------------------

    def on_generate_requested(self, event: m.GenerateRequested) -> None:
        self.action_generate()

    def action_generate(self) -> None:
        if any(w.group == "generate" and not w.is_finished for w in self.workers):
            self.status.say("the AI Brain is already at work")
            return
        self.push_screen(GenerateModal(self.folders, self._last_generate), self._generate)

    def _generate(self, request: GenerateRequest | None) -> None:
        if request is None:
            return
        if self.library is None:
            self.status.say("the library is still opening; try again in a moment",
                            error=True)
            return
        self._last_generate = request
        self.studio.query_one(Toolbar).brain.thinking = True
        self.status.say(f"generating “{request.prompt or 'a song'}” (seed {request.seed}) …")
        self._generate_song(request)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False,
          description="generating a song")
    def _generate_song(self, request: GenerateRequest) -> None:
        from loopmind.app.session import playback_from_mix
        from loopmind.generate.compose import generate_song, song_name
        from loopmind.generate.prompt import parse_prompt

        out = self.settings.songs_path / song_name(parse_prompt(request.prompt), request.seed)

        def stage(name: str) -> None:
            self.post_message(m.GenerateStageReached(name))

        result = generate_song(self.library, request.prompt, folder=request.folder,
                               tag=request.tag, mode=request.mode, seed=request.seed,
                               minutes=request.minutes, out_dir=out, on_stage=stage,
                               keep_audio=True)
        stage("loading the player")
        # the generator's own render and mix: what plays is what it exported
        stems, played = result.tracks, playback_from_mix(result.song, result.mix)
        result.tracks = result.mix = None
        self.post_message(m.SongGenerated(result, stems, played))

    def on_generate_stage_reached(self, event: m.GenerateStageReached) -> None:
        self.studio.query_one(Toolbar).brain.stage = event.stage
        self.status.progress(0, 0, stage=event.stage)

    def on_song_generated(self, event: m.SongGenerated) -> None:
        result = event.result
        self.studio.query_one(Toolbar).brain.thinking = False
        self.status.idle()
        self.session.load(result.song, event.stems)
        self.session.played = event.played
        self.session.auto_mix = True
        self.show_song()
        self._load_transport()
        s = result.summary
        self.status.say(f"made {s.get('genre') or 'a song'}: {s['bpm']:g} BPM, "
                        f"{s['key'] or 'no key'}, {s['bars']} bars — "
                        f"{os.path.dirname(str(result.paths['master']))}")
        self.studio.action_show_pane("playlist")

    # -- export ---------------------------------------------------------------------------------

    def action_export(self) -> None:
        if not self.session.song.tracks:
            self.status.say("nothing to export yet: add sounds or generate a song", error=True)
            return
        self.push_screen(ExportModal(self.default_export_folder()), self._export)

    def default_export_folder(self) -> str:
        import re

        song = self.session.song
        words = re.sub(r"[^0-9a-z]+", "-", (song.prompt or "studio song").lower()).strip("-")
        name = words[:40] or "song"
        if song.seed is not None:
            name += f"-seed{song.seed}"
        return str(self.settings.songs_path / name)

    def _export(self, request: ExportRequest | None) -> None:
        if request is None:
            return
        import copy

        self.status.say(f"exporting to {request.folder} …")
        self._export_song(copy.deepcopy(self.session.song), request, self.session.auto_mix)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False,
          description="exporting the song")
    def _export_song(self, song, request: ExportRequest, auto: bool) -> None:
        from loopmind.app.session import export

        def stage(name: str) -> None:
            self.post_message(m.ScanProgressed(0, 0, stage=f"export: {name}"))

        result = export(song, os.path.expanduser(request.folder), cache=self.stretch_cache(),
                        flac=request.flac, auto=auto, workers=self.settings.workers,
                        on_stage=stage)
        files = 3 + len(result.stems) + (1 if request.flac else 0)
        self.post_message(m.SongExported(str(result.master.parent), files, result.warnings))

    def on_song_exported(self, event: m.SongExported) -> None:
        self.status.idle()
        self.status.say(f"exported {event.files} files to {event.folder}")
        self.notify(f"{event.files} files in {event.folder}", title="exported")
        for w in event.warnings:
            self.notify(w, severity="warning")

    # -- help --------------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def start_process_helpers() -> None:
    """Start multiprocessing's helper processes (the resource tracker and the fork server the
    analysis pool forks from) before the app takes the terminal.

    Once the app runs, ``sys.stderr`` is Textual's stand-in, which has no file descriptor to
    hand to the resource tracker, so a scan started later would fail; and the pool's workers
    must not write on the screen, so the helpers get /dev/null as their stderr, which every
    worker inherits. The pool's context is set first (``pipeline.pool_context``: one BLAS
    thread per worker, the analysis modules preloaded in the fork server), so the workers
    inherit it.
    """
    from multiprocessing import forkserver, resource_tracker

    from loopmind.library.pipeline import pool_context

    pool_context()
    try:
        saved = os.dup(2)
    except OSError:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        resource_tracker.ensure_running()
        forkserver.ensure_running()
    except Exception:  # noqa: BLE001 - the scan reports its own errors if the pool cannot run
        log.exception("starting the analysis pool's helpers")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run(settings: "Settings | None" = None) -> None:
    """Open the studio (what a bare ``loopmind`` does). Tracebacks of unexpected errors go to
    ``studio.log`` in the data folder, never to the screen."""
    if settings is None:
        from loopmind.config import get_settings

        settings = get_settings()
    handler: logging.Handler = logging.NullHandler()
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.data_dir / "studio.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    except OSError:
        pass
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    LoopMindApp(settings).run()

"""Messages between the studio's workers, panes and the app.

Facts are past tense (``LibraryOpened``, ``SongRendered``) and are posted when something has
happened, usually at the end of a thread worker; requests are imperatives (``AddSound``,
``AuditionSound``) and ask the app to do something. Progress messages implement
``can_replace`` so that a newer one replaces an older one still in the queue.

Payloads are plain domain objects (a search ``Hit``, a ``Song``); nothing here imports the
domain at run time, so importing this module costs only Textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # pragma: no cover - types only
    import numpy as np

    from loopmind.app.audio import Audio
    from loopmind.app.pager import BrowseResult
    from loopmind.index.search import Hit
    from loopmind.library.db import Library


# -- library and indexing -----------------------------------------------------------------------

class LibraryOpened(Message):
    """The library database is open: the browser can query it (counts come later, in a
    ``LibraryCounted``)."""

    def __init__(self, library: "Library", folders: list[str]) -> None:
        super().__init__()
        self.library = library
        self.folders = folders


class CatalogOpened(Message):
    """The library's vector index is ready for "more like this" (None when the embedder
    cannot run: ``error`` says why)."""

    def __init__(self, catalog: Any, error: str | None = None) -> None:
        super().__init__()
        self.catalog = catalog
        self.error = error


class ScanProgressed(Message):
    """Indexing moved on: ``done`` of ``total`` files (a newer one replaces a queued older)."""

    def __init__(self, done: int, total: int, current: str = "", stage: str = "indexing"
                 ) -> None:
        super().__init__()
        self.done = done
        self.total = total
        self.current = current
        self.stage = stage

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ScanProgressed)


class ScanFinished(Message):
    """A scan ended; ``summary`` is one line ("40 files: 38 indexed, 2 failed")."""

    def __init__(self, summary: str, failed: int = 0) -> None:
        super().__init__()
        self.summary = summary
        self.failed = failed


class LibraryCounted(Message):
    """The library's folders, size and roles were counted; ``changed``: its sounds changed
    since the browser last asked (a scan or the watcher stored something)."""

    def __init__(self, folders: list[str], segments: int, roles: list[str], *,
                 changed: bool = False) -> None:
        super().__init__()
        self.folders = folders
        self.segments = segments
        self.roles = roles
        self.changed = changed


class LibraryChanged(Message):
    """The watcher stored a change (``action`` is indexed, moved, missing, failed ...)."""

    def __init__(self, action: str, path: str) -> None:
        super().__init__()
        self.action = action
        self.path = path


class WatcherStarted(Message):
    """The watcher follows ``folders`` (or could not start: ``reason``)."""

    def __init__(self, folders: int, reason: str | None = None) -> None:
        super().__init__()
        self.folders = folders
        self.reason = reason


# -- browsing -------------------------------------------------------------------------------

class SoundsFound(Message):
    """A browse query, "more like this" or "fits with" found these segment ids."""

    def __init__(self, result: "BrowseResult") -> None:
        super().__init__()
        self.result = result


class PageLoaded(Message):
    """Rows of a result page were read from the library."""

    def __init__(self, token: int, page: int, hits: list["Hit"]) -> None:
        super().__init__()
        self.token = token
        self.page = page
        self.hits = hits


class SoundHighlighted(Message):
    """The browser's cursor is on this sound."""

    def __init__(self, hit: "Hit") -> None:
        super().__init__()
        self.hit = hit


class WaveformComputed(Message):
    """The min/max envelope of a segment (``lo``, ``hi``: shape (bins,), -1..1), or why it
    could not be read (``error``)."""

    def __init__(self, segment_id: int, lo: "np.ndarray | None", hi: "np.ndarray | None", *,
                 error: str | None = None) -> None:
        super().__init__()
        self.segment_id = segment_id
        self.lo = lo
        self.hi = hi
        self.error = error


class FolderChosen(Message):
    """A folder of the tree was picked (None: the whole library)."""

    def __init__(self, path: str | None) -> None:
        super().__init__()
        self.path = path


class SoundDropped(Message):
    """A sound dragged from the browser was let go over this widget (screen coordinates)."""

    def __init__(self, hit: "Hit", screen_x: int, screen_y: int) -> None:
        super().__init__()
        self.hit = hit
        self.screen_x = screen_x
        self.screen_y = screen_y


class DragStarted(Message):
    """The user started dragging a sound out of the browser."""

    def __init__(self, hit: "Hit") -> None:
        super().__init__()
        self.hit = hit


# -- requests to the app --------------------------------------------------------------------

class AddSound(Message):
    """Add a sound to the song: a new channel, or a clip on ``track`` at ``start_bar``."""

    def __init__(self, hit: "Hit", *, start_bar: int | None = None,
                 track: str | None = None) -> None:
        super().__init__()
        self.hit = hit
        self.start_bar = start_bar
        self.track = track


class AuditionSound(Message):
    """Play this sound now, at the song's tempo and key."""

    def __init__(self, item: Any) -> None:
        super().__init__()
        self.item = item


class ToggleStep(Message):
    """Switch step ``step`` (0..15) of a one-shot channel's pattern."""

    def __init__(self, track: str, step: int) -> None:
        super().__init__()
        self.track = track
        self.step = step


class SetChannel(Message):
    """Change a channel's mute, solo or volume (None leaves a value as it is)."""

    def __init__(self, track: str, *, mute: bool | None = None, solo: bool | None = None,
                 gain_db: float | None = None) -> None:
        super().__init__()
        self.track = track
        self.mute = mute
        self.solo = solo
        self.gain_db = gain_db


class SetMasterGain(Message):
    """Change the master fader (dB)."""

    def __init__(self, gain_db: float) -> None:
        super().__init__()
        self.gain_db = gain_db


class SetAutoMix(Message):
    """Turn the auto-mixer on (faders follow it) or off (faders are yours)."""

    def __init__(self, on: bool) -> None:
        super().__init__()
        self.on = on


class SetTempo(Message):
    def __init__(self, bpm: float) -> None:
        super().__init__()
        self.bpm = bpm


class SetKey(Message):
    def __init__(self, key: str | None) -> None:
        super().__init__()
        self.key = key


class TransportCommand(Message):
    """``play``, ``stop``, ``toggle`` or ``loop`` from the toolbar."""

    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command


class SeekTo(Message):
    """Move the playhead to ``bar`` (0-based)."""

    def __init__(self, bar: float) -> None:
        super().__init__()
        self.bar = bar


class RemoveClip(Message):
    def __init__(self, track: str, index: int) -> None:
        super().__init__()
        self.track = track
        self.index = index


class GenerateRequested(Message):
    """The AI Brain button was pressed."""


# -- facts about the song and the audio ---------------------------------------------------------

class AudioOpened(Message):
    """The audio output is ready (``audio.available`` False: no device, ``audio.error``)."""

    def __init__(self, audio: "Audio") -> None:
        super().__init__()
        self.audio = audio


class AuditionStarted(Message):
    """A sound started playing (``audition``: the player's ``Audition``: stretch, shift)."""

    def __init__(self, item: Any, audition: Any) -> None:
        super().__init__()
        self.item = item
        self.audition = audition


class SongRendered(Message):
    """Tracks of the song were rendered (track name -> (2, n) float32) for ``version``."""

    def __init__(self, version: int, stems: dict[str, "np.ndarray"],
                 notes: list[str] | None = None, played: Any = None) -> None:
        super().__init__()
        self.version = version
        self.stems = stems
        self.notes = notes or []
        self.played = played  # the whole song mixed for the transport (a PlaybackMix)


class GenerateStageReached(Message):
    """The generator reached a stage ("choosing sounds", "rendering", ...)."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GenerateStageReached)


class SongGenerated(Message):
    """A song was made (``result`` is a ``GenerateResult``) and rendered for playback."""

    def __init__(self, result: Any, stems: dict[str, "np.ndarray"], played: Any = None
                 ) -> None:
        super().__init__()
        self.result = result
        self.stems = stems
        self.played = played


class SongExported(Message):
    def __init__(self, folder: str, files: int, warnings: list[str]) -> None:
        super().__init__()
        self.folder = folder
        self.files = files
        self.warnings = warnings


class SongMixed(Message):
    """The auto-mixer decided every track's mix (``MixSettings`` by track name)."""

    def __init__(self, mixes: dict[str, Any]) -> None:
        super().__init__()
        self.mixes = mixes


class StatusNoted(Message):
    """Something worth one line in the status bar happened ("vector index was stale; rebuilt")."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class WorkFailed(Message):
    """A worker ended with an error (one line, for the status bar)."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__()
        self.what = what
        self.error = error

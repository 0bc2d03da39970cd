"""Following watched folders: new, changed, moved and deleted files show up within seconds.

The watchdog handler only queues ``(event, path)``; the watcher's own loop does the work, so
there is still one writer. A half-written WAV fires many modified events, so a file is read
only once its size and mtime have stayed the same for ``settle_s``. Watched roots are checked
every second, so a folder that is deleted and re-created (or an unplugged drive that comes
back) is picked up again.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from loopmind.library import store
from loopmind.library.audio import is_audio_path
from loopmind.library.indexer import Indexer
from loopmind.library.pipeline import is_under
from loopmind.library.scanner import walk

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    stable_since: float


class Watcher:
    """Follow the indexer's watched folders and keep the library in step.

    Args:
        indexer: does the indexing and storing (single files, in this process).
        settle_s: how long size and mtime must stay unchanged before a file is read.
        on_change: called with (action, path) after each change is stored.
    """

    def __init__(self, indexer: Indexer, *, settle_s: float | None = None,
                 on_change: Callable[[str, str], None] | None = None):
        self.indexer = indexer
        self.library = indexer.library
        self.settle_s = indexer.settings.settle_s if settle_s is None else settle_s
        self.on_change = on_change
        self.events: queue.Queue[tuple[str, str, str | None]] = queue.Queue()
        self.pending: dict[str, _Pending] = {}
        self._observer = None
        self._watches: dict[str, object] = {}
        self._roots_present: dict[str, bool] = {}
        self._last_root_check = 0.0
        self._stop = threading.Event()

    # -- watchdog side: only queue --------------------------------------------------------

    def _handler(self):
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):  # noqa: D401 - watchdog callback
                if event.event_type in ("opened", "closed_no_write"):
                    return
                src = os.fsdecode(event.src_path)
                dest = os.fsdecode(getattr(event, "dest_path", "") or "") or None
                kind = ("dir_" if event.is_directory else "") + event.event_type
                watcher.events.put((kind, src, dest))

        return Handler()

    def start(self) -> None:
        """Start the observer threads for every watched folder that exists."""
        from watchdog.observers import Observer

        self._observer = Observer()
        self._handler_obj = self._handler()
        for root in self.indexer.folders():
            self._schedule(root)
        self._observer.start()

    def _schedule(self, root: str) -> None:
        present = os.path.isdir(root)
        self._roots_present[root] = present
        if present and root not in self._watches and self._observer is not None:
            try:
                self._watches[root] = self._observer.schedule(self._handler_obj, root,
                                                              recursive=True)
            except OSError as exc:
                log.warning("cannot watch %s: %s", root, exc)

    def stop(self) -> None:
        self._stop.set()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer is not threading.current_thread():
                observer.join(timeout=5)

    # -- our side: debounce and apply ----------------------------------------------------

    def _touch(self, path: str) -> None:
        if not is_audio_path(path) or os.path.basename(path).startswith("."):
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        self.pending[path] = _Pending(st.st_size, st.st_mtime_ns, time.monotonic())

    def _under_root(self, path: str) -> bool:
        return any(is_under(path, r) for r in self._roots_present)

    def _apply_event(self, kind: str, src: str, dest: str | None) -> None:
        if kind in ("created", "modified", "closed"):
            self._touch(src)
        elif kind == "deleted":
            self.pending.pop(src, None)
            if store.mark_missing(self.library, [src]):
                self._changed("missing", src)
        elif kind == "moved" and dest:
            self.pending.pop(src, None)
            if not self._under_root(dest) or not is_audio_path(dest):
                if store.mark_missing(self.library, [src]):
                    self._changed("missing", src)
            elif store.move(self.library, src, dest):
                self._changed("moved", dest)
            else:
                self._touch(dest)  # e.g. a temp file renamed into place
        elif kind in ("dir_created",):
            self._scan_dir(src)
        elif kind == "dir_deleted":
            self.pending = {p: v for p, v in self.pending.items() if not is_under(p, src)}
            if store.mark_missing_under(self.library, src):
                self._changed("missing", src)
        elif kind == "dir_moved" and dest:
            if self._under_root(dest):
                n = store.move_tree(self.library, src, dest)
                self._scan_dir(dest)
                if n:
                    self._changed("moved", dest)
            elif store.mark_missing_under(self.library, src):
                self._changed("missing", src)

    def _scan_dir(self, folder: str) -> None:
        # files created before the new folder's inotify watch existed fire no event
        for f in walk(folder):
            if f.error is None:
                self._touch(f.path)

    def _check_roots(self) -> None:
        for root in list(self._roots_present) or self.indexer.folders():
            present = os.path.isdir(root)
            was = self._roots_present.get(root, False)
            if was and not present:
                self._watches.pop(root, None)
                if store.mark_missing_under(self.library, root):
                    self._changed("missing", root)
            elif present and not was:
                self._watches.pop(root, None)
                self._schedule(root)
                self._scan_dir(root)
            self._roots_present[root] = present
        for root in self.indexer.folders():
            if root not in self._roots_present:
                self._schedule(root)
                self._scan_dir(root)

    def _changed(self, action: str, path: str) -> None:
        if self.on_change:
            self.on_change(action, path)

    def process_once(self, now: float | None = None) -> int:
        """Apply queued events and index files that have settled; returns files indexed."""
        while True:
            try:
                kind, src, dest = self.events.get_nowait()
            except queue.Empty:
                break
            try:
                self._apply_event(kind, src, dest)
            except Exception:  # noqa: BLE001 - one bad event must not stop the watcher
                log.exception("watch event %s %s failed", kind, src)
        now = time.monotonic() if now is None else now
        if now - self._last_root_check >= 1.0:
            self._last_root_check = now
            self._check_roots()
        done = 0
        for path, p in list(self.pending.items()):
            try:
                st = os.stat(path)
            except OSError:
                self.pending.pop(path, None)
                continue
            if (st.st_size, st.st_mtime_ns) != (p.size, p.mtime_ns):
                self.pending[path] = _Pending(st.st_size, st.st_mtime_ns, now)
                continue
            if now - p.stable_since < self.settle_s:
                continue
            self.pending.pop(path, None)
            outcome = self.indexer.index_file(path)
            self._changed(outcome.action, path)
            done += 1
        return done

    def run(self, *, poll_s: float = 0.05, until: Callable[[], bool] | None = None) -> None:
        """Loop until ``stop()`` (or ``until()`` is true), applying changes as they come."""
        if self._observer is None:
            self.start()
        try:
            while not self._stop.is_set() and not (until and until()):
                self.process_once()
                self._stop.wait(poll_s)
        finally:
            self.stop()


def watch_in_thread(indexer: Indexer, **kwargs) -> tuple[Watcher, threading.Thread]:
    """Start a watcher in a daemon thread (the app's and tests' way)."""
    w = Watcher(indexer, **kwargs)
    w.start()
    t = threading.Thread(target=w.run, name="loopmind-watcher", daemon=True)
    t.start()
    return w, t


__all__ = ["Watcher", "watch_in_thread"]

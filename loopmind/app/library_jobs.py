"""The studio's side of the library: open it, build the demo library when there is none, catch
up with the watched folders, then follow them for as long as the app is open.

A mixin of ``LoopMindApp``: one thread worker (group "library") opens the library and posts
``LibraryOpened`` at once, so the browser can start while the counts, the vector index and the
scan follow; the same worker then runs the watcher until the app closes (its cancellation
stops it). Indexing progress and every change the watcher stores arrive as messages.
"""

from __future__ import annotations

import os

from textual import work
from textual.worker import Worker, get_current_worker

from loopmind.app import messages as m
from loopmind.app.widgets.browser import Browser
from loopmind.app.workers import one_line

REFRESH_DELAY_S = 0.5  # the watcher's changes within this time refresh the browser once


class LibraryJobs:
    """Opening, scanning and watching the library (mixed into the app)."""

    @work(thread=True, exclusive=True, group="library", exit_on_error=False,
          description="opening the library")
    def _open_library(self) -> None:
        from loopmind.app.pager import library_summary, watched_folders
        from loopmind.errors import LoopMindError
        from loopmind.library.db import Library

        worker = get_current_worker()
        lib = Library(self.settings)
        folders = watched_folders(lib)
        self.post_message(m.LibraryOpened(lib, folders))  # the browser starts now
        self.post_message(m.LibraryCounted(*library_summary(lib)))
        catalog = None
        try:
            from loopmind.index.catalog import Catalog

            catalog = Catalog(lib, on_message=lambda msg: self.post_message(
                m.StatusNoted(msg)))
            self.post_message(m.CatalogOpened(catalog))
        except LoopMindError as exc:
            self.post_message(m.CatalogOpened(None, one_line(exc)))
        add_demo = not folders and self.demo
        if not (self.watch or add_demo) or worker.is_cancelled:
            return
        from loopmind.library.indexer import Indexer  # the pipeline: scipy and friends

        indexer = Indexer(lib)
        if add_demo:
            from loopmind.demo import build_demo_library

            self.post_message(m.ScanProgressed(0, 0, stage="building the demo library"))
            build_demo_library(self.settings.demo_dir)
            indexer.add_folder(self.settings.demo_dir)
        try:
            with lib.indexer_lock():
                self._scan(indexer, catalog, worker)
                if self.watch and not worker.is_cancelled:
                    self._follow(indexer, catalog, worker)
        except LoopMindError as exc:  # another LoopMind indexes this library: just browse
            self.post_message(m.WatcherStarted(0, reason=one_line(exc)))

    def _scan(self, indexer, catalog, worker: Worker | None = None) -> None:
        from loopmind.app.pager import library_summary

        def progress(done, total, res) -> None:
            current = os.path.basename(res.path) if res is not None else ""
            self.post_message(m.ScanProgressed(done, total, current))

        # quitting mid-scan: the files in flight are stored and the app closes; the next
        # start goes on where this one stopped
        report = indexer.scan(progress=progress,
                              stop=(lambda: worker.is_cancelled) if worker is not None else None)
        if report.stopped:
            return
        if catalog is not None:
            stale = catalog.stale_count()
            if stale:
                self.post_message(m.ScanProgressed(0, 0, stage=f"embedding {stale} sounds"))
                catalog.reembed(progress=lambda d, t: self.post_message(
                    m.ScanProgressed(d, t, stage="embedding")))
            catalog.vectors()
            catalog.save()
        summary = (f"{report.seen} files: {report.indexed} indexed, {report.unchanged} "
                   f"unchanged, {report.missing} gone, {report.failed} failed")
        self.post_message(m.ScanFinished(summary, report.failed))
        changed = bool(report.indexed or report.moved or report.missing or report.failed)
        self.post_message(m.LibraryCounted(*library_summary(indexer.library), changed=changed))

    def _follow(self, indexer, catalog, worker: Worker) -> None:
        from loopmind.library.watcher import Watcher

        def on_change(action: str, path: str) -> None:
            if catalog is not None:
                catalog.sync()  # "more like this" sees new sounds at once
            self.post_message(m.LibraryChanged(action, path))

        watcher = Watcher(indexer, on_change=on_change)
        self._watcher = watcher
        watcher.start()
        self.post_message(m.WatcherStarted(len(indexer.folders())))
        watcher.run(until=lambda: worker.is_cancelled)

    def on_library_opened(self, event: m.LibraryOpened) -> None:
        self.library, self.folders = event.library, event.folders
        self.studio.query_one(Browser).attach(event.library, event.folders)
        self.status.say("library open")

    def on_catalog_opened(self, event: m.CatalogOpened) -> None:
        self._freeze_heap()
        self.catalog = event.catalog
        self.studio.query_one(Browser).catalog = event.catalog
        if event.error:
            self.status.say(f"no search by sound: {event.error}", error=True)

    def on_scan_progressed(self, event: m.ScanProgressed) -> None:
        self.status.progress(event.done, event.total, stage=event.stage,
                             current=event.current)

    def on_scan_finished(self, event: m.ScanFinished) -> None:
        self.status.idle()
        self.status.say(event.summary, error=event.failed > 0)

    @staticmethod
    def _freeze_heap() -> None:
        """Move what start-up made (modules, widgets, the library's engine) out of the garbage
        collector's sight: a full collection of that heap stalls every thread, the UI's too,
        for 100 ms and more, and a worker reading 100,000 rows triggers one."""
        import gc

        gc.freeze()

    def on_library_counted(self, event: m.LibraryCounted) -> None:
        self._freeze_heap()
        browser = self.studio.query_one(Browser)
        if event.folders != self.folders:
            browser.show_folders(event.folders)
        self.folders = event.folders
        self.status.library(event.segments, len(event.folders))
        browser.show_roles(event.roles)
        if event.changed:
            browser.run_query()

    def on_watcher_started(self, event: m.WatcherStarted) -> None:
        if event.reason:
            self.status.say(f"not watching: {event.reason}", error=True)
        else:
            self.status.idle(f"watching {event.folders} folder{'s' * (event.folders != 1)}")

    def on_library_changed(self, event: m.LibraryChanged) -> None:
        self.status.say(f"{event.action}: {os.path.basename(event.path)}",
                        error=event.action == "failed")
        if self._refresh_timer is not None:
            self._refresh_timer.stop()
        self._refresh_timer = self.set_timer(REFRESH_DELAY_S, self._count_library)

    @work(thread=True, exclusive=True, group="count", exit_on_error=False,
          description="counting the library")
    def _count_library(self) -> None:
        from loopmind.app.pager import library_summary

        self.post_message(m.LibraryCounted(*library_summary(self.library), changed=True))

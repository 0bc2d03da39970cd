"""Scanning watched folders into the library (used by ``loopmind add/scan``, the watcher and
the app alike)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlmodel import select

from loopmind.errors import LibraryError
from loopmind.library import store, textindex
from loopmind.library.db import Library
from loopmind.library.models import ANALYSIS_VERSION, AudioFile, WatchedFolder
from loopmind.library.pipeline import (FileResult, Job, file_hash, is_legacy_hash, is_under,
                                       legacy_file_hash, resolve_folder,
                                       run_jobs)
from loopmind.library.scanner import Found, display_path, walk

log = logging.getLogger(__name__)

EventFn = Callable[[str, store.StoreOutcome], None]


@dataclass
class ScanReport:
    """Counts of one scan, and the per-file errors it met."""

    seen: int = 0
    indexed: int = 0
    unchanged: int = 0
    moved: int = 0
    failed: int = 0
    missing: int = 0
    segments: int = 0
    audio_s: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rehashed: int = 0  # unchanged files given their BLAKE3 hash in place of a legacy one
    stopped: bool = False  # asked to stop before every file was read: the next scan goes on


class Indexer:
    """Runs the pipeline over folders or single files and stores the results.

    Args:
        library: the open library (its writer is used for every store).
        workers: analysis processes (default: the settings' count, i.e. the cores).
        on_event: called after each store with ("indexed" | "failed" | "moved" |
            "unchanged" | "missing", outcome) -- the hook other parts react to.
        embedder_name: the embedder of the embed stage (default: the settings').
    """

    def __init__(self, library: Library, *, workers: int | None = None,
                 on_event: EventFn | None = None, embedder_name: str | None = None):
        self.library = library
        self.settings = library.settings
        self.workers = workers or self.settings.workers
        self.on_event = on_event
        # the settings' embedder unless told otherwise ("" embeds nothing)
        self.embedder_name = self.settings.embedder if embedder_name is None else embedder_name

    # -- folders -------------------------------------------------------------------------

    def add_folder(self, folder: str | os.PathLike) -> str:
        """Register a watched folder (it must exist and be a directory)."""
        path = resolve_folder(folder)
        if not os.path.isdir(path):
            raise LibraryError(f"not a folder: {display_path(path)}")
        with self.library.write() as session:
            if session.exec(select(WatchedFolder).where(WatchedFolder.path == path)).first() is None:
                session.add(WatchedFolder(path=path))
        return path

    def remove_folder(self, folder: str | os.PathLike) -> int:
        """Stop watching a folder; its files leave the listings (rows kept as missing)."""
        path = resolve_folder(folder)
        with self.library.write() as session:
            row = session.exec(select(WatchedFolder).where(WatchedFolder.path == path)).first()
            if row is None:
                raise LibraryError(f"not a watched folder: {display_path(path)}")
            session.delete(row)
        return store.mark_missing_under(self.library, path)

    def folders(self) -> list[str]:
        with self.library.session() as session:
            return [f.path for f in session.exec(select(WatchedFolder)).all()]

    # -- scanning ------------------------------------------------------------------------

    def scan(self, folders: Iterable[str] | None = None, *,
             progress: Callable[[int, int, FileResult | None], None] | None = None,
             stop: Callable[[], bool] | None = None) -> ScanReport:
        """Incrementally index folders (all watched folders by default).

        Unchanged files (same size and mtime) are skipped; changed ones whose content hash is
        the same only get their stat updated; files that vanished are marked missing; a new
        path with the content of a vanished file is that file, moved.

        Args:
            stop: polled before each file is started (the app passes its quit flag); when it
                returns True the files in flight are stored and the scan returns with
                ``stopped`` set. Everything stored so far stays; the next scan does the rest.
        """
        report = ScanReport()
        targets = [resolve_folder(f) for f in (folders if folders is not None else self.folders())]
        with self.library.session() as session:
            # plain rows of the columns the scan reads: loading 100,000 ORM objects took
            # about 2 s of a rescan that otherwise only walks and stats the folders
            known = {os.fsdecode(r.path_bytes): r for r in session.exec(select(
                AudioFile.id, AudioFile.path_bytes, AudioFile.status, AudioFile.size,
                AudioFile.mtime_ns, AudioFile.analysis_version, AudioFile.content_hash)).all()}
        found: list[Found] = []
        for folder in targets:
            if not os.path.isdir(folder):
                report.warnings.append(f"folder not found: {display_path(folder)}")
                report.missing += store.mark_missing_under(self.library, folder)
                continue
            found.extend(walk(folder))
        report.seen = len(found)
        on_disk = {f.path for f in found}
        vanished = {p: r for p, r in known.items()
                    if r.status != "missing" and p not in on_disk
                    and any(is_under(p, t) for t in targets)}
        by_size: dict[int, list[str]] = {}
        for p, r in vanished.items():
            by_size.setdefault(r.size, []).append(p)

        jobs: list[Job] = []
        rehash: list[tuple[int, str]] = []  # unchanged files whose row holds a legacy hash
        for f in found:
            if f.error:
                self._emit(store.store_error(self.library, f.path, f.error), report)
                continue
            row = known.get(f.path)
            if row is not None and row.status in ("ok", "error") and row.size == f.size \
                    and row.mtime_ns == f.mtime_ns and row.analysis_version == ANALYSIS_VERSION:
                report.unchanged += 1
                if row.status == "ok" and is_legacy_hash(row.content_hash):
                    rehash.append((row.id, f.path))
                continue
            if row is None and f.size in by_size:
                moved = self._try_move(f, by_size[f.size], vanished)
                if moved:
                    report.moved += 1
                    continue
            known_hash = None
            if row is not None and row.status == "ok" and row.analysis_version == ANALYSIS_VERSION:
                known_hash = row.content_hash
            jobs.append(Job(f.path, known_hash))

        if rehash:
            report.rehashed = self._rehash(rehash, stop)
        total = len(jobs)
        done = 0
        if progress:
            progress(0, total, None)

        def on_result(res: FileResult) -> None:
            nonlocal done
            done += 1
            outcome = store.store_result(self.library, res)
            self._emit(outcome, report)
            if res.duration_s and not res.error:
                report.audio_s += res.duration_s
            if progress:
                progress(done, total, res)

        finished = run_jobs(jobs, workers=min(self.workers, max(1, total)),
                            on_result=on_result, max_duration_s=self.settings.max_duration_s,
                            sr=self.settings.analysis_sr, embedder_name=self.embedder_name,
                            stop=stop)
        report.stopped = not finished
        gone = [p for p in vanished if not os.path.exists(p)]
        report.missing += store.mark_missing(self.library, gone)
        if report.indexed >= textindex.OPTIMIZE_AFTER:
            with self.library.write() as session:
                textindex.optimize(session)
        return report

    def _rehash(self, files: list[tuple[int, str]], stop: Callable[[], bool] | None) -> int:
        """Give rows that still hold a legacy content hash their file's current hash (one
        read of each file, once per library; a transaction per 200 files). Returns the count
        replaced; a file that cannot be read keeps its hash until a later scan."""
        done = 0
        for a in range(0, len(files), 200):
            if stop is not None and stop():
                break
            digests = []
            for file_id, path in files[a:a + 200]:
                try:
                    digests.append((file_id, file_hash(path)))
                except OSError:
                    continue
            with self.library.write() as session:
                for file_id, digest in digests:
                    row = session.get(AudioFile, file_id)
                    if row is not None:
                        row.content_hash = digest
                        session.add(row)
            done += len(digests)
        return done

    def _try_move(self, f: Found, candidates: list[str], vanished: dict) -> bool:
        digests: dict[bool, str] = {}  # the file's hash of each form a candidate holds
        for old in candidates:  # the loop returns as soon as it removes one
            row = vanished.get(old)
            if row is None or not row.content_hash:
                continue
            legacy = is_legacy_hash(row.content_hash)
            if legacy not in digests:
                try:
                    digests[legacy] = (legacy_file_hash if legacy else file_hash)(f.path)
                except OSError:
                    return False
            if row.content_hash == digests[legacy]:
                store.move(self.library, old, f.path)
                vanished.pop(old, None)
                candidates.remove(old)
                if self.on_event:
                    self.on_event("moved", store.StoreOutcome("moved", row.id, f.path))
                return True
        return False

    def _emit(self, outcome: store.StoreOutcome, report: ScanReport) -> None:
        if outcome.action == "failed":
            report.failed += 1
            report.errors.append((display_path(outcome.path), outcome.error or "error"))
        elif outcome.action == "unchanged":
            report.unchanged += 1
        elif outcome.action == "moved":
            report.moved += 1
        else:
            report.indexed += 1
            report.segments += outcome.segments
        if self.on_event:
            self.on_event(outcome.action, outcome)

    # -- single files (the watcher) ------------------------------------------------------

    def index_file(self, path: str) -> store.StoreOutcome:
        """Index one file now, in this process (the watcher's path: no pool start-up)."""
        from loopmind.library.pipeline import process_file

        with self.library.session() as session:
            row = session.exec(select(AudioFile).where(
                AudioFile.path_bytes == os.fsencode(path))).first()
        known_hash = row.content_hash if row is not None and row.status == "ok" else None
        res = process_file(path, known_hash=known_hash,
                           max_duration_s=self.settings.max_duration_s,
                           sr=self.settings.analysis_sr, embedder_name=self.embedder_name)
        outcome = store.store_result(self.library, res)
        if self.on_event:
            self.on_event(outcome.action, outcome)
        return outcome

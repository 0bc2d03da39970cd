"""The indexing pipeline: discover → skip unchanged → decode → chop → analyze → embed → store.

Decode, chop, analyze and embed run in worker processes (pure functions of a path); store runs
in the calling process and is the only writer: one transaction per file, then an event. A bad
file becomes a stored error and the batch goes on. Because every file is committed on its own,
a scan killed at any moment and started again finishes with no duplicate and no missing rows.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from loopmind.errors import LoopMindError

log = logging.getLogger(__name__)


@dataclass
class FileResult:
    """What the worker stages produced for one file."""

    path: str
    size: int = 0
    mtime_ns: int = 0
    content_hash: str | None = None
    format: str | None = None
    subtype: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float | None = None
    segments: list = field(default_factory=list)
    error: str | None = None
    unchanged: bool = False  # content hash equals the known one: nothing to re-analyze
    elapsed_s: float = 0.0


# Content hashes are BLAKE3 (256 bits, 64 hex digits), about seven times the speed of the
# BLAKE2b-128 (32 hex digits) that libraries indexed before 2026-12-07 hold. A stored hash of
# that form still identifies its file: it is compared with its own algorithm
# (``content_matches``), and a scan replaces it with the file's BLAKE3 (``Indexer.scan``)
LEGACY_HASH_HEX = 32


def is_legacy_hash(digest: str | None) -> bool:
    """Whether a stored content hash is of the legacy form (BLAKE2b-128)."""
    return digest is not None and len(digest) == LEGACY_HASH_HEX


def file_hash(path: str | os.PathLike) -> str:
    """Content hash (BLAKE3-256, hex) of a file.

    Read through a reused buffer, never memory-mapped: a mapped file that another program
    truncates meanwhile (a sample being rewritten as the watcher sees it) kills the reader.
    """
    from blake3 import blake3

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, blake3).hexdigest()


def legacy_file_hash(path: str | os.PathLike) -> str:
    """The legacy content hash (BLAKE2b-128, hex) of a file."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def content_matches(path: str | os.PathLike, stored: str | None,
                    data: bytes | None = None) -> tuple[str, bool]:
    """(the file's content hash, whether its content is the one ``stored`` names), with
    ``stored`` of either form; a legacy one is checked in the same read.

    Args:
        data: the file's bytes when the caller has read it whole (nothing is read then).
    """
    from blake3 import blake3

    if data is not None:
        h = blake3(data).hexdigest()
        if is_legacy_hash(stored):
            return h, hashlib.blake2b(data, digest_size=16).hexdigest() == stored
        return h, h == stored
    if not is_legacy_hash(stored):
        h = file_hash(path)
        return h, h == stored
    new, old = blake3(), hashlib.blake2b(digest_size=16)
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            new.update(view[:n])
            old.update(view[:n])
    return new.hexdigest(), old.hexdigest() == stored


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def process_file(path: str, *, known_hash: str | None = None,
                 max_duration_s: float | None = None, sr: int = 22050,
                 embedder_name: str | None = None) -> FileResult:
    """Run the worker stages for one file; never raises for a bad file.

    Args:
        path: the file (str; non-UTF-8 names are surrogate-escaped).
        known_hash: the stored content hash; when equal, analysis is skipped.
        max_duration_s: longer files are refused.
        sr: analysis sample rate.
        embedder_name: the embedder to run in the embed stage (None: no embedding yet).
    """
    from loopmind.library.analysis.segments import analyze_audio
    from loopmind.library.audio import check_duration, decode, probe, read_wav_image

    t0 = time.perf_counter()
    result = FileResult(path=path)
    try:
        st = os.stat(path)
        result.size, result.mtime_ns = st.st_size, st.st_mtime_ns
        # a small plain WAV is read once, for the hash and the decoder
        image = read_wav_image(path, st.st_size)
        # else the header first: an hour-long file is refused before 600 MB are read for a
        # hash
        info = image.info if image is not None else probe(path)
        check_duration(info, max_duration_s)
        result.content_hash, same = content_matches(
            path, known_hash, data=image.data if image is not None else None)
        if same:
            result.unchanged = True
            return result
        decoded = decode(path, sr=sr, max_duration_s=max_duration_s, info=info, image=image)
        image = None  # up to 32 MB of file bytes, not needed by the analysis
        info = decoded.info
        result.format, result.subtype = info.format, info.subtype
        result.sample_rate, result.channels = info.sr, info.channels
        result.duration_s = round(info.duration_s, 4)
        embedder = _embedder(embedder_name)
        result.segments = analyze_audio(
            decoded, path=path, embed=embedder.embed if embedder else None,
            embedder=f"{embedder.name}/{embedder.version}" if embedder else None)
    except LoopMindError as exc:
        result.error = _one_line(exc)
    except PermissionError:
        result.error = "permission denied"
    except OSError as exc:
        result.error = exc.strerror or _one_line(exc)
    except MemoryError:
        result.error = "out of memory"
    except Exception as exc:  # noqa: BLE001 - an analyzer bug must not stop the batch
        log.debug("analysis failed for %r", path, exc_info=True)
        result.error = f"analysis failed ({type(exc).__name__}: {_one_line(exc)})"
    finally:
        result.elapsed_s = time.perf_counter() - t0
    return result


def _embedder(name: str | None):
    """The embed stage's embedder (None: no embedding, e.g. tests of analysis alone)."""
    if not name:
        return None
    from loopmind.index.embed import get_embedder

    return get_embedder(name)


@dataclass
class Job:
    path: str
    known_hash: str | None = None


ProgressFn = Callable[[FileResult], None]


PRELOAD = ["__main__", "loopmind.library.preload"]


def pool_context():
    """The multiprocessing context the analysis pool runs in: workers forked from a fork
    server that has ``loopmind.library.preload`` imported (the analysis modules and models),
    with one BLAS thread each. Call before the fork server starts (the first pool, or the
    app's ``start_process_helpers``); later calls change nothing in a running server."""
    import multiprocessing as mp

    # one BLAS thread per worker: the pool already uses every core, and nested BLAS threads
    # would only fight over them (set before the forkserver starts, so workers inherit it)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def run_jobs(jobs: Iterable[Job], *, workers: int, on_result: ProgressFn,
             max_duration_s: float | None, sr: int, embedder_name: str | None = None,
             stop: Callable[[], bool] | None = None) -> bool:
    """Process jobs in a pool of ``workers`` processes (inline when 1), calling ``on_result``
    in this process for each file as it finishes. At most 2 × workers files are in flight,
    so memory stays bounded.

    Args:
        stop: polled before each new file is started; once it returns True no file is
            started, the files in flight finish (and are passed to ``on_result``).

    Returns:
        True when every job ran, False when ``stop`` ended the run early.
    """
    kwargs = dict(max_duration_s=max_duration_s, sr=sr, embedder_name=embedder_name)
    if workers <= 1:
        for job in jobs:
            if stop is not None and stop():
                return False
            on_result(process_file(job.path, known_hash=job.known_hash, **kwargs))
        return True
    ctx = pool_context()
    pending: dict[Future, Job] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        try:
            it = iter(jobs)
            exhausted = stopped = False
            while True:
                while not exhausted and len(pending) < 2 * workers:
                    if stop is not None and stop():
                        exhausted = stopped = True
                        break
                    try:
                        job = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    fut = pool.submit(process_file, job.path, known_hash=job.known_hash,
                                      **kwargs)
                    pending[fut] = job
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        res = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died (OOM kill, ...)
                        res = FileResult(path=job.path,
                                         error=f"worker failed ({type(exc).__name__})")
                    on_result(res)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return not stopped


def resolve_folder(folder: str | os.PathLike) -> str:
    """Absolute, normalized folder path (symlinks kept as the user named them)."""
    return os.path.normpath(os.path.abspath(os.fspath(folder)))


def is_under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or inside it (by path components, not by prefix:
    "/a/bc" is not under "/a/b")."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


"""The library database: engine, sessions, migrations and the one writer.

SQLite in WAL mode, so readers (the app, ``loopmind ls``) never block the indexer. Every write
goes through ``Library.write()``, a transaction under the library's writer lock; across
processes, ``indexer_lock()`` makes sure only one scanner or watcher indexes a library at a
time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from loopmind.config import Settings, get_settings
from loopmind.errors import LibraryError

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "migrations"


def _on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _alembic_config(engine_url: str):
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").exists():
        raise LibraryError(f"migrations not found in {MIGRATIONS_DIR} (install with pip -e)")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine_url)
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config("sqlite://")
    return ScriptDirectory.from_config(cfg).get_current_head()


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (no-op when it is current)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head_revision():
        return
    cfg = _alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Library:
    """An open library database.

    Args:
        settings: where the database lives (defaults to the process settings).
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        path = self.settings.db_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(f"cannot create {path.parent}: {exc.strerror}") from None
        self.engine = create_engine(f"sqlite:///{path}",
                                    connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(self.engine, "connect", _on_connect)
        self._write_lock = threading.RLock()
        try:
            migrate(self.engine)
        except LibraryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt or foreign database file
            raise LibraryError(f"cannot open library {path}: {str(exc).splitlines()[0]}") from None

    def session(self) -> Session:
        """A read session (use as a context manager)."""
        return Session(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction under the writer lock: committed on success, rolled back on error."""
        from sqlalchemy.exc import OperationalError

        with self._write_lock:
            with Session(self.engine, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except (OperationalError, sqlite3.OperationalError) as exc:
                    session.rollback()
                    # a full disk or a read-only database: nothing was written, say so once
                    # (the store's fast path raises the driver's own error, unwrapped)
                    orig = getattr(exc, "orig", exc)
                    reason = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
                    raise LibraryError(f"cannot write to the library ({reason})") from None
                except BaseException:
                    session.rollback()
                    raise

    @contextlib.contextmanager
    def indexer_lock(self, *, wait: bool = False) -> Iterator[None]:
        """Hold the cross-process lock that makes this process the library's only indexer."""
        lock_path = self.settings.data_dir / "indexer.lock"
        fh = open(lock_path, "a+")
        try:
            flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
            try:
                fcntl.flock(fh, flags)
            except BlockingIOError:
                fh.seek(0)
                other = fh.read().strip() or "?"
                raise LibraryError(
                    f"another LoopMind indexer (pid {other}) is working on this library") from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Fixtures for the studio's pilot and snapshot tests.

- ``studio_settings``: a small library (``make_audio_folder``: three loops, four one-shots)
  indexed with vectors once per session in its own home; tests only read it.
- ``make_app``: the studio on those settings with an offline audio engine (no device, no
  thread: deterministic), no watcher and no demo build unless asked.

Helpers (waiting for workers, capturing messages, running async tests) are in ``helpers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_audio import make_audio_folder

from tests.app.helpers import app_settings, device_engine


@pytest.fixture(scope="session")
def studio_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sounds of the studio tests, in a folder whose name does not change between runs
    (the folder tree shows it in the snapshots)."""
    folder = tmp_path_factory.mktemp("studio", numbered=True) / "pack"
    make_audio_folder(folder)
    return folder


@pytest.fixture(scope="session")
def studio_settings(tmp_path_factory: pytest.TempPathFactory, studio_pack: Path):
    """Settings of a home where ``studio_pack`` is watched and indexed, with vectors."""
    from loopmind.index.catalog import Catalog
    from loopmind.library.db import Library
    from loopmind.library.indexer import Indexer

    settings = app_settings(tmp_path_factory.mktemp("studio-home"))
    lib = Library(settings)
    indexer = Indexer(lib)
    indexer.add_folder(studio_pack)
    report = indexer.scan()
    assert report.failed == 0 and report.indexed == 7, report
    catalog = Catalog(lib)
    catalog.reembed()
    catalog.vectors()
    catalog.save()
    lib.close()
    return settings


@pytest.fixture
def make_app(studio_settings):
    """``make_app(**kwargs)``: a ``LoopMindApp`` on the studio library (offline audio)."""
    from loopmind.app.app import LoopMindApp

    def make(settings=None, *, available: bool = True, watch: bool = False,
             demo: bool = False, **kwargs):
        return LoopMindApp(settings or studio_settings,
                           engine=device_engine(available), watch=watch, demo=demo,
                           **kwargs)

    return make



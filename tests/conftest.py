"""Shared fixtures: an isolated LoopMind home for every test, seeded randomness, and audio.

Every test runs with ``LOOPMIND_HOME`` pointing at its own empty temporary folder (outside the
test's ``tmp_path``, so a test that scans ``tmp_path`` never finds LoopMind's own files), the
settings cache cleared before and after, and the XDG folders redirected too, so nothing can
reach the user's real library, config or caches.

Audio helpers live in ``fixtures_audio.py`` (import it as ``from fixtures_audio import ...``).
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import fixtures_audio directly

from fixtures_audio import SEED, make_audio_folder  # noqa: E402


@pytest.fixture(autouse=True)
def loopmind_home(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every LoopMind path at a fresh temporary folder (not yet created) and reseed.

    Returns:
        the folder ``LOOPMIND_HOME`` names; ``get_settings()`` derives every path from it.
    """
    from loopmind import config

    home = tmp_path_factory.mktemp("loopmind-home", numbered=True) / "home"
    for var in [v for v in os.environ if v.startswith("LOOPMIND_")]:
        monkeypatch.delenv(var)  # a developer's LOOPMIND_WORKERS etc. must not leak in
    monkeypatch.setenv("LOOPMIND_HOME", str(home))
    xdg = home.parent / "xdg"
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(xdg / var.lower()))
    random.seed(SEED)
    np.random.seed(SEED)  # for any code still on the legacy global generator
    config.set_settings(None)
    yield home
    config.set_settings(None)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh ``numpy.random.default_rng(440)`` per test."""
    return np.random.default_rng(SEED)


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthesized demo library, built once per session (about 4 s, 26 MB). Read-only:
    copy what you need before changing anything.

    Returns:
        its folder; ``loopmind.demo.read_manifest(folder)`` gives the truth per file.
    """
    from loopmind.demo import build_demo_library

    folder = tmp_path_factory.mktemp("demo-library")
    build_demo_library(folder, seed=0)
    return folder


@pytest.fixture(scope="session")
def demo_manifest(demo_library: Path) -> dict:
    """The demo library's manifest (``demo-manifest.json``) as a dict."""
    from loopmind.demo import read_manifest

    manifest = read_manifest(demo_library)
    assert manifest is not None
    return manifest


@pytest.fixture
def audio_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder with a few generated loops and one-shots (see AUDIO_FOLDER_TRUTH).

    Function-scoped, so a test may move, edit or delete files in it.
    """
    folder = tmp_path_factory.mktemp("audio-folder")
    make_audio_folder(folder)
    return folder


@pytest.fixture(scope="session")
def indexed_demo(tmp_path_factory: pytest.TempPathFactory, demo_library: Path):
    """The demo library copied, watched and indexed (with vectors) in its own home, once per
    session. Read-only for tests: ``(library, folder)``."""
    import shutil

    from loopmind.config import Settings
    from loopmind.library.db import Library
    from loopmind.library.indexer import Indexer

    home = tmp_path_factory.mktemp("indexed-demo-home")
    root = tmp_path_factory.mktemp("indexed-demo") / "pack"
    shutil.copytree(demo_library, root)
    settings = Settings.from_env({"LOOPMIND_HOME": str(home), "LOOPMIND_WORKERS": "2"})
    lib = Library(settings)
    idx = Indexer(lib)
    idx.add_folder(root)
    report = idx.scan()
    assert report.failed == 0, report.errors
    return lib, root


@pytest.fixture
def stretch_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Every call of the renderer's stretcher, as (stretch, semitones): a cache hit makes
    none."""
    from loopmind.generate import render

    calls: list[tuple[float, float]] = []
    real = render._stretch

    def counted(y, sr, *, stretch, semitones, high_quality=False):
        calls.append((stretch, semitones))
        return real(y, sr, stretch=stretch, semitones=semitones, high_quality=high_quality)

    monkeypatch.setattr(render, "_stretch", counted)
    return calls

"""Architecture rules: no Textual outside app/, nothing heavy at import, a fast --help."""

import subprocess
import sys

CORE = ["loopmind.library.indexer", "loopmind.library.watcher", "loopmind.library.queries",
        "loopmind.library.analysis.segments", "loopmind.index", "loopmind.generate",
        "loopmind.player", "loopmind.cli"]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_works_without_textual():
    mods = _modules_after("\n".join(f"import {m}" for m in CORE))
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)


def test_cli_import_is_light():
    mods = _modules_after("import loopmind.cli")
    heavy = {"torch", "numpy", "scipy", "sqlalchemy", "sqlmodel", "librosa", "faiss",
             "textual", "soundfile", "watchdog", "rich"}
    assert not heavy & {m.split(".")[0] for m in mods}


def test_help_runs():
    out = subprocess.run([sys.executable, "-m", "loopmind", "--help"], capture_output=True,
                         text=True, check=True)
    assert "analyze" in out.stdout and "watch" in out.stdout

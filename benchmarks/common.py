"""Shared helpers for benchmarks: the dev set's labels and the machine's description."""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
from pathlib import Path

SHARED_EVAL = Path(os.environ.get("LOOPMIND_EVAL_LABELS",
                                  Path(__file__).resolve().parents[2] / "shared" / "eval"))
EVAL_DATA = Path(os.environ.get("LOOPMIND_EVAL_DATA", "/work/eval-data"))


def labels(task: str | None = None) -> list[dict]:
    """Rows of the dev set's labels.csv (paths made absolute), optionally one task."""
    path = SHARED_EVAL / "labels.csv"
    if not path.exists():
        raise SystemExit(f"labels not found at {path}; set LOOPMIND_EVAL_LABELS")
    if not EVAL_DATA.exists():
        raise SystemExit(f"dev set audio not found at {EVAL_DATA}: build it with "
                         f"{SHARED_EVAL}/build.sh {EVAL_DATA} (or set LOOPMIND_EVAL_DATA)")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["abspath"] = str(EVAL_DATA / r["path"])
    return [r for r in rows if task is None or r["task"] == task]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
            f"{_dt.date.today().isoformat()}")


def write_result(out: str | os.PathLike, text: str) -> None:
    """Write a benchmark's markdown result and echo it."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    print(text)


def audio_paths(limit: int = 0) -> list[str]:
    """The dev set's audio files (every task but the FL projects), sorted; with ``limit``,
    that many evenly spaced ones."""
    paths = sorted({r["abspath"] for r in labels() if r["task"] != "flp"})
    if limit:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    return paths


"""What the three trained models share: checkpoints, devices, seeding, progress, model cards.

A checkpoint is a safetensors file (raw float32 arrays and a JSON header, so loading never
executes code) whose metadata holds one JSON document under ``"loopmind"``: ``{"model",
"version", "shapes", "vocab", "features", ...}``. ``load_checkpoint`` checks the model name,
the format version and every array's shape against what the running code expects, and raises
a one-line ``ModelError`` otherwise; callers log it and use the rule-based path.

Trained checkpoints go to ``<data dir>/models/<name>.safetensors``; the repository ships
defaults in ``models/``. The user's own file wins over the shipped one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loopmind.errors import LoopMindError

log = logging.getLogger(__name__)

SHIPPED_MODELS_DIR = Path(__file__).resolve().parents[3] / "models"
_META_KEY = "loopmind"


class ModelError(LoopMindError):
    """A checkpoint is missing, unreadable, of another version or of the wrong shape."""


class TrainingDataError(LoopMindError):
    """Too little (or no) training data; the message says how much is needed."""


# -- where models live --------------------------------------------------------------------------

def user_models_dir(settings=None) -> Path:
    """``<data dir>/models``: where ``loopmind train`` writes by default."""
    if settings is None:
        from loopmind.config import get_settings

        settings = get_settings()
    return Path(settings.trained_models_dir)


def find_checkpoint(name: str, settings=None) -> Path | None:
    """The checkpoint of model ``name`` to use: the user's trained one, else the shipped one,
    else None. Only looks at files (cheap; nothing is read)."""
    for folder in (user_models_dir(settings), SHIPPED_MODELS_DIR):
        path = folder / f"{name}.safetensors"
        if path.is_file():
            return path
    return None


# -- checkpoints --------------------------------------------------------------------------------

def save_checkpoint(path: os.PathLike | str, tensors: dict[str, np.ndarray], *, model: str,
                    version: int, **meta: Any) -> Path:
    """Write ``tensors`` (float32) and the metadata header atomically.

    Args:
        path: the ``.safetensors`` file.
        tensors: name -> array (stored as contiguous float32).
        model: the model's name ("arranger", "mixer", "embedder").
        version: the format version the loading code expects.
        **meta: more JSON-serializable metadata (vocab, features, metrics, ...).
    """
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    header = {"model": model, "version": int(version),
              "shapes": {k: list(v.shape) for k, v in arrays.items()}, **meta}
    tmp = path.with_name(path.name + ".tmp")
    save_file(arrays, str(tmp), metadata={_META_KEY: json.dumps(header, sort_keys=True)})
    os.chmod(tmp, 0o644)  # safetensors writes 0600; a model is not a secret
    os.replace(tmp, path)
    return path


def load_checkpoint(path: os.PathLike | str, *, model: str, version: int,
                    shapes: dict[str, tuple[int, ...]] | None = None
                    ) -> tuple[dict[str, np.ndarray], dict]:
    """Read and validate a checkpoint.

    Args:
        path: the ``.safetensors`` file.
        model: the model name it must hold.
        version: the format version it must have.
        shapes: expected shape of every array (derived from the header's vocab by the caller);
            None checks only that the header's shapes match the stored arrays.

    Returns:
        (arrays as float32 numpy, the metadata header).

    Raises:
        ModelError: missing, truncated or foreign file, other model or version, wrong shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{model} checkpoint not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get(_META_KEY)
            arrays = {k: np.asarray(f.get_tensor(k), dtype=np.float32) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
        reason = str(exc).splitlines()[0][:120] if str(exc) else "corrupt"
        raise ModelError(f"{model} checkpoint {path.name} is unreadable "
                         f"({type(exc).__name__}: {reason})") from None
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise ModelError(f"{path.name} is not a LoopMind {model} checkpoint (no metadata)")
    if meta.get("model") != model:
        raise ModelError(f"{path.name} holds a {meta.get('model')!r} model, not the {model}")
    if meta.get("version") != version:
        raise ModelError(f"{path.name} is a {model} checkpoint of version {meta.get('version')}; "
                         f"this LoopMind reads version {version}: retrain it with "
                         f"`loopmind train {model}`")
    stored = {k: tuple(v.shape) for k, v in arrays.items()}
    declared = {k: tuple(v) for k, v in (meta.get("shapes") or {}).items()}
    expected = {k: tuple(v) for k, v in (shapes or declared).items()}
    if stored != declared or stored != expected:
        bad = sorted(k for k in set(stored) | set(expected) if stored.get(k) != expected.get(k))
        what = ", ".join(f"{k} {stored.get(k)} (expected {expected.get(k)})" for k in bad[:3]) \
            or "header and arrays disagree"
        raise ModelError(f"{path.name}: wrong shapes for this {model}: {what}")
    for k, v in arrays.items():
        if not np.isfinite(v).all():
            raise ModelError(f"{path.name}: {k} holds NaN or infinite values")
    return arrays, meta


# -- training helpers ---------------------------------------------------------------------------

def pick_device(prefer: str | None = None) -> str:
    """"cuda" when a GPU is there, else "mps" (Apple), else "cpu" (or ``prefer``)."""
    import torch

    if prefer:
        return prefer
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def seed_everything(seed: int) -> None:
    """Seed numpy's legacy generator and torch (CPU and GPU) for a reproducible run."""
    import torch

    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


ProgressFn = Callable[[int, int, dict], None]  # (done, total, fields such as loss)


@contextlib.contextmanager
def progress_bar(label: str, total: int, *, quiet: bool = False) -> Iterator[ProgressFn]:
    """A rich progress bar on stderr (steps, loss, elapsed, ETA); yields ``update(done, total,
    fields)``. Quiet or without a terminal, it only logs the end."""
    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        last: dict = {}

        def update(done: int, tot: int, fields: dict) -> None:
            last.update(fields)

        yield update
        if last and not quiet:
            console.print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in last.items()))
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(label, total=total, info="")

        def update(done: int, tot: int, fields: dict) -> None:
            bar.update(task, completed=done, total=tot,
                       info=" ".join(f"{k} {v}" for k, v in fields.items()))

        yield update


@dataclass(kw_only=True)
class TrainResult:
    """What a training run wrote and measured; each model adds its data counts and says what
    the CLI prints (``summary_lines``).

    Attributes:
        path: the checkpoint written.
        card: its model card.
        metrics: what was measured (held-out scores, loss, epochs, ...).
        seconds: wall time of the run.
        warnings: files or items that were skipped, and why.
    """

    path: Path
    card: Path
    metrics: dict
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        raise NotImplementedError


class Budget:
    """A wall-clock budget for a training run: ``exhausted`` once ``minutes`` have passed."""

    def __init__(self, minutes: float | None):
        import time

        self._clock = time.monotonic
        self.start = self._clock()
        self.seconds = None if minutes is None else max(0.0, float(minutes) * 60.0)

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self.start

    @property
    def exhausted(self) -> bool:
        return self.seconds is not None and self.elapsed_s >= self.seconds


def bootstrap_interval(stat: Callable[[np.ndarray], float], n_groups: int, *, n: int = 2000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of a statistic by a cluster bootstrap over groups (songs).

    Args:
        stat: the statistic of a resample, given the resampled group indices (with repeats).
        n_groups: how many groups there are.

    Returns:
        (low, high) quantiles of ``stat`` over ``n`` resamples.
    """
    if n_groups == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n_groups, size=n_groups)) for _ in range(n)])
    q = (1.0 - level) / 2.0
    return float(np.quantile(values, q)), float(np.quantile(values, 1.0 - q))


def n_parameters(tensors: dict[str, np.ndarray]) -> int:
    return int(sum(v.size for v in tensors.values()))


# -- model cards --------------------------------------------------------------------------------

def machine() -> str:
    """A short description of this machine (cores, CPU, GPU if any, Python)."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return f"{cores} cores, {cpu}, Python {platform.python_version()}"


def write_model_card(path: os.PathLike | str, *, title: str, summary: str, data: str,
                     size: str, metrics: str, reproduce: str, limits: str = "",
                     device: str = "cpu", train_time_s: float | None = None) -> Path:
    """Write ``<name>.md`` beside a checkpoint: what it is, data, size, metrics, date, machine."""
    path = Path(path)
    took = f", {train_time_s:.0f} s of training" if train_time_s is not None else ""
    text = [f"# {title}", "",
            f"Trained {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()} "
            f"({device}{took}).", "", summary.strip(), "",
            "## Data", "", data.strip(), "", "## Size", "", size.strip(), "",
            "## Metrics", "", metrics.strip(), ""]
    if limits.strip():
        text += ["## Limits", "", limits.strip(), ""]
    text += ["## Reproduce", "", reproduce.strip(), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    return path

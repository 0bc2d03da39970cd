"""Typed settings: every path LoopMind uses comes from here.

``LOOPMIND_HOME`` moves everything (database, vector index, caches, config) into one folder.
Without it the platform's user directories are used (via platformdirs). Individual values
can be overridden in ``config.toml`` (``workers = 2``, ``embedder = "clap"``) and, above
that, with ``LOOPMIND_<NAME>`` environment variables, e.g. ``LOOPMIND_WORKERS``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

APP_NAME = "loopmind"


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    """Where LoopMind keeps its files and how it runs.

    Attributes:
        data_dir: database and vector index.
        cache_dir: derived data that can be rebuilt (stretched audio, models in use).
        config_dir: the user's configuration file.
        workers: size of the analysis process pool.
        max_duration_s: files longer than this are refused (bounded memory).
        settle_s: the watcher waits until a file's size and mtime are unchanged this long.
        embedder: the embedder that makes search vectors ("features", or "clap" with a
            local checkpoint).
        clap_checkpoint: a local laion-clap checkpoint file (no download at run time).
        stretch_cache_mb: size cap of the time-stretched audio cache.
        arranger: "auto" plans songs with a trained arranger when one is present (the
            user's in ``<data dir>/models`` or the shipped one), "rules" always uses the
            genre's rule-based plan.
        mixer: "auto" mixes with a trained mixer when one is present, "rules" always uses
            the heuristic mixer.
        codec_checkpoint: a local EnCodec checkpoint (file or folder) for the optional neural
            texture path of interpretive mode; None (the default) never needs it.
        songs_dir: where generated songs go when no output folder is given (with
            ``LOOPMIND_HOME``: its ``songs`` folder; otherwise the user's music folder's
            ``LoopMind``).
    """

    data_dir: Path
    cache_dir: Path
    config_dir: Path
    workers: int = field(default_factory=_default_workers)
    max_duration_s: float = 30 * 60.0
    settle_s: float = 0.25
    analysis_sr: int = 22050
    embedder: str = "features"
    clap_checkpoint: Path | None = None
    stretch_cache_mb: float = 2048.0
    arranger: str = "auto"
    mixer: str = "auto"
    codec_checkpoint: Path | None = None
    songs_dir: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "library.db"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def vectors_path(self) -> Path:
        return self.index_dir / "vectors.faiss"

    @property
    def config_path(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / "demo-library"

    @property
    def songs_path(self) -> Path:
        """The folder generated songs go to by default (``songs_dir``, else the data dir's)."""
        return self.songs_dir if self.songs_dir is not None else self.data_dir / "songs"

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def trained_models_dir(self) -> Path:
        """Where ``loopmind train`` writes the user's own arranger, mixer and embedder."""
        return self.data_dir / "models"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Build settings from ``LOOPMIND_*`` environment variables."""
        env = os.environ if environ is None else environ
        home = env.get("LOOPMIND_HOME")
        if home:
            root = Path(home).expanduser().absolute()
            settings = cls(data_dir=root, cache_dir=root / "cache", config_dir=root,
                           songs_dir=root / "songs")
        else:
            import platformdirs

            settings = cls(
                data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
                cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
                config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
                songs_dir=Path(platformdirs.user_music_dir()) / "LoopMind",
            )
        values = _read_config(settings.config_path)
        for f in fields(cls):
            raw = env.get(f"LOOPMIND_{f.name.upper()}")
            if raw is not None:
                values[f.name] = raw
        overrides: dict[str, object] = {}
        for name, raw in values.items():
            if name.endswith("_dir") or name in ("clap_checkpoint", "codec_checkpoint"):
                overrides[name] = Path(str(raw)).expanduser().absolute() if raw else None
            elif name in ("workers", "analysis_sr"):
                overrides[name] = max(1, int(raw))
            elif name in ("embedder", "arranger", "mixer"):
                overrides[name] = str(raw)
            else:
                overrides[name] = float(raw)
        return replace(settings, **overrides) if overrides else settings

    def locations(self) -> dict[str, Path]:
        """Named paths, as printed by ``loopmind locate``."""
        return {
            "data": self.data_dir,
            "database": self.db_path,
            "index": self.index_dir,
            "cache": self.cache_dir,
            "config": self.config_path,
            "demo library": self.demo_dir,
            "models": self.trained_models_dir,
            "songs": self.songs_path,
        }


def _read_config(path: Path) -> dict[str, object]:
    """Known keys of the user's config.toml (a missing file is empty; a broken one warns)."""
    import logging

    if not path.exists():
        return {}
    try:
        import tomllib

        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError) as exc:
        logging.getLogger(__name__).warning("ignoring %s: %s", path, exc)
        return {}
    known = {f.name for f in fields(Settings)} - {"data_dir", "cache_dir", "config_dir"}
    return {k: v for k, v in data.items() if k in known}


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def set_settings(settings: Settings | None) -> None:
    """Replace the process-wide settings (tests and the CLI's explicit paths)."""
    global _settings
    _settings = settings

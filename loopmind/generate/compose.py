"""Making a song end to end: pool → arrangement → render → auto-mix → export.

The CLI's ``generate`` and the app's generate dialog both call ``generate_song``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loopmind.errors import LoopMindError
from loopmind.library.db import Library

MODES = ("direct", "interpret", "hybrid")


@dataclass
class GenerateResult:
    song: object  # loopmind.generate.song.Song
    paths: dict[str, object]
    summary: dict
    timings: dict[str, float] = field(default_factory=dict)
    mix_report: dict = field(default_factory=dict)
    # with ``generate_song(keep_audio=True)``: the rendered tracks (name -> float32 (2, n))
    # and the ``MixResult`` with its master gain curve, so the studio plays the song without
    # rendering and mixing it a second time
    tracks: dict | None = None
    mix: object | None = None

    def to_dict(self) -> dict:
        return {"paths": {k: (str(v) if not isinstance(v, dict) else
                              {n: str(p) for n, p in v.items()})
                          for k, v in self.paths.items()},
                "arrangement": self.summary,
                "master": {k: self.mix_report.get(k) for k in
                           ("master_lufs", "master_true_peak_dbtp", "target_lufs",
                            "ceiling_dbtp")},
                "timings_s": {k: round(v, 3) for k, v in self.timings.items()}}


def default_out_dir(song_name: str) -> Path:
    """Where a song goes when no output folder is given: ``<songs folder>/<song name>``
    (``loopmind locate`` prints the songs folder; ``LOOPMIND_SONGS_DIR`` moves it)."""
    from loopmind.config import get_settings

    return get_settings().songs_path / song_name


def song_name(request, seed: int) -> str:
    import re

    words = re.sub(r"[^0-9a-z]+", "-", (request.text or "song").lower()).strip("-")[:40]
    return f"{words or 'song'}-seed{seed}"


def generate_song(library: Library, prompt: str = "", *, folder: str | None = None,
                  tag: str | None = None, query: str | None = None, bpm: float | None = None,
                  key: str | None = None, minutes: float | None = None, mode: str = "direct",
                  seed: int = 0, out_dir: os.PathLike | str | None = None, flac: bool = False,
                  workers: int | None = None, target_lufs: float | None = None,
                  on_stage: Callable[[str], None] | None = None,
                  on_progress: Callable[[str, float], None] | None = None,
                  keep_audio: bool = False) -> GenerateResult:
    """Make a song from the library and write it to ``out_dir``.

    Modes: ``direct`` arranges the pool's loops; ``hybrid`` adds generated fills, risers,
    swells and loop variations to that arrangement (``hybrid.add_hybrid_parts``);
    ``interpret`` keeps the arrangement's tempo, key and sections and plays new parts learned
    from the pool (``interpret.parts.interpret_parts``) plus a texture pad.

    Args:
        on_stage: called with each stage's name ("choosing sounds", "learning the pool", ...).
        on_progress: called as ``(what, fraction)`` while the pool is learned (interpret).
        keep_audio: also return the rendered tracks and the mix (``GenerateResult.tracks``,
            ``.mix`` with its master gain curve); the files written are the same.

    Raises:
        LoopMindError: an empty pool, an unknown key spelling, an unwritable folder (nothing
            partial is left behind).
    """
    from loopmind.generate import arrange as arranger
    from loopmind.generate.export import export_song
    from loopmind.generate.mix import apply_mix, auto_mix
    from loopmind.generate.pool import load_pool
    from loopmind.generate.prompt import parse_prompt
    from loopmind.generate.render import StretchCache, render_tracks

    stage = on_stage or (lambda s: None)
    if mode not in MODES:
        raise LoopMindError(f"unknown mode {mode!r}; one of: {', '.join(MODES)}")
    if key is not None:
        from loopmind.index.search import parse_key_option

        key = parse_key_option(key)
    if bpm is not None and not 40 <= bpm <= 300:
        raise LoopMindError(f"--bpm {bpm:g} is out of range (40-300)")
    if minutes is not None and not 0.25 <= minutes <= 20:
        raise LoopMindError(f"--minutes {minutes:g} is out of range (0.25-20)")
    settings = library.settings
    t = {}
    t0 = time.perf_counter()
    request = parse_prompt(prompt or "")
    stage("choosing sounds")
    pool = load_pool(library, folder=folder, tag=tag, query=query)
    t["pool"] = time.perf_counter() - t0
    stage("arranging")
    song = arranger.arrange(pool, request, seed=seed, bpm=bpm, key=key, minutes=minutes)
    if target_lufs is not None:
        song.master.target_lufs = float(target_lufs)
    song.notes[:0] = pool.notes
    t["arrange"] = time.perf_counter() - t["pool"] - t0
    if mode == "hybrid":
        from loopmind.generate.hybrid import add_hybrid_parts

        stage("adding fills, risers and variations")
        t1 = time.perf_counter()
        add_hybrid_parts(song, pool, seed=seed)
        t["generate"] = time.perf_counter() - t1
    elif mode == "interpret":
        stage("learning the pool")
        t1 = time.perf_counter()
        interpret_song(song, pool, seed=seed, settings=settings, on_progress=on_progress)
        t["generate"] = time.perf_counter() - t1
    out = Path(out_dir) if out_dir else default_out_dir(song_name(request, seed))
    stage("rendering")
    t1 = time.perf_counter()
    cache = StretchCache(settings.cache_dir,
                         max_bytes=int(settings.stretch_cache_mb * 1024 * 1024))
    rendered = render_tracks(song, cache=cache, workers=workers or settings.workers)
    song.notes.extend(n for n in rendered.notes if n not in song.notes)
    t["render"] = time.perf_counter() - t1
    stage("mixing")
    t1 = time.perf_counter()
    n_workers = workers or settings.workers
    auto_mix(song, rendered.tracks, sr=rendered.sr, workers=n_workers)
    mixed = apply_mix(song, rendered.tracks, sr=rendered.sr, workers=n_workers,
                      master_gain=keep_audio)
    song.notes.extend(mixed.report.get("notes", []))
    t["mix"] = time.perf_counter() - t1
    stage("exporting")
    t1 = time.perf_counter()
    result = export_song(song, mixed.stems, mixed.master, out, flac=flac, sr=rendered.sr)
    t["export"] = time.perf_counter() - t1
    t["total"] = time.perf_counter() - t0
    summary = arranger.summary(song)
    summary["cache"] = {"hits": rendered.cache_hits, "misses": rendered.cache_misses}
    return GenerateResult(song=song, paths=result.paths, summary=summary, timings=t,
                          mix_report=mixed.report,
                          tracks=rendered.tracks if keep_audio else None,
                          mix=mixed if keep_audio else None)


def interpret_song(song, pool, *, seed: int, settings=None,
                   on_progress: Callable[[str, float], None] | None = None) -> None:
    """Replace a direct arrangement's tracks with parts learned from the pool, plus a texture
    pad; roles the learner could not play keep their direct tracks (and a note says so).

    Args:
        song: the direct arrangement: its tempo, key and sections are the skeleton (changed
            in place; ``mode`` becomes "interpret").
        pool: the sounds.
        seed: the song's seed.
        on_progress: ``(what, fraction)`` while learning.
    """
    from loopmind.generate.hybrid import texture_pad_track
    from loopmind.generate.interpret.parts import interpret_parts

    parts, notes = interpret_parts(song, pool, seed=seed, settings=settings,
                                   on_progress=on_progress)
    direct = list(song.tracks)
    song.mode = "interpret"
    song.notes.extend(notes)
    if not parts:
        song.notes.append("interpret: nothing could be learned from the pool: "
                          "the direct arrangement plays instead")
        return
    # the optional neural codec path, once settings name a local checkpoint
    codec = getattr(settings, "codec_checkpoint", None)
    pad, pad_notes = texture_pad_track(song, pool, seed=seed, codec_checkpoint=codec)
    song.notes.extend(pad_notes)
    covered = {t.role for t in parts}
    if "drumloop" in covered:
        covered |= {"kick", "snare", "hihat", "clap"}
    if covered & {"kick", "snare", "hihat"}:
        covered.add("drumloop")
    if pad is not None:
        covered.add("pad")  # the texture pad plays the pad's part
    tracks = list(parts)
    names = {t.name for t in tracks}
    for t in direct:
        if t.role in covered:
            continue
        if t.name in names:
            t.name = f"{t.name} (direct)"
        tracks.append(t)
        names.add(t.name)
        song.notes.append(f"interpret: no learned {t.role} part: the direct {t.role} "
                          "loop plays")
    if pad is not None:
        while pad.name in names:
            pad.name += "+"
        tracks.append(pad)
    song.tracks = tracks

"""The ``loopmind`` command line. Thin: parse, call the library, show the result.

Nothing heavy is imported at module level, so ``loopmind --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from loopmind import __version__


def _settings():
    from loopmind.config import get_settings

    return get_settings()


def _fail(message: str) -> None:
    click.echo(f"loopmind: {message}", err=True)
    sys.exit(1)


def _open_library():
    from loopmind.errors import LoopMindError
    from loopmind.library.db import Library

    try:
        return Library(_settings())
    except LoopMindError as exc:
        _fail(str(exc))


class _Group(click.Group):
    """Turns LoopMind's own errors into one line without a traceback."""

    def invoke(self, ctx):
        from loopmind.errors import LoopMindError

        try:
            return super().invoke(ctx)
        except LoopMindError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), envvar="LOOPMIND_HOME",
              help="Keep everything (database, index, caches, config) in this folder.")
@click.option("--workers", type=int, default=None, help="Analysis processes (default: cores).")
@click.version_option(__version__, prog_name="loopmind")
@click.pass_context
def main(ctx: click.Context, home: str | None, workers: int | None) -> None:
    """LoopMind: a loop and sample library that organizes itself and makes songs.

    Without a subcommand (in a terminal) it opens the studio; `loopmind demo` builds the
    demo library, indexes it and makes a song from it.
    """
    from dataclasses import replace

    from loopmind.config import Settings, set_settings

    if home:
        os.environ["LOOPMIND_HOME"] = home
    settings = Settings.from_env()
    if workers:
        settings = replace(settings, workers=max(1, workers))
    set_settings(settings)
    if ctx.invoked_subcommand is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            click.echo(ctx.get_help())  # no terminal to draw the studio in
            return
        from loopmind.app.app import run

        run(settings)


@main.command()
def locate() -> None:
    """Print where LoopMind keeps its files."""
    for name, path in _settings().locations().items():
        click.echo(f"{name + ':':<14} {path}")


def _progress_scan(indexer, folders=None, *, quiet: bool = False):
    """Run a scan with a progress bar (files/s, ETA) on stderr."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return indexer.scan(folders)
    with Progress(TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), TextColumn("[dim]{task.fields[current]}"),
                  console=console, transient=False) as bar:
        task = bar.add_task("index", total=None, rate="", current="")
        import time

        t0 = time.monotonic()

        def progress(done, total, res):
            el = max(time.monotonic() - t0, 1e-6)
            cur = os.path.basename(res.path)[:40] if res else ""
            bar.update(task, completed=done, total=total, rate=f"{done / el:.1f} files/s",
                       current=cur)

        return indexer.scan(folders, progress=progress)


def _print_report(report) -> None:
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{report.seen} audio files seen: {report.indexed} indexed "
               f"({report.segments} segments), {report.unchanged} unchanged, "
               f"{report.moved} moved, {report.missing} gone, {report.failed} failed")
    for path, err in report.errors[:20]:
        click.echo(f"  error: {path}: {err}")
    if len(report.errors) > 20:
        click.echo(f"  ... and {len(report.errors) - 20} more (loopmind status)")


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path())
@click.option("--no-scan", is_flag=True, help="Only register the folders.")
def add(folders: tuple[str, ...], no_scan: bool) -> None:
    """Register folders to watch and scan them."""
    from loopmind.errors import LoopMindError
    from loopmind.library.indexer import Indexer

    lib = _open_library()
    indexer = Indexer(lib)
    added, bad = [], 0
    for f in folders:
        try:
            added.append(indexer.add_folder(f))
            click.echo(f"watching {added[-1]}")
        except LoopMindError as exc:
            click.echo(f"loopmind: {exc}", err=True)
            bad += 1
    if added and not no_scan:
        with lib.indexer_lock():
            _print_report(_progress_scan(indexer, added))
            _refresh_vectors(lib)
    sys.exit(1 if bad else 0)


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path())
def remove(folders: tuple[str, ...]) -> None:
    """Stop watching folders (their files leave the library; your audio is untouched)."""
    from loopmind.library.indexer import Indexer

    indexer = Indexer(_open_library())
    for f in folders:
        n = indexer.remove_folder(f)
        click.echo(f"removed {f} ({n} files no longer listed)")


@main.command()
def scan() -> None:
    """Rescan the watched folders incrementally."""
    from loopmind.library.indexer import Indexer

    lib = _open_library()
    indexer = Indexer(lib)
    if not indexer.folders():
        _fail("no watched folders: add one with `loopmind add FOLDER`")
    with lib.indexer_lock():
        _print_report(_progress_scan(indexer))
        _refresh_vectors(lib)


@main.command()
@click.option("--no-scan", is_flag=True, help="Skip the catch-up scan at start.")
def watch(no_scan: bool) -> None:
    """Follow the watched folders in the foreground until Ctrl-C."""
    from loopmind.library.indexer import Indexer
    from loopmind.library.scanner import display_path
    from loopmind.library.watcher import Watcher

    lib = _open_library()
    indexer = Indexer(lib)
    if not indexer.folders():
        _fail("no watched folders: add one with `loopmind add FOLDER`")
    with lib.indexer_lock():
        if not no_scan:
            _print_report(_progress_scan(indexer))
        catalog = _refresh_vectors(lib)

        def on_change(action, path):
            click.echo(f"{action:>9}  {display_path(path)}")
            if catalog is not None:
                catalog.sync()  # the vector index follows the library as files change

        w = Watcher(indexer, on_change=on_change)
        w.start()
        click.echo(f"watching {len(indexer.folders())} folder(s); Ctrl-C to stop", err=True)
        try:
            w.run()
        except KeyboardInterrupt:
            w.stop()
            click.echo("stopped", err=True)
        finally:
            if catalog is not None:
                catalog.close()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--errors", "max_errors", type=int, default=50, show_default=True,
              help="How many per-file errors to list (0: all).")
def status(as_json: bool, max_errors: int) -> None:
    """Counts of files and segments, and per-file errors."""
    from loopmind.library.queries import status as get_status

    st = get_status(_open_library(), max_errors=max_errors or None)
    if as_json:
        click.echo(json.dumps({"folders": st.folders, "files": st.files_by_status,
                               "segments": st.segments, "loops": st.loops,
                               "oneshots": st.oneshots, "roles": st.roles,
                               "errors": [{"path": p, "error": e} for p, e in st.errors]}))
        return
    click.echo(f"folders: {len(st.folders)}")
    for f in st.folders:
        click.echo(f"  {f}")
    files = ", ".join(f"{v} {k}" for k, v in sorted(st.files_by_status.items())) or "none"
    click.echo(f"files: {files}")
    click.echo(f"segments: {st.segments} ({st.loops} loops, {st.oneshots} one-shots)")
    if st.roles:
        click.echo("roles: " + ", ".join(f"{k} {v}" for k, v in sorted(
            st.roles.items(), key=lambda kv: -kv[1])))
    if st.errors:
        click.echo(f"errors ({len(st.errors)} shown):")
        for p, e in st.errors:
            click.echo(f"  {p}: {e}")


def _fmt(v, spec=""):
    return "-" if v is None else format(v, spec)


@main.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per segment per line.")
@click.option("--role", default=None, help="Only this role.")
@click.option("--kind", type=click.Choice(["loop", "oneshot"]), default=None)
@click.option("--limit", type=int, default=None)
def ls_cmd(as_json: bool, role: str | None, kind: str | None, limit: int | None) -> None:
    """List the library's segments."""
    from loopmind.library.queries import list_segments

    rows = list_segments(_open_library(), role=role, kind=kind, limit=limit)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        return
    _print_table(rows)


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold", box=None)
    for col in ("id", "name", "seg", "kind", "bars", "bpm", "key", "role", "LUFS", "tags"):
        table.add_column(col)
    for r in rows:
        table.add_row(_fmt(r.get("id")), os.path.basename(r["path"]), str(r["segment"]),
                      r["kind"], _fmt(r["bars"], "g"), _fmt(r["bpm"], ".1f"),
                      r["key"] or "-", r["role"] or "-", _fmt(r["lufs"], ".1f"),
                      ",".join(r["tags"]))
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped: don't squeeze the table into 80 columns
    console.print(table)
    click.echo(f"{len(rows)} segments")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per segment per line; errors as {path, error}.")
def analyze(paths: tuple[str, ...], as_json: bool) -> None:
    """Analyze files (or folders) without adding them to a library."""
    from loopmind.library.analysis.segments import SegmentResult
    from loopmind.library.pipeline import FileResult, Job, run_jobs
    from loopmind.library.scanner import display_path, walk

    settings = _settings()
    jobs: list[Job] = []
    early: list[FileResult] = []
    for p in paths:
        if os.path.isdir(p):
            for f in walk(p):
                if f.error:
                    early.append(FileResult(path=f.path, error=f.error))
                else:
                    jobs.append(Job(f.path))
        else:
            jobs.append(Job(p))
    failed = 0
    rows: list[dict] = []

    def emit(res: FileResult) -> None:
        nonlocal failed
        path = display_path(res.path)
        if res.error:
            failed += 1
            if as_json:
                click.echo(json.dumps({"path": path, "error": res.error}))
            else:
                click.echo(f"error: {path}: {res.error}", err=True)
            return
        for seg in res.segments:
            seg: SegmentResult
            rec = {"path": path, "segment": seg.index, "start_s": round(seg.start_s, 4),
                   "end_s": round(seg.end_s, 4), "duration_s": round(seg.duration_s, 4),
                   "kind": seg.kind, "bars": seg.bars, "bpm": seg.bpm,
                   "bpm_confidence": seg.bpm_confidence, "key": seg.key,
                   "key_confidence": seg.key_confidence, "role": seg.role,
                   "role_confidence": seg.role_confidence,
                   "tags": sorted({t for t, _ in seg.tags}), "lufs": seg.lufs,
                   "true_peak_db": seg.true_peak_db}
            if as_json:
                click.echo(json.dumps(rec))
            else:
                rows.append(rec)

    for res in early:
        emit(res)
    run_jobs(jobs, workers=min(settings.workers, max(1, len(jobs))), on_result=emit,
             max_duration_s=settings.max_duration_s, sr=settings.analysis_sr)
    if rows:
        _print_table(rows)
    sys.exit(1 if failed else 0)


@main.command(name="set")
@click.argument("segment_id", type=int)
@click.option("--bpm", type=float, default=None)
@click.option("--key", default=None, help='e.g. "F minor", "Gb", "C#m".')
@click.option("--role", default=None)
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable).")
def set_cmd(segment_id: int, bpm, key, role, tags) -> None:
    """Set a segment's BPM, key, role or tags by hand (re-analysis keeps them)."""
    from loopmind.library.analysis.key import parse_key
    from loopmind.library.analysis.role import ROLES
    from loopmind.library.queries import set_user_values

    if key is not None:
        canon = parse_key(key)
        if canon is None:
            _fail(f"unknown key {key!r} (try 'F minor', 'Gb major', 'C#m')")
        key = canon
    if role is not None and role not in ROLES:
        _fail(f"unknown role {role!r}; one of: {', '.join(sorted(ROLES))}")
    if bpm is not None and not 20 <= bpm <= 400:
        _fail(f"BPM {bpm:g} is out of range (20-400)")
    lib = _open_library()
    if not set_user_values(lib, segment_id, bpm=bpm, key=key, role=role, tags=list(tags)):
        _fail(f"no segment with id {segment_id}")
    click.echo(f"segment {segment_id} updated")


def _catalog(lib):
    from loopmind.index.catalog import Catalog

    return Catalog(lib, on_message=lambda m: click.echo(f"note: {m}", err=True))


def _refresh_vectors(lib):
    """After a scan: re-embed sounds whose vector is missing or from another embedder, then
    bring the vector index up to date and save it (so the next search starts at once)."""
    from loopmind.errors import LoopMindError

    try:
        catalog = _catalog(lib)
    except LoopMindError as exc:
        click.echo(f"warning: no search vectors: {exc}", err=True)
        return None
    stale = catalog.stale_count()
    if stale:
        click.echo(f"embedding {stale} segments with the {catalog.embedder_id} embedder ...",
                   err=True)
        catalog.reembed()
    catalog.vectors()
    catalog.save()
    return catalog


def _filters(role, bpm, key, compatible, kind, folder):
    from loopmind.index.search import Filters, parse_bpm_range, parse_key_option

    return Filters(role=role, bpm=parse_bpm_range(bpm) if bpm else None,
                   key=parse_key_option(key) if key else None, compatible=compatible,
                   kind=kind, folder=folder)


def _filter_options(fn):
    for opt in reversed([
        click.option("--role", default=None, help="Only this role (kick, bass, pad, ...)."),
        click.option("--bpm", default=None, help="Tempo or range, e.g. 140 or 120-140."),
        click.option("--key", default=None, help='Key, e.g. "F minor", Fm, F#min.'),
        click.option("--compatible", is_flag=True,
                     help="Related keys (relative, fifth) and tempi a 0.8-1.25 stretch "
                          "reaches (half and double time too)."),
        click.option("--kind", type=click.Choice(["loop", "oneshot"]), default=None),
        click.option("--folder", default=None, type=click.Path(), help="Only under here."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document."),
    ]):
        fn = opt(fn)
    return fn


def _print_results(res, as_json: bool, *, show_why: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(res.to_dict()))
        return
    for n in res.notes:
        click.echo(f"note: {n}", err=True)
    if not res.hits:
        click.echo(res.reason or "no results")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold", box=None)
    cols = ["id", "name", "seg", "kind", "role", "bpm", "key", "bars", "score"]
    if show_why:
        cols.append("why")
    for c in cols:
        table.add_column(c)
    for h in res.hits:
        row = [str(h.id), os.path.basename(h.path), str(h.segment), h.kind, h.role or "-",
               _fmt(h.bpm, ".1f"), h.key or "-", _fmt(h.bars, "g"), _fmt(h.score, ".3f")]
        if show_why:
            row.append(h.why or "")
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


@main.command()
@click.argument("target")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True)
@_filter_options
def similar(target: str, k: int, role, bpm, key, compatible, kind, folder, as_json) -> None:
    """Sounds most like TARGET: a segment id, or a path (analyzed on the fly if it is not
    in the library)."""
    from loopmind.index.search import Searcher

    lib = _open_library()
    searcher = Searcher(lib, _catalog(lib))
    res = searcher.similar(target, k=k, filters=_filters(role, bpm, key, compatible, kind,
                                                          folder))
    _print_results(res, as_json)
    searcher.catalog.close()


@main.command()
@click.argument("query", nargs=-1)
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@_filter_options
def search(query, limit, role, bpm, key, compatible, kind, folder, as_json) -> None:
    """Search names, folders and tags ("dark 808 140"); a tempo or key in the query
    becomes a filter."""
    from loopmind.index.search import Searcher

    lib = _open_library()
    searcher = Searcher(lib)
    res = searcher.search(" ".join(query), limit=limit,
                          filters=_filters(role, bpm, key, compatible, kind, folder))
    _print_results(res, as_json)


@main.command()
@click.argument("segment_ids", nargs=-1, required=True, type=int)
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True)
@_filter_options
def fits(segment_ids, k, role, bpm, key, compatible, kind, folder, as_json) -> None:
    """Sounds that fit with the chosen segments: compatible key and tempo, a role they don't
    have yet, ranked by how well they sit together."""
    from loopmind.index.search import Searcher

    lib = _open_library()
    searcher = Searcher(lib, _catalog(lib))
    res = searcher.fits(list(segment_ids), k=k,
                        filters=_filters(role, bpm, key, compatible, kind, folder))
    _print_results(res, as_json, show_why=True)
    searcher.catalog.close()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--exact-only", is_flag=True, help="Only byte-identical files.")
def dupes(as_json: bool, exact_only: bool) -> None:
    """Exact duplicates (same content) and near duplicates (re-encoded, gain-changed,
    trimmed or resampled copies), grouped."""
    from loopmind.index.dupes import find_duplicates

    lib = _open_library()
    catalog = None if exact_only else _catalog(lib)

    def vector_search(segment_id: int, k: int):
        vec = catalog.vector_of(segment_id)
        return [] if vec is None else catalog.vectors().search(vec, k + 1,
                                                               exclude={segment_id})

    with _StageProgress(quiet=as_json) as bar:
        report = find_duplicates(lib, vector_search=None if exact_only else vector_search,
                                 exact_only=exact_only, on_stage=bar.stage,
                                 on_progress=bar.progress)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(report.describe())


@main.command(name="import")
@click.argument("projects", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True,
              help="Print the normalized project (loopmind.project/1) as JSON.")
def import_cmd(projects: tuple[str, ...], as_json: bool) -> None:
    """Read DAW projects (FL Studio .flp, LMMS .mmp/.mmpz, arrangement JSON) into one
    arrangement format: tempo, tracks with roles and mixer settings, clips, sections."""
    from loopmind.generate.projects import ProjectError, load_project

    done, errors = [], []
    for path in projects:
        try:
            project = load_project(path)
        except ProjectError as exc:
            errors.append({"path": path, "error": str(exc)})
            click.echo(f"loopmind: {exc}", err=True)
            continue
        if as_json:
            done.append(project.to_dict())
        else:
            _print_project(project)
    if as_json and (done or len(projects) > 1):
        doc = done[0] if len(projects) == 1 else {"projects": done, "errors": errors}
        click.echo(json.dumps(doc))
    if errors:
        sys.exit(1)


def _print_project(project) -> None:
    num, den = project.time_signature
    bpm = f"{project.bpm:g} BPM" if project.bpm else "no tempo"
    click.echo(f"{project.name} ({project.kind}, {project.creator or 'unknown'}): {bpm}, "
               f"{num}/{den}, {project.bars:g} bars, {len(project.tracks)} tracks")
    for sec in project.sections:
        guess = " (inferred)" if sec.inferred else ""
        click.echo(f"  bar {sec.start_bar + 1:>5g}  {sec.name:<11} {sec.bars:>4g} bars  "
                   f"{', '.join(sec.roles) or '-'}{guess}")
    for t in project.tracks:
        gain = f"{t.mixer.gain_db:+.1f} dB" if t.mixer.gain_db is not None else "   - dB"
        pan = f"pan {t.mixer.pan:+.2f}"
        click.echo(f"  {t.name[:28]:<28} {t.role or '-':<9} {t.kind:<10} {gain:>9} {pan}  "
                   f"{len(t.clips)} clips{'  muted' if t.muted or t.mixer.muted else ''}")
    for w in project.warnings:
        click.echo(f"  warning: {w}")


@main.command()
@click.option("--rebuild", is_flag=True, help="Rebuild the vector index from the library.")
def index(rebuild: bool) -> None:
    """Bring search vectors up to date (re-embed after changing the embedder)."""
    lib = _open_library()
    with lib.indexer_lock():
        catalog = _refresh_vectors(lib)
        if catalog is None:
            sys.exit(1)
        n = catalog.rebuild() if rebuild else len(catalog.vectors())
    click.echo(f"vector index: {n} vectors ({catalog.embedder_id}) at {catalog.path}")


@main.command()
@click.argument("prompt", nargs=-1)
@click.option("--from", "folder", type=click.Path(), default=None,
              help="Make the song from the sounds in this folder.")
@click.option("--tag", default=None, help="... from sounds with this tag or role.")
@click.option("--query", default=None, help="... from the matches of a text search.")
@click.option("--bpm", type=float, default=None, help="Song tempo (default: prompt, pool).")
@click.option("--key", default=None, help='Song key, e.g. "F minor" (default: prompt, pool).')
@click.option("--minutes", type=float, default=None, help="Length (default: the genre's).")
@click.option("--mode", type=click.Choice(["direct", "interpret", "hybrid"]), default="direct",
              show_default=True,
              help="direct: arrange your loops; hybrid: plus fills, risers and variations made "
                   "from them; interpret: new parts learned from your sounds.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: <songs folder>/<prompt>-seed<N>; "
                   "`loopmind locate` shows the songs folder).")
@click.option("--flac", is_flag=True, help="Also write master.flac.")
@click.option("--lufs", "target_lufs", type=float, default=None,
              help="Master loudness target (default -14 LUFS).")
@click.option("--json", "as_json", is_flag=True, help="Print the paths and a summary as JSON.")
def generate(prompt, folder, tag, query, bpm, key, minutes, mode, seed, out_dir, flac,
             target_lufs, as_json) -> None:
    """Make a song from your sounds: "dark trap 140 in F minor"."""
    from loopmind.generate.compose import generate_song

    lib = _open_library()
    if sum(x is not None for x in (folder, tag, query)) > 1:
        _fail("use one of --from, --tag and --query")
    if folder is not None and not os.path.isdir(folder):
        _fail(f"not a folder: {folder}")

    bar = _StageProgress(quiet=as_json)
    with bar:
        result = generate_song(lib, " ".join(prompt), folder=folder, tag=tag, query=query,
                               bpm=bpm, key=key, minutes=minutes, mode=mode, seed=seed,
                               out_dir=out_dir, flac=flac, target_lufs=target_lufs,
                               on_stage=bar.stage, on_progress=bar.progress)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    _print_song(result)


class _StageProgress:
    """Stage lines on stderr ("rendering ..."), and a progress bar while a stage reports
    fractions (learning the pool in interpretive mode) when stderr is a terminal."""

    def __init__(self, *, quiet: bool = False) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True)
        self._bar = None
        self._task = None

    def __enter__(self) -> "_StageProgress":
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None

    def stage(self, name: str) -> None:
        self._stop()
        if not self.quiet:
            click.echo(f"{name} ...", err=True)

    def progress(self, what: str, fraction: float) -> None:
        if self.quiet or not self.console.is_terminal:
            return
        if self._bar is None:
            from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn,
                                       TimeElapsedColumn)

            self._bar = Progress(TextColumn("  [bold]{task.description}"), BarColumn(),
                                 TaskProgressColumn(), TimeElapsedColumn(),
                                 console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(what, total=1.0)
        self._bar.update(self._task, completed=fraction, description=what)


def _print_song(result) -> None:
    s = result.summary
    click.echo(f"{s['genre'] or 'song'}: {s['bpm']:g} BPM, {s['key'] or 'no key'}, "
               f"{s['bars']} bars ({s['duration_s'] / 60:.1f} min)")
    for sec in s["sections"]:
        click.echo(f"  bar {sec['start_bar'] + 1:>3}  {sec['name']:<11} {sec['bars']:>2} bars  "
                   f"{', '.join(sec['roles']) or '-'}")
    for n in s["notes"]:
        click.echo(f"  note: {n}")
    m = result.mix_report
    if m.get("master_lufs") is not None:
        click.echo(f"master: {m['master_lufs']:.1f} LUFS, true peak "
                   f"{m['master_true_peak_dbtp']:.1f} dBTP")
    p = result.paths
    click.echo(f"wrote {p['master']}")
    click.echo(f"      {len(p['stems'])} stems in {Path(p['master']).parent / 'stems'}")
    if p.get("slices"):
        click.echo(f"      {len(p['slices'])} slices of generated parts in "
                   f"{Path(p['master']).parent / 'slices'}")
    click.echo(f"      {p['arrangement']}")
    click.echo(f"      {p['midi']}")
    click.echo(f"rendered in {result.timings['total']:.1f} s")


@main.group()
def train() -> None:
    """Train the arranger, the mixer or the embedder on your own material.

    The result goes to the data folder's models/ (see `loopmind locate`) with a model card,
    and is used from then on (generate, auto-mix, settings embedder = "learned").
    """


def _train_options(fn):
    fn = click.option("--seed", type=int, default=0, show_default=True)(fn)
    fn = click.option("--budget-minutes", "budget_minutes", type=float, default=None,
                      help="Stop training after this many minutes.")(fn)
    fn = click.option("--epochs", type=click.IntRange(1, 100000), default=None,
                      help="Training epochs (default: the model's).")(fn)
    fn = click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
                      help="Checkpoint to write (default: <data>/models/<model>.safetensors).")(fn)
    return fn


def _report_training(result) -> None:
    for w in result.warnings[:20]:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {result.path} ({result.seconds:.0f} s)")
    click.echo(f"      {result.card}")
    for line in result.summary_lines():
        click.echo(f"  {line}")


@train.command(name="arranger")
@click.argument("folder", type=click.Path())
@click.option("--no-augment", is_flag=True,
              help="Train on the projects only, without LoopMind's rule-based plans.")
@click.option("--no-cv", is_flag=True, help="Skip the leave-one-project-out evaluation.")
@_train_options
def train_arranger(folder, no_augment, no_cv, out, epochs, budget_minutes, seed) -> None:
    """Learn song structure from projects in FOLDER (.mmp/.mmpz, .flp, arrangement JSON)."""
    from loopmind.generate.train import arranger

    _report_training(arranger.train(folder, out=out, epochs=epochs,
                                    budget_minutes=budget_minutes, seed=seed,
                                    augment=not no_augment, cross_val=not no_cv))


@train.command(name="mixer")
@click.argument("folder", type=click.Path())
@_train_options
def train_mixer(folder, out, epochs, budget_minutes, seed) -> None:
    """Learn track levels, pan, EQ and reverb from projects' mixers or stems with their mix."""
    from loopmind.generate.train import mixer

    _report_training(mixer.train(folder, out=out, epochs=epochs,
                                 budget_minutes=budget_minutes, seed=seed))


@train.command(name="embedder")
@click.argument("folder", type=click.Path(), required=False)
@_train_options
def train_embedder(folder, out, epochs, budget_minutes, seed) -> None:
    """Learn a sound embedding from the library's segments (or those under FOLDER)."""
    from loopmind.generate.train import embedder

    lib = _open_library()
    # without --budget-minutes the embedder's own budget applies (it keeps a run under 10 min)
    budget = {} if budget_minutes is None else {"budget_minutes": budget_minutes}
    _report_training(embedder.train(lib, folder=folder, out=out, epochs=epochs, seed=seed,
                                    **budget))


@main.command()
@click.option("--force", is_flag=True, help="Rebuild the demo audio even if present.")
@click.option("--no-song", is_flag=True, help="Only build and index the demo library.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where the demo song goes (default: <songs folder>/demo, see `loopmind locate`).")
def demo(force: bool, no_song: bool, out_dir: str | None) -> None:
    """Build the demo library (synthesized here), index it, make a song from it and print
    where the files are."""
    from loopmind.demo import build_demo_library
    from loopmind.library.indexer import Indexer
    from loopmind.library.queries import list_segments
    from loopmind.library.queries import status as get_status

    settings = _settings()
    click.echo(f"building the demo library in {settings.demo_dir} ...")
    files = build_demo_library(settings.demo_dir, force=force)
    click.echo(f"{len(files)} demo files ready")
    lib = _open_library()
    indexer = Indexer(lib)
    indexer.add_folder(settings.demo_dir)
    with lib.indexer_lock():
        _print_report(_progress_scan(indexer, [str(settings.demo_dir)]))
        _refresh_vectors(lib)
    _print_table(list_segments(lib))
    st = get_status(lib)
    click.echo("roles: " + ", ".join(f"{k} {v}" for k, v in sorted(
        st.roles.items(), key=lambda kv: -kv[1])))
    click.echo(f"library: {settings.db_path}")
    if no_song:
        return
    from loopmind.generate.compose import generate_song

    prompt = "dark trap 140 in F minor"
    click.echo(f"generating a song: {prompt!r} ...")
    out = out_dir or str(settings.songs_path / "demo")
    result = generate_song(lib, prompt, folder=str(settings.demo_dir), seed=0, out_dir=out,
                           on_stage=lambda name: click.echo(f"{name} ...", err=True))
    _print_song(result)


if __name__ == "__main__":
    main()

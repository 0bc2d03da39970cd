"""The ``loopmind`` command line. Thin: parse, call the library, show the result.

Nothing heavy is imported at module level, so ``loopmind --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys

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
    """LoopMind: a loop and sample library that organizes itself.

    Run a subcommand; `loopmind demo` builds and indexes the demo library.
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
        click.echo(ctx.get_help())


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

        def on_change(action, path):
            click.echo(f"{action:>9}  {display_path(path)}")

        w = Watcher(indexer, on_change=on_change)
        w.start()
        click.echo(f"watching {len(indexer.folders())} folder(s); Ctrl-C to stop", err=True)
        try:
            w.run()
        except KeyboardInterrupt:
            w.stop()
            click.echo("stopped", err=True)


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


@main.command()
@click.option("--force", is_flag=True, help="Rebuild the demo audio even if present.")
def demo(force: bool) -> None:
    """Build the demo library (synthesized here), index it and print what was found."""
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
    _print_table(list_segments(lib))
    st = get_status(lib)
    click.echo("roles: " + ", ".join(f"{k} {v}" for k, v in sorted(
        st.roles.items(), key=lambda kv: -kv[1])))
    click.echo(f"library: {settings.db_path}")


if __name__ == "__main__":
    main()

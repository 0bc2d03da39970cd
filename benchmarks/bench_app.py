"""The studio at library scale: first paint, browsing 100,000 segments, and audition latency.

The issue asks, with a 100,000-segment library, for the first paint within 1 s, scrolling and
filtering the browser without blocking (a virtual table with paged queries), and audition
starting within 150 ms of the key press for a cached sound.

The library is built the way ``bench_search.py`` builds it (bulk SQL inserts through the real
schema, 4 segments per file, real feature vectors with noise), plus the demo library's
``Keys`` folder indexed for real so there are sounds on disk to audition. The app runs
headless (``run_test``, 160 x 50) with an offline audio engine, no watcher and no demo build.

- First paint: in a fresh process per run (imports included), from the start of the script to
  the first frame (``call_after_refresh`` after the first compose); also the time until the
  browser shows the first rows of the 100,000.
- Browsing: jumps across the table (as a scrollbar drag does) and page-down presses, timed
  from the request to the rows on screen; filter changes timed from the query to its first
  page on screen (the search box's 250 ms debounce comes on top). Meanwhile a probe task
  measures how late the UI thread's event loop wakes up (its lag): work on the UI thread that
  scaled with the library would show there.
- Audition: enter on a highlighted sound, to the engine starting its voice: prepared in
  memory (the usual case: the cursor stopped on it), in the stretch cache on disk only, and
  not cached at all. Add the output device's latency for the time to sound.

    python benchmarks/bench_app.py [--segments 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T_SCRIPT = time.perf_counter()

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE = (160, 50)


def _settings(home: str):
    from loopmind.config import Settings

    return Settings.from_env({"LOOPMIND_HOME": home, "LOOPMIND_WORKERS": "1"})


def _engine():
    from loopmind.player.engine import Engine

    engine = Engine.offline()
    engine.available, engine.error = True, None
    return engine


# -- first paint, in a fresh process ---------------------------------------------------------

def child_first_paint(home: str) -> None:
    """Print the first-paint timings of one cold start as JSON (run in a fresh process)."""
    t_import0 = time.perf_counter()
    from loopmind.app.app import LoopMindApp

    t_import = time.perf_counter() - t_import0
    marks: dict[str, float] = {}

    class App(LoopMindApp):
        def _start_background(self) -> None:
            marks.setdefault("paint", time.perf_counter())
            super()._start_background()

    async def run() -> None:
        from loopmind.app import messages as m

        def hook(message) -> None:
            if isinstance(message, m.PageLoaded) and "rows" not in marks:
                marks["rows"] = time.perf_counter()
            if os.environ.get("BENCH_TRACE"):
                name = type(message).__name__
                if name not in marks and name in ("LibraryOpened", "SoundsFound", "AudioOpened",
                                                  "CatalogOpened", "LibraryCounted"):
                    marks[name] = time.perf_counter()
                    print(name, marks[name] - T_SCRIPT, file=sys.stderr)

        app = App(_settings(home), engine=_engine(), watch=False, demo=False)
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            while "rows" not in marks:
                await asyncio.sleep(0.01)
            await pilot.pause(0.1)

    asyncio.run(run())
    print(json.dumps({"import_s": t_import, "paint_s": marks["paint"] - T_SCRIPT,
                      "rows_s": marks["rows"] - T_SCRIPT}))


# -- browsing and auditioning, in this process -----------------------------------------------

class LagProbe:
    """How late the event loop wakes up from a 5 ms sleep (its lag), while ``active``."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.active = False
        self._task = None

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            if self.active:
                self.samples.append(time.perf_counter() - t - 0.005)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _ms(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(xs) * 1000.0, q)) if xs else float("nan")


async def browse_and_audition(home: str, keys_dir: str, n_jumps: int) -> dict:
    import numpy as np

    from loopmind.app import messages as m
    from loopmind.app.app import LoopMindApp
    from loopmind.app.pager import PAGE_ROWS, BrowseQuery
    from loopmind.app.widgets.browser import Browser
    from loopmind.app.widgets.sample_table import SampleTable

    loaded: dict[tuple[int, int], float] = {}
    found: list[tuple[float, int]] = []
    played: list[float] = []

    def hook(message) -> None:
        if isinstance(message, m.PageLoaded):
            loaded.setdefault((message.token, message.page), time.perf_counter())
        elif isinstance(message, m.SoundsFound):
            found.append((time.perf_counter(), message.result.token))

    engine = _engine()
    real_play = engine.play

    def play(*a, **kw):
        if kw.get("voice", "audition") == "audition":
            played.append(time.perf_counter())
        return real_play(*a, **kw)

    engine.play = play
    app = LoopMindApp(_settings(home), engine=engine, watch=False, demo=False)
    out: dict = {}
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        table = app.studio.query_one(SampleTable)
        browser = app.studio.query_one(Browser)

        async def until(pred, timeout=30.0):
            # a plain sleep: the pilot's pause does screen work of its own on the UI loop
            t0 = time.perf_counter()
            while not pred():
                if time.perf_counter() - t0 > timeout:
                    raise TimeoutError
                await asyncio.sleep(0.001)

        await until(lambda: table.result is not None and table.current is not None, 60)
        await until(lambda: app.audio is not None)
        total = table.row_count
        out["rows"] = total
        probe = LagProbe()
        probe.start()
        await pilot.pause(0.2)

        # jumps across the table, as dragging the scrollbar does
        probe.active = True
        rng = np.random.default_rng(0)
        jumps = []
        for row in rng.integers(0, total, n_jumps):
            token = table.result.token
            page = int(row) // PAGE_ROWS
            t0 = time.perf_counter()
            table.cursor = int(row)
            await until(lambda: table.hit_at(int(row)) is not None)
            await pilot.pause(0)  # the frame with the rows
            jumps.append(time.perf_counter() - t0)
            del token, page
        # page down through the table (the key's action; the pilot's own key press adds
        # its waits for idle)
        presses = []
        table.cursor = 0
        for _ in range(100):
            t0 = time.perf_counter()
            table.action_move_page(1)
            await pilot.pause(0)
            await until(lambda: table.current is not None)
            presses.append(time.perf_counter() - t0)
        browse_lag = list(probe.samples)
        probe.samples.clear()

        # filter changes: query to its first page on screen
        filters = [BrowseQuery(text="dark"), BrowseQuery(role="bass"),
                   BrowseQuery(text="140"), BrowseQuery(text="dark 808 140 F minor"),
                   BrowseQuery(text="lofi drums", kind="loop"), BrowseQuery(),
                   BrowseQuery(text="kick"), BrowseQuery(role="pad", text="warm")]
        filter_times, filter_rows = [], []
        for _ in range(3):
            for q in filters:
                n_found = len(found)
                t0 = time.perf_counter()
                browser.run_query(q)
                await until(lambda: len(found) > n_found)
                token = found[-1][1]
                if table.row_count:
                    await until(lambda: (token, 0) in loaded)
                await pilot.pause(0)
                filter_times.append(time.perf_counter() - t0)
                filter_rows.append(table.row_count)
        filter_lag = list(probe.samples)
        probe.active = False

        # audition: a real sound of the Keys folder
        browser.run_query(BrowseQuery(folder=keys_dir))
        await until(lambda: table.row_count and table.result.ids and
                    table.current is not None and keys_dir in table.current.path)
        song = app.session.song
        audition = {"memory": [], "disk": [], "cold": []}
        rows = list(range(table.row_count))
        for i, row in enumerate(rows * 2):
            table.cursor = row
            await until(lambda: table.current is not None)
            await pilot.pause(0.05)
            app.audio.auditioner.wait_idle(30)  # the cursor stopped: it is prepared
            n = len(played)
            t0 = time.perf_counter()
            await pilot.press("enter")
            await until(lambda: len(played) > n)
            audition["memory"].append(played[-1] - t0)
        for bpm in (93.0, 97.0):
            song.bpm = bpm  # a new tempo: nothing is prepared or cached for it
            for row in rows:
                table.cursor = row
                await pilot.pause(0.01)
                app.audio.auditioner.wait_idle(30)
                app.audio.auditioner.clear_memory()
                n = len(played)
                t0 = time.perf_counter()
                await pilot.press("enter")
                await until(lambda: len(played) > n, 60)
                audition["disk"].append(played[-1] - t0)
        for j, bpm in enumerate((101.0, 103.0)):
            song.bpm = bpm
            for row in rows:
                app.audio.auditioner.clear_memory()
                table.cursor = row
                n = len(played)
                t0 = time.perf_counter()
                await pilot.press("enter")  # before the background prepare could finish
                await until(lambda: len(played) > n, 60)
                audition["cold"].append(played[-1] - t0)
        probe.stop()
    out.update(jumps=jumps, presses=presses, browse_lag=browse_lag, filters=filter_times,
               filter_rows=filter_rows, filter_lag=filter_lag, audition=audition)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5, help="cold starts for the first paint")
    ap.add_argument("--jumps", type=int, default=60)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "app.md"))
    ap.add_argument("--child-first-paint", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_first_paint:
        child_first_paint(args.child_first_paint)
        return
    import numpy as np

    from benchmarks.bench_search import build_library
    from loopmind.app.pager import PAGE_ROWS
    from benchmarks.common import machine, write_result
    from loopmind.config import set_settings
    from loopmind.library.indexer import Indexer

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        home = os.path.join(tmp, "home")
        settings = _settings(home)
        set_settings(settings)
        lib, build_s = build_library(settings, args.segments, np.random.default_rng(0))
        keys_dir = str(settings.data_dir / "demo" / "Keys")
        indexer = Indexer(lib)
        indexer.add_folder(keys_dir)
        indexer.scan([keys_dir])
        lib.close()

        paints = []
        for _ in range(args.runs):
            r = subprocess.run([sys.executable, __file__, "--child-first-paint", home],
                               capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
            if r.returncode:
                raise SystemExit(f"first-paint run failed:\n{r.stderr[-3000:]}")
            paints.append(json.loads(r.stdout.strip().splitlines()[-1]))
        res = asyncio.run(browse_and_audition(home, keys_dir, args.jumps))

    paint = statistics.median(p["paint_s"] for p in paints)
    rows = statistics.median(p["rows_s"] for p in paints)
    imp = statistics.median(p["import_s"] for p in paints)
    a = res["audition"]
    lag_all = res["browse_lag"] + res["filter_lag"]
    lines = [
        "# The studio at library scale",
        "",
        f"Machine: {machine()} (load average {load:.1f} at the start). "
        f"{res['rows']:,} segments in the browser ({args.segments:,} "
        f"bulk-inserted + the demo library's Keys folder indexed for real; building took "
        f"{build_s:.0f} s). Headless `run_test` at {SIZE[0]} x {SIZE[1]}, offline audio engine, "
        "no watcher.",
        "",
        "| measure | median | p95 | max |",
        "|---|---|---|---|",
        f"| first paint, cold process (script start → first frame), {args.runs} runs | "
        f"{paint * 1000:.0f} ms | | {max(p['paint_s'] for p in paints) * 1000:.0f} ms |",
        f"| … of which importing the app (Textual, no domain) | {imp * 1000:.0f} ms | | |",
        f"| first rows of the 100k on screen (library opened in a worker) | {rows * 1000:.0f} ms "
        f"| | {max(p['rows_s'] for p in paints) * 1000:.0f} ms |",
        f"| jump to a random row, rows on screen ({len(res['jumps'])} jumps) | "
        f"{_ms(res['jumps'], 50):.1f} ms | {_ms(res['jumps'], 95):.1f} ms | "
        f"{max(res['jumps']) * 1000:.1f} ms |",
        f"| page down, rows on screen ({len(res['presses'])} pages) | "
        f"{_ms(res['presses'], 50):.1f} ms | {_ms(res['presses'], 95):.1f} ms | "
        f"{max(res['presses']) * 1000:.1f} ms |",
        f"| filter change → first page on screen ({len(res['filters'])} queries, "
        f"{min(res['filter_rows']):,}-{max(res['filter_rows']):,} rows) | "
        f"{_ms(res['filters'], 50):.0f} ms | {_ms(res['filters'], 95):.0f} ms | "
        f"{max(res['filters']) * 1000:.0f} ms |",
        f"| UI event-loop lag while jumping and paging | {_ms(res['browse_lag'], 50):.1f} ms | "
        f"{_ms(res['browse_lag'], 95):.1f} ms | {max(res['browse_lag']) * 1000:.1f} ms |",
        f"| UI event-loop lag while filtering | {_ms(res['filter_lag'], 50):.1f} ms | "
        f"{_ms(res['filter_lag'], 95):.1f} ms | {max(res['filter_lag']) * 1000:.1f} ms |",
        f"| audition, prepared (enter → engine plays), {len(a['memory'])} | "
        f"{_ms(a['memory'], 50):.1f} ms | {_ms(a['memory'], 95):.1f} ms | "
        f"{max(a['memory']) * 1000:.1f} ms |",
        f"| audition, stretch cache on disk only, {len(a['disk'])} | {_ms(a['disk'], 50):.1f} ms "
        f"| {_ms(a['disk'], 95):.1f} ms | {max(a['disk']) * 1000:.1f} ms |",
        f"| audition, not cached (stretched on the key press), {len(a['cold'])} | "
        f"{_ms(a['cold'], 50):.0f} ms | {_ms(a['cold'], 95):.0f} ms | "
        f"{max(a['cold']) * 1000:.0f} ms |",
        "",
        "Targets:",
        f"- first paint ≤ 1 s: {paint * 1000:.0f} ms median, "
        f"{'met' if paint <= 1.0 else 'NOT met'} (the library, the audio device and numpy are "
        "opened after the first frame, in workers).",
        f"- scrolling and filtering without blocking: the UI loop's lag stayed at "
        f"p95 {_ms(lag_all, 95):.1f} ms, max {max(lag_all) * 1000:.1f} ms while rows and "
        f"queries were read in workers "
        f"({'met' if max(lag_all) < 0.1 else 'NOT met'}: no frame held up by 100 ms or more); "
        f"pages are {PAGE_ROWS} rows read by id, so a jump costs the same anywhere in the table.",
        f"- audition of a cached sound within 150 ms of the key press: prepared "
        f"p95 {_ms(a['memory'], 95):.1f} ms, from the disk cache p95 {_ms(a['disk'], 95):.1f} ms "
        f"({'met' if _ms(a['disk'], 95) <= 150 else 'NOT met'}); the output device's own "
        "latency (`Engine.latency_s`, PortAudio's \"high\" setting) comes on top. A sound "
        "never auditioned at this tempo is stretched on the key press: "
        f"p95 {_ms(a['cold'], 95):.0f} ms.",
        "",
        "Run: `python benchmarks/bench_app.py`.",
    ]
    write_result(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

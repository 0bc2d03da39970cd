"""Project import on real files: the FL Studio projects of the DEV set and LMMS's demo songs.

Run from the repository root:

    PYTHONPATH=. python benchmarks/bench_import.py [--lmms DIR] [--fuzz N]

* FLP: every ``task=flp`` row of the DEV labels (``benchmarks.common``; the files are read from
  ``<shared eval>/flp`` when present, else from the built eval data). A row whose truth is a
  tempo must import with that tempo (within 0.01 BPM); a row whose truth is ERROR must be
  rejected with a ``ProjectError`` naming the file.
* LMMS: every .mmp/.mmpz under ``--lmms`` (default: the Debian ``lmms-common`` package unpacked
  under the eval data: ``apt-get download lmms-common && dpkg -x lmms-common_*.deb DIR``), 26
  projects (demos, shorties, a tutorial). They must all import; the report gives how much of
  each the importer understood (roles, sections, mixer fields).
* Robustness (``--fuzz N``, default 20): N truncations and N single-byte corruptions of each
  good file (seeded); each must import or fail with a ``ProjectError`` naming the file; any
  other exception is a failure.

Writes ``benchmarks/results/import.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import EVAL_DATA, SHARED_EVAL, labels, machine, write_result

DEFAULT_LMMS = EVAL_DATA / ".pkgs" / "lmms-common" / "usr" / "share" / "lmms" / "projects"
OUT = Path(__file__).resolve().parent / "results" / "import.md"


def _flp_rows() -> list[dict]:
    rows = labels("flp")
    for r in rows:
        shared = SHARED_EVAL / r["path"]
        r["file"] = str(shared if shared.exists() else r["abspath"])
    return rows


def _import(path: str):
    """(project or None, error text or None, seconds)."""
    from loopmind.generate.projects import ProjectError, load_project

    t0 = time.perf_counter()
    try:
        project = load_project(path)
    except ProjectError as exc:
        return None, str(exc), time.perf_counter() - t0
    return project, None, time.perf_counter() - t0


def _fuzz(path: str, n: int, rng: np.random.Generator) -> dict[str, int]:
    """Import truncated and corrupted copies of a file; count the outcomes."""
    from loopmind.generate.projects import ProjectError, load_project

    data = Path(path).read_bytes()
    counts = {"imported": 0, "rejected": 0, "crashed": 0}
    crashes: list[str] = []
    suffix = Path(path).suffix
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"fuzz{suffix}"
        variants = [data[: int(rng.integers(0, len(data)))] for _ in range(n)]
        for _ in range(n):
            b = bytearray(data)
            i = int(rng.integers(0, len(b)))
            b[i] = (b[i] + int(rng.integers(1, 256))) % 256
            variants.append(bytes(b))
        for v in variants:
            target.write_bytes(v)
            try:
                load_project(target)
                counts["imported"] += 1
            except ProjectError as exc:
                counts["rejected" if str(target) in str(exc) else "crashed"] += 1
            except Exception as exc:  # noqa: BLE001 - this is what we count
                counts["crashed"] += 1
                crashes.append(f"{type(exc).__name__}: {exc}"[:120])
    counts["examples"] = crashes[:3]  # type: ignore[assignment]
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lmms", type=Path, default=DEFAULT_LMMS,
                    help="folder with LMMS projects (searched recursively)")
    ap.add_argument("--fuzz", type=int, default=20, help="variants per file and kind (0: off)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rng = np.random.default_rng(183)

    lines = ["# Project import", "", f"Machine: {machine()}", "",
             "`PYTHONPATH=. python benchmarks/bench_import.py` (loopmind.generate.projects: "
             "FL Studio via pyflp 2.2.1 with LoopMind's Python 3.11 shim, LMMS via the bounded "
             "XML reader).", ""]
    t_all = time.perf_counter()

    # -- FLP against the labels
    rows = _flp_rows()
    lines += ["## FL Studio (.flp), DEV labels task=flp", "",
              "| file | truth | result | tracks | clips | sections | ms |",
              "|---|---|---|---|---|---|---|"]
    good_ok = good_n = bad_ok = bad_n = 0
    good_files: list[str] = []
    for r in rows:
        project, err, dt = _import(r["file"])
        name = Path(r["file"]).name
        if r["truth"] == "ERROR":
            bad_n += 1
            ok = project is None and r["file"] in (err or "")
            bad_ok += ok
            result = f"rejected: {err.split(': ', 1)[1]}" if ok else "NOT REJECTED"
            lines.append(f"| {name} | ERROR | {result} | | | | {dt * 1000:.0f} |")
        else:
            good_n += 1
            truth = float(r["truth"])
            ok = project is not None and project.bpm is not None and \
                abs(project.bpm - truth) <= 0.01
            good_ok += ok
            if project is None:
                lines.append(f"| {name} | {truth:g} | FAILED: {err} | | | | {dt * 1000:.0f} |")
                continue
            good_files.append(r["file"])
            clips = sum(len(t.clips) for t in project.tracks)
            secs = ", ".join(f"{s.name} {s.bars:g}" for s in project.sections) or "-"
            lines.append(f"| {name} | {truth:g} | {project.bpm:g} BPM {'ok' if ok else 'WRONG'}"
                         f"{' (' + '; '.join(project.warnings) + ')' if project.warnings else ''}"
                         f" | {len(project.tracks)} | {clips} | {secs} | {dt * 1000:.0f} |")
    lines += ["", f"Tempo right: **{good_ok}/{good_n}**; invalid files rejected with their "
              f"name: **{bad_ok}/{bad_n}**.", ""]

    # -- LMMS demos
    lmms_files = sorted(p for p in args.lmms.rglob("*")
                        if p.suffix.lower() in (".mmp", ".mmpz") and p.is_file()) \
        if args.lmms.exists() else []
    lines += ["## LMMS (.mmp/.mmpz)", ""]
    if not lmms_files:
        lines += [f"No LMMS projects under {args.lmms} (apt-get download lmms-common; "
                  "dpkg -x lmms-common_*.deb DIR; --lmms DIR/usr/share/lmms/projects).", ""]
    else:
        lines += ["| project | BPM | sig | bars | tracks | with role | sections (inferred) | "
                  "mixer: gain/pan/insert/eq/reverb | ms |",
                  "|---|---|---|---|---|---|---|---|---|"]
    loaded = 0
    totals = {"tracks": 0, "role": 0, "gain": 0, "pan": 0, "insert": 0, "eq": 0, "reverb": 0,
              "sections": 0, "notes": 0}
    times: list[float] = []
    for f in lmms_files:
        project, err, dt = _import(str(f))
        times.append(dt)
        rel = f.relative_to(args.lmms)
        if project is None:
            lines.append(f"| {rel} | FAILED: {err} | | | | | | | {dt * 1000:.0f} |")
            continue
        loaded += 1
        good_files.append(str(f))
        tracks = [t for t in project.tracks if t.kind != "automation"]
        m = {"gain": sum(t.mixer.gain_db is not None for t in tracks),
             "pan": sum(abs(t.mixer.pan) > 1e-3 for t in tracks),
             "insert": sum(t.mixer.insert is not None for t in tracks),
             "eq": sum(t.mixer.eq is not None for t in tracks),
             "reverb": sum(t.mixer.reverb_send is not None for t in tracks)}
        role = sum(t.role is not None for t in tracks)
        totals["tracks"] += len(tracks)
        totals["role"] += role
        totals["sections"] += len(project.sections)
        totals["notes"] += sum(len(c.notes or []) for t in tracks for c in t.clips)
        for k, v in m.items():
            totals[k] += v
        sig = f"{project.time_signature[0]}/{project.time_signature[1]}"
        inferred = sum(s.inferred for s in project.sections)
        lines.append(f"| {rel} | {project.bpm:g} | {sig} | {project.bars:g} | {len(tracks)} | "
                     f"{role} | {len(project.sections)} ({inferred}) | "
                     f"{m['gain']}/{m['pan']}/{m['insert']}/{m['eq']}/{m['reverb']} | "
                     f"{dt * 1000:.0f} |")
    if lmms_files:
        n = max(totals["tracks"], 1)
        lines += ["", f"Imported **{loaded}/{len(lmms_files)}** LMMS projects; "
                  f"{totals['tracks']} tracks (automation not counted), "
                  f"{totals['role']} with a role ({100 * totals['role'] / n:.0f} %), "
                  f"{totals['notes']} notes, {totals['sections']} sections (all inferred: "
                  "LMMS projects carry no section markers). Mixer fields known: gain "
                  f"{100 * totals['gain'] / n:.0f} %, pan off centre "
                  f"{100 * totals['pan'] / n:.0f} %, FX channel {100 * totals['insert'] / n:.0f} %,"
                  f" EQ {100 * totals['eq'] / n:.0f} %, reverb send "
                  f"{100 * totals['reverb'] / n:.0f} %.",
                  f"Time per project: median {1000 * float(np.median(times)):.0f} ms, "
                  f"max {1000 * max(times):.0f} ms.", ""]

    # -- robustness
    if args.fuzz > 0 and good_files:
        lines += ["## Robustness: truncated and corrupted copies", "",
                  f"{args.fuzz} random truncations and {args.fuzz} random one-byte changes of "
                  "each good file (seed 183). Every copy must import or be rejected with a "
                  "one-line ProjectError naming it.", "",
                  "| file | imported | rejected | crashed |", "|---|---|---|---|"]
        crashed = 0
        total = {"imported": 0, "rejected": 0}
        for f in good_files:
            c = _fuzz(f, args.fuzz, rng)
            crashed += c["crashed"]
            total["imported"] += c["imported"]
            total["rejected"] += c["rejected"]
            if f.endswith(".flp") or c["crashed"]:
                ex = f" ({'; '.join(c['examples'])})" if c["examples"] else ""
                lines.append(f"| {Path(f).name} | {c['imported']} | {c['rejected']} | "
                             f"{c['crashed']}{ex} |")
        lines += [f"| all {len(good_files)} files | {total['imported']} | {total['rejected']} |"
                  f" {crashed} |", ""]

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [f"Whole run: {time.perf_counter() - t_all:.1f} s, peak RSS {peak_mb:.0f} MB.", ""]
    write_result(args.out, "\n".join(lines))
    if good_ok < good_n or bad_ok < bad_n or loaded < len(lmms_files):
        sys.exit(1)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()

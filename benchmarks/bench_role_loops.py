"""Role of melodic loops: the dev set's chorale excerpts through the pipeline.

The role benchmark (`bench_role.py`) measures one-shots, as issue 2 asks. Loops get a role
too, and the generator and `search --role` rely on it. The `key` rows of labels.csv are Bach
chorale excerpts rendered with one General MIDI program each (named in their `source`), so
they carry an instrument: Acoustic Grand Piano is "keys", String Ensemble is "strings". Each
file runs through the pipeline's worker stages (`process_file`, no embedding), file names
giving no hint (they carry no labels), and the role of each segment is compared with the
program's.

Not fully independent material for the role model: FluidR3_GM, which rendered these excerpts,
is one of the soundfonts its synthetic one-shots come from (its piano and string notes among
them). Its phrase loops (chords, arpeggios, voice-led parts, ...) are rendered by the other
four soundfonts only, never by FluidR3_GM, and nothing of the chorales is used in training.
Read it as a check of loops, not as a generalization figure.

    python benchmarks/bench_role_loops.py [--out benchmarks/results/role_loops.md]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import labels, machine, write_result  # noqa: E402

PROGRAM_ROLE = {"Acoustic Grand Piano": "keys", "String Ensemble 1": "strings"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "role_loops.md"))
    args = ap.parse_args()

    from loopmind.library.pipeline import process_file

    rows = []
    for r in labels("key"):
        m = re.search(r"GM program \d+ \(([^)]+)\)", r.get("source", ""))
        if m and m.group(1) in PROGRAM_ROLE:
            rows.append((r["abspath"], m.group(1), PROGRAM_ROLE[m.group(1)]))
    t0 = time.perf_counter()
    confusion: Counter = Counter()
    kinds: Counter = Counter()
    failed = 0
    for path, program, want in rows:
        res = process_file(path)
        if res.error:
            failed += 1
            continue
        for seg in res.segments:
            confusion[(program, seg.role)] += 1
            kinds[seg.kind] += 1
    wall = time.perf_counter() - t0

    lines = ["# Role of melodic loops (chorale excerpts)", "",
             f"Machine: {machine()}. {len(rows)} files, {sum(confusion.values())} segments "
             f"({dict(kinds)}), {failed} failed, {wall:.0f} s. Script: "
             "`benchmarks/bench_role_loops.py`.", "",
             "| program (truth) | segments | correct | roles given |", "|---|---|---|---|"]
    total = right = 0
    for program, want in PROGRAM_ROLE.items():
        got = {role: n for (p, role), n in confusion.items() if p == program}
        n = sum(got.values())
        ok = got.get(want, 0)
        total, right = total + n, right + ok
        given = ", ".join(f"{role} {k}" for role, k in sorted(got.items(), key=lambda x: -x[1]))
        lines.append(f"| {program} ({want}) | {n} | {ok} ({ok / max(n, 1):.1%}) | {given} |")
    lines += ["", f"Overall: {right}/{total} = {right / max(total, 1):.1%} of segments get the "
              "program's role.", "",
              "Not fully independent of the role model's training material: FluidR3_GM "
              "renders these excerpts and some of its training one-shots (its phrase loops "
              "come from the other soundfonts); no target in the issues."]
    write_result(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Worker-stage CPU per audio second (what one pool worker spends on a file: hash, decode,
loudness, chop, analyze, embed) of this checkout against another commit's, on the dev set.

Each version runs in its own process (``PYTHONPATH`` set to an exported copy of the
commit), both pinned by the caller to one core. They take turns file by file (who goes first
alternates), so that the drift of a shared machine (its speed moved by 30 % within minutes
here) falls on both within a fraction of a second. A repetition starts two fresh processes,
warms them up on the first few files (imports, models) and sums ``time.process_time`` of
``process_file`` over every dev file. The figure is CPU ms per second of audio; quote the
median ratio over repetitions. The segments' results are compared between the versions (so that a
change meant to be exact can be seen to be): kind, bars, key, role, tone tags, BPM,
loudness, true peak, role confidence and the embedding.

    OPENBLAS_NUM_THREADS=1 taskset -c 0 python benchmarks/time_pipeline.py \\
        [--before main] [--reps 3] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from loopmind.library.pipeline import process_file
kw = dict(embedder_name="features", sr=22050, max_duration_s=3600.0)
print("ready", flush=True)
for line in sys.stdin:
    p = json.loads(line)
    t0 = time.process_time()
    r = process_file(p, **kw)
    cpu = time.process_time() - t0
    seg = r.error or [[getattr(s, k, None) for k in ("kind", "bars", "bpm", "key", "role",
                                                    "lufs", "true_peak_db")]
                      + [sorted(t for t, _ in s.tags), s.role_confidence,
                         None if s.embedding is None else [float(v) for v in s.embedding]]
                      for s in r.segments]
    print(json.dumps({"cpu": cpu, "audio": r.duration_s or 0.0, "segments": seg}), flush=True)
"""


def _export(ref: str, dest: Path) -> Path:
    """The commit's tree (code and models) unpacked under ``dest``."""
    archive = dest / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref,
                    "loopmind", "models"], check=True)
    with tarfile.open(archive) as tf:
        tf.extractall(dest / "tree", filter="data")
    return dest / "tree"


class _Worker:
    """A fresh process running one version's ``process_file`` on the paths it is sent."""

    def __init__(self, tree: Path):
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tree)], env=env,
                                     cwd=str(tree), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, path: str) -> dict:
        self.proc.stdin.write(json.dumps(path) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _compare(a: dict, b: dict) -> str:
    """How far the two versions' segment results are apart."""
    diff_files = 0
    worst = {"lufs": 0.0, "true_peak_db": 0.0, "bpm": 0.0, "role_confidence": 0.0,
             "embedding": 0.0}
    labels_changed = 0
    for p, sa in a.items():
        sb = b.get(p)
        if sa == sb:
            continue
        diff_files += 1
        if isinstance(sa, str) or isinstance(sb, str) or len(sa) != len(sb):
            labels_changed += 1
            continue
        for x, y in zip(sa, sb):
            if (x[0], x[1], x[3], x[4], x[7]) != (y[0], y[1], y[3], y[4], y[7]):
                labels_changed += 1
            for i, k in ((2, "bpm"), (5, "lufs"), (6, "true_peak_db"), (8, "role_confidence")):
                if x[i] is not None and y[i] is not None:
                    worst[k] = max(worst[k], abs(float(x[i]) - float(y[i])))
            if x[9] is not None and y[9] is not None:
                worst["embedding"] = max(worst["embedding"], float(np.max(np.abs(
                    np.asarray(x[9]) - np.asarray(y[9])))))
    return (f"{diff_files} of {len(a)} files differ; {labels_changed} with another kind, bars, "
            f"key, role or tone tags (or error); largest difference: " +
            ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import audio_paths, machine

    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="main", help="the commit to compare with")
    ap.add_argument("--after", default=None,
                    help="a commit for 'after' too (default: this checkout's files)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="every n-th file, this many")
    args = ap.parse_args()
    paths = audio_paths(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "b").mkdir()
        trees = {"before": _export(args.before, tmp / "b")}
        if args.after:
            (tmp / "a").mkdir()
            trees["after"] = _export(args.after, tmp / "a")
        else:
            trees["after"] = ROOT
        names = list(trees)
        ms = {n: [] for n in names}
        last: dict = {n: {} for n in names}
        for r in range(args.reps):
            workers = {n: _Worker(trees[n]) for n in names}
            for w in workers.values():  # warm-up: imports, models, first-call set-up
                for p in paths[:4]:
                    w.run(p)
            cpu = {n: 0.0 for n in names}
            audio = {n: 0.0 for n in names}
            # the versions take turns file by file (who goes first alternates), so that the
            # drift of a shared machine falls on both within a fraction of a second
            for i, p in enumerate(paths):
                for n in (names if (i + r) % 2 == 0 else names[::-1]):
                    res = workers[n].run(p)
                    cpu[n] += res["cpu"]
                    audio[n] += res["audio"]
                    last[n][p] = res["segments"]
            for w in workers.values():
                w.close()
            for n in names:
                ms[n].append(1000.0 * cpu[n] / audio[n])
            print(f"rep {r}: " + ", ".join(f"{n} {ms[n][-1]:.3f}" for n in names) +
                  f" ms CPU per audio s ({audio[names[0]]:.0f} audio s); ratio "
                  f"{ms['before'][-1] / ms['after'][-1]:.3f}", flush=True)
    med = {n: float(np.median(v)) for n, v in ms.items()}
    print(f"{machine()}; {len(paths)} files; before = {args.before}")
    for n in trees:
        print(f"{n:6s}: median {med[n]:.3f} ms CPU per audio s "
              f"(= {1000.0 / med[n]:.0f}x real time on one core); passes "
              + " ".join(f"{x:.3f}" for x in ms[n]))
    ratios = [b / a for b, a in zip(ms["before"], ms["after"])]
    print(f"ratio before / after: median {np.median(ratios):.3f} (per repetition "
          + " ".join(f"{x:.3f}" for x in ratios) + ")")
    print("results: " + _compare(last["before"], last["after"]))


if __name__ == "__main__":
    main()

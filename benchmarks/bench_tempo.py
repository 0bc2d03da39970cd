"""Tempo accuracy and speed on the DEV loops, side by side with essentia and librosa.

Run from the repository root (needs the ``bench`` extras and the built eval set):

    PYTHONPATH=. python benchmarks/bench_tempo.py [--limit N] [--no-peers]

Reads the ``bpm`` rows of the DEV labels through ``benchmarks.common`` (``LOOPMIND_EVAL_LABELS``
and ``LOOPMIND_EVAL_DATA`` move them), writes ``benchmarks/results/tempo.md``.

Measures:
* Acc1: estimate within 4 % of the truth; Acc2: within 4 % of truth x1, x2, x1/2, x3 or x1/3.
* ours with ``is_loop=True`` (the caller knows these are loops), ``is_loop=None`` (the
  estimator decides), onset path only (``is_loop=False``), and end to end: ``classify_kind``
  decides loop or one-shot from the ``is_loop=None`` estimate; a loop is then estimated with
  ``is_loop=True``, a one-shot gets no tempo (counted as a miss).
* peers in the same run: essentia RhythmExtractor2013 (method "multifeature", on the same
  files decoded at 44.1 kHz, the rate it is built for) and librosa ``beat.beat_track`` (on our
  22.05 kHz decode).
* speed in ms per second of audio: ours on top of the shared STFT (``Spectrogram.magnitude``),
  counting the mel/log-mel/RMS it reads, and the peers.
* robustness of the constants chosen on this set: accuracy on halves (split by drummer, and by
  performance) and with each constant scaled by 2/3 and 3/2.
* loop/one-shot decision on truncated loops: each 4-bar loop cut at a random 55-90 % of its
  length (no longer bar-exact), with ``is_loop=None``.
"""

from __future__ import annotations

import os

# one BLAS thread, as in the indexing pipeline's one-process-per-core pool (a multi-threaded
# sgemm on a busy 2-core machine mostly measures thread contention)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import labels, machine  # noqa: E402
from loopmind.library.analysis import tempo as T  # noqa: E402
from loopmind.library.analysis.features import Spectrogram  # noqa: E402
from loopmind.library.audio import decode  # noqa: E402
from loopmind.library.chop import classify_kind  # noqa: E402

SR = 22050
FACTORS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)


def acc(est: float | None, truth: float) -> tuple[bool, bool]:
    if not est:
        return False, False
    q = est / truth
    return abs(q - 1) < 0.04, any(abs(q / f - 1) < 0.04 for f in FACTORS)


def group_of(source: str) -> str:
    return re.split(r" bar", source)[0]


def drummer_half(source: str) -> int:
    m = re.search(r"drummer(\d+)", source)
    return int(m.group(1)) % 2 if m else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N loops only")
    ap.add_argument("--no-peers", action="store_true", help="skip essentia and librosa")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/tempo.md"))
    args = ap.parse_args()

    rows = labels("bpm")
    if args.limit:
        rows = rows[: args.limit]
    print(f"{len(rows)} loops", file=sys.stderr)

    items = []  # (row, y, spec)
    t_dec = 0.0
    for r in rows:
        t0 = time.perf_counter()
        d = decode(r["abspath"], sr=SR)
        t_dec += time.perf_counter() - t0
        items.append((r, d.y))
    audio_s = sum(len(y) for _, y in items) / SR

    # -- ours ----------------------------------------------------------------------------
    t_stft = 0.0
    specs = []
    for _, y in items:
        t0 = time.perf_counter()
        spec = Spectrogram(y, SR)
        _ = spec.magnitude  # the shared STFT, paid once for every analyzer
        t_stft += time.perf_counter() - t0
        specs.append(spec)

    def timed_pass(with_mel: bool) -> float:
        """Seconds for estimate_tempo(is_loop=None) over the set, on fresh Spectrograms that
        share the STFT (and, with_mel, the mel features too)."""
        total = 0.0
        for (_, y), spec in zip(items, specs):
            fresh = Spectrogram(y, SR)
            fresh.__dict__["magnitude"] = spec.magnitude
            if with_mel:
                for name in ("power", "mel", "log_mel", "rms"):
                    fresh.__dict__[name] = getattr(spec, name)
            t0 = time.perf_counter()
            T.estimate_tempo(y, sr=SR, spec=fresh, is_loop=None)
            total += time.perf_counter() - t0
        return total

    # the machine is shared: best of 3 passes
    t_ours = min(timed_pass(False) for _ in range(3))
    t_ours_warm = min(timed_pass(True) for _ in range(3))
    # a 3-minute song (synthesized 4/4 groove with a bass line, 100 BPM): tempo and chop cost
    sys.path.insert(0, str(ROOT / "tests/unit"))
    from test_chop import groove  # noqa: E402

    from loopmind.library.chop import chop  # noqa: E402

    song = groove(100, 75, song=True)
    song_spec = Spectrogram(song, SR)
    for name in ("magnitude", "mel", "log_mel", "rms"):
        getattr(song_spec, name)
    t0 = time.perf_counter()
    song_tempo = T.estimate_tempo(song, sr=SR, spec=song_spec)
    t_song_tempo = time.perf_counter() - t0
    t0 = time.perf_counter()
    song_spans = chop(song, sr=SR, spec=song_spec, tempo=song_tempo)
    t_song_chop = time.perf_counter() - t0
    song_s = len(song) / SR
    results: dict[str, list[tuple[bool, bool]]] = {}
    confs: dict[str, list[float]] = {}
    for mode, is_loop in (("ours, is_loop=True", True), ("ours, is_loop=None", None),
                          ("ours, onset path only (is_loop=False)", False)):
        res, cf = [], []
        for (r, y), spec in zip(items, specs):
            e = T.estimate_tempo(y, sr=SR, spec=spec, is_loop=is_loop)
            res.append(acc(e.bpm, float(r["truth"])))
            cf.append(e.confidence)
        results[mode], confs[mode] = res, cf
    # end to end: kind decided by the classifier
    res, kinds = [], []
    for (r, y), spec in zip(items, specs):
        e0 = T.estimate_tempo(y, sr=SR, spec=spec, is_loop=None)
        kind, _ = classify_kind(y, sr=SR, spec=spec, tempo=e0)
        kinds.append(kind)
        e = T.estimate_tempo(y, sr=SR, spec=spec, is_loop=True) if kind == "loop" else None
        res.append(acc(e.bpm if e else None, float(r["truth"])))
    results["ours, end to end (classify_kind decides)"] = res

    # -- peers ---------------------------------------------------------------------------
    peer_time: dict[str, float] = {}
    if not args.no_peers:
        import essentia
        import essentia.standard as es

        essentia.log.infoActive = False
        essentia.log.warningActive = False
        ex = es.RhythmExtractor2013(method="multifeature")
        res = []
        t_peer = 0.0
        for r, _ in items:
            y44 = decode(r["abspath"], sr=44100).y
            t0 = time.perf_counter()
            bpm = float(ex(y44)[0])
            t_peer += time.perf_counter() - t0
            res.append(acc(bpm, float(r["truth"])))
        name = "essentia RhythmExtractor2013 (multifeature)"
        results[name], peer_time[name] = res, t_peer

        import librosa

        librosa.beat.beat_track(y=items[0][1], sr=SR)  # JIT warm-up, not timed
        res = []
        t_peer = 0.0
        for r, y in items:
            t0 = time.perf_counter()
            tempo, _ = librosa.beat.beat_track(y=y, sr=SR)
            t_peer += time.perf_counter() - t0
            res.append(acc(float(np.atleast_1d(tempo)[0]), float(r["truth"])))
        name = "librosa beat.beat_track"
        results[name], peer_time[name] = res, t_peer

    # -- robustness ----------------------------------------------------------------------
    truths = np.array([float(r["truth"]) for r, _ in items])
    srcs = [r["source"] for r, _ in items]

    def acc1_loop() -> np.ndarray:
        out = []
        for (r, y), spec in zip(items, specs):
            e = T.estimate_tempo(y, sr=SR, spec=spec, is_loop=True)
            out.append(acc(e.bpm, float(r["truth"]))[0])
        return np.array(out)

    halves = {
        "drummer id odd / even (Sonic Pi, LMMS in 'even')":
            np.array([drummer_half(s) for s in srcs]),
        "performance (hash of source MIDI)":
            np.array([int(hashlib.md5(group_of(s).encode()).hexdigest(), 16) % 2 for s in srcs]),
    }
    base = acc1_loop()
    constants = ["PRIOR_BPM", "PRIOR_OCTAVES", "W_PERIODIC", "W_BACKBEAT", "W_BACKBEAT_HI",
                 "W_HALFBAR"]
    perturb = []
    for c in constants:
        v0 = getattr(T, c)
        row = [c, v0]
        # the prior's centre moves by -/+ 0.2 octave, the other constants by 2/3 and 3/2
        for f in ((0.87, 1.15) if c == "PRIOR_BPM" else (2 / 3, 1.5)):
            setattr(T, c, v0 * f)
            row.append(acc1_loop().mean())
        setattr(T, c, v0)
        perturb.append(row)

    # ablation: the tempo prior alone on the whole-beat grid (no onset evidence)
    evidence = ("W_PERIODIC", "W_BACKBEAT", "W_BACKBEAT_HI", "W_HALFBAR")
    saved_ev = [getattr(T, n) for n in evidence]
    for n in evidence:
        setattr(T, n, 0.0)
    prior_only = []
    for (r, y), spec in zip(items, specs):
        e = T.estimate_tempo(y, sr=SR, spec=spec, is_loop=True)
        prior_only.append(acc(e.bpm, float(r["truth"])))
    for n, v in zip(evidence, saved_ev):
        setattr(T, n, v)
    po = np.array(prior_only, dtype=float)

    # cross-validation: choose the 3 main weights on one half, measure on the other
    grid = [(o, p, b) for o in (0.36, 0.42, 0.5) for p in (1.0, 1.5, 2.0) for b in (0.5, 1.0, 1.5)]
    names = ("PRIOR_OCTAVES", "W_PERIODIC", "W_BACKBEAT")
    saved = [getattr(T, n) for n in names]
    grid_acc = []
    for g in grid:
        for n, v in zip(names, g):
            setattr(T, n, v)
        grid_acc.append(acc1_loop())
    for n, v in zip(names, saved):
        setattr(T, n, v)
    grid_acc = np.array(grid_acc)
    cv = []
    for split, h in halves.items():
        for half in (0, 1):
            tr, te = h == half, h != half
            if tr.sum() == 0 or te.sum() == 0:
                continue
            best = int(np.argmax(grid_acc[:, tr].mean(axis=1)))
            cv.append((split, half, grid[best], grid_acc[best, tr].mean(), grid_acc[best, te].mean()))

    # -- truncated loops (not bar-exact) with is_loop=None --------------------------------
    rng = np.random.default_rng(440)
    cut_res, cut_loop = [], []
    for (r, y) in items:
        if r["bars"] != "4":
            continue
        yc = y[: int(len(y) * rng.uniform(0.55, 0.9))]
        e = T.estimate_tempo(yc, sr=SR, spec=Spectrogram(yc, SR), is_loop=None)
        cut_res.append(acc(e.bpm, float(r["truth"])))
        cut_loop.append(e.method == "loop")

    # -- report --------------------------------------------------------------------------
    lines = [
        "# Tempo estimation (DEV loops)",
        "",
        f"Measured on {machine()} by `benchmarks/bench_tempo.py`"
        f"{' --limit ' + str(args.limit) if args.limit else ''}; "
        f"{len(items)} loops ({audio_s:.0f} s of audio) from the `bpm` rows of "
        "`shared/eval/labels.csv`: bar-exact 4/4 drum grooves of 1, 2 and 4 bars (Groove MIDI "
        "Dataset rendered with FluidR3_GM, 50-215 BPM, human timing) and 13 sample loops.",
        "",
        "Acc1: within 4 % of the truth. Acc2: within 4 % of the truth x1, x2, x1/2, x3 or x1/3.",
        "",
        "| estimator | Acc1 | Acc2 | ms per audio second |",
        "|---|---|---|---|",
    ]
    for name, res in results.items():
        a = np.array(res, dtype=float)
        if name.startswith("ours, is_loop=None"):
            ms = f"{1000 * t_ours / audio_s:.2f} ({1000 * t_ours_warm / audio_s:.2f} with mel " \
                 "features already built)"
        elif name in peer_time:
            ms = f"{1000 * peer_time[name] / audio_s:.1f}"
        else:
            ms = ""
        lines.append(f"| {name} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} | {ms} |")
    lines += [
        "",
        f"Shared cost, not in our column: decode {1000 * t_dec / audio_s:.2f} ms/s, the shared "
        f"STFT (`Spectrogram.magnitude`) {1000 * t_stft / audio_s:.2f} ms/s. Our column counts "
        "the mel, log-mel and RMS features it reads (other analyzers share them); best of 3 "
        "passes with one BLAS thread, the 2 cores being shared with other work "
        f"(load average at the end of the run: {os.getloadavg()[0]:.1f}).",
        f"A 3-minute synthesized song (100 BPM): tempo {1000 * t_song_tempo / song_s:.2f} ms/s "
        f"(found {song_tempo.bpm:.2f} BPM, {song_tempo.method} path), chop with beat and "
        f"downbeat tracking {1000 * t_song_chop / song_s:.2f} ms/s ({len(song_spans)} segments).",
        f"End to end, `classify_kind` called {sum(k == 'loop' for k in kinds)} of {len(kinds)} "
        "loops a loop.",
        "",
        "## Confidence calibration (ours, is_loop=None)",
        "",
        "| confidence | loops | Acc1 |",
        "|---|---|---|",
    ]
    a = np.array(results["ours, is_loop=None"], dtype=float)
    cf = np.array(confs["ours, is_loop=None"])
    for lo, hi in ((0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.01)):
        m = (cf >= lo) & (cf < hi)
        if m.any():
            lines.append(f"| {lo:.2f}-{min(hi, 1):.2f} | {m.sum()} | {a[m, 0].mean():.3f} |")
    lines += [
        "",
        "## Robustness of the constants (ours, is_loop=True, Acc1)",
        "",
        "The prior and the evidence weights in `loopmind/library/analysis/tempo.py` were "
        "picked on this set (a grid over the weights; a broad plateau of settings scores "
        "within 1 % of the best, and the values used sit inside it). Accuracy on halves of the "
        "set with the same constants:",
        "",
        "| split | half 0 | half 1 |",
        "|---|---|---|",
    ]
    def mean_or_na(a: np.ndarray) -> str:
        return f"{a.mean():.3f}" if len(a) else "n/a"

    for name, h in halves.items():
        lines.append(f"| {name} | {mean_or_na(base[h == 0])} (n={int((h == 0).sum())}) | "
                     f"{mean_or_na(base[h == 1])} (n={int((h == 1).sum())}) |")
    lines += ["", "Cross-validated: the 3 main weights (prior spread, periodicity, backbeat) "
              f"chosen from a {len(grid)}-point grid on one half, Acc1 measured on the other:", "",
              "| split | chosen on half | (PRIOR_OCTAVES, W_PERIODIC, W_BACKBEAT) | "
              "Acc1 on that half | Acc1 on the other half |", "|---|---|---|---|---|"]
    for split, half, g, a_tr, a_te in cv:
        lines.append(f"| {split} | {half} | {g} | {a_tr:.3f} | {a_te:.3f} |")
    lines += ["", "Each constant moved with the others unchanged (PRIOR_BPM by x0.87 and x1.15, "
              f"about 0.2 octave; the rest by x2/3 and x3/2); all unchanged: {base.mean():.3f}:",
              "", "| constant | value | lower | higher |", "|---|---|---|---|"]
    for c, v, lo, hi in perturb:
        lines.append(f"| {c} | {v:g} | {lo:.3f} | {hi:.3f} |")
    lines += ["", f"Ablation: the tempo prior and beat-count prior alone on the whole-beat grid "
              f"(all onset evidence weights 0) give Acc1 {po[:, 0].mean():.3f}, Acc2 "
              f"{po[:, 1].mean():.3f}; the difference to the full model is what the onset "
              "evidence (periodicity, backbeat) adds. (For comparison, picking among whole "
              "4/4 bars only the reading nearest 106 BPM, i.e. the prior plus a hard bar "
              "constraint, was measured at about 0.91 Acc1 during development.)"]
    cr = np.array(cut_res, dtype=float)
    if len(cr):
        lines += [
            "",
            "## Truncated loops, is_loop=None",
            "",
            f"{len(cr)} 4-bar loops cut at 55-90 % of their length (no longer a whole number of "
            f"bars): read as loops {np.mean(cut_loop):.2f} of the time, Acc1 "
            f"{cr[:, 0].mean():.3f}, Acc2 {cr[:, 1].mean():.3f}.",
        ]
    lines += [
        "",
        "## Notes",
        "",
        "* Chosen on this set: `PRIOR_BPM`, `PRIOR_OCTAVES` and the evidence weights `W_*` "
        "(grid search; the cross-validated rows above show the cost of choosing them on half the "
        "data). The beat-count prior and the band edges are set by reasoning; the onset-count "
        "and loop/one-shot thresholds are round values picked after looking at their "
        "distributions on the DEV loops and one-shots (not searched).",
        "* The backbeat cue reads the snare band's phase from the loop start, so it assumes a loop "
        "starts on a bar line (true of bar-exact loops); a loop cut to start on beat 2 can be "
        "read at double tempo.",
        "* Remaining misses on this set are octave errors at the extremes: grooves at 50-70 BPM "
        "read at double and 170-215 BPM (jazz swing, marches) at half tempo, plus half-time "
        "feels. A BPM in the file name (`bpm_hint`) settles these when present.",
        "* The onset path (songs, non-loops) is weaker on these short loops (1-4 bars give its "
        "autocorrelation few beats); on songs it re-decides half/double on 4-bar windows, which "
        "can still keep a double reading of a slow song.",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

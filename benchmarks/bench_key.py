"""Key estimation on the dev set: LoopMind against essentia's KeyExtractor, in the same run.

Over the `key` rows of labels.csv (Bach chorale excerpts rendered with piano and with strings):
  - MIREX weighted key score (1 correct, 0.5 fifth, 0.3 relative, 0.2 parallel; the fifth
    counts when the estimate is the dominant of the truth, as in mir_eval's default) and plain
    accuracy, overall and on two pairs of halves (piano vs strings renders; odd vs even
    chorales in file order), for ours and for essentia KeyExtractor with its default profile
    ('bgate') and the 'edma' and 'temperley' profiles;
  - ablations of the two modelling choices made on this data (key profile; partial decay of
    the harmonic note templates, or no harmonic removal at all), with the same halves;
  - calibration of our confidence;
  - speed: our cost per second of audio beyond the shared STFT, and essentia's.
Also the pitchedness gate (unless --no-gate): the share of files that get a key per role class
on the `role` rows (drum one-shots should get none), split by source pack, and on chorales
mixed with Groove MIDI drum loops at several drum levels (keys should survive).

    python benchmarks/bench_key.py [--limit N] [--no-gate] [--out benchmarks/results/key.md]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result, labels, machine  # noqa: E402
from loopmind.library import audio  # noqa: E402
from loopmind.library.analysis import key as keymod  # noqa: E402
from loopmind.library.analysis.features import Spectrogram  # noqa: E402

SR = 22050
DRUM_CLASSES = ("kick", "snare", "hihat", "cymbal", "tom", "clap", "perc", "drumloop")
PITCHED_CLASSES = ("bass", "keys", "pad", "lead", "strings", "guitar", "vocal")

# other published profiles, for the ablation only (major, minor; C first)
PROFILES = {
    "Temperley (Kostka-Payne)": (keymod._TEMPERLEY_MAJOR, keymod._TEMPERLEY_MINOR),
    "Albrecht-Shanahan": (keymod._AS_MAJOR, keymod._AS_MINOR),
    "Krumhansl-Kessler": ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
                          (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    "Bellman-Budge": ((16.80, 0.86, 12.95, 1.41, 13.49, 11.93, 1.25, 20.28, 1.80, 8.04, 0.62,
                       10.57),
                      (18.16, 0.69, 12.99, 13.34, 1.07, 11.15, 1.38, 21.07, 7.49, 1.53, 0.92,
                       10.21)),
    "Aarden-Essen": ((17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062,
                      0.145624, 8.15494, 0.232998, 4.95122),
                     (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161,
                      4.56621, 1.93186, 7.37619, 1.75623)),
}


def mirex_score(ref: str, est: str | None) -> float:
    """MIREX weighted key score of an estimate against the truth (mir_eval's convention)."""
    if est is None:
        return 0.0
    r, e = keymod.KEYS.index(ref), keymod.KEYS.index(est)
    rt, rm, et, em = r % 12, r // 12, e % 12, e // 12
    if r == e:
        return 1.0
    if rm == em and (et - rt) % 12 == 7:
        return 0.5
    if rm != em and ((rm == 0 and (rt - et) % 12 == 3) or (rm == 1 and (et - rt) % 12 == 3)):
        return 0.3
    if rm != em and rt == et:
        return 0.2
    return 0.0


def _category(score: float) -> str:
    return {1.0: "correct", 0.5: "fifth", 0.3: "relative", 0.2: "parallel"}.get(score, "other")


def _profile_matrix(major, minor) -> np.ndarray:
    rows = []
    for p in (major, minor):
        p = np.asarray(p, float)
        p = p / p.sum()
        p = p - p.mean()
        p /= np.linalg.norm(p)
        rows.extend(np.roll(p, k) for k in range(12))
    return np.array(rows)


def _scores_line(name: str, truth: list[str], est: list[str | None], halves: dict) -> str:
    s = np.array([mirex_score(t, e) for t, e in zip(truth, est)])
    acc = np.array([t == e for t, e in zip(truth, est)], float)
    cats = defaultdict(int)
    for v in s:
        cats[_category(v)] += 1
    parts = [f"{s[m].mean():.3f}" for m in halves.values()]
    return (f"| {name} | **{s.mean():.3f}** | {acc.mean():.3f} | " + " | ".join(parts)
            + f" | {cats['correct']}/{cats['fifth']}/{cats['relative']}/{cats['parallel']}"
              f"/{cats['other']} |")


def _essentia(rows: list[dict], profiles: tuple[str, ...]) -> tuple[dict, dict, float]:
    import essentia
    import essentia.standard as es
    import soundfile as sf

    essentia.log.infoActive = False
    sigs = []
    for r in rows:
        y, sr = sf.read(r["abspath"], dtype="float32", always_2d=True)
        sigs.append((np.ascontiguousarray(y.mean(axis=1)), sr))
    est, secs = {}, {}
    for prof in profiles:
        t0 = time.perf_counter()
        out = []
        for y, sr in sigs:
            k, scale, _strength = es.KeyExtractor(profileType=prof, sampleRate=float(sr))(y)
            out.append(keymod.parse_key(f"{k} {scale}"))
        secs[prof] = time.perf_counter() - t0
        est[prof] = out
    return est, secs, sum(len(y) / sr for y, sr in sigs)


def _with_template(decay: float, n_partials: int):
    """Context: analyze with other note templates (ablation), restoring the module after."""
    class _Ctx:
        def __enter__(self):
            self.saved = (keymod._PARTIAL_DECAY, keymod._N_PARTIALS)
            keymod._PARTIAL_DECAY, keymod._N_PARTIALS = decay, n_partials
            keymod._note_dictionary.cache_clear()

        def __exit__(self, *exc):
            keymod._PARTIAL_DECAY, keymod._N_PARTIALS = self.saved
            keymod._note_dictionary.cache_clear()
    return _Ctx()


def _gate(limit: int | None, chorales: list[np.ndarray], truth: list[str]) -> list[str]:
    lines = ["## Pitchedness gate", "",
             "Share of files that get a key (should be low for drums, high for pitched "
             "material). Role rows of labels.csv, by class and source pack.", "",
             "| class | n | all | LMMS | Sonic Pi | Hydrogen |", "|---|---|---|---|---|---|"]
    rows = labels("role")
    if limit:
        rows = rows[: limit * 3]
    got: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        try:
            y, sr = audio.load(r["abspath"], sr=SR)
        except Exception:  # noqa: BLE001 - a file the decoder refuses is not the key's concern
            continue
        has_key = keymod.estimate_key(y, sr=sr).key is not None
        pack = {"lmms": "LMMS", "sp": "Sonic Pi", "h2": "Hydrogen"}.get(
            Path(r["path"]).name.split("_")[0], "other")
        got[r["truth"]]["all"].append(has_key)
        got[r["truth"]][pack].append(has_key)

    def cell(v: list[bool]) -> str:
        return f"{np.mean(v):.2f} ({len(v)})" if v else "-"

    for group in (DRUM_CLASSES, PITCHED_CLASSES, ("fx",)):
        for c in group:
            if c in got:
                g = got[c]
                lines.append(f"| {c} | {len(g['all'])} | {np.mean(g['all']):.2f} | "
                             f"{cell(g['LMMS'])} | {cell(g['Sonic Pi'])} | {cell(g['Hydrogen'])} |")
    drums = [v for c in DRUM_CLASSES for v in got[c]["all"]]
    pitched = [v for c in PITCHED_CLASSES for v in got[c]["all"]]
    if drums and pitched:
        lines += ["", f"Drum files with no key: **{1 - np.mean(drums):.3f}** ({len(drums)}); "
                      f"pitched files with a key: **{np.mean(pitched):.3f}** ({len(pitched)})."]

    # chorales + drum loops: the key should survive drums at mix levels
    grooves = [r["abspath"] for r in labels("bpm") if "/groove/" in r["abspath"]][:40]
    drum_sigs = [audio.load(p, sr=SR)[0] for p in grooves]
    lines += ["", "Chorales mixed with Groove MIDI drum loops (drum RMS relative to the music "
              "RMS; every 3rd excerpt, so both renders occur; drum loop tiled to the excerpt's "
              "length, mix scaled down if it clips):", "",
              "| drums vs music | n | with a key | MIREX | mean confidence |",
              "|---|---|---|---|---|"]
    for gain_db in (-6, 0, 6, 10):
        sc, keyed, conf = [], [], []
        for i in range(0, len(chorales), 3):
            y = chorales[i]
            d = np.resize(drum_sigs[(i // 3) % len(drum_sigs)], y.size)
            d = d * 10 ** (gain_db / 20) * np.sqrt(np.mean(y ** 2) / max(np.mean(d ** 2), 1e-12))
            mix = (y + d).astype(np.float32)
            mix /= max(1.0, float(np.abs(mix).max()))
            e = keymod.estimate_key(mix, sr=SR)
            sc.append(mirex_score(truth[i], e.key))
            keyed.append(e.key is not None)
            conf.append(e.confidence)
        lines.append(f"| {gain_db:+d} dB | {len(sc)} | {np.mean(keyed):.2f} | {np.mean(sc):.3f} | "
                     f"{np.mean(conf):.2f} |")
    alone = [keymod.estimate_key(d, sr=SR).key is not None for d in drum_sigs]
    lines += ["", f"The {len(drum_sigs)} drum loops alone: {np.mean(alone):.2f} get a key.", ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N key rows")
    ap.add_argument("--no-gate", action="store_true", help="skip the pitchedness-gate section")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "key.md"))
    args = ap.parse_args()

    rows = labels("key")[: args.limit] if args.limit else labels("key")
    truth = [keymod.parse_key(r["truth"]) for r in rows]
    piano = np.array(["program 0 " in r["source"] for r in rows])
    chorale = [re.search(r"bach/(\S+)", r["source"]).group(1) for r in rows]
    order = {c: i for i, c in enumerate(dict.fromkeys(chorale))}
    odd = np.array([order[c] % 2 == 0 for c in chorale])
    halves = {"piano": piano, "strings": ~piano, "odd chorales": odd, "even chorales": ~odd}

    # ours: decode once, time the shared STFT and the key analysis separately
    ys, analyses, t_stft, t_key = [], [], 0.0, 0.0
    for r in rows:
        y, sr = audio.load(r["abspath"], sr=SR)
        ys.append(y)
        t0 = time.perf_counter()
        spec = Spectrogram(y, sr)
        _ = spec.power
        t1 = time.perf_counter()
        analyses.append(keymod.analyze_key(y, sr=sr, spec=spec))
        t_key += time.perf_counter() - t1
        t_stft += t1 - t0
    duration = sum(len(y) for y in ys) / SR
    ours = [a.estimate() for a in analyses]

    ess_profiles = ("bgate", "edma", "temperley")
    ess, ess_secs, ess_dur = _essentia(rows, ess_profiles)

    header = ("| method | MIREX | accuracy | " + " | ".join(halves) + " | correct/fifth/relative/"
              "parallel/other |")
    sep = "|" + "---|" * (4 + len(halves))
    lines = [
        "# Key estimation (dev set, Bach chorale excerpts)", "",
        f"Machine: {machine()}. Files: {len(rows)} ({duration:.0f} s of audio; "
        f"{piano.sum()} piano and {(~piano).sum()} strings renders of {len(order)} chorales). "
        "All methods measured in the same run by `benchmarks/bench_key.py`"
        + (f" with --limit {args.limit}" if args.limit else "") + ".", "",
        "MIREX weighted score: 1 correct, 0.5 the estimate is the truth's dominant, 0.3 "
        "relative, 0.2 parallel (mir_eval's default). Halves: piano vs strings renders, and "
        "odd vs even chorales in file order.", "",
        header, sep,
        _scores_line("**LoopMind** `estimate_key`", truth, [e.key for e in ours], halves),
    ]
    for prof in ess_profiles:
        label = f"essentia KeyExtractor '{prof}'" + (" (default)" if prof == "bgate" else "")
        lines.append(_scores_line(label, truth, ess[prof], halves))

    lines += ["", "## Speed", "",
              f"- LoopMind key analysis: **{1000 * t_key / duration:.2f} ms per second of "
              f"audio** at {SR} Hz beyond the shared STFT ({duration / t_key:.0f}x real time on "
              "one core); the shared STFT itself (computed once for all analyzers) took "
              f"{1000 * t_stft / duration:.2f} ms/s.",
              f"- essentia KeyExtractor ('bgate', on the 44.1 kHz files, its own STFT included): "
              f"{1000 * ess_secs['bgate'] / ess_dur:.2f} ms per second of audio.", ""]

    # ablations of the choices made on this data
    lines += ["## Ablations (ours, same run)", "",
              "Key profile (the shipped one is the average of Temperley and Albrecht-Shanahan):",
              "", header, sep]
    chroma = np.array([a.chroma for a in analyses])
    candidates = dict(PROFILES)
    candidates["Temperley + Albrecht-Shanahan (shipped)"] = None
    for name, prof in candidates.items():
        mat = keymod._profile_matrix() if prof is None else _profile_matrix(*prof)
        c = chroma - chroma.mean(axis=1, keepdims=True)
        c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
        est = [keymod.KEYS[int(np.argmax(mat @ v))] if a.pitched else None
               for v, a in zip(c, analyses)]
        lines.append(_scores_line(name, truth, est, halves))
    lines += ["", "Harmonic note templates (partial h has amplitude decay^(h-1), 8 partials; "
              "'none' = no harmonic removal, the chroma of the raw peaks):", "", header, sep]
    for decay, n_partials, name in ((1e-9, 1, "none"), (0.4, 8, "0.4"), (0.5, 8, "0.5"),
                                    (0.6, 8, "0.6 (shipped)"), (0.7, 8, "0.7"), (0.8, 8, "0.8")):
        with _with_template(decay, n_partials):
            est = [keymod.analyze_key(y, sr=SR).estimate().key for y in ys]
        lines.append(_scores_line(f"decay {name}", truth, est, halves))

    conf = np.array([e.confidence for e in ours])
    correct = np.array([t == e.key for t, e in zip(truth, ours)])
    lines += ["", "## Confidence calibration (ours)", "",
              "| confidence | n | accuracy |", "|---|---|---|"]
    for lo, hi in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)):
        m = (conf >= lo) & (conf < hi)
        lines.append(f"| {lo:.1f}-{min(hi, 1.0):.1f} | {m.sum()} | "
                     + (f"{correct[m].mean():.3f} |" if m.any() else "- |"))
    lines += ["", f"Mean confidence {conf.mean():.3f}, accuracy {correct.mean():.3f}.", ""]

    wrong = [(r["path"], t, e.key, round(e.confidence, 2)) for r, t, e in zip(rows, truth, ours)
             if t != e.key]
    lines += ["## Our errors", "", "| file | truth | ours | confidence |", "|---|---|---|---|"]
    lines += [f"| {p} | {t} | {k} | {c} |" for p, t, k, c in wrong] + [""]

    if not args.no_gate:
        lines += _gate(args.limit, ys, truth)

    lines += [
        "## What was chosen on this data (read the numbers with this in mind)", "",
        "- The key profile (average of Temperley and Albrecht-Shanahan, picked among the "
        "published profiles above) and the template decay 0.6 (a flat optimum from 0.5 to 0.7) "
        "were compared on all 196 files; both halves of each split are reported so the spread "
        "is visible. No per-file rule exists.",
        "- The softmax temperature of the confidence (0.05) is near the log-loss optimum on "
        "these files, so the calibration table is in-sample; real loops are harder and the "
        "confidence is probably optimistic on them.",
        "- The gate thresholds (R >= 0.3 and C >= 0.4, or R >= 0.1, C >= 0.6 and >= 4 pitch "
        "classes) were set on the same role rows and drum mixes reported above: those rates "
        "are in-sample too. The chorale scores do not depend on them (every chorale passes "
        "the gate).",
        "- The test material is narrow: four-part chorales in keys with at most 4 accidentals, "
        "two General MIDI timbres, exact A440 tuning, no drums. Detuned, drum-heavy, modal or "
        "atonal material is only covered by the synthetic unit tests and the mixes above.", ""]

    text = "\n".join(lines) + "\n"
    write_result(args.out, text)


if __name__ == "__main__":
    main()

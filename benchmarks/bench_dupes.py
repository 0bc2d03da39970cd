"""Near-duplicate detection on the dev set's real audio: copies made four ways must be found.

Originals: the dev set's one-shots (task "role") and loops (task "bpm"), 930 files. For each,
four copies are written the way a user's library gets them:

* ``mp3``: MP3 at 128 kbit/s CBR (libsndfile's LAME encoder, ``compression_level`` 0.65, which
  gives 128 kbit/s frames);
* ``gain``: +6 dB (16-bit WAV), or -6 dB when +6 dB would clip (the loops are peak-normalised
  to -1 dBFS, so most of them get -6 dB; the counts are in the result);
* ``trim``: the first 50 ms cut off (16-bit WAV);
* ``resample``: resampled to 48 kHz (``scipy.signal.resample_poly``, 160/147), or to 44.1 kHz
  for the 48 kHz originals (16-bit WAV).

Everything is decoded with ``loopmind.library.audio.decode`` (22050 Hz mono) and
fingerprinted with ``loopmind.index.dupes.fingerprint``. Every pair among all originals and
copies is scored with ``similarity`` (no candidate stage: this measures the verifier, which is
what decides; the candidate stage can only lose pairs). A pair is a true copy when both come
from the same original, or from originals with identical audio (the dev set holds a few
byte-identical files).

Peer: the common embedding-free detector, cosine similarity of librosa MFCC means (20
coefficients, the 0th dropped so gain does not matter) at or above a threshold, with its
threshold chosen the same way as ours (see ``choose_threshold``) on the same data.

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/bench_dupes.py [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from math import gcd
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import labels, machine, write_result  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "dupes.md"
KINDS = ("mp3", "gain", "trim", "resample")
MP3_LEVEL = 0.65  # libsndfile's CBR ladder: 0.62-0.68 gives 128 kbit/s
TRIM_S = 0.050
GAIN_DB = 6.0


def originals() -> list[dict]:
    """The dev set's one-shots and loops (one row per file)."""
    seen, rows = set(), []
    for r in labels():
        if r["task"] in ("role", "bpm") and r["path"] not in seen:
            seen.add(r["path"])
            rows.append(r)
    return rows


def _read_native(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    return y, sr


def make_copies(src: str, out_dir: Path, stem: str) -> dict[str, str]:
    """Write the four copies of one file; returns kind -> path (and what was done)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    y, sr = _read_native(src)
    if y.shape[1] > 2:
        y = y[:, :2]
    out: dict[str, str] = {}
    p = out_dir / f"{stem}.mp3"
    if not p.exists():
        sf.write(p, y, sr, format="MP3", subtype="MPEG_LAYER_III",
                 compression_level=MP3_LEVEL, bitrate_mode="CONSTANT")
    out["mp3"] = str(p)
    peak = float(np.abs(y).max()) if y.size else 0.0
    sign = 1.0 if peak * 10 ** (GAIN_DB / 20) <= 1.0 else -1.0
    p = out_dir / f"{stem}.gain{'+' if sign > 0 else '-'}.wav"
    if not p.exists():
        sf.write(p, y * np.float32(10 ** (sign * GAIN_DB / 20)), sr, subtype="PCM_16")
    out["gain"] = str(p)
    p = out_dir / f"{stem}.trim.wav"
    if not p.exists():
        t = y[int(round(TRIM_S * sr)):]
        sf.write(p, t if len(t) else y[:0], sr, subtype="PCM_16")
    out["trim"] = str(p)
    target = 44100 if sr == 48000 else 48000
    p = out_dir / f"{stem}.rs{target}.wav"
    if not p.exists():
        g = gcd(sr, target)
        r = resample_poly(y, target // g, sr // g, axis=0).astype(np.float32)
        sf.write(p, np.clip(r, -1, 1), target, subtype="PCM_16")
    out["resample"] = str(p)
    return out


def _prepare_one(args) -> tuple[int, dict]:
    """Worker: copies + decoded signals (22050 Hz mono) of one original, cached as .npy."""
    i, src, work = args
    from loopmind.library.audio import decode

    work = Path(work)
    copies = make_copies(src, work / "copies", f"{i:04d}")
    out = {"paths": {"orig": src, **copies}}
    for kind, path in out["paths"].items():
        cache = work / "decoded" / f"{i:04d}.{kind}.npy"
        if not cache.exists():
            try:
                y = decode(path).y
            except Exception as exc:  # noqa: BLE001 - an empty trim copy
                out.setdefault("errors", {})[kind] = str(exc)
                continue
            np.save(cache, y)
    return i, out


def prepare(rows: list[dict], work: Path, workers: int) -> dict[int, dict]:
    from concurrent.futures import ProcessPoolExecutor

    (work / "copies").mkdir(parents=True, exist_ok=True)
    (work / "decoded").mkdir(parents=True, exist_ok=True)
    jobs = [(i, r["abspath"], str(work)) for i, r in enumerate(rows)]
    with ProcessPoolExecutor(workers) as pool:
        return dict(pool.map(_prepare_one, jobs, chunksize=4))


# -- fingerprints, scores ---------------------------------------------------------------------

def _fingerprint_one(path: str) -> tuple[bytes, float, float, float]:
    """(fingerprint, seconds of audio, seconds for the mel bands, seconds for the fingerprint)."""
    import time

    from loopmind.index.dupes import fingerprint
    from loopmind.library.analysis.features import Spectrogram

    y = np.load(path)
    t0 = time.perf_counter()
    spec = Spectrogram(y, 22050)
    spec.mel
    t1 = time.perf_counter()
    fp = fingerprint(y, sr=22050, spec=spec)
    t2 = time.perf_counter()
    return fp, len(y) / 22050, t1 - t0, t2 - t1


def _embed_one(path: str) -> np.ndarray:
    from loopmind.index.embed import get_embedder

    return get_embedder("features").embed(np.load(path), sr=22050)


def _mfcc_one(path: str) -> np.ndarray:
    import warnings

    import librosa

    y = np.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_fft longer than a 20 ms click
        m = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20)
    return m[1:].mean(axis=1)  # c0 is the level: leave it out so gain does not count


_FPS: list[bytes] = []


def _init_scores(fps: list[bytes]) -> None:
    global _FPS
    _FPS = fps


def _score_chunk(pairs: np.ndarray) -> np.ndarray:
    from loopmind.index.dupes import contour_similarity, parse

    cache: dict[int, object] = {}

    def c(i):
        got = cache.get(i)
        if got is None:
            got = cache[i] = parse(_FPS[i])
        return got

    return np.array([contour_similarity(c(i), c(j)) for i, j in pairs], dtype=np.float32)


def window_pairs(durations: np.ndarray) -> np.ndarray:
    """Every pair whose durations are within a trim of each other (all others score 0)."""
    from loopmind.index.dupes import max_trim_s

    order = np.argsort(durations, kind="stable")
    ds = durations[order]
    out = []
    for pos in range(len(order)):
        hi = np.searchsorted(ds, ds[pos] + max_trim_s(1e9) + 0.011, side="right")
        for q in range(pos + 1, hi):
            a, b = int(order[pos]), int(order[q])
            out.append((min(a, b), max(a, b)))
    return np.array(sorted(out), dtype=np.int64).reshape(-1, 2)


# -- metrics -------------------------------------------------------------------------------------

class Items:
    """Every decoded signal: originals and copies, with what they are."""

    def __init__(self, rows: list[dict], info: dict[int, dict], work: Path):
        import hashlib

        self.orig_idx: list[int] = []   # original index per item
        self.kind: list[str] = []       # "orig" or a copy kind per item
        self.paths: list[str] = []      # the decoded .npy
        for i in sorted(info):
            for kind in ("orig",) + KINDS:
                f = work / "decoded" / f"{i:04d}.{kind}.npy"
                if f.exists():
                    self.orig_idx.append(i)
                    self.kind.append(kind)
                    self.paths.append(str(f))
        self.orig_idx_a = np.array(self.orig_idx)
        self.kind_a = np.array(self.kind)
        # originals with byte-identical audio are one sound (the dev set holds a few)
        digest = {i: hashlib.blake2b(open(rows[i]["abspath"], "rb").read(),
                                     digest_size=16).hexdigest() for i in info}
        first: dict[str, int] = {}
        self.sound = {i: first.setdefault(digest[i], i) for i in sorted(info)}
        self.sound_a = np.array([self.sound[i] for i in self.orig_idx])
        self.rows = rows
        self.gain_sign = {i: ("+" if any(p.endswith("gain+.wav") for p in
                                         info[i]["paths"].values()) else "-") for i in info}

    def __len__(self) -> int:
        return len(self.kind)

    def true_pair(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.sound_a[a] == self.sound_a[b]


def pair_metrics(items: Items, pairs: np.ndarray, scores: np.ndarray, thr: float,
                 subset: set[int]) -> dict:
    """Pair-level figures on the originals in ``subset`` and their copies.

    recall[kind]: fraction of (original, its copy) pairs scoring >= thr; reported: pairs
    >= thr among items of the subset; false: those not from one sound; fpr: among pairs of
    two originals that are different sounds, the fraction >= thr (pairs outside the duration
    window score 0 and are counted in the denominator).
    """
    a, b = pairs[:, 0], pairs[:, 1]
    in_sub = np.isin(items.orig_idx_a[a], list(subset)) & np.isin(items.orig_idx_a[b],
                                                                  list(subset))
    hit = scores >= thr
    out: dict = {"recall": {}}
    score_of = {(int(x), int(y)): float(s) for x, y, s in zip(a, b, scores)}
    item_of = {(o, k): n for n, (o, k) in enumerate(zip(items.orig_idx, items.kind))}
    for kind in KINDS:
        found = total = 0
        for o in subset:
            if (o, kind) not in item_of:
                continue
            x, y = sorted((item_of[(o, "orig")], item_of[(o, kind)]))
            total += 1
            found += score_of.get((x, y), 0.0) >= thr
        out["recall"][kind] = (found, total)
    rep = hit & in_sub
    truth = items.true_pair(a, b)
    out["reported"] = int(rep.sum())
    out["false"] = int((rep & ~truth).sum())
    origs = sorted(subset)
    n_sounds = len(origs)
    n_orig_pairs = n_sounds * (n_sounds - 1) // 2
    same_sound_orig_pairs = sum(
        1 for x in range(len(origs)) for y in range(x + 1, len(origs))
        if items.sound[origs[x]] == items.sound[origs[y]])
    both_orig = (items.kind_a[a] == "orig") & (items.kind_a[b] == "orig")
    out["fp_orig"] = int((hit & in_sub & both_orig & ~truth).sum())
    out["orig_pairs"] = n_orig_pairs - same_sound_orig_pairs
    out["false_pairs_list"] = [(int(x), int(y)) for x, y in pairs[rep & ~truth]]
    return out


def group_metrics(items: Items, groups: list[list[int]], subset: set[int]) -> dict:
    """The same figures from groups: a pair is reported when both are in one group."""
    member = {}
    for g_id, g in enumerate(groups):
        for n in g:
            member[n] = g_id
    out: dict = {"recall": {}}
    item_of = {(o, k): n for n, (o, k) in enumerate(zip(items.orig_idx, items.kind))}
    for kind in KINDS:
        found = total = 0
        for o in subset:
            if (o, kind) not in item_of:
                continue
            x, y = item_of[(o, "orig")], item_of[(o, kind)]
            total += 1
            found += x in member and member.get(x) == member.get(y)
        out["recall"][kind] = (found, total)
    reported = false = fp_orig = 0
    false_list = []
    for g in groups:
        g = [n for n in g if items.orig_idx[n] in subset]
        for x in range(len(g)):
            for y in range(x + 1, len(g)):
                a, b = g[x], g[y]
                reported += 1
                if items.sound_a[a] != items.sound_a[b]:
                    false += 1
                    false_list.append((min(a, b), max(a, b)))
                    fp_orig += items.kind[a] == "orig" and items.kind[b] == "orig"
    out.update(reported=reported, false=false, fp_orig=fp_orig, false_pairs_list=false_list)
    return out


def choose_threshold(items: Items, pairs: np.ndarray, scores: np.ndarray,
                     subset: set[int], *, target: float = 0.97) -> float:
    """The highest threshold at which at least ``target`` of all (original, copy) pairs of
    ``subset`` (the four kinds pooled) score at or above it."""
    score_of = {(int(x), int(y)): float(s) for (x, y), s in zip(pairs, scores)}
    item_of = {(o, k): n for n, (o, k) in enumerate(zip(items.orig_idx, items.kind))}
    copy_scores = []
    for o in subset:
        for kind in KINDS:
            if (o, kind) in item_of:
                x, y = sorted((item_of[(o, "orig")], item_of[(o, kind)]))
                copy_scores.append(score_of.get((x, y), 0.0))
    s = np.sort(np.array(copy_scores))
    return float(s[int(np.floor((1.0 - target) * len(s)))])


def waveform_residual_db(path_a: str, path_b: str, max_lag_s: float = 0.2) -> float:
    """How far two files are from being one recording: the residual energy (dB, relative to
    the second) after the best lag (±max_lag_s) and least-squares gain, over their overlap."""
    import soundfile as sf
    from scipy.signal import fftconvolve

    ya, sra = sf.read(path_a, dtype="float64", always_2d=True)
    yb, srb = sf.read(path_b, dtype="float64", always_2d=True)
    if sra != srb:
        return float("nan")
    x, y = ya.mean(axis=1), yb.mean(axis=1)
    c = fftconvolve(y, x[::-1])
    mid = len(x) - 1
    m = int(max_lag_s * sra)
    lo, hi = max(0, mid - m), min(len(c), mid + m + 1)
    lag = lo + int(np.argmax(np.abs(c[lo:hi]))) - mid
    xs, ys = (x, y[lag:]) if lag >= 0 else (x[-lag:], y)
    n = min(len(xs), len(ys))
    xs, ys = xs[:n], ys[:n]
    g = float(np.dot(xs, ys) / max(np.dot(xs, xs), 1e-30))
    r = ys - g * xs
    return float(10 * np.log10(max(np.sum(r ** 2), 1e-30) / max(np.sum(ys ** 2), 1e-30)))


def _instrument(row: dict) -> str | None:
    """"kit/instrument" of a Hydrogen layer, else None."""
    src = row["source"]
    if "(instrument '" not in src:
        return None
    kit = src.split()[1].split("/")[0]
    return kit + "/" + src.split("(instrument '", 1)[1].split("'", 1)[0]


def classify_false(items: Items, false_pairs: list[tuple[int, int]],
                   residual_cache: dict) -> dict[str, int]:
    """How many false pairs are the same recording at another gain or offset (waveform
    residual below -30 dB: closer than an MP3 copy), other layers of one Hydrogen instrument,
    or other sounds."""
    out = {"same recording (residual < -30 dB)": 0, "layers of one instrument": 0,
           "other": 0}
    for a, b in false_pairs:
        oa, ob = sorted((items.orig_idx[a], items.orig_idx[b]))
        if (oa, ob) not in residual_cache:
            residual_cache[(oa, ob)] = waveform_residual_db(items.rows[oa]["abspath"],
                                                            items.rows[ob]["abspath"])
        ia, ib = _instrument(items.rows[oa]), _instrument(items.rows[ob])
        if residual_cache[(oa, ob)] < -30:
            out["same recording (residual < -30 dB)"] += 1
        elif ia is not None and ia == ib:
            out["layers of one instrument"] += 1
        else:
            out["other"] += 1
    return out


def knn_pairs(vectors: np.ndarray, k: int) -> set[tuple[int, int]]:
    """Each vector's k nearest by cosine (what ``vector_search`` gives the CLI)."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out: set[tuple[int, int]] = set()
    for s in range(0, len(v), 512):
        sim = v[s:s + 512] @ v.T
        for r in range(sim.shape[0]):
            sim[r, s + r] = -np.inf
        nn = np.argpartition(-sim, k, axis=1)[:, :k]
        for r in range(nn.shape[0]):
            for j in nn[r]:
                i = s + r
                out.add((min(i, int(j)), max(i, int(j))))
    return out


def _fmt_recall(m: dict) -> list[str]:
    cells = []
    for kind in KINDS:
        f, t = m["recall"][kind]
        cells.append(f"{f / t:.3f}" if t else "-")
    f = sum(x for x, _ in m["recall"].values())
    t = sum(x for _, x in m["recall"].values())
    cells.append(f"**{f / t:.3f}**")
    return cells


def _ratio(m: dict, kind: str) -> str:
    f, t = m["recall"][kind]
    return f"{f / t:.3f}" if t else "-"


def _fmt_false(m: dict) -> str:
    return (f"{m['false'] / m['reported']:.1%} ({m['false']}/{m['reported']})"
            if m["reported"] else "-")


def main(argv: list[str] | None = None) -> None:
    import time
    from concurrent.futures import ProcessPoolExecutor

    from loopmind.index import dupes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for the copies and decoded signals (reused when present)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    t_start = time.time()
    work = args.work or Path(tempfile.mkdtemp(prefix="loopmind-dupes-"))
    rows = originals()
    info = prepare(rows, work, args.workers)
    if args.prepare_only:
        print(f"{len(info)} originals prepared in {work}")
        return
    items = Items(rows, info, work)
    n_items = len(items)
    print(f"{len(info)} originals, {n_items} items", flush=True)
    mp3_kbps = [os.path.getsize(info[i]["paths"]["mp3"]) * 8 / 1000 /
                max(1e-9, _native_duration(info[i]["paths"]["orig"])) for i in info]

    with ProcessPoolExecutor(args.workers) as pool:
        fp_res = list(pool.map(_fingerprint_one, items.paths, chunksize=8))
        mfcc = np.array(list(pool.map(_mfcc_one, items.paths, chunksize=8)))
        t = time.time()
        emb = np.array(list(pool.map(_embed_one, items.paths, chunksize=8)))
        embed_s = time.time() - t
    fps = [r[0] for r in fp_res]
    audio_s = sum(r[1] for r in fp_res)
    mel_s = sum(r[2] for r in fp_res)
    fp_s = sum(r[3] for r in fp_res)
    sizes = np.array([len(f) for f in fps])
    orig_s = sum(r[1] for r, k in zip(fp_res, items.kind) if k == "orig")
    contours = [dupes.parse(f) for f in fps]
    durations = np.array([c.duration_s for c in contours])

    # the verifier on every pair that can match (all others score 0 by construction)
    pairs = window_pairs(durations)
    print(f"scoring {len(pairs)} pairs ...", flush=True)
    chunks = np.array_split(pairs, max(1, len(pairs) // 4000))
    t = time.time()
    with ProcessPoolExecutor(args.workers, initializer=_init_scores,
                             initargs=(fps,)) as pool:
        scores = np.concatenate(list(pool.map(_score_chunk, chunks)))
    score_us = (time.time() - t) * args.workers / max(1, len(pairs)) * 1e6

    # the peer: cosine of MFCC means, over every pair (no duration window of its own)
    v = mfcc / np.maximum(np.linalg.norm(mfcc, axis=1, keepdims=True), 1e-12)
    keep_floor = 0.9
    pp, ps = [], []
    for s0 in range(0, n_items, 512):
        sim = v[s0:s0 + 512] @ v.T
        r, c = np.nonzero(sim >= keep_floor)
        m = (s0 + r) < c
        pp.append(np.stack([s0 + r[m], c[m]], axis=1))
        ps.append(sim[r[m], c[m]])
    peer_pairs = np.concatenate(pp)
    peer_scores = np.concatenate(ps).astype(np.float32)
    # the peer with our duration window, for fairness
    win = set(map(tuple, pairs.tolist()))
    in_win = np.array([tuple(p) in win for p in peer_pairs.tolist()])
    peer_w_pairs, peer_w_scores = peer_pairs[in_win], peer_scores[in_win]

    calib = {i for i in info if i % 2 == 0}
    test = {i for i in info if i % 2 == 1}
    every = set(info)
    thr_exact = choose_threshold(items, pairs, scores, calib)
    thr = float(np.floor(thr_exact / 0.05) * 0.05)
    peer_thr = choose_threshold(items, peer_pairs, peer_scores, calib)
    peer_w_thr = choose_threshold(items, peer_w_pairs, peer_w_scores, calib)
    assert peer_thr >= keep_floor and peer_w_thr >= keep_floor, (peer_thr, peer_w_thr)

    # end to end: candidates -> verify -> union-find, as find_duplicates does
    t = time.time()
    cand_fb = dupes.candidate_pairs(contours, k=10)
    cand_s = time.time() - t
    t = time.time()
    groups_fb, _ = dupes.near_groups(contours, cand_fb, threshold=thr)
    verify_s = time.time() - t
    cand_fb20 = dupes.candidate_pairs(contours, k=20)
    groups_fb20, _ = dupes.near_groups(contours, cand_fb20, threshold=thr)
    cand_emb = knn_pairs(emb, 10)
    groups_emb, _ = dupes.near_groups(contours, cand_emb, threshold=thr)
    cand_emb20 = knn_pairs(emb, 20)
    groups_emb20, _ = dupes.near_groups(contours, cand_emb20, threshold=thr)
    # what find_duplicates does when given the vector index: both candidate sources
    cand_union = cand_fb | cand_emb
    t = time.time()
    groups_union, _ = dupes.near_groups(contours, cand_union, threshold=thr)
    verify_union_s = time.time() - t

    def cand_recall(cands: set, subset: set[int]) -> str:
        item_of = {(o, k): n for n, (o, k) in enumerate(zip(items.orig_idx, items.kind))}
        f = t_ = 0
        for o in subset:
            for kind in KINDS:
                if (o, kind) in item_of:
                    x, y = sorted((item_of[(o, "orig")], item_of[(o, kind)]))
                    t_ += 1
                    f += (x, y) in cands
        return f"{f / t_:.3f}"

    res = {}
    for name, subset in (("test", test), ("all", every)):
        res[name] = {
            "ours": pair_metrics(items, pairs, scores, thr, subset),
            "ours_fb": group_metrics(items, groups_fb, subset),
            "ours_fb20": group_metrics(items, groups_fb20, subset),
            "ours_emb": group_metrics(items, groups_emb, subset),
            "ours_emb20": group_metrics(items, groups_emb20, subset),
            "ours_union": group_metrics(items, groups_union, subset),
            "peer": pair_metrics(items, peer_pairs, peer_scores, peer_thr, subset),
            "peer_w": pair_metrics(items, peer_w_pairs, peer_w_scores, peer_w_thr, subset),
        }
    residuals: dict = {}
    breakdown = {k: classify_false(items, res["all"][k]["false_pairs_list"], residuals)
                 for k in ("ours", "ours_union", "peer")}
    # what the trim rule allows: originals shorter than 0.125 s lose > 40 % to a 50 ms trim
    short = {i for i in info if _native_duration(rows[i]["abspath"]) < TRIM_S / 0.4}
    trim_long = pair_metrics(items, pairs, scores, thr, every - short)["recall"]["trim"]
    trim_long_fd = group_metrics(items, groups_union, test - short)["recall"]["trim"]

    L: list[str] = []
    L.append("# Duplicates benchmark (`loopmind dupes`)\n")
    L.append(f"Machine and date: {machine()}. Script: `benchmarks/bench_dupes.py` "
             f"(wall time {time.time() - t_start:.0f} s with copies already made; making and "
             "decoding them takes about 3 min more).\n")
    n_plus = sum(1 for i in info if items.gain_sign[i] == "+")
    L.append(
        f"Originals: the dev set's one-shots and loops (`role` and `bpm` rows of "
        f"../shared/eval/labels.csv), {len(info)} files, {orig_s / 60:.0f} min; "
        f"{len(info) - len(set(items.sound.values()))} of them are byte-identical to another "
        f"and count as one sound. Four copies of each: **mp3** (libsndfile/LAME CBR, measured "
        f"{np.median(mp3_kbps):.0f} kbit/s median incl. headers), **gain** ({n_plus} at +6 dB, "
        f"{len(info) - n_plus} at -6 dB because +6 dB would clip), **trim** (first 50 ms cut; "
        f"{len(info) - sum(1 for i in info if (i, 'trim') in set(zip(items.orig_idx, items.kind)))}"
        f" originals shorter than 50 ms have none), **resample** (to 48 kHz, or 44.1 kHz for "
        f"the 48 kHz originals). {n_items} items in all, each decoded with "
        "`loopmind.library.audio.decode` and fingerprinted whole as one segment.\n")
    L.append(
        "A pair is a **true copy** when both items come from the same original (or from "
        "byte-identical originals). **Recall** per kind: the fraction of (original, copy) pairs "
        "reported. **False pairs**: of all reported pairs among originals and copies, the "
        "fraction that are not true copies (a false match between two originals counts 25 "
        "times, once per version pair). **FPR**: among pairs of two different originals, the "
        "fraction reported.\n")
    L.append(
        f"**Threshold**, chosen on the calibration half (originals with an even index and their "
        f"copies) and then fixed: the highest similarity at which 97 % of its (original, copy) "
        f"pairs are found (2 points of margin over the 95 % target) is {thr_exact:.3f}; "
        f"rounded down to **{thr:.2f}**, which `DEFAULT_THRESHOLD` in "
        f"`loopmind/index/dupes.py` must equal (it is {dupes.DEFAULT_THRESHOLD:.2f}"
        f"{'' if abs(dupes.DEFAULT_THRESHOLD - thr) < 1e-9 else ': UPDATE IT'}). "
        f"The peer's thresholds are chosen by the same rule on the same half and not rounded "
        f"(cosine {peer_thr:.4f}; {peer_w_thr:.4f} with our duration window). The fingerprint's design "
        "constants were developed while looking at this dev set (there is no other real-audio "
        "set), so these figures are not free of selection.\n")

    hdr = ("| method | mp3 | gain | trim | resample | all kinds | false pairs | "
           "FPR (original pairs) |\n|---|---|---|---|---|---|---|---|")
    methods = [
        (f"**ours**: verifier on every pair (similarity ≥ {thr:.2f})", "ours"),
        ("**ours, `find_duplicates` with the vector index** (as the CLI): embedding "
         "10-NN ∪ `candidate_pairs` k=10 → verify → union-find groups", "ours_union"),
        ("ours, `find_duplicates` without a vector index: `candidate_pairs` k=10 → verify → "
         "groups", "ours_fb"),
        ("the same with k=20", "ours_fb20"),
        ("ours with only the embedding's 10 nearest as candidates → verify → groups",
         "ours_emb"),
        ("the same with k=20", "ours_emb20"),
        (f"peer: MFCC-mean cosine ≥ {peer_thr:.4f}", "peer"),
        (f"peer with our duration window, cosine ≥ {peer_w_thr:.4f}", "peer_w"),
    ]

    def table(recall_of: str) -> None:
        L.append(hdr)
        for label, key in methods:
            m_all = res["all"][key]
            fpr = f"{m_all['fp_orig'] / res['all']['ours']['orig_pairs']:.1e} ({m_all['fp_orig']})"
            L.append(f"| {label} | " + " | ".join(_fmt_recall(res[recall_of][key])) +
                     f" | {_fmt_false(m_all)} | {fpr} |")
        L.append("")

    u_test, u_all = res["test"]["ours_union"], res["all"]["ours_union"]
    rec = sum(f for f, _ in u_test["recall"].values()) / sum(t for _, t in u_test["recall"].values())
    same_rec = breakdown["ours_union"]["same recording (residual < -30 dB)"]
    L.append("## Summary\n")
    L.append(
        f"- `find_duplicates` as the CLI runs it finds **{rec:.1%}** of the held-out copies "
        f"(target 95 %): mp3 {_ratio(u_test, 'mp3')}, gain {_ratio(u_test, 'gain')}, trim "
        f"{_ratio(u_test, 'trim')}, resample {_ratio(u_test, 'resample')}. Trim is the weak "
        f"kind: {trim_long_fd[0] / max(1, trim_long_fd[1]):.3f} on held-out originals of at "
        "least 0.125 s; a 50 ms trim of a shorter sound is by design not a copy.")
    L.append(
        f"- **False pairs {u_all['false'] / max(1, u_all['reported']):.1%}** of those reported "
        f"(target 1 %): not met as the dev set is labelled. {same_rec} of the "
        f"{u_all['false']} false pairs join files that are one recording at another gain "
        "(waveform residual below -30 dB, GMRockKit velocity layers made by scaling one "
        f"sample); counting those as the gain-changed copies they are leaves "
        f"{(u_all['false'] - same_rec) / max(1, u_all['reported']):.1%}.")
    L.append(
        f"- The peer (MFCC-mean cosine, threshold chosen the same way) reaches similar recall "
        f"but {res['all']['peer']['false'] / max(1, res['all']['peer']['reported']):.0%} "
        "of what it reports is false.\n")
    L.append("## Results\n")
    L.append("Recall on the **held-out half**; false pairs and FPR over the **whole set** (the "
             "threshold rule looked only at the calibration half's copies, never at a pair of "
             "different sounds, and a split by halves would drop the pairs that straddle "
             "them).\n")
    table("test")
    L.append("Recall on the whole set (calibration half included), for reference:\n")
    table("all")
    L.append(f"Trim recall on originals of at least 0.125 s (a 50 ms trim of a shorter sound "
             f"removes more than `MAX_TRIM_FRACTION` = 40 %, which by design is not a copy): "
             f"{trim_long[0] / trim_long[1]:.3f} ({trim_long[0]}/{trim_long[1]}); "
             f"{len(short)} originals are shorter.\n")
    L.append("Targets (issue 3): recall ≥ 0.95 and false pairs ≤ 1 %.\n")

    L.append("## What the false pairs are (whole set)\n")
    L.append("Each false pair's two originals were compared as waveforms (best lag within "
             "±0.2 s, least-squares gain, residual energy over the overlap). Below −30 dB they "
             "are the same recording at another gain or offset, closer than an MP3 copy is to "
             "its original: a Hydrogen kit that made its velocity layers by scaling one "
             "sample. No level-independent detector can tell those apart, yet the headline "
             "counts them as false, as the dev set labels them as different files.\n")
    L.append("| method | false pairs | same recording (residual < −30 dB) | other layers of "
             "one Hydrogen instrument | other |\n|---|---|---|---|---|")
    for k, label in (("ours", "ours (verifier)"), ("ours_union", "ours, `find_duplicates`"),
                     ("peer", "peer (MFCC cosine)")):
        b = breakdown[k]
        L.append(f"| {label} | {res['all'][k]['false']} | "
                 f"{b['same recording (residual < -30 dB)']} | "
                 f"{b['layers of one instrument']} | {b['other']} |")
    L.append("")
    excl = {k: res["all"][k]["false"] - breakdown[k]["same recording (residual < -30 dB)"]
            for k in breakdown}
    L.append("Counting same-recording pairs as duplicates instead (they are, by the issue's "
             "definition of a gain-changed copy): false pairs " + "; ".join(
                 f"{label} {excl[k] / max(1, res['all'][k]['reported']):.1%}"
                 for k, label in (("ours", "ours"), ("ours_union", "ours `find_duplicates`"),
                                  ("peer", "peer"))) + ".\n")
    worst = sorted({(items.orig_idx[a], items.orig_idx[b]) for a, b in
                    res["all"]["ours"]["false_pairs_list"]})
    if worst:
        L.append("Originals falsely paired by ours (whole set), with their waveform "
                 "residual:\n")
        for oa, ob in worst[:30]:
            src = lambda o: rows[o]["source"].split(" (instrument")[0]  # noqa: E731
            L.append(f"- {src(oa)} ~ {src(ob)}: {residuals.get((oa, ob), float('nan')):.1f} dB")
        if len(worst) > 30:
            L.append(f"- ... {len(worst) - 30} more")
        L.append("")

    L.append("## Candidates\n")
    L.append("| candidate stage | pairs | (original, copy) pairs among them (whole set) |\n"
             "|---|---|---|")
    L.append(f"| every pair within a trim's duration (the verifier rows) | {len(pairs)} | "
             f"{cand_recall(set(map(tuple, pairs.tolist())), every)} |")
    L.append(f"| `candidate_pairs`, k=10 (no vector index) | {len(cand_fb)} | "
             f"{cand_recall(cand_fb, every)} |")
    L.append(f"| `candidate_pairs`, k=20 | {len(cand_fb20)} | "
             f"{cand_recall(cand_fb20, every)} |")
    L.append(f"| embedding kNN, k=10 (`features` embedder) | {len(cand_emb)} | "
             f"{cand_recall(cand_emb, every)} |")
    L.append(f"| embedding kNN, k=20 | {len(cand_emb20)} | "
             f"{cand_recall(cand_emb20, every)} |")
    L.append(f"| embedding 10-NN ∪ `candidate_pairs` k=10 (`find_duplicates` with an index) | "
             f"{len(cand_union)} | {cand_recall(cand_union, every)} |")
    L.append("")
    L.append("Union-find recovers some pairs the candidates miss (A~B and B~C join A and C).\n")

    L.append("## Cost\n")
    L.append(f"- fingerprint: {fp_s / audio_s * 1000:.3f} ms per second of audio on top of the "
             f"shared mel spectrogram (which took {mel_s / audio_s * 1000:.2f} ms per second here "
             "and is computed for the analyzers anyway)")
    L.append(f"- size: median {np.median(sizes):.0f} B, 90th percentile "
             f"{np.percentile(sizes, 90):.0f} B, max {sizes.max()} B")
    L.append(f"- similarity: {score_us:.0f} µs per pair that passes the duration check "
             "(one core)")
    L.append(f"- end to end without a vector index on these {n_items} items: candidates "
             f"{cand_s:.1f} s, verification of {len(cand_fb)} pairs {verify_s:.1f} s (one core); "
             f"with the embedding's neighbours too, {len(cand_union)} pairs "
             f"{verify_union_s:.1f} s")
    L.append(f"- (the `features` embedding for the kNN row: {embed_s / n_items * 1000:.0f} ms "
             f"per item on {args.workers} workers)")
    L.append("")
    write_result(args.out, "\n".join(L) + "\n")


def _native_duration(path: str) -> float:
    import soundfile as sf

    return float(sf.info(path).duration)


if __name__ == "__main__":
    main()

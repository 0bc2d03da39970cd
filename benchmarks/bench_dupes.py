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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for the copies and decoded signals (reused when present)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--prepare-only", action="store_true")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="loopmind-dupes-"))
    rows = originals()
    info = prepare(rows, work, args.workers)
    if args.prepare_only:
        print(f"{len(info)} originals prepared in {work}")
        return


if __name__ == "__main__":
    main()

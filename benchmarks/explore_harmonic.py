"""Find by sound, exploration 3: harmonic-structure features for pitched one-shots.

Not a benchmark of shipped code, and nothing here is shipped. The weakest roles of
``bench_similar.py`` are the tonal ones (bass, keys, pad, strings, guitar, fx: precision@10
0.10-0.41), and the ``features`` embedder has no descriptor of a pitched sound's harmonic
structure, which is what tells instrument families apart across pitches. This measures
whether such descriptors help, on the metric of ``bench_similar.py`` (precision@10 of
same-role neighbours, cosine, the dev set's 527 one-shots), against the shipped timbre block
alone (nothing learned from labels, so no folds are needed).

Descriptors (fixed before the run, from the instrument-recognition literature: Peeters et al.
2011, "The Timbre Toolbox"), measured on the sound's first 0.8 s after its onset, in 4096-point
frames: f0 from the harmonic sum of the mean spectrum (40-1500 Hz), the first 12 harmonics'
levels at the spectral peak within 3 % of k f0, then tristimulus (3), odd/even harmonic
energy (log), harmonic slope (dB per octave of k), spectral irregularity, inharmonicity
(mean relative deviation of the peak frequencies from k f0), harmonic share of the energy
below 5 kHz, the decay of the upper harmonics (k >= 4) relative to the lower ones (k <= 2)
between the first 0.2 s and the rest, f0 stability (std of frame f0 in cents / 100), and a
pitched flag (harmonic share above 0.3). Unpitched sounds get zeros. The block is
standardized over the one-shots themselves (no labels involved), divided by the square root
of its length like the timbre block, and weighted by ``w`` against the timbre block.

    python benchmarks/explore_harmonic.py
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_similar as bs  # noqa: E402
from benchmarks.common import labels, machine, write_result  # noqa: E402

SR = 22050
N_FFT = 4096
HOP = 1024
N_HARM = 12
NAMES = ["t1", "t2", "t3", "odd_even", "slope", "irregularity", "inharmonicity",
         "harmonic_share", "upper_decay", "f0_stability", "pitched"]


def harmonic_features(y: np.ndarray, sr: int = SR) -> np.ndarray:
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    out = np.zeros(len(NAMES), dtype=np.float64)
    if peak < 1e-6:
        return out
    start = int(np.flatnonzero(np.abs(y) > peak * 10 ** (-40 / 20))[0])
    x = y[start:start + int(0.8 * sr)].astype(np.float64)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    win = np.hanning(N_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]
    mag = np.abs(np.fft.rfft(frames * win, axis=1))
    freqs = np.fft.rfftfreq(N_FFT, 1 / sr)
    mean = mag.mean(axis=0)
    power = mean ** 2
    # f0: harmonic sum of the mean log-spectrum over candidates 40-1500 Hz (1/8 semitone grid)
    cands = 40.0 * 2 ** (np.arange(0, np.log2(1500 / 40) * 96) / 96)
    logm = np.log(mean + 1e-9 * mean.max())
    df = freqs[1]

    def level(f):
        i = np.clip(np.round(f / df).astype(int), 0, len(mean) - 1)
        return logm[i]

    score = np.zeros(len(cands))
    for k in range(1, 7):
        score += level(cands * k) / k ** 0.5
    f0 = float(cands[int(np.argmax(score))])
    h_amp, h_freq = [], []
    for k in range(1, N_HARM + 1):
        fk = k * f0
        if fk > 0.45 * sr:
            break
        lo, hi = int(np.floor(fk * 0.97 / df)), int(np.ceil(fk * 1.03 / df)) + 1
        j = lo + int(np.argmax(mean[lo:hi]))
        h_amp.append(mean[j])
        h_freq.append(freqs[j])
    h = np.asarray(h_amp)
    if len(h) < 3:
        return out
    e = h ** 2
    total = e.sum()
    below = power[freqs < 5000].sum()
    share = min(1.0, total * 3 / max(below, 1e-30))  # a peak bin holds about 1/3 of a partial
    t1 = e[0] / total
    t2 = e[1:4].sum() / total
    t3 = e[4:].sum() / total
    odd = e[0::2].sum()
    even = e[1::2].sum()
    kk = np.arange(1, len(h) + 1)
    hdb = 20 * np.log10(h / h.max() + 1e-6)
    slope = float(np.polyfit(np.log2(kk), hdb, 1)[0])
    irr = float(np.mean(np.abs(hdb[1:-1] - (hdb[:-2] + hdb[1:-1] + hdb[2:]) / 3)))
    inh = float(np.mean(np.abs(np.asarray(h_freq) / (kk * f0) - 1)))
    # decay of upper vs lower harmonics: early frames (first 0.2 s) vs later frames
    n_early = max(1, int(0.2 * sr / HOP))
    bins = [int(round(k * f0 / df)) for k in kk]
    hm = mag[:, bins] ** 2
    low, up = hm[:, :2].sum(axis=1), hm[:, 3:].sum(axis=1)
    if len(mag) > n_early + 1:
        ratio_early = np.log10((up[:n_early].mean() + 1e-12) / (low[:n_early].mean() + 1e-12))
        ratio_late = np.log10((up[n_early:].mean() + 1e-12) / (low[n_early:].mean() + 1e-12))
        upper_decay = float(ratio_late - ratio_early)
    else:
        upper_decay = 0.0
    # frame f0 stability: the frame's strongest peak near f0, in cents
    lo, hi = int(f0 * 0.9 / df), int(f0 * 1.1 / df) + 2
    fpk = freqs[lo + np.argmax(mag[:, lo:hi], axis=1)]
    stab = float(np.std(1200 * np.log2(np.maximum(fpk, 1) / f0))) / 100
    pitched = float(share > 0.3)
    out[:] = [t1, t2, t3, np.log10((odd + 1e-12) / (even + 1e-12)), slope / 10, irr / 10,
              inh * 10, share, upper_decay, stab, pitched]
    return out


def main() -> int:
    from loopmind.index.embed import FeatureEmbedder
    from loopmind.library.audio import decode

    t0 = time.time()
    rows = [r for r in labels("role") if r["kind"] == "oneshot"]
    emb = FeatureEmbedder(role_model=None)
    FR, FE, H, roles = [], [], [], []
    for r in rows:
        y = decode(r["abspath"], sr=SR).y
        fr, fe = emb.features(y, sr=SR)
        FR.append(fr)
        FE.append(fe)
        H.append(harmonic_features(y))
        roles.append(r["truth"])
    FR, FE, H = np.array(FR), np.array(FE), np.array(H)
    truth = np.array(roles)
    V_tim = emb.from_features(FR, FE)
    z = (H - H.mean(axis=0)) / np.maximum(H.std(axis=0), 1e-9)
    z = np.clip(z, -5, 5) / np.sqrt(H.shape[1])
    results = {}
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        V = bs.unit(np.concatenate([V_tim, w * z], axis=1))
        results[w] = bs.hits(bs.neighbours(V), truth)
    tonal = ["bass", "keys", "pad", "lead", "strings", "guitar", "vocal", "fx"]
    lines = ["# Find by sound, exploration 3: harmonic-structure features", "",
             f"Machine and date: {machine()}. Script: `benchmarks/explore_harmonic.py` "
             f"({time.time() - t0:.0f} s). {len(rows)} one-shots of the dev set; "
             "precision@10 of same-role neighbours (cosine), timbre block alone (no labels "
             "anywhere) plus the harmonic block at weight w. Nothing here is shipped.", "",
             "| w | all | drums | tonal + fx | " + " | ".join(tonal) + " |",
             "|---|---|---|---|" + "---|" * len(tonal)]
    is_tonal = np.isin(truth, tonal)
    for w, h in results.items():
        per = [f"{h[truth == r].mean():.2f}" if (truth == r).any() else "-" for r in tonal]
        lines.append(f"| {w:g} | {h.mean():.3f} | {h[~is_tonal].mean():.3f} | "
                     f"{h[is_tonal].mean():.3f} | " + " | ".join(per) + " |")
    pitched = H[:, NAMES.index("pitched")] > 0
    by_role = defaultdict(list)
    for r, p in zip(truth, pitched):
        by_role[r].append(p)
    lines += ["", "Share called pitched (harmonic share > 0.3) per role: "
              + ", ".join(f"{r} {np.mean(v):.2f}" for r, v in sorted(by_role.items())) + "."]
    text = "\n".join(lines) + "\n"
    write_result(str(Path(__file__).parent / "results" / "similar_explore3.md"), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

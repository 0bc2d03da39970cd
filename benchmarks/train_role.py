"""Train the audio role model (models/role.safetensors) and write its card (models/role.md).

Data:
  * the ``role`` rows of the dev set (../shared/eval/labels.csv, audio in ../eval-data; build it
    with ../shared/eval/build.sh): 556 one-shots and loops from LMMS, Sonic Pi and 7 Hydrogen
    kits;
  * one-shots rendered with fluidsynth from General MIDI soundfonts: FluidR3_GM, which the
    dev-set build unpacks (``eval-data/.pkgs/fluid-soundfont-gm``), and four more Debian
    packages a fresh machine fetches with ``apt-get download PKG`` and unpacks with
    ``dpkg-deb -x PKG_*.deb eval-data/.pkgs-extra/PKG``: timgm6mb-soundfont,
    musescore-general-soundfont-small, csound-soundfont, opl3-soundfont (``--no-extra`` skips
    them). Notes and chords of GM programs mapped to roles (pianos/organs = keys, basses =
    bass, ...) and every GM drum-kit note of each font's kits. They add sources for the tonal
    roles, which the dev set has only a handful of. (avldrums.lv2-soundfont is not used: its
    Black Pearl kit is the recording in hydrogen-drumkits, which may be held-out material);
  * 3 augmented copies of every dev file (pitch shift ±2 semitones by resampling, trimmed tail,
    leading silence, low-pass, noise, gain);
  * about 100 synthetic loops sequenced from those one-shots (drum loops from a random kit in
    a backbeat, bass/keys/guitar/lead/pad/strings phrases), since the dev set has only 29
    loops and a loop must not look like "a snare" to the model;
  * phrase loops of the tonal roles (``render_phrases``: chord progressions, comping and
    strumming, arpeggios, four voice-led parts, bass under chords, melodies, riffs, bass
    lines) rendered from MIDI by the four extra soundfonts, not by FluidR3_GM (which renders
    the chorale excerpts of ``bench_role_loops.py``); ``--no-phrases`` leaves them out. A
    loop sequenced from one note is sparse and short, and a polyphonic piano phrase looked to
    the model like no keys loop it knew (it called the chorales' piano "guitar").

Model: features from ``loopmind.library.analysis.role.role_features``, standardized; mean of
the softmax outputs of a multinomial logistic regression and 3 one-hidden-layer ReLU MLPs
(64 units, different seeds) (``--cnn`` also averages in a small CNN on the log-mel patch of
``role_mel_patch``, ``fit_cnn``: tried, not shipped, see benchmarks/results/role.md), then a
calibration temperature
fitted on the out-of-fold probabilities of a leave-one-pack-out CV (always run; ``--no-calibrate`` skips it). Training is weighted so that every role weighs the same and the
velocity layers of one Hydrogen instrument count as one sample.

    cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/train_role.py

sklearn and torch are used here only; inference in loopmind is numpy (``RoleModel``).
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import EVAL_DATA, labels, machine  # noqa: E402
from loopmind.library.analysis import role as role_mod  # noqa: E402
from loopmind.library.analysis.role import FEATURE_NAMES, ROLES, RoleModel  # noqa: E402
from loopmind.library.audio import decode  # noqa: E402

AUDIO_DIR = EVAL_DATA
FLUID_SF2 = Path(".pkgs/fluid-soundfont-gm/usr/share/sounds/sf2/FluidR3_GM.sf2")
# further General MIDI soundfonts from Debian packages, fetched with
#   apt-get download PKG && dpkg-deb -x PKG_*.deb $EVAL_DATA/.pkgs-extra/PKG
# (independent of the dev set's packs; see models/role.md). avldrums.lv2-soundfont is NOT
# used: its Black Pearl kit is the same recording as hydrogen-drumkits' "The Black Pearl".
EXTRA_DIR = Path(".pkgs-extra")
EXTRA_SOUNDFONTS = {
    "timgm6mb-soundfont": "usr/share/sounds/sf2/TimGM6mb.sf2",
    "musescore-general-soundfont-small": "usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    "csound-soundfont": "usr/share/sounds/sf2/sf_GMbank.sf2",
    "opl3-soundfont": "usr/share/sounds/sf2/OPL-3_FM_128M.sf2",
}
SR = 22050
N_AUG = 3
SEED = 440


@dataclass
class Item:
    """One labelled sound.

    Attributes:
        truth: role label.
        kind: "oneshot" or "loop".
        source: original name (labels.csv ``source``).
        pack: LMMS, Sonic Pi, a Hydrogen kit, or "synth:<soundfont>" (the CV groups).
        instrument: pack + instrument (Hydrogen velocity layers share one).
        y: mono float32 at ``SR``.
    """

    truth: str
    kind: str
    source: str
    pack: str
    instrument: str
    y: np.ndarray
    path: str = ""


def pack_of(source: str) -> str:
    """The kit or pack a dev-set item comes from (the cross-validation group)."""
    if source.startswith("lmms"):
        return "lmms"
    if source.startswith("sonic-pi"):
        return "sonicpi"
    m = re.match(r'"?hydrogen-\S+ ([^/]+)/', source)
    return m.group(1) if m else source


def instrument_of(source: str) -> str:
    m = re.search(r"\(instrument '(.*)'\)", source)
    return pack_of(source) + ":" + (m.group(1) if m else source)


def load_dev_set() -> list[Item]:
    """Decode every ``role`` row of labels.csv with LoopMind's decoder at 22,050 Hz.

    Paths come from ``benchmarks.common`` (``LOOPMIND_EVAL_LABELS``, ``LOOPMIND_EVAL_DATA``).
    """
    items = []
    for r in labels("role"):
        y = decode(r["abspath"], sr=SR).y
        items.append(Item(truth=r["truth"], kind=r["kind"], source=r["source"],
                          pack=pack_of(r["source"]), instrument=instrument_of(r["source"]),
                          y=y, path=r["path"]))
    return items


# -- synthetic one-shots from a GM soundfont ----------------------------------------------

_GM_TONAL = {
    "keys": list(range(0, 8)) + [16, 17, 18, 19],
    "guitar": list(range(24, 32)),
    "bass": list(range(32, 40)),
    "strings": [40, 41, 42, 43, 44, 45, 48, 49, 50, 51],
    "vocal": [52, 53, 54],
    "lead": [56, 57, 59, 60, 64, 65, 66, 68, 71, 72, 73, 75, 80, 81, 82, 83, 84, 85, 86, 87],
    "pad": list(range(88, 96)),
    "fx": [96, 101, 102, 103, 119, 120, 121, 122, 123, 124, 125, 126, 127],
}
_GM_RANGE = {"keys": (36, 84), "guitar": (40, 76), "bass": (28, 52), "strings": (40, 84),
             "vocal": (48, 76), "lead": (55, 88), "pad": (40, 76), "fx": (40, 80)}
_GM_DRUMS = {"kick": [35, 36], "snare": [38, 40], "clap": [39], "hihat": [42, 44, 46],
             "cymbal": [49, 51, 52, 53, 55, 57, 59], "tom": [41, 43, 45, 47, 48, 50],
             "perc": [54, 56, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 73, 74, 75, 76, 77,
                      80, 81]}
_GM_KITS = [0, 8, 16, 24, 25, 32, 40, 48]  # Standard, Room, Power, Electronic, TR-808, Jazz, ...


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def _write_midi(path: Path, events: list[tuple[float, bytes]]) -> None:
    """Format-0 MIDI at 120 BPM, 480 ticks per beat (960 ticks per second)."""
    trk, last = b"", 0
    for t, msg in sorted(events, key=lambda e: e[0]):
        tick = int(round(t * 960))
        trk += _vlq(tick - last) + msg
        last = tick
    trk += _vlq(0) + b"\xff\x2f\x00"
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk"
                     + struct.pack(">I", len(trk)) + trk)


def drum_kits(sf2: Path) -> list[int]:
    """The GM drum-kit programs (of ``_GM_KITS``) that a soundfont has in bank 128.

    Reads the preset headers (``phdr`` records of 38 bytes) of the RIFF file (sf2 or sf3).
    """
    data = Path(sf2).read_bytes()
    i = data.find(b"phdr")
    n = struct.unpack("<I", data[i + 4: i + 8])[0] // 38 - 1  # the last record is a sentinel
    kits = set()
    for k in range(n):
        prog, bank = struct.unpack("<HH", data[i + 8 + 38 * k + 20: i + 8 + 38 * k + 24])
        if bank == 128:
            kits.add(prog)
    return [k for k in _GM_KITS if k in kits] or [0]


def synthetic_sources(extra: bool) -> list[Path]:
    """FluidR3_GM, plus the extra Debian soundfonts when ``extra`` (all must be present)."""
    paths = [AUDIO_DIR / FLUID_SF2]
    if extra:
        for pkg, rel in EXTRA_SOUNDFONTS.items():
            path = AUDIO_DIR / EXTRA_DIR / pkg / rel
            if not path.exists():
                raise SystemExit(f"{path} missing: apt-get download {pkg} and dpkg-deb -x it "
                                 f"into {AUDIO_DIR / EXTRA_DIR / pkg} (or pass --no-extra)")
            paths.append(path)
    return paths


def render_all(paths: list[Path], *, phrases: bool = True) -> list[Item]:
    """Synthetic one-shots of every soundfont in ``paths`` (a different seed for each), and
    with ``phrases`` the phrase loops (``render_phrases``) of every one but FluidR3_GM.

    FluidR3_GM renders the dev set's chorale excerpts (``bench_role_loops.py``), so no phrase
    loop comes from it: that check of loops stays independent of the phrases.
    """
    items: list[Item] = []
    for k, path in enumerate(paths):
        items += render_synthetic(path, seed=SEED + k)
        if phrases and Path(path).name != FLUID_SF2.name:
            items += render_phrases(path, seed=SEED + 100 + k)
    return items


def _fluidsynth(sf2: Path, events: list[tuple[float, bytes]], *, gain: float,
                float_samples: bool = False) -> np.ndarray:
    """MIDI ``events`` rendered by the fluidsynth command line with ``sf2`` at ``SR``, mono
    float32."""
    import soundfile as sf

    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed (apt-get install fluidsynth)")
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "render.mid", Path(tmp) / "render.wav"
        _write_midi(mid, events)
        cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain)]
        if float_samples:
            cmd += ["-O", "float"]
        subprocess.run(cmd + ["-r", str(SR), "-F", str(wav), str(sf2), str(mid)], check=True,
                       capture_output=True)
        a, sr = sf.read(str(wav), dtype="float32")
    assert sr == SR
    return a.mean(axis=1) if a.ndim == 2 else a


def render_synthetic(sf2: Path, *, seed: int = SEED) -> list[Item]:
    """Render labelled one-shots from a GM soundfont with the fluidsynth command line."""
    rng = np.random.default_rng(seed)
    plan = []
    for r, progs in _GM_TONAL.items():
        for prog in progs:
            for _ in range(2 if r in ("lead", "fx") else 3):
                lo, hi = _GM_RANGE[r]
                n = int(rng.integers(lo, hi))
                chord = r in ("keys", "pad", "strings", "guitar") and rng.random() < 0.4
                notes = [n, n + int(rng.choice([3, 4])), n + 7] if chord else [n]
                short = r in ("bass", "guitar", "keys") and rng.random() < 0.5
                dur = float(rng.uniform(0.15, 0.6) if short else rng.uniform(0.6, 3.0))
                plan.append((r, 0, prog, notes, int(rng.integers(60, 127)), dur, 2.5))
    for kit in drum_kits(sf2):
        for r, notes in _GM_DRUMS.items():
            for n in notes:
                plan.append((r, 9, kit, [n], int(rng.integers(50, 127)), 0.2, 3.0))
    events, slots, t = [], [], 0.5
    for r, ch, prog, notes, vel, dur, tail in plan:
        reverb = int(rng.choice([0, 0, 30, 80]))  # some dry, some wet
        events += [(t - 0.3, bytes([0xC0 | ch, prog])), (t - 0.3, bytes([0xB0 | ch, 91, reverb])),
                   (t - 0.3, bytes([0xB0 | ch, 93, 0]))]
        for n in notes:
            events += [(t, bytes([0x90 | ch, n, vel])), (t + dur, bytes([0x80 | ch, n, 0]))]
        slots.append((t, t + dur + tail))
        t += dur + tail + 0.5
    items = []
    a = _fluidsynth(sf2, events, gain=0.6)
    for (r, ch, prog, notes, *_), (t0, t1) in zip(plan, slots):
        y = a[int(t0 * SR): int(t1 * SR)]
        peak = float(np.abs(y).max()) if len(y) else 0.0
        if peak < 1e-4:
            continue
        last = int(np.flatnonzero(np.abs(y) > peak * 1e-3)[-1])  # trim the -60 dB tail
        src = f"synth {sf2.stem} {'kit' if ch == 9 else 'program'} {prog} notes {notes}"
        items.append(Item(truth=r, kind="oneshot", source=src, pack=f"synth:{sf2.stem}",
                          instrument=src, y=np.ascontiguousarray(y[: last + 1])))
    return items


# -- synthetic phrases: multi-note loops of the tonal roles, rendered from a soundfont ------

# Phrases per soundfont and role. A producer's keys, guitar or strings loop is a phrase (a
# chord progression, an arpeggio, voices moving together, a melody), not one note repeated as
# in ``synth_loops``; and every role gets several of the textures, so that the texture alone
# does not give the role away and the model has to hear the instrument.
_PHRASE_RECIPES = {"keys": 24, "guitar": 14, "strings": 14, "pad": 10, "lead": 12, "bass": 14}
_PHRASE_TEXTURES = {
    "keys": ("block", "comp", "arpeggio", "voices", "split", "melody"),
    "guitar": ("strum", "comp", "arpeggio", "riff", "melody"),
    "strings": ("block", "voices", "comp", "arpeggio", "melody"),
    "pad": ("block", "voices", "arpeggio"),
    "lead": ("melody", "riff", "arpeggio"),
    "bass": ("bassline", "riff"),
}
_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10))  # major, natural minor
_PHRASE_GAP_S = 3.0  # silence after each phrase, so that its release does not reach the next


@dataclass
class _Note:
    t_s: float
    dur_s: float
    note: int
    vel: int


def _degree_pitch(tonic: int, scale, degree: int) -> int:
    return tonic + 12 * (degree // 7) + scale[degree % 7]


def _chord_tones(rng: np.random.Generator, lo: int, hi: int, pcs: set[int], n: int,
                 center: float) -> list[int]:
    """The ``n`` notes of pitch classes ``pcs`` nearest ``center`` within [lo, hi], ascending."""
    cands = [p for p in range(lo, hi + 1) if p % 12 in pcs]
    return sorted(sorted(cands, key=lambda p: abs(p - center) + rng.uniform(0, 0.5))[:n])


def _phrase_notes(texture: str, *, rng: np.random.Generator, beat_s: float, n_beats: int,
                  lo: int, hi: int) -> list[_Note]:
    """Notes of one phrase of ``texture`` in a random key and progression, in [lo, hi].

    Textures: "block" (held chords), "comp" and "strum" (chords struck on a rhythm, strummed
    with the strings staggered), "arpeggio", "voices" (four voice-led parts, a chord each beat
    or half beat), "split" (a left-hand bass under right-hand chords), "melody", "riff" (a
    repeated one- or two-beat figure) and "bassline". Times in seconds from the phrase start.
    """
    scale = _SCALES[int(rng.integers(2))]
    tonic = int(rng.integers(lo, lo + 12))
    if texture == "voices":
        chord_beats = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
    elif texture in ("melody", "riff"):
        chord_beats = float(rng.choice([2.0, 4.0]))
    else:
        chord_beats = float(rng.choice([1.0, 2.0, 4.0, 4.0]))
    n_chords = int(np.ceil(n_beats / chord_beats))
    degrees = [0] + [int(rng.choice(7, p=[.16, .1, .1, .18, .2, .16, .1]))
                     for _ in range(n_chords - 1)]
    seventh = rng.random() < 0.3
    chords = [{_degree_pitch(tonic, scale, d + s) % 12 for s in ((0, 2, 4, 6) if seventh
                                                                else (0, 2, 4))}
              for d in degrees]
    roots = [_degree_pitch(tonic, scale, d) % 12 for d in degrees]
    base_vel = float(rng.uniform(40, 120))
    center = float(rng.uniform(lo + 7, hi - 7))
    chord_s = chord_beats * beat_s
    end_s = n_beats * beat_s
    notes: list[_Note] = []

    def add(t, dur, note, accent=0.0):
        if t < end_s and lo - 12 <= note <= hi + 12:
            vel = int(np.clip(base_vel + accent + rng.normal(0, 7), 1, 127))
            notes.append(_Note(float(t), float(min(dur, end_s + 0.5 - t)), int(note), vel))

    def rhythm(step_s, t0, t1, p_hit):
        t, out = t0, []
        while t < t1 - 1e-6:
            if t == t0 or rng.random() < p_hit:
                out.append(t)
            t += step_s
        return out

    step_s = beat_s * float(rng.choice([0.25, 0.5, 0.5, 1.0]))
    legato = float(rng.uniform(0.4, 1.0))
    p_hit = float(rng.uniform(0.4, 0.95))
    n_tones = int(rng.integers(3, 6))
    prev_upper: list[int] = []
    if texture == "riff":  # a figure of chord-tone offsets repeated over the chords
        figure = [(int(rng.choice([0, 0, 7, 12, 3, 4, 5, 10])), rng.random() < p_hit)
                  for _ in range(int(round(float(rng.choice([1, 2])) * beat_s / step_s)))]
    for c, (pcs, root) in enumerate(zip(chords, roots)):
        t0 = c * chord_s
        t1 = min(t0 + chord_s, end_s)
        if texture == "block":
            for n in _chord_tones(rng, lo, hi, pcs, n_tones, center):
                add(t0 + rng.uniform(0, 0.01), (t1 - t0) * rng.uniform(0.85, 1.0), n, 8)
        elif texture in ("comp", "strum", "split"):
            tones = _chord_tones(rng, lo, hi, pcs, 6 if texture == "strum" else n_tones,
                                 center + (8 if texture == "split" else 0))
            for k, t in enumerate(rhythm(step_s, t0, t1, p_hit)):
                order = tones if texture != "strum" or k % 2 == 0 else tones[::-1]
                spread = rng.uniform(0.006, 0.02) if texture == "strum" else 0.004
                for j, n in enumerate(order):
                    add(t + j * spread, step_s * legato * rng.uniform(1, 2), n,
                        10 if abs(t - t0) < 1e-6 else 0)
            if texture == "split":  # the left hand: the root, an octave below the chords
                bass = _chord_tones(rng, lo, lo + 14, {root}, 1, lo)[0]
                for t in rhythm(beat_s * float(rng.choice([1.0, 2.0])), t0, t1, 0.6):
                    add(t, beat_s * rng.uniform(0.8, 2.0), bass, 5)
        elif texture == "arpeggio":
            tones = _chord_tones(rng, lo, hi, pcs, n_tones, center)
            order = tones + tones[-2:0:-1] if rng.random() < 0.5 else tones
            for k, t in enumerate(rhythm(step_s, t0, t1, 1.0)):
                add(t, step_s * rng.uniform(1.0, 3.0), order[k % len(order)],
                    8 if k == 0 else 0)
        elif texture == "voices":
            bass = _chord_tones(rng, lo, lo + 19, {root}, 1, lo + 6)[0]
            cands = [p for p in range(lo + 10, hi + 1) if p % 12 in pcs]
            if not prev_upper:
                prev_upper = _chord_tones(rng, lo + 10, hi, pcs, 3, center)
            upper: list[int] = []
            for v in prev_upper:  # every voice to its nearest free chord tone
                upper.append(min((p for p in cands if p not in upper),
                                 key=lambda p: abs(p - v), default=v))
            prev_upper = upper
            for n in [bass] + upper:
                add(t0, (t1 - t0) * rng.uniform(0.9, 1.0), n, 5 if c % 2 == 0 else 0)
        elif texture in ("melody", "riff", "bassline"):
            if texture == "melody":
                degree = int(rng.integers(0, 7)) + 7 * int((center - tonic) // 12)
                for t in rhythm(step_s, t0, t1, p_hit):
                    degree += int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
                    n = _degree_pitch(tonic, scale, degree)
                    while n > hi:
                        degree -= 7
                        n = _degree_pitch(tonic, scale, degree)
                    while n < lo:
                        degree += 7
                        n = _degree_pitch(tonic, scale, degree)
                    add(t, step_s * legato * float(rng.choice([1, 1, 2])), n)
            elif texture == "riff":
                r0 = _chord_tones(rng, lo, hi - 12, {root}, 1, center - 6)[0]
                t, k = t0, 0
                while t < t1 - 1e-6:
                    off, hit = figure[k % len(figure)]
                    if hit or k == 0:
                        add(t, step_s * legato, r0 + off, 8 if k == 0 else 0)
                    t, k = t + step_s, k + 1
            else:
                r0 = _chord_tones(rng, lo, lo + 14, {root}, 1, lo + 5)[0]
                for k, t in enumerate(rhythm(step_s if step_s >= beat_s / 2 else beat_s / 2,
                                             t0, t1, p_hit)):
                    off = 0 if k == 0 else int(rng.choice([0, 0, 0, 7, 12, -5, 2, -1]))
                    add(t, beat_s * 0.5 * legato * float(rng.choice([1, 2])), r0 + off,
                        8 if k == 0 else 0)
    return notes


def render_phrases(sf2: Path, *, seed: int = SEED) -> list[Item]:
    """Render labelled phrase loops (``_PHRASE_RECIPES``) of GM programs from a soundfont.

    Each phrase: one program of the role (``_GM_TONAL``), a texture of ``_PHRASE_TEXTURES``,
    70-170 BPM, 1, 2 or 4 bars of 4/4, velocities around a random level, a random register
    within the role's range (``_GM_RANGE``), some reverb, the sustain pedal in some keys
    phrases. Cut bar-exact (sometimes with the release tail) and scaled to a random peak
    level; ``kind`` is "loop".
    """
    rng = np.random.default_rng(seed)
    events, plan, t = [], [], 1.0
    for r, n_phrases in _PHRASE_RECIPES.items():
        lo, hi = _GM_RANGE[r]
        for _ in range(n_phrases):
            prog = int(rng.choice(_GM_TONAL[r]))
            texture = str(rng.choice(_PHRASE_TEXTURES[r]))
            bpm = float(rng.uniform(70, 170))
            bars = int(rng.choice([1, 2, 4], p=[0.3, 0.4, 0.3]))
            beat_s = 60.0 / bpm
            notes = _phrase_notes(texture, rng=rng, beat_s=beat_s, n_beats=4 * bars,
                                  lo=lo, hi=hi)
            if not notes:
                continue
            length_s = 4 * bars * beat_s
            events += [(t - 0.5, bytes([0xC0, prog])),
                       (t - 0.5, bytes([0xB0, 91, int(rng.choice([0, 20, 40, 80]))])),
                       (t - 0.5, bytes([0xB0, 93, 0]))]
            if r == "keys" and rng.random() < 0.4:
                events += [(t, bytes([0xB0, 64, 127])), (t + length_s, bytes([0xB0, 64, 0]))]
            for nt in notes:
                events += [(t + nt.t_s, bytes([0x90, nt.note, nt.vel])),
                           (t + nt.t_s + nt.dur_s, bytes([0x80, nt.note, 0]))]
            events.append((t + length_s + _PHRASE_GAP_S - 0.6, bytes([0xB0, 123, 0])))
            plan.append((r, prog, texture, bpm, bars, t, length_s))
            t += length_s + _PHRASE_GAP_S
    items = []
    # chords of several notes: a lower gain than the one-shots', and float samples, so that
    # nothing clips
    a = _fluidsynth(sf2, events, gain=0.4, float_samples=True)
    for r, prog, texture, bpm, bars, t0, length_s in plan:
        tail_s = float(rng.uniform(0.2, 2.0)) if rng.random() < 0.3 else 0.0
        y = a[int(t0 * SR): int((t0 + length_s + tail_s) * SR)].astype(np.float64)
        peak = float(np.abs(y).max()) if len(y) else 0.0
        if peak < 1e-4:
            continue
        if tail_s:
            last = int(np.flatnonzero(np.abs(y) > peak * 1e-3)[-1])
            y = y[: max(last + 1, int(length_s * SR))]
        y *= 10 ** (rng.uniform(-20, -1) / 20) / peak
        src = (f"synth {sf2.stem} program {prog} {texture} phrase, {bars} bar(s) at "
               f"{bpm:.0f} BPM")
        items.append(Item(truth=r, kind="loop", source=src, pack=f"synth:{sf2.stem}",
                          instrument=src, y=np.ascontiguousarray(y, dtype=np.float32)))
    return items


# -- augmentation and features -------------------------------------------------------------

def augment(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible variant of a sample: pitch ±2 st, trimmed, delayed, filtered, noisy, gain."""
    from scipy.signal import butter, resample_poly, sosfilt

    y = y.astype(np.float64)
    ratio = Fraction(2 ** (rng.uniform(-2, 2) / 12)).limit_denominator(40)
    y = resample_poly(y, ratio.denominator, ratio.numerator)
    if rng.random() < 0.5:
        keep = max(16, int(len(y) * rng.uniform(0.4, 1.0)))
        fade = min(keep, int(0.01 * SR))
        y = y[:keep].copy()
        y[keep - fade:] *= np.linspace(1, 0, fade)
    y = np.r_[np.zeros(int(rng.uniform(0, 0.03) * SR)), y]
    if rng.random() < 0.25:
        y = sosfilt(butter(6, float(rng.choice([5000, 7000, 9000])), fs=SR, output="sos"), y)
    peak = float(np.max(np.abs(y))) + 1e-12
    if rng.random() < 0.5:
        y = y + rng.standard_normal(len(y)) * peak * 10 ** (rng.uniform(-75, -45) / 20)
    y *= 10 ** (rng.uniform(-30, 0) / 20) / peak
    return y.astype(np.float32)


def features(items: list[Item]) -> np.ndarray:
    return np.array([role_mod.role_features(it.y, sr=SR) for it in items], dtype=np.float32)


def augmented_signals(items: list[Item], *, n_aug: int = N_AUG,
                      seed: int = SEED) -> list[list[np.ndarray]]:
    """``n_aug`` augmented copies of every item's signal (the same for any caller)."""
    rng = np.random.default_rng(seed)
    return [[augment(it.y, rng) for _ in range(n_aug)] for it in items]


def augmented_features(items: list[Item], *, n_aug: int = N_AUG, seed: int = SEED,
                       signals: list[list[np.ndarray]] | None = None) -> np.ndarray:
    """Features of ``n_aug`` augmented copies per item, shape (len(items), n_aug, F)."""
    if signals is None:
        signals = augmented_signals(items, n_aug=n_aug, seed=seed)
    out = np.zeros((len(items), n_aug, len(FEATURE_NAMES)), dtype=np.float32)
    for i, row in enumerate(signals):
        for k, y in enumerate(row):
            out[i, k] = role_mod.role_features(y, sr=SR)
    return out


def mel_patches(signals) -> np.ndarray:
    """``role_mel_patch`` of every signal, shape (n, 64, MEL_PATCH_FRAMES)."""
    return np.array([role_mod.role_mel_patch(y, sr=SR) for y in signals], dtype=np.float32) \
        .reshape(-1, 64, role_mod.MEL_PATCH_FRAMES)


@dataclass
class MelInputs:
    """Mel patches parallel to the feature arrays: dev (N, ...), augmented (N, n_aug, ...),
    synthetic one-shots (S, ...)."""

    dev: np.ndarray
    aug: np.ndarray
    synth: np.ndarray


def mel_inputs(items: list[Item], aug_signals, synth: list[Item]) -> MelInputs:
    aug = np.array([mel_patches(row) for row in aug_signals], dtype=np.float32)
    return MelInputs(dev=mel_patches([it.y for it in items]), aug=aug,
                     synth=mel_patches([s.y for s in synth]))


# -- training ------------------------------------------------------------------------------

def balanced_weights(labels: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Scale ``base`` so that every role has the same total weight (mean weight 1)."""
    tot = collections.defaultdict(float)
    for lab, w in zip(labels, base):
        tot[lab] += w
    w = np.array([b / tot[lab] for lab, b in zip(labels, base)])
    return w / w.mean()


def training_arrays(items: list[Item], X: np.ndarray, XA: np.ndarray | None,
                    idx: np.ndarray, extra_X: np.ndarray | None = None,
                    extra_y: np.ndarray | None = None):
    """Stack dev rows ``idx`` (+ their augmentations) and extra rows (synthetic), with weights.

    A dev file weighs 1 / (velocity layers of its instrument) per copy; an extra row weighs 1;
    then every role is scaled to the same total weight.
    """
    layers = collections.Counter(it.instrument for it in items)
    w_dev = np.array([1.0 / layers[items[i].instrument] for i in idx])
    y_dev = np.array([items[i].truth for i in idx])
    Xs, ys, ws = [X[idx]], [y_dev], [w_dev]
    if XA is not None:
        for k in range(XA.shape[1]):
            Xs.append(XA[idx, k]); ys.append(y_dev); ws.append(w_dev)  # noqa: E702
    if extra_X is not None and len(extra_X):
        Xs.append(extra_X); ys.append(np.asarray(extra_y)); ws.append(np.ones(len(extra_X)))
    y = np.concatenate(ys)
    return np.concatenate(Xs), y, balanced_weights(y, np.concatenate(ws))


# -- synthetic loops: sequences of training one-shots --------------------------------------

_LOOP_RECIPES = {"drumloop": 40, "bass": 30, "keys": 8, "guitar": 8, "lead": 8, "pad": 6,
                 "strings": 6}


def _place(out: np.ndarray, hit: np.ndarray, at: int, length: int | None, gain: float) -> None:
    if at >= len(out):
        return
    h = hit[: length] if length else hit
    h = h[: len(out) - at].astype(np.float64) * gain
    if length and len(h) > 64:
        h[-64:] *= np.linspace(1.0, 0.0, 64)  # no click where a note is cut
    out[at: at + len(h)] += h


def _pitch(y: np.ndarray, semitones: float) -> np.ndarray:
    from scipy.signal import resample_poly

    r = Fraction(2 ** (semitones / 12)).limit_denominator(40)
    return resample_poly(y.astype(np.float64), r.denominator, r.numerator)


def synth_loops(pool: dict[str, list[np.ndarray]], *, seed: int = SEED) -> tuple[list, list]:
    """Loops made by sequencing one-shots from ``pool`` (role -> signals) on a 16th grid.

    Drum loops: a kit (one kick, snare, hihat and optional perc/clap/tom) in a randomised
    backbeat; tonal loops: one instrument's notes, pitch-shifted by resampling, 1-2 bars at
    80-170 BPM. Returns (signals, roles).
    """
    rng = np.random.default_rng(seed)
    ys, roles = [], []

    def pick(r):
        lst = pool.get(r) or []
        return lst[int(rng.integers(len(lst)))] if lst else None

    for r, n in _LOOP_RECIPES.items():
        if r != "drumloop" and not pool.get(r):
            continue
        for _ in range(n):
            bpm = float(rng.uniform(80, 170))
            step = int(SR * 60 / bpm / 4)
            bars = int(rng.choice([1, 2]))
            out = np.zeros(step * 16 * bars + SR // 4)
            if r == "drumloop":
                kit = {k: pick(k) for k in ("kick", "snare", "hihat", "perc", "clap", "tom")}
                if kit["kick"] is None or kit["snare"] is None or kit["hihat"] is None:
                    continue
                hat_every = int(rng.choice([1, 2, 2, 4]))
                for s in range(16 * bars):
                    b = s % 16
                    if b in (0, 8) or (rng.random() < 0.15 and b % 2 == 0):
                        _place(out, kit["kick"], s * step, None, rng.uniform(0.7, 1))
                    if b in (4, 12) or rng.random() < 0.05:
                        _place(out, kit["snare"] if kit["clap"] is None or rng.random() < .7
                               else kit["clap"], s * step, None, rng.uniform(0.6, 1))
                    if s % hat_every == 0 and rng.random() < 0.9:
                        _place(out, kit["hihat"], s * step, None, rng.uniform(0.3, 0.8))
                    for extra in ("perc", "tom"):
                        if kit[extra] is not None and rng.random() < 0.08:
                            _place(out, kit[extra], s * step, None, rng.uniform(0.4, 0.9))
            else:
                src = pick(r)
                density = {"pad": 0.08, "strings": 0.12}.get(r, float(rng.uniform(0.25, 0.6)))
                for s in range(16 * bars):
                    if s == 0 or rng.random() < density:
                        n_steps = int(rng.integers(1, 5)) if r not in ("pad", "strings") else 8
                        note = _pitch(src, float(rng.integers(-5, 8)))
                        _place(out, note, s * step, n_steps * step, rng.uniform(0.6, 1))
            out = out[: step * 16 * bars]  # a loop is bar-exact
            peak = float(np.abs(out).max())
            if peak > 0:
                ys.append((out / peak * 0.9).astype(np.float32))
                roles.append(r)
    return ys, roles


def pool_of(items: list[Item], idx) -> dict[str, list[np.ndarray]]:
    """One-shot signals per role from ``items[idx]`` (what synthetic loops are built from)."""
    pool: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    for i in idx:
        if items[i].kind == "oneshot":
            pool[items[i].truth].append(items[i].y)
    return pool


def extra_rows(items: list[Item], idx, synth: list[Item], XS: np.ndarray | None,
               *, loops: bool = True, seed: int = SEED, synth_mel: np.ndarray | None = None):
    """Synthetic one-shots plus loops sequenced from ``items[idx]`` and the synthetic hits.

    Returns (features, roles), or (features, roles, mel patches) when ``synth_mel`` (the
    synthetic one-shots' patches) is given.
    """
    Xs = [XS] if XS is not None and len(synth) else []
    ys = [np.array([s.truth for s in synth])] if Xs else []
    Ms = [synth_mel] if Xs and synth_mel is not None else []
    if loops:
        pool = pool_of(items, idx)
        for s in synth:
            if s.kind == "oneshot":
                pool[s.truth].append(s.y)
        ly, lr = synth_loops(pool, seed=seed)
        if ly:
            Xs.append(np.array([role_mod.role_features(y, sr=SR) for y in ly], np.float32))
            ys.append(np.array(lr))
            if synth_mel is not None:
                Ms.append(mel_patches(ly))
    if not Xs:
        EX, Ey = np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0, dtype=object)
        EM = np.zeros((0, 64, role_mod.MEL_PATCH_FRAMES), np.float32)
    else:
        EX, Ey = np.concatenate(Xs), np.concatenate(ys)
        EM = np.concatenate(Ms) if Ms else None
    return (EX, Ey) if synth_mel is None else (EX, Ey, EM)


def training_mel(mel: MelInputs, idx: np.ndarray, extra_M: np.ndarray | None) -> np.ndarray:
    """Mel patches in the row order of ``training_arrays`` (dev, augmented copies, extra)."""
    Ms = [mel.dev[idx]] + [mel.aug[idx, k] for k in range(mel.aug.shape[1])]
    if extra_M is not None and len(extra_M):
        Ms.append(extra_M)
    return np.concatenate(Ms)


def fit_role_model(X: np.ndarray, y: np.ndarray, w: np.ndarray, *,
                   mlp_seeds=(0, 1, 2), mel: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Fit the LR + MLP ensemble (and the CNN head on ``mel``, rows parallel to ``X``, if
    given); returns the tensors ``RoleModel`` reads."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    Z = np.clip((X - mean) / scale, -6, 6)
    R = len(ROLES)
    tensors = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}

    def full_rows(classes, W, b):
        # roles absent from this training set get a hopeless bias instead of a missing column
        Wf = np.zeros((R, W.shape[1]), np.float32)
        bf = np.full(R, -30.0, np.float32)
        for j, c in enumerate(classes):
            Wf[ROLES.index(c)] = W[j]
            bf[ROLES.index(c)] = b[j]
        return Wf, bf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(C=0.1, max_iter=3000).fit(Z, y, sample_weight=w)
        tensors["lr.weight"], tensors["lr.bias"] = full_rows(lr.classes_, lr.coef_,
                                                             lr.intercept_)
        for i, seed in enumerate(mlp_seeds):
            m = MLPClassifier((64,), alpha=1.0, max_iter=1000, random_state=seed)
            m.fit(Z, y, sample_weight=w)
            W2, b2 = full_rows(m.classes_, m.coefs_[1].T, m.intercepts_[1])
            tensors[f"mlp{i}.w1"] = m.coefs_[0].astype(np.float32)
            tensors[f"mlp{i}.b1"] = m.intercepts_[0].astype(np.float32)
            tensors[f"mlp{i}.w2"] = np.ascontiguousarray(W2.T)
            tensors[f"mlp{i}.b2"] = b2
    if mel is not None:
        tensors.update(fit_cnn(mel, y, w))
    return tensors


CNN_CHANNELS = (8, 16, 32, 64)
CNN_EPOCHS = 12
CNN_SHARE = 0.3  # weight of the convolutional head in the mean with the feature heads


def fit_cnn(M: np.ndarray, y: np.ndarray, w: np.ndarray, *, seed: int = 0,
            epochs: int = CNN_EPOCHS) -> dict[str, np.ndarray]:
    """Train the small convolutional head on mel patches; returns ``RoleModel``'s cnn tensors.

    Four 3x3 convolutions (``CNN_CHANNELS``) with BatchNorm and ReLU on the 2x2-pooled patch,
    2x2 max pools between them, mean and max over the last map, dropout 0.3 and a linear layer.
    AdamW with a one-cycle schedule, class-balanced weights ``w``, label smoothing 0.05, and
    per batch a random shift of ±2 mel bands and a small level change. BatchNorm is folded
    into the convolutions for the numpy inference. torch is imported here only.

    Args:
        M: patches, shape (n, 64, MEL_PATCH_FRAMES), values in [0, 1].
        y: roles, shape (n,).
        w: sample weights, shape (n,).
    """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ch = (1,) + tuple(CNN_CHANNELS)
    convs = nn.ModuleList([nn.Sequential(nn.Conv2d(ch[i], ch[i + 1], 3, padding=1),
                                         nn.BatchNorm2d(ch[i + 1]), nn.ReLU())
                           for i in range(len(ch) - 1)])
    fc = nn.Linear(2 * ch[-1], len(ROLES))
    drop = nn.Dropout(0.3)

    def forward(m):
        h = F.avg_pool2d(m[:, None], 2)
        for i, c in enumerate(convs):
            h = c(h)
            if i < len(convs) - 1:
                h = F.max_pool2d(h, 2)
        return fc(drop(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)))

    params = list(convs.parameters()) + list(fc.parameters())
    yi = torch.tensor([ROLES.index(v) for v in y])
    Mt = torch.tensor(np.asarray(M, np.float32))
    wt = torch.tensor(np.asarray(w, np.float32))
    n, bs = len(yi), 64
    steps = max(1, epochs * (n // bs))
    opt = torch.optim.AdamW(params, 2e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    convs.train(), drop.train()
    for _ in range(epochs):
        perm = rng.permutation(n)
        for b in range(n // bs):
            ix = torch.as_tensor(perm[b * bs:(b + 1) * bs])
            xb = Mt[ix]
            shift = int(rng.integers(-2, 3))
            if shift:
                xb = torch.roll(xb, shift, 1)
            xb = torch.clamp(xb + float(rng.uniform(-0.1, 0.1)) * (xb > 0), 0, 1)
            loss = (F.cross_entropy(forward(xb), yi[ix], reduction="none", label_smoothing=0.05)
                    * wt[ix]).sum() / wt[ix].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for i, c in enumerate(convs):
            conv, bn = c[0], c[1]
            g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            out[f"cnn.conv{i}.weight"] = (conv.weight * g[:, None, None, None]).numpy()
            out[f"cnn.conv{i}.bias"] = ((conv.bias - bn.running_mean) * g + bn.bias).numpy()
        out["cnn.fc.weight"] = fc.weight.numpy().copy()
        out["cnn.fc.bias"] = fc.bias.numpy().copy()
    out["cnn.share"] = np.array([CNN_SHARE], np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def fit_temperature(proba: np.ndarray, truth, *, weights: np.ndarray | None = None) -> float:
    """Temperature T minimizing the log loss of ``softmax(log(proba) / T)`` against ``truth``.

    Fitted on out-of-fold (leave-one-pack-out) probabilities, so T > 1 undoes the model's
    over-confidence on packs it has not seen.
    """
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(np.asarray(proba, np.float64), 1e-12, 1.0))
    idx = np.array([ROLES.index(t) for t in truth])
    w = np.ones(len(idx)) if weights is None else np.asarray(weights, np.float64)

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float(np.sum(w * (lse - z[np.arange(len(idx)), idx])) / w.sum())

    res = minimize_scalar(nll, bounds=(np.log(0.25), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def grouped_cv(items: list[Item], X: np.ndarray, XA: np.ndarray | None,
               synth: list[Item], XS: np.ndarray | None, *, loops: bool = True,
               return_proba: bool = False, mel: MelInputs | None = None,
               return_models: bool = False):
    """Leave-one-pack-out predictions (role strings) for every dev item.

    The held-out pack (LMMS, Sonic Pi, or one Hydrogen kit) never shares a kit, pack or
    instrument with the training side; synthetic items are always on the training side.
    With ``mel`` the fold models get the CNN head too (``mel.synth`` parallel to ``synth``).
    ``return_proba`` adds the raw (temperature 1) probabilities; ``return_models`` the fold
    models, keyed by held-out pack.
    """
    packs = np.array([it.pack for it in items])
    pred = np.empty(len(items), dtype=object)
    proba = np.zeros((len(items), len(ROLES)))
    models = {}
    for p in sorted(set(packs)):
        te = np.flatnonzero(packs == p)
        tr = np.flatnonzero(packs != p)
        if mel is None:
            EX, Ey = extra_rows(items, tr, synth, XS, loops=loops)
            Xtr, ytr, wtr = training_arrays(items, X, XA, tr, EX, Ey)
            model = RoleModel(fit_role_model(Xtr, ytr, wtr))
            proba[te] = model.predict_proba(X[te])
        else:
            EX, Ey, EM = extra_rows(items, tr, synth, XS, loops=loops,
                                    synth_mel=mel.synth)
            Xtr, ytr, wtr = training_arrays(items, X, XA, tr, EX, Ey)
            model = RoleModel(fit_role_model(Xtr, ytr, wtr, mel=training_mel(mel, tr, EM)))
            proba[te] = model.predict_proba(X[te], mel=mel.dev[te])
        models[p] = model
        pred[te] = [ROLES[i] for i in proba[te].argmax(axis=1)]
    out = (pred,) + ((proba,) if return_proba else ()) + ((models,) if return_models else ())
    return out if len(out) > 1 else pred


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "role.safetensors")
    ap.add_argument("--no-synth", action="store_true", help="train on the dev set only")
    ap.add_argument("--no-loops", action="store_true",
                    help="no synthetic loops sequenced from one-shots")
    ap.add_argument("--no-phrases", action="store_true",
                    help="no phrase loops rendered from the extra soundfonts")
    ap.add_argument("--no-extra", action="store_true",
                    help="FluidR3_GM only (no soundfonts from .pkgs-extra)")
    ap.add_argument("--no-calibrate", action="store_true",
                    help="skip the leave-one-pack-out CV and store temperature 1 (quick runs)")
    ap.add_argument("--cnn", action="store_true",
                    help="add the convolutional head on the mel patch (tried; not shipped: no "
                         "accuracy gain on the leave-one-pack-out folds)")
    args = ap.parse_args(argv)
    from safetensors.numpy import save_file

    t0 = time.time()
    items = load_dev_set()
    sources = [] if args.no_synth else synthetic_sources(not args.no_extra)
    synth = render_all(sources, phrases=not args.no_phrases)
    X = features(items)
    aug = augmented_signals(items)
    XA = augmented_features(items, signals=aug)
    XS = features(synth) if synth else None
    mel = mel_inputs(items, aug, synth) if args.cnn else None
    everything = np.arange(len(items))
    if mel is None:
        EX, Ey = extra_rows(items, everything, synth, XS, loops=not args.no_loops)
        Xtr, ytr, wtr = training_arrays(items, X, XA, everything, EX, Ey)
        tensors = fit_role_model(Xtr, ytr, wtr)
    else:
        EX, Ey, EM = extra_rows(items, everything, synth, XS, loops=not args.no_loops,
                                synth_mel=mel.synth)
        Xtr, ytr, wtr = training_arrays(items, X, XA, everything, EX, Ey)
        tensors = fit_role_model(Xtr, ytr, wtr, mel=training_mel(mel, everything, EM))
    model = RoleModel(tensors)
    truth = np.array([it.truth for it in items])
    oneshot = np.array([it.kind == "oneshot" for it in items])
    dev_mel = None if mel is None else mel.dev
    pred = np.array([ROLES[i] for i in model.predict_proba(X, mel=dev_mel).argmax(axis=1)])
    in_sample = float(np.mean(pred[oneshot] == truth[oneshot]))
    cv_acc, cv_feat_acc, temperature = None, None, 1.0
    if not args.no_calibrate:
        # the temperature is fitted on out-of-fold probabilities: how sure the model should be
        # on a pack it has never heard
        cvp, cv_proba, cv_models = grouped_cv(items, X, XA, synth, XS, loops=not args.no_loops,
                                              return_proba=True, mel=mel, return_models=True)
        cv_acc = float(np.mean(cvp[oneshot] == truth[oneshot]))
        packs = np.array([it.pack for it in items])
        feat_pred = np.empty(len(items), dtype=object)
        for p, m in cv_models.items():  # the same fold models without their CNN head
            feat_pred[packs == p] = [ROLES[i] for i in
                                     m.predict_proba(X[packs == p]).argmax(axis=1)]
        cv_feat_acc = float(np.mean(feat_pred[oneshot] == truth[oneshot]))
        # every role weighs the same in the fit, as in training: the dev set is 80 % drums,
        # and a plain fit would calibrate for drums while the tonal roles (where the model is
        # most often confidently wrong) are common in producers' libraries
        temperature = fit_temperature(cv_proba, truth,
                                      weights=balanced_weights(truth, np.ones(len(truth))))
    tensors["temperature"] = np.array([temperature], np.float32)
    date = _dt.date.today().isoformat()
    meta = {"roles": json.dumps(list(ROLES)), "features": json.dumps(list(FEATURE_NAMES)),
            "trained": date, "recipe": "benchmarks/train_role.py",
            "n_dev": str(len(items)),
            "n_synth": str(sum(s.kind == "oneshot" for s in synth)),
            "n_phrases": str(sum(s.kind == "loop" for s in synth)), "n_aug": str(N_AUG),
            "soundfonts": json.dumps([s.name for s in sources]),
            "cnn": "none" if mel is None else json.dumps(
                {"channels": list(CNN_CHANNELS), "epochs": CNN_EPOCHS, "share": CNN_SHARE,
                 "patch_frames": role_mod.MEL_PATCH_FRAMES}),
            "temperature": f"{temperature:.4f}"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              str(args.out), metadata=meta)
    os.chmod(args.out, 0o644)  # save_file writes 0600; the model must be readable by anyone
    n_params = int(sum(v.size for v in tensors.values()))
    write_card(args.out.with_suffix(".md"), items=items, synth=synth, sources=sources,
               n_params=n_params, size_bytes=args.out.stat().st_size, in_sample=in_sample,
               cv_acc=cv_acc, cv_feat_acc=cv_feat_acc, temperature=temperature, date=date,
               n_train=len(ytr), cnn=mel is not None)
    print(f"wrote {args.out} ({n_params} parameters, {args.out.stat().st_size} bytes); "
          f"in-sample one-shot accuracy {in_sample:.3f}"
          + (f"; leave-one-pack-out {cv_acc:.3f}" if cv_acc is not None else "")
          + f"; temperature {temperature:.2f}"
          + f"; {time.time() - t0:.0f} s")
    return 0


def write_card(path: Path, *, items, synth, sources, n_params, size_bytes, in_sample, cv_acc,
               temperature, date, n_train, cv_feat_acc=None, cnn=False) -> None:
    def fmt(counter) -> str:
        return ", ".join(f"{k} {v}" for k, v in counter.most_common())

    counts = fmt(collections.Counter(it.truth for it in items))
    phrases = [s for s in synth if s.kind == "loop"]
    synth = [s for s in synth if s.kind == "oneshot"]
    scounts = fmt(collections.Counter(s.truth for s in synth))
    per_font = fmt(collections.Counter(s.pack.split(":", 1)[1] for s in synth))
    phrase_fonts = sorted({s.pack.split(":", 1)[1] for s in phrases})
    textures = fmt(collections.Counter(s.source.split(" phrase")[0].rsplit(" ", 1)[1]
                                       for s in phrases))
    phrase_text = ("" if not phrases else f"""
* {len(phrases)} phrase loops rendered with fluidsynth from MIDI phrases
  (`render_phrases`) by {len(phrase_fonts)} of those fonts: {", ".join(phrase_fonts)}
  ({fmt(collections.Counter(s.pack.split(":", 1)[1] for s in phrases))}); **none from
  FluidR3_GM**, which renders the chorale excerpts of `benchmarks/bench_role_loops.py`, so
  that check stays independent of them (FluidR3_GM's one-shots, piano included, are still in
  the training data). Roles: {fmt(collections.Counter(s.truth for s in phrases))}. Random
  keys (major/minor) and progressions; textures (shared between roles so that the texture
  alone does not tell the role): {textures}; a GM program of the role each, 70-170 BPM, 1, 2
  or 4 bars, random velocity level and register within the role's range, some reverb, the
  sustain pedal in some keys phrases; cut bar-exact (some with their release tail), random
  peak level.""")
    pkg_of = {Path(rel).name: pkg for pkg, rel in EXTRA_SOUNDFONTS.items()}
    pkg_of[FLUID_SF2.name] = "fluid-soundfont-gm"
    fonts = ", ".join(f"{p.name} (Debian `{pkg_of.get(p.name, '?')}`)" for p in sources)
    packs = fmt(collections.Counter(it.pack for it in items))
    cnn_text = ("" if not cnn else
                f"; that mean is averaged (weight {CNN_SHARE:g}) with a small CNN on "
                f"`role_mel_patch` (64 mel bands × {role_mod.MEL_PATCH_FRAMES} frames, ~1.5 s from "
                f"the onset, dB re its maximum): 2×2 average pool, four 3×3 convolutions "
                f"({'-'.join(map(str, CNN_CHANNELS))} channels, BatchNorm folded in, ReLU, 2×2 max "
                f"pools between), mean and max over the map, a linear layer; trained with torch "
                f"({CNN_EPOCHS} epochs, AdamW, one-cycle, label smoothing 0.05, ±2-band shifts), "
                f"inferred in numpy. Callers that pass no patch (`predict_proba(X)`) get the "
                f"feature heads alone")
    feat_line = ("" if cv_feat_acc is None or not cnn else
                 f"\n| leave-one-pack-out CV, feature heads only (same fold models without the "
                 f"CNN) | {cv_feat_acc:.3f} |")
    cv_line = (f"| leave-one-pack-out CV, one-shots (honest) | {cv_acc:.3f} |" if cv_acc
               is not None else "| leave-one-pack-out CV, one-shots (honest) | not run "
               "(--no-calibrate) |")
    path.write_text(f"""# role.safetensors — instrument role from audio

Trained {date} by `benchmarks/train_role.py` ({machine()}); read by
`loopmind/library/analysis/role.py` (`RoleModel`, numpy only; the file holds weights and a
JSON header, nothing executable).

## What it does
Maps the {len(FEATURE_NAMES)}-number feature vector of `role_features` (envelope, band energy
ratios, spectral shape, pitchedness, per-band decays, MFCC-like statistics) to probabilities of
the 16 roles ({", ".join(ROLES)}).
`classify_role` then combines them with the kind (loop/one-shot) and the role suggested by
file and folder words.

## Model
Standardization (mean/scale) → average of the softmax outputs of a multinomial logistic
regression (C = 0.1) and 3 one-hidden-layer ReLU MLPs (64 units, L2 alpha 1, seeds 0-2){cnn_text},
then calibrated: p ∝ p_ensemble^(1/T) with T = {temperature:.3f}, fitted (class-balanced log
loss) on the out-of-fold probabilities of the leave-one-pack-out CV below. Without it the
ensemble is over-confident on packs it has not heard, and file/folder words could rarely
overrule it in `classify_role`.
{n_params} parameters, {size_bytes} bytes (float32).

## Data
* Dev set `role` rows, {len(items)} files. Packs: {packs}. Roles: {counts}.
  Hydrogen velocity layers of one instrument share a weight of one sample.
* {len(synth)} synthetic one-shots rendered with fluidsynth from {len(sources)} General MIDI
  soundfonts: {fonts}. GM programs mapped to roles and every drum note of each font's GM kits
  (up to 8). Per font: {per_font}. Roles: {scounts}.
  None of these fonts is known to share recordings with the dev set's packs (or with
  hydrogen-drumkits, LMMS or Sonic Pi); avldrums.lv2-soundfont is deliberately not used (its
  Black Pearl kit is hydrogen-drumkits' "The Black Pearl").{phrase_text}
* {N_AUG} augmented copies of every dev file (pitch ±2 semitones, trimmed tail, leading
  silence, low-pass, noise, gain).
* Synthetic loops sequenced from the dev and synthetic one-shots on a 16th grid at
  80-170 BPM (drum loops from a random kit, and bass/keys/guitar/lead/pad/strings phrases).
* {n_train} training rows in all, class-balanced weights.

## Metrics (one-shots, audio alone)
| measure | accuracy |
|---|---|
{cv_line}{feat_line}
| in-sample (trained on these files; NOT a generalization figure) | {in_sample:.3f} |

The honest figure is the leave-one-pack-out one: the held-out pack (LMMS, Sonic Pi or one
Hydrogen kit) shares no kit, pack or instrument with the training side. See
`benchmarks/results/role.md` for the peer (MFCC 1-NN) on the same folds, the confusions and
speed.

## Limits
Trained on 9 packs of mostly drums; tonal roles (keys, pad, strings, guitar, lead, vocal) have
few real examples, so the audio model is weak there and file/folder words should dominate.
"perc" is a catch-all (tabla, djembe, cowbell, shaker, ...) and is often confused with tom,
snare and hihat. The tonal loops it learns from are generated (random progressions in a few
textures, GM soundfonts), not played: loops in other styles or of other instruments may still
be confused, and a sustained string section is sometimes called "pad" (see
`benchmarks/results/role_loops.md`).

## Reproduce
```
/work/shared/eval/build.sh /work/eval-data     # the dev set (and FluidR3_GM in .pkgs)
mkdir -p /work/eval-data/.pkgs-extra && cd /work/eval-data/.pkgs-extra
for p in {" ".join(EXTRA_SOUNDFONTS)}; do
  apt-get download $p && dpkg-deb -x ${{p}}_*.deb $p
done
cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/train_role.py
```
(`--no-extra` trains with FluidR3_GM only, without phrase loops; `--no-phrases` leaves the
phrase loops out.) The leave-one-pack-out CV always runs, since the
temperature is fitted on it (a few minutes on 2 cores). Needs fluidsynth (with sf3 support, as
Debian's), scikit-learn, torch (CPU; training only) and safetensors. Deterministic up to
BLAS rounding. `--cnn` adds the convolutional head (not shipped; see
`benchmarks/results/role.md`).
""")


if __name__ == "__main__":
    sys.exit(main())

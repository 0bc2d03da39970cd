"""The learned mixer: level, pan, reverb send and high-pass per track from its features.

Inputs per track: its role (one-hot), the song's genre (one-hot over the mixer's genre
words), and what the audio says when there is audio (``mix.TrackFeatures``: loudness where
it plays, spectral centroid, low-end share, crest, stereo width; a flag says whether it was
measured). Outputs:

* ``level``: the track's loudness after the fader relative to the song's other tracks (LU;
  only differences within a song are learned, since projects sit at any overall level);
* ``pan``: how far from the centre (0..1; which side alternates by track name, as the
  heuristic does, since the side of a hi-hat is a convention, not a feature of its sound);
* ``reverb``: the send (0..1);
* ``highpass``: log2 of the cut-off over 20 Hz, 0 for none.

Each target is learned only from the tracks whose data has it (masked losses). Training data
comes from projects' mixer settings (a sample track's loudness and spectrum measured from its
sample when the file can be found) and from folders of stems with their mix (per-stem gains
solved by least squares). Inference is numpy only. ``LearnedMixer`` implements
``mix.Mixer``; ``auto_mix`` picks it up through ``default_mixer``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loopmind.generate.train.common import (ModelError, TrainingDataError, TrainResult,
                                            bootstrap_interval, find_checkpoint,
                                            load_checkpoint)
from loopmind.library.analysis.role import ROLES

log = logging.getLogger(__name__)

NAME = "mixer"
VERSION = 1
GENRE_VOCAB: tuple[str, ...] = ("none", "trap", "drill", "house", "techno", "dnb", "jungle",
                                "boombap", "hiphop", "lofi", "ambient", "pop", "rnb", "edm",
                                "trance", "garage")
_GENRE_ALIASES = {"drumandbass": "dnb", "dnb": "dnb"}
AUDIO_FEATURES = ("measured", "active_lufs", "centroid", "low_energy_fraction", "crest",
                  "stereo_width")
TARGETS = ("level", "pan", "reverb", "highpass")
HIDDEN = 32
MIN_TRACKS = 40           # tracks with mixer settings needed to train at all
MIN_TARGET_TRACKS = 30    # a target learned from fewer tracks is left to the heuristic
MIN_SONG_TRACKS = 2       # a song needs two tracks for relative levels
_HP_MIN_HZ = 20.0
_TARGET_SCALE = np.array([6.0, 0.3, 0.2, 2.0])  # loss units: 6 LU, 0.3 pan, 0.2 send, 1 octave x2


def input_dim() -> int:
    return len(ROLES) + len(GENRE_VOCAB) + len(AUDIO_FEATURES)


def expected_shapes() -> dict[str, tuple[int, ...]]:
    d, h, o = input_dim(), HIDDEN, len(TARGETS)
    return {"l1.weight": (h, d), "l1.bias": (h,), "l2.weight": (h, h), "l2.bias": (h,),
            "out.weight": (o, h), "out.bias": (o,)}


def _vocab() -> dict:
    return {"roles": list(ROLES), "genres": list(GENRE_VOCAB),
            "audio_features": list(AUDIO_FEATURES), "targets": list(TARGETS)}


def genre_word(genre: str | None) -> str:
    """The mixer's genre word for a genre name ("Drum and Bass" -> "dnb"; unknown -> none)."""
    if not genre:
        return "none"
    g = "".join(ch for ch in str(genre).lower() if ch.isalnum())
    g = _GENRE_ALIASES.get(g, g)
    return g if g in GENRE_VOCAB else "none"


# -- data ---------------------------------------------------------------------------------------

@dataclass
class TrackExample:
    """One track: inputs and whichever targets its source tells (None: unknown)."""

    song: str
    name: str
    role: str | None
    genre: str
    audio: dict[str, float] | None  # TrackFeatures fields when measured
    level: float | None = None      # loudness after the fader (LUFS, absolute)
    pan: float | None = None        # -1..1 as the source has it
    reverb: float | None = None
    highpass_hz: float | None = None  # 0 for "no high-pass"


def feature_vector(role: str | None, genre: str, audio: dict | None) -> np.ndarray:
    """The model's input for one track, float32 (``input_dim()``,)."""
    x = np.zeros(input_dim(), np.float32)
    if role in ROLES:
        x[ROLES.index(role)] = 1.0
    x[len(ROLES) + GENRE_VOCAB.index(genre_word(genre))] = 1.0
    if audio is not None and audio.get("active_lufs", -120.0) > -70.0:
        o = len(ROLES) + len(GENRE_VOCAB)
        x[o:o + len(AUDIO_FEATURES)] = [
            1.0, (audio["active_lufs"] + 20.0) / 10.0,
            math.log2(max(audio["spectral_centroid_hz"], 20.0) / 1000.0) / 3.0,
            audio["low_energy_fraction"], audio["crest_db"] / 20.0, audio["stereo_width"]]
    return x


def _features_of_file(path: Path) -> dict | None:
    """TrackFeatures of an audio file as a dict (None when it cannot be decoded)."""
    import soundfile as sf

    from loopmind.generate.mix import track_features

    try:
        y, sr = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001 - a sampler's own format (.ds) or a broken file
        return None
    if len(y) == 0:
        return None
    y = y.T if y.shape[1] >= 2 else np.vstack([y[:, 0], y[:, 0]])
    f = track_features(path.name, "", y[:2], int(sr))
    return {k: float(getattr(f, k)) for k in ("integrated_lufs", "active_lufs",
                                               "spectral_centroid_hz", "low_energy_fraction",
                                               "crest_db", "stereo_width", "peak_db")}


def _resolve_sample(sample: str, project: Path, roots: list[Path]) -> Path | None:
    """A project's sample path on this machine: as written, beside the project, or under a
    ``samples`` folder of the project's ancestors (LMMS's factory samples) or ``roots``."""
    p = Path(sample)
    if p.is_absolute():
        return p if p.is_file() else None
    cands = [project.parent / p] + [a / "samples" / p for a in project.parents] \
        + [r / p for r in roots]
    return next((c for c in cands if c.is_file()), None)


_FEATURE_CACHE: dict[str, dict | None] = {}


def project_examples(d: dict, project: Path, *, roots: list[Path] = ()) -> list[TrackExample]:
    """Tracks of a normalized project dict with their mixer settings as targets."""
    genre = d.get("genre")
    tracks = [t for t in d.get("tracks") or [] if t.get("kind") != "automation"]
    any_eq = any((t.get("mixer") or {}).get("eq") is not None for t in tracks)
    song = d.get("source") or project.name
    out = []
    for t in tracks:
        m = t.get("mixer") or {}
        if m.get("gain_db") is None or t.get("muted") or m.get("muted"):
            continue
        audio = None
        if t.get("sample_path"):
            path = _resolve_sample(t["sample_path"], project, list(roots))
            if path is not None:
                key = str(path)
                if key not in _FEATURE_CACHE:
                    _FEATURE_CACHE[key] = _features_of_file(path)
                audio = _FEATURE_CACHE[key]
        level = audio["active_lufs"] + float(m["gain_db"]) if audio else None
        # only a send amount says how much reverb a track gets: an insert reverb reads 1.0 (its
        # own wet knob, inside the plugin), and a track without one says nothing about sends
        reverb = m.get("reverb_send")
        reverb = float(reverb) if reverb is not None and float(reverb) < 1.0 else None
        hp = None
        if m.get("eq") is not None:
            hps = [b.get("freq_hz") for b in m["eq"] if b.get("type") == "highpass"
                   and b.get("freq_hz")]
            hp = float(hps[0]) if hps else 0.0
        elif any_eq:
            hp = 0.0
        out.append(TrackExample(song=song, name=t.get("name") or "", role=t.get("role"),
                                genre=genre_word(genre), audio=audio, level=level,
                                pan=float(m.get("pan") or 0.0), reverb=reverb,
                                highpass_hz=hp))
    return out


MIX_NAMES = ("mix", "master", "mixdown")


def stems_examples(folder: Path, *, genre: str | None = None, max_s: float = 60.0
                   ) -> list[TrackExample]:
    """Tracks of a folder of unmixed stems plus their mix (``mix.wav``/``master.wav``).

    The mix is modelled as a weighted sum of the stems (mono, decimated to 4 kHz, the first
    ``max_s`` seconds); non-negative least squares gives each stem's gain, so its level in the
    mix is its own loudness plus that gain. Pan is read from the stem's channel balance
    (a mono stem reads as centred); reverb and EQ are unknown. Roles come from a LoopMind
    ``arrangement.json`` beside the stems when there is one, else from the file names.
    """
    import soundfile as sf
    from scipy.optimize import nnls
    from scipy.signal import resample_poly

    from loopmind.generate.mix import track_features
    from loopmind.library.names import parse_name

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg"))
    mixes = [p for p in files if p.stem.lower() in MIX_NAMES]
    stems = [p for p in files if p not in mixes]
    if not mixes or len(stems) < MIN_SONG_TRACKS:
        return []
    roles: dict[str, str] = {}
    arrangement = folder / "arrangement.json"
    if arrangement.is_file():
        with_roles = json.loads(arrangement.read_text())
        roles = {t["name"]: t["role"] for t in with_roles.get("tracks", [])}
        genre = genre or with_roles.get("genre")

    def mono(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
        y, sr = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
        y = y[: int(max_s * sr)]
        st = y.T if y.shape[1] >= 2 else np.vstack([y[:, 0], y[:, 0]])
        g = math.gcd(int(sr), 4000)
        return resample_poly(st[:2].mean(axis=0), 4000 // g, int(sr) // g), st[:2], int(sr)

    mix, _, _ = mono(mixes[0])
    cols, feats = [], []
    for p in stems:
        y, st, sr = mono(p)
        n = min(len(y), len(mix))
        cols.append(np.pad(y[:n], (0, len(mix) - n)))
        f = track_features(p.stem, "", st, sr)
        lr = np.sqrt(np.mean(st.astype(np.float64) ** 2, axis=1)) + 1e-12
        pan = float(np.clip(4.0 / math.pi * math.atan2(lr[1], lr[0]) - 1.0, -1.0, 1.0))
        feats.append((f, pan))
    gains, _ = nnls(np.stack(cols, axis=1).astype(np.float64), mix.astype(np.float64))
    out = []
    for p, g, (f, pan) in zip(stems, gains, feats):
        if g <= 1e-4 or f.silent:
            continue  # not in the mix at all (or silent): nothing to learn about its level
        role = roles.get(p.stem) or parse_name(p).role
        audio = {k: float(getattr(f, k)) for k in ("integrated_lufs", "active_lufs",
                                                   "spectral_centroid_hz",
                                                   "low_energy_fraction", "crest_db",
                                                   "stereo_width", "peak_db")}
        out.append(TrackExample(song=str(folder), name=p.stem, role=role,
                                genre=genre_word(genre), audio=audio,
                                level=f.active_lufs + 20.0 * math.log10(g),
                                pan=round(pan, 3) if abs(pan) > 0.02 else 0.0))
    return out


def load_examples(folder: os.PathLike | str, *, roots: list[Path] = (),
                  warnings: list[str] | None = None) -> list[TrackExample]:
    """Track examples from every project under ``folder`` and every stems-with-mix folder
    (a folder holding a ``mix``/``master`` audio file beside the stems)."""
    from loopmind.generate.train.arranger import PROJECT_SUFFIXES, read_project

    warnings = warnings if warnings is not None else []
    folder = Path(folder)
    out: list[TrackExample] = []
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    for p in files:
        if p.suffix.lower() in PROJECT_SUFFIXES and p.name != "arrangement.json":
            try:
                d = read_project(p)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
                warnings.append(f"{p.name}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
                continue
            if d is not None and d.get("tracks"):
                out.extend(project_examples(d, p, roots=roots))
        elif p.stem.lower() in MIX_NAMES and p.suffix.lower() in (".wav", ".flac", ".ogg"):
            try:
                out.extend(stems_examples(p.parent))
            except Exception as exc:  # noqa: BLE001
                warnings.append(f"{p.parent.name}: stems not usable ({exc})")
    return out


def _targets(examples: list[TrackExample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(targets (n, 4), mask (n, 4), song index (n,)) with levels centred per song."""
    n = len(examples)
    y = np.zeros((n, len(TARGETS)), np.float32)
    m = np.zeros((n, len(TARGETS)), np.float32)
    songs = {s: i for i, s in enumerate(dict.fromkeys(e.song for e in examples))}
    idx = np.array([songs[e.song] for e in examples], np.int64)
    levels: dict[str, list[float]] = {}
    for e in examples:
        if e.level is not None:
            levels.setdefault(e.song, []).append(e.level)
    for i, e in enumerate(examples):
        if e.level is not None and len(levels[e.song]) >= MIN_SONG_TRACKS:
            y[i, 0], m[i, 0] = e.level - float(np.mean(levels[e.song])), 1.0
        if e.pan is not None:
            y[i, 1], m[i, 1] = abs(e.pan), 1.0
        if e.reverb is not None:
            y[i, 2], m[i, 2] = e.reverb, 1.0
        if e.highpass_hz is not None:
            y[i, 3] = math.log2(e.highpass_hz / _HP_MIN_HZ) if e.highpass_hz > _HP_MIN_HZ else 0.0
            m[i, 3] = 1.0
    return y, m, idx


# -- inference (numpy) --------------------------------------------------------------------------

class MixerModel:
    """A loaded mixer network (numpy): ``predict`` gives (n, 4) raw outputs."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict | None = None, *,
                 all_targets: bool = False):
        self.w = {k: np.asarray(v, np.float64) for k, v in tensors.items()}
        self.meta = meta or {}
        counts = self.meta.get("target_tracks") or {t: MIN_TARGET_TRACKS for t in TARGETS}
        enough = {t for t in TARGETS if counts.get(t, 0) >= MIN_TARGET_TRACKS}
        # the targets the mixer decides: those that beat the heuristic on held-out songs when
        # the training measured that, else every target learned from enough tracks
        proven = self.meta.get("use_targets")
        self.learned = enough if all_targets or proven is None else set(proven) & enough

    @classmethod
    def load(cls, path: os.PathLike | str, *, all_targets: bool = False) -> "MixerModel":
        tensors, meta = load_checkpoint(path, model=NAME, version=VERSION,
                                        shapes=expected_shapes())
        if meta.get("vocab") != _vocab():
            raise ModelError(f"{Path(path).name} was trained with other roles, genres or "
                             "features; retrain it with `loopmind train mixer`")
        return cls(tensors, meta, all_targets=all_targets)

    def predict(self, X: np.ndarray) -> np.ndarray:
        w = self.w
        h = np.maximum(X @ w["l1.weight"].T + w["l1.bias"], 0.0)
        h = np.maximum(h @ w["l2.weight"].T + w["l2.bias"], 0.0)
        return h @ w["out.weight"].T + w["out.bias"]


@dataclass
class LearnedMixer:
    """``mix.Mixer`` from a trained network; the heuristic fills in the rest.

    The heuristic's settings are the starting point (ducking and the mud cut stay its
    decisions); the network replaces the relative levels (anchored at the heuristic's mean
    level over the audible tracks, so the overall balance against the master stays where the
    master chain expects it), the pan amounts, the reverb sends and the high-pass cut-offs,
    each only when the checkpoint learned it from enough tracks.
    """

    model: MixerModel
    name: str = "learned"
    source: str = ""
    fallback: object = field(default=None)

    def settings(self, features, *, genre: str | None):
        from loopmind.generate.mix import (_MAX_BOOST_DB, _MAX_CUT_DB, HeuristicMixer, _round)

        fallback = self.fallback or HeuristicMixer()
        out = fallback.settings(features, genre=genre)
        names = sorted(features)
        if not names:
            return out
        audible = [n for n in names if not features[n].silent]
        X = np.stack([feature_vector(features[n].role, genre or "",
                                     {k: getattr(features[n], k) for k in (
                                         "active_lufs", "spectral_centroid_hz",
                                         "low_energy_fraction", "crest_db", "stereo_width")})
                      for n in names])
        P = dict(zip(names, self.model.predict(X)))
        if "level" in self.model.learned and audible:
            anchor = float(np.mean([fallback.level_lu(features[n].role, genre)
                                    for n in audible]))
            mean_pred = float(np.mean([P[n][0] for n in audible]))
            for n in audible:
                target = fallback.reference_lufs + anchor + (P[n][0] - mean_pred)
                out[n].gain_db = float(np.clip(target - features[n].active_lufs, _MAX_CUT_DB,
                                               _MAX_BOOST_DB))
            worst = max(features[n].peak_db + out[n].gain_db + 3.0 for n in audible)
            shift = min(0.0, fallback.stem_peak_limit_db - worst)
            for n in audible:
                out[n].gain_db = _round(out[n].gain_db + shift)
        if "pan" in self.model.learned:
            side = 0
            for n in names:
                amount = float(np.clip(P[n][1], 0.0, 1.0))
                if amount < 0.1:  # the heuristic's smallest spread is 0.2: this is centred
                    out[n].pan = 0.0
                    continue
                out[n].pan = _round(-amount if side % 2 == 0 else amount)
                side += 1
        if "reverb" in self.model.learned:
            for n in names:
                out[n].reverb_send = _round(float(np.clip(P[n][2], 0.0, 1.0)))
        if "highpass" in self.model.learned:
            for n in names:
                octaves = float(P[n][3])
                out[n].highpass_hz = (None if octaves < 0.5 else
                                      float(round(_HP_MIN_HZ * 2.0 ** octaves / 5.0) * 5.0))
        return out


_CACHE: dict[tuple[str, int], MixerModel] = {}
_CACHE_LOCK = threading.Lock()


def default_mixer(settings=None):
    """The mixer ``auto_mix`` uses: (``LearnedMixer`` or None, a note or None).

    None (the heuristic) when ``mixer = "rules"``, when there is no checkpoint, when the
    checkpoint is refused (the note then says why), or when none of its targets beat the
    heuristic on held-out songs. ``mixer = "learned"`` uses every target the checkpoint
    learned from enough tracks, proven or not.
    """
    if settings is None:
        from loopmind.config import get_settings

        settings = get_settings()
    choice = str(getattr(settings, "mixer", "auto")).lower()
    if choice in ("rules", "heuristic", "off", "none"):
        return None, None
    path = find_checkpoint(NAME, settings)
    if path is None:
        return None, None
    everything = choice == "learned"
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns, everything)
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = MixerModel.load(path, all_targets=everything)
            model = _CACHE[key]
    except ModelError as exc:
        log.warning("%s; using the heuristic mixer", exc)
        return None, f"mixer model not used ({exc}); the heuristic mixer is used"
    if not model.learned:
        return None, None
    return LearnedMixer(model, source=path.name), \
        f"mixed by the learned mixer ({path.name}: {', '.join(sorted(model.learned))})"


# -- heuristic baseline and evaluation ----------------------------------------------------------

def heuristic_outputs(examples: list[TrackExample]) -> np.ndarray:
    """What ``HeuristicMixer`` decides for each track, in the model's output units."""
    from loopmind.generate.mix import (GENRE_REVERB_SCALE, ROLE_HIGHPASS_HZ, ROLE_PAN_SPREAD,
                                       ROLE_REVERB_SEND, HeuristicMixer)

    h = HeuristicMixer()
    out = np.zeros((len(examples), len(TARGETS)))
    for i, e in enumerate(examples):
        role = e.role or ""
        g = None if e.genre == "none" else e.genre
        out[i, 0] = h.level_lu(role, g)
        amount = ROLE_PAN_SPREAD.get(role, 0.0)
        if e.audio and e.audio.get("stereo_width", 0.0) > 0.35:
            amount *= 0.5
        out[i, 1] = amount
        out[i, 2] = min(1.0, ROLE_REVERB_SEND.get(role, 0.0) * GENRE_REVERB_SCALE.get(
            e.genre, 1.0))
        hp = ROLE_HIGHPASS_HZ.get(role)
        out[i, 3] = math.log2(hp / _HP_MIN_HZ) if hp else 0.0
    return out


def abs_errors(pred: np.ndarray, examples: list[TrackExample]) -> np.ndarray:
    """Absolute error per track and target (n, 4), NaN where the track lacks the target;
    levels are centred per song over the same tracks for prediction and truth."""
    y, m, idx = _targets(examples)
    p = np.array(pred, dtype=np.float64)
    lv = m[:, 0] > 0
    for s in np.unique(idx[lv]):
        sel = lv & (idx == s)
        p[sel, 0] -= p[sel, 0].mean()
    p[:, 1:] = np.clip(p[:, 1:], 0.0, None)
    return np.where(m > 0, np.abs(p - y), np.nan)


def errors(pred: np.ndarray, examples: list[TrackExample]) -> dict:
    """Mean absolute errors per target over the tracks that have it (levels centred per song
    over the same tracks for prediction and truth)."""
    e = abs_errors(pred, examples)
    return {t: {"mae": float(np.nanmean(e[:, j])) if np.isfinite(e[:, j]).any() else None,
                "n": int(np.isfinite(e[:, j]).sum())} for j, t in enumerate(TARGETS)}



# -- training (torch) ---------------------------------------------------------------------------

def fit(examples: list[TrackExample], *, epochs: int = 400, seed: int = 0, lr: float = 3e-3,
        device: str = "cpu", budget=None, progress=None) -> dict[str, np.ndarray]:
    """Train on ``examples`` (full batch) with masked, per-song-centred losses."""
    import torch
    from torch import nn

    from loopmind.generate.train.common import seed_everything

    seed_everything(seed)
    net = nn.Sequential(nn.Linear(input_dim(), HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN),
                        nn.ReLU(), nn.Linear(HIDDEN, len(TARGETS))).to(device)
    X = torch.as_tensor(np.stack([feature_vector(e.role, e.genre, e.audio) for e in examples]),
                        device=device)
    y_np, m_np, idx_np = _targets(examples)
    y, m = torch.as_tensor(y_np, device=device), torch.as_tensor(m_np, device=device)
    idx = torch.as_tensor(idx_np, device=device)
    n_songs = int(idx_np.max()) + 1 if len(idx_np) else 1
    scale = torch.as_tensor(_TARGET_SCALE, dtype=torch.float32, device=device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-3)
    lv = m[:, 0]
    count = torch.zeros(n_songs, device=device).index_add_(0, idx, lv).clamp(min=1.0)
    for epoch in range(epochs):
        out = net(X)
        # levels: only differences within a song count
        mean = torch.zeros(n_songs, device=device).index_add_(0, idx, out[:, 0] * lv) / count
        centred = torch.cat([(out[:, 0] - mean[idx])[:, None], out[:, 1:]], dim=1)
        # absolute errors: the model is judged by its mean absolute error
        err = ((centred - y) / scale).abs() * m
        loss = (err.sum(0) / m.sum(0).clamp(min=1.0)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None:
            progress(epoch + 1, epochs, {"loss": f"{float(loss.detach()):.3f}"})
        if budget is not None and budget.exhausted:
            break
    names = {"0": "l1", "2": "l2", "4": "out"}
    return {f"{names[k.split('.')[0]]}.{k.split('.')[1]}": v.detach().cpu().numpy()
            for k, v in net.state_dict().items()}


@dataclass(kw_only=True)
class MixerResult(TrainResult):
    n_tracks: int
    n_songs: int

    def summary_lines(self) -> list[str]:
        lines = [f"{self.n_tracks} tracks from {self.n_songs} songs"]
        cv = self.metrics.get("cv")
        if cv:
            for t in TARGETS:
                a, b = cv["model"][t], cv["heuristic"][t]
                if a["mae"] is not None:
                    lines.append(f"held-out {t} MAE {a['mae']:.3f} (heuristic {b['mae']:.3f}, "
                                 f"{a['n']} tracks)")
        return lines


def cross_validate(examples: list[TrackExample], *, epochs: int, seed: int,
                   device: str = "cpu", progress=None) -> dict:
    """Leave-one-song-out: every song's tracks predicted by a model trained without it."""
    songs = list(dict.fromkeys(e.song for e in examples))
    pred = np.zeros((len(examples), len(TARGETS)))
    for k, s in enumerate(songs):
        te = [i for i, e in enumerate(examples) if e.song == s]
        tr = [e for e in examples if e.song != s]
        model = MixerModel(fit(tr, epochs=epochs, seed=seed, device=device))
        X = np.stack([feature_vector(examples[i].role, examples[i].genre, examples[i].audio)
                      for i in te])
        pred[te] = model.predict(X)
        if progress is not None:
            progress(k + 1, len(songs), {"song": Path(s).name[:24]})
    heur = heuristic_outputs(examples)
    # per target, the MAE difference by a cluster bootstrap over songs
    em, eh = abs_errors(pred, examples), abs_errors(heur, examples)
    song_of = np.array([songs.index(e.song) for e in examples])
    ci = {}
    for j, t in enumerate(TARGETS):
        a, b, den = (np.zeros(len(songs)) for _ in range(3))
        for k in range(len(songs)):
            sel = (song_of == k) & np.isfinite(em[:, j])
            a[k], b[k], den[k] = em[sel, j].sum(), eh[sel, j].sum(), sel.sum()
        if den.sum() > 0:
            ci[t] = list(bootstrap_interval(
                lambda i, a=a, b=b, den=den: (a[i].sum() - b[i].sum()) / max(den[i].sum(), 1.0),
                len(songs)))
    return {"model": errors(pred, examples), "heuristic": errors(heur, examples),
            "songs": len(songs), "mae_difference_ci95": ci}


def too_little_message(n: int, folder) -> str:
    return (f"mixer: {n} track{'s' if n != 1 else ''} with mixer settings found in {folder}; "
            f"at least {MIN_TRACKS} are needed (projects with mixer settings, or folders of "
            "stems with their mix.wav)")


def proven_targets(cv: dict) -> list[str]:
    """The targets learned from at least ``MIN_TARGET_TRACKS`` tracks whose held-out MAE is
    below the heuristic's with 95 % confidence (the bootstrap interval over songs of the
    difference lies below 0)."""
    return [t for t in TARGETS if t in cv["mae_difference_ci95"]
            and cv["model"][t]["n"] >= MIN_TARGET_TRACKS
            and cv["mae_difference_ci95"][t][1] < 0]


def _beats(cv: dict) -> bool:
    return bool(proven_targets(cv))


def train(folder: os.PathLike | str | list, *, out: os.PathLike | str | None = None,
          epochs: int | None = None, budget_minutes: float | None = None, seed: int = 0,
          cross_val: bool = True, roots: list[Path] = (), device: str | None = None,
          quiet: bool = False, data_note: str = "") -> MixerResult:
    """``loopmind train mixer DIR``: load, cross-validate, train, save, write the card.

    Raises:
        TrainingDataError: fewer than ``MIN_TRACKS`` tracks with mixer settings.
    """
    import time

    from loopmind.generate.train.common import (Budget, pick_device, progress_bar,
                                                save_checkpoint, user_models_dir)

    t0 = time.monotonic()
    folders = [Path(f) for f in (folder if isinstance(folder, (list, tuple)) else [folder])]
    for f in folders:
        if not f.exists():
            raise TrainingDataError(f"mixer: {f} does not exist")
    folder = ", ".join(str(f) for f in folders)
    warnings: list[str] = []
    examples = [e for f in folders for e in load_examples(f, roots=list(roots), warnings=warnings)]
    if len(examples) < MIN_TRACKS:
        raise TrainingDataError(too_little_message(len(examples), folder))
    device = pick_device(device)
    epochs = epochs or 400
    metrics: dict = {}
    if cross_val and len({e.song for e in examples}) >= 3:
        with progress_bar("mixer: leave-one-song-out", len({e.song for e in examples}),
                          quiet=quiet) as bar:
            metrics["cv"] = cross_validate(examples, epochs=epochs, seed=seed, device=device,
                                           progress=bar)
    with progress_bar("mixer: training", epochs, quiet=quiet) as bar:
        tensors = fit(examples, epochs=epochs, seed=seed, device=device,
                      budget=Budget(budget_minutes), progress=bar)
    _, mask, _ = _targets(examples)
    counts = {t: int(mask[:, j].sum()) for j, t in enumerate(TARGETS)}
    beats = bool(metrics.get("cv")) and _beats(metrics["cv"])
    extra = {"use_targets": proven_targets(metrics["cv"])} if metrics.get("cv") else {}
    out = Path(out) if out else user_models_dir() / f"{NAME}.safetensors"
    save_checkpoint(out, tensors, model=NAME, version=VERSION, vocab=_vocab(),
                    features={"hidden": HIDDEN, "target_scale": list(_TARGET_SCALE)},
                    target_tracks=counts, metrics=metrics.get("cv") or {}, **extra)
    seconds = time.monotonic() - t0
    card = write_card(out, examples=examples, metrics=metrics, counts=counts, beats=beats,
                      tensors=tensors, device=device, seconds=seconds, data_note=data_note,
                      epochs=epochs)
    return MixerResult(path=out, card=card, metrics=metrics, n_tracks=len(examples),
                       n_songs=len({e.song for e in examples}), seconds=seconds,
                       warnings=warnings)


def write_card(out: Path, *, examples, metrics, counts, beats, tensors, device, seconds,
               data_note, epochs) -> Path:
    from loopmind.generate.train.common import n_parameters, write_model_card

    measured = sum(e.audio is not None for e in examples)
    roles: dict[str, int] = {}
    for e in examples:
        roles[e.role or "unknown"] = roles.get(e.role or "unknown", 0) + 1
    data = (f"{len(examples)} tracks from {len({e.song for e in examples})} songs; {measured} "
            "with audio measured (the sample a sampler track plays, or a stem). Roles: "
            + ", ".join(f"{k} {v}" for k, v in sorted(roles.items(), key=lambda kv: -kv[1]))
            + ". Tracks per target: " + ", ".join(f"{t} {counts[t]}" for t in TARGETS)
            + f" (a target learned from fewer than {MIN_TARGET_TRACKS} tracks is left to the "
              "heuristic at mix time).")
    if data_note:
        data += "\n\n" + data_note
    n = n_parameters(tensors)
    size = (f"{n} parameters ({n * 4} bytes float32): {input_dim()} inputs (role, genre, "
            f"audio features) -> {HIDDEN} -> {HIDDEN} (ReLU) -> {len(TARGETS)} outputs "
            f"({', '.join(TARGETS)}). {epochs} full-batch Adam epochs, masked L1 losses.")
    cv = metrics.get("cv")
    if cv:
        rows = ["Leave-one-song-out: each song's tracks predicted by a model trained without "
                "that song, against `HeuristicMixer`'s tables for the same tracks. Mean "
                "absolute error over the tracks whose data has the target; levels are "
                "compared after centring each song's levels (only the balance within a song "
                "is meaningful); pan is compared as distance from the centre.", "",
                "| target | tracks | learned | heuristic |", "|---|---|---|---|"]
        units = {"level": "LU", "pan": "", "reverb": "", "highpass": "octaves"}
        for t in TARGETS:
            a, b = cv["model"][t], cv["heuristic"][t]
            if a["mae"] is None:
                continue
            rows.append(f"| {t} {units[t]} | {a['n']} | {a['mae']:.3f} | {b['mae']:.3f} |")
        proven = proven_targets(cv)
        rows += ["", "MAE difference (learned − heuristic), 95 % bootstrap intervals over "
                     "songs: " + ", ".join(f"{t} [{lo:+.3f}, {hi:+.3f}]" for t, (lo, hi)
                                           in cv["mae_difference_ci95"].items()) + ".", "",
                 (f"`auto_mix` uses the learned {', '.join(proven)} (better than the "
                  "heuristic with 95 % confidence) and keeps the heuristic's other decisions."
                  if beats else
                  "No target beats the heuristic with 95 % confidence, so `auto_mix` keeps "
                  "the heuristic mixer (`mixer = \"learned\"` in config.toml uses the model "
                  "anyway).")]
        metrics_text = "\n".join(rows)
    else:
        metrics_text = "No cross-validation was run (fewer than 3 songs)."
    return write_model_card(
        out.with_suffix(".md"), title=f"{out.name} — the learned mixer",
        summary="Predicts each track's level relative to the others, its distance from the "
                "centre, its reverb send and its high-pass from its role, the genre and its "
                "measured audio; read by `loopmind/generate/train/mixer.py` (numpy; the file "
                "holds weights and a JSON header, nothing executable). `LearnedMixer` keeps "
                "the heuristic's ducking and mud cut.",
        data=data, size=size, metrics=metrics_text,
        limits="Synth tracks (no audio to measure) teach pan but not levels. Project levels "
               "are fader gains on top of a sample's own loudness and ignore note velocities "
               "and density, so the level target is approximate. Reverb: only send amounts "
               "count; an insert reverb (most LMMS demos put one on a track at 100 % wet "
               "inside the plugin) says nothing about a send level and is left out. Pan is "
               "learned as distance from the centre; the side alternates by track name as in "
               "the heuristic. Most tracks of the LMMS demos are centred, so a mixer trained "
               "on them keeps most tracks centred. The stems-with-their-mix route "
               "(`stems_examples`: a folder of unmixed stems and mix.wav, per-stem gains by "
               "non-negative least squares) is not in the shipped data: LoopMind's own exports "
               "hold post-fader stems, which would only teach the heuristic back.",
        reproduce="```\n/work/shared/eval/build.sh /work/eval-data   # the LMMS demos\n"
                  "cd /work/main && PYTHONPATH=. /work/venv/bin/python "
                  "benchmarks/train_models.py mixer\n```\nor `loopmind train mixer DIR`.",
        device=device, train_time_s=seconds)

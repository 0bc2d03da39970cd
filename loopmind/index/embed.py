"""Embeddings for "find by sound": one fixed-length, L2-normalized vector per segment.

Three embedders share the ``Embedder`` protocol:

* ``FeatureEmbedder`` ("features", the default): numpy/scipy only, no download. A timbre block
  (the gain-independent ``role_features`` plus a coarse mel-spectrum shape, spectral contrast,
  the decay envelope at fixed times after the peak and the onset autocorrelation at a few
  lags), standardized with fixed constants shipped in ``models/embed.safetensors`` (computed
  by ``benchmarks/train_embed.py`` from synthetic General MIDI sounds, not from any user's
  library), concatenated with a role block: the square roots of the role model's calibrated
  probabilities (so the dot product of two role blocks is their Bhattacharyya coefficient).
  The role block weighs more, so neighbours play the same part in a track and the timbre block
  orders them within it, which is what a producer means by "more like this".
* ``ClapEmbedder`` ("clap"): LAION-CLAP audio and text embeddings from a local checkpoint, an
  optional extra (``pip install laion-clap`` beside torch) that is imported on first use only.

* ``LearnedEmbedder`` ("learned"): a small convolutional network trained on the user's own
  library with ``loopmind train embedder`` (``loopmind.generate.train.embedder``, torch on
  first use); without a usable checkpoint it falls back to "features" with a warning.

``get_embedder(name)`` returns one by name (None: the settings' default, "features").

Nothing heavy is imported here: the role model and the constants are read on the first
``embed`` call, torch and CLAP only when the "clap" embedder is asked for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from loopmind.errors import LoopMindError

DEFAULT_EMBEDDER = "features"
EMBED_SR = 22050
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
CONSTANTS_PATH = MODELS_DIR / "embed.safetensors"


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from an embedder.

    Attributes:
        name: the name ``get_embedder`` knows it by.
        dim: length of every vector.
        version: changes whenever the vectors for the same audio change, so stored vectors
            made by another version can be found and recomputed.
        supports_text: whether ``embed_text`` works.
    """

    name: str
    dim: int
    version: str
    supports_text: bool

    def embed(self, y: np.ndarray, *, sr: int, spec=None) -> np.ndarray:
        """The vector of a mono signal: float32, shape (dim,), unit L2 norm."""
        ...

    def embed_text(self, text: str) -> np.ndarray:
        """The vector of a text query in the same space (LoopMindError if not supported)."""
        ...


# -- the feature embedder ---------------------------------------------------------------------

_MAX_FRAMES = 2048                 # as role_features: the first ~47 s say what the sound is
_N_MEL_GROUPS = 16                 # 64 mel bands summed in groups of 4
_CONTRAST_EDGES_HZ = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 11025.0)
_CONTRAST_QUANTILE = 0.1           # peak/valley = mean of the top/bottom 10 % of a band's bins
_CONTRAST_MAX_FRAMES = 256         # contrast over at most 256 evenly spaced loud frames
_DECAY_TIMES_S = (0.01, 0.03, 0.06, 0.12, 0.25, 0.5, 1.0, 2.0)
_DECAY_FLOOR_DB = -60.0
_ENV_HOP_S = 0.005
_RHYTHM_LAG_EDGES_S = (0.1, 0.18, 0.32, 0.56, 1.0, 1.8)


def _extra_feature_names() -> list[str]:
    names = [f"mel_group{i}" for i in range(_N_MEL_GROUPS)]
    names += [f"contrast_{int(a)}-{int(b)}" for a, b in
              zip(_CONTRAST_EDGES_HZ[:-1], _CONTRAST_EDGES_HZ[1:])]
    names += [f"level_db_{int(t * 1000)}ms" for t in _DECAY_TIMES_S]
    names += [f"onset_ac_{a:g}-{b:g}s" for a, b in
              zip(_RHYTHM_LAG_EDGES_S[:-1], _RHYTHM_LAG_EDGES_S[1:])]
    return names


EXTRA_FEATURE_NAMES: tuple[str, ...] = tuple(_extra_feature_names())


def _loud_frames(spec) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the frames within 30 dB of the loudest, and their energy weights (sum 1)."""
    e = spec.power[:, :_MAX_FRAMES].sum(axis=0)
    emax = float(e.max()) if e.size else 0.0
    idx = np.flatnonzero(e > emax * 1e-3) if emax > 0 else np.zeros(0, dtype=int)
    w = e[idx] / max(float(e[idx].sum()), 1e-30)
    return idx, w


def _mel_shape(spec, idx: np.ndarray, w: np.ndarray) -> list[float]:
    """Log share of energy in 16 groups of mel bands (gain-independent spectral envelope)."""
    mel = spec.mel[:, idx]
    g = (mel @ w).reshape(_N_MEL_GROUPS, -1).sum(axis=1)
    return list(np.log10(g / max(float(g.sum()), 1e-30) + 1e-5))


def _contrast(spec, idx: np.ndarray, w: np.ndarray) -> list[float]:
    """Spectral contrast per octave band in dB: peaks over valleys (tonal vs noisy), / 10."""
    if len(idx) > _CONTRAST_MAX_FRAMES:
        keep = np.linspace(0, len(idx) - 1, _CONTRAST_MAX_FRAMES).round().astype(int)
        idx, w = idx[keep], w[keep] / w[keep].sum()
    # frames as rows (the STFT's own memory order: each band's sort runs along contiguous
    # memory); the log is monotone, so only the k smallest and largest magnitudes of a band
    # are taken to dB
    mag = spec.magnitude.T[idx]
    out = []
    for lo, hi in zip(_CONTRAST_EDGES_HZ[:-1], _CONTRAST_EDGES_HZ[1:]):
        a, b = np.searchsorted(spec.freqs, [lo, hi])
        band = mag[:, a:max(b, a + 2)]
        n = band.shape[1]
        k = max(1, int(round(n * _CONTRAST_QUANTILE)))
        band = np.sort(band, axis=1)  # (np.partition with two kth is 4x slower here)
        top = 20.0 * np.log10(band[:, -k:] + 1e-10)
        bottom = 20.0 * np.log10(band[:, :k] + 1e-10)
        c = top.mean(axis=1) - bottom.mean(axis=1)
        out.append(float(c @ w) / 10.0)
    return out


def _decay_levels(y: np.ndarray, sr: int, spec=None) -> list[float]:
    """Level in dB re the peak at fixed times after the peak (~5 ms RMS envelope), / 10."""
    from loopmind.library.analysis.features import hop_mean_square

    hop = max(16, int(round(sr * _ENV_HOP_S)))
    n = len(y) // hop
    if n < 1:
        return [_DECAY_FLOOR_DB / 10.0] * len(_DECAY_TIMES_S)
    e = hop_mean_square(y, sr, hop, spec)
    if n > 4:  # ~20 ms smoothing: one period of a low note must not read as a decay
        e = np.convolve(e, np.ones(4) / 4, mode="same")
    db = 10.0 * np.log10(np.maximum(e, 1e-12))
    peak = int(np.argmax(db))
    db = np.maximum(db - db[peak], _DECAY_FLOOR_DB)
    out = []
    for t in _DECAY_TIMES_S:
        i = peak + int(round(t * sr / hop))
        out.append(float(db[i]) / 10.0 if i < n else _DECAY_FLOOR_DB / 10.0)
    return out


def _onset_rhythm(spec) -> list[float]:
    """Highest normalized autocorrelation of the onset envelope within each lag range.

    Loops repeat at beat and bar lags; a one-shot's onset envelope does not repeat at all.
    """
    o = spec.onset_envelope[:_MAX_FRAMES].astype(np.float64)
    fr = spec.frame_rate
    out = [0.0] * (len(_RHYTHM_LAG_EDGES_S) - 1)
    if len(o) < 8 or o.max() <= 0:
        return out
    oc = o - o.mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(oc, 2 * len(oc))) ** 2)[: len(oc)]
    if ac[0] <= 0:
        return out
    ac = ac / ac[0]
    for k, (a, b) in enumerate(zip(_RHYTHM_LAG_EDGES_S[:-1], _RHYTHM_LAG_EDGES_S[1:])):
        lo, hi = int(round(a * fr)), int(round(b * fr))
        if lo < len(ac):
            out[k] = float(max(0.0, ac[lo:min(hi, len(ac))].max()))
    return out


def extra_features(y: np.ndarray, *, sr: int, spec) -> np.ndarray:
    """Timbre, envelope and rhythm features that ``role_features`` lacks.

    Args:
        y: mono float32 signal, shape (n,).
        sr: sample rate in Hz.
        spec: the ``Spectrogram`` of ``y``.

    Returns:
        float32 array of shape (len(EXTRA_FEATURE_NAMES),), gain-independent; zeros for
        silence.
    """
    idx, w = _loud_frames(spec)
    if len(idx) == 0:
        return np.zeros(len(EXTRA_FEATURE_NAMES), dtype=np.float32)
    feats = _mel_shape(spec, idx, w) + _contrast(spec, idx, w) + _decay_levels(y, sr, spec)
    feats += _onset_rhythm(spec)
    out = np.asarray(feats, dtype=np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


_CLIP = 4.0          # standardized values beyond ±4 (a 20-minute drone, DC) are clipped
ROLE_WEIGHT = 1.0    # role block (norm 1) against the timbre block (norm ~1); see similar.md
_FORMAT = 3          # bump when the layout or the arithmetic of the vector changes


def _timbre_feature_names() -> tuple[str, ...]:
    from loopmind.library.analysis.role import FEATURE_NAMES as ROLE_FEATURE_NAMES

    return tuple(ROLE_FEATURE_NAMES) + EXTRA_FEATURE_NAMES


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:10]


_SHIPPED = object()  # "the shipped role model" (distinct from None: no role block)


class FeatureEmbedder:
    """Timbre, envelope and rhythm features plus role probabilities; numpy and scipy only.

    Layout (``dim`` = 163): ``[timbre (147) / sqrt(147), ROLE_WEIGHT * sqrt(p_role) (16)]``,
    then L2-normalized. The timbre part is ``role_features`` (111) and ``extra_features``
    (36), standardized with the constants in ``models/embed.safetensors`` and clipped to ±4;
    ``p_role`` is the calibrated audio probability of each role from the role model (uniform
    for silence). Every feature is a ratio, a time or a shape, so the vector does not change
    with gain; leading silence (more than 60 dB below the peak) is skipped (the spectral
    features reuse the given Spectrogram's frames when they start within 1/8 hop of the sound),
    and audio at another rate is resampled to 22,050 Hz first.

    Args:
        constants_path: the standardization constants (default ``models/embed.safetensors``).
        role_model: a ``loopmind.library.analysis.role.RoleModel``; default the shipped one
            (``role.get_model()``); None leaves the role block at zero (timbre only).
        role_weight: weight of the role block.
    """

    name = "features"
    supports_text = False

    def __init__(self, *, constants_path: os.PathLike | str | None = None,
                 role_model=_SHIPPED, role_weight: float = ROLE_WEIGHT):
        from loopmind.library.analysis.role import ROLES

        self.constants_path = Path(CONSTANTS_PATH if constants_path is None else constants_path)
        self._role_model_arg = role_model
        self.role_weight = float(role_weight)
        self.n_timbre = len(_timbre_feature_names())
        self.n_roles = len(ROLES)
        self.dim = self.n_timbre + self.n_roles
        self._lock = threading.Lock()
        self._loaded = False
        self._version: str | None = None

    # -- lazy state -----------------------------------------------------------------------

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self.mean, self.scale = load_constants(self.constants_path)
            if self._role_model_arg is _SHIPPED:
                from loopmind.library.analysis import role as role_mod

                self.role_model = role_mod.get_model()
            else:
                self.role_model = self._role_model_arg
            self._loaded = True

    @property
    def version(self) -> str:
        """``features-<format>-<constants digest>-<role model digest or 'norole'>``.

        Retraining the role model or recomputing the constants changes the vectors, and so
        the version.
        """
        if self._version is None:
            if not self.constants_path.exists():
                raise LoopMindError(_missing_constants_message(self.constants_path))
            if self._role_model_arg is _SHIPPED:
                from loopmind.library.analysis import role as role_mod

                usable = role_mod.get_model() is not None
                role_tag = _file_digest(role_mod.MODEL_PATH) if usable else "norole"
            elif self._role_model_arg is None:
                role_tag = "norole"
            else:
                role_tag = "custom" + hex(id(self._role_model_arg))[-6:]
            self._version = (f"features-{_FORMAT}-{_file_digest(self.constants_path)}-"
                             f"{role_tag}-w{self.role_weight:g}")
        return self._version

    # -- vectors --------------------------------------------------------------------------

    def features(self, y: np.ndarray, *, sr: int, spec=None) -> tuple[np.ndarray, np.ndarray]:
        """The raw (unstandardized) role and extra features of a signal.

        Args:
            y: mono float32 signal, shape (n,).
            sr: its sample rate in Hz.
            spec: the shared ``Spectrogram`` of ``y`` (made here if None); its role features,
                when the analysis stage computed them, are reused.

        Returns:
            (role_features, extra_features): float32 arrays of shapes (111,) and (36,).
        """
        from loopmind.library.analysis.features import Spectrogram
        from loopmind.library.analysis.role import N_ENVELOPE, envelope_features, role_features

        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if not np.isfinite(y).all():
            y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
        if int(sr) != EMBED_SR:
            # the features are measured on the analysis grid so that vectors of the same
            # sound decoded at different rates stay comparable
            y, sr, spec = _resample(y, int(sr), EMBED_SR), EMBED_SR, None
        if spec is None:
            spec = Spectrogram(y, sr)
        # leading silence is not part of the sound, and the envelope features are fragile
        # right after digital silence: a copy with 50 ms of silence before must get (nearly)
        # the vector of the original. The time-domain features are measured from the first
        # sound sample. The spectral ones need STFT frames on a grid that starts there too;
        # when the frames of the shared spectrogram already start within an eighth of a hop
        # of it (2.9 ms: the grid then moves by less than the 5 ms envelope step), they are
        # reused, a column slice after whole hops of silence, and under one hop the role
        # features the analysis stage computed on this very spectrogram are kept. Otherwise
        # the trimmed signal gets its own STFT.
        start = _sound_start(y)
        hop = spec.hop_length
        k, rest = divmod(start, hop)
        if rest < _MAX_GRID_SHIFT_HOPS * hop:
            spec_start, spec = k * hop, spec.skip_frames(k)
        else:
            spec_start, spec = start, Spectrogram(y[start:], sr, n_fft=spec.n_fft,
                                                  hop_length=hop)
        f_role = role_features(y[spec_start:] if spec_start else y, sr=sr, spec=spec)
        if not f_role.any():  # silence
            return f_role, np.zeros(len(EXTRA_FEATURE_NAMES), dtype=np.float32)
        y = y[start:]
        if start > spec_start:
            f_role[:N_ENVELOPE] = envelope_features(y, sr=sr, spec=spec)
        return f_role, extra_features(y, sr=sr, spec=spec)

    def from_features(self, role_feats: np.ndarray, extra_feats: np.ndarray) -> np.ndarray:
        """Vectors from precomputed features (what ``embed`` does after ``features``).

        Args:
            role_feats: shape (111,) or (n, 111).
            extra_feats: shape (36,) or (n, 36).

        Returns:
            float32, shape (dim,) or (n, dim), unit L2 norm per row.
        """
        self._load()
        fr = np.atleast_2d(np.asarray(role_feats, dtype=np.float32))
        fe = np.atleast_2d(np.asarray(extra_feats, dtype=np.float32))
        f = np.concatenate([fr, fe], axis=1)
        z = np.clip((f - self.mean) / self.scale, -_CLIP, _CLIP) / np.sqrt(self.n_timbre)
        silent = ~fr.any(axis=1)
        p = np.full((len(f), self.n_roles), 1.0 / self.n_roles, dtype=np.float32)
        if self.role_model is not None and (~silent).any():
            p[~silent] = self.role_model.predict_proba(fr[~silent])
        roles = (self.role_weight * np.sqrt(np.maximum(p, 0.0))
                 if self.role_model is not None else np.zeros_like(p))
        v = np.concatenate([z, roles], axis=1).astype(np.float32)
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        v = np.where(norm > 0, v / np.maximum(norm, 1e-30), 1.0 / np.sqrt(self.dim))
        v = v.astype(np.float32)
        return v[0] if np.ndim(role_feats) == 1 else v

    def embed(self, y: np.ndarray, *, sr: int, spec=None) -> np.ndarray:
        """The vector of a mono signal.

        Args:
            y: mono float32 signal, shape (n,).
            sr: its sample rate in Hz (other rates than 22,050 are resampled first).
            spec: the shared ``Spectrogram`` of ``y`` (made here if None).

        Returns:
            float32 array of shape (dim,), unit L2 norm.
        """
        f_role, f_extra = self.features(y, sr=sr, spec=spec)
        return self.from_features(f_role, f_extra)

    def embed_text(self, text: str) -> np.ndarray:
        raise LoopMindError("the 'features' embedder cannot search by text; "
                            "use the 'clap' embedder for text queries")


_SILENCE_DB = -60.0  # samples this far below the peak, before the first louder one, are silence
_MAX_GRID_SHIFT_HOPS = 1 / 8  # STFT frames this far (in hops) from the sound start are reused


def _sound_start(y: np.ndarray) -> int:
    """Index of the first sample within 60 dB of the peak (0 for silence)."""
    if len(y) == 0:
        return 0
    peak = max(float(y.max()), -float(y.min()))
    if peak <= 0:
        return 0
    threshold = peak * 10.0 ** (_SILENCE_DB / 20.0)
    # the sound nearly always starts in the first block: no pass over the whole signal
    for a in range(0, len(y), 4096):
        hit = np.flatnonzero(np.abs(y[a:a + 4096]) > threshold)
        if len(hit):
            return a + int(hit[0])
    return 0


def _resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(y.astype(np.float64), sr_out // g, sr_in // g).astype(np.float32)


def _missing_constants_message(path: Path) -> str:
    return (f"embedding constants not found at {path}; reinstall LoopMind or rebuild them with "
            "benchmarks/train_embed.py")


def load_constants(path: os.PathLike | str = CONSTANTS_PATH) -> tuple[np.ndarray, np.ndarray]:
    """The standardization constants (mean, scale) of the feature embedder's timbre block.

    Raises:
        LoopMindError: the file is missing, corrupt, or made for another feature vector.
    """
    path = Path(path)
    if not path.exists():
        raise LoopMindError(_missing_constants_message(path))
    names = _timbre_feature_names()
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            mean = np.asarray(f.get_tensor("mean"), dtype=np.float32)
            scale = np.asarray(f.get_tensor("scale"), dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one error to the user
        raise LoopMindError(f"embedding constants at {path} are unreadable "
                            f"({type(exc).__name__}); rebuild them with "
                            "benchmarks/train_embed.py") from exc
    if tuple(json.loads(meta.get("features", "[]"))) != names:
        raise LoopMindError(f"embedding constants at {path} were made for another feature "
                            "vector; rebuild them with benchmarks/train_embed.py")
    if (mean.shape != (len(names),) or scale.shape != (len(names),)
            or not (np.isfinite(mean).all() and np.isfinite(scale).all())
            or (scale <= 0).any()):
        raise LoopMindError(f"embedding constants at {path} are malformed; rebuild them with "
                            "benchmarks/train_embed.py")
    return mean, scale


# -- LAION-CLAP (optional extra) --------------------------------------------------------------

CLAP_SR = 48000
CLAP_WINDOW_S = 10.0      # the non-fusion model sees 10 s; longer audio is embedded per window
CLAP_MAX_WINDOWS = 6      # the first minute is enough to say what a segment sounds like
CLAP_DIM = 512
CLAP_DEFAULT_AMODEL = "HTSAT-tiny"  # the 630k(-audioset) checkpoints; music ones: HTSAT-base


def _clap_installed() -> bool:
    return importlib.util.find_spec("laion_clap") is not None


def _setting(name: str) -> str | None:
    """A string setting: the settings object's attribute if it has one, else LOOPMIND_<NAME>."""
    from loopmind.config import get_settings

    value = getattr(get_settings(), name, None)
    if value is None or value == "":
        value = os.environ.get(f"LOOPMIND_{name.upper()}")
    return None if value in (None, "") else str(value)


class ClapEmbedder:
    """LAION-CLAP audio and text embeddings (512-d) from a local, non-fusion checkpoint.

    The checkpoint is never downloaded: pass its path (``LOOPMIND_CLAP_CHECKPOINT``). The
    text encoder's tokenizer (``roberta-base``) must already be in the Hugging Face cache;
    the hub is switched to offline mode before the model is built. torch and laion_clap are
    imported on the first ``embed`` or ``embed_text`` call.

    Args:
        checkpoint: path of a LAION-CLAP ``.pt`` checkpoint (e.g. ``630k-audioset-best.pt``).
        amodel: its audio encoder ("HTSAT-tiny" for the 630k checkpoints, "HTSAT-base" for
            the music ones); ``LOOPMIND_CLAP_AMODEL``.
    """

    name = "clap"
    dim = CLAP_DIM
    supports_text = True

    def __init__(self, checkpoint: os.PathLike | str, *, amodel: str = CLAP_DEFAULT_AMODEL):
        self.checkpoint = Path(checkpoint).expanduser()
        self.amodel = amodel
        self._model = None
        self._lock = threading.Lock()
        st = self.checkpoint.stat()
        tag = f"{self.checkpoint.name}:{st.st_size}:{st.st_mtime_ns}:{amodel}"
        self.version = f"clap-{amodel}-{hashlib.sha256(tag.encode()).hexdigest()[:10]}"

    @classmethod
    def from_settings(cls) -> "ClapEmbedder":
        """The embedder the settings describe.

        Raises:
            LoopMindError: laion-clap is not installed, or no readable checkpoint is set.
        """
        problems = []
        if not _clap_installed():
            problems.append("install the optional extra: pip install laion-clap (needs torch)")
        ckpt = _setting("clap_checkpoint")
        if ckpt is None:
            problems.append("set LOOPMIND_CLAP_CHECKPOINT to a downloaded LAION-CLAP checkpoint "
                            "(.pt, e.g. 630k-audioset-best.pt; LoopMind never downloads it)")
        elif not Path(ckpt).expanduser().is_file():
            problems.append(f"LOOPMIND_CLAP_CHECKPOINT points to {ckpt}, which is not a file")
        if problems:
            raise LoopMindError("the 'clap' embedder is unavailable: " + "; ".join(problems))
        return cls(ckpt, amodel=_setting("clap_amodel") or CLAP_DEFAULT_AMODEL)

    def _get_model(self):
        with self._lock:
            if self._model is None:
                # no hub access: the checkpoint is local, and the tokenizer must be cached
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    import laion_clap

                    model = laion_clap.CLAP_Module(enable_fusion=False, amodel=self.amodel)
                    try:
                        model.load_ckpt(str(self.checkpoint), verbose=False)
                    except TypeError:  # older laion_clap: no verbose argument
                        model.load_ckpt(str(self.checkpoint))
                except Exception as exc:  # noqa: BLE001 - one readable error for the user
                    first = str(exc).splitlines()[0][:200] if str(exc) else ""
                    raise LoopMindError(
                        f"could not load the CLAP checkpoint {self.checkpoint} with audio model "
                        f"{self.amodel} ({type(exc).__name__}: {first}); the roberta-base "
                        "tokenizer must be in the Hugging Face cache") from exc
                model.eval()
                self._model = model
            return self._model

    def embed(self, y: np.ndarray, *, sr: int, spec=None) -> np.ndarray:
        """The CLAP audio vector: 48 kHz, 10 s windows (at most 6) averaged by length.

        Args:
            y: mono float32 signal, shape (n,).
            sr: its sample rate in Hz.
            spec: ignored (CLAP computes its own mel spectrogram).

        Returns:
            float32 array of shape (512,), unit L2 norm.
        """
        import torch

        model = self._get_model()
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        y48 = _resample(y, int(sr), CLAP_SR) if int(sr) != CLAP_SR else y
        y48 = np.clip(np.nan_to_num(y48), -1.0, 1.0)
        if len(y48) == 0:
            y48 = np.zeros(CLAP_SR // 10, dtype=np.float32)
        win = int(CLAP_WINDOW_S * CLAP_SR)
        # windows no longer than the model's input: longer input would be cropped at random
        chunks = [y48[i:i + win] for i in range(0, len(y48), win)][:CLAP_MAX_WINDOWS]
        with torch.no_grad():
            e = np.asarray(model.get_audio_embedding_from_data(x=chunks, use_tensor=False),
                           dtype=np.float64)
        w = np.array([len(c) for c in chunks], dtype=np.float64)
        return _unit((e * w[:, None]).sum(axis=0))

    def embed_text(self, text: str) -> np.ndarray:
        """The CLAP text vector of a query such as "dusty vinyl kick": float32 (512,)."""
        import torch

        model = self._get_model()
        with torch.no_grad():
            # a batch of one is squeezed to the wrong shape by laion_clap's tokenizer wrapper
            e = model.get_text_embedding([text, text])
        return _unit(np.asarray(e, dtype=np.float64)[0])


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else np.full(len(v), 1.0 / np.sqrt(len(v)))).astype(np.float32)


# -- lookup -----------------------------------------------------------------------------------

EMBEDDERS: dict[str, str] = {
    "features": "timbre, envelope and rhythm features + role probabilities (default; no "
                "download)",
    "clap": "LAION-CLAP audio/text embeddings (optional extra laion-clap and a local "
            "checkpoint)",
    "learned": "a small network trained on your own library (`loopmind train embedder`; "
               "falls back to 'features' without a usable checkpoint)",
}
_INSTANCES: dict[str, Embedder] = {}
_INSTANCES_LOCK = threading.Lock()


def default_embedder_name() -> str:
    """The settings' embedder (``embedder``, env ``LOOPMIND_EMBEDDER``), else "features"."""
    return _setting("embedder") or DEFAULT_EMBEDDER


def get_embedder(name: str | None = None) -> Embedder:
    """The embedder called ``name`` (None: the settings' default), one instance per process.

    Raises:
        LoopMindError: unknown name, or the embedder's optional parts are missing.
    """
    key = (default_embedder_name() if name is None else str(name)).strip().lower()
    if key not in EMBEDDERS:
        raise LoopMindError(f"unknown embedder {key!r}; choose one of: "
                            + ", ".join(EMBEDDERS))
    with _INSTANCES_LOCK:
        if key not in _INSTANCES:
            if key == "learned":
                _INSTANCES[key] = _learned_or_features()
            else:
                _INSTANCES[key] = FeatureEmbedder() if key == "features" else \
                    ClapEmbedder.from_settings()
        return _INSTANCES[key]


def _learned_or_features() -> Embedder:
    """The learned embedder (``loopmind.generate.train.embedder``; torch runs it), or the
    feature embedder with a warning when there is no usable checkpoint (missing, of another
    version or of the wrong shape)."""
    import logging

    from loopmind.generate.train.common import ModelError
    from loopmind.generate.train.embedder import learned_embedder

    try:
        return learned_embedder()
    except ModelError as exc:
        logging.getLogger(__name__).warning("%s; using the 'features' embedder", exc)
        return FeatureEmbedder()

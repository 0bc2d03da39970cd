"""An optional neural path for textures: grains in the latent space of an EnCodec model.

The default path never needs this module: the signal textures (``textures.py``) do all the
work. With a local EnCodec checkpoint (no download at run time), the ``codec`` texture encodes
the user's sound to EnCodec's continuous latent frames (75 per second at 24 kHz), lays out a
new sequence of frames by seeded latent granular synthesis (runs of source frames, cross-faded
in the latent space, so the decoder smooths every joint), and decodes it. Sounds made this
way keep the source's timbre but are new audio, and unlike sample-domain grains they have no
window flutter.

Two checkpoint layouts load:

* the ``encodec`` package's own file (``encodec_24khz-d7cc33bc.th``), either that file or the
  folder holding it (``EncodecModel.encodec_model_24khz(repository=folder)``);
* a Hugging Face ``transformers`` EncodecModel folder (``config.json`` + weights), loaded with
  ``local_files_only=True``.

Errors are one-line ``LoopMindError``s: the package is missing, the path is missing, or the
weights do not fit the model.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from loopmind.errors import LoopMindError

CODEC_KIND = "codec"
ENCODEC_24KHZ_FILE = "encodec_24khz-d7cc33bc.th"

_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


class CodecError(LoopMindError):
    """The neural codec cannot be used (package or weights missing)."""


class _Codec:
    """A loaded model behind one interface: latent frames in, audio out (mono)."""

    def __init__(self, model: Any, kind: str) -> None:
        self.model = model
        self.kind = kind
        self.sample_rate = int(getattr(model, "sample_rate", None)
                               or model.config.sampling_rate)

    def encode(self, y: np.ndarray):
        """(n,) float at ``sample_rate`` -> latent tensor (1, dim, frames)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))[None, None, :]
        with torch.no_grad():
            return self.model.encoder(x)

    def decode(self, z) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model.decoder(z)
        return out[0, 0].cpu().numpy().astype(np.float32)


def load_codec(checkpoint: os.PathLike | str) -> _Codec:
    """Load (once per process) the EnCodec model at ``checkpoint``.

    Raises:
        CodecError: torch or the model's package is missing, the path does not exist, or the
            weights cannot be loaded.
    """
    path = Path(os.fsdecode(checkpoint)).expanduser()
    key = str(path.resolve()) if path.exists() else str(path)
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        if not path.exists():
            raise CodecError(f"codec checkpoint not found: {path}")
        try:
            import torch  # noqa: F401
        except ImportError:
            raise CodecError("the neural codec needs torch (pip install torch)") from None
        if path.is_dir() and (path / "config.json").exists():
            codec = _load_transformers(path)
        else:
            codec = _load_encodec(path)
        _MODELS[key] = codec
        return codec


def _load_encodec(path: Path) -> _Codec:
    try:
        from encodec import EncodecModel
    except ImportError:
        raise CodecError("the neural codec needs the encodec package "
                         "(pip install encodec)") from None
    folder = path if path.is_dir() else path.parent
    if path.is_file() and path.name != ENCODEC_24KHZ_FILE:
        # a renamed file: build the model and load its state dict ourselves
        import torch

        model = EncodecModel.encodec_model_24khz(pretrained=False)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - any unpickling or shape error
            raise CodecError(f"{path.name}: not an EnCodec 24 kHz checkpoint "
                             f"({str(exc).splitlines()[0][:120]})") from None
    else:
        if not (folder / ENCODEC_24KHZ_FILE).exists():
            raise CodecError(f"{folder} holds no {ENCODEC_24KHZ_FILE}")
        try:
            model = EncodecModel.encodec_model_24khz(pretrained=True, repository=folder)
        except Exception as exc:  # noqa: BLE001
            raise CodecError(f"cannot load EnCodec from {folder}: "
                             f"{str(exc).splitlines()[0][:120]}") from None
    model.eval()
    return _Codec(model, "encodec")


def _load_transformers(path: Path) -> _Codec:
    try:
        from transformers import EncodecModel
    except ImportError:
        raise CodecError("this codec folder needs the transformers package "
                         "(pip install transformers)") from None
    try:
        model = EncodecModel.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CodecError(f"cannot load EnCodec from {path}: "
                         f"{str(exc).splitlines()[0][:120]}") from None
    model.eval()
    return _Codec(model, "transformers")


def codec_texture(y: np.ndarray, *, sr: int, n_samples: int, seed: int = 0,
                  checkpoint: str | None = None, run_frames: tuple[int, int] = (6, 24),
                  xfade_frames: int = 4) -> np.ndarray:
    """A texture made by latent granular synthesis through a neural codec.

    Args:
        y: the source, float32, shape (2, n) or (n,), at ``sr``.
        sr: sample rate in Hz.
        n_samples: output length.
        seed: random seed.
        checkpoint: the local EnCodec checkpoint (file or folder).
        run_frames: (shortest, longest) run of consecutive source frames (at 75 frames/s).
        xfade_frames: latent cross-fade between runs.

    Returns:
        float32, shape (2, n_samples), at most ``textures.PEAK``.

    Raises:
        CodecError: no checkpoint given, or it cannot be loaded.
    """
    import torch
    from scipy.signal import resample_poly

    from loopmind.generate.interpret.textures import _finish, _rms, _stereo

    if not checkpoint:
        raise CodecError("the codec texture needs a local checkpoint")
    codec = load_codec(checkpoint)
    y = _stereo(y)
    csr = codec.sample_rate
    mono = resample_poly(y.mean(axis=0), csr, sr) if sr != csr else y.mean(axis=0)
    z = codec.encode(mono)  # (1, dim, frames)
    n_src = int(z.shape[-1])
    if n_src == 0:
        raise CodecError("the source is too short for the codec")
    hop = len(mono) / n_src  # codec samples per latent frame (320 at 24 kHz)
    n_out = int(np.ceil(n_samples / sr * csr / hop)) + 2
    rng = np.random.default_rng(seed)
    lo, hi = run_frames
    out = torch.zeros((1, z.shape[1], n_out), dtype=z.dtype)
    weight = torch.zeros(n_out, dtype=z.dtype)
    t = 0
    while t < n_out:
        run = int(rng.integers(lo, hi + 1))
        start = int(rng.integers(0, max(1, n_src - run)))
        seg = z[:, :, start:start + run]
        m = min(seg.shape[-1], n_out - t)
        ramp = torch.ones(m, dtype=z.dtype)
        k = min(xfade_frames, m // 2)
        if k:
            ramp[:k] = torch.linspace(0, 1, k + 2, dtype=z.dtype)[1:-1]
            ramp[m - k:] = torch.linspace(1, 0, k + 2, dtype=z.dtype)[1:-1]
        out[:, :, t:t + m] += seg[:, :, :m] * ramp
        weight[t:t + m] += ramp
        t += max(1, m - k)
    out = out / weight.clamp(min=1e-3)
    audio = codec.decode(out)
    if sr != csr:
        audio = resample_poly(audio, sr, csr)
    audio = audio[:n_samples]
    # a second decode of the same latents shifted by one frame gives the other channel: the
    # same sound, decorrelated, for width
    right = codec.decode(torch.roll(out, 1, dims=-1))
    if sr != csr:
        right = resample_poly(right, sr, csr)
    right = right[:n_samples]
    n = min(len(audio), len(right))
    stereo = np.stack([audio[:n], right[:n]])
    return _finish(stereo, n_samples, level_rms=_rms(y), fade_in_s=0.05, fade_out_s=0.05,
                   sr=sr)

"""The learned embedder: a small 1-D convolutional network on log-mel crops, trained on the user's
own library without labels.

Two crops of the same segment, each lightly augmented (time shift, frequency and time masks,
a one-bin mel shift, a spectral tilt, noise), are a positive pair; every other segment in the
batch is a negative (NT-Xent, as in SimCLR). The vector is the backbone's output (before the
projection head), L2-normalized; a segment longer than one crop is the mean of up to four
evenly spaced crops.

The front end is numpy (the same code for training and embedding): mono 22,050 Hz, leading
silence skipped as the feature embedder does, a 1024-point STFT with a 512 hop, 48 mel bands
(30 Hz-11 kHz), dB re the segment's loudest bin floored at -80 dB and scaled to 0..1, so the
vector does not change with gain. A crop is 64 frames (1.49 s); the first 256 frames (6 s) of a
segment are kept.

torch is imported only inside functions: ``get_embedder("learned")`` builds a
``LearnedEmbedder`` from the checkpoint the first time it embeds.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopmind.generate.train.common import (ModelError, TrainingDataError, TrainResult,
                                            find_checkpoint, load_checkpoint)

log = logging.getLogger(__name__)

NAME = "embedder"
VERSION = 1
SR = 22050
N_FFT = 1024
HOP = 512
N_MELS = 48
FMIN_HZ = 30.0
CROP = 64
MAX_FRAMES = 256
FLOOR_DB = -80.0
CHANNELS = (64, 96, 128)
KERNELS = (5, 3, 3)
DIM = 128
PROJ_DIM = 64
TEMPERATURE = 0.2
MIN_SEGMENTS = 48  # enough for a batch of negatives; a useful model wants thousands
EMBED_CROPS = 4
EPOCHS = 30
# the whole run (decoding included) stops training after this, so `loopmind train embedder`
# finishes within 10 minutes on a 2-core CPU even for a large library
DEFAULT_BUDGET_MINUTES = 9.0
FRONT_END = {"sr": SR, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS, "fmin_hz": FMIN_HZ,
             "crop": CROP, "max_frames": MAX_FRAMES, "floor_db": FLOOR_DB}


# -- front end (numpy) --------------------------------------------------------------------------

def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


_FB: np.ndarray | None = None


def mel_filterbank() -> np.ndarray:
    """Triangular HTK-mel filters, (N_MELS, N_FFT // 2 + 1), each normalized to unit area."""
    global _FB
    if _FB is None:
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / SR)
        edges = _mel_to_hz(np.linspace(_hz_to_mel(FMIN_HZ), _hz_to_mel(SR / 2), N_MELS + 2))
        fb = np.zeros((N_MELS, len(freqs)))
        for i in range(N_MELS):
            lo, mid, hi = edges[i:i + 3]
            up = (freqs - lo) / max(mid - lo, 1e-9)
            down = (hi - freqs) / max(hi - mid, 1e-9)
            fb[i] = np.maximum(0.0, np.minimum(up, down))
        fb /= np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)
        _FB = fb.astype(np.float32)
    return _FB


def log_mel(y: np.ndarray, *, sr: int) -> np.ndarray:
    """The scaled log-mel spectrogram of a mono signal.

    Args:
        y: mono signal, shape (n,).
        sr: its sample rate in Hz (resampled to 22,050 first when different).

    Returns:
        float32 (N_MELS, T), 1 <= T <= MAX_FRAMES, values 0 (80 dB or more below the loudest
        bin, or silence) .. 1 (the loudest bin).
    """
    from loopmind.index.embed import _resample, _sound_start

    y = np.nan_to_num(np.asarray(y, dtype=np.float32).reshape(-1))
    if int(sr) != SR:
        y = _resample(y, int(sr), SR)
    y = y[_sound_start(y):][: (MAX_FRAMES - 1) * HOP + N_FFT // 2]
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    y = np.pad(y, (N_FFT // 2, N_FFT // 2))
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP][:MAX_FRAMES]
    spec = np.abs(np.fft.rfft(frames * np.hanning(N_FFT).astype(np.float32), axis=1)) ** 2
    mel = mel_filterbank() @ spec.T.astype(np.float32)
    db = 10.0 * np.log10(np.maximum(mel, 1e-20))
    top = float(db.max())
    if top <= -190.0:  # digital silence
        return np.zeros_like(db, dtype=np.float32)
    return np.clip((db - top - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0).astype(np.float32)


def crops_for_embedding(m: np.ndarray) -> np.ndarray:
    """Up to EMBED_CROPS evenly spaced CROP-frame crops of ``m`` (padded with 0): (k, M, CROP)."""
    T = m.shape[1]
    if T <= CROP:
        return np.pad(m, ((0, 0), (0, CROP - T)))[None]
    k = min(EMBED_CROPS, int(math.ceil(T / CROP)))
    starts = np.linspace(0, T - CROP, k).round().astype(int)
    return np.stack([m[:, s:s + CROP] for s in starts])


# -- the network (torch, built on demand) -------------------------------------------------------

def _build_net():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers: list[nn.Module] = []
            c_in = N_MELS
            for i, (c, k) in enumerate(zip(CHANNELS, KERNELS)):
                layers += [nn.Conv1d(c_in, c, k, padding=k // 2), nn.BatchNorm1d(c), nn.ReLU()]
                if i < len(CHANNELS) - 1:
                    layers.append(nn.MaxPool1d(2))
                c_in = c
            self.features = nn.Sequential(*layers)
            self.embed = nn.Linear(2 * CHANNELS[-1], DIM)
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(DIM, DIM), nn.ReLU(),
                                      nn.Linear(DIM, PROJ_DIM))

        def forward(self, x):  # x: (B, N_MELS, CROP); mel bands are the input channels
            h = self.features(x)
            h = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
            return self.embed(h)

    return Net()


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The checkpoint's arrays (the network's state dict, batch-norm statistics included)."""
    shapes: dict[str, tuple[int, ...]] = {}
    c_in, j = N_MELS, 0
    for i, (c, k) in enumerate(zip(CHANNELS, KERNELS)):
        shapes[f"features.{j}.weight"] = (c, c_in, k)
        shapes[f"features.{j}.bias"] = (c,)
        for n in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"features.{j + 1}.{n}"] = (c,)
        j += 3 + (1 if i < len(CHANNELS) - 1 else 0)
        c_in = c
    shapes["embed.weight"] = (DIM, 2 * CHANNELS[-1])
    shapes["embed.bias"] = (DIM,)
    return shapes


def _export(net) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()
            if not k.startswith("head.") and not k.endswith("num_batches_tracked")}


# -- the Embedder -------------------------------------------------------------------------------

class LearnedEmbedder:
    """The ``Embedder`` protocol over a trained checkpoint (``settings.embedder = "learned"``).

    Args:
        path: the checkpoint (``models/embedder.safetensors`` or the user's).

    Raises:
        ModelError: missing, foreign, of another version or of the wrong shape.
    """

    name = "learned"
    dim = DIM
    supports_text = False

    def __init__(self, path: os.PathLike | str):
        self.path = Path(path)
        self.tensors, self.meta = load_checkpoint(self.path, model=NAME, version=VERSION,
                                                  shapes=expected_shapes())
        if self.meta.get("front_end") != FRONT_END:
            raise ModelError(f"{self.path.name} was trained on another spectrogram; retrain it "
                             "with `loopmind train embedder`")
        h = hashlib.sha256(self.path.read_bytes()).hexdigest()[:10]
        self.version = f"learned-{VERSION}-{h}"
        self._net = None
        self._lock = threading.Lock()

    def _model(self):
        import torch

        with self._lock:
            if self._net is None:
                net = _build_net()
                state = {k: torch.as_tensor(v) for k, v in self.tensors.items()}
                missing = net.load_state_dict(state, strict=False)
                if [k for k in missing.missing_keys if not k.startswith("head.")]:
                    raise ModelError(f"{self.path.name}: arrays missing: "
                                     f"{missing.missing_keys[:3]}")
                net.eval()
                self._net = net
            return self._net

    def embed_many(self, ys: list[np.ndarray], *, sr: int) -> np.ndarray:
        """Vectors of several mono signals: float32 (len(ys), DIM), unit norm."""
        import torch

        crops = [crops_for_embedding(log_mel(y, sr=sr)) for y in ys]
        x = torch.as_tensor(np.concatenate(crops))
        with torch.no_grad():
            e = self._model()(x).numpy().astype(np.float64)
        out, k = [], 0
        for c in crops:
            v = e[k:k + len(c)].mean(axis=0)
            k += len(c)
            n = float(np.linalg.norm(v))
            out.append(v / n if n > 0 else np.full(DIM, 1.0 / math.sqrt(DIM)))
        return np.asarray(out, dtype=np.float32)

    def embed(self, y: np.ndarray, *, sr: int, spec=None) -> np.ndarray:
        """The vector of a mono signal: float32 (DIM,), unit L2 norm (``spec`` is ignored)."""
        return self.embed_many([y], sr=sr)[0]

    def embed_text(self, text: str) -> np.ndarray:
        from loopmind.errors import LoopMindError

        raise LoopMindError("the 'learned' embedder cannot search by text; use the 'clap' "
                            "embedder for text queries")


def learned_embedder(settings=None) -> LearnedEmbedder:
    """The learned embedder of the user's (else the shipped) checkpoint.

    Raises:
        ModelError: no checkpoint, or one that is refused.
    """
    path = find_checkpoint(NAME, settings)
    if path is None:
        raise ModelError("no learned embedder yet: train one with `loopmind train embedder`")
    return LearnedEmbedder(path)


# -- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentRef:
    """A segment to learn from: a file and the span in it (seconds; end None = to the end)."""

    path: str
    start_s: float = 0.0
    end_s: float | None = None


def library_segments(library, folder: os.PathLike | str | None = None) -> list[SegmentRef]:
    """Every indexed segment of the library (or of the files under ``folder``)."""
    from sqlmodel import select

    from loopmind.library.models import AudioFile, Segment

    prefix = os.path.abspath(os.fspath(folder)) + os.sep if folder else None
    with library.session() as s:
        rows = s.exec(select(Segment.start_s, Segment.end_s, AudioFile.path_bytes)
                      .join(AudioFile, Segment.file_id == AudioFile.id)
                      .where(AudioFile.status == "ok")
                      .order_by(Segment.id)).all()
    out = []
    for start, end, pb in rows:
        path = os.fsdecode(pb)
        if prefix is None or path.startswith(prefix):
            out.append(SegmentRef(path, float(start), float(end)))
    return out


def spectrograms(segments: list[SegmentRef], *, warnings: list[str] | None = None,
                 progress=None) -> list[np.ndarray]:
    """Log-mels of the segments (each file decoded once); unreadable files are skipped with a
    warning."""
    from loopmind.library.audio import decode

    warnings = warnings if warnings is not None else []
    by_file: dict[str, list[SegmentRef]] = {}
    for seg in segments:
        by_file.setdefault(seg.path, []).append(seg)
    out: list[np.ndarray] = []
    done = 0
    for path, segs in by_file.items():
        try:
            y = decode(path, sr=SR).y
        except Exception as exc:  # noqa: BLE001 - a file gone or broken since indexing
            warnings.append(f"{os.path.basename(path)}: {exc}")
            done += len(segs)
            continue
        for seg in segs:
            a = int(seg.start_s * SR)
            b = len(y) if seg.end_s is None else int(seg.end_s * SR)
            m = log_mel(y[a:b], sr=SR)
            if m.any():
                out.append(m.astype(np.float16))
        done += len(segs)
        if progress is not None:
            progress(done, len(segments), {"stage": "spectrograms"})
    return out


# -- training (torch) ---------------------------------------------------------------------------

def _random_crops(mels: list[np.ndarray], idx: np.ndarray, rng: np.random.Generator
                  ) -> np.ndarray:
    """One random CROP-frame crop per segment (a short one padded, shifted by 0-2 frames)."""
    out = np.zeros((len(idx), N_MELS, CROP), np.float32)
    for k, i in enumerate(idx):
        m = mels[i]
        T = m.shape[1]
        if T <= CROP:
            s = int(rng.integers(0, 3))
            n = min(T, CROP - s)
            out[k, :, s:s + n] = m[:, :n]
        else:
            a = int(rng.integers(0, T - CROP + 1))
            out[k] = m[:, a:a + CROP]
    return out


def _augment(x, gen):
    """Light augmentation of a batch (B, M, T) in torch: mel shift, tilt, masks, noise."""
    import torch

    B, M, T = x.shape
    x = x.clone()
    shift = torch.randint(-1, 2, (B,), generator=gen)
    for s in (-1, 1):
        sel = shift == s
        if sel.any():
            x[sel] = torch.roll(x[sel], s, dims=1)
            x[sel, 0 if s == 1 else -1] = 0.0
    tilt = (torch.rand(B, 1, 1, generator=gen) - 0.5) * 0.1
    x = x + tilt * torch.linspace(-1, 1, M)[None, :, None]
    for _ in range(1):
        w = torch.randint(0, 7, (B,), generator=gen)
        f0 = torch.randint(0, M - 6, (B,), generator=gen)
        mask = (torch.arange(M)[None] >= f0[:, None]) & (torch.arange(M)[None] < (f0 + w)[:, None])
        x = x.masked_fill(mask[:, :, None], 0.0)
        w = torch.randint(0, 7, (B,), generator=gen)
        t0 = torch.randint(0, T - 6, (B,), generator=gen)
        mask = (torch.arange(T)[None] >= t0[:, None]) & (torch.arange(T)[None] < (t0 + w)[:, None])
        x = x.masked_fill(mask[:, None, :], 0.0)
    x = x + 0.02 * torch.randn(x.shape, generator=gen)
    return x.clamp(0.0, 1.0)


def nt_xent(z1, z2, temperature: float = TEMPERATURE):
    """NT-Xent loss of two views (B, D): each view's positive is the other view of its row."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    n = len(z1)
    sim.fill_diagonal_(-1e9)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def fit(mels: list[np.ndarray], *, epochs: int = EPOCHS, batch_size: int = 128, seed: int = 0,
        lr: float = 2e-3, device: str = "cpu", budget=None, progress=None
        ) -> tuple[dict[str, np.ndarray], dict]:
    """Contrastive training on precomputed log-mels.

    Returns:
        (the arrays to save, {"epochs": epochs run, "steps": ..., "loss": last epoch's mean}).
    """
    import torch

    from loopmind.generate.train.common import seed_everything

    seed_everything(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    net = _build_net().to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = len(mels)
    batch_size = min(batch_size, n)
    steps_per_epoch = max(1, n // batch_size)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total,
                                                pct_start=0.1)
    done = 0
    last = float("nan")
    epochs_run = 0
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(n)
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            base = torch.as_tensor(_random_crops(mels, idx, rng))
            other = torch.as_tensor(_random_crops(mels, idx, rng))
            v1, v2 = _augment(base, gen).to(device), _augment(other, gen).to(device)
            loss = nt_xent(net.head(net(v1)), net.head(net(v2)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if done < total - 1:
                sched.step()
            done += 1
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(done, total, {"epoch": epoch + 1, "loss": f"{np.mean(losses):.3f}"})
            if budget is not None and budget.exhausted:
                break
        last = float(np.mean(losses))
        epochs_run = epoch + 1
        if budget is not None and budget.exhausted:
            break
    net.eval()
    return _export(net), {"epochs": epochs_run, "steps": done, "loss": last,
                          "stopped_by_budget": done < total}


@dataclass(kw_only=True)
class EmbedderResult(TrainResult):
    n_segments: int

    def summary_lines(self) -> list[str]:
        m = self.metrics
        lines = [f"{self.n_segments} segments, {m['epochs']} epochs ({m['steps']} steps), "
                 f"final loss {m['loss']:.3f}"]
        if "precision_at_10" in m:
            lines.append(f"precision@10 {m['precision_at_10']:.3f}")
        lines.append("use it with embedder = \"learned\" in config.toml (or "
                     "LOOPMIND_EMBEDDER=learned), then `loopmind index`")
        return lines


def too_little_message(n: int, where: str) -> str:
    return (f"embedder: {n} segment{'s' if n != 1 else ''} found in {where}; at least "
            f"{MIN_SEGMENTS} are needed (index more audio with `loopmind add`)")


def train_on_segments(segments: list[SegmentRef], *, out: os.PathLike | str | None = None,
                      epochs: int | None = None,
                      budget_minutes: float | None = DEFAULT_BUDGET_MINUTES,
                      seed: int = 0, batch_size: int = 128, device: str | None = None,
                      quiet: bool = False, where: str = "the library", data_note: str = "",
                      card: bool = True) -> EmbedderResult:
    """Decode, train within the budget, save and write the card.

    The budget covers the whole run (decoding included); training stops at the end of the
    step that exhausts it, so a run finishes within the budget plus one step and the save.

    Raises:
        TrainingDataError: fewer than ``MIN_SEGMENTS`` usable segments.
    """
    import time

    from loopmind.generate.train.common import (Budget, pick_device, progress_bar,
                                                save_checkpoint, user_models_dir)

    t0 = time.monotonic()
    if len(segments) < MIN_SEGMENTS:
        raise TrainingDataError(too_little_message(len(segments), where))
    budget = Budget(budget_minutes)
    warnings: list[str] = []
    with progress_bar("embedder: spectrograms", len(segments), quiet=quiet) as bar:
        mels = spectrograms(segments, warnings=warnings, progress=bar)
    t_front = time.monotonic() - t0
    if len(mels) < MIN_SEGMENTS:
        raise TrainingDataError(too_little_message(len(mels), where) + " (the others are "
                                "silent or unreadable)")
    device = pick_device(device)
    epochs = epochs or EPOCHS
    with progress_bar("embedder: training", epochs * max(1, len(mels) // min(batch_size,
                                                                                 len(mels))),
                      quiet=quiet) as bar:
        tensors, stats = fit(mels, epochs=epochs, batch_size=batch_size, seed=seed,
                             device=device, budget=budget, progress=bar)
    out = Path(out) if out else user_models_dir() / f"{NAME}.safetensors"
    seconds = time.monotonic() - t0
    metrics = {**stats, "segments": len(mels), "spectrogram_s": round(t_front, 1),
               "total_s": round(seconds, 1)}
    save_checkpoint(out, tensors, model=NAME, version=VERSION, front_end=FRONT_END,
                    features={"channels": list(CHANNELS), "dim": DIM}, metrics=metrics)
    card_path = out.with_suffix(".md")
    if card:
        write_card(out, metrics=metrics, tensors=tensors, device=device, where=where,
                   data_note=data_note)
    return EmbedderResult(path=out, card=card_path, metrics=metrics, n_segments=len(mels),
                       seconds=seconds, warnings=warnings)


def train(library, *, folder: os.PathLike | str | None = None, **kwargs) -> EmbedderResult:
    """``loopmind train embedder [DIR]``: the library's segments (those under DIR)."""
    segments = library_segments(library, folder)
    where = str(folder) if folder else f"the library ({library.settings.db_path})"
    return train_on_segments(segments, where=where, **kwargs)


def write_card(out: Path, *, metrics: dict, tensors, device: str, where: str,
               data_note: str = "", extra_metrics: str = "") -> Path:
    from loopmind.generate.train.common import n_parameters, write_model_card

    n = n_parameters(tensors)
    data = (f"{metrics['segments']} segments of {where}, no labels: two augmented crops of "
            "the same segment are a positive pair, the other segments of the batch negatives.")
    if data_note:
        data += "\n\n" + data_note
    size = (f"{n} parameters ({n * 4} bytes float32; the projection head used in training is "
            f"not saved): {len(CHANNELS)} 1-D conv blocks over time with the {N_MELS} mel bands "
            f"as input channels ({', '.join(map(str, CHANNELS))} channels, kernels "
            f"{', '.join(map(str, KERNELS))}, batch norm, ReLU, max pool 2) on a {CROP}-frame "
            f"crop, mean and max pooling over time, a linear layer to {DIM} numbers. NT-Xent, "
            f"temperature {TEMPERATURE}, "
            f"{metrics['epochs']} epochs ({metrics['steps']} steps of batches of up to 128).")
    text = (f"Final training loss {metrics['loss']:.3f}. Spectrograms "
            f"{metrics['spectrogram_s']} s, whole run {metrics['total_s']} s.")
    if extra_metrics:
        text += "\n\n" + extra_metrics
    return write_model_card(
        out.with_suffix(".md"), title=f"{out.name} — the learned embedder",
        summary="A sound embedding learned from a library's own segments; used when "
                "`embedder = \"learned\"` (config.toml or LOOPMIND_EMBEDDER). Read by "
                "`loopmind/generate/train/embedder.py` (the file holds weights and a JSON "
                "header, nothing executable; torch runs the network).",
        data=data, size=size, metrics=text,
        limits="Self-supervised: it learns what makes a sound recognisable as itself, which "
               "only partly matches what a producer means by \"similar\" (same role).",
        reproduce="`loopmind train embedder` (your library), or `PYTHONPATH=. "
                  "/work/venv/bin/python benchmarks/train_models.py embedder` for the "
                  "benchmark run.", device=device, train_time_s=metrics["total_s"])

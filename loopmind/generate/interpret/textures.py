"""Pads, textures, risers and swells made from a user's sound.

Every function takes a source ``y`` (float32, shape (2, n), already at the song's rate and in
its key) and returns exactly ``n_samples`` samples of new audio, shape (2, n_samples), float32,
peaking at most at ``PEAK`` (about -1 dBFS). All randomness comes from ``seed``, so the same
source, parameters and seed give bit-identical audio. None of them copies the source: grains
are short, re-pitched and scattered, and the spectral processes keep only magnitudes (every
frame gets new random phases), so no output bar correlates with a source bar.

Kinds (``Clip.texture["kind"]``):

* ``granular``: a seeded grain cloud (grain size, density, pitch scatter over chord tones,
  window, stereo spread).
* ``freeze``: spectral freeze/smear: magnitudes averaged over a few frames around seeded points
  of the source, cross-faded from one snapshot to the next, resynthesised with random phases.
* ``stretch``: a very long time-stretch (the paulstretch method: windowed frames read slowly
  through the source, random phases).
* ``riser``: the source smeared, then swept up in pitch (an octave by default) with an opening
  low-pass and a rising gain; it ends at full level on the clip's last sample (the bar line of
  the drop).
* ``swell``: a reverse swell: the source's smeared tail reversed, rising into the bar line.
* ``codec``: optional, latent granular synthesis through a local EnCodec checkpoint
  (``codec.py``; ``{"kind": "codec", "checkpoint": path}``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

TEXTURE_VERSION = 2  # bump whenever a texture's audio would change for the same spec
TEXTURE_KINDS = ("granular", "freeze", "stretch", "riser", "swell")
# kinds a clip may name: the signal ones and the optional neural one (``codec.py``, needs a
# local checkpoint; never chosen unless one is configured)
ALL_KINDS = TEXTURE_KINDS + ("codec",)
PEAK = 0.89  # -1 dBFS: a texture never clips on its own
_MIN_SOURCE = 64  # samples: below this there is nothing to process
_EDGE_FADE_S = 0.01


def render_texture(y: np.ndarray, *, sr: int, n_samples: int,
                   spec: dict[str, Any]) -> np.ndarray:
    """Turn a source into ``n_samples`` of the texture ``spec`` names.

    Args:
        y: the source, float32, shape (2, n) or (n,).
        sr: sample rate in Hz.
        n_samples: output length in samples.
        spec: ``{"kind": one of TEXTURE_KINDS, "seed": int, ...}``; other keys are the kind's
            keyword parameters (unknown ones are ignored).

    Returns:
        float32, shape (2, n_samples).

    Raises:
        ValueError: an unknown kind.
    """
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "codec":  # the optional neural path (codec.py), only when a clip asks for it
        from loopmind.generate.interpret.codec import codec_texture

        return codec_texture(y, sr=sr, n_samples=int(n_samples), seed=int(spec.get("seed", 0)),
                             checkpoint=spec.get("checkpoint"))
    fn = _KINDS.get(kind)
    if fn is None:
        raise ValueError(f"unknown texture {kind!r}; one of: {', '.join(TEXTURE_KINDS)}")
    import inspect

    allowed = set(inspect.signature(fn).parameters) - {"y", "sr", "n_samples"}
    kwargs = {k: v for k, v in spec.items() if k in allowed}
    kwargs["seed"] = int(spec.get("seed", 0))
    return fn(y, sr=sr, n_samples=int(n_samples), **kwargs)


# -- helpers ---------------------------------------------------------------------------------

def _stereo(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = np.stack([y, y])
    if y.shape[1] < _MIN_SOURCE:
        y = np.pad(y, ((0, 0), (0, _MIN_SOURCE - y.shape[1])))
    return y


def _finish(out: np.ndarray, n_samples: int, *, level_rms: float, fade_in_s: float,
            fade_out_s: float, sr: int) -> np.ndarray:
    """Exact length, the source's loudness (RMS), edge fades, at most ``PEAK``."""
    out = np.asarray(out[:, :n_samples], dtype=np.float64)
    if out.shape[1] < n_samples:
        out = np.pad(out, ((0, 0), (0, n_samples - out.shape[1])))
    rms = float(np.sqrt(np.mean(out ** 2))) if out.size else 0.0
    if rms > 0 and level_rms > 0:
        out *= level_rms / rms
    n_in = min(n_samples, int(fade_in_s * sr))
    n_out = min(n_samples, int(fade_out_s * sr))
    if n_in:
        out[:, :n_in] *= np.linspace(0.0, 1.0, n_in, endpoint=False)[None, :] ** 2
    if n_out:
        out[:, n_samples - n_out:] *= np.linspace(1.0, 0.0, n_out)[None, :] ** 2
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > PEAK:
        out *= PEAK / peak
    return np.ascontiguousarray(out, dtype=np.float32)


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(y, dtype=np.float64) ** 2))) if y.size else 0.0


def _window(kind: str, n: int) -> np.ndarray:
    if kind == "triangle":
        return np.bartlett(n)
    if kind == "tukey":
        from scipy.signal.windows import tukey

        return tukey(n, 0.5)
    if kind == "gauss":
        t = np.linspace(-1.0, 1.0, n)
        return np.exp(-0.5 * (t / 0.4) ** 2)
    return np.hanning(n)


def _random_phase_frames(mags: np.ndarray, rng: np.random.Generator, win: np.ndarray,
                         hop: int, n_out: int) -> np.ndarray:
    """Overlap-add resynthesis of magnitude frames (n_frames, n_fft // 2 + 1) with random
    phases and a synthesis window, normalised by the summed squared window. Shape (n_out,)."""
    n_fft = len(win)
    n_frames = mags.shape[0]
    phases = rng.uniform(0.0, 2.0 * np.pi, size=mags.shape)
    frames = np.fft.irfft(mags * np.exp(1j * phases), n=n_fft, axis=1) * win[None, :]
    total = (n_frames - 1) * hop + n_fft
    out = np.zeros(total)
    norm = np.zeros(total)
    w2 = win ** 2
    for i in range(n_frames):
        a = i * hop
        out[a:a + n_fft] += frames[i]
        norm[a:a + n_fft] += w2
    out /= np.maximum(norm, 1e-3 * w2.max())
    # start half a window in, where the overlap is full
    start = n_fft // 2
    seg = out[start:start + n_out]
    return np.pad(seg, (0, max(0, n_out - len(seg))))


def _frames_at(x: np.ndarray, positions: np.ndarray, n_fft: int) -> np.ndarray:
    """Frames of ``x`` (mono) starting at ``positions`` (zero beyond the end)."""
    xp = np.pad(x, (0, n_fft))
    idx = positions[:, None].astype(np.int64) + np.arange(n_fft)[None, :]
    return xp[np.clip(idx, 0, len(xp) - 1)]


def _paul(x: np.ndarray, n_out: int, rng: np.random.Generator, *, n_fft: int,
          positions: np.ndarray | None = None) -> np.ndarray:
    """Paulstretch one channel to ``n_out`` samples: frames read at ``positions`` (evenly
    through the source by default), magnitudes only, random phases. Shape (n_out,)."""
    hop = n_fft // 4
    n_frames = int(np.ceil((n_out + n_fft) / hop)) + 1
    if positions is None:
        positions = np.linspace(0, max(0, len(x) - n_fft), n_frames)
    win = np.hanning(n_fft)
    mags = np.abs(np.fft.rfft(_frames_at(x, positions, n_fft) * win[None, :], axis=1))
    return _random_phase_frames(mags, rng, win, hop, n_out)


def _fft_size(sr: int, window_s: float, n_src: int) -> int:
    n = int(2 ** round(np.log2(max(256, window_s * sr))))
    # a short source still gets frames of a useful size (it is zero-padded)
    return max(256, min(n, 1 << 16))


# -- the processes ---------------------------------------------------------------------------

def granular(y: np.ndarray, *, sr: int, n_samples: int, seed: int = 0, grain_s: float = 0.09,
             density: float = 30.0, pitches: tuple[float, ...] | list[float] = (0, 0, 12, -12, 7),
             window: str = "hann", spread: float = 0.7, scan: float = 0.35) -> np.ndarray:
    """A grain cloud from the source.

    Args:
        y: source, shape (2, n).
        sr: sample rate in Hz.
        n_samples: output length.
        seed: random seed.
        grain_s: grain length in seconds (each grain varies by +-30 %).
        density: grains per second.
        pitches: semitone offsets grains are drawn from (the chord tones: root, octaves,
            fifth by default), so the cloud stays in the source's harmony.
        window: grain envelope: hann, triangle, tukey or gauss.
        spread: 0..1 stereo spread of the grains.
        scan: 0..1, how closely grain positions follow the output time through the source
            (0: anywhere, 1: in order); the rest is random jitter.

    Returns:
        float32, shape (2, n_samples).
    """
    y = _stereo(y)
    rng = np.random.default_rng(seed)
    n_src = y.shape[1]
    out = np.zeros((2, n_samples + int(2 * grain_s * sr) + 8))
    n_grains = max(1, int(round(density * n_samples / sr)))
    times = np.sort(rng.uniform(0, n_samples, n_grains)).astype(np.int64)
    pitches = np.asarray(list(pitches) or [0.0], dtype=float)
    for t in times:
        g_len = max(16, int(grain_s * sr * rng.uniform(0.7, 1.3)))
        ratio = 2.0 ** (float(rng.choice(pitches)) / 12.0)
        need = int(np.ceil(g_len * ratio)) + 2
        follow = t / max(1, n_samples) * max(0, n_src - need)
        anywhere = rng.uniform(0, max(1, n_src - need))
        pos = int(scan * follow + (1 - scan) * anywhere)
        pos = max(0, min(pos, max(0, n_src - need)))
        read = pos + np.arange(g_len) * ratio
        env = _window(window, g_len) * rng.uniform(0.6, 1.0)
        pan = float(np.clip(rng.normal(0.0, 0.5 * spread), -1, 1))
        gains = (np.sqrt(0.5 * (1 - pan)), np.sqrt(0.5 * (1 + pan)))
        xs = np.arange(n_src)
        for c in range(2):
            grain = np.interp(read, xs, y[c], right=0.0) * env
            out[c, t:t + g_len] += gains[c] * grain * np.sqrt(2.0)
    return _finish(out, n_samples, level_rms=_rms(y), fade_in_s=0.05, fade_out_s=0.05, sr=sr)


def spectral_freeze(y: np.ndarray, *, sr: int, n_samples: int, seed: int = 0,
                    window_s: float = 0.1, smear: int = 6, snapshots: int = 0) -> np.ndarray:
    """Spectral freeze and smear: magnitudes averaged over ``smear`` frames around seeded
    points of the source, held and cross-faded from one snapshot to the next, resynthesised
    with random phases (each channel its own phases, so the result is wide).

    Args:
        window_s: analysis window (about 0.1 s: smooth, no pre-echo to speak of).
        smear: frames averaged into each snapshot.
        snapshots: how many frozen moments the output moves through (0: one per 2 s).

    Returns:
        float32, shape (2, n_samples).
    """
    y = _stereo(y)
    rng = np.random.default_rng(seed)
    n_fft = _fft_size(sr, window_s, y.shape[1])
    hop = n_fft // 4
    n_frames = int(np.ceil((n_samples + n_fft) / hop)) + 1
    k = snapshots or max(2, int(round(n_samples / sr / 2.0)))
    span = max(1, y.shape[1] - n_fft)
    centres = np.sort(rng.uniform(0, span, k))
    win = np.hanning(n_fft)
    out = np.zeros((2, n_samples))
    # the frame index where each snapshot is fully present; linear cross-fades between
    anchors = np.linspace(0, n_frames - 1, k)
    for c in range(2):
        snaps = []
        for centre in centres:
            pos = np.clip(centre + (np.arange(smear) - smear / 2) * hop / 2, 0, span)
            mags = np.abs(np.fft.rfft(_frames_at(y[c], pos, n_fft) * win[None, :], axis=1))
            snaps.append(mags.mean(axis=0))
        snaps_a = np.array(snaps)
        idx = np.arange(n_frames)
        frame_mags = np.empty((n_frames, snaps_a.shape[1]))
        for f in range(snaps_a.shape[1]):
            frame_mags[:, f] = np.interp(idx, anchors, snaps_a[:, f])
        out[c] = _random_phase_frames(frame_mags, rng, win, hop, n_samples)
    return _finish(out, n_samples, level_rms=_rms(y), fade_in_s=0.08, fade_out_s=0.08, sr=sr)


def time_stretch(y: np.ndarray, *, sr: int, n_samples: int, seed: int = 0,
                 window_s: float = 0.25) -> np.ndarray:
    """A very long time-stretch (paulstretch): the whole source spread over ``n_samples``.

    Returns:
        float32, shape (2, n_samples).
    """
    y = _stereo(y)
    rng = np.random.default_rng(seed)
    n_fft = _fft_size(sr, window_s, y.shape[1])
    out = np.stack([_paul(y[c], n_samples, rng, n_fft=n_fft) for c in range(2)])
    return _finish(out, n_samples, level_rms=_rms(y), fade_in_s=0.08, fade_out_s=0.08, sr=sr)


def riser(y: np.ndarray, *, sr: int, n_samples: int, seed: int = 0, octaves: float = 1.0,
          start_hz: float = 300.0, end_hz: float = 14000.0, start_db: float = -30.0,
          window_s: float = 0.1) -> np.ndarray:
    """A riser: the source smeared to a sustained wash, read faster and faster so its pitch
    climbs ``octaves``, through a low-pass opening from ``start_hz`` to ``end_hz`` and a gain
    rising from ``start_db`` to 0 dB. It is loudest on its last samples (the drop's bar line).

    Returns:
        float32, shape (2, n_samples).
    """
    from scipy.signal import istft, stft

    y = _stereo(y)
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / max(1, n_samples)
    # the playback rate rises exponentially, faster near the end
    rate = 2.0 ** (octaves * t ** 1.5)
    read = np.concatenate([[0.0], np.cumsum(rate)[:-1]])
    n_wash = int(np.ceil(read[-1])) + 4
    n_fft = _fft_size(sr, window_s, y.shape[1])
    out = np.zeros((2, n_samples))
    for c in range(2):
        wash = _paul(y[c], n_wash, rng, n_fft=n_fft)
        out[c] = np.interp(read, np.arange(n_wash), wash)
    nper = 2048
    f, tt, z = stft(out, fs=sr, nperseg=nper, noverlap=nper * 3 // 4, boundary="even")
    frac = np.clip(tt / max(1e-9, n_samples / sr), 0.0, 1.0)
    cutoff = start_hz * (end_hz / start_hz) ** (frac ** 1.5)
    mask = 1.0 / np.sqrt(1.0 + (f[:, None] / cutoff[None, :]) ** 4)
    _, out = istft(z * mask[None, :, :], fs=sr, nperseg=nper, noverlap=nper * 3 // 4,
                   boundary=True)
    out = out[:, :n_samples]
    if out.shape[1] < n_samples:
        out = np.pad(out, ((0, 0), (0, n_samples - out.shape[1])))
    gain_db = start_db * (1.0 - t) ** 2
    out = out * (10.0 ** (gain_db / 20.0))[None, :]
    # level: the end of the riser sits at the source's loudness
    tail = out[:, -min(n_samples, sr // 4):]
    level = _rms(y) / max(_rms(tail), 1e-9) * _rms(out)
    return _finish(out, n_samples, level_rms=level, fade_in_s=0.02, fade_out_s=0.003, sr=sr)


def reverse_swell(y: np.ndarray, *, sr: int, n_samples: int, seed: int = 0,
                  decay: float = 3.0, window_s: float = 0.08,
                  attack_s: float = 0.35) -> np.ndarray:
    """A reverse swell: the source's attack followed by its own smeared, decaying tail (a
    reverb-like wash), all reversed, so the wash grows and the attack, played backwards, lands
    on the bar line where the clip ends (a reversed crash or impact).

    Args:
        decay: how fast the tail dies, in e-folds over the clip (bigger: a steeper swell).
        attack_s: how much of the source's own start is kept before its tail.

    Returns:
        float32, shape (2, n_samples).
    """
    y = _stereo(y)
    rng = np.random.default_rng(seed)
    n_fft = _fft_size(sr, window_s, y.shape[1])
    n_att = min(y.shape[1], int(attack_s * sr), n_samples // 3)
    # the tail reads the source's first half slowly (its attack and body, where a reverb
    # would be excited)
    head = y[:, :max(n_fft, y.shape[1] // 2)]
    env = np.exp(-decay * np.arange(n_samples) / max(1, n_samples))
    out = np.zeros((2, n_samples))
    for c in range(2):
        out[c] = _paul(head[c], n_samples, rng, n_fft=n_fft) * env
    if n_att > 0:
        # the dry attack fades into the wash (what a reverb does after the hit)
        dry = y[:, :n_att].astype(np.float64) * np.linspace(1.0, 0.0, n_att)[None, :] ** 2
        wash_rms, dry_rms = _rms(out[:, :n_att]), _rms(dry)
        out[:, :n_att] *= np.linspace(0.0, 1.0, n_att)[None, :]
        if dry_rms > 0:
            # the hit about as loud as the wash it excites
            out[:, :n_att] += dry * min(4.0, wash_rms / dry_rms)
    out = out[:, ::-1]
    return _finish(out, n_samples, level_rms=_rms(y) * 0.7, fade_in_s=0.05, fade_out_s=0.003,
                   sr=sr)


_KINDS = {"granular": granular, "freeze": spectral_freeze, "stretch": time_stretch,
          "riser": riser, "swell": reverse_swell}


def chord_pitches(key: str | None) -> list[float]:
    """Semitone offsets for grains that keep a pad in its own harmony: a shift by an octave or
    a fifth moves the root onto a tone of the same chord, so the cloud stays consonant. Minor
    keys also get the fifth below (a darker cloud)."""
    base = [0.0, 0.0, 12.0, -12.0, 7.0]
    if key and key.lower().endswith("minor"):
        base.append(-5.0)
    return base

"""The browser's small waveform: a min/max envelope, drawn with braille dots.

``segment_envelope`` reads one segment (in a worker) and reduces it to ``bins`` (min, max)
pairs; ``braille`` turns them into text lines of any size at render time (each braille cell is
2 x 4 dots, so a 40 x 3 cell area shows 80 columns by 12 levels).
"""

from __future__ import annotations

import numpy as np

ENVELOPE_SR = 8000  # enough for a picture of the amplitude, and cheap to read and resample
ENVELOPE_BINS = 256
# dot bits of a braille cell, by (column, row)
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def envelope(y: np.ndarray, *, bins: int = ENVELOPE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of ``y`` in ``bins`` equal slices, normalized to the peak.

    Args:
        y: mono audio, shape (n,), or (channels, n) (channels are averaged).

    Returns:
        (lo, hi): float32 arrays of shape (bins,) in -1..1 (zeros for silence or no audio).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    lo = np.zeros(bins, np.float32)
    hi = np.zeros(bins, np.float32)
    if y.size == 0:
        return lo, hi
    edges = np.linspace(0, y.size, bins + 1).astype(int)
    for i in range(bins):
        a, b = edges[i], max(edges[i + 1], edges[i] + 1)
        part = y[a:min(b, y.size)]
        if part.size:
            lo[i], hi[i] = part.min(), part.max()
    peak = float(max(np.abs(lo).max(), np.abs(hi).max()))
    if peak > 1e-6:
        lo /= peak
        hi /= peak
    return lo, hi


def segment_envelope(path: str, start_s: float, end_s: float, *,
                     bins: int = ENVELOPE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The envelope of one segment of a file (read with the renderer's reader).

    Raises:
        DecodeError: the file cannot be read.
    """
    from loopmind.generate.render import load_source

    y = load_source(path, start_s, end_s, sr=ENVELOPE_SR)
    return envelope(y, bins=bins)


def braille(lo: np.ndarray, hi: np.ndarray, width: int, height: int) -> list[str]:
    """Draw an envelope as ``height`` lines of ``width`` braille characters.

    Every dot column is filled from its max (top) down to its min (bottom); a flat part still
    shows one dot on the centre line, so silence reads as a line rather than nothing.
    """
    width, height = max(1, width), max(1, height)
    n_x, n_y = width * 2, height * 4
    cells = np.zeros((height, width), dtype=np.int32)
    if len(lo) == 0:
        return ["\u2800" * width for _ in range(height)]
    edges = np.linspace(0, len(lo), n_x + 1).astype(int)
    for j in range(n_x):
        a, b = edges[j], max(edges[j + 1], edges[j] + 1)
        top_v = float(np.max(hi[a:b]))
        bot_v = float(np.min(lo[a:b]))
        top = int(round((1.0 - top_v) / 2.0 * (n_y - 1)))
        bot = int(round((1.0 - bot_v) / 2.0 * (n_y - 1)))
        top, bot = max(0, min(top, n_y - 1)), max(0, min(bot, n_y - 1))
        if top > bot:
            top, bot = bot, top
        for r in range(top, bot + 1):
            cells[r // 4, j // 2] |= _DOTS[j % 2][r % 4]
    return ["".join(chr(0x2800 + int(v)) for v in row) for row in cells]

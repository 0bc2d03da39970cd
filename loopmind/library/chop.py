"""Chop a decoded file into the segments the library stores.

* a one-shot stays whole (one span, ``bars`` None);
* a loop of up to 8 bars stays whole (``bars`` its length in bars);
* anything longer (a song, a long stem) becomes bar-aligned segments of 4 or 8 bars that start
  on detected downbeats. Spans are offsets into the original file.

Whether audio is a loop or a one-shot comes from the file name when it says so
(``kind_hint``), otherwise from ``classify_kind``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loopmind.library.analysis.tempo import TempoEstimate, beat_grid, onset_signals

MAX_WHOLE_BARS = 8          # a loop up to this many bars stays whole
MIN_LOOP_S = 0.9            # shorter than a bar at 250 BPM: a one-shot
SEGMENT_MIN_S = 6.0         # 4-bar segments unless 4 bars are shorter than this, then 8 bars
_WHOLE_TOL = 0.06           # 8 bars plus up to 6 % (a tail, human timing) still stays whole


@dataclass
class Span:
    """A segment of a file.

    Attributes:
        start_s: offset of the segment start in the file, seconds.
        end_s: offset of the segment end in the file, seconds.
        kind: "loop" or "oneshot".
        bars: length in 4/4 bars (None for one-shots and for loops of unknown tempo).
    """

    start_s: float
    end_s: float
    kind: str
    bars: float | None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _normalize_hint(kind_hint: str | None) -> str | None:
    if not kind_hint:
        return None
    h = kind_hint.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if h in ("loop", "loops", "groove", "beat", "break"):
        return "loop"
    if h in ("oneshot", "oneshots", "shot", "hit", "hits"):
        return "oneshot"
    return None


def classify_kind(y: np.ndarray, *, sr: int, spec, tempo: TempoEstimate) -> tuple[str, float]:
    """Decide whether audio is a loop or a one-shot, from the audio alone.

    A loop has a tempo, keeps sounding to its end, and has onsets spread over its length; a
    one-shot is one event (a hit, a note, a sustained tone or an effect) that starts at the
    beginning and then decays or holds. Thresholds (documented in the code) are round numbers
    chosen after looking at the DEV set's loops and one-shots, not searched.

    Args:
        y: mono signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared Spectrogram of ``y``.
        tempo: the estimate for ``y`` (``estimate_tempo`` with ``is_loop=None``).

    Returns:
        (kind, confidence): kind "loop" or "oneshot", confidence in [0.5, 1].
    """
    duration_s = len(y) / float(sr)
    if duration_s < MIN_LOOP_S or tempo.bpm is None:
        return "oneshot", 0.9 if duration_s < MIN_LOOP_S else 0.8
    ons = onset_signals(spec)
    flux = ons.flux.copy()
    n = len(flux)
    # onsets spread over the file: the share of quarters of the file holding a clear onset
    # (10 % of the file's strongest one); a one-shot has its onset in the first quarter only
    floor = float(np.median(flux))
    thr = floor + 0.1 * (float(flux.max()) - floor)
    quarters = np.array_split(np.arange(n), 4)
    spread = np.mean([flux[q].max() > thr if len(q) else False for q in quarters])
    # sustain: level of the last quarter relative to the loudest frame; a decaying one-shot
    # ends 30 dB or more below its peak, a loop keeps playing
    rms_db = 20 * np.log10(np.maximum(spec.rms, 1e-6))
    last_q = rms_db[3 * n // 4:] if n >= 4 else rms_db
    sustain = float(np.clip((last_q.max() - rms_db.max() + 30.0) / 20.0, 0.0, 1.0))
    # a rhythm: the tempo estimate's confidence already includes how periodic the onsets
    # are; 0.2 or more is a clear beat, a one-shot with a few stray onsets stays near 0
    rhythm = min(1.0, tempo.confidence / 0.2)
    evidence = 0.4 * spread + 0.2 * sustain + 0.4 * rhythm
    if evidence >= 0.6:
        return "loop", float(min(1.0, 0.5 + (evidence - 0.6) * 1.25))
    return "oneshot", float(min(1.0, 0.5 + (0.6 - evidence) / 1.2))


def _whole_loop_bars(duration_s: float, tempo: TempoEstimate) -> float | None:
    if tempo.bpm is None:
        return None
    if tempo.beats:
        return tempo.beats / 4.0
    n_bars = duration_s * tempo.bpm / 240.0
    # nearest quarter bar (a beat): loops are whole beats; below a quarter report a quarter
    return max(0.25, round(n_bars * 4) / 4)


def chop(y: np.ndarray, *, sr: int, spec, tempo: TempoEstimate,
         kind_hint: str | None = None) -> list[Span]:
    """Split a file into loop and one-shot spans.

    Args:
        y: mono signal, shape (n,).
        sr: sample rate in Hz.
        spec: the shared Spectrogram of ``y``.
        tempo: tempo of the whole file.
        kind_hint: "loop" or "one shot"/"hit" from the file name, or None.

    Returns:
        Spans in file order. A long file's bar lines are the detected downbeats, extended at
        the tempo towards both ends; material before the first bar line (a pickup shorter
        than a bar) and a tail shorter than 4 bars are dropped.
    """
    duration_s = len(y) / float(sr)
    hint = _normalize_hint(kind_hint)
    if tempo.bpm is None:
        # no rhythm: nothing to cut on; a loop named so keeps its name but has no bar count
        return [Span(0.0, duration_s, hint or "oneshot", None)]
    bar_s = 240.0 / tempo.bpm
    n_bars = duration_s / bar_s
    if n_bars <= MAX_WHOLE_BARS * (1 + _WHOLE_TOL):
        kind = hint or classify_kind(y, sr=sr, spec=spec, tempo=tempo)[0]
        bars = _whole_loop_bars(duration_s, tempo) if kind == "loop" else None
        return [Span(0.0, duration_s, kind, bars)]
    if hint == "oneshot":
        return [Span(0.0, duration_s, "oneshot", None)]
    return _bar_segments(y, sr=sr, spec=spec, bpm=tempo.bpm, duration_s=duration_s)


def _bar_segments(y: np.ndarray, *, sr: int, spec, bpm: float, duration_s: float) -> list[Span]:
    bar_s = 240.0 / bpm
    seg_bars = 4 if 4 * bar_s >= SEGMENT_MIN_S else 8
    _, downbeats = beat_grid(y, sr=sr, spec=spec, bpm=bpm)
    if len(downbeats) == 0:
        downbeats = np.arange(0.0, duration_s - bar_s * 0.5, bar_s)
    # extend the detected bar lines at the tempo to both ends of the file, so segments can
    # start and end where the music does even if the tracker started late or stopped early
    # (a bar line up to 5 % of a bar before the file start is taken as the start)
    first, last = downbeats[0], downbeats[-1]
    before = first - bar_s * np.arange(int(first / bar_s + 0.05), 0, -1)
    before = np.maximum(before[before >= -0.05 * bar_s], 0.0)
    after = last + bar_s * np.arange(1, int((duration_s - last) / bar_s + 0.02) + 1)
    bars = np.concatenate([before, downbeats, np.minimum(after, duration_s)])
    spans: list[Span] = []
    i = 0
    while i + 4 < len(bars):
        n = seg_bars if i + seg_bars < len(bars) else 4
        start, end = float(bars[i]), float(min(bars[i + n], duration_s))
        spans.append(Span(start, end, "loop", float(n)))
        i += n
    if not spans:
        spans.append(Span(0.0, duration_s, "loop", round(duration_s / bar_s * 4) / 4))
    return spans

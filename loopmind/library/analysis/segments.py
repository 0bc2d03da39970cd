"""Analysis of one decoded file: chop into segments, then tempo, key, loudness, role and tone
for each, all from the one decoded array."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from loopmind.errors import AnalysisError
from loopmind.library.analysis.role import DRUM_ROLES

# drum sounds and drum loops carry no key
UNPITCHED_ROLES = DRUM_ROLES | {"drumloop"}
SILENCE_LUFS = -70.0


@dataclass
class SegmentResult:
    """Everything analysis says about one segment (offsets in seconds into the file)."""

    index: int
    start_s: float
    end_s: float
    kind: str
    bars: float | None
    bpm: float | None
    bpm_confidence: float
    key: str | None
    key_confidence: float
    lufs: float | None
    true_peak_db: float | None
    role: str | None
    role_confidence: float
    tags: list[tuple[str, str]] = field(default_factory=list)  # (name, source)
    embedding: np.ndarray | None = None
    embedder: str | None = None  # "name/version" of the embedder that made ``embedding``
    fingerprint: bytes | None = None  # near-duplicate contour (loopmind.index.dupes)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def analyze_audio(decoded, *, path: os.PathLike | str | bytes, embed=None,
                  embedder: str | None = None) -> list[SegmentResult]:
    """Chop and analyze a decoded file.

    Args:
        decoded: a ``loopmind.library.audio.DecodedAudio``.
        path: the file's path (its words are evidence for role, tempo, key and kind).
        embed: optional hook ``embed(y, sr=..., spec=...) -> np.ndarray`` (the search
            issue's embedder); None stores no embedding.
        embedder: the embedder's "name/version", stored beside each embedding.

    Raises:
        AnalysisError: the file is silent.
    """
    from loopmind.library import chop as chopper
    from loopmind.library.analysis import key as key_mod
    from loopmind.library.analysis import role as role_mod
    from loopmind.library.analysis import tempo as tempo_mod
    from loopmind.library.analysis import tone as tone_mod
    from loopmind.library.analysis.features import Spectrogram
    from loopmind.index.dupes import fingerprint
    from loopmind.library.names import parse_name

    y, sr = decoded.y, decoded.sr
    whole_lufs = decoded.loudness.integrated_lufs()
    if whole_lufs <= SILENCE_LUFS or not np.any(np.abs(y) > 1e-5):
        raise AnalysisError("silent: no audio above -70 LUFS")
    hints = parse_name(os.fsdecode(path))
    spec = Spectrogram(y, sr)
    tempo = _tempo_from_metadata(path, hints, len(y) / float(sr)) \
        if decoded.info.format == "WAV" else None
    if tempo is None:
        tempo = tempo_mod.estimate_tempo(y, sr=sr, spec=spec, bpm_hint=hints.bpm,
                                         is_loop=True if hints.kind == "loop" else None)
    spans = chopper.chop(y, sr=sr, spec=spec, tempo=tempo, kind_hint=hints.kind)
    results: list[SegmentResult] = []
    for i, span in enumerate(spans):
        a = max(0, int(round(span.start_s * sr)))
        b = min(len(y), int(round(span.end_s * sr)))
        if len(spans) == 1 and a == 0 and b >= len(y) - 1:
            ys, sspec = y, spec
        else:
            ys = y[a:b]
            sspec = Spectrogram(ys, sr)
        role = role_mod.classify_role(ys, sr=sr, spec=sspec, kind=span.kind,
                                      name_role=hints.role,
                                      name_confidence=hints.role_confidence)
        if role.role in UNPITCHED_ROLES:
            key_est = key_mod.KeyEstimate(None, 0.0)
        else:
            key_est = _key_with_name(key_mod.estimate_key(ys, sr=sr, spec=sspec), hints.key)
        if span.kind == "loop":
            bpm, bpm_conf = tempo.bpm, tempo.confidence
            if bpm is None and hints.bpm_explicit:
                # no rhythm to measure (a held bass note): the name's tempo is all there is
                bpm, bpm_conf = hints.bpm, 0.5
        else:
            bpm, bpm_conf = (hints.bpm, 0.3) if hints.bpm_explicit else (None, 0.0)
        bars = span.bars
        if bars is None and span.kind == "loop" and bpm:
            n_bars = (span.end_s - span.start_s) * bpm / 240.0
            bars = float(max(1, round(n_bars))) if abs(n_bars - round(n_bars)) < 0.1 else None
        tags = [(t, "analysis") for t in tone_mod.tone_tags(ys, sr=sr, spec=sspec,
                                                             role=role.role)]
        tags += [(t, "filename") for t in hints.tags]
        lufs = decoded.loudness.integrated_lufs(span.start_s, span.end_s)
        tp = decoded.true_peak_db(span.start_s, span.end_s)
        emb = embed(ys, sr=sr, spec=sspec) if embed is not None else None
        results.append(SegmentResult(
            index=i, start_s=float(span.start_s), end_s=float(span.end_s), kind=span.kind,
            bars=bars, bpm=None if bpm is None else round(float(bpm), 2),
            bpm_confidence=round(float(bpm_conf), 3), key=key_est.key,
            key_confidence=round(float(key_est.confidence), 3),
            lufs=None if lufs <= -120 else round(float(lufs), 2), true_peak_db=round(float(tp), 2),
            role=role.role, role_confidence=round(float(role.confidence), 3), tags=tags,
            embedding=emb, embedder=embedder if emb is not None else None,
            fingerprint=fingerprint(ys, sr=sr, spec=sspec)))
    return results


# a tempo and length the file's own loop metadata states, and its length confirms
METADATA_CONFIDENCE = 0.95


def _tempo_from_metadata(path, hints, duration_s: float):
    """The tempo a WAV's ``acid`` chunk states when its beats give the file's length (None:
    estimate it). A one-shot flag makes the file a one-shot; a tempo the length does not
    confirm is evidence for the estimator, like a tempo in the name. ``hints`` is updated."""
    from loopmind.library.analysis.tempo import TempoEstimate
    from loopmind.library.filemeta import read_loop_meta

    meta = read_loop_meta(path)
    if meta is None:
        return None
    if meta.one_shot:
        hints.kind = "oneshot"
        return None
    if meta.agrees_with(duration_s):
        hints.kind = "loop"
        hints.bpm, hints.bpm_explicit = meta.bpm, True
        return TempoEstimate(meta.bpm, METADATA_CONFIDENCE, beats=meta.beats,
                             method="metadata")
    if meta.bpm and not hints.bpm_explicit:
        hints.bpm = meta.bpm
    return None


def _key_with_name(est, name_key: str | None):
    """Weigh the key written in the file name against the measured one.

    Pack authors name the key they wrote in, so a name that agrees with the audio raises the
    confidence; a name that is one step away on the circle (fifth, relative, parallel: the
    usual confusions of a chroma estimate on a short loop) wins; a name far from a confident
    estimate loses, since the name may be a stale copy-paste.
    """
    from loopmind.library.analysis import key as key_mod

    if not name_key:
        return est
    if est.key is None:
        return key_mod.KeyEstimate(name_key, 0.4)
    if est.key == name_key:
        return key_mod.KeyEstimate(est.key, max(est.confidence, 0.9))
    neighbours = {key_mod.relative(name_key), key_mod.parallel(name_key),
                  *key_mod.fifth_neighbors(name_key)}
    if est.key in neighbours or est.confidence < 0.8:
        return key_mod.KeyEstimate(name_key, 0.7)
    return est

"""Chopping and loop/one-shot decisions on audio synthesized in code."""

from __future__ import annotations

import numpy as np
import pytest

from loopmind.library.analysis.features import Spectrogram
from loopmind.library.analysis.tempo import TempoEstimate, estimate_tempo
from loopmind.library.chop import Span, chop, classify_kind

SR = 22050


def groove(bpm: float, bars: int, *, offset_s: float = 0.0, song: bool = False) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, eighth hats; a song adds a bass note per bar."""
    rng = np.random.default_rng(440)
    beat = 60.0 / bpm
    n = int(round((offset_s + bars * 4 * beat) * SR))
    y = np.zeros(n + SR)
    t_k = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * np.cumsum(50 + 80 * np.exp(-t_k * 30)) / SR) * np.exp(-t_k * 14)
    t_s = np.arange(int(0.18 * SR)) / SR
    snare = (0.6 * rng.standard_normal(len(t_s)) * np.exp(-t_s * 25)
             + 0.7 * np.sin(2 * np.pi * 190 * t_s) * np.exp(-t_s * 30))
    t_h = np.arange(int(0.05 * SR)) / SR

    def put(x, t):
        i = int(round((offset_s + t) * SR))
        j = min(len(y), i + len(x))
        y[i:j] += x[: j - i]

    for b in range(bars):
        t0 = b * 4 * beat
        for q in (0, 2):
            put(kick, t0 + q * beat)
        for q in (1, 3):
            put(snare, t0 + q * beat)
        for e in range(8):
            put(0.25 * np.diff(rng.standard_normal(len(t_h)), prepend=0.0) * np.exp(-t_h * 80),
                t0 + e * beat / 2)
        if song:
            t = np.arange(int(round(4 * beat * SR))) / SR
            put(0.5 * np.sin(2 * np.pi * (55.0, 73.4, 65.4, 49.0)[b % 4] * t)
                * np.minimum(1.0, t * 50), t0)
    if not song and offset_s == 0:
        y[:SR] += y[n:n + SR]
    y = y[:n]
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def one_shot() -> np.ndarray:
    t = np.arange(int(1.2 * SR)) / SR
    y = np.sin(2 * np.pi * np.cumsum(50 + 80 * np.exp(-t * 30)) / SR) * np.exp(-t * 8)
    return (0.8 * y).astype(np.float32)


def _chop(y, **kw):
    spec = Spectrogram(y, SR)
    tempo = kw.pop("tempo", None) or estimate_tempo(y, sr=SR, spec=spec)
    return chop(y, sr=SR, spec=spec, tempo=tempo, **kw), tempo


def test_one_shot_stays_whole():
    y = one_shot()
    spans, tempo = _chop(y)
    assert tempo.bpm is None
    assert spans == [Span(0.0, len(y) / SR, "oneshot", None)]


@pytest.mark.parametrize("bars", [1, 2, 4, 8])
def test_loop_up_to_8_bars_stays_whole(bars):
    y = groove(120, bars)
    spans, _ = _chop(y)
    assert len(spans) == 1
    sp = spans[0]
    assert (sp.start_s, sp.end_s, sp.kind) == (0.0, pytest.approx(len(y) / SR), "loop")
    assert sp.bars == pytest.approx(bars)


def test_song_becomes_4_bar_segments_on_bar_lines():
    offset = 0.7
    y = groove(120, 32, offset_s=offset, song=True)
    spans, tempo = _chop(y)
    assert tempo.bpm == pytest.approx(120, rel=0.01)
    assert len(spans) == 8
    for a, b in zip(spans, spans[1:]):
        assert a.end_s == pytest.approx(b.start_s)  # contiguous
    for sp in spans:
        assert sp.kind == "loop" and sp.bars == 4.0
        assert 0.0 <= sp.start_s < sp.end_s <= len(y) / SR + 1e-9
        # starts on a bar line (2 s bars after the 0.7 s pickup)
        pos = (sp.start_s - offset) / 2.0
        assert abs(pos - round(pos)) * 2.0 < 0.06
        assert sp.duration_s == pytest.approx(8.0, abs=0.1)
    assert spans[0].start_s == pytest.approx(offset, abs=0.06)  # the pickup is dropped


def test_fast_song_uses_8_bar_segments():
    y = groove(180, 24, song=True)
    spans, _ = _chop(y, tempo=TempoEstimate(180.0, 0.9))
    # 4 bars at 180 BPM are 5.3 s, under the 6 s minimum: 8-bar segments
    assert [sp.bars for sp in spans] == [8.0, 8.0, 8.0]
    bar = 240.0 / 180
    for sp in spans:
        assert abs(sp.start_s / bar - round(sp.start_s / bar)) * bar < 0.06


def test_short_tail_is_dropped():
    y = groove(120, 10, song=True)  # 10 bars: two 4-bar segments, 2 bars left over
    spans, _ = _chop(y, tempo=TempoEstimate(120.0, 0.9))
    assert [sp.bars for sp in spans] == [4.0, 4.0]
    assert spans[-1].end_s == pytest.approx(16.0, abs=0.06)


def test_kind_hint_overrides_audio():
    y = groove(120, 2)
    spans, _ = _chop(y, kind_hint="one shot")
    assert spans[0].kind == "oneshot" and spans[0].bars is None
    spans, _ = _chop(one_shot(), kind_hint="loop")
    assert spans[0].kind == "loop"


def test_classify_kind():
    y = groove(100, 2)
    spec = Spectrogram(y, SR)
    kind, conf = classify_kind(y, sr=SR, spec=spec, tempo=estimate_tempo(y, sr=SR, spec=spec))
    assert kind == "loop" and 0.5 <= conf <= 1.0
    y = one_shot()
    spec = Spectrogram(y, SR)
    kind, conf = classify_kind(y, sr=SR, spec=spec, tempo=estimate_tempo(y, sr=SR, spec=spec))
    assert kind == "oneshot" and 0.5 <= conf <= 1.0


def test_silence_is_one_whole_span():
    y = np.zeros(3 * SR, dtype=np.float32)
    spans, tempo = _chop(y)
    assert tempo.bpm is None
    assert spans == [Span(0.0, 3.0, "oneshot", None)]


def test_a_bare_number_in_the_name_is_a_tempo_hint_not_a_kind(tmp_path):
    """"Kick 100.wav" (an index or a velocity layer) stays a one-shot; "Drums 120.wav" is a
    loop because its audio is one, at the named tempo."""
    import soundfile as sf

    from loopmind.library.analysis.segments import analyze_audio
    from loopmind.library.audio import decode

    (tmp_path / "Kicks").mkdir()
    kick = tmp_path / "Kicks" / "Kick 100.wav"
    sf.write(kick, one_shot(), SR)
    loop = tmp_path / "Drums 120.wav"
    sf.write(loop, groove(120, 2), SR)
    [k] = analyze_audio(decode(kick), path=kick)
    assert (k.kind, k.bars, k.bpm) == ("oneshot", None, None)
    [g] = analyze_audio(decode(loop), path=loop)
    assert (g.kind, g.bars, g.bpm) == ("loop", 2.0, 120.0)

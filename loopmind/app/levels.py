"""Fader and meter scales shared by the channel rack and the mixer (no Textual, no numpy)."""

from __future__ import annotations

import math

FADER_MIN_DB, FADER_MAX_DB = -60.0, 6.0
METER_FLOOR_DB = -60.0
_UNITY = 0.8  # 0 dB sits at 80 % of a fader's travel, as on a console


def db_to_fraction(db: float) -> float:
    """Fader travel (0..1) for a gain: a console-like taper with 0 dB at 0.8."""
    db = max(FADER_MIN_DB, min(FADER_MAX_DB, db))
    if db >= 0:
        return _UNITY + (1 - _UNITY) * db / FADER_MAX_DB
    return _UNITY * (1 - (db / FADER_MIN_DB) ** 0.5)


def fraction_to_db(f: float) -> float:
    """The gain for a fader travel (0..1), rounded to 0.5 dB."""
    f = max(0.0, min(1.0, f))
    if f >= _UNITY:
        db = (f - _UNITY) / (1 - _UNITY) * FADER_MAX_DB
    else:
        db = FADER_MIN_DB * (1 - f / _UNITY) ** 2
    return round(db * 2) / 2 + 0.0


def clamp_db(db: float) -> float:
    return max(FADER_MIN_DB, min(FADER_MAX_DB, float(db)))


def format_db(db: float) -> str:
    return "-inf" if db <= FADER_MIN_DB else f"{db:+.1f}"


def meter_fraction(peak: float) -> float:
    """How much of a meter a linear peak lights (0 at -60 dBFS, 1 at 0 dBFS)."""
    if peak <= 0:
        return 0.0
    db = 20.0 * math.log10(peak)
    return max(0.0, min(1.0, (db - METER_FLOOR_DB) / -METER_FLOOR_DB))

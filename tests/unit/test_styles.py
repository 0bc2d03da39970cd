"""Genre and mood data, step patterns, and fitting a genre's section plan to a duration."""

from __future__ import annotations

import numpy as np
import pytest

from loopmind.generate.song import Section
from loopmind.generate.styles import (
    DEFAULT_GENRE,
    GENRES,
    MIN_BARS,
    MOODS,
    PEAK_SECTIONS,
    SECTION_NAMES,
    STEPS,
    TONE_TAGS,
    Genre,
    SectionPlan,
    find_genre,
    find_mood,
    key_mode_bias,
    pattern_steps,
    plan_sections,
    tone_preferences,
)
from loopmind.library.analysis.role import DRUM_ROLES, ROLES
from loopmind.library.analysis.tone import tags_from_measures

ALL_GENRES = [*GENRES.values(), DEFAULT_GENRE]
REQUIRED_GENRES = ("trap", "hip hop", "boom bap", "lofi", "house", "techno", "drum and bass",
                   "drill", "ambient", "pop")
REQUIRED_MOODS = ("dark", "dreamy", "aggressive", "chill", "happy", "sad", "energetic")
DRUMS = DRUM_ROLES | {"drumloop"}


def _ids(genres: list[Genre]) -> list[str]:
    return [g.name for g in genres]


def test_required_genres_and_moods_exist():
    assert set(REQUIRED_GENRES) <= set(GENRES)
    assert set(REQUIRED_MOODS) <= set(MOODS)


def test_tone_tags_are_exactly_what_tone_produces():
    """Every tag a mood mentions must be one the tone analyzer can set."""
    nan = float("nan")
    base = {"centroid_ratio": 1.0, "lowmid_ratio": 0.1, "high_ratio": 0.2,
            "flatness_db": -20.0, "ceiling_fraction": 0.0, "frame_crest_db": 5.0,
            "decay_t60_s": nan, "attack_ms": nan, "envelope_crest_db": 0.0}
    variants = [
        {"centroid_ratio": 2.0}, {"centroid_ratio": 0.5},
        {"lowmid_ratio": 0.4, "high_ratio": 0.05, "flatness_db": -30.0},
        {"ceiling_fraction": 0.5},
        {"flatness_db": -30.0, "frame_crest_db": 8.0},
        {"decay_t60_s": 3.0}, {"decay_t60_s": 0.2},
        {"attack_ms": 5.0, "envelope_crest_db": 8.0}, {"attack_ms": 60.0},
    ]
    produced = set()
    for v in variants:
        produced |= set(tags_from_measures({**base, **v}))
    assert produced == set(TONE_TAGS)
    for mood in MOODS.values():
        assert set(mood.tone_tags) <= produced
        assert set(mood.avoid) <= produced
        assert not set(mood.tone_tags) & set(mood.avoid)


@pytest.mark.parametrize("genre", ALL_GENRES, ids=_ids(ALL_GENRES))
def test_genre_data_is_consistent(genre: Genre):
    lo, hi = genre.bpm_range
    assert lo <= genre.default_bpm <= hi
    assert 0 <= genre.density <= 1 and 0 <= genre.swing <= 0.6
    assert genre.sections[0].name == "intro" and genre.sections[-1].name == "outro"
    assert len({s.name for s in genre.sections}) >= 3
    for s in genre.sections:
        assert s.name in SECTION_NAMES
        assert s.bars % 4 == 0 and s.bars > 0
        assert set(s.roles) <= set(ROLES)
        assert 0 <= s.energy <= 1
    for role, variations in genre.patterns.items():
        assert role in ROLES
        assert variations
        for v in variations:
            assert len(v) == STEPS and all(0 <= x <= 1 for x in v) and any(v)
    for mood in genre.mood_bias:
        assert mood in MOODS
    # a natural length of about 2.5-3.5 minutes at the default tempo
    minutes = genre.natural_bars * 240.0 / genre.default_bpm / 60.0
    assert 2.4 <= minutes <= 3.6, minutes


@pytest.mark.parametrize("genre", ALL_GENRES, ids=_ids(ALL_GENRES))
def test_energy_rises_into_hooks_and_drops(genre: Genre):
    energies = [s.energy for s in genre.sections]
    for i, s in enumerate(genre.sections):
        if s.name in PEAK_SECTIONS:
            assert s.energy > genre.sections[i - 1].energy
    if any(s.name in PEAK_SECTIONS for s in genre.sections):
        assert max(energies) == max(s.energy for s in genre.sections
                                    if s.name in PEAK_SECTIONS)
    assert genre.sections[0].energy < max(energies)
    assert genre.sections[-1].energy < max(energies)


def test_genre_specifics():
    trap, dnb, techno = GENRES["trap"], GENRES["drum and bass"], GENRES["techno"]
    assert trap.half_time and [s.name for s in trap.sections] == [
        "intro", "hook", "verse", "hook", "verse", "hook", "outro"]
    assert not set(trap.sections[0].roles) & DRUMS  # the intro is pads/keys/fx
    assert dnb.bpm_range == (170.0, 176.0)
    assert techno.bpm_range[0] >= 125 and techno.bpm_range[1] <= 135
    drill = GENRES["drill"]
    assert 138 <= drill.bpm_range[0] and drill.bpm_range[1] <= 146 and drill.bass_glide
    assert GENRES["boom bap"].swing > 0.15 and GENRES["lofi"].swing > 0.15
    assert 70 <= GENRES["lofi"].bpm_range[0] and GENRES["lofi"].bpm_range[1] <= 90
    house = [s.name for s in GENRES["house"].sections]
    assert house[0] == "intro" and "drop" in house and "break" in house
    assert GENRES["house"].sections[0].bars == 16
    # four on the floor in house and techno, half-time snare in trap and drill
    for name in ("house", "techno"):
        kick = GENRES[name].patterns["kick"][0]
        assert [i for i, v in enumerate(kick) if v] == [0, 4, 8, 12]
    for name in ("trap", "drill"):
        snare = GENRES[name].patterns["snare"][0]
        assert [i for i, v in enumerate(snare) if v] == [8]
    assert [i for i, v in enumerate(GENRES["boom bap"].patterns["snare"][0]) if v] == [4, 12]


def test_ambient_has_no_drums():
    ambient = GENRES["ambient"]
    assert not ambient.has_drums and not ambient.patterns
    for s in plan_sections(ambient, minutes=5, bpm=75, rng=np.random.default_rng(0)):
        assert not set(s.roles) & DRUMS


@pytest.mark.parametrize("genre", [g for g in GENRES.values() if g.name != "ambient"],
                         ids=_ids([g for g in GENRES.values() if g.name != "ambient"]))
def test_genres_with_drums_have_kick_snare_and_hat_patterns(genre: Genre):
    assert genre.has_drums
    assert {"kick", "hihat"} <= set(genre.patterns)
    assert {"snare", "clap"} & set(genre.patterns)


def test_pattern_steps():
    trap = GENRES["trap"]
    steps = pattern_steps(trap, "snare")
    assert steps == [(8, 1.0)]
    fill = pattern_steps(trap, "hihat", fill=True)
    main = pattern_steps(trap, "hihat")
    assert fill != main and sum(v for _, v in fill) > sum(v for _, v in main)
    assert pattern_steps(trap, "kick", variation=7) == pattern_steps(
        trap, "kick", variation=7 % len(trap.patterns["kick"]))
    assert pattern_steps(GENRES["ambient"], "kick") == []
    assert all(0 <= s < STEPS and 0 < v <= 1 for s, v in fill)


def test_find_genre_and_mood_by_name_and_alias():
    for genre in GENRES.values():
        for name in (genre.name, *genre.aliases):
            assert find_genre(name) is genre, name
            assert find_genre(name.upper()) is genre, name
    assert find_genre("Hip-Hop") is GENRES["hip hop"]
    assert find_genre("D&B") is GENRES["drum and bass"]
    assert find_genre("default") is DEFAULT_GENRE
    assert find_genre("polka") is None
    for mood in MOODS.values():
        for name in (mood.name, *mood.aliases):
            assert find_mood(name) is mood, name
    assert find_mood("melancholic") is MOODS["sad"]
    assert find_mood("hard") is MOODS["aggressive"]
    assert find_mood("relaxed") is MOODS["chill"]
    assert find_mood("uplifting") is MOODS["happy"]
    assert find_mood("nope") is None


def test_aliases_do_not_collide():
    seen: dict[str, str] = {}
    for kind, items in (("genre", GENRES.values()), ("mood", MOODS.values())):
        for item in items:
            for name in (item.name, *item.aliases):
                key = "".join(c for c in name.lower() if c.isalnum() or c == "&")
                owner = f"{kind} {item.name}"
                assert seen.setdefault(key, owner) == owner, f"{name!r}: {seen[key]}, {owner}"


def test_tone_preferences_and_mode_bias():
    dark, happy, dreamy = MOODS["dark"], MOODS["happy"], MOODS["dreamy"]
    prefs = tone_preferences([dark, dreamy])
    assert prefs["dark"] > 0 and prefs["wet"] > 0 and prefs["bright"] < 0
    assert set(prefs) <= set(TONE_TAGS)
    # no mood named: the genre's usual moods speak
    assert tone_preferences([], GENRES["drill"])["dark"] > 0
    assert tone_preferences([]) == {}
    assert key_mode_bias([dark]) == "minor"
    assert key_mode_bias([happy]) == "major"
    assert key_mode_bias([dark, happy]) is None
    assert key_mode_bias([], GENRES["trap"]) == "minor"
    assert key_mode_bias([], GENRES["pop"]) == "major"
    assert key_mode_bias([]) is None


def test_bad_data_is_rejected():
    with pytest.raises(ValueError):
        SectionPlan("chorus", 8, ("kick",), 0.5)
    with pytest.raises(ValueError):
        SectionPlan("verse", 6, ("kick",), 0.5)
    with pytest.raises(ValueError):
        SectionPlan("verse", 8, ("drums",), 0.5)
    with pytest.raises(ValueError):
        SectionPlan("verse", 8, ("kick",), 1.5)


# -- plan_sections ---------------------------------------------------------------------------

def _check_plan(sections: list[Section], genre: Genre) -> None:
    assert sections[0].name == "intro" and sections[-1].name == "outro"
    assert len({s.name for s in sections}) >= 3
    start = 0
    for s in sections:
        assert isinstance(s, Section)
        assert s.start_bar == start
        assert s.bars >= 4 and s.bars % 4 == 0
        assert s.name in SECTION_NAMES
        assert set(s.roles) <= set(ROLES)
        start += s.bars
    if genre.name == "ambient":
        assert not any(set(s.roles) & DRUMS for s in sections)


@pytest.mark.parametrize("genre", ALL_GENRES, ids=_ids(ALL_GENRES))
def test_natural_plan_is_the_genres_plan(genre: Genre):
    sections = plan_sections(genre, minutes=None, bpm=genre.default_bpm,
                             rng=np.random.default_rng(1))
    _check_plan(sections, genre)
    assert [(s.name, s.bars) for s in sections] == [(p.name, p.bars) for p in genre.sections]
    minutes = sections[-1].end_bar * 240 / genre.default_bpm / 60
    assert 2.4 <= minutes <= 3.6


@pytest.mark.parametrize("genre", ALL_GENRES, ids=_ids(ALL_GENRES))
@pytest.mark.parametrize("minutes", [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 7.0])
def test_plan_fits_the_duration(genre: Genre, minutes: float):
    bpm = genre.default_bpm
    sections = plan_sections(genre, minutes=minutes, bpm=bpm, rng=np.random.default_rng(7))
    _check_plan(sections, genre)
    total = sections[-1].end_bar
    wanted = minutes * 60 * bpm / 240
    assert abs(total - wanted) <= 2.0, (total, wanted)  # rounded to a multiple of 4 bars
    if minutes >= 1.5:
        # energy still rises into every hook or drop
        for prev, s in zip(sections, sections[1:]):
            if s.name in PEAK_SECTIONS and prev.name not in PEAK_SECTIONS:
                assert s.energy > prev.energy, [(x.name, x.energy) for x in sections]
        if any(s.name in PEAK_SECTIONS for s in genre.sections):
            assert any(s.name in PEAK_SECTIONS for s in sections)


@pytest.mark.parametrize("genre", ALL_GENRES, ids=_ids(ALL_GENRES))
def test_plan_is_deterministic_per_seed(genre: Genre):
    def plan(seed: int, minutes: float) -> list[tuple[str, int, int]]:
        return [(s.name, s.start_bar, s.bars) for s in plan_sections(
            genre, minutes=minutes, bpm=genre.default_bpm, rng=np.random.default_rng(seed))]

    for minutes in (1.7, 3.3, 4.6, 6.1):
        assert plan(3, minutes) == plan(3, minutes)
    # different seeds may choose differently, but always the same length
    lengths = {sum(b for _, _, b in plan(seed, 4.6)) for seed in range(6)}
    assert len(lengths) == 1


def test_plan_tempo_changes_the_bar_count():
    trap = GENRES["trap"]
    slow = plan_sections(trap, minutes=3, bpm=70, rng=np.random.default_rng(0))
    fast = plan_sections(trap, minutes=3, bpm=140, rng=np.random.default_rng(0))
    assert slow[-1].end_bar == 52 and fast[-1].end_bar == 104


def test_very_short_plans_keep_three_sections():
    for genre in ALL_GENRES:
        sections = plan_sections(genre, minutes=0.1, bpm=genre.default_bpm,
                                 rng=np.random.default_rng(0))
        assert sum(s.bars for s in sections) == MIN_BARS
        assert len({s.name for s in sections}) == 3


def test_energy_shift_is_applied_and_clipped():
    trap = GENRES["trap"]
    base = plan_sections(trap, minutes=None, bpm=140, rng=np.random.default_rng(0))
    up = plan_sections(trap, minutes=None, bpm=140, rng=np.random.default_rng(0),
                       energy_shift=0.3)
    assert up[0].energy == pytest.approx(base[0].energy + 0.3)
    assert max(s.energy for s in up) == 1.0


def test_plan_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        plan_sections(GENRES["trap"], minutes=3, bpm=0, rng=rng)
    with pytest.raises(ValueError):
        plan_sections(GENRES["trap"], minutes=-1, bpm=140, rng=rng)

"""Reading song prompts, and deciding tempo and key from a prompt and a pool of loops."""

from __future__ import annotations

import pytest

from loopmind.generate.prompt import (
    SongRequest,
    parse_prompt,
    resolve_key,
    resolve_tempo,
    tempo_window,
)
from loopmind.generate.styles import DEFAULT_GENRE, GENRES, MOODS
from loopmind.library.analysis.key import KEYS
from loopmind.library.analysis.role import DRUM_ROLES, ROLES


def _moods(req: SongRequest) -> list[str]:
    return [m.name for m in req.moods]


# -- the examples ----------------------------------------------------------------------------

def test_full_example():
    req = parse_prompt("slow trap 130 bpm in F minor, dark and dreamy")
    assert req.bpm == 130
    assert req.genre is GENRES["trap"]
    assert req.key == "F minor" and req.mode == "minor"
    assert _moods(req) == ["dark", "dreamy"]
    assert req.bpm_words == ["slow"]
    assert req.unknown == []
    assert req.text == "slow trap 130 bpm in F minor, dark and dreamy"


def test_dark_trap_140_in_f_minor():
    req = parse_prompt("dark trap 140 in F minor")
    assert (req.bpm, req.genre.name, req.key, _moods(req), req.unknown) == (
        140, "trap", "F minor", ["dark"], [])


@pytest.mark.parametrize("text", ["", "   ", "!!!", "...,;?", "- / -", "&"])
def test_empty_and_punctuation_only(text: str):
    req = parse_prompt(text)
    assert req.bpm is None and req.key is None and req.genre is None
    assert req.moods == [] and req.unknown == [] and req.minutes is None
    assert req.describe() == "anything"


def test_none_is_an_empty_prompt():
    assert parse_prompt(None).unknown == []  # type: ignore[arg-type]


def test_unknown_words_are_reported_not_fatal():
    req = parse_prompt("chill lofi with purple monkey vibes, purple!")
    assert req.genre is GENRES["lofi"] and _moods(req) == ["chill"]
    assert req.unknown == ["purple", "monkey"]
    assert "purple" in req.describe()


def test_stop_words_are_not_unknown():
    req = parse_prompt("make me a song with a beat and a track in the style of house, bpm")
    assert req.genre is GENRES["house"] and req.unknown == []


def test_case_and_punctuation_do_not_matter():
    a = parse_prompt("DARK, Trap!!! 140 BPM... in f minor?")
    assert (a.genre.name, a.bpm, a.key, _moods(a), a.unknown) == (
        "trap", 140, "F minor", ["dark"], [])


# -- tempo -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text,bpm", [
    ("140", 140), ("140bpm", 140), ("140 bpm", 140), ("140 BPM", 140), ("bpm 140", 140),
    ("bpm: 140", 140), ("140-bpm", 140), ("at 92", 92), ("@ 174", 174), ("92.5 bpm", 92.5),
    ("trap 145", 145), ("tempo 88", 88),
])
def test_tempo_numbers(text: str, bpm: float):
    req = parse_prompt(text)
    assert req.bpm == bpm and req.unknown == []


def test_tempo_range_keeps_range_and_middle():
    req = parse_prompt("house 120-130")
    assert req.bpm == 125 and req.bpm_range == (120, 130)
    req = parse_prompt("120 to 130 bpm")
    assert req.bpm_range == (120, 130) and req.unknown == []


def test_explicit_tempo_wins_over_a_bare_number_and_extras_are_noted():
    req = parse_prompt("90 boom bap at 92 bpm")
    assert req.bpm == 92
    assert any("90" in n for n in req.notes)


@pytest.mark.parametrize("text", ["808 trap", "909 techno", "trap 1000", "90s boom bap", "30"])
def test_numbers_that_are_not_tempos(text: str):
    assert parse_prompt(text).bpm is None


def test_808_means_bass():
    req = parse_prompt("trap with hard 808s")
    assert "bass" in req.roles_wanted and _moods(req) == ["aggressive"]


@pytest.mark.parametrize("text,words,half,double", [
    ("slow", ["slow"], False, False), ("fast", ["fast"], False, False),
    ("uptempo", ["fast"], False, False), ("up-tempo", ["fast"], False, False),
    ("downtempo", ["slow"], False, False), ("medium tempo", ["medium"], False, False),
    ("half-time", ["half-time"], True, False), ("half time", ["half-time"], True, False),
    ("halftime", ["half-time"], True, False), ("double time", ["double-time"], False, True),
    ("double-time", ["double-time"], False, True),
])
def test_tempo_words(text: str, words: list[str], half: bool, double: bool):
    req = parse_prompt(text)
    assert req.bpm_words == words and req.half_time == half and req.double_time == double
    assert req.unknown == [] and req.bpm is None


def test_tempo_window_thirds():
    trap = GENRES["trap"]
    assert tempo_window(trap) == trap.bpm_range
    lo, hi = trap.bpm_range
    assert tempo_window(trap, ["slow"]) == pytest.approx((lo, lo + (hi - lo) / 3))
    assert tempo_window(trap, ["fast"]) == pytest.approx((hi - (hi - lo) / 3, hi))
    assert tempo_window(None, ["slow"])[0] == DEFAULT_GENRE.bpm_range[0]


# -- keys ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,key", [
    ("F minor", "F minor"), ("Fm", "F minor"), ("F#min", "F# minor"), ("f# minor", "F# minor"),
    ("Gb major", "F# major"), ("Bbm", "Bb minor"), ("C", "C major"), ("A min", "A minor"),
    ("in the key of D", "D major"), ("E flat minor", "Eb minor"), ("Ebm", "Eb minor"),
    ("F\u266f minor", "F# minor"), ("B\u266dm", "Bb minor"), ("A\u266d major", "Ab major"),
    ("C sharp minor", "C# minor"), ("c# min", "C# minor"), ("Db", "C# major"),
    ("Eb", "Eb major"), ("in A", "A major"), ("in c", "C major"), ("key of a", "A major"),
    ("key: G", "G major"), ("Am", "A minor"), ("a minor", "A minor"), ("D major", "D major"),
    ("in fm", "F minor"), ("G maj", "G major"), ("E-flat major", "Eb major"),
    ("B minor", "B minor"), ("trap in F minor", "F minor"), ("F#", "F# major"),
])
def test_key_spellings(text: str, key: str):
    req = parse_prompt(text)
    assert key in KEYS
    assert req.key == key, text
    assert req.unknown == [], req.unknown


@pytest.mark.parametrize("text", [
    "a dark trap beat", "make a beat", "trap in a dark mood", "A trap beat",
    "a flat beat", "am i dreaming", "bass and drums", "D&B", "R&B", "dB", "e", "G funk",
    "D N B",
])
def test_articles_and_words_are_not_keys(text: str):
    assert parse_prompt(text).key is None, text


def test_a_minor_key_is_a_mode_not_a_key():
    req = parse_prompt("a dark trap beat in a minor key")
    assert req.key is None and req.mode == "minor" and req.unknown == []
    req = parse_prompt("something in a major key")
    assert req.key is None and req.mode == "major"


def test_mode_word_alone():
    req = parse_prompt("pop in minor")
    assert req.key is None and req.mode == "minor" and req.unknown == []


def test_second_key_is_noted():
    req = parse_prompt("F minor or G minor")
    assert req.key == "F minor" and any("G minor" in n for n in req.notes)


# -- genres, moods, tones, roles, length -----------------------------------------------------

@pytest.mark.parametrize("genre", list(GENRES.values()), ids=list(GENRES))
def test_every_genre_name_and_alias(genre):
    for name in (genre.name, *genre.aliases):
        req = parse_prompt(f"make a {name} beat")
        assert req.genre is genre, name
        assert req.unknown == [], (name, req.unknown)


@pytest.mark.parametrize("text,genre", [
    ("hip hop", "hip hop"), ("hip-hop", "hip hop"), ("HipHop", "hip hop"),
    ("boom bap", "boom bap"), ("boom-bap", "boom bap"), ("drum and bass", "drum and bass"),
    ("drum & bass", "drum and bass"), ("drum n bass", "drum and bass"),
    ("drum'n'bass", "drum and bass"), ("dnb", "drum and bass"), ("d&b", "drum and bass"),
    ("D&B", "drum and bass"), ("DnB", "drum and bass"), ("lo-fi", "lofi"),
    ("lofi hip hop", "lofi"), ("UK drill", "drill"), ("deep house", "house"),
])
def test_multi_word_genres(text: str, genre: str):
    req = parse_prompt(text)
    assert req.genre is GENRES[genre] and req.unknown == [] and req.key is None


def test_second_genre_is_noted():
    req = parse_prompt("trap house")
    assert req.genre is GENRES["trap"] and req.notes


@pytest.mark.parametrize("mood", list(MOODS.values()), ids=list(MOODS))
def test_every_mood_name_and_alias(mood):
    for name in (mood.name, *mood.aliases):
        req = parse_prompt(f"a {name} song")
        assert _moods(req) == [mood.name], name
        assert req.unknown == [], (name, req.unknown)


@pytest.mark.parametrize("alias,mood", [
    ("melancholic", "sad"), ("hard", "aggressive"), ("relaxed", "chill"),
    ("uplifting", "happy"), ("laid-back", "chill"), ("hype", "energetic"),
])
def test_mood_aliases(alias: str, mood: str):
    assert _moods(parse_prompt(alias)) == [mood]


def test_moods_keep_order_and_appear_once():
    req = parse_prompt("sad, dark, melancholic and energetic")
    assert _moods(req) == ["sad", "dark", "energetic"]


def test_tone_words():
    req = parse_prompt("warm punchy boom bap, dark")
    assert req.tones == ["warm", "punchy"] and _moods(req) == ["dark"]


def test_roles_wanted_and_excluded():
    req = parse_prompt("house with vocals and piano, no drums or bass")
    assert req.roles_wanted == ["vocal", "keys"]
    assert set(req.roles_excluded) == (DRUM_ROLES | {"drumloop", "bass"})
    assert set(req.roles_wanted) | set(req.roles_excluded) <= set(ROLES)
    req = parse_prompt("instrumental pop without 808s, with strings")
    assert req.roles_excluded == ["vocal", "bass"] and req.roles_wanted == ["strings"]
    req = parse_prompt("w/o vocals w/ guitar")
    assert req.roles_excluded == ["vocal"] and req.roles_wanted == ["guitar"]
    req = parse_prompt("no drums, bass heavy")
    assert "bass" in req.roles_wanted and "kick" in req.roles_excluded


@pytest.mark.parametrize("text,minutes", [
    ("3 minutes", 3), ("3 min", 3), ("3min", 3), ("3-minute trap", 3), ("2:30", 2.5),
    ("2.5 minutes", 2.5), ("90 seconds", 1.5), ("2 min 30 s", 2.5),
    ("2 minutes and 30 seconds", 2.5), ("3-4 minutes", 3.5), ("two minutes", 2),
    ("three and a half minutes", 3.5), ("a minute", 1), ("short", 2.0),
])
def test_lengths(text: str, minutes: float):
    req = parse_prompt(text)
    assert req.minutes == pytest.approx(minutes, abs=1e-3)
    assert req.bpm is None and req.unknown == []


def test_length_and_tempo_together():
    req = parse_prompt("trap 140 bpm, 2:30 long, in Gm")
    assert (req.bpm, req.minutes, req.key) == (140, 2.5, "G minor")


def test_describe():
    line = parse_prompt("slow trap 130 bpm in F minor, dark and dreamy, 3 minutes, "
                        "no vocals, wibble").describe()
    assert line.startswith("trap, 130 BPM (slow), F minor, dark + dreamy, 3:00")
    assert "without vocal" in line and "'wibble'" in line


# -- resolve_tempo ---------------------------------------------------------------------------

def test_prompt_tempo_wins():
    req = parse_prompt("trap 150")
    assert resolve_tempo(req, [70, 70, 70]) == (150, "from the prompt")


def test_genre_range_fit_to_pool_majority_with_double_time():
    # most loops are at 70 (half of 140): trap plays them at 140
    bpm, reason = resolve_tempo(parse_prompt("trap"), [70, 70.1, 69.9, 95, 140])
    assert bpm == pytest.approx(140, abs=0.5)
    assert "trap" in reason


def test_genre_range_prefers_the_most_played_tempo_in_range():
    bpm, _ = resolve_tempo(parse_prompt("house"), [124, 124, 124, 128, 90])
    assert bpm == 124


def test_slow_moves_within_the_range():
    pool = [150, 150, 150, 134]
    assert resolve_tempo(parse_prompt("trap"), pool)[0] == 150
    assert resolve_tempo(parse_prompt("slow trap"), pool)[0] == 134
    lo, hi = tempo_window(GENRES["trap"], ["slow"])
    bpm, _ = resolve_tempo(parse_prompt("slow trap"), [])
    assert lo <= bpm <= hi
    bpm, _ = resolve_tempo(parse_prompt("fast trap"), [])
    assert bpm >= tempo_window(GENRES["trap"], ["fast"])[0]


def test_no_loop_fits_the_genre_moves_majority_into_range():
    bpm, reason = resolve_tempo(parse_prompt("trap"), [120, 120, 121])
    assert bpm == GENRES["trap"].bpm_range[0] and "moved" in reason


def test_genre_without_pool_uses_default_nudged_by_mood():
    assert resolve_tempo(parse_prompt("house"), [])[0] == GENRES["house"].default_bpm
    sad, _ = resolve_tempo(parse_prompt("sad house"), [])
    assert sad < GENRES["house"].default_bpm


def test_pool_majority_without_genre():
    bpm, reason = resolve_tempo(parse_prompt("dark"), [90, 90.5, 89.8, 180, 120, None,
                                                       float("nan")])
    assert bpm == pytest.approx(90, abs=0.6) and "majority" in reason
    assert resolve_tempo(parse_prompt(""), [])[0] == DEFAULT_GENRE.default_bpm


def test_prompt_range_is_fit_to_pool():
    bpm, _ = resolve_tempo(parse_prompt("120-130"), [128, 128, 90])
    assert bpm == 128
    assert resolve_tempo(parse_prompt("120-130"), [])[0] == 125


def test_drum_and_bass_from_half_time_loops():
    bpm, _ = resolve_tempo(parse_prompt("dnb"), [87, 87, 87])
    assert bpm == 174


# -- resolve_key -----------------------------------------------------------------------------

def test_prompt_key_wins():
    assert resolve_key(parse_prompt("in Gb major"), ["C major"] * 5) == (
        "F# major", "from the prompt")


def test_pool_majority_key():
    key, reason = resolve_key(parse_prompt(""), ["F minor", "F minor", "Fm", "C major", None])
    assert key == "F minor" and "majority" in reason


def test_relative_keys_count_together_and_mood_picks_the_mode():
    pool = ["C major", "C major", "A minor", "F# minor", "F# minor"]
    # C major + A minor (3 loops) outnumber F# minor (2)
    assert resolve_key(parse_prompt(""), pool)[0] == "C major"
    assert resolve_key(parse_prompt("dark"), pool)[0] == "A minor"
    assert resolve_key(parse_prompt("sad"), pool)[0] == "A minor"
    assert resolve_key(parse_prompt("happy"), ["A minor", "A minor", "C major"])[0] == "C major"
    # the prompt's mode beats the mood
    assert resolve_key(parse_prompt("happy tune in a minor key"), pool)[0] == "A minor"
    # no mood named: the genre's usual moods lean
    assert resolve_key(parse_prompt("drill"), ["C major", "C major"])[0] == "A minor"


def test_no_pitched_loops_leaves_the_key_open():
    key, reason = resolve_key(parse_prompt("dark trap"), [None, "", "not a key"])
    assert key is None and reason


def test_key_resolution_is_deterministic_on_ties():
    pool = ["D major", "E major"]
    assert resolve_key(parse_prompt(""), pool) == resolve_key(parse_prompt(""), pool[::-1])

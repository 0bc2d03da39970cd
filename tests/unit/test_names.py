"""What file and folder names say: role, kind, tempo, key and tags."""

from __future__ import annotations

import pytest

from loopmind.library.names import parse_name, words_of


@pytest.mark.parametrize("path, role", [
    ("Packs/Trap/Kicks/kick_03.wav", "kick"),
    ("BD_Heavy_01.wav", "kick"),
    ("SN 03 tight.wav", "snare"),
    ("sidestick_2.wav", "snare"),
    ("CHH_01.wav", "hihat"),
    ("OHH long.wav", "hihat"),
    ("Cym_Crash.wav", "cymbal"),
    ("CB_Hi.wav", "perc"),
    ("Timbales_Hit.wav", "perc"),
    ("Maracas 2.wav", "perc"),
    ("Vibes_C3.wav", "keys"),
    ("Marimba C4.wav", "keys"),
    ("Sax Lick Fm.wav", "lead"),
    ("Harp_Gliss.wav", "strings"),
    ("Pizz_Short_A.wav", "strings"),
    ("Voc_Chop_01.wav", "vocal"),
    ("Scratch_03.wav", "fx"),
    ("syntom_lo.wav", "tom"),
    ("808_kick.wav", "kick"),            # the later, specific word wins over "808"
    ("Samples/Snares/one.wav", "snare"),  # a folder word when the file has none
])
def test_role_words(path, role):
    assert parse_name(path).role == role


def test_file_words_are_stronger_than_folder_words():
    f = parse_name("Snares/kick_1.wav")
    assert f.role == "kick" and f.role_confidence == pytest.approx(0.8)
    g = parse_name("Snares/one.wav")
    assert g.role == "snare" and g.role_confidence == pytest.approx(0.6)


def test_loose_words_are_not_roles():
    # "EP" names a record as often as an electric piano; "bell" is percussion as often as keys
    assert parse_name("Producer EP Vol 1/untitled 3.wav").role is None
    assert parse_name("bell.wav").role is None


def test_tempo_key_kind_and_tags():
    h = parse_name("Dark_Trap_808_Fmin_140bpm.wav")
    assert (h.bpm, h.bpm_explicit, h.key, h.kind) == (140.0, True, "F minor", "loop")
    assert h.role == "bass" and {"dark", "trap"} <= set(h.tags)
    assert parse_name("Drums/Loops/groove_01.wav").role == "drumloop"
    assert parse_name("hits/kick_one.wav").kind == "oneshot"
    assert parse_name("TR808 kick.wav").bpm is None  # a drum machine's number is no tempo
    # a bare number may be a tempo, an index or a velocity layer: a hint, not a kind
    bare = parse_name("Kicks/Kick 100.wav")
    assert (bare.bpm, bare.bpm_explicit, bare.kind) == (100.0, False, None)
    assert parse_name("Trap Drums 140bpm.wav").kind == "loop"


def test_words_split_at_case_digits_and_punctuation():
    assert words_of("KickDrum_01-hard") == ["kick", "drum", "01", "hard"]
    assert "kick" in words_of("kick01") and "808" in words_of("808s")

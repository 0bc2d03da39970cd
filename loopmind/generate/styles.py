"""Genres and moods as data: tempo ranges, section plans, drum step patterns, tone preferences.

A ``Genre`` says how a song of that kind is built: its tempo range, whether the groove is felt
at half time, how busy it is (``density``), how much it swings, the sections in order with their
bar counts, the roles that play in each and how much energy each has, and one-bar drum step
patterns for building drums from one-shots when the pool has no drum loops. A ``Mood`` says which
tone tags (the ones ``loopmind.library.analysis.tone`` produces) to prefer or avoid, which mode a
key should have, and how it nudges energy and tempo.

Conventions:

* Section names are those of ``SECTION_NAMES``. In the club genres (house, techno, drum and
  bass) ``pre-chorus`` is the build-up before a drop and ``break`` the breakdown.
* Role names are exactly those of ``loopmind.library.analysis.role.ROLES``. ``drumloop`` is
  listed wherever a full drum groove plays: the arranger uses drum loops there when the pool
  has them, and the genre's step patterns on one-shots otherwise.
* A step pattern is 16 velocities (0 = silent, 1 = full) on the 16th-note grid of one 4/4 bar.
  Each role has one or more variations: index 0 is the main groove, the last one the fill (for
  the bar before a section change), any in between alternates. Crashes (``cymbal``) are not
  patterned: they mark section starts, which is the arranger's call.
* ``swing`` delays every odd 16th step by that fraction of a 16th: 0 is straight, 1/3 a
  triplet shuffle (an MPC's 66 %), 0.6 about the most anyone uses. It is applied when steps
  are turned into sample times, not in the patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Iterable, Mapping

import numpy as np

from loopmind.generate.song import Section
from loopmind.library.analysis.role import DRUM_ROLES, ROLES

SECTION_NAMES: tuple[str, ...] = (
    "intro", "verse", "pre-chorus", "hook", "drop", "break", "bridge", "outro")
PEAK_SECTIONS = frozenset({"hook", "drop"})
# every tag ``tone.tags_from_measures`` can set
TONE_TAGS: tuple[str, ...] = (
    "bright", "dark", "warm", "distorted", "clean", "wet", "dry", "punchy", "soft")
STEPS = 16
MIN_BARS = 12  # the shortest plan: three 4-bar sections (intro, one body section, outro)
_GROW_STEP_BARS = 8  # extra length goes to sections in 8-bar phrases where possible
_SECTION_CAP_BARS = {"hook": 32, "drop": 32, "verse": 32}  # longest a section grows to
_DEFAULT_CAP_BARS = 16
_OPTIONAL_SECTIONS = frozenset({"bridge", "break"})  # a short song can do without them


def _roles(text: str) -> tuple[str, ...]:
    roles = tuple(text.split())
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown roles {bad}; use names from ROLES")
    return roles


def _steps(text: str) -> tuple[float, ...]:
    """A 16-step velocity pattern from a string: ``.`` silent, ``1``-``9`` 0.1-0.9, ``x`` 1.0.

    Spaces are ignored, so ``"x... x... x... x..."`` is four on the floor.
    """
    chars = text.replace(" ", "")
    if len(chars) != STEPS:
        raise ValueError(f"pattern {text!r} has {len(chars)} steps, not {STEPS}")
    return tuple(1.0 if c == "x" else 0.0 if c == "." else int(c) / 10 for c in chars)


def _patterns(spec: dict[str, tuple[str, ...]]) -> Mapping[str, tuple[tuple[float, ...], ...]]:
    out = {}
    for role, variations in spec.items():
        if role not in ROLES:
            raise ValueError(f"pattern for unknown role {role!r}")
        out[role] = tuple(_steps(v) for v in variations)
    return MappingProxyType(out)


def _find_unit(plan: list["SectionPlan"], unit: tuple[str, ...]) -> list[int]:
    """Start indices of every occurrence of the name sequence ``unit`` in ``plan`` (maybe [])."""
    n = len(unit)
    names = [p.name for p in plan]
    return [i for i in range(len(names) - n + 1) if n and tuple(names[i:i + n]) == unit]


@dataclass(frozen=True)
class SectionPlan:
    """One section of a genre's plan.

    Attributes:
        name: one of ``SECTION_NAMES``.
        bars: length in 4/4 bars (a multiple of 4).
        roles: the roles that play (names from ``ROLES``).
        energy: 0 (near silence) .. 1 (everything, loud).
    """

    name: str
    bars: int
    roles: tuple[str, ...]
    energy: float

    def __post_init__(self) -> None:
        if self.name not in SECTION_NAMES:
            raise ValueError(f"unknown section name {self.name!r}")
        if self.bars <= 0 or self.bars % 4:
            raise ValueError(f"section bars must be a positive multiple of 4, not {self.bars}")
        if any(r not in ROLES for r in self.roles):
            raise ValueError(f"unknown role in {self.roles}")
        if not 0.0 <= self.energy <= 1.0:
            raise ValueError(f"energy {self.energy} outside 0..1")


@dataclass(frozen=True)
class Genre:
    """How songs of one genre are built.

    Attributes:
        name: canonical name ("drum and bass").
        aliases: other spellings and sub-genres that mean this one ("dnb", "d&b", "jungle").
        bpm_range: (lo, hi) tempo range in BPM, as the genre is usually notated.
        default_bpm: the tempo to use when nothing else decides.
        half_time: the groove is felt at half the notated tempo (snare on beat 3).
        density: 0..1, how many of a section's roles play at once and how busy they are.
        swing: 0..~0.6, delay of the odd 16th steps as a fraction of a 16th.
        sections: the natural plan, in order (about 2.5-3.5 minutes at ``default_bpm``).
        repeat: names of the consecutive sections that form the repeatable unit (a verse and
            its hook, a breakdown, build and drop); ``plan_sections`` repeats or removes it to
            reach a target length.
        patterns: role -> one-bar 16-step velocity patterns (main first, fill last).
        mood_bias: mood name -> weight, the moods the genre implies when the prompt names none.
        bass_glide: the bass (an 808) glides between notes (drill's sliding 808s).
    """

    name: str
    aliases: tuple[str, ...]
    bpm_range: tuple[float, float]
    default_bpm: float
    half_time: bool
    density: float
    swing: float
    sections: tuple[SectionPlan, ...]
    repeat: tuple[str, ...] = ()
    patterns: Mapping[str, tuple[tuple[float, ...], ...]] = field(
        default_factory=lambda: MappingProxyType({}), compare=False)
    mood_bias: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({}), compare=False)
    bass_glide: bool = False

    def __post_init__(self) -> None:
        lo, hi = self.bpm_range
        if not 0 < lo <= self.default_bpm <= hi:
            raise ValueError(f"{self.name}: default tempo outside {self.bpm_range}")
        if not 0.0 <= self.density <= 1.0 or not 0.0 <= self.swing <= 0.6:
            raise ValueError(f"{self.name}: density or swing out of range")
        if self.repeat and not _find_unit(list(self.sections), self.repeat):
            raise ValueError(f"{self.name}: repeat unit {self.repeat} not in its sections")
        for name in self.mood_bias:
            if name not in MOODS:
                raise ValueError(f"{self.name}: unknown mood {name!r} in mood_bias")

    @property
    def has_drums(self) -> bool:
        """Whether any section plays drums."""
        return any(r in DRUM_ROLES or r == "drumloop" for s in self.sections for r in s.roles)

    @property
    def natural_bars(self) -> int:
        return sum(s.bars for s in self.sections)


@dataclass(frozen=True)
class Mood:
    """What a mood word asks of the sounds and the song.

    Attributes:
        name: canonical name ("sad").
        aliases: other words for it ("melancholic").
        tone_tags: preferred tone tags (from ``TONE_TAGS``) -> weight 0..1.
        avoid: tone tags that work against the mood.
        key_mode_bias: "minor", "major" or None (no preference).
        energy_shift: added to every section's energy (-0.3..0.3).
        bpm_shift: BPM added to the default tempo when nothing else sets it.
    """

    name: str
    aliases: tuple[str, ...]
    tone_tags: Mapping[str, float] = field(compare=False)
    avoid: tuple[str, ...] = ()
    key_mode_bias: str | None = None
    energy_shift: float = 0.0
    bpm_shift: float = 0.0

    def __post_init__(self) -> None:
        bad = [t for t in (*self.tone_tags, *self.avoid) if t not in TONE_TAGS]
        if bad:
            raise ValueError(f"{self.name}: unknown tone tags {bad}")
        if self.key_mode_bias not in (None, "minor", "major"):
            raise ValueError(f"{self.name}: key_mode_bias must be minor, major or None")


def _mood(name: str, aliases: str, tags: dict[str, float], avoid: str, mode: str | None,
          energy: float, bpm: float) -> Mood:
    return Mood(name, tuple(a.strip() for a in aliases.split(",") if a.strip()),
                MappingProxyType(dict(tags)), tuple(avoid.split()), mode, energy, bpm)


MOODS: dict[str, Mood] = {m.name: m for m in (
    _mood("dark", "gloomy, moody, ominous, sinister, evil, spooky, eerie, haunting, haunted, "
          "creepy, grim, murky, menacing",
          {"dark": 1.0, "warm": 0.3, "wet": 0.2}, "bright", "minor", 0.0, -2.0),
    _mood("dreamy", "ethereal, floaty, dreamlike, hazy, atmospheric, spacey, spacy, airy, "
          "lush, celestial, heavenly",
          {"wet": 1.0, "soft": 0.7, "warm": 0.4, "clean": 0.3}, "distorted dry", None,
          -0.1, -3.0),
    _mood("aggressive", "hard, angry, heavy, gritty, intense, raw, brutal, violent, fierce, "
          "rough, dirty",
          {"distorted": 1.0, "punchy": 0.8, "dry": 0.3, "bright": 0.2}, "soft", "minor",
          0.15, 4.0),
    _mood("chill", "relaxed, chilled, calm, mellow, laid back, laidback, smooth, cozy, cosy, "
          "peaceful, easy, easygoing, soothing, lazy",
          {"soft": 0.8, "warm": 0.8, "clean": 0.3, "wet": 0.2}, "distorted", None,
          -0.15, -5.0),
    _mood("happy", "uplifting, joyful, cheerful, fun, euphoric, sunny, feel good, feelgood, "
          "positive, hopeful, bouncy, playful",
          {"bright": 1.0, "clean": 0.6, "punchy": 0.3}, "dark distorted", "major", 0.1, 3.0),
    _mood("sad", "melancholic, melancholy, emotional, somber, sombre, depressing, depressed, "
          "heartbreak, heartbroken, lonely, nostalgic, sorrowful, tearful, blue",
          {"soft": 0.6, "wet": 0.5, "dark": 0.4, "warm": 0.3}, "distorted bright punchy",
          "minor", -0.15, -6.0),
    _mood("energetic", "hype, hyped, upbeat, driving, banger, party, lively, powerful, epic, "
          "energizing, energising, pumping, high energy",
          {"punchy": 1.0, "bright": 0.6, "dry": 0.3}, "soft", None, 0.2, 5.0),
)}

# role sets shared by the trap plan's repeated sections
_KEYS_PAD_FX = _roles("keys pad fx")
_HOOK_TRAP = _roles("kick snare clap hihat perc drumloop bass keys lead pad vocal fx")
_VERSE_TRAP = _roles("kick snare hihat drumloop bass keys pad vocal")


def _genre(name: str, aliases: str, bpm_range: tuple[float, float], default_bpm: float, *,
           half_time: bool, density: float, swing: float,
           sections: Iterable[tuple[str, int, str | tuple[str, ...], float]],
           repeat: str, patterns: dict[str, tuple[str, ...]], mood_bias: dict[str, float],
           bass_glide: bool = False) -> Genre:
    plans = tuple(SectionPlan(n, b, r if isinstance(r, tuple) else _roles(r), e)
                  for n, b, r, e in sections)
    return Genre(name=name, aliases=tuple(a.strip() for a in aliases.split(",") if a.strip()),
                 bpm_range=bpm_range, default_bpm=default_bpm, half_time=half_time,
                 density=density, swing=swing, sections=plans,
                 repeat=tuple(repeat.split()) if repeat else (),
                 patterns=_patterns(patterns), mood_bias=MappingProxyType(dict(mood_bias)),
                 bass_glide=bass_glide)


GENRES: dict[str, Genre] = {g.name: g for g in (
    _genre(
        "trap", "trap beat, trapsoul, trap soul, southern trap, atlanta trap, atl trap",
        (130.0, 160.0), 140.0, half_time=True, density=0.6, swing=0.0,
        sections=[("intro", 8, _KEYS_PAD_FX, 0.25), ("hook", 16, _HOOK_TRAP, 0.9),
                  ("verse", 16, _VERSE_TRAP, 0.65), ("hook", 16, _HOOK_TRAP, 0.9),
                  ("verse", 16, _VERSE_TRAP, 0.65), ("hook", 16, _HOOK_TRAP, 0.95),
                  ("outro", 8, _KEYS_PAD_FX, 0.3)],
        repeat="verse hook",
        patterns={
            # half-time: the snare/clap lands on beat 3; the 808 follows the kick
            "kick": ("x......x .x......", "x..x.... ..x..x..", "x......x .x...x.x"),
            "snare": ("........ x.......", "........ x.......", "........ x.....7x"),
            "clap": ("........ x.......", "........ x.......", "........ x...6.x."),
            "hihat": ("x6x6x6x6 x6x6x6x6", "x6x6x6x6 x6x6xxxx", "x6x6x6xx x6x6xxxx"),
            "perc": ("......6. ......6.", "...6.... ......6.", "......6. ..6...6."),
            "bass": ("x......x .x......", "x..x.... ..x..x..", "x......x .x...x.x"),
        },
        mood_bias={"dark": 0.6, "aggressive": 0.3}),
    _genre(
        "hip hop", "hip-hop, hiphop, rap, rap beat, west coast, g funk, gfunk",
        (80.0, 105.0), 92.0, half_time=False, density=0.55, swing=0.12,
        sections=[("intro", 4, _KEYS_PAD_FX, 0.3),
                  ("verse", 16, "kick snare hihat drumloop bass keys vocal", 0.6),
                  ("hook", 8, "kick snare clap hihat perc drumloop bass keys lead pad vocal",
                   0.85),
                  ("verse", 16, "kick snare hihat drumloop bass keys vocal", 0.6),
                  ("hook", 8, "kick snare clap hihat perc drumloop bass keys lead pad vocal",
                   0.85),
                  ("bridge", 8, "kick hihat bass keys pad vocal", 0.5),
                  ("hook", 8, "kick snare clap hihat perc drumloop bass keys lead pad vocal fx",
                   0.9),
                  ("outro", 4, "keys pad", 0.3)],
        repeat="verse hook",
        patterns={
            "kick": ("x.....x. ..x.....", "x.....x. ..x..x..", "x.....x. ..x.x.x."),
            "snare": ("....x... ....x...", "....x... ....x...", "....x... ....x.6x"),
            "clap": ("....x... ....x...",),
            "hihat": ("x.6.x.6. x.6.x.6.", "x6x6x6x6 x6x6x6x6", "x.6.x.6. x.6.xxxx"),
            "perc": ("........ ......5.", "...5.... ......5."),
        },
        mood_bias={"chill": 0.3, "dark": 0.3, "energetic": 0.2}),
    _genre(
        "boom bap", "boom-bap, boombap, golden era, old school, oldschool, east coast",
        (84.0, 96.0), 90.0, half_time=False, density=0.5, swing=0.25,
        sections=[("intro", 4, "keys pad fx", 0.3),
                  ("verse", 16, "kick snare hihat drumloop bass keys vocal", 0.6),
                  ("hook", 8, "kick snare hihat perc drumloop bass keys lead strings vocal",
                   0.8),
                  ("verse", 16, "kick snare hihat drumloop bass keys vocal", 0.6),
                  ("hook", 8, "kick snare hihat perc drumloop bass keys lead strings vocal",
                   0.85),
                  ("bridge", 8, "kick hihat bass keys guitar vocal", 0.5),
                  ("hook", 8, "kick snare hihat perc drumloop bass keys lead strings vocal",
                   0.85),
                  ("outro", 4, "keys drumloop", 0.3)],
        repeat="verse hook",
        patterns={
            # the "boom" on 1 and the and-of-2, the "bap" on 2 and 4, swung 8th hats
            "kick": ("x......x ..x.....", "x.....x. ..x..x..", "x......x ..x.x..."),
            "snare": ("....x... ....x...", "....x... ....x..5", "....x... ....x.6x"),
            "hihat": ("x.6.x.6. x.6.x.6.", "x.6.x.6. x.6.x66.", "x.6.x.6. x.6.x6x6"),
            "perc": ("........ ...5....", "..5..... ...5...."),
        },
        mood_bias={"dark": 0.3, "chill": 0.3, "aggressive": 0.2}),
    _genre(
        "lofi", "lo-fi, lo fi, lofi hip hop, lo-fi hip hop, lofi hiphop, chillhop, "
        "lofi beats, study beats, jazzhop, jazz hop",
        (70.0, 90.0), 80.0, half_time=False, density=0.45, swing=0.3,
        sections=[("intro", 4, "keys fx", 0.2),
                  ("verse", 16, "kick snare hihat drumloop bass keys pad", 0.5),
                  ("hook", 8, "kick snare hihat perc drumloop bass keys lead guitar pad", 0.65),
                  ("break", 8, "keys pad vocal fx", 0.3),
                  ("verse", 16, "kick snare hihat drumloop bass keys pad", 0.5),
                  ("hook", 8, "kick snare hihat perc drumloop bass keys lead guitar pad", 0.7),
                  ("outro", 4, "keys fx", 0.2)],
        repeat="verse hook",
        patterns={
            "kick": ("7......7 ..7.....", "7.....7. ..7..5..", "7......7 ..7.7..."),
            "snare": ("....6... ....6...", "....6... ....6..3", "....6... ....6.45"),
            "hihat": ("5.3.5.3. 5.3.5.3.", "5.3.5.3. 5.3.534.", "5.3.5.3. 5.3.5353"),
            "perc": ("..3...3. ..3...3.",),
        },
        mood_bias={"chill": 0.7, "dreamy": 0.4, "sad": 0.2}),
    _genre(
        "house", "deep house, tech house, afro house, progressive house, disco house, "
        "future house, garage house, chicago house",
        (118.0, 130.0), 124.0, half_time=False, density=0.7, swing=0.08,
        sections=[("intro", 16, "kick hihat perc drumloop", 0.4),
                  ("pre-chorus", 8, "kick clap hihat perc bass pad fx", 0.65),
                  ("drop", 32, "kick clap hihat perc drumloop bass keys lead vocal fx", 0.95),
                  ("break", 16, "pad keys strings vocal fx", 0.35),
                  ("pre-chorus", 8, "clap snare hihat bass pad lead fx", 0.7),
                  ("drop", 16, "kick clap hihat perc drumloop bass keys lead vocal fx", 1.0),
                  ("outro", 8, "kick hihat perc drumloop", 0.4)],
        repeat="break pre-chorus drop",
        patterns={
            # four on the floor, claps on 2 and 4, open hats on the off-beats
            "kick": ("x...x... x...x...", "x...x... x...x...", "x...x... x...x.x."),
            "clap": ("....x... ....x...", "....x... ....x...", "....x... ....x.xx"),
            # the snare only plays in builds: a roll that tightens into the drop
            "snare": ("x...x... x...x...", "x.x.x.x. x.x.x.x.", "xxxxxxxx xxxxxxxx"),
            "hihat": ("..x...x. ..x...x.", "5.x.5.x. 5.x.5.x.", "..x...x. ..x.xxxx"),
            "perc": ("...5...5 ...5.5..", "...5..5. ...5.5.."),
            "bass": ("..x...x. ..x...x.", "..x.x.x. ..x...x."),
        },
        mood_bias={"energetic": 0.6, "happy": 0.4}),
    _genre(
        "techno", "minimal techno, industrial techno, detroit techno, berlin techno, "
        "acid techno, peak time techno",
        (125.0, 135.0), 130.0, half_time=False, density=0.7, swing=0.0,
        sections=[("intro", 16, "kick hihat perc drumloop", 0.45),
                  ("pre-chorus", 16, "kick hihat perc drumloop bass fx", 0.65),
                  ("drop", 32, "kick clap hihat perc drumloop bass lead fx", 0.95),
                  ("break", 16, "pad lead perc fx", 0.4),
                  ("pre-chorus", 8, "hihat perc bass pad fx", 0.7),
                  ("drop", 16, "kick clap hihat perc drumloop bass lead fx", 1.0),
                  ("outro", 8, "kick hihat perc", 0.4)],
        repeat="break pre-chorus drop",
        patterns={
            "kick": ("x...x... x...x...", "x...x... x...x...", "x...x... x...xxxx"),
            "clap": ("....x... ....x...", "....x... ....x..5", "....x... ..x.x.x."),
            "hihat": ("..x...x. ..x...x.", "5575557. 5575557.", "..x...x. ..x.xxxx"),
            "perc": ("x..6..x. ..6..x..", "..6..6.. .6..6..6"),
            "bass": ("..x.x... ..x.x...", "..xx..x. ..x.x..x"),
        },
        mood_bias={"dark": 0.5, "energetic": 0.5}),
    _genre(
        "drum and bass", "drum & bass, drum n bass, drumnbass, dnb, d&b, d n b, jungle, "
        "liquid dnb, liquid drum and bass, neurofunk",
        (170.0, 176.0), 174.0, half_time=False, density=0.8, swing=0.0,
        sections=[("intro", 16, "hihat pad keys fx", 0.3),
                  ("pre-chorus", 8, "snare hihat bass pad fx", 0.6),
                  ("drop", 32, "kick snare hihat perc drumloop bass lead fx", 0.95),
                  ("break", 16, "pad keys strings vocal fx", 0.35),
                  ("pre-chorus", 8, "snare hihat bass pad fx", 0.65),
                  ("drop", 32, "kick snare hihat perc drumloop bass lead vocal fx", 1.0),
                  ("outro", 16, "kick snare hihat drumloop pad", 0.4)],
        repeat="break pre-chorus drop",
        patterns={
            # the two-step: kick on 1 and the and-of-3, snare on 2 and 4
            "kick": ("x....... ..x.....", "x....... ..x..x..", "x....... ..x.x..."),
            "snare": ("....x... ....x...", "....x..4 ....x...", "....x..6 .x..x.xx"),
            "hihat": ("x.x.x.x. x.x.x.x.", "x.5.x.5x x.5.x.5.", "x.x.x.x. x.xxxxxx"),
            "perc": ("..5..... ......5.", "..5...5. ......5."),
        },
        mood_bias={"energetic": 0.8, "dark": 0.3}),
    _genre(
        "drill", "uk drill, ny drill, brooklyn drill, chicago drill, drill beat",
        (138.0, 146.0), 142.0, half_time=True, density=0.6, swing=0.0,
        sections=[("intro", 8, "pad keys strings fx", 0.25),
                  ("hook", 16, "kick snare hihat perc drumloop bass lead strings vocal fx", 0.9),
                  ("verse", 16, "kick snare hihat drumloop bass keys vocal", 0.7),
                  ("hook", 16, "kick snare hihat perc drumloop bass lead strings vocal fx", 0.9),
                  ("verse", 16, "kick snare hihat drumloop bass keys vocal", 0.7),
                  ("hook", 16, "kick snare hihat perc drumloop bass lead strings vocal fx",
                   0.95),
                  ("outro", 8, "pad strings fx", 0.3)],
        repeat="verse hook",
        patterns={
            # half-time snare on beat 3 with the late extra snare, 3-3-2 hats, sparse
            # kicks that the gliding 808 answers
            "kick": ("x....... ..x.....", "x......x ......x.", "x....... ..x..x.x"),
            "snare": ("........ x.......", "........ x....6..", "........ x..6.xx."),
            "hihat": ("x..x..x. x..x..x.", "x..x..x. x..x.xx.", "x..x..x. xx.x.xxx"),
            "perc": ("...5.... .5......", "...5.... .5...5.."),
            "bass": ("x.....x. ..x.....", "x......x ....x.x.", "x.....x. ..x..x.x"),
        },
        mood_bias={"dark": 0.7, "aggressive": 0.7}, bass_glide=True),
    _genre(
        "ambient", "ambience, soundscape, drone music, new age, ambient music",
        (60.0, 90.0), 75.0, half_time=False, density=0.3, swing=0.0,
        sections=[("intro", 8, "pad fx", 0.15),
                  ("verse", 16, "pad keys strings fx", 0.35),
                  ("bridge", 16, "pad lead strings vocal fx", 0.5),
                  ("break", 8, "pad fx", 0.25),
                  ("outro", 8, "pad fx", 0.15)],
        repeat="verse bridge", patterns={},
        mood_bias={"dreamy": 0.8, "chill": 0.5}),
    _genre(
        "pop", "synthpop, synth pop, dance pop, electropop, indie pop, kpop, k-pop, pop song",
        (95.0, 128.0), 112.0, half_time=False, density=0.65, swing=0.0,
        sections=[("intro", 4, "keys pad fx", 0.3),
                  ("verse", 16, "kick hihat drumloop bass keys guitar vocal", 0.5),
                  ("pre-chorus", 8, "kick snare clap hihat bass keys pad vocal fx", 0.7),
                  ("hook", 8, "kick snare clap hihat perc drumloop bass keys lead pad vocal",
                   0.9),
                  ("verse", 16, "kick hihat drumloop bass keys guitar vocal", 0.55),
                  ("pre-chorus", 8, "kick snare clap hihat bass keys pad vocal fx", 0.7),
                  ("hook", 8, "kick snare clap hihat perc drumloop bass keys lead pad vocal",
                   0.9),
                  ("bridge", 8, "keys pad strings vocal", 0.45),
                  ("hook", 16, "kick snare clap hihat perc drumloop bass keys lead pad "
                   "strings vocal fx", 1.0),
                  ("outro", 4, "keys pad", 0.3)],
        repeat="verse pre-chorus hook",
        patterns={
            "kick": ("x.....x. x.......", "x...x... x...x...", "x.....x. x...x.x."),
            "snare": ("....x... ....x...", "....x... ....x...", "....x... ..x.xxxx"),
            "clap": ("....x... ....x...",),
            "hihat": ("x.x.x.x. x.x.x.x.", "x5x5x5x5 x5x5x5x5", "x.x.x.x. x.x.xxxx"),
            "perc": ("..5...5. ..5...5.",),
        },
        mood_bias={"happy": 0.7, "energetic": 0.4}),
)}

DEFAULT_GENRE: Genre = _genre(
    "default", "", (80.0, 140.0), 120.0, half_time=False, density=0.5, swing=0.0,
    sections=[("intro", 8, "keys pad fx", 0.3),
              ("verse", 16, "kick snare hihat drumloop bass keys pad vocal", 0.6),
              ("hook", 16, "kick snare clap hihat perc drumloop bass keys lead pad vocal fx",
               0.9),
              ("verse", 16, "kick snare hihat drumloop bass keys pad vocal", 0.6),
              ("hook", 16, "kick snare clap hihat perc drumloop bass keys lead pad vocal fx",
               0.9),
              ("outro", 8, "keys pad", 0.3)],
    repeat="verse hook",
    patterns={
        "kick": ("x.....x. x.......", "x.....x. x..x....", "x.....x. x...x.x."),
        "snare": ("....x... ....x...", "....x... ....x...", "....x... ..x.x.xx"),
        "clap": ("....x... ....x...",),
        "hihat": ("x.6.x.6. x.6.x.6.", "x.6.x.6. x.6.x666", "x.6.x.6. x.6.xxxx"),
    },
    mood_bias={})


def _norm(word: str) -> str:
    """Lower-case, letters/digits/& only: "Hip-Hop" and "hip hop" both become "hiphop"."""
    return re.sub(r"[^0-9a-z&]+", "", word.lower().replace("'", ""))


_GENRE_INDEX = {_norm(n): g for g in GENRES.values() for n in (g.name, *g.aliases)}
_MOOD_INDEX = {_norm(n): m for m in MOODS.values() for n in (m.name, *m.aliases)}


def find_genre(name: str) -> Genre | None:
    """The genre a name or alias means ("Hip-Hop", "dnb", "deep house"), or None."""
    if _norm(name) == "default":
        return DEFAULT_GENRE
    return _GENRE_INDEX.get(_norm(name))


def find_mood(name: str) -> Mood | None:
    """The mood a name or alias means ("melancholic" -> sad), or None."""
    return _MOOD_INDEX.get(_norm(name))


def tone_preferences(moods: Iterable[Mood], genre: Genre | None = None) -> dict[str, float]:
    """Tone tag -> weight for ranking sounds: positive prefers, negative avoids.

    The moods named decide; when there are none, the genre's ``mood_bias`` moods do, weighted.
    """
    weighted = [(m, 1.0) for m in moods]
    if not weighted and genre is not None:
        weighted = [(MOODS[n], w) for n, w in genre.mood_bias.items()]
    prefs: dict[str, float] = {}
    for mood, w in weighted:
        for tag, v in mood.tone_tags.items():
            prefs[tag] = prefs.get(tag, 0.0) + w * v
        for tag in mood.avoid:
            prefs[tag] = prefs.get(tag, 0.0) - w
    return {t: round(v, 6) for t, v in prefs.items() if v != 0}


def key_mode_bias(moods: Iterable[Mood], genre: Genre | None = None) -> str | None:
    """"minor", "major" or None: the moods' vote (the genre's moods when none are named)."""
    weighted = [(m, 1.0) for m in moods]
    if not weighted and genre is not None:
        weighted = [(MOODS[n], w) for n, w in genre.mood_bias.items()]
    score = sum(w * {"minor": 1, "major": -1}.get(m.key_mode_bias or "", 0)
                for m, w in weighted)
    return "minor" if score > 0 else "major" if score < 0 else None


def pattern_steps(genre: Genre, role: str, *, fill: bool = False,
                  variation: int = 0) -> list[tuple[int, float]]:
    """One bar of a role's step pattern as ``Clip.steps`` pairs (step, velocity).

    Args:
        genre: the genre whose patterns to use.
        role: a drum role (or "bass" for genres with an 808 pattern).
        fill: the fill variation (the last one) instead of ``variation``.
        variation: index into the role's variations, wrapped around.

    Returns:
        (step 0..15, velocity 0..1] pairs, empty when the genre has no pattern for the role.
    """
    variations = genre.patterns.get(role, ())
    if not variations:
        return []
    pattern = variations[-1] if fill else variations[variation % len(variations)]
    return [(i, v) for i, v in enumerate(pattern) if v > 0]


# -- fitting a plan to a duration ------------------------------------------------------------

def _merge_neighbours(plan: list[SectionPlan]) -> list[SectionPlan]:
    out: list[SectionPlan] = []
    for p in plan:
        if out and out[-1].name == p.name:
            q = out[-1]
            roles = q.roles + tuple(r for r in p.roles if r not in q.roles)
            out[-1] = replace(q, bars=q.bars + p.bars, roles=roles,
                              energy=max(q.energy, p.energy))
        else:
            out.append(p)
    return out


def _fit(plan: list[SectionPlan], target: int, unit: tuple[str, ...],
         rng: np.random.Generator) -> list[SectionPlan]:
    """Repeat or remove the genre's unit, then grow or shrink sections, to ``target`` bars."""
    plan = list(plan)
    total = sum(p.bars for p in plan)
    head = 1 if plan[0].name == "intro" else 0
    tail = 1 if len(plan) > 1 and plan[-1].name == "outro" else 0
    starts = _find_unit(plan, unit)
    if starts:
        last = starts[-1]
        copy = plan[last:last + len(unit)]
        unit_bars = sum(p.bars for p in copy)
        insert_at = last + len(unit)
        # a whole unit more while that stays within a phrase of the target (growing the rest
        # in 8-bar phrases sounds better than cutting sections short)
        while total + unit_bars <= target + _GROW_STEP_BARS:
            plan[insert_at:insert_at] = copy
            insert_at += len(copy)
            total += unit_bars
        # a whole unit less while that comes closer, as long as every part of it other than
        # a bridge or breakdown still plays somewhere
        needed = {n for n in unit if n not in _OPTIONAL_SECTIONS}
        while True:
            starts = _find_unit(plan, unit)
            if not starts or abs(total - unit_bars - target) >= abs(total - target):
                break
            i = starts[-1]
            rest = _merge_neighbours(plan[:i] + plan[i + len(unit):])
            if not needed <= {p.name for p in rest} or len({p.name for p in rest}) < 3:
                break
            plan, total = rest, total - unit_bars
    peak = max(plan[head:len(plan) - tail] or plan, key=lambda p: p.energy).name
    # a bridge or breakdown can go entirely when the song must lose at least that much
    for i in reversed(range(head, len(plan) - tail)):
        if i >= len(plan) - tail:  # merging neighbours shortened the plan below i
            continue
        p = plan[i]
        if p.name in _OPTIONAL_SECTIONS and p.name != peak and total - p.bars >= target:
            rest = _merge_neighbours(plan[:i] + plan[i + 1:])
            if len({q.name for q in rest}) >= 3:
                plan, total = rest, total - p.bars
    body = list(range(head, len(plan) - tail))

    grow = target - total
    while grow >= _GROW_STEP_BARS:
        cands = [i for i in body
                 if plan[i].bars + _GROW_STEP_BARS <= _SECTION_CAP_BARS.get(plan[i].name,
                                                                              _DEFAULT_CAP_BARS)]
        if not cands:  # every body section is as long as it gets: lengthen intro/outro
            cands = [i for i in ([0] if head else []) + ([len(plan) - 1] if tail else [])
                     if plan[i].bars + _GROW_STEP_BARS <= 32] or body
        i = int(rng.choice(cands))
        plan[i] = replace(plan[i], bars=plan[i].bars + _GROW_STEP_BARS)
        grow -= _GROW_STEP_BARS
    if grow > 0:  # the last 4 bars lengthen the intro (or outro) by a phrase
        edges = [i for i in ([0] if head else []) + ([len(plan) - 1] if tail else [])
                 if plan[i].bars < 16]
        i = edges[0] if edges else int(rng.choice(body))
        plan[i] = replace(plan[i], bars=plan[i].bars + grow)
    total = max(total, target)

    shrink = total - target
    while shrink > 0:
        cands = [i for i, p in enumerate(plan) if p.bars > 4]
        if not cands:
            shorter = _drop_section(plan, head, tail)
            if shorter is plan:
                break  # nothing can go: the plan is as short as it gets
            plan = shorter
            body = list(range(head, len(plan) - tail))
            shrink = sum(p.bars for p in plan) - target
            continue

        def cut_of(i: int) -> int:
            return min(shrink, max(4, plan[i].bars // 2 // 4 * 4))

        def rank(i: int) -> tuple[int, bool, bool, bool]:
            # longest first; among equals hooks and drops keep their length, a last 4 bars
            # come off the intro or outro, and cuts that leave 8-bar phrases come first
            left = plan[i].bars - cut_of(i)
            return (-plan[i].bars, plan[i].name in PEAK_SECTIONS | {peak},
                    shrink == 4 and i not in (0, len(plan) - 1),
                    not (left % 8 == 0 or left == 4))

        best = min(rank(i) for i in cands)
        i = int(rng.choice([j for j in cands if rank(j) == best]))
        cut = cut_of(i)
        plan[i] = replace(plan[i], bars=plan[i].bars - cut)
        shrink -= cut
    if shrink < 0:  # dropping a section overshot: give the bars back to the first section
        plan[0] = replace(plan[0], bars=plan[0].bars - shrink)
    return plan


def _drop_section(plan: list[SectionPlan], head: int, tail: int) -> list[SectionPlan]:
    """Remove the lowest-energy body section whose loss keeps 3 names and a peak, if any."""
    has_peak = any(p.name in PEAK_SECTIONS for p in plan)
    order = sorted(range(head, len(plan) - tail), key=lambda i: (plan[i].energy, -i))
    for i in order:
        rest = plan[:i] + plan[i + 1:]
        if len({p.name for p in rest}) < 3:
            continue
        if has_peak and not any(p.name in PEAK_SECTIONS for p in rest):
            continue
        return _merge_neighbours(rest)
    return plan


def plan_sections(genre: Genre, *, minutes: float | None, bpm: float,
                  rng: np.random.Generator, energy_shift: float = 0.0) -> list[Section]:
    """The genre's section plan fitted to a duration, with start bars filled in.

    The plan's repeatable unit (verse + hook, breakdown + build + drop) is repeated or removed
    while that comes closer to the target, then sections grow in 8-bar phrases (4 bars at
    most go to the intro) or shrink, longest first, to land exactly on it. The intro and outro
    stay; at least three distinct section names remain. ``rng`` picks among equally good
    choices, so a seed gives the same plan every time.

    Args:
        genre: the genre (``DEFAULT_GENRE`` when none was asked for).
        minutes: target length; None keeps the plan's natural length.
        bpm: the song's tempo (a 4/4 bar lasts ``240 / bpm`` s).
        rng: random source for tie-breaking.
        energy_shift: added to every section's energy (a mood's ``energy_shift``), clipped
            to 0..1.

    Returns:
        Sections in order; bar counts are multiples of 4 summing to ``minutes`` rounded to
        the nearest multiple of 4 bars (at least ``MIN_BARS``).

    Raises:
        ValueError: bpm or minutes not positive.
    """
    if not bpm > 0:
        raise ValueError(f"bpm must be positive, not {bpm}")
    plan = list(genre.sections)
    if minutes is not None:
        if not minutes > 0:
            raise ValueError(f"minutes must be positive, not {minutes}")
        bars = minutes * 60.0 * bpm / 240.0
        target = max(MIN_BARS, 4 * int(np.floor(bars / 4 + 0.5)))
        plan = _fit(plan, target, genre.repeat, rng)
    out: list[Section] = []
    start = 0
    for p in plan:
        energy = float(np.clip(p.energy + energy_shift, 0.0, 1.0))
        out.append(Section(name=p.name, start_bar=start, bars=p.bars, roles=list(p.roles),
                           energy=round(energy, 4)))
        start += p.bars
    return out

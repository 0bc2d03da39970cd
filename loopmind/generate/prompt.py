"""Reading a song prompt: tempo, key, genre, moods, roles and length from a line of words.

``parse_prompt("slow trap 130 bpm in F minor, dark and dreamy")`` gives a ``SongRequest``
with bpm 130, the trap genre, key "F minor", the moods dark and dreamy and the tempo word
"slow". Words it does not understand are listed in ``unknown``, never an error.

The text is read in two passes. Patterns first, on the text itself (case matters for keys):
durations ("3 minutes", "2:30"), tempos ("140", "140bpm", "bpm 140", "120-130"), then keys
("F minor", "Fm", "F#min", "Gb major", "E flat minor", "in the key of D"). What remains is split
into words and matched, longest phrase first, against the vocabularies of genres, moods, tempo
words, tone tags, roles and stop words ("drum and bass" is a genre before "drum" is a role).

A bare note letter is a key only with a mode word ("A minor", "a min"), an accidental ("F#",
"Bb"), in a "key of"/"in" context ("in the key of a", "in D", "in A"), or as a capital B-G on
its own; "a" after "in" is the article ("in a dark mood"), and "a minor key" asks only for a
minor key.

``resolve_tempo`` and ``resolve_key`` decide the song's tempo and key from the request and the
tempos and keys of the loops in the pool: the prompt wins, otherwise the genre's range fitted to
what the pool plays, otherwise the pool's majority.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from loopmind.generate.styles import (
    DEFAULT_GENRE,
    GENRES,
    MOODS,
    TONE_TAGS,
    Genre,
    Mood,
    key_mode_bias,
)
from loopmind.library.analysis.key import KEYS, parse_key
from loopmind.library.analysis.role import DRUM_ROLES, ROLES
from loopmind.library.names import ROLE_WORDS

BPM_MIN, BPM_MAX = 40.0, 300.0
MINUTES_MAX = 60.0
TEMPO_TOLERANCE = 0.02  # relative: loops within 2 % of a tempo count as playing it
HALF_DOUBLE_WEIGHT = 0.75  # a loop at half or double the tempo fits, a little less well
# stop words: understood, carry no meaning for the song
STOP_WORDS = frozenset("""
    a an the in and or with of for to at on by from into some any this that it its is be
    song songs beat beats track tracks tune tunes music bpm make me my i give create generate
    produce want need please something kind sort type style styled vibe vibes feel feeling
    mood like ish kinda very really bit little more less but also plus loop loops key keyed
    tempo around about approx approximately roughly using use just only one &
""".split())
_NEGATIONS = frozenset({"no", "without", "minus", "sans", "except", "nor", "wo"})
_NEGATION_CONNECTORS = frozenset({"and", "or", "&", "any", "the", "nor", "no"})
_BREAKS = frozenset({",", ";", ".", "!", "?", "/"})
# tempo words -> canonical form
_TEMPO_WORDS: dict[str, str] = {
    "slow": "slow", "slower": "slow", "slowed": "slow", "downtempo": "slow",
    "down tempo": "slow", "fast": "fast", "faster": "fast", "uptempo": "fast",
    "up tempo": "fast", "quick": "fast", "rapid": "fast", "medium": "medium",
    "mid tempo": "medium", "midtempo": "medium", "moderate": "medium",
    "half time": "half-time", "halftime": "half-time", "half tempo": "half-time",
    "double time": "double-time", "doubletime": "double-time",
    "double tempo": "double-time",
}
_LENGTH_WORDS = {"short": 2.0, "long": 4.5, "extended": 6.0}
_MODE_WORDS = {"minor": "minor", "major": "major", "min": "minor", "maj": "major"}
_DRUMS = tuple(r for r in ROLES if r in DRUM_ROLES or r == "drumloop")
_GROUP_WORDS: dict[str, tuple[str, ...]] = {
    "drum": _DRUMS, "drums": _DRUMS, "drumkit": _DRUMS, "drum kit": _DRUMS, "kit": _DRUMS,
    "808": ("bass",), "808s": ("bass",),
}
# words that exclude roles on their own
_EXCLUDING_WORDS: dict[str, tuple[str, ...]] = {
    "instrumental": ("vocal",), "drumless": _DRUMS, "beatless": _DRUMS,
}
# ROLE_WORDS names sections or song words too; in a prompt these mean something else
_NOT_ROLE_WORDS = frozenset({"beat", "beats", "break", "breaks", "hook", "groove", "grooves",
                             "noise", "single", "transition", "transitions"})
_NOT_TEMPO = {808, 909, 303, 101, 707, 606, 727}
_NUMBER_WORDS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_ARTICLE_NEXT = frozenset({"key", "scale", "mode", "tonality", "feel", "vibe", "sound",
                           "progression", "chord", "chords", "melody", "tune", "song", "beat",
                           "track"})


@dataclass
class SongRequest:
    """What a prompt asks for; None or empty where it says nothing.

    Attributes:
        text: the prompt as given.
        bpm: tempo in BPM (the middle of a range).
        bpm_range: (lo, hi) when the prompt gave a range ("120-130").
        bpm_words: tempo words in canonical form: "slow", "fast", "medium", "half-time",
            "double-time".
        half_time: the prompt asked for a half-time feel.
        double_time: the prompt asked for a double-time feel.
        key: canonical key (one of ``KEYS``: "F minor", "F# major").
        mode: "minor" or "major" when the prompt named a mode (with or without a tonic).
        genre: the genre, or None.
        moods: the moods, in the order named.
        tones: tone tags named directly ("warm", "punchy").
        roles_wanted: roles asked for ("with vocals", "piano").
        roles_excluded: roles asked to leave out ("no drums", "instrumental").
        minutes: target length in minutes.
        unknown: words not understood (lower case, in order, once each).
        notes: remarks on what was ignored (a second key, a second genre).
    """

    text: str = ""
    bpm: float | None = None
    bpm_range: tuple[float, float] | None = None
    bpm_words: list[str] = field(default_factory=list)
    half_time: bool = False
    double_time: bool = False
    key: str | None = None
    mode: str | None = None
    genre: Genre | None = None
    moods: list[Mood] = field(default_factory=list)
    tones: list[str] = field(default_factory=list)
    roles_wanted: list[str] = field(default_factory=list)
    roles_excluded: list[str] = field(default_factory=list)
    minutes: float | None = None
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def style(self) -> Genre:
        """The genre, or the neutral default when none was named."""
        return self.genre or DEFAULT_GENRE

    @property
    def energy_shift(self) -> float:
        """The moods' energy shifts added up, within -0.3..0.3."""
        return max(-0.3, min(0.3, sum(m.energy_shift for m in self.moods)))

    def describe(self) -> str:
        """A one-line summary: "trap, 130 BPM (slow), F minor, dark + dreamy"."""
        parts: list[str] = []
        if self.genre:
            parts.append(self.genre.name)
        words = list(self.bpm_words)
        if self.bpm_range:
            parts.append(f"{_fmt(self.bpm_range[0])}-{_fmt(self.bpm_range[1])} BPM")
        elif self.bpm is not None:
            parts.append(f"{_fmt(self.bpm)} BPM")
        if words:
            if parts and parts[-1].endswith("BPM"):
                parts[-1] += f" ({', '.join(words)})"
            else:
                parts.append(", ".join(words))
        if self.key:
            parts.append(self.key)
        elif self.mode:
            parts.append(f"a {self.mode} key")
        if self.moods:
            parts.append(" + ".join(m.name for m in self.moods))
        if self.tones:
            parts.append(" + ".join(self.tones))
        if self.minutes is not None:
            s = int(round(self.minutes * 60))
            parts.append(f"{s // 60}:{s % 60:02d}")
        if self.roles_wanted:
            parts.append("with " + ", ".join(self.roles_wanted))
        if self.roles_excluded:
            parts.append("without " + ", ".join(self.roles_excluded))
        line = ", ".join(parts) if parts else "anything"
        if self.unknown:
            line += "; not understood: " + ", ".join(repr(w) for w in self.unknown)
        return line


def _fmt(x: float) -> str:
    return f"{x:g}"


# -- vocabulary -------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9#]+(?:&[a-z0-9]+)*|&|[,;.!?/]")
_TOKEN_ANY_CASE = re.compile(_TOKEN.pattern, re.IGNORECASE)


def _tokens(text: str) -> list[str]:
    """Lower-case words (and "&", "d&b") plus punctuation that ends a phrase."""
    return _TOKEN.findall(text.lower().replace("'", "").replace("\u2019", ""))


def _build_vocabulary() -> dict[tuple[str, ...], tuple[str, object]]:
    vocab: dict[tuple[str, ...], tuple[str, object]] = {}

    def add(phrase: str, kind: str, value: object) -> None:
        toks = tuple(t for t in _tokens(phrase) if t not in _BREAKS)
        if not toks:
            return
        vocab[toks] = (kind, value)
        if len(toks) > 1:  # "hip hop" is also "hiphop", "lo fi" also "lofi"
            vocab[("".join(toks),)] = (kind, value)

    # lowest precedence first: later entries overwrite earlier ones
    for word, role in ROLE_WORDS.items():
        if word not in _NOT_ROLE_WORDS:
            add(word, "role", (role,))
    for role in ROLES:
        add(role, "role", (role,))
        if not role.endswith("s"):
            add(role + "s", "role", (role,))
    for word, roles in _GROUP_WORDS.items():
        add(word, "role", roles)
    for word in STOP_WORDS:
        add(word, "stop", None)
    for word in _NEGATIONS:
        add(word, "neg", None)
    for word, roles in _EXCLUDING_WORDS.items():
        add(word, "exclude", roles)
    for word, mode in _MODE_WORDS.items():
        add(word, "mode", mode)
    for word, minutes in _LENGTH_WORDS.items():
        add(word, "length", minutes)
    for tag in TONE_TAGS:
        add(tag, "tone", tag)
    for phrase, word in _TEMPO_WORDS.items():
        add(phrase, "tempo", word)
    for mood in MOODS.values():
        for phrase in (mood.name, *mood.aliases):
            add(phrase, "mood", mood)
    for genre in GENRES.values():
        for phrase in (genre.name, *genre.aliases):
            add(phrase, "genre", genre)
    return vocab


_VOCABULARY = _build_vocabulary()
_LONGEST_PHRASE = max(len(k) for k in _VOCABULARY)


# -- patterns on the text ---------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
_MIN_WORD = r"(?:minutes?|mins?|m)(?![a-z])"
_SEC_WORD = r"(?:seconds?|secs?)(?![a-z])"
_DURATION_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<![\d:.])(\d{1,2}):([0-5]\d)(?![\d:])"), "clock"),
    (re.compile(rf"(?<![\d.])({_NUM})\s*{_MIN_WORD}\s*(?:and\s*)?(\d{{1,2}})\s*"
                rf"(?:{_SEC_WORD}|s(?![a-z]))", re.I), "min_sec"),
    (re.compile(rf"(?<![\d.])({_NUM})(?:\s*(?:-|to)\s*({_NUM}))?\s*-?\s*{_MIN_WORD}", re.I),
     "min"),
    (re.compile(rf"(?<![\d.])(\d+)\s*-?\s*{_SEC_WORD}", re.I), "sec"),
    (re.compile(r"\b(a|one|two|three|four|five|six|seven|eight|nine|ten)"
                r"(\s+and\s+a\s+half)?[\s-]+minutes?\b", re.I), "words"),
]
_BPM_NUM = r"\d{2,3}(?:\.\d+)?"
_BPM_RANGE = re.compile(
    rf"(?<![\w.:])({_BPM_NUM})\s*(?:-|to)\s*({_BPM_NUM})(?:\s*bpm(?![a-z]))?(?![\w.:])", re.I)
_BPM_EXPLICIT = [
    re.compile(rf"(?<![\w.])({_BPM_NUM})\s*-?\s*bpm(?![a-z])", re.I),
    re.compile(rf"\bbpm\s*[:=]?\s*({_BPM_NUM})(?![\w.])", re.I),
    re.compile(rf"(?:\b(?:at|tempo)\s*[:=]?\s*|@\s*)({_BPM_NUM})(?![\w.%:])", re.I),
]
_BARE_NUMBER = re.compile(rf"(?<![\w.#])({_BPM_NUM})(?![\w.#%:])")
_KEY = re.compile(
    r"(?P<ctx>(?i:\b(?:in\s+the\s+key\s+of|in\s+key\s+of|the\s+key\s+of|key\s+of|key\s*[:=]?"
    r"|in))\s+)?"
    r"(?<![\w#&'\-])(?P<note>[A-Ga-g])"
    r"(?P<acc>\#|b(?=[mM]|(?![\w#&'\-]))|(?i:\s*-?\s*(?:sharp|flat)(?![a-z])))?"
    r"(?P<mode>(?i:\s*-?\s*(?:major|minor|maj|min)\.?(?![a-z]))|m(?![\w#])|M(?![\w#]))?"
    r"(?![\w#&'\-])")


class _Text:
    """The prompt with the parts already understood blanked out (offsets stay valid)."""

    def __init__(self, text: str):
        self.s = text

    def take(self, start: int, end: int) -> None:
        self.s = self.s[:start] + " " * (end - start) + self.s[end:]


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    for a, b in (("\u266f", "#"), ("\u266d", "b"), ("\u2013", "-"), ("\u2014", "-"),
                 ("\u2012", "-")):
        text = text.replace(a, b)
    text = re.sub(r"(?i)\bw/o\b", " without ", text)
    text = re.sub(r"(?i)\bw/(?=\s|[a-z])", " with ", text)
    return text


def _durations(t: _Text, req: SongRequest) -> None:
    for pattern, kind in _DURATION_PATTERNS:
        for m in list(pattern.finditer(t.s)):
            if kind == "clock":
                minutes = int(m.group(1)) + int(m.group(2)) / 60
            elif kind == "min_sec":
                minutes = float(m.group(1)) + int(m.group(2)) / 60
            elif kind == "min":
                lo = float(m.group(1))
                minutes = (lo + float(m.group(2))) / 2 if m.group(2) else lo
            elif kind == "sec":
                minutes = int(m.group(1)) / 60
            else:
                minutes = _NUMBER_WORDS[m.group(1).lower()] + (0.5 if m.group(2) else 0.0)
            if not 0 < minutes <= MINUTES_MAX:
                continue  # left for the word pass, which reports it
            t.take(m.start(), m.end())
            if req.minutes is None:
                req.minutes = round(minutes, 4)
            else:
                req.notes.append(f"ignored a second length {m.group(0).strip()!r}")


def _tempos(t: _Text, req: SongRequest) -> None:
    for m in list(_BPM_RANGE.finditer(t.s)):
        lo, hi = float(m.group(1)), float(m.group(2))
        if BPM_MIN <= lo < hi <= BPM_MAX:
            t.take(m.start(), m.end())
            if req.bpm is None:
                req.bpm_range = (lo, hi)
                req.bpm = (lo + hi) / 2
            else:
                req.notes.append(f"ignored a second tempo {m.group(0).strip()!r}")
    found: list[tuple[int, int, float]] = []
    for pattern in _BPM_EXPLICIT:
        for m in pattern.finditer(t.s):
            value = float(m.group(1))
            if BPM_MIN <= value <= BPM_MAX:
                found.append((m.start(), m.end(), value))
                t.take(m.start(), m.end())
    for m in _BARE_NUMBER.finditer(t.s):
        value = float(m.group(1))
        if BPM_MIN <= value <= BPM_MAX and value not in _NOT_TEMPO:
            found.append((m.start(), m.end(), value))
            t.take(m.start(), m.end())
    # explicit tempos ("140bpm") were found first, so they win over bare numbers
    for _, _, value in found:
        if req.bpm is None:
            req.bpm = value
        elif value != req.bpm:
            req.notes.append(f"ignored a second tempo {_fmt(value)}")


def _in_phrase(text: str, pos: int) -> bool:
    """Whether the word at ``pos`` is part of a vocabulary phrase of two or more words
    ("G funk", "D N B"), read longest phrase first as the word pass will."""
    # match case-insensitively on the text itself so offsets stay those of ``text``
    spans = [(m.start(), m.end(), m.group(0).lower())
             for m in _TOKEN_ANY_CASE.finditer(text.replace("'", " ").replace("\u2019", " "))]
    i = 0
    while i < len(spans):
        for n in range(min(_LONGEST_PHRASE, len(spans) - i), 1, -1):
            if tuple(w for _, _, w in spans[i:i + n]) in _VOCABULARY:
                if spans[i][0] <= pos < spans[i + n - 1][1]:
                    return True
                i += n - 1
                break
        i += 1
    return False


def _keys(t: _Text, req: SongRequest) -> None:
    for m in list(_KEY.finditer(t.s)):
        note, acc, mode = m.group("note"), m.group("acc"), m.group("mode")
        ctx = (m.group("ctx") or "").lower()
        strong = "key" in ctx
        lower = note.islower()
        acc = (acc or "").strip(" -").lower()
        mode_word = (mode or "").strip(" -.")
        if mode_word and mode_word.lower() in _MODE_WORDS:
            if note == "a" and not strong:
                following = re.match(r"\s*([A-Za-z]+)", t.s[m.end():])
                if following and following.group(1).lower() in _ARTICLE_NEXT:
                    # "a minor key": the article and a mode, not the key of A
                    req.mode = req.mode or _MODE_WORDS[mode_word.lower()]
                    t.take(m.start(), m.end())
                    continue
            ok = True
        elif mode_word == "m":
            ok = not lower or bool(acc) or bool(ctx)
        elif mode_word == "M":
            ok = not lower
        elif acc:
            if note == "a" and not strong:
                ok = False  # "a flat beat", "a sharp snare"
            else:
                ok = acc != "b" or not lower or bool(ctx)
        elif strong:
            ok = True
        elif ctx:
            ok = note != "a"  # "in A" is the key, "in a" the article
        else:
            # a capital B-G on its own, unless it starts a phrase ("G funk", "D N B")
            ok = note in "BCDEFG" and not _in_phrase(t.s, m.start("note"))
        if not ok:
            continue
        spelled = {"": "", "#": "#", "b": "b", "sharp": "#", "flat": "b"}[acc]
        spelled_mode = ("minor" if mode_word == "m" or mode_word.lower() in ("min", "minor")
                        else "major")
        key = parse_key(f"{note.upper()}{spelled} {spelled_mode}")
        if key is None:
            continue
        start = m.start("note")
        t.take(start, m.end())
        if req.key is None:
            req.key = key
            req.mode = spelled_mode
        elif key != req.key:
            req.notes.append(f"ignored a second key {key}")


# -- the word pass ----------------------------------------------------------------------------

def _words(t: _Text, req: SongRequest) -> None:
    toks = _tokens(t.s)
    negated = False
    unknown: list[str] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok in _BREAKS:
            negated = False
            i += 1
            continue
        for n in range(min(_LONGEST_PHRASE, len(toks) - i), 0, -1):
            phrase = tuple(toks[i:i + n])
            if any(p in _BREAKS for p in phrase):
                continue
            hit = _VOCABULARY.get(phrase)
            if hit:
                break
        else:
            n, hit = 1, None
        i += n
        if hit is None:
            negated = False
            if tok not in unknown:
                unknown.append(tok)
            continue
        kind, value = hit
        if kind == "neg":
            negated = True
            continue
        if kind == "role":
            target = req.roles_excluded if negated else req.roles_wanted
            target.extend(r for r in value if r not in target)
            continue
        if kind == "stop":
            if " ".join(phrase) not in _NEGATION_CONNECTORS:
                negated = False
            continue
        negated = False
        if kind == "exclude":
            req.roles_excluded.extend(r for r in value if r not in req.roles_excluded)
        elif kind == "genre":
            if req.genre is None:
                req.genre = value
            elif value is not req.genre:
                req.notes.append(f"ignored a second genre {value.name!r}")
        elif kind == "mood":
            if value not in req.moods:
                req.moods.append(value)
        elif kind == "tempo":
            if value not in req.bpm_words:
                req.bpm_words.append(value)
            if value == "half-time":
                req.half_time = True
            elif value == "double-time":
                req.double_time = True
        elif kind == "tone":
            if value not in req.tones:
                req.tones.append(value)
        elif kind == "mode":
            if req.mode is None:
                req.mode = value
        elif kind == "length":
            if req.minutes is None:
                req.minutes = value
    req.roles_wanted = [r for r in req.roles_wanted if r not in req.roles_excluded]
    req.unknown = unknown


def parse_prompt(text: str) -> SongRequest:
    """Read tempo, key, genre, moods, roles and length from a prompt.

    Args:
        text: free text such as "slow trap 130 bpm in F minor, dark and dreamy".

    Returns:
        The request; what was not understood is in ``unknown`` (never an error).
    """
    req = SongRequest(text=text or "")
    t = _Text(_normalize(text or ""))
    _durations(t, req)
    _tempos(t, req)
    _keys(t, req)
    _words(t, req)
    if req.mode is None and req.key:
        req.mode = req.key.split()[1]
    return req


# -- deciding tempo and key -------------------------------------------------------------------

def tempo_window(genre: Genre | None, bpm_words: Sequence[str] = ()) -> tuple[float, float]:
    """The tempo range a genre and tempo words allow.

    "slow" keeps the lower third of the genre's range, "fast" the upper third, "medium" the
    middle one; without a genre the neutral default range is used.
    """
    lo, hi = (genre or DEFAULT_GENRE).bpm_range
    third = (hi - lo) / 3
    if "slow" in bpm_words and "fast" not in bpm_words:
        return lo, lo + third
    if "fast" in bpm_words and "slow" not in bpm_words:
        return hi - third, hi
    if "medium" in bpm_words:
        return lo + third, hi - third
    return lo, hi


def _clean_bpms(pool_bpms: Iterable[float | None]) -> list[float]:
    out = []
    for b in pool_bpms:
        try:
            b = float(b)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if b == b and 20.0 <= b <= 400.0:
            out.append(b)
    return out


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= TEMPO_TOLERANCE * b


def _support(t: float, bpms: list[float]) -> tuple[float, list[float]]:
    """How many loops play at ``t`` (half/double time counting a little less)."""
    score, exact = 0.0, []
    for b in bpms:
        if _near(b, t):
            score += 1.0
            exact.append(b)
        elif _near(b * 2, t) or _near(b / 2, t):
            score += HALF_DOUBLE_WEIGHT
            exact.append(b * 2 if _near(b * 2, t) else b / 2)
    return score, exact


def _best_in(window: tuple[float, float], target: float,
             bpms: list[float]) -> tuple[float, int] | None:
    """The pool tempo (or its half/double) inside ``window`` that most loops play, and how
    many loops play it (at that tempo or half/double it); ties go to the one nearest
    ``target``."""
    lo, hi = window
    cands = sorted({round(c, 3) for b in bpms for c in (b, b * 2, b / 2) if lo <= c <= hi})
    best: tuple[tuple[float, float], float, float] | None = None
    for c in cands:
        score, exact = _support(c, bpms)
        exact.sort()
        value = exact[len(exact) // 2]
        rank = (score, -abs(value - target))
        if best is None or rank > best[0]:
            best = (rank, value, len(exact))
    if best is None:
        return None
    return round(best[1], 2), best[2]


def _majority(bpms: list[float]) -> tuple[float, int]:
    """The tempo most loops play (half/double time counting a little less), and how many."""
    lo, hi = min(bpms) / 2, max(bpms) * 2
    # prefer tempos near the middle of the usual range when support ties (90 over 45 or 180)
    best = _best_in((lo, hi), DEFAULT_GENRE.default_bpm, bpms)
    assert best is not None  # every pool tempo lies in its own range
    return best


def resolve_tempo(request: SongRequest, pool_bpms: Iterable[float | None]) -> tuple[float, str]:
    """The song's tempo and why.

    The prompt's tempo wins (a range is fitted to the pool like a genre's). Otherwise the
    genre's range, narrowed by tempo words ("slow" = lower third), is fitted to the tempo most
    loops in the pool play, counting loops at half or double that tempo; if none fits, the
    pool's majority is moved to the nearest edge of the range (or, with no pool, the genre's
    default tempo, nudged by the moods, is used). Without a genre or tempo words the pool's
    majority decides; with nothing at all, 120 BPM.

    Args:
        request: the parsed prompt.
        pool_bpms: tempos of the loops that may be used (None and NaN are skipped).

    Returns:
        (bpm, reason) with a short human-readable reason.
    """
    bpms = _clean_bpms(pool_bpms)
    if request.bpm is not None and request.bpm_range is None:
        return float(request.bpm), "from the prompt"
    genre = request.genre
    shift = sum(m.bpm_shift for m in request.moods)
    if request.bpm_range is not None:
        window, what = request.bpm_range, "the prompt's range"
        target = (window[0] + window[1]) / 2
    elif genre is not None or request.bpm_words:
        window = tempo_window(genre, request.bpm_words)
        style = genre or DEFAULT_GENRE
        what = (f"{genre.name}" if genre else "the tempo words") + (
            f" ({', '.join(request.bpm_words)})" if request.bpm_words and genre else "")
        target = min(max(style.default_bpm + shift, window[0]), window[1])
    else:
        if not bpms:
            return DEFAULT_GENRE.default_bpm, "no tempo in the prompt or the pool: default"
        value, n = _majority(bpms)
        return value, f"the pool's majority ({n} of {len(bpms)} loops, counting half/double time)"
    span = f"{_fmt(round(window[0], 1))}-{_fmt(round(window[1], 1))}"
    if not bpms:
        return round(target, 2), f"{what} {span} BPM; no loop tempos to fit"
    best = _best_in(window, target, bpms)
    if best is not None:
        value, n = best
        return value, (f"{what} {span} BPM fitted to the pool "
                       f"({n} of {len(bpms)} loops fit, counting half/double time)")
    # nothing in the pool fits: its majority, scaled by 1/2/0.5, clipped into the window
    majority, _ = _majority(bpms)
    options = [majority, majority * 2, majority / 2]
    nearest = min(options, key=lambda b: abs(min(max(b, window[0]), window[1]) - b))
    value = round(min(max(nearest, window[0]), window[1]), 2)
    return value, (f"{what} {span} BPM; no loop fits, the pool's majority "
                   f"{_fmt(round(majority, 1))} BPM moved to {_fmt(value)}")


def _family(key: str) -> int:
    """Relative major/minor share their notes: the tonic of the relative major (0..11)."""
    i = KEYS.index(key)
    return (i % 12 + 3) % 12 if i >= 12 else i


def resolve_key(request: SongRequest,
                pool_keys: Iterable[str | None]) -> tuple[str | None, str]:
    """The song's key and why.

    The prompt's key wins. Otherwise the pool decides: loops are grouped with their relative
    key (A minor and C major share their notes, so both fit), the biggest group wins, and its
    mode comes from the prompt ("a minor key"), then the moods (dark and sad lean minor, happy
    major; the genre's usual moods when none were named), then the most common key in the
    group. With no pitched loops and no key in the prompt, the key stays open (None).

    Args:
        request: the parsed prompt.
        pool_keys: keys of the pitched loops that may be used (any spelling ``parse_key``
            reads; None and unknown spellings are skipped).

    Returns:
        (key or None, reason).
    """
    if request.key:
        return request.key, "from the prompt"
    keys = [k for k in (parse_key(k) if isinstance(k, str) else None for k in pool_keys) if k]
    if not keys:
        return None, "no key in the prompt and no pitched loops in the pool"
    counts = Counter(keys)
    families = Counter(_family(k) for k in keys)
    # ties: the family whose most common key is commoner, then KEYS order (deterministic)
    family = max(families, key=lambda f: (families[f],
                                          max(c for k, c in counts.items() if _family(k) == f),
                                          -f))
    major, minor = KEYS[family], KEYS[(family + 9) % 12 + 12]
    share = f"{families[family]} of {len(keys)} pitched loops"
    mode, why = request.mode, "the prompt's mode"
    if mode is None:
        mode = key_mode_bias(request.moods, request.genre)
        why = ("the " + " + ".join(m.name for m in request.moods) + " mood" if request.moods
               else f"{request.genre.name}'s usual moods" if request.genre else "")
    if mode in ("major", "minor"):
        key = minor if mode == "minor" else major
        return key, f"the pool's {major}/{minor} loops ({share}), {mode} for {why}"
    key = max((major, minor), key=lambda k: (counts[k], k == minor))
    return key, f"the pool's majority ({share} in {major}/{minor})"

"""The one place that reads meaning out of file and folder names.

Producers' packs name things well ("Trap_808_Fmin_140bpm.wav", "Drums/Kicks/kick_03.wav"),
so names are strong evidence for role, tempo, key and kind. The analyzers weigh this evidence
against the audio; nothing here decides alone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from loopmind.library.analysis.role import DRUM_ROLES

# word -> role; a file-name word is stronger evidence than a folder word
ROLE_WORDS: dict[str, str] = {}
for _role, _words in {
    "kick": "kick kicks kik kck bd bassdrum kickdrum",
    "snare": "snare snares snr sn sd rimshot rim sidestick",
    "hihat": "hihat hihats hat hats hh ohh chh openhat closedhat ohat chat",
    "cymbal": "cymbal cymbals cym crash crsh crashes ride rides splash china",
    "tom": "tom toms floortom syntom",
    "clap": "clap claps snap snaps handclap",
    "perc": "perc percs percussion shaker shakers conga congas bongo bongos tamb tambourine "
            "cowbell cowbel cb clave claves woodblock block triangle agogo guiro cabasa djembe "
            "tabla timbale timbales maracas",
    "drumloop": "drumloop drumloops breakbeat breakbeats break breaks beat beats groove grooves "
                "toploop toploops",
    "bass": "bass basses bassline basslines sub subbass 808 808s reese",
    "keys": "keys piano pianos rhodes epiano organ organs chord chords wurli clav "
            "vibraphone vibes marimba",
    "pad": "pad pads atmosphere atmospheres atmos drone drones ambience texture textures",
    "lead": "lead leads synth synths pluck plucks arp arps melody melodies hook brass sax "
            "flute trumpet",
    "strings": "string strings violin violins cello cellos viola orchestra orchestral harp "
               "pizz",
    "guitar": "guitar guitars gtr acoustic",
    "vocal": "vocal vocals vox voc voice voices chant chants choir acapella adlib adlibs",
    "fx": "fx sfx riser risers uplifter downlifter impact impacts sweep sweeps whoosh "
          "whooshes transition transitions noise reverse foley scratch siren laser",
}.items():
    for _w in _words.split():
        ROLE_WORDS.setdefault(_w, _role)

LOOP_WORDS = {"loop", "loops", "lp", "groove", "grooves", "beat", "beats", "break", "breaks"}
ONESHOT_WORDS = {"oneshot", "oneshots", "shot", "shots", "hit", "hits", "single"}
TONE_WORDS = {"dark", "bright", "warm", "distorted", "clean", "wet", "dry", "punchy", "soft",
              "hard", "lofi", "vintage", "analog", "dirty", "heavy", "deep", "airy"}
GENRE_WORDS = {"trap", "hiphop", "boombap", "lofi", "house", "techno", "dnb", "drill",
               "ambient", "pop", "rnb", "jungle", "dubstep", "edm", "trance", "garage"}
_SPLIT = re.compile(r"[^0-9A-Za-z#]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_BPM_EXPLICIT = re.compile(r"(?i)(?<![0-9.])(\d{2,3}(?:\.\d+)?)\s*-?\s*bpm|bpm\s*-?\s*(\d{2,3}(?:\.\d+)?)")
_KEY_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])([A-Ga-g])(#|b|s(?:harp)?|f(?:lat)?)?[\s_-]?"
    r"(major|minor|maj|min|mi|ma|m|M)?(?![A-Za-z])")
_NOT_TEMPO = {808, 909, 303, 101, 707, 606, 727}


@dataclass
class NameHints:
    """What a path's words suggest.

    Attributes:
        role: suggested role or None; role_confidence in [0, 1].
        bpm: tempo written in the name (None if none); bpm_explicit is True for "140bpm".
        key: canonical key ("F minor") written in the name, or None.
        kind: "loop" or "oneshot" if the words say so.
        tags: tone and genre words found in the name.
        words: all lower-case words of the file name and its folders.
    """

    role: str | None = None
    role_confidence: float = 0.0
    bpm: float | None = None
    bpm_explicit: bool = False
    key: str | None = None
    kind: str | None = None
    tags: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


def words_of(text: str) -> list[str]:
    """Lower-case words of a name, split at punctuation, camelCase and digit boundaries."""
    out: list[str] = []
    for part in _SPLIT.split(text):
        if not part:
            continue
        for w in _CAMEL.split(part):
            w = w.lower()
            out.append(w)
            # "kick01" -> "kick", "01"; keep "808" whole
            pieces = re.findall(r"[a-z#]+|\d+", w)
            if len(pieces) > 1:
                out.extend(pieces)
    return out


def find_key(text: str) -> tuple[str | None, tuple[int, int] | None]:
    """The first key spelled in a name or query ("Fmin", "F# minor", "Bb") and its span.

    A lone letter ("A", "e") is too ambiguous to count, and so is a lower-case letter with only
    an accidental ("b" is a word fragment more often than a key).
    """
    from loopmind.library.analysis.key import parse_key

    for m in _KEY_TOKEN.finditer(text):
        tonic, acc, mode = m.group(1), m.group(2), m.group(3)
        if not acc and not mode:
            continue
        if tonic.islower() and not mode:
            continue
        if mode == "M":
            mode = "maj"
        acc = {"s": "#", "sharp": "#", "f": "b", "flat": "b"}.get(acc or "", acc or "")
        mode_word = {"m": "minor", "min": "minor", "mi": "minor", "minor": "minor",
                     "maj": "major", "ma": "major", "major": "major", None: "major"}[
                         mode.lower() if mode and mode != "m" else mode]
        key = parse_key(f"{tonic.upper()}{acc} {mode_word}")
        if key:
            return key, m.span()
    return None, None


def _key_from(stem: str) -> str | None:
    return find_key(stem)[0]


def _bpm_from(stem: str, words: list[str]) -> tuple[float | None, bool]:
    m = _BPM_EXPLICIT.search(stem)
    if m:
        value = float(m.group(1) or m.group(2))
        if 40 <= value <= 300:
            return value, True
    for w in words:
        if w.isdigit() and len(w) in (2, 3):
            value = int(w)
            if 60 <= value <= 200 and value not in _NOT_TEMPO:
                return float(value), False
    return None, False


def parse_name(path: os.PathLike | str, *, folder_levels: int = 3) -> NameHints:
    """Read role, tempo, key, kind and tags from a file name and its nearest folders."""
    p = os.fsdecode(path)
    head, name = os.path.split(p)
    stem = os.path.splitext(name)[0]
    folders: list[str] = []
    for _ in range(folder_levels):
        head, part = os.path.split(head)
        if not part:
            break
        folders.append(part)
    file_words = words_of(stem)
    folder_words = [w for f in folders for w in words_of(f)]
    hints = NameHints(words=file_words + folder_words)

    # role: file-name words first (later words such as "kick" in "808_kick" win over "808"),
    # then the nearest folder
    def role_in(words: list[str]) -> str | None:
        found = [ROLE_WORDS[w] for w in words if w in ROLE_WORDS]
        if not found:
            return None
        specific = [r for r in found if r not in ("drumloop", "bass", "keys", "lead")]
        return (specific or found)[-1]

    role = role_in(file_words)
    if role:
        hints.role, hints.role_confidence = role, 0.8
    else:
        for f in folders:
            role = role_in(words_of(f))
            if role:
                hints.role, hints.role_confidence = role, 0.6
                break
    all_words = set(file_words) | set(folder_words)
    if all_words & LOOP_WORDS:
        hints.kind = "loop"
    elif all_words & ONESHOT_WORDS:
        hints.kind = "oneshot"
    if hints.role in DRUM_ROLES and \
            hints.kind == "loop" and not (set(file_words) & set(ROLE_WORDS) - {"loop"}):
        hints.role = "drumloop"
    hints.bpm, hints.bpm_explicit = _bpm_from(stem, file_words)
    if hints.bpm and hints.bpm_explicit and hints.kind is None:
        # "140bpm" in a name means a loop; a bare number ("Kick 100", "Snare_v64": an index, a
        # velocity layer) is only a tempo hint, and the audio decides the kind
        hints.kind = "loop"
    hints.key = _key_from(stem)
    hints.tags = sorted((all_words & TONE_WORDS) | (all_words & GENRE_WORDS))
    return hints

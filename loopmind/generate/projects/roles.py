"""A track's role from what a project says about it: its name, its sample, its plugin, and as a
last resort its notes.

The words go through ``loopmind.library.names`` (the one place that maps names to roles);
this module only adds what DAWs name their instruments (a "Kicker" plays kicks, "LB302" is a
bass synth) and a pitch-range guess for unnamed synths.
"""

from __future__ import annotations

import os
import re

from loopmind.generate.projects.model import ROLES, Note, Track

# instrument plugins whose sound is (almost always) one role; keys are lower-case words
PLUGIN_ROLES: dict[str, str] = {
    # LMMS
    "kicker": "kick", "lb302": "bass", "lb303": "bass", "organic": "keys", "sfxr": "fx",
    "monstro": "lead", "opulenz": "keys", "malletsstk": "keys", "mallets": "keys",
    # FL Studio
    "fruity kick": "kick", "kick": "kick", "fruit kick": "kick", "boobass": "bass",
    "fl keys": "keys", "fruity keys": "keys", "transistor bass": "bass", "sakura": "strings",
    "fl slayer": "guitar", "slayer": "guitar", "fpc": "drumloop", "slicex": "drumloop",
    "fruity slicer": "drumloop", "drumaxx": "perc", "drumpad": "perc", "fruity drumsynth live":
    "perc", "toxic biohazard": "lead", "poizone": "lead", "autogun": "lead", "sawer": "lead",
    "ogun": "pad", "fruity granulizer": "pad", "vocodex": "vocal", "beepmap": "fx",
    "fruity dance": "fx",
}
# words of DAW projects and their stock sample folders that would be too loose in a sample
# library's names (LMMS's drumsynth kits: "wood.ds", "linn_cga1.ds"; "bell" in a project is a
# keys patch, in a library often a percussion hit; "EP" names a record as often as an
# electric piano); the general instrument words
# ("hh", "snr", "sax", "vibes", ...) live in ``loopmind.library.names``
EXTRA_WORDS: dict[str, str] = {
    "wood": "perc", "cga": "perc", "cgahi": "perc", "cgalo": "perc", "zap": "fx", "zaps": "fx",
    "sonar": "fx", "bell": "keys", "bells": "keys", "ep": "keys",
}
_GENERIC_NAMES = re.compile(r"(?i)^(default[ _-]?preset|standard[ _-]?preset|untitled|channel|"
                            r"track|insert|sampler|instrument|pattern|audio|new|sample track)?"
                            r"\s*(#?\d*|\(\d+\))$")


def _extra_role(text: str) -> str | None:
    from loopmind.library.names import words_of

    for w in reversed(words_of(text)):
        if w in EXTRA_WORDS:
            return EXTRA_WORDS[w]
    return None


def _role_in_words(text: str) -> str | None:
    from loopmind.library.names import parse_name

    if not text:
        return None
    flat = text.replace("\\", "/").replace("/", " ")
    return parse_name(flat, folder_levels=0).role or _extra_role(flat)


def _role_in_path(path: str) -> str | None:
    from loopmind.library.names import parse_name

    # Windows paths in FL projects: split on both separators
    path = path.replace("\\", "/")
    return parse_name(path, folder_levels=2).role or \
        _extra_role(os.path.splitext(os.path.basename(path))[0])


def role_from_notes(notes: list[Note]) -> str | None:
    """bass / keys / lead from where and how a synth plays: low lines are bass, stacked notes
    are chords (keys), a single high line is a lead. None with too few notes to tell."""
    if len(notes) < 4:
        return None
    keys = sorted(n.key for n in notes)
    if len(set(keys)) <= 2:
        return None   # one or two pitches: a drum or a one-shot, not a line
    median = keys[len(keys) // 2]
    starts: dict[float, int] = {}
    for n in notes:
        k = round(n.start_beat, 2)
        starts[k] = starts.get(k, 0) + 1
    stacked = sum(1 for v in starts.values() if v >= 3) / max(len(starts), 1)
    if median < 48:
        return "bass"
    if stacked >= 0.5:
        avg_len = sum(n.length for n in notes) / len(notes)
        return "pad" if avg_len >= 4 else "keys"
    return "lead"


def guess_role(name: str | None, *, sample_path: str | None = None, plugin: str | None = None,
               notes: list[Note] | None = None) -> tuple[str | None, str | None]:
    """The role of a track and what it was read from.

    Args:
        name: the track or channel name (strongest evidence unless it is generic).
        sample_path: the sample a sampler plays.
        plugin: the instrument plugin's name.
        notes: the notes it plays (pitch-range guess for unnamed synths).

    Returns:
        (role or None, source: "name" | "sample" | "plugin" | "notes" | None).
    """
    if name and not _GENERIC_NAMES.match(name.strip()):
        role = _role_in_words(name)
        if role:
            return role, "name"
    if sample_path:
        role = _role_in_path(sample_path)
        if role:
            return role, "sample"
    if plugin:
        p = plugin.strip().lower()
        role = PLUGIN_ROLES.get(p)
        if role is None:
            base = os.path.splitext(os.path.basename(p.replace("\\", "/")))[0]
            role = PLUGIN_ROLES.get(base) or _role_in_words(base)
        if role:
            return role, "plugin"
    if notes:
        role = role_from_notes(notes)
        if role:
            return role, "notes"
    return None, None


def track_notes(track: Track, beats_per_bar: float, *, limit: int = 2000) -> list[Note]:
    """A track's notes on the song's timeline (start_beat from bar 0), muted clips left out."""
    out: list[Note] = []
    for clip in track.clips:
        if clip.muted or not clip.notes:
            continue
        base = clip.start_bar * beats_per_bar
        for n in clip.notes:
            out.append(Note(base + n.start_beat, n.length, n.key, n.velocity))
            if len(out) >= limit:
                return out
    return out


def canonical_role(text: str | None) -> str | None:
    """A role word from a source that states roles ("Kick", "hi-hat", "drums")."""
    if not text:
        return None
    t = str(text).strip().lower()
    if t in ROLES:
        return t
    if t in ("drums", "drum", "drum loop", "drumloop", "beat", "top loop", "toploop"):
        return "drumloop"
    return _role_in_words(t)

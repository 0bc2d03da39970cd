"""Direct composition: arrange the pool's loops into sections.

The genre's plan says which roles play in which section (``styles.plan_sections``). For each
role, loops are ranked by how well they fit the song: the pitch shift to the song's key, the
stretch to its tempo, how their sound sits with what is already chosen (the embedder's vectors)
and the mood's tone tags. Sections of different kinds get different loops from the top of that
ranking (a verse and a hook do not share every loop), and drums are built from one-shots with
the genre's step patterns when the pool has no drum loops. Everything random comes from one
seeded generator, so a library, a prompt and a seed give the same song.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from loopmind.generate.pool import Pool, PoolError, PoolItem
from loopmind.generate.song import Clip, Song, Track

# a role the pool lacks is played by a neighbour, when there is one
ROLE_SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "keys": ("guitar", "strings", "pad", "lead"),
    "lead": ("keys", "guitar", "strings", "vocal"),
    "pad": ("strings", "keys"),
    "strings": ("pad", "keys"),
    "guitar": ("keys", "lead"),
    "vocal": ("lead",),
    "clap": ("snare",),
    "snare": ("clap",),
    "perc": ("tom",),
}
DRUM_PARTS = ("kick", "snare", "clap", "hihat", "perc", "cymbal", "tom")
UNPITCHED = frozenset(DRUM_PARTS) | {"drumloop", "fx"}
MAX_SEMITONES = 5
TRACK_COLORS = {"drumloop": "#ff8c1a", "kick": "#ff6b1a", "snare": "#ffa64d", "clap": "#ffb366",
                "hihat": "#ffd11a", "perc": "#e6b800", "cymbal": "#ffe066", "tom": "#cc7a00",
                "bass": "#9b59ff", "keys": "#4d9fff", "pad": "#7a5cff", "lead": "#ff4df0",
                "strings": "#5ce1ff", "guitar": "#4dffb8", "vocal": "#ff5c8a", "fx": "#b3b3ff"}
# a section's energy below this plays its quieter parts a little softer
SOFT_ENERGY = 0.4


@dataclass
class Choice:
    item: PoolItem
    score: float
    semitones: int
    stretch: float
    source_bars: int


@dataclass
class Arrangement:
    song: Song
    reasons: dict[str, str] = field(default_factory=dict)


def semitones_to(source_key: str | None, song_key: str | None) -> int | None:
    """The pitch shift that brings a loop in ``source_key`` into ``song_key``.

    A loop in the other mode moves to the song's relative key (a C major loop fits A minor
    unshifted). The smaller of the up and down shifts is taken; None when either key is open.
    """
    from loopmind.library.analysis.key import KEYS, parse_key

    a, b = parse_key(source_key or ""), parse_key(song_key or "")
    if a is None or b is None:
        return None
    ia, ib = KEYS.index(a), KEYS.index(b)
    ta, tb = ia % 12, ib % 12
    if (ia >= 12) != (ib >= 12):
        # compare in the song's mode: a major source's relative minor is 9 semitones up
        ta = (ta + 9) % 12 if ib >= 12 else (ta + 3) % 12
    d = (tb - ta) % 12
    return d - 12 if d > 6 else d


def _fit(item: PoolItem, bpm: float, key: str | None) -> tuple[float, int, int] | None:
    """(stretch, semitones, bars at song tempo) for a loop, or None if it cannot fit."""
    from loopmind.index.search import STRETCH_MAX, STRETCH_MIN

    bars = item.loop_bars
    if not bars or not item.bpm:
        return None
    best = None
    for mult in (1.0, 2.0, 0.5):
        r = bpm / (item.bpm * mult)
        n = bars * mult
        if STRETCH_MIN <= r <= STRETCH_MAX and n == int(n) and 1 <= n <= 16:
            if best is None or abs(math.log(r)) < abs(math.log(best[0])):
                best = (r, int(n))
    if best is None:
        return None
    semis = 0
    if item.role not in UNPITCHED and key and item.key:
        s = semitones_to(item.key, key)
        if s is None or abs(s) > MAX_SEMITONES:
            return None
        semis = s
    return best[0], semis, best[1]


def _cos(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None or len(a) != len(b):
        return 0.0
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b) / (na * nb) if na and nb else 0.0


def rank_loops(items: list[PoolItem], *, bpm: float, key: str | None,
               anchor: np.ndarray | None, tones: dict[str, float]) -> list[Choice]:
    """Loops that can play in the song, best first.

    Score: key (a smaller shift is better), stretch (closer to 1 is better), sound coherence
    with ``anchor`` (the mean vector of what is chosen so far), mood tone tags, and the
    confidence of the measured tempo.
    """
    out = []
    for it in items:
        fit = _fit(it, bpm, key)
        if fit is None:
            continue
        r, semis, n = fit
        key_score = 1.0 - abs(semis) / (MAX_SEMITONES + 1)
        if it.role not in UNPITCHED and key and not it.key:
            key_score = 0.5  # a pitched loop of unknown key is a gamble
        tempo_score = 1.0 - abs(math.log(r)) / math.log(1.25)
        coherence = _cos(it.vector, anchor)
        tone = sum(tones.get(t, 0.0) for t in it.tags)
        score = (1.0 * key_score + 1.0 * tempo_score + 1.5 * coherence + 0.5 * math.tanh(tone)
                 + 0.3 * it.bpm_confidence)
        out.append(Choice(it, score, semis, r, n))
    out.sort(key=lambda c: (-c.score, c.item.id))
    return out


def _pick(choices: list[Choice], rng: np.random.Generator, *, avoid: set[int],
          temperature: float = 0.15) -> Choice | None:
    """A choice near the top: softmax over the best few, avoiding ``avoid`` when possible."""
    fresh = [c for c in choices if c.item.id not in avoid] or choices
    top = fresh[:4]
    if not top:
        return None
    s = np.array([c.score for c in top])
    p = np.exp((s - s.max()) / temperature)
    p /= p.sum()
    return top[int(rng.choice(len(top), p=p))]


def _rank_oneshots(items: list[PoolItem], anchor, tones) -> list[PoolItem]:
    def score(it: PoolItem) -> float:
        return 1.5 * _cos(it.vector, anchor) + 0.5 * math.tanh(
            sum(tones.get(t, 0.0) for t in it.tags))

    return sorted(items, key=lambda it: (-score(it), it.id))


def arrange(pool: Pool, request, *, seed: int, bpm: float | None = None,
            key: str | None = None, minutes: float | None = None) -> Song:
    """Arrange a song from the pool (direct mode).

    Args:
        pool: the sounds (``pool.load_pool``).
        request: a ``prompt.SongRequest`` (``parse_prompt("")`` for none).
        seed: the random seed (same pool, request and seed → same song).
        bpm, key, minutes: override the prompt.

    Raises:
        PoolError: the pool has no loop or one-shot that can play at all.
    """
    from loopmind.generate import styles
    from loopmind.generate.prompt import resolve_key, resolve_tempo

    rng = np.random.default_rng(seed)
    genre = request.style
    notes: list[str] = list(request.notes)
    if request.unknown:
        notes.append("words not understood (ignored): " + ", ".join(request.unknown))
    loops = pool.loops()
    if bpm is None:
        bpm, why_bpm = resolve_tempo(request, [i.bpm for i in loops])
    else:
        why_bpm = "from --bpm"
    if key is None:
        key, why_key = resolve_key(request, [i.key for i in loops if i.role not in UNPITCHED])
    else:
        why_key = "from --key"
    minutes = minutes if minutes is not None else request.minutes
    # a trained arranger (models/arranger.safetensors or the user's) plans when present;
    # absent, disabled or refused, the genre's rule-based plan does
    from loopmind.generate.train.arranger import learned_plan

    sections, why_plan = learned_plan(genre, request, minutes=minutes, bpm=bpm, rng=rng)
    if why_plan:
        notes.append(why_plan)
    if sections is None:
        sections = styles.plan_sections(genre, minutes=minutes, bpm=bpm, rng=rng,
                                        energy_shift=request.energy_shift)
    tones = styles.tone_preferences(request.moods, request.genre)
    for t in request.tones:
        tones[t] = tones.get(t, 0.0) + 1.0
    excluded = set(request.roles_excluded)
    wanted = [r for r in request.roles_wanted if r not in excluded]

    # which roles the plan asks for, in the order they appear (drums first: they anchor)
    planned: list[str] = []
    for s in sections:
        for r in s.roles:
            if r not in planned and r not in excluded:
                planned.append(r)
    for r in wanted:
        if r not in planned:
            planned.append(r)
            for s in sections:
                if s.energy >= 0.5 and r not in s.roles:
                    s.roles.append(r)

    song = Song(bpm=round(float(bpm), 3), key=key, sections=sections, seed=seed,
                prompt=request.text or None, genre=genre.name if request.genre else None,
                moods=[m.name for m in request.moods], mode="direct", notes=notes,
                swing=float(genre.swing))
    notes.append(f"tempo {bpm:g} BPM: {why_bpm}")
    notes.append(f"key {key or 'open'}: {why_key}")

    # the anchor is what the song sounds like so far: the first picks set it
    vectors = [i.vector for i in pool.items if i.vector is not None]
    anchor = np.mean(vectors, axis=0) if vectors else None
    chosen_vecs: list[np.ndarray] = []

    def update_anchor(it: PoolItem) -> None:
        nonlocal anchor
        if it.vector is not None:
            chosen_vecs.append(it.vector)
            anchor = np.mean(chosen_vecs, axis=0)

    have_drumloops = bool(rank_loops(pool.by_role("drumloop", kind="loop"), bpm=bpm, key=key,
                                     anchor=anchor, tones=tones))
    # plans list both drum loops and single drums; play what the pool has
    drum_mode = "loops" if have_drumloops else "hits"
    tracks: dict[str, Track] = {}
    used: dict[str, set[int]] = {}
    played_by: dict[str, str] = {}

    for role in _play_order(planned):
        if role in DRUM_PARTS and drum_mode == "loops" and role not in ("perc", "cymbal"):
            continue  # the drum loop plays the kit
        if role == "drumloop" and drum_mode == "hits":
            continue
        source_role = role
        candidates: list[Choice] = []
        if role in DRUM_PARTS:
            hits = [i for i in pool.by_role(role) if i.kind == "oneshot"]
            if not hits and role in ROLE_SUBSTITUTES:
                for sub in ROLE_SUBSTITUTES[role]:
                    hits = [i for i in pool.by_role(sub) if i.kind == "oneshot"]
                    if hits:
                        source_role = sub
                        break
            if not hits or not styles.pattern_steps(genre, role):
                if role in ("kick", "snare", "hihat") and not hits:
                    notes.append(f"no {role} one-shots or drum loops in the pool: "
                                 f"the song has no {role}")
                continue
            ranked = _rank_oneshots(hits, anchor, tones)
            _place_pattern(song, tracks, role, ranked, genre, rng, used)
            update_anchor(ranked[0])
            if source_role != role:
                notes.append(f"no {role} in the pool: {source_role} plays its part")
            continue
        candidates = rank_loops(pool.by_role(role, kind="loop"), bpm=bpm, key=key,
                                anchor=anchor, tones=tones)
        if not candidates:
            for sub in ROLE_SUBSTITUTES.get(role, ()):
                if sub in played_by.values() or sub in planned:
                    continue
                candidates = rank_loops(pool.by_role(sub, kind="loop"), bpm=bpm, key=key,
                                        anchor=anchor, tones=tones)
                if candidates:
                    source_role = sub
                    break
        if not candidates:
            if pool.by_role(role):
                notes.append(f"no {role} loop fits {bpm:g} BPM / {key or 'any key'} "
                             f"(stretch 0.8-1.25, at most {MAX_SEMITONES} semitones): left out")
            elif role not in ("vocal", "strings", "guitar", "perc", "cymbal", "tom"):
                notes.append(f"no {role} in the pool: left out")
            continue
        if source_role != role:
            notes.append(f"no {role} that fits: {source_role} plays its part")
        played_by[role] = source_role
        _place_loops(song, tracks, role, candidates, rng, used)
        update_anchor(candidates[0].item)

    song.tracks = [tracks[r] for r in _play_order(list(tracks))]
    if not song.tracks:
        raise PoolError(f"nothing in {pool.source} can play at {bpm:g} BPM"
                        + (f" in {key}" if key else "")
                        + ": it needs loops whose tempo a 0.8-1.25 stretch reaches, "
                          "or drum one-shots")
    # sections where nothing ended up playing still count (silence is a choice), but say so
    for s in song.sections:
        if not any(c.start_bar < s.end_bar and c.end_bar > s.start_bar
                   for t in song.tracks for c in t.clips):
            notes.append(f"{s.name} at bar {s.start_bar + 1} has nothing the pool can play")
    return song


def _play_order(roles: list[str]) -> list[str]:
    order = ["drumloop", *DRUM_PARTS, "bass", "keys", "pad", "strings", "guitar", "lead",
             "vocal", "fx"]
    return sorted(roles, key=lambda r: order.index(r) if r in order else len(order))


def _section_kind(name: str) -> str:
    return {"hook": "peak", "drop": "peak", "pre-chorus": "build", "intro": "edge",
            "outro": "edge"}.get(name, name)


def _place_loops(song: Song, tracks: dict[str, Track], role: str, ranked: list[Choice],
                 rng: np.random.Generator, used: dict[str, set[int]]) -> None:
    """One loop per kind of section (verse, hook, ...), different where the pool allows."""
    track = tracks.setdefault(role, Track(name=role, role=role, color=TRACK_COLORS.get(role)))
    per_kind: dict[str, Choice] = {}
    seen = used.setdefault(role, set())
    for s in song.sections:
        if role not in s.roles:
            continue
        kind = _section_kind(s.name)
        if kind not in per_kind:
            c = _pick(ranked, rng, avoid=seen)
            if c is None:
                return
            per_kind[kind] = c
            seen.add(c.item.id)
        c = per_kind[kind]
        gain = -3.0 if s.energy < SOFT_ENERGY and role not in ("pad", "fx") else 0.0
        clip = Clip(start_bar=s.start_bar, bars=s.bars, source_path=c.item.path,
                    source_start_s=c.item.start_s, source_end_s=c.item.end_s,
                    segment_id=c.item.id, source_bpm=c.item.bpm, source_key=c.item.key,
                    source_bars=float(c.source_bars), stretch=round(c.stretch, 6),
                    semitones=int(c.semitones), gain_db=gain)
        if role == "fx":
            # an fx loop marks the entry of the section rather than droning through it
            clip.bars = min(s.bars, max(1, c.source_bars))
        track.clips.append(clip)


def _place_pattern(song: Song, tracks: dict[str, Track], role: str, ranked: list[PoolItem],
                   genre, rng: np.random.Generator, used: dict[str, set[int]]) -> None:
    """A drum part from one-shots: the genre's step pattern, a variation per section kind and a
    fill in the last bar before a new section."""
    from loopmind.generate import styles
    from loopmind.generate.song import STEPS_PER_BAR

    track = tracks.setdefault(role, Track(name=role, role=role, color=TRACK_COLORS.get(role)))
    hit = ranked[min(len(ranked) - 1, int(rng.integers(0, min(2, len(ranked)))))]
    used.setdefault(role, set()).add(hit.id)
    n_var = len(genre.patterns.get(role, ())) or 1
    for si, s in enumerate(song.sections):
        if role not in s.roles:
            continue
        variation = 0 if _section_kind(s.name) != "peak" else min(1, n_var - 2) if n_var > 2 \
            else 0
        steps: list[tuple[int, float]] = []
        for b in range(s.bars):
            last = b == s.bars - 1 and si < len(song.sections) - 1
            bar = styles.pattern_steps(genre, role, fill=last and n_var > 1,
                                       variation=variation)
            soft = 0.8 if s.energy < SOFT_ENERGY else 1.0
            steps += [(b * STEPS_PER_BAR + st, round(v * soft, 4)) for st, v in bar]
        if not steps:
            continue
        track.clips.append(Clip(start_bar=s.start_bar, bars=s.bars, source_path=hit.path,
                                source_start_s=hit.start_s, source_end_s=hit.end_s,
                                segment_id=hit.id, source_key=hit.key, steps=steps))


def summary(song: Song) -> dict:
    """A short description of an arrangement (what ``generate --json`` prints)."""
    return {
        "bpm": song.bpm, "key": song.key, "genre": song.genre, "moods": song.moods,
        "bars": song.bars, "duration_s": round(song.duration_s, 2),
        "sections": [{"name": s.name, "start_bar": s.start_bar, "bars": s.bars,
                      "energy": s.energy,
                      "roles": sorted({t.role for t in song.tracks for c in t.clips
                                       if c.start_bar < s.end_bar and c.end_bar > s.start_bar})}
                     for s in song.sections],
        "tracks": [{"name": t.name, "role": t.role, "clips": len(t.clips),
                    "sounds": sorted({c.source_path for c in t.clips})} for t in song.tracks],
        "notes": song.notes,
    }

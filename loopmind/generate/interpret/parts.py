"""New parts from the pool's own slices: the interpretive mode's composer.

Given a song skeleton from the direct arranger (sections with their roles, tempo, key),
``interpret_parts`` writes generated tracks whose clips trigger the user's slices
(``Clip.events``):

* drums: when the pool has drum loops, a "drumloop" part re-sequenced from their slices by the
  sequence model (which kind of slice plays where in the bar), each section played mostly
  from one or two source loops (one kit, not a collage); otherwise kick, snare, hihat, ...
  parts from the user's one-shots (or drum-loop slices of that drum) on bar patterns learned
  from the pool's drum loops (the genre's pattern when it has none), varied per bar and by
  section energy; a drum-loop slice plays at its own level in its loop (loops of different
  levels brought to the quietest one used) and is chosen to last until the next hit, so the
  part has no holes its loops never had;
* bass and melodic parts (bass, keys, lead, guitar, vocal, strings): a new diatonic chord
  progression in the song's key (chords weighted by the harmony of the pool), a rhythm and
  slice kinds from the sequence model (the pool's kick bars or simple patterns for a role
  with no loops), notes chosen from the pool's melodic intervals and snapped to the chord
  (strong beats) or the scale, each played by a user slice re-pitched by at most 7
  semitones (chord material is re-pitched root to root).

Pads and fx are left to the direct arranger (and the textures module). A role with too few
usable slices borrows a neighbouring role's slices or is left to the direct arranger; every
such decision is a note. Each section gets its own bars. Two guards keep bars new: no bar may
put most of one source bar's slices back at their own steps (``is_copy``), and no drum bar may
repeat the pattern of a source bar at the song's tempo (``pattern_copy``: played back it would
be the same audio). Everything random comes from the song's seed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from loopmind.generate.interpret.learn import PoolModel, RoleStats, learn, parse_token
from loopmind.generate.interpret.slices import (CHORD_ROLES, STEPS_PER_BAR, Slice, SliceBank,
                                                slice_pool)
from loopmind.generate.song import Clip, SliceEvent, Song, Track

MELODIC_ROLES = ("bass", "keys", "lead", "guitar", "vocal", "strings")
DRUM_HIT_ROLES = ("kick", "snare", "clap", "hihat", "perc", "cymbal", "tom")
MIN_ROLE_SLICES = 4
MAX_SEMITONES = 7
SOFT_ENERGY = 0.4
TEMPERATURE = 1.1
# which drum of a drum loop a one-shot role's rhythm is learned from
_RHYTHM_CLASS = {"kick": "kick", "snare": "snare", "clap": "snare", "hihat": "hihat",
                 "perc": "hihat", "tom": "snare", "cymbal": "kick"}
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# diatonic triads (degree offset from the tonic, quality), the diminished one left out
_TRIADS = {"major": ((0, "maj"), (2, "min"), (4, "min"), (5, "maj"), (7, "maj"), (9, "min")),
           "minor": ((0, "min"), (3, "maj"), (5, "min"), (7, "min"), (8, "maj"), (10, "maj"))}
_SIMPLE_RHYTHMS = ([0, 4, 8, 12], [0, 6, 8, 14], [0, 3, 6, 8, 12], [0, 8], [0, 2, 4, 8, 10, 12])
_DEFAULT_INTERVALS = Counter({0: 4, 2: 3, -2: 3, 1: 1, -1: 1, 3: 2, -3: 2, 5: 1, -5: 1, 7: 1,
                              -7: 1, 4: 1, -4: 1})

Progress = Callable[[str, float], None]


@dataclass
class Chord:
    root: int  # pitch class
    quality: str  # maj | min

    @property
    def tones(self) -> tuple[int, int, int]:
        third = 4 if self.quality == "maj" else 3
        return self.root, (self.root + third) % 12, (self.root + 7) % 12


def _key_parts(key: str | None) -> tuple[int, str] | None:
    from loopmind.library.analysis.key import KEYS, parse_key

    k = parse_key(key or "")
    if k is None:
        return None
    i = KEYS.index(k)
    return i % 12, "minor" if i >= 12 else "major"


def chord_progression(key: str, rng: np.random.Generator, *, bars: int = 4,
                      degrees: Counter | None = None) -> list[Chord]:
    """A diatonic progression in ``key``, one chord per bar, starting on the tonic chord
    most of the time; chords the pool's pitched material uses more are likelier.

    Args:
        key: the song's key ("F minor").
        degrees: the pool's chord roots relative to its loops' tonics (``RoleStats.degrees``).
    """
    tonic, mode = _key_parts(key) or (0, "major")
    triads = _TRIADS[mode]
    total = sum(degrees.values()) if degrees else 0
    w = np.array([1.0 + (6.0 * degrees.get(off, 0) / total if total else 0.0)
                  for off, _ in triads])
    out: list[Chord] = []
    prev = None
    for b in range(bars):
        if b == 0 and rng.random() < 0.7:
            j = 0
        else:
            p = w.copy()
            if prev is not None:
                p[prev] = 0.0
            j = int(rng.choice(len(triads), p=p / p.sum()))
        prev = j
        off, q = triads[j]
        out.append(Chord((tonic + off) % 12, q))
    return out


def _scale(key: str) -> set[int]:
    tonic, mode = _key_parts(key) or (0, "major")
    return {(tonic + s) % 12 for s in _SCALES[mode]}


def _nearest_with_pc(target: float, pcs) -> int:
    """The MIDI note nearest ``target`` whose pitch class is in ``pcs``."""
    base = int(round(target))
    for d in range(0, 12):
        for cand in (base - d, base + d):
            if cand % 12 in pcs:
                return cand
    return base


# -- sampling tokens ---------------------------------------------------------------------------

def sample_bars(sampler, role: str, bars: int, rng: np.random.Generator, *,
                temperature: float = TEMPERATURE,
                min_events: int = 0) -> list[list[tuple[int, int]]]:
    """``bars`` bars of (step in bar, slice cluster) onsets from a sequence model.

    Only the role's own tokens are allowed, and within a bar steps only move forward; a bar
    line token opens the next bar. A bar with fewer than ``min_events`` onsets is dropped and
    sampled again (while the token budget lasts).
    """
    vocab = sampler.vocab
    parsed = [parse_token(t) if not t.startswith("<") else (None, None, None) for t in vocab]
    own = np.array([r == role for r, _, _ in parsed])
    is_bar = np.array([r == role and c is None for r, c, _ in parsed])
    pos_of = np.array([-1 if p is None else p for _, _, p in parsed])
    sampler.start(role)
    out: list[list[tuple[int, int]]] = []
    cur: list[tuple[int, int]] | None = None
    pos = -1
    for _ in range(bars * 96 + 16):
        p = np.asarray(sampler.probs(), dtype=np.float64).copy()
        ok = own & (is_bar | (pos_of > pos)) if cur is not None else is_bar
        p = np.where(ok, p, 0.0)
        if p.sum() <= 0:
            p = ok.astype(float)
            if p.sum() <= 0:
                break
        p = p ** (1.0 / temperature)
        p /= p.sum()
        i = int(rng.choice(len(p), p=p))
        sampler.push(vocab[i])
        if is_bar[i]:
            if cur is not None and len(cur) >= min_events:
                out.append(cur)
                if len(out) == bars:
                    break
            cur, pos = [], -1
        else:
            _, c, st = parsed[i]
            cur.append((int(st), int(c)))
            pos = int(st)
    while len(out) < bars:
        out.append(list(cur or []))
        cur = []
    return out


# -- choosing slices ---------------------------------------------------------------------------

def is_copy(bar_events: list[tuple[int, Slice]], *, share: float = 0.6) -> bool:
    """Whether a bar puts most of one source bar's slices back at their own steps.

    Args:
        bar_events: (step in bar, slice) of the generated bar.
        share: the fraction of the bar's onsets that makes it a copy.
    """
    if len(bar_events) < 2:
        return False
    same: Counter = Counter()
    for st, s in bar_events:
        if s.kind == "loop" and s.step is not None and s.step % STEPS_PER_BAR == st:
            same[(s.item_id, s.bar)] += 1
    return bool(same) and max(same.values()) >= share * len(bar_events)


def _velocity(s: Slice, top_rms: float, energy: float) -> float:
    """An event's velocity: softer in a quiet section; a one-shot also by its level.

    A loop slice already carries its level in its loop (a ghost note is quiet, a hihat sits
    under the kick), so scaling it by its level again would change the kit's balance and
    the loop's dynamics; it plays at full velocity.
    """
    if s.kind == "loop":
        v = 1.0
    else:
        v = 0.55 + 0.45 * min(1.0, s.rms / top_rms) if top_rms > 0 else 0.9
    if energy < SOFT_ENERGY:
        v *= 0.85
    return round(float(np.clip(v, 0.2, 1.0)), 4)


def _steps_of(s: Slice, song: Song) -> int:
    step_s = song.bar_s / STEPS_PER_BAR
    return max(1, int(round(s.duration_s / step_s)))


def _event(step: int, length: int, s: Slice, *, semitones: float = 0.0, velocity: float = 1.0,
           pitch: int | None = None) -> SliceEvent:
    return SliceEvent(step=int(step), length=int(max(1, length)), source_path=s.path,
                      source_start_s=float(s.start_s), source_end_s=float(s.end_s),
                      semitones=round(float(semitones), 4), velocity=velocity,
                      pitch=pitch, slice_id=s.id)


def _with_lengths(onsets: list[tuple[int, Slice, float, float, int | None]], total: int,
                  song: Song, *, hold: bool) -> list[SliceEvent]:
    """Events from sorted (step, slice, semitones, velocity, pitch): each lasts until the next
    onset (drums: at most the slice itself; ``hold``: melodic notes may ring to the next)."""
    events = []
    for k, (st, s, semis, vel, pitch) in enumerate(onsets):
        nxt = onsets[k + 1][0] if k + 1 < len(onsets) else total
        length = nxt - st
        if not hold:
            length = min(length, _steps_of(s, song) + 1)
        events.append(_event(st, length, s, semitones=semis, velocity=vel, pitch=pitch))
    return events


def _clip(section, events: list[SliceEvent], slices_by_id: dict[str, Slice]) -> Clip:
    first = slices_by_id[events[0].slice_id]
    gain = -3.0 if section.energy < SOFT_ENERGY else 0.0
    return Clip(start_bar=section.start_bar, bars=section.bars, source_path=first.path,
                source_start_s=first.start_s, source_end_s=first.end_s,
                segment_id=first.item_id, source_bpm=None, stretch=1.0, semitones=0,
                gain_db=gain, events=events, generated=True)


# -- drums -------------------------------------------------------------------------------------

def _bar_signature(bar: list[tuple[int, int]]) -> frozenset[tuple[int, int]]:
    return frozenset(bar)


def _source_signatures(st: RoleStats, song: Song) -> list[frozenset[tuple[int, int]]]:
    """(step, cluster) sets of the source bars whose tempo is the song's (within 4 %): only
    those could be played back as the same audio, slices not being stretched."""
    label = {id(s): int(c) for s, c in zip(st.slices, st.clusters)}
    bars: dict[tuple[int, int], set[tuple[int, int]]] = {}
    for s in st.slices:
        if s.step is None or not s.bpm or abs(s.bpm / song.bpm - 1.0) > 0.04:
            continue
        bars.setdefault((s.item_id, s.bar), set()).add((s.step % STEPS_PER_BAR, label[id(s)]))
    return [frozenset(v) for v in bars.values()]


def pattern_copy(bar: list[tuple[int, int]], sources: list[frozenset[tuple[int, int]]], *,
                 jaccard: float = 0.6) -> bool:
    """Whether a bar plays nearly the same slice kinds on the same steps as a source bar."""
    sig = _bar_signature(bar)
    if len(sig) < 2:
        return False
    return any(len(sig & src) / len(sig | src) >= jaccard for src in sources)


def _filling(cands: list[Slice], group: list[Slice], gap: int, song: Song,
             rng: np.random.Generator) -> Slice:
    """A slice for an onset followed by ``gap`` steps: one that lasts at least that long.

    A drum-loop slice ends where the next hit of its loop began, so a slice shorter than the
    gap would leave silence that its loop never had (a loop is a continuous bed of hits and
    tails). Candidates that fill the gap come first, then any slice of the group that does,
    then the longest candidates.
    """
    for options in (cands, group):
        fits = [s for s in options if _steps_of(s, song) >= gap]
        if fits:
            return fits[int(rng.integers(len(fits)))]
    longest = max(_steps_of(s, song) for s in cands)
    cands = [s for s in cands if _steps_of(s, song) == longest]
    return cands[int(rng.integers(len(cands)))]


def _drumloop_section(sampler, st: RoleStats, section, song: Song,
                      rng: np.random.Generator) -> list[SliceEvent]:
    """A section of re-sequenced drum-loop slices: the sequence model's bars (none that
    replays a same-tempo source bar's pattern), each onset played by a slice of its kind,
    preferably from the section's "kit" (one or two source loops, so the drums sound like one
    kit rather than a collage)."""
    by_cluster: dict[int, list[Slice]] = {}
    for s, c in zip(st.slices, st.clusters):
        by_cluster.setdefault(int(c), []).append(s)
    items = sorted({s.item_id for s in st.slices})
    kit = {items[int(rng.integers(len(items)))] for _ in range(2)}
    top = max((s.rms for s in st.slices), default=1.0)
    onsets = []
    per_bar = Counter((s.item_id, s.bar) for s in st.slices if s.step is not None)
    typical = float(np.median(list(per_bar.values()))) if per_bar else 1.0
    sources = _source_signatures(st, song)
    # twice the bars needed, so that bars too close to a source bar can be left out
    candidates = sample_bars(sampler, st.role, 2 * section.bars, rng,
                             min_events=int(max(1, round(0.5 * typical))))
    fresh = [b for b in candidates if not pattern_copy(b, sources)]
    bars = (fresh + [b for b in candidates if pattern_copy(b, sources)])[:section.bars]
    for b, bar in enumerate(bars):
        if pattern_copy(bar, sources):
            # no fresh bar left: drop off-beat hits until it is no longer the source's
            bar = list(bar)
            while len(bar) > 2 and pattern_copy(bar, sources):
                offbeat = [i for i, (p, _) in enumerate(bar) if p % 4] or list(range(1, len(bar)))
                bar.pop(offbeat[int(rng.integers(len(offbeat)))])
        if section.energy < SOFT_ENERGY:
            # a quiet section keeps the bar's main hits and drops off-beat ghost notes
            bar = [(p, c) for p, c in bar if p % 4 == 0 or rng.random() < 0.5]
        # steps from each onset to the next (the last one: to the bar line)
        gaps = [q - p for (p, _), (q, _) in zip(bar, bar[1:])] + \
            [STEPS_PER_BAR - bar[-1][0]] if bar else []
        for attempt in range(6):
            chosen = []
            for (p, c), gap in zip(bar, gaps):
                group = by_cluster.get(c) or st.slices
                own_kit = [s for s in group if s.item_id in kit]
                if own_kit and rng.random() < 0.85:
                    group = own_kit
                # mostly a slice that sat at a similar place in its own bar
                near = [s for s in group if s.step is not None and s.step % 4 == p % 4]
                cands = near if near and rng.random() < 0.7 else group
                chosen.append((p, _filling(cands, group, gap, song, rng)))
            if not is_copy(chosen):
                break
        for p, s in chosen:
            onsets.append((b * STEPS_PER_BAR + p, s, 0.0, _velocity(s, top, section.energy),
                           None))
    return _with_lengths(_accents_capped(_level_matched(onsets, st.slices)),
                         section.bars * STEPS_PER_BAR, song, hold=False)


def loop_hit_levels(slices: list[Slice]) -> dict[int, float]:
    """Each source loop's hit level: the power mean of its slices' peaks.

    A slice runs from one hit to the next, so its peak is its hit's; its RMS also counts the
    decay and the gap after it, which makes a sparse loop look quiet although its hits are as
    loud as a busy loop's (matched by RMS, a sparse loop's hits stood 14 dB above the rest on
    the dev set's Groove loops, and the master could not reach its loudness target)."""
    sq: dict[int, list[float]] = {}
    for s in slices:
        sq.setdefault(s.item_id, []).append(s.peak ** 2)
    return {i: float(np.sqrt(np.mean(v))) for i, v in sq.items()}


def _level_matched(onsets: list[tuple], slices: list[Slice]) -> list[tuple]:
    """Onsets whose velocities bring every source loop's hits to the level of the quietest
    loop used.

    Loops in a pool are mastered at different levels (15-20 dB apart): slices of several
    loops played side by side at their own levels would jump in level from hit to hit, which
    none of the loops does. Each loop's slices keep their balance within the loop.

    Args:
        onsets: (step, slice, semitones, velocity, pitch), velocity 0..1 (gain velocity**1.5).
        slices: the role's slices (a loop's level: ``loop_hit_levels``).
    """
    level = loop_hit_levels(slices)
    used = [level.get(o[1].item_id, 0.0) for o in onsets]
    used = [v for v in used if v > 0]
    if not used:
        return onsets
    lo = min(used)
    out = []
    for st_, s, semis, vel, pitch in onsets:
        lv = level.get(s.item_id, 0.0)
        gain = lo / lv if lv > 0 else 1.0
        vel = round(float(np.clip(vel * gain ** (1.0 / 1.5), 0.01, 1.0)), 4)
        out.append((st_, s, semis, vel, pitch))
    return out


# a hit of a re-sequenced part may stand this far above the part's median hit (an accent);
# louder ones (a crash recorded hot in a quiet loop) are brought down to it
MAX_ACCENT_DB = 6.0


def _accents_capped(onsets: list[tuple]) -> list[tuple]:
    """Onsets whose hits (``velocity ** 1.5 * slice peak``) stay within ``MAX_ACCENT_DB`` of
    the median hit: one slice far louder than the rest of a new part sounds like a mistake,
    and the master limiter would spend its range on it."""
    hits = [vel ** 1.5 * s.peak for _, s, _, vel, _ in onsets]
    if not hits:
        return onsets
    cap = float(np.median(hits)) * 10.0 ** (MAX_ACCENT_DB / 20.0)
    out = []
    for (st_, s, semis, vel, pitch), h in zip(onsets, hits):
        if h > cap and s.peak > 0:
            vel = round(float(np.clip((cap / s.peak) ** (1.0 / 1.5), 0.01, 1.0)), 4)
        out.append((st_, s, semis, vel, pitch))
    return out


def _bar_pattern(rhythm: RoleStats | None, role: str, genre, rng: np.random.Generator, *,
                 energy: float, fill: bool) -> list[tuple[int, float]]:
    """One bar of (step, velocity) for a one-shot drum."""
    from loopmind.generate import styles

    if rhythm is not None and rhythm.bar_patterns:
        pats = rhythm.bar_patterns[:8]
        w = 1.0 / (1.0 + np.arange(len(pats)))
        base = list(pats[int(rng.choice(len(pats), p=w / w.sum()))])
        prob = rhythm.onset_prob
        for i in range(STEPS_PER_BAR):
            if not base[i] and prob[i] > 0.15 and rng.random() < 0.25 * energy:
                base[i] = 1  # a busier section adds the pool's likely extra hits
            elif base[i] and i % 4 and rng.random() < 0.25 * (1.0 - energy):
                base[i] = 0  # a quiet one drops off-beat hits
        steps = [(i, 1.0 if i % 4 == 0 else 0.8) for i, v in enumerate(base) if v]
    else:
        steps = styles.pattern_steps(genre, role, fill=fill,
                                     variation=int(rng.integers(0, 3)))
    if fill and role in ("snare", "clap", "tom") and rhythm is not None:
        steps = sorted(set(steps) | {(i, 0.7) for i in (13, 14, 15) if rng.random() < 0.5})
    if role == "cymbal":
        steps = [(0, 1.0)] if energy >= 0.6 else []
    return steps


def _hits_section(role: str, hits: list[Slice], rhythm: RoleStats | None, section, song: Song,
                  genre, rng: np.random.Generator, last_section: bool) -> list[SliceEvent]:
    top = max((s.rms for s in hits), default=1.0)
    # one main sound and, when the pool has more, a second one for variety
    main = hits[int(rng.integers(len(hits)))]
    alt = hits[int(rng.integers(len(hits)))]
    onsets = []
    for b in range(section.bars):
        fill = b == section.bars - 1 and not last_section
        for attempt in range(6):
            bar = _bar_pattern(rhythm, role, genre, rng, energy=section.energy, fill=fill)
            chosen = [(st, alt if rng.random() < 0.15 else main, v) for st, v in bar]
            if not is_copy([(st, s) for st, s, _ in chosen]):
                break
        for st, s, v in chosen:
            onsets.append((b * STEPS_PER_BAR + st, s, 0.0,
                           round(v * _velocity(s, top, section.energy), 4), None))
    onsets.sort(key=lambda o: o[0])
    return _with_lengths(onsets, section.bars * STEPS_PER_BAR, song, hold=False)


# -- melodic parts -----------------------------------------------------------------------------

def _sample_interval(counts: Counter, rng: np.random.Generator) -> int:
    c = counts if sum(counts.values()) >= 8 else counts + _DEFAULT_INTERVALS
    keys = sorted(c)
    w = np.array([c[k] for k in keys], dtype=float)
    return int(keys[int(rng.choice(len(keys), p=w / w.sum()))])


def _pick_pitched(target: int, cluster: int, st: RoleStats, rng: np.random.Generator,
                  ) -> tuple[Slice, int] | None:
    """A pitched slice to play ``target`` and the (octave-adjusted) note it plays."""
    best, best_score = None, float("inf")
    for s, c in zip(st.slices, st.clusters):
        if s.pitch is None:
            continue
        t = target + 12 * round((s.pitch - target) / 12)  # the octave closest to the slice
        shift = t - s.pitch
        if abs(shift) > MAX_SEMITONES:
            continue
        score = abs(shift) * 0.4 + (0 if t == target else 3.0) + (0 if c == cluster else 1.5) \
            + rng.random() * 1.5
        if score < best_score:
            best, best_score = (s, int(t)), score
    return best


def _pick_chord(chord: Chord, cluster: int, st: RoleStats,
                rng: np.random.Generator) -> tuple[Slice, int] | None:
    """A chord slice re-pitched root to root onto ``chord``: (slice, semitones)."""
    best, best_score = None, float("inf")
    for s, c in zip(st.slices, st.clusters):
        if s.chord is None or s.pitch is not None:
            continue
        shift = (chord.root - s.chord[0]) % 12
        shift = shift - 12 if shift > 6 else shift
        score = abs(shift) * 0.3 + (0 if s.chord[1] == chord.quality else 4.0) \
            + (0 if c == cluster else 1.5) + rng.random() * 1.5
        if score < best_score:
            best, best_score = (s, int(shift)), score
    return best


def _fallback_bars(role: str, bars: int, model: PoolModel, st: RoleStats,
                   rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """Rhythm for a role whose slices come from no loop: the pool's kick bars for a bass,
    simple patterns otherwise; slice kinds drawn from the role's clusters."""
    kick = model.drums.get("kick")
    if role == "bass" and kick is not None and kick.bar_patterns:
        pats = [[i for i, v in enumerate(p) if v] for p in kick.bar_patterns[:8]]
    else:
        pats = _SIMPLE_RHYTHMS
    k = max(1, st.n_clusters)
    return [[(p, int(rng.integers(k))) for p in pats[int(rng.integers(len(pats)))]]
            for _ in range(bars)]


def _melodic_section(sampler, st: RoleStats, role: str, section, song: Song, key: str,
                     prog: list[Chord], intervals: Counter, rng: np.random.Generator,
                     centre: float, chords_mode: bool,
                     bars: list[list[tuple[int, int]]] | None = None) -> list[SliceEvent]:
    scale = _scale(key)
    top = max((s.rms for s in st.slices), default=1.0)
    if bars is None:
        bars = sample_bars(sampler, st.role, section.bars, rng)
    onsets = []
    prev: int | None = None
    lo, hi = centre - 8, centre + 8
    for b, bar in enumerate(bars):
        chord = prog[b % len(prog)]
        if not bar:
            bar = [(0, 0)]  # every bar of a melodic part plays at least its downbeat
        chosen = []
        for p, c in bar:
            if chords_mode:
                got = _pick_chord(chord, c, st, rng)
                if got is None:
                    continue
                s, shift = got
                chosen.append((p, s, float(shift), 48 + chord.root))
                continue
            if prev is None or (role == "bass" and p == 0):
                target = _nearest_with_pc(centre if prev is None else prev, {chord.root})
            else:
                cand = prev + _sample_interval(intervals, rng)
                strong = p % 8 == 0 if role == "bass" else p % 4 == 0
                target = _nearest_with_pc(cand, set(chord.tones) if strong else scale)
            while target > hi:
                target -= 12
            while target < lo:
                target += 12
            got = _pick_pitched(target, c, st, rng)
            if got is None:
                continue
            s, note = got
            prev = note
            chosen.append((p, s, note - s.pitch, note))
        for p, s, semis, pitch in chosen:
            onsets.append((b * STEPS_PER_BAR + p, s, semis,
                           _velocity(s, top, section.energy), pitch))
    return _with_lengths(onsets, section.bars * STEPS_PER_BAR, song, hold=True)


GLIDE_SHARE = 0.4  # of the legato note changes within an octave, how many slide
GLIDE_MAX_SEMITONES = 12


def add_glides(events: list[SliceEvent], rng: np.random.Generator) -> int:
    """Let some notes slide into the next (an 808 line's portamento): a note that lasts until
    the next one starts, which is at most an octave away. Sets ``glide``; returns how many."""
    n = 0
    order = sorted(range(len(events)), key=lambda i: events[i].step)
    for a, b in zip(order, order[1:]):
        ev, nxt = events[a], events[b]
        if ev.pitch is None or nxt.pitch is None or ev.step + ev.length < nxt.step:
            continue
        d = int(nxt.pitch) - int(ev.pitch)
        if 0 < abs(d) <= GLIDE_MAX_SEMITONES and rng.random() < GLIDE_SHARE:
            ev.glide = float(d)
            n += 1
    return n


# -- the whole song ----------------------------------------------------------------------------

def _usable(st: RoleStats | None, *, chords_mode: bool | None = None) -> int:
    """Slices that can play a chord (no single pitch, a chord) or a note (a pitch)."""
    if st is None:
        return 0
    if chords_mode:
        return sum(1 for s in st.slices if s.chord is not None and s.pitch is None)
    return sum(1 for s in st.slices if s.pitch is not None)


def _song_key(song: Song, pool, notes: list[str]) -> str:
    if _key_parts(song.key):
        return song.key
    keys = Counter(i.key for i in (pool.items if pool else []) if i.key)
    key = keys.most_common(1)[0][0] if keys else "A minor"
    notes.append(f"interpretive parts: the song has no key; using {key}")
    return key


def interpret_parts(song: Song, pool, *, seed: int, settings=None, budget_s: float = 30.0,
                    on_progress: Progress | None = None, bank: SliceBank | None = None,
                    roles: Iterable[str] | None = None) -> tuple[list[Track], list[str]]:
    """Generated parts for a song skeleton, played with the pool's own slices.

    Args:
        song: the direct arranger's song (sections with roles, bpm and key are used; its
            tracks are not changed).
        pool: the pool the song was arranged from (``loopmind.generate.pool.Pool``).
        seed: the song's seed (same pool and seed: the same parts).
        settings: where the slice and model caches live (None: ``get_settings()``).
        budget_s: at most this many seconds of sequence-model training.
        on_progress: called with (stage, fraction 0..1), stages "slicing" and "training".
        bank: a slice bank already made for this pool (skips ``slice_pool``).
        roles: generate only these roles (hybrid mode); None: every role the sections ask
            for that can be generated.

    Returns:
        (tracks, notes): one track per generated role, named like the direct arranger's
        (``drumloop``, ``kick``, ..., ``bass``, ``keys``, ``lead``), with one clip per section
        the role plays in (``events`` set, ``generated=True``); they are meant to replace the
        skeleton's tracks of the same name, and roles without a returned track keep the
        direct arranger's loops. ``notes`` says what was learned, what fell back and why.
    """
    from loopmind.generate import styles
    from loopmind.generate.arrange import ROLE_SUBSTITUTES, TRACK_COLORS, _play_order
    from loopmind.generate.interpret.seqmodel import fit_model

    if settings is None:
        from loopmind.config import get_settings

        settings = get_settings()
    notes: list[str] = []
    if bank is None:
        bank = slice_pool(pool, settings=settings, on_progress=on_progress)
    notes.extend(bank.notes)
    model: PoolModel = learn(bank, pool)
    seq_model, model_notes = fit_model(model.sequences(), pool_key=bank.key,
                                       cache_dir=settings.cache_dir, budget_s=budget_s,
                                       on_progress=on_progress)
    notes.extend(model_notes)
    rng = np.random.default_rng([int(seed), 0x1A7E])
    sampler = seq_model.sampler()
    key = _song_key(song, pool, notes)
    genre = styles.find_genre(song.genre or "") or styles.DEFAULT_GENRE
    slices_by_id = {s.id: s for s in bank.slices}

    planned: list[str] = []
    for s in song.sections:
        for r in s.roles:
            if r not in planned:
                planned.append(r)
    wanted = None if roles is None else set(roles)
    planned = _play_order([r for r in planned if wanted is None or r in wanted])

    # the harmony the pool's pitched material uses, for the progression
    degrees: Counter = Counter()
    for r in MELODIC_ROLES + ("pad",):
        if r in model.roles:
            degrees.update(model.roles[r].degrees)
    progressions: dict[str, list[Chord]] = {}

    def progression_for(section) -> list[Chord]:
        kind = section.name
        if kind not in progressions:
            progressions[kind] = chord_progression(key, rng, bars=4, degrees=degrees)
        return progressions[kind]

    tracks: list[Track] = []
    drumloop = model.roles.get("drumloop")
    loop_drums = ("drumloop" in planned and drumloop is not None
                  and len(drumloop.slices) >= MIN_ROLE_SLICES
                  and any(r.startswith("drumloop:") for r in seq_model.vocab))
    if "drumloop" in planned and not loop_drums and drumloop is not None:
        notes.append(f"too few drum-loop slices ({len(drumloop.slices)}) to re-sequence: "
                     "the drums are played from one-shots")
    last_index = len(song.sections) - 1
    for role in planned:
        track = Track(name=role, role=role, color=TRACK_COLORS.get(role))
        if role == "drumloop":
            if not loop_drums:
                continue
            for si, sec in enumerate(song.sections):
                if role in sec.roles:
                    ev = _drumloop_section(sampler, drumloop, sec, song, rng)
                    if ev:
                        track.clips.append(_clip(sec, ev, slices_by_id))
        elif role in DRUM_HIT_ROLES:
            if loop_drums and role not in ("perc", "cymbal"):
                continue  # the re-sequenced drum loop plays the kit
            hits = [s for s in bank.by_role(role) if s.kind == "oneshot"]
            source = role
            if not hits:
                for sub in ROLE_SUBSTITUTES.get(role, ()):
                    hits = [s for s in bank.by_role(sub) if s.kind == "oneshot"]
                    if hits:
                        source = sub
                        break
            cls = _RHYTHM_CLASS.get(role, "hihat")
            if not hits and drumloop is not None and role in ("kick", "snare", "hihat"):
                hits = [s for s in drumloop.slices if s.drum_class == cls]
                source = f"{cls} slices of the drum loops"
            if not hits:
                if role in ("kick", "snare", "hihat"):
                    notes.append(f"no {role} sounds in the pool: no generated {role} part")
                continue
            if source != role:
                notes.append(f"no {role} one-shots: {source} play its part")
            rhythm = model.drums.get(cls)
            if rhythm is None or not rhythm.bar_patterns:
                rhythm = None
                if styles.pattern_steps(genre, role):
                    notes.append(f"no drum loops to learn the {role} rhythm from: the "
                                 f"{genre.name} pattern, varied, plays the user's {role}")
                elif role not in ("cymbal",):
                    continue
            for si, sec in enumerate(song.sections):
                if role in sec.roles:
                    ev = _hits_section(role, hits, rhythm, sec, song, genre, rng,
                                       last_section=si == last_index)
                    if ev:
                        track.clips.append(_clip(sec, ev, slices_by_id))
        elif role in MELODIC_ROLES:
            st = model.roles.get(role)
            # chord material is re-pitched root to root, single notes note by note: the
            # role's slices decide which they mostly are
            chords_mode = role in CHORD_ROLES and st is not None and \
                _usable(st, chords_mode=True) > _usable(st, chords_mode=False)
            source = role
            if st is None:
                continue  # not in the pool at all: the direct arranger decided what plays
            if _usable(st, chords_mode=chords_mode) < MIN_ROLE_SLICES:
                have = _usable(st, chords_mode=chords_mode)
                found = False
                for sub in ROLE_SUBSTITUTES.get(role, ()):
                    if sub in planned:
                        continue  # it plays its own part
                    for mode in (chords_mode, not chords_mode):
                        cand = model.roles.get(sub)
                        if cand is not None and _usable(cand, chords_mode=mode) >= \
                                MIN_ROLE_SLICES:
                            st, source, chords_mode, found = cand, sub, mode, True
                            break
                    if found:
                        break
                if not found and chords_mode and _usable(st, chords_mode=False) >= \
                        MIN_ROLE_SLICES:
                    chords_mode, found = False, True
                if not found:
                    notes.append(f"too few pitched {role} slices ({have}) to write a new "
                                 f"{role} part: the direct arranger's {role} loop stays")
                    continue
                if source != role:
                    notes.append(f"too few pitched {role} slices ({have}): {source} slices "
                                 f"play the new {role} part")
            learned_rhythm = any(t.startswith(f"{st.role}:") for t in seq_model.vocab)
            if not learned_rhythm:
                notes.append(f"no {st.role} loops to learn a rhythm from: the new {role} part "
                             + ("follows the pool's kick" if role == "bass" and
                                model.drums.get("kick") and model.drums["kick"].bar_patterns
                                else "plays simple patterns"))
            pitches = [s.pitch for s in st.slices if s.pitch is not None]
            centre = float(np.median(pitches)) if pitches else (36.0 if role == "bass" else 60.0)
            intervals = st.intervals
            for sec in song.sections:
                if role in sec.roles:
                    bars = None if learned_rhythm else _fallback_bars(role, sec.bars, model,
                                                                       st, rng)
                    ev = _melodic_section(sampler, st, role, sec, song, key,
                                          progression_for(sec), intervals, rng, centre,
                                          chords_mode, bars=bars)
                    if ev:
                        track.clips.append(_clip(sec, ev, slices_by_id))
        else:
            continue
        if track.clips:
            tracks.append(track)
    if genre.bass_glide:
        slid = sum(add_glides(c.events or [], np.random.default_rng([int(seed), 0x808]))
                   for t in tracks if t.role == "bass" for c in t.clips)
        if slid:
            notes.append(f"the {genre.name} bass slides into {slid} of its notes")
    kind = "trained sequence model" if getattr(seq_model, "kind", "") == "gru" else \
        "Markov chain"
    if tracks:
        notes.append(f"interpretive parts ({', '.join(t.name for t in tracks)}) re-sequenced "
                     f"from {len(bank.slices)} slices with a {kind}")
    return tracks, notes

"""Hybrid composition: the direct arrangement plus material generated from the user's sounds.

``add_hybrid_parts`` takes a direct arrangement and adds, all marked ``generated=True``:

* drum fills in the last bar of a section before a change: the last 4, 8 or 16 steps
  re-sequenced from the song's own drum one-shots (or the slices of its drum loop, cut at
  their onsets) as ``SliceEvent`` hits: snare rolls that climb in pitch, tom runs, stutters.
  The drums they replace make room (pattern steps are removed, a drum loop's clip ends a bar
  early and its last bar is replayed from its slices up to the fill);
* a riser (``textures.riser`` of an fx sound, else of the song's pad) over the 2 or 4 bars
  before every drop or hook, and reverse swells (of a crash, an fx or a pad) into other
  sections where the energy rises;
* a variation of the main loop in breaks and bridges (in later verses when the song has
  none): its second half re-sliced on the 8th-note grid and re-ordered within each bar (so
  the harmony stays), or turned into a grain cloud.

All choices come from one generator seeded from the song's seed, so the same song and seed
give the same parts.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopmind.generate.pool import Pool, PoolItem
from loopmind.generate.song import STEPS_PER_BAR, Clip, Section, SliceEvent, Song, Track

log = logging.getLogger(__name__)

FILL_PARTS = ("kick", "snare", "clap", "hihat", "tom", "perc")
GM_NOTES = {"kick": 36, "snare": 38, "clap": 39, "hihat": 42, "cymbal": 49, "tom": 45,
            "perc": 56}
PEAK_SECTIONS = frozenset({"hook", "drop"})
BREAK_SECTIONS = frozenset({"break", "bridge"})
MELODIC_ROLES = ("keys", "lead", "guitar", "strings", "pad", "vocal", "bass")
RISER_TRACK = "risers"
SWELL_TRACK = "swells"
FILL_TRACK = "fills"
_SEED_SALT = 0x48594252  # "HYBR": a stream of its own, apart from the arranger's


@dataclass(frozen=True)
class Hit:
    """A drum sound a fill can play: a one-shot, or a slice of a drum loop."""

    part: str  # kick | snare | clap | hihat | tom | perc
    path: str
    start_s: float
    end_s: float
    slice_id: str
    track: str | None  # the song track that plays this part (None: the fills track)


def add_hybrid_parts(song: Song, pool: Pool, *, seed: int) -> list[str]:
    """Add generated fills, risers, swells and loop variations to a direct arrangement.

    Args:
        song: a direct arrangement (changed in place; ``mode`` becomes "hybrid").
        pool: the pool it was made from (fx, cymbals and toms for the generated parts).
        seed: the song's seed.

    Returns:
        notes saying what was added and what was missing (also appended to ``song.notes``).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _SEED_SALT])
    notes: list[str] = []
    kit = drum_kit(song, pool, rng=rng, notes=notes)
    n_fills = add_fills(song, kit, pool, rng=rng)
    if kit and n_fills:
        notes.append(f"hybrid: {_count(n_fills, 'drum fill')} from "
                     f"{len({h.path for hits in kit.values() for h in hits})} of your drum "
                     "sounds")
    elif not kit:
        notes.append("hybrid: no drum one-shots or drum loop to make fills from: no fills")
    n_risers, n_swells = add_risers(song, pool, rng=rng, notes=notes)
    if n_risers or n_swells:
        notes.append(f"hybrid: {_count(n_risers, 'riser')} and "
                     f"{_count(n_swells, 'reverse swell')}")
    notes.extend(add_variations(song, rng=rng))
    song.mode = "hybrid"
    song.notes.extend(notes)
    return notes


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- the drum kit ----------------------------------------------------------------------------

def _stem(path: str) -> str:
    return Path(path).stem


def drum_kit(song: Song, pool: Pool, *, rng: np.random.Generator,
             notes: list[str]) -> dict[str, list[Hit]]:
    """The drum sounds fills can use, by part: the song's own one-shots first, then the
    pool's toms and percussion, then the slices of the song's drum loop."""
    kit: dict[str, list[Hit]] = {}
    for t in song.tracks:
        if t.role not in FILL_PARTS:
            continue
        for c in t.clips:
            if c.is_pattern:
                kit.setdefault(t.role, [])
                hit = Hit(t.role, c.source_path, c.source_start_s, c.source_end_s,
                          f"{_stem(c.source_path)}#{c.segment_id}", t.name)
                if hit not in kit[t.role]:
                    kit[t.role].append(hit)
    for part in ("tom", "perc", "snare", "clap"):
        if part in kit:
            continue
        items = [i for i in pool.by_role(part) if i.kind == "oneshot"]
        if items:
            chosen = [items[int(j)] for j in sorted(rng.choice(len(items), min(3, len(items)),
                                                               replace=False))]
            kit.setdefault(part, [])
            for it in chosen:
                h = Hit(part, it.path, it.start_s, it.end_s, f"{_stem(it.path)}#{it.id}", None)
                if all(h.path != k.path or h.start_s != k.start_s for k in kit[part]):
                    kit[part].append(h)
    loop_clip, loop_track = _drum_loop_clip(song)
    if loop_clip is not None:
        for s in loop_slices(loop_clip, pool, sr=song.sample_rate, notes=notes):
            part, path, a, b, sid = s[0], s[1], s[2], s[3], s[4]
            if part in ("kick", "snare", "hihat"):
                kit.setdefault(part, []).append(Hit(part, path, a, b, sid, loop_track))
    return {k: v for k, v in kit.items() if v}


def _drum_loop_clip(song: Song) -> tuple[Clip | None, str | None]:
    for t in song.tracks:
        if t.role == "drumloop":
            loops = [c for c in t.clips if not c.is_pattern and not c.is_sequence
                     and not c.is_texture and c.source_bars]
            if loops:
                return max(loops, key=lambda c: (c.bars, -c.start_bar)), t.name
    return None, None


_SLICE_MEMO: dict[tuple, list] = {}


def loop_slices(clip: Clip, pool: Pool, *, sr: int,
                notes: list[str] | None = None) -> list[tuple[str, str, float, float, str, int,
                                                           int]]:
    """A drum loop cut at its onsets: (part, path, start_s, end_s, slice_id, step, length) with
    steps on the loop's own 16th grid. Uses the interpretive slicer when it is there, else
    16th-grid slices classified by where their energy sits."""
    try:
        st = os.stat(clip.source_path)
        memo_key = (clip.source_path, st.st_size, st.st_mtime_ns, clip.source_start_s,
                    clip.source_end_s, clip.source_bars, sr)
    except OSError:
        memo_key = None
    if memo_key is not None and memo_key in _SLICE_MEMO:
        return list(_SLICE_MEMO[memo_key])
    out = _loop_slices(clip, pool, sr=sr, notes=notes)
    if memo_key is not None:
        if len(_SLICE_MEMO) > 64:
            _SLICE_MEMO.clear()
        _SLICE_MEMO[memo_key] = list(out)
    return out


def _loop_slices(clip: Clip, pool: Pool, *, sr: int, notes: list[str] | None):
    bars = int(round(clip.source_bars or 1))
    item = next((i for i in pool.items if i.id == clip.segment_id), None)
    from loopmind.generate.interpret.slices import ANALYSIS_SR, slice_item
    from loopmind.generate.render import load_source

    try:
        if item is not None:
            y = load_source(item.path, item.start_s, item.end_s, sr=ANALYSIS_SR).mean(axis=0)
            got, _ = slice_item(item, y, sr=ANALYSIS_SR)
            out = [(s.drum_class or "snare", s.path, s.start_s, s.end_s, s.id, s.step,
                    s.length) for s in got if s.step is not None and s.length]
            if out:
                return out
    except Exception as exc:  # noqa: BLE001 - the grid slicer below still works
        log.info("interpretive slicer failed on %s: %s", clip.source_path, exc)
    return _grid_slices(clip, bars=bars, sr=sr, notes=notes)


def _grid_slices(clip: Clip, *, bars: int, sr: int, notes: list[str] | None):
    from loopmind.errors import DecodeError
    from loopmind.generate.interpret.slices import drum_class_of_power
    from loopmind.generate.render import load_source

    try:
        y = load_source(clip.source_path, clip.source_start_s, clip.source_end_s,
                        sr=sr).mean(axis=0)
    except DecodeError as exc:
        if notes is not None:
            notes.append(f"hybrid: cannot slice the drum loop ({exc})")
        return []
    n_steps = bars * STEPS_PER_BAR
    d = (clip.source_end_s - clip.source_start_s) / n_steps
    step_n = len(y) / n_steps
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    out = []
    for k in range(n_steps):
        seg = y[int(k * step_n):int((k + 1) * step_n)]
        if len(seg) < 32 or float(np.max(np.abs(seg[:len(seg) // 3 + 1]))) < 0.3 * peak:
            continue  # no hit starts on this step
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
        part = drum_class_of_power(spec, np.fft.rfftfreq(len(seg), 1.0 / sr))
        a = clip.source_start_s + k * d
        out.append((part, clip.source_path, round(a, 6), round(a + d * 2, 6),
                    f"{_stem(clip.source_path)}#{clip.segment_id}.{k}", k, 2))
    return out


# -- fills -----------------------------------------------------------------------------------

def _fill_steps(n: int, rng: np.random.Generator) -> list[int]:
    """Where a fill of ``n`` steps plays: 8ths then 16ths, or 16ths throughout."""
    if n >= 8 and rng.random() < 0.5:
        half = n // 2
        return list(range(0, half, 2)) + list(range(half, n))
    return list(range(n))


def fill_events(kit: dict[str, list[Hit]], n_steps: int,
                rng: np.random.Generator) -> list[tuple[int, int, Hit, float, float]]:
    """One fill: (step within the fill, length, hit, semitones, velocity) for ``n_steps``
    steps ending on a bar line."""
    lead = kit.get("snare") or kit.get("clap") or kit.get("tom") or kit.get("perc") \
        or kit.get("kick") or kit.get("hihat")
    styles = ["roll", "toms", "stutter"]
    style = styles[int(rng.integers(0, len(styles)))]
    where = _fill_steps(n_steps, rng)
    out: list[tuple[int, int, Hit, float, float]] = []
    rise = float(rng.choice([3.0, 5.0, 7.0]))
    gap = n_steps >= 8 and rng.random() < 0.3  # the last step silent, before the downbeat
    if gap:
        where = [s for s in where if s < n_steps - 1]
    for i, s in enumerate(where):
        frac = i / max(1, len(where) - 1)
        vel = round(0.6 + 0.4 * frac, 3)
        if style == "roll":
            hit = lead[int(rng.integers(0, len(lead)))] if i == 0 else out[-1][2]
            semis = round(rise * frac, 2)
        elif style == "toms":
            toms = kit.get("tom")
            if toms:
                hit = toms[min(len(toms) - 1, int(frac * len(toms)))]
                semis = round(4.0 - 8.0 * frac, 2)
            else:
                hit = lead[0]
                semis = round(5.0 - 10.0 * frac, 2)  # a pitched snare plays the tom run
        else:
            parts = [p for p in ("kick", "snare", "clap", "hihat") if kit.get(p)]
            part = parts[int(rng.integers(0, len(parts)))]
            hits = kit[part]
            hit = hits[int(rng.integers(0, len(hits)))]
            semis = float(rng.choice([0.0, 0.0, -2.0, 2.0]))
        nxt = where[i + 1] if i + 1 < len(where) else n_steps
        out.append((s, max(1, nxt - s), hit, semis, vel))
    if kit.get("kick") and out and out[0][2].part != "kick":
        k = kit["kick"][0]
        out.insert(0, (0, 2, k, 0.0, 0.9))
    return out


def _section_changes(song: Song) -> list[tuple[Section, Section]]:
    return [(a, b) for a, b in zip(song.sections, song.sections[1:])]


def add_fills(song: Song, kit: dict[str, list[Hit]], pool: Pool, *,
              rng: np.random.Generator) -> int:
    """A fill in the last bar of every section that another follows, where drums play.

    Returns:
        how many fills were placed.
    """
    if not kit:
        return 0
    drum_tracks = [t for t in song.tracks if t.role in FILL_PARTS or t.role == "drumloop"]
    placed = 0
    for sec, nxt in _section_changes(song):
        bar = sec.end_bar - 1
        playing = [t for t in drum_tracks
                   if any(c.start_bar <= bar < c.end_bar and not c.generated for c in t.clips)]
        if not playing:
            continue
        if any(t.role == "drumloop" for t in playing):
            # the loop's own slices replay up to the fill: at least half the bar is the fill,
            # so the bar is new, not the loop's bar again
            choices = [8, 8, 16]
        else:
            choices = [4, 8, 8, 16] if nxt.name in PEAK_SECTIONS else [4, 4, 8, 16]
        n = int(rng.choice(choices))
        start = STEPS_PER_BAR - n
        events = fill_events(kit, n, rng)
        by_track: dict[str, list[SliceEvent]] = {}
        loop_track = None
        for t in playing:
            if t.role == "drumloop":
                loop_track = t
                _cut_loop_bar(song, t, bar, start, by_track, pool)
            else:
                _clear_steps(t, bar, start)
        for s, length, hit, semis, vel in events:
            name = hit.track if hit.track and song.track(hit.track) else None
            if name is None:
                name = loop_track.name if loop_track is not None else FILL_TRACK
            by_track.setdefault(name, []).append(SliceEvent(
                step=start + s, length=length, source_path=hit.path,
                source_start_s=hit.start_s, source_end_s=hit.end_s, semitones=semis,
                velocity=vel, pitch=GM_NOTES.get(hit.part), slice_id=hit.slice_id))
        for name, evs in by_track.items():
            track = song.track(name)
            if track is None:
                track = Track(name=FILL_TRACK, role="tom", color="#cc7a00")
                song.tracks.append(track)
            evs.sort(key=lambda e: (e.step, e.slice_id or ""))
            first = evs[0]
            track.clips.append(Clip(start_bar=bar, bars=1, source_path=first.source_path,
                                    source_start_s=first.source_start_s,
                                    source_end_s=first.source_end_s, events=evs,
                                    generated=True))
        placed += 1
    return placed


def _clear_steps(track: Track, bar: int, start_step: int) -> None:
    """Remove pattern steps from ``start_step`` of ``bar`` to its end (the fill plays there)."""
    for c in track.clips:
        if not c.is_pattern or not c.start_bar <= bar < c.end_bar:
            continue
        a = (bar - c.start_bar) * STEPS_PER_BAR + start_step
        b = (bar - c.start_bar + 1) * STEPS_PER_BAR
        c.steps = [(s, v) for s, v in c.steps or [] if not a <= s < b]


def _cut_loop_bar(song: Song, track: Track, bar: int, start_step: int,
                  by_track: dict[str, list[SliceEvent]], pool: Pool) -> None:
    """End the drum loop's clip a bar early and replay its last bar from its slices up to the
    fill, so the groove runs into the fill without two drum parts on top of each other."""
    for c in list(track.clips):
        if c.is_pattern or c.is_sequence or c.is_texture or not c.start_bar <= bar < c.end_bar:
            continue
        if c.end_bar - 1 != bar:
            continue  # the loop plays on past the section end: leave it (rare)
        sb = int(round(c.source_bars or 1))
        phase = (bar - c.start_bar) % sb
        c.bars -= 1
        if c.bars <= 0:
            track.clips.remove(c)
        for part, path, a, b, sid, step, length in loop_slices(c, pool, sr=song.sample_rate):
            rel = step - phase * STEPS_PER_BAR
            if 0 <= rel < start_step:
                by_track.setdefault(track.name, []).append(SliceEvent(
                    step=rel, length=max(1, min(length, start_step - rel)), source_path=path,
                    source_start_s=a, source_end_s=b, velocity=1.0, pitch=GM_NOTES.get(part),
                    slice_id=sid))


# -- risers and swells -----------------------------------------------------------------------

def _sound_sources(song: Song, pool: Pool, roles: tuple[str, ...]) -> list[tuple[str, object]]:
    """Candidate sources for a texture: pool one-shots/loops of the roles (fx, cymbal) and the
    song's own pad-like loops (with their key shift), in that order."""
    out: list[tuple[str, object]] = []
    for role in roles:
        if role in ("fx", "cymbal"):
            out += [(role, i) for i in pool.by_role(role)]
        else:
            for t in song.tracks:
                if t.role == role:
                    out += [(role, c) for c in t.clips if not c.is_pattern and not c.is_sequence
                            and not c.is_texture and not c.generated]
    return out


def _texture_clip(src: object, *, start_bar: int, bars: int, texture: dict) -> Clip:
    if isinstance(src, PoolItem):
        return Clip(start_bar=start_bar, bars=bars, source_path=src.path,
                    source_start_s=src.start_s, source_end_s=src.end_s, segment_id=src.id,
                    source_bpm=src.bpm, source_key=src.key, texture=texture, generated=True,
                    fade_in_s=0.01, fade_out_s=0.003)
    c: Clip = src  # a clip of the song: its source and its key shift
    return Clip(start_bar=start_bar, bars=bars, source_path=c.source_path,
                source_start_s=c.source_start_s, source_end_s=c.source_end_s,
                segment_id=c.segment_id, source_bpm=c.source_bpm, source_key=c.source_key,
                semitones=c.semitones, texture=texture, generated=True, fade_in_s=0.01,
                fade_out_s=0.003)


def add_risers(song: Song, pool: Pool, *, rng: np.random.Generator,
               notes: list[str]) -> tuple[int, int]:
    """A riser before every drop/hook and reverse swells into rising sections.

    Returns:
        (risers, swells) placed.
    """
    riser_src = _sound_sources(song, pool, ("fx", "pad", "strings", "keys", "lead"))
    swell_src = _sound_sources(song, pool, ("cymbal", "fx", "pad", "strings", "keys"))
    if not riser_src and not swell_src:
        notes.append("hybrid: no fx, cymbal or pad to make risers and swells from: none")
        return 0, 0
    risers: list[Clip] = []
    swells: list[Clip] = []
    for prev, sec in _section_changes(song):
        peak = sec.name in PEAK_SECTIONS
        if peak and riser_src:
            n = 4 if prev.bars >= 8 else 2
            n = min(n, sec.start_bar)
            if n >= 1:
                role, src = riser_src[int(rng.integers(0, len(riser_src)))]
                risers.append(_texture_clip(src, start_bar=sec.start_bar - n, bars=n, texture={
                    "kind": "riser", "seed": int(rng.integers(0, 2**31)),
                    "octaves": float(rng.choice([1.0, 1.0, 2.0]))}))
        rising = sec.energy > prev.energy + 0.1
        if swell_src and (rising and not peak or peak and rng.random() < 0.5):
            role, src = swell_src[int(rng.integers(0, len(swell_src)))]
            swells.append(_texture_clip(src, start_bar=sec.start_bar - 1, bars=1, texture={
                "kind": "swell", "seed": int(rng.integers(0, 2**31)),
                "decay": round(float(rng.uniform(2.5, 4.5)), 3)}))
    if risers:
        song.tracks.append(Track(name=RISER_TRACK, role="fx", clips=risers, color="#b3b3ff"))
    if swells:
        song.tracks.append(Track(name=SWELL_TRACK, role="fx", clips=swells, color="#9999e6"))
    return len(risers), len(swells)


# -- variations of the main loop -------------------------------------------------------------

def _main_track(song: Song, section: Section) -> tuple[Track, Clip] | None:
    """The melodic track that plays most in the song, with its clip in ``section``."""
    ranked = sorted((t for t in song.tracks if t.role in MELODIC_ROLES),
                    key=lambda t: (t.role == "bass",  # the bass varies only when alone
                                   -sum(c.bars for c in t.clips if not c.generated),
                                   MELODIC_ROLES.index(t.role), t.name))
    for t in ranked:
        for c in t.clips:
            if (not c.is_pattern and not c.is_sequence and not c.is_texture and c.source_bars
                    and c.start_bar < section.end_bar and c.end_bar > section.start_bar):
                return t, c
    return None


def add_variations(song: Song, *, rng: np.random.Generator) -> list[str]:
    """Vary the main loop in the second half of breaks and bridges (of later verses when there
    are none, else of the other middle sections, else of the last peak): re-sliced and
    re-ordered, or a grain cloud. Returns notes."""
    middle = song.sections[1:-1]
    verses = [s for s in song.sections if s.name == "verse"]
    targets = ([s for s in song.sections if s.name in BREAK_SECTIONS] or verses[1:] or verses
               or [s for s in middle if s.name not in PEAK_SECTIONS]
               or [s for s in middle if s.name in PEAK_SECTIONS][-1:])
    made = []
    for sec in targets:
        found = _main_track(song, sec)
        if found is None:
            continue
        track, clip = found
        sb = max(1, int(round(clip.source_bars or 1)))
        a = max(clip.start_bar, sec.start_bar)
        b = min(clip.end_bar, sec.end_bar)
        # the variation starts on a repetition of the loop, in the second half of the span
        first = clip.start_bar + int(math.ceil((a + (b - a) / 2 - clip.start_bar) / sb)) * sb
        if first >= b:
            first = clip.start_bar + int(math.ceil((a - clip.start_bar) / sb)) * sb
        if first >= b:
            continue
        kind = "reslice" if rng.random() < 0.6 else "granular"
        var = (_reslice(song, clip, first, b, rng) if kind == "reslice"
               else _granular(song, clip, first, b, rng))
        _carve(track, clip, first, b)
        track.clips.append(var)
        track.clips.sort(key=lambda c: (c.start_bar, c.generated))
        made.append(f"{track.name} {kind} in {sec.name} (bar {first + 1})")
    if made:
        return ["hybrid: variations of the main loop: " + "; ".join(made)]
    return ["hybrid: no main loop plays in a break: no loop variations"]


def _carve(track: Track, clip: Clip, a: int, b: int) -> None:
    """Remove bars a..b from a loop clip (split in two when they are in its middle; the second
    part starts on a repetition, so the loop keeps its phase)."""
    end = clip.end_bar
    clip.bars = a - clip.start_bar
    if end > b:
        tail = Clip(**{**clip.__dict__, "start_bar": b, "bars": end - b})
        tail.fade_in_s = clip.fade_in_s
        track.clips.append(tail)
    if clip.bars <= 0:
        track.clips.remove(clip)


def _reslice(song: Song, clip: Clip, a: int, b: int, rng: np.random.Generator) -> Clip:
    """The loop cut into 8th-note slices and re-ordered within each of its bars (the chord of
    the bar stays), with repeats and the odd reversed slice."""
    sb = max(1, int(round(clip.source_bars or 1)))
    per_bar = 8
    n = sb * per_bar
    d = (clip.source_end_s - clip.source_start_s) / n
    stem = _stem(clip.source_path)
    events: list[SliceEvent] = []
    for bar in range(b - a):
        lb = (a - clip.start_bar + bar) % sb
        order = list(range(per_bar))
        while sum(o == i for i, o in enumerate(order)) > per_bar // 2:
            order = [int(x) for x in rng.permutation(per_bar)]
            order[0] = 0 if rng.random() < 0.5 else order[0]  # often keep the downbeat
        prev = None
        for p in range(per_bar):
            q = order[p]
            if prev is not None and rng.random() < 0.12:
                q = prev  # a stutter
            k = lb * per_bar + q
            events.append(SliceEvent(
                step=bar * STEPS_PER_BAR + p * 2, length=2, source_path=clip.source_path,
                source_start_s=round(clip.source_start_s + k * d, 6),
                source_end_s=round(clip.source_start_s + (k + 1) * d, 6),
                semitones=float(clip.semitones), velocity=1.0 if p % 2 == 0 else 0.85,
                slice_id=f"{stem}#{clip.segment_id}.{k}", reverse=bool(rng.random() < 0.08)))
            prev = q
    return Clip(start_bar=a, bars=b - a, source_path=clip.source_path,
                source_start_s=clip.source_start_s, source_end_s=clip.source_end_s,
                segment_id=clip.segment_id, source_bpm=clip.source_bpm,
                source_key=clip.source_key, semitones=clip.semitones, gain_db=clip.gain_db,
                events=events, generated=True)


def _granular(song: Song, clip: Clip, a: int, b: int, rng: np.random.Generator) -> Clip:
    from loopmind.generate.interpret.textures import chord_pitches

    return Clip(start_bar=a, bars=b - a, source_path=clip.source_path,
                source_start_s=clip.source_start_s, source_end_s=clip.source_end_s,
                segment_id=clip.segment_id, source_bpm=clip.source_bpm,
                source_key=clip.source_key, semitones=clip.semitones, gain_db=clip.gain_db,
                texture={"kind": "granular", "seed": int(rng.integers(0, 2**31)),
                         "grain_s": round(float(rng.uniform(0.06, 0.16)), 3),
                         "density": round(float(rng.uniform(18, 40)), 1),
                         "pitches": chord_pitches(song.key), "scan": 0.8},
                generated=True, fade_in_s=0.01, fade_out_s=0.02)


# -- texture pads (interpretive mode) --------------------------------------------------------

PAD_TRACK = "texture"
_PAD_SOURCE_ROLES = ("pad", "strings", "keys", "guitar", "lead")


def texture_pad_track(song: Song, pool: Pool, *, seed: int,
                      codec_checkpoint: str | os.PathLike | None = None
                      ) -> tuple[Track | None, list[str]]:
    """A pad track made by processing one of the pool's pads (or strings, keys): a spectral
    freeze in quiet sections, a grain cloud in verses, a long stretch elsewhere (latent grains
    through the neural codec instead, when a local checkpoint is given), one clip per section
    that asks for a pad (or is quiet).

    Returns:
        (the track or None, notes).
    """
    from loopmind.generate.arrange import rank_loops
    from loopmind.generate.interpret.textures import chord_pitches

    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _SEED_SALT, 2])
    ranked = []
    for role in _PAD_SOURCE_ROLES:
        ranked = rank_loops(pool.by_role(role, kind="loop"), bpm=song.bpm, key=song.key,
                            anchor=None, tones={})
        if ranked:
            break
    if not ranked:
        return None, ["no pad, strings or keys loop fits the key: no texture pad"]
    choice = ranked[int(rng.integers(0, min(3, len(ranked))))]
    it = choice.item
    clips = []
    for s in song.sections:
        if "pad" not in s.roles and s.energy > 0.5:
            continue
        kind = ("freeze" if s.name in ("intro", "outro", "break") else
                "granular" if s.name in ("verse", "bridge") else "stretch")
        if kind == "stretch" and codec_checkpoint:
            kind = "codec"
        tex: dict = {"kind": kind, "seed": int(rng.integers(0, 2**31))}
        if kind == "codec":
            tex["checkpoint"] = os.fspath(codec_checkpoint)
        if kind == "granular":
            tex.update(pitches=chord_pitches(song.key), grain_s=0.12, density=24.0)
        clips.append(Clip(start_bar=s.start_bar, bars=s.bars, source_path=it.path,
                          source_start_s=it.start_s, source_end_s=it.end_s, segment_id=it.id,
                          source_bpm=it.bpm, source_key=it.key, semitones=int(choice.semitones),
                          texture=tex, generated=True, fade_in_s=0.05, fade_out_s=0.05,
                          gain_db=-3.0 if s.energy >= 0.8 else 0.0))
    if not clips:
        return None, []
    track = Track(name=PAD_TRACK, role=it.role or "pad", clips=clips, color="#7a5cff")
    return track, [f"texture pad from {Path(it.path).name} ({_count(len(clips), 'section')}: "
                   f"{', '.join(sorted({c.texture['kind'] for c in clips}))})"]

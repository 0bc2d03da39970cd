"""Sections of an imported project: read from the source's markers, or derived from which tracks
play where.

A derived section starts where the set of playing tracks changes, on 4-bar boundaries; it is
named by its position and energy (how many roles play, relative to the fullest section) and
marked ``inferred``. Names follow LoopMind's arranger: intro | verse | pre-chorus | hook | drop |
break | bridge | outro.
"""

from __future__ import annotations

import math
import re

from loopmind.generate.projects.model import Project, Section

BLOCK_BARS = 4
MAX_BARS = 4096            # a hostile clip at bar 10**9 must not make a 10**9-long timeline
EDM_GENRES = {"house", "techno", "edm", "dubstep", "trance", "dnb", "drum and bass", "electro",
              "bigroom", "future bass", "hardstyle", "garage", "jungle", "dance", "progressive"}
_SECTION_WORDS = [
    (re.compile(r"(?i)\b(intro|opening|start)\b"), "intro"),
    (re.compile(r"(?i)\b(pre[- ]?chorus|pre[- ]?hook|build[- ]?up|build|riser|lift)\b"),
     "pre-chorus"),
    (re.compile(r"(?i)\b(chorus|hook|refrain)\b"), "hook"),
    (re.compile(r"(?i)\bdrop\b"), "drop"),
    (re.compile(r"(?i)\b(break\s*down|breakdown|break)\b"), "break"),
    (re.compile(r"(?i)\b(bridge|middle ?8|middle eight|interlude)\b"), "bridge"),
    (re.compile(r"(?i)\b(outro|ending|end|coda)\b"), "outro"),
    (re.compile(r"(?i)\b(verse|rap|strophe|a)\b"), "verse"),
]


def canonical_section(label: str | None) -> str | None:
    """The section word a label means ("Chorus 2" -> "hook", "Breakdown" -> "break")."""
    if not label:
        return None
    text = re.sub(r"[_\-]+", " ", str(label))
    for pattern, name in _SECTION_WORDS:
        if pattern.search(text):
            return name
    return None


def _beats_per_bar(project: Project) -> float:
    num, den = project.time_signature
    return num * 4.0 / den if num > 0 and den > 0 else 4.0


def activity(project: Project) -> list[bytearray]:
    """For each track (same order as ``project.tracks``), which bars (0-based, up to the
    project's end or ``MAX_BARS``) it sounds in: ``act[t][bar]`` is 1 or 0.

    Muted tracks and clips and automation play nothing; a clip with notes plays in the bars its
    notes sound in; a clip without note data (an audio loop) plays over its whole span. Each
    track costs one pass over its notes plus one over the bars, whatever the note lengths.
    """
    bpb = _beats_per_bar(project)
    total = max(0, min(math.ceil(project.bars - 1e-6), MAX_BARS))
    out: list[bytearray] = []
    for track in project.tracks:
        diff = [0] * (total + 1)
        if not track.muted and track.kind != "automation":
            for clip in track.clips:
                if clip.muted or clip.bars <= 0:
                    continue
                end = min(clip.end_bar, total)
                spans = [(clip.start_bar, end)] if clip.notes is None else [
                    (clip.start_bar + n.start_beat / bpb,
                     min(clip.start_bar + (n.start_beat + max(n.length, 1e-3)) / bpb, end))
                    for n in clip.notes]
                for a, b in spans:
                    if a < 0 or a >= end:
                        continue
                    lo = math.floor(a + 1e-6)
                    hi = min(max(lo + 1, math.ceil(b - 1e-6)), total)
                    diff[lo] += 1
                    diff[hi] -= 1
        bars = bytearray(total)
        level = 0
        for k in range(total):
            level += diff[k]
            bars[k] = level > 0
        out.append(bars)
    return out


def roles_between(project: Project, act: list[bytearray], start_bar: float, end_bar: float,
                  *, min_share: float = 0.25) -> list[str]:
    """Roles playing in at least ``min_share`` of the bars in [start_bar, end_bar) (at least
    one bar)."""
    lo = math.floor(start_bar + 1e-6)
    hi = max(math.ceil(end_bar - 1e-6), lo + 1)
    need = max(1, math.ceil(min_share * (hi - lo) - 1e-9))
    roles: set[str] = set()
    for track, bars in zip(project.tracks, act):
        if track.role and sum(bars[lo:hi]) >= need:
            roles.add(track.role)
    return sorted(roles)


def name_sections(sections: list[Section], genre: str | None,
                   energies: list[float]) -> None:
    """Give heuristic names (in place) to sections whose name is empty."""
    n = len(sections)
    top = max(energies, default=0.0) or 1.0
    big = "drop" if genre and genre.lower() in EDM_GENRES else "hook"
    seen_big = False
    verse_sets: list[frozenset[str]] = []
    for i, sec in enumerate(sections):
        rel = energies[i] / top
        sec.energy = rel
        if sec.name:
            seen_big |= sec.name in ("hook", "drop")
            continue
        later_big = any(energies[j] / top >= 0.8 for j in range(i + 1, n))
        if energies[i] == 0:
            sec.name = "intro" if i == 0 else ("outro" if i == n - 1 else "break")
        elif i == 0 and n > 1 and rel < 0.8:
            sec.name = "intro"
        elif i == n - 1 and n > 2 and rel < 0.8:
            sec.name = "outro"
        elif rel >= 0.8:
            sec.name = big
            seen_big = True
        elif rel <= 0.45 and i > 0:
            sec.name = "break"
        else:
            roles = frozenset(sec.roles)
            if seen_big and later_big and verse_sets and roles not in verse_sets:
                sec.name = "bridge"
            elif later_big and i + 1 < n and energies[i + 1] / top >= 0.8 and verse_sets \
                    and sec.bars <= 4:
                sec.name = "pre-chorus"
            else:
                sec.name = "verse"
                verse_sets.append(roles)


def derive_sections(project: Project, *, block_bars: int = BLOCK_BARS) -> list[Section]:
    """Sections from where the set of playing tracks changes (inferred, heuristically named)."""
    act = activity(project)
    total = min(math.ceil(project.bars - 1e-6), MAX_BARS)
    if total <= 0:
        return []
    # a track plays in a block when it sounds in at least half of the block's bars
    blocks: list[tuple[int, int, frozenset[int]]] = []
    for start in range(0, total, block_bars):
        end = min(start + block_bars, total)
        need = max(1, (end - start + 1) // 2)
        playing = frozenset(i for i, bars in enumerate(act) if sum(bars[start:end]) >= need)
        if blocks and blocks[-1][2] == playing:
            blocks[-1] = (blocks[-1][0], end, playing)
        else:
            blocks.append((start, end, playing))
    # a lone short block between two blocks that play the same, differing from them by one
    # track (a fill, a crash, a drum drop), belongs to them rather than making three sections
    merged: list[list] = [list(b) for b in blocks]
    i = 1
    while i + 1 < len(merged):
        prev, cur, nxt = merged[i - 1], merged[i], merged[i + 1]
        if cur[1] - cur[0] <= block_bars and prev[2] == nxt[2] and len(prev[2] ^ cur[2]) <= 1:
            prev[1] = nxt[1]
            del merged[i:i + 2]
        else:
            i += 1
    # a ragged last bar or two (a note ringing past the end) belongs to the section before
    if len(merged) > 1 and merged[-1][1] - merged[-1][0] < 2:
        last = merged.pop()
        merged[-1][1] = last[1]
    sections: list[Section] = []
    counts: list[int] = []
    for s, e, playing in merged:
        roles = roles_between(project, act, s, e)
        prev = sections[-1] if sections else None
        # tracks swapping within the same roles (two hat patterns) make no new section, as
        # long as the section stays a usual length
        if prev is not None and prev.roles == roles and prev.bars + (e - s) <= 16:
            prev.bars += e - s
            counts[-1] = max(counts[-1], len(playing))
            continue
        sections.append(Section(name="", start_bar=float(s), bars=float(e - s), roles=roles,
                                inferred=True))
        counts.append(len(playing))
    energies = [float(len(s.roles) or n) for s, n in zip(sections, counts)]
    name_sections(sections, project.genre, energies)
    return sections


def sections_from_markers(project: Project, markers: list[tuple[float, str]]) -> list[Section]:
    """Sections that start at the source's markers (FL time markers, labels).

    A marker whose text names a section word gives that name (the text is kept as ``label``);
    others are named by energy like derived sections. The first section starts at bar 0.
    """
    total = min(project.bars, float(MAX_BARS))
    points = sorted({(max(0.0, float(b)), str(t)) for b, t in markers if 0 <= b < total})
    if not points or total <= 0:
        return []
    if points[0][0] > 0:
        points.insert(0, (0.0, ""))
    act = activity(project)
    sections: list[Section] = []
    for i, (bar, text) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else total
        if end - bar <= 1e-6:
            continue
        sections.append(Section(name=canonical_section(text) or "", start_bar=bar,
                                bars=end - bar, roles=roles_between(project, act, bar, end),
                                inferred=False, label=text or None))
    energies = [float(len(s.roles)) for s in sections]
    name_sections(sections, project.genre, energies)
    for s in sections:
        if s.label is not None and canonical_section(s.label) is None:
            s.inferred = True  # the boundary is the source's, the name is a guess
    return sections


def fill_section_roles(project: Project) -> None:
    """Give sections that came without roles the roles that play in them (in place)."""
    if not any(not s.roles for s in project.sections):
        return
    act = activity(project)
    for s in project.sections:
        if not s.roles:
            s.roles = roles_between(project, act, s.start_bar, s.end_bar)

"""LMMS projects: .mmp (XML) and .mmpz (the same XML, qCompress'ed).

LMMS counts 48 ticks per quarter note, so a bar lasts ``192 * numerator / denominator`` ticks.
Track types: 0 instrument (pattern clips with notes), 1 beat/bassline (placements of a shared
"BB" pattern row whose instruments live in the first BB track's container), 2 sample (audio
clips), 5 automation. BB placements are expanded onto their instrument tracks, with the BB
pattern looped over the placement as LMMS plays it. Key numbers are LMMS's (A4 = 57), i.e.
MIDI - 12.
"""

from __future__ import annotations

import math
import os
import struct
import xml.etree.ElementTree as ET
import zlib
from xml.parsers import expat

from loopmind.generate.projects import ProjectError
from loopmind.generate.projects.model import MAX_TRACKS, Clip, Mixer, Note, Project, Track
from loopmind.generate.projects.roles import guess_role, track_notes

TICKS_PER_QUARTER = 48
MAX_XML_BYTES = 32 * 1024 * 1024     # an LMMS demo is ~0.5 MB of XML
MAX_ELEMENTS = 300_000             # the largest LMMS demo has 16k
_CHUNK = 1 << 20
MAX_DEPTH = 256
MAX_NOTES = 200_000                  # notes kept per project (unrolled loops included)
MAX_TICKS = 192 * 4096               # positions past 4096 bars are not music, they are damage
_REVERB_WORDS = ("reverb", "plate", "verb", "freeverb", "room", "hall")


class _Budget:
    """Counts notes kept so a hostile project cannot unroll millions of loops."""

    def __init__(self, limit: int = MAX_NOTES) -> None:
        self.left = limit
        self.hit = False

    def take(self, n: int) -> int:
        k = max(0, min(n, self.left))
        self.left -= k
        if k < n:
            self.hit = True
        return k


def decompress_mmpz(path: str, data: bytes, *, limit: int = MAX_XML_BYTES) -> bytes:
    """The XML in an .mmpz: a 4-byte big-endian length, then a zlib stream (Qt's qCompress).

    The declared length is checked and the output is capped at ``limit`` bytes while
    inflating, so a zip bomb stops after ``limit`` bytes rather than filling memory.
    """
    if len(data) < 6:
        raise ProjectError(f"{path}: truncated .mmpz (only {len(data)} bytes)")
    declared = struct.unpack(">I", data[:4])[0]
    if declared > limit:
        raise ProjectError(f"{path}: .mmpz declares {declared / 2**20:.0f} MB of XML "
                           f"(the limit is {limit // 2**20} MB)")
    d = zlib.decompressobj()
    parts: list[bytes] = []
    total = 0
    pending = memoryview(data)[4:]
    try:
        # inflate 1 MB at a time so a bomb costs at most ``limit`` plus one chunk
        while pending and not d.eof:
            chunk = d.decompress(pending, _CHUNK)
            total += len(chunk)
            if total > limit:
                raise ProjectError(f"{path}: .mmpz expands past {limit // 2**20} MB")
            parts.append(chunk)
            pending = d.unconsumed_tail
            if not chunk and not pending:
                break
    except zlib.error as exc:
        raise ProjectError(f"{path}: corrupt .mmpz ({exc})") from None
    out = b"".join(parts)
    del parts
    if not d.eof:
        raise ProjectError(f"{path}: truncated .mmpz (the compressed stream ends early)")
    if declared and len(out) != declared:
        raise ProjectError(f"{path}: corrupt .mmpz (declares {declared} bytes, "
                           f"holds {len(out)})")
    return out


def parse_xml_safely(path: str, data: bytes) -> ET.Element:
    """An element tree from XML that may be hostile: no DTD internal subset, no entity
    declarations, no external entities, bounded element count and depth. Text content is
    dropped (LMMS keeps everything LoopMind reads in attributes)."""
    if len(data) > MAX_XML_BYTES:
        raise ProjectError(f"{path}: XML too large ({len(data) / 2**20:.0f} MB)")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    state = {"n": 0, "depth": 0}

    def refuse(what: str):
        def handler(*_args):
            raise ProjectError(f"{path}: XML with {what} is not accepted")
        return handler

    def doctype(_name, system_id, public_id, has_internal_subset):
        if has_internal_subset or system_id or public_id:
            raise ProjectError(f"{path}: XML with a DTD subset or external DTD is not accepted")

    def start(tag, attrs):
        state["n"] += 1
        state["depth"] += 1
        if state["n"] > MAX_ELEMENTS:
            raise ProjectError(f"{path}: XML has more than {MAX_ELEMENTS} elements")
        if state["depth"] > MAX_DEPTH:
            raise ProjectError(f"{path}: XML nested more than {MAX_DEPTH} levels deep")
        builder.start(tag, attrs)

    def end(tag):
        state["depth"] -= 1
        builder.end(tag)

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = refuse("entity declarations")
    parser.UnparsedEntityDeclHandler = refuse("entity declarations")
    parser.ExternalEntityRefHandler = refuse("external entities")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        reason = expat.errors.messages.get(exc.code, str(exc)) if hasattr(exc, "code") else exc
        raise ProjectError(f"{path}: not valid XML ({reason}, line {exc.lineno})") from None
    try:
        return builder.close()
    except Exception:
        raise ProjectError(f"{path}: not valid XML (no root element)") from None


def _float(value, default: float | None = None) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def _param(elem: ET.Element | None, name: str, default: float | None = None) -> float | None:
    """A model value LMMS saves either as an attribute or (automated/linked) as a child
    element ``<name value=...>``."""
    if elem is None:
        return default
    if name in elem.attrib:
        return _float(elem.get(name), default)
    child = elem.find(name)
    if child is not None:
        return _float(child.get("value"), default)
    return default


def _ticks(value, default: float = 0.0) -> float:
    x = _float(value, default)
    return min(max(x, -MAX_TICKS), MAX_TICKS)


def _effect_name(effect: ET.Element) -> str:
    keys = {a.get("name"): a.get("value") for a in effect.iter("attribute")}
    name = effect.get("name") or "effect"
    if keys.get("plugin"):
        lib = os.path.splitext(keys.get("file") or "")[0]
        return f"{lib}:{keys['plugin']}" if lib else keys["plugin"]
    return name


def _is_reverb(name: str) -> bool:
    n = name.lower()
    return any(w in n for w in _REVERB_WORDS) or n.endswith("reverbsc")


def _eq_bands(effect: ET.Element) -> list[dict]:
    """Bands of LMMS's own EQ plugin ("eq"), only the active ones."""
    eq = effect.find("Eq")
    if eq is None:
        return []
    bands: list[dict] = []

    def on(flag: str) -> bool:
        return (_param(eq, flag, 0.0) or 0.0) > 0.5

    if on("HPactive"):
        bands.append({"type": "highpass", "freq_hz": _param(eq, "HPfreq"), "gain_db": None,
                      "q": _param(eq, "HPres")})
    if on("Lowshelfactive"):
        bands.append({"type": "lowshelf", "freq_hz": _param(eq, "LowShelffreq"),
                      "gain_db": _param(eq, "Lowshelfgain", 0.0), "q": _param(eq, "LowShelfres")})
    for i in range(1, 5):
        if on(f"Peak{i}active"):
            bw = _param(eq, f"Peak{i}bw")
            bands.append({"type": "peak", "freq_hz": _param(eq, f"Peak{i}freq"),
                          "gain_db": _param(eq, f"Peak{i}gain", 0.0),
                          "q": (1.0 / bw) if bw else None})
    if on("Highshelfactive"):
        bands.append({"type": "highshelf", "freq_hz": _param(eq, "Highshelffreq"),
                      "gain_db": _param(eq, "HighShelfgain", 0.0),
                      "q": _param(eq, "HighShelfres")})
    if on("LPactive"):
        bands.append({"type": "lowpass", "freq_hz": _param(eq, "LPfreq"), "gain_db": None,
                      "q": _param(eq, "LPres")})
    return bands


class _FxMixer:
    """The FX mixer's channels: volume, mute, effects, sends."""

    def __init__(self, root: ET.Element) -> None:
        self.channels: dict[int, ET.Element] = {}
        fx = root.find("song/fxmixer")
        if fx is not None:
            for ch in fx.findall("fxchannel"):
                num = _float(ch.get("num"))
                if num is not None:
                    self.channels[int(num)] = ch

    def chain(self, num: int) -> list[ET.Element]:
        ch = self.channels.get(num)
        if ch is None or (ch.find("fxchain") is not None
                          and ch.find("fxchain").get("enabled") == "0"):
            return []
        return [e for e in ch.iterfind("fxchain/effect") if e.get("on", "1") != "0"]

    def volume(self, num: int) -> float:
        return _param(self.channels.get(num), "volume", 1.0) or 0.0

    def muted(self, num: int) -> bool:
        ch = self.channels.get(num)
        return ch is not None and ch.get("muted") == "1"

    def reverb_send(self, num: int) -> float | None:
        """How much of channel ``num`` reaches a reverb: an insert reverb's wet amount, or the
        amount sent to another (non-master) channel that has a reverb."""
        for e in self.chain(num):
            if _is_reverb(_effect_name(e)):
                return min(1.0, max(0.0, _float(e.get("wet"), 1.0)))
        ch = self.channels.get(num)
        if ch is None:
            return None
        for send in ch.findall("send"):
            target = int(_float(send.get("channel"), 0) or 0)
            if target and target != num and any(_is_reverb(_effect_name(e))
                                                for e in self.chain(target)):
                return min(1.0, max(0.0, _float(send.get("amount"), 1.0)))
        return None


def _mixer(track_elem: ET.Element, settings: ET.Element | None, fx: _FxMixer) -> Mixer:
    vol = _param(settings, "vol", 100.0)
    pan = _param(settings, "pan", 0.0)
    insert = int(_param(settings, "fxch", 0.0) or 0)
    chain = [] if settings is None else [
        e for e in settings.iterfind("fxchain/effect") if e.get("on", "1") != "0"]
    if settings is not None and settings.find("fxchain") is not None \
            and settings.find("fxchain").get("enabled") == "0":
        chain = []
    chain += fx.chain(insert) if insert else []
    linear = max(vol, 0.0) / 100.0 * (fx.volume(insert) if insert else 1.0)
    eq: list[dict] = []
    for e in chain:
        if e.get("name") == "eq":
            eq += _eq_bands(e)
    reverb = None
    for e in chain:
        if _is_reverb(_effect_name(e)):
            reverb = min(1.0, max(0.0, _float(e.get("wet"), 1.0)))
            break
    if reverb is None and insert:
        reverb = fx.reverb_send(insert)
    return Mixer(volume=min(max(vol, 0.0) / 200.0, 1.0),
                 gain_db=max(-96.0, 20 * math.log10(linear)) if linear > 0 else -96.0,
                 pan=min(1.0, max(-1.0, pan / 100.0)), eq=eq or None, reverb_send=reverb,
                 insert=insert or None, effects=[_effect_name(e) for e in chain],
                 muted=track_elem.get("muted") == "1" or (insert > 0 and fx.muted(insert)))


def _notes(pattern: ET.Element, length_ticks: float, budget: _Budget) -> list[Note]:
    notes: list[Note] = []
    elems = pattern.findall("note")
    for n in elems[:budget.take(len(elems))]:
        pos = _ticks(n.get("pos"))
        if pos < 0 or pos >= length_ticks:
            continue  # LMMS does not play notes past the pattern's end
        length = _ticks(n.get("len"), 48.0)
        notes.append(Note(start_beat=pos / TICKS_PER_QUARTER,
                          length=length / TICKS_PER_QUARTER if length > 0 else 0.25,
                          key=int(min(127, max(0, (_float(n.get("key"), 57.0) or 57) + 12))),
                          velocity=min(1.0, max(0.0, (_float(n.get("vol"), 100.0) or 0) / 100)),
                          pan=min(1.0, max(-1.0, (_float(n.get("pan"), 0.0) or 0.0) / 100))))
    notes.sort(key=lambda x: (x.start_beat, x.key))
    return notes


def _pattern_ticks(pattern: ET.Element, tpb: float) -> float:
    """A pattern's length in ticks: its ``len``, else what LMMS computes (steps for a beat
    pattern, the last note rounded up to a bar for a melody)."""
    length = _float(pattern.get("len"))
    if length is not None and length > 0:
        return min(length, MAX_TICKS)
    if pattern.get("type") == "0":
        steps = _float(pattern.get("steps"), 16.0) or 16.0
        return min(max(1.0, steps) * tpb / 16, MAX_TICKS)
    end = 0.0
    for n in pattern.iter("note"):
        end = max(end, _ticks(n.get("pos")) + max(_ticks(n.get("len"), 0.0), 0.0))
    return min(max(1, math.ceil(end / tpb)) * tpb, MAX_TICKS)


def _instrument(track_elem: ET.Element) -> tuple[ET.Element | None, str | None, str | None]:
    settings = track_elem.find("instrumenttrack")
    if settings is None:
        return None, None, None
    inst = settings.find("instrument")
    plugin = inst.get("name") if inst is not None else None
    sample = None
    if inst is not None:
        for child in inst:
            if child.get("src"):
                sample = child.get("src")
                break
    return settings, plugin, sample


def _base_track(elem: ET.Element, fx: _FxMixer) -> Track:
    kind_code = elem.get("type")
    name = elem.get("name") or "track"
    if kind_code == "2":
        settings = elem.find("sampletrack")
        return Track(name=name, kind="audio", mixer=_mixer(elem, settings, fx),
                     muted=elem.get("muted") == "1")
    if kind_code in ("5", "6"):
        return Track(name=name, kind="automation", muted=elem.get("muted") == "1")
    settings, plugin, sample = _instrument(elem)
    kind = "sample" if sample or plugin == "audiofileprocessor" else "instrument"
    return Track(name=name, kind=kind, sample_path=sample, plugin=plugin,
                 mixer=_mixer(elem, settings, fx), muted=elem.get("muted") == "1")


def _song_clips(elem: ET.Element, track: Track, tpb: float, budget: _Budget) -> None:
    """Clips placed directly on a song track (patterns, sample clips, automation)."""
    for p in elem.findall("pattern"):
        length = _pattern_ticks(p, tpb)
        track.clips.append(Clip(start_bar=_ticks(p.get("pos")) / tpb, bars=length / tpb,
                                pattern=p.get("name") or None,
                                notes=_notes(p, length, budget), muted=p.get("muted") == "1"))
    for s in elem.findall("sampletco"):
        length = _ticks(s.get("len"), tpb)
        track.clips.append(Clip(start_bar=_ticks(s.get("pos")) / tpb, bars=max(length, 0) / tpb,
                                sample=s.get("src") or None, muted=s.get("muted") == "1"))
    for a in elem.findall("automationpattern"):
        length = _ticks(a.get("len"), tpb)
        track.clips.append(Clip(start_bar=_ticks(a.get("pos")) / tpb, bars=max(length, 0) / tpb,
                                pattern=a.get("name") or None, muted=a.get("mute") == "1"))


def _expand_bb(bb_tracks: list[ET.Element], fx: _FxMixer, tpb: float, budget: _Budget,
               warnings: list[str]) -> list[Track]:
    """Instrument tracks of the beat/bassline editor with one clip per BB placement."""
    container = None
    for bb in bb_tracks:
        container = bb.find("bbtrack/trackcontainer")
        if container is not None:
            break
    if container is None:
        if bb_tracks:
            warnings.append("beat/bassline tracks without their instruments; skipped")
        return []
    inner = container.findall("track")
    if len(inner) > MAX_TRACKS:
        raise ProjectError(f"more than {MAX_TRACKS} beat/bassline tracks")
    # pattern of inner track t for BB row i: the one at i bars (LMMS lines them up so), else
    # the i-th in file order
    rows: list[dict[int, ET.Element]] = []
    for t in inner:
        pats = t.findall("pattern")
        by_bar: dict[int, ET.Element] = {}
        for k, p in enumerate(pats):
            pos = _ticks(p.get("pos"))
            idx = int(round(pos / tpb)) if pos % tpb == 0 else k
            by_bar.setdefault(idx, p)
        rows.append(by_bar)
    bb_len: dict[int, float] = {}
    for i in range(len(bb_tracks)):
        longest = max((_pattern_ticks(r[i], tpb) for r in rows if i in r), default=tpb)
        bb_len[i] = max(1, math.ceil(longest / tpb - 1e-9)) * tpb
    tracks: list[Track] = []
    for t, row in zip(inner, rows):
        track = _base_track(t, fx)
        if track.kind == "automation":
            continue
        for i, bb in enumerate(bb_tracks):
            p = row.get(i)
            if p is None or p.get("muted") == "1":
                continue
            plen = _pattern_ticks(p, tpb)
            one = _notes(p, plen, budget)
            if not one:
                continue
            loop_beats = bb_len[i] / TICKS_PER_QUARTER
            for tco in bb.findall("bbtco"):
                start = _ticks(tco.get("pos"))
                length = _ticks(tco.get("len"), bb_len[i])
                if length <= 0:
                    continue
                span_beats = length / TICKS_PER_QUARTER
                notes: list[Note] = []
                reps = math.ceil(span_beats / loop_beats - 1e-9)
                for r in range(reps):
                    off = r * loop_beats
                    take = [n for n in one if n.start_beat + off < span_beats - 1e-9]
                    take = take[:budget.take(len(take))]
                    notes += [Note(n.start_beat + off, n.length, n.key, n.velocity, n.pan)
                              for n in take]
                    if budget.hit:
                        break
                track.clips.append(Clip(start_bar=start / tpb, bars=length / tpb,
                                        pattern=bb.get("name") or f"beat/bassline {i + 1}",
                                        notes=notes,
                                        muted=tco.get("muted") == "1" or bb.get("muted") == "1"))
        tracks.append(track)
    return tracks


def load_lmms(path: str, data: bytes, *, compressed: bool) -> Project:
    """An LMMS project (.mmp bytes, or .mmpz bytes when ``compressed``)."""
    xml = decompress_mmpz(path, data) if compressed else data
    root = parse_xml_safely(path, xml)
    if root.tag not in ("lmms-project", "multimedia-project"):
        raise ProjectError(f"{path}: not an LMMS project (root element <{root.tag[:40]}>)")
    head = root.find("head")
    song = root.find("song")
    if head is None or song is None:
        raise ProjectError(f"{path}: LMMS project without <head> or <song>")
    bpm = _param(head, "bpm", 140.0)
    if not 10 <= bpm <= 999:
        raise ProjectError(f"{path}: implausible tempo {head.get('bpm')!r}")
    num = int(_param(head, "timesig_numerator", 4.0))
    den = int(_param(head, "timesig_denominator", 4.0))
    if not (1 <= num <= 64 and den in (1, 2, 4, 8, 16, 32)):
        raise ProjectError(f"{path}: implausible time signature {num}/{den}")
    tpb = 192.0 * num / den
    fx = _FxMixer(root)
    budget = _Budget()
    warnings: list[str] = []
    project = Project(source=os.path.abspath(path), kind="mmpz" if compressed else "mmp",
                      name=os.path.splitext(os.path.basename(path))[0], bpm=bpm,
                      time_signature=(num, den), ppq=TICKS_PER_QUARTER,
                      creator=f"LMMS {root.get('creatorversion') or root.get('version') or ''}"
                      .strip())
    container = song.find("trackcontainer")
    song_tracks = container.findall("track") if container is not None else []
    if len(song_tracks) > MAX_TRACKS:
        raise ProjectError(f"{path}: more than {MAX_TRACKS} tracks")
    bb_tracks = [t for t in song_tracks if t.get("type") == "1"]
    for elem in song_tracks:
        if elem.get("type") == "1":
            continue
        track = _base_track(elem, fx)
        _song_clips(elem, track, tpb, budget)
        project.tracks.append(track)
    try:
        project.tracks += _expand_bb(bb_tracks, fx, tpb, budget, warnings)
    except ProjectError as exc:
        raise ProjectError(f"{path}: {exc}") from None
    # (global automation under <song><track>, outside the container, is not read)
    for t in project.tracks:
        if t.kind != "automation":
            notes = track_notes(t, num * 4.0 / den)
            t.role, t.role_source = guess_role(t.name, sample_path=t.sample_path,
                                               plugin=t.plugin, notes=notes)
    _unique_names(project.tracks)
    if budget.hit:
        warnings.append(f"more than {MAX_NOTES} notes; the rest were dropped")
    project.warnings += warnings
    return project


def _unique_names(tracks: list[Track]) -> None:
    seen: dict[str, int] = {}
    for t in tracks:
        n = seen.get(t.name, 0) + 1
        seen[t.name] = n
        if n > 1:
            t.name = f"{t.name} ({n})"

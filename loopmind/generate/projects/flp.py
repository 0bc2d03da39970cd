"""FL Studio projects (.flp), read with pyflp behind LoopMind's own bounds checks.

An FLP is a 22-byte header (``FLhd``, size 6, format, channel count, PPQ; then ``FLdt`` and the
size of the event data) followed by events: an ID byte, then 1, 2 or 4 bytes of value
(IDs < 64, < 128, < 192) or a varint length and that many bytes. The header and every event
length are checked here before pyflp sees the file, so a corrupt or hostile file fails with
a clear reason and never makes anyone allocate more than the file's own size.

Channel volumes are 0..12800 (10000 = unity), mixer insert volumes 0..16000 (12800 = 0 dB,
16000 = +5.6 dB), pans -6400..6400 (inserts) or 0..12800 (channels). FL's fader law is not
published; gain_db uses a power law fitted to pyflp's documented points (1.25 of unity =
+5.6 dB), good to about a dB over the usual range.
"""

from __future__ import annotations

import math
import os
import re
import struct
import warnings as warnings_mod
from typing import Any

from loopmind.generate.projects import ProjectError
from loopmind.generate.projects.model import MAX_TRACKS, Clip, Mixer, Note, Project, Track
from loopmind.generate.projects.roles import guess_role, track_notes

HEADER = struct.Struct("<4sIhHH")
VALID_PPQS = (24, 48, 72, 96, 120, 144, 168, 192, 384, 768, 960)
FORMATS = {-1: "temporary", 0: "project", 0x10: "score", 24: "automation", 0x20: "channel state",
           0x30: "plugin state", 0x31: "generator state", 0x32: "effect state",
           0x40: "insert state", 0x50: "patcher state"}
MAX_EVENTS = 200_000        # pyflp takes ~100 µs an event: ~20 s at the cap
MAX_NOTES = 200_000
MAX_TICKS_BARS = 4096
_GAIN_EXPONENT = math.log(10 ** (5.6 / 20)) / math.log(16000 / 12800)   # ~2.9
_REVERB = re.compile(r"(?i)reverb|reeverb|verb\b|plate|hall|room|valhalla|raum|shimmer")
_EQ = {"low": "lowshelf", "mid": "peak", "high": "highshelf"}
FLP_VERSION_PLAYLIST = (12, 9)   # pyflp reads arrangements from FL 12.9 on


def check_flp(path: str, data: bytes) -> tuple[int, int, int]:
    """Validate an FLP's header and event framing.

    Returns:
        (format, channel count, ppq).

    Raises:
        ProjectError: with the first thing that is wrong.
    """
    if len(data) < 22:
        raise ProjectError(f"{path}: truncated FL Studio project ({len(data)} bytes, "
                           "shorter than its header)")
    magic, size, fmt, channels, ppq = HEADER.unpack_from(data)
    if magic != b"FLhd":
        raise ProjectError(f"{path}: not an FL Studio project (no FLhd header)")
    if size != 6:
        raise ProjectError(f"{path}: corrupt FL Studio header (header size {size}, expected 6)")
    if fmt not in FORMATS:
        raise ProjectError(f"{path}: unsupported FL Studio file format {fmt}")
    if fmt != 0:
        raise ProjectError(f"{path}: an FL Studio {FORMATS[fmt]} file, not a project")
    if ppq not in VALID_PPQS:
        raise ProjectError(f"{path}: corrupt FL Studio header (PPQ {ppq} is not one FL uses)")
    if data[14:18] != b"FLdt":
        raise ProjectError(f"{path}: corrupt FL Studio project (no FLdt data chunk)")
    declared = struct.unpack_from("<I", data, 18)[0]
    actual = len(data) - 22
    if declared != actual:
        what = "truncated" if declared > actual else "corrupt"
        raise ProjectError(f"{path}: {what} FL Studio project (data chunk declares "
                           f"{declared} bytes, the file holds {actual})")
    if actual == 0:
        raise ProjectError(f"{path}: FL Studio project without events")
    for _ in events(path, data):
        pass
    return fmt, channels, ppq


def events(path: str, data: bytes):
    """Yield (event id, value offset, value size) for the events of a checked-size FLP,
    raising ProjectError at the first event whose length runs past the data."""
    pos, end, count = 22, len(data), 0
    while pos < end:
        eid = data[pos]
        pos += 1
        if eid < 64:
            size = 1
        elif eid < 128:
            size = 2
        elif eid < 192:
            size = 4
        else:
            size, shift = 0, 0
            while True:
                if pos >= end:
                    raise ProjectError(f"{path}: truncated FL Studio event at byte {pos}")
                b = data[pos]
                pos += 1
                size |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
                if shift > 28:
                    raise ProjectError(f"{path}: corrupt FL Studio event length at byte {pos}")
        if size > end - pos:
            raise ProjectError(f"{path}: corrupt FL Studio event {eid} at byte {pos} "
                               f"(declares {size} bytes, {end - pos} left)")
        yield eid, pos, size
        pos += size
        count += 1
        if count > MAX_EVENTS:
            raise ProjectError(f"{path}: more than {MAX_EVENTS} events")


PLAYLIST_EVENT = 233          # ArrangementID.Playlist (DATA + 25)
_PL_ITEM = struct.Struct("<IHHIHH2sH4sff")


def raw_playlist(path: str, data: bytes) -> list[dict[str, Any]]:
    """Playlist items read straight from the first playlist event, for projects whose
    arrangements pyflp cannot model (before FL 12.9). 32-byte items, 60 from FL 21."""
    for eid, pos, size in events(path, data):
        if eid != PLAYLIST_EVENT or not size:
            continue
        step = 60 if size % 60 == 0 else 32
        if size % step:
            return []
        items = []
        for off in range(pos, pos + size, step):
            (position, base, index, length, rvidx, _g, _u1, _flags, _u2, start_off,
             _end_off) = _PL_ITEM.unpack_from(data, off)
            items.append({"position": position, "pattern_base": base, "item_index": index,
                          "length": length, "track_rvidx": rvidx, "start_offset": start_off})
        return items
    return []


def _get(obj: Any, attr: str, default: Any = None) -> Any:
    """An attribute of a pyflp model, or ``default`` when pyflp cannot produce it (missing
    event, a field this FL version does not write, a parse error deep inside)."""
    try:
        value = getattr(obj, attr)
    except Exception:  # noqa: BLE001 - pyflp raises many kinds for absent data
        return default
    return default if value is None else value


def _gain_db(value: float | None, unity: float) -> float | None:
    if value is None:
        return None
    if value <= 0:
        return -96.0
    return max(-96.0, 20 * _GAIN_EXPONENT * math.log10(value / unity))


def _eq_freq_hz(value: float) -> float:
    """FL's insert EQ frequency (0..65536) in Hz: a quadratic in log-frequency through pyflp's
    documented defaults (5777 = 90 Hz, 33145 = 1.5 kHz, 55825 = 8 kHz)."""
    x = min(max(value / 65536.0, 0.0), 1.0)
    return 10 ** (1.6481 + 3.5678 * x - 1.0806 * x * x)


def _plugin_name(channel: Any) -> str | None:
    plugin = _get(channel, "plugin")
    internal = _get(channel, "internal_name") or None
    if plugin is not None and type(plugin).__name__ == "VSTPlugin":
        return _get(plugin, "name") or _get(plugin, "plugin_path") or internal
    return internal


def _inserts(project: Any, warnings: list[str]) -> list[Any]:
    try:
        # iterate, don't list(): pyflp's __len__ refuses a mixer without insert flags
        return [ins for ins in iter(project.mixer)]
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"mixer unreadable ({type(exc).__name__}); channel levels only")
        return []


def _insert_info(ins: Any) -> dict[str, Any]:
    effects: list[str] = []
    reverb = None
    for slot in _iter(ins):
        name = _get(slot, "internal_name") or _get(slot, "name")
        if not name or _get(slot, "enabled", True) is False:
            continue
        plugin = _get(slot, "plugin")
        if plugin is not None and type(plugin).__name__ == "VSTPlugin":
            name = _get(plugin, "name") or name
        effects.append(str(name))
        if reverb is None and _REVERB.search(str(name)):
            mix = _get(slot, "mix")
            reverb = min(1.0, max(0.0, mix / 12800)) if isinstance(mix, (int, float)) else 1.0
    eq: list[dict] = []
    bands = _get(ins, "eq")
    if bands is not None:
        for band_name, kind in _EQ.items():
            band = _get(bands, band_name)
            gain = _get(band, "gain") if band is not None else None
            if gain:
                freq = _get(band, "freq")
                eq.append({"type": kind,
                           "freq_hz": _eq_freq_hz(freq) if freq is not None else None,
                           "gain_db": gain / 100.0, "q": None})
    return {"volume": _get(ins, "volume"), "pan": _get(ins, "pan"), "effects": effects,
            "reverb": reverb, "eq": eq, "enabled": _get(ins, "enabled", True)}


def _iter(obj: Any, warnings: list[str] | None = None, what: str = ""):
    """Iterate a pyflp collection, stopping (with a warning when asked) where pyflp fails."""
    try:
        yield from obj
    except Exception as exc:  # noqa: BLE001
        if warnings is not None:
            warnings.append(f"{what} partly unreadable ({type(exc).__name__}); the rest skipped")
        return


def _mixer(channel: Any, inserts: list[dict[str, Any]]) -> Mixer:
    vol = _get(channel, "volume")
    pan = _get(channel, "pan")
    insert = _get(channel, "insert")
    info = inserts[insert] if isinstance(insert, int) and 0 < insert < len(inserts) else None
    gain = _gain_db(vol, 10000.0) if isinstance(vol, (int, float)) else None
    pan_n = (pan - 6400) / 6400 if isinstance(pan, (int, float)) else 0.0
    if info is not None:
        ins_gain = _gain_db(info["volume"], 12800.0) if isinstance(info["volume"], (int, float)) \
            else None
        if ins_gain is not None:
            gain = ins_gain if gain is None else max(-96.0, gain + ins_gain)
        if isinstance(info["pan"], (int, float)):
            pan_n = pan_n + info["pan"] / 6400   # the insert pans what the channel panned
    return Mixer(volume=min(max(vol / 12800, 0.0), 1.0) if isinstance(vol, (int, float)) else None,
                 gain_db=gain, pan=min(1.0, max(-1.0, pan_n)),
                 eq=(info["eq"] or None) if info else None,
                 reverb_send=info["reverb"] if info else None,
                 insert=insert if isinstance(insert, int) and insert > 0 else None,
                 effects=list(info["effects"]) if info else [],
                 muted=_get(channel, "enabled", True) is False
                 or (info is not None and info["enabled"] is False))


def _version(project: Any) -> tuple[int, ...]:
    v = _get(project, "version")
    try:
        return (int(v.major), int(v.minor))
    except Exception:  # noqa: BLE001
        return (0, 0)


def _note(n: Any, ppq: int, offset_ticks: float) -> Note | None:
    try:
        key = int(n["key"])
        pos = float(n["position"])
        length = float(n["length"])
        vel = float(n["velocity"])
        pan = float(n["pan"])
    except Exception:  # noqa: BLE001
        return None
    return Note(start_beat=(pos - offset_ticks) / ppq,
                length=(length if length > 0 else ppq / 4) / ppq,
                key=min(max(key, 0), 131), velocity=min(vel / 128.0, 1.0),
                pan=min(1.0, max(-1.0, (pan - 64) / 64)))


def _pattern_notes(pattern: Any) -> dict[int, list[Any]]:
    by_channel: dict[int, list[Any]] = {}
    for n in _iter(_get(pattern, "notes", [])):
        try:
            by_channel.setdefault(int(n["rack_channel"]), []).append(n)
        except Exception:  # noqa: BLE001
            continue
    return by_channel


def load_flp(path: str, data: bytes) -> Project:
    """An FL Studio project from its bytes (already read, bounded by the caller)."""
    check_flp(path, data)
    from loopmind.generate.projects._pyflp_compat import import_pyflp

    pyflp = import_pyflp()
    with warnings_mod.catch_warnings(record=True) as caught:
        warnings_mod.simplefilter("always")
        # pyflp reads the file itself: hand it a descriptor whose size matches the bytes
        # checked above, so a file swapped in between cannot make it read more
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise ProjectError(f"{path}: cannot open ({exc.strerror or exc})") from None
        try:
            if os.fstat(fd).st_size != len(data):
                os.close(fd)
                raise ProjectError(f"{path}: the file changed while it was read")
            flp = pyflp.parse(fd)   # pyflp's open() takes the descriptor and closes it
        except ProjectError:
            raise
        except Exception as exc:  # noqa: BLE001 - pyflp's errors, construct's, struct's ...
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ProjectError(f"{path}: cannot parse FL Studio project "
                               f"({type(exc).__name__}{': ' + reason if reason else ''})"[:300]
                               ) from None
        project = _convert(path, flp, raw_playlist(path, data))
    if caught:
        project.warnings.append(f"pyflp reported {len(caught)} unusual events (skipped)")
    return project


def _convert(path: str, flp: Any, raw_items: list[dict[str, Any]]) -> Project:
    warnings: list[str] = []
    ppq = int(_get(flp, "ppq", 96))
    tempo = _get(flp, "tempo")
    bpm = float(tempo) if isinstance(tempo, (int, float)) and 10 <= tempo <= 999 else None
    if bpm is None:
        warnings.append(f"no usable tempo ({tempo!r})")
    arrangements = _get(flp, "arrangements")
    ts = (4, 4)
    sig = _get(arrangements, "time_signature") if arrangements is not None else None
    if sig is not None:
        num, beat = _get(sig, "num"), _get(sig, "beat")
        if isinstance(num, int) and isinstance(beat, int) and 1 <= num <= 64 and \
                beat in (1, 2, 4, 8, 16, 32):
            ts = (num, beat)
    tpb = ppq * 4.0 * ts[0] / ts[1]
    version = _get(flp, "version")
    title = _get(flp, "title") or None
    genre = _get(flp, "genre") or None
    project = Project(source=os.path.abspath(path), kind="flp",
                      name=str(title) if title else os.path.splitext(os.path.basename(path))[0],
                      bpm=bpm, time_signature=ts, genre=str(genre) if genre else None, ppq=ppq,
                      creator=f"FL Studio {version}" if version else "FL Studio")
    inserts = [_insert_info(i) for i in _inserts(flp, warnings)]

    # channels -> tracks
    channels: dict[int, tuple[Any, Track]] = {}
    for ch in _iter(_get(flp, "channels", []), warnings, "channel rack"):
        iid = _get(ch, "iid")
        if not isinstance(iid, int):
            continue
        if len(channels) >= MAX_TRACKS:
            raise ProjectError(f"{path}: more than {MAX_TRACKS} channels")
        cls = type(ch).__name__
        sample = _get(ch, "sample_path")
        sample = str(sample).replace("\\", "/") if sample and str(sample) not in ("", ".") \
            else None
        plugin = _plugin_name(ch)
        kind = {"Automation": "automation", "Sampler": "sample"}.get(cls, "instrument")
        name = _get(ch, "display_name") or _get(ch, "name") or f"Channel {iid + 1}"
        track = Track(name=str(name), kind=kind, sample_path=sample,
                      plugin=plugin or ("Sampler" if cls == "Sampler" else cls),
                      mixer=Mixer() if kind == "automation" else _mixer(ch, inserts),
                      muted=_get(ch, "enabled", True) is False)
        channels[iid] = (ch, track)

    # patterns
    patterns: dict[int, tuple[Any, dict[int, list[Any]], float]] = {}
    for pat in _iter(_get(flp, "patterns", []), warnings, "patterns"):
        iid = _get(pat, "iid")
        if not isinstance(iid, int):
            continue
        notes = _pattern_notes(pat)
        length = _get(pat, "length", 0) or 0
        if not length:   # "auto": up to the last note's end, whole bars, at least one
            end = max((float(n["position"]) + max(float(n["length"]), ppq / 4)
                       for ns in notes.values() for n in ns), default=0.0)
            length = max(1, math.ceil(end / tpb - 1e-9)) * tpb
        patterns[iid] = (pat, notes, float(length))
        project.patterns.append({"id": iid, "name": _get(pat, "name") or f"Pattern {iid}",
                                 "bars": round(length / tpb, 4),
                                 "channels": sorted(channels[c][1].name for c in notes
                                                    if c in channels),
                                 "notes": sum(len(v) for v in notes.values())})

    budget = [MAX_NOTES]
    arrangement, markers = _pick_arrangement(flp, arrangements, warnings)
    placed = False
    if arrangement is not None:
        for pl_track in _iter(_get(arrangement, "tracks", []), warnings, "playlist"):
            track_muted = _get(pl_track, "enabled", True) is False
            for item in _iter(pl_track, warnings, "playlist track"):
                placed = True
                _place(item, track_muted, channels, patterns, ppq, tpb, budget)
    elif raw_items:
        warnings.append("playlist read without arrangements (an FL version before 12.9)")
        for item in raw_items:
            placed = True
            _place(item, False, channels, patterns, ppq, tpb, budget)
    if not placed:
        if patterns and any(n for _, n, _ in patterns.values()):
            warnings.append("no playlist items (this FL version or an empty playlist); "
                            "patterns laid out one after another")
            at = 0.0
            for iid in sorted(patterns):
                pat, notes, length = patterns[iid]
                if not notes:
                    continue
                _place_pattern(iid, pat, notes, at, length, 0.0, False, channels, ppq, tpb,
                               budget)
                at += length
    if budget[0] <= 0:
        warnings.append(f"more than {MAX_NOTES} notes; the rest were dropped")

    for ch, track in channels.values():
        if track.kind != "automation":
            notes = track_notes(track, ts[0] * 4.0 / ts[1])
            track.role, track.role_source = guess_role(track.name, sample_path=track.sample_path,
                                                       plugin=track.plugin, notes=notes)
        project.tracks.append(track)
    project.warnings += warnings
    if markers:
        from loopmind.generate.projects.sections import sections_from_markers

        project.sections = sections_from_markers(project, [(p / tpb, n) for p, n in markers])
    return project


def _pick_arrangement(flp: Any, arrangements: Any, warnings: list[str]):
    """The arrangement to read (the current one, else the first with items) and its named
    plain time markers as (ticks, name)."""
    if arrangements is None:
        warnings.append("no arrangements in this project")
        return None, []
    try:
        arrs = list(arrangements)
    except Exception as exc:  # noqa: BLE001 - NoModelsFound before FL 12.9, or damage
        ver = _version(flp)
        why = f"FL {ver[0]}.{ver[1]} keeps no arrangements pyflp can read" \
            if ver < FLP_VERSION_PLAYLIST else f"arrangements unreadable ({type(exc).__name__})"
        warnings.append(why)
        return None, []
    current = _get(arrangements, "current")
    chosen = None
    candidates = ([current] if current is not None else []) + arrs
    for arr in candidates:
        if any(True for t in _iter(_get(arr, "tracks", [])) for _ in _iter(t)):
            chosen = arr
            break
    if chosen is None:
        chosen = current or (arrs[0] if arrs else None)
    markers: list[tuple[int, str]] = []
    if chosen is not None:
        for tm in _iter(_get(chosen, "timemarkers", [])):
            pos, name = _get(tm, "position"), _get(tm, "name")
            kind = _get(tm, "type")
            if not isinstance(pos, int) or not name or (kind is not None and int(kind) != 0):
                continue
            if pos >> 24:   # the high byte is a marker action (loop, pause, punch...)
                continue
            markers.append((pos, str(name)))
    return chosen, markers


def _place(item: Any, track_muted: bool, channels, patterns, ppq: int, tpb: float,
           budget: list[int]) -> None:
    try:
        position = int(item["position"])
        length = int(item["length"])
        raw_index = int(item["item_index"])
        base = int(item["pattern_base"])
        start_off = float(item["start_offset"])
    except Exception:  # noqa: BLE001
        return
    if length <= 0 or position / tpb > MAX_TICKS_BARS:
        return
    length = min(length, int(MAX_TICKS_BARS * tpb) - position)   # a 4096-bar timeline at most
    offset = start_off if math.isfinite(start_off) and start_off > 0 else 0.0
    if raw_index > base:   # pyflp's rule: indices above the base are patterns
        iid = raw_index - base
        if iid in patterns:
            pat, notes, loop = patterns[iid]
            _place_pattern(iid, pat, notes, position, length, offset, track_muted, channels,
                           ppq, tpb, budget, loop_ticks=loop)
        return
    entry = channels.get(raw_index)
    if entry is None:
        return
    _, track = entry
    if track.kind == "sample":
        track.kind = "audio"   # a sampler placed as a clip is an audio clip
    track.clips.append(Clip(start_bar=position / tpb, bars=length / tpb,
                            sample=track.sample_path if track.kind != "automation" else None,
                            muted=track_muted, offset_bars=offset / tpb if offset else 0.0))


def _place_pattern(iid: int, pat: Any, notes: dict[int, list[Any]], position: float,
                   length: float, offset: float, muted: bool, channels, ppq: int, tpb: float,
                   budget: list[int], *, loop_ticks: float | None = None) -> None:
    """One clip per channel that has notes in the pattern; a clip longer than its pattern
    repeats it (as FL draws and plays a lengthened pattern clip)."""
    name = _get(pat, "name") or f"Pattern {iid}"
    loop = loop_ticks if loop_ticks and loop_ticks > 0 else length
    reps = max(1, math.ceil((offset + length) / loop - 1e-9))
    for rack, raw in notes.items():
        entry = channels.get(rack)
        if entry is None:
            continue
        _, track = entry
        kept: list[Note] = []
        for r in range(reps):
            if budget[0] <= 0:
                break
            for n in raw:
                note = _note(n, ppq, offset - r * loop)
                if note is None or note.start_beat < 0 or note.start_beat * ppq >= length:
                    continue   # outside the clip's window into the pattern
                if budget[0] <= 0:
                    break
                budget[0] -= 1
                kept.append(note)
        if not kept:
            continue
        kept.sort(key=lambda x: (x.start_beat, x.key))
        track.clips.append(Clip(start_bar=position / tpb, bars=length / tpb,
                                pattern=str(name), notes=kept, muted=muted,
                                offset_bars=offset / tpb if offset else 0.0))

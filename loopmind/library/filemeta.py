"""Loop metadata that sample packs write into their files.

Commercial loop packs are "ACIDized": their WAVs carry an ``acid`` chunk with the loop's tempo,
its length in beats, its meter and whether it is a one-shot. When those numbers agree with
the file's length they are the loop's tempo, better than any estimate; when they do not
(a chunk a tool filled with its project tempo), the tempo is only evidence, as a tempo in the
file name is. Only the chunk headers are read (the audio data is skipped with a seek), and the
file is opened read-only.

Layout of the ``acid`` chunk (24 bytes, little-endian, as Sony ACID writes it): flags (u32:
0x01 one-shot, 0x02 root note set, 0x04 stretch, 0x08 disk-based), root note (u16), two
reserved fields (u16, f32), number of beats (u32), meter denominator (u16), meter numerator
(u16), tempo (f32, BPM).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

ACID_ONE_SHOT = 0x01
# a chunk's tempo and beats describe the file when beats x 60 / tempo is its length to 2 %
# (a loop rendered with a short release tail stays within that; a chunk filled with another
# project's tempo does not)
LENGTH_TOLERANCE = 0.02
_MAX_CHUNKS = 64  # a header with more chunks before the end is not worth walking


@dataclass(frozen=True)
class LoopMeta:
    """What a file's own loop metadata says.

    Attributes:
        one_shot: the file says it is a one-shot.
        bpm: its tempo, or None.
        beats: its length in beats, or None.
        meter: (numerator, denominator), or None.
    """

    one_shot: bool
    bpm: float | None
    beats: int | None
    meter: tuple[int, int] | None

    def agrees_with(self, duration_s: float) -> bool:
        """Whether tempo and beats give this length (within ``LENGTH_TOLERANCE``)."""
        if not self.bpm or not self.beats or duration_s <= 0:
            return False
        return abs(self.beats * 60.0 / self.bpm / duration_s - 1.0) <= LENGTH_TOLERANCE


def _acid(body: bytes) -> LoopMeta | None:
    if len(body) < 24:
        return None
    flags, _root, _r1, _r2, beats, denom, numer, bpm = struct.unpack("<IHHfIHHf", body[:24])
    one_shot = bool(flags & ACID_ONE_SHOT)
    bpm_ok = bpm == bpm and 20.0 <= bpm <= 400.0  # not NaN, and a tempo
    meter = (int(numer), int(denom)) if 1 <= numer <= 32 and denom in (1, 2, 4, 8, 16, 32) \
        else None
    return LoopMeta(one_shot=one_shot, bpm=round(float(bpm), 3) if bpm_ok else None,
                    beats=int(beats) if 0 < beats <= 4096 else None, meter=meter)


def read_loop_meta(path: os.PathLike | str | bytes) -> LoopMeta | None:
    """The ``acid`` chunk of a RIFF WAVE file, or None (another format, no chunk, or a
    header that cannot be read: metadata is optional, so this never raises)."""
    try:
        with open(os.fsencode(path) if isinstance(path, str) else path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            size = os.fstat(f.fileno()).st_size
            pos = 12
            for _ in range(_MAX_CHUNKS):
                if pos + 8 > size:
                    return None
                f.seek(pos)
                hdr = f.read(8)
                if len(hdr) < 8:
                    return None
                cid, n = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"acid":
                    return _acid(f.read(min(n, 64)))
                pos += 8 + n + (n & 1)  # chunks are padded to an even size
    except (OSError, struct.error):
        return None
    return None

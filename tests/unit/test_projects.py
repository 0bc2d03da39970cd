"""Project import: FL Studio, LMMS, arrangement JSON and LoopMind arrangements into one format,
and hostile files that must fail cleanly. Every fixture is built here, byte by byte."""

import json
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib

import pytest

from loopmind.generate.projects import (FORMAT, Clip, Note, Project, ProjectError, Track,
                                        load_project, read_bounded)
from loopmind.generate.projects import lmms as lmms_mod
from loopmind.generate.projects.sections import (activity, canonical_section,
                                                 derive_sections)

# -- FLP fixtures -------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def ev(eid: int, value) -> bytes:
    """One FLP event: 1/2/4-byte values below ID 192, a varint length and bytes above."""
    if eid < 64:
        return bytes([eid]) + struct.pack("<B", value)
    if eid < 128:
        return bytes([eid]) + struct.pack("<H", value)
    if eid < 192:
        return bytes([eid]) + struct.pack("<I", value & 0xFFFFFFFF)
    return bytes([eid]) + varint(len(value)) + value


def utf16(s: str) -> bytes:
    return (s + "\0").encode("utf-16-le")


def note(pos, ch, length, key, vel=100, pan=64) -> bytes:
    return struct.pack("<IHHIHHBBBBBBBB", pos, 0, ch, length, key, 0, 120, 0, 64, 0, pan, vel,
                       128, 128)


def mixparam(insert, pid, msg, slot=0) -> bytes:
    return b"\0\0\0\0" + bytes([pid, 0]) + struct.pack("<Hi", (insert << 6) | slot, msg)


def plitem(pos, index, length, track=0) -> bytes:
    return (struct.pack("<IHHIHH", pos, 20480, index, length, 499 - track, 0) + bytes([120, 0])
            + struct.pack("<H", 64) + bytes([64, 100, 128, 128]) + struct.pack("<ff", -1, -1))


PPQ = 96
BAR = PPQ * 4


def flp_events(*, tempo=128.0, playlist=True) -> list[bytes]:
    """A small FL 20.8 project: a sampled kick and a synth bass playing pattern "Beat", routed
    to mixer inserts 1 and 2 (EQ on one, a reverb on the other), the pattern placed twice on
    the playlist for 4 bars each, with time markers "Intro" and "Chorus"."""
    notes = b"".join([note(0, 0, 0, 60), note(96, 0, 0, 60), note(192, 0, 0, 60, vel=64),
                      note(288, 0, 0, 60), note(0, 1, 48, 36), note(192, 1, 96, 43),
                      note(288, 1, 48, 38)])
    events = [
        ev(199, b"20.8.4.2576\0"),                 # FL version
        ev(156, int(tempo * 1000)),                # tempo
        ev(194, utf16("Fixture Song")),            # title
        ev(206, utf16("House")),                   # genre
        ev(65, 1), ev(193, utf16("Beat")), ev(224, notes),
        ev(231, utf16("Unsorted")),                # display group
        ev(64, 0), ev(21, 0), ev(145, 0), ev(203, utf16("Kick")),
        ev(196, utf16("C:\\Samples\\Drums\\Kicks\\Kick 01.wav")),
        ev(219, struct.pack("<iI", 3200, 8000)),   # channel pan (left of centre), volume
        ev(22, 1),                                 # routed to insert 1
        ev(64, 1), ev(21, 2), ev(145, 0), ev(201, utf16("3x Osc")), ev(203, utf16("Sub Bass")),
        ev(219, struct.pack("<iI", 6400, 10000)), ev(22, 2),
        ev(225, mixparam(1, 192, 12800) + mixparam(1, 193, -3200) + mixparam(1, 208, 300)
           + mixparam(2, 192, 6400)),
        ev(204, utf16("Master")), ev(147, 0),
        ev(204, utf16("Drums")), ev(147, 0),
        ev(204, utf16("Bass")), ev(98, 0), ev(201, utf16("Fruity Reeverb 2")), ev(147, 0),
    ]
    if playlist:
        events += [
            ev(99, 0), ev(241, utf16("Arrangement")),
            ev(148, 0), ev(205, utf16("Intro")),
            ev(148, BAR * 4), ev(205, utf16("Chorus")),
            ev(233, plitem(0, 20481, BAR * 4) + plitem(BAR * 4, 20481, BAR * 4)),
            ev(238, struct.pack("<I", 1)), ev(239, utf16("Drums track")),
            ev(100, 0),
        ]
    return events


def flp_bytes(events=None, *, ppq=PPQ, fmt=0, data_size=None, magic=b"FLhd",
              header_size=6) -> bytes:
    body = b"".join(flp_events() if events is None else events)
    size = len(body) if data_size is None else data_size
    return (magic + struct.pack("<IhHH", header_size, fmt, 2, ppq) + b"FLdt"
            + struct.pack("<I", size) + body)


@pytest.fixture
def flp_file(tmp_path):
    p = tmp_path / "song.flp"
    p.write_bytes(flp_bytes())
    return p


def test_pyflp_shim_makes_event_lookup_work():
    from loopmind.generate.projects._pyflp_compat import import_pyflp

    pyflp = import_pyflp()
    from pyflp._events import EventEnum

    assert int(EventEnum(156)) == 156      # raised "has no members defined" on 3.11
    assert pyflp.parse is not None


def test_flp_tempo_channels_notes_mixer_playlist(flp_file):
    p = load_project(flp_file)
    d = p.to_dict()
    assert d["format"] == FORMAT == "loopmind.project/1"
    assert d["kind"] == "flp" and d["ppq"] == PPQ
    assert d["bpm"] == pytest.approx(128.0)
    assert d["name"] == "Fixture Song" and d["genre"] == "House"
    assert d["time_signature"] == [4, 4]
    kick, bass = (next(t for t in p.tracks if t.name == n) for n in ("Kick", "Sub Bass"))
    assert kick.role == "kick" and kick.kind == "sample"
    assert kick.sample_path.endswith("Drums/Kicks/Kick 01.wav")
    assert bass.role == "bass" and bass.plugin == "3x Osc" and bass.kind == "instrument"
    # mixer: channel 8000/10000 through an insert at 0 dB, panned left on both
    assert kick.mixer.insert == 1 and kick.mixer.volume == pytest.approx(8000 / 12800)
    assert -8 < kick.mixer.gain_db < -3
    assert kick.mixer.pan == pytest.approx(-1.0)
    assert kick.mixer.eq and kick.mixer.eq[0]["type"] == "lowshelf"
    assert kick.mixer.eq[0]["gain_db"] == pytest.approx(3.0)
    assert bass.mixer.insert == 2 and bass.mixer.gain_db < -10      # insert at half volume
    assert "Fruity Reeverb 2" in bass.mixer.effects and bass.mixer.reverb_send is not None
    # the 1-bar pattern placed twice for 4 bars: it repeats inside each clip
    assert [(c.start_bar, c.bars) for c in kick.clips] == [(0, 4), (4, 4)]
    assert all(c.pattern == "Beat" for c in kick.clips)
    assert len(kick.clips[0].notes) == 16
    assert [n.start_beat for n in kick.clips[0].notes[:5]] == [0, 1, 2, 3, 4]
    assert kick.clips[0].notes[2].velocity == pytest.approx(64 / 128)
    assert [n.key for n in bass.clips[0].notes[:3]] == [36, 43, 38]
    assert bass.clips[0].notes[1].length == pytest.approx(1.0)
    # sections from the time markers, roles from what plays
    assert [(s.name, s.start_bar, s.bars) for s in p.sections] == [("intro", 0, 4),
                                                                   ("hook", 4, 4)]
    assert all(not s.inferred and s.roles == ["bass", "kick"] for s in p.sections)
    assert p.sections[1].label == "Chorus"
    assert p.patterns[0]["name"] == "Beat" and p.patterns[0]["notes"] == 7
    json.dumps(d)   # plain JSON all the way down


def test_flp_without_playlist_lays_patterns_out_with_warning(tmp_path):
    p = tmp_path / "noplaylist.flp"
    p.write_bytes(flp_bytes(flp_events(playlist=False)))
    proj = load_project(p)
    assert any("playlist" in w for w in proj.warnings)
    kick = next(t for t in proj.tracks if t.name == "Kick")
    assert [(c.start_bar, c.bars) for c in kick.clips] == [(0, 1)]
    assert proj.sections and all(s.inferred for s in proj.sections)


@pytest.mark.parametrize("make, reason", [
    (lambda: flp_bytes()[:15], "truncated"),
    (lambda: flp_bytes()[:-7], "truncated"),
    (lambda: flp_bytes(magic=b"RIFF"), "FLhd"),
    (lambda: flp_bytes(header_size=8), "header size"),
    (lambda: flp_bytes(ppq=0), "PPQ"),
    (lambda: flp_bytes(fmt=256), "format"),
    (lambda: flp_bytes(fmt=0x10), "score"),
    (lambda: flp_bytes(data_size=0xFFFFFFF0), "declares"),
    (lambda: flp_bytes()[:14] + b"XXdt" + flp_bytes()[18:], "FLdt"),
    (lambda: flp_bytes([ev(199, b"20.8.4\0"), bytes([224]) + varint(2**27) + b"x" * 10]),
     "declares"),
    (lambda: flp_bytes([ev(199, b"20.8.4\0"), bytes([224, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])]),
     "length"),
    (lambda: flp_bytes([]), "without events"),
])
def test_corrupt_flp_is_rejected_with_its_name(tmp_path, make, reason):
    p = tmp_path / "bad.flp"
    p.write_bytes(make())
    with pytest.raises(ProjectError) as err:
        load_project(p)
    assert str(p) in str(err.value) and reason in str(err.value)
    assert "\n" not in str(err.value)


def test_huge_declared_sizes_do_not_allocate(tmp_path):
    p = tmp_path / "huge.flp"
    p.write_bytes(flp_bytes([ev(199, b"20.8.4\0"), bytes([236]) + varint(2**28 - 1) + b"x"],
                            data_size=2**31))
    tracemalloc.start()
    try:
        with pytest.raises(ProjectError):
            load_project(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_truncations_of_a_good_flp_all_fail_cleanly(tmp_path):
    data = flp_bytes()
    p = tmp_path / "cut.flp"
    for n in range(0, len(data), max(1, len(data) // 40)):
        p.write_bytes(data[:n])
        with pytest.raises(ProjectError) as err:
            load_project(p)
        assert str(p) in str(err.value)


def test_damaged_flp_events_fail_cleanly_or_parse(tmp_path):
    """Flipped bytes inside a well-framed file: pyflp may choke, but never with a traceback."""
    data = bytearray(flp_bytes())
    p = tmp_path / "flipped.flp"
    for i in range(22, len(data), 7):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        p.write_bytes(bytes(bad))
        try:
            load_project(p)
        except ProjectError as exc:
            assert str(p) in str(exc)


# -- LMMS fixtures ------------------------------------------------------------------------------

MMP = """<?xml version="1.0"?>
<!DOCTYPE lmms-project>
<lmms-project version="1.0" creator="LMMS" creatorversion="1.2.0" type="song">
  <head timesig_numerator="4" timesig_denominator="4" bpm="125" mastervol="100"/>
  <song>
    <trackcontainer type="song">
      <track type="0" name="Reese" muted="0">
        <instrumenttrack vol="50" pan="-50" fxch="1" basenote="57">
          <instrument name="tripleoscillator"><tripleoscillator/></instrument>
          <fxchain enabled="0" numofeffects="0"/>
        </instrumenttrack>
        <pattern pos="768" len="768" type="1" name="bassline" muted="0" steps="16">
          <note pos="0" len="96" key="33" vol="100" pan="0"/>
          <note pos="192" len="96" key="36" vol="50" pan="0"/>
          <note pos="900" len="96" key="36" vol="50" pan="0"/>
        </pattern>
        <pattern pos="1536" len="768" type="1" name="bassline" muted="1" steps="16">
          <note pos="0" len="96" key="33" vol="100" pan="0"/>
        </pattern>
      </track>
      <track type="1" name="Beat">
        <bbtrack>
          <trackcontainer type="bbtrackcontainer">
            <track type="0" name="Snare 1" muted="0">
              <instrumenttrack vol="100" pan="0" fxch="0" basenote="57">
                <instrument name="audiofileprocessor">
                  <audiofileprocessor src="drums/snare01.ogg"/>
                </instrument>
              </instrumenttrack>
              <pattern pos="0" len="192" type="0" name="Snare 1" steps="16">
                <note pos="48" len="-192" key="57" vol="100" pan="0"/>
                <note pos="144" len="-192" key="57" vol="100" pan="0"/>
              </pattern>
            </track>
            <track type="0" name="Kick" muted="0">
              <instrumenttrack vol="100" pan="0" fxch="0" basenote="57">
                <instrument name="kicker"><kicker/></instrument>
              </instrumenttrack>
              <pattern pos="0" len="192" type="0" name="Kick" steps="16">
                <note pos="0" len="-192" key="57" vol="100" pan="0"/>
                <note pos="96" len="-192" key="57" vol="100" pan="0"/>
              </pattern>
            </track>
          </trackcontainer>
        </bbtrack>
        <bbtco pos="0" len="384" name="" muted="0"/>
        <bbtco pos="768" len="1536" name="" muted="0"/>
      </track>
      <track type="2" name="Vocal take" muted="0">
        <sampletrack vol="100" pan="0"/>
        <sampletco pos="1536" len="768" src="vox/hook_take3.wav" muted="0"/>
      </track>
      <track type="5" name="Automation track">
        <automationtrack/>
        <automationpattern pos="0" len="768" name="cutoff" mute="0"/>
      </track>
    </trackcontainer>
    <fxmixer>
      <fxchannel num="0" name="Master" volume="1" muted="0"/>
      <fxchannel num="1" name="Bass" volume="0.5" muted="0">
        <fxchain enabled="1" numofeffects="1">
          <effect name="eq" on="1" wet="1">
            <Eq HPactive="1" LPactive="0" Lowshelfactive="0" Peak1active="1" Peak2active="0"
                Peak3active="0" Peak4active="0" Highshelfactive="0" Peak1bw="0.5" HPres="0.7"
                Peak1gain="-3">
              <HPfreq value="40"/>
              <Peak1freq value="250"/>
            </Eq>
          </effect>
        </fxchain>
        <send channel="0" amount="1"/>
        <send channel="2" amount="0.25"/>
      </fxchannel>
      <fxchannel num="2" name="Verb" volume="1" muted="0">
        <fxchain enabled="1" numofeffects="1">
          <effect name="ladspaeffect" on="1" wet="1">
            <ladspacontrols ports="4"/>
            <key>
              <attribute name="file" value="calf"/><attribute name="plugin" value="Reverb"/>
            </key>
          </effect>
        </fxchain>
      </fxchannel>
    </fxmixer>
  </song>
</lmms-project>
"""


def qcompress(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + zlib.compress(data)


@pytest.fixture
def mmp_file(tmp_path):
    p = tmp_path / "demo.mmp"
    p.write_text(MMP)
    return p


def test_lmms_tracks_bb_expansion_mixer(mmp_file):
    p = load_project(mmp_file)
    assert p.kind == "mmp" and p.bpm == 125 and p.time_signature == (4, 4) and p.ppq == 48
    names = [t.name for t in p.tracks]
    assert names == ["Reese", "Vocal take", "Automation track", "Snare 1", "Kick"]
    reese, vocal, auto, snare, kick = p.tracks
    assert reese.role == "bass" and reese.kind == "instrument"
    assert reese.plugin == "tripleoscillator"
    assert snare.role == "snare" and snare.kind == "sample"
    assert snare.sample_path == "drums/snare01.ogg"
    assert kick.role == "kick" and kick.role_source == "name"
    assert vocal.role == "vocal" and vocal.kind == "audio" and auto.kind == "automation"
    # pattern clips: ticks -> bars (192 a bar), keys LMMS -> MIDI, notes past the end dropped
    c = reese.clips[0]
    assert (c.start_bar, c.bars) == (4, 4) and c.pattern == "bassline"
    assert [(n.start_beat, n.length, n.key) for n in c.notes] == [(0, 2, 45), (4, 2, 48)]
    assert c.notes[1].velocity == pytest.approx(0.5)
    assert reese.clips[1].muted
    # a BB placement plays its 1-bar pattern looped over the placement
    assert [(c.start_bar, c.bars) for c in kick.clips] == [(0, 2), (4, 8)]
    assert [n.start_beat for n in kick.clips[0].notes] == [0, 2, 4, 6]
    assert len(kick.clips[1].notes) == 16
    assert kick.clips[0].notes[0].length == pytest.approx(0.25)     # a step note
    assert vocal.clips[0].sample == "vox/hook_take3.wav"
    assert (vocal.clips[0].start_bar, vocal.clips[0].bars) == (8, 4)
    # mixer: track 50% through FX channel at 0.5 -> -12 dB, pan -0.5, EQ and reverb send
    m = reese.mixer
    assert m.gain_db == pytest.approx(-12.04, abs=0.05) and m.pan == pytest.approx(-0.5)
    assert m.volume == pytest.approx(0.25) and m.insert == 1
    assert [b["type"] for b in m.eq] == ["highpass", "peak"]
    assert m.eq[0]["freq_hz"] == 40 and m.eq[1]["gain_db"] == -3 and m.eq[1]["q"] == 2
    assert m.reverb_send == pytest.approx(0.25)
    assert "eq" in m.effects
    assert snare.mixer.insert is None and snare.mixer.gain_db == pytest.approx(0)
    # derived sections on 4-bar boundaries with the roles that play
    assert p.sections and all(s.inferred for s in p.sections)
    assert all(s.start_bar % 4 == 0 for s in p.sections)
    assert p.sections[0].start_bar == 0
    assert sum(s.bars for s in p.sections) == pytest.approx(p.bars)
    assert set(p.sections[1].roles) >= {"bass", "kick", "snare"}


def test_mmpz_is_the_same_project(tmp_path, mmp_file):
    z = tmp_path / "demo.mmpz"
    z.write_bytes(qcompress(MMP.encode()))
    a, b = load_project(mmp_file).to_dict(), load_project(z).to_dict()
    assert b["kind"] == "mmpz"
    for d in (a, b):
        d.pop("kind")
        d.pop("source")
    assert a == b


def test_mmpz_bomb_and_damage(tmp_path):
    p = tmp_path / "bomb.mmpz"
    comp = zlib.compressobj(9)
    stream = b"".join(comp.compress(b"\0" * 2**20) for _ in range(80)) + comp.flush()
    assert len(stream) < 200_000
    p.write_bytes(struct.pack(">I", 1000) + stream)        # lies about its size
    tracemalloc.start()
    try:
        with pytest.raises(ProjectError, match="expands past"):
            load_project(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < lmms_mod.MAX_XML_BYTES + 16 * 2**20
    p.write_bytes(struct.pack(">I", 2**31) + stream)       # admits a huge size
    with pytest.raises(ProjectError, match="declares"):
        load_project(p)
    good = qcompress(MMP.encode())
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(ProjectError, match="truncated"):
        load_project(p)
    p.write_bytes(good[:4] + b"\x78\x9c" + b"garbage!" * 10)
    with pytest.raises(ProjectError, match="corrupt"):
        load_project(p)
    p.write_bytes(b"\0\0")
    with pytest.raises(ProjectError, match="truncated"):
        load_project(p)


def test_decompress_mmpz_caps_output():
    data = struct.pack(">I", 10) + zlib.compress(b"x" * 5000)
    with pytest.raises(ProjectError, match="expands past"):
        lmms_mod.decompress_mmpz("f.mmpz", data, limit=1000)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lmms-project [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lmms-project><head bpm="&lol3;"/><song/></lmms-project>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE lmms-project SYSTEM "file:///etc/passwd">
<lmms-project><head bpm="120"/><song/></lmms-project>
"""


@pytest.mark.parametrize("text, reason", [
    (BILLION_LAUGHS, "not accepted"),
    (EXTERNAL, "not accepted"),
    ("<lmms-project><head bpm='120'/><song>", "not valid XML"),
    ("<html><body/></html>", "not an LMMS project"),
    ("<lmms-project><song/></lmms-project>", "without <head>"),
    ("<lmms-project><head bpm='1e9'/><song/></lmms-project>", "tempo"),
    ("<lmms-project><head bpm='120' timesig_numerator='0'/><song/></lmms-project>",
     "time signature"),
    ("<lmms-project>" + "<a>" * 400 + "</a>" * 400 + "</lmms-project>", "nested"),
])
def test_hostile_xml_is_rejected(tmp_path, text, reason):
    p = tmp_path / "evil.mmp"
    p.write_text(text)
    with pytest.raises(ProjectError) as err:
        load_project(p)
    assert str(p) in str(err.value) and reason in str(err.value)


def test_non_utf8_and_binary_junk(tmp_path):
    p = tmp_path / "latin.mmp"
    p.write_bytes(b'<?xml version="1.0" encoding="utf-8"?><lmms-project name="\xff\xfe">'
                  b"</lmms-project>")
    with pytest.raises(ProjectError, match="not valid XML"):
        load_project(p)
    j = tmp_path / "latin.json"
    j.write_bytes(b'{"bpm": 120, "structure": [{"bar": 1, "section": "\xe9t\xe9"}]}')
    with pytest.raises(ProjectError, match="not UTF-8"):
        load_project(j)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(64) + b"\x00")
    with pytest.raises(ProjectError, match=str(junk)):
        load_project(junk)


def test_missing_folder_empty_and_oversized_files(tmp_path):
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "nope.flp")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)
    empty = tmp_path / "empty.mmp"
    empty.write_bytes(b"")
    with pytest.raises(ProjectError, match="empty"):
        load_project(empty)
    big = tmp_path / "big.flp"
    with open(big, "wb") as fh:
        fh.truncate(65 * 2**20)            # sparse: costs no disk, must not be read
    tracemalloc.start()
    try:
        with pytest.raises(ProjectError, match="too large"):
            load_project(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    small = tmp_path / "small.mmp"
    small.write_bytes(b"x" * 2000)
    with pytest.raises(ProjectError, match="too large"):
        read_bounded(str(small), limit=1000)


# -- JSON ---------------------------------------------------------------------------------------

ARRANGEMENT = {
    "bpm": 90, "genre": "lofi", "mood": "chill",
    "structure": [
        {"bar": 1, "section": "Intro", "loops": ["keys/rhodes_loop_90.wav"]},
        {"bar": 9, "section": "Verse 1",
         "loops": ["keys/rhodes_loop_90.wav", "drums/boombap_beat_90.wav",
                   {"name": "sub", "file": "bass/sub_90.wav", "role": "bass"}]},
        {"bar": 25, "section": "Chorus", "bars": 8,
         "loops": ["keys/rhodes_loop_90.wav", "drums/boombap_beat_90.wav", "vox/hook_vox.wav"]},
    ],
}


def test_arrangement_json(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(ARRANGEMENT))
    proj = load_project(p)
    assert proj.kind == "json" and proj.bpm == 90 and proj.genre == "lofi"
    assert proj.mood == "chill"
    assert [(s.name, s.start_bar, s.bars, s.inferred) for s in proj.sections] == [
        ("intro", 0, 8, False), ("verse", 8, 16, False), ("hook", 24, 8, False)]
    assert proj.sections[1].roles == ["bass", "drumloop", "keys"]
    assert proj.sections[2].label == "Chorus"
    roles = {t.name: (t.role, t.role_source) for t in proj.tracks}
    assert roles["sub"] == ("bass", "source") and roles["hook_vox"][0] == "vocal"
    keys = next(t for t in proj.tracks if t.name == "rhodes_loop_90")
    assert [(c.start_bar, c.bars) for c in keys.clips] == [(0, 8), (8, 16), (24, 8)]
    assert keys.clips[0].notes is None and keys.clips[0].sample == "keys/rhodes_loop_90.wav"


@pytest.mark.parametrize("doc, reason", [
    ({"bpm": "fast", "structure": [{"bar": 1, "section": "a"}]}, "bpm"),
    ({"bpm": 1e9, "structure": [{"bar": 1}]}, "bpm"),
    ({"bpm": 100, "structure": [{"bar": 9}, {"bar": 1}]}, "before"),
    ({"bpm": 100, "structure": "intro"}, "list"),
    ({"bpm": 100, "structure": [{"bar": 1, "loops": [3]}]}, "loop"),
    ({"bpm": 100, "structure": []}, "empty"),
    ([1, 2, 3], "expected an object"),
    ({"format": "loopmind.project/1", "bpm": "x", "tracks": []}, "bpm"),
    ({"format": "loopmind.project/1", "bpm": 120, "tracks": [{"clips": [{"bars": 1}]}]},
     "malformed"),
    ({"format": "loopmind.project/1", "bpm": 120,
      "tracks": [{"name": "a", "mixer": {"gain_db": "loud"}}]}, "malformed"),
    ({"hello": "world"}, "without an arrangement"),
])
def test_bad_arrangement_json(tmp_path, doc, reason):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ProjectError) as err:
        load_project(p)
    assert str(p) in str(err.value) and reason in str(err.value)


def test_deeply_nested_json_fails_cleanly(tmp_path):
    p = tmp_path / "deep.json"
    p.write_text('{"structure": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(ProjectError, match="deep.json"):
        load_project(p)


def test_loopmind_arrangement(tmp_path):
    from loopmind.generate.song import Clip as SongClip
    from loopmind.generate.song import MixSettings, Section, Song
    from loopmind.generate.song import Track as SongTrack

    song = Song(bpm=140, key="F minor", genre="trap", moods=["dark"], prompt="dark trap",
                sections=[Section("intro", 0, 4, ["pad"]),
                          Section("hook", 4, 8, ["kick", "pad"], energy=0.9)],
                tracks=[SongTrack("kick", "kick",
                                  [SongClip(4, 8, "/lib/kick.wav", 0, 0.4,
                                            steps=[(0, 1.0), (8, 0.5)])],
                                  MixSettings(gain_db=-3, pan=0.1, eq=[(100, 2, 1)],
                                              highpass_hz=30, reverb_send=0.2)),
                        SongTrack("pad", "pad", [SongClip(0, 12, "/lib/pad.wav", 0, 4,
                                                          source_bars=4)])])
    d = song.to_dict()
    d["files"] = {"master": "master.wav"}
    p = tmp_path / "arrangement.json"
    p.write_text(json.dumps(d))
    proj = load_project(p)
    assert proj.kind == "loopmind" and proj.bpm == 140 and proj.key == "F minor"
    assert proj.genre == "trap" and proj.mood == "dark"
    assert [(s.name, s.start_bar, s.bars, s.roles) for s in proj.sections] == [
        ("intro", 0, 4, ["pad"]), ("hook", 4, 8, ["kick", "pad"])]
    kick = proj.tracks[0]
    assert kick.role == "kick" and kick.kind == "sample"
    assert kick.mixer.gain_db == -3 and kick.mixer.pan == pytest.approx(0.1)
    assert kick.mixer.reverb_send == pytest.approx(0.2)
    assert [b["type"] for b in kick.mixer.eq] == ["highpass", "peak"]
    assert [(n.start_beat, n.key, n.velocity) for n in kick.clips[0].notes] == [
        (0, 36, 1.0), (2, 36, 0.5)]
    assert proj.tracks[1].kind == "audio" and proj.tracks[1].clips[0].notes is None


def test_normalized_document_round_trips(tmp_path, mmp_file):
    d = load_project(mmp_file).to_dict()
    p = tmp_path / "normalized.json"
    p.write_text(json.dumps(d))
    again = load_project(p).to_dict()
    assert again["kind"] == "json"
    for x in (d, again):
        x.pop("kind")
        x.pop("source")
    assert again == d
    assert Project.from_dict(d).to_dict()["tracks"] == d["tracks"]


# -- sections -----------------------------------------------------------------------------------

def _track(name, role, spans):
    return Track(name=name, role=role, kind="audio",
                 clips=[Clip(start_bar=a, bars=b - a) for a, b in spans])


def test_derived_sections_follow_what_plays():
    p = Project(source="x", kind="json", bpm=120, tracks=[
        _track("pad", "pad", [(0, 40)]),
        _track("kick", "kick", [(8, 16), (24, 36)]),
        _track("bass", "bass", [(8, 16), (24, 36)]),
        _track("hat", "hihat", [(24, 36)]),
        _track("lead", "lead", [(24, 32)]),
    ])
    secs = derive_sections(p)
    assert [(s.start_bar, s.bars) for s in secs] == [(0, 8), (8, 8), (16, 8), (24, 8),
                                                     (32, 4), (36, 4)]
    assert all(s.inferred and s.start_bar % 4 == 0 for s in secs)
    names = [s.name for s in secs]
    assert names[0] == "intro" and names[-1] == "outro" and names[3] == "hook"
    assert secs[3].roles == ["bass", "hihat", "kick", "lead", "pad"]
    assert secs[3].energy == 1 and secs[0].energy < 0.5
    assert "break" in names


def test_activity_uses_notes_not_just_clip_spans():
    notes = [Note(start_beat=0, length=1, key=60)]          # plays in the first bar only
    p = Project(source="x", kind="mmp", bpm=120, tracks=[
        Track(name="a", role="lead", clips=[Clip(0, 8, notes=notes)]),
        Track(name="b", role="pad", clips=[Clip(0, 8, notes=[])]),        # empty pattern
        Track(name="c", role="bass", muted=True, clips=[Clip(0, 8)]),
    ])
    assert [list(a) for a in activity(p)] == [[1, 0, 0, 0, 0, 0, 0, 0], [0] * 8, [0] * 8]


def test_canonical_section_names():
    assert canonical_section("Chorus 2") == "hook"
    assert canonical_section("BREAKDOWN") == "break"
    assert canonical_section("build-up") == "pre-chorus"
    assert canonical_section("Outro") == "outro"
    assert canonical_section("xyz") is None


# -- CLI ----------------------------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "loopmind", "import", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_import(tmp_path, mmp_file, flp_file):
    r = run_cli(str(mmp_file), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["format"] == FORMAT and {"bpm", "time_signature", "sections", "tracks"} <= set(d)
    bad = tmp_path / "bad.flp"
    bad.write_bytes(b"FLhd")
    r = run_cli(str(mmp_file), str(bad), str(flp_file), "--json")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert [p["kind"] for p in d["projects"]] == ["mmp", "flp"]
    assert d["errors"][0]["path"] == str(bad) and str(bad) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli(str(flp_file))
    assert r.returncode == 0 and "128 BPM" in r.stdout and "Kick" in r.stdout


def test_flp_before_arrangements_reads_the_raw_playlist(tmp_path):
    """FL before 12.9 has one playlist and no arrangement events; pyflp cannot model it, so
    the items are read from the playlist event itself."""
    events = [e for e in flp_events() if e[0] not in (99, 241, 100, 238, 239)]
    events[0] = ev(199, b"12.3.0.12\0")
    p = tmp_path / "old.flp"
    p.write_bytes(flp_bytes(events))
    proj = load_project(p)
    assert any("before 12.9" in w for w in proj.warnings)
    kick = next(t for t in proj.tracks if t.name == "Kick")
    assert [(c.start_bar, c.bars) for c in kick.clips] == [(0, 4), (4, 4)]

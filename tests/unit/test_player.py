"""The player: the output engine (on the ALSA null device in CI), the transport, auditions.

Live tests use the real sounddevice stream. On a machine whose ALSA default is the ``null``
plugin (CI copies ``.ci/asoundrc`` to ``~/.asoundrc``) the device has no clock, so the engine
paces it in real time; timing assertions allow +-30 %. Anything about *what* is mixed is
tested on an offline engine, sample-exactly, without timing.
"""

from __future__ import annotations

import builtins
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fixtures_audio import SR, click_track, tone, write_audio

from loopmind.errors import LoopMindError
from loopmind.generate.render import StretchCache
from loopmind.generate.song import MixSettings, Section, Song, Track
from loopmind.player.audition import AUDITION_VOICE, Auditioner
from loopmind.player.engine import Engine
from loopmind.player.transport import TRANSPORT_VOICE, Transport, track_gains, track_voice

BLOCK = 512


def _portaudio_missing() -> str | None:
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:  # sounddevice is installed but libportaudio2 is not
        return f"PortAudio is not installed ({exc}); apt-get install libportaudio2"
    except ImportError:
        return "sounddevice is not installed"
    return None


NO_DEVICE_HINT = ("without a sound card, copy .ci/asoundrc to ~/.asoundrc (an ALSA null "
                  "output), as CI does")


@pytest.fixture
def engine():
    """A live engine on the default output (the ALSA null device in CI)."""
    reason = _portaudio_missing()
    if reason:
        pytest.skip(reason)
    eng = Engine.open(sr=SR, blocksize=BLOCK)
    if not eng.available:  # test_engine_opens_the_default_device fails for this
        eng.close()
        pytest.skip(f"{eng.error}; {NO_DEVICE_HINT}")
    yield eng
    eng.close()


@pytest.fixture
def offline():
    eng = Engine.offline(sr=SR, blocksize=BLOCK)
    yield eng
    eng.close()


def _const(value: float, n: int) -> np.ndarray:
    return np.full((2, n), value, dtype=np.float32)


def _wait_first_output(eng: Engine, voice: str, timeout: float = 2.0) -> float:
    end = time.perf_counter() + timeout
    while (t := eng.first_output_time(voice)) is None:
        assert time.perf_counter() < end, f"{voice} never reached the output"
        time.sleep(0.001)
    return t


def _wait_until(pred, timeout: float = 3.0) -> None:
    end = time.perf_counter() + timeout
    while not pred():
        assert time.perf_counter() < end, "timed out"
        time.sleep(0.005)


# -- the live engine -------------------------------------------------------------------------

def test_engine_opens_the_default_device() -> None:
    reason = _portaudio_missing()
    if reason:
        pytest.skip(reason)
    with Engine.open(sr=SR, blocksize=BLOCK) as eng:
        assert eng.available, f"{eng.error}; {NO_DEVICE_HINT}"
        assert eng.error is None
        assert eng.sr == SR and eng.blocksize == BLOCK
        assert eng.latency_s > 0


def test_position_advances_in_real_time(engine: Engine) -> None:
    engine.play(_const(0.1, 3 * SR), voice="a")
    t0 = _wait_first_output(engine, "a")
    time.sleep(0.5)
    elapsed = time.perf_counter() - t0
    pos = engine.position("a")
    assert engine.is_playing("a")
    assert 0.7 * elapsed * SR <= pos <= 1.3 * elapsed * SR + BLOCK, (pos, elapsed * SR)


def test_a_voice_ends_by_itself_and_a_loop_wraps(engine: Engine) -> None:
    n = int(0.15 * SR)
    engine.play(_const(0.1, n), voice="once")
    engine.play(_const(0.1, n), voice="loop", loop=True)
    _wait_until(lambda: not engine.is_playing("once"))
    assert engine.position("once") == n  # where it ended
    time.sleep(0.3)  # the loop has wrapped at least twice by now
    assert engine.is_playing("loop")
    assert 0 <= engine.position("loop") < n
    assert "once" not in engine.voices()


def test_stop_one_voice_or_all(engine: Engine) -> None:
    engine.play(_const(0.1, 5 * SR), voice="a")
    engine.play(_const(0.1, 5 * SR), voice="b")
    _wait_first_output(engine, "a")
    time.sleep(0.05)
    engine.stop("a")
    assert not engine.is_playing("a") and engine.is_playing("b")
    stopped_at = engine.position("a")
    time.sleep(0.1)
    assert engine.position("a") == stopped_at > 0
    engine.stop()
    assert engine.voices() == []


def test_levels_rise_while_playing_and_fall_after(engine: Engine) -> None:
    engine.play(_const(0.5, 5 * SR), voice="a", loop=True)
    engine.play(_const(0.25, 5 * SR), voice="b", loop=True)
    _wait_first_output(engine, "b")
    time.sleep(0.1)
    levels = engine.levels()
    assert levels["a"] == pytest.approx((0.5, 0.5), abs=0.02)
    assert levels["b"] == pytest.approx((0.25, 0.25), abs=0.02)
    assert engine.master_level() == pytest.approx((0.75, 0.75), abs=0.03)  # they mix
    engine.stop()
    time.sleep(0.4)
    after = engine.levels()["a"][0]
    assert 0.05 < after < 0.4  # falling (20 dB per 1.5 s), not gone yet
    assert engine.master_level()[0] < 0.6


def test_close_is_idempotent_and_a_context_manager() -> None:
    reason = _portaudio_missing()
    if reason:
        pytest.skip(reason)
    with Engine.open(sr=SR, blocksize=BLOCK) as eng:
        eng.play(_const(0.1, SR), voice="a")
    assert eng.closed and not eng.available
    eng.close()
    eng.close()


def test_an_underflow_or_a_failing_block_does_not_stop_the_stream(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    out = np.ones((BLOCK, 2), dtype=np.float32)
    engine._callback(out, BLOCK, None, SimpleNamespace(output_underflow=True))  # an xrun
    assert engine.xruns >= 1
    calls = []
    real = Engine._render_voice

    def fail_once(self, *args):
        if not calls:
            calls.append(1)
            raise RuntimeError("boom")
        return real(self, *args)

    monkeypatch.setattr(Engine, "_render_voice", fail_once)
    engine.play(_const(0.1, SR), voice="a")
    _wait_first_output(engine, "a")  # the block after the failure plays
    assert calls and engine.available


def test_a_stream_that_dies_falls_back_to_the_silent_clock(engine: Engine) -> None:
    engine.play(_const(0.1, 10 * SR), voice="a")
    _wait_first_output(engine, "a")
    engine._stream.abort()  # as when the device goes away
    _wait_until(lambda: not engine.available)
    assert engine.error == "audio output stopped: the device went away"
    before = engine.position("a")
    time.sleep(0.2)
    assert engine.position("a") > before + 0.1 * SR


# -- without a device ------------------------------------------------------------------------

def _assert_silent_clock(eng: Engine) -> None:
    assert not eng.available
    assert eng.error and "\n" not in eng.error and eng.error.startswith("no audio output")
    eng.play(_const(0.3, 3 * SR), voice="a")
    t0 = _wait_first_output(eng, "a")
    time.sleep(0.3)
    elapsed = time.perf_counter() - t0
    assert 0.7 * elapsed * SR <= eng.position("a") <= 1.3 * elapsed * SR + BLOCK
    assert eng.levels()["a"][0] == pytest.approx(0.3, abs=0.01)


def test_no_device_runs_a_silent_clock() -> None:
    if _portaudio_missing():
        pytest.skip("needs sounddevice to look the device up")
    with Engine.open(sr=SR, blocksize=BLOCK, device="no-such-device-xyz") as eng:
        _assert_silent_clock(eng)
        assert "no-such-device-xyz" in eng.error


def test_no_sounddevice_runs_a_silent_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    with Engine.open(sr=SR, blocksize=BLOCK) as eng:
        _assert_silent_clock(eng)
        assert eng.error == "no audio output: the sounddevice package is not installed"


def test_no_portaudio_runs_a_silent_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")  # what sounddevice raises
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with Engine.open(sr=SR, blocksize=BLOCK) as eng:
        assert eng.error == "no audio output: PortAudio library not found"
        _assert_silent_clock(eng)


# -- the mixer, sample-exact (offline) --------------------------------------------------------

def test_voices_sum_with_gains_and_clip(offline: Engine) -> None:
    offline.play(_const(0.25, 4 * BLOCK), voice="a")
    offline.play(_const(0.5, 4 * BLOCK), voice="b", gain=0.5)
    out = offline.render(BLOCK)
    assert out.shape == (BLOCK, 2)
    np.testing.assert_allclose(out, 0.5, atol=1e-6)
    offline.play(_const(0.9, 4 * BLOCK), voice="c")
    offline.set_gain("b", 2.0)
    offline.render(BLOCK)  # the gain change ramps over this block
    out = offline.render(BLOCK)
    np.testing.assert_allclose(out, 1.0)  # 0.25 + 1.0 + 0.9 hard-clipped
    # the meter shows over; it decays with wall time, so a loaded machine reads it lower
    assert offline.master_level()[0] == pytest.approx(2.15, abs=0.02)


def test_non_finite_samples_do_not_reach_the_output(offline: Engine) -> None:
    y = _const(0.1, 2 * BLOCK)
    y[0, 10] = np.nan
    y[1, 20] = np.inf
    offline.play(y, voice="a")
    out = offline.render(BLOCK)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0


def test_looping_and_ending_are_sample_exact(offline: Engine) -> None:
    ramp = np.arange(300, dtype=np.float32) / 1000
    offline.play(np.stack([ramp, ramp]), voice="loop", loop=True)
    offline.play(np.stack([ramp, ramp]), voice="once", gain=0.0)
    out = offline.render(BLOCK)[:, 0]
    np.testing.assert_allclose(out[:300], ramp)
    np.testing.assert_allclose(out[300:BLOCK], ramp[:BLOCK - 300])
    assert offline.position("loop") == BLOCK - 300
    assert not offline.is_playing("once") and offline.position("once") == 300


def test_a_loop_region_and_a_start_offset(offline: Engine) -> None:
    ramp = np.arange(1000, dtype=np.float32) / 1000
    offline.play(np.stack([ramp, ramp]), voice="a", loop=True, loop_range=(100, 200),
                 start=150)
    offline.render(BLOCK)
    out = offline.render(BLOCK)[:, 0]  # past the fade-in of a mid-buffer start
    assert 0.1 - 1e-6 <= out.min() and out.max() < 0.2
    assert 100 <= offline.position("a") < 200


def test_a_scheduled_start_is_sample_exact(offline: Engine) -> None:
    offline.render(100)
    at = offline.clock() + 700  # inside the second block
    offline.play(_const(0.5, 2000), voice="a", at=at)
    assert offline.is_playing("a") and offline.first_output_time("a") is None
    out = offline.render(3 * BLOCK)[:, 0]
    assert np.all(out[:700] == 0) and np.all(out[700:2700] == 0.5)


def test_sync_point_is_the_next_grid_line(offline: Engine) -> None:
    offline.play(_const(0.0, 10 * SR), voice="ref", start=1000, gain=0.0)
    assert offline.sync_point("nothing", 441.0) is None
    offline.render(BLOCK)
    pos = offline.position("ref")  # 1512
    frame, there = offline.sync_point("ref", 441.0)
    assert there == 1764 and frame == offline.clock() + (1764 - pos)


def test_replacing_a_voice_does_not_click(offline: Engine) -> None:
    offline.play(_const(0.8, 10 * BLOCK), voice="a")
    offline.render(BLOCK)
    offline.play(_const(-0.8, 10 * BLOCK), voice="a")  # a jump of 1.6 without the fade
    out = offline.render(BLOCK)[:, 0]
    assert np.abs(np.diff(out)).max() < 0.01
    assert out[-1] == pytest.approx(-0.8, abs=0.01)


# -- the transport -----------------------------------------------------------------------------

def _song(bpm: float, names: list[str], *, bars: int = 4, muted: tuple[str, ...] = ()) -> Song:
    tracks = [Track(name=n, role="keys", mix=MixSettings(mute=n in muted)) for n in names]
    return Song(bpm=bpm, key="A minor", sections=[Section("verse", 0, bars)], tracks=tracks)


def test_transport_plays_stops_and_reports_bars(engine: Engine) -> None:
    song = _song(120.0, ["a", "b"], bars=8)  # a bar is 2 s
    n = song.bar_to_sample(8)
    t = Transport(engine, sr=SR)
    t.load(song, {"a": _const(0.1, n), "b": _const(0.1, n)})
    assert (t.bpm, t.key, t.playing, t.position_bars) == (120.0, "A minor", False, 0.0)
    t.play(from_bar=1)
    t0 = _wait_first_output(engine, TRANSPORT_VOICE)
    assert t.playing and engine.is_playing(track_voice("a")) and engine.is_playing(
        track_voice("b"))
    time.sleep(0.5)
    moved = t.position_bars - 1.0
    expected = (time.perf_counter() - t0) / 2.0
    assert 0.7 * expected <= moved <= 1.3 * expected + BLOCK / SR / 2
    # the stems started on the same sample and stay together
    assert engine.position(track_voice("a")) == engine.position(track_voice("b")) == (
        engine.position(TRANSPORT_VOICE))
    t.stop()
    assert not t.playing and not engine.is_playing(track_voice("a"))
    here = t.position_bars
    time.sleep(0.1)
    assert t.position_bars == here and t.position_s == pytest.approx(here * 2.0)
    t.toggle()
    assert t.playing
    t.toggle()
    assert not t.playing


def test_track_gains_mute_solo_volume() -> None:
    names = ["drums", "bass", "keys"]
    assert track_gains(names) == {"drums": 1.0, "bass": 1.0, "keys": 1.0}
    assert track_gains(names, mute={"bass": True})["bass"] == 0.0
    g = track_gains(names, solo={"keys": True, "bass": True}, mute={"bass": True},
                    volume_db={"keys": -6.0})
    assert g["drums"] == 0.0 and g["bass"] == 0.0  # mute wins over solo
    assert g["keys"] == pytest.approx(0.501, abs=1e-3)


def test_mute_solo_volume_change_the_mix(offline: Engine) -> None:
    song = _song(120.0, ["a", "b", "c"], muted=("c",))  # the song's own mute is kept
    n = song.bar_to_sample(4)
    t = Transport(offline, sr=SR)
    t.load(song, {"a": _const(0.1, n), "b": _const(0.2, n), "c": _const(0.4, n)})
    assert t.is_muted("c")
    t.play()

    def settled() -> float:
        offline.render(BLOCK)  # the change ramps over one block
        out = offline.render(BLOCK)
        assert np.ptp(out) < 1e-6
        return float(out[0, 0])

    assert settled() == pytest.approx(0.3)
    t.set_mute("c", False)
    assert settled() == pytest.approx(0.7)
    t.set_solo("b", True)
    assert settled() == pytest.approx(0.2)
    t.set_volume("b", -6.0)
    assert settled() == pytest.approx(0.2 * 10 ** (-6 / 20))
    t.set_solo("b", False)
    t.set_mute("a", True)
    assert settled() == pytest.approx(0.2 * 10 ** (-6 / 20) + 0.4)
    levels = t.track_levels()
    assert levels["a"][0] < 0.1 and levels["c"][0] == pytest.approx(0.4, abs=1e-3)
    with pytest.raises(KeyError):
        t.set_mute("nope", True)


def test_the_transport_loops_a_bar_range(offline: Engine) -> None:
    song = _song(120.0, ["a"], bars=4)
    n = song.bar_to_sample(4)
    ramp = (np.arange(n, dtype=np.float32) / n)
    t = Transport(offline, sr=SR)
    t.load(song, {"a": np.stack([ramp, ramp])})
    t.loop = True
    t.loop_range = (1, 2)
    t.play()  # outside the range: starts at its first bar
    assert t.position_bars == pytest.approx(1.0)
    out = offline.render(3 * SR)[:, 0]  # 1.5 bars: it wrapped
    assert t.playing and 1.0 <= t.position_bars < 2.0
    assert out[BLOCK:].min() >= 0.25 - 1e-3 and out.max() < 0.5  # after the fade-in
    t.loop = False  # live: plays on to the end of the song
    offline.render(6 * SR)
    assert not t.playing and t.position_bars == pytest.approx(4.0)


# -- auditions ---------------------------------------------------------------------------------

def _item(path: Path, *, kind: str = "loop", role: str | None = "perc", bpm: float | None = 120.0,
          key: str | None = None, duration_s: float = 4.0) -> SimpleNamespace:
    return SimpleNamespace(path=str(path), start_s=0.0, end_s=duration_s, kind=kind, role=role,
                           bpm=bpm, key=key)


@pytest.fixture
def auditioner(offline: Engine, tmp_path: Path):
    errors: list[str] = []
    aud = Auditioner(offline, cache=StretchCache(tmp_path / "cache"), sr=SR,
                     on_error=errors.append)
    aud.errors = errors
    yield aud
    aud.close()


def _onsets(y: np.ndarray, threshold: float) -> np.ndarray:
    idx = np.flatnonzero(np.abs(y) > threshold)
    if len(idx) == 0:
        return idx
    return idx[np.concatenate([[True], np.diff(idx) > int(0.05 * SR)])]


def test_a_loop_is_stretched_to_the_song_tempo(auditioner: Auditioner, offline: Engine,
                                               tmp_path: Path,
                                               stretch_calls: list) -> None:
    path = write_audio(tmp_path / "click_120.wav", click_track(120, 2))
    item = _item(path)
    info = auditioner.play(item, song_bpm=140.0, song_key="A minor")
    assert info.loop and info.stretch == pytest.approx(140 / 120, abs=1e-4)
    assert info.semitones == 0  # percussion is never shifted
    n = int(round(2 * 240 / 140 * SR))  # two bars at 140 BPM
    assert info.duration_s * SR == pytest.approx(n, abs=0.5)
    assert len(stretch_calls) == 1
    out = offline.render(n)[:, 0]
    beats = _onsets(out, 0.1)
    assert len(beats) == 8
    np.testing.assert_allclose(beats, np.arange(8) * 60 / 140 * SR, atol=0.002 * SR)
    assert offline.is_playing(AUDITION_VOICE)  # a loop goes on
    auditioner.stop()
    assert not offline.is_playing(AUDITION_VOICE)


def test_a_tone_is_shifted_to_the_song_key(auditioner: Auditioner, offline: Engine,
                                           tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a440.wav", tone(440.0, 1.0))
    item = _item(path, kind="oneshot", role="keys", bpm=None, key="A minor", duration_s=1.0)
    info = auditioner.play(item, song_bpm=140.0, song_key="C minor")
    assert info.semitones == 3 and not info.loop  # A to C; a one-shot plays once
    out = offline.render(SR)[:, 0]
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * SR / len(out)
    assert peak_hz == pytest.approx(440.0 * 2 ** (3 / 12), abs=3.0)
    offline.render(BLOCK)
    assert not offline.is_playing(AUDITION_VOICE)


def test_drums_and_fx_are_never_shifted(auditioner: Auditioner, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a440.wav", tone(440.0, 1.0))
    for role in ("drumloop", "kick", "fx"):
        item = _item(path, kind="oneshot", role=role, bpm=None, key="A minor", duration_s=1.0)
        assert auditioner.play(item, song_bpm=140.0, song_key="C minor").semitones == 0


def test_an_unreachable_tempo_plays_unstretched(auditioner: Auditioner, tmp_path: Path,
                                                stretch_calls: list) -> None:
    path = write_audio(tmp_path / "click_100.wav", click_track(100, 1))
    item = _item(path, duration_s=2.4)  # 100 BPM cannot reach 140 within 0.8-1.25 (or x2)
    item.bpm = 100.0
    info = auditioner.play(item, song_bpm=140.0, song_key=None)
    assert info.stretch == 1.0 and info.duration_s == pytest.approx(2.4)
    assert stretch_calls == []


def test_prepared_sounds_come_from_memory_then_from_the_stretch_cache(
        auditioner: Auditioner, offline: Engine, tmp_path: Path, stretch_calls: list) -> None:
    path = write_audio(tmp_path / "click_120.wav", click_track(120, 2))
    item = _item(path)
    auditioner.prepare(item, song_bpm=140.0, song_key=None)
    assert auditioner.wait_idle(30)
    assert auditioner.is_ready(item, song_bpm=140.0, song_key=None)
    assert len(stretch_calls) == 1 and auditioner.renders == 1
    auditioner.prepare(item, song_bpm=140.0, song_key="F minor")  # drums: the key is moot
    auditioner.play(item, song_bpm=140.0, song_key=None)
    assert auditioner.wait_idle(30)
    assert len(stretch_calls) == 1 and auditioner.renders == 1  # memory
    # another auditioner (a new session) on the same cache: no stretching either
    other = Auditioner(offline, cache=auditioner.cache, sr=SR)
    try:
        other.play(item, song_bpm=140.0, song_key=None)
        assert len(stretch_calls) == 1 and other.renders == 1
    finally:
        other.close()


def test_a_bad_file_is_reported_and_the_worker_goes_on(auditioner: Auditioner,
                                                       tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"This is not audio.\n" * 50)
    item = _item(bad, kind="oneshot", bpm=None, duration_s=1.0)
    auditioner.prepare(item, song_bpm=140.0, song_key=None)
    assert auditioner.wait_idle(30)
    assert len(auditioner.errors) == 1
    assert auditioner.errors[0].startswith("notes.wav") and "\n" not in auditioner.errors[0]
    with pytest.raises(LoopMindError, match="notes.wav"):
        auditioner.play(item, song_bpm=140.0, song_key=None)
    good = _item(write_audio(tmp_path / "tone.wav", tone(440.0, 0.5)), kind="oneshot",
                 bpm=None, duration_s=0.5)
    auditioner.prepare(good, song_bpm=140.0, song_key=None)
    assert auditioner.wait_idle(30)
    assert auditioner.is_ready(good, song_bpm=140.0, song_key=None)
    gone = _item(tmp_path / "vanished.wav", kind="oneshot", bpm=None)
    with pytest.raises(LoopMindError, match="vanished.wav: the file is gone"):
        auditioner.prepare(gone, song_bpm=140.0, song_key=None)
    with pytest.raises(LoopMindError, match="vanished.wav"):
        auditioner.play(gone, song_bpm=140.0, song_key=None)


def test_a_newer_request_replaces_a_queued_one(auditioner: Auditioner, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    items = [_item(write_audio(tmp_path / f"t{i}.wav", tone(220.0 * (i + 1), 0.2)),
                   kind="oneshot", bpm=None, duration_s=0.2) for i in range(3)]
    release = threading.Event()
    made: list[str] = []
    real = Auditioner._render

    def slow(self, plan):
        made.append(Path(plan.path).name)
        release.wait(10)
        return real(self, plan)

    monkeypatch.setattr(Auditioner, "_render", slow)
    auditioner.prepare(items[0], song_bpm=None, song_key=None)
    _wait_until(lambda: made == ["t0.wav"])  # the worker holds the first
    auditioner.prepare(items[1], song_bpm=None, song_key=None)  # queued...
    auditioner.prepare(items[2], song_bpm=None, song_key=None)  # ...and replaced
    release.set()
    assert auditioner.wait_idle(30)
    assert made == ["t0.wav", "t2.wav"]


def test_a_loop_audition_starts_on_the_songs_next_beat(auditioner: Auditioner,
                                                       offline: Engine,
                                                       tmp_path: Path) -> None:
    song = _song(120.0, ["silence"], bars=8)
    n = song.bar_to_sample(8)
    t = Transport(offline, sr=SR)
    t.load(song, {"silence": _const(0.0, n)})
    t.play()
    offline.render(30000)  # between beat 2 (22050) and beat 3 (44100)
    path = write_audio(tmp_path / "click_120.wav", click_track(120, 2))
    info = auditioner.play(_item(path), song_bpm=120.0, song_key=None)
    assert info.synced
    out = offline.render(30000)[:, 0]
    onsets = _onsets(out, 0.05) + 30000
    # the loop enters at its own third beat, on the song's third beat, and stays on the grid
    assert onsets[0] == pytest.approx(44100, abs=0.001 * SR)
    # one-shots do not wait
    auditioner.play(_item(path, kind="oneshot", bpm=None), song_bpm=120.0, song_key=None)
    assert offline.position(AUDITION_VOICE) == 0
    offline.render(BLOCK)
    assert offline.position(AUDITION_VOICE) == BLOCK


def test_audition_on_a_live_engine_starts_within_a_few_blocks(engine: Engine,
                                                              tmp_path: Path) -> None:
    path = write_audio(tmp_path / "click_120.wav", click_track(120, 1))
    aud = Auditioner(engine, cache=StretchCache(tmp_path / "cache"), sr=SR)
    try:
        item = _item(path, duration_s=2.0)
        aud.prepare(item, song_bpm=140.0, song_key=None)
        assert aud.wait_idle(30)
        t0 = time.perf_counter()
        aud.play(item, song_bpm=140.0, song_key=None)
        assert _wait_first_output(engine, AUDITION_VOICE) - t0 < 0.15
    finally:
        aud.close()


def test_importing_the_player_is_light() -> None:
    code = ("import sys, loopmind.player.engine, loopmind.player.transport, "
            "loopmind.player.audition; "
            "heavy = {'sounddevice', 'textual', 'pedalboard', 'sqlalchemy', 'scipy'} "
            "& set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"

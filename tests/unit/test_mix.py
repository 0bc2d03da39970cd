"""Auto-mix: the heuristic mixer's decisions, and the mix and master they produce.

Songs are made in code: a four-on-the-floor kick, a steady bass tone, a pad chord and off-beat
hats at 120 BPM. Loudness and true peak are checked with LoopMind's meter and with pyloudnorm.
"""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_audio import SR, bar_frames, drum_hit, noise, tone

from loopmind.generate import mix
from loopmind.generate.mix import (
    HeuristicMixer,
    MixResult,
    TrackFeatures,
    apply_mix,
    auto_mix,
    integrated_lufs,
    track_features,
)
from loopmind.generate.song import MasterSettings, MixSettings, Section, Song, Track
from loopmind.library.analysis.loudness import measure

BPM = 120.0
BEAT = int(round(60.0 / BPM * SR))
# silence after the last bar, as the renderer leaves for decays (not a whole number of the
# meter's 100 ms steps or of the mixer's blocks)
TAIL = int(1.5 * SR) + 77


def _pattern(hit: np.ndarray, bars: int, every_16ths: int, offset: int = 0) -> np.ndarray:
    """``hit`` on every ``every_16ths`` 16th note from ``offset``, stereo (2, n)."""
    n = bar_frames(BPM, bars)
    y = np.zeros(n, dtype=np.float32)
    for s in range(offset, 16 * bars, every_16ths):
        a = int(round(s * 15.0 / BPM * SR))
        b = min(n, a + len(hit))
        y[a:b] += hit[:b - a]
    return np.stack([y, y])


def _stems(bars: int = 4) -> dict[str, np.ndarray]:
    n = bar_frames(BPM, bars)
    d = n / SR
    bass = tone(55.0, d, harmonics=4, amplitude=0.6)
    pad_l = sum(tone(f, d, amplitude=0.2) for f in (220.0, 261.63, 329.63))
    pad_r = sum(tone(f * 1.003, d, amplitude=0.2) for f in (220.0, 261.63, 329.63))
    stems = {
        "kick": _pattern(drum_hit("kick_punchy"), bars, 4),
        "bass": np.stack([bass, bass]),
        "pad": np.stack([pad_l, pad_r]).astype(np.float32),
        "hats": _pattern(drum_hit("hihat_closed") * 0.5, bars, 4, offset=2),
    }
    return {k: np.pad(v, ((0, 0), (0, TAIL))) for k, v in stems.items()}


_ROLES = {"kick": "kick", "bass": "bass", "pad": "pad", "hats": "hihat"}


def _song(bars: int = 4, genre: str | None = None, **master) -> Song:
    return Song(bpm=BPM, key="A minor", genre=genre, sections=[Section("drop", 0, bars)],
                tracks=[Track(name, role) for name, role in _ROLES.items()],
                master=MasterSettings(**master))


def _mixed(bars: int = 4, stems: dict | None = None, **master) -> tuple[Song, MixResult]:
    song = _song(bars, **master)
    stems = _stems(bars) if stems is None else stems
    auto_mix(song, stems, sr=SR)
    return song, apply_mix(song, stems, sr=SR)


@pytest.fixture(scope="module")
def standard() -> tuple[Song, dict[str, np.ndarray], MixResult, dict[str, TrackFeatures]]:
    song = _song()
    stems = _stems()
    # the heuristic's settings are what these tests check (a shipped learned mixer may
    # override some of them by default; test_train covers that path)
    features = auto_mix(song, stems, sr=SR, mixer=HeuristicMixer())
    return song, stems, apply_mix(song, stems, sr=SR), features


# -- features ------------------------------------------------------------------------------

def test_features_of_known_signals():
    d = 4.0
    sine = tone(1000.0, d, amplitude=0.5)
    f = track_features("sine", "lead", np.stack([sine, sine]), SR)
    assert f.integrated_lufs == pytest.approx(measure(np.stack([sine, sine]).T, SR)
                                              .integrated_lufs(), abs=0.05)
    assert f.spectral_centroid_hz == pytest.approx(1000.0, rel=0.05)
    assert f.crest_db == pytest.approx(3.01, abs=0.2)
    assert f.stereo_width == pytest.approx(0.0, abs=1e-6)
    assert f.active_fraction == pytest.approx(1.0)

    low = tone(55.0, d, amplitude=0.5)
    assert track_features("sub", "bass", low, SR).low_energy_fraction > 0.95

    wide = np.stack([noise(d, seed=1), noise(d, seed=2)])
    assert track_features("wide", "pad", wide, SR).stereo_width == pytest.approx(0.5, abs=0.05)


def test_active_loudness_ignores_where_the_track_is_silent():
    half = tone(440.0, 4.0, amplitude=0.3)
    y = np.concatenate([half, np.zeros_like(half), half * 0.003])  # plays, rests, a faint tail
    f = track_features("lead", "lead", y, SR)
    playing = integrated_lufs(half, sr=SR)
    assert f.active_lufs == pytest.approx(playing, abs=0.3)
    assert f.active_fraction == pytest.approx(1 / 3, abs=0.08)


def test_integrated_lufs_is_the_meters():
    rng = np.random.default_rng(440)
    y = (rng.standard_normal((2, SR * 5)) * 0.1).astype(np.float32)
    y[:, : SR * 2] *= 0.05
    assert integrated_lufs(y, sr=SR) == pytest.approx(measure(y.T, SR).integrated_lufs(),
                                                      abs=0.01)


def test_silent_features():
    f = track_features("nothing", "pad", np.zeros((2, SR)), SR)
    assert f.silent and f.active_fraction == 0.0
    assert track_features("empty", "pad", np.zeros((2, 0)), SR).silent


# -- the heuristic mixer -------------------------------------------------------------------

def _features(names_roles: dict[str, str], **over) -> dict[str, TrackFeatures]:
    out = {}
    for name, role in names_roles.items():
        kw = dict(name=name, role=role, integrated_lufs=-16.0, active_lufs=-16.0,
                  active_fraction=1.0, peak_db=-6.0, crest_db=10.0,
                  spectral_centroid_hz=2000.0, low_energy_fraction=0.1, stereo_width=0.0)
        kw.update(over.get(name, {}))
        out[name] = TrackFeatures(**kw)
    return out


def test_heuristic_settings(standard):
    song, _, _, feats = standard
    m = {t.name: t.mix for t in song.tracks}
    assert m["bass"].duck_under == "kick" and 4.0 <= m["bass"].duck_db <= 6.0
    assert m["pad"].duck_under == "kick" and 0 < m["pad"].duck_db < m["bass"].duck_db
    assert m["kick"].duck_under is None
    assert m["pad"].reverb_send > 0
    assert m["kick"].reverb_send == 0 and m["bass"].reverb_send == 0
    assert m["hats"].pan != 0
    assert m["kick"].pan == 0 and m["bass"].pan == 0
    assert m["kick"].highpass_hz is None and m["bass"].highpass_hz is None
    assert m["hats"].highpass_hz is not None and m["pad"].highpass_hz is not None
    # the role balance: the kick sits above the hats where both play
    level = {n: feats[n].active_lufs + m[n].gain_db for n in feats}
    assert level["kick"] - level["hats"] == pytest.approx(8.0, abs=0.1)


def test_pan_spread_is_alternate_by_name_and_repeatable():
    feats = _features({"zz_hat": "hihat", "a_perc": "perc", "m_hat": "hihat",
                       "kick": "kick", "lead": "lead"})
    s1 = HeuristicMixer().settings(feats, genre=None)
    s2 = HeuristicMixer().settings(dict(reversed(list(feats.items()))), genre=None)
    assert s1 == s2
    spread = [s1[n].pan for n in ("a_perc", "m_hat", "zz_hat")]  # sorted by name
    assert spread[0] < 0 < spread[1] and spread[2] < 0
    assert s1["kick"].pan == 0 and s1["lead"].pan == 0


def test_drum_loop_triggers_ducking_without_a_kick_and_keeps_its_low_end():
    s = HeuristicMixer().settings(_features({"beat": "drumloop", "bass": "bass",
                                             "pad": "pad"}), genre=None)
    assert s["bass"].duck_under == "beat"
    assert s["beat"].highpass_hz is None and s["beat"].pan == 0
    s = HeuristicMixer().settings(_features({"keys": "keys"}), genre=None)
    assert s["keys"].duck_under is None
    # no bass track: the keys carry the low end and are only cut below the audible range
    assert s["keys"].highpass_hz <= 40.0


def test_genre_changes_levels_and_silent_tracks_keep_unity_gain():
    feats = _features({"kick": "kick", "bass": "bass", "ghost": "pad"},
                      ghost={"active_lufs": -120.0, "integrated_lufs": -120.0})
    plain = HeuristicMixer().settings(feats, genre=None)
    trap = HeuristicMixer().settings(feats, genre="Trap")
    assert (trap["bass"].gain_db - trap["kick"].gain_db
            > plain["bass"].gain_db - plain["kick"].gain_db)
    assert plain["ghost"].gain_db == 0.0 and plain["ghost"].duck_under is None


def test_auto_mix_keeps_mute_and_accepts_another_mixer():
    class Flat:
        name = "flat"

        def settings(self, features, *, genre):
            return {n: MixSettings(gain_db=-3.0) for n in features}

    song = _song()
    song.tracks[3].mix.mute = True
    feats = auto_mix(song, _stems(), sr=SR, mixer=Flat())
    assert set(feats) == set(_ROLES)
    assert all(t.mix.gain_db == -3.0 for t in song.tracks)
    assert song.tracks[3].mix.mute and not song.tracks[0].mix.mute
    # the settings are part of the exported arrangement
    again = Song.from_dict(song.to_dict())
    assert [t.mix for t in again.tracks] == [t.mix for t in song.tracks]


# -- the master ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", [-14.0, -10.0])
def test_master_meets_loudness_and_true_peak(target):
    pyln = pytest.importorskip("pyloudnorm")
    _, result = _mixed(target_lufs=target)
    y = result.master
    assert y.dtype == np.float32 and y.shape == (2, bar_frames(BPM, 4) + TAIL)
    meter = measure(y.T, SR)
    assert meter.integrated_lufs() == pytest.approx(target, abs=0.5)
    assert pyln.Meter(SR).integrated_loudness(y.T.astype(np.float64)) == pytest.approx(
        target, abs=0.5)
    assert meter.true_peak_db() <= -1.0
    assert np.abs(y).max() < 1.0
    assert result.report["master_lufs"] == pytest.approx(meter.integrated_lufs(), abs=0.05)
    assert result.report["master_true_peak_dbtp"] == pytest.approx(meter.true_peak_db(),
                                                                   abs=0.05)
    assert result.report["notes"] == []


def test_same_inputs_give_a_bit_identical_master(standard):
    song, stems, first, _ = standard
    again = apply_mix(song, stems, sr=SR)
    threaded = apply_mix(song, stems, sr=SR, workers=2)
    for other in (again, threaded):
        assert np.array_equal(first.master, other.master)
        assert all(np.array_equal(first.stems[k], other.stems[k]) for k in first.stems)
        assert np.array_equal(first.reverb, other.reverb)


def test_reverb_is_deterministic():
    rng = np.random.default_rng(440)
    x = (rng.standard_normal((2, SR)) * 0.1).astype(np.float32)
    a = mix._reverb(x, SR)
    assert np.array_equal(a, mix._reverb(x, SR))
    assert np.abs(a).max() > 0


def test_input_audio_is_not_changed(standard):
    _, stems, _, _ = standard
    assert all(np.array_equal(stems[k], v) for k, v in _stems().items())


def test_ducking_lowers_the_bass_during_kicks(standard):
    song, _, result, _ = standard
    duck_db = song.track("bass").mix.duck_db

    def level_over_the_beat(y: np.ndarray) -> np.ndarray:
        """dB of y's power at each offset into the beat (all beats folded, 10 ms smoothing)."""
        beats = y.size // BEAT - 1
        p = (y[BEAT:BEAT * (beats + 1)].astype(np.float64) ** 2).reshape(beats, BEAT).mean(0)
        w = int(0.01 * SR)
        return 10 * np.log10(np.convolve(p, np.ones(w) / w, mode="valid"))

    bass = level_over_the_beat(result.stems["bass"][0])
    # the dip sits right after the kick; the bass has recovered before the next one
    assert bass.max() - bass.min() == pytest.approx(duck_db, abs=1.0)
    assert np.argmin(bass) < 0.1 * SR < 0.4 * SR < np.argmax(bass)
    assert result.report["tracks"]["bass"]["duck_max_db"] == pytest.approx(duck_db, abs=0.01)
    assert result.report["tracks"]["hats"]["duck_max_db"] == 0.0  # hats do not duck


def test_stems_sum_to_the_bus_before_the_master():
    # a quiet target and no glue: the master chain is one plain gain, no limiting
    song, result = _mixed(target_lufs=-30.0, glue_ratio=1.0)
    assert result.report["limiter_max_reduction_db"] == 0.0
    bus = sum(result.stems[t.name] for t in song.tracks) + result.reverb
    gain = float(np.vdot(result.master, bus) / np.vdot(bus, bus))
    np.testing.assert_allclose(result.master, bus * gain, atol=1e-6)
    assert 20 * np.log10(gain) == pytest.approx(
        result.report["glue_trim_db"] + result.report["master_gain_db"], abs=0.02)


def test_master_gain_curve_is_the_whole_master_chain(standard):
    """With glue, limiting and the loudness gain all at work, the master is the bus times one
    gain per sample (what the player applies to the live stems), and asking for the curve
    does not change the master."""
    song, stems, result, _ = standard
    curved = apply_mix(song, stems, sr=SR, master_gain=True)
    assert result.master_gain is None and curved.master_gain.shape == (result.master.shape[1],)
    assert np.array_equal(curved.master, result.master)
    assert result.report["glue_max_reduction_db"] > 0 or result.report[
        "limiter_max_reduction_db"] > 0  # not a plain gain
    bus = sum(curved.stems[t.name] for t in song.tracks if not t.mix.mute) + curved.reverb
    np.testing.assert_allclose(bus * curved.master_gain, curved.master, atol=2e-5)
    g = curved.master_gain
    assert g.min() > 0 and g.max() / g.min() > 1.01  # it moves
    silent = apply_mix(Song(bpm=BPM, key=None), {}, sr=SR, master_gain=True)
    assert silent.master_gain.shape == (0,)


def test_muting_removes_a_track():
    stems = _stems()
    song = _song()
    auto_mix(song, stems, sr=SR)
    for t in song.tracks:
        t.mix.mute = t.name != "kick"
    muted = apply_mix(song, stems, sr=SR)
    solo = Song(bpm=BPM, key=None, sections=song.sections, tracks=[song.track("kick")])
    alone = apply_mix(solo, {"kick": stems["kick"]}, sr=SR)
    assert np.array_equal(muted.master, alone.master)
    # muted stems are still there, post-fader, for the export
    assert set(muted.stems) == set(_ROLES) and np.any(muted.stems["hats"])


def test_silent_track_and_empty_song():
    stems = _stems()
    stems["ghost"] = np.zeros_like(stems["kick"])
    song = _song()
    song.tracks.append(Track("ghost", "pad"))
    auto_mix(song, stems, sr=SR)
    result = apply_mix(song, stems, sr=SR)
    assert np.isfinite(result.master).all() and not np.any(result.stems["ghost"])
    assert song.track("ghost").mix.gain_db == 0.0

    quiet = {k: np.zeros_like(v) for k, v in stems.items()}
    silent = apply_mix(song, quiet, sr=SR)
    assert not np.any(silent.master) and silent.report["notes"]

    empty = apply_mix(Song(bpm=BPM, key=None), {}, sr=SR)
    assert empty.master.shape == (2, 0) and empty.report["notes"]
    assert np.isfinite(empty.report["master_lufs"])


def test_very_loud_input_still_meets_the_ceiling():
    stems = {k: v * 20.0 for k, v in _stems().items()}  # far past full scale
    _, result = _mixed(stems=stems)
    meter = measure(result.master.T, SR)
    assert meter.true_peak_db() <= -1.0
    assert meter.integrated_lufs() == pytest.approx(-14.0, abs=0.5)


def test_an_unreachable_target_stops_at_the_limiting_cap():
    _, result = _mixed(target_lufs=-2.0)
    meter = measure(result.master.T, SR)
    assert meter.true_peak_db() <= -1.0
    assert result.report["limiter_max_reduction_db"] <= mix.MAX_LIMITING_DB + 1e-6
    assert any("limiting" in note for note in result.report["notes"])


def test_bad_inputs_are_reported_not_fatal():
    stems = _stems()
    stems["pad"] = stems["pad"].copy()
    stems["pad"][:, 100] = np.nan
    stems["stray"] = stems["kick"]
    stems["kick"] = stems["kick"][:, : SR]  # shorter than the rest
    song = _song()
    song.tracks[0].mix.duck_under = "bass"  # kick under bass, bass under kick: a cycle
    song.tracks[1].mix.duck_under = "kick"
    song.tracks[1].mix.duck_db = 5.0
    song.tracks[0].mix.duck_db = 5.0
    result = apply_mix(song, stems, sr=SR)
    notes = " ".join(result.report["notes"])
    assert "non-finite" in notes and "stray" in notes and "length" in notes
    assert "cycle" in notes
    assert np.isfinite(result.master).all()
    assert measure(result.master.T, SR).true_peak_db() <= -1.0


def test_inter_sample_peaks_are_limited():
    # a sine at a quarter of the sample rate, sampled 45 degrees off its peaks: the waveform
    # peaks 3 dB above every sample
    n = bar_frames(BPM, 4) + TAIL
    t = np.arange(n) / SR
    y = (0.5 * np.sin(2 * np.pi * (SR / 4) * t + np.pi / 4)).astype(np.float32)
    stems = {**_stems(), "pad": np.stack([y, y])}
    _, result = _mixed(stems=stems)
    assert measure(result.master.T, SR).true_peak_db() <= -1.0


@pytest.mark.parametrize("sr", [48000, 22050])
def test_other_sample_rates(sr):
    n = 4 * int(round(60.0 / BPM * sr)) * 2  # two bars
    kick = np.zeros(n, dtype=np.float32)
    hit = drum_hit("kick_punchy", sr=sr)
    for a in range(0, n, int(round(60.0 / BPM * sr))):
        kick[a:a + len(hit)] += hit[:n - a]
    bass = tone(55.0, n / sr, sr, harmonics=3, amplitude=0.5)
    stems = {"kick": np.stack([kick, kick]), "bass": np.stack([bass, bass])}
    song = Song(bpm=BPM, key=None, sections=[Section("a", 0, 2)], sample_rate=sr,
                tracks=[Track("kick", "kick"), Track("bass", "bass")])
    auto_mix(song, stems, sr=sr)
    meter = measure(apply_mix(song, stems, sr=sr).master.T, sr)
    assert meter.integrated_lufs() == pytest.approx(-14.0, abs=0.5)
    assert meter.true_peak_db() <= -1.0


def test_filters_skip_silence_without_changing_the_sound():
    """EQ and K-weighting run only where a track plays (or the filter still rings): the
    result equals the whole-signal filter to far below audibility, and exactly where the
    signal has no long silence."""
    from scipy.signal import sosfilt

    from loopmind.generate.mix import _eq_sos, filter_active, k_weighting_sos
    from loopmind.generate.song import MixSettings

    sr = 44100
    rng = np.random.default_rng(4)
    y = np.zeros((2, sr * 20), np.float32)
    for a, b in ((0.0, 3.0), (5.5, 6.0), (12.0, 19.5)):
        y[:, int(a * sr):int(b * sr)] = rng.standard_normal((2, int((b - a) * sr))) * 0.3
    eq = _eq_sos(MixSettings(highpass_hz=30.0, eq=[(60.0, 4.0, 2.0), (3000.0, -3.0, 1.0)]), sr)
    for sos in (eq, k_weighting_sos(sr).astype(np.float32)):
        want = sosfilt(sos, y, axis=-1)
        got = filter_active(sos, y)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-7 * np.abs(want).max()
        assert not got[:, int(8.0 * sr):int(11.5 * sr)].any()  # rung out: nothing computed
        dense = rng.standard_normal((2, sr * 3)).astype(np.float32)
        np.testing.assert_array_equal(filter_active(sos, dense), sosfilt(sos, dense, axis=-1))
        assert not filter_active(sos, np.zeros((2, sr * 5), np.float32)).any()
        short = y[:, :1000]
        np.testing.assert_array_equal(filter_active(sos, short), sosfilt(sos, short, axis=-1))

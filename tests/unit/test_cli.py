"""The command line: the names other tools rely on, JSON shapes, exit codes."""

import json
import os
import subprocess
import sys

import pytest
import soundfile as sf

from fixtures_audio import SR, drum_loop
from tests.unit.test_library import pad_tone

REQUIRED = {"path", "segment", "start_s", "end_s", "kind", "bars", "bpm", "bpm_confidence",
            "key", "key_confidence", "role", "role_confidence", "tags", "lufs",
            "true_peak_db", "duration_s"}


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "loopmind", *args], capture_output=True,
                          text=True, env=e, timeout=300)


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    sf.write(d / "groove_120bpm.wav", drum_loop(120, 2), SR)
    sf.write(d / "pad.wav", pad_tone(220, 3.0), SR)
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return d


def test_analyze_json(files):
    r = run("analyze", str(files / "groove_120bpm.wav"), str(files / "pad.wav"), "--json")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(recs) >= 2
    for rec in recs:
        assert REQUIRED <= rec.keys()
    groove = [x for x in recs if x["path"].endswith("groove_120bpm.wav")][0]
    assert groove["bpm"] == pytest.approx(120, rel=0.02) and groove["kind"] == "loop"
    assert groove["key"] is None  # drums have no key
    assert groove["lufs"] < 0 and groove["true_peak_db"] <= 0.5


def test_analyze_error_exit_status(files):
    r = run("analyze", str(files / "broken.wav"), str(files / "pad.wav"), "--json")
    assert r.returncode == 1
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    errs = [x for x in recs if "error" in x]
    assert len(errs) == 1 and errs[0]["path"].endswith("broken.wav")
    assert "\n" not in errs[0]["error"]
    assert any(x.get("path", "").endswith("pad.wav") and "error" not in x for x in recs)
    assert "Traceback" not in r.stderr


def test_add_status_ls(files, tmp_path):
    home = {"LOOPMIND_HOME": str(tmp_path / "home")}
    r = run("add", str(files), env=home)
    assert r.returncode == 0, r.stderr
    assert "3 audio files seen" in r.stdout and "1 failed" in r.stdout
    r = run("status", "--json", env=home)
    st = json.loads(r.stdout)
    assert st["files"]["ok"] == 2 and st["files"]["error"] == 1
    assert st["errors"][0]["path"].endswith("broken.wav")
    r = run("ls", "--json", env=home)
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(recs) >= 2 and all(REQUIRED <= x.keys() for x in recs)
    r = run("scan", env=home)
    # the broken file is not retried while it is unchanged
    assert "0 indexed" in r.stdout and "3 unchanged" in r.stdout


def test_locate_uses_home(tmp_path):
    r = run("locate", env={"LOOPMIND_HOME": str(tmp_path / "h")})
    assert r.returncode == 0
    assert all(str(tmp_path / "h") in line for line in r.stdout.splitlines())


def test_errors_are_one_line(tmp_path):
    home = {"LOOPMIND_HOME": str(tmp_path / "home")}
    r = run("add", str(tmp_path / "does-not-exist"), env=home)
    assert r.returncode == 1 and "not a folder" in r.stderr and "Traceback" not in r.stderr
    r = run("scan", env=home)
    assert r.returncode == 1 and "no watched folders" in r.stderr
    r = run("set", "999", "--key", "H minor", env=home)
    assert r.returncode == 1 and "unknown key" in r.stderr

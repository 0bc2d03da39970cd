"""A scan killed with SIGKILL and started again finishes with no duplicate and no missing rows."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import soundfile as sf

from fixtures_audio import SR, drum_loop
from tests.unit.test_library import pad_tone

N_FILES = 24


def test_sigkill_then_rescan(tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(N_FILES):
        y = drum_loop(90 + 3 * i, 1, seed=i) if i % 2 else pad_tone(110 + 10 * i, 2.0)
        sf.write(src / f"item_{i:02d}.wav", y, SR)
    home = tmp_path / "home"
    env = dict(os.environ, LOOPMIND_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "loopmind", "--workers", "1", "add", str(src)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = home / "library.db"
    t0 = time.monotonic()
    stored = 0
    while time.monotonic() - t0 < 120:
        if db.exists():
            try:
                con = sqlite3.connect(db, timeout=1)
                stored = con.execute("select count(*) from audio_file").fetchone()[0]
                con.close()
            except sqlite3.Error:
                stored = 0
        if stored >= 3 or proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < stored < N_FILES, "the kill should land mid-scan"
    r = subprocess.run([sys.executable, "-m", "loopmind", "scan"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    paths = [p for (p,) in con.execute("select path from audio_file")]
    assert len(paths) == N_FILES and len(set(paths)) == N_FILES
    assert con.execute("select count(*) from audio_file where status != 'ok'").fetchone()[0] == 0
    dup = con.execute("select count(*) from (select file_id, \"index\", count(*) c from segment "
                      "group by file_id, \"index\" having c > 1)").fetchone()[0]
    assert dup == 0
    no_segments = con.execute("select count(*) from audio_file f where not exists "
                              "(select 1 from segment s where s.file_id = f.id)").fetchone()[0]
    assert no_segments == 0

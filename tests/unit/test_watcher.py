"""The watcher: create, modify, move and delete show up; roots can vanish and come back."""

import os
import shutil
import time

import pytest
import soundfile as sf

from loopmind.library.db import Library
from loopmind.library.indexer import Indexer
from loopmind.library.queries import list_segments
from loopmind.library.watcher import Watcher, watch_in_thread
from fixtures_audio import SR, drum_loop
from tests.unit.test_library import pad_tone


def wait_for(pred, timeout=10.0, step=0.05):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    raise AssertionError("condition not met in time")


def names(lib):
    return {os.path.basename(x["path"]) for x in list_segments(lib)}


@pytest.fixture
def watched(tmp_path):
    root = tmp_path / "watched"
    (root / "Drums").mkdir(parents=True)
    sf.write(root / "Drums" / "first_loop_120bpm.wav", drum_loop(120, 1), SR)
    lib = Library()
    idx = Indexer(lib, workers=1)
    idx.add_folder(root)
    idx.scan()
    w, t = watch_in_thread(idx, settle_s=0.2)
    yield root, lib, w
    w.stop()
    t.join(timeout=5)


def test_dropped_loop_is_listed_quickly(watched, tmp_path):
    root, lib, _ = watched
    staging = tmp_path / "staging.wav"
    sf.write(staging, drum_loop(140, 2, seed=3), SR)
    shutil.copy(staging, root / "Drums" / "new_loop_140bpm.wav")
    elapsed = wait_for(lambda: "new_loop_140bpm.wav" in names(lib))
    # the issue asks for 2 s; CI machines are noisy, so the assertion leaves headroom and the
    # benchmark reports the real figure
    assert elapsed < 6.0


def test_modify_move_delete(watched):
    root, lib, _ = watched
    p = root / "Drums" / "first_loop_120bpm.wav"
    sf.write(p, drum_loop(120, 2, seed=9), SR)  # now 2 bars
    wait_for(lambda: any(x["bars"] and x["bars"] >= 1.9 for x in list_segments(lib)
                         if "first_loop" in x["path"]))
    file_id = [x for x in list_segments(lib) if "first_loop" in x["path"]][0]["file_id"]
    os.rename(p, root / "renamed_120bpm.wav")
    wait_for(lambda: "renamed_120bpm.wav" in names(lib))
    assert [x for x in list_segments(lib) if "renamed" in x["path"]][0]["file_id"] == file_id
    assert "first_loop_120bpm.wav" not in names(lib)
    os.remove(root / "renamed_120bpm.wav")
    wait_for(lambda: "renamed_120bpm.wav" not in names(lib))


def test_half_written_file_waits_for_settle(tmp_path):
    root = tmp_path / "w"
    root.mkdir()
    lib = Library()
    idx = Indexer(lib, workers=1)
    idx.add_folder(root)
    w = Watcher(idx, settle_s=0.3)
    w.start()
    try:
        y = pad_tone(220, 3.0)
        path = root / "pad_slow.wav"
        with sf.SoundFile(path, "w", SR, 1) as f:
            f.write(y[: SR])
            f.flush()
            time.sleep(0.2)
            w.process_once()
            assert "pad_slow.wav" not in names(lib)
            f.write(y[SR:])
        wait_for(lambda: (w.process_once() or True) and "pad_slow.wav" in names(lib))
        seg = [x for x in list_segments(lib) if "pad_slow" in x["path"]][0]
        assert seg["duration_s"] == pytest.approx(3.0, abs=0.05)
    finally:
        w.stop()


def test_folder_removed_and_readded(watched, tmp_path):
    root, lib, _ = watched
    sf.write(root / "Drums" / "second_90bpm.wav", drum_loop(90, 1, seed=5), SR)
    wait_for(lambda: "second_90bpm.wav" in names(lib))
    shutil.move(root, tmp_path / "away")
    wait_for(lambda: not names(lib))
    shutil.move(tmp_path / "away", root)
    wait_for(lambda: {"second_90bpm.wav", "first_loop_120bpm.wav"} <= names(lib))


def test_new_subfolder_with_files(watched, tmp_path):
    root, lib, _ = watched
    pack = tmp_path / "pack"
    (pack / "Loops").mkdir(parents=True)
    sf.write(pack / "Loops" / "pack_loop_100bpm.wav", drum_loop(100, 1, seed=7), SR)
    shutil.move(pack, root / "pack")
    wait_for(lambda: "pack_loop_100bpm.wav" in names(lib))


def test_safe_save_replaces_a_file_in_place(watched):
    """Editors and DAWs save by writing a temporary file and renaming it over the old one
    (a hidden or an unknown-extension name first): the library ends with the new content
    under the old name, one row, no row for the temporary name."""
    root, lib, _ = watched
    p = root / "Drums" / "first_loop_120bpm.wav"
    for tmp_name in (".first_loop_120bpm.wav.sb-1234", "first_loop_120bpm.wav.part"):
        tmp = root / "Drums" / tmp_name
        bars = 2 if tmp_name.startswith(".") else 4
        with open(tmp, "wb") as f:
            sf.write(f, drum_loop(120, bars, seed=bars), SR, format="WAV")
        os.replace(tmp, p)
        wait_for(lambda: [x["bars"] for x in list_segments(lib)
                          if x["path"].endswith("first_loop_120bpm.wav")] == [float(bars)])
        assert names(lib) == {"first_loop_120bpm.wav"}

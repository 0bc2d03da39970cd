"""Bad input: each case is one clear per-file error, the batch goes on, status lists it."""

import json
import os
import subprocess
import sys

import pytest

from fixtures_audio import BAD_FILES, make_bad_files, permissions_enforced
from loopmind.errors import DecodeError
from loopmind.library.audio import decode
from loopmind.library.db import Library
from loopmind.library.indexer import Indexer
from loopmind.library.queries import list_segments, status
from loopmind.library.scanner import walk


@pytest.fixture
def bad(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    return folder, make_bad_files(folder)


def _cases(expect):
    return [k for k, v in BAD_FILES.items() if v.expect == expect]


def test_decoder_outcomes(bad):
    _, files = bad
    for name in _cases("error"):
        if name == "unreadable" and not permissions_enforced():
            continue
        with pytest.raises(DecodeError) as ei:
            decode(files[name], max_duration_s=30 * 60)
        msg = str(ei.value)
        assert "\n" not in msg and msg, name
        if BAD_FILES[name].message:
            assert BAD_FILES[name].message in msg.lower(), (name, msg)
    for name in ("valid", "wav_as_mp3", "multichannel_192k", "non_utf8_name"):
        d = decode(files[name], max_duration_s=30 * 60)
        assert d.duration_s > 0.5, name


def test_truncated_wavs_are_refused(bad):
    # the issue counts a truncated file as bad input: refused, not silently shortened
    _, files = bad
    for name in ("truncated", "truncated_mid_frame"):
        with pytest.raises(DecodeError, match="truncated"):
            decode(files[name])


def test_permission_denied_message(bad, monkeypatch):
    _, files = bad
    if permissions_enforced():
        with pytest.raises(DecodeError, match="permission denied"):
            decode(files["unreadable"])
        return
    # as root, modes are not enforced: make the open fail the way it would for a user
    real_open = open

    def deny(path, *a, **k):
        if os.fspath(path) == os.fspath(files["unreadable"]):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(DecodeError, match="permission denied"):
        decode(files["unreadable"])


def test_directory_symlink_loop_terminates(bad):
    folder, _ = bad
    found = [os.path.basename(f.path) for f in walk(folder)]
    assert found.count("inside_loop.wav") == 1


def test_scan_goes_on_and_status_lists_errors(bad):
    folder, files = bad
    lib = Library()
    idx = Indexer(lib, workers=2)
    idx.add_folder(folder)
    report = idx.scan()
    st = status(lib)
    errored = {os.path.basename(p) for p, _ in st.errors}
    for name in _cases("error"):
        if name == "unreadable" and not permissions_enforced():
            continue
        assert os.path.basename(os.fsdecode(files[name])) in errored, name
    listed = {os.path.basename(x["path"]) for x in list_segments(lib)}
    assert "caf\\xe9_loop.wav" in listed  # printable form of the non-UTF-8 name
    assert any("valid" in n for n in listed)
    assert report.failed == len(st.errors)
    for _, err in st.errors:
        assert "\n" not in err and "Traceback" not in err


def test_analyze_cli_reports_each_and_exits_1(bad):
    folder, _ = bad
    r = subprocess.run([sys.executable, "-m", "loopmind", "analyze", str(folder), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert any("error" in x for x in recs) and any("error" not in x for x in recs)
    assert "Traceback" not in r.stderr

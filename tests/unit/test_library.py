"""The library: scanning, incremental rescans, identity across moves, user values, read-only."""

import hashlib
import os
import shutil
import sqlite3

import numpy as np
import pytest
import soundfile as sf

from fixtures_audio import SR, drum_loop, tone
from loopmind.config import get_settings
from loopmind.library.db import Library
from loopmind.library.indexer import Indexer
from loopmind.library.queries import list_segments, set_user_values, status


def pad_tone(freq, seconds=4.0):
    """A sustained four-partial tone with slow fades (a pad-like sound)."""
    return tone(freq, seconds, harmonics=4, amplitude=0.3, fade_s=0.25)


def write(path, y, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "samples"
    write(root / "Drums" / "beat_120bpm.wav", drum_loop(120, 2))
    write(root / "Drums" / "beat_90bpm.wav", drum_loop(90, 1, seed=1))
    write(root / "Pads" / "pad_A.wav", pad_tone(220.0))
    return root


@pytest.fixture
def indexed(folder):
    """The sample folder, watched and scanned once: (library, indexer, folder)."""
    lib = Library()
    idx = Indexer(lib, workers=1)
    idx.add_folder(folder)
    idx.scan()
    return lib, idx, folder


def checksum_tree(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            st = os.stat(p)
            out[p] = (hashlib.sha256(open(p, "rb").read()).hexdigest(), st.st_mtime_ns,
                      st.st_mode)
    return out


def test_locate_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPMIND_HOME", str(tmp_path / "lm"))
    from loopmind.config import Settings

    s = Settings.from_env()
    for p in s.locations().values():
        assert str(p).startswith(str(tmp_path / "lm"))
    assert s.locations()["songs"] == tmp_path / "lm" / "songs"


def test_songs_go_to_the_songs_folder_not_the_working_directory(tmp_path, monkeypatch):
    """Without --out a song goes to the settings' songs folder (LOOPMIND_HOME/songs, or
    LOOPMIND_SONGS_DIR), never into whatever directory the command ran in."""
    from loopmind.config import Settings, set_settings
    from loopmind.generate.compose import default_out_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPMIND_HOME", str(tmp_path / "lm"))
    set_settings(Settings.from_env())
    assert default_out_dir("dark-trap-seed0") == tmp_path / "lm" / "songs" / "dark-trap-seed0"
    monkeypatch.setenv("LOOPMIND_SONGS_DIR", str(tmp_path / "mysongs"))
    set_settings(Settings.from_env())
    assert default_out_dir("x") == tmp_path / "mysongs" / "x"
    monkeypatch.delenv("LOOPMIND_HOME")
    monkeypatch.delenv("LOOPMIND_SONGS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_MUSIC_DIR", str(tmp_path / "home" / "Music"))
    s = Settings.from_env()
    assert s.songs_path.parent != tmp_path and "LoopMind" in s.songs_path.parts


def test_open_migrates_wal():
    lib = Library()
    db = get_settings().db_path
    con = sqlite3.connect(db)
    assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert {"watched_folder", "audio_file", "segment", "tag", "alembic_version"} <= tables
    lib.close()
    Library().close()  # reopening a current database is a no-op


def test_scan_and_incremental_rescan(folder):
    lib = Library()
    idx = Indexer(lib, workers=1)
    idx.add_folder(folder)
    before = checksum_tree(folder)
    r = idx.scan()
    assert r.indexed == 3 and r.failed == 0, r.errors
    rows = list_segments(lib)
    assert len(rows) >= 3
    loops = [x for x in rows if "beat_120bpm" in x["path"]]
    assert loops[0]["bpm"] == pytest.approx(120, rel=0.02)
    assert loops[0]["kind"] == "loop"
    r2 = idx.scan()
    assert r2.indexed == 0 and r2.unchanged == 3
    # a touched file with the same content is not re-analyzed
    p = folder / "Pads" / "pad_A.wav"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    r3 = idx.scan()
    assert r3.unchanged == 3 and r3.indexed == 0
    # the user's audio is only read
    after = checksum_tree(folder)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert not [p for p in after if p not in before]


def test_pool_scan(folder):
    lib = Library()
    idx = Indexer(lib, workers=2)
    idx.add_folder(folder)
    r = idx.scan()
    assert r.indexed == 3 and r.failed == 0


def _worker_state():
    import sys

    from loopmind.library.analysis import role

    return "loopmind.library.preload" in sys.modules, bool(role._MODELS)


def test_pool_workers_start_with_the_analysis_loaded():
    """The pool's fork server has the analysis modules and the role model loaded, so a new
    worker does not spend its first file on them."""
    from concurrent.futures import ProcessPoolExecutor

    from loopmind.library.pipeline import pool_context

    ctx = pool_context()
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        assert pool.submit(_worker_state).result() == (True, True)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopped_scan_keeps_what_it_stored_and_the_next_one_finishes(folder, workers):
    """The app's quit flag: no new file starts once it is set, the files in flight are
    stored, and the next scan reads the rest (no duplicate, nothing missing)."""
    for i in range(6):
        write(folder / "More" / f"tone_{i}.wav", pad_tone(150.0 + 40 * i, 1.0))
    lib = Library()
    idx = Indexer(lib, workers=workers)
    idx.add_folder(folder)
    done = []
    r = idx.scan(progress=lambda d, t, res: done.append(d), stop=lambda: len(done) >= 3)
    assert r.stopped
    first = r.indexed
    # the first file's result sets the flag; at most the files already in flight follow it
    assert 1 <= first <= 1 + 2 * workers < 9
    r2 = idx.scan()
    assert not r2.stopped and r2.indexed == 9 - first and r2.unchanged == first
    rows = list_segments(lib)
    assert len({x["path"] for x in rows}) == 9
    assert idx.scan(stop=lambda: False).indexed == 0


@pytest.mark.parametrize("legacy", [False, True], ids=["blake3", "legacy-hash"])
def test_move_keeps_identity_tags_and_user_values(indexed, legacy):
    """Also when the row still holds the content hash of the legacy form (BLAKE2b-128)."""
    lib, idx, folder = indexed
    seg = [x for x in list_segments(lib) if "beat_120bpm" in x["path"]][0]
    assert set_user_values(lib, seg["id"], bpm=121.0, role="drumloop", tags=["favourite"])
    if legacy:
        _make_legacy(lib)
    dst = folder / "Moved" / "renamed_groove.wav"
    dst.parent.mkdir()
    shutil.move(folder / "Drums" / "beat_120bpm.wav", dst)
    r = idx.scan()
    assert r.moved == 1 and r.indexed == 0
    moved = [x for x in list_segments(lib) if "renamed_groove" in x["path"]]
    assert len(moved) == 1
    assert moved[0]["id"] == seg["id"] and moved[0]["file_id"] == seg["file_id"]
    assert moved[0]["bpm"] == 121.0 and "favourite" in moved[0]["tags"]


def test_reanalysis_keeps_user_values(indexed):
    lib, idx, folder = indexed
    seg = [x for x in list_segments(lib) if "pad_A" in x["path"]][0]
    set_user_values(lib, seg["id"], key="D minor", tags=["mine"])
    # content changes: the file is re-analyzed, the user's values stay
    write(folder / "Pads" / "pad_A.wav", pad_tone(246.94))
    r = idx.scan()
    assert r.indexed == 1
    again = [x for x in list_segments(lib) if "pad_A" in x["path"]][0]
    assert again["key"] == "D minor" and "mine" in again["tags"]


def test_delete_and_readd(indexed):
    lib, idx, folder = indexed
    seg = [x for x in list_segments(lib) if "beat_90bpm" in x["path"]][0]
    set_user_values(lib, seg["id"], tags=["keeper"])
    keep = (folder / "Drums" / "beat_90bpm.wav").read_bytes()
    os.remove(folder / "Drums" / "beat_90bpm.wav")
    r = idx.scan()
    assert r.missing == 1
    assert not [x for x in list_segments(lib) if "beat_90bpm" in x["path"]]
    (folder / "Drums" / "beat_90bpm.wav").write_bytes(keep)
    idx.scan()
    back = [x for x in list_segments(lib) if "beat_90bpm" in x["path"]]
    assert back and back[0]["file_id"] == seg["file_id"] and "keeper" in back[0]["tags"]


def test_missing_folder_is_reported_not_fatal(indexed, tmp_path):
    lib, idx, folder = indexed
    shutil.move(folder, tmp_path / "elsewhere")
    r = idx.scan()
    assert r.warnings and "folder not found" in r.warnings[0]
    assert status(lib).segments == 0
    shutil.move(tmp_path / "elsewhere", folder)
    idx.scan()
    assert status(lib).segments >= 3


def test_indexer_lock_is_exclusive():
    from loopmind.errors import LibraryError

    lib = Library()
    with lib.indexer_lock():
        other = Library()
        with pytest.raises(LibraryError, match="another LoopMind indexer"):
            with other.indexer_lock():
                pass


def test_full_disk_is_one_clear_error_and_nothing_is_lost(indexed):
    from sqlalchemy import event

    from loopmind.errors import LibraryError

    lib, idx, folder = indexed
    before = list_segments(lib)
    # more files arrive, then the disk fills up: SQLite answers SQLITE_FULL
    for i in range(12):
        write(folder / "More" / f"extra_loop_with_a_long_name_{i:02d}_100bpm.wav",
              drum_loop(100, 1, seed=20 + i))
    with lib.engine.connect() as conn:
        pages = conn.exec_driver_sql("pragma page_count").scalar()
    lib.engine.dispose()
    event.listen(lib.engine, "connect",
                 lambda c, _r: c.execute(f"pragma max_page_count = {pages}"))
    with pytest.raises(LibraryError, match="full"):
        idx.scan()
    # what was there before is intact, and a later scan (disk freed) completes the job
    # (files stored before the disk filled up stay stored: each file is its own transaction)
    lib2 = Library()
    during = list_segments(lib2)
    assert {r["id"]: r["path"] for r in before}.items() <= {r["id"]: r["path"] for r in during}.items()
    assert len({x["path"] for x in during}) < 3 + 12
    r = Indexer(lib2, workers=1).scan()
    assert r.failed == 0 and r.indexed > 0
    assert len({x["path"] for x in list_segments(lib2)}) == 3 + 12


def _table_dump(db_path):
    """Every row of the tables a scan writes (audio_file without its timestamp), in id order."""
    con = sqlite3.connect(db_path)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(audio_file)") if r[1] != "indexed_at"]
        out = {"audio_file": con.execute(
            f"SELECT {', '.join(cols)} FROM audio_file ORDER BY id").fetchall()}
        for table in ("segment", "tag", "vector_log"):
            out[table] = con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        out["segment_text"] = con.execute(
            "SELECT rowid, name, folder, tags, facets FROM segment_text ORDER BY rowid").fetchall()
        out["stamps"] = con.execute("SELECT indexed_at FROM audio_file").fetchall()
        return out
    finally:
        con.close()


def test_new_file_fast_path_writes_what_the_orm_path_writes(folder, tmp_path, monkeypatch):
    """A never-seen file is stored with plain DB-API inserts; the rows (segments, tags, text
    index, vector log) must be exactly what the general ORM path writes."""
    from dataclasses import replace

    from loopmind.config import Settings, set_settings
    from loopmind.library import store
    from loopmind.library.pipeline import process_file

    write(folder / "Bass" / "808 Dark_Fm_140.wav", tone(43.65, 1.5, harmonics=3))
    paths = sorted(str(p) for p in folder.rglob("*.wav"))
    results = [process_file(p, embedder_name="features") for p in paths]
    assert all(r.error is None and r.segments for r in results)
    dumps = []
    for mode in ("fast", "orm"):
        settings = Settings.from_env({"LOOPMIND_HOME": str(tmp_path / mode)})
        set_settings(settings)
        if mode == "orm":
            monkeypatch.setattr(store, "_insert_new", lambda *a, **k: None)
        lib = Library(settings)
        with lib.write() as session:
            from loopmind.library.models import WatchedFolder
            session.add(WatchedFolder(path=str(folder)))
        outcomes = [store.store_result(lib, r) for r in results]
        assert [o.action for o in outcomes] == ["indexed"] * len(results)
        # a re-store of the same results takes the general path (the file is known)
        assert store.store_result(lib, replace(results[0])).action == "indexed"
        lib.close()
        dumps.append(_table_dump(settings.db_path))
    fast, orm = dumps
    for table in ("audio_file", "segment", "tag", "vector_log", "segment_text"):
        assert fast[table] == orm[table], table
    assert fast["audio_file"][0][3] is not None  # folder_id found
    assert any("808" in row[1] for row in fast["segment_text"])
    # the timestamps are stored in the same format, so the ORM reads them back
    assert len(fast["stamps"][0][0]) == len(orm["stamps"][0][0])
    set_settings(Settings.from_env({"LOOPMIND_HOME": str(tmp_path / "fast")}))
    lib = Library()
    with lib.session() as session:
        from sqlmodel import select

        from loopmind.library.models import AudioFile
        rows = session.exec(select(AudioFile)).all()
        assert all(r.indexed_at.year >= 2026 for r in rows)
    lib.close()


@pytest.mark.parametrize("size", [0, 1, 1000, (1 << 20) + 17])
def test_file_hash_is_blake3_of_the_content(tmp_path, size):
    """The content hash is BLAKE3-256 of the bytes; the legacy one BLAKE2b-128, and
    content_matches checks a stored hash of either form in one read."""
    from blake3 import blake3

    from loopmind.library.pipeline import (content_matches, file_hash, is_legacy_hash,
                                           legacy_file_hash)

    data = os.urandom(size)
    path = tmp_path / "x.wav"
    path.write_bytes(data)
    new, old = blake3(data).hexdigest(), hashlib.blake2b(data, digest_size=16).hexdigest()
    assert file_hash(path) == new and file_hash(str(path)) == new
    assert legacy_file_hash(path) == old
    assert is_legacy_hash(old) and not is_legacy_hash(new) and not is_legacy_hash(None)
    assert content_matches(path, old) == (new, True)
    assert content_matches(path, new) == (new, True)
    assert content_matches(path, None) == (new, False)
    other = hashlib.blake2b(data + b"x", digest_size=16).hexdigest()
    assert content_matches(path, other) == (new, False)
    # the same from the bytes a caller read whole (a plain WAV's image): nothing is read
    path.unlink()
    for stored, same in ((old, True), (new, True), (None, False), (other, False)):
        assert content_matches(path, stored, data=data) == (new, same)


def test_a_wav_read_whole_is_hashed_from_the_bytes_it_was_decoded_from(tmp_path):
    """process_file reads a small plain WAV once: its content hash is still the file's,
    and a known hash (of either form) still skips the analysis."""
    from loopmind.library.audio import read_wav_image
    from loopmind.library.pipeline import file_hash, legacy_file_hash, process_file

    path = tmp_path / "loop.wav"
    sf.write(path, np.random.default_rng(3).uniform(-0.5, 0.5, (22050, 2)), 22050)
    assert read_wav_image(path) is not None
    first = process_file(str(path))
    assert first.error is None and first.segments and first.content_hash == file_hash(path)
    for known in (file_hash(path), legacy_file_hash(path)):
        again = process_file(str(path), known_hash=known)
        assert again.unchanged and not again.segments
        assert again.content_hash == file_hash(path)


def _make_legacy(lib):
    """Rewrite every stored content hash in the legacy form (a library indexed before the
    hash became BLAKE3)."""
    from sqlmodel import select

    from loopmind.library.models import AudioFile
    from loopmind.library.pipeline import legacy_file_hash

    with lib.write() as session:
        for row in session.exec(select(AudioFile)).all():
            row.content_hash = legacy_file_hash(os.fsdecode(row.path_bytes))
            session.add(row)


def _hashes(lib):
    from sqlmodel import select

    from loopmind.library.models import AudioFile

    with lib.session() as session:
        return {os.path.basename(r.path): r.content_hash
                for r in session.exec(select(AudioFile)).all()}


def test_legacy_hashes_are_replaced_by_a_scan_without_reanalysis(indexed):
    from loopmind.library.pipeline import file_hash

    lib, idx, folder = indexed
    _make_legacy(lib)
    assert all(len(h) == 32 for h in _hashes(lib).values())
    r = idx.scan()
    assert r.rehashed == 3 and r.indexed == 0 and r.unchanged == 3
    hashes = _hashes(lib)
    assert hashes["pad_A.wav"] == file_hash(folder / "Pads" / "pad_A.wav")
    assert all(len(h) == 64 for h in hashes.values())
    assert idx.scan().rehashed == 0


def test_a_missing_row_with_a_legacy_hash_is_found_again_by_its_content(indexed):
    """The store's own move check (a file that comes back at another path after its row was
    marked missing) compares a legacy hash with the legacy algorithm."""
    from loopmind.library import store
    from loopmind.library.pipeline import process_file

    lib, idx, folder = indexed
    seg = [x for x in list_segments(lib) if "pad_A" in x["path"]][0]
    src = folder / "Pads" / "pad_A.wav"
    data = src.read_bytes()
    os.remove(src)
    assert idx.scan().missing == 1
    from loopmind.library.models import AudioFile
    from loopmind.library.pipeline import legacy_file_hash

    back = folder / "Elsewhere" / "pad_again.wav"
    back.parent.mkdir()
    back.write_bytes(data)
    with lib.write() as session:
        row = session.get(AudioFile, seg["file_id"])
        assert row.status == "missing"
        row.content_hash = legacy_file_hash(back)
        session.add(row)
    out = store.store_result(lib, process_file(str(back), sr=22050))
    assert out.action == "moved" and out.file_id == seg["file_id"]


def test_an_unchanged_file_with_a_legacy_known_hash_is_not_analyzed(tmp_path):
    from loopmind.library.pipeline import file_hash, legacy_file_hash, process_file

    path = write(tmp_path / "pad.wav", pad_tone(220.0))
    r = process_file(str(path), known_hash=legacy_file_hash(path), sr=22050)
    assert r.unchanged and not r.segments and r.content_hash == file_hash(path)
    r = process_file(str(path), known_hash="0" * 32, sr=22050)
    assert not r.unchanged and r.segments and r.content_hash == file_hash(path)

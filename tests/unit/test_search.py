"""Search: compatibility rules, query parsing, text search, similar, fits, the vector index's
life (incremental updates, corrupt and stale files), and bad input."""

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from loopmind.config import Settings, set_settings
from loopmind.index.search import (Filters, SearchError, compatible_keys, keys_compatible,
                                   parse_bpm_range, parse_query, stretch_ratio,
                                   tempo_reachable)

# -- pure rules ----------------------------------------------------------------------------


def test_compatible_keys_are_relative_and_fifths():
    ks = compatible_keys("F minor")
    assert {"F minor", "Ab major", "C minor", "Bb minor"} <= ks
    assert "F# minor" not in ks and "E major" not in ks and len(ks) == 6
    assert keys_compatible("A minor", "C major")
    assert not keys_compatible("A minor", "F# major")
    assert keys_compatible(None, "C major")  # drums fit every key


@pytest.mark.parametrize("src,dst,ok", [
    (140, 140, True), (120, 140, True), (112, 140, True), (100, 140, False),
    (70, 140, True),    # read at double time
    (174, 87, True),    # half time
    (90, 128, False),
])
def test_tempo_reachable(src, dst, ok):
    assert tempo_reachable(src, dst) is ok
    r = stretch_ratio(src, dst)
    assert (r is not None) is ok
    if r is not None:
        assert 0.8 <= r <= 1.25


def test_parse_bpm_range():
    assert parse_bpm_range("120-140") == (120, 140)
    assert parse_bpm_range("128") == (127.5, 128.5)
    for bad in ("300-20", "fast", "1000-2000"):
        with pytest.raises(SearchError):
            parse_bpm_range(bad)


def test_parse_query_reads_tempo_and_key_and_keeps_808():
    t = parse_query("dark 808 140 F minor")
    assert t.words == ["dark", "808"] and t.bpm == 140 and t.key == "F minor"
    t = parse_query("kick 909")
    assert t.words == ["kick", "909"] and t.bpm is None
    t = parse_query("pad Fm 90bpm")
    assert t.key == "F minor" and t.bpm == 90 and t.words == ["pad"]
    assert parse_query("!!! ???").words == []


# -- on an indexed library ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def searchable(indexed_demo):
    """The indexed demo library with its vector index: (library, catalog, root)."""
    from loopmind.index.catalog import Catalog

    lib, root = indexed_demo
    cat = Catalog(lib)
    cat.vectors()
    return lib, cat, root


@pytest.fixture
def searcher(searchable):
    from loopmind.index.search import Searcher

    lib, cat, _ = searchable
    return Searcher(lib, cat)


def _ids_by_name(lib):
    from loopmind.library.queries import list_segments

    return {os.path.basename(r["path"]): r for r in list_segments(lib)}


def test_text_search_names_folders_tags(searcher):
    res = searcher.search("kick")
    assert res.hits and all("kick" in (h.path.lower() + " ".join(h.tags) + (h.role or ""))
                            for h in res.hits)
    # a tempo and a key in the query become filters
    res = searcher.search("pad F minor")
    assert res.hits and all(h.key == "F minor" for h in res.hits)
    res = searcher.search("drums 140")
    assert res.hits and all(abs(h.bpm - 140) < 5 for h in res.hits)
    # folder words: the hi-hats live in Drums/HiHats
    assert searcher.search("hihats").hits


def test_search_partial_match_and_empty_reasons(searcher):
    res = searcher.search("kick zzzzunknownword")
    assert res.hits and res.notes  # partial matches, with a note saying so
    res = searcher.search("zzzzunknownword")
    assert not res.hits and "no sound matches" in res.reason
    res = searcher.search("?!?")
    assert not res.hits and "nothing to search for" in res.reason
    res = searcher.search("pad", filters=Filters(bpm=(300, 310)))
    assert not res.hits and res.reason


def test_search_filters_role_kind_folder(searcher, searchable):
    _, _, root = searchable
    res = searcher.search("", filters=Filters(role="bass"))
    assert res.hits and all(h.role == "bass" for h in res.hits)
    res = searcher.search("", filters=Filters(kind="oneshot"), limit=200)
    assert res.hits and all(h.kind == "oneshot" for h in res.hits)
    res = searcher.search("", filters=Filters(folder=str(root / "Pads")), limit=200)
    assert res.hits and all("/Pads/" in h.path for h in res.hits)


def test_similar_by_id_prefers_same_role(searcher, searchable):
    lib, _, _ = searchable
    by_name = _ids_by_name(lib)
    kick = by_name["kick_punchy_01.wav"]
    res = searcher.similar(kick["id"], k=5)
    assert len(res.hits) == 5 and kick["id"] not in [h.id for h in res.hits]
    assert sum(h.role == "kick" for h in res.hits) >= 3
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)


def test_similar_with_compatible_filter(searcher, searchable):
    lib, _, _ = searchable
    pad = _ids_by_name(lib)["pad_Fmin_140bpm.flac"]
    res = searcher.similar(pad["id"], k=10, filters=Filters(compatible=True))
    assert res.hits
    for h in res.hits:
        assert keys_compatible(pad["key"], h.key)
        assert tempo_reachable(h.bpm, pad["bpm"])


def test_similar_path_outside_library(searcher, tmp_path, demo_library):
    from fixtures_audio import drum_hit, write_audio

    p = tmp_path / "my_new_kick.wav"
    write_audio(p, drum_hit("kick_dark", seed=99))
    res = searcher.similar(str(p), k=5)
    assert sum(h.role == "kick" for h in res.hits) >= 3


def test_similar_bad_input(searcher, tmp_path):
    with pytest.raises(SearchError):
        searcher.similar(999999)
    with pytest.raises(SearchError):
        searcher.similar(str(tmp_path / "nope.wav"))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    from loopmind.errors import LoopMindError
    with pytest.raises(LoopMindError):
        searcher.similar(str(bad))


def test_fits_adds_missing_roles_in_key_and_tempo(searcher, searchable):
    lib, _, _ = searchable
    by_name = _ids_by_name(lib)
    chosen = [by_name["trap_drums_140bpm_01.wav"], by_name["pad_Fmin_140bpm.flac"]]
    res = searcher.fits([c["id"] for c in chosen], k=8)
    assert res.hits
    roles = [h.role for h in res.hits]
    assert "pad" not in roles and "drumloop" not in roles
    assert len(set(roles)) >= 2  # interleaved roles, not one role eight times
    for h in res.hits:
        assert keys_compatible("F minor", h.key)
        if h.kind == "loop":
            assert tempo_reachable(h.bpm, 140)
        assert h.why
    with pytest.raises(SearchError):
        searcher.fits([])


# -- the vector index's life ---------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    """A small private library (the test may change it): (library, catalog, folder)."""
    from fixtures_audio import make_audio_folder

    from loopmind.index.catalog import Catalog
    from loopmind.library.db import Library
    from loopmind.library.indexer import Indexer

    folder = tmp_path / "samples"
    make_audio_folder(folder)
    lib = Library()
    idx = Indexer(lib, workers=1)
    idx.add_folder(folder)
    idx.scan()
    return lib, Catalog(lib), folder, idx


def _live_ids(lib):
    from loopmind.library.queries import list_segments

    return {r["id"] for r in list_segments(lib)}


def test_vectors_follow_adds_changes_and_deletes(small):
    from fixtures_audio import drum_hit, write_audio

    lib, cat, folder, idx = small
    assert set(cat.vectors().ids().tolist()) == _live_ids(lib)
    p = folder / "new_kick.wav"
    write_audio(p, drum_hit("kick_soft", seed=5))
    idx.index_file(str(p))
    assert set(cat.vectors().ids().tolist()) == _live_ids(lib)  # an add
    victim = next(f for f in folder.rglob("*.wav") if f.name != "new_kick.wav")
    victim.unlink()
    idx.scan()
    assert set(cat.vectors().ids().tolist()) == _live_ids(lib)  # a delete
    cat.save()
    # a fresh process loads the saved file and replays only what changed since
    from loopmind.index.catalog import Catalog

    write_audio(folder / "another.wav", drum_hit("snare_fat", seed=6))
    idx.scan()
    again = Catalog(lib)
    assert set(again.vectors().ids().tolist()) == _live_ids(lib)


def test_corrupt_index_is_rebuilt_with_message(small):
    from loopmind.index.catalog import Catalog

    lib, cat, _, _ = small
    cat.vectors()
    cat._dirty = 1
    cat.save()
    path = lib.settings.vectors_path
    path.write_bytes(b"\x00garbage" * 10)
    messages = []
    fresh = Catalog(lib, on_message=messages.append)
    assert set(fresh.vectors().ids().tolist()) == _live_ids(lib)
    assert messages and ("rebuil" in messages[0])


def test_stale_index_is_rebuilt(small):
    """An index saved before files changed, whose log was compacted, is caught by the id
    check and rebuilt."""
    from sqlalchemy import text

    from loopmind.index.catalog import Catalog

    lib, cat, folder, idx = small
    cat.vectors()
    cat._dirty = 1
    cat.save()
    next(folder.rglob("*.wav")).unlink()
    idx.scan()
    with lib.write() as s:
        s.execute(text("DELETE FROM vector_log"))  # as if compacted by another process
    messages = []
    fresh = Catalog(lib, on_message=messages.append)
    assert set(fresh.vectors().ids().tolist()) == _live_ids(lib)
    assert messages


def test_switching_embedder_reembeds(small, monkeypatch):
    """Vectors from another embedder are stale: `reembed` recomputes them, one file at a
    time, and the index only ever holds the current embedder's vectors."""
    from sqlalchemy import text

    from loopmind.index.catalog import Catalog

    lib, cat, _, _ = small
    with lib.write() as s:
        s.execute(text("UPDATE segment SET embedder = 'old/0'"))
    fresh = Catalog(lib)
    assert fresh.stale_count() == len(_live_ids(lib))
    assert len(fresh.vectors()) == 0
    assert fresh.reembed() == len(_live_ids(lib))
    assert fresh.stale_count() == 0
    assert set(fresh.vectors().ids().tolist()) == _live_ids(lib)


# -- the commands ----------------------------------------------------------------------------


def _cli(*args):
    from loopmind.cli import main

    set_settings(None)
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_search_similar_fits_json(audio_folder):
    r = _cli("add", str(audio_folder))
    assert r.exit_code == 0, r.output
    r = _cli("search", "kick", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert doc["count"] >= 1
    sid = doc["results"][0]["id"]
    r = _cli("similar", str(sid), "-k", "3", "--json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["results"]) == 3
    r = _cli("fits", str(sid), "--json")
    assert r.exit_code == 0, r.output
    r = _cli("search", "kick")  # the readable table
    assert r.exit_code == 0 and "kick" in r.output.lower()


@pytest.mark.parametrize("args,text", [
    (["similar", "424242"], "no segment with id"),
    (["similar", "/no/such/file.wav"], "not a segment id or an existing file"),
    (["search", "pad", "--bpm", "300-20"], "range is empty"),
    (["search", "pad", "--key", "H major"], "not a key"),
])
def test_cli_bad_input_is_one_line(audio_folder, args, text):
    _cli("add", str(audio_folder))
    r = _cli(*args)
    assert r.exit_code != 0
    assert text in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_cli_empty_library_and_punctuation():
    r = _cli("search", "kick")
    assert r.exit_code == 0 and "library is empty" in r.output
    r = _cli("search", "...")
    assert r.exit_code == 0 and "nothing to search for" in r.output


def test_filter_cache_follows_user_edits(small):
    """A filtered search caches its candidate set; a role set by hand must show up at once."""
    from loopmind.index.search import Searcher
    from loopmind.library.queries import list_segments, set_user_values

    lib, cat, _, _ = small
    s = Searcher(lib, cat)
    rows = list_segments(lib)
    target = rows[0]
    others = [r for r in rows if r["id"] != target["id"]]
    victim = next(r for r in others if r["role"] != "vocal")
    before = s.similar(target["id"], k=5, filters=Filters(role="vocal"))
    assert victim["id"] not in [h.id for h in before.hits]
    from loopmind.index.search import _sql_filters

    where, params = _sql_filters(Filters(role="vocal"))
    with lib.engine.connect() as conn:
        cached = s._allowed(conn, where, params)
    assert victim["id"] not in cached
    set_user_values(lib, victim["id"], role="vocal")
    with lib.engine.connect() as conn:
        assert victim["id"] in s._allowed(conn, where, params)
    after = s.similar(target["id"], k=5, filters=Filters(role="vocal"))
    assert victim["id"] in [h.id for h in after.hits]


def test_cli_dupes_finds_exact_and_near_copies(tmp_path):
    """`loopmind dupes`: a byte copy is an exact duplicate; a quieter copy is a near one."""
    import soundfile as sf

    from fixtures_audio import drum_loop, write_audio

    folder = tmp_path / "pack"
    folder.mkdir()
    y = drum_loop(120, 2)
    write_audio(folder / "beat_120bpm.wav", y)
    (folder / "beat_120bpm copy.wav").write_bytes((folder / "beat_120bpm.wav").read_bytes())
    sf.write(folder / "beat_quiet.wav", y * 0.5, 44100)
    write_audio(folder / "other_90bpm.wav", drum_loop(90, 1, seed=3))
    assert _cli("add", str(folder)).exit_code == 0
    r = _cli("dupes", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    text = json.dumps(doc)
    assert "beat_120bpm copy.wav" in text and "beat_quiet.wav" in text
    assert "other_90bpm.wav" not in text
    r = _cli("dupes")
    assert r.exit_code == 0 and "beat_quiet.wav" in r.output


def test_text_search_role_filter_is_exact_after_user_edits(small):
    """A role filter narrows the full-text match by the role word of the tags column; the
    role the user set must count, and a user tag that spells a role must not."""
    import os as _os

    from loopmind.index.search import Searcher
    from loopmind.library.queries import list_segments, set_user_values

    lib, cat, _, _ = small
    s = Searcher(lib, cat)
    rows = list_segments(lib)
    target = rows[0]
    word = _os.path.splitext(_os.path.basename(target["path"]))[0].split("_")[0].lower()
    other_role = next(r for r in ("vocal", "guitar", "strings") if r != target["role"])
    assert target["id"] not in [h.id for h in s.search(word, filters=Filters(
        role=other_role), limit=200).hits]
    set_user_values(lib, target["id"], role=other_role)
    hits = s.search(word, filters=Filters(role=other_role), limit=200).hits
    assert target["id"] in [h.id for h in hits]
    assert all(h.role == other_role for h in hits)
    # a user tag that spells a role is a word to find, not the role
    tagged = next(r for r in rows if r["id"] != target["id"] and r["role"] != "fx")
    set_user_values(lib, tagged["id"], tags=["fx"])
    assert tagged["id"] not in [h.id for h in s.search("fx", filters=Filters(
        role="fx"), limit=500).hits]
    assert tagged["id"] in [h.id for h in s.search("fx", limit=500).hits]


# -- facets: filters inside the full-text match ----------------------------------------------


def test_bpm_tokens_are_a_superset_of_the_range():
    """Every tempo inside a filter's range carries one of the range's tokens (so the
    full-text narrowing never drops a row the SQL filter would keep)."""
    from loopmind.library.textindex import bpm_tokens, facet_text

    rng = np.random.default_rng(0)
    for _ in range(300):
        lo = float(rng.uniform(40, 250))
        hi = lo + float(rng.choice([0.0, 0.5, 3.0, 12.0, 90.0]))
        toks = set(bpm_tokens([(lo, hi)]))
        for bpm in np.linspace(lo, hi, 7):
            carried = set(facet_text("bass", "loop", "F minor", float(bpm)).split())
            assert carried & toks, (lo, hi, bpm, toks)
    assert bpm_tokens([(120, 125)]) == [f"bpm{b}" for b in range(120, 126)]
    assert bpm_tokens([(60, 200)])[0] == "bpmd6"  # wide: spelled in tens
    assert "bpmnone" in bpm_tokens([(100, 110)], none=True)
    assert facet_text(None, "oneshot", None, None).split() == [
        "rolenone", "kindoneshot", "keynone", "bpmnone", "bpmdnone"]
    assert "keyfsharpminor" in facet_text("pad", "loop", "F# minor", 90.0)


def _ids_by(searcher_, query, filters, share, monkeypatch):
    import loopmind.index.search as search_mod

    monkeypatch.setattr(search_mod, "FACET_SHARE", share)
    found = searcher_.search_ids(query, filters=filters, limit=15)
    return found.ids


def test_facet_narrowing_gives_the_same_results(searchable, monkeypatch):
    """Text search with the filters inside the full-text match (every facet on) returns the
    same sounds in the same order as with the filters in SQL alone (every facet off)."""
    from collections import Counter

    from loopmind.index.search import Searcher
    from loopmind.library.queries import list_segments

    lib, cat, _ = searchable
    rows = list_segments(lib)
    key = Counter(r["key"] for r in rows if r["key"]).most_common(1)[0][0]
    bpm = next(r["bpm"] for r in rows if r["kind"] == "loop" and r["bpm"])
    filters = [Filters(role="bass"), Filters(kind="oneshot"), Filters(key=key),
               Filters(bpm=(bpm - 2.5, bpm + 2.5)), Filters(key=key, compatible=True),
               Filters(bpm=(bpm, bpm), compatible=True), Filters(role="kick", bpm=(60, 200)),
               Filters(kind="loop", key=key)]
    s = Searcher(lib, cat)
    narrowed = 0
    for f in filters:
        with lib.engine.connect() as conn:
            from loopmind.index.search import facet_groups

            import loopmind.index.search as search_mod
            monkeypatch.setattr(search_mod, "FACET_SHARE", 1.0)
            clause, _ = s._facet_clause(conn, *facet_groups(f))
            assert clause.startswith("facets : ("), f
        for q in ("kick", "bass", "dark", "pad chords", "loop", "drum"):
            with_facets = _ids_by(s, q, f, 1.0, monkeypatch)
            without = _ids_by(s, q, f, 0.0, monkeypatch)
            assert with_facets == without, (q, f)
            narrowed += bool(with_facets)
    assert narrowed >= 10  # the comparison is not between empty lists


def test_facets_follow_user_key_and_tempo(small, monkeypatch):
    """A key or tempo set by hand is what the facets carry at once."""
    import loopmind.index.search as search_mod
    from loopmind.index.search import Searcher
    from loopmind.library.queries import list_segments, set_user_values

    monkeypatch.setattr(search_mod, "FACET_SHARE", 1.0)
    lib, cat, _, _ = small
    s = Searcher(lib, cat)
    target = list_segments(lib)[0]
    word = os.path.splitext(os.path.basename(target["path"]))[0].split("_")[0].lower()
    f_key, f_bpm = Filters(key="F# major"), Filters(bpm=(173.0, 173.5))
    assert target["id"] not in s.search_ids(word, filters=f_key, limit=100).ids
    assert target["id"] not in s.search_ids(word, filters=f_bpm, limit=100).ids
    set_user_values(lib, target["id"], key="F# major", bpm=173.2)
    assert target["id"] in s.search_ids(word, filters=f_key, limit=100).ids
    assert target["id"] in s.search_ids(word, filters=f_bpm, limit=100).ids
    assert target["id"] in s.search_ids(word, filters=Filters(key="F# major", compatible=True),
                                        limit=100).ids


def test_migration_adds_facets_to_an_older_library(tmp_path):
    """A library made at revision 0002 (three text columns) opens with the facets filled."""
    import sqlite3

    from alembic import command

    from loopmind.library import db as db_mod
    from loopmind.library.db import Library

    settings = Settings.from_env({"LOOPMIND_HOME": str(tmp_path / "home")})
    path = settings.db_path
    path.parent.mkdir(parents=True, exist_ok=True)
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    cfg = db_mod._alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    con = sqlite3.connect(path)
    con.execute("INSERT INTO watched_folder (id, path, added_at) VALUES (1, '/x', '2026-01-01')")
    con.execute("INSERT INTO audio_file (id, folder_id, path, path_bytes, size, mtime_ns, "
                "content_hash, status, analysis_version, indexed_at) VALUES (1, 1, "
                "'/x/Bass/deep_bass_140.wav', X'2f782f426173732f646565705f626173735f3134302e776176',"
                " 1, 0, 'h', 'ok', 1, '2026-01-01')")
    con.execute("INSERT INTO segment (id, file_id, \"index\", start_s, end_s, kind, bpm, "
                "bpm_confidence, key, key_confidence, role, role_confidence) VALUES "
                "(7, 1, 0, 0.0, 2.0, 'loop', 140.0, 0.9, 'F minor', 0.9, 'bass', 0.9)")
    con.commit()
    assert [r[1] for r in con.execute("PRAGMA table_info(segment_text)")] == [
        "name", "folder", "tags"]
    con.close()
    engine.dispose()
    lib = Library(settings)
    con = sqlite3.connect(path)
    facets = con.execute("SELECT facets FROM segment_text WHERE rowid = 7").fetchone()[0]
    assert facets.split() == ["rolebass", "kindloop", "keyfminor", "bpm140", "bpmd14"]
    con.close()
    from loopmind.index.search import Searcher

    assert Searcher(lib).search_ids("deep", filters=Filters(key="F minor")).ids == [7]

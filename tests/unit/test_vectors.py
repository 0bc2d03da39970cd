"""The vector index: exact and HNSW search, upsert/remove, filters, files and rebuilds."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

pytest.importorskip("faiss")

from loopmind.errors import LoopMindError  # noqa: E402
from loopmind.index import vectors as vx  # noqa: E402
from loopmind.index.vectors import (IndexFileError, VectorIndex, id_checksum,  # noqa: E402
                                    load_or_rebuild, read_header)

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def brute(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    scores = unit(vectors) @ unit(q)
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(ids[i]) for i in order]


def data(rng: np.random.Generator, n: int, dim: int = DIM, offset: int = 1000):
    ids = np.arange(offset, offset + n, dtype=np.int64) * 3  # not positions
    return ids, rng.standard_normal((n, dim)).astype(np.float32)


def recall_at(index: VectorIndex, vectors, ids, queries, k=10) -> float:
    got = index.search(queries, k)
    hit = 0
    for q, row in zip(queries, got):
        hit += len({i for i, _ in row} & set(brute(vectors, ids, q, k)))
    return hit / (k * len(queries))


@pytest.fixture
def small(rng):
    ids, x = data(rng, 500)
    return ids, x, VectorIndex.build(ids, x, embedder="test", version="1")


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(vx, "HNSW_THRESHOLD", 400)
    monkeypatch.setattr(vx, "EXACT_SUBSET_MAX", 50)


# ---------------------------------------------------------------- exact search

def test_exact_search_matches_numpy(small, rng):
    ids, x, index = small
    assert index.kind == "flat" and len(index) == 500 and index.dim == DIM
    for q in rng.standard_normal((20, DIM)):
        hits = index.search(q, 10)
        assert [i for i, _ in hits] == brute(x, ids, q, 10)
        expected = unit(x) @ unit(q)
        for i, score in hits:
            assert score == pytest.approx(expected[np.flatnonzero(ids == i)[0]], abs=1e-5)
        assert all(a[1] >= b[1] for a, b in zip(hits, hits[1:]))


def test_batch_search_returns_one_list_per_query(small, rng):
    ids, x, index = small
    qs = rng.standard_normal((3, DIM)).astype(np.float32)
    rows = index.search(qs, 5)
    assert len(rows) == 3
    assert [[i for i, _ in r] for r in rows] == [brute(x, ids, q, 5) for q in qs]


def test_query_is_its_own_nearest(small):
    ids, x, index = small
    hits = index.search(x[7] * 5.0, 1)  # scale does not matter: cosine
    assert hits[0][0] == ids[7] and hits[0][1] == pytest.approx(1.0, abs=1e-5)


def test_empty_index_and_odd_k(rng):
    index = VectorIndex.build(np.empty(0, np.int64), np.empty((0, DIM), np.float32),
                              embedder="test", version="1")
    assert len(index) == 0 and index.search(rng.standard_normal(DIM), 10) == []
    assert index.search(rng.standard_normal((2, DIM)), 10) == [[], []]
    assert index.vector(1) is None and 1 not in index
    ids, x = data(rng, 5)
    index.add(ids, x)
    assert len(index.search(x[0], 50)) == 5
    assert index.search(x[0], 0) == []


def test_bad_shapes_are_value_errors(small):
    _, _, index = small
    with pytest.raises(ValueError):
        index.search(np.zeros(DIM + 1), 3)
    with pytest.raises(ValueError):
        index.add([1, 2], np.zeros((3, DIM)))
    with pytest.raises(ValueError):
        index.add([1], np.full((1, DIM), np.nan))


# ---------------------------------------------------------------- upsert and remove

def test_upsert_replaces_and_remove_forgets(small, rng):
    ids, x, index = small
    target = int(ids[3])
    new = rng.standard_normal(DIM).astype(np.float32)
    index.add([target], new[None, :])
    assert len(index) == 500
    np.testing.assert_allclose(index.vector(target), unit(new), atol=1e-6)
    assert index.search(new, 1)[0][0] == target
    x2 = x.copy()
    x2[3] = new

    gone = ids[:50]
    assert index.remove(gone) == 50
    assert index.remove(gone) == 0  # already gone: ignored
    assert len(index) == 450 and int(gone[0]) not in index and int(ids[60]) in index
    assert index.vector(int(gone[1])) is None
    for q in rng.standard_normal((10, DIM)):
        assert [i for i, _ in index.search(q, 10)] == brute(x2[50:], ids[50:], q, 10)
    assert index.checksum == id_checksum(ids[50:])


def test_repeated_id_in_one_batch_keeps_the_last(rng):
    x = rng.standard_normal((3, DIM)).astype(np.float32)
    index = VectorIndex.build([5, 5, 6], x, embedder="t", version="1")
    assert len(index) == 2
    np.testing.assert_allclose(index.vector(5), unit(x[1]), atol=1e-6)


# ---------------------------------------------------------------- filters

def test_allowed_and_exclude(small, rng):
    ids, x, index = small
    allowed = set(int(i) for i in rng.choice(ids, 40, replace=False))
    allowed.add(123456789)  # unknown ids are ignored
    q = rng.standard_normal(DIM)
    hits = index.search(q, 10, allowed=allowed)
    mask = np.isin(ids, list(allowed))
    assert [i for i, _ in hits] == brute(x[mask], ids[mask], q, 10)

    top = brute(x, ids, q, 3)
    hits = index.search(q, 10, exclude={top[0], top[2]})
    assert [i for i, _ in hits] == [i for i in brute(x, ids, q, 12)
                                    if i not in (top[0], top[2])][:10]

    both = index.search(q, 5, allowed=np.array(sorted(allowed)), exclude={min(allowed)})
    assert min(allowed) not in {i for i, _ in both} and {i for i, _ in both} <= allowed
    assert index.search(q, 5, allowed=set()) == []
    assert index.search(q, 5, allowed={999_999_999}) == []


def test_large_allowed_set_on_flat_is_exact(small, rng, monkeypatch):
    monkeypatch.setattr(vx, "EXACT_SUBSET_MAX", 10)
    ids, x, index = small
    allowed = rng.choice(ids, 150, replace=False)
    mask = np.isin(ids, allowed)
    for q in rng.standard_normal((5, DIM)):
        got = [i for i, _ in index.search(q, 10, allowed=allowed)]
        assert got == brute(x[mask], ids[mask], q, 10)


# ---------------------------------------------------------------- HNSW

def test_switches_to_hnsw_above_threshold_with_good_recall(rng, low_threshold):
    ids, x = data(rng, 2000)
    index = VectorIndex.build(ids[:300], x[:300], embedder="t", version="1")
    assert index.kind == "flat"
    index.add(ids[300:], x[300:])  # crosses the threshold
    assert index.kind == "hnsw" and len(index) == 2000
    queries = rng.standard_normal((100, DIM)).astype(np.float32)
    assert recall_at(index, x, ids, queries) >= 0.95
    assert VectorIndex.build(ids, x, embedder="t", version="1").kind == "hnsw"


def test_hnsw_tombstones_filters_and_rebuild(rng, low_threshold, monkeypatch):
    monkeypatch.setattr(vx, "TOMBSTONE_REBUILD_FRACTION", 0.25)
    ids, x = data(rng, 2000)
    index = VectorIndex.build(ids, x, embedder="t", version="1")
    assert index.kind == "hnsw"

    # upsert: the old vector is a tombstone, the new one is found
    new = rng.standard_normal((10, DIM)).astype(np.float32)
    index.add(ids[:10], new)
    x = x.copy()
    x[:10] = new
    assert index.tombstones == 10 and len(index) == 2000
    for j in range(10):
        assert index.search(new[j], 1)[0][0] == ids[j]

    # remove: never returned again, exactly as if gone
    removed = ids[10:300]
    index.remove(removed)
    assert index.tombstones == 300 and len(index) == 1710
    keep = ~np.isin(ids, removed)
    queries = rng.standard_normal((50, DIM)).astype(np.float32)
    for row in index.search(queries, 10):
        assert not {i for i, _ in row} & set(removed.tolist())
    assert recall_at(index, x[keep], ids[keep], queries) >= 0.95

    # filters on HNSW: a small allowed set is exact, a large one goes through the selector
    for size in (30, 900):
        allowed = rng.choice(ids[keep], size, replace=False)
        m = np.isin(ids, allowed)
        got = index.search(queries[:20], 10, allowed=allowed)
        hits = sum(len({i for i, _ in row} & set(brute(x[m], ids[m], q, 10)))
                   for q, row in zip(queries[:20], got))
        assert hits / 200 >= (1.0 if size == 30 else 0.95)
        assert all({i for i, _ in row} <= set(allowed.tolist()) for row in got)
    excl = [i for i, _ in index.search(queries[0], 3)]
    assert not set(excl) & {i for i, _ in index.search(queries[0], 10, exclude=excl)}

    # past the tombstone fraction the graph is rebuilt without them
    index.remove(ids[300:600])
    assert index.tombstones == 0 and index.kind == "hnsw" and len(index) == 1410
    keep = ~np.isin(ids, ids[10:600])
    assert recall_at(index, x[keep], ids[keep], queries) >= 0.95

    # below half the threshold it is flat (exact) again
    index.remove(ids[600:1850])
    assert index.kind == "flat" and len(index) == 160
    keep = ~np.isin(ids, ids[10:1850])
    assert recall_at(index, x[keep], ids[keep], queries) == 1.0


def test_concurrent_add_and_search(rng, low_threshold):
    ids, x = data(rng, 1200)
    index = VectorIndex.build(ids[:100], x[:100], embedder="t", version="1")
    errors: list[BaseException] = []

    def writer():
        try:
            for i in range(100, 1200, 50):
                index.add(ids[i:i + 50], x[i:i + 50])
                index.remove(ids[i - 100:i - 90])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    while t.is_alive():
        index.search(x[0], 5, exclude={int(ids[1])})
    t.join()
    assert not errors
    assert index.kind == "hnsw" and len(index) == 1200 - 220


# ---------------------------------------------------------------- files

@pytest.mark.parametrize("n", [0, 300, 1000])
def test_save_load_round_trip(tmp_path, rng, low_threshold, n):
    ids, x = data(rng, n)
    index = VectorIndex.build(ids, x, embedder="clap", version="2")
    if n:
        index.remove(ids[:5])
    path = tmp_path / "index" / "vectors.faiss"
    index.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["vectors.faiss"]  # no temp left
    header = read_header(path)
    assert header["embedder"] == "clap" and header["version"] == "2"
    assert header["count"] == len(index) and header["checksum"] == id_checksum(ids[5:])
    loaded = VectorIndex.load(path)
    assert (loaded.kind, len(loaded), loaded.dim, loaded.embedder, loaded.version) == \
        (index.kind, len(index), DIM, "clap", "2")
    assert loaded.tombstones == index.tombstones
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for q in rng.standard_normal((5, DIM)):
        assert loaded.search(q, 10) == index.search(q, 10)
    if n:
        np.testing.assert_array_equal(loaded.vector(int(ids[9])), index.vector(int(ids[9])))


def test_save_is_atomic_when_writing_fails(tmp_path, small, rng, monkeypatch):
    import faiss

    ids, x, index = small
    path = tmp_path / "vectors.faiss"
    index.save(path)
    before = path.read_bytes()
    index.remove(ids[:100])

    def fail_midway(idx, writer):  # the header and labels are already in the temp file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", fail_midway)
    with pytest.raises(IndexFileError, match="No space left"):
        index.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["vectors.faiss"]
    assert len(VectorIndex.load(path)) == 500


def test_save_into_unwritable_place_is_one_line(tmp_path, small):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LoopMindError) as err:
        small[2].save(blocker / "vectors.faiss")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty", "header"])
def test_damaged_files_are_detected(tmp_path, small, damage):
    path = tmp_path / "vectors.faiss"
    small[2].save(path)
    raw = bytearray(path.read_bytes())
    if damage == "garbage":
        raw = bytearray(np.random.default_rng(1).bytes(len(raw)))
    elif damage == "truncated":
        raw = raw[: len(raw) * 2 // 3]
    elif damage == "flipped":
        raw[len(raw) // 2] ^= 0xFF
    elif damage == "empty":
        raw = bytearray()
    else:
        raw[20:30] = b"#" * 10
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexFileError) as err:
        VectorIndex.load(path)
    assert isinstance(err.value, LoopMindError) and isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)


def test_faiss_payload_error_after_valid_checksum_is_caught(tmp_path, small, monkeypatch):
    import faiss

    path = tmp_path / "vectors.faiss"
    small[2].save(path)

    def boom(_reader):
        raise RuntimeError("Error in read_index\nIndex type 0x6761 not recognized")

    monkeypatch.setattr(faiss, "read_index", boom)
    with pytest.raises(IndexFileError, match="not recognized"):
        VectorIndex.load(path)


def test_missing_file_is_index_file_error(tmp_path):
    with pytest.raises(IndexFileError, match="not found"):
        VectorIndex.load(tmp_path / "nope.faiss")


# ---------------------------------------------------------------- load_or_rebuild

class Source:
    """Stands in for SQLite: counts fetches."""

    def __init__(self, ids, x):
        self.ids, self.x, self.calls = ids, x, 0

    def __call__(self):
        self.calls += 1
        return self.ids, self.x


def test_load_or_rebuild_paths(tmp_path, rng):
    ids, x = data(rng, 200)
    src = Source(ids, x)
    path = tmp_path / "index" / "vectors.faiss"
    messages: list[str] = []
    kw = dict(fetch=src, embedder="clap", version="1", on_message=messages.append)

    index = load_or_rebuild(path, **kw)
    assert len(index) == 200 and path.exists() and src.calls == 1
    assert messages == ["vector index not found; built from the library (200 vectors)"]

    again = load_or_rebuild(path, expected_count=200, expected_checksum=id_checksum(ids),
                            dim=DIM, **kw)
    assert src.calls == 1 and len(again) == 200 and len(messages) == 1  # loaded, quiet

    path.write_bytes(path.read_bytes()[:-100])
    rebuilt = load_or_rebuild(path, **kw)
    assert src.calls == 2 and len(rebuilt) == 200
    assert messages[-1] == "vector index was corrupt; rebuilt from the library (200 vectors)"
    assert len(VectorIndex.load(path)) == 200  # and saved again

    path.write_bytes(b"\x00garbage" * 50)
    load_or_rebuild(path, **kw)
    assert src.calls == 3 and "corrupt" in messages[-1]

    newer = load_or_rebuild(path, **{**kw, "version": "2"})
    assert src.calls == 4 and newer.version == "2"
    assert messages[-1].startswith("vector index was out of date (made with clap 1")
    assert read_header(path)["version"] == "2"

    src.ids, src.x = ids[:150], x[:150]
    stale = load_or_rebuild(path, expected_count=150, **{**kw, "version": "2"})
    assert src.calls == 5 and len(stale) == 150 and "150" in messages[-1]

    # same count, different ids: only the checksum tells
    src.ids = ids[50:]
    src.x = x[50:]
    load_or_rebuild(path, expected_count=150, expected_checksum=id_checksum(ids[50:]),
                    **{**kw, "version": "2"})
    assert src.calls == 6 and "segments differ" in messages[-1]
    assert len(messages) == 6


def test_load_or_rebuild_empty_library_is_quiet(tmp_path):
    messages: list[str] = []
    index = load_or_rebuild(tmp_path / "vectors.faiss",
                            fetch=lambda: (np.empty(0, np.int64), np.empty(0, np.float32)),
                            embedder="clap", version="1", dim=DIM,
                            on_message=messages.append)
    assert len(index) == 0 and index.dim == DIM and messages == []


def test_id_checksum_is_order_independent():
    a = np.array([5, 1, 99, 7], dtype=np.int64)
    assert id_checksum(a) == id_checksum(a[::-1]) == id_checksum({1, 5, 7, 99})
    assert id_checksum(a) != id_checksum(a[:3])
    assert id_checksum([1, 2]) != id_checksum([1, 3])
    assert id_checksum([]) == id_checksum(np.empty(0, np.int64))


def test_faiss_is_not_imported_with_the_module():
    import subprocess
    import sys

    code = "import sys, loopmind.index.vectors; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_bad_batch_changes_nothing(small, rng):
    ids, x, index = small
    before = index.search(x[0], 5)
    bad = rng.standard_normal((3, DIM)).astype(np.float32)
    bad[2, 0] = np.inf
    with pytest.raises(ValueError):
        index.add([ids[0], 1, 2], bad)
    assert len(index) == 500 and 1 not in index and index.search(x[0], 5) == before


@pytest.mark.parametrize("scale", [1, 10**9])  # dense ids (a lookup table), sparse (sorted)
def test_id_map_dense_and_sparse(rng, low_threshold, scale):
    n = 900
    ids = (np.arange(n, dtype=np.int64) + 7) * scale
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    index = VectorIndex.build(ids[:100], x[:100], embedder="t", version="1")
    for i in range(100, n, 100):  # ids keep growing, as SQLite's do
        index.add(ids[i:i + 100], x[i:i + 100])
    assert index.kind == "hnsw" and len(index) == n
    index.add(ids[:5], x[:5] * 2)  # upsert, same directions
    index.remove(ids[5:10])
    assert len(index) == n - 5 and int(ids[6]) not in index and int(ids[3]) in index
    for j in (0, 3, 50, 899):
        assert index.search(x[j], 1)[0][0] == ids[j]
        np.testing.assert_allclose(index.vector(int(ids[j])), unit(x[j]), atol=1e-6)
    far = int(ids[-1]) * 1000 + 1  # forces the dense table to become sorted arrays
    index.add([far], x[:1] * -1)
    assert far in index and index.search(-x[0], 1)[0][0] == far
    assert index.checksum == id_checksum(np.concatenate([ids[:5], ids[10:], [far]]))
    np.testing.assert_array_equal(index.ids(),
                                  np.sort(np.concatenate([ids[:5], ids[10:], [far]])))
    assert -1 not in index and int(ids[7]) not in index and "x" not in index

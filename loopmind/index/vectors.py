"""The vector index: FAISS over L2-normalized embeddings, keyed by segment id.

SQLite is the source of truth (``Segment.embedding``); this index is a cache of it that can
always be rebuilt. Vectors are L2-normalized on the way in, so an inner product is a cosine
similarity and every score returned is in [-1, 1], higher is closer.

Two kinds of FAISS index, chosen by size:
  - ``"flat"`` (``IndexFlatIP``): exact, for libraries below ``HNSW_THRESHOLD`` vectors;
  - ``"hnsw"`` (``IndexHNSWFlat``, inner product): approximate, above it. HNSW cannot remove
    vectors, so a removed or replaced vector becomes a tombstone, skipped at search through an
    ``IDSelectorBitmap``; once tombstones pass ``TOMBSTONE_REBUILD_FRACTION`` the graph is
    rebuilt from the live vectors.

FAISS labels are positions (0..ntotal-1). The id mapping is numpy, not FAISS's
``IndexIDMap2`` (whose reverse map is a C++ hash map of ~50 bytes an id, and which cannot
tell a replaced vector from its replacement): ``_labels`` (position -> segment id, -1 for a
tombstone, 8 bytes a vector) and ``_IdMap`` (id -> position: a direct-address table, 4 bytes
a slot, while ids are dense, as SQLite's are). Vectors are kept once, in FAISS's own storage;
reads go through a numpy view of it (``_storage``) or FAISS's by-index kernels.

The file is one self-checking blob (see ``save``): a JSON header (format, embedder and its
version, dim, count, checksum of the id set), the labels, FAISS's own serialization, and a
CRC32 trailer, so a truncated, corrupt or stale file is detected before FAISS parses it.

``faiss`` is imported inside functions only: importing it costs ~0.3 s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Union

import numpy as np

from loopmind.errors import LoopMindError
from loopmind.fileio import fsync_dir as _fsync_dir

log = logging.getLogger(__name__)

HNSW_THRESHOLD = 50_000
"""At or above this many vectors the index is HNSW; below half of it, flat again."""
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
"""recall@10 0.994 at 1M clustered 128-d vectors, p50 0.21 ms (32: 0.970; 128: 0.999, p50
0.31 ms); see benchmarks/results/index.md."""
HNSW_EF_SEARCH_MAX = 1024
"""Cap on efSearch when a filter lets only a fraction of the graph through."""
TOMBSTONE_REBUILD_FRACTION = 0.2
EXACT_SUBSET_MAX = 20_000
"""An ``allowed`` set of at most this many vectors is searched exactly over those vectors;
a larger one goes through HNSW with a selector. At 1M 128-d vectors the two cost the same
at 20k (~7 ms); exact is 4x faster at 10k, the selector 4x faster at 100k."""
SEARCH_THREADS = 1
"""OpenMP threads for a search of fewer than 20 queries. FAISS splits even one query's flat
scan across threads; on a busy machine (the analysis pool uses every core while indexing)
each parallel region then waits for a time slice: 2 threads were 6x slower than 1 at 1M
vectors on the 2-core benchmark machine. Builds keep FAISS's default (all cores)."""
FORMAT_VERSION = 1
INDEX_FILENAME = "vectors.faiss"

_ADD_CHUNK = 65_536  # rows normalized and added at a time: bounds the transient copy
_MAGIC = b"LMVECIDX"
_TRAILER_MAGIC = b"LMVECEND"
_TRAILER = struct.Struct("<8sQI")  # magic, bytes before the trailer, CRC32 of those bytes
_HEADER_LEN = struct.Struct("<Q")
_MAX_HEADER_BYTES = 1 << 20

IdsLike = Union[np.ndarray, Iterable[int]]
Hit = tuple[int, float]


class IndexFileError(LoopMindError, ValueError):
    """The vector index file is missing, truncated, corrupt or not a LoopMind index."""


def id_checksum(ids: IdsLike) -> str:
    """An order-independent checksum of a set of segment ids.

    Compare the checksum of ``SELECT id FROM segment WHERE embedding IS NOT NULL`` with
    ``VectorIndex.checksum`` (or pass it to ``load_or_rebuild``) to tell a stale index.

    Returns:
        a short hex string; equal for equal multisets of ids in any order.
    """
    a = _as_ids(ids).view(np.uint64)
    # splitmix64 of each id, then a wrapping sum and an xor: order-free, well mixed
    z = a + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    total = int(np.add.reduce(z, dtype=np.uint64)) if z.size else 0
    xor = int(np.bitwise_xor.reduce(z)) if z.size else 0
    return f"{a.size:x}-{total:016x}{xor:016x}"


def _as_ids(ids: IdsLike | None) -> np.ndarray:
    """Ids as a 1-D int64 array (sets, lists and arrays accepted)."""
    if ids is None:
        return np.empty(0, dtype=np.int64)
    if isinstance(ids, np.ndarray):
        return np.ascontiguousarray(ids, dtype=np.int64).ravel()
    if isinstance(ids, (set, frozenset, dict)):
        return np.fromiter(ids, dtype=np.int64, count=len(ids))
    if isinstance(ids, (int, np.integer)):
        return np.array([ids], dtype=np.int64)
    return np.asarray(list(ids), dtype=np.int64).ravel()


def _keep_last(ids: np.ndarray) -> np.ndarray | None:
    """Indices that keep the last occurrence of each id, in order; None if all are unique."""
    if np.unique(ids).size == ids.size:
        return None
    _, first_in_reversed = np.unique(ids[::-1], return_index=True)
    return np.sort(ids.size - 1 - first_in_reversed)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


class _IdMap:
    """Segment id -> FAISS position.

    A direct-address table (``table[id - base]``, int32, -1 when absent) while the ids are
    dense enough: SQLite rowids usually are, and a lookup is then one gather. Binary search
    over 1M sorted ids costs ~1 us a lookup in cache misses (7-20 ms for a 10k-id ``allowed``
    set on the benchmark machine), a table ~10 ns. Sparse ids fall back to sorted arrays.
    """

    DENSE_MIN = 1 << 20  # a table this long (4 MB) is always fine
    DENSE_FACTOR = 8  # beyond that, at most this many slots per id

    def __init__(self) -> None:
        self.count = 0
        self._base = 0
        self._table: np.ndarray | None = np.empty(0, dtype=np.int32)
        self._keys = np.empty(0, dtype=np.int64)  # sparse mode: sorted ids
        self._vals = np.empty(0, dtype=np.int64)  # and their positions

    def _dense_ok(self, lo: int, hi: int, count: int) -> bool:
        return hi - lo + 1 <= max(self.DENSE_MIN, self.DENSE_FACTOR * count)

    def rebuild(self, labels: np.ndarray) -> None:
        """Recompute from ``labels`` (position -> id, -1 for none).

        Raises:
            ValueError: an id appears twice.
        """
        positions = np.flatnonzero(labels >= 0)
        ids = labels[positions]
        self.count = int(ids.size)
        if ids.size and not self._dense_ok(int(ids.min()), int(ids.max()), ids.size):
            order = np.argsort(ids, kind="stable")
            self._table, self._keys, self._vals = None, ids[order], positions[order]
            if np.any(self._keys[1:] == self._keys[:-1]):
                raise ValueError("duplicate ids in the vector index")
            return
        self._base = int(ids.min()) if ids.size else 0
        span = int(ids.max()) - self._base + 1 if ids.size else 0
        self._table = np.full(span, -1, dtype=np.int32)
        self._table[ids - self._base] = positions
        if np.count_nonzero(self._table >= 0) != ids.size:
            raise ValueError("duplicate ids in the vector index")

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Position of each id, -1 where absent."""
        if self._table is not None:
            off = ids - self._base
            inside = (off >= 0) & (off < self._table.size)
            out = np.full(ids.size, -1, dtype=np.int64)
            out[inside] = self._table[off[inside]]
            return out
        if self._keys.size == 0:
            return np.full(ids.size, -1, dtype=np.int64)
        where = np.minimum(np.searchsorted(self._keys, ids), self._keys.size - 1)
        return np.where(self._keys[where] == ids, self._vals[where], -1)

    def set(self, ids: np.ndarray, positions: np.ndarray) -> None:
        """Point unique ``ids`` (present or not) at ``positions``."""
        if ids.size == 0:
            return
        new = self.lookup(ids) < 0
        n_new = int(new.sum())
        if self._table is not None:
            lo, hi = int(ids.min()), int(ids.max())
            if self.count:
                lo, hi = min(lo, self._base), max(hi, self._base + self._table.size - 1)
            if self._dense_ok(lo, hi, self.count + n_new):
                if not self.count:
                    self._table, self._base = np.full(hi - lo + 1, -1, dtype=np.int32), lo
                elif lo < self._base or hi >= self._base + self._table.size:
                    # ids grow with time: leave room above so the next adds fit
                    size = hi - lo + 1
                    if hi >= self._base + self._table.size:
                        size = max(size, min(hi - lo + 1 + self._table.size // 4,
                                             max(self.DENSE_MIN,
                                                 self.DENSE_FACTOR * (self.count + n_new))))
                    table = np.full(size, -1, dtype=np.int32)
                    start = self._base - lo
                    table[start:start + self._table.size] = self._table
                    self._table, self._base = table, lo
                self._table[ids - self._base] = positions
                self.count += n_new
                return
            self._to_sparse()
        where = np.minimum(np.searchsorted(self._keys, ids), max(0, self._keys.size - 1))
        self._vals[where[~new]] = positions[~new]
        order = np.argsort(ids[new], kind="stable")
        at = np.searchsorted(self._keys, ids[new][order])
        self._keys = np.insert(self._keys, at, ids[new][order])
        self._vals = np.insert(self._vals, at, positions[new][order])
        self.count += n_new

    def delete(self, ids: np.ndarray) -> None:
        """Forget unique ``ids`` that are present."""
        if ids.size == 0:
            return
        if self._table is not None:
            self._table[ids - self._base] = -1
        else:
            keep = ~np.isin(self._keys, ids)
            self._keys, self._vals = self._keys[keep], self._vals[keep]
        self.count -= int(ids.size)

    def _to_sparse(self) -> None:
        assert self._table is not None
        slots = np.flatnonzero(self._table >= 0)
        self._keys = slots.astype(np.int64) + self._base
        self._vals = self._table[slots].astype(np.int64)
        self._table = None


class VectorIndex:
    """Cosine-similarity search over segment embeddings (thread-safe).

    Build with ``VectorIndex.build`` or open with ``VectorIndex.load``/``load_or_rebuild``.

    Args:
        dim: length of each embedding.
        embedder: name of the model that made the embeddings (stored with the index).
        version: the embedder's version; an index made by another version is stale.
    """

    def __init__(self, dim: int, *, embedder: str, version: str):
        if int(dim) <= 0:
            raise ValueError(f"embedding dimension must be positive, got {dim}")
        self._dim = int(dim)
        self._embedder = str(embedder)
        self._version = str(version)
        self._lock = threading.RLock()
        self._kind = "flat"
        self._index = self._new_faiss("flat")
        self._labels = np.empty(0, dtype=np.int64)  # position -> id, -1 = tombstone
        self._map = _IdMap()  # id -> position
        self._dead = 0
        self._live_bits: np.ndarray | None = None  # packed bitmap of live positions (cache)

    # ---------------------------------------------------------------- construction

    @classmethod
    def build(cls, ids: IdsLike, vectors: np.ndarray, *, embedder: str, version: str,
              kind: str | None = None) -> "VectorIndex":
        """A new index over ``vectors`` (not modified; normalized copies are stored).

        Args:
            ids: (n,) int64 segment ids; for a repeated id the last vector wins.
            vectors: (n, dim) float embeddings; (0, dim) for an empty index.
            kind: force "flat" or "hnsw" (benchmarks, tests); None chooses by size.
        """
        ids = _as_ids(ids)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise ValueError(f"vectors must be (n, dim), got shape {vectors.shape}")
        if vectors.shape[0] != ids.size:
            raise ValueError(f"{ids.size} ids for {vectors.shape[0]} vectors")
        keep = _keep_last(ids)
        if keep is not None:
            ids, vectors = ids[keep], vectors[keep]
        index = cls(vectors.shape[1], embedder=embedder, version=version)
        if kind is None:
            kind = "hnsw" if ids.size >= HNSW_THRESHOLD else "flat"
        if kind not in ("flat", "hnsw"):
            raise ValueError(f"unknown index kind {kind!r}")
        index._kind = kind
        index._index = index._new_faiss(kind)
        index._append(vectors, normalize=True)
        index._labels = ids.copy()
        index._reindex()
        return index

    # ---------------------------------------------------------------- properties

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def embedder(self) -> str:
        return self._embedder

    @property
    def version(self) -> str:
        return self._version

    @property
    def kind(self) -> str:
        """"flat" (exact) or "hnsw" (approximate)."""
        return self._kind

    @property
    def tombstones(self) -> int:
        """Removed or replaced vectors still in the HNSW graph (always 0 for flat)."""
        return self._dead

    @property
    def checksum(self) -> str:
        """``id_checksum`` of the ids in the index."""
        with self._lock:
            return id_checksum(self._labels[self._labels >= 0])

    def ids(self) -> np.ndarray:
        """The ids in the index, sorted (a copy)."""
        with self._lock:
            return np.sort(self._labels[self._labels >= 0])

    def __len__(self) -> int:
        return self._map.count

    def __contains__(self, segment_id: object) -> bool:
        try:
            key = np.int64(segment_id)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return False
        with self._lock:
            return bool(self._map.lookup(np.array([key]))[0] >= 0)

    def __repr__(self) -> str:
        return (f"VectorIndex({len(self)} x {self._dim}, {self._kind}, "
                f"{self._embedder} {self._version})")

    # ---------------------------------------------------------------- mutation

    def add(self, ids: IdsLike, vectors: np.ndarray) -> None:
        """Insert or replace vectors (an id already present gets the new vector).

        Args:
            ids: (n,) segment ids.
            vectors: (n, dim) embeddings, or (dim,) with one id.
        """
        ids = _as_ids(ids)
        vectors = np.asarray(vectors)
        if vectors.ndim == 1 and ids.size == 1:
            vectors = vectors[None, :]
        self._check_vectors(vectors, ids.size)
        if ids.size == 0:
            return
        keep = _keep_last(ids)
        if keep is not None:
            ids, vectors = ids[keep], vectors[keep]
        vectors = _normalized(vectors)  # validates too, before anything changes
        with self._lock:
            old_pos = self._map.lookup(ids)
            found = old_pos >= 0
            old_pos = old_pos[found]
            if self._kind == "flat" and found.any():
                # exact storage can be overwritten in place
                self._storage()[old_pos] = vectors[found]
                ids, vectors = ids[~found], vectors[~found]
            elif found.any():  # hnsw cannot: the old vector becomes a tombstone
                self._labels[old_pos] = -1
                self._dead += int(old_pos.size)
            start = int(self._index.ntotal)
            self._append(vectors, normalize=False)
            self._labels = np.concatenate([self._labels, ids])
            self._map.set(ids, np.arange(start, start + ids.size, dtype=np.int64))
            self._live_bits = None
            if self._kind == "flat" and len(self) >= HNSW_THRESHOLD:
                self._rebuild("hnsw")
            else:
                self._maybe_compact()

    def remove(self, ids: IdsLike) -> int:
        """Remove vectors by id (ids not in the index are ignored).

        Returns:
            how many were removed.
        """
        ids = np.unique(_as_ids(ids))
        with self._lock:
            positions = self._map.lookup(ids)
            found = positions >= 0
            if not found.any():
                return 0
            positions = positions[found]
            if self._kind == "flat":
                import faiss

                self._index.remove_ids(faiss.IDSelectorBatch(positions))
                self._labels = np.delete(self._labels, positions)
                self._reindex()  # later positions moved down
            else:
                self._labels[positions] = -1
                self._dead += int(positions.size)
                self._map.delete(ids[found])
                self._live_bits = None
                if len(self) < HNSW_THRESHOLD // 2:
                    self._rebuild("flat")
                else:
                    self._maybe_compact()
            return int(positions.size)

    def compact(self) -> None:
        """Rebuild the HNSW graph without its tombstones (no-op for flat or no tombstones)."""
        with self._lock:
            if self._dead:
                self._rebuild(self._kind)

    # ---------------------------------------------------------------- reading

    def vector(self, segment_id: int) -> np.ndarray | None:
        """The stored (L2-normalized) vector of a segment, or None if it is not indexed."""
        with self._lock:
            pos = int(self._map.lookup(_as_ids(segment_id))[0])
            return None if pos < 0 else self._storage()[pos].copy()

    def search(self, query: np.ndarray, k: int, *, allowed: IdsLike | None = None,
               exclude: IdsLike | None = None) -> list[Hit] | list[list[Hit]]:
        """The ``k`` nearest segments by cosine similarity, best first.

        Args:
            query: (dim,) for one query or (q, dim) for a batch (normalized here).
            k: how many results at most.
            allowed: only these ids may be returned (e.g. the ids a SQL filter selected).
                Searched exactly over those vectors when the index is flat or the set has
                at most ``EXACT_SUBSET_MAX`` of them; else HNSW with an ID selector and an
                efSearch raised by the fraction let through.
            exclude: ids never returned (e.g. the query's own segment).

        Returns:
            [(segment_id, score), ...] for one query, a list of those for a batch.
        """
        q = np.asarray(query)
        single = q.ndim == 1
        if single:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self._dim:
            raise ValueError(f"query must have {self._dim} values, got shape "
                             f"{np.shape(query)}")
        q = _normalized(q)
        with self._lock, _omp_threads(SEARCH_THREADS if q.shape[0] < 20 else None):
            hits = self._search(q, int(k), allowed, exclude)
        return hits[0] if single else hits

    # ---------------------------------------------------------------- files

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` atomically (temp file in the same folder, fsync, rename).

        Raises:
            IndexFileError: the file could not be written; any previous file is untouched.
        """
        import faiss

        path = Path(path)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                header = json.dumps(self._header(), sort_keys=True).encode()
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                           dir=path.parent)
                with os.fdopen(fd, "wb") as fh:
                    out = _CrcWriter(fh)
                    out.write(_MAGIC)
                    out.write(_HEADER_LEN.pack(len(header)))
                    out.write(header)
                    out.write(self._labels.astype("<i8", copy=False).tobytes())
                    faiss.write_index(self._index, faiss.PyCallbackIOWriter(out.write))
                    fh.write(_TRAILER.pack(_TRAILER_MAGIC, out.nbytes, out.crc))
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
            tmp = None
            _fsync_dir(path.parent)
        except Exception as exc:
            if isinstance(exc, (OSError, RuntimeError, MemoryError)):
                raise IndexFileError(
                    f"cannot write vector index {path}: {_one_line(exc)}") from None
            raise
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    @classmethod
    def load(cls, path: str | os.PathLike) -> "VectorIndex":
        """Read an index written by ``save``, verifying its checksum first.

        Raises:
            IndexFileError: missing, truncated, corrupt, or not a LoopMind vector index.
        """
        import faiss

        path = Path(path)
        try:
            with open(path, "rb") as fh:
                header, start, end = _read_header(fh, path)
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    _verify_crc(mm, end, path)
                    ntotal, dim = int(header["ntotal"]), int(header["dim"])
                    labels = np.frombuffer(mm, dtype="<i8", count=ntotal,
                                           offset=start).astype(np.int64)
                    reader = _BoundedReader(mm, start + 8 * ntotal, end)
                    raw = faiss.read_index(faiss.PyCallbackIOReader(reader.read))
                    if reader.pos != end:
                        raise IndexFileError(f"vector index {path} has trailing bytes")
            index = cls(dim, embedder=header["embedder"], version=header["version"])
            index._kind = header["kind"]
            index._index = raw
            index._labels = labels
            index._check_loaded(header, path)
            return index
        except IndexFileError:
            raise
        except FileNotFoundError:
            raise IndexFileError(f"vector index {path} not found") from None
        except (OSError, RuntimeError, MemoryError, ValueError, KeyError, TypeError,
                struct.error) as exc:
            raise IndexFileError(
                f"vector index {path} is unreadable: {_one_line(exc)}") from None

    # ---------------------------------------------------------------- internals

    def _new_faiss(self, kind: str):
        import faiss

        if kind == "flat":
            return faiss.IndexFlatIP(self._dim)
        index = faiss.IndexHNSWFlat(self._dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index

    def _flat(self):
        """The ``IndexFlat`` holding the vectors (the index itself, or HNSW's storage)."""
        import faiss

        if self._kind == "flat":
            return self._index
        return faiss.downcast_index(self._index.storage)

    def _storage(self) -> np.ndarray:
        """A (ntotal, dim) float32 view of FAISS's own vector storage (no copy).

        Valid only until the next add (FAISS may reallocate); use under the lock.
        """
        import faiss

        flat = self._flat()
        n = int(flat.ntotal)
        if n == 0:
            return np.empty((0, self._dim), dtype=np.float32)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self._dim).reshape(n, self._dim)

    def _check_vectors(self, vectors: np.ndarray, n: int) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self._dim:
            raise ValueError(f"vectors must be (n, {self._dim}), got shape {vectors.shape}")
        if vectors.shape[0] != n:
            raise ValueError(f"{n} ids for {vectors.shape[0]} vectors")

    def _append(self, vectors: np.ndarray, *, normalize: bool) -> None:
        """Add rows to the FAISS index in chunks (bounds the normalized copy's size)."""
        for i in range(0, vectors.shape[0], _ADD_CHUNK):
            chunk = vectors[i:i + _ADD_CHUNK]
            chunk = _normalized(chunk) if normalize else np.ascontiguousarray(
                chunk, dtype=np.float32)
            self._index.add(chunk)

    def _reindex(self) -> None:
        """Recompute the id -> position map and the tombstone count from ``_labels``."""
        self._map.rebuild(self._labels)
        self._dead = int(self._labels.size) - self._map.count
        self._live_bits = None

    def _maybe_compact(self) -> None:
        if self._dead and self._dead > TOMBSTONE_REBUILD_FRACTION * self._labels.size:
            self._rebuild(self._kind)

    def _rebuild(self, kind: str) -> None:
        """Replace the FAISS index by a new one of ``kind`` holding only the live vectors.

        Rows are copied from the old index's storage chunk by chunk, so at no time are the
        vectors held a third time. At 1M vectors an HNSW rebuild takes minutes (see the
        benchmark), during which the lock is held.
        """
        old = self._storage()
        live = np.flatnonzero(self._labels >= 0)
        labels = self._labels[live]
        old_index = self._index  # keeps ``old`` valid while we copy
        self._index = self._new_faiss(kind)
        self._kind = kind
        for i in range(0, live.size, _ADD_CHUNK):
            self._index.add(np.ascontiguousarray(old[live[i:i + _ADD_CHUNK]]))
        del old, old_index
        self._labels = labels
        self._reindex()

    def _live_bitmap(self) -> np.ndarray:
        if self._live_bits is None:
            self._live_bits = np.packbits(self._labels >= 0, bitorder="little")
        return self._live_bits

    def _search(self, q: np.ndarray, k: int, allowed, exclude) -> list[list[Hit]]:
        nq = q.shape[0]
        if k <= 0 or len(self) == 0:
            return [[] for _ in range(nq)]
        excl = self._positions(exclude) if exclude is not None else np.empty(0, np.int64)
        if allowed is not None:
            pos = self._map.lookup(_as_ids(allowed))
            pos = pos[pos >= 0]
            if self._kind == "flat" or pos.size <= EXACT_SUBSET_MAX:
                # never more work than a full scan; FAISS's flat scan with a selector is
                # several times slower than without
                pos = _sorted_unique(pos)
                if excl.size:
                    pos = pos[~np.isin(pos, excl, assume_unique=True)]
                return self._exact(q, k, pos) if pos.size else [[] for _ in range(nq)]
            mask = np.zeros(self._labels.size, dtype=bool)
            mask[pos] = True
            mask[excl] = False
            return self._selected(q, k, np.packbits(mask, bitorder="little"),
                                  int(np.count_nonzero(mask)), None)
        if self._kind == "hnsw" and self._dead:
            bits = self._live_bitmap()
            if excl.size:
                bits = bits.copy()
                np.bitwise_and.at(bits, excl >> 3,
                                  ~np.left_shift(1, excl & 7).astype(np.uint8))
            return self._selected(q, k, bits, len(self) - int(excl.size), None)
        # nothing dead: fetch a few more and drop the excluded ones
        hits = self._faiss_search(q, k + excl.size, None, None)
        if excl.size:
            drop = set(excl.tolist())
            hits = [[(p, s) for p, s in row if p not in drop][:k] for row in hits]
        return self._to_ids(hits)

    def _positions(self, ids: IdsLike) -> np.ndarray:
        """Sorted unique positions of those of the given ids that are in the index."""
        pos = self._map.lookup(_as_ids(ids))
        return _sorted_unique(pos[pos >= 0])

    def _exact(self, q: np.ndarray, k: int, pos: np.ndarray) -> list[list[Hit]]:
        """Exact top-k over the vectors at positions ``pos``, read in place from FAISS's
        storage (no gathered copy, and no BLAS: numpy's multi-threaded gemv stalls badly on
        a busy machine)."""
        import faiss

        k = min(k, pos.size)
        nq = q.shape[0]
        q = np.ascontiguousarray(q, dtype=np.float32)
        pos = np.ascontiguousarray(pos, dtype=np.int64)
        scores = np.empty((nq, k), dtype=np.float32)
        found = np.empty((nq, k), dtype=np.int64)
        flat = self._flat()
        faiss.knn_inner_products_by_idx(
            faiss.swig_ptr(q), flat.get_xb(), faiss.swig_ptr(pos), self._dim, nq,
            int(flat.ntotal), int(pos.size), k, faiss.swig_ptr(scores), faiss.swig_ptr(found),
            0)  # ld_ids=0: every query scans the same subset
        return [[(int(self._labels[p]), float(s)) for p, s in zip(pr, sr) if p >= 0]
                for pr, sr in zip(found, scores)]

    def _selected(self, q: np.ndarray, k: int, bits: np.ndarray, n_pass: int,
                  pos: np.ndarray | None) -> list[list[Hit]]:
        """FAISS search restricted to the ``n_pass`` positions set in the packed bitmap
        ``bits`` (``pos``: those positions, if the caller has them)."""
        if n_pass <= 0:
            return [[] for _ in range(q.shape[0])]
        k = min(k, n_pass)
        rows = self._to_ids(self._faiss_search(q, k, bits, n_pass / self._labels.size))
        short = [i for i, row in enumerate(rows) if len(row) < k]
        if short:
            # HNSW can miss members of a narrow filter; fall back to the exact answer
            if pos is None:
                pos = np.flatnonzero(np.unpackbits(bits, bitorder="little",
                                                   count=self._labels.size))
            for i, row in zip(short, self._exact(q[short], k, pos)):
                rows[i] = row
        return rows

    def _faiss_search(self, q: np.ndarray, k: int, bits: np.ndarray | None,
                      fraction: float | None) -> list[list[tuple[int, float]]]:
        """Raw FAISS search: rows of (position, score), -1 labels dropped."""
        import faiss

        k = min(k, int(self._index.ntotal))
        params = None
        sel = None
        if bits is not None:
            sel = faiss.IDSelectorBitmap(bits.size, faiss.swig_ptr(bits))  # size in bytes
        if self._kind == "hnsw":
            ef = max(HNSW_EF_SEARCH, k)
            if fraction is not None:
                # only ~fraction of the visited nodes can be results: look further
                ef = min(HNSW_EF_SEARCH_MAX, max(ef, int(np.ceil(ef / max(fraction, 1e-3)))))
                ef = max(ef, k)
            params = faiss.SearchParametersHNSW(efSearch=ef)
            if sel is not None:
                params.sel = sel
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel)
        scores, labels = self._index.search(q, k, params=params)
        del sel, bits  # the selector points into ``bits``: both lived through the search
        return [[(int(p), float(s)) for p, s in zip(lr, sr) if p >= 0]
                for lr, sr in zip(labels, scores)]

    def _to_ids(self, rows: list[list[tuple[int, float]]]) -> list[list[Hit]]:
        return [[(int(self._labels[p]), s) for p, s in row] for row in rows]

    def _header(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "embedder": self._embedder,
            "version": self._version,
            "dim": self._dim,
            "kind": self._kind,
            "count": len(self),
            "ntotal": int(self._labels.size),
            "checksum": id_checksum(self._labels[self._labels >= 0]),
        }

    def _check_loaded(self, header: dict, path: Path) -> None:
        import faiss

        raw = self._index
        expected = faiss.IndexHNSWFlat if self._kind == "hnsw" else faiss.IndexFlat
        if not isinstance(raw, expected) or raw.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexFileError(f"vector index {path} holds an unexpected FAISS index")
        if raw.d != self._dim or raw.ntotal != self._labels.size:
            raise IndexFileError(f"vector index {path} does not match its header")
        if self._kind == "hnsw":
            raw.hnsw.efSearch = HNSW_EF_SEARCH
        self._reindex()
        if len(self) != int(header["count"]) or \
                id_checksum(self._labels[self._labels >= 0]) != header["checksum"]:
            raise IndexFileError(f"vector index {path} ids do not match its header")


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if a.size > 1 else a


@contextlib.contextmanager
def _omp_threads(n: int | None) -> Iterator[None]:
    """Run FAISS with ``n`` OpenMP threads in this thread, then restore (None: unchanged).

    OpenMP's thread count is per calling thread, so this does not affect other threads.
    """
    if n is None:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    if before == n:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy of ``vectors`` with each row L2-normalized."""
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(out).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)  # an all-zero vector stays zero
    return out


class _CrcWriter:
    """Writes to a file while keeping the CRC32 and length of everything written."""

    def __init__(self, fh):
        self._fh = fh
        self.crc = 0
        self.nbytes = 0

    def write(self, data) -> int:
        self._fh.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.nbytes += len(data)
        return len(data)


class _BoundedReader:
    """``read(n)`` over an mmap between two offsets, for ``faiss.PyCallbackIOReader``."""

    def __init__(self, mm: mmap.mmap, start: int, end: int):
        self._mm, self.pos, self._end = mm, start, end

    def read(self, n: int) -> bytes:
        n = max(0, min(int(n), self._end - self.pos))
        data = self._mm[self.pos:self.pos + n]
        self.pos += n
        return data


def _read_header(fh, path: Path) -> tuple[dict, int, int]:
    """Parse the header and check the trailer's framing (cheap: reads a few bytes).

    Returns:
        (header, offset of the labels, offset of the trailer).
    """
    size = os.fstat(fh.fileno()).st_size
    lead = len(_MAGIC) + _HEADER_LEN.size
    if size < lead + _TRAILER.size:
        raise IndexFileError(f"vector index {path} is truncated ({size} bytes)")
    head = fh.read(lead)
    if head[:len(_MAGIC)] != _MAGIC:
        raise IndexFileError(f"{path} is not a LoopMind vector index")
    (hlen,) = _HEADER_LEN.unpack(head[len(_MAGIC):])
    if hlen > _MAX_HEADER_BYTES or lead + hlen + _TRAILER.size > size:
        raise IndexFileError(f"vector index {path} is truncated or corrupt")
    try:
        header = json.loads(fh.read(hlen))
    except (ValueError, UnicodeDecodeError):
        raise IndexFileError(f"vector index {path} has a corrupt header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise IndexFileError(f"vector index {path} has an unknown format "
                             f"({header.get('format') if isinstance(header, dict) else '?'})")
    for key, kind in (("embedder", str), ("version", str), ("dim", int), ("kind", str),
                      ("count", int), ("ntotal", int), ("checksum", str)):
        if not isinstance(header.get(key), kind):
            raise IndexFileError(f"vector index {path} header lacks {key!r}")
    if header["kind"] not in ("flat", "hnsw") or header["dim"] <= 0 or header["ntotal"] < 0:
        raise IndexFileError(f"vector index {path} has a corrupt header")
    fh.seek(size - _TRAILER.size)
    magic, body_len, _crc = _TRAILER.unpack(fh.read(_TRAILER.size))
    if magic != _TRAILER_MAGIC or body_len != size - _TRAILER.size:
        raise IndexFileError(f"vector index {path} is truncated or corrupt")
    start = lead + hlen
    if start + 8 * header["ntotal"] > body_len:
        raise IndexFileError(f"vector index {path} is truncated or corrupt")
    return header, start, body_len


def _verify_crc(mm: mmap.mmap, end: int, path: Path) -> None:
    crc = 0
    view = memoryview(mm)
    try:
        for i in range(0, end, 1 << 24):
            crc = zlib.crc32(view[i:min(end, i + (1 << 24))], crc)
    finally:
        view.release()
    (_magic, _len, expected) = _TRAILER.unpack(mm[end:end + _TRAILER.size])
    if crc != expected:
        raise IndexFileError(f"vector index {path} is corrupt (checksum mismatch)")


def read_header(path: str | os.PathLike) -> dict:
    """The header of a saved index (embedder, version, dim, kind, count, ntotal, checksum)
    without loading it: enough to tell whether it is stale.

    Raises:
        IndexFileError: missing, truncated, or not a LoopMind vector index.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _read_header(fh, path)[0]
    except FileNotFoundError:
        raise IndexFileError(f"vector index {path} not found") from None
    except OSError as exc:
        raise IndexFileError(f"cannot read vector index {path}: {_one_line(exc)}") from None


def _stale_reason(header: dict, *, embedder: str, version: str, dim: int | None,
                  expected_count: int | None, expected_checksum: str | None) -> str | None:
    if header["embedder"] != embedder or header["version"] != version:
        return (f"made with {header['embedder']} {header['version']}, "
                f"not {embedder} {version}")
    if dim is not None and header["dim"] != dim:
        return f"{header['dim']}-dimensional, not {dim}"
    if expected_count is not None and header["count"] != expected_count:
        return f"{header['count']} vectors, the library has {expected_count}"
    if expected_checksum is not None and header["checksum"] != expected_checksum:
        return "its segments differ from the library's"
    return None


def load_or_rebuild(path: str | os.PathLike, *,
                    fetch: Callable[[], tuple[np.ndarray, np.ndarray]],
                    embedder: str, version: str,
                    expected_count: int | None = None,
                    expected_checksum: str | None = None,
                    dim: int | None = None,
                    on_message: Callable[[str], None] | None = None) -> VectorIndex:
    """Open the saved index, or rebuild it from the library when it is missing, stale or
    corrupt (then save it and report one line through ``on_message``).

    Args:
        path: the index file, normally ``settings.index_dir / INDEX_FILENAME``.
        fetch: returns (ids (n,), vectors (n, dim)) from SQLite, the source of truth;
            called only when a rebuild is needed.
        embedder, version: the embedder in use; an index made by another is stale.
        expected_count: how many segments have an embedding in SQLite (None: not checked).
        expected_checksum: ``id_checksum`` of those segments' ids (None: not checked).
        dim: the embedder's dimension (None: not checked); also shapes an empty ``fetch``.
        on_message: receives the one-line report of a rebuild.
    """
    path = Path(path)
    problem: str | None = None
    if not path.exists():
        problem = "vector index not found; built"
    else:
        try:
            header = read_header(path)
            stale = _stale_reason(header, embedder=embedder, version=version, dim=dim,
                                  expected_count=expected_count,
                                  expected_checksum=expected_checksum)
            if stale is None:
                return VectorIndex.load(path)
            problem = f"vector index was out of date ({stale}); rebuilt"
        except IndexFileError as exc:
            log.warning("%s", exc)
            problem = "vector index was corrupt; rebuilt"
    ids, vectors = fetch()
    ids = _as_ids(ids)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.size == 0 and vectors.ndim != 2:
        if dim is None:
            raise ValueError("fetch() returned no vectors and no dimension: pass dim=")
        vectors = vectors.reshape(0, dim)
    index = VectorIndex.build(ids, vectors, embedder=embedder, version=version)
    message = f"{problem} from the library ({len(index):,} vectors)"
    try:
        index.save(path)
    except IndexFileError as exc:
        message += f"; not saved: {exc}"
    if on_message is not None and not (problem.startswith("vector index not found")
                                       and len(index) == 0):
        on_message(message)
    return index

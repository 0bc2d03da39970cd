"""Finding sounds: text search, filters, "more like this", "fits with" (CLI and app alike).

Every query returns a ``Results`` (hits plus a reason when there are none), never raises for
an empty library or an impossible filter, and raises ``LoopMindError`` with one line for input
that cannot mean anything (an unknown id, a path that does not decode).
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import bindparam, text

from loopmind.errors import LoopMindError
from loopmind.library.db import Library

STRETCH_MIN, STRETCH_MAX = 0.8, 1.25
BPM_MIN, BPM_MAX = 20.0, 400.0
FACET_SHARE = 0.2  # a filter narrows the full-text match when at most this share passes it
# database URL -> (library stamp, facet token -> rows carrying it)
_FACET_COUNTS: dict[str, tuple[int, dict[str | None, int]]] = {}
_NUMBER = re.compile(r"(?<![\w.])(\d{2,3}(?:\.\d+)?)(?:\s*bpm)?(?![\w.])", re.I)
_WORD = re.compile(r"[0-9A-Za-z#]+")


class SearchError(LoopMindError):
    """A query that cannot mean anything (one line, shown as is)."""


# -- compatibility: pure functions ------------------------------------------------------------

def compatible_keys(key: str | None) -> set[str] | None:
    """Keys that sound right with ``key``: itself, its relative, and its fifth neighbours
    (with their relatives). None when any key goes (no key given)."""
    from loopmind.library.analysis.key import fifth_neighbors, parse_key, relative

    k = parse_key(key) if key else None
    if k is None:
        return None
    out = {k, relative(k)}
    for n in fifth_neighbors(k):
        out |= {n, relative(n)}
    return out


def keys_compatible(a: str | None, b: str | None) -> bool:
    """Unpitched material (no key) goes with anything."""
    if not a or not b:
        return True
    ks = compatible_keys(a)
    return ks is None or b in ks


def stretch_ratio(source_bpm: float, target_bpm: float) -> float | None:
    """The playback-speed ratio that brings ``source_bpm`` to ``target_bpm`` within
    0.8–1.25, allowing the source to be read at half or double time; None if unreachable."""
    if not source_bpm or not target_bpm:
        return None
    best = None
    for mult in (1.0, 2.0, 0.5):
        r = target_bpm / (source_bpm * mult)
        if STRETCH_MIN - 1e-9 <= r <= STRETCH_MAX + 1e-9 and (
                best is None or abs(math.log(r)) < abs(math.log(best))):
            best = r
    return best


def tempo_reachable(source_bpm: float | None, target_bpm: float | None) -> bool:
    if not source_bpm or not target_bpm:
        return True  # one-shots and tempo-less sounds fit any tempo
    return stretch_ratio(source_bpm, target_bpm) is not None


def tempo_intervals(target_bpm: float) -> list[tuple[float, float]]:
    """Source tempi that can reach ``target_bpm`` (the SQL form of ``tempo_reachable``)."""
    return [(target_bpm / (m * STRETCH_MAX), target_bpm / (m * STRETCH_MIN))
            for m in (1.0, 2.0, 0.5)]


def parse_bpm_range(value: str) -> tuple[float, float]:
    """"120-140" → (120, 140); "128" → (127.5, 128.5).

    Raises:
        SearchError: not a range, or an impossible one ("300-20").
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:(?:-|–|\.\.|to)\s*(\d+(?:\.\d+)?))?\s*", value)
    if not m:
        raise SearchError(f"--bpm {value!r}: expected a tempo or a range such as 120-140")
    lo = float(m.group(1))
    hi = float(m.group(2)) if m.group(2) else None
    if hi is None:
        lo, hi = lo - 0.5, lo + 0.5
    if lo > hi:
        raise SearchError(f"--bpm {value}: the range is empty (low end above high end)")
    if hi < BPM_MIN or lo > BPM_MAX:
        raise SearchError(f"--bpm {value}: outside any musical tempo ({BPM_MIN:.0f}–"
                          f"{BPM_MAX:.0f})")
    return lo, hi


def parse_key_option(value: str) -> str:
    from loopmind.library.analysis.key import parse_key

    k = parse_key(value.strip())
    if k is None:
        raise SearchError(f"--key {value!r}: not a key (try 'F minor', 'Fm', 'F#min', "
                          f"'Gb major')")
    return k


# -- filters --------------------------------------------------------------------------------

@dataclass
class Filters:
    """What both ``search`` and ``similar`` can be narrowed by.

    ``compatible`` widens ``key`` to related keys and ``bpm`` to the tempi a 0.8–1.25 stretch
    (or half/double time) can reach; with no key or tempo given it uses the reference sound's.
    """

    role: str | None = None
    bpm: tuple[float, float] | None = None
    key: str | None = None
    compatible: bool = False
    kind: str | None = None
    folder: str | None = None
    exclude_roles: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.role:
            parts.append(f"role {self.role}")
        if self.bpm:
            parts.append(f"bpm {self.bpm[0]:g}-{self.bpm[1]:g}")
        if self.key:
            parts.append(f"key {self.key}")
        if self.compatible:
            parts.append("compatible")
        if self.kind:
            parts.append(self.kind)
        if self.folder:
            parts.append(f"in {self.folder}")
        return ", ".join(parts)

    @property
    def empty(self) -> bool:
        return not (self.role or self.bpm or self.key or self.kind or self.folder
                    or self.exclude_roles)


def _sql_filters(f: Filters, *, ref_bpm: float | None = None, ref_key: str | None = None
                 ) -> tuple[list[str], dict]:
    """WHERE fragments (over ``s`` segment and ``f`` file) and their parameters."""
    where = ["f.status = 'ok'"]
    params: dict = {}
    role = "coalesce(s.user_role, s.role)"
    bpm = "coalesce(s.user_bpm, s.bpm)"
    key = "coalesce(s.user_key, s.key)"
    if f.role:
        # spelled out rather than coalesce(...) so SQLite can use the role indexes
        where.append("(s.user_role = :role OR (s.user_role IS NULL AND s.role = :role))")
        params["role"] = f.role
    if f.exclude_roles:
        names = [f"xr{i}" for i in range(len(f.exclude_roles))]
        where.append(f"coalesce({role}, '') NOT IN ({', '.join(':' + n for n in names)})")
        params.update(zip(names, f.exclude_roles))
    if f.kind:
        where.append("s.kind = :kind")
        params["kind"] = f.kind
    if f.folder:
        from loopmind.library.pipeline import resolve_folder

        folder = resolve_folder(f.folder).rstrip(os.sep)
        where.append("(f.path = :folder OR substr(f.path, 1, :flen) = :fprefix)")
        params.update(folder=folder, flen=len(folder) + 1, fprefix=folder + os.sep)
    target_key = f.key or (ref_key if f.compatible else None)
    if target_key:
        keys = compatible_keys(target_key) if f.compatible else {target_key}
        names = [f"k{i}" for i in range(len(keys))]
        params.update(zip(names, sorted(keys)))
        in_list = ", ".join(":" + n for n in names)
        cond = f"(s.user_key IN ({in_list}) OR (s.user_key IS NULL AND s.key IN ({in_list})))"
        # unpitched sounds (drums) carry no key and fit every key when asked for compatibility
        where.append(f"({cond} OR {key} IS NULL)" if f.compatible else cond)
    if f.bpm and not f.compatible:
        where.append("(s.user_bpm BETWEEN :blo AND :bhi OR "
                     "(s.user_bpm IS NULL AND s.bpm BETWEEN :blo AND :bhi))")
        params.update(blo=f.bpm[0], bhi=f.bpm[1])
    elif f.compatible:
        target = (sum(f.bpm) / 2) if f.bpm else ref_bpm
        if target:
            ors = []
            for i, (lo, hi) in enumerate(tempo_intervals(target)):
                ors.append(f"{bpm} BETWEEN :tlo{i} AND :thi{i}")
                params.update({f"tlo{i}": lo, f"thi{i}": hi})
            where.append(f"({' OR '.join(ors)} OR {bpm} IS NULL)")
    return where, params


def facet_groups(f: Filters, *, ref_bpm: float | None = None, ref_key: str | None = None
                 ) -> tuple[list[list[str]], bool]:
    """The filters as groups of facet tokens (a row must carry one token of every group), and
    whether the groups cover every filter. A superset of ``_sql_filters``: a row that passes
    the filters carries a token of each group. A folder filter or an excluded role has no
    group (SQL alone decides those)."""
    from loopmind.library import textindex as ti

    groups: list[list[str]] = []
    if f.role:
        groups.append([ti.role_token(f.role)])
    if f.kind:
        groups.append([ti.kind_token(f.kind)])
    target_key = f.key or (ref_key if f.compatible else None)
    if target_key:
        keys = compatible_keys(target_key) if f.compatible else {target_key}
        groups.append(sorted({ti.key_token(k) for k in keys}
                             | ({ti.key_token(None)} if f.compatible else set())))
    if f.bpm and not f.compatible:
        groups.append(ti.bpm_tokens([f.bpm]))
    elif f.compatible:
        target = (sum(f.bpm) / 2) if f.bpm else ref_bpm
        if target:
            groups.append(ti.bpm_tokens(tempo_intervals(target), none=True))
    return groups, not (f.folder or f.exclude_roles)


# -- results ---# -- results ------------------------------------------------------------------------------

@dataclass
class Hit:
    id: int
    path: str
    segment: int
    kind: str
    role: str | None
    bpm: float | None
    key: str | None
    bars: float | None
    duration_s: float
    start_s: float
    end_s: float
    score: float | None = None
    tags: list[str] = field(default_factory=list)
    why: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.score is not None:
            d["score"] = round(self.score, 4)
        return d


@dataclass
class Results:
    hits: list[Hit]
    query: str = ""
    filters: str = ""
    reason: str | None = None  # why there are no (or only partial) hits
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"query": self.query, "filters": self.filters, "count": len(self.hits),
                "reason": self.reason, "notes": self.notes,
                "results": [h.to_dict() for h in self.hits]}


_HIT_COLUMNS = ("s.id, f.path, s.\"index\", s.kind, coalesce(s.user_role, s.role), "
                "coalesce(s.user_bpm, s.bpm), coalesce(s.user_key, s.key), s.bars, s.start_s, "
                "s.end_s, f.id")


def _hits(conn, ids: list[int], scores: dict[int, float] | None = None,
          with_tags: bool = True) -> list[Hit]:
    """Hits for segment ids, in the given order (ids not found are dropped)."""
    if not ids:
        return []
    rows = conn.execute(text(
        f"SELECT {_HIT_COLUMNS} FROM segment s JOIN audio_file f ON f.id = s.file_id "
        "WHERE s.id IN :ids").bindparams(bindparam("ids", expanding=True)),
        {"ids": list(ids)}).all()
    by_id = {r[0]: r for r in rows}
    tags: dict[tuple[int, int], list[str]] = defaultdict(list)
    if with_tags and rows:
        for fid, si, name in conn.execute(text(
                "SELECT file_id, segment_index, name FROM tag WHERE file_id IN :f").bindparams(
                bindparam("f", expanding=True)), {"f": sorted({r[10] for r in rows})}).all():
            tags[(fid, si)].append(name)
    out = []
    for i in ids:
        r = by_id.get(i)
        if r is None:
            continue
        sid, path, idx, kind, role, bpm, key, bars, a, b, fid = r
        out.append(Hit(id=sid, path=path, segment=idx, kind=kind, role=role, bpm=bpm, key=key,
                       bars=bars, duration_s=round(b - a, 4), start_s=round(a, 4),
                       end_s=round(b, 4), score=None if scores is None else scores.get(sid),
                       tags=sorted(set(tags[(fid, -1)] + tags[(fid, idx)]))))
    return out


# -- the searcher ---------------------------------------------------------------------------

@dataclass
class IdResults:
    """What ``Searcher.search_ids`` found: ids best first, the filters in force (with the
    query's tempo and key folded in), and why there is nothing when there is nothing."""

    ids: list[int]
    scores: dict[int, float] | None
    filters: "Filters"
    terms: "QueryTerms"
    reason: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class QueryTerms:
    """What a free-text query says: words to match, and filters read out of it."""

    words: list[str]
    bpm: float | None = None
    key: str | None = None


def parse_query(query: str) -> QueryTerms:
    """Split "dark 808 140 F minor" into words (dark, 808) and filters (140 BPM, F minor).

    A number from 40 to 300 is a tempo unless it names a drum machine (808, 909, 303).
    """
    from loopmind.library.names import _NOT_TEMPO, find_key

    q = query
    key, span = find_key(q)
    if span:
        q = q[:span[0]] + " " + q[span[1]:]
    bpm = None
    for m in _NUMBER.finditer(q):
        v = float(m.group(1))
        if 40 <= v <= 300 and int(v) not in _NOT_TEMPO:
            bpm = v
            q = q[:m.start()] + " " * (m.end() - m.start()) + q[m.end():]
            break
    words = [w.lower().replace("#", "sharp") for w in _WORD.findall(q)]
    words = [w for w in words if w != "bpm"]
    return QueryTerms(words=words, bpm=bpm, key=key)


class Searcher:
    """Text search, similarity and compatibility over one library.

    Args:
        library: the open library.
        catalog: its vector index (made on first use of a vector query when None).
    """

    def __init__(self, library: Library, catalog=None):
        self.library = library
        self._catalog = catalog
        self._allowed_cache: dict[tuple, tuple[int, set[int]]] = {}

    @property
    def catalog(self):
        if self._catalog is None:
            from loopmind.index.catalog import Catalog

            self._catalog = Catalog(self.library)
        return self._catalog

    def _connect(self):
        return self.library.engine.connect()

    def _library_empty(self, conn) -> bool:
        return conn.execute(text(
            "SELECT 1 FROM audio_file f JOIN segment s ON s.file_id = f.id "
            "WHERE f.status = 'ok' LIMIT 1")).first() is None

    # -- text ------------------------------------------------------------------------------

    def search_ids(self, query: str, *, filters: Filters | None = None, limit: int = 20,
                   list_all: bool = False) -> "IdResults":
        """The ids ``search`` would show, best first, without fetching their rows (the app's
        browser pages through them).

        A tempo or key in the query becomes a filter. Words must all match; when nothing
        matches them all, the best partial matches are given with a note. With no words, the
        sounds passing the filters are listed by path (nearest the tempo first); with nothing
        at all, the whole library when ``list_all`` (a browser), else nothing and a reason.
        """
        filters = filters or Filters()
        terms = parse_query(query or "")
        if terms.bpm and not filters.bpm:
            # a tempo typed in the query means "about this tempo" (or, with --compatible,
            # the tempo to fit)
            filters = _replace(filters, bpm=(terms.bpm, terms.bpm) if filters.compatible
                               else (terms.bpm * 0.97, terms.bpm * 1.03))
        if terms.key and not filters.key:
            filters = _replace(filters, key=terms.key)
        out = IdResults(ids=[], scores=None, filters=filters, terms=terms)
        if not terms.words and not terms.bpm and not terms.key and filters.empty \
                and not list_all:
            out.reason = "nothing to search for: the query has no words, tempo or key"
            return out
        where, params = _sql_filters(filters)
        groups, covered = facet_groups(filters)
        with self._connect() as conn:
            facets = self._facet_clause(conn, groups, covered)
            out.ids, out.scores = self._text_ids(conn, terms.words, where, params, limit,
                                                 all_words=True, facets=facets)
            if not out.ids and len(terms.words) > 1:
                out.ids, out.scores = self._text_ids(conn, terms.words, where, params, limit,
                                                     all_words=False, facets=facets)
                if out.ids:
                    out.notes.append("no sound matches every word; showing partial matches")
            if not out.ids:
                if self._library_empty(conn):
                    out.reason = "the library is empty: add a folder with `loopmind add FOLDER`"
                else:
                    out.reason = "no sound matches " + " and ".join(
                        x for x in (" ".join(terms.words) and f"'{' '.join(terms.words)}'",
                                    filters.describe()) if x)
        return out

    def hits(self, ids: list[int], scores: dict[int, float] | None = None) -> list[Hit]:
        """Rows for segment ids, in that order (ids of deleted segments are left out)."""
        with self._connect() as conn:
            return _hits(conn, list(ids), scores)

    def search(self, query: str, *, filters: Filters | None = None, limit: int = 20
               ) -> Results:
        """Full-text search over file names, folders and tags (see ``search_ids``), with the
        hits' rows; CLAP text-to-audio neighbours are fused in when that embedder is on."""
        found = self.search_ids(query, filters=filters, limit=limit)
        res = Results(hits=self.hits(found.ids, found.scores), query=query,
                      filters=found.filters.describe(), reason=found.reason,
                      notes=list(found.notes))
        words = found.terms.words
        if self._text_vectors_active() and words:
            res.hits = self._fuse_text_vectors(" ".join(words), res.hits, found.filters, limit)
            if res.hits:
                res.reason = None
        return res

    def _ranked(self, conn, where, params, match: str, limit: int,
                facets: tuple[str, bool] | None = None) -> list:
        """Best full-text matches that pass the filters.

        The matches are ranked in the FTS table alone and only the best few hundred are
        joined to their files and filtered; when too few of those pass, every match is
        checked.
        """
        # user words match the word columns; the filters' facet tokens narrow the match to a
        # superset of what passes (the SQL filter stays exact), so a common word under a
        # selective filter ranks only the few rows that can pass
        from loopmind.library.textindex import WORD_COLUMNS

        match = f"{WORD_COLUMNS} : ({match})"
        if facets and facets[0]:
            match = f"{match} AND {facets[0]}"
        rank = ("SELECT rowid AS rid, bm25(segment_text, 4.0, 1.0, 2.0, 0.0) AS rank "
                "FROM segment_text WHERE segment_text MATCH :match ORDER BY rank")
        # the best few hundred matches, then a check of those ids (they drive the join);
        # fewer than asked means these are all the matches
        # with the filters all in the match, nearly every candidate passes (tempo tokens are
        # whole BPM; a file may be missing): a few spare are enough
        cand = limit * (5 if len(where) == 1 or (facets and facets[1]) else 25)
        best = conn.execute(text(rank + " LIMIT :cand"), {"match": match, "cand": cand}).all()
        ok = self._passing(conn, [r[0] for r in best], where, params)
        rows = [r for r in best if r[0] in ok][:limit]
        if len(rows) >= limit or len(best) < cand:
            return rows
        # not enough among the best few hundred: find every match (unranked, which costs a
        # quarter of ranking them) and keep those that pass: the filters' whole set when it
        # is cached or the matches are many, else a check of these ids. Only when some pass
        # that the first query did not see are all matches ranked.
        ids = [r[0] for r in conn.execute(
            text("SELECT rowid FROM segment_text WHERE segment_text MATCH :match"),
            {"match": match}).all()]
        stamp, key = self._allowed_key(conn, where, params)
        ok = self._allowed_hit(stamp, key)
        if ok is None:
            ok = (self._passing(conn, ids, where, params) if len(ids) <= 2000
                  else self._allowed(conn, where, params, stamp_key=(stamp, key)))
        n_pass = sum(1 for i in ids if i in ok)
        if n_pass <= len(rows):  # nothing passes, or all that pass were among the best
            return rows
        ranked = conn.execute(text(rank), {"match": match}).all()
        return [r for r in ranked if r[0] in ok][:limit]

    def _text_ids(self, conn, words, where, params, limit, *, all_words: bool,
                  facets: tuple[str, bool] | None = None):
        params = dict(params)
        if words:
            joiner = " AND " if all_words else " OR "
            # whole words first (cheap, and what was typed); prefixes ("hat" → "hats") when
            # whole words find too little
            rows: list = []
            for pattern in ('"{}"', '"{}"*'):
                match = joiner.join(pattern.format(w) for w in words)
                rows = self._ranked(conn, where, params, match, limit, facets)
                if len(rows) >= limit:
                    break
            # bm25 is lower-is-better and unbounded: report a 0..1 relevance
            return [r[0] for r in rows], {r[0]: 1.0 / (1.0 + math.exp(r[1])) for r in rows}
        params["limit"] = limit
        order = "f.path, s.\"index\""
        if "blo" in params:
            params["mid"] = (params["blo"] + params["bhi"]) / 2
            order = "abs(coalesce(s.user_bpm, s.bpm) - :mid), " + order
        rows = conn.execute(text(
            "SELECT s.id FROM segment s JOIN audio_file f ON f.id = s.file_id "
            f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT :limit"), params).all()
        return [r[0] for r in rows], None

    def _text_vectors_active(self) -> bool:
        if self.library.settings.embedder == "features":
            return False
        try:
            return bool(self.catalog.embedder.supports_text)
        except LoopMindError:
            return False

    def _fuse_text_vectors(self, words: str, hits: list[Hit], filters: Filters, limit: int
                           ) -> list[Hit]:
        """Reciprocal-rank fusion of the word matches with text-to-audio (CLAP) neighbours."""
        q = self.catalog.embedder.embed_text(words)
        by_vec = self._vector_hits(q, filters, limit=limit)
        fused: dict[int, float] = defaultdict(float)
        keep: dict[int, Hit] = {}
        for ranked in (hits, by_vec):
            for rank, h in enumerate(ranked):
                fused[h.id] += 1.0 / (60 + rank)
                keep.setdefault(h.id, h)
        order = sorted(fused, key=lambda i: -fused[i])[:limit]
        out = []
        for i in order:
            h = keep[i]
            h.score = fused[i]
            out.append(h)
        return out

    # -- vectors -----------------------------------------------------------------------------

    def _vector_hits(self, query: np.ndarray, filters: Filters, *, limit: int,
                     ref_bpm: float | None = None, ref_key: str | None = None,
                     exclude: set[int] | None = None) -> list[Hit]:
        vi = self.catalog.vectors()
        if len(vi) == 0:
            return []
        exclude = exclude or set()
        where, params = _sql_filters(filters, ref_bpm=ref_bpm, ref_key=ref_key)
        narrowed = len(where) > 1
        with self._connect() as conn:
            if not narrowed:
                found = vi.search(query, limit + len(exclude), exclude=exclude)
                ids = [i for i, _ in found][:limit]
                return _hits(conn, ids, dict(found))
            # filters: over-fetch from the index and keep what passes, which is fast when
            # the filter is loose; a strict filter gets an exact search over its candidates
            fetch = min(len(vi), max(limit * 20, 200))
            found = vi.search(query, fetch, exclude=exclude)
            ok = self._passing(conn, [i for i, _ in found], where, params)
            kept = [(i, s) for i, s in found if i in ok][:limit]
            if len(kept) < limit and fetch < len(vi):
                allowed = self._allowed(conn, where, params) - exclude
                kept = vi.search(query, limit, allowed=allowed) if allowed else []
            return _hits(conn, [i for i, _ in kept], dict(kept))

    def _facet_clause(self, conn, groups: list[list[str]], covered: bool) -> tuple[str, bool]:
        """The FTS5 expression for the selective facet groups, and whether it stands for
        every filter. A group that most rows carry (a kind, a wide tempo range) would cost
        more to merge than it saves, so only groups carried by at most ``FACET_SHARE`` of the
        rows go in (counts cached until the library changes)."""
        if not groups:
            return "", False
        stamp = conn.execute(text("SELECT coalesce(max(seq), 0) FROM vector_log")).scalar()
        # per library, not per searcher: the app's browser makes a searcher per query
        cached = _FACET_COUNTS.get(str(self.library.engine.url))
        if cached is None or cached[0] != stamp:
            cached = (stamp, {})
            _FACET_COUNTS[str(self.library.engine.url)] = cached
        counts = cached[1]

        def count(token: str | None) -> int:  # rows carrying the token (None: all rows)
            n = counts.get(token)
            if n is None:
                n = conn.execute(text(
                    "SELECT count(*) FROM segment_text WHERE segment_text MATCH :m"),
                    {"m": f"facets : {token}"}).scalar() if token else conn.execute(text(
                        "SELECT count(*) FROM segment")).scalar()
                counts[token] = n
            return n

        total = max(count(None), 1)
        chosen = ["facets : (" + " OR ".join(g) + ")" for g in groups
                  if g and sum(count(t) for t in g) <= FACET_SHARE * total]
        return " AND ".join(chosen), covered and len(chosen) == len(groups)

    def _passing(self, conn, ids: list[int], where: list[str], params: dict) -> set[int]:
        """Which of ``ids`` pass the filters. The ids drive the join (a json_each list as the
        outer loop, each segment found by its primary key), so SQLite does not start from an
        index on a filter column and scan every F minor sound to check a few hundred ids."""
        if not ids:
            return set()
        import json

        sql = ("SELECT s.id FROM json_each(:idlist) AS c "
               "CROSS JOIN segment s ON s.id = c.value "
               "CROSS JOIN audio_file f ON f.id = s.file_id "
               f"WHERE {' AND '.join(where)}")
        return {r[0] for r in conn.execute(text(sql), {**params,
                                                       "idlist": json.dumps(list(ids))}).all()}

    def _allowed_key(self, conn, where: list[str], params: dict) -> tuple:
        stamp = conn.execute(text("SELECT coalesce(max(seq), 0) FROM vector_log")).scalar()
        return stamp, (tuple(where), tuple(sorted((k, str(v)) for k, v in params.items())))

    def _allowed_hit(self, stamp, key: tuple) -> set[int] | None:
        """The cached set of ``_allowed`` for this key, if it is still current."""
        hit = self._allowed_cache.get(key)
        return hit[1] if hit is not None and hit[0] == stamp else None

    def _allowed(self, conn, where: list[str], params: dict, *,
                 stamp_key: tuple | None = None) -> set[int]:
        """Every segment id that passes the filters, cached until the library changes (the
        vector log's head moves on every change a filter can see), so browsing with a filter
        set pays the scan once."""
        stamp, key = stamp_key or self._allowed_key(conn, where, params)
        hit = self._allowed_hit(stamp, key)
        if hit is not None:
            return hit
        sql = (f"SELECT s.id FROM segment s CROSS JOIN audio_file f ON f.id = s.file_id "
               f"WHERE {' AND '.join(where)}")
        ids = {r[0] for r in conn.execute(text(sql), params).all()}
        if len(self._allowed_cache) >= 64:
            self._allowed_cache.pop(next(iter(self._allowed_cache)))
        self._allowed_cache[key] = (stamp, ids)
        return ids

    def segment(self, segment_id: int) -> Hit:
        """One segment as a hit.

        Raises:
            SearchError: no such segment, or its file is gone.
        """
        with self._connect() as conn:
            hits = _hits(conn, [int(segment_id)])
            status = conn.execute(text(
                "SELECT f.status FROM segment s JOIN audio_file f ON f.id = s.file_id "
                "WHERE s.id = :i"), {"i": int(segment_id)}).scalar()
        if not hits:
            raise SearchError(f"no segment with id {segment_id} (see `loopmind ls`)")
        if status != "ok":
            raise SearchError(f"segment {segment_id} belongs to a file that is {status}: "
                              f"{hits[0].path}")
        return hits[0]

    def similar(self, target: str | int, *, k: int = 10, filters: Filters | None = None
                ) -> Results:
        """Sounds most like a library segment (an id) or a file (a path; a file outside the
        library is analyzed on the fly). ``filters.compatible`` keeps sounds whose key and
        tempo go with the target's."""
        filters = filters or Filters()
        query_vec, ref, exclude, label = self._resolve_target(target)
        res = Results(hits=[], query=label, filters=filters.describe())
        if query_vec is None:
            res.reason = "no vector for this sound yet (re-embedding in progress?)"
            return res
        if len(self.catalog.vectors()) == 0:
            res.reason = "the library has no indexed sounds yet"
            return res
        res.hits = self._vector_hits(query_vec, filters, limit=k, ref_bpm=ref.get("bpm"),
                                     ref_key=ref.get("key"), exclude=exclude)
        if not res.hits:
            res.reason = f"no sound passes the filters ({filters.describe()})" \
                if not filters.empty or filters.compatible else "no other sounds in the library"
        return res

    def _resolve_target(self, target: str | int):
        """(vector, reference bpm/key, ids to exclude, label) for an id or a path."""
        tid = _as_id(target)
        if tid is not None:
            hit = self.segment(tid)
            vec = self.catalog.vector_of(tid)
            return vec, {"bpm": hit.bpm, "key": hit.key}, {tid}, f"#{tid} {hit.path}"
        path = os.path.abspath(os.path.expanduser(str(target)))
        with self._connect() as conn:
            row = conn.execute(text(
                "SELECT s.id FROM segment s JOIN audio_file f ON f.id = s.file_id "
                "WHERE f.path_bytes = :p AND f.status = 'ok' ORDER BY s.\"index\" LIMIT 1"),
                {"p": os.fsencode(path)}).first()
        if row is not None:
            return self._resolve_target(row[0])
        if not os.path.exists(path):
            raise SearchError(f"not a segment id or an existing file: {target}")
        seg = analyze_outside(path, self.library.settings, self.catalog.embedder)
        return seg.embedding, {"bpm": seg.bpm, "key": seg.key}, set(), path

    def fits(self, segment_ids: list[int], *, k: int = 10, filters: Filters | None = None
             ) -> Results:
        """Sounds that fit with a chosen set: a compatible key and a reachable tempo, a role
        the set does not have yet, ranked by how well they sit with the set's sound (cosine
        to the set's mean vector); the list mixes roles rather than giving ten basses."""
        if not segment_ids:
            raise SearchError("fits needs at least one segment id")
        chosen = [self.segment(i) for i in segment_ids]
        filters = filters or Filters()
        label = ", ".join(f"#{h.id}" for h in chosen)
        res = Results(hits=[], query=label, filters=filters.describe())
        key = next((h.key for h in chosen if h.key), None)
        bpm = next((h.bpm for h in chosen if h.bpm and h.kind == "loop"), None) or \
            next((h.bpm for h in chosen if h.bpm), None)
        for h in chosen:
            if h.key and key and not keys_compatible(key, h.key):
                res.notes.append(f"#{h.id} ({h.key}) clashes with {key}; fitting to {key}")
        roles = {h.role for h in chosen if h.role}
        from loopmind.library.analysis.role import DRUM_ROLES

        vecs = [v for v in (self.catalog.vector_of(h.id) for h in chosen) if v is not None]
        if not vecs:
            res.reason = "the chosen sounds have no vectors yet"
            return res
        centre = np.mean(vecs, axis=0)
        centre = centre / (np.linalg.norm(centre) or 1.0)
        f = _replace(filters, compatible=True, exclude_roles=tuple(sorted(roles)))
        pool = self._vector_hits(centre, f, limit=max(k * 8, 50), ref_bpm=bpm, ref_key=key,
                                 exclude={h.id for h in chosen})
        chosen_files = {h.path for h in chosen}
        pool = [h for h in pool if h.path not in chosen_files]
        has_drumloop = "drumloop" in roles
        for h in pool:
            if has_drumloop and h.role in DRUM_ROLES:
                h.score = (h.score or 0.0) - 0.1  # a drum loop already covers single hits
            parts = []
            if key and h.key:
                parts.append(f"key {h.key} fits {key}")
            if bpm and h.bpm and h.kind == "loop":
                r = stretch_ratio(h.bpm, bpm)
                if r is not None:
                    parts.append(f"stretch x{r:.2f} to {bpm:g} BPM")
            parts.append(f"adds {h.role or 'a new sound'}")
            h.why = "; ".join(parts)
        res.hits = _interleave_roles(sorted(pool, key=lambda h: -(h.score or 0.0)), k)
        if not res.hits:
            res.reason = "nothing in the library has a compatible key and tempo and a new role"
        return res


def _interleave_roles(hits: list[Hit], k: int) -> list[Hit]:
    """Best first, but round-robin over roles (each role's best before any role's second)."""
    by_role: dict[str | None, list[Hit]] = defaultdict(list)
    for h in hits:
        by_role[h.role].append(h)
    order = sorted(by_role, key=lambda r: -(by_role[r][0].score or 0.0))
    out: list[Hit] = []
    depth = 0
    while len(out) < k and any(depth < len(by_role[r]) for r in order):
        for r in order:
            if depth < len(by_role[r]) and len(out) < k:
                out.append(by_role[r][depth])
        depth += 1
    return out


def analyze_outside(path: str, settings, embedder):
    """Analyze a file that is not in the library (nothing is stored); its first segment.

    Raises:
        LoopMindError: it does not decode, or is silent.
    """
    from loopmind.library.analysis.segments import analyze_audio
    from loopmind.library.audio import decode

    dec = decode(path, sr=settings.analysis_sr, max_duration_s=settings.max_duration_s)
    segs = analyze_audio(dec, path=path, embed=embedder.embed,
                         embedder=f"{embedder.name}/{embedder.version}")
    if not segs:
        raise SearchError(f"{path}: no usable audio")
    return segs[0]


def _as_id(target: str | int) -> int | None:
    if isinstance(target, int):
        return target
    t = str(target).strip().lstrip("#")
    return int(t) if t.isdigit() and not os.path.exists(str(target)) else None


def _replace(f: Filters, **kw) -> Filters:
    from dataclasses import replace

    return replace(f, **kw)

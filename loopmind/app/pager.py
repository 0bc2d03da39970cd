"""The browser's queries, paged: every matching segment id at once, rows a page at a time.

A browse query (text, role, kind, folder) is answered with the ordered list of matching segment
ids only (100,000 ids are a few hundred kilobytes and one indexed SQL query), so the table
knows its length at once; the rows themselves (name, role, BPM, key, bars, duration, tags) are
read ``PAGE_ROWS`` at a time as the table scrolls to them. Text goes through the same parser,
filters and full-text index as ``loopmind search``; with no words the library is listed by
path. "More like this" and "fits with" answer with the searcher's own hits.

No Textual here: the browser's thread workers call these functions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - the browser imports this module before the library
    from loopmind.index.search import Filters, Hit, Results
    from loopmind.library.db import Library

PAGE_ROWS = 200
MAX_IDS = 1_000_000
_tokens = itertools.count(1)


@dataclass(frozen=True)
class BrowseQuery:
    """What the search box and the folder tree ask for."""

    text: str = ""
    role: str | None = None
    kind: str | None = None
    folder: str | None = None

    def filters(self) -> "Filters":
        from loopmind.index.search import Filters

        return Filters(role=self.role or None, kind=self.kind or None,
                       folder=self.folder or None)

    def describe(self) -> str:
        parts = [f"'{self.text.strip()}'"] if self.text.strip() else []
        if self.role:
            parts.append(self.role)
        if self.kind:
            parts.append(self.kind)
        if self.folder:
            import os

            parts.append(f"in {os.path.basename(self.folder.rstrip(os.sep)) or self.folder}")
        return ", ".join(parts) or "all sounds"


@dataclass
class BrowseResult:
    """Ordered segment ids of one query; ``hits`` holds rows known already (vector queries).

    ``token`` tells the pages of this result from those of an older one.
    """

    label: str
    ids: list[int]
    note: str | None = None
    hits: dict[int, "Hit"] = field(default_factory=dict)
    token: int = field(default_factory=lambda: next(_tokens))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def pages(self) -> int:
        return math.ceil(len(self.ids) / PAGE_ROWS)

    def page_ids(self, page: int) -> list[int]:
        return self.ids[page * PAGE_ROWS:(page + 1) * PAGE_ROWS]


def find_ids(library: "Library", query: BrowseQuery, *, limit: int = MAX_IDS) -> BrowseResult:
    """Every segment id matching ``query``, best first (by path when there are no words).

    A tempo or key typed in the text becomes a filter, as in ``loopmind search``; when no sound
    has every word, sounds with any of them are listed with a note.
    """
    from loopmind.index.search import Searcher

    found = Searcher(library).search_ids(query.text or "", filters=query.filters(),
                                         limit=limit, list_all=True)
    label = query.describe()
    ids = found.ids
    note = found.notes[0] if found.notes else None
    if not ids:
        note = f"no sound matches {label}"
    return BrowseResult(label=label, ids=ids, note=note)


def fetch_page(library: "Library", result: BrowseResult, page: int) -> list["Hit"]:
    """The rows of one page of ``result`` (rows of files gone meanwhile are left out)."""
    ids = result.page_ids(page)
    known = [result.hits[i] for i in ids if i in result.hits]
    if len(known) == len(ids):
        return known
    from loopmind.index.search import Searcher

    return Searcher(library).hits(ids)


def from_results(res: "Results", label: str) -> BrowseResult:
    """A vector query's results ("more like this", "fits with") as a browse result."""
    return BrowseResult(label=label, ids=[h.id for h in res.hits],
                        hits={h.id: h for h in res.hits},
                        note=res.reason or ("; ".join(res.notes) if res.notes else None))


def watched_folders(library: "Library") -> list[str]:
    """The watched folders, by path (without importing the indexing pipeline)."""
    from sqlmodel import select

    from loopmind.library.models import WatchedFolder

    with library.session() as s:
        return sorted(f.path for f in s.exec(select(WatchedFolder)))


def library_summary(library: "Library") -> tuple[list[str], int, list[str]]:
    """(watched folders, live segments, roles present) for the status bar and the filters."""
    from loopmind.library.queries import status

    st = status(library, max_errors=1)
    return st.folders, st.segments, sorted(r for r in st.roles if r and r != "unknown")

"""What the search page needs beyond a plain search: richer filters, more-like-this, facts of the index.

    search_filters   a request's filters -> the index's Filters and a minimum score (folder, dates)
    similar          the records nearest to a stored record's vector (no embedding), leaving it out
    index_facts      records per modality and the folders that hold files, for the page's filters

Store calls run on the index's own thread (`IndexSearcher.submit`).
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
from collections import Counter
from datetime import datetime
from typing import Any

from ..index.records import Filters, Hit
from .index_search import IndexSearcher, filters_of

GLOB_CHARS = re.compile(r"([*?\[])")
MAX_FOLDERS = 2000  # folders listed by /v1/index (those holding the most files)
FACTS_TTL = 300.0  # seconds before the facts of an index are gathered again (in the background)


def folder_glob(folder: str) -> str:
    """A folder -> a glob of everything under it; a name that is not absolute ('photos/2024') matches
    a folder of that name anywhere. A value with glob characters (* ? [) is taken as a glob."""
    folder = folder.strip()
    if not folder:
        raise ValueError("folder is empty; give a folder or a glob")
    if GLOB_CHARS.search(folder):
        return folder if os.path.isabs(folder) or folder.startswith("*") else "*/" + folder
    if os.path.isabs(folder):
        folder = os.path.realpath(folder)  # the index holds real paths
    escaped = GLOB_CHARS.sub(r"[\1]", folder.rstrip("/") or "/")
    prefix = escaped if os.path.isabs(folder) else "*/" + escaped
    return prefix.rstrip("/") + "/*"


def parse_when(value: float | str, name: str) -> float:
    """Seconds since the epoch, or ISO 8601 (a date: its local midnight; a time without offset: local)."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(value.strip()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"{name} {value!r} is not a date: give seconds since the epoch or ISO 8601 "
                         "such as 2024-07-01 or 2024-07-01T08:00:00+02:00") from None


def search_filters(f: Any) -> tuple[Filters, float | None]:
    """A request's `filters` (schemas.SearchFilters or None) -> (Filters, min_score). ValueError says what
    is wrong."""
    if f is None:
        return Filters(), None
    if f.folder is not None and f.path:
        raise ValueError("give folder or path, not both (folder is one more way to say path)")
    chosen = filters_of(f.modality, f.path)
    globs = chosen.path_globs + ((folder_glob(f.folder),) if f.folder is not None else ())
    after = parse_when(f.after, "after") if f.after is not None else None
    before = parse_when(f.before, "before") if f.before is not None else None
    return dataclasses.replace(chosen, path_globs=globs, after=after, before=before), f.min_score


async def similar(index: IndexSearcher, record_id: int, k: int, filters: Filters) -> list[Hit]:
    """The k records most similar to record `record_id`'s stored vector, best first, without it.
    LookupError when the index has no such record."""
    def run(store):
        vectors = store.vectors([record_id])
        if record_id not in vectors:
            raise LookupError(f"no record {record_id} in this index")
        return store.search(vectors[record_id], k + 1, filters)

    hits = await asyncio.wrap_future(index.submit(run))
    return [h for h in hits if h.record.id != record_id][:k]


class IndexFacts:
    """Counts per modality and the folders of an index, for the page's filters.

    Gathered on the index's thread when the server starts, so the first page load finds them ready,
    and again in the background once FACTS_TTL has passed (an index may be updated while it is served):
    a request never waits for a refresh, it gets the facts gathered last."""

    def __init__(self, index: IndexSearcher):
        self.index = index
        self._made = time.monotonic()
        self._future = index.submit(_facts)

    async def get(self) -> dict[str, Any]:
        last = self._future
        if last.done() and time.monotonic() - self._made > FACTS_TTL:
            self._made = time.monotonic()
            self._future = self.index.submit(_facts)
            if last.exception() is None:
                return last.result()
        return await asyncio.wrap_future(self._future)


def _facts(store) -> dict[str, Any]:
    counts = store.count()
    folders = Counter(os.path.dirname(path) for path, state in store.file_states().items() if state.status == "done")
    top = sorted(folders.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FOLDERS]
    return {"records": sum(counts.values()), "by_modality": counts,
            "folders": [{"path": p, "files": n} for p, n in sorted(top)]}

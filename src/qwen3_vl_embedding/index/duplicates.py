"""Near-duplicates in an index (`qvl dupes`): records whose stored vectors have a cosine similarity of at
least a threshold, grouped (union-find over the pairs), largest groups first. No model is loaded.

Two ways to find the pairs, both exact in their scores:
- up to `EXACT_LIMIT` records (after filters): every pair, by blocked matrix products in memory;
- beyond it: each record's `k` nearest neighbours from the store (`Store.neighbours`: the SQLite store
  searches its approximate index for many records at once), so the work grows with n, not n².
  A group larger than k is still found whole when its members link up through their neighbours
  (ties in score go to the lowest ids, so exact copies all link to the same few records).
Pairs within one file (two pages of a PDF, two clips of a video) are left out unless `same_file`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .ann import normalized
from .records import Filters, Hit
from .store import Store

DEFAULT_THRESHOLD = 0.95
DEFAULT_NEIGHBOURS = 16
EXACT_LIMIT = 20_000  # records compared pair by pair in memory (20,000 x 2,048 float32: 160 MB)
BLOCK = 2048


@dataclass(frozen=True)
class DuplicateGroup:
    """Records that are near-duplicates of each other. `hits`: each record with its cosine similarity to
    the first one (by path, then place in the file), the first scoring 1.0; `min_score`: the lowest."""

    hits: list[Hit]

    @property
    def min_score(self) -> float:
        return min(h.score for h in self.hits)

    def to_json(self) -> dict:
        return {"size": len(self.hits), "min_score": round(self.min_score, 6),
                "items": [h.to_json() for h in self.hits]}


class UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for x in self.parent:
            out.setdefault(self.find(x), []).append(x)
        return [g for g in out.values() if len(g) > 1]


def exact_pairs(ids: np.ndarray, vectors: np.ndarray, threshold: float) -> Iterable[tuple[int, int]]:
    """Every pair (i < j by position) with cosine >= threshold, by blocks of rows against the rows after."""
    vectors = normalized(vectors)
    n = len(ids)
    for start in range(0, n, BLOCK):
        block = vectors[start:start + BLOCK]
        scores = block @ vectors[start:].T  # (b, n - start)
        rows, cols = np.nonzero(scores >= threshold)
        keep = cols > rows  # the upper triangle: each pair once, never a record with itself
        for r, c in zip(rows[keep].tolist(), cols[keep].tolist()):
            yield int(ids[start + r]), int(ids[start + c])


def neighbour_pairs(store: Store, chunks: Iterable[tuple[np.ndarray, np.ndarray]], threshold: float, k: int,
                    progress: Any = None) -> Iterable[tuple[int, int]]:
    """Pairs (record, one of its k nearest records) with cosine >= threshold, from the store's search."""
    for ids, vectors in chunks:
        found, scores = store.neighbours(vectors, k + 1, min_score=threshold)
        for row, col in zip(*np.nonzero(scores >= threshold)):
            other = int(found[row, col])
            if other >= 0 and other != int(ids[row]):
                yield int(ids[row]), other
        if progress is not None:
            progress.update(len(ids))


def duplicate_groups(store: Store, threshold: float = DEFAULT_THRESHOLD, filters: Filters | None = None,
                     k: int = DEFAULT_NEIGHBOURS, same_file: bool = False, exact_limit: int = EXACT_LIMIT,
                     progress: Any = None) -> list[DuplicateGroup]:
    """Groups of near-duplicate records passing `filters`, largest first (then closest first)."""
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"the threshold is a cosine similarity, from -1 to 1; got {threshold}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    filters = filters or Filters()
    total = sum(store.count().values())
    if progress is not None:
        progress.reset(total=total)
    allowed: set[int] | None = None
    if total <= exact_limit or not filters.empty:
        chunks = list(store.scan(filters))
        n = sum(len(ids) for ids, _ in chunks)
        if n <= exact_limit:
            ids = np.concatenate([c[0] for c in chunks]) if chunks else np.empty(0, np.int64)
            vectors = np.concatenate([c[1] for c in chunks]) if chunks else np.empty((0, 1), np.float32)
            pairs = list(exact_pairs(ids, vectors, threshold))
            if progress is not None:
                progress.update(total)
        else:
            allowed = {int(i) for ids, _ in chunks for i in ids}
            pairs = list(neighbour_pairs(store, chunks, threshold, k, progress))
    else:
        pairs = list(neighbour_pairs(store, store.scan(), threshold, k, progress))
    if allowed is not None:
        pairs = [(a, b) for a, b in pairs if a in allowed and b in allowed]
    records = store.records(sorted({i for pair in pairs for i in pair}))
    union = UnionFind()
    for a, b in pairs:
        if a in records and b in records and (same_file or records[a].path != records[b].path):
            union.union(a, b)
    groups = []
    for members in union.groups():
        ordered = sorted((records[i] for i in members),
                         key=lambda r: (r.path, r.page or 0, r.start or 0.0, r.chunk or 0))
        vectors = store.vectors([r.id for r in ordered])
        first = normalized(vectors[ordered[0].id])
        groups.append(DuplicateGroup([Hit(r, float(normalized(vectors[r.id]) @ first)) for r in ordered]))
    groups.sort(key=lambda g: (-len(g.hits), -g.min_score, g.hits[0].record.path))
    return groups

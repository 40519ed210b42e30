"""Orderings by score: small pure functions shared by reranking, the server and rerank-after-search."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence, TypeVar

H = TypeVar("H")


def _scored(score: float | None) -> bool:
    return score is not None and not math.isnan(score)


def ranked(scores: Sequence[float | None], top_n: int | None = None) -> list[int]:
    """Positions by score, best first (ties by position), at most `top_n`; None and NaN scores (items
    that could not be scored) are left out."""
    order = sorted((i for i, s in enumerate(scores) if _scored(s)), key=lambda i: (-scores[i], i))  # type: ignore[operator]
    return order[:top_n] if top_n is not None else order


def reorder(hits: Sequence[H], scores: Sequence[float | None], k: int | None = None) -> list[H]:
    """Search hits reordered by a reranker's scores, best first, at most `k`: each hit's `score` becomes
    its reranker score and its `similarity` the score it had (the search's). Hits without a score (None
    or NaN: not readable by the reranker) are left out; ties go to the higher similarity.

    `hits` are dataclasses with `score` and `similarity` fields (index `Hit`s, RAG `Passage`s)."""
    scored = [replace(h, score=float(s), similarity=h.score) for h, s in zip(hits, scores) if _scored(s)]  # type: ignore[type-var]
    scored.sort(key=lambda h: (-h.score, -(h.similarity or 0.0)))
    return scored[:k] if k is not None else scored

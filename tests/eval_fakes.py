"""Deterministic stand-ins for the embedder and the reranker: vectors and scores from tables, calls recorded."""
from __future__ import annotations

import zlib

import numpy as np


def item_key(item):
    """The text, or the image/video reference, of an input item."""
    if isinstance(item, str):
        return item
    for key in ("text", "image", "video"):
        if key in item:
            value = item[key]
            return tuple(value) if isinstance(value, list) else value
    raise KeyError(item)


class FakeEmbedder:
    """embed() looks each item up in `vectors` (by item_key); unknown items get a seeded random vector."""

    def __init__(self, vectors: dict | None = None, dim: int = 8, name: str = "fake/embedder"):
        self.vectors = {k: np.asarray(v, np.float32) for k, v in (vectors or {}).items()}
        self.dim = dim
        self.default_instruction = "Represent the user's input."
        self.name = name
        self.calls: list[tuple[int, str | None]] = []

    def vector(self, item) -> np.ndarray:
        key = item_key(item)
        if key not in self.vectors:
            seed = zlib.crc32(str(key).encode())
            self.vectors[key] = np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)
        v = np.zeros(self.dim, np.float32)
        src = self.vectors[key]
        v[: len(src)] = src
        return v

    def embed(self, items, *, instruction=None, dim=None, precision="float32", show_progress=None, **kw):
        items = list(items)
        self.calls.append((len(items), instruction))
        x = np.stack([self.vector(i) for i in items]) if items else np.empty((0, self.dim), np.float32)
        x = x[:, : dim or self.dim]
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class FakeReranker:
    """scores() = score_fn(query, document); records (query, n documents, instruction) per call."""

    def __init__(self, score_fn, name: str = "fake/reranker"):
        self.score_fn = score_fn
        self.name = name
        self.calls: list[tuple[object, int, str | None]] = []

    def scores(self, query, documents, *, instruction=None, **kw):
        documents = list(documents)
        self.calls.append((query, len(documents), instruction))
        return [float(self.score_fn(query, d)) for d in documents]

    def rerank(self, query, documents, *, top_k=None, instruction=None, **kw):
        from qwen3_vl_embedding.reranker import RerankResult

        scores = self.scores(query, documents, instruction=instruction)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [RerankResult(i, scores[i]) for i in order[:top_k]]

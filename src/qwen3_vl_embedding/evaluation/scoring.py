"""Scoring of float embeddings at a Matryoshka dim and a storage precision. Pure numpy functions.

Documents are stored at the precision (what an index would hold); queries stay float32 except for
binary, where both sides are sign bits compared by Hamming distance. int8/uint8 documents are
dequantised with ranges calibrated on the documents themselves.
"""
from __future__ import annotations

import numpy as np

from ..quantize import QuantRanges, check_precision, dequantize, hamming_distances, quantize

BITS_PER_DIM = {"float32": 32, "float16": 16, "int8": 8, "uint8": 8, "binary": 1, "ubinary": 1}
QUERY_CHUNK = 256


def bytes_per_vector(dim: int, precision: str) -> int:
    """Storage of one vector (binary packs 8 dims per byte)."""
    check_precision(precision)
    return -(-dim * BITS_PER_DIM[precision] // 8)


def truncate(x: np.ndarray, dim: int | None) -> np.ndarray:
    """The first `dim` components of each row, re-normalised (Matryoshka)."""
    x = np.asarray(x, dtype=np.float32)
    if dim is not None and dim < x.shape[1]:
        x = x[:, :dim]
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Scorer:
    """Holds documents at a precision; `scores(queries)` gives (nq, nd) similarities, higher is better."""

    def __init__(self, documents: np.ndarray, precision: str = "float32", ranges: QuantRanges | None = None):
        check_precision(precision)
        docs = np.asarray(documents, dtype=np.float32)
        self.precision = precision
        if precision in ("int8", "uint8"):
            if ranges is None:
                ranges = QuantRanges.from_embeddings(docs if len(docs) > 1 else np.vstack([docs, -docs]))
            self.ranges = ranges
            self.stored = quantize(docs, precision, ranges)
            self._matrix = dequantize(self.stored, precision, ranges)
        else:
            self.ranges = None
            self.stored = quantize(docs, precision)
            self._matrix = None if precision in ("binary", "ubinary") else self.stored.astype(np.float32)

    @property
    def nbytes(self) -> int:
        return int(self.stored.nbytes)

    def scores(self, queries: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """(nq, nd) similarities, or (nq, len(columns)) against the documents at `columns` only."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self._matrix is None:  # binary: fewer differing bits is more similar
            stored = self.stored if columns is None else self.stored[columns]
            return -hamming_distances(quantize(q, self.precision), stored).astype(np.float32)
        if self.precision == "float16":
            q = q.astype(np.float16).astype(np.float32)
        return q @ (self._matrix if columns is None else self._matrix[columns]).T


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k best scores, best first; ties keep the lower index first."""
    scores = np.atleast_2d(scores)
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def rank(queries: np.ndarray, scorer: Scorer, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of each query's k best documents, in chunks of queries to bound memory."""
    ids, vals = [], []
    for start in range(0, len(queries), QUERY_CHUNK):
        s = scorer.scores(queries[start:start + QUERY_CHUNK])
        idx = top_k(s, k)
        ids.append(idx)
        vals.append(np.take_along_axis(s, idx, axis=1))
    if not ids:
        return np.empty((0, 0), np.int64), np.empty((0, 0), np.float32)
    return np.concatenate(ids), np.concatenate(vals)

"""Quantised embeddings (int8, uint8, binary, ubinary, float16) and binary search with rescoring.

int8 and uint8 map each dimension's calibrated range [low, high] linearly onto 256 levels; the
ranges come from a calibration set of embeddings and are saved beside an index so that queries and
documents share them. binary / ubinary keep one sign bit per dimension, packed 8 per byte
(binary is the packed byte minus 128 as int8, ubinary the packed byte as uint8).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRECISIONS = ("float32", "float16", "int8", "uint8", "binary", "ubinary")


@dataclass(frozen=True)
class QuantRanges:
    """Per-dimension calibration range for int8/uint8."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def from_embeddings(cls, embeddings: np.ndarray) -> "QuantRanges":
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError("calibration needs a 2-D array of at least 2 embeddings")
        return cls(x.min(axis=0), x.max(axis=0))

    @property
    def dim(self) -> int:
        return int(self.low.shape[0])

    def truncated(self, dim: int) -> "QuantRanges":
        return QuantRanges(self.low[:dim], self.high[:dim])

    def to_array(self) -> np.ndarray:
        return np.stack([self.low, self.high]).astype(np.float32)

    @classmethod
    def from_array(cls, array: np.ndarray) -> "QuantRanges":
        a = np.asarray(array, dtype=np.float32)
        if a.ndim != 2 or a.shape[0] != 2:
            raise ValueError(f"ranges must have shape (2, dim), got {a.shape}")
        return cls(a[0], a[1])

    def save(self, path: str) -> None:
        np.save(path, self.to_array())

    @classmethod
    def load(cls, path: str) -> "QuantRanges":
        return cls.from_array(np.load(path))


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def _ranges_for(x: np.ndarray, ranges: QuantRanges | np.ndarray | None) -> QuantRanges:
    if ranges is None:
        raise ValueError("int8/uint8 need calibration ranges: pass ranges=QuantRanges.from_embeddings(sample) "
                         "(or embedder.calibrate(inputs)) so that queries and documents share one scale")
    if not isinstance(ranges, QuantRanges):
        ranges = QuantRanges.from_array(ranges)
    if ranges.dim < x.shape[-1]:
        raise ValueError(f"ranges cover {ranges.dim} dimensions, the embeddings have {x.shape[-1]}")
    return ranges.truncated(x.shape[-1])


def quantize(embeddings: np.ndarray, precision: str, ranges: QuantRanges | np.ndarray | None = None) -> np.ndarray:
    """Embeddings (n, d) float -> the given precision. Pure; ranges are needed for int8/uint8."""
    x = np.asarray(embeddings, dtype=np.float32)
    check_precision(precision)
    if precision == "float32":
        return x
    if precision == "float16":
        return x.astype(np.float16)
    if precision in ("binary", "ubinary"):
        packed = np.packbits(x > 0, axis=-1)
        return (packed.astype(np.int16) - 128).astype(np.int8) if precision == "binary" else packed
    r = _ranges_for(x, ranges)
    span = np.where(r.high > r.low, r.high - r.low, 1.0).astype(np.float32)
    levels = np.clip(np.round((x - r.low) / span * 255.0), 0, 255)
    return (levels - 128).astype(np.int8) if precision == "int8" else levels.astype(np.uint8)


def dequantize(q: np.ndarray, precision: str, ranges: QuantRanges | np.ndarray | None = None) -> np.ndarray:
    """Approximate float32 embeddings back from int8/uint8 (the centre of each level), float16 as is."""
    check_precision(precision)
    if precision in ("float32", "float16"):
        return np.asarray(q, dtype=np.float32)
    if precision in ("binary", "ubinary"):
        raise ValueError("binary vectors keep only signs; compare them with hamming_distances")
    levels = np.asarray(q, dtype=np.float32) + (128.0 if precision == "int8" else 0.0)
    r = _ranges_for(levels, ranges)
    return r.low + levels / 255.0 * (r.high - r.low)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def unpacked_bytes(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b)
    return (b.astype(np.int16) + 128).astype(np.uint8) if b.dtype == np.int8 else b.astype(np.uint8)


def hamming_distances(queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """(nq, nc) number of differing bits between packed binary/ubinary vectors."""
    q = unpacked_bytes(np.atleast_2d(queries))
    c = unpacked_bytes(np.atleast_2d(corpus))
    out = np.empty((q.shape[0], c.shape[0]), dtype=np.int32)
    for i in range(q.shape[0]):
        out[i] = _POPCOUNT[np.bitwise_xor(c, q[i])].sum(axis=1, dtype=np.int32)
    return out


def binary_search(query_bits: np.ndarray, corpus_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Hamming distances of the k nearest corpus vectors of each query (ties by index)."""
    d = hamming_distances(query_bits, corpus_bits)
    k = min(k, d.shape[1])
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def rescore(query: np.ndarray, candidates: np.ndarray, corpus: np.ndarray, precision: str = "float32",
            ranges: QuantRanges | np.ndarray | None = None, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each query's candidate ids by dot product with float or int8/uint8 corpus vectors.

    `query` (nq, d) float; `candidates` (nq, m) ids into `corpus`. Returns (ids, scores), best first."""
    query = np.atleast_2d(np.asarray(query, dtype=np.float32))
    candidates = np.atleast_2d(candidates)
    vectors = dequantize(corpus, precision, ranges) if precision in ("int8", "uint8") else \
        np.asarray(corpus, dtype=np.float32)
    scores = np.einsum("qd,qmd->qm", query, vectors[candidates])
    order = np.argsort(-scores, axis=1, kind="stable")[:, : (k or candidates.shape[1])]
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(scores, order, axis=1)

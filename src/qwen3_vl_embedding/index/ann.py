"""Nearest-neighbour search over unit vectors: exact top-k (pure numpy) and the approximate index file.

The approximate index is FAISS IVF (an inverted file: vectors grouped under k-means centroids; a
query scans the `nprobe` nearest groups) with float32, float16 or int8 codes. int8 is FAISS's 8-bit
scalar quantiser, whose per-dimension [min, max] ranges are calibrated from the stored float vectors
when the index is trained (the rule of `quantize.QuantRanges.from_embeddings`). Callers rescore its
candidates with the float vectors they keep, so codes only choose candidates and never the final
order. Why FAISS IVF over HNSW (usearch): bench/bench_index.py and docs/index.md.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

PRECISIONS = ("float32", "float16", "int8")
_CODES = {"float32": "Flat", "float16": "SQfp16", "int8": "SQ8"}


def normalized(x: np.ndarray) -> np.ndarray:
    """Rows of `x` as float32 with unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class TopK:
    """The k best (score, id) pairs over chunks of candidates: exact search without holding all scores."""

    def __init__(self, k: int):
        self.k = k
        self.scores = np.empty(0, np.float32)
        self.ids = np.empty(0, np.int64)

    def push(self, scores: np.ndarray, ids: np.ndarray) -> None:
        scores = np.concatenate([self.scores, np.asarray(scores, np.float32)])
        ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        if len(scores) > self.k:
            keep = np.argpartition(-scores, self.k - 1)[: self.k]
            scores, ids = scores[keep], ids[keep]
        self.scores, self.ids = scores, ids

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), best first; ties broken by id so that results are deterministic."""
        order = np.lexsort((self.ids, -self.scores))
        return self.ids[order], self.scores[order]


class RowsTopK:
    """The k best (score, id) pairs of each of m queries, over chunks of candidates."""

    def __init__(self, m: int, k: int):
        self.k = k
        self.scores = np.full((m, 0), -np.inf, np.float32)
        self.ids = np.full((m, 0), -1, np.int64)

    def push(self, scores: np.ndarray, ids: np.ndarray) -> None:
        """`scores` (m, c) of the candidates `ids` (c,), the same for every query."""
        self.push_pairs(scores, np.broadcast_to(np.asarray(ids, np.int64), np.shape(scores)))

    def push_pairs(self, scores: np.ndarray, ids: np.ndarray) -> None:
        """`scores` (m, c) of the candidates `ids` (m, c), each query its own (-inf scores are never kept)."""
        scores = np.concatenate([self.scores, np.asarray(scores, np.float32)], axis=1)
        ids = np.concatenate([self.ids, np.asarray(ids, np.int64)], axis=1)
        if scores.shape[1] > self.k:
            keep = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
            scores, ids = np.take_along_axis(scores, keep, 1), np.take_along_axis(ids, keep, 1)
        self.scores, self.ids = scores, ids

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids (m, k), scores (m, k)), best first, ties by id; missing places are id -1, score -inf."""
        order = np.lexsort((self.ids, -self.scores), axis=1)
        ids, scores = np.take_along_axis(self.ids, order, 1), np.take_along_axis(self.scores, order, 1)
        ids = np.where(np.isneginf(scores), -1, ids)
        pad = self.k - ids.shape[1]
        if pad > 0:
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return ids, scores


def exact_top_k(query: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k ids whose vectors have the largest inner product with `query` (d,), best first."""
    top = TopK(k)
    if len(ids):
        top.push(np.asarray(vectors, np.float32) @ np.asarray(query, np.float32), ids)
    return top.result()


def default_nlist(n: int) -> int:
    """Inverted lists for n vectors: about 4 sqrt(n), with at least 39 training points per list."""
    return int(max(1, min(4 * np.sqrt(max(n, 1)), n // 39, 65536)))


def training_size(n: int, minimum: int = 131_072) -> int:
    """Vectors to train the centroids of an index of n on: enough for 40 per list, at least `minimum`."""
    return int(min(n, max(minimum, 40 * default_nlist(n))))


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query: 1/128 of them, at least 16 (31 of 4,000 lists at a million vectors: see
    bench/bench_index.py for recall and latency; `qvl search --nprobe` trades one for the other)."""
    return int(min(nlist, max(16, nlist // 128)))


@dataclass(frozen=True)
class AnnInfo:
    precision: str
    dim: int
    nlist: int
    ntotal: int


class AnnIndex:
    """A FAISS IVF index of (id, vector) pairs under inner product; ids are signed 64-bit integers."""

    def __init__(self, index, precision: str):
        self.index = index
        self.precision = precision
        self.ivf = _faiss().extract_index_ivf(index)
        self.nprobe = default_nprobe(self.ivf.nlist)

    @classmethod
    def train(cls, sample: np.ndarray, precision: str = "float32", nlist: int | None = None,
              expected: int | None = None) -> "AnnIndex":
        """An empty index whose centroids (and int8 ranges) are learnt from `sample` (m, d) unit vectors."""
        faiss = _faiss()
        if precision not in PRECISIONS:
            raise ValueError(f"the approximate index stores {', '.join(PRECISIONS)} vectors, not {precision!r}")
        sample = normalized(sample)
        nlist = nlist or default_nlist(max(expected or 0, len(sample)))
        nlist = max(1, min(nlist, len(sample)))
        index = faiss.index_factory(sample.shape[1], f"IVF{nlist},{_CODES[precision]}", faiss.METRIC_INNER_PRODUCT)
        index.train(sample)
        return cls(index, precision)

    @property
    def info(self) -> AnnInfo:
        return AnnInfo(self.precision, self.index.d, self.ivf.nlist, self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(normalized(vectors), np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids) -> int:
        ids = np.fromiter(ids, dtype=np.int64) if not isinstance(ids, np.ndarray) else ids.astype(np.int64)
        if not len(ids):
            return 0
        return int(self.index.remove_ids(_faiss().IDSelectorBatch(ids)))

    def search(self, query: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of about the k best vectors for one query (d,), best first; may return fewer."""
        self.ivf.nprobe = nprobe or self.nprobe
        scores, ids = self.index.search(normalized(query)[None], min(k, max(1, self.index.ntotal)))
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def ids(self) -> np.ndarray:
        """Every id the index holds (int64), list by list."""
        faiss, lists = _faiss(), self.ivf.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(self.ivf.nlist) if lists.list_size(i)]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def search_many(self, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids (m, k), scores (m, k)) for m queries in one call (FAISS spreads them over its threads);
        missing places are id -1, score -inf."""
        self.ivf.nprobe = nprobe or self.nprobe
        scores, ids = self.index.search(normalized(queries), max(1, min(k, self.index.ntotal)))
        return ids.astype(np.int64), np.where(ids < 0, -np.inf, scores).astype(np.float32)

    def save(self, path: str) -> None:
        """Write atomically: a temporary file in the same folder, flushed, then renamed over `path`."""
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".ann-", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            _faiss().write_index(self.index, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str, precision: str, mmap: bool = False) -> "AnnIndex":
        """Read an index file; `mmap` maps it read-only (for searching: never modify such an index)."""
        faiss = _faiss()
        index = faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0)
        return cls(index, precision)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError("the approximate index needs FAISS: pip install 'qwen3-vl-embedding[index]' "
                          "(or pip install faiss-cpu)") from None
    return faiss

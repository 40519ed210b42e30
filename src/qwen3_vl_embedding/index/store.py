"""The store interface: what `qvl index` and `qvl search` need from wherever vectors live.

A store holds records (see records.py) with their float vectors, the state of every indexed file
(for incremental runs) and the metadata the vectors were made with. The embedded SQLite store
(sqlite_store.py) implements it, and so does Milvus (milvus_store.py, `milvus://...` locations);
`backends.open_store(location, meta=None, write=False, create=False)` opens either. This module imports
no backend.

    store.meta                          IndexMeta: model, dim, precision, instructions, fingerprint (None in
                                        a new index opened with create=True until `initialize`)
    store.initialize(meta)              give a new index its metadata (once its model is known)
    store.value(key) / set_value(k, v)  small JSON values that change over the index's life (exclusions,
                                        where its model now lives)
    store.file_states()                 {path: FileState}: for incremental runs
    store.record_ids(path, content_hash) ids stored for a file (of that content: to resume it)
    store.put_file(state, drop_records) record a file's state; drop its records (a file that now fails)
    store.add(records, vectors)         insert or replace by record id (so resuming never duplicates)
    store.delete_records(ids)           drop records (units a re-embedded file no longer has)
    store.delete_paths(paths)           forget files: their records and their states
    store.commit()                      make everything so far durable
    store.optimize(rebuild, precision)  bring derived structures (the ANN index) up to date
    store.update_settings(changes)      record new ingestion settings (pixel budgets) in meta.settings
    store.search(vector, k, filters)    [Hit], best first, exact cosine scores (options: nprobe...)
    store.records(ids)                  {id: Record} of those present
    store.records_of(path)              a file's records, in page / time / chunk order
    store.vectors(ids)                  {id: float32 vector} of those present (more-like-this, duplicates)
    store.scan(filters)                 (ids, vectors) in chunks, every record passing `filters`
    store.neighbours(vectors, k)        (ids, scores) of each vector's k nearest records: many queries at once
    store.count()                       {modality: records}
    store.describe()                    facts for `qvl info` (sizes, files by status, ANN state)
    store.close()

Vectors given to `add` and `search` are float32 of length `meta.dim`, L2-normalised.
"""
from __future__ import annotations

import base64
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..constants import EMBED_INSTRUCTION
from ..errors import Qwen3VLError
from .records import FileState, Filters, Hit, Record

SCHEMA_VERSION = 1
QUERY_INSTRUCTION = "Retrieve images, videos, document pages or text relevant to the user's query."
DEFAULT_EXACT_THRESHOLD = 20_000


class StoreError(Qwen3VLError):
    """The index cannot be opened or used as asked."""


class StoreLockedError(StoreError):
    """Another process is writing to the index."""


class IndexMismatchError(StoreError):
    """The model or dimension asked for is not the one the index was built with."""


@dataclass(frozen=True)
class IndexMeta:
    """What every vector of an index was made with; fixed when the index is created.

    precision: codes of the approximate index (float32, float16 or int8); stored vectors stay float32.
    fingerprint: the model's embedding of FINGERPRINT_TEXT at `dim`, to recognise the model by what it
    computes rather than by its name (a hub id and a local copy of it are the same model).
    exact_threshold: below this many vectors search is exact and no approximate index is kept.
    quantize: the weights the index was made with: None (as released) or "int8" (index/compat.py warns
    when another run uses other weights). settings: how files are split and read (ingest.py), pixel
    budgets included; the budgets may change (`update_settings`), the rest is fixed."""

    model: str
    dim: int
    precision: str = "float32"
    document_instruction: str = EMBED_INSTRUCTION
    query_instruction: str = QUERY_INSTRUCTION
    fingerprint: tuple[float, ...] = ()
    exact_threshold: int = DEFAULT_EXACT_THRESHOLD
    settings: dict = field(default_factory=dict)  # ingestion settings (clip seconds, chunk tokens, budgets...)
    quantize: str | None = None
    created: float = field(default_factory=time.time)
    version: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        d = asdict(self)
        d["fingerprint"] = base64.b64encode(np.asarray(self.fingerprint, "<f4").tobytes()).decode()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "IndexMeta":
        d = dict(d)
        d["fingerprint"] = tuple(float(x) for x in np.frombuffer(base64.b64decode(d.get("fingerprint", "")), "<f4"))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


class Store(ABC):
    """See the module docstring. Stores are context managers; `close` releases any write lock."""

    meta: IndexMeta | None
    location: str

    def initialize(self, meta: IndexMeta) -> None:
        """Give a new index, opened for writing without metadata (`open_store(create=True)`), its metadata."""
        raise StoreError(f"{type(self).__name__} cannot create an index in two steps")

    def value(self, key: str, default: Any = None) -> Any:
        """A small JSON value kept with the index (`set_value`), or `default`."""
        return default

    def set_value(self, key: str, value: Any) -> None:
        """Keep a small JSON value with the index (None removes it); writers only."""
        raise StoreError(f"{type(self).__name__} keeps no values")

    @abstractmethod
    def file_states(self) -> dict[str, FileState]: ...

    @abstractmethod
    def record_ids(self, path: str, content_hash: str | None = None) -> set[int]:
        """Ids of the file's records; with `content_hash`, only those embedded from that content."""

    @abstractmethod
    def put_file(self, state: FileState, drop_records: bool = False) -> None: ...

    @abstractmethod
    def add(self, records: Sequence[Record], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def delete_records(self, ids: Iterable[int]) -> int:
        """Drop these records (and their vectors); returns how many there were."""

    @abstractmethod
    def delete_paths(self, paths: Iterable[str]) -> int: ...

    @abstractmethod
    def search(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None, **options: Any) -> list[Hit]:
        """`options`: backend tuning, such as nprobe for an IVF index."""

    @abstractmethod
    def records(self, ids: Sequence[int]) -> dict[int, Record]: ...

    @abstractmethod
    def records_of(self, path: str) -> list[Record]: ...

    @abstractmethod
    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]: ...

    @abstractmethod
    def scan(self, filters: Filters | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64, float32 vectors) in chunks: every record passing `filters`, each once."""

    def neighbours(self, vectors: np.ndarray, k: int, min_score: float | None = None,
                   **options: Any) -> tuple[np.ndarray, np.ndarray]:
        """The k records nearest each of `vectors` (m, dim): (ids (m, k) int64 padded with -1, exact cosine
        scores (m, k) padded with -inf), best first. `min_score`: scores below it may be left out (a store
        can skip rescoring them). This default searches one vector at a time; stores override it."""
        vectors = np.asarray(vectors, np.float32).reshape(-1, self.meta.dim)
        ids = np.full((len(vectors), k), -1, np.int64)
        scores = np.full((len(vectors), k), -np.inf, np.float32)
        for row, vector in enumerate(vectors):
            hits = self.search(vector, k, **options)
            ids[row, :len(hits)] = [h.record.id for h in hits]
            scores[row, :len(hits)] = [h.score for h in hits]
        return ids, scores

    @abstractmethod
    def count(self) -> dict[str, int]: ...

    @abstractmethod
    def describe(self) -> dict[str, Any]: ...

    @abstractmethod
    def update_settings(self, changes: dict) -> None:
        """Merge `changes` into `meta.settings` and record them (durable at the next commit)."""

    def commit(self) -> None:
        """Make all writes so far durable (a no-op for stores that write through)."""

    def optimize(self, rebuild: bool = False, precision: str | None = None) -> None:
        """Bring derived structures (an approximate index) up to date; `rebuild` starts them afresh,
        with new codes when `precision` is given."""

    def close(self) -> None:
        """Release resources and locks."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

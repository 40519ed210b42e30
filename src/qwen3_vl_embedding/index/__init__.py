"""The embedded multimodal index behind `qvl index` and `qvl search` (docs/index.md).

    records.py       Record, FileState, Filters, Hit: the schema, and deterministic record ids
    store.py         the Store interface, IndexMeta and the store errors (imports no backend)
    backends.py      open_store(), store_exists(): a folder or a Milvus location -> its Store
    compat.py        is this model the index's? dim, size and a fingerprint of what it computes
    sqlite_store.py  SQLite (WAL) source of truth + a derived FAISS IVF file
    milvus_store.py  Milvus (and Milvus Lite) as a store (milvus_connect.py, milvus_lease.py)
    lock.py          one writer per index (an OS file lock, gone with its process)
    ann.py           exact top-k and the approximate index (FAISS IVF, float32/float16/int8 codes)
    ingest.py        walk folders, PDF pages, video clips, text chunks, pixel budgets by kind
    indexer.py       one run over an open store: incremental, streaming, resumable
    eta.py           the time left of a run, from its measured token rate
    estimate.py      `qvl index --estimate`: a run's expected time from a sample, writing nothing
    indexing.py      open an index for writing (lock first), load and check the model when needed, run
    retrieval.py     query embedding, query arithmetic, more-like-this, search, rerank
    duplicates.py    near-duplicate groups (`qvl dupes`)
    check.py         `qvl info --check`: SQLite's integrity, stored vectors, the ANN file

Nothing heavy is imported here: `from qwen3_vl_embedding.index import open_store` loads numpy only.
"""
from __future__ import annotations

from .backends import open_store, store_exists
from .records import FileState, Filters, Hit, Record, parse_filters, record_id
from .store import IndexMeta, IndexMismatchError, Store, StoreError, StoreLockedError

__all__ = ["FileState", "Filters", "Hit", "IndexMeta", "IndexMismatchError", "Record", "Store", "StoreError",
           "StoreLockedError", "open_store", "parse_filters", "record_id", "store_exists"]

"""The embedded multimodal index behind `qvl index` and `qvl search` (docs/index.md).

    records.py       Record, FileState, Filters, Hit: the schema, and deterministic record ids
    store.py         the Store interface, IndexMeta, open_store(), model/dim compatibility checks
    sqlite_store.py  SQLite (WAL) source of truth + a derived FAISS IVF file
    lock.py          one writer per index (an OS file lock, gone with its process)
    ann.py           exact top-k and the approximate index (FAISS IVF, float32/float16/int8 codes)
    ingest.py        walk folders, detect kinds, PDF pages, video clips, text chunks
    indexer.py       one `qvl index` run: incremental, streaming, resumable
    search.py        query embedding, search, rerank
    display.py       tables and paths for the `qvl` commands

Nothing heavy is imported here: `from qwen3_vl_embedding.index import open_store` loads numpy only.
"""
from __future__ import annotations

from .records import FileState, Filters, Hit, Record, parse_filters, record_id
from .store import IndexMeta, IndexMismatchError, Store, StoreError, StoreLockedError, open_store

__all__ = ["FileState", "Filters", "Hit", "IndexMeta", "IndexMismatchError", "Record", "Store", "StoreError",
           "StoreLockedError", "open_store", "parse_filters", "record_id"]

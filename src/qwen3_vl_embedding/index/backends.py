"""Open an index wherever it lives: a folder (the embedded SQLite store) or a Milvus collection.

The store interface (store.py) imports no backend; this module picks one by the location's form.
"""
from __future__ import annotations

from typing import Any

from .store import IndexMeta, Store, StoreError


def open_store(location: str, meta: IndexMeta | None = None, *, write: bool = False, create: bool = False,
               **options: Any) -> Store:
    """Open the index at `location` (a folder for the embedded store); create it from `meta` when absent.

    write=True takes the index's writer lock (StoreLockedError when another process holds it).
    create=True (with write, without meta) opens an absent index before its model is known: locked,
    `store.meta` None until `store.initialize(meta)`.
    `milvus://HOST:PORT/COLLECTION` and `milvus-lite://PATH.db/COLLECTION` open a Milvus store (milvus_store.py)."""
    if "://" in location:
        from .milvus_connect import is_milvus
        from .milvus_store import MilvusStore

        if is_milvus(location):
            return MilvusStore(location, meta, write=write, create=create, **options)
        scheme = location.split("://", 1)[0]
        raise StoreError(f"no store backend for {scheme}:// in this version; pass a folder for the embedded store, "
                         f"milvus://HOST:PORT/COLLECTION or milvus-lite://PATH.db/COLLECTION")
    from .sqlite_store import SqliteStore

    return SqliteStore(location, meta, write=write, create=create, **options)


def store_exists(location: str) -> bool:
    """True when `location` already holds an index."""
    if "://" in location:
        from .milvus_connect import is_milvus
        from .milvus_store import MilvusStore

        if is_milvus(location):
            try:
                return MilvusStore.exists(location)
            except ValueError as e:
                raise StoreError(str(e)) from None
        return True  # no backend: open_store says so
    from .sqlite_store import SqliteStore

    return SqliteStore.exists(location)

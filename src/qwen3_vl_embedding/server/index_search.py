"""The index behind POST /v1/search (`qvl serve --db DIR`): opened once, used from a thread of its own.

An SQLite connection belongs to the thread that opened it, so the store is opened, searched and closed
on one thread. Files named by the index's records were chosen by whoever built the index, not by the
request, so images are read for reranking as trusted loaders (`IndexFile`); the request's own query
media stay under the server's media policy. The search itself is `Service.search`.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from ..index.backends import open_store
from ..index.compat import verify_model
from ..index.records import Filters, Record, parse_filters
from ..index.retrieval import document_input


class IndexFile:
    """A trusted image file of the index, read lazily as a PIL image (an image loader for the library)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self):
        from PIL import Image

        return Image.open(self.path)

    def __repr__(self) -> str:
        return f"IndexFile({self.path!r})"


class IndexSearcher:
    """One opened index, used from one thread; checks at opening that `embedder` computes its vectors."""

    def __init__(self, path: str, embedder: Any):
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qvl-index")
        self.store = self._thread.submit(open_store, path).result()
        self.meta = self.store.meta
        try:
            verify_model(self.meta, embedder)
        except BaseException:
            self.close()
            raise

    def search(self, vector: np.ndarray, k: int, filters: Filters) -> Future:
        """A Future of the k best hits (exact cosine scores) passing `filters`."""
        return self._thread.submit(self.store.search, vector, k, filters)

    def submit(self, call: Callable[..., Any], *args: Any) -> Future:
        """A Future of `call(store, *args)` run on the index's thread (records, vectors, counts...)."""
        return self._thread.submit(call, self.store, *args)

    def close(self) -> None:
        self._thread.submit(self.store.close).result()
        self._thread.shutdown(wait=True)


def filters_of(modality: list[str] | None, path: list[str] | None) -> Filters:
    """Request filters -> the index's Filters (ValueError names what is wrong)."""
    specs = [f"modality={m}" for m in modality or []] + [f"path={p}" for p in path or []]
    return parse_filters(specs)


def rerank_document(record: Record, max_pixels: int) -> Any:
    """What the reranker reads for a record; local image files become trusted loaders."""
    doc = document_input(record, max_pixels)
    if isinstance(doc, dict) and isinstance(doc.get("image"), str):
        return {"image": IndexFile(doc["image"])}
    return doc

"""Indexing as a library call: open an index for writing, check the model once, run an Indexer.

`qvl index` and `qvl index --ray` (distributed.index_with_ray) both go through `open_for_indexing`
and `index_paths`; they differ only in the embedder they pass (`contracts.Embedder`).

    report = index_paths(["~/Pictures"], "~/qvl-index", lambda: Qwen3VLEmbedder(model), model=model)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..contracts import Embedder
from ..pooling import check_dim
from . import ann
from .backends import open_store, store_exists
from .compat import check_compatible, fingerprint, verify_model
from .indexer import Indexer, IndexOptions, IndexReport
from .store import QUERY_INSTRUCTION, IndexMeta, Store


@dataclass(frozen=True)
class NewIndex:
    """What a new index is made with (an existing index keeps what it was made with).

    dim: None for the model's full size. precision: codes of the approximate index. exact_threshold:
    None for the default. settings: the ingestion settings recorded in the index."""

    dim: int | None = None
    precision: str = "float32"
    query_instruction: str | None = None
    exact_threshold: int | None = None
    settings: dict = field(default_factory=dict)

    def check(self) -> None:
        """Refuse impossible settings before any model is loaded."""
        if self.precision not in ann.PRECISIONS:
            raise ValueError(f"an index stores {', '.join(ann.PRECISIONS)} vectors; got --precision {self.precision}")
        if self.exact_threshold is not None and self.exact_threshold < 1:
            raise ValueError(f"--exact-threshold must be positive, got {self.exact_threshold}")


def open_for_indexing(location: str, load_embedder: Callable[[], Embedder], *, model: str,
                      new: NewIndex | None = None) -> tuple[Store, Embedder]:
    """The store at `location` opened for writing (created when absent) and a compatible embedder.

    For an existing index, the writer lock is taken and `model` and `new.dim` are checked against it
    before `load_embedder()` runs; the loaded model is then checked once (its size and fingerprint).
    Raises IndexMismatchError, StoreLockedError, StoreError."""
    new = new or NewIndex()
    if store_exists(location):
        store = open_store(location, write=True)
        try:
            check_compatible(store.meta, model, new.dim)
            embedder = load_embedder()
            verify_model(store.meta, embedder)
        except BaseException:
            store.close()
            raise
        return store, embedder
    new.check()
    embedder = load_embedder()
    dim = check_dim(new.dim, embedder.dim)
    extra = {"exact_threshold": new.exact_threshold} if new.exact_threshold else {}
    meta = IndexMeta(model=model, dim=dim, precision=new.precision, document_instruction=embedder.default_instruction,
                     query_instruction=new.query_instruction or QUERY_INSTRUCTION,
                     fingerprint=fingerprint(embedder, dim), settings=new.settings, quantize=embedder.quantize,
                     **extra)
    return open_store(location, meta, write=True), embedder


def index_paths(paths: Iterable[str], location: str, load_embedder: Callable[[], Embedder], *, model: str,
                new: NewIndex | None = None, options: IndexOptions | None = None, progress: Any = None
                ) -> IndexReport:
    """Bring the index at `location` up to date with `paths` (see `open_for_indexing` and `Indexer`)."""
    options = options or IndexOptions()
    if new is None:
        new = NewIndex(settings=options.ingest.settings())
    store, embedder = open_for_indexing(location, load_embedder, model=model, new=new)
    with store:
        return Indexer(store, embedder, options, progress).run(paths)

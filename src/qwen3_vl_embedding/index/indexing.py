"""Indexing as a library call: open an index for writing, load and check the model only when needed, run.

`qvl index` and `qvl index --ray` (distributed.index_with_ray) both go through `open_for_indexing`
and `index_paths`; they differ only in the embedder they load (`contracts.Embedder`).

The writer lock is taken first, for a new index too, so a second writer is refused before any model
loads; the model is loaded (and checked against the index once: size and fingerprint) only when the
Indexer meets something to embed, so a run over unchanged files loads none.

    report = index_paths(["~/Pictures"], "~/qvl-index", lambda model: Qwen3VLEmbedder(model), model=model)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..constants import EMBEDDING_2B
from ..contracts import Embedder
from ..pooling import check_dim
from . import ann
from .backends import open_store, store_exists
from .compat import check_compatible, fingerprint, index_model, model_to_record, remember_model_place, verify_model
from .indexer import Indexer, IndexOptions, IndexReport
from .records import path_glob
from .store import QUERY_INSTRUCTION, IndexMeta, Store

EXCLUDE = "exclude"  # Store.value key: the exclusion globs the index remembers


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


class IndexWriter:
    """An index opened for writing (its writer lock held) and the model to extend it, loaded on first use.

    `embedder()` loads the model once: for an existing index it is checked against the index (size,
    fingerprint); a new index gets its metadata from it. `model` None means the index's own model (the
    one recorded in it), or `default_model` for a new index."""

    def __init__(self, store: Store, load_embedder: Callable[[str], Embedder], model: str | None,
                 new: NewIndex, default_model: str = EMBEDDING_2B):
        self.store = store
        self.new = new
        self._load = load_embedder
        self._model = model
        self._default = default_model
        self._embedder: Embedder | None = None

    @property
    def loaded(self) -> bool:
        return self._embedder is not None

    @property
    def model(self) -> str:
        """The model to load: as named, else the index's (ModelNotFoundError when its folder is gone)."""
        if self._model is not None:
            return self._model
        return index_model(self.store) if self.store.meta is not None else self._default

    def embedder(self) -> Embedder:
        if self._embedder is None:
            model = self.model
            embedder = self._load(model)
            meta = self.store.meta
            if meta is None:
                new = self.new
                dim = check_dim(new.dim, embedder.dim)
                extra = {"exact_threshold": new.exact_threshold} if new.exact_threshold else {}
                self.store.initialize(IndexMeta(
                    model=model_to_record(model), dim=dim, precision=new.precision,
                    document_instruction=embedder.default_instruction,
                    query_instruction=new.query_instruction or QUERY_INSTRUCTION,
                    fingerprint=fingerprint(embedder, dim), settings=new.settings, quantize=embedder.quantize,
                    **extra))
            else:
                verify_model(meta, embedder)
                remember_model_place(self.store, model)
            self._embedder = embedder
        return self._embedder

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_for_indexing(location: str, load_embedder: Callable[[str], Embedder], *, model: str | None = None,
                      new: NewIndex | None = None, default_model: str = EMBEDDING_2B) -> IndexWriter:
    """The index at `location` opened for writing (created when absent), its model not loaded yet.

    The writer lock is taken before anything else; for an existing index `new.dim` is checked against
    it at once. `load_embedder(model)` runs when `IndexWriter.embedder()` is first called.
    Raises IndexMismatchError, StoreLockedError, StoreError."""
    new = new or NewIndex()
    if not store_exists(location):
        new.check()
    store = open_store(location, write=True, create=True)
    try:
        if store.meta is not None:
            check_compatible(store.meta, model or store.meta.model, new.dim)
        else:
            new.check()
    except BaseException:
        store.close()
        raise
    return IndexWriter(store, load_embedder, model, new, default_model)


def remembered_exclusions(store: Store, add: Iterable[str] = (), remove: Iterable[str] = ()) -> tuple[str, ...]:
    """The exclusion globs the index remembers, after adding `add` and forgetting `remove` (user globs,
    made absolute as path filters are: `records.path_glob`)."""
    kept = list(store.value(EXCLUDE, []))
    added = [path_glob(g) for g in add]
    dropped = {path_glob(g) for g in remove} | set(remove)
    unknown = [g for g in remove if g not in kept and path_glob(g) not in kept]
    if unknown:
        raise ValueError(f"--no-exclude {unknown[0]}: the index does not exclude it; it excludes "
                         f"{', '.join(kept) or 'nothing'}")
    updated = [g for g in dict.fromkeys(kept + added) if g not in dropped]
    if updated != kept:
        store.set_value(EXCLUDE, updated or None)
    return tuple(updated)


def index_paths(paths: Iterable[str], location: str, load_embedder: Callable[[str], Embedder], *,
                model: str | None = None, new: NewIndex | None = None, options: IndexOptions | None = None,
                progress: Any = None) -> IndexReport:
    """Bring the index at `location` up to date with `paths` (see `open_for_indexing` and `Indexer`)."""
    options = options or IndexOptions()
    if new is None:
        new = NewIndex(settings=options.ingest.settings())
    with open_for_indexing(location, load_embedder, model=model, new=new) as writer:
        return Indexer(writer.store, writer.embedder, options, progress).run(paths)

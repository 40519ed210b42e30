"""Searching an index: embed a text, image, video or mixed query, search a store, optionally rerank.

The query is embedded with the index's query instruction (documents were embedded with the default
one, as the released models expect), at the index's dimension; the same call embeds the model
fingerprint, so a model that computes different embeddings than the index's is refused (checked once).
Reranking scores the top candidates with the reranker, reading each one's file again (an image, a PDF
page rendered as at indexing, a video span, or the stored text of a chunk): `document_input`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..ranking import reorder
from .compat import FINGERPRINT_TEXT, check_compatible, verify_model
from .ingest import PdfPage, UnitError, close_documents_quietly, pdf_units
from .records import Filters, Hit, Record
from .store import Store


@dataclass(frozen=True)
class SearchQuery:
    """A search query: text, an image file, a video file, or any mixture of them."""

    text: str | None = None
    image: str | None = None
    video: str | None = None

    def __post_init__(self):
        if not (self.text or self.image or self.video):
            raise ValueError("empty query: give a text, --image FILE or --video FILE")
        for name, path in (("--image", self.image), ("--video", self.video)):
            if path and not os.path.isfile(path):
                raise FileNotFoundError(f"{name} {path}: no such file")

    def item(self, instruction: str | None = None) -> dict:
        """The query in the library's input form (the official dict)."""
        item: dict[str, Any] = {}
        if self.text:
            item["text"] = self.text
        if self.image:
            item["image"] = os.path.abspath(self.image)
        if self.video:
            item["video"] = os.path.abspath(self.video)
        if instruction:
            item["instruction"] = instruction
        return item


def embed_query(store: Store, embedder: Any, query: SearchQuery, instruction: str | None = None,
                dim: int | None = None):
    """The query's vector at the index's dim, after checking that `dim` (None: the index's) and the
    model are the index's. The model is checked once, by the fingerprint embedded with the query."""
    meta = store.meta
    check_compatible(meta, embedder.name, dim)
    items = [query.item(instruction or meta.query_instruction), {"text": FINGERPRINT_TEXT}]
    if embedder.dim < meta.dim:
        verify_model(meta, embedder)  # refuses it before asking it for vectors it cannot make
    vectors = embedder.embed(items, dim=meta.dim, show_progress=False)
    verify_model(meta, embedder, tuple(float(x) for x in vectors[1]))
    return vectors[0]


def search(store: Store, embedder: Any, query: SearchQuery, k: int = 10, filters: Filters | None = None,
           instruction: str | None = None, dim: int | None = None, nprobe: int | None = None) -> list[Hit]:
    vector = embed_query(store, embedder, query, instruction, dim)
    return store.search(vector, k, filters, **({"nprobe": nprobe} if nprobe else {}))


def document_input(record: Record, max_pixels: int) -> Any:
    """What the reranker reads for a record: the file's image, page, video span or chunk text."""
    if record.modality == "text":
        return {"text": record.text or ""}
    if record.modality == "video":
        return {"content": [{"type": "video", "video": record.path, "video_start": record.start,
                             "video_end": record.end}]}
    if record.modality == "pdf":
        units = pdf_units(record.path, max_pixels)
        if record.page is None or not 1 <= record.page <= len(units):
            raise UnitError(f"the PDF has no page {record.page} any more")
        page: PdfPage = units[record.page - 1].input["image"]
        return {"image": page}
    return {"image": record.path}


def rerank(reranker: Any, query: SearchQuery, hits: list[Hit], k: int) -> tuple[list[Hit], list[tuple[Hit, str]]]:
    """The hits reordered by reranker score (best first, at most k), and those that could not be read."""
    docs, kept, failed = [], [], []
    for hit in hits:
        try:
            docs.append(document_input(hit.record, reranker.max_pixels))
            kept.append(hit)
        except UnitError as e:
            failed.append((hit, str(e)))
    if not docs:
        return [], failed
    try:
        scores = reranker.scores(query.item(), docs, on_error="skip")
    finally:
        close_documents_quietly()
    for f in reranker.last_stats.failures:
        failed.append((kept[f.index], f.cause))
    return reorder(kept, scores, k), failed

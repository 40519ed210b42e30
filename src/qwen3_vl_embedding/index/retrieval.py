"""Searching an index: embed a text, image, video or mixed query, search a store, optionally rerank.

The query is embedded with the index's query instruction (documents were embedded with the default
one, as the released models expect), at the index's dimension; the same call embeds the model
fingerprint, so a model that computes different embeddings than the index's is refused (checked once).
Reranking scores the top candidates with the reranker, reading each one's file again (an image, a PDF
page rendered as at indexing, a video span, or the stored text of a chunk): `document_input`.

Query arithmetic (`Term`, `combined_vector`): a weighted sum of a main query and of texts and files
added or subtracted, normalised. A file term stands for the item itself ("more like this"): its
stored vector when the index holds it (no model needed), else its embedding as a document.
`item_vector` is the vector of an indexed file, page or clip (`qvl similar`); `search_excluding`
leaves given records out of the results.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..filetypes import kind_of
from ..ranking import reorder
from .compat import FINGERPRINT_TEXT, check_compatible, verify_model
from .ingest import Found, IngestOptions, PdfPage, UnitError, close_documents_quietly, pdf_units, units
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
    return embed_checked(store, embedder, [query.item(instruction or store.meta.query_instruction)], dim)[0]


def embed_checked(store: Store, embedder: Any, items: Sequence[Any], dim: int | None = None) -> np.ndarray:
    """`items` embedded at the index's dim, in one call with the model's fingerprint: refuses a model
    (or a `dim`) that is not the index's."""
    meta = store.meta
    check_compatible(meta, embedder.name, dim)
    if embedder.dim < meta.dim:
        verify_model(meta, embedder)  # refuses it before asking it for vectors it cannot make
    vectors = embedder.embed([*items, {"text": FINGERPRINT_TEXT}], dim=meta.dim, show_progress=False)
    verify_model(meta, embedder, tuple(float(x) for x in vectors[-1]))
    return vectors[:-1]


# query arithmetic ------------------------------------------------------------------------------------
_WEIGHT = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)):(.*)", re.S)


@dataclass(frozen=True)
class Term:
    """One term of a combined query: a text or a file, with its weight (negative: subtracted)."""

    weight: float
    text: str | None = None
    path: str | None = None  # a real absolute path


def parse_term(spec: str, sign: float = 1.0) -> Term:
    """'golden retriever', '2:golden retriever', '0.5:./pool.jpg' -> a Term: an optional 'W:' weight
    prefix, then a file path when such a file exists, else a text."""
    weight = 1.0
    found = _WEIGHT.fullmatch(spec)
    if found:
        weight, spec = float(found.group(1)), found.group(2)
    if not spec.strip():
        raise ValueError("an empty query term: give a text or a file after the weight")
    path = os.path.expanduser(spec)
    if os.path.isfile(path):
        if kind_of(path) is None:
            raise ValueError(f"{spec}: not an image, video, PDF or text file; put it in quotes with a word more to "
                             f"search for the words")
        return Term(sign * weight, path=os.path.realpath(path))
    return Term(sign * weight, text=spec)


def file_units(path: str, store: Store, embedder: Any) -> list:
    """The units of a file the index does not hold, split as the index splits files."""
    settings = store.meta.settings or {}
    options = IngestOptions(settings.get("clip_seconds", 10.0), settings.get("chunk_tokens", 512),
                            settings.get("chunk_overlap", 64), embedder.max_pixels)
    st = os.stat(path)
    modality = kind_of(path)
    return units(Found(path, st.st_size, st.st_mtime, modality), options,
                 embedder.text_tokenizer if modality == "text" else None)


def document_inputs(store: Store, found: Sequence[Any]) -> list[dict]:
    """Embedder inputs of units, with the index's document instruction (as its records were embedded)."""
    return [{**u.input, "instruction": store.meta.document_instruction} for u in found]


def pick_units(found: list, page: int | None = None, at: float | None = None, chunk: int | None = None) -> list:
    """The units (or records) of a file that `page` (from 1), `at` (seconds) or `chunk` (from 0) names;
    all of them when none is given."""
    if page is not None:
        chosen = [u for u in found if u.page == page]
        what = f"page {page}"
    elif at is not None:
        spans = [u for u in found if u.start is not None]
        chosen = [u for u in spans if u.start <= at < u.end] or [u for u in spans if at == u.end]
        what = f"a clip at {at:g} s"
    elif chunk is not None:
        chosen = [u for u in found if u.chunk == chunk]
        what = f"chunk {chunk}"
    else:
        return list(found)
    if not chosen:
        raise ValueError(f"the file has no {what}")
    return chosen[:1]


def mean_vector(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The normalised mean of unit vectors (one vector for a file of several records)."""
    v = np.mean(np.stack([np.asarray(x, np.float32) for x in vectors]), axis=0)
    norm = float(np.linalg.norm(v))
    if norm < 1e-6:
        raise ValueError("the vectors cancel out: nothing to search for")
    return (v / norm).astype(np.float32)


def item_vector(store: Store, path: str, page: int | None = None, at: float | None = None,
                chunk: int | None = None) -> tuple[np.ndarray, list[int]] | None:
    """(vector, record ids) of an indexed file (the mean of its records), or of one page, clip or chunk;
    None when the index does not hold the file."""
    records = store.records_of(path)
    if not records:
        return None
    chosen = pick_units(records, page, at, chunk)
    stored = store.vectors([r.id for r in chosen])
    if len(stored) < len(chosen):
        return None
    return mean_vector([stored[r.id] for r in chosen]), [r.id for r in chosen]


def combined_vector(store: Store, load_embedder: Callable[[], Any], terms: Sequence[Term],
                    query: SearchQuery | None = None, instruction: str | None = None,
                    dim: int | None = None) -> np.ndarray:
    """The normalised weighted sum of the main `query` (weight 1) and `terms`. Texts and the main query
    are embedded with the query instruction; files with their stored vectors, or embedded as documents
    when the index does not hold them. `load_embedder` is called only when something must be embedded."""
    parts: list[tuple[float, np.ndarray]] = []
    groups: list[tuple[float, list[Any]]] = []  # (weight, items whose mean vector is one part)
    query_instruction = instruction or store.meta.query_instruction
    if query is not None:
        groups.append((1.0, [query.item(query_instruction)]))
    check_compatible(store.meta, store.meta.model, dim)
    embedder = None
    for term in terms:
        if term.text is not None:
            groups.append((term.weight, [{"text": term.text, "instruction": query_instruction}]))
            continue
        held = item_vector(store, term.path)
        if held is not None:
            parts.append((term.weight, held[0]))
            continue
        embedder = embedder or load_embedder()
        try:
            groups.append((term.weight, document_inputs(store, file_units(term.path, store, embedder))))
        except UnitError as e:
            raise ValueError(f"{term.path}: {e}") from None
    if groups:
        embedder = embedder or load_embedder()
        vectors = iter(embed_checked(store, embedder, [item for _, group in groups for item in group], dim))
        parts += [(w, mean_vector([next(vectors) for _ in group])) for w, group in groups]
    total = sum(w * np.asarray(v, np.float32) for w, v in parts)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise ValueError("the query terms cancel out: nothing to search for")
    return (total / norm).astype(np.float32)


def search_excluding(store: Store, vector: np.ndarray, k: int, filters: Filters | None = None,
                     exclude_ids: Sequence[int] = (), exclude_paths: Sequence[str] = (),
                     nprobe: int | None = None) -> list[Hit]:
    """The k best hits for `vector`, leaving out the records `exclude_ids` and every record of the files
    `exclude_paths` (the query's own items)."""
    skip_ids, skip_paths = set(exclude_ids), set(exclude_paths)
    extra = len(skip_ids) + sum(len(store.record_ids(p)) for p in skip_paths)
    options = {"nprobe": nprobe} if nprobe else {}
    hits = store.search(vector, k + extra, filters, **options)
    return [h for h in hits if h.record.id not in skip_ids and h.record.path not in skip_paths][:k]


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

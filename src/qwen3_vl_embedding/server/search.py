"""POST /v1/search over a `qvl index` database (`qvl serve --db DIR`): a thin layer on `qwen3_vl_embedding.index`.

The store is opened, searched and closed on one thread of its own (an SQLite connection belongs to
the thread that opened it). The query is embedded by the server's embedding worker like any request;
reranking goes through the rerank worker. Files named by the index's records were chosen by whoever
built the index, not by the request, so images are read for reranking as trusted loaders; the
request's own query media stay under the server's media policy.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import InputError
from ..index.records import Filters, Hit, Record, parse_filters
from ..index.search import document_input
from ..index.store import check_compatible, fingerprint, open_store
from ..inputs import to_item


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
            check_compatible(self.meta, embedder.engine.name, None, model_dim=embedder.dim)
            check_compatible(self.meta, embedder.engine.name, None, fingerprint(embedder, self.meta.dim))
        except BaseException:
            self.close()
            raise

    def search(self, vector: np.ndarray, k: int, filters: Filters) -> Future:
        """A Future of the k best hits (exact cosine scores) passing `filters`."""
        return self._thread.submit(self.store.search, vector, k, filters)

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


async def search(service: Any, request: Any) -> dict[str, Any]:
    """A /v1/search request (`service` is the app's Service, with an index)."""
    from starlette.concurrency import run_in_threadpool

    from .errors import APIError, from_input_error, limit_error
    from .schemas import to_library
    from .service import pooled

    index, config = service.index, service.config
    deadline = service.deadline()
    wanted = max(request.k, request.rerank_top) if request.rerank else request.k
    if wanted > config.max_items:
        raise limit_error("max_items", config.max_items, f"{wanted} results asked", "k")
    f = request.filters
    try:
        chosen = filters_of(f.modality if f else None, f.path if f else None)
    except ValueError as e:
        raise APIError(400, str(e), param="filters", code="invalid_filters") from None
    query = to_library(request.query)
    instruction = request.instruction or index.meta.query_instruction
    prompts, cost = await run_in_threadpool(query_prompt, service, query, instruction)
    result = await service.run_job("embedding", prompts, cost, deadline,
                                   finish=lambda rows: pooled(rows, index.meta.dim))
    if result.failures:
        first = result.failures[0]
        error = first.error or InputError(first.cause, field=first.field)
        raise from_input_error(error.located(field_prefix="query"), "query")
    hits = await asyncio.wrap_future(index.search(result.rows[0], wanted, chosen))
    tokens = sum(result.token_counts)
    not_reranked: list[dict[str, str]] = []
    if request.rerank and hits:
        hits, not_reranked, used = await rerank_hits(service, query, hits, request.k, deadline)
        tokens += used
    return {"object": "list", "model": service.names["embedding"], "results": [h.to_json() for h in hits[:request.k]],
            "not_reranked": not_reranked, "usage": {"total_tokens": tokens}}


def query_prompt(service: Any, query: Any, instruction: str) -> tuple[list, int]:
    """The query's embedding prompt and its estimated cost (InputError -> 4xx naming `query`)."""
    from .errors import from_input_error
    from .service import check_item_limits, costed

    try:
        item = to_item(query)
    except InputError as e:
        raise from_input_error(e.located(field_prefix="query"), "query") from None
    check_item_limits(item, service.config.max_video_frames, "query", None)
    job, cost = costed(service.embedder.engine, service.embedder.prompt(item, instruction))
    return [job], cost


async def rerank_hits(service: Any, query: Any, hits: list[Hit], k: int, deadline: float):
    """(hits reordered by the reranker, best first, at most k; those it could not read; tokens used)."""
    from starlette.concurrency import run_in_threadpool

    from .errors import from_input_error
    from .service import floats

    reranker = service.reranker
    max_pixels = reranker.engine.preprocessor.settings.max_pixels

    def documents() -> tuple[list, list, list]:
        docs, kept, failed = [], [], []
        for hit in hits:
            try:
                docs.append(rerank_document(hit.record, max_pixels))
                kept.append(hit)
            except Exception as e:  # noqa: BLE001 - a record whose file changed: reported, not fatal
                failed.append({"path": hit.record.path, "reason": str(e)})
        return kept, failed, reranker.pair_prompts(query, docs) if docs else []

    try:
        kept, failed, prompts = await run_in_threadpool(documents)
    except InputError as e:
        raise from_input_error(e, "query") from None
    if not prompts:
        return [], failed, 0
    result = await service.run_job("rerank", prompts, len(prompts), deadline, finish=floats)
    bad = {f.index: f for f in result.failures}
    failed += [{"path": kept[i].record.path, "reason": f.cause} for i, f in bad.items()]
    scored = [replace(h, score=float(s), similarity=h.score) for i, (h, s) in enumerate(zip(kept, result.rows))
              if i not in bad]
    scored.sort(key=lambda h: (-h.score, -(h.similarity or 0.0)))
    return scored[:k], failed, sum(result.token_counts)

"""Requests -> library inputs -> batcher -> responses. No model logic: prompts, passes and heads are the library's.

The models are reached through their small contracts (contracts.py) in three steps: an embedding
input becomes a costed job with `embedder.prepare` (pre), the worker runs the merged jobs of many
requests with `embedder.run_jobs` (core, raw last hidden states), and each request's rows become its
vectors with `embedder.head` at its own `dimensions` (post): the same head `Qwen3VLEmbedder.embed`
uses, so the server's vectors are the library's. A rerank request's pairs become jobs with
`reranker.prepare_pairs` and are scored with `reranker.head` inside the pass.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from ..contracts import Scorer, ServedEmbedder
from ..errors import InputError
from ..index.records import Hit
from ..inputs import to_item
from ..pooling import check_dim
from ..ranking import reorder
from ..truncation import truncate_item
from .batcher import Batcher, Closed, JobResult, QueueFull
from .compat import (check_object_documents, check_vector_types, encode_vectors, openai_inputs,
                     rank_field_documents)
from .config import ServerConfig
from .browse import search_filters, similar
from .errors import APIError, from_input_error, limit_error, query_error
from .index_search import IndexSearcher, rerank_document
from .jobs import (check_item_limits, check_pixel_budget, check_text_chars, embeddings_of, floats, prepared_inline,
                   ranked)
from .links import FileLinks
from .metrics import Metrics
from .schemas import EmbeddingRequest, RerankRequest, SearchRequest, to_library


@dataclass(frozen=True)
class Embedded:
    """An embedding request's outcome: one vector per input, in input order, and the tokens it used."""

    vectors: list[np.ndarray]
    tokens: int


@dataclass(frozen=True)
class Reranked:
    """A rerank's outcome: one score in (0, 1) per document, in document order, and the tokens it used."""

    scores: list[float]
    tokens: int


_RUN = {"on_error": "skip", "show_progress": False}  # how the workers run merged jobs: a bad input fails alone


class Service:
    """The server's models, their batchers and the request logic; routes call its async methods."""

    def __init__(self, config: ServerConfig, metrics: Metrics, embedder: ServedEmbedder | None = None,
                 reranker: Scorer | None = None, index: IndexSearcher | None = None, links: FileLinks | None = None):
        self.config = config
        self.metrics = metrics
        self.embedder = embedder
        self.reranker = reranker
        self.index = index
        self.links = links  # links to records' files (the search page), when the server hands them out
        self.started = int(time.time())
        self.closing = False
        self.batchers: dict[str, Batcher] = {}
        self.names: dict[str, str] = {}
        if embedder is not None:
            self.names["embedding"] = config.model_name or embedder.name
            self.batchers["embedding"] = self._batcher(
                "embedding", lambda jobs, stats: embedder.run_jobs(jobs, None, **_RUN, stats=stats, total=len(jobs)))
        if reranker is not None:
            self.names["rerank"] = config.reranker_name or reranker.name
            self.batchers["rerank"] = self._batcher(
                "rerank", lambda jobs, stats: reranker.run_jobs(jobs, reranker.head, **_RUN, stats=stats,
                                                                total=len(jobs)))

    def _batcher(self, task: str, run) -> Batcher:
        c = self.config
        batcher = Batcher(task, run, max_tokens=c.batch_tokens, wait_s=c.batch_wait_ms / 1000,
                          max_queue=c.max_queue, enabled=c.batching, on_pass=self.metrics.pass_observer(task))
        self.metrics.watch_queue(task, lambda: batcher.depth)
        return batcher

    def close(self, timeout: float | None = None) -> None:
        """Take no new work; finish what is queued."""
        self.closing = True
        for batcher in self.batchers.values():
            batcher.close(timeout)
        if self.index is not None:
            self.index.close()

    # facts -------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {"status": "stopping" if self.closing else "ok", "models": dict(self.names)}

    def models(self) -> dict[str, Any]:
        """The served models, with what a client embedding files through the server needs: the embedder's
        size, document instruction and pixel budget, and the request limits (remote.RemoteEmbedder)."""
        c = self.config
        limits = {"max_items": c.max_items, "max_body_bytes": c.max_body_bytes, "max_media_bytes": c.max_media_bytes}
        data = []
        for task, name in self.names.items():
            model = self.embedder if task == "embedding" else self.reranker
            card = {"id": name, "object": "model", "created": self.started, "owned_by": "qvl", "task": task,
                    "max_pixels": model.max_pixels, "limits": limits}
            if task == "embedding":
                card.update(dim=model.dim, default_instruction=model.default_instruction, quantize=model.quantize)
            data.append(card)
        return {"object": "list", "data": data}

    def tokenizer(self) -> str:
        """The embedder's fast tokenizer as JSON (how a remote indexer cuts texts into chunks of tokens)."""
        self._need("embedding", "--model")
        return self.embedder.text_tokenizer.to_str()

    def _need(self, task: str, option: str) -> None:
        if task not in self.batchers:
            raise APIError(404, f"this server has no {task} model; start it with {option}", code="model_not_loaded")

    # running -----------------------------------------------------------------------------------
    async def run_job(self, task: str, prompts: list, cost: int, deadline: float, finish=None) -> JobResult:
        """Queue prompts on a model's worker and wait for them (429 when full, 504 past the deadline)."""
        try:
            future = self.batchers[task].submit(prompts, cost, finish)
        except QueueFull as e:
            raise APIError(429, f"{e}; retry shortly", type="rate_limit_error", code="queue_full",
                           headers={"Retry-After": "1"}) from None
        except Closed:
            raise APIError(503, "the server is shutting down", type="server_error", code="shutting_down") from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise APIError(504, f"the request took longer than {self.config.request_timeout} s",
                           type="server_error", code="timeout") from None

    def deadline(self) -> float:
        return time.monotonic() + self.config.request_timeout

    # embeddings --------------------------------------------------------------------------------
    async def embed(self, request: EmbeddingRequest) -> dict[str, Any]:
        """An OpenAI embeddings request (or vLLM's conversations, Jina's and Cohere's fields) -> its response body."""
        self._need("embedding", "--model")
        kind = request.embedding_type or request.encoding_format
        check_vector_types([kind], self.quant_ranges, "embedding_type")
        inputs, instruction, param = await openai_inputs(request)
        result = await self.embed_inputs(inputs, request.dimensions, instruction, param)
        data = [{"object": "embedding", "index": i, "embedding": v}
                for i, v in enumerate(encode_vectors(result.vectors, kind, self.quant_ranges))]
        return {"object": "list", "data": data, "model": self.names["embedding"],
                "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens}}

    @property
    def quant_ranges(self) -> Any:
        """The int8/uint8 calibration ranges of the served embedder (`Qwen3VLEmbedder.calibrate`), if any."""
        return getattr(self.embedder, "quant_ranges", None)

    async def embed_inputs(self, inputs: list, dimensions: int | None = None, instruction: str | None = None,
                           param: str = "input", normalize: bool = True) -> Embedded:
        """Vectors of library inputs (strings, or item dicts) at `dimensions` (None: the server's default),
        L2-normalised unless `normalize` is False. Errors name `param[i]`."""
        self._need("embedding", "--model")
        deadline = self.deadline()
        try:
            asked = dimensions if dimensions is not None else self.config.default_dim
            dim = check_dim(asked, self.embedder.dim)
        except ValueError as e:
            raise APIError(400, str(e).replace("dim must", "dimensions must"), param="dimensions",
                           code="invalid_dimensions") from None
        if not inputs:
            raise APIError(400, f"{param} is empty; send a string or a list of inputs", param=param,
                           code="invalid_input")
        if len(inputs) > self.config.max_items:
            n = self.config.max_items  # LangChain's OpenAIEmbeddings sends up to 1000 per request by default
            raise limit_error("max_items", n, f"{len(inputs)} inputs in one request; send at most {n} per request "
                              f"(LangChain's OpenAIEmbeddings: chunk_size={n}) or start the server with a larger "
                              "--max-items", param)
        check_text_chars(instruction, self.config.max_text_chars, "instruction")
        for i, raw in enumerate(inputs):
            if isinstance(raw, str):
                check_text_chars(raw, self.config.max_text_chars, f"{param}[{i}]")
        if prepared_inline(inputs):
            # tokenising a few short texts costs less than a thread hop and blocks the loop for a few ms
            jobs, cost = self._embedding_jobs(inputs, instruction, param)
        else:  # long or many texts, or media (estimating reads headers: files, downloads): off the event loop
            jobs, cost = await run_in_threadpool(self._embedding_jobs, inputs, instruction, param)
        embedder = self.embedder
        result = await self.run_job("embedding", jobs, cost, deadline,
                                    finish=lambda rows: embeddings_of(embedder, rows, dim, normalize))
        if result.failures:
            first = result.failures[0]
            raise from_input_error(first.error or InputError(first.cause, field=first.field), param, first.index)
        return Embedded(list(result.rows), sum(result.token_counts))

    def _embedding_jobs(self, inputs: list, instruction: str | None, param: str = "input") -> tuple[list, int]:
        jobs, cost = [], 0
        for i, raw in enumerate(inputs):
            try:
                item = to_item(to_library(raw), i)
                check_item_limits(item, self.config, param, i)
                check_pixel_budget(item, self.embedder.max_pixels, param, i)
                job, tokens = self.embedder.prepare(item, instruction)
            except InputError as e:
                raise from_input_error(e, param, i) from None
            jobs.append(job)
            cost += tokens
        return jobs, cost

    # rerank ------------------------------------------------------------------------------------
    async def rerank(self, request: RerankRequest) -> dict[str, Any]:
        """A rerank request (Cohere v1/v2, Jina, vLLM) -> its response body, results best first."""
        self._need("rerank", "--reranker")
        documents = [to_library(d) for d in request.documents]
        if request.rank_fields:
            texts = rank_field_documents(documents, request.rank_fields)
        else:
            check_object_documents(documents)
            texts = documents
        scored = await self.rerank_inputs(to_library(request.query), texts, request.instruction,
                                          max_tokens_per_doc=request.max_tokens_per_doc)
        results = []
        for i in ranked(scored.scores, request.top_n or None):
            entry: dict[str, Any] = {"index": i, "relevance_score": scored.scores[i]}
            if request.return_documents:
                doc = documents[i]
                entry["document"] = {"text": doc} if isinstance(doc, str) else doc
            results.append(entry)
        return {"id": f"rerank-{uuid.uuid4().hex}", "model": self.names["rerank"], "results": results,
                "usage": {"total_tokens": scored.tokens, "prompt_tokens": scored.tokens}}

    async def rerank_inputs(self, query: Any, documents: list, instruction: str | None = None, *,
                            max_tokens_per_doc: int | None = None, pairwise: bool = False,
                            param: str = "documents", query_param: str = "query") -> Reranked:
        """Scores of library documents against a library query (`pairwise`: `query` is a list, one query per
        document), in document order. `max_tokens_per_doc` keeps the first N tokens of each document's text
        (the reranker's tokenizer; media untouched). Errors name `param[i]` and `query_param`."""
        self._need("rerank", "--reranker")
        deadline = self.deadline()
        if len(documents) > self.config.max_items:
            raise limit_error("max_items", self.config.max_items, f"{len(documents)} documents in one request", param)
        if not documents:
            return Reranked([], 0)
        check_text_chars(instruction, self.config.max_text_chars, "instruction")
        jobs = await run_in_threadpool(self._rerank_jobs, query, documents, instruction, max_tokens_per_doc,
                                       pairwise, param, query_param)
        result = await self.run_job("rerank", [j for j, _ in jobs], sum(c for _, c in jobs), deadline, finish=floats)
        if result.failures:
            first = result.failures[0]
            error = first.error or InputError(first.cause, field=first.field)
            if (error.field or "").startswith("query"):
                raise query_error(error, query_param, first.index if pairwise else None)
            raise from_input_error(error, param, first.index)
        return Reranked(list(result.rows), sum(result.token_counts))

    def _rerank_jobs(self, query: Any, documents: list, instruction: str | None, max_tokens: int | None,
                     pairwise: bool, param: str, query_param: str) -> list[tuple[Any, int]]:
        queries = list(query) if pairwise else [query]
        for qi, q in enumerate(queries):
            try:
                check_item_limits(to_item(q), self.config, query_param, qi if pairwise else None)
            except InputError as e:
                raise query_error(e, query_param, qi if pairwise else None) from None
        items = []
        for i, doc in enumerate(documents):
            try:
                item = to_item(doc, i)
            except InputError as e:
                raise from_input_error(e, param) from None
            check_item_limits(item, self.config, param, i)
            items.append(item if max_tokens is None else truncate_item(item, self.reranker.text_tokenizer, max_tokens))
        groups = [(q, [item], qi) for qi, (q, item) in enumerate(zip(queries, items))] if pairwise \
            else [(query, items, None)]
        jobs: list[tuple[Any, int]] = []
        for q, group, where in groups:
            try:  # the documents are checked items already: only the query can fail here
                jobs += self.reranker.prepare_pairs(q, group, instruction)
            except InputError as e:
                raise query_error(e, query_param, where) from None
        return jobs

    # search ------------------------------------------------------------------------------------
    async def search(self, request: SearchRequest) -> dict[str, Any]:
        """A /v1/search request over the server's index: embed the query on the embedding worker, search,
        and with `rerank`, score the candidates on the rerank worker."""
        if self.index is None:
            raise APIError(404, "this server has no index; start it with --db DIR", code="index_not_loaded")
        if request.rerank:
            if request.like is not None:
                raise APIError(400, "rerank needs a query; more like this ranks by the stored vectors", param="rerank",
                               code="invalid_request")
            self._need("rerank", "--reranker")
        index, config = self.index, self.config
        deadline = self.deadline()
        wanted = max(request.k, request.rerank_top) if request.rerank else request.k
        if wanted > config.max_items:
            raise limit_error("max_items", config.max_items, f"{wanted} results asked", "k")
        try:
            chosen, min_score = search_filters(request.filters)
        except ValueError as e:
            raise APIError(400, str(e), param="filters", code="invalid_filters") from None
        if request.like is not None:  # more like this: the record's stored vector, nothing to embed
            try:
                hits = await similar(index, int(request.like), wanted, chosen)
            except LookupError as e:
                raise APIError(404, str(e), param="like", code="record_not_found") from None
            tokens = 0
        else:
            query = to_library(request.query)
            check_text_chars(request.instruction, config.max_text_chars, "instruction")
            instruction = request.instruction or index.meta.query_instruction
            job, cost = await run_in_threadpool(self._query_job, query, instruction)
            embedder = self.embedder
            result = await self.run_job("embedding", [job], cost, deadline,
                                        finish=lambda rows: embeddings_of(embedder, rows, index.meta.dim))
            if result.failures:
                first = result.failures[0]
                error = first.error or InputError(first.cause, field=first.field)
                raise from_input_error(error.located(field_prefix="query"), "query")
            hits = await asyncio.wrap_future(index.search(result.rows[0], wanted, chosen))
            tokens = sum(result.token_counts)
        if min_score is not None:
            hits = [h for h in hits if h.score >= min_score]
        not_reranked: list[dict[str, str]] = []
        if request.rerank and hits:
            hits, not_reranked, used = await self._rerank_hits(query, hits, request.k, deadline)
            tokens += used
        return {"object": "list", "model": self.names["embedding"],
                "results": [self.hit_json(h) for h in hits[:request.k]], "not_reranked": not_reranked,
                "usage": {"total_tokens": tokens}}

    def hit_json(self, hit: Hit) -> dict[str, Any]:
        """A result as JSON, with the links to its file and thumbnail when the server hands files out."""
        out = hit.to_json()
        return self.links.add_to(out, version=hit.record.content_hash) if self.links is not None else out

    def _query_job(self, query: Any, instruction: str) -> tuple[Any, int]:
        """The query's embedding job and its estimated cost (InputError -> 4xx naming `query`)."""
        try:
            item = to_item(query)
            check_item_limits(item, self.config, "query", None)
            return self.embedder.prepare(item, instruction)
        except InputError as e:
            raise from_input_error(e.located(field_prefix="query"), "query") from None

    async def _rerank_hits(self, query: Any, hits: list, k: int, deadline: float):
        """(hits reordered by the reranker, best first, at most k; those it could not read; tokens used)."""
        reranker = self.reranker

        def jobs() -> tuple[list, list, list]:
            docs, kept, failed = [], [], []
            for hit in hits:
                try:
                    docs.append(rerank_document(hit.record, reranker.max_pixels))
                    kept.append(hit)
                except Exception as e:  # noqa: BLE001 - a record whose file changed: reported, not fatal
                    failed.append({"path": hit.record.path, "reason": str(e)})
            return kept, failed, reranker.prepare_pairs(query, docs) if docs else []

        try:
            kept, failed, pairs = await run_in_threadpool(jobs)
        except InputError as e:
            raise from_input_error(e, "query") from None
        if not pairs:
            return [], failed, 0
        result = await self.run_job("rerank", [j for j, _ in pairs], len(pairs), deadline, finish=floats)
        failed += [{"path": kept[f.index].record.path, "reason": f.cause} for f in result.failures]
        return reorder(kept, result.rows, k), failed, sum(result.token_counts)

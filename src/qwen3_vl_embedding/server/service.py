"""Requests -> library inputs -> batcher -> responses. No model logic: prompts, passes and pooling are the library's.

An embedding request's inputs become prompts with `embedder.prompt(item, instruction)`; the worker
runs them with a head that returns the raw last hidden state, and each request's rows are then cut
to its `dimensions` and normalised with `pooling.matryoshka`, so vectors equal `Qwen3VLEmbedder.embed`.
A rerank request's pairs become prompts with `reranker.pair_prompts` and are scored with `reranker.head`.
"""
from __future__ import annotations

import asyncio
import base64
import time
import uuid
from typing import Any

import numpy as np

from ..errors import InputError
from ..inputs import Item, VideoPart, to_item
from ..preprocess import Sample
from .batcher import Batcher, Closed, JobResult, QueueFull
from .config import ServerConfig
from .errors import APIError, from_input_error, limit_error
from .metrics import Metrics
from .schemas import EmbeddingRequest, RerankRequest, SearchRequest, to_library


INLINE_TEXTS = 16  # a request of at most this many texts is tokenised on the event loop


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """Floats, or base64 of little-endian float32 (OpenAI's `encoding_format="base64"`)."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return np.asarray(vector, dtype=np.float32).tolist()


def ranked(scores: list[float], top_n: int | None) -> list[int]:
    """Document positions by score, best first (ties by position), at most `top_n`."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[:top_n] if top_n is not None else order


def check_item_limits(item: Item, max_frames: int, prefix: str, index: int | None) -> None:
    """Refuse video settings beyond the server's frame limit before anything is read."""
    for part in item.parts:
        if not isinstance(part, VideoPart):
            continue
        param = f"{prefix}[{index}].{part.field}" if index is not None else f"{prefix}.{part.field}"
        if part.is_frames and len(part.source) > max_frames:
            raise limit_error("max_video_frames", max_frames, f"{param}: a frame list of {len(part.source)} frames",
                              param)
        if part.max_frames is not None and part.max_frames > max_frames:
            raise limit_error("max_video_frames", max_frames, f"{param}: max_frames={part.max_frames}", param)


def _inputs(value: Any) -> list:
    return [value] if isinstance(value, str) else list(value)


class Service:
    """The server's models, their batchers and the request logic; routes call its async methods."""

    def __init__(self, config: ServerConfig, metrics: Metrics, embedder: Any = None, reranker: Any = None,
                 index: Any = None):
        self.config = config
        self.metrics = metrics
        self.embedder = embedder
        self.reranker = reranker
        self.index = index
        self.started = int(time.time())
        self.closing = False
        self.batchers: dict[str, Batcher] = {}
        self.names: dict[str, str] = {}
        if embedder is not None:
            self.names["embedding"] = config.model_name or embedder.engine.name
            self.batchers["embedding"] = self._batcher("embedding", embedder.engine, _raw_hidden)
        if reranker is not None:
            self.names["rerank"] = config.reranker_name or reranker.engine.name
            self.batchers["rerank"] = self._batcher("rerank", reranker.engine, reranker.head)

    def _batcher(self, task: str, engine: Any, head: Any) -> Batcher:
        c = self.config
        batcher = Batcher(task, engine, head, max_tokens=c.batch_tokens, wait_s=c.batch_wait_ms / 1000,
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
        return {"object": "list", "data": [{"id": name, "object": "model", "created": self.started, "owned_by": "qvl",
                                            "task": task} for task, name in self.names.items()]}

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
        self._need("embedding", "--model")
        deadline = self.deadline()
        from ..pooling import check_dim

        try:
            asked = request.dimensions if request.dimensions is not None else self.config.default_dim
            dim = check_dim(asked, self.embedder.dim)
        except ValueError as e:
            raise APIError(400, str(e).replace("dim must", "dimensions must"), param="dimensions",
                           code="invalid_dimensions") from None
        inputs = _inputs(request.input)
        if not inputs:
            raise APIError(400, "input is empty; send a string or a list of inputs", param="input",
                           code="invalid_input")
        if len(inputs) > self.config.max_items:
            raise limit_error("max_items", self.config.max_items, f"{len(inputs)} inputs in one request", "input")
        if len(inputs) <= INLINE_TEXTS and all(isinstance(x, str) for x in inputs):
            # tokenising a few texts costs less than a thread hop and blocks the loop for under a millisecond
            prompts, cost = self._embedding_prompts(inputs, request.instruction)
        else:  # many texts, or media (estimating reads headers: files, downloads): off the event loop
            from starlette.concurrency import run_in_threadpool

            prompts, cost = await run_in_threadpool(self._embedding_prompts, inputs, request.instruction)
        result = await self.run_job("embedding", prompts, cost, deadline, finish=lambda rows: pooled(rows, dim))
        if result.failures:
            first = result.failures[0]
            raise from_input_error(first.error or InputError(first.cause, field=first.field), "input", first.index)
        vectors = result.rows
        data = [{"object": "embedding", "index": i, "embedding": encode_vector(v, request.encoding_format)}
                for i, v in enumerate(vectors)]
        tokens = sum(result.token_counts)
        return {"object": "list", "data": data, "model": self.names["embedding"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def _embedding_prompts(self, inputs: list, instruction: str | None) -> tuple[list, int]:
        jobs, cost = [], 0
        for i, raw in enumerate(inputs):
            try:
                item = to_item(to_library(raw), i)
            except InputError as e:
                raise from_input_error(e, "input", i) from None
            check_item_limits(item, self.config.max_video_frames, "input", i)
            job, tokens = costed(self.embedder.engine, self.embedder.prompt(item, instruction))
            jobs.append(job)
            cost += tokens
        return jobs, cost

    # rerank ------------------------------------------------------------------------------------
    async def rerank(self, request: RerankRequest) -> dict[str, Any]:
        self._need("rerank", "--reranker")
        deadline = self.deadline()
        if len(request.documents) > self.config.max_items:
            raise limit_error("max_items", self.config.max_items, f"{len(request.documents)} documents in one request",
                              "documents")
        if not request.documents:
            return {"id": f"rerank-{uuid.uuid4().hex}", "model": self.names["rerank"], "results": [],
                    "usage": {"total_tokens": 0}}
        from starlette.concurrency import run_in_threadpool

        documents = [to_library(d) for d in request.documents]
        prompts, cost = await run_in_threadpool(self._rerank_prompts, to_library(request.query), documents,
                                                request.instruction)
        result = await self.run_job("rerank", prompts, cost, deadline, finish=floats)
        if result.failures:
            first = result.failures[0]
            raise from_input_error(first.error or InputError(first.cause, field=first.field), "documents", first.index)
        scores = result.rows
        results = []
        for i in ranked(scores, request.top_n):
            entry: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
            if request.return_documents:
                doc = documents[i]
                entry["document"] = {"text": doc} if isinstance(doc, str) else doc
            results.append(entry)
        return {"id": f"rerank-{uuid.uuid4().hex}", "model": self.names["rerank"], "results": results,
                "usage": {"total_tokens": sum(result.token_counts)}}

    def _rerank_prompts(self, query: Any, documents: list, instruction: str | None) -> tuple[list, int]:
        try:
            check_item_limits(to_item(query), self.config.max_video_frames, "query", None)
        except InputError as e:
            raise from_input_error(e if (e.field or "").startswith("query") else e.located(field_prefix="query"),
                                   "query") from None
        try:
            items = []
            for i, doc in enumerate(documents):
                items.append(to_item(doc, i))
                check_item_limits(items[-1], self.config.max_video_frames, "documents", i)
            prompts = self.reranker.pair_prompts(query, items, instruction=instruction)
        except InputError as e:
            raise from_input_error(e, "documents") from None
        jobs = [costed(self.reranker.engine, p) for p in prompts]
        return [job for job, _ in jobs], sum(tokens for _, tokens in jobs)

    # search ------------------------------------------------------------------------------------
    async def search(self, request: SearchRequest) -> dict[str, Any]:
        if self.index is None:
            raise APIError(404, "this server has no index; start it with --db DIR", code="index_not_loaded")
        if request.rerank:
            self._need("rerank", "--reranker")
        from .search import search

        return await search(self, request)


def pooled(rows: list, dim: int) -> np.ndarray:
    """A request's raw hidden states -> its embeddings: the first `dim` components, normalised (on the worker)."""
    import torch

    from ..pooling import matryoshka

    return matryoshka(torch.stack(rows), dim, normalize=True).numpy()


def floats(rows: list) -> list[float]:
    return [float(r) for r in rows]


def _raw_hidden(hidden):
    """The embedding worker's head: last hidden states as they are; each request pools its own rows."""
    return hidden


def costed(engine, prompt) -> tuple[Any, int]:
    """The job to queue and its token cost: a text-only prompt is tokenised here, once (the worker
    then only runs the model); a prompt with media is costed from headers and read by the worker."""
    try:
        cost = engine.cost(prompt)
    except Exception:  # noqa: BLE001 - a bad item is reported when it is prepared, with its cause
        return prompt, 1
    return (cost, cost.length) if isinstance(cost, Sample) else (prompt, int(cost))

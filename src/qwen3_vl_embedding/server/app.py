"""The FastAPI app: thin routes over `Service`, errors in each ecosystem's shape, `Guard` around everything."""
from __future__ import annotations

import contextlib
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from .. import __version__
from .compat import ignored_fields
from .compat_routes import add_compat_routes
from .config import ServerConfig
from .errors import APIError, style_of, styled_body, validation_message
from .guard import BodyRefused, Guard
from .links import FileLinks
from .metrics import Metrics
from .schemas import (EmbeddingRequest, EmbeddingResponse, ErrorResponse, Health, ModelList, RerankRequest,
                      RerankResponse, SearchRequest, SearchResponse)
from .service import Service
from .web import Web, add_web_routes

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in (
        (400, "invalid request"), (401, "missing or wrong API key"), (403, "media refused by the server's policy"),
        (408, "the request body arrived too slowly"), (413, "request, text or media too large"), (422, "a limit was exceeded or media cannot be decoded"),
        (429, "queue full; retry after the Retry-After header"), (503, "shutting down"), (504, "timed out"))}


def _check_policy(model: Any, config: ServerConfig, role: str) -> None:
    policy = config.media_policy()
    if model is not None and model.media_policy != policy:
        raise ValueError(f"the {role} reads media under another policy than the server's; build it with "
                         f"media_policy=config.media_policy()")


def create_app(config: ServerConfig, *, embedder: Any = None, reranker: Any = None, index: Any = None) -> FastAPI:
    """An app serving `embedder` (/v1/embeddings), `reranker` (/v1/rerank) and `index` (/v1/search, an
    `IndexSearcher` opened with the same embedder).

    The models must have been built with `media_policy=config.media_policy()`: the policy decides what
    a request may make the server read, so a model with the library's permissive default is refused."""
    if embedder is None and reranker is None:
        raise ValueError("create_app needs an embedder, a reranker or both")
    if index is not None and embedder is None:
        raise ValueError("searching an index needs the embedder that built it")
    _check_policy(embedder, config, "embedder")
    _check_policy(reranker, config, "reranker")
    metrics = Metrics()
    links = FileLinks(signed=config.api_key is not None) if index is not None else None
    service = Service(config, metrics, embedder, reranker, index, links=links)
    web = Web(service, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        # uvicorn has finished the requests in flight; now let the workers drain and stop.
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(service.close, config.request_timeout)
        web.close()

    app = FastAPI(title="qvl", version=__version__, lifespan=lifespan, responses=ERRORS,
                  description="OpenAI-compatible multimodal embeddings and reranking with Qwen3-VL-Embedding.")
    app.state.service = service
    app.state.metrics = metrics

    def error_response(request: Request, error: APIError) -> JSONResponse:
        request.state.error_code = error.code
        style = getattr(request.state, "error_style", None) or style_of(request.url.path)
        return JSONResponse(styled_body(error, style), status_code=error.status, headers=error.headers)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        message, param = validation_message(list(exc.errors()))
        return error_response(request, APIError(400, message, param=param, code="invalid_request"))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if isinstance(exc, BodyRefused):
            return error_response(request, exc.error)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request, APIError(exc.status_code, str(exc.detail), code=code,
                                                headers=dict(exc.headers or {})))

    @app.get("/health", response_model=Health, tags=["server"])
    async def health():
        return service.health()

    @app.get("/v1/models", response_model=ModelList, response_model_exclude_none=True, tags=["server"])
    async def models():
        return service.models()

    @app.get("/v1/tokenizer", tags=["server"], response_class=Response,
             responses={200: {"content": {"application/json": {}},
                              "description": "the embedding model's tokenizer (tokenizers JSON)"}})
    async def tokenizer():
        from starlette.concurrency import run_in_threadpool

        return Response(await run_in_threadpool(service.tokenizer), media_type="application/json")

    @app.get("/metrics", tags=["server"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"}})
    async def prometheus():
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.post("/v1/embeddings", response_model=EmbeddingResponse, tags=["embeddings"])
    async def embeddings(body: EmbeddingRequest):
        return JSONResponse(await service.embed(body), headers=ignored_fields(body))

    @app.post("/v1/rerank", response_model=RerankResponse, tags=["rerank"])
    async def rerank(body: RerankRequest):
        return JSONResponse(await service.rerank(body), headers=ignored_fields(body))

    @app.post("/v1/search", response_model=SearchResponse, tags=["search"])
    async def search(body: SearchRequest):
        return JSONResponse(await service.search(body))

    add_compat_routes(app, service)
    add_web_routes(app, web, config)
    app.add_middleware(Guard, api_key=config.api_key, max_body_bytes=config.max_body_bytes, metrics=metrics,
                       body_timeout=config.body_timeout, is_open=web.allows)
    return app

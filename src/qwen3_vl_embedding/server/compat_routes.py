"""The routes of the other ecosystems' clients, each mapped onto the one service (no second code path for
the numbers): Cohere's /v2/rerank, /v1/embed and /v2/embed; vLLM's /rerank, /v2/rerank, /score and
/v1/score; TEI's /embed, /rerank (a body with `texts`) and /info. OpenAI's /v1/embeddings and the shared
/v1/rerank are in app.py. Unknown top-level fields are ignored and named in a Warning header; errors take
the route's ecosystem's shape (errors.styled_body)."""
from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse

from . import cohere, tei, vllm
from .compat import ignored_fields
from .errors import APIError, validation_message
from .schemas import RerankRequest, RerankResponse, to_library
from .schemas_compat import CohereEmbedRequest, InvalidBody, ScoreRequest, TEIEmbedRequest, TEIRerankRequest, parse_body


def _parsed(model: type, data: Any) -> Any:
    try:
        return parse_body(model, data)
    except InvalidBody as e:
        message, param = validation_message(e.errors)
        raise APIError(400, message, param=param, code="invalid_request") from None


def add_compat_routes(app: FastAPI, service: Any) -> None:
    """Register the routes on `app`, answering from `service`."""

    def answer(content: Any, body: Any) -> JSONResponse:
        return JSONResponse(content, headers=ignored_fields(body))

    async def rerank_with_meta(body: RerankRequest) -> JSONResponse:
        content = await service.rerank(body)
        content["meta"] = {**cohere.meta(2), "billed_units": {"search_units": 1}}
        return answer(content, body)

    @app.post("/v2/rerank", response_model=RerankResponse, tags=["rerank"],
              summary="Rerank (Cohere v2, vLLM)")
    async def rerank_v2(body: RerankRequest):
        """Cohere's v2 rerank (`max_tokens_per_doc` keeps the first N tokens of each document's text) and
        vLLM's (documents may be {"content": [parts]}). Answers the shared rerank shape plus Cohere's `meta`."""
        return await rerank_with_meta(body)

    @app.post("/rerank", tags=["rerank"], summary="Rerank (vLLM, Jina; TEI with `texts`)")
    async def rerank_plain(request: Request, payload: dict[str, Any] = Body(...)):
        """vLLM's and Jina's rerank (`query`, `documents`) in the shared shape, or TEI's (`query`, `texts`)
        answering `[{"index", "score", "text"?}]` with TEI's errors."""
        if "texts" in payload and "documents" not in payload:
            request.state.error_style = "tei"
            body = _parsed(TEIRerankRequest, payload)
            return answer(await tei.rerank(service, body), body)
        return await rerank_with_meta(_parsed(RerankRequest, payload))

    async def score(body: ScoreRequest) -> JSONResponse:
        """vLLM's score API: pairs scored by the reranker, `data` in pair order."""
        service._need("rerank", "--reranker")
        sides = {name: [to_library(x) for x in v] if isinstance(v, list) else to_library(v)
                 for name, v in _sides(body).items()}
        return answer(await vllm.score(service, sides, body.instruction, service.names["rerank"]), body)

    app.post("/score", tags=["rerank"], summary="Score pairs (vLLM)")(score)
    app.post("/v1/score", tags=["rerank"], summary="Score pairs (vLLM)")(score)

    @app.post("/v1/embed", tags=["embeddings"], summary="Embed (Cohere v1)")
    async def embed_v1(body: CohereEmbedRequest):
        """Cohere's v1 embed: `texts` or `images`; without `embedding_types`, the `embeddings_floats` shape."""
        return answer(await cohere.embed(service, body, 1), body)

    @app.post("/v2/embed", tags=["embeddings"], summary="Embed (Cohere v2)")
    async def embed_v2(body: CohereEmbedRequest):
        """Cohere's v2 embed: `texts`, `images` or mixed `inputs`; `embedding_types`, `output_dimension`,
        `input_type`, `max_tokens`."""
        return answer(await cohere.embed(service, body, 2), body)

    @app.post("/embed", tags=["embeddings"], summary="Embed (TEI)")
    async def embed_tei(body: TEIEmbedRequest):
        """text-embeddings-inference's /embed: a list of float vectors."""
        return answer(await tei.embed(service, body), body)

    @app.get("/info", tags=["server"], summary="Model info (TEI)")
    async def info():
        return tei.info(service)


_SIDES = {"queries", "documents", "items", "text_1", "text_2", "data_1", "data_2"}


def _sides(body: ScoreRequest) -> dict[str, Any]:
    return {name: getattr(body, name) for name in _SIDES if getattr(body, name) is not None}

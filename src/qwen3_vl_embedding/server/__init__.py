"""`qvl serve`: an OpenAI-compatible embedding and rerank server over the library.

    from qwen3_vl_embedding.server import ServerConfig, create_app
    app = create_app(ServerConfig(), embedder=Qwen3VLEmbedder(..., media_policy=ServerConfig().media_policy()))

Modules: config (ServerConfig, the media policy it implies), schemas (pydantic, HTTP boundary only),
batcher (merges concurrent requests into shared passes of the library's batching loop), service
(requests -> library inputs -> responses, /v1/search included), jobs (the routes' shared helpers:
limits, encodings, orderings, heads on the worker), index_search (the index a server searches),
guard (auth, body limit, metrics, last-resort errors), errors (each ecosystem's error shape), metrics
(Prometheus), app (the routes). Other ecosystems' clients (vLLM, Cohere, Jina, TEI, LangChain's and
LlamaIndex's OpenAI classes): compat_routes (their routes), schemas_compat (their bodies), compat (tasks,
ignored fields, encodings), cohere, vllm, tei, token_ids (OpenAI token ids, with tiktoken). The search
page (with an index): web (its routes), ui/ (the page itself), browse (filters, more-like-this, index
facts), files (records' files by id), thumbnails, links (signed file links).
FastAPI and uvicorn are imported only when an app is built.
"""
from __future__ import annotations

from .config import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def create_app(*args, **kwargs):
    """Build the FastAPI app; see `app.create_app`."""
    from .app import create_app as build

    return build(*args, **kwargs)

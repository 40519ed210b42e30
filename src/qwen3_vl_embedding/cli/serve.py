"""`qvl serve`: the OpenAI-compatible embedding and rerank server (FastAPI on uvicorn)."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

DESCRIPTION = """Serve POST /v1/embeddings (OpenAI-compatible), POST /v1/rerank (with --reranker), GET /health,
/v1/models, /metrics and the OpenAPI document (/docs), and the routes of vLLM's, Cohere's and TEI's
clients (/score, /rerank, /v2/rerank, /v1/embed, /v2/embed, /embed, /info; see docs/server.md); with
--db, POST /v1/search and a search page at /. Safe by default: listens on 127.0.0.1, refuses local
files and remote URLs in requests (data URIs are always accepted) unless --allow-local-dir or
--allow-remote-media, and never fetches from private or loopback addresses."""


def register(subparsers, common) -> None:
    from .common import common_options

    # Its own copy of the shared options: the server loads a reranker only when one is named.
    p = subparsers.add_parser("serve", parents=[common_options(default_reranker=None)], help="run the HTTP server",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_options(p)
    p.set_defaults(handler=run)


def add_server_options(p: argparse.ArgumentParser, local: bool = False) -> None:
    """The server's options; `local` (`qvl ui`): no --host (always 127.0.0.1), --db also from QVL_DB or the
    default index."""
    from ..server.config import ServerConfig

    d = ServerConfig()
    g = p.add_argument_group("server")
    if local:
        p.set_defaults(host="127.0.0.1")
    else:
        g.add_argument("--host", default=os.environ.get("QVL_HOST", d.host),
                       help=f"address to listen on [QVL_HOST, default {d.host}]")
    g.add_argument("--port", type=int, default=os.environ.get("QVL_PORT", str(d.port)),
                   help=f"[QVL_PORT, default {d.port}]")
    g.add_argument("--api-key", default=None,
                   help="require 'Authorization: Bearer KEY' on every route but /health [QVL_API_KEY]")
    g.add_argument("--db", metavar="DIR",
                   help="a `qvl index` database to search with POST /v1/search and the search page at / (the "
                   "embedding model is then the index's unless --model names one)"
                   + (" [QVL_DB, default: the default index of `qvl index`]" if local else ""))
    g.add_argument("--thumbnail-cache-mb", type=float, default=d.thumbnail_cache_bytes / 2**20,
                   help="disk kept for the search page's thumbnails (DIR/thumbs) [%(default)s]")
    g.add_argument("--model-name", help="model id shown in /v1/models and responses (default: --model)")
    g.add_argument("--reranker-name", help="reranker id shown in /v1/models and responses (default: --reranker)")
    g.add_argument("--workers", type=int, default=None,
                   help="preprocessing threads per model (default: cores, up to 8)")
    m = p.add_argument_group("media (safe defaults)")
    m.add_argument("--allow-local-dir", metavar="DIR", help="let requests read files inside DIR (nothing outside it)")
    m.add_argument("--allow-remote-media", action="store_true",
                   help="let requests name http(s) URLs (never loopback, private, link-local or metadata addresses)")
    m.add_argument("--fetch-timeout", type=float, default=d.fetch_timeout, help="seconds per download [%(default)s]")
    lim = p.add_argument_group("limits (over a limit: 413 or 422 naming it)")
    lim.add_argument("--max-body-mb", type=float, default=d.max_body_bytes / 2**20,
                     help="request body size [%(default)s]")
    lim.add_argument("--max-items", type=int, default=d.max_items,
                     help="inputs or documents per request [%(default)s]")
    lim.add_argument("--max-media-mb", type=float, default=d.max_media_bytes / 2**20,
                     help="per image or video [%(default)s]")
    lim.add_argument("--max-image-pixels", type=int, default=d.max_image_pixels,
                     help="width x height of a source image or video frame, read before decoding [%(default)s]")
    lim.add_argument("--max-video-pixels", type=int, default=d.max_video_pixels,
                     help="source pixels decoded for one video: frames x width x height [%(default)s]")
    lim.add_argument("--max-video-seconds", type=float, default=d.max_video_seconds, help="[%(default)s]")
    lim.add_argument("--max-video-frames", type=int, default=d.max_video_frames,
                     help="frames read from one video (a frame list, or sampled from a file) [%(default)s]")
    lim.add_argument("--max-text-chars", type=int, default=d.max_text_chars,
                     help="characters of one text or instruction [%(default)s]")
    lim.add_argument("--header-timeout", type=float, default=d.header_timeout,
                     help="seconds for a request's headers to arrive [%(default)s]")
    lim.add_argument("--body-timeout", type=float, default=d.body_timeout,
                     help="seconds for a request's body to arrive after its headers [%(default)s]")
    b = p.add_argument_group("batching and flow control")
    b.add_argument("--no-batching", action="store_true", help="run each request alone (for comparison)")
    b.add_argument("--batch-wait-ms", type=float, default=d.batch_wait_ms,
                   help="wait for more requests [%(default)s]")
    b.add_argument("--batch-tokens", type=int, default=d.batch_tokens,
                   help="estimated tokens per merged run [%(default)s]")
    b.add_argument("--max-queue", type=int, default=d.max_queue,
                   help="queued inputs per model before 429 [%(default)s]")
    b.add_argument("--request-timeout", type=float, default=d.request_timeout, help="seconds [%(default)s]")


def config_from_args(args: argparse.Namespace):
    from ..server.config import ServerConfig

    return ServerConfig(
        host=args.host, port=args.port, api_key=args.api_key or os.environ.get("QVL_API_KEY") or None,
        model_name=args.model_name or args.model, reranker_name=args.reranker_name or args.reranker,
        default_dim=args.dim, allow_local_dir=args.allow_local_dir, allow_remote_media=args.allow_remote_media,
        fetch_timeout=args.fetch_timeout, max_body_bytes=int(args.max_body_mb * 2**20), max_items=args.max_items,
        max_media_bytes=int(args.max_media_mb * 2**20), max_image_pixels=args.max_image_pixels,
        max_video_pixels=args.max_video_pixels, max_video_seconds=args.max_video_seconds,
        max_video_frames=args.max_video_frames, max_text_chars=args.max_text_chars,
        header_timeout=args.header_timeout, body_timeout=args.body_timeout,
        batching=not args.no_batching, batch_wait_ms=args.batch_wait_ms, batch_tokens=args.batch_tokens,
        max_queue=max(args.max_queue, args.max_items), request_timeout=args.request_timeout,
        thumbnail_cache_bytes=max(1, int(args.thumbnail_cache_mb * 2**20)))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def calm_openmp() -> None:
    """Make idle OpenMP threads sleep rather than spin (unless OMP_WAIT_POLICY is set already).

    A server runs torch beside other busy threads (event loop, media preparation, clients): spinning
    OpenMP threads starve them, which made a 2-core machine 10-20x slower under load. libgomp reads
    the setting when torch is first imported, so this runs before the models load."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run(args: argparse.Namespace) -> int:
    calm_openmp()
    try:
        import uvicorn

        from ..server import create_app
    except ImportError as e:
        raise ImportError(f"qvl serve needs the server extra ({e.name} is missing): "
                          "pip install 'qwen3-vl-embedding[server]'") from None
    from .common import load_embedder, load_reranker

    config = config_from_args(args)
    log = logging.getLogger("qwen3_vl_embedding.server")
    if args.precision != "float32":
        log.warning("--precision %s does not apply: the server returns float32 vectors (OpenAI's format)",
                    args.precision)
    if not _is_loopback(config.host) and config.api_key is None:
        log.warning("listening on %s without --api-key: anyone who can reach this port can use the server",
                    config.host)
    model = _index_model(args) if args.db else None  # before loading models for nothing
    policy = config.media_policy()
    embedder = load_embedder(args, model, media_policy=policy, workers=args.workers)
    reranker = load_reranker(args, media_policy=policy, workers=args.workers) if args.reranker else None
    index = None
    if args.db:
        from ..server.index_search import IndexSearcher

        index = IndexSearcher(args.db, embedder)
    app = create_app(config, embedder=embedder, reranker=reranker, index=index)
    if not args.quiet:
        served = ", ".join(f"{task}: {name}" for task, name in app.state.service.names.items())
        page = f"; search page: http://{config.host}:{config.port}/" if index is not None else ""
        print(f"qvl: serving {served} on http://{config.host}:{config.port}{page}", file=sys.stderr)
    from ..server.slow_clients import uvicorn_options

    uvicorn.run(app, host=config.host, port=config.port, log_level="info" if args.verbose else "warning",
                timeout_graceful_shutdown=int(config.request_timeout) + 1, access_log=args.verbose,
                **uvicorn_options(config))
    return 0


def _index_model(args: argparse.Namespace) -> str:
    """The model to serve the index at --db with: --model (QVL_MODEL), else the index's own; and the
    index's weights unless --quantize says which."""
    from ..index.backends import open_store, store_exists
    from ..index.compat import index_model
    from .common import follow_index_weights

    path = args.db
    if not store_exists(path):
        raise ValueError(f"--db {path}: no index there; build one with `qvl index FOLDER --db {path}`")
    with open_store(path) as store:
        follow_index_weights(args, store.meta)
        return args.model or index_model(store)

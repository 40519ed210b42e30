"""Helpers of the server tests: a real uvicorn server on 127.0.0.1, a trap server, loopback-only network parts.

Nothing here can reach an address other than loopback: the injected resolver answers only numeric
hosts, `localhost` and the names it is given; the injected transport forwards only to loopback and
answers the fake public addresses itself, recording anything else instead of connecting.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import io
import ipaddress
import os
import socket
import threading

import httpx

from media_factory import scene
from waiting import wait_for

API_KEY = "test-key-123"
PUBLIC_IP = "93.184.216.34"  # what the fake resolver answers for *.public.example; never contacted


def png_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    scene(width, height, seed).save(buf, format="PNG")
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


class RunningServer:
    """uvicorn serving `app` in a thread on 127.0.0.1 (a port the OS picks)."""

    def __init__(self, app, graceful_timeout: int = 10, **options):
        """`options`: more uvicorn.Config settings (those of `qvl serve`: server.slow_clients.uvicorn_options)."""
        import uvicorn

        # proto given explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP,
        # and without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=graceful_timeout,
                                **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        # started: uvicorn has run the app's startup and listens (the socket is bound already).
        wait_for(lambda: self.server.started, "the test server starts",
                 alive=lambda: None if self.thread.is_alive() else "its thread ended")

    def request_stop(self) -> None:
        """Begin a graceful shutdown without waiting for it."""
        self.server.should_exit = True

    @property
    def accepting(self) -> bool:
        """Whether the server still accepts connections (False once a shutdown has begun)."""
        return any(s.is_serving() for s in getattr(self.server, "servers", []))

    def stop(self) -> None:
        """Shut down gracefully and wait until the server's thread has ended (idempotent)."""
        self.request_stop()
        self.thread.join()


class Trap:
    """An HTTP server on 127.0.0.1 that serves a real PNG at any path and records every request."""

    def __init__(self):
        hits = self.hits = []
        image = png_bytes(32, 32, 9)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", str(len(image)))
                self.end_headers()
                self.wfile.write(image)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def loopback_only_resolver(names: dict[str, list[str]]):
    """Resolve the given fake names, `localhost`, and numeric hosts only: never a DNS query."""
    def resolve(host: str, port: int) -> list[str]:
        if host in names:
            return list(names[host])
        if host == "localhost":
            return ["127.0.0.1", "::1"]
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        return list(dict.fromkeys(info[4][0] for info in infos))
    return resolve


class LoopbackOnlyTransport(httpx.BaseTransport):
    """Forwards requests for loopback addresses; answers PUBLIC_IP with `routes`; records and refuses the rest."""

    def __init__(self, routes: dict[str, httpx.Response]):
        self.routes = routes
        self.public_hits: list[str] = []
        self.refused: list[str] = []
        self.real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return self.real.handle_request(request)
        if host == PUBLIC_IP:
            self.public_hits.append(request.url.path)
            response = self.routes.get(request.url.path)
            if response is not None:
                return httpx.Response(response.status_code, headers=response.headers, content=response.content)
            return httpx.Response(404)
        self.refused.append(str(request.url))
        raise httpx.ConnectError(f"test transport: {host} is not loopback")


@functools.lru_cache(maxsize=None)
def cached_models(model_dir: str, reranker_dir: str | None, policy):
    """One embedder (and reranker) per media policy for the whole session: loading is the slow part."""
    from qwen3_vl_embedding import Qwen3VLEmbedder, Qwen3VLReranker

    embedder = Qwen3VLEmbedder(model_dir, media_policy=policy, workers=2)
    reranker = Qwen3VLReranker(reranker_dir, media_policy=policy, workers=2) if reranker_dir else None
    return embedder, reranker


def allowed_dir(base: str, media: dict) -> str:
    """A folder the main test server may read: one image, a link escaping to a file outside, and a subfolder."""
    root = os.path.join(base, "server-allowed")
    if not os.path.isdir(root):
        os.makedirs(os.path.join(root, "sub"))
        with open(media["scene.jpg"], "rb") as src, open(os.path.join(root, "sub", "inside.jpg"), "wb") as dst:
            dst.write(src.read())
        os.symlink(media["noise.png"], os.path.join(root, "escape.png"))
    return root


MAIN_LIMITS = dict(api_key=API_KEY, max_body_bytes=2 * 2**20, max_items=16, max_media_bytes=512 * 1024,
                   max_image_pixels=1_000_000, max_video_seconds=2.0, max_video_frames=8, batch_wait_ms=2.0)


def small_checkpoint(base: str) -> str:
    """The "small" random checkpoint (hidden size 256, so `dimensions` can be tested), built once per session."""
    from checkpoint import build_checkpoint

    path = os.path.join(base, "server-small")
    if not os.path.isfile(os.path.join(path, "config.json")):
        build_checkpoint(path, "small", tied=True, seed=3)
    return path


def main_config(base: str, media: dict):
    """The main test server: API key, one readable folder, remote media off, small limits."""
    from qwen3_vl_embedding.server import ServerConfig

    return ServerConfig(allow_local_dir=allowed_dir(base, media), model_name="qvl-test-embedding",
                        reranker_name="qvl-test-reranker", **MAIN_LIMITS)


@contextlib.contextmanager
def serving(config=None, *, models: tuple[str, str | None] | None = None, embedder=None, reranker=None,
            index=None):
    """A RunningServer of `create_app(config, ...)`, stopped when the block ends.

    config: a ServerConfig, or a dict of ServerConfig arguments (None: the defaults).
    models: (embedding folder, reranker folder or None), loaded once per media policy (`cached_models`);
    or pass `embedder` / `reranker` objects built under `config.media_policy()`.
    index: an index location, served through an IndexSearcher on the embedder."""
    from qwen3_vl_embedding.server import ServerConfig, create_app

    if config is None or isinstance(config, dict):
        config = ServerConfig(**(config or {}))
    if models is not None:
        embedder, reranker = cached_models(models[0], models[1], config.media_policy())
    if isinstance(index, str):
        from qwen3_vl_embedding.server.index_search import IndexSearcher

        index = IndexSearcher(index, embedder)
    running = RunningServer(create_app(config, embedder=embedder, reranker=reranker, index=index))
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def worker_held(batcher):
    """Keep `batcher`'s worker thread from taking any job until the block ends: jobs queue meanwhile, so
    the test, not the machine's speed, decides when the worker moves. Enter it before the batcher's first
    job (its worker starts then). Yields an Event; setting it releases the worker early."""
    assert batcher._thread is None, "hold the worker before its first job"  # noqa: SLF001
    gate = threading.Event()
    take = batcher._take  # noqa: SLF001 - the worker calls self._take() for each run

    def held_take():
        gate.wait()
        return take()

    batcher._take = held_take  # noqa: SLF001
    try:
        yield gate
    finally:
        gate.set()
        del batcher._take  # noqa: SLF001 - back to the class's method

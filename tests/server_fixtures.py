"""Helpers of the server tests: a real uvicorn server on 127.0.0.1, a trap server, loopback-only network parts.

Nothing here can reach an address other than loopback: the injected resolver answers only numeric
hosts, `localhost` and the names it is given; the injected transport forwards only to loopback and
answers the fake public addresses itself, recording anything else instead of connecting.
"""
from __future__ import annotations

import base64
import functools
import http.server
import io
import ipaddress
import os
import socket
import threading
import time

import httpx

from media_factory import scene

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
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 20) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


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


def start_main_server(base: str, media: dict, reranker_dir: str) -> RunningServer:
    from qwen3_vl_embedding.server import create_app

    config = main_config(base, media)
    embedder, reranker = cached_models(small_checkpoint(base), reranker_dir, config.media_policy())
    return RunningServer(create_app(config, embedder=embedder, reranker=reranker))

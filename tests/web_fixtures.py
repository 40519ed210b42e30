"""Helpers of the search page's tests: the generated library indexed once per session, servers over it,
and a headless Chromium (Debian's `chromium` driven by Playwright) that may talk to loopback only."""
from __future__ import annotations

import os
import shutil
from urllib.parse import urlparse

import pytest

from server_fixtures import RunningServer
from web_corpus import library_paths, make_library

SMALL_PIXELS = 64 * 32 * 32  # the index is embedded at a small pixel budget: fast, and enough for the tests
CHUNK = dict(chunk_tokens=48, chunk_overlap=8)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-default-apps", "--no-default-browser-check"]


def small_embedder(model_dir: str, policy=None):
    from qwen3_vl_embedding import Qwen3VLEmbedder

    extra = {"media_policy": policy} if policy is not None else {}
    return Qwen3VLEmbedder(model_dir, workers=2, max_pixels=SMALL_PIXELS, total_pixels=4 * SMALL_PIXELS, **extra)


def index_folder(root: str, db: str, embedder, model_dir: str) -> None:
    from qwen3_vl_embedding.index.indexer import IndexOptions
    from qwen3_vl_embedding.index.indexing import index_paths
    from qwen3_vl_embedding.index.ingest import IngestOptions

    report = index_paths([root], db, lambda model: embedder, model=model_dir,
                         options=IndexOptions(ingest=IngestOptions(**CHUNK)))
    assert not report.skipped, report.skipped


def library_index(base: str, model_dir: str) -> tuple[dict, str]:
    """The generated library under `base` and its index, built once per session (both test modules share it)."""
    root, db = os.path.join(base, "web-library"), os.path.join(base, "web-library-index")
    done = os.path.join(base, "web-library.done")
    if not os.path.exists(done):
        for folder in (root, db):
            shutil.rmtree(folder, ignore_errors=True)
        make_library(root)
        index_folder(root, db, small_embedder(model_dir), model_dir)
        open(done, "w").close()
    return {k: os.path.realpath(v) for k, v in library_paths(root).items()}, db


def start_index_server(db: str, model_dir: str, reranker_dir: str | None = None, **config) -> RunningServer:
    """A real server over the index `db` on 127.0.0.1 (its own thumbnail cache folder each time)."""
    from qwen3_vl_embedding import Qwen3VLReranker
    from qwen3_vl_embedding.server import ServerConfig, create_app
    from qwen3_vl_embedding.server.index_search import IndexSearcher

    settings = ServerConfig(**config)
    policy = settings.media_policy()
    embedder = small_embedder(model_dir, policy)
    reranker = Qwen3VLReranker(reranker_dir, media_policy=policy, workers=2, max_pixels=SMALL_PIXELS,
                               total_pixels=4 * SMALL_PIXELS) if reranker_dir else None
    return RunningServer(create_app(settings, embedder=embedder, reranker=reranker, index=IndexSearcher(db, embedder)))


def chromium_path() -> str | None:
    found = os.environ.get("QVL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and os.access(found, os.X_OK) else None


def launch_chromium(playwright):
    """Debian's Chromium under Playwright, or a skip saying how to install it."""
    path = chromium_path()
    if path is None:
        pytest.skip("the browser tests need Chromium: `apt-get install chromium` (as root; .ci/run does it) or set "
                    "QVL_CHROMIUM to a Chromium binary")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


class PageWatch:
    """What a page did: console errors, uncaught exceptions, dialogs (alert), and requests that left loopback
    (those are aborted)."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.outside: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("dialog", self._dialog)
        page.route("**/*", self._route)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route):
        url = urlparse(route.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in ("127.0.0.1", "localhost"):
            self.outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

"""The search page at / and the routes it reads besides POST /v1/search.

    GET /                               the page (server/ui/index.html), open: it holds no data
    GET /ui/{app.js,style.css,favicon.svg}, /favicon.ico    its assets, open
    GET /v1/index                       records per modality, folders, whether search can rerank
    GET /v1/records/{id}                one record with the links to its file and thumbnail
    GET /v1/records/{id}/file           the original (Range requests; ?download=1 to save it)
    GET /v1/records/{id}/thumbnail      a JPEG (?size=small|large), cached beside the index

Every asset is a file shipped in the package: no CDN, nothing from another origin. The page is
served with a Content-Security-Policy that allows scripts, styles and connections only from this
origin (no inline script or style), so a file name or a text chunk can never run as code, and the
page escapes them anyway (it sets text, never HTML). With `--api-key` the page asks for the key and
keeps it in the tab's session storage; files and thumbnails are reached by signed links (links.py).
"""
from __future__ import annotations

import functools
import hashlib
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..index.records import Hit, Record
from .browse import IndexFacts
from .config import ServerConfig
from .errors import APIError
from .files import RecordFiles
from .links import FileLinks
from .schemas import IndexInfo, RecordInfo
from .thumbnails import Thumbnails, cache_folder

ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8",
          "favicon.svg": "image/svg+xml"}
PAGE_PATHS = frozenset({"/", "/favicon.ico", *(f"/ui/{name}" for name in ASSETS)})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}


def page_path(path: str) -> bool:
    """True for the page and its assets (served without the API key: they hold no data)."""
    return path in PAGE_PATHS


@functools.lru_cache(maxsize=None)
def asset(name: str) -> tuple[bytes, str]:
    """An asset's bytes and ETag (read once)."""
    data = resources.files(__package__).joinpath("ui", name).read_bytes()
    return data, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def _asset_response(request: Request, name: str, media_type: str, data: bytes | None = None) -> Response:
    body, etag = asset(name) if data is None else (data, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"')
    headers = {**PAGE_HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def record_json(record: Record, links: FileLinks) -> dict[str, Any]:
    out = Hit(record, 0.0).to_json()
    del out["score"]
    return links.add_to(out, version=record.content_hash)


class Web:
    """The page's server side: the index's files, thumbnails and facts (None parts when no index is served)."""

    def __init__(self, service: Any, config: ServerConfig):
        self.service = service
        index = service.index
        self.links: FileLinks | None = service.links
        self.thumbnails = Thumbnails(cache_folder(index.store.location), config.thumbnail_cache_bytes) \
            if index is not None else None
        self.files = RecordFiles(index, self.thumbnails) if index is not None else None
        self.facts = IndexFacts(index) if index is not None else None

    def allows(self, path: str, query: str) -> bool:
        """Requests let through without the API key: the page, its assets, and signed links."""
        return page_path(path) or (self.links is not None and self.links.allows(path, query))

    def need_index(self) -> None:
        if self.files is None:
            raise APIError(404, "this server has no index; start it with --db DIR", code="index_not_loaded")

    def close(self) -> None:
        if self.thumbnails is not None:
            self.thumbnails.close()


def add_web_routes(app: FastAPI, web: Web, config: ServerConfig) -> None:
    auth = "key" if config.api_key else "none"

    @app.get("/", include_in_schema=False)
    async def page(request: Request):
        html = asset("index.html")[0].replace(b"{{auth}}", auth.encode())
        return _asset_response(request, "index.html", "text/html; charset=utf-8", html)

    @app.get("/ui/{name}", include_in_schema=False)
    async def ui_asset(name: str, request: Request):
        if name not in ASSETS:  # only the named files: a path in the URL never reaches the disk
            raise APIError(404, "no such asset", code="not_found")
        return _asset_response(request, name, ASSETS[name])

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon(request: Request):
        return _asset_response(request, "favicon.svg", ASSETS["favicon.svg"])

    @app.get("/v1/index", response_model=IndexInfo, tags=["search"])
    async def index_info():
        web.need_index()
        meta = web.service.index.meta
        facts = await web.facts.get()
        return JSONResponse({"object": "index", "model": meta.model, "dim": meta.dim, **facts,
                             "rerank": web.service.reranker is not None})

    @app.get("/v1/records/{record_id}", response_model=RecordInfo, tags=["search"])
    async def record(record_id: int):
        web.need_index()
        return JSONResponse(record_json(await web.files.record(record_id), web.links))

    @app.get("/v1/records/{record_id}/file", tags=["search"], response_class=Response,
             responses={200: {"description": "the original file (Range requests honoured)"}})
    async def record_file(record_id: int, download: bool = False):
        web.need_index()
        return await web.files.file(record_id, download)

    @app.get("/v1/records/{record_id}/thumbnail", tags=["search"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}, "description": "a JPEG thumbnail"}})
    async def record_thumbnail(record_id: int, request: Request, size: str = Query("small", pattern="^(small|large)$")):
        web.need_index()
        return await web.files.thumbnail(record_id, size, request)

"""Records' files and thumbnails by record id: the only way the server hands out a file.

A request names a record id, never a path: the path comes from the index. It is served only while it
is still the regular file the index recorded (a real path, no symbolic link put in its place, of the
record's type). Originals are served with Range support, so a <video> can seek; thumbnails come from
the on-disk cache (thumbnails.py), rendered off the event loop when missing.
"""
from __future__ import annotations

import asyncio
import mimetypes
import os
import stat

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ..filetypes import kind_of
from ..index.records import Record
from .errors import APIError
from .index_search import IndexSearcher
from .thumbnails import SIZES, ThumbnailError, Thumbnails

FILE_CACHE = "private, max-age=3600"
THUMBNAIL_CACHE = "private, max-age=86400"
TYPES = {"text": "text/plain; charset=utf-8"}  # texts of any extension are shown as plain text


def _not_found(message: str, code: str = "record_not_found") -> APIError:
    return APIError(404, message, type="invalid_request_error", code=code)


def media_type(record: Record) -> str:
    return TYPES.get(record.modality) or mimetypes.guess_type(record.path)[0] or "application/octet-stream"


def checked_path(record: Record) -> str:
    """The record's file, if it is still the regular file the index recorded (else a 404 saying why)."""
    path = record.path
    if not os.path.isabs(path) or os.path.realpath(path) != path or kind_of(path) != record.modality:
        raise _not_found("the record's file is no longer the file that was indexed", "file_changed")
    try:
        st = os.stat(path)
    except OSError:
        raise _not_found(f"{os.path.basename(path)} is no longer there; run `qvl index` again to update the index",
                         "file_missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_found("the record's file is no longer a regular file", "file_changed")
    return path


class RecordFiles:
    """Looks records up on the index's thread and answers for their files and thumbnails."""

    def __init__(self, index: IndexSearcher, thumbnails: Thumbnails):
        self.index = index
        self.thumbnails = thumbnails

    async def record(self, record_id: int) -> Record:
        found = await asyncio.wrap_future(self.index.submit(lambda store: store.records([record_id])))
        if record_id not in found:
            raise _not_found(f"no record {record_id} in this index")
        return found[record_id]

    async def file(self, record_id: int, download: bool = False) -> Response:
        """The original file (Range requests honoured); `download` asks the browser to save it."""
        record = await self.record(record_id)
        path = await run_in_threadpool(checked_path, record)
        return FileResponse(path, media_type=media_type(record), filename=os.path.basename(path),
                            content_disposition_type="attachment" if download else "inline",
                            headers={"Cache-Control": FILE_CACHE, "X-Content-Type-Options": "nosniff"})

    async def thumbnail(self, record_id: int, size: str, request: Request) -> Response:
        """The record's JPEG thumbnail at `size` (small or large): cached, else rendered on the pool."""
        if size not in SIZES:
            raise APIError(400, f"size must be one of {', '.join(SIZES)}", param="size", code="invalid_size")
        record = await self.record(record_id)
        if record.modality == "text":
            raise _not_found("text records have no thumbnail; show their text", "no_thumbnail")
        await run_in_threadpool(checked_path, record)
        try:
            path = await run_in_threadpool(self.thumbnails.cached, record, size) or \
                await asyncio.wrap_future(self.thumbnails.make(record, size))
        except ThumbnailError as e:
            raise APIError(422, f"no thumbnail: {e}", code="no_thumbnail") from None
        except FileNotFoundError:
            raise _not_found(f"{os.path.basename(record.path)} is no longer there", "file_missing") from None
        etag = f'"{os.path.basename(path)[:-len(".jpg")]}"'
        headers = {"Cache-Control": THUMBNAIL_CACHE, "ETag": etag, "X-Content-Type-Options": "nosniff"}
        if etag in [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        return FileResponse(path, media_type="image/jpeg", headers=headers)

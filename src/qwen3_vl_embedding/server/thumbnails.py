"""Thumbnails of an index's records: made on demand on a small thread pool, cached on disk, bounded.

    small   the cards of the results grid: at most 400 pixels on the long side
    large   the details view: at most 1600 pixels (a photo, a PDF page, a video's poster frame)

An image is decoded at a reduced scale where the format allows (JPEG), turned upright by its EXIF
orientation and made RGB (transparency over white); a PDF page is rendered by PDFium within the
size; a video clip shows the frame just after its start (`POSTER_OFFSET`: a clip that starts on a
cut or a fade is rarely black a moment later). Text chunks have no thumbnail: the page shows their text.

The cache is a folder (`cache_folder`: DIR/thumbs beside an embedded index, else a per-user cache
folder). A thumbnail's file name holds the record id, the size and the source file's size and mtime,
so a changed file gets a new name and its thumbnail is made again; the old one ages out. Reading a
cached thumbnail marks its access time (at most once a minute); when the folder grows past
`max_bytes`, the least recently used thumbnails are removed until it holds 80% of that.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from ..index.records import Record

SIZES = {"small": 400, "large": 1600}
QUALITY = {"small": 80, "large": 85}
POSTER_OFFSET = 0.5  # seconds after a clip's start, at most a tenth of the clip
TOUCH_EVERY = 60.0  # seconds between access-time updates of one cached thumbnail
SUFFIX = ".jpg"


class ThumbnailError(Exception):
    """No thumbnail can be made for this record (a text chunk, a file that cannot be read); says why."""


def cache_folder(location: str) -> str:
    """Where the thumbnails of the index at `location` are kept: DIR/thumbs beside an embedded index whose
    folder is writable, else ~/.cache/qvl/thumbnails/<hash of the location> ($XDG_CACHE_HOME respected)."""
    if os.path.isdir(location) and os.access(location, os.W_OK):
        return os.path.join(location, "thumbs")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.blake2b(location.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return os.path.join(base, "qvl", "thumbnails", digest)


def poster_time(record: Record) -> float:
    """The second of a video clip its poster frame is taken from."""
    start = record.start or 0.0
    span = (record.end - start) if record.end is not None else 10 * POSTER_OFFSET
    return start + min(POSTER_OFFSET, max(0.0, span) / 10)


def render(record: Record, size: str):
    """The record's thumbnail as an RGB PIL image at most SIZES[size] on its long side (ThumbnailError)."""
    from PIL import Image, ImageOps

    edge = SIZES[size]
    try:
        if record.modality == "image":
            with Image.open(record.path) as im:
                im.draft("RGB", (edge, edge))  # JPEG: decode at a reduced scale, much faster for photos
                image = ImageOps.exif_transpose(im)
                image.load()
        elif record.modality == "pdf":
            image = _pdf_page(record.path, record.page or 1, edge)
        elif record.modality == "video":
            from ..video import frame_at

            image = Image.fromarray(frame_at(record.path, poster_time(record)))
        else:
            raise ThumbnailError(f"{record.modality} records have no thumbnail")
    except ThumbnailError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader's failure: the file cannot be shown
        raise ThumbnailError(f"cannot read {os.path.basename(record.path)}: {str(e)[:200] or type(e).__name__}") \
            from None
    from ..vision import to_rgb

    image = to_rgb(image.convert("RGBA") if image.mode in ("P", "LA", "PA") else image)
    image.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    return image


def _pdf_page(path: str, page: int, edge: int):
    from ..index.ingest import close_documents_quietly, pdf_units

    try:
        units = pdf_units(path, edge * edge)
        if not 1 <= page <= len(units):
            raise ThumbnailError(f"the PDF has no page {page} any more")
        return units[page - 1].input["image"]()
    finally:
        close_documents_quietly()  # the file may change before the next thumbnail: never keep it open


class Thumbnails:
    """The thumbnail cache of one index: `cached` finds a current thumbnail, `make` renders one."""

    def __init__(self, folder: str, max_bytes: int = 1 << 30, workers: int = 2):
        if max_bytes <= 0:
            raise ValueError(f"the thumbnail cache size must be positive, got {max_bytes}")
        self.folder = folder
        self.max_bytes = max_bytes
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qvl-thumbs")
        self._lock = threading.Lock()
        self._pending: dict[str, Future] = {}
        self._total: int | None = None  # bytes in the folder, counted at the first write

    def path_of(self, record: Record, size: str) -> str:
        """The cache file of the record's thumbnail for the source file as it is now (OSError: no file)."""
        if size not in SIZES:
            raise ValueError(f"unknown thumbnail size {size!r}; choose from {', '.join(SIZES)}")
        st = os.stat(record.path)
        name = f"{record.id:016x}-{size}-{st.st_size}-{st.st_mtime_ns}{SUFFIX}"
        return os.path.join(self.folder, name[:2], name)

    def cached(self, record: Record, size: str) -> str | None:
        """The current thumbnail's path when it is cached (its access time marked), else None. Blocking."""
        path = self.path_of(record, size)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        now = time.time()
        if now - st.st_atime > TOUCH_EVERY:
            try:
                os.utime(path, (now, st.st_mtime))  # explicit: noatime mounts never update it themselves
            except OSError:
                pass
        return path

    def make(self, record: Record, size: str) -> Future:
        """A Future of the thumbnail's path, rendered on the pool (one render per thumbnail at a time)."""
        path = self.path_of(record, size)
        with self._lock:
            future = self._pending.get(path)
            if future is None:
                future = self._pool.submit(self._make, record, size, path)
                self._pending[path] = future
                future.add_done_callback(lambda _: self._forget(path))
            return future

    def _forget(self, path: str) -> None:
        with self._lock:
            self._pending.pop(path, None)

    def _make(self, record: Record, size: str, path: str) -> str:
        if os.path.exists(path):
            return path
        image = render(record, size)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{threading.get_ident()}.tmp"
        try:
            image.save(tmp, "JPEG", quality=QUALITY[size], optimize=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._added(os.path.getsize(path))
        return path

    def _added(self, nbytes: int) -> None:
        with self._lock:
            if self._total is None:
                self._total = sum(size for _, _, size in self._files())
            else:
                self._total += nbytes
            if self._total > self.max_bytes:
                self._total = self._trim(int(self.max_bytes * 0.8))

    def _files(self) -> list[tuple[float, str, int]]:
        """(access time, path, size) of every cached thumbnail."""
        out = []
        for folder, _, names in os.walk(self.folder):
            for name in names:
                if name.endswith(SUFFIX):
                    path = os.path.join(folder, name)
                    with contextlib.suppress(OSError):
                        st = os.stat(path)
                        out.append((st.st_atime, path, st.st_size))
        return out

    def _trim(self, target: int) -> int:
        """Remove the least recently used thumbnails until at most `target` bytes remain; the bytes left."""
        files = sorted(self._files())
        total = sum(size for _, _, size in files)
        for _, path, size in files:
            if total <= target:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                total -= size
        return total

    def usage(self) -> int:
        """Bytes the cached thumbnails take now (walks the folder)."""
        return sum(size for _, _, size in self._files())

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


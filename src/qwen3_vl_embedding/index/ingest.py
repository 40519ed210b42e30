"""From files to embeddable units: walk folders, detect kinds, split PDFs, videos and texts.

A unit is what one record holds: a whole image, one PDF page (rendered within the pixel budget by
PDFium, lazily, on a preprocessing thread), one video clip (a `video_start`/`video_end` span of the
file, decoded by the embedder), or one text chunk (a window of tokens overlapping the previous one).
Nothing here decodes pixels: the embedder reads media on its worker threads, a batch at a time.

Images and PDF pages carry their pixel budget by kind (budgets.py): photos within the photo budget,
PDF pages and other images within the document budget. The index records both budgets
(`IndexMeta.settings`); a run with another budget embeds again the files of that kind only
(`index_budgets`, `budget_kind`).
"""
from __future__ import annotations

import hashlib
import math
import os
import stat
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

from ..budgets import DOCUMENT_MAX_PIXELS, PHOTO_MAX_PIXELS, check_budget, image_kind
from ..constants import MAX_PIXELS
from ..filetypes import kind_of

PDF_MAX_DPI = 150


class UnitError(Exception):
    """A file that cannot be split into units; the message says why."""


@dataclass(frozen=True)
class Found:
    """A regular file met by the walk: its real path, size, mtime and kind (None: unsupported)."""

    path: str
    size: int
    mtime: float
    modality: str | None


@dataclass(frozen=True)
class Problem:
    """Something the walk or the indexer skipped, and why. `supported`: it was a file we should index."""

    path: str
    reason: str
    supported: bool = True


@dataclass(frozen=True)
class Unit:
    """One embeddable piece of a file: its number in the file, the embedder input, and where it is."""

    number: int
    input: Any
    page: int | None = None
    start: float | None = None
    end: float | None = None
    chunk: int | None = None
    text: str | None = None


# walking -----------------------------------------------------------------------------------------
def walk(roots: Iterable[str], exclude: Iterable[str] = (), hidden: bool = False,
         skip: Callable[[str], bool] | None = None) -> Iterator[Found | Problem]:
    """Every file under `roots` (files or folders), symlinks followed, each real file once.

    Folders are entered once by identity, so symlink loops end; broken links, loops and unreadable
    folders come out as Problems. Names starting with '.' are skipped unless `hidden` (a root given
    by name is always taken). `exclude`: folders never entered (the index's own folder). `skip`: a test
    of absolute paths; files and folders for which it is true are left out."""
    excluded = {os.path.realpath(e) for e in exclude}
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()

    def visit_file(path: str, st: os.stat_result) -> Iterator[Found]:
        real = os.path.realpath(path)
        if real not in seen_files:
            seen_files.add(real)
            yield Found(real, st.st_size, st.st_mtime, kind_of(real))

    def visit_dir(path: str, st: os.stat_result) -> Iterator[Found | Problem]:
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs or os.path.realpath(path) in excluded:
            return
        seen_dirs.add(key)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield Problem(path, f"cannot list folder: {e.strerror or e}")  # it may hold files to index
            return
        for entry in entries:
            if not hidden and entry.name.startswith("."):
                continue
            yield from visit(entry.path)

    def visit(path: str) -> Iterator[Found | Problem]:
        if skip is not None and skip(path):
            return
        try:
            st = os.stat(path)
        except OSError as e:
            if os.path.islink(path):
                reason = "symbolic link loop" if _is_loop(e) else "broken symbolic link"
            else:
                reason = f"cannot read: {e.strerror or e}"
            yield Problem(os.path.abspath(path), reason, supported=kind_of(path) is not None)
            return
        if stat.S_ISDIR(st.st_mode):
            yield from visit_dir(path, st)
        elif stat.S_ISREG(st.st_mode):
            yield from visit_file(path, st)
        else:
            yield Problem(os.path.abspath(path), "not a regular file", supported=False)

    for root in roots:
        yield from visit(os.path.abspath(os.path.expanduser(root)))


def _is_loop(e: OSError) -> bool:
    import errno

    return e.errno == errno.ELOOP


EXIF_IFD = 0x8769
EXIF_TAGS = (36867, 36868)  # DateTimeOriginal, DateTimeDigitized (in the Exif IFD)
EXIF_OFFSETS = {36867: 36881, 36868: 36882}  # their OffsetTime* tags
EXIF_DATETIME = 306  # DateTime (in the main IFD): when the file was last changed by the camera or an editor


def exif_datetime(value: str, offset: str | None = None) -> float | None:
    """'2024:07:14 18:03:22' (+ an optional '+02:00' offset) -> seconds since the epoch; without an offset
    the time is taken as local time, as cameras write it. None when it does not parse."""
    try:
        when = datetime.strptime(str(value).strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if offset:
        try:
            when = datetime.fromisoformat(when.isoformat() + str(offset).strip().rstrip("\x00"))
        except ValueError:
            pass
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def capture_date(path: str, modality: str | None, mtime: float) -> float:
    """When the content was made: a photo's EXIF capture time (read from its header, no pixels), else
    the file's mtime."""
    if modality != "image":
        return mtime
    try:
        from PIL import Image

        from ..media import register_heif

        register_heif()
        with Image.open(path) as im:
            exif = im.getexif()
            sub = exif.get_ifd(EXIF_IFD)
            for tag in EXIF_TAGS:
                if tag in sub:
                    found = exif_datetime(sub[tag], sub.get(EXIF_OFFSETS[tag]))
                    if found is not None:
                        return found
            if EXIF_DATETIME in exif:
                found = exif_datetime(exif[EXIF_DATETIME])
                if found is not None:
                    return found
    except Exception:  # noqa: BLE001 - no readable EXIF: the file's time
        pass
    return mtime


def content_hash(path: str, block: int = 1 << 20) -> str:
    """BLAKE2b-128 of the file's bytes, in hex."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


# units -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IngestOptions:
    """How files are split: video clip length, text chunk size and overlap (in tokens), and the pixel
    budgets of photos and of documents (PDF pages and other images). A budget left None is the index's
    (or, for a new index, the default), filled in by the Indexer; `units` called without one leaves
    images at the embedder's budget and renders PDF pages within the official one."""

    clip_seconds: float = 10.0
    chunk_tokens: int = 512
    chunk_overlap: int = 64
    photo_max_pixels: int | None = None
    document_max_pixels: int | None = None

    def __post_init__(self):
        if self.clip_seconds <= 0:
            raise ValueError(f"--clip-seconds must be positive, got {self.clip_seconds}")
        if self.chunk_tokens < 16:
            raise ValueError(f"--chunk-tokens must be at least 16, got {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ValueError(f"--chunk-overlap must be from 0 to chunk tokens - 1, got {self.chunk_overlap}")
        for name in BUDGET_KEYS.values():
            if getattr(self, name) is not None:
                check_budget(f"--{name.replace('_', '-')}", getattr(self, name))

    def settings(self) -> dict:
        """What the index records: the splitting settings, and the budgets that are set."""
        out = {"clip_seconds": self.clip_seconds, "chunk_tokens": self.chunk_tokens,
               "chunk_overlap": self.chunk_overlap}
        out.update({key: getattr(self, key) for key in BUDGET_KEYS.values() if getattr(self, key) is not None})
        return out

    def budget(self, kind: str) -> int | None:
        """The pixel budget of a "photo" or a "document" (None: not set)."""
        return getattr(self, BUDGET_KEYS[kind])


BUDGET_KEYS = {"photo": "photo_max_pixels", "document": "document_max_pixels"}  # IndexMeta.settings keys


def budget_kind(path: str, modality: str | None) -> str | None:
    """"photo" or "document" for an image or a PDF (budgets.image_kind), None for videos and texts."""
    if modality == "pdf":
        return "document"
    if modality == "image":
        return image_kind(path)
    return None


def index_budgets(stored: dict, options: IngestOptions, model_max_pixels: int, has_files: bool
                  ) -> tuple[dict[str, int], set[str]]:
    """The budgets a run reads images with ({"photo_max_pixels": N, "document_max_pixels": M}), and the
    kinds whose budget differs from the one their files were embedded with (to be embedded again).

    A budget asked for wins; else the index's; else the default: PHOTO_MAX_PIXELS for photos (at most
    the model's `max_pixels`) and the model's `max_pixels` for documents. An index made before budgets
    were recorded read every image within the model's budget: it keeps that until asked otherwise."""
    defaults = {"photo": min(PHOTO_MAX_PIXELS, model_max_pixels), "document": model_max_pixels or DOCUMENT_MAX_PIXELS}
    budgets, changed = {}, set()
    for kind, key in BUDGET_KEYS.items():
        before = stored.get(key, model_max_pixels if has_files else None)
        now = options.budget(kind) or before or defaults[kind]
        budgets[key] = int(now)
        if before is not None and int(before) != int(now):
            changed.add(kind)
    return budgets, changed


def units(found: Found, options: IngestOptions, tokenizer: Any = None) -> list[Unit]:
    """The units of a supported file (raises UnitError saying why there are none)."""
    if found.size == 0:
        raise UnitError("empty file")
    if found.modality == "image":
        budget = options.budget(image_kind(found.path))
        return [Unit(0, {"image": found.path, **({"max_pixels": budget} if budget else {})})]
    if found.modality == "pdf":
        return pdf_units(found.path, options.budget("document") or MAX_PIXELS)
    if found.modality == "video":
        return video_units(found.path, options.clip_seconds)
    if found.modality == "text":
        return text_units(found.path, tokenizer, options.chunk_tokens, options.chunk_overlap)
    raise UnitError(f"unsupported file type ({os.path.splitext(found.path)[1] or 'no extension'})")


# PDF ---------------------------------------------------------------------------------------------
# PDFium may not be called from two threads at once, even on different documents: one lock for all.
_PDFIUM = threading.Lock()
_open_pdf: list = [None, None]  # [path, PdfDocument]: pages are usually rendered in order


def _document(path: str):
    """The open document of `path` (call with _PDFIUM held)."""
    import pypdfium2 as pdfium

    if _open_pdf[0] != path:
        close_documents()
        _open_pdf[:] = [path, pdfium.PdfDocument(path)]
    return _open_pdf[1]


def close_documents() -> None:
    """Close the cached PDF document."""
    doc = _open_pdf[1]
    _open_pdf[:] = [None, None]
    if doc is not None:
        doc.close()


def render_scale(width_pt: float, height_pt: float, max_pixels: int, max_dpi: float = PDF_MAX_DPI) -> float:
    """Points -> pixels factor: at most `max_dpi`, and width x height within `max_pixels`."""
    area = max(width_pt * height_pt, 1.0)
    return min(max_dpi / 72.0, math.sqrt(max_pixels / area))


class PdfPage:
    """A lazy image: calling it renders page `index` (0-based) of the PDF at `scale` into a PIL image."""

    def __init__(self, path: str, index: int, scale: float, size: tuple[int, int]):
        self.path, self.index, self.scale, self.size = path, index, scale, size

    def __call__(self):
        with _PDFIUM:
            page = _document(self.path)[self.index]
            try:
                bitmap = page.render(scale=self.scale)
                image = bitmap.to_pil().convert("RGB")  # a copy: the bitmap's buffer is freed with it
                bitmap.close()
            finally:
                page.close()
        return image

    def __repr__(self) -> str:
        return f"PdfPage({self.path!r}, page={self.index + 1})"


def pdf_units(path: str, max_pixels: int) -> list[Unit]:
    try:
        with _PDFIUM:
            doc = _document(path)
            sizes = [doc.get_page_size(i) for i in range(len(doc))]
    except Exception as e:
        close_documents_quietly()
        raise UnitError(f"cannot read PDF: {_reason(e)}") from None
    if not sizes:
        raise UnitError("the PDF has no pages")
    out = []
    for i, (w, h) in enumerate(sizes):
        scale = render_scale(w, h, max_pixels)
        page = PdfPage(path, i, scale, (max(1, round(w * scale)), max(1, round(h * scale))))
        out.append(Unit(i, {"image": page, "max_pixels": max_pixels}, page=i + 1))
    return out


def close_documents_quietly() -> None:
    try:
        with _PDFIUM:
            close_documents()
    except Exception:
        pass


# video -------------------------------------------------------------------------------------------
def clip_spans(duration: float, clip_seconds: float) -> list[tuple[float, float]]:
    """[start, end) windows of `clip_seconds` covering [0, duration]; a last piece shorter than a
    quarter of a clip joins the clip before it."""
    if duration <= 0:
        return []
    n = max(1, math.floor(duration / clip_seconds))
    if duration - n * clip_seconds >= clip_seconds / 4:
        n += 1
    spans = [(i * clip_seconds, min((i + 1) * clip_seconds, duration)) for i in range(n)]
    spans[-1] = (spans[-1][0], duration)
    return [(round(a, 3), round(b, 3)) for a, b in spans]


def video_duration(path: str) -> float:
    """Seconds, from the container header when possible, else by opening the video."""
    from ..errors import InputError
    from ..video import open_video, probe_video

    info = probe_video(path)
    if info is not None:
        frames, fps, _, _ = info
        return frames / fps
    try:
        return open_video(path).duration
    except InputError as e:
        raise UnitError(e.cause) from None


def video_units(path: str, clip_seconds: float) -> list[Unit]:
    duration = video_duration(path)
    spans = clip_spans(duration, clip_seconds)
    if not spans:
        raise UnitError("the video has no frames")
    return [Unit(i, {"content": [{"type": "video", "video": path, "video_start": a, "video_end": b}]},
                 start=a, end=b) for i, (a, b) in enumerate(spans)]


# text --------------------------------------------------------------------------------------------
def read_text(path: str) -> str:
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data[:8192]:
        raise UnitError("binary data in a text file")
    text = data.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise UnitError("no text (only whitespace)")
    return text


def token_windows(n_tokens: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) token windows of `size`, each overlapping the previous by `overlap`; the last ends at n."""
    if n_tokens <= 0:
        return []
    step = size - overlap
    out = []
    start = 0
    while True:
        end = min(start + size, n_tokens)
        out.append((start, end))
        if end >= n_tokens:
            return out
        start += step


def chunk_text(text: str, tokenizer: Any, size: int, overlap: int) -> list[str]:
    """The text cut into windows of `size` tokens overlapping by `overlap`, as exact substrings."""
    offsets = tokenizer.encode(text, add_special_tokens=False).offsets
    chunks = []
    for a, b in token_windows(len(offsets), size, overlap):
        piece = text[offsets[a][0]:offsets[b - 1][1]].strip()
        if piece:
            chunks.append(piece)
    return chunks


def text_units(path: str, tokenizer: Any, size: int, overlap: int) -> list[Unit]:
    try:
        text = read_text(path)
    except OSError as e:
        raise UnitError(f"cannot read: {e.strerror or e}") from None
    chunks = chunk_text(text, tokenizer, size, overlap)
    if not chunks:
        raise UnitError("no text (only whitespace)")
    return [Unit(i, {"text": c}, chunk=i, text=c) for i, c in enumerate(chunks)]


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]

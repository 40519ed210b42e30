"""Pixel budgets by kind of image: photos are read smaller than documents.

The official default budget (`max_pixels` 1,843,200, 1,800 tokens) is made for documents and
screenshots, where small text must stay legible. A photo needs far less: the model's photo retrieval
benchmarks (MSCOCO and VisualNews in MMEB-v2) use images of roughly 0.3 megapixels, and a 12-megapixel
phone photo read at the official budget costs six times the tokens those results needed (and on 2 CPU
cores about 176 s with float32 weights, against about 15 s at 0.2 megapixels). So `qvl index` reads
photos within PHOTO_MAX_PIXELS and documents within the official budget; `embed(..., max_pixels=
PixelBudgets())` does the same in the library. `process()` keeps the official budget for every image.

The rule (`image_kind`): an image is a photo when its type is one cameras and phones save photos as
(JPEG, HEIC/HEIF, WebP, TIFF: filetypes.PHOTO_EXTENSIONS), or when its EXIF names a camera (Make or
Model); every other image (PNG screenshots, GIF, BMP, scans without camera tags) and every rendered PDF
page is a document.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

from .constants import IMAGE_FACTOR, MAX_PIXELS, MIN_PIXELS
from .filetypes import IMAGE_EXTENSIONS, PHOTO_EXTENSIONS
from .inputs import is_image_loader

PHOTO_MAX_PIXELS = 320 * IMAGE_FACTOR * IMAGE_FACTOR  # 327,680 pixels, 320 tokens: about 660 x 495
DOCUMENT_MAX_PIXELS = MAX_PIXELS  # the official default, 1,843,200 pixels, 1,800 tokens
CAMERA_TAGS = (271, 272)  # EXIF Make, Model (in the main IFD)
PHOTO_FORMATS = frozenset({"JPEG", "MPO", "HEIF", "WEBP", "TIFF"})  # Pillow's names of the photo types
PHOTO_MIME = ("image/jpeg", "image/jpg", "image/heic", "image/heif", "image/webp", "image/tiff")
RULE = ("photo: JPEG, HEIC/HEIF, WebP or TIFF, or any image whose EXIF names a camera (Make/Model); "
        "document: PDF pages and every other image (PNG, GIF, BMP)")


@dataclass(frozen=True)
class PixelBudgets:
    """The pixel budget of a photo and of a document. Calling it with an image source gives that
    image's budget, so it can be passed as `embed(..., max_pixels=PixelBudgets())`."""

    photo: int = PHOTO_MAX_PIXELS
    document: int = DOCUMENT_MAX_PIXELS

    def __post_init__(self):
        check_budget("the photo budget", self.photo)
        check_budget("the document budget", self.document)

    def of_kind(self, kind: str) -> int:
        return self.photo if kind == "photo" else self.document

    def __call__(self, source: Any) -> int:
        return self.of_kind(image_kind(source))


def check_budget(name: str, value: Any) -> int:
    """A pixel budget: an integer of at least MIN_PIXELS (2 x 2 tokens); ValueError naming `name` if not."""
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_PIXELS:
        raise ValueError(f"{name} must be an integer of at least {MIN_PIXELS:,} pixels (2 x 2 tokens), got {value!r}")
    return value


def image_kind(source: Any) -> str:
    """"photo" or "document" for an image source (path, URL, data URI, bytes, PIL image or loader),
    by the rule in the module docstring. Reads at most a file's header."""
    if is_image_loader(source):
        return "document"  # a rendered page
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str):
        if source.startswith("data:"):
            return "photo" if source[5:].lower().startswith(PHOTO_MIME) else "document"
        remote = source.startswith(("http://", "https://"))
        ext = os.path.splitext((source.split("?", 1)[0] if remote else source).lower())[1]
        if ext in PHOTO_EXTENSIONS:
            return "photo"
        if remote or ext not in IMAGE_EXTENSIONS:
            return "document"
        return "photo" if _opened_is_photo(source) else "document"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "photo" if _opened_is_photo(io.BytesIO(bytes(source))) else "document"
    return "photo" if _is_photo(source) else "document"


def has_camera_exif(image: Any) -> bool:
    """True when a PIL image's EXIF names the camera that took it (Make or Model)."""
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - unreadable EXIF: no camera
        return False
    return any(str(exif.get(tag, "")).strip("\x00 ") for tag in CAMERA_TAGS)


def _is_photo(image: Any) -> bool:
    return getattr(image, "format", None) in PHOTO_FORMATS or has_camera_exif(image)


def _opened_is_photo(file: Any) -> bool:
    from PIL import Image

    from .media import register_heif

    register_heif()
    try:
        with Image.open(file) as im:
            return _is_photo(im)
    except Exception:  # noqa: BLE001 - unreadable: the embedder reports it; the budget does not matter
        return False

"""The file types this package reads, by extension: one list for the library and the index."""
from __future__ import annotations

import os

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tiff", ".tif", ".heic", ".heif"})
# Images taken as photos by their type alone (budgets.py: any other image is a photo when its EXIF names a
# camera, else a document: PNG screenshots, scans, diagrams, GIF, BMP).
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".heic", ".heif", ".webp", ".tiff", ".tif"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi"})
PDF_EXTENSIONS = frozenset({".pdf"})
TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".rst"})
KINDS = {**{e: "image" for e in IMAGE_EXTENSIONS}, **{e: "video" for e in VIDEO_EXTENSIONS},
         **{e: "pdf" for e in PDF_EXTENSIONS}, **{e: "text" for e in TEXT_EXTENSIONS}}


def kind_of(path: str) -> str | None:
    """"image", "video", "pdf", "text", or None for a file type that is not read."""
    return KINDS.get(os.path.splitext(path)[1].lower())

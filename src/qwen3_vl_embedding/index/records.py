"""The record schema of the index: what one embedded item is, where it came from, and how to filter it.

A record is one embedded unit of a file: an image, one page of a PDF, one time span of a video, or
one chunk of a text file. Its id is derived from the file's path and the unit's place in the file,
so a resumed or repeated run writes the same ids again and can never duplicate a unit.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime

MODALITIES = ("image", "pdf", "video", "text")


def record_id(path: str, modality: str, unit: int) -> int:
    """A stable 63-bit id of unit `unit` (0-based page, clip or chunk number) of the file at `path`."""
    digest = hashlib.blake2b(f"{modality}\0{unit}\0{path}".encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # positive in a signed 64-bit integer (SQLite, FAISS)


@dataclass(frozen=True)
class Record:
    """One embedded unit.

    page: PDF page, counted from 1. start / end: video span in seconds. chunk: text chunk, counted
    from 0. text: the chunk's text (text records only). content_hash / mtime: of the file when it was
    embedded. model / instruction / dim: what the vector was made with. date: when the content was
    made, in seconds since the epoch: a photo's EXIF capture time, else the file's mtime (None in
    records written before dates were kept: `when` falls back to the mtime)."""

    id: int
    path: str
    modality: str
    content_hash: str
    mtime: float
    model: str
    instruction: str
    dim: int
    page: int | None = None
    start: float | None = None
    end: float | None = None
    chunk: int | None = None
    text: str | None = None
    date: float | None = None

    @property
    def when(self) -> float:
        """The record's date, or its file's mtime when no date was kept."""
        return self.date if self.date is not None else self.mtime

    def locator(self) -> str:
        """Where in the file: 'page 3', '0:10-0:20', 'chunk 2', or '' for a whole image."""
        if self.page is not None:
            return f"page {self.page}"
        if self.start is not None and self.end is not None:
            return f"{format_seconds(self.start)}-{format_seconds(self.end)}"
        if self.chunk is not None:
            return f"chunk {self.chunk}"
        return ""


@dataclass(frozen=True)
class Hit:
    record: Record
    score: float
    similarity: float | None = None  # the embedding similarity when `score` comes from the reranker

    def to_json(self) -> dict:
        """The `qvl search --json` object (see docs/index.md)."""
        r = self.record
        out: dict = {"path": r.path, "score": round(float(self.score), 6), "modality": r.modality}
        if r.page is not None:
            out["page"] = r.page
        if r.start is not None:
            out["start"] = round(r.start, 3)
            out["end"] = round(r.end, 3) if r.end is not None else None
        if r.chunk is not None:
            out["chunk"] = r.chunk
        if r.text is not None:
            out["text"] = r.text
        if self.similarity is not None:
            out["similarity"] = round(float(self.similarity), 6)
        out["date"] = iso_date(r.when)
        out["id"] = r.id
        return out


@dataclass(frozen=True)
class FileState:
    """What the index knows of one file: for incremental runs.

    status: 'partial' (being indexed, or interrupted), 'done', 'failed' (error says why), or 'stale'
    (indexed, and to be embedded again by a forced run: its records stay searchable until its new ones
    are all in)."""

    path: str
    content_hash: str
    size: int
    mtime: float
    modality: str
    status: str = "partial"
    records: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Filters:
    """Search filters: modalities (any of), path globs (any of) and a date range (`after` <= date <
    `before`, seconds since the epoch, on `Record.when`); all that are set must hold.

    Globs use shell syntax on the absolute path, where `*` also crosses '/': `*.jpg`, `*/2023/*`."""

    modalities: frozenset[str] = field(default_factory=frozenset)
    path_globs: tuple[str, ...] = ()
    after: float | None = None
    before: float | None = None

    def __post_init__(self):
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modality {sorted(unknown)}; choose from {', '.join(MODALITIES)}")

    @property
    def empty(self) -> bool:
        return not self.modalities and not self.path_globs and self.after is None and self.before is None

    def matches(self, record: Record) -> bool:
        """The same test as `sql()`, for stores that filter in Python."""
        if self.modalities and record.modality not in self.modalities:
            return False
        if self.after is not None and not record.when >= self.after:
            return False
        if self.before is not None and not record.when < self.before:
            return False
        return not self.path_globs or any(fnmatch.fnmatchcase(record.path, g) for g in self.path_globs)

    def sql(self, table: str = "records", has_date: bool = True) -> tuple[str, list]:
        """A WHERE clause (without 'WHERE', '1' when empty) and its parameters (`has_date`: the table has a
        date column; without it dates are the mtimes)."""
        when = f"COALESCE({table}.date, {table}.mtime)" if has_date else f"{table}.mtime"
        clauses, params = [], []
        if self.modalities:
            clauses.append(f"{table}.modality IN ({','.join('?' * len(self.modalities))})")
            params += sorted(self.modalities)
        if self.path_globs:
            clauses.append("(" + " OR ".join(f"{table}.path GLOB ?" for _ in self.path_globs) + ")")
            params += list(self.path_globs)
        if self.after is not None:
            clauses.append(f"{when} >= ?")
            params.append(float(self.after))
        if self.before is not None:
            clauses.append(f"{when} < ?")
            params.append(float(self.before))
        return (" AND ".join(clauses) or "1"), params


def parse_filters(specs: list[str] | None, cwd: str | None = None) -> Filters:
    """`--filter` values: 'modality=image,video' and 'path=GLOB' (repeatable; same key = any of)."""
    modalities: set[str] = set()
    globs: list[str] = []
    for spec in specs or []:
        key, sep, value = spec.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise ValueError(f"bad filter {spec!r}: use modality=image,video or path=GLOB")
        if key == "modality":
            modalities.update(v.strip().lower() for v in value.split(",") if v.strip())
        elif key == "path":
            globs.append(path_glob(value, cwd))
        else:
            raise ValueError(f"unknown filter key {key!r} in {spec!r}: use modality=... or path=...")
    return Filters(frozenset(modalities), tuple(globs))


def path_glob(pattern: str, cwd: str | None = None) -> str:
    """A user's glob made absolute: './x/*' and '~/x/*' are resolved, 'x/*.jpg' matches anywhere, a folder
    matches everything under it."""
    pattern = os.path.expanduser(pattern)
    if pattern.startswith(("./", "../")) or pattern in (".", ".."):
        pattern = os.path.normpath(os.path.join(cwd or os.getcwd(), pattern))
    elif not os.path.isabs(pattern) and not pattern.startswith("*"):
        pattern = "*/" + pattern
    if os.path.isabs(pattern) and os.path.isdir(pattern):  # a folder: everything under it
        pattern = os.path.join(os.path.realpath(pattern), "*")
    return pattern


def iso_date(t: float) -> str:
    """Seconds since the epoch as local ISO 8601 with its UTC offset: 2024-07-14T18:03:22+02:00."""
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def format_seconds(t: float) -> str:
    """1:05, 1:02:03, or 0:07.5 when a fraction matters."""
    whole = int(t)
    frac = t - whole
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    sec = f"{s:02d}" if frac < 0.05 else f"{s + frac:04.1f}"
    return f"{h}:{m:02d}:{sec}" if h else f"{m}:{sec}"

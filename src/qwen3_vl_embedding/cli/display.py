"""Plain-text presentation for the `qvl` commands: aligned tables, paths, sizes."""
from __future__ import annotations

import os
import time
from typing import Sequence

from ..index.records import Hit


def display_path(path: str, cwd: str | None = None) -> str:
    """`path` relative to the working folder when it lies inside it, else as is."""
    cwd = cwd or os.getcwd()
    try:
        rel = os.path.relpath(path, cwd)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; `right`: indexes of right-aligned columns."""
    cells = [list(map(str, headers))] + [list(map(str, r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def snippet(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def hits_table(hits: Sequence[Hit], reranked: bool = False, numbers: bool = True) -> str:
    """Rank, score, date (a photo's capture day, else the file's), modality, where in the file, path."""
    headers = [*(["#"] if numbers else []), "score", *(["similarity"] if reranked else []), "date", "modality",
               "where", "path"]
    rows = []
    for i, h in enumerate(hits, 1):
        r = h.record
        where = r.locator()
        path = display_path(r.path)
        if r.modality == "text":
            path = f"{path}  {snippet(r.text)}"
        rows.append([*([str(i)] if numbers else []), f"{h.score:.4f}", *([f"{h.similarity:.4f}"] if reranked else []),
                     time.strftime("%Y-%m-%d", time.localtime(r.when)), r.modality, where, path])
    scores = 2 if reranked else 1
    return table(rows, headers, right=tuple(range(scores + 1)) if numbers else tuple(range(scores)))

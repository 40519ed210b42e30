"""`qvl index --estimate`: how long a run would take, measured on a small sample of its files; nothing
is written (an existing index is only read, a new one is not created).

The files a run would embed (new, changed, or of a kind whose pixel budget changes) are grouped by
kind: photos, document images, PDFs, videos, texts. From each kind a few files spread over the list
are split into their units as a run would, and up to `max_units` units of each are embedded, kind by
kind, after a warm-up item (loading and, with int8 weights, compiling are not part of a run's rate).
Seconds per unit x units per sampled file gives their time; per kind, that time per file (images) or
per byte (the rest, whose pages, clips and chunks grow with their size) times the kind's total is the
expectation. Files touched but unchanged count as changed here (a run recognises them by their hash);
files that failed before and have not changed are left out, as a run leaves them (unless retry_failed).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable

from . import ingest
from .eta import format_seconds, size_units
from .indexer import IndexOptions, excluder, plan_file, stale_states
from .ingest import Found, Problem, UnitError
from .records import FileState
from .store import IndexMeta

KIND_NAMES = {"photo": "photos", "document": "document images", "pdf": "PDFs", "video": "videos", "text": "texts"}


@dataclass
class KindEstimate:
    kind: str  # photo, document, pdf, video or text
    files: int  # files of this kind the run would embed
    sampled_files: int = 0
    sampled_units: int = 0  # units embedded from them
    units_in_sample: int = 0  # units those files have in all
    seconds: float = 0.0  # embedding the sampled units
    expected_seconds: float | None = None  # all files of this kind; None when no sampled file could be read


@dataclass
class RunEstimate:
    files_seen: int
    unchanged_files: int
    budgets: dict
    kinds: list[KindEstimate] = field(default_factory=list)
    warmup_seconds: float = 0.0

    @property
    def files_to_embed(self) -> int:
        return sum(k.files for k in self.kinds)

    @property
    def expected_seconds(self) -> float:
        return sum(k.expected_seconds or 0.0 for k in self.kinds)

    def to_json(self) -> dict:
        return {"files_seen": self.files_seen, "unchanged_files": self.unchanged_files,
                "files_to_embed": self.files_to_embed, "expected_seconds": round(self.expected_seconds, 1),
                "warmup_seconds": round(self.warmup_seconds, 2), "budgets": self.budgets,
                "kinds": [asdict(k) for k in self.kinds]}

    def describe(self) -> list[str]:
        """The estimate in a few lines of text."""
        if not self.kinds:
            return [f"nothing to embed: {self.unchanged_files} of {self.files_seen} file(s) unchanged"]
        counts = ", ".join(f"{k.files:,} {KIND_NAMES[k.kind]}" for k in self.kinds)
        lines = [f"{self.files_to_embed:,} file(s) to embed ({counts}); {self.unchanged_files:,} unchanged"]
        for k in self.kinds:
            if k.expected_seconds is None:
                lines.append(f"  {KIND_NAMES[k.kind]}: none of the sampled files could be read")
                continue
            of = f" of {k.units_in_sample}" if k.units_in_sample != k.sampled_units else ""
            lines.append(f"  {KIND_NAMES[k.kind]}: sample of {k.sampled_files} file(s), {k.sampled_units}{of} "
                         f"item(s) embedded in {k.seconds:.1f} s -> {format_seconds(k.expected_seconds)}")
        lines.append(f"expected time: about {format_seconds(self.expected_seconds)} for this run "
                     f"(model loading and warm-up not included: {self.warmup_seconds:.1f} s here)")
        return lines


def file_kind(found: Found) -> str:
    return ingest.budget_kind(found.path, found.modality) if found.modality == "image" else found.modality


def spread(items: list, n: int) -> list:
    """`n` items spread evenly over the list (all of them when there are no more than `n`)."""
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)] if n > 1 else [items[len(items) // 2]]


def estimate_run(roots: Iterable[str], embedder: Any, options: IndexOptions | None = None,
                 meta: IndexMeta | None = None, states: dict[str, FileState] | None = None, *,
                 exclude: Iterable[str] = (), sample: int = 3, max_units: int = 4) -> RunEstimate:
    """The expected time of indexing `roots` into an index with `meta` and file `states` (None and {}
    for a new index) with `embedder`; embeds a sample, writes nothing."""
    options = options or IndexOptions()
    states = dict(states or {})
    found = [f for f in ingest.walk(roots, exclude=exclude, hidden=options.hidden, skip=excluder(options.exclude))
             if not isinstance(f, Problem) and f.modality is not None]
    budgets, changed = ingest.index_budgets(meta.settings if meta else {}, options.ingest, embedder.max_pixels,
                                            bool(states))
    states.update((s.path, s) for s in stale_states(states, changed))
    ingest_options = replace(options.ingest, **budgets)
    decisions = [plan_file(f, states.get(f.path), options) for f in found]
    todo = [f for f, d in zip(found, decisions) if d == "embed"]
    result = RunEstimate(len(found), decisions.count("unchanged"), budgets)
    by_kind: dict[str, list[Found]] = {}
    for f in sorted(todo, key=lambda f: f.path):
        by_kind.setdefault(file_kind(f), []).append(f)
    if not by_kind:
        return result
    embed_options = {"dim": meta.dim if meta else None,
                     "instruction": meta.document_instruction if meta else None, "show_progress": False}
    result.warmup_seconds = _warm_up(embedder, embed_options)
    tokenizer = embedder.text_tokenizer
    try:
        for kind in KIND_NAMES:
            files = by_kind.get(kind)
            if files:
                result.kinds.append(_measure(kind, files, embedder, embed_options, ingest_options, tokenizer,
                                             sample, max_units))
    finally:
        ingest.close_documents_quietly()
    return result


def _warm_up(embedder: Any, embed_options: dict) -> float:
    from PIL import Image

    t = time.perf_counter()
    embedder.embed(["warm-up", {"image": Image.new("RGB", (64, 64), (90, 120, 150))}], **embed_options)
    return time.perf_counter() - t


def _measure(kind: str, files: list[Found], embedder: Any, embed_options: dict, ingest_options: Any,
             tokenizer: Any, sample: int, max_units: int) -> KindEstimate:
    out = KindEstimate(kind, len(files))
    picked: list[tuple[Found, int]] = []  # (file, its units)
    inputs: list = []
    first = spread(files, sample)
    chosen = {f.path for f in first}
    for f in first + [f for f in files if f.path not in chosen]:  # the spread ones, then others if they fail
        if len(picked) == sample:
            break
        try:
            units = ingest.units(f, ingest_options, tokenizer)
        except (UnitError, OSError):
            continue
        picked.append((f, len(units)))
        inputs += [u.input for u in units[:max_units]]
    if not inputs:
        return out
    t = time.perf_counter()
    result = embedder.embed(inputs, on_error="skip", **embed_options)
    out.seconds = time.perf_counter() - t
    embedded = len(inputs) - len(result.failures)
    out.sampled_files, out.sampled_units = len(picked), len(inputs)
    out.units_in_sample = sum(n for _, n in picked)
    if not embedded:
        return out
    per_unit = out.seconds / embedded
    per_size = per_unit * out.units_in_sample / sum(size_units(f) for f, _ in picked)
    out.expected_seconds = per_size * sum(size_units(f) for f in files)
    return out

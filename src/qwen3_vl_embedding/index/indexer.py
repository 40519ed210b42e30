"""One run of `qvl index` over an open store: streaming, resumable and incremental (indexing.py opens it).

The walk lists files first (cheap: names and stat), removes the records of files that no longer
exist, then streams the units of new and changed files through the embedder's `iter_embed`. Data
flows one way: the input generator only reads files and notes what it decided about each (the file
states due); the loop around the embedder writes those states, then the vectors, to the store.
Vectors are written to the store as batches finish and committed every `commit_seconds`, so an
interrupted run keeps what it had committed; each file's state says whether it is complete, and a
re-run embeds only what is missing (record ids are deterministic). Unchanged files are recognised
by size and mtime, then by content hash (a touched but identical file is not embedded again).

A file embedded again (changed, or forced) keeps its old records searchable: new records replace
old ones in place (same ids), and the records of units the file no longer has are dropped when its
last new record is in. `force` first marks every indexed file under the roots 'stale' (one commit);
a stale file is embedded whole and becomes 'done' when finished, so an interrupted forced run, run
again, finds the stale files left and embeds only those.

The embedder may be given as a function that loads it: it is called only when a unit must be embedded,
so a run over unchanged files loads no model. A file that failed before and has not changed since is
not tried again (`IndexReport.known_failed`) unless `retry_failed` or `force`. `exclude` globs (shell
syntax on absolute paths, `*` crossing '/') leave out matching files and folders, and forget their
records when they were indexed before.

Images and PDF pages are read within the index's pixel budget of their kind (ingest.index_budgets). A
run with another budget records it and marks the indexed files of that kind 'stale' first (one commit),
so that they, and only they, are embedded again, even if the run is interrupted. The progress bar shows
items/s and the time left (eta.py).
"""
from __future__ import annotations

import fnmatch
import itertools
import os
import re
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..constants import MAX_PIXELS
from ..contracts import Embedder
from . import ingest
from .eta import Eta, format_seconds
from .ingest import Found, IngestOptions, Problem, UnitError
from .records import FileState, Record, record_id
from .store import Store


@dataclass(frozen=True)
class IndexOptions:
    ingest: IngestOptions = field(default_factory=IngestOptions)
    hidden: bool = False  # also index names starting with '.'
    force: bool = False  # embed every file again
    rehash: bool = False  # hash files even when size and mtime are unchanged
    commit_seconds: float = 1.0
    max_batch_tokens: int | None = None
    batch_size: int | None = None
    rebuild_ann: bool = False  # rebuild the approximate index at the end instead of updating it
    ann_precision: str | None = None  # with rebuild_ann: new codes for it
    retry_failed: bool = False  # try again files that failed before and have not changed
    exclude: tuple[str, ...] = ()  # globs on absolute paths: files and folders left out


@dataclass
class IndexReport:
    """What a run did. `skipped`: supported files not (fully) indexed; `ignored`: unsupported files;
    `known_failed`: files that failed before, unchanged since, not tried again (they do not make the run
    fail); `model_loaded`: whether anything had to be embedded."""

    files_seen: int = 0
    indexed_files: int = 0
    items_added: int = 0
    unchanged_files: int = 0
    removed_files: int = 0
    removed_records: int = 0
    skipped: list[Problem] = field(default_factory=list)
    ignored: list[Problem] = field(default_factory=list)
    known_failed: list[Problem] = field(default_factory=list)
    excluded_files: int = 0
    model_loaded: bool = False
    seconds: float = 0.0
    embed_seconds: float = 0.0
    interrupted: bool = False
    resumed_stale: int = 0  # files an interrupted forced run left to embed again, found by this one

    @property
    def exit_status(self) -> int:
        """0 when every supported file was indexed, 2 when some were skipped."""
        return 2 if self.skipped else 0

    def to_json(self) -> dict:
        return {"files_seen": self.files_seen, "indexed_files": self.indexed_files, "items_added": self.items_added,
                "unchanged_files": self.unchanged_files, "removed_files": self.removed_files,
                "removed_records": self.removed_records,
                "skipped": [{"path": p.path, "reason": p.reason} for p in self.skipped],
                "ignored": [{"path": p.path, "reason": p.reason} for p in self.ignored],
                "known_failed": [{"path": p.path, "reason": p.reason} for p in self.known_failed],
                "excluded_files": self.excluded_files, "model_loaded": self.model_loaded,
                "seconds": round(self.seconds, 3), "interrupted": self.interrupted,
                "resumed_stale": self.resumed_stale}


@dataclass
class _File:
    """A file being embedded: how many of its units are still out, and what failed."""

    found: Found
    content_hash: str
    date: float  # ingest.capture_date
    resume: bool = False  # an earlier run stored some of its units already
    expected: int | None = None  # units to embed, known once all of them have been generated
    done: int = 0
    stored: int = 0  # units found in the store (resumed files)
    failures: list[str] = field(default_factory=list)
    work: float = 0.0  # tokens embedded (items where the embedder does not count tokens)
    kept: set[int] = field(default_factory=set)  # ids of its current records; the file's others go at its end

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.done + len(self.failures) >= self.expected


class Indexer:
    """One run of `qvl index` over a store with an embedder."""

    def __init__(self, store: Store, embedder: Embedder | Callable[[], Embedder], options: IndexOptions | None = None,
                 progress: Any = None):
        """`embedder`: a Qwen3VLEmbedder, a distributed.RayEmbedder, a RemoteEmbedder (anything that is a
        `contracts.Embedder`), or a function returning one, called when the first unit must be embedded.
        Pixel budgets left None in `options.ingest` are the index's (see ingest.index_budgets)."""
        self.store = store
        lazy = callable(embedder) and not hasattr(embedder, "iter_embed")
        self._load = embedder if lazy else (lambda: embedder)
        # the model's own budget, for the defaults (a model still to load: the official one, the CLI's)
        self._model_max_pixels = MAX_PIXELS if lazy else embedder.max_pixels
        self._embedder: Embedder | None = None
        self.options = options or IndexOptions()
        self._exclude = excluder(self.options.exclude)
        self.progress = progress  # a tqdm-like bar over files, or None
        self.report = IndexReport()
        self._pending: dict[int, tuple[_File, ingest.Unit]] = {}
        self._open: list[_File] = []
        self._buffer: list[tuple[Record, np.ndarray]] = []
        self._due: list[tuple[FileState, bool]] = []  # (state, drop_records) decided by the input generator
        self._stored_ids: dict[str, set[int]] = {}  # records of partly indexed files, read when planning
        self._last_commit = time.monotonic()
        self._started = time.perf_counter()
        self._budgets: dict[str, int] = {}
        self.eta = Eta()

    @property
    def meta(self):
        return self.store.meta

    @property
    def embedder(self) -> Embedder:
        """The embedder, loaded on first use (a new index gets its metadata then, and its budgets)."""
        if self._embedder is None:
            self._embedder = self._load()
            self.report.model_loaded = True
            self._record_budgets()
        return self._embedder

    # the run -----------------------------------------------------------------------------------
    def run(self, roots: Iterable[str]) -> IndexReport:
        started = self._started = time.perf_counter()
        roots = list(roots)
        try:
            todo = self._plan(roots)
            self.eta.plan([f for f, _ in todo])
            if self.progress is not None:
                self.progress.reset(total=len(todo))
            self._embed(todo)
            self.store.commit()
            self.store.optimize(self.options.rebuild_ann, self.options.ann_precision)
        except KeyboardInterrupt:
            self.report.interrupted = True
            raise
        finally:
            self._write_states()
            self._flush()
            self.store.commit()
            ingest.close_documents_quietly()
            self.report.seconds = time.perf_counter() - started
        return self.report

    def _plan(self, roots: list[str]) -> list[tuple[Found, FileState | None]]:
        """Walk, drop the records of vanished files, and list the files that may need embedding."""
        for root in roots:
            if not os.path.exists(os.path.expanduser(root)):
                raise FileNotFoundError(f"no such file or folder: {root}")
        states = self.store.file_states()
        found: list[Found] = []
        for entry in ingest.walk(roots, exclude=[self.store.location], hidden=self.options.hidden,
                                 skip=self._exclude):
            if isinstance(entry, Problem):
                (self.report.skipped if entry.supported else self.report.ignored).append(entry)
            elif entry.modality is None:
                self.report.ignored.append(Problem(entry.path, f"unsupported file type "
                                                   f"({os.path.splitext(entry.path)[1] or 'no extension'})", False))
            else:
                found.append(entry)
        self.report.files_seen = len(found)
        real_roots = [os.path.realpath(os.path.expanduser(r)) for r in roots]
        gone = [p for p in states if _under(p, real_roots) and not os.path.exists(p)]
        if self._exclude is not None:
            excluded = [p for p in states if p not in gone and self._exclude(p)]
            self.report.excluded_files = len(excluded)
            gone += excluded
        if gone:
            self.report.removed_records = self.store.delete_paths(gone)
            self.report.removed_files = len(gone)
            self.store.commit()
        if self.options.force:
            states = self._mark_stale(states, [f.path for f in found])
        states = self._apply_budgets(states)  # after: files it marks stale are not an interrupted --force
        todo = []
        for f in found:
            state = states.get(f.path)
            decision = plan_file(f, state, self.options)
            if decision == "unchanged":
                self.report.unchanged_files += 1
            elif decision == "known_failed":
                self.report.known_failed.append(Problem(f.path, state.error or "failed"))
            else:
                todo.append((f, state))
                if state is not None and state.status in ("partial", "failed"):  # to resume it
                    self._stored_ids[f.path] = self.store.record_ids(f.path, state.content_hash)
        return todo

    def _apply_budgets(self, states: dict[str, FileState]) -> dict[str, FileState]:
        """Settle the run's pixel budgets; when one differs from the index's, record it and mark the indexed
        files of its kind 'stale' (one commit)."""
        stored = self.meta.settings if self.meta is not None else {}
        self._budgets, changed = ingest.index_budgets(stored, self.options.ingest, self._model_max_pixels,
                                                      bool(states))
        self.options = replace(self.options, ingest=replace(self.options.ingest, **self._budgets))
        stale = stale_states(states, changed)
        if stale:
            states = {**states, **{s.path: s for s in stale}}
            for state in stale:
                self.store.put_file(state)
        self._record_budgets()
        return states

    def _record_budgets(self) -> None:
        """Write the run's budgets into the index's settings (a new index: once it has its metadata)."""
        if self.meta is not None and any(self.meta.settings.get(k) != v for k, v in self._budgets.items()):
            self.store.update_settings(self._budgets)
            self.store.commit()

    def _mark_stale(self, states: dict[str, FileState], paths: list[str]) -> dict[str, FileState]:
        """A forced run: every indexed file of `paths` becomes 'stale' (to embed again, records kept), in
        one commit; when some are stale already, an interrupted forced run is going on: only those are left."""
        indexed = [p for p in paths if p in states]
        stale = sum(1 for p in indexed if states[p].status == "stale")
        if stale:
            self.report.resumed_stale = stale
            return states
        states = dict(states)
        for p in indexed:
            states[p] = replace(states[p], status="stale")
            self.store.put_file(states[p])
        self.store.commit()
        return states

    def _embed(self, todo: list[tuple[Found, FileState | None]]) -> None:
        seen_failures = 0
        t0 = time.perf_counter()
        inputs = self._inputs(todo)
        first = next(inputs, _NOTHING)  # hashes and skips unchanged files; loads the model for a unit to embed
        if first is _NOTHING:
            self._write_states()
            self._settle()
            return
        from ..batching import RunStats  # (imports torch: not done by a run that embeds nothing)

        stats = RunStats(token_counts={})
        for pos, vector in self.embedder.iter_embed(
                itertools.chain([first], inputs), dim=self.meta.dim, instruction=self.meta.document_instruction,
                on_error="skip", show_progress=False, stats=stats,
                max_batch_tokens=self.options.max_batch_tokens, batch_size=self.options.batch_size):
            self._write_states()  # before any record of theirs
            seen_failures = self._failures(stats, seen_failures)
            file, unit = self._pending.pop(pos)
            record = self._record(file, unit)
            self._buffer.append((record, vector))
            file.kept.add(record.id)
            file.done += 1
            work = stats.token_counts.pop(pos, 1)  # tokens; an item where the embedder does not count them
            file.work += work
            self.eta.add(work)
            self._settle()
        self._write_states()
        self._failures(stats, seen_failures)
        self._settle()
        self.report.embed_seconds = time.perf_counter() - t0

    def _inputs(self, todo: list[tuple[Found, FileState | None]]) -> Iterator[Any]:
        """Embedder inputs of every unit still missing; registers what each position belongs to and
        notes the files' states in `_due`. Reads files, never writes to the store."""
        position = 0
        for found, state in todo:
            file = self._begin(found, state)
            if file is None:
                continue
            try:
                if found.modality in ("pdf", "text") and found.size:
                    self._need_model(found)  # its pixel budget or tokenizer splits the file
                units = ingest.units(found, self.options.ingest,
                                     self.embedder.text_tokenizer if found.modality == "text" and found.size else None)
            except UnitError as e:
                self._fail(file, str(e))
                continue
            existing = self._stored_ids.get(found.path, set()) if file.resume else set()
            for unit in units:
                if record_id(found.path, found.modality, unit.number) in existing:
                    file.stored += 1
                    file.kept.add(record_id(found.path, found.modality, unit.number))
                    continue
                self._need_model(found)
                self._pending[position] = (file, unit)
                position += 1
                yield unit.input
            file.expected = len(units) - file.stored
            self._open.append(file)

    def _need_model(self, found: Found) -> None:
        """Load the model for a file that must be embedded; if it cannot load, the file's state is not written."""
        if self._embedder is None:
            try:
                self.embedder
            except BaseException:
                self._due = [d for d in self._due if d[0].path != found.path]
                raise

    def _begin(self, found: Found, state: FileState | None) -> _File | None:
        """Hash the file; None when it is unchanged, else record it as being indexed.

        Its old records are not dropped here: new ones replace them as they come (`_finish` drops the
        rest). A stale file keeps its state until it is done, so that stopping now leaves it stale; a
        new or changed one is 'partial' with the new content's hash (a re-run resumes its records of
        that content only)."""
        try:
            digest = ingest.content_hash(found.path)
        except OSError as e:
            self.report.skipped.append(Problem(found.path, f"cannot read: {e.strerror or e}"))
            self._tick(found)
            return None
        same = state is not None and state.content_hash == digest
        if same and state.status == "done":
            if state.mtime != found.mtime or state.size != found.size:
                self._due.append((FileState(found.path, digest, found.size, found.mtime, found.modality, "done",
                                            state.records), False))
            self.report.unchanged_files += 1
            self._tick(found)
            return None
        if not (same and state.status == "stale"):
            self._due.append((FileState(found.path, digest, found.size, found.mtime, found.modality, "partial"),
                              False))
        return _File(found, digest, ingest.capture_date(found.path, found.modality, found.mtime),
                     resume=same and state.status in ("partial", "failed"))

    def _record(self, file: _File, unit: ingest.Unit) -> Record:
        f = file.found
        return Record(record_id(f.path, f.modality, unit.number), f.path, f.modality, file.content_hash, f.mtime,
                      self.meta.model, self.meta.document_instruction, self.meta.dim, unit.page, unit.start,
                      unit.end, unit.chunk, unit.text, file.date)

    def _failures(self, stats: Any, seen: int) -> int:
        for failure in stats.failures[seen:]:
            file, _ = self._pending.pop(failure.index)
            file.failures.append(failure.cause)
        return len(stats.failures)

    def _fail(self, file: _File, reason: str) -> None:
        """A file that cannot be split into units: failed, with no records (its old ones are dropped)."""
        f = file.found
        self._due.append((FileState(f.path, file.content_hash, f.size, f.mtime, f.modality, "failed", 0, reason),
                          True))
        self.report.skipped.append(Problem(f.path, reason))
        self._tick(f)

    def _write_states(self) -> None:
        """Write the file states the input generator decided on, in order."""
        for state, drop_records in self._due:
            self.store.put_file(state, drop_records=drop_records)
        self._due = []

    def _settle(self) -> None:
        """Close the files whose units have all come back; commit when it is time."""
        self._write_states()
        finished = [f for f in self._open if f.complete]
        if finished:
            self._flush()
            self._open = [f for f in self._open if not f.complete]
            for file in finished:
                self._finish(file)
        if time.monotonic() - self._last_commit >= self.options.commit_seconds:
            self._flush()
            self.store.commit()
            self._last_commit = time.monotonic()

    def _finish(self, file: _File) -> None:
        """All of the file's units are back (and flushed): drop its records that are not current, set its state."""
        f = file.found
        outdated = self.store.record_ids(f.path) - file.kept
        if outdated:
            self.store.delete_records(outdated)
        stored = file.stored + file.done
        if file.failures:
            total = file.expected + file.stored
            what = f"{len(file.failures)} of {total} parts failed: " if total > 1 else ""
            reason = what + file.failures[0]
            self.store.put_file(FileState(f.path, file.content_hash, f.size, f.mtime, f.modality, "failed", stored,
                                          reason))
            self.report.skipped.append(Problem(f.path, reason))
        else:
            self.store.put_file(FileState(f.path, file.content_hash, f.size, f.mtime, f.modality, "done", stored))
            self.report.indexed_files += 1
        self._tick(f, file.work)

    def _flush(self) -> None:
        if self._buffer:
            records = [r for r, _ in self._buffer]
            self.store.add(records, np.stack([v for _, v in self._buffer]))
            self.report.items_added += len(records)
            if self.progress is not None:
                rate = self.report.items_added / max(time.perf_counter() - self._started, 1e-9)
                left = self.eta.seconds_left()
                self.progress.set_postfix_str(f"{self.report.items_added} items, {rate:.2f} items/s"
                                              + (f", {format_seconds(left)} left" if left is not None else ""),
                                              refresh=False)
            self._buffer = []

    def _tick(self, found: Found, work: float | None = None) -> None:
        """A file is closed (`work`: the tokens it took; None when nothing of it was embedded now)."""
        self.eta.close(found, work)
        if self.progress is not None:
            self.progress.update(1)


_NOTHING = object()


def plan_file(found: Found, state: FileState | None, options: IndexOptions) -> str:
    """What a run does with a file met by the walk: "unchanged" (indexed, same size and mtime),
    "known_failed" (failed before, unchanged since, no retry_failed) or "embed" (new, changed, stale
    or partial: hashed, and embedded unless its content turns out the same)."""
    same = state is not None and state.size == found.size and state.mtime == found.mtime
    # (with force, the files to embed again are 'stale' by now: see Indexer._mark_stale)
    if same and state.status == "done" and not options.rehash:
        return "unchanged"
    if same and state.status == "failed" and not options.retry_failed:
        return "known_failed"
    return "embed"


def stale_states(states: dict[str, FileState], kinds: set[str]) -> list[FileState]:
    """The indexed images and PDFs of `kinds` ("photo", "document") marked 'stale': a run embeds them again
    (their records stay searchable until it does)."""
    if not kinds:
        return []
    return [replace(s, status="stale") for s in states.values()
            if s.modality in ("image", "pdf") and ingest.budget_kind(s.path, s.modality) in kinds]


def excluder(globs: Iterable[str]) -> Callable[[str], bool] | None:
    """A test of absolute paths against exclusion globs: True for a path matching one, or lying under a
    folder that does (None without globs)."""
    globs = list(globs)
    if not globs:
        return None
    pattern = re.compile("|".join(f"(?:{fnmatch.translate(g)})|(?:{fnmatch.translate(g.rstrip('/') + '/*')})"
                                  for g in globs))
    return lambda path: pattern.match(path) is not None


def _under(path: str, roots: list[str]) -> bool:
    """True when `path` is one of `roots` (real paths) or inside one of them."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def progress_bar(enabled: bool | None, desc: str = "indexing", unit: str = "file", eta_in_postfix: bool = False):
    """A tqdm bar over files (items and rate in its postfix), or None when not on a terminal.
    `eta_in_postfix`: the Indexer puts the time left, measured in tokens (eta.py), in the postfix; tqdm's
    own, which counts files, is left out."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    fmt = {"bar_format": "{l_bar}{bar}| {n_fmt}/{total_fmt} {unit}s [{elapsed}{postfix}]"} if eta_in_postfix else {}
    return tqdm(total=0, desc=desc, unit=unit, dynamic_ncols=True, **fmt)

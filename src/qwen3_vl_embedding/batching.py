"""The one batching loop: estimate, pack under a token budget, prepare on threads, run, restore order.

Items stream in; a window of them is costed from text and media headers (no pixels decoded), sorted
by cost and packed into batches whose padded size (items x longest) stays under `max_batch_tokens`.
Worker threads read and resize media and tokenise a few batches ahead while the caller's thread runs
the forward pass, so memory is bounded by the window and the batches in flight, not by the input.
A CUDA out-of-memory error splits the batch in two and retries; no item is ever dropped.
"""
from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import torch

from .errors import InputError

logger = logging.getLogger(__name__)
J = TypeVar("J")

DEFAULT_MAX_BATCH_TOKENS = 16384
DEFAULT_WINDOW = 512


@dataclass(frozen=True)
class Failure:
    """An item that could not be processed (with ``on_error="skip"``)."""

    index: int
    field: str | None
    cause: str
    error: InputError | None = field(default=None, compare=False, repr=False)  # the exception, with its type


@dataclass
class RunStats:
    """What a run did: counts, tokens, padding efficiency and time."""

    items: int = 0
    failed: int = 0
    batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    oom_splits: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    token_counts: dict[int, int] | None = None  # set to a dict to get each item's token count by position

    @property
    def padding_efficiency(self) -> float:
        """Real tokens / padded tokens over all batches (1.0 means no padding)."""
        return self.real_tokens / self.padded_tokens if self.padded_tokens else 1.0


def default_min_fill(device_type: str) -> float:
    """How full (shortest/longest) a batch must stay. Padding is pure waste on a CPU, so batches there
    hold items within 80% of the longest; a GPU gains more from larger batches (50%)."""
    return 0.5 if device_type == "cuda" else 0.8


def plan_batches(costs: Sequence[int], max_tokens: int, max_items: int | None = None,
                 min_fill: float = 0.0) -> list[list[int]]:
    """Positions of `costs` grouped into batches: longest first, each batch's items x longest <= max_tokens,
    and every item at least `min_fill` x the batch's longest (bounding the padding).

    An item costlier than `max_tokens` forms a batch of its own. Pure and deterministic."""
    if max_tokens <= 0:
        raise ValueError(f"max_batch_tokens must be positive, got {max_tokens}")
    if max_items is not None and max_items <= 0:
        raise ValueError(f"batch_size must be positive, got {max_items}")
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        cost = max(1, int(costs[i]))
        full = max_items is not None and len(current) >= max_items
        too_short = cost < min_fill * longest
        if current and (full or too_short or (len(current) + 1) * max(longest, cost) > max_tokens):
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, cost)
    if current:
        batches.append(current)
    return batches


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _progress(show: bool | None, total: int | None, desc: str):
    if show is None:
        show = sys.stderr.isatty() and (total is None or total > 1)
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", dynamic_ncols=True, leave=False)


def run_batches(
    jobs: Iterable[J],
    *,
    estimate: Callable[[J], int],
    prepare: Callable[[J], Any],
    forward: Callable[[list[Any]], torch.Tensor],
    length: Callable[[Any], int],
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    batch_size: int | None = None,
    min_fill: float = 0.0,
    on_error: str = "raise",
    window: int = DEFAULT_WINDOW,
    workers: int | None = None,
    pool: ThreadPoolExecutor | None = None,
    prefetch: int = 2,
    stats: RunStats | None = None,
    show_progress: bool | None = None,
    total: int | None = None,
    desc: str = "embedding",
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (position, output row) for every job, batch by batch (not in input order).

    `prepare` runs on worker threads and raises InputError for a bad job; with on_error="raise" the
    first such error stops the run (located at the job's position), with "skip" it is recorded in
    `stats.failures` and the run goes on. `forward` gets a list of prepared samples and returns one
    row per sample. `pool` lends worker threads (kept across calls); without it a pool of `workers`
    threads lives for this call."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    stats = stats if stats is not None else RunStats()
    started = time.perf_counter()
    bar = _progress(show_progress, total, desc)
    own_pool = pool is None
    if pool is None:
        pool = ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="qvl-prepare")
    pending: deque[list[tuple[int, Future]]] = deque()

    def finish(batch: list[tuple[int, Future]]) -> Iterator[tuple[int, torch.Tensor]]:
        ready: list[tuple[int, Any]] = []
        for pos, fut in batch:
            try:
                ready.append((pos, fut.result()))
            except InputError as e:
                located = e.located(index=pos)
                if on_error == "raise":
                    raise located from e.__cause__
                stats.failed += 1
                stats.failures.append(Failure(pos, located.field, located.cause, located))
                if bar is not None:
                    bar.update(1)
        if not ready:
            return
        samples = [s for _, s in ready]
        rows = _forward_split(forward, samples, stats)
        lengths = [length(s) for s in samples]
        stats.batches += 1
        stats.items += len(samples)
        stats.real_tokens += sum(lengths)
        stats.padded_tokens += max(lengths) * len(lengths)
        stats.truncated += sum(1 for s in samples if getattr(s, "truncated", 0))
        if stats.token_counts is not None:
            stats.token_counts.update((pos, n) for (pos, _), n in zip(ready, lengths))
        if bar is not None:
            bar.update(len(samples))
        for (pos, _), row in zip(ready, rows):
            yield pos, row

    try:
        counter = itertools.count()
        it = iter(jobs)
        while True:
            chunk = [(next(counter), job) for job in itertools.islice(it, window)]
            if not chunk:
                break
            costs = list(pool.map(_safe_estimate(estimate), [job for _, job in chunk]))
            for batch in plan_batches(costs, max_batch_tokens, batch_size, min_fill):
                pending.append([(chunk[k][0], pool.submit(prepare, chunk[k][1])) for k in batch])
                while len(pending) > prefetch:
                    yield from finish(pending.popleft())
        while pending:
            yield from finish(pending.popleft())
    finally:
        for batch in pending:
            for _, fut in batch:
                fut.cancel()
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
        stats.seconds += time.perf_counter() - started


def _safe_estimate(estimate: Callable[[J], int]) -> Callable[[J], int]:
    def run(job: J) -> int:
        try:
            return int(estimate(job))
        except Exception:  # a bad item is reported by prepare, with its cause
            return 1
    return run


def _forward_split(forward: Callable[[list[Any]], torch.Tensor], samples: list[Any], stats: RunStats) -> torch.Tensor:
    try:
        return forward(samples)
    except torch.cuda.OutOfMemoryError:
        if len(samples) == 1:
            raise
        stats.oom_splits += 1
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(samples) // 2
        logger.warning("CUDA out of memory on a batch of %d; retrying as %d + %d", len(samples), half,
                       len(samples) - half)
        return torch.cat([_forward_split(forward, samples[:half], stats),
                          _forward_split(forward, samples[half:], stats)])

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
from typing import Any, Callable, Hashable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
import torch

from .errors import InputError

logger = logging.getLogger(__name__)
J = TypeVar("J")

DEFAULT_MAX_BATCH_TOKENS = 16384
DEFAULT_WINDOW = 512
ESTIMATE_TASKS = 8
MIN_GROUP = 8


@dataclass(frozen=True)
class Failure:
    """An item that could not be processed (with ``on_error="skip"``)."""

    index: int
    field: str | None
    cause: str
    error: InputError | None = field(default=None, compare=False, repr=False)  # the exception, with its type


@dataclass(frozen=True)
class Refused:
    """A job already known to be bad (its input could not be read as an item): `run_batches` reports
    its error at its position, as it does for a job whose `prepare` fails, without costing or preparing it."""

    error: InputError


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


def default_pass_cost(device_type: str) -> int:
    """What one forward pass costs beyond its tokens, in padded tokens: the planner splits a batch only
    where the padding it saves outweighs one more pass. Measured on 2 CPU cores, a pass of a small
    model costs as much as 60-300 tokens; on a GPU, launching a pass of the 2B model costs as much as
    several hundred tokens of compute, so batches there hold more dissimilar lengths."""
    return 512 if device_type == "cuda" else 64


def plan_batches(costs: Sequence[int], max_tokens: int, max_items: int | None = None,
                 pass_cost: int = 64) -> list[list[int]]:
    """Positions of `costs` grouped into batches of similar cost, longest first.

    Each batch's padded size (items x longest) stays within `max_tokens` (an item costlier than that
    forms a batch of its own) and within `max_items` items. Among such groupings of the sorted costs
    into runs, the one with the least total of padded tokens plus `pass_cost` per batch is chosen
    (exact dynamic programming). Pure and deterministic."""
    if max_tokens <= 0:
        raise ValueError(f"max_batch_tokens must be positive, got {max_tokens}")
    if max_items is not None and max_items <= 0:
        raise ValueError(f"batch_size must be positive, got {max_items}")
    if pass_cost <= 0:
        raise ValueError(f"pass_cost must be positive, got {pass_cost}")
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
    n = len(order)
    if n == 0:
        return []
    c = np.array([max(1, int(costs[i])) for i in order], dtype=np.int64)  # non-increasing
    best = np.zeros(n + 1, dtype=np.int64)  # best[j]: least total for the first j items
    start = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that best begins
    offset = np.zeros(n, dtype=np.int64)  # best[i] - i * c[i]: a batch [i, j) costs offset[i] + j * c[i] + pass
    lo = 0
    for j in range(1, n + 1):
        offset[j - 1] = best[j - 1] - (j - 1) * c[j - 1]
        # batches [i, j) within the limits; their padded size grows as i falls, so they are i >= lo
        while lo < j - 1 and ((j - lo) * c[lo] > max_tokens or (max_items is not None and j - lo > max_items)):
            lo += 1
        totals = offset[lo:j] + j * c[lo:j]
        k = int(np.argmin(totals))
        start[j] = lo + k
        best[j] = totals[k] + pass_cost
    batches: list[list[int]] = []
    j = n
    while j > 0:
        i = int(start[j])
        batches.append(order[i:j])
        j = i
    return batches[::-1]


def plan_grouped(costs: Sequence[int], keys: Sequence[Hashable] | None, max_tokens: int,
                 max_items: int | None = None, pass_cost: int = 64, min_group: int = MIN_GROUP) -> list[list[int]]:
    """`plan_batches`, but inputs of one key (prompts that begin alike: one template and instruction)
    are batched apart from the others when there are at least `min_group` of them, so that a batch
    shares its beginning; smaller groups are batched together. Pure and deterministic."""
    if keys is None:
        return plan_batches(costs, max_tokens, max_items, pass_cost)
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    groups = [m for m in members.values() if len(m) >= min_group]
    rest = sorted(i for m in members.values() if len(m) < min_group for i in m)
    batches: list[list[int]] = []
    for m in groups + ([rest] if rest else []):
        batches += [[m[k] for k in b] for b in plan_batches([costs[i] for i in m], max_tokens, max_items, pass_cost)]
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
    estimate: Callable[[J], Any],
    prepare: Callable[[J], Any],
    forward: Callable[[list[Any]], torch.Tensor],
    length: Callable[[Any], int],
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    batch_size: int | None = None,
    pass_cost: int = 64,
    group: Callable[[J], Hashable] | None = None,
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

    `estimate` costs a job in tokens on worker threads; where costing a job means preparing it (a text
    is costed by tokenising it) it may return the prepared sample instead, whose cost is then
    `length(sample)` and which is not prepared again. A `Refused` job fails at its position. `group` keys jobs that begin alike; see
    `plan_grouped`. `prepare` runs on worker threads and raises InputError for a bad job; with on_error="raise" the
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
            jobs_ = [job for _, job in chunk]
            step = max(1, -(-len(jobs_) // ESTIMATE_TASKS))  # a few tasks for the window, not one per job
            costed = [c for part in pool.map(_safe_estimate(estimate), [jobs_[i:i + step]
                                                                         for i in range(0, len(jobs_), step)])
                      for c in part]
            costs = [c if isinstance(c, int) else 1 if isinstance(c, Refused) else length(c) for c in costed]
            keys = [None if isinstance(job, Refused) else group(job) for job in jobs_] if group is not None else None
            for batch in plan_grouped(costs, keys, max_batch_tokens, batch_size, pass_cost):
                pending.append([(chunk[k][0], _settled(costed[k]) if not isinstance(costed[k], int)
                                 else pool.submit(prepare, chunk[k][1])) for k in batch])
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


def _safe_estimate(estimate: Callable[[J], Any]) -> Callable[[list[J]], list]:
    """Cost each job of a slice: an int, or the prepared sample when `estimate` returned one."""
    def one(job: J):
        if isinstance(job, Refused):
            return job
        try:
            cost = estimate(job)
            return int(cost) if isinstance(cost, (int, float)) else cost
        except Exception:  # a bad item is reported by prepare, with its cause
            return 1

    def run(jobs: list[J]) -> list:
        return [one(job) for job in jobs]
    return run


def _settled(value: Any) -> Future:
    """A finished future: a prepared sample, or a Refused job's error."""
    future: Future = Future()
    if isinstance(value, Refused):
        future.set_exception(value.error)
    else:
        future.set_result(value)
    return future


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

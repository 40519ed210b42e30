"""Dynamic batching: one worker thread per model merges queued requests into one run of the library's batching loop.

A request becomes a job: its prompts (text-only ones already tokenised into Samples by the request
handler) and their token cost. The worker takes the oldest job, then whatever else is queued,
waiting up to `wait_s` for more while the merged run holds fewer than `max_tokens` estimated tokens.
It runs all their prompts as one call of `run(prompts, stats)` (a model's `run_jobs(...,
on_error="skip")`: the library's loop packs them into forward passes under its own budget), then hands each job its
rows, token counts and failures: a bad input fails its own request only. A job's `finish` (pooling,
say) runs on the worker too, so that all tensor work stays on one thread: on a CPU, torch calls from
the event loop as well would start a second OpenMP team fighting the first for the cores. The queue
is bounded in inputs (`QueueFull` beyond it); a job whose caller gave up before the run is skipped.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from ..batching import Failure, RunStats

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue holds `limit` inputs already."""

    def __init__(self, limit: int):
        super().__init__(f"the server is busy: {limit} inputs are queued")
        self.limit = limit


class Closed(Exception):
    """The batcher is shutting down and takes no new work."""


@dataclass(frozen=True)
class JobResult:
    """One request's outcome: a row per prompt (None where it failed; `finish`'s result when none did),
    token counts, failures by position."""

    rows: list[Any]
    token_counts: list[int]
    failures: list[Failure]


@dataclass(frozen=True)
class PassInfo:
    """What one merged run did (for metrics)."""

    requests: int
    items: int
    tokens: int
    seconds: float


@dataclass(eq=False)
class _Job:
    prompts: list
    cost: int
    finish: Callable[[list], Any] | None = None
    future: Future = field(default_factory=Future)


Run = Callable[[list, RunStats], Iterator[tuple[int, Any]]]


class Batcher:
    """Merges concurrent jobs for one model; `submit` returns a Future of `JobResult`.

    `run(prompts, stats)` yields (position, row) for the prompts of a merged run, records failures in
    `stats` and never raises for a bad input (a model's `run_jobs` with on_error="skip")."""

    def __init__(self, name: str, run: Run, *, max_tokens: int, wait_s: float, max_queue: int,
                 enabled: bool = True, on_pass: Callable[[PassInfo], None] | None = None):
        self.name = name
        self.run = run
        self.max_tokens = max_tokens
        self.wait_s = wait_s
        self.max_queue = max_queue
        self.enabled = enabled
        self.on_pass = on_pass
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._depth = 0  # inputs admitted and not yet finished
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def depth(self) -> int:
        """Inputs queued or running."""
        return self._depth

    def submit(self, prompts: list, cost: int, finish: Callable[[list], Any] | None = None) -> Future:
        """Queue a job; `finish(rows)` replaces its rows when none failed. Raises QueueFull when the job
        would exceed `max_queue` inputs, Closed when shutting down."""
        job = _Job(list(prompts), max(1, int(cost)), finish)
        if not job.prompts:
            job.future.set_result(JobResult([], [], []))
            return job.future
        with self._cond:
            if self._closing:
                raise Closed(f"the {self.name} worker is shutting down")
            if self._depth + len(job.prompts) > self.max_queue:
                raise QueueFull(self.max_queue)
            self._depth += len(job.prompts)
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"qvl-batcher-{self.name}", daemon=True)
                self._thread.start()
            self._cond.notify()
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Stop taking jobs; the worker finishes everything already queued, then exits."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # worker ------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            try:
                live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
                if live:
                    self._settle(live)
            finally:
                with self._cond:
                    self._depth -= sum(len(job.prompts) for job in jobs)

    def _take(self) -> list[_Job] | None:
        """The jobs of the next run: the oldest, then more while under budget and within the wait."""
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            jobs = [self._queue.popleft()]
            tokens = jobs[0].cost
            deadline = time.monotonic() + self.wait_s
            while self.enabled and tokens < self.max_tokens:
                if self._queue:
                    if tokens + self._queue[0].cost > self.max_tokens:
                        break
                    jobs.append(self._queue.popleft())
                    tokens += jobs[-1].cost
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._closing:
                    break
                self._cond.wait(left)
            return jobs

    def _settle(self, jobs: list[_Job]) -> None:
        """Run the jobs together; if the run itself fails (not an input), retry them one by one."""
        try:
            results = self._run(jobs)
        except Exception as e:  # noqa: BLE001 - reported to the caller as an internal error
            if len(jobs) > 1:
                logger.warning("a merged run of %d requests failed (%s: %s); running them one by one",
                               len(jobs), type(e).__name__, e)
                for job in jobs:
                    self._settle([job])
                return
            logger.error("%s run failed: %s: %s", self.name, type(e).__name__, e, exc_info=True)
            jobs[0].future.set_exception(e)
            return
        for job, result in zip(jobs, results):
            if job.finish is not None and not result.failures:
                try:
                    result = replace(result, rows=job.finish(result.rows))
                except Exception as e:  # noqa: BLE001 - this job's own fault
                    job.future.set_exception(e)
                    continue
            job.future.set_result(result)

    def _run(self, jobs: list[_Job]) -> list[JobResult]:
        started = time.perf_counter()
        prompts = [p for job in jobs for p in job.prompts]
        owner = [(j, k) for j, job in enumerate(jobs) for k in range(len(job.prompts))]
        stats = RunStats(token_counts={})
        rows: list[Any] = [None] * len(prompts)
        for pos, row in self.run(prompts, stats):
            rows[pos] = row
        failures: list[list[Failure]] = [[] for _ in jobs]
        for f in stats.failures:
            j, k = owner[f.index]
            failures[j].append(Failure(k, f.field, f.cause, f.error.located(index=k) if f.error else None))
        results, start = [], 0
        for j, job in enumerate(jobs):
            end = start + len(job.prompts)
            counts = [stats.token_counts.get(pos, 0) for pos in range(start, end)]
            results.append(JobResult(rows[start:end], counts, failures[j]))
            start = end
        if self.on_pass is not None:
            self.on_pass(PassInfo(len(jobs), len(prompts), sum(stats.token_counts.values()),
                                  time.perf_counter() - started))
        return results

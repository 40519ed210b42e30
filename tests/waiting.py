"""Waiting for an event, not for a length of time.

A test that needs another thread or process to get somewhere polls the state that says it got there
(a row in the database, a flag, a queue depth). The only time limit is a last-resort guard against a
real hang, far beyond what a loaded machine needs; pytest-timeout usually fires first, with stacks.
"""
from __future__ import annotations

import time
from typing import Callable

# Seconds: a guard against hangs only, never a budget a slow machine could exceed. It is longer than
# every pytest-timeout in the suite, so that pytest-timeout (which dumps the threads' stacks) fires first.
HANG_S = 1800.0


def wait_for(condition: Callable[[], object], what: str, *, alive: Callable[[], str | None] | None = None,
             poll: float = 0.01, guard: float = HANG_S) -> None:
    """Return once `condition()` is true. `alive()` returns a reason when what we wait on can no
    longer get there (a process ended, a thread died): the wait then fails at once with it."""
    deadline = time.monotonic() + guard
    while not condition():
        if alive is not None:
            reason = alive()
            assert reason is None, f"{what}: {reason}"
        assert time.monotonic() < deadline, f"{what}: still not the case after {guard:g} s (a hang?)"
        time.sleep(poll)

"""Resource measurements for the hardening tests: peak resident memory of this process or of a child."""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from typing import Iterator

import pytest


def status_mb(key: str, pid: int | str = "self") -> int:
    """A /proc/PID/status figure in MiB (VmRSS: resident now; VmHWM: the peak since the last reset)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    raise KeyError(key)


@contextlib.contextmanager
def peak_growth() -> Iterator[dict]:
    """How far this process's peak resident memory rose above its resident memory at the start, in MiB.

    The peak is reset by writing 5 to /proc/self/clear_refs (Linux); where that is not allowed the test
    is skipped rather than measuring a peak left by earlier tests."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as e:
        pytest.skip(f"cannot reset the peak RSS here ({e})")
    result = {"start": status_mb("VmRSS")}
    yield result
    result["peak"] = status_mb("VmHWM")
    result["mb"] = result["peak"] - result["start"]


def run_measured(argv: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, int]:
    """Run a child to completion; its result and its own peak resident memory in MiB (wait4's rusage)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, **kwargs)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, proc.returncode, out.read().decode(), err.read().decode())
    return result, usage.ru_maxrss // 1024

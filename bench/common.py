"""Shared pieces of the benchmarks: machine description, checkpoints, memory sampling, result files."""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import threading
import time
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
CACHE = os.path.join(ROOT, "bench", ".cache")
RESULTS = os.path.join(ROOT, "bench", "results")

# tests/ helpers that import other tests/ helpers by name: those are loaded first.
_TEST_HELPER_NEEDS = {"index_corpus": ("media_factory",)}


def test_helper(name: str):
    """The module tests/<name>.py (checkpoint, media_factory, index_corpus), loaded from its file: the
    benchmarks build the same checkpoints and media as the tests without putting tests/ on sys.path.
    Registered in sys.modules under `name`, as the helpers import one another by that name."""
    if name in sys.modules:
        return sys.modules[name]
    for needed in _TEST_HELPER_NEEDS.get(name, ()):
        test_helper(needed)
    spec = importlib.util.spec_from_file_location(name, os.path.join(TESTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def machine() -> dict:
    """CPU model, cores, memory, torch version and device: printed beside every figure."""
    import torch

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            mem_gb = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "gpu": gpu,
            "date": time.strftime("%Y-%m-%d")}


def checkpoint(shape: str = "small", tied: bool = True) -> str:
    """A random checkpoint of `shape`, built once and cached under bench/.cache (QVL_BENCH_CACHE).

    The released shapes (2b, 8b) are written in bfloat16 and initialised on the GPU when there is one."""
    import torch

    build_checkpoint = test_helper("checkpoint").build_checkpoint
    big = shape in ("2b", "8b")
    path = os.path.join(os.environ.get("QVL_BENCH_CACHE", CACHE), f"{shape}-{'tied' if tied else 'untied'}")
    if not os.path.isfile(os.path.join(path, "config.json")):
        build_checkpoint(path, shape, tied=tied, seed=0, dtype="bfloat16" if big else "float32",
                         device="cuda" if big and torch.cuda.is_available() else "cpu")
    return path


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@contextmanager
def peak_rss():
    """Sample the resident set size every 5 ms; yields a dict whose 'peak_mb' is filled on exit."""
    out = {"start_mb": rss_mb(), "peak_mb": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            out["peak_mb"] = max(out["peak_mb"], rss_mb())
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield out
    finally:
        stop.set()
        t.join()
        out["peak_mb"] = max(out["peak_mb"], rss_mb())


def write_result(name: str, rows: list[dict], extra: dict | None = None) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"benchmark": name, "machine": machine(), "rows": rows, **(extra or {})}, f, indent=2)
    return path


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)

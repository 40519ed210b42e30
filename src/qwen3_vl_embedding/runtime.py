"""Device, dtype, attention, weight quantisation and CPU threads: chosen here and only here.

Defaults: CUDA when available, else CPU; bfloat16 on CUDA, float32 elsewhere; PyTorch SDPA attention,
or FlashAttention 2 when asked for and installed; weights as released (`quantize="int8"`: int8 linear
layers on a CPU, see int8_weights.py). On a CPU, torch runs one thread per physical core (hyper-threads
share a core's arithmetic units, so more threads only contend), unless OMP_NUM_THREADS is set, which wins.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}
ATTENTION = ("sdpa", "eager", "flash_attention_2")
QUANTIZE = ("int8",)


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype
    attn_implementation: str
    quantize: str | None = None  # None: weights as released; "int8": int8 linear layers (CPU)

    def describe(self) -> str:
        weights = f" {self.quantize} weights" if self.quantize else ""
        return f"{self.device} {str(self.dtype).removeprefix('torch.')} {self.attn_implementation}{weights}"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def parse_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"unsupported dtype {dtype}; use float32, bfloat16 or float16")
        return dtype
    try:
        return DTYPES[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of float32, bfloat16, float16 or auto") from None


def parse_attention(attn: str | None, device: torch.device) -> str:
    if attn is None:
        return "sdpa"
    if attn not in ATTENTION:
        raise ValueError(f"unknown attn_implementation {attn!r}; use one of {ATTENTION}")
    if attn == "flash_attention_2":
        if device.type != "cuda":
            logger.warning("flash_attention_2 needs a CUDA device; using sdpa on %s", device)
            return "sdpa"
        if importlib.util.find_spec("flash_attn") is None:
            logger.warning("flash_attention_2 was asked for but flash-attn is not installed "
                           "(pip install flash-attn); using sdpa")
            return "sdpa"
    return attn


def parse_quantize(quantize: str | None, device: torch.device) -> str | None:
    """None (weights as released) or "int8" (int8 linear layers, on a CPU only)."""
    if quantize is None:
        return None
    if quantize not in QUANTIZE:
        raise ValueError(f"unknown quantize {quantize!r}; use 'int8' (int8 linear layers on a CPU) or None")
    if device.type != "cpu":
        raise ValueError(f"quantize={quantize!r} is for CPUs; on {device} use dtype bfloat16 (the default there)")
    return quantize


def weights_for_index(recorded: str | None, device: str | None = None) -> str | None:
    """The weights to run an index's model with when none are asked for: the ones that made the index
    (`recorded`), where `device` (None: the default one) can run them; int8 runs on a CPU only, so
    elsewhere the released weights."""
    if recorded is None:
        return None
    return recorded if torch.device(device or default_device()).type == "cpu" else None


def physical_cores() -> int:
    """Physical cores this process may run on: the CPUs of its affinity mask, counting SMT siblings
    (hyper-threads, same physical id and core id in /proc/cpuinfo) once, within a cgroup CPU quota
    (cpu.max) when one is set. Falls back to the affinity mask's size where /proc/cpuinfo says nothing."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        allowed = set(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = {}
            for line in [*f, ""]:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key:
                    cpu[key] = value
                    continue
                if cpu.get("processor", "").isdigit() and int(cpu["processor"]) in allowed and "core id" in cpu:
                    cores.add((cpu.get("physical id", "0"), cpu["core id"]))
                cpu = {}
    except OSError:
        pass
    n = len(cores) or len(allowed) or 1
    quota = _cgroup_cpus()
    return max(1, min(n, quota)) if quota else n


def _cgroup_cpus() -> int | None:
    """CPUs allowed by a cgroup v2 quota ("max 100000" means none), rounded up; None without one."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else -(-int(quota) // int(period))
    except (OSError, ValueError):
        return None


_threads_set = False


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads once per process: `threads` when given, else OMP_NUM_THREADS when set
    (torch reads it itself), else the physical cores. Returns the number in use."""
    global _threads_set
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be positive, got {threads}")
        torch.set_num_threads(threads)
        _threads_set = True
    elif not _threads_set and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(physical_cores())
        _threads_set = True
    return torch.get_num_threads()


def resolve_runtime(device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                    attn_implementation: str | None = None, quantize: str | None = None,
                    threads: int | None = None) -> Runtime:
    """The one place where a device, dtype, attention implementation and weight quantisation are
    chosen (and, for a CPU, the number of threads)."""
    dev = torch.device(device) if device is not None else default_device()
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available")
    runtime = Runtime(dev, parse_dtype(dtype, dev), parse_attention(attn_implementation, dev),
                      parse_quantize(quantize, dev))
    if dev.type == "cpu":
        configure_threads(threads)
    return runtime

"""Device, dtype and attention choices: made here and only here.

Defaults: CUDA when available, else CPU; bfloat16 on CUDA, float32 elsewhere; PyTorch SDPA attention,
or FlashAttention 2 when asked for and installed.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}
ATTENTION = ("sdpa", "eager", "flash_attention_2")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype
    attn_implementation: str

    def describe(self) -> str:
        return f"{self.device} {str(self.dtype).removeprefix('torch.')} {self.attn_implementation}"


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


def resolve_runtime(device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                    attn_implementation: str | None = None) -> Runtime:
    """The one place where a device, dtype and attention implementation are chosen."""
    dev = torch.device(device) if device is not None else default_device()
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available")
    return Runtime(dev, parse_dtype(dtype, dev), parse_attention(attn_implementation, dev))

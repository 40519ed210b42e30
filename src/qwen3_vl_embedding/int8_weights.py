"""int8 weights for a CPU, through torchao: `Qwen3VLEmbedder(..., quantize="int8")`.

Every linear layer of both towers (the vision encoder with its mergers, and the language model) but
those of the language model's first decoder layer gets int8 weights with one scale per output channel,
and multiplies int8 activations quantised per token on the fly (symmetric, dynamic): torchao's
`Int8DynamicActivationInt8WeightConfig`. Embeddings, norms, the patch convolution and attention stay as
loaded. Quantised weights take a quarter of their float32 memory.

Why the first decoder layer stays in float (`FLOAT_LAYERS`): on the 2B shape, 200 generated texts,
quantising every layer gave a cosine to float32 of 0.9925 on average (0.9898 at worst); keeping layer 0
in float, 0.9970 (0.9961), for 10% of int8's speed on texts (keeping the last two layers instead changed
nothing; the first two, 0.9979 for 23%). bench/bench_cpu.py and docs/benchmarks.md have the figures.

torchao's CPU kernel is written for Inductor to fuse (on CPUs with AVX512-VNNI and no AMX it shifts
the activations to uint8 and subtracts a per-call column sum of the weight); run eagerly, that extra
work eats most of the gain. So the quantised layers call one `torch.compile`d linear function:
compiled once per layer shape on first use (about half a second each, a dozen shapes for the 2B
model), then 4-8x faster than float32 on 2 cores. Without a C++ compiler (Inductor needs one) the
layers run eagerly, with a warning: correct, but little faster than float32.
"""
from __future__ import annotations

import logging
import threading
import types
from typing import Any

logger = logging.getLogger(__name__)

FLOAT_LAYERS = ("language_model.layers.0.",)  # module name prefixes kept in float (see above)
RECOMPILE_LIMIT = 64  # one compiled graph per linear layer shape (and input rank): about 12 for Qwen3-VL


def quantize_linear_layers(model: Any) -> int:
    """Replace the weights of every `nn.Linear` of `model` outside `FLOAT_LAYERS` by int8 ones (per output
    channel scales, int8 dynamic per-token activations) in place; returns how many layers were quantised."""
    import torch

    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError:
        raise ImportError("quantize='int8' needs torchao: pip install 'qwen3-vl-embedding[cpu]' "
                          "(or pip install torchao)") from None
    def quantised(module: Any, name: str) -> bool:
        return isinstance(module, torch.nn.Linear) and not (name + ".").startswith(FLOAT_LAYERS)

    layers = [m for name, m in model.named_modules() if quantised(m, name)]
    quantize_(model, Int8DynamicActivationInt8WeightConfig(), filter_fn=quantised)
    for layer in layers:
        layer.forward = types.MethodType(_forward, layer)
    _give_back_memory()
    return len(layers)


def _give_back_memory() -> None:
    """Return the freed float32 weights to the system: glibc keeps freed blocks of up to 32 MB in its heap
    (about 3 GB of the 2B model's 6.6 GB resident after quantising, measured), malloc_trim releases them."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _forward(self: Any, x: Any) -> Any:
    """A quantised layer's forward: the compiled linear function on the input flattened to 2-D."""
    shape = x.shape
    y = _linear(x.reshape(-1, shape[-1]), self.weight, self.bias)
    return y.reshape(*shape[:-1], y.shape[-1])


_compiled: Any = None
_eager = False
_lock = threading.Lock()


def _plain_linear(x: Any, weight: Any, bias: Any) -> Any:
    import torch.nn.functional as F

    return F.linear(x, weight, bias)


def _linear(x: Any, weight: Any, bias: Any) -> Any:
    global _compiled, _eager
    if _eager:
        return _plain_linear(x, weight, bias)
    with _lock:
        if _compiled is None:
            import torch
            import torch._dynamo

            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
            # Graphs over torchao's tensor subclass cannot be keyed for Inductor's on-disk cache (it warns
            # with a traceback per graph); they compile in about half a second each anyway.
            torch._inductor.config.fx_graph_cache = False
            # Inductor imports cpp_extension, which warns that this CUDA build of torch finds no CUDA.
            cpp = logging.getLogger("torch.utils.cpp_extension")
            level = cpp.level
            cpp.setLevel(logging.ERROR)
            try:
                import torch.utils.cpp_extension  # noqa: F401
            finally:
                cpp.setLevel(level)
            _compiled = torch.compile(_plain_linear, dynamic=True)
    try:
        return _compiled(x, weight, bias)
    except Exception as e:  # noqa: BLE001 - no C++ compiler, or an Inductor limit: the eager kernel is correct
        _eager = True
        logger.warning("int8 layers run without torch.compile (%s: %s); embeddings are the same, but int8 is then "
                       "little faster than float32. Inductor needs a C++ compiler (gcc or clang).",
                       type(e).__name__, str(e).strip().splitlines()[0][:200] if str(e).strip() else "")
        return _plain_linear(x, weight, bias)

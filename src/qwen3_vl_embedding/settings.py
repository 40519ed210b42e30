"""ModelSettings: everything that decides how a model reads its inputs and where it runs, in one frozen object.

The official constructors (`Qwen3VLEmbedder(model, max_length, min_pixels, ...)`, the same for the
reranker) are thin adapters that build one of these; `Qwen3VLEmbedder.from_settings(model, settings)`
takes it directly. The embedder and the reranker differ only in their defaults (`EMBEDDER`, `RERANKER`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .batching import DEFAULT_MAX_BATCH_TOKENS
from .constants import (EMBED_INSTRUCTION, EMBED_MAX_LENGTH, FPS, MAX_FRAMES, MAX_PIXELS, MIN_PIXELS,
                        RERANK_INSTRUCTION, RERANK_MAX_LENGTH, TOTAL_PIXELS)
from .media import MediaPolicy
from .preprocess import VisionSettings

IGNORED_MODEL_KWARGS = frozenset({"trust_remote_code", "low_cpu_mem_usage"})


@dataclass(frozen=True)
class ModelSettings:
    """How a model reads inputs (lengths, pixel budgets, video sampling, the media policy), how it batches,
    and where it runs (device, dtype, attention: resolved in runtime.py, the one place for them).

    min_pixels / max_pixels: per image. total_pixels: in all, for a video given as frames. fps and
    max_frames: sampling of video files. media_policy: what media may be read (None: the library's
    default, local files and URLs). max_batch_tokens / batch_size: a forward pass's budget. workers:
    preprocessing threads. revision: hub revision. video_backend: "decord" or "av" (None: automatic).
    quantize: None (weights as released) or "int8" (int8 weights with per-channel scales and dynamic
    int8 activations in the linear layers of both towers, on a CPU; needs torchao). threads: torch's CPU
    threads (None: OMP_NUM_THREADS when set, else the physical cores)."""

    max_length: int = EMBED_MAX_LENGTH
    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS
    total_pixels: int = TOTAL_PIXELS
    fps: float = FPS
    max_frames: int = MAX_FRAMES
    default_instruction: str = EMBED_INSTRUCTION
    media_policy: MediaPolicy | None = None
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    batch_size: int | None = None
    workers: int | None = None
    revision: str | None = None
    video_backend: str | None = None
    device: Any = None  # str or torch.device; None: CUDA when available, else CPU
    dtype: Any = None  # str or torch.dtype; None: bfloat16 on CUDA, float32 elsewhere
    attn_implementation: str | None = None
    quantize: str | None = None
    threads: int | None = None

    def __post_init__(self):
        if self.fps <= 0 or self.max_frames <= 0:
            raise ValueError(f"fps and max_frames must be positive, got {self.fps} and {self.max_frames}")
        if self.quantize not in (None, "int8"):
            raise ValueError(f"quantize must be None or 'int8', got {self.quantize!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be a positive integer, got {self.threads!r}")
        self.vision  # validates the pixel budgets

    @property
    def vision(self) -> VisionSettings:
        return VisionSettings(self.min_pixels, self.max_pixels, self.total_pixels, self.video_backend)

    def replace(self, **changes: Any) -> "ModelSettings":
        return dataclasses.replace(self, **changes)

    def with_options(self, options: dict[str, Any]) -> "ModelSettings":
        """These settings with the constructors' keyword options applied: the settings' own field names,
        plus `torch_dtype` (dtype's old name) and the official kwargs that do not apply here
        (`trust_remote_code`, `low_cpu_mem_usage`, ignored). Unknown names raise TypeError."""
        options = dict(options)
        if "torch_dtype" in options:
            if "dtype" in options:
                raise TypeError("pass dtype or torch_dtype, not both")
            options["dtype"] = options.pop("torch_dtype")
        for name in IGNORED_MODEL_KWARGS & set(options):
            options.pop(name)
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise TypeError(f"unexpected keyword arguments {sorted(unknown)}; the options are "
                            f"{', '.join(sorted(OPTION_NAMES))} (and torch_dtype for dtype)")
        return dataclasses.replace(self, **options)


# Keyword options of the constructors: everything but the official positional arguments.
OFFICIAL = ("max_length", "min_pixels", "max_pixels", "total_pixels", "fps", "max_frames", "default_instruction")
OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(ModelSettings)) - set(OFFICIAL)

EMBEDDER = ModelSettings()
RERANKER = ModelSettings(max_length=RERANK_MAX_LENGTH, default_instruction=RERANK_INSTRUCTION)

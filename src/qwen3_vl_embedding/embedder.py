"""Qwen3VLEmbedder: the official API (`process`) and bulk embedding (`embed`), on one engine."""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np
import torch

from .batching import Failure, Refused, RunStats
from .constants import (EMBED_INSTRUCTION, EMBED_MAX_LENGTH, EMBEDDING_2B, FPS, MAX_FRAMES, MAX_PIXELS,
                        MIN_PIXELS, TOTAL_PIXELS)
from .engine import LoadedModel
from .errors import InputError
from .inputs import Item, check_many, require_content, to_item, to_items, with_pixel_budget
from .pooling import check_dim, matryoshka
from .prompts import Prompt, embedding_prompt
from .quantize import QuantRanges, check_precision, quantize
from .settings import EMBEDDER


class EmbedResult(NamedTuple):
    """`embed(..., on_error="skip")`: one row per input in input order, and the inputs that failed.

    Rows of failed inputs are NaN (float precisions) or 0 (integer precisions)."""

    embeddings: np.ndarray
    failures: list[Failure]


class Qwen3VLEmbedder(LoadedModel):
    """Embeds text, images, videos and mixtures with Qwen3-VL-Embedding (2B or 8B).

    The constructor takes the official arguments. Keyword options (`ModelSettings` fields): `device`,
    `dtype` (or `torch_dtype`) and `attn_implementation`; `media_policy` (what media may be read),
    `max_batch_tokens` / `batch_size` (batching), `workers` (preprocessing threads), `revision` (hub
    revision), `video_backend` ("decord" or "av"), `quantize` ("int8": int8 linear layers on a CPU, see
    int8_weights.py) and `threads` (torch's CPU threads). `from_settings(model, settings)` takes them all
    as one `ModelSettings`."""

    def __init__(self, model_name_or_path: str = EMBEDDING_2B, max_length: int = EMBED_MAX_LENGTH,
                 min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS, total_pixels: int = TOTAL_PIXELS,
                 fps: float = FPS, max_frames: int = MAX_FRAMES, default_instruction: str = EMBED_INSTRUCTION,
                 **options: Any):
        settings = EMBEDDER.replace(max_length=max_length, min_pixels=min_pixels, max_pixels=max_pixels,
                                    total_pixels=total_pixels, fps=fps, max_frames=max_frames,
                                    default_instruction=default_instruction).with_options(options)
        super().__init__(model_name_or_path, settings)

    defaults = EMBEDDER  # what `from_settings(model)` uses
    quant_ranges: QuantRanges | None = None  # int8/uint8 ranges set by `calibrate`

    # facts -----------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Full embedding size (2048 for 2B, 4096 for 8B)."""
        return self.engine.hidden_size

    def __repr__(self) -> str:
        return f"Qwen3VLEmbedder({self.name!r}, dim={self.dim}, {self.runtime.describe()})"

    # the head (post) -------------------------------------------------------------------------------
    def head(self, hidden: torch.Tensor, dim: int | None = None, normalize: bool = True) -> torch.Tensor:
        """Last hidden states (n, hidden) -> embeddings: the first `dim` components (Matryoshka),
        L2-normalised when `normalize`. Every vector this library returns, in-process or from the server,
        goes through this one function."""
        return matryoshka(hidden, dim, normalize)

    def prepare(self, item: Any, instruction: str | None = None) -> tuple[Any, int]:
        """(pre) The job of one input for `run_jobs`, and its token cost (see `costed`)."""
        return self.costed(self.prompt(item, instruction))

    # prompts ---------------------------------------------------------------------------------------
    def prompt(self, item: Any, instruction: str | None = None, index: int | None = None,
               max_pixels: Any = None) -> Prompt:
        """The prompt of one input (`instruction` applies when the input sets none, `max_pixels` to its
        images that set no budget); errors name `index`. An input with no text, image or video is an
        InputError (only the official `process` embeds it)."""
        item = with_pixel_budget(require_content(to_item(item, index), index), max_pixels)
        if instruction is not None and item.instruction is None:
            item = dataclasses.replace(item, instruction=instruction)
        return embedding_prompt(item, self.default_instruction, self.fps, self.max_frames)

    def _prompts(self, inputs: Iterable[Any], instruction: str | None, skip: bool = False,
                 max_pixels: Any = None) -> Iterator[Prompt | Refused]:
        """Each input's prompt; with `skip`, a malformed input becomes a Refused job (reported at its place)."""
        for i, obj in enumerate(inputs):
            try:
                yield self.prompt(obj, instruction, i, max_pixels)
            except InputError as e:
                if not skip:
                    raise
                yield Refused(e)

    # the official API ------------------------------------------------------------------------------
    def process(self, inputs: list[dict[str, Any]], normalize: bool = True) -> torch.Tensor:
        """Embeddings (n, dim) as a float32 CPU tensor, rows in input order (the official method).

        Raises InputError naming the input and field when an item cannot be read; never substitutes, with
        one exception kept from the reference: an item with no text, image or video is embedded as the
        text NULL, with a warning naming it (`embed` refuses such an item)."""
        items: list[Item] = to_items(inputs)
        empty = [i for i, it in enumerate(items) if it.is_empty]
        if empty:
            warnings.warn(f"input(s) {', '.join(map(str, empty[:10]))}{' ...' if len(empty) > 10 else ''} have no "
                          f"text, image or video; embedded as the text 'NULL', as the official process() does "
                          f"(embed() refuses them)", UserWarning, stacklevel=2)
        prompts = [embedding_prompt(it, self.default_instruction, self.fps, self.max_frames) for it in items]
        out = self.engine.collect(prompts, lambda h: self.head(h, None, normalize))
        return out if len(prompts) else torch.empty((0, self.dim))

    # bulk ------------------------------------------------------------------------------------------
    def iter_embed(self, inputs: Iterable[Any], *, dim: int | None = None, normalize: bool = True,
                   instruction: str | None = None, max_batch_tokens: int | None = None,
                   batch_size: int | None = None, show_progress: bool | None = None, on_error: str = "raise",
                   total: int | None = None, stats: RunStats | None = None, max_pixels: Any = None
                   ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (input position, float32 vector) as batches finish (not in input order); streams any iterable.
        `max_pixels`: see `embed`.

        A malformed or empty input raises InputError naming its position, or with on_error="skip" is
        recorded in `stats.failures` like an unreadable one."""
        check_many(inputs)
        dim = check_dim(dim, self.dim)
        if total is None and hasattr(inputs, "__len__"):
            total = len(inputs)  # type: ignore[arg-type]
        prompts = self._prompts(inputs, instruction, on_error == "skip", _budget_option(max_pixels))
        for pos, row in self.run_jobs(prompts, lambda h: self.head(h, dim, normalize),
                                      max_batch_tokens=max_batch_tokens, batch_size=batch_size,
                                      on_error=on_error, show_progress=show_progress, total=total, stats=stats):
            yield pos, row.numpy()

    def embed(self, inputs: Iterable[Any], *, dim: int | None = None, precision: str = "float32",
              normalize: bool = True, instruction: str | None = None, max_batch_tokens: int | None = None,
              batch_size: int | None = None, show_progress: bool | None = None, on_error: str = "raise",
              ranges: QuantRanges | np.ndarray | None = None, max_pixels: Any = None) -> np.ndarray | EmbedResult:
        """Embed any iterable of inputs; a numpy array (n, dim) in input order.

        dim: Matryoshka size (64..model size), re-normalised. precision: float32, float16, int8, uint8
        (calibrated `ranges`, default the embedder's `calibrate` result), binary or ubinary (packed bits).
        max_pixels: the pixel budget of images whose input sets none (an int, or `budgets.PixelBudgets()`
        for a budget by kind: photos smaller than documents); None: the model's `max_pixels`.
        on_error="skip" returns an `EmbedResult` (array, failures) instead of raising InputError."""
        check_many(inputs)
        check_precision(precision)
        dim = check_dim(dim, self.dim)
        if precision in ("int8", "uint8"):
            ranges = ranges if ranges is not None else self.quant_ranges
            if ranges is None:
                quantize(np.zeros((1, dim), np.float32), precision, None)  # raises the how-to message
        stats = RunStats()
        rows: dict[int, np.ndarray] = {}
        for pos, vec in self.iter_embed(inputs, dim=dim, normalize=normalize, instruction=instruction,
                                        max_batch_tokens=max_batch_tokens, batch_size=batch_size,
                                        show_progress=show_progress, on_error=on_error, stats=stats,
                                        max_pixels=max_pixels):
            rows[pos] = vec
        n = max([*rows, *(f.index for f in stats.failures)], default=-1) + 1
        floats = np.full((n, dim), np.nan, dtype=np.float32)
        for pos, vec in rows.items():
            floats[pos] = vec
        if precision == "float32":
            out = floats
        else:
            ok = ~np.isnan(floats).any(axis=1)
            out = quantize(np.where(ok[:, None], floats, 0.0), precision, ranges)
            if precision == "float16":
                out[~ok] = np.nan
        return EmbedResult(out, stats.failures) if on_error == "skip" else out

    def embed_queries(self, queries: Iterable[Any], instruction: str | None = None, **kwargs: Any):
        """Embed search queries with a task instruction (the default instruction when None)."""
        return self.embed(queries, instruction=instruction or self.default_instruction, **kwargs)

    def embed_documents(self, documents: Iterable[Any], **kwargs: Any):
        """Embed documents (candidates) with the default instruction, as the released models expect."""
        return self.embed(documents, **kwargs)

    def calibrate(self, inputs_or_embeddings: Any, **kwargs: Any) -> QuantRanges:
        """Per-dimension int8/uint8 ranges from a calibration set (inputs or float embeddings); kept as default."""
        if isinstance(inputs_or_embeddings, np.ndarray):
            x = inputs_or_embeddings
        else:
            x = self.embed(inputs_or_embeddings, **kwargs)
        self.quant_ranges = QuantRanges.from_embeddings(x)
        return self.quant_ranges

    @staticmethod
    def similarity(a: Any, b: Any) -> np.ndarray:
        """Cosine similarity matrix (len(a), len(b)) of two sets of float embeddings."""
        a = np.atleast_2d(a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, np.float32))
        b = np.atleast_2d(b.detach().float().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, np.float32))
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return a @ b.T

    def count_tokens(self, item: Any) -> int:
        """Exact token count of one input as the model sees it (reads its media)."""
        return self.engine.preprocessor.prepare(self.prompt(item)).length


def _budget_option(max_pixels: Any) -> Any:
    """Check `embed`'s max_pixels: None, a positive int, or a callable(source) -> int (PixelBudgets)."""
    if max_pixels is None or callable(max_pixels):
        return max_pixels
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive integer or a PixelBudgets, got {max_pixels!r}")
    return max_pixels

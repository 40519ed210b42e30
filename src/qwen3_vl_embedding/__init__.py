"""qwen3_vl_embedding: Qwen3-VL-Embedding and Qwen3-VL-Reranker with the official API and numbers.

    from qwen3_vl_embedding import Qwen3VLEmbedder, Qwen3VLReranker

Names are imported lazily: importing the package loads neither torch nor transformers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Qwen3VLEmbedder": "embedder",
    "EmbedResult": "embedder",
    "Qwen3VLReranker": "reranker",
    "RerankResult": "reranker",
    "InputError": "errors",
    "MediaError": "errors",
    "MediaPolicyError": "errors",
    "LimitError": "errors",
    "ModelNotFoundError": "errors",
    "Qwen3VLError": "errors",
    "MediaPolicy": "media",
    "PixelBudgets": "budgets",
    "QuantRanges": "quantize",
    "quantize": "quantize",
    "Failure": "batching",
    "RunStats": "batching",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .batching import Failure, RunStats
    from .budgets import PixelBudgets
    from .embedder import EmbedResult, Qwen3VLEmbedder
    from .errors import (InputError, LimitError, MediaError, MediaPolicyError, ModelNotFoundError,
                         Qwen3VLError)
    from .media import MediaPolicy
    from .quantize import QuantRanges, quantize
    from .reranker import Qwen3VLReranker, RerankResult

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

"""The server's job helpers, shared by the embeddings, rerank and search routes: limits checked before
anything is read, vectors in OpenAI's encodings, orderings, and the worker-side finishing of rows."""
from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..inputs import Item, VideoPart
from .errors import limit_error

INLINE_TEXTS = 16  # a request of at most this many texts is prepared on the event loop


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """Floats, or base64 of little-endian float32 (OpenAI's `encoding_format="base64"`)."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return np.asarray(vector, dtype=np.float32).tolist()


def ranked(scores: list[float], top_n: int | None) -> list[int]:
    """Document positions by score, best first (ties by position), at most `top_n`."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[:top_n] if top_n is not None else order


def check_item_limits(item: Item, max_frames: int, prefix: str, index: int | None) -> None:
    """Refuse video settings beyond the server's frame limit before anything is read."""
    for part in item.parts:
        if not isinstance(part, VideoPart):
            continue
        param = f"{prefix}[{index}].{part.field}" if index is not None else f"{prefix}.{part.field}"
        if part.is_frames and len(part.source) > max_frames:
            raise limit_error("max_video_frames", max_frames, f"{param}: a frame list of {len(part.source)} frames",
                              param)
        if part.max_frames is not None and part.max_frames > max_frames:
            raise limit_error("max_video_frames", max_frames, f"{param}: max_frames={part.max_frames}", param)


def embeddings_of(embedder: Any, rows: list, dim: int, normalize: bool = True) -> np.ndarray:
    """A request's raw hidden states -> its vectors with the embedder's own head (on the worker thread)."""
    import torch

    return embedder.head(torch.stack(rows), dim, normalize).numpy()


def floats(rows: list) -> list[float]:
    return [float(r) for r in rows]

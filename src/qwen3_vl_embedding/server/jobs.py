"""The server's job helpers, shared by the embeddings, rerank and search routes: limits checked before
anything is read, vectors in OpenAI's encodings, orderings, and the worker-side finishing of rows."""
from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..inputs import ImagePart, Item, TextPart, VideoPart
from .errors import limit_error

# A request of at most this many texts and characters is prepared on the event loop (tokenising holds
# the GIL: 16k characters take a few milliseconds); anything larger is prepared on a worker thread.
INLINE_TEXTS = 16
INLINE_CHARS = 16_384


def prepared_inline(inputs: list) -> bool:
    """Whether a request's inputs are small texts, cheaper to tokenise than to hand to a thread."""
    return (len(inputs) <= INLINE_TEXTS and all(isinstance(x, str) for x in inputs)
            and sum(len(x) for x in inputs) <= INLINE_CHARS)


def check_text_chars(text: str | None, max_chars: int, param: str) -> None:
    """Refuse a text (or instruction) longer than `max_chars` characters before it is tokenised."""
    if text is not None and len(text) > max_chars:
        raise limit_error("max_text_chars", max_chars, f"{param}: a text of {len(text)} characters", param)


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """Floats, or base64 of little-endian float32 (OpenAI's `encoding_format="base64"`)."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return np.asarray(vector, dtype=np.float32).tolist()


def ranked(scores: list[float], top_n: int | None) -> list[int]:
    """Document positions by score, best first (ties by position), at most `top_n`."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[:top_n] if top_n is not None else order


def check_item_limits(item: Item, config: Any, prefix: str, index: int | None) -> None:
    """Refuse what is beyond the server's limits (`ServerConfig`) before anything is read or tokenised:
    texts and the instruction longer than max_text_chars, video settings beyond max_video_frames."""
    where = f"{prefix}[{index}]" if index is not None else prefix
    check_text_chars(item.instruction, config.max_text_chars, f"{where}.instruction")
    max_frames = config.max_video_frames
    for part in item.parts:
        param = f"{where}.{part.field}"
        if isinstance(part, TextPart):
            check_text_chars(part.text, config.max_text_chars, param)
        if not isinstance(part, VideoPart):
            continue
        if part.is_frames and len(part.source) > max_frames:
            raise limit_error("max_video_frames", max_frames, f"{param}: a frame list of {len(part.source)} frames",
                              param)
        if part.max_frames is not None and part.max_frames > max_frames:
            raise limit_error("max_video_frames", max_frames, f"{param}: max_frames={part.max_frames}", param)


def check_pixel_budget(item: Item, max_pixels: int, prefix: str, index: int | None) -> None:
    """An image's own max_pixels / min_pixels may lower the served model's pixel budget, never raise it
    (what `qvl index --server` sends for photos and PDF pages)."""
    where = f"{prefix}[{index}]" if index is not None else prefix
    for part in item.parts:
        if isinstance(part, ImagePart):
            for name in ("max_pixels", "min_pixels"):
                value = getattr(part, name)
                if value is not None and value > max_pixels:
                    raise limit_error("max_pixels", max_pixels, f"{where}.{part.field}: {name}={value} is above "
                                      f"the server's pixel budget max_pixels={max_pixels}", f"{where}.{name}")


def embeddings_of(embedder: Any, rows: list, dim: int, normalize: bool = True) -> np.ndarray:
    """A request's raw hidden states -> its vectors with the embedder's own head (on the worker thread)."""
    import torch

    return embedder.head(torch.stack(rows), dim, normalize).numpy()


def floats(rows: list) -> list[float]:
    return [float(r) for r in rows]

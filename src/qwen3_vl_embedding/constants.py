"""Defaults of the official Qwen3-VL-Embedding / Qwen3-VL-Reranker release, and the Qwen token ids."""
from __future__ import annotations

EMBEDDING_2B = "Qwen/Qwen3-VL-Embedding-2B"
EMBEDDING_8B = "Qwen/Qwen3-VL-Embedding-8B"
RERANKER_2B = "Qwen/Qwen3-VL-Reranker-2B"
RERANKER_8B = "Qwen/Qwen3-VL-Reranker-8B"
HUB_ID_PATTERN = r"[A-Za-z0-9][\w.-]*/[\w.-]+"  # owner/name, as opposed to a relative or absolute path

PATCH_SIZE = 16
MERGE_SIZE = 2
IMAGE_FACTOR = PATCH_SIZE * MERGE_SIZE  # 32: resized sides are multiples of this

EMBED_MAX_LENGTH = 8192
RERANK_MAX_LENGTH = 10240
MIN_PIXELS = 4 * IMAGE_FACTOR * IMAGE_FACTOR  # 4,096
MAX_PIXELS = 1800 * IMAGE_FACTOR * IMAGE_FACTOR  # 1,843,200
TOTAL_PIXELS = 10 * 768 * IMAGE_FACTOR * IMAGE_FACTOR  # 7,864,320 (frame lists)
FPS = 1.0
MAX_FRAMES = 64

EMBED_INSTRUCTION = "Represent the user's input."
RERANK_INSTRUCTION = "Given a search query, retrieve relevant candidates that answer the query."
RERANK_SYSTEM = (
    'Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
    'Note that the answer can only be "yes" or "no".'
)
EMPTY_TEXT = "NULL"

# Special tokens of the Qwen2 vocabulary used by Qwen3-VL.
PAD = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"

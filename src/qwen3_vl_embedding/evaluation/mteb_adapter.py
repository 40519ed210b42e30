"""mteb (2.x) wrappers: the embedder as an encoder, the reranker as a cross-encoder.

    import mteb
    from qwen3_vl_embedding.evaluation import MTEBEncoder
    mteb.evaluate(MTEBEncoder(embedder), mteb.get_tasks(["..."]), cache=None)

Query-side inputs (and the inputs of symmetric tasks) carry the task's instruction: a row's own
`instruction`, else `instructions[task name or type]`, else the task's prompt, else mteb's generic
prompt for the task type, else the model's default; documents use the default instruction, as the
released models expect. Importing this module imports mteb; nothing else in the package does.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType

from ..constants import EMPTY_TEXT

MODALITIES = ["text", "image", "video"]


def meta_name(engine_name: str) -> str:
    """mteb wants "organization/model": a hub id as is, a local folder as local/<folder name>."""
    if "/" in engine_name and not os.path.isdir(os.path.expanduser(engine_name)):
        return engine_name
    return "local/" + os.path.basename(os.path.normpath(engine_name))


def _image(value: Any) -> Any:
    if isinstance(value, Mapping):  # an undecoded datasets.Image: {"bytes", "path"}
        return value.get("bytes") or value.get("path")
    return value


def _video(value: Any) -> Any:
    """Frames as a (T, C, H, W) or (T, H, W, C) uint8 tensor/array -> list of PIL images; paths as is."""
    if isinstance(value, (str, bytes, os.PathLike, list, tuple)):
        return value
    from PIL import Image

    frames = np.asarray(value.cpu() if hasattr(value, "cpu") else value)
    if frames.ndim != 4:
        raise ValueError(f"a video must be a path or frames (T, C, H, W); got an array of shape {frames.shape}")
    if frames.shape[1] in (1, 3) and frames.shape[-1] not in (1, 3):
        frames = frames.transpose(0, 2, 3, 1)
    if frames.dtype != np.uint8:
        frames = np.clip(frames * (255 if frames.max() <= 1 else 1), 0, 255).astype(np.uint8)
    return [Image.fromarray(f.squeeze(-1) if f.shape[-1] == 1 else f) for f in frames]


def batch_items(batch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An mteb batch (columns of lists) -> our input items, one per row."""
    n = next((len(v) for k, v in batch.items() if k in ("text", "image", "video") and v is not None), 0)
    items = []
    for i in range(n):
        item: dict[str, Any] = {}
        if batch.get("video") is not None and batch["video"][i] is not None:
            item["video"] = _video(batch["video"][i])
        if batch.get("image") is not None and batch["image"][i] is not None:
            item["image"] = _image(batch["image"][i])
        text = batch["text"][i] if batch.get("text") is not None else None
        if isinstance(text, list):  # a conversation: its turns' contents
            text = "\n".join(t["content"] if isinstance(t, Mapping) else str(t) for t in text)
        if text:
            item["text"] = text
        items.append(item or {"text": EMPTY_TEXT})  # an empty row is the text NULL, as the reference embeds it
    return items


class _InstructionSource(AbsEncoder):
    """mteb's own instruction lookup (a task's prompt by name, type or side), for both wrappers."""

    def __init__(self, instructions: Mapping[str, str] | None):
        self.prompts_dict = dict(instructions or {})

    def for_side(self, task_metadata: Any, prompt_type: PromptType | None) -> str | None:
        """The instruction for this side of the task; None means the model's default."""
        if prompt_type == PromptType.document:
            return None
        return self.get_instruction(task_metadata, prompt_type) or None

    def encode(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError


class MTEBEncoder(AbsEncoder):
    """`Qwen3VLEmbedder` behind mteb's encoder protocol (cosine similarity, float32 output)."""

    def __init__(self, embedder: Any, *, dim: int | None = None, instructions: Mapping[str, str] | None = None,
                 name: str | None = None):
        self.instructions = _InstructionSource(instructions)
        self.model = embedder
        self.dim = dim
        self.mteb_model_meta = ModelMeta.create_empty({
            "name": name or meta_name(embedder.name), "revision": "local", "embed_dim": dim or embedder.dim,
            "similarity_fn_name": ScoringFunction.COSINE, "modalities": MODALITIES, "use_instructions": True,
            "model_type": ["dense"], "framework": ["PyTorch"]})

    def encode(self, inputs: Iterable[Mapping[str, Any]], *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:
        default = self.instructions.for_side(task_metadata, prompt_type)
        rows: list[np.ndarray] = []
        for batch in inputs:
            items = batch_items(batch)
            own = batch.get("instruction") if prompt_type != PromptType.document else None
            for i, item in enumerate(items):
                instruction = (own[i] if own else None) or default
                if instruction:
                    item["instruction"] = instruction
            if items:
                rows.append(self.model.embed(items, dim=self.dim, show_progress=False))
        return np.concatenate(rows) if rows else np.empty((0, self.dim or self.model.dim), np.float32)


class MTEBCrossEncoder:
    """`Qwen3VLReranker` behind mteb's cross-encoder protocol: one score per (query, document) pair.

    The instruction is the query-side task instruction, else the reranker's default."""

    def __init__(self, reranker: Any, *, instructions: Mapping[str, str] | None = None, name: str | None = None):
        self.instructions = _InstructionSource(instructions)
        self.model = reranker
        self.mteb_model_meta = ModelMeta.create_empty({
            "name": name or meta_name(reranker.name), "revision": "local", "modalities": MODALITIES,
            "use_instructions": True, "model_type": ["cross-encoder"], "framework": ["PyTorch"]})

    def predict(self, inputs1: Iterable[Mapping[str, Any]], inputs2: Iterable[Mapping[str, Any]], *,
                task_metadata: Any, hf_split: str, hf_subset: str, prompt_type: PromptType | None = None,
                **kwargs: Any) -> np.ndarray:
        instruction = self.instructions.for_side(task_metadata, PromptType.query)
        scores: list[float] = []
        for queries, docs in zip(inputs1, inputs2, strict=True):
            q_items, d_items = batch_items(queries), batch_items(docs)
            keys = queries.get("id") or list(range(len(q_items)))
            start = 0
            while start < len(q_items):  # consecutive pairs of one query are scored in one call
                end = start + 1
                while end < len(q_items) and keys[end] == keys[start]:
                    end += 1
                own = queries.get("instruction")
                scores += self.model.scores(q_items[start], d_items[start:end],
                                            instruction=(own[start] if own else None) or instruction)
                start = end
        return np.asarray(scores, dtype=np.float32)

"""What the routes share to take other APIs' requests as their clients send them.

- Tasks as instructions: Cohere's `input_type`, Jina's `task` and TEI's `prompt_name` name what an input
  is for; each maps onto one of this project's instructions (`TASKS`), so a `search_query` vector is the
  vector `qvl search` embeds a query with, and a `search_document` one is a document's.
- Unknown top-level fields that other APIs' clients send by default (`late_chunking`, `truncate`,
  `priority`...) are ignored and named in a `Warning` header, not refused; a near miss of one of the
  route's own fields (`instrution`) is still refused, and so is a wrong type.
- Vectors in the encodings the clients ask for (float, base64, int8/uint8 with calibrated ranges, binary,
  ubinary), from the library's quantize.
Errors take each ecosystem's shape in errors.styled_body.
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable

import numpy as np
from starlette.concurrency import run_in_threadpool

from ..index.store import QUERY_INSTRUCTION
from ..inputs import ITEM_KEYS
from ..quantize import quantize
from ..recipes.classification import KNN_INSTRUCTION
from ..recipes.clustering import CLUSTER_INSTRUCTION
from . import token_ids
from .errors import APIError
from .jobs import encode_vector
from .schemas import to_library
from .vllm import conversation_item

# None: the model's default instruction (the one documents are embedded with).
TASKS: dict[str, dict[str, str | None]] = {
    "input_type": {  # Cohere
        "search_query": QUERY_INSTRUCTION, "search_document": None, "classification": KNN_INSTRUCTION,
        "clustering": CLUSTER_INSTRUCTION, "image": None},
    "task": {  # Jina
        "retrieval.query": QUERY_INSTRUCTION, "retrieval.passage": None, "text-matching": None,
        "classification": KNN_INSTRUCTION, "separation": CLUSTER_INSTRUCTION},
    "prompt_name": {  # TEI (sentence-transformers prompt names)
        "query": QUERY_INSTRUCTION, "document": None, "passage": None},
}


def task_instruction(field: str, value: str | None, explicit: str | None = None) -> str | None:
    """The instruction for a task-like field's value (400 for an unknown value); an explicit `instruction` wins."""
    if value is None:
        return explicit
    table = TASKS[field]
    if value not in table:
        raise APIError(400, f"{field} must be one of {', '.join(table)}, got {value!r}", param=field,
                       code="invalid_request")
    return explicit if explicit is not None else table[value]


async def openai_inputs(request: Any) -> tuple[list, str | None, str]:
    """An /v1/embeddings request's library inputs, its instruction and the field its inputs came from:
    `input` (strings or items; token ids decoded off the event loop) or `messages` (conversations)."""
    instruction = task_instruction("input_type", request.input_type,
                                   task_instruction("task", request.task, request.instruction))
    if request.messages is not None:
        return [conversation_item([to_library(m) for m in conversation], f"messages[{i}]")
                for i, conversation in enumerate(request.messages)], instruction, "messages"
    if request.token_ids is not None:
        return await run_in_threadpool(token_ids.decode, request.token_ids), instruction, "input"
    value = request.input
    return ([value] if isinstance(value, str) else list(value)), instruction, "input"


def rank_field_documents(documents: list, rank_fields: list[str], param: str = "documents") -> list:
    """Cohere v1's `rank_fields`: each object document ranked as the text of those fields, one
    `field: value` line each, in the order given (fields it lacks are left out); strings stay as they are."""
    out = []
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            out.append(doc)
            continue
        lines = [f"{name}: {doc[name]}" for name in rank_fields if doc.get(name) is not None]
        if not lines:
            raise APIError(400, f"{param}[{i}] has none of the rank_fields {rank_fields}", param=f"{param}[{i}]",
                           code="invalid_input")
        out.append("\n".join(lines))
    return out


def check_object_documents(documents: list, param: str = "documents") -> None:
    """Without rank_fields, an object document must be an item: say how to rank other objects (Cohere v1)."""
    for i, doc in enumerate(documents):
        unknown = sorted(set(doc) - ITEM_KEYS) if isinstance(doc, dict) else []
        if unknown:
            raise APIError(400, f"{param}[{i}]: unknown keys {unknown}; an item takes {sorted(ITEM_KEYS)}, and "
                                "objects of other fields are ranked with rank_fields (for example [\"text\"])",
                           param=f"{param}[{i}]", code="invalid_input")


# unknown fields --------------------------------------------------------------------------------------
def ignored_fields(request: Any) -> dict[str, str]:
    """The Warning header naming the top-level fields of `request` (a tolerant request model) that are
    ignored; 400 for one that is a near miss of a field of the route (a typo, not another API's field)."""
    extra = sorted((getattr(request, "model_extra", None) or {}))
    if not extra:
        return {}
    known = list(type(request).model_fields)
    for name in extra:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
        if close:
            raise APIError(400, f"unknown field {name!r}; did you mean {close[0]!r}?", param=name,
                           code="invalid_request")
    shown = [ascii(name)[1:-1].replace('"', '\\"')[:64] for name in extra[:_SHOWN]]  # a valid header value
    more = f" (and {len(extra) - _SHOWN} more)" if len(extra) > _SHOWN else ""
    return {"Warning": f'299 qvl "ignored unknown fields: {", ".join(shown)}{more}"'}


_SHOWN = 20


# vector encodings ------------------------------------------------------------------------------------
def check_vector_types(kinds: Iterable[str], ranges: Any, param: str) -> None:
    """Refuse int8/uint8 before any work when the server's embedder has no calibration ranges."""
    for kind in kinds:
        if kind in ("int8", "uint8") and ranges is None:
            raise APIError(400, f"{kind} vectors need calibration ranges and this server's embedder has none; "
                                "ask for float, base64, binary or ubinary (or serve an embedder calibrated with "
                                "Qwen3VLEmbedder.calibrate)", param=param, code="unsupported_embedding_type")


def encode_vectors(vectors: list[np.ndarray], kind: str, ranges: Any = None) -> list:
    """Vectors as floats, base64 of little-endian float32, int8/uint8 levels (calibrated `ranges`, as
    `embed(precision=...)`), or packed sign bits (binary: signed bytes, ubinary: unsigned), one per vector."""
    if kind == "base64":
        return [encode_vector(v, "base64") for v in vectors]
    x = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32)
    if kind == "float":
        return x.tolist()
    return quantize(x, kind, ranges).tolist()

"""Cohere's embed API (/v1/embed, /v2/embed) over the service, for cohere's `Client` and `ClientV2`.

Inputs: `texts`, `images` (data URIs) or `inputs` (text and image_url parts, in order) become the
library's inputs; `input_type` becomes an instruction (compat.TASKS); `output_dimension` is the
Matryoshka size; `max_tokens` keeps the first N tokens of each input's text (the model's tokenizer,
images untouched). `embedding_types`: float, base64 (little-endian float32), binary / ubinary (packed
sign bits, as `embed(precision=...)`), int8 / uint8 only when the served embedder has calibration
ranges. v1 without `embedding_types` answers Cohere's `embeddings_floats` shape, otherwise
`embeddings_by_type`. The rerank routes are the shared ones (schemas.RerankRequest).
"""
from __future__ import annotations

import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..errors import InputError
from ..inputs import to_item
from ..truncation import truncate_item
from .compat import check_vector_types, encode_vectors, task_instruction
from .errors import APIError, from_input_error
from .schemas import to_library


def library_inputs(body: Any) -> tuple[list, list[str], str]:
    """(library inputs, the texts Cohere echoes, the field they came from)."""
    if body.texts is not None:
        return list(body.texts), list(body.texts), "texts"
    if body.images is not None:
        return [{"image": uri} for uri in body.images], [], "images"
    inputs = [{"content": [to_library(part) for part in entry.content]} for entry in body.inputs]
    return inputs, [], "inputs"


def _truncated(inputs: list, tokenizer: Any, max_tokens: int, param: str) -> list:
    out = []
    for i, raw in enumerate(inputs):
        try:
            out.append(truncate_item(to_item(raw, i), tokenizer, max_tokens))
        except InputError as e:
            raise from_input_error(e, param) from None
    return out


def meta(version: int, tokens: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"api_version": {"version": str(version)}}
    if tokens is not None:
        out["billed_units"] = {"input_tokens": tokens}
    return out


async def embed(service: Any, body: Any, version: int) -> dict[str, Any]:
    """A Cohere embed request (`schemas_compat.CohereEmbedRequest`) -> Cohere's response body."""
    service._need("embedding", "--model")
    if body.truncate == "START":
        raise APIError(400, "truncate=START is not available: inputs longer than the model's max_length lose "
                            "their end; send truncate=END (or none)", param="truncate", code="invalid_request")
    instruction = task_instruction("input_type", body.input_type, body.instruction)
    types = body.embedding_types or (["float"] if version == 2 else None)
    check_vector_types(types or [], service.quant_ranges, "embedding_types")
    inputs, texts, param = library_inputs(body)
    if body.max_tokens is not None and inputs:
        inputs = await run_in_threadpool(_truncated, inputs, service.embedder.text_tokenizer, body.max_tokens, param)
    try:
        result = await service.embed_inputs(inputs, body.output_dimension, instruction, param)
    except APIError as e:
        if e.param == "dimensions":
            e.param, e.message = "output_dimension", e.message.replace("dimensions", "output_dimension")
        raise
    response: dict[str, Any] = {"id": str(uuid.uuid4()), "texts": texts, "meta": meta(version, result.tokens)}
    if types is None:
        return {**response, "embeddings": encode_vectors(result.vectors, "float"), "response_type": "embeddings_floats"}
    embeddings = {kind: encode_vectors(result.vectors, kind, service.quant_ranges) for kind in dict.fromkeys(types)}
    return {**response, "embeddings": embeddings, "response_type": "embeddings_by_type"}

"""text-embeddings-inference's routes over the service: /embed, /rerank (with `texts`) and /info.

/embed answers a list of vectors (`normalize` false: the raw Matryoshka cut, as `embed(normalize=False)`;
`prompt_name` "query" or "document" chooses the instruction, compat.TASKS); /rerank answers
`[{"index", "score", "text"?}]` best first, with the reranker's (0, 1) scores (`raw_scores` is not
available); /info describes the embedder (or, without one, the reranker). Inputs longer than the model's
max_length always lose their end. Errors have TEI's shape, `{"error", "error_type"}`.
"""
from __future__ import annotations

from typing import Any

from .. import __version__
from .compat import encode_vectors, task_instruction
from .errors import APIError
from .jobs import ranked


def _keep_start(direction: str | None) -> None:
    if direction is not None and direction.lower() == "left":
        raise APIError(400, "truncation_direction=left is not available: inputs longer than the model's max_length "
                            "lose their end (right)", param="truncation_direction", code="invalid_request")


async def embed(service: Any, body: Any) -> list:
    _keep_start(body.truncation_direction)
    instruction = task_instruction("prompt_name", body.prompt_name)
    inputs = [body.inputs] if isinstance(body.inputs, str) else list(body.inputs)
    result = await service.embed_inputs(inputs, body.dimensions, instruction, "inputs", normalize=body.normalize)
    return encode_vectors(result.vectors, "float")


async def rerank(service: Any, body: Any) -> list[dict[str, Any]]:
    _keep_start(body.truncation_direction)
    if body.raw_scores:
        raise APIError(400, "raw_scores is not available: scores are the reranker's probabilities in (0, 1); "
                            "send raw_scores=false", param="raw_scores", code="invalid_request")
    scored = await service.rerank_inputs(body.query, list(body.texts), param="texts")
    out = []
    for i in ranked(scored.scores, None):
        entry: dict[str, Any] = {"index": i, "score": scored.scores[i]}
        if body.return_text:
            entry["text"] = body.texts[i]
        out.append(entry)
    return out


def info(service: Any) -> dict[str, Any]:
    """TEI's /info: the served model (the embedder, else the reranker) and the server's limits; the fields
    this server has no counterpart for (model_sha, tokenization_workers...) are null."""
    task = "embedding" if "embedding" in service.names else "rerank"
    model = service.embedder if task == "embedding" else service.reranker
    runtime = getattr(model, "runtime", None)
    model_type = ({"embedding": {"pooling": "last_token"}} if task == "embedding"
                  else {"reranker": {"id2label": {"0": "yes"}, "label2id": {"yes": 0}}})
    c = service.config
    return {"model_id": service.names[task], "model_sha": None,
            "model_dtype": str(runtime.dtype).removeprefix("torch.") if runtime is not None else "unknown",
            "model_type": model_type, "max_concurrent_requests": c.max_queue,
            "max_input_length": getattr(model, "max_length", None), "max_batch_tokens": c.batch_tokens,
            "max_batch_requests": None, "max_client_batch_size": c.max_items, "auto_truncate": True,
            "tokenization_workers": None, "version": __version__, "sha": None, "docker_label": None}

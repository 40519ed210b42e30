"""vLLM's request shapes: conversations to embed, and its score API.

`vllm serve Qwen/Qwen3-VL-Embedding-2B --runner pooling` takes `{"messages": [...]}` on /v1/embeddings:
the official chat conversation, a system message holding the instruction and a user message holding
the content (`text`, `image_url`, `video_url` parts, in order). `conversation_item` turns one into the
library's chat-content item, so the vector is `Qwen3VLEmbedder.embed` of that item (no system message:
the model's default instruction, as the library does). /score and /v1/score take vLLM's pairs
(`queries`/`documents`, `queries`/`items`, `text_1`/`text_2` or `data_1`/`data_2`: one to one, one to
many, or many to many zipped) and score them with the reranker.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from .errors import APIError


def _fail(message: str, param: str) -> APIError:
    return APIError(400, f"{param}: {message}", param=param, code="invalid_input")


def _system_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content or []:
        if part.get("type") != "text":
            raise _fail("a system message holds the instruction: text only", param)
        texts.append(part.get("text") or "")
    return "".join(texts)


def conversation_item(messages: list[dict[str, Any]], param: str = "messages") -> dict[str, Any]:
    """One conversation (messages as dicts) -> the library's item {"content": parts, "instruction"?}.

    At most one system message (the instruction) and exactly one user message (the content); a last
    assistant message with no content (a generation prompt some clients add) is allowed."""
    system = [i for i, m in enumerate(messages) if m["role"] == "system"]
    user = [i for i, m in enumerate(messages) if m["role"] == "user"]
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if len(system) > 1 or (system and system[0] != 0):
        raise _fail("at most one system message, first (it is the instruction)", param)
    if len(user) != 1:
        raise _fail(f"a conversation to embed has one user message (the content), this one has {len(user)}", param)
    if assistant and (assistant != [len(messages) - 1] or messages[-1].get("content")):
        raise _fail("only an empty assistant message may follow the user message", param)
    content = messages[user[0]].get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
    item: dict[str, Any] = {"content": parts}
    if system:
        item["instruction"] = _system_text(messages[0].get("content"), f"{param}[0].content")
    return item


# score -----------------------------------------------------------------------------------------------
PAIR_FIELDS = (("queries", "documents"), ("queries", "items"), ("text_1", "text_2"), ("data_1", "data_2"))


def score_sides(body: dict[str, Any]) -> tuple[str, str, list, list]:
    """(first field, second field, first side, second side) of a score request, each side a list."""
    for first, second in PAIR_FIELDS:
        if body.get(first) is not None and body.get(second) is not None:
            a, b = body[first], body[second]
            return first, second, a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]
    raise APIError(400, "send queries and documents (or queries/items, text_1/text_2, data_1/data_2)",
                   code="invalid_request")


async def score(service: Any, body: dict[str, Any], instruction: str | None, model: str) -> dict[str, Any]:
    """vLLM's /score: one query against every document, or pairs zipped when both sides have the same length."""
    first, second, queries, documents = score_sides(body)
    if not documents:
        raise APIError(400, f"{second} is empty", param=second, code="invalid_input")
    if len(queries) not in (1, len(documents)):
        raise APIError(400, f"{first} has {len(queries)} entries and {second} {len(documents)}: send one "
                            f"{first} entry, or as many as {second}", param=first, code="invalid_request")
    pairwise = len(queries) > 1
    scored = await service.rerank_inputs(queries if pairwise else queries[0], documents, instruction,
                                         pairwise=pairwise, param=second, query_param=first)
    return {"id": f"score-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()), "model": model,
            "data": [{"index": i, "object": "score", "score": s} for i, s in enumerate(scored.scores)],
            "usage": {"prompt_tokens": scored.tokens, "total_tokens": scored.tokens, "completion_tokens": 0}}

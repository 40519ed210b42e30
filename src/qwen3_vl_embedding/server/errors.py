"""Errors in each ecosystem's shape, and the status of each library error.

OpenAI's `{"error": {"message", "type", "param", "code"}}` by default; Cohere's `{"message"}` on the Cohere
embed routes; TEI's `{"error", "error_type"}` on TEI's routes; the rerank routes that Cohere, Jina and vLLM
clients share answer OpenAI's shape with Cohere's `message` beside it, so every client finds its message.
"""
from __future__ import annotations

from typing import Any

from ..errors import InputError, LimitError, MediaError, MediaPolicyError

BYTE_LIMITS = frozenset({"max_bytes", "max_image_bytes", "max_video_bytes", "max_body_bytes"})


class APIError(Exception):
    """An error answered to the client: status, OpenAI error fields, extra headers."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def param_of(prefix: str, index: int | None, field: str | None) -> str:
    """Where in the request body an item error lies: input[2].image, documents[0].content[1], query.video."""
    if field and field.startswith("query"):  # a reranker's query error, whatever the document
        return field
    where = prefix if index is None else f"{prefix}[{index}]"
    return f"{where}.{field}" if field else where


def limit_error(limit: str, value: Any, message: str, param: str | None = None) -> APIError:
    """413 for a size in bytes, characters or a count that makes the body too large, 422 for other limits.
    The message names the limit and its value (once)."""
    status = 413 if limit in BYTE_LIMITS or limit in ("max_items", "max_text_chars") else 422
    named = f"{limit}={value}" in message
    return APIError(status, message if named else f"{message} (limit {limit}={value})", param=param,
                    code="limit_exceeded")


def from_input_error(e: InputError, prefix: str, index: int | None = None) -> APIError:
    """The answer to a library InputError raised for `prefix[index]` (the error's own index wins)."""
    index = e.index if e.index is not None else index
    param = param_of(prefix, index, e.field)
    where = f"{param}: " if param else ""
    if isinstance(e, LimitError):
        return limit_error(e.limit or "limit", e.value, f"{where}{e.cause}", param)
    if isinstance(e, MediaPolicyError):
        return APIError(403, f"{where}{e.cause} (this server's media policy; data URIs are always accepted)",
                        param=param, code="media_not_allowed")
    if isinstance(e, MediaError):
        return APIError(422, f"{where}{e.cause}", param=param, code="invalid_media")
    return APIError(400, f"{where}{e.cause}", param=param, code="invalid_input")


def query_error(e: InputError, param: str = "query", index: int | None = None) -> APIError:
    """The answer to an InputError of a rerank query (field "query..." or the item's own field), naming
    `param` (query, queries[2], text_1...) instead of "query"."""
    renamed = e.located()
    field = (e.field or "").removeprefix("query").lstrip(".") if (e.field or "").startswith("query") else e.field
    renamed.field, renamed.index = field or None, None
    return from_input_error(renamed, param, index)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "Item", "ContentPart", "MediaURL", "list", "dict"})


def _where(loc: tuple) -> str:
    """A pydantic location as a body path (input[0].image), without union-member tags."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in str(part) or part in _TYPE_TAGS:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


_PREFIXES = ("Value error, ", "Assertion failed, ")  # what pydantic puts before a validator's own message


def _without_prefix(message: str) -> str:
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def validation_message(errors: list[dict[str, Any]], limit: int = 3) -> tuple[str, str | None]:
    """A readable message and the first bad parameter from pydantic / FastAPI validation errors.

    For a union, the most specific errors (deepest locations) come first."""
    for err in errors:
        if err.get("type") == "json_invalid":
            return f"the body is not valid JSON: {err.get('ctx', {}).get('error', 'decode error')}", None
    seen: dict[str, str] = {}
    for err in sorted(errors, key=lambda e: -len(e.get("loc", ()))):
        where = _where(tuple(err.get("loc", ())))
        msg = _without_prefix(str(err.get("msg", "invalid")))
        seen.setdefault(f"{where}: {msg}" if where else msg, where)
    messages = list(seen)
    more = f" (and {len(messages) - limit} more)" if len(messages) > limit else ""
    first = next(iter(seen.values()), None) or None
    return "; ".join(messages[:limit]) + more, first


# error shapes ----------------------------------------------------------------------------------------
STYLES = {"/v1/rerank": "rerank", "/v2/rerank": "rerank", "/rerank": "rerank",
          "/v1/embed": "cohere", "/v2/embed": "cohere", "/embed": "tei", "/info": "tei"}
_TEI_TYPES = {401: "unauthorized", 429: "overloaded", 503: "unhealthy"}


def style_of(path: str) -> str:
    return STYLES.get(path, "openai")


def styled_body(error: APIError, style: str = "openai") -> dict[str, Any]:
    """`error` in a style's shape: openai, cohere, tei, or rerank (OpenAI's plus Cohere's `message`)."""
    if style == "cohere":
        return {"message": error.message}
    if style == "tei":
        kind = _TEI_TYPES.get(error.status, "backend" if error.status >= 500 else "validation")
        return {"error": error.message, "error_type": kind}
    body = error.body()
    if style == "rerank":
        body["message"] = error.message
    return body

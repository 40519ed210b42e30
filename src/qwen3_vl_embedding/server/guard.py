"""The ASGI layer every request passes: bearer-token auth, body-size limit, body time limit, metrics,
last-resort errors.

Auth compares the token in constant time (`hmac.compare_digest`); /health stays open. The body is
refused when its declared length exceeds the limit and counted while it streams in (chunked bodies);
a body that has not arrived `body_timeout` seconds after the headers is answered 408 (a slow client
holds no handler for longer; the headers' own timeout is the protocol's, see slow_clients.py).
Any exception the app lets through becomes a 500 in the route's error shape (errors.styled_body), logged
with its traceback on the server and never sent to the client.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from typing import Any, Callable

from starlette.exceptions import HTTPException

from .errors import APIError, limit_error, style_of, styled_body
from .metrics import Metrics

logger = logging.getLogger("qwen3_vl_embedding.server")

OPEN_PATHS = frozenset({"/health"})
RECORD_PATH = re.compile(r"^/v1/records/\d+(/file|/thumbnail)?$")
ENDPOINTS = frozenset({"/health", "/metrics", "/v1/models", "/v1/embeddings", "/v1/rerank", "/v1/search",
                       "/openapi.json", "/docs", "/redoc",
                       "/v2/rerank", "/rerank", "/v1/score", "/score", "/v1/embed", "/v2/embed", "/embed", "/info",
                       "/", "/v1/index"})


class BodyRefused(HTTPException):
    """Raised from `receive` while the body streams in; FastAPI passes HTTPExceptions through unchanged."""

    def __init__(self, error: APIError):
        error.headers.setdefault("connection", "close")  # the rest of the body is not read
        self.error = error
        super().__init__(error.status, error.message)


class BodyTooLarge(BodyRefused):
    def __init__(self, limit: int):
        super().__init__(limit_error("max_body_bytes", limit, "the request body is too large"))


class BodyTimedOut(BodyRefused):
    def __init__(self, seconds: float):
        super().__init__(APIError(408, f"the request body did not arrive within {seconds:g} s (limit body_timeout="
                                       f"{seconds:g})", code="request_timeout"))


def endpoint_label(path: str) -> str:
    """A bounded metrics label: the known route, or "other"."""
    if path in ENDPOINTS:
        return path
    record = RECORD_PATH.match(path)
    return f"/v1/records/{{id}}{record.group(1)}" if record else "other"


def state_of(scope: dict[str, Any]) -> dict[str, Any]:
    return scope.setdefault("state", {})


class Guard:
    """ASGI middleware: auth, body limit, metrics, and a clean 500 for anything unexpected."""

    def __init__(self, app, *, api_key: str | None, max_body_bytes: int, metrics: Metrics,
                 body_timeout: float | None = None, is_open: Callable[[str, str], bool] | None = None):
        self.app = app
        self.is_open = is_open  # (path, query) -> True for requests that need no API key (the page, signed links)
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.body_timeout = body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = state_of(scope)
        sent = {"status": 500, "started": False}

        async def send_tracked(message):
            if message["type"] == "http.response.start":
                sent["status"], sent["started"] = message["status"], True
            await send(message)

        received = 0
        body_done = False
        body_deadline = started + self.body_timeout if self.body_timeout else None

        async def receive_limited():
            nonlocal received, body_done
            if body_done or body_deadline is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, body_deadline - time.perf_counter()))
                except asyncio.TimeoutError:
                    raise BodyTimedOut(self.body_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
                body_done = not message.get("more_body", False)
            return message

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await self._send_error(send_tracked, refusal, state, scope)
            else:
                await self.app(scope, receive_limited, send_tracked)
        except BodyRefused as e:
            if not sent["started"]:
                await self._send_error(send_tracked, e.error, state, scope)
        except Exception:  # noqa: BLE001 - the server must answer and stay up
            logger.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not sent["started"]:
                error = APIError(500, "internal server error; see the server log", type="server_error",
                                 code="internal_error")
                await self._send_error(send_tracked, error, state, scope)
        finally:
            self.metrics.observe_request(endpoint_label(scope.get("path", "")), sent["status"],
                                         time.perf_counter() - started, state.get("error_code"))

    def _refusal(self, scope) -> APIError | None:
        headers = dict(scope.get("headers") or [])
        if self.api_key is not None and scope.get("path") not in OPEN_PATHS and not self._open(scope):
            auth = headers.get(b"authorization", b"")
            scheme, _, token = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.api_key):
                return APIError(401, "missing or wrong API key; send the header 'Authorization: Bearer <key>'",
                                type="authentication_error", code="invalid_api_key",
                                headers={"www-authenticate": "Bearer"})
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return limit_error("max_body_bytes", self.max_body_bytes,
                               f"the request body of {int(declared)} bytes is too large")
        return None

    def _open(self, scope) -> bool:
        return self.is_open is not None and self.is_open(scope.get("path", ""),
                                                         scope.get("query_string", b"").decode("latin-1"))

    @staticmethod
    async def _send_error(send, error: APIError, state: dict[str, Any], scope: dict[str, Any]) -> None:
        state["error_code"] = error.code
        body = json.dumps(styled_body(error, style_of(scope.get("path", "")))).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        if error.status in (408, 413) and "connection" not in error.headers:
            headers.append((b"connection", b"close"))  # the rest of the body is not read
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

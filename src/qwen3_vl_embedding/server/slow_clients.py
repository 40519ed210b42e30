"""Slow clients: a time limit on a request's headers, and the uvicorn settings `qvl serve` runs with.

uvicorn closes idle keep-alive connections, but once a client has sent a byte it waits for the rest
of the headers forever: a few hundred connections that send one header line a minute hold the server.
The protocol class `protocol_class` makes gives every request `header_timeout` seconds, from the
connection (or from the previous response on a kept-alive connection) to its last header line, then
answers 408 and closes (a connection that sent nothing more is closed without an answer). The body
has its own limit in the ASGI layer (guard.py, `body_timeout`), where the answer can be a JSON error.
"""
from __future__ import annotations

import asyncio
import functools
import importlib.util
from typing import Any

REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: 44\r\nconnection: close\r\n\r\nthe request headers did not arrive in time\r\n")


class _HeaderTimer:
    """Mixed into uvicorn's HTTP protocols: a timer armed while a request's headers are awaited."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _awaited_cycle: Any = None
    _begun: bool = False  # httptools: a request has begun and its headers are not complete

    def connection_made(self, transport) -> None:  # noqa: D102 - asyncio.Protocol
        super().connection_made(transport)  # type: ignore[misc]
        self._await_headers()

    def data_received(self, data: bytes) -> None:  # noqa: D102
        super().data_received(data)  # type: ignore[misc]
        if self._header_timer is not None and self.cycle is not self._awaited_cycle:  # type: ignore[attr-defined]
            self._stop_timer()  # a new request's headers are complete

    def on_response_complete(self) -> None:  # noqa: D102
        super().on_response_complete()  # type: ignore[misc]
        cycle = self.cycle  # type: ignore[attr-defined]
        if not self.transport.is_closing() and (cycle is None or cycle.response_complete):  # type: ignore[attr-defined]
            self._await_headers()  # no pipelined request started: wait for the next one

    def on_message_begin(self) -> None:  # noqa: D102 - httptools' parser callbacks
        self._begun = True
        super().on_message_begin()  # type: ignore[misc]

    def on_headers_complete(self) -> None:  # noqa: D102
        self._begun = False
        super().on_headers_complete()  # type: ignore[misc]

    def _request_begun(self) -> bool:
        """Whether part of a request (not all its headers) has arrived."""
        conn = getattr(self, "conn", None)  # h11 keeps what it could not parse yet
        return bool(conn.trailing_data[0]) if conn is not None else self._begun

    def connection_lost(self, exc) -> None:  # noqa: D102
        self._stop_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def _await_headers(self) -> None:
        self._stop_timer()
        self._awaited_cycle = self.cycle  # type: ignore[attr-defined]
        self._header_timer = asyncio.get_running_loop().call_later(self.header_timeout, self._headers_late)

    def _stop_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        transport = self.transport  # type: ignore[attr-defined]
        if not transport.is_closing() and self.cycle is self._awaited_cycle:  # type: ignore[attr-defined]
            if self._request_begun():
                transport.write(REQUEST_TIMEOUT)
            transport.close()


@functools.lru_cache(maxsize=None)
def _protocol_class(base_path: str, header_timeout: float) -> type:
    module, name = base_path.split(":")
    base = getattr(importlib.import_module(module), name)
    return type(f"HeaderTimeout{name}", (_HeaderTimer, base), {"header_timeout": header_timeout})


def protocol_class(header_timeout: float) -> type:
    """uvicorn's HTTP protocol (httptools when installed, else h11) with the header time limit."""
    if importlib.util.find_spec("httptools") is not None:
        return _protocol_class("uvicorn.protocols.http.httptools_impl:HttpToolsProtocol", header_timeout)
    return _protocol_class("uvicorn.protocols.http.h11_impl:H11Protocol", header_timeout)


def uvicorn_options(config: Any) -> dict[str, Any]:
    """Keyword arguments of `uvicorn.run` / `uvicorn.Config` for a `ServerConfig`'s slow-client limits."""
    return {"http": protocol_class(config.header_timeout), "timeout_keep_alive": config.keep_alive_timeout,
            "h11_max_incomplete_event_size": 64 * 1024}

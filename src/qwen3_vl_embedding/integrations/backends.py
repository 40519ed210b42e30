"""What the integrations embed with: the library in-process, or a `qvl serve` server over HTTP.

Both take library inputs (strings or item dicts), an instruction (None: the model's default, the one
documents are embedded with) and a Matryoshka `dim`, and return plain lists of floats in input order.
`ServerBackend` sends local image and video files (and raw bytes) as data URIs, so that a server without
`--allow-local-dir` can embed the caller's files; URLs are sent as they are.
"""
from __future__ import annotations

import asyncio
import base64
import mimetypes
import os
import threading
from typing import Any, Sequence

import httpx

from ..contracts import Embedder
from ..index.store import QUERY_INSTRUCTION

__all__ = ["QUERY_INSTRUCTION", "LocalBackend", "ServerBackend", "backend_for"]


class LocalBackend:
    """The library in-process: any `contracts.Embedder` (a `Qwen3VLEmbedder`, a `RayEmbedder`)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self._lock = threading.Lock()  # async callers run embed on threads: one call at a time on the model

    @property
    def name(self) -> str:
        return self.embedder.name

    def embed(self, inputs: Sequence[Any], instruction: str | None = None, dim: int | None = None) -> list[list[float]]:
        if not inputs:
            return []
        with self._lock:
            return self.embedder.embed(list(inputs), dim=dim, instruction=instruction).tolist()

    async def aembed(self, inputs: Sequence[Any], instruction: str | None = None,
                     dim: int | None = None) -> list[list[float]]:
        return await asyncio.to_thread(self.embed, inputs, instruction, dim)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _portable(source: Any, kind: str) -> Any:
    """A local file or bytes as a data URI; anything else as it is."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _data_uri(bytes(source), "image/png" if kind == "image" else "video/mp4")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        path = path[len("file://"):] if path.startswith("file://") else path
        if "://" not in path and not path.startswith("data:") and os.path.isfile(path):
            mime = mimetypes.guess_type(path)[0] or ("image/png" if kind == "image" else "video/mp4")
            with open(path, "rb") as f:
                return _data_uri(f.read(), mime)
    return source


def _is_image(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True  # bytes in a video's list are frames
    return isinstance(value, (str, os.PathLike)) and (
        os.fspath(value).startswith("data:image/") or
        (mimetypes.guess_type(os.fspath(value))[0] or "").startswith("image/"))


def _media(value: Any, kind: str) -> Any:
    if isinstance(value, (list, tuple)):  # several images, a video's frames, or several videos
        return [_media(v, "image" if kind == "video" and _is_image(v) else kind) for v in value]
    return _portable(value, kind)


def portable_item(item: Any) -> Any:
    """An input whose local media files and bytes are sent along as data URIs, in both item forms."""
    if not isinstance(item, dict):
        return item
    out = {key: _media(value, key) if key in ("image", "video") else value for key, value in item.items()}
    if isinstance(out.get("content"), list):
        out["content"] = [{k: _media(v, k) if k in ("image", "video") else v for k, v in part.items()}
                          if isinstance(part, dict) else part for part in out["content"]]
    return out


class ServerBackend:
    """A `qvl serve` server: POST /v1/embeddings with items, `batch_size` inputs per request."""

    def __init__(self, base_url: str, api_key: str | None = None, model: str | None = None,
                 timeout: float = 120.0, batch_size: int = 32):
        url = base_url.rstrip("/")
        self.base_url = url[: -len("/v1")] if url.endswith("/v1") else url
        self.model = model
        self.timeout = timeout
        self.batch_size = batch_size
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @property
    def name(self) -> str:
        return self.model or self.base_url

    def _bodies(self, inputs: Sequence[Any], instruction: str | None, dim: int | None):
        items = [portable_item(x) for x in inputs]
        for start in range(0, len(items), self.batch_size):
            body: dict[str, Any] = {"input": items[start:start + self.batch_size], "encoding_format": "float"}
            for key, value in (("instruction", instruction), ("dimensions", dim), ("model", self.model)):
                if value is not None:
                    body[key] = value
            yield body

    @staticmethod
    def _vectors(response: httpx.Response) -> list[list[float]]:
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except Exception:  # noqa: BLE001 - not this server's error shape
                message = response.text[:500]
            raise RuntimeError(f"the embedding server answered {response.status_code}: {message}")
        data = sorted(response.json()["data"], key=lambda d: d["index"])
        return [d["embedding"] for d in data]

    def embed(self, inputs: Sequence[Any], instruction: str | None = None, dim: int | None = None) -> list[list[float]]:
        out: list[list[float]] = []
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=self.timeout) as client:
            for body in self._bodies(inputs, instruction, dim):
                out += self._vectors(client.post("/v1/embeddings", json=body))
        return out

    async def aembed(self, inputs: Sequence[Any], instruction: str | None = None,
                     dim: int | None = None) -> list[list[float]]:
        out: list[list[float]] = []
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=self.timeout) as client:
            for body in self._bodies(inputs, instruction, dim):
                out += self._vectors(await client.post("/v1/embeddings", json=body))
        return out


def backend_for(model: Any = None, base_url: str | None = None, api_key: str | None = None, *,
                timeout: float = 120.0, batch_size: int = 32, **model_options: Any) -> LocalBackend | ServerBackend:
    """A server backend when `base_url` is given (`model`: the name sent along), else the library in-process:
    `model` an `Embedder` already built, or a hub id / local folder loaded as a `Qwen3VLEmbedder`."""
    if base_url is not None:
        if model is not None and not isinstance(model, str):
            raise ValueError("with base_url, model is the name sent to the server (a string), not an embedder")
        return ServerBackend(base_url, api_key, model, timeout, batch_size)
    if model is None or isinstance(model, (str, os.PathLike)):
        from ..embedder import Qwen3VLEmbedder
        from ..constants import EMBEDDING_2B

        return LocalBackend(Qwen3VLEmbedder(os.fspath(model) if model is not None else EMBEDDING_2B, **model_options))
    if not isinstance(model, Embedder):
        raise TypeError(f"model must be a hub id, a local folder or an Embedder (Qwen3VLEmbedder), got "
                        f"{type(model).__name__}")
    return LocalBackend(model)

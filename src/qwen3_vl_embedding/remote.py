"""RemoteEmbedder: a `contracts.Embedder` whose vectors come from a running `qvl serve` over HTTP.

`qvl search --server URL` and `qvl index --server URL` use it, so that a laptop searches and indexes
its own files while another machine (a GPU) runs the model. Files are sent as data, never as paths:
images as data URIs of the file's bytes, PDF pages rendered here (within the server model's pixel
budget) and sent as PNG data URIs, video clips as the file's bytes with `video_start`/`video_end`.
The server's vectors are the library's (one head), so an index built through a server holds the same
vectors as one built locally.

What the embedder is (name, dim, document instruction, pixel budget) and the server's limits come
from GET /v1/models; the tokenizer that cuts texts into chunks from GET /v1/tokenizer, fetched only
when a text must be cut. Requests stay under the server's `max_items` and body size; a file over its
media size limit fails alone, with the option that raises the limit. Up to `concurrency` requests
are in flight at once, so the server can merge them into full batches.
"""
from __future__ import annotations

import base64
import io
import mimetypes
import os
import re
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from .errors import InputError, LimitError, Qwen3VLError

if TYPE_CHECKING:
    from .batching import Failure, RunStats

DEFAULT_TIMEOUT = 600.0
_PARAM = re.compile(r"input\[(\d+)\](?:\.(.*))?")


class RemoteError(Qwen3VLError):
    """The server cannot be reached, refuses this client, or failed."""


def _media_bytes(ref: Any) -> tuple[bytes, str]:
    """(bytes, mime type) of a local media reference: a file path, a PIL image, or a callable returning one
    (a PDF page rendered on demand). Images that are not files are sent as PNG."""
    if isinstance(ref, (str, os.PathLike)):
        path = os.fspath(ref)
        with open(path, "rb") as f:
            data = f.read()
        return data, mimetypes.guess_type(path)[0] or "application/octet-stream"
    image = ref() if callable(ref) else ref
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"


def _is_reference(value: Any) -> bool:
    """A string that the server reads as it is: a URL or a data URI."""
    return isinstance(value, str) and (value.startswith("data:") or "://" in value[:16])


class _Wire:
    """One input as the server's JSON: media turned into data URIs; its size, and why it cannot be sent."""

    def __init__(self, item: Any, max_media_bytes: int):
        self.problem: tuple[str | None, str] | None = None  # (field, cause)
        self.size = 0
        self.max_media_bytes = max_media_bytes
        self.body = self._convert(item, None)

    def _media(self, ref: Any, field: str) -> Any:
        if _is_reference(ref) or self.problem is not None:
            return ref
        try:
            data, mime = _media_bytes(ref)
        except OSError as e:
            self.problem = (field, f"cannot read {ref}: {e.strerror or e}")
            return None
        except Exception as e:  # a PDF page that cannot be rendered, an image that cannot be encoded
            self.problem = (field, f"cannot read: {e}")
            return None
        if len(data) > self.max_media_bytes:
            self.problem = (field, f"{len(data) / 2**20:.1f} MB, over the server's media size limit of "
                                   f"{self.max_media_bytes / 2**20:.1f} MB (qvl serve --max-media-mb raises it)")
            return None
        uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
        self.size += len(uri)
        return uri

    def _convert(self, value: Any, field: str | None) -> Any:
        if isinstance(value, str):
            self.size += len(value.encode("utf-8", "surrogatepass"))
            return value
        if isinstance(value, dict):
            out = {}
            for key, v in value.items():
                where = f"{field}.{key}" if field else key
                if key in ("image", "video") and not isinstance(v, list):
                    out[key] = self._media(v, where)
                elif key in ("image", "video"):  # a list of images, or a video as a list of frames
                    out[key] = [self._media(x, f"{where}[{i}]") for i, x in enumerate(v)]
                else:
                    out[key] = self._convert(v, where)
            return out
        if isinstance(value, (list, tuple)):
            return [self._convert(v, f"{field}[{i}]" if field else f"[{i}]") for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self._media(value, field or "image")  # a bare image (PIL, or a lazy page)


class RemoteEmbedder:
    """See the module docstring. `url`: the server's base URL (http://host:8000, with or without /v1).
    `api_key`: the server's --api-key (default: QVL_API_KEY)."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 concurrency: int = 4, client: Any = None):
        import httpx

        base = url.rstrip("/")
        if "://" not in base:
            base = "http://" + base
        self.url = base[:-3] if base.endswith("/v1") else base
        key = api_key if api_key is not None else os.environ.get("QVL_API_KEY") or None
        self._client = client or httpx.Client(timeout=timeout, trust_env=False,
                                              headers={"Authorization": f"Bearer {key}"} if key else {})
        self.concurrency = max(1, concurrency)
        self._tokenizer = None
        card = self._embedding_card(self._get("/v1/models").json())
        self._name = str(card["id"])
        self._dim = int(card["dim"])
        self._instruction = str(card["default_instruction"])
        self._max_pixels = int(card["max_pixels"])
        self._quantize = card.get("quantize")  # None from servers that predate it: the released weights
        limits = card.get("limits") or {}
        self.max_items = int(limits.get("max_items", 64))
        self.max_body_bytes = int(limits.get("max_body_bytes", 32 * 2**20))
        self.max_media_bytes = int(limits.get("max_media_bytes", 32 * 2**20))

    def _embedding_card(self, models: dict) -> dict:
        cards = [m for m in models.get("data", []) if m.get("task") == "embedding"]
        if not cards:
            raise RemoteError(f"the server at {self.url} has no embedding model; start it with qvl serve --model ...")
        if cards[0].get("dim") is None:
            raise RemoteError(f"the server at {self.url} does not say its embedder's size: it is not a qvl serve of "
                              f"this version; upgrade it")
        return cards[0]

    # HTTP --------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any):
        import httpx

        try:
            response = self._client.request(method, self.url + path, **kwargs)
        except httpx.TimeoutException:
            raise RemoteError(f"the server at {self.url} did not answer in time") from None
        except httpx.HTTPError as e:
            raise RemoteError(f"cannot reach the server at {self.url} ({type(e).__name__}: {e}); start it with "
                              f"`qvl serve --model ...` on that machine, or pass another --server") from None
        if response.status_code == 401:
            raise RemoteError(f"the server at {self.url} wants an API key: set QVL_API_KEY to its --api-key")
        if response.status_code == 404 and path != "/v1/embeddings":
            raise RemoteError(f"the server at {self.url} has no {path}: is it a qvl serve of this version?")
        return response

    def _get(self, path: str):
        response = self._request("GET", path)
        if response.status_code != 200:
            raise RemoteError(f"the server at {self.url} answered {path} with HTTP {response.status_code}: "
                              f"{_message(response)}")
        return response

    # the Embedder contract ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def default_instruction(self) -> str:
        return self._instruction

    @property
    def max_pixels(self) -> int:
        return self._max_pixels

    @property
    def quantize(self) -> str | None:
        """The server model's weights: None (as released) or "int8"."""
        return self._quantize

    @property
    def text_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self._get("/v1/tokenizer").text)
        return self._tokenizer

    def embed(self, inputs: Iterable[Any], *, dim: int | None = None, precision: str = "float32",
              instruction: str | None = None, on_error: str = "raise", **options: Any) -> Any:
        """Vectors (n, dim) in input order (float32 only); with on_error="skip" an EmbedResult-like
        (embeddings, failures) tuple, failed rows NaN."""
        if precision != "float32":
            raise ValueError("a RemoteEmbedder returns float32 vectors; quantise them with qwen3_vl_embedding.quantize")
        stats = _Stats()
        rows = dict(self.iter_embed(inputs, dim=dim, instruction=instruction, on_error=on_error, stats=stats))
        n = max([*rows, *(f.index for f in stats.failures)], default=-1) + 1
        out = np.full((n, dim or self.dim), np.nan, np.float32)
        for pos, vec in rows.items():
            out[pos] = vec
        return (out, stats.failures) if on_error == "skip" else out

    def iter_embed(self, inputs: Iterable[Any], *, dim: int | None = None, instruction: str | None = None,
                   on_error: str = "raise", stats: RunStats | None = None, batch_size: int | None = None,
                   **options: Any) -> Iterator[tuple[int, np.ndarray]]:
        """(input position, vector) as the server's answers arrive. Other options (show_progress,
        max_batch_tokens, ...) are the server's business and ignored here."""
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        stats = stats if stats is not None else _Stats()
        started = time.perf_counter()
        per_request = max(1, min(self.max_items, batch_size or self.max_items))
        budget = int(self.max_body_bytes * 0.9) - 1024
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="qvl-remote") as pool:
            running: set[Future] = set()

            def finished(drain: bool) -> Iterator[tuple[int, np.ndarray]]:
                """Results of the requests done: all of them when `drain`, else until one more may be sent."""
                while running and (drain or len(running) >= self.concurrency):
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.discard(future)
                        vectors, failures = future.result()
                        for failure in failures:
                            self._fail(stats, failure, on_error)
                        stats.items += len(vectors)
                        yield from vectors

            batch: list[tuple[int, dict | str]] = []
            size = 0
            for pos, item in enumerate(inputs):
                wire = _Wire(item, self.max_media_bytes)
                if wire.problem is None and wire.size > budget:
                    wire.problem = (None, f"{wire.size / 2**20:.1f} MB as JSON, over the server's request size limit "
                                          f"(qvl serve --max-body-mb raises it)")
                if wire.problem is not None:
                    field, cause = wire.problem
                    self._fail(stats, _failure(pos, field, cause, LimitError(cause, index=pos, field=field)), on_error)
                    continue
                if batch and (len(batch) >= per_request or size + wire.size > budget):
                    running.add(pool.submit(self._send, batch, dim, instruction))
                    batch, size = [], 0
                    yield from finished(False)
                batch.append((pos, wire.body))
                size += wire.size
            if batch:
                running.add(pool.submit(self._send, batch, dim, instruction))
            yield from finished(True)
        stats.seconds += time.perf_counter() - started

    @staticmethod
    def _fail(stats: RunStats, failure: Failure, on_error: str) -> None:
        if on_error == "raise":
            raise failure.error or InputError(failure.cause, index=failure.index, field=failure.field)
        stats.failed += 1
        stats.failures.append(failure)

    def _send(self, batch: list[tuple[int, Any]], dim: int | None, instruction: str | None
              ) -> tuple[list[tuple[int, np.ndarray]], list[Failure]]:
        """POST one request; an input the server refuses fails alone and the others are sent again."""
        failures: list[Failure] = []
        while batch:
            body: dict[str, Any] = {"input": [b for _, b in batch], "encoding_format": "base64"}
            if dim is not None:
                body["dimensions"] = dim
            if instruction is not None:
                body["instruction"] = instruction
            response = self._request("POST", "/v1/embeddings", json=body)
            if response.status_code == 200:
                data = sorted(response.json()["data"], key=lambda d: d["index"])
                return [(pos, np.frombuffer(base64.b64decode(d["embedding"]), "<f4").copy())
                        for (pos, _), d in zip(batch, data)], failures
            if response.status_code == 429:
                time.sleep(float(response.headers.get("Retry-After", "1") or 1))
                continue
            error = _error(response)
            found = _PARAM.fullmatch(error.get("param") or "")
            if response.status_code == 413 and found is None and len(batch) > 1:
                half = len(batch) // 2  # the body is over a limit this client did not know: split it
                first, more = self._send(batch[:half], dim, instruction)
                second, rest = self._send(batch[half:], dim, instruction)
                return first + second, failures + more + rest
            if found is None or not 400 <= response.status_code < 500:
                raise RemoteError(f"the server at {self.url} answered HTTP {response.status_code}: "
                                  f"{error.get('message') or response.text[:300]}")
            i = int(found.group(1))
            pos = batch[i][0]
            cause = error.get("message", "refused by the server")
            cause = cause.split(": ", 1)[1] if cause.startswith("input[") and ": " in cause else cause
            kind = LimitError if error.get("code") == "limit_exceeded" else InputError
            failures.append(_failure(pos, found.group(2), cause, kind(cause, index=pos, field=found.group(2))))
            batch = batch[:i] + batch[i + 1:]
        return [], failures

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RemoteEmbedder({self.url!r}, model={self._name!r}, dim={self._dim})"


class _Stats:
    """What `iter_embed` counts when the caller passes no RunStats (the same fields it writes)."""

    def __init__(self):
        self.items = self.failed = 0
        self.seconds = 0.0
        self.failures: list = []


def _failure(index: int, field: str | None, cause: str, error: InputError) -> "Failure":
    """A `batching.Failure`, imported only when an input fails: batching imports torch, which a client of a
    server does not otherwise need (`qvl search --server` starts in a fraction of the time)."""
    from .batching import Failure

    return Failure(index, field, cause, error)


def _error(response: Any) -> dict:
    try:
        error = response.json().get("error")
        return error if isinstance(error, dict) else {}
    except ValueError:
        return {}


def _message(response: Any) -> str:
    return _error(response).get("message") or response.text[:300]

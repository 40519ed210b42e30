"""Embeddings cached on disk per (model, dim, precision, instruction, item), so a repeated evaluation is fast.

Layout: ``<directory>/<namespace>/`` per (model fingerprint, dim, precision), holding ``meta.json``
(readable description) and append-only ``chunk-*.npz`` files of (keys, vectors). A key is the
SHA-256 of the effective instruction and the item's digest; media files are digested by content, so
editing an image invalidates its entry, while URLs are digested as written. The model fingerprint
covers config.json, the size and first and last MiB of each weight file, the vision settings,
fps, max_frames, max_length and dtype. Chunks are written to a temporary name and renamed, so an
interrupted run never leaves a half-written chunk.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .datasets import MEDIA_KEYS

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "qvl", "embeddings")
MIB = 1 << 20


def default_cache_dir() -> str:
    """QVL_CACHE_DIR, or ~/.cache/qvl/embeddings."""
    return os.path.expanduser(os.environ.get("QVL_CACHE_DIR") or DEFAULT_CACHE_DIR)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_head_tail(path: str) -> bytes:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(MIB)
        if size > 2 * MIB:
            f.seek(-MIB, os.SEEK_END)
            head += f.read(MIB)
    return str(size).encode() + head


def model_fingerprint(embedder: Any) -> str:
    """A digest of what decides an embedder's vectors: weights, config, media settings, dtype."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(embedder.model_path)):
        path = os.path.join(embedder.model_path, name)
        if name == "config.json":
            with open(path, "rb") as f:
                h.update(f.read())
        elif name.endswith((".safetensors", ".bin")):
            h.update(name.encode() + _file_head_tail(path))
    settings = [repr(embedder.settings.vision), embedder.fps, embedder.max_frames, embedder.max_length,
                str(embedder.runtime.dtype)]
    h.update(json.dumps(settings, default=str).encode())
    return h.hexdigest()


class ItemDigester:
    """Stable digests of input items; local media files by content (memoised by path, size and mtime)."""

    def __init__(self):
        self._files: dict[tuple[str, int, int], str] = {}

    def file(self, path: str) -> str:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
        if key not in self._files:
            with open(path, "rb") as f:
                self._files[key] = "file:" + hashlib.file_digest(f, "sha256").hexdigest()
        return self._files[key]

    def media(self, value: Any) -> Any:
        from PIL import Image

        if isinstance(value, (list, tuple)):
            return [self.media(v) for v in value]
        if isinstance(value, Mapping):  # {"url": ...} as in image_url parts
            return {k: self.media(v) for k, v in sorted(value.items())}
        if isinstance(value, (bytes, bytearray, memoryview)):
            return "bytes:" + _sha(bytes(value))
        if isinstance(value, Image.Image):
            return "pil:" + _sha(f"{value.mode}{value.size}".encode() + value.tobytes())
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, str):
            path = value[7:] if value.startswith("file://") else value
            if "://" not in path and not path.startswith("data:") and os.path.isfile(path):
                return self.file(path)
            return "ref:" + (_sha(value.encode()) if len(value) > 512 else value)
        return value

    def canonical(self, item: Any) -> Any:
        if isinstance(item, Mapping):
            out = {}
            for key in sorted(item):
                value = item[key]
                if key in MEDIA_KEYS:
                    out[key] = self.media(value)
                elif key == "content" and isinstance(value, list):
                    out[key] = [self.canonical(part) for part in value]
                else:
                    out[key] = value
            return out
        if isinstance(item, (str, int, float, bool)) or item is None:
            return item
        return self.media(item)

    def digest(self, item: Any) -> str:
        return _sha(json.dumps(self.canonical(item), sort_keys=True, default=str).encode())


class EmbeddingCache:
    """Vectors by key inside namespaces, on disk; counts hits and misses of the last `embed` call."""

    def __init__(self, directory: str | None = None):
        self.directory = os.path.expanduser(directory or default_cache_dir())
        self.digester = ItemDigester()
        self._loaded: dict[str, dict[str, np.ndarray]] = {}
        self._fingerprints: dict[int, str] = {}
        self.hits = 0
        self.misses = 0

    def namespace(self, embedder: Any, dim: int, precision: str) -> str:
        """The folder name of (model, dim, precision); int8/uint8 also key on the calibration ranges."""
        fp = self._fingerprints.get(id(embedder))
        if fp is None:
            fp = self._fingerprints[id(embedder)] = model_fingerprint(embedder)
        parts = [fp, str(dim), precision]
        if precision in ("int8", "uint8") and embedder.quant_ranges is not None:
            parts.append(_sha(embedder.quant_ranges.to_array().tobytes()))
        name = _sha("|".join(parts).encode())[:32]
        folder = os.path.join(self.directory, name)
        if not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
            meta = {"model": embedder.name, "dim": dim, "precision": precision, "fingerprint": fp}
            with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=2)
        return name

    def _entries(self, namespace: str) -> dict[str, np.ndarray]:
        if namespace not in self._loaded:
            entries: dict[str, np.ndarray] = {}
            folder = os.path.join(self.directory, namespace)
            for name in sorted(os.listdir(folder)):
                if name.startswith("chunk-") and name.endswith(".npz"):
                    with np.load(os.path.join(folder, name), allow_pickle=False) as data:
                        entries.update(zip(data["keys"].tolist(), data["vectors"]))
            self._loaded[namespace] = entries
        return self._loaded[namespace]

    def get(self, namespace: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        entries = self._entries(namespace)
        return {k: entries[k] for k in keys if k in entries}

    def put(self, namespace: str, keys: list[str], vectors: np.ndarray) -> None:
        if not keys:
            return
        folder = os.path.join(self.directory, namespace)
        name = f"chunk-{uuid.uuid4().hex}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.asarray(keys), vectors=np.asarray(vectors))
        tmp = os.path.join(folder, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, os.path.join(folder, name))
        self._entries(namespace).update(zip(keys, np.asarray(vectors)))

    def key(self, item: Any, instruction: str) -> str:
        own = item.get("instruction") if isinstance(item, Mapping) else None
        return _sha(json.dumps([own or instruction, self.digester.digest(item)]).encode())

    def embed(self, embedder: Any, items: list[Any], *, instruction: str | None = None, dim: int | None = None,
              precision: str = "float32", show_progress: bool | None = None) -> np.ndarray:
        """`embedder.embed(items, instruction=, dim=, precision=)`, computing only the items not cached yet."""
        dim = dim or embedder.dim
        effective = instruction or embedder.default_instruction
        namespace = self.namespace(embedder, dim, precision)
        keys = [self.key(item, effective) for item in items]
        found = self.get(namespace, keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        missing_keys = list(dict.fromkeys(keys[i] for i in todo))
        self.hits, self.misses = len(items) - len(todo), len(missing_keys)
        if missing_keys:
            first: dict[str, int] = {}
            for i in todo:
                first.setdefault(keys[i], i)
            new = embedder.embed([items[first[k]] for k in missing_keys], instruction=instruction, dim=dim,
                                 precision=precision, show_progress=show_progress)
            self.put(namespace, missing_keys, new)
            found.update(zip(missing_keys, new))
        if not items:
            return np.empty((0, dim), np.float32)
        return np.stack([found[k] for k in keys])


def embed_maybe_cached(embedder: Any, items: list[Any], cache: EmbeddingCache | None, **kwargs: Any) -> np.ndarray:
    """Embed through `cache` when given, else directly with the embedder."""
    if cache is not None:
        return cache.embed(embedder, items, **kwargs)
    if not items:
        return np.empty((0, kwargs.get("dim") or embedder.dim), np.float32)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return embedder.embed(items, **kwargs)

"""tiktoken's cl100k_base encoding without a download: llama-index-core ships the file under tiktoken's
cache name (the sha1 of its download address), so a folder holding a copy of it is a cache tiktoken reads
as it is. `offline_cl100k` points TIKTOKEN_CACHE_DIR there and makes any download attempt an error."""
from __future__ import annotations

import importlib.util
import os
import shutil


def shipped_cache_dir() -> str:
    """The folder llama-index-core ships tiktoken's cached files in (found without importing llama-index)."""
    spec = importlib.util.find_spec("llama_index.core")
    assert spec is not None and spec.submodule_search_locations, "llama-index-core is a test dependency"
    folder = os.path.join(list(spec.submodule_search_locations)[0], "_static", "tiktoken_cache")
    assert os.path.isdir(folder) and os.listdir(folder), folder
    return folder


def offline_cl100k(folder: str, monkeypatch) -> None:
    """Copy the shipped cache into `folder`, point tiktoken at it, refuse downloads, forget a loaded encoding."""
    import tiktoken.load

    from qwen3_vl_embedding.server import token_ids

    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(shipped_cache_dir()):
        shutil.copy(os.path.join(shipped_cache_dir(), name), os.path.join(folder, name))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", folder)

    def no_download(blobpath: str) -> bytes:
        raise AssertionError(f"a test tried to download {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_download)
    token_ids.reset()

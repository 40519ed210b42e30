"""Every vector, in-process or from the server, goes through the embedder's one head (`Qwen3VLEmbedder.head`)."""
from __future__ import annotations

import httpx
import numpy as np

from server_fixtures import cached_models


def test_server_and_embed_share_the_embedders_head(tiny_model_dir, serve, monkeypatch):
    from qwen3_vl_embedding.server import ServerConfig

    config = ServerConfig()
    embedder, _ = cached_models(tiny_model_dir, None, config.media_policy())
    texts = ["a red kite over the harbour", "minutes of the budget meeting"]
    plain = embedder.embed(texts, dim=None)
    original = embedder.head
    calls = []

    def flipped(hidden, dim=None, normalize=True):
        calls.append(dim)
        return -original(hidden, dim, normalize)  # a head no copy elsewhere could reproduce by accident

    monkeypatch.setattr(embedder, "head", flipped)
    with serve(config, embedder=embedder) as server:
        body = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts}, timeout=60,
                          trust_env=False).json()
    served = np.array([d["embedding"] for d in body["data"]], np.float32)
    in_process = embedder.embed(texts, dim=None)
    assert calls and set(calls) == {embedder.dim}  # the server called it, and so did embed()
    np.testing.assert_allclose(in_process, -plain, atol=1e-6)
    np.testing.assert_allclose(served, in_process, atol=1e-5)

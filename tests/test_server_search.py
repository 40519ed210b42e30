"""POST /v1/search over an index built by `qvl index`, against a real server on 127.0.0.1.

Results are compared with the index package's own search and rerank on the same models."""
from __future__ import annotations

import os

import httpx
import numpy as np
import pytest

from server_fixtures import data_uri, png_bytes

TEXTS = {"cats.txt": "Cats sleep most of the day and purr when content.",
         "market.txt": "The stock market fell sharply on Tuesday after the report.",
         "beach.txt": "A dog runs along the beach at sunset."}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, tiny_model_dir, media):
    from qwen3_vl_embedding.cli import main

    root = tmp_path_factory.mktemp("server-corpus")
    for name, text in TEXTS.items():
        (root / name).write_text(text)
    for name in ("scene.jpg", "noise.png"):
        with open(media[name], "rb") as src:
            (root / name).write_bytes(src.read())
    db = str(tmp_path_factory.mktemp("server-index") / "db")
    assert main(["index", str(root), "--db", db, "--model", tiny_model_dir, "-q", "--json"]) == 0
    return db


@pytest.fixture(scope="module")
def server(serve, index_dir, tiny_model_dir, tiny_untied_dir):
    """Default settings, both models, the index."""
    with serve(models=(tiny_model_dir, tiny_untied_dir), index=index_dir) as running:
        yield running


def search(server, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/search", json=body, timeout=60, trust_env=False)


def library_hits(index_dir, embedder, text, k, reranker=None, **filters):
    from qwen3_vl_embedding.index import open_store, parse_filters
    from qwen3_vl_embedding.index import retrieval as searching

    query = searching.SearchQuery(text)
    specs = [f"{key}={value}" for key, value in filters.items()]
    with open_store(index_dir) as store:
        hits = searching.search(store, embedder, query, k if reranker is None else 50, parse_filters(specs))
    if reranker is not None:
        hits, _ = searching.rerank(reranker, query, hits, k)
    return hits


def test_search_equals_the_index_package(server, index_dir, embedder):
    r = search(server, query="sleepy cats", k=3)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    want = library_hits(index_dir, embedder, "sleepy cats", 3)
    assert [h["id"] for h in results] == [h.record.id for h in want]
    np.testing.assert_allclose([h["score"] for h in results], [h.score for h in want], atol=1e-4)
    assert r.json()["usage"]["total_tokens"] > 0


def test_filters_and_multimodal_queries(server):
    r = search(server, query={"image": data_uri(png_bytes(48, 48, 3))}, k=5, filters={"modality": ["image"]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert {h["modality"] for h in results} == {"image"} and len(results) == 2
    glob = search(server, query="text", k=5, filters={"path": ["*/market.txt"]}).json()["results"]
    assert [os.path.basename(h["path"]) for h in glob] == ["market.txt"]
    assert search(server, query="x", filters={"modality": ["audio"]}).status_code == 400
    assert search(server, query={"image": "/etc/hostname"}).status_code == 403  # the query is under the policy


def test_rerank_equals_the_index_package(server, index_dir, embedder, reranker):
    r = search(server, query="a dog on the beach", k=4, rerank=True)
    assert r.status_code == 200, r.text
    body = r.json()
    want = library_hits(index_dir, embedder, "a dog on the beach", 4, reranker=reranker)
    assert [h["id"] for h in body["results"]] == [h.record.id for h in want]
    np.testing.assert_allclose([h["score"] for h in body["results"]], [h.score for h in want], atol=1e-4)
    assert all(h["similarity"] is not None for h in body["results"]) and body["not_reranked"] == []


def test_limits_and_servers_without_an_index(server, serve, tiny_model_dir):
    assert search(server, query="x", k=10_000).status_code == 413
    with serve(models=(tiny_model_dir, None)) as bare:
        r = search(bare, query="x")
        assert r.status_code == 404 and r.json()["error"]["code"] == "index_not_loaded"

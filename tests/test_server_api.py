"""The server's API against a real uvicorn server on 127.0.0.1: the openai client, rerank, models, metrics, auth.

Vectors and scores are compared with the library's own methods on the same model (within 1e-4)."""
from __future__ import annotations

import base64
import os

import httpx
import numpy as np
import pytest

from media_factory import write_mp4
from server_fixtures import API_KEY, data_uri, png_bytes

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def lib(main_server):
    """The server's own embedder and reranker, called through the library's methods."""
    service = main_server.app.state.service
    return service.embedder, service.reranker


@pytest.fixture(scope="module")
def client(main_server):
    import openai

    return openai.OpenAI(base_url=f"{main_server.url}/v1", api_key=API_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def http(main_server):
    with httpx.Client(base_url=main_server.url, headers=AUTH, timeout=60, trust_env=False) as c:
        yield c


@pytest.fixture(scope="module")
def clip_uri(tmp_path_factory):
    path = write_mp4(str(tmp_path_factory.mktemp("server-clip") / "clip.mp4"), 1, fps=4, size=(64, 48))
    with open(path, "rb") as f:
        return data_uri(f.read(), "video/mp4")


def vectors(response) -> np.ndarray:
    return np.array([d.embedding for d in sorted(response.data, key=lambda d: d.index)], dtype=np.float32)


def test_openai_client_text_equals_library(client, lib):
    embedder, _ = lib
    texts = ["a cat on a mat", "the stock market fell", "x"]
    response = client.embeddings.create(model="qvl-test-embedding", input=texts)  # the client asks for base64
    got = vectors(response)
    assert got.shape == (3, embedder.dim)
    np.testing.assert_allclose(got, embedder.embed(texts), atol=1e-4)
    assert response.model == "qvl-test-embedding"
    real = sum(embedder.count_tokens(t) for t in texts)
    assert response.usage.prompt_tokens == response.usage.total_tokens == real


def test_float_and_base64_agree_and_base64_is_little_endian_float32(http, lib):
    embedder, _ = lib
    body = {"input": ["one", "two"], "dimensions": 128}
    floats = http.post("/v1/embeddings", json=body).json()
    b64 = http.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    for f, b in zip(floats["data"], b64["data"]):
        decoded = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        np.testing.assert_array_equal(decoded, np.asarray(f["embedding"], np.float32))
    np.testing.assert_allclose(np.array([d["embedding"] for d in floats["data"]]),
                               embedder.embed(["one", "two"], dim=128), atol=1e-4)


def test_dimensions(client, lib):
    embedder, _ = lib
    response = client.embeddings.create(model="m", input=["matryoshka"], dimensions=64, encoding_format="float")
    got = vectors(response)
    assert got.shape == (1, 64)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, embedder.embed(["matryoshka"], dim=64), atol=1e-4)
    import openai

    for bad in (32, embedder.dim + 1, 0):
        with pytest.raises(openai.BadRequestError) as info:
            client.embeddings.create(model="m", input=["x"], dimensions=bad)
        assert info.value.status_code == 400 and info.value.body["param"] == "dimensions", bad


def test_multimodal_items_as_the_input_list(client, lib, media, clip_uri):
    embedder, _ = lib
    image = data_uri(png_bytes(80, 60, 1))
    frames = [data_uri(png_bytes(48, 48, s)) for s in range(4)]
    items = [
        {"text": "a picture"},
        {"image": image},
        {"text": "what is this?", "image": image, "instruction": "Find the matching photo."},
        {"video": clip_uri},
        {"video": frames, "fps": 2.0},
        {"content": [{"type": "text", "text": "in order"}, {"type": "image_url", "image_url": {"url": image}}]},
    ]
    response = client.embeddings.create(model="m", input=items, encoding_format="float")
    np.testing.assert_allclose(vectors(response), embedder.embed(items), atol=1e-4)
    assert response.usage.prompt_tokens == sum(embedder.count_tokens(it) for it in items)


def test_multimodal_and_instruction_through_extra_body(client, lib):
    embedder, _ = lib
    items = [{"image": data_uri(png_bytes(40, 40, 5))}, "plain text", {"text": "own", "instruction": "Own task."}]
    response = client.embeddings.create(model="m", input="ignored", extra_body={
        "input": items, "instruction": "Retrieve images for the query."})
    want = embedder.embed(items, instruction="Retrieve images for the query.")
    np.testing.assert_allclose(vectors(response), want, atol=1e-4)
    # the item's own instruction wins over the request's
    own = embedder.embed([{"text": "own", "instruction": "Own task."}])
    np.testing.assert_allclose(vectors(response)[2], own[0], atol=1e-4)
    assert not np.allclose(vectors(response)[1], embedder.embed(["plain text"])[0], atol=1e-3)


def test_single_string_input(http, lib):
    embedder, _ = lib
    r = http.post("/v1/embeddings", json={"input": "just one"})
    assert r.status_code == 200 and len(r.json()["data"]) == 1
    np.testing.assert_allclose(r.json()["data"][0]["embedding"], embedder.embed(["just one"])[0], atol=1e-4)


def test_local_files_inside_the_allowed_dir(http, lib, media, main_server):
    embedder, _ = lib
    root = main_server.app.state.service.config.allow_local_dir
    inside = os.path.join(root, "sub", "inside.jpg")
    with open(media["scene.jpg"], "rb") as f:
        want = embedder.embed([{"image": data_uri(f.read(), "image/jpeg")}])[0]
    for ref in ("sub/inside.jpg", inside, "file://" + inside):
        r = http.post("/v1/embeddings", json={"input": [{"image": ref}]})
        assert r.status_code == 200, (ref, r.text)
        np.testing.assert_allclose(r.json()["data"][0]["embedding"], want, atol=1e-4)


def test_rerank_equals_library_and_sorts(http, lib):
    _, reranker = lib
    docs = ["the cat sat on the mat", "stock prices", {"text": "a kitten"}, {"image": data_uri(png_bytes(40, 40, 2))}]
    r = http.post("/v1/rerank", json={"query": "cats", "documents": docs, "instruction": "Find cat texts."})
    assert r.status_code == 200, r.text
    body = r.json()
    want = reranker.scores("cats", docs, instruction="Find cat texts.")
    got = {res["index"]: res["relevance_score"] for res in body["results"]}
    assert sorted(got) == [0, 1, 2, 3]
    np.testing.assert_allclose([got[i] for i in range(4)], want, atol=1e-4)
    scores = [res["relevance_score"] for res in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all("document" not in res for res in body["results"])
    assert body["model"] == "qvl-test-reranker" and body["usage"]["total_tokens"] > 0


def test_rerank_top_n_and_return_documents(http, lib):
    _, reranker = lib
    docs = ["alpha", {"text": "beta"}, "gamma"]
    r = http.post("/v1/rerank", json={"query": {"text": "b"}, "documents": docs, "top_n": 2, "return_documents": True})
    results = r.json()["results"]
    scores = reranker.scores({"text": "b"}, docs)
    best = sorted(range(3), key=lambda i: -scores[i])[:2]
    assert [res["index"] for res in results] == best
    expect = {0: {"text": "alpha"}, 1: {"text": "beta"}, 2: {"text": "gamma"}}
    assert all(res["document"] == expect[res["index"]] for res in results)
    assert http.post("/v1/rerank", json={"query": "q", "documents": []}).json()["results"] == []


def test_health_models_metrics(main_server, http):
    health = httpx.get(f"{main_server.url}/health", trust_env=False)  # open without a key
    assert health.status_code == 200 and health.json()["status"] == "ok"
    models = http.get("/v1/models").json()
    assert {m["id"]: m["task"] for m in models["data"]} == {"qvl-test-embedding": "embedding",
                                                           "qvl-test-reranker": "rerank"}
    http.post("/v1/embeddings", json={"input": ["count me"]})
    text = http.get("/metrics").text
    for name in ("qvl_requests_total", "qvl_request_seconds_bucket", "qvl_batch_items_bucket", "qvl_queue_depth",
                 "qvl_errors_total", "qvl_tokens_total"):
        assert name in text, name
    assert 'qvl_requests_total{endpoint="/v1/embeddings",status="200"}' in text
    assert "openapi" in http.get("/openapi.json").json()


def test_auth(main_server, client):
    import openai

    url = f"{main_server.url}/v1/embeddings"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY},
                    {"Authorization": f"Basic {API_KEY}"}):
        r = httpx.post(url, json={"input": "x"}, headers=headers, trust_env=False)
        assert r.status_code == 401, headers
        assert r.json()["error"]["type"] == "authentication_error"
        assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{main_server.url}/metrics", trust_env=False).status_code == 401
    ok = httpx.post(url, json={"input": "x"}, headers={"authorization": f"bearer {API_KEY}"}, trust_env=False)
    assert ok.status_code == 200
    bad = openai.OpenAI(base_url=f"{main_server.url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.embeddings.create(model="m", input="x")

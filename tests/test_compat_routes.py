"""Other ecosystems' request shapes as raw JSON against a real `qvl serve` on 127.0.0.1: vLLM's conversations,
score and rerank paths, Jina's task, TEI's /embed, /rerank and /info; unknown fields, error shapes.
Vectors and scores equal the library's within 1e-4."""
from __future__ import annotations

import httpx
import numpy as np
import pytest

from client_server import lib, server  # noqa: F401 - fixtures
from server_fixtures import API_KEY, data_uri, png_bytes

from qwen3_vl_embedding.index.store import QUERY_INSTRUCTION
from qwen3_vl_embedding.recipes.clustering import CLUSTER_INSTRUCTION

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60, trust_env=False) as c:
        yield c


@pytest.fixture(scope="module")
def image():
    return data_uri(png_bytes(64, 48, 7))


def close(got, want):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), np.asarray(want, dtype=np.float32), atol=1e-4)


def vectors(body):
    return [d["embedding"] for d in sorted(body["data"], key=lambda d: d["index"])]


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


# vLLM -----------------------------------------------------------------------------------------------
def test_vllm_messages_one_conversation(http, lib, image):
    embedder, _ = lib
    body = {"model": "Qwen/Qwen3-VL-Embedding-2B", "encoding_format": "float", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Retrieve images that match the caption."}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                     {"type": "text", "text": "a red square"}]}]}
    got = vectors(ok(http.post("/v1/embeddings", json=body)))
    want = embedder.embed([{"content": [{"type": "image", "image": image}, {"type": "text", "text": "a red square"}],
                            "instruction": "Retrieve images that match the caption."}])
    assert len(got) == 1
    close(got, want)


def test_vllm_batched_conversations_and_defaults(http, lib, image):
    embedder, _ = lib
    conversations = [
        [{"role": "user", "content": "plain text, no system message"}],
        [{"role": "system", "content": "Find the photo."}, {"role": "user", "content": [
            {"type": "text", "text": "caption"}, {"type": "image_url", "image_url": {"url": image, "detail": "auto"}}]},
         {"role": "assistant", "content": ""}],
    ]
    r = http.post("/v1/embeddings", json={"messages": conversations, "dimensions": 64,
                                          "add_special_tokens": False, "continue_final_message": False})
    got = vectors(ok(r))
    want = embedder.embed(["plain text, no system message",
                           {"content": [{"type": "text", "text": "caption"}, {"type": "image", "image": image}],
                            "instruction": "Find the photo."}], dim=64)
    close(got, want)
    assert "add_special_tokens" in r.headers["warning"] and "continue_final_message" in r.headers["warning"]


@pytest.mark.parametrize("messages,text", [
    ([{"role": "system", "content": "a"}], "one user message"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "one user message"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "system message"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "an answer"}], "empty assistant"),
    ([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
      {"role": "user", "content": "a"}], "text only"),
])
def test_vllm_conversations_that_cannot_be_embedded(http, messages, text):
    r = http.post("/v1/embeddings", json={"messages": messages})
    assert r.status_code == 400 and text in r.json()["error"]["message"], r.text
    assert r.json()["error"]["param"].startswith("messages[0]")


@pytest.mark.parametrize("path", ["/score", "/v1/score"])
def test_vllm_score_one_to_many_and_pairs(http, lib, image, path):
    _, reranker = lib
    docs = ["the cat sat on the mat", {"content": [{"type": "image_url", "image_url": {"url": image}}]}, "stocks"]
    body = ok(http.post(path, json={"model": "m", "queries": "cats", "documents": docs}))
    want = reranker.scores("cats", [docs[0], {"image": image}, docs[2]])
    close([d["score"] for d in body["data"]], want)
    assert [d["index"] for d in body["data"]] == [0, 1, 2] and body["usage"]["total_tokens"] > 0
    pairs = ok(http.post(path, json={"text_1": ["cats", "money"], "text_2": ["a kitten", "stocks"]}))
    close([d["score"] for d in pairs["data"]], [reranker.scores("cats", ["a kitten"])[0],
                                                 reranker.scores("money", ["stocks"])[0]])
    bad = http.post(path, json={"queries": ["a", "b"], "documents": ["x", "y", "z"]})
    assert bad.status_code == 400 and "as many as documents" in bad.json()["error"]["message"]


def test_vllm_score_query_errors_name_the_field_sent(http):
    r = http.post("/score", json={"text_1": ["fine", {"content": [{"type": "image_url",
                                                                   "image_url": {"url": "/etc/passwd"}}]}],
                                  "text_2": ["a", "b"]})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["param"] == "text_1[1].content[0]"


@pytest.mark.parametrize("path", ["/rerank", "/v2/rerank", "/v1/rerank"])
def test_vllm_rerank_paths_with_multimodal_documents(http, lib, image, path):
    _, reranker = lib
    docs = [{"content": [{"type": "text", "text": "a photo"}, {"type": "image_url", "image_url": {"url": image}}]},
            "a kitten", "stocks"]
    query = {"content": [{"type": "text", "text": "cats"}]}
    body = ok(http.post(path, json={"model": "m", "query": query, "documents": docs, "top_n": 0,
                                    "truncate_prompt_tokens": -1}))
    as_library = {"content": [{"type": "text", "text": "a photo"}, {"type": "image", "image": image}]}
    want = reranker.scores("cats", [as_library, "a kitten", "stocks"])
    assert [r["index"] for r in body["results"]] == sorted(range(3), key=lambda i: -want[i])
    close([r["relevance_score"] for r in body["results"]], [want[r["index"]] for r in body["results"]])
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


# Jina -----------------------------------------------------------------------------------------------
def test_jina_task_and_embedding_type(http, lib):
    embedder, _ = lib
    r = http.post("/v1/embeddings", json={"model": "jina-embeddings-v3", "input": ["what is a cat?"],
                                          "task": "retrieval.query", "late_chunking": False, "truncate": True})
    close(vectors(ok(r)), embedder.embed(["what is a cat?"], instruction=QUERY_INSTRUCTION))
    assert r.headers["warning"] == '299 qvl "ignored unknown fields: late_chunking, truncate"'
    passage = ok(http.post("/v1/embeddings", json={"input": [{"text": "cats purr"}], "task": "retrieval.passage"}))
    close(vectors(passage), embedder.embed(["cats purr"]))
    separation = ok(http.post("/v1/embeddings", json={"input": ["group"], "task": "separation",
                                                      "embedding_type": "binary", "dimensions": 64}))
    np.testing.assert_array_equal(vectors(separation), embedder.embed(["group"], instruction=CLUSTER_INSTRUCTION,
                                                                       dim=64, precision="binary"))
    explicit = ok(http.post("/v1/embeddings", json={"input": ["x"], "task": "retrieval.query", "instruction": "Mine."}))
    close(vectors(explicit), embedder.embed(["x"], instruction="Mine."))
    bad = http.post("/v1/embeddings", json={"input": ["x"], "task": "retrieval"})
    assert bad.status_code == 400 and "retrieval.query" in bad.json()["error"]["message"]


def test_cohere_input_type_on_openai_embeddings(http, lib):
    embedder, _ = lib
    body = ok(http.post("/v1/embeddings", json={"input": "find cats", "input_type": "search_query"}))
    close(vectors(body), embedder.embed(["find cats"], instruction=QUERY_INSTRUCTION))


def test_jina_rerank_shape(http, lib):
    _, reranker = lib
    docs = ["a kitten", {"text": "stocks"}]
    body = ok(http.post("/v1/rerank", json={"model": "jina-reranker-m0", "query": "cats", "documents": docs,
                                            "top_n": 1, "return_documents": True}))
    want = reranker.scores("cats", docs)
    best = int(np.argmax(want))
    assert [r["index"] for r in body["results"]] == [best]
    assert body["results"][0]["document"] == {"text": ["a kitten", "stocks"][best]}


# TEI ------------------------------------------------------------------------------------------------
def test_tei_embed(http, lib):
    embedder, _ = lib
    one = ok(http.post("/embed", json={"inputs": "a cat"}))
    close(one, embedder.embed(["a cat"]))
    many = ok(http.post("/embed", json={"inputs": ["a cat", "a dog"], "normalize": False, "dimensions": 64,
                                        "truncate": True, "truncation_direction": "Right"}))
    close(many, embedder.embed(["a cat", "a dog"], dim=64, normalize=False))
    assert abs(np.linalg.norm(many[0]) - 1.0) > 1e-3  # really not normalised
    query = ok(http.post("/embed", json={"inputs": ["cats"], "prompt_name": "query"}))
    close(query, embedder.embed(["cats"], instruction=QUERY_INSTRUCTION))


def test_tei_rerank(http, lib):
    _, reranker = lib
    texts = ["a kitten", "stocks", "the cat sat"]
    body = ok(http.post("/rerank", json={"query": "cats", "texts": texts, "return_text": True}))
    want = reranker.scores("cats", texts)
    assert [r["index"] for r in body] == sorted(range(3), key=lambda i: -want[i])
    close([r["score"] for r in body], [want[r["index"]] for r in body])
    assert all(r["text"] == texts[r["index"]] for r in body)


def test_tei_info(http, server):
    info = ok(http.get("/info"))
    assert info["model_id"] == "qvl-test-embedding" and info["model_type"] == {"embedding": {"pooling": "last_token"}}
    assert info["max_client_batch_size"] == server.app.state.service.config.max_items
    assert info["model_dtype"] == "float32" and info["max_input_length"] > 0


@pytest.mark.parametrize("path,body,text", [
    ("/rerank", {"query": "q", "texts": ["a"], "raw_scores": True}, "raw_scores"),
    ("/rerank", {"query": "q", "texts": "a"}, "texts"),
    ("/embed", {"inputs": [[1, 2, 3]]}, "token id inputs are not supported here"),
    ("/embed", {"inputs": ["a"], "truncation_direction": "left"}, "truncation_direction"),
    ("/embed", {"inputs": ["a"], "prompt_name": "nope"}, "prompt_name must be one of query, document, passage"),
])
def test_tei_errors_have_tei_shape(http, path, body, text):
    r = http.post(path, json=body)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error", "error_type"} and r.json()["error_type"] == "validation"
    assert text in r.json()["error"] and "Value error" not in r.json()["error"]


# fields and errors ----------------------------------------------------------------------------------
def test_unknown_fields_are_ignored_with_a_warning_but_near_misses_and_wrong_types_are_refused(http, lib):
    embedder, _ = lib
    r = http.post("/v1/embeddings", json={"input": ["x"], "priority": 0, "normalized": True})
    close(vectors(ok(r)), embedder.embed(["x"]))
    assert r.headers["warning"] == '299 qvl "ignored unknown fields: normalized, priority"'
    assert "warning" not in http.post("/v1/embeddings", json={"input": ["x"]}).headers
    near = http.post("/v1/embeddings", json={"input": ["x"], "instructions": "Do."})
    assert near.status_code == 400 and near.json()["error"]["message"] == \
        "unknown field 'instructions'; did you mean 'instruction'?"
    wrong = http.post("/v1/embeddings", json={"input": ["x"], "task": 5})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "task"
    rerank = http.post("/v2/rerank", json={"query": "q", "documents": ["a"], "relevant_spans": {"mode": "enabled"}})
    assert ok(rerank)["results"] and "relevant_spans" in rerank.headers["warning"]


def test_validator_messages_have_no_framework_prefix(http):
    for body in ({}, {"input": "a", "messages": [{"role": "user", "content": "b"}]}):
        message = http.post("/v1/embeddings", json=body).json()["error"]["message"]
        assert message.startswith("send ") and "Value error" not in message, message
    message = http.post("/v2/embed", json={"texts": ["a"], "images": ["b"]}).json()["message"]
    assert message == "send exactly one of texts, images or inputs"


def test_error_shapes_by_route(server, http):
    cohere = http.post("/v2/embed", json={"texts": ["a"], "output_dimension": 3})
    assert cohere.status_code == 400 and set(cohere.json()) == {"message"}
    assert "output_dimension" in cohere.json()["message"]
    rerank = http.post("/v2/rerank", json={"query": "q", "documents": "a"})
    assert rerank.status_code == 400 and rerank.json()["message"] == rerank.json()["error"]["message"]
    unauthorised = httpx.post(f"{server.url}/embed", json={"inputs": "a"}, trust_env=False)
    assert unauthorised.status_code == 401 and unauthorised.json()["error_type"] == "unauthorized"
    assert set(httpx.post(f"{server.url}/v1/embed", json={}, trust_env=False).json()) == {"message"}
    openai = http.post("/v1/embeddings", json={"input": 5})
    assert set(openai.json()) == {"error"}


def test_vllm_conversations_in_input(http, lib):
    embedder, _ = lib
    one = [{"role": "system", "content": "Find it."}, {"role": "user", "content": "a cat"}]
    close(vectors(ok(http.post("/v1/embeddings", json={"input": one}))),
          embedder.embed([{"text": "a cat", "instruction": "Find it."}]))
    batched = ok(http.post("/v1/embeddings", json={"input": [one, [{"role": "user", "content": "a dog"}]]}))
    close(vectors(batched), embedder.embed([{"text": "a cat", "instruction": "Find it."}, "a dog"]))


def test_object_documents_without_rank_fields_say_what_to_send(http):
    r = http.post("/v1/rerank", json={"query": "q", "documents": ["a", {"text": "b", "id": 7}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "documents[1]"
    assert "rank_fields" in r.json()["message"] and "['id']" in r.json()["message"]

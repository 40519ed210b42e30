"""The clients people already use, with their default settings, against a real `qvl serve` on 127.0.0.1:
langchain-openai, llama-index's OpenAI and OpenAI-like embeddings, the openai client (async, models),
cohere's Client (v1) and ClientV2. Every vector and score equals the library's within 1e-4."""
from __future__ import annotations

import asyncio
import sys

import numpy as np
import pytest

from client_server import lib, server  # noqa: F401 - fixtures
from server_fixtures import API_KEY, data_uri, png_bytes
from tiktoken_cache import offline_cl100k

from qwen3_vl_embedding.index.store import QUERY_INSTRUCTION
from qwen3_vl_embedding.recipes.clustering import CLUSTER_INSTRUCTION

TEXTS = ["a cat on a mat", "the stock market fell sharply today", "x"]


@pytest.fixture
def cl100k(tmp_path, monkeypatch):
    offline_cl100k(str(tmp_path / "tiktoken"), monkeypatch)


@pytest.fixture
def decoded(monkeypatch):
    """The token-id lists the server decoded during a test."""
    from qwen3_vl_embedding.server import token_ids

    seen: list = []
    real = token_ids.decode

    def spy(ids, param="input"):
        seen.extend(ids)
        return real(ids, param)

    monkeypatch.setattr(token_ids, "decode", spy)
    return seen


def close(got, want):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), np.asarray(want, dtype=np.float32), atol=1e-4)


# LangChain ------------------------------------------------------------------------------------------
def test_langchain_openai_defaults_send_token_ids_and_get_the_library_vectors(server, lib, cl100k, decoded):
    from langchain_openai import OpenAIEmbeddings

    embedder, _ = lib
    emb = OpenAIEmbeddings(base_url=f"{server.url}/v1", api_key=API_KEY)  # defaults: tiktoken, token ids
    close(emb.embed_documents(TEXTS), embedder.embed(TEXTS))
    close(emb.embed_query("cats"), embedder.embed(["cats"])[0])
    assert decoded and all(isinstance(t, int) for ids in decoded for t in ids)  # token ids did go over the wire
    close(asyncio.run(emb.aembed_documents(TEXTS[:2])), embedder.embed(TEXTS[:2]))
    small = OpenAIEmbeddings(base_url=f"{server.url}/v1", api_key=API_KEY, model="text-embedding-3-small",
                             dimensions=128)
    close(small.embed_documents(["matryoshka"]), embedder.embed(["matryoshka"], dim=128))


def test_langchain_openai_without_tiktoken_on_the_server_gets_a_400_naming_the_setting(server, lib, cl100k,
                                                                                        monkeypatch):
    import openai
    from langchain_openai import OpenAIEmbeddings

    from qwen3_vl_embedding.server import token_ids

    embedder, _ = lib
    emb = OpenAIEmbeddings(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    emb.embed_documents(["warm the client's tiktoken up"])  # the client keeps its own tiktoken
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # the server's `import tiktoken` now fails
    token_ids.reset()
    with pytest.raises(openai.BadRequestError) as info:
        emb.embed_documents(TEXTS)
    message = str(info.value)
    assert "check_embedding_ctx_length=False" in message and "qwen3-vl-embedding[tokens]" in message
    assert info.value.body["code"] == "token_ids_unsupported"
    fixed = OpenAIEmbeddings(base_url=f"{server.url}/v1", api_key=API_KEY, check_embedding_ctx_length=False)
    close(fixed.embed_documents(TEXTS), embedder.embed(TEXTS))


def test_an_encoding_file_that_cannot_be_loaded_is_a_400_that_says_where_to_put_it(server, cl100k, monkeypatch):
    import httpx
    import tiktoken

    from qwen3_vl_embedding.server import token_ids

    def offline(name):
        raise ConnectionError("no network")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    token_ids.reset()
    r = httpx.post(f"{server.url}/v1/embeddings", json={"input": [[1, 2, 3]]},
                   headers={"Authorization": f"Bearer {API_KEY}"}, trust_env=False, timeout=60)
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "TIKTOKEN_CACHE_DIR" in message and "check_embedding_ctx_length=False" in message


# LlamaIndex -----------------------------------------------------------------------------------------
def test_llamaindex_openai_embedding_defaults(server, lib):
    from llama_index.embeddings.openai import OpenAIEmbedding

    embedder, _ = lib
    emb = OpenAIEmbedding(api_base=f"{server.url}/v1", api_key=API_KEY)
    close(emb.get_text_embedding(TEXTS[0]), embedder.embed(TEXTS[:1])[0])
    close(emb.get_query_embedding("cats"), embedder.embed(["cats"])[0])
    close(emb.get_text_embedding_batch(TEXTS), embedder.embed(TEXTS))
    close(asyncio.run(emb.aget_query_embedding("dogs")), embedder.embed(["dogs"])[0])


def test_llamaindex_openai_like_embedding(server, lib):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    embedder, _ = lib
    emb = OpenAILikeEmbedding(model_name="qvl-test-embedding", api_base=f"{server.url}/v1", api_key=API_KEY)
    close(emb.get_text_embedding_batch(TEXTS), embedder.embed(TEXTS))
    close(emb.get_query_embedding("cats"), embedder.embed(["cats"])[0])
    dims = OpenAILikeEmbedding(model_name="m", api_base=f"{server.url}/v1", api_key=API_KEY, dimensions=64)
    close(dims.get_text_embedding("short"), embedder.embed(["short"], dim=64)[0])
    import openai

    bad = OpenAILikeEmbedding(model_name="m", api_base=f"{server.url}/v1", api_key=API_KEY, dimensions=3)
    with pytest.raises(openai.BadRequestError, match="dimensions must be an integer from 64"):
        bad.get_text_embedding("x")  # not retried: the message reaches the caller at once


# openai ---------------------------------------------------------------------------------------------
def test_openai_async_client_and_models(server, lib):
    import openai

    embedder, _ = lib

    async def run():
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
        response = await client.embeddings.create(model="qvl-test-embedding", input=TEXTS)  # base64 by default
        models = await client.models.list()
        await client.close()
        return response, models

    response, models = asyncio.run(run())
    close([d.embedding for d in sorted(response.data, key=lambda d: d.index)], embedder.embed(TEXTS))
    assert {m.id for m in models.data} == {"qvl-test-embedding", "qvl-test-reranker"}


# cohere ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def co2(server):
    import cohere

    return cohere.ClientV2(api_key=API_KEY, base_url=server.url, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def co1(server):
    import cohere

    return cohere.Client(api_key=API_KEY, base_url=server.url, max_retries=0, timeout=60)


def test_cohere_v2_rerank(co2, lib):
    _, reranker = lib
    docs = ["the cat sat on the mat", "stock prices", "a kitten", "quarterly earnings"]
    response = co2.rerank(model="qvl-test-reranker", query="cats", documents=docs, top_n=3)
    want = reranker.scores("cats", docs)
    assert [r.index for r in response.results] == sorted(range(4), key=lambda i: -want[i])[:3]
    close([r.relevance_score for r in response.results], [want[r.index] for r in response.results])
    assert response.meta.api_version.version == "2"


def test_cohere_v2_rerank_max_tokens_per_doc_keeps_the_first_tokens_of_each_document(co2, lib):
    _, reranker = lib
    docs = ["the cat sat on the mat all afternoon", "stock prices rose again this week", "a"]
    response = co2.rerank(model="m", query="cats", documents=docs, max_tokens_per_doc=3)
    tokenizer = reranker.text_tokenizer
    cut = [tokenizer.decode(tokenizer.encode(d, add_special_tokens=False).ids[:3]) for d in docs]
    assert cut[0] == "the cat sat" and cut[2] == "a"
    want = reranker.scores("cats", cut)
    close([r.relevance_score for r in sorted(response.results, key=lambda r: r.index)], want)
    assert not np.allclose(want[:2], reranker.scores("cats", docs[:2]), atol=1e-6)


def test_cohere_v2_embed_types_dimension_and_input_type(co2, lib):
    embedder, _ = lib
    response = co2.embed(model="m", texts=TEXTS[:2], input_type="search_query", output_dimension=128,
                         embedding_types=["float", "binary", "ubinary", "base64"])
    want = embedder.embed(TEXTS[:2], instruction=QUERY_INSTRUCTION, dim=128)
    e = response.embeddings
    close(e.float_, want)
    np.testing.assert_array_equal(np.asarray(e.binary), embedder.embed(TEXTS[:2], instruction=QUERY_INSTRUCTION,
                                                                       dim=128, precision="binary"))
    np.testing.assert_array_equal(np.asarray(e.ubinary), embedder.embed(TEXTS[:2], instruction=QUERY_INSTRUCTION,
                                                                        dim=128, precision="ubinary"))
    import base64

    close([np.frombuffer(base64.b64decode(b), "<f4") for b in e.base64], want)
    assert response.texts == TEXTS[:2] and response.meta.billed_units.input_tokens > 0
    clustering = co2.embed(model="m", texts=["group me"], input_type="clustering", embedding_types=["float"])
    close(clustering.embeddings.float_, embedder.embed(["group me"], instruction=CLUSTER_INSTRUCTION))
    documents = co2.embed(model="m", texts=["a document"], input_type="search_document", embedding_types=["float"])
    close(documents.embeddings.float_, embedder.embed(["a document"]))


def test_cohere_v2_embed_images_and_mixed_inputs(co2, lib):
    embedder, _ = lib
    image = data_uri(png_bytes(64, 48, 4))
    images = co2.embed(model="m", images=[image], input_type="image", embedding_types=["float"])
    close(images.embeddings.float_, embedder.embed([{"image": image}]))
    mixed = co2.embed(model="m", input_type="search_document", embedding_types=["float"], inputs=[
        {"content": [{"type": "text", "text": "a caption"}, {"type": "image_url", "image_url": {"url": image}}]},
        {"content": [{"type": "text", "text": "only text"}]}])
    close(mixed.embeddings.float_, embedder.embed([
        {"content": [{"type": "text", "text": "a caption"}, {"type": "image", "image": image}]}, "only text"]))


def test_cohere_int8_without_calibration_is_a_readable_400(co2):
    import cohere

    with pytest.raises(cohere.errors.BadRequestError) as info:
        co2.embed(model="m", texts=["x"], input_type="search_document", embedding_types=["int8"])
    assert set(info.value.body) == {"message"}
    assert "calibration" in info.value.body["message"] and "binary" in info.value.body["message"]
    assert "calibration" in str(info.value)


def test_cohere_int8_and_uint8_with_a_calibrated_embedder(co2, lib, monkeypatch):
    embedder, _ = lib
    from qwen3_vl_embedding.quantize import QuantRanges

    ranges = QuantRanges.from_embeddings(embedder.embed(["calibration one", "calibration two", "a third text"]))
    monkeypatch.setattr(embedder, "quant_ranges", ranges)  # what `calibrate` leaves on a served embedder
    response = co2.embed(model="m", texts=TEXTS, input_type="search_document", embedding_types=["int8", "uint8"])
    for kind in ("int8", "uint8"):
        got = np.asarray(getattr(response.embeddings, kind))
        np.testing.assert_array_equal(got, embedder.embed(TEXTS, precision=kind, ranges=ranges))
    assert np.asarray(response.embeddings.int8).min() >= -128 and np.asarray(response.embeddings.uint8).max() <= 255


def test_cohere_v1_rerank_tolerates_its_optional_fields(co1, lib):
    _, reranker = lib
    docs = ["the cat sat on the mat", "stock prices", "a kitten"]
    response = co1.rerank(model="m", query="cats", documents=docs, top_n=2, max_chunks_per_doc=10,
                          return_documents=True)
    want = reranker.scores("cats", docs)
    assert [r.index for r in response.results] == sorted(range(3), key=lambda i: -want[i])[:2]
    close([r.relevance_score for r in response.results], [want[r.index] for r in response.results])
    assert [r.document.text for r in response.results] == [docs[r.index] for r in response.results]


def test_cohere_v1_rerank_rank_fields(co1, lib):
    _, reranker = lib
    docs = [{"title": "Cats", "body": "they purr", "id": "a"}, {"title": "Stocks", "body": "they fall", "id": "b"}]
    response = co1.rerank(model="m", query="cats", documents=docs, rank_fields=["title", "body"],
                          return_documents=True)
    want = reranker.scores("cats", ["title: Cats\nbody: they purr", "title: Stocks\nbody: they fall"])
    close([r.relevance_score for r in sorted(response.results, key=lambda r: r.index)], want)
    assert {r.index: r.document.id for r in response.results} == {0: "a", 1: "b"}  # the objects come back whole


def test_cohere_v1_embed(co1, lib):
    embedder, _ = lib
    floats = co1.embed(model="m", texts=TEXTS, input_type="search_query")
    assert floats.response_type == "embeddings_floats"
    close(floats.embeddings, embedder.embed(TEXTS, instruction=QUERY_INSTRUCTION))
    typed = co1.embed(model="m", texts=TEXTS[:1], input_type="classification", embedding_types=["ubinary"])
    from qwen3_vl_embedding.recipes.classification import KNN_INSTRUCTION

    np.testing.assert_array_equal(np.asarray(typed.embeddings.ubinary),
                                  embedder.embed(TEXTS[:1], instruction=KNN_INSTRUCTION, precision="ubinary"))


def test_cohere_errors_carry_the_message(co2, server):
    import cohere

    with pytest.raises(cohere.errors.BadRequestError) as info:
        co2.embed(model="m", texts=["x"], input_type="web_search", embedding_types=["float"])
    assert info.value.body == {"message": "input_type must be one of search_query, search_document, classification, "
                                          "clustering, image, got 'web_search'"}
    with pytest.raises(cohere.errors.BadRequestError) as info:
        co2.rerank(model="m", query="q", documents=["a"], max_tokens_per_doc=0)
    assert "max_tokens_per_doc" in info.value.body["message"] and "Value error" not in str(info.value)
    bad_key = cohere.ClientV2(api_key="wrong", base_url=server.url, max_retries=0)
    with pytest.raises(cohere.errors.UnauthorizedError) as info:
        bad_key.embed(model="m", texts=["x"], input_type="search_document", embedding_types=["float"])
    assert "API key" in info.value.body["message"]


# the documentation --------------------------------------------------------------------------------
def test_the_python_snippets_of_the_clients_section_run(server, cl100k):
    """docs/server.md's client snippets, as written, against the test server (its port and key; the test
    model has 256 dimensions, so 512 becomes 128)."""
    import os
    import re

    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "server.md")).read()
    section = doc[doc.index("## Clients"):doc.index("### Tasks as instructions")]
    snippets = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(snippets) >= 5
    for code in snippets:
        code = (code.replace("http://127.0.0.1:8000", server.url).replace('"unused"', repr(API_KEY))
                .replace("=512", "=128"))
        exec(compile(code, "docs/server.md", "exec"), {})  # raises if a snippet fails


def test_langchain_batches_over_the_servers_limit_get_a_message_naming_chunk_size(server, lib, cl100k):
    import openai
    from langchain_openai import OpenAIEmbeddings

    embedder, _ = lib
    limit = server.app.state.service.config.max_items
    texts = [f"text number {i}" for i in range(limit + 1)]
    emb = OpenAIEmbeddings(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)  # chunk_size 1000
    with pytest.raises(openai.APIStatusError) as info:
        emb.embed_documents(texts)
    assert info.value.status_code == 413 and f"chunk_size={limit}" in str(info.value)
    fixed = OpenAIEmbeddings(base_url=f"{server.url}/v1", api_key=API_KEY, chunk_size=limit)
    close(fixed.embed_documents(texts), embedder.embed(texts))

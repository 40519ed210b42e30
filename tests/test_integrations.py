"""The native LangChain and LlamaIndex integrations, in-process and against a `qvl serve` URL: each equals the
library's vectors (within 1e-4) for texts, queries, images and mixed items."""
from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest

from client_server import lib, server  # noqa: F401 - fixtures
from server_fixtures import API_KEY, data_uri, png_bytes

from qwen3_vl_embedding.index.store import QUERY_INSTRUCTION

TEXTS = ["a cat on a mat", "quarterly earnings fell"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A local image file: the server may not read it, so the URL backend must send it along."""
    path = tmp_path_factory.mktemp("integration") / "photo.png"
    path.write_bytes(png_bytes(72, 56, 11))
    return str(path)


@pytest.fixture(scope="module")
def photo_uri(photo):
    """The same image as a data URI: what the expected vectors are computed from (any media policy reads it)."""
    with open(photo, "rb") as f:
        return data_uri(f.read())


def close(got, want):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), np.asarray(want, dtype=np.float32), atol=1e-4)


def test_langchain_in_process_and_over_http(embedder, server, lib, photo, photo_uri):
    from langchain_core.embeddings import Embeddings

    from qwen3_vl_embedding.integrations.langchain import Qwen3VLEmbeddings

    served, _ = lib
    for emb, model in [(Qwen3VLEmbeddings(embedder), embedder),
                     (Qwen3VLEmbeddings("qvl-test-embedding", base_url=f"{server.url}/v1", api_key=API_KEY), served)]:
        assert isinstance(emb, Embeddings)
        close(emb.embed_documents(TEXTS), model.embed(TEXTS))
        close(emb.embed_query("cats"), model.embed(["cats"], instruction=QUERY_INSTRUCTION)[0])
        close(emb.embed_image([photo]), model.embed([{"image": photo_uri}]))

        def items(image):
            return [{"text": "a caption", "image": image},
                    {"content": [{"type": "text", "text": "in order"}, {"type": "image", "image": image}]}]

        close(emb.embed_items(items(photo), instruction="Find the photo."),
              model.embed(items(photo_uri), instruction="Find the photo."))
        close(asyncio.run(emb.aembed_documents(TEXTS)), model.embed(TEXTS))
        close(asyncio.run(emb.aembed_query("dogs")), model.embed(["dogs"], instruction=QUERY_INSTRUCTION)[0])


def test_langchain_dim_and_instructions(server, lib):
    served, _ = lib
    from qwen3_vl_embedding.integrations.langchain import Qwen3VLEmbeddings

    emb = Qwen3VLEmbeddings(base_url=server.url, api_key=API_KEY, dim=64, query_instruction="Find it.",
                            document_instruction="Index it.", batch_size=2)
    close(emb.embed_documents(TEXTS + ["third"]), served.embed(TEXTS + ["third"], dim=64, instruction="Index it."))
    close(emb.embed_query("q"), served.embed(["q"], dim=64, instruction="Find it.")[0])


def test_llamaindex_in_process_and_over_http(embedder, server, lib, photo, photo_uri):
    served, _ = lib
    from llama_index.core.embeddings import MultiModalEmbedding

    from qwen3_vl_embedding.integrations.llamaindex import Qwen3VLMultiModalEmbedding

    with open(photo, "rb") as f:
        raw = f.read()
    for emb, model in [(Qwen3VLMultiModalEmbedding(embedder), embedder),
                     (Qwen3VLMultiModalEmbedding(base_url=server.url, api_key=API_KEY), served)]:
        assert isinstance(emb, MultiModalEmbedding)
        close(emb.get_text_embedding(TEXTS[0]), model.embed(TEXTS[:1])[0])
        close(emb.get_text_embedding_batch(TEXTS), model.embed(TEXTS))
        close(emb.get_query_embedding("cats"), model.embed(["cats"], instruction=QUERY_INSTRUCTION)[0])
        want = model.embed([{"image": photo_uri}])[0]
        close(emb.get_image_embedding(photo), want)
        close(emb.get_image_embedding(io.BytesIO(raw)), want)
        close(emb.get_image_embedding_batch([photo, photo_uri]), [want, want])
        close(asyncio.run(emb.aget_query_embedding("dogs")), model.embed(["dogs"], instruction=QUERY_INSTRUCTION)[0])
        close(asyncio.run(emb.aget_image_embedding(photo)), want)


def test_server_errors_reach_the_caller(server):
    from qwen3_vl_embedding.integrations.langchain import Qwen3VLEmbeddings

    with pytest.raises(RuntimeError, match="401"):
        Qwen3VLEmbeddings(base_url=server.url, api_key="wrong").embed_query("x")
    with pytest.raises(RuntimeError, match="dimensions"):
        Qwen3VLEmbeddings(base_url=server.url, api_key=API_KEY, dim=3).embed_query("x")


def test_model_argument_checks(embedder):
    from qwen3_vl_embedding.integrations.langchain import Qwen3VLEmbeddings

    with pytest.raises(TypeError, match="hub id, a local folder or an Embedder"):
        Qwen3VLEmbeddings(object())
    with pytest.raises(ValueError, match="name sent to the server"):
        Qwen3VLEmbeddings(embedder, base_url="http://127.0.0.1:9")

"""LangChain: `Qwen3VLEmbeddings`, an `Embeddings` over the library in-process or a `qvl serve` URL.

    from qwen3_vl_embedding.integrations.langchain import Qwen3VLEmbeddings

    emb = Qwen3VLEmbeddings("Qwen/Qwen3-VL-Embedding-2B")             # in-process (or an Embedder you built)
    emb = Qwen3VLEmbeddings(base_url="http://127.0.0.1:8000", api_key=KEY)   # a qvl serve server
    emb.embed_documents(["a cat on a mat"]); emb.embed_query("cats")
    emb.embed_image(["photo.jpg"]); emb.embed_items([{"text": "a caption", "image": "photo.jpg"}])

Documents and images are embedded with the model's default instruction, queries with `query_instruction`
(the one `qvl search` uses, unless given); `dim` is the Matryoshka size. The vectors are the library's
(`Qwen3VLEmbedder.embed`) for the same inputs. Needs `pip install 'qwen3-vl-embedding[langchain]'`.
"""
from __future__ import annotations

from typing import Any, Sequence

try:
    from langchain_core.embeddings import Embeddings
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("the LangChain integration needs langchain-core: pip install "
                      "'qwen3-vl-embedding[langchain]'") from e

from .backends import QUERY_INSTRUCTION, backend_for

__all__ = ["Qwen3VLEmbeddings"]


class Qwen3VLEmbeddings(Embeddings):
    """LangChain embeddings of Qwen3-VL-Embedding: texts, queries, images and mixed items.

    `model`: a hub id or local folder (loaded in-process with `model_options`), an `Embedder` you built
    (a `Qwen3VLEmbedder`), or with `base_url` the model name sent to the server."""

    def __init__(self, model: Any = None, *, base_url: str | None = None, api_key: str | None = None,
                 dim: int | None = None, query_instruction: str | None = QUERY_INSTRUCTION,
                 document_instruction: str | None = None, batch_size: int = 32, timeout: float = 120.0,
                 **model_options: Any):
        self.backend = backend_for(model, base_url, api_key, timeout=timeout, batch_size=batch_size,
                                   **model_options)
        self.dim = dim
        self.query_instruction = query_instruction
        self.document_instruction = document_instruction

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.backend.embed(list(texts), self.document_instruction, self.dim)

    def embed_query(self, text: str) -> list[float]:
        return self.backend.embed([text], self.query_instruction, self.dim)[0]

    def embed_image(self, uris: Sequence[Any]) -> list[list[float]]:
        """Images (paths, URLs, data URIs or bytes) embedded as documents."""
        return self.backend.embed([{"image": u} for u in uris], self.document_instruction, self.dim)

    def embed_items(self, items: Sequence[Any], instruction: str | None = None) -> list[list[float]]:
        """Any library inputs (strings, {"text", "image", "video"} or {"content": [...]}) with `instruction`
        (None: the documents' instruction)."""
        return self.backend.embed(list(items), instruction or self.document_instruction, self.dim)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self.backend.aembed(list(texts), self.document_instruction, self.dim)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.backend.aembed([text], self.query_instruction, self.dim))[0]

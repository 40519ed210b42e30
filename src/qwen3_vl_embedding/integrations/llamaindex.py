"""LlamaIndex: `Qwen3VLMultiModalEmbedding`, a `MultiModalEmbedding` over the library or a `qvl serve` URL.

    from qwen3_vl_embedding.integrations.llamaindex import Qwen3VLMultiModalEmbedding

    emb = Qwen3VLMultiModalEmbedding("Qwen/Qwen3-VL-Embedding-2B")            # in-process (or an Embedder)
    emb = Qwen3VLMultiModalEmbedding(base_url="http://127.0.0.1:8000", api_key=KEY)
    emb.get_text_embedding("a cat on a mat"); emb.get_query_embedding("cats")
    emb.get_image_embedding("photo.jpg")

Use it as a `MultiModalVectorStoreIndex`'s `embed_model` and `image_embed_model`. Texts and images are
embedded with the model's default instruction, queries with `query_instruction` (the one `qvl search`
uses, unless given); `dim` is the Matryoshka size. The vectors are the library's for the same inputs.
Needs `pip install 'qwen3-vl-embedding[llamaindex]'`.
"""
from __future__ import annotations

from io import BytesIO
from typing import Any, List, Optional

try:
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.embeddings import MultiModalEmbedding
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("the LlamaIndex integration needs llama-index-core: pip install "
                      "'qwen3-vl-embedding[llamaindex]'") from e

from .backends import QUERY_INSTRUCTION, backend_for

__all__ = ["Qwen3VLMultiModalEmbedding"]


def _image(source: Any) -> Any:
    return source.getvalue() if isinstance(source, BytesIO) else source


class Qwen3VLMultiModalEmbedding(MultiModalEmbedding):
    """LlamaIndex embeddings of Qwen3-VL-Embedding: texts, queries and images (paths, URLs, data URIs, BytesIO).

    `model`: a hub id or local folder (loaded in-process with `model_options`), an `Embedder` you built,
    or with `base_url` the model name sent to the server."""

    dim: Optional[int] = Field(default=None, description="Matryoshka size (None: the model's full size)")
    query_instruction: Optional[str] = Field(default=QUERY_INSTRUCTION)
    document_instruction: Optional[str] = Field(default=None, description="None: the model's default")
    base_url: Optional[str] = Field(default=None)
    _backend: Any = PrivateAttr()

    def __init__(self, model: Any = None, *, base_url: str | None = None, api_key: str | None = None,
                 dim: int | None = None, query_instruction: str | None = QUERY_INSTRUCTION,
                 document_instruction: str | None = None, embed_batch_size: int = 32, timeout: float = 120.0,
                 **model_options: Any):
        backend = backend_for(model, base_url, api_key, timeout=timeout, batch_size=embed_batch_size,
                              **model_options)
        super().__init__(model_name=backend.name, embed_batch_size=embed_batch_size, dim=dim,
                         query_instruction=query_instruction, document_instruction=document_instruction,
                         base_url=base_url)
        self._backend = backend

    @classmethod
    def class_name(cls) -> str:
        return "Qwen3VLMultiModalEmbedding"

    def _embed(self, inputs: list, instruction: Optional[str]) -> List[List[float]]:
        return self._backend.embed(inputs, instruction, self.dim)

    async def _aembed(self, inputs: list, instruction: Optional[str]) -> List[List[float]]:
        return await self._backend.aembed(inputs, instruction, self.dim)

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._embed([query], self.query_instruction)[0]

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return (await self._aembed([query], self.query_instruction))[0]

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._embed([text], self.document_instruction)[0]

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._embed(list(texts), self.document_instruction)

    async def _aget_text_embedding(self, text: str) -> List[float]:
        return (await self._aembed([text], self.document_instruction))[0]

    async def _aget_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return await self._aembed(list(texts), self.document_instruction)

    def _get_image_embedding(self, img_file_path: Any) -> List[float]:
        return self._embed([{"image": _image(img_file_path)}], self.document_instruction)[0]

    def _get_image_embeddings(self, img_file_paths: List[Any]) -> List[List[float]]:
        return self._embed([{"image": _image(p)} for p in img_file_paths], self.document_instruction)

    async def _aget_image_embedding(self, img_file_path: Any) -> List[float]:
        return (await self._aembed([{"image": _image(img_file_path)}], self.document_instruction))[0]

    async def _aget_image_embeddings(self, img_file_paths: List[Any]) -> List[List[float]]:
        return await self._aembed([{"image": _image(p)} for p in img_file_paths], self.document_instruction)

"""Retrieval-augmented generation: retrieve, rerank, build a multimodal prompt, ask a chat endpoint.

    hits = retrieve(question, 20)                 # any callable (query, k) -> [Passage]
    hits = rerank_hits(reranker, question, hits, top_k=5)
    messages = build_messages(question, hits)     # OpenAI chat format, images as data URIs
    reply = chat("http://127.0.0.1:8000/v1", messages, model="Qwen/Qwen3-VL-8B-Instruct")

`answer(...)` does all four. `embedding_retriever` searches a small in-memory corpus,
`index_retriever` a `qvl index`; any function with the same signature plugs in.
"""
from __future__ import annotations

import base64
import io
import mimetypes
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ranking import reorder

SYSTEM_PROMPT = ("Answer the question using only the numbered context below (texts and images). "
                 "Cite the sources you use as [n]. If the context does not answer the question, say so.")
MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Passage:
    """One retrieved document: its id, a score, and the document as an input item (text and/or media).

    After reranking, `score` is the reranker's and `similarity` the retrieval score it had."""

    id: str
    score: float
    item: Any
    similarity: float | None = None


Hit = Passage  # the name of earlier releases


Retriever = Callable[[Any, int], Sequence[Passage]]


@dataclass(frozen=True)
class RAGAnswer:
    text: str
    hits: list[Passage]
    messages: list[dict[str, Any]]
    response: dict[str, Any]


# retrieval -----------------------------------------------------------------------------------------
def embedding_retriever(embedder: Any, documents: Mapping[str, Any] | Sequence[Any], *,
                        instruction: str | None = None, dim: int | None = None) -> Retriever:
    """A retriever over an in-memory corpus (ids -> items, or a list whose positions are the ids).

    The corpus is embedded once; each query is embedded with `instruction`."""
    docs = dict(documents) if isinstance(documents, Mapping) else {str(i): d for i, d in enumerate(documents)}
    ids, items = list(docs), list(docs.values())
    matrix = embedder.embed(items, dim=dim)

    def retrieve(query: Any, k: int) -> list[Passage]:
        q = embedder.embed([query], instruction=instruction, dim=dim)[0]
        scores = matrix @ q
        order = np.argsort(-scores, kind="stable")[:k]
        return [Passage(ids[j], float(scores[j]), items[j]) for j in order]

    return retrieve


def index_retriever(index: Any, embedder: Any, *, filters: Any = None, instruction: str | None = None) -> Retriever:
    """A retriever over a `qvl index` (its folder, or an open store): the index's own query embedding
    (its query instruction, its dim, the model check), hits turned into items the prompt can hold:
    the image, the rendered PDF page, the video span, or the chunk's text."""
    from ..index.retrieval import SearchQuery, document_input, search
    from ..index.backends import open_store

    store = open_store(os.fspath(index)) if isinstance(index, (str, os.PathLike)) else index
    max_pixels = embedder.max_pixels

    def retrieve(query: Any, k: int) -> list[Passage]:
        if isinstance(query, str):
            q = SearchQuery(text=query)
        else:
            q = SearchQuery(text=query.get("text"), image=query.get("image"), video=query.get("video"))
        out = []
        for h in search(store, embedder, q, k, filters, instruction):
            where = h.record.locator()
            out.append(Passage(h.record.path + (f" ({where})" if where else ""), h.score,
                           document_input(h.record, max_pixels)))
        return out

    return retrieve


def rerank_hits(reranker: Any, query: Any, hits: Sequence[Passage], top_k: int | None = None,
                instruction: str | None = None) -> list[Passage]:
    """Hits re-ordered by the reranker's scores (which replace the retrieval scores), best first."""
    hits = list(hits)
    if not hits:
        return []
    return reorder(hits, reranker.scores(query, [h.item for h in hits], instruction=instruction), top_k)


# prompt --------------------------------------------------------------------------------------------
def image_url(source: Any) -> str:
    """An image as a URL the endpoint can read: http(s) and data URIs as is, files and bytes as data URIs."""
    from PIL import Image

    if callable(source) and not isinstance(source, Image.Image):  # a lazy image, such as a PDF page
        source = source()
    if isinstance(source, Image.Image):
        buffer = io.BytesIO()
        source.convert("RGB").save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    if isinstance(source, (bytes, bytearray)):
        kind = (Image.open(io.BytesIO(source)).format or "png").lower()
        return f"data:image/{kind};base64," + base64.b64encode(bytes(source)).decode()
    source = os.fspath(source)
    if source.startswith(("http://", "https://", "data:")):
        return source
    path = source[7:] if source.startswith("file://") else source
    size = os.path.getsize(path)
    if size > MAX_IMAGE_BYTES:
        raise ValueError(f"image {path} is {size} bytes; at most {MAX_IMAGE_BYTES} are sent to the chat endpoint")
    mime = mimetypes.guess_type(path)[0] or "image/png"
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode()


def item_parts(item: Any) -> tuple[list[str], list[Any], list[Any]]:
    """Texts, images and videos of an input item (official dict, content dict or string)."""
    if isinstance(item, str):
        return [item], [], []
    texts, images, videos = [], [], []

    def as_list(v: Any) -> list[Any]:
        return list(v) if isinstance(v, (list, tuple)) else [v]

    if isinstance(item, Mapping) and "content" in item:
        for part in item["content"]:
            kind = part.get("type")
            if kind == "text":
                texts.append(part["text"])
            elif kind == "image":
                images.append(part.get("image") or part.get("image_url"))
            elif kind == "video":
                videos.append(part.get("video") or part.get("video_url"))
    elif isinstance(item, Mapping):
        texts += [t for t in as_list(item.get("text")) if t]
        images += [i for i in as_list(item.get("image")) if i is not None]
        videos += [v for v in as_list(item.get("video")) if v is not None]
    else:
        images.append(item)
    return texts, images, videos


def build_messages(question: str, hits: Sequence[Passage], *, system: str = SYSTEM_PROMPT, max_images: int = 8,
                   question_image: Any = None) -> list[dict[str, Any]]:
    """OpenAI chat messages: the system prompt, then one user turn with numbered context and the question.

    Each hit contributes its texts and images (up to `max_images` in all); videos are named, not sent."""
    content: list[dict[str, Any]] = [{"type": "text", "text": "Context:"}]
    images_left = max_images
    for n, hit in enumerate(hits, start=1):
        texts, images, videos = item_parts(hit.item)
        label = f"[{n}] (id {hit.id})"
        content.append({"type": "text", "text": (f"{label} " + "\n".join(texts)) if texts else label})
        for image in images:
            if images_left <= 0:
                content.append({"type": "text", "text": "(image omitted: image limit reached)"})
                break
            content.append({"type": "image_url", "image_url": {"url": image_url(image)}})
            images_left -= 1
        for video in videos:
            content.append({"type": "text", "text": f"(video: {video if isinstance(video, str) else 'frames'})"})
    if question_image is not None:
        content.append({"type": "image_url", "image_url": {"url": image_url(question_image)}})
    content.append({"type": "text", "text": f"Question: {question}"})
    return [{"role": "system", "content": system}, {"role": "user", "content": content}]


# generation ----------------------------------------------------------------------------------------
def chat_completions_url(url: str) -> str:
    """The chat-completions endpoint of a base URL such as http://host:8000/v1 (or the endpoint itself)."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def chat(url: str, messages: list[dict[str, Any]], *, model: str, api_key: str | None = None,
         timeout: float = 120.0, **options: Any) -> dict[str, Any]:
    """POST the messages to an OpenAI-compatible chat endpoint; the JSON response.

    `options` go into the request body (temperature, max_tokens, ...)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"model": model, "messages": messages, **options}
    endpoint = chat_completions_url(url)
    try:
        response = httpx.post(endpoint, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        raise RuntimeError(f"cannot reach the chat endpoint {endpoint} ({type(e).__name__}: {e}); start a chat "
                           f"server (vLLM, SGLang, llama.cpp ...) there, or pass its URL") from None
    if response.status_code in (404, 405):
        raise RuntimeError(f"{endpoint} answered HTTP {response.status_code}: there is no chat endpoint there. The "
                           f"chat URL must name a chat server (vLLM, SGLang, llama.cpp, a hosted API), not `qvl "
                           f"serve`, which serves embeddings and reranking only")
    if response.status_code >= 400:
        raise RuntimeError(f"chat endpoint {url} answered HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


def reply_text(response: Mapping[str, Any]) -> str:
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise RuntimeError(f"unexpected chat response (no choices[0].message.content): {str(response)[:300]}") from None
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return content or ""


def answer(question: str, retrieve: Retriever, *, chat_url: str, model: str, reranker: Any = None, k: int = 20,
           top_k: int = 5, question_image: Any = None, rerank_instruction: str | None = None,
           api_key: str | None = None, system: str = SYSTEM_PROMPT, max_images: int = 8,
           **options: Any) -> RAGAnswer:
    """Retrieve `k` hits, keep the reranker's best `top_k` (or the first `top_k`), and ask the endpoint."""
    query: Any = {"text": question, "image": question_image} if question_image is not None else question
    hits = list(retrieve(query, k))
    hits = rerank_hits(reranker, query, hits, top_k, rerank_instruction) if reranker is not None else hits[:top_k]
    messages = build_messages(question, hits, system=system, max_images=max_images, question_image=question_image)
    response = chat(chat_url, messages, model=model, api_key=api_key, **options)
    return RAGAnswer(reply_text(response), hits, messages, response)

"""Request and response bodies (pydantic: used only at the HTTP boundary; the library takes plain dicts).

Requests are strict (no type coercion) and refuse unknown keys inside items, so a typo is an error
rather than a silently different embedding."""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

_STRICT = ConfigDict(extra="forbid", strict=True)


class MediaURL(BaseModel):
    """OpenAI-style wrapper: {"url": "..."}."""

    model_config = _STRICT
    url: str


class ContentPart(BaseModel):
    """One part of the chat-content form; parts keep their order."""

    model_config = _STRICT
    type: Literal["text", "image", "video", "image_url", "video_url"]
    text: str | None = None
    image: str | None = None
    image_url: str | MediaURL | None = None
    video: str | list[str] | None = Field(None, description="video URL or data URI, or a list of frame URIs")
    video_url: str | MediaURL | None = None
    fps: float | None = Field(None, gt=0)
    max_frames: int | None = Field(None, gt=0)
    video_start: float | None = Field(None, ge=0)
    video_end: float | None = Field(None, ge=0)


class Item(BaseModel):
    """A multimodal input: text, image, video (parts ordered video, image, text as in the reference),
    or `content`, an ordered list of parts. Images and videos are URLs or data URIs."""

    model_config = _STRICT
    text: str | list[str] | None = None
    image: str | list[str] | None = Field(None, description="image URL or data URI (or a list of them)")
    video: str | list[str] | None = Field(None, description="video URL or data URI, or a list of frame URIs")
    instruction: str | None = None
    fps: float | None = Field(None, gt=0)
    max_frames: int | None = Field(None, gt=0)
    content: str | list[ContentPart] | None = None


Input = Union[str, Item]


def _refuse_token_ids(value: Any) -> Any:
    if isinstance(value, list) and value and all(
            isinstance(v, int) or (isinstance(v, list) and v and all(isinstance(t, int) for t in v)) for v in value):
        raise ValueError("token id inputs are not supported; send text or items")
    return value


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request, plus `instruction` (applies to inputs that set none)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    input: str | list[Input]
    model: str | None = None
    dimensions: int | None = Field(None, description="Matryoshka size: 64 up to the model's size")
    encoding_format: Literal["float", "base64"] = "float"
    instruction: str | None = None
    user: str | None = None

    _no_token_ids = field_validator("input", mode="before")(_refuse_token_ids)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class RerankRequest(BaseModel):
    """The rerank request Cohere, Jina and vLLM share, plus `instruction`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    query: Input
    documents: list[Input]
    model: str | None = None
    top_n: int | None = Field(None, gt=0)
    return_documents: bool = False
    instruction: str | None = None


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None


class RerankUsage(BaseModel):
    total_tokens: int


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    usage: RerankUsage


class SearchFilters(BaseModel):
    model_config = _STRICT
    modality: list[Literal["image", "video", "pdf", "text"]] | None = None
    path: list[str] | None = Field(None, description="glob patterns on absolute paths (any of)")


class SearchRequest(BaseModel):
    """Search the server's index (`qvl serve --db`): a text, image, video or mixed query."""

    model_config = ConfigDict(extra="forbid", strict=True)
    query: Input
    k: int = Field(10, gt=0)
    filters: SearchFilters | None = None
    rerank: bool = False
    rerank_top: int = Field(50, gt=0, description="candidates taken from the index for reranking")
    instruction: str | None = Field(None, description="query instruction (default: the index's)")
    model: str | None = None


class SearchHit(BaseModel):
    path: str
    score: float = Field(description="cosine similarity, or the reranker's score with rerank")
    modality: str
    page: int | None = None
    start: float | None = None
    end: float | None = None
    chunk: int | None = None
    text: str | None = None
    similarity: float | None = Field(None, description="the cosine similarity when reranked")
    date: str | None = Field(None, description="ISO 8601: a photo's capture time (EXIF), else the file's mtime")
    id: int


class NotReranked(BaseModel):
    path: str
    reason: str


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    results: list[SearchHit]
    not_reranked: list[NotReranked] = []
    usage: RerankUsage


class ServerLimits(BaseModel):
    max_items: int = Field(description="inputs per embedding request, documents per rerank request")
    max_body_bytes: int
    max_media_bytes: int = Field(description="per image or video source (a data URI's decoded bytes)")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "qvl"
    task: Literal["embedding", "rerank"]
    dim: int | None = Field(None, description="embedding: the full embedding size")
    default_instruction: str | None = Field(None, description="embedding: the instruction documents get")
    max_pixels: int | None = Field(None, description="pixel budget of one image")
    limits: ServerLimits | None = Field(None, description="what one request may hold on this server")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "stopping"]
    models: dict[str, str]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def to_library(value: str | dict | Item) -> str | dict[str, Any]:
    """An input as the library takes it: a string, or a dict without the keys left unset (dicts as they are)."""
    return value if isinstance(value, (str, dict)) else value.model_dump(exclude_none=True)

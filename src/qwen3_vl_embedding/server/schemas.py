"""Request and response bodies (pydantic: used only at the HTTP boundary; the library takes plain dicts).

Requests are strict (no type coercion) and refuse unknown keys inside items, so a typo is an error
rather than a silently different embedding."""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    folder: str | None = Field(None, description="everything under a folder (absolute, or a name such as "
                               "'photos/2024' matched anywhere), or a glob")
    after: float | str | None = Field(None, description="dated at or after: seconds since the epoch or ISO 8601 "
                                      "(2024-07-01, 2024-07-01T08:00:00+02:00); dates are a photo's capture time, "
                                      "else the file's mtime")
    before: float | str | None = Field(None, description="dated before (the same forms)")
    min_score: float | None = Field(None, ge=-1, le=1, description="leave out results of a lower similarity")


class SearchRequest(BaseModel):
    """Search the server's index (`qvl serve --db`): a text, image, video or mixed query, or `like`, the id
    of a record whose stored vector is the query (more like this: nothing is embedded, the record is left out)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    query: Input | None = None
    like: int | str | None = Field(None, description="more like this: a record id (a result's id or id_str)")
    k: int = Field(10, gt=0)
    filters: SearchFilters | None = None
    rerank: bool = False
    rerank_top: int = Field(50, gt=0, description="candidates taken from the index for reranking")
    instruction: str | None = Field(None, description="query instruction (default: the index's)")
    model: str | None = None

    @model_validator(mode="after")
    def _one_query(self) -> "SearchRequest":
        if (self.query is None) == (self.like is None):
            raise ValueError("give either query or like (a record id)")
        if isinstance(self.like, str) and not self.like.isdigit():
            raise ValueError("like must be a record id (digits)")
        return self


class RecordInfo(BaseModel):
    """One record of the index (GET /v1/records/{id}) with the links to its file and thumbnail."""

    path: str
    modality: str
    page: int | None = None
    start: float | None = None
    end: float | None = None
    chunk: int | None = None
    text: str | None = None
    date: str | None = Field(None, description="ISO 8601: a photo's capture time (EXIF), else the file's mtime")
    id: int
    id_str: str | None = Field(None, description="the id as a string (JavaScript numbers cannot hold every id)")
    file: str | None = Field(None, description="link to the original (signed when the server has an API key)")
    thumbnail: str | None = Field(None, description="link to a JPEG thumbnail (?size=small|large); none for text")


class SearchHit(RecordInfo):
    score: float = Field(description="cosine similarity, or the reranker's score with rerank")
    similarity: float | None = Field(None, description="the cosine similarity when reranked")


class NotReranked(BaseModel):
    path: str
    reason: str


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    results: list[SearchHit]
    not_reranked: list[NotReranked] = []
    usage: RerankUsage


class FolderCount(BaseModel):
    path: str
    files: int


class IndexInfo(BaseModel):
    """GET /v1/index: what the served index holds, for a search page's filters."""

    object: Literal["index"] = "index"
    model: str
    dim: int
    records: int
    by_modality: dict[str, int]
    folders: list[FolderCount] = Field(description="folders holding indexed files (the 2000 with most files)")
    rerank: bool = Field(description="whether search can rerank (the server has a reranker)")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "qvl"
    task: Literal["embedding", "rerank"]


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

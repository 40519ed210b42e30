"""Request and response bodies (pydantic: used only at the HTTP boundary; the library takes plain dicts).

Requests are strict (no type coercion) and refuse unknown keys inside items, so a typo is an error
rather than a silently different embedding."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

_STRICT = ConfigDict(extra="forbid", strict=True)
# Top-level request fields: strict types, but unknown fields that clients of other APIs send by default are
# kept apart (`model_extra`) and ignored with a Warning header (compat.ignored_fields), not refused.
_TOLERANT = ConfigDict(extra="allow", strict=True)


class MediaURL(BaseModel):
    """OpenAI-style wrapper: {"url": "...", "detail"?} (`detail` is accepted and has no effect)."""

    model_config = _STRICT
    url: str
    detail: Literal["auto", "low", "high"] | None = None


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
    max_pixels: int | None = Field(None, gt=0, description="this image's pixel budget (at most the server's)")
    min_pixels: int | None = Field(None, gt=0)


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
    max_pixels: int | None = Field(None, gt=0, description="pixel budget of this input's images (at most the "
                                                           "server's: photos are read smaller than documents)")
    min_pixels: int | None = Field(None, gt=0)
    content: str | list[ContentPart] | None = None


Input = Union[str, Item]


def _is_token_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def token_ids_of(value: Any) -> list[list[int]] | None:
    """OpenAI's token-id input (one list of ints, or a list of them) as a list of lists; None otherwise."""
    if not isinstance(value, list) or not value:
        return None
    if all(_is_token_id(v) for v in value):
        return [value]
    if all(isinstance(v, list) and v and all(_is_token_id(t) for t in v) for v in value):
        return value
    return None


class ChatMessage(BaseModel):
    """One message of a conversation to embed (vLLM's `messages`): the system message is the
    instruction, the user message the content (text, image_url and video_url parts, in order)."""

    model_config = _STRICT
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


def _one_or_many_conversations(value: Any) -> Any:
    return [value] if isinstance(value, list) and value and not isinstance(value[0], list) else value


def _is_conversation(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) for m in value)


def conversations_in(value: Any) -> bool:
    """vLLM also takes a conversation (or a list of them) in `input`: messages with a `role`."""
    return _is_conversation(value) or (isinstance(value, list) and bool(value) and all(map(_is_conversation, value)))


EmbeddingType = Literal["float", "base64", "int8", "uint8", "binary", "ubinary"]


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request, plus `instruction` (applies to inputs that set none), vLLM's `messages`
    (one conversation or a list of them; in `input` too, as vLLM takes them), Jina's `task` and
    `embedding_type`, Cohere's `input_type`.
    `input` may also be OpenAI's token ids (read as tiktoken's cl100k_base, as OpenAI's clients send them)."""

    model_config = _TOLERANT
    input: str | list[Input] | None = Field(None, description="a string, a list of strings or items, or token ids")
    messages: list[Annotated[list[ChatMessage], Field(min_length=1)]] | None = Field(
        None, min_length=1, description="vLLM: one conversation or a list of them (one vector each)")
    model: str | None = None
    dimensions: int | None = Field(None, description="Matryoshka size: 64 up to the model's size")
    encoding_format: Literal["float", "base64"] = "float"
    instruction: str | None = None
    task: str | None = Field(None, description="Jina's task, mapped to an instruction")
    input_type: str | None = Field(None, description="Cohere's input_type, mapped to an instruction")
    embedding_type: EmbeddingType | None = Field(None, description="Jina's embedding_type")
    user: str | None = None
    _token_ids: list[list[int]] | None = PrivateAttr(None)

    _conversations = field_validator("messages", mode="before")(_one_or_many_conversations)

    @model_validator(mode="wrap")
    @classmethod
    def _token_id_input(cls, data: Any, handler):
        if isinstance(data, dict) and "messages" not in data and conversations_in(data.get("input")):
            data = {**data, "messages": data["input"], "input": None}
        ids = token_ids_of(data.get("input")) if isinstance(data, dict) else None
        if ids is None:
            return handler(data)
        request = handler({**data, "input": None})
        request._token_ids = ids
        return request

    @model_validator(mode="after")
    def _one_input(self):
        given = [name for name, v in (("input", self.input if self._token_ids is None else self._token_ids),
                                      ("messages", self.messages)) if v is not None]
        if not given:
            raise ValueError("send `input` (a string, a list of strings or items) or `messages` (a conversation)")
        if len(given) > 1:
            raise ValueError("send either `input` or `messages`, not both")
        return self

    @property
    def token_ids(self) -> list[list[int]] | None:
        return self._token_ids


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | list[int] | str = Field(
        description="floats, base64 of little-endian float32, or int8/uint8/binary/ubinary integers (`embedding_type`)")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class RerankRequest(BaseModel):
    """The rerank request Cohere (v1 and v2), Jina and vLLM share, plus `instruction`.

    `max_tokens_per_doc` (Cohere v2) keeps the first N tokens of each document's text (never its media);
    `rank_fields` (Cohere v1) ranks object documents on those fields; `max_chunks_per_doc` (Cohere v1) is
    accepted and has no effect (documents are not chunked); `top_n` 0 means all (vLLM)."""

    model_config = _TOLERANT
    query: Input
    documents: list[Annotated[Union[str, Item, dict[str, Any]], Field(union_mode="left_to_right")]]
    model: str | None = None
    top_n: int | None = Field(None, ge=0)
    return_documents: bool = False
    instruction: str | None = None
    max_tokens_per_doc: int | None = Field(None, gt=0)
    max_chunks_per_doc: int | None = Field(None, gt=0)
    rank_fields: list[str] | None = Field(None, min_length=1)


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None


class RerankUsage(BaseModel):
    total_tokens: int
    prompt_tokens: int | None = None


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
    quantize: str | None = Field(None, description="embedding: the weights, None as released or 'int8'")
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


def to_library(value: Any) -> Any:
    """An input as the library takes it: a string, or a dict without the keys left unset (anything that is
    not a request model, a dict or an `inputs.Item` say, as it is)."""
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value

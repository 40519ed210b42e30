"""Request bodies of the other ecosystems' routes (pydantic, HTTP boundary only): Cohere's embed, vLLM's
score, TEI's embed and rerank. The rerank request Cohere, Jina and vLLM share is `schemas.RerankRequest`.

As in schemas.py, types are strict and items refuse unknown keys; unknown top-level fields are kept apart
and ignored with a Warning header (compat.ignored_fields)."""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .schemas import _STRICT, _TOLERANT, Item, MediaURL, token_ids_of


class InvalidBody(Exception):
    """A body that does not validate; `errors` as pydantic lists them (for errors.validation_message)."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("invalid body")
        self.errors = errors


def parse_body(model: type[BaseModel], data: Any) -> Any:
    """`data` validated as `model`; InvalidBody when it does not validate."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InvalidBody(list(e.errors(include_url=False))) from None


# Cohere -------------------------------------------------------------------------------------------------
CohereEmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary", "base64"]


class CohereContent(BaseModel):
    """A part of a Cohere embed input: {"type": "text", "text"} or {"type": "image_url", "image_url": {"url"}}."""

    model_config = _STRICT
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: MediaURL | str | None = None


class CohereInput(BaseModel):
    model_config = _STRICT
    content: list[CohereContent] = Field(min_length=1)


class CohereEmbedRequest(BaseModel):
    """Cohere's embed request (v1 and v2): one of `texts`, `images` (data URIs) or `inputs` (mixed parts).

    `input_type` maps to an instruction (compat.TASKS), `output_dimension` is the Matryoshka size,
    `max_tokens` keeps the first N tokens of each input's text, `embedding_types` chooses the encodings.
    `instruction` (this server's) replaces the input type's instruction."""

    model_config = _TOLERANT
    model: str | None = None
    input_type: str | None = None
    texts: list[str] | None = None
    images: list[str] | None = None
    inputs: list[CohereInput] | None = None
    max_tokens: int | None = Field(None, gt=0)
    output_dimension: int | None = None
    embedding_types: list[CohereEmbeddingType] | None = Field(None, min_length=1)
    truncate: Literal["NONE", "START", "END"] | None = None
    instruction: str | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        given = [name for name in ("texts", "images", "inputs") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("send exactly one of texts, images or inputs")
        return self


# vLLM ---------------------------------------------------------------------------------------------------
ScoreInput = Union[str, Item]  # a text, or {"content": [parts]} (vLLM's multimodal form), or any item
ScoreSide = Union[ScoreInput, list[ScoreInput]]


class ScoreRequest(BaseModel):
    """vLLM's score request: `queries` and `documents` (or `queries`/`items`, `text_1`/`text_2`,
    `data_1`/`data_2`); one query against every document, or pairs zipped when the sides have one length."""

    model_config = _TOLERANT
    model: str | None = None
    queries: ScoreSide | None = None
    documents: ScoreSide | None = None
    items: ScoreSide | None = None
    text_1: ScoreSide | None = None
    text_2: ScoreSide | None = None
    data_1: ScoreSide | None = None
    data_2: ScoreSide | None = None
    instruction: str | None = None


# TEI ----------------------------------------------------------------------------------------------------
def _no_token_ids(value: Any) -> Any:
    if token_ids_of(value) is not None:
        raise ValueError("token id inputs are not supported here; send texts")
    return value


class TEIEmbedRequest(BaseModel):
    """text-embeddings-inference's /embed: texts only. Inputs longer than the model's max_length always lose
    their end (`truncate` accepted either way)."""

    model_config = _TOLERANT
    inputs: str | list[str]
    normalize: bool = True
    truncate: bool | None = None
    truncation_direction: Literal["right", "Right", "left", "Left"] | None = None
    prompt_name: str | None = None
    dimensions: int | None = None

    _texts = field_validator("inputs", mode="before")(_no_token_ids)


class TEIRerankRequest(BaseModel):
    """text-embeddings-inference's /rerank: a query and texts; scores are the reranker's (0, 1) probabilities."""

    model_config = _TOLERANT
    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = None
    truncation_direction: Literal["right", "Right", "left", "Left"] | None = None

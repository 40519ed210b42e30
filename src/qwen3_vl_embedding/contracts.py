"""The small contracts the surfaces depend on: something that embeds, and something that scores pairs.

The index, evaluation, recipes and the Ray path need an `Embedder`; `Qwen3VLEmbedder` and
`distributed.RayEmbedder` both are one. The server also drives the work itself, in three steps
(infinity's pre / core / post): `prepare` turns an input into a costed job on the request's thread,
`run_jobs` runs the queued jobs of many requests through the library's one batching loop on the
model's worker, and `head` turns each request's raw hidden states into its vectors. `ServedEmbedder`
adds those three steps; a Ray pool has no local forward pass to merge requests into, so it is an
`Embedder` only. `Scorer` is the reranker the same way. Nothing outside the model classes reaches
into their engine.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .batching import RunStats
    from .media import MediaPolicy


@runtime_checkable
class Embedder(Protocol):
    """Something that embeds inputs (the library's input forms) into normalised float32 vectors."""

    @property
    def name(self) -> str:
        """The model as asked for: a hub id or a local folder."""

    @property
    def dim(self) -> int:
        """Full embedding size."""

    @property
    def default_instruction(self) -> str:
        """The instruction documents are embedded with."""

    @property
    def max_pixels(self) -> int:
        """Pixel budget of one image (PDF pages are rendered within it)."""

    @property
    def text_tokenizer(self) -> Any:
        """The fast tokenizer (`tokenizers.Tokenizer`) that splits texts into chunks of tokens."""

    @property
    def quantize(self) -> str | None:
        """The weights' quantisation: None (as released) or "int8" (recorded in an index)."""

    def embed(self, inputs: Iterable[Any], *, dim: int | None = None, **options: Any) -> Any:
        """Vectors (n, dim) in input order; see `Qwen3VLEmbedder.embed`."""

    def iter_embed(self, inputs: Iterable[Any], *, dim: int | None = None, instruction: str | None = None,
                   on_error: str = "raise", stats: RunStats | None = None,
                   **options: Any) -> Iterator[tuple[int, np.ndarray]]:
        """(input position, vector) as batches finish; see `Qwen3VLEmbedder.iter_embed`."""


@runtime_checkable
class ServedEmbedder(Embedder, Protocol):
    """An `Embedder` whose work a server can queue and merge across requests: pre, core, post."""

    @property
    def media_policy(self) -> MediaPolicy: ...

    def prepare(self, item: Any, instruction: str | None = None) -> tuple[Any, int]:
        """(pre) One input's job and its token cost; raises InputError for a malformed input."""

    def run_jobs(self, jobs: Iterable[Any], head: Any = None, **options: Any) -> Iterator[tuple[int, torch.Tensor]]:
        """(core) (position, head(last hidden state)) per job; `head` None yields the raw hidden states."""

    def head(self, hidden: torch.Tensor, dim: int | None = None, normalize: bool = True) -> torch.Tensor:
        """(post) Raw hidden states -> embeddings: the one head every vector goes through."""


@runtime_checkable
class Scorer(Protocol):
    """Something that scores (query, document) pairs in (0, 1): the reranker."""

    @property
    def name(self) -> str: ...

    @property
    def max_pixels(self) -> int: ...

    @property
    def media_policy(self) -> MediaPolicy: ...

    @property
    def text_tokenizer(self) -> Any:
        """The fast tokenizer: a document's text is cut to a number of its tokens (`max_tokens_per_doc`)."""

    def scores(self, query: Any, documents: Iterable[Any], **options: Any) -> list[float]:
        """One score per document, in document order; see `Qwen3VLReranker.scores`."""

    def prepare_pairs(self, query: Any, documents: Iterable[Any], instruction: str | None = None
                      ) -> list[tuple[Any, int]]:
        """(pre) Each pair's job and its token cost."""

    def run_jobs(self, jobs: Iterable[Any], head: Any = None, **options: Any) -> Iterator[tuple[int, torch.Tensor]]:
        """(core) As `ServedEmbedder.run_jobs`."""

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """(post) Last hidden states -> scores."""

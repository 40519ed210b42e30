"""Qwen3VLReranker: yes/no relevance scores of (query, document) pairs, many pairs per forward pass."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch

from .constants import (FPS, MAX_FRAMES, MAX_PIXELS, MIN_PIXELS, RERANK_INSTRUCTION, RERANK_MAX_LENGTH,
                        RERANKER_2B, TOTAL_PIXELS)
from .engine import LoadedModel
from .errors import InputError
from .inputs import Item, check_many, to_item
from .prompts import Prompt, pair_prompt, user_parts
from .ranking import ranked
from .settings import RERANKER


@dataclass(frozen=True)
class RerankResult:
    index: int
    score: float
    document: Any = None


class Qwen3VLReranker(LoadedModel):
    """Scores documents against a query with Qwen3-VL-Reranker: sigmoid of the yes-minus-no logit.

    The constructor takes the official arguments and the keyword options of `Qwen3VLEmbedder`
    (`ModelSettings` fields); `from_settings(model, settings)` takes one `ModelSettings`. The lm_head is
    never loaded whole: only its `yes` and `no` rows are kept."""

    defaults = RERANKER  # what `from_settings(model)` uses

    def __init__(self, model_name_or_path: str = RERANKER_2B, max_length: int = RERANK_MAX_LENGTH,
                 min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS, total_pixels: int = TOTAL_PIXELS,
                 fps: float = FPS, max_frames: int = MAX_FRAMES, default_instruction: str = RERANK_INSTRUCTION,
                 **options: Any):
        settings = RERANKER.replace(max_length=max_length, min_pixels=min_pixels, max_pixels=max_pixels,
                                    total_pixels=total_pixels, fps=fps, max_frames=max_frames,
                                    default_instruction=default_instruction).with_options(options)
        super().__init__(model_name_or_path, settings)

    def _loaded(self) -> None:
        tok = self.engine.tokenizer
        yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
        rows = self.engine.backbone.lm_head_rows([yes, no]).to(self.device)
        self.score_weight = rows[0] - rows[1]  # float32 (hidden,)

    def __repr__(self) -> str:
        return f"Qwen3VLReranker({self.name!r}, {self.runtime.describe()})"

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores in (0, 1) of last hidden states (n, hidden): sigmoid of the yes-minus-no logit."""
        return torch.sigmoid(hidden @ self.score_weight)

    def prepare_pairs(self, query: Any, documents: Iterable[Any], instruction: str | None = None
                      ) -> list[tuple[Any, int]]:
        """(pre) The job of each (query, document) pair for `run_jobs(jobs, self.head)`, and its token cost."""
        return [self.costed(p) for p in self.pair_prompts(query, documents, instruction=instruction)]

    def _query(self, query: Any) -> Item:
        if query is None or (isinstance(query, (Mapping, str)) and not query):
            raise InputError("the query is empty", field="query")
        try:
            return to_item(query)
        except InputError as e:
            raise e.located(field_prefix="query") from None

    def pair_prompts(self, query: Any, documents: Iterable[Any], *, instruction: str | None = None,
                     fps: float | None = None, max_frames: int | None = None) -> list[Prompt]:
        """The judgement prompt of each (query, document) pair, for `run_jobs` with `head`.

        Raises InputError for a malformed query (field "query...") or document (its index)."""
        check_many(documents, "documents")
        fps, max_frames = fps or self.fps, max_frames or self.max_frames
        # The query's parts are built once and shared by every pair, so its media are read once.
        q_parts = user_parts(self._query(query), fps, max_frames, self.max_frames, field_prefix="query")
        instruction = instruction or self.default_instruction
        return [pair_prompt(q_parts, user_parts(to_item(doc, i), fps, max_frames, self.max_frames), instruction)
                for i, doc in enumerate(documents)]

    def scores(self, query: Any, documents: Iterable[Any], *, instruction: str | None = None,
               fps: float | None = None, max_frames: int | None = None, max_batch_tokens: int | None = None,
               batch_size: int | None = None, show_progress: bool | None = False,
               on_error: str = "raise") -> list[float]:
        """One score in (0, 1) per document, in document order (NaN for skipped documents)."""
        prompts = self.pair_prompts(query, documents, instruction=instruction, fps=fps, max_frames=max_frames)
        out = [float("nan")] * len(prompts)
        try:
            for pos, score in self.run_jobs(prompts, self.head, max_batch_tokens=max_batch_tokens,
                                            batch_size=batch_size, on_error=on_error,
                                            show_progress=show_progress, total=len(prompts), desc="reranking"):
                out[pos] = float(score)
        except InputError as e:
            if e.field and e.field.startswith("query"):
                raise InputError(e.cause, field=e.field) from None
            raise
        bad_query = next((f for f in self.last_stats.failures if f.field and f.field.startswith("query")), None)
        if bad_query is not None:
            raise InputError(bad_query.cause, field=bad_query.field)
        return out

    def process(self, inputs: Mapping[str, Any]) -> list[float]:
        """The official method: {"query", "documents", "instruction"?, "fps"?, "max_frames"?} -> scores."""
        if not isinstance(inputs, Mapping):
            raise InputError("process expects a dict with 'query' and 'documents'")
        unknown = set(inputs) - {"query", "documents", "instruction", "fps", "max_frames"}
        if unknown:
            raise InputError(f"unknown keys {sorted(unknown)}; expected query, documents, instruction, fps, max_frames")
        documents = inputs.get("documents")
        if documents is None or (isinstance(documents, (list, tuple)) and not documents):
            return []
        return self.scores(inputs.get("query"), documents, instruction=inputs.get("instruction"),
                           fps=inputs.get("fps"), max_frames=inputs.get("max_frames"))

    def rerank(self, query: Any, documents: Iterable[Any], *, top_k: int | None = None,
               instruction: str | None = None, max_batch_tokens: int | None = None, batch_size: int | None = None,
               return_documents: bool = False, fps: float | None = None, max_frames: int | None = None,
               show_progress: bool | None = None, on_error: str = "raise") -> list[RerankResult]:
        """Documents sorted by score, best first: RerankResult(index, score, document if asked)."""
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        documents = list(check_many(documents, "documents"))
        scores = self.scores(query, documents, instruction=instruction, fps=fps, max_frames=max_frames,
                             max_batch_tokens=max_batch_tokens, batch_size=batch_size,
                             show_progress=show_progress, on_error=on_error)
        return [RerankResult(i, scores[i], documents[i] if return_documents else None) for i in ranked(scores, top_k)]

"""Answer retrieval for visual question answering: rank candidate answers for (image or video, question).

The query is the image (or video) with the question text and a QA instruction; candidates are
answers embedded with the default instruction. An optional reranker re-scores the embedder's order.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

QA_INSTRUCTION = "Represent the given image with the following question for answering."


@dataclass(frozen=True)
class Answer:
    index: int
    answer: Any
    score: float


def qa_query(question: str, image: Any = None, video: Any = None) -> dict[str, Any]:
    query: dict[str, Any] = {"text": question}
    if image is not None:
        query["image"] = image
    if video is not None:
        query["video"] = video
    return query


def retrieve_answers(embedder: Any, question: str, answers: Sequence[Any], *, image: Any = None, video: Any = None,
                     instruction: str = QA_INSTRUCTION, top_k: int | None = None, dim: int | None = None,
                     reranker: Any = None, rerank_instruction: str | None = None) -> list[Answer]:
    """Candidate answers ranked for the question about `image`/`video`, best first."""
    if not answers:
        raise ValueError("give at least one candidate answer")
    query = qa_query(question, image, video)
    q = embedder.embed([query], instruction=instruction, dim=dim)[0]
    scores = embedder.embed(list(answers), dim=dim) @ q
    order = np.argsort(-scores, kind="stable").tolist()
    ranked = [Answer(i, answers[i], float(scores[i])) for i in order]
    if reranker is not None:
        head = ranked[:top_k] if top_k else ranked
        rr = reranker.scores(query, [a.answer for a in head], instruction=rerank_instruction or instruction)
        ranked = [Answer(a.index, a.answer, s) for a, s in sorted(zip(head, rr), key=lambda p: -p[1])]
    return ranked[:top_k] if top_k else ranked

"""Classification with embeddings: zero-shot from label descriptions, and k nearest neighbours.

Zero-shot: the inputs are embedded as queries with a classification instruction, each label's
description as a document (default instruction), and an input takes the label of its most similar
description. k-NN: labelled examples and inputs are embedded alike; an input takes the label with
the largest summed similarity among its k nearest examples.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ZERO_SHOT_INSTRUCTION = "Classify the given input into one of the candidate categories."
KNN_INSTRUCTION = "Represent the given input for classification."


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float]


def _labels(labels: Mapping[str, Any] | Sequence[str]) -> tuple[list[str], list[Any]]:
    if isinstance(labels, Mapping):
        names, descriptions = [str(k) for k in labels], list(labels.values())
    else:
        names = [str(x) for x in labels]
        descriptions = list(names)
    if len(names) < 2:
        raise ValueError("classification needs at least two labels")
    return names, descriptions


def zero_shot_classify(embedder: Any, items: Sequence[Any], labels: Mapping[str, Any] | Sequence[str], *,
                       instruction: str = ZERO_SHOT_INSTRUCTION, dim: int | None = None) -> list[Prediction]:
    """The best label of each input; `labels` maps a label to its description (any input item) or lists names."""
    names, descriptions = _labels(labels)
    label_vecs = embedder.embed(descriptions, dim=dim)
    item_vecs = embedder.embed(list(items), instruction=instruction, dim=dim)
    sims = item_vecs @ label_vecs.T
    out = []
    for row in sims:
        best = int(np.argmax(row))
        out.append(Prediction(names[best], float(row[best]), {n: float(s) for n, s in zip(names, row)}))
    return out


def knn_vote(similarities: np.ndarray, train_labels: Sequence[str], k: int = 5,
             weighted: bool = True) -> list[Prediction]:
    """Label of each row from its k most similar training examples (summed similarity, or counts).

    Ties go to the label whose best neighbour ranks first. Pure."""
    sims = np.atleast_2d(np.asarray(similarities, dtype=np.float64))
    if sims.shape[1] != len(train_labels):
        raise ValueError(f"{sims.shape[1]} similarity columns but {len(train_labels)} training labels")
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    k = min(k, sims.shape[1])
    out = []
    for row in sims:
        neighbours = np.argsort(-row, kind="stable")[:k]
        votes: dict[str, float] = {}
        for j in neighbours:  # insertion order = rank of each label's best neighbour
            label = str(train_labels[j])
            votes[label] = votes.get(label, 0.0) + (float(row[j]) if weighted else 1.0)
        best = max(votes, key=votes.__getitem__)  # max keeps the first of equal values
        out.append(Prediction(best, votes[best], votes))
    return out


def knn_classify(embedder: Any, train_items: Sequence[Any], train_labels: Sequence[str], items: Sequence[Any], *,
                 k: int = 5, instruction: str = KNN_INSTRUCTION, dim: int | None = None,
                 weighted: bool = True) -> list[Prediction]:
    """k-NN classification of `items` against labelled `train_items` (both embedded with `instruction`)."""
    if len(train_items) != len(train_labels):
        raise ValueError(f"{len(train_items)} training items but {len(train_labels)} labels")
    train = embedder.embed(list(train_items), instruction=instruction, dim=dim)
    queries = embedder.embed(list(items), instruction=instruction, dim=dim)
    return knn_vote(queries @ train.T, train_labels, k, weighted)

"""Recipes: the models' documented uses in a few lines each.

    zero_shot_classify, knn_classify      classification (label descriptions / labelled examples)
    cluster, cluster_embeddings           clustering (scikit-learn)
    retrieve_answers                      answer retrieval for visual question answering
    answer, build_messages, chat          retrieval-augmented generation with any OpenAI-compatible endpoint

Names are imported lazily.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Prediction": "classification",
    "zero_shot_classify": "classification",
    "knn_classify": "classification",
    "knn_vote": "classification",
    "cluster": "clustering",
    "cluster_embeddings": "clustering",
    "clustering_scores": "clustering",
    "Answer": "qa",
    "retrieve_answers": "qa",
    "Hit": "rag",
    "RAGAnswer": "rag",
    "answer": "rag",
    "build_messages": "rag",
    "chat": "rag",
    "embedding_retriever": "rag",
    "index_retriever": "rag",
    "rerank_hits": "rag",
    "demo_shapes": "demo",
    "demo_eval_collection": "demo",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

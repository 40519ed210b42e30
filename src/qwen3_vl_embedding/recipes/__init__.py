"""Recipes: the models' documented uses in a few lines each.

    zero_shot_classify, knn_classify      classification (label descriptions / labelled examples)
    cluster, cluster_embeddings           clustering (scikit-learn)
    retrieve_answers                      answer retrieval for visual question answering
    answer, build_messages, chat          retrieval-augmented generation with any OpenAI-compatible endpoint
    Passage, rerank_hits                  a retrieved document, and retrieved documents reordered by the reranker

Names are imported lazily.
"""
from __future__ import annotations

from .._lazy import lazy_exports

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
    "Passage": "rag",
    "Hit": "rag",  # Passage's earlier name
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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

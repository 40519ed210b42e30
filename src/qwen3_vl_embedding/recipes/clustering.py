"""Clustering of embeddings with scikit-learn, and the usual agreement scores against known labels."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CLUSTER_INSTRUCTION = "Represent the given input for clustering by topic."
METHODS = ("kmeans", "agglomerative")


@dataclass(frozen=True)
class Clusters:
    labels: np.ndarray
    embeddings: np.ndarray
    silhouette: float | None


def cluster_embeddings(embeddings: np.ndarray, n_clusters: int, *, method: str = "kmeans", seed: int = 0) -> np.ndarray:
    """Cluster id of each row: k-means (on unit vectors) or agglomerative with cosine distance."""
    x = np.asarray(embeddings, dtype=np.float32)
    if not 1 <= n_clusters <= len(x):
        raise ValueError(f"n_clusters must be between 1 and the number of inputs ({len(x)}), got {n_clusters}")
    if method == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(x)
    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        return AgglomerativeClustering(n_clusters=n_clusters, metric="cosine", linkage="average").fit_predict(x)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def cluster(embedder: Any, items: Sequence[Any], n_clusters: int, *, instruction: str = CLUSTER_INSTRUCTION,
            method: str = "kmeans", dim: int | None = None, seed: int = 0) -> Clusters:
    """Embed `items` with a clustering instruction and cluster them; silhouette (cosine) when defined."""
    x = embedder.embed(list(items), instruction=instruction, dim=dim)
    labels = cluster_embeddings(x, n_clusters, method=method, seed=seed)
    silhouette = None
    if 1 < len(set(labels.tolist())) < len(x):
        from sklearn.metrics import silhouette_score

        silhouette = float(silhouette_score(x, labels, metric="cosine"))
    return Clusters(labels, x, silhouette)


def clustering_scores(true_labels: Sequence[Any], predicted: Sequence[Any]) -> dict[str, float]:
    """V-measure (the MTEB clustering score), adjusted Rand index and normalised mutual information."""
    from sklearn import metrics

    return {"v_measure": float(metrics.v_measure_score(true_labels, predicted)),
            "ari": float(metrics.adjusted_rand_score(true_labels, predicted)),
            "nmi": float(metrics.normalized_mutual_info_score(true_labels, predicted))}

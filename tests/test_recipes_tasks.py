"""Classification, clustering and answer-retrieval recipes with deterministic fake embeddings."""
from __future__ import annotations

import numpy as np
import pytest
from eval_fakes import FakeEmbedder, FakeReranker

from qwen3_vl_embedding.recipes import (cluster, cluster_embeddings, clustering_scores, knn_classify, knn_vote,
                                        retrieve_answers, zero_shot_classify)


def test_zero_shot_picks_the_closest_description_with_the_instruction():
    emb = FakeEmbedder({"cat pic": [1, 0.2, 0], "dog pic": [0.1, 1, 0], "a cat": [1, 0, 0], "a dog": [0, 1, 0],
                        "a car": [0, 0, 1]}, dim=3)
    preds = zero_shot_classify(emb, ["cat pic", "dog pic"], {"cat": "a cat", "dog": "a dog", "car": "a car"},
                               instruction="Classify it.")
    assert [p.label for p in preds] == ["cat", "dog"]
    assert preds[0].scores["cat"] == pytest.approx(1 / np.linalg.norm([1, 0.2, 0]))
    assert preds[0].score == preds[0].scores["cat"] and set(preds[0].scores) == {"cat", "dog", "car"}
    assert emb.calls == [(3, None), (2, "Classify it.")]  # descriptions: default; inputs: the instruction
    with pytest.raises(ValueError, match="two labels"):
        zero_shot_classify(emb, ["cat pic"], ["cat"])


def test_knn_vote_weighting_ties_and_k():
    sims = np.array([[0.9, 0.8, 0.7, 0.1],     # k=3: a (0.9) vs b (0.8 + 0.7 = 1.5) -> b by weight, b by count
                     [0.5, 0.5, 0.1, 0.0]])    # k=2: tie a 0.5 / b 0.5 -> a, its best neighbour ranks first
    labels = ["a", "b", "b", "a"]
    assert [p.label for p in knn_vote(sims, labels, k=3)] == ["b", "b"]
    assert [p.label for p in knn_vote(sims, labels, k=2)] == ["a", "a"]  # row 0: a 0.9 beats b 0.8
    assert knn_vote(sims, labels, k=1)[0].label == "a"
    counted = knn_vote(np.array([[0.9, 0.2, 0.2, 0.8]]), labels, k=3, weighted=False)[0]
    assert counted.label == "a" and counted.scores == {"a": 2.0, "b": 1.0}
    assert knn_vote(sims, labels, k=99)[0].scores == pytest.approx({"a": 1.0, "b": 1.5})
    with pytest.raises(ValueError, match="similarity columns"):
        knn_vote(sims, ["a"], k=1)


def test_knn_classify_end_to_end_with_fake_vectors():
    emb = FakeEmbedder({"r1": [1, 0], "r2": [0.9, 0.1], "g1": [0, 1], "g2": [0.1, 0.9], "x": [0.8, 0.3],
                        "y": [0.2, 1]}, dim=2)
    preds = knn_classify(emb, ["r1", "r2", "g1", "g2"], ["red", "red", "green", "green"], ["x", "y"], k=2)
    assert [p.label for p in preds] == ["red", "green"]
    with pytest.raises(ValueError, match="4 training items but 3 labels"):
        knn_classify(emb, ["r1", "r2", "g1", "g2"], ["a", "b", "c"], ["x"])


def test_clustering_recovers_separated_groups():
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3] * 5
    x = np.concatenate([c + 0.1 * rng.normal(size=(10, 8)) for c in centres]).astype(np.float32)
    truth = np.repeat([0, 1, 2], 10)
    for method in ("kmeans", "agglomerative"):
        labels = cluster_embeddings(x, 3, method=method)
        assert clustering_scores(truth, labels) == pytest.approx({"v_measure": 1.0, "ari": 1.0, "nmi": 1.0})
    assert clustering_scores(truth, np.zeros(30))["ari"] == 0.0
    with pytest.raises(ValueError, match="method"):
        cluster_embeddings(x, 3, method="dbscan")
    with pytest.raises(ValueError, match="n_clusters"):
        cluster_embeddings(x, 31)
    emb = FakeEmbedder({f"i{i}": row for i, row in enumerate(x)}, dim=8)
    result = cluster(emb, [f"i{i}" for i in range(30)], 3, instruction="Group them.")
    assert clustering_scores(truth, result.labels)["v_measure"] == 1.0 and result.silhouette > 0.9
    assert emb.calls == [(30, "Group them.")]


def test_answer_retrieval_ranks_answers_and_reranks():
    emb = FakeEmbedder({"What colour?": [1, 0.5, 0], "red": [1, 0, 0], "blue": [0, 1, 0], "green": [0, 0, 1]}, dim=3)
    ranked = retrieve_answers(emb, "What colour?", ["green", "blue", "red"], image="pic.png")
    assert [a.answer for a in ranked] == ["red", "blue", "green"] and [a.index for a in ranked] == [2, 1, 0]
    assert emb.calls[0] == (1, "Represent the given image with the following question for answering.")
    rr = FakeReranker(lambda q, d: {"red": 0.1, "blue": 0.9, "green": 0.5}[d])
    reranked = retrieve_answers(emb, "What colour?", ["green", "blue", "red"], image="pic.png", reranker=rr, top_k=2)
    assert [a.answer for a in reranked] == ["blue", "red"] and reranked[0].score == 0.9
    assert rr.calls[0][0] == {"text": "What colour?", "image": "pic.png"} and rr.calls[0][1] == 2
    with pytest.raises(ValueError, match="candidate answer"):
        retrieve_answers(emb, "What colour?", [])

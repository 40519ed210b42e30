"""The MMEB-style runner with deterministic fakes: ranking, metrics, aggregation, reranking, reports."""
from __future__ import annotations

import json

import numpy as np
import pytest
from eval_fakes import FakeEmbedder, FakeReranker

from qwen3_vl_embedding.evaluation import EvalDataset, Query, evaluate, retrieval_metrics
from qwen3_vl_embedding.evaluation.scoring import Scorer, bytes_per_vector, rank

DOCS = {"d0": [1, 0, 0, 0], "d1": [0, 1, 0, 0], "d2": [0, 0, 1, 0], "d3": [0, 0, 0, 1]}


def global_dataset(**kw):
    vectors = {**DOCS, "q0": [0.3, 0, 1, 0], "q1": [0, 1, 0, 0.5]}
    ds = EvalDataset(name="g", category=kw.pop("category", "image"), ranking="global",
                     instruction="Find the picture.", queries=(Query("q0", "q0"), Query("q1", "q1")),
                     corpus={d: d for d in DOCS}, qrels={"q0": {"d0": 1}, "q1": {"d1": 2, "d3": 1}}, **kw)
    return ds, vectors


def test_global_ranking_metrics_and_instructions():
    ds, vectors = global_dataset()
    emb = FakeEmbedder(vectors, dim=4)
    report = evaluate(emb, [ds])
    expected_run = {"q0": ["d2", "d0", "d1", "d3"], "q1": ["d1", "d3", "d0", "d2"]}  # ties keep corpus order
    expected = retrieval_metrics(expected_run, ds.qrels, (1, 5, 10))
    result = report.datasets[0]
    assert result.metrics == pytest.approx(expected)
    assert result.metric == "hit@1" and result.score == pytest.approx(50.0)
    assert (2, "Find the picture.") in emb.calls and (4, None) in emb.calls  # queries: task; docs: default


def test_local_ranking_only_ranks_each_querys_candidates():
    vectors = {**DOCS, "q0": [0, 0, 1, 0.2], "q1": [0, 0, 1, 0.2]}
    ds = EvalDataset(name="l", category="image", ranking="local",
                     queries=(Query("q0", "q0", candidates=("d0", "d3")), Query("q1", "q1", candidates=("d1", "d2"))),
                     corpus={d: d for d in DOCS}, qrels={"q0": {"d3": 1}, "q1": {"d1": 1}})
    emb = FakeEmbedder(vectors, dim=4)
    report = evaluate(emb, [ds], ks=(1, 2))
    # q0: d3 (0.2) beats d0 (0) although d2 would win globally; q1: d2 beats d1
    assert report.datasets[0].metrics["hit@1"] == 0.5
    assert report.datasets[0].metrics["mrr@2"] == pytest.approx(0.75)
    assert report.datasets[0].candidates == 4
    assert (4, None) in emb.calls


def test_headline_metrics_and_unweighted_category_means():
    perfect = {**DOCS, "q0": [1, 0, 0, 0], "q1": [0, 1, 0, 0]}
    qrels = {"q0": {"d0": 1}, "q1": {"d1": 1}}
    wrong = {"q0": {"d3": 1}, "q1": {"d2": 1}}

    def ds(name, category, rel, metric=None):
        return EvalDataset(name=name, category=category, queries=(Query("q0", "q0"), Query("q1", "q1")),
                           corpus={d: d for d in DOCS}, qrels=rel, metric=metric, task="retrieval")

    datasets = [ds("a", "image", qrels), ds("b", "image", wrong), ds("c", "visdoc", qrels), ds("d", "video", wrong)]
    report = evaluate(FakeEmbedder(perfect, dim=4), datasets)
    assert [r.metric for r in report.datasets] == ["hit@1", "hit@1", "ndcg_linear@5", "hit@1"]
    assert [r.score for r in report.datasets] == pytest.approx([100, 0, 100, 0])
    assert report.categories["image"] == pytest.approx(50)
    assert report.categories["visdoc"] == pytest.approx(100)
    assert report.categories["image/retrieval"] == pytest.approx(50)
    assert report.all == pytest.approx(50)  # mean over the 4 datasets, not over the 3 categories (50)
    datasets[1] = ds("b", "image", wrong, metric="recall@10")
    report = evaluate(FakeEmbedder(perfect, dim=4), datasets[:3])
    assert report.datasets[1].score == pytest.approx(100) and "recall@10" in report.datasets[1].metrics
    assert report.all == pytest.approx(100)


def test_reranker_reorders_only_the_top_k_and_reports_before_and_after():
    ds, vectors = global_dataset(rerank_instruction=None)
    emb = FakeEmbedder(vectors, dim=4)
    preference = {"d0": 4, "d1": 3, "d2": 2, "d3": 1}  # the reranker likes lower ids
    rr = FakeReranker(lambda q, d: preference[d])
    report = evaluate(emb, [ds], reranker=rr, rerank_top_k=2, ks=(1, 3))
    # q0: top-2 [d2, d0] -> [d0, d2], rest [d1, d3]; q1: [d1, d3] -> [d1, d3]
    after = retrieval_metrics({"q0": ["d0", "d2", "d1", "d3"], "q1": ["d1", "d3", "d0", "d2"]}, ds.qrels, (1, 3))
    result = report.datasets[0]
    assert result.reranked_metrics == pytest.approx(after)
    assert result.score == pytest.approx(50) and result.reranked_score == pytest.approx(100)
    assert report.reranked_all == pytest.approx(100) and report.all == pytest.approx(50)
    assert [(q, n, ins) for q, n, ins in rr.calls] == [("q0", 2, "Find the picture."), ("q1", 2, "Find the picture.")]
    assert report.config["rerank_top_k"] == 2


def test_reports_markdown_and_json(tmp_path):
    ds, vectors = global_dataset()
    report = evaluate(FakeEmbedder(vectors, dim=4), [ds], reranker=FakeReranker(lambda q, d: 0.5))
    md = report.to_markdown()
    assert "| g | image | - | global | 2 | 4 | hit@1 | 50.00 | 50.00 |" in md
    assert "| **All** | 1 | 50.00 | 50.00 |" in md
    data = json.loads(open(report.write_json(str(tmp_path / "out" / "r.json"))).read())
    assert data["all"] == pytest.approx(50) and data["datasets"][0]["metrics"]["hit@1"] == 0.5
    assert data["model"] == "fake/embedder" and data["reranker"] == "fake/reranker"


def test_storage_precisions_score_as_an_index_would():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(50, 64)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[:5] + 0.05 * rng.normal(size=(5, 64)).astype(np.float32)
    bits_d, bits_q = docs > 0, queries > 0
    hamming = (bits_q[:, None, :] != bits_d[None, :, :]).sum(-1)
    np.testing.assert_array_equal(Scorer(docs, "binary").scores(queries), -hamming)
    for precision in ("float32", "float16", "int8", "uint8", "binary"):
        idx, _ = rank(queries, Scorer(docs, precision), 3)
        assert idx[:, 0].tolist() == [0, 1, 2, 3, 4], precision  # each query finds its own document
    assert Scorer(docs, "int8").nbytes == 50 * 64 and Scorer(docs, "binary").nbytes == 50 * 8
    assert [bytes_per_vector(64, p) for p in ("float32", "float16", "int8", "binary")] == [256, 128, 64, 8]
    assert bytes_per_vector(100, "binary") == 13


def test_evaluate_at_a_precision_uses_that_storage():
    ds, vectors = global_dataset()
    emb = FakeEmbedder(vectors, dim=4)
    # binary: q0 bits [1,0,1,0] -> hamming to d0..d3 = 1,3,1,3 -> [d0, d2, d1, d3]
    report = evaluate(emb, [ds], precision="binary", ks=(1,))
    assert report.datasets[0].metrics["hit@1"] == 1.0  # q0 -> d0 now first, q1: bits [0,1,0,1] -> d1 first
    assert report.config["precision"] == "binary"


def test_scores_against_selected_columns_match_the_full_matrix():
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(20, 64)).astype(np.float32)
    queries = rng.normal(size=(3, 64)).astype(np.float32)
    cols = np.array([7, 2, 19])
    for precision in ("float32", "float16", "int8", "binary"):
        scorer = Scorer(docs, precision)
        np.testing.assert_allclose(scorer.scores(queries, cols), scorer.scores(queries)[:, cols], rtol=1e-5, atol=1e-5)

"""retrieval_metrics against a brute-force reference, hand-computed cases and properties."""
from __future__ import annotations

import math
import random

import pytest
from eval_reference import brute_force
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen3_vl_embedding.evaluation import pair_labels, retrieval_metrics
from qwen3_vl_embedding.evaluation.metrics import METRICS

KS = (1, 5, 10)


def random_case(seed: int, n_queries: int = 20, n_docs: int = 30):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    run, qrels = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        labelled = rng.sample(docs, rng.randint(1, 8))
        qrels[qid] = {d: rng.choice([0, 1, 2, 3]) for d in labelled}
        if rng.random() < 0.9:  # some queries have no run at all
            run[qid] = rng.sample(docs, rng.randint(0, n_docs))
    run["not-in-qrels"] = docs[:5]
    return run, qrels


@pytest.mark.parametrize("seed", range(25))
def test_matches_brute_force_on_seeded_random_runs(seed):
    run, qrels = random_case(seed)
    ks = (1, 3, 5, 10, 20)
    ours, ref = retrieval_metrics(run, qrels, ks), brute_force(run, qrels, ks)
    assert set(ours) == {f"{m}@{k}" for m in METRICS for k in ks}
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


qrels_strategy = st.dictionaries(st.sampled_from([f"d{i}" for i in range(12)]), st.integers(-1, 3),
                                 min_size=1, max_size=12)


@st.composite
def cases(draw):
    n = draw(st.integers(1, 5))
    qrels = {f"q{i}": draw(qrels_strategy) for i in range(n)}
    if not any(g > 0 for grades in qrels.values() for g in grades.values()):
        qrels["q0"]["d0"] = 1
    run = {}
    for q in qrels:
        order = draw(st.permutations([f"d{i}" for i in range(12)]))
        run[q] = order[: draw(st.integers(0, 12))]
    ks = tuple(sorted(draw(st.sets(st.integers(1, 14), min_size=1, max_size=4))))
    return run, qrels, ks


@settings(max_examples=150, deadline=None)
@given(cases())
def test_property_equals_reference_and_stays_in_unit_interval(case):
    run, qrels, ks = case
    ours = retrieval_metrics(run, qrels, ks)
    ref = brute_force(run, qrels, ks)
    for key, value in ours.items():
        assert 0.0 <= value <= 1.0 + 1e-12, key
        assert value == pytest.approx(ref[key], abs=1e-12), key


@settings(max_examples=100, deadline=None)
@given(cases())
def test_property_cumulative_metrics_grow_with_k(case):
    run, qrels, _ = case
    ks = tuple(range(1, 13))
    ours = retrieval_metrics(run, qrels, ks)
    for m in ("hit", "recall", "mrr"):
        values = [ours[f"{m}@{k}"] for k in ks]
        assert values == sorted(values), m


@settings(max_examples=100, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_property_grades_are_looked_up_by_id_not_position(case, rnd):
    run, qrels, ks = case
    shuffled = {}
    for q, grades in qrels.items():
        items = list(grades.items())
        rnd.shuffle(items)
        shuffled[q] = dict(items)
    assert retrieval_metrics(run, shuffled, ks) == retrieval_metrics(run, qrels, ks)


@settings(max_examples=100, deadline=None)
@given(qrels_strategy.filter(lambda g: any(v > 0 for v in g.values())))
def test_property_ideal_ranking_scores_one(grades):
    relevant = sorted((d for d, g in grades.items() if g > 0), key=lambda d: -grades[d])
    others = [f"x{i}" for i in range(5)]
    out = retrieval_metrics({"q": relevant + others}, {"q": grades}, (1, 5, 10))
    for k in (1, 5, 10):
        assert out[f"ndcg_linear@{k}"] == pytest.approx(1.0)
        assert out[f"ndcg_exponential@{k}"] == pytest.approx(1.0)
        assert out[f"map@{k}"] == pytest.approx(1.0)
        assert out[f"mrr@{k}"] == 1.0
        assert out[f"recall@{k}"] == pytest.approx(min(len(relevant), k) / len(relevant))


def test_hand_computed_graded_query():
    # relevant: b (2), d (1), e (3, never retrieved); a and c are not relevant; ranking shorter than 5
    out = retrieval_metrics({"q": ["a", "b", "c", "d"]}, {"q": {"b": 2, "d": 1, "e": 3, "c": 0}}, (1, 2, 5))
    assert out["hit@1"] == 0 and out["mrr@1"] == 0 and out["ndcg_linear@1"] == 0
    assert out["hit@2"] == 1 and out["precision@2"] == 0.5 and out["recall@2"] == pytest.approx(1 / 3)
    assert out["f1@2"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert out["map@2"] == pytest.approx((1 / 2) / 2)
    assert out["precision@5"] == pytest.approx(2 / 5)
    assert out["recall@5"] == pytest.approx(2 / 3)
    assert out["f1@5"] == pytest.approx(0.5)
    assert out["map@5"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert out["mrr@5"] == 0.5
    assert out["ndcg_linear@5"] == pytest.approx((2 / math.log2(3) + 1 / math.log2(5)) / (3 + 2 / math.log2(3) + 1 / 2))
    assert out["ndcg_exponential@5"] == pytest.approx(
        (3 / math.log2(3) + 1 / math.log2(5)) / (7 + 3 / math.log2(3) + 1 / 2))


def test_mean_over_queries_and_missing_run():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}  # q3 has nothing relevant: not evaluated
    out = retrieval_metrics({"q1": ["a", "b"]}, qrels, (1,))  # q2 missing from the run: scores 0
    assert out["hit@1"] == 0.5 and out["mrr@1"] == 0.5


def test_several_graded_labels_are_paired_in_the_row_not_after_deduplication():
    # An MMEB-style row: labels with a duplicate and their grades. De-duplicating the labels through a
    # set and then pairing by position (the reference harness) would give "b" the grade 2.
    grades = pair_labels(["a", "a", "b"], [2, 2, 1])
    assert grades == {"a": 2.0, "b": 1.0}
    assert dict(zip(sorted(set(["a", "a", "b"])), [2, 2, 1])) == {"a": 2, "b": 2}  # the defect, for contrast
    out = retrieval_metrics({"q": ["b", "a"]}, {"q": grades}, (1, 2))
    assert out["ndcg_linear@1"] == pytest.approx(1 / 2)
    assert out["ndcg_linear@2"] == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert out["ndcg_exponential@1"] == pytest.approx(1 / 3)


def test_pair_labels_keeps_the_highest_grade_and_checks_lengths():
    assert pair_labels(["a", "b", "a"], [1, 2, 3]) == {"a": 3.0, "b": 2.0}
    assert pair_labels(["a", "b"]) == {"a": 1.0, "b": 1.0}
    with pytest.raises(ValueError, match="one grade per label"):
        pair_labels(["a", "b"], [1])


@pytest.mark.parametrize("ks", [(), (0,), (1, -2), (1.5,), (True,)])
def test_bad_cutoffs_are_refused(ks):
    with pytest.raises(ValueError, match="ks"):
        retrieval_metrics({"q": ["a"]}, {"q": {"a": 1}}, ks)


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="no query with a relevant"):
        retrieval_metrics({"q": ["a"]}, {"q": {"a": 0}})
    with pytest.raises(ValueError, match="appears twice"):
        retrieval_metrics({"q": ["a", "b", "a"]}, {"q": {"a": 1}})

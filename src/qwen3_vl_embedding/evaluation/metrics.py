"""Retrieval metrics at cut-offs k, as the MMEB-v2 protocol of the reference defines them. Pure Python.

For a query with ranked document ids ``R`` and graded relevance ``g(d)`` (looked up by document id;
``g(d) > 0`` means relevant, missing documents have grade 0, negative grades count as 0), and
``Rel`` its relevant documents, with ``R_k`` the first k ids of ``R``:

* hit@k          1 if ``R_k`` holds a relevant document, else 0
* precision@k    |R_k ∩ Rel| / k (a ranking shorter than k still divides by k)
* recall@k       |R_k ∩ Rel| / |Rel|
* f1@k           harmonic mean of precision@k and recall@k (0 when both are 0)
* map@k          sum of precision@i over the ranks i <= k that hold a relevant document,
                 divided by min(|Rel|, k)
* mrr@k          1 / rank of the first relevant document within k, else 0
* ndcg_linear@k  DCG / ideal DCG with gain g(d) and discount log2(rank + 1), ranks from 1; the ideal
                 ranking orders the query's relevant grades from the highest
* ndcg_exponential@k  the same with gain 2^g(d) - 1

Each metric is the mean over the queries of `qrels` that have at least one relevant document; a
query missing from the run counts as an empty ranking (all metrics 0). Queries of the run that are
not in `qrels` are ignored.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

METRICS = ("hit", "precision", "recall", "f1", "map", "mrr", "ndcg_linear", "ndcg_exponential")
DEFAULT_KS = (1, 5, 10)

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, float]]


def check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """Cut-offs as a sorted tuple of distinct positive integers."""
    out = tuple(sorted(set(ks)))
    if not out or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in out):
        raise ValueError(f"ks must be positive integers, got {ks!r}")
    return out


def _dcg(gains: Iterable[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def query_metrics(ranking: Sequence[str], grades: Mapping[str, float],
                  ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """All metrics of one query: its ranked document ids and its grades by document id."""
    ks = check_ks(ks)
    seen: set[str] = set()
    for doc in ranking[: ks[-1]]:
        if doc in seen:
            raise ValueError(f"document {doc!r} appears twice in one ranking; a ranking lists each document once")
        seen.add(doc)
    relevance = {doc: float(g) for doc, g in grades.items() if g > 0}
    if not relevance:
        raise ValueError("a query needs at least one document with grade > 0")
    ideal = sorted(relevance.values(), reverse=True)
    top = [relevance.get(doc, 0.0) for doc in ranking[: ks[-1]]]
    out: dict[str, float] = {}
    for k in ks:
        gains = top[:k]
        found = sum(1 for g in gains if g > 0)
        precision, recall = found / k, found / len(relevance)
        first = next((rank for rank, g in enumerate(gains, start=1) if g > 0), None)
        ap, hits = 0.0, 0
        for rank, g in enumerate(gains, start=1):
            if g > 0:
                hits += 1
                ap += hits / rank
        out[f"hit@{k}"] = 1.0 if found else 0.0
        out[f"precision@{k}"] = precision
        out[f"recall@{k}"] = recall
        out[f"f1@{k}"] = 2 * precision * recall / (precision + recall) if found else 0.0
        out[f"map@{k}"] = ap / min(len(relevance), k)
        out[f"mrr@{k}"] = 1.0 / first if first else 0.0
        out[f"ndcg_linear@{k}"] = _dcg(gains) / _dcg(ideal[:k])
        out[f"ndcg_exponential@{k}"] = _dcg(2.0 ** g - 1 for g in gains) / _dcg(2.0 ** g - 1 for g in ideal[:k])
    return out


def evaluated_queries(qrels: Qrels) -> list[str]:
    """The query ids the metrics average over: those with at least one relevant document."""
    return [q for q, grades in qrels.items() if any(g > 0 for g in grades.values())]


def retrieval_metrics(run: Run, qrels: Qrels, ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean of each metric over the queries, keys ``f"{metric}@{k}"``, values in [0, 1].

    `run` maps a query id to its ranked document ids (best first); `qrels` maps a query id to
    ``{doc_id: grade}``. Grades are looked up by document id, never paired by position."""
    ks = check_ks(ks)
    queries = evaluated_queries(qrels)
    if not queries:
        raise ValueError("qrels hold no query with a relevant document (grade > 0); nothing to evaluate")
    totals = dict.fromkeys((f"{m}@{k}" for m in METRICS for k in ks), 0.0)
    for q in queries:
        for name, value in query_metrics(list(run.get(q, ())), qrels[q], ks).items():
            totals[name] += value
    return {name: total / len(queries) for name, total in totals.items()}

"""An independent, deliberately plain implementation of the retrieval metrics, for the tests only.

Written from the definitions in MODEL_FACTS (Evaluation) without sharing code with
qwen3_vl_embedding.evaluation.metrics: explicit loops, numpy for the sums, a different structure.
"""
from __future__ import annotations

import numpy as np


def brute_force(run, qrels, ks):
    names = ["hit", "precision", "recall", "f1", "map", "mrr", "ndcg_linear", "ndcg_exponential"]
    per_query = []
    for qid in qrels:
        rel = {d: g for d, g in qrels[qid].items() if g > 0}
        if len(rel) == 0:
            continue
        ranking = list(run.get(qid, []))
        row = {}
        for k in ks:
            cut = ranking[:k]
            is_rel = np.array([1.0 if d in rel else 0.0 for d in cut])
            grade = np.array([float(rel.get(d, 0)) for d in cut])
            n_found = is_rel.sum() if len(cut) else 0.0
            p = n_found / k
            r = n_found / len(rel)
            row[f"hit@{k}"] = float(n_found > 0)
            row[f"precision@{k}"] = p
            row[f"recall@{k}"] = r
            row[f"f1@{k}"] = 0.0 if p + r == 0 else 2 * p * r / (p + r)
            precisions_at_hits = [is_rel[: i + 1].sum() / (i + 1) for i in range(len(cut)) if is_rel[i]]
            row[f"map@{k}"] = sum(precisions_at_hits) / min(len(rel), k)
            ranks = [i + 1 for i in range(len(cut)) if is_rel[i]]
            row[f"mrr@{k}"] = 1.0 / ranks[0] if ranks else 0.0
            disc = 1.0 / np.log2(np.arange(2, len(cut) + 2))
            ideal = np.sort(np.array(list(rel.values()), dtype=float))[::-1][:k]
            idisc = 1.0 / np.log2(np.arange(2, len(ideal) + 2))
            row[f"ndcg_linear@{k}"] = float((grade * disc).sum() / (ideal * idisc).sum())
            row[f"ndcg_exponential@{k}"] = float(((2 ** grade - 1) * disc).sum() / ((2 ** ideal - 1) * idisc).sum())
        per_query.append(row)
    return {f"{m}@{k}": float(np.mean([row[f"{m}@{k}"] for row in per_query])) for m in names for k in ks}

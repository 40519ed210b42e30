"""MMEB-v2-style evaluation of an embedder (and optionally a reranker) on local datasets.

Per dataset: embed the queries with their task instruction and the candidates with the default
instruction (through the on-disk cache when given), rank (the whole corpus for `global` datasets,
each query's own candidates for `local` ones), and compute every retrieval metric. The headline
score is hit@1 for image and video datasets and ndcg_linear@5 for visual documents; category scores
are unweighted means over their datasets and "All" is the mean over all datasets, x100, as MMEB-v2
reports them. With a reranker, each query's top-k (default 100) is reranked and the same metrics are
reported before and after.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .cache import EmbeddingCache, embed_maybe_cached
from .datasets import EvalDataset
from .metrics import DEFAULT_KS, check_ks, retrieval_metrics
from .scoring import Scorer, rank, truncate

DEFAULT_RERANK_TOP_K = 100


@dataclass(frozen=True)
class DatasetVectors:
    """A dataset's float32 embeddings: queries in dataset order, documents by `doc_ids` order."""

    queries: np.ndarray
    doc_ids: tuple[str, ...]
    docs: np.ndarray


@dataclass
class DatasetResult:
    name: str
    category: str
    task: str | None
    ranking: str
    metric: str
    queries: int
    candidates: int
    score: float
    metrics: dict[str, float]
    reranked_score: float | None = None
    reranked_metrics: dict[str, float] | None = None
    seconds: float = 0.0


@dataclass
class EvalReport:
    model: str
    config: dict[str, Any]
    datasets: list[DatasetResult]
    categories: dict[str, float] = field(default_factory=dict)
    all: float = float("nan")
    reranked_categories: dict[str, float] | None = None
    reranked_all: float | None = None
    reranker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        return path

    def to_markdown(self) -> str:
        return format_markdown(self)


# embedding and ranking -----------------------------------------------------------------------------
def _doc_ids(ds: EvalDataset) -> tuple[str, ...]:
    if ds.ranking == "global":
        return tuple(ds.corpus)
    return tuple(dict.fromkeys(c for q in ds.queries for c in q.candidates or ()))


def embed_dataset(embedder: Any, ds: EvalDataset, *, dim: int | None = None, cache: EmbeddingCache | None = None,
                  show_progress: bool | None = None) -> DatasetVectors:
    """Float32 embeddings of the queries (task instruction) and the candidates (default instruction)."""
    dim = dim or embedder.dim
    queries = np.zeros((len(ds.queries), dim), np.float32)
    groups: dict[str | None, list[int]] = defaultdict(list)
    for i, q in enumerate(ds.queries):
        groups[ds.query_instruction(q)].append(i)
    for instruction, rows in groups.items():
        queries[rows] = embed_maybe_cached(embedder, [ds.queries[i].item for i in rows], cache,
                                           instruction=instruction, dim=dim, show_progress=show_progress)
    ids = _doc_ids(ds)
    docs = embed_maybe_cached(embedder, [ds.corpus[d] for d in ids], cache, dim=dim, show_progress=show_progress)
    return DatasetVectors(queries, ids, docs)


def rank_dataset(ds: EvalDataset, vectors: DatasetVectors, *, dim: int | None = None, precision: str = "float32",
                 depth: int = 100) -> dict[str, list[str]]:
    """Each query's ranked document ids (the first `depth`), documents stored at `precision`."""
    queries, docs = truncate(vectors.queries, dim), truncate(vectors.docs, dim)
    scorer = Scorer(docs, precision)
    if ds.ranking == "global":
        idx, _ = rank(queries, scorer, depth)
        return {q.id: [vectors.doc_ids[j] for j in row] for q, row in zip(ds.queries, idx)}
    position = {d: j for j, d in enumerate(vectors.doc_ids)}
    run = {}
    for q, vec in zip(ds.queries, queries):
        cols = np.fromiter((position[c] for c in q.candidates), dtype=np.int64)
        scores = scorer.scores(vec[None], cols)[0]
        order = np.argsort(-scores, kind="stable")[:depth]
        run[q.id] = [q.candidates[j] for j in order]
    return run


def rerank_run(reranker: Any, ds: EvalDataset, run: dict[str, list[str]], top_k: int = DEFAULT_RERANK_TOP_K,
               show_progress: bool | None = None) -> dict[str, list[str]]:
    """Each query's first `top_k` documents reordered by the reranker's scores; the rest keep their order."""
    out = {}
    for q in _progress(ds.queries, show_progress, f"reranking {ds.name}"):
        ranked = run.get(q.id, [])
        head, tail = ranked[:top_k], ranked[top_k:]
        if head:
            instruction = ds.rerank_instruction or ds.query_instruction(q)
            scores = reranker.scores(q.item, [ds.corpus[d] for d in head], instruction=instruction)
            head = [head[i] for i in sorted(range(len(head)), key=lambda i: (-scores[i], i))]
        out[q.id] = head + tail
    return out


def _progress(items: Sequence[Any], show: bool | None, desc: str) -> Iterable[Any]:
    if show is False or (show is None and not sys.stderr.isatty()):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)


# aggregation ----------------------------------------------------------------------------------------
def aggregate(results: Sequence[DatasetResult], reranked: bool = False) -> tuple[dict[str, float], float]:
    """Unweighted mean headline score per category (and per category/task), and over all datasets."""
    by_group: dict[str, list[float]] = defaultdict(list)
    scores = []
    for r in results:
        score = r.reranked_score if reranked else r.score
        if score is None:
            continue
        scores.append(score)
        by_group[r.category].append(score)
        if r.task:
            by_group[f"{r.category}/{r.task}"].append(score)
    categories = {name: float(np.mean(v)) for name, v in sorted(by_group.items())}
    return categories, float(np.mean(scores)) if scores else float("nan")


def evaluate(embedder: Any, datasets: Iterable[EvalDataset], *, reranker: Any = None, dim: int | None = None,
             precision: str = "float32", ks: Iterable[int] = DEFAULT_KS,
             rerank_top_k: int = DEFAULT_RERANK_TOP_K, cache: EmbeddingCache | None = None,
             show_progress: bool | None = None) -> EvalReport:
    """Evaluate `embedder` (and `reranker` on its top-k) on `datasets`; scores x100."""
    datasets = list(datasets)
    ks = check_ks(ks)
    bad_top_k = isinstance(rerank_top_k, bool) or not isinstance(rerank_top_k, int) or rerank_top_k < 1
    if reranker is not None and bad_top_k:
        raise ValueError(f"rerank_top_k must be a positive integer, got {rerank_top_k!r}")
    results = []
    for ds in datasets:
        start = time.perf_counter()
        metric_k = int(ds.headline_metric.rsplit("@", 1)[1])
        all_ks = check_ks((*ks, metric_k))
        vectors = embed_dataset(embedder, ds, dim=dim, cache=cache, show_progress=show_progress)
        depth = max(all_ks[-1], rerank_top_k if reranker is not None else 0)
        run = rank_dataset(ds, vectors, dim=dim, precision=precision, depth=depth)
        try:
            metrics = retrieval_metrics(run, ds.qrels, all_ks)
        except ValueError as e:
            raise ValueError(f"dataset {ds.name!r}: {e}") from None
        result = DatasetResult(ds.name, ds.category, ds.task, ds.ranking, ds.headline_metric, len(ds.queries),
                               len(vectors.doc_ids), 100 * metrics[ds.headline_metric], metrics)
        if reranker is not None:
            after = retrieval_metrics(rerank_run(reranker, ds, run, rerank_top_k, show_progress), ds.qrels, all_ks)
            result.reranked_metrics, result.reranked_score = after, 100 * after[ds.headline_metric]
        result.seconds = time.perf_counter() - start
        results.append(result)
    categories, overall = aggregate(results)
    config = {"dim": dim or embedder.dim, "precision": precision, "ks": list(ks),
              "rerank_top_k": rerank_top_k if reranker is not None else None}
    report = EvalReport(embedder.name, config, results, categories, overall,
                        reranker=reranker.name if reranker is not None else None)
    if reranker is not None:
        report.reranked_categories, report.reranked_all = aggregate(results, reranked=True)
    return report


# reporting -----------------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.2f}"


def format_markdown(report: EvalReport) -> str:
    """Two markdown tables: one row per dataset, then category means and All."""
    reranked = report.reranked_all is not None
    head = "| dataset | category | task | ranking | queries | candidates | metric | score |" + \
        (" reranked |" if reranked else "")
    lines = [f"Model: {report.model}, dim {report.config['dim']}, {report.config['precision']}"
             + (f"; reranker {report.reranker} on the top {report.config['rerank_top_k']}" if reranked else ""),
             "", head, "|" + "---|" * (head.count("|") - 1)]
    for r in report.datasets:
        row = f"| {r.name} | {r.category} | {r.task or '-'} | {r.ranking} | {r.queries} | {r.candidates} | " \
              f"{r.metric} | {_fmt(r.score)} |"
        lines.append(row + (f" {_fmt(r.reranked_score)} |" if reranked else ""))
    lines += ["", "| category | datasets | score |" + (" reranked |" if reranked else ""),
              "|---|---|---|" + ("---|" if reranked else "")]
    counts: dict[str, int] = defaultdict(int)
    for r in report.datasets:
        counts[r.category] += 1
        if r.task:
            counts[f"{r.category}/{r.task}"] += 1
    for name, score in report.categories.items():
        after = (report.reranked_categories or {}).get(name)
        lines.append(f"| {name} | {counts[name]} | {_fmt(score)} |" + (f" {_fmt(after)} |" if reranked else ""))
    lines.append(f"| **All** | {len(report.datasets)} | {_fmt(report.all)} |"
                 + (f" {_fmt(report.reranked_all)} |" if reranked else ""))
    return "\n".join(lines)

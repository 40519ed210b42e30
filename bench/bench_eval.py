"""Evaluation harness costs: metric throughput, a cold vs warm (cached) evaluation, the dim x precision sweep.

    .venv/bin/python bench/bench_eval.py --workload metrics     # retrieval_metrics on 10,000 queries x 100 ranks
    .venv/bin/python bench/bench_eval.py --workload cache       # evaluate twice through the on-disk cache
    .venv/bin/python bench/bench_eval.py --workload sweep       # rank 1,000 queries over 100,000 documents per setting
    .venv/bin/python bench/bench_eval.py --workload all [--quick] [--shape small]

"cache": 4 generated datasets (text->image, image->label (local), text->video frames, text->page),
embedded with a random checkpoint of --shape; "no cache" evaluates without one, "cold" fills an
empty cache, "warm" is a second run (loads vectors, ranks, scores). "sweep": ranking cost of each
(dim, precision) from precomputed float vectors, as `qvl eval --sweep` does after its one embedding pass.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time

import numpy as np

from common import checkpoint, machine, markdown_table, write_result


def bench_metrics(quick: bool) -> list[dict]:
    from qwen3_vl_embedding.evaluation import retrieval_metrics

    n_queries, depth = (1000, 100) if quick else (10_000, 100)
    rng = random.Random(0)
    docs = [f"d{i}" for i in range(5000)]
    run = {f"q{i}": rng.sample(docs, depth) for i in range(n_queries)}
    qrels = {q: {d: rng.choice([1, 2, 3]) for d in rng.sample(ranked[:50], 3) + rng.sample(docs, 2)}
             for q, ranked in run.items()}
    start = time.perf_counter()
    retrieval_metrics(run, qrels, (1, 5, 10, 100))
    seconds = time.perf_counter() - start
    return [{"workload": "metrics", "setting": f"{n_queries} queries x {depth} ranks, 4 cut-offs",
             "seconds": seconds, "per_second": n_queries / seconds}]


def generated_collection(root: str, n: int) -> list:
    """Four datasets of `n` queries each, MMEB kinds, from the demo generator repeated with variants."""
    from qwen3_vl_embedding.evaluation import EvalDataset, Query, load_datasets
    from qwen3_vl_embedding.recipes.demo import demo_eval_collection

    def variant(item, r: int):  # a distinct input, so that no two queries share an embedding
        if isinstance(item, str):
            return f"{item} (variant {r})"
        return {**item, "text": f"{item.get('text', '')} (variant {r})".strip()}

    demo_eval_collection(root, colors=("red", "green", "blue", "yellow"))
    out = []
    for ds in load_datasets(root):  # grow each dataset by repeating its queries as distinct variants
        reps = max(1, n // len(ds.queries))
        queries = tuple(Query(f"{q.id}-{r}", variant(q.item, r), q.instruction, q.candidates)
                        for r in range(reps) for q in ds.queries)
        qrels = {f"{q.id}-{r}": ds.qrels[q.id] for r in range(reps) for q in ds.queries}
        out.append(EvalDataset(ds.name, ds.category, queries, ds.corpus, qrels, ds.ranking, ds.instruction, ds.task))
    return out


def bench_cache(quick: bool, shape: str) -> list[dict]:
    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.evaluation import EmbeddingCache, evaluate

    root = tempfile.mkdtemp(prefix="qvl-bench-eval-")
    try:
        datasets = generated_collection(os.path.join(root, "data"), 24 if quick else 240)
        embedder = Qwen3VLEmbedder(checkpoint(shape))
        n_items = sum(len(d.queries) + len(d.corpus) for d in datasets)
        embedder.embed(["warm-up", next(iter(datasets[0].corpus.values()))], show_progress=False)
        rows = []
        for label, cache in (("no cache", None), ("cold cache", EmbeddingCache(os.path.join(root, "c"))),
                             ("warm cache", EmbeddingCache(os.path.join(root, "c")))):
            start = time.perf_counter()
            report = evaluate(embedder, datasets, cache=cache, show_progress=False)
            rows.append({"workload": "cache", "setting": f"{label}, {n_items} items, {shape}",
                         "seconds": time.perf_counter() - start, "all": report.all})
        assert rows[1]["all"] == rows[2]["all"], "cached vectors must give the same scores"
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_sweep(quick: bool) -> list[dict]:
    from qwen3_vl_embedding.evaluation.scoring import Scorer, rank, truncate

    n_docs, n_queries, full = (10_000, 200, 1024) if quick else (100_000, 1000, 2048)
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(n_docs, full)).astype(np.float32)
    queries = docs[:n_queries] + 0.5 * rng.normal(size=(n_queries, full)).astype(np.float32)
    rows = []
    for dim in sorted({256, 1024, full}):
        d, q = truncate(docs, dim), truncate(queries, dim)
        for precision in ("float32", "float16", "int8", "binary"):
            start = time.perf_counter()
            scorer = Scorer(d, precision)
            idx, _ = rank(q, scorer, 10)
            seconds = time.perf_counter() - start
            recall = float(np.mean(idx[:, 0] == np.arange(n_queries)))
            rows.append({"workload": "sweep", "setting": f"dim {dim} {precision}, {n_queries} x {n_docs}",
                         "seconds": seconds, "per_second": n_queries / seconds, "hit@1": recall})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=["metrics", "cache", "sweep", "all"], default="all")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--shape", default="small", help="random checkpoint shape for 'cache' (tiny, small, 2b, 8b)")
    args = ap.parse_args()
    rows: list[dict] = []
    if args.workload in ("metrics", "all"):
        rows += bench_metrics(args.quick)
    if args.workload in ("cache", "all"):
        rows += bench_cache(args.quick, args.shape)
    if args.workload in ("sweep", "all"):
        rows += bench_sweep(args.quick)
    print(markdown_table(rows, ["workload", "setting", "seconds", "per_second", "hit@1", "all"]))
    m = machine()
    print(f"\n{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, torch {m['torch']}, gpu {m['gpu']}")
    print(write_result(f"eval-{args.workload}{'-quick' if args.quick else ''}", rows, {"args": vars(args)}))


if __name__ == "__main__":
    main()

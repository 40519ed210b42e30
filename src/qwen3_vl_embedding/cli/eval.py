"""`qvl eval`: MMEB-v2-style or BEIR-style evaluation from local files; prints a markdown table, writes JSON."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .common import EXIT_OK, load_embedder, load_reranker, show_progress

EPILOG = """\
examples:
  qvl eval ./my_datasets --model ./models/Qwen3-VL-Embedding-2B
  qvl eval ./my_datasets --rerank --reranker Qwen/Qwen3-VL-Reranker-2B --top-k 100 -o result.json
  qvl eval ./scifact --dim 512 --precision int8                 # a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)
  qvl eval ./scifact --sweep --sweep-dims 256,512,1024 --plot sweep.png

Layouts: see docs/evaluation.md. Embeddings are cached under QVL_CACHE_DIR (default
~/.cache/qvl/embeddings), so a second run only ranks and scores.
"""


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("eval", parents=[common], help="evaluate on local datasets (MMEB-v2 style or BEIR)",
                              description="Evaluate the embedder (and optionally the reranker) on local datasets.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a dataset folder (dataset.json), a folder of them, or a BEIR folder")
    p.add_argument("-o", "--output", default="qvl-eval.json", help="JSON result file [default: qvl-eval.json]")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.add_argument("--ks", type=_ints, default=[1, 5, 10], help="metric cut-offs [default: 1,5,10]")
    p.add_argument("--rerank", action="store_true", help="also rerank each query's top-k with --reranker")
    p.add_argument("--top-k", type=int, default=100, help="documents reranked per query [default: 100]")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache folder [QVL_CACHE_DIR, default ~/.cache/qvl/embeddings]")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached embeddings")
    g = p.add_argument_group("BEIR folders")
    g.add_argument("--split", default="test", help="qrels split to evaluate [default: test]")
    g.add_argument("--instruction", default=None, help="query instruction for BEIR datasets [default: the model's]")
    g = p.add_argument_group("dim x precision sweep")
    g.add_argument("--sweep", action="store_true", help="score every (dim, precision) instead of one setting")
    g.add_argument("--sweep-dims", type=_ints, default=None, help="dims [default: 64, 128, ... up to the model's size]")
    g.add_argument("--sweep-precisions", type=_words, default=["float32", "float16", "int8", "binary"],
                   help="precisions [default: float32,float16,int8,binary]")
    g.add_argument("--plot", default="qvl-sweep.png",
                   help="PNG of score against storage, a panel per dataset [default: qvl-sweep.png]")
    p.set_defaults(handler=run)


def load_paths(args: argparse.Namespace) -> list:
    from ..evaluation.beir import is_beir_folder, load_beir
    from ..evaluation.datasets import load_datasets

    datasets = []
    for path in args.paths:
        if is_beir_folder(path):
            datasets.append(load_beir(path, args.split, instruction=args.instruction))
        else:
            datasets += load_datasets(path)
    return datasets


def _info(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.cache import EmbeddingCache

    if args.top_k < 1:
        raise ValueError(f"--top-k must be positive, got {args.top_k}")
    datasets = load_paths(args)  # fail on a bad layout before loading any model
    embedder = load_embedder(args)
    cache = None if args.no_cache else EmbeddingCache(args.cache_dir)
    if args.sweep:
        return run_sweep(args, embedder, datasets, cache)
    from ..evaluation.runner import evaluate

    reranker = load_reranker(args) if args.rerank else None
    report = evaluate(embedder, datasets, reranker=reranker, dim=args.dim, precision=args.precision, ks=args.ks,
                      rerank_top_k=args.top_k, cache=cache, show_progress=show_progress(args))
    report.write_json(args.output)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_markdown())
    _info(args, f"qvl: wrote {args.output}")
    return EXIT_OK


def run_sweep(args: argparse.Namespace, embedder: Any, datasets: list, cache: Any) -> int:
    from dataclasses import asdict

    from ..evaluation.beir import plot_sweeps, sweep, sweep_markdown

    results, panels = {}, []
    for ds in datasets:
        points = sweep(embedder, ds, dims=args.sweep_dims, precisions=args.sweep_precisions, ks=args.ks,
                       cache=cache, show_progress=show_progress(args))
        panels.append((points, f"{ds.name}: {ds.headline_metric} against storage", ds.headline_metric))
        results[ds.name] = {"metric": ds.headline_metric, "plot": args.plot, "points": [asdict(p) for p in points]}
        if not args.json:
            print(f"## {ds.name} ({ds.headline_metric} x100)\n\n{sweep_markdown(points, ds.headline_metric)}\n")
    plot_sweeps(panels, args.plot)  # one file, exactly the one named: a panel per dataset
    _info(args, f"qvl: wrote {args.plot}" + (f" ({len(panels)} datasets, a panel each)" if len(panels) > 1 else ""))
    payload = {"model": embedder.name, "sweep": results}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
    if args.json:
        print(json.dumps(payload, indent=2))
    _info(args, f"qvl: wrote {args.output}")
    return EXIT_OK

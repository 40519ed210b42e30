"""Evaluation: write a small generated MMEB-style collection, evaluate it, print the table, write JSON.

    python examples/evaluation_demo.py                                          # released 2B model
    python examples/evaluation_demo.py --model ./models/Qwen3-VL-Embedding-2B --reranker ./models/Qwen3-VL-Reranker-2B
    python examples/evaluation_demo.py --data ./demo-eval --only-write && qvl eval ./demo-eval

The collection has one dataset per MMEB-v2 kind (image retrieval, image classification, video
retrieval, visual documents) in the layout of docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import os
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("QVL_MODEL", "Qwen/Qwen3-VL-Embedding-2B"))
    ap.add_argument("--reranker", default=None, help="also rerank each query's top-k with this reranker")
    ap.add_argument("--data", default=None, help="where to write the collection (default: a temporary folder)")
    ap.add_argument("--output", default=None, help="JSON result (default: <data>/result.json)")
    ap.add_argument("--only-write", action="store_true", help="write the collection and stop")
    ap.add_argument("--dim", type=int, default=None)
    ap.add_argument("--precision", default="float32")
    args = ap.parse_args()

    from qwen3_vl_embedding.recipes import demo_eval_collection

    data = args.data or tempfile.mkdtemp(prefix="qvl-eval-")
    demo_eval_collection(data)
    if args.only_write:
        print(f"wrote {data}; evaluate it with: qvl eval {data} --model {args.model}")
        return

    from qwen3_vl_embedding import Qwen3VLEmbedder, Qwen3VLReranker
    from qwen3_vl_embedding.evaluation import EmbeddingCache, evaluate, load_datasets

    embedder = Qwen3VLEmbedder(args.model)
    reranker = Qwen3VLReranker(args.reranker) if args.reranker else None
    report = evaluate(embedder, load_datasets(data), reranker=reranker, dim=args.dim, precision=args.precision,
                      cache=EmbeddingCache(os.path.join(data, ".cache")))
    print(report.to_markdown())
    print(f"\nwrote {report.write_json(args.output or os.path.join(data, 'result.json'))}")


if __name__ == "__main__":
    main()

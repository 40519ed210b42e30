"""`qvl rerank QUERY DOC...`: score documents against a query with the reranker; print the ranking."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import EXIT_OK, EXIT_PARTIAL, load_reranker, media_options, show_progress

EPILOG = """\
examples:
  qvl rerank "a dog on a beach" photos/*.jpg
  qvl rerank "which slide shows revenue?" report.pdf -k 3          # every page of the PDF is a document
  qvl rerank --image query.jpg candidates.jsonl --json    # with --query/--image/--video all are documents
  qvl rerank "capital of France" --doc "Paris is the capital." --doc "Berlin is in Germany."

Documents: files (images, videos, text files, PDF pages), .jsonl files (one library input per line) or
--doc TEXT. --json prints [{"rank", "index", "score", "document"}] best first.
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("rerank", parents=[common], help="rank documents against a query with the reranker",
                              description="Score (query, document) pairs with Qwen3-VL-Reranker.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="*", metavar="[QUERY] DOC",
                   help="the query text, then document files or .jsonl files (all documents when --query, "
                        "--image or --video is given)")
    p.add_argument("--query", default=None, metavar="TEXT", help="query text (instead of the first argument)")
    p.add_argument("--image", default=None, metavar="FILE", help="query image")
    p.add_argument("--video", default=None, metavar="FILE", help="query video")
    p.add_argument("--doc", action="append", default=[], metavar="TEXT", help="a text document (repeatable)")
    p.add_argument("-k", "--top-k", type=int, default=None, help="show the best k [default: all]")
    p.add_argument("--instruction", default=None, help="task instruction [default: the reranker's]")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    media_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .display import display_path, snippet, table
    from ..index.ingest import close_documents_quietly
    from ..index.retrieval import SearchQuery
    from .embed import read_inputs

    items = list(args.items)
    text = args.query
    if text is None and not (args.image or args.video):
        if not items:
            raise ValueError("no query: qvl rerank QUERY DOC... (or --query, --image, --video)")
        text = items.pop(0)
    query = SearchQuery(text, args.image, args.video)
    if args.top_k is not None and args.top_k < 1:
        raise ValueError("-k must be positive")
    reranker = load_reranker(args)
    docs = read_inputs(items, args.doc, reranker.max_pixels)
    if not docs:
        raise ValueError("no documents: pass files, .jsonl files or --doc TEXT")
    try:
        results = reranker.rerank(query.item(), [d for _, d in docs], top_k=args.top_k,
                                  instruction=args.instruction, show_progress=show_progress(args), on_error="skip")
    finally:
        close_documents_quietly()
    failures = reranker.last_stats.failures
    labels = [label for label, _ in docs]
    if args.json:
        print(json.dumps([{"rank": r, "index": res.index, "score": round(res.score, 6), "document": labels[res.index]}
                          for r, res in enumerate(results, 1)], indent=2, ensure_ascii=False))
    else:
        print(table([[str(r), f"{res.score:.4f}", snippet(display_path(labels[res.index]), 80)]
                     for r, res in enumerate(results, 1)], ["#", "score", "document"], right=(0, 1)))
    for f in failures:
        print(f"qvl: skipped {labels[f.index]}: {f.cause}", file=sys.stderr)
    return EXIT_PARTIAL if failures else EXIT_OK


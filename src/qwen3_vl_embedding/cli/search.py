"""`qvl search QUERY --db DIR`: search an index by text, image, video or a mixture; optionally rerank."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .common import EXIT_OK, load_embedder, load_reranker, media_options

EPILOG = """\
examples:
  qvl search "a dog on a beach at sunset" --db ~/qvl-index
  qvl search --image query.jpg --db ~/qvl-index -k 20
  qvl search "the slide with the revenue chart" --db idx --filter modality=pdf --rerank
  qvl search "goal" --db idx --filter modality=video --filter 'path=matches/*' --json

--json prints a list of {"path", "score", "modality", "page" (PDF, from 1), "start"/"end" (video, seconds),
"chunk" (text, from 0), "text" (text chunks), "similarity" (with --rerank), "date" (ISO 8601: a photo's
capture time, else the file's mtime), "id"}; see docs/index.md.
"""


RERANK_CANDIDATES = 50


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("search", parents=[common], help="search an index by text, image or video",
                              description="Search a local index built by `qvl index`.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("query", nargs="?", default=None, help="query text")
    p.add_argument("--image", default=None, metavar="FILE", help="query image (alone or with the text)")
    p.add_argument("--video", default=None, metavar="FILE", help="query video (alone or with the text)")
    p.add_argument("--db", default=os.environ.get("QVL_DB") or None, metavar="DIR",
                   help="index folder, milvus://HOST:PORT/COLLECTION or milvus-lite://PATH.db/COLLECTION [QVL_DB]")
    p.add_argument("-k", "--top-k", type=int, default=10, metavar="K", help="results to show [default: 10]")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="modality=image,video,pdf,text or path=GLOB; repeat to combine (same key: any of)")
    p.add_argument("--rerank", action="store_true", help="rerank the top candidates with --reranker")
    p.add_argument("--rerank-top", type=int, default=RERANK_CANDIDATES, metavar="N",
                   help=f"candidates taken from the index for --rerank [default: {RERANK_CANDIDATES}]")
    p.add_argument("--instruction", default=None, metavar="TEXT",
                   help="query instruction [default: the one stored in the index]")
    p.add_argument("--nprobe", type=int, default=None, metavar="N",
                   help="approximate index lists scanned per query: more is slower and finds more [default: auto]")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    media_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..index import retrieval
    from ..index.backends import open_store
    from ..index.compat import check_compatible
    from ..index.records import parse_filters
    from .display import display_path, hits_table

    if not args.db:
        raise ValueError("which index? pass --db DIR (or set QVL_DB)")
    if args.top_k < 1 or args.rerank_top < 1:
        raise ValueError("-k and --rerank-top must be positive")
    query = retrieval.SearchQuery(args.query, args.image, args.video)
    filters = parse_filters(args.filter)
    with open_store(args.db) as store:
        check_compatible(store.meta, args.model, args.dim)  # before loading a model for nothing
        embedder = load_embedder(args)
        wanted = max(args.top_k, args.rerank_top) if args.rerank else args.top_k
        hits = retrieval.search(store, embedder, query, wanted, filters, args.instruction, nprobe=args.nprobe)
    if args.rerank and hits:
        del embedder
        hits, failed = retrieval.rerank(load_reranker(args), query, hits, args.top_k)
        for hit, reason in failed:
            print(f"qvl: could not rerank {display_path(hit.record.path)} ({hit.record.locator() or 'image'}): "
                  f"{reason}", file=sys.stderr)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], indent=2, ensure_ascii=False))
    elif hits:
        print(hits_table(hits, reranked=args.rerank))
    elif not args.quiet:
        print("qvl: no results" + (" (the filters match nothing)" if not filters.empty else ""), file=sys.stderr)
    return EXIT_OK

"""`qvl search QUERY`: search an index by text, image, video, a mixture, or a sum of them; optionally rerank."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .common import (EXIT_OK, RESULTS_HELP, add_db_option, add_result_options, add_server_option, db_location,
                     follow_index_weights, index_embedder, load_reranker, media_options, print_hits, result_filters,
                     select_hits, status)

EPILOG = f"""\
examples:
  qvl search "a dog on a beach at sunset"
  qvl search --image query.jpg -k 20 --db ~/qvl-index
  qvl search "the slide with the revenue chart" --filter modality=pdf --rerank
  qvl search "goal" --filter modality=video --filter 'path=matches/*' --json
  qvl search "golden retriever" --add 0.5:./pool.jpg --subtract fruit     # query arithmetic
  qvl search "birthday cake" --after 2023-01-01 --before 2024 --sort date -f | xargs -r -d '\n' ls -l

--add/--subtract QUERY (repeatable): QUERY is a text, or a file (its vector when the index holds it, else
its embedding as a document), with an optional W: weight (--add 0.5:./pool.jpg); the main query has weight
1. The combined vector is normalised; files used as queries (--image and --video too) are left out of the
results.
{RESULTS_HELP}
--json prints a list of {{"path", "score", "modality", "page" (PDF, from 1), "start"/"end" (video, seconds),
"chunk" (text, from 0), "text" (text chunks), "similarity" (with --rerank), "date" (ISO 8601), "id"}}.
"""

RERANK_CANDIDATES = 50


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("search", parents=[common], help="search an index by text, image or video",
                              description="Search an index built by `qvl index`.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("query", nargs="?", default=None, help="query text")
    p.add_argument("--image", default=None, metavar="FILE", help="query image (alone or with the text)")
    p.add_argument("--video", default=None, metavar="FILE", help="query video (alone or with the text)")
    p.add_argument("--add", action="append", default=[], metavar="QUERY",
                   help="add a text or a file to the query, with an optional W: weight (repeatable)")
    p.add_argument("--subtract", action="append", default=[], metavar="QUERY",
                   help="subtract a text or a file from the query, with an optional W: weight (repeatable)")
    add_db_option(p)
    add_server_option(p)
    add_result_options(p)
    p.add_argument("--rerank", action="store_true", help="rerank the top candidates with --reranker")
    p.add_argument("--rerank-top", type=int, default=RERANK_CANDIDATES, metavar="N",
                   help=f"candidates taken from the index for --rerank [default: {RERANK_CANDIDATES}]")
    p.add_argument("--instruction", default=None, metavar="TEXT",
                   help="query instruction [default: the one stored in the index]")
    p.add_argument("--nprobe", type=int, default=None, metavar="N",
                   help="approximate index lists scanned per query: more is slower and finds more [default: auto]")
    media_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..index import retrieval
    from ..index.backends import open_store
    from ..index.compat import check_compatible, index_model
    from .display import display_path

    if args.rerank_top < 1:
        raise ValueError("--rerank-top must be positive")
    filters = result_filters(args)
    terms = [retrieval.parse_term(t) for t in args.add] + [retrieval.parse_term(t, -1.0) for t in args.subtract]
    query = None
    if args.query or args.image or args.video or not terms:
        query = retrieval.SearchQuery(args.query, args.image, args.video)
    if args.rerank and query is None:
        raise ValueError("--rerank needs a main query (a text, --image or --video) for the reranker to read")
    own_files = [t.path for t in terms if t.path] + [os.path.realpath(p) for p in (args.image, args.video) if p]
    db, _ = db_location(args)
    with open_store(db) as store:
        check_compatible(store.meta, args.model or store.meta.model, args.dim)  # before loading a model for nothing
        follow_index_weights(args, store.meta)
        vector = retrieval.combined_vector(
            store, lambda: index_embedder(args, args.model or index_model(store)), terms, query, args.instruction,
            args.dim)
        wanted = max(args.top_k, args.rerank_top) if args.rerank else args.top_k
        hits = retrieval.search_excluding(store, vector, wanted, filters, exclude_paths=own_files, nprobe=args.nprobe)
    if args.rerank and hits:
        status(args, f"qvl: loading reranker {args.reranker} ...")
        hits, failed = retrieval.rerank(load_reranker(args), query, hits, args.top_k)
        for hit, reason in failed:
            print(f"qvl: could not rerank {display_path(hit.record.path)} ({hit.record.locator() or 'image'}): "
                  f"{reason}", file=sys.stderr)
    hits = select_hits(args, hits)
    print_hits(args, hits, reranked=args.rerank,
               none="no results" + (" (the filters match nothing)" if not filters.empty else "")
               + (f" scoring at least {args.min_score}" if args.min_score is not None else ""))
    return EXIT_OK

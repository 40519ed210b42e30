"""`qvl similar PATH`: the records nearest to a file, PDF page or video clip: "more like this".

An indexed item's stored vector is the query, so no model is loaded; a file the index does not hold is
embedded (as a document, like the index's records) with the index's model or through --server.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from .common import (EXIT_OK, RESULTS_HELP, add_db_option, add_result_options, add_server_option, db_location,
                     follow_index_weights, index_embedder, media_options, print_hits, result_filters, select_hits)

EPILOG = f"""\
examples:
  qvl similar ~/Pictures/2023/beach.jpg
  qvl similar report.pdf --page 3 --filter modality=pdf
  qvl similar match.mp4 --at 75 -k 5 --json
  qvl similar photo.jpg --min-score 0.9 -f

A file with several records (the pages of a PDF, the clips of a video, the chunks of a text) is
represented by the mean of their vectors unless --page, --at or --chunk picks one. The item itself is
not among the results (with none of them picked: no record of the file).
{RESULTS_HELP}
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("similar", parents=[common], help="items most like a file, page or clip",
                              description="Find the items of an index most like a file (more like this).",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", metavar="PATH", help="an image, video, PDF or text file (indexed or not)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--page", type=int, default=None, metavar="N", help="a page of a PDF (from 1)")
    which.add_argument("--at", type=float, default=None, metavar="SECONDS", help="the clip of a video at this time")
    which.add_argument("--chunk", type=int, default=None, metavar="N", help="a chunk of a text file (from 0)")
    add_db_option(p)
    add_server_option(p)
    add_result_options(p)
    p.add_argument("--nprobe", type=int, default=None, metavar="N",
                   help="approximate index lists scanned per query [default: auto]")
    media_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..index import retrieval
    from ..index.backends import open_store
    from ..index.compat import check_compatible, index_model
    from ..index.ingest import UnitError

    filters = result_filters(args)
    path = os.path.realpath(os.path.expanduser(args.path))
    db, _ = db_location(args)
    with open_store(db) as store:
        check_compatible(store.meta, args.model or store.meta.model, args.dim)
        follow_index_weights(args, store.meta)
        held = retrieval.item_vector(store, path, args.page, args.at, args.chunk)
        if held is not None:
            vector, own = held
        elif not os.path.isfile(path):
            raise FileNotFoundError(f"no such file: {args.path} (and the index holds no record of it)")
        else:
            embedder = index_embedder(args, args.model or index_model(store))
            try:
                chosen = retrieval.pick_units(retrieval.file_units(path, store, embedder), args.page, args.at,
                                              args.chunk)
            except UnitError as e:
                raise ValueError(f"{args.path}: {e}") from None
            vector = retrieval.mean_vector(retrieval.embed_checked(
                store, embedder, retrieval.document_inputs(store, chosen), args.dim))
            own = []
        whole_file = [path] if args.page is None and args.at is None and args.chunk is None else []
        hits = retrieval.search_excluding(store, vector, args.top_k, filters, exclude_ids=own,
                                          exclude_paths=whole_file, nprobe=args.nprobe)
    print_hits(args, select_hits(args, hits), none="no similar items" + (
        " (the filters match nothing)" if not filters.empty else ""))
    return EXIT_OK

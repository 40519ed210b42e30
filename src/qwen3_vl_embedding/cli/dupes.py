"""`qvl dupes`: groups of near-duplicate items in an index (no model is loaded)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..index.duplicates import DEFAULT_NEIGHBOURS, DEFAULT_THRESHOLD
from .common import EXIT_OK, add_db_option, db_location, show_progress

EPILOG = f"""\
examples:
  qvl dupes                                  # the default index, cosine >= {DEFAULT_THRESHOLD}
  qvl dupes --threshold 0.98 --filter modality=image --json
  qvl dupes --db ~/qvl-index -f | less       # the paths of each group, groups apart by an empty line

Two items are near-duplicates when the cosine similarity of their stored vectors is at least
--threshold: exact copies score 1.0 and copies re-saved at another JPEG quality just below it; lower
it (0.90) to group shots of the same scene too. Items of one file (pages, clips) are not paired with
each other unless --same-file. Groups are listed largest first; in each, the items by path, each with
its similarity to the first. --json prints [{{"size", "min_score", "items": [search result objects]}}].
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("dupes", parents=[common], help="groups of near-duplicate items in an index",
                              description="List groups of near-duplicates: items whose vectors are almost the same.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_db_option(p)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="COSINE",
                   help=f"the least cosine similarity of near-duplicates [default: {DEFAULT_THRESHOLD}]")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="only items matching: modality=image,... or path=GLOB (as qvl search)")
    p.add_argument("--same-file", action="store_true", help="also pair pages or clips of one file")
    p.add_argument("--neighbours", type=int, default=DEFAULT_NEIGHBOURS, metavar="K",
                   help=f"nearest items compared per item in a large index [default: {DEFAULT_NEIGHBOURS}]")
    p.add_argument("-f", "--filepath-only", action="store_true",
                   help="print only paths: each group's files, one per line, groups apart by an empty line")
    p.add_argument("--json", action="store_true", help="print the groups as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..index.backends import open_store
    from ..index.duplicates import duplicate_groups
    from ..index.indexer import progress_bar
    from ..index.records import parse_filters
    from .display import hits_table

    filters = parse_filters(args.filter)
    db, _ = db_location(args)
    bar = progress_bar(False if args.filepath_only else show_progress(args), "comparing", "item")
    try:
        with open_store(db) as store:
            groups = duplicate_groups(store, args.threshold, filters, args.neighbours, args.same_file, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps([g.to_json() for g in groups], indent=2, ensure_ascii=False))
    elif args.filepath_only:
        print("\n\n".join("\n".join(dict.fromkeys(h.record.path for h in g.hits)) for g in groups))
    else:
        for i, group in enumerate(groups, 1):
            print(f"group {i}: {len(group.hits)} items, similarity >= {group.min_score:.4f}")
            print("\n".join("  " + line for line in hits_table(group.hits, numbers=False).splitlines()[1:]))
        if not args.quiet:
            items = sum(len(g.hits) for g in groups)
            print(f"qvl: {len(groups)} group(s) of near-duplicates, {items} items (cosine >= {args.threshold})",
                  file=sys.stderr)
    return EXIT_OK

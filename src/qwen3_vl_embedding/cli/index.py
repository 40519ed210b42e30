"""`qvl index PATH...`: embed folders of images, videos, PDFs and texts into an index (--db, QVL_DB, or the
per-user default). The writer lock is taken first; the model loads only when something must be embedded."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..budgets import PHOTO_MAX_PIXELS
from ..constants import EMBEDDING_2B, MAX_PIXELS
from .common import (EXIT_OK, add_db_option, add_server_option, db_location, follow_index_weights, index_embedder,
                     media_options, media_policy, model_kwargs, show_progress, status, with_limit_hint)

EPILOG = """\
examples:
  qvl index ~/Pictures ~/Documents                 # into the default index (qvl info says where)
  qvl index ~/Pictures --db ~/qvl-index --exclude '*/thumbnails' --exclude '*.gif'
  qvl index ./footage --db ./idx --clip-seconds 5 --precision int8
  qvl index ~/Pictures --server http://gpu-box:8000      # a running qvl serve embeds
  qvl index ./docs --db ./idx --model ./models/Qwen3-VL-Embedding-2B --dim 1024
  qvl index --db ./idx --rebuild-ann            # rebuild the approximate index from the stored vectors
  qvl index --db ./idx --rebuild-ann int8       # ... with int8 codes from now on
  qvl index /data --db milvus://milvus:19530/photos --ray auto   # Ray actors embed, Milvus stores
  qvl index ~/Pictures --db ~/qvl-index --estimate --quantize int8   # how long? (embeds a sample, writes nothing)

Images (jpg jpeg png webp gif bmp tiff heic heif), videos (mp4 mov mkv webm avi, one record per clip), PDFs
(one record per page) and texts (txt md markdown rst, chunks of tokens). Photos (JPEG, HEIC, WebP, TIFF,
or any image with camera EXIF) are read within --photo-max-pixels, PDF pages and other images (PNG
screenshots...) within --document-max-pixels. A re-run embeds only new and changed files (and, when a
budget changes, the files of its kind) and forgets deleted ones (no model is loaded when nothing
changed); an interrupted run resumes where it stopped. --exclude globs are remembered by the index for
later runs (--no-exclude forgets one). A file that failed and has not changed since is not tried again
(--retry-failed tries it) and no longer makes the run fail: `qvl info` lists such files.
On a CPU, --quantize int8 runs several times faster (docs/index.md: a photo library on a CPU).
Exit status: 0 every supported file indexed, 2 some skipped this run (listed with the reason), 1 fatal error.
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("index", parents=[common], help="index folders of images, videos, PDFs and texts",
                              description="Embed files into a multimodal index: a local folder (SQLite + ANN "
                                          "file) or a Milvus collection.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to index")
    add_db_option(p)
    add_server_option(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary (no progress bar)")
    g = p.add_argument_group('scale out (pip install "qwen3-vl-embedding[ray]"; docs/scale-out.md)')
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="embed on a Ray cluster: ADDRESS is ray://HOST:10001, HOST:6379 or auto; alone, "
                        "RAY_ADDRESS or a new local Ray instance. Put it after the paths")
    g.add_argument("--ray-actors", type=int, default=None, metavar="N",
                   help="embedding actors [default: one per GPU, else one per node]")
    g = p.add_argument_group("splitting files")
    g.add_argument("--clip-seconds", type=float, default=10.0, metavar="S",
                   help="video clip length [default: 10]")
    g.add_argument("--chunk-tokens", type=int, default=512, metavar="N",
                   help="text chunk size in tokens [default: 512]")
    g.add_argument("--chunk-overlap", type=int, default=None, metavar="N",
                   help="tokens shared by consecutive chunks [default: an eighth of a chunk, 64]")
    g.add_argument("--hidden", action="store_true", help="also index files and folders whose names start with '.'")
    g.add_argument("--photo-max-pixels", type=int, default=None, metavar="N",
                   help=f"pixel budget of a photo [default: the index's; new index {PHOTO_MAX_PIXELS:,}, "
                        f"about 0.3 megapixels]")
    g.add_argument("--document-max-pixels", type=int, default=None, metavar="N",
                   help=f"pixel budget of a PDF page or another image [default: the index's; new index "
                        f"{MAX_PIXELS:,}, the official one]")
    g.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="leave out matching files and folders (shell glob on the absolute path, '*' crossing '/'; "
                        "a bare name matches anywhere); remembered by the index (repeatable)")
    g.add_argument("--no-exclude", action="append", default=[], metavar="GLOB",
                   help="forget a remembered --exclude GLOB (repeatable)")
    g = p.add_argument_group("index")
    g.add_argument("--query-instruction", default=None, metavar="TEXT",
                   help="instruction for queries, stored in a new index [default: retrieval of images, "
                        "videos, pages or text]")
    g.add_argument("--exact-threshold", type=int, default=None, metavar="N",
                   help="build the approximate index from this many vectors; below it search is exact "
                        "(new index only) [default: 20000]")
    g.add_argument("--force", action="store_true",
                   help="embed every file again, changed or not (old records stay searchable until replaced; "
                        "run again after an interruption to finish)")
    g.add_argument("--retry-failed", action="store_true",
                   help="try again files that failed before, even when they have not changed")
    g.add_argument("--rehash", action="store_true", help="hash every file, even when size and mtime are unchanged")
    g.add_argument("--rebuild-ann", nargs="?", const="keep", default=None, metavar="PRECISION",
                   choices=["keep", "float32", "float16", "int8"],
                   help="rebuild the approximate index from the stored vectors, with new codes when a "
                        "precision is given")
    g.add_argument("--batch-size", type=int, default=None, metavar="N", help="at most this many items per forward pass")
    g.add_argument("--max-batch-tokens", type=int, default=None, metavar="N",
                   help="token budget of a forward pass [default: 16384]")
    g.add_argument("--estimate", action="store_true",
                   help="embed a small sample of the files to embed and print the expected time of the run; "
                        "writes nothing")
    media_options(p)
    p.set_defaults(handler=run)


def _info(args: argparse.Namespace, message: str) -> None:
    if not args.quiet and not args.json:
        print(message, file=sys.stderr)


def _load_embedder(args: argparse.Namespace, model: str, bar=None):
    """The embedder: in this process, through a server (--server), or a pool of Ray actors (--ray)."""
    if args.ray is None:
        return index_embedder(args, model, bar)
    from ..distributed.ray_embedder import RayEmbedder

    status(args, f"qvl: starting Ray actors with {model} ...", bar)
    return RayEmbedder(model, address=args.ray or None, actors=args.ray_actors, verbose=args.verbose,
                       media_policy=media_policy(args), **model_kwargs(args))


def run(args: argparse.Namespace) -> int:
    from ..index.indexer import Indexer, IndexOptions, progress_bar
    from ..index.indexing import NewIndex, open_for_indexing, remembered_exclusions
    from ..index.ingest import IngestOptions

    db, _ = db_location(args)
    if args.ray is not None and args.server:
        raise ValueError("--ray and --server are two ways to embed: choose one")
    if args.ray and os.path.exists(os.path.expanduser(args.ray)) and ":" not in args.ray and args.ray != "auto":
        raise ValueError(f"--ray took {args.ray!r} as the Ray address: put the paths first (qvl index PATH... --ray) "
                         f"or write --ray=ADDRESS")
    if not args.paths and not args.rebuild_ann and not (args.exclude or args.no_exclude):
        raise ValueError("nothing to index: pass files or folders (or --rebuild-ann)")
    for path in args.paths:
        if not os.path.exists(os.path.expanduser(path)):
            raise FileNotFoundError(f"no such file or folder: {path}")
    if not args.paths:
        from ..index.backends import open_store

        with open_store(db, write=True) as store:
            excluded = remembered_exclusions(store, args.exclude, args.no_exclude)
            if args.rebuild_ann:
                store.optimize(rebuild=True, precision=_new_precision(args))
            facts = store.describe()
        if args.rebuild_ann:
            _print_rebuilt(args, facts)
        else:
            status(args, "qvl: the index excludes " + (", ".join(excluded) or "nothing") +
                   "; the next run with paths applies it")
        return EXIT_OK
    overlap = args.chunk_overlap if args.chunk_overlap is not None else args.chunk_tokens // 8
    ingest = IngestOptions(args.clip_seconds, args.chunk_tokens, overlap, args.photo_max_pixels,
                           args.document_max_pixels)
    if args.estimate:
        return _estimate(args, db, IndexOptions(ingest, hidden=args.hidden, force=args.force, rehash=args.rehash,
                                                retry_failed=args.retry_failed))
    new = NewIndex(dim=args.dim, precision=args.precision, query_instruction=args.query_instruction,
                   exact_threshold=args.exact_threshold, settings=ingest.settings())
    bar = None  # the loader runs once the bar below exists: its status lines go above the bar
    writer = open_for_indexing(db, lambda model: _load_embedder(args, model, bar), model=args.model, new=new)
    store = writer.store
    follow_index_weights(args, store.meta)  # before the model loads (when there is work)
    try:
        if store.meta is not None and args.precision not in ("float32", store.meta.precision) \
                and args.rebuild_ann in (None, "keep"):
            _info(args, f"qvl: the index keeps its precision {store.meta.precision}; --rebuild-ann {args.precision} "
                        f"changes it")
        excluded = remembered_exclusions(store, args.exclude, args.no_exclude)
    except BaseException:
        writer.close()
        raise
    options = IndexOptions(ingest, hidden=args.hidden, force=args.force, rehash=args.rehash,
                           max_batch_tokens=args.max_batch_tokens, batch_size=args.batch_size,
                           rebuild_ann=bool(args.rebuild_ann), ann_precision=_new_precision(args),
                           retry_failed=args.retry_failed, exclude=excluded)
    bar = progress_bar(show_progress(args), eta_in_postfix=True)
    indexer = Indexer(store, writer.embedder, options, bar)
    try:
        with writer:
            report = indexer.run(args.paths)
            facts = store.describe()
            created = store.meta is not None
    except KeyboardInterrupt:
        kept = ("; files not embedded again yet keep their old records (searchable) and are marked stale"
                if args.force or args.photo_max_pixels or args.document_max_pixels else "")
        print(f"qvl: stopped after {indexer.report.items_added} new item(s), all committed{kept}; run the same "
              f"command again to go on (what is done is not embedded again)", file=sys.stderr)
        raise
    finally:
        if bar is not None:
            bar.close()
    if report.resumed_stale:
        _info(args, f"qvl: went on with an interrupted --force run: {report.resumed_stale} file(s) were left to "
                    f"embed again (run --force once more to redo every file)")
    if args.json:
        print(json.dumps({"db": store.location, **report.to_json(), "records": facts["records"],
                          "by_modality": facts["by_modality"]}, indent=2))
    else:
        _print_report(args, report, facts, created)
    return report.exit_status


def _estimate(args: argparse.Namespace, db: str, options) -> int:
    """`--estimate`: read the index if there is one (no lock, no write), embed a sample, print the expectation."""
    from dataclasses import replace

    from ..index.backends import open_store, store_exists
    from ..index.compat import check_compatible, index_model, verify_model
    from ..index.estimate import estimate_run
    from ..index.indexing import EXCLUDE
    from ..index.records import path_glob

    if args.ray is not None:
        raise ValueError("--estimate measures this machine: run it without --ray")
    meta, states, model, exclude = None, {}, args.model or EMBEDDING_2B, [] if "://" in db else [db]
    if store_exists(db):
        with open_store(db) as store:
            check_compatible(store.meta, args.model or store.meta.model, args.dim)
            meta, states, exclude = store.meta, store.file_states(), [store.location]
            follow_index_weights(args, meta)
            model = args.model or index_model(store)
            kept = [g for g in store.value(EXCLUDE, []) if g not in {path_glob(n) for n in args.no_exclude}]
        options = replace(options, exclude=tuple(dict.fromkeys(kept + [path_glob(g) for g in args.exclude])))
    else:
        options = replace(options, exclude=tuple(path_glob(g) for g in args.exclude))
    embedder = _load_embedder(args, model)
    if meta is not None:
        verify_model(meta, embedder)
    result = estimate_run(args.paths, embedder, options, meta, states, exclude=exclude)
    if args.json:
        print(json.dumps({"db": db, **result.to_json()}, indent=2))
    else:
        print("\n".join(result.describe()))
    return EXIT_OK


def _new_precision(args: argparse.Namespace) -> str | None:
    return None if args.rebuild_ann == "keep" else args.rebuild_ann


RETRY = "; with --retry-failed, as the file is unchanged"


def _print_report(args: argparse.Namespace, report, facts: dict, created: bool = True) -> None:
    from .display import display_path

    for p in report.skipped:
        print(f"qvl: skipped {display_path(p.path)}: {with_limit_hint(p.reason, RETRY)}", file=sys.stderr)
    if report.known_failed and (args.verbose or len(report.known_failed) <= 3):
        for p in report.known_failed:
            print(f"qvl: known to fail, unchanged: {display_path(p.path)}: {with_limit_hint(p.reason, RETRY)}",
                  file=sys.stderr)
    elif report.known_failed:
        print(f"qvl: {len(report.known_failed)} files failed before and have not changed: not tried again "
              f"(`qvl info` lists them; --retry-failed tries them)", file=sys.stderr)
    if args.verbose or len(report.ignored) <= 10:
        for p in report.ignored:
            print(f"qvl: ignored {display_path(p.path)}: {p.reason}", file=sys.stderr)
    else:
        kinds: dict[str, int] = {}
        for p in report.ignored:
            kinds[p.reason] = kinds.get(p.reason, 0) + 1
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        print(f"qvl: ignored {len(report.ignored)} files ({summary}); -v lists them", file=sys.stderr)
    if args.quiet:
        return
    parts = [f"indexed {report.indexed_files} file(s), {report.items_added} item(s) in {report.seconds:.1f} s"]
    if report.unchanged_files:
        parts.append(f"{report.unchanged_files} unchanged")
    if report.removed_files:
        parts.append(f"{report.removed_files} removed")
    if report.excluded_files:
        parts.append(f"{report.excluded_files} newly excluded")
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    if report.known_failed:
        parts.append(f"{len(report.known_failed)} known to fail")
    if not report.model_loaded:
        parts.append("nothing to embed, no model loaded")
    counts = ", ".join(f"{n} {m}" for m, n in sorted(facts["by_modality"].items()))
    print("; ".join(parts))
    if created:
        print(f"{facts['location']}: {facts['records']} record(s)" + (f" ({counts})" if counts else ""))
    else:
        print(f"{facts['location']}: no index made yet (nothing to embed)")


def _print_rebuilt(args: argparse.Namespace, facts: dict) -> None:
    if args.json:
        print(json.dumps({"db": facts["location"], "records": facts["records"], "ann": facts["ann"]}, indent=2))
    elif not args.quiet:
        ann = facts["ann"]
        print(f"{facts['location']}: {facts['records']} record(s); " +
              (f"approximate index rebuilt ({ann['vectors']} vectors, {ann['nlist']} lists)" if ann
               else "below the exact-search threshold: no approximate index needed"))

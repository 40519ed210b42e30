"""`qvl info`: which index (--db, QVL_DB or the per-user default), what it holds, what made it, what it
excludes, which files fail, and its size on disk (no model is loaded).

`--check` also verifies it (index/check.py) and exits 1 naming what is wrong and the repairing command."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..budgets import RULE
from .common import EXIT_FATAL, EXIT_OK, add_db_option, db_location


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("info", parents=[common], help="describe an index: counts, model, dim, size",
                              description="Describe a local index built by `qvl index`.")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.add_argument("--check", action="store_true",
                   help="verify the index (SQLite integrity, stored vectors, the approximate index file); exit 1 "
                        "naming what is wrong and how to repair it")
    p.set_defaults(handler=run)


def describe(store) -> dict:
    from ..index.compat import MODEL_PLACE
    from ..index.indexing import EXCLUDE

    meta = store.meta
    facts = store.describe()
    ann_problem = store.ann_problem() if hasattr(store, "ann_problem") else None  # what search will find
    return {"db": facts["location"], "model": meta.model, "model_now_at": store.value(MODEL_PLACE),
            "exclude": store.value(EXCLUDE, []), "dim": meta.dim, "precision": meta.precision,
            "document_instruction": meta.document_instruction, "query_instruction": meta.query_instruction,
            "records": facts["records"], "by_modality": facts["by_modality"], "files": facts["files"],
            "failed_files": facts["failed_files"], "size_bytes": facts["size_bytes"],
            "search": "approximate" if facts["ann"] and not ann_problem else "exact",
            "exact_threshold": meta.exact_threshold, "ann": facts["ann"], "ann_problem": ann_problem,
            "settings": meta.settings, "quantize": meta.quantize,
            "pixel_budgets": {"photo": meta.settings.get("photo_max_pixels"),
                              "document": meta.settings.get("document_max_pixels"), "rule": RULE}}


def _budgets(budgets: dict) -> str:
    if budgets["photo"] is None:  # an index made before budgets were recorded
        return "the model's for every image (until a run passes --photo-max-pixels)"
    return f"photos {budgets['photo']:,} px, documents {budgets['document']:,} px ({budgets['rule']})"


def run(args: argparse.Namespace) -> int:
    from .display import display_path, human_bytes, table
    from ..index.backends import open_store

    db, source = db_location(args)
    from ..index.backends import store_exists

    if source == "default" and not store_exists(db):
        raise ValueError(f"no index at {db} (the default index: no --db given and QVL_DB unset); build it with "
                         f"`qvl index FOLDER`, or pass --db DIR")
    if args.check:
        return _check(args, db)
    with open_store(db) as store:
        info = describe(store)
    info["db_from"] = source
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return EXIT_OK
    by_modality = ", ".join(f"{n} {m}" for m, n in sorted(info["by_modality"].items())) or "none"
    files = ", ".join(f"{n} {s}" for s, n in sorted(info["files"].items())) or "none"
    ann = info["ann"]
    if info["ann_problem"]:
        search = f"exact ({info['ann_problem']}: run qvl index --db {info['db']} --rebuild-ann)"
    elif ann and ann.get("backend") == "milvus":
        search = (f"approximate (Milvus {ann['index_type']}, {ann['precision']} codes, {ann['vectors']} vectors), "
                  f"rescored with the stored float32 vectors")
    elif ann:
        search = (f"approximate (FAISS IVF{ann['nlist']}, {ann['precision']} codes, {ann['vectors']} vectors"
                  + (f", {ann['pending_changes']} newer records searched exactly" if ann["pending_changes"] else "")
                  + "), rescored with the stored float32 vectors")
    else:
        search = f"exact (an approximate index is built from {info['exact_threshold']} records)"
    origin = {"--db": "", "QVL_DB": " (from QVL_DB)", "default": " (the default index: no --db, QVL_DB unset)"}
    model = info["model"] + (f" (now at {info['model_now_at']})" if info["model_now_at"] else "")
    rows = [["index", info["db"] + origin[source]], ["model", model], ["dim", str(info["dim"])],
            ["precision", info["precision"]], ["weights", info["quantize"] or "as released"],
            ["pixel budgets", _budgets(info["pixel_budgets"])], ["records", f"{info['records']} ({by_modality})"],
            ["files", files], ["search", search], ["size on disk", human_bytes(info["size_bytes"]) if info["size_bytes"] is not None else "(on the server)"],
            ["query instruction", info["query_instruction"]],
            ["document instruction", info["document_instruction"]],
            ["excluded", ", ".join(info["exclude"]) or "nothing (hidden files are skipped)"]]
    print(table(rows, ["", ""]).split("\n", 1)[1])
    if info["failed_files"]:
        print(f"known-bad files ({len(info['failed_files'])}: not tried again until they change; "
              f"qvl index --retry-failed tries them):")
    for f in info["failed_files"][:20]:
        print(f"  failed: {display_path(f['path'])}: {f['error']}")
    if len(info["failed_files"]) > 20:
        print(f"  ... and {len(info['failed_files']) - 20} more (--json lists them all)")
    return EXIT_OK


def _check(args: argparse.Namespace, db: str) -> int:
    """`qvl info --check`: the findings of index/check.py, or a one-line all clear."""
    from ..index.backends import open_store
    from ..index.check import Finding, check_index, reindex_advice
    from ..index.store import StoreError

    try:
        with open_store(db) as store:
            location, findings = store.location, check_index(store)
            checked = type(store).__name__ == "SqliteStore"
    except StoreError as e:  # too damaged to open
        location, findings, checked = db, [Finding("database", str(e), reindex_advice(db))], True
    if args.json:
        print(json.dumps({"db": location, "ok": not findings, "checked": checked,
                          "findings": [f.to_json() for f in findings]}, indent=2, ensure_ascii=False))
    elif not findings:
        print(f"{location}: ok" if checked else f"{location}: Milvus checks its own storage; nothing to check here")
    else:
        print(f"qvl: {location} has {len(findings)} problem(s):", file=sys.stderr)
        for f in findings:
            print(f"  {f.part}: {f.problem}\n    repair: {f.repair}", file=sys.stderr)
    return EXIT_FATAL if findings else EXIT_OK

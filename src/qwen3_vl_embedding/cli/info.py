"""`qvl info --db DIR`: what an index holds, what made it, and its size on disk (no model is loaded)."""
from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..budgets import RULE
from .common import EXIT_OK


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("info", parents=[common], help="describe an index: counts, model, dim, size",
                              description="Describe a local index built by `qvl index`.")
    p.add_argument("--db", default=os.environ.get("QVL_DB") or None, metavar="DIR",
                   help="index folder, milvus://HOST:PORT/COLLECTION or milvus-lite://PATH.db/COLLECTION [QVL_DB]")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(handler=run)


def describe(store) -> dict:
    meta = store.meta
    facts = store.describe()
    return {"db": facts["location"], "model": meta.model, "dim": meta.dim, "precision": meta.precision,
            "document_instruction": meta.document_instruction, "query_instruction": meta.query_instruction,
            "records": facts["records"], "by_modality": facts["by_modality"], "files": facts["files"],
            "failed_files": facts["failed_files"], "size_bytes": facts["size_bytes"],
            "search": "approximate" if facts["ann"] else "exact", "exact_threshold": meta.exact_threshold,
            "ann": facts["ann"], "settings": meta.settings, "quantize": meta.quantize,
            "pixel_budgets": {"photo": meta.settings.get("photo_max_pixels"),
                              "document": meta.settings.get("document_max_pixels"), "rule": RULE}}


def _budgets(budgets: dict) -> str:
    if budgets["photo"] is None:  # an index made before budgets were recorded
        return "the model's for every image (until a run passes --photo-max-pixels)"
    return f"photos {budgets['photo']:,} px, documents {budgets['document']:,} px ({budgets['rule']})"


def run(args: argparse.Namespace) -> int:
    from .display import display_path, human_bytes, table
    from ..index.backends import open_store

    if not args.db:
        raise ValueError("which index? pass --db DIR (or set QVL_DB)")
    with open_store(args.db) as store:
        info = describe(store)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return EXIT_OK
    by_modality = ", ".join(f"{n} {m}" for m, n in sorted(info["by_modality"].items())) or "none"
    files = ", ".join(f"{n} {s}" for s, n in sorted(info["files"].items())) or "none"
    ann = info["ann"]
    if ann and ann.get("backend") == "milvus":
        search = (f"approximate (Milvus {ann['index_type']}, {ann['precision']} codes, {ann['vectors']} vectors), "
                  f"rescored with the stored float32 vectors")
    elif ann:
        search = (f"approximate (FAISS IVF{ann['nlist']}, {ann['precision']} codes, {ann['vectors']} vectors"
                  + (f", {ann['pending_changes']} newer records searched exactly" if ann["pending_changes"] else "")
                  + "), rescored with the stored float32 vectors")
    else:
        search = f"exact (an approximate index is built from {info['exact_threshold']} records)"
    rows = [["index", info["db"]], ["model", info["model"]], ["dim", str(info["dim"])],
            ["precision", info["precision"]], ["weights", info["quantize"] or "as released"],
            ["pixel budgets", _budgets(info["pixel_budgets"])],
            ["records", f"{info['records']} ({by_modality})"],
            ["files", files], ["search", search], ["size on disk", human_bytes(info["size_bytes"]) if info["size_bytes"] is not None else "(on the server)"],
            ["query instruction", info["query_instruction"]],
            ["document instruction", info["document_instruction"]]]
    print(table(rows, ["", ""]).split("\n", 1)[1])
    for f in info["failed_files"][:20]:
        print(f"  failed: {display_path(f['path'])}: {f['error']}")
    if len(info["failed_files"]) > 20:
        print(f"  ... and {len(info['failed_files']) - 20} more (--json lists them all)")
    return EXIT_OK

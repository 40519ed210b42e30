"""Ingestion overhead of `qvl index`: everything but the model's forward pass, as a share of indexing time.

    .venv/bin/python bench/bench_ingest.py            # 96 photos, 4 PDFs x 8 pages, 4 videos x 40 s, 4 texts
    .venv/bin/python bench/bench_ingest.py --quick    # a quarter of that
    .venv/bin/python bench/bench_ingest.py --shape tiny

A generated folder is indexed from scratch with the "small" benchmark checkpoint (tests/checkpoint.py)
through the same code as `qvl index` (Indexer + SqliteStore). The forward pass is timed by wrapping
`Engine.forward`; the overhead is the rest of the wall time: walking, hashing, splitting files, reading
and resizing media when the model has to wait for it, batching, SQLite writes and the ANN update. A
re-run of the unchanged folder is timed too (nothing to embed: hashing skipped by size and mtime).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from common import checkpoint, markdown_table, peak_rss, test_helper, write_result


def make_folder(root: str, scale: float) -> dict:
    long_text = test_helper("index_corpus").long_text
    media_factory = test_helper("media_factory")
    scene, write_mp4 = media_factory.scene, media_factory.write_mp4

    n = {"photos": max(4, int(96 * scale)), "pdfs": max(1, int(4 * scale)), "videos": max(1, int(4 * scale)),
         "texts": max(1, int(4 * scale))}
    for i in range(n["photos"]):
        folder = os.path.join(root, "photos", f"{2020 + i % 4}")
        os.makedirs(folder, exist_ok=True)
        w, h = [(800, 600), (1024, 768), (640, 480), (1200, 900)][i % 4]
        scene(w, h, i).save(os.path.join(folder, f"img{i:04d}.jpg"), quality=88)
    os.makedirs(os.path.join(root, "docs"), exist_ok=True)
    for i in range(n["pdfs"]):
        pages = [scene(612, 792, 1000 + 10 * i + p) for p in range(8)]
        pages[0].save(os.path.join(root, "docs", f"doc{i}.pdf"), save_all=True, append_images=pages[1:])
    for i in range(n["texts"]):
        with open(os.path.join(root, "docs", f"notes{i}.md"), "w") as f:
            f.write(long_text(6000, seed=i))
    os.makedirs(os.path.join(root, "videos"), exist_ok=True)
    for i in range(n["videos"]):
        write_mp4(os.path.join(root, "videos", f"clip{i}.mp4"), 40, fps=8, size=(320, 240), seed=i)
    return n


def run_index(model: str, folder: str, db: str) -> dict:
    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.index.indexer import Indexer, IndexOptions
    from qwen3_vl_embedding.index import IndexMeta, open_store
    from qwen3_vl_embedding.index.compat import fingerprint

    embedder = Qwen3VLEmbedder(model)
    forward_seconds = [0.0]
    forward = embedder.engine.forward

    def timed_forward(samples, head):
        t = time.perf_counter()
        try:
            return forward(samples, head)
        finally:
            forward_seconds[0] += time.perf_counter() - t

    embedder.engine.forward = timed_forward
    meta = IndexMeta(model, embedder.dim, fingerprint=fingerprint(embedder, embedder.dim))
    options = IndexOptions()
    forward_seconds[0] = 0.0
    with peak_rss() as mem, open_store(db, meta, write=True) as store:
        t = time.perf_counter()
        report = Indexer(store, embedder, options).run([folder])
        total = time.perf_counter() - t
    forward_s = forward_seconds[0]
    with open_store(db, write=True) as store:
        t = time.perf_counter()
        again = Indexer(store, embedder, options).run([folder])
        rerun = time.perf_counter() - t
    assert not report.skipped and again.items_added == 0, (report.skipped, again.items_added)
    return {"items": report.items_added, "files": report.indexed_files, "total_s": total, "forward_s": forward_s,
            "overhead_s": total - forward_s, "overhead_%": 100 * (total - forward_s) / total,
            "items_per_s": report.items_added / total, "rerun_unchanged_s": rerun, "peak_rss_mb": mem["peak_mb"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a quarter of the folder")
    ap.add_argument("--shape", default="small", help="benchmark checkpoint shape [default: small]")
    args = ap.parse_args()
    model = checkpoint(args.shape)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        counts = make_folder(os.path.join(tmp, "folder"), 0.25 if args.quick else 1.0)
        print(f"folder {counts} written in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        row = {"shape": args.shape, **run_index(model, os.path.join(tmp, "folder"), os.path.join(tmp, "db"))}
    print(markdown_table([row], ["shape", "files", "items", "total_s", "forward_s", "overhead_s", "overhead_%",
                                 "items_per_s", "rerun_unchanged_s", "peak_rss_mb"]))
    path = write_result("ingest" + ("-quick" if args.quick else ""), [row], {"folder": counts})
    print(f"\nwritten: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

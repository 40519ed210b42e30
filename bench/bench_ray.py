"""Items/s of `qvl index --ray` with 1 and 2 actors against the single-process `qvl index`, same folder.

    .venv/bin/python bench/bench_ray.py             # the bench_ingest folder at half size (48 photos, 2 PDFs...)
    .venv/bin/python bench/bench_ray.py --quick     # an eighth of it: a smoke run
    .venv/bin/python bench/bench_ray.py --actors 1 2 4 --scale 1

Every run indexes the generated folder from scratch into a new SQLite index through the same Indexer,
with the "small" benchmark checkpoint (bench/common.py): in this process for the local row, through a
RayEmbedder on a local Ray cluster (all CPUs, or GPUs when there are any) for the others. `wall_s` is
`Indexer.run` (walk, hash, split, embed, write); Ray rows include starting the pool's actors (a
Python process each, importing torch and loading the model) and `first_vector_s` is when the first
batch came back. `helper_s` is the RayEmbedder's start before the run (the helper actor that tells the
driver the model's size, tokenizer and fingerprint). The indexes made are checked to hold the same
records. On a CPU machine actors split the same cores, so more actors cannot be faster; with GPUs
each actor has its own (docs/scale-out.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from common import checkpoint, markdown_table, write_result


class TimedEmbedder:
    """Wraps an embedder's iter_embed to note when the first vector comes back."""

    def __init__(self, inner):
        self.inner = inner
        self.first: float | None = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def iter_embed(self, inputs, **kwargs):
        for pos, vec in self.inner.iter_embed(inputs, **kwargs):
            if self.first is None:
                self.first = time.perf_counter()
            yield pos, vec


def index_once(embedder, folder: str, db: str) -> dict:
    from qwen3_vl_embedding.index.indexer import Indexer, IndexOptions
    from qwen3_vl_embedding.index import IndexMeta, open_store
    from qwen3_vl_embedding.index.compat import fingerprint

    meta = IndexMeta("bench", embedder.dim, fingerprint=fingerprint(embedder, embedder.dim))
    timed = TimedEmbedder(embedder)
    with open_store(db, meta, write=True) as store:
        t = time.perf_counter()
        report = Indexer(store, timed, IndexOptions()).run([folder])
        wall = time.perf_counter() - t
    assert not report.skipped, report.skipped
    return {"items": report.items_added, "wall_s": wall, "items_per_s": report.items_added / wall,
            "first_vector_s": (timed.first or t) - t}


def same_records(a: str, b: str) -> bool:
    import sqlite3

    def ids(db):
        with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
            return sorted(r[0] for r in conn.execute("SELECT id FROM records"))

    return ids(a) == ids(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="an eighth of the folder (a smoke run)")
    ap.add_argument("--scale", type=float, default=None, help="folder size relative to bench_ingest's [default: 0.5]")
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="pool sizes to run [default: 1 2]")
    ap.add_argument("--shape", default="small", help="benchmark checkpoint shape [default: small]")
    args = ap.parse_args()
    scale = args.scale if args.scale is not None else (0.125 if args.quick else 0.5)
    for key, value in {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
        os.environ.setdefault(key, value)  # a private cluster on 127.0.0.1
    import ray
    from bench_ingest import make_folder

    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.distributed.ray_embedder import RayEmbedder

    model = checkpoint(args.shape)
    rows = []
    with tempfile.TemporaryDirectory(prefix="qvl-bench-ray-") as tmp:
        folder = os.path.join(tmp, "folder")
        counts = make_folder(folder, scale)
        print(f"folder: {counts}", file=sys.stderr)
        local = Qwen3VLEmbedder(model)
        row = index_once(local, folder, os.path.join(tmp, "local"))
        rows.append({"run": "qvl index (one process)", "actors": "", **row})
        print(rows[-1], file=sys.stderr)
        del local
        ray.init(include_dashboard=False, _temp_dir=os.path.join(tmp, "ray"), log_to_driver=False,
                 logging_level="error")
        try:
            for n in args.actors:
                t = time.perf_counter()
                pool = RayEmbedder(model, actors=n)
                helper = time.perf_counter() - t
                db = os.path.join(tmp, f"ray{n}")
                row = index_once(pool, folder, db)
                assert same_records(os.path.join(tmp, "local"), db), "the Ray index differs from the local one"
                device = "GPU" if pool.plan.num_gpus else f"{pool.plan.num_cpus:g} CPUs"
                rows.append({"run": "qvl index --ray", "actors": f"{n} x {device}", **row, "helper_s": helper})
                print(rows[-1], file=sys.stderr)
        finally:
            ray.shutdown()
    columns = ["run", "actors", "items", "wall_s", "items_per_s", "first_vector_s", "helper_s"]
    print(markdown_table(rows, columns))
    path = write_result("ray" + ("-quick" if args.quick else ""), rows, {"folder": counts, "shape": args.shape,
                                                                        "scale": scale})
    print(f"\nwritten: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

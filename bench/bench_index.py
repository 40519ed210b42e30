"""The approximate index at scale: FAISS IVF (what qvl ships) against usearch HNSW, on clustered vectors.

    .venv/bin/python bench/bench_index.py             # 1,000,000 x 1,024, 4,000 clusters (about 25 min, 2 cores)
    .venv/bin/python bench/bench_index.py --quick     # 50,000 x 1,024 (about 1 min)
    .venv/bin/python bench/bench_index.py --methods faiss --store   # also the SqliteStore path (+10 min)

Vectors: a Gaussian mixture on the unit sphere (`clusters` centres grouped under clusters/64 topics, a
shared mean direction, per-point spread), so that neighbours have a range of similarities as real
embeddings do (printed: mean cosine of the 1st and 10th neighbour, and of random pairs); queries are
fresh draws. Reported per setting: build time, index size on disk, single-query p50/p95 latency on one
thread, recall@10 against exact float32 search, raw and after rescoring the top 40 candidates with
float32 vectors (what `SqliteStore.search` does with the vectors it keeps).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from common import markdown_table, peak_rss, write_result

RESCORE = 40


def mixture(n: int, dim: int, clusters: int, spread: float, seed: int, chunk: int = 65536) -> np.ndarray:
    """n unit vectors from a two-level Gaussian mixture (centres fixed by the seed 0 stream)."""
    rc = np.random.default_rng(0)
    topics = rc.standard_normal((max(1, clusters // 64), dim), dtype=np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    mean = rc.standard_normal(dim).astype(np.float32)
    mean /= np.linalg.norm(mean)
    centres = topics[rc.integers(0, len(topics), clusters)] + rc.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres += 0.4 * mean
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        sigma = spread * rng.uniform(0.4, 1.6, (m, 1)).astype(np.float32) / np.sqrt(dim)
        x = centres[rng.integers(0, clusters, m)] + sigma * rng.standard_normal((m, dim), dtype=np.float32)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact(queries: np.ndarray, base: np.ndarray, k: int, chunk: int = 65536) -> np.ndarray:
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for s in range(0, len(base), chunk):
        sc = queries @ base[s:s + chunk].T
        idx = np.argpartition(-sc, min(k, sc.shape[1] - 1), axis=1)[:, :k]
        cs = np.take_along_axis(sc, idx, 1)
        all_s = np.concatenate([best_s, cs], 1)
        all_i = np.concatenate([best_i, idx + s], 1)
        keep = np.argsort(-all_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(all_s, keep, 1), np.take_along_axis(all_i, keep, 1)
    return best_i


def recall(found: list[np.ndarray], truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth)]))


def timed(fn, queries: np.ndarray) -> tuple[list, float, float]:
    out, times = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append(time.perf_counter() - t)
    return out, float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 95) * 1e3)


def rescored(search, base: np.ndarray, k: int = 10):
    def run(q):
        cand = search(q, RESCORE)
        return cand[np.argsort(-(base[cand] @ q), kind="stable")[:k]]
    return run


def bench_faiss(base, queries, truth, precision: str, nprobes: list[int], folder: str) -> list[dict]:
    import faiss

    from qwen3_vl_embedding.index.ann import AnnIndex, training_size

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    with peak_rss() as mem:
        t = time.perf_counter()
        step = max(1, len(base) // training_size(len(base)))  # as SqliteStore samples its vectors
        ann = AnnIndex.train(base[::step], precision, expected=len(base))
        for s in range(0, len(base), 65536):
            ann.add(np.arange(s, min(s + 65536, len(base))), base[s:s + 65536])
        build = time.perf_counter() - t
    path = os.path.join(folder, f"faiss-{precision}.index")
    ann.save(path)
    size = os.path.getsize(path)
    faiss.omp_set_num_threads(1)
    rows = []
    for nprobe in nprobes:
        raw, p50, p95 = timed(lambda q: ann.search(q, 10, nprobe)[0], queries)
        res, rp50, _ = timed(rescored(lambda q, m: ann.search(q, m, nprobe)[0], base), queries)
        rows.append({"method": f"FAISS IVF{ann.info.nlist},{precision} (qvl)", "setting": f"nprobe={nprobe}",
                     "default": nprobe == ann.nprobe, "build_s": build, "size_mb": size / 1e6,
                     "p50_ms": p50, "p95_ms": p95, "recall@10": recall(raw, truth),
                     "rescored_p50_ms": rp50, "rescored_recall@10": recall(res, truth),
                     "build_peak_rss_mb": mem["peak_mb"]})
    del ann
    os.unlink(path)
    return rows


def bench_usearch(base, queries, truth, dtype: str, efs: list[int], folder: str) -> list[dict]:
    from usearch.index import Index

    with peak_rss() as mem:
        t = time.perf_counter()
        index = Index(ndim=base.shape[1], metric="ip", dtype=dtype, connectivity=16, expansion_add=128)
        for s in range(0, len(base), 65536):
            index.add(np.arange(s, min(s + 65536, len(base))), base[s:s + 65536], threads=os.cpu_count() or 1)
        build = time.perf_counter() - t
    path = os.path.join(folder, f"usearch-{dtype}.index")
    index.save(path)
    size = os.path.getsize(path)
    rows = []
    for ef in efs:
        index.expansion_search = ef
        raw, p50, p95 = timed(lambda q: index.search(q, 10, threads=1).keys, queries)
        res, rp50, _ = timed(rescored(lambda q, m: index.search(q, m, threads=1).keys.astype(np.int64), base), queries)
        rows.append({"method": f"usearch HNSW M=16,{dtype}", "setting": f"ef={ef}", "default": False,
                     "build_s": build, "size_mb": size / 1e6, "p50_ms": p50, "p95_ms": p95,
                     "recall@10": recall(raw, truth), "rescored_p50_ms": rp50,
                     "rescored_recall@10": recall(res, truth), "build_peak_rss_mb": mem["peak_mb"]})
    del index
    os.unlink(path)
    return rows


def bench_store(base, queries, truth, precision: str, folder: str) -> dict:
    """The whole path of `qvl search` after embedding: SqliteStore.search (ANN, SQLite fetch, rescoring)."""
    from qwen3_vl_embedding.index.records import Record
    from qwen3_vl_embedding.index import IndexMeta, open_store

    meta = IndexMeta(model="synthetic", dim=base.shape[1], precision=precision, exact_threshold=20_000)
    ids_of = {}
    with open_store(os.path.join(folder, "store"), meta, write=True) as store:
        t = time.perf_counter()
        for s in range(0, len(base), 10_000):
            recs = []
            for i in range(s, min(s + 10_000, len(base))):
                r = Record(i + 1, f"/bench/{i:08d}.jpg", "image", "0", 0.0, "synthetic", "", base.shape[1])
                recs.append(r)
                ids_of[i + 1] = i
            store.add(recs, base[s:s + len(recs)])
            store.commit()
        insert = time.perf_counter() - t
        t = time.perf_counter()
        store.optimize()
        build = time.perf_counter() - t
        size = store.describe()["size_bytes"]
    with open_store(os.path.join(folder, "store"), ann_in_memory=True) as store:
        store.search(queries[0], 10)  # load the ANN file
        found, p50, p95 = timed(lambda q: np.array([ids_of[h.record.id] for h in store.search(q, 10)]), queries)
    return {"method": f"SqliteStore.search ({precision})", "setting": "default", "default": True,
            "build_s": build, "insert_s": insert, "size_mb": size / 1e6, "p50_ms": p50, "p95_ms": p95,
            "recall@10": recall(found, truth)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="50,000 vectors")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--clusters", type=int, default=None, help="mixture centres [default: n / 250, at least 64]")
    ap.add_argument("--spread", type=float, default=0.8)
    ap.add_argument("--queries", type=int, default=None, help="[default: 1000, 300 with --quick]")
    ap.add_argument("--methods", default="faiss,usearch", help="faiss, usearch, faiss-float32 (comma-separated)")
    ap.add_argument("--nprobes", default=None, help="FAISS nprobe values [default: 8,16,32,64 and the default]")
    ap.add_argument("--efs", default="32,64,128", help="usearch expansion_search values")
    ap.add_argument("--store", action="store_true", help="also time SqliteStore.search (inserts all vectors)")
    ap.add_argument("--tmp", default=None, help="folder for index files [default: a temporary folder]")
    args = ap.parse_args()

    from qwen3_vl_embedding.index.ann import default_nlist, default_nprobe

    n = args.n or (50_000 if args.quick else 1_000_000)
    clusters = args.clusters or max(64, n // 250)
    nq = args.queries or (300 if args.quick else 1000)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    nprobes = sorted({int(x) for x in args.nprobes.split(",")} if args.nprobes else
                     {8, 16, 32, 64, default_nprobe(default_nlist(n))})
    efs = [int(x) for x in args.efs.split(",")]

    t = time.perf_counter()
    base = mixture(n, args.dim, clusters, args.spread, seed=1)
    queries = mixture(nq, args.dim, clusters, args.spread, seed=2)
    truth = exact(queries, base, 10)
    first = float(np.mean([base[t[0]] @ q for t, q in zip(truth, queries)]))
    tenth = float(np.mean([base[t[9]] @ q for t, q in zip(truth, queries)]))
    randoms = float(np.mean(queries[: min(nq, 100)] @ base[:1000].T))
    _, exact_p50, _ = timed(lambda q: np.argpartition(-(base @ q), 10)[:10], queries[: min(nq, 20)])
    print(f"{n:,} x {args.dim} vectors, {clusters} clusters; neighbour cosine: 1st {first:.3f}, 10th {tenth:.3f}, "
          f"random pairs {randoms:.3f}; data + ground truth in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    rows = [{"method": "exact (numpy float32)", "setting": "", "p50_ms": exact_p50, "recall@10": 1.0,
             "size_mb": base.nbytes / 1e6}]
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        if "faiss" in methods:
            rows += bench_faiss(base, queries, truth, "int8", nprobes, folder)
        if "faiss-float32" in methods:
            rows += bench_faiss(base, queries, truth, "float32", nprobes, folder)
        if "usearch" in methods:
            rows += bench_usearch(base, queries, truth, "i8", efs, folder)
        if args.store or args.quick:
            rows.append(bench_store(base, queries, truth, "int8", folder))
    columns = ["method", "setting", "build_s", "size_mb", "p50_ms", "p95_ms", "recall@10", "rescored_p50_ms",
               "rescored_recall@10"]
    print(markdown_table(rows, columns))
    path = write_result("index" + ("-quick" if args.quick else ""), rows,
                        {"n": n, "dim": args.dim, "clusters": clusters, "spread": args.spread, "queries": nq,
                         "neighbour_cosine_1st": first, "neighbour_cosine_10th": tenth,
                         "random_pair_cosine": randoms, "rescore_candidates": RESCORE})
    print(f"\nwritten: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""`qvl dupes` at scale: near-duplicate groups in an index of 100,000 records with planted copies.

    .venv/bin/python bench/bench_dupes.py                 # 100,000 x 1,024 (the approximate index path)
    .venv/bin/python bench/bench_dupes.py --n 20000       # at the exact-search threshold: every pair

Vectors: the Gaussian mixture of bench_index.py (neighbours at cosine ~0.75, so nothing is a duplicate
by chance), plus planted near-copies: `--groups` originals, each with 1 to 4 copies at a small angle
(cosine 0.97 to 0.999, like a re-saved or resized photo), and one group of 40 exact copies (larger than
the 16 neighbours compared per record). The store is a real SqliteStore (int8 ANN codes, as `qvl index
--precision int8` builds them; float32 with --precision float32). Reported: the time of
`duplicate_groups` (what `qvl dupes` runs), the planted groups found whole, pairs missed, extra groups.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from common import ROOT, markdown_table, peak_rss, write_result

sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_index import mixture  # noqa: E402


def planted(n: int, dim: int, groups: int, seed: int = 1):
    """(vectors, the planted groups as lists of row numbers): n mixture vectors, then the copies."""
    rng = np.random.default_rng(seed)
    base = mixture(n, dim, max(16, n // 250), 1.0, seed)
    originals = rng.choice(n, groups + 1, replace=False)
    copies, found = [], []
    for g, original in enumerate(originals[:-1]):
        members = [int(original)]
        for _ in range(int(rng.integers(1, 5))):
            target = rng.uniform(0.97, 0.999)  # the cosine of the copy with the original
            noise = rng.standard_normal(dim).astype(np.float32)
            noise -= (noise @ base[original]) * base[original]
            noise /= np.linalg.norm(noise)
            copy = target * base[original] + np.sqrt(1 - target ** 2) * noise
            members.append(n + len(copies))
            copies.append(copy / np.linalg.norm(copy))
        found.append(members)
    big = int(originals[-1])
    found.append([big] + [n + len(copies) + i for i in range(39)])
    copies += [base[big]] * 39
    return np.concatenate([base, np.asarray(copies, np.float32)]), found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="records before the copies")
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--groups", type=int, default=1000, help="planted groups of 2 to 5")
    ap.add_argument("--precision", default="int8", choices=["float32", "float16", "int8"])
    ap.add_argument("--threshold", type=float, default=0.95)
    args = ap.parse_args()

    from qwen3_vl_embedding.index.backends import open_store
    from qwen3_vl_embedding.index.duplicates import duplicate_groups
    from qwen3_vl_embedding.index.records import Record, record_id
    from qwen3_vl_embedding.index.store import IndexMeta

    t = time.perf_counter()
    vectors, groups = planted(args.n, args.dim, args.groups)
    made = time.perf_counter() - t
    ids = np.array([record_id(f"/photos/{i:07d}.jpg", "image", 0) for i in range(len(vectors))])
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(os.path.join(tmp, "db"), IndexMeta("bench", args.dim, args.precision), write=True)
        t = time.perf_counter()
        for s in range(0, len(vectors), 5000):
            store.add([Record(int(ids[i]), f"/photos/{i:07d}.jpg", "image", "h", 1.0, "bench", "doc", args.dim)
                       for i in range(s, min(s + 5000, len(vectors)))], vectors[s:s + 5000])
        store.commit()
        added = time.perf_counter() - t
        t = time.perf_counter()
        store.optimize()
        built = time.perf_counter() - t
        ann = store.describe()["ann"]
        store.close()
        with open_store(os.path.join(tmp, "db")) as reader, peak_rss() as mem:
            t = time.perf_counter()
            result = duplicate_groups(reader, args.threshold)
            seconds = time.perf_counter() - t
    got = [sorted(int(np.nonzero(ids == h.record.id)[0][0]) for h in g.hits) for g in result]
    want = {tuple(sorted(g)) for g in groups}
    whole = sum(tuple(g) in want for g in got)
    planted_pairs = sum(len(g) - 1 for g in groups)
    index_of = {row: i for i, g in enumerate(got) for row in g}
    missed = sum(1 for g in groups for r in g[1:] if index_of.get(r) is None or index_of.get(r) != index_of.get(g[0]))
    row = {"records": len(vectors), "dim": args.dim, "search": "approximate" if ann else "exact pairs",
           "ann": f"IVF{ann['nlist']},{args.precision}" if ann else "", "dupes s": seconds,
           "planted groups": len(groups), "found whole": whole, "pairs missed": missed,
           "extra groups": len([g for g in got if tuple(g) not in want]), "peak MB": mem["peak_mb"]}
    print(f"made {len(vectors):,} vectors in {made:.0f} s, stored in {added:.0f} s, ANN built in {built:.0f} s; "
          f"{planted_pairs:,} planted pairs")
    print(markdown_table([row], list(row)))
    print("wrote", write_result(f"dupes-{len(vectors)}", [row], {"threshold": args.threshold}))


if __name__ == "__main__":
    main()

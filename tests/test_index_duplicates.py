"""Near-duplicate groups on synthetic vectors: pairwise (exact) and through the store's neighbours (ANN),
against brute force; `Store.neighbours` on the SQLite store with and without its approximate index."""
from __future__ import annotations

import numpy as np
import pytest

from qwen3_vl_embedding.index.ann import RowsTopK
from qwen3_vl_embedding.index.backends import open_store
from qwen3_vl_embedding.index.duplicates import UnionFind, duplicate_groups
from qwen3_vl_embedding.index.records import Filters, Record, record_id
from qwen3_vl_embedding.index.store import IndexMeta

DIM = 32
THRESHOLD = 0.97


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def planted(n: int, seed: int = 0):
    """n clustered vectors, then copies: groups of 2, 3 and 30 near-copies (noise far below the threshold)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((40, DIM)))
    base = unit(centres[rng.integers(0, 40, n)] + 0.35 * rng.standard_normal((n, DIM)) / np.sqrt(DIM) * 3)
    sizes = [2, 3, 30]
    extra, groups = [], []
    for g, size in enumerate(sizes):
        original = g * 7
        members = [original]
        for _ in range(size - 1):
            members.append(n + len(extra))
            extra.append(unit(base[original] + 0.01 * rng.standard_normal(DIM) / np.sqrt(DIM)))
        groups.append(members)
    vecs = np.concatenate([base, np.stack(extra)])
    recs = []
    for i in range(len(vecs)):
        path = f"/photos/{i:05d}.jpg"
        recs.append(Record(record_id(path, "image", 0), path, "image", "h", 1.0, "m", "doc", DIM))
    return recs, vecs, groups


def brute_groups(recs, vecs, threshold):
    union = UnionFind()
    scores = vecs @ vecs.T
    for i, j in zip(*np.nonzero(np.triu(scores >= threshold, 1))):
        union.union(recs[i].id, recs[j].id)
    return sorted(sorted(g) for g in union.groups())


def found(groups):
    return sorted(sorted(h.record.id for h in g.hits) for g in groups)


@pytest.fixture(scope="module", params=["float32", "int8"])
def store(request, tmp_path_factory):
    recs, vecs, groups = planted(3000)
    path = tmp_path_factory.mktemp(f"dupes-{request.param}") / "db"
    store = open_store(str(path), IndexMeta("m", DIM, request.param, exact_threshold=500), write=True)
    store.add(recs[:2500], vecs[:2500])
    store.optimize()  # the approximate index holds the first 2,500 ...
    store.add(recs[2500:], vecs[2500:])  # ... and the rest are newer changes, scanned exactly
    store.commit()
    assert store.describe()["ann"]["pending_changes"] == len(recs) - 2500
    yield store, recs, vecs, groups
    store.close()


def test_groups_through_the_approximate_index_match_brute_force(store):
    s, recs, vecs, groups = store
    want = brute_groups(recs, vecs, THRESHOLD)
    assert sorted(len(g) for g in want) == [2, 3, 30]  # the planted groups, and nothing else
    through_ann = duplicate_groups(s, THRESHOLD, exact_limit=0)  # neighbours of every record, k = 16
    pairwise = duplicate_groups(s, THRESHOLD)
    assert found(through_ann) == found(pairwise) == want
    largest = through_ann[0]
    assert len(largest.hits) == 30 and largest.hits[0].score == pytest.approx(1.0)  # larger than k, found whole
    assert all(THRESHOLD - 0.05 <= h.score <= 1.0 + 1e-6 for h in largest.hits)
    assert [len(g.hits) for g in through_ann] == sorted((len(g.hits) for g in through_ann), reverse=True)


def test_filters_keep_only_pairs_inside_them(store):
    s, recs, vecs, groups = store
    odd = Filters(path_globs=("*[13579].jpg",))
    keep = [i for i, r in enumerate(recs) if odd.matches(r)]
    want = brute_groups([recs[i] for i in keep], vecs[keep], THRESHOLD)
    assert found(duplicate_groups(s, THRESHOLD, odd)) == want
    assert found(duplicate_groups(s, THRESHOLD, odd, exact_limit=0)) == want


def test_neighbours_match_brute_force_top_k(store):
    s, recs, vecs, groups = store
    queries = vecs[[0, 7, 14, 2999, 1234]]
    ids, scores = s.neighbours(queries, 5)
    all_ids = np.array([r.id for r in recs])
    exact = queries @ vecs.T
    for row in range(len(queries)):
        best = np.argsort(-exact[row], kind="stable")[:5]
        assert scores[row] == pytest.approx(exact[row][best], abs=1e-4)
        assert set(ids[row][:3]) == set(all_ids[best][:3])


def test_rows_top_k_pads_and_orders():
    top = RowsTopK(2, 3)
    top.push(np.array([[0.1, 0.9], [0.5, 0.5]], np.float32), np.array([10, 11]))
    top.push_pairs(np.array([[0.8, -np.inf], [0.7, 0.2]], np.float32), np.array([[12, 13], [14, 15]]))
    ids, scores = top.result()
    assert ids.tolist() == [[11, 12, 10], [14, 10, 11]]
    assert scores[0].tolist() == pytest.approx([0.9, 0.8, 0.1])
    lone = RowsTopK(1, 3)
    lone.push(np.array([[0.4]], np.float32), np.array([1]))
    ids, scores = lone.result()
    assert ids.tolist() == [[1, -1, -1]] and np.isneginf(scores[0, 1:]).all()

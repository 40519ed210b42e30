"""SqliteStore with synthetic vectors: exact and approximate search against brute force, incremental
updates of the ANN file, crash leftovers, filters, the writer lock, metadata and compatibility checks."""
from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest

from qwen3_vl_embedding.index.records import FileState, Filters, Record, record_id
from qwen3_vl_embedding.index.backends import open_store
from qwen3_vl_embedding.index.compat import check_compatible
from qwen3_vl_embedding.index.store import IndexMeta, IndexMismatchError, StoreError, StoreLockedError

DIM = 32


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def corpus(n: int, seed: int = 0, clusters: int = 20):
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((clusters, DIM)))
    spread = rng.uniform(0.2, 0.6, (n, 1)) / np.sqrt(DIM)
    vecs = unit(centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, DIM))).astype(np.float32)
    modalities = ["image", "pdf", "video", "text"]
    recs = []
    for i in range(n):
        m = modalities[i % 4]
        path = f"/data/{'even' if i % 2 == 0 else 'odd'}/{i:05d}.{m}"
        recs.append(Record(record_id(path, m, 0), path, m, "h", 1.0, "m", "doc", DIM))
    return recs, vecs


def brute(recs, vecs, q, k, keep=lambda r: True):
    scores = vecs @ q
    order = [i for i in np.argsort(-scores, kind="stable") if keep(recs[i])]
    return [recs[i].id for i in order[:k]]


def make(path, n, threshold=10**9, precision="float32", seed=0):
    recs, vecs = corpus(n, seed)
    store = open_store(str(path), IndexMeta("m", DIM, precision, exact_threshold=threshold), write=True)
    for s in range(0, n, 100):
        store.add(recs[s:s + 100], vecs[s:s + 100])
    store.commit()
    return store, recs, vecs


def test_exact_search_matches_brute_force_with_filters(tmp_path):
    store, recs, vecs = make(tmp_path / "db", 400)
    q = unit(np.random.default_rng(5).standard_normal(DIM)).astype(np.float32)
    hits = store.search(q, 10)
    assert [h.record.id for h in hits] == brute(recs, vecs, q, 10)
    assert [h.score for h in hits] == pytest.approx(sorted((vecs @ q).tolist(), reverse=True)[:10], abs=1e-5)
    f = Filters(frozenset({"pdf", "text"}), ("/data/even/*",))
    assert [h.record.id for h in store.search(q, 7, f)] == brute(recs, vecs, q, 7, f.matches)
    assert store.count() == {"image": 100, "pdf": 100, "video": 100, "text": 100}
    store.close()


@pytest.mark.parametrize("precision", ["int8", "float16", "float32"])
def test_ann_search_recall_and_incremental_updates(tmp_path, precision):
    store, recs, vecs = make(tmp_path / "db", 3000, threshold=1000, precision=precision)
    store.optimize()
    ann = store.describe()["ann"]
    assert ann["vectors"] == 3000 and ann["pending_changes"] == 0 and os.path.isfile(tmp_path / "db" / ann["file"])
    reader = open_store(str(tmp_path / "db"))
    rng = np.random.default_rng(7)
    queries = unit(vecs[rng.integers(0, 3000, 30)] + 0.3 / np.sqrt(DIM) * rng.standard_normal((30, DIM)))
    queries = queries.astype(np.float32)
    found = [len({h.record.id for h in reader.search(q, 10)} & set(brute(recs, vecs, q, 10))) for q in queries]
    assert np.mean(found) / 10 >= 0.95
    even = Filters(path_globs=("/data/even/*",))  # 1,500 records match: more than the exact threshold
    hits = [reader.search(q, 10, even) for q in queries]
    assert all(len(h) == 10 and all(even.matches(x.record) for x in h) for h in hits)
    found = [len({x.record.id for x in h} & set(brute(recs, vecs, q, 10, even.matches))) for h, q in zip(hits, queries)]
    assert np.mean(found) / 10 >= 0.95
    # Delete some, add new ones (one replacing an existing id): searches see them before the ANN is updated.
    gone = [r.path for r in recs[:50]]
    store.delete_paths(gone)
    new_recs, new_vecs = corpus(60, seed=9)
    new_recs = [Record(r.id + 1, "/new" + r.path, r.modality, "h", 1.0, "m", "doc", DIM) for r in new_recs]
    store.add(new_recs, new_vecs)
    moved = unit(np.random.default_rng(11).standard_normal(DIM)).astype(np.float32)
    store.add([recs[100]], moved[None])
    store.commit()
    all_recs = recs[50:] + new_recs
    all_vecs = np.concatenate([vecs[50:], new_vecs])
    all_vecs[50] = moved  # recs[100] sits at position 50 of recs[50:]
    for q in [*queries[:10], moved, new_vecs[3]]:
        got = [h.record.id for h in reader.search(q, 10)]
        assert not set(got) & {r.id for r in recs[:50]}
        want = brute(all_recs, all_vecs, q, 10)
        assert len(set(got) & set(want)) >= 9
    assert reader.search(moved, 1)[0].record.id == recs[100].id
    assert reader.search(new_vecs[3], 1)[0].record.id == new_recs[3].id
    assert reader.describe()["ann"]["pending_changes"] == 50 + 60 + 1
    store.optimize()  # sync: the ANN now holds the changes, the log is trimmed, the old file is gone
    info = store.describe()["ann"]
    store.optimize()  # nothing changed: the file is kept as it is
    assert store.describe()["ann"]["file"] == info["file"]
    assert info["vectors"] == 3000 - 50 + 60 and info["pending_changes"] == 0
    assert sorted(f for f in os.listdir(tmp_path / "db") if f.endswith(".faiss")) == [info["file"]]
    assert reader.search(moved, 1)[0].record.id == recs[100].id  # reader switches to the new file
    reader.close()
    store.close()


def test_crash_leftovers_and_missing_ann_file(tmp_path):
    store, recs, vecs = make(tmp_path / "db", 1500, threshold=500)
    store.optimize()
    q = vecs[42]
    name = store.describe()["ann"]["file"]
    store.close()
    open(tmp_path / "db" / "ann-999-deadbeef.faiss", "wb").close()  # written by a writer killed before naming it
    os.unlink(tmp_path / "db" / name)  # and the named file lost
    with open_store(str(tmp_path / "db")) as reader:
        assert reader.search(q, 1)[0].record.id == recs[42].id  # exact search answers meanwhile
    with open_store(str(tmp_path / "db"), write=True) as store:
        store.optimize()
        files = sorted(f for f in os.listdir(tmp_path / "db") if f.endswith(".faiss"))
        assert files == [store.describe()["ann"]["file"]]
        assert store.search(q, 1)[0].record.id == recs[42].id
        store.optimize(rebuild=True, precision="int8")  # new codes, kept in the metadata
    with open_store(str(tmp_path / "db")) as reader:
        assert reader.meta.precision == "int8" and reader.describe()["ann"]["precision"] == "int8"
        assert reader.search(q, 1)[0].record.id == recs[42].id


def test_small_index_keeps_no_ann_and_shrinking_drops_it(tmp_path):
    store, recs, _ = make(tmp_path / "db", 300, threshold=200)
    store.optimize()
    assert store.describe()["ann"] is not None
    store.delete_paths([r.path for r in recs[:150]])
    store.optimize()
    assert store.describe()["ann"] is None and not [f for f in os.listdir(tmp_path / "db") if f.endswith(".faiss")]
    assert sum(store.count().values()) == 150
    store.close()


def test_one_writer_at_a_time_and_readers_meanwhile(tmp_path):
    store, recs, vecs = make(tmp_path / "db", 20)
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        open_store(str(tmp_path / "db"), write=True)
    with open_store(str(tmp_path / "db")) as reader:
        assert reader.search(vecs[3], 1)[0].record.id == recs[3].id
        with pytest.raises(StoreError, match="opened for reading"):
            reader.add(recs[:1], vecs[:1])
    store.close()
    open_store(str(tmp_path / "db"), write=True).close()  # released on close


def test_metadata_round_trip_and_refusals(tmp_path):
    meta = IndexMeta("org/model", DIM, "int8", query_instruction="Find it.", fingerprint=(0.5, 0.75),
                     settings={"clip_seconds": 5.0})
    open_store(str(tmp_path / "db"), meta, write=True).close()
    with open_store(str(tmp_path / "db")) as store:
        assert store.meta == meta
    with pytest.raises(StoreError, match="no index at"):
        open_store(str(tmp_path / "missing"))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(StoreError, match="a folder of its own"):
        open_store(str(tmp_path / "photos"), meta, write=True)
    with pytest.raises(StoreError, match="no store backend"):
        open_store("nosuch://localhost/x")
    check_compatible(meta, "./local-copy", None, (0.5, 0.75))  # another name, same embeddings: accepted
    with pytest.raises(IndexMismatchError, match="dim 32, not 64"):
        check_compatible(meta, "org/model", 64)
    with pytest.raises(IndexMismatchError, match="computes different embeddings"):
        check_compatible(meta, "org/other", None, (0.75, -0.5))
    with pytest.raises(IndexMismatchError, match="16-dimensional"):
        check_compatible(meta, "org/small", None, model_dim=16)


def test_a_first_run_stopped_while_creating_the_index_starts_again(tmp_path):
    (tmp_path / "db").mkdir()
    with sqlite3.connect(tmp_path / "db" / "index.sqlite") as conn:  # the file, no tables yet
        conn.execute("PRAGMA journal_mode = WAL")
    with pytest.raises(StoreError, match="no index at"):
        open_store(str(tmp_path / "db"))
    open_store(str(tmp_path / "db"), IndexMeta("m", DIM), write=True).close()
    with open_store(str(tmp_path / "db")) as store:
        assert store.meta.model == "m"


def test_corrupt_database_is_a_clear_error(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "index.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the index"):
        open_store(str(tmp_path / "db"))
    assert sqlite3.sqlite_version  # the message comes from SQLite itself

"""The Milvus store against Milvus Lite: the embedded store's behaviours, run on both backends
(search against brute force with filters, upserts, deletions, file states, metadata, one writer),
then what is Milvus's own: locations, LIKE filters, the vector index switch, the writer's lease."""
from __future__ import annotations

import fnmatch
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from scale_fixtures import lite_location
from test_index_store import DIM, brute, corpus, unit

from qwen3_vl_embedding.index.records import FileState, Filters, Record, record_id
from qwen3_vl_embedding.index.backends import open_store, store_exists
from qwen3_vl_embedding.index.store import IndexMeta, StoreError, StoreLockedError

pytest.importorskip("pymilvus")
from qwen3_vl_embedding.index import milvus_connect as mc  # noqa: E402
from qwen3_vl_embedding.index import milvus_lease as ml  # noqa: E402
from qwen3_vl_embedding.index import milvus_store as ms  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("milvus-lite", marks=pytest.mark.slow)])
def location(request, tmp_path) -> str:
    return str(tmp_path / "db") if request.param == "sqlite" else lite_location(tmp_path)


def make(location, n, threshold=10**9, precision="float32", seed=0):
    recs, vecs = corpus(n, seed)
    store = open_store(location, IndexMeta("m", DIM, precision, exact_threshold=threshold), write=True)
    for s in range(0, n, 100):
        store.add(recs[s:s + 100], vecs[s:s + 100])
    store.commit()
    return store, recs, vecs


# the embedded store's behaviours, on both ------------------------------------------------------
def test_exact_search_matches_brute_force_with_filters(location):
    store, recs, vecs = make(location, 400)
    q = unit(np.random.default_rng(5).standard_normal(DIM)).astype(np.float32)
    hits = store.search(q, 10)
    assert [h.record.id for h in hits] == brute(recs, vecs, q, 10)
    assert [h.score for h in hits] == pytest.approx(sorted((vecs @ q).tolist(), reverse=True)[:10], abs=1e-5)
    assert {h.record.id: h.record for h in hits} == {r.id: r for r in recs if r.id in {h.record.id for h in hits}}
    for f in [Filters(frozenset({"pdf", "text"}), ("/data/even/*",)), Filters(path_globs=("*/000?[0-4].*",)),
              Filters(frozenset({"video"}), ("/data/odd/*", "*/0001*"))]:
        assert [h.record.id for h in store.search(q, 7, f)] == brute(recs, vecs, q, 7, f.matches)
    assert store.search(q, 5, Filters(path_globs=("*.gif",))) == []
    assert store.count() == {"image": 100, "pdf": 100, "video": 100, "text": 100}
    store.close()


def test_files_upserts_deletions_and_nullable_fields(location):
    store, recs, vecs = make(location, 8)
    state = FileState(recs[0].path, "abc", 10, 2.0, "image", "done", 1)
    store.put_file(state)
    store.add(recs[:1], vecs[:1])  # the same id again replaces, never duplicates
    store.commit()
    assert store.file_states() == {state.path: state}
    assert store.record_ids(recs[0].path) == {recs[0].id} and sum(store.count().values()) == 8
    store.put_file(FileState(recs[0].path, "def", 11, 3.0, "image", "partial"), drop_records=True)
    store.commit()
    assert store.record_ids(recs[0].path) == set() and store.file_states()[recs[0].path].status == "partial"
    assert store.delete_paths([recs[0].path, recs[1].path]) == 1 and store.file_states() == {}
    with pytest.raises(ValueError, match="shape"):
        store.add(recs[2:3], np.zeros((1, DIM + 1), np.float32))
    # Every optional field round-trips, None included; a path with quotes and wildcards is just a path.
    odd = '/data/it\'s "quoted" 100%_[x].txt'
    full = [Record(record_id(odd, "text", i), odd, "text", "h", 5.5, "m", "doc", DIM, chunk=i, text=f"chunk {i}")
            for i in range(2)]
    video = Record(record_id("/v.mp4", "video", 0), "/v.mp4", "video", "h", 1.0, "m", "doc", DIM, start=0.0, end=2.5)
    pdf = Record(record_id("/d.pdf", "pdf", 0), "/d.pdf", "pdf", "h", 1.0, "m", "doc", DIM, page=1)
    extra = unit(np.random.default_rng(3).standard_normal((4, DIM))).astype(np.float32)
    store.add([*full, video, pdf], extra)
    store.commit()
    hits = store.search(extra[0], 8, Filters(path_globs=(odd.replace("[", "[[]"),)))
    assert [h.record for h in hits] == [full[0], full[1]]
    assert store.record_ids(odd) == {r.id for r in full}
    assert store.record_ids(odd, "h") == {r.id for r in full} and store.record_ids(odd, "other") == set()
    assert store.search(extra[2], 1)[0].record == video and store.search(extra[3], 1)[0].record == pdf
    failed = FileState(odd, "h", 3, 5.5, "text", "failed", 0, 'cannot read: "it" broke')
    store.put_file(failed)
    assert store.describe()["failed_files"] == [{"path": odd, "error": failed.error}]
    assert store.delete_paths([odd]) == 2 and store.record_ids(odd) == set()
    assert store.delete_records([video.id, pdf.id, 12345]) == 2 and store.records([video.id, pdf.id]) == {}
    store.commit()
    assert sum(store.count().values()) == 6
    store.close()


def test_one_writer_readers_meanwhile_and_metadata(location):
    meta = IndexMeta("org/model", DIM, "int8", query_instruction="Find it.", fingerprint=(0.5, 0.75),
                     settings={"clip_seconds": 5.0})
    assert not store_exists(location)
    with pytest.raises(StoreError, match="no index at"):
        open_store(location)
    store = open_store(location, meta, write=True)
    recs, vecs = corpus(20)
    store.add(recs, vecs)
    store.commit()
    assert store_exists(location)
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()} on {re.escape(socket.gethostname())}"):
        open_store(location, write=True)
    with open_store(location) as reader:
        assert reader.meta == meta
        assert reader.search(vecs[3], 1)[0].record.id == recs[3].id
        with pytest.raises(StoreError, match="opened for reading"):
            reader.add(recs[:1], vecs[:1])
    store.close()
    open_store(location, write=True).close()  # released on close


# Milvus's own ------------------------------------------------------------------------------------
def test_locations(monkeypatch):
    monkeypatch.delenv(mc.TOKEN_ENV, raising=False)
    p = mc.parse_location
    assert p("milvus://db.example:19531/photos") == mc.MilvusLocation("http://db.example:19531", "photos")
    assert p("milvus://db.example/photos?db=team") == mc.MilvusLocation("http://db.example:19530", "photos", "team")
    assert p("milvus://u:p%40ss@h:1/c").token == "u:p@ss" and p("milvus://h").collection == "qvl"
    assert p("milvus+https://h/c").uri == "https://h:19530"
    monkeypatch.setenv(mc.TOKEN_ENV, "secret")
    assert p("milvus://h/c").token == "secret" and "secret" not in str(p("milvus://h/c"))
    assert p("milvus-lite:///tmp/x.db/photos") == mc.MilvusLocation("/tmp/x.db", "photos", lite=True)
    assert p("milvus-lite://x.db") == mc.MilvusLocation(os.path.abspath("x.db"), "qvl", lite=True)
    assert str(p("milvus-lite:///tmp/x.db/photos")) == "milvus-lite:///tmp/x.db/photos"
    assert str(p("milvus://h:5/c?db=d")) == "milvus://h:5/c?db=d"
    for bad, why in [("milvus-lite:///tmp/x/photos", "ends in .db"), ("milvus://h/my-photos", "collection name"),
                     ("milvus:///c", "no host"), ("milvus://h:99999/c", "bad port")]:
        with pytest.raises(ValueError, match=why):
            p(bad)
    with pytest.raises(StoreError, match="ends in .db"):
        open_store("milvus-lite:///tmp/x/photos")


def like_matches(pattern: str, text: str) -> bool:
    """SQL LIKE as Milvus defines it: % any run, _ one character."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def test_like_patterns_select_at_least_what_globs_do():
    rng = np.random.default_rng(0)
    alphabet = list("ab/._%\"\\") + ["*", "?", "[ab]", "[!a]"]
    names = ["".join(rng.choice(list("ab/._%\"\\"), rng.integers(0, 7))) for _ in range(300)]
    for _ in range(300):
        glob = "".join(rng.choice(alphabet, rng.integers(1, 6)))
        pattern = ms.like_pattern(glob)
        assert '"' not in pattern and "\\" not in pattern
        for name in names:
            if fnmatch.fnmatchcase(name, glob):
                assert like_matches(pattern, name), (glob, pattern, name)
            elif ms.like_is_exact(glob):
                assert not like_matches(pattern, name), (glob, pattern, name)
    assert ms.filter_expression(Filters(frozenset({"pdf", "image"}), ("/a/*",))) == \
        'modality in ["image", "pdf"] and (path like "/a/%")'


@pytest.mark.slow
def test_vector_index_follows_the_threshold_and_scores_stay_exact(tmp_path):
    location = lite_location(tmp_path)
    store, recs, vecs = make(location, 1500, threshold=1000, precision="int8")
    assert store.index_type() == "FLAT" and store.describe()["ann"] is None
    store.optimize()
    ann = store.describe()["ann"]
    assert store.index_type() == "IVF_SQ8" and ann["precision"] == "int8" and ann["vectors"] == 1500
    rng = np.random.default_rng(7)
    queries = unit(vecs[rng.integers(0, 1500, 20)] + 0.3 / np.sqrt(DIM) * rng.standard_normal((20, DIM)))
    queries = queries.astype(np.float32)
    with open_store(location) as reader:
        found = []
        for q in queries:
            hits = reader.search(q, 10, nprobe=8)
            assert [h.score for h in hits] == pytest.approx((np.stack([vecs[recs.index(h.record)] for h in hits])
                                                             @ q).tolist(), abs=1e-5)  # exact, not int8 codes
            found.append(len({h.record.id for h in hits} & set(brute(recs, vecs, q, 10))))
        assert np.mean(found) / 10 >= 0.95
        even = Filters(path_globs=("/data/even/*",))
        assert all(even.matches(h.record) for h in reader.search(queries[0], 10, even))
    store.delete_paths([r.path for r in recs[:10]])  # visible at once, before any rebuild
    assert not {h.record.id for h in store.search(vecs[0], 5)} & {r.id for r in recs[:10]}
    store.optimize(rebuild=True, precision="float32")  # new codes for good
    assert store.index_type() == "HNSW" and store.meta.precision == "float32"
    with open_store(location) as reader:
        assert reader.meta.precision == "float32" and reader.search(vecs[42], 1)[0].record.id == recs[42].id
    store.delete_paths([r.path for r in recs[:1000]])
    store.optimize()  # below the threshold again: exact
    assert store.index_type() == "FLAT" and sum(store.count().values()) == 500
    store.close()


def test_writer_lease_handover():
    alive = {"pid": os.getpid(), "host": socket.gethostname(), "seen": 1000.0}
    assert ml.holder_alive(alive, now=1010.0)
    assert not ml.holder_alive(alive, now=1000.0 + ml.LEASE_SECONDS + 1)  # silent too long
    assert not ml.holder_alive({**alive, "pid": 2**22 + 12345}, now=1010.0)  # dead on this host
    assert ml.holder_alive({**alive, "pid": 2**22 + 12345, "host": "elsewhere"}, now=1010.0)  # can't tell: wait


@pytest.mark.slow
def test_stale_lease_is_taken_over_and_a_fresh_one_refuses(tmp_path):
    location = lite_location(tmp_path)
    open_store(location, IndexMeta("m", DIM), write=True).close()
    probe = open_store(location)
    lock = {"key": "lock", "kind": "lock", "path": "", "status": ""}

    def plant(holder):
        probe.upsert_files([{**lock, "state": json.dumps(holder)}])

    plant({"token": "t", "pid": 2**22 + 12345, "host": socket.gethostname(), "since": 1.0, "seen": time.time()})
    open_store(location, write=True).close()  # its writer died (kill -9): taken over at once
    plant({"token": "t", "pid": 7, "host": "node-2", "since": 1.0, "seen": time.time()})
    with pytest.raises(StoreLockedError, match="pid 7 on node-2"):
        open_store(location, write=True)
    plant({"token": "t", "pid": 7, "host": "node-2", "since": 1.0, "seen": time.time() - 2 * ml.LEASE_SECONDS})
    writer = open_store(location, write=True)  # silent for too long: taken over
    plant({"token": "t", "pid": 7, "host": "node-2", "since": 1.0, "seen": time.time()})
    writer._lease._renew_once()  # the next beat sees another writer took over, and writes stop
    with pytest.raises(StoreLockedError, match="took over"):
        writer.put_file(FileState("/x", "h", 1, 1.0, "image"))
    writer.close()
    probe.close()


@pytest.mark.slow
def test_refusals(tmp_path):
    with pytest.raises(StoreError, match="no store backend answers"):
        open_store("milvus://127.0.0.1:1/x")
    with pytest.raises(StoreError, match="no store backend"):
        open_store("redis://localhost/x")
    from pymilvus import DataType, MilvusClient

    folder = os.path.join(str(tmp_path), "index.db")
    other = MilvusClient(folder)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    other.create_collection("theirs", schema=schema)
    other.close()
    with pytest.raises(StoreError, match="not made by qvl index"):
        open_store(lite_location(tmp_path, "theirs"), IndexMeta("m", DIM), write=True)


def test_without_pymilvus_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "qwen3-vl-embedding\[milvus\]"'):
        open_store(lite_location(tmp_path), IndexMeta("m", DIM), write=True)


@pytest.mark.slow
def test_milvus_lite_in_another_process_is_reported(tmp_path):
    location = lite_location(tmp_path)
    open_store(location, IndexMeta("m", DIM), write=True).close()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, pymilvus; c = pymilvus.MilvusClient(sys.argv[1]); "
                               "print('ready', flush=True); sys.stdin.read()", str(tmp_path / "index.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"  # the other process holds the database now
        with pytest.raises(StoreLockedError, match="open in another process"):
            open_store(location)
    finally:
        holder.stdin.close()
        holder.wait(timeout=300)  # a guard against hangs: it ends as soon as its stdin closes
    with open_store(location) as store:  # free again once it ends
        assert store.meta.model == "m"

"""Shared pieces of the scale-out tests: the environment of the test Ray cluster (the cluster itself is
the `ray_address` fixture, tests/plugins/ray_cluster.py), index contents read back from either store,
and comparisons between two indexes."""
from __future__ import annotations

import os
import sqlite3

import numpy as np

RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",  # Ray 2.60 wants a token by default; a test cluster on loopback needs none
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # no cluster networking: Ray's node address is 127.0.0.1
}


def lite_location(folder, collection: str = "idx") -> str:
    return f"milvus-lite://{os.path.join(str(folder), 'index.db')}/{collection}"


def read_index(location: str) -> tuple[dict, dict, dict]:
    """(records by id, vectors by id, file states by path) of an index in any store."""
    from qwen3_vl_embedding.index import open_store

    if "://" not in location:  # the embedded store: straight from SQLite, as the CLI tests do
        with sqlite3.connect(os.path.join(location, "index.sqlite")) as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM records")]
            vectors = {i: np.frombuffer(v, "<f4") for i, v in conn.execute("SELECT id, vector FROM vectors")}
    with open_store(location) as store:
        if "://" in location:
            ids = store.ids()
            vectors = store.vectors(ids)
        records = store.records(ids)
        files = store.file_states()
    assert len(ids) == len(set(ids)), "duplicate record ids"
    return records, vectors, files


def assert_same_index(a: str, b: str, atol: float = 1e-5) -> None:
    """Same records (every field), the same file states, and vectors within `atol`."""
    ra, va, fa = read_index(a)
    rb, vb, fb = read_index(b)
    assert ra == rb
    assert fa == fb
    assert set(va) == set(vb) == set(ra)
    worst = max((float(np.abs(va[i] - vb[i]).max()) for i in va), default=0.0)
    assert worst <= atol, f"vectors differ by {worst}"

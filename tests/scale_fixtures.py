"""Shared pieces of the scale-out tests: one local Ray cluster per session (on 127.0.0.1 only), index
contents read back from either store, and comparisons between two indexes.

Import the fixtures into a test module (`from scale_fixtures import ray_address  # noqa: F401`)."""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile

import numpy as np
import pytest

RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",  # Ray 2.60 wants a token by default; a test cluster on loopback needs none
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # no cluster networking: every Ray server binds 127.0.0.1
}


@pytest.fixture(scope="session")
def ray_address():
    """A local Ray cluster (2 CPUs, no dashboard) shared by every test module that imports this fixture
    (each import is its own fixture to pytest, hence the module-level cluster); its GCS address, for
    drivers in other processes. It stops when the test session ends."""
    pytest.importorskip("ray")
    if not _cluster:
        _cluster.update(_start_ray())
    return _cluster["address"]


_cluster: dict = {}


def _start_ray() -> dict:
    import atexit

    import ray

    os.environ.update(RAY_ENV)
    temp = tempfile.mkdtemp(prefix="qvl-ray-")  # short: Ray's socket paths must fit in 107 bytes
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level="error")

    def stop():
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)

    atexit.register(stop)
    return {"address": ray.get_runtime_context().gcs_address}


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

"""int8 weights (torchao) on the test checkpoints, CPU threads, and an index searched with other weights."""
from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from qwen3_vl_embedding import runtime
from qwen3_vl_embedding.settings import EMBEDDER


@pytest.fixture(scope="module")
def embedder_int8(tiny_model_dir):
    from qwen3_vl_embedding import Qwen3VLEmbedder

    return Qwen3VLEmbedder(tiny_model_dir, workers=2, quantize="int8")


def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_int8_weights_embed_close_to_float32(embedder, embedder_int8, media):
    import torch
    from torchao.quantization import Int8Tensor

    linears = {n: m for n, m in embedder_int8.engine.backbone.model.named_modules()
               if isinstance(m, torch.nn.Linear)}
    first = {n for n in linears if n.startswith("language_model.layers.0.")}
    assert first and all(not isinstance(linears[n].weight, Int8Tensor) for n in first)  # kept in float
    rest = [m for n, m in linears.items() if n not in first]
    assert rest and all(isinstance(m.weight, Int8Tensor) for m in rest)
    assert any(n.startswith("visual.") for n in linears) and any(n.startswith("language_model.layers.1.")
                                                                  for n in linears)  # both towers
    assert all(not isinstance(m.weight, Int8Tensor) for m in embedder.engine.backbone.model.modules()
               if isinstance(m, torch.nn.Linear))  # the float model is untouched
    assert embedder_int8.quantize == "int8" and embedder.quantize is None
    assert "int8 weights" in repr(embedder_int8)
    items = ["a red kite above a harbour", "quarterly revenue by region", {"image": media["scene.jpg"]},
             {"image": media["large.jpg"], "text": "a photo"}, {"video": media["frames"][:4]}]
    f32, q8 = embedder.embed(items), embedder_int8.embed(items)
    assert q8.dtype == np.float32 and q8.shape == f32.shape
    np.testing.assert_allclose(np.linalg.norm(q8, axis=1), 1.0, atol=1e-5)
    c = cosines(f32, q8)
    assert c.min() > 0.99 and c.max() < 1 - 1e-7  # close, and really quantised
    # Again: equal but for int8 rounding flips (the first call computed the shared prompt prefix inside its
    # batches, later calls reuse it: float differences of 1e-7 that move an activation across a rounding step).
    assert cosines(embedder_int8.embed(items), q8).min() > 0.9999


def test_int8_reranker(reranker, tiny_untied_dir):
    from qwen3_vl_embedding import Qwen3VLReranker

    rr = Qwen3VLReranker(tiny_untied_dir, workers=2, quantize="int8")
    docs = ["a dog on a beach", "tax forms", "a cat on a sofa", "the harbour at dawn"]
    a, b = np.array(reranker.scores("a dog", docs)), np.array(rr.scores("a dog", docs))
    assert np.abs(a - b).max() < 0.02 and not np.array_equal(a, b)


def test_quantize_is_checked(tiny_model_dir):
    from qwen3_vl_embedding import Qwen3VLEmbedder

    with pytest.raises(ValueError, match="quantize"):
        EMBEDDER.replace(quantize="int4")
    with pytest.raises(ValueError, match="for CPUs"):
        runtime.parse_quantize("int8", __import__("torch").device("cuda"))
    with pytest.raises(ValueError, match="threads"):
        Qwen3VLEmbedder(tiny_model_dir, threads=0)


def test_without_torchao_the_error_says_what_to_install(monkeypatch):
    import torch

    from qwen3_vl_embedding.int8_weights import quantize_linear_layers

    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(ImportError, match=r"qwen3-vl-embedding\[cpu\]"):
        quantize_linear_layers(torch.nn.Sequential(torch.nn.Linear(4, 4)))


def test_physical_cores_count_hyperthreads_once(tmp_path, monkeypatch):
    info = "".join(f"processor\t: {cpu}\nphysical id\t: 0\ncore id\t\t: {cpu % 4}\n\n" for cpu in range(8))
    real_open = open

    def fake_open(path, *a, **kw):
        if path == "/proc/cpuinfo":
            return real_open(tmp_path / "cpuinfo", *a, **kw)
        if path == "/sys/fs/cgroup/cpu.max":
            return real_open(tmp_path / "cpu.max", *a, **kw)
        return real_open(path, *a, **kw)

    (tmp_path / "cpuinfo").write_text(info)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert runtime.physical_cores() == 4  # 8 logical CPUs, 2 threads per core
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1, 4})
    assert runtime.physical_cores() == 2  # CPUs 0 and 4 share core 0
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert runtime.physical_cores() == 2  # a quota of 1.5 CPUs


def test_threads_follow_the_physical_cores_unless_omp_num_threads(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(runtime, "physical_cores", lambda: 1)
        monkeypatch.setattr(runtime, "_threads_set", False)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        torch.set_num_threads(2)
        assert runtime.configure_threads() == 2  # OMP_NUM_THREADS wins
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert runtime.configure_threads() == 1
        torch.set_num_threads(2)
        assert runtime.configure_threads() == 2  # once per process: a later choice of the caller stays
        assert runtime.configure_threads(1) == 1  # the threads option always applies
    finally:
        torch.set_num_threads(before)


def test_an_index_searched_with_other_weights_warns(embedder, embedder_int8, tmp_path, caplog):
    from qwen3_vl_embedding.index import retrieval
    from qwen3_vl_embedding.index.compat import verify_model
    from qwen3_vl_embedding.index.indexing import index_paths, open_for_indexing
    from qwen3_vl_embedding.index.sqlite_store import SqliteStore
    from qwen3_vl_embedding.index.store import IndexMismatchError
    from media_factory import scene

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        scene(96, 64, i).save(folder / f"{i}.png")
    db = str(tmp_path / "db")
    index_paths([str(folder)], db, lambda model: embedder, model=embedder.name)
    with SqliteStore(db) as store:
        assert store.meta.quantize is None
        with caplog.at_level(logging.WARNING, logger="qwen3_vl_embedding.index.compat"):
            hits = retrieval.search(store, embedder, retrieval.SearchQuery("a picture"), 3)
            assert len(hits) == 3 and not caplog.records
            hits8 = retrieval.search(store, embedder_int8, retrieval.SearchQuery("a picture"), 3)
        assert len(hits8) == 3
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        message = caplog.records[0].getMessage()
        assert "int8 weights" in message and "without --quantize" in message
        broken = store.meta.__class__(**{**store.meta.__dict__, "fingerprint": tuple(-x for x in store.meta.fingerprint)})
        with pytest.raises(IndexMismatchError):  # another model altogether is still refused
            verify_model(broken, embedder_int8)
    int8_db = str(tmp_path / "db8")
    with open_for_indexing(int8_db, lambda model: embedder_int8, model=embedder_int8.name) as writer:
        writer.embedder()  # a new index takes its metadata from the model
        assert writer.store.meta.quantize == "int8"
    caplog.clear()
    with SqliteStore(int8_db) as store, caplog.at_level(logging.WARNING, logger="qwen3_vl_embedding.index.compat"):
        verify_model(store.meta, embedder)
    assert "with --quantize int8" in caplog.records[0].getMessage()


def test_commands_on_an_index_run_its_weights(qvl, embedder, embedder_int8, tmp_path, monkeypatch, caplog):
    """Without --quantize, index, search and serve run the weights that made the index (as its model);
    --quantize none asks for the released weights, and is told that they differ from the index's."""
    from argparse import Namespace

    from qwen3_vl_embedding.cli import common
    from qwen3_vl_embedding.cli.serve import _index_model
    from qwen3_vl_embedding.runtime import weights_for_index

    asked = []

    def load(args, model=None, **extra):
        asked.append(args.quantize)
        return embedder_int8 if args.quantize == "int8" else embedder

    monkeypatch.setattr(common, "load_embedder", load)
    monkeypatch.delenv("QVL_QUANTIZE", raising=False)
    (tmp_path / "a.txt").write_text("kites over the harbour at dusk " * 4)
    db = str(tmp_path / "db")
    assert qvl("index", str(tmp_path / "a.txt"), "--db", db, "--quantize", "int8", "-q").code == 0
    with caplog.at_level(logging.WARNING, logger="qwen3_vl_embedding.index.compat"):
        assert qvl("search", "kites", "--db", db, "--json").code == 0
        assert not caplog.records  # the index's weights: nothing to warn about
        assert qvl("search", "kites", "--db", db, "--json", "--quantize", "none").code == 0
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "with --quantize int8 to match the index" in caplog.records[0].getMessage()
    (tmp_path / "b.txt").write_text("a red kite above the beach " * 4)
    assert qvl("index", str(tmp_path / "b.txt"), "--db", db, "-q").code == 0  # a later run, no flag
    assert asked == ["int8", "int8", "none", "int8"]
    served = Namespace(db=db, model=None, quantize=None, device="cpu")
    _index_model(served)
    assert served.quantize == "int8"
    # int8 runs on a CPU only: elsewhere a command runs the released weights (and the check warns)
    assert weights_for_index("int8", "cpu") == "int8" and weights_for_index("int8", "cuda") is None
    assert weights_for_index(None, "cpu") is None
    remote = Namespace(quantize=None, server="http://127.0.0.1:9", device=None)
    common.follow_index_weights(remote, Namespace(quantize="int8"))
    assert remote.quantize is None  # the server runs its own weights

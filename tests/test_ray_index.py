"""`qvl index --ray` on a local Ray cluster (2 CPUs, 127.0.0.1): the same index as a local run, the same
incremental updates, failures reported; `embed_dataset` on plain rows; how actors are planned."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from index_corpus import make_corpus
from media_factory import scene
from scale_fixtures import assert_same_index

from qwen3_vl_embedding.distributed.ray_data import ActorPlan, DistributedError, plan_actors

CHUNKS = ["--chunk-tokens", "64", "--chunk-overlap", "8"]


def test_plan_actors():
    assert plan_actors([16, 16], gpus=4) == ActorPlan(4, 8.0, 1.0)  # one per GPU, the CPUs shared out
    assert plan_actors([16], gpus=2, actors=4) == ActorPlan(4, 4.0, 0.5)  # two share each GPU
    assert plan_actors([16], gpus=2, device="cpu") == ActorPlan(1, 16.0)
    assert plan_actors([16, 16, 8], gpus=0) == ActorPlan(3, 8.0)  # one per node, fitting the smallest
    assert plan_actors([2], gpus=0, actors=2) == ActorPlan(2, 1.0)
    assert plan_actors([16, 16], gpus=0, actors=3) == ActorPlan(3, 8.0)  # 10 each would not fit 3 on 2 nodes
    with pytest.raises(DistributedError, match="do not fit"):
        plan_actors([2], gpus=0, actors=3)
    with pytest.raises(ValueError, match="at least 1"):
        plan_actors([2], gpus=0, actors=0)


def test_without_ray_the_error_says_what_to_install(monkeypatch, tmp_path, capsys):
    from qwen3_vl_embedding.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    (tmp_path / "a.txt").write_text("hello")
    assert main(["index", str(tmp_path / "a.txt"), "--db", str(tmp_path / "db"), "--ray"]) == 1
    assert 'pip install "qwen3-vl-embedding[ray]"' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "db")  # nothing created
    bad = main(["index", "--ray", str(tmp_path), "--db", str(tmp_path / "db")])
    assert bad == 1 and "put the paths first" in capsys.readouterr().err


class FakeRayError(Exception):
    pass


def fake_pool(monkeypatch, answer):
    """A RayEmbedder on no cluster: `answer(rows, options)` plays the Ray job (a list of result batches)."""
    import pickle
    from types import SimpleNamespace

    from qwen3_vl_embedding.distributed import ray_embedder

    calls = []

    def embed_dataset(rows, model, **options):
        calls.append(options)
        inputs = [pickle.loads(r[ray_embedder.PICKLED]) for r in rows]
        return SimpleNamespace(iter_batches=lambda **kw: iter(answer(inputs, options)))

    monkeypatch.setattr(ray_embedder, "embed_dataset", embed_dataset)
    pool = object.__new__(ray_embedder.RayEmbedder)
    pool.ray = SimpleNamespace(data=SimpleNamespace(from_items=lambda rows, override_num_blocks: rows),
                               exceptions=SimpleNamespace(RayError=FakeRayError), kill=lambda actor: None)
    pool.name, pool.device, pool.dtype, pool.batch_rows, pool._helper = "m", None, None, 4, None
    pool.plan = ActorPlan(2, 1.0)
    return pool, calls


def batch(positions, errors=None):
    errors = errors or {}
    return {"pos": np.array(positions), "embedding": np.array([[float(p), 1.0] for p in positions], np.float32),
            "error": np.array([errors.get(p, "") for p in positions], dtype=object)}


def test_iter_embed_accounts_for_every_input(monkeypatch):
    from qwen3_vl_embedding.batching import RunStats
    from qwen3_vl_embedding.errors import InputError

    # Results out of order, one batch delivered twice, one item failed, one never back.
    pool, calls = fake_pool(monkeypatch, lambda inputs, options: [batch([3, 4, 0], {4: "cannot decode image"}),
                                                                   batch([1]), batch([3, 4, 0])])
    stats = RunStats()
    got = dict(pool.iter_embed([{"text": str(i)} for i in range(5)], dim=32, instruction="Find it.",
                               on_error="skip", stats=stats, batch_size=3, max_batch_tokens=99))
    assert sorted(got) == [0, 1, 3] and got[3].tolist() == [3.0, 1.0]
    assert [(f.index, f.cause) for f in stats.failures] == [(4, "cannot decode image"),
                                                            (2, "no result came back from the Ray job")]
    assert calls == [{"dim": 32, "instruction": "Find it.", "device": None, "dtype": None, "quantize": None, "batch_rows": 3,
                      "max_batch_tokens": 99, "batch_size": 3, "plan": pool.plan,
                      "media_policy": None}]  # 5 rows, 2 actors: 3 a call
    with pytest.raises(InputError, match="cannot decode"):
        list(pool.iter_embed([{"text": "x"}] * 5, on_error="raise"))

    def crash(inputs, options):
        yield batch([0])
        raise FakeRayError("ActorDiedError: the actor died unexpectedly\nOOM")

    pool, _ = fake_pool(monkeypatch, crash)
    results = pool.iter_embed([{"text": "x"}] * 3, on_error="skip", stats=RunStats())
    assert next(results)[0] == 0
    with pytest.raises(DistributedError, match="the Ray job failed: OOM; what was embedded is stored"):
        next(results)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a guard against hangs: about 25 s on an idle 2-core machine
def test_ray_index_equals_the_local_index(qvl, ray_address, tmp_path):
    corpus = make_corpus(str(tmp_path / "corpus"))
    local, remote = str(tmp_path / "local"), str(tmp_path / "ray")
    ray = ["--ray", ray_address, "--ray-actors", "2"]
    a = qvl("index", corpus["root"], "--db", local, "--json", *CHUNKS)
    b = qvl("index", corpus["root"], "--db", remote, "--json", *CHUNKS, *ray)
    assert a.code == b.code == 2, b.err  # the corrupt image fails in an actor, the empty file on the driver
    drop = ("db", "seconds")
    assert {k: v for k, v in b.json().items() if k not in drop} == {k: v for k, v in a.json().items() if k not in drop}
    reasons = {os.path.basename(s["path"]): s["reason"] for s in b.json()["skipped"]}
    assert reasons["empty.png"] == "empty file" and "cannot" in reasons["corrupt.jpg"]
    assert_same_index(local, remote)

    # Incremental, with the same rules: a changed image, a deleted PDF, a new text file.
    scene(120, 90, 77).save(corpus["image"], quality=90)
    os.unlink(corpus["pdf"])
    with open(os.path.join(corpus["root"], "docs", "new.md"), "w") as f:
        f.write("A lantern over the meadow. " * 20)
    a = qvl("index", corpus["root"], "--db", local, "--json", *CHUNKS).json()
    b = qvl("index", corpus["root"], "--db", remote, "--json", *CHUNKS, *ray).json()
    assert (b["indexed_files"], b["removed_files"], b["unchanged_files"]) == (2, 1, 4)
    assert {k: v for k, v in b.items() if k not in drop} == {k: v for k, v in a.items() if k not in drop}
    assert_same_index(local, remote)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a guard against hangs: about 6 s on an idle 2-core machine
def test_embed_dataset_keeps_every_row(ray_address, tiny_model_dir, embedder, media):
    import ray

    from qwen3_vl_embedding.distributed import embed_dataset

    rows = [{"text": "a kite above the harbour", "image": None}, {"text": None, "image": media["noise.png"]},
            {"text": "the photo", "image": media["noise.png"]}, {"text": None, "image": "/nowhere/missing.jpg"}]
    out = embed_dataset(ray.data.from_items(rows), tiny_model_dir, instruction="Find the picture.", actors=1,
                        batch_rows=2).take_all()
    assert len(out) == len(rows)
    by_text = {(r["text"], r["image"]): r for r in out}  # Ray Data does not keep row order
    want = embedder.embed([{k: v for k, v in r.items() if v} for r in rows[:3]], instruction="Find the picture.")
    for row, vector in zip(rows[:3], want):
        got = by_text[(row["text"], row["image"])]
        assert got["error"] == "" and np.allclose(got["embedding"], vector, atol=1e-5)
    failed = by_text[(None, "/nowhere/missing.jpg")]
    assert "missing.jpg" in failed["error"] or "no such file" in failed["error"].lower()
    assert np.isnan(failed["embedding"]).all()

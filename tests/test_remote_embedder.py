"""`--server URL`: indexing and searching through a running `qvl serve` (a real server on 127.0.0.1) give
the records and vectors of local embedding; the server's limits are respected and named."""
from __future__ import annotations

import os
import sqlite3

import httpx
import numpy as np
import pytest
from index_corpus import make_corpus
from PIL import Image
from server_fixtures import RunningServer, cached_models

from qwen3_vl_embedding.remote import RemoteEmbedder

SPLIT = ["--chunk-tokens", "64", "--chunk-overlap", "8"]


def start(tiny_model_dir, **limits) -> RunningServer:
    from qwen3_vl_embedding.server import ServerConfig, create_app

    config = ServerConfig(**limits)
    embedder, _ = cached_models(tiny_model_dir, None, config.media_policy())
    return RunningServer(create_app(config, embedder=embedder))


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    running = start(tiny_model_dir, max_items=8)  # several requests per run, sent concurrently
    yield running
    running.stop()


@pytest.fixture(scope="module")
def both(qvl, server, tmp_path_factory):
    """The same corpus indexed locally and through the server."""
    root = tmp_path_factory.mktemp("remote")
    corpus = make_corpus(str(root / "corpus"))
    local = qvl("index", corpus["root"], "--db", str(root / "local"), "--json", *SPLIT)
    remote = qvl("index", corpus["root"], "--db", str(root / "remote"), "--json", "--server", server.url, *SPLIT)
    return corpus, str(root / "local"), str(root / "remote"), local, remote


def table(db: str, sql: str):
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
        return conn.execute(sql).fetchall()


def test_indexing_through_the_server_gives_the_local_records_and_vectors(both):
    corpus, local, remote, local_run, remote_run = both
    assert local_run.code == remote_run.code == 2, remote_run.err  # the corpus holds broken files on purpose
    a, b = local_run.json(), remote_run.json()
    assert a["by_modality"] == b["by_modality"] and a["records"] == b["records"] > 0
    assert sorted((s["path"], s["reason"]) for s in a["skipped"]) == sorted((s["path"], s["reason"]) for s in b["skipped"])
    columns = "id, path, modality, page, t_start, t_end, chunk, text, content_hash, date"
    assert table(local, f"SELECT {columns} FROM records ORDER BY id") == \
        table(remote, f"SELECT {columns} FROM records ORDER BY id")
    ours = dict(table(local, "SELECT id, vector FROM vectors"))
    theirs = dict(table(remote, "SELECT id, vector FROM vectors"))
    assert ours.keys() == theirs.keys()
    for i in ours:  # images, PDF pages rendered here, video clips sent as bytes, text chunks
        assert np.allclose(np.frombuffer(ours[i], "<f4"), np.frombuffer(theirs[i], "<f4"), atol=1e-4)


def test_search_and_similar_through_the_server_equal_local_ones(both, qvl, server, tmp_path):
    corpus, local, remote, _, _ = both
    for argv in (["search", "a kite over the harbour"], ["search", "--image", corpus["image"], "--add", "river"],
                 ["similar", corpus["text"], "--chunk", "1"]):
        here = qvl(*argv, "--db", local, "--json", "-k", "50").json()
        there = qvl(*argv, "--db", local, "--json", "-k", "50", "--server", server.url)
        assert there.code == 0, there.err
        assert [h["id"] for h in there.json()] == [h["id"] for h in here]
        assert [h["score"] for h in there.json()] == pytest.approx([h["score"] for h in here], abs=1e-4)
    outside = tmp_path / "note.txt"
    outside.write_text("A note about the harbour and its kites, not in the index. " * 20)
    here = qvl("similar", str(outside), "--db", local, "--json").json()
    there = qvl("similar", str(outside), "--db", local, "--json", "--server", server.url).json()
    assert [h["id"] for h in there] == [h["id"] for h in here]  # the server's tokenizer cut the same chunks


def test_the_server_describes_its_embedder(server, embedder):
    models = httpx.get(f"{server.url}/v1/models", trust_env=False).json()
    (card,) = models["data"]
    assert card["dim"] == embedder.dim and card["default_instruction"] == embedder.default_instruction
    assert card["max_pixels"] == embedder.max_pixels and card["limits"]["max_items"] == 8
    remote = RemoteEmbedder(server.url + "/v1/")
    assert (remote.name, remote.dim, remote.max_pixels) == (card["id"], embedder.dim, embedder.max_pixels)
    assert card.get("quantize") is None and remote.quantize is None  # as released (left out when None)
    text = "Kites over the harbour at dawn, and lanterns."
    assert remote.text_tokenizer.encode(text).ids == embedder.text_tokenizer.encode(text).ids
    vectors = remote.embed(["a", {"text": "b", "instruction": "Find it."}], instruction="Match it.")
    assert vectors.shape == (2, embedder.dim) and np.allclose(
        vectors, embedder.embed(["a", {"text": "b", "instruction": "Find it."}], instruction="Match it."), atol=1e-4)


def test_limits_are_respected_and_a_file_over_them_fails_alone(qvl, tiny_model_dir, tmp_path):
    corpus = make_corpus(str(tmp_path / "corpus"))
    noise = np.random.default_rng(0).integers(0, 255, (800, 800, 3), dtype=np.uint8)
    Image.fromarray(noise).save(os.path.join(corpus["root"], "huge.png"))  # about 1.9 MB
    small = start(tiny_model_dir, max_items=2, max_media_bytes=2**20)
    try:
        run = qvl("index", corpus["root"], "--db", str(tmp_path / "db"), "--json", "--server", small.url, *SPLIT)
        skipped = {os.path.basename(s["path"]): s["reason"] for s in run.json()["skipped"]}
        assert run.code == 2 and "over the server's media size limit of 1.0 MB" in skipped["huge.png"]
        assert "--max-media-mb" in skipped["huge.png"] and set(skipped) == {"huge.png", "corrupt.jpg", "empty.png"}
        assert run.json()["by_modality"] == {"image": 3, "pdf": 3, "video": 3, "text": run.json()["by_modality"]["text"]}
    finally:
        small.stop()
    gone = qvl("search", "x", "--db", str(tmp_path / "db"), "--server", small.url)
    assert gone.code == 1 and "cannot reach the server" in gone.err


def test_an_api_key_is_sent_from_qvl_api_key(tiny_model_dir, monkeypatch):
    locked = start(tiny_model_dir, api_key="s3cret")
    try:
        monkeypatch.delenv("QVL_API_KEY", raising=False)
        with pytest.raises(Exception, match="QVL_API_KEY"):
            RemoteEmbedder(locked.url)
        monkeypatch.setenv("QVL_API_KEY", "s3cret")
        assert RemoteEmbedder(locked.url).embed(["hello"]).shape[0] == 1
    finally:
        locked.stop()

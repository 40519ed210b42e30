"""`qvl index / search / info --db milvus-lite://...` end to end with the tiny checkpoint: the same index,
the same results and the same incremental behaviour as the embedded store on the same folder."""
from __future__ import annotations

import os

import numpy as np

import pytest
from index_corpus import make_corpus
from media_factory import scene
from scale_fixtures import assert_same_index, lite_location

pytest.importorskip("pymilvus")
pytestmark = pytest.mark.slow  # Milvus Lite end to end

CHUNKS = ["--chunk-tokens", "64", "--chunk-overlap", "8"]


def test_milvus_index_equals_the_embedded_one(qvl, tmp_path):
    corpus = make_corpus(str(tmp_path / "corpus"))
    sqlite, milvus = str(tmp_path / "db"), lite_location(tmp_path)
    first = {db: qvl("index", corpus["root"], "--db", db, "--json", *CHUNKS) for db in (sqlite, milvus)}
    assert first[sqlite].code == first[milvus].code == 2, first[milvus].err  # the corrupt and empty files
    assert {k: v for k, v in first[milvus].json().items() if k not in ("db", "seconds")} == \
        {k: v for k, v in first[sqlite].json().items() if k not in ("db", "seconds")}
    assert_same_index(sqlite, milvus)

    for query in (["a kite over the harbour"], ["--image", corpus["image"]],
                  ["x", "--filter", "modality=video,text", "--filter", "path=*.mp4"],
                  ["dog", "--filter", "path=photos/2024/*"]):
        hits = {db: qvl("search", *query, "--db", db, "--json", "-k", "8").json() for db in (sqlite, milvus)}
        assert [h["id"] for h in hits[milvus]] == [h["id"] for h in hits[sqlite]] and hits[sqlite]
        assert [h["score"] for h in hits[milvus]] == pytest.approx([h["score"] for h in hits[sqlite]], abs=1e-5)

    # Incremental: a changed image, a deleted PDF, a new text, a touched video; then the same on both.
    scene(120, 90, 77).save(corpus["image"], quality=90)
    os.unlink(corpus["pdf"])
    with open(os.path.join(corpus["root"], "docs", "new.md"), "w") as f:
        f.write("A lantern over the meadow. " * 20)
    os.utime(corpus["video"])
    second = {db: qvl("index", corpus["root"], "--db", db, "--json", *CHUNKS).json() for db in (sqlite, milvus)}
    for s in second.values():
        assert (s["indexed_files"], s["removed_files"], s["removed_records"]) == (2, 1, 3)
        assert s["items_added"] == 1 + s["by_modality"]["text"] - first[sqlite].json()["by_modality"]["text"]
    assert second[milvus]["by_modality"] == second[sqlite]["by_modality"] and "pdf" not in second[milvus]["by_modality"]
    assert_same_index(sqlite, milvus)

    info = qvl("info", "--db", milvus, "--json", models=False)
    assert info.code == 0, info.err
    facts = info.json()
    assert facts["db"] == milvus and facts["records"] == sum(second[milvus]["by_modality"].values())
    assert facts["search"] == "exact" and len(facts["failed_files"]) == 2 and facts["size_bytes"] > 0
    table = qvl("info", "--db", milvus, models=False)
    assert "milvus-lite://" in table.out and "failed: " in table.out

    refused = qvl("index", corpus["root"], "--db", milvus, "--dim", "32", *CHUNKS)
    assert refused.code == 1 and "built with dim 64, not 32" in refused.err
    rebuilt = qvl("index", "--db", milvus, "--rebuild-ann", "int8", "--json", models=False)
    assert rebuilt.code == 0, rebuilt.err
    assert qvl("info", "--db", milvus, "--json", models=False).json()["precision"] == "int8"
    missing = qvl("search", "x", "--db", lite_location(tmp_path / "nowhere"))
    assert missing.code == 1 and "no index at" in missing.err


def test_serve_searches_a_milvus_index(qvl, serve, tmp_path, tiny_model_dir, embedder):
    """`qvl serve --db milvus-lite://...`: the server's /v1/search answers from the Milvus store."""
    import httpx

    from qwen3_vl_embedding.index import open_store, parse_filters
    from qwen3_vl_embedding.index import retrieval as searching

    root = tmp_path / "texts"
    root.mkdir()
    for name, text in {"cats.txt": "Cats sleep most of the day.", "market.txt": "The market fell on Tuesday.",
                       "beach.md": "A dog runs along the beach at sunset."}.items():
        (root / name).write_text(text)
    db = lite_location(tmp_path)
    assert qvl("index", str(root), "--db", db, "-q").code == 0
    with serve(models=(tiny_model_dir, None), index=db) as server:  # stopped before the store is read below
        r = httpx.post(f"{server.url}/v1/search", json={"query": "sleepy cats", "k": 2,
                                                       "filters": {"path": ["*.txt"]}}, timeout=60, trust_env=False)
    assert r.status_code == 200, r.text
    with open_store(db) as store:
        want = searching.search(store, embedder, searching.SearchQuery("sleepy cats"), 2, parse_filters(["path=*.txt"]))
    assert [h["id"] for h in r.json()["results"]] == [h.record.id for h in want] and len(want) == 2
    np.testing.assert_allclose([h["score"] for h in r.json()["results"]], [h.score for h in want], atol=1e-4)

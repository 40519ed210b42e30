"""`qvl index`, `qvl search`, `qvl info` end to end on a generated folder with the tiny checkpoint."""
from __future__ import annotations

import os
import shutil
import sqlite3

import numpy as np
import pytest
from index_corpus import BAD, GOOD_IMAGES, IGNORED, PDF_PAGES, VIDEO_CLIPS, make_corpus

from qwen3_vl_embedding.index import ingest
from qwen3_vl_embedding.index.retrieval import document_input
from qwen3_vl_embedding.index.sqlite_store import SqliteStore

CHUNKS = ["--chunk-tokens", "64", "--chunk-overlap", "8"]


@pytest.fixture(scope="module")
def indexed(qvl, tmp_path_factory):
    """The corpus and its index, built once (tests that change them work on copies)."""
    root = tmp_path_factory.mktemp("idx")
    corpus = make_corpus(str(root / "corpus"))
    result = qvl("index", corpus["root"], "--db", str(root / "db"), "--json", *CHUNKS)
    return corpus, str(root / "db"), result


def rows(db: str, sql: str, params=()):
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
        return conn.execute(sql, params).fetchall()


def n_chunks(embedder, path: str) -> int:
    return len(ingest.chunk_text(open(path).read(), embedder.text_tokenizer, 64, 8))


def test_index_end_to_end(indexed, embedder):
    corpus, db, result = indexed
    real = os.path.realpath(corpus["root"])
    assert result.code == 2, result.err  # some supported files were skipped
    summary = result.json()
    skipped = {os.path.relpath(s["path"], real): s["reason"] for s in summary["skipped"]}
    assert set(skipped) == set(BAD) and all(BAD[p] in skipped[p] for p in BAD)
    assert [os.path.relpath(s["path"], real) for s in summary["ignored"]] == list(IGNORED)
    text_chunks = n_chunks(embedder, corpus["text"])
    assert summary["by_modality"] == {"image": len(GOOD_IMAGES), "pdf": PDF_PAGES, "video": VIDEO_CLIPS,
                                      "text": text_chunks}
    assert summary["indexed_files"] == len(GOOD_IMAGES) + 3 and summary["files_seen"] == len(GOOD_IMAGES) + 5
    assert not rows(db, "SELECT path FROM records WHERE path LIKE '%secret%'")  # hidden folder skipped
    pages = rows(db, "SELECT page FROM records WHERE modality = 'pdf' ORDER BY page")
    spans = rows(db, "SELECT t_start, t_end FROM records WHERE modality = 'video' ORDER BY t_start")
    chunks = rows(db, "SELECT chunk FROM records WHERE modality = 'text' ORDER BY chunk")
    assert pages == [(1,), (2,), (3,)] and spans == [(0, 10), (10, 20), (20, 25)]
    assert chunks == [(i,) for i in range(text_chunks)]
    for path, digest, model, instruction, dim in rows(db, "SELECT path, content_hash, model, instruction, dim "
                                                          "FROM records"):
        assert digest == ingest.content_hash(path)
        assert (model, instruction, dim) == (embedder.name, embedder.default_instruction, embedder.dim)


def test_every_stored_vector_is_the_embedding_of_its_unit(indexed, embedder):
    """Vectors arrive out of order and from many files at once: each must land on its own record."""
    _, db, _ = indexed
    with SqliteStore(db) as store:
        found = store.records([r[0] for r in rows(db, "SELECT id FROM records")])
        vectors = {i: np.frombuffer(v, "<f4") for i, v in rows(db, "SELECT id, vector FROM vectors")}
    ids = sorted(found)
    inputs = [document_input(found[i], embedder.max_pixels) for i in ids]
    want = embedder.embed(inputs)
    got = np.stack([vectors[i] for i in ids])
    assert np.allclose(got, want, atol=1e-5)
    ingest.close_documents_quietly()


def test_search_json_schema_and_exact_order(indexed, qvl, embedder):
    corpus, db, _ = indexed
    result = qvl("search", "a kite over the harbour", "--db", db, "--json", "-k", "100")
    assert result.code == 0, result.err
    hits = result.json()
    assert len(hits) == rows(db, "SELECT count(*) FROM records")[0][0]
    for h in hits:
        assert isinstance(h["path"], str) and isinstance(h["score"], float) and os.path.isabs(h["path"])
        kind = h["modality"]
        assert ("page" in h) == (kind == "pdf") and ("chunk" in h) == (kind == "text")
        assert ("start" in h and "end" in h) == (kind == "video")
        if kind == "pdf":
            assert 1 <= h["page"] <= PDF_PAGES
        if kind == "video":
            assert 0 <= h["start"] < h["end"] <= 25
        if kind == "text":
            assert h["chunk"] >= 0 and h["text"] in open(corpus["text"]).read()
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    with SqliteStore(db) as store:
        instruction = store.meta.query_instruction
    q = embedder.embed([{"text": "a kite over the harbour", "instruction": instruction}])[0]
    stored = dict(rows(db, "SELECT id, vector FROM vectors"))
    want = sorted(((float(np.frombuffer(v, "<f4") @ q), i) for i, v in stored.items()), reverse=True)
    assert [h["id"] for h in hits] == [i for _, i in want]
    assert scores == pytest.approx([s for s, _ in want], abs=1e-5)


def test_table_output_and_image_query(indexed, qvl):
    corpus, db, _ = indexed
    result = qvl("search", "--image", corpus["image"], "--db", db, "-k", "4")
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert lines[0].split() == ["#", "score", "date", "modality", "where", "path"] and len(lines) == 5
    assert os.path.basename(corpus["image"]) not in result.out  # the query's own file is left out
    mixed = qvl("search", "beach", "--image", corpus["image"], "--video", corpus["video"], "--db", db, "--json")
    assert mixed.code == 0 and len(mixed.json()) == 10


def test_filters(indexed, qvl):
    _, db, _ = indexed
    pdf = qvl("search", "chart", "--db", db, "--json", "--filter", "modality=pdf").json()
    assert {h["modality"] for h in pdf} == {"pdf"} and len(pdf) == PDF_PAGES
    photos = qvl("search", "dog", "--db", db, "--json", "--filter", "path=photos/2024/*").json()
    assert sorted(os.path.basename(h["path"]) for h in photos) == ["cat.webp", "dog.png"]
    both = qvl("search", "x", "--db", db, "--json", "--filter", "modality=video,text", "--filter", "path=*.mp4").json()
    assert {h["modality"] for h in both} == {"video"} and len(both) == VIDEO_CLIPS
    none = qvl("search", "x", "--db", db, "--filter", "path=*.gif")
    assert none.code == 0 and none.out == "" and "filters match nothing" in none.err
    bad = qvl("search", "x", "--db", db, "--filter", "colour=red")
    assert bad.code == 1 and "unknown filter key" in bad.err


def test_rerank_reorders_candidates_by_reranker_score(indexed, qvl, reranker):
    _, db, _ = indexed
    plain = qvl("search", "harbour at dawn", "--db", db, "--json", "-k", "50").json()
    result = qvl("search", "harbour at dawn", "--db", db, "--json", "-k", "4", "--rerank", "--rerank-top", "50")
    assert result.code == 0, result.err
    hits = result.json()
    assert len(hits) == 4 and all("similarity" in h for h in hits)
    by_id = {h["id"]: h for h in plain}
    with SqliteStore(db) as store:
        records = store.records(list(by_id))
    max_pixels = reranker.max_pixels
    ids = [h["id"] for h in plain]  # every modality is among the candidates: pages, clips, chunks, images
    scores = reranker.scores({"text": "harbour at dawn"}, [document_input(records[i], max_pixels) for i in ids])
    want = sorted(zip(scores, ids), key=lambda t: (-t[0], -by_id[t[1]]["score"]))[:4]
    assert [h["id"] for h in hits] == [i for _, i in want]
    assert [h["score"] for h in hits] == pytest.approx([s for s, _ in want], abs=1e-5)
    assert [h["similarity"] for h in hits] == pytest.approx([by_id[i]["score"] for _, i in want], abs=1e-6)
    ingest.close_documents_quietly()


def test_model_and_dim_mismatch_are_refused(indexed, qvl, tiny_model_dir, tiny_untied_dir, tmp_path):
    corpus, db, _ = indexed
    other = qvl("search", "x", "--db", db, "--model", tiny_untied_dir, models=False)
    assert other.code == 1 and "computes different embeddings" in other.err and f"--model {tiny_model_dir}" in other.err
    dim = qvl("search", "x", "--db", db, "--dim", "32")
    assert dim.code == 1 and "built with dim 64, not 32" in dim.err
    before = rows(db, "SELECT count(*) FROM records"), rows(db, "SELECT * FROM files ORDER BY path")
    unchanged = qvl("index", corpus["root"], "--db", db, "--model", tiny_untied_dir, models=False)
    assert unchanged.code == 0 and "no model loaded" in unchanged.out  # nothing to embed: the model is not used
    (tmp_path / "new.txt").write_text("a new note about lanterns " * 10)
    reindex = qvl("index", str(tmp_path), "--db", db, "--model", tiny_untied_dir, models=False)
    assert reindex.code == 1 and "computes different embeddings" in reindex.err
    assert (rows(db, "SELECT count(*) FROM records"), rows(db, "SELECT * FROM files ORDER BY path")) == before
    missing = qvl("search", "x", "--db", str(tmp_path / "nothing"))
    assert missing.code == 1 and "no index at" in missing.err


def test_info(indexed, qvl, embedder):
    corpus, db, _ = indexed
    info = qvl("info", "--db", db, "--json").json()
    assert info["model"] == embedder.name and info["dim"] == 64 and info["precision"] == "float32"
    assert info["records"] == sum(info["by_modality"].values()) and info["search"] == "exact"
    assert info["files"] == {"done": len(GOOD_IMAGES) + 3, "failed": len(BAD)}
    assert info["size_bytes"] >= os.path.getsize(os.path.join(db, "index.sqlite"))
    text = qvl("info", "--db", db)
    assert text.code == 0 and "records" in text.out and "failed: " in text.out and "size on disk" in text.out


def test_rerun_changed_touched_and_deleted_files(qvl, embedder, tmp_path):
    from media_factory import scene

    corpus = make_corpus(str(tmp_path / "corpus"))
    db = str(tmp_path / "db")
    first = qvl("index", corpus["root"], "--db", db, "--json", *CHUNKS).json()
    again = qvl("index", corpus["root"], "--db", db, "--json", *CHUNKS).json()
    assert again["indexed_files"] == 0 and again["items_added"] == 0
    assert again["unchanged_files"] == first["indexed_files"] and again["records"] == first["records"]
    ids_before = {r[0] for r in rows(db, "SELECT id FROM records")}
    # Change one image, touch another (same bytes), grow the text, delete the video.
    scene(160, 120, 77).save(corpus["image"], quality=90)
    dog = os.path.join(corpus["root"], GOOD_IMAGES[1])
    os.utime(dog, (1_000_000_000, 1_000_000_000))
    with open(corpus["text"], "a") as f:
        f.write("\n" + "A brand new closing paragraph about lanterns and glaciers. " * 40)
    os.unlink(corpus["video"])
    third = qvl("index", corpus["root"], "--db", db, "--json", *CHUNKS)
    summary = third.json()
    assert summary["indexed_files"] == 2 and summary["removed_files"] == 1
    assert summary["unchanged_files"] == first["indexed_files"] - 3
    assert not rows(db, "SELECT * FROM records WHERE modality = 'video'")
    assert rows(db, "SELECT mtime FROM files WHERE path = ?", (os.path.realpath(dog),)) == [(1_000_000_000.0,)]
    chunks = n_chunks(embedder, corpus["text"])
    assert rows(db, "SELECT count(*), max(chunk) FROM records WHERE modality = 'text'") == [(chunks, chunks - 1)]
    image = rows(db, "SELECT v.vector FROM records r JOIN vectors v USING (id) WHERE r.path = ?",
                 (os.path.realpath(corpus["image"]),))
    assert np.allclose(np.frombuffer(image[0][0], "<f4"), embedder.embed([{"image": corpus["image"]}])[0], atol=1e-5)
    assert {r[0] for r in rows(db, "SELECT id FROM records")} - ids_before == \
        {r[0] for r in rows(db, "SELECT id FROM records WHERE modality = 'text'")} - ids_before
    # Deleting a whole folder given as a root forgets everything under it, and only that.
    shutil.rmtree(os.path.join(corpus["root"], "photos"))
    fourth = qvl("index", corpus["root"], "--db", db, "--json", *CHUNKS).json()
    assert fourth["removed_files"] == len(GOOD_IMAGES) + 1 and fourth["by_modality"].get("image") is None
    assert fourth["by_modality"]["pdf"] == PDF_PAGES


def test_interrupted_run_keeps_committed_work_and_resumes(embedder, tmp_path):
    from qwen3_vl_embedding.index.indexer import Indexer, IndexOptions
    from qwen3_vl_embedding.index.ingest import IngestOptions
    from qwen3_vl_embedding.index import IndexMeta, open_store

    corpus = make_corpus(str(tmp_path / "corpus"))
    options = IndexOptions(IngestOptions(chunk_tokens=64, chunk_overlap=8), commit_seconds=0.0, batch_size=2)

    class StopAfter:
        """A progress bar that presses Ctrl-C when the third file is done."""

        def __init__(self):
            self.n = 0

        def reset(self, total):
            pass

        def set_postfix_str(self, *a, **k):
            pass

        def update(self, n):
            self.n += n
            if self.n == 3:
                raise KeyboardInterrupt

    meta = IndexMeta(embedder.name, embedder.dim)
    with open_store(str(tmp_path / "db"), meta, write=True) as store:
        with pytest.raises(KeyboardInterrupt):
            Indexer(store, embedder, options, StopAfter()).run([corpus["root"]])
    kept = {r[0] for r in rows(str(tmp_path / "db"), "SELECT id FROM records")}
    assert kept  # what was committed stays
    with open_store(str(tmp_path / "db"), write=True) as store:
        report = Indexer(store, embedder, options).run([corpus["root"]])
    with open_store(str(tmp_path / "fresh"), meta, write=True) as store:
        Indexer(store, embedder, options).run([corpus["root"]])
    resumed = rows(str(tmp_path / "db"), "SELECT id, vector FROM vectors ORDER BY id")
    fresh = rows(str(tmp_path / "fresh"), "SELECT id, vector FROM vectors ORDER BY id")
    assert 0 < len(kept) < len(fresh) and report.items_added == len(fresh) - len(kept)
    assert [i for i, _ in resumed] == [i for i, _ in fresh]
    assert all(np.allclose(np.frombuffer(a, "<f4"), np.frombuffer(b, "<f4"), atol=1e-5)
               for (_, a), (_, b) in zip(resumed, fresh))
    assert rows(str(tmp_path / "db"), "SELECT DISTINCT status FROM files WHERE path NOT LIKE '%corrupt%' "
                                      "AND path NOT LIKE '%empty%'") == [("done",)]


def test_index_folder_inside_the_tree_and_rebuild_ann_alone(qvl, tmp_path):
    (tmp_path / "a.txt").write_text("kites over the harbour " * 20)
    db = tmp_path / "idx"
    first = qvl("index", str(tmp_path), "--db", str(db), "--json")
    assert first.code == 0 and first.json()["ignored"] == [] and first.json()["by_modality"] == {"text": 1}
    again = qvl("index", str(tmp_path), "--db", str(db), "--json")
    assert again.code == 0 and again.json()["unchanged_files"] == 1 and again.json()["ignored"] == []
    rebuilt = qvl("index", "--db", str(db), "--rebuild-ann")
    assert rebuilt.code == 0 and "no approximate index needed" in rebuilt.out
    assert qvl("index", "--db", str(db), "--rebuild-ann", "int8").code == 0
    assert qvl("info", "--db", str(db), "--json").json()["precision"] == "int8"
    assert qvl("index", "--db", str(db)).code == 1  # nothing to index
    assert "no such file or folder" in qvl("index", str(tmp_path / "nope"), "--db", str(db)).err
    assert qvl("index", str(tmp_path), "--db", str(tmp_path / "x"), "--precision", "binary").code == 1

"""`qvl similar` (more like this, from stored vectors or a new file) and `qvl dupes` (planted copies)."""
from __future__ import annotations

import os
import shutil

import pytest
from index_corpus import make_corpus
from PIL import Image

from media_factory import scene
from qwen3_vl_embedding.index import open_store

# With random weights every picture embeds close to every other (cosine about 0.98), so the tests use a
# threshold between distinct scenes (at most 0.996 here) and copies (0.999 and above).
COPIES = "0.998"


@pytest.fixture(scope="module")
def indexed(qvl, tmp_path_factory):
    root = tmp_path_factory.mktemp("similar")
    corpus = make_corpus(str(root / "corpus"))
    # Planted duplicates: an exact copy, and the same picture re-saved at another JPEG quality.
    beach = corpus["image"]
    os.makedirs(os.path.join(corpus["root"], "backup"))
    shutil.copy(beach, os.path.join(corpus["root"], "backup", "beach-copy.jpg"))
    Image.open(beach).save(os.path.join(corpus["root"], "backup", "beach-q50.jpg"), quality=50)
    dog = os.path.join(corpus["root"], "photos/2024/trip/dog.png")
    Image.open(dog).convert("RGB").save(os.path.join(corpus["root"], "backup", "dog.jpg"), quality=95)
    db = str(root / "db")
    result = qvl("index", corpus["root"], "--db", db, "--json", "--chunk-tokens", "64", "--chunk-overlap", "8")
    assert result.code == 2, result.err  # the corpus holds broken files on purpose
    return corpus, db


def stored(db, path):
    with open_store(db) as store:
        records = store.records_of(os.path.realpath(path))
        return records, store.vectors([r.id for r in records])


def test_similar_uses_the_stored_vector_and_leaves_the_item_out(indexed, qvl):
    corpus, db = indexed
    (record,), vectors = stored(db, corpus["image"])
    hits = qvl("similar", corpus["image"], "--db", db, "--json", "-k", "100").json()
    with open_store(db) as store:
        want = [h for h in store.search(vectors[record.id], 100) if h.record.id != record.id]
    assert [h["id"] for h in hits] == [h.record.id for h in want]
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in want], abs=1e-5)
    table = qvl("similar", corpus["image"], "--db", db, "-k", "3")
    assert table.code == 0 and table.out.splitlines()[0].split() == ["#", "score", "date", "modality", "where", "path"]
    images = qvl("similar", corpus["image"], "--db", db, "-f", "--filter", "modality=image").out.splitlines()
    assert os.path.realpath(corpus["image"]) not in images and len(images) == 5


def test_similar_to_a_page_or_a_clip(indexed, qvl):
    corpus, db = indexed
    pages, vectors = stored(db, corpus["pdf"])
    hits = qvl("similar", corpus["pdf"], "--page", "2", "--db", db, "--json", "-k", "100").json()
    with open_store(db) as store:
        want = [h for h in store.search(vectors[pages[1].id], 100) if h.record.id != pages[1].id]
    assert [h["id"] for h in hits] == [h.record.id for h in want]
    assert {h.get("page") for h in hits if h["path"] == pages[0].path} == {1, 3}  # the other pages stay
    whole = qvl("similar", corpus["pdf"], "--db", db, "--json", "-k", "100").json()
    assert pages[0].path not in {h["path"] for h in whole}  # no page of the file itself
    clips, clip_vectors = stored(db, corpus["video"])
    at = qvl("similar", corpus["video"], "--at", "12.5", "--db", db, "--json", "-k", "100").json()
    with open_store(db) as store:
        want = [h for h in store.search(clip_vectors[clips[1].id], 100) if h.record.id != clips[1].id]
    assert [h["id"] for h in at] == [h.record.id for h in want]
    assert qvl("similar", corpus["pdf"], "--page", "9", "--db", db).code == 1
    assert "no such file" in qvl("similar", str(corpus["root"]) + "/nope.jpg", "--db", db).err


def test_similar_to_a_file_not_in_the_index_embeds_it_as_a_document(indexed, qvl, embedder, tmp_path):
    corpus, db = indexed
    outside = tmp_path / "outside.png"
    scene(120, 90, 42).save(outside)
    hits = qvl("similar", str(outside), "--db", db, "--json", "-k", "100").json()
    with open_store(db) as store:
        vector = embedder.embed([{"image": str(outside), "instruction": store.meta.document_instruction}])[0]
        want = store.search(vector, 100)
    assert [h["id"] for h in hits] == [h.record.id for h in want]
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in want], abs=1e-5)


def test_dupes_finds_exact_copies_and_recompressed_ones(indexed, qvl):
    corpus, db = indexed
    groups = qvl("dupes", "--db", db, "--threshold", COPIES, "--json")
    assert groups.code == 0, groups.err
    found = [sorted(os.path.relpath(h["path"], os.path.realpath(corpus["root"])) for h in g["items"])
             for g in groups.json()]
    assert found == [["backup/beach-copy.jpg", "backup/beach-q50.jpg", "photos/2023/beach.jpg"],
                     ["backup/dog.jpg", "photos/2024/trip/dog.png"]]  # largest group first
    first = groups.json()[0]
    assert first["size"] == 3 and first["items"][0]["score"] == pytest.approx(1.0, abs=1e-6)
    assert min(h["score"] for h in first["items"]) == pytest.approx(first["min_score"])
    assert {"path", "score", "modality", "date", "id"} <= set(first["items"][0])
    copy = {os.path.basename(h["path"]): h["score"] for h in first["items"]}
    assert copy["beach-copy.jpg"] == pytest.approx(1.0, abs=1e-6) and copy["beach-q50.jpg"] < 1.0
    paths = qvl("dupes", "--db", db, "--threshold", COPIES, "-f")
    assert [block.splitlines() for block in paths.out.strip().split("\n\n")] == \
        [[h["path"] for h in g["items"]] for g in groups.json()]
    table = qvl("dupes", "--db", db, "--threshold", COPIES)
    assert table.out.startswith("group 1: 3 items") and "2 group(s) of near-duplicates" in table.err
    only_png = qvl("dupes", "--db", db, "--threshold", COPIES, "--filter", "path=*.png", "--json").json()
    assert only_png == []  # a filter keeps only pairs whose items both match
    pdf = ["--filter", "path=*.pdf", "--threshold", "-1", "--json"]
    assert qvl("dupes", "--db", db, *pdf).json() == []  # pages of one file are not paired with each other
    pages = qvl("dupes", "--db", db, *pdf, "--same-file").json()
    assert [[h["page"] for h in g["items"]] for g in pages] == [[1, 2, 3]]
    assert qvl("dupes", "--db", db, "--threshold", "2").code == 1


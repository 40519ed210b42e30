"""From files to units: the walk (symlink loops, hidden names, broken links), PDF pages, video clips,
text chunks."""
from __future__ import annotations

import os

import numpy as np
import pytest
from index_corpus import GOOD_IMAGES, make_corpus
from media_factory import write_mp4

from qwen3_vl_embedding.index import ingest
from qwen3_vl_embedding.index.ingest import Found, Problem, UnitError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(str(tmp_path_factory.mktemp("corpus")))


def test_walk_finds_each_file_once_and_ends_on_loops(corpus, tmp_path):
    root = corpus["root"]
    os.symlink(os.path.join(root, "photos"), tmp_path / "photos-link")  # the same files by another way
    os.symlink(tmp_path / "b", tmp_path / "a")  # a file-level loop
    os.symlink(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "broken.jpg")
    entries = list(ingest.walk([root, str(tmp_path)], exclude=[]))
    found = [e for e in entries if isinstance(e, Found)]
    paths = [f.path for f in found]
    assert len(paths) == len(set(paths))
    rel = sorted(os.path.relpath(p, os.path.realpath(root)) for p in paths)
    assert rel == sorted([*GOOD_IMAGES, "docs/report.pdf", "movie.mp4", "docs/long.txt", "photos/corrupt.jpg",
                          "empty.png", "notes.xyz"])
    assert {f.modality for f in found if f.path.endswith(".xyz")} == {None}
    problems = {os.path.basename(p.path): p for p in entries if isinstance(p, Problem)}
    assert problems["a"].reason == "symbolic link loop" and problems["broken.jpg"].reason == "broken symbolic link"
    assert problems["broken.jpg"].supported and not problems["a"].supported
    hidden = [f.path for f in ingest.walk([root], hidden=True) if isinstance(f, Found)]
    assert any(p.endswith("secret.png") for p in hidden)
    assert not [f for f in ingest.walk([root], exclude=[os.path.join(root, "docs")]) if "docs" in f.path]


def test_pdf_pages_render_lazily_within_the_budget(corpus):
    units = ingest.units(Found(corpus["pdf"], 1, 0.0, "pdf"), ingest.IngestOptions(document_max_pixels=100_000))
    assert [u.page for u in units] == [1, 2, 3]
    page = units[1].input["image"]
    assert callable(page) and page.size[0] * page.size[1] <= 100_000 * 1.01
    image = page()
    assert image.mode == "RGB" and abs(image.size[0] - page.size[0]) <= 1 and abs(image.size[1] - page.size[1]) <= 1
    ingest.close_documents_quietly()
    with pytest.raises(UnitError, match="cannot read PDF"):
        ingest.pdf_units(corpus["image"], 100_000)


def test_video_clips(corpus, tmp_path):
    units = ingest.units(Found(corpus["video"], 1, 0.0, "video"), ingest.IngestOptions(clip_seconds=10))
    assert [(u.start, u.end) for u in units] == [(0, 10), (10, 20), (20, 25)]
    part = units[1].input["content"][0]
    assert (part["type"], part["video"], part["video_start"], part["video_end"]) == ("video", corpus["video"], 10, 20)
    short = write_mp4(str(tmp_path / "short.mp4"), 3, fps=4, size=(64, 48))
    assert [(u.start, u.end) for u in ingest.video_units(short, 10)] == [(0, 3)]
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 20)
    with pytest.raises(UnitError, match="cannot read video"):
        ingest.video_units(str(junk), 10)


def test_text_chunks_cover_the_text_with_overlap(corpus, tiny_model_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(tiny_model_dir, "tokenizer.json"))
    text = open(corpus["text"]).read()
    chunks = ingest.chunk_text(text, tok, 64, 8)
    assert len(chunks) > 5 and all(c in text for c in chunks)
    assert all(len(tok.encode(c, add_special_tokens=False).ids) <= 66 for c in chunks)
    assert chunks[0] == text[:len(chunks[0])] and text.rstrip().endswith(chunks[-1])
    for a, b in zip(chunks, chunks[1:]):  # consecutive chunks share their boundary text
        assert text.index(b) < text.index(a) + len(a)
    with pytest.raises(UnitError, match="empty file"):
        ingest.units(Found(corpus["text"], 0, 0.0, "text"), ingest.IngestOptions(), tok)


def test_bad_text_files(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"abc\0def")
    (tmp_path / "blank.md").write_text("  \n\t\n")
    with pytest.raises(UnitError, match="binary"):
        ingest.read_text(str(tmp_path / "bin.txt"))
    with pytest.raises(UnitError, match="only whitespace"):
        ingest.read_text(str(tmp_path / "blank.md"))


def test_content_hash_follows_bytes(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same")
    b.write_text("same")
    assert ingest.content_hash(str(a)) == ingest.content_hash(str(b))
    b.write_text("other")
    assert ingest.content_hash(str(a)) != ingest.content_hash(str(b))


def test_image_loaders_are_read_lazily_on_worker_threads(embedder, media):
    """The additive core feature PDF pages rely on: an image may be a callable returning a PIL image."""
    import threading

    from PIL import Image

    calls = []

    class Loader:
        size = (300, 200)

        def __call__(self):
            calls.append(threading.current_thread().name)
            return Image.open(media["scene.jpg"])

    got = embedder.embed([{"image": Loader()}, {"content": [{"type": "image", "image": Loader()}]}])
    want = embedder.embed([{"image": media["scene.jpg"]}] * 2)
    assert np.allclose(got, want, atol=1e-6)
    assert len(calls) == 2 and all(name.startswith("qvl-prepare") for name in calls)
    bad = embedder.embed([{"image": lambda: "not an image"}], on_error="skip")
    assert "must return a PIL image" in bad.failures[0].cause

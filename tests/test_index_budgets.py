"""`qvl index` on a photo library: budgets by kind (applied, stored, re-embedding on change), HEIC files,
`--estimate` (writes nothing) and the time left."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3

import numpy as np
import pytest
from media_factory import scene, with_camera, write_heic as heic

from qwen3_vl_embedding.index import ingest
from qwen3_vl_embedding.index.eta import Eta, format_seconds
from qwen3_vl_embedding.index.ingest import Found
from qwen3_vl_embedding.index.sqlite_store import SqliteStore

PHOTOS = ("beach.jpg", "camera.png", "phone.heic")  # by type, by camera EXIF, HEIC
DOCUMENTS = ("shot.png",)
PDF = "slides.pdf"


def library(root: str) -> str:
    os.makedirs(root)
    scene(1600, 1200, 1).save(os.path.join(root, "beach.jpg"), quality=90)
    with_camera(scene(1200, 900, 2), os.path.join(root, "camera.png"))
    heic(os.path.join(root, "phone.heic"), 1200, 900, seed=3)
    scene(1200, 900, 4).save(os.path.join(root, "shot.png"))
    pages = [scene(600, 800, 10 + i) for i in range(2)]
    pages[0].save(os.path.join(root, PDF), save_all=True, append_images=pages[1:])
    return root


def vectors(db: str) -> dict[str, np.ndarray]:
    """file name (page) -> stored vector."""
    with SqliteStore(db) as store:
        out = {}
        for state in store.file_states().values():
            for r in store.records_of(state.path):
                name = os.path.basename(r.path) + (f"#{r.page}" if r.page else "")
                out[name] = store.vectors([r.id])[r.id]
        return out


def expected(embedder, root: str, photo: int, document: int) -> dict[str, np.ndarray]:
    """What the index should hold: each image embedded at its kind's budget, PDF pages at the document one."""
    names = [*PHOTOS, *DOCUMENTS]
    items = [{"image": os.path.join(root, n), "max_pixels": photo if n in PHOTOS else document} for n in names]
    pages = ingest.pdf_units(os.path.join(root, PDF), document)
    vecs = embedder.embed(items + [u.input for u in pages])
    return dict(zip(names + [f"{PDF}#{u.page}" for u in pages], vecs))


def assert_holds(db: str, want: dict[str, np.ndarray], names=None) -> None:
    got = vectors(db)
    for name in names or want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, err_msg=name)


def test_budgets_by_kind_are_applied_stored_and_changed_per_kind(qvl, embedder, tmp_path):
    root = library(str(tmp_path / "lib"))
    db = str(tmp_path / "db")
    result = qvl("index", root, "--db", db, "--json", "--photo-max-pixels", "50000", "--document-max-pixels", "200000")
    assert result.code == 0, result.err
    assert result.json()["indexed_files"] == 5 and result.json()["by_modality"] == {"image": 4, "pdf": 2}
    with SqliteStore(db) as store:
        assert store.meta.settings["photo_max_pixels"] == 50_000
        assert store.meta.settings["document_max_pixels"] == 200_000
    first = expected(embedder, root, 50_000, 200_000)
    assert_holds(db, first)
    info = qvl("info", "--db", db, "--json", models=False).json()
    assert info["pixel_budgets"]["photo"] == 50_000 and "EXIF" in info["pixel_budgets"]["rule"]
    assert "photos 50,000 px" in qvl("info", "--db", db, models=False).out

    again = qvl("index", root, "--db", db, "--json").json()  # no flag: the index's budgets
    assert again["indexed_files"] == 0 and again["unchanged_files"] == 5

    photos = qvl("index", root, "--db", db, "--json", "--photo-max-pixels", "80000").json()
    assert photos["indexed_files"] == len(PHOTOS) and photos["unchanged_files"] == 2
    second = expected(embedder, root, 80_000, 200_000)
    assert_holds(db, second)
    assert not np.allclose(first["beach.jpg"], second["beach.jpg"], atol=1e-4)

    docs = qvl("index", root, "--db", db, "--json", "--document-max-pixels", "120000").json()
    assert docs["indexed_files"] == 2 and docs["unchanged_files"] == len(PHOTOS)  # shot.png and the PDF
    assert_holds(db, expected(embedder, root, 80_000, 120_000))


def test_an_interrupted_budget_change_finishes_on_the_next_run(embedder, tmp_path):
    from qwen3_vl_embedding.index.indexer import Indexer, IndexOptions
    from qwen3_vl_embedding.index.indexing import index_paths, open_for_indexing
    from qwen3_vl_embedding.index.ingest import IngestOptions

    class StopsAfterOne:
        """The embedder, interrupted (as by Ctrl-C) after its first vector."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def iter_embed(self, inputs, **kw):
            for n, out in enumerate(self.inner.iter_embed(inputs, **kw)):
                yield out
                raise KeyboardInterrupt

    root = library(str(tmp_path / "lib"))
    db = str(tmp_path / "db")
    photo = lambda n: IndexOptions(IngestOptions(photo_max_pixels=n), commit_seconds=0.0, batch_size=1)  # noqa: E731
    index_paths([root], db, lambda model: embedder, model=embedder.name, options=photo(50_000))
    with open_for_indexing(db, lambda model: embedder, model=embedder.name) as writer, \
            pytest.raises(KeyboardInterrupt):
        Indexer(writer.store, StopsAfterOne(embedder), photo(90_000)).run([root])
    report = index_paths([root], db, lambda model: embedder, model=embedder.name, options=IndexOptions())
    assert 1 <= report.indexed_files < len(PHOTOS)  # the photos the first run did not finish, and no more
    assert_holds(db, expected(embedder, root, 90_000, embedder.max_pixels))


def test_an_index_made_before_budgets_keeps_the_model_budget(qvl, embedder, tmp_path):
    root = library(str(tmp_path / "lib"))
    db = str(tmp_path / "db")
    official = str(embedder.max_pixels)  # what an older version read every image with
    assert qvl("index", root, "--db", db, "--json", "--photo-max-pixels", official).code == 0
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:  # its metadata had no budgets
        meta = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'index'").fetchone()[0])
        for key in ("photo_max_pixels", "document_max_pixels"):
            del meta["settings"][key]
        conn.execute("UPDATE meta SET value = ? WHERE key = 'index'", (json.dumps(meta),))
    assert "until a run passes --photo-max-pixels" in qvl("info", "--db", db, models=False).out
    run = qvl("index", root, "--db", db, "--json").json()
    assert run["indexed_files"] == 0  # not embedded again at the new default
    with SqliteStore(db) as store:
        assert store.meta.settings["photo_max_pixels"] == embedder.max_pixels  # recorded from now on
    assert_holds(db, expected(embedder, root, embedder.max_pixels, embedder.max_pixels))
    assert qvl("index", root, "--db", db, "--json", "--photo-max-pixels", "327680").json()["indexed_files"] == 3


def snapshot(folder: str) -> dict:
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_estimate_writes_nothing(qvl, tmp_path):
    root = library(str(tmp_path / "lib"))
    db = str(tmp_path / "db")
    result = qvl("index", root, "--db", db, "--estimate")
    assert result.code == 0, result.err
    assert not os.path.exists(db)
    assert "5 file(s) to embed (3 photos, 1 document images, 1 PDFs)" in result.out
    assert "expected time: about" in result.out

    assert qvl("index", root, "--db", db, "--json").code == 0
    scene(640, 480, 40).save(os.path.join(root, "new.jpg"))
    before = snapshot(db)
    out = qvl("index", root, "--db", db, "--estimate", "--json", "--photo-max-pixels", "60000")
    assert out.code == 0, out.err
    estimate = out.json()
    assert snapshot(db) == before
    assert estimate["files_to_embed"] == 4 and estimate["unchanged_files"] == 2  # the photos again, and new.jpg
    assert [k["kind"] for k in estimate["kinds"]] == ["photo"] and estimate["kinds"][0]["sampled_files"] == 3
    assert estimate["expected_seconds"] > 0 and estimate["budgets"]["photo_max_pixels"] == 60_000
    with SqliteStore(db) as store:
        assert store.meta.settings["photo_max_pixels"] == 327_680
    nothing = qvl("index", root, "--db", db, "--estimate").out
    assert "1 file(s) to embed (1 photos)" in nothing
    shutil.rmtree(db)


def test_time_left_from_the_measured_rate():
    eta = Eta()
    photos = [Found(f"/p{i}.jpg", 3_000_000, 0.0, "image") for i in range(10)]
    pdfs = [Found(f"/d{i}.pdf", 100_000 * (i + 1), 0.0, "pdf") for i in range(2)]
    eta.plan(photos + pdfs)
    eta.add(300, now=10.0)  # the first batch: loading and warm-up are not the rate
    assert eta.seconds_left() is None
    eta.close(photos[0], 300)
    eta.add(600, now=16.0)  # 100 tokens/s from here on
    eta.close(photos[1], 300)
    eta.close(photos[2], 300)
    # 7 photos of 300 tokens; the PDFs (no PDF done yet) as an average file: 300 tokens each
    assert eta.seconds_left() == pytest.approx((7 * 300 + 2 * 300) / 100)
    eta.close(pdfs[0], 2000)  # 2,000 tokens for 100 kB: the other PDF (200 kB) takes 4,000
    assert eta.seconds_left() == pytest.approx((7 * 300 + 4000) / 100)
    eta.close(photos[3], None)  # given up: no longer counted
    assert eta.seconds_left() == pytest.approx((6 * 300 + 4000) / 100)
    assert [format_seconds(s) for s in (2.34, 42, 125, 3723)] == ["2.3 s", "42 s", "2:05", "1:02:03"]


def test_the_progress_bar_shows_items_per_second_and_time_left(embedder, tmp_path):
    from qwen3_vl_embedding.index.indexer import IndexOptions
    from qwen3_vl_embedding.index.indexing import index_paths

    class Bar:
        def __init__(self):
            self.total, self.done, self.postfixes = None, 0, []

        def reset(self, total):
            self.total = total

        def update(self, n):
            self.done += n

        def set_postfix_str(self, text, refresh=False):
            self.postfixes.append(text)

    root = library(str(tmp_path / "lib"))
    bar = Bar()
    index_paths([root], str(tmp_path / "db"), lambda model: embedder, model=embedder.name, progress=bar,
                options=IndexOptions(batch_size=1, commit_seconds=0.0))
    assert bar.total == bar.done == 5
    assert all("items/s" in p for p in bar.postfixes) and "left" not in bar.postfixes[0]  # no rate yet
    assert any(p.endswith(" left") for p in bar.postfixes[2:])


def test_budgets_through_a_server(qvl, serve, embedder, tiny_model_dir, tmp_path):
    """`qvl index --server`: the photo and document budgets travel with each image; a server lets an input
    lower its model's budget, never raise it."""
    import base64

    import httpx

    with serve(models=(tiny_model_dir, None)) as server:
        served_max = embedder.max_pixels
        root = library(str(tmp_path / "lib"))
        db = str(tmp_path / "db")
        result = qvl("index", root, "--db", db, "--json", "--server", server.url, "--photo-max-pixels", "50000",
                     "--document-max-pixels", "200000")
        assert result.code == 0, result.err
        got, want = vectors(db), expected(embedder, root, 50_000, 200_000)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-4, err_msg=name)
        with open(os.path.join(root, "beach.jpg"), "rb") as f:
            uri = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
        too_big = httpx.post(f"{server.url}/v1/embeddings", trust_env=False,
                             json={"input": [{"image": uri, "max_pixels": served_max + 1}]})
        assert too_big.status_code == 422 and "max_pixels" in too_big.text
        lower = httpx.post(f"{server.url}/v1/embeddings", trust_env=False,
                           json={"input": [{"image": uri, "max_pixels": 50_000}]})
        assert lower.status_code == 200
        np.testing.assert_allclose(lower.json()["data"][0]["embedding"], want["beach.jpg"], atol=1e-4)

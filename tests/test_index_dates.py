"""Dates of records: a photo's EXIF capture time (else the file's mtime), date filters, older indexes."""
from __future__ import annotations

import os
import sqlite3
from datetime import datetime

import numpy as np
from PIL import Image

from media_factory import scene
from qwen3_vl_embedding.index import IndexMeta, open_store
from qwen3_vl_embedding.index.indexer import Indexer
from qwen3_vl_embedding.index.ingest import capture_date, exif_datetime
from qwen3_vl_embedding.index.records import Filters


def photo(path: str, seed: int, taken: str | None = None, offset: str | None = None) -> str:
    image = scene(64, 48, seed)
    exif = Image.Exif()
    if taken:
        ifd = exif.get_ifd(0x8769)
        ifd[36867] = taken  # DateTimeOriginal
        if offset:
            ifd[36881] = offset  # OffsetTimeOriginal
    image.save(path, exif=exif.tobytes()) if taken else image.save(path)
    return path


def test_exif_capture_time_else_mtime(tmp_path):
    local = datetime(2021, 6, 5, 14, 30, 0).timestamp()
    assert exif_datetime("2021:06:05 14:30:00") == local
    assert exif_datetime("2021:06:05 14:30:00", "+02:00") == datetime.fromisoformat("2021-06-05T14:30:00+02:00").timestamp()
    assert exif_datetime("0000:00:00 00:00:00") is None and exif_datetime("garbage") is None
    dated = photo(str(tmp_path / "a.jpg"), 1, "2021:06:05 14:30:00")
    zoned = photo(str(tmp_path / "b.jpg"), 2, "2019:01:02 03:04:05", "-05:00")
    plain = photo(str(tmp_path / "c.jpg"), 3)
    assert capture_date(dated, "image", 1.0) == local
    assert capture_date(zoned, "image", 1.0) == datetime.fromisoformat("2019-01-02T03:04:05-05:00").timestamp()
    assert capture_date(plain, "image", 123.0) == 123.0
    assert capture_date(dated, "pdf", 7.0) == 7.0


def test_indexed_photos_keep_their_dates_and_filter_by_them(embedder, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(str(folder / "2019.jpg"), 1, "2019:08:01 10:00:00")
    photo(str(folder / "2021.jpg"), 2, "2021:08:01 10:00:00")
    plain = photo(str(folder / "undated.jpg"), 3)
    os.utime(plain, (datetime(2020, 3, 1).timestamp(),) * 2)
    with open_store(str(tmp_path / "db"), IndexMeta(embedder.name, embedder.dim), write=True) as store:
        Indexer(store, embedder).run([str(folder)])
        query = np.ones(embedder.dim, np.float32)
        everything = store.search(query, 10)
        dates = {os.path.basename(h.record.path): datetime.fromisoformat(h.to_json()["date"]).year for h in everything}
        assert dates == {"2019.jpg": 2019, "2021.jpg": 2021, "undated.jpg": 2020}
        in_2020s = store.search(query, 10, Filters(after=datetime(2020, 1, 1).timestamp()))
        assert {os.path.basename(h.record.path) for h in in_2020s} == {"2021.jpg", "undated.jpg"}
        before = store.search(query, 10, Filters(before=datetime(2020, 1, 1).timestamp()))
        assert [os.path.basename(h.record.path) for h in before] == ["2019.jpg"]
        (rec,) = store.records_of(os.path.realpath(folder / "2019.jpg"))
        assert store.vectors([rec.id])[rec.id].shape == (embedder.dim,)


def test_an_index_from_before_dates_is_read_and_upgraded(embedder, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(str(folder / "a.jpg"), 1, "2019:08:01 10:00:00")
    db = str(tmp_path / "db")
    with open_store(db, IndexMeta(embedder.name, embedder.dim), write=True) as store:
        Indexer(store, embedder).run([str(folder)])
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:  # as an earlier version wrote it
        conn.execute("DROP INDEX records_when")
        conn.execute("ALTER TABLE records DROP COLUMN date")
    mtime = os.path.getmtime(folder / "a.jpg")
    with open_store(db) as reader:  # a reader never writes: dates are the mtimes
        (hit,) = reader.search(np.ones(embedder.dim, np.float32), 5, Filters(after=mtime - 1))
        assert hit.record.date is None and hit.record.when == hit.record.mtime
    with open_store(db, write=True) as writer:  # a writer adds the column; old records keep NULL
        assert writer.has_date and writer.search(np.ones(embedder.dim, np.float32), 5)[0].record.date is None

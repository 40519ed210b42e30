"""Pure pieces of the index: record ids, filters (Python and SQL agree), spans, windows, JSON schema."""
from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime

import pytest

from qwen3_vl_embedding.index.ingest import clip_spans, render_scale, token_windows
from qwen3_vl_embedding.index.records import (Filters, Hit, Record, format_seconds, iso_date, parse_filters, path_glob,
                                              record_id)


def rec(path="/a/b.jpg", modality="image", **kw) -> Record:
    return Record(record_id(path, modality, kw.get("chunk") or kw.get("page") or 0), path, modality, "h", 1.0, "m",
                  "i", 64, **kw)


def test_record_ids_are_stable_distinct_and_fit_int64():
    a = record_id("/x/y.pdf", "pdf", 0)
    assert a == record_id("/x/y.pdf", "pdf", 0)
    others = {record_id("/x/y.pdf", "pdf", 1), record_id("/x/z.pdf", "pdf", 0), record_id("/x/y.pdf", "text", 0)}
    assert a not in others and len(others) == 3
    ids = {record_id(f"/f/{i}.jpg", "image", 0) for i in range(20000)}
    assert len(ids) == 20000 and all(0 <= i < 2**63 for i in ids)


PATHS = ["/home/u/photos/2023/beach.jpg", "/home/u/photos/2024/dog.PNG", "/home/u/docs/report.pdf",
         "/home/u/clips/goal.mp4", "/home/u/notes/a[1].md"]


@pytest.mark.parametrize("specs", [
    [], ["modality=image"], ["modality=image,pdf"], ["path=*.jpg"], ["path=photos/*"], ["path=/home/u/docs/*"],
    ["modality=image", "path=*/2024/*"], ["path=*.jpg", "path=*.pdf"], ["path=*/a?1?.md"], ["modality=text"],
])
def test_filters_in_python_and_sql_agree(specs):
    filters = parse_filters(specs, cwd="/nowhere")
    records = [rec(p, {"jpg": "image", "PNG": "image", "pdf": "pdf", "mp4": "video", "md": "text"}[p.rsplit(".", 1)[1]])
               for p in PATHS]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE records (path TEXT, modality TEXT)")
    db.executemany("INSERT INTO records VALUES (?, ?)", [(r.path, r.modality) for r in records])
    where, params = filters.sql()
    in_sql = {row[0] for row in db.execute(f"SELECT path FROM records WHERE {where}", params)}
    in_python = {r.path for r in records if filters.matches(r)}
    assert in_sql == in_python


def test_filter_meanings():
    f = parse_filters(["modality=image", "path=*.jpg"])
    assert f.matches(rec("/p/x.jpg")) and not f.matches(rec("/p/x.png")) and not f.matches(rec("/p/x.jpg", "pdf"))
    assert parse_filters([]).empty
    with pytest.raises(ValueError, match="unknown modality"):
        parse_filters(["modality=audio"])
    with pytest.raises(ValueError, match="unknown filter key"):
        parse_filters(["size=3"])
    with pytest.raises(ValueError, match="bad filter"):
        parse_filters(["modality"])


def test_path_glob(tmp_path):
    assert path_glob("*.jpg") == "*.jpg"
    assert path_glob("photos/*.jpg") == "*/photos/*.jpg"
    assert path_glob("./x/*.jpg", cwd="/base") == "/base/x/*.jpg"
    (tmp_path / "sub").mkdir()
    assert path_glob(str(tmp_path / "sub")) == str((tmp_path / "sub").resolve() / "*")


def test_format_seconds():
    assert [format_seconds(t) for t in (0, 7.5, 65, 3723)] == ["0:00", "0:07.5", "1:05", "1:02:03"]


def test_clip_spans_cover_the_video_and_absorb_short_tails():
    assert clip_spans(25, 10) == [(0, 10), (10, 20), (20, 25)]
    assert clip_spans(21, 10) == [(0, 10), (10, 21)]  # a 1 s tail joins the last clip
    assert clip_spans(4, 10) == [(0, 4)]
    assert clip_spans(0, 10) == []
    spans = clip_spans(123.4, 7)
    assert spans[0][0] == 0 and spans[-1][1] == 123.4
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_token_windows():
    assert token_windows(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert token_windows(3, 4, 1) == [(0, 3)]
    assert token_windows(0, 4, 1) == []
    windows = token_windows(1000, 64, 8)
    assert windows[-1][1] == 1000 and all(b[0] == a[1] - 8 for a, b in zip(windows, windows[1:]))


def test_render_scale_respects_budget_and_dpi():
    s = render_scale(595, 842, 1_843_200)  # A4 in points
    assert 595 * s * 842 * s <= 1_843_200 * 1.0001
    assert render_scale(100, 100, 10**9) == pytest.approx(150 / 72)


def test_hit_json_schema():
    page = Hit(rec("/d.pdf", "pdf", page=3), 0.5)
    assert page.to_json() == {"path": "/d.pdf", "score": 0.5, "modality": "pdf", "page": 3,
                              "date": iso_date(page.record.mtime), "id": page.record.id}
    dated = Hit(dataclasses.replace(rec("/p.jpg", "image"), date=1_700_000_000.0), 0.5).to_json()
    assert datetime.fromisoformat(dated["date"]).timestamp() == 1_700_000_000.0
    clip = Hit(rec("/v.mp4", "video", start=10.0, end=20.0), 0.25, similarity=0.75).to_json()
    assert (clip["start"], clip["end"], clip["similarity"]) == (10.0, 20.0, 0.75) and "page" not in clip
    chunk = Hit(rec("/t.md", "text", chunk=0, text="hello"), 0.1).to_json()
    assert chunk["chunk"] == 0 and chunk["text"] == "hello"
    assert Filters().sql() == ("1", [])
    assert Filters(after=5.0, before=9.0).sql("r") == ("COALESCE(r.date, r.mtime) >= ? AND COALESCE(r.date, r.mtime) < ?",
                                                       [5.0, 9.0])
    old, new = dataclasses.replace(rec("/a.jpg", "image"), mtime=7.0), dataclasses.replace(rec("/b.jpg", "image"),
                                                                                             mtime=1.0, date=7.0)
    assert Filters(after=6.0, before=8.0).matches(old) and Filters(after=6.0, before=8.0).matches(new)
    assert not Filters(before=7.0).matches(new) and Filters().empty and not Filters(after=1.0).empty

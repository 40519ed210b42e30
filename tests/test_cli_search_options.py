"""`qvl search` result control (--min-score, -f, --after/--before, --sort), query arithmetic (--add,
--subtract), and the index's scope (--exclude remembered, known-bad files), end to end."""
from __future__ import annotations

import os
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from media_factory import scene
from qwen3_vl_embedding.index import open_store
from qwen3_vl_embedding.index.retrieval import parse_term

TAKEN = {"2019.jpg": "2019:08:01 10:00:00", "2021.jpg": "2021:03:05 09:30:00", "2023.jpg": "2023:07:01 12:00:00"}


def photo(path, seed: int, taken: str | None = None) -> None:
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[36867] = taken  # DateTimeOriginal, as a camera writes it
    scene(96, 72, seed).save(path, exif=exif.tobytes(), quality=92)


@pytest.fixture(scope="module")
def library(qvl, tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    (root / "photos").mkdir()
    for i, (name, taken) in enumerate(TAKEN.items()):
        photo(root / "photos" / name, i + 1, taken)
    undated = root / "photos" / "undated.png"
    scene(80, 80, 9).save(undated)
    os.utime(undated, (datetime(2020, 5, 5).timestamp(),) * 2)
    (root / "notes.md").write_text("\n".join(f"Kites over the harbour, line {i}." for i in range(120)))
    db = str(tmp_path_factory.mktemp("library-db") / "db")
    result = qvl("index", str(root), "--db", db, "--json", "--chunk-tokens", "32", "--chunk-overlap", "0")
    assert result.code == 0, result.err
    return root, db


def names(hits):
    return [os.path.basename(h["path"]) for h in hits]


def test_min_score_and_filepath_only(library, qvl):
    root, db = library
    everything = qvl("search", "harbour", "--db", db, "--json", "-k", "100").json()
    scores = [h["score"] for h in everything]
    cut = scores[len(scores) // 2]
    above = qvl("search", "harbour", "--db", db, "--json", "-k", "100", "--min-score", str(cut)).json()
    assert above == [h for h in everything if h["score"] >= cut] and len(above) < len(everything)
    none = qvl("search", "harbour", "--db", db, "--min-score", "1.01")
    assert none.code == 0 and none.out == "" and "no results scoring at least 1.01" in none.err
    paths = qvl("search", "harbour", "--db", db, "-f", "-k", "100")
    assert paths.code == 0 and paths.err == ""
    lines = paths.out.splitlines()
    assert lines == list(dict.fromkeys(h["path"] for h in everything))  # each file once, in rank order
    assert len(lines) == 5 and all(os.path.isabs(p) for p in lines)  # 4 photos + the chunked notes


def test_dates_after_before_and_sort(library, qvl):
    root, db = library
    hits = qvl("search", "a photo", "--db", db, "--json", "-k", "100", "--filter", "modality=image").json()
    dates = {os.path.basename(h["path"]): datetime.fromisoformat(h["date"]) for h in hits}
    for name, taken in TAKEN.items():
        assert dates[name].replace(tzinfo=None) == datetime.strptime(taken, "%Y:%m:%d %H:%M:%S")
    assert dates["undated.png"].date().isoformat() == "2020-05-05"  # no EXIF: the file's time
    window = qvl("search", "a photo", "--db", db, "--json", "--after", "2020", "--before", "2023-07-01").json()
    assert sorted(names(window)) == ["2021.jpg", "undated.png"]
    at_noon = qvl("search", "a photo", "--db", db, "--json", "--after", "2023-07-01T12:00", "--filter",
                  "modality=image").json()
    assert names(at_noon) == ["2023.jpg"]
    by_date = qvl("search", "a photo", "--db", db, "--json", "--filter", "modality=image", "--sort", "date").json()
    assert names(by_date) == ["2019.jpg", "undated.png", "2021.jpg", "2023.jpg"]
    table = qvl("search", "a photo", "--db", db, "--filter", "modality=image", "--sort", "date")
    assert table.out.splitlines()[1].split()[2] == "2019-08-01"  # rank, score, date, ...
    with pytest.raises(SystemExit) as usage:  # argparse's usage error
        qvl("search", "x", "--db", db, "--after", "yesterday")
    assert usage.value.code == 2
    assert qvl("search", "x", "--db", db, "--after", "2024", "--before", "2023").code == 1


def test_query_arithmetic_is_a_normalised_weighted_sum(library, qvl, embedder):
    root, db = library
    pool = str(root / "photos" / "2021.jpg")
    got = qvl("search", "2:harbour", "--add", "0.5:kites", "--add", pool, "--subtract", "0.3:rain",
              "--db", db, "--json", "-k", "100")
    assert got.code == 0, got.err
    with open_store(db) as store:
        instruction = store.meta.query_instruction
        (record,) = store.records_of(os.path.realpath(pool))
        stored = store.vectors([record.id])[record.id]
        texts = embedder.embed([{"text": t, "instruction": instruction} for t in ("2:harbour", "kites", "rain")])
        want = texts[0] + 0.5 * texts[1] + stored - 0.3 * texts[2]
        want /= np.linalg.norm(want)
        expected = [h for h in store.search(want, 100) if h.record.path != record.path]
    hits = got.json()
    assert [h["id"] for h in hits] == [h.record.id for h in expected]  # the main query takes no weight prefix
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected], abs=1e-5)
    assert os.path.realpath(pool) not in {h["path"] for h in hits}  # a file used as a query is left out
    only_terms = qvl("search", "--add", pool, "--db", db, "--json").json()
    assert os.path.realpath(pool) not in {h["path"] for h in only_terms} and only_terms
    cancelled = qvl("search", "--add", "kites", "--subtract", "kites", "--db", db)
    assert cancelled.code == 1 and "cancel out" in cancelled.err


def test_query_terms_parse_weights_files_and_texts(tmp_path):
    image = tmp_path / "pool.jpg"
    scene(32, 32, 1).save(image)
    assert parse_term("golden retriever") == parse_term("1:golden retriever")
    assert parse_term("2:golden retriever").weight == 2.0 and parse_term("2:golden retriever").text == "golden retriever"
    term = parse_term(f"0.5:{image}", -1.0)
    assert term.weight == -0.5 and term.path == os.path.realpath(image) and term.text is None
    assert parse_term("10:30 meeting").text == "30 meeting"
    assert parse_term("1:10:30 meeting").text == "10:30 meeting"
    with pytest.raises(ValueError, match="empty query term"):
        parse_term("2:")


def test_exclusions_are_remembered_and_known_bad_files_stop_failing(qvl, tmp_path):
    root = tmp_path / "files"
    for sub in ("keep", "thumbnails", "keep/.cache"):
        (root / sub).mkdir(parents=True)
    scene(64, 48, 1).save(root / "keep" / "a.jpg")
    scene(64, 48, 2).save(root / "keep" / "b.gif")
    scene(64, 48, 3).save(root / "thumbnails" / "t.jpg")
    scene(64, 48, 4).save(root / "keep" / ".cache" / "hidden.jpg")
    (root / "keep" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    db = str(tmp_path / "db")

    def indexed():
        with open_store(db) as store:
            return sorted(os.path.relpath(p, root) for p, s in store.file_states().items() if s.status == "done")

    first = qvl("index", str(root), "--db", db, "--json", "--exclude", "*.gif")
    assert first.code == 2 and [os.path.basename(s["path"]) for s in first.json()["skipped"]] == ["broken.jpg"]
    assert indexed() == ["keep/a.jpg", "thumbnails/t.jpg"]  # hidden folders are skipped too
    second = qvl("index", str(root), "--db", db, "--json", "--exclude", "thumbnails")
    summary = second.json()
    assert second.code == 0 and summary["excluded_files"] == 1 and summary["removed_files"] == 1
    assert [os.path.basename(p["path"]) for p in summary["known_failed"]] == ["broken.jpg"] and not summary["skipped"]
    assert indexed() == ["keep/a.jpg"]
    info = qvl("info", "--db", db, "--json").json()
    assert info["exclude"] == ["*.gif", "*/thumbnails"] and [f["path"] for f in info["failed_files"]] == \
        [os.path.realpath(root / "keep" / "broken.jpg")]
    text = qvl("info", "--db", db).out
    assert "*.gif, */thumbnails" in text and "known-bad files (1" in text
    third = qvl("index", str(root), "--db", db, "--json")  # remembered: nothing new, exit 0
    assert third.code == 0 and third.json()["indexed_files"] == 0 and indexed() == ["keep/a.jpg"]
    retried = qvl("index", str(root), "--db", db, "--json", "--retry-failed")
    assert retried.code == 2 and [os.path.basename(s["path"]) for s in retried.json()["skipped"]] == ["broken.jpg"]
    (root / "keep" / "broken.jpg").write_bytes(b"still broken, but changed")
    changed = qvl("index", str(root), "--db", db, "--json")
    assert changed.code == 2  # a changed file is tried again
    forgot = qvl("index", str(root), "--db", db, "--json", "--no-exclude", "*.gif")
    assert forgot.json()["indexed_files"] == 1 and indexed() == ["keep/a.jpg", "keep/b.gif"]
    assert qvl("index", "--db", db, "--no-exclude", "*.png").code == 1  # not excluded: says what is
    alone = qvl("index", "--db", db, "--exclude", "*/keep/a.jpg")
    assert alone.code == 0 and "the next run with paths applies it" in alone.err
    assert qvl("index", str(root), "--db", db, "--json").json()["excluded_files"] == 1

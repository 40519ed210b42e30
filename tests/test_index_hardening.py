"""`qvl index` and `qvl info` against careless input and damage: decompression bombs, interrupted
--force and re-embedded files (old records stay searchable), and `qvl info --check`."""
from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import sys
import zlib

import numpy as np
import pytest
from index_corpus import long_text

from qwen3_vl_embedding.index import ingest
from qwen3_vl_embedding.index.backends import open_store
from qwen3_vl_embedding.index.indexer import Indexer, IndexOptions
from qwen3_vl_embedding.index.ingest import IngestOptions
from qwen3_vl_embedding.index.records import record_id
from qwen3_vl_embedding.index.store import IndexMeta
from media_factory import scene
from resources import run_measured

CHUNKING = IngestOptions(chunk_tokens=64, chunk_overlap=8)


def rows(db: str, sql: str, params=()):
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
        return conn.execute(sql, params).fetchall()


# decompression bombs -----------------------------------------------------------------------------------
def png_bomb(path: str, side: int = 13000) -> None:
    """A 1-bit greyscale PNG of side x side pixels, all black: about 20 KB that decode to side² pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compress = zlib.compressobj(9)
    idat = b"".join(compress.compress(row) for _ in range(side)) + compress.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.slow
def test_a_decompression_bomb_is_skipped_from_its_header_with_bounded_memory(tmp_path, tiny_model_dir):
    plain, bombed = tmp_path / "plain", tmp_path / "bombed"
    for folder in (plain, bombed):
        folder.mkdir()
        scene(160, 120, 1).save(folder / "photo.jpg")
    png_bomb(str(bombed / "bomb.png"))
    assert os.path.getsize(bombed / "bomb.png") < 40_000
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def index(folder):
        argv = [sys.executable, "-m", "qwen3_vl_embedding", "index", str(folder), "--db", str(folder) + "-db",
                "--model", tiny_model_dir, "-q"]
        return run_measured(argv, env=env)

    base, base_peak = index(plain)
    assert base.returncode == 0, base.stderr
    result, peak = index(bombed)
    assert result.returncode == 2, result.stderr
    assert (f"skipped {bombed / 'bomb.png'}: image of 13000x13000 pixels exceeds max_image_pixels=25000000 "
            f"(--max-image-pixels raises it; with --retry-failed, as the file is unchanged)") in result.stderr
    assert "DecompressionBombWarning" not in result.stderr  # the limit speaks, not Pillow's warning
    assert rows(str(bombed) + "-db", "SELECT path FROM records") == [(str(bombed / "photo.jpg"),)]
    assert peak - base_peak < 100, (base_peak, peak)  # decoded, the bomb alone took about 750 MB


def test_the_cli_reads_media_under_its_limits(tiny_model_dir, media):
    from qwen3_vl_embedding.cli import build_parser
    from qwen3_vl_embedding.cli.common import load_embedder, load_reranker
    from qwen3_vl_embedding.errors import LimitError

    for command in (["index", "x", "--db", "d"], ["embed", "x"], ["search", "q", "--db", "d"]):
        args = build_parser().parse_args([*command, "--model", tiny_model_dir])
        assert (args.max_image_pixels, args.max_video_pixels) == (25_000_000, 200_000_000)
    args = build_parser().parse_args(["search", "q", "--db", "d", "--model", tiny_model_dir,
                                      "--reranker", tiny_model_dir, "--max-image-pixels", "1000"])
    embedder, reranker = load_embedder(args), load_reranker(args)
    assert embedder.media_policy.max_image_pixels == 1000 == reranker.media_policy.max_image_pixels
    with pytest.raises(LimitError, match=r"image of 300x200 pixels exceeds max_image_pixels=1000"):
        embedder.embed([{"image": media["scene.jpg"]}])
    with pytest.raises(ValueError, match="--max-video-pixels must be positive"):
        load_embedder(build_parser().parse_args(["embed", "--model", tiny_model_dir, "--max-video-pixels", "0"]))


# re-embedding keeps old records searchable -------------------------------------------------------------
class Stop:
    """Presses Ctrl-C just after a commit: the `commits`-th one, or the first once `files` files are done."""

    def __init__(self, store, commits: int | None = None, files: int | None = None):
        self.commits, self.files, self.calls, self.done = commits, files, 0, 0
        self.commit, self.put_file = store.commit, store.put_file
        store.commit, store.put_file = self.on_commit, self.on_put_file

    def on_put_file(self, state, drop_records=False):
        self.put_file(state, drop_records)
        self.done += state.status == "done"

    def on_commit(self):
        self.commit()
        self.calls += 1
        if self.calls == self.commits or (self.files is not None and self.done >= self.files):
            raise KeyboardInterrupt


def corpus(root, n_texts: int = 4) -> list[str]:
    os.makedirs(root, exist_ok=True)
    paths = []
    for i in range(n_texts):
        path = os.path.join(root, f"t{i}.txt")
        with open(path, "w") as f:
            f.write(long_text(140, seed=i))
        paths.append(path)
    scene(96, 64, 5).save(os.path.join(root, "photo.png"))
    return paths + [os.path.join(root, "photo.png")]


def unit_ids(embedder, path: str) -> set[int]:
    if path.endswith(".png"):
        return {record_id(path, "image", 0)}
    chunks = ingest.chunk_text(open(path).read(), embedder.text_tokenizer, 64, 8)
    return {record_id(path, "text", i) for i in range(len(chunks))}


def run_indexer(embedder, db, root, stop: dict | None = None, **options):
    options = IndexOptions(CHUNKING, commit_seconds=0.0, batch_size=1, **options)
    meta = IndexMeta(embedder.name, embedder.dim)
    with open_store(db, meta, write=True) as store:
        if stop is not None:
            Stop(store, **stop)
        return Indexer(store, embedder, options).run([root])


def test_an_interrupted_force_keeps_every_record_and_the_same_command_finishes_it(embedder, tmp_path):
    root, db = str(tmp_path / "corpus"), str(tmp_path / "db")
    paths = corpus(root)
    expected = set().union(*(unit_ids(embedder, p) for p in paths))
    run_indexer(embedder, db, root)
    before = dict(rows(db, "SELECT id, vector FROM vectors"))
    assert set(before) == expected

    with pytest.raises(KeyboardInterrupt):
        run_indexer(embedder, db, root, stop={"files": 1}, force=True)  # stopped once a file is done again
    assert {r[0] for r in rows(db, "SELECT id FROM records")} == expected  # nothing was dropped
    states = dict(rows(db, "SELECT status, count(*) FROM files GROUP BY status"))
    assert states == {"done": 1, "stale": len(paths) - 1}, states
    with open_store(db) as store:  # search still finds every file
        for path in paths:
            vector = np.frombuffer(before[min(unit_ids(embedder, path))], "<f4")
            assert store.search(vector, 1)[0].record.path == path

    report = run_indexer(embedder, db, root, force=True)  # the same command again
    assert report.resumed_stale == states["stale"]
    assert report.items_added < len(expected)  # what the interrupted run redid is not redone
    assert {r[0] for r in rows(db, "SELECT id FROM records")} == expected
    assert rows(db, "SELECT DISTINCT status FROM files") == [("done",)]
    after = dict(rows(db, "SELECT id, vector FROM vectors"))
    assert all(np.allclose(np.frombuffer(after[i], "<f4"), np.frombuffer(before[i], "<f4"), atol=1e-5) for i in expected)
    again = run_indexer(embedder, db, root, force=True)  # finished: a new --force redoes everything
    assert again.resumed_stale == 0 and again.items_added == len(expected)


def test_a_changed_file_keeps_its_old_records_until_its_new_ones_are_in(embedder, tmp_path):
    root, db = str(tmp_path / "corpus"), str(tmp_path / "db")
    os.makedirs(root)
    path = os.path.join(root, "notes.txt")
    with open(path, "w") as f:
        f.write(long_text(210, seed=1))
    run_indexer(embedder, db, root)
    old = unit_ids(embedder, path)
    with open(path, "w") as f:
        f.write(long_text(120, seed=2))  # other text, fewer chunks
    new = unit_ids(embedder, path)
    assert len(new) < len(old) and new < old

    with pytest.raises(KeyboardInterrupt):
        run_indexer(embedder, db, root, stop={"commits": 2})  # a commit per record: 2 new records in
    kept = dict(rows(db, "SELECT id, content_hash FROM records"))
    assert set(kept) == old  # searchable all along: 2 replaced in place, the others still the old ones
    new_hash = ingest.content_hash(path)
    assert sum(h == new_hash for h in kept.values()) == 2
    assert rows(db, "SELECT status, content_hash FROM files") == [("partial", new_hash)]

    report = run_indexer(embedder, db, root)  # resumes: only the new content's records count as done
    assert report.items_added == len(new) - 2
    assert dict(rows(db, "SELECT id, content_hash FROM records")) == {i: new_hash for i in new}
    chunks = ingest.chunk_text(open(path).read(), embedder.text_tokenizer, 64, 8)
    stored = dict(rows(db, "SELECT id, vector FROM vectors"))
    want = embedder.embed([{"text": c} for c in chunks])
    assert np.allclose(np.stack([np.frombuffer(stored[record_id(path, "text", i)], "<f4") for i in range(len(chunks))]),
                       want, atol=1e-5)


def test_the_cli_says_how_to_finish_an_interrupted_force(qvl, embedder, tmp_path, monkeypatch):
    root, db = str(tmp_path / "corpus"), str(tmp_path / "db")
    corpus(root, n_texts=2)
    assert qvl("index", root, "--db", db, "--chunk-tokens", "64", "--chunk-overlap", "8").code == 0
    finish = Indexer._finish

    def interrupt(self, file):
        finish(self, file)
        raise KeyboardInterrupt

    monkeypatch.setattr(Indexer, "_finish", interrupt)
    stopped = qvl("index", root, "--db", db, "--force", "--chunk-tokens", "64", "--chunk-overlap", "8")
    assert stopped.code == 130
    assert ("keep their old records (searchable) and are marked stale; run the same command again to go on"
            in stopped.err)
    monkeypatch.setattr(Indexer, "_finish", finish)
    resumed = qvl("index", root, "--db", db, "--force", "--chunk-tokens", "64", "--chunk-overlap", "8")
    assert resumed.code == 0 and "went on with an interrupted --force run: 2 file(s)" in resumed.err


# qvl info --check --------------------------------------------------------------------------------------
@pytest.fixture
def synthetic(tmp_path):
    """An index of 3000 synthetic records with an approximate index (threshold 1000)."""
    from test_index_store import make

    store, recs, vecs = make(tmp_path / "db", 3000, threshold=1000)
    store.optimize()
    store.close()
    return str(tmp_path / "db"), vecs


def ann_file(db: str) -> str:
    return os.path.join(db, next(f for f in os.listdir(db) if f.startswith("ann-")))


def test_check_passes_on_a_sound_index(qvl, synthetic):
    db, _ = synthetic
    result = qvl("info", "--db", db, "--check", models=False)
    assert result.code == 0 and result.out.strip() == f"{db}: ok"
    assert qvl("info", "--db", db, "--check", "--json", models=False).json()["ok"] is True


def test_check_finds_garbage_in_the_middle_of_the_database(qvl, synthetic):
    db, vecs = synthetic
    path = os.path.join(db, "index.sqlite")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(np.random.default_rng(0).integers(0, 256, 16384, dtype=np.uint8).tobytes())
    result = qvl("info", "--db", db, "--check", models=False)
    assert result.code == 1
    # where the garbage lands decides which: a page SQLite cannot read, or one its integrity check refuses
    assert "database: SQLite's integrity check failed" in result.err or "database: SQLite cannot read it" in result.err
    assert f"repair: the index cannot be trusted: restore a copy, or move {db} aside and index your folders again" \
        in result.err
    findings = qvl("info", "--db", db, "--check", "--json", models=False).json()["findings"]
    assert findings[0]["part"] == "database"


def test_check_finds_overwritten_vectors(qvl, synthetic):
    db, _ = synthetic
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM vectors ORDER BY id LIMIT 3")]
        conn.executemany("UPDATE vectors SET vector = ? WHERE id = ?",
                         [(np.full(32, 7.0, "<f4").tobytes(), i) for i in ids])
        conn.execute("DELETE FROM vectors WHERE id = (SELECT max(id) FROM vectors)")
    result = qvl("info", "--db", db, "--check", models=False)
    assert result.code == 1
    assert "vectors: 1 records without a vector" in result.err
    assert f"vectors: 3 stored vectors are not of unit length: their bytes were overwritten (ids {ids[0]}, " in result.err


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_missing_or_truncated_ann_file_is_reported_and_rebuilt(qvl, synthetic, damage):
    db, vecs = synthetic
    path = ann_file(db)
    if damage == "delete":
        os.unlink(path)
    else:
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    info = qvl("info", "--db", db, models=False)
    assert f"exact (the approximate index file {os.path.basename(path)} " in info.out
    assert f"run qvl index --db {db} --rebuild-ann)" in info.out
    assert qvl("info", "--db", db, "--json", models=False).json()["search"] == "exact"
    with open_store(db) as store:  # search falls back to an exact scan, and says so in the log
        assert store.search(vecs[5], 1)[0].score == pytest.approx(1.0, abs=1e-5)
    check = qvl("info", "--db", db, "--check", models=False)
    assert check.code == 1 and f"ann: the approximate index file {os.path.basename(path)}" in check.err
    assert f"repair: qvl index --db {db} --rebuild-ann" in check.err
    assert qvl("index", "--db", db, "--rebuild-ann", models=False).code == 0
    assert qvl("info", "--db", db, "--check", models=False).code == 0
    assert qvl("info", "--db", db, "--json", models=False).json()["search"] == "approximate"


def test_check_finds_an_ann_file_that_lacks_records(qvl, synthetic):
    from qwen3_vl_embedding.index.ann import AnnIndex

    db, _ = synthetic
    path = ann_file(db)
    ann = AnnIndex.load(path, "float32")
    dropped = sorted(ann.ids().tolist())[:4]
    ann.remove(dropped)
    ann.save(path)
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:  # keep the count the metadata states
        state = conn.execute("SELECT value FROM meta WHERE key = 'ann'").fetchone()[0]
        conn.execute("UPDATE meta SET value = ? WHERE key = 'ann'",
                     (state.replace('"vectors": 3000', '"vectors": 2996'),))
    result = qvl("info", "--db", db, "--check", models=False)
    assert result.code == 1
    assert f"ann: the approximate index lacks 4 records (ids {', '.join(map(str, dropped))}): search would not find them" \
        in result.err


def test_check_of_an_index_too_damaged_to_open(qvl, synthetic):
    db, _ = synthetic
    with open(os.path.join(db, "index.sqlite"), "r+b") as f:
        f.write(b"\0" * 100)  # the header
    result = qvl("info", "--db", db, "--check", models=False)
    assert result.code == 1 and "database: " in result.err and "index your folders again" in result.err


def test_a_damaged_database_makes_search_say_what_to_run(synthetic):
    db, vecs = synthetic
    shutil.copy(os.path.join(db, "index.sqlite"), os.path.join(db, "copy.sqlite"))
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    with open(os.path.join(db, "index.sqlite"), "r+b") as f:  # every page after the first few: garbage
        f.seek(4096 * 4)
        f.write(b"\xff" * 4096 * (pages - 4))
    from qwen3_vl_embedding.index.store import StoreError

    with open_store(db) as store, pytest.raises(StoreError, match=r"is damaged .* `qvl info --db .* --check`"):
        store.search(vecs[0], 10)

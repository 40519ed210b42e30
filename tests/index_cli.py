"""Run `qvl` in-process for the tests, reusing the session's tiny models instead of loading them per call."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
from dataclasses import dataclass

import pytest

from waiting import wait_for


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@contextlib.contextmanager
def qvl_runner(embedder, reranker, tiny_model_dir, tiny_untied_dir):
    from qwen3_vl_embedding import Qwen3VLEmbedder, Qwen3VLReranker
    from qwen3_vl_embedding.cli import common as cli_common
    from qwen3_vl_embedding.cli import embed as cli_embed
    from qwen3_vl_embedding.cli import main
    from qwen3_vl_embedding.cli import rerank as cli_rerank
    from qwen3_vl_embedding.cli import search as cli_search

    embedders = {tiny_model_dir: embedder}
    rerankers = {tiny_untied_dir: reranker}

    def load_embedder(args, model=None, **extra):
        path = model or args.model or tiny_model_dir
        if path not in embedders:
            embedders[path] = Qwen3VLEmbedder(path, workers=2)
        return embedders[path]

    def load_reranker(args, model=None, **extra):
        path = model or args.reranker
        if path not in rerankers:
            rerankers[path] = Qwen3VLReranker(path, workers=2)
        return rerankers[path]

    def run(*argv: str, models: bool = True) -> Result:
        extra = ["--model", tiny_model_dir, "--reranker", tiny_untied_dir] if models else []
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, *extra])
        return Result(code, out.getvalue(), err.getvalue())

    with pytest.MonkeyPatch.context() as mp:
        for module in (cli_common, cli_embed):  # cli_common.index_embedder serves index, search and similar
            mp.setattr(module, "load_embedder", load_embedder)
        for module in (cli_search, cli_rerank):
            mp.setattr(module, "load_reranker", load_reranker)
        yield run


def count_records(db: str) -> int:
    """Records in an embedded index, read straight from SQLite (0 before it exists)."""
    try:
        with sqlite3.connect(os.path.join(db, "index.sqlite"), timeout=30) as conn:
            return conn.execute("SELECT count(*) FROM records").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def wait_for_first_commit(proc, db: str, what: str) -> None:
    """Wait until the background `qvl index` process `proc` has committed a record to `db` (however long
    a busy machine takes to start it); fail at once if it ends first."""
    def still_running():
        if proc.poll() is None:
            return None
        return f"ended early ({proc.returncode}): {proc.communicate()[1].decode()[-2000:]}"

    wait_for(lambda: count_records(db) > 0, f"{what} commits a first record", alive=still_running, poll=0.05)


def assert_killed_mid_file(db: str, expected: set[int]) -> int:
    """After kill -9 of an indexing run: some but not all records committed, SQLite intact, and a file
    left `partial` (cut in the middle). Returns the records committed."""
    killed_at = count_records(db)
    assert 0 < killed_at < len(expected)
    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        statuses = dict(conn.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
    assert statuses.get("partial", 0) >= 1
    return killed_at


def assert_resumed_index(db: str, expected: set[int], embedder) -> None:
    """After a resumed run: exactly the expected records, no duplicates, every file done, and stored
    vectors equal to the library's embedding of their text."""
    import numpy as np

    with sqlite3.connect(os.path.join(db, "index.sqlite")) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM records")]
        assert len(ids) == len(set(ids)) and set(ids) == expected
        assert conn.execute("SELECT DISTINCT status FROM files").fetchall() == [("done",)]
        sample = conn.execute("SELECT r.text, v.vector FROM records r JOIN vectors v USING (id) "
                              "ORDER BY r.id LIMIT 24").fetchall()
    want = embedder.embed([{"text": t} for t, _ in sample])
    assert np.allclose(np.stack([np.frombuffer(v, "<f4") for _, v in sample]), want, atol=1e-5)

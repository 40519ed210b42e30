"""Real processes: kill -9 of a running `qvl index` and resume; a second writer; a reader meanwhile."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from index_cli import assert_killed_mid_file, assert_resumed_index, wait_for_first_commit
from index_cli import count_records as count
from index_corpus import chunked_texts

SPLIT = ["--chunk-tokens", "16", "--chunk-overlap", "0"]
SLOW = ["--batch-size", "1"]  # one item per forward pass: the killed run is sure to be mid-way
FILES = 8


@pytest.mark.slow
@pytest.mark.timeout(900)  # a guard against hangs: about 8 s on an idle 2-core machine
def test_kill_9_second_writer_reader_and_resume(qvl, embedder, tiny_model_dir, tmp_path):
    root = tmp_path / "texts"
    expected = chunked_texts(str(root), FILES, 4000, embedder.engine.tokenizer.backend_tokenizer)
    db = str(tmp_path / "db")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "qwen3_vl_embedding", "index", str(root), "--db", db,
                             "--model", tiny_model_dir, "-q", *SPLIT, *SLOW], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for_first_commit(proc, db, "qvl index")
        second = qvl("index", str(root), "--db", db, *SPLIT)
        assert second.code == 1 and "being written by another qvl index" in second.err
        assert f"pid {proc.pid}" in second.err
        visible = count(db)  # committed records only grow: the search sees at least these
        during = qvl("search", "harbour", "--db", db, "--json")
        assert during.code == 0 and len(during.json()) >= min(10, visible)
        assert proc.poll() is None, "the run ended before it could be killed: make the workload larger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at = assert_killed_mid_file(db, expected)
        resumed = qvl("index", str(root), "--db", db, "--json", *SPLIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert resumed.code == 0, resumed.err
    summary = resumed.json()
    assert summary["items_added"] == len(expected) - killed_at
    assert_resumed_index(db, expected, embedder)

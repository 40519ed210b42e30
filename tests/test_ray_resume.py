"""kill -9 of a `qvl index --ray` driver mid-run, then the same run again (with `index_with_ray`): nothing
lost, no duplicates, only the missing units embedded."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from index_corpus import chunked_texts
from index_cli import assert_killed_mid_file, assert_resumed_index, wait_for_first_commit
from index_cli import count_records as count
from scale_fixtures import RAY_ENV

from qwen3_vl_embedding.distributed import RayEmbedder, index_with_ray
from qwen3_vl_embedding.index.indexer import IndexOptions
from qwen3_vl_embedding.index.ingest import IngestOptions

SPLIT = ["--chunk-tokens", "16", "--chunk-overlap", "0"]
FILES = 8


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a guard against hangs: about 30 s on an idle 2-core machine
def test_killed_ray_driver_resumes(embedder, tiny_model_dir, ray_address, tmp_path):
    root = tmp_path / "texts"
    expected = chunked_texts(str(root), FILES, 2000, embedder.text_tokenizer)
    db = str(tmp_path / "db")
    env = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    # One item per forward pass in one actor: the run is sure to be mid-way when it is killed.
    proc = subprocess.Popen([sys.executable, "-m", "qwen3_vl_embedding", "index", str(root), "--db", db,
                             "--model", tiny_model_dir, "-q", *SPLIT, "--batch-size", "1",
                             "--ray", ray_address, "--ray-actors", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_first_commit(proc, db, "qvl index --ray")
        assert proc.poll() is None, "the run ended before it could be killed: make the workload larger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed_at = assert_killed_mid_file(db, expected)
    # The same run again, through the Python API this time.
    pool = RayEmbedder(tiny_model_dir, address=ray_address, actors=2)
    options = IndexOptions(IngestOptions(chunk_tokens=16, chunk_overlap=0))
    resumed = index_with_ray([str(root)], db, pool, options=options)
    assert not resumed.skipped and resumed.items_added == len(expected) - killed_at
    assert_resumed_index(db, expected, embedder)

"""Real uvicorn servers on 127.0.0.1: `serve`, to start one with any configuration, and `main_server`."""
from __future__ import annotations

import pytest

from server_fixtures import main_config, serving, small_checkpoint


@pytest.fixture(scope="session")
def serve():
    """`with serve(config, models=(embedding_dir, reranker_dir), index=...) as server:` starts a server
    (`server_fixtures.RunningServer`) and stops it when the block ends, so one fixture serves tests
    (a server per test) and module fixtures (a server per module, yielded inside the block).
    See `server_fixtures.serving` for the arguments."""
    return serving


@pytest.fixture(scope="module")
def main_server(serve, tiny_untied_dir, media, tmp_path_factory):
    """The main test server (API key, one readable folder, remote media off, small limits) on the
    "small" checkpoint and the tiny reranker: one per module that uses it."""
    base = str(tmp_path_factory.getbasetemp())
    with serve(main_config(base, media), models=(small_checkpoint(base), tiny_untied_dir)) as running:
        yield running

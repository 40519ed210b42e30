"""The server the client tests talk to: the main test server (API key, small limits, remote media off) on the
"small" embedding checkpoint and the tiny reranker, one per test module, and its own models (`lib`), whose
library methods give the expected vectors and scores. Import both fixtures into a test module."""
from __future__ import annotations

import pytest

from server_fixtures import start_main_server


@pytest.fixture(scope="module")
def server(tiny_untied_dir, media, tmp_path_factory):
    running = start_main_server(str(tmp_path_factory.getbasetemp()), media, tiny_untied_dir)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def lib(server):
    """(embedder, reranker): the server's own models, called through the library's methods."""
    service = server.app.state.service
    return service.embedder, service.reranker

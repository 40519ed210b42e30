"""The server the client tests talk to: the main test server (API key, small limits, remote media off) on the
"small" embedding checkpoint and the tiny reranker, one per test module, and its own models (`lib`), whose
library methods give the expected vectors and scores. Import both fixtures into a test module."""
from __future__ import annotations

import pytest



@pytest.fixture(scope="module")
def server(main_server):
    """The shared main test server (tests/plugins/servers.py)."""
    return main_server


@pytest.fixture(scope="module")
def lib(server):
    """(embedder, reranker): the server's own models, called through the library's methods."""
    service = server.app.state.service
    return service.embedder, service.reranker

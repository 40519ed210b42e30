"""`qvl`: the command line run in this process, reusing the session's tiny models."""
from __future__ import annotations

import pytest

from index_cli import qvl_runner


@pytest.fixture(scope="module")
def qvl(embedder, reranker, tiny_model_dir, tiny_untied_dir):
    """`qvl(*argv, models=True) -> Result(code, out, err)`. While a module uses it, the CLI's model
    loaders are patched to hand out the session's embedder and reranker (and cache any other folder)."""
    with qvl_runner(embedder, reranker, tiny_model_dir, tiny_untied_dir) as run:
        yield run

"""Tiny random checkpoints in the released layout, generated media, and the models loaded from them."""
from __future__ import annotations

import pytest

from checkpoint import build_checkpoint
from media_factory import make_media


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """Tied embeddings, like the 2B release and the parity fixture."""
    return build_checkpoint(str(tmp_path_factory.mktemp("tiny-tied")), "tiny", tied=True, seed=0)


@pytest.fixture(scope="session")
def tiny_untied_dir(tmp_path_factory) -> str:
    """A separate lm_head, like the 8B release."""
    return build_checkpoint(str(tmp_path_factory.mktemp("tiny-untied")), "tiny", tied=False, seed=1)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict:
    return make_media(str(tmp_path_factory.mktemp("media")))


@pytest.fixture(scope="session")
def embedder(tiny_model_dir):
    from qwen3_vl_embedding import Qwen3VLEmbedder

    return Qwen3VLEmbedder(tiny_model_dir, workers=2)


@pytest.fixture(scope="session")
def reranker(tiny_untied_dir):
    from qwen3_vl_embedding import Qwen3VLReranker

    return Qwen3VLReranker(tiny_untied_dir, workers=2)

"""Fixtures shared by several test modules, loaded through `pytest_plugins` in tests/conftest.py.

models: the tiny checkpoints, generated media, loaded embedder and reranker (session)
network: the autouse guard refusing every connection but loopback (session)
cli: `qvl`, the CLI run in-process on the session's models (module)
servers: `serve`, real uvicorn servers on 127.0.0.1, and `main_server` (module)
ray_cluster: `ray_address`, one local Ray cluster on 127.0.0.1 (session)

Helpers that are not fixtures stay in plain modules beside the tests (checkpoint, media_factory,
index_cli, index_corpus, server_fixtures, scale_fixtures, waiting).
"""

"""Dynamic batching, back-pressure, timeouts and shutdown of a real server on 127.0.0.1."""
from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from server_fixtures import RunningServer, data_uri, worker_held
from waiting import wait_for


def post(url: str, body: dict, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json=body, timeout=timeout, trust_env=False)


def concurrently(calls: list) -> list:
    """Run the callables at once (released together by a barrier); their results in order."""
    barrier = threading.Barrier(len(calls))
    out: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        out[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # each call ends by itself: its client times out after 60 s at most
    return out


def wait_until(predicate, what: str = "condition") -> None:
    wait_for(predicate, what, poll=0.005)


def runs(server: RunningServer) -> tuple[float, float]:
    """(merged runs, requests they held) from the server's metrics."""
    registry = server.app.state.metrics.registry
    labels = {"model": "embedding"}
    return (registry.get_sample_value("qvl_batch_requests_count", labels) or 0.0,
            registry.get_sample_value("qvl_batch_requests_sum", labels) or 0.0)


def test_concurrent_requests_share_runs_and_each_gets_its_own_rows(serve, tiny_model_dir, media):
    with serve(dict(batch_wait_ms=150), models=(tiny_model_dir, None)) as server:
        embedder = server.app.state.service.embedder
        with open(media["corrupt.jpg"], "rb") as f:
            corrupt = data_uri(f.read(), "image/jpeg")
        bodies = [{"input": [f"text {i}", f"another {i}"][: 1 + i % 2], "instruction": f"Task {i % 3}."}
                  for i in range(12)]
        bodies.append({"input": ["fine", {"image": corrupt}]})
        responses = concurrently([lambda b=b: post(server.url, b) for b in bodies])
        for body, r in zip(bodies[:-1], responses[:-1]):
            assert r.status_code == 200, r.text
            want = embedder.embed(body["input"], instruction=body["instruction"])
            np.testing.assert_allclose([d["embedding"] for d in r.json()["data"]], want, atol=1e-4)
            prepare = embedder.engine.preprocessor.prepare
            real = sum(prepare(embedder.prompt(t, body["instruction"])).length for t in body["input"])
            assert r.json()["usage"]["prompt_tokens"] == real
        assert responses[-1].status_code == 422 and responses[-1].json()["error"]["param"] == "input[1].image"
        count, held = runs(server)
        assert held == len(bodies) and count < len(bodies)  # merged: fewer runs than requests


def test_without_batching_each_request_runs_alone(serve, tiny_model_dir):
    with serve(dict(batching=False, batch_wait_ms=150), models=(tiny_model_dir, None)) as server:
        responses = concurrently([lambda i=i: post(server.url, {"input": [f"solo {i}"]}) for i in range(6)])
        assert all(r.status_code == 200 for r in responses)
        assert runs(server) == (6.0, 6.0)


def test_full_queue_is_429_with_retry_after_and_slow_requests_time_out(serve, tiny_model_dir):
    import openai

    settings = dict(max_items=4, max_queue=4, batch_wait_ms=800, request_timeout=0.4)
    with serve(settings, models=(tiny_model_dir, None)) as server:
        batcher = server.app.state.service.batchers["embedding"]
        first: dict = {}
        four = {"input": ["a", "b", "c", "d"]}
        worker = threading.Thread(target=lambda: first.setdefault("r", post(server.url, four)))
        # The worker takes nothing until the checks are done: the four inputs fill the queue for as long
        # as the test needs, and their request passes its 0.4 s timeout still queued, however slow the machine.
        with worker_held(batcher):
            worker.start()
            wait_until(lambda: batcher.depth == 4, "the first request is queued")
            busy = post(server.url, {"input": ["one more"]})
            assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
            assert busy.json()["error"]["type"] == "rate_limit_error" and busy.json()["error"]["code"] == "queue_full"
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
            with pytest.raises(openai.RateLimitError):
                client.embeddings.create(model="m", input="x")
            worker.join()
            assert first["r"].status_code == 504 and first["r"].json()["error"]["code"] == "timeout"
        wait_until(lambda: batcher.depth == 0, "the timed-out job leaves the queue")
        metrics = httpx.get(f"{server.url}/metrics", trust_env=False).text
        assert 'qvl_errors_total{code="queue_full",endpoint="/v1/embeddings"}' in metrics


def test_graceful_shutdown_finishes_requests_in_flight(serve, tiny_model_dir):
    with serve(dict(batch_wait_ms=600), models=(tiny_model_dir, None)) as server:
        embedder = server.app.state.service.embedder
        batcher = server.app.state.service.batchers["embedding"]
        results: list = []
        threads = [threading.Thread(target=lambda i=i: results.append((i, post(server.url, {"input": [f"late {i}"]}))))
                   for i in range(2)]
        with worker_held(batcher):  # both requests wait in the batcher until the shutdown has begun
            for t in threads:
                t.start()
            wait_until(lambda: batcher.depth == 2, "both requests are queued")
            server.request_stop()
            wait_until(lambda: not server.accepting, "the server stops accepting connections")
        server.stop()
        for t in threads:
            t.join()
        assert not server.thread.is_alive()
        assert sorted(i for i, _ in results) == [0, 1]
        for i, r in results:
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(r.json()["data"][0]["embedding"], embedder.embed([f"late {i}"])[0], atol=1e-4)
        assert server.app.state.service.closing and batcher.depth == 0
        with pytest.raises(httpx.ConnectError):
            post(server.url, {"input": ["after"]}, timeout=5)

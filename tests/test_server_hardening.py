"""The server against careless and hostile clients: huge texts and the event loop, invalid Unicode,
empty items, and clients that send their request slowly or not at all (loopback only)."""
from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from server_fixtures import RunningServer


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    """Default limits, except short slow-client timeouts; the model's max_length is small so that the
    forward pass stays cheap (texts are still tokenised whole before truncation)."""
    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.server import ServerConfig, create_app
    from qwen3_vl_embedding.server.slow_clients import uvicorn_options

    config = ServerConfig(header_timeout=1.0, body_timeout=1.0, keep_alive_timeout=5.0)
    embedder = Qwen3VLEmbedder(tiny_model_dir, max_length=256, media_policy=config.media_policy(), workers=2)
    running = RunningServer(create_app(config, embedder=embedder), **uvicorn_options(config))
    running.config = config
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=120, trust_env=False) as c:
        yield c


def health_while(client, request) -> tuple[httpx.Response, list[float]]:
    """Run `request(client)` in a thread and poll /health until it has been answered: the answer and the
    latency of every poll made meanwhile."""
    done = threading.Event()
    answer = {}

    def run():
        with httpx.Client(base_url=client.base_url, timeout=300, trust_env=False) as c:
            try:
                answer["response"] = request(c)
            finally:
                done.set()

    thread = threading.Thread(target=run)
    thread.start()
    latencies = []
    while not done.is_set():
        started = time.perf_counter()
        assert client.get("/health", timeout=30).status_code == 200
        latencies.append(time.perf_counter() - started)
    thread.join()
    return answer["response"], latencies


def post_json(client, body) -> httpx.Response:
    """POST `body` as ASCII JSON: a lone surrogate travels as its \\uXXXX escape, as any client may send it."""
    return client.post("/v1/embeddings", content=json.dumps(body), headers={"content-type": "application/json"})


def assert_error(response, status: int, code: str, param: str | None, *texts: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == param, error
    for text in texts:
        assert text in error["message"], error
    return error


# the event loop ----------------------------------------------------------------------------------------
def test_a_10_mb_text_is_refused_before_tokenising_and_health_keeps_answering(client):
    big = "lorem ipsum dolor sit amet " * 400_000  # 10.8 M characters
    response, latencies = health_while(client, lambda c: c.post("/v1/embeddings", json={"input": [big]}))
    assert_error(response, 413, "limit_exceeded", "input[0]", f"a text of {len(big)} characters",
                 "max_text_chars=100000")
    assert max(latencies) < 1.0, latencies
    item = client.post("/v1/embeddings", json={"input": [{"content": [{"type": "text", "text": big[:100_001]}]}]})
    assert_error(item, 413, "limit_exceeded", "input[0].content[0]", "max_text_chars=100000")
    instruction = client.post("/v1/embeddings", json={"input": ["x"], "instruction": big[:100_001]})
    assert_error(instruction, 413, "limit_exceeded", "instruction")


def test_health_answers_within_a_second_while_large_texts_are_tokenised(client):
    """16 texts of 100,000 characters (the limit): seconds of tokenising, on a worker thread (a request
    of 16 texts was tokenised on the event loop whatever their length)."""
    texts = [f"{i} " + "lorem ipsum dolor sit amet " * 3_700 for i in range(16)]
    assert all(len(t) <= 100_000 for t in texts)
    response, latencies = health_while(client, lambda c: c.post("/v1/embeddings", json={"input": texts}))
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 16
    assert len(latencies) >= 3, "the request was answered before /health could be asked during it"
    assert max(latencies) < 1.0, latencies


# invalid Unicode and empty items -----------------------------------------------------------------------
def test_lone_surrogates_are_400_naming_the_item(client):
    body = '{"input": ["fine", "a\\ud800b"]}'  # valid JSON; the string is not valid Unicode
    r = client.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_input", "input[1].text", "lone surrogate")
    r = post_json(client, {"input": [{"text": ["ok", "b\udfffc"]}]})
    assert_error(r, 400, "invalid_input", "input[0].text[1]", "lone surrogate")
    r = post_json(client, {"input": [{"content": [{"type": "text", "text": "\ud83d"}]}]})
    assert_error(r, 400, "invalid_input", "input[0].content[0]", "lone surrogate")


def test_a_bad_request_does_not_fail_the_requests_it_is_merged_with(client):
    bodies = [{"input": [f"good {i}"]} for i in range(6)]
    bodies.insert(3, {"input": ["a\ud800b"]})
    results: list = [None] * len(bodies)

    def post(i):
        with httpx.Client(base_url=client.base_url, timeout=60, trust_env=False) as c:
            results[i] = post_json(c, bodies[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200, 200, 400, 200, 200, 200]


@pytest.mark.parametrize("item", [{}, {"text": None}, {"image": None}, {"video": []}, "", {"text": ""},
                                  {"content": []}, {"text": [], "image": None, "video": None}])
def test_empty_items_are_400_not_a_vector(client, item):
    r = client.post("/v1/embeddings", json={"input": ["fine", item]})
    assert_error(r, 400, "invalid_input", "input[1]", "empty input: no text, image or video")


# slow clients ------------------------------------------------------------------------------------------
def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def stalled(server, payload: bytes) -> tuple[bytes, float]:
    """Send `payload` and stop: what the server answers before it closes, and after how long."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        answer = read_all(sock)
        return answer, time.monotonic() - started


def test_headers_that_stop_arriving_get_408_and_the_connection_closed(server, client):
    answer, waited = stalled(server, b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic")
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert 0.9 <= waited < 10, waited
    answer, waited = stalled(server, b"")  # connected, silent: closed without an answer
    assert answer == b"" and 0.9 <= waited < 10, (answer, waited)
    assert client.get("/health").status_code == 200


def test_a_body_that_stops_arriving_gets_408(server, client):
    head = (b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    answer, waited = stalled(server, head + b'{"input": ["')
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408"), answer
    error = json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "request_timeout" and "body_timeout=1" in error["message"]
    assert 0.9 <= waited < 10, waited
    assert client.get("/health").status_code == 200


def test_the_timeouts_do_not_cut_slow_work_or_kept_alive_connections(server):
    """A request that takes longer than the header timeout to answer is answered; a kept-alive
    connection serves a second request after a pause shorter than the timeouts."""
    texts = ["lorem ipsum dolor sit amet " * 3_700] * 8  # about 1.5 s of tokenising: beyond header_timeout
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as c:
        assert c.post("/v1/embeddings", json={"input": texts}).status_code == 200
        assert c.get("/health").status_code == 200  # the same connection
        time.sleep(0.5)  # the pause is what is tested (shorter than the timeouts), not a wait for something
        assert c.get("/health").status_code == 200
    # after its response, an idle kept-alive connection is closed, without an answer nobody asked for
    answer, waited = stalled(server, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1, answer
    assert waited < 10


@pytest.mark.parametrize("base", ["uvicorn.protocols.http.httptools_impl:HttpToolsProtocol",
                                  "uvicorn.protocols.http.h11_impl:H11Protocol"])
def test_the_header_timeout_works_with_either_http_protocol(base):
    """uvicorn uses httptools when installed, h11 otherwise: the timer is the same for both."""
    from fastapi import FastAPI

    from qwen3_vl_embedding.server.slow_clients import _protocol_class

    app = FastAPI()

    @app.get("/ping")
    async def ping():
        return {"ok": True}

    running = RunningServer(app, http=_protocol_class(base, 0.5), timeout_keep_alive=5)
    try:
        answer, waited = stalled(running, b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert answer.startswith(b"HTTP/1.1 408 ") and 0.4 <= waited < 10, (answer, waited)
        answer, _ = stalled(running, b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /ping HTTP/1.1\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 408 ") == 1, answer
        with httpx.Client(base_url=running.url, timeout=10, trust_env=False) as c:
            assert c.get("/ping").json() == {"ok": True}
    finally:
        running.stop()

"""The server's safe defaults: local files, remote URLs in every loopback notation, redirects, limits, bad input.

Real requests go only to loopback: URLs point at a trap server on 127.0.0.1 that records every hit,
and the remote-media server resolves names and connects through injected loopback-only parts."""
from __future__ import annotations

import dataclasses
import io
import os

import httpx
import numpy as np
import pytest
from PIL import Image

from server_fixtures import API_KEY, PUBLIC_IP, LoopbackOnlyTransport, Trap, data_uri, loopback_only_resolver, png_bytes

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def trap():
    t = Trap()
    yield t
    t.close()


@pytest.fixture(scope="module")
def main(main_server, trap):
    """A client of the main test server (remote media off)."""
    with httpx.Client(base_url=main_server.url, headers=AUTH, timeout=60, trust_env=False) as client:
        yield client
    assert trap.hits == []


@pytest.fixture(scope="module")
def remote_parts(trap):
    image = png_bytes(40, 30, 4)
    redirect = lambda to: httpx.Response(302, headers={"location": to})  # noqa: E731
    routes = {
        "/image.png": httpx.Response(200, headers={"content-type": "image/png"}, content=image),
        "/relative": redirect("/image.png"),
        "/to-trap": redirect(f"http://127.0.0.1:{trap.port}/redirected.png"),
        "/to-localhost": redirect(f"http://localhost:{trap.port}/redirected.png"),
        "/to-decimal": redirect(f"http://2130706433:{trap.port}/redirected.png"),
        "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-private-name": redirect("http://internal.example/secret.png"),
        "/loop": redirect("/loop"),
    }
    transport = LoopbackOnlyTransport(routes)
    resolver = loopback_only_resolver({"public.example": [PUBLIC_IP], "rebind.example": [PUBLIC_IP, "10.0.0.7"],
                                       "metadata.example": ["169.254.169.254"], "internal.example": ["192.168.1.5"]})
    return image, transport, resolver


@pytest.fixture(scope="module")
def remote(serve, tiny_model_dir, remote_parts, trap):
    """Remote media allowed (private addresses still refused); resolver and transport injected."""
    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.server import ServerConfig

    _, transport, resolver = remote_parts
    config = ServerConfig(allow_remote_media=True, max_redirects=3)
    policy = dataclasses.replace(config.media_policy(), resolver=resolver, transport=transport)
    embedder = Qwen3VLEmbedder(tiny_model_dir, media_policy=policy, workers=2)
    with serve(config, embedder=embedder) as running:
        with httpx.Client(base_url=running.url, timeout=60, trust_env=False) as client:
            client.embedder = embedder
            yield client
    assert trap.hits == [] and transport.refused == []


def loopback_urls(port: int) -> list[str]:
    return [f"http://{host}:{port}/trap.png" for host in (
        "127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]", "localhost", "[::1]")]


def embed(client, *items, **extra):
    return client.post("/v1/embeddings", json={"input": list(items), **extra})


def assert_error(response, status: int, code: str | None = None, param: str | None = None, text: str | None = None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in response.text and 'File "' not in response.text
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    if text is not None:
        assert text in error["message"], error
    return error


# local files ---------------------------------------------------------------------------------------
def test_local_paths_and_file_urls_outside_the_allowed_dir_are_refused(main, media):
    outside = media["scene.jpg"]
    for ref in (outside, "file://" + outside, "file://localhost" + outside, "../" + os.path.basename(outside),
                "sub/../../" + os.path.basename(outside), "escape.png", "/etc/hostname"):
        assert_error(embed(main, {"image": ref}), 403, "media_not_allowed", "input[0].image")
    assert_error(embed(main, "ok", {"video": [media["frames"][0], media["frames"][1]]}), 403, "media_not_allowed")
    assert_error(embed(main, {"content": [{"type": "image_url", "image_url": {"url": "file://" + outside}}]}), 403,
                 param="input[0].content[0]")
    assert_error(main.post("/v1/rerank", json={"query": {"image": outside}, "documents": ["a"]}), 403,
                 param="query.image")


def test_remote_server_refuses_local_files_too(remote, media):
    assert_error(embed(remote, {"image": media["scene.jpg"]}), 403, "media_not_allowed")


# remote URLs ---------------------------------------------------------------------------------------
def test_urls_are_refused_when_remote_media_is_off(main, trap):
    for url in loopback_urls(trap.port):
        assert_error(embed(main, {"image": url}), 403, "media_not_allowed", text="remote media URLs are not allowed")
        assert_error(embed(main, {"video": url.replace(".png", ".mp4")}), 403)
    assert trap.hits == []


def test_loopback_in_every_notation_is_refused_even_with_remote_media(remote, trap):
    for url in loopback_urls(trap.port):
        error = assert_error(embed(remote, {"image": url}), 403, "media_not_allowed")
        assert "loopback" in error["message"] or "address" in error["message"], error
        assert_error(embed(remote, {"video": url.replace(".png", ".mp4")}), 403)
        assert_error(embed(remote, {"video": [url, url]}), 403)
    assert trap.hits == []


def test_private_metadata_and_rebinding_names_are_refused(remote, remote_parts):
    _, transport, _ = remote_parts
    before = list(transport.public_hits)
    for url in ("http://metadata.example/latest", "http://internal.example/x.png", "http://rebind.example/image.png",
                "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest", "http://10.0.0.1/x.png"):
        assert_error(embed(remote, {"image": url}), 403, "media_not_allowed")
    assert transport.public_hits == before and transport.refused == []


def test_redirects_are_checked_on_every_hop(remote, remote_parts, trap):
    _, transport, _ = remote_parts
    for path in ("/to-trap", "/to-localhost", "/to-decimal", "/to-metadata", "/to-private-name"):
        assert_error(embed(remote, {"image": f"http://public.example{path}"}), 403, "media_not_allowed")
        assert transport.public_hits[-1] == path
    assert_error(embed(remote, {"image": "http://public.example/loop"}), 403, text="redirects")
    assert trap.hits == [] and transport.refused == []


def test_public_urls_are_fetched_when_allowed(remote, remote_parts):
    image, _, _ = remote_parts
    want = remote.embedder.embed([{"image": data_uri(image)}])[0]
    for url in ("http://public.example/image.png", "http://public.example/relative"):
        r = embed(remote, {"image": url})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["data"][0]["embedding"], want, atol=1e-4)


# limits --------------------------------------------------------------------------------------------
def test_body_size_limit(main):
    big = {"input": ["x" * (3 * 2**20)]}
    assert_error(main.post("/v1/embeddings", json=big), 413, "limit_exceeded", text="max_body_bytes=2097152")

    def chunks():
        yield b'{"input": ["'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"]}'
    r = main.post("/v1/embeddings", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "limit_exceeded", text="max_body_bytes")


def test_item_and_media_limits(main, media):
    assert_error(embed(main, *["t"] * 17), 413, "limit_exceeded", "input", "max_items=16")
    assert_error(main.post("/v1/rerank", json={"query": "q", "documents": ["d"] * 17}), 413, "limit_exceeded",
                 "documents", "max_items=16")
    payload = data_uri(os.urandom(600 * 1024))
    assert_error(embed(main, {"image": payload}), 413, "limit_exceeded", "input[0].image")
    buf = io.BytesIO()
    Image.new("RGB", (1200, 1000), (10, 200, 30)).save(buf, format="PNG")
    assert_error(embed(main, "fine", {"image": data_uri(buf.getvalue())}), 422, "limit_exceeded", "input[1].image",
                 "max_image_pixels=1000000")
    with open(media["clip.mp4"], "rb") as f:  # 3 s, over the 2 s limit
        clip = data_uri(f.read(), "video/mp4")
    assert_error(embed(main, {"video": clip}), 422, "limit_exceeded", "input[0].video", "max_video_seconds=2.0")
    frames = [data_uri(png_bytes(16, 16, i)) for i in range(9)]
    assert_error(embed(main, {"video": frames}), 422, "limit_exceeded", text="max_video_frames=8")
    assert_error(embed(main, {"video": clip, "max_frames": 100}), 422, "limit_exceeded", text="max_video_frames=8")
    assert_error(embed(main, {"content": [{"type": "video", "video": clip, "max_frames": 9}]}), 422,
                 "limit_exceeded", "input[0].content[0]")


# undecodable media, wrong types, malformed bodies -----------------------------------------------------
def test_undecodable_media_is_422(main, media):
    with open(media["corrupt.jpg"], "rb") as f:
        corrupt = data_uri(f.read(), "image/jpeg")
    with open(media["junk.mp4"], "rb") as f:
        junk = data_uri(f.read(), "video/mp4")
    for item in ({"image": "data:image/png;base64,!!!not-base64!!!"}, {"image": corrupt},
                 {"image": data_uri(b"just some text", "image/png")}, {"image": "data:text/plain;base64,aGVsbG8="},
                 {"image": "data:image/png;base64"}, {"video": junk}):
        assert_error(embed(main, "good", item), 422, "invalid_media", f"input[1].{next(iter(item))}")


@pytest.mark.parametrize("body", [
    {"input": 5}, {"input": None}, {"input": [None]}, {"input": [{"image": 5}]}, {"input": [{"text": ["a", 5]}]},
    {"input": "x", "dimensions": "64"}, {"input": "x", "dimensions": 64.5}, {"input": "x", "encoding_format": "hex"},
    {"input": "x", "dimension": 64}, {"input": [{"imgae": "typo"}]}, {"input": [{"content": [{"type": "audio"}]}]},
    {"input": [{"video": "data:video/mp4;base64,AAAA", "fps": -1}]}, {"input": [[1, "2"], [3]]}, {"input": [1.5, 2]},
    {"input": []}, {}, [1, 2], "just a string", {"input": [{"content": [{"type": "text", "text": "a", "x": 1}]}]},
    {"input": ["has <|image_pad|> inside"]},
])
def test_wrong_types_are_400(main, body):
    error = assert_error(main.post("/v1/embeddings", json=body), 400)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("body", [
    {"query": "q"}, {"query": 5, "documents": ["a"]}, {"query": "", "documents": ["a"]},
    {"query": {}, "documents": ["a"]},
    {"query": "q", "documents": "a"}, {"query": "q", "documents": ["a"], "top_n": -1},
    {"query": "q", "documents": [{"bad": 1}]}, {"query": "q", "documents": ["a"], "return_documents": "yes"},
])
def test_wrong_rerank_bodies_are_400(main, body):
    assert_error(main.post("/v1/rerank", json=body), 400)


@pytest.mark.parametrize("content,ctype", [
    (b"{not json", "application/json"), (b"", "application/json"), (b'{"input": "x"}', "text/plain"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"), (b'{"input": "\xff\xfe"}', "application/json"),
    (b'{"input": "x", "input": 5}', "application/json"),
])
def test_malformed_bodies_are_400(main, content, ctype):
    r = main.post("/v1/embeddings", content=content, headers={"content-type": ctype})
    assert 400 <= r.status_code < 500, r.text
    assert_error(r, r.status_code)


def test_unknown_routes_and_methods(main, trap):
    assert_error(main.get("/v1/embeddings"), 405, "method_not_allowed")
    assert_error(main.get("/v1/nothing"), 404, "not_found")
    assert_error(httpx.get(main.base_url.join("/v1/nothing"), trust_env=False), 401)  # auth comes first


def test_server_still_serves_after_bad_requests(main, trap):
    assert main.get("/health").json()["status"] == "ok"
    assert embed(main, "still alive").status_code == 200
    assert trap.hits == []

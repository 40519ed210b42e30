"""The search page's server side, over HTTP against a real server on 127.0.0.1: the page and its assets,
records' files and thumbnails by id only, signed links with an API key, more-like-this, the new filters."""
from __future__ import annotations

import io
import os
import shutil
import time

import httpx
import numpy as np
import pytest

from server_fixtures import API_KEY, data_uri, png_bytes
from web_corpus import scene
from web_fixtures import index_folder, library_index, small_embedder, start_index_server


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_model_dir):
    return library_index(str(tmp_path_factory.getbasetemp()), tiny_model_dir)


@pytest.fixture(scope="module")
def server(library, tiny_model_dir):
    running = start_index_server(library[1], tiny_model_dir)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keyed(library, tiny_model_dir):
    running = start_index_server(library[1], tiny_model_dir, api_key=API_KEY)
    yield running
    running.stop()


def get(server, path, **kw) -> httpx.Response:
    return httpx.get(server.url + path, timeout=60, trust_env=False, **kw)


def search(server, headers=None, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/search", json=body, headers=headers, timeout=60, trust_env=False)


def results(server, **body) -> list[dict]:
    r = search(server, **body)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def by_path(server, path: str, **body) -> dict:
    """The result for `path` (its first record) among all records."""
    for hit in results(server, query="x", k=200, **body):
        if hit["path"] == path:
            return hit
    raise AssertionError(f"{path} not found")


def image_of(response: httpx.Response):
    from PIL import Image

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    return Image.open(io.BytesIO(response.content))


# the page -----------------------------------------------------------------------------------------
def test_the_page_and_its_assets(server):
    page = get(server, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    assert b'<meta name="qvl-auth" content="none">' in page.content and b"<script>" not in page.content
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        r = get(server, f"/ui/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
        assert get(server, f"/ui/{name}", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert get(server, "/favicon.ico").status_code == 200
    for bad in ("/ui/index.html.bak", "/ui/..%2F..%2F..%2Fetc%2Fpasswd", "/ui/%2Fetc%2Fpasswd", "/ui/../app.py"):
        r = get(server, bad)
        assert r.status_code == 404 and b"root:" not in r.content, bad


def test_index_facts(server, library):
    from qwen3_vl_embedding.index import open_store

    body = get(server, "/v1/index").json()
    with open_store(library[1]) as store:
        assert body["by_modality"] == store.count() and body["records"] == sum(store.count().values())
    folders = {f["path"]: f["files"] for f in body["folders"]}
    assert folders[os.path.join(library[0]["root"], "photos/2023-summer")] == 4
    assert body["rerank"] is False and body["dim"] > 0


# files and thumbnails ------------------------------------------------------------------------------
def test_results_link_to_their_file_and_thumbnail(server, library):
    hits = results(server, query="a sunset over the sea", k=100)
    assert {h["modality"] for h in hits} == {"image", "pdf", "video", "text"}
    for hit in hits:
        assert hit["id_str"] == str(hit["id"])
        assert hit["file"].startswith(f"/v1/records/{hit['id']}/file?v=") and "sig=" not in hit["file"]
        assert (hit["thumbnail"] is None) == (hit["modality"] == "text")
    photo = by_path(server, library[0]["sideways"])
    with open(photo["path"], "rb") as f:
        assert get(server, photo["file"]).content == f.read()


def test_thumbnails_are_small_upright_and_cached(server, library):
    photo = by_path(server, library[0]["sideways"])
    small = image_of(get(server, photo["thumbnail"] + "&size=small"))
    large = image_of(get(server, photo["thumbnail"] + "&size=large"))
    assert max(small.size) == 400 and small.width > small.height  # stored portrait; EXIF turns it landscape
    assert large.size == (800, 600)  # never enlarged past the original
    r = get(server, photo["thumbnail"])
    assert r.headers["cache-control"].startswith("private, max-age=")
    again = get(server, photo["thumbnail"], headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    cached = [f for _, _, files in os.walk(os.path.join(library[1], "thumbs")) for f in files]
    assert any(f.startswith(f"{photo['id']:016x}-small-") for f in cached)
    assert get(server, photo["thumbnail"] + "&size=huge").status_code == 400


def test_pdf_pages_and_video_clips_have_their_own_thumbnails(server, library):
    from qwen3_vl_embedding.index.records import Record
    from qwen3_vl_embedding.server.thumbnails import poster_time
    from qwen3_vl_embedding.video import frame_at

    hits = results(server, query="x", k=200)
    pages = sorted((h for h in hits if h["path"] == library[0]["report"]), key=lambda h: h["page"])
    assert [h["page"] for h in pages] == [1, 2, 3, 4]
    images = [np.asarray(image_of(get(server, h["thumbnail"] + "&size=small")), np.float32) for h in pages]
    assert all(im.shape[0] == 400 and im.shape[1] < 400 for im in images)  # a portrait page
    assert np.abs(images[0] - images[1]).mean() > 5  # another page, another picture
    clips = sorted((h for h in hits if h["path"] == library[0]["video"]), key=lambda h: h["start"])
    assert [(c["start"], c["end"]) for c in clips] == [(0.0, 10.0), (10.0, 20.0), (20.0, 24.0)]
    for clip in clips:
        poster = np.asarray(image_of(get(server, clip["thumbnail"])), np.float32)
        record = Record(clip["id"], clip["path"], "video", "", 0, "", "", 0, start=clip["start"], end=clip["end"])
        frame = np.asarray(frame_at(clip["path"], poster_time(record)), np.float32)
        assert poster.shape == frame.shape and np.abs(poster - frame).mean() < 6  # the clip's own frame


def test_the_original_is_served_with_ranges_and_as_a_download(server, library):
    clip = by_path(server, library[0]["video"])
    with open(library[0]["video"], "rb") as f:
        data = f.read()
    r = get(server, clip["file"], headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}" and r.headers["content-type"] == "video/mp4"
    saved = get(server, clip["file"] + "&download=1")
    assert saved.headers["content-disposition"].startswith("attachment") and saved.content == data
    text = next(h for h in results(server, query="lavender lemonade", k=50) if h["modality"] == "text")
    r = get(server, text["file"])
    assert r.headers["content-type"] == "text/plain; charset=utf-8" and r.headers["x-content-type-options"] == "nosniff"
    assert get(server, text["thumbnail"] or f"/v1/records/{text['id']}/thumbnail").status_code == 404


def test_files_only_by_id_and_only_of_the_index(server, library, tmp_path, tiny_model_dir):
    assert get(server, "/v1/records/12345/file").status_code == 404
    assert get(server, "/v1/records/12345/thumbnail").status_code == 404
    assert get(server, "/v1/records/-1/file").status_code == 404
    assert get(server, "/v1/records/etc%2Fpasswd/file").status_code in (400, 404)
    assert get(server, "/v1/records/%2Fetc%2Fpasswd/file").status_code == 404
    assert get(server, "/v1/records/..%2F..%2Fetc%2Fpasswd").status_code in (400, 404)
    photo = by_path(server, library[0]["sideways"])
    with open(library[0]["sideways"], "rb") as f:  # a path in the query is ignored: the id decides
        assert get(server, photo["file"] + "&path=/etc/passwd").content == f.read()
    record = get(server, f"/v1/records/{photo['id']}").json()
    assert record["path"] == photo["path"] and record["thumbnail"] == photo["thumbnail"] and "score" not in record


def test_a_file_changed_after_indexing(tmp_path, tiny_model_dir):
    """Gone: 404. Replaced by a link to a file outside the index: 404, never the target. Rewritten: a new
    thumbnail."""
    root = tmp_path / "lib"
    root.mkdir()
    for name, seed in (("a.jpg", 1), ("b.jpg", 2), ("c.jpg", 3)):
        scene("sunset", seed, 320, 240).save(root / name)
    db = str(tmp_path / "db")
    index_folder(str(root), db, small_embedder(tiny_model_dir), tiny_model_dir)
    running = start_index_server(db, tiny_model_dir)
    try:
        hits = {os.path.basename(h["path"]): h for h in results(running, query="x", k=10)}
        first = get(running, hits["a.jpg"]["thumbnail"])
        scene("forest", 9, 200, 300).save(root / "a.jpg")  # rewritten: another size and mtime
        second = get(running, hits["a.jpg"]["thumbnail"])
        assert first.headers["etag"] != second.headers["etag"]
        assert image_of(second).size == (200, 300) and image_of(first).size == (320, 240)
        os.remove(root / "b.jpg")
        r = get(running, hits["b.jpg"]["file"])
        assert r.status_code == 404 and r.json()["error"]["code"] == "file_missing"
        outside = tmp_path / "secret.txt"
        outside.write_text("not in the index")
        os.remove(root / "c.jpg")
        os.symlink(outside, root / "c.jpg")
        for link in (hits["c.jpg"]["file"], hits["c.jpg"]["thumbnail"]):
            r = get(running, link)
            assert r.status_code == 404 and b"not in the index" not in r.content
            assert r.json()["error"]["code"] == "file_changed"
    finally:
        running.stop()


def test_the_thumbnail_cache_is_bounded(tmp_path):
    from qwen3_vl_embedding.index.records import Record
    from qwen3_vl_embedding.server.thumbnails import Thumbnails

    records = []
    for i in range(6):
        path = str(tmp_path / f"p{i}.png")
        scene("garden", i, 300, 200).save(path)
        records.append(Record(i + 1, path, "image", "", 0, "", "", 0))
    thumbs = Thumbnails(str(tmp_path / "thumbs"), max_bytes=10**9)
    try:
        sizes = [os.path.getsize(thumbs.make(r, "small").result()) for r in records[:3]]
        thumbs.max_bytes = int(sum(sizes) * 1.1)  # room for about three
        for i, r in enumerate(records[:3]):  # mark access times, oldest first
            os.utime(thumbs.path_of(r, "small"), (1000 + i, 1000 + i))
        assert thumbs.cached(records[0], "small")  # read again: now the most recently used
        for r in records[3:5]:
            thumbs.make(r, "small").result()
        assert thumbs.usage() <= thumbs.max_bytes
        kept = {r.id for r in records if os.path.exists(thumbs.path_of(r, "small"))}
        assert 1 in kept and 5 in kept and 2 not in kept  # the least recently used went first
    finally:
        thumbs.close()


# search additions -----------------------------------------------------------------------------------
def test_more_like_this_uses_the_stored_vector(server, library):
    from qwen3_vl_embedding.index import open_store

    photo = by_path(server, library[0]["sideways"])
    body = search(server, like=photo["id_str"], k=5).json()
    assert body["usage"]["total_tokens"] == 0 and photo["id"] not in [h["id"] for h in body["results"]]
    with open_store(library[1]) as store:
        want = store.search(store.vectors([photo["id"]])[photo["id"]], 6)
    assert [h["id"] for h in body["results"]] == [h.record.id for h in want if h.record.id != photo["id"]][:5]
    assert results(server, like=photo["id"], k=5) == body["results"]  # the id as a number works too
    only_pdf = results(server, like=photo["id_str"], k=5, filters={"modality": ["pdf"]})
    assert only_pdf and {h["modality"] for h in only_pdf} == {"pdf"}
    assert search(server, like="123", k=5).status_code == 404
    assert search(server, like=photo["id_str"], rerank=True).status_code == 400
    assert search(server, like="12a").status_code == 400
    assert search(server, query="x", like=photo["id_str"]).status_code == 400
    assert search(server, k=3).status_code == 400


def test_folder_date_and_score_filters(server, library):
    root = library[0]["root"]
    summer = os.path.join(root, "photos/2023-summer")
    for folder in (summer, summer + "/", "2023-summer", "photos/2023-summer", summer + "/*.jpg"):
        hits = results(server, query="x", k=100, filters={"folder": folder})
        assert len(hits) == 4 and all(h["path"].startswith(summer + "/") for h in hits), folder
    assert results(server, query="x", k=100, filters={"folder": "2023-sum"}) == []  # a whole folder name
    winter = results(server, query="x", k=100, filters={"modality": ["image"], "after": "2024-01-01",
                                                            "before": "2024-03-01"})
    assert sorted(os.path.basename(h["path"]) for h in winter) == ["aurora.jpg", "city-at-night.jpg", "snowy-cabin.jpg"]
    from datetime import datetime

    start = datetime(2024, 1, 1).timestamp()
    assert results(server, query="x", k=100, filters={"modality": ["image"], "after": start,
                                                      "before": int(start) + 60 * 86400}) == winter
    everything = results(server, query="a harbour", k=100)
    middle = next(i for i in range(len(everything) // 2, len(everything))
                  if everything[i - 1]["score"] > everything[i]["score"])
    cut = (everything[middle - 1]["score"] + everything[middle]["score"]) / 2  # between two results
    kept = results(server, query="a harbour", k=100, filters={"min_score": cut})
    assert kept == [h for h in everything if h["score"] >= cut] and 0 < len(kept) < len(everything)
    for bad in ({"after": "yesterday"}, {"folder": ""}, {"folder": "x", "path": ["*"]}, {"min_score": 2}):
        r = search(server, query="x", filters=bad)
        assert r.status_code == 400, (bad, r.text)


def test_uploaded_image_queries(server):
    r = search(server, query={"image": data_uri(png_bytes(64, 48, 5))}, k=3)
    assert r.status_code == 200 and len(r.json()["results"]) == 3


# the API key -----------------------------------------------------------------------------------------
def test_with_an_api_key_the_page_is_open_and_files_need_signed_links(keyed):
    from urllib.parse import parse_qs, urlparse

    auth = {"Authorization": f"Bearer {API_KEY}"}
    page = get(keyed, "/")
    assert page.status_code == 200 and b'content="key"' in page.content
    assert get(keyed, "/ui/app.js").status_code == 200
    assert get(keyed, "/v1/index").status_code == 401 and get(keyed, "/v1/index", headers=auth).status_code == 200
    assert search(keyed, query="x").status_code == 401
    hits = search(keyed, headers=auth, query="a photo", k=200).json()["results"]
    photo = next(h for h in hits if h["modality"] == "image")
    video = next(h for h in hits if h["modality"] == "video")
    assert get(keyed, photo["thumbnail"]).status_code == 200  # signed: no header needed
    assert get(keyed, photo["file"]).status_code == 200
    assert get(keyed, video["file"], headers={"Range": "bytes=0-9"}).status_code == 206
    bare = f"/v1/records/{photo['id']}/thumbnail"
    assert get(keyed, bare).status_code == 401 and get(keyed, bare, headers=auth).status_code == 200
    assert get(keyed, f"/v1/records/{photo['id']}", headers={}).status_code == 401
    query = parse_qs(urlparse(photo["thumbnail"]).query)
    tampered = photo["thumbnail"].replace(query["sig"][0], query["sig"][0][::-1])
    assert get(keyed, tampered).status_code == 401
    other = photo["thumbnail"].replace(f"/records/{photo['id']}/", f"/records/{video['id']}/")
    assert get(keyed, other).status_code == 401  # a signature opens one record only
    assert get(keyed, photo["file"].replace("/file?", "/thumbnail?")).status_code == 401  # and one kind of link
    later = photo["thumbnail"].replace(f"exp={query['exp'][0]}", f"exp={int(query['exp'][0]) + 3600}")
    assert get(keyed, later).status_code == 401


def test_signed_links_expire():
    from qwen3_vl_embedding.server.links import FileLinks

    links = FileLinks(signed=True, lifetime=3600)
    url = links.link(42, "thumbnail", "abc", now=10_000)
    path, query = url.split("?")
    assert links.allows(path, query, now=10_000) and links.allows(path, query, now=10_000 + 3600)
    assert not links.allows(path, query, now=10_000 + 2 * 3600 + 1)
    assert links.link(42, "thumbnail", "abc", now=10_500) == url  # stable within the hour: cacheable
    assert not FileLinks(signed=True).allows(path, query, now=10_000)  # another server's secret
    assert not FileLinks(signed=False).allows(path, query, now=10_000)
    assert not links.allows("/v1/records/42/../43/thumbnail", query, now=10_000)


def test_metrics_label_record_routes_without_ids(server, library):
    get(server, by_path(server, library[0]["sideways"])["thumbnail"])
    text = get(server, "/metrics").text
    assert 'endpoint="/v1/records/{id}/thumbnail"' in text
    assert not [line for line in text.splitlines() if "/v1/records/" in line and "{id}" not in line]


@pytest.mark.slow
def test_qvl_ui_opens_the_browser_once_the_page_is_up(library, tiny_model_dir, tmp_path):
    """`qvl ui` in a subprocess: a busy --port is replaced by a free one, and the browser ($BROWSER, here a
    script that writes down the address) is opened once the server answers."""
    import socket
    import subprocess
    import sys

    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f"#!{sys.executable}\nimport sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    browser.chmod(0o755)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    env = {**os.environ, "BROWSER": str(browser), "QVL_DB": library[1], "HF_HUB_OFFLINE": "1",
           "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([os.path.join(os.path.dirname(__file__), "..", "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "qwen3_vl_embedding", "ui", "--model", tiny_model_dir,
                             "--port", str(busy.getsockname()[1])], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not opened.exists() or not opened.read_text():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the browser was not opened"
            time.sleep(0.05)
        url = opened.read_text()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(f":{busy.getsockname()[1]}/")
        page = httpx.get(url, trust_env=False, timeout=30)
        assert page.status_code == 200 and b"qvl-auth" in page.content
    finally:
        busy.close()
        proc.terminate()
        proc.wait(30)


def test_qvl_ui_needs_an_index(monkeypatch, capsys, tmp_path):
    from qwen3_vl_embedding.cli import main

    monkeypatch.delenv("QVL_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # no default index there
    assert main(["ui", "--no-browser"]) == 1
    assert "needs an index" in capsys.readouterr().err

"""The search page in a real headless Chromium (Debian's `chromium`, driven by Playwright) against a real
server on 127.0.0.1 over the generated library. Every test checks that the page logged no console error,
opened no dialog and asked nothing of another origin (such requests are aborted and recorded).

Screenshots go to each test's tmp_path, and to $QVL_SCREENSHOTS when it is set (the README's come from there).
"""
from __future__ import annotations

import base64
import os
import re

import httpx
import pytest

from server_fixtures import API_KEY
from web_corpus import XSS_NAME, scene
from web_fixtures import PageWatch, launch_chromium, library_index, start_index_server

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install playwright")

VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_model_dir):
    return library_index(str(tmp_path_factory.getbasetemp()), tiny_model_dir)


@pytest.fixture(scope="module")
def server(library, tiny_model_dir, tiny_untied_dir):
    running = start_index_server(library[1], tiny_model_dir, reranker_dir=tiny_untied_dir)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    tab = context.new_page()
    tab.watch = PageWatch(tab)
    yield tab
    context.close()


def clean(page, allowed: str | None = None) -> None:
    """No console errors (but those matching `allowed`), no dialogs, no request to another origin."""
    errors = [e for e in page.watch.errors if not (allowed and re.search(allowed, e))]
    assert errors == [] and page.watch.dialogs == [] and page.watch.outside == []


def load(page, server, query: str = "") -> None:
    page.goto(f"{server.url}/{query}")
    page.wait_for_selector("body[data-ready]")


def type_query(page, text: str) -> None:
    with page.expect_response("**/v1/search"):
        page.fill("#q", text)
    settle(page)


def settle(page) -> None:
    """Wait until no search is in flight (the progress bar is gone) and the results are shown."""
    page.wait_for_selector("#progress", state="hidden")


def cards(page) -> list[dict]:
    return page.eval_on_selector_all(".card", """cards => cards.map(c => ({
        id: c.dataset.id, modality: c.dataset.modality, name: c.querySelector('.name').textContent,
        badge: c.querySelector('.badge').textContent, score: Number(c.querySelector('.score').textContent),
        folder: c.querySelector('.folder').textContent.replace(/\\u200e/g, '')}))""")


def thumbnails_loaded(page) -> None:
    """Every thumbnail of a card in view has loaded (naturalWidth > 0)."""
    page.wait_for_function("""() => [...document.querySelectorAll('.card img')]
        .filter(img => img.getBoundingClientRect().top < innerHeight)
        .every(img => img.complete && img.naturalWidth > 0)""")


def all_thumbnails_load(page) -> int:
    """Scroll every card's thumbnail into view (scrolling may page in more cards: until none come) and wait for
    each; the number with naturalWidth > 0."""
    while True:
        shown = page.locator(".card img").count()
        loaded = page.evaluate("""async () => {
            const imgs = [...document.querySelectorAll('.card img')];
            for (const img of imgs) { img.scrollIntoView(); await img.decode().catch(() => {}); }
            await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
            return imgs.filter(img => img.complete && img.naturalWidth > 0).length;
        }""")
        settle(page)
        if page.locator(".card img").count() == shown:
            page.evaluate("() => window.scrollTo(0, 0)")
            return loaded


def shot(page, tmp_path, name: str) -> None:
    """A screenshot in tmp_path; with $QVL_SCREENSHOTS, a copy there in 256 colours (small enough for the README)."""
    from PIL import Image

    path = tmp_path / name
    page.screenshot(path=str(path), animations="disabled")
    folder = os.environ.get("QVL_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            small.save(os.path.join(folder, name), optimize=True)


def api_search(server, **body) -> list[dict]:
    r = httpx.post(f"{server.url}/v1/search", json=body, timeout=60, trust_env=False)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_loads_clean_and_a_text_search_shows_thumbnails(page, server, tmp_path):
    load(page, server)
    info = httpx.get(f"{server.url}/v1/index", trust_env=False).json()
    assert page.is_visible("#welcome") and page.text_content("#count-all") == str(info["records"])
    for modality, n in info["by_modality"].items():
        assert page.text_content(f"[data-count={modality}]") == str(n)
    type_query(page, "sunset over the harbour")
    assert "q=sunset+over+the+harbour" in page.url
    found = cards(page)
    assert len(found) == 48
    assert [c["id"] for c in found] == [h["id_str"] for h in api_search(server, query="sunset over the harbour", k=48)]
    pictured = [c for c in found if c["modality"] != "text"]
    assert pictured and len(pictured) == page.locator(".card img").count()
    assert all_thumbnails_load(page) == page.locator(".card img").count() >= len(pictured)  # scrolling paged on
    clean(page)


def test_results_grid_and_details_view(page, server, tmp_path):
    """A search by an uploaded image, then a photo's details: the README's two screenshots."""
    query = tmp_path / "query.jpg"
    scene("sunset", 31).save(query, quality=90)
    load(page, server)
    with page.expect_request("**/v1/search") as sent:
        page.set_input_files("#image-input", str(query))
    assert sent.value.post_data_json["query"]["image"].startswith("data:image/jpeg;base64,")
    settle(page)
    assert page.text_content("#query-chip-label") == "Your image" and len(cards(page)) == 48
    thumbnails_loaded(page)
    page.mouse.move(640, 10)
    shot(page, tmp_path, "ui-results.png")
    photo = page.locator(".card[data-modality=image] .card-open").first
    name = photo.locator(".name").text_content()
    photo.click()
    page.wait_for_function("() => { const img = document.querySelector('#details-media img'); "
                           "return img && img.complete && img.naturalWidth >= 800; }")  # the large thumbnail
    assert page.text_content("#details-name") == name and "open=" in page.url
    shot(page, tmp_path, "ui-details.png")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('details').open && !location.search.includes('open=')")
    clean(page)


def test_paging_by_scrolling(page, server):
    load(page, server, "?q=travel+diary")
    settle(page)
    assert len(cards(page)) == 48 and "48+ results" in page.text_content("#status")
    with page.expect_response("**/v1/search"):
        page.mouse.wheel(0, 20000)
    page.wait_for_function("() => document.querySelectorAll('.card').length > 48")
    settle(page)
    everything = api_search(server, query="travel diary", k=200)
    assert [c["id"] for c in cards(page)] == [h["id_str"] for h in everything]
    assert f"{len(everything)} results" in page.text_content("#status")
    clean(page)


def image_event(page, data: bytes, how: str) -> None:
    """Give the page an image as a drop or a paste would (a DataTransfer holding a File)."""
    page.evaluate("""([b64, how]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], 'query.jpg', {type: 'image/jpeg'}));
        if (how === 'paste') {
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
            return;
        }
        window.dispatchEvent(new DragEvent(how, {dataTransfer: data, bubbles: true, cancelable: true}));
    }""", [base64.b64encode(data).decode(), how])


def test_search_by_a_dropped_or_pasted_image(page, server, tmp_path):
    query = tmp_path / "query.jpg"
    scene("city", 40).save(query, quality=90)
    data = query.read_bytes()
    load(page, server)
    image_event(page, data, "dragenter")
    assert page.is_visible("#drop-overlay")
    with page.expect_request("**/v1/search") as dropped:
        image_event(page, data, "drop")
    assert dropped.value.post_data_json["query"]["image"].startswith("data:image/jpeg;base64,")
    settle(page)
    assert not page.is_visible("#drop-overlay") and page.text_content("#query-chip-label") == "Your image"
    by_drop = [c["id"] for c in cards(page)]
    page.click("#query-chip-clear")
    assert page.is_visible("#welcome") and not page.is_visible("#query-chip")
    with page.expect_request("**/v1/search") as pasted:
        image_event(page, data, "paste")
    assert pasted.value.post_data_json == dropped.value.post_data_json
    settle(page)
    assert [c["id"] for c in cards(page)] == by_drop
    with page.expect_request("**/v1/search") as refined:  # words typed beside an image refine it
        page.fill("#q", "at night")
    assert refined.value.post_data_json["query"]["text"] == "at night"
    settle(page)
    clean(page)


def test_more_like_this(page, server):
    load(page, server, "?q=harbour")
    first = cards(page)[0]
    with page.expect_response("**/v1/search"):
        page.locator(".card-similar").first.click()
    settle(page)
    assert f"like={first['id']}" in page.url and "q=" not in page.url
    assert page.text_content("#query-chip-label") == f"Like {first['name']}"
    shown = [c["id"] for c in cards(page)]
    assert first["id"] not in shown and shown == [h["id_str"] for h in api_search(server, like=first["id"], k=48)]
    page.reload()  # a bookmarked more-like-this: the chip finds the record's name again
    page.wait_for_selector("body[data-ready]")
    page.wait_for_function(f"() => document.getElementById('query-chip-label').textContent === {('Like ' + first['name'])!r}")
    assert [c["id"] for c in cards(page)] == shown
    second = cards(page)[0]
    page.locator(".card-open").first.click()
    with page.expect_response("**/v1/search"):
        page.click("#details-similar")
    settle(page)
    assert f"like={second['id']}" in page.url and not page.is_visible("#details")
    page.go_back()  # history: back to the first more-like-this
    page.wait_for_function(f"() => location.search.includes('like={first['id']}')")
    settle(page)
    assert [c["id"] for c in cards(page)] == shown
    clean(page)


def test_filters(page, server, library):
    load(page, server, "?q=a+photo")
    with page.expect_response("**/v1/search"):
        page.click(".chip[data-modality=pdf]")
    settle(page)
    found = cards(page)
    assert len(found) == 7 and {c["modality"] for c in found} == {"pdf"} and "type=pdf" in page.url
    assert page.get_attribute(".chip[data-modality=pdf]", "aria-pressed") == "true"
    with page.expect_response("**/v1/search"):
        page.click(".chip[data-modality=image]")
    settle(page)
    with page.expect_response("**/v1/search"):
        page.fill("#folder", "photos/2023-summer")
        page.press("#folder", "Enter")
    settle(page)
    summer = cards(page)
    assert len(summer) == 4 and all(c["folder"].endswith("/photos/2023-summer") for c in summer)
    with page.expect_response("**/v1/search"):
        page.click("#clear-filters")
    settle(page)
    assert len(cards(page)) == 48 and page.input_value("#folder") == ""
    with page.expect_response("**/v1/search"):
        page.click(".chip[data-modality=image]")
    settle(page)
    with page.expect_response("**/v1/search"):
        page.fill("#after", "2024-01-01")
    settle(page)
    with page.expect_response("**/v1/search"):
        page.fill("#before", "2024-02-05")  # "to" includes its day: the cabin photo of Feb 5 stays
    settle(page)
    assert sorted(c["name"] for c in cards(page)) == ["aurora.jpg", "city-at-night.jpg", "snowy-cabin.jpg"]
    assert "from=2024-01-01" in page.url and "to=2024-02-05" in page.url
    page.reload()  # the filters live in the URL
    page.wait_for_selector("body[data-ready]")
    assert page.input_value("#after") == "2024-01-01" and page.input_value("#before") == "2024-02-05"
    assert sorted(c["name"] for c in cards(page)) == ["aurora.jpg", "city-at-night.jpg", "snowy-cabin.jpg"]
    with page.expect_response("**/v1/search"):
        page.click("#clear-filters")
    settle(page)
    scores = sorted(c["score"] for c in cards(page))
    cut = scores[len(scores) // 2]
    with page.expect_response("**/v1/search"):
        page.evaluate("v => { const s = document.getElementById('min-score'); s.value = v; "
                      "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); }", str(cut))
    settle(page)
    kept = cards(page)
    assert kept and all(c["score"] >= cut - 0.0015 for c in kept) and len(kept) < len(scores)
    assert page.text_content("#min-score-value") == f"{float(page.input_value('#min-score')):.2f}"
    clean(page)


def test_pdf_page_and_video_clip(page, server, library):
    load(page, server, "?q=the+report&type=pdf")
    card = cards(page)[0]
    assert re.fullmatch(r"Page \d", card["badge"])
    page.wait_for_function("() => { const img = document.querySelector('.card img'); return img.complete && img.naturalWidth > 0; }")
    page.locator(".card-open").first.click()
    page.wait_for_function("() => { const img = document.querySelector('.details-media.is-pdf img'); "
                           "return img && img.complete && img.naturalWidth > 400; }")  # the page at a readable size
    number = card["badge"].split()[1]
    assert page.text_content("#details-where") == f"PDF · Page {number}"
    assert page.get_attribute("#details-open", "href").endswith(f"#page={number}")
    assert "download=1" in page.get_attribute("#details-download", "href")
    page.keyboard.press("Escape")
    load(page, server, "?q=sunset&type=video")
    clip = next(c for c in cards(page) if c["badge"].startswith("0:10"))
    page.locator(f".card[data-id='{clip['id']}'] .card-open").click()
    page.wait_for_selector("#details-media video")
    # the original is fetched with Range requests and the clip starts at its own second
    page.wait_for_function("() => { const v = document.querySelector('#details-media video'); "
                           "return v.readyState >= 1 && v.currentTime >= 9.9; }")
    assert page.text_content("#details-where").startswith("Video clip · 0:10–")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#details-media video')")
    clean(page)


def test_keyboard(page, server):
    load(page, server, "?q=travel")
    focused = "() => [...document.querySelectorAll('.card-open')].indexOf(document.activeElement)"
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "q"
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == 0
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == 1
    columns = page.evaluate("() => getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length")
    assert columns > 1
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == 1 + columns
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == 0
    names = [c["name"] for c in cards(page)]
    page.keyboard.press("Enter")
    page.wait_for_selector("#details[open]")
    assert page.text_content("#details-name") == names[0]
    page.keyboard.press("ArrowRight")
    assert page.text_content("#details-name") == names[1] and "open=" in page.url
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => !document.getElementById('details').open && ({focused})() === 1")  # back on its card
    clean(page)


def test_a_file_name_that_is_html_stays_text(page, server, library):
    load(page, server, "?q=phone&folder=photos%2Fphone")
    assert XSS_NAME in [c["name"] for c in cards(page)]
    assert page.locator('img[src="x"]').count() == 0 and page.locator("[onerror]").count() == 0
    page.locator(".card-open", has_text="onerror").click()
    page.wait_for_selector("#details[open]")
    assert page.text_content("#details-name") == XSS_NAME
    assert page.locator('img[src="x"]').count() == 0 and page.watch.dialogs == []
    # and the page's Content-Security-Policy refuses inline code even if some were ever injected
    assert page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1'; "
                         "document.body.append(s); return window.ran; }") is None
    clean(page, allowed="Content Security Policy")


def test_files_outside_the_index_are_refused(page, server, library):
    load(page, server)
    statuses = page.evaluate("""async paths => Promise.all(paths.map(async p => {
        const r = await fetch(p); const text = await r.text(); return [r.status, text.includes('root:')];
    }))""", ["/v1/records/12345/file", "/etc/passwd", "/ui/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
             "/v1/records/%2Fetc%2Fpasswd/file", "/v1/records/12345/file?path=/etc/passwd"])
    assert statuses == [[404, False]] * 5
    clean(page, allowed="404")


def test_rerank_toggle(page, server):
    load(page, server, "?q=harbour")
    assert page.is_visible("#rerank-switch")
    with page.expect_request("**/v1/search") as sent:
        page.click("#rerank-switch")
    assert sent.value.post_data_json["rerank"] is True
    settle(page)
    assert "reranked" in page.text_content("#status") and "rerank=1" in page.url
    clean(page)


@pytest.fixture(scope="module")
def keyed(library, tiny_model_dir):
    running = start_index_server(library[1], tiny_model_dir, api_key=API_KEY)
    yield running
    running.stop()


def test_the_api_key_is_asked_once_per_session(browser, keyed):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.watch = PageWatch(page)
    page.goto(f"{keyed.url}/?q=harbour")
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", "wrong-key")
    page.click("#key-submit")
    page.wait_for_selector("#key-error:not([hidden])")
    page.fill("#key-input", API_KEY)
    page.click("#key-submit")
    page.wait_for_selector("body[data-ready]")
    assert not page.is_visible("#key-dialog") and len(cards(page)) > 0
    assert all_thumbnails_load(page) == page.locator(".card img").count() > 0  # signed links
    page.reload()  # the same tab keeps the key
    page.wait_for_selector("body[data-ready]")
    assert not page.is_visible("#key-dialog")
    other = context.browser.new_context(viewport=VIEWPORT).new_page()  # a new session asks again
    other.goto(f"{keyed.url}/")
    other.wait_for_selector("#key-dialog[open]")
    other.context.close()
    clean(page, allowed="401")
    context.close()

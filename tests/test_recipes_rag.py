"""The RAG recipe: retrieval, reranking, the multimodal prompt, and a fake chat endpoint on 127.0.0.1."""
from __future__ import annotations

import base64
import os

import pytest
from eval_chat_server import FakeChatServer
from eval_fakes import FakeEmbedder, FakeReranker

from media_factory import scene
from qwen3_vl_embedding.recipes import Passage, answer, build_messages, chat, embedding_retriever, rerank_hits
from qwen3_vl_embedding.recipes.rag import chat_completions_url, image_url, reply_text


@pytest.fixture()
def page(tmp_path):
    path = tmp_path / "page.png"
    scene(40, 30, seed=5).save(path)
    return str(path)


def decoded(url: str) -> bytes:
    assert url.startswith("data:image/png;base64,")
    return base64.b64decode(url.split(",", 1)[1])


def test_prompt_holds_numbered_texts_and_images(page):
    hits = [Passage("n1", 0.9, "a note"), Passage("p1", 0.8, {"image": page, "text": "page one"}),
            Passage("c1", 0.7, {"content": [{"type": "text", "text": "mixed"},
                                        {"type": "image", "image": "https://x/y.png"}]}),
            Passage("v1", 0.6, {"video": "/clips/a.mp4"})]
    messages = build_messages("What?", hits, system="SYS")
    assert messages[0] == {"role": "system", "content": "SYS"}
    parts = messages[1]["content"]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert texts == ["Context:", "[1] (id n1) a note", "[2] (id p1) page one", "[3] (id c1) mixed", "[4] (id v1)",
                     "(video: /clips/a.mp4)", "Question: What?"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert decoded(urls[0]) == open(page, "rb").read() and urls[1] == "https://x/y.png"
    limited = build_messages("What?", hits, max_images=1)[1]["content"]
    assert sum(p["type"] == "image_url" for p in limited) == 1
    assert {"type": "text", "text": "(image omitted: image limit reached)"} in limited


def test_image_urls_from_pil_and_bytes(page):
    from PIL import Image

    with Image.open(page) as im:
        assert image_url(im).startswith("data:image/png;base64,")
    assert decoded(image_url(open(page, "rb").read())) == open(page, "rb").read()
    assert image_url("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"


def test_answer_retrieves_reranks_and_sends_the_context(page):
    docs = {"note": "The square project was paused.", "page": {"image": page}, "other": "Unrelated text."}
    emb = FakeEmbedder({"Why paused?": [1, 1, 0], "The square project was paused.": [1, 0, 0], page: [0, 1, 0],
                        "Unrelated text.": [0, 0, 1]}, dim=3)
    retrieve = embedding_retriever(emb, docs, instruction="Find context.")
    assert [h.id for h in retrieve("Why paused?", 3)] == ["note", "page", "other"]
    assert emb.calls == [(3, None), (1, "Find context.")]
    rr = FakeReranker(lambda q, d: 1.0 if isinstance(d, dict) else 0.5)  # prefers the page
    with FakeChatServer() as server:
        result = answer("Why paused?", retrieve, chat_url=server.url, model="vlm", reranker=rr, k=2, top_k=2,
                        api_key="secret", temperature=0)
    assert result.text == "The square project was paused [2]."
    assert [h.id for h in result.hits] == ["page", "note"] and result.hits[0].score == 1.0
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer secret"
    body = request["json"]
    assert body["model"] == "vlm" and body["temperature"] == 0 and body["messages"] == result.messages
    content = body["messages"][1]["content"]
    assert decoded(content[2]["image_url"]["url"]) == open(page, "rb").read()  # the page image was sent
    assert content[3]["text"] == "[2] (id note) The square project was paused."
    assert content[-1]["text"] == "Question: Why paused?"


def test_without_reranker_the_first_hits_are_kept():
    hits = [Passage(str(i), 1.0 - i / 10, f"doc {i}") for i in range(5)]
    with FakeChatServer(reply="ok") as server:
        result = answer("q", lambda query, k: hits[:k], chat_url=server.url + "/chat/completions", model="m", top_k=2)
    assert [h.id for h in result.hits] == ["0", "1"] and result.text == "ok"
    assert server.requests[0]["path"] == "/v1/chat/completions" and "Authorization" not in server.requests[0]["headers"]
    assert rerank_hits(FakeReranker(lambda q, d: 0), "q", []) == []


def test_endpoint_errors_and_odd_replies_are_reported():
    with FakeChatServer(status=500) as server:
        with pytest.raises(RuntimeError, match="HTTP 500"):
            chat(server.url, [{"role": "user", "content": "hi"}], model="m")
    with pytest.raises(RuntimeError, match="no choices"):
        reply_text({"error": "x"})
    assert reply_text({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}]}) == "ab"
    assert chat_completions_url("http://h/v1/") == "http://h/v1/chat/completions"


def test_rag_over_a_qvl_index(embedder, tiny_model_dir, tmp_path, page):
    from qwen3_vl_embedding.cli import main
    from qwen3_vl_embedding.recipes import index_retriever

    docs = tmp_path / "docs"
    docs.mkdir()
    os.replace(page, docs / "page.png")
    (docs / "note.txt").write_text("The square project was paused in May.")
    db = str(tmp_path / "db")
    assert main(["index", str(docs), "--db", db, "--model", tiny_model_dir, "-q"]) == 0
    retrieve = index_retriever(db, embedder)
    hits = retrieve("square project", 5)
    assert sorted(h.id for h in hits) == sorted([str(docs / "note.txt") + " (chunk 0)", str(docs / "page.png")])
    items = {h.id: h.item for h in hits}
    assert items[str(docs / "page.png")] == {"image": str(docs / "page.png")}
    assert items[str(docs / "note.txt") + " (chunk 0)"]["text"].startswith("The square project was paused")
    with FakeChatServer() as server:
        result = answer("square project?", retrieve, chat_url=server.url, model="m", k=5, top_k=2)
    content = server.requests[0]["json"]["messages"][1]["content"]
    assert any(p["type"] == "image_url" and decoded(p["image_url"]["url"]) == (docs / "page.png").read_bytes()
               for p in content)
    assert any(p["type"] == "text" and "paused in May" in p["text"] for p in content)
    assert len(result.hits) == 2

"""Qwen3VLEmbedder end to end on a tiny checkpoint: every input form, invariances, errors."""
from __future__ import annotations

import base64
import functools
import http.server
import logging
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from qwen3_vl_embedding import InputError, Qwen3VLEmbedder
from qwen3_vl_embedding.errors import MediaError


def one(embedder, item, **kw):
    return embedder.process([item], **kw)[0]


@pytest.fixture(scope="module")
def http_media(media):
    """A static file server on 127.0.0.1 over the media folder."""
    import os

    root = os.path.dirname(media["scene.jpg"])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_output_shape_dtype_and_norm(embedder):
    out = embedder.process([{"text": "a"}, {"text": "b c d"}])
    assert isinstance(out, torch.Tensor) and out.shape == (2, embedder.dim) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-6)
    raw = embedder.process([{"text": "a"}], normalize=False)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(1), atol=1e-3)
    assert torch.allclose(raw / raw.norm(dim=1, keepdim=True), out[:1], atol=1e-6)


def test_empty_list(embedder):
    assert embedder.process([]).shape == (0, embedder.dim)


def test_image_forms_agree(embedder, media, http_media):
    path = media["scene.jpg"]
    data = open(path, "rb").read()
    want = one(embedder, {"image": Image.open(path)})
    forms = [path, "file://" + path, data, "data:image/jpeg;base64," + base64.b64encode(data).decode(),
             f"{http_media}/scene.jpg"]
    for form in forms:
        assert torch.allclose(one(embedder, {"image": form}), want, atol=1e-6), str(form)[:40]


def test_video_forms_agree(embedder, media, http_media):
    path = media["clip.mp4"]
    want = one(embedder, {"video": path, "fps": 2.0, "max_frames": 8})
    data = open(path, "rb").read()
    for form in [data, "data:video/mp4;base64," + base64.b64encode(data).decode(), f"{http_media}/clip.mp4",
                 "file://" + path]:
        assert torch.allclose(one(embedder, {"video": form, "fps": 2.0, "max_frames": 8}), want, atol=1e-6)
    pil_frames = [Image.open(p) for p in media["frames"][:4]]
    assert torch.allclose(one(embedder, {"video": media["frames"][:4]}), one(embedder, {"video": pil_frames}), atol=1e-6)


def test_content_form_in_reference_order_equals_official_form(embedder, media):
    official = {"text": "shapes", "image": media["scene.jpg"], "video": media["frames"][:4]}
    content = {"content": [{"type": "video", "video": media["frames"][:4]},
                           {"type": "image", "image": media["scene.jpg"]},
                           {"type": "text", "text": "shapes"}]}
    assert torch.allclose(one(embedder, official), one(embedder, content), atol=1e-6)
    other_order = {"content": [{"type": "text", "text": "shapes"}, {"type": "image", "image": media["scene.jpg"]}]}
    assert not torch.allclose(one(embedder, other_order),
                              one(embedder, {"text": "shapes", "image": media["scene.jpg"]}), atol=1e-4)


def test_empty_item_is_null_in_the_official_process_with_a_warning(embedder):
    with pytest.warns(UserWarning, match=r"input\(s\) 0 have no text, image or video; embedded as the text 'NULL'"):
        empty = one(embedder, {})
    assert torch.allclose(empty, one(embedder, {"text": "NULL"}), atol=1e-6)


def test_instruction_changes_the_vector(embedder):
    a = one(embedder, {"text": "dog"})
    b = one(embedder, {"text": "dog", "instruction": "Find pictures of animals"})
    c = one(embedder, {"text": "dog", "instruction": "Find pictures of animals."})
    assert not torch.allclose(a, b, atol=1e-4)
    assert torch.allclose(b, c, atol=1e-6)  # the '.' rule


def test_batch_equals_one_at_a_time_and_keeps_order(embedder, media):
    items = [
        {"text": "short"},
        {"text": "a much longer text about retrieval and multimodal embeddings " * 6},
        {"image": media["scene.jpg"]},
        {"video": media["frames"][:4]},
        {"text": "tall one", "image": media["tall.png"]},
        {"video": media["clip.mp4"], "fps": 2.0, "max_frames": 6},
        {"image": [media["tiny.png"], media["alpha.png"]], "text": ["x", "y"]},
        {"text": "多语言文本 — émbedding ü"},
        {},
    ]
    with pytest.warns(UserWarning, match="input.s. 8 have no text"):
        batch = embedder.process(items)
    with pytest.warns(UserWarning):
        singles = torch.stack([one(embedder, it) for it in items])
    assert (batch - singles).abs().max() < 1e-5
    with pytest.warns(UserWarning, match="input.s. 0 have no text"):
        rev = embedder.process(items[::-1])
    assert (rev.flip(0) - batch).abs().max() < 1e-5
    small = embedder.embed(items[:-1], max_batch_tokens=300)  # many batches; embed() refuses the empty item
    assert np.abs(small - batch[:-1].numpy()).max() < 1e-5


def test_determinism(embedder, media):
    items = [{"text": "same"}, {"image": media["noise.png"]}]
    assert torch.equal(embedder.process(items), embedder.process(items))


def test_errors_name_index_and_field_and_lose_nothing_silently(embedder, media):
    cases = [
        ({"image": media["corrupt.jpg"]}, "image", "cannot"),
        ({"image": media["empty.png"]}, "image", "cannot"),
        ({"image": "/no/such/file.png"}, "image", "no such file"),
        ({"video": media["junk.mp4"]}, "video", "cannot read video"),
        ({"image": [media["scene.jpg"], media["corrupt.jpg"]]}, "image[1]", "cannot"),
        ({"content": [{"type": "text", "text": "x"}, {"type": "image", "image": media["corrupt.jpg"]}]},
         "content[1]", "cannot"),
        ({"image": "data:image/png;base64,@@@"}, "image", "base64"),
    ]
    for bad, field, cause in cases:
        with pytest.raises(InputError, match=cause) as info:
            embedder.process([{"text": "good"}, bad, {"text": "also good"}])
        assert info.value.index == 1 and info.value.field == field, (bad, info.value)
        assert isinstance(info.value, MediaError) or "such file" in str(info.value)


def test_skip_mode_embeds_every_good_item(embedder, media):
    items = [{"text": "good"}, {"image": media["corrupt.jpg"]}, {"image": media["scene.jpg"]}]
    result = embedder.embed(items, on_error="skip")
    assert result.embeddings.shape == (3, embedder.dim)
    assert [(f.index, f.field) for f in result.failures] == [(1, "image")]
    assert np.isnan(result.embeddings[1]).all()
    good = embedder.embed([items[0], items[2]])
    assert np.abs(result.embeddings[[0, 2]] - good).max() < 1e-5


def test_reserved_tokens_in_text_are_refused(embedder):
    with pytest.raises(InputError, match="reserved token"):
        embedder.process([{"text": "hello <|image_pad|> world"}])


def test_missing_video_backend_is_an_import_error(embedder, media, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("decord", "av") else real(name, *a))
    with pytest.raises(ImportError, match="pip install"):
        embedder.process([{"video": media["clip.mp4"]}])


def test_av_backend_reads_the_same_frames(media):
    from qwen3_vl_embedding.video import open_video

    a = open_video(media["clip.mp4"], "decord")
    b = open_video(media["clip.mp4"], "av")
    assert (a.num_frames, a.fps, a.width, a.height) == (b.num_frames, b.fps, b.width, b.height)
    idx = [0, 5, 9, 23]
    diff = (a.frames(idx).int() - b.frames(idx).int()).abs()
    assert diff.float().mean() < 1.0  # same decoder family; colour conversion may differ by a level


def test_truncation_keeps_template_and_vision(tiny_model_dir, media, caplog):
    small = Qwen3VLEmbedder(tiny_model_dir, max_length=200, workers=1)
    long_text = "word " * 1000
    with caplog.at_level(logging.WARNING):
        out = small.process([{"text": long_text, "image": media["noise.png"]}, {"text": "short"}])
    assert out.shape == (2, small.dim)
    assert sum("truncated" in r.message for r in caplog.records) == 1
    sample = small.engine.preprocessor.prepare(small.prompt({"text": long_text, "image": media["noise.png"]}))
    assert sample.length == 200 and sample.truncated > 0
    tok = small.engine.tokenizer
    ids = sample.input_ids
    assert tok.decode(ids[-5:]) == "<|im_end|>\n<|im_start|>assistant\n"
    assert tok.decode(ids[:5]).startswith("<|im_start|>system")
    assert ids.count(tok.convert_tokens_to_ids("<|vision_start|>")) == 1
    assert ids.count(tok.convert_tokens_to_ids("<|vision_end|>")) == 1
    # the short item is unaffected by its neighbour's truncation
    assert torch.allclose(out[1], one(small, {"text": "short"}), atol=1e-5)


def test_vision_alone_over_max_length_says_what_to_lower(tiny_model_dir, media):
    small = Qwen3VLEmbedder(tiny_model_dir, max_length=64, workers=1)
    with pytest.raises(InputError, match="max_pixels") as info:
        small.process([{"text": "x"}, {"image": media["large.jpg"]}])
    assert info.value.index == 1


def test_model_kwargs(tiny_model_dir):
    e = Qwen3VLEmbedder(tiny_model_dir, torch_dtype=torch.float32, attn_implementation="eager", device="cpu")
    assert e.engine.runtime.dtype == torch.float32 and e.engine.runtime.attn_implementation == "eager"
    with pytest.raises(TypeError, match="unexpected keyword"):
        Qwen3VLEmbedder(tiny_model_dir, colour="blue")
    with pytest.raises(ValueError, match="dtype"):
        Qwen3VLEmbedder(tiny_model_dir, dtype="int3")


def test_attention_implementations_agree(tiny_model_dir, embedder, media):
    eager = Qwen3VLEmbedder(tiny_model_dir, attn_implementation="eager")
    items = [{"text": "abc"}, {"image": media["scene.jpg"], "text": "x"}]
    assert (eager.process(items) - embedder.process(items)).abs().max() < 1e-5


def test_pixel_budgets_change_the_token_count(tiny_model_dir, media):
    lo = Qwen3VLEmbedder(tiny_model_dir, max_pixels=64 * 32 * 32)
    hi = Qwen3VLEmbedder(tiny_model_dir)
    item = {"image": media["large.jpg"]}
    assert lo.count_tokens(item) < hi.count_tokens(item)
    assert lo.count_tokens(item) <= 64 + 40


def test_embedding_matches_transformers_processor_path(embedder, tiny_model_dir, media):
    """Independent of our preprocessing: the transformers 5 processor for text and images (same tokens)."""
    from transformers import AutoProcessor, Qwen3VLModel

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = Qwen3VLModel.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    image = Image.open(media["scene.jpg"]).convert("RGB")
    from qwen3_vl_embedding.vision import resize_image

    conv = [{"role": "system", "content": [{"type": "text", "text": "Represent the user's input."}]},
            {"role": "user", "content": [{"type": "image", "image": "x"}, {"type": "text", "text": "shapes"}]}]
    text = processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[resize_image(image, 4096, 1843200)], do_resize=False, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs, use_cache=False).last_hidden_state[0, -1]
    want = torch.nn.functional.normalize(hidden, dim=-1)
    got = one(embedder, {"image": image, "text": "shapes"})
    assert (got - want).abs().max() < 1e-5


def test_bulk_api(embedder, media):
    items = [{"text": f"item {i}"} for i in range(7)] + [{"image": media["scene.jpg"]}]
    full = embedder.embed(items)
    assert full.shape == (8, embedder.dim) and full.dtype == np.float32
    gen = embedder.embed(iter(items), batch_size=3)
    assert np.abs(gen - full).max() < 1e-5
    small = embedder.embed(items, dim=64)
    assert np.allclose(np.linalg.norm(small, axis=1), 1, atol=1e-5)
    stats = embedder.last_stats
    assert stats.items == 8 and 0 < stats.padding_efficiency <= 1
    sims = embedder.similarity(full[:2], full)
    assert sims.shape == (2, 8) and np.allclose(np.diag(sims[:, :2]), 1, atol=1e-5)


def test_dim_validation(embedder):
    with pytest.raises(ValueError, match="from 64 to"):
        embedder.embed(["x"], dim=32)
    with pytest.raises(ValueError, match="from 64 to"):
        embedder.embed(["x"], dim=embedder.dim + 1)


def test_repr_and_facts(embedder):
    assert "dim=64" in repr(embedder) and embedder.device.type == "cpu"


def test_text_is_tokenised_once_and_media_costed_from_headers(embedder, media, monkeypatch):
    from qwen3_vl_embedding.inputs import to_item
    from qwen3_vl_embedding.preprocess import Sample

    engine = embedder.engine
    text_prompt = embedder.prompt(to_item("a text"), None)
    image_prompt = embedder.prompt(to_item({"image": media["scene.jpg"]}), None)
    sample = engine.cost(text_prompt)
    assert isinstance(sample, Sample) and sample.input_ids == engine.preprocessor.prepare(text_prompt).input_ids
    assert isinstance(engine.cost(image_prompt), int) and engine.cost(sample) is sample
    calls = []
    real = engine.preprocessor.backend.encode
    monkeypatch.setattr(engine.preprocessor, "backend", type("B", (), {
        "encode": staticmethod(lambda *a, **kw: calls.append(1) or real(*a, **kw))})())
    texts = ["one", "two words", "three little words", "four"]
    got = embedder.embed(texts)
    assert len(calls) == len(texts)
    monkeypatch.undo()
    assert np.allclose(got, embedder.embed(texts), atol=1e-6)
    # already prepared samples run as they are
    rows = engine.collect([engine.cost(embedder.prompt(to_item(t), None)) for t in texts], lambda h: h)
    assert rows.shape[0] == len(texts)


def test_inputs_with_their_own_instruction_are_batched_apart_and_equal_alone(embedder):
    texts = [f"text number {i}" for i in range(16)]
    items = [{"text": t, "instruction": "Find the caption" if i % 2 else None} for i, t in enumerate(texts)]
    got = embedder.embed(items)
    assert embedder.last_stats.batches == 2  # one per instruction, each sharing its beginning
    alone = np.stack([embedder.embed([item])[0] for item in items])
    assert np.abs(got - alone).max() < 1e-5


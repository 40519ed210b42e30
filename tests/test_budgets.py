"""Pixel budgets per image (item keys, `embed(max_pixels=...)`), the photo/document rule, and HEIC files."""
from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest
from media_factory import scene, with_camera, write_heic as heic

from qwen3_vl_embedding import InputError, MediaError, PixelBudgets
from qwen3_vl_embedding import media as media_module
from qwen3_vl_embedding.budgets import PHOTO_MAX_PIXELS, image_kind
from qwen3_vl_embedding.constants import IMAGE_FACTOR, MAX_PIXELS, MIN_PIXELS
from qwen3_vl_embedding.inputs import ImagePart, to_item
from qwen3_vl_embedding.vision import image_tokens


def test_the_photo_rule(media, tmp_path):
    from PIL import Image

    assert image_kind(media["scene.jpg"]) == "photo" and image_kind(media["photo.webp"]) == "photo"
    assert image_kind(media["noise.png"]) == "document"  # a PNG without camera tags: a screenshot
    assert image_kind(with_camera(scene(64, 48, 1), str(tmp_path / "camera.png"))) == "photo"
    assert image_kind(heic(str(tmp_path / "a.heic"), camera=False)) == "photo"  # by type alone
    assert image_kind("https://example.com/x.JPG?size=2") == "photo" and image_kind("https://e.com/x.png") == "document"
    with open(media["scene.jpg"], "rb") as f:
        jpeg = f.read()
    assert image_kind(jpeg) == "photo" and image_kind(open(media["noise.png"], "rb").read()) == "document"
    assert image_kind("data:image/jpeg;base64," + base64.b64encode(jpeg).decode()) == "photo"
    assert image_kind(Image.open(media["scene.jpg"])) == "photo" and image_kind(scene(32, 32)) == "document"

    def page():
        return scene(40, 40)
    assert image_kind(page) == "document"  # a rendered PDF page
    budgets = PixelBudgets(photo=50_000, document=400_000)
    assert budgets(media["scene.jpg"]) == 50_000 and budgets(media["noise.png"]) == 400_000
    assert PixelBudgets() == PixelBudgets(PHOTO_MAX_PIXELS, MAX_PIXELS)
    for bad in (MIN_PIXELS - 1, 2.5e5, True):
        with pytest.raises(ValueError, match="at least"):
            PixelBudgets(photo=bad)


def test_item_budget_keys():
    item = to_item({"image": ["a.jpg", "b.jpg"], "max_pixels": 100_000, "min_pixels": 8192})
    assert [(p.min_pixels, p.max_pixels) for p in item.parts] == [(8192, 100_000)] * 2
    item = to_item({"content": [{"type": "image", "image": "a.jpg", "max_pixels": 50_000},
                                {"type": "image", "image": "b.jpg"}], "max_pixels": 200_000})
    assert [p.max_pixels for p in item.parts] == [50_000, 200_000]
    assert to_item({"image": "a.jpg"}).parts == (ImagePart("a.jpg", "image"),)  # no key: the model's
    for bad, field in (({"image": "a.jpg", "max_pixels": 0}, "max_pixels"),
                       ({"image": "a.jpg", "max_pixels": 1.5}, "max_pixels"),
                       ({"image": "a.jpg", "min_pixels": 9000, "max_pixels": 5000}, "min_pixels"),
                       ({"content": [{"type": "image", "image": "a.jpg", "max_pixels": -1}]}, "content[0].max_pixels"),
                       ({"content": [{"type": "text", "text": "x", "max_pixels": 5}]}, "content[0]")):
        with pytest.raises(InputError) as e:
            to_item(bad)
        assert e.value.field == field


def test_a_budget_decides_the_tokens(embedder, media):
    w, h = 1600, 1200  # large.jpg
    for budget in (50_000, 200_000):
        prompt = embedder.prompt({"image": media["large.jpg"], "max_pixels": budget})
        sample = embedder.engine.preprocessor.prepare(prompt)
        pads = sample.input_ids.count(embedder.engine.preprocessor.image_pad_id)
        assert pads == image_tokens(w, h, MIN_PIXELS, budget)
        assert sample.images[0].shape[-2] * sample.images[0].shape[-1] <= budget
        assert sample.images[0].shape[-1] % IMAGE_FACTOR == 0
        assert embedder.engine.preprocessor.estimate(prompt) == sample.length  # batching costs the same budget
    with pytest.raises(InputError, match="must not exceed") as e:
        embedder.embed([{"image": media["large.jpg"], "min_pixels": 500_000}], max_pixels=100_000)
    assert e.value.index == 0


def test_embed_max_pixels_equals_the_item_keys(embedder, media):
    items = [{"image": media["large.jpg"]}, {"image": media["noise.png"]}, {"text": "a caption"}]
    budgets = PixelBudgets(photo=60_000, document=30_000)
    by_kind = embedder.embed(items, max_pixels=budgets)
    explicit = embedder.embed([{"image": media["large.jpg"], "max_pixels": 60_000},
                               {"image": media["noise.png"], "max_pixels": 30_000}, {"text": "a caption"}])
    np.testing.assert_allclose(by_kind, explicit, atol=1e-6)
    one = embedder.embed(items[:1], max_pixels=60_000)
    np.testing.assert_allclose(one[0], explicit[0], atol=1e-6)
    own = embedder.embed([{"image": media["large.jpg"], "max_pixels": 60_000}], max_pixels=10_000)  # the item's wins
    np.testing.assert_allclose(own[0], explicit[0], atol=1e-6)
    official = embedder.process([{"image": media["large.jpg"]}]).numpy()
    np.testing.assert_allclose(embedder.embed(items[:1]), official, atol=1e-6)  # no budget: the model's
    assert not np.allclose(official[0], explicit[0], atol=1e-3)
    with pytest.raises(ValueError, match="max_pixels"):
        embedder.embed(items, max_pixels=-5)


def test_heic_is_read_everywhere(embedder, tmp_path, media):
    from qwen3_vl_embedding.index.ingest import capture_date

    path = heic(str(tmp_path / "photo.heic"), 320, 240)
    image = media_module.load_image(path)
    assert image.size == (320, 240) and image.format == "HEIF"
    assert media_module.image_size(path) == (320, 240)
    with open(path, "rb") as f:
        data = f.read()
    assert media_module.looks_like_heif(data[:12]) and not media_module.looks_like_heif(b"\xff\xd8\xff" + bytes(9))
    vectors = embedder.embed([{"image": path}, {"image": data}])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    from datetime import datetime

    assert capture_date(path, "image", 0.0) == datetime(2021, 5, 6, 7, 8, 9).timestamp()


def test_heic_without_pillow_heif_says_what_to_install(tmp_path, monkeypatch):
    from PIL import Image

    path = heic(str(tmp_path / "p.heic"))
    monkeypatch.setattr(media_module, "_heif", False)
    monkeypatch.setattr(Image, "OPEN", {k: v for k, v in Image.OPEN.items() if k != "HEIF"})
    monkeypatch.setattr(Image, "ID", [i for i in Image.ID if i != "HEIF"])
    with pytest.raises(MediaError, match="pillow-heif"):
        media_module.load_image(path)
    with pytest.raises(MediaError, match="cannot identify"):
        media_module.load_image(io.BytesIO(b"not an image at all").getvalue())
    assert os.path.exists(path)

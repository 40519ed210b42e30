"""Token layout and pixel values against the transformers processor; truncation rules."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from qwen3_vl_embedding.errors import InputError
from qwen3_vl_embedding.inputs import to_item
from qwen3_vl_embedding.model import PixelSpec, patchify
from qwen3_vl_embedding.prompts import embedding_prompt
from qwen3_vl_embedding.vision import frame_list_to_video, resize_image


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


def test_image_patches_equal_the_image_processor(processor, media):
    image = resize_image(Image.open(media["scene.jpg"]), 4096, 1843200)
    want = processor.image_processor(images=[image], do_resize=False, return_tensors="pt")
    x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None]
    got, grid = patchify(x, PixelSpec())
    assert list(grid) == want["image_grid_thw"][0].tolist()
    assert torch.allclose(got, want["pixel_values"], atol=1e-6)


def test_video_patches_equal_the_video_processor(processor, media):
    frames = [Image.open(p) for p in media["frames"][:5]]
    video, indices, fps = frame_list_to_video(frames, 7864320)
    want = processor.video_processor(videos=[video.float()], do_resize=False, do_sample_frames=False,
                                     return_tensors="pt", cap_pixels_per_frame=False)
    got, grid = patchify(video, PixelSpec())
    assert list(grid) == want["video_grid_thw"][0].tolist()
    assert torch.allclose(got, want["pixel_values_videos"], atol=1e-6)


def test_image_tokens_equal_the_processor(embedder, processor, media):
    item = to_item({"image": media["scene.jpg"], "text": "shapes"})
    sample = embedder.engine.preprocessor.prepare(embedding_prompt(item))
    image = resize_image(Image.open(media["scene.jpg"]), 4096, 1843200)
    conv = [{"role": "system", "content": [{"type": "text", "text": "Represent the user's input."}]},
            {"role": "user", "content": [{"type": "image", "image": "x"}, {"type": "text", "text": "shapes"}]}]
    text = processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    want = processor(text=[text], images=[image], do_resize=False)["input_ids"][0]
    assert sample.input_ids == list(want)


def test_video_tokens_use_the_457_layout(embedder, processor, media):
    """transformers 5 wraps the per-frame spans in one more vision_start/vision_end; the models were
    released with 4.57, which does not. Everything else is identical."""
    item = to_item({"video": media["frames"][:6], "text": "clip"})
    sample = embedder.engine.preprocessor.prepare(embedding_prompt(item, fps=1.0, max_frames=64))
    frames = [Image.open(p).convert("RGB") for p in media["frames"][:6]]
    video, indices, fps = frame_list_to_video(frames, 7864320)
    from transformers.video_utils import VideoMetadata

    conv = [{"role": "system", "content": [{"type": "text", "text": "Represent the user's input."}]},
            {"role": "user", "content": [{"type": "video", "video": "x"}, {"type": "text", "text": "clip"}]}]
    text = processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    meta = VideoMetadata(total_num_frames=len(indices), fps=fps, frames_indices=indices)
    out = processor(text=[text], videos=[video.float()], video_metadata=[meta], do_resize=False,
                    do_sample_frames=False, cap_pixels_per_frame=False)
    v5 = list(out["input_ids"][0])
    tok = embedder.engine.tokenizer
    vs, ve = tok.convert_tokens_to_ids("<|vision_start|>"), tok.convert_tokens_to_ids("<|vision_end|>")
    # drop 5.x's outer wrapper: the first vision_start and the last vision_end
    first = v5.index(vs)
    last = len(v5) - 1 - v5[::-1].index(ve)
    v457 = v5[:first] + v5[first + 1:last] + v5[last + 1:]
    assert sample.input_ids == v457
    assert len(v5) == len(sample.input_ids) + 2
    assert "<0.2 seconds>" in tok.decode(sample.input_ids) and "<2.2 seconds>" in tok.decode(sample.input_ids)


def test_truncation_drops_the_end_of_the_last_text(embedder, tiny_model_dir):
    from qwen3_vl_embedding.preprocess import Preprocessor, VisionSettings

    pre = Preprocessor(embedder.engine.tokenizer, VisionSettings(), max_length=40)
    item = to_item({"text": ["first part kept ", "second part " * 40]})
    sample = pre.prepare(embedding_prompt(item))
    assert sample.length == 40 and sample.truncated > 0
    text = embedder.engine.tokenizer.decode(sample.input_ids)
    assert "first part kept second part" in text
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(ValueError):
        Preprocessor(embedder.engine.tokenizer, VisionSettings(), max_length=4)


def test_template_alone_over_max_length(embedder):
    from qwen3_vl_embedding.preprocess import Preprocessor, VisionSettings

    pre = Preprocessor(embedder.engine.tokenizer, VisionSettings(), max_length=16)
    with pytest.raises(InputError, match="max_length=16"):
        pre.prepare(embedding_prompt(to_item({"text": "x", "instruction": "a long instruction " * 5})))


def test_estimates_are_close_to_actual(embedder, media):
    pre = embedder.engine.preprocessor
    for case in [{"text": "hello world " * 50}, {"image": media["scene.jpg"]}, {"video": media["frames"][:7]},
                 {"video": media["clip.mp4"], "fps": 2.0, "max_frames": 8}, {"image": media["large.jpg"], "text": "x"}]:
        prompt = embedding_prompt(to_item(case), fps=1.0, max_frames=64)
        actual = pre.prepare(prompt).length
        estimate = pre.estimate(prompt)
        assert 0.8 * actual <= estimate <= 1.25 * actual + 10, (case, estimate, actual)


def test_vision_settings_validation():
    from qwen3_vl_embedding.preprocess import VisionSettings

    with pytest.raises(ValueError):
        VisionSettings(min_pixels=10, max_pixels=5)
    with pytest.raises(ValueError):
        VisionSettings(total_pixels=0)

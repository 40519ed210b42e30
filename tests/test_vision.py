"""Our pixel geometry equals qwen-vl-utils 0.0.14 (what the reference uses), number for number."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen3_vl_embedding import vision
from qwen3_vl_embedding.constants import MAX_PIXELS, MIN_PIXELS, TOTAL_PIXELS

qvu = pytest.importorskip("qwen_vl_utils.vision_process")


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([(MIN_PIXELS, MAX_PIXELS), (4096, 65536), (None, None)]))
def test_smart_resize_matches_qwen_vl_utils(h, w, bounds):
    lo, hi = bounds
    try:
        want = qvu.smart_resize(h, w, 32, lo, hi)
    except ValueError:
        with pytest.raises(ValueError):
            vision.smart_resize(h, w, 32, lo, hi)
        return
    assert vision.smart_resize(h, w, 32, lo, hi) == want


@pytest.mark.parametrize("name", ["scene.jpg", "noise.png", "tall.png", "tiny.png", "alpha.png", "gray.png", "large.jpg"])
def test_resize_image_matches_fetch_image(media, name):
    from PIL import Image

    image = Image.open(media[name])
    want = qvu.fetch_image({"image": image, "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}, image_patch_size=16)
    got = vision.resize_image(Image.open(media[name]), MIN_PIXELS, MAX_PIXELS)
    assert got.size == want.size
    assert np.array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("count", [1, 3, 8, 10])
def test_frame_list_matches_fetch_video(media, count):
    from PIL import Image

    frames = [Image.open(p).convert("RGB") for p in media["frames"][:count]]
    want, meta = qvu.fetch_video({"video": frames, "total_pixels": TOTAL_PIXELS}, image_patch_size=16,
                                 return_video_metadata=True)
    got, indices, fps = vision.frame_list_to_video(frames, TOTAL_PIXELS)
    assert got.dtype == torch.uint8
    assert torch.equal(got.float(), want)
    assert indices == meta["frames_indices"] and fps == meta["fps"]


@pytest.mark.parametrize("fps,max_frames", [(2.0, 8), (1.0, 64), (8.0, 6), (0.5, 64)])
def test_video_file_sampling_matches_fetch_video(media, monkeypatch, fps, max_frames):
    from qwen3_vl_embedding.video import open_video

    monkeypatch.setattr(qvu, "FORCE_QWENVL_VIDEO_READER", "decord")
    qvu.get_video_reader_backend.cache_clear()
    want, meta = qvu.fetch_video({"video": "file://" + media["clip.mp4"], "fps": fps, "max_frames": max_frames},
                                 image_patch_size=16, return_video_metadata=True)
    qvu.get_video_reader_backend.cache_clear()
    video = open_video(media["clip.mp4"], "decord")
    first, last = vision.frame_range(video.num_frames, video.fps, None, None)
    n = vision.smart_nframes(last - first + 1, video.fps, fps, max_frames)
    idx = vision.sample_indices(first, last, n)
    assert idx == list(meta["frames_indices"]) and video.fps == meta["fps"]
    got = vision.resize_video(video.frames(idx), vision.FILE_TOTAL_PIXELS)
    assert torch.equal(got.float(), want)


def test_video_span_matches_qwen_vl_utils():
    assert vision.frame_range(240, 8.0, 10.0, 20.0) == qvu.calculate_video_frame_range(
        {"video_start": 10.0, "video_end": 20.0}, 240, 8.0)[:2]
    with pytest.raises(ValueError):
        vision.frame_range(24, 8.0, 5.0, 6.0)


def test_timestamps_match_the_processor():
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    for indices, fps in [([0, 5, 9, 14, 18, 23], 8.0), (list(range(8)), 2.0), ([0, 3, 7], 24.0)]:
        want = Qwen3VLProcessor._calculate_timestamps(None, list(indices), fps, 2)
        assert vision.timestamps(indices, fps) == want


def test_smart_nframes_bounds():
    assert vision.smart_nframes(24, 8.0, 2.0, 8) == 6
    assert vision.smart_nframes(240, 8.0, 1.0, 64) == 30
    assert vision.smart_nframes(2400, 8.0, 1.0, 64) == 64
    with pytest.raises(ValueError):
        vision.smart_nframes(1, 8.0, 1.0, 64)


def test_sample_frame_list_keeps_short_lists():
    frames = list(range(10))
    assert vision.sample_frame_list(frames, 64) == frames
    assert vision.sample_frame_list(frames, 4) == [0, 3, 6, 9]


def test_token_estimates_equal_actual_sizes(media):
    from PIL import Image

    im = Image.open(media["scene.jpg"])
    resized = vision.resize_image(im, MIN_PIXELS, MAX_PIXELS)
    assert vision.image_tokens(*im.size, MIN_PIXELS, MAX_PIXELS) == (resized.width // 32) * (resized.height // 32)
    frames = [Image.open(p) for p in media["frames"][:5]]
    video, _, _ = vision.frame_list_to_video(frames, TOTAL_PIXELS)
    t, _, h, w = video.shape
    assert vision.frame_list_tokens(*frames[0].size, 5, TOTAL_PIXELS) == (t // 2) * (h // 32) * (w // 32)

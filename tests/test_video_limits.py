"""Video budgets are checked from the container header before any frame is decoded, and frames are
decoded and resized a chunk at a time (same pixels as the whole stack, bounded memory)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch

from qwen3_vl_embedding import vision
from qwen3_vl_embedding.errors import InputError, LimitError
from qwen3_vl_embedding.media import MediaPolicy
from qwen3_vl_embedding.video import VideoFile, open_video, read_header
from resources import peak_growth


def flat_mp4(width: int, height: int, frames: int, fps: int = 30) -> bytes:
    """An H.264 mp4 of a gradient with a moving square: large frames, a small file, quick to encode."""
    import av

    buf = io.BytesIO()
    base = np.repeat(np.repeat(np.linspace(0, 255, height, dtype=np.uint8)[:, None], width, 1)[:, :, None], 3, 2)
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for i in range(frames):
            frame = base.copy()
            x = (i * 37) % max(1, width - 64)
            frame[16:80, x:x + 64] = (220, 30, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def video_uri(data: bytes) -> str:
    return "data:video/mp4;base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def clip_640(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("videos") / "clip640.mp4"
    path.write_bytes(flat_mp4(640, 480, 24, fps=8))
    return str(path)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any frame of a video file is decoded."""
    def refuse(*args, **kwargs):
        raise AssertionError("a frame was decoded before the limits were checked")
    monkeypatch.setattr(VideoFile, "frames", refuse)
    monkeypatch.setattr(VideoFile, "frame_chunks", refuse)


def model(tiny_model_dir, **policy):
    from qwen3_vl_embedding import Qwen3VLEmbedder

    return Qwen3VLEmbedder(tiny_model_dir, media_policy=MediaPolicy(**policy), workers=1)


# pixels: chunks equal the whole stack ------------------------------------------------------------------
def test_chunked_resize_gives_the_same_pixels_as_the_whole_stack():
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    frames = torch.randint(0, 256, (6, 3, 240, 426), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    h, w = vision.video_frame_size(240, 426, 6, vision.FILE_TOTAL_PIXELS)
    whole = tvf.resize(frames, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    for step in (1, 4, 6):
        chunks = (frames[i:i + step] for i in range(0, 6, step))
        assert torch.equal(vision.resize_video_stream(chunks, 6, vision.FILE_TOTAL_PIXELS), whole)
    assert torch.equal(vision.resize_video(frames, vision.FILE_TOTAL_PIXELS), whole)
    with pytest.raises(ValueError, match="expected 6 frames, got 4"):
        vision.resize_video_stream(iter([frames[:4]]), 6, vision.FILE_TOTAL_PIXELS)


@pytest.mark.parametrize("backend", ["decord", "av"])
def test_frame_chunks_are_the_frames_in_order(clip_640, backend):
    video = open_video(clip_640, backend, read_header(clip_640))
    indices = [0, 3, 3, 7, 12, 23]
    chunks = list(video.frame_chunks(indices, 2 * 640 * 480))
    assert [len(c) for c in chunks] == [2, 2, 2]
    assert torch.equal(torch.cat(chunks), video.frames(indices))


def test_header_is_read_without_decoding(clip_640, no_decoding):
    header = read_header(clip_640)
    assert (header.width, header.height, header.frames, header.fps) == (640, 480, 24, 8.0)


# limits before decoding --------------------------------------------------------------------------------
def test_frame_size_over_the_image_limit_is_refused_from_the_header(tiny_model_dir, clip_640, no_decoding):
    embedder = model(tiny_model_dir, max_image_pixels=300_000)
    with pytest.raises(LimitError, match="video frames of 640x480 pixels exceeds max_image_pixels=300000") as info:
        embedder.embed([{"video": clip_640}])
    assert info.value.limit == "max_image_pixels" and info.value.field == "video"


def test_total_video_pixels_and_frames_are_refused_before_decoding(tiny_model_dir, clip_640, no_decoding):
    embedder = model(tiny_model_dir, max_video_pixels=2_000_000, max_video_frames=10)
    with pytest.raises(LimitError, match="8 frames of 640x480 are 2457600 pixels, more than "
                                         "max_video_pixels=2000000") as info:
        embedder.embed([{"video": clip_640, "fps": 8, "max_frames": 8}])
    assert info.value.limit == "max_video_pixels"
    with pytest.raises(LimitError, match="12 frames exceed max_video_frames=10"):
        embedder.embed([{"video": clip_640, "fps": 8, "max_frames": 12}])


def test_with_pyav_the_limits_come_before_the_reader_counts_frames(tiny_model_dir, clip_640, monkeypatch):
    """PyAV's reader decodes a whole video to count its frames: the header's count is checked first."""
    from qwen3_vl_embedding import Qwen3VLEmbedder, preprocess

    def refuse(*args, **kwargs):
        raise AssertionError("the video was opened for reading before the limits were checked")
    monkeypatch.setattr(preprocess, "open_video", refuse)
    for policy, item, refusal in (
            (MediaPolicy(max_video_seconds=2.5), {"video": clip_640}, "video of 3.0 s exceeds max_video_seconds=2.5"),
            (MediaPolicy(max_video_pixels=2_000_000), {"video": clip_640, "fps": 8, "max_frames": 8},
             "8 frames of 640x480 are 2457600 pixels, more than max_video_pixels=2000000")):
        embedder = Qwen3VLEmbedder(tiny_model_dir, video_backend="av", workers=1, media_policy=policy)
        with pytest.raises(LimitError, match=refusal):
            embedder.embed([item])


def test_a_video_that_cannot_fit_max_length_is_refused_before_decoding(tiny_model_dir, clip_640, no_decoding):
    from qwen3_vl_embedding import Qwen3VLEmbedder

    short = Qwen3VLEmbedder(tiny_model_dir, max_length=256, workers=1)
    with pytest.raises(InputError, match=r"the video alone needs \d+ tokens .8 frames of \d+x\d+ once resized., "
                                         r"more than max_length=256"):
        short.embed([{"video": clip_640, "fps": 8, "max_frames": 8}])


def test_frame_lists_are_capped_in_all_pixels_before_the_frame_over_it_is_decoded(tiny_model_dir, media, monkeypatch):
    from qwen3_vl_embedding import media as media_module

    decoded = []
    real = media_module.decode_image
    monkeypatch.setattr(media_module, "decode_image", lambda image, policy=None: decoded.append(image.size) or
                        real(image, policy))
    embedder = model(tiny_model_dir, max_video_pixels=3 * 160 * 120)
    with pytest.raises(LimitError, match="the frames hold more than max_video_pixels=57600 pixels .frame 3 of 160x120"):
        embedder.embed([{"video": media["frames"][:6]}])
    assert decoded == [(160, 120)] * 3  # the fourth frame was refused from its header
    decoded.clear()
    assert embedder.embed([{"video": media["frames"][:3]}]).shape == (1, embedder.dim)


def test_streamed_frame_lists_and_files_equal_the_library_before(embedder, media, clip_640):
    """The chunked paths give the reference's pixels: vision.frame_list_to_video and the file path agree
    with resizing the whole stack at once."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    images = [Image.open(p).convert("RGB") for p in media["frames"][:5]]
    video, indices, fps = vision.frame_list_to_video(iter(images), vision.FILE_TOTAL_PIXELS, count=5)
    grid = [vision.resize_image(im, None, None, factor=vision.FRAME_LIST_FACTOR) for im in images + images[-1:]]
    stack = torch.stack([vision.pil_to_tensor(im) for im in grid])
    h, w = vision.video_frame_size(stack.shape[-2], stack.shape[-1], 6, vision.FILE_TOTAL_PIXELS)
    assert torch.equal(video, tvf.resize(stack, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True))
    assert indices == list(range(6)) and fps == vision.FRAME_LIST_SAMPLE_FPS


# the server: the reproduction of the issue -------------------------------------------------------------
@pytest.fixture(scope="module")
def default_server(tiny_model_dir):
    """A server with the default limits (max_image_pixels 25M, max_video_pixels 200M, max_video_frames 64)."""
    import httpx

    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.server import ServerConfig, create_app
    from server_fixtures import RunningServer

    config = ServerConfig()
    embedder = Qwen3VLEmbedder(tiny_model_dir, media_policy=config.media_policy(), workers=2)
    running = RunningServer(create_app(config, embedder=embedder))
    with httpx.Client(base_url=running.url, timeout=120, trust_env=False) as client:
        yield client
    running.stop()


def test_the_issues_video_is_refused_before_decoding_with_bounded_memory(default_server):
    """24 frames of 4096x4096 with fps 30 and max_frames 24: before, 8.7 GB resident and 70 s, then a 400."""
    uri = video_uri(flat_mp4(4096, 4096, 24))
    with peak_growth() as grown:
        r = default_server.post("/v1/embeddings", json={"input": [{"video": uri, "fps": 30, "max_frames": 24}]})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "limit_exceeded" and error["param"] == "input[0].video"
    assert "24 frames of 4096x4096 are 402653184 pixels, more than max_video_pixels=200000000" in error["message"]
    assert grown["mb"] < 300, grown


def test_a_video_over_max_length_is_refused_before_decoding(default_server):
    uri = video_uri(flat_mp4(2048, 2048, 24))  # 100 Mpx in all: within max_video_pixels
    with peak_growth() as grown:
        r = default_server.post("/v1/embeddings", json={"input": [{"video": uri, "fps": 30, "max_frames": 24}]})
    assert r.status_code == 400, r.text
    assert "the video alone needs" in r.json()["error"]["message"] and "max_length=8192" in r.json()["error"]["message"]
    assert grown["mb"] < 300, grown


def test_server_frame_cap_is_below_the_librarys(default_server):
    uri = video_uri(flat_mp4(64, 64, 8))
    r = default_server.post("/v1/embeddings", json={"input": [{"video": uri, "max_frames": 100}]})
    assert r.status_code == 422 and "max_video_frames=64" in r.json()["error"]["message"]
    assert default_server.post("/v1/embeddings", json={"input": [{"video": uri, "max_frames": 8}]}).status_code == 200


def test_an_accepted_large_video_is_decoded_a_frame_at_a_time(tiny_model_dir):
    """8 frames of 2048x2048 (33 Mpx): decoding them all at once and resizing the stack in float32
    took about 16 bytes per source pixel (over 500 MB); chunk by chunk it is one frame's worth."""
    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.server import ServerConfig

    embedder = Qwen3VLEmbedder(tiny_model_dir, media_policy=ServerConfig().media_policy(), workers=1)
    prompt = embedder.prompt({"video": video_uri(flat_mp4(2048, 2048, 8)), "fps": 30, "max_frames": 8})
    with peak_growth() as grown:
        sample = embedder.engine.preprocessor.prepare(prompt)
    assert sample.videos[0].shape[0] == 8
    assert grown["mb"] < 400, grown

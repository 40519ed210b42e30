"""Pixel geometry of Qwen3-VL inputs: resizing images, sampling and resizing video frames, timestamps.

These reproduce, number for number, what the official reference does through qwen-vl-utils 0.0.14
(the project's tests compare them with it), as small functions of their own:

* an image is converted to RGB (transparency over white) and resized with PIL bicubic so that both
  sides are multiples of 32 and its area lies in [min_pixels, max_pixels];
* a video file is sampled at `fps` frames per second (at least 4, at most `max_frames`, an even
  number), then every frame is resized with torchvision bicubic (antialiased) under a per-frame
  budget derived from `total_pixels`;
* a video given as frames is resized frame by frame on a 64-pixel grid first (a quirk of the
  reference kept for parity), padded to an even count, then resized like a file.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from .constants import IMAGE_FACTOR

MAX_RATIO = 200
FRAME_FACTOR = 2
MIN_FRAMES = 4
MAX_FRAMES_CAP = 768
VIDEO_MIN_PIXELS = 128 * IMAGE_FACTOR * IMAGE_FACTOR
VIDEO_MAX_FRAME_PIXELS = 768 * IMAGE_FACTOR * IMAGE_FACTOR
# qwen-vl-utils' total pixel budget of a video file when none is given (MODEL_SEQ_LEN=128000 tokens).
FILE_TOTAL_PIXELS = 128000 * IMAGE_FACTOR * IMAGE_FACTOR * 0.9
# Frames of a frame list are first resized on this grid, with qwen-vl-utils' image defaults.
FRAME_LIST_FACTOR = 2 * IMAGE_FACTOR
FRAME_LIST_SAMPLE_FPS = 2.0
# Source pixels decoded and resized at once (at least one frame): bounds a video's memory, not its result.
CHUNK_PIXELS = 8_000_000


def _round(n: float, f: int) -> int:
    return round(n / f) * f


def _ceil(n: float, f: int) -> int:
    return math.ceil(n / f) * f


def _floor(n: float, f: int) -> int:
    return math.floor(n / f) * f


def smart_resize(height: int, width: int, factor: int = IMAGE_FACTOR,
                 min_pixels: float | None = None, max_pixels: float | None = None) -> tuple[int, int]:
    """(height, width) with both sides multiples of `factor`, area within the bounds, aspect kept."""
    max_pixels = 16384 * factor**2 if max_pixels is None else max_pixels
    min_pixels = 4 * factor**2 if min_pixels is None else min_pixels
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    if min(height, width) <= 0:
        raise ValueError(f"an image must have a positive size, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"aspect ratio must be at most {MAX_RATIO}:1, got {width}x{height}")
    h_bar = max(factor, _round(height, factor))
    w_bar = max(factor, _round(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = _floor(height / beta, factor)
        w_bar = _floor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil(height * beta, factor)
        w_bar = _ceil(width * beta, factor)
    return h_bar, w_bar


def to_rgb(image):
    """RGB copy of a PIL image; an RGBA image is composited over white, as the reference does."""
    from PIL import Image

    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")


def resize_image(image, min_pixels: float | None, max_pixels: float | None, factor: int = IMAGE_FACTOR):
    """The image, in RGB, resized (PIL bicubic) by `smart_resize`."""
    image = to_rgb(image)
    width, height = image.size
    h, w = smart_resize(height, width, factor, min_pixels, max_pixels)
    return image.resize((w, h))


def image_tokens(width: int, height: int, min_pixels: float, max_pixels: float) -> int:
    """Number of LLM tokens an image of this size becomes (without its two wrapper tokens)."""
    h, w = smart_resize(height, width, IMAGE_FACTOR, min_pixels, max_pixels)
    return (h // IMAGE_FACTOR) * (w // IMAGE_FACTOR)


def pil_to_tensor(image) -> torch.Tensor:
    """A PIL RGB image as a uint8 tensor (C, H, W)."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def smart_nframes(total_frames: int, video_fps: float, fps: float, max_frames: int | None,
                  min_frames: int = MIN_FRAMES) -> int:
    """How many frames to sample from a clip of `total_frames` at `video_fps`: an even number >= 2."""
    lo = _ceil(min_frames, FRAME_FACTOR)
    hi = _floor(max_frames if max_frames is not None else min(MAX_FRAMES_CAP, total_frames), FRAME_FACTOR)
    n = total_frames / video_fps * fps
    n = _floor(min(min(max(n, lo), hi), total_frames), FRAME_FACTOR)
    if not FRAME_FACTOR <= n <= total_frames:
        raise ValueError(f"a video needs at least {FRAME_FACTOR} frames to sample, this one gives {n} "
                         f"(of {total_frames} frames)")
    return n


def frame_range(total_frames: int, video_fps: float, start: float | None, end: float | None) -> tuple[int, int]:
    """First and last frame index (inclusive) of the span [start, end] seconds."""
    if video_fps <= 0 or total_frames <= 0:
        raise ValueError("the video reports no frames or no frame rate")
    if start is None and end is None:
        return 0, total_frames - 1
    duration = total_frames / video_fps
    first = math.ceil(max(0.0, min(start, duration)) * video_fps) if start is not None else 0
    last = min(math.floor(max(0.0, min(end, duration)) * video_fps), total_frames - 1) if end is not None \
        else total_frames - 1
    if first >= last:
        raise ValueError(f"the span {start}..{end} s holds no frames of this {duration:.2f} s video")
    return first, last


def sample_indices(first: int, last: int, n: int) -> list[int]:
    return torch.linspace(first, last, n).round().long().tolist()


def video_max_pixels(nframes: int, total_pixels: float, min_pixels: float = VIDEO_MIN_PIXELS) -> float:
    """Per-frame pixel budget of a video of `nframes` frames."""
    return max(min(VIDEO_MAX_FRAME_PIXELS, total_pixels / nframes * FRAME_FACTOR), int(min_pixels * 1.05))


def video_frame_size(height: int, width: int, nframes: int, total_pixels: float) -> tuple[int, int]:
    return smart_resize(height, width, IMAGE_FACTOR, VIDEO_MIN_PIXELS, video_max_pixels(nframes, total_pixels))


def _resize_frames(frames: torch.Tensor, h: int, w: int) -> torch.Tensor:
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    return tvf.resize(frames, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)


def resize_video(frames: torch.Tensor, total_pixels: float) -> torch.Tensor:
    """Resize uint8 frames (T, C, H, W) with torchvision bicubic under the video budget; uint8 out."""
    t, _, height, width = frames.shape
    step = max(1, CHUNK_PIXELS // max(1, height * width))
    return resize_video_stream((frames[i:i + step] for i in range(0, t, step)), t, total_pixels)


def resize_video_stream(chunks: Iterable[torch.Tensor], count: int, total_pixels: float) -> torch.Tensor:
    """`resize_video` of a video given as consecutive uint8 chunks (k, C, H, W) of `count` frames in all.

    Frames are resized a chunk at a time (torchvision works in float32, 4 bytes per channel), so the
    memory of a video is its resized frames plus one chunk, not 12 bytes per source pixel of every
    frame; the pixels are the same as resizing the whole stack at once."""
    out: torch.Tensor | None = None
    filled = 0
    for chunk in chunks:
        if out is None:
            h, w = video_frame_size(chunk.shape[-2], chunk.shape[-1], count, total_pixels)
            out = torch.empty((count, chunk.shape[1], h, w), dtype=torch.uint8)
            size = tuple(chunk.shape[-2:])
        elif tuple(chunk.shape[-2:]) != size:
            raise ValueError(f"the frames of a video must all have one size, got {size} and {tuple(chunk.shape[-2:])}")
        if filled + len(chunk) > count:
            raise ValueError(f"more than the {count} frames announced")
        out[filled:filled + len(chunk)] = _resize_frames(chunk, h, w)
        filled += len(chunk)
    if out is None or filled != count:
        raise ValueError(f"expected {count} frames, got {filled}")
    return out


def sample_frame_list(frames: Sequence, max_frames: int | None) -> list:
    """At most `max_frames` frames, evenly spaced (the reference's frame-list sampling)."""
    if max_frames is None or len(frames) <= max_frames:
        return list(frames)
    return [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames, dtype=int).tolist()]


def frame_list_to_video(images: Iterable, total_pixels: float, count: int | None = None
                        ) -> tuple[torch.Tensor, list[int], float]:
    """Frames (PIL) -> (uint8 video (T, C, H, W), frame indices, frame rate) as the reference builds it.

    `images` may be a generator (then give `count`): each frame is read, resized and let go before the
    next, so only one source frame is held at a time."""
    count = len(images) if count is None else count  # type: ignore[arg-type]
    if count < 1:
        raise ValueError("a video given as frames needs at least one frame")
    n = _ceil(count, FRAME_FACTOR)
    sizes: list[tuple[int, int]] = []

    def grid_frames() -> Iterator[torch.Tensor]:
        frame = None
        for im in images:
            resized = resize_image(im, None, None, factor=FRAME_LIST_FACTOR)
            if sizes and resized.size != sizes[0]:
                raise ValueError(f"the frames of a video must all have one size, got {sorted({sizes[0], resized.size})}")
            sizes.append(resized.size)
            frame = pil_to_tensor(resized)[None]
            yield frame
        for _ in range(n - count):  # an even count: the last frame again
            yield frame

    return resize_video_stream(grid_frames(), n, total_pixels), list(range(n)), FRAME_LIST_SAMPLE_FPS


def frame_list_tokens(width: int, height: int, count: int, total_pixels: float) -> int:
    """LLM tokens of a frame list whose first frame has this size (without timestamps and wrappers)."""
    h, w = smart_resize(height, width, FRAME_LIST_FACTOR)
    n = _ceil(count, FRAME_FACTOR)
    fh, fw = video_frame_size(h, w, n, total_pixels)
    return (n // FRAME_FACTOR) * (fh // IMAGE_FACTOR) * (fw // IMAGE_FACTOR)


def video_file_tokens(width: int, height: int, nframes: int, total_pixels: float = FILE_TOTAL_PIXELS) -> int:
    fh, fw = video_frame_size(height, width, nframes, total_pixels)
    return (nframes // FRAME_FACTOR) * (fh // IMAGE_FACTOR) * (fw // IMAGE_FACTOR)


def timestamps(indices: Sequence[int], video_fps: float, merge: int = FRAME_FACTOR) -> list[float]:
    """Time in seconds of each temporal patch: the mean of its first and last frame's time."""
    idx = list(indices)
    if len(idx) % merge:
        idx += [idx[-1]] * (merge - len(idx) % merge)
    t = [i / video_fps for i in idx]
    return [(t[i] + t[i + merge - 1]) / 2 for i in range(0, len(t), merge)]

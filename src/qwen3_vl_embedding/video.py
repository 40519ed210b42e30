"""Video decoding: decord when installed (what the reference uses), PyAV otherwise.

`read_header` reads a video's size, frame rate and frame count from its container (PyAV, no frame
decoded), so limits can be checked before any pixel is decoded. `open_video` returns a `VideoFile`
with the frame count, frame rate and size, and reads frames by index as a uint8 tensor (T, C, H, W),
whole (`frames`) or a few at a time (`frame_chunks`: memory bounded by the chunk, not the video).
A missing backend is an ImportError saying what to install; an unreadable file is a MediaError.
Nothing falls back silently to another reader mid-way.
"""
from __future__ import annotations

import importlib.util
import io
import os
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from .errors import MediaError

BACKENDS = ("decord", "av")
INSTALL_HINT = ("reading video files needs a video backend: `pip install decord` (x86_64) or `pip install av`")


def available_backend(preferred: str | None = None) -> str:
    """The backend to use: `preferred`, else $QVL_VIDEO_BACKEND, else decord, else PyAV."""
    preferred = preferred or os.environ.get("QVL_VIDEO_BACKEND") or None
    if preferred is not None:
        if preferred not in BACKENDS:
            raise ValueError(f"unknown video backend {preferred!r}; choose one of {BACKENDS}")
        if importlib.util.find_spec(preferred) is None:
            raise ImportError(f"video backend {preferred!r} is not installed; {INSTALL_HINT}")
        return preferred
    for name in BACKENDS:
        if importlib.util.find_spec(name) is not None:
            return name
    raise ImportError(INSTALL_HINT)


@dataclass(frozen=True)
class VideoHeader:
    """What a container says about its first video stream, without decoding a frame.

    frames: None when the container does not say (then estimated from duration and rate when it can)."""

    frames: int | None
    fps: float
    width: int
    height: int

    @property
    def frame_pixels(self) -> int:
        return self.width * self.height


def read_header(source: str | bytes) -> VideoHeader:
    """The header of a video file (path or bytes); MediaError when it cannot be read (PyAV)."""
    try:
        import av
    except ImportError:
        raise ImportError(f"reading video headers needs PyAV; {INSTALL_HINT}") from None
    try:
        with av.open(_as_file(source)) as container:
            if not container.streams.video:
                raise MediaError("the file has no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            frames = stream.frames or None
            if not frames and stream.duration and stream.time_base and rate:
                frames = int(float(stream.duration * stream.time_base) * rate)
            if not frames and container.duration and rate:
                frames = int(container.duration / 1_000_000 * rate)
            width, height = stream.codec_context.width, stream.codec_context.height
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"cannot read video: {type(e).__name__}: {_first_line(e)}") from None
    if not width or not height:
        raise MediaError("the video's header gives no frame size")
    return VideoHeader(int(frames) if frames else None, rate, int(width), int(height))


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else ""


@dataclass
class VideoFile:
    num_frames: int
    fps: float
    width: int
    height: int
    backend: str
    _handle: Any = None

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0

    def frames(self, indices: list[int]) -> torch.Tensor:
        """uint8 frames (T, C, H, W) at `indices`."""
        try:
            if self.backend == "decord":
                array = self._handle.get_batch(indices).asnumpy()
            else:
                array = _av_frames(self._handle, indices)
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(f"cannot decode video frames: {e}") from None
        return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)

    def frame_chunks(self, indices: list[int], max_pixels: int) -> Iterator[torch.Tensor]:
        """The frames at `indices` (non-decreasing), in order, as uint8 chunks (k, C, H, W) of at most
        `max_pixels` source pixels each (at least one frame): what is decoded at once stays small."""
        per_chunk = max(1, max_pixels // max(1, self.width * self.height))
        if self.backend != "av" or any(b < a for a, b in zip(indices, indices[1:])):
            for start in range(0, len(indices), per_chunk):
                yield self.frames(indices[start:start + per_chunk])
            return
        try:
            for array in _av_chunks(self._handle, indices, per_chunk):
                yield torch.from_numpy(array).permute(0, 3, 1, 2)
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(f"cannot decode video frames: {e}") from None


def _as_file(source: str | bytes):
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source


def open_video(source: str | bytes, backend: str | None = None, header: VideoHeader | None = None) -> VideoFile:
    """Open a video file (path or bytes) for reading; with its `header` (read_header), decord decodes
    no frame to learn the size."""
    name = available_backend(backend)
    try:
        if name == "decord":
            import decord

            reader = decord.VideoReader(_as_file(source), num_threads=1)
            n = len(reader)
            if n == 0:
                raise MediaError("the video has no frames")
            if header is not None:
                width, height = header.width, header.height
            else:
                height, width = reader[0].shape[:2]
                reader.seek(0)
            return VideoFile(n, float(reader.get_avg_fps()), width, height, name, reader)
        return _av_open(source)
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"cannot read video: {type(e).__name__}: {_first_line(e)}") from None


def _av_open(source: str | bytes) -> VideoFile:
    import av

    data = source if isinstance(source, (bytes, bytearray)) else None
    with av.open(_as_file(source)) as container:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        n = sum(1 for _ in container.decode(stream))
        width, height = stream.codec_context.width, stream.codec_context.height
    if n == 0:
        raise MediaError("the video has no frames")
    return VideoFile(n, float(rate) if rate else 0.0, width, height, "av", data if data is not None else source)


def _av_frames(source: str | bytes, indices: list[int]) -> np.ndarray:
    import av

    wanted: dict[int, list[int]] = {}
    for pos, i in enumerate(indices):
        wanted.setdefault(i, []).append(pos)
    out: list[np.ndarray | None] = [None] * len(indices)
    last = max(indices)
    with av.open(_as_file(source)) as container:
        for i, frame in enumerate(container.decode(container.streams.video[0])):
            if i in wanted:
                array = frame.to_ndarray(format="rgb24")
                for pos in wanted[i]:
                    out[pos] = array
            if i >= last:
                break
    if any(a is None for a in out):
        raise MediaError("the video ended before the requested frames")
    return np.stack(out)


def _av_chunks(source: str | bytes, indices: list[int], per_chunk: int) -> Iterator[np.ndarray]:
    """Frames at sorted `indices` in one decoding pass, `per_chunk` at a time, as (k, H, W, 3) arrays."""
    import av

    chunk: list[np.ndarray] = []
    pos = 0
    with av.open(_as_file(source)) as container:
        for i, frame in enumerate(container.decode(container.streams.video[0])):
            if pos < len(indices) and indices[pos] == i:
                array = frame.to_ndarray(format="rgb24")
                while pos < len(indices) and indices[pos] == i:
                    chunk.append(array)
                    pos += 1
                    if len(chunk) == per_chunk:
                        yield np.stack(chunk)
                        chunk = []
            if pos == len(indices):
                break
    if pos < len(indices):
        raise MediaError("the video ended before the requested frames")
    if chunk:
        yield np.stack(chunk)


def probe_video(ref, policy=None) -> tuple[int, float, int, int] | None:
    """(frames, fps, width, height) of a local video from its container header, without decoding.

    None when that is not cheaply known (remote URL, no PyAV, unreadable header)."""
    from . import media

    policy = policy or media.DEFAULT_POLICY
    if isinstance(ref, str) and media.is_url(ref):
        return None
    if importlib.util.find_spec("av") is None:
        return None
    try:
        header = read_header(media.video_source(ref, policy))
    except Exception:
        return None
    if not header.frames or not header.fps:
        return None
    return header.frames, header.fps, header.width, header.height


def frame_at(source: str, seconds: float, backend: str | None = None) -> np.ndarray:
    """The frame shown at `seconds` (clamped to the video) as uint8 (H, W, 3): a poster frame.

    decord reads it by index; PyAV seeks to the key frame before it and decodes forward, so neither
    decodes the video from its start."""
    name = available_backend(backend)
    try:
        if name == "decord":
            video = open_video(source, "decord")
            index = min(video.num_frames - 1, max(0, int(round(seconds * video.fps))))
            return video.frames([index])[0].permute(1, 2, 0).numpy()
        return _av_frame_at(source, seconds)
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"cannot read a frame at {seconds:g} s: {type(e).__name__}: {str(e)[:200]}") from None


def _av_frame_at(source: str, seconds: float) -> np.ndarray:
    import av

    with av.open(source) as container:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        stream = container.streams.video[0]
        base = stream.time_base
        origin = float(stream.start_time * base) if stream.start_time and base else 0.0
        if seconds > 0 and base:
            container.seek(int((origin + seconds) / base), stream=stream, backward=True, any_frame=False)
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is not None and frame.time >= origin + seconds - 1e-3:
                break
        if last is None:
            raise MediaError("the video has no frames")
        return last.to_ndarray(format="rgb24")

"""Prompt -> model-ready `Sample`: media read and resized, token ids in the 4.57 layout, truncation.

Token layout (the one the models were released with, transformers 4.57):
* an image is ``<|vision_start|>`` + N x ``<|image_pad|>`` + ``<|vision_end|>``;
* a video is, per temporal patch (two frames), the text ``<{t:.1f} seconds>`` followed by
  ``<|vision_start|>`` + M x ``<|video_pad|>`` + ``<|vision_end|>``; no outer wrapper.

The whole prompt is tokenised in one call (as the reference does) with one pad per vision span,
then each pad is expanded to its count. A prompt longer than `max_length` loses text tokens from the
end of the user's text; the template, the pooled last position and every vision span stay whole.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from . import media, vision
from .constants import (IMAGE_FACTOR, IMAGE_PAD, MAX_PIXELS, MIN_PIXELS, TOTAL_PIXELS, VIDEO_PAD,
                        VISION_END, VISION_START)
from .errors import InputError, LimitError, MediaError
from .inputs import ImagePart, TextPart, VideoPart
from .prompts import Fixed, Prompt
from .video import open_video, read_header

RECENT_MEDIA = 4
RESERVED = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


@dataclass(frozen=True)
class VisionSettings:
    """Pixel budgets: per image, and in all for a video given as frames."""

    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS
    total_pixels: int = TOTAL_PIXELS
    video_backend: str | None = None

    def __post_init__(self):
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}")
        if self.total_pixels <= 0:
            raise ValueError(f"total_pixels must be positive, got {self.total_pixels}")


@dataclass
class Sample:
    """One prompt ready for the model."""

    input_ids: list[int]
    images: list[torch.Tensor] = field(default_factory=list)  # uint8 (C, H, W), resized
    videos: list[torch.Tensor] = field(default_factory=list)  # uint8 (T, C, H, W), T even, resized
    truncated: int = 0  # text tokens dropped to fit max_length
    group: str = ""  # the prompt's leading template text: samples that begin alike share it

    @property
    def length(self) -> int:
        return len(self.input_ids)


@dataclass
class _Vision:
    kind: str  # "image" | "video"
    pixels: torch.Tensor
    tokens_per_group: int
    timestamps: list[float] | None = None


def leading_text(prompt: Prompt) -> str:
    """The template text before the first part of the user's own (system text, instruction)."""
    out = []
    for piece in prompt:
        if not isinstance(piece, Fixed):
            break
        out.append(piece.text)
    return "".join(out)


class Preprocessor:
    """Reads media under `policy`, tokenises, truncates. Thread-safe: holds no per-call state."""

    def __init__(self, tokenizer, settings: VisionSettings, max_length: int,
                 policy: media.MediaPolicy = media.DEFAULT_POLICY):
        if max_length < 16:
            raise ValueError(f"max_length must be at least 16, got {max_length}")
        self.tokenizer = tokenizer
        self.backend = tokenizer.backend_tokenizer
        self.settings = settings
        self.max_length = max_length
        self.policy = policy
        self.pad_id = tokenizer.convert_tokens_to_ids(tokenizer.pad_token or "<|endoftext|>")
        self.image_pad_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        self.video_pad_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
        # Recently read media by part identity: a reranker's query part is shared by all its pairs.
        self._recent: OrderedDict[int, tuple[object, _Vision]] = OrderedDict()
        self._lock = threading.Lock()

    # media -------------------------------------------------------------------------------------
    def pixel_budget(self, part: ImagePart) -> tuple[int, int]:
        """(min_pixels, max_pixels) of an image: its own where it sets them, else the model's (a min
        above the image's own max is lowered to it)."""
        high = part.max_pixels or self.settings.max_pixels
        low = part.min_pixels or min(self.settings.min_pixels, high)
        if low > high:
            raise InputError(f"min_pixels ({low}) must not exceed max_pixels ({high})", field=part.field)
        return low, high

    def _image(self, part: ImagePart) -> _Vision:
        low, high = self.pixel_budget(part)
        image = media.load_image(part.source, self.policy)
        try:
            resized = vision.resize_image(image, low, high)
        except ValueError as e:
            raise MediaError(str(e)) from None
        tokens = (resized.height // IMAGE_FACTOR) * (resized.width // IMAGE_FACTOR)
        return _Vision("image", vision.pil_to_tensor(resized)[None], tokens)

    def _video(self, part: VideoPart) -> _Vision:
        try:
            pixels, indices, fps = self._frame_list(part) if part.is_frames else self._video_file(part)
        except ValueError as e:
            if isinstance(e, InputError):
                raise
            raise MediaError(str(e)) from None
        per_group = (pixels.shape[-2] // IMAGE_FACTOR) * (pixels.shape[-1] // IMAGE_FACTOR)
        return _Vision("video", pixels, per_group, vision.timestamps(indices, fps))

    def _check_frames(self, count: int) -> None:
        cap = self.policy.max_video_frames
        if cap is not None and count > cap:
            raise LimitError(f"{count} frames exceed max_video_frames={cap}; ask for fewer (max_frames, fps)",
                             limit="max_video_frames", value=cap)

    def _frame_list(self, part: VideoPart) -> tuple[torch.Tensor, list[int], float]:
        """Frames read one at a time, each checked from its header (its pixels, and the frames' sum
        against max_video_pixels) before it is decoded."""
        frames = vision.sample_frame_list(part.source, part.max_frames)
        self._check_frames(len(frames))
        limit = self.policy.max_video_pixels

        def images():
            total = 0
            for i, ref in enumerate(frames):
                image = media.open_image(ref, self.policy)
                total += image.width * image.height
                if limit is not None and total > limit:
                    raise LimitError(f"the frames hold more than max_video_pixels={limit} pixels (frame {i} of "
                                     f"{image.width}x{image.height} goes over)", limit="max_video_pixels", value=limit)
                yield media.decode_image(image, self.policy)

        return vision.frame_list_to_video(images(), self.settings.total_pixels, count=len(frames))

    def _video_file(self, part: VideoPart) -> tuple[torch.Tensor, list[int], float]:
        """A video file's sampled frames. Its size, frame count and rate come from the container header,
        and every limit (frame pixels, duration, frames, pixels in all, tokens) is checked before a frame
        is decoded (the reader's own count, which may decode to count, is checked again); frames are then
        decoded and resized a chunk at a time."""
        source = media.video_source(part.source, self.policy)
        header = read_header(source)
        media.check_pixels(header.width, header.height, self.policy, "video frames")
        if header.frames and header.fps:
            try:
                self._sampling(part, header.frames, header.fps, header)
            except InputError:
                raise
            except ValueError:
                pass  # the reader's own count decides
        video = open_video(source, self.settings.video_backend, header)
        first, last, n = self._sampling(part, video.num_frames, video.fps, header)
        indices = vision.sample_indices(first, last, n)
        chunks = self._checked(video.frame_chunks(indices, vision.CHUNK_PIXELS))
        return vision.resize_video_stream(chunks, n, vision.FILE_TOTAL_PIXELS), indices, video.fps

    def _sampling(self, part: VideoPart, frames: int, fps: float, header) -> tuple[int, int, int]:
        """(first, last, count) of the frames to sample from a video of `frames` at `fps`, refused when over
        max_video_seconds, max_video_frames, max_video_pixels or the model's max_length."""
        cap = self.policy.max_video_seconds
        duration = frames / fps if fps else 0.0
        if cap is not None and duration > cap:
            raise LimitError(f"video of {duration:.1f} s exceeds max_video_seconds={cap}",
                             limit="max_video_seconds", value=cap)
        first, last = vision.frame_range(frames, fps, part.start, part.end)
        n = vision.smart_nframes(last - first + 1, fps, part.fps or 2.0, part.max_frames)
        self._check_frames(n)
        limit = self.policy.max_video_pixels
        if limit is not None and n * header.frame_pixels > limit:
            raise LimitError(f"{n} frames of {header.width}x{header.height} are {n * header.frame_pixels} pixels, "
                             f"more than max_video_pixels={limit}; ask for fewer frames (max_frames, fps) or send a "
                             f"smaller video", limit="max_video_pixels", value=limit)
        fh, fw = vision.video_frame_size(header.height, header.width, n, vision.FILE_TOTAL_PIXELS)
        tokens = (n // vision.FRAME_FACTOR) * ((fh // IMAGE_FACTOR) * (fw // IMAGE_FACTOR) + 2)
        if tokens > self.max_length:
            raise InputError(f"the video alone needs {tokens} tokens ({n} frames of {fw}x{fh} once resized), more "
                             f"than max_length={self.max_length}; lower max_frames or fps, or raise max_length")
        return first, last, n

    def _checked(self, chunks):
        """Decoded chunks, each frame size checked again (a header may understate it)."""
        for chunk in chunks:
            media.check_pixels(chunk.shape[-1], chunk.shape[-2], self.policy, "video frames")
            yield chunk

    def _load(self, piece) -> _Vision:
        with self._lock:
            hit = self._recent.get(id(piece))
            if hit is not None and hit[0] is piece:
                self._recent.move_to_end(id(piece))
                return hit[1]
        v = self._read(piece)
        with self._lock:
            self._recent[id(piece)] = (piece, v)
            while len(self._recent) > RECENT_MEDIA:
                self._recent.popitem(last=False)
        return v

    def _read(self, piece) -> _Vision:
        try:
            return self._image(piece) if isinstance(piece, ImagePart) else self._video(piece)
        except InputError as e:
            raise e.located(field_prefix=piece.field) if e.field is None else e
        except ImportError:
            raise
        except Exception as e:  # a decoder's own exception type: still this item's fault
            raise MediaError(f"{type(e).__name__}: {e}", field=piece.field) from None

    # tokens ------------------------------------------------------------------------------------
    def _render(self, prompt: Prompt, visions: list[_Vision]) -> tuple[str, list[tuple[int, int]], list[int]]:
        """Prompt text with one pad per vision span, the spans of the user's text, the pad counts."""
        chunks: list[str] = []
        spans: list[tuple[int, int]] = []
        counts: list[int] = []
        pos = 0
        it = iter(visions)
        for piece in prompt:
            if isinstance(piece, Fixed):
                s = piece.text
            elif isinstance(piece, TextPart):
                bad = next((t for t in RESERVED if t in piece.text), None)
                if bad:
                    raise InputError(f"text contains the reserved token {bad}", field=piece.field)
                s = piece.text
                spans.append((pos, pos + len(s)))
            else:
                v = next(it)
                if v.kind == "image":
                    s = VISION_START + IMAGE_PAD + VISION_END
                    counts.append(v.tokens_per_group)
                else:
                    s = "".join(f"<{t:.1f} seconds>{VISION_START}{VIDEO_PAD}{VISION_END}" for t in v.timestamps)
                    counts.extend([v.tokens_per_group] * len(v.timestamps))
            chunks.append(s)
            pos += len(s)
        return "".join(chunks), spans, counts

    def _tokens(self, text: str, spans: list[tuple[int, int]], counts: list[int]) -> tuple[list[int], list[int]]:
        """Expanded token ids and the positions of the user's text tokens within them."""
        enc = self.backend.encode(text, add_special_tokens=False)
        ids: list[int] = []
        droppable: list[int] = []
        pads = iter(counts)
        span_i = 0
        for tid, (start, end) in zip(enc.ids, enc.offsets):
            if tid == self.image_pad_id or tid == self.video_pad_id:
                ids.extend([tid] * next(pads))
                continue
            while span_i < len(spans) and spans[span_i][1] <= start:
                span_i += 1
            if span_i < len(spans) and spans[span_i][0] <= start and end <= spans[span_i][1] and end > start:
                droppable.append(len(ids))
            ids.append(tid)
        return ids, droppable

    def _truncate(self, ids: list[int], droppable: list[int]) -> tuple[list[int], int]:
        excess = len(ids) - self.max_length
        if excess <= 0:
            return ids, 0
        if excess > len(droppable):
            fixed = len(ids) - len(droppable)
            raise InputError(
                f"the prompt needs {fixed} tokens besides its text (template and images/videos), more than "
                f"max_length={self.max_length}; lower max_pixels, max_frames or total_pixels, or raise max_length")
        drop = set(droppable[-excess:])
        return [t for i, t in enumerate(ids) if i not in drop], excess

    def prepare(self, prompt: Prompt) -> Sample:
        """Read, resize and tokenise one prompt. Raises InputError naming the failing field."""
        visions = [self._load(p) for p in prompt if isinstance(p, (ImagePart, VideoPart))]
        text, spans, counts = self._render(prompt, visions)
        try:
            ids, droppable = self._tokens(text, spans, counts)
        except Exception as e:  # noqa: BLE001 - what the tokenizer cannot read is this input's fault
            field = next((p.field for p in prompt if isinstance(p, TextPart)), None)
            raise InputError(f"the text cannot be tokenised ({type(e).__name__}: {e})", field=field) from None
        ids, dropped = self._truncate(ids, droppable)
        images = [v.pixels for v in visions if v.kind == "image"]
        videos = [v.pixels for v in visions if v.kind == "video"]
        return Sample(ids, images, videos, dropped, leading_text(prompt))

    # cost --------------------------------------------------------------------------------------
    def estimate(self, prompt: Prompt) -> int:
        """Token count of a prompt, from text and media headers only (no pixel decoding)."""
        texts = []
        vision_tokens = 0
        for piece in prompt:
            if isinstance(piece, (Fixed, TextPart)):
                texts.append(piece.text)
            elif isinstance(piece, ImagePart):
                vision_tokens += 2 + self._estimate_image(piece)
            else:
                vision_tokens += self._estimate_video(piece)
        text_tokens = len(self.backend.encode("".join(texts), add_special_tokens=False).ids)
        return min(self.max_length, text_tokens + vision_tokens)

    def _estimate_image(self, part: ImagePart) -> int:
        low, high = self.pixel_budget(part)
        size = media.image_size(part.source, self.policy)
        if size is None:
            return high // IMAGE_FACTOR**2
        try:
            return vision.image_tokens(size[0], size[1], low, high)
        except ValueError:
            return 1

    def _estimate_video(self, part: VideoPart) -> int:
        if part.is_frames:
            frames = vision.sample_frame_list(part.source, part.max_frames)
            size = media.image_size(frames[0], self.policy)
            if size is None:
                return self.max_length
            try:
                n = len(frames) + len(frames) % 2
                return vision.frame_list_tokens(size[0], size[1], len(frames), self.settings.total_pixels) + 8 * n // 2
            except ValueError:
                return 1
        from .video import probe_video

        info = probe_video(part.source, self.policy)
        if info is None:
            return self.max_length
        frames, fps, width, height = info
        try:
            first, last = vision.frame_range(frames, fps, part.start, part.end)
            n = vision.smart_nframes(last - first + 1, fps, part.fps or 2.0, part.max_frames)
            return vision.video_file_tokens(width, height, n) + 8 * n // 2
        except ValueError:
            return 1

"""Turn a user's input item into an `Item`: an ordered tuple of text, image and video parts.

Two input forms are accepted:

* the official form, a dict with ``text``, ``image``, ``video``, ``instruction``, ``fps`` and
  ``max_frames`` keys; its parts are ordered videos first, then images, then texts, as in the
  reference implementation;
* the chat-content form, ``{"content": [{"type": "text" | "image" | "video", ...}, ...]}``, whose
  parts keep the caller's order.

Either form may carry ``max_pixels`` / ``min_pixels``: the pixel budget of its images (not of videos),
instead of the model's; an image part of the content form may carry its own.

A plain string is a text item. Nothing is loaded here: media stay references until `media` reads them.
Texts and instructions must be valid Unicode (a lone surrogate cannot be tokenised): `InputError` names
the item and field. An item with no text, image or video is `Item.is_empty`; `embed` refuses it
(`require_content`), while the official `process` embeds it as the text NULL, as the reference does.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Union

from .errors import InputError
from .filetypes import IMAGE_EXTENSIONS
ITEM_KEYS = frozenset({"text", "image", "video", "instruction", "fps", "max_frames", "content", "min_pixels",
                       "max_pixels"})
CONTENT_KEYS = {
    "text": frozenset({"type", "text"}),
    "image": frozenset({"type", "image", "image_url", "min_pixels", "max_pixels"}),
    "video": frozenset({"type", "video", "video_url", "fps", "max_frames", "video_start", "video_end"}),
}


@dataclass(frozen=True)
class TextPart:
    text: str
    field: str = "text"


@dataclass(frozen=True)
class ImagePart:
    """One image: a path, URL, data URI, raw bytes or PIL image. min_pixels / max_pixels: its pixel
    budget (None: the model's)."""

    source: Any
    field: str = "image"
    min_pixels: int | None = None
    max_pixels: int | None = None


@dataclass(frozen=True)
class VideoPart:
    """One video: a file path, URL, data URI or raw bytes, or a tuple of frames (`is_frames`)."""

    source: Any
    is_frames: bool = False
    fps: float | None = None
    max_frames: int | None = None
    start: float | None = None
    end: float | None = None
    field: str = "video"


Part = Union[TextPart, ImagePart, VideoPart]


@dataclass(frozen=True)
class Item:
    parts: tuple[Part, ...]
    instruction: str | None = None

    @property
    def is_empty(self) -> bool:
        """No parts at all (what the reference embeds as the text NULL)."""
        return not self.parts

    @property
    def has_content(self) -> bool:
        """At least one image, video or non-empty text."""
        return any(not isinstance(p, TextPart) or p.text for p in self.parts)

    @property
    def modality(self) -> str:
        """``text``, ``image``, ``video`` or ``mixed``."""
        kinds = {type(p) for p in self.parts}
        if len(kinds) > 1:
            return "mixed"
        if kinds == {ImagePart}:
            return "image"
        if kinds == {VideoPart}:
            return "video"
        return "text"


def check_text(text: str, field: str | None = "text") -> str:
    """`text` unchanged when it is valid Unicode; a lone surrogate (which no UTF-8 text can hold and
    the tokenizer cannot read) is an InputError naming where it is."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(f"text is not valid Unicode: lone surrogate {text[e.start]!r} at character {e.start}; "
                             f"send UTF-8 text", field=field) from None
    return text


def _is_image_like(source: Any) -> bool:
    from PIL import Image

    if isinstance(source, Image.Image):
        return True
    if isinstance(source, (str, os.PathLike)):
        s = os.fspath(source)
        if s.startswith("data:image/"):
            return True
        path = s.split("?", 1)[0] if s.startswith(("http://", "https://")) else s
        return os.path.splitext(path.lower())[1] in IMAGE_EXTENSIONS
    return False


def _check_media_source(source: Any, field: str, kind: str) -> Any:
    from PIL import Image

    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str):
        if not source.strip():
            raise InputError(f"empty {kind} reference", field=field)
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise InputError(f"empty {kind} bytes", field=field)
        return bytes(source)
    if kind == "image" and (isinstance(source, Image.Image) or is_image_loader(source)):
        return source
    allowed = "a path, URL, data URI, bytes" + (", PIL.Image or image loader" if kind == "image" else "")
    raise InputError(f"unsupported {kind} type {type(source).__name__}; expected {allowed}", field=field)


def is_image_loader(source: Any) -> bool:
    """A zero-argument callable returning a PIL image: read lazily, on a preprocessing worker thread.

    It may carry a `size` attribute (width, height) so that batching can cost it without loading it."""
    return callable(source) and not isinstance(source, (str, bytes, bytearray, memoryview, type))


def _frames(frames: Sequence[Any], field: str) -> tuple:
    if not frames:
        raise InputError("a video given as frames needs at least one frame", field=field)
    return tuple(_check_media_source(f, f"{field}[{i}]", "image") for i, f in enumerate(frames))


def _positive(value: Any, name: str, field: str, integer: bool = False) -> Any:
    if value is None:
        return None
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise InputError(f"{name} must be {kind}, got {value!r}", field=field)
    return value


def _video_parts(video: Any, fps: Any, max_frames: Any) -> list[VideoPart]:
    """The official `video` value: one video (file or frames) or a list of videos."""
    if video is None:
        return []
    if isinstance(video, (list, tuple)):
        if not video:
            return []
        first = video[0]
        if _is_image_like(first) or (isinstance(first, (bytes, bytearray)) and _looks_like_image_bytes(first)):
            # As in the reference, a frame list is capped by the model's max_frames, not the item's.
            return [VideoPart(_frames(video, "video"), True, fps, None)]
        videos = list(video)
    else:
        videos = [video]
    many = len(videos) > 1 or isinstance(video, (list, tuple))
    parts = []
    for i, v in enumerate(videos):
        field = f"video[{i}]" if many else "video"
        if isinstance(v, (list, tuple)):
            parts.append(VideoPart(_frames(v, field), True, fps, None, field=field))
        else:
            parts.append(VideoPart(_check_media_source(v, field, "video"), False, fps, max_frames, field=field))
    return parts


def _looks_like_image_bytes(data: bytes) -> bool:
    head = bytes(data[:12])
    return head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _listify(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _budget(obj: Mapping[str, Any], field_prefix: str | None = None,
            default: tuple[int | None, int | None] = (None, None)) -> tuple[int | None, int | None]:
    """(min_pixels, max_pixels) of an item or image part; `default` for those it does not set."""
    found = []
    for name, fallback in zip(("min_pixels", "max_pixels"), default):
        field = f"{field_prefix}.{name}" if field_prefix else name
        value = _positive(obj.get(name), name, field, integer=True)
        found.append(value if value is not None else fallback)
    low, high = found
    if low is not None and high is not None and low > high:
        raise InputError(f"min_pixels ({low}) must not exceed max_pixels ({high})",
                         field=f"{field_prefix}.min_pixels" if field_prefix else "min_pixels")
    return low, high


def with_pixel_budget(item: Item, max_pixels: Any) -> Item:
    """`item` with `max_pixels` given to its images that set no budget of their own: an int, or a
    callable(source) -> int (a budget by kind of image: budgets.PixelBudgets)."""
    if max_pixels is None or not any(isinstance(p, ImagePart) and p.max_pixels is None for p in item.parts):
        return item
    parts = tuple(replace(p, max_pixels=max_pixels if isinstance(max_pixels, int) else max_pixels(p.source))
                  if isinstance(p, ImagePart) and p.max_pixels is None else p for p in item.parts)
    return replace(item, parts=parts)


def _from_official(obj: Mapping[str, Any]) -> Item:
    fps = _positive(obj.get("fps"), "fps", "fps")
    max_frames = _positive(obj.get("max_frames"), "max_frames", "max_frames", integer=True)
    low, high = _budget(obj)
    parts: list[Part] = list(_video_parts(obj.get("video"), fps, max_frames))
    images = _listify(obj.get("image"))
    for i, img in enumerate(images):
        field = f"image[{i}]" if isinstance(obj.get("image"), (list, tuple)) else "image"
        parts.append(ImagePart(_check_media_source(img, field, "image"), field, low, high))
    texts = _listify(obj.get("text"))
    for i, t in enumerate(texts):
        field = f"text[{i}]" if isinstance(obj.get("text"), (list, tuple)) else "text"
        if not isinstance(t, str):
            raise InputError(f"text must be a string, got {type(t).__name__}", field=field)
        parts.append(TextPart(check_text(t, field), field))
    return Item(tuple(parts), _instruction(obj))


def _instruction(obj: Mapping[str, Any]) -> str | None:
    instruction = obj.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise InputError(f"instruction must be a string, got {type(instruction).__name__}", field="instruction")
    return None if instruction is None else check_text(instruction, "instruction")


def _url_of(value: Any) -> Any:
    """OpenAI-style ``{"url": ...}`` wrappers hold the reference under "url"."""
    if isinstance(value, Mapping):
        if "url" not in value:
            raise InputError("expected an object with a 'url'")
        return value["url"]
    return value


def _from_content(obj: Mapping[str, Any]) -> Item:
    content = obj["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, (list, tuple)):
        raise InputError("content must be a list of parts", field="content")
    item_fps = _positive(obj.get("fps"), "fps", "fps")
    item_max_frames = _positive(obj.get("max_frames"), "max_frames", "max_frames", integer=True)
    item_budget = _budget(obj)
    parts: list[Part] = []
    for i, part in enumerate(content):
        field = f"content[{i}]"
        if not isinstance(part, Mapping):
            raise InputError(f"a content part must be an object, got {type(part).__name__}", field=field)
        kind = part.get("type")
        if kind in ("image_url", "video_url"):
            kind = kind[:-4]
        if kind is None:
            kind = next((k for k in ("text", "image", "video") if k in part), None)
        if kind not in CONTENT_KEYS:
            raise InputError(f"unknown content type {part.get('type')!r}; use 'text', 'image' or 'video'", field=field)
        unknown = set(part) - CONTENT_KEYS[kind]
        if unknown:
            raise InputError(f"unknown keys {sorted(unknown)} in a {kind} part", field=field)
        try:
            if kind == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise InputError(f"text must be a string, got {type(text).__name__}")
                parts.append(TextPart(check_text(text, None), field))
            elif kind == "image":
                source = _url_of(part.get("image", part.get("image_url")))
                if source is None:
                    raise InputError("an image part needs an 'image'")
                low, high = _budget(part, field, item_budget)
                parts.append(ImagePart(_check_media_source(source, field, "image"), field, low, high))
            else:
                source = _url_of(part.get("video", part.get("video_url")))
                fps = _positive(part.get("fps", item_fps), "fps", field)
                max_frames = _positive(part.get("max_frames", item_max_frames), "max_frames", field, integer=True)
                start, end = part.get("video_start"), part.get("video_end")
                for name, t in (("video_start", start), ("video_end", end)):
                    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0):
                        raise InputError(f"{name} must be a number of seconds >= 0, got {t!r}")
                if start is not None and end is not None and end <= start:
                    raise InputError(f"video_end ({end}) must be after video_start ({start})")
                if isinstance(source, (list, tuple)):
                    parts.append(VideoPart(_frames(source, field), True, fps, max_frames, field=field))
                elif source is None:
                    raise InputError("a video part needs a 'video'")
                else:
                    parts.append(VideoPart(_check_media_source(source, field, "video"), False, fps, max_frames,
                                           start, end, field))
        except InputError as e:
            raise e if e.field else e.located(field_prefix=field)
    return Item(tuple(parts), _instruction(obj))


def to_item(obj: Any, index: int | None = None) -> Item:
    """Validate one user input and return it as an `Item`; raise `InputError` naming `index`."""
    try:
        if isinstance(obj, Item):
            return obj
        if isinstance(obj, str):
            return Item((TextPart(check_text(obj)),) if obj else ())
        if not isinstance(obj, Mapping):
            raise InputError(f"an input must be a dict or a string, got {type(obj).__name__}")
        unknown = set(obj) - ITEM_KEYS
        if unknown:
            raise InputError(f"unknown keys {sorted(unknown)}; allowed keys are {sorted(ITEM_KEYS)}")
        if "content" in obj:
            clash = {"text", "image", "video"} & set(obj)
            if clash:
                raise InputError(f"'content' cannot be combined with {sorted(clash)}")
            return _from_content(obj)
        return _from_official(obj)
    except InputError as e:
        raise e.located(index=index) from e.__cause__


def require_content(item: Item, index: int | None = None) -> Item:
    """`item` when it has an image, a video or a non-empty text; else an InputError naming `index`."""
    if not item.has_content:
        raise InputError("empty input: no text, image or video (give at least one)", index=index)
    return item


def check_many(inputs: Any, what: str = "inputs") -> Iterable[Any]:
    """`inputs` when it is a list or another iterable of inputs; None, a number, a string, bytes or a
    single dict is an InputError saying what is expected."""
    if isinstance(inputs, (str, bytes, bytearray, Mapping)):
        kind = "dict" if isinstance(inputs, Mapping) else type(inputs).__name__
        raise InputError(f"expected a list of {what}, got a single {kind}; wrap it in a list: [...]")
    if not isinstance(inputs, Iterable):
        raise InputError(f"expected a list of {what} (dicts or strings), got {type(inputs).__name__}")
    return inputs


def to_items(inputs: Any) -> list[Item]:
    """`to_item` over a list; a single dict or string, None or a number is not a list and is refused."""
    return [to_item(obj, i) for i, obj in enumerate(check_many(inputs))]

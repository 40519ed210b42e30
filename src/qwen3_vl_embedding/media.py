"""Read images and videos from paths, URLs, data URIs, bytes or PIL images, under a `MediaPolicy`.

The library, the CLI and the server differ only in the policy they pass: the library's default
reads local files and fetches http(s) URLs; the server refuses both unless told otherwise.
Every failure raises `MediaError` (or `MediaPolicyError` / `LimitError` for refusals); callers add
the item's index and field.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import unquote, urlsplit

from .errors import LimitError, MediaError, MediaPolicyError
from .inputs import is_image_loader

MiB = 1024 * 1024


@dataclass(frozen=True)
class MediaPolicy:
    """What media references may be read, and limits on what is read.

    allow_local:       read local paths and file:// URLs.
    local_root:        when set, local files must resolve (symlinks followed) inside this folder.
    allow_remote:      fetch http(s) URLs.
    block_private:     refuse URLs whose host resolves to a loopback, private, link-local, multicast,
                       reserved or cloud-metadata address (checked on every redirect).
    max_image_bytes / max_video_bytes: size caps of fetched or decoded sources.
    max_image_pixels:  cap on the source image's width x height (before resizing), read from its header
                       before decoding; it also caps each frame of a video.
    max_video_pixels:  cap on the source pixels a video makes the reader decode: frames sampled x
                       width x height of a file (from its container header), or the sum over a frame list.
    max_video_seconds / max_video_frames: caps on a video's duration and on the frames read from one
                       video (a frame list, or the frames sampled from a file).
    timeout, max_redirects: for remote fetches.
    fetcher:           optional callable(url, policy) -> bytes replacing the built-in HTTP client.
    resolver, transport: the DNS resolver (host, port) -> [addresses] and the httpx transport of the
                       built-in client (None: the system's); `netguard.guarded_get` takes them from here only.
    """

    allow_local: bool = True
    local_root: str | None = None
    allow_remote: bool = True
    block_private: bool = False
    max_image_bytes: int = 64 * MiB
    max_video_bytes: int = 2048 * MiB
    max_image_pixels: int | None = 178_956_970
    max_video_pixels: int | None = None
    max_video_seconds: float | None = None
    max_video_frames: int | None = None
    timeout: float = 30.0
    max_redirects: int = 5
    fetcher: Callable[[str, "MediaPolicy"], bytes] | None = field(default=None, compare=False)
    resolver: Callable[[str, int], list[str]] | None = field(default=None, compare=False)
    transport: Any = field(default=None, compare=False)


DEFAULT_POLICY = MediaPolicy()
# The limits of the server and of the `qvl` commands (the library's default keeps Pillow's 179 Mpx):
DEFAULT_MAX_IMAGE_PIXELS = 25_000_000  # a source image (or video frame), width x height
DEFAULT_MAX_VIDEO_PIXELS = 200_000_000  # source pixels decoded for one video: 24 frames of 4K UHD


def is_url(ref: str) -> bool:
    return ref.startswith(("http://", "https://"))


def decode_data_uri(ref: str, max_bytes: int, limit: str = "max_bytes") -> bytes:
    """Payload of a ``data:[<type>][;base64],<data>`` URI."""
    header, sep, payload = ref.partition(",")
    if not sep:
        raise MediaError("malformed data URI: no ',' before the payload")
    if len(payload) * 3 // 4 > max_bytes:
        raise LimitError(f"data URI payload exceeds the limit of {max_bytes} bytes", limit=limit, value=max_bytes)
    if header.endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as e:
            raise MediaError(f"invalid base64 in data URI: {e}") from None
    return unquote(payload).encode("latin-1", errors="replace")


def local_path(ref: str, policy: MediaPolicy) -> str:
    """The checked filesystem path of a local reference (plain path or file:// URL)."""
    if ref.startswith("file://"):
        parts = urlsplit(ref)
        if parts.netloc not in ("", "localhost"):
            raise MediaPolicyError(f"file URLs must name a local file, got host {parts.netloc!r}")
        ref = unquote(parts.path)
    if not policy.allow_local:
        raise MediaPolicyError("local files are not allowed here")
    if policy.local_root is not None:
        root = os.path.realpath(policy.local_root)
        real = os.path.realpath(ref if os.path.isabs(ref) else os.path.join(root, ref))
        if os.path.commonpath([root, real]) != root:
            raise MediaPolicyError("local file is outside the allowed folder")
        ref = real
    if not os.path.isfile(ref):
        raise MediaError(f"no such file: {ref}" if not os.path.exists(ref) else f"not a regular file: {ref}")
    return ref


def fetch_url(url: str, policy: MediaPolicy, max_bytes: int, limit: str = "max_bytes") -> bytes:
    if not policy.allow_remote:
        raise MediaPolicyError("remote media URLs are not allowed here")
    if policy.fetcher is not None:
        data = policy.fetcher(url, policy)
    else:
        from .netguard import guarded_get

        try:
            data = guarded_get(url, policy, max_bytes)
        except LimitError as e:
            if e.limit == "max_bytes":
                raise LimitError(e.cause, limit=limit, value=max_bytes) from None
            raise
    if len(data) > max_bytes:
        raise LimitError(f"remote media exceeds the limit of {max_bytes} bytes", limit=limit, value=max_bytes)
    return data


def read_bytes(ref: Any, policy: MediaPolicy, max_bytes: int, limit: str = "max_bytes") -> bytes:
    """Raw bytes of a non-PIL reference; `limit` names the size limit in errors."""
    if isinstance(ref, bytes):
        if len(ref) > max_bytes:
            raise LimitError(f"media exceeds the limit of {max_bytes} bytes", limit=limit, value=max_bytes)
        return ref
    if ref.startswith("data:"):
        return decode_data_uri(ref, max_bytes, limit)
    if is_url(ref):
        return fetch_url(ref, policy, max_bytes, limit)
    path = local_path(ref, policy)
    size = os.path.getsize(path)
    if size > max_bytes:
        raise LimitError(f"file exceeds the limit of {max_bytes} bytes", limit=limit, value=max_bytes)
    with open(path, "rb") as f:
        return f.read()


_heif: bool | None = None


def register_heif() -> bool:
    """Let Pillow open HEIC/HEIF images (what phones save photos as) when pillow-heif is installed; True
    when it can. Done once per process, before the first image is opened. HEIF pixels come out as
    stored, turned as the file says (libheif applies its rotation, and the EXIF orientation is reset to 1)."""
    global _heif
    if _heif is None:
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            _heif = False
        else:
            register_heif_opener()
            _heif = True
    return _heif


HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"heif")


def looks_like_heif(head: bytes) -> bool:
    """True for the first bytes of an HEIC/HEIF file (an ISO box 'ftyp' with a HEIF brand)."""
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def _open_pil(ref: Any, policy: MediaPolicy):
    from PIL import Image

    register_heif()
    if isinstance(ref, Image.Image):
        return ref
    if is_image_loader(ref):
        image = ref()
        if not isinstance(image, Image.Image):
            raise MediaError(f"an image loader must return a PIL image, got {type(image).__name__}")
        return image
    if isinstance(ref, str) and not ref.startswith("data:") and not is_url(ref):
        path = local_path(ref, policy)
        if os.path.getsize(path) > policy.max_image_bytes:
            raise LimitError(f"image file exceeds the limit of {policy.max_image_bytes} bytes",
                             limit="max_image_bytes", value=policy.max_image_bytes)
        return Image.open(path)
    if isinstance(ref, str) and ref.startswith("data:") and not ref.startswith("data:image/"):
        raise MediaError(f"a data URI for an image must have an image/* type, got {ref[:30]!r}")
    return Image.open(io.BytesIO(read_bytes(ref, policy, policy.max_image_bytes, "max_image_bytes")))


def check_pixels(width: int, height: int, policy: MediaPolicy, what: str = "image") -> None:
    """Refuse a source image (or video frame) of more than `policy.max_image_pixels`, before decoding it."""
    limit = policy.max_image_pixels
    if limit is not None and width * height > limit:
        raise LimitError(f"{what} of {width}x{height} pixels exceeds max_image_pixels={limit}",
                         limit="max_image_pixels", value=limit)


def image_size(ref: Any, policy: MediaPolicy = DEFAULT_POLICY) -> tuple[int, int] | None:
    """(width, height) read from the header only; None when it cannot be had cheaply (remote URLs)."""
    from PIL import Image

    if isinstance(ref, Image.Image):
        return ref.size
    if is_image_loader(ref):
        return getattr(ref, "size", None)
    if isinstance(ref, str) and is_url(ref):
        return None
    try:
        with _open_pil(ref, policy) as im:
            return im.size
    except Exception:
        return None


@contextlib.contextmanager
def _image_errors(policy: MediaPolicy, ref: Any = None) -> Iterator[None]:
    """Pillow's exceptions as MediaError / LimitError (`ref`: the image opened, for the HEIC hint)."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except (MediaError, MediaPolicyError):
        raise
    except Image.DecompressionBombError as e:
        raise LimitError(f"image is too large to decode safely: {e}", limit="max_image_pixels",
                         value=policy.max_image_pixels) from None
    except UnidentifiedImageError:
        if ref is not None and not register_heif() and _is_heif(ref, policy):
            raise MediaError("an HEIC/HEIF image: reading it needs pillow-heif "
                             "(pip install 'qwen3-vl-embedding[heic]')") from None
        raise MediaError("cannot identify image format (corrupt or not an image)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(f"cannot decode image: {e}") from None


def _is_heif(ref: Any, policy: MediaPolicy) -> bool:
    """Whether a local file, data URI or bytes holds HEIF (never fetches a URL again)."""
    try:
        if isinstance(ref, str) and is_url(ref):
            return False
        if isinstance(ref, str) and not ref.startswith("data:"):
            with open(local_path(ref, policy), "rb") as f:
                return looks_like_heif(f.read(12))
        if isinstance(ref, (str, bytes)):
            return looks_like_heif(read_bytes(ref, policy, policy.max_image_bytes)[:12])
    except Exception:  # noqa: BLE001 - only a better message is at stake
        pass
    return False


def open_image(ref: Any, policy: MediaPolicy = DEFAULT_POLICY):
    """A PIL image whose header has been read and checked (`max_image_pixels`) but whose pixels are not
    decoded yet; `decode_image` decodes it. Raises MediaError / MediaPolicyError / LimitError."""
    with _image_errors(policy, ref):
        image = _open_pil(ref, policy)
        check_pixels(image.width, image.height, policy)
        return image


def decode_image(image, policy: MediaPolicy = DEFAULT_POLICY):
    """`image` (from `open_image`) with its pixels decoded."""
    with _image_errors(policy):
        image.load()
        return image


def load_image(ref: Any, policy: MediaPolicy = DEFAULT_POLICY):
    """A decoded PIL image (mode unchanged), its size checked from the header before decoding.
    Raises MediaError / MediaPolicyError / LimitError."""
    return decode_image(open_image(ref, policy), policy)


def video_source(ref: Any, policy: MediaPolicy = DEFAULT_POLICY) -> str | bytes:
    """A local path or the bytes of a video reference (fetched or decoded), after policy checks."""
    if isinstance(ref, str) and not ref.startswith("data:") and not is_url(ref):
        path = local_path(ref, policy)
        if os.path.getsize(path) > policy.max_video_bytes:
            raise LimitError(f"video file exceeds the limit of {policy.max_video_bytes} bytes",
                             limit="max_video_bytes", value=policy.max_video_bytes)
        return path
    return read_bytes(ref, policy, policy.max_video_bytes, "max_video_bytes")

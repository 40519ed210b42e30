"""ServerConfig: what the server accepts (auth, media, limits) and how it batches. Safe by default."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..media import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_VIDEO_PIXELS, MiB, MediaPolicy


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server process.

    Media: local files are refused unless `allow_local_dir` names a folder (then only files inside it,
    symlinks resolved); remote URLs are refused unless `allow_remote_media`, and even then never
    fetched from loopback, private, link-local, multicast or metadata addresses. Data URIs are
    always accepted within `max_media_bytes`.

    Limits are checked before anything is decoded or tokenised (docs/server.md lists them all).
    Slow clients: a request's headers must arrive within `header_timeout` seconds of the connection (or
    of the previous response), and its body within `body_timeout` seconds of its headers.

    Batching: one worker per model takes the queued requests, up to `batch_tokens` estimated tokens,
    waiting up to `batch_wait_ms` for more, and runs them as one pass of the library's batching loop.
    `batching=False` runs each request alone (for comparison)."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    model_name: str | None = None  # name shown in /v1/models and responses (default: the model argument)
    reranker_name: str | None = None
    default_dim: int | None = None  # `dimensions` when a request sets none (default: the model's size)
    # media policy
    allow_local_dir: str | None = None
    allow_remote_media: bool = False
    fetch_timeout: float = 10.0
    max_redirects: int = 3
    # limits
    max_body_bytes: int = 32 * MiB
    max_items: int = 512  # inputs per embedding request, documents per rerank request
    max_media_bytes: int = 32 * MiB  # per image or video source (data URI, file or download)
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS  # width x height of a source image or video frame
    max_video_pixels: int = DEFAULT_MAX_VIDEO_PIXELS  # source pixels decoded for one video (frames x size)
    max_video_seconds: float = 600.0
    max_video_frames: int = 64  # frames read from one video (a frame list, or sampled from a file)
    max_text_chars: int = 100_000  # characters of one text (or instruction): tokenising is not free
    # slow clients
    header_timeout: float = 10.0  # seconds for a request's headers to arrive
    body_timeout: float = 60.0  # seconds for its body to arrive, once the headers have
    keep_alive_timeout: float = 5.0  # an idle connection is closed after this
    # batching and flow control
    batching: bool = True
    batch_wait_ms: float = 5.0
    batch_tokens: int = 32768
    max_queue: int = 2048  # inputs waiting or running per model; beyond it, 429
    request_timeout: float = 120.0
    # the search page (with an index)
    thumbnail_cache_bytes: int = 1 << 30  # thumbnails kept on disk; the least recently used go first

    def __post_init__(self):
        for name in ("max_body_bytes", "max_items", "max_media_bytes", "max_image_pixels", "max_video_pixels",
                     "max_video_frames", "max_text_chars", "batch_tokens", "max_queue", "thumbnail_cache_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_video_seconds", "request_timeout", "fetch_timeout", "header_timeout", "body_timeout",
                     "keep_alive_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.batch_wait_ms < 0 or self.max_redirects < 0:
            raise ValueError("batch_wait_ms and max_redirects must be >= 0")
        if self.max_queue < self.max_items:
            raise ValueError(f"max_queue ({self.max_queue}) must be at least max_items ({self.max_items}), "
                             "or a full request could never be admitted")
        if self.allow_local_dir is not None and not os.path.isdir(self.allow_local_dir):
            raise ValueError(f"--allow-local-dir {self.allow_local_dir!r} is not a folder; give an existing folder "
                             "whose files requests may read")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("the API key is empty; give a non-empty key or none")

    def media_policy(self) -> MediaPolicy:
        """The policy the server's models must be built with (`media_policy=config.media_policy()`)."""
        root = os.path.realpath(self.allow_local_dir) if self.allow_local_dir is not None else None
        return MediaPolicy(
            allow_local=root is not None, local_root=root, allow_remote=self.allow_remote_media,
            block_private=True, max_image_bytes=self.max_media_bytes, max_video_bytes=self.max_media_bytes,
            max_image_pixels=self.max_image_pixels, max_video_pixels=self.max_video_pixels,
            max_video_seconds=self.max_video_seconds,
            max_video_frames=self.max_video_frames, timeout=self.fetch_timeout, max_redirects=self.max_redirects)

"""Options shared by every `qvl` command, model loading from them, and error reporting.

Each option also reads an environment variable: QVL_MODEL, QVL_RERANKER, QVL_DIM, QVL_PRECISION,
QVL_DEVICE, QVL_DTYPE. Exit status: 0 success, 1 fatal error, 2 partial success (some inputs skipped).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable

from ..constants import EMBEDDING_2B, RERANKER_2B

EXIT_OK, EXIT_FATAL, EXIT_PARTIAL = 0, 1, 2


def _env(name: str, default: Any = None, cast: Callable[[str], Any] = str) -> Any:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return cast(value)
    except ValueError:
        raise SystemExit(f"qvl: environment variable {name}={value!r} is not valid") from None


def common_options(default_reranker: str | None = RERANKER_2B) -> argparse.ArgumentParser:
    """A parent parser with the model options every command accepts (`default_reranker=None`: none unless named)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model options (each also read from the environment variable shown)")
    g.add_argument("--model", default=_env("QVL_MODEL", EMBEDDING_2B),
                   help=f"embedding model: hub id or local folder [QVL_MODEL, default {EMBEDDING_2B}]")
    g.add_argument("--reranker", default=_env("QVL_RERANKER", default_reranker),
                   help=f"reranker model: hub id or local folder [QVL_RERANKER, default {default_reranker or 'none'}]")
    g.add_argument("--dim", type=int, default=_env("QVL_DIM", None, int),
                   help="Matryoshka dimension, 64 up to the model's size [QVL_DIM, default: full]")
    g.add_argument("--precision", default=_env("QVL_PRECISION", "float32"),
                   choices=["float32", "float16", "int8", "uint8", "binary", "ubinary"],
                   help="vector precision [QVL_PRECISION, default float32]")
    g.add_argument("--device", default=_env("QVL_DEVICE", None), help="cuda, cuda:1, cpu ... [QVL_DEVICE, default: auto]")
    g.add_argument("--dtype", default=_env("QVL_DTYPE", None), help="float32, bfloat16, float16 [QVL_DTYPE, default: auto]")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or informational output")
    g.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks on errors)")
    return p


def media_options(parser: argparse.ArgumentParser) -> None:
    """--max-image-pixels and --max-video-pixels: what a command that reads images and videos will decode
    (checked from each file's header first; a file over a limit is skipped, or refused, naming it)."""
    from ..media import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_VIDEO_PIXELS

    g = parser.add_argument_group("media limits (checked from headers, before decoding)")
    g.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_IMAGE_PIXELS, metavar="N",
                   help="width x height of an image or video frame [default: %(default)s, as the server]")
    g.add_argument("--max-video-pixels", type=int, default=DEFAULT_MAX_VIDEO_PIXELS, metavar="N",
                   help="pixels decoded for one video: frames sampled x width x height [default: %(default)s]")


def media_policy(args: argparse.Namespace):
    """The media policy of a command with `media_options`: local files and URLs, within its limits."""
    from ..media import MediaPolicy

    for name in ("max_image_pixels", "max_video_pixels"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    import warnings

    from PIL import Image

    # Pillow warns of large images when it opens their header; the policy refuses them, naming its limit.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return MediaPolicy(max_image_pixels=args.max_image_pixels, max_video_pixels=args.max_video_pixels)


def with_limit_hint(reason: str) -> str:
    """A skip reason that names a media limit, with the option that raises it."""
    for name in ("max_image_pixels", "max_video_pixels"):
        if f"{name}=" in reason:
            return f"{reason} (--{name.replace('_', '-')} raises it)"
    return reason


def _policy_of(args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, Any]:
    if "media_policy" not in extra and hasattr(args, "max_video_pixels"):
        return {**extra, "media_policy": media_policy(args)}
    return extra


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if getattr(args, "device", None):
        kw["device"] = args.device
    if getattr(args, "dtype", None):
        kw["dtype"] = args.dtype
    return kw


def load_embedder(args: argparse.Namespace, model: str | None = None, **extra: Any):
    from ..embedder import Qwen3VLEmbedder

    return Qwen3VLEmbedder(model or args.model, **model_kwargs(args), **_policy_of(args, extra))


def load_reranker(args: argparse.Namespace, model: str | None = None, **extra: Any):
    from ..reranker import Qwen3VLReranker

    return Qwen3VLReranker(model or args.reranker, **model_kwargs(args), **_policy_of(args, extra))


def show_progress(args: argparse.Namespace) -> bool | None:
    """None lets the library decide (bars only on a terminal); False in quiet or JSON mode."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return False
    return None


def run_handler(args: argparse.Namespace) -> int:
    """Run a command's handler; turn library errors into a one-line message and exit status 1."""
    from ..errors import Qwen3VLError

    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="qvl: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("qvl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except (Qwen3VLError, ValueError, OSError, ImportError) as e:
        if getattr(args, "verbose", False):
            raise
        print(f"qvl: error: {e}", file=sys.stderr)
        return EXIT_FATAL

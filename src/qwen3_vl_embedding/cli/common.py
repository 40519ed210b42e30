"""Options shared by every `qvl` command, model loading from them, and error reporting.

Each option also reads an environment variable: QVL_MODEL, QVL_RERANKER, QVL_DIM, QVL_PRECISION,
QVL_DEVICE, QVL_DTYPE, QVL_QUANTIZE. Exit status: 0 success, 1 fatal error, 2 partial success (some inputs skipped).
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
    g.add_argument("--quantize", default=_env("QVL_QUANTIZE", None), choices=["int8"],
                   help="int8: int8 weights on a CPU, several times faster, vectors close to float32 ones "
                        "(cosine about 0.99; needs torchao) [QVL_QUANTIZE, default: the released weights]")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or informational output")
    g.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks on errors)")
    return p


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if getattr(args, "device", None):
        kw["device"] = args.device
    if getattr(args, "dtype", None):
        kw["dtype"] = args.dtype
    if getattr(args, "quantize", None):
        kw["quantize"] = args.quantize
    return kw


def load_embedder(args: argparse.Namespace, model: str | None = None, **extra: Any):
    from ..embedder import Qwen3VLEmbedder

    return Qwen3VLEmbedder(model or args.model, **model_kwargs(args), **extra)


def load_reranker(args: argparse.Namespace, model: str | None = None, **extra: Any):
    from ..reranker import Qwen3VLReranker

    return Qwen3VLReranker(model or args.reranker, **model_kwargs(args), **extra)


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

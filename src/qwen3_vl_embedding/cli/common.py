"""Options shared by every `qvl` command, model loading from them, and error reporting.

Each option also reads an environment variable: QVL_MODEL, QVL_RERANKER, QVL_DIM, QVL_PRECISION,
QVL_DEVICE, QVL_DTYPE, QVL_QUANTIZE. Exit status: 0 success, 1 fatal error, 2 partial success (some inputs skipped).

The index commands share more: `--db` (QVL_DB, else the per-user default index: `db_location`),
`--server` (QVL_SERVER: a running `qvl serve` embeds instead of a local model) and the result options
of `qvl search` and `qvl similar` (`add_result_options`, `result_filters`, `select_hits`, `print_hits`).
`--model` None means "not named": commands on an index then load the model recorded in the index.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime
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
    g.add_argument("--model", default=_env("QVL_MODEL", None),
                   help=f"embedding model: hub id or local folder [QVL_MODEL, default: the index's own model for "
                        f"commands on an index, else {EMBEDDING_2B}]")
    g.add_argument("--reranker", default=_env("QVL_RERANKER", default_reranker),
                   help=f"reranker model: hub id or local folder [QVL_RERANKER, default {default_reranker or 'none'}]")
    g.add_argument("--dim", type=int, default=_env("QVL_DIM", None, int),
                   help="Matryoshka dimension, 64 up to the model's size [QVL_DIM, default: full]")
    g.add_argument("--precision", default=_env("QVL_PRECISION", "float32"),
                   choices=["float32", "float16", "int8", "uint8", "binary", "ubinary"],
                   help="vector precision [QVL_PRECISION, default float32]")
    g.add_argument("--device", default=_env("QVL_DEVICE", None), help="cuda, cuda:1, cpu ... [QVL_DEVICE, default: auto]")
    g.add_argument("--dtype", default=_env("QVL_DTYPE", None), help="float32, bfloat16, float16 [QVL_DTYPE, default: auto]")
    g.add_argument("--quantize", default=_env("QVL_QUANTIZE", None), choices=["int8", "none"],
                   help="int8: int8 weights on a CPU, several times faster, vectors close to float32 ones "
                        "(cosine about 0.997; needs torchao); none: the released weights [QVL_QUANTIZE, default: "
                        "the index's own weights for commands on an index (on a CPU), else the released ones]")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or informational output")
    g.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks on errors)")
    return p


def media_options(parser: argparse.ArgumentParser) -> None:
    """--max-image-pixels and --max-video-pixels: what a command that reads images and videos will decode
    (checked from each file's header first; a file over a limit is skipped, or refused, naming it)."""
    import warnings

    from ..media import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_VIDEO_PIXELS

    # Pillow warns of large images when it reads their header (a photo's date, a size check); in qvl the
    # media policy refuses them from that header, naming its limit, so its warning only adds noise.
    warnings.filterwarnings("ignore", message="Image size .* could be decompression bomb")
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
    return MediaPolicy(max_image_pixels=args.max_image_pixels, max_video_pixels=args.max_video_pixels)


def with_limit_hint(reason: str, again: str = "") -> str:
    """A skip reason that names a media limit, with the option that raises it (and `again`: how to have
    the file tried again)."""
    for name in ("max_image_pixels", "max_video_pixels"):
        if f"{name}=" in reason:
            return f"{reason} (--{name.replace('_', '-')} raises it{again})"
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
    if getattr(args, "quantize", None) not in (None, "none"):
        kw["quantize"] = args.quantize
    return kw


def follow_index_weights(args: argparse.Namespace, meta: Any) -> None:
    """Without --quantize (or QVL_QUANTIZE), a command on an index runs the weights that made it, as it runs
    its model: `args.quantize` becomes the index's (int8 on a CPU; the released weights elsewhere, which
    the model check then warns about). Nothing changes for an embedding server (--server)."""
    if meta is None or getattr(args, "quantize", None) is not None or getattr(args, "server", None):
        return
    from ..runtime import weights_for_index

    args.quantize = weights_for_index(meta.quantize, getattr(args, "device", None))


def model_name(args: argparse.Namespace) -> str:
    """The embedding model named by --model or QVL_MODEL, else the default one."""
    return getattr(args, "model", None) or EMBEDDING_2B


def load_embedder(args: argparse.Namespace, model: str | None = None, **extra: Any):
    from ..embedder import Qwen3VLEmbedder
    from ..errors import ModelNotFoundError

    try:
        return Qwen3VLEmbedder(model or model_name(args), **model_kwargs(args), **_policy_of(args, extra))
    except ModelNotFoundError as e:
        raise e.for_option("--model", "QVL_MODEL") from None


def load_reranker(args: argparse.Namespace, model: str | None = None, **extra: Any):
    from ..errors import ModelNotFoundError
    from ..reranker import Qwen3VLReranker

    try:
        return Qwen3VLReranker(model or args.reranker, **model_kwargs(args), **_policy_of(args, extra))
    except ModelNotFoundError as e:
        raise e.for_option("--reranker", "QVL_RERANKER") from None


def status(args: argparse.Namespace, message: str, bar: Any = None) -> None:
    """An informational line on stderr (none in quiet or JSON mode), above a progress bar when one shows."""
    if getattr(args, "quiet", False) or getattr(args, "json", False) or getattr(args, "filepath_only", False):
        return
    if bar is not None and hasattr(bar, "write"):
        bar.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr, flush=True)


def index_embedder(args: argparse.Namespace, model: str, bar: Any = None, **extra: Any):
    """The embedder of a command on an index: a running server's (--server, QVL_SERVER) or the model
    loaded here, with a status line while it loads."""
    server = getattr(args, "server", None)
    if server:
        from ..remote import RemoteEmbedder

        status(args, f"qvl: embedding through the server at {server}", bar)
        return RemoteEmbedder(server)
    weights = " (int8 weights)" if getattr(args, "quantize", None) == "int8" else ""
    status(args, f"qvl: loading model {model}{weights} ...", bar)
    started = time.perf_counter()
    embedder = load_embedder(args, model, **extra)
    status(args, f"qvl: model loaded in {time.perf_counter() - started:.1f} s", bar)
    return embedder


# the index commands ------------------------------------------------------------------------------
def data_dir() -> str:
    """The per-user data folder of qvl: $XDG_DATA_HOME/qvl (~/.local/share/qvl) on Linux and other
    Unix systems, ~/Library/Application Support/qvl on macOS, %LOCALAPPDATA%\\qvl on Windows."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(os.path.join("~", "AppData", "Local"))
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "qvl")


def default_db() -> str:
    return os.path.join(data_dir(), "index")


def add_db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, metavar="DIR",
                   help="index folder, milvus://HOST:PORT/COLLECTION or milvus-lite://PATH.db/COLLECTION "
                        f"[QVL_DB, default {default_db()}]")


def db_location(args: argparse.Namespace) -> tuple[str, str]:
    """(the index to use, where that choice came from: '--db', 'QVL_DB' or 'default')."""
    if getattr(args, "db", None):
        return args.db, "--db"
    if os.environ.get("QVL_DB"):
        return os.environ["QVL_DB"], "QVL_DB"
    return default_db(), "default"


def add_server_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=_env("QVL_SERVER", None), metavar="URL",
                   help="embed through a running `qvl serve` (http://HOST:8000) instead of loading the model "
                        "here; its API key from QVL_API_KEY [QVL_SERVER]")


def parse_date(text: str) -> float:
    """'2023', '2023-07', '2023-07-01', '2023-07-01T10:00' (or with a space, seconds, a UTC offset) ->
    seconds since the epoch; without an offset the time is local."""
    value = text.strip()
    try:
        if len(value) == 4 and value.isdigit():
            when = datetime(int(value), 1, 1)
        elif len(value) == 7 and value[4] == "-":
            when = datetime(int(value[:4]), int(value[5:]), 1)
        else:
            when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r}; write 2023-07-01 or 2023-07-01T10:00") from None
    return when.timestamp()


RESULTS_HELP = """-f prints one path per line (each file once) and nothing else; --json prints objects (see docs/index.md).
--after/--before take 2023, 2023-07, 2023-07-01 or 2023-07-01T10:00 (local time): a photo's date is
its EXIF capture time, else the file's modification time (shown in --json as "date")."""


def add_result_options(p: argparse.ArgumentParser) -> None:
    """The result options of `qvl search` and `qvl similar`."""
    g = p.add_argument_group("results")
    g.add_argument("-k", "--top-k", type=int, default=10, metavar="K", help="results to show [default: 10]")
    g.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="modality=image,video,pdf,text or path=GLOB; repeat to combine (same key: any of)")
    g.add_argument("--after", type=parse_date, default=None, metavar="DATE",
                   help="only items dated on or after DATE")
    g.add_argument("--before", type=parse_date, default=None, metavar="DATE", help="only items dated before DATE")
    g.add_argument("--min-score", type=float, default=None, metavar="S", help="only results scoring at least S")
    g.add_argument("--sort", choices=["score", "date"], default="score",
                   help="order of the results: best first, or oldest first [default: score]")
    g.add_argument("-f", "--filepath-only", action="store_true",
                   help="print only the paths, one per line, each file once")
    g.add_argument("--json", action="store_true", help="print results as JSON")


def result_filters(args: argparse.Namespace):
    from dataclasses import replace

    from ..index.records import parse_filters

    if args.top_k < 1:
        raise ValueError("-k must be positive")
    if args.after is not None and args.before is not None and args.after >= args.before:
        raise ValueError("--after must come before --before")
    return replace(parse_filters(args.filter), after=args.after, before=args.before)


def select_hits(args: argparse.Namespace, hits: list) -> list:
    """--min-score, -k and --sort applied to hits that are best first."""
    if args.min_score is not None:
        hits = [h for h in hits if h.score >= args.min_score]
    hits = hits[:args.top_k]
    if args.sort == "date":
        hits = sorted(hits, key=lambda h: (h.record.when, -h.score))
    return hits


def print_hits(args: argparse.Namespace, hits: list, reranked: bool = False, none: str = "no results") -> None:
    import json

    from .display import hits_table

    if args.filepath_only:
        for path in dict.fromkeys(h.record.path for h in hits):
            print(path)
    elif args.json:
        print(json.dumps([h.to_json() for h in hits], indent=2, ensure_ascii=False))
    elif hits:
        print(hits_table(hits, reranked=reranked))
    if not hits and not args.quiet and not args.json:
        print(f"qvl: {none}", file=sys.stderr)


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

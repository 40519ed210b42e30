"""The `qvl` command: one module per subcommand, each a thin layer over the library.

A subcommand module defines ``register(subparsers, common)`` which adds its parser (with `common`,
the shared model options, as a parent) and sets ``handler=function(args) -> exit status``.
"""
from __future__ import annotations

import argparse
import sys
from importlib import import_module

from .. import __version__

COMMANDS = ("index", "search", "similar", "dupes", "embed", "rerank", "info", "serve", "ui", "eval")


def build_parser() -> argparse.ArgumentParser:
    from .common import common_options

    parser = argparse.ArgumentParser(
        prog="qvl", description="Multimodal embedding, search and reranking with Qwen3-VL-Embedding.")
    parser.add_argument("--version", action="version", version=f"qvl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options()
    for name in COMMANDS:
        try:
            module = import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # not built in this version
            raise
        module.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .common import run_handler

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 1
    return run_handler(args)


if __name__ == "__main__":
    sys.exit(main())

"""`qvl ui`: the search page of an index in your browser (`qvl serve --db` on 127.0.0.1, then the browser opens).

The server listens on 127.0.0.1 only, on --port when it is free, else on a port the system picks; the
browser is opened once the port accepts connections (the models load first).
"""
from __future__ import annotations

import argparse
import errno
import socket
import sys
import threading
import time
import webbrowser

DESCRIPTION = """Open the search page of an index: search by text or image, browse thumbnails, PDF pages, video
clips and text passages, filter, and find more like any result. Starts `qvl serve --db INDEX` on 127.0.0.1
(--port when free, else any free port) and opens your browser once it is ready. Ctrl-C stops it."""
HOST = "127.0.0.1"


def register(subparsers, common) -> None:
    from .common import common_options
    from .serve import add_server_options

    p = subparsers.add_parser("ui", parents=[common_options(default_reranker=None)],
                              help="open the search page of an index in your browser", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_options(p, local=True)
    p.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    p.set_defaults(handler=run)


def free_port(preferred: int, host: str = HOST) -> int:
    """`preferred` when nothing listens on it, else a free port the system picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError as e:
                if e.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                continue
            return sock.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def open_when_ready(url: str, port: int, stop: threading.Event, host: str = HOST) -> None:
    """Open `url` in the browser as soon as `port` accepts connections (the server is up)."""
    while not stop.is_set():
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            time.sleep(0.1)
            continue
        if not webbrowser.open(url):
            print(f"qvl: open {url} in your browser", file=sys.stderr)
        return


def run(args: argparse.Namespace) -> int:
    from ..index.backends import store_exists
    from .common import db_location
    from .serve import run as serve

    args.db, source = db_location(args)
    if source == "default" and not store_exists(args.db):
        raise ValueError(f"qvl ui needs an index: there is none at the default location {args.db}; build one "
                         "with `qvl index FOLDER`, or pass --db DIR or set QVL_DB")
    args.host = HOST
    args.port = free_port(int(args.port))
    url = f"http://{HOST}:{args.port}/"
    stop = threading.Event()
    if args.no_browser:
        print(f"qvl: the search page will be at {url}", file=sys.stderr)
    else:
        threading.Thread(target=open_when_ready, args=(url, args.port, stop), daemon=True).start()
    try:
        return serve(args)
    finally:
        stop.set()

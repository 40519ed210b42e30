"""Where a Milvus index lives and how to reach it: locations, clients, Milvus Lite's one-process rule.

    milvus://HOST[:PORT]/COLLECTION[?db=NAME]   a Milvus server (port 19530 when left out)
    milvus+https://HOST[:PORT]/COLLECTION       the same over TLS
    milvus-lite://PATH.db[/COLLECTION]          a Milvus Lite folder (collection 'qvl' when left out)

A token (user:password or an API key) comes from QVL_MILVUS_TOKEN or the URI's user:password@.
Milvus Lite runs in the process that opens it and locks its folder: a store this module opened stops
the Lite server when the last store on it closes, so other processes can open the folder afterwards.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .store import StoreError, StoreLockedError

SCHEMES = ("milvus", "milvus+https", "milvus-lite")
DEFAULT_PORT = 19530
DEFAULT_COLLECTION = "qvl"
TOKEN_ENV = "QVL_MILVUS_TOKEN"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")


# locations -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MilvusLocation:
    """Where an index lives: `uri` is what MilvusClient connects to (http(s)://host:port, or the Lite folder)."""

    uri: str
    collection: str
    db_name: str = ""
    token: str = ""
    lite: bool = False

    def __str__(self) -> str:
        if self.lite:
            return f"milvus-lite://{self.uri}/{self.collection}"
        scheme = "milvus+https" if self.uri.startswith("https:") else "milvus"
        db = f"?db={self.db_name}" if self.db_name else ""
        return f"{scheme}://{self.uri.split('://', 1)[1]}/{self.collection}{db}"


def is_milvus(location: str) -> bool:
    return location.split("://", 1)[0].lower() in SCHEMES if "://" in location else False


def parse_location(location: str) -> MilvusLocation:
    """`milvus://HOST[:PORT]/COLLECTION[?db=NAME]`, `milvus+https://...` or `milvus-lite://PATH.db[/COLLECTION]`
    (the collection defaults to 'qvl'). ValueError says what a well-formed location looks like."""
    scheme, _, rest = location.partition("://")
    scheme = scheme.lower()
    if scheme == "milvus-lite":
        path, collection = rest, DEFAULT_COLLECTION
        if not rest.rstrip("/").endswith(".db"):
            path, _, collection = rest.rstrip("/").rpartition("/")
        path = path.rstrip("/")
        if not path.endswith(".db"):
            raise ValueError(f"{location}: a Milvus Lite index is milvus-lite://PATH.db/COLLECTION (a folder whose "
                             f"name ends in .db), e.g. milvus-lite://./qvl.db/photos")
        return MilvusLocation(os.path.abspath(os.path.expanduser(path)), _collection(collection, location), lite=True)
    if scheme not in ("milvus", "milvus+https"):
        raise ValueError(f"{location}: not a Milvus location (milvus://HOST:PORT/COLLECTION)")
    parts = urllib.parse.urlsplit("http://" + rest)
    if not parts.hostname:
        raise ValueError(f"{location}: no host; use milvus://HOST:PORT/COLLECTION, or milvus-lite://PATH.db/COLLECTION "
                         f"for a local Milvus Lite file")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"{location}: bad port") from None
    collection = parts.path.strip("/") or DEFAULT_COLLECTION
    db = urllib.parse.parse_qs(parts.query).get("db", [""])[0]
    token = os.environ.get(TOKEN_ENV, "")
    if parts.username:
        token = urllib.parse.unquote(parts.username) + ":" + urllib.parse.unquote(parts.password or "")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    http = "https" if scheme == "milvus+https" else "http"
    return MilvusLocation(f"{http}://{host}:{port}", _collection(collection, location), db, token)


def _collection(name: str, location: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{location}: the collection name {name!r} must be letters, digits and underscores, "
                         f"starting with a letter or underscore (at most 200)")
    return name


# connecting ----------------------------------------------------------------------------------------
_lite_users: dict[str, int] = {}  # Lite folders whose server this module started -> stores open on it
_lite_guard = threading.Lock()


def _pymilvus():
    try:
        import pymilvus
    except ImportError:
        raise ImportError('the Milvus store needs pymilvus: pip install "qwen3-vl-embedding[milvus]"') from None
    return pymilvus


def connect(where: MilvusLocation):
    """A MilvusClient for `where` (StoreError when nothing answers; StoreLockedError when another process
    has the Lite folder open)."""
    pymilvus = _pymilvus()
    served = False
    if where.lite:
        # Milvus Lite's in-process gRPC server logs a traceback for every call it does not implement
        # (pymilvus probes some); they are harmless and only confuse users.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        from milvus_lite.server_manager import server_manager_instance

        served = where.uri in getattr(server_manager_instance, "_servers", {})  # by this process already
        if not served:
            _check_lite_free(where.uri)
        os.makedirs(os.path.dirname(where.uri) or ".", exist_ok=True)
    try:
        client = pymilvus.MilvusClient(uri=where.uri, token=where.token, db_name=where.db_name, timeout=30)
    except pymilvus.exceptions.MilvusException as e:
        if where.lite:
            raise StoreError(f"cannot open the Milvus Lite folder {where.uri}: {e.message}") from None
        raise StoreError(f"cannot connect to Milvus at {where.uri.split('://', 1)[1]}: no store backend answers "
                         f"there ({e.message}); start the Milvus server or fix --db") from None
    if where.lite:
        with _lite_guard:
            if where.uri in _lite_users or not served:
                _lite_users[where.uri] = _lite_users.get(where.uri, 0) + 1
    return client


def _check_lite_free(folder: str) -> None:
    """StoreLockedError when another process has the Milvus Lite folder open (Lite serves one process)."""
    lock = os.path.join(folder, "LOCK")
    if not os.path.isfile(lock):
        return
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        raise StoreLockedError(f"the Milvus Lite folder {folder} is open in another process; Milvus Lite serves "
                               f"one process at a time (a Milvus server serves many): wait for it to finish") from None
    finally:
        os.close(fd)


def disconnect(where: MilvusLocation, client: Any) -> None:
    """Close the client; the last store to leave a Lite server this module started stops it, which unlocks
    the folder for other processes."""
    client.close()
    if not where.lite:
        return
    with _lite_guard:
        users = _lite_users.get(where.uri)
        if users is None:
            return  # a server started by someone else in this process: theirs to stop
        if users > 1:
            _lite_users[where.uri] = users - 1
            return
        del _lite_users[where.uri]
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(where.uri)


def is_milvus_error(e: BaseException) -> bool:
    """An exception of pymilvus's own (a server gone, a refused request)."""
    return type(e).__module__.startswith("pymilvus")


def milvus_errors(method):
    """A store method whose pymilvus exceptions become StoreError naming the store's location."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            if not is_milvus_error(e):
                raise
            raise StoreError(f"Milvus at {self.location}: {getattr(e, 'message', None) or e}") from e

    return wrapper

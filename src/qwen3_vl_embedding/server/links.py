"""Links to a record's file and thumbnail, signed when the server has an API key.

An <img> or <video> element cannot send an Authorization header, so with `--api-key` the links the
server hands out (in search results and record lookups, to callers who sent the key) carry a
signature: an HMAC-SHA256, under a secret made at random when the server starts, of the record id,
what is linked (file or thumbnail) and an expiry time. A signed link opens that one record's file or
thumbnail, nothing else, until it expires; it never reveals the API key. Expiry times are rounded up
to the hour, so a link stays the same for an hour and browsers can cache what it points to; a link
lasts one to two hours. Without an API key links carry no signature (nothing needs one).

`v` is a prefix of the record's content hash: a file indexed again gets new links, so a browser
never shows a stale cached thumbnail of it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import parse_qs

LINKED = ("file", "thumbnail")
_PATH = re.compile(r"^/v1/records/(\d{1,20})/(file|thumbnail)$")
LIFETIME = 3600  # seconds; links expire one to two lifetimes after they were made


class FileLinks:
    """Makes and checks the links of records' files and thumbnails (`signed`: the server has an API key)."""

    def __init__(self, signed: bool, lifetime: int = LIFETIME, secret: bytes | None = None):
        self.signed = signed
        self.lifetime = lifetime
        self._secret = secret or secrets.token_bytes(32)

    def _signature(self, record_id: int, what: str, expires: int) -> str:
        mac = hmac.new(self._secret, f"{record_id}:{what}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode()

    def link(self, record_id: int, what: str, version: str = "", now: float | None = None) -> str:
        """The path and query of a record's file or thumbnail."""
        if what not in LINKED:
            raise ValueError(f"links are made to {' or '.join(LINKED)}, not {what!r}")
        url = f"/v1/records/{record_id}/{what}?v={version[:12]}"
        if self.signed:
            expires = (int(now if now is not None else time.time()) // self.lifetime + 2) * self.lifetime
            url += f"&exp={expires}&sig={self._signature(record_id, what, expires)}"
        return url

    def allows(self, path: str, query: str, now: float | None = None) -> bool:
        """True when `path`?`query` is a link this server signed and it has not expired."""
        if not self.signed:
            return False
        match = _PATH.match(path)
        if match is None:
            return False
        params = parse_qs(query, max_num_fields=8)
        try:
            expires = int(params["exp"][0])
            given = params["sig"][0]
        except (KeyError, IndexError, ValueError):
            return False
        if expires < (now if now is not None else time.time()):
            return False
        wanted = self._signature(int(match.group(1)), match.group(2), expires)
        return hmac.compare_digest(given.encode(), wanted.encode())

    def add_to(self, hit: dict, modality: str | None = None, version: str = "") -> dict:
        """A result or record object with its links added: `file`, `thumbnail` (None for text chunks) and
        `id_str`, the id as a string (JavaScript numbers cannot hold every 63-bit id)."""
        record_id = hit["id"]
        hit["id_str"] = str(record_id)
        hit["file"] = self.link(record_id, "file", version)
        hit["thumbnail"] = None if (modality or hit.get("modality")) == "text" else \
            self.link(record_id, "thumbnail", version)
        return hit

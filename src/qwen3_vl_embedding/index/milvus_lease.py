"""One writer per Milvus index: a lease in the index's files collection, renewed by a thread.

The 'lock' row says who writes (a random token, pid, host), since when, and when it was last renewed
(every HEARTBEAT_SECONDS). A second writer is refused while the lease is fresh and its holder alive;
it takes the lease over once the holder is gone: a dead pid on the same host, or no renewal for
LEASE_SECONDS (a crashed writer on another machine). A writer whose lease was taken over (it went
silent too long) refuses further writes. Milvus has no compare-and-set, so this is a lease, not a
mutex: it stops a second `qvl index` started while one runs, not two started in the same instant.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from .store import StoreLockedError

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 10.0


class Lease:
    """The writer's lease on `store` (a MilvusStore): `acquire`, `check` before writes, `release`."""

    def __init__(self, store: Any):
        self.store = store
        self.token = secrets.token_hex(8)
        self.lost: dict | None = None
        self.since = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> dict | None:
        rows = self.store.client.query(self.store.files_name, ids=["lock"], output_fields=["state"])
        return json.loads(rows[0]["state"]) if rows else None

    def _write(self, since: float) -> None:
        state = {"token": self.token, "pid": os.getpid(), "host": socket.gethostname(), "since": since,
                 "seen": time.time()}
        self.store.upsert_files([{"key": "lock", "kind": "lock", "path": "", "status": "", "state": json.dumps(state)}])

    def acquire(self) -> "Lease":
        holder = self._read()
        if holder and holder.get("token") != self.token and holder_alive(holder):
            raise StoreLockedError(f"{self.store.location} is being written by another qvl index{_who(holder)}; "
                                   f"wait for it to finish or stop it, then run again (searching it meanwhile is fine)")
        self.since = time.time()
        self._write(self.since)
        self._thread = threading.Thread(target=self._renew, name="qvl-milvus-lease", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if not self._renew_once():
                return

    def _renew_once(self) -> bool:
        """One beat: renew the lease; False (and writes refused from now on) when another writer has it."""
        try:
            holder = self._read()
            if holder and holder.get("token") != self.token:
                self.lost = holder
                return False
            self._write(self.since)
        except Exception as e:  # a network hiccup: try again at the next beat
            logger.warning("could not renew the writer's lease on %s: %s", self.store.location, e)
        return True

    def check(self) -> None:
        if self.lost is not None:
            raise StoreLockedError(f"{self.store.location}: another qvl index took over the index{_who(self.lost)} "
                                   f"after this one went silent for {LEASE_SECONDS:.0f} s; stop one of them")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if self.lost is None and self.store.client is not None and (self._read() or {}).get("token") == self.token:
                self.store.client.delete(self.store.files_name, ids=["lock"])
        except Exception as e:
            logger.warning("could not release the writer's lease on %s: %s", self.store.location, e)


def holder_alive(holder: dict, now: float | None = None, host: str | None = None) -> bool:
    """Is the lease's writer still there? Renewed within LEASE_SECONDS, and on this host its pid alive."""
    now = time.time() if now is None else now
    if now - float(holder.get("seen", 0)) > LEASE_SECONDS:
        return False
    if holder.get("host") != (host or socket.gethostname()):
        return True
    try:
        pid = int(holder.get("pid", 0))
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def _who(holder: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("since", 0))))
    return f" (pid {holder.get('pid')} on {holder.get('host')}, since {since})"

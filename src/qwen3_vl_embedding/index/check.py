"""`qvl info --check`: is a local index whole? SQLite's own check, then what qvl keeps in it.

    database   PRAGMA integrity_check (pages, b-trees, indexes)
    vectors    every record has one vector and every vector a record; each is `dim` float32 values of
               unit length (garbage written over a vector's bytes shows up here, where SQLite sees none)
    ann        the approximate index file named in the metadata exists, loads, holds the number of
               vectors the metadata says, and holds exactly the records it should (those not changed
               since it was written; search scans the changed ones exactly)

Each finding names what is wrong and the command that repairs it. Milvus checks its own storage.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np

from .ann import AnnIndex
from .sqlite_store import SqliteStore

SAMPLE = 5  # ids or SQLite messages quoted per finding
NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Finding:
    """Something wrong with an index: which part, what, and the command that repairs it."""

    part: str  # database, vectors, ann
    problem: str
    repair: str

    def to_json(self) -> dict[str, str]:
        return {"part": self.part, "problem": self.problem, "repair": self.repair}


def reindex_advice(location: str) -> str:
    return (f"the index cannot be trusted: restore a copy, or move {location} aside and index your folders again "
            f"(qvl index PATH... --db {location})")


def rebuild_advice(location: str) -> str:
    return f"qvl index --db {location} --rebuild-ann"


def check_index(store: Any) -> list[Finding]:
    """Findings for an open store (empty: all is well). Only local (SQLite) indexes are checked."""
    if not isinstance(store, SqliteStore):
        return []
    try:
        found = _database(store)
        if found:
            return found  # the rest reads the damaged pages
        return _vectors(store) + _ann(store)
    except sqlite3.DatabaseError as e:
        return [Finding("database", f"SQLite cannot read it: {e}", reindex_advice(store.location))]


def _database(store: SqliteStore) -> list[Finding]:
    rows = [r[0] for r in store.conn.execute("PRAGMA integrity_check")]
    if rows == ["ok"]:
        return []
    rows = [line for row in rows for line in row.splitlines() if line.strip() and not line.startswith("***")]
    more = f" (and {len(rows) - SAMPLE} more)" if len(rows) > SAMPLE else ""
    return [Finding("database", "SQLite's integrity check failed: " + "; ".join(rows[:SAMPLE]) + more,
                    reindex_advice(store.location))]


def _vectors(store: SqliteStore) -> list[Finding]:
    conn, dim, out = store.conn, store.meta.dim, []
    advice = reindex_advice(store.location)
    for what, sql in (
            ("records without a vector", "SELECT r.id FROM records r LEFT JOIN vectors v ON v.id = r.id WHERE v.id IS NULL"),
            ("vectors without a record", "SELECT v.id FROM vectors v LEFT JOIN records r ON r.id = v.id WHERE r.id IS NULL"),
            (f"vectors that are not {dim} float32 values", f"SELECT id FROM vectors WHERE length(vector) != {4 * dim}")):
        ids = [r[0] for r in conn.execute(sql)]
        if ids:
            out.append(Finding("vectors", f"{len(ids)} {what} (ids {_sample(ids)})", advice))
    bad: list[int] = []
    for ids, vecs in store._vectors(f"SELECT id, vector FROM vectors WHERE length(vector) = {4 * dim}", ()):
        norms = np.linalg.norm(vecs.astype(np.float64), axis=1)
        bad += ids[~(np.abs(norms - 1.0) <= NORM_TOLERANCE)].tolist()  # NaN and inf count as bad
    if bad:
        out.append(Finding("vectors", f"{len(bad)} stored vectors are not of unit length: their bytes were "
                                      f"overwritten (ids {_sample(bad)})", advice))
    return out


def _ann(store: SqliteStore) -> list[Finding]:
    state = store.ann_state()
    if not state:
        return []
    advice = rebuild_advice(store.location)
    problem = store.ann_problem()
    if problem:
        return [Finding("ann", problem, advice)]
    ann = AnnIndex.load(os.path.join(store.location, state["file"]), state["precision"], mmap=True)
    held = set(ann.ids().tolist())
    changed = {r[0] for r in store.conn.execute("SELECT DISTINCT id FROM changes WHERE seq > ?", (state["seq"],))}
    records = {r[0] for r in store.conn.execute("SELECT id FROM records")}
    missing = sorted(records - changed - held)
    ghosts = sorted(held - changed - records)
    out = []
    if missing:
        out.append(Finding("ann", f"the approximate index lacks {len(missing)} records (ids {_sample(missing)}): "
                                  f"search would not find them", advice))
    if ghosts:
        out.append(Finding("ann", f"the approximate index holds {len(ghosts)} ids that are no records "
                                  f"(ids {_sample(ghosts)})", advice))
    return out


def _sample(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:SAMPLE])) + (", ..." if len(ids) > SAMPLE else "")

"""The embedded store: one folder holding a SQLite database (the source of truth) and an ANN file.

    DIR/index.sqlite   WAL mode: records, their float32 vectors, file states, metadata, change log
    DIR/ann-*.faiss    the approximate index, derived from SQLite; absent below the exact threshold
    DIR/write.lock     held by the one writer

Crash safety: every write goes through SQLite transactions, so a killed writer loses only what it had
not committed, and the ANN file is never trusted beyond what SQLite says it holds. Each insert,
replacement or deletion appends the record id to the `changes` log. The metadata row `ann` names the
current ANN file and the last change it contains; files are written under a new name and then named
in the same transaction that trims the log, so the pair is always consistent. Search uses the ANN
file for everything up to that change and scans the newer changes exactly, so it is right while a
writer is busy or after a crash, before any rebuild.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import sqlite3
import urllib.parse
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .ann import PRECISIONS, AnnIndex, RowsTopK, TopK, normalized, training_size
from .lock import WriterLock
from .records import FileState, Filters, Hit, Record
from .store import SCHEMA_VERSION, IndexMeta, Store, StoreError

logger = logging.getLogger(__name__)

DB_FILE = "index.sqlite"
LOCK_FILE = "write.lock"
SCAN_CHUNK = 4096
REBUILD_GROWTH = 2.0  # retrain the ANN once the index holds this many times the vectors it was trained on
MIN_ANN_VECTORS = 256  # below this an approximate index is pointless whatever the threshold says
RESCORE_MARGIN = 0.05  # int8 / float16 codes: candidates this far below a minimum score are still rescored

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, content_hash TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL,
    modality TEXT NOT NULL, status TEXT NOT NULL, records INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, modality TEXT NOT NULL, page INTEGER, t_start REAL, t_end REAL,
    chunk INTEGER, text TEXT, content_hash TEXT NOT NULL, mtime REAL NOT NULL, model TEXT NOT NULL,
    instruction TEXT NOT NULL, dim INTEGER NOT NULL, date REAL);
CREATE INDEX IF NOT EXISTS records_path ON records(path);
CREATE INDEX IF NOT EXISTS records_modality ON records(modality);
CREATE TABLE IF NOT EXISTS vectors (id INTEGER PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER NOT NULL);
"""
RECORD_COLUMNS = ("id, path, modality, page, t_start, t_end, chunk, text, content_hash, mtime, model, "
                  "instruction, dim, date")


def _record(row: Sequence) -> Record:
    (id_, path, modality, page, start, end, chunk, text, content_hash, mtime, model, instruction, dim, date) = row[:14]
    return Record(id_, path, modality, content_hash, mtime, model, instruction, dim, page, start, end, chunk, text,
                  date)


def _chunks(seq: Sequence, n: int = 500) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class SqliteStore(Store):
    """See the module docstring. `write=True` takes the writer lock; readers never write.

    Readers map the ANN file (a one-off search reads only the lists it scans); `ann_in_memory=True`
    loads it whole instead, which makes each search several times faster for long-lived readers.
    `create=True` (with `write`, without `meta`) opens a new index before its model is known: the folder
    is made and locked, and `initialize(meta)` adds the metadata later (until then `meta` is None)."""

    def __init__(self, folder: str, meta: IndexMeta | None = None, *, write: bool = False,
                 ann_in_memory: bool = False, create: bool = False):
        self.location = os.path.abspath(os.path.expanduser(folder))
        self.writable = write
        self.ann_in_memory = ann_in_memory
        self.conn: sqlite3.Connection | None = None
        self._in_tx = False
        self._lock: WriterLock | None = None
        self._ann: tuple[str, AnnIndex] | None = None  # (file name, index) cached by readers
        self._made_folder = False  # a new index's folder, removed again if it never gets its metadata
        self._pending = False  # created without metadata, not initialized yet
        db = os.path.join(self.location, DB_FILE)
        if not self.exists(self.location):
            if meta is None and not (write and create):
                raise StoreError(f"no index at {self.location}: build one with `qvl index PATH... --db {folder}`")
            if not write:
                raise StoreError(f"no index at {self.location}")
            if os.path.exists(self.location) and not os.path.isdir(self.location):
                raise StoreError(f"--db {folder} is a file; the index is a folder: pass a new or existing folder")
            ours = {LOCK_FILE, DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm"}  # a first run stopped early
            others = [f for f in os.listdir(self.location) if f not in ours] if os.path.isdir(self.location) else []
            if others:
                raise StoreError(f"--db {folder} is a folder with other files in it; an index needs a folder of its "
                                 f"own: pass a new path such as {os.path.join(folder, '.qvl-index')}")
            self._made_folder = not os.path.isdir(self.location)
            os.makedirs(self.location, exist_ok=True)
        if write:
            self._lock = WriterLock(os.path.join(self.location, LOCK_FILE), self.location).acquire()
        try:
            self.conn = sqlite3.connect(db, timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 60000")
            if write:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                self.conn.execute("BEGIN IMMEDIATE")  # tables and metadata appear together or not at all
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                if not self._has_date():  # an index written before records kept their date
                    self.conn.execute("ALTER TABLE records ADD COLUMN date REAL")
                # date filters compare COALESCE(date, mtime) (records.Filters.sql): indexed as that expression
                self.conn.execute("CREATE INDEX IF NOT EXISTS records_when ON records(COALESCE(date, mtime))")
                self.meta = self._load_meta(meta)
                self._pending = self.meta is None
                self.conn.execute("COMMIT")
            else:
                self.meta = self._load_meta(None)
            self.has_date = self._has_date()
            self._columns = RECORD_COLUMNS if self.has_date else RECORD_COLUMNS.replace("date", "NULL")
        except sqlite3.DatabaseError as e:
            self.close()
            raise StoreError(f"cannot open the index at {self.location}: {e}") from None
        except BaseException:
            self.close()
            raise

    def _discard(self) -> None:
        """Remove what opening a new index made (with the lock still held)."""
        names = [DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm"] + ([LOCK_FILE] if self._made_folder else [])
        for name in names:
            try:
                os.unlink(os.path.join(self.location, name))
            except OSError:
                pass
        if self._made_folder:
            try:
                os.rmdir(self.location)
            except OSError:
                pass

    def _has_date(self) -> bool:
        return any(row[1] == "date" for row in self.conn.execute("PRAGMA table_info(records)"))

    @staticmethod
    def exists(folder: str) -> bool:
        """True when `folder` holds an index (a database with its metadata, or one too damaged to tell)."""
        db = os.path.join(os.path.expanduser(folder), DB_FILE)
        if not os.path.isfile(db):
            return False
        try:
            with contextlib.closing(sqlite3.connect(f"file:{urllib.parse.quote(db)}?mode=ro", uri=True)) as conn:
                return conn.execute("SELECT 1 FROM meta WHERE key = 'index'").fetchone() is not None
        except sqlite3.OperationalError:  # no tables: a first run stopped while creating it
            return False
        except sqlite3.DatabaseError:  # damaged: opening it says so
            return True

    # metadata ----------------------------------------------------------------------------------
    def _load_meta(self, meta: IndexMeta | None) -> IndexMeta | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'index'").fetchone()
        if row is None:
            if meta is None and self.writable:
                return None  # created without metadata: `initialize` gives it
            if meta is None or not self.writable:
                raise StoreError(f"no index at {self.location}: build one with `qvl index PATH... --db DIR`")
            self.conn.execute("INSERT INTO meta VALUES ('index', ?)", (json.dumps(meta.to_json()),))
            return meta
        stored = IndexMeta.from_json(json.loads(row[0]))
        if stored.version > SCHEMA_VERSION:
            raise StoreError(f"the index at {self.location} was written by a newer qvl (schema "
                             f"{stored.version}); upgrade qwen3-vl-embedding to read it")
        return stored

    def initialize(self, meta: IndexMeta) -> None:
        if self.meta is not None:
            raise StoreError(f"the index at {self.location} has its metadata already")
        self.commit()
        self._write().execute("INSERT INTO meta VALUES ('index', ?)", (json.dumps(meta.to_json()),))
        self.commit()
        self.meta = meta
        self._pending = False

    def value(self, key: str, default: Any = None) -> Any:
        found = self._get(f"value:{key}")
        return default if found is None else found

    def set_value(self, key: str, value: Any) -> None:
        self._write()
        self._set(f"value:{key}", value)
        self.commit()

    def _get(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _set(self, key: str, value: Any) -> None:
        if value is None:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def update_settings(self, changes: dict) -> None:
        self._write()
        self.meta = dataclasses.replace(self.meta, settings={**self.meta.settings, **changes})
        self._set("index", self.meta.to_json())

    # transactions ------------------------------------------------------------------------------
    def _write(self) -> sqlite3.Connection:
        if not self.writable:
            raise StoreError("this index was opened for reading")
        if not self._in_tx:
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_tx = True
        return self.conn

    def commit(self) -> None:
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read of several statements (a no-op inside a write transaction)."""
        if self._in_tx:
            yield self.conn
            return
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    # files -------------------------------------------------------------------------------------
    def file_states(self) -> dict[str, FileState]:
        rows = self.conn.execute(
            "SELECT path, content_hash, size, mtime, modality, status, records, error FROM files")
        return {r[0]: FileState(*r) for r in rows}

    def record_ids(self, path: str, content_hash: str | None = None) -> set[int]:
        if content_hash is None:
            return {r[0] for r in self.conn.execute("SELECT id FROM records WHERE path = ?", (path,))}
        return {r[0] for r in self.conn.execute("SELECT id FROM records WHERE path = ? AND content_hash = ?",
                                                (path, content_hash))}

    def put_file(self, state: FileState, drop_records: bool = False) -> None:
        conn = self._write()
        if drop_records:
            self._delete_records("path = ?", (state.path,))
        conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (state.path, state.content_hash, state.size, state.mtime, state.modality, state.status,
                      state.records, state.error))

    def _delete_records(self, where: str, params: Sequence) -> int:
        conn = self._write()
        ids = [r[0] for r in conn.execute(f"SELECT id FROM records WHERE {where}", params)]
        for part in _chunks(ids):
            marks = ",".join("?" * len(part))
            conn.execute(f"DELETE FROM records WHERE id IN ({marks})", part)
            conn.execute(f"DELETE FROM vectors WHERE id IN ({marks})", part)
            conn.executemany("INSERT INTO changes (id) VALUES (?)", [(i,) for i in part])
        return len(ids)

    def delete_records(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        return sum(self._delete_records(f"id IN ({','.join('?' * len(part))})", part) for part in _chunks(ids))

    def delete_paths(self, paths: Iterable[str]) -> int:
        paths = list(paths)
        removed = 0
        for part in _chunks(paths):
            marks = ",".join("?" * len(part))
            removed += self._delete_records(f"path IN ({marks})", part)
            self._write().execute(f"DELETE FROM files WHERE path IN ({marks})", part)
        return removed

    # records -----------------------------------------------------------------------------------
    def add(self, records: Sequence[Record], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(records), self.meta.dim):
            raise ValueError(f"expected vectors of shape ({len(records)}, {self.meta.dim}), got {vectors.shape}")
        if not len(records):
            return
        conn = self._write()
        conn.executemany(f"INSERT OR REPLACE INTO records ({RECORD_COLUMNS}) VALUES ({','.join('?' * 14)})",
                         [(r.id, r.path, r.modality, r.page, r.start, r.end, r.chunk, r.text, r.content_hash,
                           r.mtime, r.model, r.instruction, r.dim, r.date) for r in records])
        little = vectors.astype("<f4", copy=False)
        conn.executemany("INSERT OR REPLACE INTO vectors (id, vector) VALUES (?, ?)",
                         [(r.id, little[i].tobytes()) for i, r in enumerate(records)])
        conn.executemany("INSERT INTO changes (id) VALUES (?)", [(r.id,) for r in records])

    def count(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT modality, count(*) FROM records GROUP BY modality").fetchall())

    def records(self, ids: Sequence[int]) -> dict[int, Record]:
        out: dict[int, Record] = {}
        for part in _chunks(list(ids)):
            rows = self.conn.execute(
                f"SELECT {self._columns} FROM records WHERE id IN ({','.join('?' * len(part))})", part)
            out.update((row[0], _record(row)) for row in rows)
        return out

    def records_of(self, path: str) -> list[Record]:
        rows = self.conn.execute(f"SELECT {self._columns} FROM records WHERE path = ? ORDER BY id", (path,))
        return sorted((_record(row) for row in rows), key=lambda r: (r.page or 0, r.start or 0.0, r.chunk or 0))

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for part in _chunks(list(ids)):
            for found, vecs in self._vectors(
                    f"SELECT id, vector FROM vectors WHERE id IN ({','.join('?' * len(part))})", part):
                out.update((int(i), v.copy()) for i, v in zip(found, vecs))
        return out

    def scan(self, filters: Filters | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        where, params = (filters or Filters()).sql("r", self.has_date)
        yield from self._vectors(f"SELECT r.id, v.vector FROM records r JOIN vectors v ON v.id = r.id WHERE {where}",
                                 params)

    def _vectors(self, sql: str, params: Sequence) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in chunks from a query selecting (id, vector)."""
        cursor = self.conn.execute(sql, params)
        while True:
            rows = cursor.fetchmany(SCAN_CHUNK)
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
            yield ids, vecs

    # search ------------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None,
               nprobe: int | None = None) -> list[Hit]:
        """The k records most similar to `vector` that pass `filters`, with exact cosine scores."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = normalized(np.asarray(vector, np.float32).reshape(-1))
        if query.shape[0] != self.meta.dim:
            raise ValueError(f"the query vector has {query.shape[0]} dimensions, the index {self.meta.dim}")
        filters = filters or Filters()
        where, params = filters.sql("r", self.has_date)
        try:
            return self._search(query, k, filters, where, params, nprobe)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"the index at {self.location} is damaged ({e}): `qvl info --db {self.location} "
                             f"--check` says what is wrong and how to repair it") from None

    def _search(self, query: np.ndarray, k: int, filters: Filters, where: str, params: list,
                nprobe: int | None) -> list[Hit]:
        with self._snapshot() as conn:
            state = self._get("ann")
            ann = self._reader_ann(state) if state else None
            if ann is not None and not filters.empty:
                matching = conn.execute(f"SELECT count(*) FROM records r WHERE {where}", params).fetchone()[0]
                if matching <= self.meta.exact_threshold:
                    ann = None
            if ann is None:
                ids, scores = self._scan(query, k, f"WHERE {where}", params)
            else:
                ids, scores = self._ann_search(query, k, ann, state["seq"], where, params, nprobe)
            found = self.records(ids.tolist())
        return [Hit(found[i], float(s)) for i, s in zip(ids.tolist(), scores.tolist()) if i in found]

    def _scan(self, query: np.ndarray, k: int, where: str, params: Sequence) -> tuple[np.ndarray, np.ndarray]:
        top = TopK(k)
        for ids, vecs in self._vectors(f"SELECT r.id, v.vector FROM records r JOIN vectors v ON v.id = r.id {where}",
                                       params):
            top.push(vecs @ query, ids)
        return top.result()

    def _ann_search(self, query: np.ndarray, k: int, ann: AnnIndex, synced: int, where: str, params: Sequence,
                    nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
        """ANN candidates up to change `synced`, rescored with the stored vectors, plus an exact scan of
        the records changed since (which the ANN file may hold stale or not at all)."""
        changed = {r[0] for r in self.conn.execute("SELECT DISTINCT id FROM changes WHERE seq > ?", (synced,))}
        top = TopK(k)
        if changed:
            for ids, vecs in self._vectors(
                    "SELECT r.id, v.vector FROM records r JOIN vectors v ON v.id = r.id "
                    f"WHERE r.id IN (SELECT id FROM changes WHERE seq > ?) AND {where}", [synced, *params]):
                top.push(vecs @ query, ids)
        fetch = max(4 * k, 40)
        while True:
            cand, _ = ann.search(query, fetch, nprobe)
            fresh = [int(i) for i in cand if int(i) not in changed]
            found = 0
            for part in _chunks(fresh):
                for ids, vecs in self._vectors(
                        "SELECT r.id, v.vector FROM records r JOIN vectors v ON v.id = r.id "
                        f"WHERE r.id IN ({','.join('?' * len(part))}) AND {where}", [*part, *params]):
                    top.push(vecs @ query, ids)
                    found += len(ids)
            # Filters or deletions can leave too few candidates: widen the net until the index is exhausted.
            if found >= k or len(cand) < fetch or fetch >= ann.info.ntotal:
                return top.result()
            fetch *= 4

    def neighbours(self, vectors: np.ndarray, k: int, min_score: float | None = None,
                   nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Many queries at once: an exact scan below the ANN threshold; above it one batched search of the
        ANN file (candidates rescored with the stored vectors unless its codes are float32, those below
        `min_score` first dropped) and an exact scan of the records changed since the file was written."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        queries = normalized(np.asarray(vectors, np.float32).reshape(-1, self.meta.dim))
        top = RowsTopK(len(queries), k)
        with self._snapshot() as conn:
            state = self._get("ann")
            ann = self._reader_ann(state) if state else None
            if ann is None:
                for ids, vecs in self._vectors("SELECT id, vector FROM vectors", ()):
                    top.push(queries @ vecs.T, ids)
                return top.result()
            changed = {r[0] for r in conn.execute("SELECT DISTINCT id FROM changes WHERE seq > ?", (state["seq"],))}
            cand, approx = ann.search_many(queries, k + min(len(changed), k), nprobe)
            stale = np.isin(cand, np.fromiter(changed, np.int64, len(changed))) | (cand < 0)
            approx = np.where(stale, -np.inf, approx)
            if ann.precision != "float32":
                floor = -np.inf if min_score is None else min_score - RESCORE_MARGIN
                keep = approx >= floor
                stored = self.vectors(np.unique(cand[keep]).tolist())
                exact = np.full(approx.shape, -np.inf, np.float32)
                for row, col in zip(*np.nonzero(keep)):
                    vec = stored.get(int(cand[row, col]))
                    if vec is not None:
                        exact[row, col] = float(vec @ queries[row])
                approx = exact
            top.push_pairs(approx, cand)
            if changed:
                for part in _chunks(sorted(changed), SCAN_CHUNK):
                    for ids, vecs in self._vectors(
                            f"SELECT id, vector FROM vectors WHERE id IN ({','.join('?' * len(part))})", part):
                        top.push(queries @ vecs.T, ids)
        return top.result()

    def _reader_ann(self, state: dict) -> AnnIndex | None:
        name = state["file"]
        if self._ann is not None and self._ann[0] == name:
            return self._ann[1]
        path = os.path.join(self.location, name)
        try:
            ann = AnnIndex.load(path, state["precision"], mmap=not (self.writable or self.ann_in_memory))
        except Exception as e:  # missing or unreadable: exact search still answers correctly
            logger.warning("the approximate index %s cannot be read (%s); searching exactly. "
                           "`qvl index --db %s --rebuild-ann` rebuilds it", path, e, self.location)
            return None
        self._ann = (name, ann)
        return ann

    # the approximate index ---------------------------------------------------------------------
    def ann_state(self) -> dict | None:
        """The metadata of the approximate index (file, seq, vectors...), or None below the threshold."""
        return self._get("ann")

    def ann_problem(self) -> str | None:
        """Why the approximate index named in the metadata cannot be used (search then scans exactly), or
        None when it loads and holds as many vectors as the metadata says (or there is none)."""
        state = self._get("ann")
        if not state:
            return None
        path = os.path.join(self.location, state["file"])
        if not os.path.isfile(path):
            return f"the approximate index file {state['file']} is missing"
        try:
            ann = AnnIndex.load(path, state["precision"], mmap=True)
        except Exception as e:  # noqa: BLE001 - FAISS raises RuntimeError with a C++ message
            return f"the approximate index file {state['file']} cannot be read ({str(e).splitlines()[0][:160]})"
        if ann.info.ntotal != state.get("vectors", ann.info.ntotal):
            return (f"the approximate index file {state['file']} holds {ann.info.ntotal} vectors, the index says "
                    f"{state['vectors']}")
        return None

    def optimize(self, rebuild: bool = False, precision: str | None = None) -> None:
        """Build, update, retrain or drop the ANN file so that it matches SQLite (writer only).

        `precision` (with `rebuild`) changes the codes of the approximate index for good."""
        self.commit()
        if self.meta is None:  # a new index that never got its model: nothing to index yet
            return
        conn = self._write()
        if rebuild and precision and precision != self.meta.precision:
            if precision not in PRECISIONS:
                raise ValueError(f"the approximate index stores {', '.join(PRECISIONS)} vectors, not {precision!r}")
            self.meta = dataclasses.replace(self.meta, precision=precision)
            self._set("index", self.meta.to_json())
        n = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        state = self._get("ann")
        # The last change ever logged (the log itself is trimmed; AUTOINCREMENT remembers).
        last = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        last = last[0] if last else 0
        if n < max(self.meta.exact_threshold, MIN_ANN_VECTORS):
            self._replace_ann(state, None, last)
            return
        if state and not rebuild and state["seq"] == last and os.path.isfile(os.path.join(self.location,
                                                                                          state["file"])):
            self.commit()
            self._remove_orphans(state["file"])
            return  # nothing changed since the file was written
        ann = None
        if state and not rebuild and state.get("precision") == self.meta.precision and \
                state.get("trained", 0) * REBUILD_GROWTH >= n >= state.get("trained", 0) / REBUILD_GROWTH:
            ann = self._load_for_update(state)
        if ann is None:
            ann = self._build(n)
            trained = n
        else:
            trained = state["trained"]
            changed = [r[0] for r in conn.execute("SELECT DISTINCT id FROM changes WHERE seq > ?", (state["seq"],))]
            ann.remove(changed)
            for part in _chunks(changed, SCAN_CHUNK):
                for ids, vecs in self._vectors(
                        f"SELECT id, vector FROM vectors WHERE id IN ({','.join('?' * len(part))})", part):
                    ann.add(ids, vecs)
        name = f"ann-{last}-{secrets.token_hex(4)}.faiss"
        ann.save(os.path.join(self.location, name))
        self._replace_ann(state, {"file": name, "seq": last, "trained": trained, "precision": self.meta.precision,
                                  "nlist": ann.info.nlist, "vectors": ann.info.ntotal}, last)

    def _load_for_update(self, state: dict) -> AnnIndex | None:
        try:
            return AnnIndex.load(os.path.join(self.location, state["file"]), state["precision"])
        except Exception as e:
            logger.warning("rebuilding the approximate index: %s", e)
            return None

    def _build(self, n: int) -> AnnIndex:
        """Train on a sample of the stored vectors (every m-th by id, ids being hashes), then add them all."""
        wanted = training_size(n)
        step = max(1, n // wanted)
        sample = np.concatenate([v for _, v in self._vectors("SELECT id, vector FROM vectors WHERE id % ? = 0",
                                                              (step,))] or [np.empty((0, self.meta.dim), np.float32)])
        if len(sample) < wanted // 2:  # an unlucky modulus: take the first rows instead
            sample = np.concatenate([v for _, v in self._vectors("SELECT id, vector FROM vectors LIMIT ?",
                                                                  (wanted,))])
        ann = AnnIndex.train(sample, self.meta.precision, expected=n)
        for ids, vecs in self._vectors("SELECT id, vector FROM vectors", ()):
            ann.add(ids, vecs)
        return ann

    def _replace_ann(self, old: dict | None, new: dict | None, last: int) -> None:
        """Point the metadata at the new ANN file and trim the change log, in one transaction."""
        conn = self._write()
        self._set("ann", new)
        conn.execute("DELETE FROM changes WHERE seq <= ?", (last,))
        self.commit()
        if old and (new is None or old["file"] != new["file"]):
            try:
                os.unlink(os.path.join(self.location, old["file"]))
            except FileNotFoundError:
                pass
        self._remove_orphans(new["file"] if new else None)

    def _remove_orphans(self, keep: str | None) -> None:
        """ANN files a crashed writer left behind (written but never named in the metadata)."""
        for name in os.listdir(self.location):
            if (name.startswith("ann-") and name.endswith(".faiss") and name != keep) or name.startswith(".ann-"):
                try:
                    os.unlink(os.path.join(self.location, name))
                except OSError:
                    pass

    # facts -------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        with self._snapshot() as conn:
            files = dict(conn.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
            failed = [{"path": p, "error": e} for p, e in
                      conn.execute("SELECT path, error FROM files WHERE status = 'failed' ORDER BY path")]
            ann = self._get("ann")
            pending = conn.execute("SELECT count(DISTINCT id) FROM changes WHERE seq > ?",
                                   ((ann or {}).get("seq", 0),)).fetchone()[0] if ann else 0
            counts = self.count()
        size = sum(os.path.getsize(os.path.join(self.location, f)) for f in os.listdir(self.location)
                   if os.path.isfile(os.path.join(self.location, f)))
        return {"location": self.location, "records": sum(counts.values()), "by_modality": counts,
                "files": files, "failed_files": failed, "size_bytes": size,
                "ann": ({**ann, "pending_changes": pending} if ann else None)}

    def close(self) -> None:
        """Commit, release the writer lock; a new index that never got its metadata is removed again."""
        conn = self.conn
        if conn is not None:
            try:
                if self._in_tx:
                    conn.execute("COMMIT")
                    self._in_tx = False
            finally:
                conn.close()
                self.conn = None
        if self._lock is not None and self._pending:
            self._discard()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

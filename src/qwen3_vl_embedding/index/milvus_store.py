"""Milvus as the store: the same records, ids, file states and metadata as the embedded index, served
by a Milvus server (or Milvus Lite) through pymilvus's `MilvusClient`. Locations and connections:
milvus_connect.py; the writer's lease: milvus_lease.py.

Two collections per index:

    COLLECTION          a row per record: the Record fields (see records.py), `path_key` (BLAKE2b of the
                        path, so paths never need quoting in filter expressions) and the float32 `vector`
    COLLECTION__files   a row per indexed file (key = path_key, the FileState as JSON), plus the row
                        'meta' (the IndexMeta as JSON) and, while a writer runs, 'lock' (its lease);
                        Milvus wants a vector field in every collection, so it has a 2-d dummy one

Vectors are stored as FLOAT_VECTOR, the source of truth, whatever the precision: search fetches the
candidates' stored vectors and scores them here, so scores are the same exact cosine similarities as
the embedded store's. `precision` chooses the vector index Milvus searches once the collection holds
`exact_threshold` records (below it the index is FLAT: exact): float32 -> HNSW, float16 -> HNSW_SQ with
FP16 codes, int8 -> IVF_SQ8 (8-bit scalar quantisation with per-dimension ranges; its candidates are
rescored). INT8_VECTOR and BINARY_VECTOR fields are not used: Milvus Lite 3.x has neither, a server has
INT8_VECTOR only from 2.6, and quantised fields would lose the float vectors that exact scores and
`--rebuild-ann` need.

Writes are durable once Milvus acknowledges them (collections use Strong consistency, so every later
read sees them), so `commit` has nothing to do and a killed run keeps everything it added.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .milvus_connect import connect, disconnect, is_milvus_error, milvus_errors, parse_location
from .milvus_lease import Lease
from .records import MODALITIES, FileState, Filters, Hit, Record
from .store import SCHEMA_VERSION, IndexMeta, Store, StoreError

logger = logging.getLogger(__name__)

FILES_SUFFIX = "__files"
PATH_MAX = 4096
TEXT_MAX = 65535  # Milvus's largest VARCHAR
WRITE_ROWS = 512  # rows per insert: 2 MB of 1,024-d vectors, well under gRPC's message limit
QUERY_PAGE = 4096
MAX_TOPK = 16384  # Milvus's limit on a search's limit
MIN_ANN_VECTORS = 256  # as the embedded store: below this an approximate index is pointless
INDEX_RECHECK_SECONDS = 30.0  # how long a reader trusts the index type it saw (a writer may switch it)
ANN_INDEX = {  # precision -> (index type, build params)
    "float32": ("HNSW", {"M": 16, "efConstruction": 200}),
    "float16": ("HNSW_SQ", {"M": 16, "efConstruction": 200, "sq_type": "FP16"}),
    "int8": ("IVF_SQ8", {"nlist": 1024}),
}
QUANTISED = {"IVF_SQ8", "HNSW_SQ"}
DEFAULT_NPROBE = 32
RECORD_FIELDS = ["id", "path", "modality", "page", "t_start", "t_end", "chunk", "text", "content_hash", "mtime",
                 "model", "instruction", "dim"]


def path_key(path: str) -> str:
    """The key of a file's path in filter expressions and in the files collection."""
    return hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def like_pattern(glob: str) -> str:
    """A Milvus LIKE pattern matching at least what the shell glob matches (`*` -> `%`, any single-character
    construct -> `_`); candidates are checked exactly with `Filters.matches` afterwards."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append("%")
        elif c == "[" and "]" in glob[i + 2:]:  # a character class: one character
            out.append("_")
            i = glob.index("]", i + 2)
        elif c in "?%_\"\\[":
            out.append("_")  # one character; never needs escaping
        else:
            out.append(c)
        i += 1
    return "".join(out)


def like_is_exact(glob: str) -> bool:
    """True when `like_pattern(glob)` selects exactly what the glob does (only `*` is special in it)."""
    return not set(glob) & set("?[%_\"\\")


def filter_expression(filters: Filters, has_date: bool = True) -> str:
    """The Milvus filter expression for `filters` (a superset when globs use more than `*`; '' for none).
    Dates are the `date` field (set on every record written with it), else the mtime."""
    clauses = []
    when = "date" if has_date else "mtime"
    if filters.after is not None:
        clauses.append(f"{when} >= {float(filters.after)!r}")
    if filters.before is not None:
        clauses.append(f"{when} < {float(filters.before)!r}")
    if filters.modalities:
        clauses.append("modality in [" + ", ".join(f'"{m}"' for m in sorted(filters.modalities)) + "]")
    if filters.path_globs:
        clauses.append("(" + " or ".join(f'path like "{like_pattern(g)}"' for g in filters.path_globs) + ")")
    return " and ".join(clauses)


# the store -----------------------------------------------------------------------------------------
class MilvusStore(Store):
    """See the module docstring. `write=True` takes the writer's lease; readers never write.

    `ann_in_memory` is accepted for parity with the embedded store: Milvus keeps loaded collections in memory."""

    @milvus_errors
    def __init__(self, location: str, meta: IndexMeta | None = None, *, write: bool = False,
                 ann_in_memory: bool = False, create: bool = False):
        try:
            self.where = parse_location(location)
        except ValueError as e:
            raise StoreError(str(e)) from None
        self.location = str(self.where)
        self.writable = write
        self.records_name = self.where.collection
        self.files_name = self.where.collection + FILES_SUFFIX
        self._lease: Lease | None = None
        self._index: tuple[float, str] | None = None  # (when seen, index type)
        self.client = None
        if self.where.lite and not write and not os.path.isdir(self.where.uri):
            raise StoreError(f"no index at {self.location}: build one with `qvl index PATH... --db {location}`")
        self.client = connect(self.where)
        try:
            present = self._present()
            pending = not present and meta is None and write and create
            if not present and (meta is None or not write) and not pending:
                raise StoreError(f"no index at {self.location}: build one with `qvl index PATH... --db {location}`")
            if write:
                if not present:
                    self._create(meta)  # without meta: the files collection only, for the lease
                self._lease = Lease(self).acquire()
            self.meta = None if pending else self._load_meta(meta if write else None)
            self._read_fields()
        except BaseException:
            self.close()
            raise

    def _read_fields(self) -> None:
        self.has_date, self._fields = True, [*RECORD_FIELDS, "date"]
        if self.client.has_collection(self.records_name):
            names = {f["name"] for f in self.client.describe_collection(self.records_name)["fields"]}
            self.has_date = "date" in names  # collections made before records kept their date lack it
            self._fields = [*RECORD_FIELDS, "date"] if self.has_date else RECORD_FIELDS

    @milvus_errors
    def initialize(self, meta: IndexMeta) -> None:
        if self.meta is not None:
            raise StoreError(f"the index at {self.location} has its metadata already")
        self._writer()
        self._create(meta)
        self._put_meta(meta)
        self.meta = meta
        self._read_fields()

    @milvus_errors
    def value(self, key: str, default: Any = None) -> Any:
        rows = self.client.query(self.files_name, ids=[f"value:{key}"], output_fields=["state"])
        return json.loads(rows[0]["state"]) if rows else default

    @milvus_errors
    def set_value(self, key: str, value: Any) -> None:
        self._writer()
        if value is None:
            self.client.delete(self.files_name, ids=[f"value:{key}"])
        else:
            self.upsert_files([{"key": f"value:{key}", "kind": "value", "path": "", "status": "",
                                "state": json.dumps(value)}])

    @classmethod
    def exists(cls, location: str) -> bool:
        where = parse_location(location)
        if where.lite and not os.path.isdir(where.uri):
            return False
        client = connect(where)
        try:
            files = where.collection + FILES_SUFFIX
            if not (client.has_collection(where.collection) and client.has_collection(files)):
                return False
            _load(client, files)
            return bool(client.query(files, ids=["meta"], output_fields=["key"]))
        except Exception as e:
            if not is_milvus_error(e):
                raise
            raise StoreError(f"Milvus at {where}: {getattr(e, 'message', None) or e}") from e
        finally:
            disconnect(where, client)

    # schema ------------------------------------------------------------------------------------
    def _present(self) -> bool:
        c = self.client
        if not c.has_collection(self.records_name):
            return False
        self._check_schema()
        if not c.has_collection(self.files_name):
            return False
        self._ensure_loaded()
        return bool(c.query(self.files_name, ids=["meta"], output_fields=["key"]))

    def _create(self, meta: IndexMeta | None) -> None:
        """Create what is missing (a first run may have stopped half-way), FLAT (exact) to begin with;
        without `meta` only the files collection (a new index whose model is not known yet)."""
        from pymilvus import DataType, MilvusClient

        c = self.client
        if meta is None:
            pass
        elif c.has_collection(self.records_name):
            fields = {f["name"]: f for f in c.describe_collection(self.records_name)["fields"]}
            dim = int(fields["vector"].get("params", {}).get("dim", meta.dim))
            if dim != meta.dim:
                raise StoreError(f"the collection {self.records_name} at {self.location} holds {dim}-dimensional "
                                 f"vectors, not {meta.dim}: drop it or choose another collection")
        else:
            s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                           description="qvl index records")
            s.add_field("id", DataType.INT64, is_primary=True)
            s.add_field("path_key", DataType.VARCHAR, max_length=32)
            s.add_field("path", DataType.VARCHAR, max_length=PATH_MAX)
            s.add_field("modality", DataType.VARCHAR, max_length=16)
            s.add_field("page", DataType.INT64, nullable=True)
            s.add_field("t_start", DataType.DOUBLE, nullable=True)
            s.add_field("t_end", DataType.DOUBLE, nullable=True)
            s.add_field("chunk", DataType.INT64, nullable=True)
            s.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX, nullable=True)
            s.add_field("content_hash", DataType.VARCHAR, max_length=128)
            s.add_field("mtime", DataType.DOUBLE)
            s.add_field("model", DataType.VARCHAR, max_length=PATH_MAX)
            s.add_field("instruction", DataType.VARCHAR, max_length=TEXT_MAX)
            s.add_field("dim", DataType.INT64)
            s.add_field("date", DataType.DOUBLE, nullable=True)
            s.add_field("vector", DataType.FLOAT_VECTOR, dim=meta.dim)
            params = c.prepare_index_params()
            params.add_index("vector", index_name="vector", index_type="FLAT", metric_type="IP")
            c.create_collection(self.records_name, schema=s, index_params=params, consistency_level="Strong")
            self._check_schema()
        if not c.has_collection(self.files_name):
            s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                           description="qvl index files and metadata")
            s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
            s.add_field("kind", DataType.VARCHAR, max_length=8)  # file, meta or lock
            s.add_field("path", DataType.VARCHAR, max_length=PATH_MAX)
            s.add_field("status", DataType.VARCHAR, max_length=16)
            s.add_field("state", DataType.VARCHAR, max_length=TEXT_MAX)
            s.add_field("dummy", DataType.FLOAT_VECTOR, dim=2)
            params = c.prepare_index_params()
            params.add_index("dummy", index_type="FLAT", metric_type="L2")
            c.create_collection(self.files_name, schema=s, index_params=params, consistency_level="Strong")
        self._ensure_loaded()

    def _check_schema(self) -> None:
        fields = {f["name"]: f for f in self.client.describe_collection(self.records_name)["fields"]}
        missing = set(RECORD_FIELDS) | {"path_key", "vector"}
        if not missing <= set(fields):
            raise StoreError(f"the collection {self.records_name} at {self.location} was not made by qvl index "
                             f"(it lacks {', '.join(sorted(missing - set(fields)))}): choose another collection")

    def _ensure_loaded(self) -> None:
        for name in (self.records_name, self.files_name):
            if self.client.has_collection(name):
                _load(self.client, name)

    # metadata ----------------------------------------------------------------------------------
    def _load_meta(self, meta: IndexMeta | None) -> IndexMeta:
        rows = self.client.query(self.files_name, ids=["meta"], output_fields=["state"])
        if not rows:
            if meta is None:
                raise StoreError(f"no index at {self.location}: build one with "
                                 f"`qvl index PATH... --db {self.location}`")
            self._put_meta(meta)
            return meta
        stored = IndexMeta.from_json(json.loads(rows[0]["state"]))
        if stored.version > SCHEMA_VERSION:
            raise StoreError(f"the index at {self.location} was written by a newer qvl (schema {stored.version}); "
                             f"upgrade qwen3-vl-embedding to read it")
        return stored

    def _put_meta(self, meta: IndexMeta) -> None:
        self.upsert_files([{"key": "meta", "kind": "meta", "path": "", "status": "",
                             "state": json.dumps(meta.to_json())}])

    def upsert_files(self, rows: list[dict]) -> None:
        """Insert or replace rows of the files collection (files, 'meta', 'lock')."""
        self.client.upsert(self.files_name, [{**r, "dummy": [0.0, 0.0]} for r in rows])

    # writing -----------------------------------------------------------------------------------
    def _writer(self) -> Any:
        if not self.writable:
            raise StoreError(f"the index at {self.location} was opened for reading")
        if self._lease is not None:
            self._lease.check()
        return self.client

    @milvus_errors
    def file_states(self) -> dict[str, FileState]:
        rows = self._query_all(self.files_name, 'kind == "file"', ["state"])
        states = (FileState(**json.loads(r["state"])) for r in rows)
        return {s.path: s for s in states}

    @milvus_errors
    def record_ids(self, path: str, content_hash: str | None = None) -> set[int]:
        expr = f'path_key == "{path_key(path)}"'
        if content_hash is not None:
            expr += f' and content_hash == "{_quoted(content_hash)}"'
        return {r["id"] for r in self._query_all(self.records_name, expr, ["id"])}

    @milvus_errors
    def update_settings(self, changes: dict) -> None:
        self._writer()
        self.meta = dataclasses.replace(self.meta, settings={**self.meta.settings, **changes})
        self._put_meta(self.meta)

    def put_file(self, state: FileState, drop_records: bool = False) -> None:
        self._writer()
        if drop_records:
            self._delete_records([path_key(state.path)])
        self.upsert_files([{"key": path_key(state.path), "kind": "file", "path": state.path, "status": state.status,
                             "state": json.dumps(dataclasses.asdict(state))}])

    def _delete_records(self, keys: Sequence[str]) -> int:
        if self.meta is None:  # a new index without records yet
            return 0
        removed = 0
        for part in _chunks(list(keys), 256):
            expr = "path_key in [" + ", ".join(f'"{k}"' for k in part) + "]"
            n = self._count(self.records_name, expr)
            if n:
                self.client.delete(self.records_name, filter=expr)
                removed += n
        return removed

    @milvus_errors
    def delete_records(self, ids: Iterable[int]) -> int:
        client = self._writer()
        removed = 0
        for part in _chunks([int(i) for i in ids], 256):
            removed += len(client.query(self.records_name, ids=list(part), output_fields=["id"]))
            client.delete(self.records_name, ids=list(part))
        return removed

    @milvus_errors
    def delete_paths(self, paths: Iterable[str]) -> int:
        self._writer()
        keys = [path_key(p) for p in paths]
        removed = self._delete_records(keys)
        for part in _chunks(keys, 256):
            self.client.delete(self.files_name, ids=list(part))
        return removed

    @milvus_errors
    def add(self, records: Sequence[Record], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(records), self.meta.dim):
            raise ValueError(f"expected vectors of shape ({len(records)}, {self.meta.dim}), got {vectors.shape}")
        client = self._writer()
        latest = {r.id: i for i, r in enumerate(records)}  # one row per id: the last one wins, as in SQLite
        rows = [_row(records[i], vectors[i], self.has_date) for i in sorted(latest.values())]
        for part in _chunks(rows, WRITE_ROWS):
            client.upsert(self.records_name, list(part))

    # reading -----------------------------------------------------------------------------------
    def _count(self, collection: str, expr: str = "") -> int:
        rows = self.client.query(collection, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _query_all(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict]:
        """Every row matching `expr`: a page at a time from a server (whose queries return at most 16,384
        rows); at once from Milvus Lite, which has no such cap (nor the timestamps iterators need)."""
        if self.where.lite:
            yield from self.client.query(collection, filter=expr, output_fields=fields)
            return
        it = self.client.query_iterator(collection, batch_size=QUERY_PAGE, filter=expr, output_fields=fields)
        try:
            while page := it.next():
                yield from page
        finally:
            it.close()

    @milvus_errors
    def scan(self, filters: Filters | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        filters = filters or Filters()
        expr = filter_expression(filters, self.has_date) or "id >= 0"
        ids: list[int] = []
        vecs: list[Any] = []
        for row in self._query_all(self.records_name, expr, [*self._fields, "vector"]):
            if filters.path_globs and not filters.matches(_record(row)):
                continue  # LIKE is a superset of the glob
            ids.append(int(row["id"]))
            vecs.append(row["vector"])
            if len(ids) == QUERY_PAGE:
                yield np.asarray(ids, np.int64), np.asarray(vecs, np.float32)
                ids, vecs = [], []
        if ids:
            yield np.asarray(ids, np.int64), np.asarray(vecs, np.float32)

    @milvus_errors
    def count(self) -> dict[str, int]:
        counts = {m: self._count(self.records_name, f'modality == "{m}"') for m in MODALITIES}
        return {m: n for m, n in counts.items() if n}

    @milvus_errors
    def ids(self) -> list[int]:
        """Every record id."""
        return [r["id"] for r in self._query_all(self.records_name, "id >= 0", ["id"])]

    @milvus_errors
    def records(self, ids: Sequence[int]) -> dict[int, Record]:
        out: dict[int, Record] = {}
        for part in _chunks(list(ids), 1024):
            out.update((r["id"], _record(r)) for r in self.client.query(self.records_name, ids=list(part),
                                                                          output_fields=self._fields))
        return out

    @milvus_errors
    def records_of(self, path: str) -> list[Record]:
        rows = self._query_all(self.records_name, f'path_key == "{path_key(path)}"', self._fields)
        return sorted((_record(r) for r in rows if r["path"] == path),
                      key=lambda r: (r.page or 0, r.start or 0.0, r.chunk or 0))

    @milvus_errors
    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored float32 vectors of `ids` (those present)."""
        out: dict[int, np.ndarray] = {}
        for part in _chunks(list(ids), 1024):
            for r in self.client.query(self.records_name, ids=list(part), output_fields=["vector"]):
                out[r["id"]] = np.asarray(r["vector"], np.float32)
        return out

    # search ------------------------------------------------------------------------------------
    @milvus_errors
    def index_type(self) -> str:
        """The vector index Milvus searches (FLAT below the exact threshold)."""
        now = time.monotonic()
        if self._index is None or now - self._index[0] > INDEX_RECHECK_SECONDS:
            info = self.client.describe_index(self.records_name, "vector") or {}
            self._index = (now, str(info.get("index_type", "FLAT")).upper())
        return self._index[1]

    @milvus_errors
    def search(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None, nprobe: int | None = None,
               ef: int | None = None) -> list[Hit]:
        """The k records most similar to `vector` that pass `filters`, with exact cosine scores (the stored
        float vectors of the candidates Milvus returns, rescored here)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = np.asarray(vector, np.float32).reshape(-1)
        if query.shape[0] != self.meta.dim:
            raise ValueError(f"the query vector has {query.shape[0]} dimensions, the index {self.meta.dim}")
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        filters = filters or Filters()
        expr = filter_expression(filters, self.has_date)
        index = self.index_type()
        exact = index not in QUANTISED and all(like_is_exact(g) for g in filters.path_globs)
        fetch = k if exact else max(4 * k, 40)
        while True:
            fetch = min(fetch, MAX_TOPK)
            found = self.client.search(self.records_name, data=[query.tolist()], limit=fetch, filter=expr,
                                       anns_field="vector", output_fields=[*self._fields, "vector"],
                                       search_params={"metric_type": "IP", "params": _search_params(index, fetch,
                                                                                                    nprobe, ef)})[0]
            rows = [h["entity"] for h in found]
            kept = [(_record(r), np.asarray(r["vector"], np.float32)) for r in rows]
            kept = [(rec, v) for rec, v in kept if filters.matches(rec)]
            if len(kept) >= k or len(rows) < fetch or fetch >= MAX_TOPK:
                break
            fetch *= 4  # the LIKE superset or the quantised codes left too few: widen the net
        if not kept:
            return []
        scores = np.stack([v for _, v in kept]) @ query
        order = sorted(range(len(kept)), key=lambda i: (-float(scores[i]), kept[i][0].id))[:k]
        return [Hit(kept[i][0], float(scores[i])) for i in order]

    # the vector index --------------------------------------------------------------------------
    @milvus_errors
    def optimize(self, rebuild: bool = False, precision: str | None = None) -> None:
        """Seal the rows added (Milvus indexes sealed segments), and keep the vector index FLAT (exact)
        below the exact threshold, the precision's index above it; `rebuild` builds it afresh (with new
        codes for good when `precision` is given)."""
        self._writer()
        if self.meta is None:  # a new index that never got its model: nothing to index yet
            return
        if rebuild and precision and precision != self.meta.precision:
            if precision not in ANN_INDEX:
                raise ValueError(f"the Milvus store indexes {', '.join(ANN_INDEX)} vectors, not {precision!r}")
            self.meta = dataclasses.replace(self.meta, precision=precision)
            self._put_meta(self.meta)
        n = self._count(self.records_name)
        if n < max(self.meta.exact_threshold, MIN_ANN_VECTORS):
            want, params = "FLAT", {}
        else:
            want, params = ANN_INDEX[self.meta.precision]
        self._index = None
        self.client.flush(self.records_name)  # seal what was added, so that the vector index covers it
        if want != self.index_type() or (rebuild and want != "FLAT"):
            self._switch_index(want, params)

    def _switch_index(self, index_type: str, params: dict) -> None:
        """Drop the vector index and build `index_type` (searches wait while Milvus builds it)."""
        c = self.client
        logger.info("building a Milvus %s index on %s", index_type, self.records_name)
        c.release_collection(self.records_name)
        c.drop_index(self.records_name, "vector")
        index_params = c.prepare_index_params()
        index_params.add_index("vector", index_name="vector", index_type=index_type, metric_type="IP", params=params)
        c.create_index(self.records_name, index_params)
        c.load_collection(self.records_name)
        self._index = None

    # facts -------------------------------------------------------------------------------------
    @milvus_errors
    def describe(self) -> dict[str, Any]:
        counts = self.count() if self.meta is not None else {}
        files = {s: n for s in ("partial", "done", "failed")
                 if (n := self._count(self.files_name, f'kind == "file" and status == "{s}"'))}
        failed = sorted(({"path": r["path"], "error": json.loads(r["state"]).get("error")}
                         for r in self._query_all(self.files_name, 'kind == "file" and status == "failed"',
                                                  ["path", "state"])), key=lambda f: f["path"])
        index = self.index_type() if self.meta is not None else "FLAT"
        ann = None
        if index != "FLAT":
            info = self.client.describe_index(self.records_name, "vector") or {}
            ann = {"backend": "milvus", "index_type": index, "precision": self.meta.precision,
                   "vectors": sum(counts.values()), "params": {k: v for k, v in info.items()
                                                               if k not in ("field_name", "index_name", "state",
                                                                            "index_type", "metric_type")}}
        size = _folder_size(self.where.uri) if self.where.lite else None
        return {"location": self.location, "records": sum(counts.values()), "by_modality": counts, "files": files,
                "failed_files": failed, "size_bytes": size, "ann": ann}

    def close(self) -> None:
        if self._lease is not None:
            try:
                self._lease.release()
            finally:
                self._lease = None
        client, self.client = getattr(self, "client", None), None
        if client is not None:
            disconnect(self.where, client)


def _load(client: Any, name: str) -> None:
    """Load a collection into memory unless it is (a server, or Lite after a restart, starts with them released)."""
    state = str(client.get_load_state(name).get("state", ""))
    if not state.endswith("Loaded"):
        client.load_collection(name)


def _search_params(index: str, fetch: int, nprobe: int | None, ef: int | None) -> dict:
    if index.startswith("HNSW"):
        return {"ef": max(ef or 64, fetch)}
    if index.startswith("IVF"):
        return {"nprobe": nprobe or DEFAULT_NPROBE}
    return {}


def _row(r: Record, vector: np.ndarray, has_date: bool = True) -> dict:
    text = r.text
    if text is not None and len(text.encode("utf-8", "surrogatepass")) > TEXT_MAX:
        text = text.encode("utf-8", "surrogatepass")[:TEXT_MAX].decode("utf-8", "ignore")
    row = {"id": r.id, "path_key": path_key(r.path), "path": r.path, "modality": r.modality, "page": r.page,
           "t_start": r.start, "t_end": r.end, "chunk": r.chunk, "text": text, "content_hash": r.content_hash,
           "mtime": r.mtime, "model": r.model, "instruction": r.instruction, "dim": r.dim,
           "vector": vector.tolist()}
    if has_date:
        row["date"] = r.date
    return row


def _record(row: dict) -> Record:
    return Record(int(row["id"]), row["path"], row["modality"], row["content_hash"], float(row["mtime"]),
                  row["model"], row["instruction"], int(row["dim"]), row.get("page"), row.get("t_start"),
                  row.get("t_end"), row.get("chunk"), row.get("text"), row.get("date"))


def _quoted(value: str) -> str:
    """A string for a double-quoted Milvus filter literal."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _chunks(seq: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _folder_size(folder: str) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total



"""Evaluation datasets from local files: queries with instructions, candidates, graded qrels.

One dataset is one folder::

    my_dataset/
      dataset.json      {"name": "...", "category": "image" | "video" | "visdoc" | any other,
                         "ranking": "global" | "local", "instruction": "task instruction for queries",
                         "task": "retrieval" (optional sub-category), "metric": "hit@1" (optional headline
                         override), "rerank_instruction": "..." (optional)}
      queries.jsonl     one query per line: {"id", "item", "instruction"?, "candidates"?,
                                             "qrels"? | "labels"? + "grades"?}
      corpus.jsonl      one candidate per line: {"id", "item"}
      qrels.jsonl       optional: {"query_id", "doc_id", "grade"} per line (or qrels.tsv: query-id, corpus-id, score)

Each ``.jsonl`` file may be a ``.parquet`` file with the same columns (there `item` is a JSON string).
An input item is anything the embedder accepts (a string, an official dict, a chat-content dict); a
row may give ``text`` / ``image`` / ``video`` columns instead of ``item``. Relative media paths are
resolved against the dataset folder.

``ranking``: ``global`` ranks every query against the whole corpus; ``local`` ranks each query's own
``candidates`` (ids into the corpus), as MMEB-v2 classification and QA tasks do. Relevance comes from
qrels.jsonl, or per query from ``qrels`` ({doc_id: grade}) or ``labels`` (ids, grade 1) with optional
``grades`` paired with ``labels`` by position in the same row; grades are then looked up by document id.
A folder without dataset.json whose sub-folders hold one is a collection of datasets.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .metrics import METRICS

HEADLINE_METRICS = {"image": "hit@1", "video": "hit@1", "visdoc": "ndcg_linear@5"}
DEFAULT_HEADLINE = "ndcg_linear@10"
RANKINGS = ("global", "local")
MEDIA_KEYS = ("image", "video", "image_url", "video_url")


@dataclass(frozen=True)
class Query:
    id: str
    item: Any
    instruction: str | None = None
    candidates: tuple[str, ...] | None = None


@dataclass(frozen=True)
class EvalDataset:
    """One dataset: queries, a corpus of candidates by id, and graded qrels by query id."""

    name: str
    category: str
    queries: tuple[Query, ...]
    corpus: Mapping[str, Any]
    qrels: Mapping[str, Mapping[str, float]]
    ranking: str = "global"
    instruction: str | None = None
    task: str | None = None
    metric: str | None = None
    rerank_instruction: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.ranking not in RANKINGS:
            raise ValueError(f"dataset {self.name!r}: ranking must be one of {RANKINGS}, got {self.ranking!r}")
        name, _, k = self.headline_metric.partition("@")
        if name not in METRICS or not k.isdigit() or int(k) < 1:
            raise ValueError(f"dataset {self.name!r}: metric must be one of {METRICS} with a cut-off, such as "
                             f"'hit@1' or 'ndcg_linear@5'; got {self.headline_metric!r}")
        ids = set(self.corpus)
        for q in self.queries:
            if self.ranking == "local" and not q.candidates:
                raise ValueError(f"dataset {self.name!r}: query {q.id!r} has no candidates, which local ranking needs")
            missing = [c for c in q.candidates or () if c not in ids]
            if missing:
                raise ValueError(f"dataset {self.name!r}: query {q.id!r} lists candidates not in the corpus: "
                                 f"{missing[:5]}")

    @property
    def headline_metric(self) -> str:
        """hit@1 for image and video datasets, ndcg_linear@5 for visual documents (MMEB-v2), else the override."""
        return self.metric or HEADLINE_METRICS.get(self.category, DEFAULT_HEADLINE)

    def query_instruction(self, query: Query) -> str | None:
        return query.instruction or self.instruction


def pair_labels(labels: Sequence[str], grades: Sequence[float] | None = None) -> dict[str, float]:
    """{doc_id: grade} from a row's labels and grades, paired by position in that row.

    A label listed twice keeps its highest grade. (The reference harness de-duplicates the labels
    through a set and then pairs them with the grades by position, which misaligns them.)"""
    if grades is None:
        grades = [1.0] * len(labels)
    if len(grades) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(grades)} grades; give one grade per label")
    out: dict[str, float] = {}
    for label, grade in zip(labels, grades):
        out[str(label)] = max(float(grade), out.get(str(label), float("-inf")))
    return out


# reading -------------------------------------------------------------------------------------------
def _rows(folder: str, stem: str, required: bool = True) -> tuple[list[dict], bool] | None:
    """Rows of `stem`.jsonl or `stem`.parquet in `folder` and whether they came from Parquet."""
    jsonl, parquet = os.path.join(folder, stem + ".jsonl"), os.path.join(folder, stem + ".parquet")
    if os.path.isfile(jsonl):
        with open(jsonl, encoding="utf-8") as f:
            try:
                return [json.loads(line) for line in f if line.strip()], False
            except json.JSONDecodeError as e:
                raise ValueError(f"{jsonl}: line is not valid JSON ({e})") from None
    if os.path.isfile(parquet):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(f"reading {parquet} needs pyarrow: pip install pyarrow") from None
        return pq.read_table(parquet).to_pylist(), True
    if required:
        raise FileNotFoundError(f"{folder} has neither {stem}.jsonl nor {stem}.parquet")
    return None


def resolve_path(value: Any, folder: str) -> Any:
    """A relative media path (or list of them) made absolute against `folder`; URLs and data URIs as is."""
    if isinstance(value, str) and value and not os.path.isabs(value) and "://" not in value \
            and not value.startswith("data:"):
        return os.path.normpath(os.path.join(folder, value))
    if isinstance(value, list):
        return [resolve_path(v, folder) for v in value]
    return value


def resolve_media(item: Any, folder: str) -> Any:
    """The item with relative image/video paths made absolute against `folder`."""
    if isinstance(item, Mapping):
        out = {}
        for key, value in item.items():
            if key in MEDIA_KEYS:
                out[key] = resolve_path(value, folder)
            elif key == "content" and isinstance(value, list):
                out[key] = [resolve_media(part, folder) for part in value]
            else:
                out[key] = value
        return out
    return item


def _item(row: Mapping[str, Any], folder: str, from_parquet: bool, where: str) -> Any:
    if row.get("item") is not None:
        item = row["item"]
        if from_parquet and isinstance(item, str):
            try:
                item = json.loads(item)
            except json.JSONDecodeError:
                raise ValueError(f"{where}: in Parquet the 'item' column holds JSON ({item[:60]!r})") from None
    else:
        item = {k: row[k] for k in ("text", "image", "video") if row.get(k) not in (None, "", [])}
        if not item:
            raise ValueError(f"{where}: the row has no 'item' and no text/image/video column")
    return resolve_media(item, folder)


def _row_id(row: Mapping[str, Any], where: str) -> str:
    for key in ("id", "_id"):
        if row.get(key) is not None:
            return str(row[key])
    raise ValueError(f"{where}: the row has no 'id'")


def read_qrels_tsv(path: str) -> dict[str, dict[str, float]]:
    """BEIR qrels: query-id, corpus-id, score per line (tab separated, optional header)."""
    qrels: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            if not row or row[0] in ("query-id", "query_id"):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}: a qrels line needs query-id and corpus-id, got {row!r}")
            qrels.setdefault(row[0], {})[row[1]] = float(row[2]) if len(row) > 2 else 1.0
    return qrels


def _read_qrels_file(folder: str) -> dict[str, dict[str, float]]:
    tsv = os.path.join(folder, "qrels.tsv")
    if os.path.isfile(tsv):
        return read_qrels_tsv(tsv)
    qrels: dict[str, dict[str, float]] = {}
    found = _rows(folder, "qrels", required=False)
    for row in (found[0] if found else []):
        grades = qrels.setdefault(str(row["query_id"]), {})
        doc = str(row["doc_id"])
        grades[doc] = max(float(row.get("grade", 1)), grades.get(doc, float("-inf")))
    return qrels


def is_dataset_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "dataset.json"))


def load_dataset(folder: str) -> EvalDataset:
    """One dataset folder in the layout above."""
    folder = os.path.abspath(os.path.expanduser(folder))
    if not is_dataset_folder(folder):
        raise FileNotFoundError(f"{folder} has no dataset.json; see docs/evaluation.md (or "
                                f"qwen3_vl_embedding.evaluation.datasets) for the layout")
    with open(os.path.join(folder, "dataset.json"), encoding="utf-8") as f:
        meta = json.load(f)
    name = str(meta.get("name") or os.path.basename(folder))
    corpus_rows, corpus_pq = _rows(folder, "corpus")
    corpus = {}
    for i, row in enumerate(corpus_rows):
        where = f"{name}/corpus row {i}"
        corpus[_row_id(row, where)] = _item(row, folder, corpus_pq, where)
    qrels = _read_qrels_file(folder)
    query_rows, query_pq = _rows(folder, "queries")
    queries = []
    for i, row in enumerate(query_rows):
        where = f"{name}/queries row {i}"
        qid = _row_id(row, where)
        if row.get("qrels"):
            qrels.setdefault(qid, {}).update({str(d): float(g) for d, g in row["qrels"].items()})
        elif row.get("labels") is not None:
            qrels.setdefault(qid, {}).update(pair_labels(list(row["labels"]), row.get("grades")))
        candidates = row.get("candidates")
        queries.append(Query(qid, _item(row, folder, query_pq, where), row.get("instruction") or None,
                             tuple(str(c) for c in candidates) if candidates else None))
    known = {"name", "category", "ranking", "instruction", "task", "metric", "rerank_instruction"}
    return EvalDataset(
        name=name, category=str(meta.get("category", "other")).lower(), queries=tuple(queries), corpus=corpus,
        qrels=qrels, ranking=meta.get("ranking", "global"), instruction=meta.get("instruction"),
        task=meta.get("task"), metric=meta.get("metric"), rerank_instruction=meta.get("rerank_instruction"),
        extra={k: v for k, v in meta.items() if k not in known})


def find_dataset_folders(path: str) -> list[str]:
    """`path` itself when it is a dataset folder, else its sub-folders that are (sorted)."""
    path = os.path.abspath(os.path.expanduser(path))
    if is_dataset_folder(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} does not exist")
    found = sorted(os.path.join(path, d) for d in os.listdir(path) if is_dataset_folder(os.path.join(path, d)))
    if not found:
        raise FileNotFoundError(f"{path} holds no dataset.json and no sub-folder with one; "
                                f"see qwen3_vl_embedding.evaluation.datasets for the layout")
    return found


def load_datasets(paths: str | Iterable[str]) -> list[EvalDataset]:
    """Datasets from dataset folders or collection folders."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    return [load_dataset(folder) for p in paths for folder in find_dataset_folders(p)]


# writing -------------------------------------------------------------------------------------------
def write_dataset(dataset: EvalDataset, folder: str) -> str:
    """Write `dataset` as JSONL in the layout above (media paths are written as given)."""
    os.makedirs(folder, exist_ok=True)
    meta = {"name": dataset.name, "category": dataset.category, "ranking": dataset.ranking,
            "instruction": dataset.instruction, "task": dataset.task, "metric": dataset.metric,
            "rerank_instruction": dataset.rerank_instruction, **dataset.extra}
    with open(os.path.join(folder, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in meta.items() if v is not None}, f, indent=2)
    with open(os.path.join(folder, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for doc_id, item in dataset.corpus.items():
            f.write(json.dumps({"id": doc_id, "item": item}) + "\n")
    with open(os.path.join(folder, "queries.jsonl"), "w", encoding="utf-8") as f:
        for q in dataset.queries:
            row: dict[str, Any] = {"id": q.id, "item": q.item}
            if q.instruction:
                row["instruction"] = q.instruction
            if q.candidates:
                row["candidates"] = list(q.candidates)
            f.write(json.dumps(row) + "\n")
    with open(os.path.join(folder, "qrels.jsonl"), "w", encoding="utf-8") as f:
        for qid, grades in dataset.qrels.items():
            for doc_id, grade in grades.items():
                f.write(json.dumps({"query_id": qid, "doc_id": doc_id, "grade": grade}) + "\n")
    return folder

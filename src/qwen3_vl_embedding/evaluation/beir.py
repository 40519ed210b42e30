"""BEIR-style retrieval evaluation (queries, corpus, qrels files) and a sweep over dim and precision.

Layout (the BEIR one, with optional images)::

    my_corpus/
      corpus.jsonl     {"_id", "title"?, "text"?, "image"?}   image: a path relative to the folder, or a URL
      queries.jsonl    {"_id", "text"?, "image"?}
      qrels/test.tsv   query-id <TAB> corpus-id <TAB> score, with a header line

A corpus row becomes ``{"text": title + " " + text, "image": ...}``; only queries with qrels in the
split are kept. The sweep embeds once at the full dimension (cached) and derives every Matryoshka
dimension and storage precision from those vectors, then plots score against index size.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..pooling import MIN_DIM, check_dim
from .cache import EmbeddingCache
from .datasets import EvalDataset, Query, read_qrels_tsv, resolve_path
from .metrics import DEFAULT_KS, check_ks, retrieval_metrics
from .runner import embed_dataset, rank_dataset
from .scoring import bytes_per_vector

BEIR_METRIC = "ndcg_linear@10"
DEFAULT_PRECISIONS = ("float32", "float16", "int8", "binary")


def _beir_item(row: dict[str, Any], folder: str) -> Any:
    text = " ".join(str(row[k]).strip() for k in ("title", "text") if row.get(k)).strip()
    item: dict[str, Any] = {}
    if row.get("image"):
        item["image"] = resolve_path(row["image"], folder)
    if text:
        item["text"] = text
    if not item:
        raise ValueError(f"{folder}: row {row.get('_id')!r} has no title, text or image")
    return item


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing; a BEIR folder holds corpus.jsonl, queries.jsonl and "
                                f"qrels/<split>.tsv")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def is_beir_folder(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, p)) for p in ("corpus.jsonl", "queries.jsonl", "qrels"))


def load_beir(folder: str, split: str = "test", *, name: str | None = None, instruction: str | None = None,
              category: str | None = None, metric: str = BEIR_METRIC) -> EvalDataset:
    """A BEIR folder as a global-ranking `EvalDataset` (category "image" when the corpus has images)."""
    folder = os.path.abspath(os.path.expanduser(folder))
    qrels_dir = os.path.join(folder, "qrels")
    if not os.path.isfile(os.path.join(qrels_dir, f"{split}.tsv")):
        splits = sorted(f[:-4] for f in os.listdir(qrels_dir) if f.endswith(".tsv")) if os.path.isdir(qrels_dir) else []
        raise FileNotFoundError(f"{qrels_dir}/{split}.tsv is missing (splits found: {splits or 'none'})")
    corpus_rows = _read_jsonl(os.path.join(folder, "corpus.jsonl"))
    corpus = {str(r["_id"]): _beir_item(r, folder) for r in corpus_rows}
    qrels = read_qrels_tsv(os.path.join(qrels_dir, f"{split}.tsv"))
    query_rows = _read_jsonl(os.path.join(folder, "queries.jsonl"))
    queries = tuple(Query(str(r["_id"]), _beir_item(r, folder)) for r in query_rows if str(r["_id"]) in qrels)
    if category is None:
        category = "image" if any(isinstance(i, dict) and "image" in i for i in corpus.values()) else "text"
    return EvalDataset(name=name or os.path.basename(folder), category=category, queries=queries, corpus=corpus,
                       qrels=qrels, ranking="global", instruction=instruction, task="retrieval", metric=metric)


# sweep ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    dim: int
    precision: str
    bytes_per_vector: int
    index_bytes: int
    score: float
    metrics: dict[str, float]


def default_dims(full: int) -> list[int]:
    """Powers of two from 64 up to the model's size, and the size itself."""
    dims, d = [], MIN_DIM
    while d < full:
        dims.append(d)
        d *= 2
    return dims + [full]


def sweep(embedder: Any, dataset: EvalDataset, *, dims: Iterable[int] | None = None,
          precisions: Sequence[str] = DEFAULT_PRECISIONS, metric: str | None = None, ks: Iterable[int] = DEFAULT_KS,
          cache: EmbeddingCache | None = None, show_progress: bool | None = None) -> list[SweepPoint]:
    """Score of `dataset` at every (dim, precision): one embedding pass at full size, the rest derived."""
    metric = metric or dataset.headline_metric
    ks = check_ks((*ks, int(metric.rsplit("@", 1)[1])))
    dims = sorted({check_dim(d, embedder.dim) for d in (dims or default_dims(embedder.dim))})
    vectors = embed_dataset(embedder, dataset, cache=cache, show_progress=show_progress)
    points = []
    for dim in dims:
        for precision in precisions:
            run = rank_dataset(dataset, vectors, dim=dim, precision=precision, depth=ks[-1])
            metrics = retrieval_metrics(run, dataset.qrels, ks)
            per = bytes_per_vector(dim, precision)
            points.append(SweepPoint(dim, precision, per, per * len(vectors.doc_ids), 100 * metrics[metric], metrics))
    return points


def sweep_markdown(points: Sequence[SweepPoint], metric: str = "score") -> str:
    lines = [f"| dim | precision | bytes/vector | index bytes | {metric} |", "|---|---|---|---|---|"]
    for p in points:
        lines.append(f"| {p.dim} | {p.precision} | {p.bytes_per_vector} | {p.index_bytes:,} | {p.score:.2f} |")
    return "\n".join(lines)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} GB"


def plot_sweep(points: Sequence[SweepPoint], path: str, *, title: str | None = None, metric: str = "score") -> str:
    """A PNG of score against index size, one line per precision, each point labelled with its dim."""
    return plot_sweeps([(points, title or f"{metric} against storage (labels: dim)", metric)], path)


def plot_sweeps(panels: Sequence[tuple[Sequence[SweepPoint], str, str]], path: str) -> str:
    """One PNG at `path` with a panel per (points, title, metric): several datasets' sweeps side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 (the formatter below)

    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4.5 * rows), dpi=120, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (points, title, metric) in zip(axes.flat, panels):
        for precision in dict.fromkeys(p.precision for p in points):
            line = sorted((p for p in points if p.precision == precision), key=lambda p: p.index_bytes)
            xs = [p.index_bytes for p in line]
            ax.plot(xs, [p.score for p in line], marker="o", label=precision)
            for p, x in zip(line, xs):
                ax.annotate(str(p.dim), (x, p.score), textcoords="offset points", xytext=(0, 5), ha="center",
                            fontsize=7)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: human_bytes(x)))
        ax.set_xlabel("index size (document vectors)")
        ax.set_ylabel(f"{metric} (x100)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(title="precision")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

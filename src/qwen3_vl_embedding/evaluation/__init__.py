"""Evaluation: retrieval metrics, local dataset layouts, the MMEB-v2-style runner, BEIR, mteb wrappers.

    from qwen3_vl_embedding.evaluation import retrieval_metrics, load_datasets, evaluate

Names are imported lazily, so importing this package loads neither numpy-heavy code nor mteb.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "retrieval_metrics": "metrics",
    "query_metrics": "metrics",
    "METRICS": "metrics",
    "EvalDataset": "datasets",
    "Query": "datasets",
    "load_dataset": "datasets",
    "load_datasets": "datasets",
    "write_dataset": "datasets",
    "pair_labels": "datasets",
    "evaluate": "runner",
    "EvalReport": "runner",
    "DatasetResult": "runner",
    "EmbeddingCache": "cache",
    "load_beir": "beir",
    "sweep": "beir",
    "plot_sweep": "beir",
    "plot_sweeps": "beir",
    "MTEBEncoder": "mteb_adapter",
    "MTEBCrossEncoder": "mteb_adapter",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

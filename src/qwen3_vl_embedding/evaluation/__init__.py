"""Evaluation: retrieval metrics, local dataset layouts, the MMEB-v2-style runner, BEIR, mteb wrappers.

    from qwen3_vl_embedding.evaluation import retrieval_metrics, load_datasets, evaluate

Names are imported lazily, so importing this package loads neither numpy-heavy code nor mteb.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

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
    "MTEBEncoder": "mteb_adapter",
    "MTEBCrossEncoder": "mteb_adapter",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

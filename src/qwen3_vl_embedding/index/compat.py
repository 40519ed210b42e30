"""Is this model the one that made the index? Dimension, size and a fingerprint of what it computes.
And which model to load for an index when none is named (`index_model`).

The model's name never decides alone: a hub id and a local copy of it are the same model. The index
keeps the model's embedding of FINGERPRINT_TEXT at its dim (`IndexMeta.fingerprint`); a model whose
embedding of it differs computes vectors that cannot be compared with the index's, and is refused.

The same model with other weights (int8 against as released: `IndexMeta.quantize`) computes close
but not equal vectors: it is accepted down to QUANTIZED_MIN_COSINE, with a warning.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any

import numpy as np

from ..constants import HUB_ID_PATTERN
from ..errors import ModelNotFoundError
from .store import IndexMeta, IndexMismatchError, Store

logger = logging.getLogger(__name__)

FINGERPRINT_TEXT = "qvl model fingerprint: a red kite above a harbour at dawn, 1 2 3."
FINGERPRINT_MIN_COSINE = 0.98  # the same weights in bfloat16 on a GPU and float32 on a CPU agree to > 0.99
# int8 weights against float ones, on the fingerprint: 0.99996 on the test checkpoint, 0.9997 on the
# "small" shape, 0.992 on the 2B shape with random weights (docs/benchmarks.md); another model is far below.
QUANTIZED_MIN_COSINE = 0.9
SAME = object()  # `quantize` not given: the index's


def weights(quantize: str | None) -> str:
    return f"{quantize} weights" if quantize else "the released (float) weights"


def fingerprint(embedder: Any, dim: int) -> tuple[float, ...]:
    """The model's embedding of FINGERPRINT_TEXT (default instruction) at `dim`."""
    vec = embedder.embed([{"text": FINGERPRINT_TEXT}], dim=dim, show_progress=False)[0]
    return tuple(float(x) for x in vec)


def check_compatible(meta: IndexMeta, model: str, dim: int | None, fp: tuple[float, ...] | None = None,
                     model_dim: int | None = None, quantize: Any = SAME) -> None:
    """Refuse (IndexMismatchError) a dimension or a model that differs from the index's.

    `dim` None means "whatever the index has". `fp` is the model's fingerprint at `meta.dim`, and
    `model_dim` its full size; the model's name alone never decides, so a local copy of the hub model
    is accepted. `quantize`: the model's weights (None or "int8"); when they are not the index's, a
    fingerprint down to QUANTIZED_MIN_COSINE is accepted with a warning."""
    how = f"use --model {meta.model} --dim {meta.dim} (what it was built with), or another --db"
    if dim is not None and dim != meta.dim:
        raise IndexMismatchError(f"the index was built with dim {meta.dim}, not {dim}: {how}")
    if model_dim is not None and model_dim < meta.dim:
        raise IndexMismatchError(f"the index was built with model {meta.model} (dim {meta.dim}); {model} makes "
                                 f"{model_dim}-dimensional embeddings: {how}")
    if fp is None or not meta.fingerprint:
        return
    a, b = np.asarray(meta.fingerprint, np.float32), np.asarray(fp, np.float32)
    cosine = float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12) if a.shape == b.shape else -1.0
    other_weights = quantize is not SAME and quantize != meta.quantize
    if cosine >= (QUANTIZED_MIN_COSINE if other_weights else FINGERPRINT_MIN_COSINE):
        if other_weights:
            match = f"with --quantize {meta.quantize}" if meta.quantize else "without --quantize"
            logger.warning("the index was made with %s and this model runs %s: its vectors are close to the "
                           "index's (fingerprint cosine %.6g) but not equal, so scores and rankings may differ "
                           "slightly; run %s to match the index", weights(meta.quantize), weights(quantize),
                           cosine, match)
        return
    raise IndexMismatchError(
        f"the index was built with model {meta.model} (dim {meta.dim}); {model} computes different "
        f"embeddings, so its vectors cannot be compared with the index's: {how}")


def verify_model(meta: IndexMeta, embedder: Any, fp: tuple[float, ...] | None = None) -> None:
    """Refuse (IndexMismatchError) an embedder that cannot extend or search the index: one that makes
    smaller vectors than the index's, or computes a different fingerprint. `fp`: the embedder's
    fingerprint at `meta.dim` when the caller has it already (else it is computed here)."""
    check_compatible(meta, embedder.name, None, model_dim=embedder.dim)
    if meta.fingerprint:
        check_compatible(meta, embedder.name, None, fp if fp is not None else fingerprint(embedder, meta.dim),
                         quantize=embedder.quantize)


MODEL_PLACE = "model_place"  # Store.value key: where the index's model folder lives now, when it moved


def model_to_record(model: str) -> str:
    """What a new index records as its model: a local folder as its absolute path, a hub id as given."""
    expanded = os.path.expanduser(model)
    return os.path.abspath(expanded) if os.path.isdir(expanded) else model


def index_model(store: Store) -> str:
    """The model that made the index, to load when none is named: a hub id, or the local folder it was
    built with (found again when the index named it by a relative path: from the working folder or the
    index's parent folder). A folder that is gone raises ModelNotFoundError saying what to pass."""
    recorded = store.value(MODEL_PLACE) or store.meta.model
    expanded = os.path.expanduser(recorded)
    if os.path.isabs(expanded):
        if os.path.isdir(expanded):
            return expanded
    else:
        parent = os.path.dirname(os.path.abspath(store.location)) if "://" not in store.location else None
        for base in filter(None, (os.getcwd(), parent)):
            if os.path.isdir(os.path.join(base, expanded)):
                return os.path.abspath(os.path.join(base, expanded))
        if re.fullmatch(HUB_ID_PATTERN, recorded):
            return recorded
    raise ModelNotFoundError(
        f"the index {store.location} was built with the model folder {recorded}, which is not there any more "
        f"(moved, deleted, or on the machine of the server that embedded it). Pass the folder where that model "
        f"is now: --model PATH (or set QVL_MODEL=PATH), or embed through a running qvl serve: --server URL; "
        f"the next `qvl index --model PATH` run on this index remembers the new place")


def remember_model_place(store: Store, model: str) -> None:
    """After `model` was checked against the index (its fingerprint), remember it as the place of the
    index's model when the recorded folder is gone (a writer only)."""
    try:
        index_model(store)
        return  # the recorded model is still found
    except ModelNotFoundError:
        pass
    place = model_to_record(model)
    if os.path.isdir(place):
        store.set_value(MODEL_PLACE, place)

"""Embedding with Ray Data: a fixed pool of actors, each holding one Qwen3VLEmbedder, fed rows in batches.

    ds = ray.data.from_items([{"image": "/data/a.jpg"}, {"text": "a kite at dawn"}])
    out = embed_dataset(ds, "Qwen/Qwen3-VL-Embedding-2B", dim=1024)     # lazy: runs when consumed
    out.write_parquet("/data/embeddings")      # the rows plus 'embedding' (float32) and 'error' ('' when fine)

Rows are the library's input dicts as columns (text, image, video, instruction, fps, max_frames), or
pickled inputs in the column PICKLED (what RayEmbedder sends). A row that cannot be embedded keeps its
place with a NaN embedding and the reason in 'error': nothing is dropped. Inside an actor the rows of
a call go through `Qwen3VLEmbedder.embed`, so they are packed under the token budget and their media
decoded on the actor's worker threads exactly as in one process.

Actors: one per GPU when the cluster has GPUs (several per GPU share it when more are asked for),
else CPU actors, one per node by default, each with an equal share of the CPUs (Ray sets their
OMP_NUM_THREADS, so torch uses that many threads).
"""
from __future__ import annotations

import logging
import math
import pickle
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import Qwen3VLError

PICKLED = "_qvl_input"  # a column of pickled library inputs
INPUT_KEYS = ("text", "image", "video", "instruction", "fps", "max_frames")
# Rows per actor call. Within a call the embedder packs batches by tokens and decodes media on its
# threads while the model runs, so a call should hold several forward passes; results come back (and
# are committed) a call at a time, so a call should not be long either.
DEFAULT_BATCH_ROWS = 128
INSTALL_HINT = 'distributed embedding needs Ray: pip install "qwen3-vl-embedding[ray]"'


class DistributedError(Qwen3VLError):
    """The Ray job failed or cannot start; the message says what to do."""


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return ray


def connect(address: str | None = None, *, verbose: bool = False, **init_options: Any):
    """The `ray` module, connected: to `address` (ray://HOST:10001, HOST:6379 or 'auto'), else to
    RAY_ADDRESS or a new local instance. An existing connection is kept as it is."""
    ray = require_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, log_to_driver=verbose,
                     logging_level=logging.INFO if verbose else logging.WARNING, **init_options)
        except ConnectionError as e:
            raise DistributedError(f"cannot connect to the Ray cluster at {address or 'RAY_ADDRESS'}: {e}") from None
    quiet_ray_data(not verbose)
    return ray


def quiet_ray_data(quiet: bool) -> None:
    """Ray Data's progress bars and per-run log lines: off unless verbose (qvl shows its own progress)."""
    ray = require_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = not quiet
    context.print_on_execution_start = not quiet
    logging.getLogger("ray.data").setLevel(logging.ERROR if quiet else logging.INFO)


# actors ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActorPlan:
    """How many embedding actors and what each one reserves."""

    actors: int
    num_cpus: float
    num_gpus: float = 0.0

    def options(self) -> dict[str, Any]:
        """Ray resource options of one actor."""
        return {"num_cpus": self.num_cpus, **({"num_gpus": self.num_gpus} if self.num_gpus else {})}


def plan_actors(node_cpus: Sequence[float], gpus: float, actors: int | None = None,
                device: str | None = None) -> ActorPlan:
    """One actor per GPU (more share a GPU), or CPU actors (one per node unless `actors` says). Each gets
    the most CPUs that still lets all of them be placed on the nodes: a CPU actor computes with them, a
    GPU actor decodes media with them. Pure: `node_cpus` has the CPUs of each alive node."""
    if actors is not None and actors < 1:
        raise ValueError(f"--ray-actors must be at least 1, got {actors}")
    cpus = [int(c) for c in node_cpus if c >= 1]
    use_gpu = gpus >= 1 and (device is None or device.startswith("cuda"))
    n = actors or (int(gpus) if use_gpu else max(1, len(cpus)))
    for per in range(max(cpus, default=0), 0, -1):
        if sum(c // per for c in cpus) >= n:
            return ActorPlan(n, float(per), min(1.0, math.floor(gpus) / n) if use_gpu else 0.0)
    raise DistributedError(f"{n} actors do not fit on this Ray cluster ({sum(cpus)} CPUs): ask for fewer "
                           f"with --ray-actors")


def cluster_plan(ray: Any, actors: int | None, device: str | None) -> ActorPlan:
    """`plan_actors` for the connected cluster."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
    return plan_actors([n.get("Resources", {}).get("CPU", 0) for n in nodes], gpus, actors, device)


class EmbedWorker:
    """One actor: loads the model once, then embeds a batch of rows per call (Ray Data's callable class)."""

    def __init__(self, model: str, dim: int | None = None, instruction: str | None = None,
                 model_options: dict | None = None, max_batch_tokens: int | None = None,
                 batch_size: int | None = None):
        from ..embedder import Qwen3VLEmbedder

        self.embedder = Qwen3VLEmbedder(model, **(model_options or {}))
        self.dim = dim or self.embedder.dim
        self.instruction = instruction
        self.batching = {"max_batch_tokens": max_batch_tokens, "batch_size": batch_size}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = batch_inputs(batch)
        errors = [""] * len(items)
        try:
            result = self.embedder.embed(items, dim=self.dim, instruction=self.instruction, on_error="skip",
                                         show_progress=False, **self.batching)
            vectors = np.asarray(result.embeddings, np.float32)
            for failure in result.failures:
                errors[failure.index] = failure.cause or "cannot be embedded"
        except Exception as e:  # the whole call failed: every row says why, none is dropped
            vectors = np.full((len(items), self.dim), np.nan, np.float32)
            errors = [f"{type(e).__name__}: {e}"] * len(items)
        out = {k: v for k, v in batch.items() if k != PICKLED}
        out["embedding"] = vectors
        out["error"] = np.array(errors, dtype=object)
        return out

    # the helper actor's calls (RayEmbedder) ------------------------------------------------------
    def facts(self) -> dict[str, Any]:
        """What the driver needs without loading the model itself."""
        e = self.embedder
        return {"dim": e.dim, "default_instruction": e.default_instruction, "max_pixels": e.max_pixels,
                "text_tokenizer": e.text_tokenizer, "device": str(e.device), "quantize": e.quantize}

    def embed(self, items: list, **options: Any) -> Any:
        return self.embedder.embed(items, show_progress=False, **options)


def batch_inputs(batch: dict[str, np.ndarray]) -> list[Any]:
    """The library inputs of a batch of rows: unpickled from PICKLED, or dicts of the input columns."""
    if PICKLED in batch:
        return [pickle.loads(bytes(b)) for b in batch[PICKLED]]
    keys = [k for k in INPUT_KEYS if k in batch]
    if not keys:
        raise ValueError(f"rows need a text, image or video column (the library's input dict), or {PICKLED!r}; "
                         f"got {sorted(batch)}")
    n = len(batch[keys[0]])
    return [{k: _plain(batch[k][i]) for k in keys if _present(batch[k][i])} for i in range(n)]


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, (str, bytes)) and not value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def embed_dataset(ds: Any, model: str, *, dim: int | None = None, instruction: str | None = None,
                  actors: int | None = None, device: str | None = None, dtype: str | None = None,
                  batch_rows: int = DEFAULT_BATCH_ROWS, max_batch_tokens: int | None = None,
                  batch_size: int | None = None, plan: ActorPlan | None = None, media_policy: Any = None,
                  quantize: str | None = None) -> Any:
    """`ds` with 'embedding' (float32, NaN rows for failures) and 'error' columns, computed by a pool of
    actors (see the module docstring); lazy, like every Ray Data transform. Ray must be connected.
    `media_policy`: what the actors may read (None: the library's default)."""
    ray = require_ray()
    plan = plan or cluster_plan(ray, actors, device)
    model_options = {k: v for k, v in (("device", device), ("dtype", dtype), ("media_policy", media_policy),
                                       ("quantize", quantize)) if v}
    return ds.map_batches(
        EmbedWorker, batch_size=batch_rows, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan.actors),
        fn_constructor_kwargs={"model": model, "dim": dim, "instruction": instruction, "model_options": model_options,
                               "max_batch_tokens": max_batch_tokens, "batch_size": batch_size},
        **plan.options())

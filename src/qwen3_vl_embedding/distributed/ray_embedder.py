"""`qvl index --ray`: the local Indexer, with the embedding done by a pool of Ray actors.

The driver (where `qvl index` runs) walks the folders, hashes new and changed files and splits them
into units with the local rules (index/ingest.py), exactly as a local run; `RayEmbedder.iter_embed`
ships the units' inputs (paths, page numbers, clip spans, chunk texts: never pixels) to the actors
through Ray Data, and the actors read, decode and embed them. Vectors stream back to the driver, which
writes them to the store as they arrive: the same records, ids, file states and commits as a local run,
so a run killed at any point resumes without duplicates, and local and Ray runs can alternate on one
index. Items that fail come back with their reason and are reported like local failures; a unit whose
result never comes back is reported as failed too. Files must be readable at the same paths on every
node (a shared file system).

    pool = RayEmbedder("Qwen/Qwen3-VL-Embedding-2B", address="auto")     # one actor per GPU
    report = index_with_ray(["/data/photos"], "milvus://milvus:19530/photos", pool)
"""
from __future__ import annotations

import pickle
from typing import Any, Iterable, Iterator

import numpy as np

from ..batching import Failure, RunStats
from ..errors import InputError
from .ray_data import (DEFAULT_BATCH_ROWS, PICKLED, DistributedError, EmbedWorker, cluster_plan, connect,
                       embed_dataset)


class RayEmbedder:
    """A `contracts.Embedder` on Ray: what the index needs of Qwen3VLEmbedder (name, dim, default_instruction,
    max_pixels, text_tokenizer, embed, iter_embed), with the embedding done by a pool of actors.

    A helper actor loads the model to answer the driver's questions (its size, tokenizer and pixel
    budget, the index fingerprint); it is freed when the pool starts, so it never holds a GPU the pool
    needs. `iter_embed` runs one Ray Data job over all the inputs it is given."""

    media_policy: Any = None  # what the actors may read (None: the library's default)
    quantize: str | None = None  # the actors' weights: None (as released) or "int8"

    def __init__(self, model: str, *, address: str | None = None, actors: int | None = None,
                 device: str | None = None, dtype: str | None = None, batch_rows: int = DEFAULT_BATCH_ROWS,
                 verbose: bool = False, media_policy: Any = None, quantize: str | None = None):
        self.ray = connect(address, verbose=verbose)
        self.name = str(model)
        self.device, self.dtype = device, dtype
        self.media_policy = media_policy
        self.quantize = quantize
        self.batch_rows = batch_rows
        self.plan = cluster_plan(self.ray, actors, device)
        self._helper: Any = None
        facts = self._call("facts")
        self.dim: int = facts["dim"]
        self.default_instruction: str = facts["default_instruction"]
        self.max_pixels: int = facts["max_pixels"]
        self.text_tokenizer = facts["text_tokenizer"]  # splits texts into chunks on the driver
        self.actor_device: str = facts["device"]

    @property
    def model_options(self) -> dict[str, Any]:
        return {k: v for k, v in (("device", self.device), ("dtype", self.dtype), ("media_policy", self.media_policy),
                                  ("quantize", self.quantize)) if v}

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._helper is None:
            actor = self.ray.remote(**self.plan.options())(EmbedWorker)
            self._helper = actor.remote(self.name, model_options=self.model_options)
        try:
            return self.ray.get(getattr(self._helper, method).remote(*args, **kwargs))
        except self.ray.exceptions.RayError as e:
            self.release()
            cause = getattr(e, "cause", None) or e
            if isinstance(cause, Exception) and not isinstance(cause, self.ray.exceptions.RayError):
                raise cause from None  # the model's own error (not found, bad dim...), as in one process
            raise DistributedError(f"the Ray actor loading {self.name} failed: {_summary(e)}") from None

    def release(self) -> None:
        """Free the helper actor (and its GPU)."""
        if self._helper is not None:
            self.ray.kill(self._helper)
            self._helper = None

    def embed(self, inputs: Iterable[Any], **options: Any) -> Any:
        """Qwen3VLEmbedder.embed on the helper actor: for small calls such as the index fingerprint."""
        options.pop("show_progress", None)
        return self._call("embed", list(inputs), **options)

    def iter_embed(self, inputs: Iterable[Any], *, dim: int | None = None, instruction: str | None = None,
                   on_error: str = "raise", stats: RunStats | None = None, max_batch_tokens: int | None = None,
                   batch_size: int | None = None, show_progress: bool | None = None, normalize: bool = True,
                   total: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (input position, float32 vector) as the actors finish batches, like Qwen3VLEmbedder.iter_embed.

        Failures go to `stats.failures` with `on_error="skip"` (every input is accounted for: those whose
        result never comes back fail too); with "raise" the first one raises InputError."""
        if not normalize:
            raise ValueError("RayEmbedder embeds normalised vectors only")
        stats = stats if stats is not None else RunStats()
        rows = [{"pos": i, PICKLED: pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL)} for i, x in enumerate(inputs)]
        self.release()
        if not rows:
            return
        # A block per actor call: each call's vectors come back as soon as it ends (Ray Data returns a
        # task's output when the task is done), so the driver stores and commits as the actors go. Small
        # runs are cut so that every actor has a share.
        per_call = max(1, min(self.batch_rows, -(-len(rows) // self.plan.actors)))
        blocks = -(-len(rows) // per_call)
        ds = embed_dataset(self.ray.data.from_items(rows, override_num_blocks=blocks), self.name, dim=dim,
                           instruction=instruction, device=self.device, dtype=self.dtype, batch_rows=per_call,
                           max_batch_tokens=max_batch_tokens, batch_size=batch_size, plan=self.plan,
                           media_policy=self.media_policy, quantize=self.quantize)
        missing = set(range(len(rows)))
        del rows
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for pos, vector, error in zip(batch["pos"].tolist(), batch["embedding"], batch["error"]):
                    if pos not in missing:
                        continue  # a batch that Ray ran twice
                    missing.discard(pos)
                    if error:
                        _fail(stats, pos, str(error), on_error)
                    else:
                        stats.items += 1
                        yield pos, np.asarray(vector, np.float32)
        except self.ray.exceptions.RayError as e:
            raise DistributedError(f"the Ray job failed: {_summary(e)}; what was embedded is stored: run the "
                                   f"same command again to go on") from None
        for pos in sorted(missing):
            _fail(stats, pos, "no result came back from the Ray job", on_error)


def _fail(stats: RunStats, pos: int, cause: str, on_error: str) -> None:
    if on_error == "raise":
        raise InputError(cause, index=pos)
    stats.failed += 1
    stats.failures.append(Failure(pos, None, cause))


def _summary(e: BaseException) -> str:
    """The last line of a Ray error (its tracebacks end with the cause)."""
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else type(e).__name__


def index_with_ray(paths: Iterable[str], db: str, embedder: RayEmbedder, *, dim: int | None = None,
                   options: Any = None, progress: Any = None):
    """Index `paths` into the store at `db` (created when absent) with `embedder`: the Python form of
    `qvl index PATH... --db DB --ray`. Returns the IndexReport; refuses an index made by another model
    or at another dim (IndexMismatchError)."""
    from ..index.indexer import IndexOptions
    from ..index.indexing import NewIndex, index_paths

    options = options or IndexOptions()
    return index_paths(paths, db, lambda model: embedder, model=embedder.name, options=options, progress=progress,
                       new=NewIndex(dim=dim, settings=options.ingest.settings()))

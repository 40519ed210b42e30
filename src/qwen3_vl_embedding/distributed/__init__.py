"""Scale out on Ray: embedding in a pool of actors (one per GPU, or CPU actors) fed by Ray Data.

    ray_data.py       connect(), plan_actors(), EmbedWorker (one model per actor), embed_dataset(ds, model)
    ray_embedder.py   RayEmbedder: the pool as an embedder for the Indexer (`qvl index --ray`), index_with_ray()

The vector store is chosen separately (`--db DIR`, `milvus://HOST:PORT/COLLECTION`, see
index/milvus_store.py); the driver writes to it with the same records, ids and incremental rules as
a local `qvl index`. Ray is an optional extra: `pip install "qwen3-vl-embedding[ray]"`. Nothing is
imported here until used, so `import qwen3_vl_embedding.distributed` does not import Ray.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {"DistributedError": "ray_data", "EmbedWorker": "ray_data", "connect": "ray_data",
            "embed_dataset": "ray_data", "plan_actors": "ray_data", "RayEmbedder": "ray_embedder",
            "index_with_ray": "ray_embedder"}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

"""Clustering: group pictures without labels, then compare the groups with their shapes and colours.

    python examples/clustering.py                                       # generated shapes
    python examples/clustering.py --model ./models/Qwen3-VL-Embedding-2B --method agglomerative
"""
from __future__ import annotations

import argparse
import os
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("QVL_MODEL", "Qwen/Qwen3-VL-Embedding-2B"))
    ap.add_argument("--method", choices=["kmeans", "agglomerative"], default="kmeans")
    ap.add_argument("--dim", type=int, default=None, help="Matryoshka dimension (default: full)")
    args = ap.parse_args()

    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.recipes import cluster, clustering_scores, demo_shapes

    embedder = Qwen3VLEmbedder(args.model)
    shapes = demo_shapes(tempfile.mkdtemp(prefix="qvl-shapes-"), per_pair=2)
    result = cluster(embedder, [{"image": s.path} for s in shapes], n_clusters=3, method=args.method, dim=args.dim,
                     instruction="Represent the picture for grouping by the shape it shows.")
    for c in sorted(set(result.labels.tolist())):
        members = [os.path.basename(s.path)[:-4] for s, lab in zip(shapes, result.labels) if lab == c]
        print(f"cluster {c}: {', '.join(members)}")
    # Each picture has a shape and a colour: the instruction asks for groups by shape, but the groups are
    # scored against both, so that the numbers say which one the model actually grouped by.
    by = {label: clustering_scores([getattr(s, label) for s in shapes], result.labels) for label in ("shape", "color")}
    for label, scores in by.items():
        print(f"against the {label}s: v-measure {scores['v_measure']:.3f}, ARI {scores['ari']:.3f}")
    followed = max(by, key=lambda label: by[label]["v_measure"])
    silhouette = "n/a" if result.silhouette is None else f"{result.silhouette:.3f}"
    print(f"the groups follow the {followed}s more closely (asked: shape); silhouette {silhouette}")


if __name__ == "__main__":
    main()

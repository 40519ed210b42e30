"""k-NN classification: label new pictures by their nearest labelled examples.

    python examples/knn_classification.py                              # generated shapes, 2 examples per class
    python examples/knn_classification.py --model ./models/Qwen3-VL-Embedding-2B --k 3
"""
from __future__ import annotations

import argparse
import os
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("QVL_MODEL", "Qwen/Qwen3-VL-Embedding-2B"))
    ap.add_argument("--k", type=int, default=3, help="neighbours that vote (default 3)")
    ap.add_argument("--dim", type=int, default=None, help="Matryoshka dimension (default: full)")
    args = ap.parse_args()

    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.recipes import demo_shapes, knn_classify

    embedder = Qwen3VLEmbedder(args.model)
    shapes = demo_shapes(tempfile.mkdtemp(prefix="qvl-shapes-"), per_pair=3)
    train = [s for s in shapes if not s.path.endswith("_2.png")]
    test = [s for s in shapes if s.path.endswith("_2.png")]
    predictions = knn_classify(embedder, [{"image": s.path} for s in train], [s.color for s in train],
                               [{"image": s.path} for s in test], k=args.k, dim=args.dim,
                               instruction="Represent the picture by its colour.")
    for s, pred in zip(test, predictions):
        print(f"{os.path.basename(s.path):22s} -> {pred.label:6s} (true: {s.color})  votes {pred.scores}")
    correct = sum(p.label == s.color for p, s in zip(predictions, test))
    print(f"accuracy: {correct}/{len(test)} with k={args.k} from {len(train)} labelled examples")


if __name__ == "__main__":
    main()

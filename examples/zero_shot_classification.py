"""Zero-shot classification: each picture takes the label whose description it is closest to.

    python examples/zero_shot_classification.py                       # generated pictures of coloured shapes
    python examples/zero_shot_classification.py --model ./models/Qwen3-VL-Embedding-2B --images a.jpg b.jpg
"""
from __future__ import annotations

import argparse
import os
import tempfile

LABELS = {
    "circle": "a picture of a round circle",
    "square": "a picture of a square with four equal sides",
    "triangle": "a picture of a triangle with three corners",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("QVL_MODEL", "Qwen/Qwen3-VL-Embedding-2B"))
    ap.add_argument("--images", nargs="*", help="image files (default: generated shapes)")
    ap.add_argument("--dim", type=int, default=None, help="Matryoshka dimension (default: full)")
    args = ap.parse_args()

    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.recipes import demo_shapes, zero_shot_classify

    embedder = Qwen3VLEmbedder(args.model)
    if args.images:
        images, truth = args.images, [None] * len(args.images)
    else:
        shapes = demo_shapes(tempfile.mkdtemp(prefix="qvl-shapes-"))
        images, truth = [s.path for s in shapes], [s.shape for s in shapes]
    predictions = zero_shot_classify(embedder, [{"image": p} for p in images], LABELS, dim=args.dim,
                                     instruction="Classify the shape shown in the picture.")
    for path, pred, true in zip(images, predictions, truth):
        mark = "" if true is None else ("  ok" if pred.label == true else f"  (true: {true})")
        print(f"{os.path.basename(path):24s} -> {pred.label:9s} {pred.score:.3f}{mark}")
    if truth[0] is not None:
        correct = sum(p.label == t for p, t in zip(predictions, truth))
        print(f"accuracy: {correct}/{len(truth)}")


if __name__ == "__main__":
    main()

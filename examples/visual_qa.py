"""Answer retrieval for visual question answering: rank candidate answers for a picture and a question.

    python examples/visual_qa.py                                        # a generated picture
    python examples/visual_qa.py --model ./models/Qwen3-VL-Embedding-2B --image photo.jpg \
        --question "What animal is this?" --answers cat dog horse --reranker ./models/Qwen3-VL-Reranker-2B
"""
from __future__ import annotations

import argparse
import os
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("QVL_MODEL", "Qwen/Qwen3-VL-Embedding-2B"))
    ap.add_argument("--reranker", default=None, help="optional reranker to re-score the answers")
    ap.add_argument("--image", help="an image file (default: a generated blue triangle)")
    ap.add_argument("--question", default="What colour is the shape in the picture?")
    ap.add_argument("--answers", nargs="+", default=["red", "green", "blue", "yellow"])
    args = ap.parse_args()

    from qwen3_vl_embedding import Qwen3VLEmbedder, Qwen3VLReranker
    from qwen3_vl_embedding.recipes import retrieve_answers
    from qwen3_vl_embedding.recipes.demo import draw_shape

    image = args.image
    if image is None:
        image = os.path.join(tempfile.mkdtemp(prefix="qvl-vqa-"), "blue_triangle.png")
        draw_shape("triangle", "blue", 128).save(image)
    embedder = Qwen3VLEmbedder(args.model)
    reranker = Qwen3VLReranker(args.reranker) if args.reranker else None
    ranked = retrieve_answers(embedder, args.question, args.answers, image=image, reranker=reranker)
    print(f"Q: {args.question}  ({os.path.basename(image)})")
    for a in ranked:
        print(f"  {a.score:.4f}  {a.answer}")
    print(f"A: {ranked[0].answer}")


if __name__ == "__main__":
    main()

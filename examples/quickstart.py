"""Quick start: embed text and an image, compare them, rerank, with the official API.

    python examples/quickstart.py                                   # Qwen/Qwen3-VL-Embedding-2B from the hub cache
    python examples/quickstart.py --model ./models/Qwen3-VL-Embedding-2B --reranker ./models/Qwen3-VL-Reranker-2B
    QVL_MODEL=./models/Qwen3-VL-Embedding-2B python examples/quickstart.py --image photo.jpg
"""
from __future__ import annotations

import argparse
import os


def demo_image():
    """A small synthetic picture (a red square on a gradient) when no image is given."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    ImageDraw.Draw(image).rectangle([120, 80, 200, 160], fill=(220, 30, 30))
    return image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("QVL_MODEL", "Qwen/Qwen3-VL-Embedding-2B"))
    ap.add_argument("--reranker", default=os.environ.get("QVL_RERANKER", "Qwen/Qwen3-VL-Reranker-2B"))
    ap.add_argument("--image", help="an image file (default: a generated picture)")
    args = ap.parse_args()

    from qwen3_vl_embedding import Qwen3VLEmbedder, Qwen3VLReranker

    model = Qwen3VLEmbedder(model_name_or_path=args.model)
    image = args.image or demo_image()
    texts = [{"text": "A red square on a grey gradient."},
             {"text": "A woman playing with her dog on a beach at sunset."}]
    text_emb = model.process(texts)
    image_emb = model.process([{"image": image}])
    query_emb = model.process([{"text": "a red square", "instruction": "Find images matching this description."}])
    print(f"{model}")
    print("text-image similarity:", [round(float(s), 4) for s in (text_emb @ image_emb.T).ravel()])
    print("query-image similarity:", round(float(query_emb @ image_emb.T), 4))
    small = model.embed([{"image": image}], dim=256, precision="binary")
    print("256-dim binary vector:", small.shape, small.dtype)

    reranker = Qwen3VLReranker(model_name_or_path=args.reranker)
    scores = reranker.process({"query": {"text": "a red square"},
                               "documents": [{"image": image}, *texts]})
    print("reranker scores:", [round(s, 4) for s in scores])


if __name__ == "__main__":
    main()

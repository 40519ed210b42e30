"""Retrieval-augmented generation: retrieve pages and notes, rerank, ask any OpenAI-compatible chat endpoint.

    python examples/rag.py                                              # prints the prompt (no endpoint)
    python examples/rag.py --model ./models/Qwen3-VL-Embedding-2B --reranker ./models/Qwen3-VL-Reranker-2B \
        --chat-url http://127.0.0.1:8001/v1 --chat-model Qwen/Qwen3-VL-8B-Instruct   # a chat server, e.g. vLLM
    python examples/rag.py --index ./my.qvl --question "..."            # retrieve from a `qvl index` instead

The corpus is a few generated report pages (images) and text notes; --chat-url is any server with
/v1/chat/completions (vLLM, SGLang, llama.cpp, a hosted API with --api-key or OPENAI_API_KEY); `qvl serve`
has no chat, so it is not one: run the chat model on another port (vllm serve ... --port 8001).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile


def demo_corpus(folder: str) -> dict:
    from qwen3_vl_embedding.recipes.demo import draw_page

    corpus = {}
    for i, (color, shape) in enumerate([("red", "circle"), ("green", "square"), ("blue", "triangle")]):
        path = os.path.join(folder, f"report_{i}.png")
        lines = [f"Project {shape.upper()}", f"status colour: {color}", f"budget: {(i + 1) * 40}k"]
        draw_page(f"Report {i + 1}", lines, shape, color).save(path)
        corpus[f"page{i}"] = {"image": path}
    corpus["note1"] = "Note: the SQUARE project was paused in May because the budget ran out."
    corpus["note2"] = "Note: the TRIANGLE project shipped early and is now in maintenance."
    return corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("QVL_MODEL", "Qwen/Qwen3-VL-Embedding-2B"))
    ap.add_argument("--reranker", default=None, help="optional reranker for the retrieved documents")
    ap.add_argument("--index", default=None, help="a `qvl index` to retrieve from instead of the demo corpus")
    ap.add_argument("--question", default="What happened to the square project, and what is its budget?")
    ap.add_argument("--k", type=int, default=5, help="documents retrieved")
    ap.add_argument("--top-k", type=int, default=3, help="documents put in the prompt")
    ap.add_argument("--chat-url", default=os.environ.get("QVL_CHAT_URL"), help="OpenAI-compatible base URL")
    ap.add_argument("--chat-model", default="Qwen/Qwen3-VL-8B-Instruct")
    ap.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    args = ap.parse_args()

    from qwen3_vl_embedding import Qwen3VLEmbedder, Qwen3VLReranker
    from qwen3_vl_embedding.recipes import answer, build_messages, embedding_retriever, index_retriever, rerank_hits

    embedder = Qwen3VLEmbedder(args.model)
    if args.index:
        retrieve = index_retriever(args.index, embedder)
    else:
        retrieve = embedding_retriever(embedder, demo_corpus(tempfile.mkdtemp(prefix="qvl-rag-")),
                                       instruction="Retrieve the pages and notes that answer the question.")
    reranker = Qwen3VLReranker(args.reranker) if args.reranker else None
    if not args.chat_url:
        hits = retrieve(args.question, args.k)
        hits = rerank_hits(reranker, args.question, hits, args.top_k) if reranker else hits[: args.top_k]
        for h in hits:
            print(f"{h.score:.4f}  {h.id}")
        messages = build_messages(args.question, hits)
        shown = [p["text"] if p["type"] == "text" else "<image>" for p in messages[1]["content"]]
        print("no --chat-url: the prompt would be\n" + json.dumps(shown, indent=2))
        return
    try:
        result = answer(args.question, retrieve, chat_url=args.chat_url, model=args.chat_model, reranker=reranker,
                        k=args.k, top_k=args.top_k, api_key=args.api_key, temperature=0)
    except RuntimeError as e:  # the chat endpoint: unreachable, not a chat server, or an error
        sys.exit(f"rag.py: {e}")
    print("sources:", ", ".join(h.id for h in result.hits))
    print(result.text)


if __name__ == "__main__":
    main()

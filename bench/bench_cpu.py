"""A photo library on a CPU: seconds per 12-megapixel photo at each pixel budget, float32 against int8
weights, texts per second, peak memory, and how close int8 vectors are to float32 ones.

    .venv/bin/python bench/bench_cpu.py --shape 2b            # the released 2B shape (random weights)
    .venv/bin/python bench/bench_cpu.py --shape small --quick # a quick check of the script
    .venv/bin/python bench/bench_cpu.py --shape tiny --workload fidelity   # the test checkpoint

Each precision runs in a child process of its own (so that its peak memory is its own): the child loads
the model, embeds a warm-up item (with int8 this compiles its linear layers; timed apart as "first
call"), then a 12-megapixel photo (4000 x 3000 JPEG) at each budget (reading, resizing and embedding it;
best of `--repeat` below 1 megapixel, once above), 16 short texts (texts/s, best of `--repeat`), and the
fidelity corpus. Best-of runs keep the figures usable on a machine shared with other work. The parent compares the two runs' vectors:

- cosine of each int8 vector to its float32 vector (texts, images, the index fingerprint text);
- top-10 agreement: for each query, the share of the float32 top 10 (over the generated corpus) that
  the int8 vectors also rank in their top 10 (and in their top 20: what a search that rescores 20
  candidates would find); top-1 agreement; and how far apart the scores are (a flat ranking, as random
  weights give, reorders under the smallest change).

Random weights: speed and memory are real; the fidelity of real weights may differ (real weights have
outlier channels that random ones lack). Results: a markdown table, and bench/results/cpu-<shape>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import CACHE, checkpoint, machine, markdown_table, test_helper, write_result

WORDS = ("the of and to in is was for on that with as by at from a old new small large red green blue white "
         "dog cat child woman man boat harbour beach mountain river city street car tree house window garden "
         "sunset morning night snow rain market bridge train station kitchen table book letter invoice chart "
         "slide receipt map photo picture portrait birthday wedding holiday museum park forest lake").split()
PHOTO_SIZE = (4000, 3000)  # 12 megapixels, a phone photo


def sentences(n: int, seed: int, lo: int = 6, hi: int = 18) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi + 1)))) for _ in range(n)]


def photo() -> str:
    """A 12-megapixel JPEG (a gradient, shapes and noise), made once under bench/.cache."""
    scene = test_helper("media_factory").scene

    path = os.path.join(CACHE, "cpu-photo-12mpx.jpg")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        scene(*PHOTO_SIZE, seed=7).save(path, quality=90)
    return path


def corpus(quick: bool) -> tuple[list, list]:
    """(documents, queries) of the fidelity check: generated texts and small images."""
    scene = test_helper("media_factory").scene

    n_texts, n_images, n_queries = (40, 8, 10) if quick else (200, 24, 50)
    folder = os.path.join(CACHE, f"cpu-corpus-{n_images}")
    os.makedirs(folder, exist_ok=True)
    images = []
    for i in range(n_images):
        path = os.path.join(folder, f"{i:03d}.jpg")
        if not os.path.exists(path):
            scene(448, 336, seed=1000 + i).save(path, quality=90)
        images.append({"image": path})
    return sentences(n_texts, 1) + images, sentences(n_queries, 2)


# the child: one precision ------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.index.compat import FINGERPRINT_TEXT

    quantize = None if args.child == "float32" else args.child
    out: dict = {"precision": args.child}
    t = time.perf_counter()
    embedder = Qwen3VLEmbedder(checkpoint(args.shape), quantize=quantize)
    out["load_s"] = time.perf_counter() - t
    out["rss_after_load_mb"] = _rss_mb()
    out["threads"] = __import__("torch").get_num_threads()
    t = time.perf_counter()
    embedder.embed(["warm-up", {"image": photo(), "max_pixels": 64 * 32 * 32}], show_progress=False)
    out["first_call_s"] = time.perf_counter() - t
    vectors: dict[str, np.ndarray] = {}
    if args.workload in ("speed", "all"):
        out["photo"] = []
        for budget in args.budgets:
            item = {"image": photo(), "max_pixels": budget}
            best = float("inf")
            for _ in range(args.repeat if budget < 1_000_000 else 1):  # the official budget: once (minutes)
                t = time.perf_counter()
                vectors[f"photo-{budget}"] = embedder.embed([item], show_progress=False)[0]
                best = min(best, time.perf_counter() - t)
            out["photo"].append({"max_pixels": budget, "seconds": best, "tokens": embedder.last_stats.real_tokens})
        texts = sentences(16, 3)
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            vectors["texts16"] = embedder.embed(texts, show_progress=False)
            best = min(best, time.perf_counter() - t)
        out["texts16_s"] = best
    if args.workload in ("fidelity", "all"):
        documents, queries = corpus(args.quick)
        t = time.perf_counter()
        vectors["documents"] = embedder.embed(documents, show_progress=False)
        vectors["queries"] = embedder.embed(queries, instruction="Retrieve the passage or image that matches.",
                                            show_progress=False)
        vectors["fingerprint"] = embedder.embed([{"text": FINGERPRINT_TEXT}], show_progress=False)
        out["fidelity_embed_s"] = time.perf_counter() - t
        out["n_text_documents"] = sum(isinstance(d, str) for d in documents)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez(os.path.join(args.folder, f"{args.child}.npz"), **vectors)
    with open(os.path.join(args.folder, f"{args.child}.json"), "w") as f:
        json.dump(out, f)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# the parent ---------------------------------------------------------------------------------------
def run_child(args: argparse.Namespace, precision: str, folder: str) -> tuple[dict, dict]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", precision, "--folder", folder, "--shape", args.shape,
           "--workload", args.workload, "--repeat", str(args.repeat), "--budgets", *map(str, args.budgets)]
    if args.quick:
        cmd.append("--quick")
    subprocess.run(cmd, check=True)
    with open(os.path.join(folder, f"{precision}.json")) as f:
        facts = json.load(f)
    return facts, dict(np.load(os.path.join(folder, f"{precision}.npz")))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def agreement(queries_a, docs_a, queries_b, docs_b, k: int = 10, within: int = 10) -> float:
    """Mean share of the top `k` by the first vectors found in the top `within` by the second."""
    top_a = np.argsort(-(queries_a @ docs_a.T), axis=1)[:, :k]
    top_b = np.argsort(-(queries_b @ docs_b.T), axis=1)[:, :within]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(top_a, top_b)]))


def compare(vectors: dict, n_text_docs: int | None) -> dict:
    f32, q8 = vectors["float32"], vectors["int8"]
    out: dict = {}
    for key in f32:
        if key.startswith("photo-"):
            out[f"cos_{key}"] = float(cosines(f32[key], q8[key])[0])
    if "texts16" in f32:
        out["cos_texts16_mean"] = float(cosines(f32["texts16"], q8["texts16"]).mean())
    if "documents" in f32:
        c = cosines(f32["documents"], q8["documents"])
        out["cos_text_docs_mean"] = float(c[:n_text_docs].mean())
        out["cos_text_docs_min"] = float(c[:n_text_docs].min())
        out["cos_images_mean"] = float(c[n_text_docs:].mean())
        out["cos_images_min"] = float(c[n_text_docs:].min())
        out["cos_queries_mean"] = float(cosines(f32["queries"], q8["queries"]).mean())
        out["cos_fingerprint"] = float(cosines(f32["fingerprint"], q8["fingerprint"])[0])
        args = (f32["queries"], f32["documents"], q8["queries"], q8["documents"])
        out["top10_agreement"] = agreement(*args)
        out["top10_within_int8_top20"] = agreement(*args, within=20)
        out["top1_agreement"] = agreement(*args, k=1, within=1)
        scores = np.sort(f32["queries"] @ f32["documents"].T, axis=1)[:, ::-1]
        out["float32_score_std"] = float(scores.std(axis=1).mean())
        out["float32_gap_10th_11th"] = float((scores[:, 9] - scores[:, 10]).mean())
        out["int8_score_change_mean"] = float(np.abs(f32["queries"] @ f32["documents"].T
                                                     - q8["queries"] @ q8["documents"].T).mean())
    return out


def main() -> None:
    from qwen3_vl_embedding.budgets import PHOTO_MAX_PIXELS
    from qwen3_vl_embedding.constants import MAX_PIXELS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="2b", help="random checkpoint shape: tiny, small, 2b [default: 2b]")
    ap.add_argument("--workload", choices=["speed", "fidelity", "all"], default="all")
    ap.add_argument("--budgets", type=int, nargs="+", default=[200_704, PHOTO_MAX_PIXELS, MAX_PIXELS],
                    help="photo pixel budgets [default: 0.2 Mpx, the photo budget, the official default]")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of the 16 texts and of the photo below 1 megapixel (best kept) [default: 2]")
    ap.add_argument("--quick", action="store_true", help="a smaller fidelity corpus")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    checkpoint(args.shape)  # built once, before the children start
    photo()
    results, vectors = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("float32", "int8"):
            results[precision], vectors[precision] = run_child(args, precision, tmp)
            np.savez(os.path.join(CACHE, f"cpu-{args.shape}-{precision}-vectors.npz"), **vectors[precision])
    fidelity = compare(vectors, results["float32"].get("n_text_documents"))
    rows = []
    for precision in ("float32", "int8"):
        r = results[precision]
        row = {"precision": precision, "load s": r["load_s"], "first call s": r["first_call_s"],
               "RSS after load MB": r["rss_after_load_mb"], "peak RSS MB": r["peak_rss_mb"]}
        if "texts16_s" in r:
            row["texts/s (16 short)"] = 16 / r["texts16_s"]
            for p in r["photo"]:
                row[f"photo s @ {p['max_pixels']:,} px ({p['tokens']} tokens)"] = p["seconds"]
        rows.append(row)
    columns = list(dict.fromkeys(c for r in rows for c in r))
    print(f"\n{args.shape} shape, random weights; {machine()}\n")
    print(markdown_table(rows, columns))
    if "texts16_s" in results["float32"]:
        print(f"\nint8 / float32 on texts: {results['float32']['texts16_s'] / results['int8']['texts16_s']:.2f}x")
    print("\nfidelity (int8 against float32): " + ", ".join(f"{k} {v:.5f}" for k, v in fidelity.items()))
    path = write_result(f"cpu-{args.shape}", rows, {"fidelity": fidelity, "children": results})
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()

"""Throughput of bulk embedding and reranking against the reference's way, on one model, in one process.

    .venv/bin/python bench/bench_embed.py --workload short_texts     # 512 short texts
    .venv/bin/python bench/bench_embed.py --workload mixed_texts     # 512 texts, log-normal 5..3000 tokens
    .venv/bin/python bench/bench_embed.py --workload images          # 128 images of mixed sizes
    .venv/bin/python bench/bench_embed.py --workload videos          # 16 short videos
    .venv/bin/python bench/bench_embed.py --workload rerank          # one query against 100 documents
    .venv/bin/python bench/bench_embed.py --workload stream          # 10,000 images streamed: peak memory
    .venv/bin/python bench/bench_embed.py --workload all [--quick] [--shape small]

"Reference way" = what the official implementation does, with our preprocessing and model so that only
the strategy differs: preprocessing one item after another in input order, then one padded forward pass
over the whole list ("whole") or over chunks of 32 in input order ("chunks of 32"); the reranker runs one
pair per forward pass. "Ours" = `Qwen3VLEmbedder.embed` / `Qwen3VLReranker.rerank` with default settings.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from common import CACHE, checkpoint, machine, markdown_table, peak_rss, test_helper, write_result

WORDS = ("the of and to in is was for on that with as by at from his her this which are be an or had not "
         "image video photo retrieval model search vector query document page frame scene person dog beach "
         "sunset mountain river city street car tree house window light colour red green blue small large").split()


def texts(n: int, lognormal: bool, seed: int, median: float = 100.0, sigma: float = 1.2,
          lo: int = 5, hi: int = 3000) -> list[str]:
    """n texts of about the given token lengths: log-normal (median, sigma) clipped to [lo, hi], or 5-20."""
    rng = np.random.default_rng(seed)
    if lognormal:
        lengths = np.clip(rng.lognormal(mean=np.log(median), sigma=sigma, size=n), lo, hi).astype(int)
    else:
        lengths = rng.integers(5, 20, size=n)
    return [" ".join(rng.choice(WORDS, size=max(1, int(k / 1.15)))) for k in lengths]


def image_files(n: int, seed: int, lo: int = 64, hi: int = 1600, folder: str = "images") -> list[str]:
    scene = test_helper("media_factory").scene

    root = os.path.join(CACHE, f"{folder}-{n}-{lo}-{hi}-{seed}")
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = os.path.join(root, f"{i:05d}.jpg")
        if not os.path.exists(p):
            w, h = (int(v) for v in rng.integers(lo, hi + 1, size=2))
            scene(w, h, seed * 100000 + i).save(p, quality=85)
        else:
            rng.integers(lo, hi + 1, size=2)
        paths.append(p)
    return paths


def video_files(n: int, seed: int) -> list[str]:
    write_mp4 = test_helper("media_factory").write_mp4

    root = os.path.join(CACHE, f"videos-{n}-{seed}")
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        seconds = float(rng.uniform(2, 6))
        p = os.path.join(root, f"{i:03d}.mp4")
        if not os.path.exists(p):
            write_mp4(p, seconds, fps=8, size=(160, 120), seed=i)
        out.append(p)
    return out


def reference_way(embedder, items: list, chunk: int | None) -> dict:
    """Serial preprocessing in input order, then padded forwards over `chunk` items (None: the whole list)."""
    from qwen3_vl_embedding.pooling import l2_normalize

    pre, engine = embedder.engine.preprocessor, embedder.engine
    chunk = chunk or len(items)
    real = padded = 0
    out = []
    t = time.perf_counter()
    for start in range(0, len(items), chunk):
        samples = [pre.prepare(embedder.prompt(it)) for it in items[start:start + chunk]]
        lengths = [s.length for s in samples]
        real += sum(lengths)
        padded += max(lengths) * len(lengths)
        out.append(engine.forward(samples, l2_normalize).numpy())
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "real_tokens": real, "padded_tokens": padded, "vectors": np.concatenate(out)}


def ours(embedder, items: list) -> dict:
    t = time.perf_counter()
    vectors = embedder.embed(items, show_progress=False)
    seconds = time.perf_counter() - t
    s = embedder.last_stats
    return {"seconds": seconds, "real_tokens": s.real_tokens, "padded_tokens": s.padded_tokens, "vectors": vectors}


def compare(name: str, embedder, items: list, chunk: int | None) -> list[dict]:
    with peak_rss() as mem_ref:
        ref = reference_way(embedder, items, chunk)
    with peak_rss() as mem_ours:
        mine = ours(embedder, items)
    diff = float(np.abs(ref["vectors"] - mine["vectors"]).max())
    rows = []
    for label, r, mem in (("reference way" + (f", chunks of {chunk}" if chunk else ", whole list"), ref, mem_ref),
                          ("ours", mine, mem_ours)):
        rows.append({"workload": name, "method": label, "items": len(items), "seconds": r["seconds"],
                     "items/s": len(items) / r["seconds"], "tokens/s": r["real_tokens"] / r["seconds"],
                     "padding eff.": r["real_tokens"] / r["padded_tokens"], "peak RSS MB": mem["peak_mb"]})
    rows[1]["speed-up"] = rows[0]["seconds"] / rows[1]["seconds"]
    rows[1]["max |diff|"] = diff
    return rows


def run_rerank(args) -> list[dict]:
    from qwen3_vl_embedding import Qwen3VLReranker

    rr = Qwen3VLReranker(checkpoint(args.shape, tied=False))
    n = 20 if args.quick else 100
    docs = texts(n, lognormal=True, seed=7, median=60, sigma=0.5, lo=10, hi=300)  # search-result passages
    query = "a dog playing on the beach at sunset"
    t = time.perf_counter()
    singles = [rr.process({"query": {"text": query}, "documents": [{"text": d}]})[0] for d in docs]
    ref_s = time.perf_counter() - t
    t = time.perf_counter()
    results = rr.rerank(query, docs)
    our_s = time.perf_counter() - t
    batched = [0.0] * n
    for r in results:
        batched[r.index] = r.score
    diff = max(abs(a - b) for a, b in zip(singles, batched))
    return [{"workload": f"rerank 1 query x {n} docs", "method": "reference way, one pair per forward", "items": n,
             "seconds": ref_s, "items/s": n / ref_s},
            {"workload": f"rerank 1 query x {n} docs", "method": "ours", "items": n, "seconds": our_s,
             "items/s": n / our_s, "speed-up": ref_s / our_s, "max |diff|": diff,
             "padding eff.": rr.last_stats.padding_efficiency}]


def stream_child(mode: str, n: int, shape: str) -> dict:
    """Run in a fresh process: embed n streamed images (ours) or decode them all first (reference way)."""
    import json

    from PIL import Image

    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.vision import resize_image

    paths = image_files(n, seed=11, lo=48, hi=320, folder="stream")
    embedder = Qwen3VLEmbedder(checkpoint(shape))

    # ru_maxrss survives fork+exec on Linux (it would report the parent's peak): sample /proc instead.
    with peak_rss() as mem:
        t = time.perf_counter()
        if mode == "ours":
            count = sum(1 for _ in embedder.iter_embed(({"image": p} for p in paths), show_progress=False))
        else:  # the reference decodes every image of the call before its single forward pass
            decoded = [resize_image(Image.open(p), 4096, 1843200) for p in paths]
            count = len(decoded)
        seconds = time.perf_counter() - t
    base, peak = mem["start_mb"], mem["peak_mb"]
    out = {"items": count, "seconds": seconds, "peak RSS MB": peak, "RSS growth MB": peak - base}
    print(json.dumps(out))
    return out


def run_stream(args) -> list[dict]:
    """Peak memory of streaming N images in fresh processes: ours at 500 and N, and decode-all at N."""
    import json
    import subprocess
    import sys

    n = 1000 if args.quick else 10_000
    image_files(n, seed=11, lo=48, hi=320, folder="stream")  # create the files outside the measurement
    rows = []
    for mode, count in (("ours", 500 if not args.quick else 100), ("ours", n), ("reference", n)):
        out = subprocess.run([sys.executable, __file__, "--stream-child", mode, str(count), "--shape", args.shape],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        label = "ours (generator in, vectors out)" if mode == "ours" else \
            "reference way: every image decoded before the forward (forward not run)"
        row = {"workload": f"{count} images streamed", "method": label, **r}
        if mode == "ours":
            row["items/s"] = r["items"] / r["seconds"]
        else:
            row.pop("seconds")
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="all",
                    choices=["all", "short_texts", "mixed_texts", "images", "videos", "rerank", "stream"])
    ap.add_argument("--shape", default="small", help="checkpoint shape from tests/checkpoint.py")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--stream-child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stream_child:
        stream_child(args.stream_child[0], int(args.stream_child[1]), args.shape)
        return

    from qwen3_vl_embedding import Qwen3VLEmbedder

    embedder = Qwen3VLEmbedder(checkpoint(args.shape))
    q = args.quick
    rows: list[dict] = []
    todo = ["short_texts", "mixed_texts", "images", "videos", "rerank", "stream"] if args.workload == "all" \
        else [args.workload]
    for w in todo:
        if w == "short_texts":
            rows += compare("512 short texts", embedder, [{"text": t} for t in texts(64 if q else 512, False, 1)], None)
        elif w == "mixed_texts":
            rows += compare("512 mixed-length texts", embedder,
                            [{"text": t} for t in texts(48 if q else 512, True, 2)], 32)  # median 100, 5..3000
        elif w == "images":
            rows += compare("128 images, mixed sizes", embedder,
                            [{"image": p} for p in image_files(16 if q else 128, 3)], 32)
        elif w == "videos":
            rows += compare("16 short videos", embedder,
                            [{"video": p, "fps": 2.0} for p in video_files(4 if q else 16, 4)], 32)
        elif w == "rerank":
            rows += run_rerank(args)
        elif w == "stream":
            rows += run_stream(args)
    cols = ["workload", "method", "items", "seconds", "items/s", "tokens/s", "padding eff.", "peak RSS MB",
            "RSS growth MB", "speed-up", "max |diff|"]
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, torch {m['torch']}, "
          f"{m['gpu'] or 'CPU only'}; checkpoint shape '{args.shape}'")
    print(markdown_table(rows, cols))
    print("written", write_result(f"embed-{args.workload}{'-quick' if q else ''}", rows, {"shape": args.shape}))


if __name__ == "__main__":
    main()

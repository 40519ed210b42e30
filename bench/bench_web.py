"""The search page on a large index: what the page asks of `qvl serve --db`, timed from 127.0.0.1.

    .venv/bin/python bench/bench_web.py                    # 100,000 records (about 3 min on 2 cores)
    .venv/bin/python bench/bench_web.py --records 20000    # smaller
    .venv/bin/python bench/bench_web.py --photos 50        # fewer real photos for the thumbnail figures

The index is synthetic, so that its size is not bounded by embedding time: `--records` records of the
kinds a photo library has (photos, pages of 10-page PDFs, 10-chunk texts) over paths in dated folders,
with random unit vectors at the small random checkpoint's dimension (256) and its real fingerprint,
so `qvl serve` accepts it; above 20,000 records the approximate index is built, as `qvl index` does.
`--photos` of those records are real 4000x3000 JPEGs (written once under bench/.cache), so thumbnails
are made from camera-sized files. The server runs in its own process (`qvl serve --db`, the small
checkpoint); every figure is the median and 95th percentile of single requests, one at a time, except
the cold thumbnails, which are asked 6 at a time as a browser does (its connection limit per host).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

from bench_server import free_port, stop_server, wait_healthy
from common import CACHE, ROOT, checkpoint, markdown_table, write_result

sys.path.insert(0, os.path.join(ROOT, "src"))

DIM = 256


def camera_photos(n: int) -> list[str]:
    """n different 4000x3000 JPEGs (~2-3 MB each), written once."""
    from web_corpus import scene

    folder = os.path.join(os.environ.get("QVL_BENCH_CACHE", CACHE), "camera-photos")
    os.makedirs(folder, exist_ok=True)
    paths = []
    kinds = ("sunset", "harbour", "mountains", "city", "forest", "desert", "snow", "garden", "aurora", "lavender")
    for i in range(n):
        path = os.path.join(folder, f"IMG_{i:04d}.jpg")
        if not os.path.exists(path):
            scene(kinds[i % len(kinds)], i, 1000, 750).resize((4000, 3000)).save(path, quality=92)
        paths.append(path)
    return paths


def build_index(folder: str, records: int, photos: list[str], model: str) -> float:
    """A synthetic index of `records` records; the build time in seconds."""
    from qwen3_vl_embedding import Qwen3VLEmbedder
    from qwen3_vl_embedding.index.compat import fingerprint
    from qwen3_vl_embedding.index.records import FileState, Record, record_id
    from qwen3_vl_embedding.index.sqlite_store import SqliteStore
    from qwen3_vl_embedding.index.store import IndexMeta

    started = time.perf_counter()
    embedder = Qwen3VLEmbedder(model)
    meta = IndexMeta(model=model, dim=DIM, fingerprint=fingerprint(embedder, DIM))
    rng = np.random.default_rng(0)
    now = time.time()
    units: list[tuple[str, str, int]] = [(p, "image", 0) for p in photos]
    i = 0
    while len(units) < records:
        folder_name = f"/library/{2015 + i % 10}/{(i // 10) % 12 + 1:02d}-trip-{i % 37}"
        kind = ("image",) * 8 + ("pdf", "text")
        k = kind[i % len(kind)]
        if k == "image":
            units.append((f"{folder_name}/IMG_{i:06d}.jpg", "image", 0))
        else:
            name = f"{folder_name}/doc_{i:06d}.{'pdf' if k == 'pdf' else 'md'}"
            units += [(name, k, u) for u in range(10)]
        i += 1
    units = units[:records]
    with SqliteStore(folder, meta, write=True) as store:
        for start in range(0, len(units), 5000):
            part = units[start:start + 5000]
            vectors = rng.standard_normal((len(part), DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            out = []
            for path, modality, unit in part:
                when = now - rng.random() * 10 * 365 * 86400
                out.append(Record(record_id(path, modality, unit), path, modality, "0" * 32, when, model,
                                  meta.document_instruction, DIM, page=unit + 1 if modality == "pdf" else None,
                                  chunk=unit if modality == "text" else None,
                                  text="a passage of text " * 20 if modality == "text" else None, date=when))
            store.add(out, vectors)
            for path, modality in dict.fromkeys((p, m) for p, m, _ in part):
                store.put_file(FileState(path, "0" * 32, 1000, now, modality, "done", 1))
            store.commit()
        store.optimize()
    return time.perf_counter() - started


def timed(call, repeat: int) -> tuple[float, float]:
    """(p50, p95) milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def main() -> int:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--photos", type=int, default=120, help="at most 512")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()

    model = checkpoint("small")
    photos = camera_photos(args.photos)
    work = os.path.join(os.environ.get("QVL_BENCH_CACHE", CACHE), f"web-index-{args.records}")
    shutil.rmtree(work, ignore_errors=True)
    build_s = build_index(work, args.records, photos, model)
    print(f"built {args.records:,} records in {build_s:.0f} s", file=sys.stderr)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src"), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "qwen3_vl_embedding", "serve", "--model", model, "--db", work,
                               "--port", str(port), "-q"], env=env, stdout=subprocess.DEVNULL)
    rows = []
    try:
        wait_healthy(url, server)
        client = httpx.Client(base_url=url, timeout=120, trust_env=False)

        def row(what, call, repeat=args.repeat):
            p50, p95 = timed(call, repeat)
            rows.append({"request": what, "p50 ms": p50, "p95 ms": p95})
            print(f"{what}: p50 {p50:.1f} ms, p95 {p95:.1f} ms", file=sys.stderr)

        def search(**body):
            r = client.post("/v1/search", json=body)
            assert r.status_code == 200, r.text
            return r.json()["results"]

        row("GET / (the page)", lambda: client.get("/"))
        row("GET /ui/app.js", lambda: client.get("/ui/app.js"))
        row("GET /v1/index, first (counts, folders)", lambda: client.get("/v1/index"), 1)
        row("GET /v1/index, cached", lambda: client.get("/v1/index"))
        row("search: text, k=48", lambda: search(query="a dog on the beach", k=48))
        row("search: text, k=480 (page 10)", lambda: search(query="a dog on the beach", k=480))
        target = search(query="x", k=1)[0]["id_str"]
        row("search: more like this, k=48", lambda: search(like=target, k=48))
        row("search: text + photos only", lambda: search(query="a dog", k=48, filters={"modality": ["image"]}))
        row("search: text + folder", lambda: search(query="a dog", k=48, filters={"folder": "2019"}))
        row("search: text + date range", lambda: search(query="a dog", k=48,
                                                         filters={"after": "2018-01-01", "before": "2019-01-01"}))
        row("search: text + min score 0.1", lambda: search(query="a dog", k=48, filters={"min_score": 0.1}))
        hits = search(query="x", k=min(len(photos), 512), filters={"folder": os.path.dirname(photos[0])})
        links = [h["thumbnail"] for h in hits]
        started = time.perf_counter()
        per = []

        def cold(link):
            t = time.perf_counter()
            assert client.get(link).status_code == 200
            per.append((time.perf_counter() - t) * 1000)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(cold, links))
        total = time.perf_counter() - started
        per.sort()
        rows.append({"request": f"thumbnail, cold ({len(links)} photos of 4000x3000, 6 at a time)",
                     "p50 ms": statistics.median(per), "p95 ms": per[int(0.95 * len(per))],
                     "note": f"{len(links) / total:.1f} thumbnails/s"})
        it = iter(links * (args.repeat // len(links) + 1))
        row("thumbnail, cached", lambda: client.get(next(it)))
        etags = {}
        for link in links[:5]:
            etags[link] = client.get(link).headers["etag"]
        it2 = iter(list(etags.items()) * args.repeat)

        def revalidate():
            link, etag = next(it2)
            assert client.get(link, headers={"If-None-Match": etag}).status_code == 304

        row("thumbnail, revalidated (304)", revalidate)
        large = iter(links)
        row("large thumbnail (1600 px), cold", lambda: client.get(next(large) + "&size=large"), min(10, len(links)))
    finally:
        stop_server(server)
    print(markdown_table(rows, ["request", "p50 ms", "p95 ms", "note"]))
    print(write_result("web", rows, {"records": args.records, "photos": len(photos), "build_s": build_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

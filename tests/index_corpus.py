"""A generated folder for the index tests: every kind of file `qvl index` meets, good and bad."""
from __future__ import annotations

import os

from media_factory import scene, write_mp4

WORDS = ("harbour kite dawn river mountain street window garden market bridge train forest lantern "
         "meadow island canyon glacier desert village castle").split()

# What a correct index of the folder holds (with --chunk-tokens 64 --chunk-overlap 8 for the text).
GOOD_IMAGES = ("photos/2023/beach.jpg", "photos/2024/trip/dog.png", "photos/2024/cat.webp")
PDF_PAGES = 3
VIDEO_CLIPS = 3  # 25 s in 10 s windows
BAD = {"photos/corrupt.jpg": "cannot", "empty.png": "empty file"}
IGNORED = ("notes.xyz",)


def long_text(n_words: int = 700, seed: int = 0) -> str:
    import numpy as np

    rng = np.random.default_rng(seed)
    sentences = []
    for i in range(n_words // 7):
        sentences.append(" ".join(rng.choice(WORDS, 6)).capitalize() + f" number {i}.")
    return "\n".join(sentences)


def make_corpus(root: str) -> dict:
    """Write the folder under `root`; return a dict of useful paths."""
    os.makedirs(os.path.join(root, "photos/2023"), exist_ok=True)
    os.makedirs(os.path.join(root, "photos/2024/trip"), exist_ok=True)
    os.makedirs(os.path.join(root, "docs/.hidden"), exist_ok=True)
    scene(160, 120, 1).save(os.path.join(root, GOOD_IMAGES[0]), quality=90)
    scene(96, 128, 2).save(os.path.join(root, GOOD_IMAGES[1]))
    scene(128, 96, 3).save(os.path.join(root, GOOD_IMAGES[2]))
    pages = [scene(200, 260, 10 + i) for i in range(PDF_PAGES)]
    pages[0].save(os.path.join(root, "docs/report.pdf"), save_all=True, append_images=pages[1:])
    write_mp4(os.path.join(root, "movie.mp4"), 25, fps=4, size=(96, 64))
    with open(os.path.join(root, "docs/long.txt"), "w") as f:
        f.write(long_text())
    with open(os.path.join(root, GOOD_IMAGES[0]), "rb") as f:
        data = f.read()
    with open(os.path.join(root, "photos/corrupt.jpg"), "wb") as f:
        f.write(data[:300])
    open(os.path.join(root, "empty.png"), "wb").close()
    with open(os.path.join(root, "notes.xyz"), "w") as f:
        f.write("not indexed")
    scene(64, 64, 9).save(os.path.join(root, "docs/.hidden/secret.png"))
    os.symlink("..", os.path.join(root, "photos/2024/trip/loop"))  # a symlink loop back up the tree
    return {"root": root, "pdf": os.path.join(root, "docs/report.pdf"), "video": os.path.join(root, "movie.mp4"),
            "text": os.path.join(root, "docs/long.txt"), "image": os.path.join(root, GOOD_IMAGES[0])}


def chunked_texts(root, files: int, words: int, tokenizer, chunk_tokens: int = 16) -> set[int]:
    """Write `files` long markdown texts under `root`; return the record ids their chunks will get."""
    from qwen3_vl_embedding.index import ingest
    from qwen3_vl_embedding.index.records import record_id

    os.makedirs(root, exist_ok=True)
    expected = set()
    for i in range(files):
        path = os.path.join(root, f"part{i}.md")
        with open(path, "w") as f:
            f.write(long_text(words, seed=i))
        with open(path) as f:
            chunks = ingest.chunk_text(f.read(), tokenizer, chunk_tokens, 0)
        expected |= {record_id(os.path.realpath(path), "text", n) for n in range(len(chunks))}
    return expected

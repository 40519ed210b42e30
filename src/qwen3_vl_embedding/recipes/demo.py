"""Small synthetic labelled pictures (coloured shapes) so that the examples run without any data."""
from __future__ import annotations

import os
from dataclasses import dataclass

COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 200, 40)}
SHAPES = ("circle", "square", "triangle")


@dataclass(frozen=True)
class DemoImage:
    path: str
    color: str
    shape: str

    @property
    def caption(self) -> str:
        return f"a {self.color} {self.shape}"


def draw_shape(shape: str, color: str, size: int = 96, offset: int = 0):
    """A PIL image of one filled shape on a light background; `offset` moves it a little."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    m = size // 6 + offset % (size // 8)
    box = (m, m, size - m, size - m)
    fill = COLORS[color]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(size // 2, m), (size - m, size - m), (m, size - m)], fill=fill)
    else:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    return image


def demo_shapes(folder: str, colors: tuple[str, ...] = ("red", "green", "blue"), shapes: tuple[str, ...] = SHAPES,
                per_pair: int = 1, size: int = 96) -> list[DemoImage]:
    """Write one PNG per (color, shape, variant) under `folder`; their paths and labels."""
    os.makedirs(folder, exist_ok=True)
    out = []
    for color in colors:
        for shape in shapes:
            for v in range(per_pair):
                path = os.path.join(folder, f"{color}_{shape}_{v}.png")
                if not os.path.isfile(path):
                    draw_shape(shape, color, size, offset=v * 5).save(path)
                out.append(DemoImage(path, color, shape))
    return out


def draw_page(title: str, lines: list[str], shape: str, color: str, size: tuple[int, int] = (192, 256)):
    """A document-like page: a title, a few text lines and a small figure."""
    from PIL import Image, ImageDraw

    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    draw.text((10, 8), title, fill="black")
    for i, line in enumerate(lines):
        draw.text((10, 30 + 14 * i), line, fill=(60, 60, 60))
    page.paste(draw_shape(shape, color, 64), (size[0] - 74, size[1] - 74))
    return page


def demo_eval_collection(folder: str, colors: tuple[str, ...] = ("red", "green", "blue")) -> list[str]:
    """Write four small datasets in the local evaluation layout (one per MMEB-v2 kind); their folders.

    shapes-t2i (image, global: caption -> picture), shapes-cls (image, local: picture -> label),
    shapes-video (video as frames, global: caption -> clip), shapes-doc (visdoc, global, graded:
    question -> page, the page about the shape graded 2 and pages of the same colour graded 1)."""
    from ..evaluation.datasets import EvalDataset, Query, write_dataset

    folder = os.path.abspath(folder)
    media = os.path.join(folder, "media")
    shapes = demo_shapes(media, colors)
    written = []

    def rel(path: str) -> str:  # relative to a dataset folder, so that the collection can be moved
        return os.path.relpath(path, os.path.join(folder, "any-dataset"))

    def save(ds: EvalDataset) -> None:
        written.append(write_dataset(ds, os.path.join(folder, ds.name)))

    captions = {f"c{i}": s.caption for i, s in enumerate(shapes)}
    save(EvalDataset(
        name="shapes-t2i", category="image", task="retrieval", ranking="global",
        instruction="Retrieve the picture that matches the caption.",
        queries=tuple(Query(f"q{i}", s.caption) for i, s in enumerate(shapes)),
        corpus={f"img{i}": {"image": rel(s.path)} for i, s in enumerate(shapes)},
        qrels={f"q{i}": {f"img{i}": 1} for i in range(len(shapes))}))
    save(EvalDataset(
        name="shapes-cls", category="image", task="classification", ranking="local",
        instruction="Classify the picture by the colour and shape it shows.",
        queries=tuple(Query(f"q{i}", {"image": rel(s.path)}, candidates=tuple(captions)) for i, s in enumerate(shapes)),
        corpus=captions, qrels={f"q{i}": {f"c{i}": 1} for i in range(len(shapes))}))
    clips = {}
    for i, s in enumerate(shapes):
        frames = []
        for t in range(4):
            path = os.path.join(media, f"{s.color}_{s.shape}_frame{t}.png")
            if not os.path.isfile(path):
                draw_shape(s.shape, s.color, 96, offset=t * 4).save(path)
            frames.append(rel(path))
        clips[f"clip{i}"] = {"video": frames}
    save(EvalDataset(
        name="shapes-video", category="video", task="retrieval", ranking="global",
        instruction="Retrieve the video that matches the description.",
        queries=tuple(Query(f"q{i}", f"a video of {s.caption} moving") for i, s in enumerate(shapes)),
        corpus=clips, qrels={f"q{i}": {f"clip{i}": 1} for i in range(len(shapes))}))
    pages, qrels = {}, {}
    for i, s in enumerate(shapes):
        path = os.path.join(media, f"page_{s.color}_{s.shape}.png")
        if not os.path.isfile(path):
            draw_page(f"Report {i + 1}: the {s.shape}", [f"colour: {s.color}", f"shape: {s.shape}",
                                                           f"item number {100 + i}"], s.shape, s.color).save(path)
        pages[f"page{i}"] = {"image": rel(path)}
        qrels[f"q{i}"] = {f"page{j}": (2 if j == i else 1) for j, o in enumerate(shapes) if o.color == s.color}
    save(EvalDataset(
        name="shapes-doc", category="visdoc", task="retrieval", ranking="global",
        instruction="Find the document page that answers the question.",
        queries=tuple(Query(f"q{i}", f"Which report describes the {s.color} {s.shape}?") for i, s in enumerate(shapes)),
        corpus=pages, qrels=qrels))
    return written

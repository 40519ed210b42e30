"""Synthetic media for the tests: images of several modes and sizes, frames, mp4 clips, broken files."""
from __future__ import annotations

import os

import numpy as np


def scene(width: int, height: int, seed: int = 0, mode: str = "RGB"):
    """A picture with a gradient, a few shapes and some noise (deterministic)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    base = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                           np.full((height, width, 1), 96, np.float32)], axis=2)
    base = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        draw.rectangle([x0, y0, x0 + width // 4, y0 + height // 4], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return image.convert(mode) if mode != "RGB" else image


def write_mp4(path: str, seconds: float, fps: int = 8, size: tuple[int, int] = (128, 96), seed: int = 0) -> str:
    """An H.264 mp4 of a square moving over a gradient."""
    import av

    width, height = size
    rng = np.random.default_rng(seed)
    background = np.asarray(scene(width, height, seed))
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(round(seconds * fps))):
            frame = background.copy()
            x = int(i * (width - 24) / max(1, seconds * fps - 1))
            frame[30:54, x:x + 24] = (220, 30, 30)
            frame = np.clip(frame.astype(np.int16) + rng.integers(-3, 4, frame.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_media(root: str) -> dict:
    """Write the test media under `root`; return name -> path."""
    os.makedirs(os.path.join(root, "frames"), exist_ok=True)
    paths = {}

    def save(name, image, **kw):
        p = os.path.join(root, name)
        image.save(p, **kw)
        paths[name] = p

    save("scene.jpg", scene(300, 200, 1), quality=90)
    save("noise.png", scene(96, 64, 2))
    save("tall.png", scene(64, 256, 3))
    save("tiny.png", scene(20, 20, 4))
    save("large.jpg", scene(1600, 1200, 5), quality=85)
    save("alpha.png", scene(120, 80, 6, "RGBA"))
    save("gray.png", scene(100, 100, 7, "L"))
    save("photo.webp", scene(160, 120, 8))
    for i in range(10):
        save(f"frames/f{i:02d}.png", scene(160, 120, 100 + i))
    paths["frames"] = [paths[f"frames/f{i:02d}.png"] for i in range(10)]
    paths["clip.mp4"] = write_mp4(os.path.join(root, "clip.mp4"), 3, fps=8)
    corrupt = os.path.join(root, "corrupt.jpg")
    with open(paths["scene.jpg"], "rb") as f:
        data = f.read()
    with open(corrupt, "wb") as f:
        f.write(data[:200])
    paths["corrupt.jpg"] = corrupt
    junk = os.path.join(root, "junk.mp4")
    with open(junk, "wb") as f:
        f.write(b"this is not a video" * 10)
    paths["junk.mp4"] = junk
    empty = os.path.join(root, "empty.png")
    open(empty, "wb").close()
    paths["empty.png"] = empty
    return paths


def write_heic(path: str, width: int = 320, height: int = 240, seed: int = 3, camera: bool = True,
         taken: str | None = "2021:05:06 07:08:09") -> str:
    """An HEIC file (pillow-heif's encoder), with camera tags and a capture time in its EXIF."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    image = scene(width, height, seed)
    exif = image.getexif()
    if camera:
        exif[271], exif[272] = "PhoneMaker", "Phone 1"
    if taken:
        exif.get_ifd(0x8769)[36867] = taken
    image.save(path, exif=exif.tobytes())
    return path


def with_camera(image, path: str) -> str:
    exif = image.getexif()
    exif[271] = "CameraMaker"
    image.save(path, exif=exif.tobytes())
    return path

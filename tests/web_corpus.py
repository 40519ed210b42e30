"""A generated library for the search page's tests and screenshots: photos, PDFs, videos and notes.

Everything is drawn here (no downloads): landscape "photos" with EXIF dates (one stored sideways with an
EXIF orientation), a report and a guide as PDFs of rendered pages, two short videos, markdown and text
notes, and a photo whose file name is an HTML injection attempt. Deterministic for a given root.
"""
from __future__ import annotations

import math
import os

import numpy as np

XSS_NAME = "<img src=x onerror=alert(1)>.jpg"
SIDEWAYS = "photos/2024-spring/tulips-sideways.jpg"  # stored portrait, EXIF orientation 6: shown landscape

PHOTOS = {  # path: (scene, seed, EXIF capture time or None for the file's mtime)
    "photos/2023-summer/sunset-beach.jpg": ("sunset", 1, "2023:07:14 20:41:05"),
    "photos/2023-summer/sunset-pier.jpg": ("sunset", 7, "2023:07:15 21:02:44"),
    "photos/2023-summer/harbour-boats.jpg": ("harbour", 2, "2023:07:18 09:12:30"),
    "photos/2023-summer/lavender-field.jpg": ("lavender", 3, "2023:08:02 17:30:00"),
    "photos/2023-autumn/forest-walk.jpg": ("forest", 4, "2023:10:21 11:05:12"),
    "photos/2023-autumn/alpine-lake.jpg": ("mountains", 5, "2023:09:30 08:45:00"),
    "photos/2024-winter/city-at-night.jpg": ("city", 6, "2024:01:12 22:14:09"),
    "photos/2024-winter/aurora.jpg": ("aurora", 8, "2024:02:03 23:40:51"),
    "photos/2024-winter/snowy-cabin.jpg": ("snow", 9, "2024:02:05 14:20:00"),
    "photos/2024-spring/desert-dunes.jpg": ("desert", 10, "2024:04:11 07:55:31"),
    "photos/2024-spring/mountain-ridge.jpg": ("mountains", 11, "2024:05:01 16:10:10"),
    SIDEWAYS: ("garden", 12, "2024:04:20 10:00:00"),
    "photos/phone/skyline.png": ("city", 13, None),
    "photos/phone/" + XSS_NAME: ("sunset", 14, None),
}
PDFS = {"documents/quarterly-report.pdf": 4, "documents/travel-guide.pdf": 3}
VIDEOS = {"videos/sunset-timelapse.mp4": ("sunset", 24.0), "videos/city-traffic.mp4": ("city", 16.0)}
NOTES = {
    "notes/packing-list.md": "# Packing list for the coast\n\nSunscreen, a wide hat, two towels and the good camera. "
    "Pack the blue kite for the beach at sunset; the harbour market opens at seven, bring cash for fresh fish. "
    "Charge the drone the night before and check the tide tables. Snacks for the ferry, a book for the rainy "
    "afternoon, and the adapter for the hotel sockets.",
    "notes/meeting-notes.txt": "Quarterly review, Tuesday.\nRevenue grew eleven percent, driven by the northern "
    "region; costs were flat. Action items: Maria to update the revenue chart for the board deck, Tom to draft "
    "the travel budget, everyone to review the hiring plan before Friday. Next meeting: the first Monday of the "
    "month, in the large room with the window onto the river.",
    "notes/recipes.md": "# Lavender lemonade\n\nSteep two tablespoons of dried lavender in a cup of boiling water "
    "for ten minutes. Strain, add the juice of six lemons, half a cup of honey and four cups of cold water. "
    "Serve over ice with a sprig of lavender. Good after a long walk through the fields in August.",
}


def travel_diary(days: int = 40) -> str:
    """A long markdown diary (many text chunks: enough results to page through)."""
    places = ["the harbour", "the old town", "the lavender fields", "the dunes", "the alpine lake", "the forest trail",
              "the night market", "the lighthouse", "the ridge", "the cabin"]
    doings = ["watched the sunset", "took photos of the boats", "walked for hours", "ate grilled fish",
              "waited for the aurora", "read by the fire", "climbed to the viewpoint", "swam in the cold water"]
    weather = ["clear and warm", "windy", "grey with light rain", "bright and cold", "hazy"]
    lines = ["# Travel diary", ""]
    for day in range(1, days + 1):
        lines.append(f"## Day {day}")
        lines.append(f"We went to {places[day % len(places)]} and {doings[day % len(doings)]}. The weather was "
                     f"{weather[day % len(weather)]}. In the evening we {doings[(day * 3) % len(doings)]} near "
                     f"{places[(day * 7) % len(places)]}.")
        lines.append("")
    return "\n".join(lines)


def _sky(w: int, h: int, top, bottom) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to((1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32), (h, w, 3)).copy()


def scene(kind: str, seed: int, w: int = 800, h: int = 600, phase: float = 0.0):
    """A painted landscape of `kind` as an RGB PIL image; `phase` (0..1) moves the sun or the traffic."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    horizon = int(h * (0.55 + 0.1 * rng.random()))
    palettes = {
        "sunset": ((40, 30, 90), (250, 140, 60)), "harbour": ((110, 170, 230), (200, 225, 245)),
        "lavender": ((120, 160, 230), (235, 210, 200)), "forest": ((150, 200, 240), (215, 235, 250)),
        "mountains": ((70, 130, 210), (190, 220, 245)), "city": ((8, 10, 30), (40, 40, 80)),
        "aurora": ((5, 10, 25), (20, 40, 60)), "snow": ((160, 170, 185), (220, 225, 232)),
        "desert": ((90, 160, 230), (240, 220, 180)), "garden": ((140, 190, 240), (225, 240, 250)),
    }
    top, bottom = palettes[kind]
    pixels = _sky(w, h, top, bottom)
    image = Image.fromarray(pixels.astype(np.uint8))
    d = ImageDraw.Draw(image)
    if kind in ("sunset", "harbour"):
        sun_y = int(horizon * (0.35 + 0.75 * phase)) if kind == "sunset" else int(h * 0.15)
        sun_x = int(w * (0.3 + 0.4 * rng.random()))
        r = int(h * 0.07)
        d.ellipse([sun_x - r, sun_y - r, sun_x + r, sun_y + r], fill=(255, 214, 120) if kind == "sunset" else (255, 250, 220))
        sea = (30, 50, 110) if kind == "sunset" else (30, 100, 160)
        d.rectangle([0, horizon, w, h], fill=sea)
        for i in range(40):  # glitter on the water
            y = horizon + int((h - horizon) * rng.random())
            x = sun_x + int(rng.normal(0, w * 0.05))
            d.line([x - 12, y, x + 12, y], fill=(255, 190, 110) if kind == "sunset" else (220, 240, 255), width=2)
        if kind == "sunset":
            d.polygon([(0, h), (0, h - 60), (w * 0.45, h - 20), (w, h - 70), (w, h)], fill=(220, 180, 130))
        else:
            for i in range(4):
                x = int(w * (0.12 + 0.22 * i + 0.05 * rng.random()))
                y = horizon + int((h - horizon) * (0.3 + 0.4 * rng.random()))
                d.polygon([(x - 50, y), (x + 50, y), (x + 35, y + 22), (x - 35, y + 22)], fill=(240, 240, 235))
                d.line([x, y, x, y - 90], fill=(90, 70, 50), width=3)
                d.polygon([(x + 3, y - 88), (x + 3, y - 10), (x + 48, y - 10)], fill=(250, 250, 250))
    elif kind in ("mountains", "snow", "forest"):
        for layer in range(3):
            shade = 60 + 40 * layer
            pts = [(0, h)]
            for x in range(0, w + 80, 80):
                pts.append((x, horizon - int(rng.random() * h * (0.35 - 0.08 * layer))))
            pts.append((w, h))
            color = (shade, shade + 20, shade + 60) if kind != "forest" else (30 + 20 * layer, 90 + 30 * layer, 40 + 10 * layer)
            d.polygon(pts, fill=color)
            if kind in ("mountains", "snow") and layer == 0:
                for x, y in pts[1:-1]:
                    d.polygon([(x - 22, y + 30), (x, y), (x + 22, y + 30)], fill=(245, 248, 252))
        if kind == "mountains":
            d.rectangle([0, horizon + 40, w, h], fill=(50, 110, 150))
        if kind == "snow":
            d.rectangle([0, horizon + 20, w, h], fill=(236, 240, 245))
            d.rectangle([w * 0.55, horizon - 40, w * 0.75, horizon + 40], fill=(120, 70, 40))
            d.polygon([(w * 0.52, horizon - 40), (w * 0.65, horizon - 100), (w * 0.78, horizon - 40)], fill=(245, 245, 250))
            d.rectangle([w * 0.62, horizon - 5, w * 0.67, horizon + 40], fill=(250, 200, 90))
        if kind in ("forest", "snow"):
            for _ in range(28):
                x = int(w * rng.random())
                y = horizon + int((h - horizon) * rng.random() * 0.9)
                s = int(30 + 50 * rng.random())
                d.polygon([(x - s // 2, y), (x, y - 2 * s), (x + s // 2, y)], fill=(20, 70 + int(40 * rng.random()), 35))
    elif kind == "city":
        if phase == 0.0:
            d.ellipse([w * 0.8, h * 0.08, w * 0.8 + 50, h * 0.08 + 50], fill=(240, 240, 210))
        x = 0
        while x < w:
            bw = int(50 + 70 * rng.random())
            bh = int(h * (0.25 + 0.5 * rng.random()))
            d.rectangle([x, h - bh, x + bw, h], fill=(25, 25, 40))
            for wy in range(h - bh + 10, h - 20, 18):
                for wx in range(x + 6, x + bw - 10, 14):
                    if rng.random() < 0.45:
                        d.rectangle([wx, wy, wx + 7, wy + 10], fill=(255, 210, 110))
            x += bw + 4
        for i in range(6):  # traffic
            cx = int((w * (i / 6 + phase)) % w)
            d.rectangle([cx, h - 18, cx + 30, h - 6], fill=(200, 30, 40) if i % 2 else (240, 240, 255))
    elif kind == "aurora":
        for band in range(3):
            pts = [(x, int(h * (0.25 + 0.1 * band) + 40 * math.sin(x / 90 + band + seed))) for x in range(0, w + 20, 20)]
            d.line(pts, fill=(60, 230, 150) if band != 1 else (120, 90, 220), width=38 - 8 * band)
        d.rectangle([0, horizon + 60, w, h], fill=(15, 20, 30))
    elif kind == "desert":
        for layer in range(3):
            pts = [(x, int(horizon + 30 * layer + 40 * math.sin(x / (120 + 40 * layer) + seed + layer)))
                   for x in range(0, w + 20, 20)]
            d.polygon([(0, h)] + pts + [(w, h)], fill=(230 - 25 * layer, 180 - 25 * layer, 110 - 20 * layer))
        d.ellipse([w * 0.15, h * 0.1, w * 0.15 + 70, h * 0.1 + 70], fill=(255, 245, 200))
    elif kind in ("lavender", "garden"):
        d.rectangle([0, horizon, w, h], fill=(70, 130, 60))
        colors = [(150, 110, 200), (130, 90, 190)] if kind == "lavender" else [(230, 50, 70), (250, 200, 40), (240, 120, 170)]
        for row in range(14):
            y = horizon + int((h - horizon) * (row / 14) ** 1.3) + 6
            for x in range(-20, w + 20, max(6, 40 - 2 * row)):
                s = 3 + row
                d.ellipse([x - s, y - s, x + s, y + s], fill=colors[(row + x // 40) % len(colors)])
    noise = rng.normal(0, 5, (h, w, 3))
    out = np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(out).filter(ImageFilter.GaussianBlur(0.7))


def document_page(title: str, lines: list[str], number: int, chart: list[float] | None = None, picture=None):
    """A printed A4-like page (600 x 848) with a title, paragraphs and optionally a bar chart or a picture."""
    from PIL import Image, ImageDraw, ImageFont

    page = Image.new("RGB", (600, 848), (255, 255, 255))
    d = ImageDraw.Draw(page)
    big, small = ImageFont.load_default(size=30), ImageFont.load_default(size=15)
    d.rectangle([0, 0, 600, 8], fill=(91, 76, 240))
    d.text((50, 50), title, font=big, fill=(20, 20, 30))
    y = 110
    for line in lines:
        d.text((50, y), line, font=small, fill=(60, 60, 70))
        y += 24
    if chart:
        top = y + 30
        d.line([60, top + 300, 560, top + 300], fill=(120, 120, 120), width=2)
        for i, v in enumerate(chart):
            x = 80 + i * 115
            d.rectangle([x, top + 300 - int(260 * v), x + 70, top + 300], fill=(91, 76, 240) if i % 2 else (34, 179, 166))
            d.text((x + 10, top + 308), f"Q{i + 1}", font=small, fill=(60, 60, 70))
    if picture is not None:
        page.paste(picture.resize((500, 375)), (50, y + 30))
    d.text((290, 810), str(number), font=small, fill=(140, 140, 150))
    return page


def _write_video(path: str, kind: str, seconds: float, fps: int = 6, size=(320, 180)) -> None:
    import av

    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        n = int(seconds * fps)
        for i in range(n):
            frame = np.asarray(scene(kind, 3, size[0], size[1], phase=i / n))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _save_photo(path: str, image, taken: str | None, orientation: int | None = None) -> None:
    from PIL import Image

    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[36867] = taken  # DateTimeOriginal
    if orientation:
        exif[0x0112] = orientation
    if path.endswith(".png"):
        image.save(path)
    else:
        image.save(path, quality=88, exif=exif)


def make_library(root: str) -> dict:
    """Write the library under `root`; return useful paths."""
    from PIL import Image

    for rel, (kind, seed, taken) in PHOTOS.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        image = scene(kind, seed)
        if rel == SIDEWAYS:  # stored turned a quarter left, with the EXIF tag that turns it back
            _save_photo(path, image.transpose(Image.Transpose.ROTATE_90), taken, orientation=6)
        else:
            _save_photo(path, image, taken)
    os.makedirs(os.path.join(root, "documents"), exist_ok=True)
    report = [
        document_page("Quarterly report", ["Revenue grew eleven percent this quarter.", "Costs were flat; the northern",
                                           "region led growth."], 1),
        document_page("Revenue by quarter", ["A bar chart of revenue per quarter."], 2, chart=[0.45, 0.6, 0.72, 0.9]),
        document_page("Travel budget", ["Flights, hotels and the team offsite", "by the lake in September."], 3,
                      picture=scene("mountains", 21)),
        document_page("Hiring plan", ["Four engineers and a designer", "before the end of the year."], 4),
    ]
    report[0].save(os.path.join(root, "documents/quarterly-report.pdf"), save_all=True, append_images=report[1:])
    guide = [document_page("Coastal travel guide", ["Beaches, harbours and sunsets along the coast."], 1,
                           picture=scene("sunset", 22)),
             document_page("The harbour market", ["Fresh fish every morning from seven."], 2,
                           picture=scene("harbour", 23)),
             document_page("Lavender fields", ["In bloom from late June to August."], 3, picture=scene("lavender", 24))]
    guide[0].save(os.path.join(root, "documents/travel-guide.pdf"), save_all=True, append_images=guide[1:])
    os.makedirs(os.path.join(root, "videos"), exist_ok=True)
    for rel, (kind, seconds) in VIDEOS.items():
        _write_video(os.path.join(root, rel), kind, seconds)
    os.makedirs(os.path.join(root, "notes"), exist_ok=True)
    for rel, text in {**NOTES, "notes/travel-diary.md": travel_diary()}.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    return library_paths(root)


def library_paths(root: str) -> dict:
    """Useful paths of the library under `root`."""
    return {"root": root, "xss": os.path.join(root, "photos/phone", XSS_NAME),
            "sideways": os.path.join(root, SIDEWAYS), "report": os.path.join(root, "documents/quarterly-report.pdf"),
            "video": os.path.join(root, "videos/sunset-timelapse.mp4")}

"""Input forms -> Items: ordering, every documented form, and clear errors."""
from __future__ import annotations

import pytest
from PIL import Image

from qwen3_vl_embedding.errors import InputError
from qwen3_vl_embedding.inputs import ImagePart, Item, TextPart, VideoPart, to_item, to_items


def kinds(item: Item) -> list[str]:
    return [type(p).__name__ for p in item.parts]


def test_official_form_orders_videos_images_texts():
    img = Image.new("RGB", (40, 40))
    item = to_item({"text": "t", "image": img, "video": "/v.mp4", "instruction": "Find it", "fps": 2, "max_frames": 8})
    assert kinds(item) == ["VideoPart", "ImagePart", "TextPart"]
    assert item.instruction == "Find it"
    video = item.parts[0]
    assert video.fps == 2 and video.max_frames == 8 and not video.is_frames


def test_lists_of_texts_images_and_videos():
    item = to_item({"text": ["a", "b"], "image": ["/a.png", b"\x89PNG....", Image.new("RGB", (9, 9))],
                    "video": ["/a.mp4", "/b.mp4"]})
    assert kinds(item) == ["VideoPart"] * 2 + ["ImagePart"] * 3 + ["TextPart"] * 2
    assert [p.field for p in item.parts] == ["video[0]", "video[1]", "image[0]", "image[1]", "image[2]",
                                             "text[0]", "text[1]"]


def test_frame_lists_are_one_video():
    frames = ["/f0.png", "/f1.png", "/f2.jpg"]
    item = to_item({"video": frames})
    assert len(item.parts) == 1 and item.parts[0].is_frames and item.parts[0].source == tuple(frames)
    pil = [Image.new("RGB", (8, 8))] * 3
    assert to_item({"video": pil}).parts[0].is_frames
    nested = to_item({"video": [frames, "/x.mp4"]})
    assert [p.is_frames for p in nested.parts] == [True, False]


def test_official_frame_lists_ignore_the_items_max_frames():
    # the reference caps frame lists with the model's max_frames, not the item's
    item = to_item({"video": ["/f0.png", "/f1.png"], "max_frames": 4, "fps": 3})
    assert item.parts[0].max_frames is None and item.parts[0].fps == 3


def test_empty_item_and_empty_text():
    assert to_item({}).parts == ()
    assert to_item({"text": None}).parts == ()
    assert to_item({"text": ""}).parts == (TextPart("", "text"),)
    assert to_item({"video": []}).parts == ()


def test_content_form_keeps_order_and_options():
    item = to_item({"content": [
        {"type": "text", "text": "first"},
        {"type": "image", "image": "/a.png"},
        {"type": "video", "video": "/v.mp4", "fps": 4, "max_frames": 12, "video_start": 1.5, "video_end": 3},
        {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
        {"type": "video", "video": ["/f0.png", "/f1.png"], "max_frames": 2},
        {"text": "last"},
    ], "instruction": "Retrieve"})
    assert kinds(item) == ["TextPart", "ImagePart", "VideoPart", "ImagePart", "VideoPart", "TextPart"]
    v = item.parts[2]
    assert (v.fps, v.max_frames, v.start, v.end) == (4, 12, 1.5, 3)
    assert item.parts[3].source == "https://example.com/x.png"
    assert item.parts[4].is_frames and item.parts[4].max_frames == 2
    assert [p.field for p in item.parts][:2] == ["content[0]", "content[1]"]


def test_plain_string_is_a_text_item():
    assert to_item("hello").parts == (TextPart("hello"),)


@pytest.mark.parametrize("obj,match", [
    ({"txt": "typo"}, "unknown keys"),
    ({"text": 3}, "text must be a string"),
    ({"image": 3.5}, "unsupported image type"),
    ({"image": ""}, "empty image reference"),
    ({"video": 7}, "unsupported video type"),
    ({"fps": -1, "text": "x"}, "fps must be a positive number"),
    ({"max_frames": 2.5, "text": "x"}, "max_frames must be a positive integer"),
    ({"instruction": 5, "text": "x"}, "instruction must be a string"),
    ({"content": [{"type": "audio", "audio": "x"}]}, "unknown content type"),
    ({"content": [{"type": "image"}]}, "needs an 'image'"),
    ({"content": [{"type": "video", "video": "/v.mp4", "video_start": 3, "video_end": 1}]}, "must be after"),
    ({"content": [{"type": "text", "text": "x"}], "text": "y"}, "cannot be combined"),
    (42, "must be a dict or a string"),
])
def test_errors_name_the_input_and_field(obj, match):
    with pytest.raises(InputError, match=match) as info:
        to_items([{"text": "fine"}, obj])
    assert info.value.index == 1
    assert str(info.value).startswith("input 1")


def test_field_is_reported():
    with pytest.raises(InputError) as info:
        to_item({"image": ["/ok.png", 3]}, 4)
    assert info.value.index == 4 and info.value.field == "image[1]"


def test_single_input_not_wrapped_in_a_list_is_refused():
    with pytest.raises(InputError, match="list of inputs"):
        to_items({"text": "x"})


def test_modality():
    assert to_item({"text": "x"}).modality == "text"
    assert to_item({"image": "/a.png"}).modality == "image"
    assert to_item({"video": "/a.mp4"}).modality == "video"
    assert to_item({"video": "/a.mp4", "text": "x"}).modality == "mixed"
    assert isinstance(to_item({"image": "/a.png"}).parts[0], ImagePart)
    assert isinstance(to_item({"video": "/a.mp4"}).parts[0], VideoPart)

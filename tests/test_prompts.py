"""Our prompt rendering equals the Qwen3-VL chat template applied to the reference's conversations."""
from __future__ import annotations

import os

import pytest

from qwen3_vl_embedding.inputs import to_item
from qwen3_vl_embedding.prompts import (Fixed, embedding_instruction, embedding_prompt, reranking_prompt,
                                        to_conversation)
from qwen3_vl_embedding.inputs import ImagePart, TextPart, VideoPart

ASSETS = os.path.join(os.path.dirname(__file__), "assets")


@pytest.fixture(scope="module")
def template():
    from jinja2 import Environment

    with open(os.path.join(ASSETS, "chat_template.jinja")) as f:
        source = f.read()
    return Environment().from_string(source)


def render(prompt) -> str:
    out = []
    for piece in prompt:
        if isinstance(piece, (Fixed, TextPart)):
            out.append(piece.text)
        elif isinstance(piece, ImagePart):
            out.append("<|vision_start|><|image_pad|><|vision_end|>")
        else:
            out.append("<|vision_start|><|video_pad|><|vision_end|>")
    return "".join(out)


def reference_embedding_conversation(item: dict, instruction: str) -> list[dict]:
    """The reference's conversation: system = instruction; user = videos, images, texts (or NULL)."""
    content = []
    for key in ("video", "image"):
        values = item.get(key)
        if values is not None:
            for _ in (values if isinstance(values, list) and key == "image" else [values]):
                content.append({"type": key, key: "x"})
    texts = item.get("text")
    for t in ([texts] if isinstance(texts, str) else texts or []):
        content.append({"type": "text", "text": t})
    if not content:
        content = [{"type": "text", "text": "NULL"}]
    return [{"role": "system", "content": [{"type": "text", "text": instruction}]},
            {"role": "user", "content": content}]


CASES = [
    {"text": "A woman playing with her dog."},
    {"text": "what is a dog", "instruction": "Retrieve passages that answer the question"},
    {"image": "/a.png", "text": "a picture of shapes"},
    {"image": ["/a.png", "/b.png"], "text": ["one", "two"]},
    {"video": "/v.mp4", "image": "/a.png", "text": "all three", "instruction": "  Find clips!  "},
    {},
    {"text": "多语言文本，中文。", "instruction": "检索相关段落"},
]


@pytest.mark.parametrize("case", CASES)
def test_embedding_prompt_matches_chat_template(template, case):
    item = to_item(case)
    prompt = embedding_prompt(item)
    instruction = embedding_instruction(case.get("instruction"))
    want = template.render(messages=reference_embedding_conversation(case, instruction), add_generation_prompt=True)
    assert render(prompt) == want
    assert template.render(messages=to_conversation(prompt), add_generation_prompt=True) == want


def test_reranking_prompt_matches_chat_template(template):
    query = to_item({"text": "a red square", "image": "/q.png"})
    doc = to_item({"video": "/d.mp4", "text": "doc"})
    prompt = reranking_prompt(query, doc, "Find it.")
    content = [{"type": "text", "text": "<Instruct>: Find it."}, {"type": "text", "text": "<Query>:"},
               {"type": "image", "image": "x"}, {"type": "text", "text": "a red square"},
               {"type": "text", "text": "\n<Document>:"}, {"type": "video", "video": "x"},
               {"type": "text", "text": "doc"}]
    system = ('Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
              'Note that the answer can only be "yes" or "no".')
    want = template.render(messages=[{"role": "system", "content": [{"type": "text", "text": system}]},
                                     {"role": "user", "content": content}], add_generation_prompt=True)
    assert render(prompt) == want


def test_empty_sides_of_a_pair_are_null():
    prompt = reranking_prompt(to_item({}), to_item({}))
    assert "<Query>:NULL\n<Document>:NULL<|im_end|>" in render(prompt)


@pytest.mark.parametrize("given,want", [
    (None, "Represent the user's input."),
    ("", "Represent the user's input."),
    ("   ", "Represent the user's input."),
    ("Find images", "Find images."),
    ("Find images.", "Find images."),
    ("Find images?", "Find images?"),
    ("  Find images  ", "Find images."),
    ("检索图片", "检索图片."),
    ("检索图片。", "检索图片。"),
    ("Ends with a quote»", "Ends with a quote»"),
])
def test_instruction_rule(given, want):
    assert embedding_instruction(given) == want


def test_video_defaults_fill_in():
    item = to_item({"video": "/v.mp4"})
    part = embedding_prompt(item, fps=1.0, max_frames=64)[1]
    assert isinstance(part, VideoPart) and part.fps == 1.0 and part.max_frames == 64
    item = to_item({"video": "/v.mp4", "fps": 3, "max_frames": 9})
    part = embedding_prompt(item, fps=1.0, max_frames=64)[1]
    assert part.fps == 3 and part.max_frames == 9
    frames = to_item({"video": ["/f0.png", "/f1.png"], "max_frames": 1})
    assert embedding_prompt(frames, fps=1.0, max_frames=64)[1].max_frames == 64
    pair = reranking_prompt(to_item({"text": "q"}), frames, fps=2.0, max_frames=8, frames_cap=64)
    assert [p for p in pair if isinstance(p, VideoPart)][0].max_frames == 64
